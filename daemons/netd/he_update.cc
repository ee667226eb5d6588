// `netd --he-update`: the Hurricane Electric endpoint update, in a short-lived helper process
// (DNS and TLS can block for seconds; netd's loop must not). Mbed TLS (TLS 1.2) verifies the
// server's certificate against the configured CA file and its host name. Input on stdin, one
// per line: update URL, username, update key, tunnel id, my IPv4 address, CA file. Once it has
// read them and loaded the CA file, it drops root (see drop_privileges) before it talks to anyone.
#include <grp.h>
#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <string>

#include "tunnel.h"

namespace netd {
namespace {

int fail(const char* kind, const std::string& msg) {
    std::printf("ERROR %s %s\n", kind, msg.c_str());
    return 3;
}

// The socket under the TLS session, and errno of its last failed send or recv: Mbed TLS's own
// code for a failed read says neither that the peer reset the connection nor that it timed out.
struct Transport {
    int fd = -1;
    int saved_errno = 0;
};

int transport_send(void* ctx, const unsigned char* buf, size_t len) {
    auto* t = static_cast<Transport*>(ctx);
    ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    t->saved_errno = errno;
    return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_SEND_FAILED;
}

int transport_recv(void* ctx, unsigned char* buf, size_t len) {
    auto* t = static_cast<Transport*>(ctx);
    ssize_t n = recv(t->fd, buf, len, 0);
    if (n >= 0) return static_cast<int>(n);
    t->saved_errno = errno;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

// What failed, in words: the socket's errno where a send or recv failed (the 10 s socket
// timeouts end in EAGAIN), else Mbed TLS's text for its code.
std::string tls_error(int rc, const Transport& t) {
    if (rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return "the server closed the connection (unexpected end of file)";
    if (t.saved_errno == EAGAIN || t.saved_errno == EWOULDBLOCK) return "timed out waiting for the server (10 s)";
    if (t.saved_errno != 0) return std::strerror(t.saved_errno);
    char buf[200];
    mbedtls_strerror(rc, buf, sizeof(buf));
    return buf;
}

// The TLS state of one update, released in reverse order of setup whatever way the helper ends.
struct Tls {
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    Tls() {
        mbedtls_x509_crt_init(&ca);
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
        mbedtls_ssl_config_init(&conf);
        mbedtls_ssl_init(&ssl);
    }
    ~Tls() {
        mbedtls_ssl_free(&ssl);
        mbedtls_ssl_config_free(&conf);
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
        mbedtls_x509_crt_free(&ca);
    }
    Tls(const Tls&) = delete;
    Tls& operator=(const Tls&) = delete;
};

int connect_timeout(const addrinfo* ai, int timeout_ms) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        close(fd);
        errno = err ? err : ETIMEDOUT;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

}  // namespace

// What is left after the request and the CA file are read (DNS, TLS and HTTP with a server on
// the internet) needs no privilege: the helper goes on as nobody, without supplementary
// groups, with empty capability sets (bounding included) and no way to gain any through exec.
// Not root (a test): there is nothing to drop but the future execs.
std::string drop_privileges() {
    if (geteuid() == 0) {
        const passwd* pw = getpwnam("nobody");
        if (!pw) return "no user nobody";
        uid_t uid = pw->pw_uid;
        gid_t gid = pw->pw_gid;
        if (setgroups(0, nullptr) != 0) return std::string("setgroups: ") + std::strerror(errno);
        if (setresgid(gid, gid, gid) != 0) return std::string("setresgid: ") + std::strerror(errno);
        for (int cap = 0; cap < 64; ++cap) {
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
            if (errno == EINVAL) break;  // past the kernel's last capability
            return std::string("PR_CAPBSET_DROP: ") + std::strerror(errno);
        }
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        // Leaving uid 0 for good (real, effective and saved) empties the permitted and
        // effective sets.
        if (setresuid(uid, uid, uid) != 0) return std::string("setresuid: ") + std::strerror(errno);
        if (setuid(0) == 0) return "still able to become root again";
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno);
    return {};
}

int he_update_main() {
    std::string url, user, key, id, myip, ca;
    if (!std::getline(std::cin, url) || !std::getline(std::cin, user) || !std::getline(std::cin, key) ||
        !std::getline(std::cin, id) || !std::getline(std::cin, myip) || !std::getline(std::cin, ca))
        return fail("input", "expected 6 lines on stdin");
    if (url.rfind("https://", 0) != 0) return fail("input", "not an https URL");
    std::string rest = url.substr(8);
    std::string hostport = rest.substr(0, rest.find('/'));
    std::string path = rest.find('/') == std::string::npos ? "/" : rest.substr(rest.find('/'));
    std::string host = hostport, port = "443";
    if (auto c = hostport.rfind(':'); c != std::string::npos) {
        host = hostport.substr(0, c);
        port = hostport.substr(c + 1);
    }

    // The CA file may be readable by root only (mkdata writes /data/etc 0600): loaded first, and
    // the random generator seeded, before root is dropped. A bundle with some certificates Mbed
    // TLS cannot parse (a positive count) still verifies against the others.
    Tls tls;
    if (access(ca.c_str(), R_OK) != 0) return fail("tls", "cannot load CA file " + ca + ": " + std::strerror(errno));
    if (int rc = mbedtls_x509_crt_parse_file(&tls.ca, ca.c_str()); rc < 0 || tls.ca.version == 0) {
        char buf[200];
        mbedtls_strerror(rc < 0 ? rc : MBEDTLS_ERR_X509_INVALID_FORMAT, buf, sizeof(buf));
        return fail("tls", "cannot load CA file " + ca + ": " + buf);
    }
    static const unsigned char personal[] = "netd he-update";
    if (int rc = mbedtls_ctr_drbg_seed(&tls.drbg, mbedtls_entropy_func, &tls.entropy, personal, sizeof(personal) - 1);
        rc != 0)
        return fail("internal", "cannot seed the random generator: " + tls_error(rc, Transport{}));
    if (auto why = drop_privileges(); !why.empty()) return fail("internal", "cannot drop privileges: " + why);

    addrinfo hints{};
    hints.ai_family = AF_INET;  // the update must come from the IPv4 endpoint
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return fail("dns", host + ": " + gai_strerror(rc));
    Transport t;
    std::string cerr = "no address";
    for (addrinfo* ai = res; ai && t.fd < 0; ai = ai->ai_next) {
        t.fd = connect_timeout(ai, 10000);
        if (t.fd < 0) cerr = std::strerror(errno);
    }
    freeaddrinfo(res);
    if (t.fd < 0) return fail("connect", host + ":" + port + ": " + cerr);

    // TLS 1.2 (all Mbed TLS 2.28 offers), the certificate verified against the CA file and
    // required to name the host, which is also sent as SNI.
    if (int rc = mbedtls_ssl_config_defaults(&tls.conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                             MBEDTLS_SSL_PRESET_DEFAULT);
        rc != 0)
        return fail("tls", host + ": " + tls_error(rc, t));
    mbedtls_ssl_conf_min_version(&tls.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&tls.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&tls.conf, &tls.ca, nullptr);
    mbedtls_ssl_conf_rng(&tls.conf, mbedtls_ctr_drbg_random, &tls.drbg);
    if (int rc = mbedtls_ssl_setup(&tls.ssl, &tls.conf); rc != 0) return fail("tls", host + ": " + tls_error(rc, t));
    if (int rc = mbedtls_ssl_set_hostname(&tls.ssl, host.c_str()); rc != 0)
        return fail("tls", host + ": " + tls_error(rc, t));
    mbedtls_ssl_set_bio(&tls.ssl, &t, transport_send, transport_recv, nullptr);
    if (int rc = mbedtls_ssl_handshake(&tls.ssl); rc != 0) {
        if (uint32_t flags = mbedtls_ssl_get_verify_result(&tls.ssl); rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags) {
            char buf[512];
            mbedtls_x509_crt_verify_info(buf, sizeof(buf), "", flags);
            std::string why(buf);
            while (!why.empty() && why.back() == '\n') why.pop_back();
            for (char& c : why)
                if (c == '\n') c = ';';
            return fail("tls", host + ": certificate verify failed: " + why);
        }
        return fail("tls", host + ": " + tls_error(rc, t));
    }

    std::string cred = user + ":" + key;
    std::string b64(4 * ((cred.size() + 2) / 3) + 1, '\0');
    size_t n = 0;
    mbedtls_base64_encode(reinterpret_cast<unsigned char*>(b64.data()), b64.size(), &n,
                          reinterpret_cast<const unsigned char*>(cred.data()), cred.size());
    b64.resize(n);
    std::string req = "GET " + path + "?hostname=" + id + (myip.empty() ? "" : "&myip=" + myip) + " HTTP/1.1\r\nHost: " + host +
                      "\r\nAuthorization: Basic " + b64 + "\r\nUser-Agent: netd (v6router)\r\nConnection: close\r\n\r\n";
    for (size_t done = 0; done < req.size();) {
        int rc = mbedtls_ssl_write(&tls.ssl, reinterpret_cast<const unsigned char*>(req.data()) + done, req.size() - done);
        if (rc <= 0) return fail("tls", "write: " + tls_error(rc, t));
        done += static_cast<size_t>(rc);
    }
    std::string resp;
    unsigned char buf[4096];
    int r;
    while (resp.size() < 65536 && (r = mbedtls_ssl_read(&tls.ssl, buf, sizeof(buf))) > 0)
        resp.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(r));
    // A server may close without close_notify once it has answered (Connection: close).
    if (r < 0 && resp.empty()) return fail("tls", "read: " + tls_error(r, t));
    mbedtls_ssl_close_notify(&tls.ssl);
    close(t.fd);

    int status = 0;
    if (std::sscanf(resp.c_str(), "HTTP/1.%*d %d", &status) != 1) return fail("http", "no HTTP status line");
    auto hdr_end = resp.find("\r\n\r\n");
    std::string body = hdr_end == std::string::npos ? "" : resp.substr(hdr_end + 4);
    std::string headers = resp.substr(0, hdr_end);
    for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (headers.find("transfer-encoding: chunked") != std::string::npos) {
        // The first chunk holds the whole of a dyndns2 answer.
        auto nl = body.find("\r\n");
        body = nl == std::string::npos ? "" : body.substr(nl + 2, std::strtoul(body.c_str(), nullptr, 16));
    }
    std::string first = body.substr(0, body.find('\n'));
    std::printf("HTTP %d\n%s\n", status, first.c_str());
    return 0;
}

}  // namespace netd
