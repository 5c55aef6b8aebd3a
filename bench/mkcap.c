/*
 * mkcap.c - veil-mkcap: writes a large pcap of Veil sessions for the
 * decoding benchmark (bench/decode.sh).
 *
 * Each session is a real client and server veil_conn talking to each other
 * in memory (libproto's public API only, as tests/dissector/gen_session.c
 * does), framed as one TCP connection over IPv4 loopback:
 *
 *   127.0.0.1:CPORT > 127.0.0.1:51424    SYN, SYN-ACK, ACK
 *   handshake flights                     (each flight one write)
 *   BATCH client texts, then the server's acks ("received N bytes", as
 *   veil-server answers), repeated until MESSAGES texts were sent
 *   close_notify both ways, then FIN (server first), FIN, ACK
 *
 * Segmenting: every flight (the records one side writes before the other
 * answers) is coalesced and cut into segments of at most MSS payload bytes,
 * so records share segments and large records straddle them.  Default MSS
 * 1460 (Ethernet); 65483 is what Linux uses on lo.  Sequence and
 * acknowledgement numbers are exact; the receiver of a flight acknowledges
 * it with its next segment, or with a pure ACK when it has nothing to send.
 * IPv4 and TCP checksums are correct (vc_frame_build).  Sessions follow each
 * other; session i uses client port 10000 + i mod 50000 and client address
 * 127.0.(i / 50000).1.  Packets are 10 us apart.
 *
 * Randomness comes from a seeded splitmix64 generator, NOT a cryptographic
 * one: the capture is a reproducible benchmark fixture, never real traffic.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"

#define PROG "veil-mkcap"
#define SERVER_PORT VEIL_DEFAULT_PORT
#define FLIGHT_STEPS 100 /* handshake flights: bounded ping-pong */

static const char *const USAGE =
    "Usage: veil-mkcap -w OUT.pcap [options]\n"
    "\n"
    "Writes a pcap (Ethernet, IPv4, TCP to 127.0.0.1:51424) of Veil sessions made in\n"
    "memory by a libproto client and server: SYN, SYN-ACK, ACK, the handshake, then\n"
    "BATCH client texts answered by the server's acks until MESSAGES texts were sent,\n"
    "close_notify both ways and FIN.  Each flight is cut into segments of MSS bytes.\n"
    "\n"
    "Options:\n"
    "  -w, --write FILE       the pcap to write (required)\n"
    "      --keylog FILE      write the sessions' secrets (NSS keylog lines, as\n"
    "                         libproto emits them) to FILE\n"
    "  -n, --sessions N       sessions, one after the other (default 100)\n"
    "  -m, --messages N       texts the client sends per session (default 100)\n"
    "  -s, --size BYTES       payload bytes per text, 1 to 16375 (default 100)\n"
    "  -b, --batch N          texts per client flight before the server answers (default 4)\n"
    "      --no-acks          the server does not answer the texts\n"
    "      --plain            plaintext mode (default: encrypted)\n"
    "      --suite SUITE      the one suite offered: 1, 2, 3 or a name such as\n"
    "                         AES_256_GCM_SHA256 (default: libproto's first)\n"
    "      --mss BYTES        largest TCP payload per segment, 64 to 65483 (default 1460;\n"
    "                         65483 is Linux loopback's)\n"
    "      --seed N           seed of the generator (default 1)\n"
    "  -h, --help             this help\n"
    "\n"
    "Randomness (keys, randoms, texts) comes from a seeded splitmix64 generator, NOT a\n"
    "cryptographic one: the output is a reproducible benchmark fixture, never use it\n"
    "for real traffic.  Texts are lowercase letters and spaces.\n"
    "On success prints one line on stderr: sessions, packets, records and bytes.\n";

typedef struct side {
    veil_conn *conn;
    veil_buf out;
    uint64_t rng;
    uint32_t seq; /* next TCP sequence number this side sends */
    int acks_due;
    size_t ack_len[64];
    int peer_closed;
} side;

