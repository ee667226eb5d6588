#!/usr/bin/env python3
"""The router as a real Xen PV domU (issue 6) with two LAN segments (issue 12): Debian's Xen
hypervisor booted under QEMU (software emulation) with Debian's generic kernel as dom0 and a
dom0 initramfs holding Debian's toolstack (tests/xen/build-dom0, cached). dom0 has three NICs:
the uplink to an ISP namespace, and one LAN port per segment, each to a client namespace (the
cheapest realistic wiring: a physical port per segment, as on a real host). In dom0
(tests/xen/dom0-init): xen/dom0-net makes the WAN bridge and two LAN bridges, `xl create -n`
checks our xl config (three vifs, from xen/mkdomu with two --lan), `xl create` starts the
router from the real image (our kernel, root image, a data disk whose router.conf has two
[[lan]] segments by MAC: "main", full trust, and "guest"). From each client namespace: a DHCPv4
lease from its segment's subnet and a SLAAC address from its segment's /64 (none from the
other's); from the main segment, SSH with the key. Then image upgrades with xen/upgrade in
dom0: first to a broken image (the real one, but its netd moves the data disk to a newer
format and gives up, NOT READY), which xen/upgrade undoes by itself: the image before boots
again on the data disk as it was, ready, and SSH works; then to the image copied under new
names (a new version's stand-in), which it keeps. Before the upgrades, three more instances
from the same image files (32 MiB each, their own data disk, LAN bridge and client) run beside
it, and the first one's LAN vif is unplugged and plugged back (xl network-detach,
network-attach): its netd configures the new NIC by itself and the client is served again.
Then `xl shutdown` stops the router cleanly.
Then the same instance through libvirt, as OpenStack or any libvirt tool runs it: libvirtd in
dom0 (Debian's, with its libxl driver alone, running beside xl since dom0's start) takes
`virsh -c xen:/// define` of the XML xen/mkdomu wrote (xen/upgrade kept it in step), `virsh
start` boots the router on the same data disk, the main segment's client gets a DHCPv4 lease
from it, and `virsh shutdown` stops it cleanly: libvirt says shut off and Xen has no router
domain left. Also: the libvirt XML validates with virt-xml-validate. Figures: xl create ->
router ready (guest uptime, wall clock); the boot-phase table of the first xl create (toolstack,
kernel, rcS, netd, first RA, the main segment's client holding its SLAAC address: see
boot_phases; it fails only when a phase is missing, never on timings); each upgrade's steps,
virsh start -> ready, virsh shutdown -> shut off, dom0 and domU memory.

usage: test_xen.py OUT_DIR
"""
import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(top, "tests", "lib"))
import routerlab as rl  # noqa: E402

results = []

# The router's NICs: the WAN and one per LAN segment, each vif on its dom0 bridge (the bridges
# are the ones tests/xen/dom0-init has xen/dom0-net make; the MACs are the config's).
WAN_MAC = "52:54:00:12:34:01"
SEGMENTS = [  # name, MAC, dom0 bridge, IPv4 subnet prefix, IPv6 /64 prefix (as ip prints it)
    ("main", "52:54:00:12:34:02", "xenbr-lan", "192.168.1.", "2001:db8:7:1:"),
    ("guest", "52:54:00:12:34:03", "xenbr-guest", "192.168.2.", "2001:db8:7:2:"),
]
MKDOMU_LANS = [a for _, m, br, _, _ in SEGMENTS for a in ("--lan", f"{m},{br}")]
# Every instance gets the smallest memory it is known to run in (issue 14, item 3).
MEMORY = 32
# The other instances (issue 14, item 4): the same kernel and root image files, each with its
# own data disk, LAN bridge (on a dom0 port of its own: eth3, eth4, ...) and client.
INSTANCES = [  # name, WAN MAC, LAN MAC, dom0 bridge, dom0 port, IPv4 prefix, IPv6 /64 prefix, WAN address
    (f"gw{n}", f"52:54:00:12:4{n}:01", f"52:54:00:12:4{n}:02", f"xenbr-gw{n}", f"eth{n + 1}", f"192.168.1{n}.",
     f"2001:db8:8:{n}:", f"203.0.113.1{n}") for n in (2, 3, 4)]
INSTANCE_CONFIG = """# The Xen test's instance {name}: one LAN, the WAN by DHCP from the ISP.
[lan]
mac = "{lan_mac}"
ipv4 = "{v4}1/24"
ipv6_prefixes = ["{v6}:/64"]

[wan]
mac = "{wan_mac}"

[dns]
upstream = ["192.0.2.53"]

[ntp]
servers = ["192.0.2.123"]
"""
CONFIG = f"""# The Xen test's router: two LAN segments by MAC (issue 12), the WAN by DHCP from the ISP.
[[lan]]
name = "main"
mac = "{SEGMENTS[0][1]}"
ipv4 = "192.168.1.1/24"
ipv6_prefixes = ["2001:db8:7:1::/64"]
trust = "full"

[[lan]]
name = "guest"
mac = "{SEGMENTS[1][1]}"
ipv4 = "192.168.2.1/24"
ipv6_prefixes = ["2001:db8:7:2::/64"]
trust = "guest"

[wan]
mac = "{WAN_MAC}"

[dns]
upstream = ["192.0.2.53"]

[ntp]
servers = ["192.0.2.123"]
"""
# netd of the broken image: what a new image's netd could do, move the data disk to a newer
# format (the image before refuses that format unless xen/upgrade puts the data disk back),
# then give up.
BROKEN_NETD = """#!/bin/sh
echo 3 > /data/.layout
sync
echo "netd: NOT READY: (the Xen test's broken image) the data disk is now format 3; giving up"
exec sleep 1000000
"""


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n      {str(detail)[-1500:]}" if detail and not ok else ""),
          flush=True)
    return ok


def sh(*cmd, ns=None, check=False, timeout=60):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    return subprocess.run(cmd, text=True, capture_output=True, timeout=timeout)


