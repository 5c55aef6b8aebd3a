/*
 * test_record.c - the record layer (PROTOCOL.md §2, §6): protection per suite,
 * the body layout each suite puts on the wire, checked against an independent
 * implementation with OpenSSL, and every way a record can be damaged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "harness.h"
#include "veil_internal.h"

#define BAD_RECORD_MAC VEIL_PERR(VEIL_ALERT_BAD_RECORD_MAC)
#define UNEXPECTED VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE)
#define DECODE_ERROR VEIL_PERR(VEIL_ALERT_DECODE_ERROR)
#define BAD_CHECKSUM VEIL_PERR(VEIL_ALERT_BAD_CHECKSUM)

static const uint16_t suites[] = {VEIL_SUITE_AES_256_GCM_SHA256, VEIL_SUITE_CHACHA20_POLY1305_SHA256,
                                  VEIL_SUITE_AES_256_CBC_HMAC_SHA256};
#define N_SUITES (sizeof(suites) / sizeof(suites[0]))
static const size_t lengths[] = {0, 1, 15, 16, 17, 1000, VEIL_MAX_CONTENT};

static uint8_t secret_a[VEIL_SECRET_LEN], secret_b[VEIL_SECRET_LEN];
static uint8_t content_in[VEIL_MAX_CONTENT + 1];
static uint8_t opened[VEIL_MAX_BODY];
/* Large enough for any header's length field: a tampered length never reads out of bounds. */
static uint8_t scratch[VEIL_HEADER_LEN + 0xFFFF];

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static int setup(void **st)
{
    (void)st;
    fill(secret_a, sizeof(secret_a), 1);
    fill(secret_b, sizeof(secret_b), 2);
    fill(content_in, sizeof(content_in), 3);
    return 0;
}

static void keyed(veil_dir *tx, veil_dir *rx, uint16_t suite)
{
    memset(tx, 0, sizeof(*tx));
    memset(rx, 0, sizeof(*rx));
    assert_int_equal(veil_dir_set_key(tx, suite, 1, secret_a), 0);
    assert_int_equal(veil_dir_set_key(rx, suite, 0, secret_a), 0);
}

/*
 * What a receiver says about len bytes of wire: the header decoder's verdict,
 * else veil_record_open's.  The record is copied into a zeroed buffer large
 * enough for whatever length field the header now has.
 */
static int receive(veil_dir *rx, const uint8_t *rec, size_t len, size_t *content_len)
{
    veil_header h;
    memset(scratch, 0, sizeof(scratch));
    memcpy(scratch, rec, len);
    int ret = veil_header_decode(scratch, len, &h);
    if (ret != 0)
        return ret;
    *content_len = SIZE_MAX;
    return veil_record_open(rx, &h, scratch, opened, content_len);
}

static size_t cbc_body_len(size_t len) { return 16 + 16 * (len / 16 + 1) + 32; }

/* ------------------------------------------------------------------------ */

static void test_roundtrip(void **st)
{
    (void)st;
    for (size_t s = 0; s < N_SUITES; s++) {
        veil_dir tx, rx;
        test_rng rng;
        veil_buf out;
        keyed(&tx, &rx, suites[s]);
        test_rng_init(&rng, "iv");
        veil_buf_init(&out);
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
            size_t len = lengths[i], got = 0;
            veil_header h;
            out.len = 0;
            assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, len, test_rng_cb, &rng, &out), 0);
            assert_true(tx.seq == i + 1);
            assert_int_equal(veil_header_decode(out.base, out.len, &h), 0);
            assert_int_equal(h.type, VEIL_REC_APPDATA);
            assert_int_equal(h.flags, VEIL_FLAG_ENCRYPTED);
            assert_int_equal(h.epoch, 0);
            assert_true(h.seq == i);
            size_t want_body = veil_suite_is_cbc(suites[s]) ? cbc_body_len(len) : len + 16;
            assert_int_equal(h.length, want_body);
            assert_int_equal(out.len, VEIL_HEADER_LEN + want_body);
            assert_true(want_body <= VEIL_MAX_BODY);
            if (len >= 16) /* not sent in clear */
                assert_memory_not_equal(out.base + VEIL_HEADER_LEN + (veil_suite_is_cbc(suites[s]) ? 16 : 0),
                                        content_in, 16);
            assert_int_equal(veil_record_open(&rx, &h, out.base, opened, &got), 0);
            assert_int_equal(got, len);
            assert_memory_equal(opened, content_in, len);
            assert_true(rx.seq == 0); /* open neither checks nor advances the sequence */
            assert_true(rx.records_on_key == i + 1);
        }
        assert_true(tx.records_on_key == sizeof(lengths) / sizeof(lengths[0]));
        assert_true(tx.bytes_on_key == 0 + 1 + 15 + 16 + 17 + 1000 + VEIL_MAX_CONTENT);
        assert_true(rx.bytes_on_key == tx.bytes_on_key);
        veil_buf_free(&out);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
    }
}

