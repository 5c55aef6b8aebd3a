/*
 * ledger.h - the bank service's ledger: accounts per authenticated user in
 * an embedded SQLite database, amounts in integer cents.
 *
 * Guarantees:
 *  - Durable: the database runs in WAL mode with synchronous=FULL, so once
 *    ledger_deposit()/ledger_withdraw() has returned (the COMMIT is on disk),
 *    the operation survives a SIGKILL of the process (tested), and a power
 *    cut as far as the disk honours fsync.
 *  - Atomic and serialised: every mutating operation is ONE transaction,
 *    begun with BEGIN IMMEDIATE, so two connections (threads or processes)
 *    working on one account never lose an update; a connection that finds
 *    the database locked waits up to LEDGER_BUSY_TIMEOUT_MS.
 *  - Idempotent: each mutating operation carries a client-chosen request id,
 *    unique per account.  Repeating a request (same user, id, kind and amount)
 *    applies nothing and returns the ORIGINAL outcome, marked as a replay:
 *    the same resulting balance, or the same refusal.  Reusing an id for a
 *    different operation is an error (LEDGER_ERR_REQUEST_MISMATCH).
 *  - Never negative: an overdraft is refused and recorded, the balance is
 *    unchanged; balances stay within [0, LEDGER_MAX_BALANCE].
 *
 * A ledger handle is one SQLite connection: use it from one thread at a time
 * (open one handle per thread or process; they may share the file).
 *
 * Errors: functions returning int return 0 (LEDGER_OK) or a negative
 * LEDGER_ERR_* code; ledger_strerror() names it, and ledger_errmsg() gives
 * the details of the last error on a handle (SQLite's own message, say).
 */
#ifndef VEIL_LEDGER_H
#define VEIL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LEDGER_MUST_CHECK __attribute__((warn_unused_result))
#else
#define LEDGER_MUST_CHECK
#endif

/* Largest amount of one operation and largest balance, in cents:
 * 10^13 cents = 100 000 000 000.00.  Sums of balances never overflow int64. */
#define LEDGER_MAX_AMOUNT INT64_C(10000000000000)
#define LEDGER_MAX_BALANCE LEDGER_MAX_AMOUNT

/* Account owners: the authenticated user name, 1..LEDGER_MAX_USER bytes of
 * [A-Za-z0-9._-] (the same rule as the user directory). */
#define LEDGER_MAX_USER 64

/* Request ids: LEDGER_REQUEST_ID_MIN..LEDGER_REQUEST_ID_MAX characters of
 * [A-Za-z0-9_-], compared exactly (case matters).  32 hex digits (16 random
 * bytes, what ledger_request_id_new makes), a UUID, or 16 random bytes in
 * base64url all fit. */
#define LEDGER_REQUEST_ID_MIN 16
#define LEDGER_REQUEST_ID_MAX 64

/* The schema this code creates and understands (PRAGMA user_version). */
#define LEDGER_SCHEMA_VERSION 1
/* How long a connection waits for another one's transaction. */
#define LEDGER_BUSY_TIMEOUT_MS 10000

/* Errors.  The two refusals an account holder can cause are listed first. */
enum {
    LEDGER_OK = 0,
    LEDGER_ERR_INSUFFICIENT_FUNDS = -1, /* withdrawal above the balance (refused, recorded) */
    LEDGER_ERR_BALANCE_LIMIT = -2,      /* deposit past LEDGER_MAX_BALANCE (refused, recorded) */
    LEDGER_ERR_AMOUNT_SYNTAX = -3,      /* typed amount is not digits[.d[d]] */
    LEDGER_ERR_AMOUNT_RANGE = -4,       /* amount zero, negative, or above LEDGER_MAX_AMOUNT */
    LEDGER_ERR_BAD_REQUEST_ID = -5,     /* request id of the wrong length or characters */
    LEDGER_ERR_REQUEST_MISMATCH = -6,   /* request id already used for another kind or amount */
    LEDGER_ERR_BAD_USER = -7,           /* user name empty, too long or with other characters */
    LEDGER_ERR_INVALID_ARG = -8,        /* NULL pointer or bad kind: a bug in the caller */
    LEDGER_ERR_BUSY = -9,               /* still locked after LEDGER_BUSY_TIMEOUT_MS: retry */
    LEDGER_ERR_DB = -10,                /* SQLite error (I/O, disk full, ...): see ledger_errmsg */
    LEDGER_ERR_CORRUPT = -11,           /* file is not a database, or the ledger is inconsistent */
    LEDGER_ERR_SCHEMA = -12,            /* not a Veil ledger, or made by a newer version */
    LEDGER_ERR_NOMEM = -13,
    LEDGER_ERR_RNG = -14,               /* the random callback failed */
};