class Serial:
    def __init__(self, proc, log):
        self.proc, self.buf, self.log = proc, "", open(log, "w")
        import threading
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            b = self.proc.stdout.read1(4096) if hasattr(self.proc.stdout, "read1") else self.proc.stdout.read(1)
            if not b:
                return
            text = b.decode(errors="replace").replace("\r", "")
            self.buf += text
            self.log.write(text)
            self.log.flush()

    def expect(self, pattern, timeout, start=0):
        """The first match of pattern in what came after position start, waiting for it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.buf[start:])
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        return None


def add_client(wire, ns, side):
    """A client namespace `ns` on QEMU's tap-`side`, wired like routerlab's LAN client: the tap
    bridged (br-`side`) in the wire namespace to a veth whose other end is eth0 in `ns`.
    Returns an error message, or None."""
    del_ns(ns)
    steps = [(None, "netns", "add", ns), (ns, "link", "set", "lo", "up"),
             (wire, "tuntap", "add", "dev", f"tap-{side}", "mode", "tap"),
             (wire, "link", "add", f"br-{side}", "type", "bridge"),
             (wire, "link", "add", f"v-{side}", "type", "veth", "peer", "name", "eth0", "netns", ns)]
    for dev in (f"tap-{side}", f"v-{side}"):
        steps += [(wire, "link", "set", dev, "master", f"br-{side}"), (wire, "link", "set", dev, "up")]
    steps += [(wire, "link", "set", f"br-{side}", "up"), (ns, "link", "set", "eth0", "up")]
    for where, *c in steps:
        r = sh("ip", *c, ns=where)
        if r.returncode != 0:
            return f"ip {' '.join(c)}: {r.stderr}"
    return None


def del_ns(ns):
    for pid in sh("ip", "netns", "pids", ns).stdout.split():
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    sh("ip", "netns", "del", ns)


def client_served(ns, bb, label, v4, v6):
    """A client's clean start on its segment: a DHCPv4 lease in v4.0/24 (BusyBox udhcpc from the
    image), then a SLAAC address in v6:/64 from the router's RAs. Returns the client's global
    IPv6 addresses (ip's text)."""
    # A clean start, link-local address included: down and up again, so the client also
    # solicits an RA at once (a flush alone would leave it waiting for radvd's next unsolicited
    # one, up to 100 s away).
    sh("ip", "addr", "flush", "dev", "eth0", ns=ns)
    sh("ip", "link", "set", "eth0", "down", ns=ns)
    sh("ip", "link", "set", "eth0", "up", ns=ns)
    r = sh(bb, "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "3", "-s", "/bin/true", ns=ns, timeout=90)
    lease = re.search(rf"lease of ({re.escape(v4)}\d+)", r.stdout + r.stderr)
    check(f"{label}: the client gets a DHCPv4 lease in {v4}0/24 from the router", lease, r.stdout + r.stderr)
    if lease:
        sh("ip", "addr", "add", f"{lease.group(1)}/24", "dev", "eth0", ns=ns)
    end, a = time.monotonic() + 60, ""
    while time.monotonic() < end and v6 not in a:
        a = sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global", ns=ns).stdout
        time.sleep(1)
    check(f"{label}: the client autoconfigures a SLAAC address in {v6}:/64 from the router's RAs", v6 in a,
          sh("ip", "-6", "addr", ns=ns).stdout)
    return a


def request(lan, what):
    """One request to dom0-init (its address on xenbr-lan, port 9999), from the main segment;
    tried again while refused, for up to 3 minutes: dom0-init takes requests one at a time and
    may still be finishing the one before (a shutdown waits for the domain to go), which on a
    loaded machine took longer than the 20 s this once allowed."""
    r = sh(sys.executable, "-c", "import socket,sys,time\nend=time.monotonic()+180\nwhile True:\n try:\n"
           "  s=socket.create_connection(('192.168.1.50',9999),timeout=10);break\n"
           " except ConnectionRefusedError:\n"
           "  if time.monotonic()>end: sys.exit('dom0-init refused the connection for 180 s')\n"
           "  time.sleep(0.2)\n"
           f"s.sendall(b'{what}\\n');s.close()", ns=lan, timeout=240)
    if r.returncode != 0:
        print(f"      request {what}: {r.stderr.strip()[-300:]}")


def stamp(text, what):
    """xen/upgrade's elapsed time (its "(+S s)") on its first line starting with what."""
    m = re.search(r"\(\+([\d.]+) s\) " + re.escape(what), text)
    return float(m.group(1)) if m else None


def ssh_check(lan, key, label):
    """SSH from the main segment right after the router said ready: sshd, started by then, may
    take a few more seconds (under TCG) to listen, so a refused connection is tried again."""
    t, end = time.monotonic(), time.monotonic() + 60
    while True:
        r = sh("ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "root@192.168.1.1",
               "echo layout $(cat /data/.layout); netctl status | head -3", ns=lan, timeout=90)
        if r.returncode != 255 or time.monotonic() > end:
            break
        time.sleep(1)
    if check(f"{label}: SSH from the main segment works, netd runs, the data disk has format 2",
             r.returncode == 0 and "config:" in r.stdout and "layout 2" in r.stdout, r.stdout + r.stderr):
        print(f"      figures: SSH in {time.monotonic() - t:.1f} s after the upgrade ended")


def test_upgrades(con, lan, key):
    """xen/upgrade in dom0 (dom0-init's upgrade-broken and upgrade-new requests)."""
    # To the broken image (xl console watched): it says NOT READY after moving the data disk
    # to format 3; xen/upgrade goes back by itself.
    start = len(con.buf)
    request(lan, "upgrade-broken")
    m = con.expect(r"DOM0: upgrade exit (\d+)", 400, start)
    con.expect(r"DOM0: router.cfg: .*vdev=xvda", 10, start)
    out = con.buf[start:]
    check("upgrade to a broken image: xen/upgrade goes back to the image before by itself (exit 1, REVERTED)",
          m and m.group(1) == "1" and "REVERTED" in out, out[-4000:])
    marker = re.search(r"ROUTER: .*\(the Xen test's broken image\)", out)
    check("... the broken image ran (its netd moved the data disk to format 3) and xen/upgrade read its NOT READY "
          "through xl console", marker and "the new image failed: the console says: netd: NOT READY" in out and
          "console through xl console" in out, out[-4000:])
    again = marker and con.expect(r"ROUTER: .*netd: router ready", 10, start + marker.end())
    after = con.buf[start + marker.end():] if marker else ""
    check("... the image before is ready again on the data disk as it was (format 2: no refusal of format 3)",
          again and "has format '3'" not in after, after[-3000:])
    check("... the xl config names the image before again (kernel and root image)",
          'router.cfg: kernel = "/router/bzImage"' in out and "target=/router/rootfs.squashfs'" in out, out[-1500:])
    check("... the router was stopped cleanly before its data disk was copied (rcK unmounted /data)",
          re.search(r"ROUTER: .*rcK: /data unmounted cleanly", out), out[-3000:])
    failed, back, ready = stamp(out, "the new image failed"), stamp(out, "REVERTED"), \
        re.findall(r"ready after ([\d.]+) s from xl create", out)
    if failed is not None and back is not None:
        print(f"      figures: upgrade to the broken image: failure seen {failed:.1f} s after xen/upgrade started; "
              f"back on the image before and ready {back - failed:.1f} s later "
              f"(xl create -> ready {ready[-1] if ready else '?'} s); {back:.1f} s in all")
    ssh_check(lan, key, "after going back")

    # To the image under new names (xenconsoled's log watched): kept.
    start = len(con.buf)
    request(lan, "upgrade-new")
    m = con.expect(r"DOM0: upgrade exit (\d+)", 400, start)
    con.expect(r"DOM0: router.cfg: .*vdev=xvda", 10, start)
    out = con.buf[start:]
    check("upgrade A -> B (the image under new names): xen/upgrade keeps B (exit 0, KEPT)",
          m and m.group(1) == "0" and "KEPT" in out and "console through xenconsoled's log" in out, out[-4000:])
    check("... the xl config names B (/router/v2)", 'router.cfg: kernel = "/router/v2/bzImage"' in out and
          "target=/router/v2/rootfs.squashfs'" in out, out[-1500:])
    stop, stopped, created, kept = (stamp(out, w) for w in ("stopping", "router has shut down", "starting the new",
                                                             "KEPT"))
    ready = re.search(r"ready after ([\d.]+) s from xl create: router ready at uptime ([\d.]+) s", out)
    if None not in (stop, stopped, created, kept) and ready:
        print(f"      figures: upgrade A -> B: xl shutdown {stopped - stop:.1f} s, data disk copy and config switch "
              f"{created - stopped:.1f} s, xl create -> ready {ready.group(1)} s (guest uptime {ready.group(2)} s); "
              f"{kept:.1f} s in all")
    ssh_check(lan, key, "after the upgrade to B")


def test_libvirt(con, lan, bb):
    """The same instance through libvirtd's libxl driver in dom0 (dom0-init's virsh-start and
    virsh-shutdown requests): virsh define of the XML xen/mkdomu wrote, virsh start, served,
    virsh shutdown."""
    start = len(con.buf)
    request(lan, "virsh-start")
    m = con.expect(r"DOM0: virsh start returned at uptime ([\d.]+) s, state (.*)", 120, start)
    out = con.buf[start:]
    check("virsh -c xen:/// define and start the instance from mkdomu's libvirt XML (libxl driver): running",
          m and m.group(2).strip() == "running" and "DOM0: virsh: Domain 'router' defined" in out, out[-3000:])
    s0 = re.search(r"DOM0: virsh start at uptime ([\d.]+) s", out)
    r = con.expect(r"ROUTER: \[dom0 ([\d.]+)\] .*netd: router ready at uptime ([\d.]+) s", 240, start)
    check("... the router boots under libvirt: netd ready", r and s0, con.buf[-4000:])
    if r and s0:
        print(f"      figures: virsh start -> router ready: {float(r.group(1)) - float(s0.group(1)):.1f} s wall clock "
              f"(guest uptime {r.group(2)} s; virsh start itself {float(m.group(1)) - float(s0.group(1)):.1f} s)"
              if m else "")
    ports = dict(re.findall(r"DOM0: ports of (\S+): (.*)", con.buf[start:]))
    check("... its vifs joined the WAN and both LAN bridges",
          all(re.search(r"\bvif\d+\.%d\b" % i, ports.get(br, "")) for i, br in
              enumerate(["xenbr-wan"] + [s[2] for s in SEGMENTS])), ports)
    # Served: a client on the main segment gets a DHCPv4 lease from it again.
    r = sh(bb, "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "3", "-s", "/bin/true", ns=lan, timeout=90)
    check("... it serves: the main segment's client gets a DHCPv4 lease in 192.168.1.0/24",
          re.search(r"lease of 192\.168\.1\.\d+", r.stdout + r.stderr), r.stdout + r.stderr)

    start = len(con.buf)
    request(lan, "virsh-shutdown")
    m = con.expect(r"DOM0: virsh shutdown: state (.*) at uptime ([\d.]+) s \(asked at ([\d.]+) s\)", 120, start)
    con.expect(r"DOM0: done", 10, start)
    out = con.buf[start:]
    after = re.findall(r"DOM0: after: (.*)", out)
    check("virsh shutdown: libvirt says shut off and Xen has no router domain left (within 60 s)",
          m and m.group(1).strip() == "shut off" and after and not any(a.startswith("router ") for a in after),
          out[-3000:])
    check("... cleanly (rcK unmounted /data)", re.search(r"ROUTER: .*rcK: /data unmounted cleanly", out), out[-3000:])
    if m:
        print(f"      figures: virsh shutdown -> shut off: {float(m.group(2)) - float(m.group(3)):.1f} s")


# Every process's memory in steady state (issue 14, item 3), read over SSH without forking
# anything per process (the shell's own builtins): pid, parent, name, RSS and PSS (KiB, from
# smaps_rollup: PSS shares each shared page among the processes mapping it, so the PSS column
# sums to what the processes use together), then the kernel's totals. The SSH session that reads
# it (the shell and its sshd processes up to the listener) is shown apart.
RSS_SCRIPT = r"""for d in /proc/[0-9]*; do
  [ -r $d/smaps_rollup ] || continue
  rss=0; pss=0
  while read -r k v u; do case $k in Rss:) rss=$v ;; Pss:) pss=$v ;; esac; done 2>/dev/null < $d/smaps_rollup
  [ "$rss" = 0 ] && continue
  read -r stat < $d/stat; set -- ${stat##*) }
  read -r comm < $d/comm
  [ "$comm" = busybox ] && comm=busybox:$(tr '\0' '\n' < $d/cmdline | sed -n 2p)
  echo "proc ${d#/proc/} $2 $comm $rss $pss"
done
echo "self $$"
while read -r k v u; do echo "mem $k $v"; done < /proc/meminfo"""


def memory_table(ns, key, address, label):
    """Prints the router's process table (RSS_SCRIPT) and returns {meminfo key: KiB}, or None."""
    r = sh("ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", f"root@{address}", RSS_SCRIPT, ns=ns, timeout=90)
    procs = {int(p): (int(pp), c, int(rss), int(pss)) for p, pp, c, rss, pss in
             re.findall(r"^proc (\d+) (\d+) (\S+) (\d+) (\d+)$", r.stdout, re.M)}
    me = re.search(r"^self (\d+)$", r.stdout, re.M)
    mem = {k.rstrip(":"): int(v) for k, v in re.findall(r"^mem (\S+) (\d+)$", r.stdout, re.M)}
    if not check(f"{label}: every process's memory read over SSH", r.returncode == 0 and procs and me and mem,
                 r.stdout[-1500:] + r.stderr):
        return None
    # The reading session: the shell and its ancestors below the SSH listener (netd's child).
    session, pid = set(), int(me.group(1))
    while pid in procs and procs.get(procs[pid][0], (0, "netd"))[1] != "netd":
        session.add(pid)
        pid = procs[pid][0]
    rows = sorted(((p,) + v for p, v in procs.items() if p not in session), key=lambda x: -x[4])
    print(f"      {label}: every process in steady state (KiB; the SSH session reading this apart):")
    print(f"      {'pid':>5} {'process':16} {'RSS':>6} {'PSS':>6}")
    for p, _, c, rss, pss in rows:
        print(f"      {p:>5} {c:16} {rss:>6} {pss:>6}")
    print(f"      {'':5} {'all of them':16} {'':>6} {sum(x[4] for x in rows):>6}   "
          f"(the SSH session: {len(session)} processes, PSS {sum(procs[p][3] for p in session)})")
    print("      kernel: " + ", ".join(f"{k} {mem[k]}" for k in ("MemTotal", "MemFree", "MemAvailable", "Cached",
                                                                   "Shmem", "AnonPages", "Slab", "KernelStack",
                                                                   "PageTables") if k in mem))
    return mem


def test_instances(con, clients, key, bb):
    """The other instances beside the router (dom0-init's instances-start and instances-stop):
    started one after the other from the one image (each once the one before is ready), each
    ready and serving its own client; the figures; all shut down cleanly (at once)."""
    start = len(con.buf)
    request(clients["main"], "instances-start")
    con.expect(r"DOM0: instances started at uptime", 600, start)
    table = []
    for name, _, _, br, _, v4, v6, _ in INSTANCES:
        created = con.expect(rf"DOM0: instance {name}: xl create at uptime ([\d.]+) s", 5, start)
        rc = con.expect(rf"DOM0: instance {name}: xl create exit (\d+)", 5, start)
        ready = rc and rc.group(1) == "0" and \
            con.expect(rf"INSTANCE {name}: \[dom0 ([\d.]+)\] .*netd: router ready at uptime ([\d.]+) s", 240, start)
        ports = con.expect(rf"DOM0: instance {name}: ports of {br}: (.*)", 5, start)
        check(f"instance {name}: xl create ({MEMORY} MiB, the shared image, its own data disk), its LAN vif on "
              f"{br}, netd ready", created and rc and rc.group(1) == "0" and ready and ports and
              re.search(r"\bvif\d+\.1\b", ports.group(1)),
              "\n".join(ln for ln in con.buf[start:].splitlines() if name in ln)[-3000:])
        table.append([name, float(ready.group(1)) - float(created.group(1)) if ready and created else None,
                      ready.group(2) if ready else "?", None, None])
    for row, (name, _, _, br, _, v4, v6, _) in zip(table, INSTANCES):
        ns = clients[name]
        client_served(ns, bb, f"instance {name}", v4, v6)
        r = sh("ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", f"root@{v4}1",
               "hostname; grep -E '^Mem(Total|Available):' /proc/meminfo", ns=ns, timeout=90)
        tot, av = re.search(r"MemTotal:\s+(\d+)", r.stdout), re.search(r"MemAvailable:\s+(\d+)", r.stdout)
        check(f"instance {name}: SSH from its client reaches it (hostname {name})",
              r.returncode == 0 and r.stdout.startswith(name + "\n") and tot and av, r.stdout + r.stderr)
        if tot and av:
            row[3:] = [(int(tot.group(1)) - int(av.group(1))) / 1024, int(tot.group(1)) / 1024]
    name, *_, v4, _, _ = INSTANCES[0]
    memory_table(clients[name], key, f"{v4}1", f"instance {name} (one LAN, {MEMORY} MiB)")

    # A NIC unplugged and plugged back: the first instance's LAN vif detached and attached again
    # (xl network-detach, network-attach: the same MAC and bridge). Its netd sees the new NIC in
    # the kernel's link notifications and configures it by itself: the client is served again.
    name, _, lan_mac, br, _, v4, v6, _ = INSTANCES[0]
    start = len(con.buf)
    request(clients["main"], f"vif-replug {name} {lan_mac} {br}")
    det = con.expect(rf"DOM0: vif-replug {name}: detach exit (\d+) at uptime ([\d.]+) s", 120, start)
    att = con.expect(rf"DOM0: vif-replug {name}: attach exit (\d+) at uptime ([\d.]+) s, ports of {br}: (.*)", 120, start)
    check(f"instance {name}: its LAN vif detached and attached again (xl network-detach, network-attach)",
          det and det.group(1) == "0" and att and att.group(1) == "0" and re.search(r"\bvif\d+\.\d+\b", att.group(3)),
          "\n".join(ln for ln in con.buf[start:].splitlines() if "vif-replug" in ln or name in ln)[-3000:])
    t = time.monotonic()
    a = client_served(clients[name], bb, f"instance {name}, its LAN NIC plugged back", v4, v6)
    if v6 in a:
        print(f"      figures: instance {name}: client served {time.monotonic() - t:.1f} s after the vif was attached again")
    r = sh("ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", f"root@{v4}1", "logread | grep 'links changed'",
           ns=clients[name], timeout=90)
    check(f"instance {name}: netd logged the NIC going and coming and configured it again, with no reload",
          r.returncode == 0 and re.search(rf"links changed: -\d+ eth\d+ {lan_mac}", r.stdout) and
          re.search(rf"links changed: \+\d+ eth\d+ {lan_mac}", r.stdout), r.stdout + r.stderr)
    for line in r.stdout.splitlines():
        print("      " + line)

    start = len(con.buf)
    request(clients["main"], "instances-stop")
    con.expect(r"DOM0: after the instances: ", 120, start)
    out = con.buf[start:]
    for name, *_ in INSTANCES:
        m = re.search(rf"DOM0: instance {name}: xl shutdown exit (\d+)", out)
        check(f"instance {name}: xl shutdown, cleanly (rcK unmounted /data)", m and m.group(1) == "0" and
              re.search(rf"INSTANCE {name}: .*rcK: /data unmounted cleanly", out), out[-3000:])
    print(f"      figures: {len(INSTANCES) + 1} instances on one host ({MEMORY} MiB each), "
          f"the {len(INSTANCES)} beside the router started one after the other, each once the one before was ready:")
    print(f"      {'instance':9} {'xl create -> ready':>19} {'guest uptime':>13} {'memory in use':>14} {'of':>6}")
    for name, took, up, used, total in table:
        print(f"      {name:9} {took if took is not None else float('nan'):17.1f} s {up:>11} s "
              f"{used if used is not None else float('nan'):10.1f} MiB {total if total is not None else float('nan'):5.1f}")
    for line in re.findall(r"DOM0: memory \(one instance\): .*", con.buf) + \
            re.findall(r"DOM0: (?:memory \(all instances\)|xl list \(all instances\)|xl info): .*", out):
        print("      " + line)
    xone = re.search(r"DOM0: xl info \(one instance\): free_memory\s*: (\d+)", con.buf)
    xall = re.search(r"DOM0: xl info: free_memory\s*: (\d+)", out)
    if xone and xall:
        per = (int(xone.group(1)) - int(xall.group(1))) / len(INSTANCES)
        print(f"      figures: Xen's free memory {xone.group(1)} MiB with one instance, {xall.group(1)} MiB with "
              f"{len(INSTANCES) + 1}: {per:.1f} MiB per instance ({MEMORY} MiB of guest memory, "
              f"{per - MEMORY:.1f} MiB of Xen's own for it)")
    one = re.search(r"DOM0: free \(one instance\): Mem:\s+(\d+)\s+(\d+)", con.buf)
    alli = re.search(r"DOM0: free \(all instances\): Mem:\s+(\d+)\s+(\d+)", out)
    if one and alli:
        print(f"      figures: dom0 memory in use {one.group(2)} MiB with one instance, {alli.group(2)} MiB with "
              f"{len(INSTANCES) + 1} (of {alli.group(1)} MiB): "
              f"{(int(alli.group(2)) - int(one.group(2))) / len(INSTANCES):.1f} MiB per instance more")


# The boot-phase table (issue 14): where the time goes from `xl create` to the first LAN client
# holding a SLAAC address. Three clocks, each event read where it happens:
#   - dom0's uptime: xl create issued and returned (dom0-init's markers; its xl-step lines name
#     the toolstack's slow steps);
#   - the router's uptime: its kernel starts at 0 (Xen PV: the kernel's clock starts in
#     xen_start_kernel), init from the kernel's printk time, rcS and netd from their own lines;
#   - the host's monotonic clock: the first RA and the client's address, seen by a watcher in the
#     client's namespace (a raw ICMPv6 socket for RAs; rtnetlink address events, the address
#     read from /proc/net/if_inet6 for its tentative flag).
# dom0 and the router both take their realtime clock from Xen's wallclock and system time:
# each samples realtime between two uptime reads (dom0-init at xl create; the router over SSH),
# which puts dom0's uptime on the router's. The host's clock goes on the router's through the
# same SSH session: the router's uptime read in answer to a line from the host, the exchange
# with the shortest round trip kept (error: half of it).
# The table's clock is the router's uptime, shown as seconds after xl create.
WATCHER = r"""
import os, select, socket, struct, sys, time
want = sys.argv[1]  # the /64 as if_inet6 writes it: 16 hex digits
ra = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
filt = [0xffffffff] * 8
filt[134 >> 5] &= ~(1 << (134 & 31))  # ICMP6_FILTER: router advertisements only
ra.setsockopt(socket.IPPROTO_ICMPV6, 1, struct.pack("=8I", *filt))
nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
nl.bind((0, 0x100))  # RTMGRP_IPV6_IFADDR
print("watching", flush=True)
seen, ras = set(), 0
while True:
    r, _, _ = select.select([ra, nl], [], [], 1.0)
    now = time.monotonic()
    if ra in r:
        data, src = ra.recvfrom(2048)
        ras += 1
        if ras <= 3:
            print(f"ra {now:.3f} {src[0]}", flush=True)
    if nl in r:
        nl.recv(65536)
    for line in open("/proc/net/if_inet6"):
        a, _, _, _, flags, dev = line.split()
        if dev == "eth0" and a.startswith(want):
            addr = ":".join(a[i:i + 4] for i in range(0, 32, 4))
            f = int(flags, 16)
            if f & 0x40 and "t" + a not in seen:
                seen.add("t" + a)
                print(f"tentative {now:.3f} {addr}", flush=True)
            elif not f & 0x48:
                print(f"address {now:.3f} {addr}", flush=True)
                sys.exit(0)
"""


class BootWatcher:
    """The client side of the boot-phase table: started in the client's namespace before QEMU,
    its lines (first RAs, the address tentative, then not) kept with nothing else to do."""

    def __init__(self, ns, prefix):
        hexp = "".join(f"{int(g, 16):04x}" for g in prefix.rstrip(":").split(":"))
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", WATCHER, hexp],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        import threading
        self.t = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),
                                  daemon=True)
        self.t.start()

    def wait(self, timeout):
        self.t.join(timeout)
        return self.lines

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def stat_time(text):
    """Seconds since the epoch from BusyBox stat's %y ("2026-11-25 03:13:35.861744606", UTC)."""
    whole, frac = text.split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) + float("0." + frac)


