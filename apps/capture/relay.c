/*
 * relay.c - `veil-capture relay`: records Veil sessions without capture
 * privileges by standing between a client and a server (docs/CAPTURE.md,
 * "relay"; captures/README.md explains how the corpus is made with it).
 *
 *   veil-capture relay --listen [ADDR:]PORT --to HOST:PORT -w OUT.pcap
 *                      [--segments record|flight|split:N] [--raw]
 *                      [--count N] [--timeout SEC]
 *
 * The relay accepts a client, connects to the server and forwards bytes
 * both ways.  It frames each direction into records with veil_header_decode
 * (libproto) and forwards whole records; what it forwarded, in order, is
 * then written as a pcap of one TCP connection (Ethernet, IPv4 or IPv6)
 * whose segments follow a rule chosen by --segments instead of the kernel's
 * timing:
 *
 *   record   one record per TCP segment (default)
 *   flight   every run of records sent by one side before the other side
 *            sends is one segment (so records are coalesced)
 *   split:N  every record is cut into segments of at most N bytes (so records
 *            and even headers are split); the relay also forwards it to the
 *            server in N-byte writes
 *
 * The synthesised connection opens with SYN, SYN-ACK, ACK (ISNs 0x0a000000
 * for the client, 0x0b000000 for the server), acknowledges each run of data
 * with the next segment of the other side or a pure ACK, and closes with the
 * FINs after all data: the server's first (it closes first in every Veil
 * ending), then the client's; a connection the relay cut (test hook) shows
 * the relay's FIN first.  --raw forwards bytes as read, for non-Veil traffic,
 * with the flight rule.
 *
 * In a VEIL_TEST_HOOKS build with VEIL_TEST_CLOCK set, the file is
 * reproducible byte for byte: packet i is stamped VEIL_TEST_CLOCK + i ms, the
 * client port is 40000 + the connection number and the server port is
 * --test-server-port (default 51424).  Test-only options there:
 * --test-tamper (flip a bit in the first client appdata body) and
 * --test-cut-after N (close both sides after forwarding N server records).
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"

static const char *const SYN_RELAY =
    "veil-capture relay --listen [ADDR:]PORT --to HOST:PORT -w FILE [options]";

#define C_ISN 0x0a000000u
#define S_ISN 0x0b000000u
#define MAX_SEG 60000

enum seg_mode { SEG_RECORD, SEG_FLIGHT, SEG_SPLIT };

typedef struct chunk {
    int dir;       /* VC_C2S / VC_S2C */
    int fin;       /* a FIN (no data) */
    int cut;       /* FIN by the relay itself */
    size_t off;    /* into log */
    size_t len;
    uint64_t ts_ns;
} chunk;

typedef struct relay_opts {
    const char *listen_addr, *listen_port, *to_host, *to_port, *wfile;
    enum seg_mode seg;
    size_t split;
    int raw;
    unsigned long count;
    uint64_t timeout_ms;
    int tamper;
    unsigned long cut_after;
    uint16_t test_server_port;
} relay_opts;

typedef struct conn_log {
    veil_buf log; /* every byte forwarded, both directions, in order */
    chunk *ch;
    size_t n, cap;
    veil_buf in[2]; /* bytes read but not yet forwarded (incomplete record) */
    int raw[2];     /* direction forwarded as raw bytes */
    int eof[2];
    unsigned long s2c_records;
    int tampered, cut;
} conn_log;

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int add_chunk(conn_log *cl, int dir, const uint8_t *p, size_t n, int fin, int cut)
{
    if (cl->n == cl->cap) {
        size_t nc = cl->cap ? cl->cap * 2 : 64;
        chunk *nch = realloc(cl->ch, nc * sizeof *nch);
        if (nch == NULL)
            return -1;
        cl->ch = nch;
        cl->cap = nc;
    }
    size_t off = cl->log.len;
    if (n > 0) {
        if (veil_buf_reserve(&cl->log, n) != 0)
            return -1;
        memcpy(cl->log.base + off, p, n);
        cl->log.len += n;
    }
    cl->ch[cl->n++] = (chunk){.dir = dir, .fin = fin, .cut = cut, .off = off, .len = n,
                              .ts_ns = wall_ns()};
    return 0;
}

