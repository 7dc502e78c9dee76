#!/usr/bin/env bash
# Benchmark: workspace sync (issue 14), in one run:
#
#   bench/sync.sh            (SERVIN_BENCH_PROFILE=debug to use a debug build;
#                             SERVIN_BENCH_PARTS=copy for part 1 only)
#
# 1. initial copy of a 10,000-file, 100 MB tree by `servin up -d` (the copy
#    step's own time, as up prints it) against `rsync -a` of the same tree
#    to a local folder (hyperfine), then a second `up` with nothing changed;
# 2. latency from a host write to the change visible in the copy over 500
#    edits, with `servin watch` running (bench/sync.py polls the volume's
#    data folder, the inode the container sees);
# 3. a checkout that changes 1,000 files: time until the copy's hashes are
#    the host's;
# 4. `servin watch` idle on a 100,000-file tree: CPU and resident memory.
# Needs: rsync hyperfine python3 (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${SERVIN_BENCH_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -q -p servin -p servin-guest
else
  cargo build --locked -q -p servin -p servin-guest
fi
TARGET=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE
SERVIN=$TARGET/servin
WORK=$(mktemp -d /tmp/servin-bench-sync.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$TARGET/servin-guest HOME=$WORK/home NO_COLOR=1
WATCH_PID=
cleanup() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
  "$SERVIN" system reset -f >/dev/null 2>&1 || true
  grep -o "$WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" bench/box:1 >/dev/null
"$SERVIN" image import "$WORK/box.tar" >/dev/null

project() { # DIR [NAME [SOURCE]]
  mkdir -p "$1/${3:-src}"
  cat > "$1/servin.toml" <<TOML
[project]
name = "${2:-bench}"

[containers.web]
image = "bench/box:1"
command = ["sleep", "3600"]
stop_timeout = "1s"
workspace = { source = "./${3:-src}", target = "/app", mode = "sync" }
TOML
}
COPY=$SERVIN_ROOT/volumes/bench_web-workspace/_data

# 1. Initial copy: 10,000 files of 10 KB in 100 folders.
#
# Every run copies to a new place (its own rsync destination, its own
# project and so its own volume) and nothing is deleted until all runs are
# done: on a filesystem without a journal (this machine's), ext4 skips
# inodes freed in the last minutes when it allocates, so a copy made just
# after deleting another one pays for scanning past them, unevenly between
# the two tools. A first `up` is what the figure is about.
P=$WORK/p1
project "$P"
python3 bench/sync.py gen "$P/src" 10000 10240 100
echo "tree: $(find "$P/src" -type f | wc -l) files, $(du -sm "$P/src" | cut -f1) MB"
# The two alternate, run by run, so that both see the same load.
rsyncs=(); copies=()
ms() { date +%s%N | cut -c1-13; }
for i in 1 2 3 4 5 6 7; do
  sync
  t0=$(ms); rsync -a "$P/src/" "$WORK/rsync-dst-$i/"; t1=$(ms)
  rsyncs+=("$((t1 - t0))")
  project "$P/run$i" "copy$i" ../src
  sync
  line=$(cd "$P/run$i" && "$SERVIN" up -d 2>&1 | grep 'workspace of web')
  copies+=("$(echo "$line" | sed -E 's/.* in ([0-9]+) ms.*/\1/')")
done
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
echo "rsync -a (ms, 7 runs): ${rsyncs[*]}; median $(median "${rsyncs[@]}")"
echo "servin initial copy step (ms, 7 runs): ${copies[*]}; median $(median "${copies[@]}")  [load $(cut -d' ' -f1 /proc/loadavg)]"
for i in 1 2 3 4 5 6 7; do
  [ "$(find "$SERVIN_ROOT/volumes/copy${i}_web-workspace/_data" -type f | wc -l)" = 10000 ] || { echo "copy $i is not whole"; exit 1; }
  (cd "$P/run$i" && "$SERVIN" down --volumes >/dev/null 2>&1)
done
rm -rf "$WORK"/rsync-dst-*
(cd "$P" && "$SERVIN" up -d 2>&1 | grep 'workspace of web')
[ "$(find "$COPY" -type f | wc -l)" = 10000 ] || { echo "the copy is not whole"; exit 1; }
again=()
for i in 1 2 3 4 5; do
  line=$(cd "$P" && "$SERVIN" up -d 2>&1 | grep 'workspace of web')
  again+=("$(echo "$line" | sed -E 's/.*up to date \(([0-9]+) ms\).*/\1/')")
done
echo "second up, nothing changed, copy step (ms, 5 runs): ${again[*]}  [load $(cut -d' ' -f1 /proc/loadavg)]"
hyperfine -w 1 -r 5 -N "$SERVIN -f $P/servin.toml up -d" | grep -E 'Time|Range'
[ "${SERVIN_BENCH_PARTS:-all}" = copy ] && exit 0

# 2. and 3. Latency and a 1,000-file checkout, with the watcher running.
(cd "$P" && exec "$SERVIN" watch --no-logs > "$WORK/watch.log" 2>&1) &
WATCH_PID=$!
for _ in $(seq 100); do grep -q watching "$WORK/watch.log" 2>/dev/null && break; sleep 0.1; done
echo "[load $(cut -d' ' -f1 /proc/loadavg)]"
python3 bench/sync.py latency "$P/src" "$COPY" 500
echo "[load $(cut -d' ' -f1 /proc/loadavg)]"
python3 bench/sync.py checkout "$P/src" "$COPY" 1000
kill -INT "$WATCH_PID"; wait "$WATCH_PID" || true; WATCH_PID=
(cd "$P" && "$SERVIN" down --volumes >/dev/null)

# 4. Idle watcher on 100,000 files (1,000 folders).
P=$WORK/p4
project "$P"
python3 bench/sync.py gen "$P/src" 100000 64 100
(cd "$P" && "$SERVIN" up -d 2>&1 | grep 'workspace of web')
(cd "$P" && exec "$SERVIN" watch --no-logs > "$WORK/watch4.log" 2>&1) &
WATCH_PID=$!
for _ in $(seq 600); do grep -q watching "$WORK/watch4.log" 2>/dev/null && break; sleep 0.1; done
sleep 2
echo "[load $(cut -d' ' -f1 /proc/loadavg)]"
python3 bench/sync.py idle "$WATCH_PID" 30
kill -INT "$WATCH_PID"; wait "$WATCH_PID" || true; WATCH_PID=
