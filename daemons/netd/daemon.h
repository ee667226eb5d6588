// The composition: the only object that sees every module. Each input (the config file, a
// lease event, a netd start) becomes a desired state (desired_state.h), which the reconciler
// makes real (reconcile.h); a transition the kernel refuses part-way goes back to the previous
// desired state, whole. The tunnel handler is told where the WAN went afterwards.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "config_store.h"
#include "control.h"
#include "desired_state.h"
#include "event_loop.h"
#include "kernel.h"
#include "metrics.h"
#include "names6.h"
#include "native6.h"
#include "reconcile.h"
#include "supervisor.h"
#include "tic.h"
#include "tunnel.h"
#include "wan.h"

namespace netd {

struct DaemonOptions {
    std::string config_path = "/data/etc/router.conf";
    Paths paths;
    std::string state_dir = "/data/state";   // persistent state (the TIC cache and login record)
    // Names of IPv6 hosts (names6.h): the neighbour table and the all-nodes ping. Unset: the
    // job does not run (tests that do not look at it).
    Names6::NeighbourSource names6_neighbours;
    Names6::Pinger names6_ping;
    std::string dnsmasq_leases = "/data/var/lib/misc/dnsmasq.leases";
    // The data disk's format version (kDataFormat): an older one is migrated, a newer one
    // refused (netd then configures nothing and touches nothing on it). "": not checked
    // (main sets /data/.layout).
    std::string data_format_file;
};

// The layout of the data disk this netd writes. 1: router.conf, ssh, state. 2: adds the
// configuration history and the pending trial under the state directory.
constexpr int kDataFormat = 2;

class Daemon {
public:
    Daemon(Kernel& k, ServiceControl& sup, Scheduler& sched, UpdateRunner& updates, DatagramSender& datagrams,
           DaemonOptions opts);

    // First convergence: adopts the children a previous netd left, replays the lease udhcpc
    // holds, then converges on the file (or, if it is broken, on the configuration the previous
    // netd ran). Errors are reported and netd keeps running (a reload may fix them).
    void start();
    void reload();  // SIGHUP and netctl reload
    void stop(std::function<void()> done);
    // The kernel said its links changed (netlink link notifications, main.cc). Soon after,
    // if a link came, went or was made anew since the last convergence (a NIC plugged in or
    // unplugged, a device deleted by hand), netd converges again on what runs, or reloads the
    // file if nothing runs yet (a NIC it names was missing). Changes of a link's state alone
    // (up, down, carrier) are not followed.
    void links_changed();

    // A request from the control socket (commands.h).
    ControlReply control(const std::vector<std::string>& args);

    // Whether a control command has a handler (every one in commands.h must).
    static bool handles(const std::string& command);

