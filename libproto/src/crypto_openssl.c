/*
 * crypto_openssl.c - the crypto backend: every call into OpenSSL 3 lives
 * here (EVP, EVP_MAC, EVP_KDF, EVP_PKEY only; no deprecated low-level APIs).
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "veil_internal.h"

/* ---- algorithm handles, fetched once ----
 * EVP_*_fetch looks the algorithm up in OpenSSL's method store (a locked
 * name lookup) and the implicit fetch behind EVP_sha256() & co. does the same
 * on every init; a handshake did dozens of them.  The handles below are
 * fetched once per process (pthread_once), are immutable afterwards and so
 * are shared by every connection and thread.  The prototype contexts carry
 * only the digest choice and are never used directly: each operation works
 * on a copy (EVP_*_CTX_dup reads the prototype only).  OpenSSL 3.0 cannot
 * copy an HKDF context (3.1 can), so there each derivation makes a new one
 * from the cached EVP_KDF.  All live until the process exits
 * (docs/DESIGN.md 6.17). */

static struct {
    EVP_MD *sha256;
    EVP_MAC *hmac;
    EVP_KDF *hkdf;
    EVP_CIPHER *aes_256_gcm, *chacha20_poly1305, *aes_256_cbc;
    EVP_MAC_CTX *hmac_proto; /* HMAC-SHA256 */
    EVP_KDF_CTX *hkdf_proto; /* HKDF-SHA256; NULL if it cannot be copied */
    EVP_PKEY_CTX *x25519;    /* X25519 key management, fromdata-initialised */
    bool ok;
} alg;
static pthread_once_t alg_once = PTHREAD_ONCE_INIT;

static void alg_fetch(void)
{
    static const uint8_t dummy_key[VEIL_HASH_LEN];
    OSSL_PARAM digest[2] = {OSSL_PARAM_construct_utf8_string(OSSL_ALG_PARAM_DIGEST, (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end()};
    alg.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    alg.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    alg.hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    alg.aes_256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    alg.chacha20_poly1305 = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    alg.aes_256_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    alg.hmac_proto = alg.hmac != NULL ? EVP_MAC_CTX_new(alg.hmac) : NULL;
    alg.hkdf_proto = alg.hkdf != NULL ? EVP_KDF_CTX_new(alg.hkdf) : NULL;
    /* EVP_PKEY_fromdata only reads its context (the operation and the
     * key management), so one context serves every thread. */
    alg.x25519 = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    /* An HMAC context can only be copied once keyed: the prototype gets a
     * dummy key, and every user re-keys its copy. */
    alg.ok = alg.sha256 != NULL && alg.hkdf != NULL && alg.aes_256_gcm != NULL &&
             alg.chacha20_poly1305 != NULL && alg.aes_256_cbc != NULL && alg.hmac_proto != NULL &&
             alg.x25519 != NULL && EVP_PKEY_fromdata_init(alg.x25519) == 1 &&
             EVP_MAC_init(alg.hmac_proto, dummy_key, sizeof(dummy_key), digest) == 1;
    EVP_KDF_CTX *copy = NULL;
    if (alg.hkdf_proto == NULL || EVP_KDF_CTX_set_params(alg.hkdf_proto, digest) != 1 ||
        (copy = EVP_KDF_CTX_dup(alg.hkdf_proto)) == NULL) {
        EVP_KDF_CTX_free(alg.hkdf_proto);
        alg.hkdf_proto = NULL;
    }
    EVP_KDF_CTX_free(copy);
}

static bool alg_ready(void) { return pthread_once(&alg_once, alg_fetch) == 0 && alg.ok; }

/* ---- hashing ---- */

struct veil_hash_ctx {
    EVP_MD_CTX *md;
    EVP_MD_CTX *peek; /* scratch copy for veil_hash_peek, reused */
};

int veil_hash_new(veil_hash_ctx **out)
{
    if (!alg_ready())
        return VEIL_ERR_CRYPTO;
    veil_hash_ctx *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return VEIL_ERR_NOMEM;
    h->md = EVP_MD_CTX_new();
    h->peek = EVP_MD_CTX_new();
    if (h->md == NULL || h->peek == NULL || EVP_DigestInit_ex(h->md, alg.sha256, NULL) != 1) {
        veil_hash_free(h);
        return VEIL_ERR_CRYPTO;
    }
    *out = h;
    return 0;
}

void veil_hash_free(veil_hash_ctx *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->md);
    EVP_MD_CTX_free(h->peek);
    free(h);
}

int veil_hash_update(veil_hash_ctx *h, const uint8_t *p, size_t n)
{
    return EVP_DigestUpdate(h->md, p, n) == 1 ? 0 : VEIL_ERR_CRYPTO;
}

int veil_hash_peek(veil_hash_ctx *h, uint8_t out[VEIL_HASH_LEN])
{
    return EVP_MD_CTX_copy_ex(h->peek, h->md) == 1 && EVP_DigestFinal_ex(h->peek, out, NULL) == 1
               ? 0
               : VEIL_ERR_CRYPTO;
}

int veil_sha256(const uint8_t *p, size_t n, uint8_t out[VEIL_HASH_LEN])
{
    if (!alg_ready())
        return VEIL_ERR_CRYPTO;
    return EVP_Digest(p, n, out, NULL, alg.sha256, NULL) == 1 ? 0 : VEIL_ERR_CRYPTO;
}

int veil_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p, size_t n,
                     uint8_t out[VEIL_HASH_LEN])
{
    size_t out_len = 0;
    if (!alg_ready())
        return VEIL_ERR_CRYPTO;
    EVP_MAC_CTX *m = EVP_MAC_CTX_dup(alg.hmac_proto);
    int ok = m != NULL && EVP_MAC_init(m, key, key_len, NULL) == 1 && EVP_MAC_update(m, p, n) == 1 &&
             EVP_MAC_final(m, out, &out_len, VEIL_HASH_LEN) == 1 && out_len == VEIL_HASH_LEN;
    EVP_MAC_CTX_free(m); /* cleanses the keyed state */
    return ok ? 0 : VEIL_ERR_CRYPTO;
}

