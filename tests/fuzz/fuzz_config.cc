// libFuzzer target: the config parser must never crash, hang or leak on any input, and
// every rejection must carry a position or a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto r = netd::parse_config_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.conf");
    if (!r.config && r.errors.empty()) std::abort();
    for (auto& e : r.errors)
        if (e.message.empty()) std::abort();
    return 0;
}
