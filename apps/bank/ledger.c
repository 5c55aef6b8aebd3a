/*
 * ledger.c - the bank ledger on SQLite (see ledger.h for the guarantees).
 *
 * Schema, version 1 (PRAGMA user_version = 1, application_id = 'VLGR'):
 *
 *   accounts    one row per user: the current balance.
 *   operations  append-only (triggers refuse UPDATE and DELETE): one row per
 *               request id per account, applied or refused, with the balance
 *               it resulted in (or, for a refusal, the balance it saw).
 *
 * The balance is kept twice on purpose: accounts.balance makes a withdrawal
 * one indexed read, and the chain of operations.balance lets ledger_verify
 * prove that the stored balance is the sum of the applied operations.
 *
 * A mutating call is one BEGIN IMMEDIATE ... COMMIT.  IMMEDIATE takes the
 * database's write lock before the first read, so the balance a withdrawal
 * checks cannot change before it writes: no lost update, no overdraft race,
 * and no SQLITE_BUSY_SNAPSHOT half-way through (a DEFERRED transaction that
 * read first could be refused its upgrade to a writer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ledger.h"

#define LEDGER_APPLICATION_ID 0x564C4752 /* 'VLGR' */

/* The limits below are spelled out in the schema's CHECK constraints. */
_Static_assert(LEDGER_MAX_AMOUNT == INT64_C(10000000000000), "update the schema's CHECKs");
_Static_assert(LEDGER_MAX_USER == 64 && LEDGER_REQUEST_ID_MIN == 16 && LEDGER_REQUEST_ID_MAX == 64,
               "update the schema's CHECKs");

static const char SCHEMA_V1[] =
    "CREATE TABLE accounts (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  user TEXT NOT NULL UNIQUE CHECK (length(user) BETWEEN 1 AND 64),\n"
    "  balance INTEGER NOT NULL DEFAULT 0 CHECK (balance BETWEEN 0 AND 10000000000000),\n"
    "  created_ms INTEGER NOT NULL\n"
    ") STRICT;\n"
    "CREATE TABLE operations (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  account_id INTEGER NOT NULL REFERENCES accounts (id),\n"
    "  request_id TEXT NOT NULL CHECK (length(request_id) BETWEEN 16 AND 64),\n"
    "  kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdraw')),\n"
    "  amount INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 10000000000000),\n"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'insufficient_funds', "
    "'balance_limit')),\n"
    "  balance INTEGER NOT NULL CHECK (balance BETWEEN 0 AND 10000000000000),\n"
    "  time_ms INTEGER NOT NULL,\n"
    "  UNIQUE (account_id, request_id)\n"
    ") STRICT;\n"
    "CREATE INDEX operations_by_account ON operations (account_id, id);\n"
    "CREATE TRIGGER operations_no_update BEFORE UPDATE ON operations\n"
    "  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;\n"
    "CREATE TRIGGER operations_no_delete BEFORE DELETE ON operations\n"
    "  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;\n";

/* Prepared once per handle. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_ACCOUNT_GET,
    ST_ACCOUNT_NEW,
    ST_OP_FIND,
    ST_OP_ADD,
    ST_BALANCE_SET,
    ST_HISTORY,
    ST_COUNT
};

static const char *const STATEMENTS[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_ACCOUNT_GET] = "SELECT id, balance FROM accounts WHERE user = ?1",
    [ST_ACCOUNT_NEW] = "INSERT INTO accounts (user, balance, created_ms) VALUES (?1, 0, ?2)",
    [ST_OP_FIND] = "SELECT id, kind, amount, outcome, balance, time_ms FROM operations "
                   "WHERE account_id = ?1 AND request_id = ?2",
    [ST_OP_ADD] = "INSERT INTO operations (account_id, request_id, kind, amount, outcome, "
                  "balance, time_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_BALANCE_SET] = "UPDATE accounts SET balance = ?2 WHERE id = ?1",
    [ST_HISTORY] = "SELECT o.id, o.time_ms, o.kind, o.amount, o.balance, o.request_id "
                   "FROM operations o JOIN accounts a ON a.id = o.account_id "
                   "WHERE a.user = ?1 AND o.outcome = 'applied' ORDER BY o.id DESC LIMIT ?2",
};

struct ledger {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char msg[512];
};

/* Outcome names stored in operations.outcome, by refusal code. */
static const char OUTCOME_APPLIED[] = "applied";
static const char OUTCOME_NO_FUNDS[] = "insufficient_funds";
static const char OUTCOME_LIMIT[] = "balance_limit";

