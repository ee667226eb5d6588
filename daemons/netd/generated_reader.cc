#include "generated_reader.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace netd {
namespace {

std::string where(size_t line, const std::string& what) { return "line " + std::to_string(line) + ": " + what; }

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    while (true) {
        auto p = s.find(sep);
        out.emplace_back(s.substr(0, p));
        if (p == std::string_view::npos) return out;
        s.remove_prefix(p + 1);
    }
}

// The lines of a file that must end with a line end (a missing one means a truncated file).
Result<std::vector<std::string_view>> lines_of(std::string_view text) {
    if (text.find('\0') != std::string_view::npos) return Error{"the file holds a NUL byte"};
    if (text.empty() || text.back() != '\n') return Error{"the file does not end with a line end"};
    text.remove_suffix(1);
    std::vector<std::string_view> out;
    while (true) {
        auto p = text.find('\n');
        out.push_back(text.substr(0, p));
        if (p == std::string_view::npos) return out;
        text.remove_prefix(p + 1);
    }
}

Directives sorted(Directives d) {
    std::sort(d.begin(), d.end());
    return d;
}

std::string describe(const Directive& d) {
    std::string s = d.key;
    for (auto& a : d.args) s += " [" + a + "]";
    return s;
}

// radvd's lexer reads these as keywords (and numbers as numbers) wherever they stand, so
// they cannot be a name (an interface, a DNSSL suffix): the grammar then fails.
bool radvd_reads_as_token(const std::string& w) {
    static const std::set<std::string> kKeywords = {
        "interface", "prefix", "route", "RDNSS", "DNSSL", "clients", "lowpanco", "abro", "RASrcAddress",
        "nat64prefix", "autoignoreprefixes", "on", "off", "infinity", "IgnoreIfMissing", "AdvSendAdvert",
        "MaxRtrAdvInterval", "MinRtrAdvInterval", "MinDelayBetweenRAs", "AdvManagedFlag", "AdvOtherConfigFlag",
        "AdvLinkMTU", "AdvRAMTU", "AdvReachableTime", "AdvRetransTimer", "AdvCurHopLimit", "AdvDefaultLifetime",
        "AdvDefaultPreference", "AdvSourceLLAddress", "AdvOnLink", "AdvAutonomous", "AdvValidLifetime",
        "AdvPreferredLifetime", "DeprecatePrefix", "DecrementLifetimes", "AdvRouterAddr", "AdvHomeAgentFlag",
        "AdvIntervalOpt", "AdvHomeAgentInfo", "UnicastOnly", "UnrestrictedUnicast", "AdvRASolicitedUnicast",
        "AdvCaptivePortalAPI", "Base6Interface", "Base6to4Interface", "HomeAgentPreference", "HomeAgentLifetime",
        "AdvRoutePreference", "AdvRouteLifetime", "RemoveRoute", "AdvRDNSSPreference", "AdvRDNSSOpenFlag",
        "AdvRDNSSLifetime", "FlushRDNSS", "AdvDNSSLLifetime", "FlushDNSSL", "AdvMobRtrSupportFlag",
        "AdvContextLength", "AdvContextCompressionFlag", "AdvContextID", "AdvLifeTime", "AdvContextPrefix",
        "AdvVersionLow", "AdvVersionHigh", "Adv6LBRaddress", "RemoveAdvOnExit"};
    if (kKeywords.count(w)) return true;
    // NUMBER, SIGNEDNUMBER, DECIMAL; an IPv6 address is IPV6ADDR.
    std::string_view d = w;
    if (!d.empty() && d[0] == '-') d.remove_prefix(1);
    auto digits = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    auto dot = d.find('.');
    if (digits(d) || (dot != std::string_view::npos && digits(d.substr(0, dot)) && digits(d.substr(dot + 1))))
        return true;
    return w.find(':') != std::string::npos && Ipv6Addr::parse(w);
}

}  // namespace

// dnsmasq reads a line as "option" or "option=value" (comma-separated fields). It turns
// whitespace into separators, strips quotes and backslash escapes, starts a comment at a '#'
// after whitespace, and reads at most 1024 characters of a line (the rest becomes a line of
// its own). None of that may apply to a generated line.
Result<Directives> read_dnsmasq_conf(std::string_view text) {
    auto lines = lines_of(text);
    if (!lines) return lines.error();
    Directives out;
    size_t n = 0;
    for (std::string_view l : *lines) {
        ++n;
        if (l.empty() || l[0] == '#') continue;
        if (l.size() >= 1024) return Error{where(n, "longer than dnsmasq reads at once")};
        for (char ch : l)
            if (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '\\' || ch == '#')
                return Error{where(n, std::string("dnsmasq would not read character ") + std::to_string(int(ch)) +
                                          " literally: " + std::string(l))};
        auto eq = l.find('=');
        Directive d{std::string(l.substr(0, eq)), {}};
        if (d.key.empty() || !std::all_of(d.key.begin(), d.key.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            }))
            return Error{where(n, "not an option name: " + std::string(l))};
        if (eq != std::string_view::npos) d.args = split(l.substr(eq + 1), ',');
        out.push_back(std::move(d));
    }
    return sorted(std::move(out));
}

