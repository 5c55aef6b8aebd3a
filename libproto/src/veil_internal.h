/*
 * veil_internal.h - declarations shared by libproto's modules; not installed.
 */
#ifndef VEIL_INTERNAL_H
#define VEIL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "veil/veil.h"

/* Protocol error carrying the alert it sends. */
#define VEIL_PERR(alert) (-(int)(alert))
/* Is err a protocol error that maps to an alert to send? */
static inline bool veil_err_is_alert(int err) { return err < 0 && err >= VEIL_ERR_ALERT_MIN; }

/* ------------------------------------------------------------------------ */
/* Bounds-checked reader (codec.c).  Every read past the end sets failed and
 * yields zeros; callers check rd.failed once at the end of a structure. */

typedef struct veil_reader {
    const uint8_t *p;
    const uint8_t *end;
    bool failed;
} veil_reader;

static inline void veil_rd_init(veil_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->end = p + len;
    r->failed = false;
}
static inline size_t veil_rd_left(const veil_reader *r) { return (size_t)(r->end - r->p); }
/* The readers are inline: they sit on every record's path (message
 * headers, alerts), where a call per field cost more than the field. */
/* Returns a pointer to the next n bytes, or NULL (and failed) if fewer remain. */
static inline const uint8_t *veil_rd_bytes(veil_reader *r, size_t n)
{
    if (r->failed || veil_rd_left(r) < n) {
        r->failed = true;
        r->p = r->end;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}
static inline uint8_t veil_rd_u8(veil_reader *r)
{
    const uint8_t *p = veil_rd_bytes(r, 1);
    return p != NULL ? p[0] : 0;
}
static inline uint16_t veil_rd_u16(veil_reader *r)
{
    const uint8_t *p = veil_rd_bytes(r, 2);
    return p != NULL ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}
static inline uint32_t veil_rd_u24(veil_reader *r)
{
    const uint8_t *p = veil_rd_bytes(r, 3);
    return p != NULL ? ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) : 0;
}
/* Big-endian u64 at p (any alignment); compilers make this one load and a bswap. */
static inline uint64_t veil_get_u64(const uint8_t *p)
{
    return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
           (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 | (uint64_t)p[6] << 8 | (uint64_t)p[7];
}
static inline uint64_t veil_rd_u64(veil_reader *r)
{
    const uint8_t *p = veil_rd_bytes(r, 8);
    return p != NULL ? veil_get_u64(p) : 0;
}
/* Structure fully consumed and no read failed? */
static inline bool veil_rd_done(const veil_reader *r) { return !r->failed && r->p == r->end; }

/* Big-endian stores. */
static inline void veil_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void veil_put_u24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}
static inline void veil_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void veil_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint32_t veil_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/*
 * Wipes n bytes of secret data that may be large (record plaintext, buffers):
 * memset behind a compiler barrier, so the stores cannot be elided, at memset
 * speed; OPENSSL_cleanse (veil_memzero) stores 8 bytes per iteration, which
 * cost 15-20% of opening a 16 KiB AEAD record.  Keys keep using veil_memzero.
 */
static inline void veil_wipe(void *p, size_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    if (p != NULL && n != 0) {
        memset(p, 0, n);
        __asm__ __volatile__("" : : "r"(p) : "memory");
    }
#else
    veil_memzero(p, n);
#endif
}

/* CRC-32C implementations behind veil_crc32c (crc32c.c), for tests: the
 * portable tables, and the SSE4.2 instruction (which falls back to the tables
 * when the CPU lacks it; veil_crc32c_hw_available says whether it does). */
uint32_t veil_crc32c_table(uint32_t crc, const uint8_t *p, size_t n);
uint32_t veil_crc32c_hw(uint32_t crc, const uint8_t *p, size_t n);
bool veil_crc32c_hw_available(void);

/* Like veil_buf_reserve, but grows to exactly len + n bytes (no doubling):
 * for a buffer whose final size is known, such as one carried-over record. */
int veil_buf_reserve_exact(veil_buf *b, size_t n);