/* ---- HKDF (RFC 5869) ---- */

static int hkdf(int mode, const uint8_t *salt, size_t salt_len, const uint8_t *key, size_t key_len,
                const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    OSSL_PARAM params[6], *p = params;
    int ret = VEIL_ERR_CRYPTO;
    if (!alg_ready())
        return ret;
    EVP_KDF_CTX *ctx = alg.hkdf_proto != NULL ? EVP_KDF_CTX_dup(alg.hkdf_proto) : EVP_KDF_CTX_new(alg.hkdf);
    if (ctx == NULL)
        return ret;
    if (alg.hkdf_proto == NULL)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, out, out_len, params) == 1)
        ret = 0;
    EVP_KDF_CTX_free(ctx); /* cleanses the key it copied */
    return ret;
}

int veil_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      uint8_t prk[VEIL_HASH_LEN])
{
    static const uint8_t zero[VEIL_HASH_LEN];
    if (salt == NULL) {
        salt = zero;
        salt_len = sizeof(zero);
    }
    return hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, salt_len, ikm, ikm_len, NULL, 0, prk,
                VEIL_HASH_LEN);
}

int veil_hkdf_expand(const uint8_t *prk, const uint8_t *info, size_t info_len, uint8_t *out,
                     size_t out_len)
{
    return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, prk, VEIL_HASH_LEN, info, info_len, out,
                out_len);
}

/* ---- X25519 (RFC 7748) ---- */

struct veil_pkey {
    EVP_PKEY *pkey;
    EVP_MD_CTX *ed_sign; /* Ed25519 private keys: a signing context, never used directly */
};

static int pkey_wrap(EVP_PKEY *k, veil_pkey **out);

/* An X25519 key from 32 raw bytes, through the shared fromdata context:
 * EVP_PKEY_new_raw_*_key does the same import but first looks the key type
 * up by name and makes a context for it, on every call (docs/DESIGN.md 6.17). */
