/*
 * test_auth.c - user authentication (SCRAM-style, bound to the transcript,
 * mutual; PROTOCOL.md §4.13) and PSK mode (§4.14), with their negatives:
 * wrong password, unknown user (indistinguishable), no verifier on the
 * server, required but missing, server impersonation, wrong and unknown PSK.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"
#include "veil_internal.h"

static veil_identity *ed_id, *rsa_id;
static veil_user_verifier alice_v;
static const uint8_t salt[VEIL_SCRAM_SALT_LEN] = {0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void reset_globals(void)
{
    test_user = test_password = NULL;
    test_psk = NULL;
    test_psk_identity = NULL;
    test_require_user = test_require_psk = 0;
    test_groups = NULL;
    test_n_groups = 0;
    test_client_identity = NULL;
}

typedef struct result {
    int c_err, s_err;
    bool c_done, s_done;
    const char *s_user_ok, *c_user_ok;
    int s_msgs, c_msgs;
} result;

/* Server knows alice (and a PSK for "bob"); runs handshake + one message each way. */
static test_wire *capture_to; /* when set, run() records the wire */
static char last_keylog[2][160];

static result run(uint8_t mode, const char *user, const char *password, const uint8_t *psk, const char *psk_id,
                  const veil_identity *id, const uint16_t *groups, int tamper_server_key)
{
    endpoint c, s;
    result r;
    static uint8_t bob_psk[VEIL_PSK_LEN];
    assert_int_equal(veil_psk_stretch("correct horse", 13, bob_psk), 0);
    test_user = user;
    test_password = password;
    test_psk = psk;
    test_psk_identity = psk_id;
    test_groups = groups;
    test_n_groups = groups != NULL ? 1 : 0;
    endpoint_client(&c, mode, 0, "auth-client");
    test_user = test_password = NULL;
    test_psk = NULL;
    test_psk_identity = NULL;
    endpoint_server(&s, VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT, id, "auth-server");
    s.user_names[0] = "alice";
    s.verifiers[0] = alice_v;
    if (tamper_server_key)
        s.verifiers[0].server_key[0] ^= 1; /* a server that does not really hold alice's verifier */
    s.n_users = 1;
    s.psk_ids[0] = "bob";
    memcpy(s.psks[0], bob_psk, VEIL_PSK_LEN);
    s.n_psks = 1;
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    tamper_fn fn = capture_to != NULL ? test_capture : NULL;
    pump(&c, &s, fn, capture_to);
    if (c.done && c.err == 0)
        assert_int_equal(veil_conn_send(c.conn, VEIL_MSG_TEXT, 1, (const uint8_t *)"hi", 2, &c.out), 0);
    pump(&c, &s, fn, capture_to);
    if (s.done && s.err == 0)
        assert_int_equal(veil_conn_send(s.conn, VEIL_MSG_ACK, 2, (const uint8_t *)"ok", 2, &s.out), 0);
    pump(&c, &s, fn, capture_to);
    memcpy(last_keylog, c.keylog, sizeof(last_keylog));
    memset(&r, 0, sizeof(r));
    r.c_err = c.err;
    r.s_err = s.err;
    r.c_done = c.done;
    r.s_done = s.done;
    r.s_msgs = s.n_msgs;
    r.c_msgs = c.n_msgs;
    static char su[80], cu[80];
    const char *x = veil_conn_user(s.conn) != NULL ? veil_conn_user(s.conn) : veil_conn_psk_identity(s.conn);
    const char *y = veil_conn_user(c.conn) != NULL ? veil_conn_user(c.conn) : veil_conn_psk_identity(c.conn);
    snprintf(su, sizeof(su), "%s", x != NULL ? x : "");
    snprintf(cu, sizeof(cu), "%s", y != NULL ? y : "");
    r.s_user_ok = su;
    r.c_user_ok = cu;
    endpoint_free(&c);
    endpoint_free(&s);
    reset_globals();
    return r;
}

