#!/usr/bin/env python3
"""Power cuts during configuration changes: the image booted under QEMU, a loop inside it
applying and confirming two configurations in turn (netctl apply + netctl confirm), and QEMU
killed (SIGKILL: no shutdown, no sync, the guest's page cache lost) at a random moment, again
and again on the same data disk. After every cut the next boot must run a whole
configuration (the original, A or B, byte for byte; never torn or empty) that `netd --check`
accepts, with no trial left pending, the history's newest entry equal to it, no ext4 error,
and the data disk mounted read-write without anyone repairing it. At the end, after a clean
poweroff, `e2fsck -fn` finds the file system clean.

usage: test_powercut.py OUTDIR [CUTS]   (CUTS: default 50, or $POWERCUTS)
Ends with 'N passed, N failed' and prints the number of cuts and confirms.
"""
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    if not ok or VERBOSE:
        print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return bool(ok)


VERBOSE = False


def variants(original):
    """A and B: both change the firewall (a blocklist of a few KB, so a torn write would show),
    B opens a port as well."""
    a = original + "\n[firewall]\nblocklist = [\n" + "".join(
        f'  "198.18.{i // 256}.{i % 256}",\n' for i in range(0, 400, 2)) + "]\n"
    b = original + "\n# variant B\n[firewall]\nblocklist = [\n" + "".join(
        f'  "2001:db8:{0x1000 + i:x}::/48",\n' for i in range(300)) + "]\n" + \
        '[[firewall.open6]]\nhost = "2001:db8:7::80"\nport = 443\n'
    return a, b


# The same two files made inside the guest by its shell (the serial console drops characters
# of a long paste), from the router.conf there; variants() says what they must hold.
MAKE_VARIANTS = (r"""mkdir -p /data/test && {
  cat /data/etc/router.conf; echo; echo '[firewall]'; echo 'blocklist = [';
  i=0; while [ $i -lt 400 ]; do echo "  \"198.18.$((i / 256)).$((i % 256))\","; i=$((i + 2)); done; echo ']';
} > /data/test/a.conf && {
  cat /data/etc/router.conf; echo; echo '# variant B'; echo '[firewall]'; echo 'blocklist = [';
  i=0; while [ $i -lt 300 ]; do printf '  "2001:db8:%x::/48",\n' $((4096 + i)); i=$((i + 1)); done; echo ']';
  printf '[[firewall.open6]]\nhost = "2001:db8:7::80"\nport = 443\n';
} > /data/test/b.conf""").replace("\n", " ")   # one line: the console's continuation prompts would hide the markers


