/*
 * veil-bench - the network half of the benchmarks (bench/run.sh): a bulk
 * server and the load generators, all over real sockets and libproto.
 *
 *   veil-bench serve      bulk server: every connection gets --bytes of
 *                         application data in full-size messages, then
 *                         close_notify (the counterpart of
 *                         `openssl s_server -WWW` serving a file)
 *   veil-bench get        bulk client: connection after connection, each
 *                         reading (and decrypting) everything the server
 *                         sends, until --time is up (`openssl s_time -www
 *                         FILE -new`)
 *   veil-bench handshakes sequential handshakes until --time is up, each
 *                         ended with close_notify (`openssl s_time -new`)
 *   veil-bench scale      opens --conns encrypted connections at once to a
 *                         veil-server (msg service), measures the server's
 *                         resident memory per connection, then has --active
 *                         of them send a message every --interval ms and
 *                         times each round trip to its acknowledgement
 *   veil-bench echo       a raw TCP echo server: the anchor for scale --raw
 *
 * Results go to standard output as key=value lines; progress and errors to
 * standard error.  Every loop is bounded by a time limit or a count.
 * Connections go to the address given (bench/run.sh uses loopback only).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "veilapp.h"

static const char *const PROG = "veil-bench";
static const char *const SYNOPSIS = "veil-bench serve|get|handshakes|scale|echo [options]";

#define IO_TIMEOUT_MS 10000 /* any single wait on a peer */
#define RDBUF_LEN (256 * 1024)
#define SEND_BATCH (64 * 1024) /* bulk server: default bytes sealed per send (4 records) */

static uint8_t g_rdbuf[RDBUF_LEN];

static void usage(void)
{
    printf("Usage: %s\n\n", SYNOPSIS);
    printf(
        "The network half of Veil's benchmarks (bench/run.sh runs it against OpenSSL\n"
        "in the same invocation; see bench/README.md).  Results are key=value lines\n"
        "on standard output; progress and errors go to standard error.\n\n"
        "  serve --key FILE [--port N] [--port-file F] [--bytes N] [--suite S] [--batch B]\n"
        "        bulk server on 127.0.0.1: each connection gets N bytes (default 1 GiB)\n"
        "        of application data in full-size messages, sealed B bytes (default\n"
        "        64 KiB) at a time between sends, then close_notify.\n"
        "        Serves one connection at a time, like openssl s_server, until killed.\n"
        "  get HOST:PORT [--time SEC] [--suite S]\n"
        "        downloads from 'serve' connection after connection, decrypting\n"
        "        and discarding, until SEC (default 2) have passed; prints conns,\n"
        "        bytes, seconds and bytes_per_s\n"
        "  handshakes HOST:PORT [--time SEC] [--group G]\n"
        "        one handshake after another (each ended with close_notify) until\n"
        "        SEC (default 2) have passed; prints handshakes, seconds, per_s\n"
        "  scale HOST:PORT [--conns N] [--active K] [--interval MS] [--time SEC]\n"
        "        [--size B] [--server-pid PID] [--raw]\n"
        "        opens N (default 10000) connections, each finishing its handshake\n"
        "        and one message/acknowledgement; with --server-pid, reports the\n"
        "        server's resident memory per connection; then K (default 1000) of\n"
        "        them send a B-byte message (default 64) every MS ms (default 100),\n"
        "        evenly staggered, for SEC (default 5), and the round trips to the\n"
        "        acknowledgement give rtt_p50_us and rtt_p99_us.  --raw: plain TCP\n"
        "        against 'echo' (B bytes out, the same B back), the anchor\n"
        "  echo [--port N] [--port-file F]\n"
        "        raw TCP echo server on 127.0.0.1 (epoll), until killed\n\n"
        "Suites: aes-256-gcm, chacha20-poly1305, aes-256-cbc-hmac-sha256.\n"
        "Groups: x25519 (default), ffdhe2048.\n"
        "Exit status: 0 done, 1 bad arguments, 2 cannot connect or listen,\n"
        "5 protocol error or timeout, 6 local error.\n");
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double secs_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e9; }

