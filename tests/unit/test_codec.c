/*
 * test_codec.c - the wire format decoders and encoders of codec.c (PROTOCOL.md
 * §2 record header, §4 handshake messages, §7 application messages, §8 alerts)
 * and the code-point names and error texts of errors.c.
 *
 * Every decoder gets a round trip with all fields checked and a rejection test
 * for each rule: truncation at every length, a trailing byte, each count out
 * of range, duplicates, and malformed extension blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "veil_internal.h"

#define DECODE_ERROR VEIL_PERR(VEIL_ALERT_DECODE_ERROR)
#define ILLEGAL_PARAMETER VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER)

/* ------------------------------------------------------------------------ */
/* Record header, §2                                                        */

static void test_header_roundtrip(void **st)
{
    (void)st;
    const veil_header cases[] = {
        {.version = 1, .type = VEIL_REC_HANDSHAKE, .flags = 0, .epoch = 0, .length = 4, .seq = 0},
        {.version = 1, .type = VEIL_REC_ALERT, .flags = 0, .epoch = 0, .length = 6, .seq = 1},
        {.version = 1, .type = VEIL_REC_APPDATA, .flags = VEIL_FLAG_ENCRYPTED, .epoch = 0xFF,
         .length = VEIL_MAX_BODY, .seq = UINT64_MAX},
        {.version = 1, .type = VEIL_REC_KEY_UPDATE, .flags = VEIL_FLAG_ENCRYPTED, .epoch = 7, .length = 0,
         .seq = 0x0102030405060708u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t wire[VEIL_HEADER_LEN + 1];
        veil_header h;
        memset(wire, 0xEE, sizeof(wire));
        veil_header_encode(&cases[i], wire);
        assert_int_equal(wire[VEIL_HEADER_LEN], 0xEE); /* writes exactly 16 bytes */
        assert_int_equal(wire[0], 0x56);
        assert_int_equal(wire[1], 0x4C);
        assert_int_equal(wire[2], cases[i].version);
        assert_int_equal(wire[3], cases[i].type);
        assert_int_equal(wire[4], cases[i].flags);
        assert_int_equal(wire[5], cases[i].epoch);
        assert_int_equal(wire[6], cases[i].length >> 8); /* big-endian */
        assert_int_equal(wire[7], cases[i].length & 0xFF);
        assert_int_equal(wire[8], (uint8_t)(cases[i].seq >> 56));
        assert_int_equal(wire[15], (uint8_t)cases[i].seq);
        /* Extra bytes after the header are not the header's business. */
        assert_int_equal(veil_header_decode(wire, sizeof(wire), &h), 0);
        assert_int_equal(h.version, cases[i].version);
        assert_int_equal(h.type, cases[i].type);
        assert_int_equal(h.flags, cases[i].flags);
        assert_int_equal(h.epoch, cases[i].epoch);
        assert_int_equal(h.length, cases[i].length);
        assert_true(h.seq == cases[i].seq);
    }
}

/* A valid unencrypted header with one field changed by the caller. */
static void header_bytes(uint8_t out[VEIL_HEADER_LEN], uint8_t flags, uint8_t epoch, uint16_t length)
{
    veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .flags = flags, .epoch = epoch, .length = length, .seq = 5};
    veil_header_encode(&h, out);
}

static void test_header_rejects(void **st)
{
    (void)st;
    uint8_t w[VEIL_HEADER_LEN];
    veil_header h;

    /* Short input: more needed, for every length below 16. */
    header_bytes(w, 0, 0, 100);
    for (size_t n = 0; n < VEIL_HEADER_LEN; n++)
        assert_int_equal(veil_header_decode(w, n, &h), VEIL_ERR_NEED_MORE);
    assert_int_equal(veil_header_decode(w, VEIL_HEADER_LEN, &h), 0);

    /* Magic. */
    header_bytes(w, 0, 0, 100);
    w[0] = 'X';
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), DECODE_ERROR);
    header_bytes(w, 0, 0, 100);
    w[1] ^= 0x20; /* "Vl" */
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), DECODE_ERROR);

    /* Version. */
    header_bytes(w, 0, 0, 100);
    w[2] = 2;
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), VEIL_PERR(VEIL_ALERT_PROTOCOL_VERSION));
    assert_int_equal(h.version, 2); /* filled as far as it was read */
    w[2] = 0;
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), VEIL_PERR(VEIL_ALERT_PROTOCOL_VERSION));

    /* Types 1..4 only. */
    for (int type = 0; type < 256; type++) {
        header_bytes(w, 0, 0, 100);
        w[3] = (uint8_t)type;
        int want = type >= VEIL_REC_HANDSHAKE && type <= VEIL_REC_KEY_UPDATE ? 0 : DECODE_ERROR;
        assert_int_equal(veil_header_decode(w, sizeof(w), &h), want);
    }

    /* Flags: only bit 0 is defined. */
    for (int bit = 1; bit < 8; bit++) {
        header_bytes(w, (uint8_t)(1u << bit), 0, 100);
        assert_int_equal(veil_header_decode(w, sizeof(w), &h), DECODE_ERROR);
        header_bytes(w, (uint8_t)(VEIL_FLAG_ENCRYPTED | 1u << bit), 0, 100);
        assert_int_equal(veil_header_decode(w, sizeof(w), &h), DECODE_ERROR);
    }

    /* Length: 16448 is the largest body, 16449 overflows (encrypted or not). */
    header_bytes(w, VEIL_FLAG_ENCRYPTED, 0, 16448);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), 0);
    assert_int_equal(h.length, 16448);
    header_bytes(w, 0, 0, 16448);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), 0);
    header_bytes(w, VEIL_FLAG_ENCRYPTED, 0, 16449);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW));
    header_bytes(w, 0, 0, 16449);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW));
    header_bytes(w, 0, 0, 0xFFFF);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW));

    /* Unencrypted: epoch 0 and room for the CRC. */
    header_bytes(w, 0, 1, 100);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), DECODE_ERROR);
    header_bytes(w, VEIL_FLAG_ENCRYPTED, 1, 100);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), 0);
    for (uint16_t len = 0; len < 4; len++) {
        header_bytes(w, 0, 0, len);
        assert_int_equal(veil_header_decode(w, sizeof(w), &h), DECODE_ERROR);
    }
    header_bytes(w, 0, 0, 4);
    assert_int_equal(veil_header_decode(w, sizeof(w), &h), 0);
}

/* ------------------------------------------------------------------------ */
/* Handshake framing, §4                                                    */

