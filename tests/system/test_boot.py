#!/usr/bin/env python3
"""Boot test: the built image under QEMU, three boots on two fresh data disks.

  boot 1 (disk A, first boot): our kernel, read-only root, read-write /data, rcS ran, syslog
          works, SSH host keys made on /data; then poweroff unmounts /data cleanly.
  boot 2 (disk A again): no journal recovery needed, the same host keys.
  boot 3 (disk B, with a tunnel's credentials, a CA file and a console password): different
          host keys from disk A; every file under /data and /run that holds a credential is
          0600 and root's; login on the console asks for the password.
  boot 1 also prints the privileges of netd's children (/proc/PID/status) and checks those
  netd restricts, and that the console says which login policy is in force.

usage: test_boot.py OUTDIR NETD   (OUTDIR holds bzImage, rootfs.squashfs, kernel.config)
Prints figures (guest uptime at init and at ready) and ends with 'N passed, N failed'.
"""
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402

top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def config_lines(text):
    return sorted(l for l in text.splitlines() if l.startswith("CONFIG_"))


# Disk B's secrets: a tunnel's update key in router.conf and a console password. The tunnel
# never comes up here (no WAN): only where its credentials end up is checked.
SECRET_KEY = "boottest-update-key-5e1f"
CONSOLE_PASSWORD = "boottest-console"
CONSOLE_SALT = "bootsalt"
TUNNEL = (f'\n[tunnel]\nmode = "he"\nremote = "198.18.0.1"\nlocal_ipv6 = "2001:db8:1::2/64"\n'
          f'tunnel_id = "424242"\nusername = "alice"\nupdate_key = "{SECRET_KEY}"\n'
          f'ca_file = "/data/etc/broker-ca.pem"\n')


def make_disk(work, name, netd, pub, config=None, extra=()):
    img = os.path.join(work, name)
    subprocess.run([os.path.join(top, "image/mkdata"), "--netd", netd, "--config",
                    config or os.path.join(top, "image/example/router.conf"), "--authorized-keys", pub,
                    "--hostname", "router", "-o", img, *extra], check=True, capture_output=True)
    return img


def make_secret_disk(work, netd, pub):
    conf = os.path.join(work, "secret.conf")
    with open(os.path.join(top, "image/example/router.conf")) as f, open(conf, "w") as out:
        out.write(f.read() + TUNNEL)
    ca = os.path.join(work, "ca.pem")
    with open(ca, "w") as f:
        f.write("not a secret, but stored as the other files in /data/etc\n")
    hashed = subprocess.run(["openssl", "passwd", "-6", "-salt", CONSOLE_SALT, CONSOLE_PASSWORD], check=True,
                            capture_output=True, text=True).stdout.strip()
    return make_disk(work, "b.img", netd, pub, conf,
                     ["--file", f"{ca}:broker-ca.pem", "--console-password-hash", hashed])


def boot(out, disk, log, password=None):
    vm = rl.RouterVM(out, disk, log_path=log)
    vm.start()
    try:
        return wait_ready(vm, disk, password)
    except rl.BootError:
        print("---- console (last lines) ----\n" + vm.console_tail(40))
        vm.kill()
        raise


def wait_ready(vm, disk, password=None):
    m = vm.expect(r"rcS: init started at uptime ([\d.]+) s", 120)
    init_at = float(m.group(1))
    m = vm.expect(r"netd: router ready at uptime ([\d.]+) s", 120)
    ready_at = float(m.group(1))
    if password is not None:
        # A wrong password first: it must not get in.
        vm.send("\n")
        vm.expect(r"login: ", 120)
        vm.send("root\n")
        vm.expect(r"Password: ", 30)
        vm.send("not-the-password\n")
        vm.expect(r"Login incorrect", 30)
    vm.login(password=password)
    wall = time.monotonic() - vm.started_at
    print(f"figures: {os.path.basename(disk)}: guest uptime at init {init_at:.2f} s, "
          f"at ready {ready_at:.2f} s; login prompt after {wall:.1f} s wall clock (TCG)", flush=True)
    return vm


def host_key(vm):
    rc, out = vm.run("cat /data/ssh/ssh_host_ed25519_key.pub")
    return out.split()[1] if rc == 0 and len(out.split()) >= 2 else None