def router_clock(lan, key, router):
    """Over one SSH session to the router (at its IPv6 address on the segment: the client has
    no IPv4 address yet): its realtime between two uptime reads, then the
    router's uptime against the host's monotonic clock (the exchange with the shortest round
    trip); and netd's own figures for its start (the firewall load, the first transition).
    Returns (router realtime minus uptime, host clock minus router uptime, half the round trip,
    netd's figures), or None."""
    remote = ("read u1 x < /proc/uptime; touch /tmp/.clock; c=$(stat -c %y /tmp/.clock); "
              "read u2 x < /proc/uptime; echo \"clock $u1 $u2 $c\"; "
              "netctl firewall 2>&1 | head -n 1 | sed 's/^/note firewall /'; "
              "logread | grep -m 1 'netd.*configuration .* applied' | sed 's/^.*applied: /note transition /'; "
              "echo end; while read l; do read u x < /proc/uptime; echo \"up $u\"; done")
    end = time.monotonic() + 60
    while time.monotonic() < end:
        p = subprocess.Popen(["ip", "netns", "exec", lan, "ssh", "-i", key, "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
                              f"root@{router}", remote], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, bufsize=1)
        first = p.stdout.readline().split()
        if len(first) >= 5 and first[0] == "clock":
            break
        p.kill()
        p.wait()
        time.sleep(1)
    else:
        return None
    notes = []
    try:
        for line in iter(p.stdout.readline, ""):
            if line.strip() == "end":
                break
            notes.append(line.strip()[5:])
        u1, u2 = float(first[1]), float(first[2])
        rt = stat_time(first[3] + " " + first[4])
        best = None
        for _ in range(8):
            t1 = time.monotonic()
            p.stdin.write("\n")
            p.stdin.flush()
            line = p.stdout.readline().split()
            t2 = time.monotonic()
            if len(line) == 2 and line[0] == "up" and (best is None or t2 - t1 < best[1] - best[0]):
                best = (t1, t2, float(line[1]))
    finally:
        p.kill()
        p.wait()
    if best is None:
        return None
    return rt - (u1 + u2) / 2, (best[0] + best[1]) / 2 - best[2], (best[1] - best[0]) / 2, notes


