// Supervisor tests against real child processes (sh, sleep): restart with backoff, crash
// loops, SIGTERM-then-SIGKILL, adoption after a restart of the supervisor, output capture.
#include "supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <syslog.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace netd {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class SupervisorTest : public ::testing::Test {
protected:
    void SetUp() override {
        openlog("supervisor_test", LOG_PERROR, LOG_DAEMON);
        char tmpl[] = "/tmp/supervisor_test.XXXXXX";
        dir_ = mkdtemp(tmpl);
        auto l = EventLoop::create();
        ASSERT_TRUE(l) << l.error().str();
        loop_ = std::move(*l);
        opts_.state_dir = dir_ + "/services";
        opts_.log_command.clear();
        opts_.policy.initial_delay = 50ms;
        opts_.policy.max_delay = 200ms;
        opts_.stop_timeout = 300ms;
    }
    void TearDown() override {
        if (sup_) {
            sup_->on_change = nullptr;
            bool done = false;
            sup_->stop_all([&] { done = true; });
            run_until([&] { return done; }, 5s);
        }
        fs::remove_all(dir_);
    }
    Supervisor& sup() {
        if (!sup_) sup_ = std::make_unique<Supervisor>(*loop_, opts_);
        return *sup_;
    }
    // Runs the loop until pred() holds or the timeout passes; returns pred().
    bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
        auto deadline = loop_->add_timer(timeout, [&] { loop_->stop(); });
        EventLoop::TimerId next = 0;
        std::function<void()> poll = [&] {
            if (pred()) loop_->stop();
            else next = loop_->add_timer(5ms, poll);
        };
        next = loop_->add_timer(0ms, poll);
        loop_->run();
        loop_->cancel_timer(deadline);
        loop_->cancel_timer(next);
        return pred();
    }
    ServiceStatus st(const std::string& name) {
        for (auto& s : sup().status())
            if (s.name == name) return s;
        return {};
    }

    std::string dir_;
    std::unique_ptr<EventLoop> loop_;
    Supervisor::Options opts_;
    std::unique_ptr<Supervisor> sup_;
};

const ServiceSpec kSleeper{"sleeper", {"/bin/sleep", "30"}};

TEST_F(SupervisorTest, StartsAndRestartsAfterKill) {
    sup().ensure(kSleeper);
    ASSERT_EQ(st("sleeper").state, ServiceState::running);
    pid_t first = st("sleeper").pid;
    ASSERT_GT(first, 0);
    ASSERT_EQ(kill(first, SIGKILL), 0);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_until([&] { return st("sleeper").state == ServiceState::running && st("sleeper").pid != first; }, 3s));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::printf("figures: restart after kill -9 took %lld ms (policy delay 50 ms)\n", static_cast<long long>(ms));
    EXPECT_EQ(st("sleeper").restarts, 1);
    EXPECT_EQ(st("sleeper").last_exit, "killed by signal 9");
}

// The counters of netctl metrics: by reason, and kept while the service is gone and comes back.
TEST_F(SupervisorTest, RestartCountersOutliveTheService) {
    sup().ensure(kSleeper);
    ASSERT_EQ(kill(st("sleeper").pid, SIGKILL), 0);
    ASSERT_TRUE(run_until([&] { return st("sleeper").state == ServiceState::running && st("sleeper").exit_restarts == 1; }, 3s));
    sup().restart("sleeper");
    ASSERT_TRUE(run_until([&] { return st("sleeper").state == ServiceState::running; }, 3s));
    sup().ensure({"sleeper", {"/bin/sleep", "31"}});   // a changed command line
    ASSERT_TRUE(run_until([&] { return st("sleeper").state == ServiceState::running; }, 3s));
    EXPECT_EQ(st("sleeper").requested_restarts, 2u);
    bool gone = false;
    sup().remove("sleeper", [&] { gone = true; });
    ASSERT_TRUE(run_until([&] { return gone; }, 3s));
    sup().ensure(kSleeper);
    EXPECT_EQ(st("sleeper").exit_restarts, 1u);
    EXPECT_EQ(st("sleeper").requested_restarts, 2u);
    EXPECT_EQ(st("sleeper").restarts, 0) << "the status' own count is the instance's";
}