/* Appending writers; return 0 or VEIL_ERR_NOMEM. */
int veil_buf_append(veil_buf *b, const void *p, size_t n);
int veil_buf_u8(veil_buf *b, uint8_t v);
int veil_buf_u16(veil_buf *b, uint16_t v);
int veil_buf_u24(veil_buf *b, uint32_t v);
int veil_buf_u64(veil_buf *b, uint64_t v);

/* ------------------------------------------------------------------------ */
/* Handshake messages (codec.c), PROTOCOL.md §4.  Decoded forms point into
 * the message they were decoded from. */

#define VEIL_MAX_VERSIONS 8
#define VEIL_MAX_SUITES 16
#define VEIL_MAX_SHARES 8
#define VEIL_HS_HEADER_LEN 4
#define VEIL_X25519_LEN 32
#define VEIL_AUTH_PROOF_LEN 32
#define VEIL_ED25519_SIG_LEN 64

typedef struct veil_client_hello {
    uint8_t n_versions;
    uint8_t versions[VEIL_MAX_VERSIONS];
    uint8_t mode;
    uint8_t n_suites;
    uint16_t suites[VEIL_MAX_SUITES];
    uint8_t n_shares;
    uint16_t groups[VEIL_MAX_SHARES];
    const uint8_t *shares[VEIL_MAX_SHARES];
    uint16_t share_lens[VEIL_MAX_SHARES];
    const uint8_t *random;
    const uint8_t *ext;
    uint16_t ext_len;
} veil_client_hello;

typedef struct veil_server_hello {
    uint8_t version;
    uint8_t mode;
    uint16_t suite;
    uint16_t group;
    const uint8_t *random;
    const uint8_t *key_share;
    uint16_t key_share_len;
    const uint8_t *identity;
    uint16_t identity_len;
    const uint8_t *ext;
    uint16_t ext_len;
} veil_server_hello;

typedef struct veil_server_verify {
    uint16_t scheme;
    const uint8_t *sig;
    uint16_t sig_len;
} veil_server_verify;

/* Splits a handshake record's content into type and body; exactly one message. */
int veil_hs_split(const uint8_t *content, size_t len, uint8_t *type, const uint8_t **body,
                  size_t *body_len);
int veil_client_hello_decode(const uint8_t *body, size_t len, veil_client_hello *ch);
int veil_server_hello_decode(const uint8_t *body, size_t len, veil_server_hello *sh);
int veil_server_verify_decode(const uint8_t *body, size_t len, veil_server_verify *sv);
int veil_finished_decode(const uint8_t *body, size_t len, const uint8_t **verify_data);
/* Encoders append a whole message (type, u24 length, body). */
int veil_client_hello_encode(const veil_client_hello *ch, veil_buf *out);
int veil_server_hello_encode(const veil_server_hello *sh, veil_buf *out);
int veil_server_verify_encode(const veil_server_verify *sv, veil_buf *out);
int veil_finished_encode(const uint8_t verify_data[VEIL_HASH_LEN], veil_buf *out);

/* ClientVerify body, PROTOCOL.md §4.15: u16 spki_len, spki | u16 scheme | u16 sig_len, sig */
typedef struct veil_client_verify {
    const uint8_t *spki;
    uint16_t spki_len;
    uint16_t scheme;
    const uint8_t *sig;
    uint16_t sig_len;
} veil_client_verify;
int veil_client_verify_decode(const uint8_t *body, size_t len, veil_client_verify *cv);
int veil_client_verify_encode(const veil_client_verify *cv, veil_buf *out);
int veil_client_key_exchange_decode(const uint8_t *body, size_t len, const uint8_t **ct, uint16_t *ct_len);
int veil_client_key_exchange_encode(const uint8_t *ct, size_t ct_len, veil_buf *out);
/* Finds an extension in a well-formed extensions block. */
bool veil_ext_find(const uint8_t *ext, size_t len, uint16_t type, const uint8_t **data, uint16_t *data_len);

/* Application message content (PROTOCOL.md §7). */
int veil_message_decode(const uint8_t *content, size_t len, uint8_t *kind, uint64_t *ts,
                        const uint8_t **data, size_t *data_len);
