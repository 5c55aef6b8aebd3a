/*
 * peer_msg.c - the veil-peer message payload and acknowledgement
 * (docs/PEER.md, MESSAGE FORMAT).  Bytes in, bytes out; every field is read
 * through an explicit length check.
 */
#include <string.h>

#include "peer.h"

int peer_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > PEER_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

uint32_t peer_msg_crc(uint8_t type, uint64_t timestamp_ms, const char *sender, const uint8_t *text,
                      size_t text_len)
{
    uint8_t head[10];
    size_t slen = strlen(sender);
    head[0] = type;
    put_u64(head + 1, timestamp_ms);
    head[9] = (uint8_t)slen;
    uint32_t crc = veil_crc32c(0, head, sizeof head);
    crc = veil_crc32c(crc, (const uint8_t *)sender, slen);
    return veil_crc32c(crc, text, text_len);
}

size_t peer_msg_encode(uint64_t timestamp_ms, const char *sender, const uint8_t *text,
                       size_t text_len, int corrupt_crc, uint8_t *out, size_t cap)
{
    size_t slen = strlen(sender);
    if (!peer_name_ok(sender, slen) || text_len > PEER_MAX_TEXT)
        return 0;
    size_t total = PEER_MSG_FIXED_LEN + slen + text_len;
    if (total > cap)
        return 0;
    uint32_t crc = peer_msg_crc(PEER_MSG_TEXT, timestamp_ms, sender, text, text_len);
    if (corrupt_crc)
        crc ^= 0xFFFFFFFFu;
    out[0] = PEER_MSG_TEXT;
    put_u32(out + 1, crc);
    put_u64(out + 5, timestamp_ms);
    out[13] = (uint8_t)slen;
    memcpy(out + PEER_MSG_FIXED_LEN, sender, slen);
    if (text_len > 0)
        memcpy(out + PEER_MSG_FIXED_LEN + slen, text, text_len);
    return total;
}

int peer_msg_decode(const uint8_t *p, size_t n, peer_msg *m)
{
    memset(m, 0, sizeof *m);
    if (n < PEER_MSG_FIXED_LEN)
        return PEER_DEC_SHORT;
    m->type = p[0];
    m->crc = get_u32(p + 1);
    m->timestamp_ms = get_u64(p + 5);
    size_t slen = p[13];
    if (n - PEER_MSG_FIXED_LEN < slen)
        return PEER_DEC_SHORT;
    /* The type is checked after the lengths so that a future type with the
       same framing is reported as unknown rather than as garbage. */
    if (m->type != PEER_MSG_TEXT)
        return PEER_DEC_TYPE;
    if (!peer_name_ok((const char *)p + PEER_MSG_FIXED_LEN, slen))
        return PEER_DEC_SENDER;
    memcpy(m->sender, p + PEER_MSG_FIXED_LEN, slen);
    m->sender[slen] = '\0';
    m->text = p + PEER_MSG_FIXED_LEN + slen;
    m->text_len = n - PEER_MSG_FIXED_LEN - slen;
    m->crc_computed = peer_msg_crc(m->type, m->timestamp_ms, m->sender, m->text, m->text_len);
    if (m->crc_computed != m->crc)
        return PEER_DEC_CRC;
    return PEER_DEC_OK;
}

const char *peer_dec_name(int r)
{
    switch (r) {
    case PEER_DEC_OK: return "ok";
    case PEER_DEC_SHORT: return "truncated payload";
    case PEER_DEC_TYPE: return "unknown message type";
    case PEER_DEC_SENDER: return "invalid sender name";
    case PEER_DEC_CRC: return "CRC-32C mismatch";
    default: return "unknown error";
    }
}

const char *peer_status_name(int status)
{
    switch (status) {
    case PEER_ST_SHOWN: return "shown";
    case PEER_ST_MALFORMED: return "malformed";
    case PEER_ST_BAD_CRC: return "bad_crc";
    case PEER_ST_STALE: return "stale_timestamp";
    case PEER_ST_SENDER_MISMATCH: return "sender_mismatch";
    case PEER_ST_UNKNOWN_TYPE: return "unknown_type";
    default: return "unknown_status";
    }
}

size_t peer_ack_encode(uint8_t status, const char *reason, uint8_t *out, size_t cap)
{
    if (cap < 1)
        return 0;
    size_t rlen = reason != NULL ? strlen(reason) : 0;
    if (rlen > PEER_MAX_REASON)
        rlen = PEER_MAX_REASON;
    if (rlen > cap - 1)
        rlen = cap - 1;
    /* Never cut a UTF-8 sequence in half. */
    while (rlen > 0 && rlen < strlen(reason) && ((uint8_t)reason[rlen] & 0xC0) == 0x80)
        rlen--;
    out[0] = status;
    if (rlen > 0)
        memcpy(out + 1, reason, rlen);
    return 1 + rlen;
}

int peer_ack_decode(const uint8_t *p, size_t n, uint8_t *status, const uint8_t **reason,
                    size_t *reason_len)
{
    if (n < 1)
        return -1;
    *status = p[0];
    *reason = p + 1;
    *reason_len = n - 1;
    return 0;
}

int peer_ts_check(uint64_t now_ms, uint64_t ts_ms, uint64_t max_skew_ms, int64_t *delta_ms)
{
    /* Differences are computed in unsigned arithmetic and clamped, so a
       hostile timestamp of 0 or 2^64-1 cannot overflow. */
    uint64_t diff = ts_ms >= now_ms ? ts_ms - now_ms : now_ms - ts_ms;
    if (diff <= max_skew_ms)
        return 0;
    int64_t d = diff > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)diff;
    *delta_ms = ts_ms >= now_ms ? d : -d;
    return -1;
}
