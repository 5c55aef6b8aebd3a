/*
 * handshake.c - the connection object for both roles: the handshake state
 * machine (PROTOCOL.md §4), key schedule use (§5), application data (§7),
 * alerts and close (§8), rekeying (§6.4).  Sans-IO: bytes in, bytes out.
 *
 *   client: START -> WAIT_SH -> WAIT_SV -> WAIT_SF -> CONNECTED
 *   server: WAIT_CH -> WAIT_CF -> CONNECTED
 *   any state -> FAILED on a fatal error (alert sent) or a fatal alert received
 */
#include <stdlib.h>
#include <string.h>

#include "veil_internal.h"

#define DEFAULT_REKEY_RECORDS (UINT64_C(1) << 20)
#define DEFAULT_REKEY_BYTES (UINT64_C(1) << 34)
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000

typedef enum conn_state {
    ST_START,
    ST_WAIT_CH,
    ST_WAIT_SH,
    ST_WAIT_SV,
    ST_WAIT_SF,
    ST_WAIT_CF,
    ST_CONNECTED,
    ST_FAILED,
} conn_state;

static const uint16_t default_suites[] = {
    VEIL_SUITE_AES_256_GCM_SHA256,
    VEIL_SUITE_CHACHA20_POLY1305_SHA256,
    VEIL_SUITE_AES_256_CBC_HMAC_SHA256,
};

struct veil_conn {
    veil_role role;
    uint8_t modes;
    uint16_t suites[VEIL_MAX_SUITES];
    uint8_t n_suites;
    const veil_identity *identity;
    uint64_t rekey_records, rekey_bytes;
    veil_callbacks cb;

    conn_state state;
    uint64_t deadline;
    veil_dir tx, rx;
    veil_hash_ctx *transcript;
    veil_schedule ks;
    uint8_t th1[VEIL_HASH_LEN];
    uint8_t client_random[VEIL_RANDOM_LEN];
    uint8_t eph_priv[VEIL_X25519_LEN];
    uint8_t mode;
    uint16_t suite, group;
    uint8_t peer_fp[VEIL_FINGERPRINT_LEN];
    bool have_peer_fp;
    veil_pkey *peer_key;
    int peer_alert;
    bool sent_close, recv_close;

    veil_buf in;      /* an incomplete record carried over between feeds */
    veil_buf msg;     /* scratch for building messages */
    uint8_t content[VEIL_MAX_BODY]; /* opened record content */
};

void veil_config_init(veil_config *cfg, veil_role role)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->role = role;
    cfg->modes = VEIL_MODE_ENCRYPTED;
}

int veil_conn_new(const veil_config *cfg, const veil_callbacks *cb, uint64_t now_ms, veil_conn **out)
{
    if (cfg == NULL || cb == NULL || cb->random == NULL || out == NULL ||
        (cfg->role != VEIL_ROLE_CLIENT && cfg->role != VEIL_ROLE_SERVER))
        return VEIL_ERR_INVALID_ARG;
    if (cfg->role == VEIL_ROLE_CLIENT && cfg->modes != VEIL_MODE_ENCRYPTED &&
        cfg->modes != VEIL_MODE_PLAINTEXT)
        return VEIL_ERR_INVALID_ARG; /* a client asks for exactly one mode */
    if (cfg->role == VEIL_ROLE_SERVER &&
        (cfg->identity == NULL || cfg->modes == 0 ||
         (cfg->modes & ~(VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT)) != 0))
        return VEIL_ERR_INVALID_ARG;
    const uint16_t *suites = cfg->suites != NULL ? cfg->suites : default_suites;
    size_t n_suites = cfg->suites != NULL ? cfg->n_suites : sizeof(default_suites) / sizeof(default_suites[0]);
    if (n_suites == 0 || n_suites > VEIL_MAX_SUITES)
        return VEIL_ERR_INVALID_ARG;
    for (size_t i = 0; i < n_suites; i++)
        if (!veil_suite_supported(suites[i]))
            return VEIL_ERR_INVALID_ARG;

    veil_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return VEIL_ERR_NOMEM;
    c->role = cfg->role;
    c->modes = cfg->modes;
    memcpy(c->suites, suites, n_suites * sizeof(suites[0]));
    c->n_suites = (uint8_t)n_suites;
    c->identity = cfg->identity;
    c->rekey_records = cfg->rekey_records != 0 ? cfg->rekey_records : DEFAULT_REKEY_RECORDS;
    c->rekey_bytes = cfg->rekey_bytes != 0 ? cfg->rekey_bytes : DEFAULT_REKEY_BYTES;
    c->cb = *cb;
    c->deadline = now_ms + (cfg->handshake_timeout_ms != 0 ? cfg->handshake_timeout_ms
                                                            : DEFAULT_HANDSHAKE_TIMEOUT_MS);
    c->state = cfg->role == VEIL_ROLE_CLIENT ? ST_START : ST_WAIT_CH;
    c->peer_alert = -1;
    veil_buf_init(&c->in);
    veil_buf_init(&c->msg);
    int ret = veil_hash_new(&c->transcript);
    if (ret != 0) {
        veil_conn_free(c);
        return ret;
    }
    *out = c;
    return 0;
}

