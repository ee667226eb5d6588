// load_ruleset(): the ruleset model as one nftables transaction (libnftnl builds the messages,
// libmnl talks to the kernel). Every message asks for an acknowledgement, so the answer names
// the first message the kernel refused; the kernel then aborts the whole batch.
#include "firewall.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/flowtable.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <syslog.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace netd {
namespace {

using namespace nft;

template <typename T, auto F>
struct Deleter {
    void operator()(T* p) const { F(p); }
};
using TablePtr = std::unique_ptr<nftnl_table, Deleter<nftnl_table, nftnl_table_free>>;
using ChainPtr = std::unique_ptr<nftnl_chain, Deleter<nftnl_chain, nftnl_chain_free>>;
using SetPtr = std::unique_ptr<nftnl_set, Deleter<nftnl_set, nftnl_set_free>>;
using RulePtr = std::unique_ptr<nftnl_rule, Deleter<nftnl_rule, nftnl_rule_free>>;
using FlowtablePtr = std::unique_ptr<nftnl_flowtable, Deleter<nftnl_flowtable, nftnl_flowtable_free>>;
using SocketPtr = std::unique_ptr<mnl_socket, Deleter<mnl_socket, [](mnl_socket* s) { mnl_socket_close(s); }>>;

constexpr size_t kMaxMessage = 256 * 1024;  // room reserved for any one message
constexpr size_t kElementsPerMessage = 512;

// The batch: messages appended into one growing buffer, each remembered for error reports.
class Batch {
public:
    Batch() : seq_(static_cast<uint32_t>(time(nullptr))) {}

    nlmsghdr* begin_message(uint16_t type, uint16_t family, uint16_t flags, std::string what) {
        // Fresh room is zero (resize value-initializes it) and nothing past used_ is ever
        // written but the message itself: no memset of the whole reserve per message.
        buf_.resize(used_ + kMaxMessage);
        uint32_t seq = seq_++;
        what_[seq] = std::move(what);
        last_seq_ = seq;
        return nftnl_nlmsg_build_hdr(buf_.data() + used_, type, family, flags | NLM_F_ACK, seq);
    }
    void end_message(nlmsghdr* nlh) {
        used_ += NLMSG_ALIGN(nlh->nlmsg_len);
        ++messages_;
    }
    // genid: the nftables generation the kernel must still be at, else it refuses the whole
    // batch (ERESTART); 0: any.
    void begin(uint32_t genid = 0) {
        if (genid == 0) return control(NFNL_MSG_BATCH_BEGIN);
        buf_.resize(used_ + kMaxMessage);
        auto* nlh = nftnl_batch_begin(buf_.data() + used_, seq_++);
        mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(genid));
        used_ += NLMSG_ALIGN(nlh->nlmsg_len);
    }
    void end() { control(NFNL_MSG_BATCH_END); }

    const char* data() const { return buf_.data(); }
    size_t size() const { return used_; }
    size_t messages() const { return messages_; }
    uint32_t last_seq() const { return last_seq_; }
    const std::string& what(uint32_t seq) const {
        static const std::string unknown = "the batch";
        auto it = what_.find(seq);
        return it == what_.end() ? unknown : it->second;
    }

private:
    void control(int type) {
        buf_.resize(used_ + kMaxMessage);
        auto* nlh = type == NFNL_MSG_BATCH_BEGIN ? nftnl_batch_begin(buf_.data() + used_, seq_++)
                                                 : nftnl_batch_end(buf_.data() + used_, seq_++);
        used_ += NLMSG_ALIGN(nlh->nlmsg_len);
    }

    std::vector<char> buf_;
    size_t used_ = 0, messages_ = 0;
    uint32_t seq_;
    uint32_t last_seq_ = 0;
    std::map<uint32_t, std::string> what_;
};

