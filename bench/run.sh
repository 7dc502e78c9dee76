#!/usr/bin/env bash
# Benchmark: running containers, servin against bare runc and podman.
#
#   bench/run.sh
#
# Builds a busybox image (bench/make-box.py), loads it into servin and podman,
# makes an equivalent runc bundle (same root filesystem, `true` as the
# command), and times in the same run with hyperfine:
#   1. `runc run` of the bundle (the floor: no image, no monitor, no init);
#   2. `servin run --rm IMAGE true` (overlay mount, spec, monitor, init, wait,
#      removal, and a veth on the default `bridge` network), the engine
#      already running; and the same with `--network none` (a namespace with
#      loopback only, like the bare bundle's);
#   3. `podman --runtime runc run --rm IMAGE true` (the peer);
#   then 1 and 2 again, interleaved (bench/interleave.py);
#   4. `servin stop` of a container whose main process ignores SIGTERM
#      (`sleep 3600`), with the default init;
# then starts 50 idle containers and reads the engine's resident memory.
# Needs: hyperfine runc tini podman python3 (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p servin -p servin-guest
SERVIN=$PWD/target/release/servin
WORK=$(mktemp -d /tmp/servin-bench.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$PWD/target/release/servin-guest HOME=$WORK/home
IMAGE=bench/box:1
cleanup() {
  "$SERVIN" rm -f --all >/dev/null 2>&1 || true
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null || true; fi
  podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
  runc --root "$WORK/runc" delete -f benchrunc >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  bench/remove-networks.sh "$WORK/servin"
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME"

python3 bench/make-box.py "$WORK/box.tar" "$WORK/bundle/rootfs" "$IMAGE"
(cd "$WORK/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["process"]["env"] = ["PATH=/bin"]
c["root"]["readonly"] = False
json.dump(c, open("config.json", "w"))
PY
)

"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null
podman load -q -i "$WORK/box.tar" > /dev/null
NPROC=4096   # podman sets nproc/nofile; they must stay within this host's hard limits
PODMAN="podman --runtime runc run --rm --ulimit nofile=20000:20000 --ulimit nproc=$NPROC:$NPROC $IMAGE true"

hyperfine -N --warmup 3 --runs 30 \
  -n "runc run (bare bundle)" "runc --root $WORK/runc run --bundle $WORK/bundle benchrunc" \
  -n "servin run --rm" "$SERVIN run --rm $IMAGE true" \
  -n "servin run --rm --network none" "$SERVIN run --rm --network none $IMAGE true" \
  -n "podman run --rm" "$PODMAN"

# The same commands interleaved (each round runs each once, with a rest
# after each), so drift in this machine's speed and the kernel's deferred
# work of the previous command fall on all of them alike: the like-for-like
# figure of one `run --rm` as a user meets it.
python3 bench/interleave.py --rounds 40 \
  "runc run (bare bundle)=runc --root $WORK/runc run --bundle $WORK/bundle benchrunc" \
  "servin run --rm=$SERVIN run --rm $IMAGE true" \
  "servin run --rm --network none=$SERVIN run --rm --network none $IMAGE true"

hyperfine -N --runs 15 \
  --prepare "bash -c '$SERVIN rm -f stopme >/dev/null 2>&1; $SERVIN run -d --name stopme $IMAGE sleep 3600 >/dev/null'" \
  -n "servin stop (sleep 3600, default init)" "$SERVIN stop stopme"
"$SERVIN" rm -f stopme > /dev/null

for i in $(seq 50); do "$SERVIN" run -d --name "idle$i" "$IMAGE" sleep 3600 > /dev/null; done
sleep 2
pid=$(cat "$WORK/engine.pid")
echo "engine resident memory with $("$SERVIN" ps -q | wc -l) idle containers: $(awk '/VmRSS/ {print $2, $3}' /proc/"$pid"/status)"
# Monitors start on standby (`monitor --standby ROOT`) or for a folder
# (`monitor DIR`): both name a path under $WORK.
mon=$(pgrep -f "servin-guest monitor .*$WORK" | head -1 || true)
if [ -n "$mon" ]; then
  echo "one monitor's resident memory: $(awk '/VmRSS/ {print $2, $3}' /proc/"$mon"/status)"
fi
