/*
 * export.c - --export-decrypted OUT: a copy of the capture in which every
 * encrypted Veil record that could be decrypted is replaced by the same
 * record in clear (docs/CAPTURE.md, "Exporting decrypted captures").
 *
 * The rewritten record keeps its type and sequence number; its flags and
 * epoch become 0, its length the content length + 4, and its body the
 * content followed by the CRC-32C of header and content (PROTOCOL.md §2.7):
 * exactly an unencrypted record, so every Veil decoder reads it as
 * plaintext.  The header is built by veil_header_encode and the CRC by
 * veil_crc32c (libproto).  The spec has no flag to say "this was
 * decrypted", so the mark is out of band: the output is pcapng, and each
 * packet carrying a rewritten record has one comment per record,
 *
 *     veil-decrypted dir=C>S seq=3 type=appdata suite=AES_256_GCM_SHA256 epoch=0 enc_length=44 length=32
 *
 * which Wireshark shows as a packet comment (frame.comment) and veil-capture
 * prints when it reads the file back.
 *
 * Packets map one to one: each input frame gives one output frame at the
 * same time with the same addresses, ports and TCP options, carrying the
 * output bytes that became final while that frame was processed (records
 * that completed in it, or bytes that belong to no record).  Sequence and
 * acknowledgement numbers, lengths and checksums are recomputed; bytes that
 * were never captured stay missing (the sequence numbers jump over them).
 * Records that could not be decrypted, and every non-Veil byte, are copied
 * unchanged.  Frames that are not TCP are copied as they are.
 */
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "rd.h"

#define MAX_FRAME (140 * 1024)
#define MAX_L2 64
#define RECENT 64 /* closed streams kept for their trailing ACKs */

typedef struct run {
    uint64_t pos; /* output stream position of the first byte */
    size_t off;   /* offset in acc */
    size_t len;
} run;

typedef struct xdir {
    int have_base;
    uint32_t base;    /* sequence number of stream offset 0 */
    uint64_t in_next; /* input stream offset accounted for */
    uint64_t pos;     /* output stream position of the next byte */
    int fin_now, fin_sent;
    veil_buf acc; /* output bytes of this frame */
    run *runs;
    size_t n_runs, cap_runs;
    uint8_t l2[MAX_L2];
    size_t l2_len;
    int have_l2;
} xdir;

typedef struct xstream {
    struct xstream *touched_next;
    int touched, closed, recent;
    vc_addr cli, srv;
    uint16_t cport, sport;
    uint16_t suite;
    xdir d[2];
    char **comments; /* this frame's markers */
    size_t n_comments, cap_comments;
} xstream;

struct vc_export {
    vc_pcapng *w;
    int dlt;
    const uint8_t *frame;
    size_t caplen, wirelen;
    uint64_t ts_ns;
    xstream *touched;
    xstream *recent[RECENT]; /* ring of closed streams, for trailing packets */
    size_t recent_next;
    uint64_t rewritten;
    int failed;
    uint8_t out[MAX_FRAME];
    veil_buf rec; /* scratch for a rewritten record */
};

int vc_export_open(const char *path, int dlt, vc_export **out, char *err)
{
    vc_export *x = calloc(1, sizeof *x);
    if (x == NULL) {
        vapp_errf(err, "out of memory");
        return -1;
    }
    static const char note[] =
        "Exported by veil-capture --export-decrypted: each encrypted Veil record that could be "
        "decrypted was replaced by the same record in clear (flags 0, epoch 0, content + "
        "CRC-32C), and is named by a packet comment starting with 'veil-decrypted'. TCP "
        "sequence numbers, lengths and checksums were recomputed.";
    if (vc_pcapng_open(path, dlt, note, &x->w, err) != 0) {
        free(x);
        return -1;
    }
    x->dlt = dlt;
    veil_buf_init(&x->rec);
    *out = x;
    return 0;
}