typedef struct mk {
    FILE *pcap;
    FILE *keylog;
    size_t mss;
    int acks; /* the server answers texts */
    uint64_t usec; /* packet time, microseconds since the epoch */
    uint64_t packets, records, bytes;
    vc_addr cli_addr, srv_addr;
    uint16_t cport;
    side *cl, *sv;
    uint8_t frame[14 + 20 + 20 + 65536];
} mk;

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_cb(void *user, uint8_t *out, size_t len)
{
    side *s = user;
    while (len > 0) {
        uint64_t z = splitmix(&s->rng);
        size_t n = len < 8 ? len : 8;
        memcpy(out, &z, n);
        out += n;
        len -= n;
    }
    return 0;
}

static FILE *g_keylog;

static void keylog_cb(void *user, const char *line)
{
    (void)user;
    if (g_keylog != NULL)
        fprintf(g_keylog, "%s\n", line);
}

static int event_cb(void *user, const veil_event *ev)
{
    side *s = user;
    if (ev->type == VEIL_EV_MESSAGE && ev->kind == VEIL_MSG_TEXT &&
        s->acks_due < (int)(sizeof s->ack_len / sizeof s->ack_len[0]))
        s->ack_len[s->acks_due++] = ev->len;
    if (ev->type == VEIL_EV_PEER_CLOSED)
        s->peer_closed = 1;
    return 0;
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* One segment from dir (0 = client) with flags and payload; all but a SYN
 * carry ACK with the other side's next sequence number. */
static int segment(mk *m, int dir, uint8_t flags, const uint8_t *data, size_t len)
{
    static const uint8_t eth[14] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00};
    side *from = dir == 0 ? m->cl : m->sv, *to = dir == 0 ? m->sv : m->cl;
    vc_frame_spec fs = {
        .l2 = eth, .l2_len = sizeof eth, .ipver = 4,
        .src = dir == 0 ? &m->cli_addr : &m->srv_addr, .dst = dir == 0 ? &m->srv_addr : &m->cli_addr,
        .sport = dir == 0 ? m->cport : SERVER_PORT, .dport = dir == 0 ? SERVER_PORT : m->cport,
        .seq = from->seq, .ack = (flags & VC_TCP_ACK) ? to->seq : 0, .flags = flags,
        .window = 65535, .ip_id = (uint16_t)m->packets, .payload = data, .payload_len = len,
    };
    uint8_t *rec = m->frame; /* pcap record header, then the frame */
    size_t n = vc_frame_build(&fs, m->frame + 16, sizeof m->frame - 16);
    if (n == 0)
        return -1;
    m->usec += 10;
    le32(rec, (uint32_t)(m->usec / 1000000u));
    le32(rec + 4, (uint32_t)(m->usec % 1000000u));
    le32(rec + 8, (uint32_t)n);
    le32(rec + 12, (uint32_t)n);
    if (fwrite(m->frame, 1, 16 + n, m->pcap) != 16 + n)
        return -1;
    m->packets++;
    m->bytes += 16 + n;
    from->seq += (uint32_t)len + ((flags & (VC_TCP_SYN | VC_TCP_FIN)) ? 1u : 0u);
    return 0;
}

/* Counts the records of a flight (their headers are in clear). */
static void count_records(mk *m, const uint8_t *p, size_t n)
{
    size_t off = 0;
    veil_header h;
    while (n - off >= VEIL_HEADER_LEN && veil_header_decode(p + off, n - off, &h) == 0) {
        m->records++;
        off += VEIL_HEADER_LEN + (size_t)h.length;
    }
}

/*
 * Sends what `from` has queued as one flight of MSS-sized segments, feeds it
 * to the peer, and acknowledges it with a pure ACK if the peer has nothing
 * to answer.  Returns 0 or a libproto error.
 */
