#!/usr/bin/env python3
"""Tunnel throughput against a kernel 6in4 endpoint (issue 14): the router image booted under
QEMU (software emulation) with its `he` tunnel, and a second QEMU VM, the broker/ISP router,
running the same kernel (the image's bzImage and its own root filesystem, booted with
init=/bin/sh: no netd, configured over its console) that terminates the tunnel in a kernel sit
device and routes the router's LAN prefix into it. The host's kernel has no sit module, so the
endpoint has to be in a VM; with our kernel on both ends neither side is a userspace copy loop.

  LAN client ns --tap-- router VM --tap/br-wan-- broker VM --tap-- internet host ns
                                        |
                               ISP ns (DHCP, DNS, NTP, the HE-style HTTPS update server of
                               tests/lib/broker.py: the control part only)

The router's tunnel comes up as netd brings it up in the field: DHCP lease on the WAN, the HTTPS
endpoint update (answered good by tests/lib/broker.py), the sit link, RAs with the tunnel MTU.
The broker VM's sit device has remote = the router's leased WAN address, the DHCP default
gateway is the broker VM, so IPv4 and the tunnel take the same wires and the same two kernels.

Measured from the LAN client to the internet host, interleaved in one run:
  - TCP throughput (iperf3, 3 s, 5 runs each): IPv6 over the 6in4 tunnel, and the same path
    unencapsulated: IPv4, NATed by the router (netd's masquerade) and routed by the broker VM.
    IPv4 is the fairest comparison the product has: the same router configuration, the same
    NICs, VMs and hops, the router's own ruleset on both (native IPv6 would need another WAN
    mode and another configuration). It favours IPv4 slightly: its MSS is 1460 against the
    tunnel's 1420 (MTU 1480), 2.7% more payload per packet;
  - small-packet forwarding (iperf3 UDP, 64-byte payload, unlimited offered rate, 3 s, 3 runs
    each): packets per second received at the internet host, the offered rate and the loss,
    over the tunnel and over IPv4.
min/median/max and the ratio of the medians (tunnel / IPv4), the two VMs' CPU use during each
TCP run (from their /proc/stat). netd's flowtable holds the sit device (the way back of tunnel
connections comes in there): the bench prints its devices. Target: TCP ratio at least 0.9.

Where the time goes: IPv4 leaves the router as 64 KB TSO frames (the guest's GRO aggregates on
the LAN NIC, the WAN NIC's offload segments), one transmit per 45 segments. A sit-encapsulated
TCP packet cannot be handed to virtio-net for segmentation (its hw_enc_features are empty, and
virtio has no IPIP/SIT GSO at all; xen-netfront, the NIC of the product's Xen guests, has none
either), so the router's kernel segments it in software and transmits every 1420-byte segment
on its own: the tunnel runs at the router's per-packet rate, the rate the small-packet figures
show. A second boot measures both paths again with the router's WAN NIC offering no TSO (QEMU
host_tso4/6=off): IPv4 then also leaves one packet per segment, which isolates the cost of the
encapsulation itself.

Two TCG-emulated VMs share the machine with the iperf3 ends: absolute figures are far below
real hardware; the ratios are what this measures.

usage: tunnel_vm_bench.py OUTDIR
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
import routerlab as rl  # noqa: E402
from test_tunnel import BrokerProc, make_certs  # noqa: E402

TCP_RUNS = 5
UDP_RUNS = 3
INET4, INET6 = "198.51.100.10", "2001:db8:99::10"
WAN_IP, BROKER_VM_IP = "203.0.113.10", "203.0.113.2"
BROKER_MACS = ("52:54:00:12:35:01", "52:54:00:12:35:02")

CONFIG = """
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]

[wan]
mac = "52:54:00:12:34:01"

[ntp]
servers = ["203.0.113.123"]

