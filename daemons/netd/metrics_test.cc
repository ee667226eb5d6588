// The Prometheus text netd renders: escaping, one HELP and one TYPE per family with its samples
// together, valid names, exact values. That promtool accepts the whole output of a daemon is
// checked by the metrics_promtool test (metrics_sample.cc); the counters moving on events by
// daemon_test.cc.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "metrics.h"

namespace netd {
namespace {

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// Inputs with every optional part present and every label in use.
MetricsInputs full_inputs() {
    MetricsInputs in;
    in.counters.reloads_ok = 2;
    in.counters.dhcp_event("bound", true);
    in.counters.dhcp_event("renew", false);
    in.counters.tunnel_event(TunnelEvent::update_badauth);
    in.start_time_s = 1700000000.25;
    in.uptime_s = 12.5;
    in.tunnel = LinkTraffic{10, 20, 1000, 2000};
    in.tunnel_up = true;
    in.firewall_drops = std::map<std::string, DropCount>{{"input", {3, 180}}, {"forward", {1, 60}}};
    ServiceStatus s;
    s.name = "dnsmasq";
    s.state = ServiceState::running;
    s.exit_restarts = 1;
    in.services = {s};
    s.name = "sshd";
    s.state = ServiceState::backoff;
    in.services.push_back(s);
    return in;
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    MetricSet m;
    m.add("netd_x_total", MetricType::counter, "help with \\ and\nnewline", {{"chain", "in\"put\\\n"}}, uint64_t{1});
    EXPECT_EQ(render_prometheus(m.families()),
              "# HELP netd_x_total help with \\\\ and\\nnewline\n"
              "# TYPE netd_x_total counter\n"
              "netd_x_total{chain=\"in\\\"put\\\\\\n\"} 1\n");
}

TEST(Metrics, HelpAndTypeOncePerFamilyWithItsSamplesTogether) {
    MetricSet m;
    m.add("netd_a_total", MetricType::counter, "a", {{"k", "1"}}, uint64_t{1});
    m.add("netd_b", MetricType::gauge, "b", {}, 0.5);
    m.add("netd_a_total", MetricType::counter, "a", {{"k", "2"}}, uint64_t{2});
    EXPECT_EQ(render_prometheus(m.families()),
              "# HELP netd_a_total a\n# TYPE netd_a_total counter\nnetd_a_total{k=\"1\"} 1\nnetd_a_total{k=\"2\"} 2\n"
              "# HELP netd_b b\n# TYPE netd_b gauge\nnetd_b 0.5\n");
}

TEST(Metrics, ValuesAreExact) {
    MetricSet m;
    m.add("netd_big_total", MetricType::counter, "h", {}, std::numeric_limits<uint64_t>::max());
    m.add("netd_t", MetricType::gauge, "h", {{"v", "a"}}, 1700000000.25);
    m.add("netd_t", MetricType::gauge, "h", {{"v", "b"}}, std::numeric_limits<double>::infinity());
    m.add("netd_t", MetricType::gauge, "h", {{"v", "c"}}, std::numeric_limits<double>::quiet_NaN());
    auto text = render_prometheus(m.families());
    EXPECT_NE(text.find("netd_big_total 18446744073709551615\n"), std::string::npos) << text;
    EXPECT_NE(text.find("netd_t{v=\"a\"} 1700000000.25\n"), std::string::npos) << text;
    EXPECT_NE(text.find("netd_t{v=\"b\"} +Inf\n"), std::string::npos) << text;
    EXPECT_NE(text.find("netd_t{v=\"c\"} NaN\n"), std::string::npos) << text;
}

TEST(Metrics, NameChecks) {
    for (auto n : {"netd_up", "a:b_c9", "_x"}) EXPECT_TRUE(valid_metric_name(n)) << n;
    for (auto n : {"", "9x", "netd-up", "netd up", "né"}) EXPECT_FALSE(valid_metric_name(n)) << n;
    for (auto n : {"chain", "_x", "a9"}) EXPECT_TRUE(valid_label_name(n)) << n;
    for (auto n : {"", "__name__", "a:b", "9a", "a-b"}) EXPECT_FALSE(valid_label_name(n)) << n;
}

// Every family netd renders: a valid name with the netd_ prefix, counters ending in _total and
// gauges not, HELP and TYPE exactly once and before the samples, every sample line well formed,
// no series twice.
TEST(Metrics, EveryFamilyNetdRendersIsWellFormed) {
    auto families = collect_metrics(full_inputs());
    std::set<std::string> names;
    for (auto& f : families) {
        EXPECT_TRUE(valid_metric_name(f.name)) << f.name;
        EXPECT_EQ(f.name.rfind("netd_", 0), 0u) << f.name;
        bool total = f.name.size() > 6 && f.name.compare(f.name.size() - 6, 6, "_total") == 0;
        EXPECT_EQ(total, f.type == MetricType::counter) << f.name;
        EXPECT_FALSE(f.help.empty()) << f.name;
        EXPECT_FALSE(f.samples.empty()) << f.name;
        EXPECT_TRUE(names.insert(f.name).second) << "family twice: " << f.name;
        for (auto& s : f.samples)
            for (auto& [k, v] : s.labels) EXPECT_TRUE(valid_label_name(k)) << f.name << " " << k;
    }
    for (auto n : {"netd_tunnel_receive_bytes_total", "netd_tunnel_transmit_packets_total", "netd_tunnel_up",
                   "netd_tunnel_heartbeats_sent_total", "netd_tunnel_he_updates_failed_total",
                   "netd_dhcp_events_total", "netd_dhcp6_events_total", "netd_firewall_dropped_packets_total",
                   "netd_service_restarts_total", "netd_service_up", "netd_wan_address_changes_total",
                   "netd_reloads_total", "netd_uptime_seconds", "netd_start_time_seconds"})
        EXPECT_TRUE(names.count(n)) << "missing " << n;

    const std::regex help(R"(# HELP (netd_[a-z0-9_]+) \S.*)"), type(R"(# TYPE (netd_[a-z0-9_]+) (counter|gauge))");
    const std::regex sample(R"((netd_[a-z0-9_]+)(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? ([0-9.e+-]+|NaN|\+Inf|-Inf))");
    std::map<std::string, int> helps, types;
    std::set<std::string> series;
    std::string current;
    auto text = render_prometheus(families);
    ASSERT_EQ(text.back(), '\n');
    for (auto& l : lines(text)) {
        std::smatch m;
        if (std::regex_match(l, m, help)) {
            ++helps[m[1]];
            current = m[1];
        } else if (std::regex_match(l, m, type)) {
            ++types[m[1]];
            EXPECT_EQ(m[1], current) << "TYPE right after HELP: " << l;
        } else if (std::regex_match(l, m, sample)) {
            EXPECT_EQ(m[1], current) << "a sample under its own family: " << l;
            EXPECT_TRUE(series.insert(l.substr(0, l.rfind(' '))).second) << "series twice: " << l;
        } else {
            ADD_FAILURE() << "not a valid line: " << l;
        }
    }
    for (auto& n : names) {
        EXPECT_EQ(helps[n], 1) << n;
        EXPECT_EQ(types[n], 1) << n;
    }
    EXPECT_NE(text.find("netd_dhcp_events_total{action=\"bound\",result=\"accepted\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("netd_dhcp_events_total{action=\"renew\",result=\"rejected\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("netd_dhcp_events_total{action=\"nak\",result=\"accepted\"} 0\n"), std::string::npos)
        << "every action and result from the start";
    EXPECT_NE(text.find("netd_tunnel_he_updates_failed_total{reason=\"badauth\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("netd_firewall_dropped_bytes_total{chain=\"input\"} 180\n"), std::string::npos);
    EXPECT_NE(text.find("netd_service_up{service=\"dnsmasq\"} 1\nnetd_service_up{service=\"sshd\"} 0\n"),
              std::string::npos);
    EXPECT_NE(text.find("netd_service_restarts_total{service=\"dnsmasq\",reason=\"exit\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("netd_start_time_seconds 1700000000.25\n"), std::string::npos);
}

// Without a tunnel or a loaded firewall their families are left out rather than shown as zero.
TEST(Metrics, PartsNotPresentAreLeftOut) {
    auto text = render_prometheus(collect_metrics(MetricsInputs{}));
    EXPECT_EQ(text.find("netd_tunnel_receive_bytes_total"), std::string::npos);
    EXPECT_EQ(text.find("netd_tunnel_up"), std::string::npos);
    EXPECT_EQ(text.find("netd_firewall_"), std::string::npos);
    EXPECT_NE(text.find("netd_tunnel_heartbeats_sent_total 0\n"), std::string::npos);
}

// An action from outside never makes a new series.
TEST(Metrics, DhcpActionsFromOutsideAreBounded) {
    EventCounters c;
    c.dhcp_event("bound", true);
    c.dhcp_event("x\"}{evil", false);
    c.dhcp_event(std::string(5000, 'a'), false);
    EXPECT_EQ(c.dhcp_events.size(), 2u);
    EXPECT_EQ(c.dhcp_events["other"].second, 2u);
}

TEST(Metrics, JsonHasValuesKeyedByLabelValues) {
    auto j = metrics_json(collect_metrics(full_inputs()));
    EXPECT_EQ(j["netd_reloads_total"]["ok"], 2);
    EXPECT_EQ(j["netd_dhcp_events_total"]["bound"]["accepted"], 1);
    EXPECT_EQ(j["netd_dhcp_events_total"]["renew"]["rejected"], 1);
    EXPECT_EQ(j["netd_service_restarts_total"]["dnsmasq"]["exit"], 1);
    EXPECT_EQ(j["netd_firewall_dropped_packets_total"]["input"], 3);
    EXPECT_EQ(j["netd_tunnel_receive_bytes_total"], 1000);
    EXPECT_EQ(j["netd_tunnel_transmit_packets_total"], 20);
    EXPECT_DOUBLE_EQ(j["netd_uptime_seconds"].get<double>(), 12.5);
}

}  // namespace
}  // namespace netd
