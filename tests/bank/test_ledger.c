/*
 * test_ledger.c - the bank ledger (apps/bank/ledger.h): amounts, every
 * operation, idempotent replay, refusals, history, the schema checks, the
 * consistency check, and concurrent withdrawals from threads and processes.
 * The SIGKILL durability test is test_ledger_crash.c.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ledger.h"

#define T0 UINT64_C(1700000000000)

static char dir[256];
static char dbpath[300];

/* A fresh directory and ledger path per test. */
static int setup(void **st)
{
    (void)st;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/veil-ledger-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(dbpath, sizeof dbpath, "%s/bank.db", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[320];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static ledger *open_ok(void)
{
    ledger *l = NULL;
    char err[256] = "";
    int r = ledger_open(dbpath, &l, err, sizeof err);
    if (r != 0)
        fail_msg("ledger_open: %d %s", r, err);
    assert_non_null(l);
    return l;
}

/* Request ids that differ by a counter: "req-<tag>-000000000042". */
static const char *rid(const char *tag, int n)
{
    static char buf[8][LEDGER_REQUEST_ID_MAX + 1];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, sizeof buf[0], "req-%s-%012d", tag, n);
    return b;
}

static int64_t balance_of(ledger *l, const char *user)
{
    int64_t b = -1;
    assert_int_equal(ledger_balance(l, user, &b), 0);
    return b;
}

static void verify_ok(ledger *l)
{
    int r = ledger_verify(l);
    if (r != 0)
        fail_msg("ledger_verify: %s: %s", ledger_strerror(r), ledger_errmsg(l));
}

/* Runs one SQL statement on the file through a separate raw connection. */
static int raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int64_t raw_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Amounts                                                                  */

static void test_parse_amount_accepts(void **st)
{
    (void)st;
    static const struct {
        const char *text;
        int64_t cents;
    } ok[] = {
        {"12.34", 1234},
        {"12", 1200},
        {"0.5", 50},
        {"0.05", 5},
        {"0.01", 1},
        {"1", 100},
        {"1.0", 100},
        {"1.00", 100},
        {"1.1", 110},
        {"10.10", 1010},
        {"007", 700},
        {"007.10", 710},
        {"00000000000000000000000000001", 100}, /* leading zeros do not count toward overflow */
        {"99.99", 9999},
        {"100000000000", INT64_C(10000000000000)},    /* the maximum */
        {"100000000000.00", INT64_C(10000000000000)}, /* the maximum */
        {"99999999999.99", INT64_C(9999999999999)},
        {"123456789.01", INT64_C(12345678901)},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t c = -7;
        int r = ledger_parse_amount(ok[i].text, &c);
        if (r != 0 || c != ok[i].cents)
            fail_msg("\"%s\": got %d / %lld, want %lld", ok[i].text, r, (long long)c,
                     (long long)ok[i].cents);
    }
}

static void test_parse_amount_rejects(void **st)
{
    (void)st;
    static const char *const syntax[] = {
        "",      " 1",     "1 ",     "1\n",    "\t1",     "-1",    "+1",      "-0",    "1e3",
        "1E3",   "1e-2",   "12.345", "0.001",  "12.",     ".5",    ".",       "..",    "1..2",
        "1.2.3", "1,5",    "1,000",  "1 000",  "1_000",   "0x10",  "abc",     "12a",   "a12",
        "1.a",   "1.-1",   "1.+1",   "NaN",    "inf",     "Infinity", "\xd9\xa1", /* Arabic-Indic 1 */
        "１",    "1.5 ",   "$1",     "1$",     "1.0.",    "-0.01", "--1",     "1-",    "12.3x",
    };
    for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
        int64_t c = -7;
        int r = ledger_parse_amount(syntax[i], &c);
        if (r != LEDGER_ERR_AMOUNT_SYNTAX || c != -7)
            fail_msg("\"%s\": got %d / %lld, want a syntax error", syntax[i], r, (long long)c);
    }
    static const char *const range[] = {
        "0",
        "0.0",
        "0.00",
        "000.00",
        "100000000000.01",  /* maximum + 1 cent */
        "100000000001",
        "999999999999",
        "9223372036854775807", /* INT64_MAX units */
        "92233720368547758.07", /* INT64_MAX cents */
        "18446744073709551616", /* 2^64 */
        "99999999999999999999999999999999999999.99",
    };
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        int64_t c = -7;
        int r = ledger_parse_amount(range[i], &c);
        if (r != LEDGER_ERR_AMOUNT_RANGE || c != -7)
            fail_msg("\"%s\": got %d / %lld, want a range error", range[i], r, (long long)c);
    }
    int64_t c;
    assert_int_equal(ledger_parse_amount(NULL, &c), LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_parse_amount("1", NULL), LEDGER_ERR_INVALID_ARG);
    /* An embedded NUL ends the string: what is before it is judged. */
    assert_int_equal(ledger_parse_amount("1\0" "e3", &c), 0);
    assert_int_equal(c, 100);
}

