#include "harness.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "veil_internal.h"

void test_rng_init(test_rng *r, const char *label)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->used = sizeof(r->block);
}

int test_rng_cb(void *user, uint8_t *out, size_t n)
{
    test_rng *r = user;
    if (r->fail)
        return -1;
    while (n > 0) {
        if (r->used == sizeof(r->block)) {
            uint8_t in[20] = {0};
            memcpy(in, r->label, strlen(r->label));
            veil_put_u32(in + 16, r->counter++);
            veil_sha256(in, sizeof(in), r->block);
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

static int ep_random(void *user, uint8_t *out, size_t n) { return test_rng_cb(&((endpoint *)user)->rng, out, n); }

static void ep_keylog(void *user, const char *line)
{
    endpoint *e = user;
    if (e->n_keylog < 8)
        snprintf(e->keylog[e->n_keylog++], 160, "%s", line);
}

static int ep_event(void *user, const veil_event *ev)
{
    endpoint *e = user;
    switch (ev->type) {
    case VEIL_EV_HANDSHAKE_DONE:
        e->done = true;
        break;
    case VEIL_EV_MESSAGE:
        if (e->n_msgs < TEST_MAX_MSGS) {
            e->kinds[e->n_msgs] = ev->kind;
            e->stamps[e->n_msgs] = ev->timestamp_ms;
            snprintf(e->msgs[e->n_msgs], 256, "%.*s", (int)(ev->len < 255 ? ev->len : 255), (const char *)ev->data);
            e->n_msgs++;
        }
        break;
    case VEIL_EV_KEY_UPDATE:
        e->key_updates++;
        break;
    case VEIL_EV_PEER_CLOSED:
        e->peer_closed = true;
        break;
    }
    return 0;
}

static int ep_verify(void *user, const uint8_t fp[VEIL_FINGERPRINT_LEN], const uint8_t *spki, size_t len)
{
    endpoint *e = user;
    (void)spki;
    (void)len;
    return e->pin && memcmp(fp, e->pinned, VEIL_FINGERPRINT_LEN) != 0 ? -1 : 0;
}

static int ep_lookup_user(void *user, const char *name, veil_user_verifier *v)
{
    endpoint *e = user;
    for (int i = 0; i < e->n_users; i++)
        if (strcmp(e->user_names[i], name) == 0) {
            *v = e->verifiers[i];
            return 0;
        }
    return -1;
}

static int ep_lookup_psk(void *user, const char *id, uint8_t psk[VEIL_PSK_LEN])
{
    endpoint *e = user;
    for (int i = 0; i < e->n_psks; i++)
        if (strcmp(e->psk_ids[i], id) == 0) {
            memcpy(psk, e->psks[i], VEIL_PSK_LEN);
            return 0;
        }
    return -1;
}

static const uint8_t decoy_key[32] = {1, 2, 3};

static void ep_new(endpoint *e, const veil_config *cfg, const char *rng_label)
{
    veil_callbacks cb = {.random = ep_random,
                         .keylog = ep_keylog,
                         .on_event = ep_event,
                         .verify_identity = ep_verify,
                         .lookup_user = cfg->role == VEIL_ROLE_SERVER ? ep_lookup_user : NULL,
                         .lookup_psk = cfg->role == VEIL_ROLE_SERVER ? ep_lookup_psk : NULL,
                         .user = e};
    test_rng_init(&e->rng, rng_label);
    veil_buf_init(&e->out);
    assert_int_equal(veil_conn_new(cfg, &cb, 0, &e->conn), 0);
}

veil_identity *test_identity(const char *label)
{
    test_rng r;
    veil_identity *id = NULL;
    test_rng_init(&r, label);
    assert_int_equal(veil_identity_generate(test_rng_cb, &r, &id), 0);
    return id;
}

static uint16_t one_suite[1];
uint64_t test_rekey_records;
const char *test_user, *test_password;
const uint8_t *test_psk;
const char *test_psk_identity;
int test_require_user, test_require_psk;
const veil_identity *test_client_identity;
int test_require_client_identity;
const uint16_t *test_groups;
size_t test_n_groups;
const char *test_service;

void endpoint_client(endpoint *e, uint8_t mode, uint16_t suite, const char *rng_label)
{
    veil_config cfg;
    memset(e, 0, sizeof(*e));
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.modes = mode;
    cfg.user_name = test_user;
    cfg.password = test_password;
    cfg.password_len = test_password != NULL ? strlen(test_password) : 0;
    cfg.psk = test_psk;
    cfg.psk_identity = test_psk_identity;
    cfg.client_identity = test_client_identity;
    cfg.rekey_records = test_rekey_records;
    cfg.groups = test_groups;
    cfg.n_groups = test_n_groups;
    cfg.service = test_service;
    if (suite != 0) {
        one_suite[0] = suite;
        cfg.suites = one_suite;
        cfg.n_suites = 1;
    }
    ep_new(e, &cfg, rng_label);
}

void endpoint_server(endpoint *e, uint8_t modes, const veil_identity *id, const char *rng_label)
{
    veil_config cfg;
    memset(e, 0, sizeof(*e));
    veil_config_init(&cfg, VEIL_ROLE_SERVER);
    cfg.modes = modes;
    cfg.identity = id;
    cfg.decoy_key = decoy_key;
    cfg.require_user = test_require_user;
    cfg.require_psk = test_require_psk;
    cfg.require_client_identity = test_require_client_identity;
    cfg.rekey_records = test_rekey_records;
    cfg.groups = test_groups;
    cfg.n_groups = test_n_groups;
    cfg.service = test_service;
    ep_new(e, &cfg, rng_label);
}

void endpoint_free(endpoint *e)
{
    veil_conn_free(e->conn);
    veil_buf_free(&e->out);
    e->conn = NULL;
}

void fix_crc(uint8_t *rec, size_t len)
{
    uint32_t crc = veil_crc32c(0, rec, len - 4);
    veil_put_u32(rec + len - 4, crc);
}

/* Delivers the records queued in from->out to to, record by record. */
static void deliver(endpoint *from, endpoint *to, int dir, int *index, tamper_fn fn, void *ctx)
{
    veil_buf q = from->out;
    veil_buf_init(&from->out);
    size_t off = 0;
    while (off < q.len) {
        veil_header h;
        uint8_t rec[VEIL_MAX_RECORD + 64];
        size_t n = q.len - off;
        if (veil_header_decode(q.base + off, n, &h) == 0 && VEIL_HEADER_LEN + (size_t)h.length <= n)
            n = VEIL_HEADER_LEN + h.length;
        if (n > sizeof(rec))
            n = sizeof(rec);
        memcpy(rec, q.base + off, n);
        off += n;
        int action = fn != NULL ? fn(ctx, dir, (*index)++, rec, &n, sizeof(rec)) : 0;
        for (int k = 0; k < (action == 2 ? 2 : action == 1 ? 0 : 1); k++) {
            int ret = veil_conn_feed(to->conn, rec, n, 0, &to->out);
            if (ret != 0 && to->err == 0)
                to->err = ret;
        }
    }
    veil_buf_free(&q);
}

int pump(endpoint *c, endpoint *s, tamper_fn fn, void *ctx)
{
    int rounds = 0, ci = 0, si = 0;
    while ((c->out.len > 0 || s->out.len > 0) && rounds < 100) {
        deliver(c, s, 0, &ci, fn, ctx);
        deliver(s, c, 1, &si, fn, ctx);
        rounds++;
    }
    return rounds;
}

void handshake_ok(endpoint *c, endpoint *s)
{
    assert_int_equal(veil_conn_start(c->conn, &c->out), 0);
    pump(c, s, NULL, NULL);
    assert_int_equal(c->err, 0);
    assert_int_equal(s->err, 0);
    assert_true(c->done);
    assert_true(s->done);
}

int test_capture(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap)
{
    test_wire *w = ctx;
    (void)index;
    (void)cap;
    assert_true(w->n < TEST_WIRE_MAX);
    memcpy(w->rec[w->n], rec, *len);
    w->len[w->n] = *len;
    w->dir[w->n] = dir;
    w->n++;
    return 0;
}

void test_unhex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(h), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}
