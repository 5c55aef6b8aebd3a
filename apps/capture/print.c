/*
 * print.c - what veil-capture prints: one line per record and event (text),
 * every field (-V), or one JSON object per line (--json).  The formats are
 * specified in docs/CAPTURE.md ("Output"); golden files in captures/ pin
 * them, so a change here must regenerate those files on purpose.
 *
 * Every value comes from libproto's decoded structures (veil_observed_record)
 * and every name from libproto's name functions, so new suites, groups or
 * message types print correctly without a change here.  Text that came off
 * the wire is sanitised (vapp_sanitize) before it reaches a terminal.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"

#define TEXT_MAX 256 /* payload bytes shown on a one-line record (all with -V) */

/*
 * Times are printed once per record, and consecutive records almost always
 * fall in the same second: the calendar part ("YYYY-MM-DDTHH:MM:SS", always
 * 19 characters within the range below) is computed by gmtime_r once per
 * second and kept; only the fraction is formatted per call.  The output is
 * exactly that of the snprintf formats kept for the slow path.
 */
#define MAX_SECONDS 253402300799ull /* 9999-12-31T23:59:59Z */
#define CAL_LEN 19

typedef struct cal_cache {
    int valid;
    uint64_t s;
    char text[CAL_LEN + 1];
} cal_cache;

/* The calendar part of second s into c; 0, or -1 if s is not printable. */
static int calendar(cal_cache *c, uint64_t s)
{
    if (c->valid && c->s == s)
        return 0;
    time_t t = (time_t)s;
    struct tm tm;
    if (s > MAX_SECONDS || gmtime_r(&t, &tm) == NULL)
        return -1;
    char buf[VAPP_TIMESTR_LEN];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n != CAL_LEN)
        return -1;
    memcpy(c->text, buf, CAL_LEN + 1);
    c->s = s;
    c->valid = 1;
    return 0;
}

/* Writes the n low decimal digits of v (zero-padded) at out. */
static void digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "00" to "99": two decimal digits per division. */
static const char DIGITS2[201] = "0001020304050607080910111213141516171819"
                                 "2021222324252627282930313233343536373839"
                                 "4041424344454647484950515253545556575859"
                                 "6061626364656667686970717273747576777879"
                                 "8081828384858687888990919293949596979899";

/* The six digits of a microsecond fraction (v < 1000000) at out. */
static void digits6(char *out, unsigned v)
{
    unsigned a = v / 10000, m = v % 10000, b = m / 100, c = m % 100;
    memcpy(out, DIGITS2 + 2 * a, 2);
    memcpy(out + 2, DIGITS2 + 2 * b, 2);
    memcpy(out + 4, DIGITS2 + 2 * c, 2);
}

/* vc_format_ns's text at out (room for VC_TIMESTR_LEN); returns its length. */
static size_t format_ns(uint64_t ns, char *out)
{
    static cal_cache cache;
    if (calendar(&cache, ns / 1000000000u) != 0)
        return (size_t)snprintf(out, VC_TIMESTR_LEN, "@%" PRIu64, ns);
    memcpy(out, cache.text, CAL_LEN);
    out[CAL_LEN] = '.';
    digits6(out + CAL_LEN + 1, (unsigned)((ns % 1000000000u) / 1000u));
    out[CAL_LEN + 7] = 'Z';
    out[CAL_LEN + 8] = '\0';
    return CAL_LEN + 8;
}

void vc_format_ns(uint64_t ns, char out[VC_TIMESTR_LEN]) { (void)format_ns(ns, out); }

/* vapp_format_utc's text (milliseconds) at out (room for VAPP_TIMESTR_LEN);
 * returns its length. */
static size_t format_ms(uint64_t ms, char *out)
{
    static cal_cache cache;
    if (calendar(&cache, ms / 1000u) != 0) {
        vapp_format_utc(ms, out);
        return strlen(out);
    }
    memcpy(out, cache.text, CAL_LEN);
    out[CAL_LEN] = '.';
    digits(out + CAL_LEN + 1, (unsigned)(ms % 1000u), 3);
    out[CAL_LEN + 4] = 'Z';
    out[CAL_LEN + 5] = '\0';
    return CAL_LEN + 5;
}

const char *vc_status_token(veil_body_status s)
{
    switch (s) {
    case VEIL_BODY_PLAINTEXT: return "plaintext";
    case VEIL_BODY_BAD_CRC: return "bad_crc";
    case VEIL_BODY_DECRYPTED: return "decrypted";
    case VEIL_BODY_NO_KEY: return "no_key";
    case VEIL_BODY_AUTH_FAILED: return "auth_failed";
    case VEIL_BODY_UNSUPPORTED: return "unsupported";
    case VEIL_BODY_MALFORMED: return "malformed";
    default: return "unknown";
    }
}

const char *vc_mode_name(uint8_t mode)
{
    switch (mode) {
    case VEIL_MODE_ENCRYPTED: return "encrypted";
    case VEIL_MODE_PLAINTEXT: return "plaintext";
    default: return "unknown";
    }
}

const char *vc_dir_name(int dir) { return dir == VC_C2S ? "C>S" : "S>C"; }

/* "name" or "name(0x1234)" when libproto does not know the value. */
static const char *named(char *buf, size_t cap, const char *name, unsigned v)
{
    if (strcmp(name, "unknown") == 0) {
        snprintf(buf, cap, "unknown(0x%04x)", v);
        return buf;
    }
    return name;
}

static void hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t j = 0;
    for (size_t i = 0; i < n && j + 2 < cap; i++) {
        out[j++] = digits[p[i] >> 4];
        out[j++] = digits[p[i] & 15];
    }
    out[j] = '\0';
}