// radvd's grammar: statements "Name words ;" and blocks "Name words { statements } ;",
// '#' comments. Words are radvd's STRING, NUMBER and address tokens.
Result<Directives> read_radvd_conf(std::string_view text) {
    auto lines = lines_of(text);
    if (!lines) return lines.error();
    struct Token {
        std::string text;
        size_t line;
    };
    std::vector<Token> toks;
    size_t n = 0;
    for (std::string_view l : *lines) {
        ++n;
        l = l.substr(0, l.find('#'));
        size_t i = 0;
        while (i < l.size()) {
            char ch = l[i];
            if (ch == ' ' || ch == '\t') {
                ++i;
            } else if (ch == '{' || ch == '}' || ch == ';') {
                toks.push_back({std::string(1, ch), n});
                ++i;
            } else {
                size_t b = i;
                while (i < l.size() && (std::isalnum(static_cast<unsigned char>(l[i])) ||
                                        std::string_view("_.:/-").find(l[i]) != std::string_view::npos))
                    ++i;
                if (i == b)
                    return Error{where(n, "radvd has no token for character " + std::to_string(int(ch)) + ": " +
                                              std::string(l))};
                toks.push_back({std::string(l.substr(b, i - b)), n});
            }
        }
    }
    Directives out;
    size_t pos = 0;
    // One block's statements up to its '}' (or the end of the file at the top level).
    auto block = [&](auto&& self, const std::string& path) -> Status {
        while (pos < toks.size() && toks[pos].text != "}") {
            size_t line = toks[pos].line;
            Directive d;
            while (pos < toks.size() && toks[pos].text != "{" && toks[pos].text != ";" && toks[pos].text != "}") {
                if (d.key.empty())
                    d.key = path + toks[pos].text;
                else
                    d.args.push_back(toks[pos].text);
                ++pos;
            }
            if (d.key.empty() || pos == toks.size() || toks[pos].text == "}")
                return Error{where(line, "a statement without a name or its ';'")};
            std::string name = d.key.substr(path.size());
            if (path.empty() && name != "interface") return Error{where(line, "only interface blocks at the top")};
            if (name == "interface" || name == "DNSSL")
                for (auto& a : d.args)
                    if (radvd_reads_as_token(a)) return Error{where(line, "radvd reads '" + a + "' as a keyword or number, not a name")};
            bool is_block = toks[pos].text == "{";
            ++pos;
            std::string inner = path + name;
            for (auto& a : d.args) inner += " " + a;
            out.push_back(std::move(d));
            if (is_block) {
                if (auto s = self(self, inner + " > "); !s) return s;
                if (pos + 1 >= toks.size() || toks[pos].text != "}" || toks[pos + 1].text != ";")
                    return Error{where(line, "block not closed by '};'")};
                pos += 2;
            }
        }
        return Ok{};
    };
    if (auto s = block(block, ""); !s) return s.error();
    if (pos != toks.size()) return Error{where(toks[pos].line, "'}' without a block")};
    return sorted(std::move(out));
}