# /proc/PID/status of every process (and the last word of its command line: a log
# forwarder's service), then netd's and its services' PIDs from their records.
PRIVS_CMD = (
    "for d in /proc/[0-9]*; do s=$(awk -v p=${d#/proc/} "
    "'$1 ~ /^(Name|PPid|CapPrm|CapEff|CapBnd|NoNewPrivs):$/ { v[$1] = $2 } "
    "$1 ~ /^(Uid|Gid):$/ { v[$1] = $2 \"/\" $3 } "
    "END { print p, v[\"Name:\"], v[\"PPid:\"], v[\"Uid:\"], v[\"Gid:\"], "
    "v[\"CapEff:\"], v[\"CapPrm:\"], v[\"CapBnd:\"], v[\"NoNewPrivs:\"] }' $d/status 2>/dev/null) && "
    "echo \"$s $(tr '\\000' '\\n' < $d/cmdline 2>/dev/null | tail -n 1)\"; done; "
    "echo @@; for f in /run/netd/services/*.pid; do n=${f##*/}; echo ${n%.pid} $(head -n1 $f | cut -d' ' -f1); done; "
    "echo netd $(pidof netd)")
TIME_AND_PORT = "0000000002000400"  # CAP_SYS_TIME, CAP_NET_BIND_SERVICE
RAW_AND_PORT = "0000000000002400"   # CAP_NET_RAW, CAP_NET_BIND_SERVICE
NONE = "0" * 16


def privileges(vm):
    """{role: row} for netd and the processes under it; prints the table. Roles: the service
    names, 'logger <service>' (its output forwarder), '<service> child' (a process the service
    started itself, such as radvd's privileged helper)."""
    rc, out = vm.run(PRIVS_CMD, timeout=60)
    procs_txt, _, names_txt = out.partition("@@")
    keys = ["pid", "name", "ppid", "uid", "gid", "eff", "prm", "bnd", "nnp", "last"]
    procs = {}
    for line in procs_txt.splitlines():
        f = line.split()
        if len(f) >= 9:
            procs[f[0]] = dict(zip(keys, f))
    service = {}
    for line in names_txt.splitlines():
        f = line.split()
        if len(f) == 2:
            service[f[1]] = f[0]
    netd = next((p for p, n in service.items() if n == "netd"), None)
    rows = {}
    for p, r in procs.items():
        if p == netd:
            rows["netd"] = r
        elif r["ppid"] == netd:
            rows[service.get(p) or f"{r['name']} {r.get('last', '?')}"] = r
        elif r["ppid"] in service and procs.get(r["ppid"], {}).get("ppid") == netd:
            rows[service[r["ppid"]] + " child"] = r
    print(f"{'process':<15} {'pid':>4} {'name':<8} {'Uid r/e':<9} {'Gid r/e':<11} {'CapEff':<16} "
          f"{'CapPrm':<16} {'CapBnd':<16} NoNewPrivs")
    for role in sorted(rows):
        r = rows[role]
        print(f"{role:<15} {r['pid']:>4} {r['name']:<8} {r['uid']:<9} {r['gid']:<11} {r['eff']:<16} "
              f"{r['prm']:<16} {r['bnd']:<16} {r['nnp']}")
    return rows


def check_privileges(rows):
    def has(role, **want):
        r = rows.get(role)
        return r is not None and all(r[k] == v for k, v in want.items()), str(r)
    ok, d = has("ntpd", uid="0/0", eff=TIME_AND_PORT, prm=TIME_AND_PORT, bnd=TIME_AND_PORT, nnp="1")
    check("ntpd (BusyBox, cannot drop root) holds only CAP_SYS_TIME and CAP_NET_BIND_SERVICE, no_new_privs", ok, d)
    ok, d = has("udhcpc", uid="0/0", eff=RAW_AND_PORT, prm=RAW_AND_PORT, bnd=RAW_AND_PORT, nnp="1")
    check("udhcpc (BusyBox, cannot drop root) holds only CAP_NET_RAW and CAP_NET_BIND_SERVICE, no_new_privs", ok, d)
    # dnsmasq's ends at once: dnsmasq closes its output and logs to syslog itself.
    loggers = {k: v for k, v in rows.items() if k.startswith("logger ")}
    check("the log forwarders hold no capability and no_new_privs",
          len(loggers) >= 4 and all(r["eff"] == r["prm"] == r["bnd"] == NONE and r["nnp"] == "1"
                                    for r in loggers.values()), str(loggers))
    d = rows.get("dnsmasq", {})
    check("dnsmasq runs as user dnsmasq with at most NET_BIND_SERVICE, NET_ADMIN, NET_RAW",
          d.get("uid") == "101/101" and int(d.get("eff", "f" * 16), 16) & ~0x3400 == 0, str(d))
    d = rows.get("radvd", {})
    check("radvd runs as user radvd without capabilities", d.get("uid") == "102/102" and d.get("eff") == NONE, str(d))


