#include "wan.h"

#include <syslog.h>

#include <nlohmann/json.hpp>

namespace netd {

const char* to_string(Wan::Phase p) {
    switch (p) {
        case Wan::Phase::down: return "down";
        case Wan::Phase::waiting: return "waiting for a lease";
        case Wan::Phase::bound: return "bound";
        case Wan::Phase::nak: return "refused by the DHCP server (NAK)";
        case Wan::Phase::no_answer: return "no answer from a DHCP server";
    }
    return "?";
}

void Wan::set_link(const std::string& name) {
    if (name == ifname_) return;
    ifname_ = name;
    state_ = State{Phase::waiting, std::nullopt, std::chrono::steady_clock::now(), ""};
}

Wan::State Wan::next(const DhcpEvent& ev, std::chrono::steady_clock::time_point now) const {
    State s = state_;
    switch (ev.action) {
        case DhcpAction::deconfig:
            // At udhcpc's start, and when a lease is lost: nothing of the lease stays.
            s.lease.reset();
            s.phase = Phase::waiting;
            s.since = now;
            return s;
        case DhcpAction::nak:
            s.message = ev.message;
            if (!s.lease) s.phase = Phase::nak;
            return s;
        case DhcpAction::leasefail:
            if (!s.lease) {
                s.phase = Phase::no_answer;
                s.since = now;
            }
            return s;
        case DhcpAction::bound:
        case DhcpAction::renew:
            break;
    }
    if (s.phase != Phase::bound || !s.lease || s.lease->address != ev.lease->address) s.since = now;
    s.phase = Phase::bound;
    s.lease = ev.lease;
    return s;
}

void Wan::note_rejected(const std::string& reason) {
    ++rejected_;
    last_rejected_ = reason;
}

void Wan::note_refused(const std::string& reason) { refused_ = reason; }

namespace {

std::string join(const std::vector<Ipv4Addr>& v) {
    std::string o;
    for (auto& a : v) o += (o.empty() ? "" : " ") + a.str();
    return o;
}

}  // namespace

std::string Wan::status_line() const {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - state_.since).count();
    std::string o = (ifname_.empty() ? std::string("?") : ifname_) + " " + to_string(state_.phase);
    if (auto& l = state_.lease) {
        o += " " + l->address.str();
        o += " router " + (l->routers.empty() ? std::string("none") : l->routers.front().str());
        if (!l->dns.empty()) o += " dns " + join(l->dns);
        if (l->mtu) o += " mtu " + std::to_string(*l->mtu);
        o += " lease " + std::to_string(l->lease_seconds) + "s";
    }
    o += " (for " + std::to_string(secs) + "s)";
    if (state_.phase == Phase::nak && !state_.message.empty()) o += " server said: " + state_.message;
    if (rejected_) o += "\n          " + std::to_string(rejected_) + " lease event(s) rejected, last: " + last_rejected_;
    if (!refused_.empty()) o += "\n          last lease REFUSED by the kernel (rolled back): " + refused_;
    return o;
}

nlohmann::json Wan::status_json() const {
    nlohmann::json j = {{"interface", ifname_}, {"state", to_string(state_.phase)}};
    if (auto& l = state_.lease) {
        j["address"] = l->address.str();
        j["router"] = l->routers.empty() ? "" : l->routers.front().str();
        auto& dns = j["dns"] = nlohmann::json::array();
        for (auto& d : l->dns) dns.push_back(d.str());
        j["lease_s"] = l->lease_seconds;
        j["mtu"] = l->mtu.value_or(0);
    }
    j["rejected_events"] = rejected_;
    j["last_rejected"] = last_rejected_;
    j["last_refused"] = refused_;
    return j;
}

std::optional<DhcpLease> static_wan_lease(const WanConfig& w) {
    if (!w.ipv4) return std::nullopt;
    DhcpLease l;
    l.address = *w.ipv4;
    if (w.gateway) l.routers.push_back(*w.gateway);
    l.dns = w.dns;
    return l;
}

void add_wan(DesiredState& d, const LinkInfo& link, const std::optional<DhcpLease>& lease) {
    d.wan_if = link.name;
    d.links.push_back({link.name, true, lease ? lease->mtu : std::nullopt});
    // The IPv4-only ISP's RAs are not the router's business.
    d.sysctls[accept_ra_key(link.name)] = "0";
    if (!lease) return;
    d.addresses.insert({link.name, IpCidr::v4(lease->address)});
    if (!lease->routers.empty())
        d.routes.insert({IpCidr::default_route(4), link.name, IpCidr::v4(lease->routers.front())});
}

}  // namespace netd
