// `netctl metrics` of a daemon against the recording kernel and the fakes, driven through the
// events the counters count (lease events accepted and rejected, heartbeats, a WAN address
// change, reloads, a service restart, tunnel traffic, firewall drops): what the metrics_promtool
// test hands to Prometheus's own parser. With --escaping: a family whose label value needs
// every escape the format has.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon.h"
#include "metrics.h"
#include "test_fakes.h"

int main(int argc, char** argv) {
    using namespace netd;
    if (argc == 2 && std::string(argv[1]) == "--escaping") {
        MetricSet m;
        m.add("netd_escaping_sample_total", MetricType::counter, "A help text with a backslash \\ and a\nline feed.",
              {{"value", "back\\slash \"quoted\"\nsecond line, UTF-8: \xc3\xbc"}}, uint64_t{1});
        std::fputs(render_prometheus(m.families()).c_str(), stdout);
        return 0;
    }
    RecordingKernel kernel;
    netd::testing::boot_kernel(kernel);
    netd::testing::FakeServices services;
    netd::testing::FakeScheduler sched;
    netd::testing::FakeUpdates updates;
    netd::testing::FakeDatagrams datagrams;
    std::string dir = netd::testing::temp_dir();
    std::ofstream(dir + "/router.conf") << netd::testing::kBaseConfig
                                        << "[tunnel]\nmode = \"heartbeat\"\nremote = \"192.0.2.1\"\n"
                                           "local_ipv6 = \"2001:db8:ff::2/64\"\npassword = \"pw\"\ninterval = 60\n";
    DaemonOptions o;
    o.config_path = dir + "/router.conf";
    o.paths.run_dir = dir + "/run";
    o.state_dir = dir + "/state";
    // What the daemon prints itself (its ready line) goes to stderr: stdout is the metrics alone.
    std::fflush(stdout);
    int out = dup(1);
    dup2(2, 1);
    int rc = 1;
    {
        Daemon d(kernel, services, sched, updates, datagrams, o);
        d.start();
        auto bound = [](const std::string& ip) {
            return std::vector<std::string>{"dhcp-event", "bound",  "interface=eth0", "ip=" + ip, "subnet=255.255.255.0",
                                            "router=198.51.100.1", "lease=3600"};
        };
        d.control({"ntp-event", "stratum", "stratum=2"});
        d.control(bound("198.51.100.10"));
        d.control(bound("198.51.100.20"));
        d.control({"dhcp-event", "renew", "interface=eth9", "ip=198.51.100.30"});
        d.control({"reload"});
        d.control({"restart", "dnsmasq"});
        sched.advance(std::chrono::seconds(120));
        if (auto* sit = kernel.find(kTunnelIf)) {
            sit->rx_packets = 42, sit->tx_packets = 40, sit->rx_bytes = 4200, sit->tx_bytes = 4000;
        }
        kernel.drops["input"] = {3, 180};
        auto r = d.control({"metrics"});
        std::fflush(stdout);
        dup2(out, 1);
        std::fputs(r.text.c_str(), stdout);
        rc = r.ok ? 0 : 1;
    }
    std::filesystem::remove_all(dir);
    return rc;
}
