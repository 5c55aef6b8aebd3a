/*
 * ui_bank.c - veil-client's front end for the "bank" service
 * (docs/SERVICES.md §3): deposit, withdraw, balance and history for the
 * authenticated user, one request and one reply at a time.
 *
 * Three ways to drive it:
 *   - operations on the command line:  ... HOST PORT deposit 12.34 balance
 *   - one operation per line of standard input (a pipe or a file);
 *   - a menu on a terminal: 1 deposit, 2 withdraw, 3 balance, 4 history,
 *     5 exit (the banking exercise's menu, plus the history).
 *
 * Every deposit and withdrawal carries a request id (32 random hex digits,
 * or --request-id ID): the server applies a request id at most once, so a
 * request whose reply was lost can be repeated with the same id safely.
 * The amount is sent as typed; the server is the one place that parses it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client.h"
#include "svc_wire.h"

#define REQUEST_ID_LEN 32
#define MAX_WORD 80

enum op_kind { OP_NONE = 0, OP_DEPOSIT, OP_WITHDRAW, OP_BALANCE, OP_HISTORY, OP_EXIT };

struct op {
    enum op_kind kind;
    char amount[MAX_WORD]; /* deposit, withdraw: as typed */
    unsigned long count;   /* history: entries wanted */
};

struct bank_ui {
    struct client *cl;
    int got_reply;
    size_t reply_len;
    char reply[VEIL_MAX_MESSAGE + 1];
    int refused; /* some request was refused */
};

static char g_safe[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];

/* ------------------------------------------------------------------------ */
/* Operations                                                               */

static int request_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 16 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
            return 0;
    return 1;
}

/* An amount is one word of visible ASCII; the server checks the rest
 * (digits with at most two decimals, more than zero). */
static int amount_word_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= MAX_WORD)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return 0;
    return 1;
}

static enum op_kind op_word(const char *w)
{
    if (strcasecmp(w, "deposit") == 0 || strcmp(w, "1") == 0)
        return OP_DEPOSIT;
    if (strcasecmp(w, "withdraw") == 0 || strcmp(w, "2") == 0)
        return OP_WITHDRAW;
    if (strcasecmp(w, "balance") == 0 || strcmp(w, "3") == 0)
        return OP_BALANCE;
    if (strcasecmp(w, "history") == 0 || strcmp(w, "4") == 0)
        return OP_HISTORY;
    if (strcasecmp(w, "exit") == 0 || strcmp(w, "5") == 0 || strcasecmp(w, "quit") == 0 ||
        strcmp(w, "END") == 0)
        return OP_EXIT;
    return OP_NONE;
}

/*
 * Parses one operation from words[*i..n): advances *i.  Returns 0, or -1
 * with a message in err.
 */
static int parse_op(char **words, int n, int *i, struct op *op, char *err)
{
    memset(op, 0, sizeof *op);
    const char *w = words[*i];
    op->kind = op_word(w);
    (*i)++;
    switch (op->kind) {
    case OP_NONE:
        vapp_errf(err, "unknown bank operation '%.40s' (deposit AMOUNT, withdraw AMOUNT, balance, "
                       "history [N], exit)",
                  w);
        return -1;
    case OP_DEPOSIT:
    case OP_WITHDRAW:
        if (*i >= n) {
            vapp_errf(err, "%s needs an amount, e.g. %s 12.34", w, w);
            return -1;
        }
        if (!amount_word_ok(words[*i])) {
            vapp_errf(err, "malformed amount '%.40s': digits with at most two decimals, e.g. 12.34",
                      words[*i]);
            return -1;
        }
        snprintf(op->amount, sizeof op->amount, "%s", words[*i]);
        (*i)++;
        return 0;
    case OP_HISTORY:
        op->count = SVC_BANK_HISTORY_DEFAULT;
        if (*i < n && isdigit((unsigned char)words[*i][0])) {
            if (vapp_parse_ulong(words[*i], 1, SVC_BANK_HISTORY_MAX, &op->count) != 0) {
                vapp_errf(err, "history N: N from 1 to %d", SVC_BANK_HISTORY_MAX);
                return -1;
            }
            (*i)++;
        }
        return 0;
    default:
        return 0;
    }
}