TEST_F(SupervisorTest, CrashLoopEndsInFailedWithBoundedStarts) {
    opts_.policy.crash_limit = 4;
    opts_.policy.crash_window = 10s;
    opts_.policy.failed_retry = 60s;
    int starts = 0;
    sup().on_change = [&](const ServiceStatus& s) {
        if (s.state == ServiceState::running) ++starts;
    };
    sup().ensure({"crasher", {"/bin/sh", "-c", "exit 3"}});
    ASSERT_TRUE(run_until([&] { return st("crasher").state == ServiceState::failed; }, 5s));
    EXPECT_EQ(starts, 4);
    EXPECT_EQ(st("crasher").last_exit, "exited 3");
    // Failed stays failed: no restart storm.
    run_until([] { return false; }, 500ms);
    EXPECT_EQ(starts, 4);
    EXPECT_EQ(st("crasher").state, ServiceState::failed);
    // An operator restart tries again at once ...
    sup().restart("crasher");
    EXPECT_EQ(starts, 5);
    ASSERT_TRUE(run_until([&] { return st("crasher").state == ServiceState::failed; }, 5s));
    // ... and so does a reload (ensure with the same spec).
    int before = starts;
    sup().ensure({"crasher", {"/bin/sh", "-c", "exit 3"}});
    EXPECT_EQ(starts, before + 1);
}

TEST_F(SupervisorTest, StopEscalatesToSigkill) {
    // Ignored signals stay ignored across exec: sleep will not die of SIGTERM.
    sup().ensure({"stubborn", {"/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 30"}});
    ASSERT_TRUE(run_until([&] { return st("stubborn").state == ServiceState::running; }, 2s));
    run_until([] { return false; }, 100ms);  // let the shell set its trap
    bool gone = false;
    auto t0 = std::chrono::steady_clock::now();
    sup().remove("stubborn", [&] { gone = true; });
    ASSERT_TRUE(run_until([&] { return gone; }, 3s));
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 300ms);
    EXPECT_TRUE(sup().status().empty());
}

TEST_F(SupervisorTest, StopIsQuickForWellBehavedChildren) {
    sup().ensure(kSleeper);
    bool gone = false;
    sup().remove("sleeper", [&] { gone = true; });
    ASSERT_TRUE(run_until([&] { return gone; }, 3s));
    EXPECT_FALSE(fs::exists(opts_.state_dir + "/sleeper.pid"));
}

// Turned off by one reload and on again by the next before it has exited: it runs again.
TEST_F(SupervisorTest, WantedAgainWhileBeingRemovedRunsAgain) {
    const ServiceSpec stubborn{"stubborn", {"/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 30"}};
    for (bool by_restart : {false, true}) {
        sup().ensure(stubborn);
        ASSERT_TRUE(run_until([&] { return st("stubborn").state == ServiceState::running; }, 2s));
        run_until([] { return false; }, 100ms);
        pid_t first = st("stubborn").pid;
        sup().remove("stubborn");
        ASSERT_EQ(st("stubborn").state, ServiceState::stopping);
        if (by_restart)
            sup().restart("stubborn");
        else
            sup().ensure(stubborn);
        ASSERT_TRUE(run_until([&] { auto s = st("stubborn"); return s.state == ServiceState::running && s.pid != first; },
                              3s))
            << (by_restart ? "restart" : "ensure") << " during the removal";
        bool gone = false;
        sup().remove("stubborn", [&] { gone = true; });
        ASSERT_TRUE(run_until([&] { return gone; }, 3s));
    }
}

TEST_F(SupervisorTest, NewSupervisorAdoptsRunningChild) {
    sup().ensure(kSleeper);
    pid_t pid = st("sleeper").pid;
    ASSERT_TRUE(fs::exists(opts_.state_dir + "/sleeper.pid"));
    // netd dies: its children keep running and the records stay.
    sup_->abandon_all();
    sup_.reset();
    int starts = 0;
    sup().on_change = [&](const ServiceStatus& s) {
        if (s.state == ServiceState::running && !s.adopted) ++starts;
    };
    sup().ensure(kSleeper);
    EXPECT_EQ(st("sleeper").pid, pid);
    EXPECT_TRUE(st("sleeper").adopted);
    EXPECT_EQ(starts, 0);
    // The adopted child is still supervised: its death is noticed and it is restarted.
    kill(pid, SIGKILL);
    ASSERT_TRUE(run_until([&] { return st("sleeper").state == ServiceState::running && st("sleeper").pid != pid; }, 3s));
    waitpid(pid, nullptr, 0);  // in the test it is still our child; in the router init reaps it
}

TEST_F(SupervisorTest, RecycledPidIsNotAdopted) {
    // A record naming a live process that is not what was recorded (here: this test itself,
    // with another start time): it must not be adopted, and a fresh child is started.
    fs::create_directories(opts_.state_dir);
    {
        std::ofstream rec(opts_.state_dir + "/sleeper.pid");
        rec << getpid() << " 1\n/bin/sleep\n30\n";
    }
    sup().ensure(kSleeper);
    EXPECT_FALSE(st("sleeper").adopted);
    EXPECT_NE(st("sleeper").pid, getpid());
    EXPECT_EQ(st("sleeper").state, ServiceState::running);
}

