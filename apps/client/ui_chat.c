/*
 * ui_chat.c - veil-client's front end for the "chat" service
 * (docs/SERVICES.md §2): every line typed (or read from a pipe) goes to
 * the server, which relays it to everyone else with our name; every line
 * relayed to us is printed as "NAME: text" ("* text" for the service's
 * notices).  EXIT or END (or end of input, or Ctrl-C on a terminal) ends
 * our session with close_notify after everything typed has been sent.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "svc_wire.h"

enum { STOP_EXIT = 100 };

struct chat_ui {
    struct client *cl;
    ui_term term;
    int status; /* exit status of a failed send */
};

static char g_name[VAPP_SANITIZED_MAX(SVC_CHAT_MAX_NAME)];
static char g_text[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];
static char g_line[sizeof g_name + sizeof g_text + 8];
static uint8_t g_payload[VEIL_MAX_MESSAGE];

/* 1 if the line is EXIT or END (surrounding blanks ignored). */
static int is_exit(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return (len == 4 && memcmp(s, "EXIT", 4) == 0) || (len == 3 && memcmp(s, "END", 3) == 0);
}

/* A message from the server: shown at once, sanitised. */
static void on_message(void *user, const veil_event *ev)
{
    struct chat_ui *ui = user;
    if (ev->kind != VEIL_MSG_TEXT)
        return; /* no other kind is defined for chat */
    const uint8_t *name, *text;
    size_t nl, tl;
    if (svc_chat_decode(ev->data, ev->len, &name, &nl, &text, &tl) != 0) {
        ui_term_print(&ui->term, "* (a malformed chat message from the server was ignored)");
        return;
    }
    vapp_sanitize(text, tl, g_text, sizeof g_text);
    if (nl == 0) {
        snprintf(g_line, sizeof g_line, "* %s", g_text);
    } else {
        vapp_sanitize(name, nl, g_name, sizeof g_name);
        snprintf(g_line, sizeof g_line, "%s: %s", g_name, g_text);
    }
    ui_term_print(&ui->term, g_line);
}

/* A line typed or read: sent, or EXIT/END. */
static int on_line(void *user, const char *line, size_t len, int too_long)
{
    struct chat_ui *ui = user;
    if (too_long || len > SVC_CHAT_MAX_TEXT) {
        snprintf(g_line, sizeof g_line, "* line not sent: longer than %d bytes",
                 SVC_CHAT_MAX_TEXT);
        if (ui->term.raw)
            ui_term_print(&ui->term, g_line);
        else
            cl_note(ui->cl, "warning: a line longer than %d bytes was not sent",
                    SVC_CHAT_MAX_TEXT);
        return 0;
    }
    if (is_exit(line, len))
        return STOP_EXIT;
    if (len == 0)
        return 0; /* nothing to say */
    size_t n = svc_chat_encode(NULL, 0, line, len, g_payload, sizeof g_payload);
    int r = cl_send(ui->cl, VEIL_MSG_TEXT, g_payload, n);
    if (r != 0) {
        ui->status = r;
        return r;
    }
    if (ui->term.raw) {
        vapp_sanitize((const uint8_t *)line, len, g_text, sizeof g_text);
        snprintf(g_line, sizeof g_line, "me: %s", g_text);
        ui_term_print(&ui->term, g_line);
    }
    return 0;
}

int ui_chat_run(struct client *cl)
{
    static struct chat_ui chat;
    struct chat_ui *ui = &chat;
    ui->cl = cl;
    if (ui_term_open(&ui->term, STDIN_FILENO, stdout, "> ") != 0) {
        cl_fail(cl, "cannot set up the terminal: %s", strerror(errno));
        return VAPP_EXIT_LOCAL;
    }
    cl_set_term(cl, &ui->term);
    cl_set_message_handler(cl, on_message, ui);
    if (ui->term.raw) {
        ui_term_hide(&ui->term);
        cl_note(cl, "in the chat on %s: type a line and Enter to send it; EXIT or END "
                    "(or Ctrl-C, Ctrl-D) leaves",
                cl_where(cl));
        ui_term_show(&ui->term);
    }

    int status = 0, input_open = 1;
    for (;;) {
        if (cl_peer_closed(cl)) {
            ui_term_close(&ui->term);
            cl_set_term(cl, NULL);
            cl_note(cl, "the server ended the chat");
            return cl_finish(cl);
        }
        struct pollfd p[2];
        p[0].fd = cl_socket(cl);
        p[0].events = cl_socket_events(cl);
        p[0].revents = 0;
        p[1].fd = STDIN_FILENO;
        p[1].events = POLLIN;
        p[1].revents = 0;
        int np = input_open ? 2 : 1;
        int pr = poll(p, (nfds_t)np, cl_poll_timeout(cl, 60000));
        if (pr < 0 && errno != EINTR) {
            status = VAPP_EXIT_LOCAL;
            cl_fail(cl, "poll: %s", strerror(errno));
            break;
        }
        if (pr <= 0) {
            if ((status = cl_io(cl, 0)) != 0)
                break;
            continue;
        }
        if (p[0].revents != 0 && (status = cl_io(cl, p[0].revents)) != 0)
            break;
        if (np == 2 && p[1].revents != 0) {
            int r = ui_term_read(&ui->term, on_line, ui);
            if (r == 0)
                continue;
            if (r < 0) {
                ui_term_close(&ui->term);
                cl_set_term(cl, NULL);
                cl_note(cl, "warning: cannot read standard input: %s; leaving the chat",
                        strerror(errno));
            }
            if (ui->status != 0) {
                status = ui->status;
                break;
            }
            /* EXIT, END, Ctrl-C or end of input: leave after what is queued. */
            input_open = 0;
            ui_term_close(&ui->term);
            cl_set_term(cl, NULL);
            return cl_finish(cl);
        }
    }
    ui_term_close(&ui->term);
    cl_set_term(cl, NULL);
    return status;
}
