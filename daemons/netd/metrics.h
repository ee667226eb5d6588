// netd's counters and gauges: `netctl metrics` prints them in the Prometheus text exposition
// format (version 0.0.4), `netctl status --json` carries them as "metrics". netd serves no HTTP:
// a scraper runs `netctl metrics` (over ssh, or into a file for node_exporter's textfile
// collector), so the control socket stays the only way in.
//
// Counters (`_total`) never go back while one netd process runs: the events netd counts itself
// live here (EventCounters), and what the kernel counts (the sit device's traffic, the
// firewall's drops) is topped up with what the kernel lost when netd replaced or deleted the
// object that held it (Reconciler::retired_*). A new netd starts its own counts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "firewall.h"
#include "kernel.h"
#include "supervisor.h"
#include "tunnel.h"

namespace netd {

enum class MetricType { counter, gauge };

struct MetricSample {
    std::vector<std::pair<std::string, std::string>> labels;   // name, value
    std::variant<uint64_t, double> value;                      // counts exactly, seconds as doubles
};

struct MetricFamily {
    std::string name;   // netd_...; a counter's ends in _total
    MetricType type = MetricType::counter;
    std::string help;
    std::vector<MetricSample> samples;
};

// Families in the order first added; a sample for a name already added joins its family, so
// the text has one HELP and one TYPE line per family and its samples together.
class MetricSet {
public:
    void add(const std::string& name, MetricType type, const std::string& help,
             std::vector<std::pair<std::string, std::string>> labels, std::variant<uint64_t, double> value);
    const std::vector<MetricFamily>& families() const { return families_; }

private:
    std::vector<MetricFamily> families_;
};

// The text exposition: per family "# HELP", "# TYPE", then its samples, each line ending in
// "\n". Label values are escaped (backslash, double quote, line feed), as is the help text
// (backslash, line feed).
std::string render_prometheus(const std::vector<MetricFamily>& families);
// For `status --json`: name -> value for a family without labels, otherwise objects keyed by
// the label values in the labels' order ("netd_dhcp_events_total": {"bound": {"accepted": 2,
// ...}}): compact, since status goes over the serial console too.
nlohmann::json metrics_json(const std::vector<MetricFamily>& families);

bool valid_metric_name(std::string_view name);   // [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_label_name(std::string_view name);    // [a-zA-Z_][a-zA-Z0-9_]*, not starting "__"
std::string escape_label_value(std::string_view v);

// udhcpc's actions as labels: the five it has, anything else "other" (an event's action comes
// from outside: it must not make new series).
inline constexpr const char* kDhcpActionLabels[] = {"deconfig", "bound", "renew", "nak", "leasefail", "other"};
std::string dhcp_action_label(std::string_view action);

// The events netd counts itself, since it started.
struct EventCounters {
    uint64_t reloads_ok = 0, reloads_failed = 0;
    uint64_t wan_address_changes = 0;
    // action label -> (accepted, rejected); accepted: the hook's netctl call succeeded.
    std::map<std::string, std::pair<uint64_t, uint64_t>> dhcp_events;
    uint64_t dhcp6_accepted = 0, dhcp6_rejected = 0;
    uint64_t heartbeats_sent = 0, heartbeats_failed = 0;
    uint64_t he_updates_sent = 0;
    uint64_t he_updates_badauth = 0, he_updates_abuse = 0, he_updates_error = 0;

    void dhcp_event(std::string_view action, bool accepted);
    void tunnel_event(TunnelEvent e);
};

// Everything the metrics are made of, read by the daemon at the moment of the request.
struct MetricsInputs {
    EventCounters counters;
    double start_time_s = 0;                  // Unix time of netd's start
    double uptime_s = 0;
    std::optional<LinkTraffic> tunnel;        // the sit device's counters (and those of deleted ones)
    std::optional<bool> tunnel_up;            // a tunnel is configured: whether it is up
    std::optional<std::map<std::string, DropCount>> firewall_drops;   // chain -> dropped
    std::vector<ServiceStatus> services;
};

std::vector<MetricFamily> collect_metrics(const MetricsInputs& in);

}  // namespace netd
