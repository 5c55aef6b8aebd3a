/*
 * test_identity.c - server identity keys (Ed25519) and fingerprints
 * (PROTOCOL.md §4.3): generation from the RNG callback, PEM in and out, the
 * fingerprint as OpenSSL computes it, rejected key types, and the hex forms;
 * Ed25519 signatures from the key's prepared signing context (RFC 8032
 * vectors, repeated, after PEM, from several threads).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "harness.h"
#include "veil_internal.h"

static veil_identity *generate(const char *label)
{
    test_rng r;
    veil_identity *id = NULL;
    test_rng_init(&r, label);
    assert_int_equal(veil_identity_generate(test_rng_cb, &r, &id), 0);
    assert_non_null(id);
    return id;
}

static void test_generate_deterministic(void **st)
{
    (void)st;
    uint8_t a[32], b[32], c[32], zero[32] = {0};
    veil_identity *x = generate("alpha"), *y = generate("alpha"), *z = generate("beta");
    veil_identity_fingerprint(x, a);
    veil_identity_fingerprint(y, b);
    veil_identity_fingerprint(z, c);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    assert_memory_not_equal(a, zero, 32);

    /* The key is the Ed25519 key whose seed is the first 32 bytes of the stream. */
    test_rng r;
    uint8_t seed[32], pub[32], want_pub[32];
    size_t n = sizeof(pub);
    test_rng_init(&r, "alpha");
    assert_int_equal(test_rng_cb(&r, seed, 32), 0);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, want_pub, &n), 1);
    EVP_PKEY_free(k);
    /* SPKI DER of Ed25519: 12-byte prefix then the raw public key. */
    static const uint8_t prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    assert_int_equal(x->spki.len, 44);
    assert_memory_equal(x->spki.base, prefix, 12);
    memcpy(pub, x->spki.base + 12, 32);
    assert_memory_equal(pub, want_pub, 32);

    veil_identity_free(x);
    veil_identity_free(y);
    veil_identity_free(z);
    veil_identity_free(NULL);
}

static void test_pem_roundtrip(void **st)
{
    (void)st;
    veil_identity *id = generate("pem"), *back = NULL;
    veil_buf pem, pem2;
    uint8_t a[32], b[32];
    veil_buf_init(&pem);
    veil_buf_init(&pem2);
    assert_int_equal(veil_identity_to_pem(id, &pem), 0);
    assert_true(pem.len > 0);
    static const char head[] = "-----BEGIN PRIVATE KEY-----\n";
    assert_true(pem.len > sizeof(head));
    assert_memory_equal(pem.base, head, sizeof(head) - 1); /* PKCS#8, unencrypted */

    assert_int_equal(veil_identity_from_pem((const char *)pem.base, pem.len, &back), 0);
    veil_identity_fingerprint(id, a);
    veil_identity_fingerprint(back, b);
    assert_memory_equal(a, b, 32);
    /* And out again: the same PEM text. */
    assert_int_equal(veil_identity_to_pem(back, &pem2), 0);
    assert_int_equal(pem2.len, pem.len);
    assert_memory_equal(pem2.base, pem.base, pem.len);

    /* The private key signs, and the public key from the SPKI verifies it. */
    veil_buf sig;
    veil_pkey *pub = NULL;
    const uint8_t msg[] = "message";
    veil_buf_init(&sig);
    assert_int_equal(veil_pkey_sign(back->key, msg, sizeof(msg), &sig), 0);
    assert_int_equal(sig.len, 64);
    assert_int_equal(veil_pkey_from_spki(id->spki.base, id->spki.len, &pub), 0);
    assert_int_equal(veil_pkey_verify(pub, msg, sizeof(msg), sig.base, sig.len), 0);
    sig.base[0] ^= 1;
    assert_int_equal(veil_pkey_verify(pub, msg, sizeof(msg), sig.base, sig.len), VEIL_ERR_CRYPTO);
    veil_pkey_free(pub);
    veil_buf_free(&sig);

    veil_buf_free(&pem);
    veil_buf_free(&pem2);
    veil_identity_free(id);
    veil_identity_free(back);
}

/* veil_pkey_from_spki's Ed25519 shortcut gives the key OpenSSL's decoder
 * gives (same public key, same SPKI out); anything else goes to the decoder,
 * which refuses a damaged prefix, a wrong length or trailing bytes. */
