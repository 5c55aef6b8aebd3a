/*
 * observer.c - the passive-observer API (PROTOCOL.md §10): decodes the
 * records of both directions of a recorded session, and decrypts them when
 * the keylog holds the session's traffic secrets.  Built on the same codec,
 * record and key-schedule code as the endpoints.
 */
#include <stdlib.h>
#include <string.h>

#include "veil_internal.h"

typedef struct obs_dir {
    veil_dir keys; /* receive-side protection state; cipher NULL until keyed */
    uint64_t next_seq;
    uint64_t offset; /* stream offset of the next byte fed */
    veil_buf pending;
    bool desync;
    bool closed;
} obs_dir;

struct veil_observer {
    const veil_keylog *keys;
    const veil_identity *rsa;  /* server key for RSA key-transport sessions */
    veil_hash_ctx *transcript; /* handshake messages, for RSA key transport */
    uint16_t group;
    bool psk_mode; /* the schedule needs a PSK the observer does not have */
    bool have_ch, have_sh;
    uint8_t client_random[VEIL_RANDOM_LEN];
    uint8_t mode;
    uint16_t suite;
    obs_dir d[2];
    /* Decrypted content of the current record: allocated at the first
     * decryption (a plaintext or keyless session never needs it), and wiped
     * up to the most it ever held when the observer is freed. */
    uint8_t *content;
    size_t content_used;
};

int veil_observer_new(const veil_keylog *keys, veil_observer **out)
{
    veil_observer *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return VEIL_ERR_NOMEM;
    o->keys = keys;
    if (veil_hash_new(&o->transcript) != 0) {
        free(o);
        return VEIL_ERR_NOMEM;
    }
    *out = o;
    return 0;
}

void veil_observer_set_rsa_identity(veil_observer *o, const veil_identity *id) { o->rsa = id; }

void veil_observer_free(veil_observer *o)
{
    if (o == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        veil_dir_clear(&o->d[i].keys);
        veil_buf_free(&o->d[i].pending);
    }
    veil_hash_free(o->transcript);
    if (o->content != NULL) {
        veil_wipe(o->content, o->content_used);
        free(o->content);
    }
    veil_memzero(o, sizeof(*o));
    free(o);
}

static void fill_client_hello(const veil_client_hello *ch, veil_hello_info *hi)
{
    hi->n_versions = ch->n_versions;
    memcpy(hi->versions, ch->versions, ch->n_versions);
    hi->mode = ch->mode;
    hi->n_suites = ch->n_suites;
    memcpy(hi->suites, ch->suites, ch->n_suites * sizeof(ch->suites[0]));
    hi->n_groups = ch->n_shares;
    memcpy(hi->groups, ch->groups, ch->n_shares * sizeof(ch->groups[0]));
    memcpy(hi->random, ch->random, VEIL_RANDOM_LEN);
    hi->key_share = ch->shares[0];
    hi->key_share_len = ch->share_lens[0];
}

static int fill_server_hello(const veil_server_hello *sh, veil_hello_info *hi)
{
    hi->version = sh->version;
    hi->mode = sh->mode;
    hi->suite = sh->suite;
    hi->group = sh->group;
    memcpy(hi->random, sh->random, VEIL_RANDOM_LEN);
    hi->key_share = sh->key_share;
    hi->key_share_len = sh->key_share_len;
    hi->identity_spki = sh->identity;
    hi->identity_spki_len = sh->identity_len;
    return veil_sha256(sh->identity, sh->identity_len, hi->fingerprint);
}

/* Service extension of a hello, for display: "" when absent or malformed. */
static void fill_service(const uint8_t *ext, uint16_t ext_len, veil_hello_info *hi)
{
    const uint8_t *d;
    uint16_t n;
    if (veil_ext_find(ext, ext_len, VEIL_EXT_SERVICE, &d, &n) && n >= 1 && d[0] == n - 1 &&
        d[0] <= VEIL_MAX_SERVICE_NAME) {
        memcpy(hi->service, d + 1, d[0]);
        hi->service[d[0]] = '\0';
    }
}