def boot_phases(con, watcher, lan, key):
    """Prints the boot-phase table of the first xl create; fails only when a phase is missing."""
    began = time.monotonic()
    buf = con.buf
    num = r"([\d.]+)"
    found = {
        "dom0 clock": re.search(r"DOM0: clock: uptime ([\d.]+) \.\. ([\d.]+) s, realtime (\S+ \S+)", buf),
        "xl create": re.search(r"DOM0: xl create at uptime " + num, buf),
        "xl returned": re.search(r"DOM0: xl create returned at uptime " + num, buf),
        "kernel": re.search(r"ROUTER: \[dom0 [\d.]+\] \[\s*0\.000000\] Linux version", buf),
        "init": re.search(r"ROUTER: \[dom0 [\d.]+\] \[\s*([\d.]+)\] Run /sbin/init as init process", buf),
        "rcS start": re.search(r"ROUTER: .*rcS: init started at uptime " + num, buf),
        "rcS end": re.search(r"ROUTER: .*rcS: done at uptime " + num, buf),
        "netd ready": re.search(r"ROUTER: .*netd: router ready at uptime ([\d.]+) s \(services started (\d+) ms", buf),
    }
    lines = watcher.wait(90)
    ra = [ln.split() for ln in lines if ln.startswith("ra ")]
    addr = [ln.split() for ln in lines if ln.startswith("address ")]
    tent = [ln.split() for ln in lines if ln.startswith("tentative ")]
    clock = router_clock(lan, key, SEGMENTS[0][4] + ":1") if addr else None
    missing = [k for k, v in found.items() if not v] + (["first RA"] if not ra else []) + \
        (["client address"] if not addr else []) + (["router clock over SSH"] if not clock else [])
    if not check("boot-phase table: every phase from xl create to the client's SLAAC address was seen",
                 not missing, f"missing: {', '.join(missing)}; watcher: {lines[-5:]}"):
        return
    f = found
    d0 = f["dom0 clock"]
    d0_rt = stat_time(d0.group(3))
    dom0_off = d0_rt - (float(d0.group(1)) + float(d0.group(2))) / 2   # dom0 realtime - dom0 uptime
    boot_rt, host_off, host_err, netd_notes = clock                                # router realtime - uptime, ...
    on_router = lambda dom0_up: dom0_up + dom0_off - boot_rt            # dom0 uptime -> router uptime
    created = on_router(float(f["xl create"].group(1)))
    returned = on_router(float(f["xl returned"].group(1)))
    ready, services_ms = float(f["netd ready"].group(1)), int(f["netd ready"].group(2))
    netd_start = ready - services_ms / 1000
    first_ra = float(ra[0][1]) - host_off
    address = float(addr[0][1]) - host_off
    rows = [
        ("hypervisor/toolstack", "xl create issued -> router kernel starts", created, 0.0),
        ("kernel", "kernel start -> init runs (printk)", 0.0, float(f["init"].group(1))),
        ("init -> rcS", "init runs -> rcS's first line", float(f["init"].group(1)), float(f["rcS start"].group(1))),
        ("rcS", "rcS start -> rcS done", float(f["rcS start"].group(1)), float(f["rcS end"].group(1))),
        ("init -> netd", "rcS done -> netd started", float(f["rcS end"].group(1)), netd_start),
        ("netd", "netd started -> router ready", netd_start, ready),
        ("radvd", "router ready -> first RA on the client's link", ready, first_ra),
        ("client", "first RA -> SLAAC address not tentative", first_ra, address),
    ]
    print("      boot phases of the first xl create (seconds after xl create; TCG, xl -vvv):")
    print(f"      {'phase':22} {'from -> to':48} {'start':>7} {'end':>7} {'took':>7}")
    for name, what, a, b in rows:
        print(f"      {name:22} {what:48} {a - created:7.2f} {b - created:7.2f} {b - a:7.2f}")
    print(f"      {'total':22} {'xl create -> client address':48} {0:7.2f} {address - created:7.2f} "
          f"{address - created:7.2f}")
    print(f"      notes: xl create returned at {returned - created:.2f} s; first RA from {ra[0][2]}"
          + (f", the address tentative at {float(tent[0][1]) - host_off - created:.2f} s" if tent else "")
          + f" ({addr[0][2]}); host clock on the router's within +-{host_err * 1000:.0f} ms (SSH round trip)")
    # The clocks agree if no console line reached dom0 before the router printed it.
    lat = []
    for m in re.finditer(r"ROUTER: \[dom0 ([\d.]+)\] (?:\[\s*([\d.]+)\] |.*(?:init started|done) at uptime ([\d.]+) s)",
                         buf):
        u = m.group(2) or m.group(3)
        if u and float(u) > 0:
            lat.append(float(m.group(1)) - (float(u) + boot_rt - dom0_off))
    if lat:
        print(f"      clocks: router console lines reached dom0 {min(lat):.2f} s or more after they were printed"
              + (" (NEGATIVE: dom0's and the router's realtime clocks disagree; the toolstack row is off)"
                 if min(lat) < -0.2 else ""))
    for n in netd_notes:
        print(f"      netd: {n}")
    for m in re.findall(r"DOM0: xl-step: (.*)", buf)[:12]:
        print(f"      toolstack step (s after xl create): {m}")
    print(f"      (the table cost the test {time.monotonic() - began:.1f} s: the client's address, one SSH session)")


