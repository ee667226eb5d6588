#!/usr/bin/env python3
"""Transition test: netd converges. In the booted image (QEMU: our kernel with sit, BusyBox
`ip`, `nft`, the real daemons), for 14 configuration pairs A <-> B:

  after `netctl reload` from A to B, the router's state equals the state of a fresh netd
  started on B (a fresh boot with B on the data disk), and the same back from B to A.

"State" is a normalised DUMP of the kernel (links, sit parameters, addresses, routes, sysctls,
`nft list ruleset`) and of the services (netctl status names and states, the records in
/run/netd/services with their argv and a live process with that command line, every process
of the system with duplicates counted, the files under /run/netd); see dump()/normalise().

The same equality when the file is changed without a reload and netd is killed with SIGKILL
(init respawns it; it must converge on the file it reads, adopting or stopping children):
ssh on <-> off, LAN IPv4, tunnel he <-> none.

The four console scenarios are checked on the same dumps: a prefix removed with reload loses
its ::1; a changed [lan] ipv4 replaces the old address; ssh.enabled = false then kill -9 netd
leaves no sshd and `netctl status` does not list it; removing [tunnel] removes sit6in4, its
address and the IPv6 default route.

Plan (boots are the cost under TCG, so one boot per distinct configuration and no more): each
configuration C is booted once; the fresh dump is taken first; then, in the same boot, the
transitions of the pair C belongs to are walked (C -> partner -> C, each by `netctl reload`)
and, in the boots of `base` and `he`, the SIGKILL transitions. Every transition therefore starts
from a state that netd itself reached (fresh or reloaded), and a failure stays in its own boot.
The next configuration is written on the console before `poweroff`, so the data disk carries
it into the next boot. With --jobs 2 (default) two VMs boot side by side, each in its own lab.

The ISP namespace leases 203.0.113.10/24 (router 203.0.113.1, DNS .53, NTP .123, one hour) with
tests/lib/dhcpserver.py, so the WAN holds a lease and the tunnel has its local end. A third NIC
(52:54:00:12:34:03, on a QEMU hub wired to nothing) is the other LAN NIC of "LAN NIC changed".

usage: test_transitions.py OUT_DIR [--jobs N] [--only CONFIG,...] [--determinism] [--budget S]
  --jobs N        VMs side by side (default 2: one per core; each TCG guest is one thread)
  --only          boot only these configurations (development; pairs without both fresh dumps
                  are skipped instead of failed)
  --determinism   also boot `base` a second time and require the two fresh dumps to be equal
  --budget S      no boot starts after S seconds (default 600); what did not run fails
Prints PASS/FAIL lines, the table (one row per pair), timings, and ends with 'N passed, N failed'.
"""
import argparse
import difflib
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import routerlab as rl  # noqa: E402

LAN2_MAC = "52:54:00:12:34:03"
WAN_IP = "203.0.113.10"
CONF = "/data/etc/router.conf"
DAEMONS = ("udhcpc", "dnsmasq", "radvd", "ntpd", "sshd")

results = []
out_lock = threading.Lock()


def say(text):
    with out_lock:
        print(text, flush=True)


