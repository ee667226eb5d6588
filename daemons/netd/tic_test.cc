// SixXS TIC: the reply parsing and validation (every value from the server is hostile), the
// MD5 response, the clock-skew check, the [tunnel] keys, the login record and cache (TicClient)
// and the daemon running the heartbeat tunnel on what TIC gave. Suites are named tic_* so that
// `ctest -R tic` runs them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "daemon.h"
#include "test_fakes.h"
#include "tic.h"

namespace netd {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> good_lines(const std::string& id = "T1234") {
    return {"TunnelId: " + id,
            "Tunnel Name: home",
            "Type: 6in4-heartbeat",
            "IPv6 Endpoint: 2001:db8:1::2",
            "IPv6 POP: 2001:db8:1::1",
            "IPv6 PrefixLength: 64",
            "Tunnel MTU: 1472",
            "Heartbeat_Interval: 15",
            "IPv4 Endpoint: heartbeat",
            "IPv4 POP: 198.18.0.1",
            "UserState: enabled",
            "AdminState: enabled",
            "Password: hartslag"};
}

std::vector<std::string> with(std::vector<std::string> l, const std::string& key, const std::string& value) {
    for (auto& x : l)
        if (x.rfind(key + ": ", 0) == 0) x = key + ": " + value;
    return l;
}

TEST(tic_protocol, ReplyCodes) {
    EXPECT_EQ(tic_code("200 SixXS TIC Service ready"), 200);
    EXPECT_EQ(tic_code("201"), 201);
    EXPECT_EQ(tic_code("400 Login failed"), 400);
    EXPECT_FALSE(tic_code("20 x"));
    EXPECT_FALSE(tic_code("2000 x"));
    EXPECT_FALSE(tic_code("abc"));
    EXPECT_FALSE(tic_code(""));
}

TEST(tic_protocol, Unixtime) {
    EXPECT_EQ(tic_unixtime("200 1700000000"), 1700000000);
    EXPECT_EQ(tic_unixtime("200 1700000000\r"), 1700000000);
    EXPECT_FALSE(tic_unixtime("400 1700000000"));
    EXPECT_FALSE(tic_unixtime("200 17e8"));
    EXPECT_FALSE(tic_unixtime("200 "));
    EXPECT_FALSE(tic_unixtime("200 99999999999999999999")) << "bounded, no overflow";
}

TEST(tic_protocol, ClockSkewAt120Seconds) {
    EXPECT_FALSE(tic_clock_skew(1000, 1000));
    EXPECT_FALSE(tic_clock_skew(1120, 1000));
    EXPECT_FALSE(tic_clock_skew(880, 1000));
    EXPECT_EQ(tic_clock_skew(1121, 1000), 121);
    EXPECT_EQ(tic_clock_skew(700, 1000), -300);
    EXPECT_EQ(tic_skew_text(300), "TIC server clock is 300 s off (ahead of the router's; at most 120 s)");
    EXPECT_EQ(tic_skew_text(-300), "TIC server clock is 300 s off (behind the router's; at most 120 s)");
}

TEST(tic_protocol, Md5Response) {
    EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    // md5hex("abc123" + md5hex("secret")), as AICCU computes it.
    EXPECT_EQ(tic_md5_response("abc123", "secret"), "abc9ffde6aa795f6ec04c85e8655805c");
}

TEST(tic_protocol, ParsesTunnelShow) {
    auto p = parse_tunnel_show(good_lines(), "T1234");
    ASSERT_TRUE(p) << p.error().str();
    EXPECT_EQ(p->ipv4_pop.str(), "198.18.0.1");
    EXPECT_EQ(p->ipv6_endpoint.str(), "2001:db8:1::2");
    EXPECT_EQ(p->ipv6_pop.str(), "2001:db8:1::1");
    EXPECT_EQ(p->prefix_len, 64);
    EXPECT_EQ(p->password, "hartslag");
    EXPECT_EQ(p->interval, 15u);
    EXPECT_EQ(p->mtu, 1472u);
    EXPECT_EQ(p->lines.size(), 12u) << "the unknown 'Tunnel Name' is not kept";
    // The lines it keeps parse to the same parameters (the cache).
    auto again = parse_tunnel_show(p->lines, "T1234");
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *p);

