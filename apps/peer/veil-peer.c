/*
 * veil-peer - the peer-to-peer messenger exercise on Veil.  See docs/PEER.md.
 *
 *   veil-peer --name ME --directory FILE [--key IDFILE] [--port P] [options]
 *
 * One process is one user.  It listens on its port and reads lines
 * "NAME: message" from standard input.  A typed line opens a connection to
 * NAME's address from the directory, runs a Veil handshake that
 * authenticates both sides (a shared secret as a PSK in the key schedule, or
 * identity keys pinned by fingerprint: the listener signs, and so does the
 * connecting peer), sends the message, waits for the acknowledgement and
 * closes.  An incoming connection is authenticated the same way from the
 * other side; its one message is checked (type, CRC-32C, sender, timestamp
 * window: PEER.md, MESSAGE FORMAT), shown on standard output as
 * "[time] sender: text", acknowledged, and closed.
 *
 * This file: options, set-up, standard input and the poll loop.  One thread,
 * one poll(2) set: the signalfd, standard input, the listening sockets and
 * every session (peer_session.c), each with its own deadline.  libproto
 * produces and parses every wire byte.  A failure ends one session with one
 * log line; the peer keeps running.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "peer_app.h"

static const char *const PROG = "veil-peer";
static const char *const SYNOPSIS =
    "veil-peer --name ME --directory FILE [--key IDFILE] [--port P] [options]";

static struct peer g_peer;

/* ------------------------------------------------------------------------ */
/* Standard input: "NAME: message" lines                                    */

static void list_contacts(const struct peer *p, char *out, size_t cap)
{
    size_t o = 0, shown = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->dir.n && o + 1 < cap; i++) {
        if (strcmp(p->dir.c[i].name, p->me) == 0)
            continue;
        if (shown == 8) {
            snprintf(out + o, cap - o, ", ...");
            return;
        }
        int n = snprintf(out + o, cap - o, "%s%s", shown ? ", " : "", p->dir.c[i].name);
        if (n < 0)
            return;
        o += (size_t)n;
        shown++;
    }
}

static void on_line(struct peer *p, char *line, size_t len, uint64_t now)
{
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return; /* blank lines and comments */
    char *colon = memchr(line + i, ':', len - i);
    if (colon == NULL) {
        vapp_log(VAPP_LOG_WARN, "line NOT sent: no ':' in it; type NAME: message, e.g. \"bob: hi\"");
        p->failed++;
        return;
    }
    size_t nlen = (size_t)(colon - (line + i));
    while (nlen > 0 && (line[i + nlen - 1] == ' ' || line[i + nlen - 1] == '\t'))
        nlen--;
    char name[PEER_MAX_NAME + 1];
    if (!peer_name_ok(line + i, nlen)) {
        char shown[VAPP_SANITIZED_MAX(PEER_MAX_NAME)];
        vapp_sanitize((const uint8_t *)line + i, nlen > PEER_MAX_NAME ? PEER_MAX_NAME : nlen,
                      shown, sizeof shown);
        vapp_log(VAPP_LOG_WARN,
                 "message NOT sent: \"%s\" is not a contact name (letters, digits, '.', '_', "
                 "'-')",
                 shown);
        p->failed++;
        return;
    }
    memcpy(name, line + i, nlen);
    name[nlen] = '\0';
    const peer_contact *c = peer_directory_find(&p->dir, name);
    if (c == NULL || strcmp(name, p->me) == 0) {
        char known[256];
        list_contacts(p, known, sizeof known);
        if (c == NULL)
            vapp_log(VAPP_LOG_WARN, "message NOT sent: unknown contact \"%s\" (not in %s; "
                                    "contacts: %s)",
                     name, p->dir_path, known);
        else
            vapp_log(VAPP_LOG_WARN, "message NOT sent: \"%s\" is you (contacts: %s)", name, known);
        p->failed++;
        return;
    }
    char *text = colon + 1;
    size_t tlen = len - (size_t)(text - line);
    while (tlen > 0 && (*text == ' ' || *text == '\t'))
        text++, tlen--;
    if (tlen == 0) {
        vapp_log(VAPP_LOG_WARN, "message to %s NOT sent: it is empty", name);
        p->failed++;
        return;
    }
    if (tlen > PEER_MAX_TEXT) {
        vapp_log(VAPP_LOG_WARN, "message to %s NOT sent: %zu bytes, at most %d", name, tlen,
                 PEER_MAX_TEXT);
        p->failed++;
        return;
    }
    peer_send_message(p, c, text, tlen, now);
}

