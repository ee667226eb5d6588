#!/usr/bin/env python3
"""Several LAN segments (issue 12), in the booted image under QEMU, one boot: the router with
its WAN NIC and two LAN NICs, three segments and the 6in4 tunnel (he, the tunnel test's ISP
and broker) routing 2001:db8:100::/48:

  main   NIC 1 untagged, full,  192.168.1.0/24, 2001:db8:100:1::/64 (client NAME-lan, and a
         downstream router NAME-down: 192.168.1.2 and 2001:db8:100:1::2, with 10.99.0.1 and
         2001:db8:100:f00::1 behind it, reached through [[route]])
  guest  NIC 2 untagged, guest, 192.168.2.0/24, 2001:db8:100:2::/64 (client NAME-lan2)
  lab    NIC 2 VLAN 30,  full,  192.168.3.0/24, 2001:db8:100:3::/64 (client NAME-lab, whose
         frames carry the 802.1Q tag 30: routerlab's add_host(vlan=30))

With tools that are not ours (BusyBox udhcpc, rdisc6, dig, iputils ping, Python sockets):
1. each client: its segment's DHCPv4 lease, the RA with its /64 only, a SLAAC address in it;
2. each client reaches the internet host over the tunnel (IPv6) and over IPv4 (NAT); the lab
   client's uploads take the fast path (netd's flowtable on the VLAN's trunk NIC);
3. guest isolation: the guest reaches neither the main client (ping, TCP, v4 and v6, both
   ways), nor the router's SSH on any address, nor the main client's open6 port, nor the
   network behind the downstream router; it still has the router's DNS (v4, v6) and DHCP. Main
   reaches the guest's open6 port and no other guest port; main and lab reach each other;
4. DNS: a client's DHCPv4 host name has its SLAAC address as AAAA and back (PTR);
5. [[route]]: 10.99.0.0/24 and 2001:db8:100:f00::/56 via the downstream router carry traffic
   from the lab client and the internet host, and from the main client, whose packets the
   router sends back out of main's NIC (the clients ignore ICMP redirects); a reload of the
   file without the routes removes them, and the traffic stops.

The guest boots a copy of the image (a build rewriting OUT_DIR meanwhile cannot reach it).

usage: test_segments.py OUT_DIR        Ends with 'N passed, N failed'.
"""
import concurrent.futures
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import routerlab as rl  # noqa: E402
import test_tunnel as tt  # noqa: E402

INET6, INET4 = tt.INET6, "203.0.113.1"   # the internet host (ISP namespace), port 5001: "hello PEER"
WAN_IP = "203.0.113.10"
ROUTED = "2001:db8:100::/48"
SEGMENTS = {"main": 1, "guest": 2, "lab": 3}       # name -> subnet_id (and third IPv4 octet)
PORT = 9000          # every client listens here (TCP, IPv4 and IPv6)
OPEN_GUEST, CLOSED_GUEST, OPEN_MAIN = 8080, 8082, 8081
NAMES = {"main": "mainpc", "guest": "guestpc", "lab": "labpc"}
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n      {str(detail)[:2500]}" if detail and not ok else ""),
          flush=True)
    return ok


def sh(*cmd, ns=None, check=False, timeout=60, input=None):
    return tt.sh(*cmd, ns=ns, check=check, timeout=timeout, input=input)


def subnet(seg):
    return f"2001:db8:100:{SEGMENTS[seg]:x}::/64"


def eui64(prefix, mac):
    b = bytearray(int(x, 16) for x in mac.split(":"))
    b[0] ^= 0x02
    iid = int.from_bytes(bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:]), "big")
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Network(prefix).network_address) | iid))


def mac_of(ns):
    return re.search(r"link/ether ([0-9a-f:]{17})", sh("ip", "link", "show", "eth0", ns=ns).stdout).group(1)


