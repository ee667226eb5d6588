#!/usr/bin/env python3
"""Log test: the persistent log and the remote log, in the image booted under QEMU. The log
host is Debian's rsyslogd in the LAN client's namespace (192.168.7.10, 2001:db8:7::10), UDP
and TCP on port 514, every message written out with the fields rsyslog parsed from it.

  - [log] remote = "udp://192.168.7.10": netd's lines, the daemons' (dnsmasq, ...) and the
    boot's earlier lines (rcS, the kernel) arrive as RFC 5424, hostname "router";
  - a reload to "tcp://[2001:db8:7::10]:514" (no reboot): the forwarder restarts, lines arrive
    over TCP (RFC 6587 octet counting), a restarted dnsmasq's among them;
  - the log host stopped: logging and netctl do not wait; the lines logged meanwhile arrive
    once it is back (the forwarder reconnects);
  - the forwarder runs as nobody without capabilities;
  - QEMU killed (a power cut) and the router booted again: `netctl log --previous` shows the
    boot before, up to the line logged just before the kill; logread shows the new boot;
    afterwards (clean poweroff) e2fsck finds the data disk clean.

usage: test_logs.py OUTDIR        Ends with 'N passed, N failed'.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
results = []

# rsyslog's view of each message: which input, PRI, HOSTNAME, APP-NAME, PROCID, MSG.
RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" port="514")
input(type="imtcp" port="514")
template(name="fields" type="string"
         string="%inputname% %pri% %hostname% %app-name% %procid% %msg%\\n")
*.* action(type="omfile" file="{work}/received.log" template="fields")
"""


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {str(detail)[-1500:]}" if detail and not ok else ""), flush=True)
    return ok


