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
names (a new version's stand-in), which it keeps. Then `xl shutdown` stops the router cleanly.
Then the same instance through libvirt, as OpenStack or any libvirt tool runs it: libvirtd in
dom0 (Debian's, with its libxl driver alone, running beside xl since dom0's start) takes
`virsh -c xen:/// define` of the XML xen/mkdomu wrote (xen/upgrade kept it in step), `virsh
start` boots the router on the same data disk, the main segment's client gets a DHCPv4 lease
from it, and `virsh shutdown` stops it cleanly: libvirt says shut off and Xen has no router
domain left. Also: the libvirt XML validates with virt-xml-validate. Figures: xl create ->
router ready (guest uptime, wall clock), each upgrade's steps, virsh start -> ready, virsh
shutdown -> shut off, dom0 and domU memory.

usage: test_xen.py OUT_DIR
"""
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


def request(lan, what):
    """One request to dom0-init (its address on xenbr-lan, port 9999), from the main segment;
    tried again for a while when refused (dom0-init may still be finishing the request before)."""
    r = sh(sys.executable, "-c", "import socket,time\nfor i in range(100):\n try:\n"
           "  s=socket.create_connection(('192.168.1.50',9999),timeout=10);break\n"
           " except ConnectionRefusedError:\n  time.sleep(0.2)\n"
           f"s.sendall(b'{what}\\n');s.close()", ns=lan)
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


def main():
    out = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="xen-test-")
    xml = os.path.join(work, "xml")
    os.makedirs(xml)
    subprocess.run([os.path.join(top, "xen", "mkdomu"), "--name", "gw1", "--kernel", "/srv/v6router/bzImage",
                    "--rootfs", "/srv/v6router/rootfs.squashfs", "--data", "/srv/v6router/gw1-data.img",
                    "--wan-mac", WAN_MAC, *MKDOMU_LANS, "--out-dir", xml], check=True)
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

    t = time.monotonic()
    r = subprocess.run([os.path.join(HERE, "build-dom0"), out, data, work,
                        "--file", f"{os.path.join(out, 'bzImage')}:/router/broken/bzImage",
                        "--file", f"{broken}:/router/broken/rootfs.squashfs",
                        "--wan-mac", WAN_MAC, *MKDOMU_LANS],
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
    sh("ip", "addr", "add", "203.0.113.1/24", "dev", "eth0", ns=lab.isp)
    isp_cfg = os.path.join(work, "isp.json")
    with open(isp_cfg, "w") as f:
        f.write('{"ifname": "eth0", "server_ip": "203.0.113.1", "offer_ip": "203.0.113.10", '
                '"options": {"1": "ffffff00", "3": "cb007101", "51": "00000e10"}}')
    isp = subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, os.path.join(top, "tests", "lib",
                            "dhcpserver.py"), isp_cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # vendor=GenuineIntel: Xen drops SEP from an AMD CPU's features (no SYSENTER in long mode
    # there), and then no x86 model in libvirt's CPU map fits qemu64's: libvirtd's libxl driver
    # refuses to start ("Cannot find suitable CPU model for given data").
    cmd = lab.qemu_prefix() + [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64,+rdrand,vendor=GenuineIntel", "-m", "1024", "-nodefaults",
        "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
        "-kernel", os.path.join(work, "xen"),
        "-append", "dom0_mem=768M,max:768M console=com1 com1=115200,8n1 noreboot",
        "-initrd", f"{os.path.join(work, 'vmlinuz')} console=hvc0 quiet,{os.path.join(work, 'dom0.cpio.gz')}",
        "-netdev", "tap,id=wan,ifname=tap-wan,script=no,downscript=no", "-device", "e1000,netdev=wan",
        "-netdev", "tap,id=lan,ifname=tap-lan,script=no,downscript=no", "-device", "e1000,netdev=lan",
        "-netdev", "tap,id=lan2,ifname=tap-lan2,script=no,downscript=no", "-device", "e1000,netdev=lan2"]
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
        check("the guest booted as a Xen PV guest (hvc0 console, xen-netfront/blkfront)",
              con.expect(r"ROUTER: .*Booting kernel on Xen", 5) and con.expect(r"ROUTER: .*blkfront: xvd", 5),
              con.buf[-3000:])

        # A client on each segment: DHCPv4 (BusyBox udhcpc from the image) from its segment's
        # subnet, a SLAAC address from its segment's /64 and none from the other's.
        bb = os.path.join(out, "rootfs.stage", "bin", "busybox")
        for name, _, br, v4, v6 in SEGMENTS:
            ns = clients[name]
            # A clean start, link-local address included: down and up again, so the client
            # also solicits an RA at once (a flush alone would leave it waiting for radvd's next
            # unsolicited one, up to 100 s away).
            sh("ip", "addr", "flush", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "down", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            r = sh(bb, "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "3", "-s", "/bin/true", ns=ns,
                   timeout=90)
            lease = re.search(rf"lease of ({re.escape(v4)}\d+)", r.stdout + r.stderr)
            check(f"{name} segment ({br}): the client gets a DHCPv4 lease in {v4}0/24 from the router", lease,
                  r.stdout + r.stderr)
            if lease:
                sh("ip", "addr", "add", f"{lease.group(1)}/24", "dev", "eth0", ns=ns)
            end = time.monotonic() + 60
            a = ""
            while time.monotonic() < end and v6 not in a:
                a = sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global", ns=ns).stdout
                time.sleep(1)
            check(f"{name} segment ({br}): the client autoconfigures a SLAAC address in {v6}:/64 from the "
                  "router's RAs", v6 in a, sh("ip", "-6", "addr", ns=ns).stdout)
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
                  f"of {int(tot.group(1)) / 1024:.0f} MiB (128 MiB domain)")

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
        lab.destroy()
        del_ns(guest)
        shutil.rmtree(work, ignore_errors=True)
    print(f"figures: whole run {time.monotonic() - t0:.0f} s wall clock")
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
