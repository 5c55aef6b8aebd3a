/*
 * test_capture_unit.c - veil-capture's packet decoding, TCP reassembly and
 * record framing/resynchronisation (apps/capture), against well-formed and
 * hostile input.  Sessions are made in memory by libproto itself (a client
 * and a server talking), then cut into TCP segments, reordered, duplicated,
 * overlapped and truncated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"

/* ---- a deterministic RNG (not for anything but tests) --------------------- */

static uint64_t g_rng = 0x1234567887654321ull;

static uint64_t next64(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_cb(void *user, uint8_t *out, size_t n)
{
    (void)user;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)next64();
    return 0;
}

/* ---- an in-memory plaintext session made by libproto ---------------------- */

typedef struct session_bytes {
    veil_buf dir[2];       /* C>S and S>C streams */
    size_t bounds[2][64];  /* record start offsets per direction */
    size_t n_bounds[2];
    int order_dir[128];    /* every record in the order it was sent: direction */
    size_t order_k[128];   /* ... and its index in that direction */
    size_t n_order;
} session_bytes;

static void mark_records(session_bytes *sb, int d, size_t from)
{
    size_t off = from;
    while (off + VEIL_HEADER_LEN <= sb->dir[d].len) {
        veil_header h;
        assert_int_equal(veil_header_decode(sb->dir[d].base + off, sb->dir[d].len - off, &h), 0);
        sb->order_dir[sb->n_order] = d;
        sb->order_k[sb->n_order++] = sb->n_bounds[d];
        sb->bounds[d][sb->n_bounds[d]++] = off;
        off += VEIL_HEADER_LEN + h.length;
    }
}

static void append(session_bytes *sb, int d, veil_buf *out)
{
    size_t from = sb->dir[d].len;
    assert_int_equal(veil_buf_reserve(&sb->dir[d], out->len), 0);
    memcpy(sb->dir[d].base + sb->dir[d].len, out->base, out->len);
    sb->dir[d].len += out->len;
    mark_records(sb, d, from);
}

/* A session: handshake, n_msgs messages with their acks, close.  With
 * rsa_id, the server has that RSA identity and the client asks for RSA key
 * transport. */
static void make_session_rsa(session_bytes *sb, int n_msgs, uint8_t mode, const veil_identity *rsa_id)
{
    memset(sb, 0, sizeof *sb);
    veil_identity *id = NULL;
    if (rsa_id == NULL)
        assert_int_equal(veil_identity_generate(rng_cb, NULL, &id), 0);
    veil_config cc, sc;
    veil_config_init(&cc, VEIL_ROLE_CLIENT);
    veil_config_init(&sc, VEIL_ROLE_SERVER);
    static const uint16_t rsa_group[] = {VEIL_GROUP_RSA_TRANSPORT};
    if (rsa_id != NULL) {
        cc.groups = rsa_group;
        cc.n_groups = 1;
    }
    cc.modes = mode;
    sc.modes = VEIL_MODE_PLAINTEXT | VEIL_MODE_ENCRYPTED;
    sc.identity = rsa_id != NULL ? rsa_id : id;
    veil_callbacks cb = {.random = rng_cb};
    veil_conn *c, *s;
    assert_int_equal(veil_conn_new(&cc, &cb, 0, &c), 0);
    assert_int_equal(veil_conn_new(&sc, &cb, 0, &s), 0);
    veil_buf oc, os;
    veil_buf_init(&oc);
    veil_buf_init(&os);
    assert_int_equal(veil_conn_start(c, &oc), 0);
    append(sb, 0, &oc);
    assert_int_equal(veil_conn_feed(s, oc.base, oc.len, 0, &os), 0);
    oc.len = 0;
    append(sb, 1, &os);
    assert_int_equal(veil_conn_feed(c, os.base, os.len, 0, &oc), 0);
    os.len = 0;
    for (int i = 0; i < n_msgs; i++) {
        char text[32];
        snprintf(text, sizeof text, "message %d", i);
        assert_int_equal(veil_conn_send(c, VEIL_MSG_TEXT, 1000 + (uint64_t)i, (const uint8_t *)text,
                                        strlen(text), &oc),
                         0);
        append(sb, 0, &oc);
        assert_int_equal(veil_conn_feed(s, oc.base, oc.len, 0, &os), 0);
        oc.len = 0;
        assert_int_equal(veil_conn_send(s, VEIL_MSG_ACK, 2000, (const uint8_t *)"ok", 2, &os), 0);
        append(sb, 1, &os);
        assert_int_equal(veil_conn_feed(c, os.base, os.len, 0, &oc), 0);
        os.len = 0;
    }
    assert_int_equal(veil_conn_close(c, &oc), 0);
    append(sb, 0, &oc);
    veil_buf_free(&oc);
    veil_buf_free(&os);
    veil_conn_free(c);
    veil_conn_free(s);
    veil_identity_free(id);
}