const char *ledger_strerror(int err)
{
    switch (err) {
    case LEDGER_OK: return "success";
    case LEDGER_ERR_INSUFFICIENT_FUNDS:
        return "insufficient funds: the withdrawal is larger than the balance; nothing was "
               "withdrawn";
    case LEDGER_ERR_BALANCE_LIMIT:
        return "balance limit: the deposit would take the balance above 100000000000.00; nothing "
               "was deposited";
    case LEDGER_ERR_AMOUNT_SYNTAX:
        return "malformed amount: expected digits with at most two decimals, e.g. 12 or 12.34";
    case LEDGER_ERR_AMOUNT_RANGE:
        return "amount out of range: it must be at least 0.01 and at most 100000000000.00";
    case LEDGER_ERR_BAD_REQUEST_ID:
        return "malformed request id: expected 16 to 64 characters of A-Z a-z 0-9 _ -";
    case LEDGER_ERR_REQUEST_MISMATCH:
        return "request id already used for a different operation";
    case LEDGER_ERR_BAD_USER:
        return "malformed user name: expected 1 to 64 characters of A-Z a-z 0-9 . _ -";
    case LEDGER_ERR_INVALID_ARG: return "invalid argument";
    case LEDGER_ERR_BUSY: return "the ledger database is busy (locked by another connection)";
    case LEDGER_ERR_DB: return "ledger database error";
    case LEDGER_ERR_CORRUPT: return "the ledger database is corrupt or inconsistent";
    case LEDGER_ERR_SCHEMA: return "not a Veil ledger database, or one made by a newer version";
    case LEDGER_ERR_NOMEM: return "out of memory";
    case LEDGER_ERR_RNG: return "the random generator failed";
    default: return "unknown ledger error";
    }
}

const char *ledger_kind_name(ledger_kind kind)
{
    switch (kind) {
    case LEDGER_DEPOSIT: return "deposit";
    case LEDGER_WITHDRAW: return "withdraw";
    }
    return "?";
}

