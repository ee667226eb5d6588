#!/usr/bin/env python3
"""Forwarding through the router image with its own kernel (issue 14): the image booted under
QEMU (software emulation: the figures are the guest's cost per packet, far below a real NIC's),
its WAN and LAN NICs wired to an ISP and a LAN client namespace; iperf3 TCP from the client to
the ISP side, 3 s, through
  - no ruleset at all (forwarding only; the ISP side routes the LAN back, no NAT),
  - netd's ruleset without its flowtable (`flow_offload = false`: every packet through the chains),
  - netd's ruleset as loaded (the default: established flows in the flowtable),
5 runs of each, interleaved; min/median/max and the ratio of the medians to no ruleset. The
host's own kernel may have no flowtables (tests/bench/firewall_bench.py then measures without);
the image's kernel has them (kernel-config: NF_FLOW_TABLE).

usage: firewall_vm_bench.py OUTDIR
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402

RUNS = 5


def main():
    out = os.path.abspath(sys.argv[1])
    if not shutil.which("iperf3"):
        raise SystemExit("iperf3 is not installed (image/install-deps installs it)")
    work = tempfile.mkdtemp(prefix="fwvmbench.")
    disk = os.path.join(work, "data.img")
    shutil.copyfile(os.path.join(out, "data.img"), disk)
    lab = rl.Lab(f"fwvm{os.getpid() % 10000}").create()
    vm = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console.log"), mem=384)
    server = None
    try:
        vm.start()
        vm.expect(r"netd: router ready at uptime", 180)
        vm.login()
        # The WAN address by hand (no DHCP server here); netd's ruleset masquerades to it.
        vm.run("ip addr add 203.0.113.10/24 dev eth0 && ip route add default via 203.0.113.1", check=True)
        rl.sh("ip", "addr", "add", "203.0.113.1/24", "dev", "eth0", ns=lab.isp)
        rl.sh("ip", "route", "add", "192.168.7.0/24", "via", "203.0.113.10", ns=lab.isp)
        rl.sh("ip", "addr", "add", "192.168.7.50/24", "dev", "eth0", ns=lab.lan)
        rl.sh("ip", "route", "add", "default", "via", "192.168.7.1", ns=lab.lan)
        # netd's ruleset as loaded, and the same without the flowtable and its rule.
        rc, listing = vm.run("nft list ruleset > /tmp/flow.nft && "
                             "sed -e '/flowtable ft {/,/^.}$/d' -e '/flow add @ft/d' /tmp/flow.nft > /tmp/noflow.nft && "
                             "grep -c 'flow' /tmp/flow.nft /tmp/noflow.nft; grep -A3 'flowtable ft' /tmp/flow.nft",
                             check=True)
        print("netd's ruleset in the image:", " ".join(listing.split()))
        if "flowtable ft" not in listing or "/tmp/noflow.nft:0" not in listing:
            raise rl.BootError("netd's ruleset has no flowtable in the image: " + listing)
        server = subprocess.Popen(["ip", "netns", "exec", lab.isp, "iperf3", "-s"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

        def measure():
            r = rl.sh("iperf3", "-c", "203.0.113.1", "-t", "3", "-J", ns=lab.lan)
            return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9

        kinds = (("plain", "no ruleset at all:", "nft flush ruleset"),
                 ("noflow", "netd's ruleset, no flowtable:", "nft flush ruleset && nft -f /tmp/noflow.nft"),
                 ("flow", "netd's ruleset with the flowtable (default):", "nft flush ruleset && nft -f /tmp/flow.nft"))
        res = {k: [] for k, _, _ in kinds}
        for _ in range(RUNS):
            for k, _, cmd in kinds:
                vm.run(cmd, check=True)
                res[k].append(measure())
        rc, stats = vm.run("cat /proc/net/stat/nf_flowtable 2>/dev/null | head -3; nft list flowtables")
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"forwarding LAN -> WAN through the image (QEMU, software emulation), TCP, iperf3 3 s, {RUNS} "
              f"interleaved runs, Gbit/s, min / median / max, ratio of the medians to no ruleset:")
        for k, label, _ in kinds:
            xs = res[k]
            print(f"  {label:46s} {min(xs):6.3f} {med[k]:6.3f} {max(xs):6.3f}  {med[k] / med['plain']:.3f}  "
                  f"{[round(x, 3) for x in xs]}")
        ratio = med["flow"] / med["plain"]
        print(f"  target at least 0.95 with the full ruleset: {'MET' if ratio >= 0.95 else 'NOT MET'} ({ratio:.3f}; "
              f"without the flowtable {med['noflow'] / med['plain']:.3f})")
        print("figures:", json.dumps({"vm_plain_gbps": round(med["plain"], 4), "vm_noflow_gbps": round(med["noflow"], 4),
                                      "vm_flow_gbps": round(med["flow"], 4), "vm_ratio": round(ratio, 4),
                                      "vm_ratio_noflow": round(med["noflow"] / med["plain"], 4)}))
        vm.poweroff()
        return 0
    except Exception as e:
        print(f"FAIL: {e}\n{vm.console_tail(30)}")
        return 1
    finally:
        if server:
            server.kill()
        vm.kill()
        lab.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
