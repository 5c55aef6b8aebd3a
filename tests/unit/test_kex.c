/*
 * test_kex.c - the key-exchange and identity variants (PROTOCOL.md §4.10-4.12):
 * FFDHE-2048, RSA key transport, RSA-PSS identities, and service negotiation,
 * each with its negatives; and the observer decrypting an RSA key-transport
 * session from the server's private key alone.  X25519 through the
 * backend's shared import context: RFC 7748 vectors, low-order peers refused,
 * and several threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "veil_internal.h"

static veil_identity *ed_id, *rsa_id;

static void set_groups(const uint16_t *g, size_t n)
{
    test_groups = g;
    test_n_groups = n;
}

/* Client offers cgroups, server accepts sgroups; runs a session both ways. */
static void session(const uint16_t *cg, size_t cn, const uint16_t *sg, size_t sn, const veil_identity *id,
                    uint16_t want_group, uint8_t mode, test_wire *w)
{
    endpoint c, s;
    set_groups(cg, cn);
    endpoint_client(&c, mode, 0, "kex-client");
    set_groups(sg, sn);
    endpoint_server(&s, VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT, id, "kex-server");
    set_groups(NULL, 0);
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, w != NULL ? test_capture : NULL, w);
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    assert_true(c.done && s.done);
    assert_int_equal(veil_conn_group(c.conn), want_group);
    assert_int_equal(veil_conn_group(s.conn), want_group);
    assert_int_equal(veil_conn_send(c.conn, VEIL_MSG_TEXT, 7, (const uint8_t *)"over the variant", 16, &c.out), 0);
    pump(&c, &s, w != NULL ? test_capture : NULL, w);
    assert_int_equal(s.n_msgs, 1);
    assert_string_equal(s.msgs[0], "over the variant");
    assert_int_equal(veil_conn_send(s.conn, VEIL_MSG_ACK, 8, (const uint8_t *)"ok", 2, &s.out), 0);
    assert_int_equal(veil_conn_close(c.conn, &c.out), 0);
    pump(&c, &s, w != NULL ? test_capture : NULL, w);
    assert_int_equal(c.n_msgs, 1);
    assert_true(s.peer_closed);
    if (mode == VEIL_MODE_ENCRYPTED) {
        assert_int_equal(c.n_keylog, 2);
        assert_string_equal(c.keylog[0], s.keylog[0]);
        assert_string_equal(c.keylog[1], s.keylog[1]);
    }
    assert_int_equal(c.err, 0);
    assert_int_equal(s.err, 0);
    endpoint_free(&c);
    endpoint_free(&s);
}

static const uint16_t g_x[] = {VEIL_GROUP_X25519};
static const uint16_t g_ff[] = {VEIL_GROUP_FFDHE2048};
static const uint16_t g_rsa[] = {VEIL_GROUP_RSA_TRANSPORT};
static const uint16_t g_ff_x[] = {VEIL_GROUP_FFDHE2048, VEIL_GROUP_X25519};
static const uint16_t g_all[] = {VEIL_GROUP_X25519, VEIL_GROUP_FFDHE2048, VEIL_GROUP_RSA_TRANSPORT};

static void test_ffdhe(void **st)
{
    (void)st;
    session(g_ff, 1, NULL, 0, ed_id, VEIL_GROUP_FFDHE2048, VEIL_MODE_ENCRYPTED, NULL);
    session(g_ff, 1, NULL, 0, ed_id, VEIL_GROUP_FFDHE2048, VEIL_MODE_PLAINTEXT, NULL);
    /* The client's order decides among groups the server accepts. */
    session(g_ff_x, 2, NULL, 0, ed_id, VEIL_GROUP_FFDHE2048, VEIL_MODE_ENCRYPTED, NULL);
    /* A server that accepts only X25519 picks it from the same offer. */
    session(g_ff_x, 2, g_x, 1, ed_id, VEIL_GROUP_X25519, VEIL_MODE_ENCRYPTED, NULL);
}

