/*
 * handshake.c - the connection object for both roles: the handshake state
 * machine (PROTOCOL.md §4), key schedule use (§5), application data (§7),
 * alerts and close (§8), rekeying (§6.4).  Sans-IO: bytes in, bytes out.
 *
 *   client: START -> WAIT_SH -> WAIT_SV -> WAIT_SF -> CONNECTED (DH groups)
 *           START -> WAIT_SH -> WAIT_SV -> CONNECTED awaiting SF (RSA transport)
 *           (+ awaiting ServerAuth with user authentication)
 *   server: WAIT_CH -> [WAIT_CKE] -> WAIT_CF -> [WAIT_CAUTH] -> CONNECTED
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
    ST_WAIT_CKE,
    ST_WAIT_CF,
    ST_WAIT_CAUTH,
    ST_CONNECTED,
    ST_FAILED,
} conn_state;

static const uint16_t default_client_groups[] = {VEIL_GROUP_X25519};
static const uint16_t default_server_groups[] = {VEIL_GROUP_X25519, VEIL_GROUP_FFDHE2048,
                                                 VEIL_GROUP_RSA_TRANSPORT};

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
    uint16_t groups[VEIL_MAX_SHARES];
    uint8_t n_groups;
    char services[256]; /* server: comma-separated list offered */
    char service[VEIL_MAX_SERVICE_NAME + 1];
    veil_callbacks cb;

    conn_state state;
    uint64_t deadline;
    veil_dir tx, rx;
    veil_hash_ctx *transcript;
    veil_schedule ks;
    uint8_t th1[VEIL_HASH_LEN];
    uint8_t client_random[VEIL_RANDOM_LEN];
    veil_pkey *eph_key; /* client: its X25519 key until the ServerHello */
    uint8_t ff_priv[VEIL_FFDHE_PRIV_LEN];
    uint8_t ff_pub[VEIL_FFDHE_LEN];
    bool awaiting_sf;    /* client, RSA transport: data may flow, server Finished pending */
    bool awaiting_sauth; /* client, user auth: ServerAuth pending */
    /* user authentication (PROTOCOL.md §4.13) */
    bool user_mode, decoy, require_user, authenticated;
    char user[VEIL_MAX_USER_NAME + 1];
    uint8_t *password; /* client: a wiped copy until the ServerHello */
    size_t password_len;
    veil_user_verifier uv; /* server: the user's verifier; client: derived from the password */
    uint8_t client_key[32]; /* client: ClientKey, until ClientAuth is sent */
    uint8_t auth_th[VEIL_HASH_LEN]; /* AuthMessage = H(transcript through client Finished) */
    uint8_t decoy_key[32];
    bool have_decoy_key;
    /* client signatures (PROTOCOL.md §4.15) */
    const veil_identity *client_id;
    bool client_sig, require_client_id, got_cv;
    /* PSK mode (PROTOCOL.md §4.14) */
    bool psk_mode, require_psk;
    char psk_id[VEIL_MAX_USER_NAME + 1];
    uint8_t psk[VEIL_PSK_LEN];
    uint8_t mode;
    uint16_t suite, group;
    uint8_t peer_fp[VEIL_FINGERPRINT_LEN];
    bool have_peer_fp;
    veil_pkey *peer_key;
    int peer_alert;
    bool sent_close, recv_close;

    veil_buf in;      /* an incomplete record carried over between feeds */
    veil_buf msg;     /* scratch for building handshake messages; freed after the handshake */
};

/* A carried-over record buffer larger than this is released once empty, so an
 * idle connection does not keep a 16 KiB record's worth of memory. */
#define IN_KEEP_CAP 1024

static bool group_supported(uint16_t g)
{
    return g == VEIL_GROUP_X25519 || g == VEIL_GROUP_FFDHE2048 || g == VEIL_GROUP_RSA_TRANSPORT;
}

/* Service names: 1..32 of [a-z0-9_-] (PROTOCOL.md §4.12). */
static bool service_name_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > VEIL_MAX_SERVICE_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '-'))
            return false;
    return true;
}

/* User names and PSK identities: 1..64 of [A-Za-z0-9._-] (PROTOCOL.md §4.13). */
static bool user_name_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > VEIL_MAX_USER_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '.' || p[i] == '_' || p[i] == '-'))
            return false;
    return true;
}

/* Is name one of the comma-separated services in list? */
static bool service_offered(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p += len + (comma != NULL);
    }
    return false;
}

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

    const uint16_t *groups = cfg->groups;
    size_t n_groups = cfg->n_groups;
    if (groups == NULL) {
        groups = cfg->role == VEIL_ROLE_CLIENT ? default_client_groups : default_server_groups;
        n_groups = cfg->role == VEIL_ROLE_CLIENT ? 1 : 3;
    }
    if (n_groups == 0 || n_groups > VEIL_MAX_SHARES)
        return VEIL_ERR_INVALID_ARG;
    for (size_t i = 0; i < n_groups; i++)
        if (!group_supported(groups[i]))
            return VEIL_ERR_INVALID_ARG;
    const char *service = cfg->service != NULL ? cfg->service : VEIL_DEFAULT_SERVICE;
    if (strlen(service) >= sizeof(((veil_conn *)0)->services) ||
        (cfg->role == VEIL_ROLE_CLIENT && !service_name_ok((const uint8_t *)service, strlen(service))))
        return VEIL_ERR_INVALID_ARG;

    if (cfg->role == VEIL_ROLE_CLIENT) {
        if (cfg->user_name != NULL &&
            (!user_name_ok((const uint8_t *)cfg->user_name, strlen(cfg->user_name)) || cfg->password == NULL))
            return VEIL_ERR_INVALID_ARG;
        if (cfg->psk != NULL &&
            (cfg->psk_identity == NULL || !user_name_ok((const uint8_t *)cfg->psk_identity, strlen(cfg->psk_identity))))
            return VEIL_ERR_INVALID_ARG;
    } else if (cb->lookup_user != NULL && cfg->decoy_key == NULL) {
        return VEIL_ERR_INVALID_ARG;
    }

    veil_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return VEIL_ERR_NOMEM;
    c->role = cfg->role;
    if (cfg->role == VEIL_ROLE_CLIENT && cfg->user_name != NULL) {
        c->user_mode = true;
        memcpy(c->user, cfg->user_name, strlen(cfg->user_name) + 1);
        c->password = malloc(cfg->password_len + 1);
        if (c->password == NULL) {
            free(c);
            return VEIL_ERR_NOMEM;
        }
        memcpy(c->password, cfg->password, cfg->password_len);
        c->password_len = cfg->password_len;
    }
    if (cfg->role == VEIL_ROLE_CLIENT && cfg->psk != NULL) {
        c->psk_mode = true;
        memcpy(c->psk, cfg->psk, VEIL_PSK_LEN);
        memcpy(c->psk_id, cfg->psk_identity, strlen(cfg->psk_identity) + 1);
    }
    if (cfg->decoy_key != NULL) {
        memcpy(c->decoy_key, cfg->decoy_key, sizeof(c->decoy_key));
        c->have_decoy_key = true;
    }
    c->require_user = cfg->require_user != 0;
    c->require_client_id = cfg->require_client_identity != 0;
    if (cfg->role == VEIL_ROLE_CLIENT && cfg->client_identity != NULL) {
        c->client_id = cfg->client_identity;
        c->client_sig = true;
    }
    c->require_psk = cfg->require_psk != 0;
    memcpy(c->groups, groups, n_groups * sizeof(groups[0]));
    c->n_groups = (uint8_t)n_groups;
    if (cfg->role == VEIL_ROLE_CLIENT)
        memcpy(c->service, service, strlen(service) + 1);
    else
        memcpy(c->services, service, strlen(service) + 1);
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
static void wipe_password(veil_conn *c)
{
    if (c->password != NULL) {
        veil_memzero(c->password, c->password_len);
        free(c->password);
        c->password = NULL;
    }
}

