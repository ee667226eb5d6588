#!/usr/bin/env python3
"""WAN and firewall, end to end with real traffic (issue 4): the image's userland (netd, udhcpc
and its hook, dnsmasq, radvd, ntpd, sshd) in a router namespace on this kernel, between an ISP
with a DHCP server, an internet host and a LAN client (tests/lib/routerns.py).

  1. fail closed: with the kernel refusing netd's tables, no link comes up and nothing is
     forwarded; once it accepts them, everything comes up;
  2. the WAN lease: address, default route, MTU, DNS to dnsmasq, NTP to ntpd; a renew with the
     same values changes nothing; a new address replaces the old one;
  3. allowed flows pass and blocked ones are dropped: IPv4 and IPv6, TCP, UDP and ICMP,
     established return traffic, masquerade, a port forward, an IPv6 opening, the blocklist,
     and ICMPv6 Packet Too Big reaching the LAN client;
  4. nmap from the internet sees exactly the ports the config opens;
  5. killing netd (SIGKILL or SIGTERM) leaves the ruleset and the filtering in place;
  6. a hostile DHCP server: every malformed lease is rejected and logged, netd stays up, and a
     canary file proves nothing was executed; the hook script itself is fed hostile values;
  7. the WAN address changes (NAK, new lease);
  8. NICs unplugged and plugged back (veth pairs deleted and made again, same names and MACs):
     netd follows the kernel's link notifications and configures each again by itself.

usage: test_wan_firewall.py OUT_DIR (build/out, holding rootfs.stage)
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import dhcpserver as d  # noqa: E402
from routerns import (INET4, INET6, ISP_WAN, LAN_HOST4, LAN_HOST6, LAN_MAC, LAN_PREFIX, ROUTER_WAN,  # noqa: E402
                      WAN_MAC, RouterNs, Servers, ping, probe, run, wait_for)

CONFIG = """
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]
domain = "home.arpa"

[wan]
mac = "52:54:00:12:34:01"

[ssh]
allow_wan = true

[firewall]
blocklist = ["198.51.100.66", "2001:db8:99::66"]

[[firewall.open6]]
host = "2001:db8:7::10"
proto = "tcp"
port = 443

[[firewall.open6]]
host = "2001:db8:7::10"
proto = "udp"
port = 5353

