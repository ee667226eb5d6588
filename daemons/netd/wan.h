// The WAN uplink: the lease state from checked udhcpc events (dhcp_lease.h checks every
// value first), and the WAN's part of the desired state (address, IPv4 default route, MTU,
// the resolvers for dnsmasq). Applying is the reconciler's job: an event yields the next
// state, which becomes current only once the kernel holds it (commit), so a lease the kernel
// refuses leaves nothing behind.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "desired_state.h"
#include "dhcp_lease.h"

namespace netd {

class Wan {
public:
    enum class Phase { down, waiting, bound, nak, no_answer };

    struct State {
        Phase phase = Phase::down;
        std::optional<DhcpLease> lease;
        std::chrono::steady_clock::time_point since{};
        std::string message;   // the server's text with a NAK
    };

    // A new WAN link (found at each config load): a lease on another link is forgotten.
    void set_link(const std::string& name);
    const std::string& ifname() const { return ifname_; }

    // The state after the event (pure).
    State next(const DhcpEvent& ev, std::chrono::steady_clock::time_point now) const;
    void commit(State s) { state_ = std::move(s); }

    void note_rejected(const std::string& reason);         // hostile or malformed event
    void note_refused(const std::string& reason);          // the kernel refused the lease
    const State& state() const { return state_; }
    const std::optional<DhcpLease>& lease() const { return state_.lease; }
    std::string status_line() const;   // one line (and a second with rejections) for `netctl status`
    nlohmann::json status_json() const;

private:
    std::string ifname_;
    State state_;
    unsigned rejected_ = 0;
    std::string last_rejected_;
    std::string refused_;
};

const char* to_string(Wan::Phase p);

// A static [wan] ipv4 as the lease it stands for (gateway and dns as a server would send them).
std::optional<DhcpLease> static_wan_lease(const WanConfig& w);

// The WAN's part of the desired state.
void add_wan(DesiredState& d, const LinkInfo& link, const std::optional<DhcpLease>& lease);

}  // namespace netd