/* Handles the complete lines buffered, while outgoing sessions are free. */
static void process_lines(struct peer *p, uint64_t now)
{
    while (p->line_len > 0 && !p->quitting && peer_sessions_count(p, 1) < MAX_OUTGOING) {
        char *nl = memchr(p->line, '\n', p->line_len);
        size_t take;
        if (nl == NULL) {
            if (p->stdin_open)
                return; /* incomplete line: wait for the rest */
            take = p->line_len; /* last line without a newline, at EOF */
        } else {
            take = (size_t)(nl - p->line) + 1;
        }
        size_t len = nl != NULL ? take - 1 : take;
        /* The newline, or the spare byte after a last line, becomes the NUL. */
        p->line[len] = '\0';
        on_line(p, p->line, len, now);
        p->line_len -= take;
        memmove(p->line, p->line + take, p->line_len);
    }
}

static void on_stdin(struct peer *p, uint64_t now)
{
    if (p->line_len == sizeof p->line - 1 && memchr(p->line, '\n', p->line_len) == NULL) {
        /* A full buffer without a newline: the line is too long.  Drop
           what we have and the rest of the line when it comes. */
        vapp_log(VAPP_LOG_WARN, "message NOT sent: line longer than %d bytes", LINE_CAP - 2);
        p->failed++;
        p->line_len = 0;
        p->line_discard = 1;
    }
    ssize_t n = read(STDIN_FILENO, p->line + p->line_len, sizeof p->line - 1 - p->line_len);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return;
        vapp_log(VAPP_LOG_WARN, "standard input: %s; no longer reading it", strerror(errno));
        n = 0;
    }
    if (n == 0) {
        p->stdin_open = 0;
        vapp_log(VAPP_LOG_INFO, "end of standard input");
    }
    if (p->line_discard) {
        /* Still inside an overlong line: skip to its newline. */
        char *nl = memchr(p->line + p->line_len, '\n', (size_t)n);
        if (nl == NULL) {
            return;
        }
        size_t skip = (size_t)(nl - (p->line + p->line_len)) + 1;
        memmove(p->line + p->line_len, nl + 1, (size_t)n - skip);
        n -= (ssize_t)skip;
        p->line_discard = 0;
    }
    p->line_len += (size_t)n;
    process_lines(p, now);
}

/* ------------------------------------------------------------------------ */
/* Main loop                                                                */

static void begin_quit(struct peer *p, const char *why, uint64_t now)
{
    if (p->quitting)
        return;
    p->quitting = 1;
    p->quit_deadline = now + SHUTDOWN_GRACE_MS;
    vapp_log(VAPP_LOG_INFO, "%s: finishing %zu session%s, then exiting", why,
             peer_sessions_count(p, 0) + peer_sessions_count(p, 1),
             peer_sessions_count(p, 0) + peer_sessions_count(p, 1) == 1 ? "" : "s");
    for (int i = 0; i < p->n_lst; i++)
        close(p->lst[i]);
    p->n_lst = 0;
    if (p->line_len > 0) {
        vapp_log(VAPP_LOG_WARN, "unsent typed lines dropped");
        p->failed++;
        p->line_len = 0;
    }
    p->stdin_open = 0;
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (p->s[i].st == ST_CLOSING && p->s[i].close_deadline > p->quit_deadline)
            p->s[i].close_deadline = p->quit_deadline;
}

enum { OWN_SIG, OWN_STDIN, OWN_LISTEN, OWN_SESS };