nftnl_expr* make_limit(const Expr& e) {
    nftnl_expr* x = nftnl_expr_alloc("limit");
    nftnl_expr_set_u64(x, NFTNL_EXPR_LIMIT_RATE, e.rate);
    nftnl_expr_set_u64(x, NFTNL_EXPR_LIMIT_UNIT, e.unit);
    nftnl_expr_set_u32(x, NFTNL_EXPR_LIMIT_BURST, e.burst);
    nftnl_expr_set_u32(x, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
    nftnl_expr_set_u32(x, NFTNL_EXPR_LIMIT_FLAGS, e.invert ? NFT_LIMIT_F_INV : 0);
    return x;
}

nftnl_expr* make_expr(const Expr& e) {
    auto mk = [](const char* name) { return nftnl_expr_alloc(name); };
    nftnl_expr* x = nullptr;
    switch (e.kind) {
        case Expr::Kind::meta:
            x = mk("meta");
            nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, e.key);
            nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, NFT_REG_1);
            break;
        case Expr::Kind::ct:
            x = mk("ct");
            nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, e.key);
            nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, NFT_REG_1);
            break;
        case Expr::Kind::payload:
            x = mk("payload");
            nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, e.key);
            nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, e.offset);
            nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, e.len);
            break;
        case Expr::Kind::cmp:
            x = mk("cmp");
            nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, e.key);
            nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, e.data.data(), static_cast<uint32_t>(e.data.size()));
            break;
        case Expr::Kind::bitwise: {
            x = mk("bitwise");
            std::vector<uint8_t> zero(e.mask.size(), 0);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_LEN, e.len);
            nftnl_expr_set(x, NFTNL_EXPR_BITWISE_MASK, e.mask.data(), static_cast<uint32_t>(e.mask.size()));
            nftnl_expr_set(x, NFTNL_EXPR_BITWISE_XOR, zero.data(), static_cast<uint32_t>(zero.size()));
            break;
        }
        case Expr::Kind::lookup:
            x = mk("lookup");
            nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
            nftnl_expr_set_str(x, NFTNL_EXPR_LOOKUP_SET, e.set.c_str());
            nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SET_ID, e.set_id);
            if (e.invert) nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
            break;
        case Expr::Kind::immediate:
            x = mk("immediate");
            nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, e.reg);
            nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, e.data.data(), static_cast<uint32_t>(e.data.size()));
            break;
        case Expr::Kind::verdict:
            x = mk("immediate");
            nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
            nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, e.key);
            break;
        case Expr::Kind::limit:
            x = make_limit(e);
            break;
        case Expr::Kind::dynset:
            // The per-element limit is the dynset's own expression: each source gets a bucket.
            x = mk("dynset");
            nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
            nftnl_expr_set_str(x, NFTNL_EXPR_DYNSET_SET_NAME, e.set.c_str());
            nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SET_ID, e.set_id);
            nftnl_expr_set(x, NFTNL_EXPR_DYNSET_EXPR, make_limit(e), 0);
            break;
        case Expr::Kind::counter:
            x = mk("counter");
            break;
        case Expr::Kind::exthdr6:
            x = mk("exthdr");
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_DREG, NFT_REG_1);
            nftnl_expr_set_u8(x, NFTNL_EXPR_EXTHDR_TYPE, static_cast<uint8_t>(e.key));
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_OFFSET, e.offset);
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_LEN, e.len);
            break;
        case Expr::Kind::fib_rpf:
            x = mk("fib");
            nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_OIF);
            nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_SADDR | NFTA_FIB_F_IIF | NFTA_FIB_F_PRESENT);
            break;
        case Expr::Kind::rt_tcpmss:
            x = mk("rt");
            nftnl_expr_set_u32(x, NFTNL_EXPR_RT_KEY, NFT_RT_TCPMSS);
            nftnl_expr_set_u32(x, NFTNL_EXPR_RT_DREG, NFT_REG_1);
            break;
        case Expr::Kind::hton16:
            x = mk("byteorder");
            nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_SREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_DREG, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_LEN, 2);
            nftnl_expr_set_u32(x, NFTNL_EXPR_BYTEORDER_SIZE, 2);
            break;
        case Expr::Kind::mss_write:
            x = mk("exthdr");
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_SREG, NFT_REG_1);
            nftnl_expr_set_u8(x, NFTNL_EXPR_EXTHDR_TYPE, 2);  // TCPOPT_MAXSEG
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_OFFSET, 2);
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_LEN, 2);
            nftnl_expr_set_u32(x, NFTNL_EXPR_EXTHDR_OP, NFT_EXTHDR_OP_TCPOPT);
            break;
        case Expr::Kind::dnat4:
            x = mk("nat");
            nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
            nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
            nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
            nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
            nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
            break;
        case Expr::Kind::masq:
            x = mk("masq");
            break;
        case Expr::Kind::flow_add:
            x = mk("flow_offload");
            nftnl_expr_set_str(x, NFTNL_EXPR_FLOW_TABLE_NAME, e.set.c_str());
            break;
    }
    return x;
}

SetPtr new_set(const Table& t, const std::string& name, uint32_t id, uint32_t flags, uint32_t key_type,
               uint32_t key_len) {
    SetPtr s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, t.name.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, static_cast<uint32_t>(t.family));
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, flags);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, key_type);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, key_len);
    nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
    return s;
}

// Elements go in messages of kElementsPerMessage: one message per set would not fit a
// 10,000-prefix blocklist.
using Elements = std::vector<std::pair<std::vector<uint8_t>, bool>>;   // key, interval end

void add_elements(Batch& b, const Table& t, const SetPtr& proto, const std::string& what, const Elements& elems,
                  uint16_t type = NFT_MSG_NEWSETELEM) {
    for (size_t i = 0; i < elems.size(); i += kElementsPerMessage) {
        SetPtr s(nftnl_set_alloc());
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, t.name.c_str());
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, nftnl_set_get_str(proto.get(), NFTNL_SET_NAME));
        nftnl_set_set_u32(s.get(), NFTNL_SET_ID, nftnl_set_get_u32(proto.get(), NFTNL_SET_ID));
        nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, static_cast<uint32_t>(t.family));
        for (size_t j = i; j < elems.size() && j < i + kElementsPerMessage; ++j) {
            nftnl_set_elem* e = nftnl_set_elem_alloc();
            nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elems[j].first.data(), static_cast<uint32_t>(elems[j].first.size()));
            if (elems[j].second) nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
            nftnl_set_elem_add(s.get(), e);
        }
        auto* nlh = b.begin_message(type, static_cast<uint16_t>(t.family), type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
                                    what);
        nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
        b.end_message(nlh);
    }
}