/*
 * veil_record_write2 seals pre || content without joining them: its record
 * must be byte for byte the one veil_record_write makes of the joined
 * content (same key, sequence and CBC IV), for every suite and plaintext, at
 * lengths around the 128-byte first piece and the CBC block size; and the
 * in-place open must give what the copying open gives.
 */
static void test_two_piece_write(void **st)
{
    (void)st;
    static const size_t pre_lens[] = {0, 1, 9, 127, 128, 200};
    static const size_t lens[] = {0, 1, 6, 7, 110, 118, 119, 120, 1000, VEIL_MAX_CONTENT - 200};
    static uint8_t joined[VEIL_MAX_CONTENT];
    for (size_t s = 0; s <= N_SUITES; s++) {
        bool plain = s == N_SUITES;
        veil_dir tx1, rx1, tx2, rx2;
        test_rng rng1, rng2;
        veil_buf a, b;
        if (plain) {
            memset(&tx1, 0, sizeof(tx1));
            memset(&rx1, 0, sizeof(rx1));
            memset(&tx2, 0, sizeof(tx2));
            memset(&rx2, 0, sizeof(rx2));
        } else {
            keyed(&tx1, &rx1, suites[s]);
            keyed(&tx2, &rx2, suites[s]);
        }
        test_rng_init(&rng1, "iv");
        test_rng_init(&rng2, "iv");
        veil_buf_init(&a);
        veil_buf_init(&b);
        for (size_t i = 0; i < sizeof(pre_lens) / sizeof(pre_lens[0]); i++) {
            for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
                size_t pre_len = pre_lens[i], len = lens[j], got = 0;
                const uint8_t *pre = content_in + 3000, *data = content_in + 7;
                uint8_t *inplace = NULL;
                veil_header h;
                memcpy(joined, pre, pre_len);
                memcpy(joined + pre_len, data, len);
                a.len = b.len = 0;
                assert_int_equal(veil_record_write(&tx1, VEIL_REC_APPDATA, joined, pre_len + len, test_rng_cb,
                                                   &rng1, &a),
                                 0);
                assert_int_equal(veil_record_write2(&tx2, VEIL_REC_APPDATA, pre_len != 0 ? pre : NULL, pre_len,
                                                    data, len, test_rng_cb, &rng2, &b),
                                 0);
                assert_int_equal(a.len, b.len);
                assert_memory_equal(a.base, b.base, a.len);
                assert_int_equal(veil_header_decode(a.base, a.len, &h), 0);
                assert_int_equal(veil_record_open(&rx1, &h, a.base, opened, &got), 0);
                assert_int_equal(got, pre_len + len);
                assert_memory_equal(opened, joined, got);
                got = 0;
                assert_int_equal(veil_record_open_inplace(&rx2, &h, b.base, &inplace, &got), 0);
                assert_int_equal(got, pre_len + len);
                assert_true(inplace >= b.base + VEIL_HEADER_LEN && inplace + got <= b.base + b.len);
                assert_memory_equal(inplace, joined, got);
            }
        }
        /* The prefix and the content together may not exceed one record. */
        assert_int_equal(veil_record_write2(&tx2, VEIL_REC_APPDATA, content_in, 9, content_in, VEIL_MAX_CONTENT - 8,
                                            test_rng_cb, &rng2, &b),
                         VEIL_ERR_TOO_LARGE);
        veil_buf_free(&a);
        veil_buf_free(&b);
        veil_dir_clear(&tx1);
        veil_dir_clear(&rx1);
        veil_dir_clear(&tx2);
        veil_dir_clear(&rx2);
    }
}

/* The in-place open refuses what the copying open refuses: a flipped bit
 * anywhere in an encrypted record is bad_record_mac, in a plaintext one a bad
 * checksum. */
static void test_inplace_tampered(void **st)
{
    (void)st;
    for (size_t s = 0; s <= N_SUITES; s++) {
        bool plain = s == N_SUITES;
        veil_dir tx, rx;
        test_rng rng;
        veil_buf out;
        if (plain) {
            memset(&tx, 0, sizeof(tx));
            memset(&rx, 0, sizeof(rx));
        } else {
            keyed(&tx, &rx, suites[s]);
        }
        test_rng_init(&rng, "iv");
        veil_buf_init(&out);
        assert_int_equal(
            veil_record_write2(&tx, VEIL_REC_APPDATA, content_in, 9, content_in + 9, 300, test_rng_cb, &rng, &out), 0);
        static const size_t offsets[] = {VEIL_HEADER_LEN, VEIL_HEADER_LEN + 20, VEIL_HEADER_LEN + 200};
        for (size_t k = 0; k < 3; k++) {
            static uint8_t rec[VEIL_MAX_RECORD];
            uint8_t *content = NULL;
            size_t got = 0;
            veil_header h;
            memcpy(rec, out.base, out.len);
            rec[offsets[k]] ^= 0x40;
            rec[out.len - 1] ^= (uint8_t)(k == 2); /* and once the tag/MAC/CRC too */
            assert_int_equal(veil_header_decode(rec, out.len, &h), 0);
            assert_int_equal(veil_record_open_inplace(&rx, &h, rec, &content, &got),
                             plain ? BAD_CHECKSUM : BAD_RECORD_MAC);
        }
        veil_buf_free(&out);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
    }
}