static int kind_from_name(const unsigned char *name, ledger_kind *kind)
{
    if (name == NULL)
        return -1;
    if (strcmp((const char *)name, "deposit") == 0)
        *kind = LEDGER_DEPOSIT;
    else if (strcmp((const char *)name, "withdraw") == 0)
        *kind = LEDGER_WITHDRAW;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Validation and amounts                                                   */

static int is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int ledger_user_valid(const char *name)
{
    if (name == NULL)
        return 0;
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        if (n >= LEDGER_MAX_USER)
            return 0;
        char c = name[n];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return n >= 1;
}

int ledger_request_id_valid(const char *id)
{
    if (id == NULL)
        return 0;
    size_t n = 0;
    for (; id[n] != '\0'; n++) {
        if (n >= LEDGER_REQUEST_ID_MAX)
            return 0;
        if (!is_alnum(id[n]) && id[n] != '_' && id[n] != '-')
            return 0;
    }
    return n >= LEDGER_REQUEST_ID_MIN;
}

int ledger_request_id_new(int (*rng)(void *user, uint8_t *out, size_t len), void *rng_user,
                          char out[LEDGER_REQUEST_ID_NEW_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[LEDGER_REQUEST_ID_NEW_LEN / 2];
    if (rng == NULL || out == NULL)
        return LEDGER_ERR_INVALID_ARG;
    if (rng(rng_user, r, sizeof r) != 0)
        return LEDGER_ERR_RNG;
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[LEDGER_REQUEST_ID_NEW_LEN] = '\0';
    return 0;
}

int ledger_parse_amount(const char *text, int64_t *cents)
{
    if (text == NULL || cents == NULL)
        return LEDGER_ERR_INVALID_ARG;
    /* Syntax first, so "99999999999999999999x" is malformed, not too large. */
    const char *p = text;
    size_t int_digits = 0, frac_digits = 0;
    while (p[int_digits] >= '0' && p[int_digits] <= '9')
        int_digits++;
    if (int_digits == 0)
        return LEDGER_ERR_AMOUNT_SYNTAX;
    const char *q = p + int_digits;
    if (*q == '.') {
        q++;
        while (q[frac_digits] >= '0' && q[frac_digits] <= '9')
            frac_digits++;
        if (frac_digits == 0 || frac_digits > 2)
            return LEDGER_ERR_AMOUNT_SYNTAX;
        q += frac_digits;
    }
    if (*q != '\0')
        return LEDGER_ERR_AMOUNT_SYNTAX;

    /* Value: units bounded before each multiplication, so nothing overflows. */
    int64_t units = 0;
    for (size_t i = 0; i < int_digits; i++) {
        if (units > LEDGER_MAX_AMOUNT / 100)
            return LEDGER_ERR_AMOUNT_RANGE; /* leading zeros keep units at 0: no false alarm */
        units = units * 10 + (p[i] - '0');
    }
    if (units > LEDGER_MAX_AMOUNT / 100)
        return LEDGER_ERR_AMOUNT_RANGE;
    int64_t frac = 0;
    const char *f = p + int_digits + 1;
    if (frac_digits >= 1)
        frac = (f[0] - '0') * 10;
    if (frac_digits == 2)
        frac += f[1] - '0';
    int64_t v = units * 100 + frac;
    if (v <= 0 || v > LEDGER_MAX_AMOUNT)
        return LEDGER_ERR_AMOUNT_RANGE;
    *cents = v;
    return 0;
}

void ledger_format_amount(int64_t cents, char out[LEDGER_AMOUNT_STRLEN])
{
    /* The magnitude as unsigned, so INT64_MIN has one too. */
    uint64_t m = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(out, LEDGER_AMOUNT_STRLEN, "%s%llu.%02u", cents < 0 ? "-" : "",
             (unsigned long long)(m / 100), (unsigned)(m % 100));
}

/* ------------------------------------------------------------------------ */
/* Errors from SQLite                                                       */

static void setmsg(ledger *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void setmsg(ledger *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
}

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return LEDGER_ERR_BUSY;
    case SQLITE_NOMEM: return LEDGER_ERR_NOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return LEDGER_ERR_CORRUPT;
    default: return LEDGER_ERR_DB;
    }
}

/* Records what failed with SQLite's message and returns the LEDGER_ERR_* code. */
static int db_fail(ledger *l, int rc, const char *what)
{
    setmsg(l, "%s: %s (SQLite error %d)", what, sqlite3_errmsg(l->db), rc);
    return map_rc(rc);
}

/* Resets a statement after use so it holds no read snapshot or lock. */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. */
static int run(ledger *l, int which, const char *what)
{
    sqlite3_stmt *st = l->st[which];
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db_fail(l, rc, what);
    done(st);
    return ret;
}

static void rollback(ledger *l)
{
    if (!sqlite3_get_autocommit(l->db)) {
        sqlite3_step(l->st[ST_ROLLBACK]); /* the error being reported is the first one */
        done(l->st[ST_ROLLBACK]);
    }
}

/* Runs SQL text (for set-up only); returns 0 or a LEDGER_ERR_* code. */
static int exec(ledger *l, const char *sql, const char *what)
{
    char *emsg = NULL;
    int rc = sqlite3_exec(l->db, sql, NULL, NULL, &emsg);
    if (rc != SQLITE_OK) {
        setmsg(l, "%s: %s (SQLite error %d)", what, emsg != NULL ? emsg : sqlite3_errstr(rc), rc);
        sqlite3_free(emsg);
        return map_rc(rc);
    }
    return 0;
}

/* Runs SQL whose failure is not the error being reported (a ROLLBACK after one). */
static void exec_quiet(ledger *l, const char *sql) { (void)sqlite3_exec(l->db, sql, NULL, NULL, NULL); }

/* Reads a single-integer PRAGMA. */
static int pragma_int(ledger *l, const char *sql, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(l, rc, sql);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int ret = db_fail(l, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
        sqlite3_finalize(st);
        return ret;
    }
    *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Open, schema                                                             */

/* Creates the schema in a fresh database, or checks an existing one. */
static int schema_setup(ledger *l)
{
    int64_t version = 0, appid = 0, objects = 0;
    int ret = pragma_int(l, "PRAGMA user_version", &version);
    if (ret != 0)
        return ret;
    if (version == 0) {
        /* Possibly a new file: decide under the write lock, so two processes
           opening a new ledger at once create the schema exactly once. */
        if ((ret = exec(l, "BEGIN IMMEDIATE", "cannot lock the new ledger")) != 0)
            return ret;
        if ((ret = pragma_int(l, "PRAGMA user_version", &version)) != 0 ||
            (ret = pragma_int(l, "SELECT count(*) FROM sqlite_schema", &objects)) != 0) {
            exec_quiet(l, "ROLLBACK");
            return ret;
        }
        if (version == 0 && objects != 0) {
            exec_quiet(l, "ROLLBACK");
            setmsg(l, "the database holds tables but is not a Veil ledger (user_version 0)");
            return LEDGER_ERR_SCHEMA;
        }
        if (version == 0) {
            char pragmas[128];
            snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                     LEDGER_APPLICATION_ID, LEDGER_SCHEMA_VERSION);
            if ((ret = exec(l, SCHEMA_V1, "cannot create the ledger schema")) != 0 ||
                (ret = exec(l, pragmas, "cannot set the schema version")) != 0) {
                exec_quiet(l, "ROLLBACK");
                return ret;
            }
        }
        if ((ret = exec(l, "COMMIT", "cannot commit the ledger schema")) != 0) {
            exec_quiet(l, "ROLLBACK");
            return ret;
        }
        version = LEDGER_SCHEMA_VERSION; /* ours, or another process's, just made */
    }
    if ((ret = pragma_int(l, "PRAGMA application_id", &appid)) != 0)
        return ret;
    if (appid != LEDGER_APPLICATION_ID) {
        setmsg(l, "the database is not a Veil ledger (application_id 0x%08llx)",
               (unsigned long long)appid);
        return LEDGER_ERR_SCHEMA;
    }
    if (version != LEDGER_SCHEMA_VERSION) {
        setmsg(l, "the ledger has schema version %lld; this program knows version %d%s",
               (long long)version, LEDGER_SCHEMA_VERSION,
               version > LEDGER_SCHEMA_VERSION ? " (it was made by a newer Veil)" : "");
        return LEDGER_ERR_SCHEMA;
    }
    return 0;
}

/*
 * WAL: readers never block the writer; with synchronous=FULL the WAL is
 * fsync'ed at every COMMIT, so a returned commit is on disk.  Switching a
 * new file to WAL needs an exclusive lock and SQLite does not call the busy
 * handler for it, so when several processes open a new ledger at once the
 * losers retry here, within the same time budget.
 */
static int set_wal(ledger *l)
{
    int waited = 0, delay = 1;
    for (;;) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(st, 0);
            int ok = mode != NULL && strcmp((const char *)mode, "wal") == 0;
            if (!ok)
                setmsg(l, "cannot set WAL mode (journal mode is %s)",
                       mode != NULL ? (const char *)mode : "?");
            sqlite3_finalize(st);
            return ok ? 0 : LEDGER_ERR_DB;
        }
        int ret = db_fail(l, rc, "cannot set WAL mode");
        sqlite3_finalize(st);
        if (ret != LEDGER_ERR_BUSY || waited >= LEDGER_BUSY_TIMEOUT_MS)
            return ret;
        sqlite3_sleep(delay);
        waited += delay;
        delay = delay < 50 ? delay * 2 : 50;
    }
}

