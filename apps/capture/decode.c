/*
 * decode.c - Veil records on reassembled TCP streams (docs/CAPTURE.md,
 * "Decoding"; PROTOCOL.md §10.3 step 1).
 *
 * Each direction of a stream keeps the bytes of its incomplete record.  In
 * sync, a record is framed by its header (veil_header_decode, libproto) and
 * handed whole to veil_observer_record (libproto), which checks the body,
 * decrypts it when the keylog or the RSA key allows, and parses the content.
 * Nothing in this file reads a Veil field itself.
 *
 * Out of sync - after a gap, at a stream that began before the capture, or
 * after bytes that are not a record header - the direction hunts for a
 * record boundary it can PROVE: an offset where veil_header_decode accepts a
 * header AND, right after that record's body, accepts another header whose
 * sequence number is one more (or, at the end of the direction, the record
 * ends exactly there).  Bytes before it are reported as skipped; the
 * buffer never holds more than two records' worth while hunting.
 */
#include <stdlib.h>
#include <string.h>

#include "capture.h"

/* Largest number of bytes kept while hunting: a candidate header, its
 * largest body, and the next header. */
#define HUNT_KEEP (2 * (size_t)VEIL_MAX_RECORD + VEIL_HEADER_LEN)

typedef struct dirdec {
    veil_buf buf;     /* bytes of the current (incomplete) record, or hunted bytes */
    uint64_t buf_off; /* stream offset of buf.base[0] */
    int hunting;
    size_t hunt_from; /* first candidate offset to try in buf */
    uint64_t skipped; /* bytes dropped while hunting */
    int eof;
    int after_resync;
    uint64_t records;
} dirdec;

typedef struct session {
    vc_stream *s;
    veil_observer *obs;
    dirdec d[2];
    int is_veil;
    int fatal_alert;      /* a fatal alert was read: the session ended on purpose */
    int hidden_alert[2];  /* an alert that could not be read (encrypted, no key) */
    uint8_t mode; /* from the hellos: VEIL_MODE_*, 0 if not seen */
} session;

struct vc_decoder {
    vc_decoder_config cfg;
    vc_reasm *reasm;
    vc_event_cb cb;
    void *user;
    vc_totals t;
    uint64_t now_ns;
    vc_pkt pkt;
    vc_pkt_kind pkt_kind;
};

static void emit(vc_decoder *d, vc_event *ev)
{
    ev->ts_ns = d->now_ns;
    if (d->cb != NULL)
        d->cb(d->user, ev);
}

static void count_record(vc_decoder *d, const veil_observed_record *rec, int after_resync)
{
    vc_totals *t = &d->t;
    t->records++;
    switch (rec->status) {
    case VEIL_BODY_PLAINTEXT: t->plaintext++; break;
    case VEIL_BODY_BAD_CRC: t->bad_crc++; break;
    case VEIL_BODY_DECRYPTED: t->decrypted++; break;
    case VEIL_BODY_NO_KEY: t->no_key++; break;
    case VEIL_BODY_AUTH_FAILED: t->auth_failed++; break;
    case VEIL_BODY_UNSUPPORTED: t->unsupported++; break;
    case VEIL_BODY_MALFORMED: t->malformed_bodies++; break;
    default: t->unsupported++; break;
    }
    if (rec->content != NULL && rec->parse_error != 0)
        t->parse_errors++;
    if (!rec->seq_ok && !after_resync)
        t->seq_errors++;
}

/* Drops n bytes from the front of a direction's buffer. */
static void consume(dirdec *dd, size_t n)
{
    veil_buf_consume(&dd->buf, n);
    dd->buf_off += n;
    dd->hunt_from = dd->hunt_from > n ? dd->hunt_from - n : 0;
}

