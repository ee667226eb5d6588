#include "supervisor.h"

#include "child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace netd {

const char* to_string(ServiceState s) {
    switch (s) {
        case ServiceState::stopped: return "stopped";
        case ServiceState::running: return "running";
        case ServiceState::backoff: return "backoff";
        case ServiceState::failed: return "failed";
        case ServiceState::stopping: return "stopping";
    }
    return "?";
}

struct Supervisor::Service {
    explicit Service(ServiceSpec sp, const RestartPolicy& p) : spec(std::move(sp)), tracker(p) {}
    ServiceSpec spec;
    ServiceState state = ServiceState::stopped;
    std::unique_ptr<Child> child;   // while it runs (or is stopping)
    bool adopted = false;
    uint64_t start_time = 0;
    std::chrono::steady_clock::time_point started{};
    RestartTracker tracker;
    int restarts = 0;
    std::string last_exit;
    Registration timer;             // backoff, or the SIGKILL deadline of a stop
    std::vector<std::function<void()>> on_stopped;
    bool remove_after_stop = false;
    bool restart_after_stop = false;
};

namespace {

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// A record as write_record() leaves it; nullopt when it is not one.
struct Record {
    pid_t pid = -1;
    uint64_t start_time = 0;
    ServiceSpec spec;
};

std::optional<Record> read_record(const std::string& path, const std::string& name) {
    std::ifstream in(path);
    std::string first, line;
    if (!std::getline(in, first)) return std::nullopt;
    Record r;
    r.spec.name = name;
    std::istringstream head(first);
    if (!(head >> r.pid >> r.start_time)) return std::nullopt;
    if (std::string caps; head >> caps) {
        if (caps.rfind("caps=", 0) != 0) return std::nullopt;
        try {
            r.spec.capabilities = std::stoull(caps.substr(5), nullptr, 16);
        } catch (...) {
            return std::nullopt;
        }
    }
    while (std::getline(in, line)) r.spec.argv.push_back(line);
    if (r.spec.argv.empty()) return std::nullopt;
    return r;
}

}  // namespace

Supervisor::Supervisor(EventLoop& loop, Options opts) : loop_(loop), opts_(std::move(opts)) {
    std::error_code ec;
    std::filesystem::create_directories(opts_.state_dir, ec);
    if (ec) syslog(LOG_ERR, "cannot create %s: %s", opts_.state_dir.c_str(), ec.message().c_str());
    chmod(opts_.state_dir.c_str(), 0700);
}

Supervisor::~Supervisor() { abandon_all(); }

void Supervisor::set_state(Service& s, ServiceState st) {
    s.state = st;
    if (on_change) on_change(status_of(s));
}

void Supervisor::ensure(const ServiceSpec& spec) {
    auto it = services_.find(spec.name);
    if (it == services_.end()) {
        auto& s = *services_.emplace(spec.name, std::make_unique<Service>(spec, opts_.policy)).first->second;
        if (!try_adopt(s)) start(s);
        return;
    }
    Service& s = *it->second;
    s.remove_after_stop = false;
    if (s.spec == spec) {
        // A reload retries a failed service at once (its config may be what was fixed).
        if (s.state == ServiceState::failed) s.tracker.reset();
        if (s.state == ServiceState::stopped || s.state == ServiceState::failed) start(s);
        // Wanted again while a removal is still stopping it: it starts again once stopped.
        if (s.state == ServiceState::stopping) s.restart_after_stop = true;
        return;
    }
    s.spec = spec;
    syslog(LOG_INFO, "%s: command changed, restarting", spec.name.c_str());
    restart(spec.name);
}

void Supervisor::start(Service& s) {
    s.timer.reset();
    UniqueFd log_read, log_write;
    if (!opts_.log_command.empty()) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) == 0) {
            log_read.reset(p[0]);
            log_write.reset(p[1]);
            SpawnOptions lo;
            lo.argv = opts_.log_command;
            lo.argv.push_back(s.spec.name);
            lo.env = opts_.env;
            lo.stdin_fd = log_read.get();
            lo.capabilities = 0;  // it only reads a pipe and writes to /dev/log
            // Not supervised, but reaped: it ends when the child closes its output.
            auto key = std::make_shared<Child*>(nullptr);
            auto logger = Child::spawn(loop_, lo, [this, key](const std::string&) { loggers_.erase(*key); });
            if (logger) {
                *key = logger->get();
                loggers_.emplace(*key, std::move(*logger));
            } else {
                syslog(LOG_WARNING, "%s: cannot start logger: %s", s.spec.name.c_str(), logger.error().str().c_str());
                log_write.reset();
            }
        }
    }
    SpawnOptions so;
    so.argv = s.spec.argv;
    so.capabilities = s.spec.capabilities;
    so.env = opts_.env;
    so.stdout_fd = log_write ? log_write.get() : -1;
    std::string name = s.spec.name;
    auto child = Child::spawn(loop_, so, [this, name](const std::string& how) { exited(name, how); });
    if (!child) {
        s.last_exit = child.error().str();
        syslog(LOG_ERR, "%s: cannot start: %s", s.spec.name.c_str(), s.last_exit.c_str());
        s.started = loop_.now();
        on_exit(s);
        return;
    }
    s.child = std::move(*child);
    s.adopted = false;
    s.started = loop_.now();
    auto id = identity_of(s.child->pid());
    s.start_time = id ? id->start_time : 0;
    write_record(s);
    syslog(LOG_INFO, "%s: started, pid %d", s.spec.name.c_str(), s.child->pid());
    set_state(s, ServiceState::running);
}

