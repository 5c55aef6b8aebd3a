/*
 * harness.h - in-memory client/server sessions for the unit tests: a
 * deterministic RNG, endpoints that record events, and a record-by-record
 * pump with a hook to tamper with, drop, duplicate or reorder records in flight.
 */
#ifndef VEIL_TEST_HARNESS_H
#define VEIL_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "veil/veil.h"

/* Deterministic RNG: SHA-256(label || counter) blocks, for reproducible sessions. */
typedef struct test_rng {
    char label[16];
    uint32_t counter;
    uint8_t block[32];
    size_t used;
    bool fail;
} test_rng;

void test_rng_init(test_rng *r, const char *label);
int test_rng_cb(void *user, uint8_t *out, size_t n);

/* Decodes exactly 2n hex digits of h into out; fails the test otherwise. */
void test_unhex(const char *h, uint8_t *out, size_t n);

#define TEST_MAX_MSGS 64

typedef struct endpoint {
    veil_conn *conn;
    veil_buf out;
    test_rng rng;
    char keylog[8][160];
    int n_keylog;
    bool done;
    bool peer_closed;
    int key_updates;
    int n_msgs;
    uint8_t kinds[TEST_MAX_MSGS];
    uint64_t stamps[TEST_MAX_MSGS];
    char msgs[TEST_MAX_MSGS][256];
    /* identity check (client) */
    bool pin;
    uint8_t pinned[VEIL_FINGERPRINT_LEN];
    int err; /* first error from feed */
    /* server: the users it knows (lookup_user) and the PSKs (lookup_psk) */
    const char *user_names[4];
    veil_user_verifier verifiers[4];
    int n_users;
    const char *psk_ids[4];
    uint8_t psks[4][VEIL_PSK_LEN];
    int n_psks;
} endpoint;

/* Client credentials and server policy for endpoints created after they are set. */
extern const char *test_user, *test_password;
extern const uint8_t *test_psk;
extern const char *test_psk_identity;
extern int test_require_user, test_require_psk;
extern const veil_identity *test_client_identity;
extern int test_require_client_identity;

/* Rekey threshold applied to endpoints created after it is set (0 = default). */
extern uint64_t test_rekey_records;

/* Fixed server identity made from a fixed seed. */
veil_identity *test_identity(const char *label);

/* Groups offered/accepted and service for endpoints created after they are set
 * (NULL = defaults). */
extern const uint16_t *test_groups;
extern size_t test_n_groups;
extern const char *test_service;

/* Client endpoint; suite 0 = offer all. */
void endpoint_client(endpoint *e, uint8_t mode, uint16_t suite, const char *rng_label);
void endpoint_server(endpoint *e, uint8_t modes, const veil_identity *id, const char *rng_label);
void endpoint_free(endpoint *e);

/* Called for every record in flight; may modify it (len may change up to cap),
 * return 0 deliver, 1 drop, 2 deliver twice. dir 0 = client->server. */
typedef int (*tamper_fn)(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap);

/* Moves records both ways until nothing is left or an error. Returns the number of rounds. */
int pump(endpoint *c, endpoint *s, tamper_fn fn, void *ctx);
/* Full handshake with no tampering; asserts success. */
void handshake_ok(endpoint *c, endpoint *s);

/* Records seen in flight, in order, for tests that replay or inspect them. */
#define TEST_WIRE_MAX 64
typedef struct test_wire {
    uint8_t rec[TEST_WIRE_MAX][VEIL_MAX_RECORD];
    size_t len[TEST_WIRE_MAX];
    int dir[TEST_WIRE_MAX];
    int n;
} test_wire;

/* A tamper_fn that copies every record into the test_wire given as ctx. */
int test_capture(void *ctx, int dir, int index, uint8_t *rec, size_t *len, size_t cap);

/* Recomputes the CRC-32C of an unencrypted record after a test changed it. */
void fix_crc(uint8_t *rec, size_t len);

#endif