static void test_spki_ed25519_shortcut(void **st)
{
    (void)st;
    veil_identity *id = generate("spki");
    const uint8_t *der = id->spki.base;
    assert_int_equal(id->spki.len, 44);

    veil_pkey *fast = NULL;
    assert_int_equal(veil_pkey_from_spki(der, 44, &fast), 0);
    assert_true(veil_pkey_is_ed25519(fast));
    veil_buf a, b;
    veil_buf_init(&a);
    veil_buf_init(&b);
    assert_int_equal(veil_pkey_spki(fast, &a), 0);
    const unsigned char *p = der;
    EVP_PKEY *ref = d2i_PUBKEY(NULL, &p, 44);
    assert_non_null(ref);
    unsigned char *out = NULL;
    int n = i2d_PUBKEY(ref, &out);
    assert_int_equal(n, 44);
    assert_memory_equal(a.base, out, 44);
    assert_memory_equal(a.base, der, 44);
    OPENSSL_free(out);
    EVP_PKEY_free(ref);

    /* It verifies what the private key signed, and nothing else. */
    const uint8_t msg[] = "shortcut";
    assert_int_equal(veil_pkey_sign(id->key, msg, sizeof(msg), &b), 0);
    assert_int_equal(veil_pkey_verify(fast, msg, sizeof(msg), b.base, b.len), 0);
    b.base[10] ^= 0x40;
    assert_int_equal(veil_pkey_verify(fast, msg, sizeof(msg), b.base, b.len), VEIL_ERR_CRYPTO);
    veil_pkey_free(fast);

    /* Any other encoding is the decoder's to judge, exactly as before the
     * shortcut: the same verdict as d2i_PUBKEY (which, for one, tolerates a
     * BIT STRING that claims an unused bit). */
    uint8_t bad[45];
    veil_pkey *k = NULL;
    int refused = 0;
    for (size_t i = 0; i < 12; i++) {
        memcpy(bad, der, 44);
        bad[i] ^= 0x01;
        p = bad;
        EVP_PKEY *want = d2i_PUBKEY(NULL, &p, 44);
        int r = veil_pkey_from_spki(bad, 44, &k);
        assert_int_equal(r == 0, want != NULL && p == bad + 44);
        refused += r != 0;
        veil_pkey_free(k);
        k = NULL;
        EVP_PKEY_free(want);
    }
    assert_true(refused >= 11);
    memcpy(bad, der, 44);
    bad[44] = 0;
    assert_int_not_equal(veil_pkey_from_spki(bad, 45, &k), 0); /* trailing byte */
    assert_int_not_equal(veil_pkey_from_spki(der, 43, &k), 0); /* short */
    assert_null(k);

    veil_buf_free(&a);
    veil_buf_free(&b);
    veil_identity_free(id);
}

/* fingerprint == SHA-256(DER SPKI), i.e. `openssl pkey -pubout -outform DER | sha256sum`. */
static void test_fingerprint_is_openssl_spki_hash(void **st)
{
    (void)st;
    veil_identity *id = generate("openssl");
    veil_buf pem;
    veil_buf_init(&pem);
    assert_int_equal(veil_identity_public_pem(id, &pem), 0);
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
    assert_memory_equal(pem.base, head, sizeof(head) - 1);

    BIO *bio = BIO_new_mem_buf(pem.base, (int)pem.len);
    assert_non_null(bio);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_id(k), EVP_PKEY_ED25519);

    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(k, &der);
    assert_true(der_len > 0);
    uint8_t want[32], got[32];
    unsigned int md_len = 0;
    assert_int_equal(EVP_Digest(der, (size_t)der_len, want, &md_len, EVP_sha256(), NULL), 1);
    assert_int_equal(md_len, 32);
    veil_identity_fingerprint(id, got);
    assert_memory_equal(got, want, 32);

    /* The same from the private PEM, as `openssl pkey -in key.pem -pubout` would. */
    veil_buf priv;
    veil_buf_init(&priv);
    assert_int_equal(veil_identity_to_pem(id, &priv), 0);
    bio = BIO_new_mem_buf(priv.base, (int)priv.len);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pk);
    unsigned char *der2 = NULL;
    int der2_len = i2d_PUBKEY(pk, &der2);
    assert_int_equal(der2_len, der_len);
    assert_memory_equal(der2, der, (size_t)der_len);

    OPENSSL_free(der);
    OPENSSL_free(der2);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pk);
    veil_buf_free(&pem);
    veil_buf_free(&priv);
    veil_identity_free(id);
}

static void pem_of(EVP_PKEY *k, int pkcs8, veil_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    assert_non_null(bio);
    if (pkcs8)
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    assert_int_equal(veil_buf_append(out, data, (size_t)n), 0);
    BIO_free(bio);
}

/*
 * Valid private keys of other types: parsed by OpenSSL, refused as identities.
 * RSA is an identity type from 2048 bits on (test_rsa_identity); below that,
 * and RSA-PSS-only keys (which cannot do the OAEP key transport), are not.
 */
