#include "metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace netd {

void MetricSet::add(const std::string& name, MetricType type, const std::string& help,
                    std::vector<std::pair<std::string, std::string>> labels, std::variant<uint64_t, double> value) {
    for (auto& f : families_)
        if (f.name == name) {
            f.samples.push_back({std::move(labels), value});
            return;
        }
    families_.push_back({name, type, help, {{std::move(labels), value}}});
}

bool valid_metric_name(std::string_view n) {
    if (n.empty()) return false;
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

bool valid_label_name(std::string_view n) {
    if (n.empty() || n.substr(0, 2) == "__") return false;   // reserved for Prometheus itself
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

std::string escape_label_value(std::string_view v) {
    std::string o;
    for (char c : v) {
        if (c == '\\')
            o += "\\\\";
        else if (c == '"')
            o += "\\\"";
        else if (c == '\n')
            o += "\\n";
        else
            o += c;
    }
    return o;
}

namespace {

std::string escape_help(std::string_view v) {
    std::string o;
    for (char c : v) {
        if (c == '\\')
            o += "\\\\";
        else if (c == '\n')
            o += "\\n";
        else
            o += c;
    }
    return o;
}

std::string value_text(const std::variant<uint64_t, double>& v) {
    if (auto* u = std::get_if<uint64_t>(&v)) return std::to_string(*u);
    double d = std::get<double>(v);
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
    // The shortest of %.15g and %.17g that reads back as d. (std::to_chars for a double would
    // link libstdc++'s Ryu tables and libm into netd: +1.2 MB in the image.)
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.15g", d);
    if (std::strtod(buf, nullptr) != d) std::snprintf(buf, sizeof(buf), "%.17g", d);
    return buf;
}

}  // namespace

std::string render_prometheus(const std::vector<MetricFamily>& families) {
    std::string o;
    for (auto& f : families) {
        o += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
        o += "# TYPE " + f.name + (f.type == MetricType::counter ? " counter\n" : " gauge\n");
        for (auto& s : f.samples) {
            o += f.name;
            if (!s.labels.empty()) {
                o += "{";
                for (size_t i = 0; i < s.labels.size(); ++i)
                    o += (i ? "," : "") + s.labels[i].first + "=\"" + escape_label_value(s.labels[i].second) + "\"";
                o += "}";
            }
            o += " " + value_text(s.value) + "\n";
        }
    }
    return o;
}

nlohmann::json metrics_json(const std::vector<MetricFamily>& families) {
    auto value = [](const std::variant<uint64_t, double>& v) {
        if (auto* u = std::get_if<uint64_t>(&v)) return nlohmann::json(*u);
        return nlohmann::json(std::get<double>(v));
    };
    nlohmann::json j = nlohmann::json::object();
    for (auto& f : families) {
        if (f.samples.size() == 1 && f.samples[0].labels.empty()) {
            j[f.name] = value(f.samples[0].value);
            continue;
        }
        nlohmann::json& by = j[f.name] = nlohmann::json::object();
        for (auto& s : f.samples) {
            nlohmann::json* at = &by;
            for (size_t i = 0; i + 1 < s.labels.size(); ++i) at = &(*at)[s.labels[i].second];
            if (!s.labels.empty()) (*at)[s.labels.back().second] = value(s.value);
        }
    }
    return j;
}

std::string dhcp_action_label(std::string_view action) {
    for (const char* a : kDhcpActionLabels)
        if (action == a) return a;
    return "other";
}

void EventCounters::dhcp_event(std::string_view action, bool accepted) {
    auto& c = dhcp_events[dhcp_action_label(action)];
    ++(accepted ? c.first : c.second);
}

void EventCounters::tunnel_event(TunnelEvent e) {
    switch (e) {
        case TunnelEvent::heartbeat_sent: ++heartbeats_sent; break;
        case TunnelEvent::heartbeat_failed: ++heartbeats_failed; break;
        case TunnelEvent::update_sent: ++he_updates_sent; break;
        case TunnelEvent::update_badauth: ++he_updates_badauth; break;
        case TunnelEvent::update_abuse: ++he_updates_abuse; break;
        case TunnelEvent::update_error: ++he_updates_error; break;
    }
}

std::vector<MetricFamily> collect_metrics(const MetricsInputs& in) {
    MetricSet m;
    constexpr auto counter = MetricType::counter;
    constexpr auto gauge = MetricType::gauge;
    const EventCounters& c = in.counters;

    m.add("netd_start_time_seconds", gauge, "Unix time at which this netd process started.", {}, in.start_time_s);
    m.add("netd_uptime_seconds", gauge, "Seconds since this netd process started.", {}, in.uptime_s);
    for (auto [result, n] : {std::pair{"ok", c.reloads_ok}, {"failed", c.reloads_failed}})
        m.add("netd_reloads_total", counter,
              "Configuration reloads (netctl reload, SIGHUP) by result; failed: the file has errors or the kernel "
              "refused the change (rolled back).",
              {{"result", result}}, n);
    m.add("netd_wan_address_changes_total", counter,
          "Changes of the WAN IPv4 address netd applied (a new lease address, its loss, a static address changed by "
          "reload), after netd's first convergence.",
          {}, c.wan_address_changes);

    // Every action and result, zero or not: a series that appears only at its first event
    // hides that first event from rate().
    for (const char* action : kDhcpActionLabels) {
        auto it = c.dhcp_events.find(action);
        auto counts = it == c.dhcp_events.end() ? std::pair<uint64_t, uint64_t>{} : it->second;
        const char* help =
            "DHCP lease events from udhcpc's hook by action and result; rejected: malformed, not for the WAN link, or "
            "refused by the kernel (the hook exits 1).";
        m.add("netd_dhcp_events_total", counter, help, {{"action", action}, {"result", "accepted"}}, counts.first);
        m.add("netd_dhcp_events_total", counter, help, {{"action", action}, {"result", "rejected"}}, counts.second);
    }
    for (auto [result, n] : {std::pair{"accepted", c.dhcp6_accepted}, {"rejected", c.dhcp6_rejected}})
        m.add("netd_dhcp6_events_total", counter,
              "DHCPv6 prefix delegation events from dhcpcd's hook by result; rejected: malformed, not for the WAN "
              "link, no DHCPv6 client configured, or refused by the kernel.",
              {{"result", result}}, n);

    if (in.tunnel) {
        auto& t = *in.tunnel;
        m.add("netd_tunnel_receive_bytes_total", counter, "Bytes received on the 6in4 tunnel device (sit6in4).", {},
              t.rx_bytes);
        m.add("netd_tunnel_transmit_bytes_total", counter, "Bytes sent on the 6in4 tunnel device (sit6in4).", {},
              t.tx_bytes);
        m.add("netd_tunnel_receive_packets_total", counter, "Packets received on the 6in4 tunnel device (sit6in4).",
              {}, t.rx_packets);
        m.add("netd_tunnel_transmit_packets_total", counter, "Packets sent on the 6in4 tunnel device (sit6in4).", {},
              t.tx_packets);
    }
    if (in.tunnel_up)
        m.add("netd_tunnel_up", gauge,
              "1 when the tunnel broker holds the router's current address (he) or heartbeats go out, else 0.", {},
              uint64_t{*in.tunnel_up});
    m.add("netd_tunnel_heartbeats_sent_total", counter, "Heartbeats sent to the tunnel broker.", {}, c.heartbeats_sent);
    m.add("netd_tunnel_heartbeats_failed_total", counter, "Heartbeats that could not be sent (the datagram did not go out).",
          {}, c.heartbeats_failed);
    m.add("netd_tunnel_he_updates_sent_total", counter, "Hurricane Electric endpoint updates started.", {},
          c.he_updates_sent);
    for (auto [reason, n] : {std::pair{"badauth", c.he_updates_badauth}, {"abuse", c.he_updates_abuse},
                             {"error", c.he_updates_error}})
        m.add("netd_tunnel_he_updates_failed_total", counter,
              "Hurricane Electric endpoint updates that failed, by reason; error: DNS, connection, TLS or HTTP error, "
              "another answer, or a helper that could not start or ran out of time.",
              {{"reason", reason}}, n);

    if (in.firewall_drops)
        for (auto& [chain, d] : *in.firewall_drops) {
            m.add("netd_firewall_dropped_packets_total", counter,
                  "Packets dropped by netd's firewall (table inet netd), by chain.", {{"chain", chain}}, d.packets);
            m.add("netd_firewall_dropped_bytes_total", counter,
                  "Bytes of the packets dropped by netd's firewall (table inet netd), by chain.", {{"chain", chain}},
                  d.bytes);
        }

    for (auto& s : in.services) {
        const char* help =
            "Restarts of a supervised service by reason; exit: after it exited unexpectedly (or could not start), "
            "requested: netctl restart or a changed command line or configuration.";
        m.add("netd_service_restarts_total", counter, help, {{"service", s.name}, {"reason", "exit"}}, s.exit_restarts);
        m.add("netd_service_restarts_total", counter, help, {{"service", s.name}, {"reason", "requested"}},
              s.requested_restarts);
    }
    for (auto& s : in.services)
        m.add("netd_service_up", gauge, "1 when the supervised service is running, else 0.", {{"service", s.name}},
              uint64_t{s.state == ServiceState::running});
    return m.families();
}

}  // namespace netd
