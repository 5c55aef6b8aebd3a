/*
 * net.c - sockets: listening (dual-stack), connecting with a timeout,
 * printing addresses.  IPv4 and IPv6 alike, through getaddrinfo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "veilapp.h"

void vapp_format_addr(const struct sockaddr *sa, socklen_t len, char out[VAPP_ADDRSTR_LEN])
{
    char host[64], serv[8]; /* numeric: INET6_ADDRSTRLEN + "%scope", port */
    struct sockaddr_in v4;
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            /* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d. */
            memset(&v4, 0, sizeof v4);
            v4.sin_family = AF_INET;
            v4.sin_port = s6->sin6_port;
            memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
            sa = (const struct sockaddr *)&v4;
            len = sizeof v4;
        }
    }
    if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, VAPP_ADDRSTR_LEN, "?");
        return;
    }
    if (sa->sa_family == AF_INET6)
        snprintf(out, VAPP_ADDRSTR_LEN, "[%s]:%s", host, serv);
    else
        snprintf(out, VAPP_ADDRSTR_LEN, "%s:%s", host, serv);
}

int vapp_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

void vapp_set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int vapp_parse_port(const char *s, int zero_ok)
{
    unsigned long v;
    if (vapp_parse_ulong(s, zero_ok ? 0 : 1, 65535, &v) != 0)
        return -1;
    return (int)v;
}

static int open_listener(struct sockaddr *sa, socklen_t len, char *err)
{
    char addr[VAPP_ADDRSTR_LEN];
    vapp_format_addr(sa, len, addr);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        vapp_errf(err, "cannot create a socket for %s: %s", addr, strerror(e));
        errno = e;
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Accepted sockets inherit it (Linux), which spares a call per connection. */
    vapp_set_nodelay(fd);
    if (sa->sa_family == AF_INET6) {
        /* The unspecified address "::" serves IPv4 too (dual stack); a
           specific IPv6 address serves only itself. */
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        int v6only = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? 0 : 1;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) {
            int e = errno;
            vapp_errf(err, "cannot set IPV6_V6ONLY on %s: %s", addr, strerror(e));
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (bind(fd, sa, len) != 0) {
        int e = errno;
        vapp_errf(err, "cannot bind %s: %s", addr, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        vapp_errf(err, "cannot listen on %s: %s", addr, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void set_port(struct sockaddr *sa, in_port_t port_be)
{
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)sa)->sin6_port = port_be;
    else if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)(void *)sa)->sin_port = port_be;
}

static in_port_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ((struct sockaddr_in6 *)(void *)&ss)->sin6_port;
    return ((struct sockaddr_in *)(void *)&ss)->sin_port;
}

int vapp_listen(const char *bind_addr, const char *port, int fds[VAPP_MAX_LISTEN], char *err)
{
    int p = vapp_parse_port(port, 1);
    if (p < 0) {
        vapp_errf(err, "invalid port '%s'", port);
        return -1;
    }
    if (bind_addr == NULL) {
        struct sockaddr_in6 s6;
        memset(&s6, 0, sizeof s6);
        s6.sin6_family = AF_INET6;
        s6.sin6_addr = in6addr_any;
        s6.sin6_port = htons((uint16_t)p);
        int fd = open_listener((struct sockaddr *)&s6, sizeof s6, err);
        if (fd >= 0) {
            fds[0] = fd;
            return 1;
        }
        /* No IPv6 on this host: fall back to IPv4 only. */
        int e = errno;
        if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL && e != EPROTONOSUPPORT)
            return -1;
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof s4);
        s4.sin_family = AF_INET;
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        s4.sin_port = htons((uint16_t)p);
        fd = open_listener((struct sockaddr *)&s4, sizeof s4, err);
        if (fd < 0)
            return -1;
        fds[0] = fd;
        return 1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(bind_addr, port, &hints, &res);
    if (g != 0) {
        vapp_errf(err, "cannot resolve bind address %s: %s", bind_addr,
                 gai_strerror(g));
        return -1;
    }
    int n = 0;
    in_port_t chosen = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < VAPP_MAX_LISTEN; ai = ai->ai_next) {
        if (p == 0 && chosen != 0)
            set_port(ai->ai_addr, chosen); /* same free port on every address */
        int fd = open_listener(ai->ai_addr, ai->ai_addrlen, err);
        if (fd < 0) {
            for (int i = 0; i < n; i++)
                close(fds[i]);
            freeaddrinfo(res);
            return -1;
        }
        if (p == 0 && chosen == 0)
            chosen = bound_port(fd);
        fds[n++] = fd;
    }
    freeaddrinfo(res);
    if (n == 0) {
        vapp_errf(err, "bind address %s resolved to nothing", bind_addr);
        return -1;
    }
    return n;
}

