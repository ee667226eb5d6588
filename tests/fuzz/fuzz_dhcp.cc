// libFuzzer target: udhcpc lease events (arguments separated by NUL bytes, as the control
// socket carries them). Whatever is accepted must be consistent.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "dhcp_lease.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> args;
    std::string cur;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            args.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(static_cast<char>(data[i]));
        }
    }
    args.push_back(cur);
    auto ev = netd::parse_dhcp_event(args);
    if (ev && ev->lease) {
        const auto& l = *ev->lease;
        if (l.address.len < 1 || l.address.len > 32 || l.lease_seconds < netd::kMinDhcpLease) std::abort();
        if (l.routers.size() > netd::kMaxDhcpList || l.dns.size() > netd::kMaxDhcpList) std::abort();
        for (char c : l.hostname + l.domain)
            if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) std::abort();
    }
    return 0;
}
