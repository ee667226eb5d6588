#include "log_message.h"

#include <cstdio>
#include <ctime>
#include <iterator>

namespace netd {
namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// syslogd's test for a sender's timestamp: "Mmm dd hh:mm:ss " (16 bytes).
bool has_stamp(std::string_view s) {
    return s.size() >= 16 && s[3] == ' ' && s[6] == ' ' && s[9] == ':' && s[12] == ':' && s[15] == ' ';
}

// "tag[pid]: text" or "tag: text" (RFC 3164's TAG, as syslog(3) and logger write it); anything
// else is all text, with no APP-NAME.
void split_tag(std::string_view body, LogMessage& m) {
    m.text = std::string(body);
    size_t i = 0;
    while (i < body.size() && i < 48 && body[i] > ' ' && body[i] < 0x7f && body[i] != '[' && body[i] != ':') ++i;
    if (i == 0) return;
    std::string_view app = body.substr(0, i), procid;
    if (i < body.size() && body[i] == '[') {
        size_t close = body.find(']', i);
        if (close == std::string_view::npos || close == i + 1 || close - i - 1 > 20) return;
        procid = body.substr(i + 1, close - i - 1);
        if (procid.find_first_not_of("0123456789") != std::string_view::npos) return;
        i = close + 1;
    }
    if (i >= body.size() || body[i] != ':') return;
    ++i;
    if (i < body.size() && body[i] == ' ') ++i;
    m.app = std::string(app);
    if (!procid.empty()) m.procid = std::string(procid);
    m.text = std::string(body.substr(i));
}

struct Code {
    const char* name;
    int value;
};
// glibc's facilitynames and prioritynames, which syslogd prints (facility.severity).
constexpr Code kFacilities[] = {{"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},   {"auth", 4},
                                {"security", 4}, {"syslog", 5},  {"lpr", 6},     {"news", 7},     {"uucp", 8},
                                {"cron", 9},    {"authpriv", 10}, {"ftp", 11},  {"local0", 16},  {"local1", 17},
                                {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21},  {"local6", 22},
                                {"local7", 23}};
constexpr Code kSeverities[] = {{"emerg", 0}, {"panic", 0},  {"alert", 1}, {"crit", 2},    {"err", 3},  {"error", 3},
                                {"warn", 4},  {"warning", 4}, {"notice", 5}, {"info", 6}, {"debug", 7}};

std::optional<int> code_of(std::string_view name, const Code* begin, const Code* end) {
    for (const Code* c = begin; c != end; ++c)
        if (name == c->name) return c->value;
    return std::nullopt;
}

std::optional<int> parse_pri_number(std::string_view digits) {
    if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    int v = std::stoi(std::string(digits));
    return v <= 191 ? std::optional<int>(v) : std::nullopt;
}

bool same_message(const LogMessage& a, const LogMessage& b) {
    return a.pri == b.pri && a.app == b.app && a.procid == b.procid && a.text == b.text;
}

}  // namespace

std::vector<LogMessage> parse_datagram(std::string_view d) {
    std::vector<LogMessage> out;
    while (!d.empty() && (d.back() == '\n' || d.back() == '\0')) d.remove_suffix(1);
    while (!d.empty()) {
        size_t nul = d.find('\0');
        std::string_view one = d.substr(0, nul);
        d = nul == std::string_view::npos ? std::string_view{} : d.substr(nul + 1);
        if (one.empty()) continue;
        LogMessage m;
        // As syslogd reads it: "<PRI>" (anything not a facility and severity: user.notice).
        if (one[0] == '<') {
            size_t close = one.find('>');
            auto pri = close == std::string_view::npos ? std::nullopt : parse_pri_number(one.substr(1, close - 1));
            if (pri) {
                m.pri = *pri;
                one.remove_prefix(close + 1);
            }
        }
        // Control characters as syslogd writes them (a newline becomes a space, others ^X), so
        // the log host reads what logread shows.
        std::string text;
        for (char c : one) {
            unsigned char u = static_cast<unsigned char>(c);
            if (c == '\n') {
                text += ' ';
            } else if (u < 0x20 && c != '\t') {
                text += '^';
                text += static_cast<char>(u + '@');
            } else {
                text += c;
            }
        }
        std::string_view body = text;
        if (has_stamp(body)) {
            m.stamp = std::string(body.substr(0, 15));
            body.remove_prefix(16);
        }
        split_tag(body, m);
        out.push_back(std::move(m));
    }
    return out;
}

std::optional<LogMessage> parse_logread_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.size() < 16 || !has_stamp(line)) return std::nullopt;
    LogMessage m;
    m.stamp = std::string(line.substr(0, 15));
    std::string_view rest = line.substr(16);
    size_t host_end = rest.find(' ');
    if (host_end == std::string_view::npos || host_end == 0) return std::nullopt;
    rest.remove_prefix(host_end + 1);
    size_t fp_end = rest.find(' ');
    std::string_view fp = rest.substr(0, fp_end);
    rest = fp_end == std::string_view::npos ? std::string_view{} : rest.substr(fp_end + 1);
    if (fp.size() > 2 && fp.front() == '<' && fp.back() == '>') {
        auto pri = parse_pri_number(fp.substr(1, fp.size() - 2));
        if (!pri) return std::nullopt;
        m.pri = *pri;
    } else {
        size_t dot = fp.find('.');
        if (dot == std::string_view::npos) return std::nullopt;
        auto fac = code_of(fp.substr(0, dot), std::begin(kFacilities), std::end(kFacilities));
        auto sev = code_of(fp.substr(dot + 1), std::begin(kSeverities), std::end(kSeverities));
        if (!fac || !sev) return std::nullopt;
        m.pri = *fac * 8 + *sev;
    }
    split_tag(rest, m);
    return m;
}

