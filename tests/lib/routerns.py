"""Namespace test harness: the image's own userland (build/out/rootfs.stage: netd, BusyBox
udhcpc with the hook script, dnsmasq, radvd, ntpd, sshd, the same files the squashfs holds)
run in a network namespace on this machine's kernel, wired to test hosts:

    inet (198.51.100.10, 2001:db8:99::10)  "the internet"
      |
    isp  (203.0.113.1 on the WAN link; a DHCP server from tests/lib/dhcpserver.py)
      |  WAN
    rtr  (the router: eth0 WAN, eth1 LAN; netd chrooted into the staged root filesystem)
      |  LAN
    lan  (a LAN client)

The ISP also routes IPv6 to the router's LAN prefix over the WAN link, standing in for the
6in4 tunnel (issue 5), so that IPv6 filtering is tested with real forwarded traffic.
Fast (no emulation) and real: the kernel's nftables, conntrack and NAT, the real daemons.
Standard library only; every wait is bounded.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WAN_MAC = "52:54:00:12:34:01"
LAN_MAC = "52:54:00:12:34:02"

ISP_WAN = "203.0.113.1"
ROUTER_WAN = "203.0.113.10"
INET4 = "198.51.100.10"
INET6 = "2001:db8:99::10"
LAN_PREFIX = "2001:db8:7::"
LAN_HOST4 = "192.168.7.10"
LAN_HOST6 = "2001:db8:7::10"


def run(*cmd, ns=None, check=True, timeout=60, input=None, env=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + tuple(cmd)
    r = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, input=input, env=env)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def wait_for(what, fn, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# The holder runs inside the router namespace: a private mount namespace (one for the router's
# whole life, as in the image) in which the staged root filesystem gets what rcS would give it
# (proc, sys, and a /run, /tmp and /data that are test directories), then syslogd. netd and
# the hook tests enter it with nsenter and chroot, as init would start them.
HOLDER = r"""
set -e
S=$1 W=$2
mount --bind "$W/run" "$S/run"
mount --bind "$W/tmp" "$S/tmp"
mount --bind "$W/data" "$S/data"
mount --bind "$W/dev" "$S/dev"
for d in null zero full random urandom tty; do mount --bind /dev/$d "$S/dev/$d"; done
mount -t proc proc "$S/proc"
mount --rbind /sys "$S/sys"
mkdir -p "$W/run/log" "$W/run/netd" "$W/run/sshd"
if [ ! -S "$W/dev/log" ]; then
    chroot "$S" /sbin/syslogd -O /run/messages -s 4096
    i=0; while [ ! -S "$W/dev/log" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
fi
chroot "$S" /bin/sh -c 'ip link set lo up'
echo ready
exec sleep infinity
"""


class RouterNs:
    def __init__(self, stage, prefix, config_text, keys_pub=None, workdir=None):
        self.stage = os.path.abspath(stage)
        self.prefix = prefix
        self.rtr, self.isp, self.lan, self.inet = (f"{prefix}-rtr", f"{prefix}-isp", f"{prefix}-lan", f"{prefix}-inet")
        self.config_text = config_text
        self.keys_pub = keys_pub
        self.work = workdir or tempfile.mkdtemp(prefix=f"{prefix}-")
        self.netd = None
        self.dhcp = None
        self.owner = None
        self.holder = None

    # ---- network -------------------------------------------------------------------------

    def create(self):
        self.destroy()
        for ns in (self.rtr, self.isp, self.lan, self.inet):
            run("ip", "netns", "add", ns)
            run("ip", "link", "set", "lo", "up", ns=ns)
        # The router's NICs: named like the image's, found by netd by MAC; left down.
        run("ip", "link", "add", "eth0", "address", WAN_MAC, "type", "veth", "peer", "name", "wan0", "netns", self.isp,
            ns=self.rtr)
        run("ip", "link", "add", "eth1", "address", LAN_MAC, "type", "veth", "peer", "name", "eth0", "netns", self.lan,
            ns=self.rtr)
        run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", self.inet, ns=self.isp)
        isp = [("addr", "add", f"{ISP_WAN}/24", "dev", "wan0"), ("addr", "add", "2001:db8:ff::1/64", "dev", "wan0"),
               ("addr", "add", "198.51.100.1/24", "dev", "up0"), ("addr", "add", "2001:db8:99::1/64", "dev", "up0"),
               ("link", "set", "wan0", "up"), ("link", "set", "up0", "up"),
               ("-6", "route", "add", f"{LAN_PREFIX}/64", "via", "2001:db8:ff::2")]
        for c in isp:
            run("ip", *c, ns=self.isp)
        for k in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            run("sysctl", "-qw", k, ns=self.isp)
        # 198.51.100.66 and 2001:db8:99::66 are on the blocklist: secondary and deprecated, so
        # the internet host never picks them as its own source address.
        for c in [("addr", "add", f"{INET4}/24", "dev", "eth0"), ("addr", "add", "198.51.100.66/24", "dev", "eth0"),
                  ("addr", "add", f"{INET6}/64", "dev", "eth0"), ("addr", "add", "2001:db8:99::66/64", "dev", "eth0", "preferred_lft", "0"),
                  ("link", "set", "eth0", "up"), ("route", "add", "default", "via", "198.51.100.1"),
                  ("-6", "route", "add", "default", "via", "2001:db8:99::1")]:
            run("ip", *c, ns=self.inet)
        for c in [("addr", "add", f"{LAN_HOST4}/24", "dev", "eth0"), ("addr", "add", f"{LAN_HOST6}/64", "dev", "eth0"),
                  ("link", "set", "eth0", "up"), ("route", "add", "default", "via", "192.168.7.1")]:
            run("ip", *c, ns=self.lan)
        # The IPv6 uplink that stands in for the tunnel: an address on the router's WAN link
        # (netd leaves WAN IPv6 alone); the default route goes on once netd has the link up.
        run("ip", "addr", "add", "2001:db8:ff::2/64", "dev", "eth0", "nodad", ns=self.rtr)
        run("sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0", ns=self.lan)
        # The LAN client keeps its one static address (SLAAC is tested in the booted image), so
        # that its UDP answers leave from the address they were sent to.
        run("sysctl", "-qw", "net.ipv6.conf.eth0.autoconf=0", ns=self.lan)
        run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=self.inet)
        run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", ns=self.isp)
        # The data disk and the runtime directories.
        for d in ("run", "tmp", "data/etc", "data/ssh", "data/state", "data/var/lib/misc", "dev"):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)
        os.chmod(os.path.join(self.work, "tmp"), 0o1777)
        for d in ("null", "zero", "full", "random", "urandom", "tty"):
            open(os.path.join(self.work, "dev", d), "a").close()
        with open(os.path.join(self.work, "data/etc/router.conf"), "w") as f:
            f.write(self.config_text)
        for t in ("ed25519",):
            key = os.path.join(self.work, f"data/ssh/ssh_host_{t}_key")
            if not os.path.exists(key):
                run("ssh-keygen", "-q", "-t", t, "-N", "", "-f", key)
        if self.keys_pub:
            with open(os.path.join(self.work, "data/ssh/authorized_keys"), "w") as f:
                f.write(self.keys_pub)
            os.chmod(os.path.join(self.work, "data/ssh/authorized_keys"), 0o600)
        return self

    def destroy(self):
        self.stop_dhcp()
        if getattr(self, "holder", None):
            self.holder.kill()
            self.holder.wait()
            self.holder = None
        for ns in (self.rtr, self.isp, self.lan, self.inet):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def cleanup(self):
        self.destroy()
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- the ISP's DHCP server ----------------------------------------------------------------

    def start_dhcp(self, offer_ip=ROUTER_WAN, options=None, nak_others=False, lease=120):
        """options: {code: bytes}; by default a normal lease (mask, router, DNS, NTP, MTU)."""
        import dhcpserver as d
        self.stop_dhcp()
        if options is None:
            options = {1: d.ip("255.255.255.0"), 3: d.ip(ISP_WAN), 6: d.ips("203.0.113.53", "203.0.113.54"),
                       42: d.ip("203.0.113.123"), 26: d.u16(1500), 15: b"isp.example"}
        options.setdefault(51, d.u32(lease))
        cfg = {"ifname": "wan0", "server_ip": ISP_WAN, "offer_ip": offer_ip,
               "options": {str(k): v.hex() for k, v in options.items()}, "nak_others": nak_others}
        path = os.path.join(self.work, "dhcpserver.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.dhcp_log = open(os.path.join(self.work, "dhcpserver.log"), "a")
        self.dhcp = subprocess.Popen(["ip", "netns", "exec", self.isp, sys.executable,
                                      os.path.join(HERE, "dhcpserver.py"), path],
                                     stdout=self.dhcp_log, stderr=subprocess.STDOUT)
        time.sleep(0.3)

    def stop_dhcp(self):
        if self.dhcp:
            self.dhcp.kill()
            self.dhcp.wait()
            self.dhcp = None

    # ---- netd --------------------------------------------------------------------------------

    def enter(self):
        """The command prefix that runs something inside the router (its namespaces, chrooted)."""
        if not self.holder:
            self.holder = subprocess.Popen(["ip", "netns", "exec", self.rtr, "unshare", "--mount", "--propagation",
                                            "private", "sh", "-c", HOLDER, "holder", self.stage, self.work],
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            line = self.holder.stdout.readline()
            if "ready" not in line:
                raise RuntimeError(f"router namespace setup failed: {line}{self.holder.stdout.read()}")
        return ["nsenter", "--target", str(self.holder.pid), "--mount", "--net", "/usr/sbin/chroot", self.stage]

    def start_netd(self):
        prefix = self.enter()
        self.netd_log = open(os.path.join(self.work, "netd.console"), "a")
        try:
            os.unlink(self.control_path())
        except FileNotFoundError:
            pass
        self.netd = subprocess.Popen(prefix + ["/usr/sbin/netd", "-c", "/data/etc/router.conf"],
                                     stdout=self.netd_log, stderr=subprocess.STDOUT)
        wait_for("netd's control socket", lambda: os.path.exists(self.control_path()), 20)
        return self.netd

    def netd_pid(self):
        """netd's PID (the launcher execs into chroot, which execs netd: same process)."""
        return self.netd.pid if self.netd and self.netd.poll() is None else None

    def kill_netd(self, sig=signal.SIGKILL):
        self.netd.send_signal(sig)
        self.netd.wait(30)

    def control_path(self):
        return os.path.join(self.work, "run/netd/control")

    def netctl(self, *args, check=True, env_extra=None):
        env = {"NETCTL_SOCKET": self.control_path(), "PATH": os.environ["PATH"]}
        env.update(env_extra or {})
        return run(os.path.join(self.stage, "usr/sbin/netctl"), *args, check=check, env=env)

    def status(self):
        return json.loads(self.netctl("status", "--json").stdout)

    def wan_bound(self, address=ROUTER_WAN, timeout=30):
        def bound():
            try:
                s = self.status()
            except Exception:
                return None
            w = s.get("wan", {})
            return s if w.get("state") == "bound" and w.get("address", "").startswith(address + "/") else None
        return wait_for(f"WAN bound to {address}", bound, timeout)

    def log(self):
        try:
            with open(os.path.join(self.work, "run/messages"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def service_pid(self, name):
        for s in self.status()["services"]:
            if s["name"] == name:
                return s["pid"]
        return 0

    def ipv6_uplink(self):
        run("ip", "-6", "route", "replace", "default", "via", "2001:db8:ff::1", "dev", "eth0", ns=self.rtr)

    # ---- the owner-flag trick: make the kernel refuse netd's tables ------------------------

    def hold_table(self):
        """Creates table inet netd with the owner flag from another process (nft -i, kept
        open): the kernel then refuses netd's batch with EPERM until release_table()."""
        self.owner = subprocess.Popen(["ip", "netns", "exec", self.rtr, "nft", "-i"], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        self.owner.stdin.write("add table inet netd { flags owner; }\n")
        self.owner.stdin.flush()
        wait_for("the owned table", lambda: "netd" in run("nft", "list", "tables", ns=self.rtr).stdout, 10)

    def release_table(self):
        self.owner.stdin.close()
        self.owner.wait(10)
        self.owner = None


# ---- traffic helpers (Python in the namespaces: no extra tools) ------------------------------

SERVER = r"""
import socket, sys, threading
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
proto, port = sys.argv[2], int(sys.argv[3])
if proto == "tcp":
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port)); s.listen(16)
    print("ready", flush=True)
    while True:
        c, peer = s.accept()
        c.sendall(("hello from %s:%d you are %s\n" % (sys.argv[4], port, peer[0])).encode()); c.close()
else:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
    print("ready", flush=True)
    while True:
        d, peer = s.recvfrom(2048)
        s.sendto(("echo from %s:%d you are %s\n" % (sys.argv[4], port, peer[0])).encode(), peer)
"""

CLIENT = r"""
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
proto, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=timeout)
        print(s.recv(200).decode().strip())
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(timeout)
        s.sendto(b"ping", (host, port)); print(s.recv(200).decode().strip())
except Exception as e:
    print("FAILED", type(e).__name__, e); sys.exit(1)
"""


class Servers:
    def __init__(self):
        self.procs = []

    def listen(self, ns, fam, proto, port, name):
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, str(fam), proto, str(port), name],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = p.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"server {ns} {proto}/{port}: {line}")
        self.procs.append(p)

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []


def probe(ns, proto, host, port, timeout=2.0):
    """(ok, text): a TCP connection and greeting, or a UDP echo, within timeout."""
    r = run(sys.executable, "-c", CLIENT, proto, host, str(port), str(timeout), ns=ns, check=False,
            timeout=timeout + 10)
    return r.returncode == 0, r.stdout.strip()


def ping(ns, host, count=1, timeout=2, extra=()):
    r = run("ping", "-c", str(count), "-W", str(timeout), *extra, host, ns=ns, check=False, timeout=timeout * count + 10)
    return r.returncode == 0, r.stdout + r.stderr
