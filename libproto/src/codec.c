/*
 * codec.c - the Veil wire format: bounds-checked reading, the record header
 * (PROTOCOL.md §2), handshake messages (§4), application messages (§7) and
 * alerts (§8).  This file is the only place these bytes are parsed.
 */
#include <string.h>

#include "veil_internal.h"

/*
 * Record header, PROTOCOL.md §2.1:
 *
 *    0       1       2       3       4       5       6       7
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * | 0x56  | 0x4C  |version| type  | flags | epoch |    length     |
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * |                   sequence number (u64)                       |
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 */
int veil_header_decode(const uint8_t *p, size_t len, veil_header *h)
{
    memset(h, 0, sizeof(*h));
    if (len < VEIL_HEADER_LEN)
        return VEIL_ERR_NEED_MORE;
    h->version = p[2];
    h->type = p[3];
    h->flags = p[4];
    h->epoch = p[5];
    h->length = (uint16_t)(p[6] << 8 | p[7]);
    h->seq = veil_get_u64(p + 8);
    if (p[0] != VEIL_MAGIC0 || p[1] != VEIL_MAGIC1)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (h->version != VEIL_VERSION_1)
        return VEIL_PERR(VEIL_ALERT_PROTOCOL_VERSION);
    if (h->type < VEIL_REC_HANDSHAKE || h->type > VEIL_REC_KEY_UPDATE ||
        (h->flags & ~VEIL_FLAGS_KNOWN) != 0)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (h->length > VEIL_MAX_BODY)
        return VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW);
    if (!(h->flags & VEIL_FLAG_ENCRYPTED) && (h->epoch != 0 || h->length < 4))
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    return 0;
}

void veil_header_encode(const veil_header *h, uint8_t out[VEIL_HEADER_LEN])
{
    out[0] = VEIL_MAGIC0;
    out[1] = VEIL_MAGIC1;
    out[2] = h->version;
    out[3] = h->type;
    out[4] = h->flags;
    out[5] = h->epoch;
    veil_put_u16(out + 6, h->length);
    veil_put_u64(out + 8, h->seq);
}

/* ---- handshake framing: hs_type u8 || length u24 || body ---- */

int veil_hs_split(const uint8_t *content, size_t len, uint8_t *type, const uint8_t **body,
                  size_t *body_len)
{
    veil_reader r;
    veil_rd_init(&r, content, len);
    *type = veil_rd_u8(&r);
    uint32_t n = veil_rd_u24(&r);
    *body = veil_rd_bytes(&r, n);
    *body_len = n;
    if (!veil_rd_done(&r))
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    return 0;
}

/* Starts a message: type and a length placeholder; returns the body offset. */
static int hs_begin(veil_buf *out, uint8_t type, size_t *mark)
{
    int ret = veil_buf_u8(out, type);
    if (ret == 0)
        ret = veil_buf_u24(out, 0);
    *mark = out->len;
    return ret;
}

static int hs_end(veil_buf *out, size_t mark)
{
    size_t n = out->len - mark;
    if (n > 0xFFFFFF)
        return VEIL_ERR_INVALID_ARG;
    veil_put_u24(out->base + mark - 3, (uint32_t)n);
    return 0;
}

/* Extensions block: u16 length, then {u16 type, u16 len, data}; no duplicates. */
static int extensions_check(const uint8_t *p, size_t len)
{
    veil_reader r;
    uint16_t seen[64];
    size_t n_seen = 0;
    veil_rd_init(&r, p, len);
    while (veil_rd_left(&r) > 0) {
        uint16_t type = veil_rd_u16(&r);
        uint16_t elen = veil_rd_u16(&r);
        if (veil_rd_bytes(&r, elen) == NULL)
            return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
        for (size_t i = 0; i < n_seen; i++)
            if (seen[i] == type)
                return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
        if (n_seen == sizeof(seen) / sizeof(seen[0]))
            return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
        seen[n_seen++] = type;
    }
    return r.failed ? VEIL_PERR(VEIL_ALERT_DECODE_ERROR) : 0;
}