/* Text for a LEDGER_ERR_* code (static, never NULL). */
const char *ledger_strerror(int err);

typedef enum ledger_kind {
    LEDGER_DEPOSIT = 1,
    LEDGER_WITHDRAW = 2,
} ledger_kind;

/* "deposit" or "withdraw" ("?" for anything else). */
const char *ledger_kind_name(ledger_kind kind);

typedef struct ledger ledger;

/*
 * Opens (creating it with mode 0600 if missing) the ledger database at path,
 * sets WAL, synchronous=FULL, foreign keys and the busy timeout, and creates
 * or checks the schema.  On failure *out is NULL and, if err is not NULL, a
 * message of up to errlen bytes describes it.
 * Returns 0, LEDGER_ERR_DB, LEDGER_ERR_BUSY, LEDGER_ERR_CORRUPT,
 * LEDGER_ERR_SCHEMA, LEDGER_ERR_NOMEM, LEDGER_ERR_INVALID_ARG.
 */
int ledger_open(const char *path, ledger **out, char *err, size_t errlen) LEDGER_MUST_CHECK;
/* Closes the connection (NULL is fine). */
void ledger_close(ledger *l);
/* Details of the last error on l ("" if none); valid until the next call on l. */
const char *ledger_errmsg(const ledger *l);

/* The outcome of a deposit or withdrawal, fresh or replayed. */
typedef struct ledger_result {
    int64_t balance;  /* after the operation; for a refusal, the unchanged balance */
    int64_t op_id;    /* the operation's number in the ledger (increasing) */
    uint64_t time_ms; /* when it was first processed (the now_ms of that call) */
    int replayed;     /* 1: the request id was seen before; nothing was done now */
} ledger_result;

/*
 * Deposits or withdraws amount cents (1..LEDGER_MAX_AMOUNT) for user, as
 * request request_id, at wall-clock time now_ms (ms since the epoch).  The
 * account is created at its first operation.  res is filled on success and
 * on the two refusals.
 * Returns:
 *   0                             applied now, or a replay of an applied request (res->replayed)
 *   LEDGER_ERR_INSUFFICIENT_FUNDS withdrawal refused, balance unchanged (also when replayed)
 *   LEDGER_ERR_BALANCE_LIMIT      deposit refused, balance unchanged (also when replayed)
 *   LEDGER_ERR_AMOUNT_RANGE, LEDGER_ERR_BAD_REQUEST_ID, LEDGER_ERR_BAD_USER,
 *   LEDGER_ERR_INVALID_ARG        refused before touching the database
 *   LEDGER_ERR_REQUEST_MISMATCH   the id was used for a different kind or amount
 *   LEDGER_ERR_BUSY, LEDGER_ERR_DB, LEDGER_ERR_CORRUPT, LEDGER_ERR_NOMEM
 *                                 nothing was done (rolled back); the request may be
 *                                 retried with the same id
 */
int ledger_deposit(ledger *l, const char *user, const char *request_id, int64_t amount,
                   uint64_t now_ms, ledger_result *res) LEDGER_MUST_CHECK;
