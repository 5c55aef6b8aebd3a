/*
 * veil-profile - libproto in memory, for profilers: client and server talk
 * through two buffers, no sockets, no threads, so `valgrind --tool=callgrind`
 * counts the instructions of each side separately (see --help).
 *
 *   veil-profile handshake N [SUITE]   N full handshakes (X25519, Ed25519 identity)
 *   veil-profile seal SUITE MBYTES [SIZE]  client seals MBYTES of records (16 KiB, or SIZE-byte messages)
 *   veil-profile open SUITE MBYTES [SIZE]  server opens MBYTES of such records
 *   veil-profile memory N [SUITE]      heap per established server connection
 *   veil-profile floor N               the server's public-key operations alone
 *
 * The work of each side runs inside functions named srv_* (server) and
 * cli_* (client), so callgrind's --toggle-collect picks one side.  The
 * floor_* functions are the server's public-key work done with OpenSSL
 * directly, as `openssl speed` does (one X25519 key generation, one X25519
 * derivation, one Ed25519 signature): `handshake` runs them too and prints
 * the server's cost as a multiple of them, measured in the same run.
 *
 * The random callback is a fast, NON-CRYPTOGRAPHIC generator (splitmix64):
 * fine for profiling, never for real keys.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "veil/veil.h"

#define RECORD_MESSAGE (VEIL_MAX_CONTENT - VEIL_MSG_HEADER_LEN) /* fills one record */
#define MAX_HANDSHAKES 1000000UL
#define MAX_MBYTES 100000UL
#define MAX_MEMORY_CONNS 100000UL

#define NOINLINE __attribute__((noinline))

/* ---- a fast non-cryptographic RNG (profiling only) ---- */

static uint64_t g_rng_state = 0x9E3779B97F4A7C15u;

static int fast_rng(void *user, uint8_t *out, size_t len)
{
    (void)user;
    while (len > 0) {
        uint64_t z = (g_rng_state += 0x9E3779B97F4A7C15u);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        z ^= z >> 31;
        size_t n = len < 8 ? len : 8;
        memcpy(out, &z, n);
        out += n;
        len -= n;
    }
    return 0;
}

/* ---- endpoints ---- */

struct side {
    veil_conn *conn;
    unsigned long msgs;
    int done;
};

static int on_event(void *user, const veil_event *ev)
{
    struct side *s = user;
    if (ev->type == VEIL_EV_HANDSHAKE_DONE)
        s->done = 1;
    else if (ev->type == VEIL_EV_MESSAGE)
        s->msgs++;
    return 0;
}

static veil_identity *g_id;
static uint16_t g_suite = VEIL_SUITE_AES_256_GCM_SHA256;
static uint8_t g_mode = VEIL_MODE_ENCRYPTED;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "veil-profile: %s: %s\n", what, veil_strerror(err));
    exit(1);
}

static void callbacks(struct side *s, veil_callbacks *cb)
{
    memset(cb, 0, sizeof(*cb));
    cb->random = fast_rng;
    cb->on_event = on_event;
    cb->user = s;
}

NOINLINE static void srv_new(struct side *s)
{
    veil_config cfg;
    veil_callbacks cb;
    veil_config_init(&cfg, VEIL_ROLE_SERVER);
    cfg.identity = g_id;
    cfg.modes = VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT;
    callbacks(s, &cb);
    memset(s, 0, sizeof(*s));
    int r = veil_conn_new(&cfg, &cb, 0, &s->conn);
    if (r != 0)
        die("server veil_conn_new", r);
}

NOINLINE static void cli_new(struct side *s)
{
    veil_config cfg;
    veil_callbacks cb;
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.modes = g_mode;
    cfg.suites = &g_suite;
    cfg.n_suites = 1;
    callbacks(s, &cb);
    memset(s, 0, sizeof(*s));
    int r = veil_conn_new(&cfg, &cb, 0, &s->conn);
    if (r != 0)
        die("client veil_conn_new", r);
}

NOINLINE static void cli_start(struct side *s, veil_buf *out)
{
    int r = veil_conn_start(s->conn, out);
    if (r != 0)
        die("client veil_conn_start", r);
}

/* Feeds all of in to one side and empties in. */
NOINLINE static void srv_feed(struct side *s, veil_buf *in, veil_buf *out)
{
    int r = veil_conn_feed(s->conn, in->base, in->len, 0, out);
    if (r != 0)
        die("server veil_conn_feed", r);
    in->len = 0;
}

NOINLINE static void cli_feed(struct side *s, veil_buf *in, veil_buf *out)
{
    int r = veil_conn_feed(s->conn, in->base, in->len, 0, out);
    if (r != 0)
        die("client veil_conn_feed", r);
    in->len = 0;
}