static void touch(vc_export *x, xstream *xs)
{
    if (!xs->touched) {
        xs->touched = 1;
        xs->touched_next = x->touched;
        x->touched = xs;
    }
}

/* Appends output bytes for input [off, off+in_len) of a direction. */
static void append(vc_export *x, xstream *xs, int dir, uint64_t off, size_t in_len,
                   const uint8_t *p, size_t n)
{
    xdir *d = &xs->d[dir];
    if (off < d->in_next) /* cannot happen: offsets only grow */
        return;
    d->pos += off - d->in_next; /* bytes never seen: the output skips them too */
    d->in_next = off + in_len;
    if (n == 0)
        return;
    if (veil_buf_reserve(&d->acc, n) != 0) {
        x->failed = 1;
        return;
    }
    size_t aoff = d->acc.len;
    memcpy(d->acc.base + aoff, p, n);
    d->acc.len += n;
    if (d->n_runs > 0 && d->runs[d->n_runs - 1].pos + d->runs[d->n_runs - 1].len == d->pos) {
        d->runs[d->n_runs - 1].len += n;
    } else {
        if (d->n_runs == d->cap_runs) {
            size_t nc = d->cap_runs ? d->cap_runs * 2 : 4;
            run *nr = realloc(d->runs, nc * sizeof *nr);
            if (nr == NULL) {
                x->failed = 1;
                return;
            }
            d->runs = nr;
            d->cap_runs = nc;
        }
        d->runs[d->n_runs++] = (run){.pos = d->pos, .off = aoff, .len = n};
    }
    d->pos += n;
}

static void add_comment(vc_export *x, xstream *xs, const char *text)
{
    if (xs->n_comments == xs->cap_comments) {
        size_t nc = xs->cap_comments ? xs->cap_comments * 2 : 4;
        char **nl = realloc(xs->comments, nc * sizeof *nl);
        if (nl == NULL) {
            x->failed = 1;
            return;
        }
        xs->comments = nl;
        xs->cap_comments = nc;
    }
    char *t = strdup(text);
    if (t == NULL) {
        x->failed = 1;
        return;
    }
    xs->comments[xs->n_comments++] = t;
}

/* The record in clear: header (veil_header_encode), content, CRC-32C. */
static int rewrite(vc_export *x, const veil_observed_record *r)
{
    veil_header h = r->hdr;
    h.flags = 0;
    h.epoch = 0;
    h.length = (uint16_t)(r->content_len + 4);
    x->rec.len = 0;
    if (veil_buf_reserve(&x->rec, VEIL_HEADER_LEN + r->content_len + 4) != 0)
        return -1;
    uint8_t *p = x->rec.base;
    veil_header_encode(&h, p);
    memcpy(p + VEIL_HEADER_LEN, r->content, r->content_len);
    uint32_t crc = veil_crc32c(veil_crc32c(0, p, VEIL_HEADER_LEN), r->content, r->content_len);
    vc_put32(p + VEIL_HEADER_LEN + r->content_len, crc); /* big-endian, PROTOCOL.md §2.7 */
    x->rec.len = VEIL_HEADER_LEN + r->content_len + 4;
    return 0;
}

