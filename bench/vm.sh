#!/usr/bin/env bash
# Benchmark: VM mode under whatever accelerator the VM gets (here TCG).
#
#   bench/vm.sh [STARTS] [PORT_STARTS] [ROUNDS]
#
# The guest runs the release engine (or SERVIN_ENGINE) and the host the
# release `servin` (its supervisor's memory is part of the figure), as a
# user's would.
#
# 1. `servin vm start` to engine ready (the command's own wall time), median
#    of STARTS (default 5) cold starts of a stopped VM (boot files built
#    beforehand, the disk already formatted);
# 2. host memory of the idle VM (QEMU and the supervisor, RSS) 10 s after
#    the start, no containers;
# 3. a published port answering on the host: PORT_STARTS (default 20)
#    times `servin run -d -p 127.0.0.1:P:80 box httpd`, then the time from
#    the command's return (the container started) to the first HTTP answer
#    on the host's 127.0.0.1:P, and to the host's listener accepting a
#    connection (the forwarding's share); medians and maxima;
# 4. state kept: 3 images, 3 volumes and 3 containers, then ROUNDS (default
#    10) rounds alternating `vm stop`/`vm start` and QEMU killed (SIGKILL)
#    then `vm start`; after each, how many of the 9 are still listed.
# Prints `uptime` before each part: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
STARTS=${1:-5}
PORT_STARTS=${2:-20}
ROUNDS=${3:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p servin
S="$CARGO_TARGET_DIR/release/servin"
# SERVIN_ENGINE, when set, names another engine build for the guest.
if [ -z "${SERVIN_ENGINE:-}" ]; then
  cargo build -q --release -p servin-guest
  export SERVIN_ENGINE=$CARGO_TARGET_DIR/release/servin-guest
fi
TMP=$(mktemp -d)
export SERVIN_VM_DIR=$TMP/vm SERVIN_MODE=vm SERVIN_VM_ACCEL=${SERVIN_VM_ACCEL:-tcg}
trap '"$S" vm stop >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT

"$S" vm start 2>/dev/null # builds the boot files and formats the disk
"$S" vm stop >/dev/null 2>&1
echo "== vm start to ready ($STARTS starts); load: $(uptime | sed 's/.*load/load/')"
times=()
for _ in $(seq "$STARTS"); do
  t0=$(date +%s.%N)
  "$S" vm start 2>/dev/null
  t1=$(date +%s.%N)
  times+=("$(awk "BEGIN {print $t1 - $t0}")")
  "$S" vm stop >/dev/null 2>&1
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.2f s (min %.2f, max %.2f)\n", a[int((NR+1)/2)], a[1], a[NR]}'

echo "== idle memory; load: $(uptime | sed 's/.*load/load/')"
"$S" vm start 2>/dev/null
sleep 10
q=$(cat "$SERVIN_VM_DIR/vm-state/qemu.pid")
s=$(cat "$SERVIN_VM_DIR/vm-state/supervisor.pid")
rq=$(awk '/VmRSS/ {print $2}' "/proc/$q/status")
rs=$(awk '/VmRSS/ {print $2}' "/proc/$s/status")
echo "QEMU $((rq / 1024)) MiB, supervisor $((rs / 1024)) MiB, total $(((rq + rs) / 1024)) MiB"

echo "== published port answering after the container started ($PORT_STARTS starts); load: $(uptime | sed 's/.*load/load/')"
BOX_APPLETS=httpd python3 bench/make-box.py "$TMP/box.tar" "$TMP/rootfs" bench/vmbox:1 >/dev/null
"$S" image import "$TMP/box.tar" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for _ in $(seq "$PORT_STARTS"); do
  "$S" run -d --name vmbench -p "127.0.0.1:$PORT:80" bench/vmbox:1 httpd -f -p 80 -h / >/dev/null
  python3 - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
t0 = time.monotonic()
listening = None
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        if listening is None:
            listening = time.monotonic() - t0
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        if s.recv(16).startswith(b"HTTP/"):
            break
    except OSError:
        pass
    if time.monotonic() - t0 > 30:
        sys.exit("no answer in 30 s")
    time.sleep(0.002)
print(f"{(time.monotonic() - t0) * 1000:.1f} {listening * 1000:.1f}")
PY
  "$S" rm -f vmbench >/dev/null
done | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
http = sorted(r[0] for r in rows)
listen = sorted(r[1] for r in rows)
print(f"HTTP answer: median {statistics.median(http):.1f} ms, max {http[-1]:.1f} ms; "
      f"host listener open: median {statistics.median(listen):.1f} ms, max {listen[-1]:.1f} ms; {len(rows)} starts")
'

echo "== state kept over $ROUNDS rounds; load: $(uptime | sed 's/.*load/load/')"
for i in 1 2 3; do
  "$S" tag bench/vmbox:1 "bench/kept$i:1" >/dev/null
  "$S" volume create "kept$i" >/dev/null
  "$S" create --name "kept$i" -v "kept$i:/data" bench/vmbox:1 sleep 1000 >/dev/null
done
kept() {
  local images volumes containers n=0
  images=$("$S" images)
  volumes=$("$S" volume ls)
  containers=$("$S" ps -a)
  for i in 1 2 3; do
    grep -q "bench/kept$i" <<<"$images" && n=$((n + 1))
    grep -qw "kept$i" <<<"$volumes" && n=$((n + 1))
    grep -qw "kept$i" <<<"$containers" && n=$((n + 1))
  done
  echo "$n"
}
total=0
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    how="vm stop/start"
    "$S" vm stop >/dev/null 2>&1
  else
    how="QEMU killed"
    kill -9 "$(cat "$SERVIN_VM_DIR/vm-state/qemu.pid")"
    while "$S" vm status 2>/dev/null | grep -q running; do sleep 0.1; done
  fi
  "$S" vm start >/dev/null 2>&1
  n=$(kept)
  total=$((total + n))
  echo "round $r ($how): $n of 9 kept"
done
echo "state kept: $total of $((ROUNDS * 9)) ($((total * 100 / (ROUNDS * 9)))%)"
