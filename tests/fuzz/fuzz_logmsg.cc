// The remote log's parsers (log_message.h): what syslogd hands the forwarder comes from any
// local process. A datagram, and the same bytes as logread lines, must give messages whose
// RFC 5424 form is one line of printable parts: APP-NAME 1..48 printable characters or "-",
// PROCID digits or "-", no control character but tab, and a TCP frame whose length is right.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "log_message.h"

namespace {

void check(const netd::LogMessage& m) {
    std::string s = netd::rfc5424(m, "router", std::chrono::system_clock::time_point{}, true);
    for (unsigned char c : s)
        if (c < 0x20 && c != '\t') std::abort();
    if (m.pri < 0 || m.pri > 191) std::abort();
    if (m.app != "-") {
        if (m.app.empty() || m.app.size() > 48) std::abort();
        for (unsigned char c : m.app)
            if (c <= ' ' || c >= 0x7f || c == ':' || c == '[') std::abort();
    }
    if (m.procid != "-" && m.procid.find_first_not_of("0123456789") != std::string::npos) std::abort();
    std::string f = netd::frame(netd::Proto::tcp, s);
    if (f != std::to_string(s.size()) + " " + s) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto msgs = netd::parse_datagram(in);
    for (auto& m : msgs) check(m);
    std::vector<netd::LogMessage> lines;
    for (size_t pos = 0; pos <= in.size();) {
        size_t nl = in.find('\n', pos);
        if (nl == std::string_view::npos) nl = in.size();
        if (auto m = netd::parse_logread_line(in.substr(pos, nl - pos))) {
            // A logread line holds what syslogd escaped already: only its parts are checked.
            if (m->pri < 0 || m->pri > 191) std::abort();
            lines.push_back(*m);
        }
        pos = nl + 1;
    }
    auto b = netd::backlog(lines, msgs.empty() ? std::nullopt : std::optional<netd::LogMessage>(msgs.front()));
    if (b.size() > lines.size()) std::abort();
    netd::LogQueue q(256);
    for (auto& m : msgs) q.push(netd::rfc5424(m, "-", {}, false));
    if (q.size() > 1 && q.bytes() > 256) std::abort();
    return 0;
}
