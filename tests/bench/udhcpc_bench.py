#!/usr/bin/env python3
"""WAN address change figures for BusyBox udhcpc (printed, not asserted against targets): the
time from the renew signal (SIGUSR1) to the new lease bound (the hook called with "bound" and
the new address), when the ISP has moved the router to another address: it NAKs the renew of
the old one and offers the new one.

Two udhcpc binaries, built from the same Debian source with the same recipe
(rootfs/source/busybox.build): "before" without our udhcpc patches
(rootfs/source/busybox.udhcpc-*.patch), "after" with them, exactly as the image gets it. Both
builds are cached in ROUTER_CACHE like the image's (the "after" build is the image's own).
They run in turn against the same DHCP server (tests/lib/dhcpserver.py) across a veth pair
between two network namespaces, RUNS renews each, interleaved; min / median / max of each.

The hook is a shell script that applies the lease to the interface (udhcpc sends its unicast
renew from the leased address) and reports the event through a FIFO the benchmark reads.

usage: udhcpc_bench.py [RUNS] [--busybox BEFORE AFTER]
    --busybox: compare these two busybox binaries instead (e.g. today's image's
    build/out/rootfs.stage/bin/busybox against another build's).
Ends with 'N passed, N failed' (a figure that could not be obtained fails).
"""
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "image"))
import debs  # noqa: E402

ISP, CPE = "udhb-isp", "udhb-cpe"
SERVER = "203.0.113.1"
ADDRS = ("203.0.113.10", "203.0.113.20")
# netd's udhcpc options (daemons/netd/service_configs.cc)
UDHCPC_ARGS = ["udhcpc", "-f", "-i", "eth0", "-t", "4", "-T", "3", "-A", "10"]

HOOK = """#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface" ;;
bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
echo "$1 $ip" > "$FIFO"
"""

# The ISP: dhcpserver.DhcpServer in the ISP namespace; a line "OFFER" on its stdin makes it
# offer OFFER from then on and NAK requests for any other address.
SERVER_PY = """
import sys
sys.path.insert(0, sys.argv[1])
import dhcpserver as d
srv = d.DhcpServer("wan0", sys.argv[2], sys.argv[3], {1: d.ip("255.255.255.0"), 3: d.ip(sys.argv[2]),
                   51: d.u32(3600)}, nak_others=True, log=lambda m: None)
srv.start()
print("ready", flush=True)
for line in sys.stdin:
    srv.offer_ip = line.strip()
    print("ok", flush=True)
"""


def sh(*cmd, ns=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)


def build_busybox_pair(work):
    """(before, after): the bin/busybox of both builds."""
    recipes = os.path.join(TOP, "rootfs", "source")
    locked = debs.read_lock(os.path.join(TOP, "rootfs", "packages.lock"))["src:busybox"]
    dsc = debs.download_source("src:busybox", locked.version)
    if debs.sha256_of(dsc) != locked.sha256:
        raise debs.BuildError(f"{dsc}: sha256 does not match packages.lock")
    plain = os.path.join(work, "recipes-before")
    os.makedirs(plain)
    for f in os.listdir(recipes):
        if f.startswith("busybox.") and not f.startswith("busybox.udhcpc-"):
            shutil.copy(os.path.join(recipes, f), plain)
    before = debs.build_source("src:busybox", dsc, plain)
    after = debs.build_source("src:busybox", dsc, recipes)
    return os.path.join(before, "bin/busybox"), os.path.join(after, "bin/busybox")


def make_net():
    destroy_net()
    for ns in (ISP, CPE):
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "wan0", "netns", ISP, ns=CPE)
    sh("ip", "addr", "add", f"{SERVER}/24", "dev", "wan0", ns=ISP)
    sh("ip", "link", "set", "wan0", "up", ns=ISP)
    sh("ip", "link", "set", "eth0", "up", ns=CPE)


