/*
 * test_keylog.c - NSS-style keylog lines (PROTOCOL.md §9): formatting,
 * parsing, the lookup by client random and what is ignored or rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "veil_internal.h"

#define DECODE_ERROR VEIL_PERR(VEIL_ALERT_DECODE_ERROR)

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int add(veil_keylog *kl, const char *line) { return veil_keylog_add_line(kl, line, strlen(line)); }

static veil_keylog *new_keylog(void)
{
    veil_keylog *kl = NULL;
    assert_int_equal(veil_keylog_new(&kl), 0);
    assert_non_null(kl);
    assert_int_equal(veil_keylog_count(kl), 0);
    return kl;
}

/* Hand-written lines (independent of veil_keylog_format) parse into both directions. */
static void test_parse_and_find(void **st)
{
    (void)st;
    uint8_t rnd[32], cs[32], ss[32], got[32];
    char rh[65], ch[65], sh[65], line[200];
    fill(rnd, 32, 1);
    fill(cs, 32, 2);
    fill(ss, 32, 3);
    hex(rnd, 32, rh);
    hex(cs, 32, ch);
    hex(ss, 32, sh);

    veil_keylog *kl = new_keylog();
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), VEIL_ERR_NO_KEY);

    snprintf(line, sizeof(line), "VEIL_CLIENT_TRAFFIC_SECRET_0 %s %s", rh, ch);
    assert_int_equal(add(kl, line), 0);
    assert_int_equal(veil_keylog_count(kl), 1);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), 0);
    assert_memory_equal(got, cs, 32);
    /* Only one direction known so far. */
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), VEIL_ERR_NO_KEY);

    snprintf(line, sizeof(line), "VEIL_SERVER_TRAFFIC_SECRET_0 %s %s\n", rh, sh);
    assert_int_equal(add(kl, line), 0);
    assert_int_equal(veil_keylog_count(kl), 1); /* same session */
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, ss, 32);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), 0);
    assert_memory_equal(got, cs, 32);

    /* Upper-case hex is read too. */
    uint8_t rnd2[32];
    fill(rnd2, 32, 4);
    char rh2[65];
    hex(rnd2, 32, rh2);
    for (char *p = rh2; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    snprintf(line, sizeof(line), "VEIL_SERVER_TRAFFIC_SECRET_0 %s %s", rh2, ch);
    assert_int_equal(add(kl, line), 0);
    assert_int_equal(veil_keylog_count(kl), 2);
    assert_int_equal(veil_keylog_find(kl, rnd2, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, cs, 32);

    /* Bad direction, NULL keylog. */
    assert_int_equal(veil_keylog_find(kl, rnd, 2, got), VEIL_ERR_NO_KEY);
    assert_int_equal(veil_keylog_find(kl, rnd, -1, got), VEIL_ERR_NO_KEY);
    assert_int_equal(veil_keylog_find(NULL, rnd, 0, got), VEIL_ERR_NO_KEY);

    /* An unknown random. */
    rnd[31] ^= 1;
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), VEIL_ERR_NO_KEY);
    veil_keylog_free(kl);
    veil_keylog_free(NULL);
}

static void test_format_roundtrip(void **st)
{
    (void)st;
    uint8_t rnd[32], sec[32], got[32];
    char line[160], want[160], rh[65], sh[65];
    fill(rnd, 32, 10);
    fill(sec, 32, 11);
    hex(rnd, 32, rh);
    hex(sec, 32, sh);

    memset(line, 'Z', sizeof(line));
    veil_keylog_format(VEIL_KEYLOG_CLIENT_TRAFFIC, rnd, sec, line);
    snprintf(want, sizeof(want), "VEIL_CLIENT_TRAFFIC_SECRET_0 %s %s", rh, sh);
    assert_string_equal(line, want); /* NUL-terminated, lowercase hex, single spaces */
    assert_int_equal(strlen(line), 28 + 1 + 64 + 1 + 64);

    veil_keylog *kl = new_keylog();
    assert_int_equal(add(kl, line), 0);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), 0);
    assert_memory_equal(got, sec, 32);

    veil_keylog_format(VEIL_KEYLOG_SERVER_TRAFFIC, rnd, rnd, line);
    assert_int_equal(add(kl, line), 0);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, rnd, 32);
    assert_int_equal(veil_keylog_count(kl), 1);
    veil_keylog_free(kl);
}