bool veil_ext_find(const uint8_t *ext, size_t len, uint16_t type, const uint8_t **data, uint16_t *data_len)
{
    veil_reader r;
    veil_rd_init(&r, ext, len);
    while (veil_rd_left(&r) >= 4) {
        uint16_t t = veil_rd_u16(&r), n = veil_rd_u16(&r);
        const uint8_t *d = veil_rd_bytes(&r, n);
        if (d == NULL)
            return false;
        if (t == type) {
            *data = d;
            *data_len = n;
            return true;
        }
    }
    return false;
}

int veil_client_verify_decode(const uint8_t *body, size_t len, veil_client_verify *cv)
{
    veil_reader r;
    veil_rd_init(&r, body, len);
    cv->spki_len = veil_rd_u16(&r);
    cv->spki = veil_rd_bytes(&r, cv->spki_len);
    cv->scheme = veil_rd_u16(&r);
    cv->sig_len = veil_rd_u16(&r);
    cv->sig = veil_rd_bytes(&r, cv->sig_len);
    return veil_rd_done(&r) ? 0 : VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
}

int veil_client_verify_encode(const veil_client_verify *cv, veil_buf *out)
{
    size_t mark;
    int ret = hs_begin(out, VEIL_HS_CLIENT_VERIFY, &mark);
    ret |= veil_buf_u16(out, cv->spki_len);
    ret |= veil_buf_append(out, cv->spki, cv->spki_len);
    ret |= veil_buf_u16(out, cv->scheme);
    ret |= veil_buf_u16(out, cv->sig_len);
    ret |= veil_buf_append(out, cv->sig, cv->sig_len);
    if (ret != 0)
        return VEIL_ERR_NOMEM;
    return hs_end(out, mark);
}

/* ClientKeyExchange body, PROTOCOL.md §4.11: u16 len, RSA-OAEP ciphertext */
int veil_client_key_exchange_decode(const uint8_t *body, size_t len, const uint8_t **ct, uint16_t *ct_len)
{
    veil_reader r;
    veil_rd_init(&r, body, len);
    *ct_len = veil_rd_u16(&r);
    *ct = veil_rd_bytes(&r, *ct_len);
    return veil_rd_done(&r) && *ct_len > 0 ? 0 : VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
}

int veil_client_key_exchange_encode(const uint8_t *ct, size_t ct_len, veil_buf *out)
{
    size_t mark;
    if (ct_len > 0xFFFF)
        return VEIL_ERR_INVALID_ARG;
    int ret = hs_begin(out, VEIL_HS_CLIENT_KEY_EXCHANGE, &mark);
    ret |= veil_buf_u16(out, (uint16_t)ct_len);
    ret |= veil_buf_append(out, ct, ct_len);
    if (ret != 0)
        return VEIL_ERR_NOMEM;
    return hs_end(out, mark);
}

static int read_extensions(veil_reader *r, const uint8_t **ext, uint16_t *ext_len)
{
    *ext_len = veil_rd_u16(r);
    *ext = veil_rd_bytes(r, *ext_len);
    if (r->failed)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    return extensions_check(*ext, *ext_len);
}

/*
 * ClientHello body, PROTOCOL.md §4.2:
 *   u8 n_versions, versions[n] | u8 mode | u8 n_suites, u16 suites[n] |
 *   u8 n_shares, {u16 group, u16 len, key[len]}[n] | random[32] | u16 ext_len, ext
 */