/* Every string of up to 4 characters of [0-9.-e ], checked against a model. */
static void test_parse_amount_exhaustive(void **st)
{
    (void)st;
    static const char alphabet[] = "0159.-e ";
    const size_t k = sizeof alphabet - 1;
    char s[6];
    size_t total = 0;
    for (size_t len = 0; len <= 4; len++) {
        size_t combos = 1;
        for (size_t i = 0; i < len; i++)
            combos *= k;
        for (size_t n = 0; n < combos; n++) {
            size_t v = n;
            for (size_t i = 0; i < len; i++) {
                s[i] = alphabet[v % k];
                v /= k;
            }
            s[len] = '\0';
            /* Model: digits+ ( '.' digit{1,2} )?, value > 0. */
            size_t d = 0;
            while (s[d] >= '0' && s[d] <= '9')
                d++;
            int valid = d > 0;
            int64_t want = 0;
            if (valid) {
                for (size_t i = 0; i < d; i++)
                    want = want * 10 + (s[i] - '0');
                want *= 100;
                if (s[d] == '.') {
                    size_t f = 0;
                    while (s[d + 1 + f] >= '0' && s[d + 1 + f] <= '9')
                        f++;
                    valid = (f == 1 || f == 2) && s[d + 1 + f] == '\0';
                    if (f >= 1)
                        want += (s[d + 1] - '0') * 10;
                    if (f == 2)
                        want += s[d + 2] - '0';
                } else {
                    valid = s[d] == '\0';
                }
            }
            int64_t c = -7;
            int r = ledger_parse_amount(s, &c);
            int expect = !valid ? LEDGER_ERR_AMOUNT_SYNTAX : want == 0 ? LEDGER_ERR_AMOUNT_RANGE : 0;
            if (r != expect || (r == 0 && c != want) || (r != 0 && c != -7))
                fail_msg("\"%s\": got %d / %lld, want %d / %lld", s, r, (long long)c, expect,
                         (long long)want);
            total++;
        }
    }
    assert_true(total > 4000);
}

static void test_format_amount(void **st)
{
    (void)st;
    char b[LEDGER_AMOUNT_STRLEN];
    static const struct {
        int64_t cents;
        const char *text;
    } cases[] = {
        {0, "0.00"},
        {1, "0.01"},
        {50, "0.50"},
        {1234, "12.34"},
        {100, "1.00"},
        {-1, "-0.01"},
        {-100, "-1.00"},
        {INT64_C(10000000000000), "100000000000.00"},
        {INT64_MAX, "92233720368547758.07"},
        {INT64_MIN, "-92233720368547758.08"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ledger_format_amount(cases[i].cents, b);
        assert_string_equal(b, cases[i].text);
    }
    /* Round trip for positive amounts. */
    for (int64_t c = 1; c < 100000; c += 7) {
        int64_t back = 0;
        ledger_format_amount(c, b);
        assert_int_equal(ledger_parse_amount(b, &back), 0);
        assert_int_equal(back, c);
    }
}

/* ------------------------------------------------------------------------ */
/* Names and request ids                                                    */

/* A counter RNG for the tests; *user != 0 makes it fail. */
static int test_rng(void *user, uint8_t *out, size_t len)
{
    static uint32_t x = 12345;
    if (user != NULL && *(int *)user)
        return -1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        out[i] = (uint8_t)(x >> 24);
    }
    return 0;
}