/* Alert content (PROTOCOL.md §8). */
int veil_alert_decode(const uint8_t *content, size_t len, uint8_t *level, uint8_t *code);

/* ------------------------------------------------------------------------ */
/* Crypto backend (crypto_openssl.c): the only file that calls OpenSSL. */

typedef struct veil_hash_ctx veil_hash_ctx;
int veil_hash_new(veil_hash_ctx **out);
void veil_hash_free(veil_hash_ctx *h);
int veil_hash_update(veil_hash_ctx *h, const uint8_t *p, size_t n);
/* Hash of everything so far, without ending the running hash (uses a scratch
 * context inside h, hence not const). */
int veil_hash_peek(veil_hash_ctx *h, uint8_t out[VEIL_HASH_LEN]);
int veil_sha256(const uint8_t *p, size_t n, uint8_t out[VEIL_HASH_LEN]);
int veil_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p, size_t n,
                     uint8_t out[VEIL_HASH_LEN]);
int veil_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                      uint8_t prk[VEIL_HASH_LEN]);
int veil_hkdf_expand(const uint8_t *prk, const uint8_t *info, size_t info_len, uint8_t *out,
                     size_t out_len);

int veil_pbkdf2_sha256(const uint8_t *pw, size_t pw_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                       uint8_t *out, size_t out_len);

/* X25519.  veil_x25519_keypair computes the public value and keeps the key
 * for veil_x25519_derive_key (one scalar multiplication each); the two
 * stateless forms below redo the public value and are for tests and vectors. */
typedef struct veil_pkey veil_pkey;
int veil_x25519_keypair(const uint8_t priv[VEIL_X25519_LEN], uint8_t pub[VEIL_X25519_LEN], veil_pkey **out);
int veil_x25519_derive_key(const veil_pkey *key, const uint8_t peer[VEIL_X25519_LEN],
                           uint8_t shared[VEIL_X25519_LEN]);
int veil_x25519_public(const uint8_t priv[VEIL_X25519_LEN], uint8_t pub[VEIL_X25519_LEN]);
int veil_x25519_derive(const uint8_t priv[VEIL_X25519_LEN], const uint8_t peer[VEIL_X25519_LEN],
                       uint8_t shared[VEIL_X25519_LEN]);

/* FFDHE-2048 (RFC 7919): 32-byte private exponent, 256-byte public values and secret. */
#define VEIL_FFDHE_PRIV_LEN 32
#define VEIL_FFDHE_LEN 256
int veil_ffdhe_public(const uint8_t priv[VEIL_FFDHE_PRIV_LEN], uint8_t pub[VEIL_FFDHE_LEN]);
int veil_ffdhe_derive(const uint8_t priv[VEIL_FFDHE_PRIV_LEN], const uint8_t pub[VEIL_FFDHE_LEN],
                      const uint8_t peer[VEIL_FFDHE_LEN], uint8_t shared[VEIL_FFDHE_LEN]);

/* Identity keys: an opaque handle to an OpenSSL EVP_PKEY. */
int veil_pkey_ed25519_from_seed(const uint8_t seed[32], veil_pkey **out);
int veil_pkey_from_pem(const char *pem, size_t len, veil_pkey **out);
int veil_pkey_to_pem(const veil_pkey *k, veil_buf *out);
int veil_pkey_public_pem(const veil_pkey *k, veil_buf *out);
/* DER SubjectPublicKeyInfo, appended to out. */
int veil_pkey_spki(const veil_pkey *k, veil_buf *out);
int veil_pkey_from_spki(const uint8_t *der, size_t len, veil_pkey **out);
bool veil_pkey_is_ed25519(const veil_pkey *k);
bool veil_pkey_is_rsa(const veil_pkey *k);
bool veil_pkey_usable_identity(const veil_pkey *k);
int veil_pkey_bits(const veil_pkey *k);
int veil_pkey_rsa_generate(unsigned bits, veil_pkey **out);
/* RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label (PROTOCOL.md §4.11). */
int veil_pkey_oaep_encrypt(const veil_pkey *k, const uint8_t *in, size_t in_len, veil_buf *out);
/* Exactly out_len bytes of plaintext or decrypt_error. */
int veil_pkey_oaep_decrypt(const veil_pkey *k, const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len) VEIL_MUST_CHECK;
int veil_pkey_sign(const veil_pkey *k, const uint8_t *msg, size_t len, veil_buf *sig);
/* 0 if the signature verifies, VEIL_ERR_CRYPTO otherwise. */
int veil_pkey_verify(const veil_pkey *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                     size_t sig_len) VEIL_MUST_CHECK;
void veil_pkey_free(veil_pkey *k);

