// The remote log's messages (log_forward.h), as pure functions for tests and the fuzzer: a
// datagram as syslogd hands it over and a line of logread read into their parts, their RFC 5424
// form and framing, the backlog's end, and the bounded queue of what waits for the log host.
// Everything syslogd forwards comes from any local process: nothing here trusts it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace netd {

// One log message, from syslogd's socket or from a logread line.
struct LogMessage {
    int pri = 13;               // facility * 8 + severity; user.notice when the sender gave none
    std::string app = "-";      // RFC 5424 APP-NAME: the tag ("dnsmasq"), "-" when none
    std::string procid = "-";   // the [pid] after the tag
    std::string text;           // the message, control characters escaped as syslogd does (^M)
    std::string stamp;          // the sender's "Mmm dd hh:mm:ss", empty when it gave none
};

// A datagram as syslogd forwards it: one or more messages separated by NUL bytes, each
// "<PRI>Mmm dd hh:mm:ss tag[pid]: text" (timestamp and tag optional), trailing newlines.
std::vector<LogMessage> parse_datagram(std::string_view datagram);
// A line of logread (syslogd's buffer): "Mmm dd hh:mm:ss HOST facility.severity tag[pid]: text".
std::optional<LogMessage> parse_logread_line(std::string_view line);

// RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG"; the time in UTC,
// microseconds when `precise` (the moment it arrived), whole seconds otherwise.
std::string rfc5424(const LogMessage& m, std::string_view hostname,
                    std::chrono::system_clock::time_point when, bool precise = true);
// The time a logread stamp ("Mmm dd hh:mm:ss", local time, no year) stands for: the latest
// such moment not more than a day after `now` (a December line read on the 1st of January is
// from last year).
std::optional<std::chrono::system_clock::time_point> stamp_time(std::string_view stamp,
                                                               std::chrono::system_clock::time_point now);
// On the wire: TCP frames each message with its length (RFC 6587 section 3.4.1), UDP sends it
// as it is.
std::string frame(Proto proto, std::string_view message);

// The backlog: the lines of a logread dump that came before the first message the socket
// received (live, which syslogd sent before storing it, so it is in the dump too when the dump
// came after it). Without live messages, all of them.
std::vector<LogMessage> backlog(const std::vector<LogMessage>& dump, const std::optional<LogMessage>& first_live);

// Messages waiting for the log host, at most `limit` bytes: the oldest go first when full.
class LogQueue {
public:
    explicit LogQueue(size_t limit) : limit_(limit) {}
    void push(std::string framed);
    bool empty() const { return q_.empty(); }
    const std::string& front() const { return q_.front(); }
    void pop();
    size_t size() const { return q_.size(); }
    size_t bytes() const { return bytes_; }
    // While the front message is partly written (TCP), it is not dropped.
    void set_front_busy(bool busy) { front_busy_ = busy; }
    uint64_t dropped() const { return dropped_; }

private:
    size_t limit_;
    std::deque<std::string> q_;
    size_t bytes_ = 0;
    bool front_busy_ = false;
    uint64_t dropped_ = 0;
};

}  // namespace netd