static void test_other_key_types_rejected(void **st)
{
    (void)st;
    EVP_PKEY *keys[4];
    keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    keys[3] = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048), 1);
    assert_int_equal(EVP_PKEY_generate(ctx, &keys[3]), 1);
    EVP_PKEY_CTX_free(ctx);
    for (int i = 0; i < 4; i++) {
        assert_non_null(keys[i]);
        for (int pkcs8 = 0; pkcs8 < 2; pkcs8++) {
            veil_buf pem;
            veil_identity *id = NULL;
            veil_buf_init(&pem);
            pem_of(keys[i], pkcs8, &pem);
            assert_int_equal(veil_identity_from_pem((const char *)pem.base, pem.len, &id), VEIL_ERR_KEY_FORMAT);
            assert_null(id);
            veil_buf_free(&pem);
        }
        EVP_PKEY_free(keys[i]);
    }
}

/* SHA-256 of the DER SPKI that OpenSSL derives from a PEM private key. */
static void openssl_fingerprint(const veil_buf *pem, uint8_t fp[32])
{
    BIO *bio = BIO_new_mem_buf(pem->base, (int)pem->len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(k);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    assert_int_equal(EVP_Digest(der, (size_t)n, fp, NULL, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

/* RSA identities (2048..8192 bits): same PEM and fingerprint rules as Ed25519. */
static void test_rsa_identity(void **st)
{
    (void)st;
    veil_identity *id = NULL, *back = NULL, *ed = generate("algo");
    veil_buf pem;
    uint8_t a[32], b[32], want[32];
    assert_string_equal(veil_identity_algorithm(ed), "Ed25519");
    assert_int_equal(veil_identity_generate_rsa(1024, &id), VEIL_ERR_INVALID_ARG);
    assert_int_equal(veil_identity_generate_rsa(8193, &id), VEIL_ERR_INVALID_ARG);
    assert_null(id);
    assert_int_equal(veil_identity_generate_rsa(2048, &id), 0);
    assert_string_equal(veil_identity_algorithm(id), "RSA-2048");
    veil_buf_init(&pem);
    assert_int_equal(veil_identity_to_pem(id, &pem), 0);
    assert_int_equal(veil_identity_from_pem((const char *)pem.base, pem.len, &back), 0);
    assert_string_equal(veil_identity_algorithm(back), "RSA-2048");
    veil_identity_fingerprint(id, a);
    veil_identity_fingerprint(back, b);
    assert_memory_equal(a, b, 32);
    openssl_fingerprint(&pem, want);
    assert_memory_equal(a, want, 32);
    veil_buf_free(&pem);
    veil_identity_free(id);
    veil_identity_free(back);
    veil_identity_free(ed);
}

static void test_garbage_pem_rejected(void **st)
{
    (void)st;
    veil_identity *id = NULL, *good = generate("garbage");
    veil_buf pem, pub;
    veil_buf_init(&pem);
    veil_buf_init(&pub);
    assert_int_equal(veil_identity_to_pem(good, &pem), 0);
    assert_int_equal(veil_identity_public_pem(good, &pub), 0);

    static const char *const junk[] = {
        "",
        "hello",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n!!!!not base64!!!!\n-----END PRIVATE KEY-----\n",
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        assert_int_equal(veil_identity_from_pem(junk[i], strlen(junk[i]), &id), VEIL_ERR_KEY_FORMAT);
        assert_null(id);
    }
    /* A public key is not an identity. */
    assert_int_equal(veil_identity_from_pem((const char *)pub.base, pub.len, &id), VEIL_ERR_KEY_FORMAT);
    /* Truncated in the middle of the base64. */
    assert_int_equal(veil_identity_from_pem((const char *)pem.base, pem.len / 2, &id), VEIL_ERR_KEY_FORMAT);
    /* A changed base64 character inside the DER structure. */
    char *p = strchr((char *)pem.base, '\n');
    assert_non_null(p);
    p[3] = p[3] == 'A' ? 'B' : 'A';
    assert_int_equal(veil_identity_from_pem((const char *)pem.base, pem.len, &id), VEIL_ERR_KEY_FORMAT);
    assert_null(id);

    veil_buf_free(&pem);
    veil_buf_free(&pub);
    veil_identity_free(good);
}

/*
 * Regression: given an encrypted PKCS#8 PEM, libproto used to let OpenSSL
 * prompt for a pass phrase on /dev/tty, or read it from stdin when there is no
 * terminal.  A sans-IO library must not: such a key is a format error.  The
 * child below has no controlling terminal and the right pass phrase waiting on
 * stdin; reading it would make the call succeed.
 */
static void test_encrypted_pem_not_prompted(void **st)
{
    (void)st;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_256_cbc(), "secret", 6, NULL, NULL), 1);
    char *mem, data[1024];
    long n = BIO_get_mem_data(bio, &mem);
    assert_true(n > 0 && (size_t)n < sizeof(data));
    memcpy(data, mem, (size_t)n);
    data[n] = '\0';
    assert_non_null(strstr(data, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fds[2];
        veil_identity *id = NULL;
        alarm(10); /* never hang, whatever happens */
        if (setsid() < 0 || pipe(fds) != 0 || write(fds[1], "secret\n", 7) != 7)
            _exit(3);
        close(fds[1]);
        dup2(fds[0], STDIN_FILENO);
        if (freopen("/dev/null", "w", stderr) == NULL) /* the prompt, if any */
            _exit(3);
        int ret = veil_identity_from_pem(data, (size_t)n, &id);
        veil_identity_free(id);
        _exit(ret == VEIL_ERR_KEY_FORMAT ? 0 : ret == 0 ? 1 : 2);
    }
    int status = 0;
    pid_t waited = waitpid(pid, &status, 0);
    BIO_free(bio);
    EVP_PKEY_free(k);
    assert_int_equal(waited, pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 1)
        print_error("veil_identity_from_pem read the pass phrase from stdin and decrypted the key\n");
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_rng_failure(void **st)
{
    (void)st;
    test_rng r;
    veil_identity *id = NULL;
    test_rng_init(&r, "fail");
    r.fail = true;
    assert_int_equal(veil_identity_generate(test_rng_cb, &r, &id), VEIL_ERR_RNG);
    assert_null(id);
}

static void test_fingerprint_hex(void **st)
{
    (void)st;
    uint8_t fp[32], back[32];
    char hex[VEIL_FINGERPRINT_HEX_LEN], buf[200];
    for (int i = 0; i < 32; i++)
        fp[i] = (uint8_t)(i * 37 + 0x0F);

    memset(hex, 'Z', sizeof(hex));
    veil_fingerprint_hex(fp, hex);
    assert_int_equal(strlen(hex), 64);
    for (int i = 0; i < 64; i++)
        assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    assert_memory_equal(hex, "0f34", 4);
    memset(back, 0, sizeof(back));
    assert_int_equal(veil_fingerprint_parse(hex, back), 0);
    assert_memory_equal(back, fp, 32);

    /* "sha256:" prefix (any case), upper-case digits, colons between bytes. */
    snprintf(buf, sizeof(buf), "sha256:%s", hex);
    memset(back, 0, sizeof(back));
    assert_int_equal(veil_fingerprint_parse(buf, back), 0);
    assert_memory_equal(back, fp, 32);
    snprintf(buf, sizeof(buf), "SHA256:%s", hex);
    memset(back, 0, sizeof(back));
    assert_int_equal(veil_fingerprint_parse(buf, back), 0);
    assert_memory_equal(back, fp, 32);
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = hex[i] >= 'a' && hex[i] <= 'f' ? (char)(hex[i] - 'a' + 'A') : hex[i];
    memset(back, 0, sizeof(back));
    assert_int_equal(veil_fingerprint_parse(upper, back), 0);
    assert_memory_equal(back, fp, 32);
    size_t k = 0;
    for (int i = 0; i < 32; i++) {
        if (i > 0)
            buf[k++] = ':';
        buf[k++] = upper[2 * i];
        buf[k++] = hex[2 * i + 1];
    }
    buf[k] = '\0';
    memset(back, 0, sizeof(back));
    assert_int_equal(veil_fingerprint_parse(buf, back), 0);
    assert_memory_equal(back, fp, 32);
    char prefixed[220];
    snprintf(prefixed, sizeof(prefixed), "sha256:%s", buf);
    memset(back, 0, sizeof(back));
    assert_int_equal(veil_fingerprint_parse(prefixed, back), 0);
    assert_memory_equal(back, fp, 32);

    /* Rejected: 63, 65 and 66 digits, a non-hex digit, empty, a bare prefix, spaces. */
    snprintf(buf, sizeof(buf), "%.63s", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), "%s0", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), "%s00", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), "%.62s", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    for (int pos = 0; pos < 64; pos += 9) {
        snprintf(buf, sizeof(buf), "%s", hex);
        buf[pos] = 'g';
        assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    }
    snprintf(buf, sizeof(buf), "%s", hex);
    buf[63] = ' ';
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), " %s", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), "%s\n", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    assert_int_equal(veil_fingerprint_parse("", back), VEIL_ERR_INVALID_ARG);
    assert_int_equal(veil_fingerprint_parse("sha256:", back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), "sha1:%s", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
    snprintf(buf, sizeof(buf), "md5:%s", hex);
    assert_int_equal(veil_fingerprint_parse(buf, back), VEIL_ERR_INVALID_ARG);
}

/* ---- Ed25519 signatures (RFC 8032 §7.1, tests 1-3) ---- */

static const struct {
    const char *seed, *msg, *sig;
} rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

/* Signs msg with k and compares with the expected 64 bytes. */
static bool sign_matches(const veil_pkey *k, const uint8_t *msg, size_t len, const uint8_t want[64])
{
    veil_buf sig;
    veil_buf_init(&sig);
    bool ok = veil_pkey_sign(k, msg, len, &sig) == 0 && sig.len == 64 && memcmp(sig.base, want, 64) == 0 &&
              veil_pkey_verify(k, msg, len, sig.base, sig.len) == 0;
    veil_buf_free(&sig);
    return ok;
}

static void test_ed25519_rfc8032(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
        uint8_t seed[32], msg[2], want[64];
        size_t msg_len = strlen(rfc8032[i].msg) / 2;
        veil_pkey *k = NULL, *back = NULL;
        veil_buf pem;
        test_unhex(rfc8032[i].seed, seed, 32);
        test_unhex(rfc8032[i].msg, msg, msg_len);
        test_unhex(rfc8032[i].sig, want, 64);
        assert_int_equal(veil_pkey_ed25519_from_seed(seed, &k), 0);
        /* The prepared context is copied, never consumed: the same signature every time. */
        for (int round = 0; round < 3; round++)
            assert_true(sign_matches(k, msg, msg_len, want));
        /* A key loaded from PEM prepares its own context. */
        veil_buf_init(&pem);
        assert_int_equal(veil_pkey_to_pem(k, &pem), 0);
        assert_int_equal(veil_pkey_from_pem((const char *)pem.base, pem.len, &back), 0);
        assert_true(sign_matches(back, msg, msg_len, want));
        /* A signature over another message does not verify. */
        veil_buf sig;
        veil_buf_init(&sig);
        assert_int_equal(veil_pkey_sign(back, (const uint8_t *)"x", 1, &sig), 0);
        assert_int_equal(veil_pkey_verify(k, msg, msg_len, sig.base, sig.len), VEIL_ERR_CRYPTO);
        veil_buf_free(&sig);
        veil_buf_free(&pem);
        veil_pkey_free(back);
        veil_pkey_free(k);
    }
}

