// Supervision of netd's children (dnsmasq, radvd, ntpd, sshd, udhcpc): started in the
// foreground through pidfds, restarted with backoff, marked failed in a crash loop, stopped
// with SIGTERM then SIGKILL, and re-adopted after netd itself restarts instead of duplicated.
//
// Each running child has a record <state_dir>/<name>.pid (a line "pid start_time", with
// " caps=HEX" for a spec that restricts capabilities, then argv one per line) so a new netd
// can find it; the record is trusted only through the identity checks of adopt().
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event_loop.h"
#include "process.h"
#include "restart_policy.h"

namespace netd {

class Child;

struct ServiceSpec {
    std::string name;               // [a-z0-9-]+, also the syslog tag of its output
    std::vector<std::string> argv;  // argv[0] absolute; the child must stay in the foreground
    // For a child that cannot drop root itself: it keeps only these (SpawnOptions::capabilities).
    std::optional<uint64_t> capabilities = std::nullopt;
    bool operator==(const ServiceSpec&) const = default;
};

enum class ServiceState { stopped, running, backoff, failed, stopping };
const char* to_string(ServiceState s);

struct ServiceStatus {
    std::string name;
    ServiceState state = ServiceState::stopped;
    pid_t pid = -1;
    std::chrono::steady_clock::duration uptime{};
    int restarts = 0;        // restarts after unexpected exits since netd started or adopted it
    std::string last_exit;   // e.g. "exited 1", "killed by signal 9"
    bool adopted = false;    // found running when netd started
    // Counters for the life of the netd process (metrics.h), kept while the service is
    // removed and comes back: restarts after an unexpected exit (or a failure to start), and
    // restarts asked for (netctl restart, a changed command line or configuration file).
    uint64_t exit_restarts = 0, requested_restarts = 0;
};

// The supervisor as the reconciler sees it (Supervisor implements it; tests record).
class ServiceControl {
public:
    virtual ~ServiceControl() = default;
    virtual std::vector<std::string> service_names() const = 0;
    virtual std::optional<ServiceSpec> spec_of(const std::string& name) const = 0;
    // Start, or restart when the spec changed; a failed service is retried.
    virtual void ensure(const ServiceSpec& spec) = 0;
    virtual void restart(const std::string& name) = 0;
    virtual void remove(const std::string& name, std::function<void()> done = {}) = 0;
    virtual void stop_all(std::function<void()> done) = 0;
    virtual void adopt_recorded() = 0;
    virtual std::vector<ServiceStatus> status() const = 0;
};

class Supervisor final : public ServiceControl {
public:
    struct Options {
        std::string state_dir = "/run/netd/services";
        // Reads the child's stdout/stderr on its stdin and sends each line to syslog; the
        // service name is appended. Empty: output goes to /dev/null.
        std::vector<std::string> log_command = {"/usr/bin/logger", "-p", "daemon.info", "-t"};
        std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
        RestartPolicy policy;
        std::chrono::steady_clock::duration stop_timeout = std::chrono::seconds(5);
    };

    Supervisor(EventLoop& loop, Options opts);
    ~Supervisor();

    // Start the service, or adopt its running instance, or (if its spec changed) restart it;
    // a failed service is retried at once.
    // Returns immediately; failures to start count as crashes.
    void ensure(const ServiceSpec& spec) override;
    // Operator restart: forget the crash history, stop if running, start again.
    void restart(const std::string& name) override;
    // Stop and forget a service; `done` runs once it is gone.
    void remove(const std::string& name, std::function<void()> done = {}) override;
    // Stop every service (netd shutting down); `done` runs once all are gone.
    void stop_all(std::function<void()> done) override;
    // Leave the children running and forget them (netd exec'ing itself, or tests).
    void abandon_all();

    std::vector<ServiceStatus> status() const override;
    std::vector<std::string> service_names() const override;
    std::optional<ServiceSpec> spec_of(const std::string& name) const override;
    // After netd restarted: adopt every child a valid record names (see adopt() in process.h),
    // wanted or not; the reconciler then stops those no longer wanted.
    void adopt_recorded() override;
    // Called on every state change (logging, tests).
    std::function<void(const ServiceStatus&)> on_change;

private:
    struct Service;
    void start(Service& s);
    bool try_adopt(Service& s);
    void exited(const std::string& name, const std::string& how);
    void on_exit(Service& s);
    void send_stop(Service& s, std::function<void()> done);
    void set_state(Service& s, ServiceState st);
    void write_record(const Service& s);
    void remove_record(const std::string& name);
    ServiceStatus status_of(const Service& s) const;

    EventLoop& loop_;
    Options opts_;
    std::map<std::string, std::unique_ptr<Service>> services_;
    struct RestartCounts {
        uint64_t exits = 0, requested = 0;
    };
    std::map<std::string, RestartCounts> restart_counts_;   // by name, outliving Service
    std::map<Child*, std::unique_ptr<Child>> loggers_;
};

}  // namespace netd
