/*
 * test_observer.c - the passive-observer API (PROTOCOL.md §10) on sessions
 * recorded in memory: headers without keys, decryption with the keylog,
 * wrong keys, late keys, tampering, gaps, rekeying, stream framing.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "veil_internal.h"

static veil_identity *server_id;
static test_wire w;
static char keylines[2][160];

static const uint16_t all_suites[] = {VEIL_SUITE_AES_256_GCM_SHA256, VEIL_SUITE_CHACHA20_POLY1305_SHA256,
                                      VEIL_SUITE_AES_256_CBC_HMAC_SHA256};

/* Records a session: handshake, 3 client messages, an ack, close both ways. */
static void record_session(uint8_t mode, uint16_t suite, uint64_t rekey)
{
    endpoint c, s;
    memset(&w, 0, sizeof(w));
    test_rekey_records = rekey;
    endpoint_client(&c, mode, suite, "obs-client");
    endpoint_server(&s, VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT, server_id, "obs-server");
    test_rekey_records = 0;
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, test_capture, &w);
    const char *texts[3] = {"alpha", "bravo", "charlie"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(veil_conn_send(c.conn, VEIL_MSG_TEXT, 1000 + (uint64_t)i, (const uint8_t *)texts[i],
                                        strlen(texts[i]), &c.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_int_equal(veil_conn_send(s.conn, VEIL_MSG_ACK, 2000, (const uint8_t *)"got 3", 5, &s.out), 0);
    assert_int_equal(veil_conn_close(c.conn, &c.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_int_equal(veil_conn_close(s.conn, &s.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_int_equal(s.n_msgs, 3);
    memset(keylines, 0, sizeof(keylines));
    for (int i = 0; i < c.n_keylog && i < 2; i++)
        memcpy(keylines[i], c.keylog[i], 160);
    endpoint_free(&c);
    endpoint_free(&s);
}

typedef struct tally {
    int records, hs, app, decrypted, no_key, auth_failed, plaintext, bad_crc, seq_bad, key_updates;
    char texts[8][64];
    int n_texts;
    uint16_t suite;
    uint8_t fp[32];
} tally;

static int count(void *user, const veil_observed_record *r)
{
    tally *t = user;
    t->records++;
    if (!r->seq_ok)
        t->seq_bad++;
    switch (r->status) {
    case VEIL_BODY_DECRYPTED: t->decrypted++; break;
    case VEIL_BODY_NO_KEY: t->no_key++; break;
    case VEIL_BODY_AUTH_FAILED: t->auth_failed++; break;
    case VEIL_BODY_PLAINTEXT: t->plaintext++; break;
    case VEIL_BODY_BAD_CRC: t->bad_crc++; break;
    default: break;
    }
    if (r->content != NULL)
        assert_int_equal(r->parse_error, 0);
    if (r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL) {
        t->hs++;
        if (r->hs_type == VEIL_HS_SERVER_HELLO) {
            t->suite = r->hello.suite;
            memcpy(t->fp, r->hello.fingerprint, 32);
        }
        if (r->hs_type == VEIL_HS_CLIENT_HELLO) {
            assert_int_equal(r->hello.n_versions, 1);
            assert_int_equal(r->hello.n_groups, 1);
            assert_int_equal(r->hello.groups[0], VEIL_GROUP_X25519);
            assert_int_equal(r->hello.key_share_len, 32);
        }
    }
    if (r->hdr.type == VEIL_REC_KEY_UPDATE && r->content != NULL)
        t->key_updates++;
    if (r->hdr.type == VEIL_REC_APPDATA) {
        t->app++;
        if (r->content != NULL && r->dir == 0 && t->n_texts < 8)
            snprintf(t->texts[t->n_texts++], 64, "%.*s", (int)r->msg_len, (const char *)r->msg_data);
    }
    return 0;
}

static void observe(const veil_keylog *kl, tally *t, bool readable)
{
    veil_observer *o;
    memset(t, 0, sizeof(*t));
    assert_int_equal(veil_observer_new(kl, &o), 0);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, t), 0);
    /* close_notify counts only when it could be read (and so authenticated). */
    assert_int_equal(veil_observer_closed(o, 0), readable);
    assert_int_equal(veil_observer_pending(o, 0), 0);
    veil_observer_free(o);
}

static veil_keylog *keylog_of(const char *l0, const char *l1)
{
    veil_keylog *kl;
    assert_int_equal(veil_keylog_new(&kl), 0);
    assert_int_equal(veil_keylog_add_line(kl, l0, strlen(l0)), 0);
    if (l1 != NULL)
        assert_int_equal(veil_keylog_add_line(kl, l1, strlen(l1)), 0);
    return kl;
}

static void test_without_keys(void **st)
{
    (void)st;
    for (int k = 0; k < 3; k++) {
        tally t;
        record_session(VEIL_MODE_ENCRYPTED, all_suites[k], 0);
        observe(NULL, &t, false);
        assert_int_equal(t.records, w.n);
        assert_int_equal(t.hs, 5);            /* the whole handshake is readable */
        assert_int_equal(t.suite, all_suites[k]);
        uint8_t fp[32];
        veil_identity_fingerprint(server_id, fp);
        assert_memory_equal(t.fp, fp, 32);
        assert_int_equal(t.app, 4);           /* seen, but opaque */
        assert_int_equal(t.n_texts, 0);
        assert_int_equal(t.no_key, w.n - 5);
        assert_int_equal(t.decrypted, 0);
        assert_int_equal(t.seq_bad, 0);
    }
}

static void test_with_keys(void **st)
{
    (void)st;
    for (int k = 0; k < 3; k++) {
        tally t;
        record_session(VEIL_MODE_ENCRYPTED, all_suites[k], 0);
        veil_keylog *kl = keylog_of(keylines[0], keylines[1]);
        observe(kl, &t, true);
        assert_int_equal(t.decrypted, w.n - 5);
        assert_int_equal(t.n_texts, 3);
        assert_string_equal(t.texts[0], "alpha");
        assert_string_equal(t.texts[2], "charlie");
        assert_int_equal(t.auth_failed + t.no_key, 0);
        veil_keylog_free(kl);

        /* Only the client's secret: one direction readable. */
        kl = keylog_of(keylines[0], NULL);
        observe(kl, &t, true);
        assert_int_equal(t.n_texts, 3);
        assert_int_equal(t.no_key, 2); /* server's ack and close_notify */
        veil_keylog_free(kl);
    }
}

static void test_wrong_keys(void **st)
{
    (void)st;
    tally t;
    record_session(VEIL_MODE_ENCRYPTED, VEIL_SUITE_AES_256_GCM_SHA256, 0);
    /* Same client random, wrong secret. */
    char bad[2][160];
    memcpy(bad, keylines, sizeof(bad));
    for (int i = 0; i < 2; i++) {
        char *last = bad[i] + strlen(bad[i]) - 1;
        *last = *last == '0' ? '1' : '0';
    }
    veil_keylog *kl = keylog_of(bad[0], bad[1]);
    veil_observer *o;
    memset(&t, 0, sizeof(t));
    assert_int_equal(veil_observer_new(kl, &o), 0);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, &t), 0);
    assert_int_equal(t.auth_failed, w.n - 5);
    assert_int_equal(t.n_texts, 0);
    assert_false(veil_observer_closed(o, 0)); /* an unauthenticated close does not count */
    veil_observer_free(o);
    veil_keylog_free(kl);

    /* Keys of another session: no key for this one. */
    kl = keylog_of("VEIL_CLIENT_TRAFFIC_SECRET_0 0000000000000000000000000000000000000000000000000000000000000000 "
                   "1111111111111111111111111111111111111111111111111111111111111111", NULL);
    assert_int_equal(veil_observer_new(kl, &o), 0);
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, &t), 0);
    assert_int_equal(t.no_key, w.n - 5);
    veil_observer_free(o);
    veil_keylog_free(kl);
}