/* Whether the record's content was read and parsed. */
static int readable(const veil_observed_record *r) { return r->content != NULL && r->parse_error == 0; }

static void list_suites(const uint16_t *v, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        char b[32];
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "",
                                 named(b, sizeof b, veil_suite_name(v[i]), v[i]));
    }
}

static void list_groups(const uint16_t *v, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        char b[32];
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "",
                                 named(b, sizeof b, veil_group_name(v[i]), v[i]));
    }
}

/* The one-line summary of a record's content. */
static void details(const veil_observed_record *r, char *out, size_t cap)
{
    char b1[64], b2[64];
    out[0] = '\0';
    if (r->content == NULL)
        return;
    if (r->parse_error != 0) {
        snprintf(out, cap, "MALFORMED content: %s", veil_strerror(r->parse_error));
        return;
    }
    switch (r->hdr.type) {
    case VEIL_REC_HANDSHAKE:
        if (r->hs_type == VEIL_HS_CLIENT_HELLO) {
            char vers[64] = "", suites[256], groups[128];
            size_t u = 0;
            for (size_t i = 0; i < r->hello.n_versions && u < sizeof vers; i++)
                u += (size_t)snprintf(vers + u, sizeof vers - u, "%s%u", i ? "," : "",
                                      r->hello.versions[i]);
            list_suites(r->hello.suites, r->hello.n_suites, suites, sizeof suites);
            list_groups(r->hello.groups, r->hello.n_groups, groups, sizeof groups);
            snprintf(out, cap, "mode=%s versions=%s suites=%s groups=%s%s%s",
                     vc_mode_name(r->hello.mode), vers, suites, groups,
                     r->hello.service[0] ? " service=" : "", r->hello.service);
        } else if (r->hs_type == VEIL_HS_SERVER_HELLO) {
            char fp[VEIL_FINGERPRINT_HEX_LEN];
            veil_fingerprint_hex(r->hello.fingerprint, fp);
            snprintf(out, cap, "mode=%s version=%u suite=%s group=%s identity=sha256:%s%s%s",
                     vc_mode_name(r->hello.mode), r->hello.version,
                     named(b1, sizeof b1, veil_suite_name(r->hello.suite), r->hello.suite),
                     named(b2, sizeof b2, veil_group_name(r->hello.group), r->hello.group), fp,
                     r->hello.service[0] ? " service=" : "", r->hello.service);
        } else if (r->hs_type == VEIL_HS_SERVER_VERIFY) {
            snprintf(out, cap, "signature=%s (%zu bytes)",
                     named(b1, sizeof b1, veil_sig_name(r->sig_scheme), r->sig_scheme),
                     r->hs_body_len);
        } else if (r->hs_type == VEIL_HS_FINISHED) {
            snprintf(out, cap, "verify_data (%zu bytes)", r->hs_body_len);
        } else if (r->hs_type == VEIL_HS_CLIENT_KEY_EXCHANGE) {
            snprintf(out, cap, "encrypted premaster secret (%zu bytes)", r->hs_body_len);
        } else {
            snprintf(out, cap, "(%zu bytes)", r->hs_body_len);
        }
        return;
    case VEIL_REC_ALERT:
        snprintf(out, cap, "%s %s",
                 r->alert_level == VEIL_ALERT_LEVEL_WARNING ? "warning"
                 : r->alert_level == VEIL_ALERT_LEVEL_FATAL ? "fatal"
                                                            : "level?",
                 named(b1, sizeof b1, veil_alert_name(r->alert_code), r->alert_code));
        return;
    case VEIL_REC_APPDATA: {
        static char text[VAPP_SANITIZED_MAX(TEXT_MAX)];
        size_t n = r->msg_len < TEXT_MAX ? r->msg_len : TEXT_MAX;
        vapp_sanitize(r->msg_data, n, text, sizeof text);
        char ts[VAPP_TIMESTR_LEN];
        vapp_format_utc(r->msg_timestamp_ms, ts);
        snprintf(out, cap, "%s \"%s%s\" sent=%s",
                 named(b1, sizeof b1, veil_msg_kind_name(r->msg_kind), r->msg_kind), text,
                 n < r->msg_len ? "..." : "", ts);
        return;
    }
    case VEIL_REC_KEY_UPDATE:
        snprintf(out, cap, "announces epoch %u", (unsigned)((r->hdr.epoch + 1) & 0xff));
        return;
    default:
        return;
    }
}

static void stats_suffix(const vc_stream *s, char *out, size_t cap)
{
    uint64_t retrans = s->st[0].retrans + s->st[1].retrans;
    uint64_t ooo = s->st[0].ooo + s->st[1].ooo;
    uint64_t ov = s->st[0].overlaps + s->st[1].overlaps;
    uint64_t gaps = s->st[0].gaps + s->st[1].gaps;
    uint64_t gb = s->st[0].gap_bytes + s->st[1].gap_bytes;
    out[0] = '\0';
    if (retrans + ooo + ov + gaps == 0)
        return;
    snprintf(out, cap,
             "; TCP: %" PRIu64 " retransmitted, %" PRIu64 " out of order, %" PRIu64
             " conflicting overlaps, %" PRIu64 " gaps (%" PRIu64 " bytes)",
             retrans, ooo, ov, gaps, gb);
}

/* ---- one record line, built without printf ------------------------------ */

/* A bounded line builder: appends stop at the end (never past it). */
typedef struct lbuf {
    char *p;
    size_t len, cap; /* cap includes the final NUL */
} lbuf;

