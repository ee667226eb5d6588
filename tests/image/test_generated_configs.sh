#!/usr/bin/env bash
# The generated daemon files against the daemons the image ships: the property test's sample
# file sets (random valid configs, daemons/netd/service_configs_property_test.cc) must pass
# `dnsmasq --test`, `radvd --configtest` and `sshd -t`, run chrooted in the staged root
# filesystem. The stage is not written to: its /run, /data, /tmp and /dev get scratch
# directories bind-mounted over them in a private mount namespace, which takes the mounts
# with it when it ends; a private network namespace keeps everything off the real network.
# radvd 2.19's --configtest does not look the interface up, so none needs to exist.
# usage: test_generated_configs.sh ROUTER_OUT NETD_UNIT_TESTS
set -euo pipefail
out=${1:?usage: test_generated_configs.sh ROUTER_OUT NETD_UNIT_TESTS}
tests=${2:?usage: test_generated_configs.sh ROUTER_OUT NETD_UNIT_TESTS}
stage=$(cd "$out/rootfs.stage" && pwd)
work=$(mktemp -d /tmp/generated-configs.XXXXXX)
trap 'rm -rf "$work"' EXIT

NETD_GENERATED_SAMPLES=$work/samples "$tests" --gtest_filter=ServiceConfigsProperty.WritesSamplesForTheRealDaemons \
    >"$work/gtest.log" 2>&1 || { cat "$work/gtest.log"; exit 1; }
# The three-segment golden files too (daemons/netd/testdata/golden/segments-*).
golden=$(dirname "$0")/../../daemons/netd/testdata/golden
mkdir -p "$work/samples/segments"
for f in dnsmasq.conf radvd.conf sshd_config; do cp "$golden/segments-$f" "$work/samples/segments/$f"; done
cp "$golden/../segments.conf" "$work/samples/segments/router.conf"
n=$(find "$work/samples" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$n" -gt 0 ] || { echo "no samples written"; exit 1; }

# The image's /etc/ssh/sshd_config (which the generated one includes) wants host keys in
# /data/ssh: throwaway ones. sshd -t checks its privilege separation directory /run/sshd.
mkdir -p "$work/run/netd" "$work/run/sshd" "$work/data/ssh" "$work/tmp" "$work/dev"
ssh-keygen -q -t ed25519 -N "" -f "$work/data/ssh/ssh_host_ed25519_key"
touch "$work/run/netd/resolv.wan" "$work/dev/null" "$work/dev/urandom"
mkdir -p "$work/run/netd/hosts"

unshare --mount --net --propagation private bash -s "$stage" "$work" <<'EOF'
set -u
S=$1 W=$2
for d in run data tmp dev; do mount --bind "$W/$d" "$S/$d"; done
for d in null urandom; do mount --bind "/dev/$d" "$S/dev/$d"; done
fail=0
for sample in "$W"/samples/*/; do
    name=$(basename "$sample")
    rm -f "$W/run/netd/radvd.conf"
    cp "$sample"/dnsmasq.conf "$sample"/sshd_config "$W/run/netd/"
    checks=("/usr/sbin/dnsmasq --test -C /run/netd/dnsmasq.conf" "/usr/sbin/sshd -t -f /run/netd/sshd_config")
    # Without a prefix netd runs no radvd (and writes no radvd.conf).
    if [ -f "$sample/radvd.conf" ]; then
        cp "$sample/radvd.conf" "$W/run/netd/"
        checks+=("/usr/sbin/radvd --configtest -C /run/netd/radvd.conf")
    fi
    for check in "${checks[@]}"; do
        if ! msg=$(chroot "$S" $check 2>&1); then
            echo "FAIL: sample $name: $check"
            sed 's/^/    /' <<<"$msg"
            echo "    --- router.conf"; sed 's/^/    /' "$sample/router.conf"
            fail=$((fail + 1))
        fi
    done
done
echo "generated configs: $(ls -d "$W"/samples/*/ | wc -l) samples, $(ls "$W"/samples/*/radvd.conf | wc -l) with radvd, $fail refused"
[ "$fail" -eq 0 ]
EOF
