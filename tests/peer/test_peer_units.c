/*
 * test_peer_units.c - veil-peer's payload codec (apps/peer/peer_msg.c) and
 * contact directory (apps/peer/peer_dir.c), without sockets:
 *   - the worked example of docs/PEER.md, MESSAGE FORMAT, byte for byte;
 *   - every truncation of a payload, a bad type, sender and CRC;
 *   - the timestamp window at and beyond its edges, and hostile timestamps;
 *   - acknowledgements, their length limit and UTF-8 cut;
 *   - the directory: a valid file, then one error per field, the
 *     permission rule, case-insensitive duplicates, psk vs secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "peer.h"
#include "veilapp.h"

/* docs/PEER.md, MESSAGE FORMAT, "Example". */
static const uint8_t example[] = {
    0x01,                                           /* type */
    0xcc, 0x4e, 0xa6, 0x3e,                         /* crc32c */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* 1700000000000 */
    0x05, 'a',  'l',  'i',  'c',  'e',              /* sender */
    'h',  'e',  'l',  'l',  'o',  ' ',  'b',  'o',  'b'};

static void test_example_encode(void **st)
{
    (void)st;
    uint8_t out[64];
    size_t n = peer_msg_encode(1700000000000ull, "alice", (const uint8_t *)"hello bob", 9, 0, out,
                               sizeof out);
    assert_int_equal(n, sizeof example);
    assert_memory_equal(out, example, sizeof example);
    assert_int_equal(peer_msg_crc(PEER_MSG_TEXT, 1700000000000ull, "alice",
                                  (const uint8_t *)"hello bob", 9),
                     0xcc4ea63eu);
}

static void test_example_decode(void **st)
{
    (void)st;
    peer_msg m;
    assert_int_equal(peer_msg_decode(example, sizeof example, &m), PEER_DEC_OK);
    assert_int_equal(m.type, PEER_MSG_TEXT);
    assert_int_equal(m.crc, 0xcc4ea63eu);
    assert_int_equal(m.timestamp_ms, 1700000000000ull);
    assert_string_equal(m.sender, "alice");
    assert_int_equal(m.text_len, 9);
    assert_memory_equal(m.text, "hello bob", 9);
}

/* Every prefix shorter than the fixed fields plus the sender is truncated;
 * longer prefixes decode but fail the CRC (the text was cut). */
static void test_truncations(void **st)
{
    (void)st;
    peer_msg m;
    for (size_t n = 0; n < PEER_MSG_FIXED_LEN + 5; n++)
        assert_int_equal(peer_msg_decode(example, n, &m), PEER_DEC_SHORT);
    for (size_t n = PEER_MSG_FIXED_LEN + 5; n < sizeof example; n++)
        assert_int_equal(peer_msg_decode(example, n, &m), PEER_DEC_CRC);
}

static void test_bad_fields(void **st)
{
    (void)st;
    uint8_t b[sizeof example];
    peer_msg m;
    memcpy(b, example, sizeof b);
    b[0] = 0x02;
    assert_int_equal(peer_msg_decode(b, sizeof b, &m), PEER_DEC_TYPE);
    memcpy(b, example, sizeof b);
    b[13] = 0; /* empty sender */
    assert_int_equal(peer_msg_decode(b, sizeof b, &m), PEER_DEC_SENDER);
    memcpy(b, example, sizeof b);
    b[15] = ':'; /* "a:ice" */
    assert_int_equal(peer_msg_decode(b, sizeof b, &m), PEER_DEC_SENDER);
    memcpy(b, example, sizeof b);
    b[13] = 200; /* sender longer than the payload */
    assert_int_equal(peer_msg_decode(b, sizeof b, &m), PEER_DEC_SHORT);
    /* Each covered byte flipped: CRC mismatch, and the CRC itself too. */
    for (size_t i = 1; i < sizeof b; i++) {
        if (i == 13 || (i >= 14 && i < 19))
            continue; /* the sender's length and bytes fail earlier */
        memcpy(b, example, sizeof b);
        b[i] ^= 0x20;
        assert_int_equal(peer_msg_decode(b, sizeof b, &m), PEER_DEC_CRC);
    }
    /* The test hook flips the CRC. */
    uint8_t out[64];
    size_t n = peer_msg_encode(1700000000000ull, "alice", (const uint8_t *)"hello bob", 9, 1, out,
                               sizeof out);
    assert_int_equal(peer_msg_decode(out, n, &m), PEER_DEC_CRC);
    assert_int_equal(m.crc, 0xcc4ea63eu ^ 0xFFFFFFFFu);
    assert_int_equal(m.crc_computed, 0xcc4ea63eu);
}