/* Drops n received bytes that belong to no record, telling consumers first. */
static void drop(vc_decoder *d, session *ss, int dir, size_t n)
{
    dirdec *dd = &ss->d[dir];
    if (n == 0)
        return;
    vc_event ev = {.kind = VC_EV_SKIPPED, .s = ss->s, .dir = dir, .offset = dd->buf_off,
                   .raw = dd->buf.base, .raw_len = n};
    emit(d, &ev);
    consume(dd, n);
}

/*
 * Looks for a provable record boundary in dd->buf.  Returns 1 with *at set,
 * or 0 (more data needed); drops bytes that can no longer start a record.
 */
static int hunt(vc_decoder *d, session *ss, int dir, size_t *at)
{
    dirdec *dd = &ss->d[dir];
    const uint8_t *p = dd->buf.base;
    size_t len = dd->buf.len;
    size_t i = dd->hunt_from;
    for (; i + VEIL_HEADER_LEN <= len; i++) {
        veil_header h1, h2;
        if (veil_header_decode(p + i, len - i, &h1) != 0)
            continue;
        size_t j = i + VEIL_HEADER_LEN + (size_t)h1.length;
        if (j + VEIL_HEADER_LEN <= len) {
            if (veil_header_decode(p + j, len - j, &h2) == 0 && h2.seq == h1.seq + 1) {
                *at = i;
                return 1;
            }
            continue;
        }
        if (dd->eof) {
            if (j == len) {
                *at = i;
                return 1;
            }
            continue;
        }
        break; /* undecided until more bytes arrive: keep from i */
    }
    if (dd->eof)
        i = len; /* nothing more will come: every byte left is skipped */
    /* Bytes before i cannot start a provable record. */
    dd->skipped += i;
    drop(d, ss, dir, i);
    dd->hunt_from = 0;
    /* Bounded: never keep more than one candidate's worth. */
    if (dd->buf.len > HUNT_KEEP) {
        size_t n = dd->buf.len - HUNT_KEEP;
        dd->skipped += n;
        drop(d, ss, dir, n);
    }
    return 0;
}

static void framing_error(vc_decoder *d, session *ss, int dir, int err)
{
    dirdec *dd = &ss->d[dir];
    if (ss->is_veil) {
        d->t.framing_errors++;
        vc_event ev = {.kind = VC_EV_FRAMING, .s = ss->s, .dir = dir, .offset = dd->buf_off,
                       .err = err, .why = veil_strerror(err)};
        emit(d, &ev);
    }
    dd->hunting = 1;
    dd->hunt_from = 1;
    dd->skipped = 0;
}

/* A record framed at the start of the direction's unconsumed bytes (raw,
 * need bytes at stream offset dd->buf_off) and decoded: counts and emits it. */
static void record(vc_decoder *d, session *ss, int dir, const veil_observed_record *rec, const uint8_t *raw,
                   size_t need)
{
    dirdec *dd = &ss->d[dir];
    ss->is_veil = 1;
    if (rec->hdr.type == VEIL_REC_ALERT) {
        if (rec->content == NULL || rec->parse_error != 0)
            ss->hidden_alert[dir] = 1;
        else if (rec->alert_level == VEIL_ALERT_LEVEL_FATAL)
            ss->fatal_alert = 1;
    }
    if (rec->hdr.type == VEIL_REC_HANDSHAKE && rec->content != NULL && rec->parse_error == 0 &&
        (rec->hs_type == VEIL_HS_CLIENT_HELLO || rec->hs_type == VEIL_HS_SERVER_HELLO))
        ss->mode = rec->hello.mode;
    count_record(d, rec, dd->after_resync);
    dd->records++;
    vc_event ev = {.kind = VC_EV_RECORD, .s = ss->s, .dir = dir, .offset = dd->buf_off,
                   .rec = rec, .raw = raw, .raw_len = need,
                   .after_resync = dd->after_resync};
    emit(d, &ev);
    dd->after_resync = 0;
}

