# Sourced by the benchmarks that need a network namespace behind a veth
# pair, as a container sits behind its network's bridge.
#
#   veth_namespace NS HOSTIF PREFIX
#
# Makes namespace NS with `eth0` at PREFIX.2/30, the peer HOSTIF on the host
# at PREFIX.1/30, both up (and the namespace's loopback), and removes them
# when the script exits. Needs root and `ip`.
veth_namespace() {
  VETH_NS=$1
  VETH_HOSTIF=$2
  local prefix=$3
  trap 'ip link del "$VETH_HOSTIF" 2>/dev/null || true; ip netns del "$VETH_NS" 2>/dev/null || true' EXIT
  ip netns add "$VETH_NS"
  ip link add "$VETH_HOSTIF" type veth peer name eth0 netns "$VETH_NS"
  ip addr add "$prefix.1/30" dev "$VETH_HOSTIF"
  ip link set "$VETH_HOSTIF" up
  ip -n "$VETH_NS" addr add "$prefix.2/30" dev eth0
  ip -n "$VETH_NS" link set eth0 up
  ip -n "$VETH_NS" link set lo up
}