static int forward(const relay_opts *o, int fd, const uint8_t *p, size_t n)
{
    if (o->seg != SEG_SPLIT || o->split == 0)
        return vapp_send_all(fd, p, n, 5000);
    /* Split for real: separate small writes, so the peer reassembles pieces. */
    for (size_t i = 0; i < n; i += o->split) {
        size_t k = n - i < o->split ? n - i : o->split;
        if (vapp_send_all(fd, p + i, k, 5000) != 0)
            return -1;
        struct timespec ts = {0, 1000000}; /* 1 ms */
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Forwards what is complete in cl->in[dir] to fd; returns -1 on a send error. */
static int pump_dir(const relay_opts *o, conn_log *cl, int dir, int fd)
{
    veil_buf *in = &cl->in[dir];
    for (;;) {
        size_t take;
        if (cl->raw[dir]) {
            take = in->len;
            if (take == 0)
                return 0;
        } else {
            if (in->len < VEIL_HEADER_LEN)
                return 0;
            veil_header h;
            if (veil_header_decode(in->base, in->len, &h) != 0) {
                fprintf(stderr, "%s relay: %s bytes are not Veil records: forwarding them as they are\n",
                        VC_PROG, vc_dir_name(dir));
                cl->raw[dir] = 1;
                continue;
            }
            take = VEIL_HEADER_LEN + (size_t)h.length;
            if (in->len < take)
                return 0;
#ifdef VEIL_TEST_HOOKS
            if (o->tamper && dir == VC_C2S && h.type == VEIL_REC_APPDATA && !cl->tampered &&
                h.length > 0) {
                in->base[VEIL_HEADER_LEN] ^= 0x01; /* test hook: an active attacker's bit flip */
                cl->tampered = 1;
            }
#endif
        }
        if (add_chunk(cl, dir, in->base, take, 0, 0) != 0)
            return -1;
        if (forward(o, fd, in->base, take) != 0)
            return -1;
        veil_buf_consume(in, take);
        if (dir == VC_S2C && !cl->raw[dir])
            cl->s2c_records++;
    }
}

/* ---- writing the synthesised connection ---------------------------------- */

typedef struct synth {
    pcap_dumper_t *dump;
    int det;            /* deterministic stamps */
    uint64_t det_base_ns;
    uint64_t n_pkts;    /* packets written to the file */
    uint64_t last_ns;
    vc_addr cli, srv;
    uint16_t cport, sport;
    uint32_t next[2];   /* next sequence number per direction */
    int failed;
    uint8_t frame[MAX_SEG + 200];
} synth;

static void put_packet(synth *sy, int dir, uint8_t flags, const uint8_t *p, size_t n, uint64_t ts)
{
    uint8_t l2[14] = {0};
    l2[12] = sy->cli.family == 4 ? 0x08 : 0x86;
    l2[13] = sy->cli.family == 4 ? 0x00 : 0xdd;
    vc_frame_spec s = {
        .l2 = l2,
        .l2_len = 14,
        .ipver = sy->cli.family,
        .src = dir == VC_C2S ? &sy->cli : &sy->srv,
        .dst = dir == VC_C2S ? &sy->srv : &sy->cli,
        .sport = dir == VC_C2S ? sy->cport : sy->sport,
        .dport = dir == VC_C2S ? sy->sport : sy->cport,
        .seq = sy->next[dir],
        .ack = (flags & VC_TCP_ACK) ? sy->next[!dir] : 0,
        .flags = flags,
        .window = 65535,
        .ip_id = 0,
        .payload = p,
        .payload_len = n,
    };
    size_t len = vc_frame_build(&s, sy->frame, sizeof sy->frame);
    if (len == 0) {
        sy->failed = 1;
        return;
    }
    uint64_t t;
    if (sy->det) {
        t = sy->det_base_ns + sy->n_pkts * 1000000u;
    } else {
        t = ts > sy->last_ns ? ts : sy->last_ns + 1000; /* strictly increasing */
    }
    sy->last_ns = t;
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(t / 1000000000u);
    h.ts.tv_usec = (suseconds_t)((t % 1000000000u) / 1000u);
    h.caplen = h.len = (bpf_u_int32)len;
    pcap_dump((u_char *)sy->dump, &h, sy->frame);
    sy->n_pkts++;
    sy->next[dir] += (uint32_t)n + ((flags & (VC_TCP_SYN | VC_TCP_FIN)) ? 1u : 0u);
}

typedef struct seg {
    int dir;
    size_t off, len;
    uint64_t ts;
} seg;

static void write_connection(synth *sy, const relay_opts *o, const conn_log *cl, uint64_t t0)
{
    sy->next[VC_C2S] = C_ISN;
    sy->next[VC_S2C] = S_ISN;
    put_packet(sy, VC_C2S, VC_TCP_SYN, NULL, 0, t0);
    put_packet(sy, VC_S2C, VC_TCP_SYN | VC_TCP_ACK, NULL, 0, t0);
    put_packet(sy, VC_C2S, VC_TCP_ACK, NULL, 0, t0);

    /* Segments by the --segments rule. */
    seg *sg = NULL;
    size_t ns = 0, cap = 0;
    int fin[2] = {0, 0}, cut_first = 0;
    uint64_t fin_ts[2] = {0, 0};
    for (size_t i = 0; i < cl->n; i++) {
        const chunk *c = &cl->ch[i];
        if (c->fin) {
            fin[c->dir] = 1;
            fin_ts[c->dir] = c->ts_ns;
            if (c->cut)
                cut_first = 1;
            continue;
        }
        size_t piece = o->seg == SEG_SPLIT && o->split > 0 ? o->split : MAX_SEG;
        for (size_t k = 0; k < c->len; k += piece) {
            size_t len = c->len - k < piece ? c->len - k : piece;
            int merge = (o->seg == SEG_FLIGHT || o->raw) && ns > 0 && sg[ns - 1].dir == c->dir &&
                        sg[ns - 1].off + sg[ns - 1].len == c->off + k &&
                        sg[ns - 1].len + len <= MAX_SEG;
            if (merge) {
                sg[ns - 1].len += len;
                continue;
            }
            if (ns == cap) {
                size_t nc = cap ? cap * 2 : 64;
                seg *nsg = realloc(sg, nc * sizeof *nsg);
                if (nsg == NULL) {
                    sy->failed = 1;
                    free(sg);
                    return;
                }
                sg = nsg;
                cap = nc;
            }
            sg[ns++] = (seg){.dir = c->dir, .off = c->off + k, .len = len, .ts = c->ts_ns};
        }
    }
    for (size_t i = 0; i < ns; i++) {
        put_packet(sy, sg[i].dir, VC_TCP_PSH | VC_TCP_ACK, cl->log.base + sg[i].off, sg[i].len,
                   sg[i].ts);
        int next_is_peer = i + 1 < ns && sg[i + 1].dir != sg[i].dir;
        int next_is_same = i + 1 < ns && sg[i + 1].dir == sg[i].dir;
        if (!next_is_peer && !next_is_same)
            put_packet(sy, !sg[i].dir, VC_TCP_ACK, NULL, 0, sg[i].ts); /* end of data */
    }
    free(sg);
    /* FINs after the data: the relay's cut first, else the server's first. */
    int first = cut_first ? VC_C2S : VC_S2C;
    int order[2] = {first, !first};
    for (int k = 0; k < 2; k++) {
        int d = order[k];
        if (!fin[d])
            continue;
        put_packet(sy, d, VC_TCP_FIN | VC_TCP_ACK, NULL, 0, fin_ts[d]);
        if (k == 1 || !fin[order[1]])
            put_packet(sy, !d, VC_TCP_ACK, NULL, 0, fin_ts[d]);
    }
}

/* ---- the relay loop ------------------------------------------------------- */

static int split_hostport(const char *s, const char *defhost, char *host, size_t hcap, char *port,
                          size_t pcap)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL) {
        snprintf(host, hcap, "%s", defhost);
        snprintf(port, pcap, "%s", s);
    } else {
        size_t hl = (size_t)(colon - s);
        if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
            s++;
            hl -= 2;
        }
        if (hl == 0 || hl >= hcap)
            return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
        snprintf(port, pcap, "%s", colon + 1);
    }
    return vapp_parse_port(port, 1) < 0 ? -1 : 0;
}