    const std::optional<Config>& running_config() const { return running_; }
    const std::string& last_error() const { return last_error_; }
    const Applied& last_applied() const { return last_applied_; }

private:
    // Converges on (c, lease); on failure converges back on the previous state. The error
    // names what the kernel refused.
    Status transition(const Config& c, const std::optional<DhcpLease>& lease);
    // The same with the LAN's IPv6 as given (a DHCPv6 event's candidate delegation).
    Status transition(const Config& c, const std::optional<DhcpLease>& lease, const Ipv6Facts& f6);
    // Converges again when the IPv6 facts change by themselves (auto's wait, a delegation that
    // runs out, a deprecated prefix's time).
    void schedule_ipv6(const Ipv6Facts& f6);
    // The names of IPv6 hosts: every kNamesRefresh the hosts file dnsmasq reads is rewritten
    // from the DHCPv4 leases and the neighbour table; every kNamesProbe (and soon after a
    // start or a lease) all nodes of each segment are pinged first.
    void names_tick(bool probe);
    // links_changed's second half; the links as lines "ifindex name mac" ("" when unreadable).
    void check_links();
    std::string links_signature();
    // After a convergence: the links as it left them, as far as netd knows. Those it makes and
    // deletes itself (the sit device, the VLAN links before and after) as they are now, every
    // other as it was when the desired state was made (`before`): another link made anew
    // meanwhile still differs then, and its notification is followed.
    void remember_links(const std::vector<LinkInfo>& before, const DesiredState& want);
    std::vector<NameSegment> name_segments() const;
    // A configuration (reload, or the previous netd's at start): the WAN lease goes with it
    // only when the WAN link stays the same.
    Status apply_config(const Config& c);
    void follow_tunnel(const Config& c, bool reloaded);
    // [tunnel] with TIC (tic.h): c.tunnel becomes the tunnel the parameters make, or none while
    // they are not known. tic_configure hands the file's settings to the TIC client (which may
    // then contact TIC); tic_cached only looks at the cache. tic_changed: a fetch ended.
    void tic_configure(Config& c);
    void tic_cached(Config& c);
    void tic_changed();
    std::optional<Ipv4Addr> wan_address() const;
    std::optional<TunnelTraffic> tunnel_traffic();  // the sit device's counters
    std::string wan_status_line() const;            // the lease, or the static address
    using Handler = ControlReply (Daemon::*)(const std::vector<std::string>& args);
    static const std::map<std::string, Handler>& handlers();
    ControlReply cmd_status(const std::vector<std::string>& args);
    ControlReply cmd_reload(const std::vector<std::string>& args);
    ControlReply cmd_firewall(const std::vector<std::string>& args);
    ControlReply cmd_tunnel_update(const std::vector<std::string>& args);
    ControlReply cmd_restart(const std::vector<std::string>& args);
    // Commit-confirm (config_store.h): apply (and edit) and rollback start a trial, confirm
    // keeps it, cancel or the deadline ends it with the previous configuration back.
    ControlReply cmd_apply(const std::vector<std::string>& args);
    ControlReply cmd_confirm(const std::vector<std::string>& args);
    ControlReply cmd_cancel(const std::vector<std::string>& args);
    ControlReply cmd_history(const std::vector<std::string>& args);
    ControlReply cmd_diff(const std::vector<std::string>& args);
    ControlReply cmd_rollback(const std::vector<std::string>& args);
    ControlReply start_trial(const std::string& text, const std::string& label, const std::vector<std::string>& args,
                             size_t seconds_at, const std::string& how);
    // The trial ends without its confirm: the configuration that ran before it comes back.
    void end_trial(const std::string& why);
    // Parsed and checked by the caller: converges on c and makes it the running configuration.
    Status adopt(Config c, const std::string& text);
    // The data disk's format: "" when this netd may use it, else why not.
    std::string check_data_format();
    ControlReply dhcp_event(const std::vector<std::string>& args);
    ControlReply ntp_event(const std::vector<std::string>& args);
    ControlReply dhcp6_event(const std::vector<std::string>& args);
    std::string status_text();
    std::string status_json();
    // netctl metrics (metrics.h): the counters and gauges, read now.
    ControlReply cmd_metrics(const std::vector<std::string>& args);
    // netctl log reads /data/log itself (log_files.h): a request that reaches netd is answered so.
    ControlReply cmd_log(const std::vector<std::string>& args);
    std::vector<MetricFamily> metrics();
    // Counts a change of the WAN's IPv4 address once a transition to d succeeded.
    void note_wan_address(const DesiredState& d);
    void count_reload(bool ok);

    Kernel& kernel_;
    ServiceControl& sup_;
    Scheduler& sched_;
    UpdateRunner& updates_;
    DatagramSender& datagrams_;
    DaemonOptions opts_;
    Reconciler reconciler_;
    Wan wan_;
    std::optional<Config> running_;
    std::string running_text_;                // the text running_ was parsed from
    ConfigStore store_;
    std::optional<Trial> trial_;              // applied, waiting for its confirm
    std::string trial_previous_;              // the text that ran before it
    Registration trial_timer_;
    std::string data_refused_;                // the data disk's format is newer than netd's
    std::optional<DesiredState> current_;     // what the kernel and the supervisor hold
    Native6 native6_;
    Registration ipv6_timer_;
    std::optional<Names6> names6_;
    Registration names_timer_;
    unsigned names_ticks_ = 0;
    Registration links_timer_;
    std::chrono::steady_clock::time_point links_burst_{};   // the first notification of a burst
    std::string links_seen_;                  // links_signature() after the last convergence
    bool stopping_ = false;
    std::unique_ptr<TunnelHandler> tunnel_;
    std::unique_ptr<TicClient> tic_;          // made when a [tunnel] first names tic_server
    TunnelConfig tunnel_cfg_;
    bool clock_synced_ = false;
    std::string last_error_;                  // config errors or a refused transition
    std::string last_transition_;             // what the last transition did, for status
    Applied last_applied_;
    std::string firewall_info_;
    std::chrono::steady_clock::time_point wan_changed_at_{};
    bool announced_ready_ = false;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();
    EventCounters counters_;
    bool first_load_ = true;                  // netd's start: its load is not a reload
    bool wan_seen_ = false;                   // the WAN address of the first convergence is known
    std::optional<IpCidr> wan_address_;       // the IPv4 address on the WAN link, as applied
};

}  // namespace netd