static void make_session(session_bytes *sb, int n_msgs, uint8_t mode, veil_keylog *kl)
{
    (void)kl;
    make_session_rsa(sb, n_msgs, mode, NULL);
}

static void free_session(session_bytes *sb)
{
    veil_buf_free(&sb->dir[0]);
    veil_buf_free(&sb->dir[1]);
}

/* ---- frames ---------------------------------------------------------------- */

static const vc_addr CLI = {.family = 4, .a = {127, 0, 0, 1}};
static const vc_addr SRV = {.family = 4, .a = {127, 0, 0, 2}};

static size_t eth_frame(uint8_t *out, size_t cap, int dir, uint32_t seq, uint8_t flags,
                        const uint8_t *p, size_t n, uint16_t cport)
{
    uint8_t l2[14] = {0};
    l2[12] = 0x08;
    vc_frame_spec s = {.l2 = l2, .l2_len = 14, .ipver = 4,
                       .src = dir == 0 ? &CLI : &SRV, .dst = dir == 0 ? &SRV : &CLI,
                       .sport = dir == 0 ? cport : 51424, .dport = dir == 0 ? 51424 : cport,
                       .seq = seq, .ack = 0, .flags = flags, .window = 65535,
                       .payload = p, .payload_len = n};
    return vc_frame_build(&s, out, cap);
}

/* ---- packet parsing -------------------------------------------------------- */

static void test_pkt_roundtrip(void **state)
{
    (void)state;
    uint8_t f[256];
    const uint8_t data[] = "hello";
    size_t n = eth_frame(f, sizeof f, 0, 0x01020304, VC_TCP_PSH | VC_TCP_ACK, data, 5, 40000);
    assert_int_equal(n, 14 + 20 + 20 + 5);
    vc_pkt p;
    assert_int_equal(vc_pkt_parse(VC_DLT_EN10MB, f, n, &p), VC_PKT_TCP);
    assert_int_equal(p.sport, 40000);
    assert_int_equal(p.dport, 51424);
    assert_int_equal(p.seq, 0x01020304);
    assert_int_equal(p.payload_len, 5);
    assert_memory_equal(p.payload, "hello", 5);
    /* IPv4 and TCP checksums verify: the one's complement sum is 0xffff. */
    uint32_t acc = 0;
    for (size_t i = 14; i < 34; i += 2)
        acc += (uint32_t)(f[i] << 8 | f[i + 1]);
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    assert_int_equal(acc, 0xffff);
    /* Ethernet padding after a short datagram is not payload. */
    uint8_t padded[128];
    memcpy(padded, f, n);
    memset(padded + n, 0xee, 20);
    assert_int_equal(vc_pkt_parse(VC_DLT_EN10MB, padded, n + 20, &p), VC_PKT_TCP);
    assert_int_equal(p.payload_len, 5);
}

static void test_pkt_link_types(void **state)
{
    (void)state;
    uint8_t eth[256], f[300];
    size_t n = eth_frame(eth, sizeof eth, 1, 7, VC_TCP_ACK, (const uint8_t *)"abc", 3, 40001);
    const uint8_t *ip = eth + 14;
    size_t iplen = n - 14;
    vc_pkt p;
    /* RAW, IPV4 */
    assert_int_equal(vc_pkt_parse(VC_DLT_RAW, ip, iplen, &p), VC_PKT_TCP);
    assert_int_equal(p.payload_len, 3);
    assert_int_equal(vc_pkt_parse(VC_DLT_IPV4, ip, iplen, &p), VC_PKT_TCP);
    /* VLAN-tagged Ethernet (two tags) */
    memcpy(f, eth, 12);
    const uint8_t tags[] = {0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 7, 0x08, 0x00};
    memcpy(f + 12, tags, sizeof tags);
    memcpy(f + 22, ip, iplen);
    assert_int_equal(vc_pkt_parse(VC_DLT_EN10MB, f, 22 + iplen, &p), VC_PKT_TCP);
    assert_int_equal(p.seq, 7);
    /* Linux SLL: protocol at offset 14 */
    memset(f, 0, 16);
    f[14] = 0x08;
    memcpy(f + 16, ip, iplen);
    assert_int_equal(vc_pkt_parse(VC_DLT_LINUX_SLL, f, 16 + iplen, &p), VC_PKT_TCP);
    /* Linux SLL2: protocol first */
    memset(f, 0, 20);
    f[0] = 0x08;
    memcpy(f + 20, ip, iplen);
    assert_int_equal(vc_pkt_parse(VC_DLT_LINUX_SLL2, f, 20 + iplen, &p), VC_PKT_TCP);
    /* BSD null, both byte orders of AF_INET */
    memset(f, 0, 4);
    f[0] = 2;
    memcpy(f + 4, ip, iplen);
    assert_int_equal(vc_pkt_parse(VC_DLT_NULL, f, 4 + iplen, &p), VC_PKT_TCP);
    f[0] = 0;
    f[3] = 2;
    assert_int_equal(vc_pkt_parse(VC_DLT_NULL, f, 4 + iplen, &p), VC_PKT_TCP);
    assert_int_equal(vc_pkt_parse(VC_DLT_LOOP, f, 4 + iplen, &p), VC_PKT_TCP);
    /* unknown link type */
    assert_int_equal(vc_pkt_parse(147, f, 4 + iplen, &p), VC_PKT_BAD_LINK);
    /* a fragment is not decoded */
    uint8_t frag[256];
    memcpy(frag, ip, iplen);
    frag[6] = 0x20; /* MF */
    assert_int_equal(vc_pkt_parse(VC_DLT_RAW, frag, iplen, &p), VC_PKT_FRAGMENT);
}

