#!/bin/sh
# netd --check as users run it: exit status and the file:line:col of each error.
netd=$1 dir=$2
fail() { echo "FAIL: $*"; exit 1; }
out=$("$netd" --check "$dir/good.conf" 2>&1) || fail "good.conf rejected: $out"
out=$("$netd" --check "$dir/bad_values.conf" 2>&1) && fail "bad_values.conf accepted"
echo "$out" | grep -q "^$dir/bad_values.conf:3:8: lan.ipv4: '192.168.7.1/33'" || fail "no error for line 3: $out"
echo "$out" | grep -q "^$dir/bad_values.conf:4:18: lan.ipv6_prefixes:" || fail "no error for line 4: $out"
echo "$out" | grep -q "^$dir/bad_values.conf:8:10: unknown key 'colour' in \[wan\]" || fail "no error for line 8: $out"
out=$("$netd" --check "$dir/bad_syntax.conf" 2>&1) && fail "bad_syntax.conf accepted"
echo "$out" | grep -q "^$dir/bad_syntax.conf:3:" || fail "syntax error without position: $out"
out=$("$netd" --check "$dir/does-not-exist.conf" 2>&1) && fail "missing file accepted"
echo "$out" | grep -q "does-not-exist.conf: cannot open" || fail "missing file: $out"
echo "netd --check: 4 cases passed"
