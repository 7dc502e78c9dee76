#!/usr/bin/env bash
# Benchmark: name resolution latency against servin's DNS server.
#
#   bench/dns.sh [QUERIES]                      # in-process server on 127.0.78.1
#   bench/dns.sh QUERIES SERVER:PORT NAME       # any server, e.g. a network's gateway
#   bench/dns.sh QUERIES SERVER:PORT NAME PID   # from inside the network namespace of PID
#                                               # (a container's process), via nsenter
#
# Sends QUERIES (default 10000) UDP A queries one at a time and prints the
# median and p99 round trip; fails if an answer has no address.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p servin-guest --example dns_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/dns_bench"
if [ $# -ge 4 ]; then
  exec nsenter -t "$4" -n "$BIN" "$1" "$2" "$3"
fi
exec "$BIN" "$@"