static void test_pkt_ipv6(void **state)
{
    (void)state;
    vc_addr a6 = {.family = 6, .a = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
    vc_addr b6 = {.family = 6, .a = {0x20, 0x01, 0x0d, 0xb8, [15] = 2}};
    uint8_t f[256];
    vc_frame_spec s = {.ipver = 6, .src = &a6, .dst = &b6, .sport = 1, .dport = 2, .seq = 9,
                       .flags = VC_TCP_ACK, .payload = (const uint8_t *)"xy", .payload_len = 2};
    size_t n = vc_frame_build(&s, f, sizeof f);
    assert_int_equal(n, 40 + 20 + 2);
    vc_pkt p;
    assert_int_equal(vc_pkt_parse(VC_DLT_RAW, f, n, &p), VC_PKT_TCP);
    assert_int_equal(p.payload_len, 2);
    char buf[VC_ADDRSTR_LEN];
    vc_addr_format(&p.src, p.sport, buf);
    assert_string_equal(buf, "[2001:db8::1]:1");
    /* With a hop-by-hop header and an atomic fragment header in front of TCP. */
    uint8_t g[300];
    memcpy(g, f, 40);
    g[6] = 0;                        /* next: hop-by-hop */
    const uint8_t hbh[8] = {44, 0};  /* next: fragment, length 0 (8 bytes) */
    const uint8_t fr[8] = {6, 0, 0, 0, 0, 0, 0, 1};
    memcpy(g + 40, hbh, 8);
    memcpy(g + 48, fr, 8);
    memcpy(g + 56, f + 40, 22);
    g[4] = 0;
    g[5] = 16 + 22;
    assert_int_equal(vc_pkt_parse(VC_DLT_IPV6, g, 56 + 22, &p), VC_PKT_TCP);
    assert_int_equal(p.ip_hdr_len, 56);
    assert_int_equal(p.payload_len, 2);
    g[50] = 0x01; /* M flag: a real fragment */
    assert_int_equal(vc_pkt_parse(VC_DLT_IPV6, g, 56 + 22, &p), VC_PKT_FRAGMENT);
}

/* Every prefix of a valid frame, and random frames of every link type, are
 * handled without reading out of bounds (the sanitizer build checks). */
static void test_pkt_hostile(void **state)
{
    (void)state;
    uint8_t f[256];
    size_t n = eth_frame(f, sizeof f, 0, 1, VC_TCP_ACK, (const uint8_t *)"0123456789", 10, 40000);
    vc_pkt p;
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, f, cut);
        vc_pkt_kind k = vc_pkt_parse(VC_DLT_EN10MB, copy, cut, &p);
        if (k == VC_PKT_TCP)
            assert_true(p.payload + p.payload_len <= copy + cut);
        free(copy);
    }
    static const int dlts[] = {0, 1, 12, 101, 108, 113, 228, 229, 276};
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(next64() % 120);
        uint8_t *buf = malloc(len ? len : 1);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)next64();
        if (len > 20 && (i & 1)) { /* make it look like IPv4 more often */
            buf[0] = 0x45;
            buf[9] = 6;
        }
        vc_pkt_kind k = vc_pkt_parse(dlts[i % 9], buf, len, &p);
        if (k == VC_PKT_TCP)
            assert_true(p.payload + p.payload_len <= buf + len);
        free(buf);
    }
}

/* ---- reassembly ------------------------------------------------------------- */

typedef struct collect {
    veil_buf got[2];
    uint64_t gaps[2], gap_bytes[2];
    int unknown_gap[2];
    int opened, closed, fins[2];
    char why[128];
} collect;