/* Secrets not needed once the handshake is over (or failed). */
static void wipe_handshake(veil_conn *c)
{
    veil_schedule_wipe(&c->ks);
    veil_memzero(c->eph_priv, sizeof(c->eph_priv));
    veil_pkey_free(c->peer_key);
    c->peer_key = NULL;
}

void veil_conn_free(veil_conn *c)
{
    if (c == NULL)
        return;
    wipe_handshake(c);
    veil_dir_clear(&c->tx);
    veil_dir_clear(&c->rx);
    veil_hash_free(c->transcript);
    veil_buf_free(&c->in);
    veil_buf_free(&c->msg);
    veil_memzero(c, sizeof(*c));
    free(c);
}

static int write_record(veil_conn *c, uint8_t type, const uint8_t *p, size_t n, veil_buf *out)
{
    return veil_record_write(&c->tx, type, p, n, c->cb.random, c->cb.user, out);
}

static int send_alert(veil_conn *c, uint8_t level, uint8_t code, veil_buf *out)
{
    const uint8_t content[2] = {level, code};
    return write_record(c, VEIL_REC_ALERT, content, sizeof(content), out);
}

/* Adds a whole handshake message (in c->msg) to the transcript and sends it. */
static int send_handshake(veil_conn *c, veil_buf *out)
{
    int ret = veil_hash_update(c->transcript, c->msg.base, c->msg.len);
    if (ret == 0)
        ret = write_record(c, VEIL_REC_HANDSHAKE, c->msg.base, c->msg.len, out);
    c->msg.len = 0;
    return ret;
}

static int emit(veil_conn *c, const veil_event *ev)
{
    return c->cb.on_event != NULL ? c->cb.on_event(c->cb.user, ev) : 0;
}

static void keylog(veil_conn *c)
{
    char line[160];
    if (c->cb.keylog == NULL || c->mode != VEIL_MODE_ENCRYPTED)
        return;
    veil_keylog_format(VEIL_KEYLOG_CLIENT_TRAFFIC, c->client_random, c->ks.c_ap, line);
    c->cb.keylog(c->cb.user, line);
    veil_keylog_format(VEIL_KEYLOG_SERVER_TRAFFIC, c->client_random, c->ks.s_ap, line);
    c->cb.keylog(c->cb.user, line);
    veil_memzero(line, sizeof(line));
}

/* Installs the traffic keys of encrypted mode: tx/rx as given by the role. */
static int install_key(veil_conn *c, veil_dir *d, const uint8_t secret[VEIL_SECRET_LEN], int encrypt)
{
    if (c->mode != VEIL_MODE_ENCRYPTED)
        return 0;
    return veil_dir_set_key(d, c->suite, encrypt, secret);
}

static int finished_mac(veil_conn *c, const uint8_t key[VEIL_SECRET_LEN], uint8_t mac[VEIL_HASH_LEN])
{
    uint8_t th[VEIL_HASH_LEN];
    int ret = veil_hash_peek(c->transcript, th);
    if (ret == 0)
        ret = veil_hmac_sha256(key, VEIL_SECRET_LEN, th, sizeof(th), mac);
    return ret;
}

static int random_bytes(veil_conn *c, uint8_t *p, size_t n)
{
    return c->cb.random(c->cb.user, p, n) == 0 ? 0 : VEIL_ERR_RNG;
}