    TunnelConfig file;
    file.tic_server = "tic.example.test";
    file.tunnel_id = "T1234";
    file.sender = true;
    auto t = tic_tunnel(file, *p);
    EXPECT_EQ(t.mode, TunnelMode::heartbeat);
    EXPECT_EQ(t.remote.str(), "198.18.0.1");
    EXPECT_EQ(t.local_ipv6.str(), "2001:db8:1::2");
    EXPECT_EQ(t.local_ipv6_len, 64);
    EXPECT_EQ(t.remote_ipv6->str(), "2001:db8:1::1");
    EXPECT_EQ(t.password, "hartslag");
    EXPECT_EQ(t.interval, 15u);
    EXPECT_EQ(t.mtu, 1472u);
    EXPECT_TRUE(t.sender);
    EXPECT_EQ(tic_pending_tunnel(t).mode, TunnelMode::none);
    EXPECT_EQ(tic_settings(tic_pending_tunnel(t)), tic_settings(file)) << "the settings are kept";
}

TEST(tic_protocol, RefusesHostileValues) {
    struct Case {
        const char* key;
        std::string value;
        const char* says;
    };
    std::vector<Case> cases = {
        {"IPv6 Endpoint", "2001:db8::zz", "IPv6 Endpoint"},
        {"IPv6 Endpoint", "fe80::1", "IPv6 Endpoint"},
        {"IPv6 Endpoint", "ff02::1", "IPv6 Endpoint"},
        {"IPv6 POP", "198.18.0.1", "IPv6 POP"},
        {"IPv6 PrefixLength", "0", "PrefixLength"},
        {"IPv6 PrefixLength", "129", "PrefixLength"},
        {"IPv6 PrefixLength", "-1", "PrefixLength"},
        {"IPv6 PrefixLength", "64 ", "PrefixLength"},
        {"IPv4 POP", "198.18.0", "IPv4 POP"},
        {"IPv4 POP", "127.0.0.1", "IPv4 POP"},
        {"IPv4 POP", "224.0.0.1", "IPv4 POP"},
        {"IPv4 Endpoint", "somewhere", "IPv4 Endpoint"},
        {"Tunnel MTU", "1279", "MTU"},
        {"Tunnel MTU", "1481", "MTU"},
        {"Tunnel MTU", "99999999999", "MTU"},
        {"Heartbeat_Interval", "9", "Heartbeat_Interval"},
        {"Heartbeat_Interval", "3601", "Heartbeat_Interval"},
        {"Password", "two words", "Password"},
        {"Password", std::string(129, 'x'), "Password"},
        {"TunnelId", "T9999", "not 'T1234'"},
        {"Type", "ayiya", "6in4"},
        {"UserState", "disabled", "not enabled"},
        {"AdminState", "", "not enabled"},
    };
    for (auto& c : cases) {
        auto p = parse_tunnel_show(with(good_lines(), c.key, c.value), "T1234");
        ASSERT_FALSE(p) << c.key << " = '" << c.value << "' accepted";
        EXPECT_NE(p.error().str().find(c.says), std::string::npos) << c.key << ": " << p.error().str();
    }
}

TEST(tic_protocol, RefusesMalformedLists) {
    auto l = good_lines();
    l.push_back("Password: other");
    EXPECT_FALSE(parse_tunnel_show(l, "T1234")) << "a key twice";
    l = good_lines();
    l.erase(l.begin() + 3);
    EXPECT_FALSE(parse_tunnel_show(l, "T1234")) << "a key missing";
    l = good_lines();
    l.push_back("no colon here");
    EXPECT_FALSE(parse_tunnel_show(l, "T1234"));
    l = good_lines();
    l.push_back("Tunnel Name: " + std::string(600, 'a'));
    EXPECT_FALSE(parse_tunnel_show(l, "T1234")) << "an overlong line, even of an unknown key";
    l = good_lines();
    l.push_back(std::string("Tunnel Name: a\x01") + "b");
    EXPECT_FALSE(parse_tunnel_show(l, "T1234")) << "a control byte";
    l = good_lines();
    for (int i = 0; i < 60; ++i) l.push_back("X" + std::to_string(i) + ": y");
    EXPECT_FALSE(parse_tunnel_show(l, "T1234")) << "too many lines";
    EXPECT_FALSE(parse_tunnel_show({}, "T1234"));
}