TablePtr new_table(const Table& t) {
    TablePtr tab(nftnl_table_alloc());
    nftnl_table_set_str(tab.get(), NFTNL_TABLE_NAME, t.name.c_str());
    nftnl_table_set_u32(tab.get(), NFTNL_TABLE_FAMILY, static_cast<uint32_t>(t.family));
    return tab;
}

// The elements of an interval set as nft loads them: a zero-length interval end at address 0
// when the first interval does not start there, then each interval as start element and end
// element.
Elements set_elements(const Set& s) {
    Elements elems;
    size_t klen = s.ipv6 ? 16 : 4;
    if (!s.intervals.empty() && s.intervals.front().start != std::vector<uint8_t>(klen, 0))
        elems.push_back({std::vector<uint8_t>(klen, 0), true});
    for (auto& iv : s.intervals) {
        elems.push_back({iv.start, false});
        if (iv.end) elems.push_back({*iv.end, true});
    }
    return elems;
}

// One rule with its anonymous sets. position 0: appended to the chain; else inserted before
// the rule of that handle.
void add_rule(Batch& b, const Table& t, const Chain& c, const Rule& rule, uint64_t before = 0) {
    auto fam = static_cast<uint16_t>(t.family);
    for (auto& a : rule.anon_sets) {
        auto set = new_set(t, "__set%d", a.id, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT, a.key_type, a.key_len);
        nftnl_set_set_u32(set.get(), NFTNL_SET_DESC_SIZE, static_cast<uint32_t>(a.elements.size()));
        std::string what = "anonymous set of rule '" + rule.text + "'";
        auto* nlh = b.begin_message(NFT_MSG_NEWSET, fam, NLM_F_CREATE, what);
        nftnl_set_nlmsg_build_payload(nlh, set.get());
        b.end_message(nlh);
        Elements elems;
        for (auto& e : a.elements) elems.push_back({e, false});
        add_elements(b, t, set, what, elems);
    }
    RulePtr ru(nftnl_rule_alloc());
    nftnl_rule_set_str(ru.get(), NFTNL_RULE_TABLE, t.name.c_str());
    nftnl_rule_set_str(ru.get(), NFTNL_RULE_CHAIN, c.name.c_str());
    nftnl_rule_set_u32(ru.get(), NFTNL_RULE_FAMILY, fam);
    if (before) nftnl_rule_set_u64(ru.get(), NFTNL_RULE_POSITION, before);
    for (auto& e : rule.exprs) nftnl_rule_add_expr(ru.get(), make_expr(e));
    auto* nlh = b.begin_message(NFT_MSG_NEWRULE, fam, NLM_F_CREATE | (before ? 0 : NLM_F_APPEND),
                                "rule '" + rule.text + "' in chain " + c.name);
    nftnl_rule_nlmsg_build_payload(nlh, ru.get());
    b.end_message(nlh);
}

// The table's flowtable made (NFT_MSG_NEWFLOWTABLE, with its devices) or deleted.
void flowtable_message(Batch& b, const Table& t, uint16_t type) {
    FlowtablePtr ft(nftnl_flowtable_alloc());
    nftnl_flowtable_set_str(ft.get(), NFTNL_FLOWTABLE_TABLE, t.name.c_str());
    nftnl_flowtable_set_str(ft.get(), NFTNL_FLOWTABLE_NAME, t.flowtable->name.c_str());
    nftnl_flowtable_set_u32(ft.get(), NFTNL_FLOWTABLE_FAMILY, static_cast<uint32_t>(t.family));
    std::vector<const char*> devs;
    if (type == NFT_MSG_NEWFLOWTABLE) {
        nftnl_flowtable_set_u32(ft.get(), NFTNL_FLOWTABLE_HOOKNUM, NF_NETDEV_INGRESS);
        nftnl_flowtable_set_u32(ft.get(), NFTNL_FLOWTABLE_PRIO, 0);
        for (auto& d : t.flowtable->devices) devs.push_back(d.c_str());
        devs.push_back(nullptr);
        nftnl_flowtable_set_array(ft.get(), NFTNL_FLOWTABLE_DEVICES, devs.data());
    }
    bool add = type == NFT_MSG_NEWFLOWTABLE;
    auto* nlh = b.begin_message(type, static_cast<uint16_t>(t.family), add ? NLM_F_CREATE | NLM_F_EXCL : 0,
                                std::string(add ? "" : "delete ") + "flowtable " + t.name + " " + t.flowtable->name);
    nftnl_flowtable_nlmsg_build_payload(nlh, ft.get());
    b.end_message(nlh);
}

