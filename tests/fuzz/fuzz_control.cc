// libFuzzer target: control-socket requests as netd reads them. The framing must be exact
// (the arguments joined by NUL give the request back: no two requests read alike), and the
// command table must only hand netd a command whose shape it accepts.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "commands.h"
#include "control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view request(reinterpret_cast<const char*>(data), size);
    auto args = netd::split_request(request);
    std::string joined;
    for (size_t i = 0; i < args.size(); ++i) joined += (i ? std::string(1, '\0') : "") + args[i];
    if (joined != request) std::abort();
    if (args.size() != static_cast<size_t>(std::count(request.begin(), request.end(), '\0')) + 1)
        std::abort();

    const netd::Command* c = netd::command_for_request(args);
    if (c) {
        size_t n = args.size() - 1;
        // The commands that change the configuration may carry who asked ("by=WHO", last), and
        // edit the path of the edited copy first: beyond the shape netctl's users type.
        size_t extra = 0;
        if (netd::command_identifies(*c) && n >= 1 && args.back().rfind("by=", 0) == 0 &&
            !netd::command_args_ok(*c, args))
            extra = 1 + (std::string_view(c->name) == "edit" && n >= 2 ? 1 : 0);
        if (args[0] != c->name || n - extra < c->min_args || (n - extra > c->max_args && !c->internal))
            std::abort();
        if (std::string_view(c->name) == "status" && n == 1 && args[1] != "--json") std::abort();
    }
    // What netctl's own check lets through, netd takes as the same command.
    if (const netd::Command* f = args.empty() ? nullptr : netd::find_command(args[0]);
        f && netd::command_args_ok(*f, args) && c != f)
        std::abort();
    return 0;
}