/*
 * RSA key transport with the server's private key (PROTOCOL.md §10.3): the
 * premaster secret from the ClientKeyExchange and the transcript through it
 * give both traffic secrets, exactly as the endpoints derive them.
 */
static void rsa_keys(veil_observer *o, const uint8_t *ct, size_t ct_len)
{
    uint8_t premaster[VEIL_SECRET_LEN], th[VEIL_HASH_LEN];
    veil_schedule ks;
    memset(&ks, 0, sizeof(ks));
    if (o->rsa != NULL && veil_pkey_is_rsa(o->rsa->key) &&
        veil_pkey_oaep_decrypt(o->rsa->key, ct, ct_len, premaster, sizeof(premaster)) == 0 &&
        veil_hash_peek(o->transcript, th) == 0 &&
        veil_schedule_handshake(&ks, premaster, sizeof(premaster), NULL, th) == 0 && veil_schedule_traffic(&ks, th) == 0 &&
        veil_suite_supported(o->suite) && o->d[0].keys.cipher == NULL && o->d[1].keys.cipher == NULL) {
        if (veil_dir_set_key(&o->d[0].keys, o->suite, 0, ks.c_ap) != 0 ||
            veil_dir_set_key(&o->d[1].keys, o->suite, 0, ks.s_ap) != 0) {
            veil_dir_clear(&o->d[0].keys);
            veil_dir_clear(&o->d[1].keys);
        }
    }
    veil_memzero(premaster, sizeof(premaster));
    veil_schedule_wipe(&ks);
}

