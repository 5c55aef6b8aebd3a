/*
 * veil-server - accepts Veil connections and serves the services the
 * clients ask for: "msg" (prints every text message and acknowledges it;
 * here), "chat" and "bank" (svc_chat.c, svc_bank.c; docs/SERVICES.md).
 * See docs/USAGE.md.
 *
 * One thread, non-blocking sockets, one epoll set.  Each connection is a
 * veil_conn (libproto: all protocol logic and every wire byte) plus an
 * output veil_buf holding bytes not yet accepted by the kernel.  Received
 * bytes go straight from a shared read buffer into veil_conn_feed, which
 * buffers partial records itself, so no per-connection input buffer is
 * needed.  Timers (handshake deadline from libproto, idle timeout, closing
 * linger, shutdown grace) are turned into the epoll_wait timeout.
 *
 * Connection life cycle:
 *   OPEN     reading, feeding, answering;
 *   CLOSING  after close_notify, a fatal alert, a timeout or a refusal:
 *            no more input is processed, pending output (the alert or
 *            close_notify) is flushed, then SHUT_WR, then the socket is
 *            closed on the peer's EOF or after CLOSE_LINGER_MS at most;
 *   freed.
 * A failure of one connection only ever moves that connection along.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "svc.h"
#include "veilapp.h"

static const char *const PROG = "veil-server";
static const char *const SYNOPSIS = "veil-server [options] [PORT]";

#define DEFAULT_MAX_CONNS 1024
#define DEFAULT_IDLE_S 300
#define DEFAULT_HS_TIMEOUT_S 10
#define CLOSE_LINGER_MS 2000   /* a closing connection is gone after this */
#define SHUTDOWN_GRACE_MS 2000 /* SIGTERM: time given to flush close_notify */
#define OUT_HIGH_WATER (256 * 1024) /* stop reading a peer that does not read */
#define MAX_CLOSING 256        /* refused/closing sockets kept lingering */
#define READS_PER_EVENT 4      /* fairness: bounded work per wakeup */
#define ACCEPTS_PER_EVENT 64
#define ACCEPT_PAUSE_MS 100    /* after EMFILE & co. */
/* Per-connection buffers larger than this are released once empty, so an idle
 * connection holds no more than a few KiB after a burst (docs/DESIGN.md 6.17). */
#define BUF_KEEP_CAP 4096

enum tag_kind { TAG_LISTEN, TAG_SIGNAL, TAG_CONN, TAG_CONSOLE };
struct tag {
    enum tag_kind kind;
    int fd;
};

struct server;

struct conn {
    struct tag tag; /* first: epoll data points here */
    struct server *srv;
    struct conn *prev, *next;
    unsigned long id;
    char peer[VAPP_ADDRSTR_LEN];
    veil_conn *vc;
    veil_buf out;
    uint32_t ev_mask;    /* events currently registered with epoll */
    uint64_t last_rx_ms; /* idle timer */
    uint64_t close_deadline;
    int closing;     /* CLOSING state */
    int counted;     /* counts toward --max-conns */
    int dead;        /* libproto connection failed or aborted */
    int sent_close;  /* our close_notify is queued */
    int peer_closed; /* close_notify received */
    int hs_logged;
    int rd_eof;
    int wr_shut;
    unsigned long n_msgs;
    /* ACKs owed for messages reported during the current veil_conn_feed:
       they are sent once feed has returned (see on_event). */
    size_t *acks;
    size_t n_acks, cap_acks;
    int ack_oom;
    /* Services other than msg (svc.h): their messages are queued here
       during veil_conn_feed as kind(1) len(4, host order) data, and handed
       to the service after feed returns. */
    int svc;         /* SVC_*, from the negotiated service name */
    int svc_started; /* the service has seen the session start */
    veil_buf inbox;
    int inbox_oom;
    /* User authentication (svc_auth.c): what the lookup learnt, the
       rate-limit key of the peer, and a refusal held back until hold_until. */
    auth_attempt auth;
    char addr[AUTH_ADDR_LEN];
    uint64_t hold_until;
};

struct server {
    int epfd;
    struct tag sig;
    struct tag lst[VAPP_MAX_LISTEN];
    int n_lst;
    int accept_paused;
    uint64_t accept_resume_ms;
    uint64_t last_accept_warn_ms;
    veil_identity *id;
    veil_config cfg;
    uint16_t suites[16];
    vapp_keylog keylog;
    struct conn *conns; /* every live connection */
    size_t n_active;    /* counted toward max_conns */
    size_t n_closing;
    size_t max_conns;
    uint64_t idle_ms;
    unsigned long next_id;
    int shutting_down;
    uint64_t shutdown_deadline;
    /* services (svc.h) */
    int services; /* SVC_* mask of --services */
    char services_list[64];
    const char *users_path; /* --users: every session must authenticate */
    struct tag console;     /* the chat console on stdin */
    int console_on;
    const char *shutdown_req; /* srv_shutdown: why, handled by the loop */
    /* No connection has a deadline (conn_deadline) before timer_due: the
       loop looks at the connections' timers only once it has passed, so a
       wakeup costs O(1) rather than O(connections).  Whatever may move a
       deadline earlier calls timer_note. */
    uint64_t timer_due;
};

static uint8_t g_rdbuf[64 * 1024];
static char g_text[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];
static char g_outline[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE) + VAPP_TIMESTR_LEN + VAPP_ADDRSTR_LEN + 16];
static struct server *g_srv; /* the one server, for srv_shutdown */

/* ------------------------------------------------------------------------ */
/* Connection bookkeeping                                                   */

static void conn_log(const struct conn *c, int level, const char *fmt, ...) VAPP_PRINTF(3, 4);
static void conn_log(const struct conn *c, int level, const char *fmt, ...)
{
    if (!vapp_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vapp_log(level, "#%lu %s %s", c->id, c->peer, msg);
}

static void conn_set_events(struct conn *c)
{
    if (c->tag.fd < 0)
        return;
    uint32_t want = 0;
    if (!c->rd_eof && c->out.len < OUT_HIGH_WATER)
        want |= EPOLLIN | EPOLLRDHUP;
    if (c->out.len > 0 && c->hold_until == 0)
        want |= EPOLLOUT;
    if (want == c->ev_mask)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = &c->tag};
    if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->tag.fd, &ev) == 0)
        c->ev_mask = want;
}

