// Test-only: reads the files service_configs.h generates back into the directives their
// daemon acts on, following each daemon's grammar rather than the generators, and states
// which directives a config must produce. The property test (service_configs_property_test)
// and the round-trip fuzzer (tests/fuzz/fuzz_generated.cc) compare the two as multisets: an
// extra directive, a value split by a line end or NUL, or a value the daemon would read some
// other way (a quote, a comment start, a keyword where a name belongs) is a finding.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "service_configs.h"

namespace netd {

struct Directive {
    // dnsmasq: the option; radvd: the statement with the blocks around it, e.g.
    // "interface eth1 > prefix 2001:db8::/64 > AdvOnLink"; sshd: the keyword in lower case
    // (sshd ignores its case).
    std::string key;
    // dnsmasq: the value's comma-separated fields; radvd and sshd: the words after the key.
    std::vector<std::string> args;
    auto operator<=>(const Directive&) const = default;
};
using Directives = std::vector<Directive>;  // sorted: compared as multisets

// Each fails, naming the line, on text its daemon could read differently than intended.
Result<Directives> read_dnsmasq_conf(std::string_view text);
Result<Directives> read_radvd_conf(std::string_view text);
Result<Directives> read_sshd_config(std::string_view text);

struct ExpectedDirectives {
    Directives dnsmasq, radvd, sshd;
};
// What the config means for each file, from its typed values.
ExpectedDirectives expected_directives(const Config& c, const RuntimeFacts& f, const std::string& run_dir = kRunDir);

// Empty when equal; otherwise the directives missing and the ones too many, one a line.
std::string directives_diff(const Directives& want, const Directives& got);

}  // namespace netd
