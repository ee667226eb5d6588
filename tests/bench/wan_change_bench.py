#!/usr/bin/env python3
"""WAN address change figures in the booted image (printed, not asserted against targets): the
ISP moves the router to another address (its DHCP server NAKs the renew of the old one and
offers the new one), udhcpc is told to renew (SIGUSR1), and a LAN client pinging the internet
host every 10 ms through the 6in4 tunnel (heartbeat mode) waits for its packets to leave the
router from the new address. One boot, RUNS address changes (203.0.113.10 <-> .20).

Timed on the wire, in the ISP namespace (one clock): from the renew (the router's first DHCP
REQUEST after the signal) to the first protocol-41 packet from the new address carrying a
LAN-sourced IPv6 packet; also from the console command that sends the signal (includes the
serial console's latency). min / median / max of each.

The setup is the tunnel test's (tests/system/test_tunnel.py: broker, DNS, NTP in the ISP
namespace); the DHCP server is tests/lib/dhcpserver.py, switched in place between runs.

usage: wan_change_bench.py OUT_DIR [RUNS]     Ends with 'N passed, N failed'.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
import routerlab as rl  # noqa: E402
import test_tunnel as tt  # noqa: E402

ADDRS = ("203.0.113.10", "203.0.113.20")

# The ISP's DHCP server, switchable: a line "ADDRESS" on stdin makes it offer ADDRESS and NAK
# requests for any other.
SERVER_PY = """
import sys
sys.path.insert(0, sys.argv[1])
import dhcpserver as d
opts = {1: d.ip("255.255.255.0"), 3: d.ip("203.0.113.1"), 6: d.ip("203.0.113.53"), 42: d.ip("203.0.113.123"),
        51: d.u32(3600)}
srv = d.DhcpServer("eth0", "203.0.113.1", sys.argv[2], opts, nak_others=True, log=lambda m: None)
srv.start()
print("ready", flush=True)
for line in sys.stdin:
    srv.offer_ip = line.strip()
    print("ok", flush=True)
"""

# On the ISP's side of the WAN link: DHCP both ways, and the first 6in4 packet
# with a LAN source from each new outer source address. Times are CLOCK_MONOTONIC, shared
# with the benchmark (namespaces do not change it).
SNIFFER_PY = r"""
import json, socket, struct, sys, time
# ETH_P_ALL: the ISP's own answers are seen too (outgoing packets reach only those taps).
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
s.bind(("eth0", 3))
print(json.dumps({"k": "ready"}), flush=True)
last = None
while True:
    p, addr = s.recvfrom(2048)
    t = time.monotonic()
    if addr[1] != 0x0800 or len(p) < 20:
        continue
    ihl = (p[0] & 15) * 4
    src = socket.inet_ntoa(p[12:16])
    if p[9] == 17 and len(p) >= ihl + 8 and 67 in struct.unpack("!HH", p[ihl:ihl + 4]):
        opts = p[ihl + 8 + 240:]
        i, mtype = 0, 0
        while i + 1 < len(opts) and opts[i] != 255:
            if opts[i] == 0:
                i += 1
                continue
            if opts[i] == 53:
                mtype = opts[i + 2]
            i += 2 + opts[i + 1]
        print(json.dumps({"k": "dhcp", "t": t, "type": mtype, "src": src}), flush=True)
    elif p[9] == 41 and len(p) >= ihl + 40 and p[ihl + 8:ihl + 14] == bytes.fromhex("20010db80007"):
        if src != last:
            last = src
            print(json.dumps({"k": "lan6", "t": t, "src": src}), flush=True)