void build_batch(Batch& b, const Ruleset& r, uint32_t genid = 0) {
    b.begin(genid);
    for (auto& t : r.tables) {
        auto fam = static_cast<uint16_t>(t.family);
        auto tab = new_table(t);
        // add (a no-op when it exists), then delete: the delete cannot fail for a missing table.
        auto* nlh = b.begin_message(NFT_MSG_NEWTABLE, fam, NLM_F_CREATE, "table " + t.name);
        nftnl_table_nlmsg_build_payload(nlh, tab.get());
        b.end_message(nlh);
        nlh = b.begin_message(NFT_MSG_DELTABLE, fam, 0, "delete table " + t.name);
        nftnl_table_nlmsg_build_payload(nlh, tab.get());
        b.end_message(nlh);
    }
    for (auto& t : r.tables) {
        auto fam = static_cast<uint16_t>(t.family);
        auto tab = new_table(t);
        auto* nlh = b.begin_message(NFT_MSG_NEWTABLE, fam, NLM_F_CREATE | NLM_F_EXCL, "table " + t.name);
        nftnl_table_nlmsg_build_payload(nlh, tab.get());
        b.end_message(nlh);

        for (auto& s : t.sets) {
            // nft's datatype ids: 7 ipv4_addr, 8 ipv6_addr.
            auto set = new_set(t, s.name, s.id, s.dynamic ? NFT_SET_EVAL | NFT_SET_TIMEOUT : NFT_SET_INTERVAL,
                               s.ipv6 ? 8 : 7, s.ipv6 ? 16 : 4);
            if (s.dynamic) {
                nftnl_set_set_u64(set.get(), NFTNL_SET_TIMEOUT, s.timeout_ms);
                nftnl_set_set_u32(set.get(), NFTNL_SET_DESC_SIZE, s.size);
            }
            std::string what = "set " + t.name + " " + s.name;
            nlh = b.begin_message(NFT_MSG_NEWSET, fam, NLM_F_CREATE | NLM_F_EXCL, what);
            nftnl_set_nlmsg_build_payload(nlh, set.get());
            b.end_message(nlh);
            add_elements(b, t, set, what + " elements", set_elements(s));
        }
        if (t.flowtable) flowtable_message(b, t, NFT_MSG_NEWFLOWTABLE);
        for (auto& c : t.chains) {
            ChainPtr ch(nftnl_chain_alloc());
            nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TABLE, t.name.c_str());
            nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_NAME, c.name.c_str());
            nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_FAMILY, fam);
            nftnl_chain_set_str(ch.get(), NFTNL_CHAIN_TYPE, c.type.c_str());
            nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_HOOKNUM, c.hook);
            nftnl_chain_set_s32(ch.get(), NFTNL_CHAIN_PRIO, c.priority);
            nftnl_chain_set_u32(ch.get(), NFTNL_CHAIN_POLICY, c.policy_drop ? NF_DROP : NF_ACCEPT);
            nlh = b.begin_message(NFT_MSG_NEWCHAIN, fam, NLM_F_CREATE | NLM_F_EXCL, "chain " + t.name + " " + c.name);
            nftnl_chain_nlmsg_build_payload(nlh, ch.get());
            b.end_message(nlh);

            for (auto& rule : c.rules) add_rule(b, t, c, rule);
        }
    }
    b.end();
}

}  // namespace

namespace {

SocketPtr open_socket() {
    SocketPtr nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
    if (!nl) return nl;
    if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return nullptr;
    // One acknowledgement per message comes back, queued before we read any: without
    // NETLINK_CAP_ACK each one carries the whole message it answers (a large blocklist's
    // element messages), and the receive buffer overflows (ENOBUFS). Capped, an answer is
    // 36 bytes.
    int one = 1;
    setsockopt(mnl_socket_get_fd(nl.get()), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    return nl;
}

// The kernel's answer to a batch: refused is its errno (0: committed), error its words.
struct Answer {
    int refused = 0;
    std::string error;
};

// Sends the batch and reads the answers. An error: the exchange itself failed, and what the
// kernel did is unknown.
Result<Answer> transact(mnl_socket* nl, const Batch& b) {
    int fd = mnl_socket_get_fd(nl);
    // The whole batch goes in one sendmsg: the socket buffer must hold it, and the receive
    // buffer all the answers.
    int size = static_cast<int>(b.size() + 65536);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
    int rcv = static_cast<int>(std::max<size_t>(1 << 20, (b.messages() + 2) * 256));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
    if (mnl_socket_sendto(nl, b.data(), b.size()) < 0)
        return Error{"nftables: sending the batch: " + std::string(std::strerror(errno))};

    // One answer per message; the last message's answer ends the exchange.
    uint32_t portid = mnl_socket_get_portid(nl);
    std::vector<char> buf(1 << 16);
    struct State {
        const Batch* b;
        Answer ans;
        bool done = false;
    } st{&b, {}, false};
    while (!st.done) {
        pollfd p{fd, POLLIN, 0};
        int pr = poll(&p, 1, 10000);
        if (pr == 0) return Error{"nftables: no answer from the kernel within 10 s"};
        if (pr < 0) return Error{"nftables: poll: " + std::string(std::strerror(errno))};
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) return Error{"nftables: receiving the answer: " + std::string(std::strerror(errno))};
        mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
        ctl[NLMSG_ERROR] = [](const nlmsghdr* nlh, void* data) -> int {
            auto* a = static_cast<State*>(data);
            auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
            if (err->error != 0 && a->ans.error.empty()) {
                a->ans.refused = -err->error;
                a->ans.error = a->b->what(err->msg.nlmsg_seq) + ": " + std::strerror(-err->error);
            }
            if (err->msg.nlmsg_seq == a->b->last_seq() || (err->error != 0 && a->b->what(err->msg.nlmsg_seq) == "the batch"))
                a->done = true;
            return MNL_CB_OK;
        };
        int rc = mnl_cb_run2(buf.data(), static_cast<size_t>(n), 0, portid, nullptr, &st, ctl, NLMSG_MIN_TYPE);
        if (rc < 0 && st.ans.error.empty())
            return Error{"nftables: reading the answer: " + std::string(std::strerror(errno))};
    }
    return st.ans;
}

// Reads a dump (the request already built in buf) to its end, calling cb for each message.
Result<Ok> dump(mnl_socket* nl, nlmsghdr* req, mnl_cb_t cb, void* data) {
    if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0)
        return Error{"nftables: asking the kernel: " + std::string(std::strerror(errno))};
    uint32_t portid = mnl_socket_get_portid(nl), seq = req->nlmsg_seq;
    std::vector<char> buf(1 << 16);
    for (;;) {
        pollfd p{mnl_socket_get_fd(nl), POLLIN, 0};
        int pr = poll(&p, 1, 5000);
        if (pr == 0) return Error{"nftables: no answer from the kernel within 5 s"};
        if (pr < 0) return Error{"nftables: poll: " + std::string(std::strerror(errno))};
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n < 0) return Error{"nftables: reading the answer: " + std::string(std::strerror(errno))};
        int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, cb, data);
        if (rc == MNL_CB_STOP) return Ok{};
        if (rc < 0) return Error{"nftables: reading the answer", errno};   // ENOENT: no such table
    }
}