static void test_rsa_pss_identity(void **st)
{
    (void)st;
    session(g_x, 1, NULL, 0, rsa_id, VEIL_GROUP_X25519, VEIL_MODE_ENCRYPTED, NULL);
    session(g_ff, 1, NULL, 0, rsa_id, VEIL_GROUP_FFDHE2048, VEIL_MODE_ENCRYPTED, NULL);
}

static void test_rsa_transport(void **st)
{
    (void)st;
    session(g_rsa, 1, NULL, 0, rsa_id, VEIL_GROUP_RSA_TRANSPORT, VEIL_MODE_ENCRYPTED, NULL);
    session(g_rsa, 1, NULL, 0, rsa_id, VEIL_GROUP_RSA_TRANSPORT, VEIL_MODE_PLAINTEXT, NULL);
    /* Offered last, chosen only when nothing before it is acceptable. */
    session(g_all, 3, NULL, 0, rsa_id, VEIL_GROUP_X25519, VEIL_MODE_ENCRYPTED, NULL);
}

/* RSA transport needs an RSA identity; an Ed25519 server has nothing in common. */
static void test_rsa_transport_needs_rsa_key(void **st)
{
    (void)st;
    endpoint c, s;
    set_groups(g_rsa, 1);
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "kex-client");
    set_groups(NULL, 0);
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, ed_id, "kex-server");
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, NULL, NULL);
    assert_int_equal(s.err, VEIL_PERR(VEIL_ALERT_HANDSHAKE_FAILURE));
    assert_int_equal(c.err, VEIL_ERR_PEER_ALERT(VEIL_ALERT_HANDSHAKE_FAILURE));
    endpoint_free(&c);
    endpoint_free(&s);
}

static int flip_hs(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap)
{
    const int *which = ctx; /* handshake type to corrupt */
    (void)cap;
    (void)dir;
    (void)index;
    if (rec[3] == VEIL_REC_HANDSHAKE && !(rec[4] & VEIL_FLAG_ENCRYPTED) && rec[VEIL_HEADER_LEN] == *which) {
        rec[*len - 10] ^= 0x04; /* inside the body, before the CRC */
        fix_crc(rec, *len);
    }
    return 0;
}

static void corrupted(const uint16_t *g, const veil_identity *id, int hs_type, endpoint **victim_out, int want)
{
    endpoint c, s;
    set_groups(g, 1);
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "kex-client");
    set_groups(NULL, 0);
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, id, "kex-server");
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, flip_hs, &hs_type);
    endpoint *victim = hs_type == VEIL_HS_CLIENT_KEY_EXCHANGE ? &s : &c;
    (void)victim_out;
    assert_int_equal(victim->err, want);
    assert_false(s.done);
    assert_int_equal(s.n_msgs, 0);
    endpoint_free(&c);
    endpoint_free(&s);
}

static void test_tampered_variants(void **st)
{
    (void)st;
    /* A changed RSA-OAEP ciphertext does not decrypt. */
    corrupted(g_rsa, rsa_id, VEIL_HS_CLIENT_KEY_EXCHANGE, NULL, VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR));
    /* A changed RSA-PSS signature does not verify. */
    corrupted(g_x, rsa_id, VEIL_HS_SERVER_VERIFY, NULL, VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR));
    /* A changed FFDHE server share gives another secret: Finished fails (or the value is invalid). */
    endpoint c, s;
    int type = VEIL_HS_SERVER_HELLO;
    set_groups(g_ff, 1);
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "kex-client");
    set_groups(NULL, 0);
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, ed_id, "kex-server");
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, flip_hs, &type);
    assert_true(c.err == VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR) || c.err == VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER));
    assert_false(c.done);
    endpoint_free(&c);
    endpoint_free(&s);
}

/* A man in the middle strips the better groups from the offer: the signature catches it. */
static int strip_group(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap)
{
    (void)ctx;
    (void)cap;
    if (dir == 0 && index == 0) {
        /* ClientHello: nv 1, v, mode, ns, 3 suites (6 bytes), n_shares at 10, first group at 11 */
        uint8_t *b = rec + VEIL_HEADER_LEN + 4;
        assert_int_equal(b[10], 3);
        assert_int_equal(b[12], VEIL_GROUP_X25519);
        b[11] = 0x7F; /* the X25519 share now names an unknown group: the server skips it */
        fix_crc(rec, *len);
    }
    return 0;
}

