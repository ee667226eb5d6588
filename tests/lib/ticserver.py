"""A test SixXS TIC server (Tunnel Information and Control), standard library only, run inside
the ISP namespace beside tests/lib/broker.py.

Line-based over TCP (port 3874): banner "200 ...", then
  client TIC/draft-00 <name>/<ver> <os>/<rel>   -> 200
  get unixtime                                 -> 200 <this machine's time + offset>
  starttls                                     -> 400 (not offered here)
  username <handle>                            -> 200
  challenge md5                                -> 200 <challenge>
  authenticate md5 <md5hex(challenge + md5hex(password))>  -> 200 | 400
  tunnel show <id>                             -> 201 ..., "Key: value" lines, 202 ...  (logged in)
  QUIT                                         -> 200, closed

The configuration (a JSON file, argv[1]):
  {"listen": "198.18.0.1", "port": 3874, "offset": 0,
   "users": {"ALICE-SIXXS": "password"},
   "tunnels": {"T1234": {"owner": "ALICE-SIXXS", "Type": "6in4-heartbeat", "IPv6 Endpoint": ..., ...}},
   "count_file": "/path"}   (optional: the login count is written there after each login)

Events are printed as JSON lines on stdout ({"kind": "tic-login", "user": ..., "ok": true,
"logins": N, ...}); commands are read as lines on stdin:
  offset N     (the clock this server reports is N seconds off)
  quit
"""
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time

lock = threading.Lock()


def event(**kw):
    kw["t"] = time.time()
    with lock:
        print(json.dumps(kw), flush=True)


def md5hex(s):
    return hashlib.md5(s.encode()).hexdigest()


class TicServer:
    ORDER = ["TunnelId", "Tunnel Name", "Type", "IPv6 Endpoint", "IPv6 POP", "IPv6 PrefixLength", "Tunnel MTU",
             "Heartbeat_Interval", "IPv4 Endpoint", "IPv4 POP", "UserState", "AdminState", "Password"]

    def __init__(self, cfg):
        self.cfg = cfg
        self.offset = int(cfg.get("offset", 0))
        self.logins = 0          # successful authentications
        self.sessions = 0        # connections
        self.stopping = False

    def count(self):
        if self.cfg.get("count_file"):
            with open(self.cfg["count_file"] + ".tmp", "w") as f:
                f.write(f"{self.logins}\n")
            os.replace(self.cfg["count_file"] + ".tmp", self.cfg["count_file"])

    def session(self, conn, peer):
        with lock:
            self.sessions += 1
        f = conn.makefile("rwb", buffering=0)

        def say(line):
            f.write((line + "\n").encode())

        user = challenge = None
        logged_in = False
        commands = []
        skew_asked = None
        say("200 SixXS TIC Service on test.example ready (http://www.sixxs.net)")
        try:
            while True:
                raw = f.readline(1024)
                if not raw:
                    break
                line = raw.decode(errors="replace").rstrip("\r\n")
                words = line.split(" ")
                cmd = " ".join(words[:2]).lower()
                commands.append(line if not line.startswith("authenticate") else "authenticate md5 ...")
                if words[0] == "client":
                    say("200 Client Identity accepted")
                elif cmd == "get unixtime":
                    skew_asked = self.offset
                    say(f"200 {int(time.time()) + self.offset}")
                elif words[0] == "starttls":
                    say("400 This service is not SSL enabled (try without STARTTLS)")
                elif words[0] == "username" and len(words) == 2:
                    user = words[1]
                    say("200 Choose your authentication challenge please")
                elif cmd == "challenge md5":
                    challenge = secrets.token_hex(16)
                    say(f"200 {challenge}")
                elif cmd == "authenticate md5" and len(words) == 3:
                    pw = self.cfg["users"].get(user or "")
                    ok = pw is not None and challenge is not None and words[2] == md5hex(challenge + md5hex(pw))
                    with lock:
                        if ok:
                            self.logins += 1
                        n = self.logins
                    if ok:
                        logged_in = True
                        self.count()
                        say(f"200 Successfully logged in using md5 as {user} ({peer[0]}) v6router test")
                    else:
                        say("400 Login failed, login/password mismatch")
                    event(kind="tic-login", user=user, ok=ok, logins=n, src=peer[0])
                elif cmd == "tunnel show" and len(words) == 3:
                    t = self.cfg["tunnels"].get(words[2])
                    if not logged_in:
                        say("400 Not logged in")
                    elif not t or t.get("owner") != user:
                        say(f"400 Unknown tunnel endpoint {words[2]}")
                    else:
                        say(f"201 Showing tunnel information for {words[2]}")
                        for k in self.ORDER:
                            if k == "TunnelId":
                                say(f"TunnelId: {words[2]}")
                            elif k in t:
                                say(f"{k}: {t[k]}")
                        for k, v in t.items():
                            if k not in self.ORDER and k != "owner":
                                say(f"{k}: {v}")
                        say("202 Done")
                        event(kind="tic-tunnel", id=words[2], user=user, src=peer[0])
                elif words[0].lower() == "quit":
                    say("200 Thank you for using this SixXS Service")
                    break
                else:
                    say(f"400 Unknown command: {line[:40]}")
        except OSError:
            pass
        finally:
            conn.close()
            event(kind="tic-session", src=peer[0], commands=commands, offset=skew_asked, logins=self.logins,
                  sessions=self.sessions)

    def serve(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.cfg.get("listen", "0.0.0.0"), int(self.cfg.get("port", 3874))))
        s.listen(8)
        s.settimeout(0.5)
        event(kind="tic-ready", port=s.getsockname()[1])
        while not self.stopping:
            try:
                conn, peer = s.accept()
            except socket.timeout:
                continue
            conn.settimeout(30)
            threading.Thread(target=self.session, args=(conn, peer), daemon=True).start()

    def run(self):
        self.count()
        threading.Thread(target=self.serve, daemon=True).start()
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "offset":
                self.offset = int(cmd[1])
            elif cmd[0] == "quit":
                break
            event(kind="command", cmd=line.strip())
        self.stopping = True


if __name__ == "__main__":
    TicServer(json.load(open(sys.argv[1]))).run()
