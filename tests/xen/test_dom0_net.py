#!/usr/bin/env python3
"""xen/dom0-net in network namespaces (issue 6): a "dom0" namespace runs the helper for real,
with veths standing in for the physical uplink and the domUs' vifs; then real DHCP packets
show its bridge-filter (ebtables-style, nftables bridge family) rules at work:

  WAN bridge:   uplink (to an "isp" namespace), vif1.0 (the router's WAN), leak0 (a LAN device
                wrongly plugged into the WAN bridge)
  LAN bridge 1: xenbr-lan: vif1.1 (the router's first LAN NIC), lanport (a LAN client),
                ispleak (a physical LAN port, --lan-port ispleak, with a foreign DHCP server
                behind it)
  LAN bridge 2: xenbr-guest (issue 12, a second LAN segment): vif1.2 (the router's second LAN
                NIC), guestport (a client), guestleak (a physical port,
                --lan-port xenbr-guest:guestleak, with a foreign DHCP server behind it)

Checks: the --dry-run output matches every case of its golden file (one and two LAN bridges)
and bad arguments are refused; the router's DHCP discover reaches the ISP, a discover from
the LAN side does not; no DHCP server answer leaves through the uplink; on each LAN bridge the
router's DHCP answers reach the client and a foreign server's do not; the two LAN segments
stay apart and neither reaches the uplink; with the rules flushed the discover and the
foreign answer do cross (the test can fail); a second run changes nothing.
usage: test_dom0_net.py REPO_DIR
"""
import os
import subprocess
import sys
import time

top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
helper = os.path.join(top, "xen", "dom0-net")
P = f"d0n{os.getpid() % 10000}"
NS = {k: f"{P}-{k}" for k in ("dom0", "isp", "rtr", "lanhost", "client", "ispleak", "guest", "guestleak")}
# The helper as the namespace test runs it: two LAN bridges, a port on each.
ARGS = ["--uplink", "eth0", "--lan-bridge", "xenbr-lan", "--lan-bridge", "xenbr-guest",
        "--lan-port", "ispleak", "--lan-port", "xenbr-guest:guestleak"]
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