def check(name, ok, detail=""):
    results.append(bool(ok))
    say(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n{detail}" if detail and not ok else ""))
    return ok


# ---------------------------------------------------------------------------------------------
# Configurations: one base and named variants, each differing from its partner in one aspect.

def render(lan_mac=rl.LAN_MAC, ipv4="192.168.7.1/24", prefixes=("2001:db8:7::/64",),
           dhcp_range=("192.168.7.100", "192.168.7.199"),
           hosts=(("52:54:00:aa:00:01", "192.168.7.20", "printer"),),
           ssh_enabled=True, ssh_port=22, blocklist=("198.51.100.0/24",), open6=(), forward4=(), tunnel=None):
    q = lambda v: json.dumps(v)  # a TOML basic string or array of them (ASCII only)
    t = ["# transition test configuration (tests/system/test_transitions.py)", "",
         "[lan]", f"mac = {q(lan_mac)}", f"ipv4 = {q(ipv4)}", f"ipv6_prefixes = {q(list(prefixes))}",
         'domain = "home.arpa"', "",
         "[lan.dhcp]", f"range = {q(list(dhcp_range))}", "lease_time = 43200", ""]
    for mac, ip, name in hosts:
        t += ["[[lan.dhcp.host]]", f"mac = {q(mac)}", f"ip = {q(ip)}", f"name = {q(name)}", ""]
    t += ["[wan]", f"mac = {q(rl.WAN_MAC)}", "",
          "[dns]", 'upstream = ["192.0.2.53"]', "",
          "[ntp]", 'servers = ["192.0.2.123"]', "",
          "[ssh]", f"enabled = {'true' if ssh_enabled else 'false'}", f"port = {ssh_port}", "allow_wan = false", "",
          "[firewall]", f"blocklist = {q(list(blocklist))}", ""]
    for host, proto, port in open6:
        t += ["[[firewall.open6]]", f"host = {q(host)}", f"proto = {q(proto)}", f"port = {port}", ""]
    for proto, port, to, to_port in forward4:
        t += ["[[firewall.forward4]]", f"proto = {q(proto)}", f"port = {port}", f"to = {q(to)}", f"to_port = {to_port}", ""]
    if tunnel:
        t += ["[tunnel]"] + [f"{k} = {q(v) if isinstance(v, str) else v}" for k, v in tunnel.items()] + [""]
    return "\n".join(t)


TUNNEL = {"remote": "192.0.2.1", "local_ipv6": "2001:db8:ff::2/64", "remote_ipv6": "2001:db8:ff::1"}
# The endpoint update goes to a closed port in the ISP namespace: it fails at once (connection
# refused) and is retried later; nothing else depends on it.
HE = dict(mode="he", **TUNNEL, tunnel_id="424242", username="alice", update_key="s3cret-key",
          update_url="https://203.0.113.1/nic/update")
HEARTBEAT = dict(mode="heartbeat", **TUNNEL, password="hartslag", interval=60)
STATIC = dict(mode="static", **TUNNEL)

CONFIGS = {
    "base": {},
    "prefix2": dict(prefixes=("2001:db8:7::/64", "2001:db8:8::/64")),
    "lan4": dict(ipv4="192.168.8.1/24", dhcp_range=("192.168.8.100", "192.168.8.199"),
                 hosts=(("52:54:00:aa:00:01", "192.168.8.20", "printer"),)),
    "he": dict(tunnel=HE),
    "heartbeat": dict(tunnel=HEARTBEAT),
    "static": dict(tunnel=STATIC),
    "static-remote": dict(tunnel=dict(STATIC, remote="192.0.2.2")),
    "static-mtu": dict(tunnel=dict(STATIC, mtu=1400)),
    "ssh-off": dict(ssh_enabled=False),
    "ssh-port": dict(ssh_port=2222),
    "open6": dict(open6=(("2001:db8:7::10", "tcp", 443), ("2001:db8:7::11", "udp", 51820))),
    "forward4": dict(forward4=(("tcp", 8080, "192.168.7.20", 80), ("udp", 51820, "192.168.7.21", 51820))),
    "blocklist": dict(blocklist=("198.51.100.0/25", "203.0.113.128/25", "2001:db8:bad::/48")),
    "dhcp-hosts": dict(hosts=(("52:54:00:aa:00:01", "192.168.7.21", "printer"),
                              ("52:54:00:aa:00:02", "192.168.7.22", "nas"))),
    "lan-nic": dict(lan_mac=LAN2_MAC),
}

# (what the pair shows, A, B): A -> B and B -> A by netctl reload. B is walked in B's boot.
PAIRS = [
    ("prefix added / removed", "base", "prefix2"),
    ("LAN IPv4 changed", "base", "lan4"),
    ("tunnel none <-> he", "base", "he"),
    ("tunnel he <-> heartbeat", "he", "heartbeat"),
    ("tunnel heartbeat <-> static", "heartbeat", "static"),
    ("tunnel remote changed", "static", "static-remote"),
    ("tunnel MTU changed", "static", "static-mtu"),
    ("ssh on <-> off", "base", "ssh-off"),
    ("ssh port changed", "base", "ssh-port"),
    ("open6 added / removed", "base", "open6"),
    ("forward4 added / removed", "base", "forward4"),
    ("blocklist changed", "base", "blocklist"),
    ("DHCP hosts changed", "base", "dhcp-hosts"),
    ("LAN NIC changed", "base", "lan-nic"),
]
# (what the pair shows, A, B, the boot it runs in): B written without reload, kill -9 netd; back.
KILL_PAIRS = [
    ("ssh on -> off (kill -9)", "base", "ssh-off", "base"),
    ("LAN IPv4 changed (kill -9)", "base", "lan4", "base"),
    ("tunnel he -> none (kill -9)", "he", "base", "he"),
]


def boot_plan():
    """[(config booted fresh, [(kind, config), ...] walked after its fresh dump)], longest first."""
    steps = {c: [] for c in CONFIGS}
    for _, a, b in PAIRS:
        steps[b] += [("reload", a), ("reload", b)]
    for _, a, b, boot in KILL_PAIRS:
        steps[boot] += [("kill", b), ("kill", a)]
    return sorted(steps.items(), key=lambda kv: -len(kv[1]))


# ---------------------------------------------------------------------------------------------
# The dump: raw sections from the guest (one script, installed once per boot), normalised here.

DUMP_SH = r"""#!/bin/sh
# transition test: the router's state, raw; normalised by the test on the host. Shell builtins
# wherever a loop runs (a fork+exec costs some 25 ms under TCG).
echo "@@ self"; echo $$
echo "@@ link"; ip -o link
echo "@@ tunnel"; ip tunnel show
echo "@@ addr"; ip -o addr
echo "@@ route4"; ip route
echo "@@ route6"; ip -6 route
echo "@@ nft"; nft -s list ruleset 2>&1
echo "@@ sysctl"
grep -r . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/*/forwarding /proc/sys/net/ipv6/conf/*/accept_ra
echo "@@ records"
for f in /run/netd/services/*.pid; do
  [ -f "$f" ] || continue
  n=${f##*/}; n=${n%.pid}; a=""; first=1
  while IFS= read -r l || [ -n "$l" ]; do
    if [ $first = 1 ]; then p=${l%% *}; first=0; else a="$a $l"; fi
  done < "$f"
  echo "$n $p$a"
done
echo "@@ procs"
for d in /proc/[0-9]*; do
  read -r pid comm st ppid rest 2>/dev/null < $d/stat || continue
  [ "$pid" = 2 ] || [ "$ppid" = 2 ] || echo "$pid $ppid"
done
echo "@@ cmdlines"
head -c 2000 /proc/[0-9]*/cmdline 2>/dev/null | tr '\000' ' '
echo
echo "@@ runfiles"
stat -c '%A %U %n' $(find /run/netd | sort)
for f in $(find /run/netd -type f ! -path '/run/netd/services/*' | sort); do
  echo "@@ file $f"; cat "$f"; echo
done | tr '\000' '|'
echo "@@ status"; netctl status --json 2>&1
echo "@@ end"
"""

# Files whose content is volatile (a pid): only their presence counts.
VOLATILE_FILES = {"/run/netd/radvd.pid"}
# Short-lived helpers that come and go with timers and events, not with the configuration:
# netd's endpoint-update helper, the udhcpc and ntpd hook scripts, netctl run by them.
def transient(cmd):
    argv = cmd.split()
    if not argv:
        return True
    base = os.path.basename(argv[0])
    if base == "netd" and "--he-update" in argv[1:]:
        return True
    if base in ("sh", "ash") and len(argv) > 1 and argv[1].endswith("-hook"):
        return True
    return base == "netctl" or base.endswith("-hook")


def sections(raw):
    out, name = {}, None
    for line in raw.splitlines():
        if line.startswith("netd: "):          # netd's console line (ready) may interleave
            continue
        if line.startswith("@@ "):
            name = line[3:].strip()
            out.setdefault(name, [])
            continue
        if name is not None:
            out[name].append(line)
    return out


def daemon_name(cmd):
    """udhcpc for '/bin/busybox udhcpc ...', sshd for 'sshd: /usr/sbin/sshd ...' (retitled)."""
    argv = cmd.split()
    base = os.path.basename(argv[0]).rstrip(":") if argv else ""
    if base == "busybox" and len(argv) > 1:
        base = argv[1]
    return base


def normalise(raw):
    """The comparable text of a raw dump, and a list of sanity problems (dead records, ...)."""
    s = sections(raw)
    out, problems = [], []
    if "end" not in s:
        problems.append("dump incomplete (no end marker)")
    ws = lambda l: " ".join(l.split())

    # Links: name, UP (administrative), mtu, link type and addresses. No index, qdisc, state.
    links = []
    for l in s.get("link", []):
        l = l.split("\\")
        m = re.match(r"\s*\d+:\s+(\S+):\s+<([^>]*)>\s+mtu\s+(\d+)", l[0])
        if not m:
            continue
        flags = m.group(2).split(",")
        hw = ws(l[1]) if len(l) > 1 else ""
        links.append(f"link {m.group(1)} {'UP' if 'UP' in flags else 'down'} mtu {m.group(3)} {hw}".rstrip())
    out += sorted(links)
    out += sorted("tunnel " + ws(l) for l in s.get("tunnel", []) if l.strip())

    # Addresses: lifetimes and the dynamic/tentative flags (timing) dropped; link-local kept
    # (derived from the MAC or the sit local address: deterministic).
    addrs = []
    for l in s.get("addr", []):
        l = l.split("\\")[0]
        t = l.split()
        if len(t) < 4:
            continue
        rest = [w for w in t[2:] if w not in ("dynamic", "tentative")]
        addrs.append(f"addr {t[1]} " + " ".join(rest))
    out += sorted(addrs)

    for fam in ("route4", "route6"):
        rs = []
        for l in s.get(fam, []):
            l = re.sub(r"\s+expires \S+", "", l)
            if l.strip():
                rs.append(f"{fam} " + ws(l))
        out += sorted(rs)

    # The policy, not its state: `nft -s` leaves the counters out; the per-source limits' set
    # entries (whoever sent packets lately) go here.
    nft = re.sub(r"\n\s*elements = \{[^}]*limit rate[^}]*\}", "", "\n".join(s.get("nft", [])))
    out += ["nft " + l.rstrip() for l in nft.split("\n") if l.strip()]
    sysctls = []
    for l in s.get("sysctl", []):
        m = re.match(r"/proc/sys/(\S+):(.*)$", l)
        if m:
            sysctls.append(f"sysctl {m.group(1).replace('/', '.')} {m.group(2).strip()}")
    out += sorted(sysctls)

    # Processes: (pid, ppid) of every user-space process, and every command line.
    ppid = {}
    for l in s.get("procs", []):
        t = l.split()
        if len(t) == 2 and t[0].isdigit() and t[1].isdigit():
            ppid[int(t[0])] = int(t[1])
    cmdline = {}
    parts = re.split(r"^==> /proc/(\d+)/cmdline <==$", "\n".join(s.get("cmdlines", [])), flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        cmdline[int(parts[i])] = ws(parts[i + 1])
    me = int(s["self"][0]) if s.get("self") and s["self"][0].strip().isdigit() else None

    def mine(pid):
        for _ in range(64):
            if pid == me:
                return True
            if pid not in ppid:
                return False
            pid = ppid[pid]
        return False

    # Service records: argv, and a live process with that command line (sshd retitles itself
    # "sshd: ARGV [listener] ...").
    for l in sorted(s.get("records", [])):
        t = l.split(None, 2)
        if len(t) < 2:
            continue
        name, pid, argv = t[0], t[1], ws(t[2]) if len(t) > 2 else ""
        cmd = cmdline.get(int(pid)) if pid.isdigit() and int(pid) in ppid else None
        first = os.path.basename(argv.split()[0]) if argv else ""
        if cmd is None:
            state = "NO SUCH PROCESS"
        elif cmd == argv or cmd.startswith(f"{first}: {argv}"):
            state = "alive, command line as recorded"
        else:
            state = f"ALIVE WITH ANOTHER COMMAND LINE: {cmd}"
        if state != "alive, command line as recorded":
            problems.append(f"service record {name}: {state}")
        out.append(f"record {name} argv: {argv}")
        out.append(f"record {name} process: {state}")

    # Every process but the dump's own, by command line, with duplicates counted; and the
    # daemons, counted as processes whose parent is not the same daemon (radvd's privilege-
    # separation child and sshd's per-connection children are not duplicates).
    counts, dc = {}, {d: 0 for d in DAEMONS}
    for pid in ppid:
        cmd = cmdline.get(pid, "")
        if not cmd or mine(pid) or transient(cmd):
            continue
        counts[cmd] = counts.get(cmd, 0) + 1
        d = daemon_name(cmd)
        if d in dc and daemon_name(cmdline.get(ppid[pid], "")) != d:
            dc[d] += 1
    out += sorted(f"process {cmd}" + (f" (x{n})" if n > 1 else "") for cmd, n in counts.items())
    out.append("daemons " + " ".join(f"{d}={n}" for d, n in dc.items()))
    for d, n in dc.items():
        if n > 1:
            problems.append(f"{n} {d} processes")

    # /run/netd: every entry with type, mode and owner; every file's content but the pid files.
    out += ["runfile " + ws(l) for l in s.get("runfiles", []) if l.strip() and not l.rstrip().endswith(".tmp")]
    for name in sorted(k for k in s if k.startswith("file ")):
        path = name[5:]
        if path in VOLATILE_FILES or path.endswith(".tmp"):
            continue
        body = s[name]
        while body and not body[-1].strip():
            body = body[:-1]
        out += [f"{name}: {l.rstrip()}" for l in body]

    # netctl status: service names and states, configuration ok, forwarding, firewall loaded.
    text = "\n".join(s.get("status", []))
    try:
        st = json.loads(text)
        cfg = st.get("config", {})
        out.append(f"status config ok={cfg.get('ok')} forwarding={st.get('forwarding')} "
                   f"firewall.loaded={st.get('firewall', {}).get('loaded')}")
        for sv in sorted(st.get("services", []), key=lambda x: x.get("name", "")):
            out.append(f"status service {sv.get('name')} {sv.get('state')}")
    except (ValueError, AttributeError) as e:
        out.append(f"status UNREADABLE: {e}")
        problems.append(f"netctl status --json: {e}: {text[:200]}")
    return "\n".join(out) + "\n", problems


# ---------------------------------------------------------------------------------------------
# Guest helpers.

def guest_write(vm, path, text):
    """Write text to a guest file over the console: printf lines short enough for the shell's
    1024-byte line limit, then the MD5 compared with ours."""
    if not all(c == "\n" or 32 <= ord(c) < 127 for c in text):
        raise ValueError("guest_write: printable ASCII only")
    toks = [{"\\": "\\\\", "%": "%%", "'": "\\047", "\n": "\\n"}.get(c, c) for c in text]
    lines, cur = [], ""
    for t in toks:
        if len(cur) + len(t) > 600:
            lines.append(cur)
            cur = ""
        cur += t
    lines.append(cur)
    cmd = "\n".join(f"printf '{chunk}' {'>' if i == 0 else '>>'} {path}" for i, chunk in enumerate(lines))
    vm.run(cmd, timeout=60)
    rc, out = vm.run(f"md5sum {path}", timeout=30)
    want = hashlib.md5(text.encode()).hexdigest()
    if rc != 0 or not out.split() or out.split()[0] != want:
        raise rl.BootError(f"writing {path} on the console failed: md5 {out.strip()} != {want}")


MAIN_NETD = "for p in $(pidof netd); do read -r x y z pp r < /proc/$p/stat; [ \"$pp\" = 1 ] && echo $p; done"


def status_ready(vm):
    """netctl status answers, every service running, the WAN lease held, no tentative address."""
    rc, out = vm.run("netctl status --json 2>&1; echo \"@@lease $(ip -o -4 addr | grep -c ' inet "
                     + WAN_IP + "/')\"; echo \"@@tentative $(ip -o addr | grep -c tentative)\"", timeout=30)
    m1 = re.search(r"@@lease (\d+)", out)
    m2 = re.search(r"@@tentative (\d+)", out)
    try:
        st = json.loads(out[:out.index("@@lease")])
        svcs = st.get("services", [])
        running = bool(svcs) and all(s.get("state") == "running" for s in svcs)
    except (ValueError, AttributeError):
        running = False
    return running and m1 and m1.group(1) != "0" and m2 and m2.group(1) == "0"


def dump(vm):
    rc, raw = vm.run("sh /tmp/dump.sh", timeout=90)
    return raw


def settle_and_dump(vm, timeout=30):
    """Wait until netd's state is settled, then dump until two dumps 1 s apart agree."""
    t0 = time.monotonic()
    while not status_ready(vm):
        if time.monotonic() - t0 > timeout:
            break
        time.sleep(0.5)
    ready = time.monotonic() - t0
    prev = None
    for _ in range(6):
        raw = dump(vm)
        norm, problems = normalise(raw)
        if norm == prev:
            break
        prev = norm
        time.sleep(1)
    stable = norm == prev
    return {"raw": raw, "norm": norm, "problems": problems, "settle_s": ready,
            "stable": stable, "dump_s": time.monotonic() - t0 - ready}


# ---------------------------------------------------------------------------------------------
# Labs and boots.

class Lab3(rl.Lab):
    """routerlab's lab, plus a third NIC on a QEMU hub wired to nothing (the other LAN NIC)."""

    def netdevs(self):
        return super().netdevs() + ["-netdev", "hubport,id=lan2,hubid=3",
                                    "-device", f"virtio-net-pci,netdev=lan2,mac={LAN2_MAC}"]


def start_dhcp(lab, work):
    cfg = {"ifname": "eth0", "server_ip": "203.0.113.1", "offer_ip": WAN_IP, "nak_others": False,
           "options": {"1": "ffffff00", "3": "cb007101", "6": "cb007135", "42": "cb00717b", "51": "00000e10"}}
    path = os.path.join(work, f"dhcp-{lab.name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable,
                             os.path.join(HERE, "..", "lib", "dhcpserver.py"), path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Worker:
    def __init__(self, wid, ctx):
        self.wid, self.ctx = wid, ctx
        self.tag = f"[vm{wid}]"
        self.lab = Lab3(f"tr{os.getpid() % 10000}{wid}")
        self.dhcp = None
        self.vm = None
        self.disk = os.path.join(ctx.work, f"data{wid}.img")
        self.boots = 0

    def log(self, text):
        say(f"{self.tag} {text}")

    def make_disk(self, config):
        c = self.ctx
        rl.sh(os.path.join(TOP, "image", "mkdata"), "--config", c.conf_path[config], "--authorized-keys",
              os.path.join(c.out, "admin_key.pub"), "--netd", c.netd, "-o", self.disk)

    def boot(self, config):
        """A fresh boot with `config` in /data/etc/router.conf; returns its fresh dump."""
        c = self.ctx
        t0 = time.monotonic()
        if self.vm and self.vm.alive():
            guest_write(self.vm, CONF, c.conf_text[config])
            self.shutdown()
            c.timing("next config + poweroff", time.monotonic() - t0)
        else:
            self.kill_vm()
            self.make_disk(config)
            c.timing("mkdata (first boot)", time.monotonic() - t0)
        t1 = time.monotonic()
        self.boots += 1
        log = os.path.join(c.work, f"console-{self.wid}-{self.boots:02d}-{config}.log")
        self.vm = rl.RouterVM(c.out, self.disk, lab=self.lab, log_path=log)
        self.vm.start()
        self.vm.expect(r"netd: (router ready|NOT READY)", 240)
        self.vm.login()
        t2 = time.monotonic()
        guest_write(self.vm, "/tmp/dump.sh", DUMP_SH)
        d = settle_and_dump(self.vm)
        c.timing("boot: QEMU start to login", t2 - t1)
        c.timing("fresh: settle + dump", time.monotonic() - t2)
        self.log(f"fresh {config}: boot {t2 - t1:.1f} s, settle {d['settle_s']:.1f} s, dump {d['dump_s']:.1f} s"
                 + ("" if d["stable"] else " (NOT STABLE)"))
        return d

    def reload(self, config):
        c = self.ctx
        t0 = time.monotonic()
        guest_write(self.vm, CONF, c.conf_text[config])
        rc, out = self.vm.run("a=$(cut -d' ' -f1 /proc/uptime); netctl reload >/tmp/reload.out 2>&1; rc=$?; "
                              "b=$(cut -d' ' -f1 /proc/uptime); cat /tmp/reload.out; echo \"@@reload $rc $a $b\"",
                              timeout=120)
        m = re.search(r"@@reload (\d+) ([\d.]+) ([\d.]+)", out)
        reply = out[:m.start()].strip() if m else out.strip()
        d = settle_and_dump(self.vm)
        d["rc"] = int(m.group(1)) if m else -1
        d["ms"] = round((float(m.group(3)) - float(m.group(2))) * 1000) if m else None
        d["reply"] = reply
        ops = re.search(r"applied: (\d+) operations? \((\d+) kernel, (\d+) services?\) in ([\d.]+) ms", reply)
        d["ops"] = ops.groups() if ops else None
        c.timing("reload: settle, dump", time.monotonic() - t0)
        self.log(f"reload -> {config}: rc {d['rc']}, {d['ms']} ms: {reply.splitlines()[-1] if reply else ''}"
                 + ("" if d["stable"] else " (NOT STABLE)"))
        return d

    def kill(self, config):
        c = self.ctx
        t0 = time.monotonic()
        rc, old = self.vm.run(MAIN_NETD)
        if not old.split() or not old.split()[0].isdigit():
            raise rl.BootError(f"no netd runs (child of init) to kill: {old.strip()!r}")
        old = old.split()[0]
        guest_write(self.vm, CONF, c.conf_text[config])
        rc, out = self.vm.run(
            f"kill -9 {old}; a=$(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt 600 ]; do "
            f"n=$({MAIN_NETD}); [ -n \"$n\" ] && [ \"$n\" != {old} ] && netctl status >/dev/null 2>&1 && break; "
            f"usleep 100000; i=$((i+1)); done; b=$(cut -d' ' -f1 /proc/uptime); echo \"@@respawn $n $a $b\"",
            timeout=120)
        m = re.search(r"@@respawn (\d*) ([\d.]+) ([\d.]+)", out)
        d = settle_and_dump(self.vm)
        d["rc"] = 0 if m and m.group(1) and m.group(1) != old else -1
        d["ms"] = round((float(m.group(3)) - float(m.group(2))) * 1000) if m else None
        d["reply"] = f"netd pid {old} -> {m.group(1) if m else '?'}"
        d["ops"] = None
        c.timing("kill -9: respawn, settle, dump", time.monotonic() - t0)
        self.log(f"kill -9 netd with {config} on disk: {d['reply']}, answering after {d['ms']} ms"
                 + ("" if d["stable"] else " (NOT STABLE)"))
        return d

    def shutdown(self):
        try:
            self.vm.poweroff(timeout=90)
        finally:
            self.kill_vm()

    def kill_vm(self):
        if self.vm:
            self.vm.kill()

    def run(self, jobs):
        c = self.ctx
        try:
            try:
                self.lab.create()
                rl.sh("ip", "addr", "add", "203.0.113.1/24", "dev", "eth0", ns=self.lab.isp)
                self.dhcp = start_dhcp(self.lab, c.work)
            except Exception as e:  # noqa: BLE001
                c.broken.append((f"lab of vm{self.wid}", f"{type(e).__name__}: {e}", ""))
                return
            while True:
                try:
                    config, steps, label = jobs.get_nowait()
                except queue.Empty:
                    break
                if time.monotonic() > c.deadline:
                    self.log(f"time budget spent: boot of {config} not run")
                    c.broken.append((label, "not run: the time budget (--budget) was spent", ""))
                    continue
                cur = config
                try:
                    d = self.boot(config)
                    c.record(label, "fresh", None, config, d)
                    for kind, target in steps:
                        d = self.reload(target) if kind == "reload" else self.kill(target)
                        c.record(label, kind, cur, target, d)
                        cur = target
                    c.tails[label] = self.vm.run("logread | tail -n 25", timeout=30)[1]
                except Exception as e:  # noqa: BLE001 - whatever broke, the other boots go on
                    self.log(f"boot of {config} broke off: {type(e).__name__}: {e}")
                    c.broken.append((label, str(e), self.vm.console_tail(40) if self.vm else ""))
                    self.kill_vm()
                    self.vm = None
            if self.vm and self.vm.alive():
                self.shutdown()
        finally:
            self.kill_vm()
            if self.dhcp:
                self.dhcp.kill()
            self.lab.destroy()


class Context:
    def __init__(self, out, work, netd):
        self.out, self.work, self.netd = out, work, netd
        self.conf_text = {n: render(**kw) for n, kw in CONFIGS.items()}
        self.conf_path = {}
        self.records = []          # (boot label, kind, from, to, dump)
        self.fresh = {}
        self.tails = {}
        self.deadline = None
        self.broken = []
        self.times = {}
        self.lock = threading.Lock()

    def record(self, label, kind, frm, to, d):
        with self.lock:
            self.records.append((label, kind, frm, to, d))
            if kind == "fresh" and to not in self.fresh:
                self.fresh[to] = d
            safe = f"{len(self.records):02d}-{label}-{kind}-{frm or ''}-{to}"
            with open(os.path.join(self.work, "dumps", safe + ".txt"), "w") as f:
                f.write(d["norm"])
            with open(os.path.join(self.work, "dumps", safe + ".raw"), "w") as f:
                f.write(d["raw"])

    def timing(self, what, s):
        with self.lock:
            n, t = self.times.get(what, (0, 0.0))
            self.times[what] = (n + 1, t + s)


# ---------------------------------------------------------------------------------------------

def diff(a, b, name_a, name_b, limit=60):
    d = list(difflib.unified_diff(a.splitlines(), b.splitlines(), name_a, name_b, lineterm="", n=1))
    if len(d) > limit:
        d = d[:limit] + [f"... ({len(d) - limit} more diff lines)"]
    return "\n".join("      " + l for l in d)


def has(norm, pattern):
    return re.search(pattern, norm, re.M) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--determinism", action="store_true")
    ap.add_argument("--budget", type=float, default=600,
                    help="seconds after which no further boot is started (the rest fails as not run)")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    netd = os.path.join(out, "rootfs.stage", "usr", "sbin", "netd")
    if not os.access(netd, os.X_OK):
        netd = os.path.join(TOP, "build", "daemons", "netd", "netd")
    work = tempfile.mkdtemp(prefix="transitions.")
    os.makedirs(os.path.join(work, "dumps"))
    ctx = Context(out, work, netd)
    t_start = time.monotonic()
    ctx.deadline = t_start + args.budget
    missing = [f for f in ("bzImage", "rootfs.squashfs", "data.img", "admin_key.pub") if not os.path.exists(os.path.join(out, f))]
    if not check(f"the image is built in {out}", not missing and os.access(netd, os.X_OK),
                 f"      missing: {' '.join(missing) or netd}"):
        shutil.rmtree(work, ignore_errors=True)
        print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
        return 1

    # Every configuration is checked by the host-built netd first: a typo fails here, file:line:col.
    bad = []
    for name, text in ctx.conf_text.items():
        path = os.path.join(work, f"{name}.conf")
        with open(path, "w") as f:
            f.write(text)
        ctx.conf_path[name] = path
        r = subprocess.run([netd, "--check", path], capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(f"{name}: {r.stdout}{r.stderr}")
    if not check(f"all {len(CONFIGS)} configurations pass netd --check", not bad, "\n".join(bad)):
        shutil.rmtree(work, ignore_errors=True)
        print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
        return 1

    plan = boot_plan()
    if args.only:
        keep = set(args.only.split(","))
        plan = [(c, [s for s in steps if s[1] in keep]) for c, steps in plan if c in keep]
    if args.determinism:
        plan.append(("base", []))
    jobs = queue.Queue()
    labels = set()
    for config, steps in plan:
        label = config if config not in labels else config + "#2"
        labels.add(label)
        jobs.put((config, steps, label))
    n_workers = max(1, min(args.jobs, len(plan)))
    say(f"plan: {len(plan)} boots ({sum(len(s) for _, s in plan)} transitions) on {n_workers} VM(s) at a time; "
        f"work dir {work}")
    workers = [Worker(i, ctx) for i in range(n_workers)]
    threads = [threading.Thread(target=w.run, args=(jobs,), daemon=True) for w in workers]
    for t in threads:
        t.start()
        time.sleep(2)  # the mkdata runs and first boots do not start in the same instant
    for t in threads:
        t.join()
    t_boots = time.monotonic() - t_start

    # ---- checks ----
    fresh = ctx.fresh
    for label, err, tail in ctx.broken:
        check(f"boot '{label}' ran to the end", False, f"      {err}\n---- console (last lines) ----\n{tail}")
    failed_boots = set()

    def find(kind, frm, to):
        for label, k, f, t, d in ctx.records:
            if k == kind and f == frm and t == to:
                return label, d
        return None, None

    def compare(kind, a, b, what):
        """Check that the transition a -> b (reload or kill) reached the fresh state of b."""
        label, d = find(kind, a, b)
        verb = "netctl reload" if kind == "reload" else "kill -9 netd"
        if d is None or b not in fresh:
            if args.only:      # development: what was left out is not a failure
                return None
            check(f"{what}: {a} -> {b} by {verb} == fresh {b}", False,
                  f"      not run: {'no dump of the transition' if d is None else 'no fresh dump of ' + b}")
            return False, {}
        ok = d["rc"] == 0 and d["norm"] == fresh[b]["norm"]
        detail = ""
        if d["rc"] != 0:
            detail += f"      {verb} failed: {d['reply']}\n"
        if d["norm"] != fresh[b]["norm"]:
            detail += diff(fresh[b]["norm"], d["norm"], f"fresh {b}", f"{a} -> {b} ({verb})")
        if not ok:
            failed_boots.add(label)
        check(f"{what}: {a} -> {b} by {verb} == fresh {b}", ok, detail)
        return ok, d

    rows, krows = [], []
    for what, a, b in PAIRS:
        ab = compare("reload", a, b, what)
        ba = compare("reload", b, a, what)
        rows.append((what, a, b, ab, ba))
    for what, a, b, _ in KILL_PAIRS:
        ab = compare("kill", a, b, what)
        ba = compare("kill", b, a, what)
        krows.append((what, a, b, ab, ba))

    # Sanity of every dump (fresh ones included): live records, no duplicate daemons, stable.
    insane = []
    for label, kind, frm, to, d in ctx.records:
        where = f"{label}: {kind} {frm + ' -> ' if frm else ''}{to}"
        if d["problems"]:
            insane.append(f"      {where}: " + "; ".join(d["problems"]))
        if not d["stable"]:
            insane.append(f"      {where}: the state did not settle (two dumps 1 s apart differ)")
    check("every dump: service records alive with their command lines, no duplicate daemons, state settled",
          not insane, "\n".join(insane))

    # The four console scenarios, on the same dumps.
    def scenario(name, kind, a, b, preds):
        label, d = find(kind, a, b)
        if d is None:
            if not args.only:
                check(name, False, "      not run")
            return
        bad = [why for why, ok in preds(d["norm"]) if not ok]
        check(name, d["rc"] == 0 and not bad, "      " + "; ".join(bad or [d["reply"]]))

    scenario("console 1: a prefix removed from [lan] ipv6_prefixes + netctl reload removes its ::1 from the LAN",
             "reload", "prefix2", "base", lambda n: [
                 ("2001:db8:8::1 still on a link", not has(n, r"^addr \S+ inet6 2001:db8:8::1/")),
                 ("2001:db8:7::1 missing", has(n, r"^addr \S+ inet6 2001:db8:7::1/64"))])
    for a, b, old, new in (("lan4", "base", "192.168.8.1", "192.168.7.1"), ("base", "lan4", "192.168.7.1", "192.168.8.1")):
        scenario(f"console 2: [lan] ipv4 {old} -> {new} + netctl reload replaces the old address", "reload", a, b,
                 lambda n, old=old, new=new: [
                     (f"{old} still on a link", not has(n, rf"^addr \S+ inet {re.escape(old)}/")),
                     (f"{new} missing", has(n, rf"^addr \S+ inet {re.escape(new)}/24"))])
    scenario("console 3: ssh.enabled = false + kill -9 netd: no sshd running, netctl status does not list sshd",
             "kill", "base", "ssh-off", lambda n: [
                 ("an sshd is running", has(n, r"^daemons .*sshd=0")),
                 ("netctl status lists sshd", not has(n, r"^status service sshd "))])
    for kind in ("reload", "kill"):
        scenario(f"console 4: [tunnel] removed ({'netctl reload' if kind == 'reload' else 'kill -9 netd'}): "
                 "sit6in4, its address and the IPv6 default route are gone", kind, "he", "base", lambda n: [
                     ("sit6in4 still exists", not has(n, r"^link sit6in4")),
                     ("2001:db8:ff::2 still on a link", not has(n, r"^addr \S+ inet6 2001:db8:ff::2/")),
                     ("IPv6 default route still there", not has(n, r"^route6 default "))])

    if args.determinism and "base#2" in {r[0] for r in ctx.records}:
        d2 = next(d for label, k, f, t, d in ctx.records if label == "base#2" and k == "fresh")
        check("determinism: base booted twice dumps identically", d2["norm"] == fresh["base"]["norm"],
              diff(fresh["base"]["norm"], d2["norm"], "fresh base (1)", "fresh base (2)"))

    # ---- the table ----
    def cell(r):
        return "-" if r is None else ("PASS" if r[0] else ("FAIL" if r[1] else "NOT RUN"))

    def ms(r):
        if r is None or r[1].get("ms") is None:
            return "-"
        t = f"{r[1]['ms']}"
        if r[1].get("ops"):
            t += f" ({r[1]['ops'][0]} ops)"
        return t

    def table(title, col, rows_):
        w = max(len(f"{w_} ({a} <-> {b})") for w_, a, b, _, _ in rows_)
        h = f"{'pair':<{w}} | A->B {col} == fresh B | B->A {col} == fresh A | {'ms A->B / B->A'}"
        print(f"\n{title}\n{h}\n{'-' * len(h)}")
        for what, a, b, ab, ba in rows_:
            print(f"{what + ' (' + a + ' <-> ' + b + ')':<{w}} | {cell(ab):<{len(col) + 17}} | "
                  f"{cell(ba):<{len(col) + 17}} | {ms(ab)} / {ms(ba)}")

    table("netctl reload from A to B and back, against a fresh netd booted on the target", "reload", rows)
    table("config file changed without reload, netd killed with SIGKILL (init respawns it); ms = kill -> netctl "
          "answers", "kill -9", krows)

    for label in sorted(failed_boots):
        if label in ctx.tails:
            print(f"\n---- boot of {label}: on the console before poweroff: logread | tail -n 25 ----\n"
                  f"{ctx.tails[label].rstrip()}")

    total = time.monotonic() - t_start
    print(f"\ntimings (wall clock, {n_workers} VM(s) side by side): total {total:.0f} s, boots and transitions "
          f"{t_boots:.0f} s")
    for what, (n, t) in sorted(ctx.times.items()):
        print(f"  {what:<30} {n:3d} x, mean {t / n:5.1f} s, sum {t:6.1f} s")
    if all(results):
        shutil.rmtree(work, ignore_errors=True)
    else:
        for f in os.listdir(work):
            if f.endswith(".img"):
                os.unlink(os.path.join(work, f))
        print(f"dumps (raw and normalised) and console logs kept in {work}")
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