/* Unencrypted records: content || CRC-32C(header || content), big-endian. */
static void test_unencrypted(void **st)
{
    (void)st;
    veil_dir tx, rx;
    veil_buf out;
    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    veil_buf_init(&out);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t len = lengths[i], got = 0;
        veil_header h;
        out.len = 0;
        /* No RNG needed without a key. */
        assert_int_equal(veil_record_write(&tx, VEIL_REC_HANDSHAKE, content_in, len, NULL, NULL, &out), 0);
        assert_int_equal(veil_header_decode(out.base, out.len, &h), 0);
        assert_int_equal(h.flags, 0);
        assert_int_equal(h.epoch, 0);
        assert_int_equal(h.length, len + 4);
        assert_true(h.seq == i);
        assert_memory_equal(out.base + VEIL_HEADER_LEN, content_in, len);
        uint32_t crc = veil_crc32c(veil_crc32c(0, out.base, VEIL_HEADER_LEN), content_in, len);
        assert_int_equal(veil_get_u32(out.base + VEIL_HEADER_LEN + len), crc);
        assert_int_equal(veil_record_open(&rx, &h, out.base, opened, &got), 0);
        assert_int_equal(got, len);
        assert_memory_equal(opened, content_in, len);
        got = 0;
        assert_int_equal(veil_record_check_crc(&h, out.base, &got), 0);
        assert_int_equal(got, len);

        /* The CRC covers the header too: a changed sequence number is caught. */
        out.base[15] ^= 0x01;
        assert_int_equal(veil_header_decode(out.base, out.len, &h), 0);
        assert_int_equal(veil_record_open(&rx, &h, out.base, opened, &got), BAD_CHECKSUM);
        /* The CRC bytes themselves. */
        out.base[15] ^= 0x01;
        out.base[out.len - 1] ^= 0x80;
        assert_int_equal(veil_header_decode(out.base, out.len, &h), 0);
        assert_int_equal(veil_record_open(&rx, &h, out.base, opened, &got), BAD_CHECKSUM);
    }
    veil_buf_free(&out);

    /* The example of PROTOCOL.md §2.7: a close_notify with seq 3, plaintext mode. */
    static const uint8_t example[] = {0x56, 0x4c, 0x01, 0x02, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x41, 0xce, 0xc6, 0x40};
    const uint8_t close_notify[2] = {VEIL_ALERT_LEVEL_WARNING, VEIL_ALERT_CLOSE_NOTIFY};
    memset(&tx, 0, sizeof(tx));
    tx.seq = 3;
    veil_buf_init(&out);
    assert_int_equal(veil_record_write(&tx, VEIL_REC_ALERT, close_notify, 2, NULL, NULL, &out), 0);
    assert_int_equal(out.len, sizeof(example));
    assert_memory_equal(out.base, example, sizeof(example));
    veil_buf_free(&out);
}

/* Every byte of a short record, flipped: the exact alert for each position. */
static void tamper_every_byte(uint16_t suite, size_t content_len)
{
    veil_dir tx, rx;
    test_rng rng;
    veil_buf out;
    size_t got;
    test_rng_init(&rng, "tamper");
    veil_buf_init(&out);
    if (suite != VEIL_SUITE_NULL) {
        keyed(&tx, &rx, suite);
    } else {
        memset(&tx, 0, sizeof(tx));
        memset(&rx, 0, sizeof(rx));
    }
    tx.seq = 0x0102; /* not zero: the sequence bytes matter */
    assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, content_len, test_rng_cb, &rng, &out), 0);
    assert_int_equal(receive(&rx, out.base, out.len, &got), 0);
    assert_int_equal(got, content_len);

    const bool enc = suite != VEIL_SUITE_NULL;
    const int body_fail = enc ? BAD_RECORD_MAC : BAD_CHECKSUM;
    for (size_t pos = 0; pos < out.len; pos++) {
        int want;
        switch (pos) {
        case 0: /* magic */
        case 1:
            want = DECODE_ERROR;
            break;
        case 2: /* version 1 -> 0 */
            want = VEIL_PERR(VEIL_ALERT_PROTOCOL_VERSION);
            break;
        case 3: /* type appdata -> alert: authenticated (AAD / MAC / CRC) */
            want = body_fail;
            break;
        case 4: /* encrypted flag flipped: stripping or adding encryption */
            want = UNEXPECTED;
            break;
        case 5: /* epoch 0 -> 1: another key (encrypted); illegal when unencrypted */
            want = enc ? UNEXPECTED : DECODE_ERROR;
            break;
        default: /* length, sequence number, body, tag/MAC/CRC */
            want = body_fail;
            break;
        }
        out.base[pos] ^= 0x01;
        int ret = receive(&rx, out.base, out.len, &got);
        if (ret != want)
            print_error("suite %s, byte %zu of %zu: got %d, want %d\n", veil_suite_name(suite), pos, out.len, ret,
                        want);
        assert_int_equal(ret, want);
        out.base[pos] ^= 0x01;
    }
    /* The receiver is unharmed by all those failures. */
    assert_int_equal(receive(&rx, out.base, out.len, &got), 0);
    assert_int_equal(got, content_len);
    assert_memory_equal(opened, content_in, content_len);
    veil_buf_free(&out);
    veil_dir_clear(&tx);
    veil_dir_clear(&rx);
}

