/*
 * svc_bank.c - the "bank" service (docs/SERVICES.md §3) over the SQLite
 * ledger (apps/bank/ledger.h).
 *
 * The banking exercise done properly: an account per authenticated user
 * (veil-server runs it only with --users, where every session has logged
 * in), amounts in integer cents, every deposit or withdrawal one durable
 * transaction carrying the client's request id, so a repeated request is
 * applied once; no overdraft.  A reply leaves only after the ledger has
 * committed: an acknowledged operation survives a SIGKILL.
 *
 * Requests are handled one at a time on the server's single thread; a
 * ledger call blocks it for one fsync (synchronous=FULL), a few ms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "svc.h"
#include "svc_wire.h"

static ledger *g_ledger;

int bank_open(const char *path, char *err)
{
    char msg[256];
    int r = ledger_open(path, &g_ledger, msg, sizeof msg);
    if (r != 0) {
        vapp_errf(err, "cannot open the bank ledger %s: %s", path, msg);
        return -1;
    }
    r = ledger_verify(g_ledger);
    if (r != 0) {
        vapp_errf(err, "the bank ledger %s failed its consistency check: %s (%s)", path,
                  ledger_strerror(r), ledger_errmsg(g_ledger));
        ledger_close(g_ledger);
        g_ledger = NULL;
        return -1;
    }
    vapp_log(VAPP_LOG_INFO, "bank: ledger %s opened; consistency check passed", path);
    return 0;
}

void bank_close(void)
{
    ledger_close(g_ledger);
    g_ledger = NULL;
}

/* Queues the reply text for c. */
static void reply(struct conn *c, const char *text, size_t len)
{
    (void)srv_send(c, VEIL_MSG_TEXT, text, len);
}

static void reply_err(struct conn *c, const char *rid, const char *code, const char *fmt, ...)
    VAPP_PRINTF(4, 5);
static void reply_err(struct conn *c, const char *rid, const char *code, const char *fmt, ...)
{
    char text[512];
    int n = snprintf(text, sizeof text, SVC_BANK_ERR " %s %s ", rid ? rid : "-", code);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof text)
        vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    reply(c, text, strlen(text));
}

/* A request is printable ASCII words separated by single spaces. */
static int request_text_ok(const uint8_t *p, size_t len)
{
    if (len == 0 || p[0] == ' ' || p[len - 1] == ' ')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ' ' && i > 0 && p[i - 1] == ' ')
            return 0;
        if (p[i] != ' ' && (p[i] < 0x21 || p[i] > 0x7e))
            return 0;
    }
    return 1;
}

/* Requests are at most 255 bytes (SERVICES.md §3.1). */
#define BANK_MAX_REQUEST 256

/* The word at span s of data, NUL-terminated in out (large enough). */
static const char *word(const uint8_t *data, svc_span s, char *out)
{
    memcpy(out, data + s.off, (size_t)s.len);
    out[s.len] = '\0';
    return out;
}