static void wipe_handshake(veil_conn *c)
{
    veil_schedule_wipe(&c->ks);
    wipe_password(c);
    veil_memzero(c->client_key, sizeof(c->client_key));
    veil_memzero(c->psk, sizeof(c->psk)); /* the verifier (uv) is wiped once ClientAuth is checked */
    veil_pkey_free(c->eph_key);
    c->eph_key = NULL;
    veil_memzero(c->ff_priv, sizeof(c->ff_priv));
    veil_pkey_free(c->peer_key);
    c->peer_key = NULL;
    /* Nothing reads the transcript or builds a handshake message any more. */
    veil_hash_free(c->transcript);
    c->transcript = NULL;
    veil_buf_free(&c->msg);
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

static const uint8_t *psk_of(const veil_conn *c) { return c->psk_mode ? c->psk : NULL; }

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

/* The handshake is complete enough for application data to flow. */
static int connected(veil_conn *c)
{
    c->state = ST_CONNECTED;
    veil_event ev = {.type = VEIL_EV_HANDSHAKE_DONE};
    return emit(c, &ev);
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

/* Reads the service extension if present: 0 (name filled, or "" if absent) or an error. */
static int service_ext_decode(const uint8_t *ext, uint16_t ext_len, char name[VEIL_MAX_SERVICE_NAME + 1])
{
    const uint8_t *data;
    uint16_t len;
    name[0] = '\0';
    if (!veil_ext_find(ext, ext_len, VEIL_EXT_SERVICE, &data, &len))
        return 0;
    if (len < 1 || data[0] != len - 1)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (!service_name_ok(data + 1, data[0]))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    memcpy(name, data + 1, data[0]);
    name[data[0]] = '\0';
    return 0;
}

/* A name-valued extension (user, PSK identity): u8 len || name. 0, 1 if absent, or an error. */
static int name_ext_decode(const uint8_t *ext, uint16_t ext_len, uint16_t type, char name[VEIL_MAX_USER_NAME + 1])
{
    const uint8_t *d;
    uint16_t n;
    if (!veil_ext_find(ext, ext_len, type, &d, &n))
        return 1;
    if (n < 1 || d[0] != n - 1)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (!user_name_ok(d + 1, d[0]))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    memcpy(name, d + 1, d[0]);
    name[d[0]] = '\0';
    return 0;
}

static int ext_append(veil_buf *b, uint16_t type, const uint8_t *data, size_t len)
{
    int ret = veil_buf_u16(b, type);
    ret |= veil_buf_u16(b, (uint16_t)len);
    ret |= veil_buf_append(b, data, len);
    return ret != 0 ? VEIL_ERR_NOMEM : 0;
}

static int name_ext_append(veil_buf *b, uint16_t type, const char *name)
{
    uint8_t data[1 + VEIL_MAX_USER_NAME];
    size_t n = strlen(name);
    data[0] = (uint8_t)n;
    memcpy(data + 1, name, n);
    return ext_append(b, type, data, n + 1);
}

static int random_bytes(veil_conn *c, uint8_t *p, size_t n)
{
    return c->cb.random(c->cb.user, p, n) == 0 ? 0 : VEIL_ERR_RNG;
}

int veil_conn_start(veil_conn *c, veil_buf *out)
{
    veil_client_hello ch;
    uint8_t x_priv[VEIL_X25519_LEN], x_pub[VEIL_X25519_LEN];
    veil_buf ext;
    int ret;

    if (c->role == VEIL_ROLE_SERVER)
        return 0;
    if (c->state != ST_START)
        return VEIL_ERR_STATE;
    memset(&ch, 0, sizeof(ch));
    if ((ret = random_bytes(c, c->client_random, VEIL_RANDOM_LEN)) != 0)
        return ret;
    /* One key share per offered group, in order (RSA transport: an empty one). */
    for (unsigned i = 0; i < c->n_groups; i++) {
        ch.groups[i] = c->groups[i];
        if (c->groups[i] == VEIL_GROUP_X25519) {
            veil_pkey_free(c->eph_key);
            c->eph_key = NULL;
            if ((ret = random_bytes(c, x_priv, VEIL_X25519_LEN)) == 0)
                ret = veil_x25519_keypair(x_priv, x_pub, &c->eph_key);
            veil_memzero(x_priv, sizeof(x_priv));
            if (ret != 0)
                return ret;
            ch.shares[i] = x_pub;
            ch.share_lens[i] = VEIL_X25519_LEN;
        } else if (c->groups[i] == VEIL_GROUP_FFDHE2048) {
            if ((ret = random_bytes(c, c->ff_priv, VEIL_FFDHE_PRIV_LEN)) != 0 ||
                (ret = veil_ffdhe_public(c->ff_priv, c->ff_pub)) != 0)
                return ret;
            ch.shares[i] = c->ff_pub;
            ch.share_lens[i] = VEIL_FFDHE_LEN;
        }
    }
    ch.n_shares = c->n_groups;
    ch.n_versions = 1;
    ch.versions[0] = VEIL_VERSION_1;
    ch.mode = c->modes;
    ch.n_suites = c->n_suites;
    memcpy(ch.suites, c->suites, c->n_suites * sizeof(c->suites[0]));
    ch.random = c->client_random;
    /* The default service is implied by the extension's absence. */
    veil_buf_init(&ext);
    ret = 0;
    if (strcmp(c->service, VEIL_DEFAULT_SERVICE) != 0)
        ret = name_ext_append(&ext, VEIL_EXT_SERVICE, c->service);
    if (ret == 0 && c->user_mode)
        ret = name_ext_append(&ext, VEIL_EXT_USER, c->user);
    if (ret == 0 && c->psk_mode)
        ret = name_ext_append(&ext, VEIL_EXT_PSK_IDENTITY, c->psk_id);
    if (ret == 0 && c->client_sig)
        ret = ext_append(&ext, VEIL_EXT_CLIENT_IDENTITY, NULL, 0);
    ch.ext = ext.base;
    ch.ext_len = (uint16_t)ext.len;
    if (ret == 0 && (ret = veil_client_hello_encode(&ch, &c->msg)) == 0 && (ret = send_handshake(c, out)) == 0)
        c->state = ST_WAIT_SH;
    veil_buf_free(&ext);
    return ret;
}

static bool offered_u16(const uint16_t *list, size_t n, uint16_t v)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == v)
            return true;
    return false;
}