"""


class Lines:
    """JSON lines of a child process, collected by a thread."""

    def __init__(self, proc):
        self.proc, self.events, self.cv = proc, [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.events.append(json.loads(line))
                self.cv.notify_all()

    def wait(self, pred, timeout, start=0):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for ev in self.events[start:]:
                    if pred(ev):
                        return ev
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)


def stats(xs):
    return f"min {min(xs) * 1000:.0f} ms, median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"


def main():
    out = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    work = tempfile.mkdtemp(prefix="wanbench.")
    lab = rl.Lab("wanb").create()
    procs, vm, broker, dhcp = [], None, None, None
    passed = failed = 0
    try:
        certs = os.path.join(work, "certs")
        os.makedirs(certs)
        tt.make_certs(certs)
        broker, _, procs = tt.setup_isp(lab, work, certs, "heartbeat")
        tt.start_servers(lab, procs)
        dhcp = subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, "-c", SERVER_PY,
                                 os.path.join(HERE, "..", "lib"), ADDRS[0]],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if dhcp.stdout.readline().strip() != "ready":
            raise RuntimeError("the DHCP server did not start")
        sniff = subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, "-c", SNIFFER_PY],
                                 stdout=subprocess.PIPE, text=True)
        procs.append(sniff)
        wire = Lines(sniff)
        wire.wait(lambda e: e["k"] == "ready", 10)
        vm = tt.boot_router(lab, out, work, certs, "bench", tt.CONFIG + tt.MODES["heartbeat"])
        if not tt.wait("SLAAC and the tunnel", lambda: tt.lan_ping6(lab), 120, 1):
            raise RuntimeError("the LAN client never reached the internet host through the tunnel")
        ping = subprocess.Popen(["ip", "netns", "exec", lab.lan, "ping", "-6", "-q", "-i", "0.01", tt.INET6],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ping)
        from_renew, from_cmd, breakdown = [], [], []
        for i in range(runs):
            new = ADDRS[(i + 1) % 2]
            dhcp.stdin.write(new + "\n")
            dhcp.stdin.flush()
            dhcp.stdout.readline()
            start = len(wire.events)
            t_cmd = time.monotonic()
            vm.run("kill -USR1 $(head -n1 /run/netd/services/udhcpc.pid | cut -d' ' -f1)")
            first = wire.wait(lambda e: e["k"] == "lan6" and e["src"] == new, 30, start)
            renew = wire.wait(lambda e: e["k"] == "dhcp" and e["type"] == 3, 1, start)
            if first and renew:
                from_renew.append(first["t"] - renew["t"])
                from_cmd.append(first["t"] - t_cmd)
                # Where the time went, on the wire: renew -> NAK -> DISCOVER -> ... -> ACK.
                marks, names = [renew["t"]], {6: "nak", 1: "discover", 2: "offer", 3: "request", 5: "ack"}
                steps = []
                for e in wire.events[start:]:
                    if e["k"] == "dhcp" and e["t"] > renew["t"] and e["t"] < first["t"] and e["type"] in names:
                        steps.append(f"{names[e['type']]} +{(e['t'] - marks[-1]) * 1000:.0f}")
                        marks.append(e["t"])
                steps.append(f"LAN packet +{(first['t'] - marks[-1]) * 1000:.0f}")
                breakdown.append(steps)
                print(f"  run {i + 1}: -> {new}: renew -> first LAN packet from it {from_renew[-1] * 1000:.0f} ms "
                      f"(console command -> it {from_cmd[-1] * 1000:.0f} ms); renew, then ms: "
                      f"{', '.join(breakdown[-1])}", flush=True)
            else:
                print(f"  run {i + 1}: -> {new}: no LAN packet through the tunnel from it within 30 s", flush=True)
            time.sleep(1)
        _, v = vm.run("busybox 2>&1 | head -1")
        print(f"WAN address change -> LAN IPv6 through the tunnel from the new address, {out}, "
              f"{v.strip()}; {len(from_renew)} of {runs} runs:")
        if len(from_renew) == runs:
            print(f"  renew (first DHCP REQUEST on the wire) -> first LAN packet: {stats(from_renew)}")
            print(f"  console 'kill -USR1' sent -> first LAN packet: {stats(from_cmd)}")
            passed += 1
        else:
            failed += 1
    except Exception as e:  # noqa: BLE001 -- a figure that could not be obtained fails
        print(f"FAILED: {e}")
        if vm:
            print(vm.console_tail(40))
        failed += 1
    finally:
        if vm:
            vm.kill()
        for p in procs + ([dhcp] if dhcp else []):
            p.kill()
            p.wait()
        if broker:
            broker.stop()
        lab.destroy()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
