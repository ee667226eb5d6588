// `netd --he-update`: the Hurricane Electric endpoint update, in a short-lived helper process
// (DNS and TLS can block for seconds; netd's loop must not). OpenSSL verifies the server's
// certificate against the configured CA file and its host name. Input on stdin, one per line:
// update URL, username, update key, tunnel id, my IPv4 address, CA file. Once it has read them
// and loaded the CA file, it drops root (see drop_privileges) before it talks to anyone.
#include <grp.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
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

// What failed, in words. OpenSSL's error queue is empty when the peer simply went away or the
// socket timed out: ERR_error_string then says only "error:00000000:lib(0)::reason(0)".
// `saved_errno` is errno taken at once after the failing call.
std::string ssl_error(SSL* ssl = nullptr, int ret = 0, int saved_errno = 0) {
    if (unsigned long e = ERR_get_error(); e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        return buf;
    }
    switch (ssl ? SSL_get_error(ssl, ret) : SSL_ERROR_SSL) {
        case SSL_ERROR_ZERO_RETURN:
            return "the server closed the TLS connection";
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return "timed out waiting for the server (10 s)";
        case SSL_ERROR_SYSCALL:
            if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) return "timed out waiting for the server (10 s)";
            if (saved_errno != 0) return std::strerror(saved_errno);
            return "the server closed the connection (unexpected end of file)";
        default:
            return "TLS failure without a reason from OpenSSL";
    }
}

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

    // The CA file may be readable by root only (mkdata writes /data/etc 0600): loaded first.
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
        return fail("tls", "cannot load CA file " + ca + ": " + ssl_error());
    if (auto why = drop_privileges(); !why.empty()) return fail("internal", "cannot drop privileges: " + why);

    addrinfo hints{};
    hints.ai_family = AF_INET;  // the update must come from the IPv4 endpoint
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return fail("dns", host + ": " + gai_strerror(rc));
    int fd = -1;
    std::string cerr = "no address";
    for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_timeout(ai, 10000);
        if (fd < 0) cerr = std::strerror(errno);
    }
    freeaddrinfo(res);
    if (fd < 0) return fail("connect", host + ":" + port + ": " + cerr);

    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());  // the certificate must name the host
    if (int rc = SSL_connect(ssl); rc != 1) {
        int saved = errno;
        long v = SSL_get_verify_result(ssl);
        return fail("tls", host + ": " + (v != X509_V_OK ? X509_verify_cert_error_string(v) : ssl_error(ssl, rc, saved)));
    }

    std::string cred = user + ":" + key;
    std::string b64(4 * ((cred.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                            reinterpret_cast<const unsigned char*>(cred.data()), static_cast<int>(cred.size()));
    b64.resize(static_cast<size_t>(n));
    std::string req = "GET " + path + "?hostname=" + id + (myip.empty() ? "" : "&myip=" + myip) + " HTTP/1.1\r\nHost: " + host +
                      "\r\nAuthorization: Basic " + b64 + "\r\nUser-Agent: netd (v6router)\r\nConnection: close\r\n\r\n";
    if (int rc = SSL_write(ssl, req.data(), static_cast<int>(req.size())); rc <= 0) {
        int saved = errno;
        return fail("tls", "write: " + ssl_error(ssl, rc, saved));
    }
    std::string resp;
    char buf[4096];
    int r;
    while (resp.size() < 65536 && (r = SSL_read(ssl, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(r));
    if (r < 0 && resp.empty()) {
        int saved = errno;
        return fail("tls", "read: " + ssl_error(ssl, r, saved));
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);

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
