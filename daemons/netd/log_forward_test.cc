// The remote log: [log] remote in the config (errors as file:line:col), its forwarder as a
// service that a reload starts, changes and stops, the messages as syslogd hands them over and
// as logread prints them, their RFC 5424 form and framing, and the forwarder against real UDP
// and TCP sockets on loopback: a log host that is down, refuses, reads nothing or comes back.
#include "log_forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

#include "desired_state.h"
#include "reconcile.h"
#include "service_configs.h"
#include "test_fakes.h"

namespace netd {
namespace {

using namespace std::chrono_literals;
using testing::config_of;
using testing::kBaseConfig;

std::string errors_of(const ConfigResult& r) {
    std::string s;
    for (auto& e : r.errors) s += e.str() + "\n";
    return s;
}

ConfigResult with_log(const std::string& log_table) {
    return parse_config_text(std::string(kBaseConfig) + log_table, "r.conf");
}

// ---- [log] in the config ----

TEST(LogConfig, RemoteUdpAndTcpWithDefaultPort) {
    auto r = with_log("[log]\nremote = \"udp://192.0.2.1\"\n");
    ASSERT_TRUE(r.config) << errors_of(r);
    ASSERT_TRUE(r.config->log.remote);
    EXPECT_EQ(r.config->log.remote->proto, Proto::udp);
    EXPECT_EQ(r.config->log.remote->port, 514);
    EXPECT_EQ(r.config->log.remote->url(), "udp://192.0.2.1:514");

    r = with_log("[log]\nremote = \"tcp://[2001:DB8::0:1]:6514\"\n");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_EQ(r.config->log.remote->proto, Proto::tcp);
    EXPECT_EQ(r.config->log.remote->port, 6514);
    EXPECT_EQ(r.config->log.remote->url(), "tcp://[2001:db8::1]:6514") << "canonical";

    r = with_log("");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_FALSE(r.config->log.remote) << "no [log]: no remote log";
    r = with_log("[log]\n");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_FALSE(r.config->log.remote);
}

TEST(LogConfig, BadRemotesAreErrorsWithTheirPosition) {
    struct Case {
        const char* value;
        const char* says;
    };
    const Case cases[] = {
        {"192.0.2.1:514", "is not udp://ADDRESS[:PORT] or tcp://ADDRESS[:PORT]"},
        {"syslog://192.0.2.1", "is not udp://ADDRESS[:PORT]"},
        {"udp://loghost.example.net", "not a name"},
        {"udp://192.0.2.1:0", "port '0' is not 1..65535"},
        {"udp://192.0.2.1:65536", "port '65536' is not 1..65535"},
        {"tcp://192.0.2.1:", "the port is missing"},
        {"tcp://192.0.2.1:x", "port 'x'"},
        {"tcp://2001:db8::1", "in brackets"},
        {"tcp://[2001:db8::1", "no ']'"},
        {"tcp://[2001:db8::1]514", "expected ':PORT'"},
        {"tcp://[192.0.2.1]:514", "is not an IPv6 address"},
        {"udp://127.0.0.1", "not a unicast address another host can have"},
        {"udp://224.0.0.1", "not a unicast address"},
        {"udp://[ff02::1]", "not a unicast address"},
        {"udp://[fe80::1]", "not a unicast address"},
        {"udp://[::1]", "not a unicast address"},
        {"udp://", "the address is missing"},
    };
    for (auto& c : cases) {
        auto r = with_log(std::string("[log]\nremote = \"") + c.value + "\"\n");
        ASSERT_FALSE(r.config) << c.value;
        ASSERT_EQ(r.errors.size(), 1u) << errors_of(r);
        // kBaseConfig is 7 lines: [log] is line 8, remote line 9, its value at column 10.
        EXPECT_EQ(r.errors[0].line, 9) << c.value;
        EXPECT_EQ(r.errors[0].column, 10) << c.value;
        EXPECT_NE(r.errors[0].str().find("r.conf:9:10: log.remote: "), std::string::npos) << r.errors[0].str();
        EXPECT_NE(r.errors[0].message.find(c.says), std::string::npos) << c.value << ": " << r.errors[0].message;
    }
    auto r = with_log("[log]\nremote = 514\n");
    ASSERT_FALSE(r.config);
    EXPECT_EQ(r.errors[0].str(), "r.conf:9:10: log.remote: expected a string");
    r = with_log("[log]\nremote = \"udp://192.0.2.1\"\nfile = \"/data/x\"\n");
    ASSERT_FALSE(r.config);
    EXPECT_EQ(r.errors[0].str(), "r.conf:10:8: unknown key 'file' in [log]");
}

TEST(LogConfig, TheForwarderArgumentIsTheCanonicalUrl) {
    auto a = parse_log_remote("udp://192.0.2.1");
    auto b = parse_log_remote("udp://192.0.2.1:514");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(log_forward_service(*a).spec, log_forward_service(*b).spec) << "same host: no restart";
    EXPECT_EQ(log_forward_service(*a).spec.argv,
              (std::vector<std::string>{"/usr/sbin/netd", "--log-forward", "udp://192.0.2.1:514"}));
    EXPECT_EQ(log_forward_service(*a).spec.name, "log-forward");
    EXPECT_FALSE(log_forward_service(*a).spec.capabilities) << "it drops root itself";
}

// A reload starts the forwarder (first of the services), a changed remote restarts it, an
// unchanged file does nothing, and without [log] remote it is stopped. No reboot.
TEST(LogConfig, AReloadStartsChangesAndStopsTheForwarder) {
    RecordingKernel kernel;
    testing::boot_kernel(kernel);
    testing::FakeServices services;
    std::string run = testing::temp_dir();
    Reconciler rec(kernel, services, run + "/owned.json");
    Paths p;
    p.run_dir = run;
    auto go = [&](const std::string& text) {
        services.ops.clear();
        auto d = desired_state(config_of(text), kernel.link_list, std::nullopt, p);
        EXPECT_TRUE(d);
        Applied a;
        EXPECT_TRUE(rec.converge(*d, a));
        return d->services.front().spec.name;
    };
    const std::string udp = std::string(kBaseConfig) + "[log]\nremote = \"udp://192.0.2.1\"\n";
    const std::string tcp = std::string(kBaseConfig) + "[log]\nremote = \"tcp://[2001:db8:7::10]\"\n";
    go(kBaseConfig);
    EXPECT_FALSE(services.running.count("log-forward"));
    EXPECT_EQ(go(udp), "log-forward") << "started before the daemons";
    EXPECT_EQ(services.ops.front(), "start log-forward");
    EXPECT_EQ(services.running["log-forward"].argv.back(), "udp://192.0.2.1:514");
    go(udp);
    EXPECT_TRUE(services.ops.empty()) << "unchanged";
    go(tcp);
    EXPECT_EQ(services.ops, (std::vector<std::string>{"restart log-forward"}));
    EXPECT_EQ(services.running["log-forward"].argv.back(), "tcp://[2001:db8:7::10]:514");
    go(kBaseConfig);
    EXPECT_EQ(services.ops, (std::vector<std::string>{"stop log-forward"}));
    std::filesystem::remove_all(run);
}

// ---- messages ----

TEST(LogMessages, ADatagramAsSyslogdForwardsIt) {
    auto v = parse_datagram("<30>Jan  2 03:04:05 dnsmasq[123]: started, version 2.90\n");
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].pri, 30);
    EXPECT_EQ(v[0].stamp, "Jan  2 03:04:05");
    EXPECT_EQ(v[0].app, "dnsmasq");
    EXPECT_EQ(v[0].procid, "123");
    EXPECT_EQ(v[0].text, "started, version 2.90");