void vc_export_event(vc_export *x, const vc_event *ev)
{
    vc_stream *s = ev->s;
    if (s == NULL)
        return;
    xstream *xs = s->xapp;
    if (ev->kind == VC_EV_OPEN) {
        xs = calloc(1, sizeof *xs);
        if (xs == NULL) {
            x->failed = 1;
            return;
        }
        xs->cli = s->cli;
        xs->srv = s->srv;
        xs->cport = s->cport;
        xs->sport = s->sport;
        for (int i = 0; i < 2; i++)
            veil_buf_init(&xs->d[i].acc);
        s->xapp = xs;
        touch(x, xs);
        return;
    }
    if (xs == NULL)
        return;
    touch(x, xs);
    switch (ev->kind) {
    case VC_EV_RECORD: {
        const veil_observed_record *r = ev->rec;
        if (r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL && r->parse_error == 0 &&
            r->hs_type == VEIL_HS_SERVER_HELLO)
            xs->suite = r->hello.suite;
        if (r->status == VEIL_BODY_DECRYPTED && r->content_len + 4 <= VEIL_MAX_BODY &&
            rewrite(x, r) == 0) {
            append(x, xs, ev->dir, ev->offset, ev->raw_len, x->rec.base, x->rec.len);
            char c[256];
            snprintf(c, sizeof c,
                     "veil-decrypted dir=%s seq=%llu type=%s suite=%s epoch=%u enc_length=%u "
                     "length=%zu",
                     vc_dir_name(ev->dir), (unsigned long long)r->hdr.seq,
                     veil_record_type_name(r->hdr.type), veil_suite_name(xs->suite), r->hdr.epoch,
                     r->hdr.length, r->content_len + 4);
            add_comment(x, xs, c);
            x->rewritten++;
        } else {
            append(x, xs, ev->dir, ev->offset, ev->raw_len, ev->raw, ev->raw_len);
        }
        break;
    }
    case VC_EV_SKIPPED:
        append(x, xs, ev->dir, ev->offset, ev->raw_len, ev->raw, ev->raw_len);
        break;
    case VC_EV_DIR_END:
        xs->d[ev->dir].fin_now = 1;
        break;
    case VC_EV_CLOSE:
        xs->closed = 1;
        s->xapp = NULL;
        break;
    default:
        break;
    }
}

void vc_export_begin_frame(vc_export *x, const uint8_t *frame, size_t caplen, size_t wirelen,
                           uint64_t ts_ns)
{
    x->frame = frame;
    x->caplen = caplen;
    x->wirelen = wirelen;
    x->ts_ns = ts_ns;
}

static void write_frame(vc_export *x, const uint8_t *f, size_t len, size_t orig,
                        const char *const *comments, size_t n)
{
    if (vc_pcapng_write(x->w, x->ts_ns, f, len, orig, comments, n) != 0)
        x->failed = 1;
}

static uint32_t ack_for(const xstream *xs, int dir, uint32_t orig)
{
    const xdir *peer = &xs->d[!dir];
    if (!peer->have_base)
        return orig;
    return peer->base + (uint32_t)peer->pos + (peer->fin_sent ? 1u : 0u);
}

/*
 * Emits the output of one direction of xs: with the original packet's
 * headers (orig != NULL) for the first packet, synthesised ones otherwise.
 */
