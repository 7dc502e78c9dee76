#!/usr/bin/env bash
# Removes the host objects of the networks under a servin state root (their
# bridges and firewall tables or chains), for the benchmarks' clean-up: the
# default `bridge` network outlives its engine, as Docker's does.
#
#   bench/remove-networks.sh SERVIN_ROOT
set -uo pipefail
root=${1:?usage: bench/remove-networks.sh SERVIN_ROOT}
for f in "$root"/networks/*/network.json; do
  [ -f "$f" ] || continue
  read -r bridge tag < <(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["bridge"], d["id"][:10])' "$f")
  ip link del "$bridge" 2>/dev/null
  nft delete table inet "servin-$tag" 2>/dev/null
  for chain in FWD IN NAT DNAT RAW; do
    for table in filter nat raw; do
      iptables-save -t "$table" 2>/dev/null | grep -- "-j SERVIN-$tag-$chain" | sed 's/^-A/-D/' |
        while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null; done
      iptables -t "$table" -F "SERVIN-$tag-$chain" 2>/dev/null
      iptables -t "$table" -X "SERVIN-$tag-$chain" 2>/dev/null
    done
  done
done
exit 0
