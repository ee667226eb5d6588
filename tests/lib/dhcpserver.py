"""A small DHCPv4 server for the tests, standard library only: it plays the ISP. It answers
DISCOVER with OFFER and REQUEST with ACK (or NAK), and can put any bytes into any option, which
is how the hostile-server tests send what a real server library would refuse to build.

    srv = DhcpServer("eth0", server_ip="203.0.113.1", offer_ip="203.0.113.10", options={...})
    srv.start() ... srv.stop()

options: {code: bytes}; helpers ip(), ips(), u32(), u16() build common values. Run it inside the
ISP namespace (the tests start it with `ip netns exec NS python3 dhcpserver.py CONFIG.json`).
"""
import json
import socket
import struct
import sys
import threading
import time

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7


def ip(a):
    return socket.inet_aton(a)


def ips(*a):
    return b"".join(socket.inet_aton(x) for x in a)


def u32(v):
    return struct.pack("!I", v)


def u16(v):
    return struct.pack("!H", v)


def parse_options(data):
    opts, i = {}, 0
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        n = data[i + 1]
        opts[code] = data[i + 2:i + 2 + n]
        i += 2 + n
    return opts


def encode_options(opts):
    out = b""
    for code, value in opts.items():
        # Long values are split over repeated options, as RFC 3396 allows.
        for k in range(0, max(len(value), 1), 255):
            chunk = value[k:k + 255]
            out += bytes([code, len(chunk)]) + chunk
    return out + b"\xff"


class DhcpServer:
    def __init__(self, ifname, server_ip, offer_ip, options, nak_others=False, log=None, offer_by_mac=None):
        self.ifname = ifname
        self.server_ip = server_ip
        self.offer_ip = offer_ip
        # {"52:54:00:..": "203.0.113.11"}: the address for that client (several routers on one
        # ISP link, each its own); every other client gets offer_ip.
        self.offer_by_mac = {m.lower(): a for m, a in (offer_by_mac or {}).items()}
        self.options = options          # {code: bytes}, sent in OFFER and ACK
        self.nak_others = nak_others  # NAK a REQUEST for any other address
        self.log = log or (lambda m: print(m, flush=True))
        self.sock = None
        self.thread = None
        self.stopping = False
        self.acks = 0

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
        s.bind(("0.0.0.0", 67))
        s.settimeout(0.2)
        self.sock = s
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        if self.thread:
            self.thread.join(2)
        if self.sock:
            self.sock.close()

    def _serve(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 240 or data[0] != 1 or data[236:240] != MAGIC:
                continue
            opts = parse_options(data[240:])
            mtype = opts.get(53, b"\x00")[0]
            xid, flags, ciaddr = data[4:8], data[10:12], data[12:16]
            chaddr = data[28:44]
            offer = self.offer_by_mac.get(chaddr[:6].hex(":"), self.offer_ip)
            if mtype == DISCOVER:
                self._reply(OFFER, xid, flags, ciaddr, chaddr, offer)
            elif mtype == REQUEST:
                wanted = opts.get(50) or ciaddr
                if self.nak_others and socket.inet_ntoa(wanted) != offer:
                    self.log(f"dhcpserver: NAK for {socket.inet_ntoa(wanted)}")
                    self._reply(NAK, xid, flags, b"\0\0\0\0", chaddr, offer, nak=True)
                else:
                    self._reply(ACK, xid, flags, ciaddr, chaddr, offer)
                    self.acks += 1

    def _reply(self, mtype, xid, flags, ciaddr, chaddr, offer, nak=False):
        yiaddr = b"\0\0\0\0" if nak else ip(offer)
        pkt = struct.pack("!BBBB", 2, 1, 6, 0) + xid + b"\0\0" + flags + ciaddr + yiaddr + ip(self.server_ip) + \
            b"\0\0\0\0" + chaddr + b"\0" * 192 + MAGIC
        opts = {53: bytes([mtype]), 54: ip(self.server_ip)}
        if nak:
            opts[56] = b"address moved"
        else:
            opts.update(self.options)
        pkt += encode_options(opts)
        # Renewals are unicast to the client's address; everything else is broadcast.
        dest = socket.inet_ntoa(ciaddr) if ciaddr != b"\0\0\0\0" else "255.255.255.255"
        self.sock.sendto(pkt, (dest, 68))
        self.log(f"dhcpserver: sent {({OFFER: 'OFFER', ACK: 'ACK', NAK: 'NAK'})[mtype]} {offer} to {dest}")


def main():
    """python3 dhcpserver.py CONFIG.json: serve until killed. CONFIG: ifname, server_ip,
    offer_ip, options {code: hex string}, nak_others (bool), offer_by_mac {MAC: address}."""
    cfg = json.load(open(sys.argv[1]))
    opts = {int(k): bytes.fromhex(v) for k, v in cfg["options"].items()}
    srv = DhcpServer(cfg["ifname"], cfg["server_ip"], cfg["offer_ip"], opts,
                     nak_others=bool(cfg.get("nak_others")), offer_by_mac=cfg.get("offer_by_mac"))
    srv.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
