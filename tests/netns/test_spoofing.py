#!/usr/bin/env python3
"""Spoofed packets and per-source limits, end to end with real packets (scapy, ping,
OpenSSH) against the image's userland in a router namespace (tests/lib/routerns.py):

  1. source validation: LAN-sourced packets from outside (to the router and to LAN hosts,
     IPv4 through a port forward too), foreign-sourced packets from the LAN, a source that
     routes back through another interface (reverse path), ULA across the border, a type 0
     routing header: each dropped by its own rule and counted there, and never seen at the
     destination, while the same packet with a legitimate source arrives;
  2. per-source limits: one source flooding SYNs at the SSH port (allow_wan) while a second
     source logs in over SSH, IPv4 and IPv6 (the second source in another /64); echo floods
     limited while a second source's pings are all answered. Figures printed.

The scapy parts run with Debian's python3 (python3-scapy), whatever python3 runs this script.
usage: test_spoofing.py OUT_DIR (build/out, holding rootfs.stage)
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from routerns import (INET4, INET6, LAN_HOST4, LAN_HOST6, ROUTER_WAN, RouterNs, Servers, ping, probe,  # noqa: E402
                      run, wait_for)

SCAPY_PYTHON = "/usr/bin/python3"
ROUTER_WAN6 = "2001:db8:ff::2"      # the router's WAN IPv6 address (the tunnel's stand-in)
ROUTER_LAN6 = "2001:db8:7::1"
INET4_B = "198.51.100.20"           # a second internet source
INET6_B = "2001:db8:98::20"         # ... in another /64

CONFIG = """
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]

[wan]
mac = "52:54:00:12:34:01"

[ssh]
allow_wan = true

[[firewall.open6]]
host = "2001:db8:7::10"
proto = "udp"
port = 5353

[[firewall.forward4]]
proto = "udp"
port = 8080
to = "192.168.7.10"
to_port = 5353
"""

# Sends COUNT copies of one scapy packet (layer 3; INTERVAL seconds apart), or sniffs: counts the packets on IFACE
# whose bytes hold MARKER until killed, printing the count at the end.
SCAPY = r"""
import sys, signal
from scapy.all import *
conf.verb = 0
if sys.argv[1] == "send":
    send(eval(sys.argv[2]), count=int(sys.argv[3]), inter=float(sys.argv[4]) if len(sys.argv) > 4 else 0)
else:
    marker = sys.argv[3].encode()
    n = 0
    def seen(p):
        global n
        # Not the ICMP errors a destination sends back quoting the packet.
        if marker in bytes(p) and not (p.haslayer(ICMPv6DestUnreach) or (p.haslayer(ICMP) and p[ICMP].type == 3)):
            n += 1
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    s = AsyncSniffer(iface=sys.argv[2], prn=seen, store=False)
    s.start()
    print("ready", flush=True)
    signal.sigwait([signal.SIGTERM])
    s.stop()
    print(n, flush=True)
