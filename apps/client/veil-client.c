/*
 * veil-client - sends text messages to a veil-server over one Veil session
 * and prints the acknowledgements.  See docs/USAGE.md.
 *
 *   veil-client [options] HOST [PORT]
 *
 * Sequence: connect (bounded by --connect-timeout), handshake, then for each
 * message: send it, wait for its ACK (bounded by --timeout), print
 * "ack: <payload>"; finally close_notify and wait (bounded) for the
 * server's.  Every wire byte is produced and parsed by libproto; this file
 * moves bytes between libproto and a socket and decides about trust
 * (--fingerprint pinning or known_hosts trust on first use).
 *
 * Failures print ONE line on stderr (plus the known_hosts warning block when
 * a server key changed) and exit with a status from the table in --help.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "ui_pass.h"
#include "userdir.h"
#include "veilapp.h"

static const char *const PROG = "veil-client";
static const char *const SYNOPSIS = "veil-client [options] HOST [PORT]";

#define DEFAULT_CONNECT_TIMEOUT_S 10
#define DEFAULT_TIMEOUT_S 10
#define CLOSE_WAIT_MS 2000  /* waiting for the server's close_notify */
#define ALERT_FLUSH_MS 1000 /* pushing out our own fatal alert */
#define MAX_MESSAGES 1024   /* -m given more often than this is refused */

enum untrusted_reason { TRUST_OK = 0, TRUST_PIN_MISMATCH, TRUST_KH_CHANGED, TRUST_KH_ERROR };

struct client {
    /* options */
    const char *host, *port;
    int plain, verbose, quiet;
    uint16_t suite;
    int have_suite;
    uint8_t pin[VEIL_FINGERPRINT_LEN];
    int have_pin;
    int use_kh;
    char kh_path[PATH_MAX];
    char kh_key[600];
    uint64_t timeout_ms;
    const char *service; /* NULL: msg */
    const char *user;    /* --user: user authentication */
    char password[UI_PASS_MAX + 2];
    size_t password_len;
    uint16_t groups[4];
    size_t n_groups;
    /* session */
    int fd;
    char peer[VAPP_ADDRSTR_LEN];
    veil_conn *vc;
    veil_buf out;
    vapp_keylog keylog;
    int hs_done, peer_closed, eof;
    unsigned long acks;
    /* trust decision made in cb_verify, reported after feed returns */
    enum untrusted_reason untrusted;
    char fp_hex[VEIL_FINGERPRINT_HEX_LEN];
    char old_hex[VEIL_FINGERPRINT_HEX_LEN];
    unsigned long old_line;
    char kh_err[VAPP_ERRLEN];
    int kh_new;     /* first use: record the key once the handshake is done */
    const char *trust_how;
    /* service front ends (client.h) */
    cl_message_fn msg_fn;
    void *msg_user;
    /* Messages of a service that arrive before its front end is ready (the
       chat's welcome, during the login): kind(1) time(8) len(4) data. */
    veil_buf early;
    int (*wait_fn)(void *arg);
    void *wait_arg;
};

static char g_text[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];
static uint8_t g_rdbuf[32 * 1024];

/* While closing, after every message was acknowledged, failures are only
 * warnings: 1 = print as "warning: ...", 2 = do not print (-q). */
static int g_soft_fail;

/* A line editor on the terminal (chat): its prompt leaves the screen
 * before the client prints a line of its own on stderr. */
static ui_term *g_term;

/* The one error line of a failed run. */
static void fail_line(const char *fmt, ...) VAPP_PRINTF(1, 2);
static void fail_line(const char *fmt, ...)
{
    if (g_soft_fail == 2)
        return;
    if (g_term != NULL)
        ui_term_hide(g_term);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s%s\n", PROG, g_soft_fail ? "warning: " : "", msg);
    fflush(stderr);
    if (g_term != NULL)
        ui_term_show(g_term);
}

static void note(const struct client *cl, const char *fmt, ...) VAPP_PRINTF(2, 3);
static void note(const struct client *cl, const char *fmt, ...)
{
    if (cl->quiet)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_term != NULL)
        ui_term_hide(g_term);
    fprintf(stderr, "%s: %s\n", PROG, msg);
    fflush(stderr);
    if (g_term != NULL)
        ui_term_show(g_term);
}

/* ------------------------------------------------------------------------ */
/* libproto callbacks                                                       */

static void cb_keylog(void *user, const char *line)
{
    struct client *cl = user;
    vapp_keylog_write(&cl->keylog, line);
}

static int cb_event(void *user, const veil_event *ev)
{
    struct client *cl = user;
    switch (ev->type) {
    case VEIL_EV_HANDSHAKE_DONE:
        cl->hs_done = 1;
        break;
    case VEIL_EV_MESSAGE:
        if (cl->msg_fn != NULL) {
            cl->msg_fn(cl->msg_user, ev); /* a service front end (client.h) */
            break;
        }
        if (cl->service != NULL) {
            /* Kept for the front end (cl_set_message_handler). */
            uint32_t n = (uint32_t)ev->len;
            if (veil_buf_reserve(&cl->early, 13 + ev->len) != 0)
                return VEIL_ERR_NOMEM;
            uint8_t *p = cl->early.base + cl->early.len;
            p[0] = ev->kind;
            memcpy(p + 1, &ev->timestamp_ms, 8);
            memcpy(p + 9, &n, 4);
            if (ev->len > 0)
                memcpy(p + 13, ev->data, ev->len);
            cl->early.len += 13 + ev->len;
            break;
        }
        /* The payload comes from the server: sanitised before printing. */
        vapp_sanitize(ev->data, ev->len, g_text, sizeof g_text);
        if (ev->kind == VEIL_MSG_ACK) {
            cl->acks++;
            printf("ack: %s\n", g_text);
        } else {
            char ts[VAPP_TIMESTR_LEN];
            vapp_format_utc(ev->timestamp_ms, ts);
            printf("[%s] server %s: %s\n", ts, veil_msg_kind_name(ev->kind), g_text);
        }
        fflush(stdout);
        break;
    case VEIL_EV_KEY_UPDATE:
        break;
    case VEIL_EV_PEER_CLOSED:
        cl->peer_closed = 1;
        break;
    }
    return 0;
}

