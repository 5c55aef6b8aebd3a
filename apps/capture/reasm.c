/*
 * reasm.c - TCP reassembly for veil-capture (docs/CAPTURE.md, "TCP
 * reassembly").
 *
 * Streams live in a hash table keyed by both endpoints (either direction
 * finds the stream) and in a least-recently-active list used to evict the
 * oldest stream when --max-streams is reached.  Each direction ("half")
 * delivers bytes strictly in sequence order:
 *
 *   - a segment at the expected sequence number is delivered at once, then
 *     any buffered segments it made contiguous;
 *   - a segment ahead of it waits in a sorted list, clipped against what is
 *     already buffered (the first copy of a byte wins; disagreeing copies
 *     are counted as overlaps);
 *   - a segment entirely before it is a retransmission and is dropped; one
 *     that starts before it is trimmed;
 *   - when the buffered bytes would exceed max_ooo_bytes, the hole before
 *     the first buffered segment is declared a gap and delivery resumes
 *     after it, so memory per direction stays bounded whatever the input;
 *   - at a RST, at the end of the input or on eviction, remaining holes are
 *     declared gaps in order.
 *
 * Sequence numbers are compared modulo 2^32 (RFC 9293 §3.4): a segment more
 * than 1 GiB ahead is outside any plausible window and ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "capture.h"

#define MAX_AHEAD 0x40000000u /* 1 GiB: beyond this a segment is not from this window */
#define N_BUCKETS 4096u       /* power of two */
/* A hole still open after this much capture time will not be filled (the
 * segment was lost before the capture point, or a retransmission would have
 * come): it becomes a gap.  Streams are swept once per SWEEP_NS. */
#define HOLE_TIMEOUT_NS 2000000000ull
#define SWEEP_NS 1000000000ull

typedef struct seg {
    struct seg *next;
    uint32_t seq;
    uint32_t len;
    uint8_t data[];
} seg;

typedef struct half {
    int have_base; /* next is known */
    uint32_t next; /* sequence number of the next byte to deliver */
    int syn_seen;
    uint32_t isn;
    int fin_seen, fin_done;
    uint32_t fin_seq;
    seg *ooo; /* sorted by sequence number, all ahead of next */
    size_t ooo_bytes;
    uint64_t hole_since; /* capture time the current hole appeared (ooo != NULL) */
} half;

typedef struct entry {
    vc_stream pub;
    struct entry *hnext;
    struct entry *lru_prev, *lru_next;
    uint32_t bucket;
    half h[2];
} entry;

struct vc_reasm {
    vc_reasm_config cfg;
    vc_reasm_ops ops;
    void *user;
    entry *buckets[N_BUCKETS];
    entry *lru_head, *lru_tail; /* head = least recently active */
    size_t live;
    unsigned long next_id;
    uint64_t evictions;
    entry *cur;
    int cur_dir;
    entry *last; /* the stream of the previous packet: most packets are of the same one */
    uint64_t now_ns;     /* latest packet time seen */
    uint64_t last_sweep;
};

/* ---- table --------------------------------------------------------------- */

static size_t endpoint_bytes(const vc_addr *a, uint16_t port, uint8_t out[19])
{
    out[0] = a->family;
    memcpy(out + 1, a->a, 16);
    out[17] = (uint8_t)(port >> 8);
    out[18] = (uint8_t)port;
    return 19;
}

/* Symmetric: both directions of a connection hash alike. */
static uint32_t hash_pair(const vc_addr *a, uint16_t pa, const vc_addr *b, uint16_t pb)
{
    uint8_t x[19], y[19];
    endpoint_bytes(a, pa, x);
    endpoint_bytes(b, pb, y);
    const uint8_t *lo = x, *hi = y;
    if (memcmp(x, y, sizeof x) > 0) {
        lo = y;
        hi = x;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < 19; i++)
        h = (h ^ lo[i]) * 16777619u;
    for (size_t i = 0; i < 19; i++)
        h = (h ^ hi[i]) * 16777619u;
    return h & (N_BUCKETS - 1);
}

