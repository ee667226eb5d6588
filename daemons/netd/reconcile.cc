#include "reconcile.h"

#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace netd {

Reconciler::Reconciler(Kernel& k, ServiceControl& s, std::string owned_path)
    : kernel_(k), services_(s), owned_path_(std::move(owned_path)) {
    load_owned();
}

void Reconciler::load_owned() {
    std::ifstream in(owned_path_);
    if (!in) return;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        syslog(LOG_WARNING, "reconcile: %s is not valid JSON: ignored", owned_path_.c_str());
        return;
    }
    // (Each list is copied out first: iterating a temporary's items() would dangle.)
    auto links = j.value("links", nlohmann::json::array());
    for (auto& l : links)
        if (l.is_string()) owned_links_.insert(l.get<std::string>());
    auto sysctls = j.value("sysctl_original", nlohmann::json::object());
    for (auto& [k, v] : sysctls.items())
        if (v.is_string()) sysctl_original_[k] = v.get<std::string>();
    auto mtus = j.value("mtu_original", nlohmann::json::object());
    for (auto& [k, v] : mtus.items())
        if (v.is_number_unsigned()) mtu_original_[k] = v.get<unsigned>();
    auto addrs = j.value("addresses", nlohmann::json::array());
    for (auto& a : addrs) {
        // "link addr/len"
        if (!a.is_string()) continue;
        std::string s = a.get<std::string>();
        auto sp = s.find(' '), slash = s.find('/');
        if (sp == std::string::npos || slash == std::string::npos || slash < sp) continue;
        std::string addr = s.substr(sp + 1, slash - sp - 1);
        int len = std::atoi(s.c_str() + slash + 1);
        if (auto v4 = Ipv4Addr::parse(addr))
            owned_addrs_.insert({s.substr(0, sp), IpCidr::v4(*v4, static_cast<uint8_t>(len))});
        else if (auto v6 = Ipv6Addr::parse(addr))
            owned_addrs_.insert({s.substr(0, sp), IpCidr::v6(*v6, static_cast<uint8_t>(len))});
    }
    auto downs = j.value("down_original", nlohmann::json::array());
    for (auto& d : downs)
        if (d.is_string()) down_original_.insert(d.get<std::string>());
    auto files = j.value("files", nlohmann::json::array());
    for (auto& f : files)
        if (f.is_string()) owned_files_.insert(f.get<std::string>());
}

void Reconciler::save_owned() {
    std::vector<std::string> addrs;
    for (auto& a : owned_addrs_) addrs.push_back(a.str());
    nlohmann::json j = {{"links", owned_links_}, {"addresses", addrs}, {"sysctl_original", sysctl_original_}, {"mtu_original", mtu_original_}, {"down_original", down_original_}, {"files", owned_files_}};
    if (auto w = write_file_atomic(owned_path_, j.dump(1) + "\n", 0600); !w)
        syslog(LOG_ERR, "reconcile: %s", w.error().str().c_str());
}

Status Reconciler::converge(const DesiredState& want, Applied& applied) {
    // Ownership first: should netd die half-way, the next one knows what to release.
    for (auto& l : want.links) owned_links_.insert(l.name);
    save_owned();
    auto st = converge_kernel(want, applied);
    save_owned();
    if (!st) return st;
    return converge_services(want, applied);
}

namespace {

// The ruleset with its flowtable's devices' interface indexes as the kernel has them now (0: not
// there). A device unplugged and plugged back under its name has a new index: the ruleset is
// then loaded again, as its text alone would not say, and the flowtable hooks the new device.
nft::Ruleset with_ifindexes(nft::Ruleset r, const std::vector<LinkInfo>& links) {
    for (auto& t : r.tables) {
        if (!t.flowtable) continue;
        t.flowtable->ifindexes.clear();
        for (auto& dev : t.flowtable->devices) {
            auto l = std::find_if(links.begin(), links.end(), [&](const LinkInfo& x) { return x.name == dev; });
            t.flowtable->ifindexes.push_back(l == links.end() ? 0 : l->ifindex);
        }
    }
    return r;
}

}  // namespace