static void test_tamper_every_byte(void **st)
{
    (void)st;
    for (size_t s = 0; s < N_SUITES; s++) {
        tamper_every_byte(suites[s], 5);
        tamper_every_byte(suites[s], 16);
    }
    tamper_every_byte(VEIL_SUITE_NULL, 5);
}

static void test_wrong_key(void **st)
{
    (void)st;
    for (size_t s = 0; s < N_SUITES; s++) {
        veil_dir tx, rx;
        test_rng rng;
        veil_buf out;
        size_t got;
        test_rng_init(&rng, "wrong");
        veil_buf_init(&out);
        keyed(&tx, &rx, suites[s]);
        assert_int_equal(veil_dir_set_key(&rx, suites[s], 0, secret_b), 0);
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 100, test_rng_cb, &rng, &out), 0);
        assert_int_equal(receive(&rx, out.base, out.len, &got), BAD_RECORD_MAC);
        /* Right secret, another suite. */
        for (size_t o = 0; o < N_SUITES; o++) {
            if (o == s)
                continue;
            assert_int_equal(veil_dir_set_key(&rx, suites[o], 0, secret_a), 0);
            assert_int_equal(receive(&rx, out.base, out.len, &got), BAD_RECORD_MAC);
        }
        /* Right key: fine. */
        assert_int_equal(veil_dir_set_key(&rx, suites[s], 0, secret_a), 0);
        assert_int_equal(receive(&rx, out.base, out.len, &got), 0);
        veil_buf_free(&out);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
    }
}

/* Encrypted bodies of impossible lengths: the same bad_record_mac, never a crash. */
static void test_bad_body_lengths(void **st)
{
    (void)st;
    for (size_t s = 0; s < N_SUITES; s++) {
        veil_dir tx, rx;
        keyed(&tx, &rx, suites[s]);
        const bool cbc = veil_suite_is_cbc(suites[s]);
        for (size_t len = 0; len <= 200; len++) {
            uint8_t rec[VEIL_HEADER_LEN + 200];
            veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .flags = VEIL_FLAG_ENCRYPTED,
                             .length = (uint16_t)len};
            size_t got;
            veil_header_encode(&h, rec);
            fill(rec + VEIL_HEADER_LEN, len, (uint32_t)len);
            assert_int_equal(receive(&rx, rec, VEIL_HEADER_LEN + len, &got), BAD_RECORD_MAC);
        }
        assert_int_equal(veil_suite_min_body(suites[s]), cbc ? 64 : 16);
        /* The largest body the header allows, random bytes. */
        static uint8_t big[VEIL_HEADER_LEN + VEIL_MAX_BODY];
        veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .flags = VEIL_FLAG_ENCRYPTED,
                         .length = VEIL_MAX_BODY};
        veil_header_encode(&h, big);
        fill(big + VEIL_HEADER_LEN, VEIL_MAX_BODY, 77);
        size_t got;
        assert_int_equal(receive(&rx, big, sizeof(big), &got), BAD_RECORD_MAC);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
    }
}

/* ------------------------------------------------------------------------ */
/* The body layout of §6, recomputed with OpenSSL directly                  */

static void derive(const uint8_t secret[32], const char *label, uint8_t *out, size_t n)
{
    assert_int_equal(veil_expand_label(secret, label, NULL, 0, out, n), 0);
}

static void hmac(const uint8_t key[32], const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};
    size_t n = 0;
    assert_int_equal(EVP_MAC_init(ctx, key, 32, params), 1);
    assert_int_equal(EVP_MAC_update(ctx, a, na), 1);
    assert_int_equal(EVP_MAC_update(ctx, b, nb), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &n, 32), 1);
    assert_int_equal(n, 32);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

/* Independent CBC record: iv || AES-256-CBC(content || pad) || HMAC; pad_byte -1 = correct PKCS#7. */
static size_t cbc_record_ref(const uint8_t secret[32], uint64_t seq, const uint8_t iv[16], const uint8_t *content,
                             size_t len, int pad_byte, uint8_t *rec)
{
    uint8_t key[32], mac_key[32], pt[VEIL_MAX_CONTENT + 16];
    size_t pad = 16 - len % 16, ct_len = len + pad;
    int n1 = 0, n2 = 0;
    derive(secret, "key", key, 32);
    derive(secret, "mac", mac_key, 32);
    memcpy(pt, content, len);
    memset(pt + len, pad_byte >= 0 ? pad_byte : (int)pad, pad);
    veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .flags = VEIL_FLAG_ENCRYPTED,
                     .length = (uint16_t)(16 + ct_len + 32), .seq = seq};
    veil_header_encode(&h, rec);
    uint8_t *body = rec + VEIL_HEADER_LEN;
    memcpy(body, iv, 16);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv), 1);
    assert_int_equal(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, body + 16, &n1, pt, (int)ct_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, body + 16 + n1, &n2), 1);
    assert_int_equal((size_t)(n1 + n2), ct_len);
    EVP_CIPHER_CTX_free(ctx);
    hmac(mac_key, rec, VEIL_HEADER_LEN, body, 16 + ct_len, body + 16 + ct_len);
    return VEIL_HEADER_LEN + 16 + ct_len + 32;
}

