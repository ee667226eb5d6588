// Commit-confirm: the files on the data disk (config_store.h) and the daemon's trial, deadline,
// confirm, history and rollback, with the recording kernel and a hand-run clock.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "config_store.h"
#include "daemon.h"
#include "test_fakes.h"

namespace netd {
namespace {

using namespace std::chrono_literals;
using testing::kBaseConfig;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}
bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

TEST(ConfigStore, ConfirmWritesTheConfigurationThenTheHistoryThenDropsTheTrial) {
    std::string dir = testing::temp_dir();
    ConfigStore s(dir + "/router.conf", dir + "/state");
    std::ofstream(dir + "/router.conf") << "old\n";
    ASSERT_TRUE(s.record("old\n", "file", "boot", 1000));
    Trial t{"new\n", "alice@laptop", "apply", 2000, 120};
    ASSERT_TRUE(s.begin(t));
    ASSERT_TRUE(s.pending());
    EXPECT_EQ(s.pending()->who, "alice@laptop");
    EXPECT_EQ(s.pending()->text, "new\n");
    EXPECT_EQ(slurp(dir + "/router.conf"), "old\n") << "a trial never touches router.conf";
    auto n = s.confirm(t, 2050);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 2u);
    EXPECT_EQ(slurp(dir + "/router.conf"), "new\n");
    EXPECT_FALSE(s.pending());
    auto h = s.history();
    ASSERT_EQ(h.size(), 2u);
    EXPECT_EQ(h[0].number, 2u);
    EXPECT_EQ(h[0].who, "alice@laptop");
    EXPECT_EQ(h[0].how, "apply");
    EXPECT_EQ(h[0].time, 2050);
    EXPECT_EQ(h[0].text, "new\n");
    EXPECT_EQ(h[1].text, "old\n");
    // A history file is a configuration as it is: its header is comments.
    EXPECT_EQ(slurp(dir + "/state/history/r000002.conf").rfind("# netd revision 2\n", 0), 0u);
    // The same text again is not a new revision.
    EXPECT_EQ(*s.record("new\n", "file", "reload", 3000), 2u);
}

TEST(ConfigStore, TheHistoryKeepsTheLastTwenty) {
    std::string dir = testing::temp_dir();
    ConfigStore s(dir + "/router.conf", dir + "/state");
    for (int i = 1; i <= 25; ++i) ASSERT_TRUE(s.record("v" + std::to_string(i) + "\n", "file", "reload", i));
    auto h = s.history();
    ASSERT_EQ(h.size(), ConfigStore::kKeep);
    EXPECT_EQ(h.front().number, 25u);
    EXPECT_EQ(h.back().number, 6u);
    EXPECT_FALSE(s.revision(5));
}

// A reboot in the middle: the trial a power cut interrupted is dropped (router.conf, the last
// confirmed, runs); a confirm that had reached router.conf is finished.
TEST(ConfigStore, RecoverDropsAnInterruptedTrialAndFinishesAnInterruptedConfirm) {
    std::string dir = testing::temp_dir();
    ConfigStore s(dir + "/router.conf", dir + "/state");
    std::ofstream(dir + "/router.conf") << "old\n";
    ASSERT_TRUE(s.record("old\n", "file", "boot", 1000));
    ASSERT_TRUE(s.begin({"new\n", "bob", "apply", 2000, 60}));
    std::ofstream(dir + "/.router.conf.tmp") << "torn";   // a write the cut interrupted
    std::string said = s.recover();
    EXPECT_NE(said.find("dropped the unconfirmed trial (apply by bob"), std::string::npos) << said;
    EXPECT_FALSE(s.pending());
    EXPECT_FALSE(exists(dir + "/.router.conf.tmp"));
    EXPECT_EQ(slurp(dir + "/router.conf"), "old\n");
    EXPECT_EQ(s.history().size(), 1u);

    ASSERT_TRUE(s.begin({"new\n", "bob", "apply", 2000, 60}));
    std::ofstream(dir + "/router.conf", std::ios::trunc) << "new\n";   // the cut came after the commit point
    said = s.recover();
    EXPECT_NE(said.find("finished the confirm"), std::string::npos) << said;
    ASSERT_EQ(s.history().size(), 2u);
    EXPECT_EQ(s.history().front().text, "new\n");
    EXPECT_EQ(s.history().front().who, "bob");
    EXPECT_EQ(s.recover(), "");
}

TEST(ConfigStore, UnifiedDiff) {
    EXPECT_EQ(unified_diff("a\nb\n", "a\nb\n", "x", "y"), "");
    std::string a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
    std::string b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n";
    EXPECT_EQ(unified_diff(a, b, "running", "new.conf"),
              "--- running\n+++ new.conf\n"
              "@@ -2,9 +2,10 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n+11\n");
    std::string far_a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", far_b = "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n";
    EXPECT_EQ(unified_diff(far_a, far_b, "a", "b"),
              "--- a\n+++ b\n@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+y\n");
    EXPECT_EQ(unified_diff("", "a\n", "a", "b"), "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+a\n");
}