// The nftables generation now (NFT_MSG_GETGEN).
Result<uint32_t> generation(mnl_socket* nl) {
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETGEN, AF_UNSPEC, 0, static_cast<uint32_t>(time(nullptr)));
    struct Got {
        std::optional<uint32_t> id;
    } got;
    auto r = dump(nl, nlh, [](const nlmsghdr* m, void* data) -> int {
        nlattr* tb[NFTA_GEN_MAX + 1] = {};
        mnl_attr_parse(m, sizeof(nfgenmsg), [](const nlattr* attr, void* d) -> int {
            auto** t = static_cast<nlattr**>(d);
            if (mnl_attr_get_type(attr) <= NFTA_GEN_MAX) t[mnl_attr_get_type(attr)] = const_cast<nlattr*>(attr);
            return MNL_CB_OK;
        }, tb);
        if (tb[NFTA_GEN_ID]) static_cast<Got*>(data)->id = ntohl(mnl_attr_get_u32(tb[NFTA_GEN_ID]));
        return MNL_CB_STOP;
    }, &got);
    if (!r) return r.error();
    if (!got.id) return Error{"nftables: no generation in the kernel's answer"};
    return *got.id;
}

// The generation after one commit from g.
uint32_t next_generation(uint32_t g) { return g + 1 == 0 ? 1 : g + 1; }

// The handles of one table's rules, chain by chain in order, and the generation (its low 16
// bits, as every dump message carries it) the dump saw.
struct Handles {
    std::map<std::string, std::vector<uint64_t>> chains;
    std::set<uint16_t> generations;
};

Result<Handles> rule_handles(mnl_socket* nl, const Table& t) {
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, static_cast<uint16_t>(t.family), NLM_F_DUMP,
                                          static_cast<uint32_t>(time(nullptr)));
    RulePtr filter(nftnl_rule_alloc());
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, t.name.c_str());
    nftnl_rule_set_u32(filter.get(), NFTNL_RULE_FAMILY, static_cast<uint32_t>(t.family));
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    Handles h;
    auto r = dump(nl, nlh, [](const nlmsghdr* m, void* data) -> int {
        auto* out = static_cast<Handles*>(data);
        out->generations.insert(ntohs(static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(m))->res_id));
        RulePtr ru(nftnl_rule_alloc());
        if (nftnl_rule_nlmsg_parse(m, ru.get()) < 0) return MNL_CB_ERROR;
        out->chains[nftnl_rule_get_str(ru.get(), NFTNL_RULE_CHAIN)].push_back(nftnl_rule_get_u64(ru.get(), NFTNL_RULE_HANDLE));
        return MNL_CB_OK;
    }, &h);
    if (!r) return r.error();
    return h;
}

LoadStats stats(const Batch& b, bool incremental) { return LoadStats{b.messages(), b.size(), incremental}; }

// Whether two rulesets differ only in the elements of interval sets and in rules: the same
// tables, sets (name, type, flags) and chains (name, type, hook, priority, policy), in order.
bool same_frame(const Ruleset& a, const Ruleset& b) {
    if (a.tables.size() != b.tables.size()) return false;
    for (size_t i = 0; i < a.tables.size(); ++i) {
        auto &x = a.tables[i], &y = b.tables[i];
        if (x.family != y.family || x.name != y.name || x.sets.size() != y.sets.size() || x.chains.size() != y.chains.size() ||
            x.flowtable != y.flowtable)
            return false;
        for (size_t j = 0; j < x.sets.size(); ++j) {
            auto &s = x.sets[j], &u = y.sets[j];
            if (s.name != u.name || s.ipv6 != u.ipv6 || s.dynamic != u.dynamic || s.timeout_ms != u.timeout_ms ||
                s.size != u.size)
                return false;
        }
        for (size_t j = 0; j < x.chains.size(); ++j) {
            auto &c = x.chains[j], &d = y.chains[j];
            if (c.name != d.name || c.type != d.type || c.hook != d.hook || c.priority != d.priority ||
                c.policy_drop != d.policy_drop)
                return false;
        }
    }
    return true;
}