static EVP_PKEY *x25519_key(const uint8_t raw[VEIL_X25519_LEN], bool priv)
{
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_octet_string(priv ? OSSL_PKEY_PARAM_PRIV_KEY : OSSL_PKEY_PARAM_PUB_KEY,
                                                              (void *)raw, VEIL_X25519_LEN),
                            OSSL_PARAM_construct_end()};
    EVP_PKEY *k = NULL;
    if (!alg_ready() ||
        EVP_PKEY_fromdata(alg.x25519, &k, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
        return NULL;
    return k;
}

/* Making an EVP_PKEY from a private key computes its public key (a scalar
 * multiplication), so the key made for the public value is kept for the
 * derivation instead of being made twice. */
int veil_x25519_keypair(const uint8_t priv[VEIL_X25519_LEN], uint8_t pub[VEIL_X25519_LEN], veil_pkey **out)
{
    EVP_PKEY *k = x25519_key(priv, true);
    size_t len = VEIL_X25519_LEN;
    if (k == NULL || EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 || len != VEIL_X25519_LEN) {
        EVP_PKEY_free(k);
        return VEIL_ERR_CRYPTO;
    }
    int ret = pkey_wrap(k, out);
    return ret == VEIL_ERR_KEY_FORMAT ? VEIL_ERR_CRYPTO : ret;
}

/* Fails (illegal_parameter) for a peer key that yields the all-zero secret:
 * OpenSSL's X25519 derivation refuses it (RFC 7748 §6.1).  The peer is set
 * without EVP_PKEY_public_check, which for X25519 only asks whether the key
 * has a public part (a key imported from 32 bytes always has) and cost a
 * second context with its own key-type lookup. */
int veil_x25519_derive_key(const veil_pkey *key, const uint8_t peer[VEIL_X25519_LEN],
                           uint8_t shared[VEIL_X25519_LEN])
{
    EVP_PKEY *pk = x25519_key(peer, false);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    size_t len = VEIL_X25519_LEN;
    int ret = VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (ctx != NULL && pk != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
        EVP_PKEY_derive_set_peer_ex(ctx, pk, 0) == 1 && EVP_PKEY_derive(ctx, shared, &len) == 1 &&
        len == VEIL_X25519_LEN)
        ret = 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ret;
}

int veil_x25519_public(const uint8_t priv[VEIL_X25519_LEN], uint8_t pub[VEIL_X25519_LEN])
{
    veil_pkey *k = NULL;
    int ret = veil_x25519_keypair(priv, pub, &k);
    veil_pkey_free(k);
    return ret;
}

int veil_x25519_derive(const uint8_t priv[VEIL_X25519_LEN], const uint8_t peer[VEIL_X25519_LEN],
                       uint8_t shared[VEIL_X25519_LEN])
{
    uint8_t pub[VEIL_X25519_LEN];
    veil_pkey *k = NULL;
    int ret = veil_x25519_keypair(priv, pub, &k);
    if (ret == 0)
        ret = veil_x25519_derive_key(k, peer, shared);
    veil_pkey_free(k);
    return ret;
}

/* ---- identity keys ---- */

static int pss_setup(EVP_PKEY_CTX *pctx);

static int pkey_wrap(EVP_PKEY *k, veil_pkey **out)
{
    if (k == NULL)
        return VEIL_ERR_KEY_FORMAT;
    veil_pkey *w = malloc(sizeof(*w));
    if (w == NULL) {
        EVP_PKEY_free(k);
        return VEIL_ERR_NOMEM;
    }
    w->pkey = k;
    w->ed_sign = NULL;
    *out = w;
    return 0;
}

/* Wraps a private key.  An Ed25519 key gets a signing context initialised
 * once: EVP_DigestSignInit_ex makes a key context, with a lookup of the key
 * type, and fetches the signature method on every call, while copying a
 * prepared context only duplicates it (docs/DESIGN.md 6.17).  The copy reads
 * the prepared context only, so an identity shared by many connections and
 * threads can sign concurrently.  Without it (no memory) signing initialises
 * a context per signature as before. */
static int pkey_wrap_private(EVP_PKEY *k, veil_pkey **out)
{
    int ret = pkey_wrap(k, out);
    if (ret != 0 || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519)
        return ret;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md != NULL && EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, k, NULL) == 1)
        (*out)->ed_sign = md;
    else
        EVP_MD_CTX_free(md);
    return 0;
}

int veil_pkey_ed25519_from_seed(const uint8_t seed[32], veil_pkey **out)
{
    return pkey_wrap_private(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32), out);
}

/* Never prompt: libproto has no terminal; an encrypted key is a format error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int veil_pkey_from_pem(const char *pem, size_t len, veil_pkey **out)
{
    if (len > INT_MAX)
        return VEIL_ERR_INVALID_ARG;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return VEIL_ERR_NOMEM;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    return pkey_wrap_private(k, out);
}

static int bio_drain(BIO *bio, veil_buf *out)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    int ret = n >= 0 ? veil_buf_append(out, data, (size_t)n) : VEIL_ERR_CRYPTO;
    if (n > 0)
        veil_memzero(data, (size_t)n);
    return ret;
}

int veil_pkey_to_pem(const veil_pkey *k, veil_buf *out)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    int ret = VEIL_ERR_CRYPTO;
    if (bio != NULL && PEM_write_bio_PKCS8PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) == 1)
        ret = bio_drain(bio, out);
    BIO_free(bio);
    return ret;
}

int veil_pkey_public_pem(const veil_pkey *k, veil_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int ret = VEIL_ERR_CRYPTO;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, k->pkey) == 1)
        ret = bio_drain(bio, out);
    BIO_free(bio);
    return ret;
}

int veil_pkey_spki(const veil_pkey *k, veil_buf *out)
{
    int n = i2d_PUBKEY(k->pkey, NULL);
    if (n <= 0)
        return VEIL_ERR_CRYPTO;
    int ret = veil_buf_reserve(out, (size_t)n);
    if (ret != 0)
        return ret;
    unsigned char *p = out->base + out->len;
    if (i2d_PUBKEY(k->pkey, &p) != n)
        return VEIL_ERR_CRYPTO;
    out->len += (size_t)n;
    return 0;
}

/* The DER of an Ed25519 SubjectPublicKeyInfo up to the key (RFC 8410 §4):
 * SEQUENCE(42) { SEQUENCE(5) { OID 1.3.101.112 }, BIT STRING(33) { 0 unused
 * bits, the 32-byte key } }.  RFC 8410 allows no other encoding of it. */