static const uint16_t g_rsa[] = {VEIL_GROUP_RSA_TRANSPORT};
static const uint16_t g_ff[] = {VEIL_GROUP_FFDHE2048};

static void test_user_ok(void **st)
{
    (void)st;
    const uint8_t modes[2] = {VEIL_MODE_ENCRYPTED, VEIL_MODE_PLAINTEXT};
    for (int m = 0; m < 2; m++) {
        result r = run(modes[m], "alice", "s3cret pw", NULL, NULL, ed_id, NULL, 0);
        assert_int_equal(r.c_err, 0);
        assert_int_equal(r.s_err, 0);
        assert_string_equal(r.s_user_ok, "alice");
        assert_string_equal(r.c_user_ok, "alice"); /* the server proved it holds the verifier */
        assert_int_equal(r.s_msgs, 1);
        assert_int_equal(r.c_msgs, 1);
        /* RSA transport flow: ClientAuth after the client Finished, ServerAuth after the server's. */
        r = run(modes[m], "alice", "s3cret pw", NULL, NULL, rsa_id, g_rsa, 0);
        assert_int_equal(r.c_err, 0);
        assert_int_equal(r.s_err, 0);
        assert_string_equal(r.s_user_ok, "alice");
        assert_int_equal(r.c_msgs, 1);
    }
}

static void test_wrong_password_and_unknown_user(void **st)
{
    (void)st;
    result r = run(VEIL_MODE_ENCRYPTED, "alice", "wrong", NULL, NULL, ed_id, NULL, 0);
    assert_int_equal(r.s_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED));
    assert_int_equal(r.c_err, VEIL_ERR_PEER_ALERT(VEIL_ALERT_AUTH_FAILED));
    assert_int_equal(r.s_msgs, 0);
    assert_false(r.s_done);
    assert_string_equal(r.s_user_ok, "");

    r = run(VEIL_MODE_ENCRYPTED, "mallory", "anything", NULL, NULL, ed_id, NULL, 0);
    assert_int_equal(r.s_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED)); /* same code as a wrong password */
    assert_int_equal(r.c_err, VEIL_ERR_PEER_ALERT(VEIL_ALERT_AUTH_FAILED));
    assert_int_equal(r.s_msgs, 0);
}

typedef struct salts {
    uint8_t salt[VEIL_SCRAM_SALT_LEN];
    uint32_t iter;
} salts;

static int grab_salt(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap)
{
    salts *sl = ctx;
    (void)cap;
    (void)index;
    if (dir == 1 && rec[3] == VEIL_REC_HANDSHAKE && rec[VEIL_HEADER_LEN] == VEIL_HS_SERVER_HELLO) {
        veil_server_hello sh;
        const uint8_t *d;
        uint16_t n;
        assert_int_equal(veil_server_hello_decode(rec + VEIL_HEADER_LEN + 4, *len - VEIL_HEADER_LEN - 8, &sh), 0);
        assert_true(veil_ext_find(sh.ext, sh.ext_len, VEIL_EXT_USER, &d, &n));
        assert_int_equal(n, VEIL_SCRAM_SALT_LEN + 4);
        memcpy(sl->salt, d, VEIL_SCRAM_SALT_LEN);
        sl->iter = veil_get_u32(d + VEIL_SCRAM_SALT_LEN);
    }
    return 0;
}

static salts salt_for(const char *user)
{
    endpoint c, s;
    salts sl;
    memset(&sl, 0, sizeof(sl));
    test_user = user;
    test_password = "x";
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "auth-client");
    reset_globals();
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, ed_id, "auth-server");
    s.user_names[0] = "alice";
    s.verifiers[0] = alice_v;
    s.n_users = 1;
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, grab_salt, &sl);
    endpoint_free(&c);
    endpoint_free(&s);
    return sl;
}