/* Independent AEAD record: nonce = iv XOR (0^4 || seq), AAD = header. */
static size_t aead_record_ref(uint16_t suite, const uint8_t secret[32], uint64_t seq, const uint8_t *content,
                              size_t len, uint8_t *rec)
{
    uint8_t key[32], nonce[12];
    int n1 = 0, n2 = 0;
    derive(secret, "key", key, 32);
    derive(secret, "iv", nonce, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .flags = VEIL_FLAG_ENCRYPTED,
                     .length = (uint16_t)(len + 16), .seq = seq};
    veil_header_encode(&h, rec);
    uint8_t *body = rec + VEIL_HEADER_LEN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const EVP_CIPHER *c = suite == VEIL_SUITE_AES_256_GCM_SHA256 ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
    assert_int_equal(EVP_EncryptInit_ex(ctx, c, NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n1, rec, VEIL_HEADER_LEN), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, body, &n1, content, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, body + n1, &n2), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, body + len), 1);
    EVP_CIPHER_CTX_free(ctx);
    return VEIL_HEADER_LEN + len + 16;
}

static void test_cbc_layout(void **st)
{
    (void)st;
    veil_dir tx, rx;
    test_rng rng, mirror;
    veil_buf out;
    static uint8_t ref[VEIL_MAX_RECORD];
    keyed(&tx, &rx, VEIL_SUITE_AES_256_CBC_HMAC_SHA256);
    test_rng_init(&rng, "cbc");
    test_rng_init(&mirror, "cbc");
    veil_buf_init(&out);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t len = lengths[i];
        uint8_t iv[16];
        out.len = 0;
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, len, test_rng_cb, &rng, &out), 0);
        /* The IV is the next 16 bytes of the RNG callback's stream. */
        assert_int_equal(test_rng_cb(&mirror, iv, 16), 0);
        assert_memory_equal(out.base + VEIL_HEADER_LEN, iv, 16);
        /* iv(16) || ct(16 * (floor(len / 16) + 1)) || mac(32), byte for byte. */
        size_t n = cbc_record_ref(secret_a, i, iv, content_in, len, -1, ref);
        assert_int_equal(out.len, n);
        assert_int_equal(out.len, VEIL_HEADER_LEN + cbc_body_len(len));
        assert_memory_equal(out.base, ref, n);
    }

    /* Fresh IV per record: the same content twice gives different IVs and ciphertexts. */
    out.len = 0;
    assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 40, test_rng_cb, &rng, &out), 0);
    size_t first = out.len;
    tx.seq--; /* even with the same header */
    assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 40, test_rng_cb, &rng, &out), 0);
    assert_int_equal(out.len, 2 * first);
    assert_memory_equal(out.base, out.base + first, VEIL_HEADER_LEN);
    assert_memory_not_equal(out.base + VEIL_HEADER_LEN, out.base + first + VEIL_HEADER_LEN, 16);
    assert_memory_not_equal(out.base + VEIL_HEADER_LEN + 16, out.base + first + VEIL_HEADER_LEN + 16, 48);

    /* An RNG failure writes nothing and does not use up a sequence number. */
    uint64_t seq = tx.seq;
    out.len = 0;
    rng.fail = true;
    assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 10, test_rng_cb, &rng, &out), VEIL_ERR_RNG);
    assert_int_equal(out.len, 0);
    assert_true(tx.seq == seq);
    veil_buf_free(&out);
    veil_dir_clear(&tx);
    veil_dir_clear(&rx);
}