Status Reconciler::converge_kernel(const DesiredState& want, Applied& applied) {
    auto record = [&](Status st, const std::string& what) {
        if (st) applied.kernel.push_back(what);
        return st;
    };

    // Loads a ruleset (text: its render_nft) unless it is the one loaded, on the same devices.
    auto load = [&](const nft::Ruleset& rs, const std::string& text, const std::string& what) -> Status {
        std::string key = text;
        for (auto& t : rs.tables)
            if (t.flowtable)
                for (int i : t.flowtable->ifindexes) key += " " + std::to_string(i);
        if (text.empty() || key == loaded_ruleset_) return Ok{};
        // The load starts the drop counters over: what the ruleset it replaces counted is kept.
        auto drops = kernel_.firewall_drops();
        auto t0 = std::chrono::steady_clock::now();
        auto r = kernel_.load_ruleset(rs);
        if (!r) return Error{"firewall: " + r.error().str()};
        // A whole replacement starts every counter over; a change just of what changed keeps
        // the counters of the rules that stay, and what goes is what the deleted rules counted.
        if (drops && r->incremental) {
            if (auto after = kernel_.firewall_drops())
                for (auto& [chain, n] : *drops) {
                    DropCount now = (*after)[chain];
                    retired_drops_[chain] += DropCount{n.packets > now.packets ? n.packets - now.packets : 0,
                                                       n.bytes > now.bytes ? n.bytes - now.bytes : 0};
                }
        } else if (drops) {
            for (auto& [chain, n] : *drops) retired_drops_[chain] += n;
        }
        loaded_ruleset_ = key;
        ruleset_load_ = RulesetLoad{r->messages, r->bytes,
                                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()};
        applied.kernel.push_back(what);
        return Ok{};
    };

    auto links = kernel_.links();
    if (!links) return links.error();

    // 1 The firewall, before anything that could let a packet through; its flowtable on the
    // devices that exist now (the rest, the sit device, in 7b).
    bool missing = false;
    {
        std::set<std::string> present;
        for (auto& l : *links) present.insert(l.name);
        for (auto& t : want.ruleset.tables)
            if (t.flowtable)
                for (auto& dev : t.flowtable->devices) missing = missing || !present.count(dev);
        Status st = Ok{};
        if (missing) {
            nft::Ruleset now = flowtable_on(want.ruleset, present);
            st = load(with_ifindexes(now, *links), render_nft(now), "nft load");
        } else {
            st = load(with_ifindexes(want.ruleset, *links), want.ruleset_text, "nft load");
        }
        if (!st) return st;
    }
    links = kernel_.links();
    if (!links) return links.error();
    auto find = [&](const std::string& name) -> const LinkInfo* {
        for (auto& l : *links)
            if (l.name == name) return &l;
        return nullptr;
    };

    // 1b The segments' VLAN links (before their sysctls); one of the name that is something
    // else is replaced.
    bool relist = false;
    for (auto& v : want.vlans) {
        const LinkInfo* l = find(v.name);
        if (l && l->vlan && *l->vlan == v) continue;
        if (l)
            if (auto st = record(kernel_.del_link(v.name), "link del " + v.name); !st) return st;
        if (auto st = record(kernel_.add_vlan(v), "vlan " + v.name + " on " + v.parent + " id " + std::to_string(v.id)); !st)
            return st;
        relist = true;
    }
    if (relist) {
        links = kernel_.links();
        if (!links) return links.error();
    }

    // 2 Sysctls; what netd no longer wants goes back to what it found.
    for (auto& [key, value] : want.sysctls) {
        auto cur = kernel_.read_sysctl(key);
        if (!cur) return cur.error();
        if (*cur == value) continue;
        if (sysctl_original_.emplace(key, *cur).second) save_owned();
        if (auto st = record(kernel_.write_sysctl(key, value), "sysctl " + key + "=" + value); !st) return st;
    }
    for (auto it = sysctl_original_.begin(); it != sysctl_original_.end();) {
        if (want.sysctls.count(it->first)) {
            ++it;
            continue;
        }
        auto cur = kernel_.read_sysctl(it->first);
        if (cur && *cur != it->second)  // a link that is gone took its keys with it
            if (auto st = record(kernel_.write_sysctl(it->first, it->second), "sysctl " + it->first + "=" + it->second); !st)
                return st;
        it = sysctl_original_.erase(it);
    }

    // 3 The sit device, created or retargeted in place.
    const LinkInfo* sit_now = find(kTunnelIf);
    if (want.sit && (!sit_now || !sit_now->sit || *sit_now->sit != *want.sit)) {
        auto& s = *want.sit;
        if (auto st = record(kernel_.put_sit(s), "sit " + s.name + " local " + s.local.str() + " remote " + s.remote.str() +
                                                     " ttl " + std::to_string(s.ttl) + " mtu " + std::to_string(s.mtu));
            !st)
            return st;
        links = kernel_.links();
        if (!links) return links.error();
    }

    // 4 Links: MTU (what netd found is restored when it no longer sets one), then up.
    for (auto& dl : want.links) {
        const LinkInfo* l = find(dl.name);
        if (!l) return Error{"link " + dl.name + ": not found"};
        std::optional<unsigned> mtu = dl.mtu;
        if (!mtu && mtu_original_.count(dl.name)) mtu = mtu_original_[dl.name];
        if (mtu && l->mtu != *mtu) {
            if (dl.mtu && !l->sit && mtu_original_.emplace(dl.name, l->mtu).second) save_owned();
            if (auto st = record(kernel_.set_mtu(dl.name, *mtu), "link " + dl.name + " mtu " + std::to_string(*mtu)); !st)
                return st;
        }
        if (!dl.mtu) mtu_original_.erase(dl.name);
        if (!l->up) {
            // Recorded first: a link netd brought up goes down again when it is released.
            if (!l->sit && down_original_.insert(dl.name).second) save_owned();
            if (auto st = record(kernel_.set_up(dl.name, true), "link " + dl.name + " up"); !st) return st;
        }
    }

    // 5 Routes and addresses. netd's addresses are the ones it added (recorded): an address
    // someone else put on a link stays.
    auto addrs = kernel_.addresses();
    if (!addrs) return addrs.error();
    std::set<IfAddr> have(addrs->begin(), addrs->end());
    auto routes = kernel_.routes();
    if (!routes) return routes.error();
    std::set<Route> have_routes(routes->begin(), routes->end());
    bool deleting_sit = !want.sit && find(kTunnelIf);  // 7 deletes it whole
    for (auto& r : have_routes)
        if (!want.routes.count(r) && !(deleting_sit && r.link == kTunnelIf))
            if (auto st = record(kernel_.del_route(r), "route del " + r.str()); !st) return st;
    for (auto it = owned_addrs_.begin(); it != owned_addrs_.end();) {
        const IfAddr a = *it;
        if (want.addresses.count(a)) {
            ++it;
            continue;
        }
        if (have.count(a) && !(deleting_sit && a.link == kTunnelIf))
            if (auto st = record(kernel_.del_address(a), "addr del " + a.str()); !st) return st;
        it = owned_addrs_.erase(it);
        save_owned();
    }
    for (auto& a : want.addresses) {
        // One already there (put there by someone else) is used, not claimed: it stays when
        // netd no longer wants it, and a rollback does not take it away.
        if (have.count(a)) continue;
        owned_addrs_.insert(a);
        save_owned();
        if (auto st = record(kernel_.add_address(a), "addr add " + a.str()); !st) return st;
    }
    // Deleting an address may have taken a route with it: read them again.
    routes = kernel_.routes();
    if (!routes) return routes.error();
    have_routes = std::set<Route>(routes->begin(), routes->end());
    for (auto& r : want.routes)
        if (!have_routes.count(r))
            if (auto st = record(kernel_.add_route(r), "route add " + r.str()); !st) return st;

    // 6 Links no longer managed: down, their MTU back.
    for (auto it = owned_links_.begin(); it != owned_links_.end();) {
        const std::string name = *it;
        if (want.link(name) || name == kTunnelIf) {
            ++it;
            continue;
        }
        if (const LinkInfo* l = find(name); l && l->vlan) {
            // A VLAN link netd made for a segment that is gone: deleted with its addresses.
            if (auto st = record(kernel_.del_link(name), "link del " + name); !st) return st;
            for (auto a = owned_addrs_.begin(); a != owned_addrs_.end();)
                a = a->link == name ? owned_addrs_.erase(a) : std::next(a);
        } else if (l) {
            if (auto m = mtu_original_.find(name); m != mtu_original_.end() && l->mtu != m->second)
                if (auto st = record(kernel_.set_mtu(name, m->second), "link " + name + " mtu " + std::to_string(m->second));
                    !st)
                    return st;
            if (l->up && down_original_.count(name))
                if (auto st = record(kernel_.set_up(name, false), "link " + name + " down"); !st) return st;
        }
        mtu_original_.erase(name);
        down_original_.erase(name);
        it = owned_links_.erase(it);
    }

    // 7 The sit device when no tunnel is wanted (its addresses and routes go with it).
    if (const LinkInfo* sit = find(kTunnelIf); !want.sit && sit) {
        const LinkTraffic counted = LinkTraffic::of(*sit);   // the device's counters go with it
        if (auto st = record(kernel_.del_link(kTunnelIf), std::string("link del ") + kTunnelIf); !st) return st;
        retired_tunnel_ += counted;
    }
    if (!want.sit) {
        owned_links_.erase(kTunnelIf);
        for (auto it = owned_addrs_.begin(); it != owned_addrs_.end();)
            it = it->link == kTunnelIf ? owned_addrs_.erase(it) : std::next(it);
    }

    // 7b The whole ruleset, when 1 left devices out of its flowtable that exist now (else 1
    // loaded it on these very devices).
    if (!missing) return Ok{};
    links = kernel_.links();
    if (!links) return links.error();
    return load(with_ifindexes(want.ruleset, *links), want.ruleset_text, "nft load");
}

