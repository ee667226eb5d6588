"""System-test harness: boots the router image under QEMU (software emulation) and talks to
its serial console; optionally wires its NICs to a simulated ISP and simulated LAN clients in
network namespaces created here (never a real network).

  lab = Lab("t1"); lab.create()             # namespaces t1-wire, t1-isp, t1-lan
  vm = RouterVM(artifacts, data_img, lab=lab, log_path="console.log")
  vm.start(); vm.login(); rc, out = vm.run("uname -a"); vm.poweroff()

  lab = Lab("t2", lans=2).create()          # a second LAN NIC (LAN2_MAC), its client in t2-lan2
  ns = lab.add_host("lab", lan=2, vlan=30)  # t2-lab: another host on that wire, on VLAN 30

Standard library only. Every wait is bounded by a timeout; on failure the caller prints
vm.console_tail().
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

WAN_MAC = "52:54:00:12:34:01"
LAN_MAC = "52:54:00:12:34:02"
LAN2_MAC = "52:54:00:12:34:03"
# The LAN NICs in the order QEMU presents them: LAN NIC n has LAN_MACS[n - 1].
LAN_MACS = (LAN_MAC, LAN2_MAC, "52:54:00:12:34:04", "52:54:00:12:34:05")


class BootError(Exception):
    pass


def sh(*cmd, check=True, ns=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


class Lab:
    """Namespaces: NAME-wire holds QEMU's tap devices bridged to veths whose other ends are eth0
    in NAME-isp (the router's WAN side) and eth0 in NAME-lan (a LAN client). With lans=N the
    router gets N LAN NICs (LAN_MACS): NIC n > 1 on tap-lanN / br-lanN, its client in
    NAME-lanN. add_host() puts more namespaces on a LAN NIC's wire."""

    def __init__(self, name, lans=1):
        if not 1 <= lans <= len(LAN_MACS):
            raise ValueError(f"lans must be 1..{len(LAN_MACS)}")
        self.name = name
        self.wire, self.isp, self.lan = f"{name}-wire", f"{name}-isp", f"{name}-lan"
        # Side n (tap-SIDE, br-SIDE, v-SIDE) and its client namespace: "lan", "lan2", ...
        self.lan_sides = ["lan"] + [f"lan{n}" for n in range(2, lans + 1)]
        self.lan_nss = [f"{name}-{side}" for side in self.lan_sides]
        self.hosts = []          # namespaces made by add_host()
        self._bpf_dir = None

    def namespaces(self):
        return [self.wire, self.isp] + self.lan_nss + self.hosts

    def create(self):
        self.destroy()
        for ns in [self.wire, self.isp] + self.lan_nss:
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        for side, peer_ns in [("wan", self.isp)] + list(zip(self.lan_sides, self.lan_nss)):
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

    def add_host(self, name, lan=1, vlan=None, sysctls=()):
        """Another namespace, NAME-name, whose eth0 is on LAN NIC `lan`'s wire (the broadcast
        domain of that NIC and its client). `sysctls` ("net.ipv6.conf.eth0.accept_ra=0", ...)
        are set before eth0 comes up. With vlan=N, eth0 sends and receives only 802.1Q frames
        of VLAN N, as a host on a VLAN N access port of a switch whose trunk is the router's
        NIC: every frame it sends leaves tagged, tagged frames of N arrive untagged, all others
        are dropped. (A tc BPF program does the tagging: the build machines' kernels have
        neither 802.1Q VLAN devices nor VLAN-filtering bridges.) Returns the namespace."""
        ns = f"{self.name}-{name}"
        side = self.lan_sides[lan - 1]
        _del_ns(ns)
        self.hosts.append(ns)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0", "netns", ns, ns=self.wire)
        sh("ip", "link", "set", f"v-{name}", "master", f"br-{side}", ns=self.wire)
        sh("ip", "link", "set", f"v-{name}", "up", ns=self.wire)
        for s in sysctls:
            sh("sysctl", "-qw", s, ns=ns)
        if vlan:
            obj = self._vlan_bpf(vlan)
            sh("tc", "qdisc", "add", "dev", "eth0", "clsact", ns=ns)
            sh("tc", "filter", "add", "dev", "eth0", "egress", "bpf", "da", "obj", obj, "sec", "tag", ns=ns)
            sh("tc", "filter", "add", "dev", "eth0", "ingress", "bpf", "da", "obj", obj, "sec", "untag", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        return ns

    def _vlan_bpf(self, vid):
        """The tagging program for VLAN vid, compiled with clang (once per lab and VLAN)."""
        if not 1 <= int(vid) <= 4094:
            raise ValueError("vlan must be 1..4094")
        if self._bpf_dir is None:
            self._bpf_dir = tempfile.mkdtemp(prefix=f"routerlab-{self.name}-")
        obj = os.path.join(self._bpf_dir, f"vlan{vid}.o")
        if not os.path.exists(obj):
            src = os.path.join(self._bpf_dir, "vlan.c")
            with open(src, "w") as f:
                f.write(VLAN_BPF)
            # <linux/bpf.h> needs <asm/types.h>, which lives under the multiarch include dir.
            inc = [f"-I{os.path.dirname(os.path.dirname(p))}" for p in glob.glob("/usr/include/*/asm/types.h")[:1]]
            r = subprocess.run(["clang", "-O2", "-target", "bpf", *inc, f"-DVID={int(vid)}", "-c", src, "-o", obj],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise BootError(f"compiling the VLAN tagging program failed: {r.stderr}")
        return obj

    def destroy(self):
        for ns in self.namespaces():
            _del_ns(ns)
        if self._bpf_dir:
            shutil.rmtree(self._bpf_dir, ignore_errors=True)
            self._bpf_dir = None

    def qemu_prefix(self):
        return ["ip", "netns", "exec", self.wire]

    def netdevs(self):
        out = ["-netdev", "tap,id=wan,ifname=tap-wan,script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=wan,mac={WAN_MAC}"]
        for side, mac in zip(self.lan_sides, LAN_MACS):
            out += ["-netdev", f"tap,id={side},ifname=tap-{side},script=no,downscript=no",
                    "-device", f"virtio-net-pci,netdev={side},mac={mac}"]
        return out


def _del_ns(ns):
    """Kill what runs in a namespace, then delete it (no error when there is none)."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# Lab.add_host(vlan=N): tc (clsact, direct action) programs on the host's eth0. Egress: push
# the 802.1Q tag. Ingress (the kernel has already moved a received tag into the packet's
# metadata): pass frames of VLAN N with the tag removed, drop everything else.
VLAN_BPF = r"""
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#define SEC(n) __attribute__((section(n), used))
static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, __u16 proto, __u16 tci) = (void *)BPF_FUNC_skb_vlan_push;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)BPF_FUNC_skb_vlan_pop;
SEC("tag") int vlan_tag(struct __sk_buff *skb) {
    return bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), VID) ? TC_ACT_SHOT : TC_ACT_OK;
}
SEC("untag") int vlan_untag(struct __sk_buff *skb) {
    if (!skb->vlan_present || (skb->vlan_tci & 0xfff) != VID) return TC_ACT_SHOT;
    return bpf_skb_vlan_pop(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}
char _license[] SEC("license") = "GPL";
"""


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