/* Frees a connection now. */
static void conn_destroy(struct conn *c)
{
    struct server *s = c->srv;
    chat_leave(c, c->peer_closed ? "left" : "connection closed");
    if (c->tag.fd >= 0)
        close(c->tag.fd); /* leaves the epoll set with it: the fd is never dup'ed */
    if (c->counted)
        s->n_active--;
    if (c->closing)
        s->n_closing--;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    veil_conn_free(c->vc); /* wipes the keys */
    veil_buf_free(&c->out);
    veil_buf_free(&c->inbox);
    free(c->acks);
    free(c);
}

static uint64_t conn_deadline(const struct conn *c, uint64_t idle_ms);
static void timer_note(struct server *s, uint64_t t)
{
    if (t < s->timer_due)
        s->timer_due = t;
}

/* Moves to CLOSING: whatever is in out (alert, close_notify) is flushed,
 * then the socket is shut down and closed, within CLOSE_LINGER_MS. */
static void conn_begin_close(struct conn *c, uint64_t now)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->srv->n_closing++;
    c->close_deadline = now + CLOSE_LINGER_MS;
    if (c->srv->shutting_down && c->srv->shutdown_deadline < c->close_deadline)
        c->close_deadline = c->srv->shutdown_deadline;
    timer_note(c->srv, c->close_deadline);
    if (c->counted) {
        c->counted = 0;
        c->srv->n_active--; /* the slot is free for a new client now */
    }
}

/* Writes as much of out as the socket takes.  Returns -1 if the connection
 * was destroyed. */