static void process(vc_decoder *d, session *ss, int dir)
{
    dirdec *dd = &ss->d[dir];
    /* Bounded: every pass consumes bytes, enters hunting, or breaks. */
    for (;;) {
        if (dd->hunting) {
            size_t at;
            if (!hunt(d, ss, dir, &at))
                return;
            dd->skipped += at;
            drop(d, ss, dir, at);
            d->t.resyncs++;
            vc_event ev = {.kind = VC_EV_RESYNC, .s = ss->s, .dir = dir, .offset = dd->buf_off,
                           .count = dd->skipped};
            emit(d, &ev);
            dd->hunting = 0;
            dd->skipped = 0;
            dd->after_resync = 1;
        }
        if (dd->buf.len < VEIL_HEADER_LEN)
            return;
        veil_header h;
        int err = veil_header_decode(dd->buf.base, dd->buf.len, &h);
        if (err != 0) {
            framing_error(d, ss, dir, err);
            continue;
        }
        size_t need = VEIL_HEADER_LEN + (size_t)h.length;
        if (dd->buf.len < need)
            return;
        veil_observed_record rec;
        err = veil_observer_record(ss->obs, dir, dd->buf.base, need, &rec);
        if (err != 0) {
            framing_error(d, ss, dir, err);
            continue;
        }
        record(d, ss, dir, &rec, dd->buf.base, need);
        consume(dd, need);
    }
}

/*
 * The fast path of on_data: in sync with nothing buffered, the whole records
 * at the front of p[0..n) are decoded where they lie, without copying them
 * into the direction's buffer.  Stops at the first partial record or header
 * that does not decode (process() then sees exactly the bytes it would have
 * seen); returns the bytes consumed.
 */
static size_t direct(vc_decoder *d, session *ss, int dir, const uint8_t *p, size_t n)
{
    dirdec *dd = &ss->d[dir];
    size_t off = 0;
    while (!dd->hunting && dd->buf.len == 0 && n - off >= VEIL_HEADER_LEN) {
        veil_header h;
        if (veil_header_decode(p + off, n - off, &h) != 0)
            break;
        size_t need = VEIL_HEADER_LEN + (size_t)h.length;
        if (n - off < need)
            break;
        veil_observed_record rec;
        /* It fails only on a header or length error, before changing any
           state: process() then gets the same error on the same bytes. */
        if (veil_observer_record(ss->obs, dir, p + off, need, &rec) != 0)
            break;
        record(d, ss, dir, &rec, p + off, need);
        dd->buf_off += need;
        off += need;
    }
    return off;
}

/* ---- reassembly callbacks ------------------------------------------------ */

static void on_open(void *user, vc_stream *s)
{
    vc_decoder *d = user;
    session *ss = calloc(1, sizeof *ss);
    if (ss == NULL)
        return;
    if (veil_observer_new(d->cfg.keys, &ss->obs) != 0) {
        free(ss);
        return;
    }
    if (d->cfg.rsa_key != NULL)
        veil_observer_set_rsa_identity(ss->obs, d->cfg.rsa_key);
    ss->s = s;
    for (int i = 0; i < 2; i++) {
        veil_buf_init(&ss->d[i].buf);
        ss->d[i].hunting = s->midstream; /* may start inside a record */
    }
    s->app = ss;
    d->t.streams++;
    vc_event ev = {.kind = VC_EV_OPEN, .s = s};
    emit(d, &ev);
}

/*
 * In sync with a partial record buffered: the number of bytes of p[0..n)
 * that complete it exactly, when its header is valid and p holds them all;
 * else 0 (the caller then appends everything, as before).
 */