static void test_validation(void **st)
{
    (void)st;
    assert_true(ledger_user_valid("alice"));
    assert_true(ledger_user_valid("A.b_c-9"));
    assert_true(ledger_user_valid("x"));
    char u[80];
    memset(u, 'u', 64);
    u[64] = '\0';
    assert_true(ledger_user_valid(u));
    u[64] = 'u';
    u[65] = '\0';
    assert_false(ledger_user_valid(u));
    assert_false(ledger_user_valid(""));
    assert_false(ledger_user_valid(NULL));
    assert_false(ledger_user_valid("al ice"));
    assert_false(ledger_user_valid("al/ice"));
    assert_false(ledger_user_valid("alice\n"));
    assert_false(ledger_user_valid("\xc3\xa9"));

    assert_true(ledger_request_id_valid("0123456789abcdef"));
    assert_true(ledger_request_id_valid("0123456789abcdef0123456789abcdef"));
    assert_true(ledger_request_id_valid("123e4567-e89b-12d3-a456-426614174000"));
    assert_true(ledger_request_id_valid("AAECAwQFBgcICQoLDA0ODw_-")); /* base64url */
    char r[80];
    memset(r, 'a', 64);
    r[64] = '\0';
    assert_true(ledger_request_id_valid(r));
    r[64] = 'a';
    r[65] = '\0';
    assert_false(ledger_request_id_valid(r));
    assert_false(ledger_request_id_valid("0123456789abcde")); /* 15 */
    assert_false(ledger_request_id_valid(""));
    assert_false(ledger_request_id_valid(NULL));
    assert_false(ledger_request_id_valid("0123456789abcdef "));
    assert_false(ledger_request_id_valid("0123456789abcde."));
    assert_false(ledger_request_id_valid("0123456789abcde/"));
    assert_false(ledger_request_id_valid("0123456789abcde'"));

    char id[LEDGER_REQUEST_ID_NEW_LEN + 1], id2[LEDGER_REQUEST_ID_NEW_LEN + 1];
    assert_int_equal(ledger_request_id_new(test_rng, NULL, id), 0);
    assert_int_equal(ledger_request_id_new(test_rng, NULL, id2), 0);
    assert_int_equal(strlen(id), 32);
    assert_true(ledger_request_id_valid(id));
    assert_string_not_equal(id, id2);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    int failing = 1;
    assert_int_equal(ledger_request_id_new(test_rng, &failing, id), LEDGER_ERR_RNG);

    for (int e = 0; e >= -14; e--)
        assert_string_not_equal(ledger_strerror(e), "unknown ledger error");
    assert_string_equal(ledger_strerror(-99), "unknown ledger error");
    assert_string_equal(ledger_kind_name(LEDGER_DEPOSIT), "deposit");
    assert_string_equal(ledger_kind_name(LEDGER_WITHDRAW), "withdraw");
}

/* ------------------------------------------------------------------------ */
/* Opening and the schema                                                   */