/* An unknown user gets a stable decoy salt, so probing cannot tell users apart. */
static void test_decoy(void **st)
{
    (void)st;
    salts a = salt_for("alice"), m1 = salt_for("mallory"), m2 = salt_for("mallory"), t = salt_for("trent");
    assert_memory_equal(a.salt, salt, VEIL_SCRAM_SALT_LEN);
    assert_int_equal(a.iter, VEIL_SCRAM_MIN_ITERATIONS);
    assert_memory_equal(m1.salt, m2.salt, VEIL_SCRAM_SALT_LEN);
    assert_memory_not_equal(m1.salt, t.salt, VEIL_SCRAM_SALT_LEN);
    assert_int_equal(m1.iter, VEIL_SCRAM_DEFAULT_ITERATIONS);
}

static void test_server_impersonation(void **st)
{
    (void)st;
    /* A server with a wrong ServerKey: the client's check of ServerAuth fails. */
    result r = run(VEIL_MODE_ENCRYPTED, "alice", "s3cret pw", NULL, NULL, ed_id, NULL, 1);
    assert_int_equal(r.c_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED));
    assert_int_equal(r.c_msgs, 0);
    assert_string_equal(r.c_user_ok, "");
}

static void test_required(void **st)
{
    (void)st;
    test_require_user = 1;
    result r = run(VEIL_MODE_ENCRYPTED, NULL, NULL, NULL, NULL, ed_id, NULL, 0);
    assert_int_equal(r.s_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED));
    test_require_psk = 1;
    r = run(VEIL_MODE_ENCRYPTED, NULL, NULL, NULL, NULL, ed_id, NULL, 0);
    assert_int_equal(r.s_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED));
    assert_int_equal(r.c_err, VEIL_ERR_PEER_ALERT(VEIL_ALERT_AUTH_FAILED));
}

static void test_psk_mode(void **st)
{
    (void)st;
    uint8_t good[VEIL_PSK_LEN], bad[VEIL_PSK_LEN];
    assert_int_equal(veil_psk_stretch("correct horse", 13, good), 0);
    assert_int_equal(veil_psk_stretch("correct horsf", 13, bad), 0);
    const uint8_t modes[2] = {VEIL_MODE_ENCRYPTED, VEIL_MODE_PLAINTEXT};
    for (int m = 0; m < 2; m++) {
        result r = run(modes[m], NULL, NULL, good, "bob", ed_id, NULL, 0);
        assert_int_equal(r.c_err, 0);
        assert_int_equal(r.s_err, 0);
        assert_string_equal(r.s_user_ok, "bob");
        assert_string_equal(r.c_user_ok, "bob");
        assert_int_equal(r.s_msgs, 1);
        r = run(modes[m], NULL, NULL, good, "bob", ed_id, g_ff, 0);
        assert_int_equal(r.s_msgs, 1);
        /* Wrong secret: the server's Finished does not verify; both sides fail. */
        r = run(modes[m], NULL, NULL, bad, "bob", ed_id, NULL, 0);
        assert_int_equal(r.c_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED));
        assert_int_equal(r.s_err, VEIL_ERR_PEER_ALERT(VEIL_ALERT_AUTH_FAILED));
        assert_false(r.s_done);
        assert_int_equal(r.s_msgs, 0);
        /* Unknown identity. */
        r = run(modes[m], NULL, NULL, good, "eve", ed_id, NULL, 0);
        assert_int_equal(r.s_err, VEIL_PERR(VEIL_ALERT_AUTH_FAILED));
        assert_int_equal(r.c_err, VEIL_ERR_PEER_ALERT(VEIL_ALERT_AUTH_FAILED));
    }
    /* The PSK changes the keys: a session with it is not the session without. */
    uint8_t ikm[32] = {9}, th[32] = {7};
    veil_schedule a, b;
    assert_int_equal(veil_schedule_handshake(&a, ikm, 32, NULL, th), 0);
    assert_int_equal(veil_schedule_handshake(&b, ikm, 32, good, th), 0);
    assert_memory_not_equal(a.hs, b.hs, 32);
    uint8_t hs[32];
    assert_int_equal(veil_hkdf_extract(good, 32, ikm, 32, hs), 0);
    assert_memory_equal(b.hs, hs, 32);
}