    const char two[] = "<13>rcS: syslog started\0<6>kernel: [    1.5] eth0: up\0\n";
    v = parse_datagram(std::string_view(two, sizeof(two) - 1));
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].stamp, "");
    EXPECT_EQ(v[0].app, "rcS");
    EXPECT_EQ(v[0].procid, "-");
    EXPECT_EQ(v[0].text, "syslog started");
    EXPECT_EQ(v[1].pri, 6);
    EXPECT_EQ(v[1].app, "kernel");
    EXPECT_EQ(v[1].text, "[    1.5] eth0: up");

    // No priority: user.notice, as syslogd takes it; no tag: all text; control characters as
    // syslogd writes them.
    v = parse_datagram("just text: with a colon\nand\x01 more");
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].pri, 13);
    EXPECT_EQ(v[0].app, "-");
    EXPECT_EQ(v[0].text, "just text: with a colon and^A more");
    v = parse_datagram("<999>x[12: y");
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].pri, 13);
    EXPECT_EQ(v[0].text, "<999>x[12: y");
    v = parse_datagram("<29>netd[7]:");
    EXPECT_EQ(v[0].app, "netd");
    EXPECT_EQ(v[0].text, "");
    EXPECT_TRUE(parse_datagram("\n\0\n").empty());
}