int vapp_connect(const char *host, const char *port, uint64_t timeout_ms, vapp_connect_error *why,
                 char *peer, char *err)
{
    uint64_t deadline = vapp_mono_ms() + timeout_ms;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        *why = VAPP_CONN_DNS;
        vapp_errf(err, "cannot resolve %s: %s", host,
                 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return -1;
    }
    int last_errno = 0;
    int timed_out = 0;
    char addr[VAPP_ADDRSTR_LEN] = "?";
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        vapp_format_addr(ai->ai_addr, ai->ai_addrlen, addr);
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            r = -1;
            /* Wait for the outcome; EINTR just recomputes the time left. */
            for (;;) {
                uint64_t now = vapp_mono_ms();
                if (now >= deadline) {
                    timed_out = 1;
                    errno = ETIMEDOUT;
                    break;
                }
                uint64_t left = deadline - now;
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int pr = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
                if (pr < 0 && errno != EINTR)
                    break;
                if (pr > 0) {
                    int soerr = 0;
                    socklen_t sl = sizeof soerr;
                    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                        soerr = errno;
                    if (soerr == 0)
                        r = 0;
                    else
                        errno = soerr;
                    break;
                }
            }
        }
        if (r == 0) {
            freeaddrinfo(res);
            vapp_set_nodelay(fd);
            if (peer != NULL)
                snprintf(peer, VAPP_ADDRSTR_LEN, "%s", addr);
            *why = VAPP_CONN_OK;
            return fd;
        }
        last_errno = errno;
        close(fd);
        if (timed_out)
            break;
    }
    freeaddrinfo(res);
    if (timed_out) {
        *why = VAPP_CONN_TIMEOUT;
        vapp_errf(err, "cannot connect to %s port %s: timed out after %llu ms", host,
                 port, (unsigned long long)timeout_ms);
    } else {
        *why = (last_errno == ECONNREFUSED || last_errno == ENETUNREACH ||
                last_errno == EHOSTUNREACH || last_errno == EADDRNOTAVAIL)
                   ? VAPP_CONN_REFUSED
                   : VAPP_CONN_OTHER;
        vapp_errf(err, "cannot connect to %s port %s (%s): %s", host, port, addr,
                 strerror(last_errno));
    }
    return -1;
}

/* Best effort, for a connection the program will not serve: a fatal alert
 * written by a throw-away veil_conn (libproto makes the bytes), sent without
 * waiting, then the socket is closed. */
void vapp_refuse_and_close(int fd, const veil_config *cfg, int alert, uint64_t now)
{
    veil_conn *vc = NULL;
    veil_buf b;
    veil_buf_init(&b);
    veil_callbacks cb = {.random = vapp_random};
    if (veil_conn_new(cfg, &cb, now, &vc) == 0) {
        (void)veil_conn_abort(vc, alert, &b);
        if (b.len > 0)
            (void)send(fd, b.base, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    veil_conn_free(vc);
    veil_buf_free(&b);
    close(fd);
}

/* Sends all of p on a (possibly non-blocking) socket, waiting with poll for
 * room, for at most timeout_ms in all.  0, or -1 on error or timeout. */
int vapp_send_pending(int fd, veil_buf *out)
{
    while (out->len > 0) {
        ssize_t n = send(fd, out->base, out->len, MSG_NOSIGNAL);
        if (n > 0) {
            veil_buf_consume(out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n == 0)
            errno = EIO; /* no progress on a non-empty send: treated as lost */
        return -1;
    }
    return 0;
}

int vapp_send_all(int fd, const uint8_t *p, size_t n, uint64_t timeout_ms)
{
    uint64_t deadline = vapp_mono_ms() + timeout_ms;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            uint64_t now = vapp_mono_ms();
            if (now >= deadline)
                return -1;
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            (void)poll(&pf, 1, (int)(deadline - now));
            continue;
        }
        return -1;
    }
    return 0;
}
