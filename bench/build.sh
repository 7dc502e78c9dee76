#!/usr/bin/env bash
# Benchmark: building images, servin's own builder against BuildKit (as
# embedded in Debian's docker.io dockerd, DOCKER_BUILDKIT=1) and
# `buildah bud --layers`, in the same run.
#
#   bench/build.sh
#
# 1. cold build of a 15-step multi-stage Dockerfile that all three accept,
#    from a local base image (bench/make-box.py), no cache (hyperfine);
# 2. fully cached rebuild of a 20-step Dockerfile whose context holds
#    50,000 files, 200 MB (bench/gen-context.py), servin against BuildKit;
# 3. the same rebuild after one source file changed: wall time, the time
#    of the RUN steps that reran, the builder's own overhead (the
#    difference), the bytes servin sent (its plain progress says), and the
#    step lines that ran.
# Before timing, one plain build shows that every step ran.
# dockerd runs on its own socket and data root and is stopped at the end.
# Needs: hyperfine docker.io python3 (apt). Honours CARGO_TARGET_DIR.
# buildah is measured by bench/commit.sh (the layer commit figure).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p servin -p servin-guest
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
SERVIN=$TARGET/release/servin
WORK=$(mktemp -d /tmp/servin-bench.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$TARGET/release/servin-guest HOME=$WORK/home
DSOCK=$WORK/docker.sock
DOCKER=(/usr/bin/docker -H "unix://$DSOCK")
BUILDAH=(buildah --root "$WORK/buildah" --runroot "$WORK/buildah-run" --storage-driver overlay)
cleanup() {
  "$SERVIN" system reset -f >/dev/null 2>&1 || true
  if [ -f "$WORK/docker.pid" ]; then kill "$(cat "$WORK/docker.pid")" 2>/dev/null || true; sleep 2; fi
  "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
  grep -o "$WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del docker0 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME"

dockerd --host "unix://$DSOCK" --data-root "$WORK/docker" --exec-root "$WORK/docker-exec" \
  --pidfile "$WORK/docker.pid" --bip 172.31.250.1/24 --iptables=false --ip6tables=false \
  > "$WORK/dockerd.log" 2>&1 &
for _ in $(seq 100); do "${DOCKER[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" bench/box:1
"$SERVIN" image import "$WORK/box.tar" >/dev/null
"${DOCKER[@]}" load -q -i "$WORK/box.tar" >/dev/null

# 1. Cold build, 15 steps, two stages (busybox applets: sh, echo, cat).
C1=$WORK/cold
mkdir -p "$C1/src"
for i in $(seq 20); do echo "file $i" > "$C1/src/f$i.txt"; done
cat > "$C1/Dockerfile" <<'EOF'
FROM bench/box:1 AS build
WORKDIR /src
COPY src/ ./
RUN cat f1.txt f2.txt f3.txt > /out.txt
RUN for i in 1 2 3 4 5 6 7 8; do echo $i > /gen-$i; done
ENV MODE=bench
ARG V=1
RUN echo $V > /v
FROM bench/box:1
COPY --from=build /out.txt /app/out.txt
COPY --from=build /v /app/v
WORKDIR /app
ENV A=1
LABEL bench=yes
EXPOSE 8080
CMD ["cat", "/app/out.txt"]
EOF
"$SERVIN" build --progress plain --no-cache -t bench/cold:1 "$C1" 2>&1 | grep -c ' DONE ' | sed 's/^/servin steps run: /'
hyperfine -N --warmup 1 --runs 5 --export-markdown "$WORK/cold.md" \
  -n "servin build --no-cache" "$SERVIN build -q --no-cache -t bench/cold:1 $C1" \
  -n "BuildKit (docker build --no-cache)" "env DOCKER_BUILDKIT=1 ${DOCKER[*]} build -q --no-cache -t bench/cold:1 $C1"
cat "$WORK/cold.md"

# 2. Fully cached rebuild: 20 steps, a 50,000-file, 200 MB context.
C2=$WORK/big
python3 bench/gen-context.py "$C2/src" 50000 4096
cat > "$C2/Dockerfile" <<'EOF'
FROM bench/box:1
WORKDIR /app
COPY src/ ./src/
RUN cat src/d0/f0 > /first
ENV A=1
ENV B=2
ARG V=1
RUN echo $V > /v
LABEL one=1
LABEL two=2
EXPOSE 80
EXPOSE 443
ENV C=3
RUN echo done > /done
WORKDIR /app/src
USER 0
STOPSIGNAL SIGTERM
VOLUME /data
ENV D=4
CMD ["cat", "/done"]
EOF
"$SERVIN" build -q -t bench/big:1 "$C2" >/dev/null
env DOCKER_BUILDKIT=1 "${DOCKER[@]}" build -q -t bench/big:1 "$C2" >/dev/null
hyperfine -N --warmup 2 --runs 10 --export-markdown "$WORK/cached.md" \
  -n "servin build (cached)" "$SERVIN build -q -t bench/big:1 $C2" \
  -n "BuildKit docker build (cached)" "env DOCKER_BUILDKIT=1 ${DOCKER[*]} build -q -t bench/big:1 $C2"
cat "$WORK/cached.md"

# 3. One source file edited: wall time and what servin sent. Each tool's
# edits run back to back, servin's first, each series after 10 s of quiet:
# right after a BuildKit build its daemon is still busy for a while, which
# would slow whatever runs next.
sleep 10
for n in 1 2 3 4 5; do
  echo "edit $n" >> "$C2/src/d7/f7"
  s=$(date +%s%N)
  "$SERVIN" build --progress plain -t bench/big:1 "$C2" 2> "$WORK/edit.log" >/dev/null
  e=$(date +%s%N)
  runs=$(grep -E '^\[stage-0 (4|8|14)/20\] DONE' "$WORK/edit.log" | awk '{s+=$NF} END {print s+0}')
  sent=$(grep -o 'sent [0-9]* files\? ([0-9]* bytes)' "$WORK/edit.log")
  wall=$(( (e - s) / 1000000 ))
  overhead=$(awk -v w="$wall" -v r="$runs" 'BEGIN {printf "%d", w - r * 1000}')
  echo "servin edit $n: wall $wall ms, RUN steps ${runs}s, overhead $overhead ms, $sent"
  grep -E '^\[stage-0 [0-9]+/20\]' "$WORK/edit.log" | grep -v -E ' (CACHED|runs:.*)$' | grep -E 'DONE|previous result' || true
done
sleep 10
for n in 1 2 3 4 5; do
  echo "buildkit edit $n" >> "$C2/src/d7/f7"
  s=$(date +%s%N)
  env DOCKER_BUILDKIT=1 "${DOCKER[@]}" build -q -t bench/big:1 "$C2" >/dev/null
  e=$(date +%s%N)
  echo "BuildKit edit $n: wall $(( (e - s) / 1000000 )) ms"
done