static void put(lbuf *b, const char *s, size_t n)
{
    if (n > b->cap - 1 - b->len)
        n = b->cap - 1 - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* put() for long runs (the message text): a call to memcpy, where the
 * compiler would otherwise expand a copy of a bounded length inline, byte by
 * byte. */
__attribute__((noinline)) static void put_long(lbuf *b, const char *s, size_t n) { put(b, s, n); }

/* 1 if n more bytes (and the final NUL) fit. */
static int fits(const lbuf *b, size_t n) { return b->cap - 1 - b->len >= n; }

static void putc_(lbuf *b, char c)
{
    if (b->len < b->cap - 1)
        b->p[b->len++] = c;
}

static void put_u64(lbuf *b, uint64_t v)
{
    if (fits(b, 20)) { /* in place: count the digits, then fill from the right */
        size_t n = 1;
        for (uint64_t t = v; t >= 10; t /= 10)
            n++;
        char *o = b->p + b->len + n;
        b->len += n;
        while (v >= 100) {
            unsigned k = (unsigned)(v % 100) * 2;
            v /= 100;
            *--o = DIGITS2[k + 1];
            *--o = DIGITS2[k];
        }
        if (v >= 10) {
            *--o = DIGITS2[v * 2 + 1];
            *--o = DIGITS2[v * 2];
        } else {
            *--o = (char)('0' + v);
        }
        return;
    }
    char d[20];
    size_t i = sizeof d;
    while (v >= 100) {
        unsigned k = (unsigned)(v % 100) * 2;
        v /= 100;
        d[--i] = DIGITS2[k + 1];
        d[--i] = DIGITS2[k];
    }
    if (v >= 10) {
        d[--i] = DIGITS2[v * 2 + 1];
        d[--i] = DIGITS2[v * 2];
    } else {
        d[--i] = (char)('0' + v);
    }
    put(b, d + i, sizeof d - i);
}

/*
 * Names of the one-byte values a record line shows (record type, handshake
 * message, message kind), resolved through libproto's name functions and
 * named() once per value and kept with their length: the same text, without
 * a strcmp and a strlen per record.
 */
#define NAME_PAD 32
typedef struct name_entry {
    const char *s; /* NULL until resolved */
    size_t len;
    char unknown[16]; /* "unknown(0x00NN)" */
    char pad[NAME_PAD]; /* s and zeros, when len < NAME_PAD: copied whole */
} name_entry;

static const name_entry *name_of(name_entry tab[256], const char *(*fn)(uint8_t), uint8_t v)
{
    name_entry *e = &tab[v];
    if (e->s == NULL) {
        e->s = named(e->unknown, sizeof e->unknown, fn(v), v);
        e->len = strlen(e->s);
        if (e->len < NAME_PAD)
            memcpy(e->pad, e->s, e->len);
    }
    return e;
}

static void put_name(lbuf *b, const name_entry *e)
{
    if (e->len < NAME_PAD && fits(b, NAME_PAD)) { /* a fixed-size copy: no byte loop */
        memcpy(b->p + b->len, e->pad, NAME_PAD);
        b->len += e->len;
        return;
    }
    put(b, e->s, e->len);
}

/*
 * 1 if p[0..n) is printable ASCII other than '\\': exactly the bytes that
 * vapp_sanitize copies unchanged.  Eight bytes at a time: for a word w,
 * (w - 0x20..) & ~w & 0x80.. is non-zero iff some byte is below 0x20,
 * (w + 0x01..) | w has a high bit set iff some byte is 0x7f or above (a carry
 * only leaves a byte that is itself 0xff), and the first test on w ^ 0x5c..
 * finds a '\\' byte.
 */
static int plain_ascii(const uint8_t *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t bs = w ^ (0x5c * ones);
        if ((((w - 0x20 * ones) & ~w) | ((w + ones) | w) | ((bs - ones) & ~bs)) & high)
            return 0;
    }
    for (; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
            return 0;
    return 1;
}

static name_entry type_names[256], hs_names[256], kind_names[256];

/* What details() writes for an application message, appended to b. */
static void put_message(lbuf *b, const veil_observed_record *r)
{
    put_name(b, name_of(kind_names, veil_msg_kind_name, r->msg_kind));
    put(b, " \"", 2);
    size_t n = r->msg_len < TEXT_MAX ? r->msg_len : TEXT_MAX;
    if (plain_ascii(r->msg_data, n)) {
        put_long(b, (const char *)r->msg_data, n);
    } else {
        static char text[VAPP_SANITIZED_MAX(TEXT_MAX)];
        vapp_sanitize(r->msg_data, n, text, sizeof text);
        put(b, text, strlen(text));
    }
    if (n < r->msg_len)
        put(b, "...", 3);
    put(b, "\" sent=", 7);
    if (fits(b, VAPP_TIMESTR_LEN)) {
        b->len += format_ms(r->msg_timestamp_ms, b->p + b->len);
        return;
    }
    char ts[VAPP_TIMESTR_LEN];
    put(b, ts, format_ms(r->msg_timestamp_ms, ts));
}

/* PROTECTION as printed: "clear", "clear!bad_crc", "enc:decrypted", ... */
static void put_protection(lbuf *b, const veil_observed_record *r)
{
    if (r->hdr.flags & VEIL_FLAG_ENCRYPTED) {
        if (r->status == VEIL_BODY_DECRYPTED) {
            put(b, "enc:decrypted", 13);
            return;
        }
        put(b, "enc:", 4);
    } else if (r->status == VEIL_BODY_PLAINTEXT) {
        put(b, "clear", 5);
        return;
    } else {
        put(b, "clear!", 6);
    }
    const char *tok = vc_status_token(r->status);
    put(b, tok, strlen(tok));
}

/* TIME #STREAM DIR TYPE seq=SEQ len=LENGTH PROTECTION [CONTENT] (docs/CAPTURE.md) */
static void record_line(FILE *f, const vc_event *ev, unsigned long id)
{
    static char line[8192];
    static char det[4096];
    const veil_observed_record *r = ev->rec;
    lbuf b = {line, 0, sizeof line};
    b.len = format_ns(ev->ts_ns, line); /* at most VC_TIMESTR_LEN - 1 bytes */
    put(&b, " #", 2);
    put_u64(&b, id);
    put(&b, ev->dir == VC_C2S ? " C>S " : " S>C ", 5);
    put_name(&b, name_of(type_names, veil_record_type_name, r->hdr.type));
    if (r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL && r->content_len >= 1 &&
        (r->parse_error == 0 || r->hs_type != 0)) {
        putc_(&b, '/');
        put_name(&b, name_of(hs_names, veil_hs_type_name, r->hs_type));
    }
    put(&b, " seq=", 5);
    put_u64(&b, r->hdr.seq);
    if (!r->seq_ok && !ev->after_resync) {
        put(&b, "(expected ", 10);
        put_u64(&b, r->seq_expected);
        putc_(&b, ')');
    }
    put(&b, " len=", 5);
    put_u64(&b, r->hdr.length);
    putc_(&b, ' ');
    put_protection(&b, r);
    if (r->content != NULL && r->parse_error == 0 && r->hdr.type == VEIL_REC_APPDATA) {
        putc_(&b, ' ');
        put_message(&b, r);
    } else {
        details(r, det, sizeof det);
        if (det[0] != '\0') {
            putc_(&b, ' ');
            put(&b, det, strlen(det));
        }
    }
    putc_(&b, '\n');
    fwrite_unlocked(line, 1, b.len, f); /* single-threaded: no lock per line */
}

/* ---- text and -V ---------------------------------------------------------- */

static void hexdump_field(FILE *f, const char *name, const uint8_t *p, size_t n)
{
    fprintf(f, "    %s (%zu bytes):", name, n);
    if (n == 0) {
        fputc('\n', f);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i % 32 == 0)
            fputs(i == 0 ? " " : "\n      ", f);
        fprintf(f, "%02x", p[i]);
    }
    fputc('\n', f);
}

