#!/usr/bin/env bash
# Benchmark: `docker stats --no-stream` over 50 running containers.
#
#   bench/stats.sh [RUNS]
#
# Builds the release binaries (into $CARGO_TARGET_DIR, else target/), starts
# an engine on its own root and socket, imports a busybox image
# (bench/make-box.py), starts 50 containers (`sleep 3600`, default `bridge`
# network), then times the real docker CLI's `docker stats --no-stream`
# against the engine's socket RUNS times (default 11) after one warm-up run,
# and prints each time and the median. docker asks the engine for every
# container's stats at once (`stream=false`: two samples, so that the CPU %
# has a previous sample to compare with).
# Needs: docker (the CLI only), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --locked -q -p servin -p servin-guest
SERVIN=$TARGET/release/servin
WORK=$(mktemp -d /tmp/servin-bench-stats.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$TARGET/release/servin-guest HOME=$WORK/home
export DOCKER_HOST=$SERVIN_HOST DOCKER_CONFIG=$WORK/docker
IMAGE=bench/box:1
cleanup() {
  "$SERVIN" rm -f --all >/dev/null 2>&1 || true
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  bench/remove-networks.sh "$WORK/servin"
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME" "$DOCKER_CONFIG"

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" "$IMAGE"
"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null
for i in $(seq 50); do "$SERVIN" run -d --name "busy$i" "$IMAGE" sleep 3600 > /dev/null; done
rows=$(docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' | grep -c '^busy')
if [ "$rows" != 50 ]; then echo "docker stats showed $rows of 50 containers" >&2; exit 1; fi

python3 - "$RUNS" <<'PY'
import statistics, subprocess, sys, time
runs = int(sys.argv[1])
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(["docker", "stats", "--no-stream"], check=True, stdout=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1000)
print("docker stats --no-stream, 50 running containers: "
      + " ".join(f"{t:.0f}" for t in times) + " ms")
print(f"median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, max {max(times):.1f} ms ({runs} runs)")
PY
