#!/usr/bin/env bash
# Bad input to the image build fails with a message naming what is wrong.
# usage: test_build_errors.sh OUTDIR NETD
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$1 netd=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
expect_fail() {  # name, expected message (grep -E), command...
    local name=$1 want=$2; shift 2
    local msg
    if msg=$("$@" 2>&1); then
        echo "FAIL: $name: succeeded"; fail=$((fail + 1)); return
    fi
    if echo "$msg" | grep -qE -- "$want"; then
        echo "PASS: $name"; pass=$((pass + 1))
    else
        echo "FAIL: $name: message does not match /$want/:"; echo "$msg" | sed 's/^/    /'; fail=$((fail + 1))
    fi
}

# Kernel: an option the final config lacks is named.
printf 'CONFIG_NET=y\nCONFIG_V6ROUTER_NO_SUCH_OPTION=y\n' > "$work/frag"
expect_fail "kernel option that did not survive olddefconfig is named" \
    "required option CONFIG_V6ROUTER_NO_SUCH_OPTION=y did not survive" \
    "$top/kernel-config/check-config" "$work/frag" "$out/kernel.config"
# ... and so is one the fragment keeps out ("# CONFIG_... is not set") that the config has.
printf 'CONFIG_NET=y\n# CONFIG_INET is not set\n' > "$work/frag"
expect_fail "kernel option the fragment keeps out but the config has is named" \
    "option CONFIG_INET is to stay unset but the final config has CONFIG_INET=y" \
    "$top/kernel-config/check-config" "$work/frag" "$out/kernel.config"

# ... and an option set to a value (an address here) that the final config has with another.
printf 'CONFIG_NET=y\nCONFIG_PHYSICAL_START=0x400000\n' > "$work/frag"
expect_fail "kernel option set to a value the final config does not have is named" \
    "option CONFIG_PHYSICAL_START=0x400000 did not survive olddefconfig \(final: CONFIG_PHYSICAL_START=0x200000\)" \
    "$top/kernel-config/check-config" "$work/frag" "$out/kernel.config"

# Root filesystem: a package missing from the lock, and one Debian does not have.
cp "$top/rootfs/packages.list" "$work/list"
echo "v6router-no-such-package usr/bin/x" >> "$work/list"
expect_fail "package not in the lock file is named with file:line" \
    "list:[0-9]+: package v6router-no-such-package is not in packages.lock" \
    "$top/image/build-rootfs" --out "$work/o" --list "$work/list"
echo "v6router-no-such-package usr/bin/x" > "$work/list2"
expect_fail "package Debian does not have is named" \
    "package v6router-no-such-package is not available" \
    "$top/image/update-lock" --list "$work/list2" --lock "$work/lock2"
echo "radvd usr/sbin/no-such-binary" > "$work/list3"
expect_fail "file missing from a package is named with file:line" \
    "list3:1: radvd has no file usr/sbin/no-such-binary" \
    "$top/image/build-rootfs" --out "$work/o" --list "$work/list3"

# Data disk: missing and invalid inputs.
ssh-keygen -q -t ed25519 -N '' -f "$work/k"
cfg=$top/image/example/router.conf
expect_fail "mkdata: missing config file is named" "$work/nope.conf: no such readable file" \
    "$top/image/mkdata" --netd "$netd" --config "$work/nope.conf" --authorized-keys "$work/k.pub" -o "$work/d.img"
printf '[lan]\nmac = "52:54:00:12:34:02"\nipv4 = "192.168.7.1/24"\n\n[wan]\nmac = "not-a-mac"\n' > "$work/bad.conf"
expect_fail "mkdata: invalid config names file:line:col" "bad.conf:6:7: wan.mac: 'not-a-mac'" \
    "$top/image/mkdata" --netd "$netd" --config "$work/bad.conf" --authorized-keys "$work/k.pub" -o "$work/d.img"
{ cat "$work/k.pub"; echo "ssh-ed25519 AAAAgarbage user@host"; } > "$work/keys"
expect_fail "mkdata: invalid authorized key names file:line" "keys:2: not an OpenSSH public key" \
    "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/keys" -o "$work/d.img"
ssh-keygen -q -t ecdsa -N '' -f "$work/e"
{ cat "$work/k.pub"; cat "$work/e.pub"; } > "$work/keys2"
expect_fail "mkdata: an ECDSA key (the image's sshd has no OpenSSL) names file:line" \
    "keys2:2: ECDSA key: the router's sshd takes ed25519 keys only" \
    "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/keys2" -o "$work/d.img"
expect_fail "mkdata: private key instead of public is refused" "not an OpenSSH public key|private key" \
    "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/k" -o "$work/d.img"
expect_fail "mkdata: invalid hostname" "--hostname 'a;reboot' is not a valid host name" \
    "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/k.pub" --hostname 'a;reboot' -o "$work/d.img"
expect_fail "mkdata: a plain password is not a console password hash" "--console-password-hash: not a" \
    "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/k.pub" --console-password-hash secret -o "$work/d.img"
expect_fail "mkdata: an MD5 crypt hash is refused" "--console-password-hash: not a" \
    "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/k.pub" \
    --console-password-hash "$(openssl passwd -1 -salt abcdefgh secret)" -o "$work/d.img"
[ ! -e "$work/d.img" ] && { echo "PASS: no data disk left behind by failed runs"; pass=$((pass + 1)); } \
    || { echo "FAIL: a failed run left $work/d.img"; fail=$((fail + 1)); }