static void sockaddr_to_vc(const struct sockaddr_storage *ss, vc_addr *a, uint16_t *port)
{
    memset(a, 0, sizeof *a);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)ss;
        a->family = 4;
        memcpy(a->a, &s4->sin_addr, 4);
        *port = ntohs(s4->sin_port);
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)ss;
        a->family = 6;
        memcpy(a->a, &s6->sin6_addr, 16);
        *port = ntohs(s6->sin6_port);
        /* An IPv4-mapped peer on a dual-stack socket is shown as IPv4. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a->a, mapped, 12) == 0) {
            memmove(a->a, a->a + 12, 4);
            memset(a->a + 4, 0, 12);
            a->family = 4;
        }
    }
}

/* One client: returns 0, or -1 if the connection could not be relayed. */
static int relay_one(const relay_opts *o, int lfd, synth *sy, unsigned long index,
                     uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int cfd = -1;
    for (;;) {
        uint64_t now = vapp_mono_ms();
        if (now >= deadline) {
            fprintf(stderr, "%s relay: no client within the timeout\n", VC_PROG);
            return -1;
        }
        struct pollfd pf = {.fd = lfd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(deadline - now > 1000 ? 1000 : deadline - now));
        if (pr <= 0)
            continue;
        cfd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            fprintf(stderr, "%s relay: accept: %s\n", VC_PROG, strerror(errno));
            return -1;
        }
    }
    uint64_t t0 = wall_ns();
    char err[VAPP_ERRLEN], peer[VAPP_ADDRSTR_LEN];
    vapp_connect_error why;
    int sfd = vapp_connect(o->to_host, o->to_port, 5000, &why, peer, err);
    if (sfd < 0) {
        fprintf(stderr, "%s relay: %s\n", VC_PROG, err);
        close(cfd);
        return -1;
    }
    vapp_set_nodelay(cfd);
    vapp_set_nodelay(sfd);
    struct sockaddr_storage sss;
    socklen_t ssl = sizeof sss;
    if (getpeername(sfd, (struct sockaddr *)&sss, &ssl) != 0)
        memset(&sss, 0, sizeof sss);
    sockaddr_to_vc(&ss, &sy->cli, &sy->cport);
    sockaddr_to_vc(&sss, &sy->srv, &sy->sport);
    if (sy->cli.family != sy->srv.family) { /* one family in the synthesised file */
        sy->cli = sy->srv;
    }
    if (sy->det) {
        sy->cport = (uint16_t)(40000 + index);
        sy->sport = o->test_server_port;
    }

    conn_log cl;
    memset(&cl, 0, sizeof cl);
    veil_buf_init(&cl.log);
    veil_buf_init(&cl.in[0]);
    veil_buf_init(&cl.in[1]);
    cl.raw[0] = cl.raw[1] = o->raw;
    int fds[2] = {cfd, sfd}; /* read side of each direction */
    static uint8_t buf[65536];
    int ret = 0;
    uint64_t end = vapp_mono_ms() + o->timeout_ms;
    while (!(cl.eof[0] && cl.eof[1])) {
        uint64_t now = vapp_mono_ms();
        if (now >= end) {
            fprintf(stderr, "%s relay: connection %lu still open after the timeout; recorded so far\n",
                    VC_PROG, index);
            break;
        }
        struct pollfd pf[2] = {{.fd = cl.eof[0] ? -1 : cfd, .events = POLLIN},
                               {.fd = cl.eof[1] ? -1 : sfd, .events = POLLIN}};
        int pr = poll(pf, 2, (int)(end - now > 1000 ? 1000 : end - now));
        if (pr < 0 && errno != EINTR) {
            ret = -1;
            break;
        }
        for (int d = 0; d < 2; d++) {
            if (cl.eof[d] || !(pf[d].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(fds[d], buf, sizeof buf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            int out = fds[!d];
            if (n > 0) {
                if (veil_buf_reserve(&cl.in[d], (size_t)n) != 0) {
                    ret = -1;
                    break;
                }
                memcpy(cl.in[d].base + cl.in[d].len, buf, (size_t)n);
                cl.in[d].len += (size_t)n;
                if (pump_dir(o, &cl, d, out) != 0) {
                    /* the other side is gone: stop reading this one too */
                    cl.eof[d] = 1;
                    add_chunk(&cl, d, NULL, 0, 1, 0);
                }
#ifdef VEIL_TEST_HOOKS
                if (o->cut_after > 0 && !cl.cut && cl.s2c_records >= o->cut_after) {
                    /* Test hook: an attacker cuts the connection (no close_notify). */
                    cl.cut = 1;
                    add_chunk(&cl, VC_C2S, NULL, 0, 1, 1);
                    shutdown(sfd, SHUT_WR);
                    shutdown(cfd, SHUT_RDWR);
                    cl.eof[VC_C2S] = 1;
                }
#endif
                continue;
            }
            /* EOF or reset: pass on what is left (an incomplete record), then the FIN. */
            cl.raw[d] = 1;
            (void)pump_dir(o, &cl, d, out);
            cl.eof[d] = 1;
            add_chunk(&cl, d, NULL, 0, 1, 0);
            shutdown(out, SHUT_WR);
        }
        if (ret != 0)
            break;
    }
    close(cfd);
    close(sfd);
    write_connection(sy, o, &cl, t0);
    fprintf(stderr, "%s relay: connection %lu recorded (%zu bytes)\n", VC_PROG, index, cl.log.len);
    veil_buf_free(&cl.log);
    veil_buf_free(&cl.in[0]);
    veil_buf_free(&cl.in[1]);
    free(cl.ch);
    return ret;
}

static void relay_usage(void)
{
    printf("Usage: %s\n"
           "\n"
           "Records Veil sessions without capture privileges: accepts clients on\n"
           "[ADDR:]PORT (default address 127.0.0.1), forwards each to HOST:PORT, and writes\n"
           "what it forwarded to FILE as a pcap of a TCP connection, with segments that\n"
           "follow a rule instead of timing (docs/CAPTURE.md).\n"
           "\n"
           "Options:\n"
           "  -l, --listen [ADDR:]PORT  where clients connect (PORT 0: any free port; the\n"
           "                            port chosen is printed on standard error)\n"
           "  -t, --to HOST:PORT        the server\n"
           "  -w, --write FILE          the pcap to write\n"
           "      --segments RULE       record (default): one record per segment;\n"
           "                            flight: each side's run of records in one segment;\n"
           "                            split:N: segments of at most N bytes\n"
           "      --raw                 do not frame records (non-Veil traffic)\n"
           "  -n, --count N             relay N connections, one after the other (default 1)\n"
           "      --timeout SEC         give up waiting for a client, or end a connection,\n"
           "                            after SEC seconds (default 30)\n"
           "  -h, --help                show this help\n",
           SYN_RELAY);
}

int vc_cmd_relay(int argc, char **argv)
{
    enum { OPT_SEGMENTS = 256, OPT_RAW, OPT_TIMEOUT, OPT_TAMPER, OPT_CUT, OPT_TPORT };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"to", required_argument, NULL, 't'},
        {"write", required_argument, NULL, 'w'},
        {"segments", required_argument, NULL, OPT_SEGMENTS},
        {"raw", no_argument, NULL, OPT_RAW},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
#ifdef VEIL_TEST_HOOKS
        {"test-tamper", no_argument, NULL, OPT_TAMPER},
        {"test-cut-after", required_argument, NULL, OPT_CUT},
        {"test-server-port", required_argument, NULL, OPT_TPORT},
#endif
        {NULL, 0, NULL, 0},
    };
    relay_opts o;
    memset(&o, 0, sizeof o);
    o.count = 1;
    o.timeout_ms = 30000;
    o.test_server_port = VEIL_DEFAULT_PORT;
    const char *listen = NULL, *to = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:t:w:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 't': to = optarg; break;
        case 'w': o.wfile = optarg; break;
        case OPT_SEGMENTS:
            if (strcmp(optarg, "record") == 0) {
                o.seg = SEG_RECORD;
            } else if (strcmp(optarg, "flight") == 0) {
                o.seg = SEG_FLIGHT;
            } else if (strncmp(optarg, "split:", 6) == 0) {
                unsigned long n;
                if (vapp_parse_ulong(optarg + 6, 1, MAX_SEG, &n) != 0)
                    vapp_usage_error(VC_PROG, SYN_RELAY, "--segments split:N needs N from 1 to %d",
                                     MAX_SEG);
                o.seg = SEG_SPLIT;
                o.split = n;
            } else {
                vapp_usage_error(VC_PROG, SYN_RELAY, "--segments is record, flight or split:N");
            }
            break;
        case OPT_RAW: o.raw = 1; break;
        case 'n':
            if (vapp_parse_ulong(optarg, 1, 100000, &o.count) != 0)
                vapp_usage_error(VC_PROG, SYN_RELAY, "--count needs a number from 1 to 100000");
            break;
        case OPT_TIMEOUT:
            if (vapp_parse_seconds(optarg, 3600.0, 0, &o.timeout_ms) != 0)
                vapp_usage_error(VC_PROG, SYN_RELAY, "--timeout needs seconds (0 < SEC <= 3600)");
            break;
        case OPT_TAMPER: o.tamper = 1; break;
        case OPT_CUT:
            if (vapp_parse_ulong(optarg, 1, 1000000, &o.cut_after) != 0)
                vapp_usage_error(VC_PROG, SYN_RELAY, "--test-cut-after needs a record count");
            break;
        case OPT_TPORT: {
            int p = vapp_parse_port(optarg, 0);
            if (p < 0)
                vapp_usage_error(VC_PROG, SYN_RELAY, "--test-server-port needs a port");
            o.test_server_port = (uint16_t)p;
            break;
        }
        case 'h': relay_usage(); return VC_EXIT_OK;
        default: vapp_getopt_error(VC_PROG, SYN_RELAY, c, optopt, argv, optind);
        }
    }
    if (optind < argc)
        vapp_usage_error(VC_PROG, SYN_RELAY, "unexpected argument '%s'", argv[optind]);
    if (listen == NULL || to == NULL || o.wfile == NULL)
        vapp_usage_error(VC_PROG, SYN_RELAY, "--listen, --to and -w are required");
    char lhost[256], lport[16], thost[256], tport[16];
    if (split_hostport(listen, "127.0.0.1", lhost, sizeof lhost, lport, sizeof lport) != 0)
        vapp_usage_error(VC_PROG, SYN_RELAY, "--listen needs [ADDR:]PORT");
    if (split_hostport(to, "", thost, sizeof thost, tport, sizeof tport) != 0 || thost[0] == '\0' ||
        vapp_parse_port(tport, 0) < 0)
        vapp_usage_error(VC_PROG, SYN_RELAY, "--to needs HOST:PORT");
    o.to_host = thost;
    o.to_port = tport;

    synth *sy = calloc(1, sizeof *sy);
    if (sy == NULL)
        return VC_EXIT_LOCAL;
