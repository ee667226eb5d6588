// netctl log: the persistent log's files per boot, oldest first; --previous [N], --list, and
// the errors an administrator may meet (a boot not kept, a bad argument).
#include "log_files.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "test_fakes.h"

namespace netd {
namespace {

struct Captured {
    std::string out, err;
    int status = 0;
};

Captured run(const std::vector<std::string>& args, const std::string& dir) {
    char* ob = nullptr;
    char* eb = nullptr;
    size_t on = 0, en = 0;
    FILE* o = open_memstream(&ob, &on);
    FILE* e = open_memstream(&eb, &en);
    Captured c;
    c.status = netctl_log(args, dir, o, e);
    std::fclose(o);
    std::fclose(e);
    c.out.assign(ob, on);
    c.err.assign(eb, en);
    std::free(ob);
    std::free(eb);
    return c;
}

struct LogDir {
    std::string dir = testing::temp_dir();
    ~LogDir() { std::filesystem::remove_all(dir); }
    void write(const std::string& rel, const std::string& text) {
        std::filesystem::create_directories(std::filesystem::path(dir + "/" + rel).parent_path());
        std::ofstream(dir + "/" + rel) << text;
    }
};

TEST(LogFiles, Arguments) {
    EXPECT_EQ(parse_log_args({})->boot, 0);
    EXPECT_EQ(parse_log_args({"--previous"})->boot, 1);
    EXPECT_EQ(parse_log_args({"--previous", "3"})->boot, 3);
    EXPECT_TRUE(parse_log_args({"--list"})->list);
    EXPECT_FALSE(parse_log_args({"--previous", "4"}));
    EXPECT_FALSE(parse_log_args({"--previous", "0"}));
    EXPECT_FALSE(parse_log_args({"--previous", "x"}));
    EXPECT_FALSE(parse_log_args({"-f"}));
    EXPECT_FALSE(parse_log_args({"--list", "1"}));
}

TEST(LogFiles, ABootIsItsRotatedFileThenItsFile) {
    LogDir d;
    d.write("current/messages", "Jan  2 10:00:00 router user.notice now: this boot\n");
    d.write("boot-1/messages.0", "Jan  1 09:00:00 router user.notice x: older half\n");
    d.write("boot-1/messages", "Jan  1 09:30:00 router user.notice x: before the crash\n");
    auto c = run({}, d.dir);
    EXPECT_EQ(c.status, 0);
    EXPECT_EQ(c.out, "Jan  2 10:00:00 router user.notice now: this boot\n");
    c = run({"--previous"}, d.dir);
    EXPECT_EQ(c.status, 0) << c.err;
    EXPECT_EQ(c.out, "Jan  1 09:00:00 router user.notice x: older half\n"
                     "Jan  1 09:30:00 router user.notice x: before the crash\n");
    c = run({"--previous", "2"}, d.dir);
    EXPECT_EQ(c.status, 1);
    EXPECT_EQ(c.out, "");
    EXPECT_NE(c.err.find("no log of 2 boots back in " + d.dir + "/boot-2"), std::string::npos) << c.err;
    c = run({"--previous", "9"}, d.dir);
    EXPECT_EQ(c.status, 2);
    EXPECT_NE(c.err.find("N is 1 (the boot before this one) .. 3"), std::string::npos) << c.err;
}

TEST(LogFiles, TheListing) {
    LogDir d;
    d.write("current/messages", "Jan  2 10:00:00 router user.notice now: a\nJan  2 10:05:00 router user.notice now: b\n");
    d.write("boot-2/messages", "Dec 30 08:00:00 router user.notice old: a\n");
    auto c = run({"--list"}, d.dir);
    EXPECT_EQ(c.status, 0);
    EXPECT_NE(c.out.find("this boot      " + d.dir + "/current"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("Jan  2 10:00:00 .. Jan  2 10:05:00"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("--previous 2"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("Dec 30 08:00:00 .. Dec 30 08:00:00"), std::string::npos) << c.out;
    EXPECT_EQ(c.out.find("boot-1"), std::string::npos) << "not kept: not listed";
    LogDir empty;
    EXPECT_EQ(run({"--list"}, empty.dir).out, "no persistent log in " + empty.dir + "\n");
}

}  // namespace
}  // namespace netd