/* Comments, blank lines, CRLF and other protocols' lines: 0, nothing added. */
static void test_ignored_lines(void **st)
{
    (void)st;
    uint8_t rnd[32], sec[32], got[32];
    char good[160], crlf[170];
    fill(rnd, 32, 20);
    fill(sec, 32, 21);
    veil_keylog_format(VEIL_KEYLOG_SERVER_TRAFFIC, rnd, sec, good);

    veil_keylog *kl = new_keylog();
    static const char *const ignored[] = {
        "",
        "\n",
        "\r\n",
        "# comment",
        "# VEIL_CLIENT_TRAFFIC_SECRET_0 00 00",
        "CLIENT_RANDOM 0101010101010101010101010101010101010101010101010101010101010101 "
        "0202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET 01 02\r\n",
        "SERVER_TRAFFIC_SECRET_0 0101010101010101010101010101010101010101010101010101010101010101 "
        "0202020202020202020202020202020202020202020202020202020202020202",
        "EXPORTER_SECRET x y",
        "VEIL_CLIENT_HANDSHAKE_SECRET 00 00", /* a label Veil does not define */
        "VEIL_CLIENT_TRAFFIC_SECRET_1 00 00",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        assert_int_equal(add(kl, ignored[i]), 0);
        assert_int_equal(veil_keylog_count(kl), 0);
    }
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), VEIL_ERR_NO_KEY);

    /* The Veil line with CRLF is read. */
    snprintf(crlf, sizeof(crlf), "%s\r\n", good);
    assert_int_equal(add(kl, crlf), 0);
    assert_int_equal(veil_keylog_count(kl), 1);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, sec, 32);

    /* A whole file mixing everything: no malformed line counted. */
    veil_keylog_free(kl);
    kl = new_keylog();
    char text[1024];
    snprintf(text, sizeof(text),
             "# SSL/TLS secrets log file, generated by NSS\r\n"
             "\r\n"
             "CLIENT_RANDOM 0101010101010101010101010101010101010101010101010101010101010101 "
             "020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202\n"
             "%s\r\n"
             "\n"
             "# end",
             good);
    assert_int_equal(veil_keylog_add_text(kl, text, strlen(text)), 0);
    assert_int_equal(veil_keylog_count(kl), 1);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, sec, 32);
    /* Last line without a newline. */
    veil_keylog_free(kl);
    kl = new_keylog();
    assert_int_equal(veil_keylog_add_text(kl, good, strlen(good)), 0);
    assert_int_equal(veil_keylog_count(kl), 1);
    veil_keylog_free(kl);
}

/* Malformed Veil lines: -decode_error, nothing added, counted by add_text. */
static void test_malformed_lines(void **st)
{
    (void)st;
    uint8_t rnd[32], sec[32];
    char good[160], bad[16][200];
    int n = 0;
    fill(rnd, 32, 30);
    fill(sec, 32, 31);
    veil_keylog_format(VEIL_KEYLOG_CLIENT_TRAFFIC, rnd, sec, good);
    const size_t lab = strlen(VEIL_KEYLOG_CLIENT_TRAFFIC), sp2 = lab + 1 + 64;
    assert_int_equal(good[lab], ' ');
    assert_int_equal(good[sp2], ' ');

    /* random one digit short */
    snprintf(bad[n++], 200, "%.*s%s", (int)(sp2 - 1), good, good + sp2);
    /* secret one digit short */
    snprintf(bad[n++], 200, "%.*s", (int)strlen(good) - 1, good);
    /* secret one digit long, random one digit long */
    snprintf(bad[n++], 200, "%s0", good);
    snprintf(bad[n++], 200, "%.*s0%s", (int)sp2, good, good + sp2);
    /* a bad hex digit in the random, in the secret */
    snprintf(bad[n], 200, "%s", good);
    bad[n++][lab + 1 + 10] = 'g';
    snprintf(bad[n], 200, "%s", good);
    bad[n++][strlen(good) - 1] = 'x';
    snprintf(bad[n], 200, "%s", good);
    bad[n++][lab + 1] = ' ';
    /* missing space between random and secret */
    snprintf(bad[n++], 200, "%.*s%s", (int)sp2, good, good + sp2 + 1);
    /* a tab instead of the space */
    snprintf(bad[n], 200, "%s", good);
    bad[n++][sp2] = '\t';
    /* an extra field, trailing blank */
    snprintf(bad[n++], 200, "%s extra", good);
    snprintf(bad[n++], 200, "%s ", good);
    /* a field missing */
    snprintf(bad[n++], 200, "%.*s", (int)sp2, good);
    snprintf(bad[n++], 200, "%s ", VEIL_KEYLOG_CLIENT_TRAFFIC);
    /* two spaces after the label */
    snprintf(bad[n++], 200, "%.*s %s", (int)lab + 1, good, good + lab + 1);

    veil_keylog *kl = new_keylog();
    char text[16 * 202];
    size_t tl = 0;
    for (int i = 0; i < n; i++) {
        if (add(kl, bad[i]) != DECODE_ERROR)
            print_error("line %d accepted: \"%s\"\n", i, bad[i]);
        assert_int_equal(add(kl, bad[i]), DECODE_ERROR);
        assert_int_equal(veil_keylog_count(kl), 0);
        tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "%s\n", bad[i]);
    }
    /* add_text counts each malformed line, and still reads the good ones around them. */
    tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "# fine\n%s\n", good);
    assert_int_equal(veil_keylog_add_text(kl, text, tl), (size_t)n);
    assert_int_equal(veil_keylog_count(kl), 1);
    uint8_t got[32];
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), 0);
    assert_memory_equal(got, sec, 32);
    veil_keylog_free(kl);
}