static void c_open(void *u, vc_stream *s) { (void)s; ((collect *)u)->opened++; }
static void c_data(void *u, vc_stream *s, int d, const uint8_t *p, size_t n)
{
    (void)s;
    collect *c = u;
    assert_int_equal(veil_buf_reserve(&c->got[d], n), 0);
    memcpy(c->got[d].base + c->got[d].len, p, n);
    c->got[d].len += n;
}
static void c_gap(void *u, vc_stream *s, int d, uint64_t n, const char *why)
{
    (void)s;
    (void)why;
    collect *c = u;
    c->gaps[d]++;
    c->gap_bytes[d] += n;
    if (n == 0)
        c->unknown_gap[d]++;
    /* Keep offsets aligned with the original: fill the hole with '#'. */
    if (n > 0 && n < 1000000) {
        assert_int_equal(veil_buf_reserve(&c->got[d], (size_t)n), 0);
        memset(c->got[d].base + c->got[d].len, '#', (size_t)n);
        c->got[d].len += (size_t)n;
    }
}
static void c_fin(void *u, vc_stream *s, int d) { (void)s; ((collect *)u)->fins[d]++; }
static void c_close(void *u, vc_stream *s, const char *why)
{
    (void)s;
    collect *c = u;
    c->closed++;
    snprintf(c->why, sizeof c->why, "%s", why);
}

static const vc_reasm_ops OPS = {c_open, c_data, c_gap, c_fin, c_close};

static uint64_t g_now; /* capture time given to the packets fed */

static void feed(vc_reasm *r, int dir, uint32_t seq, uint8_t flags, const uint8_t *p, size_t n,
                 uint16_t cport)
{
    uint8_t f[70000];
    size_t len = eth_frame(f, sizeof f, dir, seq, flags, p, n, cport);
    assert_true(len > 0);
    vc_pkt pk;
    assert_int_equal(vc_pkt_parse(VC_DLT_EN10MB, f, len, &pk), VC_PKT_TCP);
    vc_reasm_packet(r, &pk, g_now);
}

static void init_collect(collect *c)
{
    memset(c, 0, sizeof *c);
    veil_buf_init(&c->got[0]);
    veil_buf_init(&c->got[1]);
}

static void free_collect(collect *c)
{
    veil_buf_free(&c->got[0]);
    veil_buf_free(&c->got[1]);
}

#define DATA_LEN 20000

static uint8_t g_data[DATA_LEN];

static void fill_data(void)
{
    for (size_t i = 0; i < DATA_LEN; i++)
        g_data[i] = (uint8_t)('a' + (i * 7 + i / 13) % 26);
}

/* Segments of 100 bytes starting at ISN+1, fed in the order given by perm. */
static void run_order(uint32_t isn, const size_t *perm, size_t nseg, size_t max_ooo, collect *c,
                      int drop)
{
    vc_reasm_config cfg = {.max_ooo_bytes = max_ooo, .max_streams = 10};
    vc_reasm *r;
    assert_int_equal(vc_reasm_new(&cfg, &OPS, c, &r), 0);
    feed(r, 0, isn, VC_TCP_SYN, NULL, 0, 40000);
    feed(r, 1, 777, VC_TCP_SYN | VC_TCP_ACK, NULL, 0, 40000);
    for (size_t k = 0; k < nseg; k++) {
        size_t i = perm[k];
        if ((int)i == drop)
            continue;
        feed(r, 0, isn + 1 + (uint32_t)(i * 100), VC_TCP_ACK, g_data + i * 100, 100, 40000);
    }
    vc_reasm_finish(r);
    vc_reasm_free(r);
}

static void test_reasm_orders(void **state)
{
    (void)state;
    fill_data();
    size_t nseg = DATA_LEN / 100, perm[DATA_LEN / 100];
    const uint32_t isns[] = {1000, 0xffffff00u /* wraps */};
    for (int w = 0; w < 2; w++) {
        /* in order, reversed, and shuffled */
        for (int mode = 0; mode < 3; mode++) {
            for (size_t i = 0; i < nseg; i++)
                perm[i] = mode == 1 ? nseg - 1 - i : i;
            if (mode == 2)
                for (size_t i = nseg - 1; i > 0; i--) {
                    size_t j = (size_t)(next64() % (i + 1));
                    size_t t = perm[i];
                    perm[i] = perm[j];
                    perm[j] = t;
                }
            collect c;
            init_collect(&c);
            run_order(isns[w], perm, nseg, 1u << 20, &c, -1);
            assert_int_equal(c.got[0].len, DATA_LEN);
            assert_memory_equal(c.got[0].base, g_data, DATA_LEN);
            assert_int_equal(c.gaps[0], 0);
            assert_int_equal(c.closed, 1);
            free_collect(&c);
        }
    }
}