static void report(char *err, size_t errlen, const char *path, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "ledger %s: %s", path, msg);
}

int ledger_open(const char *path, ledger **out, char *err, size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL) {
        report(err, errlen, "(null)", ledger_strerror(LEDGER_ERR_INVALID_ARG));
        return LEDGER_ERR_INVALID_ARG;
    }
    /* Create the file ourselves with mode 0600: SQLite would use 0644 (less
       the umask), and it gives the -wal and -shm files the main file's mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        char m[300];
        snprintf(m, sizeof m, "cannot open: %s", strerror(errno));
        report(err, errlen, path, m);
        return LEDGER_ERR_DB;
    }
    close(fd);

    ledger *l = calloc(1, sizeof *l);
    if (l == NULL) {
        report(err, errlen, path, ledger_strerror(LEDGER_ERR_NOMEM));
        return LEDGER_ERR_NOMEM;
    }
    int ret;
    int rc = sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        ret = l->db != NULL ? db_fail(l, rc, "cannot open") : LEDGER_ERR_NOMEM;
        if (l->db == NULL)
            setmsg(l, "%s", ledger_strerror(ret));
        goto fail;
    }
    sqlite3_extended_result_codes(l->db, 1);
    /* Waits (sleeping, with back-off) when another connection holds the lock. */
    sqlite3_busy_timeout(l->db, LEDGER_BUSY_TIMEOUT_MS);
    /* No writable_schema tricks, no schema-defined functions run with our rights. */
    sqlite3_db_config(l->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(l->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    if ((ret = set_wal(l)) != 0)
        goto fail;
    if ((ret = exec(l, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    "cannot set the database options")) != 0)
        goto fail;
    int64_t sync = -1, fk = -1;
    if ((ret = pragma_int(l, "PRAGMA synchronous", &sync)) != 0 ||
        (ret = pragma_int(l, "PRAGMA foreign_keys", &fk)) != 0)
        goto fail;
    if (sync != 2 || fk != 1) {
        setmsg(l, "the database refused synchronous=FULL or foreign_keys=ON");
        ret = LEDGER_ERR_DB;
        goto fail;
    }
    if ((ret = schema_setup(l)) != 0)
        goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(l->db, STATEMENTS[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i],
                                NULL);
        if (rc != SQLITE_OK) {
            ret = db_fail(l, rc, "cannot prepare a statement");
            goto fail;
        }
    }
    l->msg[0] = '\0';
    *out = l;
    return 0;
fail:
    report(err, errlen, path, l->msg);
    ledger_close(l);
    return ret;
}