def main():
    out = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="xen-test-")
    xml = os.path.join(work, "xml")
    os.makedirs(xml)
    subprocess.run([os.path.join(top, "xen", "mkdomu"), "--name", "gw1", "--kernel", "/srv/v6router/bzImage",
                    "--rootfs", "/srv/v6router/rootfs.squashfs", "--data", "/srv/v6router/gw1-data.img",
                    "--wan-mac", WAN_MAC, *MKDOMU_LANS, "--memory", str(MEMORY), "--out-dir", xml], check=True)
    r = sh("virt-xml-validate", os.path.join(xml, "gw1.xml"), "domain")
    check("the libvirt domain XML (WAN and two LAN interfaces) validates (virt-xml-validate ... domain)",
          r.returncode == 0 and open(os.path.join(xml, "gw1.xml")).read().count("<interface ") == 3,
          r.stdout + r.stderr)

    # The data disk: the two-segment config, validated by the image's own netd (netd --check).
    conf, data = os.path.join(work, "router.conf"), os.path.join(work, "data.img")
    with open(conf, "w") as f:
        f.write(CONFIG)
    r = sh(os.path.join(top, "image", "mkdata"), "--config", conf, "--authorized-keys",
           os.path.join(out, "admin_key.pub"), "--netd", os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"),
           "--hostname", "gw1", "-o", data, timeout=120)
    if not check("data disk with two [[lan]] segments (mkdata; the image's netd --check accepts the config)",
                 r.returncode == 0, r.stdout + r.stderr):
        shutil.rmtree(work, ignore_errors=True)
        return 1

    # The broken image for the upgrade test: the root image with BROKEN_NETD as netd.
    stage = os.path.join(work, "broken-stage")
    shutil.copytree(os.path.join(out, "rootfs.stage"), stage, symlinks=True)
    os.unlink(os.path.join(stage, "usr", "sbin", "netd"))
    with open(os.path.join(stage, "usr", "sbin", "netd"), "w") as f:
        f.write(BROKEN_NETD)
    os.chmod(os.path.join(stage, "usr", "sbin", "netd"), 0o755)
    broken = os.path.join(work, "broken-rootfs.squashfs")
    r = sh("mksquashfs", stage, broken, "-noappend", "-all-root", "-comp", "gzip", "-no-progress", "-quiet",
           timeout=300)
    shutil.rmtree(stage, ignore_errors=True)
    if not check("the broken image for the upgrade test (mksquashfs)", r.returncode == 0, r.stdout + r.stderr):
        shutil.rmtree(work, ignore_errors=True)
        return 1

    # The other instances: a data disk each (16 MiB: it holds dom0's initramfs memory here) and
    # the xl config xen/mkdomu writes, all naming the one kernel and root image in /router.
    instance_files = []
    with open(os.path.join(work, "instances"), "w") as f:
        f.writelines(f"{name} {br} {port}\n" for name, _, _, br, port, _, _, _ in INSTANCES)
    instance_files += ["--file", f"{os.path.join(work, 'instances')}:/router/instances"]
    for name, wan_mac, lan_mac, br, _, v4, v6, _ in INSTANCES:
        iconf, idata = os.path.join(work, f"{name}.conf"), os.path.join(work, f"{name}-data.img")
        with open(iconf, "w") as f:
            f.write(INSTANCE_CONFIG.format(name=name, lan_mac=lan_mac, wan_mac=wan_mac, v4=v4, v6=v6))
        r = sh(os.path.join(top, "image", "mkdata"), "--config", iconf, "--authorized-keys",
               os.path.join(out, "admin_key.pub"), "--netd", os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"),
               "--hostname", name, "--size", "16", "-o", idata, timeout=120)
        r2 = sh(os.path.join(top, "xen", "mkdomu"), "--name", name, "--kernel", "/router/bzImage",
                "--rootfs", "/router/rootfs.squashfs", "--data", f"/router/{name}-data.img", "--memory", str(MEMORY),
                "--wan-mac", wan_mac, "--lan-mac", lan_mac, "--lan-bridge", br, "--out-dir", work)
        if not check(f"instance {name}: data disk (mkdata) and xl config (mkdomu, {MEMORY} MiB, LAN bridge {br})",
                     r.returncode == 0 and r2.returncode == 0, r.stdout + r.stderr + r2.stdout + r2.stderr):
            shutil.rmtree(work, ignore_errors=True)
            return 1
        instance_files += ["--file", f"{idata}:/router/{name}-data.img",
                           "--file", f"{os.path.join(work, name + '.cfg')}:/router/{name}.cfg"]

    t = time.monotonic()
    r = subprocess.run([os.path.join(HERE, "build-dom0"), out, data, work,
                        "--file", f"{os.path.join(out, 'bzImage')}:/router/broken/bzImage",
                        "--file", f"{broken}:/router/broken/rootfs.squashfs",
                        *instance_files, "--wan-mac", WAN_MAC, *MKDOMU_LANS, "--memory", str(MEMORY)],
                       text=True, capture_output=True)
    if not check("dom0 built from Debian's packages (cached)", r.returncode == 0, r.stdout + r.stderr):
        shutil.rmtree(work, ignore_errors=True)
        return 1
    print(f"      {r.stdout.strip()} in {time.monotonic() - t:.0f} s")

    lab = rl.Lab("xen").create()
    guest = f"{lab.name}-guest"
    err = add_client(lab.wire, guest, "lan2")
    if not check("the second segment's client namespace is wired to dom0's third NIC", not err, err):
        lab.destroy()
        del_ns(guest)
        shutil.rmtree(work, ignore_errors=True)
        return 1
    clients = {"main": lab.lan, "guest": guest}
    for name, *_ in INSTANCES:
        err = add_client(lab.wire, f"{lab.name}-{name}", name)
        if not check(f"instance {name}'s client namespace is wired to its own dom0 NIC", not err, err):
            lab.destroy()
            for ns in [guest] + [f"{lab.name}-{i[0]}" for i in INSTANCES]:
                del_ns(ns)
            shutil.rmtree(work, ignore_errors=True)
            return 1
    sh("ip", "addr", "add", "203.0.113.1/24", "dev", "eth0", ns=lab.isp)
    isp_cfg = os.path.join(work, "isp.json")
    with open(isp_cfg, "w") as f:
        f.write('{"ifname": "eth0", "server_ip": "203.0.113.1", "offer_ip": "203.0.113.10", '
                '"options": {"1": "ffffff00", "3": "cb007101", "51": "00000e10"}, "offer_by_mac": '
                + json.dumps({i[1]: i[7] for i in INSTANCES}) + '}')
    isp = subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, os.path.join(top, "tests", "lib",
                            "dhcpserver.py"), isp_cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # vendor=GenuineIntel: Xen drops SEP from an AMD CPU's features (no SYSENTER in long mode
    # there), and then no x86 model in libvirt's CPU map fits qemu64's: libvirtd's libxl driver
    # refuses to start ("Cannot find suitable CPU model for given data"). Two CPUs: QEMU runs each
    # on a host thread of its own (multi-threaded TCG), so dom0's toolstack and hotplug scripts
    # and the routers' boots use both of the machine's cores.
    cmd = lab.qemu_prefix() + [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64,+rdrand,vendor=GenuineIntel", "-m", "1024",
        "-smp", "2", "-nodefaults",
        "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
        "-kernel", os.path.join(work, "xen"),
        "-append", "dom0_mem=768M,max:768M console=com1 com1=115200,8n1 noreboot",
        "-initrd", f"{os.path.join(work, 'vmlinuz')} console=hvc0 quiet,{os.path.join(work, 'dom0.cpio.gz')}",
        "-netdev", "tap,id=wan,ifname=tap-wan,script=no,downscript=no", "-device", "e1000,netdev=wan",
        "-netdev", "tap,id=lan,ifname=tap-lan,script=no,downscript=no", "-device", "e1000,netdev=lan",
        "-netdev", "tap,id=lan2,ifname=tap-lan2,script=no,downscript=no", "-device", "e1000,netdev=lan2"]
    for name, *_ in INSTANCES:
        cmd += ["-netdev", f"tap,id={name},ifname=tap-{name},script=no,downscript=no", "-device", f"e1000,netdev={name}"]
    boot = BootWatcher(lab.lan, SEGMENTS[0][4])  # the boot-phase table's client side
    t0 = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    con = Serial(qemu, os.path.join(out, "xen-console.log"))
    try:
        m = con.expect(r"DOM0: toolstack up at uptime ([\d.]+) s", 240)
        check("Xen boots under QEMU, dom0 brings up the toolstack", m, con.buf[-3000:])
        if not m:
            return 1
        print(f"      dom0 toolstack up at dom0 uptime {m.group(1)} s ({time.monotonic() - t0:.1f} s wall)")
        check("dom0-net made the bridges and loaded its DHCP-guarding bridge rules in dom0",
              con.expect(r"DOM0: bridges ready", 30) and con.expect(r"DOM0: nft: .*udp dport 67 drop", 5),
              con.buf[-2000:])
        m = con.expect(r"DOM0: xl create -n exit (\d+)", 60)
        check("xl create -n (dry run) accepts the xl config from xen/mkdomu", m and m.group(1) == "0", con.buf[-2000:])
        m = con.expect(r"DOM0: xl create at uptime ([\d.]+) s", 30)
        create_up = float(m.group(1)) if m else None
        r = con.expect(r"ROUTER: \[dom0 ([\d.]+)\] .*netd: router ready at uptime ([\d.]+) s", 240)
        check("xl create starts the router as a PV domU: netd ready", r, con.buf[-4000:])
        check("dom0-net made the WAN and LAN bridges in dom0 (the router's vifs joined them)",
              "DOM0: xl create returned" in con.buf and "Could not find bridge" not in con.buf, con.buf[-2000:])
        # The xl config's vifs in order: WAN (vifN.0), then one per segment (vifN.1, vifN.2).
        ports = dict(re.findall(r"DOM0: ports of (\S+): (.*)", con.buf))
        for i, br in enumerate(["xenbr-wan"] + [s[2] for s in SEGMENTS]):
            check(f"the router's vif {i} joined {br}", re.search(rf"\bvif\d+\.{i}\b", ports.get(br, "")), ports)
        if r and create_up is not None:
            print(f"      figures: xl create -> router ready: guest uptime {r.group(2)} s, "
                  f"{float(r.group(1)) - create_up:.1f} s wall clock (dom0's clock, TCG)")
        if r:
            boot_phases(con, boot, lab.lan, os.path.join(out, "admin_key"))
        check("the guest booted as a Xen PV guest (hvc0 console, xen-netfront/blkfront)",
              con.expect(r"ROUTER: .*Booting kernel on Xen", 5) and con.expect(r"ROUTER: .*blkfront: xvd", 5),
              con.buf[-3000:])

        # A client on each segment: DHCPv4 (BusyBox udhcpc from the image) from its segment's
        # subnet, a SLAAC address from its segment's /64 and none from the other's.
        bb = os.path.join(out, "rootfs.stage", "bin", "busybox")
        for name, _, br, v4, v6 in SEGMENTS:
            a = client_served(clients[name], bb, f"{name} segment ({br})", v4, v6)
            others = [s[4] for s in SEGMENTS if s[0] != name]
            check(f"{name} segment ({br}): ... and none from another segment's /64",
                  not any(o in a for o in others), a)
        key = os.path.join(out, "admin_key")
        r = sh("ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "root@192.168.1.1",
               "uname -r; netctl status | head -3; grep -E '^Mem(Total|Available):' /proc/meminfo; "
               "ls /sys/bus/xen/devices/", ns=lab.lan, timeout=90)
        check("SSH into the router with the key works (from the main segment)",
              r.returncode == 0 and "config:" in r.stdout, r.stdout + r.stderr)
        check("inside: Xen PV devices on the xen bus (three vifs: WAN and two LAN; vbd)",
              all(f"vif-{i}" in r.stdout for i in range(3)) and "vbd-" in r.stdout, r.stdout)
        tot = re.search(r"MemTotal:\s+(\d+)", r.stdout)
        av = re.search(r"MemAvailable:\s+(\d+)", r.stdout)
        if tot and av:
            print(f"      figures: domU memory in use {(int(tot.group(1)) - int(av.group(1))) / 1024:.0f} MiB "
                  f"of {int(tot.group(1)) / 1024:.0f} MiB ({MEMORY} MiB domain)")

        test_instances(con, {**clients, **{i[0]: f"{lab.name}-{i[0]}" for i in INSTANCES}}, key, bb)
        memory_table(lab.lan, key, "192.168.1.1", f"the router (two segments, {MEMORY} MiB)")

        test_upgrades(con, lab.lan, key)

        # xl shutdown through dom0 (its address on xenbr-lan, set by dom0-init).
        start = len(con.buf)
        request(lab.lan, "xl-shutdown")
        m = con.expect(r"DOM0: xl shutdown exit (\d+)", 120, start)
        check("xl shutdown stops the router", m and m.group(1) == "0", con.buf[-3000:])
        check("... cleanly (rcK unmounted /data)",
              con.expect(r"ROUTER: .*rcK: /data unmounted cleanly", 10, start), con.buf[-3000:])
        test_libvirt(con, lab.lan, bb)
        for line in re.findall(r"DOM0: (?:xl list|free): .*", con.buf):
            print("      " + line)
        dm = re.search(r"DOM0: free: Mem:\s+(\d+)\s+(\d+)", con.buf)
        if dm:
            print(f"      figures: dom0 memory in use {dm.group(2)} MiB of {dm.group(1)} MiB (dom0_mem=768M; "
                  "libvirtd running, the router a libvirt domain)")
        check("dom0 powers off", con.expect(r"DOM0: done", 30))
        qemu.wait(60)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        isp.kill()
        boot.stop()
        lab.destroy()
        for ns in [guest] + [f"{lab.name}-{i[0]}" for i in INSTANCES]:
            del_ns(ns)
        shutil.rmtree(work, ignore_errors=True)
    print(f"figures: whole run {time.monotonic() - t0:.0f} s wall clock")
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
