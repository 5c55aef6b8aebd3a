/*
 * test_svc_wire.c - the service payload codec shared by the server, the
 * client and the Wireshark plugin (apps/server/svc_wire.h, SERVICES.md):
 * the bank parser on every request and reply form, and what it refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "svc_wire.h"

static const char *parse(const char *text, int from_client, svc_bank_msg *m)
{
    return svc_bank_parse((const uint8_t *)text, strlen(text), from_client, m);
}

static void assert_span(const char *text, svc_span s, const char *want)
{
    if (want == NULL) {
        assert_true(s.len < 0);
        return;
    }
    assert_int_equal(s.len, (int32_t)strlen(want));
    assert_memory_equal(text + s.off, want, strlen(want));
}

static void test_requests(void **st)
{
    (void)st;
    svc_bank_msg m;
    const char *t = "DEPOSIT 0123456789abcdef0123456789abcdef 12.34";
    assert_null(parse(t, 1, &m));
    assert_span(t, m.op, "DEPOSIT");
    assert_span(t, m.request_id, "0123456789abcdef0123456789abcdef");
    assert_span(t, m.amount, "12.34");
    assert_span(t, m.balance, NULL);
    t = "WITHDRAW rid 5";
    assert_null(parse(t, 1, &m));
    assert_span(t, m.op, "WITHDRAW");
    assert_span(t, m.amount, "5");
    assert_null(parse("BALANCE", 1, &m));
    t = "HISTORY 3";
    assert_null(parse(t, 1, &m));
    assert_span(t, m.count, "3");
    assert_null(parse("HISTORY", 1, &m));
    assert_true(m.count.len < 0);

    /* Refused: arity, unknown keywords, spacing, emptiness. */
    assert_non_null(parse("DEPOSIT rid", 1, &m));
    assert_non_null(parse("DEPOSIT rid 1 2", 1, &m));
    assert_non_null(parse("BALANCE now", 1, &m));
    assert_non_null(parse("HISTORY 1 2", 1, &m));
    assert_non_null(parse("TRANSFER 5", 1, &m));
    assert_true(m.op.len < 0);
    assert_non_null(parse("deposit rid 1", 1, &m)); /* keywords are upper case */
    assert_non_null(parse("BALANCE ", 1, &m));
    assert_non_null(parse("DEPOSIT  rid 1", 1, &m));
    assert_non_null(parse(" BALANCE", 1, &m));
    assert_non_null(parse("", 1, &m));
    /* A reply is not a request. */
    assert_non_null(parse("BALANCE 10.00", 1, &m));
}

static void test_replies(void **st)
{
    (void)st;
    svc_bank_msg m;
    const char *t = "OK DEPOSIT rid 12.34 112.34 7 1735732800000";
    assert_null(parse(t, 0, &m));
    assert_span(t, m.op, "OK");
    assert_span(t, m.ok_op, "DEPOSIT");
    assert_span(t, m.request_id, "rid");
    assert_span(t, m.amount, "12.34");
    assert_span(t, m.balance, "112.34");
    assert_false(m.replayed);
    assert_null(parse("OK DEPOSIT rid 12.34 112.34 7 1735732800000 REPLAYED", 0, &m));
    assert_true(m.replayed);
    t = "ERR rid insufficient_funds the balance is 1.00";
    assert_null(parse(t, 0, &m));
    assert_span(t, m.error, "insufficient_funds");
    t = "BALANCE 10.00";
    assert_null(parse(t, 0, &m));
    assert_span(t, m.balance, "10.00");
    t = "HISTORY 2\nline one\nline two";
    assert_null(parse(t, 0, &m)); /* only the first line is the reply's words */
    assert_span(t, m.count, "2");

    assert_non_null(parse("OK DEPOSIT rid 12.34 112.34 7", 0, &m));
    assert_non_null(parse("OK DEPOSIT rid 12.34 112.34 7 1 AGAIN", 0, &m));
    assert_non_null(parse("ERR rid code", 0, &m));
    assert_non_null(parse("BALANCE", 0, &m));
    assert_non_null(parse("WHAT 1", 0, &m));
    assert_non_null(parse("\nBALANCE 1", 0, &m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
