#!/usr/bin/env python3
"""Native IPv6 from the ISP with the tunnel as fallback (issue 15), in the booted image under
QEMU, one boot with [ipv6] uplink = "auto":

  ISP namespace: everything of the tunnel test (DHCPv4, DNS, the broker with the internet host
  2001:db8:99::10), plus radvd announcing the WAN link's own 2001:db8:ff::/64 and, when the
  test says so, Debian's Kea DHCPv6 server delegating /56s from a pool (prefix delegation).
  LAN namespace: a client that autoconfigures by SLAAC from the router's RAs.

1. auto, no PD: the router waits native_wait (10 s), then uses the tunnel; the client reaches
   the internet host from the tunnel's prefix.
2. PD appears (Kea started): native takes over; the client gets a SLAAC address from the
   delegated prefix (subnet id 0) and reaches the internet host from it without the tunnel
   (no IPv6 default route through sit6in4, its packet counter still); the tunnel's prefix is
   announced with zero lifetimes and the client drops it.
3. Renumbering: the ISP delegates from another pool: the old /64 is deprecated at the client,
   the new one used; figure: the ISP's reply with the new prefix -> the client's first packet
   from it at the internet host.
4. PD goes away (Kea stopped): when the delegation runs out the tunnel takes over again.
5. Hostile input: DHCPv6 events with a /128, a /0, a ULA, host bits, a preferred lifetime above
   the valid one, over-long values, a wrong interface are rejected and logged, nothing applied;
   RAs on the WAN with bad prefix lengths and lifetimes configure nothing.

usage: test_native.py OUT_DIR
"""
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
from test_tunnel import check, sh, wait  # noqa: E402

WAN_LL = "fe80::5054:ff:fe12:3401"   # the router's WAN link-local address (EUI-64 of its MAC)
NATIVE_WAIT = 10


def kea_config(work, pool, prefix_len=48, delegated_len=56):
    return {"Dhcp6": {
        "interfaces-config": {"interfaces": ["eth0"]},
        "data-directory": f"{work}/kea",
        "lease-database": {"type": "memfile", "name": f"{work}/kea/leases6.csv", "lfc-interval": 0},
        "renew-timer": 5, "rebind-timer": 8, "preferred-lifetime": 20, "valid-lifetime": 30,
        "option-data": [{"name": "dns-servers", "data": "2001:db8:ff::53"}],
        "subnet6": [{"id": 1, "subnet": "2001:db8:ff::/64", "interface": "eth0",
                     "pd-pools": [{"prefix": pool, "prefix-len": prefix_len, "delegated-len": delegated_len}]}],
        "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": f"{work}/kea/kea.log"}],
                     "severity": "INFO"}]}}


class Kea:
    """Debian's kea-dhcp6 in the ISP namespace; restarted with a new pool, leases forgotten."""

    def __init__(self, lab, work):
        self.lab, self.work, self.p = lab, work, None
        os.makedirs(f"{work}/kea", exist_ok=True)

    def start(self, pool, prefix_len=48, delegated_len=56):
        self.stop()
        for f in os.listdir(f"{self.work}/kea"):
            if f.startswith("leases6"):
                os.unlink(f"{self.work}/kea/{f}")
        path = f"{self.work}/kea/kea-{pool.strip(':')}-{delegated_len}.json"
        with open(path, "w") as f:
            json.dump(kea_config(self.work, pool, prefix_len, delegated_len), f)
        env = dict(os.environ, KEA_PIDFILE_DIR=f"{self.work}/kea", KEA_LOCKFILE_DIR=f"{self.work}/kea")
        self.p = subprocess.Popen(["ip", "netns", "exec", self.lab.isp, "kea-dhcp6", "-c", path], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait("kea", lambda: "DHCP6_STARTED" in self.log(), 10, 0.2):
            raise RuntimeError("kea-dhcp6 did not start: " + self.log()[-2000:])

    def log(self):
        try:
            with open(f"{self.work}/kea/kea.log") as f:
                return f.read()
        except OSError:
            return ""

    def alloc_time(self, prefix):
        """When Kea first handed out a delegation of prefix (its log line's time), or None."""
        for line in self.log().splitlines():
            # A new client gets ..._ALLOC; a renewal that moves it to the new pool, ..._RENEW.
            if re.search(r"DHCP6_PD_LEASE_(ALLOC|RENEW) ", line) and f"prefix {prefix}" in line:
                return time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + line[19:23])
        return None

    def stop(self):
        if self.p:
            self.p.kill()
            self.p.wait()
            self.p = None


def status(vm):
    _, out = vm.run("netctl status --json")
    try:
        return json.loads(out[out.index("{"):])
    except ValueError:
        return {}


def in_use(vm):
    return status(vm).get("ipv6", {}).get("in_use")


