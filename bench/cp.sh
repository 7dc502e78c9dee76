#!/usr/bin/env bash
# Benchmark: `docker cp` of a 100 MB folder into a running container,
# through the engine's `PUT /containers/{id}/archive`, against the same copy
# done by hand: `tar c | servin exec -i CTR tar x -C /dst`.
#
#   bench/cp.sh [ROUNDS]      (default 7)
#
# Makes a folder of 1000 files of 100 KB of random data, starts the engine
# on its own root and socket (release binaries), runs one `sleep` container
# of the busybox image (bench/make-box.py), and times both copies in turn,
# ROUNDS times (interleaved, so drift in the machine's speed falls on both
# alike). Before each copy the destination is removed (untimed). Prints each
# copy's times, their medians and the ratio docker cp / tar | exec.
# Needs: docker (the CLI only), python3. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --locked -q -p servin -p servin-guest
WORK=$(mktemp -d /tmp/servin-bench-cp.XXXXXX)
# Copies: a target folder shared between worktrees may be rebuilt meanwhile.
cp "$TARGET/release/servin" "$TARGET/release/servin-guest" "$WORK/"
SERVIN=$WORK/servin
export SERVIN_ROOT=$WORK/servin-root SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$WORK/servin-guest HOME=$WORK/home
export DOCKER_HOST=unix://$WORK/engine.sock DOCKER_CONFIG=$WORK/docker
unset DOCKER_CONTEXT
IMAGE=bench/box:1
CTR=cpbench
cleanup() {
  "$SERVIN" rm -f --all >/dev/null 2>&1 || true
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  bench/remove-networks.sh "$WORK/servin-root" 2>/dev/null || true
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME" "$DOCKER_CONFIG"

python3 - "$WORK/src/data" <<'PY'
import os, sys
d = sys.argv[1]
os.makedirs(d)
for i in range(1000):
    sub = os.path.join(d, f"d{i // 100:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(100 * 1024))
PY
echo "source: $(du -sh "$WORK/src/data" | cut -f1) in $(find "$WORK/src/data" -type f | wc -l) files"

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" "$IMAGE"
"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null
"$SERVIN" run -d --name "$CTR" "$IMAGE" sleep 3600 > /dev/null

now() { date +%s%N; }
: > "$WORK/docker.times"
: > "$WORK/exec.times"
for r in $(seq "$ROUNDS"); do
  "$SERVIN" exec "$CTR" busybox rm -rf /dst-docker /dst-tar
  "$SERVIN" exec "$CTR" busybox mkdir -p /dst-docker /dst-tar
  sync; sleep 0.5
  t0=$(now); docker cp -q "$WORK/src/data" "$CTR:/dst-docker"; t1=$(now)
  echo $(( (t1 - t0) / 1000 )) >> "$WORK/docker.times"
  sync; sleep 0.5
  t0=$(now)
  tar c -C "$WORK/src" data | "$SERVIN" exec -i "$CTR" busybox tar x -C /dst-tar
  t1=$(now)
  echo $(( (t1 - t0) / 1000 )) >> "$WORK/exec.times"
done
# Both copies are whole: same file count and bytes.
for d in /dst-docker/data /dst-tar/data; do
  "$SERVIN" exec "$CTR" sh -c "cat $d/*/* | busybox wc -c"
done

python3 - "$WORK/docker.times" "$WORK/exec.times" <<'PY'
import statistics, sys
def load(p):
    return [int(l) / 1000 for l in open(p) if l.strip()]
docker, piped = load(sys.argv[1]), load(sys.argv[2])
print("docker cp (ms):            ", " ".join(f"{t:.0f}" for t in docker))
print("tar | servin exec -i (ms): ", " ".join(f"{t:.0f}" for t in piped))
md, mp = statistics.median(docker), statistics.median(piped)
print(f"median docker cp:            {md:.1f} ms")
print(f"median tar | servin exec -i: {mp:.1f} ms")
print(f"ratio docker cp / tar | exec: {md / mp:.2f}x (target at most 1.0x)")
PY
