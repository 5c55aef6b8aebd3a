/*
 * fuzz_common.h - shared set-up of the libFuzzer targets and of the corpus
 * generator: a deterministic RNG, the fixed server identity, the endpoint
 * configurations, the layout of a connection target's input, and a whole
 * in-memory session whose bytes seed the corpora.
 *
 * The targets and veil-fuzz-corpus use the same configurations and RNG
 * streams, so a recorded client stream fed to a fresh fuzz_server (or a server
 * stream fed to fuzz_client) replays a complete, valid session: the fuzzer
 * starts from connections that reach the encrypted state.  Exception: with
 * the RSA identity, RSA-PSS salts and RSA-OAEP seeds come from OpenSSL's
 * generator (PROTOCOL.md §4.4), so those replays stop at a Finished check.
 */
#ifndef VEIL_FUZZ_COMMON_H
#define VEIL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "veil/veil.h"

/* libFuzzer entry points (declared for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Deterministic RNG: SHA-256(label zero-padded to 16 bytes || u32 counter) blocks. */
typedef struct fuzz_rng {
    char label[16];
    uint32_t counter;
    uint8_t block[32];
    size_t used;
} fuzz_rng;

void fuzz_rng_init(fuzz_rng *r, const char *label);
int fuzz_rng_cb(void *user, uint8_t *out, size_t n);

/* The server identities every target and seed uses (made once, kept):
 * Ed25519 from a fixed seed, and a fixed 2048-bit RSA test key. */
const veil_identity *fuzz_identity(void);
const veil_identity *fuzz_rsa_identity(void);

/*
 * Client configurations, chosen by a selector byte (mod FUZZ_N_CLIENT_CONFIGS),
 * each with the server configuration it is meant to meet (fuzz_client_peer):
 *   0 encrypted, all suites     1 GCM only      2 ChaCha20-Poly1305 only
 *   3 CBC only                  4 plaintext     5 FFDHE-2048
 *   6 user "alice"              7 PSK "fuzz-psk"  8 signing client (ClientVerify)
 *   9 RSA key transport         10 service "chat" against the RSA identity (RSA-PSS)
 * Both sides rekey every FUZZ_REKEY_RECORDS records so that key_update
 * records appear in short sessions.
 */
#define FUZZ_N_CLIENT_CONFIGS 11
#define FUZZ_REKEY_RECORDS 2
void fuzz_client_config(veil_config *cfg, unsigned selector);
/* "client<selector mod FUZZ_N_CLIENT_CONFIGS>", in a static buffer. */
const char *fuzz_client_label(unsigned selector);
unsigned fuzz_client_peer(unsigned selector);
/* Does the configuration encrypt (and so write keylog lines)? */
int fuzz_client_encrypts(unsigned selector);

/*
 * Server configurations (mod FUZZ_N_SERVER_CONFIGS): both modes, all suites
 * and groups, services "msg,chat", users and PSKs known through callbacks;
 *   0 Ed25519 identity          1 RSA identity (RSA transport, RSA-PSS)
 *   2 requires a user           3 requires a PSK        4 requires a signing client
 */
#define FUZZ_N_SERVER_CONFIGS 5
void fuzz_server_config(veil_config *cfg, unsigned selector);

/* A connection with the fixed RNG stream of its role: "server", or "client<selector>"
 * (each client configuration has its own stream, hence its own client random). */
typedef struct fuzz_endpoint {
    veil_conn *conn;
    veil_buf out;
    fuzz_rng rng;
    unsigned events;
    char keylog[2][160];
    int n_keylog;
} fuzz_endpoint;

/* Aborts if the connection cannot be made (never happens with these configurations). */
void fuzz_endpoint_new(fuzz_endpoint *e, const veil_config *cfg, const char *rng_label);
void fuzz_endpoint_free(fuzz_endpoint *e);

/*
 * Input layout of the connection targets (after any selector byte):
 *   byte 0        n = byte & 7, the number of chunk-size bytes that follow
 *   n bytes       chunk sizes: a byte b means b + 1 bytes, used in turn
 *   the rest      the byte stream, fed to veil_conn_feed in those chunks
 * n = 0 feeds the whole stream in one call.
 */
typedef struct fuzz_chunks {
    const uint8_t *sizes;
    size_t n_sizes;
    const uint8_t *stream;
    size_t len;
} fuzz_chunks;

void fuzz_chunks_parse(const uint8_t *data, size_t size, fuzz_chunks *ch);

/*
 * Feeds the stream to e in chunks and checks the library's contract on the
 * way: every byte it writes to e->out is a sequence of well-formed records,
 * and after a fatal error every later feed returns VEIL_ERR_CLOSED.  Then, if
 * the connection is up, sends messages and closes, checking the output again.
 * Aborts on any violation.
 */
void fuzz_drive(fuzz_endpoint *e, const fuzz_chunks *ch);

/* Aborts unless buf holds only complete, well-formed records. */
void fuzz_check_records(const uint8_t *p, size_t len);

/* ------------------------------------------------------------------------ */
/* A whole session, recorded (corpus generator; keylog of fuzz_observer). */

#define FUZZ_MAX_SEGMENTS 64

typedef struct fuzz_session {
    veil_buf c2s, s2c; /* each direction's bytes, in order */
    int n_seg;         /* the order they crossed the wire in */
    int seg_dir[FUZZ_MAX_SEGMENTS];
    size_t seg_len[FUZZ_MAX_SEGMENTS];
    char keylog[2][160];
    int n_keylog;
} fuzz_session;

/*
 * Handshake, three client messages (a key_update among them), one server
 * message, close_notify both ways, with client configuration `selector`.
 * Returns 0, or -1 if the session did not complete (a libproto bug).
 */
int fuzz_run_session(unsigned selector, fuzz_session *s);
void fuzz_session_free(fuzz_session *s);

#endif