static int conn_flush(struct conn *c)
{
    if (c->hold_until != 0) {
        /* A refused login: the alert waits for its timer (run_timers). */
        conn_set_events(c);
        return 0;
    }
    if (vapp_send_pending(c->tag.fd, &c->out) != 0) {
        if (!c->closing)
            conn_log(c, VAPP_LOG_WARN, "write failed: %s; connection dropped", strerror(errno));
        conn_destroy(c);
        return -1;
    }
    if (c->out.len == 0 && c->out.cap > BUF_KEEP_CAP)
        veil_buf_free(&c->out);
    if (c->closing && c->out.len == 0) {
        if (c->rd_eof) {
            conn_destroy(c);
            return -1;
        }
        if (!c->wr_shut)
            shutdown(c->tag.fd, SHUT_WR);
        c->wr_shut = 1;
    }
    conn_set_events(c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* libproto callbacks                                                       */

static void cb_keylog(void *user, const char *line)
{
    struct conn *c = user;
    vapp_keylog_write(&c->srv->keylog, line);
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

/*
 * Events are handled while veil_conn_feed is running.  Nothing is sent from
 * here: ACKs are queued and sent after feed returns, so records always
 * leave in the order libproto numbered them and feed never sees its output
 * buffer change under it.
 */
static int cb_event(void *user, const veil_event *ev)
{
    struct conn *c = user;
    switch (ev->type) {
    case VEIL_EV_HANDSHAKE_DONE: {
        c->hs_logged = 1;
        c->svc = svc_from_name(veil_conn_service(c->vc));
        const char *uname = veil_conn_user(c->vc);
        conn_log(c, VAPP_LOG_INFO, "handshake done: mode=%s suite=%s group=%s service=%s%s%s",
                 mode_name(veil_conn_mode(c->vc)), suite_label(veil_conn_suite(c->vc)),
                 veil_group_name(veil_conn_group(c->vc)), veil_conn_service(c->vc),
                 uname ? " user=" : "", uname ? uname : "");
        break;
    }
    case VEIL_EV_MESSAGE:
        if (c->svc != SVC_MSG) {
            /* chat, bank: handed to the service once feed has returned. */
            uint8_t hdr[5];
            uint32_t n = (uint32_t)ev->len;
            hdr[0] = ev->kind;
            memcpy(hdr + 1, &n, 4);
            if (veil_buf_reserve(&c->inbox, sizeof hdr + ev->len) != 0) {
                c->inbox_oom = 1;
                break;
            }
            memcpy(c->inbox.base + c->inbox.len, hdr, sizeof hdr);
            if (ev->len > 0)
                memcpy(c->inbox.base + c->inbox.len + sizeof hdr, ev->data, ev->len);
            c->inbox.len += sizeof hdr + ev->len;
            break;
        }
        if (ev->kind != VEIL_MSG_TEXT) {
            conn_log(c, VAPP_LOG_WARN, "ignored message of kind %s (%zu bytes)",
                     veil_msg_kind_name(ev->kind), ev->len);
            break;
        }
        c->n_msgs++;
        {
            char ts[VAPP_TIMESTR_LEN];
            vapp_format_utc(ev->timestamp_ms, ts);
            vapp_sanitize(ev->data, ev->len, g_text, sizeof g_text);
            snprintf(g_outline, sizeof g_outline, "[%s] %s: %s", ts, c->peer, g_text);
            console_print(g_outline);
        }
        conn_log(c, VAPP_LOG_INFO, "message %lu: text, %zu bytes", c->n_msgs, ev->len);
        if (c->n_acks == c->cap_acks) {
            size_t ncap = c->cap_acks ? c->cap_acks * 2 : 8;
            size_t *na = realloc(c->acks, ncap * sizeof *na);
            if (na == NULL) {
                c->ack_oom = 1;
                return 0;
            }
            c->acks = na;
            c->cap_acks = ncap;
        }
        c->acks[c->n_acks++] = ev->len;
        break;
    case VEIL_EV_KEY_UPDATE:
        conn_log(c, VAPP_LOG_INFO, "peer key update: epoch %u", (unsigned)ev->epoch);
        break;
    case VEIL_EV_PEER_CLOSED:
        c->peer_closed = 1;
        break;
    }
    return 0;
}

/* User authentication: the directory, the rate limits (svc_auth.c). */
static int cb_lookup_user(void *user, const char *name, veil_user_verifier *v)
{
    struct conn *c = user;
    return auth_lookup(name, c->addr, vapp_mono_ms(), v, &c->auth);
}

static const veil_callbacks *callbacks_for(struct conn *c, veil_callbacks *cb)
{
    memset(cb, 0, sizeof *cb);
    cb->random = vapp_random;
    cb->keylog = cb_keylog;
    cb->on_event = cb_event;
    cb->verify_identity = NULL;
    if (c->srv->users_path != NULL)
        cb->lookup_user = cb_lookup_user;
    cb->user = c;
    return cb;
}

/* Logs a libproto error for c in words, naming the alert involved. */
static void log_proto_error(struct conn *c, int err, const char *when)
{
    if (err <= -1 && err >= VEIL_ERR_ALERT_MIN)
        conn_log(c, VAPP_LOG_WARN, "%s: %s (sent alert %s)", when, veil_strerror(err),
                 veil_alert_name(-err));
    else if (err <= VEIL_ERR_PEER_ALERT_BASE && err >= VEIL_ERR_PEER_ALERT_MIN)
        conn_log(c, VAPP_LOG_WARN, "%s: peer sent alert %s", when,
                 veil_alert_name(VEIL_ERR_PEER_ALERT_BASE - err));
    else
        conn_log(c, VAPP_LOG_WARN, "%s: %s", when, veil_strerror(err));
}

/* ------------------------------------------------------------------------ */
/* The core, for the services (svc.h)                                       */

int srv_send(struct conn *c, uint8_t kind, const void *data, size_t len)
{
    if (c->dead || c->sent_close || c->closing)
        return -1;
    int r = veil_conn_send(c->vc, kind, vapp_wall_ms(), data, len, &c->out);
    if (r != 0) {
        log_proto_error(c, r, "cannot send");
        veil_conn_abort(c->vc, VEIL_ALERT_INTERNAL_ERROR, &c->out);
        c->dead = 1;
        conn_begin_close(c, vapp_mono_ms());
    }
    conn_set_events(c); /* the loop writes it: nothing is destroyed here */
    return r == 0 ? 0 : -1;
}

void srv_close(struct conn *c, const char *why)
{
    if (c->dead || c->sent_close)
        return;
    int r = veil_conn_close(c->vc, &c->out);
    if (r != 0)
        log_proto_error(c, r, "cannot send close_notify");
    c->sent_close = 1;
    conn_log(c, VAPP_LOG_INFO, "closing the session: %s (sent close_notify)", why);
    conn_begin_close(c, vapp_mono_ms());
    conn_set_events(c);
}

void srv_abort(struct conn *c, int alert, const char *why)
{
    if (c->dead)
        return;
    veil_conn_abort(c->vc, alert, &c->out);
    c->dead = 1;
    conn_log(c, VAPP_LOG_WARN, "%s (sent alert %s)", why, veil_alert_name(alert));
    conn_begin_close(c, vapp_mono_ms());
    conn_set_events(c);
}

unsigned long srv_conn_id(const struct conn *c) { return c->id; }
const char *srv_conn_peer(const struct conn *c) { return c->peer; }
const char *srv_conn_user(const struct conn *c) { return veil_conn_user(c->vc); }
size_t srv_conn_queued(const struct conn *c) { return c->out.len; }

void srv_conn_log(const struct conn *c, int level, const char *fmt, ...)
{
    if (!vapp_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conn_log(c, level, "%s", msg);
}

void srv_shutdown(const char *why)
{
    if (g_srv != NULL && g_srv->shutdown_req == NULL)
        g_srv->shutdown_req = why;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */

/* chat, bank: the session start and the messages queued by cb_event. */
static void conn_run_service(struct conn *c)
{
    if (!c->svc_started && veil_conn_handshake_done(c->vc)) {
        c->svc_started = 1;
        if (c->svc == SVC_CHAT)
            chat_join(c);
    }
    size_t off = 0;
    while (off + 5 <= c->inbox.len && !c->dead && !c->closing) {
        uint8_t kind = c->inbox.base[off];
        uint32_t n;
        memcpy(&n, c->inbox.base + off + 1, 4);
        const uint8_t *data = c->inbox.base + off + 5;
        off += 5 + (size_t)n;
        if (c->svc == SVC_CHAT)
            chat_message(c, kind, data, n);
        else if (c->svc == SVC_BANK)
            bank_request(c, kind, data, n);
        c->n_msgs++;
    }
    c->inbox.len = 0;
    if (c->inbox.cap > BUF_KEEP_CAP)
        veil_buf_free(&c->inbox);
    if (c->inbox_oom && !c->dead) {
        c->inbox_oom = 0;
        srv_abort(c, VEIL_ALERT_INTERNAL_ERROR, "out of memory; connection dropped");
    }
}

/* Sends the ACKs queued by cb_event, answers a close_notify. */
static void conn_after_feed(struct conn *c, uint64_t now)
{
    if (c->svc != SVC_MSG && c->svc != SVC_NONE && !c->dead)
        conn_run_service(c);
    for (size_t i = 0; i < c->n_acks && !c->dead; i++) {
        char payload[64];
        int n = snprintf(payload, sizeof payload, "received %zu bytes", c->acks[i]);
        int r = veil_conn_send(c->vc, VEIL_MSG_ACK, vapp_wall_ms(), (const uint8_t *)payload,
                               (size_t)n, &c->out);
        if (r != 0) {
            log_proto_error(c, r, "cannot send ack");
            c->dead = 1;
            conn_begin_close(c, now);
        }
    }
    c->n_acks = 0;
    if (c->ack_oom && !c->dead) {
        conn_log(c, VAPP_LOG_ERROR, "out of memory; connection dropped");
        veil_conn_abort(c->vc, VEIL_ALERT_INTERNAL_ERROR, &c->out);
        c->dead = 1;
        conn_begin_close(c, now);
    }
    if (c->peer_closed)
        chat_leave(c, "left");
    if (c->peer_closed && !c->sent_close && !c->dead) {
        conn_log(c, VAPP_LOG_INFO, "closed by peer (close_notify) after %lu message%s",
                 c->n_msgs, c->n_msgs == 1 ? "" : "s");
        int r = veil_conn_close(c->vc, &c->out);
        if (r != 0)
            log_proto_error(c, r, "cannot answer close_notify");
        c->sent_close = 1;
        conn_begin_close(c, now);
    } else if (c->peer_closed && c->sent_close) {
        conn_log(c, VAPP_LOG_INFO, "peer answered close_notify");
        conn_begin_close(c, now);
    }
}

/* Returns -1 if c was destroyed. */
static int conn_on_readable(struct conn *c, uint64_t now)
{
    for (int i = 0; i < READS_PER_EVENT && !c->rd_eof; i++) {
        ssize_t n = recv(c->tag.fd, g_rdbuf, sizeof g_rdbuf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (!c->closing)
                conn_log(c, VAPP_LOG_WARN, "connection lost: %s", strerror(errno));
            conn_destroy(c);
            return -1;
        }
        if (n == 0) {
            c->rd_eof = 1;
            if (c->closing) {
                if (c->out.len == 0) {
                    conn_destroy(c);
                    return -1;
                }
                break; /* finish flushing, bounded by close_deadline */
            }
            if (!veil_conn_handshake_done(c->vc))
                conn_log(c, VAPP_LOG_INFO, "disconnected during the handshake (truncated)");
            else
                conn_log(c, VAPP_LOG_WARN,
                         "connection truncated: EOF without close_notify after %lu message%s",
                         c->n_msgs, c->n_msgs == 1 ? "" : "s");
            conn_destroy(c);
            return -1;
        }
        c->last_rx_ms = now;
        if (c->dead || c->peer_closed || (c->closing && !c->sent_close))
            continue; /* draining after an error or close: input is discarded */
        int r = veil_conn_feed(c->vc, g_rdbuf, (size_t)n, now, &c->out);
        if (r == -VEIL_ALERT_AUTH_FAILED && c->srv->users_path != NULL) {
            /* A failed login: counted, logged, and answered only after a
               delay (held in out; other clients are served meanwhile). */
            c->n_acks = 0;
            c->inbox.len = 0;
            c->dead = 1;
            uint64_t delay = auth_failed(&c->auth, c->addr, c->peer, c->id, now);
            conn_begin_close(c, now);
            if (delay > 0) {
                c->hold_until = now + delay;
                c->close_deadline = c->hold_until + CLOSE_LINGER_MS;
            }
        } else if (r != 0) {
            c->n_acks = 0; /* the connection is dead: nothing more is sent */
            log_proto_error(c, r, c->hs_logged ? "connection failed" : "handshake failed");
            c->dead = 1;
            conn_begin_close(c, now);
        } else {
            conn_after_feed(c, now);
        }
        if ((size_t)n < sizeof g_rdbuf)
            break; /* drained: epoll (level-triggered) reports what comes next */
    }
    return conn_flush(c);
}

/* ------------------------------------------------------------------------ */
/* Accepting                                                                */

static struct conn *conn_new(struct server *s, int fd, const struct sockaddr *sa, socklen_t salen,
                             uint64_t now)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->tag.kind = TAG_CONN;
    c->tag.fd = fd;
    c->srv = s;
    c->id = ++s->next_id;
    vapp_format_addr(sa, salen, c->peer);
    auth_addr_key(sa, salen, c->addr);
    veil_buf_init(&c->out);
    veil_buf_init(&c->inbox);
    c->last_rx_ms = now;
    veil_callbacks cb;
    if (veil_conn_new(&s->cfg, callbacks_for(c, &cb), now, &c->vc) != 0) {
        free(c);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &c->tag};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        veil_conn_free(c->vc);
        free(c);
        return NULL;
    }
    c->ev_mask = ev.events;
    timer_note(s, veil_conn_next_timeout(c->vc)); /* the handshake deadline */
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    return c;
}

static void pause_accept(struct server *s, uint64_t now)
{
    for (int i = 0; i < s->n_lst; i++) {
        struct epoll_event ev = {.events = 0, .data.ptr = &s->lst[i]};
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lst[i].fd, &ev);
    }
    s->accept_paused = 1;
    s->accept_resume_ms = now + ACCEPT_PAUSE_MS;
}

static void resume_accept(struct server *s)
{
    for (int i = 0; i < s->n_lst; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->lst[i]};
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lst[i].fd, &ev);
    }
    s->accept_paused = 0;
}