TEST(tic_protocol, ServerSyntax) {
    auto s = TicServer::parse("tic.sixxs.net");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->str(), "tic.sixxs.net:3874");
    s = TicServer::parse("198.18.0.1:4000");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->str(), "198.18.0.1:4000");
    for (const char* bad : {"", ":3874", "host:", "host:0", "host:65536", "host:12a", "1.2.3", "127.0.0.1",
                            "host name", "[2001:db8::1]:3874", "a..b", "-x.example"})
        EXPECT_FALSE(TicServer::parse(bad)) << bad;
    EXPECT_EQ((TicSettings{"tic.example.test", "u", "p", "T1"}.cache_key()),
              (TicSettings{"tic.example.test:3874", "u", "other", "T1"}.cache_key()))
        << "the same server, user and tunnel: the same cache";
}

// ---- [tunnel] keys ----

std::string tic_conf(const std::string& extra = "") {
    return std::string(testing::kBaseConfig) +
           "[tunnel]\nmode = \"heartbeat\"\ntic_server = \"tic.example.test\"\ntic_username = \"ALICE-SIXXS\"\n"
           "tic_password = \"pw\"\ntunnel_id = \"T1234\"\n" + extra;
}

std::string errors_of(const std::string& text) {
    auto r = parse_config_text(text, "r.conf");
    std::string all;
    for (auto& e : r.errors) all += e.str() + "\n";
    return all;
}

TEST(tic_config, TicInsteadOfTheParameters) {
    auto r = parse_config_text(tic_conf("sender = true\n"), "r.conf");
    ASSERT_TRUE(r.config) << errors_of(tic_conf());
    EXPECT_EQ(r.config->tunnel.tic_server, "tic.example.test");
    EXPECT_EQ(r.config->tunnel.tic_username, "ALICE-SIXXS");
    EXPECT_EQ(r.config->tunnel.tic_password, "pw");
    EXPECT_EQ(r.config->tunnel.tunnel_id, "T1234");
    EXPECT_TRUE(r.config->tunnel.sender);
    EXPECT_TRUE(tic_settings(r.config->tunnel));
    EXPECT_FALSE(tic_settings(testing::config_of(std::string(testing::kBaseConfig) + testing::kTunnelHe).tunnel));
}

TEST(tic_config, BothOrMissingPiecesAreErrors) {
    // Giving the parameters too: an error at the key, with its line and column.
    std::string text = tic_conf("remote = \"192.0.2.1\"\n");
    int line = 1;
    for (size_t i = 0; i < text.find("remote ="); ++i) line += text[i] == '\n';
    EXPECT_NE(errors_of(text).find("r.conf:" + std::to_string(line) + ":10: tunnel.remote: not with tic_server"),
              std::string::npos)
        << errors_of(text);
    for (const char* k : {"local_ipv6 = \"2001:db8::2\"", "remote_ipv6 = \"2001:db8::1\"", "password = \"x\"",
                          "interval = 60", "mtu = 1400"})
        EXPECT_NE(errors_of(tic_conf(std::string(k) + "\n")).find("not with tic_server"), std::string::npos) << k;
    // Missing pieces.
    std::string no_user = tic_conf();
    no_user.erase(no_user.find("tic_username"), no_user.find('\n', no_user.find("tic_username")) - no_user.find("tic_username") + 1);
    EXPECT_NE(errors_of(no_user).find("missing required key tunnel.tic_username"), std::string::npos) << errors_of(no_user);
    std::string no_id = tic_conf();
    no_id.erase(no_id.find("tunnel_id"), no_id.find('\n', no_id.find("tunnel_id")) - no_id.find("tunnel_id") + 1);
    EXPECT_NE(errors_of(no_id).find("missing required key tunnel.tunnel_id"), std::string::npos) << errors_of(no_id);
    // Without TIC, a heartbeat tunnel still needs its parameters, and tunnel_id is HE's.
    EXPECT_NE(errors_of(std::string(testing::kBaseConfig) + "[tunnel]\nmode = \"heartbeat\"\n").find("tunnel.remote"),
              std::string::npos);
    // Malformed values.
    auto bad = [](const std::string& from, const std::string& to) {
        std::string t = tic_conf();
        t.replace(t.find(from), from.size(), to);
        return errors_of(t);
    };
    EXPECT_NE(bad("tic.example.test", "tic.example.test:99999").find("tunnel.tic_server"), std::string::npos);
    EXPECT_NE(bad("tic.example.test", "1.2.3").find("tunnel.tic_server"), std::string::npos);
    EXPECT_NE(bad("tic.example.test", "127.0.0.1").find("tunnel.tic_server"), std::string::npos);
    EXPECT_EQ(bad("tic.example.test", "198.18.0.1:3874"), "");
    EXPECT_NE(bad("\"pw\"", "\"p w\"").find("tunnel.tic_password"), std::string::npos);
    EXPECT_NE(bad("ALICE-SIXXS", "a:b").find("tunnel.tic_username"), std::string::npos);
    // TIC keys belong to the heartbeat mode.
    std::string he = std::string(testing::kBaseConfig) + testing::kTunnelHe + "tic_server = \"tic.example.test\"\n";
    EXPECT_NE(errors_of(he).find("tunnel.tic_server: only for mode = \"heartbeat\""), std::string::npos) << errors_of(he);
}