static void verbose_record(FILE *f, const vc_event *ev)
{
    const veil_observed_record *r = ev->rec;
    char b1[32], b2[32];
    fprintf(f, "    header: version=%u type=%u(%s) flags=0x%02x%s epoch=%u length=%u seq=%" PRIu64,
            r->hdr.version, r->hdr.type,
            named(b1, sizeof b1, veil_record_type_name(r->hdr.type), r->hdr.type), r->hdr.flags,
            (r->hdr.flags & VEIL_FLAG_ENCRYPTED) ? "(ENCRYPTED)" : "", r->hdr.epoch,
            r->hdr.length, r->hdr.seq);
    if (ev->after_resync)
        fprintf(f, " (not checked: first record after a gap)\n");
    else
        fprintf(f, " (expected %" PRIu64 ", %s)\n", r->seq_expected, r->seq_ok ? "ok" : "MISMATCH");
    fprintf(f, "    stream offset: %" PRIu64 ", record size %zu\n", ev->offset, ev->raw_len);
    fprintf(f, "    body: %s", veil_body_status_name(r->status));
    if (r->content != NULL)
        fprintf(f, ", content %zu bytes", r->content_len);
    fputc('\n', f);
    if (r->content == NULL) {
        hexdump_field(f, "body", r->body, r->hdr.length);
        return;
    }
    if (r->parse_error != 0) {
        fprintf(f, "    content: MALFORMED (%s)\n", veil_strerror(r->parse_error));
        hexdump_field(f, "content", r->content, r->content_len);
        return;
    }
    switch (r->hdr.type) {
    case VEIL_REC_HANDSHAKE:
        fprintf(f, "    handshake: type=%u(%s) body %zu bytes\n", r->hs_type,
                named(b1, sizeof b1, veil_hs_type_name(r->hs_type), r->hs_type), r->hs_body_len);
        if (r->hs_type == VEIL_HS_CLIENT_HELLO) {
            fprintf(f, "    versions:");
            for (size_t i = 0; i < r->hello.n_versions; i++)
                fprintf(f, " %u", r->hello.versions[i]);
            fprintf(f, "\n    mode: %u(%s)\n    suites:", r->hello.mode, vc_mode_name(r->hello.mode));
            for (size_t i = 0; i < r->hello.n_suites; i++)
                fprintf(f, " 0x%04x(%s)", r->hello.suites[i],
                        named(b1, sizeof b1, veil_suite_name(r->hello.suites[i]), r->hello.suites[i]));
            fprintf(f, "\n    groups:");
            for (size_t i = 0; i < r->hello.n_groups; i++)
                fprintf(f, " 0x%04x(%s)", r->hello.groups[i],
                        named(b1, sizeof b1, veil_group_name(r->hello.groups[i]), r->hello.groups[i]));
            fputc('\n', f);
            hexdump_field(f, "random", r->hello.random, VEIL_RANDOM_LEN);
            hexdump_field(f, "key_share (first group)", r->hello.key_share, r->hello.key_share_len);
            fprintf(f, "    service: %s\n", r->hello.service[0] ? r->hello.service : "(none)");
        } else if (r->hs_type == VEIL_HS_SERVER_HELLO) {
            char fp[VEIL_FINGERPRINT_HEX_LEN];
            veil_fingerprint_hex(r->hello.fingerprint, fp);
            fprintf(f, "    version: %u\n    mode: %u(%s)\n    suite: 0x%04x(%s)\n    group: 0x%04x(%s)\n",
                    r->hello.version, r->hello.mode, vc_mode_name(r->hello.mode), r->hello.suite,
                    named(b1, sizeof b1, veil_suite_name(r->hello.suite), r->hello.suite),
                    r->hello.group, named(b2, sizeof b2, veil_group_name(r->hello.group), r->hello.group));
            hexdump_field(f, "random", r->hello.random, VEIL_RANDOM_LEN);
            hexdump_field(f, "key_share", r->hello.key_share, r->hello.key_share_len);
            hexdump_field(f, "identity (SPKI)", r->hello.identity_spki, r->hello.identity_spki_len);
            fprintf(f, "    fingerprint: sha256:%s\n", fp);
            fprintf(f, "    service: %s\n", r->hello.service[0] ? r->hello.service : "(none)");
        } else if (r->hs_type == VEIL_HS_SERVER_VERIFY) {
            fprintf(f, "    signature scheme: 0x%04x(%s)\n", r->sig_scheme,
                    named(b1, sizeof b1, veil_sig_name(r->sig_scheme), r->sig_scheme));
            hexdump_field(f, "signature", r->hs_body, r->hs_body_len);
        } else if (r->hs_type == VEIL_HS_FINISHED) {
            hexdump_field(f, "verify_data", r->hs_body, r->hs_body_len);
        } else if (r->hs_type == VEIL_HS_CLIENT_KEY_EXCHANGE) {
            hexdump_field(f, "encrypted premaster secret", r->hs_body, r->hs_body_len);
        } else {
            hexdump_field(f, "message body", r->hs_body, r->hs_body_len);
        }
        break;
    case VEIL_REC_ALERT:
        fprintf(f, "    alert: level=%u code=%u(%s)\n", r->alert_level, r->alert_code,
                named(b1, sizeof b1, veil_alert_name(r->alert_code), r->alert_code));
        break;
    case VEIL_REC_APPDATA: {
        char ts[VAPP_TIMESTR_LEN];
        vapp_format_utc(r->msg_timestamp_ms, ts);
        fprintf(f, "    message: kind=%u(%s) timestamp=%" PRIu64 " (%s) payload %zu bytes\n",
                r->msg_kind, named(b1, sizeof b1, veil_msg_kind_name(r->msg_kind), r->msg_kind),
                r->msg_timestamp_ms, ts, r->msg_len);
        char *text = malloc(VAPP_SANITIZED_MAX(r->msg_len));
        if (text != NULL) {
            vapp_sanitize(r->msg_data, r->msg_len, text, VAPP_SANITIZED_MAX(r->msg_len));
            fprintf(f, "    text: \"%s\"\n", text);
            free(text);
        }
        hexdump_field(f, "payload", r->msg_data, r->msg_len);
        break;
    }
    case VEIL_REC_KEY_UPDATE:
        fprintf(f, "    key_update: the sender's next records use epoch %u\n",
                (unsigned)((r->hdr.epoch + 1) & 0xff));
        break;
    default:
        break;
    }
}