/* Over the cap: the client gets a server_busy alert from a fresh veil_conn
 * (libproto writes the bytes) and the socket is closed. */
static void refuse_busy(struct server *s, int fd, const struct sockaddr *sa, socklen_t salen,
                        uint64_t now)
{
    struct conn *c = NULL;
    if (s->n_closing < MAX_CLOSING)
        c = conn_new(s, fd, sa, salen, now);
    if (c == NULL) {
        /* Too many lingering sockets already (or no memory): best effort. */
        vapp_refuse_and_close(fd, &s->cfg, VEIL_ALERT_SERVER_BUSY, now);
        char addr[VAPP_ADDRSTR_LEN];
        vapp_format_addr(sa, salen, addr);
        vapp_log(VAPP_LOG_WARN, "%s refused: server busy (%zu connections)", addr, s->n_active);
        return;
    }
    conn_log(c, VAPP_LOG_WARN, "refused: server busy (--max-conns %zu reached); sent server_busy",
             s->max_conns);
    veil_conn_abort(c->vc, VEIL_ALERT_SERVER_BUSY, &c->out);
    c->dead = 1;
    conn_begin_close(c, now);
    (void)conn_flush(c);
}

static void on_accept(struct server *s, struct tag *l, uint64_t now)
{
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered epoll would spin on the pending connection:
                   stop accepting for a moment instead. */
                if (now - s->last_accept_warn_ms >= 1000 || s->last_accept_warn_ms == 0) {
                    vapp_log(VAPP_LOG_WARN, "accept: %s; pausing accepts", strerror(errno));
                    s->last_accept_warn_ms = now;
                }
                pause_accept(s, now);
                return;
            }
            vapp_log(VAPP_LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        if (s->n_active >= s->max_conns) {
            refuse_busy(s, fd, (struct sockaddr *)&ss, sl, now);
            continue;
        }
        if (s->users_path != NULL && s->n_closing >= MAX_CLOSING) {
            /* Refusals lingering already: a blocked address gets no more. */
            char key[AUTH_ADDR_LEN];
            auth_addr_key((struct sockaddr *)&ss, sl, key);
            if (auth_addr_blocked(key, now)) {
                close(fd);
                continue;
            }
        }
        struct conn *c = conn_new(s, fd, (struct sockaddr *)&ss, sl, now);
        if (c == NULL) {
            char addr[VAPP_ADDRSTR_LEN];
            vapp_format_addr((struct sockaddr *)&ss, sl, addr);
            vapp_log(VAPP_LOG_ERROR, "%s dropped: cannot set up the connection (out of memory)",
                     addr);
            close(fd);
            continue;
        }
        /* TCP_NODELAY is inherited from the listening socket (vapp_listen). */
        if (s->users_path != NULL && auth_addr_blocked(c->addr, now)) {
            /* Every session here must log in: one from an address over its
               failure limit is refused before its hello (svc_auth.c). */
            conn_log(c, VAPP_LOG_WARN,
                     "refused: too many failed logins from %s in the last %d s; sent "
                     "auth_failed at once",
                     c->addr, AUTH_WINDOW_MS / 1000);
            veil_conn_abort(c->vc, VEIL_ALERT_AUTH_FAILED, &c->out);
            c->dead = 1;
            conn_begin_close(c, now);
            (void)conn_flush(c);
            continue;
        }
        c->counted = 1;
        s->n_active++;
        conn_log(c, VAPP_LOG_INFO, "connected");
    }
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */

