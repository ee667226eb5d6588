// load_ruleset(): the ruleset model as one nftables transaction (libnftnl builds the messages,
// libmnl talks to the kernel). Every message asks for an acknowledgement, so the answer names
// the first message the kernel refused; the kernel then aborts the whole batch.
#include "firewall.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>

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
using SocketPtr = std::unique_ptr<mnl_socket, Deleter<mnl_socket, [](mnl_socket* s) { mnl_socket_close(s); }>>;

constexpr size_t kMaxMessage = 256 * 1024;  // room reserved for any one message
constexpr size_t kElementsPerMessage = 512;

// The batch: messages appended into one growing buffer, each remembered for error reports.
class Batch {
public:
    Batch() : seq_(static_cast<uint32_t>(time(nullptr))) {}

    nlmsghdr* begin_message(uint16_t type, uint16_t family, uint16_t flags, std::string what) {
        buf_.resize(used_ + kMaxMessage);
        std::memset(buf_.data() + used_, 0, kMaxMessage);
        uint32_t seq = seq_++;
        what_[seq] = std::move(what);
        last_seq_ = seq;
        return nftnl_nlmsg_build_hdr(buf_.data() + used_, type, family, flags | NLM_F_ACK, seq);
    }
    void end_message(nlmsghdr* nlh) {
        used_ += NLMSG_ALIGN(nlh->nlmsg_len);
        ++messages_;
    }
    void begin() { control(NFNL_MSG_BATCH_BEGIN); }
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
void add_elements(Batch& b, const Table& t, const SetPtr& proto, const std::string& what,
                  const std::vector<std::pair<std::vector<uint8_t>, bool>>& elems) {
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
        auto* nlh = b.begin_message(NFT_MSG_NEWSETELEM, static_cast<uint16_t>(t.family), NLM_F_CREATE, what);
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

void build_batch(Batch& b, const Ruleset& r) {
    b.begin();
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
            // As nft does: a zero-length interval end at address 0 when the first interval does
            // not start there, then each interval as start element and end element.
            std::vector<std::pair<std::vector<uint8_t>, bool>> elems;
            size_t klen = s.ipv6 ? 16 : 4;
            if (!s.intervals.empty() && s.intervals.front().start != std::vector<uint8_t>(klen, 0))
                elems.push_back({std::vector<uint8_t>(klen, 0), true});
            for (auto& iv : s.intervals) {
                elems.push_back({iv.start, false});
                if (iv.end) elems.push_back({*iv.end, true});
            }
            add_elements(b, t, set, what + " elements", elems);
        }
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

            for (auto& rule : c.rules) {
                for (auto& a : rule.anon_sets) {
                    auto set = new_set(t, "__set%d", a.id, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT, a.key_type, a.key_len);
                    nftnl_set_set_u32(set.get(), NFTNL_SET_DESC_SIZE, static_cast<uint32_t>(a.elements.size()));
                    std::string what = "anonymous set of rule '" + rule.text + "'";
                    nlh = b.begin_message(NFT_MSG_NEWSET, fam, NLM_F_CREATE, what);
                    nftnl_set_nlmsg_build_payload(nlh, set.get());
                    b.end_message(nlh);
                    std::vector<std::pair<std::vector<uint8_t>, bool>> elems;
                    for (auto& e : a.elements) elems.push_back({e, false});
                    add_elements(b, t, set, what, elems);
                }
                RulePtr ru(nftnl_rule_alloc());
                nftnl_rule_set_str(ru.get(), NFTNL_RULE_TABLE, t.name.c_str());
                nftnl_rule_set_str(ru.get(), NFTNL_RULE_CHAIN, c.name.c_str());
                nftnl_rule_set_u32(ru.get(), NFTNL_RULE_FAMILY, fam);
                for (auto& e : rule.exprs) nftnl_rule_add_expr(ru.get(), make_expr(e));
                nlh = b.begin_message(NFT_MSG_NEWRULE, fam, NLM_F_CREATE | NLM_F_APPEND,
                                      "rule '" + rule.text + "' in chain " + c.name);
                nftnl_rule_nlmsg_build_payload(nlh, ru.get());
                b.end_message(nlh);
            }
        }
    }
    b.end();
}

}  // namespace