def crosses(sender, sport, dport, listener, tag, dev="eth0"):
    """Whether a broadcast UDP packet sport -> dport from `sender` (out of its `dev`) reaches
    `listener` (on its eth0)."""
    lp = subprocess.Popen(["ip", "netns", "exec", NS[listener], sys.executable, "-c", LISTEN, str(dport), "1.5"],
                          stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    sh(sys.executable, "-c", SEND.replace('b"eth0"', f'b"{dev}"'), str(sport), str(dport), tag, ns=sender)
    out, _ = lp.communicate(timeout=10)
    return tag in out


def golden_cases():
    """The golden file: each case is a line '### ARGS' followed by the --dry-run output."""
    cases = []
    for line in open(os.path.join(top, "tests", "xen", "dom0-net.dry-run.golden")).read().splitlines(True):
        if line.startswith("### "):
            cases.append((line[4:].split(), ""))
        else:
            cases[-1] = (cases[-1][0], cases[-1][1] + line)
    return cases


def main():
    cases = golden_cases()
    check("the golden file has the one- and two-LAN-bridge cases", len(cases) >= 2, cases)
    for args, want in cases:
        dry = sh(helper, "--dry-run", *args).stdout
        check(f"--dry-run {' '.join(args)}: output matches tests/xen/dom0-net.dry-run.golden", dry == want, dry)
    for args, want in [
            (["--lan-port", "xenbr-guest:eth2"], "'xenbr-guest' is not a LAN bridge"),
            (["--lan-bridge", "xenbr-a", "--lan-bridge", "xenbr-a"], "--lan-bridge xenbr-a given twice"),
            (["--lan-bridge", "xenbr-wan"], "xenbr-wan is both the WAN and a LAN bridge"),
            (["--lan-bridge", "xenbr-a", "--lan-bridge", "xenbr-b", "--lan-port", "eth1",
              "--lan-port", "xenbr-b:eth1"], "--lan-port eth1 given twice"),
            (["--lan-port", "xenbr-lan:eth0"], "eth0 is both the uplink and a LAN port"),
            (["--lan-bridge", "xenbr-a", "--lan-bridge", "xenbr-b", "--lan-port", "xenbr-a:xenbr-b"],
             "xenbr-b is a bridge here, not a port")]:
        r = sh(helper, "--dry-run", "--uplink", "eth0", *args, check=False)
        check(f"refused: {' '.join(args)}", r.returncode != 0 and want in r.stderr and not r.stdout,
              r.stdout + r.stderr)
    try:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            sh("ip", "netns", "add", ns)
        ports = [("eth0", "isp", "10.99.0.1"), ("vif1.0", "rtr", "10.99.0.2"), ("leak0", "lanhost", "10.99.0.3"),
                 ("vif1.1", "rtr", "10.98.0.1"), ("lanport", "client", "10.98.0.2"), ("ispleak", "ispleak", "10.98.0.3"),
                 ("vif1.2", "rtr", "10.97.0.1"), ("guestport", "guest", "10.97.0.2"),
                 ("guestleak", "guestleak", "10.97.0.3")]
        for dev, peer_ns, addr in ports:
            peer = {"vif1.1": "eth1", "vif1.2": "eth2"}.get(dev, "eth0")
            sh("ip", "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", NS[peer_ns], ns="dom0")
            sh("ip", "addr", "add", f"{addr}/24", "dev", peer, ns=peer_ns)
            sh("ip", "link", "set", peer, "up", ns=peer_ns)
        r = sh(helper, *ARGS, ns="dom0")
        print("      " + r.stdout.strip())
        # What the Xen hotplug script does with each vif: vif1.0 on the WAN bridge, vif1.1 and
        # vif1.2 on the LAN bridges mkdomu names; the clients stand for hosts on those segments.
        for dev, br in (("vif1.0", "xenbr-wan"), ("leak0", "xenbr-wan"), ("vif1.1", "xenbr-lan"),
                        ("lanport", "xenbr-lan"), ("vif1.2", "xenbr-guest"), ("guestport", "xenbr-guest")):
            sh("ip", "link", "set", dev, "master", br, ns="dom0")
        for dev in ("vif1.0", "leak0", "vif1.1", "lanport", "ispleak", "vif1.2", "guestport", "guestleak"):
            sh("ip", "link", "set", dev, "up", ns="dom0")
        masters = {p: os.path.basename(sh("readlink", f"/sys/class/net/{p}/master", ns="dom0").stdout.strip())
                   for p in ("eth0", "ispleak", "guestleak")}
        check("the uplink joined the WAN bridge, each LAN port its own LAN bridge",
              masters == {"eth0": "xenbr-wan", "ispleak": "xenbr-lan", "guestleak": "xenbr-guest"}, masters)
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
        # The router's own dnsmasq answers from its LAN vifs (eth1, eth2 in the router namespace).
        check("on the LAN bridge the router's DHCP answer reaches the client",
              crosses("rtr", 67, 68, "client", "offer-rtr", dev="eth1"))
        check("on the second LAN bridge a foreign DHCP server's answer does not reach its client",
              not crosses("guestleak", 67, 68, "guest", "offer-guestleak"))
        check("on the second LAN bridge the router's DHCP answer (its second LAN vif) reaches the client",
              crosses("rtr", 67, 68, "guest", "offer-rtr-guest", dev="eth2"))
        check("the LAN segments stay apart: the router's answer on the first does not reach the second",
              not crosses("rtr", 67, 68, "guest", "offer-rtr-cross", dev="eth1"))
        check("... nor ordinary traffic from a client of the first",
              not crosses("client", 5000, 5001, "guest", "plain-cross"))
        for client in ("client", "guest"):
            check(f"nothing from a LAN bridge reaches the uplink: {client}'s DHCP discover and traffic",
                  not crosses(client, 68, 67, "isp", f"discover-{client}")
                  and not crosses(client, 5000, 5001, "isp", f"plain-{client}"))

        # Idempotent: a second run leaves the same rules, one table, the same bridges.
        links = sh("ip", "-br", "link", ns="dom0").stdout
        sh(helper, *ARGS, ns="dom0")
        again = sh("nft", "list", "table", "bridge", "v6router", ns="dom0").stdout
        tables = sh("nft", "list", "tables", ns="dom0").stdout.count("v6router")
        check("a second run changes nothing (same rules, one table, same links)",
              again == listing and tables == 1 and sh("ip", "-br", "link", ns="dom0").stdout == links, again)
        # The test can fail: without the rules the LAN-side discover and the foreign answers cross.
        sh("nft", "flush", "chain", "bridge", "v6router", "forward", ns="dom0")
        check("control: with the chain flushed the LAN-side discover does cross",
              crosses("lanhost", 68, 67, "isp", "discover-lan-2"))
        check("control: with the chain flushed the foreign answer on the second LAN bridge does cross",
              crosses("guestleak", 67, 68, "guest", "offer-guestleak-2"))
    finally:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