def config(c, routes=True):
    text = f"""
[[lan]]
name = "main"
mac = "{rl.LAN_MAC}"
ipv4 = "192.168.1.1/24"
subnet_id = 1

[[lan]]
name = "guest"
mac = "{rl.LAN2_MAC}"
trust = "guest"
ipv4 = "192.168.2.1/24"
subnet_id = 2

[[lan]]
name = "lab"
mac = "{rl.LAN2_MAC}"
vlan = 30
ipv4 = "192.168.3.1/24"
subnet_id = 3

[wan]
mac = "{rl.WAN_MAC}"

[tunnel]
remote = "{tt.BROKER}"
local_ipv6 = "2001:db8:1::2/64"
routed_prefix = "{ROUTED}"
{tt.MODES["he"]}
[[firewall.open6]]
host = "{c['guest']['v6']}"
port = {OPEN_GUEST}

[[firewall.open6]]
host = "{c['main']['v6']}"
port = {OPEN_MAIN}
"""
    # The routes last: the reload cuts the file here.
    if routes:
        text += """
[[route]]
to = "10.99.0.0/24"
via = "192.168.1.2"

[[route]]
to = "2001:db8:100:f00::/56"
via = "2001:db8:100:1::2"
"""
    return text


# Every client and the downstream router: "hello PEER" on TCP PORT (and the extra ports given),
# IPv4 and IPv6 (one dual-stack socket per port).
LISTEN = r"""
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(16)
    while True:
        c, p = s.accept()
        try:
            c.sendall(("hello %s\n" % p[0].replace("::ffff:", "")).encode())
        finally:
            c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

CONNECT = r"""
import socket, sys
try:
    src = (sys.argv[4], 0) if len(sys.argv) > 4 else None
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]), source_address=src)
    s.settimeout(float(sys.argv[3]))
    print("OK " + s.recv(200).decode(errors="replace").strip())
except OSError as e:
    print("ERR %s" % e)
"""


# A sink on the internet host: reads until the sender is done, answers with the byte count.
SINK = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1]))); s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    c.sendall(b"%d\n" % n); c.close()
"""

SEND = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
buf = b"x" * 16384
for _ in range(int(sys.argv[3]) // len(buf)):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode().strip())
"""
SINK_PORT, SENT = 5003, 16 * 1024 * 1024

def listen(ns, ports, procs):
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTEN, *map(str, ports)],
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    p.stdout.readline()


def tcp(ns, host, port, timeout=4, src=None):
    """(connected, what came back or the error)."""
    r = sh(sys.executable, "-c", CONNECT, host, str(port), str(timeout), *([src] if src else []), ns=ns,
           timeout=timeout + 30)
    out = r.stdout.strip()
    return out.startswith("OK "), out[3:] if out.startswith("OK ") else out + r.stderr


def ping(ns, host, count=2, wait_s=2, src=None):
    r = sh("ping", "-n", "-c", str(count), "-W", str(wait_s), *(["-I", src] if src else []), host, ns=ns,
           timeout=count * wait_s + 30)
    return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-2:]


def wait(fn, timeout, interval=0.5):
    return tt.wait("", fn, timeout, interval)


def parallel(probes):
    """probes: {label: (fn, args)} -> {label: result}, run side by side (the blocked ones each
    wait for their timeout)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as ex:
        futs = {k: ex.submit(fn, *args) for k, (fn, args) in probes.items()}
        return {k: f.result() for k, f in futs.items()}


def dhcp(busybox, work, ns, hostname):
    """BusyBox udhcpc on eth0 with a host name; the lease's values, the address and a default
    route applied."""
    script = os.path.join(work, f"udhcpc-{hostname}.sh")
    lease = os.path.join(work, f"lease-{hostname}")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n"
                f"env | grep -E '^(ip|router|dns|subnet|domain|lease|hostname)=' > {lease}\n"
                "ip addr add $ip/$mask dev $interface\nip route replace default via $router\n")
    os.chmod(script, 0o755)
    r = sh(busybox, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "10", "-T", "3", "-s", script,
           "-x", f"hostname:{hostname}", ns=ns, timeout=90)
    text = open(lease).read() if os.path.exists(lease) else ""
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.M)), text + r.stderr[-400:]