[tunnel]
remote = "203.0.113.2"
local_ipv6 = "2001:db8:1::2/64"
mtu = 1480
mode = "he"
tunnel_id = "424242"
username = "alice"
update_key = "s3cret-key"
update_url = "https://tb.example.test/nic/update"
ca_file = "/data/etc/broker-ca.pem"
"""

# The broker VM: forwarding, the internet side on eth1, the sit end of the tunnel.
BROKER_SETUP = [
    "dmesg -n 1; mount -t proc proc /proc; mount -t sysfs sys /sys",
    "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding;"
    " for i in all default; do echo 0 > /proc/sys/net/ipv4/conf/$i/send_redirects; done",
    "ip link set lo up && ip link set eth0 up && ip link set eth1 up",
    f"ip addr add {BROKER_VM_IP}/24 dev eth0 && ip addr add 198.51.100.1/24 dev eth1",
    "ip -6 addr add 2001:db8:99::1/64 dev eth1",
    # The control server (198.18.0.1) is in the ISP namespace on the WAN wire.
    "ip route add 198.18.0.1/32 via 203.0.113.1",
    f"ip tunnel add tb mode sit remote {WAN_IP} local {BROKER_VM_IP} ttl 64",
    "ip link set tb mtu 1480 up && ip -6 addr add 2001:db8:1::1/64 dev tb",
    "ip -6 route add 2001:db8:7::/64 via 2001:db8:1::2 dev tb",
]


def sh(*cmd, ns=None, check=True, timeout=60):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    r = subprocess.run(cmd, text=True, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise rl.BootError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    return r


def wait(fn, timeout, interval=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return None


def broker_vm(out, lab, work):
    """The broker VM: the image's kernel and root filesystem, init=/bin/sh, NIC 1 on the
    router's WAN wire, NIC 2 on a wire to the internet host's namespace (lab.name-inet)."""
    inet = f"{lab.name}-inet"
    lab.hosts.append(inet)           # Lab.destroy() deletes it
    sh("ip", "netns", "add", inet)
    sh("ip", "link", "set", "lo", "up", ns=inet)
    w = lab.wire
    for c in [("tuntap", "add", "dev", "tap-bwan", "mode", "tap"), ("tuntap", "add", "dev", "tap-binet", "mode", "tap"),
              ("link", "add", "br-inet", "type", "bridge"),
              ("link", "add", "v-inet", "type", "veth", "peer", "name", "eth0", "netns", inet),
              ("link", "set", "tap-bwan", "master", "br-wan"), ("link", "set", "tap-binet", "master", "br-inet"),
              ("link", "set", "v-inet", "master", "br-inet")]:
        sh("ip", *c, ns=w)
    for dev in ("tap-bwan", "tap-binet", "v-inet", "br-inet"):
        sh("ip", "link", "set", dev, "up", ns=w)
    for c in [("link", "set", "eth0", "up"), ("addr", "add", f"{INET4}/24", "dev", "eth0"),
              ("route", "add", "default", "via", "198.51.100.1"),
              ("-6", "addr", "add", f"{INET6}/64", "dev", "eth0", "nodad"),
              ("-6", "route", "add", "default", "via", "2001:db8:99::1")]:
        sh("ip", *c, ns=inet)
    vm = rl.RouterVM(out, None, log_path=os.path.join(work, "broker-console.log"), mem=256)
    vm.cmd = lab.qemu_prefix() + [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-m", "256",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", os.path.join(out, "bzImage"),
        "-append", "root=/dev/vda ro rootfstype=squashfs console=ttyS0,115200 panic=-1 init=/bin/sh",
        "-drive", f"file={os.path.join(out, 'rootfs.squashfs')},if=virtio,format=raw,readonly=on",
        "-serial", "stdio",
        "-netdev", "tap,id=bwan,ifname=tap-bwan,script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=bwan,mac={BROKER_MACS[0]}",
        "-netdev", "tap,id=binet,ifname=tap-binet,script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=binet,mac={BROKER_MACS[1]}"]
    return vm, inet


def setup_isp(lab, work, certs):
    """The ISP namespace on the WAN wire: DHCP (gateway = the broker VM), DNS, NTP and the HTTPS
    endpoint update server."""
    isp = lab.isp
    for c in [("addr", "add", "203.0.113.1/24", "dev", "eth0"), ("addr", "add", "203.0.113.53/24", "dev", "eth0"),
              ("addr", "add", "203.0.113.123/24", "dev", "eth0"), ("addr", "add", "198.18.0.1/32", "dev", "lo"),
              ("route", "add", "198.51.100.0/24", "via", BROKER_VM_IP)]:
        sh("ip", *c, ns=isp)
    procs = [subprocess.Popen(["ip", "netns", "exec", isp, "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv",
                               "--no-hosts", "--bind-interfaces", "--listen-address=203.0.113.53",
                               "--address=/tb.example.test/198.18.0.1", "--pid-file="],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    cfg = {"tun": "tun6", "broker_ip": "198.18.0.1", "ntp_ip": "203.0.113.123", "router_v6": "2001:db8:1::2",
           "password": "unused", "he_user": "alice", "he_key": "s3cret-key", "tunnel_id": "424242",
           "cert": f"{certs}/tb.example.test.pem", "key": f"{certs}/tb.example.test.key",
           "wrong_cert": f"{certs}/wrong.example.test.pem", "wrong_key": f"{certs}/wrong.example.test.key"}
    with open(f"{work}/broker.json", "w") as f:
        json.dump(cfg, f)
    broker = BrokerProc(isp, f"{work}/broker.json")
    if not broker.wait_event(lambda e: e["kind"] == "ready", 10):
        raise rl.BootError(f"the update server did not start: {broker.events}")
    # DHCP: 203.0.113.10, gateway the broker VM (203.0.113.2), DNS .53, NTP .123.
    dcfg = {"ifname": "eth0", "server_ip": "203.0.113.1", "offer_ip": WAN_IP, "nak_others": False,
            "options": {"1": "ffffff00", "3": "cb007102", "6": "cb007135", "42": "cb00717b", "51": "00000e10"}}
    with open(f"{work}/dhcp.json", "w") as f:
        json.dump(dcfg, f)
    procs.append(subprocess.Popen(["ip", "netns", "exec", isp, sys.executable,
                                   os.path.join(HERE, "..", "lib", "dhcpserver.py"), f"{work}/dhcp.json"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return broker, procs


def iperf(lab, host, *args, seconds=3):
    r = sh("iperf3", "-c", host, "-t", str(seconds), "-J", *args, ns=lab.lan, check=False, timeout=seconds + 30)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise rl.BootError(f"iperf3 to {host}: {r.stdout[-500:]}{r.stderr[-500:]}")


def tcp(lab, host):
    j = iperf(lab, host)
    if "error" in j:
        raise rl.BootError(f"iperf3 to {host}: {j['error']}")
    return j["end"]["sum_received"]["bits_per_second"] / 1e6


def udp(lab, host):
    """iperf3 UDP, 64-byte payload, unlimited rate: (offered pps, received pps, loss %)."""
    j = iperf(lab, host, "-u", "-l", "64", "-b", "0")
    if "error" in j:
        raise rl.BootError(f"iperf3 -u to {host}: {j['error']}")
    tx, rx = j["end"]["sum_sent"], j["end"]["sum_received"]
    got = rx["packets"] - rx["lost_packets"]      # the receiver's count of what arrived
    return tx["packets"] / tx["seconds"], got / rx["seconds"], 100.0 * (tx["packets"] - got) / tx["packets"]


def cpu(vm):
    """The guest's /proc/stat cpu line: (busy, softirq, total) jiffies."""
    _, text = vm.run("head -1 /proc/stat")
    v = [int(x) for x in text.split()[1:9]]
    return sum(v) - v[3] - v[4], v[6], sum(v)