/* A correct MAC over a ciphertext whose padding is wrong: still bad_record_mac. */
static void test_cbc_bad_padding(void **st)
{
    (void)st;
    veil_dir tx, rx;
    static uint8_t rec[VEIL_MAX_RECORD];
    uint8_t iv[16];
    size_t got;
    fill(iv, 16, 5);
    keyed(&tx, &rx, VEIL_SUITE_AES_256_CBC_HMAC_SHA256);
    /* The reference record with correct padding opens: the construction is right. */
    size_t n = cbc_record_ref(secret_a, 9, iv, content_in, 20, -1, rec);
    assert_int_equal(receive(&rx, rec, n, &got), 0);
    assert_int_equal(got, 20);
    assert_memory_equal(opened, content_in, 20);
    /* 12 padding bytes that all read 0x00, 0x11 or 0xFF: never valid PKCS#7. */
    const uint8_t bad_pads[] = {0x00, 0x11, 0xFF};
    for (size_t i = 0; i < sizeof(bad_pads); i++) {
        n = cbc_record_ref(secret_a, 9, iv, content_in, 20, bad_pads[i], rec);
        assert_int_equal(receive(&rx, rec, n, &got), BAD_RECORD_MAC);
    }
    /* A full block of padding with a wrong byte in the middle. */
    uint8_t block[16];
    memset(block, 16, sizeof(block));
    block[7] = 15;
    n = cbc_record_ref(secret_a, 9, iv, block, 16, -1, rec); /* content = the fake pad, then a real pad block */
    assert_int_equal(receive(&rx, rec, n, &got), 0);          /* fine as is */
    assert_int_equal(got, 16);
    /* Drop the last (real) padding block and fix the MAC: the fake pad is now checked. */
    {
        uint8_t mac_key[32];
        derive(secret_a, "mac", mac_key, 32);
        veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .flags = VEIL_FLAG_ENCRYPTED,
                         .length = 16 + 16 + 32, .seq = 9};
        veil_header_encode(&h, rec);
        hmac(mac_key, rec, VEIL_HEADER_LEN, rec + VEIL_HEADER_LEN, 32, rec + VEIL_HEADER_LEN + 32);
        assert_int_equal(receive(&rx, rec, VEIL_HEADER_LEN + 64, &got), BAD_RECORD_MAC);
    }
    veil_dir_clear(&tx);
    veil_dir_clear(&rx);
}

static void test_aead_layout(void **st)
{
    (void)st;
    static uint8_t ref[VEIL_MAX_RECORD];
    for (size_t s = 0; s < 2; s++) {
        veil_dir tx, rx;
        veil_buf out;
        keyed(&tx, &rx, suites[s]);
        assert_false(veil_suite_is_cbc(suites[s]));
        veil_buf_init(&out);
        tx.seq = 0x00FFFFFFFFFFFF00u; /* the nonce carries all 64 bits of the sequence */
        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
            size_t len = lengths[i];
            uint64_t seq = tx.seq;
            out.len = 0;
            assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, len, NULL, NULL, &out), 0);
            assert_int_equal(out.len, VEIL_HEADER_LEN + len + 16); /* ciphertext || tag */
            size_t n = aead_record_ref(suites[s], secret_a, seq, content_in, len, ref);
            assert_int_equal(n, out.len);
            assert_memory_equal(out.base, ref, n);
        }
        veil_buf_free(&out);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
    }
}

/* Authenticated content longer than 16384 (only a broken or hostile peer makes one). */
static void test_authenticated_overflow(void **st)
{
    (void)st;
    static uint8_t rec[VEIL_HEADER_LEN + VEIL_MAX_BODY + 8], big[VEIL_MAX_BODY + 8];
    size_t got;
    fill(big, sizeof(big), 8);
    for (size_t s = 0; s < N_SUITES; s++) {
        veil_dir tx, rx;
        size_t n;
        keyed(&tx, &rx, suites[s]);
        if (veil_suite_is_cbc(suites[s])) {
            uint8_t iv[16] = {1};
            n = cbc_record_ref(secret_a, 0, iv, big, VEIL_MAX_CONTENT + 1, -1, rec);
        } else {
            n = aead_record_ref(suites[s], secret_a, 0, big, VEIL_MAX_CONTENT + 1, rec);
        }
        assert_int_equal(receive(&rx, rec, n, &got), VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW));
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
    }
    /* Unencrypted: a body above 16388 bytes with a correct CRC (PROTOCOL.md §2.5). */
    veil_dir plain;
    memset(&plain, 0, sizeof(plain));
    for (size_t len = VEIL_MAX_CONTENT; len <= VEIL_MAX_BODY - 4; len += VEIL_MAX_BODY - 4 - VEIL_MAX_CONTENT) {
        veil_header h = {.version = 1, .type = VEIL_REC_APPDATA, .length = (uint16_t)(len + 4)};
        veil_header_encode(&h, rec);
        memcpy(rec + VEIL_HEADER_LEN, big, len);
        fix_crc(rec, VEIL_HEADER_LEN + len + 4);
        int want = len > VEIL_MAX_CONTENT ? VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW) : 0;
        assert_int_equal(receive(&plain, rec, VEIL_HEADER_LEN + len + 4, &got), want);
        h.length++;
        veil_header_encode(&h, rec);
        memcpy(rec + VEIL_HEADER_LEN, big, len + 1);
        fix_crc(rec, VEIL_HEADER_LEN + len + 5);
        assert_int_equal(receive(&plain, rec, VEIL_HEADER_LEN + len + 5, &got), VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW));
    }
}

/* ------------------------------------------------------------------------ */
/* Epochs (§6.4) and limits                                                 */