int veil_client_hello_decode(const uint8_t *body, size_t len, veil_client_hello *ch)
{
    veil_reader r;
    memset(ch, 0, sizeof(*ch));
    veil_rd_init(&r, body, len);
    ch->n_versions = veil_rd_u8(&r);
    if (ch->n_versions < 1 || ch->n_versions > VEIL_MAX_VERSIONS)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    for (unsigned i = 0; i < ch->n_versions; i++)
        ch->versions[i] = veil_rd_u8(&r);
    ch->mode = veil_rd_u8(&r);
    ch->n_suites = veil_rd_u8(&r);
    if (ch->n_suites < 1 || ch->n_suites > VEIL_MAX_SUITES)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    for (unsigned i = 0; i < ch->n_suites; i++)
        ch->suites[i] = veil_rd_u16(&r);
    ch->n_shares = veil_rd_u8(&r);
    if (ch->n_shares < 1 || ch->n_shares > VEIL_MAX_SHARES)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    for (unsigned i = 0; i < ch->n_shares; i++) {
        ch->groups[i] = veil_rd_u16(&r);
        ch->share_lens[i] = veil_rd_u16(&r);
        ch->shares[i] = veil_rd_bytes(&r, ch->share_lens[i]);
        if (r.failed)
            return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
        for (unsigned j = 0; j < i; j++)
            if (ch->groups[j] == ch->groups[i])
                return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    }
    ch->random = veil_rd_bytes(&r, VEIL_RANDOM_LEN);
    int ret = read_extensions(&r, &ch->ext, &ch->ext_len);
    if (ret != 0)
        return ret;
    if (!veil_rd_done(&r))
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (ch->mode != VEIL_MODE_ENCRYPTED && ch->mode != VEIL_MODE_PLAINTEXT)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    return 0;
}

int veil_client_hello_encode(const veil_client_hello *ch, veil_buf *out)
{
    size_t mark;
    int ret = hs_begin(out, VEIL_HS_CLIENT_HELLO, &mark);
    ret |= veil_buf_u8(out, ch->n_versions);
    ret |= veil_buf_append(out, ch->versions, ch->n_versions);
    ret |= veil_buf_u8(out, ch->mode);
    ret |= veil_buf_u8(out, ch->n_suites);
    for (unsigned i = 0; i < ch->n_suites; i++)
        ret |= veil_buf_u16(out, ch->suites[i]);
    ret |= veil_buf_u8(out, ch->n_shares);
    for (unsigned i = 0; i < ch->n_shares; i++) {
        ret |= veil_buf_u16(out, ch->groups[i]);
        ret |= veil_buf_u16(out, ch->share_lens[i]);
        ret |= veil_buf_append(out, ch->shares[i], ch->share_lens[i]);
    }
    ret |= veil_buf_append(out, ch->random, VEIL_RANDOM_LEN);
    ret |= veil_buf_u16(out, ch->ext_len);
    ret |= veil_buf_append(out, ch->ext, ch->ext_len);
    if (ret != 0)
        return VEIL_ERR_NOMEM;
    return hs_end(out, mark);
}

/*
 * ServerHello body, PROTOCOL.md §4.3:
 *   u8 version | u8 mode | u16 suite | u16 group | random[32] |
 *   u16 key_len, key | u16 identity_len, identity (SPKI DER) | u16 ext_len, ext
 */
int veil_server_hello_decode(const uint8_t *body, size_t len, veil_server_hello *sh)
{
    veil_reader r;
    memset(sh, 0, sizeof(*sh));
    veil_rd_init(&r, body, len);
    sh->version = veil_rd_u8(&r);
    sh->mode = veil_rd_u8(&r);
    sh->suite = veil_rd_u16(&r);
    sh->group = veil_rd_u16(&r);
    sh->random = veil_rd_bytes(&r, VEIL_RANDOM_LEN);
    sh->key_share_len = veil_rd_u16(&r);
    sh->key_share = veil_rd_bytes(&r, sh->key_share_len);
    sh->identity_len = veil_rd_u16(&r);
    sh->identity = veil_rd_bytes(&r, sh->identity_len);
    int ret = read_extensions(&r, &sh->ext, &sh->ext_len);
    if (ret != 0)
        return ret;
    if (!veil_rd_done(&r))
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    return 0;
}