void ledger_close(ledger *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(l->st[i]);
    /* Leaves the WAL for the next opener when another connection is open;
       the last one to close checkpoints it into the main file. */
    sqlite3_close(l->db);
    free(l);
}

const char *ledger_errmsg(const ledger *l) { return l != NULL ? l->msg : ""; }

/* ------------------------------------------------------------------------ */
/* Deposits and withdrawals                                                 */

/* Maps a stored outcome to the call's return value. */
static int outcome_code(const unsigned char *outcome)
{
    if (outcome == NULL)
        return 1;
    if (strcmp((const char *)outcome, OUTCOME_APPLIED) == 0)
        return 0;
    if (strcmp((const char *)outcome, OUTCOME_NO_FUNDS) == 0)
        return LEDGER_ERR_INSUFFICIENT_FUNDS;
    if (strcmp((const char *)outcome, OUTCOME_LIMIT) == 0)
        return LEDGER_ERR_BALANCE_LIMIT;
    return 1;
}

/*
 * Looks request_id up in the account.  Returns 1 with *code and *res set if
 * it was processed before, 0 if it is new, or a LEDGER_ERR_* code.
 */
static int find_request(ledger *l, int64_t account, const char *request_id, ledger_kind kind,
                        int64_t amount, int *code, ledger_result *res)
{
    sqlite3_stmt *st = l->st[ST_OP_FIND];
    sqlite3_bind_int64(st, 1, account);
    sqlite3_bind_text(st, 2, request_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        done(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        int ret = db_fail(l, rc, "cannot look the request id up");
        done(st);
        return ret;
    }
    ledger_kind old_kind;
    int64_t old_amount = sqlite3_column_int64(st, 2);
    int c = outcome_code(sqlite3_column_text(st, 3));
    if (kind_from_name(sqlite3_column_text(st, 1), &old_kind) != 0 || c > 0) {
        setmsg(l, "operation %lld has an unknown kind or outcome",
               (long long)sqlite3_column_int64(st, 0));
        done(st);
        return LEDGER_ERR_CORRUPT;
    }
    if (old_kind != kind || old_amount != amount) {
        char a[LEDGER_AMOUNT_STRLEN];
        ledger_format_amount(old_amount, a);
        setmsg(l, "request id %s was already used for operation %lld, a %s of %s", request_id,
               (long long)sqlite3_column_int64(st, 0), ledger_kind_name(old_kind), a);
        done(st);
        return LEDGER_ERR_REQUEST_MISMATCH;
    }
    res->op_id = sqlite3_column_int64(st, 0);
    res->balance = sqlite3_column_int64(st, 4);
    res->time_ms = (uint64_t)sqlite3_column_int64(st, 5);
    res->replayed = 1;
    *code = c;
    done(st);
    return 1;
}

/* The body of the transaction; the caller begins it and commits or rolls back. */
static int apply_locked(ledger *l, ledger_kind kind, const char *user, const char *request_id,
                        int64_t amount, uint64_t now_ms, ledger_result *res, int *code)
{
    int64_t account, balance;
    sqlite3_stmt *st = l->st[ST_ACCOUNT_GET];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        account = sqlite3_column_int64(st, 0);
        balance = sqlite3_column_int64(st, 1);
        done(st);
        int r = find_request(l, account, request_id, kind, amount, code, res);
        if (r != 0)
            return r < 0 ? r : 0; /* a replay: nothing to write */
    } else if (rc == SQLITE_DONE) {
        done(st);
        st = l->st[ST_ACCOUNT_NEW];
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)now_ms);
        rc = sqlite3_step(st);
        done(st);
        if (rc != SQLITE_DONE)
            return db_fail(l, rc, "cannot create the account");
        account = sqlite3_last_insert_rowid(l->db);
        balance = 0;
    } else {
        int ret = db_fail(l, rc, "cannot read the account");
        done(st);
        return ret;
    }
    if (balance < 0 || balance > LEDGER_MAX_BALANCE) {
        setmsg(l, "account of %s has balance %lld, out of range", user, (long long)balance);
        return LEDGER_ERR_CORRUPT;
    }

    /* Both bounded by 10^13, so neither expression can overflow. */
    const char *outcome = OUTCOME_APPLIED;
    int64_t after = balance;
    *code = 0;
    if (kind == LEDGER_WITHDRAW) {
        if (amount > balance) {
            outcome = OUTCOME_NO_FUNDS;
            *code = LEDGER_ERR_INSUFFICIENT_FUNDS;
        } else {
            after = balance - amount;
        }
    } else {
        if (amount > LEDGER_MAX_BALANCE - balance) {
            outcome = OUTCOME_LIMIT;
            *code = LEDGER_ERR_BALANCE_LIMIT;
        } else {
            after = balance + amount;
        }
    }

    /* A refusal is recorded too, so a retry of it gets the same answer. */
    st = l->st[ST_OP_ADD];
    sqlite3_bind_int64(st, 1, account);
    sqlite3_bind_text(st, 2, request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ledger_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, amount);
    sqlite3_bind_text(st, 5, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, after);
    sqlite3_bind_int64(st, 7, (int64_t)now_ms);
    rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return db_fail(l, rc, "cannot record the operation");
    res->op_id = sqlite3_last_insert_rowid(l->db);
    res->balance = after;
    res->time_ms = now_ms;
    res->replayed = 0;
    if (*code == 0) {
        st = l->st[ST_BALANCE_SET];
        sqlite3_bind_int64(st, 1, account);
        sqlite3_bind_int64(st, 2, after);
        rc = sqlite3_step(st);
        done(st);
        if (rc != SQLITE_DONE)
            return db_fail(l, rc, "cannot update the balance");
        if (sqlite3_changes(l->db) != 1) {
            setmsg(l, "account of %s vanished during the transaction", user);
            return LEDGER_ERR_CORRUPT;
        }
    }
    return 0;
}