// An interval set's elements in units that go and come whole: the leading end at 0, and each
// interval (start and, unless it runs to the top, end).
std::vector<Elements> interval_units(const Set& s) {
    Elements all = set_elements(s);
    std::vector<Elements> units;
    for (size_t i = 0; i < all.size(); ++i) {
        if (all[i].second || i + 1 == all.size() || !all[i + 1].second)
            units.push_back({all[i]});
        else {
            units.push_back({all[i], all[i + 1]});
            ++i;
        }
    }
    return units;
}

// The longest common subsequence of two chains' rules (by text, which determines a rule's
// expressions): keep[i] is the index in b of a's rule i, or -1 when it goes.
std::vector<int> common_rules(const std::vector<Rule>& a, const std::vector<Rule>& b) {
    size_t n = a.size(), m = b.size();
    std::vector<std::vector<uint16_t>> l(n + 1, std::vector<uint16_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            l[i][j] = a[i].text == b[j].text ? l[i + 1][j + 1] + 1 : std::max(l[i + 1][j], l[i][j + 1]);
    std::vector<int> keep(n, -1);
    for (size_t i = 0, j = 0; i < n && j < m;) {
        if (a[i].text == b[j].text) {
            keep[i++] = static_cast<int>(j++);
        } else if (l[i + 1][j] >= l[i][j + 1]) {
            ++i;
        } else {
            ++j;
        }
    }
    return keep;
}

}  // namespace

Result<LoadStats> load_ruleset(const Ruleset& r) {
    Batch b;
    build_batch(b, r);
    SocketPtr nl = open_socket();
    if (!nl) return Error{"nftables: netlink socket: " + std::string(std::strerror(errno))};
    auto ans = transact(nl.get(), b);
    if (!ans) return ans.error();
    if (ans->refused) return Error{"nftables refused the ruleset (nothing changed): " + ans->error};
    return stats(b, false);
}

struct RulesetLoader::State {
    SocketPtr nl;
    // What the kernel holds as far as this loader knows: the ruleset it loaded last, the
    // generation its commit made, and (once read) each chain's rule handles in order.
    std::optional<Ruleset> loaded;
    uint32_t generation = 0;
    std::optional<std::map<std::pair<std::string, std::string>, std::vector<uint64_t>>> handles;
    // The flowtable the kernel refused (a kernel without NF_FLOW_TABLE, or a device that went
    // away between the check and the load: the answer, ENOENT, is the same): rulesets wanting
    // that same flowtable go without it. One on other devices is tried again.
    std::optional<Flowtable> refused_flowtable;

    void forget() {
        nl.reset();
        loaded.reset();
        handles.reset();
    }
};

namespace {

bool has_flowtable(const Ruleset& r) {
    return std::any_of(r.tables.begin(), r.tables.end(), [](auto& t) { return t.flowtable.has_value(); });
}

const Flowtable* first_flowtable(const Ruleset& r) {
    for (auto& t : r.tables)
        if (t.flowtable) return &*t.flowtable;
    return nullptr;
}

// Whether want's flowtable is the one the kernel refused before.
bool refused_before(const std::optional<Flowtable>& refused, const Ruleset& want) {
    const Flowtable* f = first_flowtable(want);
    return refused && f && *f == *refused;
}

}  // namespace

RulesetLoader::RulesetLoader() : s_(std::make_unique<State>()) {}
RulesetLoader::~RulesetLoader() = default;

Result<LoadStats> RulesetLoader::replace(const Ruleset& want) {
    const Ruleset& r = refused_before(s_->refused_flowtable, want) ? without_flowtable(want) : want;
    s_->loaded.reset();
    s_->handles.reset();
    if (!s_->nl) s_->nl = open_socket();
    if (!s_->nl) return Error{"nftables: netlink socket: " + std::string(std::strerror(errno))};
    // The generation checked in the batch: so the loader knows the one its commit makes.
    for (int attempt = 0;; ++attempt) {
        auto g = generation(s_->nl.get());
        if (!g) {
            s_->forget();
            return g.error();
        }
        Batch b;
        build_batch(b, r, attempt < 3 ? *g : 0);
        auto ans = transact(s_->nl.get(), b);
        if (!ans) {
            s_->forget();
            return ans.error();
        }
        if (ans->refused == ERESTART && attempt < 3) continue;   // someone else committed meanwhile
        // A kernel without flowtables: the policy without the fast path, rather than none.
        if (ans->refused && has_flowtable(r) && ans->error.rfind("flowtable ", 0) == 0) {
            syslog(LOG_WARNING,
                   "nftables: %s: the kernel refused the flowtable (no flowtables in this kernel, or a device "
                   "missing); the ruleset goes without, until its devices change",
                   ans->error.c_str());
            s_->refused_flowtable = *first_flowtable(r);
            return replace(r);
        }
        if (ans->refused) return Error{"nftables refused the ruleset (nothing changed): " + ans->error};
        if (attempt < 3) {
            s_->loaded = r;
            s_->generation = next_generation(*g);
        }
        return stats(b, false);
    }
}