int veil_conn_start(veil_conn *c, veil_buf *out)
{
    veil_client_hello ch;
    uint8_t pub[VEIL_X25519_LEN];
    int ret;

    if (c->role == VEIL_ROLE_SERVER)
        return 0;
    if (c->state != ST_START)
        return VEIL_ERR_STATE;
    if ((ret = random_bytes(c, c->client_random, VEIL_RANDOM_LEN)) != 0 ||
        (ret = random_bytes(c, c->eph_priv, VEIL_X25519_LEN)) != 0 ||
        (ret = veil_x25519_public(c->eph_priv, pub)) != 0)
        return ret;
    memset(&ch, 0, sizeof(ch));
    ch.n_versions = 1;
    ch.versions[0] = VEIL_VERSION_1;
    ch.mode = c->modes;
    ch.n_suites = c->n_suites;
    memcpy(ch.suites, c->suites, c->n_suites * sizeof(c->suites[0]));
    ch.n_shares = 1;
    ch.groups[0] = VEIL_GROUP_X25519;
    ch.shares[0] = pub;
    ch.share_lens[0] = VEIL_X25519_LEN;
    ch.random = c->client_random;
    if ((ret = veil_client_hello_encode(&ch, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0)
        return ret;
    c->state = ST_WAIT_SH;
    return 0;
}

static bool offered_u16(const uint16_t *list, size_t n, uint16_t v)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == v)
            return true;
    return false;
}

