#include "control.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

namespace netd {
namespace {

constexpr size_t kMaxMessage = 64 * 1024;

Result<sockaddr_un> make_addr(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path)) return Error{"socket path too long: " + path};
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(EventLoop& loop, const std::string& path, Handler handler,
                                                             uid_t allowed_uid) {
    auto addr = make_addr(path);
    if (!addr) return addr.error();
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return Error::from_errno("socket");
    unlink(path.c_str());
    // Only root may connect anyway (SO_PEERCRED below); the mode keeps others from trying.
    mode_t old = umask(0077);
    int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr));
    umask(old);
    if (rc < 0) return Error::from_errno("bind " + path);
    if (::listen(fd.get(), 16) < 0) return Error::from_errno("listen " + path);
    std::unique_ptr<ControlServer> s(new ControlServer(loop, std::move(fd), path, std::move(handler), allowed_uid));
    ControlServer* self = s.get();
    auto w = loop.watch_fd(s->fd_.get(), EPOLLIN, [self](uint32_t) { self->accept_one(); });
    if (!w) return w.error();
    s->watch_ = std::move(*w);
    return s;
}

ControlServer::ControlServer(EventLoop& loop, UniqueFd fd, std::string path, Handler handler, uid_t allowed)
    : loop_(loop), fd_(std::move(fd)), path_(std::move(path)), handler_(std::move(handler)), allowed_uid_(allowed) {}

ControlServer::~ControlServer() { unlink(path_.c_str()); }

void ControlServer::accept_one() {
    while (true) {
        UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (!c) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting(std::strerror(errno));
            return;
        }
        if (backoff_.count() != 0) {
            backoff_ = {};
            syslog(LOG_NOTICE, "control: accepting connections again");
        }
        ucred cred{};
        socklen_t len = sizeof(cred);
        bool allowed = getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == allowed_uid_;
        if (!allowed) syslog(LOG_WARNING, "control: refused connection from uid %u pid %d", cred.uid, cred.pid);
        uint64_t id = next_id_++;
        int fd = c.get();
        auto w = loop_.watch_fd(fd, EPOLLIN, [this, id](uint32_t) { serve(id); });
        if (!w) continue;
        // A client that never sends is dropped, so it cannot pile up descriptors.
        auto deadline = loop_.after(std::chrono::seconds(10), [this, id] { drop(id); });
        clients_.push_back({id, std::move(c), allowed, std::move(*w), std::move(deadline)});
    }
}

void ControlServer::pause_accepting(const std::string& why) {
    if (backoff_.count() == 0) {
        // Once per episode: the retries below would otherwise fill the log.
        syslog(LOG_ERR, "control: cannot accept connections: %s; retrying every 0.1 s to 1 s", why.c_str());
        backoff_ = std::chrono::milliseconds(100);
    } else {
        backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(1000));
    }
    watch_.reset();
    resume_ = loop_.after(backoff_, [this] { resume_accepting(); });
}

void ControlServer::resume_accepting() {
    auto w = loop_.watch_fd(fd_.get(), EPOLLIN, [this](uint32_t) { accept_one(); });
    if (!w) {
        pause_accepting(w.error().str());
        return;
    }
    watch_ = std::move(*w);
}

void ControlServer::drop(uint64_t id) {
    auto it = std::find_if(clients_.begin(), clients_.end(), [id](const Client& c) { return c.id == id; });
    if (it == clients_.end()) return;
    clients_.erase(it);  // its watch and deadline go with it
}

void ControlServer::serve(uint64_t id) {
    auto it = std::find_if(clients_.begin(), clients_.end(), [id](const Client& c) { return c.id == id; });
    if (it == clients_.end()) return;
    int fd = it->fd.get();
    std::string buf(kMaxMessage, '\0');
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n > 0 && !it->allowed) {
        // Closing with the request unread would reset the connection before the client
        // reads this; it has been read now.
        const char refused[] = "1\npermission denied: netctl needs root\n";
        send(fd, refused, sizeof(refused) - 1, MSG_NOSIGNAL);
    } else if (n > 0 && (msg.msg_flags & MSG_TRUNC)) {
        // The rest of the datagram is gone: what arrived is not the request that was sent, and
        // executing its first 64 KiB could mean something else entirely.
        syslog(LOG_WARNING, "control: refused a request longer than %zu bytes", kMaxMessage);
        std::string out = "1\nrequest refused: longer than the limit of " + std::to_string(kMaxMessage) + " bytes\n";
        send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    } else if (n > 0) {
        ControlReply r = handler_(split_request(std::string_view(buf.data(), static_cast<size_t>(n))));
        std::string out = (r.ok ? "0\n" : "1\n") + r.text;
        if (out.size() > kMaxMessage) out.resize(kMaxMessage);
        send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    }
    drop(id);
}

std::vector<std::string> split_request(std::string_view request) {
    // Every NUL separates, also a last one: ["restart", ""] stays two arguments.
    std::vector<std::string> args;
    while (true) {
        auto z = request.find('\0');
        args.emplace_back(request.substr(0, z));
        if (z == std::string_view::npos) return args;
        request.remove_prefix(z + 1);
    }
}

Result<ControlReply> control_request(const std::string& path, const std::vector<std::string>& args) {
    auto addr = make_addr(path);
    if (!addr) return addr.error();
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) return Error::from_errno("socket");
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) < 0)
        return Error::from_errno("connect " + path + " (is netd running?)");
    std::string msg;
    for (size_t i = 0; i < args.size(); ++i) {
        if (i) msg.push_back('\0');
        msg += args[i];
    }
    // netd may have answered (a refusal) and closed before our request went out: a failed
    // send still leaves its reply to read.
    std::optional<Error> send_error;
    if (send(fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL) < 0) send_error = Error::from_errno("send");
    timeval tv{30, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string buf(kMaxMessage, '\0');
    ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
    if (n <= 0 && send_error) return *send_error;
    if (n < 0) return Error::from_errno("receive reply");
    buf.resize(static_cast<size_t>(n));
    if (buf.size() < 2 || (buf[0] != '0' && buf[0] != '1') || buf[1] != '\n') return Error{"malformed reply from netd"};
    return ControlReply{buf[0] == '0', buf.substr(2)};
}


}  // namespace netd