static void test_group_downgrade(void **st)
{
    (void)st;
    endpoint c, s;
    set_groups(g_all, 3);
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "kex-client");
    set_groups(NULL, 0);
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, rsa_id, "kex-server");
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, strip_group, NULL);
    assert_int_equal(c.err, VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR));
    assert_false(c.done);
    assert_false(s.done);
    endpoint_free(&c);
    endpoint_free(&s);
}

static void service_session(const char *asked, const char *offered, int want_err)
{
    endpoint c, s;
    test_service = asked;
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "kex-client");
    test_service = offered;
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, ed_id, "kex-server");
    test_service = NULL;
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, NULL, NULL);
    assert_int_equal(s.err, want_err);
    if (want_err == 0) {
        assert_true(c.done && s.done);
        assert_string_equal(veil_conn_service(c.conn), asked != NULL ? asked : "msg");
        assert_string_equal(veil_conn_service(s.conn), asked != NULL ? asked : "msg");
    } else {
        assert_int_equal(c.err, VEIL_ERR_PEER_ALERT(-want_err));
    }
    endpoint_free(&c);
    endpoint_free(&s);
}

static void test_services(void **st)
{
    (void)st;
    service_session(NULL, NULL, 0);
    service_session("chat", "msg,chat,bank", 0);
    service_session("bank", "msg,chat,bank", 0);
    service_session("msg", "chat,msg", 0);
    service_session("chat", NULL, VEIL_PERR(VEIL_ALERT_UNKNOWN_SERVICE));
    service_session("ban", "msg,chat,bank", VEIL_PERR(VEIL_ALERT_UNKNOWN_SERVICE));

    /* Invalid names are refused locally. */
    veil_config cfg;
    veil_conn *conn;
    test_rng r;
    veil_callbacks cb = {.random = test_rng_cb, .user = &r};
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.service = "Chat!";
    assert_int_equal(veil_conn_new(&cfg, &cb, 0, &conn), VEIL_ERR_INVALID_ARG);
    cfg.service = "";
    assert_int_equal(veil_conn_new(&cfg, &cb, 0, &conn), VEIL_ERR_INVALID_ARG);
    uint16_t bogus = 0x0042;
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.groups = &bogus;
    cfg.n_groups = 1;
    assert_int_equal(veil_conn_new(&cfg, &cb, 0, &conn), VEIL_ERR_INVALID_ARG);
}

/* Removing the service extension from the ClientHello is noticed by the client. */
static int strip_service(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap)
{
    (void)ctx;
    (void)cap;
    if (dir == 0 && index == 0) {
        /* The extension block is last: u16 ext_len then 4 + 1 + 4 bytes for "chat". */
        size_t ext_total = 4 + 1 + 4;
        size_t body_end = *len - 4;
        assert_int_equal(rec[body_end - ext_total - 1], ext_total);
        rec[body_end - ext_total - 1] = 0;
        *len -= ext_total;
        uint8_t *hs = rec + VEIL_HEADER_LEN;
        uint32_t n = ((uint32_t)hs[1] << 16 | (uint32_t)hs[2] << 8 | hs[3]) - (uint32_t)ext_total;
        veil_put_u24(hs + 1, n);
        veil_put_u16(rec + 6, (uint16_t)(*len - VEIL_HEADER_LEN));
        fix_crc(rec, *len);
    }
    return 0;
}

static void test_service_stripped(void **st)
{
    (void)st;
    endpoint c, s;
    test_service = "chat";
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "kex-client");
    test_service = "msg,chat";
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, ed_id, "kex-server");
    test_service = NULL;
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, strip_service, NULL);
    assert_int_equal(c.err, VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER));
    assert_false(s.done);
    endpoint_free(&c);
    endpoint_free(&s);
}

typedef struct seen {
    int decrypted, no_key, cke;
    char text[64];
} seen;

