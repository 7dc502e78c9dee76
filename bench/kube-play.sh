#!/usr/bin/env bash
# Benchmark: `servin kube play` of a 3-Deployment file against `servin up`
# of the equivalent servin.toml, in the same run.
#
#   bench/kube-play.sh          # BENCH_BIN=DIR: servin and servin-guest already built there
#
# Builds the busybox image (bench/make-box.py) and imports it, then writes
# the same three services twice: `kube.yaml`, three Deployments of one
# replica each, and `servin.toml`, three containers; same image, `sleep
# 3600` as the command, a 10 s stop timeout (terminationGracePeriodSeconds),
# one network (the implicit `default`). Checks once that each brings up 3
# running containers, that a second run keeps them, and that its down
# leaves nothing; then times with hyperfine:
#   1. cold: nothing of the project exists, the image present;
#   2. no-op: everything already up.
# The figure to watch is cold `kube play` / cold `up` (target: at most
# 1.2x). Release binaries; servin runs its own engine (own SERVIN_ROOT and
# socket, subnet pool 10.202.0.0/16). Needs: hyperfine python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --locked -q -p servin -p servin-guest
fi
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
SERVIN=$BIN/servin
WORK=$(mktemp -d /tmp/servin-bench-kube.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$BIN/servin-guest HOME=$WORK/home
export SERVIN_SUBNET_POOL=10.202.0.0/16
IMAGE=bench/kubebox:1
mkdir -p "$HOME" "$WORK/k" "$WORK/s"

cleanup() {
  set +e
  "$SERVIN" kube play "$WORK/k/kube.yaml" --down --volumes >/dev/null 2>&1
  "$SERVIN" down -p s3 -t 0 >/dev/null 2>&1
  "$SERVIN" rm -f --all >/dev/null 2>&1
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null; fi
  wait 2>/dev/null
  sleep 0.5
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" "$IMAGE"
"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null

: > "$WORK/k/kube.yaml"
printf '[project]\nname = "s3"\n' > "$WORK/s/servin.toml"
for i in 0 1 2; do
  cat >> "$WORK/k/kube.yaml" <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: s$i}
spec:
  replicas: 1
  selector: {matchLabels: {app: s$i}}
  template:
    metadata: {labels: {app: s$i}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: s$i
          image: $IMAGE
          command: [sleep, "3600"]
EOF
  cat >> "$WORK/s/servin.toml" <<EOF

[containers.s$i]
image = "$IMAGE"
command = ["sleep", "3600"]
EOF
done
# The kube project is named after the file: `kube`.
printf '#!/bin/sh\nexec %s kube play %s >/dev/null 2>&1\n' "$SERVIN" "$WORK/k/kube.yaml" > "$WORK/k-up"
printf '#!/bin/sh\nexec %s down -p kube -t 0 >/dev/null 2>&1\n' "$SERVIN" > "$WORK/k-gone"
printf '#!/bin/sh\nexec %s up -d -f %s >/dev/null 2>&1\n' "$SERVIN" "$WORK/s/servin.toml" > "$WORK/s-up"
printf '#!/bin/sh\nexec %s down -p s3 -t 0 >/dev/null 2>&1\n' "$SERVIN" > "$WORK/s-gone"
chmod +x "$WORK"/k-up "$WORK"/k-gone "$WORK"/s-up "$WORK"/s-gone

running() { # project: its running containers (name and ID), sorted
  "$SERVIN" ps --format json | python3 -c "
import json, sys
print('\n'.join(sorted(c['Names'][0].lstrip('/') + ' ' + c['Id']
                       for c in json.load(sys.stdin)
                       if c['Labels'].get('servin.project') == '$1')))"
}
check() { # project up-script gone-script
  local before after
  "$2"; before=$(running "$1")
  [ "$(grep -c . <<<"$before")" = 3 ] || { echo "$1: want 3 running, got:"; echo "$before"; exit 1; }
  "$2"; after=$(running "$1")
  [ "$before" = "$after" ] || { echo "$1: a second run changed containers"; exit 1; }
  "$3"
  [ -z "$(running "$1")" ] || { echo "$1: down left containers"; exit 1; }
  echo "checked $1: 3 running, unchanged after a second run, none after down"
}
check kube "$WORK/k-up" "$WORK/k-gone"
check s3 "$WORK/s-up" "$WORK/s-gone"
[ -z "$("$SERVIN" ps -aq)" ] || { echo "stopped containers left"; exit 1; }

echo "load before timing: $(cat /proc/loadavg)"
H="hyperfine -N --style basic"
$H --warmup 1 --runs 15 --export-json "$WORK/cold.json" \
  --prepare "$WORK/k-gone" -n "kube play (3 Deployments, cold)" "$WORK/k-up" \
  --prepare "$WORK/s-gone" -n "up -d (3 services, cold)" "$WORK/s-up"
$H --warmup 2 --runs 20 --export-json "$WORK/noop.json" \
  -n "kube play (3 Deployments, no-op)" "$WORK/k-up" \
  -n "up -d (3 services, no-op)" "$WORK/s-up"
for f in cold noop; do
  python3 - "$WORK/$f.json" "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
k, s = r[0]["mean"], r[1]["mean"]
print(f"{sys.argv[2]}: kube play {k*1000:.1f} ms, up {s*1000:.1f} ms, ratio {k/s:.3f}x")
PY
done
echo "load after timing: $(cat /proc/loadavg)"
