/*
 * fuzz_common.c - see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "veil_internal.h"

#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "%s:%d: contract violated: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

void fuzz_rng_init(fuzz_rng *r, const char *label)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->used = sizeof(r->block);
}

int fuzz_rng_cb(void *user, uint8_t *out, size_t n)
{
    fuzz_rng *r = user;
    while (n > 0) {
        if (r->used == sizeof(r->block)) {
            uint8_t in[20] = {0};
            memcpy(in, r->label, strlen(r->label)); /* at most 15 characters */
            veil_put_u32(in + 16, r->counter++);
            if (veil_sha256(in, sizeof(in), r->block) != 0)
                return -1;
            r->used = 0;
        }
        size_t k = sizeof(r->block) - r->used < n ? sizeof(r->block) - r->used : n;
        memcpy(out, r->block + r->used, k);
        r->used += k;
        out += k;
        n -= k;
    }
    return 0;
}

const veil_identity *fuzz_identity(void)
{
    static veil_identity *id;
    if (id == NULL) {
        fuzz_rng r;
        fuzz_rng_init(&r, "identity");
        CHECK(veil_identity_generate(fuzz_rng_cb, &r, &id) == 0);
    }
    return id;
}

/* A 2048-bit RSA key made for the fuzz targets only (RSA key generation cannot
 * be driven by the RNG callback, so the key is fixed here). Not a secret. */
static const char rsa_test_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCzNPDMfYiJlHpK\n"
    "kVNtPYPhS/Pnvd028koJ6SpX9UB82V9osWfRrfRW6gSpzmECqvpFAatli94ujMZ1\n"
    "tC9NZpx28mr5yNqDNmGapO8a9U62UOFVaqhHl5L1CDjJkXUZ0lDx0HD1r95ZtpiK\n"
    "DqrJxqyO2iEEMYo4jsTp38NXuQdBkgVDLH7XcchXN8O1Lknuv/0NJfS1JC9SiuFw\n"
    "cRYUdJmUOL9ejvFOKycMouHVUQIprAaBhu7LoHu91i19/aekJnLz0N1rGfB+0xqs\n"
    "khPm0w9LmIOazq5HAVJEu6KU97TzVb45Y7DkZawRbEZoEXduD7WjMOdEG5fvlINo\n"
    "XcwpuxqZAgMBAAECggEABLy4G9O6sFZZiDnrZbvGo3CVopEz3+Vg5yj/z/eWoZDr\n"
    "yHxIurPO6HLttiETkpWQoZKFJHKhfYNbpgC3b7lFbBCFmujqu9AMHaF8BO9Un2r9\n"
    "FeazSuyFu46g1P/lw6MPYDZgHLfY2HAZpqvzavuNPrEjRnWFH5sd4fJ4EGF+q1vv\n"
    "MLGJjpu1KrEdlNKJfJon8YcUpQJVsTPpxO14bsOsrbx7TienzjoZAt5/UJNqjITx\n"
    "ZcGUEMZ+W+tdzZ9N8qLk/QPkxEWbgCwaTN3FOWyBCYIz4qvG4WsFctpfGmckADAR\n"
    "v+9tZgQDlxEn3w0J3a1u8amgdJDitUq+xCLNrug/bQKBgQDnnhtWqBAL3MzAKX2X\n"
    "L2sE+5xFqTctEwUHIiqegIGOvUuEf0dLit80Bcx26ieqQfKxRn9NWuILVcZGdVaY\n"
    "kBxJzvKyGPh6SHc3I8lvgwyYyYEH5H/O/QGO+TvG0EmJJ0rfeRLloR9MX9Xk930g\n"
    "l9ivQWF73i1FGN5PVHZl+5DqHQKBgQDGEmh9Pg7h8McChTt+xe+UVU/IFJX0XU7D\n"
    "XQErzG5dfk1irRfM4+HNeSlQeBzZxJrkZy4HLWauNkeHoAC7nxDUM6AZ1bbat2vQ\n"
    "rGxFsH71yTIJOJSpWUIxbVdAsSBWhy7ymd5+VQIJ+ZCHNr2apNC8zYZBduYYGS2q\n"
    "0QowWTNprQKBgHrwXw52El5ZioyM+U6gKqvwaZhIIzNXnxmUNw7+osYDD+x6Knuc\n"
    "cLEKSubrjrY+XvVduAB1NvpRQvbvHVHJXFqI8CU8P9eYUz7/TdJUuwD2I/jufjB9\n"
    "9q/O9r2mnQGhy4oml7Mu/I/rZnssKkx8jNUpXPcEjP7aHlX5PQcQqnC5AoGAfvLF\n"
    "baAcwcskggUKgNI0H4oePEqVYa18EdLGMWAxTFLrHld6baOQ0bTaOe0B8MEF1WYc\n"
    "JhV/PiEj71UpoxbsHlWIQ4aqT7xHqdMZAgGBHd755tcQ0QmYVz2RMrFT3KGAAZWE\n"
    "+MtbJzGA5Gi9VSRVdOz1I3glOUTJ9DVOpnZFcXECgYAhgt4HxcGduNrTAtntO5WG\n"
    "wfPKP/UNesrmN6roVyf0TzarYJKBJQm48l4mnL/I8DNF4+PA8hdV/k098LXDEc2q\n"
    "HtDuyYNR7zjZeJI42Bs4dCllTPna9niTyQ9QN+wzLp82qbCOzo2T2oEXE1MBn+Ow\n"
    "5fOaqKvh6kbQ6Om2YhcSwA==\n"
    "-----END PRIVATE KEY-----\n";

