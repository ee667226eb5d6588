#include "log_forward.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>

#include "process.h"
#include "tunnel.h"

namespace netd {

// ---- the sending side ----

namespace {

socklen_t sockaddr_of(const LogRemote& r, sockaddr_storage& ss) {
    std::memset(&ss, 0, sizeof(ss));
    if (r.address.family == 6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(r.port);
        std::memcpy(&s6->sin6_addr, r.address.bytes.data(), 16);
        return sizeof(sockaddr_in6);
    }
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(r.port);
    std::memcpy(&s4->sin_addr, r.address.bytes.data(), 4);
    return sizeof(sockaddr_in);
}

}  // namespace

LogForwarder::LogForwarder(EventLoop& loop, LogRemote remote, Options opts)
    : loop_(loop), remote_(std::move(remote)), opts_(opts), queue_(opts.queue_bytes), backoff_(opts.min_backoff) {}

void LogForwarder::start() { connect_now(); }

void LogForwarder::push(const std::string& message) {
    queue_.push(frame(remote_.proto, message));
    // Sending now unless a send is already waiting for the socket or for the retry timer.
    if (sock_ && !connecting_ && !timer_ && !(watching_ & EPOLLOUT)) flush();
}

void LogForwarder::watch(uint32_t events) {
    if (events == watching_ && (events == 0 || watch_)) return;
    watch_.reset();
    watching_ = 0;
    if (!events || !sock_) return;
    auto w = loop_.watch_fd(sock_.get(), events, [this](uint32_t ev) { on_event(ev); });
    if (w) {
        watch_ = std::move(*w);
        watching_ = events;
    }
}

void LogForwarder::connect_now() {
    timer_.reset();
    watch(0);
    const int family = remote_.address.family == 6 ? AF_INET6 : AF_INET;
    if (remote_.proto == Proto::udp) {
        if (!sock_) sock_.reset(socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!sock_) return failed(std::string("socket: ") + std::strerror(errno));
        flush();
        return;
    }
    sock_.reset(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sock_) return failed(std::string("socket: ") + std::strerror(errno));
    unsigned timeout = static_cast<unsigned>(opts_.tcp_user_timeout.count());
    setsockopt(sock_.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
    // An idle connection to a host that went away is noticed within about 90 s.
    int on = 1, idle = 60, intvl = 10, cnt = 3;
    setsockopt(sock_.get(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(sock_.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(sock_.get(), IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(sock_.get(), IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    sockaddr_storage ss;
    socklen_t len = sockaddr_of(remote_, ss);
    if (connect(sock_.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) {
        went_up();
        flush();
        return;
    }
    if (errno != EINPROGRESS) return failed(std::string("connect: ") + std::strerror(errno));
    connecting_ = true;
    watch(EPOLLOUT);
}

void LogForwarder::on_event(uint32_t events) {
    if (connecting_) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(sock_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        connecting_ = false;
        if (err) return failed(std::string("connect: ") + std::strerror(err));
        went_up();
        flush();
        return;
    }
    if (remote_.proto == Proto::tcp) {
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            // A log host has nothing to say: what it sends is read and dropped; its end of the
            // connection is noticed here.
            char buf[512];
            while (true) {
                ssize_t n = recv(sock_.get(), buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0) continue;
                if (n == 0) return failed("the log host closed the connection");
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                return failed(std::string("connection: ") + std::strerror(errno));
            }
        }
    }
    if (events & EPOLLOUT) flush();
}

void LogForwarder::flush() {
    if (!sock_ || connecting_) return;
    sockaddr_storage ss;
    socklen_t len = sockaddr_of(remote_, ss);
    while (!queue_.empty()) {
        const std::string& f = queue_.front();
        if (remote_.proto == Proto::udp) {
            ssize_t n = sendto(sock_.get(), f.data(), f.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                               reinterpret_cast<sockaddr*>(&ss), len);
            if (n >= 0 || errno == EMSGSIZE) {  // too big for any datagram: it can never go
                queue_.pop();
                ++sent_;
                went_up();
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return watch(EPOLLOUT);
            // No route, no address, a full buffer: the lines wait, tried again later.
            return failed(std::string("send: ") + std::strerror(errno));
        }
        ssize_t n = send(sock_.get(), f.data() + written_, f.size() - written_, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            written_ += static_cast<size_t>(n);
            if (written_ == f.size()) {
                queue_.pop();
                written_ = 0;
                ++sent_;
            } else {
                queue_.set_front_busy(true);
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return watch(EPOLLIN | EPOLLOUT);
        return failed(std::string("send: ") + (n < 0 ? std::strerror(errno) : "nothing written"));
    }
    watch(remote_.proto == Proto::tcp ? static_cast<uint32_t>(EPOLLIN) : 0u);
}

void LogForwarder::failed(const std::string& why) {
    watch(0);
    connecting_ = false;
    if (remote_.proto == Proto::tcp) {
        sock_.reset();
        // The receiver drops a frame cut short with its connection: it goes again whole.
        written_ = 0;
        queue_.set_front_busy(false);
    }
    if (up_ || !reported_down_) {
        syslog(LOG_WARNING, "%s: %s; keeping the lines (up to %zu KiB) and trying again in %lld s",
               remote_.url().c_str(), why.c_str(), opts_.queue_bytes / 1024,
               static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(backoff_).count()));
        reported_down_ = true;
    }
    up_ = false;
    retry_later();
}

void LogForwarder::retry_later() {
    auto delay = backoff_;
    backoff_ = std::min(backoff_ * 2, opts_.max_backoff);
    timer_ = loop_.after(delay, [this] {
        timer_.reset();
        if (remote_.proto == Proto::tcp)
            connect_now();
        else
            flush();
    });
}

void LogForwarder::went_up() {
    backoff_ = opts_.min_backoff;
    if (up_) return;
    up_ = true;
    uint64_t dropped = queue_.dropped() - dropped_reported_;
    dropped_reported_ = queue_.dropped();
    if (reported_down_)
        syslog(LOG_NOTICE, "%s: reachable again; %zu lines queued, %llu dropped meanwhile (the queue was full)",
               remote_.url().c_str(), queue_.size(), static_cast<unsigned long long>(dropped));
    else if (remote_.proto == Proto::tcp)
        syslog(LOG_INFO, "%s: connected", remote_.url().c_str());
    reported_down_ = false;
}

// ---- netd --log-forward URL ----

namespace {

std::string read_file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return in ? std::string((std::istreambuf_iterator<char>(in)), {}) : std::string();
}

// syslogd's buffer as logread prints it (the boot so far), within 5 s.
std::vector<LogMessage> logread_dump() {
    std::vector<LogMessage> out;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return out;
    UniqueFd rd(p[0]), wr(p[1]);
    SpawnOptions so;
    so.argv = {"/sbin/logread"};
    so.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    so.stdout_fd = wr.get();
    auto child = spawn(so);
    wr.reset();
    if (!child) {
        syslog(LOG_WARNING, "logread: %s: the log host gets no backlog", child.error().str().c_str());
        return out;
    }
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    char buf[16384];
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd pfd{rd.get(), POLLIN, 0};
        if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            send_signal(child->pidfd.get(), SIGKILL);
            syslog(LOG_WARNING, "logread: no end after 5 s: the backlog is cut short");
            break;
        }
        ssize_t n = read(rd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    reap(child->pidfd.get());
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        if (auto m = parse_logread_line(std::string_view(text).substr(pos, nl - pos))) out.push_back(std::move(*m));
        pos = nl + 1;
    }
    return out;
}

}  // namespace

int log_forward_main(const std::string& url) {
    openlog("log-forward", LOG_PID, LOG_SYSLOG);
    signal(SIGPIPE, SIG_IGN);
    auto remote = parse_log_remote(url);
    if (!remote) {
        syslog(LOG_ERR, "%s", remote.error().str().c_str());
        return 2;
    }
    // The socket syslogd sends every message to (rcS: syslogd -R local:/run/log/forward). A
    // queue of 256 datagrams (rcS raises net.unix.max_dgram_qlen from 10), so a burst of lines
    // while this process waits for the CPU is not lost.
    UniqueFd in(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", kLogForwardSocket);
    unlink(kLogForwardSocket);
    if (!in || bind(in.get(), reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
        syslog(LOG_ERR, "%s: %s", kLogForwardSocket, std::strerror(errno));
        return 1;
    }
    chmod(kLogForwardSocket, 0600);  // syslogd (root) writes it; nobody else
    int rcvbuf = 1 << 20;
    setsockopt(in.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    // The backlog goes to a log host once per boot: not again when this restarts for the same one.
    std::string last = read_file_text(kLogForwardRecord);
    bool send_backlog = last != remote->url() + "\n";
    if (send_backlog) {
        std::ofstream rec(kLogForwardRecord, std::ios::trunc);
        rec << remote->url() << '\n';
    }
    // From here on nothing needs root: the socket is bound, the log host is a plain client
    // connection. Nobody, no capabilities, no way back.
    if (std::string why = drop_privileges(); !why.empty()) {
        syslog(LOG_ERR, "cannot drop privileges: %s", why.c_str());
        return 1;
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) std::strcpy(host, "-");

    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT}) sigaddset(&mask, s);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    UniqueFd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    auto loop = EventLoop::create();
    if (!loop || !sfd) {
        syslog(LOG_ERR, "cannot set up the event loop");
        return 1;
    }
    LogForwarder fwd(**loop, *remote);

    auto receive = [&](std::vector<std::pair<LogMessage, std::chrono::system_clock::time_point>>* keep) {
        char buf[4096];
        while (true) {
            ssize_t n = recv(in.get(), buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            auto now = std::chrono::system_clock::now();
            for (auto& m : parse_datagram(std::string_view(buf, static_cast<size_t>(n)))) {
                if (keep)
                    keep->emplace_back(std::move(m), now);
                else
                    fwd.push(rfc5424(m, host, now));
            }
        }
    };
    size_t backlog_lines = 0;
    if (send_backlog) {
        // Bound first, dumped second: every line after the bind arrived here before syslogd
        // stored it, so the dump and the socket overlap and nothing falls between them.
        auto dump = logread_dump();
        std::vector<std::pair<LogMessage, std::chrono::system_clock::time_point>> live;
        receive(&live);
        auto first = live.empty() ? std::nullopt : std::optional<LogMessage>(live.front().first);
        auto now = std::chrono::system_clock::now();
        for (auto& m : backlog(dump, first)) {
            auto t = stamp_time(m.stamp, now);
            fwd.push(rfc5424(m, host, t ? *t : now, false));
            ++backlog_lines;
        }
        for (auto& [m, t] : live) fwd.push(rfc5424(m, host, t));
    }
    syslog(LOG_INFO, "forwarding the log to %s (%zu earlier lines of this boot first)", remote->url().c_str(),
           backlog_lines);
    fwd.start();

    auto w_in = (*loop)->watch_fd(in.get(), EPOLLIN, [&](uint32_t) { receive(nullptr); });
    // Stopping (a reload that drops or changes [log] remote, the router going down): what is
    // queued gets up to 2 s to reach the log host, the shutdown's own lines among it.
    Registration deadline, tick;
    std::function<void()> stop_when_drained = [&] {
        if (fwd.queue().empty()) return (*loop)->stop();
        tick = (*loop)->after(std::chrono::milliseconds(50), stop_when_drained);
    };
    auto w_sig = (*loop)->watch_fd(sfd.get(), EPOLLIN, [&](uint32_t) {
        signalfd_siginfo si;
        while (read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
        }
        if (deadline) return;
        receive(nullptr);
        if (w_in) w_in->reset();
        deadline = (*loop)->after(std::chrono::seconds(2), [&] { (*loop)->stop(); });
        stop_when_drained();
    });
    if (!w_in || !w_sig) {
        syslog(LOG_ERR, "cannot watch the sockets");
        return 1;
    }
    if (auto st = (*loop)->run(); !st) {
        syslog(LOG_ERR, "%s", st.error().str().c_str());
        return 1;
    }
    return 0;
}

}  // namespace netd
