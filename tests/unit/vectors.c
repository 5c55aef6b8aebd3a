/*
 * vectors.c - the test vectors of docs/PROTOCOL.md §12.
 *
 *   veil-vectors                 prints the vectors (Markdown)
 *   veil-vectors --check FILE    exit 0 iff FILE's vector block equals them
 *   veil-vectors --update FILE   rewrites FILE's vector block
 *
 * A whole session is run in memory with the deterministic RNG; every record
 * on the wire is printed, and the key schedule is recomputed step by step
 * from the printed inputs with the primitives alone, and must agree with
 * what the connection used (the keylog and the decrypted records).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "rsa_vector.h"
#include "veil_internal.h"

#define BEGIN_MARK "<!-- BEGIN TEST VECTORS -->"
#define END_MARK "<!-- END TEST VECTORS -->"

static veil_buf text;

__attribute__((format(printf, 1, 2))) static void out(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || veil_buf_append(&text, line, (size_t)n) != 0)
        abort();
}

static void hexblock(const char *name, const uint8_t *p, size_t n)
{
    out("%s (%zu bytes):\n```\n", name, n);
    for (size_t i = 0; i < n; i += 32) {
        char h[65];
        veil_hex(p + i, n - i < 32 ? n - i : 32, h);
        out("%s\n", h);
    }
    out("```\n");
}

static void hexline(const char *name, const uint8_t *p, size_t n)
{
    char h[2 * 64 + 1];
    veil_hex(p, n, h);
    out("- %s: `%s`\n", name, h);
}

static const char *record_name(const uint8_t *rec)
{
    static char name[64];
    uint8_t type = rec[3];
    if (type == VEIL_REC_HANDSHAKE && !(rec[4] & VEIL_FLAG_ENCRYPTED))
        snprintf(name, sizeof(name), "handshake %s", veil_hs_type_name(rec[VEIL_HEADER_LEN]));
    else
        snprintf(name, sizeof(name), "%s%s", veil_record_type_name(type),
                 rec[4] & VEIL_FLAG_ENCRYPTED ? " (encrypted)" : "");
    return name;
}

/* Recomputes the schedule from raw inputs with HKDF alone and prints it. */
static void schedule(const uint8_t c_rand[32], const uint8_t c_eph[32], const uint8_t s_eph[32], const test_wire *w,
                     uint16_t suite, uint16_t group, const endpoint *c)
{
    uint8_t s_pub[VEIL_FFDHE_LEN], shared[VEIL_FFDHE_LEN], shared2[VEIL_FFDHE_LEN], c_pub[VEIL_FFDHE_LEN];
    size_t n = group == VEIL_GROUP_FFDHE2048 ? VEIL_FFDHE_LEN : VEIL_X25519_LEN;
    veil_hash_ctx *h;
    uint8_t th1[32], th2[32], hs[32], c_hs[32], s_hs[32], cfk[32], sfk[32], c_ap[32], s_ap[32];
    uint8_t zero[32] = {0};

    if (group == VEIL_GROUP_FFDHE2048) {
        assert_int_equal(veil_ffdhe_public(c_eph, c_pub), 0);
        assert_int_equal(veil_ffdhe_public(s_eph, s_pub), 0);
        assert_int_equal(veil_ffdhe_derive(c_eph, c_pub, s_pub, shared), 0);
        assert_int_equal(veil_ffdhe_derive(s_eph, s_pub, c_pub, shared2), 0);
        assert_memory_equal(shared, shared2, n);
        hexblock("FFDHE-2048 shared secret g^xy mod p", shared, n);
    } else {
        assert_int_equal(veil_x25519_public(c_eph, c_pub), 0);
        assert_int_equal(veil_x25519_public(s_eph, s_pub), 0);
        assert_int_equal(veil_x25519_derive(c_eph, s_pub, shared), 0);
        assert_int_equal(veil_x25519_derive(s_eph, c_pub, shared2), 0);
        assert_memory_equal(shared, shared2, n);
        hexline("X25519 shared secret", shared, n);
    }

    /* Transcript: handshake messages are the contents of records 0..3 (CH, SH, SV, SF). */
    assert_int_equal(veil_hash_new(&h), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(veil_hash_update(h, w->rec[i] + VEIL_HEADER_LEN, w->len[i] - VEIL_HEADER_LEN - 4), 0);
        if (i == 1)
            assert_int_equal(veil_hash_peek(h, th1), 0);
    }
    assert_int_equal(veil_hash_peek(h, th2), 0);
    veil_hash_free(h);
    hexline("th1 = H(CH||SH)", th1, 32);
    hexline("th2 = H(CH||SH||SV||SF)", th2, 32);

    assert_int_equal(veil_hkdf_extract(zero, 32, shared, n, hs), 0);
    hexline("hs = HKDF-Extract(0^32, shared)", hs, 32);
    assert_int_equal(veil_expand_label(hs, "c hs", th1, 32, c_hs, 32), 0);
    assert_int_equal(veil_expand_label(hs, "s hs", th1, 32, s_hs, 32), 0);
    assert_int_equal(veil_expand_label(c_hs, "finished", NULL, 0, cfk, 32), 0);
    assert_int_equal(veil_expand_label(s_hs, "finished", NULL, 0, sfk, 32), 0);
    assert_int_equal(veil_expand_label(hs, "c ap", th2, 32, c_ap, 32), 0);
    assert_int_equal(veil_expand_label(hs, "s ap", th2, 32, s_ap, 32), 0);
    hexline("c_hs", c_hs, 32);
    hexline("s_hs", s_hs, 32);
    hexline("c_finished_key", cfk, 32);
    hexline("s_finished_key", sfk, 32);
    hexline("c_ap_0 (client -> server traffic secret)", c_ap, 32);
    hexline("s_ap_0 (server -> client traffic secret)", s_ap, 32);

    /* The Finished MACs on the wire are what the schedule says. */
    uint8_t mac[32];
    {
        veil_hash_ctx *h3;
        uint8_t th_sv[32];
        assert_int_equal(veil_hash_new(&h3), 0);
        for (int i = 0; i < 3; i++)
            assert_int_equal(veil_hash_update(h3, w->rec[i] + VEIL_HEADER_LEN, w->len[i] - VEIL_HEADER_LEN - 4), 0);
        assert_int_equal(veil_hash_peek(h3, th_sv), 0);
        veil_hash_free(h3);
        assert_int_equal(veil_hmac_sha256(sfk, 32, th_sv, 32, mac), 0);
        assert_memory_equal(mac, w->rec[3] + VEIL_HEADER_LEN + 4, 32);
        assert_int_equal(veil_hmac_sha256(cfk, 32, th2, 32, mac), 0);
        assert_memory_equal(mac, w->rec[4] + VEIL_HEADER_LEN + 4, 32);
    }

    /* Keys of each direction. */
    const uint8_t *secrets[2] = {c_ap, s_ap};
    const char *names[2] = {"client -> server", "server -> client"};
    for (int d = 0; d < 2; d++) {
        uint8_t key[32], iv[12], mk[32];
        char label[96];
        assert_int_equal(veil_expand_label(secrets[d], "key", NULL, 0, key, 32), 0);
        snprintf(label, sizeof(label), "%s key", names[d]);
        hexline(label, key, 32);
        if (veil_suite_is_cbc(suite)) {
            assert_int_equal(veil_expand_label(secrets[d], "mac", NULL, 0, mk, 32), 0);
            snprintf(label, sizeof(label), "%s mac_key", names[d]);
            hexline(label, mk, 32);
        } else {
            assert_int_equal(veil_expand_label(secrets[d], "iv", NULL, 0, iv, 12), 0);
            snprintf(label, sizeof(label), "%s iv", names[d]);
            hexline(label, iv, 12);
        }
    }

    /* The keylog the client wrote carries exactly these secrets. */
    char line[160];
    assert_int_equal(c->n_keylog, 2);
    veil_keylog_format(VEIL_KEYLOG_CLIENT_TRAFFIC, c_rand, c_ap, line);
    assert_string_equal(line, c->keylog[0]);
    veil_keylog_format(VEIL_KEYLOG_SERVER_TRAFFIC, c_rand, s_ap, line);
    assert_string_equal(line, c->keylog[1]);
    out("\nKeylog lines written by both endpoints (§9):\n```\n%s\n%s\n```\n", c->keylog[0], c->keylog[1]);
    veil_memzero(hs, sizeof(hs));
}