TEST(LogMessages, ALogreadLine) {
    auto m = parse_logread_line("Jan  2 03:04:05 router daemon.info dnsmasq[123]: started\n");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->pri, 30);
    EXPECT_EQ(m->stamp, "Jan  2 03:04:05");
    EXPECT_EQ(m->app, "dnsmasq");
    EXPECT_EQ(m->procid, "123");
    EXPECT_EQ(m->text, "started");
    m = parse_logread_line("Nov 30 23:59:59 router kern.warn kernel: [   2.0] x");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->pri, 4);
    m = parse_logread_line("Nov 30 23:59:59 router local7.debug x");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->pri, 23 * 8 + 7);
    EXPECT_EQ(m->app, "-");
    m = parse_logread_line("Nov 30 23:59:59 router <165> odd");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->pri, 165);
    m = parse_logread_line("Nov 30 23:59:59 router syslog.info syslogd started: BusyBox v1.35.0");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->pri, 46);
    EXPECT_EQ(m->app, "-") << "a space before the colon: no tag";
    EXPECT_FALSE(parse_logread_line("garbage"));
    EXPECT_FALSE(parse_logread_line("Nov 30 23:59:59 router nonsense.info x"));
    EXPECT_FALSE(parse_logread_line("Nov 30 23:59:59 router"));
}

TEST(LogMessages, Rfc5424AndFraming) {
    LogMessage m;
    m.pri = 30;
    m.app = "dnsmasq";
    m.procid = "123";
    m.text = "started";
    auto t = std::chrono::system_clock::from_time_t(1704164645) + 123456us;  // 2024-01-02T03:04:05Z
    std::string s = rfc5424(m, "router", t);
    EXPECT_EQ(s, "<30>1 2024-01-02T03:04:05.123456Z router dnsmasq 123 - - started");
    EXPECT_EQ(rfc5424(m, "router", t, false), "<30>1 2024-01-02T03:04:05Z router dnsmasq 123 - - started");
    LogMessage bare;
    bare.text = "";
    EXPECT_EQ(rfc5424(bare, "", t, false), "<13>1 2024-01-02T03:04:05Z - - - - -");
    EXPECT_EQ(frame(Proto::udp, s), s);
    EXPECT_EQ(frame(Proto::tcp, s), std::to_string(s.size()) + " " + s) << "RFC 6587 octet counting";
}

TEST(LogMessages, StampTimesFindTheirYear) {
    const char* tz = std::getenv("TZ");
    std::string saved = tz ? tz : "";
    setenv("TZ", "UTC", 1);
    tzset();
    auto now = std::chrono::system_clock::from_time_t(1704067210);  // 2024-01-01T00:00:10Z
    auto a = stamp_time("Dec 31 23:59:59", now);
    ASSERT_TRUE(a);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*a), 1704067199) << "last year's";
    auto b = stamp_time("Jan  1 00:00:05", now);
    ASSERT_TRUE(b);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*b), 1704067205);
    EXPECT_FALSE(stamp_time("Foo  1 00:00:05", now));
    EXPECT_FALSE(stamp_time("Jan 41 00:00:05", now));
    if (tz) setenv("TZ", saved.c_str(), 1);
    else unsetenv("TZ");
    tzset();
}

TEST(LogMessages, TheBacklogEndsWhereTheSocketBegins) {
    auto line = [](const char* s) { return *parse_logread_line(s); };
    std::vector<LogMessage> dump = {line("Jan  2 03:04:05 r daemon.info netd[1]: a"),
                                    line("Jan  2 03:04:05 r daemon.info netd[1]: b"),
                                    line("Jan  2 03:04:06 r daemon.info netd[1]: c"),
                                    line("Jan  2 03:04:06 r daemon.info netd[1]: d")};
    auto live = parse_datagram("<30>Jan  2 03:04:06 netd[1]: c");
    auto b = backlog(dump, live[0]);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b[1].text, "b");
    EXPECT_EQ(backlog(dump, std::nullopt).size(), 4u) << "nothing live: all of it";
    EXPECT_EQ(backlog(dump, parse_datagram("<30>Jan  2 03:04:07 netd[1]: c")[0]).size(), 4u) << "another moment";
    EXPECT_EQ(backlog(dump, parse_datagram("<30>netd[1]: d")[0]).size(), 3u) << "no stamp: by its text";
}

