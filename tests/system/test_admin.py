#!/usr/bin/env python3
"""Safe remote administration, in the booted image, over SSH from a LAN client:

  - `netctl apply` of a configuration that moves the router's LAN address, which cuts the
    admin's own session: after the deadline the previous configuration is back by itself and
    SSH to the old address works again; nothing was written to router.conf or the history;
  - the same apply, then `netctl confirm` from a new session on the new address: kept after the
    deadline, in router.conf, and in the history with the SSH key's comment;
  - `netctl rollback 1` (a trial again), and QEMU killed during that trial: the next boot runs
    the last confirmed configuration and says it dropped the trial;
  - rollback confirmed; `netctl history` and `netctl diff` show it.

usage: test_admin.py OUTDIR        Ends with 'N passed, N failed'.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import routerlab as rl  # noqa: E402

results = []
# Whether router.conf holds the moved configuration (BusyBox has no cmp here).
SAME = '[ "$(md5sum < /data/etc/router.conf)" = "$(md5sum < /tmp/moved.conf)" ] && echo SAME; true'
DEADLINE = 30   # seconds: the trial's confirm deadline in this test (default 120)


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def main():
    out = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="admintest.")
    disk = os.path.join(work, "data.img")
    shutil.copyfile(os.path.join(out, "data.img"), disk)
    key = os.path.join(work, "admin_key")
    shutil.copyfile(os.path.join(out, "admin_key"), key)
    os.chmod(key, 0o600)
    lab = rl.Lab(f"adm{os.getpid() % 10000}").create()
    ns = lab.lan
    # The client holds an address in the old LAN and one in the new: it can reach either.
    rl.sh("ip", "addr", "add", "192.168.7.50/24", "dev", "eth0", ns=ns)
    rl.sh("ip", "addr", "add", "192.168.9.50/24", "dev", "eth0", ns=ns)
    ssh_base = ["ip", "netns", "exec", ns, "ssh", "-i", key, "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={work}/known_hosts", "-o", "BatchMode=yes", "-o", "ConnectTimeout=4"]

    def ssh(addr, command, timeout=30):
        try:
            return subprocess.run(ssh_base + [f"root@{addr}", command], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124, e.stdout or "", "timed out")

    def ssh_works(addr):
        return ssh(addr, "true", timeout=10).returncode == 0

    def wait_ssh(addr, seconds):
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if ssh_works(addr):
                return time.monotonic() - t0
            time.sleep(1)
        return None

    vm = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console.log"))
    try:
        vm.start()
        vm.expect(r"netd: router ready at uptime", 120)
        vm.login()
        check("SSH to the router's LAN address 192.168.7.1", wait_ssh("192.168.7.1", 60) is not None)
        r = ssh("192.168.7.1", "netctl history")
        check("the history holds the boot's configuration as revision 1",
              re.search(r"^\s+1\s+\S+ \S+\s+file\s+boot\s+\(running\)$", r.stdout, re.M), r.stdout + r.stderr)
        ssh("192.168.7.1", "sed 's/192\\.168\\.7\\./192.168.9./g' /data/etc/router.conf > /tmp/moved.conf")

        # --- 1. apply, the session is cut, nobody confirms: back by itself ---
        session = subprocess.Popen(ssh_base + ["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
                                               "root@192.168.7.1", f"netctl apply /tmp/moved.conf {DEADLINE}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        applied_at = time.monotonic()
        time.sleep(4)
        check("the apply moved the LAN address: SSH to 192.168.7.1 no longer works", not ssh_works("192.168.7.1"))
        r = ssh("192.168.9.1", "netctl status")
        check("the router answers on 192.168.9.1, with the trial in its status",
              r.returncode == 0 and re.search(r"^trial:\s+apply by example-admin: \d+ s left", r.stdout, re.M),
              r.stdout + r.stderr)
        back = wait_ssh("192.168.7.1", DEADLINE + 40)
        check(f"without a confirm, SSH to 192.168.7.1 works again after the {DEADLINE} s deadline",
              back is not None, vm.console_tail(30))
        if back is not None:
            print(f"figures: apply -> old address reachable again after {time.monotonic() - applied_at:.1f} s "
                  f"(deadline {DEADLINE} s)", flush=True)
        try:
            o, e = session.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            session.kill()
            o, e = session.communicate()
        print(f"(the cut session printed: {o.strip()[:300]!r}, ssh: {e.strip()[-200:]!r})", flush=True)
        r = ssh("192.168.7.1", "netctl history; " + SAME)
        check("nothing was kept: no revision 2, router.conf unchanged",
              r.returncode == 0 and not re.search(r"^\s+2\s", r.stdout, re.M) and "SAME" not in r.stdout,
              r.stdout + r.stderr)
        rc, log = vm.run("logread | grep 'config:' | tail -n 5")
        check("the log says why it went back", "not confirmed within" in log, log)

        # --- 2. apply, confirm from a new session: kept past the deadline ---
        session = subprocess.Popen(ssh_base + ["root@192.168.7.1", f"netctl apply /tmp/moved.conf {DEADLINE}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        r = ssh("192.168.9.1", "netctl confirm")
        check("netctl confirm from a new session on 192.168.9.1",
              r.returncode == 0 and r.stdout.strip() == "kept: revision 2 (apply by example-admin)",
              r.stdout + r.stderr)
        session.kill()
        time.sleep(DEADLINE + 2)
        r = ssh("192.168.9.1", "netctl history; " + SAME)
        check("kept after the deadline: router.conf is the new configuration, revision 2 is running",
              r.returncode == 0 and "SAME" in r.stdout and
              re.search(r"^\s+2\s+\S+ \S+\s+example-admin\s+apply\s+\(running\)$", r.stdout, re.M),
              r.stdout + r.stderr)
        check("and 192.168.7.1 stays gone", not ssh_works("192.168.7.1"))

        # --- 3. a rollback on trial, and the guest reset during it ---
        session = subprocess.Popen(ssh_base + ["root@192.168.9.1", "netctl rollback 1 600"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = wait_ssh("192.168.7.1", 20) is not None
        check("netctl rollback 1 moves the address back (on trial)", ok)
        session.kill()
        vm.kill()   # the reset: no shutdown, no sync
        vm = rl.RouterVM(out, disk, lab=lab, log_path=os.path.join(work, "console2.log"))
        vm.start()
        vm.expect(r"netd: router ready at uptime", 120)
        vm.login()
        ok = wait_ssh("192.168.9.1", 60) is not None
        check("after the reset the router boots the last confirmed configuration (192.168.9.1)", ok)
        check("and not the unconfirmed trial (192.168.7.1)", not ssh_works("192.168.7.1"))
        rc, log = vm.run("logread | grep 'dropped the unconfirmed trial'")
        check("the log says it dropped the trial", "rollback to 1 by example-admin" in log, log)

        # --- 4. rollback confirmed; history and diff ---
        session = subprocess.Popen(ssh_base + ["root@192.168.9.1", "netctl rollback 1 60"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ssh("192.168.7.1", 20)
        r = ssh("192.168.7.1", "netctl confirm && netctl history && netctl diff 2 3")
        session.kill()
        print(r.stdout, flush=True)
        check("rollback confirmed: revision 3 'rollback to 1' is running",
              re.search(r"^\s+3\s+\S+ \S+\s+example-admin\s+rollback to 1\s+\(running\)$", r.stdout, re.M),
              r.stdout + r.stderr)
        check("netctl diff 2 3 shows the address going back",
              '-ipv4 = "192.168.9.1/24"' in r.stdout and '+ipv4 = "192.168.7.1/24"' in r.stdout, r.stdout)
        rc, chk = vm.run("for f in /data/state/history/r*.conf; do netd --check $f >/dev/null || echo BAD $f; done; "
                         "ls /data/state/history")
        check("every history file passes netd --check", rc == 0 and "BAD" not in chk and "r000003.conf" in chk, chk)
    except rl.BootError as e:
        check("no harness error", False, f"{e}\n{vm.console_tail()}")
    finally:
        vm.kill()
        lab.destroy()
    print(f"{results.count(True)} passed, {results.count(False)} failed", flush=True)
    if not all(results):
        print(f"(console logs in {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