NOINLINE static void srv_free(struct side *s) { veil_conn_free(s->conn); }
NOINLINE static void cli_free(struct side *s) { veil_conn_free(s->conn); }

static double g_srv_cpu, g_cli_cpu;

/* One handshake between fresh endpoints; the CPU time of each side is summed. */
static void handshake(struct side *cli, struct side *srv, veil_buf *c2s, veil_buf *s2c)
{
    double t0 = cpu_now();
    cli_new(cli);
    cli_start(cli, c2s);
    double t1 = cpu_now();
    srv_new(srv);
    double t2 = cpu_now();
    g_cli_cpu += t1 - t0;
    g_srv_cpu += t2 - t1;
    for (int round = 0; round < 8 && (c2s->len > 0 || s2c->len > 0); round++) {
        t0 = cpu_now();
        if (c2s->len > 0)
            srv_feed(srv, c2s, s2c);
        t1 = cpu_now();
        if (s2c->len > 0)
            cli_feed(cli, s2c, c2s);
        t2 = cpu_now();
        g_srv_cpu += t1 - t0;
        g_cli_cpu += t2 - t1;
    }
    if (!cli->done || !srv->done || c2s->len != 0 || s2c->len != 0) {
        fprintf(stderr, "veil-profile: the handshake did not complete\n");
        exit(1);
    }
}

/* ---- the floor: the server's public-key operations through OpenSSL alone ---- */

struct floor_keys {
    EVP_PKEY *peer;         /* a client's X25519 public key */
    EVP_PKEY_CTX *derive;   /* X25519 derivation with the peer set, as in openssl speed */
    EVP_MD_CTX *sign;       /* Ed25519 signing context, as in openssl speed */
    uint8_t x_priv[32];
};

NOINLINE static void floor_keygen(struct floor_keys *f)
{
    uint8_t pub[32];
    size_t len = sizeof(pub);
    fast_rng(NULL, f->x_priv, sizeof(f->x_priv));
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, f->x_priv, sizeof(f->x_priv));
    if (k == NULL || EVP_PKEY_get_raw_public_key(k, pub, &len) != 1) {
        fprintf(stderr, "veil-profile: X25519 key generation failed\n");
        exit(1);
    }
    EVP_PKEY_free(k);
}

NOINLINE static void floor_derive(struct floor_keys *f)
{
    uint8_t shared[32];
    size_t len = sizeof(shared);
    if (EVP_PKEY_derive(f->derive, shared, &len) != 1) {
        fprintf(stderr, "veil-profile: X25519 derivation failed\n");
        exit(1);
    }
}

NOINLINE static void floor_sign(struct floor_keys *f)
{
    uint8_t msg[64 + 25 + 32] = {0}, sig[64];
    size_t len = sizeof(sig);
    if (EVP_DigestSign(f->sign, sig, &len, msg, sizeof(msg)) != 1) {
        fprintf(stderr, "veil-profile: Ed25519 signature failed\n");
        exit(1);
    }
}

static void floor_setup(struct floor_keys *f)
{
    uint8_t seed[32];
    memset(f, 0, sizeof(*f));
    fast_rng(NULL, seed, sizeof(seed));
    EVP_PKEY *mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, seed, sizeof(seed));
    fast_rng(NULL, seed, sizeof(seed));
    f->peer = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, seed, sizeof(seed));
    fast_rng(NULL, seed, sizeof(seed));
    EVP_PKEY *ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    f->derive = mine != NULL ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
    f->sign = EVP_MD_CTX_new();
    if (f->derive == NULL || f->peer == NULL || ed == NULL || f->sign == NULL ||
        EVP_PKEY_derive_init(f->derive) != 1 || EVP_PKEY_derive_set_peer(f->derive, f->peer) != 1 ||
        EVP_DigestSignInit(f->sign, NULL, NULL, NULL, ed) != 1) {
        fprintf(stderr, "veil-profile: OpenSSL setup failed\n");
        exit(1);
    }
    EVP_PKEY_free(mine);
    EVP_PKEY_free(ed);
}

static void floor_free(struct floor_keys *f)
{
    EVP_PKEY_CTX_free(f->derive);
    EVP_PKEY_free(f->peer);
    EVP_MD_CTX_free(f->sign);
}

