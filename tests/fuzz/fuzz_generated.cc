// libFuzzer target: the generated-file round trip. A config netd accepts is rendered into
// dnsmasq.conf, radvd.conf and sshd_config, which are read back the way each daemon reads
// them (daemons/netd/generated_reader.h): exactly the directives the config implies, no
// more, none split or read another way.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "generated_reader.h"

namespace {

void check(const char* file, const std::string& text, netd::Result<netd::Directives> got, const netd::Directives& want,
           std::string_view input) {
    std::string problem = got ? netd::directives_diff(want, *got) : "  unreadable: " + got.error().str() + "\n";
    if (problem.empty()) return;
    std::fprintf(stderr, "%s does not say what the config says:\n%s--- %s\n%s--- config\n%.*s\n", file, problem.c_str(),
                 file, text.c_str(), static_cast<int>(input.size()), input.data());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto r = netd::parse_config_text(input, "fuzz.conf");
    if (!r.config) return 0;
    const netd::Config& c = *r.config;
    // The LAN link as netd finds it: by name, or by MAC under the image's names.
    netd::RuntimeFacts f;
    if (c.lans.size() != 1) return 0;   // the reader checks one segment
    f.lans[c.lans[0].name].ifname = c.lans[0].interface.device.empty() ? "eth1" : c.lans[0].interface.device;
    f.ipv6_uplink = c.tunnel.mode != netd::TunnelMode::none;
    f.lans[c.lans[0].name].mtu = f.ipv6_uplink ? c.tunnel.mtu : 1500;
    auto want = netd::expected_directives(c, f);
    auto dnsmasq = netd::dnsmasq_service(c, f).config_text;
    auto radvd = netd::radvd_service(c, f).config_text;
    auto sshd = netd::sshd_service(c, f).config_text;
    check("dnsmasq.conf", dnsmasq, netd::read_dnsmasq_conf(dnsmasq), want.dnsmasq, input);
    check("radvd.conf", radvd, netd::read_radvd_conf(radvd), want.radvd, input);
    check("sshd_config", sshd, netd::read_sshd_config(sshd), want.sshd, input);
    return 0;
}