const veil_identity *fuzz_rsa_identity(void)
{
    static veil_identity *id;
    if (id == NULL)
        CHECK(veil_identity_from_pem(rsa_test_key, sizeof(rsa_test_key) - 1, &id) == 0);
    return id;
}

/* The signing client's own identity (configuration 8). */
static const veil_identity *client_identity(void)
{
    static veil_identity *id;
    if (id == NULL) {
        fuzz_rng r;
        fuzz_rng_init(&r, "client-identity");
        CHECK(veil_identity_generate(fuzz_rng_cb, &r, &id) == 0);
    }
    return id;
}

static const uint16_t one_suite[3][1] = {
    {VEIL_SUITE_AES_256_GCM_SHA256},
    {VEIL_SUITE_CHACHA20_POLY1305_SHA256},
    {VEIL_SUITE_AES_256_CBC_HMAC_SHA256},
};
static const uint16_t group_ffdhe[] = {VEIL_GROUP_FFDHE2048};
static const uint16_t group_rsa[] = {VEIL_GROUP_RSA_TRANSPORT};
static const uint16_t groups_both[] = {VEIL_GROUP_X25519, VEIL_GROUP_FFDHE2048};

#define FUZZ_USER "alice"
#define FUZZ_PASSWORD "correct horse"
#define FUZZ_PSK_ID "fuzz-psk"
static const uint8_t fuzz_psk[VEIL_PSK_LEN] = {0x50, 0x53, 0x4b, [31] = 0x01};
static const uint8_t decoy_key[32] = {0xDE, 0xC0, 0x1, [31] = 0x02};

/* Which server configuration each client configuration meets. */
static const uint8_t client_peer[FUZZ_N_CLIENT_CONFIGS] = {0, 0, 0, 0, 0, 0, 2, 3, 4, 1, 1};

void fuzz_client_config(veil_config *cfg, unsigned selector)
{
    selector %= FUZZ_N_CLIENT_CONFIGS;
    veil_config_init(cfg, VEIL_ROLE_CLIENT);
    cfg->rekey_records = FUZZ_REKEY_RECORDS;
    switch (selector) {
    case 1:
    case 2:
    case 3:
        cfg->suites = one_suite[selector - 1];
        cfg->n_suites = 1;
        break;
    case 4:
        cfg->modes = VEIL_MODE_PLAINTEXT;
        break;
    case 5:
        cfg->groups = group_ffdhe;
        cfg->n_groups = 1;
        break;
    case 6:
        cfg->user_name = FUZZ_USER;
        cfg->password = FUZZ_PASSWORD;
        cfg->password_len = strlen(FUZZ_PASSWORD);
        break;
    case 7:
        cfg->psk = fuzz_psk;
        cfg->psk_identity = FUZZ_PSK_ID;
        break;
    case 8:
        cfg->client_identity = client_identity();
        break;
    case 9:
        cfg->groups = group_rsa;
        cfg->n_groups = 1;
        break;
    case 10:
        cfg->service = "chat";
        cfg->groups = groups_both;
        cfg->n_groups = 2;
        break;
    default:
        break;
    }
}

