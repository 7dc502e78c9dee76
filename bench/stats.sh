#!/usr/bin/env bash
# Benchmark: `docker stats --no-stream` over 50 running containers.
#
#   bench/stats.sh [RUNS]
#
# Builds the release binaries (into $CARGO_TARGET_DIR, else target/; or
# takes servin and servin-guest from $SERVIN_BIN_DIR when set), starts
# an engine on its own root and socket, imports a busybox image
# (bench/make-box.py), starts 50 containers (`sleep 3600`, default `bridge`
# network), then times the real docker CLI's `docker stats --no-stream`
# against the engine's socket RUNS times (default 11) after one warm-up run,
# and prints each time and the median. docker asks the engine for every
# container's stats at once (`stream=false`: two samples, so that the CPU %
# has a previous sample to compare with).
# The docker CLI prints its table at the first tick of a 500 ms ticker that
# it starts once every container's first answer is in, so its time is at
# least 500 ms plus the engine's answers, whatever the engine. The script
# therefore also times what the engine controls: 50 concurrent
# `GET /containers/{id}/stats?stream=false` requests until the last answer
# (the requests docker sends), and `servin stats --no-stream` (which prints
# as soon as the answers are in).
# Needs: docker (the CLI only), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
if [ -n "${SERVIN_BIN_DIR:-}" ]; then
  BIN=$SERVIN_BIN_DIR
else
  cargo build --release --locked -q -p servin -p servin-guest
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
SERVIN=$BIN/servin
WORK=$(mktemp -d /tmp/servin-bench-stats.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$BIN/servin-guest HOME=$WORK/home
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
# The warm-up run and RUNS timed runs of each, docker's first.

python3 - "$RUNS" "$WORK/engine.sock" "$SERVIN" <<'PY'
import socket, statistics, subprocess, sys, threading, time
runs, sock, servin = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def stats(name):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(f"GET /v1.47/containers/{name}/stats?stream=false HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    assert b" 200 " in data.split(b"\r\n", 1)[0], data[:200]

def engine_round():
    threads = [threading.Thread(target=stats, args=(f"busy{i}",)) for i in range(1, 51)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

def timed(name, f):
    f()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000)
    print(f"{name}: " + " ".join(f"{t:.0f}" for t in times) + " ms")
    print(f"  median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, max {max(times):.1f} ms ({runs} runs)")

quiet = dict(check=True, stdout=subprocess.DEVNULL)
timed("docker stats --no-stream, 50 running containers",
      lambda: subprocess.run(["docker", "stats", "--no-stream"], **quiet))
timed("engine: 50 concurrent stats?stream=false, until the last answer", engine_round)
timed("servin stats --no-stream, 50 running containers",
      lambda: subprocess.run([servin, "stats", "--no-stream"], **quiet))
PY
