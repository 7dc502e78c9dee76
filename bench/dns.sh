#!/usr/bin/env bash
# Benchmark: name resolution latency against servin's DNS server.
#
#   bench/dns.sh [QUERIES]       # two runs of guest/examples/dns_bench.rs
#   bench/dns.sh QUERIES --server 10.89.0.1:53 --name web --client-netns /proc/PID/ns/net
#                                # any server, asked from a container's namespace
#
# Without options: (1) a DnsServer in the bench process on 127.0.78.1, asked
# over loopback; (2) the server on the host side of a veth pair
# (10.213.78.1) and the client in a network namespace made here (as a
# container asks its network's gateway). QUERIES (default 10000) UDP A
# queries are sent one at a time; prints the median and p99 round trip and
# fails if an answer has no address. Needs root and `ip` for (2).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/veth.sh
QUERIES=${1:-10000}
cargo build --release --locked -q -p servin-guest --example dns_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/dns_bench"
if [ $# -ge 2 ]; then
  exec "$BIN" "$@"
fi

echo "== loopback"
"$BIN" "$QUERIES"

NS=svbench-dns-$$
veth_namespace "$NS" svd$$ 10.213.78
echo "== from a network namespace, over a veth"
"$BIN" "$QUERIES" --listen 10.213.78.1 --client-netns "/run/netns/$NS"