bool Supervisor::try_adopt(Service& s) {
    auto rec = read_record(opts_.state_dir + "/" + s.spec.name + ".pid", s.spec.name);
    if (!rec) return false;
    pid_t pid = rec->pid;
    uint64_t start_time = rec->start_time;
    auto pidfd = adopt(pid, ProcessIdentity{real_path(rec->spec.argv[0]), start_time}, real_path("/proc/self/exe"));
    if (!pidfd) {
        syslog(LOG_INFO, "%s: not adopting recorded pid %d: %s", s.spec.name.c_str(), pid, pidfd.error().str().c_str());
        remove_record(s.spec.name);
        return false;
    }
    std::string name = s.spec.name;
    auto child = Child::adopt(loop_, pid, std::move(*pidfd), [this, name](const std::string& how) { exited(name, how); });
    if (!child) {
        syslog(LOG_WARNING, "%s: cannot watch adopted pid %d: %s", name.c_str(), pid, child.error().str().c_str());
        return false;
    }
    s.child = std::move(*child);
    s.adopted = true;
    s.start_time = start_time;
    s.started = loop_.now();
    syslog(LOG_INFO, "%s: adopted running pid %d", s.spec.name.c_str(), pid);
    set_state(s, ServiceState::running);
    if (rec->spec != s.spec) {
        syslog(LOG_INFO, "%s: adopted instance has another command line, restarting", s.spec.name.c_str());
        restart(s.spec.name);
    }
    return true;
}

void Supervisor::exited(const std::string& name, const std::string& how) {
    auto it = services_.find(name);
    if (it == services_.end()) return;
    Service& s = *it->second;
    s.last_exit = how;
    s.child.reset();
    remove_record(name);
    on_exit(s);
}

void Supervisor::on_exit(Service& s) {
    s.timer.reset();

    if (s.state == ServiceState::stopping || s.remove_after_stop) {
        syslog(LOG_INFO, "%s: stopped (%s)", s.spec.name.c_str(), s.last_exit.c_str());
        set_state(s, ServiceState::stopped);
        auto callbacks = std::move(s.on_stopped);
        s.on_stopped.clear();
        if (s.remove_after_stop) {
            services_.erase(s.spec.name);  // s is gone from here on
        } else if (std::exchange(s.restart_after_stop, false)) {
            start(s);
        }
        for (auto& cb : callbacks) cb();
        return;
    }

    auto now = loop_.now();
    auto d = s.tracker.on_exit(now, now - s.started);
    ++s.restarts;
    ++restart_counts_[s.spec.name].exits;
    auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(d.delay).count() / 1000.0;
    std::string name = s.spec.name;
    if (d.failed) {
        syslog(LOG_ERR, "%s: %s; crash loop (%d exits within %lld s): failed, next try in %.0f s",
               name.c_str(), s.last_exit.c_str(), opts_.policy.crash_limit,
               static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(opts_.policy.crash_window).count()),
               secs);
        set_state(s, ServiceState::failed);
    } else {
        syslog(LOG_WARNING, "%s: %s; restarting in %.1f s", name.c_str(), s.last_exit.c_str(), secs);
        set_state(s, ServiceState::backoff);
    }
    s.timer = loop_.after(std::chrono::duration_cast<std::chrono::milliseconds>(d.delay), [this, name] {
        auto it = services_.find(name);
        if (it != services_.end()) start(*it->second);
    });
}

