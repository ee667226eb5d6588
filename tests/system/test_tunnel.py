#!/usr/bin/env python3
"""The 6in4 tunnel end to end (issue 5), in the booted image (our kernel's sit device), for
both `he` and `heartbeat` modes:

  ISP namespace: DHCP server (tests/lib/dhcpserver.py), DNS (dnsmasq, tb.example.test), and the
  broker (tests/lib/broker.py: userspace protocol-41 endpoint, HTTPS endpoint update, heartbeat
  receiver, NTP) with the IPv6 "internet" host 2001:db8:99::10 behind it.
  LAN namespace: a client that autoconfigures by SLAAC from the router's RAs.

1. the LAN client pings the internet host and opens a TCP connection to it through the tunnel;
   the broker checked the update (auth, hostname, myip) or heartbeat (MD5, time);
2. the ISP moves the router to another WAN address: the broker sees the update or heartbeat from
   the new address, retargets, and LAN traffic resumes; figures: lease -> update/heartbeat
   leaving the router, and lease -> LAN traffic flowing again; tunnel throughput vs IPv4 (NAT,
   no encapsulation) over the same path;
3. faults (he): badauth, garbage reply, unreachable broker, DNS failure for the update host, TLS
   certificate for another name; (heartbeat): wrong password. Each gives a clear status and log
   line, bounded retries, netd stays up, and the LAN keeps its IPv4 service.

Mode `tic` (issue 15): the heartbeat tunnel from SixXS TIC alone (tests/lib/ticserver.py): [tunnel]
names only the TIC server, user, password and tunnel id; the LAN's IPv6 flows through the tunnel
TIC described; a TIC server whose clock is 300 s off is refused without a login; reloads that
change the tic settings log in again until netd itself refuses the sixth attempt in the hour
(the server sees at most 5 logins) and runs on the cached parameters, also after a netd restart
and a reboot.

usage: test_tunnel.py OUT_DIR [MODE...]   (modes: he heartbeat he-nat heartbeat-nat he-static tic)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import routerlab as rl  # noqa: E402

INET6 = "2001:db8:99::10"
# Not a documentation address: dnsmasq's rebind protection (stop-dns-rebind) drops answers
# pointing into the TEST-NETs, so the update host must resolve to an ordinary one.
BROKER = "198.18.0.1"
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n      {str(detail)[:1500]}" if detail and not ok else ""),
          flush=True)
    return ok


def sh(*cmd, ns=None, check=True, timeout=60, input=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    return r


def wait(what, fn, timeout, interval=0.3):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return None


def make_certs(d):
    """A test CA, a certificate for tb.example.test and one for another name."""
    def o(*a):
        sh("openssl", *a)
    o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=v6router test CA", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
    for name in ("tb.example.test", "wrong.example.test"):
        o("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={name}",
          "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr")
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(f"subjectAltName=DNS:{name}\n")
        o("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
          "-CAcreateserial", "-days", "2", "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem")


class BrokerProc:
    def __init__(self, ns, cfg_path, script="broker.py"):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, os.path.join(HERE, "..", "lib", script),
                                   cfg_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        self.events = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"kind": "output", "line": line.rstrip()}
            with self.cv:
                self.events.append(ev)
                self.cv.notify_all()

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def wait_event(self, pred, timeout, start=0):
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

    def stop(self):
        try:
            self.send("quit")
        except OSError:
            pass
        self.p.kill()


def setup_isp(lab, work, certs, mode):
    isp = lab.isp
    for c in [("addr", "add", "203.0.113.1/24", "dev", "eth0"), ("addr", "add", "203.0.113.53/24", "dev", "eth0"),
              ("addr", "add", "203.0.113.123/24", "dev", "eth0"), ("addr", "add", f"{BROKER}/32", "dev", "lo"),
              ("addr", "add", f"{INET6}/128", "dev", "lo")]:
        sh("ip", *c, ns=isp)
    procs = []
    dns = subprocess.Popen(["ip", "netns", "exec", isp, "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv",
                            "--no-hosts", "--bind-interfaces", "--listen-address=203.0.113.53",
                            "--address=/tb.example.test/198.18.0.1", "--address=/tic.example.test/198.18.0.1",
                            "--pid-file="],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(dns)
    cfg = {"tun": "tun6", "broker_ip": BROKER, "ntp_ip": "203.0.113.123", "router_v6": "2001:db8:1::2",
           "password": "hartslag", "he_user": "alice", "he_key": "s3cret-key", "tunnel_id": "424242",
           "cert": f"{certs}/tb.example.test.pem", "key": f"{certs}/tb.example.test.key",
           "wrong_cert": f"{certs}/wrong.example.test.pem", "wrong_key": f"{certs}/wrong.example.test.key"}
    with open(f"{work}/broker.json", "w") as f:
        json.dump(cfg, f)
    broker = BrokerProc(isp, f"{work}/broker.json")
    if not broker.wait_event(lambda e: e["kind"] == "tunnel-ready", 10):
        raise RuntimeError(f"broker did not start: {broker.events}")
    for c in [("link", "set", "tun6", "up"), ("-6", "addr", "add", "2001:db8:1::1/64", "dev", "tun6"),
              ("-6", "route", "add", "2001:db8:7::/64", "dev", "tun6")]:
        sh("ip", *c, ns=isp)
    return broker, dns, procs


def start_dhcp(lab, work, offer, nak_others=False, old=None):
    if old:
        old.kill()
        old.wait()
    cfg = {"ifname": "eth0", "server_ip": "203.0.113.1", "offer_ip": offer, "nak_others": nak_others,
           "options": {"1": "ffffff00", "3": "cb007101", "6": "cb007135", "42": "cb00717b", "51": "00000e10"}}
    path = f"{work}/dhcp-{offer}.json"
    with open(path, "w") as f:
        json.dump(cfg, f)
    return subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, os.path.join(HERE, "..", "lib",
                             "dhcpserver.py"), path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


CONFIG = """
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]
domain = "home.arpa"

[wan]
mac = "52:54:00:12:34:01"

[ntp]
servers = ["203.0.113.123"]