int ledger_apply(ledger *l, ledger_kind kind, const char *user, const char *request_id,
                 int64_t amount, uint64_t now_ms, ledger_result *res)
{
    if (l == NULL || res == NULL || (kind != LEDGER_DEPOSIT && kind != LEDGER_WITHDRAW) ||
        now_ms > (uint64_t)INT64_MAX) {
        if (l != NULL)
            setmsg(l, "%s", ledger_strerror(LEDGER_ERR_INVALID_ARG));
        return LEDGER_ERR_INVALID_ARG;
    }
    memset(res, 0, sizeof *res);
    l->msg[0] = '\0';
    if (!ledger_user_valid(user)) {
        setmsg(l, "%s", ledger_strerror(LEDGER_ERR_BAD_USER));
        return LEDGER_ERR_BAD_USER;
    }
    if (!ledger_request_id_valid(request_id)) {
        setmsg(l, "%s", ledger_strerror(LEDGER_ERR_BAD_REQUEST_ID));
        return LEDGER_ERR_BAD_REQUEST_ID;
    }
    if (amount <= 0 || amount > LEDGER_MAX_AMOUNT) {
        setmsg(l, "%s", ledger_strerror(LEDGER_ERR_AMOUNT_RANGE));
        return LEDGER_ERR_AMOUNT_RANGE;
    }
    if (!sqlite3_get_autocommit(l->db)) {
        setmsg(l, "a transaction is already open on this handle");
        return LEDGER_ERR_INVALID_ARG;
    }

    int ret = run(l, ST_BEGIN, "cannot begin the transaction");
    if (ret != 0)
        return ret;
    int code = 0;
    ret = apply_locked(l, kind, user, request_id, amount, now_ms, res, &code);
    if (ret != 0 || res->replayed) {
        /* An error, or a replay that wrote nothing: release the lock. */
        rollback(l);
        if (ret != 0)
            memset(res, 0, sizeof *res);
        return ret != 0 ? ret : code;
    }
    /* Acknowledged only once COMMIT returned: then the WAL frame is fsync'ed. */
    ret = run(l, ST_COMMIT, "cannot commit the operation");
    if (ret != 0) {
        rollback(l);
        memset(res, 0, sizeof *res);
        return ret;
    }
    if (code != 0) {
        char a[LEDGER_AMOUNT_STRLEN], b[LEDGER_AMOUNT_STRLEN];
        ledger_format_amount(amount, a);
        ledger_format_amount(res->balance, b);
        setmsg(l, "%s of %s refused: the balance is %s", ledger_kind_name(kind), a, b);
    }
    return code;
}