static const uint8_t ED25519_SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
#define ED25519_SPKI_LEN (sizeof(ED25519_SPKI_PREFIX) + 32)

int veil_pkey_from_spki(const uint8_t *der, size_t len, veil_pkey **out)
{
    const unsigned char *p = der;
    if (len > LONG_MAX)
        return VEIL_ERR_KEY_FORMAT;
    /* An Ed25519 key, as every client gets from its server: the key is the
     * last 32 bytes.  OpenSSL 3.0's generic decoder (d2i_PUBKEY) sets up its
     * decoder chain for each call, about 1M instructions, a quarter of a
     * client's handshake; it stays for every other key and encoding. */
    if (len == ED25519_SPKI_LEN && memcmp(der, ED25519_SPKI_PREFIX, sizeof(ED25519_SPKI_PREFIX)) == 0)
        return pkey_wrap(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der + sizeof(ED25519_SPKI_PREFIX), 32),
                         out);
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    if (k != NULL && p != der + len) { /* trailing bytes */
        EVP_PKEY_free(k);
        k = NULL;
    }
    return pkey_wrap(k, out);
}

bool veil_pkey_is_ed25519(const veil_pkey *k) { return EVP_PKEY_get_id(k->pkey) == EVP_PKEY_ED25519; }

/* Identity keys Veil accepts: Ed25519, or RSA of 2048..8192 bits. */
bool veil_pkey_usable_identity(const veil_pkey *k)
{
    if (veil_pkey_is_ed25519(k))
        return true;
    int bits = EVP_PKEY_get_bits(k->pkey);
    return EVP_PKEY_get_id(k->pkey) == EVP_PKEY_RSA && bits >= 2048 && bits <= 8192;
}

int veil_pkey_sign(const veil_pkey *k, const uint8_t *msg, size_t len, veil_buf *sig)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sig_len = 0;
    int ret = VEIL_ERR_CRYPTO;
    EVP_PKEY_CTX *pctx = NULL;
    bool rsa = veil_pkey_is_rsa(k);
    if (md == NULL)
        goto Exit;
    if (k->ed_sign != NULL) {
        if (EVP_MD_CTX_copy_ex(md, k->ed_sign) != 1)
            goto Exit;
    } else if (EVP_DigestSignInit_ex(md, &pctx, rsa ? "SHA256" : NULL, NULL, NULL, k->pkey, NULL) != 1 ||
               (rsa && !pss_setup(pctx))) {
        goto Exit;
    }
    if (EVP_DigestSign(md, NULL, &sig_len, msg, len) != 1)
        goto Exit;
    if ((ret = veil_buf_reserve(sig, sig_len)) != 0)
        goto Exit;
    ret = VEIL_ERR_CRYPTO;
    if (EVP_DigestSign(md, sig->base + sig->len, &sig_len, msg, len) != 1)
        goto Exit;
    sig->len += sig_len;
    ret = 0;
Exit:
    EVP_MD_CTX_free(md);
    return ret;
}

int veil_pkey_verify(const veil_pkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                     size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool rsa = veil_pkey_is_rsa(k);
    int ok = md != NULL &&
             EVP_DigestVerifyInit_ex(md, &pctx, rsa ? "SHA256" : NULL, NULL, NULL, k->pkey, NULL) == 1 &&
             (!rsa || pss_setup(pctx)) && EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : VEIL_ERR_CRYPTO;
}