/* Keys that reach the keylog only after some records were seen still apply to later ones. */
static void test_late_keys(void **st)
{
    (void)st;
    tally t;
    veil_keylog *kl;
    veil_observer *o;
    record_session(VEIL_MODE_ENCRYPTED, VEIL_SUITE_CHACHA20_POLY1305_SHA256, 0);
    assert_int_equal(veil_keylog_new(&kl), 0);
    assert_int_equal(veil_observer_new(kl, &o), 0);
    memset(&t, 0, sizeof(t));
    int i = 0;
    for (; i < w.n && t.app == 0; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, &t), 0);
    assert_int_equal(t.no_key, 1);
    assert_int_equal(veil_keylog_add_text(kl, keylines[0], strlen(keylines[0])), 0);
    assert_int_equal(veil_keylog_add_line(kl, keylines[1], strlen(keylines[1])), 0);
    for (; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, &t), 0);
    assert_int_equal(t.n_texts, 2); /* bravo, charlie */
    assert_string_equal(t.texts[0], "bravo");
    veil_observer_free(o);
    veil_keylog_free(kl);
}

static void test_plaintext_session(void **st)
{
    (void)st;
    tally t;
    record_session(VEIL_MODE_PLAINTEXT, 0, 0);
    observe(NULL, &t, true);
    assert_int_equal(t.plaintext, w.n);
    assert_int_equal(t.n_texts, 3);
    assert_string_equal(t.texts[1], "bravo");
    assert_int_equal(t.suite, VEIL_SUITE_NULL);
}