static int on_rec(void *user, const veil_observed_record *r)
{
    seen *t = user;
    if (r->status == VEIL_BODY_DECRYPTED)
        t->decrypted++;
    if (r->status == VEIL_BODY_NO_KEY)
        t->no_key++;
    if (r->hdr.type == VEIL_REC_HANDSHAKE && r->hs_type == VEIL_HS_CLIENT_KEY_EXCHANGE) {
        t->cke++;
        assert_int_equal(r->hs_body_len, 256); /* RSA-2048 ciphertext */
    }
    if (r->hdr.type == VEIL_REC_APPDATA && r->content != NULL && r->dir == 0)
        snprintf(t->text, sizeof(t->text), "%.*s", (int)r->msg_len, (const char *)r->msg_data);
    return 0;
}

/* No forward secrecy: the server's private key alone decrypts a recorded session. */
static void test_rsa_transport_observed(void **st)
{
    (void)st;
    static test_wire w;
    memset(&w, 0, sizeof(w));
    session(g_rsa, 1, NULL, 0, rsa_id, VEIL_GROUP_RSA_TRANSPORT, VEIL_MODE_ENCRYPTED, &w);
    for (int with_key = 0; with_key < 2; with_key++) {
        veil_observer *o;
        seen t;
        memset(&t, 0, sizeof(t));
        assert_int_equal(veil_observer_new(NULL, &o), 0);
        if (with_key)
            veil_observer_set_rsa_identity(o, rsa_id);
        for (int i = 0; i < w.n; i++)
            assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], on_rec, &t), 0);
        assert_int_equal(t.cke, 1);
        if (with_key) {
            assert_string_equal(t.text, "over the variant");
            assert_int_equal(t.no_key, 0);
            assert_true(t.decrypted >= 3);
            assert_true(veil_observer_closed(o, 0));
        } else {
            assert_string_equal(t.text, "");
            assert_int_equal(t.decrypted, 0);
            assert_true(t.no_key >= 3);
        }
        veil_observer_free(o);
    }
    /* A DH session is not decrypted by the server's key: forward secrecy. */
    memset(&w, 0, sizeof(w));
    session(g_x, 1, NULL, 0, rsa_id, VEIL_GROUP_X25519, VEIL_MODE_ENCRYPTED, &w);
    veil_observer *o;
    seen t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(veil_observer_new(NULL, &o), 0);
    veil_observer_set_rsa_identity(o, rsa_id);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], on_rec, &t), 0);
    assert_int_equal(t.decrypted, 0);
    assert_string_equal(t.text, "");
    veil_observer_free(o);
}

static void test_rsa_identity_pem(void **st)
{
    (void)st;
    veil_buf pem;
    veil_identity *back = NULL;
    uint8_t a[32], b[32];
    veil_buf_init(&pem);
    assert_int_equal(veil_identity_to_pem(rsa_id, &pem), 0);
    assert_int_equal(veil_identity_from_pem((const char *)pem.base, pem.len, &back), 0);
    veil_identity_fingerprint(rsa_id, a);
    veil_identity_fingerprint(back, b);
    assert_memory_equal(a, b, 32);
    assert_string_equal(veil_identity_algorithm(back), "RSA-2048");
    assert_string_equal(veil_identity_algorithm(ed_id), "Ed25519");
    veil_identity_free(back);
    veil_buf_free(&pem);
    assert_int_equal(veil_identity_generate_rsa(1024, &back), VEIL_ERR_INVALID_ARG);
}

/* ---- X25519 (RFC 7748) ---- */

/* RFC 7748 §6.1 */
#define ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define SHARED "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