/* One identity, shared by every connection, signs from several threads. */
#define SIGN_THREADS 4
#define SIGN_ROUNDS 30

struct sign_job {
    const veil_pkey *k;
    bool ok;
};

static void *sign_worker(void *arg)
{
    struct sign_job *job = arg;
    uint8_t msg[1], want[64];
    test_unhex(rfc8032[1].msg, msg, 1);
    test_unhex(rfc8032[1].sig, want, 64);
    job->ok = true;
    for (int i = 0; i < SIGN_ROUNDS; i++)
        if (!sign_matches(job->k, msg, 1, want))
            job->ok = false;
    return NULL;
}

static void test_ed25519_sign_threads(void **st)
{
    (void)st;
    uint8_t seed[32];
    veil_pkey *k = NULL;
    pthread_t t[SIGN_THREADS];
    struct sign_job jobs[SIGN_THREADS];
    test_unhex(rfc8032[1].seed, seed, 32);
    assert_int_equal(veil_pkey_ed25519_from_seed(seed, &k), 0);
    for (int i = 0; i < SIGN_THREADS; i++) {
        jobs[i].k = k;
        assert_int_equal(pthread_create(&t[i], NULL, sign_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < SIGN_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_true(jobs[i].ok);
    }
    veil_pkey_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_deterministic),
        cmocka_unit_test(test_pem_roundtrip),
        cmocka_unit_test(test_fingerprint_is_openssl_spki_hash),
        cmocka_unit_test(test_spki_ed25519_shortcut),
        cmocka_unit_test(test_other_key_types_rejected),
        cmocka_unit_test(test_rsa_identity),
        cmocka_unit_test(test_garbage_pem_rejected),
        cmocka_unit_test(test_encrypted_pem_not_prompted),
        cmocka_unit_test(test_rng_failure),
        cmocka_unit_test(test_fingerprint_hex),
        cmocka_unit_test(test_ed25519_rfc8032),
        cmocka_unit_test(test_ed25519_sign_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