def destroy_net():
    for ns in (ISP, CPE):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class Client:
    """One udhcpc, its hook reporting through a FIFO."""

    def __init__(self, busybox, work, name):
        self.work = work
        self.fifo = os.path.join(work, f"{name}.fifo")
        if not os.path.exists(self.fifo):
            os.mkfifo(self.fifo)
        self.hook = os.path.join(work, "hook")
        self.fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.buf = b""
        env = dict(os.environ, FIFO=self.fifo)
        self.log = os.path.join(work, f"{name}.log")
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(["ip", "netns", "exec", CPE, busybox] + UDHCPC_ARGS + ["-s", self.hook],
                                         env=env, stdout=subprocess.DEVNULL, stderr=err)
        self.seen = []

    def event(self, want, timeout):
        """Waits for the hook line `want`; its arrival time (monotonic) or None."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.seen.append(line.decode())
                if line.decode() == want:
                    return time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if select.select([self.fd], [], [], left)[0]:
                self.buf += os.read(self.fd, 4096)

    def report(self, what):
        print(f"  {what}: hook events {self.seen}; udhcpc said: " +
              " | ".join(open(self.log).read().strip().splitlines()[-8:]))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        os.close(self.fd)


def main():
    args = sys.argv[1:]
    given = None
    if "--busybox" in args:
        i = args.index("--busybox")
        given = (os.path.abspath(args[i + 1]), os.path.abspath(args[i + 2]))
        del args[i:i + 3]
    runs = int(args[0]) if args else 10
    if os.geteuid() != 0:
        print("udhcpc_bench: needs root (network namespaces)")
        print("0 passed, 1 failed")
        return 1
    work = tempfile.mkdtemp(prefix="udhcpc-bench.")
    passed = failed = 0
    server = None
    try:
        before, after = given or build_busybox_pair(work)
        with open(os.path.join(work, "hook"), "w") as f:
            f.write(HOOK)
        os.chmod(os.path.join(work, "hook"), 0o755)
        make_net()
        server = subprocess.Popen(["ip", "netns", "exec", ISP, sys.executable, "-c", SERVER_PY,
                                   os.path.join(TOP, "tests", "lib"), SERVER, ADDRS[0]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the DHCP server did not start")

        def offer(a):
            server.stdin.write(a + "\n")
            server.stdin.flush()
            server.stdout.readline()

        times = {"before": [], "after": []}
        misses = {"before": 0, "after": 0}
        for i in range(runs):
            for name, bb in (("before", before), ("after", after)) if i % 2 == 0 else \
                    (("after", after), ("before", before)):
                offer(ADDRS[0])
                c = Client(bb, work, name)
                try:
                    if c.event(f"bound {ADDRS[0]}", 15) is None:
                        misses[name] += 1
                        c.report(f"{name}, run {i + 1}: no first lease")
                        continue
                    offer(ADDRS[1])
                    t0 = time.monotonic()
                    c.proc.send_signal(signal.SIGUSR1)
                    t1 = c.event(f"bound {ADDRS[1]}", 30)
                    if t1 is None:
                        misses[name] += 1
                        c.report(f"{name}, run {i + 1}: no new lease after the renew")
                    else:
                        times[name].append(t1 - t0)
                finally:
                    c.stop()
        print(f"udhcpc: SIGUSR1 renew -> new lease bound (hook 'bound'), the ISP NAKing the old address "
              f"and offering a new one; {runs} runs each, interleaved")
        for name in ("before", "after"):
            t = times[name]
            if len(t) == runs:
                print(f"  {name:6} ({'without' if name == 'before' else 'with'} busybox.udhcpc-*.patch): "
                      f"min {min(t) * 1000:.0f} ms, median {statistics.median(t) * 1000:.0f} ms, "
                      f"max {max(t) * 1000:.0f} ms")
                passed += 1
            else:
                print(f"  {name:6}: FAILED, {misses[name]} of {runs} renews did not end in the new lease")
                failed += 1
        print(json.dumps({n: [round(x * 1000, 1) for x in t] for n, t in times.items()}))
    finally:
        if server:
            server.kill()
            server.wait()
        destroy_net()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