static void test_open_creates(void **st)
{
    (void)st;
    ledger *l = open_ok();
    struct stat sb;
    assert_int_equal(stat(dbpath, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    ledger_result res;
    assert_int_equal(ledger_deposit(l, "alice", rid("a", 1), 100, T0, &res), 0);
    /* The WAL made by the first write has the file's mode too. */
    char wal[320];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    ledger_close(l);

    assert_int_equal(raw_int("PRAGMA user_version"), LEDGER_SCHEMA_VERSION);
    assert_int_equal(raw_int("PRAGMA application_id"), 0x564C4752);
    assert_int_equal(raw_int("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
                     1);
    /* Reopen: the data is there. */
    l = open_ok();
    assert_int_equal(balance_of(l, "alice"), 100);
    verify_ok(l);
    ledger_close(l);
    ledger_close(NULL);
}

static void test_open_refuses(void **st)
{
    (void)st;
    ledger *l = (ledger *)&l;
    char err[256] = "";
    assert_int_equal(ledger_open(NULL, &l, err, sizeof err), LEDGER_ERR_INVALID_ARG);
    assert_null(l);
    assert_int_equal(ledger_open(dbpath, NULL, err, sizeof err), LEDGER_ERR_INVALID_ARG);

    /* Another program's database. */
    assert_int_equal(raw_exec("CREATE TABLE t (x INTEGER)"), SQLITE_OK);
    assert_int_equal(ledger_open(dbpath, &l, err, sizeof err), LEDGER_ERR_SCHEMA);
    assert_null(l);
    assert_non_null(strstr(err, "not a Veil ledger"));
    teardown(st);
    setup(st);

    /* A newer schema. */
    l = open_ok();
    ledger_close(l);
    assert_int_equal(raw_exec("PRAGMA user_version = 2"), SQLITE_OK);
    assert_int_equal(ledger_open(dbpath, &l, err, sizeof err), LEDGER_ERR_SCHEMA);
    assert_non_null(strstr(err, "newer"));
    /* A database of another application with our version number. */
    assert_int_equal(raw_exec("PRAGMA user_version = 1; PRAGMA application_id = 7"), SQLITE_OK);
    assert_int_equal(ledger_open(dbpath, &l, err, sizeof err), LEDGER_ERR_SCHEMA);
    assert_non_null(strstr(err, "application_id"));
    teardown(st);
    setup(st);

    /* Not a database at all. */
    FILE *f = fopen(dbpath, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite file. ", f);
    fclose(f);
    assert_int_equal(ledger_open(dbpath, &l, err, sizeof err), LEDGER_ERR_CORRUPT);
    assert_null(l);
    assert_non_null(strstr(err, dbpath));

    /* A directory that does not exist. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/missing/bank.db", dir);
    assert_int_equal(ledger_open(bad, &l, err, sizeof err), LEDGER_ERR_DB);
    assert_non_null(strstr(err, "No such file"));
    /* NULL err buffer is fine. */
    assert_int_equal(ledger_open(bad, &l, NULL, 0), LEDGER_ERR_DB);
}

/* ------------------------------------------------------------------------ */
/* Operations                                                               */

static void test_operations(void **st)
{
    (void)st;
    ledger *l = open_ok();
    ledger_result res;
    /* A user without an account has balance 0 and no history. */
    assert_int_equal(balance_of(l, "alice"), 0);
    ledger_entry h[4];
    size_t n = 99;
    assert_int_equal(ledger_history(l, "alice", h, 4, &n), 0);
    assert_int_equal(n, 0);

    assert_int_equal(ledger_deposit(l, "alice", rid("a", 1), 10000, T0 + 1, &res), 0);
    assert_int_equal(res.balance, 10000);
    assert_int_equal(res.replayed, 0);
    assert_int_equal(res.time_ms, T0 + 1);
    int64_t first = res.op_id;
    assert_int_equal(ledger_withdraw(l, "alice", rid("a", 2), 2550, T0 + 2, &res), 0);
    assert_int_equal(res.balance, 7450);
    assert_true(res.op_id > first);
    assert_int_equal(ledger_apply(l, LEDGER_DEPOSIT, "alice", rid("a", 3), 1, T0 + 3, &res), 0);
    assert_int_equal(res.balance, 7451);
    assert_int_equal(balance_of(l, "alice"), 7451);
    /* Withdraw everything: exactly to zero is allowed. */
    assert_int_equal(ledger_withdraw(l, "alice", rid("a", 4), 7451, T0 + 4, &res), 0);
    assert_int_equal(res.balance, 0);
    assert_int_equal(balance_of(l, "alice"), 0);

    /* Accounts are separate; the same request id in two accounts is two requests. */
    assert_int_equal(ledger_deposit(l, "bob", rid("a", 1), 500, T0 + 5, &res), 0);
    assert_int_equal(res.balance, 500);
    assert_int_equal(res.replayed, 0);
    assert_int_equal(balance_of(l, "alice"), 0);
    assert_int_equal(balance_of(l, "bob"), 500);
    assert_int_equal(ledger_errmsg(l)[0], '\0');
    verify_ok(l);
    ledger_close(l);
}

static void test_replay(void **st)
{
    (void)st;
    ledger *l = open_ok();
    ledger_result r1, r2;
    assert_int_equal(ledger_deposit(l, "alice", rid("r", 1), 1000, T0, &r1), 0);
    assert_int_equal(ledger_deposit(l, "alice", rid("r", 1), 1000, T0 + 50, &r2), 0);
    assert_int_equal(r2.replayed, 1);
    assert_int_equal(r2.balance, 1000);
    assert_int_equal(r2.op_id, r1.op_id);
    assert_int_equal(r2.time_ms, T0); /* the original time */
    assert_int_equal(balance_of(l, "alice"), 1000);

    assert_int_equal(ledger_withdraw(l, "alice", rid("r", 2), 300, T0 + 1, &r1), 0);
    assert_int_equal(r1.balance, 700);
    assert_int_equal(ledger_deposit(l, "alice", rid("r", 3), 5, T0 + 2, &r1), 0);
    assert_int_equal(r1.balance, 705);
    /* A late retry of request 2 returns its ORIGINAL resulting balance. */
    assert_int_equal(ledger_withdraw(l, "alice", rid("r", 2), 300, T0 + 3, &r2), 0);
    assert_int_equal(r2.replayed, 1);
    assert_int_equal(r2.balance, 700);
    assert_int_equal(balance_of(l, "alice"), 705);

    /* Many retries, one application. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ledger_withdraw(l, "alice", rid("r", 4), 5, T0 + 4, &r2), 0);
        assert_int_equal(r2.balance, 700);
        assert_int_equal(r2.replayed, i > 0);
    }
    assert_int_equal(balance_of(l, "alice"), 700);

    /* The same id for a different amount or kind is refused, nothing applied. */
    assert_int_equal(ledger_withdraw(l, "alice", rid("r", 4), 6, T0 + 5, &r2),
                     LEDGER_ERR_REQUEST_MISMATCH);
    assert_non_null(strstr(ledger_errmsg(l), "already used"));
    assert_int_equal(r2.replayed, 0);
    assert_int_equal(ledger_deposit(l, "alice", rid("r", 4), 5, T0 + 5, &r2),
                     LEDGER_ERR_REQUEST_MISMATCH);
    assert_int_equal(balance_of(l, "alice"), 700);

    /* Survives a reopen. */
    ledger_close(l);
    l = open_ok();
    assert_int_equal(ledger_deposit(l, "alice", rid("r", 1), 1000, T0 + 9, &r2), 0);
    assert_int_equal(r2.replayed, 1);
    assert_int_equal(r2.balance, 1000);
    assert_int_equal(balance_of(l, "alice"), 700);

    ledger_entry h[10];
    size_t n;
    assert_int_equal(ledger_history(l, "alice", h, 10, &n), 0);
    assert_int_equal(n, 4); /* r1, r2, r3, r4: each once */
    verify_ok(l);
    ledger_close(l);
}

static void test_overdraft(void **st)
{
    (void)st;
    ledger *l = open_ok();
    ledger_result res;
    /* No account yet: a withdrawal is an overdraft. */
    assert_int_equal(ledger_withdraw(l, "carol", rid("o", 1), 1, T0, &res),
                     LEDGER_ERR_INSUFFICIENT_FUNDS);
    assert_int_equal(res.balance, 0);
    assert_int_equal(res.replayed, 0);
    assert_int_equal(ledger_deposit(l, "carol", rid("o", 2), 1000, T0, &res), 0);
    assert_int_equal(ledger_withdraw(l, "carol", rid("o", 3), 1001, T0, &res),
                     LEDGER_ERR_INSUFFICIENT_FUNDS);
    assert_int_equal(res.balance, 1000);
    assert_non_null(strstr(ledger_errmsg(l), "refused: the balance is 10.00"));
    assert_non_null(strstr(ledger_strerror(LEDGER_ERR_INSUFFICIENT_FUNDS), "insufficient funds"));
    assert_int_equal(balance_of(l, "carol"), 1000);

    /* A retry of the refused request gets the same refusal, even after a deposit. */
    assert_int_equal(ledger_deposit(l, "carol", rid("o", 4), 5000, T0, &res), 0);
    assert_int_equal(ledger_withdraw(l, "carol", rid("o", 3), 1001, T0, &res),
                     LEDGER_ERR_INSUFFICIENT_FUNDS);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(res.balance, 1000);
    assert_int_equal(balance_of(l, "carol"), 6000);
    /* A new request for the same amount now succeeds. */
    assert_int_equal(ledger_withdraw(l, "carol", rid("o", 5), 1001, T0, &res), 0);
    assert_int_equal(res.balance, 4999);

    /* The balance limit. */
    assert_int_equal(ledger_deposit(l, "dave", rid("o", 6), LEDGER_MAX_AMOUNT, T0, &res), 0);
    assert_int_equal(res.balance, LEDGER_MAX_BALANCE);
    assert_int_equal(ledger_deposit(l, "dave", rid("o", 7), 1, T0, &res), LEDGER_ERR_BALANCE_LIMIT);
    assert_int_equal(res.balance, LEDGER_MAX_BALANCE);
    assert_int_equal(ledger_deposit(l, "dave", rid("o", 7), 1, T0, &res), LEDGER_ERR_BALANCE_LIMIT);
    assert_int_equal(res.replayed, 1);
    assert_int_equal(ledger_withdraw(l, "dave", rid("o", 8), LEDGER_MAX_AMOUNT, T0, &res), 0);
    assert_int_equal(res.balance, 0);

    /* Refusals are not in the history. */
    ledger_entry h[10];
    size_t n;
    assert_int_equal(ledger_history(l, "carol", h, 10, &n), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(h[i].request_id, rid("o", 3));
    verify_ok(l);
    ledger_close(l);
}

static void test_bad_arguments(void **st)
{
    (void)st;
    ledger *l = open_ok();
    ledger_result res;
    assert_int_equal(ledger_deposit(l, "alice", rid("b", 0), 500, T0, &res), 0);
    static const int64_t amounts[] = {0, -1, -100, LEDGER_MAX_AMOUNT + 1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        assert_int_equal(ledger_deposit(l, "alice", rid("b", 1), amounts[i], T0, &res),
                         LEDGER_ERR_AMOUNT_RANGE);
        assert_int_equal(ledger_withdraw(l, "alice", rid("b", 1), amounts[i], T0, &res),
                         LEDGER_ERR_AMOUNT_RANGE);
    }
    static const char *const ids[] = {"", "short", "0123456789abcde", "0123456789abcdef!",
                                      "0123456789 abcdef", "0123456789abcdef\n",
                                      "00000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        assert_int_equal(ledger_deposit(l, "alice", ids[i], 1, T0, &res), LEDGER_ERR_BAD_REQUEST_ID);
    assert_int_equal(ledger_deposit(l, "alice", NULL, 1, T0, &res), LEDGER_ERR_BAD_REQUEST_ID);
    static const char *const users[] = {"", "a b", "a\nb", "x'; DROP TABLE accounts; --", "é"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        assert_int_equal(ledger_deposit(l, users[i], rid("b", 2), 1, T0, &res), LEDGER_ERR_BAD_USER);
        int64_t b;
        assert_int_equal(ledger_balance(l, users[i], &b), LEDGER_ERR_BAD_USER);
        size_t n;
        ledger_entry e;
        assert_int_equal(ledger_history(l, users[i], &e, 1, &n), LEDGER_ERR_BAD_USER);
    }
    assert_int_equal(ledger_deposit(l, NULL, rid("b", 2), 1, T0, &res), LEDGER_ERR_BAD_USER);
    assert_int_equal(ledger_apply(l, (ledger_kind)3, "alice", rid("b", 2), 1, T0, &res),
                     LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_deposit(l, "alice", rid("b", 2), 1, UINT64_MAX, &res),
                     LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_deposit(l, "alice", rid("b", 2), 1, T0, NULL), LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_deposit(NULL, "alice", rid("b", 2), 1, T0, &res), LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_balance(l, "alice", NULL), LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_history(l, "alice", NULL, 3, NULL), LEDGER_ERR_INVALID_ARG);
    assert_int_equal(ledger_verify(NULL), LEDGER_ERR_INVALID_ARG);
    /* Nothing of it reached the ledger. */
    assert_int_equal(balance_of(l, "alice"), 500);
    ledger_close(l);
    assert_int_equal(raw_int("SELECT count(*) FROM operations"), 1);
    assert_int_equal(raw_int("SELECT count(*) FROM accounts"), 1);
}

static void test_history(void **st)
{
    (void)st;
    ledger *l = open_ok();
    ledger_result res;
    int64_t bal = 0;
    for (int i = 1; i <= 30; i++) {
        int dep = i % 3 != 0;
        int64_t amt = i * 10;
        int r = dep ? ledger_deposit(l, "erin", rid("h", i), amt, T0 + (uint64_t)i * 1000, &res)
                    : ledger_withdraw(l, "erin", rid("h", i), amt, T0 + (uint64_t)i * 1000, &res);
        assert_int_equal(r, 0);
        bal += dep ? amt : -amt;
        assert_int_equal(res.balance, bal);
        /* Interleave another account and a refusal: neither shows up in erin's history. */
        assert_int_equal(ledger_deposit(l, "frank", rid("h", i), 1, T0, &res), 0);
    }
    assert_int_equal(ledger_withdraw(l, "erin", rid("h", 99), LEDGER_MAX_AMOUNT, T0, &res),
                     LEDGER_ERR_INSUFFICIENT_FUNDS);

    ledger_entry h[40];
    size_t n = 0;
    assert_int_equal(ledger_history(l, "erin", h, 5, &n), 0);
    assert_int_equal(n, 5);
    /* Newest first: 30 (withdraw 300), 29, 28, 27 (withdraw), 26. */
    assert_string_equal(h[0].request_id, rid("h", 30));
    assert_int_equal(h[0].kind, LEDGER_WITHDRAW);
    assert_int_equal(h[0].amount, 300);
    assert_int_equal(h[0].balance, bal);
    assert_int_equal(h[0].time_ms, T0 + 30000);
    assert_string_equal(h[1].request_id, rid("h", 29));
    assert_int_equal(h[1].kind, LEDGER_DEPOSIT);
    assert_int_equal(h[1].balance, bal + 300);
    for (size_t i = 1; i < n; i++) {
        assert_true(h[i].op_id < h[i - 1].op_id);
        assert_true(h[i].time_ms < h[i - 1].time_ms);
        /* Each entry's balance is the next one's minus its effect. */
        int64_t effect = h[i - 1].kind == LEDGER_DEPOSIT ? h[i - 1].amount : -h[i - 1].amount;
        assert_int_equal(h[i].balance, h[i - 1].balance - effect);
    }
    /* All of it. */
    assert_int_equal(ledger_history(l, "erin", h, 40, &n), 0);
    assert_int_equal(n, 30);
    assert_string_equal(h[29].request_id, rid("h", 1));
    assert_int_equal(h[29].balance, 10);
    /* max 0 */
    assert_int_equal(ledger_history(l, "erin", NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    /* exactly one */
    assert_int_equal(ledger_history(l, "erin", h, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].request_id, rid("h", 30));
    verify_ok(l);
    ledger_close(l);
}

/* ledger_verify notices a balance that does not follow from the operations,
 * and the operations table refuses to be rewritten. */
static void test_verify_detects(void **st)
{
    (void)st;
    ledger *l = open_ok();
    ledger_result res;
    assert_int_equal(ledger_deposit(l, "gina", rid("v", 1), 1000, T0, &res), 0);
    assert_int_equal(ledger_withdraw(l, "gina", rid("v", 2), 400, T0, &res), 0);
    verify_ok(l);
    ledger_close(l);

    assert_int_not_equal(raw_exec("UPDATE operations SET amount = 1"), SQLITE_OK);
    assert_int_not_equal(raw_exec("DELETE FROM operations"), SQLITE_OK);
    assert_int_not_equal(raw_exec("UPDATE accounts SET balance = -5"), SQLITE_OK); /* CHECK */
    assert_int_equal(raw_exec("UPDATE accounts SET balance = 601"), SQLITE_OK);
    l = open_ok();
    assert_int_equal(ledger_verify(l), LEDGER_ERR_CORRUPT);
    assert_non_null(strstr(ledger_errmsg(l), "stored balance 601, operations sum to 600"));
    ledger_close(l);

    /* A forged operation that does not follow from the balance before it. */
    assert_int_equal(raw_exec("UPDATE accounts SET balance = 600"), SQLITE_OK);
    assert_int_equal(raw_exec("INSERT INTO operations (account_id, request_id, kind, amount, "
                              "outcome, balance, time_ms) VALUES (1, 'forged-0000000000', "
                              "'withdraw', 100, 'applied', 600, 0)"),
                     SQLITE_OK);
    l = open_ok();
    assert_int_equal(ledger_verify(l), LEDGER_ERR_CORRUPT);
    assert_non_null(strstr(ledger_errmsg(l), "does not follow"));
    ledger_close(l);
}

/* ------------------------------------------------------------------------ */
/* Concurrency                                                              */

#define WORKER_TRIES 150

struct worker {
    int id;
    int applied, refused, errors;
    char msg[300];
};

/* Withdraws 1 cent WORKER_TRIES times on its own connection. */
static void *withdraw_loop(void *arg)
{
    struct worker *w = arg;
    ledger *l = NULL;
    if (ledger_open(dbpath, &l, w->msg, sizeof w->msg) != 0) {
        w->errors++;
        return NULL;
    }
    for (int i = 0; i < WORKER_TRIES; i++) {
        ledger_result res;
        char id[40];
        snprintf(id, sizeof id, "worker-%d-%012d", w->id, i);
        int r = ledger_withdraw(l, "shared", id, 1, T0 + (uint64_t)i, &res);
        if (r == 0 && res.replayed == 0)
            w->applied++;
        else if (r == LEDGER_ERR_INSUFFICIENT_FUNDS)
            w->refused++;
        else {
            w->errors++;
            snprintf(w->msg, sizeof w->msg, "withdraw %d: %s: %s", i, ledger_strerror(r),
                     ledger_errmsg(l));
        }
    }
    ledger_close(l);
    return NULL;
}

static void fund(int64_t cents)
{
    ledger *l = open_ok();
    ledger_result res;
    assert_int_equal(ledger_deposit(l, "shared", rid("fund", (int)cents), cents, T0, &res), 0);
    ledger_close(l);
}

/* Two threads, each with its own connection: with 200 cents and 300 tries,
 * exactly 200 succeed, 100 are refused, and the balance ends at 0. */
static void test_concurrent_threads(void **st)
{
    (void)st;
    fund(200);
    pthread_t t[2];
    struct worker w[2] = {{.id = 0}, {.id = 1}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, withdraw_loop, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        if (w[i].errors != 0)
            fail_msg("worker %d: %s", i, w[i].msg);
    assert_int_equal(w[0].applied + w[1].applied, 200);
    assert_int_equal(w[0].refused + w[1].refused, 2 * WORKER_TRIES - 200);
    ledger *l = open_ok();
    assert_int_equal(balance_of(l, "shared"), 0);
    verify_ok(l);
    ledger_close(l);
}

/* The same with two processes; each reports its counts through a pipe. */
static void test_concurrent_processes(void **st)
{
    (void)st;
    fund(250);
    int fds[2][2];
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            struct worker w = {.id = 10 + i};
            withdraw_loop(&w);
            ssize_t ignored = write(fds[i][1], &w, sizeof w);
            (void)ignored;
            _exit(0);
        }
        close(fds[i][1]);
    }
    int applied = 0, refused = 0;
    for (int i = 0; i < 2; i++) {
        struct worker w;
        memset(&w, 0, sizeof w);
        assert_int_equal(read(fds[i][0], &w, sizeof w), (ssize_t)sizeof w);
        close(fds[i][0]);
        int status;
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (w.errors != 0)
            fail_msg("process %d: %s", i, w.msg);
        applied += w.applied;
        refused += w.refused;
    }
    assert_int_equal(applied, 250);
    assert_int_equal(refused, 2 * WORKER_TRIES - 250);
    ledger *l = open_ok();
    assert_int_equal(balance_of(l, "shared"), 0);
    ledger_entry h[300];
    size_t n;
    assert_int_equal(ledger_history(l, "shared", h, 300, &n), 0);
    assert_int_equal(n, 251);
    verify_ok(l);
    ledger_close(l);
}

/* Two processes retrying the SAME requests concurrently: each applied once. */
static void test_concurrent_retries(void **st)
{
    (void)st;
    fund(1000);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            ledger *l = NULL;
            if (ledger_open(dbpath, &l, NULL, 0) != 0)
                _exit(2);
            for (int k = 0; k < 100; k++) {
                ledger_result res;
                int r = ledger_withdraw(l, "shared", rid("same", k), 3, T0, &res);
                if (r != 0 || res.balance != 1000 - 3 * (k + 1))
                    _exit(3);
            }
            ledger_close(l);
            _exit(0);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    ledger *l = open_ok();
    assert_int_equal(balance_of(l, "shared"), 700);
    verify_ok(l);
    ledger_close(l);
}

/* Six processes open a ledger that does not exist yet, all at once: the
 * schema is created exactly once and every deposit lands. */
static void test_concurrent_create(void **st)
{
    (void)st;
    enum { N = 6 };
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) /* EOF: the parent closed it, go */
                _exit(5);
            ledger *l = NULL;
            char err[300];
            if (ledger_open(dbpath, &l, err, sizeof err) != 0) {
                fprintf(stderr, "child %d: %s\n", i, err);
                _exit(2);
            }
            ledger_result res;
            if (ledger_deposit(l, "new", rid("create", i), 100 + i, T0, &res) != 0)
                _exit(3);
            ledger_close(l);
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]); /* releases every child at once */
    for (int i = 0; i < N; i++) {
        int status;
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    ledger *l = open_ok();
    assert_int_equal(balance_of(l, "new"), 6 * 100 + 15);
    verify_ok(l);
    ledger_close(l);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_amount_accepts),
        cmocka_unit_test(test_parse_amount_rejects),
        cmocka_unit_test(test_parse_amount_exhaustive),
        cmocka_unit_test(test_format_amount),
        cmocka_unit_test(test_validation),
        cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overdraft, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_create, setup, teardown),
    };
    return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
