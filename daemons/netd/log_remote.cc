// [log] remote: the log host's URL, parsed strictly (config.h). Shared by the config reader and
// the forwarder (`netd --log-forward URL`), so both read the same thing.
#include "config.h"

namespace netd {

std::string LogRemote::url() const {
    std::string host = address.family == 6 ? "[" + address.addr_str() + "]" : address.addr_str();
    return std::string(to_string(proto)) + "://" + host + ":" + std::to_string(port);
}

Result<LogRemote> parse_log_remote(std::string_view text) {
    const std::string t(text);
    LogRemote r;
    std::string_view rest;
    if (text.rfind("udp://", 0) == 0) {
        r.proto = Proto::udp;
        rest = text.substr(6);
    } else if (text.rfind("tcp://", 0) == 0) {
        r.proto = Proto::tcp;
        rest = text.substr(6);
    } else {
        return Error{"'" + t + "' is not udp://ADDRESS[:PORT] or tcp://ADDRESS[:PORT] (e.g. udp://192.0.2.1 or "
                     "tcp://[2001:db8::1]:514)"};
    }
    std::string_view host, port;
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) return Error{"'" + t + "': no ']' after the IPv6 address"};
        host = rest.substr(1, close - 1);
        std::string_view after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return Error{"'" + t + "': expected ':PORT' or nothing after ']'"};
            port = after.substr(1);
            if (port.empty()) return Error{"'" + t + "': the port is missing after ':'"};
        }
        auto a = Ipv6Addr::parse(host);
        if (!a) return Error{"'" + t + "': '" + std::string(host) + "' is not an IPv6 address"};
        if (a->is_multicast() || a->is_link_local() || *a == Ipv6Addr{} || *a == *Ipv6Addr::parse("::1"))
            return Error{"'" + t + "': " + a->str() + " is not a unicast address another host can have"};
        r.address = IpCidr::v6(*a);
    } else {
        auto colon = rest.find(':');
        host = rest.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = rest.substr(colon + 1);
            if (port.find(':') != std::string_view::npos)
                return Error{"'" + t + "': an IPv6 address goes in brackets (tcp://[2001:db8::1]:514)"};
            if (port.empty()) return Error{"'" + t + "': the port is missing after ':'"};
        }
        if (host.empty()) return Error{"'" + t + "': the address is missing"};
        auto a = Ipv4Addr::parse(host);
        if (!a) {
            if (is_valid_domain_name(host))
                return Error{"'" + t + "': give the log host's address, not a name (the log must not depend on DNS)"};
            return Error{"'" + t + "': '" + std::string(host) + "' is not an IPv4 address"};
        }
        if (!is_unicast_host(*a)) return Error{"'" + t + "': " + a->str() + " is not a unicast address another host can have"};
        r.address = IpCidr::v4(*a);
    }
    if (!port.empty()) {
        unsigned long v = 0;
        bool ok = port.size() <= 5 && port.find_first_not_of("0123456789") == std::string_view::npos;
        if (ok) v = std::stoul(std::string(port));
        if (!ok || v < 1 || v > 65535) return Error{"'" + t + "': port '" + std::string(port) + "' is not 1..65535"};
        r.port = static_cast<uint16_t>(v);
    }
    return r;
}

}  // namespace netd
