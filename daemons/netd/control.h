// The control socket that netctl (and later the udhcpc hook) talk to: a UNIX SOCK_SEQPACKET
// socket, one request and one reply per connection, only root peers (SO_PEERCRED).
//
// Request: the command's arguments separated by NUL bytes, at most 64 KiB (a longer one is
// refused, not executed). Reply: "0\n" or "1\n" (success or failure, which netctl
// turns into its exit status) followed by the text to print.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "event_loop.h"
#include "unique_fd.h"

namespace netd {

struct ControlReply {
    bool ok = true;
    std::string text;
};

class ControlServer {
public:
    using Handler = std::function<ControlReply(const std::vector<std::string>& args)>;

    // Binds path (replacing a stale socket) and serves requests on the loop.
    static Result<std::unique_ptr<ControlServer>> listen(EventLoop& loop, const std::string& path, Handler handler,
                                                         uid_t allowed_uid = 0);
    ~ControlServer();

private:
    ControlServer(EventLoop& loop, UniqueFd fd, std::string path, Handler handler, uid_t allowed);
    void accept_one();
    // Out of descriptors: the pending connection stays queued and the socket readable, so
    // accepting is paused (100 ms doubling to 1 s) instead of spinning the loop.
    void pause_accepting(const std::string& why);
    void resume_accepting();
    void serve(uint64_t id);
    void drop(uint64_t id);

    EventLoop& loop_;
    UniqueFd fd_;
    std::string path_;
    Handler handler_;
    uid_t allowed_uid_;
    Registration watch_;
    Registration resume_;                 // while accepting is paused
    std::chrono::milliseconds backoff_{0};  // zero: not paused since the last accepted connection
    struct Client {
        uint64_t id;
        UniqueFd fd;
        bool allowed;  // refused peers get their refusal after their request is read
        Registration watch, deadline;   // released before fd closes
    };
    std::vector<Client> clients_;
    uint64_t next_id_ = 1;
};

// A request's arguments (what control_request sends: args joined by NUL bytes).
std::vector<std::string> split_request(std::string_view request);

// The client side, used by netctl: sends args, returns the reply.
Result<ControlReply> control_request(const std::string& path, const std::vector<std::string>& args);


}  // namespace netd