const std::string kMoved = std::string(kBaseConfig).replace(std::string(kBaseConfig).find("192.168.7.1/24"), 14,
                                                            "192.168.9.1/24");

struct Router {
    RecordingKernel kernel;
    testing::FakeServices services;
    testing::FakeScheduler sched;
    testing::FakeUpdates updates;
    testing::FakeDatagrams datagrams;
    std::string dir = testing::temp_dir();
    std::unique_ptr<Daemon> d;

    explicit Router(const std::string& text) {
        testing::boot_kernel(kernel);
        std::ofstream(dir + "/router.conf") << text;
        std::ofstream(dir + "/moved.conf") << kMoved;
        restart();
    }
    void restart() {
        DaemonOptions o;
        o.config_path = dir + "/router.conf";
        o.paths.run_dir = dir + "/run";
        o.state_dir = dir + "/state";
        o.data_format_file = dir + "/.layout";
        d = std::make_unique<Daemon>(kernel, services, sched, updates, datagrams, o);
        d->start();
    }
    ControlReply ctl(const std::vector<std::string>& a) { return d->control(a); }
    bool has_addr(const std::string& cidr) {
        for (auto& a : kernel.addrs)
            if (a.link == "eth1" && a.addr.str() == cidr) return true;
        return false;
    }
};

TEST(CommitConfirm, WithoutAConfirmThePreviousConfigurationComesBack) {
    Router r(kBaseConfig);
    auto a = r.ctl({"apply", r.dir + "/moved.conf", "30", "by=alice@laptop"});
    ASSERT_TRUE(a.ok) << a.text;
    EXPECT_NE(a.text.find("-ipv4 = \"192.168.7.1/24\"\n+ipv4 = \"192.168.9.1/24\"\n"), std::string::npos) << a.text;
    EXPECT_NE(a.text.find("confirm within 30 s"), std::string::npos) << a.text;
    EXPECT_TRUE(r.has_addr("192.168.9.1/24"));
    EXPECT_FALSE(r.has_addr("192.168.7.1/24"));
    auto st = nlohmann::json::parse(r.ctl({"status", "--json"}).text);
    EXPECT_EQ(st["trial"]["by"], "alice@laptop");
    EXPECT_FALSE(r.ctl({"reload"}).ok) << "a reload would end the trial behind its back";
    EXPECT_FALSE(r.ctl({"apply", r.dir + "/moved.conf", "by=bob"}).ok) << "one trial at a time";
    r.sched.advance(29s);
    EXPECT_TRUE(r.has_addr("192.168.9.1/24"));
    r.sched.advance(2s);
    EXPECT_TRUE(r.has_addr("192.168.7.1/24"));
    EXPECT_FALSE(r.has_addr("192.168.9.1/24"));
    EXPECT_EQ(slurp(r.dir + "/router.conf"), kBaseConfig);
    EXPECT_FALSE(exists(r.dir + "/state/pending.conf"));
    EXPECT_TRUE(nlohmann::json::parse(r.ctl({"status", "--json"}).text)["trial"].is_null());
    auto h = r.ctl({"history"});
    EXPECT_NE(h.text.find("    1  "), std::string::npos) << h.text;
    EXPECT_EQ(h.text.find("    2  "), std::string::npos) << h.text;
    EXPECT_FALSE(r.ctl({"confirm", "by=alice@laptop"}).ok) << "nothing left to confirm";
}

TEST(CommitConfirm, AConfirmKeepsItInRouterConfAndTheHistory) {
    Router r(kBaseConfig);
    ASSERT_TRUE(r.ctl({"apply", r.dir + "/moved.conf", "by=alice@laptop"}).ok);
    auto c = r.ctl({"confirm", "by=bob"});
    ASSERT_TRUE(c.ok) << c.text;
    EXPECT_EQ(c.text, "kept: revision 2 (apply by alice@laptop)\n");
    r.sched.advance(200s);
    EXPECT_TRUE(r.has_addr("192.168.9.1/24"));
    EXPECT_EQ(slurp(r.dir + "/router.conf"), kMoved);
    auto h = r.ctl({"history"}).text;
    EXPECT_NE(h.find("alice@laptop         apply  (running)"), std::string::npos) << h;
    EXPECT_NE(h.find("file                 boot"), std::string::npos) << h;
    auto d = r.ctl({"diff", "1"});
    EXPECT_NE(d.text.find("--- revision 1\n+++ running\n"), std::string::npos) << d.text;
    // Rollback goes through the same trial, and is undone without a confirm too.
    auto rb = r.ctl({"rollback", "1", "60", "by=carol"});
    ASSERT_TRUE(rb.ok) << rb.text;
    EXPECT_TRUE(r.has_addr("192.168.7.1/24"));
    r.sched.advance(61s);
    EXPECT_TRUE(r.has_addr("192.168.9.1/24"));
    ASSERT_TRUE(r.ctl({"rollback", "1", "by=carol"}).ok);
    ASSERT_TRUE(r.ctl({"confirm", "by=carol"}).ok);
    EXPECT_EQ(slurp(r.dir + "/router.conf"), kBaseConfig);
    EXPECT_NE(r.ctl({"history"}).text.find("carol                rollback to 1  (running)"), std::string::npos)
        << r.ctl({"history"}).text;
}

