#!/usr/bin/env bash
# Benchmark: pulling images, servin against skopeo copy + umoci unpack.
#
#   bench/pull.sh
#
# Starts a throwaway docker-registry on a loopback port, seeds it with a
# 5-layer image of about 100 MB (bench/make-image.py, pushed with skopeo),
# and times in the same run with hyperfine:
#   1. skopeo copy to an OCI layout + umoci unpack (the peer);
#   2. `servin pull` of the same image into an empty store (pull + verify +
#      unpack into snapshots), the engine already running;
#   3. `servin pull` of the image when it is already present;
# then reads the engine's resident memory when idle.
# Needs: hyperfine docker-registry skopeo umoci python3 curl (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p servin -p servin-guest
SERVIN=$PWD/target/release/servin
WORK=$(mktemp -d /tmp/servin-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG_PID=
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$PWD/target/release/servin-guest HOME=$WORK/home
cleanup() {
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null || true; fi
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME"

cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REG_PID=$!
python3 bench/make-image.py "$WORK/layout" 5 20
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.05; done
IMAGE=127.0.0.1:$PORT/bench/img:v1
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:bench" "docker://$IMAGE"

"$SERVIN" info --format json > /dev/null   # starts the engine
python3 -c "import json,sys; print(json.load(sys.stdin)['servin'].get('pid',''))" \
  < <("$SERVIN" info --format json) > "$WORK/engine.pid"

hyperfine -N --warmup 1 --runs 10 \
  --prepare "rm -rf $WORK/oci $WORK/bundle" \
  -n "skopeo copy + umoci unpack" \
  "bash -c 'skopeo copy -q --src-tls-verify=false docker://$IMAGE oci:$WORK/oci:v1 && umoci unpack --image $WORK/oci:v1 $WORK/bundle'" \
  --prepare "bash -c '$SERVIN rmi --force $IMAGE >/dev/null 2>&1; $SERVIN image prune -a >/dev/null 2>&1; true'" \
  -n "servin pull (empty store)" \
  "$SERVIN pull -q $IMAGE"

hyperfine -N --warmup 3 --runs 50 -n "servin pull (already present)" "$SERVIN pull -q $IMAGE"

pid=$(cat "$WORK/engine.pid")
sleep 1
echo "engine idle resident memory: $(awk '/VmRSS/ {print $2, $3}' /proc/"$pid"/status)"