def busy(before, after):
    """Percent busy and percent in softirq between two cpu() samples."""
    total = max(after[2] - before[2], 1)
    return 100.0 * (after[0] - before[0]) / total, 100.0 * (after[1] - before[1]) / total


def stats(xs):
    return min(xs), statistics.median(xs), max(xs)


def phase(out, certs, wan_tso, tcp_runs, udp_runs):
    """Boot both VMs, bring the tunnel up, measure; returns (TCP Mbit/s lists, CPU loads, UDP
    results) by path. wan_tso False: the router's WAN NIC offers the guest no TCP segmentation
    offload (QEMU host_tso4/6=off), so IPv4 is segmented in software as the tunnel always is."""
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="tunvmbench.")
    lab = rl.Lab(f"tvb{os.getpid() % 1000}").create()
    router = bvm = broker = server = None
    procs = []
    try:
        bvm, inet = broker_vm(out, lab, work)
        broker, procs = setup_isp(lab, work, certs)
        bvm.start()
        conf = f"{work}/router.conf"
        with open(conf, "w") as f:
            f.write(CONFIG)
        disk = f"{work}/data.img"
        sh(os.path.join(HERE, "..", "..", "image", "mkdata"), "--config", conf, "--authorized-keys",
           os.path.join(out, "admin_key.pub"), "--file", f"{certs}/ca.pem:broker-ca.pem",
           "--netd", os.path.join(out, "rootfs.stage", "usr", "sbin", "netd"), "-o", disk)
        for c in [("addr", "add", "192.168.7.10/24", "dev", "eth0"), ("route", "add", "default", "via", "192.168.7.1")]:
            sh("ip", *c, ns=lab.lan)
        router = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console.log"), mem=384)
        if not wan_tso:
            nic = f"virtio-net-pci,netdev=wan,mac={rl.WAN_MAC}"
            router.cmd[router.cmd.index(nic)] = nic + ",host_tso4=off,host_tso6=off,host_ecn=off"
        router.start()
        # The broker VM boots while the router does.
        bvm.expect(r"Run /bin/sh as init process|can't access tty|^/ # ", 120)
        # No echo, no prompt: command output stays parseable (as RouterVM.login does).
        bvm.send("stty -echo; PS1=; echo __ready__\n")
        bvm.expect(r"^__ready__\n", 30)
        for cmd in BROKER_SETUP:
            bvm.run(cmd, check=True)
        _, uname = bvm.run("uname -r")
        router.expect(r"netd: router ready", 180)
        router.login()
        ev = broker.wait_event(lambda e: e["kind"] == "he-update" and e["auth_ok"], 90)
        if not ev or not ev["answer"].startswith("good") or ev["myip"] != WAN_IP:
            raise rl.BootError(f"no endpoint update for {WAN_IP} at the update server: {broker.events[-5:]}")
        server = subprocess.Popen(["ip", "netns", "exec", inet, "iperf3", "-s"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait(lambda: sh("ping", "-6", "-c", "1", "-W", "2", INET6, ns=lab.lan, check=False).returncode == 0, 60):
            raise rl.BootError("the LAN client does not reach the internet host through the tunnel: " +
                               router.run("netctl status")[1])
        if sh("ping", "-c", "1", "-W", "2", INET4, ns=lab.lan, check=False).returncode != 0:
            raise rl.BootError("the LAN client does not reach the internet host over IPv4")
        _, st = router.run("netctl status | grep -i tunnel; ip tunnel show sit6in4; nft list flowtables | grep devices")
        print(f"broker VM kernel {uname.strip()}; router: " + " | ".join(x.strip() for x in st.strip().splitlines()))
        _, bst = bvm.run("ip tunnel show tb; ip -6 route show dev tb")
        print("broker VM: " + " | ".join(x.strip() for x in bst.strip().splitlines()))
        print(f"setup (both VMs booted, tunnel up): {time.monotonic() - t0:.0f} s", flush=True)

        paths = ("tunnel", "ipv4")
        res = {k: [] for k in paths}
        load = {k: [] for k in paths}     # (router busy %, softirq %, broker busy %, softirq %)

        def sampled(k, host):
            r0, b0 = cpu(router), cpu(bvm)
            v = tcp(lab, host)
            r1, b1 = cpu(router), cpu(bvm)
            load.setdefault(k, []).append(busy(r0, r1) + busy(b0, b1))
            res.setdefault(k, []).append(v)
        for _ in range(tcp_runs):
            sampled("tunnel", INET6)
            sampled("ipv4", INET4)
        ures = {k: [] for k in paths}
        for _ in range(udp_runs):
            ures["tunnel"].append(udp(lab, INET6))
            ures["ipv4"].append(udp(lab, INET4))
        _, counters = router.run("cd /sys/class/net/sit6in4/statistics && echo sit6in4 tx_packets $(cat tx_packets) "
                                 "tx_dropped $(cat tx_dropped) rx_packets $(cat rx_packets)")
        print("router: " + counters.strip())
        router.poweroff()
        print(f"phase wall time {time.monotonic() - t0:.0f} s", flush=True)
        return res, load, ures
    except Exception as e:
        raise rl.BootError(f"{e}\n--- router console:\n{router.console_tail(30) if router else ''}\n"
                           f"--- broker VM console:\n{bvm.console_tail(20) if bvm else ''}")
    finally:
        if server:
            server.kill()
        for p in procs:
            p.kill()
        if broker:
            broker.stop()
        for vm in (router, bvm):
            if vm:
                vm.kill()
        lab.destroy()
        shutil.rmtree(work, ignore_errors=True)


LABELS = {"tunnel": "IPv6 over the 6in4 tunnel", "ipv4": "IPv4, NAT44, unencapsulated"}


def print_tcp(res, load):
    med = {k: statistics.median(v) for k, v in res.items()}
    for k, xs in res.items():
        lo, md, hi = stats(xs)
        ld = [statistics.median(x[i] for x in load[k]) for i in range(4)]
        print(f"  {LABELS[k]:32s} {lo:8.1f} {md:8.1f} {hi:8.1f}  {[round(x, 1) for x in xs]}  CPU busy "
              f"(softirq) router {ld[0]:.0f}% ({ld[1]:.0f}%), broker VM {ld[2]:.0f}% ({ld[3]:.0f}%)")
    # Each 1420-byte segment of the tunnel is a packet the router transmits on its own.
    print(f"  tunnel: {med['tunnel'] * 1e6 / 8 / 1420:.0f} segments/s of 1420 bytes; "
          f"ratio of the medians, tunnel / IPv4: {med['tunnel'] / med['ipv4']:.3f}")
    return med


def main():
    out = os.path.abspath(sys.argv[1])
    for tool in ("iperf3", "dnsmasq", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (image/install-deps installs it)")
    t_start = time.monotonic()
    certs = tempfile.mkdtemp(prefix="tunvmcerts.")
    try:
        make_certs(certs)
        res, load, ures = phase(out, certs, True, TCP_RUNS, UDP_RUNS)
        print(f"LAN client -> internet host through the router VM and the broker VM (both QEMU TCG, our kernel), "
              f"TCP, iperf3 3 s, {TCP_RUNS} interleaved runs, Mbit/s min / median / max:")
        med = print_tcp(res, load)
        ratio = med["tunnel"] / med["ipv4"]
        print(f"  target at least 0.9: {'MET' if ratio >= 0.9 else 'NOT MET'} ({ratio:.3f})")
        print(f"small packets: iperf3 UDP, 64-byte payload, unlimited offered rate, 3 s, {UDP_RUNS} interleaved runs; "
              f"packets/s received at the internet host min / median / max (offered pps median, loss % median):")
        umed = {}
        for k in ("tunnel", "ipv4"):
            lo, md, hi = stats([r[1] for r in ures[k]])
            umed[k] = md
            print(f"  {LABELS[k]:32s} {lo:8.0f} {md:8.0f} {hi:8.0f} pps  offered "
                  f"{statistics.median(r[0] for r in ures[k]):8.0f} pps, loss {statistics.median(r[2] for r in ures[k]):5.1f} %  "
                  f"{[tuple(round(v) for v in r) for r in ures[k]]}")
        print(f"  ratio of the medians, tunnel / IPv4: {umed['tunnel'] / umed['ipv4']:.3f}", flush=True)
        # Where the time goes: the same with the router's WAN NIC offering no TSO, so that IPv4
        # too leaves the router as one packet per segment.
        res2, load2, _ = phase(out, certs, False, TCP_RUNS, 0)
        print(f"the same, the router's WAN NIC without TCP segmentation offload (QEMU host_tso4/6=off), {TCP_RUNS} "
              "interleaved runs, Mbit/s min / median / max:")
        med2 = print_tcp(res2, load2)
        ratio2 = med2["tunnel"] / med2["ipv4"]
        print(f"  target at least 0.9, both paths one packet per segment: {'MET' if ratio2 >= 0.9 else 'NOT MET'} "
              f"({ratio2:.3f})")
        print("figures:", json.dumps({
            "tunnel_mbps": round(med["tunnel"], 1), "ipv4_mbps": round(med["ipv4"], 1), "tcp_ratio": round(ratio, 4),
            "tunnel_pps": round(umed["tunnel"]),
            "ipv4_pps": round(umed["ipv4"]), "pps_ratio": round(umed["tunnel"] / umed["ipv4"], 4),
            "no_tso_tunnel_mbps": round(med2["tunnel"], 1), "no_tso_ipv4_mbps": round(med2["ipv4"], 1),
            "no_tso_tcp_ratio": round(med2["tunnel"] / med2["ipv4"], 4)}))
        print(f"wall time {time.monotonic() - t_start:.0f} s")
        return 0
    except Exception as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(certs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