/* CPU seconds of n rounds of the three operations. */
static double run_floor(unsigned long n, int print)
{
    struct floor_keys f;
    double t[3] = {0, 0, 0};
    floor_setup(&f);
    for (unsigned long i = 0; i < n; i++) {
        double t0 = cpu_now();
        floor_keygen(&f);
        double t1 = cpu_now();
        floor_derive(&f);
        double t2 = cpu_now();
        floor_sign(&f);
        double t3 = cpu_now();
        t[0] += t1 - t0;
        t[1] += t2 - t1;
        t[2] += t3 - t2;
    }
    floor_free(&f);
    double sum = t[0] + t[1] + t[2];
    if (print)
        printf("floor %lu: X25519 keygen %.1f us + derive %.1f us + Ed25519 sign %.1f us = %.1f us\n", n,
               t[0] * 1e6 / (double)n, t[1] * 1e6 / (double)n, t[2] * 1e6 / (double)n, sum * 1e6 / (double)n);
    return sum;
}

static int run_handshakes(unsigned long n)
{
    struct side cli, srv;
    veil_buf c2s, s2c;
    veil_buf_init(&c2s);
    veil_buf_init(&s2c);
    for (unsigned long i = 0; i < n; i++) {
        handshake(&cli, &srv, &c2s, &s2c);
        double t0 = cpu_now();
        cli_free(&cli);
        double t1 = cpu_now();
        srv_free(&srv);
        g_cli_cpu += t1 - t0;
        g_srv_cpu += cpu_now() - t1;
    }
    printf("handshakes %lu suite %s: server %.1f us, client %.1f us of CPU each\n", n, veil_suite_name(g_suite),
           g_srv_cpu * 1e6 / (double)n, g_cli_cpu * 1e6 / (double)n);
    double floor = run_floor(n, 1);
    printf("server / floor = %.2f\n", g_srv_cpu / floor);
    veil_buf_free(&c2s);
    veil_buf_free(&s2c);
    return 0;
}

static uint8_t g_data[RECORD_MESSAGE];
static size_t g_msg_len = RECORD_MESSAGE; /* message bytes per record */

NOINLINE static void cli_seal(struct side *s, veil_buf *out)
{
    int r = veil_conn_send(s->conn, VEIL_MSG_TEXT, 0, g_data, g_msg_len, out);
    if (r != 0)
        die("veil_conn_send", r);
}

/* seal: the client's send path alone; open: the server's receive path alone
 * (the client seals each record first, outside the timed part). */
static int run_bulk(int open, unsigned long mbytes)
{
    struct side cli, srv;
    veil_buf c2s, s2c;
    unsigned long records = mbytes * 1024 * 1024 / (g_msg_len + VEIL_MSG_HEADER_LEN);
    double spent = 0;
    veil_buf_init(&c2s);
    veil_buf_init(&s2c);
    fast_rng(NULL, g_data, sizeof(g_data));
    handshake(&cli, &srv, &c2s, &s2c);
    for (unsigned long i = 0; i < records; i++) {
        double t0 = cpu_now();
        cli_seal(&cli, &c2s);
        double t1 = cpu_now();
        if (open)
            srv_feed(&srv, &c2s, &s2c);
        double t2 = cpu_now();
        c2s.len = 0;
        spent += open ? t2 - t1 : t1 - t0;
    }
    if (open && srv.msgs != records) {
        fprintf(stderr, "veil-profile: %lu of %lu records opened\n", srv.msgs, records);
        return 1;
    }
    double content = (double)(g_msg_len + VEIL_MSG_HEADER_LEN);
    printf("%s %s: %lu records of %.0f bytes, %.1f MB/s (%.2f us per record)\n", open ? "open" : "seal",
           g_mode == VEIL_MODE_PLAINTEXT ? "plaintext" : veil_suite_name(g_suite), records, content,
           spent > 0 ? (double)records * content / spent / 1e6 : 0.0,
           records > 0 ? spent * 1e6 / (double)records : 0.0);
    cli_free(&cli);
    srv_free(&srv);
    veil_buf_free(&c2s);
    veil_buf_free(&s2c);
    return 0;
}

/* Heap (malloc's in-use bytes, OpenSSL's allocations included) held per
 * server connection after the handshake plus one message and its ACK. */
