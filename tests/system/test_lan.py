#!/usr/bin/env python3
"""LAN service test: the image booted under QEMU with its LAN NIC wired to a LAN-client
network namespace. From that client, with tools that are not ours:

  - DHCPv4 from dnsmasq (BusyBox udhcpc as the client), with router and DNS options;
  - router advertisements from radvd (rdisc6 from Debian's ndisc6): prefix, RDNSS, MTU;
  - a SLAAC address in the configured prefix;
  - DNS through dnsmasq: the client's own DHCP name resolves;
  - SSH with the administrator key (and no password login);
  - kill -9 of each supervised daemon: restarted (time printed);
  - kill -9 of netd: init respawns it, it adopts the same PIDs, an open SSH session survives.

usage: test_lan.py OUTDIR        Ends with 'N passed, N failed'.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402

# udhcpc keeps asking on WAN (this ISP namespace has no DHCP server) and stays running.
SERVICES = ("udhcpc", "dnsmasq", "radvd", "ntpd", "sshd")
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def main():
    out = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="lantest.")
    disk = os.path.join(work, "data.img")
    shutil.copyfile(os.path.join(out, "data.img"), disk)
    key = os.path.join(work, "admin_key")
    shutil.copyfile(os.path.join(out, "admin_key"), key)
    os.chmod(key, 0o600)
    busybox = os.path.join(out, "rootfs.stage", "bin", "busybox")  # our BusyBox, run on the host
    lab = rl.Lab(f"lan{os.getpid() % 10000}").create()
    ns = lab.lan
    vm = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console.log"))
    ssh = ["ip", "netns", "exec", ns, "ssh", "-i", key, "-o", "StrictHostKeyChecking=no",
           "-o", f"UserKnownHostsFile={work}/known_hosts", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]
    try:
        vm.start()
        vm.expect(r"netd: router ready at uptime", 120)
        vm.login()

        # --- DHCPv4 ---
        script = os.path.join(work, "udhcpc.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n[ \"$1\" = bound ] && env | grep -E '^(ip|router|dns|subnet|domain|lease)=' > "
                    f"{work}/lease && ip addr add $ip/$mask dev $interface\nexit 0\n")
        os.chmod(script, 0o755)
        t0 = time.monotonic()
        r = rl.sh(busybox, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "3", "-s", script,
                  "-x", "hostname:lanclient", ns=ns, check=False)
        lease = open(f"{work}/lease").read() if os.path.exists(f"{work}/lease") else ""
        print(f"figures: DHCPv4 lease after {time.monotonic() - t0:.1f} s", flush=True)
        ip = re.search(r"^ip=(\S+)", lease, re.M)
        check("LAN client gets a DHCPv4 lease in the configured range",
              ip and re.fullmatch(r"192\.168\.7\.(1[0-9][0-9])", ip.group(1)), lease + r.stderr[-500:])
        check("the lease names the router as gateway and DNS server, and the domain",
              "router=192.168.7.1" in lease and "dns=192.168.7.1" in lease and "domain=home.arpa" in lease, lease)

        # --- router advertisements and SLAAC ---
        rl.sh("sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=2", ns=ns)
        ra = rl.sh("rdisc6", "-1", "-w", "3000", "eth0", ns=ns, check=False).stdout
        check("RA carries the prefix 2001:db8:7::/64", re.search(r"Prefix\s*:\s*2001:db8:7::/64", ra), ra)
        check("RA carries RDNSS 2001:db8:7::1", re.search(r"Recursive DNS server\s*:\s*2001:db8:7::1", ra), ra)
        check("RA carries the link MTU", re.search(r"MTU\s*:\s*1500 bytes", ra), ra)
        check("RA carries DNSSL home.arpa", "home.arpa" in ra, ra)
        addr = ""
        for _ in range(40):
            addr = rl.sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global", ns=ns).stdout
            if re.search(r"inet6 2001:db8:7:[0-9a-f:]+/64", addr) and "tentative" not in addr:
                break
            time.sleep(0.5)
        check("LAN client configures a global address by SLAAC", re.search(r"inet6 2001:db8:7:[0-9a-f:]+/64", addr), addr)

        # --- DNS ---
        r = rl.sh(busybox, "nslookup", "lanclient.home.arpa", "192.168.7.1", ns=ns, check=False)
        check("a name resolves through dnsmasq (the client's own DHCP name)",
              ip and ip.group(1) in r.stdout, r.stdout + r.stderr)
        r6 = rl.sh(busybox, "ping", "-6", "-c", "1", "-W", "5", "2001:db8:7::1", ns=ns, check=False)
        check("the router answers on its LAN IPv6 address", r6.returncode == 0, r6.stdout + r6.stderr)

        # --- SSH ---
        r = subprocess.run(ssh + ["root@192.168.7.1", "cat /proc/sys/kernel/hostname"], capture_output=True, text=True)
        check("SSH login with the administrator key", r.returncode == 0 and r.stdout.strip() == "router", r.stderr)
        r = subprocess.run(["ip", "netns", "exec", ns, "ssh", "-o", "StrictHostKeyChecking=no", "-o",
                            f"UserKnownHostsFile={work}/known_hosts", "-o", "BatchMode=yes",
                            "-o", "PreferredAuthentications=password,keyboard-interactive", "root@192.168.7.1", "true"],
                           capture_output=True, text=True)
        check("SSH without a key is refused", r.returncode != 0 and "Permission denied" in r.stderr, r.stderr)

        # --- the firewall in the image's kernel (our kernel config, our nft) ---
        rc, fw = vm.run("netctl firewall")
        check("netctl firewall prints the loaded ruleset", rc == 0 and "table inet netd {" in fw
              and "policy drop;" in fw, fw[:400])
        rc, kern = vm.run("nft list table inet netd | grep -c 'policy drop'; cat /proc/sys/net/ipv4/ip_forward "
                          "/proc/sys/net/ipv6/conf/all/forwarding")
        check("the kernel holds netd's tables (input and forward drop by default); forwarding on",
              rc == 0 and kern.split() == ["2", "1", "1"], kern)

        # --- netctl ---
        rc, text = vm.run("netctl status")
        check("netctl status lists the five services running",
              rc == 0 and all(re.search(rf"^\s+{n}\s+running\s+\d+", text, re.M) for n in SERVICES),
              text)
        rc, js = vm.run("netctl status --json")
        try:
            doc = json.loads(js)
            ok = {s["name"]: s["state"] for s in doc["services"]} == {n: "running" for n in SERVICES} \
                and doc["lan"]["ipv4"] == "192.168.7.1/24" and doc["config"]["ok"]
        except (ValueError, KeyError, TypeError) as e:
            ok, js = False, f"{e}: {js}"
        check("netctl status --json is valid JSON with the same facts", ok, js)
        pids = lambda: dict(re.findall(r"^\s+(\w+)\s+running\s+(\d+)", vm.run("netctl status")[1], re.M))
        before = pids()
        rc, err = vm.run("cp /data/etc/router.conf /tmp/good.conf && printf '\\n[ssh]\\nport = 99999\\n' >> /data/etc/router.conf; "
                         "netctl reload 2>&1")
        check("netctl reload of a broken file fails with file:line:col", rc == 1 and re.search(
            r"/data/etc/router.conf:\d+:\d+: ", err) and "running configuration stays" in err, err)
        rc, text = vm.run("netctl status")
        check("after a failed reload the old configuration keeps serving (same PIDs)",
              pids() == before and "LAST RELOAD FAILED" in text, f"{before} -> {pids()}\n{text}")
        rc, _ = vm.run("cp /tmp/good.conf /data/etc/router.conf && "
                       "sed -i 's/^upstream = .*/upstream = [\"192.0.2.54\"]/' /data/etc/router.conf && netctl reload")
        time.sleep(2)
        after = pids()
        check("a reload that changes only DNS restarts only dnsmasq",
              rc == 0 and after.get("dnsmasq") != before.get("dnsmasq") and
              all(after.get(n) == before.get(n) for n in ("radvd", "ntpd", "sshd")), f"{before} -> {after}")
        rc, _ = vm.run("cp /tmp/good.conf /data/etc/router.conf && netctl reload")
        before = pids()
        rc, _ = vm.run("netctl restart radvd")
        time.sleep(1.5)
        check("netctl restart SERVICE restarts it", rc == 0 and pids().get("radvd") not in (None, before.get("radvd")),
              f"{before} -> {pids()}")
        rc, _ = vm.run("netctl restart nosuch")
        check("netctl restart of an unknown service fails", rc == 1)

        # --- kill -9 of each child ---
        for name in ("dnsmasq", "radvd", "ntpd", "sshd"):
            rc, pid = vm.run(f"head -n1 /run/netd/services/{name}.pid | cut -d' ' -f1")
            pid = pid.strip()
            rc, t = vm.run(f"kill -9 {pid}; t0=$(cut -d' ' -f1 /proc/uptime); i=0; "
                           f"while [ $i -lt 100 ]; do n=$(head -n1 /run/netd/services/{name}.pid 2>/dev/null | cut -d' ' -f1); "
                           f"[ -n \"$n\" ] && [ \"$n\" != {pid} ] && break; usleep 50000; i=$((i+1)); done; "
                           f"echo $n $t0 $(cut -d' ' -f1 /proc/uptime)", timeout=30)
            parts = t.split()
            ok = len(parts) == 3 and parts[0] != pid
            if ok:
                print(f"figures: {name} restarted {float(parts[2]) - float(parts[1]):.2f} s after kill -9 "
                      f"(pid {pid} -> {parts[0]})", flush=True)
            check(f"{name} is restarted after kill -9", ok, t)

        # --- kill -9 of netd with an SSH session open ---
        for _ in range(40):  # the restarted sshd may still be starting up
            if subprocess.run(ssh + ["root@192.168.7.1", "true"], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        session = subprocess.Popen(ssh + ["root@192.168.7.1", "echo start; sleep 8; echo survived"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        pids_cmd = "for f in /run/netd/services/*.pid; do head -n1 $f | cut -d' ' -f1; done | sort -n | tr '\\n' ' '"
        rc, before = vm.run(pids_cmd)
        rc, netd_pid = vm.run("pidof netd")
        vm.run(f"kill -9 {netd_pid.strip()}")
        rc, _ = vm.run("i=0; while [ $i -lt 100 ]; do p=$(pidof netd); [ -n \"$p\" ] && "
                       f"[ \"$p\" != {netd_pid.strip()} ] && break; usleep 100000; i=$((i+1)); done; sleep 2", timeout=30)
        rc, after = vm.run(pids_cmd)
        rc, new_netd = vm.run("pidof netd")
        rc, adopted = vm.run("logread | grep -c 'adopted running pid'")
        check("init respawns netd after kill -9", new_netd.strip() and new_netd.strip() != netd_pid.strip(), new_netd)
        check("the new netd adopts the running children (same PIDs)", before.split() == after.split() and len(before.split()) == len(SERVICES),
              f"{before} -> {after}")
        rc, counts = vm.run("echo $(pidof dnsmasq | wc -w) $(ps | grep -c '[n]tpd -n') $(ps | grep -c '[s]shd -D')")
        check("no duplicate daemons after the netd restart", counts.split()[:3] == ["1", "1", "1"], counts + vm.run("ps")[1])
        check("the new netd logged the adoptions", adopted.split()[:1] == [str(len(SERVICES))], adopted)
        so, se = session.communicate(timeout=30)
        check("an open SSH session survives kill -9 of netd", "survived" in so, so + se)

        # --- crash loop: without its host keys sshd exits at once, every time ---
        vm.run("mkdir -p /data/keys.away && mv /data/ssh/ssh_host_* /data/keys.away/ && "
               "kill -9 $(head -n1 /run/netd/services/sshd.pid | cut -d' ' -f1)")
        t0 = time.monotonic()
        state = ""
        while time.monotonic() - t0 < 60:
            _, text = vm.run("netctl status")
            m = re.search(r"^\s+sshd\s+(\S+)\s+\S+\s+\S+\s+(\d+)\s+(.*)$", text, re.M)
            state = m.group(0) if m else text
            if m and m.group(1) == "failed":
                break
            time.sleep(2)
        failed_after = time.monotonic() - t0
        m = re.search(r"^\s+sshd\s+(\S+)\s+\S+\s+\S+\s+(\d+)", state, re.M)
        check("a daemon that dies at once ends in 'failed' in netctl status", m and m.group(1) == "failed", state)
        restarts_at_failed = int(m.group(2)) if m else -1
        time.sleep(max(0, 60 - failed_after))
        _, text = vm.run("netctl status")
        m2 = re.search(r"^\s+sshd\s+(\S+)\s+\S+\s+\S+\s+(\d+)", text, re.M)
        restarts_minute = int(m2.group(2)) if m2 else -1
        print(f"figures: crash loop: sshd failed after {failed_after:.0f} s, {restarts_minute} restarts in the first minute "
              f"(no more after 'failed': {restarts_at_failed})", flush=True)
        check("restarts stay bounded over a minute (no restart storm)", m and m.group(1) == "failed" and 0 < restarts_minute <= 6 and
              restarts_minute == restarts_at_failed, text)
        vm.run("mv /data/keys.away/* /data/ssh/ && netctl restart sshd; sleep 2")
        r = subprocess.run(ssh + ["root@192.168.7.1", "true"], capture_output=True, text=True)
        check("netctl restart brings a failed daemon back", r.returncode == 0, r.stderr)
        vm.poweroff()
    except rl.BootError as e:
        check("LAN test sequence", False, str(e))
    finally:
        if vm.alive():
            vm.kill()
        lab.destroy()
    if not all(results):
        print("---- console (last lines) ----\n" + vm.console_tail(60))
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