/* Record protection contexts for one direction. */
typedef struct veil_cipher veil_cipher;
/* Key/IV/MAC sizes come from the suite. */
int veil_cipher_new(uint16_t suite, int encrypt, veil_cipher **out);
/* Installs the keys derived from a traffic secret (PROTOCOL.md §5). */
int veil_cipher_set_secret(veil_cipher *c, const uint8_t secret[VEIL_SECRET_LEN]);
void veil_cipher_free(veil_cipher *c);
/* Body expansion for a content length (tag, or IV + padding + MAC). */
size_t veil_cipher_overhead(const veil_cipher *c, size_t content_len);
/*
 * Seals the content pre || content (two pieces, so a message header need not
 * be copied in front of its data; pre may be NULL when pre_len is 0) into
 * body, which has room for pre_len + content_len + overhead.  hdr is the
 * 16-byte header already holding the final length field; rnd supplies the
 * CBC IV (16 bytes) and is ignored by AEAD suites.
 */
int veil_cipher_seal(veil_cipher *c, const uint8_t hdr[VEIL_HEADER_LEN], uint64_t seq, const uint8_t *pre,
                     size_t pre_len, const uint8_t *content, size_t content_len, const uint8_t *rnd,
                     uint8_t *body);
/* Opens body into content (room for body_len bytes); VEIL_PERR(BAD_RECORD_MAC) on any failure.
 * In place is allowed: content == body (AEAD suites) or content == body + 16 (CBC). */
int veil_cipher_open(veil_cipher *c, const uint8_t hdr[VEIL_HEADER_LEN], uint64_t seq,
                     const uint8_t *body, size_t body_len, uint8_t *content,
                     size_t *content_len) VEIL_MUST_CHECK;
/* Smallest valid encrypted body for the suite. */
size_t veil_suite_min_body(uint16_t suite);
bool veil_suite_supported(uint16_t suite);
bool veil_suite_is_cbc(uint16_t suite);

/* ------------------------------------------------------------------------ */
/* Key schedule (keyschedule.c), PROTOCOL.md §5 */

int veil_expand_label(const uint8_t secret[VEIL_SECRET_LEN], const char *label, const uint8_t *ctx,
                      size_t ctx_len, uint8_t *out, size_t out_len);

typedef struct veil_schedule {
    uint8_t hs[VEIL_SECRET_LEN];
    uint8_t c_finished_key[VEIL_SECRET_LEN];
    uint8_t s_finished_key[VEIL_SECRET_LEN];
    uint8_t c_ap[VEIL_SECRET_LEN];
    uint8_t s_ap[VEIL_SECRET_LEN];
} veil_schedule;

/* hs = HKDF-Extract(salt = psk or 0^32, ikm) and both finished keys from the
 * handshake context th_hs (PROTOCOL.md §5). */
int veil_schedule_handshake(veil_schedule *ks, const uint8_t *ikm, size_t ikm_len, const uint8_t *psk,
                            const uint8_t th_hs[VEIL_HASH_LEN]);
/* c_ap_0 and s_ap_0 from the traffic context th_ap (PROTOCOL.md §5); wipes hs. */
int veil_schedule_traffic(veil_schedule *ks, const uint8_t th2[VEIL_HASH_LEN]);
/* S_{n+1} = Expand-Label(S_n, "upd", "", 32), in place. */
int veil_secret_update(uint8_t secret[VEIL_SECRET_LEN]);
void veil_schedule_wipe(veil_schedule *ks);

/* ------------------------------------------------------------------------ */
/* Record layer (record.c), PROTOCOL.md §2, §6 */