# And the good case: a disk with the label rcS looks for, holding the config and the key.
if "$top/image/mkdata" --netd "$netd" --config "$cfg" --authorized-keys "$work/k.pub" -o "$work/ok.img" >/dev/null &&
   [ "$(blkid -o value -s LABEL "$work/ok.img")" = routerdata ] &&
   debugfs -R "cat /etc/router.conf" "$work/ok.img" 2>/dev/null | cmp -s - "$cfg" &&
   debugfs -R "cat /ssh/authorized_keys" "$work/ok.img" 2>/dev/null | cmp -s - "$work/k.pub"; then
    echo "PASS: mkdata writes a labelled disk with the config and the key"; pass=$((pass + 1))
else
    echo "FAIL: mkdata good case"; fail=$((fail + 1))
fi
# The he tunnel's CA file must be on the disk or in the image (rootfs.manifest).
he_cfg() {  # ca_file line (may be empty)
    cat "$cfg"
    printf '[tunnel]\nmode = "he"\nremote = "192.0.2.1"\nlocal_ipv6 = "2001:db8:ff::2/64"\n'
    printf 'tunnel_id = "1"\nusername = "u"\nupdate_key = "k"\n%s\n' "$1"
}
he_cfg 'ca_file = "/data/etc/broker-ca.pem"' > "$work/he1.conf"
expect_fail "mkdata: a ca_file on /data that no --file puts there is named with file:line" \
    "he1.conf:[0-9]+: tunnel.ca_file /data/etc/broker-ca.pem is not on this disk: add --file SRC:broker-ca.pem" \
    "$top/image/mkdata" --netd "$netd" --config "$work/he1.conf" --authorized-keys "$work/k.pub" -o "$work/d.img"
he_cfg 'ca_file = "/etc/ssl/no-such-ca.pem"' > "$work/he2.conf"
expect_fail "mkdata: a ca_file the image does not have is named with file:line" \
    "he2.conf:[0-9]+: tunnel.ca_file /etc/ssl/no-such-ca.pem is not in the image" \
    "$top/image/mkdata" --netd "$netd" --config "$work/he2.conf" --authorized-keys "$work/k.pub" \
    --rootfs-manifest "$out/rootfs.manifest" -o "$work/d.img"
he_cfg '' > "$work/he3.conf"
if "$top/image/mkdata" --netd "$netd" --config "$work/he1.conf" --authorized-keys "$work/k.pub" \
       --file "$work/k.pub:broker-ca.pem" -o "$work/d.img" >/dev/null 2>&1 &&
   "$top/image/mkdata" --netd "$netd" --config "$work/he3.conf" --authorized-keys "$work/k.pub" \
       --rootfs-manifest "$out/rootfs.manifest" -o "$work/d.img" >/dev/null 2>&1; then
    echo "PASS: mkdata: a ca_file put on the disk, and the image's own CA bundle, are accepted"; pass=$((pass + 1))
else
    echo "FAIL: mkdata: a ca_file on the disk or in the image was refused"; fail=$((fail + 1))
fi

# The credentials on the disk are root's alone, whoever ran mkdata (here: nobody, when we are
# root): /etc and /ssh 0700, every file in them 0600, uid and gid 0.
hash=$(openssl passwd -6 -salt abcdefgh secret)
cp "$cfg" "$work/cfg.conf"
cp "$work/k.pub" "$work/ca.pem"
chmod 0755 "$work"
chmod 0644 "$work/cfg.conf" "$work/k.pub" "$work/ca.pem"
# The checkout may sit in a directory only root can enter (CI clones into `mktemp -d`): nobody
# runs copies of mkdata and netd.
mkdir -p "$work/bin"
cp "$top/image/mkdata" "$netd" "$work/bin/"
chmod 0755 "$work/bin" "$work/bin/mkdata" "$work/bin/$(basename "$netd")"
mk=("$work/bin/mkdata" --netd "$work/bin/$(basename "$netd")" --config "$work/cfg.conf" --authorized-keys "$work/k.pub"
    --file "$work/ca.pem:ca.pem" --console-password-hash "$hash" -o "$work/owned/d.img")
mkdir -p "$work/owned"
if [ "$(id -u)" = 0 ]; then
    chown nobody "$work/owned"
    run=(setpriv --reuid=nobody --regid=nogroup --clear-groups env TMPDIR="$work/owned" "${mk[@]}")
else
    run=("${mk[@]}")
fi
modes=
if "${run[@]}" >/dev/null 2>"$work/mkdata.err"; then
    for f in /etc /etc/router.conf /etc/hostname /etc/ca.pem /etc/console-password-hash /ssh /ssh/authorized_keys; do
        modes+=$(debugfs -R "stat $f" "$work/owned/d.img" 2>/dev/null |
                 sed -nE 's/.*Mode: +([0-7]+).*/\1/p; s/^User: +([0-9]+) +Group: +([0-9]+).*/ \1:\2/p' | tr -d '\n')" $f;"
    done
fi
want="0700 0:0 /etc;0600 0:0 /etc/router.conf;0600 0:0 /etc/hostname;0600 0:0 /etc/ca.pem;"
want+="0600 0:0 /etc/console-password-hash;0700 0:0 /ssh;0600 0:0 /ssh/authorized_keys;"
if [ "$modes" = "$want" ] &&
   [ "$(debugfs -R "cat /etc/console-password-hash" "$work/owned/d.img" 2>/dev/null)" = "$hash" ]; then
    echo "PASS: mkdata: credentials root's alone (0700/0600, uid 0) whoever ran it; the console hash stored"
    pass=$((pass + 1))
else
    echo "FAIL: mkdata modes and owners: got '$modes'"; sed 's/^/    /' "$work/mkdata.err"; fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