static bool identity_is_rsa(const veil_identity *id) { return veil_pkey_is_rsa(id->key); }

/* Sends ServerVerify: the identity's signature over H(CH||SH) (PROTOCOL.md §4.4). */
static int server_send_verify(veil_conn *c, veil_buf *out)
{
    veil_server_verify sv;
    uint8_t sig_msg[VEIL_SIG_MSG_LEN];
    veil_buf sig;
    int ret;
    veil_buf_init(&sig);
    veil_sig_message(c->th1, sig_msg);
    if ((ret = veil_pkey_sign(c->identity->key, sig_msg, sizeof(sig_msg), &sig)) == 0) {
        sv.scheme = identity_is_rsa(c->identity) ? VEIL_SIG_RSA_PSS_SHA256 : VEIL_SIG_ED25519;
        sv.sig = sig.base;
        sv.sig_len = (uint16_t)sig.len;
        if ((ret = veil_server_verify_encode(&sv, &c->msg)) == 0)
            ret = send_handshake(c, out);
    }
    veil_buf_free(&sig);
    return ret;
}

/* Sends the server Finished over the transcript so far. */
static int server_send_finished(veil_conn *c, veil_buf *out)
{
    uint8_t mac[VEIL_HASH_LEN];
    int ret;
    if ((ret = finished_mac(c, c->ks.s_finished_key, mac)) != 0 || (ret = veil_finished_encode(mac, &c->msg)) != 0)
        return ret;
    return send_handshake(c, out);
}

/*
 * Server: user and PSK extensions of the ClientHello (PROTOCOL.md §4.13, §4.14).
 * An unknown user gets a decoy verifier (salt from HMAC(decoy_key, name)) so
 * that the exchange looks the same as for a real user and fails at ClientAuth.
 */
static int server_auth_setup(veil_conn *c, const veil_client_hello *ch)
{
    const int refuse = VEIL_PERR(VEIL_ALERT_AUTH_FAILED);
    int ret = name_ext_decode(ch->ext, ch->ext_len, VEIL_EXT_USER, c->user);
    if (ret < 0)
        return ret;
    if (ret == 0) {
        if (c->cb.lookup_user == NULL)
            return refuse;
        c->user_mode = true;
        if (c->cb.lookup_user(c->cb.user, c->user, &c->uv) != 0 || c->uv.iterations < VEIL_SCRAM_MIN_ITERATIONS) {
            uint8_t mac[VEIL_HASH_LEN];
            c->decoy = true;
            if ((ret = veil_hmac_sha256(c->decoy_key, sizeof(c->decoy_key), (const uint8_t *)c->user,
                                        strlen(c->user), mac)) != 0 ||
                (ret = random_bytes(c, c->uv.stored_key, sizeof(c->uv.stored_key))) != 0)
                return ret;
            memcpy(c->uv.salt, mac, VEIL_SCRAM_SALT_LEN);
            c->uv.iterations = VEIL_SCRAM_DEFAULT_ITERATIONS;
        }
    } else if (c->require_user) {
        return refuse;
    }
    ret = name_ext_decode(ch->ext, ch->ext_len, VEIL_EXT_PSK_IDENTITY, c->psk_id);
    if (ret < 0)
        return ret;
    if (ret == 0) {
        if (c->cb.lookup_psk == NULL || c->cb.lookup_psk(c->cb.user, c->psk_id, c->psk) != 0)
            return refuse;
        c->psk_mode = true;
    } else if (c->require_psk) {
        return refuse;
    }
    const uint8_t *d;
    uint16_t n;
    c->client_sig = veil_ext_find(ch->ext, ch->ext_len, VEIL_EXT_CLIENT_IDENTITY, &d, &n);
    if (c->client_sig && n != 0)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if (!c->client_sig && c->require_client_id)
        return VEIL_PERR(VEIL_ALERT_UNTRUSTED_IDENTITY);
    return 0;
}

