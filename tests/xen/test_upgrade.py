#!/usr/bin/env python3
"""xen/upgrade against a stand-in for xl (tests/xen/fake-xl): every way an upgrade can end,
in seconds, without Xen (tests/xen/test_xen.py shows the two main ones on real Xen).

- kept: exit 0; the xl config and the libvirt XML name the new image (the XML still valid),
  INSTANCE.cfg.prev the old one, the data disk copied to DATA.pre-upgrade; with either way of
  reading the console (xenconsoled's log, xl console); with --no-data-snapshot, no copy;
- reverted (exit 1; config, XML and data disk back as they were, the previous image ready again):
  the new image says NOT READY after moving the data disk to a newer format (without the copy
  put back the previous image would refuse it; also with the data disk named by a symlink), hangs (--timeout), makes xl create fail,
  panics, restarts, goes away; the instance ignoring xl shutdown (xl destroy after
  --stop-timeout); interrupted by SIGTERM;
- not even that (exit 2): the previous image does not come up either;
- refused, nothing changed (exit 3): the current files as the new ones, a new file that is no
  kernel or no squashfs, a missing file, an unknown instance, a bad option or path, another
  upgrade of the instance running, xl create -n refusing the new config;
- the same kept and reverted cases with BusyBox's tools only (what the test's dom0 has), when a
  BusyBox binary is at hand.
usage: test_upgrade.py REPO_DIR
"""
import fcntl
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
upgrade = os.path.join(top, "xen", "upgrade")
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f"\n      {str(detail)[-3000:]}" if detail and not ok else ""),
          flush=True)
    return ok


class Host:
    """A dom0 in a directory: images, a data disk, the instance's config from xen/mkdomu, and
    the fake toolstack's state with the instance running the image in a/."""

    def __init__(self, root, current=("good", "good"), path_dirs=None, data_symlink=False):
        self.root = root
        self.state = os.path.join(root, "state")
        self.cfgdir = os.path.join(root, "etc-xen")
        self.data = os.path.join(root, "gw-data.img")
        os.makedirs(self.state)
        bindir = os.path.join(root, "bin")
        os.makedirs(bindir)
        os.symlink(os.path.join(top, "tests", "xen", "fake-xl"), os.path.join(bindir, "xl"))
        self.path = ":".join([bindir] + (path_dirs or [os.environ["PATH"]]))
        self.image("a", *current)
        with open(self.data + (".real" if data_symlink else ""), "w") as f:
            f.write("2\nthe data disk before the upgrade\n")
        if data_symlink:
            os.symlink(os.path.basename(self.data) + ".real", self.data)
        r = subprocess.run([os.path.join(top, "xen", "mkdomu"), "--name", "gw",
                            "--kernel", self.kernel("a"), "--rootfs", self.rootfs("a"), "--data", self.data,
                            "--out-dir", self.cfgdir], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(self.state, "domain"), "w") as f:
            f.write(f"1 gw {self.rootfs('a')} {self.data}\n")
        with open(os.path.join(self.state, "next"), "w") as f:
            f.write("2\n")
        self.before = {p: self.read(p) for p in (self.cfg, self.xml, self.data)}

    cfg = property(lambda self: os.path.join(self.cfgdir, "gw.cfg"))
    xml = property(lambda self: os.path.join(self.cfgdir, "gw.xml"))

    def kernel(self, d):
        return os.path.join(self.root, d, "bzImage")

    def rootfs(self, d):
        return os.path.join(self.root, d, "rootfs.squashfs")

    def image(self, d, behaviour, kernel_note="", kernel=None, rootfs=None):
        """An image in d/: a bzImage-looking kernel and a root image whose content tells the fake
        guest what to do (fake-xl)."""
        os.makedirs(os.path.join(self.root, d), exist_ok=True)
        with open(self.kernel(d), "wb") as f:
            f.write(kernel if kernel is not None else b"\0" * 514 + b"HdrS " + kernel_note.encode() + b"\n")
        with open(self.rootfs(d), "wb") as f:
            f.write(rootfs if rootfs is not None else b"hsqs " + behaviour.encode() + b"\n")

    @staticmethod
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    def running(self):
        """The fake domain: (domid, root image) or None."""
        try:
            with open(os.path.join(self.state, "domain")) as f:
                domid, _, rootfs, _ = f.read().split()
                return domid, rootfs
        except FileNotFoundError:
            return None

    def args(self, *extra, watch="log"):
        a = ["--config-dir", self.cfgdir, "--timeout", "10"]
        if watch == "log":
            a += ["--watch", "log", "--console-log", os.path.join(self.state, "console.log")]
        else:
            a += ["--watch", watch]
        return a + list(extra)

    def env(self):
        return dict(os.environ, PATH=self.path, FAKE_XL=self.state, TMPDIR=self.root)

    def run(self, *args, timeout=60):
        t = time.monotonic()
        r = subprocess.run(["bash", upgrade, *args], capture_output=True, text=True, timeout=timeout,
                           env=self.env(), stdin=subprocess.DEVNULL)
        r.seconds = time.monotonic() - t
        r.out = r.stdout + r.stderr
        return r

    def unchanged(self):
        """The config, the XML and the data disk as they were, no .prev / .pre-upgrade / temporary left."""
        same = all(self.read(p) == c for p, c in self.before.items())
        extra = [n for n in os.listdir(self.cfgdir) if n not in ("gw.cfg", "gw.xml", ".gw.upgrade-lock")]
        return same and not extra and not os.path.exists(self.data + ".pre-upgrade") and \
            not glob.glob(os.path.join(self.root, "upgrade-gw.*"))

    def reverted(self):
        """Back as before: config, XML and data disk; the previous image running."""
        same = all(self.read(p) == c for p, c in self.before.items())
        run = self.running()
        return same and run is not None and run[1] == self.rootfs("a") and \
            not os.path.exists(self.data + ".pre-upgrade") and not glob.glob(os.path.join(self.root, "upgrade-gw.*"))

    def cleanup(self):
        # The fake guests and console readers end with their domain; give them a moment.
        time.sleep(0.3)
        shutil.rmtree(self.root, ignore_errors=True)