static void print_text(vc_printer *pr, const vc_event *ev)
{
    FILE *f = pr->f;
    unsigned long id = ev->s != NULL ? ev->s->id : 0;
    if (ev->kind == VC_EV_RECORD) { /* the hot path: one per record */
        record_line(f, ev, id);
        if (pr->fmt == VC_FMT_VERBOSE)
            verbose_record(f, ev);
        return;
    }
    char ts[VC_TIMESTR_LEN];
    vc_format_ns(ev->ts_ns, ts);
    switch (ev->kind) {
    case VC_EV_OPEN: {
        char c[VC_ADDRSTR_LEN], s[VC_ADDRSTR_LEN];
        vc_addr_format(&ev->s->cli, ev->s->cport, c);
        vc_addr_format(&ev->s->srv, ev->s->sport, s);
        fprintf(f, "%s #%lu stream %s > %s%s%s\n", ts, id, c, s,
                ev->s->midstream ? " (no SYN: the capture started during the connection)" : "",
                ev->s->role_guess ? " (client and server told apart by port)" : "");
        break;
    }
    case VC_EV_RECORD: /* above */
    case VC_EV_GAP:
        if (ev->count == 0)
            fprintf(f, "%s #%lu %s GAP at offset %" PRIu64 ": %s\n", ts, id, vc_dir_name(ev->dir),
                    ev->offset, ev->why);
        else
            fprintf(f, "%s #%lu %s GAP of %" PRIu64 " bytes at offset %" PRIu64 ": %s\n", ts, id,
                    vc_dir_name(ev->dir), ev->count, ev->offset, ev->why);
        break;
    case VC_EV_RESYNC:
        fprintf(f, "%s #%lu %s RESYNC at offset %" PRIu64 ": record boundary found, %" PRIu64
                   " bytes skipped\n",
                ts, id, vc_dir_name(ev->dir), ev->offset, ev->count);
        break;
    case VC_EV_FRAMING:
        fprintf(f, "%s #%lu %s FRAMING ERROR at offset %" PRIu64
                   ": %s; looking for the next record boundary\n",
                ts, id, vc_dir_name(ev->dir), ev->offset, ev->why);
        break;
    case VC_EV_TRUNCATED:
        fprintf(f, "%s #%lu %s TRUNCATED: the stream ends inside a record (%" PRIu64
                   " bytes at offset %" PRIu64 ")\n",
                ts, id, vc_dir_name(ev->dir), ev->count, ev->offset);
        break;
    case VC_EV_CLOSE: {
        char st[256];
        stats_suffix(ev->s, st, sizeof st);
        if (ev->is_veil) {
            char end[128] = "";
            if (strcmp(ev->ending[0], "truncated") == 0 || strcmp(ev->ending[1], "truncated") == 0)
                snprintf(end, sizeof end, "; TRUNCATED: no close_notify from %s",
                         strcmp(ev->ending[0], "truncated") == 0
                             ? (strcmp(ev->ending[1], "truncated") == 0 ? "either side"
                                                                        : "the client")
                             : "the server");
            fprintf(f, "%s #%lu end (%s): C>S %" PRIu64 " records, S>C %" PRIu64 " records%s%s%s%s\n",
                    ts, id, ev->why, ev->records[0], ev->records[1], ev->mode ? ", mode " : "",
                    ev->mode ? ev->mode : "", end, st);
        } else {
            fprintf(f, "%s #%lu end (%s): no Veil records (C>S %" PRIu64 " bytes, S>C %" PRIu64
                       " bytes)%s\n",
                    ts, id, ev->why, ev->s->st[0].bytes, ev->s->st[1].bytes, st);
        }
        break;
    }
    case VC_EV_SKIPPED:
    case VC_EV_DIR_END:
        break;
    }
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *jhex(const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    if (h == NULL)
        return json_null();
    hex(p, n, h, 2 * n + 1);
    json_t *j = json_string(h);
    free(h);
    return j;
}

/* A u64 as a JSON number; above 2^63-1 (hostile input) as a decimal string. */
static json_t *ju64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, v);
    return json_string(b);
}

