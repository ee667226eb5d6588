#!/usr/bin/env bash
# netd's libnftnl batch and `nft -f` of netd's rendered text must leave the kernel in the same
# state: for each config, load one way into namespace A and the other way into namespace B, and
# compare `nft --debug=netlink list ruleset` (every expression, byte for byte; rule handles
# removed). Also checks that a second load replaces the first (same state, not twice the rules).
# usage: firewall_equivalence.sh NETD_FIREWALL_TOOL TESTDATA_DIR
set -euo pipefail
tool=$1
dir=$2
a=fweqa$$
b=fweqb$$
tmp=$(mktemp -d)
ip netns add $a
ip netns add $b
trap 'ip netns del $a; ip netns del $b; rm -rf "$tmp"' EXIT

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
    "$tool" render "$conf" "$lan" eth0 "$peer" > "$tmp/rules.nft"
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
exit $fail