static void test_encode_limits(void **st)
{
    (void)st;
    static uint8_t text[PEER_MAX_TEXT + 1];
    static uint8_t out[VEIL_MAX_MESSAGE + 64];
    memset(text, 'x', sizeof text);
    char name[PEER_MAX_NAME + 2];
    memset(name, 'n', sizeof name);
    name[PEER_MAX_NAME] = '\0';
    /* The longest name with the longest text fits a Veil message exactly. */
    size_t n = peer_msg_encode(1, name, text, PEER_MAX_TEXT, 0, out, sizeof out);
    assert_int_equal(n, VEIL_MAX_MESSAGE);
    peer_msg m;
    assert_int_equal(peer_msg_decode(out, n, &m), PEER_DEC_OK);
    assert_int_equal(m.text_len, PEER_MAX_TEXT);
    assert_int_equal(peer_msg_encode(1, name, text, PEER_MAX_TEXT + 1, 0, out, sizeof out), 0);
    name[PEER_MAX_NAME] = 'n';
    name[PEER_MAX_NAME + 1] = '\0';
    assert_int_equal(peer_msg_encode(1, name, text, 1, 0, out, sizeof out), 0);
    assert_int_equal(peer_msg_encode(1, "", text, 1, 0, out, sizeof out), 0);
    assert_int_equal(peer_msg_encode(1, "bob smith", text, 1, 0, out, sizeof out), 0);
    assert_int_equal(peer_msg_encode(1, "bob", text, 10, 0, out, 16), 0); /* cap too small */
    /* An empty text is encodable (veil-peer refuses to send one). */
    n = peer_msg_encode(7, "bob", text, 0, 0, out, sizeof out);
    assert_int_equal(n, PEER_MSG_FIXED_LEN + 3);
    assert_int_equal(peer_msg_decode(out, n, &m), PEER_DEC_OK);
    assert_int_equal(m.text_len, 0);
}

static void test_names(void **st)
{
    (void)st;
    assert_true(peer_name_ok("alice", 5));
    assert_true(peer_name_ok("A.b_c-9", 7));
    assert_false(peer_name_ok("", 0));
    assert_false(peer_name_ok("a b", 3));
    assert_false(peer_name_ok("a:b", 3));
    assert_false(peer_name_ok("\xc3\xa9", 2));
    char name[PEER_MAX_NAME + 1];
    memset(name, 'a', sizeof name);
    assert_true(peer_name_ok(name, PEER_MAX_NAME));
    assert_false(peer_name_ok(name, PEER_MAX_NAME + 1));
}

static void test_window(void **st)
{
    (void)st;
    int64_t d = 0;
    const uint64_t now = 1700000000000ull, w = 120000;
    assert_int_equal(peer_ts_check(now, now, w, &d), 0);
    assert_int_equal(peer_ts_check(now, now - w, w, &d), 0);
    assert_int_equal(peer_ts_check(now, now + w, w, &d), 0);
    assert_int_equal(peer_ts_check(now, now - w - 1, w, &d), -1);
    assert_int_equal(d, -(int64_t)(w + 1));
    assert_int_equal(peer_ts_check(now, now + w + 1, w, &d), -1);
    assert_int_equal(d, (int64_t)(w + 1));
    /* Hostile values do not overflow. */
    assert_int_equal(peer_ts_check(now, 0, w, &d), -1);
    assert_int_equal(d, -(int64_t)now);
    assert_int_equal(peer_ts_check(now, UINT64_MAX, w, &d), -1);
    assert_true(d > 0);
    assert_int_equal(peer_ts_check(0, UINT64_MAX, w, &d), -1);
    assert_int_equal(d, INT64_MAX);
}

