/*
 * test_crc32c.c - CRC-32C (Castagnoli) of plaintext record bodies, PROTOCOL.md §2:
 * the RFC 3720 B.4 vectors, the "123456789" check value, incremental use, and
 * the slicing-by-8 implementation against a bitwise reference for short inputs,
 * and the SSE4.2 implementation against the tables (every length to 600 at
 * every alignment, chained, and full records).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "veil/veil.h"
#include "veil_internal.h"

/* Bitwise reference: reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF. */
static uint32_t crc32c_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

/* RFC 3720 appendix B.4. */
static void test_rfc3720_vectors(void **st)
{
    (void)st;
    uint8_t buf[32];

    memset(buf, 0x00, sizeof(buf));
    assert_int_equal(veil_crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof(buf));
    assert_int_equal(veil_crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(veil_crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(veil_crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
}

/* The catalogue check value, and the reference agrees with it. */
static void test_check_value(void **st)
{
    (void)st;
    const uint8_t *s = (const uint8_t *)"123456789";
    assert_int_equal(veil_crc32c(0, s, 9), 0xE3069283u);
    assert_int_equal(crc32c_ref(s, 9), 0xE3069283u);
    /* Empty input: the identity. */
    assert_int_equal(veil_crc32c(0, NULL, 0), 0);
    assert_int_equal(veil_crc32c(0x12345678u, NULL, 0), 0x12345678u);
    /* The record example of PROTOCOL.md §2.7: header and content of a close_notify. */
    static const uint8_t rec[18] = {0x56, 0x4c, 0x01, 0x02, 0x00, 0x00, 0x00, 0x06, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00};
    assert_int_equal(veil_crc32c(0, rec, sizeof(rec)), 0x41CEC640u);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Continuing from a previous result equals the one-shot CRC, for every split point. */
static void test_incremental(void **st)
{
    (void)st;
    uint8_t buf[100];
    fill(buf, sizeof(buf), 7);
    uint32_t whole = veil_crc32c(0, buf, sizeof(buf));
    assert_int_equal(whole, crc32c_ref(buf, sizeof(buf)));
    for (size_t split = 0; split <= sizeof(buf); split++) {
        uint32_t c = veil_crc32c(0, buf, split);
        c = veil_crc32c(c, buf + split, sizeof(buf) - split);
        assert_int_equal(c, whole);
    }
    /* Three pieces, including unaligned ones around the 8-byte fast path. */
    for (size_t a = 0; a <= 20; a++)
        for (size_t b = a; b <= 40; b++) {
            uint32_t c = veil_crc32c(0, buf, a);
            c = veil_crc32c(c, buf + a, b - a);
            c = veil_crc32c(c, buf + b, sizeof(buf) - b);
            assert_int_equal(c, whole);
        }
}

/* Lengths 0..100 at every alignment against the bitwise reference. */
static void test_against_reference(void **st)
{
    (void)st;
    uint8_t buf[100 + 8];
    for (uint32_t seed = 1; seed <= 3; seed++) {
        fill(buf, sizeof(buf), seed);
        for (size_t off = 0; off < 8; off++)
            for (size_t n = 0; n <= 100; n++)
                assert_int_equal(veil_crc32c(0, buf + off, n), crc32c_ref(buf + off, n));
    }
    /* A single flipped bit always changes the CRC. */
    fill(buf, sizeof(buf), 9);
    uint32_t base = veil_crc32c(0, buf, 64);
    for (size_t bit = 0; bit < 64 * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(veil_crc32c(0, buf, 64), base);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

/*
 * The instruction and the tables agree bit for bit: every length 0..600 at
 * all 16 alignments, from several starting values, and record-sized inputs.
 * On a CPU without SSE4.2 veil_crc32c_hw is the table code, and this checks
 * the dispatch only.
 */
static void test_hw_matches_table(void **st)
{
    (void)st;
    static uint8_t buf[VEIL_MAX_BODY + 16];
    static const uint32_t starts[] = {0, 1, 0xFFFFFFFFu, 0xE3069283u, 0x80000000u};
    print_message("SSE4.2 crc32: %s\n", veil_crc32c_hw_available() ? "used" : "not available");
    fill(buf, sizeof(buf), 11);
    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++)
        for (size_t off = 0; off < 16; off++)
            for (size_t n = 0; n <= 600; n++) {
                uint32_t t = veil_crc32c_table(starts[s], buf + off, n);
                assert_int_equal(veil_crc32c_hw(starts[s], buf + off, n), t);
                assert_int_equal(veil_crc32c(starts[s], buf + off, n), t);
            }
    for (size_t off = 0; off < 16; off += 3) {
        const size_t big[] = {4096, 16383, 16384, 16385, VEIL_MAX_BODY};
        for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
            uint32_t t = veil_crc32c_table(0, buf + off, big[i]);
            assert_int_equal(veil_crc32c_hw(0, buf + off, big[i]), t);
            assert_int_equal(crc32c_ref(buf + off, big[i]), t);
            /* A header then a body, as records are checked. */
            uint32_t h = veil_crc32c_hw(veil_crc32c_hw(0, buf + off, 16), buf + off + 16, big[i] - 16);
            assert_int_equal(h, t);
        }
    }
    /* Every single-bit error in a 100-byte input is caught by both. */
    uint32_t base = veil_crc32c_hw(0, buf, 100);
    for (size_t bit = 0; bit < 800; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(veil_crc32c_hw(0, buf, 100), base);
        assert_int_equal(veil_crc32c_hw(0, buf, 100), veil_crc32c_table(0, buf, 100));
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3720_vectors),
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_hw_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