const char *fuzz_client_label(unsigned selector)
{
    static char label[16];
    snprintf(label, sizeof(label), "client%u", selector % FUZZ_N_CLIENT_CONFIGS);
    return label;
}

unsigned fuzz_client_peer(unsigned selector) { return client_peer[selector % FUZZ_N_CLIENT_CONFIGS]; }

int fuzz_client_encrypts(unsigned selector) { return selector % FUZZ_N_CLIENT_CONFIGS != 4; }

void fuzz_server_config(veil_config *cfg, unsigned selector)
{
    selector %= FUZZ_N_SERVER_CONFIGS;
    veil_config_init(cfg, VEIL_ROLE_SERVER);
    cfg->modes = VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT;
    cfg->identity = selector == 1 ? fuzz_rsa_identity() : fuzz_identity();
    cfg->rekey_records = FUZZ_REKEY_RECORDS;
    cfg->service = "msg,chat";
    cfg->decoy_key = decoy_key;
    cfg->require_user = selector == 2;
    cfg->require_psk = selector == 3;
    cfg->require_client_identity = selector == 4;
}

/* The one user the servers know; the verifier is derived once (PBKDF2 is slow). */
static int lookup_user(void *user, const char *name, veil_user_verifier *v)
{
    static veil_user_verifier alice;
    static bool made;
    (void)user;
    if (strcmp(name, FUZZ_USER) != 0)
        return -1;
    if (!made) {
        static const uint8_t salt[VEIL_SCRAM_SALT_LEN] = {0x5A, 0x17};
        CHECK(veil_user_verifier_make(FUZZ_PASSWORD, strlen(FUZZ_PASSWORD), salt, VEIL_SCRAM_MIN_ITERATIONS,
                                      &alice) == 0);
        made = true;
    }
    *v = alice;
    return 0;
}

static int lookup_psk(void *user, const char *identity, uint8_t psk[VEIL_PSK_LEN])
{
    (void)user;
    if (strcmp(identity, FUZZ_PSK_ID) != 0)
        return -1;
    memcpy(psk, fuzz_psk, VEIL_PSK_LEN);
    return 0;
}

static void on_keylog(void *user, const char *line)
{
    fuzz_endpoint *e = user;
    size_t n = strlen(line);
    /* LABEL SP 64 hex SP 64 hex, nothing else. */
    CHECK(n == 28 + 1 + 64 + 1 + 64);
    CHECK(strncmp(line, VEIL_KEYLOG_CLIENT_TRAFFIC, 28) == 0 || strncmp(line, VEIL_KEYLOG_SERVER_TRAFFIC, 28) == 0);
    CHECK(strspn(line + 29, "0123456789abcdef") == 64 && line[93] == ' ' &&
          strspn(line + 94, "0123456789abcdef") == 64);
    if (e->n_keylog < 2)
        memcpy(e->keylog[e->n_keylog++], line, n + 1);
}

static int on_event(void *user, const veil_event *ev)
{
    fuzz_endpoint *e = user;
    e->events++;
    if (ev->type == VEIL_EV_MESSAGE) {
        CHECK(ev->len <= VEIL_MAX_MESSAGE);
        CHECK(ev->len == 0 || ev->data != NULL);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < ev->len; i++) /* the payload must be readable memory */
            sink ^= ev->data[i];
        (void)sink;
    }
    return 0;
}

static int endpoint_random(void *user, uint8_t *out, size_t n)
{
    return fuzz_rng_cb(&((fuzz_endpoint *)user)->rng, out, n);
}

void fuzz_endpoint_new(fuzz_endpoint *e, const veil_config *cfg, const char *rng_label)
{
    memset(e, 0, sizeof(*e));
    fuzz_rng_init(&e->rng, rng_label);
    veil_buf_init(&e->out);
    veil_callbacks cb = {.random = endpoint_random,
                         .keylog = on_keylog,
                         .on_event = on_event,
                         .lookup_user = cfg->role == VEIL_ROLE_SERVER ? lookup_user : NULL,
                         .lookup_psk = cfg->role == VEIL_ROLE_SERVER ? lookup_psk : NULL,
                         .user = e};
    CHECK(veil_conn_new(cfg, &cb, 0, &e->conn) == 0);
}

