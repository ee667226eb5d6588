"""A test tunnel broker, standard library only, run inside the ISP namespace:

  - a userspace 6in4 endpoint: IPv4 protocol 41 on a raw socket <-> a TUN device (the build
    machine's kernel has no sit module); it accepts and sends encapsulated packets only for the
    endpoint the router last registered, as a real broker does;
  - the Hurricane Electric style endpoint update over HTTPS (dyndns2: /nic/update?hostname=
    &myip=, Basic auth), answering good / nochg / badauth, or, on command, garbage;
  - the SixXS style heartbeat receiver on UDP 3740, checking the MD5 with the tunnel password and
    that the timestamp is within 120 s;
  - an NTP server (stratum 1, this machine's clock), so the router's ntpd synchronises.

Events are printed as JSON lines on stdout; commands are read as lines on stdin:
  he badauth | he garbage | he ok | he stop | he wrongcert   (how the update server answers)
  password NEW                                      (the heartbeat password it checks)
  quit
"""
import base64
import fcntl
import hashlib
import http.server
import json
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

lock = threading.Lock()


def event(**kw):
    kw["t"] = time.time()
    with lock:
        print(json.dumps(kw), flush=True)


class Broker:
    def __init__(self, cfg):
        self.cfg = cfg
        self.endpoint = None           # the router's IPv4 endpoint, as registered
        self.he_mode = "ok"
        self.password = cfg.get("password", "")
        self.stopping = False

    # ---- 6in4 ----------------------------------------------------------------------------------
    def open_tun(self, name):
        fd = os.open("/dev/net/tun", os.O_RDWR)
        ifr = struct.pack("16sH", name.encode(), 0x0001 | 0x1000)  # IFF_TUN | IFF_NO_PI
        fcntl.ioctl(fd, 0x400454CA, ifr)                             # TUNSETIFF
        return fd

    def tunnel(self):
        tun = self.open_tun(self.cfg["tun"])
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 41)
        raw.bind((self.cfg["broker_ip"], 0))
        event(kind="tunnel-ready")
        while not self.stopping:
            r, _, _ = select.select([tun, raw], [], [], 0.5)
            if raw in r:
                pkt, (src, _) = raw.recvfrom(65535)
                ihl = (pkt[0] & 0x0F) * 4
                if src == self.endpoint:
                    os.write(tun, pkt[ihl:])
                else:
                    event(kind="6in4-dropped", src=src, endpoint=self.endpoint)
            if tun in r:
                inner = os.read(tun, 65535)
                if self.endpoint:
                    try:
                        raw.sendto(inner, (self.endpoint, 0))
                    except OSError as e:
                        event(kind="6in4-send-error", error=str(e))

    # ---- HE update -------------------------------------------------------------------------------
    def https(self):
        broker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                auth = self.headers.get("Authorization", "")
                user = key = None
                if auth.startswith("Basic "):
                    try:
                        user, key = base64.b64decode(auth[6:]).decode().split(":", 1)
                    except Exception:
                        pass
                myip = q.get("myip", [self.client_address[0]])[0]
                hostname = q.get("hostname", [""])[0]
                ok_auth = (user, key) == (broker.cfg["he_user"], broker.cfg["he_key"]) and \
                    hostname == broker.cfg["tunnel_id"]
                if broker.he_mode == "garbage":
                    body, code = "<html>502 proxy error</html>", 200
                elif broker.he_mode == "badauth" or not ok_auth:
                    body, code = "badauth", 401
                elif myip == broker.endpoint:
                    body, code = f"nochg {myip}", 200
                else:
                    broker.endpoint = myip
                    body, code = f"good {myip}", 200
                event(kind="he-update", src=self.client_address[0], path=url.path, hostname=hostname, myip=myip,
                      myip_given="myip" in q,
                      user=user, auth_ok=ok_auth, answer=body)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        class Server(http.server.HTTPServer):
            # The TLS handshake under a deadline: a client that vanished after the TCP handshake
            # (an update cancelled while the router's WAN address went away, so its FIN never
            # came) must not hold this one-request-at-a-time server for ever.
            def get_request(self):
                conn, addr = self.socket.accept()
                conn.settimeout(5)
                try:
                    return ctx.wrap_socket(conn, server_side=True), addr
                except OSError as e:
                    event(kind="https-error", error=str(e)[:200])
                    conn.close()
                    raise

        srv = Server((self.cfg["broker_ip"], 443), Handler)
        ctx.load_cert_chain(self.cfg["cert"], self.cfg["key"])
        # "he wrongcert": a certificate for another name, from the same CA (a TLS mismatch).
        wrong = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        wrong.load_cert_chain(self.cfg["wrong_cert"], self.cfg["wrong_key"])

        def sni(sock, name, _ctx):
            if broker.he_mode == "wrongcert":
                sock.context = wrong
        ctx.sni_callback = sni
        srv.timeout = 0.5
        self.https_server = srv
        while not self.stopping:
            if self.he_mode == "stop":
                time.sleep(0.2)
                continue
            try:
                srv.handle_request()
            except Exception as e:  # a failed TLS handshake (the router refusing our cert)
                event(kind="https-error", error=str(e)[:200])

    # ---- heartbeat ---------------------------------------------------------------------------------
    def heartbeat(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.cfg["broker_ip"], 3740))
        s.settimeout(0.5)
        while not self.stopping:
            try:
                data, (src, _) = s.recvfrom(2048)
            except socket.timeout:
                continue
            line = data.decode(errors="replace")
            parts = line.split(" ")
            ok, why = False, ""
            if len(parts) == 6 and parts[:2] == ["HEARTBEAT", "TUNNEL"] and not line.endswith("\n"):
                v6, v4, ts, digest = parts[2], parts[3], parts[4], parts[5]
                expect = hashlib.md5(" ".join(parts[:5] + [self.password]).encode()).hexdigest()
                if digest != expect:
                    why = "bad digest (wrong password)"
                elif abs(time.time() - int(ts)) > 120:
                    why = f"timestamp {int(ts) - int(time.time())} s off"
                elif v6 != self.cfg["router_v6"]:
                    why = f"unknown tunnel {v6}"
                else:
                    ok = True
                    self.endpoint = src if v4 == "sender" else v4
            else:
                why = "malformed"
            event(kind="heartbeat", src=src, line=line, ok=ok, why=why)

    # ---- NTP ---------------------------------------------------------------------------------------
    def ntp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.cfg["ntp_ip"], 123))
        s.settimeout(0.5)
        epoch = 2208988800
        while not self.stopping:
            try:
                data, peer = s.recvfrom(512)
            except socket.timeout:
                continue
            if len(data) < 48:
                continue
            now = time.time() + epoch
            sec, frac = int(now), int((now % 1) * 2 ** 32)
            resp = struct.pack("!BBbbII4sIIIIIIII", (0 << 6) | (4 << 3) | 4, 1, 6, -20, 0, 0, b"GPS\0",
                               sec, frac, 0, 0, sec, frac, sec, frac)
            resp = resp[:24] + data[40:48] + resp[32:]  # originate = client's transmit
            s.sendto(resp, peer)

    def run(self):
        for fn in (self.tunnel, self.https, self.heartbeat, self.ntp):
            threading.Thread(target=fn, daemon=True).start()
        event(kind="ready")
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "he":
                self.he_mode = cmd[1]
            elif cmd[0] == "password":
                self.password = cmd[1]
            elif cmd[0] == "quit":
                break
            event(kind="command", cmd=line.strip())
        self.stopping = True


if __name__ == "__main__":
    Broker(json.load(open(sys.argv[1]))).run()