"""

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def scapy_send(ns, packet, count):
    run("ip", "netns", "exec", ns, SCAPY_PYTHON, "-c", SCAPY, "send", packet, str(count), timeout=60)


class Sniffer:
    def __init__(self, ns, marker):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, SCAPY_PYTHON, "-c", SCAPY, "sniff", "eth0", marker],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.p.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"sniffer in {ns}: {line}{self.p.stdout.read()}")
        time.sleep(0.5)

    def count(self):
        time.sleep(1.0)
        self.p.terminate()
        out = self.p.communicate(timeout=20)[0].strip().splitlines()
        return int(out[-1]) if out and out[-1].isdigit() else -1


def counter(r, chain, rule):
    """Packets counted by the rule of netd's table whose listing holds RULE, just before its
    counter (nft lists some expressions differently from how netd writes them)."""
    text = run("nft", "list", "chain", "inet", "netd", chain, ns=r.rtr).stdout
    found = [line for line in text.splitlines() if re.search(re.escape(rule) + r".* ?counter packets", line)]
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} rules like '{rule}' in chain {chain}:\n{text}")
    return int(re.search(r"counter packets (\d+)", found[0]).group(1))


def spoof_case(r, name, sender, packet, chain, rule, receiver=None, legit=None, count=5):
    """Sends COUNT spoofed packets; the rule must count exactly them and RECEIVER (a namespace)
    must not see one. LEGIT: the same packet with a legitimate source, which must arrive."""
    marker = f"SPOOF{abs(hash(name)) % 10**8}"
    before = counter(r, chain, rule)
    sn = Sniffer(receiver, marker) if receiver else None
    scapy_send(sender, packet.replace("MARKER", marker), count)
    seen = sn.count() if sn else 0
    dropped = counter(r, chain, rule) - before
    check(f"{name}: {dropped} of {count} dropped by '{rule}'" + (f", {seen} seen at the destination" if sn else ""),
          dropped == count and seen == 0)
    if legit:
        marker2 = marker + "L"
        sn = Sniffer(receiver, marker2)
        scapy_send(sender, legit.replace("MARKER", marker2), count)
        seen = sn.count()
        check(f"... the same with a legitimate source arrives ({seen} of {count})", seen == count)


def test_spoofing(r):
    # A downstream network routed into the LAN (not netd's route): its sources belong to the
    # LAN side, so from the WAN they fail the reverse-path check.
    run("ip", "-6", "route", "add", "2001:db8:55::/64", "via", LAN_HOST6, "dev", "eth1", ns=r.rtr)
    # The ISP's namespace is the router's WAN neighbour: it can send any source there.
    udp6_to_lan = "IPv6(src='{src}', dst='" + LAN_HOST6 + "')/UDP(sport=4000, dport=5353)/Raw(b'MARKER')"
    spoof_case(r, "WAN -> LAN host, LAN source (IPv6)", r.isp, udp6_to_lan.format(src="2001:db8:7::5"),
               "forward", 'iifname "eth0" ip6 saddr @lan6', r.lan, legit=udp6_to_lan.format(src=INET6))
    spoof_case(r, "WAN -> router, LAN source (ICMPv6 echo)", r.isp,
               f"IPv6(src='2001:db8:7::5', dst='{ROUTER_LAN6}')/ICMPv6EchoRequest()/Raw(b'MARKER')",
               "input", 'iifname "eth0" ip6 saddr @lan6')
    spoof_case(r, "WAN -> port forward, LAN source (IPv4)", r.isp,
               f"IP(src='192.168.7.50', dst='{ROUTER_WAN}')/UDP(sport=4000, dport=8080)/Raw(b'MARKER')",
               "forward", 'iifname "eth0" ip saddr @lan4', r.lan,
               legit=f"IP(src='{INET4}', dst='{ROUTER_WAN}')/UDP(sport=4001, dport=8080)/Raw(b'MARKER')")
    spoof_case(r, "WAN -> router, source routed back through the LAN (reverse path)", r.isp,
               f"IPv6(src='2001:db8:55::5', dst='{ROUTER_WAN6}')/ICMPv6EchoRequest()/Raw(b'MARKER')",
               "input", 'iifname "eth0" fib saddr . iif oif missing')
    udp6_out = "IPv6(src='{src}', dst='" + INET6 + "')/UDP(sport=4000, dport=5002)/Raw(b'MARKER')"
    spoof_case(r, "LAN -> internet, foreign source (IPv6)", r.lan, udp6_out.format(src="2001:db8:99::77"),
               "forward", 'iifname "eth1" ip6 saddr != @lan6', r.inet, legit=udp6_out.format(src=LAN_HOST6))
    udp4_out = "IP(src='{src}', dst='" + INET4 + "')/UDP(sport=4000, dport=5002)/Raw(b'MARKER')"
    spoof_case(r, "LAN -> internet, foreign source (IPv4)", r.lan, udp4_out.format(src="10.9.9.9"),
               "forward", 'iifname "eth1" ip saddr != @lan4', r.inet, legit=udp4_out.format(src=LAN_HOST4))
    spoof_case(r, "LAN -> router, foreign source (ICMPv6 echo)", r.lan,
               f"IPv6(src='2001:db8:99::77', dst='{ROUTER_LAN6}')/ICMPv6EchoRequest()/Raw(b'MARKER')",
               "input", 'iifname "eth1" ip6 saddr != @lan_local6')
    spoof_case(r, "WAN -> LAN host, ULA source", r.isp, udp6_to_lan.format(src="fd00::5"),
               "forward", 'iifname "eth0" ip6 saddr @scoped6', r.lan)
    spoof_case(r, "LAN -> ULA destination outside", r.lan,
               f"IPv6(src='{LAN_HOST6}', dst='fd12::1')/UDP(sport=4000, dport=5002)/Raw(b'MARKER')",
               "forward", 'oifname "eth0" ip6 daddr @scoped6')
    spoof_case(r, "WAN -> LAN host with a type 0 routing header (RFC 5095)", r.isp,
               f"IPv6(src='{INET6}', dst='{LAN_HOST6}')/IPv6ExtHdrRouting(type=0, addresses=['2001:db8:99::9'],"
               " segleft=1)/UDP(sport=4000, dport=5353)/Raw(b'MARKER')",
               "forward", "rt type 0", r.lan)


def ssh_login(r, key, src, dst, timeout=10):
    t0 = time.monotonic()
    res = run("ip", "netns", "exec", r.inet, "ssh", "-i", key, "-b", src, "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}",
              "-o", "LogLevel=ERROR", f"root@{dst}", "echo logged-in", check=False, timeout=timeout + 20)
    return "logged-in" in res.stdout, time.monotonic() - t0, res.stdout + res.stderr


def test_ssh_flood(r, key, fam, flooder, second, dst):
    family = "IPv4" if fam == 4 else "IPv6"
    syn_rule = f'update @syn{fam} '
    ssh_rule = f'tcp dport 22 ct state new update @ssh{fam} '
    rules = {syn_rule: syn_rule, ssh_rule: ssh_rule}
    before = {k: counter(r, "input", v) for k, v in rules.items()}
    sent = 3000
    # SYNs from one source, each from another port, about 500/s for 6 s (the flooder's kernel
    # resets any SYN-ACK it gets).
    ip = "IP" if fam == 4 else "IPv6"
    t_flood = time.monotonic()
    flood = subprocess.Popen(["ip", "netns", "exec", r.inet, SCAPY_PYTHON, "-c", SCAPY, "send",
                              f"{ip}(src='{flooder}', dst='{dst}')/TCP(sport=RandShort(), dport=22, flags='S')",
                              str(sent), "0.002"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    ok, took, out = ssh_login(r, key, second, dst)
    flood_out = flood.communicate(timeout=120)[0].strip()
    t_flood = time.monotonic() - t_flood
    dropped = {k: counter(r, "input", v) - before[k] for k, v in rules.items()}
    check(f"{family}: {flooder} floods SYNs at SSH ({sent} at 500/s) while {second} logs in: "
          f"logged in after {took:.1f} s", ok, out)
    print(f"     figures: the flooder's {sent} SYNs: {dropped[syn_rule]} dropped by its SYN limit (25/s burst 50), "
          f"{dropped[ssh_rule]} by its SSH limit (10/min burst 5), {sent - dropped[syn_rule] - dropped[ssh_rule]} "
          f"reached sshd; the flood lasted {t_flood:.1f} s {flood_out}", flush=True)
    check(f"... the flooding source was limited ({dropped[syn_rule] + dropped[ssh_rule]} of {sent} SYNs dropped)",
          dropped[syn_rule] + dropped[ssh_rule] >= sent * 0.9)


def test_echo_flood(r, fam, flooder, second, dst, where):
    family = "ICMP" if fam == 4 else "ICMPv6"
    sent = 1000
    flood = subprocess.Popen(["ip", "netns", "exec", r.inet, "ping", "-" + str(fam), "-q", "-i", "0.002", "-c",
                              str(sent), "-I", flooder, dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    time.sleep(0.5)
    ok, out2 = ping(r.inet, dst, count=5, extra=("-i", "0.2", "-I", second))
    t0 = time.monotonic()
    out = flood.communicate(timeout=60)[0]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    got = int(m.group(2)) if m else -1
    secs = re.search(r"time (\d+)ms", out)
    dur = int(secs.group(1)) / 1000 if secs else time.monotonic() - t0
    print(f"     figures: {family} echo flood to {where}: {sent} requests in {dur:.1f} s, {got} answered "
          "(limit 10/s burst 20 per source)", flush=True)
    check(f"{family} echo flood to {where} limited per source ({got} of {sent} answered)", 0 < got <= 20 + 12 * dur + 5,
          out)
    m2 = re.search(r"(\d+) received", out2)
    check(f"... while a second source's 5 pings are all answered", m2 and m2.group(1) == "5", out2)


def main():
    out = sys.argv[1]
    stage = os.path.join(out, "rootfs.stage")
    if not os.path.isdir(stage):
        print(f"no {stage}: build the image first")
        return 1
    keydir = tempfile.mkdtemp(prefix="spoof-keys-")
    key = os.path.join(keydir, "id")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
    r = RouterNs(stage, f"sp{os.getpid() % 10000}", CONFIG, keys_pub=open(key + ".pub").read())
    srv = Servers()
    try:
        r.create()
        run("ip", "addr", "add", f"{INET4_B}/24", "dev", "eth0", ns=r.inet)
        run("ip", "addr", "add", f"{INET6_B}/64", "dev", "eth0", "nodad", ns=r.inet)
        run("ip", "-6", "route", "add", "2001:db8:98::/64", "via", INET6, ns=r.isp)
        r.start_dhcp()
        r.start_netd()
        r.wan_bound()
        r.ipv6_uplink()
        run("ip", "-6", "route", "replace", "default", "via", ROUTER_LAN6, ns=r.lan)
        srv.listen(r.lan, 6, "udp", 5353, "lan")
        srv.listen(r.lan, 4, "udp", 5353, "lan")
        wait_for("the IPv6 path LAN -> internet", lambda: ping(r.lan, INET6, timeout=1)[0], 15, 0.5)
        wait_for("sshd", lambda: r.service_pid("sshd"), 20)

        test_spoofing(r)
        ok, text = probe(r.inet, "udp", LAN_HOST6, 5353)
        check("legitimate traffic still passes: internet -> opened LAN host port", ok, text)
        ok, text = probe(r.inet, "udp", ROUTER_WAN, 8080)
        check("... and the IPv4 port forward", ok, text)
        check("... and LAN -> internet", ping(r.lan, INET6)[0] and ping(r.lan, INET4)[0])

        test_ssh_flood(r, key, 4, INET4, INET4_B, ROUTER_WAN)
        test_ssh_flood(r, key, 6, INET6, INET6_B, ROUTER_WAN6)
        test_echo_flood(r, 4, INET4, INET4_B, ROUTER_WAN, "the router")
        test_echo_flood(r, 6, INET6, INET6_B, LAN_HOST6, "a LAN host")
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"test ran to the end ({type(e).__name__}: {e})", False)
    finally:
        failed = [n for n, ok in results if not ok]
        if failed:
            print("---- router log (last 40 lines) ----")
            print("\n".join(r.log().splitlines()[-40:]))
            print(run("nft", "list", "ruleset", ns=r.rtr, check=False).stdout[-6000:])
        srv.stop()
        r.cleanup()
        subprocess.run(["rm", "-rf", keydir])
    print(f"{len(results) - len(failed)}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
