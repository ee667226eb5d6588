// The top-level daemon object: the only one that sees every module. Loads the config,
// configures the LAN over netlink, generates the daemons' configs and keeps them supervised;
// reloads on SIGHUP (a bad file keeps the running configuration), stops them on SIGTERM.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "config.h"
#include "control.h"
#include "event_loop.h"
#include "firewall.h"
#include "netlink.h"
#include "service_configs.h"
#include "supervisor.h"
#include "tunnel.h"
#include "wan.h"

namespace netd {

struct DaemonOptions {
    std::string config_path = "/data/etc/router.conf";
    std::string run_dir = kRunDir;
    std::string udhcpc_hook = "/etc/udhcpc/netd-hook";
    std::string self_exe = "/usr/sbin/netd";   // runs the tunnel's update helper
};

class Daemon {
public:
    Daemon(EventLoop& loop, Netlink& nl, Supervisor& sup, DaemonOptions opts);

    void start();   // first load; errors are logged and netd keeps running (reload may fix them)
    void reload();  // SIGHUP
    void stop(std::function<void()> done);

    // A request from the control socket: status [--json], reload, restart SERVICE, firewall
    // (netctl) and dhcp-event ACTION KEY=VALUE... (the udhcpc hook, through netctl).
    ControlReply control(const std::vector<std::string>& args);

    const std::optional<Config>& running_config() const { return running_; }
    const std::string& last_error() const { return last_error_; }

private:
    Status apply(const Config& c);
    Status load_firewall(const Config& c);
    Status apply_services(const Config& c);
    ControlReply dhcp_event(const std::vector<std::string>& args, bool replay = false);
    void wan_address_changed();
    std::string status_text();
    std::string status_json();

    EventLoop& loop_;
    Netlink& nl_;
    Supervisor& sup_;
    DaemonOptions opts_;
    std::optional<Config> running_;
    RuntimeFacts facts_;
    std::string last_error_;
    std::string lan_ifname_;
    Wan wan_;
    Tunnel tunnel_;
    std::chrono::steady_clock::time_point wan_changed_at_{};
    std::string firewall_text_;   // what the kernel holds, as nft text (empty: not loaded yet)
    std::string firewall_info_;   // when and how it was loaded
    bool forwarding_ = false;
    bool announced_ready_ = false;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace netd