DHCP6_INFO = r"""
import json, sys
from scapy.all import conf, sr1, IPv6, UDP, get_if_hwaddr
from scapy.layers.dhcp6 import (DHCP6_InfoRequest, DHCP6OptClientId, DHCP6OptElapsedTime, DHCP6OptOptReq,
                                DHCP6OptDNSServers, DHCP6OptDNSDomains, DUID_LL)
conf.verb = 0
conf.checkIPaddr = False
req = (IPv6(dst="ff02::1:2") / UDP(sport=546, dport=547) / DHCP6_InfoRequest(trid=0x4242) /
       DHCP6OptClientId(duid=DUID_LL(lladdr=get_if_hwaddr("eth0"))) / DHCP6OptElapsedTime() /
       DHCP6OptOptReq(reqopts=[23, 24]))
ans = sr1(req, iface="eth0", timeout=4, retry=2)
out = {"dns": [], "domains": []}
if ans is not None:
    if DHCP6OptDNSServers in ans: out["dns"] = [str(a) for a in ans[DHCP6OptDNSServers].dnsservers]
    if DHCP6OptDNSDomains in ans: out["domains"] = [str(d) for d in ans[DHCP6OptDNSDomains].dnsdomains]
print(json.dumps(out))
"""


def dhcpv6_info(ns):
    """A stateless DHCPv6 Information-Request (scapy) from the client: the DNS servers and
    domains the router answers with."""
    r = sh("/usr/bin/python3", "-c", DHCP6_INFO, ns=ns, timeout=30)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": r.stdout + r.stderr}