static size_t top_up(const dirdec *dd, const uint8_t *p, size_t n)
{
    if (dd->hunting || dd->buf.len == 0 || dd->buf.len + n < VEIL_HEADER_LEN)
        return 0;
    uint8_t hb[VEIL_HEADER_LEN];
    size_t have = dd->buf.len < VEIL_HEADER_LEN ? dd->buf.len : VEIL_HEADER_LEN;
    memcpy(hb, dd->buf.base, have);
    memcpy(hb + have, p, VEIL_HEADER_LEN - have);
    veil_header h;
    if (veil_header_decode(hb, VEIL_HEADER_LEN, &h) != 0)
        return 0;
    size_t need = VEIL_HEADER_LEN + (size_t)h.length;
    if (need <= dd->buf.len || dd->buf.len + n < need)
        return 0;
    return need - dd->buf.len;
}

static void on_data(void *user, vc_stream *s, int dir, const uint8_t *p, size_t n)
{
    vc_decoder *d = user;
    session *ss = s->app;
    if (ss == NULL || ss->d[dir].eof)
        return;
    dirdec *dd = &ss->d[dir];
    /* Bounded feeding: at most one record's worth is appended before the
       buffer is processed again, so a large delivery never grows it. */
    while (n > 0) {
        size_t chunk = n < VEIL_MAX_RECORD ? n : VEIL_MAX_RECORD;
        /* Fast paths (same records, same events, same chunk boundaries):
           complete a buffered partial record, then decode in place. */
        size_t take = top_up(dd, p, chunk);
        if (take > 0 && veil_buf_reserve(&dd->buf, take) == 0) {
            memcpy(dd->buf.base + dd->buf.len, p, take);
            dd->buf.len += take;
            process(d, ss, dir); /* exactly one whole record: decoded, consumed */
            p += take;
            n -= take;
            chunk -= take;
        }
        size_t done = direct(d, ss, dir, p, chunk);
        p += done;
        n -= done;
        chunk -= done;
        if (chunk == 0)
            continue;
        if (veil_buf_reserve(&dd->buf, chunk) != 0) {
            /* Out of memory: treat the bytes as missing. */
            vc_event ev = {.kind = VC_EV_GAP, .s = s, .dir = dir,
                           .offset = dd->buf_off + dd->buf.len, .count = n,
                           .why = "out of memory"};
            emit(d, &ev);
            dd->buf_off += dd->buf.len + n;
            dd->buf.len = 0;
            dd->hunting = 1;
            return;
        }
        memcpy(dd->buf.base + dd->buf.len, p, chunk);
        dd->buf.len += chunk;
        p += chunk;
        n -= chunk;
        process(d, ss, dir);
    }
}

static void on_gap(void *user, vc_stream *s, int dir, uint64_t n, const char *why)
{
    vc_decoder *d = user;
    session *ss = s->app;
    if (ss == NULL)
        return;
    dirdec *dd = &ss->d[dir];
    d->t.gaps++;
    d->t.gap_bytes += n;
    vc_event ev = {.kind = VC_EV_GAP, .s = s, .dir = dir, .offset = dd->buf_off + dd->buf.len,
                   .count = n, .why = why};
    /* The incomplete record before the gap can never be completed. */
    drop(d, ss, dir, dd->buf.len);
    emit(d, &ev);
    dd->buf_off += n;
    dd->hunting = 1;
    dd->hunt_from = 0;
    dd->skipped = 0;
}

/* The direction ended: decide what is left in the buffer. */
static void end_dir(vc_decoder *d, session *ss, int dir)
{
    dirdec *dd = &ss->d[dir];
    if (dd->eof)
        return;
    dd->eof = 1;
    process(d, ss, dir);
    if (dd->buf.len > 0) {
        if (ss->is_veil) {
            d->t.truncated_records++;
            vc_event ev = {.kind = VC_EV_TRUNCATED, .s = ss->s, .dir = dir,
                           .offset = dd->buf_off, .count = dd->buf.len};
            emit(d, &ev);
        }
        drop(d, ss, dir, dd->buf.len);
    }
    vc_event ev = {.kind = VC_EV_DIR_END, .s = ss->s, .dir = dir, .offset = dd->buf_off};
    emit(d, &ev);
}

