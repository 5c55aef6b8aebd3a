/*
 * test_ledger_crash.c - an acknowledged ledger operation survives SIGKILL.
 *
 *   test_ledger_crash [ROUNDS] [SEED]
 *
 * Each round forks a child that opens the ledger and performs up to
 * MAX_OPS deposits and withdrawals (some refused for lack of funds), writing
 * "BEGIN <id> <kind> <amount>" before each call and "ACK <id> <code>
 * <balance>" after it returned, to a pipe.  The parent reads until a random
 * number of acknowledgements has arrived, waits a random few microseconds,
 * and SIGKILLs the child, most often inside its next transaction.  Then it
 * reopens the ledger and checks:
 *   - PRAGMA integrity_check is "ok" and ledger_verify passes (every
 *     account's balance is the sum of its applied operations);
 *   - every acknowledged request is in the ledger with the acknowledged
 *     kind, amount, outcome and resulting balance;
 *   - retrying the request that was in flight applies it exactly once (or
 *     replays it, if its COMMIT had reached the disk before the kill);
 *   - the round's requests in the ledger are exactly requests 0..last, none
 *     missing and none doubled;
 *   - the balance equals the parent's own model of the acknowledged results.
 * Exit status 0 on success, 1 with a message on the first failure.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ledger.h"

#define MAX_OPS 3000
#define USER "crash"

static char dir[256], dbpath[300];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_ledger_crash: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t rnd_state;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(rnd_state >> 33);
}

static void make_id(char *out, size_t outlen, int round, int i)
{
    snprintf(out, outlen, "crash-r%03d-%08d", round, i);
}

/* What request i of a round is: a function of (seed, round, i) only. */
static void request_of(uint64_t seed, int round, int i, ledger_kind *kind, int64_t *amount)
{
    uint64_t x = seed ^ ((uint64_t)round << 32) ^ (uint64_t)i;
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185u;
    x = (x ^ (x >> 27)) * 0x81dadef4bc2dd44du;
    x ^= x >> 33;
    *kind = (x & 1) ? LEDGER_WITHDRAW : LEDGER_DEPOSIT; /* some withdrawals are refused */
    *amount = 1 + (int64_t)((x >> 8) % 20000);
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One write per line (< PIPE_BUF): lines never tear. */
    if (write(fd, line, (size_t)n) != n)
        _exit(4);
}

static void child(int fd, uint64_t seed, int round)
{
    ledger *l = NULL;
    char err[300];
    if (ledger_open(dbpath, &l, err, sizeof err) != 0) {
        say(fd, "ERR open %s\n", err);
        _exit(2);
    }
    for (int i = 0; i < MAX_OPS; i++) {
        char id[40];
        ledger_kind kind;
        int64_t amount;
        make_id(id, sizeof id, round, i);
        request_of(seed, round, i, &kind, &amount);
        say(fd, "BEGIN %s\n", id);
        ledger_result res;
        int r = ledger_apply(l, kind, USER, id, amount, 1700000000000u + (uint64_t)i, &res);
        if (r != 0 && r != LEDGER_ERR_INSUFFICIENT_FUNDS) {
            say(fd, "ERR %s %s\n", ledger_strerror(r), ledger_errmsg(l));
            _exit(3);
        }
        say(fd, "ACK %s %d %lld\n", id, r, (long long)res.balance);
    }
    ledger_close(l);
    _exit(0);
}

struct ack {
    int code;
    int64_t balance;
};