def new_host(work, label, **kw):
    """A Host in a directory of its own (named by a number: paths stay plain)."""
    n = len(os.listdir(work))
    return Host(os.path.join(work, f"host{n}"), **kw)


def valid_xml(path):
    if not shutil.which("virt-xml-validate"):
        return True
    return subprocess.run(["virt-xml-validate", path, "domain"], capture_output=True).returncode == 0


def kept_case(work, label, watch="log", path_dirs=None, extra=()):
    h = new_host(work, label, path_dirs=path_dirs)
    h.image("b", "good")
    r = h.run(*h.args(*extra, watch=watch), "gw", h.kernel("b"), h.rootfs("b"))
    cfg = h.read(h.cfg).decode()
    xml = h.read(h.xml).decode()
    check(f"{label}: a new image that comes up is kept (exit 0, KEPT, ready after ... s)",
          r.returncode == 0 and "KEPT" in r.out and "ready after" in r.out, r.out)
    check(f"{label}: ... the xl config names the new kernel and root image; .prev keeps the old config",
          f'kernel = "{h.kernel("b")}"' in cfg and f"target={h.rootfs('b')}'" in cfg and
          h.read(h.cfg + ".prev") == h.before[h.cfg], cfg)
    check(f"{label}: ... so does the libvirt XML (still valid), .prev keeps the old one",
          f"<kernel>{h.kernel('b')}</kernel>" in xml and f'file="{h.rootfs("b")}"' in xml and valid_xml(h.xml) and
          h.read(h.xml + ".prev") == h.before[h.xml], xml)
    run = h.running()
    check(f"{label}: ... the instance runs the new image", run and run[1] == h.rootfs("b"), run)
    if "--no-data-snapshot" in extra:
        check(f"{label}: ... no copy of the data disk", not os.path.exists(h.data + ".pre-upgrade"), r.out)
    else:
        check(f"{label}: ... the data disk as it was is kept beside it (DATA.pre-upgrade)",
              os.path.exists(h.data + ".pre-upgrade") and h.read(h.data + ".pre-upgrade") == h.before[h.data], r.out)
    check(f"{label}: ... no temporary file left", not glob.glob(os.path.join(h.root, "upgrade-gw.*")) and
          not [n for n in os.listdir(h.cfgdir) if n.endswith((".new", ".tmp", ".back"))], os.listdir(h.cfgdir))
    h.cleanup()
    return r