/* Server: ClientHello in; ServerHello + ServerVerify (+ Finished for DH groups) out. */
static int server_on_client_hello(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                                  size_t body_len, veil_buf *out)
{
    veil_client_hello ch;
    veil_server_hello sh;
    uint8_t server_random[VEIL_RANDOM_LEN], x_priv[VEIL_X25519_LEN], x_pub[VEIL_X25519_LEN];
    uint8_t shared[VEIL_FFDHE_LEN];
    veil_pkey *x_key = NULL;
    uint8_t th2[VEIL_HASH_LEN];
    veil_buf ext;
    const uint8_t *peer_share = NULL;
    size_t shared_len = 0;
    int ret;

    veil_buf_init(&ext);
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
    /* Service: absent means the default. */
    if ((ret = service_ext_decode(ch.ext, ch.ext_len, c->service)) != 0)
        goto Exit;
    bool service_ext = c->service[0] != '\0';
    if (!service_ext)
        memcpy(c->service, VEIL_DEFAULT_SERVICE, sizeof(VEIL_DEFAULT_SERVICE));
    ret = VEIL_PERR(VEIL_ALERT_UNKNOWN_SERVICE);
    if (!service_offered(c->services, c->service))
        goto Exit;
    if ((ret = server_auth_setup(c, &ch)) != 0)
        goto Exit;
    ret = VEIL_PERR(VEIL_ALERT_HANDSHAKE_FAILURE);
    c->suite = VEIL_SUITE_NULL;
    if (c->mode == VEIL_MODE_ENCRYPTED) {
        for (unsigned i = 0; i < ch.n_suites && c->suite == VEIL_SUITE_NULL; i++)
            if (ch.suites[i] != VEIL_SUITE_NULL && offered_u16(c->suites, c->n_suites, ch.suites[i]))
                c->suite = ch.suites[i];
        if (c->suite == VEIL_SUITE_NULL)
            goto Exit;
    }
    /* Group: the client's first offer that we accept and whose share is well formed. */
    c->group = 0;
    for (unsigned i = 0; i < ch.n_shares && c->group == 0; i++) {
        uint16_t g = ch.groups[i];
        if (!offered_u16(c->groups, c->n_groups, g))
            continue;
        if ((g == VEIL_GROUP_X25519 && ch.share_lens[i] == VEIL_X25519_LEN) ||
            (g == VEIL_GROUP_FFDHE2048 && ch.share_lens[i] == VEIL_FFDHE_LEN) ||
            (g == VEIL_GROUP_RSA_TRANSPORT && ch.share_lens[i] == 0 && identity_is_rsa(c->identity))) {
            c->group = g;
            peer_share = ch.shares[i];
        }
    }
    if (c->group == 0)
        goto Exit;
    if ((ret = veil_hash_update(c->transcript, msg, msg_len)) != 0 ||
        (ret = random_bytes(c, server_random, sizeof(server_random))) != 0)
        goto Exit;

    memset(&sh, 0, sizeof(sh));
    if (c->group == VEIL_GROUP_X25519) {
        ret = random_bytes(c, x_priv, sizeof(x_priv));
        if (ret == 0)
            ret = veil_x25519_keypair(x_priv, x_pub, &x_key);
        veil_memzero(x_priv, sizeof(x_priv));
        if (ret != 0 || (ret = veil_x25519_derive_key(x_key, peer_share, shared)) != 0)
            goto Exit;
        shared_len = VEIL_X25519_LEN;
        sh.key_share = x_pub;
        sh.key_share_len = VEIL_X25519_LEN;
    } else if (c->group == VEIL_GROUP_FFDHE2048) {
        if ((ret = random_bytes(c, c->ff_priv, sizeof(c->ff_priv))) != 0 ||
            (ret = veil_ffdhe_public(c->ff_priv, c->ff_pub)) != 0 ||
            (ret = veil_ffdhe_derive(c->ff_priv, c->ff_pub, peer_share, shared)) != 0)
            goto Exit;
        shared_len = VEIL_FFDHE_LEN;
        sh.key_share = c->ff_pub;
        sh.key_share_len = VEIL_FFDHE_LEN;
    }
    sh.version = VEIL_VERSION_1;
    sh.mode = c->mode;
    sh.suite = c->suite;
    sh.group = c->group;
    sh.random = server_random;
    sh.identity = c->identity->spki.base;
    sh.identity_len = (uint16_t)c->identity->spki.len;
    /* Extensions echo what the client asked: service, user (salt and iterations), PSK. */
    if (service_ext && (ret = name_ext_append(&ext, VEIL_EXT_SERVICE, c->service)) != 0)
        goto Exit;
    if (c->user_mode) {
        uint8_t d[VEIL_SCRAM_SALT_LEN + 4];
        memcpy(d, c->uv.salt, VEIL_SCRAM_SALT_LEN);
        veil_put_u32(d + VEIL_SCRAM_SALT_LEN, c->uv.iterations);
        if ((ret = ext_append(&ext, VEIL_EXT_USER, d, sizeof(d))) != 0)
            goto Exit;
    }
    if (c->psk_mode && (ret = ext_append(&ext, VEIL_EXT_PSK_IDENTITY, NULL, 0)) != 0)
        goto Exit;
    if (c->client_sig && (ret = ext_append(&ext, VEIL_EXT_CLIENT_IDENTITY, NULL, 0)) != 0)
        goto Exit;
    sh.ext = ext.base;
    sh.ext_len = (uint16_t)ext.len;
    if ((ret = veil_server_hello_encode(&sh, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0 ||
        (ret = veil_hash_peek(c->transcript, c->th1)) != 0 || (ret = server_send_verify(c, out)) != 0)
        goto Exit;
    if (c->group == VEIL_GROUP_RSA_TRANSPORT) {
        /* The secret arrives in the ClientKeyExchange. */
        c->state = ST_WAIT_CKE;
        goto Exit;
    }
    if ((ret = veil_schedule_handshake(&c->ks, shared, shared_len, psk_of(c), c->th1)) != 0 ||
        (ret = server_send_finished(c, out)) != 0 || (ret = veil_hash_peek(c->transcript, th2)) != 0 ||
        (ret = veil_schedule_traffic(&c->ks, th2)) != 0 || (ret = install_key(c, &c->tx, c->ks.s_ap, 1)) != 0)
        goto Exit;
    keylog(c);
    c->state = ST_WAIT_CF;
Exit:
    veil_pkey_free(x_key);
    veil_memzero(shared, sizeof(shared));
    veil_buf_free(&ext);
    return ret;
}

/* Server, RSA transport: ClientKeyExchange in; the premaster secret decrypted
 * with the identity key feeds the schedule over H(CH||SH||SV||CKE). */
static int server_on_key_exchange(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                                  size_t body_len)
{
    const uint8_t *ct;
    uint16_t ct_len;
    uint8_t premaster[VEIL_SECRET_LEN], th[VEIL_HASH_LEN];
    int ret;
    if ((ret = veil_client_key_exchange_decode(body, body_len, &ct, &ct_len)) != 0 ||
        (ret = veil_pkey_oaep_decrypt(c->identity->key, ct, ct_len, premaster, sizeof(premaster))) != 0)
        return ret;
    if ((ret = veil_hash_update(c->transcript, msg, msg_len)) == 0 && (ret = veil_hash_peek(c->transcript, th)) == 0 &&
        (ret = veil_schedule_handshake(&c->ks, premaster, sizeof(premaster), psk_of(c), th)) == 0 &&
        (ret = veil_schedule_traffic(&c->ks, th)) == 0)
        c->state = ST_WAIT_CF;
    veil_memzero(premaster, sizeof(premaster));
    return ret;
}

/* Server: client Finished in; the connection is up.  RSA transport: the
 * server Finished follows it, over the transcript through CF. */
static int server_on_finished(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                              size_t body_len, veil_buf *out)
{
    const uint8_t *vd;
    uint8_t mac[VEIL_HASH_LEN];
    int ret;
    if ((ret = veil_finished_decode(body, body_len, &vd)) != 0 ||
        (ret = finished_mac(c, c->ks.c_finished_key, mac)) != 0)
        return ret;
    if (veil_memeq_ct(mac, vd, VEIL_HASH_LEN) != 0)
        return VEIL_PERR(c->psk_mode ? VEIL_ALERT_AUTH_FAILED : VEIL_ALERT_DECRYPT_ERROR);
    /* AuthMessage for user authentication: the transcript through the client Finished. */
    if ((ret = veil_hash_update(c->transcript, msg, msg_len)) != 0 || (ret = veil_hash_peek(c->transcript, c->auth_th)) != 0)
        return ret;
    if (c->group == VEIL_GROUP_RSA_TRANSPORT) {
        if ((ret = server_send_finished(c, out)) != 0 || (ret = install_key(c, &c->tx, c->ks.s_ap, 1)) != 0)
            return ret;
        keylog(c);
    }
    if ((ret = install_key(c, &c->rx, c->ks.c_ap, 0)) != 0)
        return ret;
    wipe_handshake(c);
    if (c->user_mode) {
        c->state = ST_WAIT_CAUTH;
        return 0;
    }
    return connected(c);
}

/* Server: ClientVerify in (before the client Finished): the client proves its key. */
static int server_on_client_verify(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                                   size_t body_len)
{
    veil_client_verify cv;
    veil_pkey *key = NULL;
    uint8_t th[VEIL_HASH_LEN], sig_msg[VEIL_SIG_MSG_LEN];
    int ret = veil_client_verify_decode(body, body_len, &cv);
    if (ret != 0)
        return ret;
    if (veil_pkey_from_spki(cv.spki, cv.spki_len, &key) != 0)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    ret = VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (!veil_pkey_usable_identity(key) ||
        cv.scheme != (veil_pkey_is_rsa(key) ? VEIL_SIG_RSA_PSS_SHA256 : VEIL_SIG_ED25519))
        goto Exit;
    if ((ret = veil_hash_peek(c->transcript, th)) != 0 || (ret = veil_sha256(cv.spki, cv.spki_len, c->peer_fp)) != 0)
        goto Exit;
    veil_client_sig_message(th, sig_msg);
    ret = VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR);
    if (veil_pkey_verify(key, sig_msg, sizeof(sig_msg), cv.sig, cv.sig_len) != 0)
        goto Exit;
    ret = VEIL_PERR(VEIL_ALERT_UNTRUSTED_IDENTITY);
    if (c->cb.verify_identity != NULL && c->cb.verify_identity(c->cb.user, c->peer_fp, cv.spki, cv.spki_len) != 0)
        goto Exit;
    c->have_peer_fp = true;
    c->got_cv = true;
    ret = veil_hash_update(c->transcript, msg, msg_len);
Exit:
    veil_pkey_free(key);
    return ret;
}

/* SCRAM: ClientSignature = HMAC(StoredKey, AuthMessage); proof = ClientKey XOR it. */
static int client_signature(const veil_conn *c, uint8_t sig[VEIL_HASH_LEN])
{
    return veil_hmac_sha256(c->uv.stored_key, sizeof(c->uv.stored_key), c->auth_th, sizeof(c->auth_th), sig);
}

/* Server: ClientAuth in (PROTOCOL.md §4.13); ServerAuth out; the user is authenticated. */
static int server_on_client_auth(veil_conn *c, const uint8_t *body, size_t body_len, veil_buf *out)
{
    uint8_t sig[VEIL_HASH_LEN], client_key[VEIL_HASH_LEN], stored[VEIL_HASH_LEN], msg[4 + VEIL_HASH_LEN];
    int ret;
    if (body_len != VEIL_AUTH_PROOF_LEN)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if ((ret = client_signature(c, sig)) != 0)
        return ret;
    for (size_t i = 0; i < VEIL_HASH_LEN; i++)
        client_key[i] = body[i] ^ sig[i];
    ret = veil_sha256(client_key, sizeof(client_key), stored);
    veil_memzero(client_key, sizeof(client_key));
    if (ret != 0)
        return ret;
    /* Both failure causes (no such user, wrong password) end here, alike. */
    if ((veil_memeq_ct(stored, c->uv.stored_key, VEIL_HASH_LEN) != 0) | c->decoy)
        return VEIL_PERR(VEIL_ALERT_AUTH_FAILED);
    msg[0] = VEIL_HS_SERVER_AUTH;
    veil_put_u24(msg + 1, VEIL_HASH_LEN);
    if ((ret = veil_hmac_sha256(c->uv.server_key, sizeof(c->uv.server_key), c->auth_th, sizeof(c->auth_th), msg + 4)) != 0 ||
        (ret = write_record(c, VEIL_REC_HANDSHAKE, msg, sizeof(msg), out)) != 0)
        return ret;
    veil_memzero(&c->uv, sizeof(c->uv));
    c->authenticated = true;
    return connected(c);
}

/*
 * Client: the ServerHello's user extension (salt, iterations) turns the
 * password into the SCRAM keys; the PSK extension must be echoed when a PSK
 * was offered, and only then (PROTOCOL.md §4.13, §4.14).
 */
static int client_auth_params(veil_conn *c, const veil_server_hello *sh)
{
    const uint8_t *d;
    uint16_t n;
    int ret;
    bool has_user = veil_ext_find(sh->ext, sh->ext_len, VEIL_EXT_USER, &d, &n);
    if (has_user != c->user_mode)
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if (has_user) {
        uint8_t salted[32];
        if (n != VEIL_SCRAM_SALT_LEN + 4)
            return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
        uint32_t iterations = veil_get_u32(d + VEIL_SCRAM_SALT_LEN);
        if (iterations < VEIL_SCRAM_MIN_ITERATIONS || iterations > VEIL_SCRAM_MAX_ITERATIONS)
            return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
        memcpy(c->uv.salt, d, VEIL_SCRAM_SALT_LEN);
        c->uv.iterations = iterations;
        ret = veil_pbkdf2_sha256(c->password, c->password_len, d, VEIL_SCRAM_SALT_LEN, iterations, salted,
                                 sizeof(salted));
        if (ret == 0)
            ret = veil_hmac_sha256(salted, sizeof(salted), (const uint8_t *)"Client Key", 10, c->client_key);
        if (ret == 0)
            ret = veil_sha256(c->client_key, sizeof(c->client_key), c->uv.stored_key);
        if (ret == 0)
            ret = veil_hmac_sha256(salted, sizeof(salted), (const uint8_t *)"Server Key", 10, c->uv.server_key);
        veil_memzero(salted, sizeof(salted));
        wipe_password(c);
        if (ret != 0)
            return ret;
    }
    bool has_psk = veil_ext_find(sh->ext, sh->ext_len, VEIL_EXT_PSK_IDENTITY, &d, &n);
    if (has_psk != c->psk_mode || (has_psk && n != 0))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    bool has_cid = veil_ext_find(sh->ext, sh->ext_len, VEIL_EXT_CLIENT_IDENTITY, &d, &n);
    if (has_cid != c->client_sig || (has_cid && n != 0))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    return 0;
}

/* Client: ServerHello in; checks every choice against what was offered. */
static int client_on_server_hello(veil_conn *c, const uint8_t *msg, size_t msg_len, const uint8_t *body,
                                  size_t body_len)
{
    veil_server_hello sh;
    uint8_t shared[VEIL_FFDHE_LEN];
    char service[VEIL_MAX_SERVICE_NAME + 1];
    size_t shared_len = 0;
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
    if (!offered_u16(c->groups, c->n_groups, sh.group) ||
        sh.key_share_len != (sh.group == VEIL_GROUP_X25519     ? VEIL_X25519_LEN
                             : sh.group == VEIL_GROUP_FFDHE2048 ? VEIL_FFDHE_LEN
                                                                : 0))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    /* The service must be the one asked for (echoed only when asked explicitly). */
    if ((ret = service_ext_decode(sh.ext, sh.ext_len, service)) != 0)
        return ret;
    if (strcmp(service[0] != '\0' ? service : VEIL_DEFAULT_SERVICE, c->service) != 0 ||
        (service[0] == '\0') != (strcmp(c->service, VEIL_DEFAULT_SERVICE) == 0))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    if ((ret = client_auth_params(c, &sh)) != 0)
        return ret;
    if (veil_pkey_from_spki(sh.identity, sh.identity_len, &c->peer_key) != 0 ||
        !veil_pkey_usable_identity(c->peer_key) ||
        (sh.group == VEIL_GROUP_RSA_TRANSPORT && !veil_pkey_is_rsa(c->peer_key)))
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
    if ((ret = veil_hash_update(c->transcript, msg, msg_len)) != 0 || (ret = veil_hash_peek(c->transcript, c->th1)) != 0)
        return ret;
    if (c->group == VEIL_GROUP_X25519) {
        ret = c->eph_key != NULL ? veil_x25519_derive_key(c->eph_key, sh.key_share, shared) : VEIL_ERR_STATE;
        shared_len = VEIL_X25519_LEN;
    } else if (c->group == VEIL_GROUP_FFDHE2048) {
        ret = veil_ffdhe_derive(c->ff_priv, c->ff_pub, sh.key_share, shared);
        shared_len = VEIL_FFDHE_LEN;
    }
    if (ret == 0 && shared_len != 0)
        ret = veil_schedule_handshake(&c->ks, shared, shared_len, psk_of(c), c->th1);
    veil_memzero(shared, sizeof(shared));
    veil_pkey_free(c->eph_key);
    c->eph_key = NULL;
    veil_memzero(c->ff_priv, sizeof(c->ff_priv));
    if (ret == 0)
        c->state = ST_WAIT_SV;
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
    if (sv.scheme != (veil_pkey_is_rsa(c->peer_key) ? VEIL_SIG_RSA_PSS_SHA256 : VEIL_SIG_ED25519))
        return VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER);
    veil_sig_message(c->th1, sig_msg);
    if (veil_pkey_verify(c->peer_key, sig_msg, sizeof(sig_msg), sv.sig, sv.sig_len) != 0)
        return VEIL_PERR(VEIL_ALERT_DECRYPT_ERROR);
    return 0;
}

