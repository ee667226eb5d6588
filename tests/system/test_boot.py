#!/usr/bin/env python3
"""Boot test: the built image under QEMU, three boots on two fresh data disks.

  boot 1 (disk A, first boot): our kernel, read-only root, read-write /data, rcS ran, syslog
          works, SSH host keys made on /data; then poweroff unmounts /data cleanly.
  boot 2 (disk A again): no journal recovery needed, the same host keys.
  boot 3 (disk B): different host keys from disk A.

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
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def config_lines(text):
    return sorted(l for l in text.splitlines() if l.startswith("CONFIG_"))


def make_disk(work, name, netd, pub):
    img = os.path.join(work, name)
    subprocess.run([os.path.join(top, "image/mkdata"), "--netd", netd, "--config",
                    os.path.join(top, "image/example/router.conf"), "--authorized-keys", pub,
                    "--hostname", "router", "-o", img], check=True, capture_output=True)
    return img


def boot(out, disk, log):
    vm = rl.RouterVM(out, disk, log_path=log)
    vm.start()
    try:
        return wait_ready(vm, disk)
    except rl.BootError:
        print("---- console (last lines) ----\n" + vm.console_tail(40))
        vm.kill()
        raise


def wait_ready(vm, disk):
    m = vm.expect(r"rcS: init started at uptime ([\d.]+) s", 120)
    init_at = float(m.group(1))
    m = vm.expect(r"netd: router ready at uptime ([\d.]+) s", 120)
    ready_at = float(m.group(1))
    vm.login()
    wall = time.monotonic() - vm.started_at
    print(f"figures: {os.path.basename(disk)}: guest uptime at init {init_at:.2f} s, "
          f"at ready {ready_at:.2f} s; login prompt after {wall:.1f} s wall clock (TCG)", flush=True)
    return vm


def host_key(vm):
    rc, out = vm.run("cat /data/ssh/ssh_host_ed25519_key.pub")
    return out.split()[1] if rc == 0 and len(out.split()) >= 2 else None


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
    disk_b = make_disk(work, "b.img", netd, key + ".pub")
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
        rc, _ = vm.run("logger -t boottest marker-$$-syslog && logread | grep -q 'boottest.*marker-.*-syslog' && logread | grep -q 'rcS: syslog started'")
        check("syslog receives messages (logger -> logread)", rc == 0)
        rc, ls = vm.run("ls /data/ssh/ssh_host_ed25519_key /data/ssh/ssh_host_ed25519_key.pub /data/ssh/ssh_host_ecdsa_key")
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
        vm = boot(out, disk_b, os.path.join(work, "boot3.log"))
        key_b = host_key(vm)
        check("two fresh data disks get different host keys", key_a and key_b and key_a != key_b, f"{key_a} {key_b}")
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
