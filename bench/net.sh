#!/usr/bin/env bash
# Benchmark: networks through a real engine, same run.
#
#   bench/net.sh [MIB] [ROUND_TRIPS] [QUERIES]
#
# Starts an engine of its own, creates a network `benchnet`, runs a
# container `srv` on it with ports 5001 and 5002 published on 127.0.0.1,
# and a container `web` beside it. Then:
#   1. guest/examples/ports_bench.rs puts a sink server (5001) and an echo
#      server (5002) in srv's network namespace, on its address, and times
#      the same client directly against that address and through the ports
#      the engine published: bulk throughput (best of 3, MIB MiB, default
#      2048) and its ratio, the median of ROUND_TRIPS (default 20000)
#      64-byte round trips on one connection and the added median, and a
#      request on a fresh connection;
#      Published ports take the kernel's DNAT path unless the engine runs
#      with SERVIN_PORT_FORWARD=userland (pass it in the environment); the
#      path in use is printed.
#   2. guest/examples/dns_bench.rs asks the engine's DNS server, from srv's
#      network namespace (as a process in srv does, at the address in its
#      resolv.conf), for `web` QUERIES times (default 10000): median and p99.
# Needs root, python3, tini and runc (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-2048}
TRIPS=${2:-20000}
QUERIES=${3:-10000}
cargo build --release --locked -q -p servin -p servin-guest
cargo build --release --locked -q -p servin-guest --example ports_bench --example dns_bench
T="${CARGO_TARGET_DIR:-$PWD/target}/release"
SERVIN=$T/servin
WORK=$(mktemp -d /tmp/servin-netbench.XXXXXX)
export SERVIN_ROOT=$WORK/servin SERVIN_HOST=unix://$WORK/engine.sock
export SERVIN_ENGINE=$T/servin-guest HOME=$WORK/home
IMAGE=bench/box:1
cleanup() {
  "$SERVIN" rm -f --all >/dev/null 2>&1 || true
  "$SERVIN" network rm benchnet >/dev/null 2>&1 || true
  if [ -f "$WORK/engine.pid" ]; then kill "$(cat "$WORK/engine.pid")" 2>/dev/null || true; fi
  sleep 0.5
  bench/remove-networks.sh "$WORK/servin"
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HOME"

python3 bench/make-box.py "$WORK/box.tar" "$WORK/rootfs" "$IMAGE" > /dev/null
"$SERVIN" info --format json > "$WORK/info.json"   # starts the engine
python3 -c "import json; print(json.load(open('$WORK/info.json'))['servin']['pid'])" > "$WORK/engine.pid"
"$SERVIN" image import "$WORK/box.tar" > /dev/null
"$SERVIN" network create benchnet > /dev/null
"$SERVIN" run -d --name srv --network benchnet -p 127.0.0.1::5001 -p 127.0.0.1::5002 "$IMAGE" sleep 3600 > /dev/null
"$SERVIN" run -d --name web --network benchnet "$IMAGE" sleep 3600 > /dev/null
read -r PID IP GW SINK ECHO < <("$SERVIN" inspect srv | python3 -c '
import json, sys
c = json.load(sys.stdin)[0]
n = c["NetworkSettings"]["Networks"]["benchnet"]
p = c["NetworkSettings"]["Ports"]
host = lambda k: "%s:%s" % (p[k][0]["HostIp"], p[k][0]["HostPort"])
print(c["State"]["Pid"], n["IPAddress"], n["Gateway"], host("5001/tcp"), host("5002/tcp"))
')
echo "srv: pid $PID, address $IP, published 5001 at $SINK and 5002 at $ECHO"
TAG=$("$SERVIN" network inspect benchnet | python3 -c '
import json, sys
n = json.load(sys.stdin)
print((n[0] if isinstance(n, list) else n)["Id"][:10])
')
# (Read whole first: with pipefail, `grep -q` quitting early fails the pipe.)
RULES="$(nft list table inet "servin-$TAG" 2>/dev/null || true)$(iptables-save -t nat 2>/dev/null || true)"
if grep -q "elements = " <<<"$RULES" || grep -q -- "-A SERVIN-$TAG-DNAT " <<<"$RULES"; then
  echo "published ports: kernel DNAT (the userland forwarder holds the host ports)"
else
  echo "published ports: userland forwarder (SERVIN_PORT_FORWARD=${SERVIN_PORT_FORWARD:-kernel})"
fi

echo "== published port against the container's address"
"$T/examples/ports_bench" "$MIB" "$TRIPS" "/proc/$PID/ns/net" "$IP" "$SINK" "$ECHO"

echo "== name resolution from srv's namespace (resolv.conf: $(grep nameserver "$SERVIN_ROOT"/containers/*/resolv.conf 2>/dev/null | head -1 | awk '{print $2}'))"
"$T/examples/dns_bench" "$QUERIES" --server "$GW:53" --name web --client-netns "/proc/$PID/ns/net"
