/*
 * record.c - the record layer: framing, CRC-32C for unencrypted records and
 * per-direction protection state (PROTOCOL.md §2, §6).
 */
#include <string.h>

#include "veil_internal.h"

#define CRC_LEN 4

int veil_dir_set_key(veil_dir *d, uint16_t suite, int encrypt, const uint8_t secret[VEIL_SECRET_LEN])
{
    veil_cipher *c = NULL;
    int ret = veil_cipher_new(suite, encrypt, &c);
    if (ret != 0)
        return ret;
    if ((ret = veil_cipher_set_secret(c, secret)) != 0) {
        veil_cipher_free(c);
        return ret;
    }
    veil_cipher_free(d->cipher);
    d->cipher = c;
    memcpy(d->secret, secret, VEIL_SECRET_LEN);
    d->suite = suite;
    d->epoch = 0;
    d->records_on_key = 0;
    d->bytes_on_key = 0;
    return 0;
}

int veil_dir_next_epoch(veil_dir *d)
{
    int ret;
    if (d->cipher == NULL)
        return VEIL_ERR_STATE;
    if ((ret = veil_secret_update(d->secret)) != 0 || (ret = veil_cipher_set_secret(d->cipher, d->secret)) != 0)
        return ret;
    d->epoch++;
    d->records_on_key = 0;
    d->bytes_on_key = 0;
    return 0;
}

void veil_dir_clear(veil_dir *d)
{
    veil_cipher_free(d->cipher);
    veil_memzero(d, sizeof(*d));
}

int veil_record_write2(veil_dir *d, uint8_t type, const uint8_t *pre, size_t pre_len, const uint8_t *content,
                       size_t len, int (*rng)(void *, uint8_t *, size_t), void *rng_user, veil_buf *out)
{
    veil_header h = {.version = VEIL_VERSION_1, .type = type, .seq = d->seq};
    size_t body_len;
    uint8_t iv[16];
    int ret;

    if (pre_len > VEIL_MAX_CONTENT || len > VEIL_MAX_CONTENT - pre_len)
        return VEIL_ERR_TOO_LARGE;
    if (d->seq == UINT64_MAX)
        return VEIL_ERR_STATE; /* sequence space exhausted: never wraps */
    size_t total = pre_len + len;
    body_len = total + (d->cipher != NULL ? veil_cipher_overhead(d->cipher, total) : CRC_LEN);
    if ((ret = veil_buf_reserve(out, VEIL_HEADER_LEN + body_len)) != 0)
        return ret;
    uint8_t *hdr = out->base + out->len, *body = hdr + VEIL_HEADER_LEN;
    h.length = (uint16_t)body_len;
    if (d->cipher != NULL) {
        h.flags = VEIL_FLAG_ENCRYPTED;
        h.epoch = d->epoch;
        veil_header_encode(&h, hdr);
        if (veil_suite_is_cbc(d->suite) && rng(rng_user, iv, sizeof(iv)) != 0)
            return VEIL_ERR_RNG;
        if ((ret = veil_cipher_seal(d->cipher, hdr, d->seq, pre, pre_len, content, len, iv, body)) != 0)
            return ret;
        d->records_on_key++;
        d->bytes_on_key += total;
    } else {
        veil_header_encode(&h, hdr);
        if (len != 0)
            memmove(body + pre_len, content, len);
        if (pre_len != 0)
            memcpy(body, pre, pre_len);
        uint32_t crc = veil_crc32c(veil_crc32c(0, hdr, VEIL_HEADER_LEN), body, total);
        veil_put_u32(body + total, crc);
    }
    out->len += VEIL_HEADER_LEN + body_len;
    d->seq++;
    return 0;
}

int veil_record_write(veil_dir *d, uint8_t type, const uint8_t *content, size_t len,
                      int (*rng)(void *, uint8_t *, size_t), void *rng_user, veil_buf *out)
{
    return veil_record_write2(d, type, NULL, 0, content, len, rng, rng_user, out);
}

int veil_record_check_crc(const veil_header *hdr, const uint8_t *p, size_t *content_len)
{
    const uint8_t *body = p + VEIL_HEADER_LEN;
    if (hdr->length < CRC_LEN)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    size_t n = hdr->length - CRC_LEN;
    uint32_t crc = veil_crc32c(veil_crc32c(0, p, VEIL_HEADER_LEN), body, n);
    if (crc != veil_get_u32(body + n))
        return VEIL_PERR(VEIL_ALERT_BAD_CHECKSUM);
    if (n > VEIL_MAX_CONTENT)
        return VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW);
    *content_len = n;
    return 0;
}

/* Decrypts the body of p into content (which may be the body itself). */
static int record_decrypt(veil_dir *d, const veil_header *hdr, const uint8_t *p, uint8_t *content,
                          size_t *content_len)
{
    if (hdr->epoch != d->epoch)
        return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
    int ret = veil_cipher_open(d->cipher, p, hdr->seq, p + VEIL_HEADER_LEN, hdr->length, content, content_len);
    if (ret != 0)
        return ret;
    if (*content_len > VEIL_MAX_CONTENT)
        return VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW);
    d->records_on_key++;
    d->bytes_on_key += *content_len;
    return 0;
}

int veil_record_open(veil_dir *d, const veil_header *hdr, const uint8_t *p, uint8_t *content,
                     size_t *content_len)
{
    bool encrypted = (hdr->flags & VEIL_FLAG_ENCRYPTED) != 0;

    if (encrypted != (d->cipher != NULL))
        return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
    if (!encrypted) {
        int ret = veil_record_check_crc(hdr, p, content_len);
        if (ret == 0)
            memcpy(content, p + VEIL_HEADER_LEN, *content_len);
        return ret;
    }
    return record_decrypt(d, hdr, p, content, content_len);
}

int veil_record_open_inplace(veil_dir *d, const veil_header *hdr, uint8_t *p, uint8_t **content,
                             size_t *content_len)
{
    bool encrypted = (hdr->flags & VEIL_FLAG_ENCRYPTED) != 0;
    uint8_t *body = p + VEIL_HEADER_LEN;

    if (encrypted != (d->cipher != NULL))
        return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
    if (!encrypted) {
        int ret = veil_record_check_crc(hdr, p, content_len);
        if (ret == 0)
            *content = body;
        return ret;
    }
    /* CBC: the plaintext replaces the ciphertext, after the explicit IV. */
    uint8_t *out = body + (veil_suite_is_cbc(d->suite) ? 16 : 0);
    int ret = record_decrypt(d, hdr, p, out, content_len);
    if (ret == 0)
        *content = out;
    return ret;
}