def hello_source(lab):
    """The LAN client's source address as the internet host saw it (a new connection each time,
    so the client's source address selection is asked each time)."""
    ok, text = tt.tcp6(lab)
    m = re.search(r"hello (\S+)", text)
    return m.group(1) if ok and m else None


def client_addrs(lab):
    return sh("ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global", ns=lab.lan, check=False).stdout


def tunnel_out(vm):
    _, out = vm.run("cat /sys/class/net/sit6in4/statistics/tx_packets")
    try:
        return int(out.strip())
    except ValueError:
        return None


def hostile_events(vm):
    good = {"interface": "eth0", "new_dhcp6_ia_pd1_prefix1": "2001:db8:400::", "new_dhcp6_ia_pd1_prefix1_length": "56",
            "new_dhcp6_ia_pd1_prefix1_pltime": "100", "new_dhcp6_ia_pd1_prefix1_vltime": "200"}
    cases = [
        ("a delegated /128", {"new_dhcp6_ia_pd1_prefix1": "2001:db8:400::1", "new_dhcp6_ia_pd1_prefix1_length": "128"}),
        ("a delegated /0", {"new_dhcp6_ia_pd1_prefix1": "::", "new_dhcp6_ia_pd1_prefix1_length": "0"}),
        ("a prefix length of 300", {"new_dhcp6_ia_pd1_prefix1_length": "300"}),
        ("host bits set", {"new_dhcp6_ia_pd1_prefix1": "2001:db8:400::77"}),
        ("a ULA prefix", {"new_dhcp6_ia_pd1_prefix1": "fd00:400::"}),
        ("preferred above valid lifetime", {"new_dhcp6_ia_pd1_prefix1_pltime": "900"}),
        ("a lifetime past 32 bits", {"new_dhcp6_ia_pd1_prefix1_vltime": "99999999999"}),
        ("an over-long DNS option", {"new_dhcp6_name_servers": " ".join(["2001:db8::53"] * 200)}),
        ("shell metacharacters", {"new_dhcp6_ia_pd1_prefix1": "2001:db8:400::;reboot"}),
        ("another interface", {"interface": "eth1"}),
    ]
    before = status(vm)
    _, logged = vm.run("logread | grep -c 'ipv6: REJECTED'")
    logged_before = int((logged.strip().splitlines() or ["0"])[-1])
    for name, change in cases:
        env = dict(good, **change)
        args = " ".join(f"{k}='{v}'" for k, v in env.items())
        rc, out = vm.run(f"env {args} netctl dhcp6-event BOUND6; echo rc=$?")
        check(f"hostile DHCPv6: {name} is rejected with the reason", "rc=1" in out and "rejected" in out, out)
    after = status(vm)
    v6 = after.get("ipv6", {})
    check("hostile DHCPv6: nothing applied (uplink, LAN prefixes, delegation unchanged), all counted",
          v6.get("in_use") == before.get("ipv6", {}).get("in_use") and after["lan"]["ipv6"] == before["lan"]["ipv6"]
          and [d["prefix"] for d in v6.get("delegated", [])] == [d["prefix"] for d in before["ipv6"].get("delegated", [])]
          and v6.get("rejected", 0) - before.get("ipv6", {}).get("rejected", 0) == len(cases), v6)
    _, log = vm.run("logread | grep -c 'ipv6: REJECTED'")
    check("hostile DHCPv6: each rejection is logged",
          log.strip().splitlines()[-1:] == [str(logged_before + len(cases))], log)


HOSTILE_RA = r"""
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, sendp
def ra(*opts):
    p = Ether(dst="33:33:00:00:00:01") / IPv6(src="fe80::bad", dst="ff02::1", hlim=255) / ICMPv6ND_RA(routerlifetime=0)
    for o in opts:
        p = p / o
    sendp(p, iface="eth0", verbose=False)
ra(ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad1::", prefixlen=128, validlifetime=600, preferredlifetime=300))
ra(ICMPv6NDOptPrefixInfo(prefix="::", prefixlen=0, validlifetime=600, preferredlifetime=300))
ra(ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad2::", prefixlen=64, validlifetime=100, preferredlifetime=900))
ra(ICMPv6NDOptPrefixInfo(prefix="fe80::", prefixlen=64, validlifetime=600, preferredlifetime=300))
ra(ICMPv6NDOptPrefixInfo(prefix="ff02::", prefixlen=64, validlifetime=600, preferredlifetime=300))
"""


