/*
 * identity.c - identity keys (Ed25519, RSA 2048..8192) and fingerprints, PROTOCOL.md §4.3.1.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "veil_internal.h"

static int identity_finish(veil_pkey *key, veil_identity **out)
{
    veil_identity *id = calloc(1, sizeof(*id));
    int ret;
    if (id == NULL) {
        veil_pkey_free(key);
        return VEIL_ERR_NOMEM;
    }
    id->key = key;
    veil_buf_init(&id->spki);
    if (!veil_pkey_usable_identity(key)) {
        ret = VEIL_ERR_KEY_FORMAT;
        goto Fail;
    }
    if ((ret = veil_pkey_spki(key, &id->spki)) != 0 ||
        (ret = veil_sha256(id->spki.base, id->spki.len, id->fingerprint)) != 0)
        goto Fail;
    *out = id;
    return 0;
Fail:
    veil_identity_free(id);
    return ret;
}

int veil_identity_generate(int (*rng)(void *user, uint8_t *out, size_t len), void *user,
                           veil_identity **out)
{
    uint8_t seed[32];
    veil_pkey *key = NULL;
    int ret;
    if (rng(user, seed, sizeof(seed)) != 0)
        return VEIL_ERR_RNG;
    ret = veil_pkey_ed25519_from_seed(seed, &key);
    veil_memzero(seed, sizeof(seed));
    return ret != 0 ? ret : identity_finish(key, out);
}

int veil_identity_generate_rsa(unsigned bits, veil_identity **out)
{
    veil_pkey *key = NULL;
    if (bits < 2048 || bits > 8192)
        return VEIL_ERR_INVALID_ARG;
    int ret = veil_pkey_rsa_generate(bits, &key);
    return ret != 0 ? ret : identity_finish(key, out);
}

const char *veil_identity_algorithm(const veil_identity *id)
{
    static _Thread_local char name[16];
    if (veil_pkey_is_ed25519(id->key))
        return "Ed25519";
    snprintf(name, sizeof(name), "RSA-%d", veil_pkey_bits(id->key));
    return name;
}

int veil_identity_from_pem(const char *pem, size_t len, veil_identity **out)
{
    veil_pkey *key = NULL;
    int ret = veil_pkey_from_pem(pem, len, &key);
    return ret != 0 ? ret : identity_finish(key, out);
}

int veil_identity_to_pem(const veil_identity *id, veil_buf *out) { return veil_pkey_to_pem(id->key, out); }

int veil_identity_public_pem(const veil_identity *id, veil_buf *out)
{
    return veil_pkey_public_pem(id->key, out);
}

void veil_identity_fingerprint(const veil_identity *id, uint8_t fp[VEIL_FINGERPRINT_LEN])
{
    memcpy(fp, id->fingerprint, VEIL_FINGERPRINT_LEN);
}

void veil_identity_free(veil_identity *id)
{
    if (id == NULL)
        return;
    veil_pkey_free(id->key);
    veil_buf_free(&id->spki);
    free(id);
}

void veil_fingerprint_hex(const uint8_t fp[VEIL_FINGERPRINT_LEN], char out[VEIL_FINGERPRINT_HEX_LEN])
{
    veil_hex(fp, VEIL_FINGERPRINT_LEN, out);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int veil_fingerprint_parse(const char *text, uint8_t fp[VEIL_FINGERPRINT_LEN])
{
    size_t n = 0;
    if (strlen(text) > 7 && tolower((unsigned char)text[0]) == 's' &&
        tolower((unsigned char)text[1]) == 'h' && tolower((unsigned char)text[2]) == 'a' &&
        memcmp(text + 3, "256:", 4) == 0)
        text += 7;
    for (const char *s = text; *s != '\0'; s++) {
        if (*s == ':')
            continue;
        int hi = hexval((unsigned char)s[0]), lo = s[1] != '\0' ? hexval((unsigned char)s[1]) : -1;
        if (hi < 0 || lo < 0 || n == VEIL_FINGERPRINT_LEN)
            return VEIL_ERR_INVALID_ARG;
        fp[n++] = (uint8_t)(hi << 4 | lo);
        s++;
    }
    return n == VEIL_FINGERPRINT_LEN ? 0 : VEIL_ERR_INVALID_ARG;
}

/* PROTOCOL.md §4.4: 64 x 0x20 || "Veil v1 server signature" || 0x00 || H(CH||SH);
 * §4.15: the client's with "Veil v1 client signature" over its own context. */
static void sig_message(const char *context, const uint8_t th[VEIL_HASH_LEN], uint8_t out[VEIL_SIG_MSG_LEN])
{
    memset(out, 0x20, 64);
    memcpy(out + 64, context, sizeof(VEIL_SIG_CONTEXT)); /* includes the NUL; both contexts are as long */
    memcpy(out + 64 + sizeof(VEIL_SIG_CONTEXT), th, VEIL_HASH_LEN);
}

void veil_sig_message(const uint8_t th1[VEIL_HASH_LEN], uint8_t out[VEIL_SIG_MSG_LEN])
{
    sig_message(VEIL_SIG_CONTEXT, th1, out);
}

void veil_client_sig_message(const uint8_t th[VEIL_HASH_LEN], uint8_t out[VEIL_SIG_MSG_LEN])
{
    _Static_assert(sizeof(VEIL_CLIENT_SIG_CONTEXT) == sizeof(VEIL_SIG_CONTEXT), "contexts of equal length");
    sig_message(VEIL_CLIENT_SIG_CONTEXT, th, out);
}