static void do_mutation(struct conn *c, const char *user, ledger_kind kind, const char *rid,
                        const char *amount_text)
{
    const char *kw = kind == LEDGER_DEPOSIT ? SVC_BANK_DEPOSIT : SVC_BANK_WITHDRAW;
    if (!ledger_request_id_valid(rid)) {
        reply_err(c, NULL, "bad_request_id",
                  "a request id is %d to %d characters of A-Z a-z 0-9 _ -", LEDGER_REQUEST_ID_MIN,
                  LEDGER_REQUEST_ID_MAX);
        return;
    }
    int64_t cents;
    int r = ledger_parse_amount(amount_text, &cents);
    if (r == LEDGER_ERR_AMOUNT_SYNTAX || r == LEDGER_ERR_AMOUNT_RANGE) {
        char max[LEDGER_AMOUNT_STRLEN];
        ledger_format_amount(LEDGER_MAX_AMOUNT, max);
        if (r == LEDGER_ERR_AMOUNT_SYNTAX)
            reply_err(c, rid, "bad_amount",
                      "malformed amount '%.40s': use digits with at most two decimals, e.g. "
                      "12.34 (no sign)",
                      amount_text);
        else
            reply_err(c, rid, "bad_amount", "the amount must be more than 0 and at most %s", max);
        return;
    }
    if (r != 0) {
        reply_err(c, rid, "bad_amount", "invalid amount");
        return;
    }
    ledger_result res;
    memset(&res, 0, sizeof res);
    r = ledger_apply(g_ledger, kind, user, rid, cents, vapp_wall_ms(), &res);
    char amount[LEDGER_AMOUNT_STRLEN], balance[LEDGER_AMOUNT_STRLEN];
    ledger_format_amount(cents, amount);
    ledger_format_amount(res.balance, balance);
    const char *what = kind == LEDGER_DEPOSIT ? "deposit" : "withdrawal";
    switch (r) {
    case 0: {
        char text[256];
        int n = snprintf(text, sizeof text, SVC_BANK_OK " %s %s %s %s %lld %llu%s", kw, rid, amount,
                         balance, (long long)res.op_id, (unsigned long long)res.time_ms,
                         res.replayed ? " " SVC_BANK_REPLAYED : "");
        reply(c, text, (size_t)n);
        srv_conn_log(c, VAPP_LOG_INFO, "bank: %s %s %s -> balance %s (operation %lld, request %s%s)",
                     user, ledger_kind_name(kind), amount, balance, (long long)res.op_id, rid,
                     res.replayed ? ", a repeat: not applied again" : "");
        return;
    }
    case LEDGER_ERR_INSUFFICIENT_FUNDS:
        reply_err(c, rid, "insufficient_funds",
                  "insufficient funds: the balance is %s, a withdrawal of %s is refused%s", balance,
                  amount, res.replayed ? " (a repeated request)" : "");
        srv_conn_log(c, VAPP_LOG_INFO, "bank: %s withdraw %s refused: balance %s (request %s)",
                     user, amount, balance, rid);
        return;
    case LEDGER_ERR_BALANCE_LIMIT:
        reply_err(c, rid, "balance_limit",
                  "the balance %s plus %s would exceed the largest balance; %s refused", balance,
                  amount, what);
        return;
    case LEDGER_ERR_REQUEST_MISMATCH:
        reply_err(c, rid, "request_mismatch",
                  "request id %s was already used for a different operation", rid);
        return;
    case LEDGER_ERR_BUSY:
        reply_err(c, rid, "busy",
                  "the ledger is busy; repeat the request with the same request id");
        srv_conn_log(c, VAPP_LOG_WARN, "bank: ledger busy: %s", ledger_errmsg(g_ledger));
        return;
    default:
        reply_err(c, rid, "unavailable",
                  "the ledger is unavailable (nothing was done); repeat the request later with "
                  "the same request id");
        srv_conn_log(c, VAPP_LOG_ERROR, "bank: ledger error: %s (%s)", ledger_strerror(r),
                     ledger_errmsg(g_ledger));
        return;
    }
}

static void do_balance(struct conn *c, const char *user)
{
    int64_t b = 0;
    int r = ledger_balance(g_ledger, user, &b);
    if (r != 0) {
        reply_err(c, NULL, r == LEDGER_ERR_BUSY ? "busy" : "unavailable",
                  "the ledger is %s; try again", r == LEDGER_ERR_BUSY ? "busy" : "unavailable");
        srv_conn_log(c, VAPP_LOG_WARN, "bank: balance: %s (%s)", ledger_strerror(r),
                     ledger_errmsg(g_ledger));
        return;
    }
    char text[64], amount[LEDGER_AMOUNT_STRLEN];
    ledger_format_amount(b, amount);
    int n = snprintf(text, sizeof text, SVC_BANK_BALANCE " %s", amount);
    reply(c, text, (size_t)n);
}

