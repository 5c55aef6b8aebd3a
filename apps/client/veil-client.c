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
};

static char g_text[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];
static uint8_t g_rdbuf[32 * 1024];

/* While closing, after every message was acknowledged, failures are only
 * warnings: 1 = print as "warning: ...", 2 = do not print (-q). */
static int g_soft_fail;

/* The one error line of a failed run. */
static void fail_line(const char *fmt, ...) VAPP_PRINTF(1, 2);
static void fail_line(const char *fmt, ...)
{
    if (g_soft_fail == 2)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s%s\n", PROG, g_soft_fail ? "warning: " : "", msg);
    fflush(stderr);
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
    fprintf(stderr, "%s: %s\n", PROG, msg);
    fflush(stderr);
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

static void usage(void)
{
    printf("Usage: veil-client [options] HOST [PORT]\n"
           "\n"
           "Opens a Veil session to veil-server on HOST, PORT (default %d), sends text\n"
           "messages, and prints the server's acknowledgement of each as \"ack: <text>\".\n"
           "Messages come from -m options; otherwise, if standard input is a terminal,\n"
           "from a \"Message: \" prompt (one message, or several with --interactive until\n"
           "an empty line or EOF); otherwise one message per line of standard input.\n"
           "\n"
           "Options:\n"
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
           "  0  every message was acknowledged\n"
           "  1  bad arguments (or a message longer than %d bytes)\n"
           "  2  cannot connect: name not resolved, connection refused, host\n"
           "     unreachable, or --connect-timeout expired\n"
           "  3  server identity not trusted: --fingerprint mismatch, or the key\n"
           "     recorded in known_hosts changed\n"
           "  4  handshake refused by the server: it sent an alert such as\n"
           "     plaintext_refused, handshake_failure or server_busy\n"
           "  5  protocol error, connection lost or truncated (closed without\n"
           "     close_notify), alert after the handshake, or --timeout expired\n"
           "  6  local error: keylog or known_hosts file unusable, out of memory\n",
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
               uint64_t connect_ms, const char *keylog_path)
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
    veil_callbacks cb = {
        .random = vapp_random,
        .keylog = cb_keylog,
        .on_event = cb_event,
        .verify_identity = cb_verify,
        .user = cl,
    };
    int r = veil_conn_new(&cfg, &cb, vapp_mono_ms(), &cl->vc);
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
    cl->keylog.fd = -1;
    static const char *msgs[MAX_MESSAGES];
    size_t n_msgs = 0;
    int interactive = 0, kh_given = 0;
    const char *kh_opt = NULL, *keylog_path = NULL;
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
    if (optind < argc) {
        cl->port = argv[optind++];
        if (vapp_parse_port(cl->port, 0) < 0)
            vapp_usage_error(PROG, SYNOPSIS, "invalid port '%s' (1-65535)", cl->port);
    }
    if (optind < argc)
        vapp_usage_error(PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);
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

    int status = run(cl, msgs, n_msgs, interactive, connect_ms, keylog_path);

    veil_conn_free(cl->vc);
    veil_buf_free(&cl->out);
    if (cl->fd >= 0)
        close(cl->fd);
    vapp_keylog_close(&cl->keylog);
    return status;
}
