// The control socket with a real client: NUL-separated arguments, success and failure
// replies, and refusal of non-root peers.
#include "control.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace netd {
namespace {

class ControlTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/control_test.XXXXXX";
        dir_ = mkdtemp(tmpl);
        path_ = dir_ + "/control";
        loop_ = std::move(*EventLoop::create());
        auto s = ControlServer::listen(*loop_, path_, [](const std::vector<std::string>& args) {
            if (args.size() == 1 && args[0] == "fail") return ControlReply{false, "it failed\n"};
            std::string joined;
            for (auto& a : args) joined += "[" + a + "]";
            return ControlReply{true, joined};
        });
        ASSERT_TRUE(s) << s.error().str();
        server_ = std::move(*s);
    }
    void TearDown() override {
        server_.reset();
        rmdir(dir_.c_str());
    }
    // Runs the request in a child process (optionally as another uid) while the loop serves.
    std::string request_in_child(const std::vector<std::string>& args, uid_t uid = 0) {
        int p[2];
        EXPECT_EQ(pipe(p), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            if (uid != 0 && setresuid(uid, uid, uid) != 0) _exit(3);
            auto r = control_request(path_, args);
            std::string out = r ? (r->ok ? "ok:" : "err:") + r->text : "error:" + r.error().str();
            (void)!write(p[1], out.data(), out.size());
            _exit(0);
        }
        close(p[1]);
        std::string got;
        loop_->watch(p[0], EPOLLIN | EPOLLHUP, [&](uint32_t) {
            char buf[4096];
            ssize_t n = read(p[0], buf, sizeof(buf));
            if (n > 0) got.append(buf, static_cast<size_t>(n));
            else loop_->stop();
        });
        auto t = loop_->add_timer(std::chrono::seconds(10), [&] { loop_->stop(); });
        loop_->run();
        loop_->cancel_timer(t);
        loop_->unwatch(p[0]);
        close(p[0]);
        waitpid(pid, nullptr, 0);
        return got;
    }

    std::string dir_, path_;
    std::unique_ptr<EventLoop> loop_;
    std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlTest, ArgumentsArriveWhole) {
    EXPECT_EQ(request_in_child({"status", "--json", "with space"}), "ok:[status][--json][with space]");
}

TEST_F(ControlTest, FailureReply) { EXPECT_EQ(request_in_child({"fail"}), "err:it failed\n"); }

TEST_F(ControlTest, NonRootIsRefused) {
    // The socket's mode already keeps other users out ...
    EXPECT_NE(request_in_child({"status"}, 65534).find("Permission denied"), std::string::npos);
    // ... and with the mode opened up, the peer credentials still do.
    ASSERT_EQ(chmod(path_.c_str(), 0777), 0);
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
    auto got = request_in_child({"status"}, 65534);
    EXPECT_EQ(got.rfind("err:permission denied", 0), 0u) << got;
}

TEST(ControlClient, NoServerIsAClearError) {
    auto r = control_request("/tmp/no-such-netd-socket", {"status"});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().str().find("is netd running?"), std::string::npos);
}


}  // namespace
}  // namespace netd
