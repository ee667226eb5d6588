// A Kernel for tests: an in-memory kernel (links, addresses, routes, sysctls, the loaded
// ruleset) that writes down every change as one line ("addr add eth1 192.168.7.1/24"), so
// tests assert the exact operations; an operation can be made to fail to test rollback.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernel.h"

namespace netd {

class RecordingKernel final : public Kernel {
public:
    // The kernel as found: links (name -> info), sysctls.
    std::vector<LinkInfo> link_list;
    int last_ifindex = 0;             // as the kernel's: a link made again gets a new index
    std::set<IfAddr> addrs;
    std::set<Route> route_set;        // netd's (what routes() returns: protocol 77)
    std::set<Route> foreign_routes;   // others' (not returned; still block the destination)
    std::map<std::string, std::string> sysctls;
    std::string ruleset_text;   // what the last load_ruleset loaded (render_nft)
    // The drop counters per chain: zero after each load (as the kernel's), then what a test sets.
    std::map<std::string, DropCount> drops;

    std::vector<std::string> ops;           // every change, in order
    // Refuse an operation: called with the op's line before it is applied; an Error fails it.
    std::function<std::optional<std::string>(const std::string& op)> refuse;

    void add_link(const std::string& name, const std::string& mac, unsigned mtu = 1500);
    LinkInfo* find(const std::string& name);

    Result<std::vector<LinkInfo>> links() override { return link_list; }
    Result<std::vector<IfAddr>> addresses() override { return std::vector<IfAddr>(addrs.begin(), addrs.end()); }
    Result<std::vector<Route>> routes() override { return std::vector<Route>(route_set.begin(), route_set.end()); }
    Status set_up(const std::string& link, bool up) override;
    Status set_mtu(const std::string& link, unsigned mtu) override;
    Status add_address(const IfAddr& a) override;
    Status del_address(const IfAddr& a) override;
    Status add_route(const Route& r) override;
    Status del_route(const Route& r) override;
    Status put_sit(const SitSpec& s) override;
    Status add_vlan(const VlanSpec& v) override;
    Status del_link(const std::string& link) override;
    Result<std::string> read_sysctl(const std::string& key) override;
    Status write_sysctl(const std::string& key, const std::string& value) override;
    Result<LoadStats> load_ruleset(const nft::Ruleset& r) override;
    Result<std::map<std::string, DropCount>> firewall_drops() override { return drops; }

private:
    Status op(const std::string& line);
};

}  // namespace netd
