#!/usr/bin/env bash
# Benchmark: project `up -d`, no-op `up -d` and `down`, servin against
# podman-compose, in the same run.
#
#   bench/up.sh                 # SERVIN_LOG=debug bench/up.sh for a detailed engine log
#
# Builds a busybox image (bench/make-box.py), loads it into servin and
# podman, writes a 3-service and a 20-service project twice, as `servin.toml`
# and as an equivalent `compose.yaml`: same image, `sleep 3600` as every
# service's command, `depends_on` chains (3: s0 <- s1 <- s2; 20: four chains
# of five), one network each (the implicit `default`). Each tool runs with
# its own defaults: servin puts an init in front of the command, podman runs
# `sleep` as PID 1, where it ignores SIGTERM. Then times with hyperfine:
#   1. cold `up -d` (nothing of the project exists, the image present),
#      3 and 20 services;
#   2. no-op `up -d` (everything already up), 3 and 20 services;
#   3. `down` of the 3 services (main processes ignore SIGTERM), with each
#      tool's default stop timeout;
#   4. `down -t 0` of 20 independent services (no `depends_on`: one level,
#      every container removed at once).
# Every command is checked once before it is timed (20 containers running
# after `up`, the same containers after a no-op `up`, nothing left after
# `down`).
#
# servin runs its own engine (its own SERVIN_ROOT and SERVIN_HOST, subnet
# pool 10.201.0.0/16 so its networks never meet podman's 10.89.0.0/16);
# podman runs with runc and nofile/nproc within this host's hard limits (a
# CONTAINERS_CONF of its own). podman-compose is installed from PyPI into a
# venv in the temporary folder unless PODMAN_COMPOSE names one. The engine
# log is copied to $BENCH_LOG (default /tmp/servin-bench-up-engine.log).
# Needs: hyperfine podman python3 (apt), PyPI for podman-compose.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH_BIN:-}" ]; then   # BENCH_BIN: a folder with servin and servin-guest already built
  cargo build --release --locked -q -p servin -p servin-guest
