#!/usr/bin/env bash
# Benchmark: `servin dashboard` with 50 running containers in 5 projects.
#
#   bench/dashboard.sh [RUNS]
#
# Builds the release binaries (into $CARGO_TARGET_DIR, else target/; or
# takes servin and servin-guest from $SERVIN_BIN_DIR when set), starts an
# engine on its own root and socket, imports a busybox image
# (bench/make-box.py), brings up 5 projects of 10 containers each
# (`sleep 3600`) and one more container printing a line every 100 ms, then
# starts `servin dashboard --no-open` and drives headless Chromium with
# bench/dashboard.mjs (playwright-core from dashboard/node_modules):
#   - the main page interactive: from the request (the navigation's start)
#     to the 50 containers' rows drawn with their buttons, RUNS loads
#     (default 11) after one warm-up, in a browser already logged in;
#   - a line printed in a container visible on its page: the engine's time
#     stamp of each line (taken when the container wrote it) to the moment
#     the page drew it, over 100 lines;
#   - the dashboard's memory (VmRSS and its peak VmHWM) with that page open.
# Needs: node, /usr/bin/chromium, python3.
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
WORK=$(mktemp -d /tmp/servin-bench-dashboard.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$BIN/servin-guest HOME=$WORK/home
IMAGE=bench/box:1
DASH_PID=
cleanup() {
  if [ -n "$DASH_PID" ]; then kill "$DASH_PID" 2>/dev/null || true; fi
  "$SERVIN" rm -f --all >/dev/null 2>&1 || true
  "$SERVIN" network prune -f >/dev/null 2>&1 || true
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  bench/remove-networks.sh "$WORK/servin"
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME"

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" "$IMAGE"
"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null
for p in 1 2 3 4 5; do
  mkdir -p "$WORK/p$p"
  cat > "$WORK/p$p/servin.toml" <<TOML
[project]
name = "proj$p"

[containers.app]
image = "$IMAGE"
command = ["sleep", "3600"]
replicas = 6
stop_timeout = "1s"

[containers.worker]
image = "$IMAGE"
command = ["sleep", "3600"]
replicas = 4
stop_timeout = "1s"
TOML
  (cd "$WORK/p$p" && "$SERVIN" up -d > /dev/null 2>&1)
done
"$SERVIN" run -d --name ticker "$IMAGE" sh -c 'while true; do echo tick; sleep 0.1; done' > /dev/null
running=$("$SERVIN" ps --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "running containers: $running"

"$SERVIN" dashboard --no-open > "$WORK/url" 2> "$WORK/dashboard.log" &
DASH_PID=$!
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
URL=$(head -1 "$WORK/url")
# The dashboard's own process: `servin dashboard` is the process itself.
(cd dashboard && DASHBOARD_URL=$URL RUNS=$RUNS DASHBOARD_PID=$DASH_PID EXPECT=$((running - 1)) node ../bench/dashboard.mjs)