[tunnel]
remote = "198.18.0.1"
local_ipv6 = "2001:db8:1::2/64"
mtu = 1480
"""
MODES = {
    "he": 'mode = "he"\ntunnel_id = "424242"\nusername = "alice"\nupdate_key = "s3cret-key"\n'
          'update_url = "https://tb.example.test/nic/update"\nca_file = "/data/etc/broker-ca.pem"\n',
    "heartbeat": 'mode = "heartbeat"\npassword = "hartslag"\ninterval = 15\n',
}


def lan_ping6(lab, count=1, wait_s=2):
    r = sh("ping", "-6", "-c", str(count), "-W", str(wait_s), INET6, ns=lab.lan, check=False, timeout=30)
    return r.returncode == 0


def tcp6(lab):
    code = ("import socket;s=socket.create_connection(('%s',5001),timeout=5);print(s.recv(100).decode())" % INET6)
    r = sh(sys.executable, "-c", code, ns=lab.lan, check=False, timeout=30)
    return r.returncode == 0 and "hello" in r.stdout, r.stdout + r.stderr


def throughput(lab, host, port, seconds=4):
    """MB/s of a TCP bulk transfer from the LAN client to a sink in the ISP namespace."""
    code = ("import socket,time,sys\n"
            f"s=socket.create_connection(('{host}',{port}),timeout=10);b=b'x'*65536;n=0;t=time.time()\n"
            f"while time.time()-t<{seconds}:\n s.sendall(b);n+=len(b)\n"
            "s.shutdown(1);s.recv(10);print(n/(time.time()-t)/1e6)")
    r = sh(sys.executable, "-c", code, ns=lab.lan, check=False, timeout=seconds + 30)
    try:
        return float(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


SERVERS = r"""
import socket, threading, sys
def hello(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5001)); s.listen(8)
    while True:
        c, p = s.accept(); c.sendall(("hello %s\n" % p[0]).encode()); c.close()
def sink(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 5002)); s.listen(8)
    while True:
        c, p = s.accept()
        while c.recv(1 << 16): pass
        c.sendall(b"done"); c.close()
for f, a in ((socket.AF_INET6, sys.argv[1]), (socket.AF_INET, sys.argv[2])):
    threading.Thread(target=hello, args=(f, a), daemon=True).start()
    threading.Thread(target=sink, args=(f, a), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def start_servers(lab, procs):
    """The internet host's TCP and UDP servers in the ISP namespace."""
    srv = subprocess.Popen(["ip", "netns", "exec", lab.isp, sys.executable, "-c", SERVERS, INET6, "203.0.113.1"],
                           stdout=subprocess.PIPE, text=True)
    procs.append(srv)
    srv.stdout.readline()


def scrape(vm, what):
    """`netctl metrics` in the guest, checked by Prometheus's own parser (promtool, on the host);
    returns series -> value."""
    rc, text = vm.run("netctl metrics")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True, capture_output=True, timeout=30)
    check(f"{what}: netctl metrics is valid Prometheus text (promtool check metrics: no error, no lint problem)",
          rc == 0 and r.returncode == 0 and "# TYPE netd_" in text, (r.stdout + r.stderr) + text[:800])
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, v = line.rpartition(" ")
            try:
                values[series] = float(v)
            except ValueError:
                pass
    return values


