#!/usr/bin/env python3
"""Reload figures (printed, not asserted against targets): from `netctl reload` to done, and
how many operations the reconciler made, for

  - an unchanged reload (the target is zero operations);
  - a one-key change that only the firewall sees ([firewall] blocklist: one nft transaction);
  - a one-key change that one daemon sees ([dns] cache_size: dnsmasq.conf rewritten and
    dnsmasq restarted);
  - a one-key change on the LAN ([lan] ipv6_prefixes: one address, radvd and sshd).

Run in a network namespace with the image's own userland (tests/lib/routerns.py): the real
kernel, netd, udhcpc and the daemons, no emulation. Each case alternates between two files,
N times; min / median / max of the wall time netctl sees and of netd's own figure ("in X ms"),
and the operation counts netd reports.

usage: reload_bench.py OUT_DIR [RUNS]      Ends with 'N passed, N failed' (a figure that
could not be obtained fails).
"""
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerns as rn  # noqa: E402

BASE = """
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]
domain = "home.arpa"
[wan]
mac = "52:54:00:12:34:01"
[dns]
upstream = ["192.0.2.53"]
cache_size = 1000
[firewall]
blocklist = ["198.51.100.66"]
"""

CASES = [
    ("unchanged reload", None),
    ("[firewall] blocklist entry", ("\"198.51.100.66\"", "\"198.51.100.66\", \"192.0.2.99\"")),
    ("[dns] cache_size", ("cache_size = 1000", "cache_size = 2000")),
    ("[lan] ipv6_prefixes entry", ("[\"2001:db8:7::/64\"]", "[\"2001:db8:7::/64\", \"2001:db8:8::/64\"]")),
]

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)


def spread(v):
    return f"{min(v):.1f} / {statistics.median(v):.1f} / {max(v):.1f}"


def main():
    out = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    r = rn.RouterNs(os.path.join(out, "rootfs.stage"), f"rb{os.getpid() % 10000}", BASE)
    conf = os.path.join(r.work, "data/etc/router.conf")
    try:
        r.create()
        r.start_dhcp()
        r.start_netd()
        r.wan_bound()
        rows = []
        for name, change in CASES:
            texts = [BASE] if change is None else [BASE.replace(change[0], change[1]), BASE]
            wall, own, ops = [], [], []
            for i in range(runs):
                with open(conf, "w") as f:
                    f.write(texts[i % len(texts)])
                t0 = time.monotonic()
                res = r.netctl("reload", check=False)
                wall.append((time.monotonic() - t0) * 1000)
                m = re.search(r"applied: (\d+) operations \((\d+) kernel, (\d+) services\) in ([\d.]+) ms", res.stdout)
                if res.returncode != 0 or not m:
                    check(f"{name}: reload {i} answered", False, res.stdout + res.stderr)
                    break
                own.append(float(m.group(4)))
                ops.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
            else:
                rows.append((name, wall, own, ops))
                check(f"{name}: {runs} reloads", True)
        if rows:
            unchanged = rows[0][3]
            check("an unchanged reload makes zero operations", all(o == (0, 0, 0) for o in unchanged), unchanged)
        print()
        print(f"{'reload (' + str(runs) + ' runs)':34} {'netctl wall ms':>22} {'netd ms':>22}  operations (kernel, services)")
        print(f"{'':34} {'min / median / max':>22} {'min / median / max':>22}")
        for name, wall, own, ops in rows:
            kinds = sorted(set(ops))
            print(f"{name:34} {spread(wall):>22} {spread(own):>22}  " +
                  ", ".join(f"{t} ({k}, {s})" for t, k, s in kinds))
        print()
        print("Each change alternates between two files, so half the runs apply it and half take it back.")
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(f"benchmark ran to the end ({e})", False)
        print(r.log()[-3000:])
    finally:
        r.cleanup()
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