static void test_reasm_gap_and_limit(void **state)
{
    (void)state;
    fill_data();
    size_t nseg = DATA_LEN / 100, perm[DATA_LEN / 100];
    for (size_t i = 0; i < nseg; i++)
        perm[i] = i;
    /* A missing segment: reported at the end as a 100-byte gap, the rest delivered. */
    collect c;
    init_collect(&c);
    run_order(5000, perm, nseg, 1u << 20, &c, 17);
    assert_int_equal(c.gaps[0], 1);
    assert_int_equal(c.gap_bytes[0], 100);
    assert_int_equal(c.got[0].len, DATA_LEN);
    assert_memory_equal(c.got[0].base, g_data, 1700);
    assert_memory_equal(c.got[0].base + 1800, g_data + 1800, DATA_LEN - 1800);
    free_collect(&c);
    /* The same with a 1 KiB out-of-order limit: the gap is declared as soon
       as the buffer would overflow, long before the end. */
    init_collect(&c);
    run_order(5000, perm, nseg, 1024, &c, 17);
    assert_int_equal(c.gaps[0], 1);
    assert_int_equal(c.gap_bytes[0], 100);
    assert_int_equal(c.got[0].len, DATA_LEN);
    assert_memory_equal(c.got[0].base + 1800, g_data + 1800, DATA_LEN - 1800);
    free_collect(&c);
    /* Reversed order with a tiny limit: holes forced repeatedly, memory bounded,
       every byte that was kept is in its place. */
    for (size_t i = 0; i < nseg; i++)
        perm[i] = nseg - 1 - i;
    init_collect(&c);
    run_order(5000, perm, nseg, 1024, &c, -1);
    assert_true(c.gaps[0] >= 1);
    assert_int_equal(c.got[0].len, DATA_LEN);
    for (size_t i = 0; i < DATA_LEN; i++)
        assert_true(c.got[0].base[i] == '#' || c.got[0].base[i] == g_data[i]);
    free_collect(&c);
}

/* A hole that stays open for 2 s of capture time becomes a gap then, not at
 * the end: a live capture that missed a segment keeps decoding. */
static void test_reasm_hole_timeout(void **state)
{
    (void)state;
    fill_data();
    collect c;
    init_collect(&c);
    vc_reasm_config cfg = {.max_ooo_bytes = 1u << 20, .max_streams = 10};
    vc_reasm *r;
    assert_int_equal(vc_reasm_new(&cfg, &OPS, &c, &r), 0);
    g_now = 1000000000000ull;
    feed(r, 0, 99, VC_TCP_SYN, NULL, 0, 40000);
    feed(r, 0, 100, VC_TCP_ACK, g_data, 100, 40000);
    feed(r, 0, 300, VC_TCP_ACK, g_data + 200, 100, 40000); /* 100-200 never comes */
    for (int i = 0; i < 10; i++) {
        g_now += 500000000ull; /* 0.5 s of other traffic */
        feed(r, 1, 5000, VC_TCP_SYN | VC_TCP_ACK, NULL, 0, 40000);
    }
    assert_int_equal(c.gaps[0], 1);
    assert_int_equal(c.gap_bytes[0], 100);
    assert_int_equal(c.got[0].len, 300);
    assert_int_equal(c.closed, 0); /* long before the end */
    g_now = 0;
    vc_reasm_finish(r);
    vc_reasm_free(r);
    free_collect(&c);
}

static void test_reasm_retrans_overlap(void **state)
{
    (void)state;
    fill_data();
    collect c;
    init_collect(&c);
    vc_reasm_config cfg = {.max_ooo_bytes = 1u << 20, .max_streams = 10};
    vc_reasm *r;
    assert_int_equal(vc_reasm_new(&cfg, &OPS, &c, &r), 0);
    uint32_t isn = 100;
    feed(r, 0, isn, VC_TCP_SYN, NULL, 0, 40000);
    /* 0-300, then a retransmission of 100-200, an overlap 250-450 whose first
       50 bytes disagree (first copy wins), an ahead segment 600-700, then
       400-650 (fills the hole, overlaps both sides), then a FIN. */
    feed(r, 0, isn + 1, VC_TCP_ACK, g_data, 300, 40000);
    feed(r, 0, isn + 1 + 100, VC_TCP_ACK, g_data + 100, 100, 40000);
    uint8_t bad[200];
    memcpy(bad, g_data + 250, 200);
    memset(bad, 'Z', 50);
    feed(r, 0, isn + 1 + 250, VC_TCP_ACK, bad, 200, 40000);
    feed(r, 0, isn + 1 + 600, VC_TCP_ACK, g_data + 600, 100, 40000);
    uint8_t bad2[250];
    memcpy(bad2, g_data + 400, 250);
    memset(bad2 + 240, 'Y', 10); /* disagrees with the buffered 600-700 */
    feed(r, 0, isn + 1 + 400, VC_TCP_ACK, bad2, 250, 40000);
    feed(r, 0, isn + 1 + 700, VC_TCP_FIN | VC_TCP_ACK, NULL, 0, 40000);
    assert_int_equal(c.got[0].len, 700);
    assert_memory_equal(c.got[0].base, g_data, 700);
    assert_int_equal(c.fins[0], 1);
    assert_int_equal(c.gaps[0], 0);
    vc_reasm_finish(r);
    vc_reasm_free(r);
    free_collect(&c);
}