static json_t *jname(const char *name, unsigned v)
{
    char b[32];
    return json_string(named(b, sizeof b, name, v));
}

static void json_record(json_t *o, const vc_event *ev)
{
    const veil_observed_record *r = ev->rec;
    json_object_set_new(o, "type", jname(veil_record_type_name(r->hdr.type), r->hdr.type));
    if (r->hdr.type == VEIL_REC_HANDSHAKE && readable(r))
        json_object_set_new(o, "handshake", jname(veil_hs_type_name(r->hs_type), r->hs_type));
    json_object_set_new(o, "seq", ju64(r->hdr.seq));
    json_object_set_new(o, "seq_ok", json_boolean(r->seq_ok || ev->after_resync));
    if (!r->seq_ok && !ev->after_resync)
        json_object_set_new(o, "seq_expected", ju64(r->seq_expected));
    json_object_set_new(o, "length", json_integer(r->hdr.length));
    json_object_set_new(o, "version", json_integer(r->hdr.version));
    json_object_set_new(o, "flags", json_integer(r->hdr.flags));
    json_object_set_new(o, "encrypted", json_boolean(r->hdr.flags & VEIL_FLAG_ENCRYPTED));
    json_object_set_new(o, "epoch", json_integer(r->hdr.epoch));
    json_object_set_new(o, "status", json_string(vc_status_token(r->status)));
    if (ev->after_resync)
        json_object_set_new(o, "after_gap", json_true());
    if (r->content == NULL)
        return;
    json_object_set_new(o, "content_length", json_integer((json_int_t)r->content_len));
    if (r->parse_error != 0) {
        json_object_set_new(o, "parse_error", json_string(veil_strerror(r->parse_error)));
        json_object_set_new(o, "content_hex", jhex(r->content, r->content_len));
        return;
    }
    switch (r->hdr.type) {
    case VEIL_REC_HANDSHAKE: {
        json_t *h = json_object();
        if (r->hs_type == VEIL_HS_CLIENT_HELLO) {
            json_t *a = json_array();
            for (size_t i = 0; i < r->hello.n_versions; i++)
                json_array_append_new(a, json_integer(r->hello.versions[i]));
            json_object_set_new(h, "versions", a);
            json_object_set_new(h, "mode", json_string(vc_mode_name(r->hello.mode)));
            a = json_array();
            for (size_t i = 0; i < r->hello.n_suites; i++)
                json_array_append_new(a, jname(veil_suite_name(r->hello.suites[i]), r->hello.suites[i]));
            json_object_set_new(h, "suites", a);
            a = json_array();
            for (size_t i = 0; i < r->hello.n_groups; i++)
                json_array_append_new(a, jname(veil_group_name(r->hello.groups[i]), r->hello.groups[i]));
            json_object_set_new(h, "groups", a);
            json_object_set_new(h, "random", jhex(r->hello.random, VEIL_RANDOM_LEN));
            json_object_set_new(h, "key_share", jhex(r->hello.key_share, r->hello.key_share_len));
            json_object_set_new(h, "service", json_string(r->hello.service));
            json_object_set_new(o, "client_hello", h);
        } else if (r->hs_type == VEIL_HS_SERVER_HELLO) {
            char fp[VEIL_FINGERPRINT_HEX_LEN], fps[VAPP_FPSTR_LEN];
            veil_fingerprint_hex(r->hello.fingerprint, fp);
            snprintf(fps, sizeof fps, "sha256:%s", fp);
            json_object_set_new(h, "version", json_integer(r->hello.version));
            json_object_set_new(h, "mode", json_string(vc_mode_name(r->hello.mode)));
            json_object_set_new(h, "suite", jname(veil_suite_name(r->hello.suite), r->hello.suite));
            json_object_set_new(h, "group", jname(veil_group_name(r->hello.group), r->hello.group));
            json_object_set_new(h, "random", jhex(r->hello.random, VEIL_RANDOM_LEN));
            json_object_set_new(h, "key_share", jhex(r->hello.key_share, r->hello.key_share_len));
            json_object_set_new(h, "identity", jhex(r->hello.identity_spki, r->hello.identity_spki_len));
            json_object_set_new(h, "fingerprint", json_string(fps));
            json_object_set_new(h, "service", json_string(r->hello.service));
            json_object_set_new(o, "server_hello", h);
        } else if (r->hs_type == VEIL_HS_SERVER_VERIFY) {
            json_object_set_new(h, "scheme", jname(veil_sig_name(r->sig_scheme), r->sig_scheme));
            json_object_set_new(h, "signature", jhex(r->hs_body, r->hs_body_len));
            json_object_set_new(o, "server_verify", h);
        } else if (r->hs_type == VEIL_HS_FINISHED) {
            json_object_set_new(h, "verify_data", jhex(r->hs_body, r->hs_body_len));
            json_object_set_new(o, "finished", h);
        } else {
            json_object_set_new(h, "body", jhex(r->hs_body, r->hs_body_len));
            json_object_set_new(o, "handshake_body", h);
        }
        break;
    }
    case VEIL_REC_ALERT: {
        json_t *a = json_object();
        json_object_set_new(a, "level", json_integer(r->alert_level));
        json_object_set_new(a, "code", json_integer(r->alert_code));
        json_object_set_new(a, "name", jname(veil_alert_name(r->alert_code), r->alert_code));
        json_object_set_new(o, "alert", a);
        break;
    }
    case VEIL_REC_APPDATA: {
        json_t *m = json_object();
        char ts[VAPP_TIMESTR_LEN];
        vapp_format_utc(r->msg_timestamp_ms, ts);
        json_object_set_new(m, "kind", jname(veil_msg_kind_name(r->msg_kind), r->msg_kind));
        json_object_set_new(m, "timestamp_ms", ju64(r->msg_timestamp_ms));
        json_object_set_new(m, "timestamp", json_string(ts));
        json_object_set_new(m, "length", json_integer((json_int_t)r->msg_len));
        json_t *t = json_stringn((const char *)r->msg_data, r->msg_len); /* NULL if not UTF-8 */
        if (t != NULL)
            json_object_set_new(m, "text", t);
        json_object_set_new(m, "data_hex", jhex(r->msg_data, r->msg_len));
        json_object_set_new(o, "message", m);
        break;
    }
    case VEIL_REC_KEY_UPDATE:
        json_object_set_new(o, "next_epoch", json_integer((r->hdr.epoch + 1) & 0xff));
        break;
    default:
        break;
    }
}

