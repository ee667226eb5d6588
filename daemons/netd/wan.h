// The WAN uplink: applies checked udhcpc lease events to the WAN link over netlink (address,
// default route, MTU) and keeps the lease state for `netctl status`. Values are checked before
// they get here (dhcp_lease.h); this module only turns a new lease into the smallest change:
// a renew with the same values touches nothing, deconfig removes exactly what bound applied.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "dhcp_lease.h"
#include "netlink.h"

namespace netd {

class Wan {
public:
    enum class Phase { down, waiting, bound, nak, no_answer };

    struct Changes {
        bool address = false;  // the WAN IPv4 address changed (the tunnel must follow)
        bool dns = false;
        bool ntp = false;
        bool any() const { return address || dns || ntp; }
    };

    explicit Wan(Netlink& nl) : nl_(nl) {}

    // The WAN link (found by MAC at each config load). Forgets a lease on another link.
    void set_link(int ifindex, const std::string& name);
    int ifindex() const { return ifindex_; }
    const std::string& ifname() const { return ifname_; }

    Result<Changes> handle(const DhcpEvent& ev);
    void note_rejected(const std::string& reason);

    Phase phase() const { return phase_; }
    const std::optional<DhcpLease>& lease() const { return lease_; }
    std::string status_line() const;   // one line for `netctl status`
    std::string status_json() const;

private:
    Netlink& nl_;
    int ifindex_ = 0;
    std::string ifname_;
    Phase phase_ = Phase::down;
    std::optional<DhcpLease> lease_;
    std::chrono::steady_clock::time_point since_{};
    std::string last_message_;
    unsigned rejected_ = 0;
    std::string last_rejected_;
};

const char* to_string(Wan::Phase p);

}  // namespace netd
