// Fakes for unit tests of the reconciler, the daemon and the tunnel handlers: services that
// record what they were told, a scheduler whose time the test advances, an update runner and
// a datagram sender that record requests and answer as the test says.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "recording_kernel.h"
#include "supervisor.h"
#include "tunnel.h"

namespace netd::testing {

class FakeServices final : public ServiceControl {
public:
    std::map<std::string, ServiceSpec> running;
    std::vector<std::string> ops;
    std::map<std::string, uint64_t> requested_restarts;   // as the Supervisor counts them

    std::vector<std::string> service_names() const override {
        std::vector<std::string> v;
        for (auto& [n, _] : running) v.push_back(n);
        return v;
    }
    std::optional<ServiceSpec> spec_of(const std::string& name) const override {
        auto it = running.find(name);
        if (it == running.end()) return std::nullopt;
        return it->second;
    }
    void ensure(const ServiceSpec& spec) override {
        auto it = running.find(spec.name);
        if (it == running.end())
            ops.push_back("start " + spec.name);
        else if (it->second != spec)
            restart(spec.name);
        running[spec.name] = spec;
    }
    void restart(const std::string& name) override {
        ops.push_back("restart " + name);
        ++requested_restarts[name];
    }
    void remove(const std::string& name, std::function<void()> done) override {
        ops.push_back("stop " + name);
        running.erase(name);
        if (done) done();
    }
    void stop_all(std::function<void()> done) override {
        running.clear();
        if (done) done();
    }
    void adopt_recorded() override {}
    std::vector<ServiceStatus> status() const override {
        std::vector<ServiceStatus> v;
        for (auto& [n, _] : running) {
            v.push_back({n, ServiceState::running, 100, {}, 0, "", false});
            if (auto c = requested_restarts.find(n); c != requested_restarts.end()) v.back().requested_restarts = c->second;
        }
        return v;
    }
};

class FakeScheduler final : public Scheduler {
public:
    struct Entry {
        std::chrono::milliseconds at;
        std::function<void()> fn;
        bool live = true;
    };
    std::chrono::milliseconds now{0};
    std::vector<std::shared_ptr<Entry>> entries;

    Registration after(std::chrono::milliseconds delay, std::function<void()> fn) override {
        auto e = std::make_shared<Entry>(Entry{now + delay, std::move(fn)});
        entries.push_back(e);
        std::weak_ptr<Entry> w = e;
        return Registration([w] {
            if (auto entry = w.lock()) entry->live = false;
        });
    }
    // Runs every timer due within d, in deadline order (timers added meanwhile included).
    void advance(std::chrono::milliseconds d) {
        auto end = now + d;
        for (;;) {
            std::shared_ptr<Entry> next;
            for (auto& e : entries)
                if (e->live && e->at <= end && (!next || e->at < next->at)) next = e;
            if (!next) break;
            now = next->at;
            next->live = false;
            next->fn();
        }
        now = end;
    }
    size_t pending() const {
        size_t n = 0;
        for (auto& e : entries) n += e->live;
        return n;
    }
};

class FakeUpdates final : public UpdateRunner {
public:
    std::vector<HeRequest> requests;
    std::function<void(const std::string&)> pending;   // the running update's completion
    size_t cancelled = 0;

    Registration start(const HeRequest& r, std::function<void(const std::string&)> done) override {
        requests.push_back(r);
        auto alive = std::make_shared<bool>(true);
        pending = [done, alive](const std::string& out) {
            if (*alive) done(out);
        };
        return Registration([this, alive] {
            if (*alive) ++cancelled;
            *alive = false;
        });
    }
    // Answers the update in flight (as the helper would print it).
    void answer(const std::string& output) {
        auto p = std::exchange(pending, nullptr);
        ASSERT_TRUE(p) << "no update in flight";
        p(output);
    }
};

class FakeDatagrams final : public DatagramSender {
public:
    std::vector<std::string> sent;
    std::string error;   // what send() answers while set (nothing is sent then)
    std::string send(const std::string& payload, Ipv4Addr, uint16_t) override {
        if (!error.empty()) return error;
        sent.push_back(payload);
        return {};
    }
};

inline Config config_of(const std::string& text) {
    auto r = parse_config_text(text, "test.conf");
    if (!r.config) {
        std::string all;
        for (auto& e : r.errors) all += e.str() + "\n";
        ADD_FAILURE() << all;
        return {};
    }
    return *r.config;
}

// A router's kernel as found at boot: lo, eth0 (WAN), eth1 (LAN), eth2 (spare), all down.
inline void boot_kernel(RecordingKernel& k) {
    k.add_link("lo", "00:00:00:00:00:00", 65536);
    k.add_link("eth0", "52:54:00:12:34:01");
    k.add_link("eth1", "52:54:00:12:34:02");
    k.add_link("eth2", "52:54:00:12:34:03");
    k.sysctls["net/ipv4/ip_forward"] = "0";
    k.sysctls["net/ipv6/conf/all/forwarding"] = "0";
}

inline std::string temp_dir() {
    char tmpl[] = "/tmp/netd-test.XXXXXX";
    return mkdtemp(tmpl);
}

inline const char* kBaseConfig = R"(
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]
[wan]
mac = "52:54:00:12:34:01"
)";

inline const char* kTunnelHe = R"(
[tunnel]
mode = "he"
remote = "192.0.2.1"
local_ipv6 = "2001:db8:ff::2/64"
tunnel_id = "123"
username = "u"
update_key = "k"
)";

}  // namespace netd::testing