[[firewall.forward4]]
proto = "tcp"
port = 8080
to = "192.168.7.10"
to_port = 80
"""

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def link_up(r, dev):
    return "state UP" in run("ip", "link", "show", dev, ns=r.rtr).stdout or ",UP" in run("ip", "link", "show", dev,
                                                                                        ns=r.rtr).stdout


def sysctl(r, key):
    return run("sysctl", "-n", key, ns=r.rtr).stdout.strip()


def nft_tables(r):
    return run("nft", "list", "tables", ns=r.rtr).stdout


def test_fail_closed_start(r):
    r.hold_table()
    r.start_netd()
    time.sleep(2)
    st = r.netctl("status", check=False).stdout
    check("kernel refuses the tables: netd says the firewall is not loaded", "NOT LOADED" in st, st)
    check("... and names the kernel's error", "Operation not permitted" in st, st)
    check("... WAN link still down", not link_up(r, "eth0"))
    check("... LAN link still down", not link_up(r, "eth1"))
    check("... IPv4 forwarding still off", sysctl(r, "net.ipv4.ip_forward") == "0")
    check("... IPv6 forwarding still off", sysctl(r, "net.ipv6.conf.all.forwarding") == "0")
    ok, _ = ping(r.lan, INET4, timeout=1)
    check("... nothing forwarded (LAN ping to the internet fails)", not ok)
    check("... udhcpc not started", "udhcpc" not in st, st)
    r.release_table()
    rep = r.netctl("reload", check=False)
    check("after the table is released, reload loads the firewall", rep.returncode == 0, rep.stdout + rep.stderr)
    check("... links up", link_up(r, "eth0") and link_up(r, "eth1"))
    check("... forwarding on", sysctl(r, "net.ipv4.ip_forward") == "1" and sysctl(r, "net.ipv6.conf.all.forwarding") == "1")


def test_wan_lease(r):
    t0 = time.monotonic()
    s = r.wan_bound()
    check(f"WAN bound to {ROUTER_WAN} from the ISP's DHCP server ({time.monotonic() - t0:.1f} s)", s)
    routes = run("ip", "route", "show", "default", ns=r.rtr).stdout
    check("default route via the lease's router", f"default via {ISP_WAN} dev eth0" in routes, routes)
    addr = run("ip", "-4", "addr", "show", "dev", "eth0", ns=r.rtr).stdout
    check("WAN address on eth0", f"{ROUTER_WAN}/24" in addr, addr)
    resolv = open(os.path.join(r.work, "run/netd/resolv.wan")).read()
    check("lease DNS servers handed to dnsmasq (resolv.wan)",
          "nameserver 203.0.113.53\nnameserver 203.0.113.54\n" in resolv, resolv)
    ntpd = r.service_pid("ntpd")
    cmd = open(f"/proc/{ntpd}/cmdline").read().split("\0") if ntpd else []
    check("lease NTP server handed to ntpd", "203.0.113.123" in cmd, cmd)
    st = r.netctl("status").stdout
    check("netctl status shows the WAN lease", re.search(r"wan: +eth0 bound 203\.0\.113\.10/24 router 203\.0\.113\.1", st),
          st)
    # A renew with the same values disturbs nothing: same dnsmasq and ntpd, same address.
    pids = {n: r.service_pid(n) for n in ("dnsmasq", "ntpd", "udhcpc")}
    os.kill(pids["udhcpc"], signal.SIGUSR1)  # udhcpc: renew now
    wait_for("the renew", lambda: "renew 203.0.113.10" in r.log(), 15)
    time.sleep(0.5)
    check("renew with the same values: nothing restarted",
          all(r.service_pid(n) == p for n, p in pids.items()), {n: r.service_pid(n) for n in pids})
    check("renew logged as no change", "nothing changed" in r.log())


def test_flows(r, srv):
    # Servers: the internet host and the LAN client.
    for ns, name in ((r.inet, "inet"), (r.lan, "lan")):
        for fam in (4, 6):
            for proto, port in (("tcp", 5001), ("udp", 5002)):
                srv.listen(ns, fam, proto, port, name)
    srv.listen(r.lan, 4, "tcp", 80, "lan")
    srv.listen(r.lan, 6, "tcp", 443, "lan")
    srv.listen(r.lan, 6, "tcp", 444, "lan")
    srv.listen(r.lan, 6, "udp", 5353, "lan")
    # IPv6 default routes (the RA's router lifetime is 0 until the tunnel, issue 5).
    r.ipv6_uplink()
    run("ip", "-6", "route", "replace", "default", "via", "2001:db8:7::1", ns=r.lan)
    # The first IPv6 packets right after the routes appear sometimes meet "No route to host"
    # (seen before and after netd converged, on this host kernel; a second try passes): let
    # neighbour discovery settle on the path first, bounded, and say how long it took.
    t0 = time.monotonic()
    wait_for("the IPv6 path LAN -> internet", lambda: ping(r.lan, INET6, timeout=1)[0], 15, 0.5)
    print(f"     IPv6 path ready {time.monotonic() - t0:.1f} s after its routes", flush=True)

    ok, out = probe(r.lan, "tcp", INET4, 5001)
    check("IPv4 TCP LAN -> internet, with its return traffic", ok, out)
    check("... masqueraded to the WAN address", f"you are {ROUTER_WAN}" in out, out)
    ok, out = probe(r.lan, "udp", INET4, 5002)
    check("IPv4 UDP LAN -> internet and back", ok and ROUTER_WAN in out, out)
    ok, out = probe(r.lan, "tcp", INET6, 5001)
    check("IPv6 TCP LAN -> internet, not translated", ok and LAN_HOST6 in out, out)
    ok, out = probe(r.lan, "udp", INET6, 5002)
    check("IPv6 UDP LAN -> internet and back", ok, out)
    check("ICMP echo LAN -> internet", ping(r.lan, INET4)[0])
    check("ICMPv6 echo LAN -> internet", ping(r.lan, INET6)[0])

    ok, out = probe(r.inet, "tcp", LAN_HOST6, 443)
    check("IPv6 TCP internet -> LAN host, opened port 443", ok, out)
    ok, out = probe(r.inet, "udp", LAN_HOST6, 5353)
    check("IPv6 UDP internet -> LAN host, opened port 5353", ok, out)
    ok, out = probe(r.inet, "tcp", LAN_HOST6, 444, timeout=1.5)
    check("IPv6 TCP internet -> LAN host, port 444 not opened: dropped", not ok, out)
    ok, out = probe(r.inet, "tcp", LAN_HOST6, 5001, timeout=1.5)
    check("IPv6 TCP internet -> LAN host, port 5001 not opened: dropped", not ok, out)
    ok, out = probe(r.inet, "udp", LAN_HOST6, 5002, timeout=1.5)
    check("IPv6 UDP internet -> LAN host, not opened: dropped", not ok, out)
    check("ICMPv6 echo internet -> LAN host passes (RFC 4890)", ping(r.inet, LAN_HOST6)[0])
    ok, out = probe(r.inet, "tcp", ROUTER_WAN, 8080)
    check("IPv4 port forward WAN:8080 -> LAN host :80", ok and "hello from lan:80" in out, out)
    ok, out = probe(r.inet, "tcp", ROUTER_WAN, 5001, timeout=1.5)
    check("IPv4 TCP internet -> router, not forwarded: dropped", not ok, out)
    ok, out = probe(r.inet, "udp", ROUTER_WAN, 53, timeout=1.5)
    check("IPv4 UDP internet -> router DNS: dropped", not ok, out)
    check("ICMP echo internet -> router WAN answered (tunnel brokers check it)", ping(r.inet, ROUTER_WAN)[0])
    ok, out = probe(r.inet, "tcp", ROUTER_WAN, 22)
    check("SSH on WAN open (allow_wan = true)", ok and "SSH-2.0" in out, out)

    ok, out = probe(r.lan, "tcp", "198.51.100.66", 5001, timeout=1.5)
    check("blocklist: IPv4 LAN -> 198.51.100.66 dropped", not ok, out)
    ok, out = probe(r.lan, "tcp", "2001:db8:99::66", 5001, timeout=1.5)
    check("blocklist: IPv6 LAN -> 2001:db8:99::66 dropped", not ok, out)

    # Packet Too Big: the ISP's link to the internet has MTU 1280; a 1400-byte ping from the
    # LAN client gets the ISP's ICMPv6 error back through the router's firewall.
    run("ip", "link", "set", "up0", "mtu", "1280", ns=r.isp)
    run("ip", "link", "set", "eth0", "mtu", "1280", ns=r.inet)
    ok, out = ping(r.lan, INET6, extra=("-s", "1400", "-M", "do"))
    route = run("ip", "-6", "route", "get", INET6, ns=r.lan).stdout
    check("ICMPv6 Packet Too Big reaches the LAN client (path MTU 1280 learnt)", "mtu 1280" in route, out + route)
    ok, out = ping(r.lan, INET6, extra=("-s", "1400"))
    check("... and the large ping then gets through, fragmented at the source", ok, out)
    run("ip", "link", "set", "up0", "mtu", "1500", ns=r.isp)
    run("ip", "link", "set", "eth0", "mtu", "1500", ns=r.inet)


def test_nmap(r):
    out = run("nmap", "-Pn", "-n", "-sS", "-T4", "--max-retries", "1", "-p", "1-1024,5001,8080", ROUTER_WAN, ns=r.inet,
              timeout=300).stdout
    open4 = sorted(re.findall(r"^(\d+)/tcp\s+open", out, re.M))
    check("nmap internet -> router WAN (IPv4): open ports are exactly 22 and 8080", open4 == ["22", "8080"], out)
    out = run("nmap", "-6", "-Pn", "-n", "-sS", "-T4", "--max-retries", "1", "-p", "1-1024,5001", LAN_HOST6,
              ns=r.inet, timeout=300).stdout
    open6 = sorted(re.findall(r"^(\d+)/tcp\s+open", out, re.M))
    check("nmap internet -> LAN host (IPv6): open ports are exactly 443", open6 == ["443"], out)
    out = run("nmap", "-6", "-Pn", "-n", "-sU", "-T4", "--max-retries", "1", "-p", "5002,5353", LAN_HOST6,
              ns=r.inet, timeout=300).stdout
    check("nmap UDP internet -> LAN host (IPv6): 5353 open, 5002 not", re.search(r"^5353/udp\s+open\s", out, re.M)
          and not re.search(r"^5002/udp\s+open\s", out, re.M), out)


def policy(r):
    """The loaded policy without its state: no counters, no per-source entries of the limits."""
    text = run("nft", "-s", "list", "ruleset", ns=r.rtr).stdout
    return re.sub(r"\n\s*elements = \{[^}]*limit rate[^}]*\}", "", text)


def test_netd_killed(r):
    before = policy(r)
    for sig, name in ((signal.SIGKILL, "SIGKILL"), (signal.SIGTERM, "SIGTERM")):
        r.kill_netd(sig)
        after = policy(r)
        import difflib
        check(f"netd stopped by {name}: the ruleset is still in the kernel, unchanged", after == before and after,
              "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)))
        ok, out = probe(r.inet, "tcp", LAN_HOST6, 444, timeout=1.5)
        check(f"... inbound to a closed port still dropped", not ok, out)
        ok, out = probe(r.lan, "tcp", INET4, 5001)
        check(f"... LAN -> internet still forwarded and masqueraded", ok and ROUTER_WAN in out, out)
        r.start_netd()
        s = r.wan_bound(timeout=20)
        if sig == signal.SIGKILL:
            # The children ran on: netd adopts them and knows udhcpc's lease at once.
            check("netd restarted: udhcpc adopted and its lease known again",
                  s and any(x["name"] == "udhcpc" and x["adopted"] for x in s["services"]), s)
        else:
            # A clean stop stopped the children too: a new udhcpc gets the lease again.
            check("netd restarted: a new udhcpc holds the lease", s, s)


HOSTILE = [
    ("shell metacharacters in host name and domain",
     {12: b"$(touch /tmp/canary)", 15: b"x;touch /tmp/canary;", 119: b"\x03a;b\x00"}),
    ("20 DNS servers (more than 8)", {6: d.ips(*[f"203.0.113.{i}" for i in range(60, 80)])}),
    ("router 255.255.255.255", {3: d.ip("255.255.255.255")}),
    ("non-contiguous netmask 255.0.255.0", {1: d.ip("255.0.255.0")}),
    ("a 5-byte subnet option (a /33)", {1: b"\xff\xff\xff\xff\x80"}),
    ("MTU 68", {26: d.u16(68)}),
    ("lease time 0", {51: d.u32(0)}),
    ("DNS server 0.0.0.0", {6: d.ip("0.0.0.0")}),
]


def test_hostile_dhcp(r):
    canary = os.path.join(r.work, "tmp/canary")
    normal = {1: d.ip("255.255.255.0"), 3: d.ip(ISP_WAN), 6: d.ip("203.0.113.53"), 51: d.u32(120)}
    for name, opts in HOSTILE:
        o = dict(normal)
        o.update(opts)
        r.start_dhcp(offer_ip="203.0.113.66", options=o)
        before = r.status()["wan"].get("rejected_events", 0)
        log_before = len(r.log())
        r.netctl("restart", "udhcpc")
        # udhcpc starts with deconfig (a previous lease goes), then gets the hostile offer.
        wait_for("deconfig", lambda: r.status()["wan"].get("state") != "bound", 15)

        def settled():
            s = r.status()
            w = s["wan"]
            if w.get("rejected_events", 0) > before or w.get("state") == "bound":
                return s
            return None
        try:
            s = wait_for(f"the router's answer to {name}", settled, 30)
        except TimeoutError as e:
            # udhcpc itself may drop a packet it cannot parse: then it never reports a lease.
            s = r.status()
            check(f"hostile DHCP: {name}: dropped by udhcpc before netd", s["wan"].get("state") != "bound", str(e))
            continue
        w = s["wan"]
        new_log = r.log()[log_before:]
        if w.get("state") == "bound":
            # udhcpc replaces a bad host or domain name with "bad" before netd sees it (its own
            # CVE-2011-2716 fix): the lease is then valid, and nothing was executed.
            check(f"hostile DHCP: {name}: only sanitized values reached netd",
                  name.startswith("shell") and "canary" not in new_log, w)
        else:
            rej = re.findall(r".*REJECTED.*", new_log)
            check(f"hostile DHCP: {name}: rejected whole and logged", rej, new_log[-2000:])
            if rej:
                print("     " + rej[0].split("netd", 1)[-1][:160])
        check(f"... netd still up", r.netd_pid() is not None)
        check(f"... no canary", not os.path.exists(canary))
    # The hook script itself, fed hostile values directly (as a udhcpc without its own
    # sanitizing would): every one rejected, nothing executed.
    hostile_env = [
        {"hostname": "$(touch /tmp/canary)"},
        {"domain": "`touch /tmp/canary`"},
        {"search": "a;touch /tmp/canary"},
        {"dns": " ".join(f"203.0.113.{i}" for i in range(1, 30))},
        {"mask": "33"},
        {"ip": "203.0.113.300"},
        {"router": "203.0.113.1;reboot"},
        {"mtu": "100000"},
    ]
    base = {"interface": "eth0", "ip": "203.0.113.99", "subnet": "255.255.255.0", "mask": "24", "router": ISP_WAN,
            "lease": "600"}
    for env in hostile_env:
        e = dict(base)
        e.update(env)
        envargs = [f"{k}={v}" for k, v in e.items()]
        res = run("env", "-i", *envargs, *r.enter(), "/etc/udhcpc/netd-hook", "bound", check=False)
        key = list(env)[0]
        check(f"hook script with hostile {key}={env[key][:30]!r}: rejected",
              res.returncode == 1 and "rejected" in res.stderr, res.stdout + res.stderr)
    check("no canary after the hook tests", not os.path.exists(canary))
    check("the WAN address was never one of the hostile ones",
          "203.0.113.99" not in run("ip", "addr", ns=r.rtr).stdout)


def test_address_change(r):
    r.start_dhcp(offer_ip=ROUTER_WAN)
    r.netctl("restart", "udhcpc")
    r.wan_bound(ROUTER_WAN)
    ok, out = probe(r.lan, "tcp", INET4, 5001)
    check("back on the normal lease", ok and ROUTER_WAN in out, out)
    # The ISP moves the router to another address: the renew is refused (NAK), udhcpc starts
    # over and gets the new one.
    r.start_dhcp(offer_ip="203.0.113.20", nak_others=True)
    os.kill(r.service_pid("udhcpc"), signal.SIGUSR1)
    t0 = time.monotonic()
    r.wan_bound("203.0.113.20")
    check(f"new WAN address applied ({time.monotonic() - t0:.1f} s after the renew)", True)
    addr = run("ip", "-4", "addr", "show", "dev", "eth0", ns=r.rtr).stdout
    check("old WAN address removed", ROUTER_WAN + "/" not in addr and "203.0.113.20/24" in addr, addr)
    check("default route back", f"default via {ISP_WAN}" in run("ip", "route", ns=r.rtr).stdout)
    ok, out = probe(r.lan, "tcp", INET4, 5001)
    check("LAN -> internet masqueraded to the new address", ok and "203.0.113.20" in out, out)
    check("the tunnel hook was told", "wan: address now 203.0.113.20" in r.log())


def test_nics_replugged(r):
    """A NIC unplugged and plugged back (a veth pair deleted and made again: the same name and
    MAC, a new interface index, none of its addresses): netd sees it in the kernel's link
    notifications and configures it again by itself, with no reload."""
    wan = "203.0.113.20"   # test_address_change's lease
    # LAN: the router's eth1 and the client's eth0 go, and come back bare.
    t0 = time.monotonic()
    run("ip", "link", "del", "eth1", ns=r.rtr)
    wait_for("netd noticing eth1 went", lambda: "links changed:" in r.log() and " eth1 " in r.log(), 10)
    time.sleep(0.5)
    check("LAN NIC unplugged: netd logs it and keeps running", r.netd_pid() is not None)
    run("ip", "link", "add", "eth1", "address", LAN_MAC, "type", "veth", "peer", "name", "eth0", "netns", r.lan, ns=r.rtr)
    for c in (("sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"), ("sysctl", "-qw", "net.ipv6.conf.eth0.autoconf=0"),
              ("ip", "addr", "add", f"{LAN_HOST4}/24", "dev", "eth0"), ("ip", "addr", "add", f"{LAN_HOST6}/64", "dev", "eth0"),
              ("ip", "link", "set", "eth0", "up"), ("ip", "route", "add", "default", "via", "192.168.7.1"),
              ("ip", "-6", "route", "replace", "default", "via", f"{LAN_PREFIX}1")):
        run(*c, ns=r.lan)
    t1 = time.monotonic()

    def lan_back():
        a = run("ip", "addr", "show", "dev", "eth1", ns=r.rtr).stdout
        return a if "192.168.7.1/24" in a and f"{LAN_PREFIX}1/64" in a and link_up(r, "eth1") else None
    try:
        wait_for("eth1 configured again", lan_back, 10, 0.05)
        check(f"LAN NIC plugged back: up with 192.168.7.1/24 and {LAN_PREFIX}1/64 again "
              f"({time.monotonic() - t1:.2f} s after it came; unplugged {t1 - t0:.1f} s)", True)
    except TimeoutError as e:
        check("LAN NIC plugged back: up with its addresses again", False, e)
    check("... the client pings the router (IPv4 and IPv6)",
          wait_for("ping", lambda: ping(r.lan, "192.168.7.1")[0], 10) and ping(r.lan, f"{LAN_PREFIX}1")[0])
    ok, out = probe(r.lan, "tcp", INET4, 5001)
    check(f"... and reaches the internet, masqueraded to {wan}", ok and wan in out, out)
    # dnsmasq answers a name in the LAN's domain itself (NXDOMAIN for an unknown one).
    dig = run("dig", "+time=2", "+tries=2", "nosuchhost.home.arpa", "@192.168.7.1", ns=r.lan, check=False)
    check("... and dnsmasq answers on the new NIC", dig.returncode == 0 and "status: NXDOMAIN" in dig.stdout,
          dig.stdout + dig.stderr)
    ra = run("rdisc6", "-1", "-w", "3000", "eth0", ns=r.lan, check=False).stdout
    check(f"... and radvd's RAs carry {LAN_PREFIX}/64 on it", f"{LAN_PREFIX}/64" in ra, ra)

    # WAN: the ISP's side goes with it; the lease udhcpc holds is put back on the new NIC.
    run("ip", "link", "del", "eth0", ns=r.rtr)
    time.sleep(1)
    run("ip", "link", "add", "eth0", "address", WAN_MAC, "type", "veth", "peer", "name", "wan0", "netns", r.isp, ns=r.rtr)
    for c in (("addr", "add", f"{ISP_WAN}/24", "dev", "wan0"), ("addr", "add", "2001:db8:ff::1/64", "dev", "wan0", "nodad"),
              ("link", "set", "wan0", "up"), ("-6", "route", "add", f"{LAN_PREFIX}/64", "via", "2001:db8:ff::2")):
        run("ip", *c, ns=r.isp, check=c[0] != "-6")
    run("ip", "addr", "add", "2001:db8:ff::2/64", "dev", "eth0", "nodad", ns=r.rtr)   # the stand-in uplink's
    r.start_dhcp(offer_ip=wan)

    def wan_back():
        a = run("ip", "-4", "addr", "show", "dev", "eth0", ns=r.rtr).stdout
        return a if f"{wan}/24" in a and f"default via {ISP_WAN}" in run("ip", "route", ns=r.rtr).stdout else None
    try:
        wait_for("eth0 configured again", wan_back, 15, 0.05)
        check(f"WAN NIC plugged back: {wan}/24 and the default route again, from the lease", True)
    except TimeoutError as e:
        check("WAN NIC plugged back: the lease's address and default route again", False, e)
    r.ipv6_uplink()   # the stand-in uplink's route went with the NIC
    ok, out = probe(r.lan, "tcp", INET4, 5001)
    check(f"... LAN -> internet masqueraded to {wan} again", ok and wan in out, out)
    opened = wait_for("the IPv6 opening", lambda: probe(r.inet, "tcp", LAN_HOST6, 443)[0], 10)
    check("... the IPv6 opening passes again, the rest still dropped",
          opened and not probe(r.inet, "tcp", LAN_HOST6, 444)[0])
    # Each NIC going and coming is one convergence or two; netd's own changes (or a failed
    # convergence) must not start another.
    seen = [line for line in r.log().splitlines() if "links changed:" in line and "converging again" in line]
    for line in seen:
        print("      " + line[line.index("links changed:"):], flush=True)
    time.sleep(1)
    check(f"... {len(seen)} convergences for two NICs unplugged and plugged back, then none",
          2 <= len(seen) <= 4 and r.log().count("converging again") == len(seen), seen)



def main():
    out = sys.argv[1]
    stage = os.path.join(out, "rootfs.stage")
    if not os.path.isdir(stage):
        print(f"no {stage}: build the image first")
        return 1
    r = RouterNs(stage, f"wf{os.getpid() % 10000}", CONFIG)
    srv = Servers()
    try:
        r.create()
        r.start_dhcp()
        test_fail_closed_start(r)
        test_wan_lease(r)
        test_flows(r, srv)
        test_nmap(r)
        test_netd_killed(r)
        test_hostile_dhcp(r)
        test_address_change(r)
        test_nics_replugged(r)
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"test ran to the end ({type(e).__name__}: {e})", False)
    finally:
        failed = [n for n, ok in results if not ok]
        if failed:
            print("---- router log (last 60 lines) ----")
            print("\n".join(r.log().splitlines()[-60:]))
            try:
                print(open(os.path.join(r.work, "netd.console")).read()[-3000:])
            except OSError:
                pass
        srv.stop()
        r.cleanup()
    print(f"{len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