/* Client: server Finished in, checked against the transcript so far. */
static int client_check_finished(veil_conn *c, const uint8_t *body, size_t body_len)
{
    const uint8_t *vd;
    uint8_t mac[VEIL_HASH_LEN];
    int ret;
    if ((ret = veil_finished_decode(body, body_len, &vd)) != 0 ||
        (ret = finished_mac(c, c->ks.s_finished_key, mac)) != 0)
        return ret;
    if (veil_memeq_ct(mac, vd, VEIL_HASH_LEN) != 0)
        return VEIL_PERR(c->psk_mode ? VEIL_ALERT_AUTH_FAILED : VEIL_ALERT_DECRYPT_ERROR);
    return 0;
}

/* Client: ClientVerify out: its identity key and a signature over th_ap (PROTOCOL.md §4.15). */
static int client_send_verify(veil_conn *c, const uint8_t th[VEIL_HASH_LEN], veil_buf *out)
{
    veil_client_verify cv;
    uint8_t sig_msg[VEIL_SIG_MSG_LEN];
    veil_buf sig;
    int ret;
    veil_buf_init(&sig);
    veil_client_sig_message(th, sig_msg);
    if ((ret = veil_pkey_sign(c->client_id->key, sig_msg, sizeof(sig_msg), &sig)) == 0) {
        cv.spki = c->client_id->spki.base;
        cv.spki_len = (uint16_t)c->client_id->spki.len;
        cv.scheme = veil_pkey_is_rsa(c->client_id->key) ? VEIL_SIG_RSA_PSS_SHA256 : VEIL_SIG_ED25519;
        cv.sig = sig.base;
        cv.sig_len = (uint16_t)sig.len;
        if ((ret = veil_client_verify_encode(&cv, &c->msg)) == 0)
            ret = send_handshake(c, out);
    }
    veil_buf_free(&sig);
    return ret;
}

