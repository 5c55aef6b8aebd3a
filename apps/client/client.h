/*
 * client.h - what veil-client.c offers the service front ends (ui_chat.c,
 * ui_bank.c): one established Veil session and the client's error
 * reporting.  Every wire byte is still produced and parsed by libproto;
 * the service payloads are specified in docs/SERVICES.md.
 *
 * Functions returning int return 0, or an exit status (VAPP_EXIT_* or
 * CL_EXIT_*) after printing the client's one error line.
 */
#ifndef VEIL_CLIENT_H
#define VEIL_CLIENT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "ui_term.h"
#include "veilapp.h"

/* Exit statuses beyond veilapp.h's (docs/USAGE.md, veil-client). */
enum {
    CL_EXIT_AUTH = 7,    /* user authentication failed (one generic error) */
    CL_EXIT_REFUSED = 8, /* the bank refused a request (overdraft, bad amount, ...) */
};

struct client;

/* Application messages of the session go to fn (during libproto's feed:
 * fn must not send). */
typedef void (*cl_message_fn)(void *user, const veil_event *ev);
void cl_set_message_handler(struct client *cl, cl_message_fn fn, void *user);
/* While a terminal line editor is active, the client's own error and notice
 * lines take its prompt off the screen first (NULL: none). */
void cl_set_term(struct client *cl, ui_term *t);

/* The socket, and the poll(2) events it needs now. */
int cl_socket(const struct client *cl);
short cl_socket_events(const struct client *cl);
/* poll(2) timeout in ms for libproto's next timer, at most cap_ms. */
int cl_poll_timeout(const struct client *cl, int cap_ms);
/* After poll: moves bytes (sends queued output, reads and feeds input, runs
 * libproto's timers).  revents may be 0 (timer only). */
int cl_io(struct client *cl, short revents);
/* 1 once the server's close_notify has arrived. */
int cl_peer_closed(const struct client *cl);

/* Queues one application message and sends as much as the socket takes. */
int cl_send(struct client *cl, uint8_t kind, const void *data, size_t len);
/* Moves bytes until done(arg) is true, for at most the --timeout; what
 * names the awaited thing in the error line. */
int cl_wait(struct client *cl, int (*done)(void *arg), void *arg, const char *what);
/* Ends the session: close_notify after everything queued, then waits
 * (bounded) for the server's.  Returns 0: a missing answer is a notice. */
int cl_finish(struct client *cl);

/* The one error line ("veil-client: ...") and notices (not with -q). */
void cl_fail(struct client *cl, const char *fmt, ...) VAPP_PRINTF(2, 3);
void cl_note(struct client *cl, const char *fmt, ...) VAPP_PRINTF(2, 3);
/* "HOST:PORT" as given on the command line. */
const char *cl_where(const struct client *cl);

/* ui_chat.c: the chat service until EXIT/END, end of input or the server's close. */
int ui_chat_run(struct client *cl);

/* ui_bank.c: the bank service.  ops: the operation words from the command
 * line (n_ops 0: a menu on a terminal, else one operation per input line);
 * request_id: --request-id or NULL. */
int ui_bank_run(struct client *cl, char **ops, int n_ops, const char *request_id);
/* Checks the operation words of the command line before connecting: 0, or
 * -1 with a message in err (VAPP_ERRLEN). */
int ui_bank_check_ops(char **ops, int n_ops, const char *request_id, char *err);

#endif /* VEIL_CLIENT_H */