def boot_router(lab, out, work, certs, name, config_text):
    """A data disk with config_text (and the broker's CA), the LAN client's IPv4, and the
    router booted on them, logged in on its console."""
    conf = f"{work}/router-{name}.conf"
    with open(conf, "w") as f:
        f.write(config_text)
    disk = f"{work}/data-{name}.img"
    sh(os.path.join(HERE, "..", "..", "image", "mkdata"), "--config", conf, "--authorized-keys",
       os.path.join(out, "admin_key.pub"), "--file", f"{certs}/ca.pem:broker-ca.pem",
       "--netd", os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"), "-o", disk)
    # The LAN client: SLAAC from the router's RAs, static IPv4.
    for c in [("addr", "add", "192.168.7.10/24", "dev", "eth0"), ("route", "add", "default", "via", "192.168.7.1")]:
        sh("ip", *c, ns=lab.lan)
    vm = rl.RouterVM(out, disk, lab=lab, log_path=f"{work}/console-{name}.log")
    vm.wall_start = time.time()   # wall clock, as the broker's event times
    vm.start()
    vm.expect(r"netd: router ready", 120)
    vm.login()
    return vm


def run_mode(mode, out, work, certs, figures):
    print(f"=== mode {mode} ===", flush=True)
    lab = rl.Lab(f"tn{mode[:2]}").create()
    broker = dhcp = None
    vm = None
    procs = []
    try:
        broker, dns, procs = setup_isp(lab, work, certs, mode)
        start_servers(lab, procs)
        dhcp = start_dhcp(lab, work, "203.0.113.10")
        vm = boot_router(lab, out, work, certs, mode, CONFIG + MODES[mode])
        m_boot = scrape(vm, f"{mode}: after boot")

        start = len(broker.events)
        if mode == "he":
            ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e["auth_ok"], 90)
            check("he: the broker got the endpoint update over HTTPS, auth and tunnel id right, myip = WAN address",
                  ev and ev["myip"] == "203.0.113.10" and ev["src"] == "203.0.113.10" and ev["answer"].startswith("good"),
                  ev or broker.events[-5:])
        else:
            ev = broker.wait_event(lambda e: e["kind"] == "heartbeat", 120)
            check("heartbeat: the broker got a heartbeat with a valid MD5 and time (after ntpd synced)",
                  ev and ev["ok"] and " 203.0.113.10 " in ev["line"], ev or broker.events[-5:])
            _, st = vm.run("logread | grep -E 'ntp: |heartbeat' | head -5")
            print("      router log: " + " | ".join(st.strip().splitlines()[:3]))
            # Boot -> broker told: QEMU started -> the first valid heartbeat at the broker (the
            # PoP's view); and netd's own WAN address -> heartbeat figure.
            first = broker.wait_event(lambda e: e["kind"] == "heartbeat" and e["ok"], 1)
            _, lg = vm.run("logread | grep 'heartbeat left .* ms after the WAN address changed' | head -1")
            m = re.search(r"heartbeat left (\d+) ms", lg)
            if first:
                figures["heartbeat_boot_to_first_s"] = round(first["t"] - vm.wall_start, 1)
            if m:
                figures["heartbeat_wan_to_first_ms"] = int(m.group(1))
            print(f"      figures: QEMU start -> first valid heartbeat at the broker "
                  f"{figures.get('heartbeat_boot_to_first_s', '?')} s (TCG boot included); WAN address -> first "
                  f"heartbeat {figures.get('heartbeat_wan_to_first_ms', '?')} ms (netd's clock)")
        ok = wait("SLAAC and the tunnel", lambda: lan_ping6(lab), 60, 1)
        addrs = sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global", ns=lab.lan).stdout
        check(f"{mode}: LAN client got a SLAAC address and pings the internet host through the tunnel",
              ok and "2001:db8:7:" in addrs, addrs + vm.run("netctl status")[1])
        ok, text = tcp6(lab)
        check(f"{mode}: LAN client opens a TCP connection to the internet host over IPv6", ok, text)
        _, st = vm.run("netctl status")
        check(f"{mode}: netctl status shows the tunnel up with endpoints, MTU and the last "
              f"{'update' if mode == 'he' else 'heartbeat'}",
              re.search(r"tunnel: +\w+ sit6in4 up", st) and "remote 198.18.0.1 mtu 1480" in st and
              ("update good" in st if mode == "he" else "heartbeat sent" in st), st)
        _, ra = vm.run("cat /run/netd/radvd.conf")
        check(f"{mode}: RAs carry the tunnel MTU and make the router the default router",
              "AdvLinkMTU 1480;" in ra and "AdvDefaultLifetime 1800;" in ra, ra)

        if mode == "he":
            # Spoofed from the tunnel side: the ISP routes the LAN prefix into the broker's
            # tunnel, so packets it sends with a LAN source arrive on sit6in4, to the router and
            # to the LAN client; both are dropped and counted by the source validation rules.
            client = re.search(r"inet6 (2001:db8:7:[0-9a-f:]+)/64", addrs)

            def spoof_counter(chain):
                _, text = vm.run(f"nft list chain inet netd {chain} | grep 'iifname \"sit6in4\" ip6 saddr @lan6'")
                m = re.search(r"counter packets (\d+)", text)
                return int(m.group(1)) if m else -1
            before = {c: spoof_counter(c) for c in ("input", "forward")}
            pkts = (f"[IPv6(src='2001:db8:7::5', dst=d)/ICMPv6EchoRequest() for d in "
                    f"('2001:db8:7::1', '{client.group(1) if client else '2001:db8:7::10'}')]")
            sh("/usr/bin/python3", "-c", f"from scapy.all import *; conf.verb = 0; send({pkts}, count=5)", ns=lab.isp)
            got = {c: spoof_counter(c) - before[c] for c in before}
            check(f"he: LAN-sourced packets from the tunnel side dropped and counted (input {got['input']}, "
                  f"forward {got['forward']} of 5 each)", got == {"input": 5, "forward": 5}, got)
            check("he: ... and the LAN client still reaches the internet host through the tunnel", lan_ping6(lab))

        # Figures: tunnel vs plain IPv4 (NAT, no encapsulation) over the same router and path.
        if mode == "he":
            v6 = throughput(lab, INET6, 5002)
            v4 = throughput(lab, "203.0.113.1", 5002)
            if v6 and v4:
                figures["tunnel_MBps"], figures["ipv4_MBps"] = v6, v4
                print(f"      throughput LAN -> internet: 6in4 tunnel {v6:.1f} MB/s, IPv4 NAT {v4:.1f} MB/s, "
                      f"ratio {v6 / v4:.2f} (TCG-emulated router; userspace broker endpoint)")
            check("throughput figures obtained", v6 and v4)

        # The ISP hands the router another address.
        dhcp = start_dhcp(lab, work, "203.0.113.20", nak_others=True, old=dhcp)
        start = len(broker.events)
        vm.run("kill -USR1 $(head -n1 /run/netd/services/udhcpc.pid | cut -d' ' -f1)")
        t0 = time.monotonic()
        if mode == "he":
            ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e.get("myip") == "203.0.113.20", 60, start)
        else:
            ev = broker.wait_event(lambda e: e["kind"] == "heartbeat" and e["ok"] and e["src"] == "203.0.113.20", 60,
                                   start)
        t_seen = time.monotonic() - t0 if ev else None
        check(f"{mode}: after the WAN address change the broker hears from 203.0.113.20 and retargets", ev,
              broker.events[start:])
        flowing = wait("LAN traffic again", lambda: lan_ping6(lab, wait_s=1), 60, 0.2)
        t_flow = time.monotonic() - t0
        check(f"{mode}: LAN IPv6 traffic through the tunnel resumes", flowing)
        _, lg = vm.run("logread | grep 'left .* ms after the WAN address changed' | tail -1")
        m = re.search(r"(update|heartbeat) left (\d+) ms", lg)
        if m:
            figures[f"{mode}_lease_to_sent_ms"] = int(m.group(2))
        figures[f"{mode}_renew_to_traffic_s"] = round(t_flow, 1)
        print(f"      figures: new lease -> {mode} left the router: {m.group(2) if m else '?'} ms (netd's clock); "
              f"USR1 renew -> broker saw it: {t_seen if t_seen is None else round(t_seen, 2)} s; "
              f"-> LAN traffic flowing again: {t_flow:.1f} s")
        check(f"{mode}: lease -> {mode} leaving the router under 1 s", m and int(m.group(2)) < 1000, lg)

        # A flapping WAN: the address alternates between .21 and .20 ten times in 30 s (lease
        # events fed to the udhcpc hook, as a flapping ISP would make udhcpc send them), ending
        # on .20, the address udhcpc holds. The broker must get few messages, the last one from
        # the final address.
        start = len(broker.events)
        sent_before = json.loads(vm.run("netctl status --json")[1] or "{}").get("tunnel", {}).get("sent", 0)
        t0 = time.monotonic()
        vm.run("for i in 1 2 3 4 5 6 7 8 9 10; do a=203.0.113.$((20 + i % 2)); env -i interface=eth0 ip=$a "
               "subnet=255.255.255.0 mask=24 router=203.0.113.1 dns=203.0.113.53 lease=3600 "
               "/etc/udhcpc/netd-hook bound; sleep 3; done", timeout=120)
        flap_s = time.monotonic() - t0
        if mode == "he":
            last_ok = lambda e: e["kind"] == "he-update" and e.get("src") == "203.0.113.20"  # noqa: E731
            wait("the update for the final address", lambda: (lambda j: j if j.get("state") == "up" else None)(
                json.loads(vm.run("netctl status --json")[1] or "{}").get("tunnel", {})), 90, 1)
            msgs = [e for e in broker.events[start:] if e["kind"] == "he-update"]
        else:
            last_ok = lambda e: e["kind"] == "heartbeat" and e["ok"] and e["src"] == "203.0.113.20"  # noqa: E731
            time.sleep(20)
            msgs = [e for e in broker.events[start:] if e["kind"] == "heartbeat"]
        span = time.monotonic() - t0
        started = json.loads(vm.run("netctl status --json")[1] or "{}").get("tunnel", {}).get("sent", 0) - sent_before
        # One per change would be 10 (plus the heartbeat's regular ones, every 15 s).
        bound = 5 if mode == "he" else 5 + int(span // 15) + 1
        print(f"      figures: WAN flapping, 10 changes in {flap_s:.0f} s: the broker got {len(msgs)} "
              f"{'updates' if mode == 'he' else 'heartbeats'} in {span:.0f} s (bound {bound}; the router started "
              f"{started}, a WAN change cancels an update still in flight for the old address); sources: "
              + " ".join(e.get("src", "?").rsplit(".", 1)[-1] for e in msgs))
        check(f"{mode}: a flapping WAN draws a bounded number of messages ({len(msgs)} <= {bound}), the last one "
              "from the final address", msgs and len(msgs) <= bound and last_ok(msgs[-1]), msgs[-3:])
        check(f"{mode}: ... and LAN IPv6 traffic flows through the tunnel after it",
              wait("LAN traffic after the flapping", lambda: lan_ping6(lab, wait_s=1), 30, 0.5))

        # The counters against the first scrape: LAN traffic went through the tunnel, the broker
        # was told, lease events came (the renewal, the flapping) and one is refused here (not
        # for the WAN link); in he mode the spoofed packets were dropped in input and forward.
        vm.run("env -i interface=eth9 ip=203.0.113.99 subnet=255.255.255.0 router=203.0.113.1 lease=3600 "
               "/etc/udhcpc/netd-hook bound")
        m_traffic = scrape(vm, f"{mode}: after traffic and lease events")
        d = {k: m_traffic.get(k, 0) - m_boot.get(k, 0) for k in m_traffic}
        sent = "netd_tunnel_he_updates_sent_total" if mode == "he" else "netd_tunnel_heartbeats_sent_total"
        bound_ok = 'netd_dhcp_events_total{action="bound",result="accepted"}'
        bound_bad = 'netd_dhcp_events_total{action="bound",result="rejected"}'
        drops = {c: d.get(f'netd_firewall_dropped_packets_total{{chain="{c}"}}', 0) for c in ("input", "forward")}
        print(f"      metrics, after boot -> after traffic and lease events: tunnel rx "
              f"{d.get('netd_tunnel_receive_bytes_total', 0):.0f} B / {d.get('netd_tunnel_receive_packets_total', 0):.0f} "
              f"packets, tx {d.get('netd_tunnel_transmit_bytes_total', 0):.0f} B / "
              f"{d.get('netd_tunnel_transmit_packets_total', 0):.0f} packets; {sent[12:-6].replace('_', ' ')} "
              f"+{d.get(sent, 0):.0f} (total {m_traffic.get(sent, 0):.0f}); lease events bound accepted "
              f"+{d.get(bound_ok, 0):.0f}, rejected +{d.get(bound_bad, 0):.0f}, all accepted "
              f"+{sum(v for k, v in d.items() if k.startswith('netd_dhcp_events_total') and 'accepted' in k):.0f}; "
              f"WAN address changes +{d.get('netd_wan_address_changes_total', 0):.0f}; firewall drops input "
              f"+{drops['input']:.0f}, forward +{drops['forward']:.0f}; uptime {m_traffic.get('netd_uptime_seconds', 0):.0f} s")
        check(f"{mode}: metrics moved with the events: tunnel bytes and packets both ways, "
              f"{'updates' if mode == 'he' else 'heartbeats'} sent, lease events accepted (>= 10) and the refused "
              "one, WAN address changes (>= 10)" + (", the spoofed packets' drops (>= 5 in input and forward)"
                                                    if mode == "he" else ""),
              all(d.get(k, 0) > 0 for k in ("netd_tunnel_receive_bytes_total", "netd_tunnel_transmit_bytes_total",
                                              "netd_tunnel_receive_packets_total", "netd_tunnel_transmit_packets_total",
                                              sent))
              and d.get(bound_ok, 0) >= 10 and d.get(bound_bad, 0) == 1
              and d.get("netd_wan_address_changes_total", 0) >= 10
              and (mode != "he" or (drops["input"] >= 5 and drops["forward"] >= 5)), d)

        # Faults.
        def lan_ipv4_ok():
            r1 = sh("ping", "-c", "1", "-W", "2", "192.168.7.1", ns=lab.lan, check=False).returncode == 0
            r2 = sh("ping", "-c", "1", "-W", "2", "203.0.113.1", ns=lab.lan, check=False).returncode == 0
            return r1 and r2

        def tunnel_json():
            rc, out = vm.run("netctl status --json")
            try:
                return json.loads(out)["tunnel"]
            except (ValueError, KeyError):
                return {}

        # The tunnel's state is an enum (with a detail text) in `netctl status --json`.
        def fault(name, cmd, state, last, undo):
            if callable(cmd):
                cmd()
            elif cmd:
                broker.send(cmd)
            vm.run("netctl tunnel-update")
            tj = wait(name, lambda: (lambda j: j if j.get("state") == state and re.search(last, j.get("last", ""))
                                     else None)(tunnel_json()), 40, 1)
            check(f"{mode} fault: {name}: state {state!r}, last update matches /{last}/", tj, tunnel_json())
            if tj:
                print(f"      {tj['state']} ({tj['detail']}); last: {tj['last'][:160]}; next at {tj['next_at']}")
            _, lg = vm.run("logread | grep 'tunnel:' | tail -1")
            print("      log: " + lg.strip()[-200:])
            retry = re.search(r"retry in (\d+) s", (tj or {}).get("detail", ""))
            check(f"{mode} fault: {name}: retries bounded (or stopped) and netd up",
                  (not retry or int(retry.group(1)) <= 1800) and vm.run("pidof netd")[1].strip(), tj)
            check(f"{mode} fault: {name}: the LAN keeps its IPv4 service", lan_ipv4_ok())
            if undo:
                undo()

        if mode == "he":
            fault("badauth", "he badauth", "refused", r"update badauth", lambda: broker.send("he ok"))
            # The credentials were fixed on the broker's side: an unchanged `netctl reload` (as
            # CONFIG.md says) resumes the updates.
            start = len(broker.events)
            vm.run("netctl reload")
            ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e["auth_ok"], 30, start)
            tj = wait("up again", lambda: (lambda j: j if j.get("state") == "up" else None)(tunnel_json()), 30, 1)
            check("he: after badauth, an unchanged netctl reload resumes the updates", ev and tj, tunnel_json())
            fault("garbage reply", "he garbage", "retrying", r"update failed: HTTP 200", lambda: broker.send("he ok"))
            block = "add table inet t; add chain inet t in { type filter hook input priority 0; }; " \
                    "add rule inet t in tcp dport 443 drop"
            fault("unreachable broker", lambda: sh("nft", block, ns=lab.isp), "retrying",
                  r"update failed: ERROR (connect|timeout)", lambda: sh("nft", "delete table inet t", ns=lab.isp))
            fault("TLS certificate for another name", "he wrongcert", "retrying", r"update failed: ERROR tls",
                  lambda: broker.send("he ok"))
            dns.kill()
            dns.wait()
            fault("DNS failure for the update host", None, "retrying", r"update failed: ERROR dns", None)
            procs.append(subprocess.Popen(dns.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)
            vm.run("netctl tunnel-update")
            tj = wait("recovery", lambda: (lambda j: j if j.get("state") == "up" and
                                           re.search(r"update (good|nochg)", j.get("last", "")) else None)(tunnel_json()),
                      40, 1)
            check("he: with DNS and the broker back, the next update succeeds", tj, tunnel_json())
        else:
            broker.send("password wrong")
            start = len(broker.events)
            vm.run("netctl tunnel-update")
            ev = broker.wait_event(lambda e: e["kind"] == "heartbeat", 30, start)
            check("heartbeat fault: wrong password: the broker ignores the heartbeat",
                  ev and not ev["ok"] and "wrong password" in ev["why"], ev)
            check("heartbeat fault: wrong password: netd up, LAN keeps its IPv4 service",
                  vm.run("pidof netd")[1].strip() and lan_ipv4_ok())
            broker.send("password hartslag")
            # The lease is lost for longer than the interval, then the same address comes back:
            # heartbeats resume at once and keep coming (the schedule never stops).
            dhcp.kill()
            dhcp.wait()
            vm.run("netctl restart udhcpc")   # deconfig: the WAN address goes
            tj = wait("no WAN address", lambda: (lambda j: j if j.get("state") == "waiting-for-wan" else None)(
                tunnel_json()), 20, 0.5)
            check("heartbeat: without a WAN address the tunnel says so (not 'up')", tj, tunnel_json())
            time.sleep(20)                      # longer than the 15 s interval
            start = len(broker.events)
            dhcp = start_dhcp(lab, work, "203.0.113.20", nak_others=True)
            evs = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(evs) < 2:
                time.sleep(1)
                evs = [e for e in broker.events[start:] if e["kind"] == "heartbeat" and e["ok"]]
            check("heartbeat: after a lease lost longer than the interval, the same address brings heartbeats "
                  "back, and they keep coming", len(evs) >= 2, broker.events[start:])
        # The faults in the counters: he: the refused and failed updates, the reload;
        # heartbeat: the restart of udhcpc asked for.
        m_end = scrape(vm, f"{mode}: after the faults")
        if mode == "he":
            failed = {r: m_end.get(f'netd_tunnel_he_updates_failed_total{{reason="{r}"}}', 0)
                      for r in ("badauth", "abuse", "error")}
            reloads = m_end.get('netd_reloads_total{result="ok"}', 0)
            print(f"      metrics after the faults: updates sent {m_end.get('netd_tunnel_he_updates_sent_total', 0):.0f}, "
                  f"failed {failed}; reloads ok {reloads:.0f}")
            check("he: metrics count the failed updates by reason (badauth, errors >= 4) and the reload",
                  failed["badauth"] >= 1 and failed["error"] >= 4 and reloads >= 1, (failed, reloads))
        else:
            restarts = m_end.get('netd_service_restarts_total{service="udhcpc",reason="requested"}', 0)
            print(f"      metrics after the faults: heartbeats sent {m_end.get('netd_tunnel_heartbeats_sent_total', 0):.0f},"
                  f" failed {m_end.get('netd_tunnel_heartbeats_failed_total', 0):.0f}; udhcpc restarts asked for "
                  f"{restarts:.0f}; services up {sum(v for k, v in m_end.items() if k.startswith('netd_service_up'))}")
            check("heartbeat: metrics count the restart of udhcpc asked for, and heartbeats went on",
                  restarts >= 1 and m_end.get("netd_tunnel_heartbeats_sent_total", 0)
                  > m_traffic.get("netd_tunnel_heartbeats_sent_total", 0), m_end)
        status = vm.poweroff()
        check(f"{mode}: clean poweroff", status == 0)
        vm = None
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"{mode}: test ran to the end ({e})", False)
        if vm:
            print(vm.console_tail(60))
    finally:
        if vm:
            vm.kill()
        if broker:
            broker.stop()
        if dhcp:
            dhcp.kill()
        for p in procs:
            p.kill()
        lab.destroy()


