#!/usr/bin/env bash
# Counts the engine's fsyncs (and their summed time) during a one-file-edit
# rebuild: debug build, 2,000-file context, bench/build.sh's 20-step
# Dockerfile. Needs strace and python3; build first with
# cargo build -p servin -p servin-guest. ENGINE overrides the engine binary.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-$PWD/target}/debug
WORK=$(mktemp -d /tmp/servin-fsync.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock SERVIN_ENGINE=${ENGINE:-$T/servin-guest} HOME=$WORK/home
mkdir -p $HOME
cleanup() { $T/servin system reset -f >/dev/null 2>&1 || true; grep -o "$WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" bench/box:1
$T/servin image import "$WORK/box.tar" >/dev/null
C=$WORK/big; python3 bench/gen-context.py "$C/src" 2000 4096
sed -n '/^FROM bench\/box:1$/,/^CMD \["cat", "\/done"\]$/p' bench/build.sh | tail -n 20 > $C/Dockerfile
$T/servin build -q -t bench/big:1 "$C" >/dev/null
pid=$($T/servin info --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["servin"]["pid"])')
echo "edit" >> "$C/src/d7/f7"
strace -f -c -w -e trace=fsync,fdatasync,syncfs -o $WORK/strace.txt -p $pid & sp=$!
sleep 1
$T/servin build --progress plain -t bench/big:1 "$C" 2> $WORK/edit.log >/dev/null
kill -INT $sp; wait $sp || true
grep -c "DONE" $WORK/edit.log | sed 's/^/steps run: /'
cat $WORK/strace.txt