# Every file under /data and /run, with mode and owner, and which of them hold a secret
# (nothing is mounted below either; BusyBox find has no -xdev).
CRED_CMD = (f"find /data /run | while read -r f; do stat -c '%a %U:%G %n' \"$f\"; done; echo @@; "
            f"find /data /run -type f | while read -r f; do "
            f"grep -q -e '{SECRET_KEY}' -e '{CONSOLE_SALT}' \"$f\" 2>/dev/null && stat -c '%a %U:%G %n' \"$f\"; done")


def check_credentials(vm):
    rc, out = vm.run(CRED_CMD, timeout=120)
    listing, _, holders = out.partition("@@")
    print("---- /data and /run (mode owner path) ----\n" + listing.strip())
    held = {l.split()[2]: l.split()[:2] for l in holders.splitlines() if len(l.split()) == 3}
    want = {"/data/etc/router.conf", "/data/etc/console-password-hash", "/run/netd/running.conf", "/run/shadow"}
    # The configuration history (netctl history) keeps whole configurations, credentials included.
    history = {p for p in held if re.fullmatch(r"/data/state/history/r\d{6}\.conf", p)}
    check("the files holding the tunnel key or the console hash are exactly router.conf, the hash, "
          "netd's running.conf, the shadow copy and the configuration history",
          set(held) - history == want and bool(history), str(held))
    check("every one of them is 0600 root:root", all(v == ["600", "root:root"] for v in held.values()), str(held))
    modes = {l.split()[2]: l.split()[0] for l in listing.splitlines() if len(l.split()) == 3}
    check("/data/etc, /data/ssh and the history are 0700, everything in /data/etc and every private host key 0600",
          modes.get("/data/etc") == modes.get("/data/ssh") == modes.get("/data/state/history") == "700"
          and all(m == "600" for p, m in modes.items()
                  if p.startswith("/data/etc/") or (p.startswith("/data/ssh/") and not p.endswith(".pub"))), listing)


def fsck_clean(disk):
    dump = subprocess.run(["dumpe2fs", "-h", disk], capture_output=True, text=True).stdout
    state = re.search(r"Filesystem state:\s*(\S+)", dump)
    return (state and state.group(1) == "clean" and "needs_recovery" not in dump), dump