class LogHost:
    def __init__(self, ns, work):
        self.ns, self.work, self.proc = ns, work, None
        self.conf = os.path.join(work, "rsyslog.conf")
        with open(self.conf, "w") as f:
            f.write(RSYSLOG_CONF.format(work=work))

    def start(self):
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "rsyslogd", "-n", "-f", self.conf,
                                      "-i", os.path.join(self.work, "rsyslog.pid")],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "rsyslog.err"), "a"))
        for _ in range(50):
            if "LISTEN" in rl.sh("ss", "-ltn", "sport = :514", ns=self.ns).stdout:
                return
            time.sleep(0.1)
        raise rl.BootError("rsyslogd does not listen on port 514")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def lines(self):
        try:
            with open(os.path.join(self.work, "received.log"), errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def wait(self, pred, timeout):
        """The received lines once pred(lines) holds (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            ls = self.lines()
            if pred(ls) or time.monotonic() > deadline:
                return ls
            time.sleep(0.5)


def has(lines, inp, app=None, text=None, pri=None):
    for l in lines:
        f = l.split(" ", 5)
        if len(f) < 6 or f[0] != inp or f[2] != "router":
            continue
        if (app is None or f[3] == app) and (text is None or text in f[5]) and (pri is None or f[1] == str(pri)):
            return True
    return False


def main():
    out = os.path.abspath(sys.argv[1])
    rl.need("rsyslogd")
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="logtest.")
    os.chmod(work, 0o755)
    conf = os.path.join(work, "router.conf")
    with open(os.path.join(HERE, "..", "..", "image", "example", "router.conf")) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text + '\n[log]\nremote = "udp://192.168.7.10"\n')
    disk = os.path.join(work, "data.img")
    r = rl.sh(os.path.join(HERE, "..", "..", "image", "mkdata"), "--config", conf, "--authorized-keys",
              os.path.join(out, "admin_key.pub"), "--netd", os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"),
              "--rootfs-manifest", os.path.join(out, "rootfs.manifest"), "-o", disk, check=False)
    if not check("the config with [log] remote is accepted (mkdata, the image's netd --check)", r.returncode == 0,
                 r.stdout + r.stderr):
        return 1
    lab = rl.Lab(f"log{os.getpid() % 10000}").create()
    ns = lab.lan
    rl.sh("ip", "addr", "add", "192.168.7.10/24", "dev", "eth0", ns=ns)
    rl.sh("ip", "-6", "addr", "add", "2001:db8:7::10/64", "dev", "eth0", "nodad", ns=ns)
    host = LogHost(ns, work)
    vm = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console.log"))
    marker = f"before-the-kill-{os.getpid()}"
    try:
        host.start()
        vm.start()
        vm.expect(r"netd: router ready at uptime", 150)
        vm.login()
        print(f"      router ready {time.monotonic() - t_start:.0f} s after the start", flush=True)

        # --- UDP: netd, the daemons, the boot's earlier lines -------------------------------
        vm.run("logger -t logtest udp-marker")
        got = host.wait(lambda ls: has(ls, "imudp", "logtest", "udp-marker") and has(ls, "imudp", "dnsmasq")
                        and has(ls, "imudp", "netd", "applied:"), 30)
        check("UDP: a line logged on the router arrives as RFC 5424 from host 'router' (user.notice: PRI 13)",
              has(got, "imudp", "logtest", "udp-marker", pri=13), got[-20:])
        check("UDP: netd's lines arrive (daemon.info: PRI 30)", has(got, "imudp", "netd", "applied:", pri=30), got[-20:])
        check("UDP: the daemons' lines arrive (dnsmasq)", has(got, "imudp", "dnsmasq"), got[-20:])
        check("UDP: the boot's lines from before the forwarder started arrive too (rcS, the kernel, netd's start)",
              has(got, "imudp", "rcS", "syslog started") and has(got, "imudp", "kernel")
              and has(got, "imudp", "netd", "starting with"), got[:20])
        procid = [l for l in got if l.startswith("imudp") and l.split(" ")[3] == "netd"]
        check("UDP: PROCID is the sender's pid", procid and re.fullmatch(r"\d+", procid[0].split(" ")[4]), procid[:3])
        rc, status = vm.run("netctl status")
        check("netctl status lists log-forward running", re.search(r"^\s+log-forward\s+running\s+\d+", status, re.M), status)

        # --- the forwarder's privileges --------------------------------------------------
        rc, st = vm.run("cat /proc/$(head -n1 /run/netd/services/log-forward.pid | cut -d' ' -f1)/status")
        print("      log-forward: " + " ".join(l.replace("\t", " ") for l in st.splitlines()
                                              if l.split(":")[0] in ("Uid", "Gid", "CapEff", "CapBnd", "NoNewPrivs")),
              flush=True)
        check("the forwarder runs as nobody, without capabilities (bounding set included), no_new_privs",
              re.search(r"^Uid:\s+65534\s+65534\s+65534\s+65534", st, re.M)
              and re.search(r"^CapEff:\s+0+$", st, re.M) and re.search(r"^CapBnd:\s+0+$", st, re.M)
              and re.search(r"^NoNewPrivs:\s+1", st, re.M), st)

        # --- a reload to TCP over IPv6 ------------------------------------------------------
        rc, reply = vm.run("sed -i 's|^remote = .*|remote = \"tcp://[2001:db8:7::10]:514\"|' /data/etc/router.conf"
                           " && netctl reload")
        _, ops = vm.run("logread | grep 'services: restart log-forward'")
        check("a reload switches the remote log to TCP, no reboot (the forwarder alone restarts)",
              rc == 0 and "(0 kernel, 1 services)" in reply and "command line changed" in ops, reply + ops)
        vm.run("logger -t logtest tcp-marker; netctl restart dnsmasq")
        got = host.wait(lambda ls: has(ls, "imtcp", "logtest", "tcp-marker") and has(ls, "imtcp", "dnsmasq", "started"), 30)
        check("TCP: lines arrive over TCP, octet-counted frames rsyslog takes", has(got, "imtcp", "logtest", "tcp-marker"),
              got[-20:])
        check("TCP: a restarted daemon's lines arrive (dnsmasq started)", has(got, "imtcp", "dnsmasq", "started"), got[-20:])
        check("TCP: the new log host gets the boot's earlier lines too", has(got, "imtcp", "rcS", "syslog started"), got[-20:])

        # --- the log host down, then back ---------------------------------------------------
        def burst(tag):
            """50 lines and a netctl status; the seconds it took."""
            _, t = vm.run("t0=$(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt 50 ]; do "
                          f"logger -t logtest {tag}-$i; i=$((i+1)); done; netctl status >/dev/null; "
                          "echo $t0 $(cut -d' ' -f1 /proc/uptime)", timeout=60)
            parts = t.split()
            return float(parts[1]) - float(parts[0]) if len(parts) == 2 else 99
        up = burst("up")
        host.stop()
        down = burst("down")
        print(f"figures: 50 lines logged and netctl status: {up:.2f} s with the log host up, {down:.2f} s "
              "with it down", flush=True)
        check("with the log host down, logging and netctl do not wait for it", down < 2 * up + 1, f"{up} {down}")
        rc, lr = vm.run("logread | grep -c 'logtest: down-'")
        check("the local log has every line logged meanwhile", lr.strip() == "50", lr)
        time.sleep(3)
        host.start()
        t0 = time.monotonic()
        got = host.wait(lambda ls: has(ls, "imtcp", "logtest", "down-49"), 90)
        check("the lines logged while the log host was down arrive once it is back (reconnect)",
              all(has(got, "imtcp", "logtest", f"down-{i}") for i in range(50)), got[-10:])
        print(f"figures: queued lines delivered {time.monotonic() - t0:.1f} s after the log host came back", flush=True)
        print("      as rsyslog parsed them (input pri host app procid msg):\n        " +
              "\n        ".join([l for l in got if " dnsmasq " in l][:1] + [l for l in got if "down-49" in l][:1]),
              flush=True)

        # --- the persistent log, then a power cut ------------------------------------------
        vm.run(f"logger -t logtest {marker}")
        t_marker = time.monotonic()
        rc, cur = vm.run(f"netctl log | grep -c {marker}; netctl log --list; ls -l /data/log")
        check("netctl log shows this boot's persistent log", cur.split()[:1] == ["1"], cur)
        rc, size = vm.run("du -sk /data/log | cut -f1")
        # Lines reach the disk within ~15 s (rcS: dirty data expires after 5 s, ext4 commits
        # every 5 s); nothing here syncs.
        time.sleep(max(0, 20 - (time.monotonic() - t_marker)))
        vm.kill()
        vm = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console2.log"))
        vm.start()
        vm.expect(r"netd: router ready at uptime", 150)
        vm.login()
        rc, prev = vm.run(f"netctl log --previous | grep -e {marker} -e 'netd.*applied:'")
        check("after QEMU was killed, netctl log --previous shows the boot before, up to the line logged just before",
              rc == 0 and marker in prev and "applied:" in prev, prev)
        rc, lst = vm.run("netctl log --list")
        check("netctl log --list shows this boot and the one before", "this boot" in lst and "--previous" in lst, lst)
        rc, now = vm.run(f"logread | grep -c -e {marker} -e 'syslog started'")
        check("logread shows this boot (and not the one before)", now.split() == ["1"], now)
        rc, e = vm.run("netctl log --previous 3")
        check("netctl log --previous 3 says what is missing", rc == 1 and "no log of 3 boots back" in e, e)
        rc, rec = vm.run("dmesg | grep -i -e 'recovery complete' -e 'orphan' | head -3")
        print(f"      data disk after the power cut: {rec.strip() or 'no journal recovery needed'}", flush=True)
        vm.poweroff()
        fsck = subprocess.run(["e2fsck", "-fn", disk], capture_output=True, text=True)
        check("after the power cut and the next boot, e2fsck finds the data disk clean (no manual repair)",
              fsck.returncode == 0, fsck.stdout + fsck.stderr)
        print(f"figures: /data/log {size.strip()} KiB before the power cut; test {time.monotonic() - t_start:.0f} s",
              flush=True)
    except rl.BootError as e:
        check("log test sequence", False, str(e))
    finally:
        if vm.alive():
            vm.kill()
        host.stop()
        lab.destroy()
    if not all(results):
        print("---- console (last lines) ----\n" + vm.console_tail(60))
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