static void print_json(vc_printer *pr, const vc_event *ev)
{
    static const char *const kinds[] = {"", "open", "record", "gap", "resync", "framing_error",
                                        "truncated", "close"};
    json_t *o = json_object();
    char ts[VC_TIMESTR_LEN];
    vc_format_ns(ev->ts_ns, ts);
    json_object_set_new(o, "event", json_string(kinds[ev->kind]));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "stream", json_integer((json_int_t)ev->s->id));
    if (ev->kind != VC_EV_OPEN && ev->kind != VC_EV_CLOSE) {
        json_object_set_new(o, "dir", json_string(vc_dir_name(ev->dir)));
        json_object_set_new(o, "offset", json_integer((json_int_t)ev->offset));
    }
    switch (ev->kind) {
    case VC_EV_OPEN: {
        char c[VC_ADDRSTR_LEN], s[VC_ADDRSTR_LEN];
        vc_addr_format(&ev->s->cli, ev->s->cport, c);
        vc_addr_format(&ev->s->srv, ev->s->sport, s);
        json_object_set_new(o, "client", json_string(c));
        json_object_set_new(o, "server", json_string(s));
        json_object_set_new(o, "midstream", json_boolean(ev->s->midstream));
        json_object_set_new(o, "role_by_port", json_boolean(ev->s->role_guess));
        break;
    }
    case VC_EV_RECORD:
        json_record(o, ev);
        break;
    case VC_EV_GAP:
        json_object_set_new(o, "bytes", json_integer((json_int_t)ev->count));
        json_object_set_new(o, "why", json_string(ev->why));
        break;
    case VC_EV_RESYNC:
        json_object_set_new(o, "skipped", json_integer((json_int_t)ev->count));
        break;
    case VC_EV_FRAMING:
        json_object_set_new(o, "why", json_string(ev->why));
        break;
    case VC_EV_TRUNCATED:
        json_object_set_new(o, "bytes", json_integer((json_int_t)ev->count));
        break;
    case VC_EV_CLOSE: {
        json_object_set_new(o, "why", json_string(ev->why));
        json_object_set_new(o, "veil", json_boolean(ev->is_veil));
        if (ev->mode != NULL)
            json_object_set_new(o, "mode", json_string(ev->mode));
        json_object_set_new(o, "records_c2s", json_integer((json_int_t)ev->records[0]));
        json_object_set_new(o, "records_s2c", json_integer((json_int_t)ev->records[1]));
        if (ev->is_veil) {
            json_object_set_new(o, "ending_c2s", json_string(ev->ending[0]));
            json_object_set_new(o, "ending_s2c", json_string(ev->ending[1]));
        }
        json_t *tcp = json_object();
        const vc_half_stats *st = ev->s->st;
        json_object_set_new(tcp, "bytes_c2s", json_integer((json_int_t)st[0].bytes));
        json_object_set_new(tcp, "bytes_s2c", json_integer((json_int_t)st[1].bytes));
        json_object_set_new(tcp, "retransmitted", json_integer((json_int_t)(st[0].retrans + st[1].retrans)));
        json_object_set_new(tcp, "out_of_order", json_integer((json_int_t)(st[0].ooo + st[1].ooo)));
        json_object_set_new(tcp, "overlaps", json_integer((json_int_t)(st[0].overlaps + st[1].overlaps)));
        json_object_set_new(tcp, "gaps", json_integer((json_int_t)(st[0].gaps + st[1].gaps)));
        json_object_set_new(tcp, "gap_bytes", json_integer((json_int_t)(st[0].gap_bytes + st[1].gap_bytes)));
        json_object_set_new(o, "tcp", tcp);
        break;
    }
    case VC_EV_SKIPPED:
    case VC_EV_DIR_END:
        break;
    }
    json_dumpf(o, pr->f, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    fputc('\n', pr->f);
    json_decref(o);
}