static void test_hs_split(void **st)
{
    (void)st;
    uint8_t msg[4 + 10] = {VEIL_HS_FINISHED, 0, 0, 10};
    uint8_t type;
    const uint8_t *body;
    size_t body_len;

    for (int i = 0; i < 10; i++)
        msg[4 + i] = (uint8_t)i;
    assert_int_equal(veil_hs_split(msg, sizeof(msg), &type, &body, &body_len), 0);
    assert_int_equal(type, VEIL_HS_FINISHED);
    assert_ptr_equal(body, msg + 4);
    assert_int_equal(body_len, 10);

    /* The u24 length must equal the content length minus 4, exactly. */
    msg[3] = 11;
    assert_int_equal(veil_hs_split(msg, sizeof(msg), &type, &body, &body_len), DECODE_ERROR);
    msg[3] = 9;
    assert_int_equal(veil_hs_split(msg, sizeof(msg), &type, &body, &body_len), DECODE_ERROR);
    msg[3] = 10;
    msg[1] = 1; /* 65546: the high bytes count */
    assert_int_equal(veil_hs_split(msg, sizeof(msg), &type, &body, &body_len), DECODE_ERROR);
    msg[1] = 0;
    for (size_t n = 0; n < sizeof(msg); n++)
        assert_int_equal(veil_hs_split(msg, n, &type, &body, &body_len), DECODE_ERROR);

    /* An empty body is a valid frame (the message decoder decides). */
    const uint8_t empty[4] = {VEIL_HS_CLIENT_HELLO, 0, 0, 0};
    assert_int_equal(veil_hs_split(empty, sizeof(empty), &type, &body, &body_len), 0);
    assert_int_equal(type, VEIL_HS_CLIENT_HELLO);
    assert_int_equal(body_len, 0);
}

/* Checks an encoder's framing and returns the body. */
static const uint8_t *framed_body(const veil_buf *b, uint8_t want_type, size_t *body_len)
{
    uint8_t type;
    const uint8_t *body;
    assert_true(b->len >= 4);
    assert_int_equal(veil_hs_split(b->base, b->len, &type, &body, body_len), 0);
    assert_int_equal(type, want_type);
    assert_int_equal(((size_t)b->base[1] << 16 | (size_t)b->base[2] << 8 | b->base[3]), b->len - 4);
    return body;
}

/* ------------------------------------------------------------------------ */
/* ClientHello, §4                                                          */

static const uint8_t share_a[32] = {0xA0, 1, 2, 3, [31] = 0xAF};
static const uint8_t share_b[5] = {0xB0, 0xB1, 0xB2, 0xB3, 0xB4};
static const uint8_t rand_c[32] = {0xC0, [15] = 0xCF, [31] = 0xC1};
/* Two well-formed extensions: type 0x1234 with 3 bytes, type 0xFFFF empty. */
static const uint8_t two_ext[] = {0x12, 0x34, 0x00, 0x03, 'a', 'b', 'c', 0xFF, 0xFF, 0x00, 0x00};

/* The ClientHello the client sends: one version, one X25519 share, no extensions. */
static void simple_client_hello(veil_buf *out)
{
    veil_client_hello ch;
    memset(&ch, 0, sizeof(ch));
    ch.n_versions = 1;
    ch.versions[0] = VEIL_VERSION_1;
    ch.mode = VEIL_MODE_ENCRYPTED;
    ch.n_suites = 3;
    ch.suites[0] = VEIL_SUITE_AES_256_GCM_SHA256;
    ch.suites[1] = VEIL_SUITE_CHACHA20_POLY1305_SHA256;
    ch.suites[2] = VEIL_SUITE_AES_256_CBC_HMAC_SHA256;
    ch.n_shares = 1;
    ch.groups[0] = VEIL_GROUP_X25519;
    ch.shares[0] = share_a;
    ch.share_lens[0] = sizeof(share_a);
    ch.random = rand_c;
    assert_int_equal(veil_client_hello_encode(&ch, out), 0);
}