# Behind a NAT: a "home router" namespace between the router's WAN and the ISP leases it
# 192.168.1.10, masquerades it to 203.0.113.77 and, once told, forwards protocol 41 to it.
HOME_PUBLIC = "203.0.113.77"
HOME_NFT = """table ip home {
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "up0" ip protocol 41 dnat to 192.168.1.10
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "up0" masquerade
    }
    chain fw {
        type filter hook forward priority filter; policy accept;
    }
}
"""


def run_nat(mode, out, work, certs, figures):
    print(f"=== mode {mode} behind a NAT ===", flush=True)
    lab = rl.Lab(f"na{mode[:3]}").create()
    home = f"{lab.name}-home"
    broker = dhcp = vm = None
    procs = []
    try:
        # The router's WAN wire now ends in the home router; the home router's uplink is the
        # ISP's eth0.
        sh("ip", "netns", "add", home)
        sh("ip", "link", "set", "eth0", "netns", home, ns=lab.isp)
        sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "up0", "netns", home, ns=lab.isp)
        sh("ip", "link", "set", "eth0", "up", ns=lab.isp)
        for c in [("link", "set", "lo", "up"), ("link", "set", "eth0", "up"), ("link", "set", "up0", "up"),
                  ("addr", "add", "192.168.1.1/24", "dev", "eth0"), ("addr", "add", f"{HOME_PUBLIC}/24", "dev", "up0"),
                  ("route", "add", "default", "via", "203.0.113.1")]:
            sh("ip", *c, ns=home)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=home)
        sh("nft", "-f", "-", ns=home, input=HOME_NFT)
        # At first the home router drops protocol 41 from outside (as some do).
        sh("nft", "add rule ip home fw iifname up0 ip protocol 41 counter drop", ns=home)
        broker, dns, procs = setup_isp(lab, work, certs, mode)
        start_servers(lab, procs)
        cfg = {"ifname": "eth0", "server_ip": "192.168.1.1", "offer_ip": "192.168.1.10", "nak_others": False,
               "options": {"1": "ffffff00", "3": "c0a80101", "6": "cb007135", "42": "cb00717b", "51": "00000e10"}}
        with open(f"{work}/dhcp-home.json", "w") as f:
            json.dump(cfg, f)
        dhcp = subprocess.Popen(["ip", "netns", "exec", home, sys.executable,
                                 os.path.join(HERE, "..", "lib", "dhcpserver.py"), f"{work}/dhcp-home.json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        vm = boot_router(lab, out, work, certs, f"{mode}-nat",
                         CONFIG + MODES[mode] + ("sender = true\n" if mode == "heartbeat" else ""))

        def tunnel_json():
            try:
                return json.loads(vm.run("netctl status --json")[1])["tunnel"]
            except (ValueError, KeyError):
                return {}
        if mode == "he":
            ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e["auth_ok"], 90)
            check("he behind NAT: the broker got the update from the public address, without a private myip",
                  ev and ev["src"] == HOME_PUBLIC and not ev["myip_given"] and ev["answer"] == f"good {HOME_PUBLIC}",
                  ev or broker.events[-5:])
            tj = wait("tunnel up", lambda: (lambda j: j if j.get("state") == "up" else None)(tunnel_json()), 30, 1)
            check(f"he behind NAT: status shows the address the broker saw ({HOME_PUBLIC})",
                  tj and tj.get("broker_address") == HOME_PUBLIC, tj or tunnel_json())
        else:
            ev = broker.wait_event(lambda e: e["kind"] == "heartbeat" and e["ok"], 120)
            check("heartbeat sender behind NAT: the broker got a valid heartbeat saying 'sender', from the public "
                  "address", ev and ev["src"] == HOME_PUBLIC and " sender " in ev["line"], ev or broker.events[-5:])
        # Protocol 41 does not come back yet: LAN traffic into the tunnel gets no answer, and
        # netd says what is missing.
        wait("SLAAC", lambda: "2001:db8:7:" in sh("ip", "-6", "addr", "show", "dev", "eth0", "scope", "global",
                                                   ns=lab.lan).stdout, 60, 1)
        ok = lan_ping6(lab, count=10, wait_s=1)
        tj = wait("the warning", lambda: (lambda j: j if j.get("warning") else None)(tunnel_json()), 10, 1) or \
            tunnel_json()
        check(f"{mode} behind NAT, protocol 41 not forwarded: no IPv6 through the tunnel, and status says the "
              "upstream router must forward protocol 41 to 192.168.1.10",
              not ok and "must forward IP protocol 41 to this router's WAN address 192.168.1.10" in tj.get("warning", ""),
              tj)
        print(f"      status: {tj.get('warning', '')[:200]}")
        # The user sets up "DMZ" for protocol 41 on the home router.
        sh("nft", "flush chain ip home fw", ns=home)
        ok = wait("IPv6 through the tunnel", lambda: lan_ping6(lab, wait_s=1), 60, 1)
        check(f"{mode} behind NAT, protocol 41 forwarded: the LAN client reaches the internet host over the tunnel",
              ok, vm.run("netctl status")[1])
        ok, text = tcp6(lab)
        check(f"{mode} behind NAT: a TCP connection over IPv6 too", ok, text)
        tj = tunnel_json()
        check(f"{mode} behind NAT: the warning is gone once protocol 41 comes back", tj.get("warning") == "", tj)
        check(f"{mode} behind NAT: clean poweroff", vm.poweroff() == 0)
        vm = None
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"{mode} behind NAT: test ran to the end ({e})", False)
        if vm:
            print(vm.console_tail(60))
    finally:
        if vm:
            vm.kill()
        if broker:
            broker.stop()
        if dhcp:
            dhcp.kill()
        for p in procs:
            p.kill()
        lab.destroy()
        subprocess.run(["ip", "netns", "del", home], capture_output=True)