static void test_x25519_rfc7748(void **st)
{
    (void)st;
    uint8_t a[32], b[32], a_pub[32], b_pub[32], want[32], pub[32], shared[32];
    veil_pkey *k = NULL;
    test_unhex(ALICE_PRIV, a, 32);
    test_unhex(BOB_PRIV, b, 32);
    test_unhex(ALICE_PUB, a_pub, 32);
    test_unhex(BOB_PUB, b_pub, 32);
    test_unhex(SHARED, want, 32);
    /* The server's path: one key for the public value and the derivation. */
    assert_int_equal(veil_x25519_keypair(a, pub, &k), 0);
    assert_memory_equal(pub, a_pub, 32);
    assert_int_equal(veil_x25519_derive_key(k, b_pub, shared), 0);
    assert_memory_equal(shared, want, 32);
    veil_pkey_free(k);
    assert_int_equal(veil_x25519_public(b, pub), 0);
    assert_memory_equal(pub, b_pub, 32);
    memset(shared, 0, sizeof(shared));
    assert_int_equal(veil_x25519_derive(b, a_pub, shared), 0);
    assert_memory_equal(shared, want, 32);
    /* §5.2, first vector: an arbitrary u-coordinate as the peer value. */
    test_unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", a, 32);
    test_unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", b_pub, 32);
    test_unhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552", want, 32);
    assert_int_equal(veil_x25519_derive(a, b_pub, shared), 0);
    assert_memory_equal(shared, want, 32);
}

/* Peer values of small order give the all-zero secret: refused (PROTOCOL.md
 * §4.10), although the peer key is no longer put through public_check. */
static void test_x25519_low_order_refused(void **st)
{
    (void)st;
    static const char *const low[] = {
        "0000000000000000000000000000000000000000000000000000000000000000", /* 0 */
        "0100000000000000000000000000000000000000000000000000000000000000", /* 1 */
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", /* order 8 */
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", /* order 8 */
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1 */
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p */
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p + 1 */
    };
    uint8_t a[32], pub[32], peer[32], shared[32];
    veil_pkey *k = NULL;
    test_unhex(ALICE_PRIV, a, 32);
    assert_int_equal(veil_x25519_keypair(a, pub, &k), 0);
    for (size_t i = 0; i < sizeof(low) / sizeof(low[0]); i++) {
        test_unhex(low[i], peer, 32);
        assert_int_equal(veil_x25519_derive_key(k, peer, shared), VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER));
    }
    veil_pkey_free(k);
}

/* The import context is shared by every thread: derive concurrently. */
#define X_THREADS 4
#define X_ROUNDS 40

static void *x25519_worker(void *arg)
{
    uint8_t a[32], b_pub[32], want[32], pub[32], shared[32];
    bool *ok = arg;
    test_unhex(ALICE_PRIV, a, 32);
    test_unhex(BOB_PUB, b_pub, 32);
    test_unhex(SHARED, want, 32);
    *ok = true;
    for (int i = 0; i < X_ROUNDS; i++) {
        veil_pkey *k = NULL;
        if (veil_x25519_keypair(a, pub, &k) != 0 || veil_x25519_derive_key(k, b_pub, shared) != 0 ||
            memcmp(shared, want, 32) != 0)
            *ok = false;
        veil_pkey_free(k);
    }
    return NULL;
}

static void test_x25519_threads(void **st)
{
    (void)st;
    pthread_t t[X_THREADS];
    bool ok[X_THREADS];
    for (int i = 0; i < X_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, x25519_worker, &ok[i]), 0);
    for (int i = 0; i < X_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_true(ok[i]);
    }
}

static int setup(void **st)
{
    (void)st;
    ed_id = test_identity("identity");
    return veil_identity_generate_rsa(2048, &rsa_id);
}

static int teardown(void **st)
{
    (void)st;
    veil_identity_free(ed_id);
    veil_identity_free(rsa_id);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffdhe),
        cmocka_unit_test(test_rsa_pss_identity),
        cmocka_unit_test(test_rsa_transport),
        cmocka_unit_test(test_rsa_transport_needs_rsa_key),
        cmocka_unit_test(test_tampered_variants),
        cmocka_unit_test(test_group_downgrade),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_service_stripped),
        cmocka_unit_test(test_rsa_transport_observed),
        cmocka_unit_test(test_rsa_identity_pem),
        cmocka_unit_test(test_x25519_rfc7748),
        cmocka_unit_test(test_x25519_low_order_refused),
        cmocka_unit_test(test_x25519_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