void vc_print_event(vc_printer *pr, const vc_event *ev)
{
    if (pr->quiet || ev->kind == VC_EV_SKIPPED || ev->kind == VC_EV_DIR_END)
        return;
    if (pr->fmt == VC_FMT_JSON)
        print_json(pr, ev);
    else
        print_text(pr, ev);
}

void vc_print_comment(vc_printer *pr, uint64_t ts_ns, unsigned long frame, const char *text)
{
    if (pr->quiet)
        return;
    char ts[VC_TIMESTR_LEN];
    vc_format_ns(ts_ns, ts);
    char *safe = malloc(VAPP_SANITIZED_MAX(strlen(text)));
    if (safe == NULL)
        return;
    vapp_sanitize((const uint8_t *)text, strlen(text), safe, VAPP_SANITIZED_MAX(strlen(text)));
    if (pr->fmt == VC_FMT_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("comment"));
        json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "frame", json_integer((json_int_t)frame));
        json_object_set_new(o, "text", json_string(safe));
        json_dumpf(o, pr->f, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
        fputc('\n', pr->f);
        json_decref(o);
    } else {
        fprintf(pr->f, "%s frame %lu comment: %s\n", ts, frame, safe);
    }
    free(safe);
}

void vc_print_summary(vc_printer *pr, const vc_totals *t)
{
    uint64_t failures = t->auth_failed + t->bad_crc + t->malformed_bodies + t->parse_errors;
    if (pr->fmt == VC_FMT_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("summary"));
#define J(k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))
        J("packets", t->packets);
        J("tcp_packets", t->tcp_packets);
        J("other_packets", t->other_packets);
        J("fragments", t->fragments);
        J("malformed_packets", t->malformed);
        J("truncated_packets", t->truncated);
        J("streams", t->streams);
        J("veil_streams", t->veil_streams);
        J("records", t->records);
        J("plaintext", t->plaintext);
        J("decrypted", t->decrypted);
        J("no_key", t->no_key);
        J("unsupported", t->unsupported);
        J("failures", failures);
        J("auth_failed", t->auth_failed);
        J("bad_crc", t->bad_crc);
        J("malformed_bodies", t->malformed_bodies);
        J("malformed_contents", t->parse_errors);
        J("sequence_errors", t->seq_errors);
        J("truncated_records", t->truncated_records);
        J("gaps", t->gaps);
        J("gap_bytes", t->gap_bytes);
        J("resyncs", t->resyncs);
        J("framing_errors", t->framing_errors);
        J("retransmitted", t->retrans);
        J("out_of_order", t->ooo);
        J("overlaps", t->overlaps);
        J("buffer_overflows", t->overflows);
        J("evicted_streams", t->evictions);
#undef J
        json_dumpf(o, pr->f, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
        fputc('\n', pr->f);
        json_decref(o);
        return;
    }
    FILE *f = pr->f;
    fprintf(f, "summary:\n");
    fprintf(f, "  packets:  %" PRIu64 " (%" PRIu64 " TCP, %" PRIu64 " other, %" PRIu64
               " IP fragments, %" PRIu64 " malformed, %" PRIu64 " cut short by the snap length)\n",
            t->packets, t->tcp_packets, t->other_packets, t->fragments, t->malformed + t->bad_link,
            t->truncated);
    fprintf(f, "  streams:  %lu (%lu Veil)\n", t->streams, t->veil_streams);
    fprintf(f, "  records:  %" PRIu64 " (%" PRIu64 " plaintext, %" PRIu64 " decrypted, %" PRIu64
               " encrypted without a key, %" PRIu64 " unsupported)\n",
            t->records, t->plaintext, t->decrypted, t->no_key, t->unsupported);
    fprintf(f, "  failures: %" PRIu64 " (%" PRIu64 " authentication, %" PRIu64 " bad CRC, %" PRIu64
               " malformed bodies, %" PRIu64 " malformed contents); %" PRIu64
               " sequence errors, %" PRIu64 " truncated records\n",
            failures, t->auth_failed, t->bad_crc, t->malformed_bodies, t->parse_errors,
            t->seq_errors, t->truncated_records);
    fprintf(f, "  tcp:      %" PRIu64 " gaps (%" PRIu64 " bytes), %" PRIu64 " resyncs, %" PRIu64
               " framing errors, %" PRIu64 " retransmitted, %" PRIu64 " out of order, %" PRIu64
               " conflicting overlaps, %" PRIu64 " buffer overflows, %" PRIu64 " evicted streams\n",
            t->gaps, t->gap_bytes, t->resyncs, t->framing_errors, t->retrans, t->ooo, t->overlaps,
            t->overflows, t->evictions);
}

double vc_entropy(const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0.0;
    size_t c[256] = {0};
    for (size_t i = 0; i < n; i++)
        c[p[i]]++;
    double h = 0.0;
    for (int i = 0; i < 256; i++) {
        if (c[i] == 0)
            continue;
        double q = (double)c[i] / (double)n;
        h -= q * log2(q);
    }
    return h;
}