def main():
    out = os.path.abspath(sys.argv[1])
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="segments-test-")
    # The VM boots a copy of the image: a build rewriting build/out meanwhile (another
    # engineer's, CI's) would otherwise change the squashfs under the running guest.
    image = os.path.join(work, "image")
    os.makedirs(image)
    for f in ("bzImage", "rootfs.squashfs", "admin_key.pub", "rootfs.stage/bin/busybox", "rootfs.stage/usr/sbin/netd"):
        shutil.copy2(os.path.join(out, f), image)
    busybox, netd = os.path.join(image, "busybox"), os.path.join(image, "netd")
    lab = rl.Lab(f"sg{os.getpid() % 10000}", lans=2)
    broker = vm = None
    procs = []
    try:
        lab.create()
        # Clients: plain SLAAC (EUI-64, no temporary addresses) and no ICMP redirects, so traffic
        # the router forwards within a segment keeps going through it.
        quiet = ["net.ipv4.conf.all.accept_redirects=0", "net.ipv6.conf.all.accept_redirects=0"]
        c = {"main": {"ns": lab.lan}, "guest": {"ns": lab.lan_nss[1]}}
        c["lab"] = {"ns": lab.add_host("lab", lan=2, vlan=30, sysctls=quiet)}
        down = lab.add_host("down", lan=1, sysctls=quiet + ["net.ipv6.conf.eth0.accept_ra=0"])
        for seg, v in c.items():
            for s in quiet + ["net.ipv6.conf.eth0.use_tempaddr=0", "net.ipv6.conf.eth0.addr_gen_mode=0"]:
                sh("sysctl", "-qw", s, ns=v["ns"], check=True)
            v["mac"] = mac_of(v["ns"])
            v["v6"] = eui64(subnet(seg), v["mac"])
        # The downstream router on main: its own addresses on main, the routed networks on lo.
        for cmd in [("addr", "add", "192.168.1.2/24", "dev", "eth0"),
                    ("-6", "addr", "add", "2001:db8:100:1::2/64", "dev", "eth0", "nodad"),
                    ("addr", "add", "10.99.0.1/32", "dev", "lo"),
                    ("-6", "addr", "add", "2001:db8:100:f00::1/128", "dev", "lo"),
                    ("route", "add", "default", "via", "192.168.1.1"),
                    ("-6", "route", "add", "default", "via", "2001:db8:100:1::1")]:
            sh("ip", *cmd, ns=down, check=True)

        # The ISP, the broker and the internet host (the tunnel test's), the routed /48 into the
        # tunnel.
        certs = f"{work}/certs"
        os.makedirs(certs)
        tt.make_certs(certs)
        broker, dns, procs = tt.setup_isp(lab, work, certs, "he")
        sh("ip", "-6", "route", "add", ROUTED, "dev", "tun6", ns=lab.isp, check=True)
        tt.start_servers(lab, procs)
        procs.append(tt.start_dhcp(lab, work, WAN_IP))
        listen(c["main"]["ns"], [PORT, OPEN_MAIN], procs)
        listen(c["guest"]["ns"], [PORT, OPEN_GUEST, CLOSED_GUEST], procs)
        listen(c["lab"]["ns"], [PORT], procs)
        listen(down, [PORT], procs)

        conf = f"{work}/router.conf"
        with open(conf, "w") as f:
            f.write(config(c))
        disk = f"{work}/data.img"
        r = sh(os.path.join(HERE, "..", "..", "image", "mkdata"), "--config", conf, "--authorized-keys",
               os.path.join(image, "admin_key.pub"), "--file", f"{certs}/ca.pem:broker-ca.pem",
               "--netd", netd, "-o", disk, timeout=120)
        if not check("the three-segment config is accepted (mkdata, the image's netd --check)", r.returncode == 0,
                     r.stdout + r.stderr):
            return finish(t_start)
        vm = rl.RouterVM(image, disk, lab=lab, log_path=f"{work}/console.log")
        vm.start()
        vm.expect(r"netd: router ready", 150)
        vm.login()
        print(f"      router ready {time.monotonic() - t_start:.0f} s after the start", flush=True)
        ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e["auth_ok"], 90)
        check("the broker got the tunnel's endpoint update from the WAN address",
              ev and ev["myip"] == WAN_IP, ev or broker.events[-5:])

        # --- 1. DHCPv4, RA, SLAAC on each segment --------------------------------------------
        leases = parallel({seg: (dhcp, (busybox, work, v["ns"], NAMES[seg])) for seg, v in c.items()})
        for seg, (lease, text) in leases.items():
            n = SEGMENTS[seg]
            c[seg]["v4"] = lease.get("ip", "")
            check(f"{seg}: the client gets a DHCPv4 lease on 192.168.{n}.0/24, router and DNS 192.168.{n}.1",
                  re.fullmatch(rf"192\.168\.{n}\.\d+", c[seg]["v4"]) and lease.get("router") == f"192.168.{n}.1"
                  and lease.get("dns", "").split()[:1] == [f"192.168.{n}.1"], text)
        ras = parallel({seg: (lambda ns: sh("rdisc6", "-1", "-w", "3000", "eth0", ns=ns).stdout, (v["ns"],))
                        for seg, v in c.items()})
        for seg, ra in ras.items():
            prefixes = re.findall(r"Prefix\s*:\s*(\S+)", ra)
            check(f"{seg}: the RA (rdisc6) carries {subnet(seg)} and no other prefix", prefixes == [subnet(seg)], ra)

        def slaac(v, seg):
            return wait(lambda: (lambda a: a if re.search(rf"inet6 {v['v6']}/64 scope global(?! .*tentative)", a)
                                 else None)(sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global",
                                               ns=v["ns"]).stdout), 30)
        for seg, v in c.items():
            addrs = slaac(v, seg) or sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global", ns=v["ns"]).stdout
            globals_ = re.findall(r"inet6 (\S+)/\d+ scope global", addrs)
            check(f"{seg}: SLAAC gives the client {v['v6']} (EUI-64 in {subnet(seg)}) and nothing else",
                  globals_ == [v["v6"]], addrs)

        # --- 2. the outside from each segment ---------------------------------------------------
        probes = {}
        for seg, v in c.items():
            probes[(seg, "ping6")] = (lambda ns: wait(lambda: ping(ns, INET6, 1, 2)[0], 60, 1), (v["ns"],))
        got = parallel(probes)
        probes = {}
        for seg, v in c.items():
            probes[(seg, "ping4")] = (ping, (v["ns"], INET4))
            probes[(seg, "tcp6")] = (tcp, (v["ns"], INET6, 5001))
            probes[(seg, "tcp4")] = (tcp, (v["ns"], INET4, 5001))
        got.update(parallel(probes))
        for seg, v in c.items():
            t6, t4 = got[(seg, "tcp6")], got[(seg, "tcp4")]
            check(f"{seg}: the client reaches the internet host over the tunnel (ping, and TCP from {v['v6']})",
                  got[(seg, "ping6")] and t6[0] and t6[1] == f"hello {v['v6']}", (got[(seg, "ping6")], t6))
            check(f"{seg}: ... and over IPv4, masqueraded to the WAN address (ping, TCP seen from {WAN_IP})",
                  got[(seg, "ping4")][0] and t4[0] and t4[1] == f"hello {WAN_IP}", (got[(seg, "ping4")], t4))

        # --- 2b. the VLAN segment's connections take the fast path ------------------------------
        # netd's flowtable is on the trunk NIC (eth2), whose ingress sees lab's frames tagged: the
        # kernel takes an established connection's packets past the forward hook, untagging and
        # tagging them itself. A chain of the test's own at the forward hook counts what still
        # goes through it while the lab client sends 16 MiB over IPv4 (NAT44) and over the tunnel.
        vm.run("nft add table inet probe && nft add chain inet probe counts '{ type filter hook forward priority 10; }' && "
               "nft add rule inet probe counts iifname eth2.30 meta nfproto ipv4 counter && "
               "nft add rule inet probe counts iifname eth2.30 meta nfproto ipv6 counter", check=True)
        sink = subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, "-c", SINK, str(SINK_PORT)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(sink)
        sink.stdout.readline()
        sent = {fam: sh(sys.executable, "-c", SEND, dst, str(SINK_PORT), str(SENT), ns=c["lab"]["ns"],
                     timeout=120).stdout.strip()
                for fam, dst in (("ipv4", INET4), ("ipv6", INET6))}
        _, listing = vm.run("nft list chain inet probe counts; nft delete table inet probe")
        counts = {fam: int(n) for fam, n in re.findall(r"meta nfproto (ipv[46]) counter packets (\d+)", listing)}
        for fam, how in (("ipv4", "over IPv4"), ("ipv6", "over the tunnel")):
            check(f"lab: a 16 MiB upload {how} is offloaded on the trunk (flowtable): the forward hook saw "
                  f"{counts.get(fam)} of its packets (at most 30)",
                  sent[fam] == str(SENT) and counts.get(fam) is not None and counts[fam] <= 30, (sent, listing))

        # --- 3. isolation ----------------------------------------------------------------------
        g, m, lb = c["guest"], c["main"], c["lab"]
        router_addrs = ["192.168.1.1", "192.168.2.1", "192.168.3.1", WAN_IP, "2001:db8:100:1::1",
                        "2001:db8:100:2::1", "2001:db8:100:3::1", "2001:db8:1::2"]
        probes = {
            "g>m ping4": (ping, (g["ns"], m["v4"])), "g>m ping6": (ping, (g["ns"], m["v6"])),
            "g>m tcp4": (tcp, (g["ns"], m["v4"], PORT)), "g>m tcp6": (tcp, (g["ns"], m["v6"], PORT)),
            "g>m open6": (tcp, (g["ns"], m["v6"], OPEN_MAIN)),
            "g>lab tcp4": (tcp, (g["ns"], lb["v4"], PORT)), "g>lab tcp6": (tcp, (g["ns"], lb["v6"], PORT)),
            "g>down tcp4": (tcp, (g["ns"], "10.99.0.1", PORT)),
            "g>down tcp6": (tcp, (g["ns"], "2001:db8:100:f00::1", PORT)),
            "m>g ping4": (ping, (m["ns"], g["v4"])), "m>g ping6": (ping, (m["ns"], g["v6"])),
            "m>g tcp4": (tcp, (m["ns"], g["v4"], PORT)), "m>g tcp6": (tcp, (m["ns"], g["v6"], PORT)),
            "m>g closed6": (tcp, (m["ns"], g["v6"], CLOSED_GUEST)),
            "m>g open6": (tcp, (m["ns"], g["v6"], OPEN_GUEST)),
            "lab>g open6": (tcp, (lb["ns"], g["v6"], OPEN_GUEST)),
            "inet>g open6": (tcp, (lab.isp, g["v6"], OPEN_GUEST, 4, INET6)),
            "inet>g closed6": (tcp, (lab.isp, g["v6"], CLOSED_GUEST, 4, INET6)),
            "inet>m open6": (tcp, (lab.isp, m["v6"], OPEN_MAIN, 4, INET6)),
            "m>lab tcp4": (tcp, (m["ns"], lb["v4"], PORT)), "m>lab tcp6": (tcp, (m["ns"], lb["v6"], PORT)),
            "lab>m tcp4": (tcp, (lb["ns"], m["v4"], PORT)), "lab>m tcp6": (tcp, (lb["ns"], m["v6"], PORT)),
            "m>lab ping6": (ping, (m["ns"], lb["v6"])), "lab>m ping4": (ping, (lb["ns"], m["v4"])),
            "m ssh4": (tcp, (m["ns"], "192.168.1.1", 22)), "m ssh6": (tcp, (m["ns"], "2001:db8:100:1::1", 22)),
            "g dns4": (sh, ("dig", "+short", "+time=3", "+tries=2", f"{NAMES['guest']}.lan", "@192.168.2.1")),
            "g dns6": (sh, ("dig", "+short", "+time=3", "+tries=2", f"{NAMES['guest']}.lan", "@2001:db8:100:2::1")),
        }
        for a in router_addrs:
            probes[f"g ssh {a}"] = (tcp, (g["ns"], a, 22))
        # sh's ns is a keyword: bind it for the dig probes.
        probes["g dns4"] = (lambda *a: sh(*a, ns=g["ns"]), probes["g dns4"][1])
        probes["g dns6"] = (lambda *a: sh(*a, ns=g["ns"]), probes["g dns6"][1])
        p = parallel(probes)
        blocked = lambda k: not p[k][0]  # noqa: E731
        show = lambda *ks: {k: p[k] for k in ks}  # noqa: E731
        ks = ["g>m ping4", "g>m ping6", "g>m tcp4", "g>m tcp6"]
        check("guest cannot reach the main client (ping and TCP, IPv4 and IPv6)", all(map(blocked, ks)), show(*ks))
        ks = ["g>lab tcp4", "g>lab tcp6", "g>down tcp4", "g>down tcp6"]
        check("guest cannot reach the lab client nor the networks behind main's downstream router",
              all(map(blocked, ks)), show(*ks))
        ks = [f"g ssh {a}" for a in router_addrs]
        check("guest cannot reach the router's SSH on any of its addresses (" + ", ".join(router_addrs) + ")",
              all(map(blocked, ks)), show(*ks))
        check("... while the main client reaches it (SSH banner on 192.168.1.1 and 2001:db8:100:1::1)",
              all(p[k][0] and p[k][1].startswith("SSH-2.0") for k in ("m ssh4", "m ssh6")), show("m ssh4", "m ssh6"))
        check(f"guest cannot reach the main client's open6 port ({m['v6']} tcp {OPEN_MAIN})", blocked("g>m open6"),
              show("g>m open6"))
        check(f"... which the internet host reaches through the tunnel", p["inet>m open6"][0] and
              p["inet>m open6"][1] == f"hello {INET6}", show("inet>m open6"))
        check(f"main reaches the guest client's open6 port ({g['v6']} tcp {OPEN_GUEST}), so does lab",
              p["m>g open6"][0] and p["m>g open6"][1] == f"hello {m['v6']}" and p["lab>g open6"][0],
              show("m>g open6", "lab>g open6"))
        ks = ["m>g closed6", "m>g tcp6", "m>g tcp4", "m>g ping4", "m>g ping6"]
        check(f"main reaches no other guest port ({CLOSED_GUEST}, {PORT} v6 and v4) and cannot ping the guest",
              all(map(blocked, ks)), show(*ks))
        check(f"the internet host reaches the guest's open6 port, not tcp {CLOSED_GUEST}",
              p["inet>g open6"] == (True, f"hello {INET6}") and blocked("inet>g closed6"),
              show("inet>g open6", "inet>g closed6"))
        ks = ["m>lab tcp4", "m>lab tcp6", "lab>m tcp4", "lab>m tcp6", "m>lab ping6", "lab>m ping4"]
        check("main and lab reach each other (TCP both ways, IPv4 and IPv6, ping), addresses unchanged",
              all(p[k][0] for k in ks) and p["m>lab tcp4"][1] == f"hello {m['v4']}" and
              p["lab>m tcp6"][1] == f"hello {lb['v6']}", show(*ks))
        d4, d6 = p["g dns4"].stdout.split(), p["g dns6"].stdout.split()
        for seg in ("main", "guest"):
            info = dhcpv6_info(c[seg]["ns"])
            want = f"2001:db8:100:{SEGMENTS[seg]}::1"
            check(f"{seg}: a DHCPv6 information request is answered with the segment's resolver ({want}) and "
                  f"domain", info.get("dns") == [want] and any(d.rstrip(".") == "lan" for d in info.get("domains", [])),
                  info)
        check(f"guest uses the router's DNS over IPv4 and IPv6 ({NAMES['guest']}.lan -> {g['v4']})",
              d4 == [g["v4"]] and d6 == [g["v4"]], (d4, d6, p["g dns4"].stderr, p["g dns6"].stderr))
        check("guest got its DHCPv4 lease from the router (above)", g["v4"].startswith("192.168.2."), g)

        # --- 4. names of IPv6 hosts ----------------------------------------------------------
        def dig(*args):
            return sh("dig", "+short", "+time=2", "+tries=1", *args, "@192.168.1.1", ns=m["ns"]).stdout.split()
        for seg in ("lab", "main"):
            name, addr = f"{NAMES[seg]}.lan", c[seg]["v6"]
            ping(c[seg]["ns"], INET6, 1, 2)     # the router has the address in its neighbour table
            ok = wait(lambda: dig("AAAA", name) == [addr] and dig("-x", addr) == [name + "."], 30, 1)
            if not check(f"DNS: {name} (a DHCPv4 host name) has AAAA {addr}, its SLAAC address, and the PTR back",
                         ok, f"AAAA: {dig('AAAA', name)}, PTR: {dig('-x', addr)}, A: {dig('A', name)}"):
                print("      router: " + vm.run("ls -l /run/netd/hosts/; cat /run/netd/hosts/* 2>&1 | head -20; "
                                                "ip -6 neigh | grep -v fe80 | head; grep -E 'hostsdir|local=' "
                                                "/run/netd/dnsmasq.conf")[1].replace("\n", "\n      "))

        # --- 5. static routes -----------------------------------------------------------------
        _, r4 = vm.run("ip route show 10.99.0.0/24")
        _, r6 = vm.run("ip -6 route show 2001:db8:100:f00::/56")
        check("the router holds both [[route]]s (via 192.168.1.2, via 2001:db8:100:1::2)",
              "via 192.168.1.2 dev eth1" in r4 and "via 2001:db8:100:1::2 dev eth1" in r6, r4 + r6)

        def route_probes():
            return parallel({
                "lab>10.99 ping": (ping, (lb["ns"], "10.99.0.1")), "lab>10.99 tcp": (tcp, (lb["ns"], "10.99.0.1", PORT)),
                "main>10.99 ping": (ping, (m["ns"], "10.99.0.1")), "main>10.99 tcp": (tcp, (m["ns"], "10.99.0.1", PORT)),
                "inet>f00 ping": (ping, (lab.isp, "2001:db8:100:f00::1", 2, 2, INET6)),
                "lab>f00 tcp": (tcp, (lb["ns"], "2001:db8:100:f00::1", PORT)),
                "main>f00 tcp": (tcp, (m["ns"], "2001:db8:100:f00::1", PORT)),
            })
        p = route_probes()
        check("10.99.0.0/24 via the downstream router: the lab client pings 10.99.0.1 and connects (TCP)",
              p["lab>10.99 ping"][0] and p["lab>10.99 tcp"] == (True, f"hello {lb['v4']}"),
              {k: p[k] for k in ("lab>10.99 ping", "lab>10.99 tcp")})
        check("2001:db8:100:f00::/56 via the downstream router: the internet host pings 2001:db8:100:f00::1 "
              "through the tunnel, the lab client connects to it (TCP)",
              p["inet>f00 ping"][0] and p["lab>f00 tcp"] == (True, f"hello {lb['v6']}"),
              {k: p[k] for k in ("inet>f00 ping", "lab>f00 tcp")})
        # The main client shares its segment with the downstream router: its packets to the
        # routed networks go to the router and back out of the same NIC (it ignores ICMP
        # redirects; for IPv6 Linux sends none anyway, the next hop not being link-local).
        ks = ["main>10.99 ping", "main>10.99 tcp", "main>f00 tcp"]
        if not check("the main client, on the downstream router's own segment, reaches 10.99.0.1 (ping, TCP) and "
                     "2001:db8:100:f00::1 (TCP) through the router", all(p[k][0] for k in ks), {k: p[k] for k in ks}):
            _, fwd = vm.run("nft list chain inet netd forward | grep -E 'iifname \"eth1\" (oifname|accept)|ct state|policy'")
            print("      router's forward rules for main (eth1):\n        " + fwd.strip().replace("\n", "\n        "))

        rc, reply = vm.run("sed -i '/^\\[\\[route\\]\\]/,$d' /data/etc/router.conf && grep -c route "
                           "/data/etc/router.conf; netctl reload", timeout=60)
        _, r4 = vm.run("ip route show 10.99.0.0/24")
        _, r6 = vm.run("ip -6 route show 2001:db8:100:f00::/56")
        check("a reload of the file without the [[route]]s removes both routes (ip route)",
              rc == 0 and not r4.strip() and not r6.strip(), f"reload: {reply}\nroutes: {r4}{r6}")
        p = route_probes()
        ks = ["lab>10.99 ping", "lab>10.99 tcp", "main>10.99 ping", "main>10.99 tcp", "inet>f00 ping",
              "lab>f00 tcp", "main>f00 tcp"]
        check("... and the traffic to 10.99.0.1 and 2001:db8:100:f00::1 stops", not any(p[k][0] for k in ks),
              {k: p[k] for k in ks})
        _, gets = vm.run("ip -6 route get 2001:db8:100:f00::1; ip route get 10.99.0.1")
        print("      router after the reload: " + " | ".join(gets.strip().splitlines()))
        ok, text = tcp(lb["ns"], INET6, 5001)
        check("after the reload the segments still reach the internet host", ok, text)
        check("clean poweroff", vm.poweroff() == 0)
        vm = None
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"segments test ran to the end ({e})", False)
        if vm:
            print("---- console (last lines) ----\n" + vm.console_tail(60))
    finally:
        if vm:
            vm.kill()
        if broker:
            broker.stop()
        for p in procs:
            p.kill()
        lab.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return finish(t_start)


def finish(t_start):
    print(f"figures: run time {time.monotonic() - t_start:.0f} s")
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
