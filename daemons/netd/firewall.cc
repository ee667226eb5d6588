// The policy (see firewall.h and CONFIG.md "Firewall"): RFC 4890 for
// ICMPv6, OpenWrt firewall4's defaults for the rest.
#include "firewall.h"

#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

namespace netd {
namespace nft {
namespace {

// nft's datatype ids (nftables include/datatype.h), so listings print names.
constexpr uint32_t kTypeIpAddr = 7, kTypeIp6Addr = 8, kTypeInetProto = 12, kTypeIcmpType = 14, kTypeIcmp6Type = 29;

// conntrack state bits as nft's ct state uses them
constexpr uint32_t kCtInvalid = 1, kCtEstablished = 2, kCtRelated = 4, kCtNew = 8;
constexpr uint32_t kIpsDstNat = 1u << 5;  // IPS_DST_NAT

std::vector<uint8_t> u8(uint8_t v) { return {v}; }
std::vector<uint8_t> be16(uint16_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
std::vector<uint8_t> host32(uint32_t v) {
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &v, 4);
    return b;
}
std::vector<uint8_t> be32(uint32_t v) {
    return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
            static_cast<uint8_t>(v)};
}
std::vector<uint8_t> ifname_bytes(const std::string& n) {
    std::vector<uint8_t> b(IFNAMSIZ, 0);
    std::memcpy(b.data(), n.data(), std::min(n.size(), size_t{IFNAMSIZ - 1}));
    return b;
}

Expr mk(Expr::Kind kind, uint32_t key = 0) {
    Expr e;
    e.kind = kind;
    e.key = key;
    return e;
}

struct IcmpName {
    uint8_t type;
    const char* name;
};

// A packet rate for the limit statements.
struct Rate {
    uint64_t packets;
    bool per_minute;  // else per second
    uint32_t burst;

    std::string text() const {
        return std::to_string(packets) + (per_minute ? "/minute" : "/second") + " burst " + std::to_string(burst) +
               " packets";
    }
    Expr expr(bool over) const {
        Expr e = mk(Expr::Kind::limit);
        e.rate = packets;
        e.unit = per_minute ? 60 : 1;
        e.burst = burst;
        e.invert = over;
        return e;
    }
};

// Builds one rule's text and expressions together, adding the protocol dependencies exactly as
// nft does for the same text (meta nfproto in inet tables, meta l4proto before transport
// header fields), once per rule.
class RuleBuilder {
public:
    RuleBuilder(Family fam, uint32_t& next_set_id) : fam_(fam), next_set_id_(next_set_id) {}

    RuleBuilder& iifname(const std::string& n) { return meta_name(NFT_META_IIFNAME, "iifname", n); }
    RuleBuilder& oifname(const std::string& n) { return meta_name(NFT_META_OIFNAME, "oifname", n); }

    RuleBuilder& ct_state(uint32_t mask, const std::string& text) {
        word("ct state " + text);
        ct_bits(NFT_CT_STATE, mask);
        return *this;
    }
    RuleBuilder& ct_status_dnat() {
        word("ct status dnat");
        ct_bits(NFT_CT_STATUS, kIpsDstNat);
        return *this;
    }