/* Pinning or trust on first use.  Runs at ServerHello, before ServerVerify
 * proves the server holds the key, so a new key is only *recorded* once
 * the handshake has completed. */
static int cb_verify(void *user, const uint8_t fp[VEIL_FINGERPRINT_LEN], const uint8_t *spki,
                     size_t spki_len)
{
    struct client *cl = user;
    (void)spki;
    (void)spki_len;
    veil_fingerprint_hex(fp, cl->fp_hex);
    if (cl->have_pin) {
        if (veil_memeq_ct(fp, cl->pin, VEIL_FINGERPRINT_LEN) != 0) {
            cl->untrusted = TRUST_PIN_MISMATCH;
            return -1;
        }
        cl->trust_how = "matches --fingerprint";
        return 0;
    }
    if (!cl->use_kh) {
        cl->trust_how = "NOT VERIFIED (--no-known-hosts)";
        return 0;
    }
    switch (vapp_known_hosts_check(cl->kh_path, cl->kh_key, cl->fp_hex, cl->old_hex,
                                   &cl->old_line, cl->kh_err)) {
    case VAPP_KH_MATCH:
        cl->trust_how = "known host";
        return 0;
    case VAPP_KH_UNKNOWN:
        cl->kh_new = 1;
        cl->trust_how = "new host, trusted on first use";
        return 0;
    case VAPP_KH_CHANGED:
        cl->untrusted = TRUST_KH_CHANGED;
        return -1;
    case VAPP_KH_ERROR:
    default:
        cl->untrusted = TRUST_KH_ERROR;
        return -1;
    }
}

/* ------------------------------------------------------------------------ */
/* Socket I/O                                                               */