void veil_pkey_free(veil_pkey *k)
{
    if (k == NULL)
        return;
    EVP_MD_CTX_free(k->ed_sign);
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* ---- record protection (PROTOCOL.md §6) ---- */

#define AEAD_TAG_LEN 16
#define AEAD_IV_LEN 12
#define CBC_IV_LEN 16
#define CBC_BLOCK 16
#define CBC_MAC_LEN 32

struct veil_cipher {
    uint16_t suite;
    int encrypt;
    EVP_CIPHER_CTX *ctx;
    EVP_MAC_CTX *mac; /* CBC suite only */
    uint8_t iv[AEAD_IV_LEN];
};

bool veil_suite_supported(uint16_t suite)
{
    return suite == VEIL_SUITE_AES_256_GCM_SHA256 || suite == VEIL_SUITE_CHACHA20_POLY1305_SHA256 ||
           suite == VEIL_SUITE_AES_256_CBC_HMAC_SHA256;
}

bool veil_suite_is_cbc(uint16_t suite) { return suite == VEIL_SUITE_AES_256_CBC_HMAC_SHA256; }

size_t veil_suite_min_body(uint16_t suite)
{
    return veil_suite_is_cbc(suite) ? CBC_IV_LEN + CBC_BLOCK + CBC_MAC_LEN : AEAD_TAG_LEN;
}

static const EVP_CIPHER *suite_cipher(uint16_t suite)
{
    switch (suite) {
    case VEIL_SUITE_AES_256_GCM_SHA256:
        return alg.aes_256_gcm;
    case VEIL_SUITE_CHACHA20_POLY1305_SHA256:
        return alg.chacha20_poly1305;
    case VEIL_SUITE_AES_256_CBC_HMAC_SHA256:
        return alg.aes_256_cbc;
    default:
        return NULL;
    }
}

int veil_cipher_new(uint16_t suite, int encrypt, veil_cipher **out)
{
    if (!veil_suite_supported(suite))
        return VEIL_ERR_UNSUPPORTED;
    if (!alg_ready())
        return VEIL_ERR_CRYPTO;
    veil_cipher *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return VEIL_ERR_NOMEM;
    c->suite = suite;
    c->encrypt = encrypt;
    c->ctx = EVP_CIPHER_CTX_new();
    if (c->ctx == NULL)
        goto Fail;
    if (veil_suite_is_cbc(suite) && (c->mac = EVP_MAC_CTX_dup(alg.hmac_proto)) == NULL)
        goto Fail;
    *out = c;
    return 0;
Fail:
    veil_cipher_free(c);
    return VEIL_ERR_CRYPTO;
}

int veil_cipher_set_secret(veil_cipher *c, const uint8_t secret[VEIL_SECRET_LEN])
{
    uint8_t key[32], mac_key[32];
    int ret;
    if ((ret = veil_expand_label(secret, "key", NULL, 0, key, sizeof(key))) != 0)
        goto Exit;
    if (veil_suite_is_cbc(c->suite)) {
        if ((ret = veil_expand_label(secret, "mac", NULL, 0, mac_key, sizeof(mac_key))) != 0)
            goto Exit;
        ret = VEIL_ERR_CRYPTO;
        if (EVP_MAC_init(c->mac, mac_key, sizeof(mac_key), NULL) != 1)
            goto Exit;
    } else if ((ret = veil_expand_label(secret, "iv", NULL, 0, c->iv, sizeof(c->iv))) != 0) {
        goto Exit;
    }
    ret = VEIL_ERR_CRYPTO;
    if (EVP_CipherInit_ex(c->ctx, suite_cipher(c->suite), NULL, key, NULL, c->encrypt) != 1)
        goto Exit;
    ret = 0;
Exit:
    veil_memzero(key, sizeof(key));
    veil_memzero(mac_key, sizeof(mac_key));
    return ret;
}

void veil_cipher_free(veil_cipher *c)
{
    if (c == NULL)
        return;
    EVP_CIPHER_CTX_free(c->ctx); /* cleanses its key schedule */
    EVP_MAC_CTX_free(c->mac);
    veil_memzero(c, sizeof(*c));
    free(c);
}

size_t veil_cipher_overhead(const veil_cipher *c, size_t content_len)
{
    if (veil_suite_is_cbc(c->suite))
        return CBC_IV_LEN + (CBC_BLOCK - content_len % CBC_BLOCK) + CBC_MAC_LEN;
    return AEAD_TAG_LEN;
}

static void aead_nonce(const veil_cipher *c, uint64_t seq, uint8_t nonce[AEAD_IV_LEN])
{
    memcpy(nonce, c->iv, AEAD_IV_LEN);
    for (int i = 0; i < 8; i++)
        nonce[AEAD_IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

static int mac_record(veil_cipher *c, const uint8_t hdr[VEIL_HEADER_LEN], const uint8_t *iv_ct,
                      size_t len, uint8_t out[CBC_MAC_LEN])
{
    size_t out_len = 0;
    /* A NULL key re-initialises with the key already set. */
    if (EVP_MAC_init(c->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(c->mac, hdr, VEIL_HEADER_LEN) != 1 ||
        EVP_MAC_update(c->mac, iv_ct, len) != 1 ||
        EVP_MAC_final(c->mac, out, &out_len, CBC_MAC_LEN) != 1 || out_len != CBC_MAC_LEN)
        return VEIL_ERR_CRYPTO;
    return 0;
}

/* Encrypts pre || content into out; *n is the ciphertext length written.
 * A short prefix goes in one 128-byte piece together with the start of the
 * content, so the bulk of the content starts on a 128-byte boundary of the
 * stream.  OpenSSL 3.0's ChaCha20-Poly1305 seals a 16 KiB record 30% slower
 * (5.1 instead of 3.8 us) when an earlier piece is not a multiple of 128
 * bytes; AES-GCM and CBC do not care. */
static int encrypt_two(veil_cipher *c, const uint8_t *pre, size_t pre_len, const uint8_t *content,
                       size_t content_len, uint8_t *out, size_t *n)
{
    uint8_t first[128];
    int n1 = 0, n2 = 0, ok = 1;
    *n = 0;
    if (pre_len != 0) {
        const uint8_t *p = pre;
        size_t len = pre_len;
        if (pre_len < sizeof(first)) {
            size_t head = sizeof(first) - pre_len < content_len ? sizeof(first) - pre_len : content_len;
            memcpy(first, pre, pre_len);
            memcpy(first + pre_len, content, head);
            p = first;
            len = pre_len + head;
            content += head;
            content_len -= head;
        }
        ok = EVP_CipherUpdate(c->ctx, out, &n1, p, (int)len) == 1;
        if (p == first)
            veil_memzero(first, len);
        *n = (size_t)n1;
    }
    if (!ok || EVP_CipherUpdate(c->ctx, out + *n, &n2, content, (int)content_len) != 1)
        return VEIL_ERR_CRYPTO;
    *n += (size_t)n2;
    if (EVP_CipherFinal_ex(c->ctx, out + *n, &n2) != 1)
        return VEIL_ERR_CRYPTO;
    *n += (size_t)n2;
    return 0;
}

int veil_cipher_seal(veil_cipher *c, const uint8_t hdr[VEIL_HEADER_LEN], uint64_t seq, const uint8_t *pre,
                     size_t pre_len, const uint8_t *content, size_t content_len, const uint8_t *rnd,
                     uint8_t *body)
{
    size_t ct_len = 0;
    int n1 = 0, ret;
    if (pre_len > VEIL_MAX_CONTENT || content_len > VEIL_MAX_CONTENT - pre_len)
        return VEIL_ERR_TOO_LARGE;
    if (veil_suite_is_cbc(c->suite)) {
        memcpy(body, rnd, CBC_IV_LEN);
        if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, body, 1) != 1)
            return VEIL_ERR_CRYPTO;
        if ((ret = encrypt_two(c, pre, pre_len, content, content_len, body + CBC_IV_LEN, &ct_len)) != 0)
            return ret;
        return mac_record(c, hdr, body, CBC_IV_LEN + ct_len, body + CBC_IV_LEN + ct_len);
    }
    uint8_t nonce[AEAD_IV_LEN];
    OSSL_PARAM tag[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                           body + pre_len + content_len, AEAD_TAG_LEN),
                         OSSL_PARAM_construct_end()};
    aead_nonce(c, seq, nonce);
    if (EVP_CipherInit_ex2(c->ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
        EVP_CipherUpdate(c->ctx, NULL, &n1, hdr, VEIL_HEADER_LEN) != 1)
        return VEIL_ERR_CRYPTO;
    if ((ret = encrypt_two(c, pre, pre_len, content, content_len, body, &ct_len)) != 0)
        return ret;
    /* The tag straight from the provider (what EVP_CTRL_AEAD_GET_TAG wraps). */
    if (EVP_CIPHER_CTX_get_params(c->ctx, tag) != 1)
        return VEIL_ERR_CRYPTO;
    return 0;
}

int veil_cipher_open(veil_cipher *c, const uint8_t hdr[VEIL_HEADER_LEN], uint64_t seq,
                     const uint8_t *body, size_t body_len, uint8_t *content, size_t *content_len)
{
    const int bad = VEIL_PERR(VEIL_ALERT_BAD_RECORD_MAC);
    int n1 = 0, n2 = 0;
    if (body_len > VEIL_MAX_BODY)
        return VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW);
    if (veil_suite_is_cbc(c->suite)) {
        uint8_t mac[CBC_MAC_LEN];
        if (body_len < CBC_IV_LEN + CBC_BLOCK + CBC_MAC_LEN ||
            (body_len - CBC_IV_LEN - CBC_MAC_LEN) % CBC_BLOCK != 0)
            return bad;
        size_t ct_len = body_len - CBC_IV_LEN - CBC_MAC_LEN;
        /* Encrypt-then-MAC: authenticate before touching the ciphertext. */
        if (mac_record(c, hdr, body, CBC_IV_LEN + ct_len, mac) != 0)
            return VEIL_ERR_CRYPTO;
        if (veil_memeq_ct(mac, body + CBC_IV_LEN + ct_len, CBC_MAC_LEN) != 0)
            return bad;
        if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, body, 0) != 1 ||
            EVP_CipherUpdate(c->ctx, content, &n1, body + CBC_IV_LEN, (int)ct_len) != 1 ||
            EVP_CipherFinal_ex(c->ctx, content + n1, &n2) != 1)
            return bad;
        *content_len = (size_t)n1 + (size_t)n2;
        return 0;
    }
    if (body_len < AEAD_TAG_LEN)
        return bad;
    size_t ct_len = body_len - AEAD_TAG_LEN;
    uint8_t nonce[AEAD_IV_LEN], tag[AEAD_TAG_LEN];
    aead_nonce(c, seq, nonce);
    memcpy(tag, body + ct_len, AEAD_TAG_LEN); /* in place, content may overwrite the body */
    /* Nonce and expected tag in one init: the tag goes to the provider as a
     * parameter instead of through EVP_CIPHER_CTX_ctrl (docs/DESIGN.md 6.17).
     * The provider still compares it in constant time in Final. */
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, AEAD_TAG_LEN),
                            OSSL_PARAM_construct_end()};
    if (EVP_CipherInit_ex2(c->ctx, NULL, NULL, nonce, 0, params) != 1 ||
        EVP_CipherUpdate(c->ctx, NULL, &n1, hdr, VEIL_HEADER_LEN) != 1 ||
        EVP_CipherUpdate(c->ctx, content, &n1, body, (int)ct_len) != 1)
        return VEIL_ERR_CRYPTO;
    if (EVP_CipherFinal_ex(c->ctx, content + n1, &n2) != 1) {
        veil_memzero(content, ct_len); /* never release unauthenticated plaintext */
        return bad;
    }
    *content_len = ct_len;
    return 0;
}