int ledger_withdraw(ledger *l, const char *user, const char *request_id, int64_t amount,
                    uint64_t now_ms, ledger_result *res) LEDGER_MUST_CHECK;
/* Either of the two by kind. */
int ledger_apply(ledger *l, ledger_kind kind, const char *user, const char *request_id,
                 int64_t amount, uint64_t now_ms, ledger_result *res) LEDGER_MUST_CHECK;

/* Current balance of user's account (0 if it has none yet).
 * Returns 0, LEDGER_ERR_BAD_USER, LEDGER_ERR_INVALID_ARG, LEDGER_ERR_BUSY, LEDGER_ERR_DB. */
int ledger_balance(ledger *l, const char *user, int64_t *balance) LEDGER_MUST_CHECK;

/* One applied operation, as listed by ledger_history. */
typedef struct ledger_entry {
    int64_t op_id;
    uint64_t time_ms;
    ledger_kind kind;
    int64_t amount;  /* positive, in cents */
    int64_t balance; /* after the operation */
    char request_id[LEDGER_REQUEST_ID_MAX + 1];
} ledger_entry;

/*
 * The latest applied operations of user's account, newest first: at most max
 * entries into out; *n receives how many.  Refused requests are not listed.
 * Returns 0, LEDGER_ERR_BAD_USER, LEDGER_ERR_INVALID_ARG, LEDGER_ERR_BUSY,
 * LEDGER_ERR_DB, LEDGER_ERR_CORRUPT.
 */
int ledger_history(ledger *l, const char *user, ledger_entry *out, size_t max,
                   size_t *n) LEDGER_MUST_CHECK;

/*
 * Full consistency check: PRAGMA integrity_check and foreign_key_check pass,
 * and for every account the applied operations, in order, take the balance
 * from 0 through each recorded resulting balance to the stored balance,
 * never below 0 nor above the maximum.  Returns 0 or LEDGER_ERR_CORRUPT
 * (ledger_errmsg says where), LEDGER_ERR_BUSY, LEDGER_ERR_DB.
 */
int ledger_verify(ledger *l) LEDGER_MUST_CHECK;

/* 1 if name is a valid account owner (see LEDGER_MAX_USER), else 0. */
int ledger_user_valid(const char *name);
/* 1 if id is a valid request id (see LEDGER_REQUEST_ID_MIN), else 0. */
int ledger_request_id_valid(const char *id);

/* A fresh request id: 32 lowercase hex digits from 16 bytes of rng (the
 * signature of veil_callbacks.random and vapp_random).  Returns 0, or
 * LEDGER_ERR_RNG if rng failed. */
#define LEDGER_REQUEST_ID_NEW_LEN 32
int ledger_request_id_new(int (*rng)(void *user, uint8_t *out, size_t len), void *rng_user,
                          char out[LEDGER_REQUEST_ID_NEW_LEN + 1]) LEDGER_MUST_CHECK;

/*
 * Parses an amount typed by a person into cents: one or more digits,
 * optionally followed by '.' and one or two digits ("12", "12.3", "12.34",
 * "0.5", "007.10").  Nothing else is accepted: no sign, no spaces, no
 * exponent, no thousands separators, no third decimal, no "12." or ".5".
 * Returns 0, LEDGER_ERR_AMOUNT_SYNTAX, or LEDGER_ERR_AMOUNT_RANGE (zero, or
 * above LEDGER_MAX_AMOUNT).  *cents is written only on success.
 */
int ledger_parse_amount(const char *text, int64_t *cents) LEDGER_MUST_CHECK;

/* Formats cents as "[-]units.cc" ("12.34", "0.05", "-1.00"); any int64 fits. */
#define LEDGER_AMOUNT_STRLEN 24
void ledger_format_amount(int64_t cents, char out[LEDGER_AMOUNT_STRLEN]);

#ifdef __cplusplus
}
#endif
#endif /* VEIL_LEDGER_H */