static void test_client_hello_roundtrip(void **st)
{
    (void)st;
    veil_client_hello ch, d;
    veil_buf b, b2;
    size_t body_len;

    memset(&ch, 0, sizeof(ch));
    ch.n_versions = 3;
    ch.versions[0] = 0x01;
    ch.versions[1] = 0x7F;
    ch.versions[2] = 0x02;
    ch.mode = VEIL_MODE_PLAINTEXT;
    ch.n_suites = 4;
    ch.suites[0] = VEIL_SUITE_AES_256_CBC_HMAC_SHA256;
    ch.suites[1] = 0xABCD;
    ch.suites[2] = VEIL_SUITE_AES_256_GCM_SHA256;
    ch.suites[3] = 0x0100;
    ch.n_shares = 3;
    ch.groups[0] = VEIL_GROUP_X25519;
    ch.shares[0] = share_a;
    ch.share_lens[0] = sizeof(share_a);
    ch.groups[1] = 0x0203;
    ch.shares[1] = share_b;
    ch.share_lens[1] = sizeof(share_b);
    ch.groups[2] = 0xFFFF;
    ch.shares[2] = share_b; /* empty key */
    ch.share_lens[2] = 0;
    ch.random = rand_c;
    ch.ext = two_ext;
    ch.ext_len = sizeof(two_ext);

    veil_buf_init(&b);
    veil_buf_init(&b2);
    assert_int_equal(veil_client_hello_encode(&ch, &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_CLIENT_HELLO, &body_len);
    /* 1+3 versions, 1 mode, 1+8 suites, 1 + (4+32) + (4+5) + (4+0) shares, 32 random, 2+11 ext */
    assert_int_equal(body_len, 4 + 1 + 9 + 1 + 36 + 9 + 4 + 32 + 2 + sizeof(two_ext));
    assert_int_equal(body[0], 3);
    assert_int_equal(body[4], VEIL_MODE_PLAINTEXT);

    assert_int_equal(veil_client_hello_decode(body, body_len, &d), 0);
    assert_int_equal(d.n_versions, 3);
    assert_memory_equal(d.versions, ch.versions, 3);
    assert_int_equal(d.mode, VEIL_MODE_PLAINTEXT);
    assert_int_equal(d.n_suites, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(d.suites[i], ch.suites[i]);
    assert_int_equal(d.n_shares, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.groups[i], ch.groups[i]);
        assert_int_equal(d.share_lens[i], ch.share_lens[i]);
        assert_memory_equal(d.shares[i], ch.shares[i], ch.share_lens[i]);
        assert_true(d.shares[i] >= body && d.shares[i] <= body + body_len); /* points into the message */
    }
    assert_memory_equal(d.random, rand_c, 32);
    assert_int_equal(d.ext_len, sizeof(two_ext));
    assert_memory_equal(d.ext, two_ext, sizeof(two_ext));

    /* Re-encoding the decoded form gives the same bytes. */
    assert_int_equal(veil_client_hello_encode(&d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.base, b.base, b.len);
    veil_buf_free(&b);
    veil_buf_free(&b2);
}

static void test_client_hello_truncated(void **st)
{
    (void)st;
    veil_buf b;
    veil_client_hello d;
    size_t body_len;
    veil_buf_init(&b);
    simple_client_hello(&b);
    const uint8_t *body = framed_body(&b, VEIL_HS_CLIENT_HELLO, &body_len);
    assert_int_equal(body_len, 81); /* PROTOCOL.md §4.2: 1 version, 3 suites, 1 X25519 share */
    assert_int_equal(veil_client_hello_decode(body, body_len, &d), 0);
    for (size_t n = 0; n < body_len; n++)
        assert_int_equal(veil_client_hello_decode(body, n, &d), DECODE_ERROR);
    /* One trailing byte. */
    uint8_t longer[512];
    assert_true(body_len + 1 <= sizeof(longer));
    memcpy(longer, body, body_len);
    longer[body_len] = 0;
    assert_int_equal(veil_client_hello_decode(longer, body_len + 1, &d), DECODE_ERROR);
    veil_buf_free(&b);
}

/*
 * Regression: with two or more shares, a body cut inside the share list was
 * reported as illegal_parameter instead of decode_error, because the
 * duplicate-group check compared the zeros a failed read yields.
 */
static void test_client_hello_truncated_multi_share(void **st)
{
    (void)st;
    veil_client_hello ch, d;
    veil_buf b;
    size_t body_len;
    memset(&ch, 0, sizeof(ch));
    ch.n_versions = 1;
    ch.versions[0] = VEIL_VERSION_1;
    ch.mode = VEIL_MODE_ENCRYPTED;
    ch.n_suites = 1;
    ch.suites[0] = VEIL_SUITE_AES_256_GCM_SHA256;
    ch.n_shares = 3;
    for (int i = 0; i < 3; i++) {
        ch.groups[i] = (uint16_t)(i + 1);
        ch.shares[i] = share_a;
        ch.share_lens[i] = sizeof(share_a);
    }
    ch.random = rand_c;
    veil_buf_init(&b);
    assert_int_equal(veil_client_hello_encode(&ch, &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_CLIENT_HELLO, &body_len);
    assert_int_equal(veil_client_hello_decode(body, body_len, &d), 0);
    int first_bad = 0;
    for (size_t n = 0; n < body_len; n++) {
        int ret = veil_client_hello_decode(body, n, &d);
        if (ret != DECODE_ERROR && first_bad == 0) {
            print_error("truncated to %zu of %zu bytes: got %d (%s), want decode_error\n", n, body_len, ret,
                        veil_strerror(ret));
            first_bad = ret;
        }
    }
    veil_buf_free(&b);
    assert_int_equal(first_bad, 0);
}

/*
 * Raw ClientHello body with chosen counts, bypassing the encoder so that
 * out-of-range counts can be written.  Groups are 1, 2, ... unless dup_group.
 */
typedef struct raw_ch {
    unsigned n_versions, n_suites, n_shares;
    uint8_t mode;
    bool dup_group;
    const uint8_t *ext;
    size_t ext_len; /* the block written after the u16 ext_len */
    int ext_len_delta; /* added to the u16 ext_len field */
} raw_ch;

static void raw_client_hello(const raw_ch *r, veil_buf *out)
{
    int ret = veil_buf_u8(out, (uint8_t)r->n_versions);
    for (unsigned i = 0; i < r->n_versions; i++)
        ret |= veil_buf_u8(out, VEIL_VERSION_1);
    ret |= veil_buf_u8(out, r->mode);
    ret |= veil_buf_u8(out, (uint8_t)r->n_suites);
    for (unsigned i = 0; i < r->n_suites; i++)
        ret |= veil_buf_u16(out, (uint16_t)(i + 1));
    ret |= veil_buf_u8(out, (uint8_t)r->n_shares);
    for (unsigned i = 0; i < r->n_shares; i++) {
        ret |= veil_buf_u16(out, r->dup_group && i == r->n_shares - 1 ? 1 : (uint16_t)(i + 1));
        ret |= veil_buf_u16(out, 32);
        ret |= veil_buf_append(out, share_a, 32);
    }
    ret |= veil_buf_append(out, rand_c, 32);
    ret |= veil_buf_u16(out, (uint16_t)((int)r->ext_len + r->ext_len_delta));
    ret |= veil_buf_append(out, r->ext, r->ext_len);
    assert_int_equal(ret, 0);
}

/* Decodes a raw body; the decoded pointers stay valid until the next call. */
static veil_buf raw_buf;

static int decode_raw_ch(const raw_ch *r, veil_client_hello *d)
{
    veil_buf_free(&raw_buf);
    raw_client_hello(r, &raw_buf);
    return veil_client_hello_decode(raw_buf.base, raw_buf.len, d);
}

static int free_raw_buf(void **st)
{
    (void)st;
    veil_buf_free(&raw_buf);
    return 0;
}

static const raw_ch good_ch = {.n_versions = 1, .n_suites = 1, .n_shares = 1, .mode = VEIL_MODE_ENCRYPTED};

static void test_client_hello_counts(void **st)
{
    (void)st;
    veil_client_hello d;
    raw_ch r = good_ch;
    assert_int_equal(decode_raw_ch(&r, &d), 0);

    r = good_ch;
    r.n_versions = 0;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.n_versions = 9;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.n_versions = 8;
    assert_int_equal(decode_raw_ch(&r, &d), 0);
    assert_int_equal(d.n_versions, 8);

    r = good_ch;
    r.n_suites = 0;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.n_suites = 17;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.n_suites = 16;
    assert_int_equal(decode_raw_ch(&r, &d), 0);
    assert_int_equal(d.n_suites, 16);
    assert_int_equal(d.suites[15], 16);

    r = good_ch;
    r.n_shares = 0;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.n_shares = 9;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.n_shares = 8;
    assert_int_equal(decode_raw_ch(&r, &d), 0);
    assert_int_equal(d.n_shares, 8);
    assert_int_equal(d.groups[7], 8);

    /* The same group offered twice. */
    r = good_ch;
    r.n_shares = 2;
    r.dup_group = true;
    assert_int_equal(decode_raw_ch(&r, &d), ILLEGAL_PARAMETER);
    r.n_shares = 8;
    assert_int_equal(decode_raw_ch(&r, &d), ILLEGAL_PARAMETER);
}

static void test_client_hello_mode(void **st)
{
    (void)st;
    veil_client_hello d;
    for (int mode = 0; mode < 256; mode++) {
        raw_ch r = good_ch;
        r.mode = (uint8_t)mode;
        int want = mode == VEIL_MODE_ENCRYPTED || mode == VEIL_MODE_PLAINTEXT ? 0 : ILLEGAL_PARAMETER;
        assert_int_equal(decode_raw_ch(&r, &d), want);
        if (want == 0)
            assert_int_equal(d.mode, mode);
    }
}

static void test_client_hello_extensions(void **st)
{
    (void)st;
    veil_client_hello d;
    raw_ch r = good_ch;

    /* Well-formed, unknown types: accepted and exposed as is. */
    r.ext = two_ext;
    r.ext_len = sizeof(two_ext);
    assert_int_equal(decode_raw_ch(&r, &d), 0);
    assert_int_equal(d.ext_len, sizeof(two_ext));
    assert_memory_equal(d.ext, two_ext, sizeof(two_ext));

    /* Duplicate type. */
    const uint8_t dup[] = {0x00, 0x07, 0x00, 0x01, 'x', 0x00, 0x08, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00};
    r.ext = dup;
    r.ext_len = sizeof(dup);
    assert_int_equal(decode_raw_ch(&r, &d), ILLEGAL_PARAMETER);

    /* An extension longer than its block. */
    const uint8_t overlong[] = {0x00, 0x07, 0x00, 0x05, 'a', 'b', 'c', 'd'};
    r.ext = overlong;
    r.ext_len = sizeof(overlong);
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);

    /* A block that ends inside an extension header. */
    const uint8_t partial[] = {0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00};
    r.ext = partial;
    r.ext_len = sizeof(partial);
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);

    /* libproto's documented limit (PROTOCOL.md §4.2): 64 entries, not 65. */
    uint8_t many[65 * 4];
    for (int i = 0; i < 65; i++) {
        veil_put_u16(many + 4 * i, (uint16_t)(0x100 + i));
        veil_put_u16(many + 4 * i + 2, 0);
    }
    r.ext = many;
    r.ext_len = 64 * 4;
    assert_int_equal(decode_raw_ch(&r, &d), 0);
    assert_int_equal(d.ext_len, 64 * 4);
    r.ext_len = 65 * 4;
    assert_int_equal(decode_raw_ch(&r, &d), ILLEGAL_PARAMETER);

    /* ext_len larger than what follows; smaller, leaving a trailing byte. */
    r.ext = two_ext;
    r.ext_len = sizeof(two_ext);
    r.ext_len_delta = 1;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
    r.ext_len_delta = -1;
    assert_int_equal(decode_raw_ch(&r, &d), DECODE_ERROR);
}

/* ------------------------------------------------------------------------ */
/* ServerHello, ServerVerify, Finished, §4                                  */

static const uint8_t spki[44] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0x11, [43] = 0x99};
static const uint8_t rand_s[32] = {0x5E, [31] = 0x5F};