int veil_server_hello_encode(const veil_server_hello *sh, veil_buf *out)
{
    size_t mark;
    int ret = hs_begin(out, VEIL_HS_SERVER_HELLO, &mark);
    ret |= veil_buf_u8(out, sh->version);
    ret |= veil_buf_u8(out, sh->mode);
    ret |= veil_buf_u16(out, sh->suite);
    ret |= veil_buf_u16(out, sh->group);
    ret |= veil_buf_append(out, sh->random, VEIL_RANDOM_LEN);
    ret |= veil_buf_u16(out, sh->key_share_len);
    ret |= veil_buf_append(out, sh->key_share, sh->key_share_len);
    ret |= veil_buf_u16(out, sh->identity_len);
    ret |= veil_buf_append(out, sh->identity, sh->identity_len);
    ret |= veil_buf_u16(out, sh->ext_len);
    ret |= veil_buf_append(out, sh->ext, sh->ext_len);
    if (ret != 0)
        return VEIL_ERR_NOMEM;
    return hs_end(out, mark);
}

/* ServerVerify body, PROTOCOL.md §4.4: u16 scheme | u16 sig_len, sig */
int veil_server_verify_decode(const uint8_t *body, size_t len, veil_server_verify *sv)
{
    veil_reader r;
    veil_rd_init(&r, body, len);
    sv->scheme = veil_rd_u16(&r);
    sv->sig_len = veil_rd_u16(&r);
    sv->sig = veil_rd_bytes(&r, sv->sig_len);
    return veil_rd_done(&r) ? 0 : VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
}

int veil_server_verify_encode(const veil_server_verify *sv, veil_buf *out)
{
    size_t mark;
    int ret = hs_begin(out, VEIL_HS_SERVER_VERIFY, &mark);
    ret |= veil_buf_u16(out, sv->scheme);
    ret |= veil_buf_u16(out, sv->sig_len);
    ret |= veil_buf_append(out, sv->sig, sv->sig_len);
    if (ret != 0)
        return VEIL_ERR_NOMEM;
    return hs_end(out, mark);
}

/* Finished body, PROTOCOL.md §4.5: verify_data[32] */
int veil_finished_decode(const uint8_t *body, size_t len, const uint8_t **verify_data)
{
    if (len != VEIL_HASH_LEN)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    *verify_data = body;
    return 0;
}

int veil_finished_encode(const uint8_t verify_data[VEIL_HASH_LEN], veil_buf *out)
{
    size_t mark;
    int ret = hs_begin(out, VEIL_HS_FINISHED, &mark);
    ret |= veil_buf_append(out, verify_data, VEIL_HASH_LEN);
    if (ret != 0)
        return VEIL_ERR_NOMEM;
    return hs_end(out, mark);
}

/* Application message, PROTOCOL.md §7: u8 kind | u64 timestamp_ms | payload */
int veil_message_decode(const uint8_t *content, size_t len, uint8_t *kind, uint64_t *ts,
                        const uint8_t **data, size_t *data_len)
{
    veil_reader r;
    veil_rd_init(&r, content, len);
    *kind = veil_rd_u8(&r);
    *ts = veil_rd_u64(&r);
    if (r.failed)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    *data = r.p;
    *data_len = veil_rd_left(&r);
    return 0;
}

/* Alert, PROTOCOL.md §8: u8 level | u8 code */
int veil_alert_decode(const uint8_t *content, size_t len, uint8_t *level, uint8_t *code)
{
    if (len != 2)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    *level = content[0];
    *code = content[1];
    if (*level != VEIL_ALERT_LEVEL_WARNING && *level != VEIL_ALERT_LEVEL_FATAL)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if ((*level == VEIL_ALERT_LEVEL_WARNING) != (*code == VEIL_ALERT_CLOSE_NOTIFY))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    return 0;
}