static void die(int status, const char *fmt, ...) VAPP_PRINTF(2, 3);
static void die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", PROG);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static void raise_nofile(size_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        die(VAPP_EXIT_LOCAL, "%zu descriptors needed, the hard limit is %llu (raise it with ulimit -Hn)",
            need, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        die(VAPP_EXIT_LOCAL, "cannot raise the descriptor limit to %zu: %s", need, strerror(errno));
}

static void split_hostport(const char *arg, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon[1] == '\0')
        vapp_usage_error(PROG, SYNOPSIS, "'%s' is not HOST:PORT", arg);
    size_t n = (size_t)(colon - arg);
    if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']') {
        arg++;
        n -= 2;
    }
    if (n == 0 || n >= hostlen || strlen(colon + 1) >= portlen)
        vapp_usage_error(PROG, SYNOPSIS, "'%s' is not HOST:PORT", arg);
    memcpy(host, arg, n);
    host[n] = '\0';
    strcpy(port, colon + 1);
}

static int connect_to(const char *host, const char *port, int blocking)
{
    vapp_connect_error why;
    char peer[VAPP_ADDRSTR_LEN], err[VAPP_ERRLEN];
    int fd = vapp_connect(host, port, IO_TIMEOUT_MS, &why, peer, err);
    if (fd < 0)
        die(VAPP_EXIT_CONNECT, "%s", err);
    if (blocking) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
            die(VAPP_EXIT_LOCAL, "fcntl: %s", strerror(errno));
        struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    vapp_set_nodelay(fd);
    return fd;
}

/* A listening socket on 127.0.0.1:port; the port chosen is written to port_file. */
static int listen_loopback(unsigned long port, const char *port_file)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        die(VAPP_EXIT_CONNECT, "cannot listen on 127.0.0.1:%lu: %s", port, strerror(errno));
    unsigned chosen = ntohs(sa.sin_port);
    if (port_file != NULL) {
        char text[16];
        int n = snprintf(text, sizeof text, "%u\n", chosen);
        char err[VAPP_ERRLEN];
        if (vapp_write_file_atomic(port_file, text, (size_t)n, 0644, 1, err) != 0)
            die(VAPP_EXIT_LOCAL, "%s", err);
    }
    /* After the port file: whoever waits for this line may read it. */
    fprintf(stderr, "%s: listening on 127.0.0.1:%u\n", PROG, chosen);
    return fd;
}

static void suite_option(const char *name, uint16_t *suite)
{
    if (veil_suite_from_name(name, suite) != 0)
        vapp_usage_error(PROG, SYNOPSIS, "unknown suite '%s'", name);
}

/* ------------------------------------------------------------------------ */
/* One blocking connection (serve, get, handshakes)                         */

struct bconn {
    int fd;
    veil_conn *vc;
    veil_buf out;
    uint64_t app_bytes;
    int peer_closed;
};

static int bconn_event(void *user, const veil_event *ev)
{
    struct bconn *b = user;
    if (ev->type == VEIL_EV_MESSAGE)
        b->app_bytes += ev->len;
    else if (ev->type == VEIL_EV_PEER_CLOSED)
        b->peer_closed = 1;
    return 0;
}

static void bconn_open(struct bconn *b, int fd, const veil_config *cfg)
{
    memset(b, 0, sizeof *b);
    b->fd = fd;
    veil_buf_init(&b->out);
    veil_callbacks cb = {.random = vapp_random, .on_event = bconn_event, .user = b};
    if (veil_conn_new(cfg, &cb, vapp_mono_ms(), &b->vc) != 0)
        die(VAPP_EXIT_LOCAL, "out of memory");
}

static void bconn_close(struct bconn *b)
{
    veil_conn_free(b->vc);
    veil_buf_free(&b->out);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}

/* Writes out what is queued.  0 or -1. */
static int bconn_flush(struct bconn *b)
{
    int r = b->out.len == 0 ? 0 : vapp_send_all(b->fd, b->out.base, b->out.len, IO_TIMEOUT_MS);
    b->out.len = 0;
    return r;
}