def run_static(out, work, certs, figures):
    """he with a static WAN address: no DHCP server anywhere; the tunnel, the firewall and
    dnsmasq follow [wan] ipv4 as they follow a lease, also when a reload changes it."""
    print("=== mode he with a static WAN address ===", flush=True)
    lab = rl.Lab("stat").create()
    broker = vm = None
    procs = []
    try:
        broker, dns, procs = setup_isp(lab, work, certs, "he")
        start_servers(lab, procs)
        static = CONFIG.replace('[wan]\nmac = "52:54:00:12:34:01"\n',
                                '[wan]\nmac = "52:54:00:12:34:01"\nipv4 = "203.0.113.40/24"\ngateway = "203.0.113.1"\n'
                                'dns = ["203.0.113.53"]\n')
        vm = boot_router(lab, out, work, certs, "static", static + MODES["he"])
        ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e["auth_ok"], 90)
        check("static WAN: the broker got the update with myip = the static address",
              ev and ev["myip"] == "203.0.113.40" and ev["src"] == "203.0.113.40", ev or broker.events[-5:])
        _, st = vm.run("netctl status")
        check("static WAN: status shows it, and udhcpc does not run",
              "eth0 static 203.0.113.40/24 router 203.0.113.1 dns 203.0.113.53" in st and "udhcpc" not in st, st)
        ok = wait("SLAAC and the tunnel", lambda: lan_ping6(lab), 60, 1)
        check("static WAN: the LAN client pings the internet host through the tunnel", ok)
        ok, text = tcp6(lab)
        check("static WAN: and opens a TCP connection over IPv6", ok, text)
        ok = sh("ping", "-c", "1", "-W", "2", "203.0.113.1", ns=lab.lan, check=False).returncode == 0
        check("static WAN: IPv4 from the LAN masqueraded to the static address", ok)
        # A reload moves the static address: the broker is told, the tunnel follows.
        start = len(broker.events)
        vm.run("sed -i 's/203.0.113.40/203.0.113.41/' /data/etc/router.conf && netctl reload")
        ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e.get("myip") == "203.0.113.41", 60, start)
        check("static WAN: after a reload to another static address the broker is told", ev, broker.events[start:])
        ok = wait("LAN traffic again", lambda: lan_ping6(lab, wait_s=1), 60, 0.5)
        _, addr = vm.run("ip -4 addr show dev eth0")
        check("static WAN: ... traffic flows through the tunnel from the new address, the old one is gone",
              ok and "203.0.113.41/24" in addr and "203.0.113.40/" not in addr, addr)
        check("static WAN: clean poweroff", vm.poweroff() == 0)
        vm = None
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"static WAN: test ran to the end ({e})", False)
        if vm:
            print(vm.console_tail(60))
    finally:
        if vm:
            vm.kill()
        if broker:
            broker.stop()
        for p in procs:
            p.kill()
        lab.destroy()