static int flush(mk *m, int dir, uint64_t now)
{
    side *from = dir == 0 ? m->cl : m->sv, *to = dir == 0 ? m->sv : m->cl;
    if (from->out.len == 0)
        return 0;
    count_records(m, from->out.base, from->out.len);
    for (size_t off = 0; off < from->out.len;) {
        size_t n = from->out.len - off < m->mss ? from->out.len - off : m->mss;
        int last = off + n == from->out.len;
        if (segment(m, dir, (uint8_t)(VC_TCP_ACK | (last ? VC_TCP_PSH : 0)), from->out.base + off, n) != 0)
            return VEIL_ERR_INVALID_ARG;
        off += n;
    }
    int ret = veil_conn_feed(to->conn, from->out.base, from->out.len, now, &to->out);
    veil_buf_consume(&from->out, from->out.len);
    if (ret == 0 && to->out.len == 0 && !(m->acks && to->acks_due > 0) && segment(m, 1 - dir, VC_TCP_ACK, NULL, 0) != 0)
        ret = VEIL_ERR_INVALID_ARG;
    return ret;
}

typedef struct opts {
    unsigned long sessions, messages, size, batch, mss, seed;
    int plain, acks;
    uint16_t suite;
} opts;

/* One session, appended to the capture. */
static int session(mk *m, const opts *o, unsigned long i, const veil_identity *id, const uint8_t *texts,
                   size_t texts_len)
{
    side cl = {.rng = o->seed * 0x100000001b3ull + 2 * i + 1}, sv = {.rng = o->seed * 0x100000001b3ull + 2 * i + 2};
    veil_config ccfg, scfg;
    veil_config_init(&ccfg, VEIL_ROLE_CLIENT);
    veil_config_init(&scfg, VEIL_ROLE_SERVER);
    ccfg.modes = o->plain ? VEIL_MODE_PLAINTEXT : VEIL_MODE_ENCRYPTED;
    scfg.modes = VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT;
    scfg.identity = id;
    if (o->suite != 0) {
        ccfg.suites = &o->suite;
        ccfg.n_suites = 1;
    }
    veil_callbacks ccb = {.random = rng_cb, .keylog = keylog_cb, .on_event = event_cb, .user = &cl};
    veil_callbacks scb = {.random = rng_cb, .on_event = event_cb, .user = &sv}; /* one keylog line set */
    veil_buf_init(&cl.out);
    veil_buf_init(&sv.out);
    m->cl = &cl;
    m->sv = &sv;
    m->cport = (uint16_t)(10000 + i % 50000);
    m->cli_addr.a[2] = (uint8_t)(i / 50000);
    cl.seq = (uint32_t)splitmix(&cl.rng);
    sv.seq = (uint32_t)splitmix(&sv.rng);
    uint64_t now = m->usec / 1000;
    int ret = veil_conn_new(&ccfg, &ccb, now, &cl.conn);
    if (ret == 0)
        ret = veil_conn_new(&scfg, &scb, now, &sv.conn);
    if (ret != 0)
        goto out;
    ret = VEIL_ERR_INVALID_ARG;
    if (segment(m, 0, VC_TCP_SYN, NULL, 0) != 0 || segment(m, 1, VC_TCP_SYN | VC_TCP_ACK, NULL, 0) != 0 ||
        segment(m, 0, VC_TCP_ACK, NULL, 0) != 0)
        goto out;
    if ((ret = veil_conn_start(cl.conn, &cl.out)) != 0)
        goto out;
    for (int step = 0; step < FLIGHT_STEPS && (cl.out.len > 0 || sv.out.len > 0); step++)
        if ((ret = flush(m, 0, now)) != 0 || (ret = flush(m, 1, now)) != 0)
            goto out;
    if (!veil_conn_handshake_done(cl.conn) || !veil_conn_handshake_done(sv.conn)) {
        ret = VEIL_ERR_STATE;
        goto out;
    }
    size_t tpos = 0;
    for (unsigned long sent = 0; sent < o->messages;) {
        for (unsigned long b = 0; b < o->batch && sent < o->messages; b++, sent++) {
            if (tpos + o->size > texts_len)
                tpos = (tpos * 7 + 13) % (texts_len - o->size + 1);
            now = m->usec / 1000;
            if ((ret = veil_conn_send(cl.conn, VEIL_MSG_TEXT, now, texts + tpos, o->size, &cl.out)) != 0)
                goto out;
            tpos += o->size / 2 + 1;
        }
        if ((ret = flush(m, 0, now)) != 0)
            goto out;
        for (int a = 0; o->acks && a < sv.acks_due; a++) {
            char ack[64];
            int n = snprintf(ack, sizeof ack, "received %zu bytes", sv.ack_len[a]);
            if ((ret = veil_conn_send(sv.conn, VEIL_MSG_ACK, now, (const uint8_t *)ack, (size_t)n, &sv.out)) != 0)
                goto out;
        }
        sv.acks_due = 0;
        if ((ret = flush(m, 1, now)) != 0)
            goto out;
    }
    if ((ret = veil_conn_close(cl.conn, &cl.out)) != 0 || (ret = flush(m, 0, now)) != 0)
        goto out;
    if (!sv.peer_closed) {
        ret = VEIL_ERR_STATE;
        goto out;
    }
    if ((ret = veil_conn_close(sv.conn, &sv.out)) != 0 || (ret = flush(m, 1, now)) != 0)
        goto out;
    ret = VEIL_ERR_INVALID_ARG;
    if (segment(m, 1, VC_TCP_FIN | VC_TCP_ACK, NULL, 0) != 0 || segment(m, 0, VC_TCP_FIN | VC_TCP_ACK, NULL, 0) != 0 ||
        segment(m, 1, VC_TCP_ACK, NULL, 0) != 0)
        goto out;
    ret = 0;
out:
    veil_conn_free(cl.conn);
    veil_conn_free(sv.conn);
    veil_buf_free(&cl.out);
    veil_buf_free(&sv.out);
    m->cl = m->sv = NULL;
    return ret;
}

