#!/usr/bin/env python3
"""xen/mkdomu (issue 12): one vif per LAN NIC. The single-LAN form (--lan-mac, --lan-bridge,
or neither) writes a WAN and one LAN vif, exactly what --lan MAC,BRIDGE writes for the same
values; two --lan write three vifs, WAN first, in the xl config and three <interface>s in
the libvirt XML (which validates with virt-xml-validate, where installed); conflicting or
malformed arguments are refused and nothing is written. usage: test_mkdomu.py REPO_DIR
"""
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
mkdomu = os.path.join(top, "xen", "mkdomu")
results = []
BASE = ["--kernel", "/srv/r/bzImage", "--rootfs", "/srv/r/rootfs.squashfs", "--data", "/srv/r/gw-data.img"]


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n      {detail}" if detail and not ok else ""), flush=True)


def run(out_dir, *args):
    return subprocess.run([mkdomu, "--name", "gw", *BASE, "--out-dir", out_dir, *args],
                          capture_output=True, text=True, timeout=30)


def vifs(out_dir):
    """(mac, bridge) of each vif of the xl config, in order."""
    text = open(os.path.join(out_dir, "gw.cfg")).read()
    m = re.search(r"^vif = (\[.*?\])$", text, re.M | re.S)
    return [tuple(kv.split("=", 1)[1] for kv in v.split(", ")) for v in ast.literal_eval(m.group(1))]


def interfaces(out_dir):
    """(mac, bridge) of each <interface> of the libvirt XML, in order."""
    dom = ET.parse(os.path.join(out_dir, "gw.xml")).getroot()
    return [(i.find("mac").get("address"), i.find("source").get("bridge"))
            for i in dom.find("devices").findall("interface")]


def main():
    work = tempfile.mkdtemp(prefix="mkdomu-test-")
    try:
        d = os.path.join(work, "default")
        r = run(d)
        want = [("52:54:00:12:34:01", "xenbr-wan"), ("52:54:00:12:34:02", "xenbr-lan")]
        check("no LAN option: a WAN and one LAN vif, the defaults", r.returncode == 0 and vifs(d) == want
              and interfaces(d) == want, r.stderr)

        single, lan = os.path.join(work, "single"), os.path.join(work, "lan")
        r1 = run(single, "--wan-mac", "00:16:3e:00:00:01", "--lan-mac", "00:16:3E:00:00:02", "--lan-bridge", "br-a")
        r2 = run(lan, "--wan-mac", "00:16:3e:00:00:01", "--lan", "00:16:3e:00:00:02,br-a")
        same = all(open(os.path.join(single, f)).read() == open(os.path.join(lan, f)).read()
                   for f in ("gw.cfg", "gw.xml")) if r1.returncode == r2.returncode == 0 else False
        check("--lan-mac/--lan-bridge (the single-LAN form) writes what one --lan writes", same, r1.stderr + r2.stderr)

        two = os.path.join(work, "two")
        r = run(two, "--wan-mac", "00:16:3e:00:00:01", "--lan", "00:16:3e:00:00:02,xenbr-lan",
                "--lan", "00:16:3e:00:00:03,xenbr-guest")
        want = [("00:16:3e:00:00:01", "xenbr-wan"), ("00:16:3e:00:00:02", "xenbr-lan"),
                ("00:16:3e:00:00:03", "xenbr-guest")]
        check("two --lan: three vifs in the xl config, WAN first, LANs in the order given",
              r.returncode == 0 and vifs(two) == want, r.stderr + (str(vifs(two)) if r.returncode == 0 else ""))
        check("two --lan: three <interface>s in the libvirt XML, in the same order",
              r.returncode == 0 and interfaces(two) == want, r.stderr)
        if shutil.which("virt-xml-validate"):
            v = subprocess.run(["virt-xml-validate", os.path.join(two, "gw.xml"), "domain"],
                               capture_output=True, text=True)
            check("the two-LAN libvirt XML validates (virt-xml-validate ... domain)", v.returncode == 0,
                  v.stdout + v.stderr)
        else:
            print("SKIP: virt-xml-validate not installed (libvirt-clients)")

        small = os.path.join(work, "small")
        r = run(small, "--memory", "32")
        check("--memory 32 (the smallest instance): memory = 32 in the xl config, 32 MiB in the libvirt XML",
              r.returncode == 0 and re.search(r"^memory = 32$", open(os.path.join(small, "gw.cfg")).read(), re.M)
              and ET.parse(os.path.join(small, "gw.xml")).getroot().find("memory").text == "32", r.stderr)

        for args, want in [
                (["--memory", "31"], "expected 32..65536 MiB"),
                (["--lan", "00:16:3e:00:00:02,br-a", "--lan-mac", "00:16:3e:00:00:05"], "exclude each other"),
                (["--lan", "00:16:3e:00:00:02,br-a", "--lan-bridge", "br-b"], "exclude each other"),
                (["--lan-mac", "00:16:3e:00:00:02", "--lan-mac", "00:16:3e:00:00:03"], "--lan-mac given 2 times"),
                (["--lan-bridge", "br-a", "--lan-bridge", "br-b"], "--lan-bridge given 2 times"),
                (["--lan", "00:16:3e:00:00:02,br-a", "--lan", "00:16:3e:00:00:02,br-b"],
                 "MAC 00:16:3e:00:00:02 is given to 2 NICs"),
                (["--lan", "52:54:00:12:34:01,br-a"], "MAC 52:54:00:12:34:01 is given to 2 NICs"),
                (["--lan", "00:16:3e:00:00:02,br-a", "--lan", "00:16:3e:00:00:03,br-a"],
                 "bridge br-a is given to 2 LAN NICs"),
                (["--lan", "00:16:3e:00:00:02,xenbr-wan"], "both the WAN and a LAN bridge"),
                (["--lan-bridge", "xenbr-wan"], "both the WAN and a LAN bridge"),
                (["--lan", "00:16:3e:00:00:02"], "expected MAC,BRIDGE"),
                (["--lan", "00:16:3e:00:00:02,br-a,br-b"], "expected MAC,BRIDGE"),
                (["--lan", "01:16:3e:00:00:02,br-a"], "multicast MAC"),
                (["--lan", "00:16:3e:00:00:02,br a"], "not a valid bridge name")]:
            bad = os.path.join(work, "bad")
            r = run(bad, *args)
            check(f"refused, nothing written: {' '.join(args)}",
                  r.returncode != 0 and want in r.stderr and not os.path.exists(bad), r.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