/* ---- FFDHE-2048 (RFC 7919), PROTOCOL.md §4.10 ----
 * OpenSSL 3.0 does not derive a DH public key from a caller-supplied private
 * key, so the public value g^x mod p is computed with OpenSSL's constant-time
 * modular exponentiation; the private exponent comes from the RNG callback,
 * which keeps the core deterministic under a test RNG. */

static EVP_PKEY *ffdhe_key(const uint8_t *priv, size_t priv_len, const uint8_t *pub, size_t pub_len)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *x = priv != NULL ? BN_bin2bn(priv, (int)priv_len, NULL) : NULL;
    BIGNUM *y = pub != NULL ? BN_bin2bn(pub, (int)pub_len, NULL) : NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *k = NULL;
    int selection = priv != NULL ? EVP_PKEY_KEYPAIR : pub != NULL ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEY_PARAMETERS;

    if (bld == NULL || (priv != NULL && x == NULL) || (pub != NULL && y == NULL) ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "ffdhe2048", 0) != 1 ||
        (x != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, x) != 1) ||
        (y != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y) != 1) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k, selection, params) != 1)
        k = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(x);
    BN_free(y);
    return k;
}

int veil_ffdhe_public(const uint8_t priv[VEIL_FFDHE_PRIV_LEN], uint8_t pub[VEIL_FFDHE_LEN])
{
    EVP_PKEY *params = ffdhe_key(NULL, 0, NULL, 0);
    BIGNUM *p = NULL, *g = NULL, *y = BN_new();
    BIGNUM *x = BN_secure_new();
    BN_CTX *bn = BN_CTX_secure_new();
    int ret = VEIL_ERR_CRYPTO;
    if (params == NULL || y == NULL || x == NULL || bn == NULL ||
        EVP_PKEY_get_bn_param(params, OSSL_PKEY_PARAM_FFC_P, &p) != 1 ||
        EVP_PKEY_get_bn_param(params, OSSL_PKEY_PARAM_FFC_G, &g) != 1 ||
        BN_bin2bn(priv, VEIL_FFDHE_PRIV_LEN, x) == NULL)
        goto Exit;
    BN_set_flags(x, BN_FLG_CONSTTIME);
    if (BN_is_zero(x) || BN_mod_exp_mont_consttime(y, g, x, p, bn, NULL) != 1 ||
        BN_bn2binpad(y, pub, VEIL_FFDHE_LEN) != VEIL_FFDHE_LEN)
        goto Exit;
    ret = 0;
Exit:
    BN_CTX_free(bn);
    BN_clear_free(x);
    BN_free(y);
    BN_free(p);
    BN_free(g);
    EVP_PKEY_free(params);
    return ret;
}

