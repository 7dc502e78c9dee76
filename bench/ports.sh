#!/usr/bin/env bash
# Benchmark: published ports through servin's userland forwarder against a
# direct connection, same run, on loopback.
#
#   bench/ports.sh [MIB] [ROUND_TRIPS]
#
# A TCP server on 127.0.77.1 stands in for the container; the forwarder
# (servin_guest::ports::publish, on its own thread as in the engine) listens
# on 127.0.77.2. Prints bulk throughput (best of 3, MIB MiB one way, default
# 2048) and the ratio forwarded/direct, the median and p99 of ROUND_TRIPS
# (default 20000) 64-byte request/response round trips on one connection
# and the added median, and the median of a request on a fresh connection.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p servin-guest --example ports_bench
exec "${CARGO_TARGET_DIR:-target}/release/examples/ports_bench" "$@"
