/*
 * svc_chat.c - the "chat" service (docs/SERVICES.md §2) and the server
 * console.
 *
 * The two-way chat exercise, for any number of participants: the server
 * operator types on the server's standard input, every connected chat
 * client types on its own; each line goes to everyone else with the
 * sender's name (the authenticated user name, else "client#N@ADDR"; the
 * operator is "server").  EXIT or END typed by a client ends its session;
 * typed on the console, it stops the server (close_notify to everyone).
 *
 * The console works from a terminal (a line editor keeps the operator's
 * partial input intact while lines arrive, ui_term.h) and from a pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc.h"
#include "svc_wire.h"
#include "ui_term.h"

/* A participant whose output backs up beyond this is not reading: its
 * session is closed rather than letting the server's memory grow. */
#define CHAT_BACKLOG_MAX (1024 * 1024)
#define OPERATOR_NAME "server"

struct member {
    struct conn *c;
    char name[SVC_CHAT_MAX_NAME + 1];
};

static struct {
    struct member *m;
    size_t n, cap;
} g_chat;

static struct {
    ui_term term;
    int on;
} g_console;

static char g_safe_text[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];
static char g_line[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE) + SVC_CHAT_MAX_NAME + 16];
static uint8_t g_payload[VEIL_MAX_MESSAGE];

/* ------------------------------------------------------------------------ */
/* Console                                                                  */

