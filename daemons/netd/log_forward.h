// The remote log ([log] remote): `netd --log-forward URL`, a child netd supervises like the
// daemons. syslogd (rcS: -R local:/run/log/forward -L) hands it every message it receives,
// from netd, the daemons, the hooks and the kernel, at the moment it receives it; the forwarder
// sends each one to the log host in RFC 5424 form, over UDP (RFC 5426: one message per
// datagram) or TCP (RFC 6587 octet counting: "LEN SP MSG", which rsyslog and syslog-ng take).
//
// It never holds anything up: syslogd sends to it without waiting (a message it cannot take is
// lost for the log host only, never for the local log), and the log host's side is a bounded
// queue (kQueueBytes; the oldest lines go first, counted) drained by non-blocking sockets, with
// TCP reconnecting after 1 s doubling to 60 s. When forwarding to a log host starts for the
// first time in a boot, the lines already in syslogd's buffer (logread: the boot so far, netd's
// start included) go first, so the log host sees the whole boot.
//
// The pure parts (parsing, RFC 5424, framing, the queue) are in log_message.h; LogForwarder
// does the sending on an EventLoop.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config.h"
#include "event_loop.h"
#include "log_message.h"

namespace netd {

// Where syslogd hands every message (its -R local:PATH), and the record of the log host the
// forwarder last started for in this boot (a restart for the same one sends no backlog again).
inline constexpr const char* kLogForwardSocket = "/run/log/forward";
inline constexpr const char* kLogForwardRecord = "/run/log/forward.url";
inline constexpr size_t kQueueBytes = 512 * 1024;

// Sends to the log host; never blocks. UDP: a message the network cannot take now (no route,
// a full buffer) stays queued and is tried again later. TCP: connects, reconnects after
// 1 s doubling to 60 s, and sends what is queued; what the kernel had accepted on a
// connection that then broke is lost (it cannot be known).
class LogForwarder {
public:
    struct Options {
        size_t queue_bytes = kQueueBytes;
        std::chrono::milliseconds min_backoff{1000};
        std::chrono::milliseconds max_backoff{60000};
        // A TCP connection whose data the host has not acknowledged for this long is given up
        // (TCP_USER_TIMEOUT), so a host that vanished is noticed and reconnected to.
        std::chrono::milliseconds tcp_user_timeout{30000};
    };
    LogForwarder(EventLoop& loop, LogRemote remote, Options opts);
    LogForwarder(EventLoop& loop, LogRemote remote) : LogForwarder(loop, std::move(remote), Options{}) {}

    void start();
    // A message in RFC 5424 form.
    void push(const std::string& message);

    bool up() const { return up_; }
    uint64_t sent() const { return sent_; }
    const LogQueue& queue() const { return queue_; }

private:
    void connect_now();
    void on_event(uint32_t events);
    void flush();
    void watch(uint32_t events);
    void failed(const std::string& why);
    void retry_later();
    void went_up();

    EventLoop& loop_;
    LogRemote remote_;
    Options opts_;
    LogQueue queue_;
    UniqueFd sock_;
    Registration watch_, timer_;
    uint32_t watching_ = 0;
    bool connecting_ = false;
    bool up_ = false;            // TCP: connected; UDP: the last send worked
    bool reported_down_ = false; // the log says it is unreachable (once per outage)
    size_t written_ = 0;         // bytes of the front message already written (TCP)
    std::chrono::milliseconds backoff_;
    uint64_t sent_ = 0;
    uint64_t dropped_reported_ = 0;
};

// `netd --log-forward URL`: binds kLogForwardSocket, becomes nobody, sends the backlog (when
// this is the first start for URL in this boot), then forwards until SIGTERM.
int log_forward_main(const std::string& url);

}  // namespace netd