int ledger_deposit(ledger *l, const char *user, const char *request_id, int64_t amount,
                   uint64_t now_ms, ledger_result *res)
{
    return ledger_apply(l, LEDGER_DEPOSIT, user, request_id, amount, now_ms, res);
}

int ledger_withdraw(ledger *l, const char *user, const char *request_id, int64_t amount,
                    uint64_t now_ms, ledger_result *res)
{
    return ledger_apply(l, LEDGER_WITHDRAW, user, request_id, amount, now_ms, res);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

int ledger_balance(ledger *l, const char *user, int64_t *balance)
{
    if (l == NULL || balance == NULL)
        return LEDGER_ERR_INVALID_ARG;
    l->msg[0] = '\0';
    if (!ledger_user_valid(user)) {
        setmsg(l, "%s", ledger_strerror(LEDGER_ERR_BAD_USER));
        return LEDGER_ERR_BAD_USER;
    }
    sqlite3_stmt *st = l->st[ST_ACCOUNT_GET];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW)
        *balance = sqlite3_column_int64(st, 1);
    else if (rc == SQLITE_DONE)
        *balance = 0;
    else
        ret = db_fail(l, rc, "cannot read the balance");
    done(st);
    return ret;
}

int ledger_history(ledger *l, const char *user, ledger_entry *out, size_t max, size_t *n)
{
    if (l == NULL || n == NULL || (out == NULL && max > 0))
        return LEDGER_ERR_INVALID_ARG;
    *n = 0;
    l->msg[0] = '\0';
    if (!ledger_user_valid(user)) {
        setmsg(l, "%s", ledger_strerror(LEDGER_ERR_BAD_USER));
        return LEDGER_ERR_BAD_USER;
    }
    if (max == 0)
        return 0;
    sqlite3_stmt *st = l->st[ST_HISTORY];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    int rc = SQLITE_DONE, ret = 0;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ledger_entry *e = &out[*n];
        memset(e, 0, sizeof *e);
        e->op_id = sqlite3_column_int64(st, 0);
        e->time_ms = (uint64_t)sqlite3_column_int64(st, 1);
        e->amount = sqlite3_column_int64(st, 3);
        e->balance = sqlite3_column_int64(st, 4);
        const unsigned char *rid = sqlite3_column_text(st, 5);
        if (kind_from_name(sqlite3_column_text(st, 2), &e->kind) != 0 || rid == NULL ||
            !ledger_request_id_valid((const char *)rid)) {
            setmsg(l, "operation %lld is malformed", (long long)e->op_id);
            ret = LEDGER_ERR_CORRUPT;
            break;
        }
        memcpy(e->request_id, rid, strlen((const char *)rid) + 1);
        (*n)++;
    }
    if (ret == 0 && *n < max && rc != SQLITE_DONE)
        ret = db_fail(l, rc, "cannot read the history");
    done(st);
    if (ret != 0)
        *n = 0;
    return ret;
}