// netd restarting during a trial (a reboot, or a crash that init respawns): the last confirmed
// configuration runs, as after the deadline.
TEST(CommitConfirm, ARestartDuringTheTrialRunsTheLastConfirmed) {
    Router r(kBaseConfig);
    ASSERT_TRUE(r.ctl({"apply", r.dir + "/moved.conf", "by=alice"}).ok);
    EXPECT_TRUE(exists(r.dir + "/state/pending.conf"));
    r.restart();
    EXPECT_TRUE(r.has_addr("192.168.7.1/24"));
    EXPECT_FALSE(r.has_addr("192.168.9.1/24"));
    EXPECT_FALSE(exists(r.dir + "/state/pending.conf"));
    EXPECT_TRUE(nlohmann::json::parse(r.ctl({"status", "--json"}).text)["trial"].is_null());
}

TEST(CommitConfirm, ABadFileOrDeadlineChangesNothing) {
    Router r(kBaseConfig);
    std::ofstream(r.dir + "/bad.conf") << "[lan]\nipv4 = \"192.168.7.300/24\"\n";
    auto a = r.ctl({"apply", r.dir + "/bad.conf", "by=alice"});
    EXPECT_FALSE(a.ok);
    EXPECT_NE(a.text.find(r.dir + "/bad.conf:2:"), std::string::npos) << a.text;
    EXPECT_NE(a.text.find("nothing changed"), std::string::npos) << a.text;
    EXPECT_FALSE(r.ctl({"apply", r.dir + "/moved.conf", "5", "by=alice"}).ok);
    EXPECT_FALSE(r.ctl({"apply", r.dir + "/nonexistent.conf", "by=alice"}).ok);
    EXPECT_FALSE(r.ctl({"rollback", "7", "by=alice"}).ok);
    EXPECT_EQ(r.ctl({"apply", r.dir + "/router.conf", "by=alice"}).text,
              "no change: " + r.dir + "/router.conf is the running configuration\n");
    EXPECT_TRUE(r.has_addr("192.168.7.1/24"));
    EXPECT_FALSE(exists(r.dir + "/state/pending.conf"));
}

TEST(CommitConfirm, CancelEndsTheTrialNow) {
    Router r(kBaseConfig);
    ASSERT_TRUE(r.ctl({"apply", r.dir + "/moved.conf", "by=alice"}).ok);
    auto c = r.ctl({"cancel", "by=alice"});
    ASSERT_TRUE(c.ok) << c.text;
    EXPECT_TRUE(r.has_addr("192.168.7.1/24"));
    EXPECT_FALSE(r.has_addr("192.168.9.1/24"));
}

TEST(DataFormat, AnOlderDiskIsMigratedANewerOneRefused) {
    Router r(kBaseConfig);
    EXPECT_EQ(slurp(r.dir + "/.layout"), std::to_string(kDataFormat) + "\n");
    std::ofstream(r.dir + "/.layout", std::ios::trunc) << "1\n";
    r.restart();
    EXPECT_EQ(slurp(r.dir + "/.layout"), std::to_string(kDataFormat) + "\n");
    EXPECT_TRUE(r.has_addr("192.168.7.1/24"));

    std::ofstream(r.dir + "/.layout", std::ios::trunc) << "99\n";
    std::ofstream(r.dir + "/router.conf", std::ios::trunc) << kMoved;
    r.restart();
    auto st = nlohmann::json::parse(r.ctl({"status", "--json"}).text);
    EXPECT_NE(st["config"]["error"].get<std::string>().find("the data disk has format '99'"), std::string::npos)
        << st.dump();
    EXPECT_FALSE(r.ctl({"apply", r.dir + "/moved.conf", "by=alice"}).ok);
    EXPECT_FALSE(r.has_addr("192.168.9.1/24")) << "nothing configured from a disk it does not know";
    EXPECT_EQ(slurp(r.dir + "/.layout"), "99\n") << "and nothing written to it";
}

}  // namespace
}  // namespace netd