TEST(LogQueue, TheOldestGoWhenFull) {
    LogQueue q(10);
    q.push("aaaa");
    q.push("bbbb");
    EXPECT_EQ(q.dropped(), 0u);
    q.push("cccc");
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.front(), "bbbb");
    EXPECT_EQ(q.dropped(), 1u);
    q.set_front_busy(true);   // half written: stays
    q.push("dddd");
    EXPECT_EQ(q.front(), "bbbb");
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.bytes(), 8u);
    q.pop();
    EXPECT_EQ(q.front(), "dddd");
    q.push(std::string(50, 'x'));   // bigger than the limit alone: kept (the newest)
    EXPECT_EQ(q.size(), 1u);
}

// ---- the forwarder against loopback sockets ----

LogRemote loopback(Proto proto, uint16_t port) {
    LogRemote r;
    r.proto = proto;
    r.address = IpCidr::v4(*Ipv4Addr::parse("127.0.0.1"));
    r.port = port;
    return r;
}

uint16_t port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

UniqueFd bound_socket(int type, uint16_t port = 0) {
    UniqueFd fd(socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int on = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
    return fd;
}

// Runs the loop until pred() holds or the time is up; returns pred().
bool run_until(EventLoop& loop, const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    Registration deadline = loop.after(limit, [&] { loop.stop(); });
    Registration tick;
    std::function<void()> check = [&] {
        if (pred()) return loop.stop();
        tick = loop.after(5ms, check);
    };
    check();
    if (!pred()) loop.run();
    return pred();
}

// A TCP log host on the loop: takes connections, collects what they send, can stop reading
// or drop the connection.
struct TcpHost {
    EventLoop& loop;
    UniqueFd listener;
    std::vector<UniqueFd> conns;
    std::vector<Registration> watches;
    Registration accept_watch;
    std::string received;
    int accepted = 0;
    bool reading = true;

    TcpHost(EventLoop& l, uint16_t port = 0) : loop(l), listener(bound_socket(SOCK_STREAM, port)) {
        EXPECT_EQ(listen(listener.get(), 8), 0);
        accept_watch = std::move(*loop.watch_fd(listener.get(), EPOLLIN, [this](uint32_t) {
            int c = accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) return;
            ++accepted;
            conns.emplace_back(c);
            if (!reading) return;
            watches.push_back(std::move(*loop.watch_fd(c, EPOLLIN, [this, c](uint32_t) {
                char buf[65536];
                ssize_t n;
                while ((n = read(c, buf, sizeof(buf))) > 0) received.append(buf, static_cast<size_t>(n));
            })));
        }));
    }
    uint16_t port() const { return port_of(listener.get()); }
    void drop_connections() {
        watches.clear();
        conns.clear();
    }
    // The octet-counted frames received, checked as RFC 6587 says.
    std::vector<std::string> frames() const {
        std::vector<std::string> out;
        size_t pos = 0;
        while (pos < received.size()) {
            size_t sp = received.find(' ', pos);
            if (sp == std::string::npos) break;
            size_t len = std::stoul(received.substr(pos, sp - pos));
            if (sp + 1 + len > received.size()) break;
            out.push_back(received.substr(sp + 1, len));
            pos = sp + 1 + len;
        }
        return out;
    }
};

std::string msg(int i) { return "<30>1 2024-01-02T03:04:05Z router t - - - line " + std::to_string(i); }

TEST(LogForwarder, UdpOneMessagePerDatagram) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    UniqueFd host = bound_socket(SOCK_DGRAM);
    LogForwarder f(**loop, loopback(Proto::udp, port_of(host.get())));
    f.push(msg(1));   // queued before the start: goes with it
    f.start();
    f.push(msg(2));
    f.push(msg(3));
    std::vector<std::string> got;
    auto w = (*loop)->watch_fd(host.get(), EPOLLIN, [&](uint32_t) {
        char buf[2048];
        ssize_t n;
        while ((n = recv(host.get(), buf, sizeof(buf), 0)) > 0) got.emplace_back(buf, static_cast<size_t>(n));
    });
    EXPECT_TRUE(run_until(**loop, [&] { return got.size() == 3; }, 2s));
    EXPECT_EQ(got, (std::vector<std::string>{msg(1), msg(2), msg(3)}));
    EXPECT_EQ(f.sent(), 3u);
    EXPECT_TRUE(f.queue().empty());
}

