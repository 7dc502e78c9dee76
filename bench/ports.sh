#!/usr/bin/env bash
# Benchmark: published ports through servin's userland forwarder against a
# direct connection, same run.
#
#   bench/ports.sh [MIB] [ROUND_TRIPS]
#
# Two runs of guest/examples/ports_bench.rs:
#   1. loopback: the "container" is a TCP server on 127.0.77.1, the
#      forwarder (servin_guest::ports::publish, on its own thread as in the
#      engine) listens on 127.0.77.2;
#   2. veth: the servers run in a network namespace made here, on
#      10.213.77.2 behind a veth pair (as a container's address is), and
#      "direct" connects to that address from the host; the forwarder still
#      listens on 127.0.77.2. Needs root and `ip`.
# Each prints bulk throughput (best of 3, MIB MiB one way, default 2048) and
# the ratio forwarded/direct, the median and p99 of ROUND_TRIPS (default
# 20000) 64-byte request/response round trips on one connection and the
# added median, and the median of a request on a fresh connection.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/veth.sh
MIB=${1:-2048}
TRIPS=${2:-20000}
cargo build --release --locked -q -p servin-guest --example ports_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/ports_bench"

echo "== loopback"
"$BIN" "$MIB" "$TRIPS"

NS=svbench-$$
veth_namespace "$NS" svb$$ 10.213.77
echo "== veth (network namespace $NS)"
"$BIN" "$MIB" "$TRIPS" "/run/netns/$NS" 10.213.77.2