Result<LoadStats> RulesetLoader::apply(const Ruleset& want) {
    auto& st = *s_;
    if (refused_before(st.refused_flowtable, want)) return apply(without_flowtable(want));
    const Ruleset& r = want;
    if (!st.nl || !st.loaded || !same_frame(*st.loaded, r)) return replace(r);
    const Ruleset& old = *st.loaded;
    // The rule handles, read once per commit that added rules; a dump of a generation other
    // than the loader's own: the kernel holds something else.
    bool rules_change = false, sets_change = false, flowtable = false;
    auto same_rules = [](const std::vector<Rule>& x, const std::vector<Rule>& y) {
        return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](auto& p, auto& q) { return p.text == q.text; });
    };
    auto same_set = [](const Set& x, const Set& y) {
        return x.dynamic || (x.intervals.size() == y.intervals.size() &&
                             std::equal(x.intervals.begin(), x.intervals.end(), y.intervals.begin(),
                                        [](auto& p, auto& q) { return p.start == q.start && p.end == q.end; }));
    };
    for (size_t i = 0; i < r.tables.size(); ++i) {
        flowtable |= r.tables[i].flowtable.has_value();
        for (size_t j = 0; j < r.tables[i].chains.size(); ++j)
            rules_change |= !same_rules(old.tables[i].chains[j].rules, r.tables[i].chains[j].rules);
        for (size_t j = 0; j < r.tables[i].sets.size(); ++j)
            sets_change |= !same_set(old.tables[i].sets[j], r.tables[i].sets[j]);
    }
    // With a flowtable, any change makes it anew (its `flow add` rule goes and comes around it):
    // that flushes it, so the flows it holds meet the new policy, as they would without it.
    const bool reflow = flowtable && (rules_change || sets_change);
    auto is_flow_rule = [](const Rule& x) {
        return std::any_of(x.exprs.begin(), x.exprs.end(), [](auto& e) { return e.kind == Expr::Kind::flow_add; });
    };
    rules_change |= reflow;
    if (rules_change && !st.handles) {
        std::map<std::pair<std::string, std::string>, std::vector<uint64_t>> all;
        for (auto& t : old.tables) {
            auto h = rule_handles(st.nl.get(), t);
            if (!h) {
                st.forget();
                return h.error();
            }
            if (h->generations.size() > 1 ||
                (h->generations.size() == 1 && *h->generations.begin() != (st.generation & 0xffff)))
                return replace(r);
            for (auto& c : t.chains) {
                auto& v = h->chains[c.name];
                if (v.size() != c.rules.size()) return replace(r);
                all[{t.name, c.name}] = std::move(v);
            }
        }
        st.handles = std::move(all);
    }

    Batch b;
    b.begin(st.generation);
    bool added = false;
    auto new_handles = st.handles;
    for (size_t i = 0; i < r.tables.size(); ++i) {
        auto &ot = old.tables[i], &t = r.tables[i];
        auto fam = static_cast<uint16_t>(t.family);
        // Rules that go, by handle; then the new ones, each before the next rule that stays
        // (appended when none does).
        struct Plan {
            size_t chain;
            std::vector<uint64_t> before;   // new index -> handle of the next kept rule
            std::vector<bool> kept;
        };
        std::vector<Plan> plans;
        for (size_t j = 0; j < t.chains.size(); ++j) {
            auto &oc = ot.chains[j], &c = t.chains[j];
            bool has_flow = reflow && std::any_of(oc.rules.begin(), oc.rules.end(), is_flow_rule);
            if (!has_flow && same_rules(oc.rules, c.rules)) continue;
            auto& handles = (*st.handles)[{t.name, c.name}];
            auto keep = common_rules(oc.rules, c.rules);
            if (reflow)
                for (size_t k = 0; k < oc.rules.size(); ++k)
                    if (is_flow_rule(oc.rules[k])) keep[k] = -1;
            Plan plan{j, std::vector<uint64_t>(c.rules.size() + 1, 0), std::vector<bool>(c.rules.size(), false)};
            std::vector<uint64_t> kept_handles;
            for (size_t k = 0; k < oc.rules.size(); ++k) {
                if (keep[k] >= 0) {
                    plan.kept[keep[k]] = true;
                    plan.before[keep[k]] = handles[k];
                    kept_handles.push_back(handles[k]);
                    continue;
                }
                RulePtr ru(nftnl_rule_alloc());
                nftnl_rule_set_str(ru.get(), NFTNL_RULE_TABLE, t.name.c_str());
                nftnl_rule_set_str(ru.get(), NFTNL_RULE_CHAIN, c.name.c_str());
                nftnl_rule_set_u32(ru.get(), NFTNL_RULE_FAMILY, fam);
                nftnl_rule_set_u64(ru.get(), NFTNL_RULE_HANDLE, handles[k]);
                auto* nlh = b.begin_message(NFT_MSG_DELRULE, fam, 0, "delete rule '" + oc.rules[k].text + "' in chain " + c.name);
                nftnl_rule_nlmsg_build_payload(nlh, ru.get());
                b.end_message(nlh);
            }
            for (size_t k = c.rules.size(); k-- > 0;)
                if (!plan.kept[k]) plan.before[k] = plan.before[k + 1];
            (*new_handles)[{t.name, c.name}] = kept_handles;
            plans.push_back(std::move(plan));
        }
        if (reflow && t.flowtable) {
            flowtable_message(b, t, NFT_MSG_DELFLOWTABLE);
            flowtable_message(b, t, NFT_MSG_NEWFLOWTABLE);
        }
        for (auto& plan : plans) {
            auto& c = t.chains[plan.chain];
            for (size_t k = 0; k < c.rules.size(); ++k)
                if (!plan.kept[k]) {
                    add_rule(b, t, c, c.rules[k], plan.before[k]);
                    added = true;
                }
        }
        // Interval sets: the intervals that go, then the ones that come.
        for (size_t j = 0; j < t.sets.size(); ++j) {
            auto &os = ot.sets[j], &s = t.sets[j];
            if (same_set(os, s)) continue;
            auto ou = interval_units(os), nu = interval_units(s);
            std::set<Elements> oset(ou.begin(), ou.end()), nset(nu.begin(), nu.end());
            Elements gone, come;
            for (auto& u : ou)
                if (!nset.count(u)) gone.insert(gone.end(), u.begin(), u.end());
            for (auto& u : nu)
                if (!oset.count(u)) come.insert(come.end(), u.begin(), u.end());
            auto set = new_set(t, s.name, s.id, NFT_SET_INTERVAL, s.ipv6 ? 8 : 7, s.ipv6 ? 16 : 4);
            std::string what = "set " + t.name + " " + s.name;
            if (!gone.empty()) add_elements(b, t, set, what + " elements removed", gone, NFT_MSG_DELSETELEM);
            if (!come.empty()) add_elements(b, t, set, what + " elements", come);
        }
    }
    b.end();
    if (b.messages() == 0) {
        // Nothing to change: still, the kernel must hold what the loader loaded.
        auto g = generation(st.nl.get());
        if (!g) {
            st.forget();
            return g.error();
        }
        if (*g != st.generation) return replace(r);
        st.loaded = r;
        return stats(b, true);
    }
    auto ans = transact(st.nl.get(), b);
    if (!ans) {
        st.forget();
        return ans.error();
    }
    if (ans->refused == ERESTART) return replace(r);   // the kernel holds something else
    if (ans->refused) {
        // The difference takes kernel paths the whole replacement does not (interval elements
        // deleted and added back in one transaction, a flowtable re-made in a table that stays).
        // Were one of them refused, sending the same difference again would keep the previous,
        // possibly more open, policy for good: send the whole replacement instead, once.
        syslog(LOG_WARNING, "nftables refused the change (%s); sending the whole ruleset", ans->error.c_str());
        auto whole = replace(r);
        if (whole) return whole;
        return Error{"nftables refused the change (" + ans->error + "), and the whole replacement: " +
                     whole.error().str()};
    }
    st.loaded = r;
    st.generation = next_generation(st.generation);
    if (added)
        st.handles.reset();
    else
        st.handles = std::move(new_handles);
    return stats(b, true);
}