/* A later line for the same random and direction replaces the secret. */
static void test_later_line_wins(void **st)
{
    (void)st;
    uint8_t rnd[32], s1[32], s2[32], s3[32], got[32];
    char line[160];
    fill(rnd, 32, 40);
    fill(s1, 32, 41);
    fill(s2, 32, 42);
    fill(s3, 32, 43);
    veil_keylog *kl = new_keylog();
    veil_keylog_format(VEIL_KEYLOG_CLIENT_TRAFFIC, rnd, s1, line);
    assert_int_equal(add(kl, line), 0);
    veil_keylog_format(VEIL_KEYLOG_SERVER_TRAFFIC, rnd, s3, line);
    assert_int_equal(add(kl, line), 0);
    veil_keylog_format(VEIL_KEYLOG_CLIENT_TRAFFIC, rnd, s2, line);
    assert_int_equal(add(kl, line), 0);
    assert_int_equal(veil_keylog_count(kl), 1);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_CLIENT_TO_SERVER, got), 0);
    assert_memory_equal(got, s2, 32);
    /* The other direction is untouched. */
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, s3, 32);
    /* A malformed line for that session does not disturb it. */
    line[strlen(line) - 1] = 'q';
    assert_int_equal(add(kl, line), DECODE_ERROR);
    assert_int_equal(veil_keylog_find(kl, rnd, VEIL_DIR_SERVER_TO_CLIENT, got), 0);
    assert_memory_equal(got, s3, 32);
    veil_keylog_free(kl);
}

#define MANY 5000

/* Enough sessions to grow the table many times; every one is found afterwards. */
static void test_many_sessions(void **st)
{
    (void)st;
    uint8_t (*rnd)[32] = malloc(MANY * sizeof(*rnd));
    assert_non_null(rnd);
    veil_keylog *kl = new_keylog();
    veil_buf text;
    veil_buf_init(&text);
    for (uint32_t i = 0; i < MANY; i++) {
        uint8_t sec[32];
        char line[160];
        fill(rnd[i], 32, 1000 + i);
        if (i % 2 == 0) /* some randoms share their first 8 bytes (the hash input) */
            memset(rnd[i], 0xAB, 8);
        fill(sec, 32, 900000 + i);
        veil_keylog_format(i % 3 == 0 ? VEIL_KEYLOG_SERVER_TRAFFIC : VEIL_KEYLOG_CLIENT_TRAFFIC, rnd[i], sec, line);
        if (i < MANY / 2) {
            assert_int_equal(add(kl, line), 0);
        } else {
            assert_int_equal(veil_buf_append(&text, line, strlen(line)), 0);
            assert_int_equal(veil_buf_append(&text, "\n", 1), 0);
        }
    }
    assert_int_equal(veil_keylog_add_text(kl, (const char *)text.base, text.len), 0);
    assert_int_equal(veil_keylog_count(kl), MANY);
    for (uint32_t i = 0; i < MANY; i++) {
        uint8_t sec[32], got[32];
        int dir = i % 3 == 0 ? VEIL_DIR_SERVER_TO_CLIENT : VEIL_DIR_CLIENT_TO_SERVER;
        fill(sec, 32, 900000 + i);
        assert_int_equal(veil_keylog_find(kl, rnd[i], dir, got), 0);
        assert_memory_equal(got, sec, 32);
        assert_int_equal(veil_keylog_find(kl, rnd[i], 1 - dir, got), VEIL_ERR_NO_KEY);
    }
    /* Randoms never added are not found. */
    for (uint32_t i = 0; i < 200; i++) {
        uint8_t r[32], got[32];
        fill(r, 32, 7000000 + i);
        assert_int_equal(veil_keylog_find(kl, r, VEIL_DIR_CLIENT_TO_SERVER, got), VEIL_ERR_NO_KEY);
        memset(r, 0xAB, 8);
        assert_int_equal(veil_keylog_find(kl, r, VEIL_DIR_CLIENT_TO_SERVER, got), VEIL_ERR_NO_KEY);
    }
    veil_buf_free(&text);
    veil_keylog_free(kl);
    free(rnd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_find),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_ignored_lines),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_later_line_wins),
        cmocka_unit_test(test_many_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
