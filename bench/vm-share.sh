#!/usr/bin/env bash
# Benchmark: a shared host folder (9p) against the VM's own disk, read and
# written from a container in VM mode, under whatever accelerator the VM
# gets (here TCG).
#
#   bench/vm-share.sh [MB=100] [FILES=10000]
#
# The VM shares one folder of a temporary directory (vm-config.json
# `shares`), holding a file of MB MiB of random bytes and a tree of FILES
# small files (100 per folder). One privileged container binds the share
# at /share and a volume at /disk (the VM's data disk, ext4), copies both
# there, then, with the guest's caches dropped before each read:
#   - `cat` of the big file, from the share and from the disk;
#   - `find` over the tree, twice (cold, then warm), from both;
#   - `dd` of MB MiB of zeros written to each (with the final fsync);
# the share measured once per 9p cache mode (MODES, default
# "mmap loose none"; each a VM start with SERVIN_VM_SHARE_CACHE=MODE).
# The host's page cache holds the shared files throughout (they were just
# written): the figures are the 9p transport's, not the host's disk.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-100}
FILES=${2:-10000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q -p servin
S="$CARGO_TARGET_DIR/debug/servin"
# SERVIN_ENGINE, when set, names another engine build for the guest.
if [ -z "${SERVIN_ENGINE:-}" ]; then
  cargo build -q --release -p servin-guest
  export SERVIN_ENGINE=$CARGO_TARGET_DIR/release/servin-guest
fi
TMP=$(mktemp -d)
export SERVIN_VM_DIR=$TMP/vm SERVIN_MODE=vm SERVIN_VM_ACCEL=${SERVIN_VM_ACCEL:-tcg}
trap '"$S" vm stop >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT

DATA=$TMP/data
mkdir -p "$DATA/tree" "$SERVIN_VM_DIR"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$DATA/big"
python3 - "$DATA/tree" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 100:03}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY
cat >"$SERVIN_VM_DIR/vm-config.json" <<EOF
{ "cpus": 2, "memory_mib": 2048, "disk_gib": 8, "shares": ["$DATA"] }
EOF

BOX_APPLETS=find,cp,wc,mkdir,time,sync,dd,rm,grep,mount python3 bench/make-box.py "$TMP/box.tar" "$TMP/rootfs" bench/sharebox:1 >/dev/null
# `time` prints "real 0m 1.23s" on stderr; each figure is one line.
SCRIPT='
  drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
  t() { label=$1; shift; drop; s=$( { time "$@" >/dev/null; } 2>&1 | grep real ); echo "$label: $s"; }
  tt() { label=$1; shift; drop; a=$( { time "$@" >/dev/null; } 2>&1 | grep real ); b=$( { time "$@" >/dev/null; } 2>&1 | grep real ); echo "$label: cold $a, warm $b"; }
'
first=1
for mode in ${MODES:-mmap loose none}; do
  "$S" vm stop >/dev/null 2>&1 || true
  SERVIN_VM_SHARE_CACHE=$mode "$S" vm start 2>/dev/null
  if [ "$first" = 1 ]; then
    "$S" image import "$TMP/box.tar" >/dev/null
    echo "== $MB MiB file, $FILES files; $("$S" vm info | grep -E 'Accelerator|CPUs' | tr -s ' ' | tr '\n' ' ')"
    echo "-- the VM's disk (ext4, a volume); load: $(uptime | sed 's/.*load/load/')"
    "$S" run --rm --privileged -v "$DATA:/share" -v sharebench:/disk bench/sharebox:1 sh -c "$SCRIPT"'
      cp /share/big /disk/big && cp -a /share/tree /disk/tree
      t "cat big" cat /disk/big
      tt "find tree" find /disk/tree
      t "write '"$MB"' MiB" dd if=/dev/zero of=/disk/w bs=1M count='"$MB"' conv=fsync
    '
    first=0
  fi
  echo "-- the share, cache=$mode; load: $(uptime | sed 's/.*load/load/')"
  "$S" run --rm --privileged -v "$DATA:/share" bench/sharebox:1 sh -c "$SCRIPT"'
    echo "mount: $(mount | grep " /share ")"
    t "cat big" cat /share/big
    tt "find tree" find /share/tree
    echo "files found: $(find /share/tree -type f | wc -l)"
    t "write '"$MB"' MiB" dd if=/dev/zero of=/share/w bs=1M count='"$MB"' conv=fsync
    rm -f /share/w
  '
done
