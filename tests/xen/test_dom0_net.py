#!/usr/bin/env python3
"""xen/dom0-net in network namespaces (issue 6): a "dom0" namespace runs the helper for real,
with veths standing in for the physical uplink and the domUs' vifs; then real DHCP packets
show its bridge-filter (ebtables-style, nftables bridge family) rules at work:

  WAN bridge: uplink (to an "isp" namespace), vif1.0 (the router's WAN), leak0 (a LAN device
              wrongly plugged into the WAN bridge)
  LAN bridge: vif1.1 (the router's LAN), lanport (a LAN client), ispleak (a physical LAN port,
              given with --lan-port, with a foreign DHCP server behind it)

Checks: the --dry-run output matches its golden file; the router's DHCP discover reaches the
ISP, a discover from the LAN side does not; no DHCP server answer leaves through the uplink;
on the LAN bridge the router's DHCP answers reach the client and a foreign server's do not;
with the rules flushed the discover does cross (the test can fail); a second run changes
nothing. usage: test_dom0_net.py REPO_DIR
"""
import os
import subprocess
import sys
import time

top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
helper = os.path.join(top, "xen", "dom0-net")
P = f"d0n{os.getpid() % 10000}"
NS = {k: f"{P}-{k}" for k in ("dom0", "isp", "rtr", "lanhost", "client", "ispleak")}
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n      {detail}" if detail and not ok else ""), flush=True)


def sh(*cmd, ns=None, check=True):
    if ns:
        cmd = ("ip", "netns", "exec", NS[ns]) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
    return r


LISTEN = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(float(sys.argv[2]))
got = []
try:
    while True:
        d, peer = s.recvfrom(2048); got.append(d.decode(errors="replace"))
except socket.timeout:
    pass
print("\n".join(got))
"""
SEND = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.bind(("0.0.0.0", int(sys.argv[1])))
s.sendto(sys.argv[3].encode(), ("255.255.255.255", int(sys.argv[2])))
"""


def crosses(sender, sport, dport, listener, tag):
    """Whether a broadcast UDP packet sport -> dport from `sender` reaches `listener`."""
    lp = subprocess.Popen(["ip", "netns", "exec", NS[listener], sys.executable, "-c", LISTEN, str(dport), "1.5"],
                          stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    sh(sys.executable, "-c", SEND, str(sport), str(dport), tag, ns=sender)
    out, _ = lp.communicate(timeout=10)
    return tag in out


def main():
    golden = open(os.path.join(top, "tests", "xen", "dom0-net.dry-run.golden")).read()
    dry = sh(helper, "--dry-run", "--uplink", "eth0", "--lan-port", "eth1").stdout
    check("--dry-run output matches tests/xen/dom0-net.dry-run.golden", dry == golden, dry)
    try:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            sh("ip", "netns", "add", ns)
        ports = [("eth0", "isp", "10.99.0.1"), ("vif1.0", "rtr", "10.99.0.2"), ("leak0", "lanhost", "10.99.0.3"),
                 ("vif1.1", "rtr", "10.98.0.1"), ("lanport", "client", "10.98.0.2"), ("ispleak", "ispleak", "10.98.0.3")]
        for dev, peer_ns, addr in ports:
            peer = "eth1" if dev == "vif1.1" else "eth0"
            sh("ip", "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", NS[peer_ns], ns="dom0")
            sh("ip", "addr", "add", f"{addr}/24", "dev", peer, ns=peer_ns)
            sh("ip", "link", "set", peer, "up", ns=peer_ns)
        r = sh(helper, "--uplink", "eth0", "--lan-port", "ispleak", ns="dom0")
        print("      " + r.stdout.strip())
        for dev in ("vif1.0", "leak0"):
            sh("ip", "link", "set", dev, "master", "xenbr-wan", ns="dom0")
        for dev in ("vif1.1", "lanport"):
            sh("ip", "link", "set", dev, "master", "xenbr-lan", ns="dom0")
        for dev in ("vif1.0", "leak0", "vif1.1", "lanport", "ispleak"):
            sh("ip", "link", "set", dev, "up", ns="dom0")
        time.sleep(1)
        listing = sh("nft", "list", "table", "bridge", "v6router", ns="dom0").stdout

        check("the router's DHCP discover (from its vif) reaches the ISP", crosses("rtr", 68, 67, "isp", "discover-rtr"))
        check("a DHCP discover from the LAN side (a non-vif port on the WAN bridge) does not reach the ISP",
              not crosses("lanhost", 68, 67, "isp", "discover-lan"), listing)
        check("no DHCP server answer leaves through the uplink", not crosses("lanhost", 67, 68, "isp", "offer-lan"))
        check("ordinary traffic from that port still crosses (only DHCP is stopped)",
              crosses("lanhost", 5000, 5001, "isp", "plain"))
        check("the ISP's DHCP answer reaches the router's WAN vif", crosses("isp", 67, 68, "rtr", "offer-isp-rtr"))
        check("the ISP's DHCP answer does not reach a LAN device on a non-vif port",
              not crosses("isp", 67, 68, "lanhost", "offer-isp-lan"))
        check("on the LAN bridge a foreign DHCP server's answer does not reach the client",
              not crosses("ispleak", 67, 68, "client", "offer-isp"))
        # The router's own dnsmasq answers from its LAN vif (eth1 in the router namespace).
        send_eth1 = SEND.replace('b"eth0"', 'b"eth1"')
        lp = subprocess.Popen(["ip", "netns", "exec", NS["client"], sys.executable, "-c", LISTEN, "68", "1.5"],
                              stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        sh(sys.executable, "-c", send_eth1, "67", "68", "offer-rtr", ns="rtr")
        out, _ = lp.communicate(timeout=10)
        check("on the LAN bridge the router's DHCP answer reaches the client", "offer-rtr" in out)

        # Idempotent: a second run leaves the same rules, one jump, the same bridges.
        sh(helper, "--uplink", "eth0", "--lan-port", "ispleak", ns="dom0")
        again = sh("nft", "list", "table", "bridge", "v6router", ns="dom0").stdout
        tables = sh("nft", "list", "tables", ns="dom0").stdout.count("v6router")
        check("a second run changes nothing (same rules, one table)", again == listing and tables == 1, again)
        # The test can fail: without the rules the LAN-side discover crosses.
        sh("nft", "flush", "chain", "bridge", "v6router", "forward", ns="dom0")
        check("control: with the chain flushed the LAN-side discover does cross",
              crosses("lanhost", 68, 67, "isp", "discover-lan-2"))
    finally:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