static void emit_dir(vc_export *x, xstream *xs, int dir, const vc_pkt *orig, int first_comments)
{
    xdir *d = &xs->d[dir];
    const vc_addr *src = dir == VC_C2S ? &xs->cli : &xs->srv;
    const vc_addr *dst = dir == VC_C2S ? &xs->srv : &xs->cli;
    uint16_t sp = dir == VC_C2S ? xs->cport : xs->sport;
    uint16_t dp = dir == VC_C2S ? xs->sport : xs->cport;
    size_t nr = d->n_runs;
    size_t r = 0, done = 0; /* current run, bytes of it already sent */
    int sent_any = 0;
    /* Bounded: each pass sends a packet that consumes run bytes, or the last one. */
    for (;;) {
        const uint8_t *payload = NULL;
        size_t plen = 0;
        uint64_t pos = d->pos;
        if (r < nr) {
            pos = d->runs[r].pos + done;
            payload = d->acc.base + d->runs[r].off + done;
            plen = d->runs[r].len - done;
        } else if (sent_any || (orig == NULL && !(d->fin_now && !d->fin_sent))) {
            break;
        }
        vc_frame_spec sp_ = {.ipver = src->family, .src = src, .dst = dst, .sport = sp, .dport = dp,
                             .window = 65535};
        if (orig != NULL && !sent_any) {
            sp_.l2 = x->frame;
            sp_.l2_len = orig->l3_off;
            sp_.ip_hdr = x->frame + orig->l3_off;
            sp_.ip_hdr_len = orig->ip_hdr_len;
            sp_.tcp_hdr = x->frame + orig->tcp_off;
            sp_.tcp_hdr_len = orig->tcp_hdr_len;
            sp_.window = orig->window;
            sp_.flags = orig->flags & (uint8_t)~VC_TCP_FIN;
        } else {
            if (!d->have_l2)
                break;
            sp_.l2 = d->l2;
            sp_.l2_len = d->l2_len;
            sp_.flags = VC_TCP_ACK | (plen > 0 ? VC_TCP_PSH : 0);
        }
        size_t room = 65535 - (sp_.ip_hdr ? sp_.ip_hdr_len : (src->family == 4 ? 20u : 40u)) -
                      (sp_.tcp_hdr ? sp_.tcp_hdr_len : 20u);
        if (plen > room)
            plen = room;
        int last = r >= nr || (r == nr - 1 && done + plen == d->runs[r].len);
        if (last && d->fin_now && !d->fin_sent) {
            sp_.flags |= VC_TCP_FIN;
        }
        if (orig != NULL && !sent_any && (orig->flags & VC_TCP_SYN)) {
            sp_.seq = orig->seq;
            sp_.ack = orig->ack;
        } else {
            sp_.seq = d->base + (uint32_t)pos + (d->fin_sent ? 1u : 0u);
            sp_.ack = (sp_.flags & VC_TCP_ACK) ? ack_for(xs, dir, orig ? orig->ack : 0) : 0;
        }
        sp_.payload = payload;
        sp_.payload_len = plen;
        size_t n = vc_frame_build(&sp_, x->out, sizeof x->out);
        if (n == 0) {
            x->failed = 1;
            break;
        }
        if (sp_.flags & VC_TCP_FIN)
            d->fin_sent = 1;
        const char *const *cm = NULL;
        size_t ncm = 0;
        if (!sent_any && first_comments) {
            cm = (const char *const *)xs->comments;
            ncm = xs->n_comments;
        }
        write_frame(x, x->out, n, n, cm, ncm);
        sent_any = 1;
        if (r < nr) {
            done += plen;
            if (done == d->runs[r].len) {
                r++;
                done = 0;
            }
        }
        if (r >= nr)
            break;
    }
    d->acc.len = 0;
    d->n_runs = 0;
    d->fin_now = 0;
}

/* Learns sequence bases and link headers from a packet, as reasm.c does. */
static void learn(xstream *xs, int dir, const vc_pkt *p, const uint8_t *frame)
{
    xdir *d = &xs->d[dir];
    if (!d->have_l2 && p->l3_off <= MAX_L2) {
        memcpy(d->l2, frame, p->l3_off);
        d->l2_len = p->l3_off;
        d->have_l2 = 1;
        /* The other direction's template: Ethernet with the addresses swapped. */
        xdir *o = &xs->d[!dir];
        if (!o->have_l2) {
            memcpy(o->l2, frame, p->l3_off);
            o->l2_len = p->l3_off;
            if (p->dlt == VC_DLT_EN10MB && p->l3_off >= 12) {
                memcpy(o->l2, frame + 6, 6);
                memcpy(o->l2 + 6, frame, 6);
            }
        }
    }
    if ((p->flags & VC_TCP_SYN) && !d->have_base) {
        d->have_base = 1;
        d->base = p->seq + 1;
    }
    if ((p->flags & (VC_TCP_SYN | VC_TCP_ACK)) == (VC_TCP_SYN | VC_TCP_ACK) && !xs->d[!dir].have_base) {
        xs->d[!dir].have_base = 1;
        xs->d[!dir].base = p->ack;
    }
    if (!d->have_base && (p->payload_len > 0 || (p->flags & VC_TCP_FIN))) {
        d->have_base = 1;
        d->base = p->seq;
    }
}

static void free_xstream(xstream *xs)
{
    for (int i = 0; i < 2; i++) {
        veil_buf_free(&xs->d[i].acc);
        free(xs->d[i].runs);
    }
    for (size_t i = 0; i < xs->n_comments; i++)
        free(xs->comments[i]);
    free(xs->comments);
    free(xs);
}

