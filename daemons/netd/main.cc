// netd: the router's network daemon. This entry point parses the command line only;
// the work is done by the modules beside it.
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "config.h"

namespace {

constexpr const char* kDefaultConfig = "/data/etc/router.conf";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: netd --check [FILE]\n"
                 "\n"
                 "  -c, --check [FILE]  validate the configuration (default %s) without\n"
                 "                      touching the system; errors are printed as\n"
                 "                      file:line:col: message and the exit status is 1\n"
                 "  -h, --help          show this help\n"
                 "\n"
                 "The configuration keys are documented in daemons/netd/CONFIG.md.\n",
                 kDefaultConfig);
}

int check(const std::string& path) {
    auto res = netd::load_config(path);
    for (const auto& e : res.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!res.config) {
        std::fprintf(stderr, "netd: %s: %zu error%s\n", path.c_str(), res.errors.size(),
                     res.errors.size() == 1 ? "" : "s");
        return 1;
    }
    std::printf("netd: %s: configuration OK\n", path.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    static const option opts[] = {{"check", no_argument, nullptr, 'c'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    bool do_check = false;
    int c;
    while ((c = getopt_long(argc, argv, "ch", opts, nullptr)) != -1) {
        switch (c) {
            case 'c': do_check = true; break;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (!do_check || argc - optind > 1) {
        usage(stderr);
        return 2;
    }
    return check(optind < argc ? argv[optind] : kDefaultConfig);
}