void console_print(const char *line)
{
    if (g_console.on) {
        ui_term_print(&g_console.term, line);
    } else {
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
}

/* Log lines go to stderr, usually the same terminal: the prompt steps
 * aside for them. */
static void log_hook(void *user, int before)
{
    (void)user;
    if (before)
        ui_term_hide(&g_console.term);
    else
        ui_term_show(&g_console.term);
}

static struct member *find(const struct conn *c)
{
    for (size_t i = 0; i < g_chat.n; i++)
        if (g_chat.m[i].c == c)
            return &g_chat.m[i];
    return NULL;
}

/* Queues one chat line for c; closes c if it stopped reading. */
static void send_line(struct conn *c, const char *name, const char *text, size_t text_len)
{
    if (srv_conn_queued(c) > CHAT_BACKLOG_MAX) {
        srv_close(c, "chat participant not reading its messages (over 1 MiB queued)");
        return;
    }
    size_t nl = name ? strlen(name) : 0;
    size_t n = svc_chat_encode(name, nl, text, text_len, g_payload, sizeof g_payload);
    if (n > 0)
        (void)srv_send(c, VEIL_MSG_TEXT, g_payload, n);
}

/* Sends a line to every participant but except (NULL: everyone). */
static void broadcast(const struct conn *except, const char *name, const char *text, size_t len)
{
    /* send_line may close a participant, which does not remove it from the
       list (that happens when it is destroyed): the loop is safe. */
    for (size_t i = 0; i < g_chat.n; i++)
        if (g_chat.m[i].c != except)
            send_line(g_chat.m[i].c, name, text, len);
}

static void notice_all(const struct conn *except, const char *fmt, ...) VAPP_PRINTF(2, 3);
static void notice_all(const struct conn *except, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    broadcast(except, NULL, text, strlen(text));
    snprintf(g_line, sizeof g_line, "* %s", text);
    console_print(g_line);
}

static int is_exit(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return (len == 4 && memcmp(s, "EXIT", 4) == 0) || (len == 3 && memcmp(s, "END", 3) == 0);
}

enum { CONSOLE_STOP = 100 }; /* above the UI_TERM_* results */

static int on_console_line(void *user, const char *line, size_t len, int too_long)
{
    (void)user;
    if (too_long || len > SVC_CHAT_MAX_TEXT) {
        snprintf(g_line, sizeof g_line, "* line not sent: longer than %d bytes", SVC_CHAT_MAX_TEXT);
        console_print(g_line);
        return 0;
    }
    if (is_exit(line, len)) {
        srv_shutdown("EXIT typed on the console");
        return CONSOLE_STOP;
    }
    if (len == 0)
        return 0;
    broadcast(NULL, OPERATOR_NAME, line, len);
    if (g_console.term.raw) {
        vapp_sanitize((const uint8_t *)line, len, g_safe_text, sizeof g_safe_text);
        snprintf(g_line, sizeof g_line, OPERATOR_NAME ": %s", g_safe_text);
        console_print(g_line);
    }
    if (g_chat.n == 0 && g_console.term.raw)
        console_print("* (nobody else is in the chat)");
    return 0;
}

int console_open(int fd)
{
    /* A server started in the background of a shell must not touch the
       terminal (it would be stopped by SIGTTIN/SIGTTOU). */
    if (isatty(fd) && tcgetpgrp(fd) != getpgrp())
        return -1;
    if (ui_term_open(&g_console.term, fd, stdout, OPERATOR_NAME "> ") != 0)
        return -1;
    g_console.on = 1;
    if (g_console.term.raw)
        vapp_log_set_hook(log_hook, NULL);
    return 0;
}

int console_readable(void)
{
    if (!g_console.on)
        return 1;
    int r = ui_term_read(&g_console.term, on_console_line, NULL);
    if (r == 0)
        return 0;
    if (r == UI_TERM_INTR) {
        srv_shutdown("Ctrl-C typed on the console");
    } else if (r == UI_TERM_EOF) {
        vapp_log(VAPP_LOG_INFO, "console: end of input; the server keeps running (stop it with "
                                "SIGTERM)");
    } else if (r < 0) {
        vapp_log(VAPP_LOG_WARN, "console: cannot read standard input; console off");
    }
    console_close();
    return 1;
}

void console_close(void)
{
    if (!g_console.on)
        return;
    if (g_console.term.raw)
        vapp_log_set_hook(NULL, NULL);
    ui_term_close(&g_console.term);
    g_console.on = 0;
}

/* ------------------------------------------------------------------------ */
/* Participants                                                             */

void chat_join(struct conn *c)
{
    if (find(c) != NULL)
        return;
    if (g_chat.n == g_chat.cap) {
        size_t ncap = g_chat.cap ? g_chat.cap * 2 : 16;
        struct member *nm = realloc(g_chat.m, ncap * sizeof *nm);
        if (nm == NULL) {
            srv_abort(c, VEIL_ALERT_INTERNAL_ERROR, "out of memory joining the chat");
            return;
        }
        g_chat.m = nm;
        g_chat.cap = ncap;
    }
    struct member *m = &g_chat.m[g_chat.n];
    m->c = c;
    const char *user = srv_conn_user(c);
    if (user != NULL && strcmp(user, OPERATOR_NAME) == 0)
        snprintf(m->name, sizeof m->name, "user:%s", user); /* never the operator's name */
    else if (user != NULL)
        snprintf(m->name, sizeof m->name, "%s", user);
    else
        snprintf(m->name, sizeof m->name, "client#%lu@%s", srv_conn_id(c), srv_conn_peer(c));

    /* Welcome: who we are and who is here (names as they are known). */
    char text[1024];
    int off = snprintf(text, sizeof text, "you are %s; in the chat: %s", m->name, OPERATOR_NAME);
    for (size_t i = 0; i < g_chat.n && off > 0 && (size_t)off < sizeof text - 64; i++)
        off += snprintf(text + off, sizeof text - (size_t)off, ", %s", g_chat.m[i].name);
    if (off > 0 && (size_t)off >= sizeof text - 64)
        snprintf(text + sizeof text - 8, 8, ", ...");
    send_line(c, NULL, text, strlen(text));
    g_chat.n++;
    srv_conn_log(c, VAPP_LOG_INFO, "joined the chat as %s (%zu participant%s)", m->name, g_chat.n,
                 g_chat.n == 1 ? "" : "s");
    notice_all(c, "%s joined the chat", m->name);
}

void chat_leave(struct conn *c, const char *how)
{
    struct member *m = find(c);
    if (m == NULL)
        return;
    char name[sizeof m->name];
    memcpy(name, m->name, sizeof name);
    *m = g_chat.m[--g_chat.n];
    srv_conn_log(c, VAPP_LOG_INFO, "left the chat (%s)", how);
    if (strcmp(how, "left") == 0)
        notice_all(c, "%s left the chat", name);
    else
        notice_all(c, "%s left the chat (%s)", name, how);
}

void chat_message(struct conn *c, uint8_t kind, const uint8_t *data, size_t len)
{
    struct member *m = find(c);
    if (m == NULL)
        return;
    if (kind != VEIL_MSG_TEXT) {
        srv_conn_log(c, VAPP_LOG_WARN, "chat: ignored a message of kind %s",
                     veil_msg_kind_name(kind));
        return;
    }
    const uint8_t *name, *text;
    size_t nl, tl;
    if (svc_chat_decode(data, len, &name, &nl, &text, &tl) != 0) {
        srv_abort(c, VEIL_ALERT_DECODE_ERROR, "malformed chat message");
        return;
    }
    if (nl != 0) {
        /* Names are the server's to give: a client cannot speak as another. */
        srv_abort(c, VEIL_ALERT_ILLEGAL_PARAMETER, "chat message carrying a sender name");
        return;
    }
    if (tl > SVC_CHAT_MAX_TEXT) {
        srv_abort(c, VEIL_ALERT_ILLEGAL_PARAMETER, "chat line too long");
        return;
    }
    vapp_sanitize(text, tl, g_safe_text, sizeof g_safe_text);
    snprintf(g_line, sizeof g_line, "%s: %s", m->name, g_safe_text);
    console_print(g_line);
    broadcast(c, m->name, (const char *)text, tl);
}
