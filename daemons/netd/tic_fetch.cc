// `netd --tic-fetch`: the SixXS TIC exchange in a short-lived helper process (DNS and a slow
// server can block for seconds; netd's loop must not). Input on stdin, one per line: server
// ("host" or "host:port"), username, password, tunnel id. It drops root first (it needs no
// privilege at all), then: banner, client, get unixtime (more than kTicMaxSkew off: QUIT, no
// login), username, challenge md5, authenticate md5, tunnel show, QUIT. Every line from the
// server is bounded; the parameters are validated (tic.h) before they are printed.
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <iostream>
#include <string>
#include <vector>

#include "tic.h"
#include "tunnel.h"

namespace netd {
namespace {

int fail(const char* kind, const std::string& msg) {
    std::string m = msg;
    for (char& c : m)
        if (c < 0x20 || c > 0x7e) c = '?';
    std::printf("ERROR %s %s\n", kind, m.c_str());
    return 3;
}

constexpr int kTimeoutMs = 10000;

// One connection: lines in and out, each read bounded by kTimeoutMs and kTicMaxLine.
class Conn {
public:
    explicit Conn(int fd) : fd_(fd) {}
    ~Conn() { close(fd_); }

    bool send(const std::string& line) {
        std::string l = line + "\n";
        size_t off = 0;
        while (off < l.size()) {
            ssize_t n = write(fd_, l.data() + off, l.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                error_ = std::string("write: ") + std::strerror(errno);
                return false;
            }
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // The next line without its end; none on timeout, close, an overlong line.
    std::optional<std::string> line() {
        while (true) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                if (!l.empty() && l.back() == '\r') l.pop_back();
                if (l.size() > kTicMaxLine) break;
                return l;
            }
            if (buf_.size() > kTicMaxLine + 1) break;
            pollfd p{fd_, POLLIN, 0};
            int r = poll(&p, 1, kTimeoutMs);
            if (r < 0 && errno == EINTR) continue;
            if (r == 0) {
                timeout_ = true;
                error_ = "the server said nothing for " + std::to_string(kTimeoutMs / 1000) + " s";
                return std::nullopt;
            }
            char b[1024];
            ssize_t n = read(fd_, b, sizeof(b));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                error_ = n == 0 ? "the server closed the connection" : std::string("read: ") + std::strerror(errno);
                return std::nullopt;
            }
            buf_.append(b, static_cast<size_t>(n));
        }
        error_ = "a line longer than " + std::to_string(kTicMaxLine) + " bytes";
        return std::nullopt;
    }

    const std::string& error() const { return error_; }
    bool timed_out() const { return timeout_; }

private:
    int fd_;
    std::string buf_, error_;
    bool timeout_ = false;
};

int connect_to(const addrinfo* ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&p, 1, kTimeoutMs) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        close(fd);
        errno = err ? err : ETIMEDOUT;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

}  // namespace

int tic_fetch_main() {
    std::string server, user, password, id;
    if (!std::getline(std::cin, server) || !std::getline(std::cin, user) || !std::getline(std::cin, password) ||
        !std::getline(std::cin, id))
        return fail("input", "expected 4 lines on stdin");
    if (auto why = drop_privileges(); !why.empty()) return fail("internal", "cannot drop privileges: " + why);
    auto srv = TicServer::parse(server);
    if (!srv) return fail("input", "'" + server + "' is not host or host:port");

    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(srv->port);
    if (int rc = getaddrinfo(srv->host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return fail("dns", srv->host + ": " + gai_strerror(rc));
    int fd = -1;
    std::string cerr = "no address";
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_to(ai);
        if (fd < 0) cerr = std::strerror(errno);
    }
    freeaddrinfo(res);
    if (fd < 0) return fail(cerr == std::strerror(ETIMEDOUT) ? "timeout" : "connect", srv->str() + ": " + cerr);
    Conn c(fd);

    // Sends a command (none: only reads) and returns the reply, which must be 2xx.
    std::string bad;
    auto ask = [&](const std::string& cmd, std::string& reply) -> bool {
        if (!cmd.empty() && !c.send(cmd)) return false;
        auto l = c.line();
        if (!l) return false;
        reply = *l;
        auto code = tic_code(reply);
        if (!code || *code / 100 != 2) {
            bad = reply;
            return false;
        }
        return true;
    };
    auto protocol_fail = [&](const std::string& step) {
        if (!bad.empty()) return fail("protocol", step + ": the server answered '" + bad.substr(0, 120) + "'");
        return fail(c.timed_out() ? "timeout" : "protocol", step + ": " + c.error());
    };
    std::string reply;
    if (!ask("", reply)) return protocol_fail("banner");
    utsname u{};
    uname(&u);
    if (!ask("client TIC/draft-00 netd/1.0 Linux/" + std::string(u.release), reply)) return protocol_fail("client");
    if (!ask("get unixtime", reply)) return protocol_fail("get unixtime");
    auto t = tic_unixtime(reply);
    if (!t) return fail("protocol", "get unixtime: not a time: '" + reply.substr(0, 80) + "'");
    if (auto skew = tic_clock_skew(*t, static_cast<int64_t>(time(nullptr)))) {
        c.send("QUIT");
        return fail("clock", tic_skew_text(*skew) + ": not logged in");
    }
    if (!ask("username " + user, reply)) {
        if (!bad.empty()) return fail("auth", "username " + user + ": the server answered '" + bad.substr(0, 120) + "'");
        return protocol_fail("username");
    }
    if (!ask("challenge md5", reply)) return protocol_fail("challenge md5");
    std::string challenge = reply.size() > 4 ? reply.substr(4) : "";
    if (challenge.empty() || challenge.size() > 128 || challenge.find(' ') != std::string::npos)
        return fail("protocol", "challenge md5: no challenge in '" + reply.substr(0, 80) + "'");
    if (!ask("authenticate md5 " + tic_md5_response(challenge, password), reply)) {
        if (!bad.empty()) return fail("auth", "login as " + user + " refused: '" + bad.substr(0, 120) + "'");
        return protocol_fail("authenticate");
    }
    if (!ask("tunnel show " + id, reply)) {
        if (!bad.empty()) return fail("tunnel", "tunnel show " + id + ": '" + bad.substr(0, 120) + "'");
        return protocol_fail("tunnel show");
    }
    if (tic_code(reply) != 201) return fail("protocol", "tunnel show: expected 201, got '" + reply.substr(0, 80) + "'");
    std::vector<std::string> lines;
    while (true) {
        auto l = c.line();
        if (!l) return protocol_fail("tunnel show");
        if (tic_code(*l) == 202) break;
        if (lines.size() >= kTicMaxLines)
            return fail("invalid", "tunnel show: more than " + std::to_string(kTicMaxLines) + " lines");
        lines.push_back(*l);
    }
    c.send("QUIT");
    auto p = parse_tunnel_show(lines, id);
    if (!p) return fail("invalid", p.error().str());
    std::printf("OK\n");
    for (auto& l : p->lines) std::printf("%s\n", l.c_str());
    return 0;
}

}  // namespace netd