static uint64_t conn_deadline(const struct conn *c, uint64_t idle_ms)
{
    if (c->closing)
        return c->hold_until != 0 && c->hold_until < c->close_deadline ? c->hold_until
                                                                        : c->close_deadline;
    uint64_t t = veil_conn_next_timeout(c->vc);
    /* chat: a participant who only reads is not idle (docs/SERVICES.md). */
    if (veil_conn_handshake_done(c->vc) && idle_ms > 0 && c->svc != SVC_CHAT) {
        uint64_t idle = c->last_rx_ms + idle_ms;
        if (idle < t)
            t = idle;
    }
    return t;
}

static void run_timers(struct server *s, uint64_t now)
{
    if (now < s->timer_due)
        return;
    /* One pass over every connection: fires what is due and finds the next
       deadline (connections moved to CLOSING here note theirs). */
    s->timer_due = UINT64_MAX;
    struct conn *next;
    for (struct conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        uint64_t due = conn_deadline(c, s->idle_ms);
        if (due > now) {
            timer_note(s, due);
            continue;
        }
        if (c->closing && c->hold_until != 0 && now < c->close_deadline) {
            /* The delayed refusal of a login leaves now. */
            c->hold_until = 0;
            if (conn_flush(c) == 0)
                timer_note(s, conn_deadline(c, s->idle_ms));
            continue;
        }
        if (c->closing) {
            if (c->out.len > 0)
                conn_log(c, VAPP_LOG_INFO, "closed with %zu bytes unsent (peer not reading)",
                         c->out.len);
            conn_destroy(c);
            continue;
        }
        if (!veil_conn_handshake_done(c->vc) || veil_conn_next_timeout(c->vc) <= now) {
            int r = veil_conn_handle_timeout(c->vc, now, &c->out);
            if (r == 0 && veil_conn_next_timeout(c->vc) > now) {
                timer_note(s, conn_deadline(c, s->idle_ms));
                continue; /* nothing was due after all */
            }
            if (r == 0) {
                /* A deadline that passed but does not fire would make the
                   loop spin: end the connection ourselves. */
                veil_conn_abort(c->vc, VEIL_ALERT_TIMEOUT, &c->out);
                r = -VEIL_ALERT_TIMEOUT;
            }
            conn_log(c, VAPP_LOG_WARN, "handshake timeout: %s (sent alert %s)", veil_strerror(r),
                     veil_alert_name(VEIL_ALERT_TIMEOUT));
        } else {
            conn_log(c, VAPP_LOG_INFO, "idle timeout after %llu s (sent alert %s)",
                     (unsigned long long)(s->idle_ms / 1000), veil_alert_name(VEIL_ALERT_TIMEOUT));
            veil_conn_abort(c->vc, VEIL_ALERT_TIMEOUT, &c->out);
        }
        c->dead = 1;
        conn_begin_close(c, now);
        (void)conn_flush(c);
    }
}

static int epoll_timeout(const struct server *s, uint64_t now)
{
    uint64_t t = s->timer_due;
    if (s->accept_paused && s->accept_resume_ms < t)
        t = s->accept_resume_ms;
    if (s->shutting_down && s->shutdown_deadline < t)
        t = s->shutdown_deadline;
    if (t == UINT64_MAX)
        return -1;
    if (t <= now)
        return 0;
    return t - now > 60000 ? 60000 : (int)(t - now);
}

/* ------------------------------------------------------------------------ */
/* Shutdown                                                                 */

