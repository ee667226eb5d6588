#!/usr/bin/env python3
"""netd figures in the booted image (printed, not asserted against targets):
stripped binary sizes of netd and netctl, time from netd start to all children started,
netd's resident memory in steady state, and the same after a reload.

usage: netd_figures.py OUTDIR
"""
import os
import re
import sys
import tempfile
import shutil
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402


def main():
    out = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="netdbench.")
    disk = os.path.join(work, "data.img")
    shutil.copyfile(os.path.join(out, "data.img"), disk)
    vm = rl.RouterVM(out, disk, log_path=os.path.join(work, "console.log"))
    vm.start()
    try:
        m = vm.expect(r"netd: router ready at uptime ([\d.]+) s \(services started (\d+) ms after netd started\)", 120)
        vm.login()
        time.sleep(5)  # steady state
        _, sizes = vm.run("stat -c '%s %n' /usr/sbin/netd /usr/sbin/netctl")
        _, rss = vm.run("grep -E 'VmRSS|VmHWM' /proc/$(pidof netd)/status | tr -s ' \\t' ' '")
        vm.run("for i in 1 2 3 4 5 6 7 8 9 10; do netctl reload >/dev/null; netctl status --json >/dev/null; done")
        _, rss2 = vm.run("grep VmRSS /proc/$(pidof netd)/status | tr -s ' \\t' ' '")
        vm.poweroff()
    except rl.BootError as e:
        print(f"netd_figures: {e}\n{vm.console_tail(40)}")
        vm.kill()
        return 1
    print("figures: netd")
    for line in sizes.strip().splitlines():
        size, path = line.split()
        print(f"  stripped size of {path:17s} {int(size) / 1024:8.1f} KiB")
    print(f"  netd start -> all five children started   {int(m.group(2)):5d} ms (guest uptime at ready {m.group(1)} s, TCG)")
    for line in rss.strip().splitlines():
        print(f"  {line.strip()} (steady state)")
    print(f"  {rss2.strip()} (after 10 reloads and 10 status requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