/* One session: handshake, "hello, veil" from the client, an ack, close both ways. */
static void session(uint16_t suite, uint16_t group, uint8_t mode, const char *title, bool full)
{
    static test_wire w;
    endpoint c, s;
    veil_identity *id = test_identity("identity");
    memset(&w, 0, sizeof(w));
    test_groups = &group;
    test_n_groups = 1;
    endpoint_client(&c, mode, suite, "client");
    endpoint_server(&s, VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT, id, "server");
    test_groups = NULL;
    test_n_groups = 0;
    assert_int_equal(veil_conn_start(c.conn, &c.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_true(c.done && s.done);
    const char hello[] = "hello, veil";
    assert_int_equal(veil_conn_send(c.conn, VEIL_MSG_TEXT, 1700000000000u, (const uint8_t *)hello,
                                    sizeof(hello) - 1, &c.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_int_equal(veil_conn_send(s.conn, VEIL_MSG_ACK, 1700000000001u, (const uint8_t *)"ok", 2, &s.out), 0);
    assert_int_equal(veil_conn_close(c.conn, &c.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_int_equal(veil_conn_close(s.conn, &s.out), 0);
    pump(&c, &s, test_capture, &w);
    assert_true(s.peer_closed && c.peer_closed);
    assert_int_equal(s.n_msgs, 1);
    assert_string_equal(s.msgs[0], hello);

    out("\n### %s\n\n", title);
    if (full) {
        /* Inputs: the first draws of each side's RNG, in the order the code draws them. */
        test_rng r;
        uint8_t c_rand[32], c_eph[32], s_rand[32], s_eph[32], seed[32];
        test_rng_init(&r, "identity");
        test_rng_cb(&r, seed, 32);
        test_rng_init(&r, "client");
        test_rng_cb(&r, c_rand, 32);
        test_rng_cb(&r, c_eph, 32);
        test_rng_init(&r, "server");
        test_rng_cb(&r, s_rand, 32);
        test_rng_cb(&r, s_eph, 32);
        out("Inputs (random values fixed for the vectors; real endpoints draw them from the OS):\n\n");
        hexline("server identity Ed25519 private key (seed)", seed, 32);
        uint8_t fp[32];
        veil_identity_fingerprint(id, fp);
        hexline("server identity fingerprint = SHA-256(SPKI DER)", fp, 32);
        hexline("client random", c_rand, 32);
        hexline(group == VEIL_GROUP_FFDHE2048 ? "client FFDHE-2048 private exponent" : "client X25519 private key", c_eph, 32);
        hexline("server random", s_rand, 32);
        hexline(group == VEIL_GROUP_FFDHE2048 ? "server FFDHE-2048 private exponent" : "server X25519 private key", s_eph, 32);
        out("- message: kind text, timestamp 1700000000000 ms, payload \"hello, veil\"; ack \"ok\" at 1700000000001\n");
        if (veil_suite_is_cbc(suite))
            out("- The CBC suite also draws each record's IV from the sending side's stream.\n");
        out("\nKey schedule (§5):\n\n");
        schedule(c_rand, c_eph, s_eph, &w, suite, group, &c);
    }
    out("\nRecords on the wire, in order (C = client to server, S = server to client):\n\n");
    for (int i = 0; i < w.n; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%d. %s %s", i + 1, w.dir[i] == 0 ? "C" : "S", record_name(w.rec[i]));
        hexblock(name, w.rec[i], w.len[i]);
    }

    /* An observer with the keylog recovers the text from these bytes. */
    veil_keylog *kl;
    veil_observer *o;
    assert_int_equal(veil_keylog_new(&kl), 0);
    for (int i = 0; i < c.n_keylog; i++)
        assert_int_equal(veil_keylog_add_line(kl, c.keylog[i], strlen(c.keylog[i])), 0);
    assert_int_equal(veil_observer_new(kl, &o), 0);
    bool seen = false;
    for (int i = 0; i < w.n; i++) {
        veil_observed_record rec;
        assert_int_equal(veil_observer_record(o, w.dir[i], w.rec[i], w.len[i], &rec), 0);
        assert_true(rec.status == VEIL_BODY_PLAINTEXT || rec.status == VEIL_BODY_DECRYPTED);
        assert_int_equal(rec.parse_error, 0);
        assert_true(rec.seq_ok);
        if (rec.hdr.type == VEIL_REC_APPDATA && rec.dir == 0) {
            assert_int_equal(rec.msg_len, sizeof(hello) - 1);
            assert_memory_equal(rec.msg_data, hello, rec.msg_len);
            seen = true;
        }
    }
    assert_true(seen);
    veil_observer_free(o);
    veil_keylog_free(kl);
    endpoint_free(&c);
    endpoint_free(&s);
    veil_identity_free(id);
}

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* §12.6: fixed RSA values (made with the openssl tool); libproto must decrypt
 * the OAEP ciphertext and verify the PSS signature, and refuse both changed. */
static void rsa_vectors(void)
{
    veil_identity *id = NULL;
    uint8_t ct[512], sig[512], premaster[32], want_pm[32], th1[32], msg[VEIL_SIG_MSG_LEN];
    assert_int_equal(veil_identity_from_pem(rsa_vector_key_pem, strlen(rsa_vector_key_pem), &id), 0);
    size_t ct_len = unhex(rsa_vector_ct_hex, ct, sizeof(ct));
    size_t sig_len = unhex(rsa_vector_sig_hex, sig, sizeof(sig));
    assert_int_equal(veil_sha256((const uint8_t *)"veil rsa vector premaster", 25, want_pm), 0);
    assert_int_equal(veil_sha256((const uint8_t *)"veil rsa vector th1", 19, th1), 0);
    assert_int_equal(veil_pkey_oaep_decrypt(id->key, ct, ct_len, premaster, sizeof(premaster)), 0);
    assert_memory_equal(premaster, want_pm, 32);
    veil_sig_message(th1, msg);
    assert_int_equal(veil_pkey_verify(id->key, msg, sizeof(msg), sig, sig_len), 0);
    ct[100] ^= 1;
    assert_int_equal(veil_pkey_oaep_decrypt(id->key, ct, ct_len, premaster, sizeof(premaster)),
                     VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR));
    ct[100] ^= 1;
    sig[100] ^= 1;
    assert_int_not_equal(veil_pkey_verify(id->key, msg, sizeof(msg), sig, sig_len), 0);
    sig[100] ^= 1;

    out("\n### 12.6 RSA key transport and RSA-PSS (fixed values)\n\n"
        "RSA-OAEP and RSA-PSS are randomised (§6.13 of docs/DESIGN.md), so a whole RSA session\n"
        "cannot be reproduced byte for byte. These values were made once with the openssl\n"
        "command-line tool; an implementation must decrypt and verify them (tests/unit/rsa_vector.h).\n\n");
    out("Server identity (RSA-2048, a test key; never use it):\n```\n%s```\n", rsa_vector_key_pem);
    uint8_t fp[32];
    veil_identity_fingerprint(id, fp);
    hexline("fingerprint = SHA-256(SPKI DER)", fp, 32);
    hexline("premaster secret = SHA-256(\"veil rsa vector premaster\")", want_pm, 32);
    hexblock("ClientKeyExchange ciphertext: RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) of the premaster", ct,
             ct_len);
    hexline("th1 = SHA-256(\"veil rsa vector th1\") (a stand-in for H(CH||SH))", th1, 32);
    hexblock("ServerVerify signature: RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) over the §4.4 message for th1", sig,
             sig_len);

    /* The schedule from the premaster (th_hs = th_ap = H(CH||SH||SV||CKE); a stand-in here). */
    uint8_t th[32], zero[32] = {0}, hs[32], c_ap[32], s_ap[32];
    assert_int_equal(veil_sha256((const uint8_t *)"veil rsa vector th_cke", 22, th), 0);
    assert_int_equal(veil_hkdf_extract(zero, 32, premaster, 32, hs), 0);
    assert_int_equal(veil_expand_label(hs, "c ap", th, 32, c_ap, 32), 0);
    assert_int_equal(veil_expand_label(hs, "s ap", th, 32, s_ap, 32), 0);
    veil_schedule ks;
    assert_int_equal(veil_schedule_handshake(&ks, premaster, 32, NULL, th), 0);
    assert_int_equal(veil_schedule_traffic(&ks, th), 0);
    assert_memory_equal(ks.c_ap, c_ap, 32);
    assert_memory_equal(ks.s_ap, s_ap, 32);
    out("\nKey schedule from this premaster, with th_hs = th_ap = SHA-256(\"veil rsa vector th_cke\") "
        "standing in for H(CH||SH||SV||CKE):\n\n");
    hexline("hs = HKDF-Extract(0^32, premaster)", hs, 32);
    hexline("c_ap_0", c_ap, 32);
    hexline("s_ap_0", s_ap, 32);
    veil_schedule_wipe(&ks);
    veil_identity_free(id);
}

static void generate(void)
{
    veil_buf_init(&text);
    out(BEGIN_MARK "\n");
    out("(generated by `veil-vectors` from tests/unit/vectors.c; do not edit by hand: run\n"
        "`build/tests/veil-vectors --update docs/PROTOCOL.md`; the test `spec.vectors` fails when\n"
        "this block and the code disagree)\n\n");
    out("The deterministic RNG used here: a side's random stream is SHA-256(label || u32 counter)\n"
        "for counter = 0, 1, ..., where label is the side's name (\"client\", \"server\",\n"
        "\"identity\") zero-padded to 16 bytes. Every record below can be reproduced from the inputs.\n");
    const uint16_t x = VEIL_GROUP_X25519, ff = VEIL_GROUP_FFDHE2048;
    session(VEIL_SUITE_AES_256_GCM_SHA256, x, VEIL_MODE_ENCRYPTED, "12.1 Encrypted session, AES_256_GCM_SHA256", true);
    session(VEIL_SUITE_CHACHA20_POLY1305_SHA256, x, VEIL_MODE_ENCRYPTED, "12.2 Encrypted session, CHACHA20_POLY1305_SHA256", true);
    session(VEIL_SUITE_AES_256_CBC_HMAC_SHA256, x, VEIL_MODE_ENCRYPTED, "12.3 Encrypted session, AES_256_CBC_HMAC_SHA256", true);
    session(0, x, VEIL_MODE_PLAINTEXT, "12.4 Plaintext session", false);
    session(VEIL_SUITE_AES_256_GCM_SHA256, ff, VEIL_MODE_ENCRYPTED, "12.5 Encrypted session over FFDHE-2048, AES_256_GCM_SHA256", true);
    rsa_vectors();
    out(END_MARK "\n");
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    veil_buf b;
    veil_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (veil_buf_append(&b, chunk, n) != 0)
            abort();
    fclose(f);
    veil_buf_append(&b, "", 1);
    *len = b.len - 1;
    return (char *)b.base;
}

int main(int argc, char **argv)
{
    /* The cmocka assertions abort the program on any disagreement. */
    if (argc == 1) {
        generate();
        fwrite(text.base, 1, text.len, stdout);
        veil_buf_free(&text);
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "--check") != 0 && strcmp(argv[1], "--update") != 0)) {
        fprintf(stderr, "usage: veil-vectors [--check|--update PROTOCOL.md]\n");
        return 2;
    }
    size_t len;
    char *doc = slurp(argv[2], &len);
    if (doc == NULL) {
        fprintf(stderr, "veil-vectors: cannot read %s\n", argv[2]);
        return 2;
    }
    char *b = strstr(doc, BEGIN_MARK), *e = b != NULL ? strstr(b, END_MARK) : NULL;
    if (b == NULL || e == NULL) {
        fprintf(stderr, "veil-vectors: %s has no vector block (%s ... %s)\n", argv[2], BEGIN_MARK, END_MARK);
        free(doc);
        return 1;
    }
    e += strlen(END_MARK);
    if (*e == '\n')
        e++;
    generate();
    int ret = 0;
    if (strcmp(argv[1], "--check") == 0) {
        if ((size_t)(e - b) == text.len && memcmp(b, text.base, text.len) == 0) {
            printf("docs: test vectors match the code (%zu bytes)\n", text.len);
        } else {
            fprintf(stderr, "veil-vectors: the test vectors in %s differ from what the code produces;\n"
                            "if the wire format changed on purpose, run veil-vectors --update %s\n", argv[2], argv[2]);
            ret = 1;
        }
        free(doc);
        veil_buf_free(&text);
        return ret;
    }
    FILE *f = fopen(argv[2], "wb");
    if (f == NULL || fwrite(doc, 1, (size_t)(b - doc), f) != (size_t)(b - doc) ||
        fwrite(text.base, 1, text.len, f) != text.len || fwrite(e, 1, len - (size_t)(e - doc), f) != len - (size_t)(e - doc) ||
        fclose(f) != 0) {
        fprintf(stderr, "veil-vectors: cannot write %s\n", argv[2]);
        ret = 2;
    } else {
        printf("updated %s\n", argv[2]);
    }
    free(doc);
    veil_buf_free(&text);
    return ret;
}