static void fill_server_hello(veil_server_hello *sh, const uint8_t *ext, uint16_t ext_len)
{
    memset(sh, 0, sizeof(*sh));
    sh->version = VEIL_VERSION_1;
    sh->mode = VEIL_MODE_ENCRYPTED;
    sh->suite = VEIL_SUITE_CHACHA20_POLY1305_SHA256;
    sh->group = VEIL_GROUP_X25519;
    sh->random = rand_s;
    sh->key_share = share_a;
    sh->key_share_len = sizeof(share_a);
    sh->identity = spki;
    sh->identity_len = sizeof(spki);
    sh->ext = ext;
    sh->ext_len = ext_len;
}

static void test_server_hello_roundtrip(void **st)
{
    (void)st;
    veil_server_hello sh, d;
    veil_buf b, b2;
    size_t body_len;
    veil_buf_init(&b);
    veil_buf_init(&b2);
    fill_server_hello(&sh, two_ext, sizeof(two_ext));
    sh.suite = 0xBEEF; /* the codec does not judge values */
    sh.group = 0x0A0B;
    assert_int_equal(veil_server_hello_encode(&sh, &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_SERVER_HELLO, &body_len);
    assert_int_equal(body_len, 1 + 1 + 2 + 2 + 32 + 2 + 32 + 2 + sizeof(spki) + 2 + sizeof(two_ext));
    assert_int_equal(veil_server_hello_decode(body, body_len, &d), 0);
    assert_int_equal(d.version, VEIL_VERSION_1);
    assert_int_equal(d.mode, VEIL_MODE_ENCRYPTED);
    assert_int_equal(d.suite, 0xBEEF);
    assert_int_equal(d.group, 0x0A0B);
    assert_memory_equal(d.random, rand_s, 32);
    assert_int_equal(d.key_share_len, sizeof(share_a));
    assert_memory_equal(d.key_share, share_a, sizeof(share_a));
    assert_int_equal(d.identity_len, sizeof(spki));
    assert_memory_equal(d.identity, spki, sizeof(spki));
    assert_int_equal(d.ext_len, sizeof(two_ext));
    assert_memory_equal(d.ext, two_ext, sizeof(two_ext));
    assert_int_equal(veil_server_hello_encode(&d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.base, b.base, b.len);
    veil_buf_free(&b);
    veil_buf_free(&b2);
}

static void test_server_hello_rejects(void **st)
{
    (void)st;
    veil_server_hello sh, d;
    veil_buf b;
    size_t body_len;
    uint8_t longer[512];

    veil_buf_init(&b);
    fill_server_hello(&sh, NULL, 0);
    assert_int_equal(veil_server_hello_encode(&sh, &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_SERVER_HELLO, &body_len);
    assert_int_equal(body_len, 120); /* PROTOCOL.md §4.3: X25519, Ed25519 identity, no extension */
    assert_int_equal(veil_server_hello_decode(body, body_len, &d), 0);
    for (size_t n = 0; n < body_len; n++)
        assert_int_equal(veil_server_hello_decode(body, n, &d), DECODE_ERROR);
    memcpy(longer, body, body_len);
    longer[body_len] = 0;
    assert_int_equal(veil_server_hello_decode(longer, body_len + 1, &d), DECODE_ERROR);
    veil_buf_free(&b);

    /* Extensions: the same rules as in the ClientHello. */
    const uint8_t dup[] = {0x00, 0x07, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00};
    const uint8_t overlong[] = {0x00, 0x07, 0x00, 0x09, 'a'};
    struct {
        const uint8_t *ext;
        uint16_t len;
        int want;
    } cases[] = {
        {two_ext, sizeof(two_ext), 0},
        {dup, sizeof(dup), ILLEGAL_PARAMETER},
        {overlong, sizeof(overlong), DECODE_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        veil_buf_init(&b);
        fill_server_hello(&sh, cases[i].ext, cases[i].len);
        assert_int_equal(veil_server_hello_encode(&sh, &b), 0);
        body = framed_body(&b, VEIL_HS_SERVER_HELLO, &body_len);
        assert_int_equal(veil_server_hello_decode(body, body_len, &d), cases[i].want);
        veil_buf_free(&b);
    }

    /* A length field pointing past the end (key share claims 0xFFFF bytes). */
    veil_buf_init(&b);
    fill_server_hello(&sh, NULL, 0);
    assert_int_equal(veil_server_hello_encode(&sh, &b), 0);
    body = framed_body(&b, VEIL_HS_SERVER_HELLO, &body_len);
    memcpy(longer, body, body_len);
    longer[38] = 0xFF; /* key_len at 1+1+2+2+32 */
    longer[39] = 0xFF;
    assert_int_equal(veil_server_hello_decode(longer, body_len, &d), DECODE_ERROR);
    veil_buf_free(&b);
}

static void test_server_verify_roundtrip(void **st)
{
    (void)st;
    uint8_t sig[64];
    veil_server_verify sv = {.scheme = VEIL_SIG_ED25519, .sig = sig, .sig_len = sizeof(sig)}, d;
    veil_buf b, b2;
    size_t body_len;
    for (int i = 0; i < 64; i++)
        sig[i] = (uint8_t)(0x80 + i);
    veil_buf_init(&b);
    veil_buf_init(&b2);
    assert_int_equal(veil_server_verify_encode(&sv, &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_SERVER_VERIFY, &body_len);
    assert_int_equal(body_len, 2 + 2 + 64);
    assert_int_equal(veil_server_verify_decode(body, body_len, &d), 0);
    assert_int_equal(d.scheme, VEIL_SIG_ED25519);
    assert_int_equal(d.sig_len, 64);
    assert_memory_equal(d.sig, sig, 64);
    assert_int_equal(veil_server_verify_encode(&d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.base, b.base, b.len);
    for (size_t n = 0; n < body_len; n++)
        assert_int_equal(veil_server_verify_decode(body, n, &d), DECODE_ERROR);
    uint8_t longer[2 + 2 + 64 + 1];
    memcpy(longer, body, body_len);
    longer[body_len] = 0;
    assert_int_equal(veil_server_verify_decode(longer, sizeof(longer), &d), DECODE_ERROR);
    veil_buf_free(&b);
    veil_buf_free(&b2);
}

static void test_finished_roundtrip(void **st)
{
    (void)st;
    uint8_t vd[VEIL_HASH_LEN], longer[VEIL_HASH_LEN + 1] = {0};
    const uint8_t *got = NULL;
    veil_buf b;
    size_t body_len;
    for (int i = 0; i < VEIL_HASH_LEN; i++)
        vd[i] = (uint8_t)(i * 7);
    veil_buf_init(&b);
    assert_int_equal(veil_finished_encode(vd, &b), 0);
    assert_int_equal(b.len, 4 + VEIL_HASH_LEN);
    const uint8_t *body = framed_body(&b, VEIL_HS_FINISHED, &body_len);
    assert_int_equal(veil_finished_decode(body, body_len, &got), 0);
    assert_ptr_equal(got, body);
    assert_memory_equal(got, vd, VEIL_HASH_LEN);
    assert_int_equal(veil_finished_decode(body, VEIL_HASH_LEN - 1, &got), DECODE_ERROR);
    assert_int_equal(veil_finished_decode(longer, sizeof(longer), &got), DECODE_ERROR);
    assert_int_equal(veil_finished_decode(body, 0, &got), DECODE_ERROR);
    veil_buf_free(&b);
}

/* ClientKeyExchange (RSA key transport): u16 len, ciphertext; never empty. */
static void test_client_key_exchange(void **st)
{
    (void)st;
    uint8_t ct[256], longer[2 + 256 + 1];
    const uint8_t *got = NULL;
    uint16_t got_len = 0;
    veil_buf b, b2;
    size_t body_len;
    for (int i = 0; i < 256; i++)
        ct[i] = (uint8_t)(255 - i);
    veil_buf_init(&b);
    veil_buf_init(&b2);
    assert_int_equal(veil_client_key_exchange_encode(ct, sizeof(ct), &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_CLIENT_KEY_EXCHANGE, &body_len);
    assert_int_equal(body_len, 2 + 256);
    assert_int_equal(body[0], 0x01);
    assert_int_equal(body[1], 0x00);
    assert_int_equal(veil_client_key_exchange_decode(body, body_len, &got, &got_len), 0);
    assert_int_equal(got_len, 256);
    assert_ptr_equal(got, body + 2);
    assert_int_equal(veil_client_key_exchange_encode(got, got_len, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.base, b.base, b.len);
    for (size_t n = 0; n < body_len; n++)
        assert_int_equal(veil_client_key_exchange_decode(body, n, &got, &got_len), DECODE_ERROR);
    memcpy(longer, body, body_len);
    longer[body_len] = 0;
    assert_int_equal(veil_client_key_exchange_decode(longer, body_len + 1, &got, &got_len), DECODE_ERROR);
    const uint8_t empty[2] = {0, 0};
    assert_int_equal(veil_client_key_exchange_decode(empty, sizeof(empty), &got, &got_len), DECODE_ERROR);
    /* The encoder refuses what a u16 cannot carry. */
    static uint8_t huge[0x10000];
    assert_int_equal(veil_client_key_exchange_encode(huge, sizeof(huge), &b2), VEIL_ERR_INVALID_ARG);
    veil_buf_free(&b);
    veil_buf_free(&b2);
}

/* ClientVerify: u16 spki_len, spki | u16 scheme | u16 sig_len, sig. */
static void test_client_verify(void **st)
{
    (void)st;
    uint8_t sig[64], longer[256];
    veil_client_verify cv = {.spki = spki, .spki_len = sizeof(spki), .scheme = VEIL_SIG_ED25519, .sig = sig,
                             .sig_len = sizeof(sig)},
                       d;
    veil_buf b, b2;
    size_t body_len;
    for (int i = 0; i < 64; i++)
        sig[i] = (uint8_t)(3 * i);
    veil_buf_init(&b);
    veil_buf_init(&b2);
    assert_int_equal(veil_client_verify_encode(&cv, &b), 0);
    const uint8_t *body = framed_body(&b, VEIL_HS_CLIENT_VERIFY, &body_len);
    assert_int_equal(body_len, 2 + sizeof(spki) + 2 + 2 + 64);
    assert_int_equal(veil_client_verify_decode(body, body_len, &d), 0);
    assert_int_equal(d.spki_len, sizeof(spki));
    assert_memory_equal(d.spki, spki, sizeof(spki));
    assert_int_equal(d.scheme, VEIL_SIG_ED25519);
    assert_int_equal(d.sig_len, 64);
    assert_memory_equal(d.sig, sig, 64);
    assert_int_equal(veil_client_verify_encode(&d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.base, b.base, b.len);
    for (size_t n = 0; n < body_len; n++)
        assert_int_equal(veil_client_verify_decode(body, n, &d), DECODE_ERROR);
    assert_true(body_len + 1 <= sizeof(longer));
    memcpy(longer, body, body_len);
    longer[body_len] = 0;
    assert_int_equal(veil_client_verify_decode(longer, body_len + 1, &d), DECODE_ERROR);
    veil_buf_free(&b);
    veil_buf_free(&b2);
}

static void test_ext_find(void **st)
{
    (void)st;
    const uint8_t *data = NULL;
    uint16_t len = 0;
    /* two_ext: 0x1234 "abc", 0xFFFF empty */
    assert_true(veil_ext_find(two_ext, sizeof(two_ext), 0x1234, &data, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    assert_true(veil_ext_find(two_ext, sizeof(two_ext), 0xFFFF, &data, &len));
    assert_int_equal(len, 0);
    assert_ptr_equal(data, two_ext + sizeof(two_ext));
    assert_false(veil_ext_find(two_ext, sizeof(two_ext), 0x0001, &data, &len));
    assert_false(veil_ext_find(NULL, 0, 0x1234, &data, &len));
    /* An entry running past the block is not found, nor anything after it. */
    const uint8_t bad[] = {0x00, 0x01, 0x00, 0x09, 'a', 0x00, 0x02, 0x00, 0x00};
    assert_false(veil_ext_find(bad, sizeof(bad), 0x0001, &data, &len));
    assert_false(veil_ext_find(bad, sizeof(bad), 0x0002, &data, &len));
    /* Cut inside an entry's data. */
    assert_false(veil_ext_find(two_ext, 5, 0x1234, &data, &len));
}

/* ------------------------------------------------------------------------ */
/* Application messages §7, alerts §8                                       */

static void test_message_decode(void **st)
{
    (void)st;
    const uint8_t msg[] = {VEIL_MSG_TEXT, 0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, 'h', 'i'};
    uint8_t kind = 0;
    uint64_t ts = 0;
    const uint8_t *data = NULL;
    size_t len = 99;

    assert_int_equal(veil_message_decode(msg, sizeof(msg), &kind, &ts, &data, &len), 0);
    assert_int_equal(kind, VEIL_MSG_TEXT);
    assert_true(ts == 1700000000000u);
    assert_ptr_equal(data, msg + 9);
    assert_int_equal(len, 2);

    /* 9 bytes: an empty payload. */
    assert_int_equal(veil_message_decode(msg, 9, &kind, &ts, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_true(ts == 1700000000000u);

    /* Shorter than kind + timestamp. */
    for (size_t n = 0; n < 9; n++)
        assert_int_equal(veil_message_decode(msg, n, &kind, &ts, &data, &len), DECODE_ERROR);

    /* The kind is not judged by the codec (the application decides). */
    const uint8_t other[9] = {0x77};
    assert_int_equal(veil_message_decode(other, sizeof(other), &kind, &ts, &data, &len), 0);
    assert_int_equal(kind, 0x77);
}

static const int alert_codes[] = {
    VEIL_ALERT_CLOSE_NOTIFY,      VEIL_ALERT_UNEXPECTED_MESSAGE, VEIL_ALERT_BAD_RECORD_MAC,
    VEIL_ALERT_BAD_CHECKSUM,      VEIL_ALERT_RECORD_OVERFLOW,    VEIL_ALERT_HANDSHAKE_FAILURE,
    VEIL_ALERT_UNTRUSTED_IDENTITY, VEIL_ALERT_ILLEGAL_PARAMETER, VEIL_ALERT_DECODE_ERROR,
    VEIL_ALERT_DECRYPT_ERROR,     VEIL_ALERT_PROTOCOL_VERSION,   VEIL_ALERT_PLAINTEXT_REFUSED,
    VEIL_ALERT_BAD_SEQUENCE,      VEIL_ALERT_UNKNOWN_SERVICE,    VEIL_ALERT_AUTH_FAILED,
    VEIL_ALERT_INTERNAL_ERROR,    VEIL_ALERT_TIMEOUT,            VEIL_ALERT_SERVER_BUSY,
};
#define N_ALERTS (sizeof(alert_codes) / sizeof(alert_codes[0]))

static void test_alert_decode(void **st)
{
    (void)st;
    uint8_t level, code;
    uint8_t a[3];

    /* close_notify is the only warning. */
    a[0] = VEIL_ALERT_LEVEL_WARNING;
    a[1] = VEIL_ALERT_CLOSE_NOTIFY;
    assert_int_equal(veil_alert_decode(a, 2, &level, &code), 0);
    assert_int_equal(level, VEIL_ALERT_LEVEL_WARNING);
    assert_int_equal(code, VEIL_ALERT_CLOSE_NOTIFY);
    a[0] = VEIL_ALERT_LEVEL_FATAL;
    assert_int_equal(veil_alert_decode(a, 2, &level, &code), ILLEGAL_PARAMETER);

    /* Every other code must be fatal, defined or not. */
    for (int c = 1; c < 256; c++) {
        a[1] = (uint8_t)c;
        a[0] = VEIL_ALERT_LEVEL_FATAL;
        assert_int_equal(veil_alert_decode(a, 2, &level, &code), 0);
        assert_int_equal(code, c);
        assert_int_equal(level, VEIL_ALERT_LEVEL_FATAL);
        a[0] = VEIL_ALERT_LEVEL_WARNING;
        assert_int_equal(veil_alert_decode(a, 2, &level, &code), ILLEGAL_PARAMETER);
    }

    /* Levels other than 1 and 2. */
    const uint8_t bad_levels[] = {0, 3, 0xFF};
    for (size_t i = 0; i < sizeof(bad_levels); i++) {
        a[0] = bad_levels[i];
        a[1] = VEIL_ALERT_DECODE_ERROR;
        assert_int_equal(veil_alert_decode(a, 2, &level, &code), ILLEGAL_PARAMETER);
        a[1] = VEIL_ALERT_CLOSE_NOTIFY;
        assert_int_equal(veil_alert_decode(a, 2, &level, &code), ILLEGAL_PARAMETER);
    }

    /* Exactly two bytes. */
    a[0] = VEIL_ALERT_LEVEL_FATAL;
    a[1] = VEIL_ALERT_DECODE_ERROR;
    a[2] = 0;
    assert_int_equal(veil_alert_decode(a, 0, &level, &code), DECODE_ERROR);
    assert_int_equal(veil_alert_decode(a, 1, &level, &code), DECODE_ERROR);
    assert_int_equal(veil_alert_decode(a, 3, &level, &code), DECODE_ERROR);
}

/* ------------------------------------------------------------------------ */
/* Names and error texts (errors.c)                                         */

static void test_alert_names(void **st)
{
    (void)st;
    static const char *const names[] = {
        "close_notify",      "unexpected_message", "bad_record_mac",   "bad_checksum",
        "record_overflow",   "handshake_failure",  "untrusted_identity", "illegal_parameter",
        "decode_error",      "decrypt_error",      "protocol_version", "plaintext_refused",
        "bad_sequence",      "unknown_service",    "auth_failed",      "internal_error",
        "timeout",           "server_busy",
    };
    for (size_t i = 0; i < N_ALERTS; i++)
        assert_string_equal(veil_alert_name(alert_codes[i]), names[i]);
    /* Every code in 0..255 not listed is unknown. */
    for (int c = -1; c < 256; c++) {
        bool defined = false;
        for (size_t i = 0; i < N_ALERTS; i++)
            defined = defined || alert_codes[i] == c;
        if (!defined)
            assert_string_equal(veil_alert_name(c), "unknown");
    }
    assert_string_equal(veil_alert_name(256), "unknown");
}

static void test_other_names(void **st)
{
    (void)st;
    assert_string_equal(veil_suite_name(VEIL_SUITE_AES_256_GCM_SHA256), "AES_256_GCM_SHA256");
    assert_string_equal(veil_suite_name(VEIL_SUITE_CHACHA20_POLY1305_SHA256), "CHACHA20_POLY1305_SHA256");
    assert_string_equal(veil_suite_name(VEIL_SUITE_AES_256_CBC_HMAC_SHA256), "AES_256_CBC_HMAC_SHA256");
    assert_string_not_equal(veil_suite_name(VEIL_SUITE_NULL), "unknown");
    assert_string_equal(veil_suite_name(4), "unknown");
    assert_string_equal(veil_suite_name(0xFFFF), "unknown");

    /* Groups and signature schemes: every u16 outside the defined ones is unknown. */
    for (uint32_t v = 0; v <= 0xFFFF; v++) {
        bool group = v == VEIL_GROUP_X25519 || v == VEIL_GROUP_FFDHE2048 || v == VEIL_GROUP_RSA_TRANSPORT;
        bool sig = v == VEIL_SIG_ED25519 || v == VEIL_SIG_RSA_PSS_SHA256;
        assert_int_equal(strcmp(veil_group_name((uint16_t)v), "unknown") != 0, group);
        assert_int_equal(strcmp(veil_sig_name((uint16_t)v), "unknown") != 0, sig);
    }
    assert_string_equal(veil_group_name(VEIL_GROUP_X25519), "X25519");
    assert_string_equal(veil_group_name(VEIL_GROUP_FFDHE2048), "FFDHE2048");
    assert_string_equal(veil_group_name(VEIL_GROUP_RSA_TRANSPORT), "RSA_TRANSPORT");
    assert_string_equal(veil_sig_name(VEIL_SIG_ED25519), "Ed25519");
    assert_string_equal(veil_sig_name(VEIL_SIG_RSA_PSS_SHA256), "RSA_PSS_SHA256");

    for (int t = 0; t < 256; t++) {
        bool rec = t >= VEIL_REC_HANDSHAKE && t <= VEIL_REC_KEY_UPDATE;
        bool hs = t >= VEIL_HS_CLIENT_HELLO && t <= VEIL_HS_CLIENT_VERIFY;
        bool kind = t == VEIL_MSG_TEXT || t == VEIL_MSG_ACK;
        assert_int_equal(strcmp(veil_record_type_name((uint8_t)t), "unknown") != 0, rec);
        assert_int_equal(strcmp(veil_hs_type_name((uint8_t)t), "unknown") != 0, hs);
        assert_int_equal(strcmp(veil_msg_kind_name((uint8_t)t), "unknown") != 0, kind);
    }
    /* Handshake message names are all different. */
    for (int a = VEIL_HS_CLIENT_HELLO; a <= VEIL_HS_CLIENT_VERIFY; a++)
        for (int b = VEIL_HS_CLIENT_HELLO; b < a; b++)
            assert_string_not_equal(veil_hs_type_name((uint8_t)a), veil_hs_type_name((uint8_t)b));
    assert_string_equal(veil_record_type_name(VEIL_REC_KEY_UPDATE), "key_update");
    assert_string_equal(veil_hs_type_name(VEIL_HS_CLIENT_HELLO), "ClientHello");
    assert_string_equal(veil_msg_kind_name(VEIL_MSG_ACK), "ack");

    /* Body status names: each defined one distinct and known. */
    const char *seen[VEIL_BODY_MALFORMED + 1];
    for (int s = VEIL_BODY_PLAINTEXT; s <= VEIL_BODY_MALFORMED; s++) {
        seen[s] = veil_body_status_name((veil_body_status)s);
        assert_string_not_equal(seen[s], "unknown");
        for (int k = 0; k < s; k++)
            assert_string_not_equal(seen[k], seen[s]);
    }
    assert_string_equal(veil_body_status_name((veil_body_status)(VEIL_BODY_MALFORMED + 1)), "unknown");
}

static void test_suite_from_name(void **st)
{
    (void)st;
    static const struct {
        const char *name;
        uint16_t suite;
    } ok[] = {
        {"AES_256_GCM_SHA256", VEIL_SUITE_AES_256_GCM_SHA256},
        {"aes_256_gcm_sha256", VEIL_SUITE_AES_256_GCM_SHA256},
        {"aes-256-gcm", VEIL_SUITE_AES_256_GCM_SHA256},
        {"AES-256-GCM", VEIL_SUITE_AES_256_GCM_SHA256},
        {"CHACHA20_POLY1305_SHA256", VEIL_SUITE_CHACHA20_POLY1305_SHA256},
        {"chacha20-poly1305", VEIL_SUITE_CHACHA20_POLY1305_SHA256},
        {"ChaCha20-Poly1305", VEIL_SUITE_CHACHA20_POLY1305_SHA256},
        {"AES_256_CBC_HMAC_SHA256", VEIL_SUITE_AES_256_CBC_HMAC_SHA256},
        {"aes-256-cbc-hmac-sha256", VEIL_SUITE_AES_256_CBC_HMAC_SHA256},
        {"Aes-256-Cbc-Hmac-Sha256", VEIL_SUITE_AES_256_CBC_HMAC_SHA256},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint16_t s = 0xFFFF;
        assert_int_equal(veil_suite_from_name(ok[i].name, &s), 0);
        assert_int_equal(s, ok[i].suite);
        /* and the canonical name maps back */
        assert_int_equal(veil_suite_from_name(veil_suite_name(s), &s), 0);
        assert_int_equal(s, ok[i].suite);
    }
    static const char *const bad[] = {
        "null", "NULL", "", "aes", "aes-256-gcm ", " aes-256-gcm", "aes-256-gcm-sha256x", "aes_256_gcm",
        "AES_256_GCM_SHA25", "chacha20", "unknown", "\xff\xfe",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint16_t s = 0x7777;
        assert_int_equal(veil_suite_from_name(bad[i], &s), VEIL_ERR_INVALID_ARG);
        assert_int_equal(s, 0x7777); /* untouched */
    }
}

static void test_group_from_name(void **st)
{
    (void)st;
    static const struct {
        const char *name;
        uint16_t group;
    } ok[] = {
        {"X25519", VEIL_GROUP_X25519},        {"x25519", VEIL_GROUP_X25519},
        {"FFDHE2048", VEIL_GROUP_FFDHE2048},  {"ffdhe-2048", VEIL_GROUP_FFDHE2048},
        {"FFDHE-2048", VEIL_GROUP_FFDHE2048}, {"RSA_TRANSPORT", VEIL_GROUP_RSA_TRANSPORT},
        {"rsa", VEIL_GROUP_RSA_TRANSPORT},    {"RSA", VEIL_GROUP_RSA_TRANSPORT},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint16_t g = 0xFFFF;
        assert_int_equal(veil_group_from_name(ok[i].name, &g), 0);
        assert_int_equal(g, ok[i].group);
        assert_int_equal(veil_group_from_name(veil_group_name(g), &g), 0);
        assert_int_equal(g, ok[i].group);
    }
    static const char *const bad[] = {"", "x", "x448", "ffdhe", "ffdhe2048 ", "rsa-2048", "unknown", "X25519X"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint16_t g = 0x7777;
        assert_int_equal(veil_group_from_name(bad[i], &g), VEIL_ERR_INVALID_ARG);
        assert_int_equal(g, 0x7777);
    }
}

static void test_strerror(void **st)
{
    (void)st;
    char texts[N_ALERTS][256];

    assert_string_equal(veil_strerror(0), "success");

    /* Alert sent: a description per alert, all different, none "unknown". */
    const char *unknown_alert = veil_strerror(-99);
    for (size_t i = 1; i < N_ALERTS; i++) { /* close_notify is never an error sent */
        const char *t = veil_strerror(-alert_codes[i]);
        assert_non_null(t);
        assert_true(strlen(t) > 0);
        assert_string_not_equal(t, unknown_alert);
        snprintf(texts[i], sizeof(texts[i]), "%s", t);
        for (size_t k = 1; k < i; k++)
            assert_string_not_equal(texts[k], texts[i]);
    }
    assert_non_null(strstr(unknown_alert, "unknown"));
    assert_string_equal(veil_strerror(VEIL_ERR_ALERT_MIN), unknown_alert);

    /* Peer alert: names the alert it received. */
    for (size_t i = 0; i < N_ALERTS; i++) {
        const char *t = veil_strerror(VEIL_ERR_PEER_ALERT(alert_codes[i]));
        assert_non_null(strstr(t, veil_alert_name(alert_codes[i])));
        assert_non_null(strstr(t, "peer"));
    }
    assert_non_null(strstr(veil_strerror(VEIL_ERR_PEER_ALERT(200)), "unknown"));
    assert_int_equal(VEIL_ERR_PEER_ALERT(255), VEIL_ERR_PEER_ALERT_MIN);

    /* Local errors: each its own text. */
    static const int local[] = {
        VEIL_ERR_NOMEM, VEIL_ERR_INVALID_ARG, VEIL_ERR_NEED_MORE, VEIL_ERR_STATE,   VEIL_ERR_TOO_LARGE,
        VEIL_ERR_CRYPTO, VEIL_ERR_RNG,        VEIL_ERR_KEY_FORMAT, VEIL_ERR_CLOSED, VEIL_ERR_NO_KEY,
        VEIL_ERR_UNSUPPORTED,
    };
    const char *unknown_err = veil_strerror(-1500);
    assert_string_equal(unknown_err, "unknown error");
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        const char *t = veil_strerror(local[i]);
        assert_string_not_equal(t, unknown_err);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(veil_strerror(local[k]), t);
        for (size_t k = 1; k < N_ALERTS; k++)
            assert_string_not_equal(texts[k], t);
    }
    /* Outside every range. */
    assert_string_equal(veil_strerror(-600), "unknown error");
    assert_string_equal(veil_strerror(-1000), "unknown error");
    assert_string_equal(veil_strerror(1), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_hs_split),
        cmocka_unit_test(test_client_hello_roundtrip),
        cmocka_unit_test(test_client_hello_truncated),
        cmocka_unit_test(test_client_hello_truncated_multi_share),
        cmocka_unit_test(test_client_hello_counts),
        cmocka_unit_test(test_client_hello_mode),
        cmocka_unit_test(test_client_hello_extensions),
        cmocka_unit_test(test_server_hello_roundtrip),
        cmocka_unit_test(test_server_hello_rejects),
        cmocka_unit_test(test_server_verify_roundtrip),
        cmocka_unit_test(test_finished_roundtrip),
        cmocka_unit_test(test_client_key_exchange),
        cmocka_unit_test(test_client_verify),
        cmocka_unit_test(test_ext_find),
        cmocka_unit_test(test_message_decode),
        cmocka_unit_test(test_alert_decode),
        cmocka_unit_test(test_alert_names),
        cmocka_unit_test(test_other_names),
        cmocka_unit_test(test_suite_from_name),
        cmocka_unit_test(test_group_from_name),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, free_raw_buf);
}