/* Reads once and feeds libproto.  1 on EOF, 0, or -1 (the error is printed). */
static int bconn_read(struct bconn *b, const char *what)
{
    ssize_t n = recv(b->fd, g_rdbuf, sizeof g_rdbuf, 0);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, what,
                errno == EAGAIN ? "timed out waiting for the peer" : strerror(errno));
        return -1;
    }
    if (n == 0)
        return 1;
    int r = veil_conn_feed(b->vc, g_rdbuf, (size_t)n, vapp_mono_ms(), &b->out);
    if (r != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, what, veil_strerror(r));
        (void)bconn_flush(b);
        return -1;
    }
    return 0;
}

/* Client or server: runs the handshake to its end.  0 or -1. */
static int bconn_handshake(struct bconn *b)
{
    if (veil_conn_start(b->vc, &b->out) != 0 || bconn_flush(b) != 0)
        return -1;
    while (!veil_conn_handshake_done(b->vc)) {
        int r = bconn_read(b, "handshake");
        if (r == 1)
            fprintf(stderr, "%s: handshake: the peer closed the connection\n", PROG);
        if (r != 0 || bconn_flush(b) != 0)
            return -1;
    }
    return 0;
}

/* Sends close_notify and, if wait is set, reads until the peer's. */
static int bconn_finish(struct bconn *b, int wait)
{
    if (veil_conn_close(b->vc, &b->out) != 0 || bconn_flush(b) != 0)
        return -1;
    while (wait && !b->peer_closed) {
        int r = bconn_read(b, "close");
        if (r != 0)
            return r == 1 ? 0 : -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* serve                                                                    */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int serve_one(int fd, const veil_config *cfg, uint64_t bytes, size_t batch)
{
    static uint8_t payload[VEIL_MAX_MESSAGE];
    struct bconn b;
    bconn_open(&b, fd, cfg);
    int ok = bconn_handshake(&b) == 0;
    uint64_t left = bytes;
    while (ok && left > 0 && !g_stop) {
        while (left > 0 && b.out.len < batch) {
            size_t n = left < sizeof payload ? (size_t)left : sizeof payload;
            if (veil_conn_send(b.vc, VEIL_MSG_TEXT, 0, payload, n, &b.out) != 0) {
                ok = 0;
                break;
            }
            left -= n;
        }
        if (bconn_flush(&b) != 0)
            ok = 0; /* the client went away: counted as incomplete */
    }
    if (ok)
        ok = bconn_finish(&b, 1) == 0;
    bconn_close(&b);
    return ok ? 0 : -1;
}

static int cmd_serve(int argc, char **argv)
{
    const char *key = NULL, *port_file = NULL;
    unsigned long port = 0;
    uint64_t bytes = 1ull << 30;
    size_t batch = SEND_BATCH;
    uint16_t suite = 0;
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"batch", required_argument, NULL, 'B'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"port-file", required_argument, NULL, 'P'},
                                         {"bytes", required_argument, NULL, 'b'},
                                         {"suite", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "k:p:P:b:s:B:", opts, NULL)) != -1) {
        unsigned long v;
        switch (c) {
        case 'k': key = optarg; break;
        case 'B':
            if (vapp_parse_ulong(optarg, 1, 64ul << 20, &v) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--batch: 1 to 64 MiB, not '%s'", optarg);
            batch = v;
            break;
        case 'p':
            if (vapp_parse_ulong(optarg, 0, 65535, &port) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "bad port '%s'", optarg);
            break;
        case 'P': port_file = optarg; break;
        case 'b':
            if (vapp_parse_ulong(optarg, 1, ~0ul, &v) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "bad byte count '%s'", optarg);
            bytes = v;
            break;
        case 's': suite_option(optarg, &suite); break;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (key == NULL)
        vapp_usage_error(PROG, SYNOPSIS, "serve needs --key FILE (make one with veil-keygen)");
    char err[VAPP_ERRLEN];
    veil_identity *id = NULL;
    if (vapp_identity_load(key, &id, err) != 0)
        die(VAPP_EXIT_LOCAL, "%s", err);
    veil_config cfg;
    veil_config_init(&cfg, VEIL_ROLE_SERVER);
    cfg.identity = id;
    if (suite != 0) {
        cfg.suites = &suite;
        cfg.n_suites = 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_loopback(port, port_file);
    unsigned long served = 0, failed = 0;
    while (!g_stop) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            die(VAPP_EXIT_CONNECT, "accept: %s", strerror(errno));
        }
        struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        vapp_set_nodelay(fd);
        if (serve_one(fd, &cfg, bytes, batch) == 0)
            served++;
        else
            failed++;
    }
    close(lfd);
    veil_identity_free(id);
    fprintf(stderr, "%s: served %lu connection%s in full (%lu incomplete)\n", PROG, served,
            served == 1 ? "" : "s", failed);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* get, handshakes                                                          */

struct client_opts {
    char host[256], port[16];
    double seconds;
    uint16_t suite, group;
};

static void client_options(int argc, char **argv, struct client_opts *o)
{
    static const struct option opts[] = {{"time", required_argument, NULL, 't'},
                                         {"suite", required_argument, NULL, 's'},
                                         {"group", required_argument, NULL, 'g'},
                                         {NULL, 0, NULL, 0}};
    int c;
    o->seconds = 2;
    o->suite = 0;
    o->group = VEIL_GROUP_X25519;
    while ((c = getopt_long(argc, argv, "t:s:g:", opts, NULL)) != -1) {
        uint64_t ms;
        switch (c) {
        case 't':
            if (vapp_parse_seconds(optarg, 3600, 0, &ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "bad time '%s'", optarg);
            o->seconds = (double)ms / 1000;
            break;
        case 's': suite_option(optarg, &o->suite); break;
        case 'g':
            if (veil_group_from_name(optarg, &o->group) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "unknown group '%s'", optarg);
            break;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind != argc - 1)
        vapp_usage_error(PROG, SYNOPSIS, "give the server as HOST:PORT");
    split_hostport(argv[optind], o->host, sizeof o->host, o->port, sizeof o->port);
}

static void client_config(const struct client_opts *o, veil_config *cfg)
{
    veil_config_init(cfg, VEIL_ROLE_CLIENT);
    if (o->suite != 0) {
        cfg->suites = &o->suite;
        cfg->n_suites = 1;
    }
    cfg->groups = &o->group;
    cfg->n_groups = 1;
}

static int cmd_get(int argc, char **argv)
{
    struct client_opts o;
    veil_config cfg;
    client_options(argc, argv, &o);
    client_config(&o, &cfg);
    uint64_t t0 = now_ns(), total = 0;
    unsigned long conns = 0;
    while (secs_since(t0) < o.seconds) {
        struct bconn b;
        bconn_open(&b, connect_to(o.host, o.port, 1), &cfg);
        int ok = bconn_handshake(&b) == 0;
        while (ok && !b.peer_closed) {
            int r = bconn_read(&b, "download");
            if (r == 1) {
                fprintf(stderr, "%s: download truncated: EOF without close_notify\n", PROG);
                ok = 0;
            } else if (r != 0) {
                ok = 0;
            }
        }
        if (ok)
            ok = bconn_finish(&b, 0) == 0;
        total += b.app_bytes;
        bconn_close(&b);
        if (!ok)
            return VAPP_EXIT_PROTOCOL;
        conns++;
    }
    double s = secs_since(t0);
    printf("conns=%lu\nbytes=%llu\nseconds=%.6f\nbytes_per_s=%.0f\n", conns, (unsigned long long)total, s,
           (double)total / s);
    return 0;
}

static int cmd_handshakes(int argc, char **argv)
{
    struct client_opts o;
    veil_config cfg;
    client_options(argc, argv, &o);
    client_config(&o, &cfg);
    uint64_t t0 = now_ns();
    unsigned long n = 0;
    while (secs_since(t0) < o.seconds) {
        struct bconn b;
        bconn_open(&b, connect_to(o.host, o.port, 1), &cfg);
        int ok = bconn_handshake(&b) == 0 && bconn_finish(&b, 0) == 0;
        bconn_close(&b);
        if (!ok)
            return VAPP_EXIT_PROTOCOL;
        n++;
    }
    double s = secs_since(t0);
    printf("handshakes=%lu\nseconds=%.6f\nper_s=%.1f\n", n, s, (double)n / s);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* scale                                                                    */

enum sc_state { SC_CONNECTING, SC_HANDSHAKE, SC_FIRST, SC_IDLE, SC_WAIT, SC_DONE };

struct sconn {
    int fd;
    enum sc_state state;
    veil_conn *vc; /* NULL with --raw */
    veil_buf out;
    uint32_t ev_mask;
    int hs_done, got_reply;
    size_t raw_got;
    uint64_t sent_ns;
};

struct scale {
    int epfd;
    int raw;
    size_t size;
    struct sockaddr_storage sa;
    socklen_t salen;
    veil_config cfg;
    struct sconn *c;
    uint64_t *rtt;
    size_t n_rtt, cap_rtt;
};

static uint8_t g_msg[VEIL_MAX_MESSAGE];

static int sc_event(void *user, const veil_event *ev)
{
    struct sconn *c = user;
    if (ev->type == VEIL_EV_HANDSHAKE_DONE)
        c->hs_done = 1;
    else if (ev->type == VEIL_EV_MESSAGE && ev->kind == VEIL_MSG_ACK)
        c->got_reply = 1;
    return 0;
}

static void sc_set_events(struct scale *s, struct sconn *c)
{
    uint32_t want = EPOLLIN | (c->out.len > 0 || c->state == SC_CONNECTING ? EPOLLOUT : 0);
    if (want == c->ev_mask)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die(VAPP_EXIT_LOCAL, "epoll_ctl: %s", strerror(errno));
    c->ev_mask = want;
}

static void sc_flush(struct scale *s, struct sconn *c)
{
    if (vapp_send_pending(c->fd, &c->out) != 0)
        die(VAPP_EXIT_PROTOCOL, "connection %zu: send: %s", (size_t)(c - s->c), strerror(errno));
    sc_set_events(s, c);
}

static void sc_send_message(struct scale *s, struct sconn *c)
{
    c->got_reply = 0;
    c->raw_got = 0;
    c->sent_ns = now_ns();
    int r = s->raw ? veil_buf_reserve(&c->out, s->size) : veil_conn_send(c->vc, VEIL_MSG_TEXT, 0, g_msg, s->size, &c->out);
    if (r != 0)
        die(VAPP_EXIT_LOCAL, "cannot queue a message: %s", veil_strerror(r));
    if (s->raw) {
        memcpy(c->out.base + c->out.len, g_msg, s->size);
        c->out.len += s->size;
    }
    sc_flush(s, c);
}

static void sc_start(struct scale *s, struct sconn *c)
{
    c->fd = socket(s->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die(VAPP_EXIT_LOCAL, "socket: %s", strerror(errno));
    vapp_set_nodelay(c->fd);
    veil_buf_init(&c->out);
    c->state = SC_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&s->sa, s->salen) != 0 && errno != EINPROGRESS)
        die(VAPP_EXIT_CONNECT, "connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die(VAPP_EXIT_LOCAL, "epoll_ctl: %s", strerror(errno));
    c->ev_mask = ev.events;
}

/* The socket is connected: the handshake (or, raw, the first message) starts. */
static void sc_connected(struct scale *s, struct sconn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
        die(VAPP_EXIT_CONNECT, "connect: %s (connection %zu)", strerror(err ? err : errno),
            (size_t)(c - s->c));
    if (s->raw) {
        c->state = SC_FIRST;
        sc_send_message(s, c);
        return;
    }
    veil_callbacks cb = {.random = vapp_random, .on_event = sc_event, .user = c};
    if (veil_conn_new(&s->cfg, &cb, vapp_mono_ms(), &c->vc) != 0 || veil_conn_start(c->vc, &c->out) != 0)
        die(VAPP_EXIT_LOCAL, "cannot start a handshake");
    c->state = SC_HANDSHAKE;
    sc_flush(s, c);
}

/* Returns 1 when the reply to the outstanding message is complete. */
static int sc_readable(struct scale *s, struct sconn *c)
{
    for (int i = 0; i < 4; i++) {
        ssize_t n = recv(c->fd, g_rdbuf, sizeof g_rdbuf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            die(VAPP_EXIT_PROTOCOL, "connection %zu: %s", (size_t)(c - s->c),
                n == 0 ? "the server closed the connection" : strerror(errno));
        if (s->raw) {
            c->raw_got += (size_t)n;
            if (c->raw_got > s->size)
                die(VAPP_EXIT_PROTOCOL, "echo: more bytes back than sent");
            c->got_reply = c->raw_got == s->size;
            continue;
        }
        int r = veil_conn_feed(c->vc, g_rdbuf, (size_t)n, vapp_mono_ms(), &c->out);
        if (r != 0)
            die(VAPP_EXIT_PROTOCOL, "connection %zu: %s", (size_t)(c - s->c), veil_strerror(r));
    }
    if (c->hs_done && c->state == SC_HANDSHAKE) {
        c->state = SC_FIRST;
        sc_send_message(s, c); /* also flushes what the handshake left */
    }
    if (c->out.len > 0)
        sc_flush(s, c);
    return c->got_reply;
}

static uint64_t rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die(VAPP_EXIT_LOCAL, "cannot read %s: %s", path, strerror(errno));
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int cmd_scale(int argc, char **argv)
{
    static const struct option opts[] = {{"conns", required_argument, NULL, 'n'},
                                         {"active", required_argument, NULL, 'a'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"time", required_argument, NULL, 't'},
                                         {"size", required_argument, NULL, 'z'},
                                         {"server-pid", required_argument, NULL, 'p'},
                                         {"window", required_argument, NULL, 'w'},
                                         {"suite", required_argument, NULL, 's'},
                                         {"raw", no_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    unsigned long n = 10000, active = 1000, interval_ms = 100, size = 64, pid = 0, window = 128;
    uint64_t run_ms = 5000;
    uint16_t suite = 0;
    struct scale s = {.raw = 0};
    int c;
    while ((c = getopt_long(argc, argv, "n:a:i:t:z:p:w:s:r", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (vapp_parse_ulong(optarg, 1, 100000, &n) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--conns: 1 to 100000, not '%s'", optarg);
            break;
        case 'a':
            if (vapp_parse_ulong(optarg, 1, 100000, &active) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--active: 1 to 100000, not '%s'", optarg);
            break;
        case 'i':
            if (vapp_parse_ulong(optarg, 1, 60000, &interval_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--interval: 1 to 60000 ms, not '%s'", optarg);
            break;
        case 't':
            if (vapp_parse_seconds(optarg, 600, 0, &run_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "bad time '%s'", optarg);
            break;
        case 'z':
            if (vapp_parse_ulong(optarg, 1, VEIL_MAX_MESSAGE, &size) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--size: 1 to %d bytes, not '%s'", VEIL_MAX_MESSAGE, optarg);
            break;
        case 'p':
            if (vapp_parse_ulong(optarg, 1, 1ul << 30, &pid) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "bad pid '%s'", optarg);
            break;
        case 'w':
            if (vapp_parse_ulong(optarg, 1, 10000, &window) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--window: 1 to 10000, not '%s'", optarg);
            break;
        case 's': suite_option(optarg, &suite); break;
        case 'r': s.raw = 1; break;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind != argc - 1)
        vapp_usage_error(PROG, SYNOPSIS, "give the server as HOST:PORT");
    if (active > n)
        active = n;
    char host[256], port[16];
    split_hostport(argv[optind], host, sizeof host, port, sizeof port);
    {
        /* Resolve once; every connection goes to the same address. */
        int fd = connect_to(host, port, 0);
        s.salen = sizeof s.sa;
        if (getpeername(fd, (struct sockaddr *)&s.sa, &s.salen) != 0)
            die(VAPP_EXIT_CONNECT, "getpeername: %s", strerror(errno));
        close(fd);
    }
    s.size = size;
    memset(g_msg, 'x', size);
    veil_config_init(&s.cfg, VEIL_ROLE_CLIENT);
    if (suite != 0) {
        s.cfg.suites = &suite;
        s.cfg.n_suites = 1;
    }
    raise_nofile(n + 64);
    signal(SIGPIPE, SIG_IGN);
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    s.c = calloc(n, sizeof *s.c);
    if (s.epfd < 0 || s.c == NULL)
        die(VAPP_EXIT_LOCAL, "out of memory");
    static struct epoll_event evs[1024];

    /* 1. Open every connection, at most `window` setting up at once. */
    uint64_t rss0 = pid ? rss_kib((long)pid) : 0;
    uint64_t t0 = now_ns(), deadline = t0 + 300ull * 1000000000u, next_report = t0 + 2000000000u;
    size_t started = 0, established = 0;
    while (established < n) {
        while (started < n && started - established < window)
            sc_start(&s, &s.c[started++]);
        if (now_ns() > deadline)
            die(VAPP_EXIT_PROTOCOL, "only %zu of %lu connections established in 300 s", established, n);
        if (now_ns() > next_report) {
            fprintf(stderr, "%s: %zu/%lu connections established\n", PROG, established, n);
            next_report += 2000000000u;
        }
        int k = epoll_wait(s.epfd, evs, 1024, 100);
        if (k < 0 && errno != EINTR)
            die(VAPP_EXIT_LOCAL, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < k; i++) {
            struct sconn *sc = evs[i].data.ptr;
            if (sc->state == SC_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    sc_connected(&s, sc);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && sc->out.len > 0)
                sc_flush(&s, sc);
            if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && sc_readable(&s, sc) && sc->state == SC_FIRST) {
                sc->state = SC_IDLE;
                established++;
            }
        }
    }
    double setup_s = secs_since(t0);
    usleep(200000); /* let the server finish its bookkeeping */
    uint64_t rss1 = pid ? rss_kib((long)pid) : 0;
    printf("conns=%lu\nsetup_seconds=%.3f\n", n, setup_s);
    if (pid)
        printf("server_rss_before_kib=%llu\nserver_rss_after_kib=%llu\nbytes_per_conn=%.0f\n",
               (unsigned long long)rss0, (unsigned long long)rss1,
               (double)(rss1 > rss0 ? rss1 - rss0 : 0) * 1024 / (double)n);
    fflush(stdout);
    fprintf(stderr, "%s: %lu connections established in %.1f s\n", PROG, n, setup_s);

    /* 2. `active` clients send a message every interval_ms, staggered evenly. */
    s.cap_rtt = (size_t)((double)active * ((double)run_ms / (double)interval_ms + 2));
    s.rtt = malloc(s.cap_rtt * sizeof *s.rtt);
    if (s.rtt == NULL)
        die(VAPP_EXIT_LOCAL, "out of memory");
    uint64_t period = (uint64_t)interval_ms * 1000000u, t1 = now_ns(), end = t1 + run_ms * 1000000u;
    uint64_t round = 0, late = 0, sent = 0;
    size_t next = 0;
    for (;;) {
        uint64_t now = now_ns();
        uint64_t due = t1 + round * period + next * period / active;
        while (due <= now && due < end) {
            struct sconn *sc = &s.c[next];
            if (sc->state == SC_IDLE) {
                sc->state = SC_WAIT;
                sc_send_message(&s, sc);
                sent++;
            } else {
                late++; /* the previous reply is not back yet */
            }
            if (++next == active) {
                next = 0;
                round++;
            }
            due = t1 + round * period + next * period / active;
        }
        if (now >= end + 2000000000ull)
            break; /* replies still missing 2 s after the end are reported */
        int outstanding = 0;
        if (now >= end) {
            for (size_t i = 0; i < active && !outstanding; i++)
                outstanding = s.c[i].state == SC_WAIT;
            if (!outstanding)
                break;
        }
        int timeout = now >= end ? 10 : (int)((due > now ? due - now : 0) / 1000000u);
        int k = epoll_wait(s.epfd, evs, 1024, timeout);
        if (k < 0 && errno != EINTR)
            die(VAPP_EXIT_LOCAL, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < k; i++) {
            struct sconn *sc = evs[i].data.ptr;
            if ((evs[i].events & EPOLLOUT) && sc->out.len > 0)
                sc_flush(&s, sc);
            if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && sc_readable(&s, sc) && sc->state == SC_WAIT) {
                sc->state = SC_IDLE;
                if (s.n_rtt < s.cap_rtt)
                    s.rtt[s.n_rtt++] = now_ns() - sc->sent_ns;
            }
        }
    }
    size_t missing = 0;
    for (size_t i = 0; i < active; i++)
        missing += s.c[i].state == SC_WAIT;
    if (s.n_rtt == 0)
        die(VAPP_EXIT_PROTOCOL, "no round trip completed");
    qsort(s.rtt, s.n_rtt, sizeof *s.rtt, cmp_u64);
    printf("active=%lu\ninterval_ms=%lu\nsize=%lu\nsent=%llu\nreplies=%zu\nlate=%llu\nmissing=%zu\n"
           "rtt_p50_us=%.1f\nrtt_p99_us=%.1f\nrtt_max_us=%.1f\n",
           active, interval_ms, size, (unsigned long long)sent, s.n_rtt, (unsigned long long)late, missing,
           (double)percentile(s.rtt, s.n_rtt, 0.50) / 1000, (double)percentile(s.rtt, s.n_rtt, 0.99) / 1000,
           (double)s.rtt[s.n_rtt - 1] / 1000);

    /* 3. Close everything (close_notify first, best effort). */
    for (size_t i = 0; i < n; i++) {
        struct sconn *sc = &s.c[i];
        if (sc->vc != NULL && veil_conn_close(sc->vc, &sc->out) == 0 && sc->out.len > 0)
            (void)send(sc->fd, sc->out.base, sc->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(sc->fd);
        veil_conn_free(sc->vc);
        veil_buf_free(&sc->out);
    }
    free(s.c);
    free(s.rtt);
    close(s.epfd);
    return missing == 0 ? 0 : VAPP_EXIT_PROTOCOL;
}

/* ------------------------------------------------------------------------ */
/* echo                                                                     */

static int cmd_echo(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"port-file", required_argument, NULL, 'P'},
                                         {NULL, 0, NULL, 0}};
    unsigned long port = 0;
    const char *port_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "p:P:", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (vapp_parse_ulong(optarg, 0, 65535, &port) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "bad port '%s'", optarg);
            break;
        case 'P': port_file = optarg; break;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    raise_nofile(16384);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_loopback(port, port_file);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epfd < 0 || vapp_set_nonblock(lfd) != 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0)
        die(VAPP_EXIT_LOCAL, "epoll: %s", strerror(errno));
    static struct epoll_event evs[1024];
    while (!g_stop) {
        int k = epoll_wait(epfd, evs, 1024, 500);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (int j = 0; j < 64; j++) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    vapp_set_nodelay(cfd);
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
                    if (epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev) != 0)
                        close(cfd);
                }
                continue;
            }
            ssize_t n = recv(fd, g_rdbuf, sizeof g_rdbuf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0 || vapp_send_all(fd, g_rdbuf, (size_t)n, IO_TIMEOUT_MS) != 0) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        vapp_usage_error(PROG, SYNOPSIS, "name a command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage();
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    argc--;
    argv++;
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "get") == 0)
        return cmd_get(argc, argv);
    if (strcmp(cmd, "handshakes") == 0)
        return cmd_handshakes(argc, argv);
    if (strcmp(cmd, "scale") == 0)
        return cmd_scale(argc, argv);
    if (strcmp(cmd, "echo") == 0)
        return cmd_echo(argc, argv);
    vapp_usage_error(PROG, SYNOPSIS, "unknown command '%s'", cmd);
}