/* Server: ClientHello in, ServerHello + ServerVerify + Finished out. */
static int server_on_client_hello(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                                  size_t body_len, veil_buf *out)
{
    veil_client_hello ch;
    veil_server_hello sh;
    veil_server_verify sv;
    uint8_t server_random[VEIL_RANDOM_LEN], pub[VEIL_X25519_LEN], shared[VEIL_X25519_LEN];
    uint8_t sig_msg[VEIL_SIG_MSG_LEN], mac[VEIL_HASH_LEN], th2[VEIL_HASH_LEN];
    veil_buf sig;
    const uint8_t *peer_share = NULL;
    int ret;

    veil_buf_init(&sig);
    if ((ret = veil_client_hello_decode(body, body_len, &ch)) != 0)
        goto Exit;
    memcpy(c->client_random, ch.random, VEIL_RANDOM_LEN);
    ret = VEIL_PERR(VEIL_ALERT_PROTOCOL_VERSION);
    if (memchr(ch.versions, VEIL_VERSION_1, ch.n_versions) == NULL)
        goto Exit;
    /* Mode: the client asks, the server must allow it. */
    if ((c->modes & ch.mode) == 0) {
        ret = VEIL_PERR(ch.mode == VEIL_MODE_PLAINTEXT ? VEIL_ALERT_PLAINTEXT_REFUSED
                                                       : VEIL_ALERT_HANDSHAKE_FAILURE);
        goto Exit;
    }
    c->mode = ch.mode;
    ret = VEIL_PERR(VEIL_ALERT_HANDSHAKE_FAILURE);
    c->suite = VEIL_SUITE_NULL;
    if (c->mode == VEIL_MODE_ENCRYPTED) {
        for (unsigned i = 0; i < ch.n_suites && c->suite == VEIL_SUITE_NULL; i++)
            if (ch.suites[i] != VEIL_SUITE_NULL && offered_u16(c->suites, c->n_suites, ch.suites[i]))
                c->suite = ch.suites[i];
        if (c->suite == VEIL_SUITE_NULL)
            goto Exit;
    }
    for (unsigned i = 0; i < ch.n_shares && peer_share == NULL; i++)
        if (ch.groups[i] == VEIL_GROUP_X25519 && ch.share_lens[i] == VEIL_X25519_LEN)
            peer_share = ch.shares[i];
    if (peer_share == NULL)
        goto Exit;
    c->group = VEIL_GROUP_X25519;
    if ((ret = veil_hash_update(c->transcript, msg, msg_len)) != 0 ||
        (ret = random_bytes(c, server_random, sizeof(server_random))) != 0 ||
        (ret = random_bytes(c, c->eph_priv, sizeof(c->eph_priv))) != 0 ||
        (ret = veil_x25519_public(c->eph_priv, pub)) != 0 ||
        (ret = veil_x25519_derive(c->eph_priv, peer_share, shared)) != 0)
        goto Exit;

    memset(&sh, 0, sizeof(sh));
    sh.version = VEIL_VERSION_1;
    sh.mode = c->mode;
    sh.suite = c->suite;
    sh.group = c->group;
    sh.random = server_random;
    sh.key_share = pub;
    sh.key_share_len = VEIL_X25519_LEN;
    sh.identity = c->identity->spki.base;
    sh.identity_len = (uint16_t)c->identity->spki.len;
    if ((ret = veil_server_hello_encode(&sh, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0 ||
        (ret = veil_hash_peek(c->transcript, c->th1)) != 0 ||
        (ret = veil_schedule_handshake(&c->ks, shared, sizeof(shared), c->th1)) != 0)
        goto Exit;

    veil_sig_message(c->th1, sig_msg);
    if ((ret = veil_pkey_sign(c->identity->key, sig_msg, sizeof(sig_msg), &sig)) != 0)
        goto Exit;
    sv.scheme = VEIL_SIG_ED25519;
    sv.sig = sig.base;
    sv.sig_len = (uint16_t)sig.len;
    if ((ret = veil_server_verify_encode(&sv, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0 ||
        (ret = finished_mac(c, c->ks.s_finished_key, mac)) != 0 ||
        (ret = veil_finished_encode(mac, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0 ||
        (ret = veil_hash_peek(c->transcript, th2)) != 0 || (ret = veil_schedule_traffic(&c->ks, th2)) != 0 ||
        (ret = install_key(c, &c->tx, c->ks.s_ap, 1)) != 0)
        goto Exit;
    keylog(c);
    c->state = ST_WAIT_CF;
Exit:
    veil_memzero(shared, sizeof(shared));
    veil_buf_free(&sig);
    return ret;
}

/* Server: client Finished in; the connection is up. */
static int server_on_finished(veil_conn *c, const uint8_t *body, size_t body_len)
{
    const uint8_t *vd;
    uint8_t mac[VEIL_HASH_LEN];
    int ret;
    if ((ret = veil_finished_decode(body, body_len, &vd)) != 0 ||
        (ret = finished_mac(c, c->ks.c_finished_key, mac)) != 0)
        return ret;
    if (veil_memeq_ct(mac, vd, VEIL_HASH_LEN) != 0)
        return VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR);
    if ((ret = install_key(c, &c->rx, c->ks.c_ap, 0)) != 0)
        return ret;
    wipe_handshake(c);
    c->state = ST_CONNECTED;
    veil_event ev = {.type = VEIL_EV_HANDSHAKE_DONE};
    return emit(c, &ev);
}

/* Client: ServerHello in; checks every choice against what was offered. */
static int client_on_server_hello(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                                  size_t body_len)
{
    veil_server_hello sh;
    uint8_t shared[VEIL_X25519_LEN];
    int ret;
    if ((ret = veil_server_hello_decode(body, body_len, &sh)) != 0)
        return ret;
    if (sh.version != VEIL_VERSION_1) /* the only version we offered */
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (sh.mode != c->modes)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (sh.mode == VEIL_MODE_ENCRYPTED ? !offered_u16(c->suites, c->n_suites, sh.suite)
                                       : sh.suite != VEIL_SUITE_NULL)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (sh.group != VEIL_GROUP_X25519 || sh.key_share_len != VEIL_X25519_LEN)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (veil_pkey_from_spki(sh.identity, sh.identity_len, &c->peer_key) != 0 ||
        !veil_pkey_is_ed25519(c->peer_key))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    c->mode = sh.mode;
    c->suite = sh.suite;
    c->group = sh.group;
    if ((ret = veil_sha256(sh.identity, sh.identity_len, c->peer_fp)) != 0)
        return ret;
    c->have_peer_fp = true;
    if (c->cb.verify_identity != NULL &&
        c->cb.verify_identity(c->cb.user, c->peer_fp, sh.identity, sh.identity_len) != 0)
        return VEIL_PERR(VEIL_ALERT_UNTRUSTED_IDENTITY);
    if ((ret = veil_hash_update(c->transcript, msg, msg_len)) != 0 ||
        (ret = veil_hash_peek(c->transcript, c->th1)) != 0 ||
        (ret = veil_x25519_derive(c->eph_priv, sh.key_share, shared)) != 0 ||
        (ret = veil_schedule_handshake(&c->ks, shared, sizeof(shared), c->th1)) != 0)
        goto Exit;
    veil_memzero(c->eph_priv, sizeof(c->eph_priv));
    c->state = ST_WAIT_SV;
Exit:
    veil_memzero(shared, sizeof(shared));
    return ret;
}

/* Client: ServerVerify in: the server proves it holds the identity key. */
static int client_on_server_verify(veil_conn *c, const uint8_t *body, size_t body_len)
{
    veil_server_verify sv;
    uint8_t sig_msg[VEIL_SIG_MSG_LEN];
    int ret = veil_server_verify_decode(body, body_len, &sv);
    if (ret != 0)
        return ret;
    if (sv.scheme != VEIL_SIG_ED25519)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    veil_sig_message(c->th1, sig_msg);
    if (veil_pkey_verify(c->peer_key, sig_msg, sizeof(sig_msg), sv.sig, sv.sig_len) != 0)
        return VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR);
    c->state = ST_WAIT_SF;
    return 0;
}

/* Client: server Finished in (verified against the transcript through SV). */
static int client_on_finished(veil_conn *c, const uint8_t *body, size_t body_len)
{
    const uint8_t *vd;
    uint8_t mac[VEIL_HASH_LEN];
    int ret;
    if ((ret = veil_finished_decode(body, body_len, &vd)) != 0 ||
        (ret = finished_mac(c, c->ks.s_finished_key, mac)) != 0)
        return ret;
    if (veil_memeq_ct(mac, vd, VEIL_HASH_LEN) != 0)
        return VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR);
    return 0;
}

/* Client: client Finished out with the transcript through SF; the connection is up. */
static int client_finish(veil_conn *c, veil_buf *out)
{
    uint8_t th2[VEIL_HASH_LEN], mac[VEIL_HASH_LEN];
    int ret;
    if ((ret = veil_hash_peek(c->transcript, th2)) != 0 || (ret = veil_schedule_traffic(&c->ks, th2)) != 0 ||
        (ret = veil_hmac_sha256(c->ks.c_finished_key, VEIL_SECRET_LEN, th2, sizeof(th2), mac)) != 0 ||
        (ret = veil_finished_encode(mac, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0 ||
        (ret = install_key(c, &c->tx, c->ks.c_ap, 1)) != 0 ||
        (ret = install_key(c, &c->rx, c->ks.s_ap, 0)) != 0)
        return ret;
    keylog(c);
    wipe_handshake(c);
    c->state = ST_CONNECTED;
    veil_event ev = {.type = VEIL_EV_HANDSHAKE_DONE};
    return emit(c, &ev);
}

static int on_handshake(veil_conn *c, const uint8_t *content, size_t len, veil_buf *out)
{
    uint8_t type;
    const uint8_t *body;
    size_t body_len;
    int ret = veil_hs_split(content, len, &type, &body, &body_len);
    if (ret != 0)
        return ret;
    switch (c->state) {
    case ST_WAIT_CH:
        if (type != VEIL_HS_CLIENT_HELLO)
            break;
        return server_on_client_hello(c, content, len, body, body_len, out);
    case ST_WAIT_CF:
        if (type != VEIL_HS_FINISHED)
            break;
        return server_on_finished(c, body, body_len);
    case ST_WAIT_SH:
        if (type != VEIL_HS_SERVER_HELLO)
            break;
        return client_on_server_hello(c, content, len, body, body_len);
    case ST_WAIT_SV:
        if (type != VEIL_HS_SERVER_VERIFY)
            break;
        if ((ret = client_on_server_verify(c, body, body_len)) != 0)
            return ret;
        return veil_hash_update(c->transcript, content, len);
    case ST_WAIT_SF:
        if (type != VEIL_HS_FINISHED)
            break;
        if ((ret = client_on_finished(c, body, body_len)) != 0 ||
            (ret = veil_hash_update(c->transcript, content, len)) != 0)
            return ret;
        return client_finish(c, out);
    default:
        break;
    }
    return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
}

static int on_alert(veil_conn *c, const uint8_t *content, size_t len)
{
    uint8_t level, code;
    int ret = veil_alert_decode(content, len, &level, &code);
    if (ret != 0)
        return ret;
    if (code == VEIL_ALERT_CLOSE_NOTIFY) {
        c->recv_close = true;
        veil_event ev = {.type = VEIL_EV_PEER_CLOSED};
        return emit(c, &ev);
    }
    c->peer_alert = code;
    c->state = ST_FAILED;
    wipe_handshake(c);
    return VEIL_ERR_PEER_ALERT(code);
}

static int on_appdata(veil_conn *c, const uint8_t *content, size_t len)
{
    veil_event ev = {.type = VEIL_EV_MESSAGE};
    if (c->state != ST_CONNECTED)
        return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
    int ret = veil_message_decode(content, len, &ev.kind, &ev.timestamp_ms, &ev.data, &ev.len);
    return ret != 0 ? ret : emit(c, &ev);
}

static int on_key_update(veil_conn *c, const uint8_t *content, size_t len)
{
    if (c->state != ST_CONNECTED || c->rx.cipher == NULL)
        return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
    if (len != 1)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (content[0] != (uint8_t)(c->rx.epoch + 1))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    int ret = veil_dir_next_epoch(&c->rx);
    if (ret != 0)
        return ret;
    veil_event ev = {.type = VEIL_EV_KEY_UPDATE, .epoch = c->rx.epoch};
    return emit(c, &ev);
}

/* One complete record (header already decoded). */
static int on_record(veil_conn *c, const veil_header *h, const uint8_t *p, veil_buf *out)
{
    size_t len;
    int ret;
    if (h->seq != c->rx.seq)
        return VEIL_PERR(VEIL_ALERT_BAD_SEQUENCE);
    if ((ret = veil_record_open(&c->rx, h, p, c->content, &len)) != 0)
        return ret;
    c->rx.seq++;
    switch (h->type) {
    case VEIL_REC_HANDSHAKE:
        return on_handshake(c, c->content, len, out);
    case VEIL_REC_ALERT:
        return on_alert(c, c->content, len);
    case VEIL_REC_APPDATA:
        return on_appdata(c, c->content, len);
    case VEIL_REC_KEY_UPDATE:
        return on_key_update(c, c->content, len);
    default:
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    }
}

/* Fatal error: replace any partial output of the failing step by the alert
 * (internal_error for a crypto backend or RNG failure; none when out of memory). */
static int fail(veil_conn *c, int err, veil_buf *out, size_t mark, uint64_t tx_seq)
{
    int alert = veil_err_is_alert(err) ? -err
                : err == VEIL_ERR_CRYPTO || err == VEIL_ERR_RNG ? VEIL_ALERT_INTERNAL_ERROR
                                                               : -1;
    if (alert >= 0) {
        out->len = mark;
        c->tx.seq = tx_seq;
        (void)send_alert(c, VEIL_ALERT_LEVEL_FATAL, (uint8_t)alert, out);
    }
    c->state = ST_FAILED;
    wipe_handshake(c);
    veil_buf_free(&c->in);
    return err;
}

int veil_conn_feed(veil_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, veil_buf *out)
{
    (void)now_ms;
    if (c->state == ST_FAILED)
        return VEIL_ERR_CLOSED;
    if (c->state == ST_START)
        return VEIL_ERR_STATE;
    while (len > 0 || c->in.len >= VEIL_HEADER_LEN) {
        veil_header h;
        const uint8_t *rec;
        size_t mark = out->len;
        uint64_t tx_seq = c->tx.seq;
        int ret;

        if (c->recv_close)
            return 0; /* nothing counts after close_notify */
        if (c->in.len == 0 && len >= VEIL_HEADER_LEN) {
            /* Fast path: whole records straight from the caller's buffer. */
            if ((ret = veil_header_decode(in, len, &h)) != 0)
                return fail(c, ret, out, mark, tx_seq);
            if (len < VEIL_HEADER_LEN + (size_t)h.length) {
                if ((ret = veil_buf_append(&c->in, in, len)) != 0)
                    return ret;
                return 0;
            }
            rec = in;
            in += VEIL_HEADER_LEN + h.length;
            len -= VEIL_HEADER_LEN + h.length;
        } else {
            /* Slow path: complete the carried-over record. */
            size_t want = VEIL_HEADER_LEN;
            if (c->in.len >= VEIL_HEADER_LEN) {
                if ((ret = veil_header_decode(c->in.base, c->in.len, &h)) != 0)
                    return fail(c, ret, out, mark, tx_seq);
                want += h.length;
            }
            size_t take = want - c->in.len < len ? want - c->in.len : len;
            if ((ret = veil_buf_append(&c->in, in, take)) != 0)
                return ret;
            in += take;
            len -= take;
            if (c->in.len < VEIL_HEADER_LEN)
                return 0;
            if ((ret = veil_header_decode(c->in.base, c->in.len, &h)) != 0)
                return fail(c, ret, out, mark, tx_seq);
            if (c->in.len < VEIL_HEADER_LEN + (size_t)h.length) {
                if (len == 0)
                    return 0;
                continue;
            }
            rec = c->in.base;
        }
        ret = on_record(c, &h, rec, out);
        if (rec == c->in.base)
            c->in.len = 0;
        if (ret != 0)
            return fail(c, ret, out, mark, tx_seq);
        if (c->state == ST_FAILED)
            return VEIL_ERR_CLOSED;
    }
    return 0;
}

/* Sends key_update and moves to the next epoch when the current key is worn (§6.4). */
static int maybe_rekey(veil_conn *c, veil_buf *out)
{
    if (c->tx.cipher == NULL ||
        (c->tx.records_on_key < c->rekey_records && c->tx.bytes_on_key < c->rekey_bytes))
        return 0;
    uint8_t next = (uint8_t)(c->tx.epoch + 1);
    int ret = write_record(c, VEIL_REC_KEY_UPDATE, &next, 1, out);
    return ret != 0 ? ret : veil_dir_next_epoch(&c->tx);
}

int veil_conn_send(veil_conn *c, uint8_t kind, uint64_t timestamp_ms, const uint8_t *data, size_t len,
                   veil_buf *out)
{
    uint8_t hdr[VEIL_MSG_HEADER_LEN];
    int ret;
    if (c->state == ST_FAILED || c->sent_close)
        return VEIL_ERR_CLOSED;
    if (c->state != ST_CONNECTED)
        return VEIL_ERR_STATE;
    if (len > VEIL_MAX_MESSAGE)
        return VEIL_ERR_TOO_LARGE;
    if ((ret = maybe_rekey(c, out)) != 0)
        return ret;
    hdr[0] = kind;
    veil_put_u64(hdr + 1, timestamp_ms);
    c->msg.len = 0;
    if ((ret = veil_buf_append(&c->msg, hdr, sizeof(hdr))) != 0 ||
        (ret = veil_buf_append(&c->msg, data, len)) != 0)
        return ret;
    ret = write_record(c, VEIL_REC_APPDATA, c->msg.base, c->msg.len, out);
    c->msg.len = 0;
    return ret;
}

int veil_conn_close(veil_conn *c, veil_buf *out)
{
    int ret;
    if (c->state == ST_FAILED)
        return VEIL_ERR_CLOSED;
    if (c->sent_close)
        return 0;
    if ((ret = maybe_rekey(c, out)) != 0 ||
        (ret = send_alert(c, VEIL_ALERT_LEVEL_WARNING, VEIL_ALERT_CLOSE_NOTIFY, out)) != 0)
        return ret;
    c->sent_close = true;
    return 0;
}

int veil_conn_abort(veil_conn *c, int alert_code, veil_buf *out)
{
    int ret = 0;
    if (alert_code <= 0 || alert_code > 255)
        return VEIL_ERR_INVALID_ARG;
    if (c->state != ST_FAILED && !c->sent_close)
        ret = send_alert(c, VEIL_ALERT_LEVEL_FATAL, (uint8_t)alert_code, out);
    c->state = ST_FAILED;
    wipe_handshake(c);
    return ret;
}

uint64_t veil_conn_next_timeout(const veil_conn *c)
{
    if (c->state == ST_CONNECTED || c->state == ST_FAILED)
        return UINT64_MAX;
    return c->deadline;
}

int veil_conn_handle_timeout(veil_conn *c, uint64_t now_ms, veil_buf *out)
{
    if (now_ms < veil_conn_next_timeout(c))
        return 0;
    (void)veil_conn_abort(c, VEIL_ALERT_TIMEOUT, out);
    return VEIL_PERR(VEIL_ALERT_TIMEOUT);
}

int veil_conn_handshake_done(const veil_conn *c) { return c->state == ST_CONNECTED; }
int veil_conn_is_closed(const veil_conn *c) { return c->recv_close || c->state == ST_FAILED; }
uint8_t veil_conn_mode(const veil_conn *c) { return c->mode; }
uint16_t veil_conn_suite(const veil_conn *c) { return c->suite; }
uint16_t veil_conn_group(const veil_conn *c) { return c->group; }
int veil_conn_peer_alert(const veil_conn *c) { return c->peer_alert; }

int veil_conn_peer_fingerprint(const veil_conn *c, uint8_t fp[VEIL_FINGERPRINT_LEN])
{
    if (!c->have_peer_fp)
        return VEIL_ERR_STATE;
    memcpy(fp, c->peer_fp, VEIL_FINGERPRINT_LEN);
    return 0;
}