TEST(LogForwarder, TcpOctetCountedFramesAndReconnect) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    TcpHost host(**loop);
    LogForwarder::Options o;
    o.min_backoff = 20ms;
    LogForwarder f(**loop, loopback(Proto::tcp, host.port()), o);
    f.start();
    for (int i = 0; i < 3; ++i) f.push(msg(i));
    EXPECT_TRUE(run_until(**loop, [&] { return host.frames().size() == 3; }, 2s));
    EXPECT_EQ(host.frames(), (std::vector<std::string>{msg(0), msg(1), msg(2)}));
    EXPECT_TRUE(f.up());
    // The log host drops the connection: the forwarder notices, reconnects, and what comes
    // meanwhile reaches the new connection.
    host.drop_connections();
    EXPECT_TRUE(run_until(**loop, [&] { return !f.up(); }, 2s)) << "the close is noticed";
    f.push(msg(3));
    f.push(msg(4));
    EXPECT_TRUE(run_until(**loop, [&] { return host.frames().size() == 5; }, 3s)) << host.received;
    EXPECT_EQ(host.accepted, 2);
    EXPECT_EQ(host.frames().back(), msg(4));
}

TEST(LogForwarder, TcpHostDownAtFirstThenUp) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    uint16_t port;
    {
        UniqueFd probe = bound_socket(SOCK_STREAM);
        port = port_of(probe.get());
    }   // closed: nothing listens there now
    LogForwarder::Options o;
    o.min_backoff = 20ms;
    o.max_backoff = 40ms;
    LogForwarder f(**loop, loopback(Proto::tcp, port), o);
    auto t0 = std::chrono::steady_clock::now();
    f.start();
    for (int i = 0; i < 100; ++i) f.push(msg(i));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms) << "never waits for the log host";
    run_until(**loop, [&] { return false; }, 100ms);   // a few refused connects
    EXPECT_FALSE(f.up());
    EXPECT_EQ(f.queue().size(), 100u) << "kept while the host is down";
    TcpHost host(**loop, port);
    EXPECT_TRUE(run_until(**loop, [&] { return host.frames().size() == 100; }, 3s));
    EXPECT_EQ(host.frames().front(), msg(0));
    EXPECT_EQ(host.frames().back(), msg(99));
    EXPECT_EQ(f.queue().dropped(), 0u);
}

// A log host that accepts and never reads: the kernel's buffers fill, then the queue, whose
// oldest lines go; pushing never blocks.
TEST(LogForwarder, AHostThatReadsNothingNeverBlocks) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    TcpHost host(**loop);
    host.reading = false;
    LogForwarder::Options o;
    o.queue_bytes = 64 * 1024;
    LogForwarder f(**loop, loopback(Proto::tcp, host.port()), o);
    f.start();
    EXPECT_TRUE(run_until(**loop, [&] { return f.up(); }, 2s));
    std::string big = msg(0) + std::string(900, 'x');
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20000; ++i) {   // about 19 MB
        f.push(big);
        if (i % 100 == 0) run_until(**loop, [&] { return false; }, 1ms);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
    EXPECT_LE(f.queue().bytes(), o.queue_bytes + big.size() + 8);
    EXPECT_GT(f.queue().dropped(), 0u);
}

// UDP with no route to the log host: the lines wait in the queue instead of being thrown
// away, and the outage is noticed. In a network namespace of its own (a child process: root
// only), which has no route at all.
TEST(LogForwarder, UdpWithoutARouteKeepsTheLines) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) != 0) _exit(77);
        auto loop = EventLoop::create();
        if (!loop) _exit(2);
        LogRemote r;
        r.proto = Proto::udp;
        r.address = IpCidr::v4(*Ipv4Addr::parse("192.0.2.1"));
        LogForwarder::Options o;
        o.min_backoff = 10ms;
        LogForwarder f(**loop, r, o);
        f.start();
        f.push(msg(1));
        f.push(msg(2));
        run_until(**loop, [&] { return false; }, 50ms);   // a few retries
        _exit(f.sent() == 0 && f.queue().size() == 2 && !f.up() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "needs root: a network namespace";
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace netd
