// The router's netfilter policy: a ruleset model built from the config and the run-time facts
// (interface names, tunnel peer), rendered two ways from the same data:
//   - nft syntax (render_nft), for golden tests, `netctl firewall` and `nft -f`;
//   - one nftables transaction through libnftnl + libmnl (load_ruleset, RulesetLoader): netd's
//     tables added, deleted and recreated inside a single batch, or just the difference from
//     the ruleset loaded before; the kernel applies either atomically and a failure leaves the
//     previous policy in place.
// Each rule carries both its text and the kernel expressions it compiles to (the same ones
// `nft --debug=netlink` prints for that text); tests/netns/test_firewall_equivalence.py checks
// that the two load into identical kernel state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "net_types.h"
#include "unique_fd.h"

namespace netd {

namespace nft {

enum class Family : uint8_t { inet = 1, ip = 2 };  // NFPROTO_INET, NFPROTO_IPV4

// One kernel expression (see nft --debug=netlink). Register 1 is used throughout; the
// verdict register is 0.
struct Expr {
    enum class Kind {
        meta,       // key -> reg
        ct,         // key -> reg
        payload,    // base, offset, len -> reg
        cmp,        // op, data
        bitwise,    // len, mask (xor 0)
        lookup,     // set name, set id
        immediate,  // data -> reg
        verdict,    // key = NF_ACCEPT / NF_DROP
        limit,      // rate / unit seconds, burst, packets
        rt_tcpmss,  // route MTU derived MSS -> reg
        hton16,     // byteorder hton, 2 bytes
        mss_write,  // exthdr write tcp option maxseg from reg
        dnat4,      // addr reg 1, port reg 2
        masq,
        counter,
        exthdr6,    // IPv6 extension header `key` (e.g. routing), offset, len -> reg
        fib_rpf,    // fib saddr . iif oif present -> reg (1 byte: 0 = no route back via iif)
        dynset,     // update @set { reg -> key, with the limit `rate/unit burst` per element }
        flow_add,   // flow add @set (the flowtable of that name)
    };
    Kind kind = Kind::meta;
    uint32_t key = 0;
    uint32_t reg = 1;
    uint32_t offset = 0, len = 0;
    std::vector<uint8_t> data, mask;
    std::string set;
    uint32_t set_id = 0;
    bool invert = false;    // lookup: "!= @set"; limit (also a dynset's): "limit rate over"
    uint64_t rate = 0, unit = 0;
    uint32_t burst = 0;
};

// An anonymous constant set ("{ echo-request, ... }") used by one rule.
struct AnonSet {
    uint32_t id = 0;
    uint32_t key_type = 0;  // nft datatype id (so `nft list` prints names, not numbers)
    uint32_t key_len = 0;
    std::vector<std::vector<uint8_t>> elements;
};

struct Rule {
    std::string text;
    std::vector<Expr> exprs;
    std::vector<AnonSet> anon_sets;
};

// A half-open address range [start, end); no end means "to the top of the address space".
struct Interval {
    std::vector<uint8_t> start;
    std::optional<std::vector<uint8_t>> end;
};

// A named set of addresses: an interval set (the blocklists, the LAN's own prefixes), or a
// dynamic set that rules fill per source address (the per-source limits: each element holds its
// own token bucket and expires `timeout_ms` after its source was last seen; at most `size`).
struct Set {
    std::string name;
    uint32_t id = 0;
    bool ipv6 = false;
    std::vector<Interval> intervals;      // sorted, disjoint, not adjacent
    std::vector<std::string> elements;    // the same, as nft text
    bool dynamic = false;
    uint64_t timeout_ms = 0;
    uint32_t size = 0;
};

struct Chain {
    std::string name;
    std::string type;       // "filter" or "nat"
    uint32_t hook = 0;      // NF_INET_*
    int32_t priority = 0;
    std::string priority_text;
    bool policy_drop = false;
    std::vector<Rule> rules;
};

// A flowtable: the software fast path (ingress hook of its devices) that established flows
// offloaded by a `flow add` rule take, past the forward chain.
struct Flowtable {
    std::string name;
    std::vector<std::string> devices;
    // The devices' interface indexes at the load (not part of the text): a device deleted and
    // made again under its name (a NIC unplugged and plugged back) is another device, whose
    // ingress only a flowtable made anew hooks. Empty: not known (the loader compares them).
    std::vector<int> ifindexes;
    bool operator==(const Flowtable&) const = default;
};

struct Table {
    Family family = Family::inet;
    std::string name;
    std::vector<Set> sets;
    std::vector<Chain> chains;
    std::optional<Flowtable> flowtable;
};

struct Ruleset {
    std::vector<Table> tables;
};

// Merges prefixes into sorted disjoint intervals (what an nftables interval set holds).
std::vector<Interval> merge_prefixes(const std::vector<std::pair<std::vector<uint8_t>, unsigned>>& prefixes);

}  // namespace nft

// What the policy depends on besides the [firewall] section.
// One LAN segment as the policy sees it.
struct FirewallSegment {
    std::string name;
    std::string ifname;
    Ipv4Cidr lan4;                          // its IPv4 subnet (the router's address in it)
    std::vector<Ipv4Cidr> routed4;          // networks behind downstream routers on it
    std::vector<Ipv6Prefix> lan6;           // its IPv6 prefixes
    std::vector<Ipv6Prefix> routed6;        // IPv6 networks behind downstream routers on it
    bool guest = false;                     // Trust::guest
    bool ssh = true;                        // reaches the router's SSH
};

struct FirewallInputs {
    std::vector<FirewallSegment> lans;      // at least one
    std::string wan_if;
    std::string tunnel_if;                  // empty: no tunnel
    std::optional<Ipv4Addr> tunnel_peer;    // protocol 41 is accepted from this address only
    bool ssh_enabled = true;
    uint16_t ssh_port = 22;
    bool ssh_wan = false;                   // SSH also from WAN and tunnel (rate-limited)
    bool dhcpv6_client = false;             // native IPv6: DHCPv6 replies to dhcpcd on WAN
    bool ntp_server = true;                 // [ntp] serve_lan: guests reach NTP too
    // The flowtable's devices (fw.flow_offload): the links forwarded between, the sit device
    // included while there is a tunnel. None: no flowtable. A flowtable cannot name a device
    // that does not exist yet: see flowtable_on().
    std::vector<std::string> flow_devices;
    FirewallConfig fw;
};

// c: the configuration with each segment's ipv6_prefixes as in use now; lan_ifs: segment name
// -> link name.
FirewallInputs firewall_inputs(const Config& c, const std::map<std::string, std::string>& lan_ifs,
                               const std::string& wan_if);

// Table names: everything netd owns, and nothing else is touched.
inline constexpr const char* kFilterTable = "netd";      // inet: filter, MSS clamping
inline constexpr const char* kNatTable = "netd_nat";     // ip: NAT44

nft::Ruleset build_ruleset(const FirewallInputs& in);

// The ruleset without its flowtable and the rules that offload to it.
nft::Ruleset without_flowtable(nft::Ruleset r);
// The ruleset as the kernel takes it while only the links `present` exist: its flowtable on
// those of its devices that are present (the kernel refuses a flowtable naming a missing one),
// or none at all when none is. The reconciler loads this before it makes the sit device, and
// the whole ruleset once the device is there.
nft::Ruleset flowtable_on(nft::Ruleset r, const std::set<std::string>& present);
// The flowtable's devices but the sit device: the WAN and the segments' NICs (`lan_nics`; a
// VLAN segment's is its trunk, whose ingress sees its frames tagged: the fast path takes the
// tag off and puts it back on), each once, those that `exists` says are there.
std::vector<std::string> flowtable_nics(const std::string& wan, const std::vector<std::string>& lan_nics,
                                        const std::function<bool(const std::string&)>& exists);

// nft syntax. The text starts by adding and deleting netd's tables, so `nft -f` of it replaces
// them in one transaction, as load_ruleset does.
std::string render_nft(const nft::Ruleset& r);

struct LoadStats {
    size_t messages = 0;
    size_t bytes = 0;
    bool incremental = false;   // just the difference from the ruleset loaded before
};

// Sends the ruleset as one nftables transaction (the whole replacement) and waits for the
// kernel's answer. On error the kernel has aborted the whole batch: the previous ruleset stays
// in place.
Result<LoadStats> load_ruleset(const nft::Ruleset& r);


// What one chain dropped: the sum of the counters of its rules that end in drop (every drop
// rule carries a counter, and the filter chains end in `counter drop`, so nothing reaches
// their policy uncounted).
struct DropCount {
    uint64_t packets = 0, bytes = 0;
    DropCount& operator+=(const DropCount& o) {
        packets += o.packets;
        bytes += o.bytes;
        return *this;
    }
    bool operator==(const DropCount&) const = default;
};
// The chains of a ruleset model that have counted drop rules, each with zero: what the kernel
// holds right after loading it.
std::map<std::string, DropCount> zero_drop_counts(const nft::Ruleset& r);
// Reads them back from the kernel (a dump of the rules of inet netd): chain -> dropped. No
// table yet: none.
Result<std::map<std::string, DropCount>> read_drop_counts();

// netd's door to nftables: one netlink socket kept open, and what it loaded last. apply() sends
// just the difference (set elements added and removed, rules deleted by handle and inserted at
// their place) when the kernel still holds exactly the ruleset this loader loaded last, else the
// whole replacement; either way one transaction. "Exactly": the transaction carries the
// nftables generation its own last commit made (NFNL_BATCH_GENID), so the kernel refuses it
// when anything changed any table since (nft by hand, another process), and the loader then
// sends the whole replacement. A loader that is new (netd restarted) or whose last exchange
// failed in any way knows nothing, and replaces. Keeping the socket open also keeps netd from
// waiting for the kernel's deferred release of the replaced objects (an RCU grace period, paid
// at the close of a socket that made a transaction).
class RulesetLoader {
public:
    RulesetLoader();
    ~RulesetLoader();
    RulesetLoader(const RulesetLoader&) = delete;
    RulesetLoader& operator=(const RulesetLoader&) = delete;

    Result<LoadStats> apply(const nft::Ruleset& r);
    // The whole replacement, whatever the kernel holds.
    Result<LoadStats> replace(const nft::Ruleset& r);
    // read_drop_counts() on this loader's socket (closing a netlink socket right after a
    // transaction waits for the kernel's deferred release).
    Result<std::map<std::string, DropCount>> drop_counts();

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace netd