fi
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
SERVIN=$BIN/servin
WORK=$(mktemp -d /tmp/servin-bench-up.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$BIN/servin-guest HOME=$WORK/home
export SERVIN_SUBNET_POOL=10.201.0.0/16
export CONTAINERS_CONF=$WORK/containers.conf
BENCH_LOG=${BENCH_LOG:-/tmp/servin-bench-up-engine.log}
IMAGE=bench/upbox:1
NPROC=4096
mkdir -p "$HOME"

pc_down() { # project dir
  "$PC" -f "$1/compose.yaml" down -t 0 >/dev/null 2>&1 || true
}
cleanup() {
  set +e
  for p in p3 p20 f20; do
    "$SERVIN" down -p "$p" -t 0 >/dev/null 2>&1
    [ -n "${PC:-}" ] && pc_down "$WORK/$p"
    podman ps -aq --filter "label=io.podman.compose.project=$p" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
    podman pod rm -f "pod_$p" >/dev/null 2>&1
    podman network rm -f "${p}_default" >/dev/null 2>&1
  done
  "$SERVIN" rm -f --all >/dev/null 2>&1
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null; fi
  podman rmi -f "$IMAGE" >/dev/null 2>&1
  wait 2>/dev/null
  sleep 0.5
  [ -f "$SERVIN_ROOT/engine.log" ] && cp "$SERVIN_ROOT/engine.log" "$BENCH_LOG"
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
EOF

if [ -n "${PODMAN_COMPOSE:-}" ]; then
  PC=$PODMAN_COMPOSE
else
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q --disable-pip-version-check podman-compose
  PC=$WORK/venv/bin/podman-compose
fi

# The projects: N services, chains of five (s_i depends on s_{i-1} unless
# i is a multiple of 5, or at all with a third argument `flat`), `sleep
# 3600` each, the implicit default network.
gen() { # name n [flat]
  python3 - "$WORK/$1" "$1" "$2" "$IMAGE" "${3:-chains}" <<'PY'
import os, sys
out, name, n, image, shape = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
os.makedirs(out, exist_ok=True)
toml = [f'[project]\nname = "{name}"\n']
yaml = ["services:"]
for i in range(n):
    dep = shape != "flat" and i % 5 != 0
    toml.append(f'[containers.s{i}]\nimage = "{image}"\ncommand = ["sleep", "3600"]')
    if dep:
        toml.append(f'depends_on = ["s{i - 1}"]')
    toml.append("")
    yaml.append(f"  s{i}:\n    image: {image}\n    command: [\"sleep\", \"3600\"]")
    if dep:
        yaml.append(f"    depends_on:\n      - s{i - 1}")
open(os.path.join(out, "servin.toml"), "w").write("\n".join(toml))
open(os.path.join(out, "compose.yaml"), "w").write("\n".join(yaml) + "\n")
PY
  "$SERVIN" validate -f "$WORK/$1/servin.toml" >/dev/null 2>&1 || { "$SERVIN" validate -f "$WORK/$1/servin.toml"; exit 1; }
}

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" "$IMAGE"
"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null
podman load -q -i "$WORK/box.tar" > /dev/null
gen p3 3
gen p20 20
gen f20 20 flat

# Helper scripts for hyperfine (run without a shell).
for p in p3 p20 f20; do
  d=$WORK/$p
  printf '#!/bin/sh\nexec %s down -p %s -t 0 >/dev/null 2>&1\n' "$SERVIN" "$p" > "$d/s-gone"
  printf '#!/bin/sh\nexec %s up -d -f %s/servin.toml >/dev/null 2>&1\n' "$SERVIN" "$d" > "$d/s-up"
  printf '#!/bin/sh\nexec %s -f %s/compose.yaml down -t 0 >/dev/null 2>&1\n' "$PC" "$d" > "$d/p-gone"
  printf '#!/bin/sh\nexec %s -f %s/compose.yaml up -d >/dev/null 2>&1\n' "$PC" "$d" > "$d/p-up"
  chmod +x "$d"/s-gone "$d"/s-up "$d"/p-gone "$d"/p-up
done

# Checks, once, before timing.
s_running() { # project: names of its running containers, sorted
  "$SERVIN" ps --format json | python3 -c "
import json, sys
d = json.load(sys.stdin)
d = d if isinstance(d, list) else d.get('containers', [])
def name(c):
    n = c.get('name') or c.get('Name') or (c.get('Names') or [''])[0]
    return n.lstrip('/')
print('\n'.join(sorted(name(c) + ' ' + str(c.get('id') or c.get('Id'))
                       for c in d if name(c).startswith('$1-'))))"
}
p_running() {
  podman ps --filter "label=io.podman.compose.project=$1" --format '{{.Names}} {{.ID}}' | sort
}
check() { # project n
  local p=$1 n=$2 d=$WORK/$1 before after
  "$SERVIN" up -d -f "$d/servin.toml" > "$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
  before=$(s_running "$p")
  [ "$(grep -c . <<<"$before")" = "$n" ] || { echo "servin up $p: want $n running, got:"; echo "$before"; cat "$WORK/out"; exit 1; }
  "$SERVIN" up -d -f "$d/servin.toml" > "$WORK/out" 2>&1
  after=$(s_running "$p")
  [ "$before" = "$after" ] || { echo "servin no-op up $p changed containers"; cat "$WORK/out"; exit 1; }
  "$SERVIN" down -f "$d/servin.toml" -t 0 > "$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
  [ -z "$(s_running "$p")" ] || { echo "servin down $p left containers"; exit 1; }
  [ -z "$("$SERVIN" ps -aq)" ] || { echo "servin down $p left stopped containers"; exit 1; }
  "$PC" -f "$d/compose.yaml" up -d > "$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
  before=$(p_running "$p")
  [ "$(grep -c . <<<"$before")" = "$n" ] || { echo "podman-compose up $p: want $n running, got:"; echo "$before"; tail -20 "$WORK/out"; exit 1; }
  "$PC" -f "$d/compose.yaml" up -d > "$WORK/out" 2>&1
  after=$(p_running "$p")
  [ "$before" = "$after" ] || echo "note: podman-compose no-op up $p changed containers"
  "$PC" -f "$d/compose.yaml" down -t 0 > "$WORK/out" 2>&1 || { cat "$WORK/out"; exit 1; }
  [ -z "$(p_running "$p")" ] || { echo "podman-compose down $p left containers"; exit 1; }
  echo "checked $p: $n running after up, unchanged after a second up, none after down (both tools)"
}
check p3 3
check p20 20

echo "load before timing: $(cat /proc/loadavg)"
H="hyperfine -N --style basic"

# 1. Cold up.
for p in p3 p20; do
  d=$WORK/$p
  runs=10; [ "$p" = p20 ] && runs=5
  $H --warmup 1 --runs "$runs" --export-json "$WORK/cold-$p.json" \
    --prepare "$d/s-gone" -n "servin up -d ($p, cold)" "$d/s-up" \
    --prepare "$d/p-gone" -n "podman-compose up -d ($p, cold)" "$d/p-up"
done
# The last runs left both projects up under both tools.
[ "$(s_running p20 | grep -c .)" = 20 ] || { echo "servin p20 not up after the cold runs"; exit 1; }
[ "$(p_running p20 | grep -c .)" = 20 ] || { echo "podman-compose p20 not up after the cold runs"; exit 1; }

# 2. No-op up.
$H --warmup 2 --runs 20 \
  -n "servin up -d (p3, no-op)" "$WORK/p3/s-up" \
  -n "servin up -d (p20, no-op)" "$WORK/p20/s-up"
$H --warmup 1 --runs 5 \
  -n "podman-compose up -d (p3, no-op)" "$WORK/p3/p-up" \
  -n "podman-compose up -d (p20, no-op)" "$WORK/p20/p-up"
"$WORK/p20/s-gone"; "$WORK/p20/p-gone"

# 3. Down, default timeouts, main processes ignoring SIGTERM.
d=$WORK/p3
printf '#!/bin/sh\nexec %s down -f %s/servin.toml >/dev/null 2>&1\n' "$SERVIN" "$d" > "$d/s-down"
printf '#!/bin/sh\nexec %s -f %s/compose.yaml down >/dev/null 2>&1\n' "$PC" "$d" > "$d/p-down"
chmod +x "$d/s-down" "$d/p-down"
$H --runs 10 --prepare "$d/s-up" -n "servin down (p3, sleep ignores SIGTERM)" "$d/s-down"
$H --runs 3 --prepare "$d/p-up" -n "podman-compose down (p3, sleep ignores SIGTERM)" "$d/p-down"

# 4. Down of 20 independent services, no stop timeout.
d=$WORK/f20
$H --runs 10 --prepare "$d/s-up" -n "servin down -t 0 (f20, 20 independent services)" "$d/s-gone"
$H --runs 3 --prepare "$d/p-up" -n "podman-compose down -t 0 (f20, 20 independent services)" "$d/p-gone"
echo "load after timing: $(cat /proc/loadavg)"
echo "versions: $("$SERVIN" --version 2>/dev/null | head -1); $("$PC" --version 2>/dev/null | tr '\n' ' ')"