static void test_tampered(void **st)
{
    (void)st;
    tally t;
    veil_observer *o;
    record_session(VEIL_MODE_PLAINTEXT, 0, 0);
    w.rec[5][VEIL_HEADER_LEN + 10] ^= 0x20; /* the first message's text */
    assert_int_equal(veil_observer_new(NULL, &o), 0);
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, &t), 0);
    assert_int_equal(t.bad_crc, 1);
    assert_int_equal(t.n_texts, 2);
    veil_observer_free(o);

    record_session(VEIL_MODE_ENCRYPTED, VEIL_SUITE_AES_256_CBC_HMAC_SHA256, 0);
    w.rec[5][VEIL_HEADER_LEN + 20] ^= 0x01;
    veil_keylog *kl = keylog_of(keylines[0], keylines[1]);
    assert_int_equal(veil_observer_new(kl, &o), 0);
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count, &t), 0);
    assert_int_equal(t.auth_failed, 1);
    assert_int_equal(t.n_texts, 2);
    veil_observer_free(o);
    veil_keylog_free(kl);
}

/* A record missing from the capture: the next one is flagged with the expected number. */
static void test_gap(void **st)
{
    (void)st;
    veil_observer *o;
    veil_observed_record r;
    record_session(VEIL_MODE_PLAINTEXT, 0, 0);
    assert_int_equal(veil_observer_new(NULL, &o), 0);
    for (int i = 0; i < w.n; i++) {
        if (i == 6)
            continue; /* drop "bravo" */
        assert_int_equal(veil_observer_record(o, w.dir[i], w.rec[i], w.len[i], &r), 0);
        if (i == 7) {
            assert_false(r.seq_ok);
            assert_int_equal(r.seq_expected, 3);
            assert_int_equal(r.hdr.seq, 4);
        }
    }
    /* A replayed record shows as a repeated number. */
    assert_int_equal(veil_observer_record(o, w.dir[7], w.rec[7], w.len[7], &r), 0);
    assert_false(r.seq_ok);
    veil_observer_free(o);
}

static void test_rekeyed_session(void **st)
{
    (void)st;
    tally t;
    record_session(VEIL_MODE_ENCRYPTED, VEIL_SUITE_AES_256_GCM_SHA256, 1);
    veil_keylog *kl = keylog_of(keylines[0], keylines[1]);
    observe(kl, &t, true);
    assert_true(t.key_updates >= 3);
    assert_int_equal(t.n_texts, 3);
    assert_string_equal(t.texts[2], "charlie");
    assert_int_equal(t.auth_failed, 0);
    veil_keylog_free(kl);
}

/* The stream form frames records across any split: each run of consecutive
 * records in one direction (as a capture delivers them) is cut into chunks. */
static void test_stream_framing(void **st)
{
    (void)st;
    veil_observer *o;
    tally t;
    static uint8_t run[TEST_WIRE_MAX * VEIL_MAX_RECORD];
    record_session(VEIL_MODE_ENCRYPTED, VEIL_SUITE_AES_256_GCM_SHA256, 0);
    veil_keylog *kl = keylog_of(keylines[0], keylines[1]);
    for (size_t chunk = 1; chunk < 80; chunk += 9) {
        assert_int_equal(veil_observer_new(kl, &o), 0);
        memset(&t, 0, sizeof(t));
        for (int i = 0; i < w.n;) {
            size_t n = 0;
            int d = w.dir[i];
            for (; i < w.n && w.dir[i] == d; i++) {
                memcpy(run + n, w.rec[i], w.len[i]);
                n += w.len[i];
            }
            for (size_t off = 0; off < n; off += chunk)
                assert_int_equal(veil_observer_feed(o, d, run + off, n - off < chunk ? n - off : chunk, count, &t), 0);
        }
        assert_int_equal(t.records, w.n);
        assert_int_equal(t.n_texts, 3);
        assert_int_equal(veil_observer_pending(o, 0) + veil_observer_pending(o, 1), 0);
        veil_observer_free(o);
    }
    veil_keylog_free(kl);
    assert_int_equal(veil_observer_new(NULL, &o), 0);
    const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(veil_observer_feed(o, 0, (const uint8_t *)http, sizeof(http) - 1, count, &t),
                     VEIL_PERR(VEIL_ALERT_DECODE_ERROR));
    assert_int_equal(veil_observer_feed(o, 0, w.rec[0], w.len[0], count, &t), 0); /* desynchronised: ignored */
    veil_observer_free(o);
}

static int setup(void **st)
{
    (void)st;
    server_id = test_identity("identity");
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    veil_identity_free(server_id);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_keys),   cmocka_unit_test(test_with_keys),
        cmocka_unit_test(test_wrong_keys),     cmocka_unit_test(test_late_keys),
        cmocka_unit_test(test_plaintext_session), cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_gap),            cmocka_unit_test(test_rekeyed_session),
        cmocka_unit_test(test_stream_framing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