static void test_ack(void **st)
{
    (void)st;
    uint8_t out[1 + PEER_MAX_REASON];
    uint8_t status;
    const uint8_t *reason;
    size_t rlen;
    size_t n = peer_ack_encode(PEER_ST_STALE, "too old", out, sizeof out);
    assert_int_equal(n, 8);
    assert_int_equal(peer_ack_decode(out, n, &status, &reason, &rlen), 0);
    assert_int_equal(status, PEER_ST_STALE);
    assert_int_equal(rlen, 7);
    assert_memory_equal(reason, "too old", 7);
    assert_int_equal(peer_ack_decode(out, 0, &status, &reason, &rlen), -1);
    n = peer_ack_encode(PEER_ST_SHOWN, NULL, out, sizeof out);
    assert_int_equal(n, 1);
    /* Long reasons are cut at 255 bytes, never inside a UTF-8 sequence. */
    char longr[400];
    memset(longr, 'r', sizeof longr);
    longr[sizeof longr - 1] = '\0';
    assert_int_equal(peer_ack_encode(0, longr, out, sizeof out), 1 + PEER_MAX_REASON);
    longr[254] = '\xc3';
    longr[255] = '\xa9'; /* "é" straddles the limit */
    assert_int_equal(peer_ack_encode(0, longr, out, sizeof out), 1 + 254);
    assert_string_equal(peer_status_name(PEER_ST_STALE), "stale_timestamp");
    assert_string_equal(peer_status_name(PEER_ST_SENDER_MISMATCH), "sender_mismatch");
    assert_string_equal(peer_status_name(99), "unknown_status");
}

/* ------------------------------------------------------------------------ */
/* Directory                                                                */

static char g_dir[256];

