/*
 * svc.h - veil-server's services (docs/SERVICES.md) and what they use of
 * the server core.
 *
 * veil-server.c owns the sockets, the epoll loop and the veil_conn of each
 * connection; the service modules see a connection only through the srv_*
 * functions below.  They never send or close synchronously: srv_send
 * appends to the connection's output and the event loop writes it, so a
 * service may address any connection (a chat broadcast, say) without a
 * connection disappearing under it.
 *
 *   svc_chat.c     the "chat" service and the server console (stdin)
 *   svc_bank.c     the "bank" service over the SQLite ledger (apps/bank)
 *   svc_auth.c     user authentication policy: the user directory, the
 *                  decoy key, the failure delay and the rate limits
 *   "msg" stays in veil-server.c: print, acknowledge.
 */
#ifndef VEIL_SVC_H
#define VEIL_SVC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "veilapp.h"

/* ------------------------------------------------------------------------ */
/* Services                                                                 */

enum svc_id { SVC_NONE = 0, SVC_MSG = 1, SVC_CHAT = 2, SVC_BANK = 4 };

/* SVC_* for a negotiated service name; SVC_NONE if unknown. */
int svc_from_name(const char *name);
/* Parses --services ("msg,chat,bank", any order, no duplicates needed) into
 * a mask and writes the canonical comma-separated list for libproto into
 * canon.  0, or -1 with err (VAPP_ERRLEN). */
int svc_parse_list(const char *list, int *mask, char *canon, size_t canon_len, char *err);

/* ------------------------------------------------------------------------ */
/* The server core, for the services (veil-server.c)                        */

struct conn;

/* Queues one application message for c.  0, or -1 when c is closing or has
 * failed (the message is dropped) or memory ran out (c is then aborted). */
int srv_send(struct conn *c, uint8_t kind, const void *data, size_t len);
/* Ends c's session with close_notify, after what is queued; why is logged. */
void srv_close(struct conn *c, const char *why);
/* Ends c's session with a fatal alert; why is logged. */
void srv_abort(struct conn *c, int alert, const char *why);
unsigned long srv_conn_id(const struct conn *c);
const char *srv_conn_peer(const struct conn *c);
/* The authenticated user name, or NULL. */
const char *srv_conn_user(const struct conn *c);
/* Bytes queued for c and not yet taken by the kernel. */
size_t srv_conn_queued(const struct conn *c);
/* A log line about c: "#<id> <peer> <message>". */
void srv_conn_log(const struct conn *c, int level, const char *fmt, ...) VAPP_PRINTF(3, 4);
/* Stops the server as SIGTERM does (close_notify to every client). */
void srv_shutdown(const char *why);

/* ------------------------------------------------------------------------ */
/* Console and output (svc_chat.c)                                          */

/* Prints one line on the server's standard output; when the console is a
 * terminal, the prompt and the operator's partial input are redrawn below
 * it, so output and typing do not garble each other. */
void console_print(const char *line);
/* Starts reading operator lines from fd (the chat service's console).
 * Returns 0; -1 if fd cannot be polled (a regular file, /dev/null): the
 * console is then off. */
int console_open(int fd);
/* fd is readable: reads and handles what is there (chat lines; EXIT or END
 * stops the server).  Returns 0, or 1 when the console is done (EOF: the
 * server keeps running without it). */
int console_readable(void);
void console_close(void);

/* ------------------------------------------------------------------------ */
/* chat (svc_chat.c), docs/SERVICES.md §2                                   */

/* c's chat session is established: it joins under its name. */
void chat_join(struct conn *c);
/* A message from c (kind, payload) for the chat. */
void chat_message(struct conn *c, uint8_t kind, const uint8_t *data, size_t len);
/* c leaves the chat (closed, failed, or destroyed); how: "left", "lost", ...
 * Harmless for a connection that is not in the chat. */
void chat_leave(struct conn *c, const char *how);

/* ------------------------------------------------------------------------ */
/* bank (svc_bank.c), docs/SERVICES.md §3                                   */

/* Opens (creating) the ledger at path and checks its consistency.  0, or
 * -1 with err. */
int bank_open(const char *path, char *err);
void bank_close(void);
/* A request from c; the reply is queued for c. */
void bank_request(struct conn *c, uint8_t kind, const uint8_t *data, size_t len);

/* ------------------------------------------------------------------------ */
/* User authentication policy (svc_auth.c), docs/SERVICES.md §1             */

#define AUTH_FAIL_DELAY_MS 1000  /* a refusal leaves after this delay */
#define AUTH_WINDOW_MS 60000     /* failures are counted over this window */
#define AUTH_DEFAULT_USER_LIMIT 5
#define AUTH_DEFAULT_ADDR_LIMIT 20

/* Loads the user directory and derives the decoy key from the server's
 * identity.  0, or -1 with err. */
int auth_init(const char *users_path, const veil_identity *id, unsigned user_limit,
              unsigned addr_limit, char *err);
void auth_free(void);
/* The 32 bytes for veil_config.decoy_key. */
const uint8_t *auth_decoy_key(void);
/* The rate-limit key of a peer address: the IPv4 address, or the /64 of
 * an IPv6 address (one host usually owns a whole /64). */
#define AUTH_ADDR_LEN 64
void auth_addr_key(const struct sockaddr *sa, socklen_t len, char out[AUTH_ADDR_LEN]);
/* 1 if addr has reached its failure limit (its sessions are refused at once). */
int auth_addr_blocked(const char *addr, uint64_t now_ms);

/* What auth_lookup learnt about one login attempt. */
typedef struct auth_attempt {
    char name[VEIL_MAX_USER_NAME + 1];
    int known;   /* the name is in the directory */
    int blocked; /* the name or the address is over its limit */
} auth_attempt;

/*
 * veil_callbacks.lookup_user, through veil-server.c: fills *v for name and
 * returns 0, or -1 for an unknown user (libproto then answers with a decoy).
 * For a blocked name or address the real salt and iteration count are
 * returned with random keys, so the attempt fails exactly like a wrong
 * password and nothing shows that the account is locked.
 */
int auth_lookup(const char *name, const char *addr, uint64_t now_ms, veil_user_verifier *v,
                auth_attempt *a);
/* A login failed (libproto sent auth_failed).  Counts it unless it was
 * already blocked and logs it; returns how long to hold the refusal back
 * (ms): AUTH_FAIL_DELAY_MS, 0 for an attempt refused for being over the limit. */
uint64_t auth_failed(const auth_attempt *a, const char *addr, const char *peer, unsigned long id,
                     uint64_t now_ms);

#endif /* VEIL_SVC_H */