int veil_ffdhe_derive(const uint8_t priv[VEIL_FFDHE_PRIV_LEN], const uint8_t pub[VEIL_FFDHE_LEN],
                      const uint8_t peer[VEIL_FFDHE_LEN], uint8_t shared[VEIL_FFDHE_LEN])
{
    EVP_PKEY *k = ffdhe_key(priv, VEIL_FFDHE_PRIV_LEN, pub, VEIL_FFDHE_LEN);
    EVP_PKEY *pk = ffdhe_key(NULL, 0, peer, VEIL_FFDHE_LEN);
    EVP_PKEY_CTX *ctx = k != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL) : NULL;
    size_t len = VEIL_FFDHE_LEN;
    int ret = VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    /* derive_set_peer validates the peer value (1 < y < p-1, in the subgroup). */
    if (ctx != NULL && pk != NULL && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_CTX_set_dh_pad(ctx, 1) == 1 &&
        EVP_PKEY_derive_set_peer(ctx, pk) == 1 && EVP_PKEY_derive(ctx, shared, &len) == 1 &&
        len == VEIL_FFDHE_LEN)
        ret = 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(k);
    return ret;
}

/* ---- RSA identities: RSA-PSS signatures and RSA-OAEP key transport ----
 * OAEP seeds and PSS salts are drawn by OpenSSL's DRBG: OpenSSL offers no way
 * to pass them in, and writing the paddings ourselves is out of the question.
 * This is the one place libproto uses randomness not from the RNG callback
 * (docs/DESIGN.md). */