TEST_F(SupervisorTest, ChangedCommandRestarts) {
    sup().ensure(kSleeper);
    pid_t first = st("sleeper").pid;
    sup().ensure({"sleeper", {"/bin/sleep", "31"}});
    ASSERT_TRUE(run_until([&] { return st("sleeper").state == ServiceState::running && st("sleeper").pid != first; }, 3s));
    EXPECT_EQ(st("sleeper").restarts, 0);  // an intended restart is not a crash
    std::ifstream rec(opts_.state_dir + "/sleeper.pid");
    std::string all((std::istreambuf_iterator<char>(rec)), {});
    EXPECT_NE(all.find("\n31\n"), std::string::npos) << all;
}

TEST_F(SupervisorTest, OutputGoesToTheLogCommand) {
    // The log command gets the service name as its last argument ($0 of this script).
    opts_.log_command = {"/bin/sh", "-c", "exec cat > " + dir_ + "/\"$0\".log"};
    sup().ensure({"talker", {"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exec /bin/sleep 30"}});
    auto log = dir_ + "/talker.log";
    auto content = [&] {
        std::ifstream in(log);
        return std::string((std::istreambuf_iterator<char>(in)), {});
    };
    ASSERT_TRUE(run_until([&] { return content().find("to-stderr") != std::string::npos; }, 3s)) << content();
    EXPECT_NE(content().find("to-stdout"), std::string::npos);
}

TEST_F(SupervisorTest, ChildGetsCleanEnvironmentAndNoExtraFds) {
    opts_.log_command = {"/bin/sh", "-c", "exec cat > " + dir_ + "/\"$0\".log"};
    sup().ensure({"inspect", {"/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; env; exec /bin/sleep 30"}});
    auto content = [&] {
        std::ifstream in(dir_ + "/inspect.log");
        return std::string((std::istreambuf_iterator<char>(in)), {});
    };
    ASSERT_TRUE(run_until([&] { return content().find("PATH=") != std::string::npos; }, 3s)) << content();
    // ls sees 0, 1, 2 and its own directory fd (3); nothing of the test process leaks.
    EXPECT_EQ(content().substr(0, content().find('\n')), "0 1 2 3 ");
    EXPECT_EQ(content().find("HOME="), std::string::npos);
}

// A spec with capabilities: the child's bounding set is cut to them and no_new_privs is set
// (as root it then holds exactly them); its log forwarder holds none.
constexpr uint64_t kTimeAndPort = (1ull << 25) | (1ull << 10);  // CAP_SYS_TIME, CAP_NET_BIND_SERVICE

TEST_F(SupervisorTest, CapabilitiesReachTheChild) {
    opts_.log_command = {"/bin/sh", "-c", "grep CapBnd /proc/self/status > " + dir_ + "/\"$0\".logger; exec cat > " +
                                              dir_ + "/\"$0\".log"};
    sup().ensure({"capped",
                  {"/bin/sh", "-c", "grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs)' /proc/self/status; exec /bin/sleep 30"},
                  kTimeAndPort});
    auto content = [&](const std::string& f) {
        std::ifstream in(dir_ + "/" + f);
        return std::string((std::istreambuf_iterator<char>(in)), {});
    };
    ASSERT_TRUE(run_until([&] { return content("capped.log").find("NoNewPrivs") != std::string::npos; }, 3s));
    auto log = content("capped.log");
    EXPECT_NE(log.find("CapBnd:\t0000000002000400\n"), std::string::npos) << log;
    EXPECT_NE(log.find("NoNewPrivs:\t1\n"), std::string::npos) << log;
    if (geteuid() == 0) {
        EXPECT_NE(log.find("CapEff:\t0000000002000400\n"), std::string::npos) << log;
    }
    EXPECT_EQ(content("capped.logger"), "CapBnd:\t0000000000000000\n");
}

// The record keeps the capabilities: a new supervisor adopts the child instead of restarting
// it for a spec that would otherwise look changed.
TEST_F(SupervisorTest, CapabilitiesSurviveAdoption) {
    const ServiceSpec capped{"capped", {"/bin/sleep", "30"}, kTimeAndPort};
    sup().ensure(capped);
    pid_t pid = st("capped").pid;
    sup_->abandon_all();
    sup_.reset();
    int starts = 0;
    sup().on_change = [&](const ServiceStatus& s) {
        if (s.state == ServiceState::running && !s.adopted) ++starts;
    };
    sup().adopt_recorded();
    EXPECT_EQ(sup().spec_of("capped"), capped);
    sup().ensure(capped);
    EXPECT_EQ(st("capped").pid, pid);
    EXPECT_TRUE(st("capped").adopted);
    EXPECT_EQ(starts, 0);
}

}  // namespace
}  // namespace netd