int ui_bank_check_ops(char **ops, int n_ops, const char *request_id, char *err)
{
    int mutating = 0;
    for (int i = 0; i < n_ops;) {
        struct op op;
        if (parse_op(ops, n_ops, &i, &op, err) != 0)
            return -1;
        mutating += op.kind == OP_DEPOSIT || op.kind == OP_WITHDRAW;
    }
    if (request_id != NULL) {
        if (!request_id_valid(request_id)) {
            vapp_errf(err, "--request-id needs 16 to 64 characters of A-Z a-z 0-9 _ -");
            return -1;
        }
        if (mutating != 1) {
            vapp_errf(err, "--request-id needs exactly one deposit or withdraw on the command line");
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Requests and replies                                                     */

static void on_message(void *user, const veil_event *ev)
{
    struct bank_ui *ui = user;
    if (ev->kind != VEIL_MSG_TEXT || ui->got_reply)
        return; /* one reply per request; anything else is ignored */
    memcpy(ui->reply, ev->data, ev->len);
    ui->reply[ev->len] = '\0';
    ui->reply_len = ev->len;
    ui->got_reply = 1;
}

static int reply_ready(void *arg) { return ((struct bank_ui *)arg)->got_reply; }

static void new_request_id(char out[REQUEST_ID_LEN + 1])
{
    uint8_t b[REQUEST_ID_LEN / 2];
    static const char hex[] = "0123456789abcdef";
    if (vapp_random(NULL, b, sizeof b) != 0) {
        /* getrandom does not fail on Linux once seeded; be safe anyway. */
        fprintf(stderr, "veil-client: cannot draw random bytes for a request id\n");
        exit(VAPP_EXIT_LOCAL);
    }
    for (size_t i = 0; i < sizeof b; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[REQUEST_ID_LEN] = '\0';
}

/* Splits s at spaces into at most max words (s is modified). */
static int split(char *s, char **w, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " ", &save); t != NULL && n < max; t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    return n;
}

static int bad_reply(struct client *cl)
{
    cl_fail(cl, "protocol error: malformed reply from the bank service");
    return VAPP_EXIT_PROTOCOL;
}

/* An ERR reply: "ERR <request id|-> <code> <text>". */
static int show_refusal(struct bank_ui *ui, char *rest)
{
    char *w[2];
    char *text = NULL;
    /* rest = "<rid> <code> <text...>" */
    char *sp1 = strchr(rest, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL)
        return bad_reply(ui->cl);
    *sp1 = '\0';
    w[0] = rest;
    w[1] = sp1 + 1;
    if (sp2 != NULL) {
        *sp2 = '\0';
        text = sp2 + 1;
    }
    vapp_sanitize((const uint8_t *)(text ? text : w[1]), strlen(text ? text : w[1]), g_safe,
                  sizeof g_safe);
    char code[64];
    vapp_sanitize((const uint8_t *)w[1], strlen(w[1]), code, sizeof code);
    fflush(stdout);
    fprintf(stderr, "veil-client: refused (%s): %s\n", code, g_safe);
    fflush(stderr);
    ui->refused = 1;
    return CL_EXIT_REFUSED;
}

static void show_history(char *body)
{
    char *save = NULL;
    int any = 0;
    for (char *line = strtok_r(body, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *w[6];
        int n = split(line, w, 6);
        if (n != 6)
            continue;
        unsigned long long t = strtoull(w[1], NULL, 10);
        char ts[VAPP_TIMESTR_LEN];
        vapp_format_utc((uint64_t)t, ts);
        char amount[64], balance[64], rid[80], kind[32], opid[32];
        vapp_sanitize((const uint8_t *)w[0], strlen(w[0]), opid, sizeof opid);
        vapp_sanitize((const uint8_t *)w[2], strlen(w[2]), kind, sizeof kind);
        vapp_sanitize((const uint8_t *)w[3], strlen(w[3]), amount, sizeof amount);
        vapp_sanitize((const uint8_t *)w[4], strlen(w[4]), balance, sizeof balance);
        vapp_sanitize((const uint8_t *)w[5], strlen(w[5]), rid, sizeof rid);
        for (char *k = kind; *k; k++)
            *k = (char)tolower((unsigned char)*k);
        printf("  #%s  %s  %-8s %12s  balance %12s  request %s\n", opid, ts, kind, amount, balance,
               rid);
        any = 1;
    }
    if (!any)
        printf("  (no operations yet)\n");
}

/* Sends one operation and shows its reply.  0, CL_EXIT_REFUSED, or a failure status. */
static int do_op(struct bank_ui *ui, const struct op *op, const char *forced_id)
{
    char req[256], rid[REQUEST_ID_LEN + 1] = "";
    const char *id = NULL;
    int n;
    switch (op->kind) {
    case OP_DEPOSIT:
    case OP_WITHDRAW:
        if (forced_id != NULL) {
            id = forced_id;
        } else {
            new_request_id(rid);
            id = rid;
        }
        n = snprintf(req, sizeof req, "%s %s %s",
                     op->kind == OP_DEPOSIT ? SVC_BANK_DEPOSIT : SVC_BANK_WITHDRAW, id, op->amount);
        break;
    case OP_BALANCE:
        n = snprintf(req, sizeof req, "%s", SVC_BANK_BALANCE);
        break;
    case OP_HISTORY:
        n = snprintf(req, sizeof req, "%s %lu", SVC_BANK_HISTORY, op->count);
        break;
    default:
        return 0;
    }
    ui->got_reply = 0;
    int r = cl_send(ui->cl, VEIL_MSG_TEXT, req, (size_t)n);
    if (r == 0)
        r = cl_wait(ui->cl, reply_ready, ui, "the bank's reply");
    if (r != 0) {
        if (id != NULL)
            fprintf(stderr,
                    "veil-client: request %s (%s %s) may or may not have been applied: repeat it "
                    "with --request-id %s, it is applied at most once\n",
                    id, op->kind == OP_DEPOSIT ? "deposit" : "withdraw", op->amount, id);
        return r;
    }

    char *body = strchr(ui->reply, '\n');
    if (body != NULL)
        *body++ = '\0';
    char *w[8];
    char first[sizeof ui->reply];
    snprintf(first, sizeof first, "%s", ui->reply);
    if (strncmp(first, SVC_BANK_ERR " ", 4) == 0)
        return show_refusal(ui, first + 4);
    int nw = split(first, w, 8);
    switch (op->kind) {
    case OP_DEPOSIT:
    case OP_WITHDRAW: {
        /* OK <DEPOSIT|WITHDRAW> <rid> <amount> <balance> <op-id> <time-ms> [REPLAYED] */
        const char *kw = op->kind == OP_DEPOSIT ? SVC_BANK_DEPOSIT : SVC_BANK_WITHDRAW;
        if (nw < 7 || nw > 8 || strcmp(w[0], SVC_BANK_OK) != 0 || strcmp(w[1], kw) != 0 ||
            strcmp(w[2], id) != 0 || (nw == 8 && strcmp(w[7], SVC_BANK_REPLAYED) != 0))
            return bad_reply(ui->cl);
        char amount[64], balance[64];
        vapp_sanitize((const uint8_t *)w[3], strlen(w[3]), amount, sizeof amount);
        vapp_sanitize((const uint8_t *)w[4], strlen(w[4]), balance, sizeof balance);
        printf("%s %s, balance %s%s\n", op->kind == OP_DEPOSIT ? "deposited" : "withdrew", amount,
               balance,
               nw == 8 ? " (a repeated request: it had been applied already, not applied again)"
                       : "");
        break;
    }
    case OP_BALANCE: {
        if (nw != 2 || strcmp(w[0], SVC_BANK_BALANCE) != 0)
            return bad_reply(ui->cl);
        char balance[64];
        vapp_sanitize((const uint8_t *)w[1], strlen(w[1]), balance, sizeof balance);
        printf("balance %s\n", balance);
        break;
    }
    case OP_HISTORY:
        if (nw != 2 || strcmp(w[0], SVC_BANK_HISTORY) != 0)
            return bad_reply(ui->cl);
        printf("history (newest first):\n");
        show_history(body != NULL ? body : (char *)"");
        break;
    default:
        break;
    }
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* One line of stdin without its terminator; 1, 0 at EOF, -1 too long. */
static int get_line(char *buf, size_t cap)
{
    size_t n = 0;
    int ch, too_long = 0;
    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n + 1 < cap)
            buf[n++] = (char)ch;
        else
            too_long = 1;
    }
    if (ch == EOF && n == 0 && !too_long)
        return 0;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return too_long ? -1 : 1;
}

/* Operations from a pipe: one per line; blank lines and # comments skipped. */
static int run_lines(struct bank_ui *ui)
{
    char line[512];
    unsigned long lineno = 0;
    int status = 0;
    for (;;) {
        int g = get_line(line, sizeof line);
        if (g == 0)
            break;
        lineno++;
        char err[VAPP_ERRLEN];
        if (g < 0) {
            cl_fail(ui->cl, "input line %lu is too long", lineno);
            return VAPP_EXIT_USAGE;
        }
        char *w[8];
        int nw = split(line, w, 8);
        if (nw == 0 || w[0][0] == '#')
            continue;
        int i = 0;
        struct op op;
        int pr = parse_op(w, nw, &i, &op, err);
        if (pr != 0 || i != nw) {
            /* A bad line is refused locally, like a refusal by the bank;
               the lines after it still run. */
            cl_fail(ui->cl, "input line %lu: %s", lineno,
                    pr == 0 ? "unexpected words after the operation" : err);
            status = CL_EXIT_REFUSED;
            ui->refused = 1;
            continue;
        }
        if (op.kind == OP_EXIT)
            break;
        int r = do_op(ui, &op, NULL);
        if (r == CL_EXIT_REFUSED)
            status = r;
        else if (r != 0)
            return r;
    }
    return status;
}

/* The menu on a terminal. */
static int run_menu(struct bank_ui *ui)
{
    char line[512];
    printf("Bank on %s. Amounts in units with up to two decimals (12.34).\n", cl_where(ui->cl));
    for (;;) {
        printf("\n  1) deposit   2) withdraw   3) balance   4) history   5) exit\nChoice: ");
        fflush(stdout);
        int g = get_line(line, sizeof line);
        if (g == 0) {
            printf("\n");
            break;
        }
        char *w[8];
        int nw = g > 0 ? split(line, w, 8) : 0;
        if (nw == 0)
            continue;
        struct op op;
        char err[VAPP_ERRLEN];
        enum op_kind k = op_word(w[0]);
        char amount[MAX_WORD * 2];
        char *words[3];
        int n = 0;
        words[n++] = w[0];
        if ((k == OP_DEPOSIT || k == OP_WITHDRAW) && nw == 1) {
            printf("Amount to %s: ", k == OP_DEPOSIT ? "deposit" : "withdraw");
            fflush(stdout);
            if (get_line(amount, sizeof amount) <= 0)
                continue;
            char *aw[2];
            if (split(amount, aw, 2) != 1) {
                printf("malformed amount: digits with at most two decimals, e.g. 12.34\n");
                continue;
            }
            words[n++] = aw[0];
        } else {
            for (int j = 1; j < nw && n < 3; j++)
                words[n++] = w[j];
        }
        int i = 0;
        if (parse_op(words, n, &i, &op, err) != 0) {
            printf("%s\n", err);
            continue;
        }
        if (op.kind == OP_EXIT)
            break;
        int r = do_op(ui, &op, NULL);
        if (r != 0 && r != CL_EXIT_REFUSED)
            return r;
    }
    return 0;
}

int ui_bank_run(struct client *cl, char **ops, int n_ops, const char *request_id)
{
    static struct bank_ui bank;
    struct bank_ui *ui = &bank;
    ui->cl = cl;
    cl_set_message_handler(cl, on_message, ui);
    int status = 0;
    if (n_ops > 0) {
        for (int i = 0; i < n_ops;) {
            struct op op;
            char err[VAPP_ERRLEN];
            if (parse_op(ops, n_ops, &i, &op, err) != 0) {
                cl_fail(cl, "%s", err); /* checked before connecting: not reached */
                return VAPP_EXIT_USAGE;
            }
            if (op.kind == OP_EXIT)
                break;
            int r = do_op(ui, &op, request_id);
            if (r == CL_EXIT_REFUSED)
                status = r;
            else if (r != 0)
                return r;
        }
    } else if (isatty(STDIN_FILENO)) {
        status = run_menu(ui);
    } else {
        status = run_lines(ui);
    }
    if (status != 0 && status != CL_EXIT_REFUSED)
        return status;
    int r = cl_finish(cl);
    return r != 0 ? r : status;
}