/* why: "SIGTERM received", "EXIT typed on the console", ... */
static void begin_shutdown(struct server *s, const char *why, uint64_t now)
{
    size_t n = 0;
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        n++;
    vapp_log(VAPP_LOG_INFO, "shutdown: %s; closing %zu connection%s", why, n,
             n == 1 ? "" : "s");
    if (s->console_on) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->console.fd, NULL);
        console_close();
        s->console_on = 0;
    }
    s->shutting_down = 1;
    s->shutdown_deadline = now + SHUTDOWN_GRACE_MS;
    for (int i = 0; i < s->n_lst; i++) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lst[i].fd, NULL);
        close(s->lst[i].fd);
    }
    s->n_lst = 0;
    struct conn *next;
    for (struct conn *c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (!c->closing && !c->dead) {
            if (veil_conn_handshake_done(c->vc)) {
                int r = veil_conn_close(c->vc, &c->out);
                if (r != 0)
                    log_proto_error(c, r, "cannot send close_notify");
                c->sent_close = 1;
                conn_log(c, VAPP_LOG_INFO, "sent close_notify (server shutting down)");
            } else {
                /* No keys yet, so no close_notify: tell the client the
                   server is not taking it. */
                veil_conn_abort(c->vc, VEIL_ALERT_SERVER_BUSY, &c->out);
                c->dead = 1;
                conn_log(c, VAPP_LOG_INFO, "handshake aborted (server shutting down)");
            }
        }
        conn_begin_close(c, now);
        if (c->close_deadline > s->shutdown_deadline)
            c->close_deadline = s->shutdown_deadline;
        (void)conn_flush(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

static void usage(void)
{
    /* One write(2) at exit: a reader that stops early (grep -q) then
       cannot cut the text with SIGPIPE halfway. */
    static char obuf[16384];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    printf("Usage: veil-server [options] [PORT]\n"
           "\n"
           "Serves Veil sessions on PORT (default %d); each client asks for one of the\n"
           "services given with --services (docs/SERVICES.md):\n"
           "  msg   prints every text message on standard output as\n"
           "          [<UTC time of the message>] <peer address>: <text>\n"
           "        and answers each with an acknowledgement \"received <n> bytes\"\n"
           "  chat  everyone in the chat and the operator, who types on this program's\n"
           "        standard input, see each other's lines as \"NAME: text\"; EXIT or\n"
           "        END typed here stops the server (close_notify to every client)\n"
           "  bank  deposit, withdraw, balance and history for authenticated users,\n"
           "        in an SQLite ledger (--bank-db); needs --users\n"
           "Logs one line per event on standard error.  PORT 0 picks a free port\n"
           "(shown in the \"listening on\" log line).\n"
           "\n"
           "Key exchange: the client chooses among X25519, FFDHE-2048 and, when the\n"
           "identity key is RSA (veil-keygen --rsa), RSA key transport, which has NO\n"
           "forward secrecy: anyone who obtains the key file later decrypts every\n"
           "recorded RSA-transport session.\n"
           "\n"
           "Options:\n"
           "  -b, --bind ADDR            listen on ADDR only (an IPv4 or IPv6 address or a\n"
           "                             host name: every address it resolves to)\n"
           "                             (default: all interfaces, IPv6 and IPv4 via ::)\n"
           "  -k, --key FILE             identity private key (default:\n"
           "                             ~/.config/veil/identity.key); must not be\n"
           "                             readable by group or others (chmod 600)\n"
           "      --gen-key              create the key file if it does not exist\n"
           "      --allow-plain          also accept plaintext-mode sessions (default:\n"
           "                             encrypted only; plaintext clients get the alert\n"
           "                             plaintext_refused)\n"
           "      --suites LIST          comma-separated cipher suites to accept (default:\n"
           "                             all): aes-256-gcm, chacha20-poly1305,\n"
           "                             aes-256-cbc-hmac-sha256\n"
           "      --keylog FILE          append the session secrets of every encrypted\n"
           "                             session to FILE (mode 0600), for decryption in\n"
           "                             Wireshark or veil tools (default: $VEIL_KEYLOGFILE)\n"
           "      --max-conns N          serve at most N connections at once; more get\n"
           "                             the alert server_busy (default %d)\n"
           "      --idle-timeout SEC     close a connection idle this long with the alert\n"
           "                             timeout; 0 disables (default %d)\n"
           "      --handshake-timeout SEC  a client must finish its handshake within SEC\n"
           "                             (default %d; fractions allowed, e.g. 0.5)\n"
           "      --services LIST        comma-separated services to offer: msg, chat,\n"
           "                             bank (default msg); another gets unknown_service\n"
           "      --users FILE           user directory (made with veil-user): every\n"
           "                             session must then log in as a user, whatever its\n"
           "                             service; a failed login is answered after 1 s\n"
           "      --auth-limit N         after N failed logins for one user name within\n"
           "                             60 s, its logins are refused at once (default %d)\n"
           "      --auth-addr-limit N    after N failed logins from one address (IPv6:\n"
           "                             its /64) within 60 s, its sessions are refused at\n"
           "                             once (default %d)\n"
           "      --bank-db FILE         the bank's SQLite ledger, created if missing\n"
           "                             (default ~/.config/veil/bank.db)\n"
           "  -q, --quiet                log only warnings and errors\n"
           "  -h, --help                 show this help and exit\n"
           "  -V, --version              show the version and exit\n"
           "\n"
           "Environment:\n"
           "  VEIL_KEYLOGFILE  keylog file used when --keylog is not given\n"
           "  HOME             locates ~/.config/veil/identity.key\n"
           "\n"
           "Signals: SIGINT or SIGTERM (or EXIT on the chat console) shut the server\n"
           "down gracefully: every connected client gets close_notify, output is\n"
           "flushed for up to %d s, exit status 0.\n"
           "\n"
           "Exit status:\n"
           "  0  shut down by SIGINT/SIGTERM or EXIT on the chat console\n"
           "  1  bad arguments\n"
           "  2  cannot listen (address in use, bad bind address, ...)\n"
           "  6  local error: key file missing, unsafe or invalid; keylog file\n"
           "     cannot be opened; user directory or bank ledger unusable; out of\n"
           "     memory\n",
           VEIL_DEFAULT_PORT, DEFAULT_MAX_CONNS, DEFAULT_IDLE_S, DEFAULT_HS_TIMEOUT_S,
           AUTH_DEFAULT_USER_LIMIT, AUTH_DEFAULT_ADDR_LIMIT, SHUTDOWN_GRACE_MS / 1000);
}

static size_t parse_suites(const char *list, uint16_t out[16])
{
    char buf[512];
    if (strlen(list) >= sizeof buf)
        vapp_usage_error(PROG, SYNOPSIS, "--suites list too long");
    memcpy(buf, list, strlen(list) + 1);
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t tl = strlen(tok);
        while (tl > 0 && tok[tl - 1] == ' ')
            tok[--tl] = '\0';
        uint16_t suite;
        if (veil_suite_from_name(tok, &suite) != 0 || suite == VEIL_SUITE_NULL)
            vapp_usage_error(PROG, SYNOPSIS,
                             "unknown suite '%s' (known: aes-256-gcm, chacha20-poly1305, "
                             "aes-256-cbc-hmac-sha256)",
                             tok);
        int dup = 0;
        for (size_t i = 0; i < n; i++)
            dup |= out[i] == suite;
        if (dup)
            continue;
        if (n == 16)
            vapp_usage_error(PROG, SYNOPSIS, "too many suites");
        out[n++] = suite;
    }
    if (n == 0)
        vapp_usage_error(PROG, SYNOPSIS, "--suites needs at least one suite");
    return n;
}

/* Raises the descriptor limit so --max-conns can actually be reached. */
static void raise_nofile(size_t max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)max_conns + MAX_CLOSING + 32;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
        vapp_log(VAPP_LOG_WARN,
                 "descriptor limit %llu is below what --max-conns %zu needs; accepts will "
                 "pause when it is reached",
                 (unsigned long long)rl.rlim_cur, max_conns);
}