TEST(tic_config, ServerSyntaxAgreesWithTheClient) {
    for (const char* s : {"tic.sixxs.net", "tic.sixxs.net:3874", "198.18.0.1", "198.18.0.1:1", "1.2.3", "x:0",
                          "127.0.0.1", "a.b:65536", "host:", "a_b.example", "tic"}) {
        std::string t = tic_conf();
        t.replace(t.find("tic.example.test"), 16, s);
        EXPECT_EQ(parse_config_text(t, "r.conf").config.has_value(), TicServer::parse(s).has_value()) << s;
    }
}

// ---- the login record and the cache ----

TEST(tic_record, CountsTheLastHour) {
    TicLoginRecord r = TicLoginRecord::parse("# comment\n1000\n2000\ngarbage\n3000\n3500\n4000\n");
    EXPECT_EQ(r.times.size(), 5u);
    EXPECT_EQ(r.in_last_hour(4000), 5u);
    EXPECT_EQ(r.allowed_at(4000), 1000 + 3600);
    EXPECT_EQ(r.in_last_hour(4601), 4u);
    EXPECT_EQ(r.allowed_at(4601), 4601);
    r.prune(4601);
    EXPECT_EQ(r.times.size(), 4u);
    EXPECT_EQ(TicLoginRecord::parse(r.str()).times, r.times);
    // The clock went back a long way: times far ahead are forgotten, near ones still count.
    TicLoginRecord f = TicLoginRecord::parse("100000\n5000\n");
    EXPECT_EQ(f.in_last_hour(4000), 1u);
}

