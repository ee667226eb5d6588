#include "control.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
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
        if (!c) return;
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
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n > 0 && !it->allowed) {
        // Closing with the request unread would reset the connection before the client
        // reads this; it has been read now.
        const char refused[] = "1\npermission denied: netctl needs root\n";
        send(fd, refused, sizeof(refused) - 1, MSG_NOSIGNAL);
    } else if (n > 0) {
        std::vector<std::string> args;
        std::string_view rest(buf.data(), static_cast<size_t>(n));
        while (!rest.empty()) {
            auto z = rest.find('\0');
            args.emplace_back(rest.substr(0, z));
            if (z == std::string_view::npos) break;
            rest.remove_prefix(z + 1);
        }
        ControlReply r = handler_(args);
        std::string out = (r.ok ? "0\n" : "1\n") + r.text;
        if (out.size() > kMaxMessage) out.resize(kMaxMessage);
        send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    }
    drop(id);
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