// sshd reads "Keyword arguments" (or "Keyword=arguments"), case-insensitive keywords, quoted
// arguments, and a '#' that starts an argument ends the line.
Result<Directives> read_sshd_config(std::string_view text) {
    auto lines = lines_of(text);
    if (!lines) return lines.error();
    Directives out;
    size_t n = 0;
    for (std::string_view l : *lines) {
        ++n;
        if (l.empty() || l[0] == '#') continue;
        for (char ch : l)
            if ((ch < ' ' && ch != '\t') || ch >= 0x7f || ch == '"' || ch == '\'' || ch == '\\' || ch == '=' || ch == '#')
                return Error{where(n, "sshd would not read character " + std::to_string(int(ch)) +
                                          " literally: " + std::string(l))};
        std::vector<std::string> words;
        for (auto& w : split(l, ' '))
            for (auto& x : split(w, '\t'))
                if (!x.empty()) words.push_back(x);
        if (words.empty()) return Error{where(n, "a line of blanks")};
        Directive d{words[0], {words.begin() + 1, words.end()}};
        for (char& c : d.key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.push_back(std::move(d));
    }
    return sorted(std::move(out));
}

ExpectedDirectives expected_directives(const Config& c, const RuntimeFacts& f, const std::string& run_dir) {
    ExpectedDirectives e;
    // One segment (the generators' multi-segment output is pinned by golden tests instead).
    const auto& lan = c.lans[0];
    const SegmentFacts sf = f.lan(lan.name);
    const std::string router = lan.ipv4.addr.str();

    auto& d = e.dnsmasq;
    d = {{"user", {"dnsmasq"}},   {"group", {"nogroup"}},      {"interface", {sf.ifname}}, {"interface", {"lo"}},
         {"bind-dynamic", {}},   {"resolv-file", {run_dir + "/resolv.wan"}}};
    for (auto& s : c.dns.upstream) d.push_back({"server", {s}});
    d.insert(d.end(), {{"domain-needed", {}},
                       {"bogus-priv", {}},
                       {"stop-dns-rebind", {}},
                       {"rebind-localhost-ok", {}},
                       {"cache-size", {std::to_string(c.dns.cache_size)}},
                       {"domain", {lan.domain}},
                       {"local", {"/" + lan.domain + "/"}},
                       {"expand-hosts", {}}});
    if (!f.hostsdir.empty()) d.push_back({"hostsdir", {f.hostsdir}});
    for (auto& p : lan.ipv6_prefixes) {
        static const char hex[] = "0123456789abcdef";
        std::string zone;
        for (int i = 7; i >= 0; --i)
            zone += std::string{hex[p.addr.bytes[i] & 0xf], '.', hex[p.addr.bytes[i] >> 4], '.'};
        d.push_back({"local", {"/" + zone + "ip6.arpa/"}});
    }
    if (!lan.ipv6_prefixes.empty())
        d.insert(d.end(), {{"dhcp-range", {"::", "constructor:" + sf.ifname, "static"}},
                           {"dhcp-option", {"option6:dns-server", "[::]"}},
                           {"dhcp-option", {"option6:domain-search", lan.domain}}});
    if (lan.dhcp.enabled) {
        d.insert(d.end(), {{"dhcp-authoritative", {}},
                           {"dhcp-range",
                            {lan.dhcp.range_start.str(), lan.dhcp.range_end.str(), Ipv4Addr{lan.ipv4.netmask()}.str(),
                             std::to_string(lan.dhcp.lease_seconds)}},
                           {"dhcp-option", {"option:router", router}},
                           {"dhcp-option", {"option:dns-server", router}},
                           {"dhcp-option", {"option:domain-search", lan.domain}},
                           {"dhcp-leasefile", {"/data/var/lib/misc/dnsmasq.leases"}}});
        if (c.ntp.serve_lan) d.push_back({"dhcp-option", {"option:ntp-server", router}});
        for (auto& h : lan.dhcp.hosts) {
            Directive host{"dhcp-host", {h.mac.str(), h.ip.str()}};
            if (!h.name.empty()) host.args.push_back(h.name);
            d.push_back(host);
        }
    }

    // radvd: DNSSL suffixes are written fully qualified (see service_configs.cc).
    const std::string iface = "interface " + sf.ifname + " > ";
    // radvd writes a segment's block only when it has a prefix to announce.
    auto& r = e.radvd;
    if (!lan.ipv6_prefixes.empty()) {
        r = {{"interface", {sf.ifname}},
             {iface + "AdvSendAdvert", {"on"}},
             {iface + "MinRtrAdvInterval", {"30"}},
             {iface + "MaxRtrAdvInterval", {"100"}},
             {iface + "AdvLinkMTU", {std::to_string(sf.mtu)}},
             {iface + "AdvDefaultLifetime", {f.ipv6_uplink ? "1800" : "0"}},
             {iface + "DNSSL", {lan.domain.back() == '.' ? lan.domain : lan.domain + "."}}};
        for (auto& p : lan.ipv6_prefixes) {
            r.push_back({iface + "prefix", {p.str()}});
            r.push_back({iface + "prefix " + p.str() + " > AdvOnLink", {"on"}});
            r.push_back({iface + "prefix " + p.str() + " > AdvAutonomous", {"on"}});
        }
        if (!lan.ipv6_prefixes.empty()) {
            r.push_back({iface + "RDNSS", {lan.ipv6_prefixes.front().with_host(1).str()}});
            r.push_back({iface + "AdvOtherConfigFlag", {"on"}});
        }

    }

    auto& s = e.sshd;
    s = {{"port", {std::to_string(c.ssh.port)}}, {"include", {"/etc/ssh/sshd_config"}}};
    if (c.ssh.allow_wan) {
        s.push_back({"listenaddress", {"0.0.0.0"}});
        s.push_back({"listenaddress", {"::"}});
    } else if (lan.ssh) {
        s.push_back({"listenaddress", {router}});
        for (auto& p : lan.ipv6_prefixes) s.push_back({"listenaddress", {p.with_host(1).str()}});
    } else {   // SSH on no segment: loopback only
        s.push_back({"listenaddress", {"127.0.0.1"}});
        s.push_back({"listenaddress", {"::1"}});
    }

    e.dnsmasq = sorted(std::move(e.dnsmasq));
    e.radvd = sorted(std::move(e.radvd));
    e.sshd = sorted(std::move(e.sshd));
    return e;
}

std::string directives_diff(const Directives& want, const Directives& got) {
    Directives missing, extra;
    std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missing));
    std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
    std::string o;
    for (auto& d : missing) o += "  missing: " + describe(d) + "\n";
    for (auto& d : extra) o += "  extra:   " + describe(d) + "\n";
    return o;
}

}  // namespace netd