/* One direction's protection state. */
typedef struct veil_dir {
    uint64_t seq;      /* next sequence number to send / expect */
    veil_cipher *cipher; /* NULL while unencrypted */
    uint16_t suite;
    uint8_t secret[VEIL_SECRET_LEN];
    uint8_t epoch;
    uint64_t records_on_key;
    uint64_t bytes_on_key;
} veil_dir;

int veil_dir_set_key(veil_dir *d, uint16_t suite, int encrypt, const uint8_t secret[VEIL_SECRET_LEN]);
/* Moves to the next epoch's key. */
int veil_dir_next_epoch(veil_dir *d);
void veil_dir_clear(veil_dir *d);

/*
 * Appends one record (header and protected body) to out and advances d->seq.
 * rng/rng_user give the CBC IV.
 */
int veil_record_write(veil_dir *d, uint8_t type, const uint8_t *content, size_t len,
                      int (*rng)(void *, uint8_t *, size_t), void *rng_user, veil_buf *out);
/* The same with the content in two pieces, pre || content, sealed (or
 * CRC-protected) straight into out without joining them first. */
int veil_record_write2(veil_dir *d, uint8_t type, const uint8_t *pre, size_t pre_len, const uint8_t *content,
                       size_t len, int (*rng)(void *, uint8_t *, size_t), void *rng_user, veil_buf *out);

/*
 * Checks and unprotects one complete record (p has exactly 16 + hdr->length
 * bytes) into content (room for VEIL_MAX_BODY bytes).  Verifies the CRC of
 * unencrypted records or decrypts with d's key, and that the encrypted flag
 * agrees with whether d has a key.  Does not check or advance the sequence.
 */
int veil_record_open(veil_dir *d, const veil_header *hdr, const uint8_t *p, uint8_t *content,
                     size_t *content_len) VEIL_MUST_CHECK;

/*
 * Like veil_record_open, without a copy: decrypts in place inside the record
 * at p (which it overwrites) and points *content into it; an unencrypted
 * record's content is its body.  On failure the record's bytes are garbage.
 */
int veil_record_open_inplace(veil_dir *d, const veil_header *hdr, uint8_t *p, uint8_t **content,
                             size_t *content_len) VEIL_MUST_CHECK;

/* Unencrypted record: checks the CRC-32C; the content is the body minus 4 bytes. */
int veil_record_check_crc(const veil_header *hdr, const uint8_t *p, size_t *content_len) VEIL_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* Identity internals (identity.c) */

struct veil_identity {
    veil_pkey *key;
    veil_buf spki;
    uint8_t fingerprint[VEIL_FINGERPRINT_LEN];
};

/* Builds the ServerVerify signed message for th1 (PROTOCOL.md §4.4). */
#define VEIL_SIG_CONTEXT "Veil v1 server signature"
#define VEIL_SIG_MSG_LEN (64 + sizeof(VEIL_SIG_CONTEXT) + VEIL_HASH_LEN)
void veil_sig_message(const uint8_t th1[VEIL_HASH_LEN], uint8_t out[VEIL_SIG_MSG_LEN]);
#define VEIL_CLIENT_SIG_CONTEXT "Veil v1 client signature"
void veil_client_sig_message(const uint8_t th[VEIL_HASH_LEN], uint8_t out[VEIL_SIG_MSG_LEN]);

/* Keylog lookup (keylog.c): 0 and the secret, or VEIL_ERR_NO_KEY. */
int veil_keylog_find(const veil_keylog *kl, const uint8_t client_random[VEIL_RANDOM_LEN], int dir,
                     uint8_t secret[VEIL_SECRET_LEN]);
/* Formats "LABEL <random hex> <secret hex>" into out (needs 160 bytes). */
void veil_keylog_format(const char *label, const uint8_t random[VEIL_RANDOM_LEN],
                        const uint8_t secret[VEIL_SECRET_LEN], char out[160]);

void veil_hex(const uint8_t *p, size_t n, char *out); /* 2n chars + NUL */

#endif /* VEIL_INTERNAL_H */