static void clear_comments(xstream *xs)
{
    for (size_t i = 0; i < xs->n_comments; i++)
        free(xs->comments[i]);
    xs->n_comments = 0;
}

static int matches(const xstream *xs, const vc_pkt *p, int *dir)
{
    if (p->sport == xs->cport && p->dport == xs->sport && vc_addr_equal(&p->src, &xs->cli) &&
        vc_addr_equal(&p->dst, &xs->srv)) {
        *dir = VC_C2S;
        return 1;
    }
    if (p->sport == xs->sport && p->dport == xs->cport && vc_addr_equal(&p->src, &xs->srv) &&
        vc_addr_equal(&p->dst, &xs->cli)) {
        *dir = VC_S2C;
        return 1;
    }
    return 0;
}

int vc_export_end_frame(vc_export *x, vc_decoder *dec)
{
    vc_pkt_kind kind = VC_PKT_OTHER;
    const vc_pkt *p = x->frame != NULL ? vc_decoder_packet(dec, &kind) : NULL;
    xstream *cur = NULL;
    int dir = 0;
    if (p != NULL && kind == VC_PKT_TCP) {
        for (xstream *xs = x->touched; xs != NULL && cur == NULL; xs = xs->touched_next)
            if (matches(xs, p, &dir))
                cur = xs;
        if (cur == NULL) {
            int d2;
            vc_stream *s = vc_decoder_current(dec, &d2);
            if (s != NULL && s->xapp != NULL && matches(s->xapp, p, &dir))
                cur = s->xapp;
        }
    }
    for (size_t i = 0; p != NULL && kind == VC_PKT_TCP && cur == NULL && i < RECENT; i++)
        if (x->recent[i] != NULL && matches(x->recent[i], p, &dir) && !(p->flags & VC_TCP_SYN))
            cur = x->recent[i];
    if (cur != NULL) {
        learn(cur, dir, p, x->frame);
        emit_dir(x, cur, dir, p, 1);
        emit_dir(x, cur, !dir, NULL, 0);
        clear_comments(cur);
    } else if (x->frame != NULL) {
        write_frame(x, x->frame, x->caplen, x->wirelen, NULL, 0);
    }
    /* Other streams that produced output (evictions, end of input). */
    for (xstream *xs = x->touched; xs != NULL; xs = xs->touched_next) {
        if (xs == cur)
            continue;
        emit_dir(x, xs, VC_C2S, NULL, 1);
        clear_comments(xs);
        emit_dir(x, xs, VC_S2C, NULL, 0);
    }
    xstream *next;
    for (xstream *xs = x->touched; xs != NULL; xs = next) {
        next = xs->touched_next;
        xs->touched = 0;
        xs->touched_next = NULL;
        if (xs->closed && !xs->recent) {
            /* Kept a little longer: the last ACK of a connection follows its FINs. */
            xs->recent = 1;
            if (x->recent[x->recent_next] != NULL)
                free_xstream(x->recent[x->recent_next]);
            x->recent[x->recent_next] = xs;
            x->recent_next = (x->recent_next + 1) % RECENT;
        }
    }
    x->touched = NULL;
    x->frame = NULL;
    return x->failed ? -1 : 0;
}

int vc_export_close(vc_export *x, uint64_t *rewritten, char *err)
{
    if (x == NULL)
        return 0;
    *rewritten = x->rewritten;
    int failed = x->failed;
    int r = vc_pcapng_close(x->w, err);
    if (failed && r == 0)
        vapp_errf(err, "the export is incomplete (out of memory or a frame too large)");
    veil_buf_free(&x->rec);
    for (size_t i = 0; i < RECENT; i++)
        if (x->recent[i] != NULL)
            free_xstream(x->recent[i]);
    free(x);
    return failed || r != 0 ? -1 : 0;
}