void Supervisor::send_stop(Service& s, std::function<void()> done) {
    if (done) s.on_stopped.push_back(std::move(done));
    switch (s.state) {
        case ServiceState::stopping:
            return;
        case ServiceState::running: {
            set_state(s, ServiceState::stopping);
            if (auto st = s.child->signal(SIGTERM); !st)
                syslog(LOG_WARNING, "%s: SIGTERM: %s", s.spec.name.c_str(), st.error().str().c_str());
            std::string name = s.spec.name;
            s.timer = loop_.after(std::chrono::duration_cast<std::chrono::milliseconds>(opts_.stop_timeout), [this, name] {
                auto it = services_.find(name);
                if (it == services_.end() || !it->second->child) return;
                syslog(LOG_WARNING, "%s: still running after SIGTERM, sending SIGKILL", name.c_str());
                it->second->child->signal(SIGKILL);
            });
            return;
        }
        case ServiceState::backoff:
        case ServiceState::failed:
        case ServiceState::stopped:
            // Nothing runs: stopping is immediate.
            s.state = ServiceState::stopping;
            on_exit(s);
            return;
    }
}

void Supervisor::restart(const std::string& name) {
    auto it = services_.find(name);
    if (it == services_.end()) return;
    Service& s = *it->second;
    ++restart_counts_[name].requested;
    s.tracker.reset();
    s.remove_after_stop = false;  // a restart wins over a removal still under way
    if (s.state == ServiceState::running || s.state == ServiceState::stopping) {
        s.restart_after_stop = true;
        send_stop(s, {});
    } else {
        start(s);
    }
}

void Supervisor::remove(const std::string& name, std::function<void()> done) {
    auto it = services_.find(name);
    if (it == services_.end()) {
        if (done) done();
        return;
    }
    it->second->remove_after_stop = true;
    it->second->restart_after_stop = false;
    send_stop(*it->second, std::move(done));
}

void Supervisor::stop_all(std::function<void()> done) {
    if (services_.empty()) {
        if (done) done();
        return;
    }
    auto remaining = std::make_shared<size_t>(services_.size());
    std::vector<std::string> names;
    for (auto& [name, _] : services_) names.push_back(name);
    for (auto& name : names) {
        remove(name, [remaining, done] {
            if (--*remaining == 0 && done) done();
        });
    }
}

void Supervisor::abandon_all() {
    // Watches and timers go with their owners; the processes keep running.
    loggers_.clear();
    services_.clear();
}

void Supervisor::write_record(const Service& s) {
    std::string path = opts_.state_dir + "/" + s.spec.name + ".pid";
    {
        std::ofstream out(path + ".tmp", std::ios::trunc);
        out << (s.child ? s.child->pid() : -1) << ' ' << s.start_time;
        if (s.spec.capabilities) out << " caps=" << std::hex << *s.spec.capabilities << std::dec;
        out << '\n';
        for (auto& a : s.spec.argv) out << a << '\n';
        if (!out) {
            syslog(LOG_WARNING, "%s: cannot write %s.tmp", s.spec.name.c_str(), path.c_str());
            return;
        }
    }
    if (rename((path + ".tmp").c_str(), path.c_str()) < 0)
        syslog(LOG_WARNING, "%s: cannot rename to %s: %s", s.spec.name.c_str(), path.c_str(), std::strerror(errno));
}

void Supervisor::remove_record(const std::string& name) { unlink((opts_.state_dir + "/" + name + ".pid").c_str()); }

ServiceStatus Supervisor::status_of(const Service& s) const {
    ServiceStatus st;
    st.name = s.spec.name;
    st.state = s.state;
    st.pid = s.child ? s.child->pid() : -1;
    if (s.state == ServiceState::running || s.state == ServiceState::stopping) st.uptime = loop_.now() - s.started;
    st.restarts = s.restarts;
    st.last_exit = s.last_exit;
    st.adopted = s.adopted;
    if (auto c = restart_counts_.find(s.spec.name); c != restart_counts_.end()) {
        st.exit_restarts = c->second.exits;
        st.requested_restarts = c->second.requested;
    }
    return st;
}

std::vector<std::string> Supervisor::service_names() const {
    std::vector<std::string> out;
    for (auto& [name, _] : services_) out.push_back(name);
    return out;
}

std::optional<ServiceSpec> Supervisor::spec_of(const std::string& name) const {
    auto it = services_.find(name);
    if (it == services_.end()) return std::nullopt;
    return it->second->spec;
}

void Supervisor::adopt_recorded() {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(opts_.state_dir, ec)) {
        if (e.path().extension() != ".pid") continue;
        std::string name = e.path().stem().string();
        if (services_.count(name)) continue;
        auto rec = read_record(e.path().string(), name);
        if (!rec) continue;
        auto s = std::make_unique<Service>(rec->spec, opts_.policy);
        Service& ref = *s;
        services_.emplace(name, std::move(s));
        if (!try_adopt(ref)) services_.erase(name);
    }
}

std::vector<ServiceStatus> Supervisor::status() const {
    std::vector<ServiceStatus> out;
    for (auto& [_, s] : services_) out.push_back(status_of(*s));
    return out;
}

}  // namespace netd