TEST(tic_record, DurableWriteIsRootsAlone) {
    std::string dir = testing::temp_dir();
    ASSERT_TRUE(write_file_durable(dir + "/f", "one\n"));
    ASSERT_TRUE(write_file_durable(dir + "/f", "two\n"));
    std::ifstream in(dir + "/f");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(s, "two\n");
    struct stat st{};
    ASSERT_EQ(stat((dir + "/f").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_NE(access((dir + "/.f.tmp").c_str(), F_OK), 0);
    EXPECT_FALSE(write_file_durable(dir + "/no/such/dir/f", "x"));
}

// A runner that records TIC requests and answers as the test says.
class FakeTicRunner final : public UpdateRunner {
public:
    std::vector<TicSettings> requests;
    std::function<void(const std::string&)> pending;
    size_t cancelled = 0;
    Registration start(const HeRequest&, std::function<void(const std::string&)> done) override {
        done("ERROR internal not in this test\n");
        return {};
    }
    Registration start_tic(const TicSettings& s, std::function<void(const std::string&)> done) override {
        requests.push_back(s);
        auto alive = std::make_shared<bool>(true);
        pending = [done, alive](const std::string& out) {
            if (*alive) done(out);
        };
        return Registration([this, alive] {
            if (*alive) ++cancelled;
            *alive = false;
        });
    }
    void answer(const std::string& out) {
        auto p = std::exchange(pending, nullptr);
        ASSERT_TRUE(p) << "no TIC fetch in flight";
        p(out);
    }
};

std::string ok_answer(const std::vector<std::string>& lines = good_lines()) {
    std::string o = "OK\n";
    for (auto& l : lines) o += l + "\n";
    return o;
}

struct ClientFixture {
    testing::FakeScheduler sched;
    FakeTicRunner runner;
    std::string dir = testing::temp_dir();
    int64_t now = 1700000000;
    int changes = 0;
    std::unique_ptr<TicClient> c;
    TicSettings s{"tic.example.test", "ALICE-SIXXS", "pw", "T1234"};

    ClientFixture() { restart(); }
    void restart() {   // a new netd (a restart or a reboot): the files stay
        c.reset();
        c = std::make_unique<TicClient>(TicClient::Deps{sched, runner, dir, [this] { return now; }, [this] { ++changes; }});
    }
    void online() {
        c->wan_changed(true);
        c->clock_synced(true);
    }
};

TEST(tic_client, WaitsForTheWanAndTheClockThenFetchesAndCaches) {
    ClientFixture f;
    f.c->configure(f.s);
    EXPECT_EQ(f.c->status().state, TicState::waiting);
    EXPECT_EQ(f.c->status().detail, "waiting for a WAN address");
    f.c->wan_changed(true);
    EXPECT_EQ(f.c->status().detail, "waiting for ntpd to synchronise the clock");
    EXPECT_TRUE(f.runner.requests.empty());
    f.c->clock_synced(true);
    ASSERT_EQ(f.runner.requests.size(), 1u);
    EXPECT_EQ(f.runner.requests[0], f.s);
    EXPECT_EQ(f.c->status().state, TicState::fetching);
    EXPECT_FALSE(f.c->params());
    f.runner.answer(ok_answer());
    ASSERT_TRUE(f.c->params());
    EXPECT_EQ(f.c->params()->mtu, 1472u);
    EXPECT_EQ(f.c->status().state, TicState::fetched);
    EXPECT_EQ(f.changes, 0) << "told from the loop";
    f.sched.advance(1ms);
    EXPECT_EQ(f.changes, 1);
    auto st = f.c->status();
    EXPECT_EQ(st.logins_last_hour, 1u);
    EXPECT_EQ(st.server, "tic.example.test:3874");
    EXPECT_EQ(st.parameters, "tic");
    struct stat fs{};
    ASSERT_EQ(stat(f.c->cache_path().c_str(), &fs), 0);
    EXPECT_EQ(fs.st_mode & 0777, 0600u);
    ASSERT_EQ(stat(f.c->record_path().c_str(), &fs), 0);
    EXPECT_EQ(fs.st_mode & 0777, 0600u);
    // The same settings again (a reload of an unchanged file): no contact.
    f.c->configure(f.s);
    EXPECT_EQ(f.runner.requests.size(), 1u);
    EXPECT_EQ(f.c->retry_now().find("not contacted again") != std::string::npos, true);
    EXPECT_EQ(f.runner.requests.size(), 1u);
}

TEST(tic_client, AtMostFiveLoginsAnHourAcrossRestarts) {
    ClientFixture f;
    TicSettings other = f.s;
    other.server = "198.18.0.1";
    // A netd start, then reloads alternating the server, then netd restarts: one login each.
    for (int i = 0; i < 5; ++i) {
        if (i % 2) f.restart();
        f.online();
        f.c->configure(i % 2 ? f.s : other);
        ASSERT_EQ(f.runner.requests.size(), static_cast<size_t>(i + 1)) << "login " << i + 1;
        f.runner.answer(ok_answer());
        f.now += 60;
    }
    // The sixth within the hour: refused by netd itself, after a restart too; the cache (for
    // the same server, user and tunnel) is used.
    f.restart();
    f.online();
    f.c->configure(f.s);   // the cache is other's (the last fetch): none for this one
    EXPECT_EQ(f.runner.requests.size(), 5u);
    auto st = f.c->status();
    EXPECT_EQ(st.state, TicState::rate_limited);
    EXPECT_EQ(st.logins_last_hour, 5u);
    EXPECT_EQ(st.retry_at, 1700000000 + 3600);
    EXPECT_NE(tic_status_text(st).find("tic-rate-limited until 2023-11-14 23:13:20Z"), std::string::npos)
        << tic_status_text(st);
    EXPECT_FALSE(f.c->params());
    f.c->retry_now();
    EXPECT_EQ(f.runner.requests.size(), 5u) << "netctl tunnel-update is limited too";
    f.c->configure(other);
    EXPECT_EQ(f.c->status().state, TicState::from_cache);
    ASSERT_TRUE(f.c->params());
    EXPECT_NE(f.c->status().detail.find("5 TIC logins in the last hour"), std::string::npos) << f.c->status().detail;
    // Without a cache the contact owed waits for its turn, then goes.
    f.c->configure(f.s);
    EXPECT_EQ(f.c->status().state, TicState::rate_limited);
    f.now = 1700000000 + 3601;
    f.sched.advance(std::chrono::seconds(3600));
    EXPECT_EQ(f.runner.requests.size(), 6u);
}

TEST(tic_client, ClockSkewRefusedAndCacheUsed) {
    ClientFixture f;
    f.online();
    f.c->configure(f.s);
    f.runner.answer("ERROR clock " + tic_skew_text(300) + ": not logged in\n");
    auto st = f.c->status();
    EXPECT_EQ(st.state, TicState::refused);
    EXPECT_NE(tic_status_text(st).find("tic-refused (clock skew: TIC server clock is 300 s off"), std::string::npos)
        << tic_status_text(st);
    EXPECT_FALSE(f.c->params());
    EXPECT_EQ(st.parameters, "none");
    // netctl tunnel-update tries again (the server's clock was fixed).
    f.c->retry_now();
    ASSERT_EQ(f.runner.requests.size(), 2u);
    f.runner.answer(ok_answer());
    EXPECT_TRUE(f.c->params());
    // A netd restart: the cache meanwhile, then a failure keeps it.
    f.restart();
    f.online();
    f.c->configure(f.s);
    ASSERT_TRUE(f.c->params()) << "the cache at once";
    EXPECT_EQ(f.c->status().parameters, "cache");
    f.runner.answer("ERROR connect tic.example.test:3874: Connection refused\n");
    EXPECT_EQ(f.c->status().state, TicState::from_cache);
    EXPECT_TRUE(f.c->params());
    // Another user: the cache is not theirs.
    f.restart();
    TicSettings bob = f.s;
    bob.username = "BOB";
    f.c->configure(bob);
    EXPECT_FALSE(f.c->params());
}

TEST(tic_client, HostileAnswersAreRefused) {
    ClientFixture f;
    f.online();
    f.c->configure(f.s);
    f.runner.answer(ok_answer(with(good_lines(), "Tunnel MTU", "9000")));
    EXPECT_EQ(f.c->status().state, TicState::refused);
    EXPECT_NE(f.c->status().detail.find("Tunnel MTU"), std::string::npos) << f.c->status().detail;
    EXPECT_FALSE(f.c->params());
    std::ifstream cache(f.c->cache_path());
    EXPECT_FALSE(cache) << "nothing cached";
    // A damaged cache is not used.
    std::ofstream(f.c->cache_path()) << "{\"key\": \"" << f.s.cache_key() << "\", \"lines\": [\"TunnelId: T1234\"]}";
    f.restart();
    f.c->configure(f.s);
    EXPECT_FALSE(f.c->params());
}

TEST(tic_client, ChangedSettingsCancelTheFetchInFlight) {
    ClientFixture f;
    f.online();
    f.c->configure(f.s);
    TicSettings other = f.s;
    other.tunnel_id = "T999";
    f.c->configure(other);
    EXPECT_EQ(f.runner.cancelled, 1u);
    EXPECT_EQ(f.runner.requests.size(), 2u);
    f.c->configure(std::nullopt);
    EXPECT_EQ(f.runner.cancelled, 2u);
    EXPECT_FALSE(f.c->active());
}

// ---- the daemon on what TIC gave ----

struct DaemonFixture {
    RecordingKernel kernel;
    testing::FakeServices services;
    testing::FakeScheduler sched;
    FakeTicRunner runner;
    testing::FakeDatagrams datagrams;
    std::string dir = testing::temp_dir();
    std::unique_ptr<Daemon> d;

    DaemonFixture() { testing::boot_kernel(kernel); }
    void start(const std::string& text) {
        std::ofstream(dir + "/router.conf") << text;
        DaemonOptions o;
        o.config_path = dir + "/router.conf";
        o.paths.run_dir = dir + "/run";
        o.state_dir = dir;
        d = std::make_unique<Daemon>(kernel, services, sched, runner, datagrams, o);
        d->start();
    }
    ControlReply ctl(const std::vector<std::string>& a) { return d->control(a); }
    nlohmann::json tunnel() { return nlohmann::json::parse(ctl({"status", "--json"}).text)["tunnel"]; }
};

const std::vector<std::string> kBound = {"dhcp-event", "bound", "interface=eth0", "ip=198.51.100.10",
                                         "subnet=255.255.255.0", "router=198.51.100.1", "lease=3600"};

TEST(tic_daemon, TheTunnelComesFromTic) {
    DaemonFixture f;
    f.start(tic_conf());
    EXPECT_FALSE(f.kernel.find(kTunnelIf)) << "no tunnel before TIC answered";
    EXPECT_EQ(f.tunnel()["state"], "waiting-for-tic");
    EXPECT_EQ(f.tunnel()["tic"]["state"], "waiting-for-tic");
    ASSERT_TRUE(f.ctl(kBound).ok);
    ASSERT_TRUE(f.ctl({"ntp-event", "stratum", "stratum=2"}).ok);
    ASSERT_EQ(f.runner.requests.size(), 1u);
    EXPECT_EQ(f.tunnel()["tic"]["state"], "fetching");
    EXPECT_NE(f.ctl({"status"}).text.find("waiting-for-tic"), std::string::npos);
    f.runner.answer(ok_answer());
    f.sched.advance(1ms);
    auto* sit = f.kernel.find(kTunnelIf);
    ASSERT_TRUE(sit) << f.ctl({"status"}).text;
    EXPECT_EQ(sit->sit->remote.str(), "198.18.0.1");
    EXPECT_EQ(sit->sit->local.str(), "198.51.100.10");
    EXPECT_EQ(sit->sit->mtu, 1472u);
    bool addr = false;
    for (auto& a : f.kernel.addrs) addr = addr || (a.link == kTunnelIf && a.addr.str() == "2001:db8:1::2/64");
    EXPECT_TRUE(addr);
    ASSERT_FALSE(f.datagrams.sent.empty()) << "a heartbeat at once";
    EXPECT_EQ(f.datagrams.sent.back().rfind("HEARTBEAT TUNNEL 2001:db8:1::2 198.51.100.10 ", 0), 0u) << f.datagrams.sent.back();
    EXPECT_EQ(f.datagrams.sent.back(),
              heartbeat_packet("2001:db8:1::2", "198.51.100.10", std::stoll(f.datagrams.sent.back().substr(45, 20)),
                               "hartslag"));
    auto t = f.tunnel();
    EXPECT_EQ(t["state"], "up");
    EXPECT_EQ(t["mtu"], 1472);
    EXPECT_EQ(t["tic"]["state"], "fetched");
    EXPECT_EQ(t["tic"]["logins_last_hour"], 1);
    std::string text = f.ctl({"status"}).text;
    EXPECT_NE(text.find("tic:      fetched"), std::string::npos) << text;
    EXPECT_NE(text.find("1 login in the last hour"), std::string::npos) << text;

    // An unchanged reload: no login; a changed tic setting: one.
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    EXPECT_EQ(f.runner.requests.size(), 1u);
    std::string changed = tic_conf();
    changed.replace(changed.find("tic.example.test"), 16, "198.18.0.1");
    std::ofstream(f.dir + "/router.conf") << changed;
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    EXPECT_EQ(f.runner.requests.size(), 2u);
    EXPECT_FALSE(f.kernel.find(kTunnelIf)) << "no cache for this server yet: no tunnel meanwhile";
    f.runner.answer("ERROR clock " + tic_skew_text(-500) + ": not logged in\n");
    t = f.tunnel();
    EXPECT_EQ(t["state"], "waiting-for-tic");
    EXPECT_EQ(t["tic"]["state"], "tic-refused");
    EXPECT_NE(t["tic"]["detail"].get<std::string>().find("TIC server clock is 500 s off"), std::string::npos) << t;

    // A netd restart with the first settings: the cache makes the tunnel at once, and the
    // start logs in once.
    std::ofstream(f.dir + "/router.conf") << tic_conf();
    f.start(tic_conf());
    EXPECT_TRUE(f.kernel.find(kTunnelIf)) << "the cached parameters";
    EXPECT_EQ(f.tunnel()["tic"]["parameters"], "cache");
}

}  // namespace
}  // namespace netd