/* Parses readable content by record type; errors land in rec->parse_error. */
static int parse_content(veil_observer *o, veil_observed_record *rec)
{
    const uint8_t *body;
    size_t body_len;
    int ret;

    switch (rec->hdr.type) {
    case VEIL_REC_HANDSHAKE:
        if ((ret = veil_hs_split(rec->content, rec->content_len, &rec->hs_type, &body, &body_len)) != 0)
            return ret;
        rec->hs_body = body;
        rec->hs_body_len = body_len;
        if ((ret = veil_hash_update(o->transcript, rec->content, rec->content_len)) != 0)
            return ret;
        if (rec->hs_type == VEIL_HS_CLIENT_HELLO && rec->dir == VEIL_DIR_CLIENT_TO_SERVER) {
            veil_client_hello ch;
            if ((ret = veil_client_hello_decode(body, body_len, &ch)) != 0)
                return ret;
            fill_client_hello(&ch, &rec->hello);
            fill_service(ch.ext, ch.ext_len, &rec->hello);
            memcpy(o->client_random, ch.random, VEIL_RANDOM_LEN);
            o->have_ch = true;
        } else if (rec->hs_type == VEIL_HS_SERVER_HELLO && rec->dir == VEIL_DIR_SERVER_TO_CLIENT) {
            veil_server_hello sh;
            if ((ret = veil_server_hello_decode(body, body_len, &sh)) != 0 ||
                (ret = fill_server_hello(&sh, &rec->hello)) != 0)
                return ret;
            fill_service(sh.ext, sh.ext_len, &rec->hello);
            o->mode = sh.mode;
            o->suite = sh.suite;
            o->group = sh.group;
            const uint8_t *d;
            uint16_t n;
            o->psk_mode = veil_ext_find(sh.ext, sh.ext_len, VEIL_EXT_PSK_IDENTITY, &d, &n);
            o->have_sh = true;
        } else if (rec->hs_type == VEIL_HS_SERVER_VERIFY) {
            veil_server_verify sv;
            if ((ret = veil_server_verify_decode(body, body_len, &sv)) != 0)
                return ret;
            rec->sig_scheme = sv.scheme;
            rec->hs_body = sv.sig;
            rec->hs_body_len = sv.sig_len;
        } else if (rec->hs_type == VEIL_HS_CLIENT_KEY_EXCHANGE && rec->dir == VEIL_DIR_CLIENT_TO_SERVER) {
            const uint8_t *ct;
            uint16_t ct_len;
            if ((ret = veil_client_key_exchange_decode(body, body_len, &ct, &ct_len)) != 0)
                return ret;
            rec->hs_body = ct;
            rec->hs_body_len = ct_len;
            /* With a PSK the server key is not enough; the keylog may still be. */
            if (o->group == VEIL_GROUP_RSA_TRANSPORT && o->mode == VEIL_MODE_ENCRYPTED && !o->psk_mode)
                rsa_keys(o, ct, ct_len);
        } else if (rec->hs_type == VEIL_HS_CLIENT_VERIFY && rec->dir == VEIL_DIR_CLIENT_TO_SERVER) {
            veil_client_verify cv;
            if ((ret = veil_client_verify_decode(body, body_len, &cv)) != 0 ||
                (ret = veil_sha256(cv.spki, cv.spki_len, rec->hello.fingerprint)) != 0)
                return ret;
            rec->hello.identity_spki = cv.spki;
            rec->hello.identity_spki_len = cv.spki_len;
            rec->sig_scheme = cv.scheme;
            rec->hs_body = cv.sig;
            rec->hs_body_len = cv.sig_len;
        } else if ((rec->hs_type == VEIL_HS_CLIENT_AUTH && rec->dir == VEIL_DIR_CLIENT_TO_SERVER) ||
                   (rec->hs_type == VEIL_HS_SERVER_AUTH && rec->dir == VEIL_DIR_SERVER_TO_CLIENT)) {
            if (body_len != VEIL_AUTH_PROOF_LEN)
                return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
        } else if (rec->hs_type == VEIL_HS_FINISHED) {
            if ((ret = veil_finished_decode(body, body_len, &rec->hs_body)) != 0)
                return ret;
        } else {
            return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
        }
        return 0;
    case VEIL_REC_ALERT:
        if ((ret = veil_alert_decode(rec->content, rec->content_len, &rec->alert_level, &rec->alert_code)) != 0)
            return ret;
        if (rec->alert_code == VEIL_ALERT_CLOSE_NOTIFY)
            o->d[rec->dir].closed = true;
        return 0;
    case VEIL_REC_APPDATA:
        return veil_message_decode(rec->content, rec->content_len, &rec->msg_kind, &rec->msg_timestamp_ms,
                                   &rec->msg_data, &rec->msg_len);
    case VEIL_REC_KEY_UPDATE:
        if (rec->content_len != 1)
            return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
        if (rec->content[0] != (uint8_t)(o->d[rec->dir].keys.epoch + 1))
            return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
        return veil_dir_next_epoch(&o->d[rec->dir].keys);
    default:
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    }
}

/* Decrypts an encrypted record if the session's secret is known. */
static veil_body_status decrypt(veil_observer *o, int dir, const uint8_t *p, veil_observed_record *rec)
{
    obs_dir *d = &o->d[dir];
    if (!o->have_ch || !o->have_sh || !veil_suite_supported(o->suite))
        return VEIL_BODY_UNSUPPORTED;
    if (rec->hdr.length < veil_suite_min_body(o->suite))
        return VEIL_BODY_MALFORMED;
    if (d->keys.cipher == NULL) {
        uint8_t secret[VEIL_SECRET_LEN];
        /* Looked up at first use, so keys appended to the keylog later still count. */
        if (veil_keylog_find(o->keys, o->client_random, dir, secret) != 0)
            return VEIL_BODY_NO_KEY;
        int ret = veil_dir_set_key(&d->keys, o->suite, 0, secret);
        veil_memzero(secret, sizeof(secret));
        if (ret != 0)
            return VEIL_BODY_UNSUPPORTED;
    }
    /* A key_update we could not read (lost segment) shows as a later epoch: follow it. */
    for (int i = 0; i < 255 && d->keys.epoch != rec->hdr.epoch; i++)
        if (veil_dir_next_epoch(&d->keys) != 0)
            return VEIL_BODY_UNSUPPORTED;
    if (o->content == NULL && (o->content = malloc(VEIL_MAX_BODY)) == NULL)
        return VEIL_BODY_UNSUPPORTED;
    if (o->content_used < rec->hdr.length)
        o->content_used = rec->hdr.length; /* what a failed open may have touched too */
    if (veil_cipher_open(d->keys.cipher, p, rec->hdr.seq, rec->body, rec->hdr.length, o->content,
                         &rec->content_len) != 0)
        return VEIL_BODY_AUTH_FAILED;
    rec->content = o->content;
    return VEIL_BODY_DECRYPTED;
}