def hostile_ras(lab, vm):
    before = status(vm)
    sh("/usr/bin/python3", "-c", HOSTILE_RA, ns=lab.isp, timeout=60)
    time.sleep(2)
    _, addrs = vm.run("ip -6 -o addr show dev eth0")
    check("hostile RAs: a /128, a /0, preferred above valid, link-local and multicast prefixes give the WAN no address",
          "2001:db8:bad" not in addrs and re.search(r"inet6 ::|inet6 ff02", addrs) is None, addrs)
    _, routes = vm.run("ip -6 route show")
    check("hostile RAs: no route from them (router lifetime 0: not a default router)",
          "2001:db8:bad" not in routes and "fe80::bad" not in routes, routes)
    after = status(vm)
    check("hostile RAs: the LAN's prefixes and the uplink are unchanged",
          after["lan"]["ipv6"] == before["lan"]["ipv6"] and after["ipv6"]["in_use"] == before["ipv6"]["in_use"],
          after.get("ipv6"))


RADVD_ISP = """interface eth0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvManagedFlag on;
    AdvOtherConfigFlag on;
    prefix 2001:db8:ff::/64 { AdvOnLink on; AdvAutonomous on; };
};
"""


def main():
    out = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="native-test-")
    figures = {}
    lab = rl.Lab("nat6").create()
    broker = vm = kea = None
    procs = []
    try:
        certs = f"{work}/certs"
        os.makedirs(certs)
        tt.make_certs(certs)
        broker, dns, procs = tt.setup_isp(lab, work, certs, "he")
        tt.start_servers(lab, procs)
        procs.append(tt.start_dhcp(lab, work, "203.0.113.10"))
        # The ISP's IPv6 on the WAN link: its own /64 in RAs, routes to the delegated pools.
        sh("ip", "-6", "addr", "add", "2001:db8:ff::1/64", "dev", "eth0", ns=lab.isp)
        for pool in ("2001:db8:200::/48", "2001:db8:300::/48"):
            sh("ip", "-6", "route", "add", pool, "via", WAN_LL, "dev", "eth0", ns=lab.isp)
        with open(f"{work}/radvd-isp.conf", "w") as f:
            f.write(RADVD_ISP)
        procs.append(subprocess.Popen(["ip", "netns", "exec", lab.isp, "radvd", "-n", "-m", "stderr", "-C",
                                       f"{work}/radvd-isp.conf", "-p", f"{work}/radvd-isp.pid"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        kea = Kea(lab, work)

        config = tt.CONFIG + tt.MODES["he"] + f'\n[ipv6]\nuplink = "auto"\nnative_wait = {NATIVE_WAIT}\n'
        vm = tt.boot_router(lab, out, work, certs, "native", config)
        t_ready = time.monotonic()

        # 1. No PD: the tunnel after the wait.
        st = status(vm).get("ipv6", {})
        check("auto: status says it waits for a delegation", st.get("in_use") in ("none", "tunnel"), st)
        ok = wait("tunnel in use", lambda: in_use(vm) == "tunnel", NATIVE_WAIT + 30, 1)
        figures["auto_ready_to_tunnel_s"] = round(time.monotonic() - t_ready, 1)
        st = status(vm).get("ipv6", {})
        check(f"auto: no prefix delegated -> the tunnel ({st.get('why')})",
              ok and "no prefix delegated" in st.get("why", ""), st)
        src = wait("client via the tunnel", lambda: hello_source(lab), 60, 1)
        check("auto/tunnel: the LAN client reaches the internet host from the tunnel's prefix",
              src and src.startswith("2001:db8:7:"), src)
        _, dhcpcd = vm.run("ps | grep -c '[d]hcpcd'")
        check("auto: dhcpcd runs on the WAN (privilege-separated)", int(dhcpcd.strip() or 0) >= 2, dhcpcd)

        # 2. PD appears: native takes over.
        t_kea = time.monotonic()
        kea.start("2001:db8:200::")
        ok = wait("native in use", lambda: in_use(vm) == "native", 60, 0.5)
        figures["pd_appears_to_native_s"] = round(time.monotonic() - t_kea, 1)
        st = status(vm)
        check("auto: a delegated prefix -> native takes over", ok, st.get("ipv6"))
        check("native: the LAN's /64 is subnet 0 of the delegated /56, announced",
              "2001:db8:200::1/64" in st.get("lan", {}).get("ipv6", []) and
              any(d.get("prefix") == "2001:db8:200::/56" for d in st["ipv6"].get("delegated", [])), st)
        src = wait("client from the delegated prefix",
                   lambda: (lambda s: s if s and s.startswith("2001:db8:200:0:") else None)(hello_source(lab)), 60, 0.5)
        figures["pd_appears_to_client_s"] = round(time.monotonic() - t_kea, 1)
        check("native: the client reaches the internet host from its SLAAC address in the delegated prefix",
              src, client_addrs(lab))
        before = tunnel_out(vm)
        hello_source(lab)
        tt.lan_ping6(lab, count=3, wait_s=1)
        _, routes = vm.run("ip -6 route show default")
        check("native: ... without the tunnel (default route via the ISP router, sit6in4 sends nothing)",
              "sit6in4" not in routes and "via fe80::" in routes and before is not None and tunnel_out(vm) == before,
              f"{routes} sit tx {before} -> {tunnel_out(vm)}")
        # Linux keeps an address whose prefix comes with a valid lifetime of 0 for 2 hours
        # (RFC 4862 5.5.3 e) unless ra_honor_pio_life is set; deprecated, it is no longer used.
        ok = wait("tunnel prefix deprecated", lambda: all(
            "deprecated" in l for l in client_addrs(lab).splitlines() if "2001:db8:7:" in l), 30, 1)
        check("native: the tunnel's prefix, announced with zero lifetimes, is deprecated at the client", ok,
              client_addrs(lab))
        _, fw = vm.run("netctl firewall | grep -c 'udp sport 547 udp dport 546'")
        check("native: the firewall accepts DHCPv6 replies on the WAN", fw.strip().endswith("1"), fw)

        # 3. Renumbering.
        kea.start("2001:db8:300::")
        t_probe = []

        def new_source():
            s = hello_source(lab)
            if s and s.startswith("2001:db8:300:0:"):
                t_probe.append(time.time())
                return s
            return None
        src = wait("client from the new prefix", new_source, 90, 0.2)
        t_alloc = kea.alloc_time("2001:db8:300::")
        check("renumbering: the client moves to the new delegated prefix", src, client_addrs(lab))
        check("renumbering: Kea's log gives the time of the new delegation", t_alloc, kea.log()[-1500:])
        if src and t_alloc:
            figures["renumber_new_delegation_to_client_s"] = round(t_probe[0] - t_alloc, 2)
        addrs = client_addrs(lab)
        old = [l for l in addrs.splitlines() if "2001:db8:200:0:" in l]
        check("renumbering: the old prefix is deprecated at the client (or already gone)",
              all("deprecated" in l or "preferred_lft 0sec" in l for l in old), addrs)
        st = status(vm).get("ipv6", {})
        check("renumbering: status lists the old /64 as deprecated",
              any(d.get("prefix") == "2001:db8:200::/64" for d in st.get("deprecated", [])), st)
        _, radvd = vm.run("cat /run/netd/radvd.conf")
        check("renumbering: radvd announces the old /64 with zero lifetimes",
              re.search(r"prefix 2001:db8:200::/64 \{[^}]*AdvPreferredLifetime 0;\s*AdvValidLifetime 0;", radvd),
              radvd)

        # 3b. A real server delegating a /128 (Kea allows it; dhcpcd hands it on): rejected.
        rejected = status(vm).get("ipv6", {}).get("rejected", 0)
        kea.start("2001:db8:500::", 120, 128)
        ok = wait("the /128 rejected", lambda: status(vm).get("ipv6", {}).get("rejected", 0) > rejected, 30, 1)
        _, log = vm.run("logread | grep 'ipv6: REJECTED' | tail -n 1")
        st = status(vm)
        check("hostile DHCPv6 from Kea: a delegated /128 is rejected and logged, the LAN keeps its /64",
              ok and "2001:db8:500::/128" in log and "2001:db8:300::1/64" in st["lan"]["ipv6"], log + str(st.get("ipv6")))

        # 4. PD goes away: back to the tunnel once the delegation runs out.
        t_stop = time.monotonic()
        kea.stop()
        ok = wait("tunnel again", lambda: in_use(vm) == "tunnel", 60, 1)
        figures["pd_gone_to_tunnel_s"] = round(time.monotonic() - t_stop, 1)
        st = status(vm).get("ipv6", {})
        check(f"auto: the delegation runs out -> back to the tunnel ({st.get('why')})", ok, st)
        src = wait("client via the tunnel again",
                   lambda: (lambda s: s if s and s.startswith("2001:db8:7:") else None)(hello_source(lab)), 60, 1)
        figures["pd_gone_to_client_via_tunnel_s"] = round(time.monotonic() - t_stop, 1)
        check("auto: the client reaches the internet host through the tunnel again", src, client_addrs(lab))

        # 5. Hostile input.
        hostile_events(vm)
        hostile_ras(lab, vm)
        _, st = vm.run("netctl status")
        print(st)
        check("clean poweroff", vm.poweroff() == 0)
        vm = None
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"native: test ran to the end ({e})", False)
        if vm:
            print(vm.console_tail(80))
    finally:
        if vm:
            vm.kill()
        if kea:
            kea.stop()
        if broker:
            broker.stop()
        for p in procs:
            p.kill()
        lab.destroy()
        shutil.rmtree(work, ignore_errors=True)
    print("figures:", json.dumps(figures))
    print(f"{sum(tt.results)} passed, {len(tt.results) - sum(tt.results)} failed")
    return 0 if tt.results and all(tt.results) else 1


if __name__ == "__main__":
    sys.exit(main())