/* Client: client Finished out over the transcript so far (which also keys the
 * traffic secrets); data may flow after it. */
static int client_send_finished(veil_conn *c, veil_buf *out)
{
    uint8_t th[VEIL_HASH_LEN], mac[VEIL_HASH_LEN];
    int ret;
    /* Traffic secrets from th_ap; a ClientVerify signs th_ap; the Finished covers it too. */
    if ((ret = veil_hash_peek(c->transcript, th)) != 0 || (ret = veil_schedule_traffic(&c->ks, th)) != 0 ||
        (c->client_sig && (ret = client_send_verify(c, th, out)) != 0) ||
        (ret = finished_mac(c, c->ks.c_finished_key, mac)) != 0 ||
        (ret = veil_finished_encode(mac, &c->msg)) != 0 || (ret = send_handshake(c, out)) != 0 ||
        (ret = install_key(c, &c->tx, c->ks.c_ap, 1)) != 0)
        return ret;
    keylog(c);
    if (!c->user_mode)
        return 0;
    /* ClientAuth right behind the Finished, under the new key in encrypted mode. */
    uint8_t msg[4 + VEIL_AUTH_PROOF_LEN], sig[VEIL_HASH_LEN];
    if ((ret = veil_hash_peek(c->transcript, c->auth_th)) != 0 || (ret = client_signature(c, sig)) != 0)
        return ret;
    msg[0] = VEIL_HS_CLIENT_AUTH;
    veil_put_u24(msg + 1, VEIL_AUTH_PROOF_LEN);
    for (size_t i = 0; i < VEIL_AUTH_PROOF_LEN; i++)
        msg[4 + i] = c->client_key[i] ^ sig[i];
    veil_memzero(c->client_key, sizeof(c->client_key));
    if ((ret = write_record(c, VEIL_REC_HANDSHAKE, msg, sizeof(msg), out)) != 0)
        return ret;
    c->awaiting_sauth = true;
    return 0;
}