/* Mutual authentication by keys: the client signs th_ap with its identity. */
static void sig_session(const veil_identity *cid, const veil_identity *sid, const uint16_t *groups, bool pin_wrong,
                        int want_s_err)
{
    endpoint c, s;
    test_client_identity = cid;
    test_groups = groups;
    test_n_groups = groups != NULL ? 1 : 0;
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "auth-client");
    test_client_identity = NULL;
    test_require_client_identity = 1;
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, sid, "auth-server");
    reset_globals();
    test_require_client_identity = 0;
    if (pin_wrong) {
        s.pin = true;
        memset(s.pinned, 0x11, sizeof(s.pinned));
    }
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, NULL, NULL);
    assert_int_equal(s.err, want_s_err);
    if (want_s_err == 0) {
        uint8_t fp[32], want[32];
        assert_true(s.done && c.done);
        assert_int_equal(veil_conn_peer_fingerprint(s.conn, fp), 0);
        veil_identity_fingerprint(cid, want);
        assert_memory_equal(fp, want, 32);
        assert_int_equal(veil_conn_send(c.conn, VEIL_MSG_TEXT, 1, (const uint8_t *)"signed", 6, &c.out), 0);
        pump(&c, &s, NULL, NULL);
        assert_int_equal(s.n_msgs, 1);
    } else {
        assert_false(s.done);
        assert_int_equal(c.err, VEIL_ERR_PEER_ALERT(-want_s_err));
    }
    endpoint_free(&c);
    endpoint_free(&s);
}

static int flip_cv(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap)
{
    (void)ctx;
    (void)cap;
    (void)index;
    if (dir == 0 && rec[3] == VEIL_REC_HANDSHAKE && !(rec[4] & VEIL_FLAG_ENCRYPTED) &&
        rec[VEIL_HEADER_LEN] == VEIL_HS_CLIENT_VERIFY) {
        rec[*len - 8] ^= 0x01; /* inside the signature */
        fix_crc(rec, *len);
    }
    return 0;
}

static void test_client_signature(void **st)
{
    (void)st;
    veil_identity *alice_key = test_identity("alice-key");
    sig_session(alice_key, ed_id, NULL, false, 0);
    sig_session(rsa_id, ed_id, NULL, false, 0);         /* an RSA client key: RSA-PSS */
    sig_session(alice_key, rsa_id, g_rsa, false, 0);    /* with RSA key transport */
    sig_session(alice_key, ed_id, g_ff, false, 0);
    sig_session(alice_key, ed_id, NULL, true, VEIL_PERR(VEIL_ALERT_UNTRUSTED_IDENTITY)); /* unknown key */
    sig_session(NULL, ed_id, NULL, false, VEIL_PERR(VEIL_ALERT_UNTRUSTED_IDENTITY));     /* does not sign */

    /* A tampered signature does not verify. */
    endpoint c, s;
    test_client_identity = alice_key;
    endpoint_client(&c, VEIL_MODE_ENCRYPTED, 0, "auth-client");
    reset_globals();
    endpoint_server(&s, VEIL_MODE_ENCRYPTED, ed_id, "auth-server");
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, flip_cv, NULL);
    assert_int_equal(s.err, VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR));
    assert_false(s.done);
    endpoint_free(&c);
    endpoint_free(&s);
    veil_identity_free(alice_key);
}

typedef struct obs_count {
    int decrypted, failed;
} obs_count;

static int count_rec(void *user, const veil_observed_record *r)
{
    obs_count *n = user;
    n->decrypted += r->status == VEIL_BODY_DECRYPTED;
    n->failed += r->status == VEIL_BODY_AUTH_FAILED;
    return 0;
}

/* RSA transport in PSK mode: the server key alone is not enough (the PSK salts
 * the schedule); the observer then uses the keylog instead. */