static void test_reasm_midstream_rst_reuse(void **state)
{
    (void)state;
    fill_data();
    collect c;
    init_collect(&c);
    static const uint16_t ports[] = {51424};
    vc_reasm_config cfg = {.max_ooo_bytes = 4096, .max_streams = 10, .server_ports = ports,
                           .n_server_ports = 1};
    vc_reasm *r;
    assert_int_equal(vc_reasm_new(&cfg, &OPS, &c, &r), 0);
    /* No SYN: the server is recognised by its port, a gap of unknown size first. */
    feed(r, 1, 9000, VC_TCP_ACK, g_data, 50, 40000);
    assert_int_equal(c.opened, 1);
    int dir;
    vc_stream *s = vc_reasm_current(r, &dir);
    assert_non_null(s);
    assert_int_equal(dir, 1);
    assert_int_equal(s->cport, 40000);
    assert_true(s->midstream);
    assert_int_equal(c.unknown_gap[1], 1);
    assert_int_equal(c.got[1].len, 50);
    /* RST ends it. */
    feed(r, 0, 1, VC_TCP_RST, NULL, 0, 40000);
    assert_int_equal(c.closed, 1);
    /* A new connection on the same ports is a new stream. */
    feed(r, 0, 50, VC_TCP_SYN, NULL, 0, 40000);
    feed(r, 0, 51, VC_TCP_ACK, g_data, 10, 40000);
    feed(r, 0, 500, VC_TCP_SYN, NULL, 0, 40000); /* another ISN: reuse */
    assert_int_equal(c.opened, 3);
    assert_int_equal(c.closed, 2);
    assert_int_equal(vc_reasm_stream_count(r), 3);
    vc_reasm_finish(r);
    vc_reasm_free(r);
    free_collect(&c);
}

static void test_reasm_many_streams(void **state)
{
    (void)state;
    fill_data();
    collect c;
    init_collect(&c);
    vc_reasm_config cfg = {.max_ooo_bytes = 4096, .max_streams = 100};
    vc_reasm *r;
    assert_int_equal(vc_reasm_new(&cfg, &OPS, &c, &r), 0);
    /* 3000 concurrent streams, interleaved, against a limit of 100. */
    for (int round = 0; round < 2; round++)
        for (uint16_t p = 0; p < 3000; p++) {
            if (round == 0)
                feed(r, 0, 1000, VC_TCP_SYN, NULL, 0, (uint16_t)(10000 + p));
            feed(r, 0, 1001 + (uint32_t)round * 10, VC_TCP_ACK, g_data, 10, (uint16_t)(10000 + p));
        }
    assert_true(vc_reasm_evictions(r) > 0);
    vc_reasm_finish(r);
    assert_int_equal(c.opened, c.closed);
    vc_reasm_free(r);
    free_collect(&c);
}

/* ---- record framing, gaps and resynchronisation ------------------------------ */

typedef struct dec_log {
    int records[2], gaps, resyncs, framing, truncated, closes;
    uint64_t resync_off[8];
    int n_resync;
    char texts[32][32];
    int n_texts;
    int seq_errors;
} dec_log;

static void dec_cb(void *user, const vc_event *ev)
{
    dec_log *l = user;
    switch (ev->kind) {
    case VC_EV_RECORD:
        l->records[ev->dir]++;
        if (ev->rec->hdr.type == VEIL_REC_APPDATA && ev->rec->content != NULL &&
            ev->rec->parse_error == 0 && ev->rec->msg_kind == VEIL_MSG_TEXT && l->n_texts < 32) {
            size_t n = ev->rec->msg_len < 31 ? ev->rec->msg_len : 31;
            memcpy(l->texts[l->n_texts], ev->rec->msg_data, n);
            l->texts[l->n_texts++][n] = '\0';
        }
        if (!ev->rec->seq_ok && !ev->after_resync)
            l->seq_errors++;
        break;
    case VC_EV_GAP: l->gaps++; break;
    case VC_EV_RESYNC:
        if (l->n_resync < 8)
            l->resync_off[l->n_resync++] = ev->offset;
        l->resyncs++;
        break;
    case VC_EV_FRAMING: l->framing++; break;
    case VC_EV_TRUNCATED: l->truncated++; break;
    case VC_EV_CLOSE: l->closes++; break;
    default: break;
    }
}

/* Feeds the client stream of sb to a decoder in segments of seglen, skipping
 * the bytes [drop_from, drop_to) (so they are missing from the capture). */
static const veil_identity *g_rsa_key; /* given to the decoder (--rsa-key) */

static void decode_both(const session_bytes *sb, dec_log *l);