static void on_fin(void *user, vc_stream *s, int dir)
{
    vc_decoder *d = user;
    session *ss = s->app;
    if (ss != NULL)
        end_dir(d, ss, dir);
}

static void on_close(void *user, vc_stream *s, const char *why)
{
    vc_decoder *d = user;
    session *ss = s->app;
    if (ss == NULL)
        return;
    end_dir(d, ss, VC_C2S);
    end_dir(d, ss, VC_S2C);
    if (ss->is_veil)
        d->t.veil_streams++;
    for (int i = 0; i < 2; i++) {
        d->t.retrans += s->st[i].retrans;
        d->t.ooo += s->st[i].ooo;
        d->t.overlaps += s->st[i].overlaps;
        d->t.overflows += s->st[i].overflows;
    }
    vc_event ev = {.kind = VC_EV_CLOSE, .s = s, .why = why, .is_veil = ss->is_veil,
                   .records = {ss->d[0].records, ss->d[1].records},
                   .mode = ss->mode == 0 ? NULL : vc_mode_name(ss->mode)};
    /* PROTOCOL.md §8.3: an end without close_notify is a truncation. */
    for (int i = 0; i < 2; i++) {
        if (veil_observer_closed(ss->obs, i))
            ev.ending[i] = "close_notify";
        else if (ss->fatal_alert)
            ev.ending[i] = "fatal_alert";
        else if (ss->hidden_alert[i])
            ev.ending[i] = "unknown";
        else
            ev.ending[i] = "truncated";
    }
    emit(d, &ev);
    for (int i = 0; i < 2; i++)
        veil_buf_free(&ss->d[i].buf);
    veil_observer_free(ss->obs);
    free(ss);
    s->app = NULL;
}

/* ---- public -------------------------------------------------------------- */

int vc_decoder_new(const vc_decoder_config *cfg, vc_event_cb cb, void *user, vc_decoder **out)
{
    vc_decoder *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -1;
    d->cfg = *cfg;
    d->cb = cb;
    d->user = user;
    static const vc_reasm_ops ops = {on_open, on_data, on_gap, on_fin, on_close};
    if (vc_reasm_new(&cfg->reasm, &ops, d, &d->reasm) != 0) {
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void vc_decoder_frame(vc_decoder *d, int dlt, const uint8_t *frame, size_t caplen, uint64_t ts_ns)
{
    d->now_ns = ts_ns;
    d->t.packets++;
    d->pkt_kind = vc_pkt_parse(dlt, frame, caplen, &d->pkt);
    switch (d->pkt_kind) {
    case VC_PKT_TCP:
        d->t.tcp_packets++;
        if (d->pkt.payload_len < d->pkt.payload_wire)
            d->t.truncated++;
        vc_reasm_packet(d->reasm, &d->pkt, ts_ns);
        break;
    case VC_PKT_OTHER: d->t.other_packets++; break;
    case VC_PKT_FRAGMENT: d->t.fragments++; break;
    case VC_PKT_MALFORMED: d->t.malformed++; break;
    case VC_PKT_BAD_LINK: d->t.bad_link++; break;
    }
}

void vc_decoder_finish(vc_decoder *d)
{
    vc_reasm_finish(d->reasm);
    d->t.evictions = vc_reasm_evictions(d->reasm);
}

const vc_totals *vc_decoder_totals(const vc_decoder *d) { return &d->t; }

const vc_pkt *vc_decoder_packet(const vc_decoder *d, vc_pkt_kind *kind)
{
    *kind = d->pkt_kind;
    return &d->pkt;
}

vc_stream *vc_decoder_current(const vc_decoder *d, int *dir) { return vc_reasm_current(d->reasm, dir); }

void vc_decoder_free(vc_decoder *d)
{
    if (d == NULL)
        return;
    d->cb = NULL; /* streams still open are freed silently */
    vc_reasm_free(d->reasm);
    free(d);
}