/* Client: ServerAuth in: the server proves it holds the user's verifier. */
static int client_on_server_auth(veil_conn *c, const uint8_t *body, size_t body_len)
{
    uint8_t want[VEIL_HASH_LEN];
    int ret;
    if (body_len != VEIL_HASH_LEN)
        return VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
    if ((ret = veil_hmac_sha256(c->uv.server_key, sizeof(c->uv.server_key), c->auth_th, sizeof(c->auth_th), want)) != 0)
        return ret;
    if (veil_memeq_ct(want, body, VEIL_HASH_LEN) != 0)
        return VEIL_PERR(VEIL_ALERT_AUTH_FAILED);
    veil_memzero(&c->uv, sizeof(c->uv));
    c->awaiting_sauth = false;
    c->authenticated = true;
    return 0;
}

/* Client, RSA transport: ClientKeyExchange (a fresh premaster secret under
 * RSA-OAEP) and client Finished out; the server Finished comes later. */
static int client_send_key_exchange(veil_conn *c, veil_buf *out)
{
    uint8_t premaster[VEIL_SECRET_LEN], th[VEIL_HASH_LEN];
    veil_buf ct;
    int ret;
    veil_buf_init(&ct);
    if ((ret = random_bytes(c, premaster, sizeof(premaster))) != 0 ||
        (ret = veil_pkey_oaep_encrypt(c->peer_key, premaster, sizeof(premaster), &ct)) != 0 ||
        (ret = veil_client_key_exchange_encode(ct.base, ct.len, &c->msg)) != 0 ||
        (ret = send_handshake(c, out)) != 0 || (ret = veil_hash_peek(c->transcript, th)) != 0 ||
        (ret = veil_schedule_handshake(&c->ks, premaster, sizeof(premaster), psk_of(c), th)) != 0)
        goto Exit;
    if ((ret = client_send_finished(c, out)) != 0)
        goto Exit;
    c->awaiting_sf = true;
    ret = connected(c);
Exit:
    veil_memzero(premaster, sizeof(premaster));
    veil_buf_free(&ct);
    return ret;
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
    case ST_WAIT_CKE:
        if (type != VEIL_HS_CLIENT_KEY_EXCHANGE)
            break;
        return server_on_key_exchange(c, content, len, body, body_len);
    case ST_WAIT_CF:
        if (type == VEIL_HS_CLIENT_VERIFY && c->client_sig && !c->got_cv)
            return server_on_client_verify(c, content, len, body, body_len);
        if (type != VEIL_HS_FINISHED || c->client_sig != c->got_cv)
            break;
        return server_on_finished(c, content, len, body, body_len, out);
    case ST_WAIT_CAUTH:
        if (type != VEIL_HS_CLIENT_AUTH)
            break;
        return server_on_client_auth(c, body, body_len, out);
    case ST_WAIT_SH:
        if (type != VEIL_HS_SERVER_HELLO)
            break;
        return client_on_server_hello(c, content, len, body, body_len);
    case ST_WAIT_SV:
        if (type != VEIL_HS_SERVER_VERIFY)
            break;
        if ((ret = client_on_server_verify(c, body, body_len)) != 0 ||
            (ret = veil_hash_update(c->transcript, content, len)) != 0)
            return ret;
        if (c->group == VEIL_GROUP_RSA_TRANSPORT)
            return client_send_key_exchange(c, out);
        c->state = ST_WAIT_SF;
        return 0;
    case ST_WAIT_SF:
        /* DH groups: SF before the client's Finished; the traffic keys cover it. */
        if (type != VEIL_HS_FINISHED)
            break;
        if ((ret = client_check_finished(c, body, body_len)) != 0 ||
            (ret = veil_hash_update(c->transcript, content, len)) != 0 ||
            (ret = client_send_finished(c, out)) != 0 || (ret = install_key(c, &c->rx, c->ks.s_ap, 0)) != 0)
            return ret;
        wipe_handshake(c);
        return connected(c);
    case ST_CONNECTED:
        if (type == VEIL_HS_SERVER_AUTH && c->awaiting_sauth && !c->awaiting_sf)
            return client_on_server_auth(c, body, body_len);
        /* RSA transport: the server Finished arrives after the client's. */
        if (type != VEIL_HS_FINISHED || !c->awaiting_sf)
            break;
        if ((ret = client_check_finished(c, body, body_len)) != 0 ||
            (ret = install_key(c, &c->rx, c->ks.s_ap, 0)) != 0)
            return ret;
        c->awaiting_sf = false;
        wipe_handshake(c);
        return 0;
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
    if (c->state != ST_CONNECTED || c->awaiting_sf || c->awaiting_sauth)
        return VEIL_PERR(VEIL_ALERT_UNEXPECTED_MESSAGE);
    int ret = veil_message_decode(content, len, &ev.kind, &ev.timestamp_ms, &ev.data, &ev.len);
    return ret != 0 ? ret : emit(c, &ev);
}

