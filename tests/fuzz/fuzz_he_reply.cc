// libFuzzer target: the tunnel broker's answer. The first two bytes are the HTTP status, the
// rest the body for parse_he_reply, which the he handler then gets as the update helper's
// output. Only the body's first word may decide, and whatever the answer, the handler's
// status must stay printable text that `netctl status` (text and JSON) can show.
#include <syslog.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tunnel.h"

namespace {

struct NoTimers : netd::Scheduler {
    netd::Registration after(std::chrono::milliseconds, std::function<void()>) override { return {}; }
};
struct OneUpdate : netd::UpdateRunner {
    std::function<void(const std::string&)> done;
    netd::Registration start(const netd::HeRequest&, std::function<void(const std::string&)> d) override {
        done = std::move(d);
        return netd::Registration([] {});
    }
};
struct NoDatagrams : netd::DatagramSender {
    std::string send(const std::string&, netd::Ipv4Addr, uint16_t) override { return ""; }
};

bool printable(const std::string& s) {
    for (unsigned char ch : s)
        if (ch < 0x20 || ch > 0x7e) return false;
    return true;
}

std::string_view first_word(std::string_view b) {
    auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
    size_t i = 0;
    while (i < b.size() && blank(b[i])) ++i;
    size_t j = i;
    while (j < b.size() && !blank(b[j])) ++j;
    return b.substr(i, j - i);
}

void check_reply(int status, std::string_view body) {
    using netd::HeOutcome;
    HeOutcome o = netd::parse_he_reply(status, body);
    std::string_view w = first_word(body);
    switch (o) {
        case HeOutcome::good:
        case HeOutcome::nochg:
            if (status != 200 || w != netd::to_string(o)) std::abort();
            break;
        case HeOutcome::badauth:
        case HeOutcome::abuse:
            if (w != netd::to_string(o)) std::abort();
            break;
        case HeOutcome::failed:
            if (w == "badauth" || w == "abuse" || (status == 200 && (w == "good" || w == "nochg"))) std::abort();
            break;
    }
}

void check_handler(const std::string& output) {
    NoTimers sched;
    OneUpdate updates;
    NoDatagrams datagrams;
    netd::TunnelConfig cfg;
    cfg.mode = netd::TunnelMode::he;
    cfg.tunnel_id = "1";
    cfg.username = "u";
    cfg.update_key = "k";
    auto h = netd::make_tunnel_handler(cfg, {sched, updates, datagrams, [] { return int64_t{0}; }, nullptr});
    auto wan = netd::Ipv4Addr::parse("192.0.2.7");
    h->wan_changed(wan);
    if (!updates.done) std::abort();
    updates.done(output);
    auto s = h->status();
    if (!printable(s.last) || !printable(s.detail) || !printable(s.broker_address)) std::abort();
    if (!s.broker_address.empty()) {
        auto a = netd::Ipv4Addr::parse(s.broker_address);
        if (!a || a->str() != s.broker_address) std::abort();
    }
    for (char ch : netd::tunnel_status_text(s, cfg, wan))
        if (ch != '\n' && !printable(std::string(1, ch))) std::abort();
    (void)netd::tunnel_status_json(s, cfg, wan).dump();  // throws on bytes that are not UTF-8
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setlogmask(LOG_UPTO(LOG_EMERG));  // the handler logs every outcome; keep them off the host's log
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    int status = (data[0] << 8 | data[1]) % 1000;
    std::string body(reinterpret_cast<const char*>(data) + 2, size - 2);
    check_reply(status, body);
    // An odd first byte: the body is the helper's whole output, as it would be if the helper
    // printed something unexpected; even: its normal "HTTP <status>" line, then the body.
    check_handler(data[0] & 1 ? body : "HTTP " + std::to_string(status) + "\n" + body);
    return 0;
}