static void test_next_epoch(void **st)
{
    (void)st;
    for (size_t s = 0; s < N_SUITES; s++) {
        veil_dir tx, rx, stale;
        test_rng rng;
        veil_buf r0, r1;
        size_t got;
        uint8_t want_secret[32];
        test_rng_init(&rng, "epoch");
        veil_buf_init(&r0);
        veil_buf_init(&r1);
        keyed(&tx, &rx, suites[s]);
        memset(&stale, 0, sizeof(stale));
        assert_int_equal(veil_dir_set_key(&stale, suites[s], 0, secret_a), 0);

        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 30, test_rng_cb, &rng, &r0), 0);
        assert_int_equal(veil_dir_next_epoch(&tx), 0);
        assert_int_equal(tx.epoch, 1);
        assert_true(tx.records_on_key == 0 && tx.bytes_on_key == 0);
        assert_int_equal(veil_expand_label(secret_a, "upd", NULL, 0, want_secret, 32), 0);
        assert_memory_equal(tx.secret, want_secret, 32);
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 30, test_rng_cb, &rng, &r1), 0);
        assert_int_equal(r1.base[5], 1); /* header epoch */

        /* The receiver opens epoch 0, not yet epoch 1. */
        assert_int_equal(receive(&rx, r0.base, r0.len, &got), 0);
        assert_int_equal(receive(&rx, r1.base, r1.len, &got), UNEXPECTED);
        assert_int_equal(veil_dir_next_epoch(&rx), 0);
        assert_int_equal(receive(&rx, r1.base, r1.len, &got), 0);
        assert_int_equal(got, 30);
        assert_memory_equal(opened, content_in, 30);
        /* ... and no longer epoch 0. */
        assert_int_equal(receive(&rx, r0.base, r0.len, &got), UNEXPECTED);
        /* A receiver that claims epoch 1 with the epoch-0 key cannot open it. */
        stale.epoch = 1;
        assert_int_equal(receive(&stale, r1.base, r1.len, &got), BAD_RECORD_MAC);

        /* 256 more steps on both sides: the epoch byte wraps, the keys stay in step. */
        for (int i = 0; i < 256; i++) {
            assert_int_equal(veil_dir_next_epoch(&tx), 0);
            assert_int_equal(veil_dir_next_epoch(&rx), 0);
        }
        assert_int_equal(tx.epoch, 1);
        r1.len = 0;
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 7, test_rng_cb, &rng, &r1), 0);
        assert_int_equal(receive(&rx, r1.base, r1.len, &got), 0);
        assert_int_equal(got, 7);
        /* Same epoch number as before the wrap, different key. */
        assert_int_equal(veil_dir_next_epoch(&stale), 0);
        assert_int_equal(stale.epoch, 2);
        stale.epoch = 1;
        assert_int_equal(receive(&stale, r1.base, r1.len, &got), BAD_RECORD_MAC);

        veil_buf_free(&r0);
        veil_buf_free(&r1);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
        veil_dir_clear(&stale);
    }
    /* No key, no epochs. */
    veil_dir d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(veil_dir_next_epoch(&d), VEIL_ERR_STATE);
}

static void test_limits(void **st)
{
    (void)st;
    test_rng rng;
    veil_buf out;
    test_rng_init(&rng, "limits");
    veil_buf_init(&out);
    for (size_t s = 0; s <= N_SUITES; s++) {
        veil_dir tx, rx;
        if (s < N_SUITES) {
            keyed(&tx, &rx, suites[s]);
        } else {
            memset(&tx, 0, sizeof(tx)); /* unencrypted */
            memset(&rx, 0, sizeof(rx));
        }
        out.len = 0;
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, VEIL_MAX_CONTENT + 1, test_rng_cb, &rng,
                                           &out),
                         VEIL_ERR_TOO_LARGE);
        assert_int_equal(out.len, 0);
        assert_true(tx.seq == 0);
        /* The sequence number never wraps: UINT64_MAX is never sent. */
        tx.seq = UINT64_MAX - 1;
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 3, test_rng_cb, &rng, &out), 0);
        assert_true(tx.seq == UINT64_MAX);
        size_t len = out.len;
        assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 3, test_rng_cb, &rng, &out),
                         VEIL_ERR_STATE);
        assert_int_equal(out.len, len);
        veil_dir_clear(&tx);
        veil_dir_clear(&rx);
        /* veil_dir_clear wipes everything. */
        assert_null(tx.cipher);
        assert_true(tx.seq == 0);
    }
    veil_buf_free(&out);

    /* Suites that cannot protect records. */
    veil_dir d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(veil_dir_set_key(&d, VEIL_SUITE_NULL, 1, secret_a), VEIL_ERR_UNSUPPORTED);
    assert_int_equal(veil_dir_set_key(&d, 0x0004, 0, secret_a), VEIL_ERR_UNSUPPORTED);
    assert_null(d.cipher);
}

