#!/usr/bin/env bash
# Benchmark: the VM's boot, QEMU start to `servin-guest: engine ready` on
# its console (kernel, init, modules, data disk check, network, engine
# answering /_ping), median of 5 boots of an already formatted data disk,
# and QEMU's resident memory 10 s after the engine is ready with no
# containers. Release engine; TCG emulation on this machine (KVM cannot
# run guests here), 2 vCPUs, 1 GiB.
#
#   bench/vm-boot.sh [BOOTS]
#
# It runs tests/vm_boot.rs with SERVIN_BENCH_BOOTS, which after its own
# checks boots the same VM BOOTS more times and prints the figures.
# Needs: qemu-system-x86 linux-image-amd64 e2fsprogs (.ci/install-packages).
set -euo pipefail
cd "$(dirname "$0")/.."
boots=${1:-5}
target=${CARGO_TARGET_DIR:-$PWD/target}
# The guest runs the release engine; the test harness around it (on the
# host, waiting on the console) is the debug build.
cargo build --release --locked -q -p servin-guest
echo "load before: $(uptime)"
SERVIN_TEST_ENGINE=$target/release/servin-guest SERVIN_BENCH_BOOTS=$boots \
  cargo test --locked -q -p servin --test vm_boot -- \
  --exact the_guest_boots_keeps_its_disk_and_powers_off_cleanly --nocapture 2>&1 |
  grep -E '^(vm-boot|first boot|second boot):'
echo "load after: $(uptime)"