int veil_pkey_rsa_generate(unsigned bits, veil_pkey **out)
{
    return pkey_wrap(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits), out);
}

bool veil_pkey_is_rsa(const veil_pkey *k) { return EVP_PKEY_get_id(k->pkey) == EVP_PKEY_RSA; }

int veil_pkey_bits(const veil_pkey *k) { return EVP_PKEY_get_bits(k->pkey); }

static int pss_setup(EVP_PKEY_CTX *pctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
}

static int oaep_setup(EVP_PKEY_CTX *pctx)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
}

int veil_pkey_oaep_encrypt(const veil_pkey *k, const uint8_t *in, size_t in_len, veil_buf *out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    size_t n = 0;
    int ret = VEIL_ERR_CRYPTO;
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 || !oaep_setup(ctx) ||
        EVP_PKEY_encrypt(ctx, NULL, &n, in, in_len) != 1)
        goto Exit;
    if ((ret = veil_buf_reserve(out, n)) != 0)
        goto Exit;
    ret = VEIL_ERR_CRYPTO;
    if (EVP_PKEY_encrypt(ctx, out->base + out->len, &n, in, in_len) != 1)
        goto Exit;
    out->len += n;
    ret = 0;
Exit:
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

int veil_pkey_oaep_decrypt(const veil_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    uint8_t tmp[1024];
    size_t n = sizeof(tmp);
    int ret = VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR);
    /* The ciphertext is exactly as long as the modulus (RFC 8017 §7.1.2). */
    if (ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 && oaep_setup(ctx) &&
        (size_t)EVP_PKEY_get_size(k->pkey) <= sizeof(tmp) && in_len == (size_t)EVP_PKEY_get_size(k->pkey) &&
        EVP_PKEY_decrypt(ctx, tmp, &n, in, in_len) == 1 &&
        n == out_len) {
        memcpy(out, tmp, out_len);
        ret = 0;
    }
    veil_memzero(tmp, sizeof(tmp));
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

/* ---- PBKDF2-HMAC-SHA256 (RFC 8018), for user verifiers and PSK stretching ---- */

int veil_pbkdf2_sha256(const uint8_t *pw, size_t pw_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                       uint8_t *out, size_t out_len)
{
    if (pw_len > INT_MAX || salt_len > INT_MAX || iterations == 0 || iterations > INT_MAX || out_len > INT_MAX)
        return VEIL_ERR_INVALID_ARG;
    return PKCS5_PBKDF2_HMAC((const char *)pw, (int)pw_len, salt, (int)salt_len, (int)iterations, EVP_sha256(),
                             (int)out_len, out) == 1
               ? 0
               : VEIL_ERR_CRYPTO;
}