/* Sends what the socket takes now.  0, or -1 on a write error (errno). */
static int flush_out(struct client *cl)
{
    while (cl->out.len > 0) {
        ssize_t n = send(cl->fd, cl->out.base, cl->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            veil_buf_consume(&cl->out, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Pushes out a final alert or close_notify, for at most limit_ms. */
static void flush_bounded(struct client *cl, uint64_t limit_ms)
{
    uint64_t deadline = vapp_mono_ms() + limit_ms;
    while (cl->out.len > 0) {
        if (flush_out(cl) != 0)
            return;
        uint64_t now = vapp_mono_ms();
        if (cl->out.len == 0 || now >= deadline)
            return;
        struct pollfd p = {.fd = cl->fd, .events = POLLOUT};
        (void)poll(&p, 1, (int)(deadline - now));
    }
}

static const char *alert_hint(int code)
{
    switch (code) {
    case VEIL_ALERT_PLAINTEXT_REFUSED:
        return " (the server does not accept plaintext mode; run without --plain)";
    case VEIL_ALERT_HANDSHAKE_FAILURE:
        return " (no mode or cipher suite in common with the server)";
    case VEIL_ALERT_PROTOCOL_VERSION:
        return " (no protocol version in common with the server)";
    case VEIL_ALERT_SERVER_BUSY:
        return " (the server is at its connection limit or shutting down; try again later)";
    case VEIL_ALERT_TIMEOUT:
        return " (a server timeout expired)";
    case VEIL_ALERT_UNKNOWN_SERVICE:
        return " (the server does not offer this service; see its --services)";
    default:
        return "";
    }
}

/* Turns a libproto error into the one error line and an exit status. */
static int report_error(struct client *cl, int err)
{
    flush_bounded(cl, ALERT_FLUSH_MS); /* our alert, if libproto queued one */
    if (err == -VEIL_ALERT_UNTRUSTED_IDENTITY && cl->untrusted != TRUST_OK) {
        switch (cl->untrusted) {
        case TRUST_PIN_MISMATCH: {
            char pinhex[VEIL_FINGERPRINT_HEX_LEN];
            veil_fingerprint_hex(cl->pin, pinhex);
            fail_line("server identity not trusted: %s presented key sha256:%s, but "
                      "--fingerprint is sha256:%s; connection refused",
                      cl->kh_key, cl->fp_hex, pinhex);
            return VAPP_EXIT_UNTRUSTED;
        }
        case TRUST_KH_CHANGED:
            vapp_known_hosts_warn_changed(PROG, cl->kh_path, cl->kh_key, cl->fp_hex, cl->old_hex,
                                          cl->old_line);
            return VAPP_EXIT_UNTRUSTED;
        case TRUST_KH_ERROR:
        default:
            fail_line("%s", cl->kh_err);
            return VAPP_EXIT_LOCAL;
        }
    }
    if (err == VEIL_ERR_PEER_ALERT(VEIL_ALERT_AUTH_FAILED)) {
        /* Unknown user, wrong password, too many failures: one answer, on
           purpose (docs/SERVICES.md §1). */
        fail_line("authentication failed");
        return CL_EXIT_AUTH;
    }
    if (err == -VEIL_ALERT_AUTH_FAILED) {
        fail_line("authentication failed: the server could not prove that it knows your "
                  "password verifier (is it the real server?)");
        return CL_EXIT_AUTH;
    }
    if (err <= VEIL_ERR_PEER_ALERT_BASE && err >= VEIL_ERR_PEER_ALERT_MIN) {
        int code = VEIL_ERR_PEER_ALERT_BASE - err;
        if (!cl->hs_done) {
            fail_line("handshake refused by the server: alert %s%s", veil_alert_name(code),
                      alert_hint(code));
            return VAPP_EXIT_REFUSED;
        }
        fail_line("the server ended the session with alert %s%s", veil_alert_name(code),
                  alert_hint(code));
        return VAPP_EXIT_PROTOCOL;
    }
    if (err <= -1 && err >= VEIL_ERR_ALERT_MIN) {
        fail_line("protocol error %s: %s (sent alert %s)",
                  cl->hs_done ? "in the session" : "in the handshake", veil_strerror(err),
                  veil_alert_name(-err));
        return VAPP_EXIT_PROTOCOL;
    }
    fail_line("%s", veil_strerror(err));
    return err == VEIL_ERR_NOMEM ? VAPP_EXIT_LOCAL : VAPP_EXIT_PROTOCOL;
}

typedef int (*cond_fn)(const struct client *cl, unsigned long arg);

static int cond_handshake(const struct client *cl, unsigned long arg)
{
    (void)arg;
    return cl->hs_done;
}
static int cond_acks(const struct client *cl, unsigned long arg) { return cl->acks >= arg; }
static int cond_closed(const struct client *cl, unsigned long arg)
{
    (void)arg;
    return cl->peer_closed || cl->eof;
}
/* User authentication: ServerAuth verified (veil_conn_user is set then). */
static int cond_authenticated(const struct client *cl, unsigned long arg)
{
    (void)arg;
    return veil_conn_user(cl->vc) != NULL;
}
static int cond_user(const struct client *cl, unsigned long arg)
{
    (void)arg;
    return cl->wait_fn(cl->wait_arg);
}

/*
 * Moves bytes until done(cl, arg) holds.  Returns 0, or an exit status after
 * printing the error line.  Bounded by limit_ms and libproto's own timer.
 */
static int pump(struct client *cl, cond_fn done, unsigned long arg, uint64_t limit_ms,
                const char *waiting_for)
{
    uint64_t deadline = vapp_mono_ms() + limit_ms;
    for (;;) {
        /* Flush first: what feed queued (the client Finished, say) must
           leave even when the condition is already met. */
        if (flush_out(cl) != 0) {
            fail_line("connection lost while sending: %s", strerror(errno));
            return VAPP_EXIT_PROTOCOL;
        }
        if (done(cl, arg))
            return 0;
        if (cl->peer_closed) {
            /* The server closed while we still expected something. */
            if (veil_conn_close(cl->vc, &cl->out) != 0) {
                /* best effort: we are failing anyway */
            }
            flush_bounded(cl, ALERT_FLUSH_MS);
            fail_line("the server closed the session (close_notify) while waiting for %s",
                      waiting_for);
            return VAPP_EXIT_PROTOCOL;
        }
        uint64_t now = vapp_mono_ms();
        uint64_t t = veil_conn_next_timeout(cl->vc);
        if (t <= now) {
            int r = veil_conn_handle_timeout(cl->vc, now, &cl->out);
            if (r != 0) {
                flush_bounded(cl, ALERT_FLUSH_MS);
                fail_line("timed out waiting for %s (%s)", waiting_for, veil_strerror(r));
                return VAPP_EXIT_PROTOCOL;
            }
        }
        if (now >= deadline) {
            fail_line("timed out after %llu ms waiting for %s", (unsigned long long)limit_ms,
                      waiting_for);
            return VAPP_EXIT_PROTOCOL;
        }
        uint64_t until = t < deadline ? t : deadline;
        uint64_t wait = until > now ? until - now : 0;
        struct pollfd p = {.fd = cl->fd, .events = POLLIN};
        if (cl->out.len > 0)
            p.events |= POLLOUT;
        int pr = poll(&p, 1, wait > 60000 ? 60000 : (int)wait);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            fail_line("poll: %s", strerror(errno));
            return VAPP_EXIT_LOCAL;
        }
        if (pr == 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = recv(cl->fd, g_rdbuf, sizeof g_rdbuf, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            fail_line("connection lost while waiting for %s: %s", waiting_for, strerror(errno));
            return VAPP_EXIT_PROTOCOL;
        }
        if (n == 0) {
            cl->eof = 1;
            if (done(cl, arg))
                return 0;
            if (!cl->hs_done)
                fail_line("the server closed the connection during the handshake");
            else
                fail_line("connection truncated: the server closed the connection without "
                          "close_notify while waiting for %s",
                          waiting_for);
            return VAPP_EXIT_PROTOCOL;
        }
        int r = veil_conn_feed(cl->vc, g_rdbuf, (size_t)n, vapp_mono_ms(), &cl->out);
        if (r != 0)
            return report_error(cl, r);
    }
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

/* Reads one line (without "\n" or "\r\n") of at most cap-1 bytes.
 * Returns 1 for a line, 0 at EOF with nothing read, -1 if too long. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    int ch;
    int too_long = 0;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n + 1 < cap)
            buf[n++] = (char)ch;
        else
            too_long = 1; /* keep reading to the end of the line, bounded by it */
    }
    if (ch == EOF && n == 0 && !too_long)
        return 0;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return too_long ? -1 : 1;
}

static int send_one(struct client *cl, const char *text, size_t len, unsigned long index)
{
    int r = veil_conn_send(cl->vc, VEIL_MSG_TEXT, vapp_wall_ms(), (const uint8_t *)text, len,
                           &cl->out);
    if (r != 0)
        return report_error(cl, r);
    char what[64];
    snprintf(what, sizeof what, "the ack of message %lu", index);
    return pump(cl, cond_acks, index, cl->timeout_ms, what);
}

/* ------------------------------------------------------------------------ */
/* The session, for the service front ends (client.h)                      */

void cl_set_message_handler(struct client *cl, cl_message_fn fn, void *user)
{
    cl->msg_fn = fn;
    cl->msg_user = user;
    /* What came before, in order. */
    for (size_t off = 0; fn != NULL && off + 13 <= cl->early.len;) {
        veil_event ev = {.type = VEIL_EV_MESSAGE};
        uint32_t n;
        ev.kind = cl->early.base[off];
        memcpy(&ev.timestamp_ms, cl->early.base + off + 1, 8);
        memcpy(&n, cl->early.base + off + 9, 4);
        ev.data = cl->early.base + off + 13;
        ev.len = n;
        fn(user, &ev);
        off += 13 + (size_t)n;
    }
    cl->early.len = 0;
}

void cl_set_term(struct client *cl, ui_term *t)
{
    (void)cl;
    g_term = t;
}

int cl_socket(const struct client *cl) { return cl->fd; }

short cl_socket_events(const struct client *cl)
{
    return (short)(POLLIN | (cl->out.len > 0 ? POLLOUT : 0));
}

int cl_poll_timeout(const struct client *cl, int cap_ms)
{
    uint64_t t = veil_conn_next_timeout(cl->vc), now = vapp_mono_ms();
    if (t == UINT64_MAX)
        return cap_ms;
    if (t <= now)
        return 0;
    return t - now > (uint64_t)cap_ms ? cap_ms : (int)(t - now);
}

int cl_peer_closed(const struct client *cl) { return cl->peer_closed; }

const char *cl_where(const struct client *cl) { return cl->kh_key; }

void cl_fail(struct client *cl, const char *fmt, ...)
{
    (void)cl;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail_line("%s", msg);
}

void cl_note(struct client *cl, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    note(cl, "%s", msg);
}

int cl_io(struct client *cl, short revents)
{
    if (flush_out(cl) != 0) {
        fail_line("connection lost while sending: %s", strerror(errno));
        return VAPP_EXIT_PROTOCOL;
    }
    uint64_t now = vapp_mono_ms();
    if (veil_conn_next_timeout(cl->vc) <= now) {
        int r = veil_conn_handle_timeout(cl->vc, now, &cl->out);
        if (r != 0)
            return report_error(cl, r);
    }
    if (!(revents & (POLLIN | POLLHUP | POLLERR)) || cl->eof)
        return 0;
    ssize_t n = recv(cl->fd, g_rdbuf, sizeof g_rdbuf, 0);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        fail_line("connection lost: %s", strerror(errno));
        return VAPP_EXIT_PROTOCOL;
    }
    if (n == 0) {
        cl->eof = 1;
        if (cl->peer_closed)
            return 0;
        fail_line("connection truncated: the server closed the connection without close_notify");
        return VAPP_EXIT_PROTOCOL;
    }
    int r = veil_conn_feed(cl->vc, g_rdbuf, (size_t)n, vapp_mono_ms(), &cl->out);
    if (r != 0)
        return report_error(cl, r);
    if (flush_out(cl) != 0) {
        fail_line("connection lost while sending: %s", strerror(errno));
        return VAPP_EXIT_PROTOCOL;
    }
    return 0;
}

int cl_send(struct client *cl, uint8_t kind, const void *data, size_t len)
{
    int r = veil_conn_send(cl->vc, kind, vapp_wall_ms(), data, len, &cl->out);
    if (r != 0)
        return report_error(cl, r);
    if (flush_out(cl) != 0) {
        fail_line("connection lost while sending: %s", strerror(errno));
        return VAPP_EXIT_PROTOCOL;
    }
    return 0;
}

int cl_wait(struct client *cl, int (*done)(void *arg), void *arg, const char *what)
{
    cl->wait_fn = done;
    cl->wait_arg = arg;
    return pump(cl, cond_user, 0, cl->timeout_ms, what);
}

int cl_finish(struct client *cl)
{
    if (cl->peer_closed || cl->eof) {
        /* The server ended the session: answer its close_notify. */
        if (!cl->eof && veil_conn_close(cl->vc, &cl->out) == 0)
            flush_bounded(cl, ALERT_FLUSH_MS);
        return VAPP_EXIT_OK;
    }
    int r = veil_conn_close(cl->vc, &cl->out);
    if (r != 0)
        return report_error(cl, r);
    /* Wait for the server's close_notify, briefly: what was sent before
       our close_notify has been delivered in order, so a missing answer
       only earns a notice. */
    uint64_t wait_ms = cl->timeout_ms < CLOSE_WAIT_MS ? cl->timeout_ms : CLOSE_WAIT_MS;
    g_soft_fail = cl->quiet ? 2 : 1;
    r = pump(cl, cond_closed, 0, wait_ms, "the server's close_notify");
    g_soft_fail = 0;
    if (r == 0 && cl->eof && !cl->peer_closed)
        note(cl, "warning: the server closed the connection without close_notify");
    return VAPP_EXIT_OK;
}

/* ------------------------------------------------------------------------ */

static void usage(void)
{
    /* One write(2) at exit: a reader that stops early (grep -q) then
       cannot cut the text with SIGPIPE halfway. */
    static char obuf[16384];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    printf("Usage: veil-client [options] HOST [PORT]\n"
           "       veil-client --service chat [options] HOST [PORT]\n"
           "       veil-client --service bank --user NAME [options] HOST [PORT] [OPERATION...]\n"
           "\n"
           "Opens a Veil session to veil-server on HOST, PORT (default %d).\n"
           "\n"
           "Service msg (the default): sends text messages and prints the server's\n"
           "acknowledgement of each as \"ack: <text>\".  Messages come from -m options;\n"
           "otherwise, if standard input is a terminal, from a \"Message: \" prompt (one\n"
           "message, or several with --interactive until an empty line or EOF);\n"
           "otherwise one message per line of standard input.\n"
           "\n"
           "Service chat: every line typed (or read from standard input) goes to\n"
           "everyone else in the chat; their lines are printed as \"NAME: text\".  EXIT\n"
           "or END (or end of input; Ctrl-C or Ctrl-D on a terminal) leaves the chat.\n"
           "\n"
           "Service bank (needs --user): OPERATIONs are deposit AMOUNT, withdraw AMOUNT,\n"
           "balance, history [N]; AMOUNT like 12.34.  Without OPERATIONs: a menu on a\n"
           "terminal (1 deposit, 2 withdraw, 3 balance, 4 history, 5 exit), else one\n"
           "operation per line of standard input.  Each deposit and withdrawal carries\n"
           "a request id, applied at most once by the server.\n"
           "\n"
           "Options:\n"
           "      --service NAME       msg (default), chat or bank\n"
           "      --user NAME          authenticate as user NAME (user directory of the\n"
           "                           server); the password is read from the terminal\n"
           "                           with echo off, or from --password-fd; never from\n"
           "                           the command line or the environment\n"
           "      --password-fd N      read the password as the first line of file\n"
           "                           descriptor N (scripts: --password-fd 3 3<FILE)\n"
           "      --group NAME         key exchange to offer (repeatable, in preference\n"
           "                           order; default x25519):\n"
           "                             x25519     elliptic-curve Diffie-Hellman\n"
           "                             ffdhe2048  classic Diffie-Hellman (RFC 7919)\n"
           "                             rsa        RSA-OAEP key transport to a server\n"
           "                                        with an RSA key. It has NO forward\n"
           "                                        secrecy: anyone who later obtains\n"
           "                                        the server's private key decrypts\n"
           "                                        every recorded session.\n"
           "      --request-id ID      bank: the request id of the one deposit or\n"
           "                           withdraw given (16-64 of A-Z a-z 0-9 _ -), to\n"
           "                           repeat a request whose reply was lost\n"
           "  -m, --message TEXT       send TEXT (repeatable; visible to other local\n"
           "                           users in the process list, use stdin for private text)\n"
           "  -i, --interactive        prompt for messages until an empty line or EOF\n"
           "      --plain              plaintext mode: records are not encrypted (the\n"
           "                           server must run with --allow-plain)\n"
           "      --suite NAME         offer only this cipher suite: aes-256-gcm,\n"
           "                           chacha20-poly1305, aes-256-cbc-hmac-sha256\n"
           "                           (default: all, in that order)\n"
           "      --fingerprint FP     accept only a server whose identity has this\n"
           "                           fingerprint (\"sha256:<64 hex>\", as printed by\n"
           "                           veil-keygen); known_hosts is then not used\n"
           "      --known-hosts FILE   known_hosts file (default ~/.config/veil/known_hosts)\n"
           "      --no-known-hosts     do not read or write known_hosts; without\n"
           "                           --fingerprint the server is NOT authenticated\n"
           "      --keylog FILE        append this session's secrets to FILE (mode 0600)\n"
           "                           for decryption in Wireshark or veil tools\n"
           "                           (default: $VEIL_KEYLOGFILE)\n"
           "      --connect-timeout SEC  give up connecting after SEC (default %d)\n"
           "      --timeout SEC        give up waiting for the handshake, an ack or the\n"
           "                           server's close_notify after SEC (default %d)\n"
           "  -v, --verbose            print the peer address, negotiated mode, suite,\n"
           "                           group and server fingerprint on stderr\n"
           "  -q, --quiet              no notices on stderr, only errors\n"
           "  -h, --help               show this help and exit\n"
           "  -V, --version            show the version and exit\n"
           "\n"
           "Server identity: with --fingerprint the key must match it.  Otherwise the\n"
           "known_hosts file is used (lines \"host:port <64 hex>\"): a new server is\n"
           "trusted on first use and recorded; a server whose key changed is refused\n"
           "with a warning.\n"
           "\n"
           "Environment:\n"
           "  VEIL_KEYLOGFILE  keylog file used when --keylog is not given\n"
           "  HOME             locates ~/.config/veil/known_hosts\n"
           "\n"
           "Exit status:\n"
           "  0  msg: every message was acknowledged; chat: left the chat or the\n"
           "     server ended it; bank: every operation was carried out\n"
           "  1  bad arguments (or a message longer than %d bytes)\n"
           "  2  cannot connect: name not resolved, connection refused, host\n"
           "     unreachable, or --connect-timeout expired\n"
           "  3  server identity not trusted: --fingerprint mismatch, or the key\n"
           "     recorded in known_hosts changed\n"
           "  4  handshake refused by the server: it sent an alert such as\n"
           "     plaintext_refused, handshake_failure, unknown_service or server_busy\n"
           "  5  protocol error, connection lost or truncated (closed without\n"
           "     close_notify), alert after the handshake, or --timeout expired\n"
           "  6  local error: keylog or known_hosts file unusable, out of memory\n"
           "  7  authentication failed (unknown user, wrong password, or too many\n"
           "     failures: the server does not say which)\n"
           "  8  bank: a request was refused (insufficient funds, malformed amount, ...)\n",
           VEIL_DEFAULT_PORT, DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_TIMEOUT_S, VEIL_MAX_MESSAGE);
}

static const char *suite_label(uint16_t suite)
{
    return suite == VEIL_SUITE_NULL ? "none" : veil_suite_name(suite);
}

static const char *mode_name(uint8_t mode)
{
    return mode == VEIL_MODE_PLAINTEXT ? "plaintext" : mode == VEIL_MODE_ENCRYPTED ? "encrypted"
                                                                                  : "?";
}

static int run(struct client *cl, const char **msgs, size_t n_msgs, int interactive,
               uint64_t connect_ms, const char *keylog_path, char **ops, int n_ops,
               const char *request_id)
{
    char err[VAPP_ERRLEN];
    if (vapp_keylog_open(&cl->keylog, keylog_path, err) != 0) {
        fail_line("%s", err);
        return VAPP_EXIT_LOCAL;
    }
    vapp_connect_error why;
    cl->fd = vapp_connect(cl->host, cl->port, connect_ms, &why, cl->peer, err);
    if (cl->fd < 0) {
        fail_line("%s", err);
        return VAPP_EXIT_CONNECT;
    }
    if (cl->verbose)
        note(cl, "connected to %s", cl->peer);

    veil_config cfg;
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.modes = cl->plain ? VEIL_MODE_PLAINTEXT : VEIL_MODE_ENCRYPTED;
    if (cl->have_suite) {
        cfg.suites = &cl->suite;
        cfg.n_suites = 1;
    }
    cfg.handshake_timeout_ms = cl->timeout_ms;
    cfg.service = cl->service;
    if (cl->n_groups > 0) {
        cfg.groups = cl->groups;
        cfg.n_groups = cl->n_groups;
    }
    if (cl->user != NULL) {
        cfg.user_name = cl->user;
        cfg.password = cl->password;
        cfg.password_len = cl->password_len;
    }
    veil_callbacks cb = {
        .random = vapp_random,
        .keylog = cb_keylog,
        .on_event = cb_event,
        .verify_identity = cb_verify,
        .user = cl,
    };
    int r = veil_conn_new(&cfg, &cb, vapp_mono_ms(), &cl->vc);
    veil_memzero(cl->password, sizeof cl->password); /* libproto keeps its own copy */
    if (r != 0) {
        fail_line("cannot start a session: %s", veil_strerror(r));
        return VAPP_EXIT_LOCAL;
    }
    r = veil_conn_start(cl->vc, &cl->out);
    if (r != 0)
        return report_error(cl, r);
    r = pump(cl, cond_handshake, 0, cl->timeout_ms, "the handshake");
    if (r != 0)
        return r;
    /* Belt and braces: the key the session is bound to must be the one the
       trust decision was made on. */
    uint8_t fp[VEIL_FINGERPRINT_LEN];
    char fp_now[VEIL_FINGERPRINT_HEX_LEN] = "";
    if (veil_conn_peer_fingerprint(cl->vc, fp) == 0)
        veil_fingerprint_hex(fp, fp_now);
    if (cl->trust_how == NULL || strcmp(fp_now, cl->fp_hex) != 0) {
        veil_conn_abort(cl->vc, VEIL_ALERT_INTERNAL_ERROR, &cl->out);
        flush_bounded(cl, ALERT_FLUSH_MS);
        fail_line("internal error: the server identity was not checked");
        return VAPP_EXIT_PROTOCOL;
    }

    if (cl->kh_new) {
        if (vapp_known_hosts_add(cl->kh_path, cl->kh_key, cl->fp_hex, err) != 0) {
            /* Not fatal for this session (its key was proven), but say so. */
            note(cl, "warning: %s", err);
        } else {
            note(cl, "new server %s trusted on first use: fingerprint sha256:%s added to %s",
                 cl->kh_key, cl->fp_hex, cl->kh_path);
        }
    } else if (!cl->have_pin && !cl->use_kh) {
        note(cl, "WARNING: the server identity was not verified (--no-known-hosts without "
                 "--fingerprint); fingerprint sha256:%s",
             cl->fp_hex);
    }
    if (cl->verbose) {
        note(cl, "handshake done: mode %s, suite %s, group %s",
             mode_name(veil_conn_mode(cl->vc)), suite_label(veil_conn_suite(cl->vc)),
             veil_group_name(veil_conn_group(cl->vc)));
        note(cl, "server fingerprint sha256:%s (%s)", cl->fp_hex,
             cl->trust_how ? cl->trust_how : "?");
    }
    if (veil_conn_group(cl->vc) == VEIL_GROUP_RSA_TRANSPORT)
        note(cl, "note: RSA key transport: this session has no forward secrecy (the server's "
                 "private key decrypts a recording of it)");
    if (cl->user != NULL) {
        /* Wait for the server's proof (ServerAuth): a failed login is then
           reported before anything is sent or shown. */
        r = pump(cl, cond_authenticated, 0, cl->timeout_ms, "the authentication");
        if (r != 0)
            return r;
        if (cl->verbose)
            note(cl, "authenticated as %s", veil_conn_user(cl->vc));
    }
    if (cl->service != NULL && strcmp(cl->service, "chat") == 0)
        return ui_chat_run(cl);
    if (cl->service != NULL && strcmp(cl->service, "bank") == 0)
        return ui_bank_run(cl, ops, n_ops, request_id);

    /* Messages: -m list, a prompt on a terminal, or lines of a pipe. */
    static char line[VEIL_MAX_MESSAGE + 2];
    unsigned long sent = 0;
    int tty = isatty(STDIN_FILENO);
    for (size_t i = 0;; i++) {
        const char *text;
        size_t len;
        if (n_msgs > 0) {
            if (i >= n_msgs)
                break;
            text = msgs[i];
            len = strlen(text);
        } else {
            if (tty) {
                if (i > 0 && !interactive)
                    break;
                fputs("Message: ", stderr);
                fflush(stderr);
            }
            int lr = read_line(stdin, line, sizeof line, &len);
            if (lr == 0)
                break;
            if (lr < 0) {
                if (veil_conn_close(cl->vc, &cl->out) != 0) {
                    /* best effort: we are failing anyway */
                }
                flush_bounded(cl, ALERT_FLUSH_MS);
                fail_line("message %lu is longer than %d bytes", sent + 1, VEIL_MAX_MESSAGE);
                return VAPP_EXIT_USAGE;
            }
            if (tty && len == 0)
                break; /* an empty line ends the conversation */
            text = line;
        }
        r = send_one(cl, text, len, ++sent);
        if (r != 0)
            return r;
    }

    r = veil_conn_close(cl->vc, &cl->out);
    if (r != 0)
        return report_error(cl, r);
    /* Wait for the server's close_notify, briefly: every message has been
       acknowledged already, so a missing one only earns a notice. */
    uint64_t wait_ms = cl->timeout_ms < CLOSE_WAIT_MS ? cl->timeout_ms : CLOSE_WAIT_MS;
    /* Failures here are warnings: the messages were delivered. */
    g_soft_fail = cl->quiet ? 2 : 1;
    r = pump(cl, cond_closed, 0, wait_ms, "the server's close_notify");
    g_soft_fail = 0;
    if (r == 0 && cl->eof && !cl->peer_closed)
        note(cl, "warning: the server closed the connection without close_notify");
    return VAPP_EXIT_OK;
}

int main(int argc, char **argv)
{
    enum {
        OPT_PLAIN = 256,
        OPT_SUITE,
        OPT_FINGERPRINT,
        OPT_KNOWN_HOSTS,
        OPT_NO_KNOWN_HOSTS,
        OPT_KEYLOG,
        OPT_CONNECT_TIMEOUT,
        OPT_TIMEOUT,
        OPT_SERVICE,
        OPT_USER,
        OPT_PASSWORD_FD,
        OPT_GROUP,
        OPT_REQUEST_ID,
    };
    static const struct option opts[] = {
        {"message", required_argument, NULL, 'm'},
        {"interactive", no_argument, NULL, 'i'},
        {"plain", no_argument, NULL, OPT_PLAIN},
        {"suite", required_argument, NULL, OPT_SUITE},
        {"fingerprint", required_argument, NULL, OPT_FINGERPRINT},
        {"known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS},
        {"no-known-hosts", no_argument, NULL, OPT_NO_KNOWN_HOSTS},
        {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"user", required_argument, NULL, OPT_USER},
        {"password-fd", required_argument, NULL, OPT_PASSWORD_FD},
        {"group", required_argument, NULL, OPT_GROUP},
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static struct client client;
    struct client *cl = &client;
    cl->fd = -1;
    cl->use_kh = 1;
    cl->timeout_ms = (uint64_t)DEFAULT_TIMEOUT_S * 1000;
    veil_buf_init(&cl->out);
    veil_buf_init(&cl->early);
    cl->keylog.fd = -1;
    static const char *msgs[MAX_MESSAGES];
    size_t n_msgs = 0;
    int interactive = 0, kh_given = 0;
    const char *kh_opt = NULL, *keylog_path = NULL, *request_id = NULL;
    long password_fd = -1;
    uint64_t connect_ms = (uint64_t)DEFAULT_CONNECT_TIMEOUT_S * 1000;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:ivqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (n_msgs == MAX_MESSAGES)
                vapp_usage_error(PROG, SYNOPSIS, "at most %d -m options", MAX_MESSAGES);
            if (strlen(optarg) > VEIL_MAX_MESSAGE)
                vapp_usage_error(PROG, SYNOPSIS, "message %zu is longer than %d bytes",
                                 n_msgs + 1, VEIL_MAX_MESSAGE);
            msgs[n_msgs++] = optarg;
            break;
        case 'i': interactive = 1; break;
        case OPT_PLAIN: cl->plain = 1; break;
        case OPT_SUITE:
            if (veil_suite_from_name(optarg, &cl->suite) != 0 || cl->suite == VEIL_SUITE_NULL)
                vapp_usage_error(PROG, SYNOPSIS,
                                 "unknown suite '%s' (known: aes-256-gcm, chacha20-poly1305, "
                                 "aes-256-cbc-hmac-sha256)",
                                 optarg);
            cl->have_suite = 1;
            break;
        case OPT_FINGERPRINT:
            if (veil_fingerprint_parse(optarg, cl->pin) != 0)
                vapp_usage_error(PROG, SYNOPSIS,
                                 "--fingerprint needs 64 hex digits, optionally prefixed "
                                 "with sha256:");
            cl->have_pin = 1;
            break;
        case OPT_KNOWN_HOSTS: kh_opt = optarg; kh_given = 1; break;
        case OPT_NO_KNOWN_HOSTS: cl->use_kh = 0; break;
        case OPT_KEYLOG: keylog_path = optarg; break;
        case OPT_CONNECT_TIMEOUT:
            if (vapp_parse_seconds(optarg, 3600.0, 0, &connect_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS,
                                 "--connect-timeout needs seconds (0 < SEC <= 3600)");
            break;
        case OPT_TIMEOUT:
            if (vapp_parse_seconds(optarg, 3600.0, 0, &cl->timeout_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--timeout needs seconds (0 < SEC <= 3600)");
            break;
        case OPT_SERVICE:
            if (strcmp(optarg, "msg") != 0 && strcmp(optarg, "chat") != 0 &&
                strcmp(optarg, "bank") != 0)
                vapp_usage_error(PROG, SYNOPSIS, "unknown service '%s' (known: msg, chat, bank)",
                                 optarg);
            cl->service = strcmp(optarg, "msg") == 0 ? NULL : optarg;
            break;
        case OPT_USER:
            if (!vapp_user_name_valid(optarg))
                vapp_usage_error(PROG, SYNOPSIS,
                                 "--user needs a name of 1 to %d characters of A-Z a-z 0-9 . _ -",
                                 VEIL_MAX_USER_NAME);
            cl->user = optarg;
            break;
        case OPT_PASSWORD_FD: {
            unsigned long fd;
            if (vapp_parse_ulong(optarg, 0, 1000000, &fd) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--password-fd needs a file descriptor number");
            password_fd = (long)fd;
            break;
        }
        case OPT_GROUP: {
            uint16_t g;
            if (veil_group_from_name(optarg, &g) != 0)
                vapp_usage_error(PROG, SYNOPSIS,
                                 "unknown key exchange '%s' (known: x25519, ffdhe2048, rsa)", optarg);
            int dup = 0;
            for (size_t i = 0; i < cl->n_groups; i++)
                dup |= cl->groups[i] == g;
            if (!dup && cl->n_groups < 3)
                cl->groups[cl->n_groups++] = g;
            break;
        }
        case OPT_REQUEST_ID: request_id = optarg; break;
        case 'v': cl->verbose = 1; break;
        case 'q': cl->quiet = 1; break;
        case 'h': usage(); return VAPP_EXIT_OK;
        case 'V': printf("veil-client (Veil) 1\n"); return VAPP_EXIT_OK;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind >= argc)
        vapp_usage_error(PROG, SYNOPSIS, "missing HOST");
    cl->host = argv[optind++];
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", VEIL_DEFAULT_PORT);
    cl->port = portbuf;
    int bank = cl->service != NULL && strcmp(cl->service, "bank") == 0;
    /* bank: HOST [PORT] [OPERATION...]; a PORT is all digits, an operation
       never starts with one. */
    if (optind < argc && (!bank || (argv[optind][0] >= '0' && argv[optind][0] <= '9'))) {
        cl->port = argv[optind++];
        if (vapp_parse_port(cl->port, 0) < 0)
            vapp_usage_error(PROG, SYNOPSIS, "invalid port '%s' (1-65535)", cl->port);
    }
    char **ops = argv + optind;
    int n_ops = bank ? argc - optind : 0;
    if (optind < argc && !bank)
        vapp_usage_error(PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    if (bank) {
        char err[VAPP_ERRLEN];
        if (cl->user == NULL)
            vapp_usage_error(PROG, SYNOPSIS,
                             "the bank service needs --user NAME (accounts belong to users)");
        if (ui_bank_check_ops(ops, n_ops, request_id, err) != 0)
            vapp_usage_error(PROG, SYNOPSIS, "%s", err);
    } else if (request_id != NULL) {
        vapp_usage_error(PROG, SYNOPSIS, "--request-id is for the bank service");
    }
    if (cl->service != NULL && (n_msgs > 0 || interactive))
        vapp_usage_error(PROG, SYNOPSIS, "-m and --interactive are for the msg service");
    if (password_fd >= 0 && cl->user == NULL)
        vapp_usage_error(PROG, SYNOPSIS, "--password-fd needs --user");
    if (kh_given && !cl->use_kh)
        vapp_usage_error(PROG, SYNOPSIS, "--known-hosts and --no-known-hosts conflict");
    if (cl->host[0] == '\0')
        vapp_usage_error(PROG, SYNOPSIS, "empty HOST");

    vapp_known_hosts_key(cl->host, cl->port, cl->kh_key, sizeof cl->kh_key);
    if (cl->use_kh && !cl->have_pin) {
        char err[VAPP_ERRLEN];
        if (kh_opt != NULL) {
            snprintf(cl->kh_path, sizeof cl->kh_path, "%s", kh_opt);
        } else if (vapp_known_hosts_default(cl->kh_path, sizeof cl->kh_path, err) != 0) {
            fail_line("%s; use --known-hosts FILE or --fingerprint", err);
            return VAPP_EXIT_LOCAL;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    if (cl->user != NULL) {
        /* Asked before connecting, so typing it does not race a timeout. */
        char err[VAPP_ERRLEN];
        if (ui_read_password(cl->user, cl->kh_key, (int)password_fd, cl->password,
                             sizeof cl->password, &cl->password_len, err) != 0) {
            fail_line("%s", err);
            return VAPP_EXIT_USAGE;
        }
    }

    int status = run(cl, msgs, n_msgs, interactive, connect_ms, keylog_path, ops, n_ops, request_id);
    veil_memzero(cl->password, sizeof cl->password);

    veil_conn_free(cl->vc);
    veil_buf_free(&cl->out);
    veil_buf_free(&cl->early);
    if (cl->fd >= 0)
        close(cl->fd);
    vapp_keylog_close(&cl->keylog);
    return status;
}