/* Direction of p within e, or -1 if p does not belong to e. */
static int match(const entry *e, const vc_pkt *p)
{
    const vc_stream *s = &e->pub;
    if (p->sport == s->cport && p->dport == s->sport && vc_addr_equal(&p->src, &s->cli) &&
        vc_addr_equal(&p->dst, &s->srv))
        return VC_C2S;
    if (p->sport == s->sport && p->dport == s->cport && vc_addr_equal(&p->src, &s->srv) &&
        vc_addr_equal(&p->dst, &s->cli))
        return VC_S2C;
    return -1;
}

static void lru_unlink(vc_reasm *r, entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        r->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        r->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_append(vc_reasm *r, entry *e)
{
    e->lru_prev = r->lru_tail;
    e->lru_next = NULL;
    if (r->lru_tail)
        r->lru_tail->lru_next = e;
    else
        r->lru_head = e;
    r->lru_tail = e;
}

/* ---- delivery ------------------------------------------------------------ */

static void deliver(vc_reasm *r, entry *e, int d, const uint8_t *p, size_t n)
{
    half *h = &e->h[d];
    h->next += (uint32_t)n;
    e->pub.st[d].bytes += n;
    if (r->ops.on_data != NULL && n > 0)
        r->ops.on_data(r->user, &e->pub, d, p, n);
}

static void gap(vc_reasm *r, entry *e, int d, uint64_t n, const char *why)
{
    e->pub.st[d].gaps++;
    e->pub.st[d].gap_bytes += n;
    if (r->ops.on_gap != NULL)
        r->ops.on_gap(r->user, &e->pub, d, n, why);
}

static void check_fin(vc_reasm *r, entry *e, int d)
{
    half *h = &e->h[d];
    if (h->fin_seen && !h->fin_done && h->have_base && h->next == h->fin_seq) {
        h->fin_done = 1;
        if (r->ops.on_fin != NULL)
            r->ops.on_fin(r->user, &e->pub, d);
    }
}

/* Delivers buffered segments that have become contiguous. */
static void drain(vc_reasm *r, entry *e, int d)
{
    half *h = &e->h[d];
    while (h->ooo != NULL && (int32_t)(h->ooo->seq - h->next) <= 0) {
        seg *s = h->ooo;
        h->ooo = s->next;
        h->ooo_bytes -= s->len;
        uint32_t behind = h->next - s->seq;
        if (behind < s->len)
            deliver(r, e, d, s->data + behind, s->len - behind);
        free(s);
    }
    check_fin(r, e, d);
}

/* Declares the hole before the first buffered segment a gap, then drains. */
static void force_gap(vc_reasm *r, entry *e, int d, const char *why)
{
    half *h = &e->h[d];
    if (h->ooo == NULL)
        return;
    uint32_t n = h->ooo->seq - h->next;
    gap(r, e, d, n, why);
    h->next = h->ooo->seq;
    drain(r, e, d);
    h->hole_since = r->now_ns; /* a further hole starts its own wait */
}

/* Buffers [seq, seq+n) minus what is already buffered. */
static void buffer(entry *e, int d, uint32_t seq, const uint8_t *p, size_t n)
{
    half *h = &e->h[d];
    seg **link = &h->ooo;
    uint32_t cur = seq, end = seq + (uint32_t)n;
    /* Offsets relative to next: every buffered segment is ahead of it. */
    while (*link != NULL && (int32_t)(cur - end) < 0) {
        seg *s = *link;
        uint32_t s_end = s->seq + s->len;
        if ((int32_t)(s_end - cur) <= 0) { /* s entirely before cur */
            link = &s->next;
            continue;
        }
        if ((int32_t)(s->seq - cur) > 0) { /* a piece before s */
            uint32_t piece_end = (int32_t)(s->seq - end) < 0 ? s->seq : end;
            uint32_t len = piece_end - cur;
            seg *ns = malloc(sizeof *ns + len);
            if (ns == NULL)
                return; /* out of memory: the bytes show up as a gap later */
            ns->seq = cur;
            ns->len = len;
            memcpy(ns->data, p + (cur - seq), len);
            ns->next = s;
            *link = ns;
            h->ooo_bytes += len;
            link = &ns->next;
            cur = piece_end;
            continue;
        }
        /* cur lies inside s: compare the overlap, keep the first copy. */
        uint32_t ov_end = (int32_t)(s_end - end) < 0 ? s_end : end;
        if (memcmp(s->data + (cur - s->seq), p + (cur - seq), ov_end - cur) != 0)
            e->pub.st[d].overlaps++;
        cur = ov_end;
        link = &s->next;
    }
    if ((int32_t)(cur - end) < 0) {
        uint32_t len = end - cur;
        seg *ns = malloc(sizeof *ns + len);
        if (ns == NULL)
            return;
        ns->seq = cur;
        ns->len = len;
        memcpy(ns->data, p + (cur - seq), len);
        ns->next = *link;
        *link = ns;
        h->ooo_bytes += len;
    }
}

static void data_segment(vc_reasm *r, entry *e, int d, uint32_t seq, const uint8_t *p, size_t n)
{
    half *h = &e->h[d];
    vc_half_stats *st = &e->pub.st[d];
    st->segments++;
    /* Bounded: each pass either returns or shrinks the buffer (force_gap). */
    for (int pass = 0; pass < 1000000; pass++) {
        int32_t rel = (int32_t)(seq - h->next);
        if (rel < 0) {
            uint32_t behind = (uint32_t)(-(int64_t)rel);
            st->retrans++;
            if (behind >= n)
                return;
            p += behind;
            n -= behind;
            seq = h->next;
            rel = 0;
        }
        if ((uint32_t)rel > MAX_AHEAD) {
            st->retrans++; /* far outside the window: stale or bogus */
            return;
        }
        if (rel == 0) {
            if (h->ooo == NULL) {
                deliver(r, e, d, p, n);
                check_fin(r, e, d);
            } else {
                /* Overlaps buffered bytes: buffer (the first copy wins), then
                   deliver.  No limit check: it all leaves at once. */
                buffer(e, d, seq, p, n);
                drain(r, e, d);
            }
            return;
        }
        if (h->ooo_bytes + n <= r->cfg.max_ooo_bytes) {
            if (pass == 0)
                st->ooo++;
            if (h->ooo == NULL)
                h->hole_since = r->now_ns;
            buffer(e, d, seq, p, n);
            return;
        }
        /* Over the limit: give up on the oldest hole and try again. */
        st->overflows++;
        if (h->ooo != NULL) {
            force_gap(r, e, d, "out-of-order buffer limit reached");
        } else {
            gap(r, e, d, (uint32_t)rel, "out-of-order buffer limit reached");
            h->next = seq;
        }
    }
}

/* ---- stream life --------------------------------------------------------- */

static void flush_half(vc_reasm *r, entry *e, int d, const char *why)
{
    half *h = &e->h[d];
    while (h->ooo != NULL) /* each pass frees at least one segment */
        force_gap(r, e, d, why);
    if (h->fin_seen && !h->fin_done && h->have_base && (int32_t)(h->fin_seq - h->next) > 0) {
        gap(r, e, d, h->fin_seq - h->next, "data missing before the FIN");
        h->next = h->fin_seq;
        check_fin(r, e, d);
    }
}

static void destroy(vc_reasm *r, entry *e, const char *why)
{
    flush_half(r, e, VC_C2S, "missing at the end of the stream");
    flush_half(r, e, VC_S2C, "missing at the end of the stream");
    if (r->ops.on_close != NULL)
        r->ops.on_close(r->user, &e->pub, why);
    entry **link = &r->buckets[e->bucket];
    while (*link != NULL && *link != e)
        link = &(*link)->hnext;
    if (*link == e)
        *link = e->hnext;
    lru_unlink(r, e);
    r->live--;
    if (r->cur == e)
        r->cur = NULL;
    if (r->last == e)
        r->last = NULL;
    for (int d = 0; d < 2; d++) {
        seg *s = e->h[d].ooo;
        while (s != NULL) {
            seg *n = s->next;
            free(s);
            s = n;
        }
    }
    free(e);
}

static int is_server_port(const vc_reasm *r, uint16_t port)
{
    for (size_t i = 0; i < r->cfg.n_server_ports; i++)
        if (r->cfg.server_ports[i] == port)
            return 1;
    return 0;
}

static entry *create(vc_reasm *r, const vc_pkt *p, uint32_t bucket, uint64_t ts_ns)
{
    if (r->live >= r->cfg.max_streams && r->lru_head != NULL) {
        r->evictions++;
        destroy(r, r->lru_head, "evicted: too many streams at once (--max-streams)");
    }
    entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    int src_is_client;
    if ((p->flags & (VC_TCP_SYN | VC_TCP_ACK)) == VC_TCP_SYN) {
        src_is_client = 1;
    } else if ((p->flags & (VC_TCP_SYN | VC_TCP_ACK)) == (VC_TCP_SYN | VC_TCP_ACK)) {
        src_is_client = 0;
    } else {
        e->pub.role_guess = 1;
        if (is_server_port(r, p->sport) && !is_server_port(r, p->dport))
            src_is_client = 0;
        else if (is_server_port(r, p->dport))
            src_is_client = 1;
        else
            src_is_client = p->sport > p->dport; /* the ephemeral port is the higher */
    }
    if (src_is_client) {
        e->pub.cli = p->src, e->pub.cport = p->sport;
        e->pub.srv = p->dst, e->pub.sport = p->dport;
    } else {
        e->pub.cli = p->dst, e->pub.cport = p->dport;
        e->pub.srv = p->src, e->pub.sport = p->sport;
    }
    e->pub.midstream = !(p->flags & VC_TCP_SYN);
    e->pub.id = ++r->next_id;
    e->pub.first_ns = e->pub.last_ns = ts_ns;
    e->bucket = bucket;
    e->hnext = r->buckets[bucket];
    r->buckets[bucket] = e;
    lru_append(r, e);
    r->live++;
    if (r->ops.on_open != NULL)
        r->ops.on_open(r->user, &e->pub);
    return e;
}

/* Gives up on holes that stayed open for HOLE_TIMEOUT_NS of capture time. */
static void sweep(vc_reasm *r)
{
    entry *next;
    for (entry *e = r->lru_head; e != NULL; e = next) {
        next = e->lru_next;
        int any = 0;
        for (int d = 0; d < 2; d++) {
            half *h = &e->h[d];
            if (h->ooo != NULL && r->now_ns - h->hole_since >= HOLE_TIMEOUT_NS) {
                force_gap(r, e, d, "still missing 2 s later (lost before the capture point)");
                any = 1;
            }
        }
        if (any && e->h[0].fin_done && e->h[1].fin_done)
            destroy(r, e, "closed (FIN both ways)");
    }
}

void vc_reasm_packet(vc_reasm *r, const vc_pkt *p, uint64_t ts_ns)
{
    if (ts_ns > r->now_ns)
        r->now_ns = ts_ns; /* capture time only moves forward */
    r->cur = NULL;
    if (r->now_ns - r->last_sweep >= SWEEP_NS) {
        if (r->last_sweep != 0)
            sweep(r);
        r->last_sweep = r->now_ns;
    }
    /* At most one stream matches a packet, so trying the previous packet's
       stream first finds the same one as the table. */
    entry *e = r->last;
    int d = e != NULL ? match(e, p) : -1;
    if (d < 0) {
        uint32_t b = hash_pair(&p->src, p->sport, &p->dst, p->dport);
        for (e = r->buckets[b]; e != NULL; e = e->hnext)
            if ((d = match(e, p)) >= 0)
                break;
    }
    int syn = (p->flags & VC_TCP_SYN) != 0;
    if (e != NULL && syn && !(p->flags & VC_TCP_ACK) && d == VC_C2S) {
        half *h = &e->h[VC_C2S];
        /* A new connection on the same ports, or a retransmitted SYN? */
        if ((h->syn_seen && h->isn != p->seq) || e->pub.st[0].bytes + e->pub.st[1].bytes > 0 ||
            (!h->syn_seen && h->have_base && h->next != p->seq + 1)) {
            destroy(r, e, "a new connection reused the ports");
            e = NULL;
        }
    }
    if (e == NULL) {
        if ((p->flags & VC_TCP_RST) || (!syn && p->payload_len == 0))
            return; /* nothing to learn from a bare ACK, FIN or RST of an unknown stream */
        e = create(r, p, hash_pair(&p->src, p->sport, &p->dst, p->dport), ts_ns);
        if (e == NULL)
            return;
        d = match(e, p);
    }
    lru_unlink(r, e);
    lru_append(r, e);
    e->pub.last_ns = ts_ns;
    r->cur = e;
    r->cur_dir = d;
    r->last = e;

    half *h = &e->h[d];
    uint32_t seq = p->seq;
    if (syn) {
        if (!h->syn_seen && !h->have_base) {
            h->syn_seen = 1;
            h->isn = p->seq;
            h->have_base = 1;
            h->next = p->seq + 1;
        }
        seq = p->seq + 1; /* the SYN occupies one sequence number */
        /* A SYN-ACK acknowledges the client's ISN + 1: where its data starts. */
        half *o = &e->h[!d];
        if ((p->flags & VC_TCP_ACK) && !o->have_base) {
            o->have_base = 1;
            o->next = p->ack;
        }
    }
    if (p->flags & VC_TCP_RST) {
        if (p->payload_len > 0 && h->have_base)
            data_segment(r, e, d, seq, p->payload, p->payload_len);
        destroy(r, e, "reset (RST)");
        return;
    }
    if (!h->have_base) {
        if (p->payload_len == 0 && !(p->flags & VC_TCP_FIN))
            return;
        h->have_base = 1;
        h->next = seq;
        gap(r, e, d, 0, "capture started in the middle of the stream");
    }
    if (p->payload_len > 0)
        data_segment(r, e, d, seq, p->payload, p->payload_len);
    if ((p->flags & VC_TCP_FIN) && !h->fin_seen) {
        h->fin_seen = 1;
        h->fin_seq = seq + (uint32_t)p->payload_wire;
    }
    check_fin(r, e, d);
    if (e->h[0].fin_done && e->h[1].fin_done)
        destroy(r, e, "closed (FIN both ways)");
}

/* ---- public -------------------------------------------------------------- */

int vc_reasm_new(const vc_reasm_config *cfg, const vc_reasm_ops *ops, void *user, vc_reasm **out)
{
    vc_reasm *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    r->cfg = *cfg;
    if (r->cfg.max_ooo_bytes == 0)
        r->cfg.max_ooo_bytes = 1u << 20;
    if (r->cfg.max_streams == 0)
        r->cfg.max_streams = 10000;
    r->ops = *ops;
    r->user = user;
    *out = r;
    return 0;
}

void vc_reasm_finish(vc_reasm *r)
{
    /* In order of last activity, oldest first: deterministic for a given input. */
    while (r->lru_head != NULL)
        destroy(r, r->lru_head, "end of the capture");
}

void vc_reasm_free(vc_reasm *r)
{
    if (r == NULL)
        return;
    vc_reasm_finish(r); /* on_close lets the consumer free its per-stream state */
    free(r);
}

vc_stream *vc_reasm_current(const vc_reasm *r, int *dir)
{
    if (r->cur == NULL)
        return NULL;
    *dir = r->cur_dir;
    return &r->cur->pub;
}

unsigned long vc_reasm_stream_count(const vc_reasm *r) { return r->next_id; }

uint64_t vc_reasm_evictions(const vc_reasm *r) { return r->evictions; }