void fuzz_endpoint_free(fuzz_endpoint *e)
{
    veil_conn_free(e->conn);
    veil_buf_free(&e->out);
    e->conn = NULL;
}

void fuzz_check_records(const uint8_t *p, size_t len)
{
    while (len > 0) {
        veil_header h;
        size_t content_len;
        CHECK(veil_header_decode(p, len, &h) == 0);
        CHECK(VEIL_HEADER_LEN + (size_t)h.length <= len);
        if (!(h.flags & VEIL_FLAG_ENCRYPTED))
            CHECK(veil_record_check_crc(&h, p, &content_len) == 0);
        p += VEIL_HEADER_LEN + h.length;
        len -= VEIL_HEADER_LEN + h.length;
    }
}

/* The last record of p[0..len) (all well-formed). */
static const uint8_t *last_record(const uint8_t *p, size_t len, veil_header *h)
{
    const uint8_t *last = NULL;
    while (len > 0) {
        CHECK(veil_header_decode(p, len, h) == 0);
        last = p;
        p += VEIL_HEADER_LEN + h->length;
        len -= VEIL_HEADER_LEN + h->length;
    }
    return last; /* *h is its header */
}

void fuzz_chunks_parse(const uint8_t *data, size_t size, fuzz_chunks *ch)
{
    memset(ch, 0, sizeof(*ch));
    if (size == 0)
        return;
    size_t n = data[0] & 7;
    data++;
    size--;
    if (n > size)
        n = size;
    ch->sizes = data;
    ch->n_sizes = n;
    ch->stream = data + n;
    ch->len = size - n;
}

/* Checks what one call (returning ret) wrote to e->out, then drops it. */
static void check_step(fuzz_endpoint *e, int ret)
{
    /* The alert a failing call must have sent (-1: none). */
    int alert = ret < 0 && ret >= VEIL_ERR_ALERT_MIN                   ? -ret
                : ret == VEIL_ERR_CRYPTO || ret == VEIL_ERR_RNG ? VEIL_ALERT_INTERNAL_ERROR
                                                                : -1;
    if (e->out.len == 0) { /* nothing written (base may still be NULL) */
        CHECK(alert < 0);
        return;
    }
    fuzz_check_records(e->out.base, e->out.len);
    if (alert >= 0) {
        /* A protocol error goes out as a fatal alert, the last record written. */
        veil_header h;
        const uint8_t *rec = last_record(e->out.base, e->out.len, &h);
        CHECK(rec != NULL);
        CHECK(h.type == VEIL_REC_ALERT);
        if (!(h.flags & VEIL_FLAG_ENCRYPTED)) {
            CHECK(h.length == 2 + 4);
            CHECK(rec[VEIL_HEADER_LEN] == VEIL_ALERT_LEVEL_FATAL);
            CHECK(rec[VEIL_HEADER_LEN + 1] == alert);
        }
    }
    e->out.len = 0;
}

void fuzz_drive(fuzz_endpoint *e, const fuzz_chunks *ch)
{
    size_t off = 0, k = 0;
    bool dead = false;
    while (off < ch->len) {
        size_t n = ch->n_sizes == 0 ? ch->len - off : (size_t)ch->sizes[k++ % ch->n_sizes] + 1;
        if (n > ch->len - off)
            n = ch->len - off;
        int ret = veil_conn_feed(e->conn, ch->stream + off, n, 0, &e->out);
        off += n;
        if (dead) {
            CHECK(ret == VEIL_ERR_CLOSED);
            CHECK(e->out.len == 0);
            continue;
        }
        if (ret == VEIL_ERR_NOMEM)
            return;
        check_step(e, ret);
        if (ret != 0) {
            dead = true;
            CHECK(veil_conn_is_closed(e->conn));
            CHECK(veil_conn_send(e->conn, VEIL_MSG_TEXT, 0, NULL, 0, &e->out) == VEIL_ERR_CLOSED);
            CHECK(e->out.len == 0);
        }
    }
    if (dead)
        return;
    if (veil_conn_handshake_done(e->conn)) {
        static const uint8_t text[300] = {'x'};
        static const size_t lens[] = {0, 10, sizeof(text)};
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            CHECK(veil_conn_send(e->conn, VEIL_MSG_TEXT, 1, text, lens[i], &e->out) == 0);
            check_step(e, 0);
        }
        CHECK(veil_conn_close(e->conn, &e->out) == 0);
        check_step(e, 0);
        CHECK(veil_conn_send(e->conn, VEIL_MSG_TEXT, 1, text, 1, &e->out) == VEIL_ERR_CLOSED);
    } else if (!veil_conn_is_closed(e->conn)) {
        /* Still in the handshake: the deadline passes. */
        CHECK(veil_conn_next_timeout(e->conn) != UINT64_MAX);
        int ret = veil_conn_handle_timeout(e->conn, UINT64_MAX - 1, &e->out);
        CHECK(ret == VEIL_PERR(VEIL_ALERT_TIMEOUT));
        check_step(e, ret);
        CHECK(veil_conn_is_closed(e->conn));
    }
}