#ifdef VEIL_TEST_HOOKS
    uint64_t base_ms;
    if (vapp_test_clock(&base_ms)) {
        sy->det = 1;
        sy->det_base_ns = base_ms * 1000000u;
    }
#endif
    pcap_t *dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 262144, PCAP_TSTAMP_PRECISION_MICRO);
    if (dead == NULL || (sy->dump = pcap_dump_open(dead, o.wfile)) == NULL) {
        fprintf(stderr, "%s relay: cannot write %s: %s\n", VC_PROG, o.wfile,
                dead ? pcap_geterr(dead) : "out of memory");
        if (dead)
            pcap_close(dead);
        free(sy);
        return VC_EXIT_LOCAL;
    }
    char err[VAPP_ERRLEN];
    int lfds[VAPP_MAX_LISTEN];
    int nl = vapp_listen(lhost, lport, lfds, err);
    if (nl < 0) {
        fprintf(stderr, "%s relay: %s\n", VC_PROG, err);
        pcap_dump_close(sy->dump);
        pcap_close(dead);
        free(sy);
        return VC_EXIT_SOURCE;
    }
    for (int i = 1; i < nl; i++)
        close(lfds[i]);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[VAPP_ADDRSTR_LEN] = "?";
    if (getsockname(lfds[0], (struct sockaddr *)&ss, &sl) == 0)
        vapp_format_addr((struct sockaddr *)&ss, sl, addr);
    fprintf(stderr, "%s relay: listening on %s, forwarding to %s:%s, recording to %s\n", VC_PROG,
            addr, thost, tport, o.wfile);
    fflush(stderr);
    int status = VC_EXIT_OK;
    for (unsigned long i = 1; i <= o.count; i++) {
        if (relay_one(&o, lfds[0], sy, i, vapp_mono_ms() + o.timeout_ms) != 0) {
            status = VC_EXIT_SOURCE;
            break;
        }
    }
    close(lfds[0]);
    pcap_dump_flush(sy->dump);
    pcap_dump_close(sy->dump);
    pcap_close(dead);
    if (sy->failed) {
        fprintf(stderr, "%s relay: a packet could not be written\n", VC_PROG);
        status = VC_EXIT_LOCAL;
    }
    free(sy);
    return status;
}
