#!/usr/bin/env bash
# netd's libnftnl batch and `nft -f` of netd's rendered text must leave the kernel in the same
# state: for each config, load one way into namespace A and the other way into namespace B, and
# compare `nft --debug=netlink list ruleset` (every expression, byte for byte; rule handles
# removed). Also checks that a second load replaces the first (same state, not twice the rules),
# and that netd reads the drop counters back per chain (netctl metrics) as the kernel counts.
# usage: firewall_equivalence.sh NETD_FIREWALL_TOOL TESTDATA_DIR
set -euo pipefail
tool=$1
dir=$2
a=fweqa$$
b=fweqb$$
h=fweqh$$
tmp=$(mktemp -d)
ip netns add $a
ip netns add $b
ip netns add $h
trap 'ip netns del $a; ip netns del $b; ip netns del $h; rm -rf "$tmp"' EXIT

listing() { ip netns exec "$1" nft --debug=netlink list ruleset 2>&1 | sed -E 's/^((inet|ip) [a-z0-9_]+ [a-z0-9_]+)( [0-9]+)+$/\1/'; }

# A 10,000-prefix blocklist, as the benchmark uses.
python3 - "$dir/full.conf" > "$tmp/blocklist.conf" <<'PY'
import sys
text = open(sys.argv[1]).read()
prefixes = ", ".join(f'"2001:db8:{i:x}::/48"' for i in range(0, 20000, 2))
print(text.replace('blocklist = [', f'blocklist = [{prefixes}, ', 1))
PY

fail=0
for case in "minimal.conf -" "native.conf -" "full.conf -" "full.conf 192.0.2.1" "$tmp/blocklist.conf -" \
            "../segments.conf 198.18.0.1 main=eth1,guest=eth2,lab=eth2.30"; do
    set -- $case
    conf=$1
    [[ $conf == /* ]] || conf=$dir/$conf
    peer=$2
    lan=${3:-eth1}
    ip netns exec $b "$tool" render "$conf" "$lan" eth0 "$peer" > "$tmp/rules.nft"
    ip netns exec $a "$tool" load "$conf" "$lan" eth0 "$peer" > /dev/null
    ip netns exec $a "$tool" load "$conf" "$lan" eth0 "$peer" > /dev/null
    ip netns exec $b nft -f "$tmp/rules.nft"
    ip netns exec $b nft -f "$tmp/rules.nft"
    if diff <(listing $a) <(listing $b) > "$tmp/diff"; then
        echo "ok: $(basename "$conf") (tunnel peer $peer): $(listing $a | grep -c '^\(inet\|ip\) ') chains and rules, identical"
    else
        echo "FAIL: $(basename "$conf") (tunnel peer $peer): kernel state differs:"
        head -40 "$tmp/diff"
        fail=1
    fi
done

# The drop counters: a host on the LAN link (namespace h) pings the router from a source that is
# not the LAN's. The input chain drops each packet by its source validation rule, and netd's
# reading of the counters (netd-firewall-tool counters, as netctl metrics) sees them all.
ip netns exec $a "$tool" load "$dir/minimal.conf" eth1 eth0 - > /dev/null
ip -n $a link add eth1 type veth peer name p1 netns $h
ip -n $a addr add 192.168.1.1/24 dev eth1
ip -n $a link set eth1 up
ip -n $a route add 10.99.0.0/24 dev eth1
ip -n $h addr add 10.99.0.2/24 dev p1
ip -n $h link set p1 up
ip -n $h route add 192.168.1.0/24 dev p1
before=$(ip netns exec $a "$tool" counters)
ip netns exec $h ping -c 3 -i 0.2 -W 1 192.168.1.1 > /dev/null 2>&1 || true
after=$(ip netns exec $a "$tool" counters)
drops() { awk -v c="$1" '$1 == c { print $2 }' <<< "$2"; }
if [[ $(drops input "$before") == 0 && $(drops forward "$before") == 0 && $(drops input "$after") == 3 ]]; then
    echo "ok: drop counters read back: before: $(tr '\n' ' ' <<< "$before")after 3 spoofed pings: $(tr '\n' ' ' <<< "$after")"
else
    echo "FAIL: drop counters: expected input 0 then 3, forward 0; before: $before; after: $after"
    ip netns exec $a nft list chain inet netd input | grep -v ' 0 bytes' | head -20
    fail=1
fi
exit $fail