/* ------------------------------------------------------------------------ */

static int transfer(fuzz_endpoint *from, fuzz_endpoint *to, int dir, fuzz_session *s)
{
    if (from->out.len == 0)
        return 0;
    if (s->n_seg == FUZZ_MAX_SEGMENTS)
        return -1;
    if (veil_buf_append(dir == 0 ? &s->c2s : &s->s2c, from->out.base, from->out.len) != 0)
        return -1;
    s->seg_dir[s->n_seg] = dir;
    s->seg_len[s->n_seg++] = from->out.len;
    int ret = veil_conn_feed(to->conn, from->out.base, from->out.len, 0, &to->out);
    from->out.len = 0;
    return ret;
}

static int pump(fuzz_endpoint *c, fuzz_endpoint *srv, fuzz_session *s)
{
    for (int round = 0; round < 20 && (c->out.len > 0 || srv->out.len > 0); round++)
        if (transfer(c, srv, 0, s) != 0 || transfer(srv, c, 1, s) != 0)
            return -1;
    return 0;
}

int fuzz_run_session(unsigned selector, fuzz_session *s)
{
    fuzz_endpoint c, srv;
    veil_config ccfg, scfg;
    int ret = -1;

    memset(s, 0, sizeof(*s));
    veil_buf_init(&s->c2s);
    veil_buf_init(&s->s2c);
    fuzz_client_config(&ccfg, selector);
    fuzz_server_config(&scfg, fuzz_client_peer(selector));
    fuzz_endpoint_new(&c, &ccfg, fuzz_client_label(selector));
    fuzz_endpoint_new(&srv, &scfg, "server");

    if (veil_conn_start(c.conn, &c.out) != 0 || pump(&c, &srv, s) != 0 || !veil_conn_handshake_done(c.conn) ||
        !veil_conn_handshake_done(srv.conn))
        goto Exit;
    static const char *const msgs[] = {"first", "second", "third"};
    for (size_t i = 0; i < 3; i++)
        if (veil_conn_send(c.conn, VEIL_MSG_TEXT, 1700000000000u + i, (const uint8_t *)msgs[i], strlen(msgs[i]),
                           &c.out) != 0)
            goto Exit;
    if (pump(&c, &srv, s) != 0 ||
        veil_conn_send(srv.conn, VEIL_MSG_ACK, 1700000000100u, (const uint8_t *)"ok", 2, &srv.out) != 0 ||
        pump(&c, &srv, s) != 0 || veil_conn_close(c.conn, &c.out) != 0 || pump(&c, &srv, s) != 0 ||
        veil_conn_close(srv.conn, &srv.out) != 0 || pump(&c, &srv, s) != 0)
        goto Exit;
    if (!veil_conn_is_closed(c.conn) || !veil_conn_is_closed(srv.conn))
        goto Exit;
    s->n_keylog = c.n_keylog;
    memcpy(s->keylog, c.keylog, sizeof(s->keylog));
    ret = 0;
Exit:
    fuzz_endpoint_free(&c);
    fuzz_endpoint_free(&srv);
    return ret;
}

void fuzz_session_free(fuzz_session *s)
{
    veil_buf_free(&s->c2s);
    veil_buf_free(&s->s2c);
    veil_memzero(s->keylog, sizeof(s->keylog));
}
