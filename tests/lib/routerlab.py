"""System-test harness: boots the router image under QEMU (software emulation) and talks to
its serial console; optionally wires its two NICs to a simulated ISP and a simulated LAN
client in network namespaces created here (never a real network).

  lab = Lab("t1"); lab.create()             # namespaces t1-wire, t1-isp, t1-lan
  vm = RouterVM(artifacts, data_img, lab=lab, log_path="console.log")
  vm.start(); vm.login(); rc, out = vm.run("uname -a"); vm.poweroff()

Standard library only. Every wait is bounded by a timeout; on failure the caller prints
vm.console_tail().
"""
import os
import re
import shutil
import subprocess
import threading
import time

WAN_MAC = "52:54:00:12:34:01"
LAN_MAC = "52:54:00:12:34:02"


class BootError(Exception):
    pass


def sh(*cmd, check=True, ns=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


class Lab:
    """Three namespaces: NAME-wire holds QEMU's tap devices bridged to veths whose other ends
    are eth0 in NAME-isp (the router's WAN side) and eth0 in NAME-lan (a LAN client)."""

    def __init__(self, name):
        self.name = name
        self.wire, self.isp, self.lan = f"{name}-wire", f"{name}-isp", f"{name}-lan"

    def create(self):
        self.destroy()
        for ns in (self.wire, self.isp, self.lan):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        for side, peer_ns in (("wan", self.isp), ("lan", self.lan)):
            sh("ip", "tuntap", "add", "dev", f"tap-{side}", "mode", "tap", ns=self.wire)
            sh("ip", "link", "add", f"br-{side}", "type", "bridge", ns=self.wire)
            sh("ip", "link", "add", f"v-{side}", "type", "veth", "peer", "name", "eth0",
               "netns", peer_ns, ns=self.wire)
            for dev in (f"tap-{side}", f"v-{side}"):
                sh("ip", "link", "set", dev, "master", f"br-{side}", ns=self.wire)
                sh("ip", "link", "set", dev, "up", ns=self.wire)
            sh("ip", "link", "set", f"br-{side}", "up", ns=self.wire)
            sh("ip", "link", "set", "eth0", "up", ns=peer_ns)
        return self

    def destroy(self):
        for ns in (self.wire, self.isp, self.lan):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def qemu_prefix(self):
        return ["ip", "netns", "exec", self.wire]

    def netdevs(self):
        return ["-netdev", "tap,id=wan,ifname=tap-wan,script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=wan,mac={WAN_MAC}",
                "-netdev", "tap,id=lan,ifname=tap-lan,script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=lan,mac={LAN_MAC}"]


def qemu_command(artifacts, data_img, lab=None, mem=256, serial="stdio"):
    """The QEMU command line that boots the image: our kernel, the squashfs root read-only,
    the data disk read-write, a virtio RNG so first-boot key generation never stalls."""
    append = "root=/dev/vda ro rootfstype=squashfs console=ttyS0,115200 panic=-1"
    cmd = (lab.qemu_prefix() if lab else []) + [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64,+rdrand", "-m", str(mem),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", os.path.join(artifacts, "bzImage"), "-append", append,
        "-drive", f"file={os.path.join(artifacts, 'rootfs.squashfs')},if=virtio,format=raw,readonly=on",
        "-device", "virtio-rng-pci",
        "-serial", serial,
    ]
    if data_img:
        cmd += ["-drive", f"file={data_img},if=virtio,format=raw"]
    cmd += lab.netdevs() if lab else isolated_netdevs()
    return cmd


def isolated_netdevs():
    """The router's two NICs (same MACs as in a lab) on QEMU-internal hubs wired to nothing."""
    return ["-netdev", "hubport,id=wan,hubid=1", "-device", f"virtio-net-pci,netdev=wan,mac={WAN_MAC}",
            "-netdev", "hubport,id=lan,hubid=2", "-device", f"virtio-net-pci,netdev=lan,mac={LAN_MAC}"]


class RouterVM:
    def __init__(self, artifacts, data_img, lab=None, log_path=None, mem=256):
        self.cmd = qemu_command(artifacts, data_img, lab=lab, mem=mem)
        self.log_path = log_path
        self.proc = None
        self.buf = ""
        self.pos = 0            # expect() consumes the console output up to here
        self.cond = threading.Condition()
        self.seq = 0
        self.started_at = None

    # --- process ---
    def start(self):
        self.log = open(self.log_path, "w") if self.log_path else None
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, bufsize=0)
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _reader(self):
        while True:
            data = self.proc.stdout.read(4096)
            if not data:
                break
            text = data.decode("utf-8", "replace").replace("\r", "")
            if self.log:
                self.log.write(text)
                self.log.flush()
            with self.cond:
                self.buf += text
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)

    def console_tail(self, lines=80):
        return "\n".join(self.buf.splitlines()[-lines:])

    # --- console ---
    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def expect(self, pattern, timeout):
        """Wait for a regex in the console output after the last match; returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BootError(f"timed out after {timeout} s waiting for /{pattern}/")
                if not self.alive():
                    raise BootError(f"QEMU exited (status {self.proc.poll()}) while waiting for /{pattern}/")
                self.cond.wait(min(left, 1.0))

    def login(self, timeout=120, password=None):
        """Log in as root on the console; `password` when the data disk set one
        (mkdata --console-password-hash)."""
        # Console messages (netd's ready line) may come after the prompt: ask for a fresh one.
        self.send("\n")
        self.expect(r"login: ", timeout)
        self.send("root\n")
        if password is not None:
            self.expect(r"Password: ", 30)
            self.send(password + "\n")
        self.expect(r"root@[^ ]*# ", 30)
        # No echo and no kernel chatter on the console: command output stays parseable.
        self.run("stty -echo; dmesg -n 1; PS1=", timeout=30)

    def run(self, command, timeout=60, check=False):
        """Run a shell command on the console; returns (exit status, output)."""
        self.seq += 1
        n = self.seq
        # stty again each time: BusyBox init resets the console's modes when it respawns a
        # process on it (netd), and echo would come back.
        self.send(f"stty -echo; echo __B{n}__; {command}\necho __E{n}_$?__\n")
        self.expect(rf"^__B{n}__\n", timeout)
        start = self.pos
        m = self.expect(rf"__E{n}_(\d+)__", timeout)
        # Should the tty have echoed our own marker line, it is not output.
        out = re.sub(r"[^\n]*__E\d+_\$\?__[^\n]*\n?", "", self.buf[start:m.start()])
        rc = int(m.group(1))
        if check and rc != 0:
            raise BootError(f"'{command}' exited {rc}:\n{out}")
        return rc, out

    def poweroff(self, timeout=60):
        self.send("poweroff\n")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BootError(f"guest did not power off within {timeout} s")
        # Let the reader drain what QEMU printed last.
        time.sleep(0.2)
        return self.proc.returncode


def guest_uptime(text, pattern):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def need(tool):
    if shutil.which(tool) is None:
        raise BootError(f"{tool} is not installed")