static void decode_client(const session_bytes *sb, size_t seglen, size_t drop_from, size_t drop_to,
                          int with_syn, dec_log *l)
{
    memset(l, 0, sizeof *l);
    vc_decoder_config dc = {.rsa_key = g_rsa_key, .reasm = {.max_ooo_bytes = 1u << 20, .max_streams = 10}};
    static const uint16_t ports[] = {51424};
    dc.reasm.server_ports = ports;
    dc.reasm.n_server_ports = 1;
    vc_decoder *d;
    assert_int_equal(vc_decoder_new(&dc, dec_cb, l, &d), 0);
    uint8_t f[70000];
    size_t n;
    if (with_syn) {
        n = eth_frame(f, sizeof f, 0, 99, VC_TCP_SYN, NULL, 0, 40000);
        vc_decoder_frame(d, VC_DLT_EN10MB, f, n, 0);
    }
    const veil_buf *b = &sb->dir[0];
    for (size_t off = 0; off < b->len; off += seglen) {
        size_t len = b->len - off < seglen ? b->len - off : seglen;
        if (off + len <= drop_from || off >= drop_to) {
            n = eth_frame(f, sizeof f, 0, 100 + (uint32_t)off, VC_TCP_ACK, b->base + off, len, 40000);
            vc_decoder_frame(d, VC_DLT_EN10MB, f, n, 0);
        }
    }
    n = eth_frame(f, sizeof f, 0, 100 + (uint32_t)b->len, VC_TCP_FIN | VC_TCP_ACK, NULL, 0, 40000);
    vc_decoder_frame(d, VC_DLT_EN10MB, f, n, 0);
    vc_decoder_finish(d);
    vc_decoder_free(d);
}

/* Both directions, one record per segment, in the order they were sent. */
static void decode_both(const session_bytes *sb, dec_log *l)
{
    memset(l, 0, sizeof *l);
    vc_decoder_config dc = {.rsa_key = g_rsa_key, .reasm = {.max_ooo_bytes = 1u << 20, .max_streams = 10}};
    vc_decoder *d;
    assert_int_equal(vc_decoder_new(&dc, dec_cb, l, &d), 0);
    uint8_t f[70000];
    size_t n = eth_frame(f, sizeof f, 0, 99, VC_TCP_SYN, NULL, 0, 40000);
    vc_decoder_frame(d, VC_DLT_EN10MB, f, n, 0);
    n = eth_frame(f, sizeof f, 1, 499, VC_TCP_SYN | VC_TCP_ACK, NULL, 0, 40000);
    vc_decoder_frame(d, VC_DLT_EN10MB, f, n, 0);
    /* In the order the records were sent (the observer follows the transcript). */
    for (size_t i = 0; i < sb->n_order; i++) {
        int dir = sb->order_dir[i];
        size_t k = sb->order_k[i];
        size_t off = sb->bounds[dir][k];
        size_t end = k + 1 < sb->n_bounds[dir] ? sb->bounds[dir][k + 1] : sb->dir[dir].len;
        n = eth_frame(f, sizeof f, dir, (dir ? 500u : 100u) + (uint32_t)off, VC_TCP_ACK,
                      sb->dir[dir].base + off, end - off, 40000);
        vc_decoder_frame(d, VC_DLT_EN10MB, f, n, 0);
    }
    vc_decoder_finish(d);
    vc_decoder_free(d);
}

/* RSA key transport: the server's RSA key alone decrypts the session (--rsa-key). */
static void test_decode_rsa_key(void **state)
{
    (void)state;
    veil_identity *rsa;
    assert_int_equal(veil_identity_generate_rsa(2048, &rsa), 0);
    session_bytes sb;
    make_session_rsa(&sb, 3, VEIL_MODE_ENCRYPTED, rsa);
    dec_log l;
    g_rsa_key = NULL;
    decode_both(&sb, &l);
    assert_int_equal(l.n_texts, 0);
    g_rsa_key = rsa;
    decode_both(&sb, &l);
    g_rsa_key = NULL;
    assert_int_equal(l.n_texts, 3);
    assert_string_equal(l.texts[2], "message 2");
    free_session(&sb);
    veil_identity_free(rsa);
}

static void test_decode_session(void **state)
{
    (void)state;
    session_bytes sb;
    make_session(&sb, 5, VEIL_MODE_PLAINTEXT, NULL);
    size_t nrec = sb.n_bounds[0];
    /* Every segment size, from 1 byte up: the same records. */
    const size_t sizes[] = {1, 3, 7, 16, 17, 100, 1500, 65000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        dec_log l;
        decode_client(&sb, sizes[k], 0, 0, 1, &l);
        assert_int_equal(l.records[0], (int)nrec);
        assert_int_equal(l.n_texts, 5);
        assert_string_equal(l.texts[0], "message 0");
        assert_string_equal(l.texts[4], "message 4");
        assert_int_equal(l.gaps + l.resyncs + l.framing + l.truncated + l.seq_errors, 0);
    }
    free_session(&sb);
}

