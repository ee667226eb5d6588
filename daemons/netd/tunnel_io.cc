// The tunnel handlers' real I/O: the helper processes (HE update, TIC fetch) and the heartbeat's
// UDP socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "child.h"
#include "tic.h"
#include "tunnel.h"

namespace netd {
namespace {

class HelperUpdateRunner final : public UpdateRunner {
public:
    HelperUpdateRunner(EventLoop& loop, std::string exe) : loop_(loop), exe_(std::move(exe)) {}

    Registration start(const HeRequest& r, std::function<void(const std::string&)> done) override {
        // Credentials go through a pipe, never on a command line (ps would show them).
        std::string req = r.url + "\n" + r.username + "\n" + r.key + "\n" + r.tunnel_id + "\n" +
                          (r.myip ? r.myip->str() : "") + "\n" + r.ca_file + "\n";
        return run("--he-update", req, std::move(done));
    }

    Registration start_tic(const TicSettings& s, std::function<void(const std::string&)> done) override {
        return run("--tic-fetch", s.server + "\n" + s.username + "\n" + s.password + "\n" + s.tunnel_id + "\n",
                   std::move(done));
    }

private:
    // `exe flag` with `input` on its stdin; `done` gets its stdout once it ends or times out.
    Registration run(const char* flag, const std::string& input, std::function<void(const std::string&)> done) {
        // One run's state, shared by its callbacks and its handle; the handle kills an unfinished run.
        struct Run {
            std::unique_ptr<Child> child;
            UniqueFd out;
            std::string buf;
            Registration out_watch, deadline;
            bool finished = false;
        };
        auto run = std::make_shared<Run>();
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) != 0) {
            done("ERROR internal pipe: " + std::string(std::strerror(errno)) + "\n");
            return {};
        }
        UniqueFd in_r(in[0]), in_w(in[1]);
        if (pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0) {
            done("ERROR internal pipe: " + std::string(std::strerror(errno)) + "\n");
            return {};
        }
        UniqueFd out_w(out[1]);
        run->out.reset(out[0]);
        std::weak_ptr<Run> weak = run;
        auto drain = [weak] {
            auto rn = weak.lock();
            if (!rn) return;
            char b[1024];
            ssize_t n;
            while ((n = read(rn->out.get(), b, sizeof(b))) > 0)
                if (rn->buf.size() < 4096) rn->buf.append(b, static_cast<size_t>(n));
            if (n == 0) rn->out_watch.reset();
        };
        SpawnOptions so;
        so.argv = {exe_, flag};
        so.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
        so.stdin_fd = in_r.get();
        so.stdout_fd = out_w.get();
        auto child = Child::spawn(loop_, so, [weak, drain, done](const std::string& how) {
            auto rn = weak.lock();
            if (!rn || rn->finished) return;
            drain();  // what is left in the pipe
            rn->finished = true;
            rn->out_watch.reset();
            rn->deadline.reset();
            std::string output = rn->buf.empty() ? "ERROR helper " + how + " without an answer\n" : rn->buf;
            done(output);  // may release the handle: rn keeps the run alive until here
        });
        if (!child) {
            done("ERROR internal cannot start the helper: " + child.error().str() + "\n");
            return {};
        }
        run->child = std::move(*child);
        if (write(in_w.get(), input.data(), input.size()) < 0) syslog(LOG_WARNING, "%s: writing to the helper failed", flag);
        in_w.reset();
        if (auto w = loop_.watch_fd(run->out.get(), EPOLLIN, [drain](uint32_t) { drain(); })) run->out_watch = std::move(*w);
        run->deadline = loop_.after(std::chrono::duration_cast<std::chrono::milliseconds>(kUpdateTimeout), [weak] {
            auto rn = weak.lock();
            if (!rn || rn->finished) return;
            rn->child->signal(SIGKILL);
            // An answer already read stands; the exit (reported next) ends the run.
            if (rn->buf.empty()) rn->buf = "ERROR timeout no answer within " + std::to_string(kUpdateTimeout.count()) + " s\n";
        });
        return Registration([run] {
            if (run->finished) return;
            // Cancelled (the WAN moved on): the helper is killed, its exit no longer reported.
            run->finished = true;
            run->child->kill_and_reap();
            run->out_watch.reset();
            run->deadline.reset();
        });
    }

    EventLoop& loop_;
    std::string exe_;
};

class UdpSender final : public DatagramSender {
public:
    std::string send(const std::string& payload, Ipv4Addr to, uint16_t port) override {
        if (!fd_) fd_.reset(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd_) return std::strerror(errno);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr = to.to_in_addr();
        ssize_t n = sendto(fd_.get(), payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
        if (n != static_cast<ssize_t>(payload.size())) return n < 0 ? std::strerror(errno) : "short send";
        return {};
    }

private:
    UniqueFd fd_;
};

}  // namespace

std::unique_ptr<UpdateRunner> make_helper_update_runner(EventLoop& loop, std::string exe) {
    return std::make_unique<HelperUpdateRunner>(loop, std::move(exe));
}

std::unique_ptr<DatagramSender> make_udp_sender() { return std::make_unique<UdpSender>(); }

}  // namespace netd
