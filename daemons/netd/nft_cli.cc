// The image's `nft`: Debian's libnftables (the same parser, evaluator and listing as Debian's
// nft) behind a small command line. Debian's nft binary adds only its interactive shell
// (`nft -i`), which links libedit and with it libtinfo, libbsd and libmd: 0.17 MB of the
// compressed image for a prompt nobody uses on a router. Everything else an administrator or a
// test types works as with Debian's nft: `nft list ruleset`, `nft -s list chain inet netd input`,
// `nft -f FILE`, `nft -c -f FILE`, `nft -a -j list table inet netd`, `nft -e add rule ...`.
#include <getopt.h>
#include <nftables/libnftables.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

const char* kUsage =
    "usage: nft [options] [cmds...]\n"
    "  -f, --file FILE           read commands from FILE ('-' for stdin)\n"
    "  -c, --check               check the commands without applying them\n"
    "  -I, --includepath DIR     add DIR to the include paths\n"
    "  -D, --define NAME=VALUE   define a variable\n"
    "  -a, --handle              show rule handles\n"
    "  -s, --stateless           leave out stateful information (counters, quotas)\n"
    "  -t, --terse               leave out the contents of sets\n"
    "  -j, --json                JSON output\n"
    "  -e, --echo                echo what was added, inserted or replaced\n"
    "  -S, --service             names for ports (/etc/services)\n"
    "  -N, --reversedns          names for addresses (reverse DNS)\n"
    "  -u, --guid                names for UIDs and GIDs\n"
    "  -n, --numeric             numbers for everything\n"
    "  -y, --numeric-priority    numbers for chain priorities\n"
    "  -p, --numeric-protocol    numbers for protocols\n"
    "  -T, --numeric-time        times in seconds\n"
    "  -h, --help                this text\n"
    "  -v, --version             the libnftables version\n"
    "Debian's libnftables; this build has no interactive mode (-i).\n";

}  // namespace

int main(int argc, char** argv) {
    static const option longopts[] = {
        {"file", required_argument, nullptr, 'f'},     {"check", no_argument, nullptr, 'c'},
        {"includepath", required_argument, nullptr, 'I'}, {"define", required_argument, nullptr, 'D'},
        {"handle", no_argument, nullptr, 'a'},         {"stateless", no_argument, nullptr, 's'},
        {"terse", no_argument, nullptr, 't'},          {"json", no_argument, nullptr, 'j'},
        {"echo", no_argument, nullptr, 'e'},           {"service", no_argument, nullptr, 'S'},
        {"reversedns", no_argument, nullptr, 'N'},     {"guid", no_argument, nullptr, 'u'},
        {"numeric", no_argument, nullptr, 'n'},        {"numeric-priority", no_argument, nullptr, 'y'},
        {"numeric-protocol", no_argument, nullptr, 'p'}, {"numeric-time", no_argument, nullptr, 'T'},
        {"interactive", no_argument, nullptr, 'i'},    {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'v'},        {nullptr, 0, nullptr, 0}};
    nft_ctx* nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft) {
        std::fprintf(stderr, "nft: cannot create a libnftables context\n");
        return 1;
    }
    unsigned flags = 0;
    const char* file = nullptr;
    int opt;
    while ((opt = getopt_long(argc, argv, "+f:cI:D:astjeSNunypTihv", longopts, nullptr)) != -1) {
        switch (opt) {
            case 'f': file = optarg; break;
            case 'c': nft_ctx_set_dry_run(nft, true); break;
            case 'I':
                if (nft_ctx_add_include_path(nft, optarg) != 0) {
                    std::fprintf(stderr, "nft: cannot add include path '%s'\n", optarg);
                    return 1;
                }
                break;
            case 'D':
                if (nft_ctx_add_var(nft, optarg) != 0) {
                    std::fprintf(stderr, "nft: invalid define '%s' (expected NAME=VALUE)\n", optarg);
                    return 1;
                }
                break;
            case 'a': flags |= NFT_CTX_OUTPUT_HANDLE; break;
            case 's': flags |= NFT_CTX_OUTPUT_STATELESS; break;
            case 't': flags |= NFT_CTX_OUTPUT_TERSE; break;
            case 'j': flags |= NFT_CTX_OUTPUT_JSON; break;
            case 'e': flags |= NFT_CTX_OUTPUT_ECHO; break;
            case 'S': flags |= NFT_CTX_OUTPUT_SERVICE; break;
            case 'N': flags |= NFT_CTX_OUTPUT_REVERSEDNS; break;
            case 'u': flags |= NFT_CTX_OUTPUT_GUID; break;
            case 'n': flags |= NFT_CTX_OUTPUT_NUMERIC_ALL; break;
            case 'y': flags |= NFT_CTX_OUTPUT_NUMERIC_PRIO; break;
            case 'p': flags |= NFT_CTX_OUTPUT_NUMERIC_PROTO; break;
            case 'T': flags |= NFT_CTX_OUTPUT_NUMERIC_TIME; break;
            case 'i':
                std::fprintf(stderr, "nft: this build has no interactive mode: give the commands as arguments or with -f\n");
                return 1;
            case 'h': std::fputs(kUsage, stdout); return 0;
            case 'v': std::puts("nftables (Debian's libnftables, the router's command line)"); return 0;
            default: std::fputs(kUsage, stderr); return 1;
        }
    }
    nft_ctx_output_set_flags(nft, flags);
    int rc;
    if (file) {
        if (optind < argc) {
            std::fprintf(stderr, "nft: -f takes no commands besides the file\n");
            return 1;
        }
        rc = nft_run_cmd_from_filename(nft, std::strcmp(file, "-") == 0 ? "/dev/stdin" : file);
    } else if (optind < argc) {
        // As Debian's nft: the arguments joined by spaces are one command line. (C strings: the
        // binary needs no libstdc++.)
        size_t len = 1;
        for (int i = optind; i < argc; ++i) len += std::strlen(argv[i]) + 1;
        char* cmd = static_cast<char*>(std::calloc(len, 1));
        if (!cmd) return 1;
        for (int i = optind; i < argc; ++i) {
            if (i > optind) std::strcat(cmd, " ");
            std::strcat(cmd, argv[i]);
        }
        rc = nft_run_cmd_from_buffer(nft, cmd);
        std::free(cmd);
    } else {
        std::fputs(kUsage, stderr);
        return 1;
    }
    nft_ctx_free(nft);
    return rc == 0 ? 0 : 1;
}
