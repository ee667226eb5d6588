#!/usr/bin/env python3
"""netd's firewall applied as just the difference ends where a whole replacement does.

One netd-firewall-tool `apply` process (one RulesetLoader, as in netd) applies 60 random configs
in turn in namespace A (blocklists with overlapping, adjacent and to-the-top entries,
openings, port forwards, SSH from outside on and off; the WAN and LAN links exist, so the
ruleset has its flowtable); after each, namespace B gets the same
config as a whole replacement by a fresh process, and the two kernels' rulesets must be equal
(`nft --debug=netlink list ruleset`: every expression, byte for byte; handles removed). Every
change applied to an untouched kernel must go as just the difference. Between some steps the
test changes the kernel by hand (an accept rule added to the forward chain, an element deleted,
netd's table deleted, another table added) or restarts the tool (a new loader knows nothing): the
next apply must then be the whole replacement, and the hand-made rule must be gone (fail
closed: what the kernel holds after an apply is netd's policy, never more). Also with the config
unchanged: a hand-made accept rule is replaced away on the next apply.

usage: test_firewall_incremental.py NETD_FIREWALL_TOOL TESTDATA_DIR
"""
import os
import random
import re
import subprocess
import sys
import tempfile

TOOL, DATA = sys.argv[1], sys.argv[2]
STEPS = 60

BLOCK = ["198.51.100.0/24", "198.51.100.128/25", "203.0.113.7", "203.0.113.8/29", "203.0.113.16/28",
         "203.0.113.6", "1.0.0.0/8", "240.0.0.0/4", "100.64.0.0/10", "100.64.0.0/12",
         "2001:db8:dead::/48", "2001:db8:dead:1::/64", "2001:db8:beef::1", "2001:db8:bee0::/44",
         "2001:db8:beef::", "ff00::/8", "100::/64", "2001:db8:a::/48", "2001:db8:b::/48"]
OPEN6 = [("2001:db8:7::10", "tcp", 443), ("2001:db8:7::10", "udp", 51820), ("2001:db8:7::11", "tcp", 22),
         ("2001:db8:7::12", "tcp", 80), ("2001:db8:7::12", "udp", 53)]
FORWARD4 = [("tcp", 8080, "192.168.7.10", 80), ("udp", 51820, "192.168.7.11", 51820),
            ("tcp", 2200, "192.168.7.12", 22)]