static int load_identity(const char *key_opt, int gen_key, veil_identity **id, char *path,
                         size_t pathlen)
{
    char err[VAPP_ERRLEN];
    if (key_opt != NULL) {
        snprintf(path, pathlen, "%s", key_opt);
    } else {
        char dir[PATH_MAX - 32];
        if (vapp_config_dir(dir, sizeof dir, err) != 0) {
            vapp_log(VAPP_LOG_ERROR, "%s; use --key FILE", err);
            return -1;
        }
        snprintf(path, pathlen, "%s/identity.key", dir);
    }
    int r = vapp_identity_load(path, id, err);
    if (r == -2 && gen_key) {
        r = vapp_identity_create(path, 0, id, err);
        if (r == 0) {
            vapp_log(VAPP_LOG_INFO, "created a new identity key %s (and %s.pub)", path, path);
            return 0;
        }
    } else if (r == -2) {
        vapp_log(VAPP_LOG_ERROR,
                 "no identity key at %s: create one with 'veil-keygen%s%s' or start the "
                 "server with --gen-key",
                 path, key_opt ? " -o " : "", key_opt ? path : "");
        return -1;
    }
    if (r != 0) {
        vapp_log(VAPP_LOG_ERROR, "%s", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        OPT_GEN_KEY = 256,
        OPT_ALLOW_PLAIN,
        OPT_SUITES,
        OPT_KEYLOG,
        OPT_MAX_CONNS,
        OPT_IDLE,
        OPT_HS_TIMEOUT,
        OPT_SERVICES,
        OPT_USERS,
        OPT_BANK_DB,
        OPT_AUTH_LIMIT,
        OPT_AUTH_ADDR_LIMIT,
    };
    static const struct option opts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"key", required_argument, NULL, 'k'},
        {"gen-key", no_argument, NULL, OPT_GEN_KEY},
        {"allow-plain", no_argument, NULL, OPT_ALLOW_PLAIN},
        {"suites", required_argument, NULL, OPT_SUITES},
        {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"handshake-timeout", required_argument, NULL, OPT_HS_TIMEOUT},
        {"services", required_argument, NULL, OPT_SERVICES},
        {"users", required_argument, NULL, OPT_USERS},
        {"bank-db", required_argument, NULL, OPT_BANK_DB},
        {"auth-limit", required_argument, NULL, OPT_AUTH_LIMIT},
        {"auth-addr-limit", required_argument, NULL, OPT_AUTH_ADDR_LIMIT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *bind_addr = NULL, *key_opt = NULL, *keylog_path = NULL, *suites_opt = NULL;
    const char *services_opt = "msg", *users_path = NULL, *bank_db = NULL;
    unsigned long auth_limit = AUTH_DEFAULT_USER_LIMIT, auth_addr_limit = AUTH_DEFAULT_ADDR_LIMIT;
    int gen_key = 0, allow_plain = 0;
    unsigned long max_conns = DEFAULT_MAX_CONNS;
    uint64_t idle_ms = (uint64_t)DEFAULT_IDLE_S * 1000, hs_ms = DEFAULT_HS_TIMEOUT_S * 1000;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:k:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bind_addr = optarg; break;
        case 'k': key_opt = optarg; break;
        case OPT_GEN_KEY: gen_key = 1; break;
        case OPT_ALLOW_PLAIN: allow_plain = 1; break;
        case OPT_SUITES: suites_opt = optarg; break;
        case OPT_KEYLOG: keylog_path = optarg; break;
        case OPT_MAX_CONNS:
            if (vapp_parse_ulong(optarg, 1, 1000000, &max_conns) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--max-conns needs a number from 1 to 1000000");
            break;
        case OPT_IDLE:
            if (vapp_parse_seconds(optarg, 86400.0 * 365, 1, &idle_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--idle-timeout needs seconds (0 = never)");
            break;
        case OPT_HS_TIMEOUT:
            if (vapp_parse_seconds(optarg, 3600.0, 0, &hs_ms) != 0)
                vapp_usage_error(PROG, SYNOPSIS,
                                 "--handshake-timeout needs seconds, more than 0, at most 3600");
            break;
        case OPT_SERVICES: services_opt = optarg; break;
        case OPT_USERS: users_path = optarg; break;
        case OPT_BANK_DB: bank_db = optarg; break;
        case OPT_AUTH_LIMIT:
            if (vapp_parse_ulong(optarg, 1, 1000, &auth_limit) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--auth-limit needs a number from 1 to 1000");
            break;
        case OPT_AUTH_ADDR_LIMIT:
            if (vapp_parse_ulong(optarg, 1, 1000, &auth_addr_limit) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--auth-addr-limit needs a number from 1 to 1000");
            break;
        case 'q': vapp_log_set_level(VAPP_LOG_WARN); break;
        case 'h': usage(); return VAPP_EXIT_OK;
        case 'V': printf("veil-server (Veil) 1\n"); return VAPP_EXIT_OK;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    char portbuf[16];
    const char *port = portbuf;
    snprintf(portbuf, sizeof portbuf, "%d", VEIL_DEFAULT_PORT);
    if (optind < argc) {
        port = argv[optind++];
        if (vapp_parse_port(port, 1) < 0)
            vapp_usage_error(PROG, SYNOPSIS, "invalid port '%s' (0-65535)", port);
    }
    if (optind < argc)
        vapp_usage_error(PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);

    static struct server srv;
    struct server *s = &srv;
    g_srv = s;
    {
        char err[VAPP_ERRLEN];
        if (svc_parse_list(services_opt, &s->services, s->services_list, sizeof s->services_list,
                           err) != 0)
            vapp_usage_error(PROG, SYNOPSIS, "--services: %s", err);
    }
    if ((s->services & SVC_BANK) && users_path == NULL)
        vapp_usage_error(PROG, SYNOPSIS,
                         "the bank service needs --users FILE (accounts belong to "
                         "authenticated users)");
    if (bank_db != NULL && !(s->services & SVC_BANK))
        vapp_usage_error(PROG, SYNOPSIS, "--bank-db needs the bank service (--services ...,bank)");
    s->users_path = users_path;
    s->max_conns = max_conns;
    s->idle_ms = idle_ms;
    veil_config_init(&s->cfg, VEIL_ROLE_SERVER);
    s->cfg.modes = VEIL_MODE_ENCRYPTED | (allow_plain ? VEIL_MODE_PLAINTEXT : 0);
    if (suites_opt != NULL) {
        s->cfg.n_suites = parse_suites(suites_opt, s->suites);
        s->cfg.suites = s->suites;
    }
    s->cfg.handshake_timeout_ms = hs_ms;
    s->cfg.service = s->services_list;

    /* Signals first, so a SIGTERM during startup is not lost. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        vapp_log(VAPP_LOG_ERROR, "sigprocmask: %s", strerror(errno));
        return VAPP_EXIT_LOCAL;
    }

    char keypath[PATH_MAX];
    if (load_identity(key_opt, gen_key, &s->id, keypath, sizeof keypath) != 0)
        return VAPP_EXIT_LOCAL;
    s->cfg.identity = s->id;
    char err[VAPP_ERRLEN];
    if (users_path != NULL) {
        /* With a user directory every session logs in, whatever its
           service (docs/SERVICES.md §1). */
        if (auth_init(users_path, s->id, (unsigned)auth_limit, (unsigned)auth_addr_limit, err) !=
            0) {
            vapp_log(VAPP_LOG_ERROR, "%s", err);
            veil_identity_free(s->id);
            return VAPP_EXIT_LOCAL;
        }
        s->cfg.decoy_key = auth_decoy_key();
        s->cfg.require_user = 1;
    }
    if (s->services & SVC_BANK) {
        char dbpath[PATH_MAX];
        if (bank_db == NULL) {
            char dir[PATH_MAX - 32];
            if (vapp_config_dir(dir, sizeof dir, err) != 0) {
                vapp_log(VAPP_LOG_ERROR, "%s; use --bank-db FILE", err);
                return VAPP_EXIT_LOCAL;
            }
            snprintf(dbpath, sizeof dbpath, "%s/bank.db", dir);
            if (vapp_mkdir_parents(dbpath, err) != 0) {
                vapp_log(VAPP_LOG_ERROR, "%s", err);
                return VAPP_EXIT_LOCAL;
            }
            bank_db = dbpath;
        }
        if (bank_open(bank_db, err) != 0) {
            vapp_log(VAPP_LOG_ERROR, "%s", err);
            return VAPP_EXIT_LOCAL;
        }
    }
    if (vapp_keylog_open(&s->keylog, keylog_path, err) != 0) {
        vapp_log(VAPP_LOG_ERROR, "%s", err);
        veil_identity_free(s->id);
        return VAPP_EXIT_LOCAL;
    }

    int lfds[VAPP_MAX_LISTEN];
    int nl = vapp_listen(bind_addr, port, lfds, err);
    if (nl < 0) {
        vapp_log(VAPP_LOG_ERROR, "%s", err);
        veil_identity_free(s->id);
        vapp_keylog_close(&s->keylog);
        return VAPP_EXIT_CONNECT;
    }
    raise_nofile(max_conns);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->sig.kind = TAG_SIGNAL;
    s->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->epfd < 0 || s->sig.fd < 0) {
        vapp_log(VAPP_LOG_ERROR, "epoll/signalfd: %s", strerror(errno));
        return VAPP_EXIT_LOCAL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->sig};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sig.fd, &ev);
    if (s->services & SVC_CHAT) {
        /* The chat console: the operator's lines on standard input. */
        s->console.kind = TAG_CONSOLE;
        s->console.fd = STDIN_FILENO;
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = &s->console};
        if (console_open(STDIN_FILENO) == 0 &&
            epoll_ctl(s->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &cev) == 0) {
            s->console_on = 1;
        } else {
            console_close();
            vapp_log(VAPP_LOG_INFO, "chat console off: standard input is not a pipe or a "
                                    "terminal this process has in the foreground");
        }
    }

    uint8_t fp[VEIL_FINGERPRINT_LEN];
    char fps[VAPP_FPSTR_LEN];
    veil_identity_fingerprint(s->id, fp);
    vapp_fp_string(fp, fps);
    vapp_log(VAPP_LOG_INFO, "identity %s (key %s)", fps, keypath);

    char suites_desc[256] = "";
    if (s->cfg.suites == NULL) {
        snprintf(suites_desc, sizeof suites_desc, "all");
    } else {
        for (size_t i = 0; i < s->cfg.n_suites; i++) {
            size_t l = strlen(suites_desc);
            snprintf(suites_desc + l, sizeof suites_desc - l, "%s%s", i ? "," : "",
                     veil_suite_name(s->suites[i]));
        }
    }
    for (int i = 0; i < nl; i++) {
        s->lst[i].kind = TAG_LISTEN;
        s->lst[i].fd = lfds[i];
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &s->lst[i]};
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, lfds[i], &lev);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char addr[VAPP_ADDRSTR_LEN] = "?";
        if (getsockname(lfds[i], (struct sockaddr *)&ss, &sl) == 0)
            vapp_format_addr((struct sockaddr *)&ss, sl, addr);
        vapp_log(VAPP_LOG_INFO,
                 "listening on %s (modes: %s; suites: %s; keylog: %s; services: %s; users: %s)",
                 addr, allow_plain ? "encrypted,plaintext" : "encrypted", suites_desc,
                 s->keylog.fd >= 0 ? s->keylog.path : "off", s->services_list,
                 users_path ? users_path : "off");
    }
    s->n_lst = nl;

    struct epoll_event evs[64];
    /* The loop ends when shutdown has closed every connection or its grace
       period is over; each pass is bounded by epoll_timeout. */
    for (;;) {
        uint64_t now = vapp_mono_ms();
        if (s->shutting_down && (s->conns == NULL || now >= s->shutdown_deadline))
            break;
        int n = epoll_wait(s->epfd, evs, 64, epoll_timeout(s, now));
        if (n < 0 && errno != EINTR) {
            vapp_log(VAPP_LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        now = vapp_mono_ms();
        for (int i = 0; i < n; i++) {
            struct tag *t = evs[i].data.ptr;
            if (t->kind == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(s->sig.fd, &si, sizeof si) == (ssize_t)sizeof si) {
                    const char *name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
                    if (!s->shutting_down) {
                        begin_shutdown(s,
                                       si.ssi_signo == SIGINT ? "SIGINT received"
                                                              : "SIGTERM received",
                                       now);
                    } else {
                        vapp_log(VAPP_LOG_INFO, "shutdown: second %s; closing now", name);
                        s->shutdown_deadline = now;
                    }
                }
                /* begin_shutdown may have destroyed connections that later
                   entries of evs point to: look at new events instead. */
                break;
            } else if (t->kind == TAG_LISTEN) {
                if (!s->shutting_down)
                    on_accept(s, t, now);
            } else if (t->kind == TAG_CONSOLE) {
                if (s->console_on && console_readable() != 0) {
                    epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->console.fd, NULL);
                    s->console_on = 0;
                }
            } else {
                struct conn *cn = (struct conn *)(void *)t;
                /* A connection destroyed earlier in this batch cannot appear
                   here: destruction happens only for the event's own
                   connection or in run_timers/begin_shutdown, after which the
                   batch is abandoned. */
                uint32_t e = evs[i].events;
                if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && conn_on_readable(cn, now) != 0)
                    continue; /* destroyed */
                if ((e & EPOLLOUT) && conn_flush(cn) != 0)
                    continue;
                /* Its handshake ended, its idle timer restarted, a login
                   refusal was held back: any of them may set a deadline. */
                timer_note(s, conn_deadline(cn, s->idle_ms));
            }
            if (s->shutdown_req != NULL && !s->shutting_down) {
                /* EXIT on the console: as SIGTERM, and the batch is
                   abandoned for the same reason. */
                begin_shutdown(s, s->shutdown_req, now);
                break;
            }
        }
        if (s->accept_paused && now >= s->accept_resume_ms && !s->shutting_down)
            resume_accept(s);
        run_timers(s, now);
    }

    size_t left = 0;
    while (s->conns != NULL) {
        left++;
        conn_destroy(s->conns);
    }
    if (left > 0)
        vapp_log(VAPP_LOG_WARN, "shutdown: %zu connection%s did not finish closing in time", left,
                 left == 1 ? "" : "s");
    vapp_log(VAPP_LOG_INFO, "shutdown complete");
    for (int i = 0; i < s->n_lst; i++)
        close(s->lst[i].fd);
    close(s->sig.fd);
    close(s->epfd);
    vapp_keylog_close(&s->keylog);
    if (s->console_on)
        console_close();
    bank_close();
    if (users_path != NULL)
        auth_free();
    veil_identity_free(s->id);
    fflush(stdout);
    return VAPP_EXIT_OK;
}