/* veil_observer_record for a header already decoded (and len checked) by the caller. */
static void observe(veil_observer *o, int dir, const veil_header *h, const uint8_t *p, size_t len,
                    veil_observed_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->dir = dir;
    rec->offset = o->d[dir].offset;
    rec->hdr = *h;
    o->d[dir].offset += len;
    rec->body = p + VEIL_HEADER_LEN;
    rec->seq_expected = o->d[dir].next_seq;
    rec->seq_ok = rec->hdr.seq == rec->seq_expected;
    o->d[dir].next_seq = rec->hdr.seq + 1;

    if (rec->hdr.flags & VEIL_FLAG_ENCRYPTED) {
        rec->status = decrypt(o, dir, p, rec);
    } else if (veil_record_check_crc(&rec->hdr, p, &rec->content_len) == 0) {
        rec->status = VEIL_BODY_PLAINTEXT;
        rec->content = rec->body;
    } else {
        rec->status = VEIL_BODY_BAD_CRC;
        rec->content_len = 0;
    }
    if (rec->content != NULL)
        rec->parse_error = parse_content(o, rec);
}

int veil_observer_record(veil_observer *o, int dir, const uint8_t *p, size_t len, veil_observed_record *rec)
{
    veil_header h;
    int ret;
    if (dir != VEIL_DIR_CLIENT_TO_SERVER && dir != VEIL_DIR_SERVER_TO_CLIENT)
        return VEIL_ERR_INVALID_ARG;
    ret = veil_header_decode(p, len, &h);
    if (ret == 0 && len == VEIL_HEADER_LEN + (size_t)h.length) {
        observe(o, dir, &h, p, len, rec);
        return 0;
    }
    /* Rejected: what the header said, nothing else. */
    memset(rec, 0, sizeof(*rec));
    rec->dir = dir;
    rec->offset = o->d[dir].offset;
    rec->hdr = h;
    return ret == 0 || ret == VEIL_ERR_NEED_MORE ? VEIL_PERR(VEIL_ALERT_DECODE_ERROR) : ret;
}

int veil_observer_feed(veil_observer *o, int dir, const uint8_t *p, size_t len, veil_observer_cb cb, void *user)
{
    if (dir != VEIL_DIR_CLIENT_TO_SERVER && dir != VEIL_DIR_SERVER_TO_CLIENT)
        return VEIL_ERR_INVALID_ARG;
    obs_dir *d = &o->d[dir];
    veil_observed_record rec;
    int ret;
    if (d->desync)
        return 0;
    if ((ret = veil_buf_append(&d->pending, p, len)) != 0)
        return ret;
    size_t off = 0;
    while (d->pending.len - off >= VEIL_HEADER_LEN) {
        veil_header h;
        ret = veil_header_decode(d->pending.base + off, d->pending.len - off, &h);
        if (ret != 0) {
            d->desync = true;
            d->pending.len = 0;
            return ret;
        }
        size_t n = VEIL_HEADER_LEN + (size_t)h.length;
        if (d->pending.len - off < n)
            break;
        /* The header is decoded and the length known: straight to the body. */
        observe(o, dir, &h, d->pending.base + off, n, &rec);
        off += n;
        if (cb != NULL && (ret = cb(user, &rec)) != 0) {
            veil_buf_consume(&d->pending, off);
            return ret;
        }
    }
    veil_buf_consume(&d->pending, off);
    return 0;
}

size_t veil_observer_pending(const veil_observer *o, int dir)
{
    return dir == 0 || dir == 1 ? o->d[dir].pending.len : 0;
}

int veil_observer_closed(const veil_observer *o, int dir) { return (dir == 0 || dir == 1) && o->d[dir].closed; }