/* Reads the child's lines until EOF; kills it after `kill_after` ACKs. */
static int run_round(uint64_t seed, int round, struct ack *acks, int *n_acks, int *begun)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        child(p[1], seed, round);
    }
    close(p[1]);
    int kill_after = 1 + (int)(rnd() % (MAX_OPS / 3));
    int killed = 0;
    *n_acks = 0;
    *begun = -1;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(p[0], buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read: %s", strerror(errno));
        if (n == 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            char id[64], want[40];
            int code;
            long long bal;
            if (sscanf(line, "BEGIN %63s", id) == 1) {
                (*begun)++;
                make_id(want, sizeof want, round, *begun);
                if (strcmp(id, want) != 0)
                    die("round %d: child began %s, expected %s", round, id, want);
            } else if (sscanf(line, "ACK %63s %d %lld", id, &code, &bal) == 3) {
                make_id(want, sizeof want, round, *n_acks);
                if (strcmp(id, want) != 0)
                    die("round %d: ack for %s, expected %s", round, id, want);
                acks[*n_acks].code = code;
                acks[*n_acks].balance = bal;
                (*n_acks)++;
                if (!killed && *n_acks >= kill_after) {
                    /* Land anywhere in the next operation: before, inside or
                       after its fsync'ed COMMIT. */
                    struct timespec ts = {0, (long)(rnd() % 3000) * 1000};
                    nanosleep(&ts, NULL);
                    kill(pid, SIGKILL);
                    killed = 1;
                }
            } else {
                die("round %d: child said: %s", round, line);
            }
            line = nl + 1;
        }
        have = strlen(line);
        memmove(buf, line, have);
    }
    close(p[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0; /* finished before the kill landed */
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        die("round %d: child ended with status 0x%x", round, status);
    return 1;
}

static int64_t query_int(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die("prepare %s: %s", sql, sqlite3_errmsg(db));
    if (arg != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW)
        die("%s: no row", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 6;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    if (rounds < 1 || rounds > 1000)
        die("usage: test_ledger_crash [ROUNDS 1..1000] [SEED]");
    rnd_state = seed;
    printf("test_ledger_crash: %d rounds, seed %llu\n", rounds, (unsigned long long)seed);

    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/veil-crash-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(dbpath, sizeof dbpath, "%s/bank.db", dir);

    static struct ack acks[MAX_OPS];
    int64_t model = 0; /* the balance according to the acknowledgements */
    int kills = 0;
    for (int round = 0; round < rounds; round++) {
        int n_acks, begun;
        kills += run_round(seed, round, acks, &n_acks, &begun);

        /* The acknowledged results follow from each other. */
        for (int i = 0; i < n_acks; i++) {
            ledger_kind kind;
            int64_t amount;
            request_of(seed, round, i, &kind, &amount);
            int64_t expect = model;
            int code = 0;
            if (kind == LEDGER_DEPOSIT)
                expect += amount;
            else if (amount <= model)
                expect -= amount;
            else
                code = LEDGER_ERR_INSUFFICIENT_FUNDS;
            if (acks[i].code != code || acks[i].balance != expect)
                die("round %d op %d: acknowledged %d/%lld, model says %d/%lld", round, i,
                    acks[i].code, (long long)acks[i].balance, code, (long long)expect);
            model = expect;
        }

        /* Integrity first, on a raw connection, before anyone writes. */
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
            die("open: %s", sqlite3_errmsg(db));
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW ||
            strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
            die("round %d: integrity_check: %s", round,
                st != NULL ? (const char *)sqlite3_column_text(st, 0) : sqlite3_errmsg(db));
        sqlite3_finalize(st);

        /* Every acknowledged operation is there, as acknowledged. */
        static const char find[] =
            "SELECT o.kind, o.amount, o.outcome, o.balance FROM operations o JOIN accounts a "
            "ON a.id = o.account_id WHERE a.user = '" USER "' AND o.request_id = ?1";
        if (sqlite3_prepare_v2(db, find, -1, &st, NULL) != SQLITE_OK)
            die("prepare: %s", sqlite3_errmsg(db));
        for (int i = 0; i < n_acks; i++) {
            char id[40];
            ledger_kind kind;
            int64_t amount;
            make_id(id, sizeof id, round, i);
            request_of(seed, round, i, &kind, &amount);
            sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_ROW)
                die("round %d: acknowledged request %s is LOST", round, id);
            const char *k = (const char *)sqlite3_column_text(st, 0);
            const char *outcome = (const char *)sqlite3_column_text(st, 2);
            const char *want = acks[i].code == 0 ? "applied" : "insufficient_funds";
            if (strcmp(k, ledger_kind_name(kind)) != 0 || sqlite3_column_int64(st, 1) != amount ||
                strcmp(outcome, want) != 0 || sqlite3_column_int64(st, 3) != acks[i].balance)
                die("round %d: request %s differs from its acknowledgement", round, id);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);

        ledger *l = NULL;
        char err[300];
        if (ledger_open(dbpath, &l, err, sizeof err) != 0)
            die("reopen: %s", err);
        int r = ledger_verify(l);
        if (r != 0)
            die("round %d: ledger_verify: %s: %s", round, ledger_strerror(r), ledger_errmsg(l));

        /* The request in flight at the kill, retried as a client would. */
        int last = n_acks - 1;
        if (begun == n_acks) {
            char id[40];
            ledger_kind kind;
            int64_t amount;
            make_id(id, sizeof id, round, begun);
            request_of(seed, round, begun, &kind, &amount);
            ledger_result res;
            r = ledger_apply(l, kind, USER, id, amount, 1, &res);
            if (r != 0 && r != LEDGER_ERR_INSUFFICIENT_FUNDS)
                die("round %d: retry of %s: %s", round, id, ledger_strerror(r));
            int64_t expect = model;
            int code = 0;
            if (kind == LEDGER_DEPOSIT)
                expect += amount;
            else if (amount <= model)
                expect -= amount;
            else
                code = LEDGER_ERR_INSUFFICIENT_FUNDS;
            if (r != code || res.balance != expect)
                die("round %d: retry of %s gave %d/%lld, expected %d/%lld", round, id, r,
                    (long long)res.balance, code, (long long)expect);
            model = expect;
            last = begun;
            printf("round %d: killed after %d acks; in-flight %s %s\n", round, n_acks, id,
                   res.replayed ? "had committed (replayed)" : "had not committed (applied now)");
        } else {
            printf("round %d: killed after %d acks, between operations\n", round, n_acks);
        }
        int64_t balance = -1;
        if (ledger_balance(l, USER, &balance) != 0 || balance != model)
            die("round %d: balance %lld, model %lld", round, (long long)balance, (long long)model);
        if ((r = ledger_verify(l)) != 0)
            die("round %d: ledger_verify after retry: %s", round, ledger_errmsg(l));
        ledger_close(l);

        /* Exactly the requests 0..last of this round, once each: ids are unique
           and zero-padded, so last+1 of them, the largest being last's, are
           0..last. */
        if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
            die("open: %s", sqlite3_errmsg(db));
        char pattern[40];
        snprintf(pattern, sizeof pattern, "crash-r%03d-%%", round);
        int64_t count = query_int(db, "SELECT count(*) FROM operations WHERE request_id LIKE ?1",
                                  pattern);
        char lastid[40];
        make_id(lastid, sizeof lastid, round, last);
        if (count != last + 1)
            die("round %d: %lld operations recorded, expected %d", round, (long long)count,
                last + 1);
        sqlite3_stmt *q = NULL;
        sqlite3_prepare_v2(db, "SELECT max(request_id) FROM operations WHERE request_id LIKE ?1",
                           -1, &q, NULL);
        sqlite3_bind_text(q, 1, pattern, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_ROW || sqlite3_column_text(q, 0) == NULL ||
            strcmp((const char *)sqlite3_column_text(q, 0), lastid) != 0)
            die("round %d: the last recorded request is not %s", round, lastid);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    printf("test_ledger_crash: ok (%d rounds, %d killed mid-run, final balance %lld)\n", rounds,
           kills, (long long)model);

    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof p, "%s%s", dbpath, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}