Result<LoadStats> load_ruleset(const Ruleset& r) {
    Batch b;
    build_batch(b, r);

    SocketPtr nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
    if (!nl) return Error{"nftables: netlink socket: " + std::string(std::strerror(errno))};
    if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        return Error{"nftables: bind: " + std::string(std::strerror(errno))};
    // The whole batch goes in one sendmsg: the socket buffer must hold it.
    int size = static_cast<int>(b.size() + 65536);
    setsockopt(mnl_socket_get_fd(nl.get()), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
    // One acknowledgement per message comes back, queued before we read any: without
    // NETLINK_CAP_ACK each one carries the whole message it answers (a large blocklist's
    // element messages), and the receive buffer overflows (ENOBUFS). Capped, an answer is
    // 36 bytes; the buffer holds all of them.
    int one = 1;
    setsockopt(mnl_socket_get_fd(nl.get()), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    int rcv = static_cast<int>(std::max<size_t>(1 << 20, (b.messages() + 2) * 256));
    setsockopt(mnl_socket_get_fd(nl.get()), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
    if (mnl_socket_sendto(nl.get(), b.data(), b.size()) < 0)
        return Error{"nftables: sending the batch: " + std::string(std::strerror(errno))};

    // One answer per message; the last message's answer ends the exchange.
    uint32_t portid = mnl_socket_get_portid(nl.get());
    std::vector<char> buf(1 << 16);
    struct Answer {
        const Batch* b;
        std::string error;
        bool done = false;
    } ans{&b, {}, false};
    while (!ans.done) {
        pollfd p{mnl_socket_get_fd(nl.get()), POLLIN, 0};
        int pr = poll(&p, 1, 10000);
        if (pr == 0) return Error{"nftables: no answer from the kernel within 10 s"};
        if (pr < 0) return Error{"nftables: poll: " + std::string(std::strerror(errno))};
        ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
        if (n < 0) return Error{"nftables: receiving the answer: " + std::string(std::strerror(errno))};
        mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
        ctl[NLMSG_ERROR] = [](const nlmsghdr* nlh, void* data) -> int {
            auto* a = static_cast<Answer*>(data);
            auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
            if (err->error != 0 && a->error.empty())
                a->error = a->b->what(err->msg.nlmsg_seq) + ": " + std::strerror(-err->error);
            if (err->msg.nlmsg_seq == a->b->last_seq() || (err->error != 0 && a->b->what(err->msg.nlmsg_seq) == "the batch"))
                a->done = true;
            return MNL_CB_OK;
        };
        int rc = mnl_cb_run2(buf.data(), static_cast<size_t>(n), 0, portid, nullptr, &ans, ctl, NLMSG_MIN_TYPE);
        if (rc < 0 && ans.error.empty())
            return Error{"nftables: reading the answer: " + std::string(std::strerror(errno))};
    }
    if (!ans.error.empty()) return Error{"nftables refused the ruleset (nothing changed): " + ans.error};
    return LoadStats{b.messages(), b.size()};
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

Result<std::map<std::string, DropCount>> read_drop_counts() {
    SocketPtr nl(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
    if (!nl) return Error{"nftables: netlink socket: " + std::string(std::strerror(errno))};
    if (mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        return Error{"nftables: bind: " + std::string(std::strerror(errno))};
    // A dump of the rules of netd's filter table only (the kernel filters by table).
    std::vector<char> buf(1 << 16);
    uint32_t seq = static_cast<uint32_t>(time(nullptr));
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
    RulePtr filter(nftnl_rule_alloc());
    if (!filter) return Error{"nftables: out of memory"};
    nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, kFilterTable);
    nftnl_rule_set_u32(filter.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_nlmsg_build_payload(nlh, filter.get());
    if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0)
        return Error{"nftables: asking for the rules: " + std::string(std::strerror(errno))};
    uint32_t portid = mnl_socket_get_portid(nl.get());
    std::map<std::string, DropCount> out;
    for (;;) {
        pollfd p{mnl_socket_get_fd(nl.get()), POLLIN, 0};
        int pr = poll(&p, 1, 5000);
        if (pr == 0) return Error{"nftables: no answer from the kernel within 5 s"};
        if (pr < 0) return Error{"nftables: poll: " + std::string(std::strerror(errno))};
        ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
        if (n < 0) return Error{"nftables: reading the rules: " + std::string(std::strerror(errno))};
        int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, add_rule_drops, &out);
        if (rc == MNL_CB_STOP) break;   // the end of the dump
        if (rc < 0) {
            if (errno == ENOENT) return std::map<std::string, DropCount>{};   // no table (yet)
            return Error{"nftables: reading the rules: " + std::string(std::strerror(errno))};
        }
    }
    return out;
}

}  // namespace netd