def main():
    out, netd = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="boottest.")
    key = os.path.join(work, "admin")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    disk_a = make_disk(work, "a.img", netd, key + ".pub")
    disk_b = make_secret_disk(work, netd, key + ".pub")
    vm = None
    try:
        # --- boot 1 ---
        vm = boot(out, disk_a, os.path.join(work, "boot1.log"))
        rc, cfg = vm.run("zcat /proc/config.gz", timeout=60)
        with open(os.path.join(out, "kernel.config")) as f:
            built = f.read()
        check("running kernel config is the one built from kernel-config/",
              rc == 0 and config_lines(cfg) == config_lines(built),
              f"rc={rc}, {len(config_lines(cfg))} vs {len(config_lines(built))} CONFIG lines")
        frag = [l for l in open(os.path.join(top, "kernel-config/router.config")) if l.startswith("CONFIG_")]
        missing = [l.strip() for l in frag if l.strip() not in cfg.splitlines()]
        check("every option of the fragment is set in the running kernel", not missing, str(missing))
        rc, mounts = vm.run("cat /proc/mounts")
        check("root is squashfs mounted read-only", re.search(r"^\S+ / squashfs ro[,\s]", mounts, re.M) is not None, mounts)
        check("/data is ext4 mounted read-write", re.search(r"^\S+ /data ext4 rw[,\s]", mounts, re.M) is not None, mounts)
        rc, _ = vm.run("touch /etc/probe")
        check("root filesystem refuses writes", rc != 0)
        check("init ran rcS", "rcS: data disk" in vm.buf and "rcS: done" in vm.buf)
        check("the console says root logs in without a password, and how to set one",
              "rcS: console: root login without password (set one with mkdata --console-password-hash)" in vm.buf,
              vm.console_tail(30))
        check_privileges(privileges(vm))
        # netd, started by init, supervises the four daemons (the netd issue adds netctl status).
        rc, ps = vm.run("for s in dnsmasq radvd ntpd sshd; do p=$(cat /run/netd/services/$s.pid | head -1 | cut -d' ' -f1); "
                        "echo $s $p $(readlink /proc/$p/exe); done")
        running = {l.split()[0]: l.split()[2] for l in ps.splitlines() if len(l.split()) == 3}
        check("init started netd and netd runs dnsmasq, radvd, ntpd and sshd",
              running == {"dnsmasq": "/usr/sbin/dnsmasq", "radvd": "/usr/sbin/radvd", "ntpd": "/bin/busybox",
                          "sshd": "/usr/sbin/sshd"}, ps + vm.console_tail(10))
        rc, addrs = vm.run("ip addr show eth1")
        check("netd put the configured LAN addresses on the LAN NIC (found by MAC)",
              "192.168.7.1/24" in addrs and "2001:db8:7::1/64" in addrs, addrs)
        # The image's kernel takes the flowtable (kernel-config: NF_FLOW_TABLE): netd's ruleset
        # has it on the WAN and LAN NICs, and the forward chain offloads to it.
        rc, fw = vm.run("nft list ruleset")
        ft = re.search(r"flowtable ft \{\s*hook ingress priority filter\s*devices = \{ ([^}]*) \}", fw)
        check("netd's ruleset is loaded with its flowtable on eth0 and eth1",
              ft is not None and sorted(ft.group(1).split(", ")) == ["eth0", "eth1"] and "flow add @ft" in fw,
              fw[:800])
        rc, _ = vm.run("logger -t boottest marker-$$-syslog && logread | grep -q 'boottest.*marker-.*-syslog' && logread | grep -q 'rcS: syslog started'")
        check("syslog receives messages (logger -> logread)", rc == 0)
        rc, ls = vm.run("ls /data/ssh/ssh_host_ed25519_key /data/ssh/ssh_host_ed25519_key.pub")
        check("SSH host keys exist on /data", rc == 0, ls)
        rc, modes = vm.run("stat -c '%a %U %n' /etc/shadow /data/ssh /data/ssh/ssh_host_ed25519_key /data/ssh/authorized_keys")
        check("modes: /etc/shadow 600, key dir 700, keys 600, all root-owned",
              modes.split() == ["600", "root", "/etc/shadow", "700", "root", "/data/ssh", "600", "root",
                                "/data/ssh/ssh_host_ed25519_key", "600", "root", "/data/ssh/authorized_keys"], modes)
        rc, out_t = vm.run("sshd -t -f /etc/ssh/sshd_config")
        check("sshd accepts its configuration and the host keys (sshd -t)", rc == 0, out_t)
        rc, out_t = vm.run("busybox --list")
        check("BusyBox has init, getty, udhcpc, ntpd, syslogd, klogd, logread",
              {"init", "getty", "udhcpc", "ntpd", "syslogd", "klogd", "logread"} <= set(out_t.split()), out_t)
        key_a = host_key(vm)
        status = vm.poweroff()
        check("poweroff ends QEMU with status 0", status == 0, str(status))
        check("poweroff stops services and unmounts /data", "rcK: /data unmounted cleanly" in vm.buf, vm.console_tail(15))
        clean, dump = fsck_clean(disk_a)
        check("data disk is clean after poweroff (no fsck or journal recovery needed)", clean, dump[:400])

        # --- boot 2: same disk ---
        vm = boot(out, disk_a, os.path.join(work, "boot2.log"))
        rc, dmesg = vm.run("dmesg | grep -i -e 'recovery' -e 'orphan' -e 'EXT4-fs error' || true")
        check("second boot mounts /data without recovery", dmesg.strip() == "", dmesg)
        check("second boot keeps the host keys", host_key(vm) == key_a and "generated SSH host key" not in vm.buf)
        vm.poweroff()

        # --- boot 3: another fresh disk ---
        vm = boot(out, disk_b, os.path.join(work, "boot3.log"), password=CONSOLE_PASSWORD)
        check("with a hash on the data disk the console says a password is required, and login asked for it",
              "rcS: console: root login requires a password" in vm.buf and "Login incorrect" in vm.buf)
        key_b = host_key(vm)
        check("two fresh data disks get different host keys", key_a and key_b and key_a != key_b, f"{key_a} {key_b}")
        check_credentials(vm)
        rc, modes = vm.run("stat -c '%a %U' /etc/shadow")
        check("/etc/shadow (the copy with the hash over the image's) is 600 root", modes.split() == ["600", "root"], modes)
        vm.poweroff()

        # --- boot 4: no data disk at all ---
        vm = rl.RouterVM(out, None, log_path=os.path.join(work, "boot4.log"))
        vm.start()
        vm.expect(r"rcS: WARNING: no data disk", 120)
        m = vm.expect(r"netd: NOT READY: .*\n(.*)\n", 60)
        check("without a data disk the router boots and says on the console why it is not ready",
              "cannot open" in m.group(1), m.group(0))
        vm.login()
        rc, text = vm.run("netctl status")
        check("netctl status shows the reason", "LAST RELOAD FAILED" in text and "cannot open" in text, text)
        check("poweroff without a data disk", vm.poweroff() == 0)
    except rl.BootError as e:
        check("boot sequence", False, str(e))
    finally:
        if vm and vm.alive():
            vm.kill()
    if not all(results) and vm:
        print("---- console (last lines) ----\n" + vm.console_tail(60))
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