static int on_key_update(veil_conn *c, const uint8_t *content, size_t len)
{
    if (c->state != ST_CONNECTED || c->awaiting_sf || c->awaiting_sauth || c->rx.cipher == NULL)
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

/* One complete record (header already decoded).  rec is the record in the
 * caller's input (read only) or, when mut is set, in c->in, where it is
 * decrypted in place.  Decrypted content is wiped once handled. */
static int on_record(veil_conn *c, const veil_header *h, const uint8_t *rec, uint8_t *mut, veil_buf *out)
{
    uint8_t opened[VEIL_MAX_BODY]; /* records from the caller's buffer decrypt here */
    uint8_t *secret = NULL;
    const uint8_t *content;
    size_t len = 0;
    int ret;
    if (h->seq != c->rx.seq)
        return VEIL_PERR(VEIL_ALERT_BAD_SEQUENCE);
    if (mut != NULL) {
        uint8_t *p = NULL;
        ret = veil_record_open_inplace(&c->rx, h, mut, &p, &len);
        content = secret = p;
    } else if ((h->flags & VEIL_FLAG_ENCRYPTED) == 0 && c->rx.cipher == NULL) {
        ret = veil_record_check_crc(h, rec, &len); /* plaintext: the content is the body */
        content = rec + VEIL_HEADER_LEN;
    } else {
        ret = veil_record_open(&c->rx, h, rec, opened, &len);
        content = secret = opened;
    }
    if (ret != 0) {
        if (secret == opened)
            veil_wipe(opened, sizeof(opened)); /* whatever a failed open left */
        return ret;
    }
    c->rx.seq++;
    switch (h->type) {
    case VEIL_REC_HANDSHAKE:
        ret = on_handshake(c, content, len, out);
        break;
    case VEIL_REC_ALERT:
        ret = on_alert(c, content, len);
        break;
    case VEIL_REC_APPDATA:
        ret = on_appdata(c, content, len);
        break;
    case VEIL_REC_KEY_UPDATE:
        ret = on_key_update(c, content, len);
        break;
    default:
        ret = VEIL_PERR(VEIL_ALERT_DECODE_ERROR);
        break;
    }
    if (secret != NULL)
        veil_wipe(secret, len);
    return ret;
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
    veil_memzero(&c->uv, sizeof(c->uv));
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
                /* Carried over: room for the whole record at once, no regrowth. */
                if ((ret = veil_buf_reserve_exact(&c->in, VEIL_HEADER_LEN + (size_t)h.length)) != 0 ||
                    (ret = veil_buf_append(&c->in, in, len)) != 0)
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
                if ((ret = veil_buf_reserve_exact(&c->in, want - c->in.len)) != 0)
                    return ret;
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
        bool carried = rec == c->in.base;
        ret = on_record(c, &h, rec, carried ? c->in.base : NULL, out);
        if (carried) {
            c->in.len = 0;
            if (c->in.cap > IN_KEEP_CAP)
                veil_buf_free(&c->in);
        }
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
    /* Message header and data sealed as two pieces: no copy of the data. */
    return veil_record_write2(&c->tx, VEIL_REC_APPDATA, hdr, sizeof(hdr), data, len, c->cb.random, c->cb.user,
                              out);
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
    if ((c->state == ST_CONNECTED && !c->awaiting_sf && !c->awaiting_sauth) || c->state == ST_FAILED)
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
const char *veil_conn_service(const veil_conn *c) { return c->service; }
const char *veil_conn_user(const veil_conn *c) { return c->authenticated ? c->user : NULL; }
const char *veil_conn_psk_identity(const veil_conn *c)
{
    return c->psk_mode && c->state == ST_CONNECTED && !c->awaiting_sf ? c->psk_id : NULL;
}
int veil_conn_peer_alert(const veil_conn *c) { return c->peer_alert; }

int veil_conn_peer_fingerprint(const veil_conn *c, uint8_t fp[VEIL_FINGERPRINT_LEN])
{
    if (!c->have_peer_fp)
        return VEIL_ERR_STATE;
    memcpy(fp, c->peer_fp, VEIL_FINGERPRINT_LEN);
    return 0;
}