static int run(struct peer *p)
{
    struct pollfd pfd[2 + VAPP_MAX_LISTEN + MAX_SESSIONS];
    int own[2 + VAPP_MAX_LISTEN + MAX_SESSIONS];
    int idx[2 + VAPP_MAX_LISTEN + MAX_SESSIONS];
    unsigned long ids[2 + VAPP_MAX_LISTEN + MAX_SESSIONS];
    /* Every pass blocks in poll until an event or the earliest deadline; the
       loop ends once quitting and every session is gone or the grace period
       is over. */
    for (;;) {
        uint64_t now = vapp_mono_ms();
        if (!p->quitting && !p->stdin_open && !p->receive_only && peer_sessions_count(p, 1) == 0 &&
            p->line_len == 0)
            begin_quit(p, "standard input closed", now);
        size_t active = peer_sessions_count(p, 0) + peer_sessions_count(p, 1);
        if (p->quitting && (active == 0 || now >= p->quit_deadline))
            break;
        nfds_t n = 0;
        uint64_t t = p->quitting ? p->quit_deadline : UINT64_MAX;
        pfd[n] = (struct pollfd){.fd = p->sigfd, .events = POLLIN};
        own[n++] = OWN_SIG;
        if (p->stdin_open && !p->quitting && peer_sessions_count(p, 1) < MAX_OUTGOING) {
            pfd[n] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
            own[n++] = OWN_STDIN;
        }
        for (int i = 0; i < p->n_lst; i++) {
            pfd[n] = (struct pollfd){.fd = p->lst[i], .events = POLLIN};
            idx[n] = i;
            own[n++] = OWN_LISTEN;
        }
        for (size_t i = 0; i < MAX_SESSIONS; i++) {
            struct sess *s = &p->s[i];
            if (s->st == ST_FREE)
                continue;
            short ev = 0;
            if (s->st == ST_CONNECTING)
                ev = POLLOUT;
            else {
                if (!s->rd_eof)
                    ev |= POLLIN;
                if (s->out.len > 0)
                    ev |= POLLOUT;
            }
            uint64_t d = peer_sess_deadline(s);
            if (d < t)
                t = d;
            pfd[n] = (struct pollfd){.fd = s->fd, .events = ev};
            idx[n] = (int)i;
            ids[n] = s->id;
            own[n++] = OWN_SESS;
        }
        int timeout = t == UINT64_MAX ? -1 : t <= now ? 0 : t - now > 60000 ? 60000 : (int)(t - now);
        int pr = poll(pfd, n, timeout);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            vapp_log(VAPP_LOG_ERROR, "poll: %s", strerror(errno));
            return VAPP_EXIT_LOCAL;
        }
        now = vapp_mono_ms();
        for (nfds_t k = 0; k < n && pr > 0; k++) {
            short re = pfd[k].revents;
            if (re == 0)
                continue;
            switch (own[k]) {
            case OWN_SIG: {
                struct signalfd_siginfo si;
                while (read(p->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    if (p->quitting) {
                        vapp_log(VAPP_LOG_INFO, "second signal: exiting now");
                        p->quit_deadline = now;
                    }
                    begin_quit(p, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", now);
                }
                break;
            }
            case OWN_STDIN:
                if (!p->quitting)
                    on_stdin(p, now);
                break;
            case OWN_LISTEN:
                if (!p->quitting && idx[k] < p->n_lst)
                    peer_accept(p, p->lst[idx[k]], now);
                break;
            case OWN_SESS: {
                struct sess *s = &p->s[idx[k]];
                if (s->st == ST_FREE || s->id != ids[k])
                    break; /* destroyed (and maybe reused) earlier in this pass */
                if (s->st == ST_CONNECTING) {
                    peer_sess_connected(s, now);
                    break;
                }
                if (re & (POLLIN | POLLHUP | POLLERR)) {
                    if (peer_sess_readable(s, now) != 0)
                        break;
                }
                if (re & POLLOUT)
                    (void)peer_sess_flush(s);
                break;
            }
            }
        }
        peer_run_timers(p, now);
        process_lines(p, now);
    }
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (p->s[i].st != ST_FREE)
            peer_sess_destroy(&p->s[i]);
    vapp_log(VAPP_LOG_INFO, "exiting: %lu message%s delivered, %lu not delivered; %lu shown, "
                            "%lu refused",
             p->delivered, p->delivered == 1 ? "" : "s", p->failed, p->shown, p->refused);
    return p->failed > 0 ? EXIT_UNDELIVERED : VAPP_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

static void usage(void)
{
    printf(
        "Usage: %s\n"
        "       veil-peer --stretch\n"
        "\n"
        "A peer-to-peer messenger.  Listens for contacts on its port and reads lines\n"
        "    NAME: message\n"
        "from standard input; each line is delivered to contact NAME over its own\n"
        "authenticated Veil session (connect, handshake, one message, acknowledgement,\n"
        "close).  Messages received are printed on standard output as\n"
        "    [<UTC time the sender stamped>] <sender>: <text>\n"
        "and everything else is logged on standard error, one line per event.\n"
        "\n"
        "Options:\n"
        "  -n, --name ME          your name: the directory entry you listen as, and the\n"
        "                         identity you present to contacts (required)\n"
        "  -d, --directory FILE   the JSON contact directory (required; docs/PEER.md):\n"
        "                         {\"version\":1,\"contacts\":[{\"name\":\"bob\",\"ip\":\"127.0.0.1\",\n"
        "                          \"port\":51425,\"secret\":\"...\"}, ...]}; each contact has a\n"
        "                         \"secret\" (or \"psk\") and/or a \"fingerprint\"; a file holding\n"
        "                         secrets must not be readable by group or others\n"
        "  -k, --key FILE         your identity private key (veil-keygen): contacts who pin\n"
        "                         your fingerprint need it.  Default: a fresh key per run\n"
        "  -p, --port P           listen on P (default: the port of your own entry)\n"
        "  -b, --bind ADDR        listen on ADDR only (default: all interfaces)\n"
        "      --plain            send in plaintext mode: nothing is encrypted, the shared\n"
        "                         secret still authenticates the handshake (the contact\n"
        "                         must run with --allow-plain)\n"
        "      --allow-plain      also accept plaintext-mode sessions\n"
        "      --max-skew SEC     refuse a message whose timestamp is more than SEC from\n"
        "                         this machine's clock (default %d)\n"
        "      --timeout SEC      give up on a session (connect, handshake, message,\n"
        "                         acknowledgement) after SEC (default %d)\n"
        "      --receive-only     do not read standard input; run until SIGINT/SIGTERM\n"
        "      --keylog FILE      append session secrets to FILE for Wireshark/veil tools\n"
        "                         (default: $VEIL_KEYLOGFILE)\n"
        "      --stretch          read a secret on standard input, print the \"psk\" value\n"
        "                         to put in a directory instead of the clear \"secret\"\n"
        "  -v, --verbose          also log handshake details\n"
        "  -q, --quiet            log only warnings and errors\n"
        "  -h, --help             show this help and exit\n"
        "  -V, --version          show the version and exit\n"
        "\n"
        "Authentication, per contact; both ways are MUTUAL:\n"
        "  secret       the secret, stretched with PBKDF2 into a pre-shared key, is\n"
        "               mixed into the key schedule; both sides prove it in their\n"
        "               Finished.  A wrong secret fails the handshake on both sides.\n"
        "  fingerprint  identity keys pinned both ways: the listener signs and the\n"
        "               sender checks its key against the fingerprint; the sender\n"
        "               signs too, and the listener accepts only the key its own\n"
        "               directory pins for that name (so both need --key).\n"
        "  both         a contact may have both; then both must hold.\n"
        "Every message carries a type, a CRC-32C and a timestamp; the receiver refuses a\n"
        "bad CRC, a timestamp outside --max-skew and a sender that does not match the\n"
        "authenticated one, and tells the sender why.\n"
        "\n"
        "Standard input: blank lines and lines starting with '#' are skipped.  At end of\n"
        "input veil-peer finishes its sessions and exits (see --receive-only).\n"
        "\n"
        "Exit status:\n"
        "  0  ended (end of input, SIGINT or SIGTERM); every message was delivered\n"
        "  1  bad arguments\n"
        "  2  cannot listen\n"
        "  5  ended, but at least one message was not delivered\n"
        "  6  local error: directory, key or keylog file unusable\n",
        SYNOPSIS, DEFAULT_MAX_SKEW_S, DEFAULT_TIMEOUT_S);
}

/* --stretch: secret on stdin (without echo on a terminal), "psk" hex out. */
static int do_stretch(void)
{
    static char secret[PEER_MAX_SECRET + 2];
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fputs("Secret: ", stderr);
        fflush(stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    size_t n = 0;
    int ch;
    while ((ch = getchar()) != EOF && ch != '\n' && n < sizeof secret - 1)
        secret[n++] = (char)ch;
    if (tty) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputs("\n", stderr);
    }
    if (n > 0 && secret[n - 1] == '\r')
        n--;
    if (n == 0 || n > PEER_MAX_SECRET) {
        veil_memzero(secret, sizeof secret);
        fprintf(stderr, "%s: the secret must be 1 to %d bytes\n", PROG, PEER_MAX_SECRET);
        return VAPP_EXIT_USAGE;
    }
    uint8_t psk[VEIL_PSK_LEN];
    int r = veil_psk_stretch(secret, n, psk);
    veil_memzero(secret, sizeof secret);
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", PROG, veil_strerror(r));
        return VAPP_EXIT_LOCAL;
    }
    for (size_t i = 0; i < VEIL_PSK_LEN; i++)
        printf("%02x", psk[i]);
    printf("\n");
    veil_memzero(psk, sizeof psk);
    return VAPP_EXIT_OK;
}

/* Loads the directory and the identity; checks the user's own entry. */
static int setup(struct peer *p, const char *key_path, const char **port)
{
    char err[VAPP_ERRLEN];
    if (peer_directory_load(p->dir_path, p->me, &p->dir, err) != 0) {
        vapp_log(VAPP_LOG_ERROR, "%s", err);
        return VAPP_EXIT_LOCAL;
    }
    size_t n_psk = 0, n_fp = 0;
    for (size_t i = 0; i < p->dir.n; i++) {
        const peer_contact *c = &p->dir.c[i];
        if (strcmp(c->name, p->me) == 0)
            continue;
        n_psk += c->has_psk != 0;
        n_fp += c->has_fp != 0;
        if (c->has_fp && !c->has_psk)
            p->any_fp_only = 1;
        if (c->short_secret)
            vapp_log(VAPP_LOG_WARN,
                     "contact \"%s\": the secret is shorter than %d characters; a longer one "
                     "resists guessing from a recorded handshake",
                     c->name, PEER_MIN_SECRET_WARN);
    }
    if (key_path != NULL) {
        if (vapp_identity_load(key_path, &p->id, err) != 0) {
            vapp_log(VAPP_LOG_ERROR, "%s", err);
            return VAPP_EXIT_LOCAL;
        }
    } else {
        int r = veil_identity_generate(vapp_random, NULL, &p->id);
        if (r != 0) {
            vapp_log(VAPP_LOG_ERROR, "cannot generate an identity: %s", veil_strerror(r));
            return VAPP_EXIT_LOCAL;
        }
    }
    uint8_t fp[VEIL_FINGERPRINT_LEN];
    char *fps = p->id_fp;
    veil_identity_fingerprint(p->id, fp);
    vapp_fp_string(fp, fps);
    p->key_given = key_path != NULL;
    const peer_contact *self = peer_directory_find(&p->dir, p->me);
    if (self != NULL && self->has_fp && veil_memeq_ct(fp, self->fp, VEIL_FINGERPRINT_LEN) != 0) {
        char want[VAPP_FPSTR_LEN];
        vapp_fp_string(self->fp, want);
        vapp_log(VAPP_LOG_ERROR,
                 "your own entry \"%s\" in %s pins %s, but your %s is %s; contacts who pin "
                 "you would refuse you%s",
                 p->me, p->dir_path, want, key_path ? "key" : "fresh key (no --key)", fps,
                 key_path ? "" : "; give --key");
        return VAPP_EXIT_LOCAL;
    }
    if (*port == NULL) {
        if (self == NULL) {
            vapp_log(VAPP_LOG_ERROR,
                     "\"%s\" is not in %s: add your own entry (name, ip, port) or give --port",
                     p->me, p->dir_path);
            return VAPP_EXIT_USAGE;
        }
        static char pbuf[8];
        snprintf(pbuf, sizeof pbuf, "%u", (unsigned)self->port);
        *port = pbuf;
    }
    vapp_log(VAPP_LOG_INFO, "%s: %zu contact%s (%zu with a shared secret, %zu pinned); identity "
                            "%s%s",
             p->me, p->dir.n - (self != NULL), p->dir.n - (self != NULL) == 1 ? "" : "s", n_psk,
             n_fp, fps, key_path ? "" : " (fresh for this run: no --key)");
    if (n_fp > 0 && key_path == NULL)
        vapp_log(VAPP_LOG_WARN,
                 "no --key: the %zu contact%s you pin by fingerprint will refuse you, as they "
                 "cannot know this run's fresh key",
                 n_fp, n_fp == 1 ? "" : "s");
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        OPT_PLAIN = 256,
        OPT_ALLOW_PLAIN,
        OPT_MAX_SKEW,
        OPT_TIMEOUT,
        OPT_RECEIVE_ONLY,
        OPT_KEYLOG,
        OPT_STRETCH,
        OPT_TEST_CLOCK,
        OPT_TEST_CRC,
        OPT_TEST_SENDER,
        OPT_TEST_NO_SIGN,
    };
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"directory", required_argument, NULL, 'd'},
        {"key", required_argument, NULL, 'k'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"plain", no_argument, NULL, OPT_PLAIN},
        {"allow-plain", no_argument, NULL, OPT_ALLOW_PLAIN},
        {"max-skew", required_argument, NULL, OPT_MAX_SKEW},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"receive-only", no_argument, NULL, OPT_RECEIVE_ONLY},
        {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"stretch", no_argument, NULL, OPT_STRETCH},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