static int dir_setup(void **st)
{
    (void)st;
    snprintf(g_dir, sizeof g_dir, "%s/veil-peer-unit.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(g_dir) == NULL ? -1 : 0;
}

static int dir_teardown(void **st)
{
    (void)st;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to a file with mode, loads it as "alice", returns the result
 * and leaves the error in err. */
static int load_text(const char *text, mode_t mode, peer_directory *d, char *err)
{
    char path[400];
    snprintf(path, sizeof path, "%s/dir.json", g_dir);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    err[0] = '\0';
    return peer_directory_load(path, "alice", d, err);
}

#define FP_BOB "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_DAVE "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define PSK_HEX "52cbdadf0f5312fb8a18f1ab414d519d10ba7e5721d8481a379f3887f3d9fba0"

static void test_dir_valid(void **st)
{
    (void)st;
    peer_directory d;
    char err[VAPP_ERRLEN];
    int r = load_text("{\"version\": 1, \"comment\": \"test\", \"contacts\": ["
                      "{\"name\": \"alice\", \"ip\": \"127.0.0.1\", \"port\": 40001},"
                      "{\"name\": \"bob\", \"ip\": \"::1\", \"port\": 40002, \"secret\": "
                      "\"correct horse battery staple\", \"comment\": \"work\"},"
                      "{\"name\": \"carol\", \"ip\": \"10.0.0.3\", \"port\": 65535, "
                      "\"fingerprint\": \"" FP_BOB "\"},"
                      "{\"name\": \"dave\", \"ip\": \"127.0.0.1\", \"port\": 1, \"psk\": \"" PSK_HEX
                      "\", \"fingerprint\": \"" FP_DAVE "\"}]}",
                      0600, &d, err);
    assert_int_equal(r, 0);
    assert_int_equal(d.n, 4);
    assert_true(d.holds_secrets);
    const peer_contact *a = peer_directory_find(&d, "alice");
    assert_non_null(a);
    assert_false(a->has_psk);
    assert_false(a->has_fp);
    assert_int_equal(a->port, 40001);
    const peer_contact *b = peer_directory_find(&d, "bob");
    assert_non_null(b);
    assert_string_equal(b->ip, "::1");
    assert_true(b->has_psk);
    assert_false(b->has_fp);
    /* The clear secret and its stretched form given as "psk" are the same key:
       the check value of docs/PEER.md, DIRECTORY. */
    const peer_contact *dv = peer_directory_find(&d, "dave");
    assert_non_null(dv);
    assert_true(dv->has_psk);
    assert_true(dv->has_fp);
    assert_memory_equal(b->psk, dv->psk, VEIL_PSK_LEN);
    const peer_contact *c = peer_directory_find(&d, "carol");
    assert_non_null(c);
    assert_true(c->has_fp && !c->has_psk);
    assert_int_equal(c->fp[0], 0x01);
    assert_null(peer_directory_find(&d, "Bob")); /* lookups are exact */
    assert_null(peer_directory_find(&d, "mallory"));
    peer_directory_free(&d);
    assert_null(d.c);
}

/* Fingerprints are public: such a directory may be world-readable. */
static void test_dir_public_ok(void **st)
{
    (void)st;
    peer_directory d;
    char err[VAPP_ERRLEN];
    int r = load_text("{\"version\":1,\"contacts\":[{\"name\":\"carol\",\"ip\":\"127.0.0.1\","
                      "\"port\":5,\"fingerprint\":\"" FP_BOB "\"}]}",
                      0644, &d, err);
    assert_int_equal(r, 0);
    assert_false(d.holds_secrets);
    peer_directory_free(&d);
}

struct bad {
    const char *json;
    mode_t mode;
    const char *expect; /* a part of the error */
};

static void test_dir_errors(void **st)
{
    (void)st;
#define C0 "{\"version\":1,\"contacts\":["
#define C1 "]}"
#define BOB "\"name\":\"bob\",\"ip\":\"127.0.0.1\",\"port\":5"
    static const struct bad cases[] = {
        {"", 0600, "invalid JSON"},
        {"{\"version\":1,", 0600, "line 1"},
        {"[]", 0600, "top level must be an object"},
        {"{\"contacts\":[]}", 0600, "\"version\" must be the integer 1 (it is missing)"},
        {"{\"version\":2,\"contacts\":[]}", 0600, "\"version\" must be the integer 1"},
        {"{\"version\":\"1\",\"contacts\":[]}", 0600, "\"version\" must be the integer 1"},
        {"{\"version\":1}", 0600, "\"contacts\" must be an array of contacts (it is missing)"},
        {"{\"version\":1,\"contacts\":{}}", 0600, "\"contacts\" must be an array"},
        {"{\"version\":1,\"contacts\":[]}", 0600, "\"contacts\" is empty"},
        {"{\"version\":1,\"contacts\":[],\"extra\":1}", 0600, "unknown top-level field \"extra\""},
        {"{\"version\":1,\"version\":1,\"contacts\":[]}", 0600, "duplicate"},
        {C0 "42" C1, 0600, "contacts[0]: each contact must be an object, not an integer"},
        {C0 "{\"ip\":\"127.0.0.1\",\"port\":5,\"secret\":\"s\"}" C1, 0600,
         "contacts[0]: missing \"name\""},
        {C0 "{\"name\":7}" C1, 0600, "\"name\" must be a string, not an integer"},
        {C0 "{\"name\":\"bob smith\"}" C1, 0600, "\"name\" must be 1 to 64 characters"},
        {C0 "{\"name\":\"\"}" C1, 0600, "\"name\" must be 1 to 64 characters"},
        {C0 "{\"name\":\"bob\",\"port\":5,\"secret\":\"s\"}" C1, 0600,
         "contacts[0] (\"bob\"): missing \"ip\""},
        {C0 "{\"name\":\"bob\",\"ip\":\"localhost\",\"port\":5,\"secret\":\"s\"}" C1, 0600,
         "\"ip\" must be a numeric IPv4 or IPv6 address such as 127.0.0.1 or ::1, not "
         "\"localhost\""},
        {C0 "{\"name\":\"bob\",\"ip\":\"1.2.3.256\",\"port\":5,\"secret\":\"s\"}" C1, 0600,
         "numeric IPv4 or IPv6"},
        {C0 "{\"name\":\"bob\",\"ip\":\"127.0.0.1\",\"secret\":\"s\"}" C1, 0600,
         "missing \"port\""},
        {C0 "{\"name\":\"bob\",\"ip\":\"127.0.0.1\",\"port\":0,\"secret\":\"s\"}" C1, 0600,
         "\"port\" must be an integer from 1 to 65535"},
        {C0 "{\"name\":\"bob\",\"ip\":\"127.0.0.1\",\"port\":65536,\"secret\":\"s\"}" C1, 0600,
         "\"port\" must be an integer from 1 to 65535"},
        {C0 "{\"name\":\"bob\",\"ip\":\"127.0.0.1\",\"port\":\"5\",\"secret\":\"s\"}" C1, 0600,
         "\"port\" must be an integer from 1 to 65535, not a string"},
        {C0 "{\"name\":\"bob\",\"ip\":\"127.0.0.1\",\"port\":5.5,\"secret\":\"s\"}" C1, 0600,
         "not a number with a fraction"},
        {C0 "{" BOB ",\"secret\":\"\"}" C1, 0600, "\"secret\" must be 1 to 1024 bytes long"},
        {C0 "{" BOB ",\"secret\":\"a\\u0000b\"}" C1, 0600, "\\u0000 is not allowed"},
        {C0 "{" BOB ",\"secret\":5}" C1, 0600, "\"secret\" must be a string, not an integer"},
        {C0 "{" BOB ",\"secret\":\"s\",\"psk\":\"" PSK_HEX "\"}" C1, 0600,
         "has both \"secret\" and \"psk\""},
        {C0 "{" BOB ",\"psk\":\"abcd\"}" C1, 0600, "\"psk\" must be 64 hex digits"},
        {C0 "{" BOB ",\"fingerprint\":\"sha256:1234\"}" C1, 0600,
         "\"fingerprint\" must be \"sha256:\" and 64 hex digits"},
        {C0 "{" BOB "}" C1, 0600, "needs a \"secret\" (or \"psk\") or a \"fingerprint\""},
        {C0 "{" BOB ",\"secret\":\"s\",\"fingerprnt\":\"x\"}" C1, 0600,
         "unknown field \"fingerprnt\""},
        {C0 "{" BOB ",\"secret\":\"s\"},{\"name\":\"Bob\",\"ip\":\"127.0.0.1\",\"port\":6,"
            "\"secret\":\"t\"}" C1,
         0600, "contacts[1] (\"Bob\"): the name is already used by contacts[0] (\"bob\")"},
        {C0 "{" BOB ",\"fingerprint\":\"" FP_BOB "\"},{\"name\":\"carol\",\"ip\":\"::1\","
            "\"port\":6,\"fingerprint\":\"" FP_BOB "\"}" C1,
         0600, "contacts[1] (\"carol\"): the fingerprint is already pinned for contacts[0] (\"bob\")"},
        {C0 "{" BOB ",\"secret\":\"s\"}" C1, 0640, "has mode 0640"},
        {C0 "{" BOB ",\"psk\":\"" PSK_HEX "\"}" C1, 0604, "chmod 600"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer_directory d;
        char err[VAPP_ERRLEN];
        int r = load_text(cases[i].json, cases[i].mode, &d, err);
        if (r != -1 || strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu (%s): r=%d, err \"%s\" lacks \"%s\"", i, cases[i].json, r, err,
                     cases[i].expect);
        assert_null(d.c);
        assert_int_equal(d.n, 0);
    }
}

static void test_dir_file_errors(void **st)
{
    (void)st;
    peer_directory d;
    char err[VAPP_ERRLEN];
    assert_int_equal(peer_directory_load("/nonexistent/dir.json", "alice", &d, err), -1);
    assert_non_null(strstr(err, "cannot open directory file /nonexistent/dir.json"));
    assert_int_equal(peer_directory_load(g_dir, "alice", &d, err), -1);
    assert_non_null(strstr(err, "is not a regular file"));
}

static void test_psk_parse(void **st)
{
    (void)st;
    uint8_t psk[VEIL_PSK_LEN], want[VEIL_PSK_LEN];
    assert_int_equal(peer_psk_parse(PSK_HEX, 64, psk), 0);
    assert_int_equal(veil_psk_stretch("correct horse battery staple", 28, want), 0);
    assert_memory_equal(psk, want, VEIL_PSK_LEN);
    assert_int_equal(peer_psk_parse(PSK_HEX, 63, psk), -1);
    assert_int_equal(peer_psk_parse("g" PSK_HEX, 64, psk), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_encode),
        cmocka_unit_test(test_example_decode),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_psk_parse),
        cmocka_unit_test_setup_teardown(test_dir_valid, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_public_ok, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_errors, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_dir_file_errors, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