static void test_observer_rsa_psk(void **st)
{
    (void)st;
    static test_wire w;
    uint8_t good[VEIL_PSK_LEN];
    memset(&w, 0, sizeof(w));
    assert_int_equal(veil_psk_stretch("correct horse", 13, good), 0);
    capture_to = &w;
    result r = run(VEIL_MODE_ENCRYPTED, NULL, NULL, good, "bob", rsa_id, g_rsa, 0);
    capture_to = NULL;
    assert_int_equal(r.s_msgs, 1);
    for (int with_keylog = 0; with_keylog < 2; with_keylog++) {
        veil_keylog *kl;
        veil_observer *o;
        obs_count n = {0, 0};
        assert_int_equal(veil_keylog_new(&kl), 0);
        if (with_keylog)
            for (int i = 0; i < 2; i++)
                assert_int_equal(veil_keylog_add_line(kl, last_keylog[i], strlen(last_keylog[i])), 0);
        assert_int_equal(veil_observer_new(kl, &o), 0);
        veil_observer_set_rsa_identity(o, rsa_id);
        for (int i = 0; i < w.n; i++)
            assert_int_equal(veil_observer_feed(o, w.dir[i], w.rec[i], w.len[i], count_rec, &n), 0);
        assert_int_equal(n.failed, 0);
        if (with_keylog)
            assert_true(n.decrypted >= 2);
        else
            assert_int_equal(n.decrypted, 0);
        veil_observer_free(o);
        veil_keylog_free(kl);
    }
}

/* The verifier is SCRAM's: recomputed here with OpenSSL directly. */
static void test_verifier(void **st)
{
    (void)st;
    uint8_t salted[32], ck[32], stored[32], sk[32];
    unsigned len = 32;
    assert_int_equal(PKCS5_PBKDF2_HMAC("s3cret pw", 9, salt, sizeof(salt), VEIL_SCRAM_MIN_ITERATIONS, EVP_sha256(),
                                       32, salted), 1);
    assert_non_null(HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Client Key", 10, ck, &len));
    assert_int_equal(EVP_Digest(ck, 32, stored, NULL, EVP_sha256(), NULL), 1);
    assert_non_null(HMAC(EVP_sha256(), salted, 32, (const uint8_t *)"Server Key", 10, sk, &len));
    assert_memory_equal(alice_v.stored_key, stored, 32);
    assert_memory_equal(alice_v.server_key, sk, 32);
    veil_user_verifier v;
    assert_int_equal(veil_user_verifier_make("x", 1, salt, VEIL_SCRAM_MIN_ITERATIONS - 1, &v), VEIL_ERR_INVALID_ARG);
    /* Clients refuse bad credentials configuration. */
    veil_config cfg;
    veil_conn *c;
    test_rng r;
    veil_callbacks cb = {.random = test_rng_cb, .user = &r};
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.user_name = "bad name";
    cfg.password = "x";
    assert_int_equal(veil_conn_new(&cfg, &cb, 0, &c), VEIL_ERR_INVALID_ARG);
    cfg.user_name = "alice";
    cfg.password = NULL;
    assert_int_equal(veil_conn_new(&cfg, &cb, 0, &c), VEIL_ERR_INVALID_ARG);
}

static int setup(void **st)
{
    (void)st;
    ed_id = test_identity("identity");
    if (veil_identity_generate_rsa(2048, &rsa_id) != 0)
        return -1;
    return veil_user_verifier_make("s3cret pw", 9, salt, VEIL_SCRAM_MIN_ITERATIONS, &alice_v);
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
        cmocka_unit_test(test_user_ok),
        cmocka_unit_test(test_wrong_password_and_unknown_user),
        cmocka_unit_test(test_decoy),
        cmocka_unit_test(test_server_impersonation),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_psk_mode),
        cmocka_unit_test(test_verifier),
        cmocka_unit_test(test_client_signature),
        cmocka_unit_test(test_observer_rsa_psk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