#ifdef VEIL_PEER_TEST_HOOKS
        /* Test builds only (tests/peer): never compiled into veil-peer. */
        {"test-clock-offset", required_argument, NULL, OPT_TEST_CLOCK},
        {"test-corrupt-crc", no_argument, NULL, OPT_TEST_CRC},
        {"test-sender", required_argument, NULL, OPT_TEST_SENDER},
        {"test-no-sign", no_argument, NULL, OPT_TEST_NO_SIGN},
#endif
        {NULL, 0, NULL, 0},
    };
    struct peer *p = &g_peer;
    p->timeout_ms = (uint64_t)DEFAULT_TIMEOUT_S * 1000;
    p->max_skew_ms = (uint64_t)DEFAULT_MAX_SKEW_S * 1000;
    p->keylog.fd = -1;
    p->sigfd = -1;
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        p->s[i].fd = -1;
    const char *key_path = NULL, *port = NULL, *bind_addr = NULL, *keylog_path = NULL;
    int stretch = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:d:k:p:b:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'n': p->me = optarg; break;
        case 'd': p->dir_path = optarg; break;
        case 'k': key_path = optarg; break;
        case 'p':
            if (vapp_parse_port(optarg, 1) < 0)
                vapp_usage_error(PROG, SYNOPSIS, "invalid port '%s' (0-65535)", optarg);
            port = optarg;
            break;
        case 'b': bind_addr = optarg; break;
        case OPT_PLAIN: p->plain = 1; break;
        case OPT_ALLOW_PLAIN: p->allow_plain = 1; break;
        case OPT_MAX_SKEW:
            if (vapp_parse_seconds(optarg, 86400.0, 0, &p->max_skew_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--max-skew needs seconds (0 < SEC <= 86400)");
            break;
        case OPT_TIMEOUT:
            if (vapp_parse_seconds(optarg, 3600.0, 0, &p->timeout_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--timeout needs seconds (0 < SEC <= 3600)");
            break;
        case OPT_RECEIVE_ONLY: p->receive_only = 1; break;
        case OPT_KEYLOG: keylog_path = optarg; break;
        case OPT_STRETCH: stretch = 1; break;
#ifdef VEIL_PEER_TEST_HOOKS
        case OPT_TEST_CLOCK: {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v < -86400000LL * 365 ||
                v > 86400000LL * 365)
                vapp_usage_error(PROG, SYNOPSIS, "--test-clock-offset needs milliseconds");
            p->clock_offset_ms = v;
            break;
        }
        case OPT_TEST_CRC: p->corrupt_crc = 1; break;
        case OPT_TEST_SENDER: p->test_sender = optarg; break;
        case OPT_TEST_NO_SIGN: p->test_no_sign = 1; break;
#endif
        case 'v': vapp_log_set_level(VAPP_LOG_DEBUG); break;
        case 'q': vapp_log_set_level(VAPP_LOG_WARN); break;
        case 'h': usage(); return VAPP_EXIT_OK;
        case 'V': printf("veil-peer (Veil) 1\n"); return VAPP_EXIT_OK;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind < argc)
        vapp_usage_error(PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    if (stretch) {
        if (p->me != NULL || p->dir_path != NULL)
            vapp_usage_error(PROG, SYNOPSIS, "--stretch takes no other option");
        return do_stretch();
    }
    if (p->me == NULL)
        vapp_usage_error(PROG, SYNOPSIS, "missing --name");
    if (p->dir_path == NULL)
        vapp_usage_error(PROG, SYNOPSIS, "missing --directory");
    if (!peer_name_ok(p->me, strlen(p->me)))
        vapp_usage_error(PROG, SYNOPSIS,
                         "--name must be 1 to %d characters among letters, digits, '.', '_', '-'",
                         PEER_MAX_NAME);
#ifdef VEIL_PEER_TEST_HOOKS
    if (p->clock_offset_ms != 0 || p->corrupt_crc || p->test_sender != NULL || p->test_no_sign)
        vapp_log(VAPP_LOG_WARN, "TEST BUILD: clock offset %lld ms%s%s%s%s",
                 (long long)p->clock_offset_ms, p->corrupt_crc ? ", corrupting every CRC" : "",
                 p->test_sender ? ", sender forged as " : "",
                 p->test_sender ? p->test_sender : "", p->test_no_sign ? ", never signing" : "");
#endif

    /* Signals first, so a SIGTERM during start-up is not lost. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (p->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        vapp_log(VAPP_LOG_ERROR, "signals: %s", strerror(errno));
        return VAPP_EXIT_LOCAL;
    }

    int status = setup(p, key_path, &port);
    char err[VAPP_ERRLEN];
    if (status == 0 && vapp_keylog_open(&p->keylog, keylog_path, err) != 0) {
        vapp_log(VAPP_LOG_ERROR, "%s", err);
        status = VAPP_EXIT_LOCAL;
    }
    if (status == 0) {
        p->n_lst = vapp_listen(bind_addr, port, p->lst, err);
        if (p->n_lst < 0) {
            p->n_lst = 0;
            vapp_log(VAPP_LOG_ERROR, "%s", err);
            status = VAPP_EXIT_CONNECT;
        }
    }
    if (status == 0) {
        veil_config_init(&p->srv_cfg, VEIL_ROLE_SERVER);
        p->srv_cfg.modes = VEIL_MODE_ENCRYPTED | (p->allow_plain ? VEIL_MODE_PLAINTEXT : 0);
        p->srv_cfg.identity = p->id;
        p->srv_cfg.handshake_timeout_ms = p->timeout_ms;
        /* Only fingerprint-only contacts may connect without a PSK. */
        p->srv_cfg.require_psk = !p->any_fp_only;
        for (int i = 0; i < p->n_lst; i++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            char addr[VAPP_ADDRSTR_LEN] = "?";
            if (getsockname(p->lst[i], (struct sockaddr *)&ss, &sl) == 0)
                vapp_format_addr((struct sockaddr *)&ss, sl, addr);
            vapp_log(VAPP_LOG_INFO, "listening on %s as %s (modes: %s; max skew %.1f s%s%s)", addr,
                     p->me, p->allow_plain ? "encrypted,plaintext" : "encrypted",
                     (double)p->max_skew_ms / 1000.0, p->keylog.fd >= 0 ? "; keylog " : "",
                     p->keylog.fd >= 0 ? p->keylog.path : "");
        }
        p->stdin_open = !p->receive_only;
        if (p->stdin_open)
            vapp_log(VAPP_LOG_INFO, "type NAME: message to send%s",
                     p->plain ? " (plaintext mode: NOT encrypted)" : "");
        status = run(p);
    }

    for (int i = 0; i < p->n_lst; i++)
        close(p->lst[i]);
    if (p->sigfd >= 0)
        close(p->sigfd);
    vapp_keylog_close(&p->keylog);
    veil_identity_free(p->id);
    peer_directory_free(&p->dir);
    fflush(stdout);
    return status;
}