    RuleBuilder& icmp6_types(const std::vector<IcmpName>& types) {
        nfproto(NFPROTO_IPV6);
        l4proto(IPPROTO_ICMPV6);
        return icmp_lookup("icmpv6 type", kTypeIcmp6Type, types);
    }
    RuleBuilder& icmp_types(const std::vector<IcmpName>& types) {
        nfproto(NFPROTO_IPV4);
        l4proto(IPPROTO_ICMP);
        return icmp_lookup("icmp type", kTypeIcmpType, types);
    }
    RuleBuilder& ip6_hoplimit(uint8_t v) {
        word("ip6 hoplimit " + std::to_string(v));
        nfproto(NFPROTO_IPV6);
        payload_cmp(NFT_PAYLOAD_NETWORK_HEADER, 7, u8(v));
        return *this;
    }
    // ip6 saddr/daddr PREFIX (or a single address for len 128)
    RuleBuilder& ip6_addr(bool source, const Ipv6Addr& a, unsigned len) {
        std::string t = std::string("ip6 ") + (source ? "saddr " : "daddr ") + a.str();
        if (len < 128) t += "/" + std::to_string(len);
        word(t);
        nfproto(NFPROTO_IPV6);
        std::vector<uint8_t> d(a.bytes.begin(), a.bytes.end());
        payload_load(NFT_PAYLOAD_NETWORK_HEADER, source ? 8 : 24, 16);
        if (len < 128) {
            std::vector<uint8_t> mask(16, 0);
            for (unsigned bit = 0; bit < len; ++bit) mask[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
            bitwise(mask);
        }
        cmp(NFT_CMP_EQ, d);
        return *this;
    }
    RuleBuilder& ip_saddr(const Ipv4Addr& a) {
        word("ip saddr " + a.str());
        if (fam_ == Family::inet) nfproto(NFPROTO_IPV4);
        payload_cmp(NFT_PAYLOAD_NETWORK_HEADER, 12, be32(a.host_order));
        return *this;
    }
    RuleBuilder& ip_protocol(uint8_t p) {
        word("ip protocol " + std::to_string(p));
        if (fam_ == Family::inet) nfproto(NFPROTO_IPV4);
        payload_cmp(NFT_PAYLOAD_NETWORK_HEADER, 9, u8(p));
        return *this;
    }
    RuleBuilder& in_set(bool ipv6, bool source, const std::string& set, uint32_t set_id, bool invert = false) {
        word(std::string(ipv6 ? "ip6 " : "ip ") + (source ? "saddr" : "daddr") + (invert ? " != @" : " @") + set);
        if (fam_ == Family::inet) nfproto(ipv6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
        if (ipv6)
            payload_load(NFT_PAYLOAD_NETWORK_HEADER, source ? 8 : 24, 16);
        else
            payload_load(NFT_PAYLOAD_NETWORK_HEADER, source ? 12 : 16, 4);
        Expr e = mk(Expr::Kind::lookup);
        e.set = set;
        e.set_id = set_id;
        e.invert = invert;
        exprs_.push_back(e);
        return *this;
    }
    RuleBuilder& dport(Proto p, uint16_t port) {
        word(std::string(to_string(p)) + " dport " + std::to_string(port));
        l4proto(p == Proto::tcp ? IPPROTO_TCP : IPPROTO_UDP);
        payload_cmp(NFT_PAYLOAD_TRANSPORT_HEADER, 2, be16(port));
        return *this;
    }
    // "udp sport A udp dport B": nft merges the two adjacent fields into one 4-byte load.
    RuleBuilder& udp_ports(uint16_t sport, uint16_t dport) {
        word("udp sport " + std::to_string(sport) + " udp dport " + std::to_string(dport));
        l4proto(IPPROTO_UDP);
        auto d = be16(sport);
        auto d2 = be16(dport);
        d.insert(d.end(), d2.begin(), d2.end());
        payload_cmp(NFT_PAYLOAD_TRANSPORT_HEADER, 0, d);
        return *this;
    }
    // "limit rate [over] N/second|minute burst B packets": one token bucket for every packet
    // that reaches the rule.
    RuleBuilder& limit(const Rate& r, bool over = false) {
        word("limit rate " + std::string(over ? "over " : "") + r.text());
        exprs_.push_back(r.expr(over));
        return *this;
    }
    // "update @set { KEY limit rate over ... }": one token bucket per source, KEY being the
    // IPv4 source address or the /64 of the IPv6 source. Matches when that source is over its
    // rate (or the set is full).
    RuleBuilder& source_over(bool ipv6, const std::string& set, uint32_t set_id, const Rate& r) {
        if (fam_ == Family::inet) nfproto(ipv6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
        if (ipv6) {
            payload_load(NFT_PAYLOAD_NETWORK_HEADER, 8, 16);
            bitwise(std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0});
        } else {
            payload_load(NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
        }
        word("update @" + set + " { " + (ipv6 ? "ip6 saddr & ffff:ffff:ffff:ffff::" : "ip saddr") +
             " limit rate over " + r.text() + " }");
        Expr e = r.expr(true);
        e.kind = Expr::Kind::dynset;
        e.set = set;
        e.set_id = set_id;
        exprs_.push_back(e);
        return *this;
    }
    RuleBuilder& tcp_syn() {
        word("tcp flags & (fin | syn | rst | ack) == syn");
        l4proto(IPPROTO_TCP);
        payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1);
        bitwise(u8(0x17));
        cmp(NFT_CMP_EQ, u8(0x02));
        return *this;
    }
    // RFC 5095: a type 0 routing header (source routing) is never processed or forwarded.
    RuleBuilder& rt_type0() {
        word("rt type 0");
        nfproto(NFPROTO_IPV6);
        Expr e = mk(Expr::Kind::exthdr6, IPPROTO_ROUTING);
        e.offset = 2;
        e.len = 1;
        exprs_.push_back(e);
        cmp(NFT_CMP_EQ, u8(0));
        return *this;
    }
    // Reverse path: no route back to the source through the interface it came in on.
    RuleBuilder& rpf_missing() {
        word("fib saddr . iif oif missing");
        exprs_.push_back(mk(Expr::Kind::fib_rpf));
        cmp(NFT_CMP_EQ, host32(0));
        return *this;
    }
    // "meta l4proto { tcp, udp } flow add @FT": the connection goes to the flowtable once it is
    // established (the kernel offloads no other), and its further packets skip the chains.
    RuleBuilder& flow_add(const std::string& ft) {
        word("meta l4proto { tcp, udp } flow add @" + ft);
        exprs_.push_back(mk(Expr::Kind::meta, NFT_META_L4PROTO));
        AnonSet s;
        s.id = next_set_id_++;
        s.key_type = kTypeInetProto;
        s.key_len = 1;
        s.elements = {u8(IPPROTO_TCP), u8(IPPROTO_UDP)};
        Expr e = mk(Expr::Kind::lookup);
        e.set = "__set%d";
        e.set_id = s.id;
        exprs_.push_back(e);
        anon_.push_back(std::move(s));
        Expr f = mk(Expr::Kind::flow_add);
        f.set = ft;
        exprs_.push_back(f);
        return *this;
    }
    RuleBuilder& counter() {
        word("counter");
        exprs_.push_back(mk(Expr::Kind::counter));
        return *this;
    }
    // tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu
    RuleBuilder& clamp_mss() {
        word("tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu");
        l4proto(IPPROTO_TCP);
        payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1);
        bitwise(u8(0x06));
        cmp(NFT_CMP_EQ, u8(0x02));
        exprs_.push_back(mk(Expr::Kind::rt_tcpmss));
        exprs_.push_back(mk(Expr::Kind::hton16));
        exprs_.push_back(mk(Expr::Kind::mss_write));
        return *this;
    }
    RuleBuilder& dnat(const Ipv4Addr& to, uint16_t port) {
        word("dnat to " + to.str() + ":" + std::to_string(port));
        Expr a = mk(Expr::Kind::immediate);
        a.reg = 1;
        a.data = be32(to.host_order);
        Expr p = mk(Expr::Kind::immediate);
        p.reg = 2;
        p.data = be16(port);
        exprs_.push_back(a);
        exprs_.push_back(p);
        exprs_.push_back(mk(Expr::Kind::dnat4));
        return *this;
    }
    RuleBuilder& masquerade() {
        word("masquerade");
        exprs_.push_back(mk(Expr::Kind::masq));
        return *this;
    }
    Rule accept() { return verdict(NF_ACCEPT, "accept"); }
    Rule drop() { return verdict(NF_DROP, "drop"); }
    Rule statement_only() { return finish(); }

private:
    RuleBuilder& meta_name(uint32_t key, const char* kw, const std::string& n) {
        word(std::string(kw) + " \"" + n + "\"");
        Expr e = mk(Expr::Kind::meta, key);
        exprs_.push_back(e);
        cmp(NFT_CMP_EQ, ifname_bytes(n));
        return *this;
    }
    void ct_bits(uint32_t key, uint32_t mask) {
        exprs_.push_back(mk(Expr::Kind::ct, key));
        bitwise(host32(mask));
        cmp(NFT_CMP_NEQ, host32(0));
    }
    void nfproto(uint8_t p) {
        if (fam_ != Family::inet || nfproto_) return;
        nfproto_ = true;
        exprs_.push_back(mk(Expr::Kind::meta, NFT_META_NFPROTO));
        cmp(NFT_CMP_EQ, u8(p));
    }
    void l4proto(uint8_t p) {
        if (l4proto_) return;
        l4proto_ = true;
        exprs_.push_back(mk(Expr::Kind::meta, NFT_META_L4PROTO));
        cmp(NFT_CMP_EQ, u8(p));
    }
    RuleBuilder& icmp_lookup(const char* kw, uint32_t key_type, const std::vector<IcmpName>& types) {
        std::string t = std::string(kw) + " ";
        payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
        if (types.size() == 1) {
            word(t + types[0].name);
            cmp(NFT_CMP_EQ, u8(types[0].type));
            return *this;
        }
        AnonSet s;
        s.id = next_set_id_++;
        s.key_type = key_type;
        s.key_len = 1;
        t += "{ ";
        for (size_t i = 0; i < types.size(); ++i) {
            t += (i ? ", " : "") + std::string(types[i].name);
            s.elements.push_back(u8(types[i].type));
        }
        word(t + " }");
        Expr e = mk(Expr::Kind::lookup);
        e.set = "__set%d";
        e.set_id = s.id;
        exprs_.push_back(e);
        anon_.push_back(std::move(s));
        return *this;
    }
    void payload_load(uint32_t base, uint32_t offset, uint32_t len) {
        Expr e = mk(Expr::Kind::payload, base);
        e.offset = offset;
        e.len = len;
        exprs_.push_back(e);
    }
    void payload_cmp(uint32_t base, uint32_t offset, std::vector<uint8_t> value) {
        payload_load(base, offset, static_cast<uint32_t>(value.size()));
        cmp(NFT_CMP_EQ, std::move(value));
    }
    void bitwise(std::vector<uint8_t> mask) {
        Expr e = mk(Expr::Kind::bitwise);
        e.len = static_cast<uint32_t>(mask.size());
        e.mask = std::move(mask);
        exprs_.push_back(e);
    }
    void cmp(uint32_t op, std::vector<uint8_t> data) {
        Expr e = mk(Expr::Kind::cmp, op);
        e.data = std::move(data);
        exprs_.push_back(e);
    }
    void word(const std::string& w) { text_ += (text_.empty() ? "" : " ") + w; }
    Rule verdict(uint32_t v, const char* name) {
        word(name);
        exprs_.push_back(mk(Expr::Kind::verdict, v));
        return finish();
    }
    Rule finish() { return Rule{text_, std::move(exprs_), std::move(anon_)}; }

    Family fam_;
    uint32_t& next_set_id_;
    bool nfproto_ = false, l4proto_ = false;
    std::string text_;
    std::vector<Expr> exprs_;
    std::vector<AnonSet> anon_;
};

// RFC 4890 4.4 (to the router) and 4.3 (forwarded): error messages and echo replies (echo
// requests have their own per-source limit).
const std::vector<IcmpName> kIcmp6Errors = {{1, "destination-unreachable"}, {2, "packet-too-big"},
                                            {3, "time-exceeded"},           {4, "parameter-problem"},
                                            {129, "echo-reply"}};
// Neighbour discovery, accepted with hop limit 255 only (it then cannot come from off-link).
const std::vector<IcmpName> kIcmp6Nd = {{133, "nd-router-solicit"},
                                        {134, "nd-router-advert"},
                                        {135, "nd-neighbor-solicit"},
                                        {136, "nd-neighbor-advert"}};
// MLD, from link-local sources only.
const std::vector<IcmpName> kIcmp6Mld = {{130, "mld-listener-query"},
                                         {131, "mld-listener-report"},
                                         {132, "mld-listener-done"},
                                         {143, "mld2-listener-report"}};

std::string addr_text(const std::vector<uint8_t>& a) {
    if (a.size() == 4) return Ipv4Addr{(uint32_t{a[0]} << 24) | (a[1] << 16) | (a[2] << 8) | a[3]}.str();
    Ipv6Addr x;
    std::copy(a.begin(), a.end(), x.bytes.begin());
    return x.str();
}

// a - 1 (a != 0) and a + 1 with carry; false on overflow.
bool increment(std::vector<uint8_t>& a) {
    for (size_t i = a.size(); i-- > 0;)
        if (++a[i] != 0) return true;
    return false;
}
std::vector<uint8_t> decrement(std::vector<uint8_t> a) {
    for (size_t i = a.size(); i-- > 0;)
        if (a[i]-- != 0) break;
    return a;
}

// The nft text of an interval: a prefix when it is one, else first-last.
std::string interval_text(const Interval& iv) {
    size_t bits = iv.start.size() * 8;
    auto last = iv.end ? decrement(*iv.end) : std::vector<uint8_t>(iv.start.size(), 0xff);
    // A prefix: start and last share the first len bits, then start has only zeros and last
    // only ones.
    auto bit = [](const std::vector<uint8_t>& a, size_t i) { return (a[i / 8] >> (7 - i % 8)) & 1; };
    size_t len = 0;
    while (len < bits && bit(iv.start, len) == bit(last, len)) ++len;
    bool prefix = true;
    for (size_t i = len; i < bits && prefix; ++i) prefix = !bit(iv.start, i) && bit(last, i);
    if (prefix) return len == bits ? addr_text(iv.start) : addr_text(iv.start) + "/" + std::to_string(len);
    return addr_text(iv.start) + "-" + addr_text(last);
}

Set make_set(const std::string& name, uint32_t id, bool ipv6,
             const std::vector<std::pair<std::vector<uint8_t>, unsigned>>& prefixes) {
    Set s{name, id, ipv6, merge_prefixes(prefixes), {}};
    for (auto& iv : s.intervals) s.elements.push_back(interval_text(iv));
    return s;
}

}  // namespace

std::vector<Interval> merge_prefixes(const std::vector<std::pair<std::vector<uint8_t>, unsigned>>& prefixes) {
    std::vector<Interval> ivs;
    for (auto& [addr, len] : prefixes) {
        Interval iv;
        iv.start = addr;
        size_t bits = addr.size() * 8;
        for (size_t bit = len; bit < bits; ++bit) iv.start[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
        auto last = iv.start;
        for (size_t bit = len; bit < bits; ++bit) last[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
        if (increment(last)) iv.end = last;
        ivs.push_back(std::move(iv));
    }
    std::sort(ivs.begin(), ivs.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
    std::vector<Interval> out;
    for (auto& iv : ivs) {
        // Overlapping or adjacent: extend the previous interval (an interval set cannot hold both).
        if (!out.empty() && (!out.back().end || iv.start <= *out.back().end)) {
            auto& prev = out.back();
            if (prev.end && (!iv.end || *iv.end > *prev.end)) prev.end = iv.end;
            continue;
        }
        out.push_back(std::move(iv));
    }
    return out;
}

}  // namespace nft

FirewallInputs firewall_inputs(const Config& c, const std::map<std::string, std::string>& lan_ifs,
                               const std::string& wan_if) {
    FirewallInputs in;
    for (auto& l : c.lans) {
        FirewallSegment seg;
        seg.name = l.name;
        auto it = lan_ifs.find(l.name);
        seg.ifname = it != lan_ifs.end() ? it->second : l.interface.device;
        seg.lan4 = l.ipv4;
        seg.lan6 = l.ipv6_prefixes;
        seg.guest = l.trust == Trust::guest;
        seg.ssh = l.ssh;
        for (auto& r : c.routes) {
            if (r.lan != l.name) continue;
            if (r.to.family == 4)
                seg.routed4.push_back(*Ipv4Cidr::parse(r.to.str()));
            else
                seg.routed6.push_back(*Ipv6Prefix::parse(r.to.str()));
        }
        in.lans.push_back(std::move(seg));
    }
    in.wan_if = wan_if;
    in.ssh_enabled = c.ssh.enabled;
    in.ssh_port = c.ssh.port;
    in.ssh_wan = c.ssh.enabled && c.ssh.allow_wan;
    in.ntp_server = c.ntp.serve_lan;
    in.fw = c.firewall;
    if (c.tunnel.mode != TunnelMode::none) {
        in.tunnel_if = kTunnelIf;
        in.tunnel_peer = c.tunnel.remote;
    }
    return in;
}

// The limits (CONFIG.md "Firewall" gives the reasons and firewall4's equivalents).
namespace limits {
const nft::Rate kSyn{25, false, 50};        // new TCP connections from one outside source
const nft::Rate kSsh{10, true, 5};          // SSH connections from one outside source
const nft::Rate kEcho{10, false, 20};       // echo requests from one outside source
const nft::Rate kIcmp6{1000, false, 5};     // other ICMPv6 from outside (firewall4's limit)
constexpr uint64_t kSourceTimeoutMs = 60'000;  // a source's bucket is forgotten after 1 min
constexpr uint32_t kSources = 65536;           // at most this many sources tracked per set
}  // namespace limits

nft::Ruleset build_ruleset(const FirewallInputs& in) {
    using namespace nft;
    uint32_t set_id = 1;
    auto rb = [&](Family f = Family::inet) { return RuleBuilder(f, set_id); };

    Table filter{Family::inet, kFilterTable, {}, {}, {}};
    using Prefixes = std::vector<std::pair<std::vector<uint8_t>, unsigned>>;
    auto interval_set = [&](const std::string& name, bool ipv6, const Prefixes& p) {
        filter.sets.push_back(make_set(name, set_id++, ipv6, p));
        return filter.sets.back().id;
    };
    auto source_set = [&](const std::string& name, bool ipv6) {
        Set s{name, set_id++, ipv6, {}, {}, true, limits::kSourceTimeoutMs, limits::kSources};
        filter.sets.push_back(s);
        return s.id;
    };
    auto v4 = [](const Ipv4Addr& a, unsigned len) { return std::make_pair(be32(a.host_order), len); };
    auto v6 = [](const Ipv6Addr& a, unsigned len) {
        return std::make_pair(std::vector<uint8_t>(a.bytes.begin(), a.bytes.end()), len);
    };

    Prefixes block4, block6, lan4, lan6;
    for (auto& p : in.fw.blocklist4) block4.push_back(v4(p.addr, p.len));
    for (auto& p : in.fw.blocklist6) block6.push_back(v6(p.addr, p.len));
    // Each segment's own sources (its subnets and the networks routed via it); lan4/lan6 are
    // all of them together (never a source from outside).
    struct SegSets {
        Prefixes p4, p6;
        std::string n4, n6, nl4, nl6;       // set names: own sources; with link-local ones
        uint32_t id4 = 0, id6 = 0, idl4 = 0, idl6 = 0;
    };
    std::vector<SegSets> seg(in.lans.size());
    for (size_t i = 0; i < in.lans.size(); ++i) {
        auto& l = in.lans[i];
        seg[i].p4.push_back(v4(l.lan4.network(), l.lan4.len));
        for (auto& p : l.routed4) seg[i].p4.push_back(v4(p.network(), p.len));
        for (auto& p : l.lan6) seg[i].p6.push_back(v6(p.addr, p.len));
        for (auto& p : l.routed6) seg[i].p6.push_back(v6(p.addr, p.len));
        lan4.insert(lan4.end(), seg[i].p4.begin(), seg[i].p4.end());
        lan6.insert(lan6.end(), seg[i].p6.begin(), seg[i].p6.end());
    }

    const uint32_t block4_id = interval_set("blocklist4", false, block4);
    const uint32_t block6_id = interval_set("blocklist6", true, block6);
    const uint32_t lan4_id = interval_set("lan4", false, lan4);
    const uint32_t lan6_id = interval_set("lan6", true, lan6);
    // What the router itself accepts from a segment as a source: also 0.0.0.0 (DHCP
    // discover), link-local and :: (neighbour discovery, duplicate address detection). With a
    // single segment its sets are lan4/lan6 themselves.
    for (size_t i = 0; i < in.lans.size(); ++i) {
        auto& s = seg[i];
        const bool one = in.lans.size() == 1;
        const std::string suffix = one ? "" : "_" + in.lans[i].name;
        Prefixes local4 = s.p4, local6 = s.p6;
        local4.push_back(v4(Ipv4Addr{0}, 32));
        local6.push_back(v6(Ipv6Addr{}, 128));
        local6.push_back(v6(*Ipv6Addr::parse("fe80::"), 10));
        s.n4 = "lan4" + suffix;
        s.n6 = "lan6" + suffix;
        s.nl4 = "lan_local4" + suffix;
        s.nl6 = "lan_local6" + suffix;
        s.id4 = one ? lan4_id : interval_set(s.n4, false, s.p4);
        s.id6 = one ? lan6_id : interval_set(s.n6, true, s.p6);
        s.idl4 = interval_set(s.nl4, false, local4);
        s.idl6 = interval_set(s.nl6, true, local6);
    }
    // RFC 6092 REC-5/REC-6: unique local (fc00::/7) and the deprecated site-local (fec0::/10)
    // addresses do not cross the border.
    const uint32_t scoped6_id = interval_set(
        "scoped6", true, {v6(*Ipv6Addr::parse("fc00::"), 7), v6(*Ipv6Addr::parse("fec0::"), 10)});
    const uint32_t syn4_id = source_set("syn4", false), syn6_id = source_set("syn6", true);
    const uint32_t ssh4_id = source_set("ssh4", false), ssh6_id = source_set("ssh6", true);
    const uint32_t echo4_id = source_set("echo4", false), echo6_id = source_set("echo6", true);

    // The outside: the WAN link and, when there is one, the tunnel (IPv6 only).
    struct Outside {
        std::string name;
        bool ipv4;
    };
    std::vector<Outside> outside = {{in.wan_if, true}};
    if (!in.tunnel_if.empty()) outside.push_back({in.tunnel_if, false});

    // The rules both chains start with: blocklists, RH0, then source validation (RFC 7084
    // S-1..S-4, BCP 38) before conntrack, so a spoofed packet never matches an existing flow.
    auto common_head = [&](std::vector<Rule>& r, bool input) {
        r.push_back(rb().in_set(false, true, "blocklist4", block4_id).counter().drop());
        if (!input) r.push_back(rb().in_set(false, false, "blocklist4", block4_id).counter().drop());
        r.push_back(rb().in_set(true, true, "blocklist6", block6_id).counter().drop());
        if (!input) r.push_back(rb().in_set(true, false, "blocklist6", block6_id).counter().drop());
        r.push_back(rb().rt_type0().counter().drop());
        // From a segment: only its own sources (for the router itself, also the link-local
        // ones neighbour discovery and DHCP need).
        for (size_t i = 0; i < in.lans.size(); ++i) {
            auto& s = seg[i];
            r.push_back(rb().iifname(in.lans[i].ifname)
                            .in_set(false, true, input ? s.nl4 : s.n4, input ? s.idl4 : s.id4, true)
                            .counter()
                            .drop());
            r.push_back(rb().iifname(in.lans[i].ifname)
                            .in_set(true, true, input ? s.nl6 : s.n6, input ? s.idl6 : s.id6, true)
                            .counter()
                            .drop());
        }
        // From outside: never a source of our own.
        for (auto& o : outside) {
            if (o.ipv4) r.push_back(rb().iifname(o.name).in_set(false, true, "lan4", lan4_id).counter().drop());
            r.push_back(rb().iifname(o.name).in_set(true, true, "lan6", lan6_id).counter().drop());
        }
    };

    // Echo requests before conntrack: ping keeps one identifier, so after the first reply
    // every further request of a flood is "established".
    auto echo_limits = [&](std::vector<Rule>& r) {
        for (auto& o : outside) {
            if (o.ipv4)
                r.push_back(rb().iifname(o.name)
                                .icmp_types({{8, "echo-request"}})
                                .source_over(false, "echo4", echo4_id, limits::kEcho)
                                .counter()
                                .drop());
            r.push_back(rb().iifname(o.name)
                            .icmp6_types({{128, "echo-request"}})
                            .source_over(true, "echo6", echo6_id, limits::kEcho)
                            .counter()
                            .drop());
        }
    };

    Chain input{"input", "filter", NF_INET_LOCAL_IN, 0, "filter", true, {}};
    auto& ir = input.rules;
    ir.push_back(rb().iifname("lo").accept());
    common_head(ir, true);
    // Reverse path for the router's own input (the LAN is checked above): a source the router
    // would not route back out of the interface the packet came in on is spoofed.
    for (auto& o : outside) ir.push_back(rb().iifname(o.name).rpf_missing().counter().drop());
    echo_limits(ir);
    ir.push_back(rb().ct_state(kCtEstablished | kCtRelated, "established,related").accept());
    ir.push_back(rb().ct_state(kCtInvalid, "invalid").counter().drop());
    // A full segment reaches every service of the router (DNS, DHCP, NTP, SSH unless its ssh
    // is off); a guest segment only DHCP, DNS, NTP and DHCPv6 information (ICMP below).
    for (auto& l : in.lans) {
        if (!l.guest) {
            if (in.ssh_enabled && !l.ssh) ir.push_back(rb().iifname(l.ifname).dport(Proto::tcp, in.ssh_port).counter().drop());
            ir.push_back(rb().iifname(l.ifname).accept());
            continue;
        }
        ir.push_back(rb().iifname(l.ifname).dport(Proto::udp, 67).accept());
        ir.push_back(rb().iifname(l.ifname).dport(Proto::udp, 547).accept());
        ir.push_back(rb().iifname(l.ifname).dport(Proto::udp, 53).accept());
        ir.push_back(rb().iifname(l.ifname).dport(Proto::tcp, 53).accept());
        if (in.ntp_server) ir.push_back(rb().iifname(l.ifname).dport(Proto::udp, 123).accept());
    }

    // Per-source limits from outside: new TCP connections, then echo requests.
    auto syn_limits = [&](std::vector<Rule>& r) {
        for (auto& o : outside) {
            if (o.ipv4)
                r.push_back(rb().iifname(o.name).tcp_syn().source_over(false, "syn4", syn4_id, limits::kSyn).counter().drop());
            r.push_back(rb().iifname(o.name).tcp_syn().source_over(true, "syn6", syn6_id, limits::kSyn).counter().drop());
        }
    };
    syn_limits(ir);
    ir.push_back(rb().icmp6_types({{128, "echo-request"}}).accept());
    ir.push_back(rb().icmp6_types(kIcmp6Errors).limit(limits::kIcmp6).accept());
    ir.push_back(rb().icmp6_types(kIcmp6Nd).ip6_hoplimit(255).accept());
    ir.push_back(rb().icmp6_types(kIcmp6Mld).ip6_addr(true, *Ipv6Addr::parse("fe80::"), 10).accept());
    // Tunnel brokers check that the endpoint answers pings.
    ir.push_back(rb().icmp_types({{8, "echo-request"}}).accept());
    // DHCP replies to udhcpc (renewals use a normal UDP socket).
    ir.push_back(rb().iifname(in.wan_if).udp_ports(67, 68).accept());
    // DHCPv6 replies to dhcpcd come from the server's (or relay's) link-local address.
    if (in.dhcpv6_client)
        ir.push_back(rb().iifname(in.wan_if).ip6_addr(true, *Ipv6Addr::parse("fe80::"), 10).udp_ports(547, 546).accept());
    if (in.tunnel_peer)
        ir.push_back(rb().iifname(in.wan_if).ip_saddr(*in.tunnel_peer).ip_protocol(IPPROTO_IPV6).accept());
    if (in.ssh_wan)
        for (auto& o : outside) {
            auto ssh = [&] { return rb().iifname(o.name).dport(Proto::tcp, in.ssh_port).ct_state(kCtNew, "new"); };
            if (o.ipv4) ir.push_back(ssh().source_over(false, "ssh4", ssh4_id, limits::kSsh).counter().drop());
            ir.push_back(ssh().source_over(true, "ssh6", ssh6_id, limits::kSsh).counter().drop());
            ir.push_back(ssh().accept());
        }
    // What no rule accepted is dropped here, counted, rather than by the policy (which has no
    // counter): `netctl metrics` reports every drop of the chain.
    ir.push_back(rb().counter().drop());

    // MSS clamping comes before any verdict of the forward hook, at mangle priority.
    Chain mss{"mss_clamp", "filter", NF_INET_FORWARD, -150, "mangle", false, {}};
    mss.rules.push_back(rb().clamp_mss().statement_only());

    Chain forward{"forward", "filter", NF_INET_FORWARD, 0, "filter", true, {}};
    auto& fr = forward.rules;
    common_head(fr, false);
    for (auto& o : outside) {
        fr.push_back(rb().iifname(o.name).in_set(true, true, "scoped6", scoped6_id).counter().drop());
        fr.push_back(rb().iifname(o.name).in_set(true, false, "scoped6", scoped6_id).counter().drop());
        fr.push_back(rb().oifname(o.name).in_set(true, true, "scoped6", scoped6_id).counter().drop());
        fr.push_back(rb().oifname(o.name).in_set(true, false, "scoped6", scoped6_id).counter().drop());
    }
    echo_limits(fr);
    // A segment's hosts to the networks behind a downstream router on the same segment
    // ([[route]]): in and out of the segment's link. Before conntrack: the answers go from the
    // downstream router to the host directly, so the router sees only one direction of each
    // connection, which conntrack calls invalid.
    for (auto& l : in.lans) {
        Prefixes r4, r6;
        for (auto& p : l.routed4) r4.push_back(v4(p.network(), p.len));
        for (auto& p : l.routed6) r6.push_back(v6(p.addr, p.len));
        if (!r4.empty()) {
            uint32_t id = interval_set("routed4_" + l.name, false, r4);
            fr.push_back(rb().iifname(l.ifname).oifname(l.ifname).in_set(false, false, "routed4_" + l.name, id).accept());
        }
        if (!r6.empty()) {
            uint32_t id = interval_set("routed6_" + l.name, true, r6);
            fr.push_back(rb().iifname(l.ifname).oifname(l.ifname).in_set(true, false, "routed6_" + l.name, id).accept());
        }
    }
    // The fast path: after every check that comes before conntrack (blocklists, sources,
    // scoped addresses, echo limits), where established flows are accepted. A connection the
    // chain accepted is offloaded once established; a new one always goes through the chain.
    // A load flushes the flowtable (it is made anew), so its flows meet a new policy too.
    if (in.fw.flow_offload && !in.flow_devices.empty()) {
        filter.flowtable = Flowtable{"ft", in.flow_devices, {}};
        fr.push_back(rb().flow_add("ft").statement_only());
    }
    fr.push_back(rb().ct_state(kCtEstablished | kCtRelated, "established,related").accept());
    fr.push_back(rb().ct_state(kCtInvalid, "invalid").counter().drop());
    // The segment an IPv6 host or IPv4 address is on (the first segment when none is).
    auto seg_of6 = [&](const Ipv6Addr& a) -> const FirewallSegment& {
        for (auto& l : in.lans)
            for (auto& p : l.lan6)
                if (p.contains(a)) return l;
        return in.lans.front();
    };
    auto seg_of4 = [&](const Ipv4Addr& a) -> const FirewallSegment& {
        for (auto& l : in.lans)
            if (l.lan4.contains(a)) return l;
        return in.lans.front();
    };
    // Every segment reaches the outside. A guest segment reaches nothing else; full segments
    // reach each other, and a guest segment's open6 hosts (nothing else of it).
    for (auto& l : in.lans)
        for (auto& o : outside) fr.push_back(rb().iifname(l.ifname).oifname(o.name).accept());
    for (auto& g : in.lans)
        if (g.guest && in.lans.size() > 1) fr.push_back(rb().iifname(g.ifname).counter().drop());
    for (auto& a : in.lans) {
        if (a.guest) continue;
        for (auto& b : in.lans) {
            if (&a == &b) continue;
            if (!b.guest) {
                fr.push_back(rb().iifname(a.ifname).oifname(b.ifname).accept());
                continue;
            }
            for (auto& o : in.fw.open6)
                if (&seg_of6(o.host) == &b)
                    fr.push_back(rb().iifname(a.ifname).oifname(b.ifname).ip6_addr(false, o.host, 128).dport(o.proto, o.port).accept());
            fr.push_back(rb().iifname(a.ifname).oifname(b.ifname).counter().drop());
        }
    }
    syn_limits(fr);
    fr.push_back(rb().icmp6_types({{128, "echo-request"}}).accept());
    fr.push_back(rb().icmp6_types(kIcmp6Errors).limit(limits::kIcmp6).accept());
    for (auto& o : in.fw.open6)
        fr.push_back(rb().oifname(seg_of6(o.host).ifname).ip6_addr(false, o.host, 128).dport(o.proto, o.port).accept());
    std::set<std::string> dnat_to;
    for (auto& f : in.fw.forward4) dnat_to.insert(seg_of4(f.to).ifname);
    for (auto& l : in.lans)
        if (dnat_to.count(l.ifname)) fr.push_back(rb().iifname(in.wan_if).oifname(l.ifname).ct_status_dnat().accept());
    fr.push_back(rb().counter().drop());   // as in input: no drop uncounted

    filter.chains = {std::move(input), std::move(mss), std::move(forward)};

    Table nat{Family::ip, kNatTable, {}, {}, {}};
    Chain pre{"prerouting", "nat", NF_INET_PRE_ROUTING, -100, "dstnat", false, {}};
    for (auto& f : in.fw.forward4)
        pre.rules.push_back(rb(Family::ip).iifname(in.wan_if).dport(f.proto, f.port).dnat(f.to, f.to_port).statement_only());
    Chain post{"postrouting", "nat", NF_INET_POST_ROUTING, 100, "srcnat", false, {}};
    post.rules.push_back(rb(Family::ip).oifname(in.wan_if).masquerade().statement_only());
    nat.chains = {std::move(pre), std::move(post)};

    return Ruleset{{std::move(filter), std::move(nat)}};
}

std::map<std::string, DropCount> zero_drop_counts(const nft::Ruleset& r) {
    std::map<std::string, DropCount> out;
    for (auto& t : r.tables) {
        if (t.family != nft::Family::inet || t.name != kFilterTable) continue;
        for (auto& c : t.chains)
            for (auto& rule : c.rules) {
                bool counted = false, drops = false;
                for (auto& e : rule.exprs) {
                    counted |= e.kind == nft::Expr::Kind::counter;
                    drops |= e.kind == nft::Expr::Kind::verdict && e.key == NF_DROP;
                }
                if (counted && drops) out[c.name] = {};
            }
    }
    return out;
}

nft::Ruleset without_flowtable(nft::Ruleset r) {
    for (auto& t : r.tables) {
        t.flowtable.reset();
        for (auto& c : t.chains)
            std::erase_if(c.rules, [](const nft::Rule& x) {
                return std::any_of(x.exprs.begin(), x.exprs.end(),
                                   [](auto& e) { return e.kind == nft::Expr::Kind::flow_add; });
            });
    }
    return r;
}

nft::Ruleset flowtable_on(nft::Ruleset r, const std::set<std::string>& present) {
    bool none_left = false;
    for (auto& t : r.tables)
        if (t.flowtable) {
            std::erase_if(t.flowtable->devices, [&](const std::string& d) { return !present.count(d); });
            none_left = none_left || t.flowtable->devices.empty();
        }
    return none_left ? without_flowtable(std::move(r)) : r;
}

std::vector<std::string> flowtable_nics(const std::string& wan, const std::vector<std::string>& lan_nics,
                                        const std::function<bool(const std::string&)>& exists) {
    std::vector<std::string> out;
    std::vector<std::string> all = {wan};
    all.insert(all.end(), lan_nics.begin(), lan_nics.end());
    for (auto& d : all)
        if (std::find(out.begin(), out.end(), d) == out.end() && exists(d)) out.push_back(d);
    return out;
}

std::string render_nft(const nft::Ruleset& r) {
    std::ostringstream o;
    o << "# netd's ruleset: replaces netd's tables in one transaction.\n";
    auto fam = [](nft::Family f) { return f == nft::Family::inet ? "inet" : "ip"; };
    for (auto& t : r.tables) {
        o << "table " << fam(t.family) << " " << t.name << "\n";
        o << "delete table " << fam(t.family) << " " << t.name << "\n";
    }
    for (auto& t : r.tables) {
        o << "table " << fam(t.family) << " " << t.name << " {\n";
        for (auto& s : t.sets) {
            o << "\tset " << s.name << " {\n\t\ttype " << (s.ipv6 ? "ipv6_addr" : "ipv4_addr") << "\n";
            if (s.dynamic)
                o << "\t\tsize " << s.size << "\n\t\tflags dynamic,timeout\n\t\ttimeout " << s.timeout_ms / 1000
                  << "s\n";
            else
                o << "\t\tflags interval\n";
            if (!s.elements.empty()) {
                o << "\t\telements = { ";
                for (size_t i = 0; i < s.elements.size(); ++i) o << (i ? ",\n\t\t\t     " : "") << s.elements[i];
                o << " }\n";
            }
            o << "\t}\n\n";
        }
        if (t.flowtable) {
            o << "\tflowtable " << t.flowtable->name << " {\n\t\thook ingress priority filter\n\t\tdevices = { ";
            for (size_t i = 0; i < t.flowtable->devices.size(); ++i)
                o << (i ? ", " : "") << '"' << t.flowtable->devices[i] << '"';
            o << " }\n\t}\n\n";
        }
        for (size_t i = 0; i < t.chains.size(); ++i) {
            auto& c = t.chains[i];
            o << "\tchain " << c.name << " {\n\t\ttype " << c.type << " hook ";
            switch (c.hook) {
                case NF_INET_PRE_ROUTING: o << "prerouting"; break;
                case NF_INET_LOCAL_IN: o << "input"; break;
                case NF_INET_FORWARD: o << "forward"; break;
                case NF_INET_LOCAL_OUT: o << "output"; break;
                default: o << "postrouting"; break;
            }
            o << " priority " << c.priority_text << "; policy " << (c.policy_drop ? "drop" : "accept") << ";\n";
            for (auto& rule : c.rules) o << "\t\t" << rule.text << "\n";
            o << "\t}\n" << (i + 1 < t.chains.size() ? "\n" : "");
        }
        o << "}\n";
    }
    return o.str();
}

}  // namespace netd