/* An encrypted record reaching a receiver without a key, and the reverse. */
static void test_encryption_state_mismatch(void **st)
{
    (void)st;
    veil_dir tx, rx, plain_tx, plain_rx;
    veil_buf enc, plain;
    size_t got;
    keyed(&tx, &rx, VEIL_SUITE_AES_256_GCM_SHA256);
    memset(&plain_tx, 0, sizeof(plain_tx));
    memset(&plain_rx, 0, sizeof(plain_rx));
    veil_buf_init(&enc);
    veil_buf_init(&plain);
    assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, 20, NULL, NULL, &enc), 0);
    assert_int_equal(veil_record_write(&plain_tx, VEIL_REC_APPDATA, content_in, 20, NULL, NULL, &plain), 0);
    assert_int_equal(receive(&plain_rx, enc.base, enc.len, &got), UNEXPECTED);
    assert_int_equal(receive(&rx, plain.base, plain.len, &got), UNEXPECTED);
    veil_buf_free(&enc);
    veil_buf_free(&plain);
    veil_dir_clear(&tx);
    veil_dir_clear(&rx);
}

/*
 * veil_cipher_open directly, every suite, interleaving failures and successes
 * on one context: the nonce (sequence), the header (AAD), the tag and the
 * body are each checked, a failed open leaves no plaintext behind, and a
 * failure does not spoil the context for the next record (the nonce and the
 * expected tag are set anew for every record).
 */
static void test_cipher_open_rejects(void **st)
{
    (void)st;
    static uint8_t rec[VEIL_HEADER_LEN + VEIL_MAX_BODY], bad[VEIL_HEADER_LEN + VEIL_MAX_BODY];
    for (size_t s = 0; s < N_SUITES; s++) {
        for (size_t li = 0; li < sizeof(lengths) / sizeof(lengths[0]); li++) {
            veil_dir tx, rx;
            veil_buf out;
            test_rng rng;
            size_t len = lengths[li], got;
            keyed(&tx, &rx, suites[s]);
            test_rng_init(&rng, "open");
            veil_buf_init(&out);
            tx.seq = 0x1122334455667788u;
            assert_int_equal(veil_record_write(&tx, VEIL_REC_APPDATA, content_in, len, test_rng_cb, &rng, &out), 0);
            size_t n = out.len, body_len = n - VEIL_HEADER_LEN;
            memcpy(rec, out.base, n);
            const uint64_t seq = 0x1122334455667788u;
            for (int round = 0; round < 2; round++) {
                /* Wrong sequence number (nonce; for CBC only the header is MACed, so it must still open). */
                memset(opened, 0xAA, body_len);
                int ret = veil_cipher_open(rx.cipher, rec, seq + 1, rec + VEIL_HEADER_LEN, body_len, opened, &got);
                if (veil_suite_is_cbc(suites[s])) {
                    assert_int_equal(ret, 0);
                } else {
                    assert_int_equal(ret, BAD_RECORD_MAC);
                    for (size_t i = 0; i < body_len - 16; i++)
                        assert_int_equal(opened[i], 0); /* no unauthenticated plaintext */
                }
                /* Wrong header byte (AAD / MAC input). */
                memcpy(bad, rec, n);
                bad[3] ^= 0x80;
                assert_int_equal(veil_cipher_open(rx.cipher, bad, seq, bad + VEIL_HEADER_LEN, body_len, opened, &got),
                                 BAD_RECORD_MAC);
                /* Wrong last byte of the tag / MAC; wrong first body byte. */
                bad[3] ^= 0x80;
                bad[n - 1] ^= 0x01;
                assert_int_equal(veil_cipher_open(rx.cipher, bad, seq, bad + VEIL_HEADER_LEN, body_len, opened, &got),
                                 BAD_RECORD_MAC);
                bad[n - 1] ^= 0x01;
                bad[VEIL_HEADER_LEN] ^= 0x01;
                assert_int_equal(veil_cipher_open(rx.cipher, bad, seq, bad + VEIL_HEADER_LEN, body_len, opened, &got),
                                 BAD_RECORD_MAC);
                /* The right record still opens after all those, in place too. */
                assert_int_equal(veil_cipher_open(rx.cipher, rec, seq, rec + VEIL_HEADER_LEN, body_len, opened, &got), 0);
                assert_int_equal(got, len);
                assert_memory_equal(opened, content_in, len);
                memcpy(bad, rec, n);
                uint8_t *in_place = bad + VEIL_HEADER_LEN + (veil_suite_is_cbc(suites[s]) ? 16 : 0);
                assert_int_equal(veil_cipher_open(rx.cipher, bad, seq, bad + VEIL_HEADER_LEN, body_len, in_place, &got),
                                 0);
                assert_int_equal(got, len);
                assert_memory_equal(in_place, content_in, len);
            }
            veil_buf_free(&out);
            veil_dir_clear(&tx);
            veil_dir_clear(&rx);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_unencrypted),
        cmocka_unit_test(test_two_piece_write),
        cmocka_unit_test(test_inplace_tampered),
        cmocka_unit_test(test_tamper_every_byte),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_bad_body_lengths),
        cmocka_unit_test(test_cbc_layout),
        cmocka_unit_test(test_cbc_bad_padding),
        cmocka_unit_test(test_aead_layout),
        cmocka_unit_test(test_authenticated_overflow),
        cmocka_unit_test(test_next_epoch),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_encryption_state_mismatch),
        cmocka_unit_test(test_cipher_open_rejects),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