#define SYNOPSIS "veil-mkcap -w OUT.pcap [options]"
#define usage_error(...) vapp_usage_error(PROG, SYNOPSIS, __VA_ARGS__)

static unsigned long num(const char *s, const char *what, unsigned long min, unsigned long max)
{
    unsigned long v;
    if (vapp_parse_ulong(s, min, max, &v) != 0)
        usage_error("%s: out of range or not a number", what);
    return v;
}

int main(int argc, char **argv)
{
    enum { OPT_KEYLOG = 256, OPT_NO_ACKS, OPT_PLAIN, OPT_SUITE, OPT_MSS, OPT_SEED };
    static const struct option lopts[] = {
        {"write", required_argument, NULL, 'w'},     {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"sessions", required_argument, NULL, 'n'},  {"messages", required_argument, NULL, 'm'},
        {"size", required_argument, NULL, 's'},      {"batch", required_argument, NULL, 'b'},
        {"no-acks", no_argument, NULL, OPT_NO_ACKS}, {"plain", no_argument, NULL, OPT_PLAIN},
        {"suite", required_argument, NULL, OPT_SUITE}, {"mss", required_argument, NULL, OPT_MSS},
        {"seed", required_argument, NULL, OPT_SEED}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.sessions = 100, .messages = 100, .size = 100, .batch = 4, .mss = 1460, .seed = 1, .acks = 1};
    const char *out = NULL, *keylog = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":w:n:m:s:b:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'w': out = optarg; break;
        case OPT_KEYLOG: keylog = optarg; break;
        case 'n': o.sessions = num(optarg, "--sessions", 1, 10000000); break;
        case 'm': o.messages = num(optarg, "--messages", 0, 100000000); break;
        case 's': o.size = num(optarg, "--size", 1, VEIL_MAX_MESSAGE); break;
        case 'b': o.batch = num(optarg, "--batch", 1, 64); break;
        case OPT_NO_ACKS: o.acks = 0; break;
        case OPT_PLAIN: o.plain = 1; break;
        case OPT_SUITE:
            if (veil_suite_from_name(optarg, &o.suite) != 0) {
                o.suite = (uint16_t)num(optarg, "--suite", 1, 0xffff);
                if (strcmp(veil_suite_name(o.suite), "unknown") == 0)
                    usage_error("--suite %s: unknown suite", optarg);
            }
            break;
        case OPT_MSS: o.mss = num(optarg, "--mss", 64, 65483); break;
        case OPT_SEED: o.seed = num(optarg, "--seed", 0, ~0ul); break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (out == NULL)
        usage_error("-w OUT.pcap is required");
    if (o.plain && o.suite != 0)
        usage_error("--plain and --suite conflict: plaintext mode has no suite");

    static mk m;
    m.mss = o.mss;
    m.acks = o.acks;
    m.usec = 1700000000ull * 1000000u;
    m.cli_addr.family = m.srv_addr.family = 4;
    m.cli_addr.a[0] = m.srv_addr.a[0] = 127;
    m.cli_addr.a[3] = m.srv_addr.a[3] = 1;
    m.pcap = fopen(out, "wb");
    if (m.pcap == NULL) {
        fprintf(stderr, "%s: cannot create %s: %s\n", PROG, out, strerror(errno));
        return 2;
    }
    static char pbuf[1 << 20];
    setvbuf(m.pcap, pbuf, _IOFBF, sizeof pbuf);
    if (keylog != NULL && (g_keylog = fopen(keylog, "w")) == NULL) {
        fprintf(stderr, "%s: cannot create %s: %s\n", PROG, keylog, strerror(errno));
        fclose(m.pcap);
        return 2;
    }
    uint8_t hdr[24];
    le32(hdr, 0xa1b2c3d4u);
    hdr[4] = 2, hdr[5] = 0, hdr[6] = 4, hdr[7] = 0; /* version 2.4, little-endian fields */
    le32(hdr + 8, 0);
    le32(hdr + 12, 0);
    le32(hdr + 16, 262144);
    le32(hdr + 20, 1); /* LINKTYPE_ETHERNET */
    int status = 0;
    if (fwrite(hdr, 1, sizeof hdr, m.pcap) != sizeof hdr)
        status = 3;

    /* The texts: lowercase words drawn once; each message is a window of them. */
    size_t texts_len = 2 * (size_t)VEIL_MAX_MESSAGE;
    uint8_t *texts = malloc(texts_len);
    side idr = {.rng = o.seed ^ 0x5eedull};
    veil_identity *id = NULL;
    int ret = veil_identity_generate(rng_cb, &idr, &id);
    if (texts == NULL || ret != 0) {
        fprintf(stderr, "%s: %s\n", PROG, texts == NULL ? "out of memory" : veil_strerror(ret));
        status = 3;
    }
    for (size_t k = 0; texts != NULL && k < texts_len; k++) {
        uint64_t z = splitmix(&idr.rng);
        texts[k] = (z % 6 == 0) ? ' ' : (uint8_t)('a' + (z >> 8) % 26);
    }
    for (unsigned long i = 0; status == 0 && i < o.sessions; i++) {
        if ((ret = session(&m, &o, i, id, texts, texts_len)) != 0) {
            fprintf(stderr, "%s: session %lu failed: %s\n", PROG, i + 1, veil_strerror(ret));
            status = 3;
        }
    }
    if (fclose(m.pcap) != 0 && status == 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", PROG, out, strerror(errno));
        status = 3;
    }
    if (g_keylog != NULL && fclose(g_keylog) != 0 && status == 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", PROG, keylog, strerror(errno));
        status = 3;
    }
    free(texts);
    veil_identity_free(id);
    if (status == 0)
        fprintf(stderr, "%s: %lu sessions, %" PRIu64 " packets, %" PRIu64 " records, %" PRIu64 " bytes\n", PROG,
                o.sessions, m.packets, m.records, m.bytes + sizeof hdr);
    return status;
}