static void do_history(struct conn *c, const char *user, unsigned long max)
{
    static ledger_entry entries[SVC_BANK_HISTORY_MAX];
    static char text[VEIL_MAX_MESSAGE];
    size_t n = 0;
    int r = ledger_history(g_ledger, user, entries, max, &n);
    if (r != 0) {
        reply_err(c, NULL, r == LEDGER_ERR_BUSY ? "busy" : "unavailable",
                  "the ledger is %s; try again", r == LEDGER_ERR_BUSY ? "busy" : "unavailable");
        srv_conn_log(c, VAPP_LOG_WARN, "bank: history: %s (%s)", ledger_strerror(r),
                     ledger_errmsg(g_ledger));
        return;
    }
    /* At most 100 lines of at most ~140 bytes: well within one message. */
    size_t off = (size_t)snprintf(text, sizeof text, SVC_BANK_HISTORY " %zu", n);
    for (size_t i = 0; i < n && off < sizeof text; i++) {
        char amount[LEDGER_AMOUNT_STRLEN], balance[LEDGER_AMOUNT_STRLEN];
        ledger_format_amount(entries[i].amount, amount);
        ledger_format_amount(entries[i].balance, balance);
        off += (size_t)snprintf(text + off, sizeof text - off, "\n%lld %llu %s %s %s %s",
                                (long long)entries[i].op_id,
                                (unsigned long long)entries[i].time_ms,
                                entries[i].kind == LEDGER_DEPOSIT ? SVC_BANK_DEPOSIT
                                                                  : SVC_BANK_WITHDRAW,
                                amount, balance, entries[i].request_id);
    }
    if (off > sizeof text)
        off = sizeof text;
    reply(c, text, off);
}

void bank_request(struct conn *c, uint8_t kind, const uint8_t *data, size_t len)
{
    const char *user = srv_conn_user(c);
    if (user == NULL || g_ledger == NULL) {
        /* veil-server offers the bank only with --users (require_user): not reached. */
        reply_err(c, NULL, "not_authenticated", "the bank serves authenticated users only");
        srv_close(c, "bank request without an authenticated user");
        return;
    }
    if (kind != VEIL_MSG_TEXT) {
        srv_conn_log(c, VAPP_LOG_WARN, "bank: ignored a message of kind %s",
                     veil_msg_kind_name(kind));
        return;
    }
    if (len >= BANK_MAX_REQUEST || !request_text_ok(data, len)) {
        reply_err(c, NULL, "bad_request",
                  "malformed request: words of printable ASCII separated by single spaces, at "
                  "most 255 bytes");
        return;
    }
    svc_bank_msg m;
    const char *why = svc_bank_parse(data, len, 1, &m);
    if (why != NULL) {
        reply_err(c, NULL, "bad_request",
                  "%s (DEPOSIT id amount, WITHDRAW id amount, BALANCE, HISTORY [n])", why);
        return;
    }
    char w1[BANK_MAX_REQUEST], w2[BANK_MAX_REQUEST]; /* every word fits */
    if (svc_span_is(data, m.op, SVC_BANK_DEPOSIT) || svc_span_is(data, m.op, SVC_BANK_WITHDRAW)) {
        do_mutation(c, user, data[m.op.off] == 'D' ? LEDGER_DEPOSIT : LEDGER_WITHDRAW,
                    word(data, m.request_id, w1), word(data, m.amount, w2));
    } else if (svc_span_is(data, m.op, SVC_BANK_BALANCE)) {
        do_balance(c, user);
    } else {
        unsigned long max = SVC_BANK_HISTORY_DEFAULT;
        if (m.count.len >= 0 && vapp_parse_ulong(word(data, m.count, w1), 1, SVC_BANK_HISTORY_MAX, &max) != 0) {
            reply_err(c, NULL, "bad_request", "HISTORY takes a count from 1 to %d",
                      SVC_BANK_HISTORY_MAX);
            return;
        }
        do_history(c, user, max);
    }
}