# SixXS TIC (issue 15): [tunnel] names only the TIC server, the user and the tunnel; the PoP
# (broker.py's heartbeat receiver) checks the heartbeats made from what TIC said.
TIC_USER, TIC_PASSWORD, TIC_TUNNEL = "ALICE-SIXXS", "tic-secret", "T1234"
TIC_CONFIG = CONFIG[:CONFIG.index("remote = ")] + (
    'mode = "heartbeat"\ntic_server = "tic.example.test"\n'
    f'tic_username = "{TIC_USER}"\ntic_password = "{TIC_PASSWORD}"\ntunnel_id = "{TIC_TUNNEL}"\n')
TIC_PARAMS = {"owner": TIC_USER, "Tunnel Name": "v6router test", "Type": "6in4-heartbeat",
              "IPv6 Endpoint": "2001:db8:1::2", "IPv6 POP": "2001:db8:1::1", "IPv6 PrefixLength": "64",
              "Tunnel MTU": "1472", "Heartbeat_Interval": "15", "IPv4 Endpoint": "heartbeat",
              "IPv4 POP": BROKER, "UserState": "enabled", "AdminState": "enabled", "Password": "hartslag",
              "POP Id": "testpop"}


def run_tic(out, work, certs, figures):
    print("=== mode tic (heartbeat tunnel from SixXS TIC) ===", flush=True)
    lab = rl.Lab("tntic").create()
    broker = dhcp = vm = tic = None
    procs = []
    try:
        broker, dns, procs = setup_isp(lab, work, certs, "heartbeat")
        start_servers(lab, procs)
        with open(f"{work}/tic.json", "w") as f:
            json.dump({"listen": BROKER, "port": 3874, "offset": 0, "users": {TIC_USER: TIC_PASSWORD},
                       "tunnels": {TIC_TUNNEL: TIC_PARAMS}}, f)
        tic = BrokerProc(lab.isp, f"{work}/tic.json", script="ticserver.py")
        if not tic.wait_event(lambda e: e["kind"] == "tic-ready", 10):
            raise RuntimeError(f"TIC server did not start: {tic.events}")
        dhcp = start_dhcp(lab, work, "203.0.113.10")
        check("tic: netd --check accepts [tunnel] with only the TIC settings",
              sh(os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"), "--check", "/dev/stdin", check=False,
                 input=TIC_CONFIG).returncode == 0)
        bad = TIC_CONFIG + 'remote = "198.18.0.1"\n'
        r = sh(os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"), "--check", "/dev/stdin", check=False, input=bad)
        check("tic: giving both TIC and the parameters is an error with file:line:col",
              r.returncode == 1 and re.search(r":\d+:\d+: tunnel.remote: not with tic_server", r.stderr), r.stderr)

        t_boot = time.monotonic()
        vm = boot_router(lab, out, work, certs, "tic", TIC_CONFIG)
        t_ready = time.monotonic()

        def tunnel_json():
            try:
                return json.loads(vm.run("netctl status --json")[1])["tunnel"]
            except (ValueError, KeyError):
                return {}

        def tic_state(state, timeout=40):
            return wait(state, lambda: (lambda j: j if j.get("tic", {}).get("state") == state else None)(
                tunnel_json()), timeout, 1)

        def logins():
            evs = [e for e in tic.events if e["kind"] == "tic-login" and e["ok"]]
            return evs[-1]["logins"] if evs else 0

        def set_server(server):
            return vm.run(f"sed -i 's/^tic_server = .*/tic_server = \"{server}\"/' /data/etc/router.conf && "
                          "netctl reload")

        ev = tic.wait_event(lambda e: e["kind"] == "tic-tunnel", 120)
        t_tic = time.monotonic()
        check("tic: netd logged in to TIC (by name, tic.example.test) and asked for its tunnel",
              ev and ev["id"] == TIC_TUNNEL and ev["user"] == TIC_USER and ev["src"] == "203.0.113.10", tic.events[-5:])
        sess = tic.wait_event(lambda e: e["kind"] == "tic-session", 10)
        check("tic: the exchange as AICCU's: client, get unixtime, username, challenge md5, authenticate md5, "
              "tunnel show, QUIT",
              sess and [c.split(" ")[0] for c in sess["commands"]] ==
              ["client", "get", "username", "challenge", "authenticate", "tunnel", "QUIT"], sess)
        ev = broker.wait_event(lambda e: e["kind"] == "heartbeat", 120)
        t_beat = time.monotonic()
        check("tic: the PoP got a heartbeat with the password and addresses TIC gave (valid MD5 and time)",
              ev and ev["ok"] and ev["line"].startswith("HEARTBEAT TUNNEL 2001:db8:1::2 203.0.113.10 "),
              ev or broker.events[-5:])
        ok = wait("SLAAC and the tunnel", lambda: lan_ping6(lab), 60, 1)
        check("tic: LAN client pings the internet host through the tunnel set up from TIC alone", ok,
              vm.run("netctl status")[1])
        ok, text = tcp6(lab)
        check("tic: LAN client opens a TCP connection to the internet host over IPv6", ok, text)
        _, st = vm.run("netctl status")
        tj = tunnel_json()
        check("tic: netctl status shows the tunnel up with TIC's PoP and MTU, tic fetched, 1 login, the server",
              re.search(r"tunnel: +heartbeat sit6in4 up", st) and "remote 198.18.0.1 mtu 1472" in st and
              "ipv6 2001:db8:1::2/64" in st and re.search(r"tic: +fetched", st) and "1 login in the last hour" in st
              and "server tic.example.test:3874" in st and tj.get("tic", {}).get("logins_last_hour") == 1 and
              tj.get("tic", {}).get("server") == "tic.example.test:3874", st + json.dumps(tj))
        print("      " + "\n      ".join(l for l in st.splitlines() if l.startswith(("tunnel:", "tic:", "   "))))
        _, ra = vm.run("cat /run/netd/radvd.conf")
        check("tic: RAs carry the MTU TIC gave (1472)", "AdvLinkMTU 1472;" in ra, ra)
        _, files = vm.run("stat -c '%a %U %n' /data/state/tic-cache.json /data/state/tic-logins")
        check("tic: the cache and the login record are on the data disk, 0600 root",
              "600 root /data/state/tic-cache.json" in files and "600 root /data/state/tic-logins" in files, files)
        _, lg = vm.run("logread | grep 'tic: ' | tail -3")
        m = re.search(r"parameters fetched from \S+ in (\d+) ms", lg)
        figures["tic_exchange_ms"] = int(m.group(1)) if m else None
        figures["tic_boot_ready_to_login_s"] = round(t_tic - t_ready, 1)
        figures["tic_boot_to_first_heartbeat_s"] = round(t_beat - t_boot, 1)
        print(f"      figures: TIC exchange (helper, DNS included) {m.group(1) if m else '?'} ms; router ready -> "
              f"TIC login {t_tic - t_ready:.1f} s (waits for the WAN lease and ntpd); QEMU start -> first heartbeat "
              f"{t_beat - t_boot:.1f} s; router ready -> first heartbeat {t_beat - t_ready:.1f} s")

        # A TIC server whose clock is 300 s off (299..301 as the two clocks' seconds fall): refused
        # before any login.
        tic.send("offset 300")
        start = len(tic.events)
        set_server("198.18.0.1")
        tj = tic_state("tic-refused")
        _, st = vm.run("netctl status")
        check("tic: a TIC server 300 s off is refused with a clear status (tic-refused, clock skew, 300 s)",
              tj and re.search(r"TIC server clock is (299|300|301) s off", tj["tic"]["detail"]) and
              re.search(r"tic: +tic-refused \(clock skew: TIC server clock is (299|300|301) s off", st), st)
        print("      " + (re.search(r"tic: .*", st).group(0) if re.search(r"tic: .*", st) else st))
        sess = tic.wait_event(lambda e: e["kind"] == "tic-session", 10, start)
        check("tic: ... without a login (get unixtime, QUIT), and no tunnel without parameters for that server",
              sess and [c.split(" ")[0] for c in sess["commands"]] == ["client", "get", "QUIT"] and logins() == 1 and
              tj and tj.get("state") == "waiting-for-tic" and vm.run("ip link show sit6in4")[0] != 0, (sess, tj))
        tic.send("offset 0")

        # Reloads that change the tic settings log in again (the server is the same one, by
        # address or by name), until netd refuses the sixth attempt within the hour itself.
        for n, server in enumerate(["tic.example.test", "198.18.0.1", "tic.example.test"], start=3):
            start = len(tic.events)
            set_server(server)
            tic.wait_event(lambda e: e["kind"] == "tic-session", 30, start)
            tj = wait("fetched", lambda: (lambda j: j if j.get("tic", {}).get("state") == "fetched" and
                                          j["tic"]["detail"].startswith(f"fetched from {server} ") else None)(
                tunnel_json()), 30, 1)
            check(f"tic: reload with tic_server = {server}: attempt {n} fetched ({logins()} logins at the server)",
                  tj and tj["tic"]["logins_last_hour"] == n, tj or tunnel_json())
        start = len(tic.events)
        t0 = time.monotonic()
        set_server("198.18.0.1")
        tj = tic_state("tic-rate-limited", 20)
        _, st = vm.run("netctl status")
        time.sleep(2)
        check("tic: the sixth attempt within the hour is refused by netd itself: rate-limited, says until when, "
              "5 logins counted, and the TIC server saw no connection (at most 5 logins)",
              tj and tj["tic"]["logins_last_hour"] == 5 and tj["tic"]["retry_at"] != "-" and
              re.search(r"tic: +tic-rate-limited until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", st) and
              not [e for e in tic.events[start:] if e["kind"].startswith("tic-")] and logins() <= 5,
              (st, tic.events[start:]))
        print("      " + (re.search(r"tic: .*", st).group(0) if re.search(r"tic: .*", st) else st))
        # Back to the settings the cache is for: still limited, and the cached parameters make
        # the tunnel.
        set_server("tic.example.test")
        tj = tic_state("from-cache", 20)
        ok = wait("traffic on the cached parameters", lambda: lan_ping6(lab, wait_s=1), 60, 1)
        check("tic: back to the cached server: from-cache (still rate-limited), the tunnel carries LAN traffic",
              tj and "5 TIC logins in the last hour" in tj["tic"]["detail"] and tj["tic"]["parameters"] == "cache"
              and ok, tj or tunnel_json())
        # netctl tunnel-update may not bypass the limit either.
        _, reply = vm.run("netctl tunnel-update")
        time.sleep(2)
        check("tic: netctl tunnel-update does not log in past the limit",
              not [e for e in tic.events[start:] if e["kind"].startswith("tic-")], reply)
        # A netd restart (init respawns it): the record survives; no login, the cache serves.
        # (The new netd hears from ntpd only at its next report, up to 11 min: until then it
        # waits for the clock before it would contact TIC; the cache serves meanwhile.)
        vm.run("kill $(pidof netd)")
        time.sleep(3)
        tj = wait("netd back", lambda: (lambda j: j if j.get("tic", {}).get("parameters") == "cache" else None)(
            tunnel_json()), 60, 1)
        ok = wait("traffic after the netd restart", lambda: lan_ping6(lab, wait_s=1), 60, 1)
        check("tic: after a netd restart: 5 logins in the record, the cached parameters, traffic flows, no contact",
              tj and tj["tic"]["logins_last_hour"] == 5 and tj["tic"]["state"] in ("from-cache", "waiting-for-tic")
              and ok and not [e for e in tic.events[start:] if e["kind"].startswith("tic-")], tj or tunnel_json())
        print(f"      after the netd restart: {(tj or {}).get('tic', {}).get('state')} ({(tj or {}).get('tic', {}).get('detail')})")
        # A reboot: the record is on the data disk.
        check("tic: clean poweroff", vm.poweroff() == 0)
        vm = rl.RouterVM(out, f"{work}/data-tic.img", lab=lab, log_path=f"{work}/console-tic-2.log")
        vm.start()
        vm.expect(r"netd: router ready", 120)
        vm.login()
        tj = tic_state("from-cache", 120)
        ok = wait("traffic after the reboot", lambda: lan_ping6(lab, wait_s=1), 90, 1)
        check("tic: after a reboot too: rate-limited by the record on the data disk, the cached parameters carry "
              "LAN traffic, the TIC server saw nothing", tj and tj["tic"]["logins_last_hour"] == 5 and ok and
              not [e for e in tic.events[start:] if e["kind"].startswith("tic-")], tj or tunnel_json())
        figures["tic_server_logins"] = logins()
        figures["tic_netd_attempts_in_hour"] = (tj or {}).get("tic", {}).get("logins_last_hour")
        figures["tic_rate_limit_test_s"] = round(time.monotonic() - t0, 1)
        print(f"      figures: the TIC server saw {logins()} logins and {len([e for e in tic.events if e['kind'] == 'tic-session'])} "
              f"sessions; netd counted {figures['tic_netd_attempts_in_hour']} attempts in the hour (the skewed server's "
              "one included)")
        check("tic: clean poweroff after the reboot", vm.poweroff() == 0)
        vm = None
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"tic: test ran to the end ({e})", False)
        if vm:
            print(vm.console_tail(60))
    finally:
        if vm:
            vm.kill()
        for p in (broker, tic):
            if p:
                p.stop()
        if dhcp:
            dhcp.kill()
        for p in procs:
            p.kill()
        lab.destroy()


def main():
    out = os.path.abspath(sys.argv[1])
    modes = sys.argv[2:] or ["he", "heartbeat", "he-nat", "heartbeat-nat", "he-static", "tic"]
    work = tempfile.mkdtemp(prefix="tunnel-test-")
    figures = {}
    try:
        certs = f"{work}/certs"
        os.makedirs(certs)
        make_certs(certs)
        for mode in modes:
            if mode == "he-static":
                run_static(out, work, certs, figures)
            elif mode == "tic":
                run_tic(out, work, certs, figures)
            elif mode.endswith("-nat"):
                run_nat(mode[:-4], out, work, certs, figures)
            else:
                run_mode(mode, out, work, certs, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("figures:", json.dumps(figures))
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