static int run_memory(unsigned long n)
{
    struct side *srv = calloc(n + 1, sizeof(*srv)), cli;
    veil_buf c2s, s2c;
    char ack[32];
    if (srv == NULL)
        return 1;
    veil_buf_init(&c2s);
    veil_buf_init(&s2c);
    fast_rng(NULL, g_data, sizeof(g_data));
    /* One warm-up connection: OpenSSL's one-time allocations are not per connection. */
    for (unsigned long i = 0; i <= n; i++) {
        if (i == 1) {
            veil_buf_free(&c2s);
            veil_buf_free(&s2c);
        }
        size_t before = mallinfo2().uordblks;
        handshake(&cli, &srv[i], &c2s, &s2c);
        if (veil_conn_send(cli.conn, VEIL_MSG_TEXT, 0, g_data, 100, &c2s) != 0)
            return 1;
        srv_feed(&srv[i], &c2s, &s2c);
        int len = snprintf(ack, sizeof(ack), "received %d bytes", 100);
        if (veil_conn_send(srv[i].conn, VEIL_MSG_ACK, 0, (const uint8_t *)ack, (size_t)len, &s2c) != 0)
            return 1;
        cli_feed(&cli, &s2c, &c2s);
        cli_free(&cli);
        veil_buf_free(&c2s);
        veil_buf_free(&s2c);
        if (i == 0)
            printf("first connection: %zu bytes (includes one-time allocations)\n", mallinfo2().uordblks - before);
    }
    size_t base = mallinfo2().uordblks;
    for (unsigned long i = 1; i <= n; i++)
        srv_free(&srv[i]);
    size_t after = mallinfo2().uordblks;
    printf("memory %s: %lu server connections hold %zu bytes of heap, %zu bytes each\n",
           g_mode == VEIL_MODE_PLAINTEXT ? "plaintext" : veil_suite_name(g_suite), n, base - after,
           n > 0 ? (base - after) / n : 0);
    srv_free(&srv[0]);
    free(srv);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: veil-profile handshake N [SUITE]\n"
            "       veil-profile seal|open SUITE MBYTES [SIZE]\n"
            "       veil-profile memory N [SUITE]\n"
            "       veil-profile floor N\n"
            "\n"
            "Runs a Veil client and server against each other in memory (libproto's\n"
            "public API, no sockets) and prints the CPU time of each side:\n"
            "  handshake  N full handshakes (X25519 + Ed25519 identity), fresh connections each\n"
            "  seal       the client seals MBYTES of full 16 KiB records (veil_conn_send), or of\n"
            "             records carrying SIZE-byte messages (1..16375) to see per-record costs\n"
            "  open       the server opens MBYTES of such records (veil_conn_feed)\n"
            "  memory     heap bytes per server connection after a handshake, one message and its ACK\n"
            "  floor      N rounds of the server's public-key work done with OpenSSL directly (X25519\n"
            "             keygen + derive + Ed25519 sign, as openssl speed does); handshake runs it\n"
            "             too and prints the server's time as a multiple of it\n"
            "SUITE: AES_256_GCM_SHA256 (default), CHACHA20_POLY1305_SHA256,\n"
            "AES_256_CBC_HMAC_SHA256 (or their short aliases), or 'plaintext'.\n"
            "\n"
            "The random callback is splitmix64: fast and NOT cryptographically secure;\n"
            "for profiling only.\n"
            "\n"
            "Each side's work runs in functions named srv_* and cli_*; for example\n"
            "  valgrind --tool=callgrind --toggle-collect='srv_*' veil-profile handshake 20\n"
            "counts the server's instructions only (divide by N, and compare with N=1 to\n"
            "drop one-time costs); --toggle-collect='floor_*' counts the floor.\n");
}

static int parse_count(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_suite(const char *s)
{
    if (strcmp(s, "plaintext") == 0) {
        g_mode = VEIL_MODE_PLAINTEXT;
        return 0;
    }
    return veil_suite_from_name(s, &g_suite) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    unsigned long n, size;
    int ret;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (veil_identity_generate(fast_rng, NULL, &g_id) != 0) {
        fprintf(stderr, "veil-profile: cannot make an identity\n");
        return 1;
    }
    if (argc >= 3 && argc <= 4 && strcmp(argv[1], "handshake") == 0 &&
        parse_count(argv[2], MAX_HANDSHAKES, &n) == 0 && (argc == 3 || parse_suite(argv[3]) == 0))
        ret = run_handshakes(n);
    else if (argc >= 3 && argc <= 4 && strcmp(argv[1], "memory") == 0 &&
             parse_count(argv[2], MAX_MEMORY_CONNS, &n) == 0 && (argc == 3 || parse_suite(argv[3]) == 0))
        ret = run_memory(n);
    else if (argc == 3 && strcmp(argv[1], "floor") == 0 && parse_count(argv[2], MAX_HANDSHAKES, &n) == 0)
        ret = (run_floor(n, 1), 0);
    else if ((argc == 4 || argc == 5) && (strcmp(argv[1], "seal") == 0 || strcmp(argv[1], "open") == 0) &&
             parse_suite(argv[2]) == 0 && parse_count(argv[3], MAX_MBYTES, &n) == 0 &&
             (argc == 4 || parse_count(argv[4], RECORD_MESSAGE, &size) == 0)) {
        if (argc == 5)
            g_msg_len = size;
        ret = run_bulk(strcmp(argv[1], "open") == 0, n);
    }
    else {
        usage(stderr);
        ret = 2;
    }
    veil_identity_free(g_id);
    return ret;
}