std::string rfc5424(const LogMessage& m, std::string_view hostname, std::chrono::system_clock::time_point when,
                    bool precise) {
    using namespace std::chrono;
    auto secs = time_point_cast<seconds>(when);
    if (secs > when) secs -= seconds(1);
    time_t tt = system_clock::to_time_t(secs);
    tm t{};
    gmtime_r(&tt, &t);
    char stamp[48];
    int n = std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d", t.tm_year + 1900, t.tm_mon + 1,
                          t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
    if (precise)
        std::snprintf(stamp + n, sizeof(stamp) - n, ".%06lld",
                      static_cast<long long>(duration_cast<microseconds>(when - secs).count()));
    std::string host(hostname.empty() ? "-" : hostname);
    // RFC 5424 section 6: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG".
    std::string out = "<" + std::to_string(m.pri) + ">1 " + stamp + "Z " + host + " " + m.app + " " + m.procid + " - -";
    if (!m.text.empty()) out += " " + m.text;
    return out;
}

std::optional<std::chrono::system_clock::time_point> stamp_time(std::string_view stamp,
                                                               std::chrono::system_clock::time_point now) {
    if (stamp.size() != 15 || stamp[3] != ' ' || stamp[6] != ' ' || stamp[9] != ':' || stamp[12] != ':')
        return std::nullopt;
    int mon = -1;
    for (int i = 0; i < 12; ++i)
        if (stamp.substr(0, 3) == kMonths[i]) mon = i;
    auto num = [&](size_t at) -> int {
        char a = stamp[at] == ' ' ? '0' : stamp[at], b = stamp[at + 1];
        if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
        return (a - '0') * 10 + (b - '0');
    };
    int day = num(4), hh = num(7), mm = num(10), ss = num(13);
    if (mon < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
        return std::nullopt;
    time_t now_t = std::chrono::system_clock::to_time_t(now);
    tm nt{};
    localtime_r(&now_t, &nt);
    for (int year = nt.tm_year; year >= nt.tm_year - 1; --year) {
        tm t{};
        t.tm_year = year;
        t.tm_mon = mon;
        t.tm_mday = day;
        t.tm_hour = hh;
        t.tm_min = mm;
        t.tm_sec = ss;
        t.tm_isdst = -1;
        time_t v = mktime(&t);
        if (v != -1 && v <= now_t + 86400) return std::chrono::system_clock::from_time_t(v);
    }
    return std::nullopt;
}

std::string frame(Proto proto, std::string_view message) {
    if (proto == Proto::udp) return std::string(message);
    return std::to_string(message.size()) + " " + std::string(message);
}

std::vector<LogMessage> backlog(const std::vector<LogMessage>& dump, const std::optional<LogMessage>& first_live) {
    if (!first_live) return dump;
    // The last line that is the first live message (its stamp too, when the sender gave one):
    // it and what follows were also received live.
    for (size_t i = dump.size(); i-- > 0;) {
        if (same_message(dump[i], *first_live) && (first_live->stamp.empty() || dump[i].stamp == first_live->stamp))
            return std::vector<LogMessage>(dump.begin(), dump.begin() + static_cast<long>(i));
    }
    return dump;
}

void LogQueue::push(std::string framed) {
    bytes_ += framed.size();
    q_.push_back(std::move(framed));
    // The oldest go (not one half written): a log host that is away long loses the oldest part.
    while (bytes_ > limit_ && q_.size() > (front_busy_ ? 2u : 1u)) {
        auto victim = q_.begin() + (front_busy_ ? 1 : 0);
        bytes_ -= victim->size();
        q_.erase(victim);
        ++dropped_;
    }
}

void LogQueue::pop() {
    bytes_ -= q_.front().size();
    q_.pop_front();
    front_busy_ = false;
}

}  // namespace netd