Status Reconciler::converge_services(const DesiredState& want, Applied& applied) {
    std::set<std::string> files;
    for (auto& [path, _] : want.files) files.insert(path);
    for (auto& g : want.services)
        if (!g.config_path.empty()) files.insert(g.config_path);
    owned_files_.insert(files.begin(), files.end());
    save_owned();
    for (auto& [path, content] : want.files) {
        auto w = write_file_atomic(path, content);
        if (!w) return w.error();
        if (*w) applied.services.push_back("write " + path);
    }
    std::set<std::string> wanted;
    for (auto& g : want.services) {
        wanted.insert(g.spec.name);
        bool file_changed = false;
        if (!g.config_path.empty()) {
            auto w = write_file_atomic(g.config_path, g.config_text);
            if (!w) return w.error();
            file_changed = *w;
            if (file_changed) applied.services.push_back("write " + g.config_path);
        }
        auto known = services_.spec_of(g.spec.name);
        if (!known) {
            applied.services.push_back("start " + g.spec.name);
            services_.ensure(g.spec);
        } else if (*known != g.spec) {
            applied.services.push_back("restart " + g.spec.name + " (command line changed)");
            services_.ensure(g.spec);
        } else if (file_changed) {
            // Same command line, new inputs: only this daemon restarts.
            applied.services.push_back("restart " + g.spec.name + " (configuration changed)");
            services_.restart(g.spec.name);
        } else {
            services_.ensure(g.spec);  // retries a failed one; otherwise nothing
        }
    }
    for (auto& name : services_.service_names())
        if (!wanted.count(name)) {
            applied.services.push_back("stop " + name);
            services_.remove(name);
        }
    // A file no service reads any more would not be there after a fresh start either.
    for (auto it = owned_files_.begin(); it != owned_files_.end();) {
        if (files.count(*it)) {
            ++it;
            continue;
        }
        if (unlink(it->c_str()) == 0) applied.services.push_back("remove " + *it);
        it = owned_files_.erase(it);
    }
    save_owned();
    return Ok{};
}

}  // namespace netd
