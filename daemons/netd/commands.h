// The one table of control commands: netctl's help, its argument check and netd's dispatch
// all come from it, so they cannot disagree.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace netd {

struct Command {
    const char* name;
    const char* args;       // usage after the name, e.g. "[--json]"
    const char* summary;    // one line for `netctl --help`
    const char* help;       // the rest of `netctl NAME --help`
    size_t min_args, max_args;   // after the name
    bool internal;          // called by hook scripts, not by people
};

std::span<const Command> commands();
const Command* find_command(const std::string& name);
// Whether args (name first) fit the command's shape; "status --json" is the one flag checked.
bool command_args_ok(const Command& c, const std::vector<std::string>& args);
// What netd makes of a control request (name first): its command, or null for an unknown name
// or a malformed one. The hooks' commands also carry KEY=VALUE pairs after their argument.
const Command* command_for_request(const std::vector<std::string>& args);
// apply, edit, confirm, cancel and rollback: netctl adds "by=WHO" (who asked) to the request.
bool command_identifies(const Command& c);
std::string netctl_usage();
std::string command_usage(const Command& c);

}  // namespace netd