def main():
    global VERBOSE
    out = os.path.abspath(sys.argv[1])
    cuts = int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("POWERCUTS", "50"))
    seed = int(os.environ.get("POWERCUT_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print(f"power cuts: {cuts}, random seed {seed} (POWERCUT_SEED reproduces the moments)", flush=True)
    work = tempfile.mkdtemp(prefix="powercut.")
    disk = os.path.join(work, "data.img")
    shutil.copyfile(os.path.join(out, "data.img"), disk)
    md5 = lambda t: hashlib.md5(t.encode()).hexdigest()
    vm = rl.RouterVM(out, disk, log_path=os.path.join(work, "console-0.log"))
    first_rev = last_rev = None
    boot_times = []
    whole = {"original": 0, "A": 0, "B": 0}
    done = 0
    try:
        vm.start()
        vm.expect(r"netd: router ready at uptime", 120)
        vm.login()
        rc, original = vm.run("cat /data/etc/router.conf", check=True)
        a, b = variants(original)
        known = {md5(original): "original", md5(a): "A", md5(b): "B"}
        vm.run(MAKE_VARIANTS, check=True)
        rc, chk = vm.run("md5sum /data/test/a.conf /data/test/b.conf; netd --check /data/test/a.conf && "
                         "netd --check /data/test/b.conf && sync")
        VERBOSE = True
        check("the two configurations reached the guest whole and pass netd --check",
              rc == 0 and md5(a) in chk and md5(b) in chk, chk)
        VERBOSE = False
        rc, h = vm.run("netctl history")
        m = re.search(r"^\s+(\d+)\s", h.split("\n", 1)[1] if "\n" in h else "", re.M)
        first_rev = int(m.group(1)) if m else 0
        loop = ("(while :; do for v in a b; do netctl apply /data/test/$v.conf 600 >/dev/null 2>&1 && "
                "netctl confirm >/dev/null 2>&1; done; done) >/dev/null 2>&1 &")
        for cut in range(1, cuts + 1):
            vm.run(loop)
            delay = rng.uniform(0.3, 5.0)
            time.sleep(delay)
            vm.kill()
            vm = rl.RouterVM(out, disk, log_path=os.path.join(work, f"console-{cut}.log"))
            t0 = time.monotonic()
            vm.start()
            vm.expect(r"netd: router ready at uptime", 120)
            boot_times.append(time.monotonic() - t0)
            vm.login()
            boot = vm.buf
            rc, state = vm.run(
                "md5sum /data/etc/router.conf; netd --check /data/etc/router.conf >/dev/null && echo CHECK-OK; "
                "[ -e /data/state/pending.conf ] && echo PENDING-LEFT; dmesg | grep -c 'EXT4-fs error'; "
                "netctl history | sed -n 2p; ls /data/state/history | wc -l; "
                "for f in $(ls /data/state/history/r*.conf | tail -n 2); do netd --check $f >/dev/null || echo BAD $f; done")
            m = re.search(r"^([0-9a-f]{32})\s", state, re.M)
            which = known.get(m.group(1)) if m else None
            if which:
                whole[which] += 1
            rev = re.search(r"^\s+(\d+)\s+\S+ \S+\s+\S+\s+.*\(running\)$", state, re.M)
            ok = check(f"cut {cut}: router.conf is whole (original, A or B)", which, state) \
                & check(f"cut {cut}: netd --check passes on it", "CHECK-OK" in state, state) \
                & check(f"cut {cut}: no trial left pending", "PENDING-LEFT" not in state, state) \
                & check(f"cut {cut}: the history's newest entry is what runs", rev, state) \
                & check(f"cut {cut}: the newest history files pass netd --check", "BAD" not in state, state) \
                & check(f"cut {cut}: no ext4 error", re.search(r"^0$", state, re.M), state) \
                & check(f"cut {cut}: the data disk mounted read-write, no repair", "mounted read-write" in boot
                        and "WARNING: no data disk" not in boot and "NOT READY" not in boot, rl_tail(boot))
            if rev:
                last_rev = int(rev.group(1))
            print(f"cut {cut}: QEMU killed {delay:.2f} s into the loop; the next boot ran {which or 'SOMETHING ELSE'}"
                  f" (revision {rev.group(1) if rev else '?'})", flush=True)
            done += 1
            if not ok:
                print(f"(cut {cut} failed: console in {work}/console-{cut}.log)", flush=True)
        rc, chk = vm.run("for f in /data/state/history/r*.conf; do netd --check $f >/dev/null || echo BAD $f; done; "
                         "ls /data/state/history | wc -l")
        VERBOSE = True
        check("every file of the history passes netd --check", rc == 0 and "BAD" not in chk, chk)
        vm.poweroff()
        r = subprocess.run(["e2fsck", "-fn", disk], capture_output=True, text=True)
        check("after a clean poweroff, e2fsck -fn finds the data disk clean", r.returncode == 0,
              r.stdout[-800:] + r.stderr[-400:])
    except rl.BootError as e:
        VERBOSE = True
        check("no harness error", False, f"{e}\n{vm.console_tail()}")
    finally:
        vm.kill()
    confirms = (last_rev - first_rev) if (first_rev is not None and last_rev is not None) else 0
    if boot_times:
        bt = sorted(boot_times)
        print(f"figures: {done} power cuts; {confirms} configurations confirmed between them; the boot after "
              f"each ran: original {whole['original']}, A {whole['A']}, B {whole['B']}; QEMU start -> ready "
              f"min/median/max {bt[0]:.1f}/{bt[len(bt) // 2]:.1f}/{bt[-1]:.1f} s", flush=True)
    print(f"{results.count(True)} passed, {results.count(False)} failed", flush=True)
    if not all(results):
        print(f"(console logs in {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


def rl_tail(text, lines=30):
    return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
