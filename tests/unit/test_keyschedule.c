/*
 * test_keyschedule.c - HKDF (RFC 5869 vectors), the Expand-Label encoding
 * and the schedule's derivation tree (PROTOCOL.md §5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "veil_internal.h"

static void unhex(const char *h, uint8_t *out)
{
    for (size_t i = 0; h[2 * i] != '\0'; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* RFC 5869 A.1 */
static void test_rfc5869(void **st)
{
    (void)st;
    uint8_t ikm[22], salt[13], info[10], prk[32], okm[42], want_prk[32], want_okm[42];
    memset(ikm, 0x0b, sizeof(ikm));
    unhex("000102030405060708090a0b0c", salt);
    unhex("f0f1f2f3f4f5f6f7f8f9", info);
    unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", want_prk);
    unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", want_okm);
    assert_int_equal(veil_hkdf_extract(salt, sizeof(salt), ikm, sizeof(ikm), prk), 0);
    assert_memory_equal(prk, want_prk, 32);
    assert_int_equal(veil_hkdf_expand(prk, info, sizeof(info), okm, sizeof(okm)), 0);
    assert_memory_equal(okm, want_okm, 42);
}

/* Expand-Label = HKDF-Expand with info u16 L || u8 len || "veil1 " label || u8 ctx_len || ctx. */
static void test_expand_label_encoding(void **st)
{
    (void)st;
    uint8_t secret[32], ctx[32], a[32], b[32];
    for (int i = 0; i < 32; i++) {
        secret[i] = (uint8_t)i;
        ctx[i] = (uint8_t)(0xA0 + i);
    }
    const uint8_t info[] = {0x00, 0x20, 10, 'v', 'e', 'i', 'l', '1', ' ', 'c', ' ', 'h', 's', 32};
    uint8_t full[sizeof(info) + 32];
    memcpy(full, info, sizeof(info));
    memcpy(full + sizeof(info), ctx, 32);
    assert_int_equal(veil_expand_label(secret, "c hs", ctx, 32, a, 32), 0);
    assert_int_equal(veil_hkdf_expand(secret, full, sizeof(full), b, 32), 0);
    assert_memory_equal(a, b, 32);

    /* Empty context, 12-byte output: the length is part of the info. */
    const uint8_t info_iv[] = {0x00, 0x0c, 8, 'v', 'e', 'i', 'l', '1', ' ', 'i', 'v', 0};
    assert_int_equal(veil_expand_label(secret, "iv", NULL, 0, a, 12), 0);
    assert_int_equal(veil_hkdf_expand(secret, info_iv, sizeof(info_iv), b, 12), 0);
    assert_memory_equal(a, b, 12);

    /* Different labels give different keys. */
    assert_int_equal(veil_expand_label(secret, "key", NULL, 0, a, 32), 0);
    assert_int_equal(veil_expand_label(secret, "mac", NULL, 0, b, 32), 0);
    assert_memory_not_equal(a, b, 32);
}

static void test_schedule_tree(void **st)
{
    (void)st;
    veil_schedule ks;
    uint8_t ikm[32], th1[32], th2[32], hs[32], zero[32] = {0}, x[32], y[32];
    memset(ikm, 7, sizeof(ikm));
    memset(th1, 1, sizeof(th1));
    memset(th2, 2, sizeof(th2));
    assert_int_equal(veil_schedule_handshake(&ks, ikm, 32, NULL, th1), 0);
    assert_int_equal(veil_hkdf_extract(zero, 32, ikm, 32, hs), 0);
    assert_memory_equal(ks.hs, hs, 32);
    assert_int_equal(veil_expand_label(hs, "c hs", th1, 32, x, 32), 0);
    assert_int_equal(veil_expand_label(x, "finished", NULL, 0, y, 32), 0);
    assert_memory_equal(ks.c_finished_key, y, 32);
    assert_int_equal(veil_expand_label(hs, "s hs", th1, 32, x, 32), 0);
    assert_int_equal(veil_expand_label(x, "finished", NULL, 0, y, 32), 0);
    assert_memory_equal(ks.s_finished_key, y, 32);
    assert_memory_not_equal(ks.c_finished_key, ks.s_finished_key, 32);

    assert_int_equal(veil_schedule_traffic(&ks, th2), 0);
    assert_int_equal(veil_expand_label(hs, "c ap", th2, 32, x, 32), 0);
    assert_memory_equal(ks.c_ap, x, 32);
    assert_int_equal(veil_expand_label(hs, "s ap", th2, 32, x, 32), 0);
    assert_memory_equal(ks.s_ap, x, 32);
    assert_memory_equal(ks.hs, zero, 32); /* wiped once used */

    /* Next epoch. */
    memcpy(x, ks.c_ap, 32);
    assert_int_equal(veil_secret_update(x), 0);
    assert_int_equal(veil_expand_label(ks.c_ap, "upd", NULL, 0, y, 32), 0);
    assert_memory_equal(x, y, 32);

    veil_schedule_wipe(&ks);
    assert_memory_equal(ks.c_ap, zero, 32);
}

static void test_label_limits(void **st)
{
    (void)st;
    uint8_t secret[32] = {0}, out[32], ctx[256] = {0};
    char label[300];
    memset(label, 'a', sizeof(label) - 1);
    label[sizeof(label) - 1] = '\0';
    assert_int_equal(veil_expand_label(secret, label, NULL, 0, out, 32), VEIL_ERR_INVALID_ARG);
    assert_int_equal(veil_expand_label(secret, "x", ctx, 256, out, 32), VEIL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869),
        cmocka_unit_test(test_expand_label_encoding),
        cmocka_unit_test(test_schedule_tree),
        cmocka_unit_test(test_label_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
