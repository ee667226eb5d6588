#include "wan.h"

#include <syslog.h>

#include "control.h"

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

void Wan::set_link(int ifindex, const std::string& name) {
    if (ifindex != ifindex_) {
        lease_.reset();
        phase_ = Phase::waiting;
        since_ = std::chrono::steady_clock::now();
    }
    ifindex_ = ifindex;
    ifname_ = name;
}

namespace {

std::string join(const std::vector<Ipv4Addr>& v) {
    std::string o;
    for (auto& a : v) o += (o.empty() ? "" : " ") + a.str();
    return o;
}

}  // namespace

Result<Wan::Changes> Wan::handle(const DhcpEvent& ev) {
    Changes ch;
    auto now = std::chrono::steady_clock::now();
    switch (ev.action) {
        case DhcpAction::deconfig:
            // At udhcpc's start, and when a lease is lost: remove what bound applied.
            if (lease_) {
                if (!lease_->routers.empty())
                    if (auto st = nl_.del_default_route(ifindex_); !st) return st.error();
                if (auto st = nl_.del_address(ifindex_, lease_->address); !st) return st.error();
                syslog(LOG_NOTICE, "wan: lease %s on %s removed", lease_->address.str().c_str(), ifname_.c_str());
                ch.address = true;
                ch.dns = !lease_->dns.empty();
                ch.ntp = !lease_->ntp.empty();
                lease_.reset();
            }
            phase_ = Phase::waiting;
            since_ = now;
            return ch;
        case DhcpAction::nak:
            last_message_ = ev.message;
            syslog(LOG_WARNING, "wan: DHCP NAK on %s: %s", ifname_.c_str(), ev.message.c_str());
            phase_ = lease_ ? phase_ : Phase::nak;
            return ch;
        case DhcpAction::leasefail:
            syslog(LOG_WARNING, "wan: no DHCP answer on %s; udhcpc keeps trying", ifname_.c_str());
            if (!lease_) {
                phase_ = Phase::no_answer;
                since_ = now;
            }
            return ch;
        case DhcpAction::bound:
        case DhcpAction::renew:
            break;
    }
    const DhcpLease& n = *ev.lease;
    const DhcpLease* o = lease_ ? &*lease_ : nullptr;
    if (!o || o->address != n.address) {
        if (o)
            if (auto st = nl_.del_address(ifindex_, o->address); !st) return st.error();
        if (auto st = nl_.add_address(ifindex_, n.address); !st) return st.error();
        ch.address = true;
    }
    if (n.mtu && (!o || o->mtu != n.mtu))
        if (auto st = nl_.set_mtu(ifindex_, *n.mtu); !st) return st.error();
    // The route follows the address: deleting an address takes its routes with it.
    if (ch.address || !o || o->routers != n.routers) {
        if (!n.routers.empty()) {
            if (auto st = nl_.replace_default_route(ifindex_, n.routers.front()); !st) return st.error();
        } else if (o && !o->routers.empty()) {
            if (auto st = nl_.del_default_route(ifindex_); !st) return st.error();
        }
    }
    ch.dns = !o ? !n.dns.empty() : o->dns != n.dns;
    ch.ntp = !o ? !n.ntp.empty() : o->ntp != n.ntp;
    if (ch.any() || !o)
        syslog(LOG_NOTICE, "wan: %s %s on %s, router %s, dns %s, lease %us", to_string(ev.action),
               n.address.str().c_str(), ifname_.c_str(), n.routers.empty() ? "none" : n.routers.front().str().c_str(),
               join(n.dns).c_str(), n.lease_seconds);
    else
        syslog(LOG_INFO, "wan: %s %s on %s: nothing changed", to_string(ev.action), n.address.str().c_str(),
               ifname_.c_str());
    if (phase_ != Phase::bound || ch.address) since_ = now;
    phase_ = Phase::bound;
    lease_ = n;
    return ch;
}

void Wan::note_rejected(const std::string& reason) {
    ++rejected_;
    last_rejected_ = reason;
}

std::string Wan::status_line() const {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - since_).count();
    std::string o = (ifname_.empty() ? std::string("?") : ifname_) + " " + to_string(phase_);
    if (lease_) {
        o += " " + lease_->address.str();
        o += " router " + (lease_->routers.empty() ? std::string("none") : lease_->routers.front().str());
        if (!lease_->dns.empty()) o += " dns " + join(lease_->dns);
        if (lease_->mtu) o += " mtu " + std::to_string(*lease_->mtu);
        o += " lease " + std::to_string(lease_->lease_seconds) + "s";
    }
    o += " (for " + std::to_string(secs) + "s)";
    if (phase_ == Phase::nak && !last_message_.empty()) o += " server said: " + last_message_;
    if (rejected_) o += "\n          " + std::to_string(rejected_) + " lease event(s) rejected, last: " + last_rejected_;
    return o;
}

std::string Wan::status_json() const {
    std::string o = "{\"interface\":" + json_escape(ifname_) + ",\"state\":" + json_escape(to_string(phase_));
    if (lease_) {
        o += ",\"address\":" + json_escape(lease_->address.str());
        o += ",\"router\":" + json_escape(lease_->routers.empty() ? "" : lease_->routers.front().str());
        o += ",\"dns\":[";
        for (size_t i = 0; i < lease_->dns.size(); ++i) o += (i ? "," : "") + json_escape(lease_->dns[i].str());
        o += "],\"lease_s\":" + std::to_string(lease_->lease_seconds);
        o += ",\"mtu\":" + std::to_string(lease_->mtu.value_or(0));
    }
    o += ",\"rejected_events\":" + std::to_string(rejected_) + ",\"last_rejected\":" + json_escape(last_rejected_) + "}";
    return o;
}

}  // namespace netd