def revert_case(work, label, behaviour, expect, kernel_note="", watch="log", extra=(), path_dirs=None):
    h = new_host(work, label, path_dirs=path_dirs)
    h.image("c", behaviour, kernel_note=kernel_note)
    r = h.run(*h.args(*extra, watch=watch), "gw", h.kernel("c"), h.rootfs("c"))
    check(f"{label}: exit 1, REVERTED, the reason named ({expect!r})",
          r.returncode == 1 and "REVERTED" in r.out and expect in r.out, r.out)
    check(f"{label}: ... config, XML and data disk as before; the previous image runs again", h.reverted(),
          r.out)
    h.cleanup()
    return r


def main():
    work = tempfile.mkdtemp(prefix="upgrade-test-")
    try:
        r = subprocess.run(["bash", upgrade, "--help"], capture_output=True, text=True)
        check("--help describes the steps and the exit status", r.returncode == 0 and "Exit status" in r.stdout and
              "xl shutdown -w" in r.stdout, r.stdout + r.stderr)

        kept_case(work, "kept (xenconsoled's log)")
        kept_case(work, "kept (xl console)", watch="console")
        kept_case(work, "kept (--no-data-snapshot)", extra=("--no-data-snapshot",))

        r = revert_case(work, "new image moves the data disk to format 3, then NOT READY", "migrate-broken",
                        "the console says: netd: NOT READY")
        check("... the previous image was ready again on the data disk put back (its netd would refuse format 3)",
              "data disk back as it was before the upgrade" in r.out and r.out.count("ready after") == 1, r.out)
        revert_case(work, "the same through xl console", "migrate-broken", "netd: NOT READY", watch="console")
        r = revert_case(work, "new image hangs", "hang", "not ready within 2 s", extra=("--timeout", "2"))
        check("... gave up after the timeout, not before", r.seconds >= 2, r.seconds)
        revert_case(work, "xl create fails", "good", "xl create failed", kernel_note="xl-refuses")
        revert_case(work, "kernel panic", "panic", "the console says: Kernel panic")
        revert_case(work, "the domain restarts (on_crash)", "restart", "the domain restarted")
        revert_case(work, "the domain goes away", "poweroff", "the domain went away")

        h = new_host(work, "data disk by a symlink", data_symlink=True)
        h.image("c", "migrate-broken")
        r = h.run(*h.args(), "gw", h.kernel("c"), h.rootfs("c"))
        check("the data disk named by a symlink: put back into the file, the symlink left as it was (exit 1)",
              r.returncode == 1 and os.path.islink(h.data) and h.read(h.data) == h.before[h.data] and
              not os.path.exists(h.data + ".real.pre-upgrade"), r.out)
        h.cleanup()

        h = new_host(work, "xl shutdown ignored", current=("no-shutdown", "good"))
        h.image("b", "good")
        r = h.run(*h.args("--stop-timeout", "1"), "gw", h.kernel("b"), h.rootfs("b"))
        check("xl shutdown ignored: xl destroy after --stop-timeout, then the upgrade goes on (exit 0)",
              r.returncode == 0 and "xl shutdown did not stop gw" in r.out and "xl destroy gw" in r.out, r.out)
        h.cleanup()

        h = new_host(work, "interrupted")
        h.image("c", "hang")
        p = subprocess.Popen(["bash", upgrade, *h.args("--timeout", "60"), "gw", h.kernel("c"), h.rootfs("c")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=h.env())
        end = time.monotonic() + 20
        log = os.path.join(h.state, "console.log")
        while time.monotonic() < end and not (os.path.exists(log) and "fake" in open(log).read()):
            time.sleep(0.1)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=30)[0]
        check("SIGTERM while the new image is watched: goes back (exit 1, interrupted)",
              p.returncode == 1 and "the new image failed: interrupted" in out and "REVERTED" in out, out)
        check("... config, XML and data disk as before; the previous image runs again", h.reverted(), out)
        h.cleanup()

        h = new_host(work, "revert fails", current=("hang", "good"))
        h.image("c", "hang")
        r = h.run(*h.args("--timeout", "1"), "gw", h.kernel("c"), h.rootfs("c"))
        check("the previous image does not come up either: exit 2, FAILED, what is left said",
              r.returncode == 2 and "FAILED: the previous image did not come up either" in r.out and
              "state:" in r.out, r.out)
        check("... the previous config is back all the same",
              h.read(h.cfg) == h.before[h.cfg] and h.read(h.data) == h.before[h.data], r.out)
        h.cleanup()

        # Refusals: nothing changed, the instance still running the image it ran.
        h = new_host(work, "refusals")
        h.image("b", "good")
        h.image("junk-rootfs", "", rootfs=b"not a squashfs\n")
        h.image("junk-kernel", "good", kernel=b"#!/bin/sh\n")
        h.image("dry", "good", kernel_note="dry-run-refuses")
        cases = [
            ("the current image as the new one", ("gw", h.kernel("a"), h.rootfs("a")), "is the instance's current"),
            ("the current kernel through a symlink", ("gw", os.path.join(h.root, "a-link", "bzImage"), h.rootfs("b")),
             "is the instance's current kernel"),
            ("a root image that is no squashfs", ("gw", h.kernel("b"), h.rootfs("junk-rootfs")), "not a squashfs"),
            ("a kernel that is no kernel", ("gw", h.kernel("junk-kernel"), h.rootfs("b")), "is not a kernel"),
            ("a missing file", ("gw", h.kernel("b"), os.path.join(h.root, "nothing")), "not a readable"),
            ("an unknown instance", ("gw2", h.kernel("b"), h.rootfs("b")), "no xl config"),
            ("a relative path", ("gw", "b/bzImage", h.rootfs("b")), "expected an absolute path"),
            ("a path with a comma", ("gw", h.kernel("b") + ",x", h.rootfs("b")), "expected an absolute path"),
            ("a bad --timeout", ("--timeout", "soon", "gw", h.kernel("b"), h.rootfs("b")), "--timeout soon"),
            ("an unknown option", ("--force", "gw", h.kernel("b"), h.rootfs("b")), "unknown option --force"),
            ("two arguments", ("gw", h.kernel("b")), "expected INSTANCE NEW_KERNEL NEW_ROOTFS"),
            ("xl create -n refuses the new config", ("gw", h.kernel("dry"), h.rootfs("b")),
             "xl create -n refuses the new config"),
        ]
        os.symlink(os.path.join(h.root, "a"), os.path.join(h.root, "a-link"))
        for label, a, expect in cases:
            r = h.run(*h.args(), *a)
            check(f"refused, nothing changed (exit 3): {label}",
                  r.returncode == 3 and expect in r.out and "nothing was changed" in r.out and h.unchanged() and
                  h.running() == ("1", h.rootfs("a")), r.out)
        with open(os.path.join(h.cfgdir, ".gw.upgrade-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            r = h.run(*h.args(), "gw", h.kernel("b"), h.rootfs("b"))
        check("refused, nothing changed (exit 3): another xen/upgrade of the instance running",
              r.returncode == 3 and "another xen/upgrade of gw is running" in r.out and h.unchanged(), r.out)
        h.cleanup()

        # dom0 has BusyBox's tools, not coreutils: the same with those alone (plus bash and flock).
        bb = shutil.which("busybox") or next(iter(sorted(glob.glob(os.path.join(
            os.environ.get("ROUTER_CACHE", os.path.expanduser("~/.cache/v6router")),
            "unpacked", "busybox-static_*", "bin", "busybox")))), None)
        if bb:
            bbdir = os.path.join(work, "busybox-bin")
            os.makedirs(bbdir)
            applets = subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split()
            for a in applets:
                if a not in ("busybox", "[", "[["):
                    os.symlink(bb, os.path.join(bbdir, a))
            for tool in ("bash", "flock"):
                os.symlink(shutil.which(tool), os.path.join(bbdir, tool))
            kept_case(work, "BusyBox tools: kept (xl console)", watch="console", path_dirs=[bbdir])
            revert_case(work, "BusyBox tools: data disk moved, NOT READY", "migrate-broken", "netd: NOT READY",
                        path_dirs=[bbdir])
        else:
            print("NOTE: no BusyBox binary here: the BusyBox-only runs are left out (the Xen test runs them in dom0)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