static void test_decode_gap_resync(void **state)
{
    (void)state;
    session_bytes sb;
    make_session(&sb, 6, VEIL_MODE_PLAINTEXT, NULL);
    /* Records: CH, CF, msg0..msg5, close.  Lose the middle of msg1 (record 3):
       decoding resumes exactly at msg2, proven by msg3's header. */
    size_t r3 = sb.bounds[0][3], r4 = sb.bounds[0][4];
    dec_log l;
    decode_client(&sb, 1, r3 + 5, r3 + 20, 1, &l);
    assert_int_equal(l.gaps, 1);
    assert_int_equal(l.resyncs, 1);
    assert_int_equal(l.resync_off[0], r4);
    assert_int_equal(l.n_texts, 5); /* msg1 is lost */
    assert_string_equal(l.texts[0], "message 0");
    assert_string_equal(l.texts[1], "message 2");
    assert_int_equal(l.records[0], (int)sb.n_bounds[0] - 1);
    assert_int_equal(l.seq_errors, 0);
    /* A loss spanning several records and a header. */
    decode_client(&sb, 10, sb.bounds[0][2] + 3, sb.bounds[0][5] + 7, 1, &l);
    assert_int_equal(l.resyncs, 1);
    assert_int_equal(l.resync_off[0], sb.bounds[0][6]);
    /* A capture that starts mid-stream (no SYN, first bytes missing). */
    decode_client(&sb, 1, 0, sb.bounds[0][2] + 9, 0, &l);
    assert_int_equal(l.resyncs, 1);
    assert_int_equal(l.resync_off[0] + (sb.bounds[0][2] + 9), sb.bounds[0][3]);
    /* The last record is proven by the end of the stream (no record follows it). */
    size_t prev = sb.bounds[0][sb.n_bounds[0] - 2], last = sb.bounds[0][sb.n_bounds[0] - 1];
    decode_client(&sb, 4, prev + 5, prev + 10, 1, &l);
    assert_int_equal(l.resyncs, 1);
    assert_int_equal(l.resync_off[0], last);
    assert_int_equal(l.truncated, 0);
    free_session(&sb);
}

/* Garbage inside a stream: a framing error, then resynchronisation. */
static void test_decode_garbage(void **state)
{
    (void)state;
    session_bytes sb;
    make_session(&sb, 4, VEIL_MODE_PLAINTEXT, NULL);
    session_bytes g = sb;
    veil_buf_init(&g.dir[0]);
    veil_buf_init(&g.dir[1]);
    size_t cut = sb.bounds[0][3];
    assert_int_equal(veil_buf_reserve(&g.dir[0], sb.dir[0].len + 37), 0);
    memcpy(g.dir[0].base, sb.dir[0].base, cut);
    for (int i = 0; i < 37; i++)
        g.dir[0].base[cut + (size_t)i] = (uint8_t)("VL garbage!"[i % 11]);
    memcpy(g.dir[0].base + cut + 37, sb.dir[0].base + cut, sb.dir[0].len - cut);
    g.dir[0].len = sb.dir[0].len + 37;
    dec_log l;
    decode_client(&g, 13, 0, 0, 1, &l);
    assert_int_equal(l.framing, 1);
    assert_int_equal(l.resyncs, 1);
    assert_int_equal(l.resync_off[0], cut + 37);
    assert_int_equal(l.n_texts, 4);
    veil_buf_free(&g.dir[0]);
    free_session(&sb);
}

/* Random bytes as a TCP stream: nothing decoded, nothing crashes, memory stays bounded. */
static void test_decode_random_stream(void **state)
{
    (void)state;
    session_bytes g;
    memset(&g, 0, sizeof g);
    veil_buf_init(&g.dir[0]);
    assert_int_equal(veil_buf_reserve(&g.dir[0], 300000), 0);
    for (size_t i = 0; i < 300000; i++)
        g.dir[0].base[i] = (uint8_t)next64();
    /* Sprinkle plausible headers: magic, version 1, type, flags 0, length big. */
    for (size_t i = 0; i + 16 < 300000; i += 997) {
        const uint8_t h[8] = {0x56, 0x4c, 0x01, 0x03, 0x00, 0x00, 0x40, 0x00};
        memcpy(g.dir[0].base + i, h, 8);
    }
    g.dir[0].len = 300000;
    dec_log l;
    decode_client(&g, 1400, 0, 0, 1, &l);
    assert_int_equal(l.n_texts, 0);
    veil_buf_free(&g.dir[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkt_roundtrip),
        cmocka_unit_test(test_pkt_link_types),
        cmocka_unit_test(test_pkt_ipv6),
        cmocka_unit_test(test_pkt_hostile),
        cmocka_unit_test(test_reasm_orders),
        cmocka_unit_test(test_reasm_gap_and_limit),
        cmocka_unit_test(test_reasm_retrans_overlap),
        cmocka_unit_test(test_reasm_hole_timeout),
        cmocka_unit_test(test_reasm_midstream_rst_reuse),
        cmocka_unit_test(test_reasm_many_streams),
        cmocka_unit_test(test_decode_session),
        cmocka_unit_test(test_decode_rsa_key),
        cmocka_unit_test(test_decode_gap_resync),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_decode_random_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
