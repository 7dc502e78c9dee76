#!/usr/bin/env bash
# Benchmark: the layer commit of a build step that wrote 1 GB in 100,000
# files, servin's builder against `buildah commit` (Debian's buildah), in
# the same run.
#
#   bench/commit.sh            # RUNS=2 by default
#
# servin: `examples/layer_commit.rs` of servin-guest writes 100 folders of
# 1,000 files of 10,000 bytes into an upper folder on the same filesystem
# as its store, then times `commit_upper` as a build step runs it (the
# layer tar, its digest, synced; the upper folder moved into the snapshot:
# `Take::Move`) and as `servin commit` of a container runs it (the upper
# folder stays the container's, the snapshot is unpacked from the tar:
# `Take::Copy`).
# buildah: a working container from the same busybox image
# (bench/make-box.py, `buildah pull docker-archive:`), the same 100,000
# files written into its mounted root (`buildah mount`, so they land in
# its upper folder as a RUN's would), synced, then `buildah commit` timed.
# Needs: buildah python3 (apt). Honours CARGO_TARGET_DIR.
#
# Why `buildah bud` once failed here with exit 125: the base image was not
# in buildah's own store, and a short name (`bench/box:1`) that is not
# there does not resolve ("short-name ... did not resolve to an alias and
# no unqualified-search registries are defined"). Pulling the image from
# a docker-archive into buildah's store first fixes it; `buildah bud
# --layers` then builds (RUN included) as root with the overlay driver.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p servin-guest --example layer_commit
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
RUNS=${RUNS:-2}
WORK=$(mktemp -d /var/tmp/servin-commit.XXXXXX)
BUILDAH=(buildah --root "$WORK/buildah" --runroot "$WORK/buildah-run" --storage-driver overlay)
cleanup() {
  "${BUILDAH[@]}" umount --all >/dev/null 2>&1 || true
  "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
  "${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true
  grep -o "$WORK[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" bench/box:1
"${BUILDAH[@]}" pull -q "docker-archive:$WORK/box.tar" >/dev/null

# The example's files: 100 folders d000..d099 of f0000..f0999, 10,000
# bytes each, the same bytes as it writes.
fill() {
  python3 - "$1" <<'EOF'
import os, sys
root = sys.argv[1]
data = bytearray((i * 7 % 251) for i in range(10000))
for d in range(100):
    folder = os.path.join(root, f"d{d:03}")
    os.makedirs(folder, exist_ok=True)
    for f in range(1000):
        data[0] = d % 256
        data[1] = f % 256
        with open(os.path.join(folder, f"f{f:04}"), "wb") as out:
            out.write(data)
EOF
}

for n in $(seq "$RUNS"); do
  echo "round $n, servin (examples/layer_commit):"
  "$TARGET/release/examples/layer_commit" "$WORK" | sed 's/^/  /'
  ctr=$("${BUILDAH[@]}" from -q bench/box:1)
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  fill "$mnt/gen"
  sync
  s=$(date +%s%N)
  "${BUILDAH[@]}" commit -q "$ctr" "bench/commit:$n" >/dev/null
  e=$(date +%s%N)
  echo "round $n, buildah commit of the same files: $(( (e - s) / 1000000 )) ms"
  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  "${BUILDAH[@]}" rm "$ctr" >/dev/null
  "${BUILDAH[@]}" rmi -f "bench/commit:$n" >/dev/null
done