namespace {

// One rule of the dump: its counters count for its chain when it ends in drop.
int add_rule_drops(const nlmsghdr* nlh, void* data) {
    auto* out = static_cast<std::map<std::string, DropCount>*>(data);
    RulePtr r(nftnl_rule_alloc());
    if (!r || nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return MNL_CB_OK;
    struct Seen {
        DropCount count;
        bool counted = false, drops = false;
    } seen;
    nftnl_expr_foreach(
        r.get(),
        [](nftnl_expr* e, void* d) -> int {
            auto* s = static_cast<Seen*>(d);
            const char* name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
            if (!name) return 0;
            if (std::strcmp(name, "counter") == 0) {
                s->counted = true;
                s->count += DropCount{nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS),
                                      nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES)};
            } else if (std::strcmp(name, "immediate") == 0 && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
                       static_cast<int>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) == NF_DROP) {
                s->drops = true;
            }
            return 0;
        },
        &seen);
    const char* chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN);
    if (chain && seen.counted && seen.drops) (*out)[chain] += seen.count;
    return MNL_CB_OK;
}

}  // namespace

namespace {

Result<std::map<std::string, DropCount>> drop_counts(mnl_socket* nl) {
    // A dump of the rules of netd's filter table only (the kernel filters by table).
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    uint32_t seq = static_cast<uint32_t>(time(nullptr));
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
    RulePtr filter(nftnl_rule_alloc());
    if (!filter) return Error{"nftables: out of memory"};
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, kFilterTable);
    nftnl_rule_set_u32(filter.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    std::map<std::string, DropCount> out;
    auto r = dump(nl, nlh, add_rule_drops, &out);
    if (!r) {
        if (r.error().err == ENOENT) return std::map<std::string, DropCount>{};   // no table (yet)
        return r.error();
    }
    return out;
}

}  // namespace

Result<std::map<std::string, DropCount>> read_drop_counts() {
    SocketPtr nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
    if (!nl) return Error{"nftables: netlink socket: " + std::string(std::strerror(errno))};
    if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        return Error{"nftables: bind: " + std::string(std::strerror(errno))};
    return drop_counts(nl.get());
}

Result<std::map<std::string, DropCount>> RulesetLoader::drop_counts() {
    if (!s_->nl) s_->nl = open_socket();
    if (!s_->nl) return Error{"nftables: netlink socket: " + std::string(std::strerror(errno))};
    auto r = netd::drop_counts(s_->nl.get());
    if (!r) s_->forget();
    return r;
}

}  // namespace netd
