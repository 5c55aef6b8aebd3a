/*
 * buf.c - caller-owned growable buffers and the small memory utilities.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "veil_internal.h"

void veil_buf_init(veil_buf *b)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
}

void veil_buf_free(veil_buf *b)
{
    if (b->base != NULL) {
        veil_wipe(b->base, b->cap);
        free(b->base);
    }
    veil_buf_init(b);
}

/* Moves b into a new block of cap bytes (cap >= b->len), wiping the old one. */
static int buf_regrow(veil_buf *b, size_t cap)
{
    /* Not realloc: the old block may hold secrets and must be wiped before release. */
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return VEIL_ERR_NOMEM;
    if (b->base != NULL) {
        memcpy(p, b->base, b->len);
        veil_wipe(b->base, b->cap);
        free(b->base);
    }
    b->base = p;
    b->cap = cap;
    return 0;
}

int veil_buf_reserve(veil_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return VEIL_ERR_NOMEM;
    size_t want = b->len + n;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < want)
        cap *= 2;
    return buf_regrow(b, cap);
}

int veil_buf_reserve_exact(veil_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return VEIL_ERR_NOMEM;
    return buf_regrow(b, b->len + n);
}

void veil_buf_consume(veil_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}

int veil_buf_append(veil_buf *b, const void *p, size_t n)
{
    int ret = veil_buf_reserve(b, n);
    if (ret != 0)
        return ret;
    if (n != 0)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    return 0;
}

int veil_buf_u8(veil_buf *b, uint8_t v) { return veil_buf_append(b, &v, 1); }

int veil_buf_u16(veil_buf *b, uint16_t v)
{
    uint8_t t[2];
    veil_put_u16(t, v);
    return veil_buf_append(b, t, 2);
}

int veil_buf_u24(veil_buf *b, uint32_t v)
{
    uint8_t t[3];
    veil_put_u24(t, v);
    return veil_buf_append(b, t, 3);
}

int veil_buf_u64(veil_buf *b, uint64_t v)
{
    uint8_t t[8];
    veil_put_u64(t, v);
    return veil_buf_append(b, t, 8);
}

void veil_memzero(void *p, size_t n)
{
    if (p != NULL && n != 0)
        OPENSSL_cleanse(p, n);
}

int veil_memeq_ct(const void *a, const void *b, size_t n) { return CRYPTO_memcmp(a, b, n); }

void veil_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}