def run(*cmd, ns=None, check=True, stdin=None):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + tuple(cmd)
    r = subprocess.run(cmd, text=True, capture_output=True, input=stdin, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    return r


def listing(ns):
    out = run("nft", "--debug=netlink", "list", "ruleset", ns=ns).stdout
    return re.sub(r"^((inet|ip) [a-z0-9_]+ [a-z0-9_]+)( [0-9]+)+$", r"\1", out, flags=re.M)


def config(rng, tmp, i):
    lines = ['[lan]', 'device = "eth1"', 'ipv4 = "192.168.7.1/24"', 'ipv6_prefixes = ["2001:db8:7::/64"]', '',
             '[wan]', 'device = "eth0"', '']
    if rng.random() < 0.5:
        lines += ['[ssh]', 'port = 2222', 'allow_wan = true', '']
    block = rng.sample(BLOCK, rng.randint(0, len(BLOCK)))
    lines += ['[firewall]', 'blocklist = [' + ", ".join(f'"{b}"' for b in block) + ']', '']
    for host, proto, port in rng.sample(OPEN6, rng.randint(0, len(OPEN6))):
        lines += ['[[firewall.open6]]', f'host = "{host}"', f'proto = "{proto}"', f'port = {port}', '']
    for proto, port, to, to_port in rng.sample(FORWARD4, rng.randint(0, len(FORWARD4))):
        lines += ['[[firewall.forward4]]', f'proto = "{proto}"', f'port = {port}', f'to = "{to}"',
                  f'to_port = {to_port}', '']
    path = os.path.join(tmp, f"step{i}.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def mutate(rng, path):
    """A small change of one config: one blocklist entry or one opening more or less."""
    text = open(path).read()
    m = re.search(r"blocklist = \[(.*)\]", text)
    entries = [e for e in m.group(1).split(", ") if e]
    if rng.random() < 0.6:
        missing = [f'"{b}"' for b in BLOCK if f'"{b}"' not in entries]
        if entries and (not missing or rng.random() < 0.5):
            entries.remove(rng.choice(entries))
        else:
            entries.append(rng.choice(missing))
        text = text.replace(m.group(0), "blocklist = [" + ", ".join(entries) + "]")
    else:
        blocks = text.split("\n\n")
        opens = [b for b in blocks if b.startswith("[[firewall.open6]]")]
        if opens and rng.random() < 0.5:
            blocks.remove(rng.choice(opens))
        else:
            host, proto, port = rng.choice(OPEN6)
            block = f'[[firewall.open6]]\nhost = "{host}"\nproto = "{proto}"\nport = {port}'
            if not any(b.strip() == block for b in blocks):
                blocks.append(block)
        text = "\n\n".join(blocks)
    with open(path, "w") as f:
        f.write(text)
    return path


class Loader:
    def __init__(self, ns):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, TOOL, "apply", "eth1", "eth0", "192.0.2.1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def apply(self, path):
        self.p.stdin.write(path + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().strip()
        if not line or line.startswith("error"):
            raise RuntimeError(f"apply {path}: {line or 'no answer'}")
        return line.split()[0]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


HAND_EDITS = [
    ("an accept rule added to the forward chain", ["nft", "insert", "rule", "inet", "netd", "forward", "accept"]),
    ("an element deleted from the blocklist", None),
    ("netd's filter table deleted", ["nft", "delete", "table", "inet", "netd"]),
    ("another table added", ["nft", "add", "table", "inet", "other"]),
]


def main():
    rng = random.Random(int(os.environ.get("SEED", "14")))
    a, b = f"fwinca{os.getpid()}", f"fwincb{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix="fwinc-")
    for ns in (a, b):
        run("ip", "netns", "add", ns)
    fails = 0
    counts = {"incremental": 0, "replace": 0}
    try:
        for ns in (a, b):
            # The links exist, so the ruleset has its flowtable (made anew by every change).
            run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1", ns=ns)
        fails = steps(rng, a, b, tmp, counts)
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])
    print("FAIL" if fails else "PASS")
    return 1 if fails else 0


def steps(rng, a, b, tmp, counts):
    # Whether this kernel has flowtables (NF_FLOW_TABLE): without, netd loads the ruleset
    # without its flowtable, and so does a whole replacement.
    probe = run("nft", "add table inet probe; add flowtable inet probe f { hook ingress priority 0; devices = { eth0 }; }",
                ns=b, check=False)
    flowtables = probe.returncode == 0
    run("nft", "delete", "table", "inet", "probe", ns=b, check=False)
    print("flowtables:", "yes" if flowtables else "no (this kernel has none: the rulesets go without)")
    fails = 0
    loader = Loader(a)
    path = config(rng, tmp, 0)
    expect = "replace"
    for i in range(STEPS):
        if i and rng.random() < 0.7:
            path = mutate(rng, path)          # one small change
        elif i:
            path = config(rng, tmp, i)        # anything
        how = loader.apply(path)
        counts[how] += 1
        run(TOOL, "load", path, "eth1", "eth0", "192.0.2.1", ns=b)
        if flowtables != ("flowtable ft" in listing(a)):
            print(f"FAIL step {i}: flowtable {'missing' if flowtables else 'loaded on a kernel without'}")
            fails += 1
        if listing(a) != listing(b):
            print(f"FAIL step {i}: the ruleset after {how} differs from a whole replacement ({path})")
            fails += 1
        if how != expect:
            print(f"FAIL step {i}: applied as {how}, expected {expect}")
            fails += 1
        expect = "incremental"
        # Now and then the kernel changes behind the loader's back, or netd restarts.
        if i % 9 == 4:
            what, cmd = HAND_EDITS[(i // 9) % len(HAND_EDITS)]
            if cmd is None:
                listed = run("nft", "list", "set", "inet", "netd", "blocklist4", ns=a).stdout
                elems = re.search(r"elements = \{ ([^,}\s]+)", listed)
                cmd = ["nft", "delete", "element", "inet", "netd", "blocklist4", f"{{ {elems.group(1)} }}"] \
                    if elems else ["nft", "add", "table", "inet", "other2"]
            run(*cmd, ns=a)
            if cmd[1] == "add":   # not netd's: stays, so B gets it too
                run(*cmd, ns=b)
            print(f"step {i}: by hand: {what}")
            expect = "replace"
        elif i % 9 == 7:
            loader.close()
            loader = Loader(a)
            print(f"step {i}: a new loader (netd restarted)")
            expect = "replace"
    # The same config again, unchanged, after a hand-made accept rule: still put right.
    run("nft", "insert", "rule", "inet", "netd", "forward", "accept", ns=a)
    how = loader.apply(path)
    if how != "replace" or listing(a) != listing(b):
        print(f"FAIL: an unchanged config after a hand-made rule: {how}, rulesets equal: {listing(a) == listing(b)}")
        fails += 1
    loader.close()
    print(f"{STEPS} steps: {counts['incremental']} as just the difference, {counts['replace']} whole replacements")
    if counts["incremental"] < STEPS // 2:
        print("FAIL: fewer than half the steps went as just the difference")
        fails += 1
    return fails


if __name__ == "__main__":
    sys.exit(main())