/* PRAGMA integrity_check / foreign_key_check: 0 if clean, else CORRUPT with the first row. */
static int check_pragma(ledger *l, const char *sql, int expect_ok)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(l, rc, sql);
    int ret = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (!expect_ok || t == NULL || strcmp((const char *)t, "ok") != 0) {
            setmsg(l, "%s: %s", sql, t != NULL ? (const char *)t : "(row)");
            ret = LEDGER_ERR_CORRUPT;
        }
    } else if (rc == SQLITE_DONE) {
        if (expect_ok) {
            setmsg(l, "%s returned nothing", sql);
            ret = LEDGER_ERR_CORRUPT;
        }
    } else {
        ret = db_fail(l, rc, sql);
    }
    sqlite3_finalize(st);
    return ret;
}

/* Replays every account's operations and compares with what is stored. */
static int check_balances(ledger *l)
{
    static const char sql[] =
        "SELECT a.id, a.user, a.balance, o.id, o.kind, o.amount, o.outcome, o.balance "
        "FROM accounts a LEFT JOIN operations o ON o.account_id = a.id ORDER BY a.id, o.id";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(l, rc, "cannot read the ledger");
    int ret = 0;
    int64_t account = -1, stored = 0, running = 0;
    char user[LEDGER_MAX_USER + 1] = "";
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            break;
        int64_t acc = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -2;
        if (account >= 0 && acc != account && running != stored) {
            setmsg(l, "account of %s: stored balance %lld, operations sum to %lld", user,
                   (long long)stored, (long long)running);
            ret = LEDGER_ERR_CORRUPT;
            break;
        }
        if (rc != SQLITE_ROW)
            break;
        if (acc != account) {
            account = acc;
            stored = sqlite3_column_int64(st, 2);
            running = 0;
            const unsigned char *u = sqlite3_column_text(st, 1);
            snprintf(user, sizeof user, "%s", u != NULL ? (const char *)u : "?");
        }
        if (sqlite3_column_type(st, 3) == SQLITE_NULL)
            continue; /* an account without operations */
        int64_t op = sqlite3_column_int64(st, 3);
        int64_t amount = sqlite3_column_int64(st, 5);
        int64_t recorded = sqlite3_column_int64(st, 7);
        ledger_kind kind;
        int code = outcome_code(sqlite3_column_text(st, 6));
        if (kind_from_name(sqlite3_column_text(st, 4), &kind) != 0 || code > 0 || amount <= 0 ||
            amount > LEDGER_MAX_AMOUNT) {
            setmsg(l, "operation %lld is malformed", (long long)op);
            ret = LEDGER_ERR_CORRUPT;
            break;
        }
        int64_t next = running;
        int ok;
        if (code == 0) {
            next = kind == LEDGER_DEPOSIT ? running + amount : running - amount;
            ok = next >= 0 && next <= LEDGER_MAX_BALANCE;
        } else if (code == LEDGER_ERR_INSUFFICIENT_FUNDS) {
            ok = kind == LEDGER_WITHDRAW && amount > running;
        } else {
            ok = kind == LEDGER_DEPOSIT && amount > LEDGER_MAX_BALANCE - running;
        }
        if (!ok || recorded != next) {
            setmsg(l, "account of %s: operation %lld (%s) does not follow from balance %lld", user,
                   (long long)op, ledger_kind_name(kind), (long long)running);
            ret = LEDGER_ERR_CORRUPT;
            break;
        }
        running = next;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = db_fail(l, rc, "cannot read the ledger");
    sqlite3_finalize(st);
    return ret;
}

int ledger_verify(ledger *l)
{
    if (l == NULL)
        return LEDGER_ERR_INVALID_ARG;
    l->msg[0] = '\0';
    if (!sqlite3_get_autocommit(l->db)) {
        setmsg(l, "a transaction is already open on this handle");
        return LEDGER_ERR_INVALID_ARG;
    }
    /* One read transaction: every check sees the same snapshot. */
    int ret = exec(l, "BEGIN", "cannot begin a read transaction");
    if (ret != 0)
        return ret;
    if ((ret = check_pragma(l, "PRAGMA integrity_check", 1)) == 0 &&
        (ret = check_pragma(l, "PRAGMA foreign_key_check", 0)) == 0)
        ret = check_balances(l);
    exec_quiet(l, "COMMIT"); /* read-only: nothing to lose */
    rollback(l);
    return ret;
}
