// The reconciler: makes the kernel and the supervisor hold a DesiredState by reading back
// what is there (only what netd owns) and applying the difference, the firewall first:
//
//   1 the nftables ruleset (one transaction), when its text changed; its flowtable on the
//     devices that exist (a flowtable cannot name a missing one)
//   2 sysctls (forwarding only after the firewall)
//   3 the sit device (created or changed in place)
//   4 links: MTU, up
//   5 routes and addresses: unwanted routes, unwanted addresses, new addresses, new routes
//   6 links netd no longer manages: down if netd brought them up, MTU back to what netd
//     found (their sysctls went back in 2)
//   7 the sit device, when no longer wanted; then the whole ruleset, if 1 left the sit device
//     out of its flowtable (one more transaction, the flowtable made anew)
//   8 generated files, then services: started, restarted when their command line or
//     config file changed, stopped when no longer wanted
//
// What netd owns, and it touches nothing else: its routes carry kNetdRouteProto (a route
// someone else holds for the same destination is refused, not taken over); the addresses it
// added, the links it manages and brought up are recorded; so are the sysctls and MTUs it
// changed, with the value it found; the files it generated are removed when nothing wants them. That record (owned.json in the run directory, a tmpfs: it lives as long as the
// kernel state it describes) survives a restart of netd, so a netd started on a changed file
// releases a LAN NIC the previous one had configured.
//
// converge() stops at the first refused operation and returns the error: the caller then
// converges on the previous desired state (a rollback is just another convergence).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "desired_state.h"
#include "kernel.h"
#include "supervisor.h"

namespace netd {

struct Applied {
    std::vector<std::string> kernel;     // "addr add eth1 192.168.7.1/24", ...
    std::vector<std::string> services;   // "write /run/netd/dnsmasq.conf", "restart dnsmasq", ...
    size_t count() const { return kernel.size() + services.size(); }
};

class Reconciler {
public:
    Reconciler(Kernel& k, ServiceControl& s, std::string owned_path);

    // Apply the difference. `applied` receives what was done, also on failure.
    Status converge(const DesiredState& want, Applied& applied);
    // Nothing managed any more (netd's config cannot be applied at all): links released,
    // services stopped. The ruleset stays loaded: netd never opens the firewall.
    DesiredState nothing() const { return {}; }
    // The last ruleset load (netd's figures for status); a new Reconciler (a restarted netd)
    // knows none, so its first converge loads the ruleset once.
    struct RulesetLoad {
        size_t messages = 0, bytes = 0;
        double ms = 0;
    };
    const std::optional<RulesetLoad>& last_ruleset_load() const { return ruleset_load_; }
    // What the kernel's counters held when netd replaced or deleted their object: the drops of
    // each ruleset a load replaced (per chain; a whole replacement starts the counters over, a
    // change of just what changed only loses the deleted rules' counts), the traffic of
    // the sit device when it was deleted. Added to the kernel's live figures, netd's totals
    // (metrics.h) never go back. Counts of the last moment before the change may be missed.
    const std::map<std::string, DropCount>& retired_drops() const { return retired_drops_; }
    const LinkTraffic& retired_tunnel_traffic() const { return retired_tunnel_; }

private:
    Status converge_kernel(const DesiredState& want, Applied& applied);
    Status converge_services(const DesiredState& want, Applied& applied);
    void load_owned();
    void save_owned();

    Kernel& kernel_;
    ServiceControl& services_;
    std::string owned_path_;
    std::string loaded_ruleset_;   // the text loaded last, with its flowtable devices' indexes
    std::optional<RulesetLoad> ruleset_load_;
    std::map<std::string, DropCount> retired_drops_;
    LinkTraffic retired_tunnel_;
    std::set<std::string> owned_links_;
    std::map<std::string, std::string> sysctl_original_;
    std::map<std::string, unsigned> mtu_original_;
    std::set<std::string> down_original_;   // links netd brought up
    std::set<IfAddr> owned_addrs_;
    std::set<std::string> owned_files_;   // generated files, removed when no longer wanted
};

}  // namespace netd
