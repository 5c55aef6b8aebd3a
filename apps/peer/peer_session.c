/*
 * peer_session.c - veil-peer's sessions: one veil_conn per connection,
 * outgoing (deliver one message, wait for its acknowledgement) or incoming
 * (authenticate the peer, check its one message, show it, acknowledge).
 *
 * Life cycle of a session:
 *   ST_CONNECTING  outgoing only: non-blocking connect in progress;
 *   ST_OPEN        handshake, then the message and its acknowledgement;
 *   ST_CLOSING     after close_notify, a fatal alert or a timeout: pending
 *                  output is flushed, then SHUT_WR, then the socket is closed
 *                  on the peer's EOF or after CLOSE_LINGER_MS;
 *   freed.
 * Events from libproto are only recorded while veil_conn_feed runs; what
 * they call for (send the message, the acknowledgement, close_notify) is
 * done after feed returns, so records leave in the order libproto numbered
 * them.  Authentication decisions (PEER.md, AUTHENTICATION) are made in
 * cb_lookup_psk, cb_verify and at VEIL_EV_HANDSHAKE_DONE.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_app.h"

static uint8_t g_rdbuf[32 * 1024];
static char g_text[VAPP_SANITIZED_MAX(VEIL_MAX_MESSAGE)];

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

/* The wall clock messages are stamped and checked with. */
static uint64_t wall_ms(const struct peer *p)
{
    uint64_t w = vapp_wall_ms();
    if (p->clock_offset_ms < 0) {
        uint64_t back = (uint64_t)(-(p->clock_offset_ms + 1)) + 1;
        return w > back ? w - back : 0;
    }
    return w + (uint64_t)p->clock_offset_ms;
}

static const char *mode_name(uint8_t mode)
{
    return mode == VEIL_MODE_PLAINTEXT ? "plaintext" : mode == VEIL_MODE_ENCRYPTED ? "encrypted"
                                                                                  : "?";
}

static const char *suite_label(uint16_t suite)
{
    return suite == VEIL_SUITE_NULL ? "none" : veil_suite_name(suite);
}

/* Logs one line about a session: "to bob (1.2.3.4:5): ..." or
 * "from 1.2.3.4:5: ...". */
static void slog(const struct sess *s, int level, const char *fmt, ...) VAPP_PRINTF(3, 4);
static void slog(const struct sess *s, int level, const char *fmt, ...)
{
    if (!vapp_log_enabled(level))
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *who = s->vc != NULL ? veil_conn_psk_identity(s->vc) : NULL;
    if (who == NULL && s->signer[0] != '\0')
        who = s->signer;
    if (s->outgoing)
        vapp_log(level, "#%lu to %s (%s): %s", s->id, s->to->name, s->addr, msg);
    else if (who != NULL)
        vapp_log(level, "#%lu from %s (%s): %s", s->id, who, s->addr, msg);
    else
        vapp_log(level, "#%lu from %s: %s", s->id, s->addr, msg);
}

/* The one outcome line of an outgoing message. */
static void out_result(struct sess *s, int ok, const char *fmt, ...) VAPP_PRINTF(3, 4);
static void out_result(struct sess *s, int ok, const char *fmt, ...)
{
    if (s->reported)
        return;
    s->reported = 1;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ok) {
        s->p->delivered++;
        slog(s, VAPP_LOG_INFO, "message delivered: %s", msg);
    } else {
        s->p->failed++;
        slog(s, VAPP_LOG_WARN, "message NOT delivered: %s", msg);
    }
}

size_t peer_sessions_count(const struct peer *p, int outgoing)
{
    size_t n = 0;
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (p->s[i].st != ST_FREE && p->s[i].outgoing == outgoing)
            n++;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Session life cycle                                                       */

void peer_sess_destroy(struct sess *s)
{
    if (s->outgoing && !s->reported)
        out_result(s, 0, "the session ended before %s acknowledged the message", s->to->name);
    if (s->fd >= 0)
        close(s->fd);
    veil_conn_free(s->vc); /* wipes the keys */
    veil_buf_free(&s->out);
    if (s->payload != NULL) {
        veil_memzero(s->payload, s->payload_len);
        free(s->payload);
    }
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->st = ST_FREE;
}

static void sess_begin_close(struct sess *s, uint64_t now)
{
    if (s->st == ST_CLOSING)
        return;
    s->st = ST_CLOSING;
    s->close_deadline = now + CLOSE_LINGER_MS;
    if (s->p->quitting && s->p->quit_deadline < s->close_deadline)
        s->close_deadline = s->p->quit_deadline;
}

/* Writes what the socket takes.  Returns -1 if s was destroyed. */
int peer_sess_flush(struct sess *s)
{
    if (vapp_send_pending(s->fd, &s->out) != 0) {
        if (s->st != ST_CLOSING) {
            if (s->outgoing)
                out_result(s, 0, "connection lost while sending: %s", strerror(errno));
            else
                slog(s, VAPP_LOG_WARN, "connection lost while sending: %s", strerror(errno));
        }
        peer_sess_destroy(s);
        return -1;
    }
    if (s->st == ST_CLOSING && s->out.len == 0) {
        if (s->rd_eof) {
            peer_sess_destroy(s);
            return -1;
        }
        if (!s->wr_shut)
            (void)shutdown(s->fd, SHUT_WR);
        s->wr_shut = 1;
    }
    return 0;
}

static struct sess *sess_alloc(struct peer *p, int outgoing, uint64_t now)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct sess *s = &p->s[i];
        if (s->st != ST_FREE)
            continue;
        memset(s, 0, sizeof *s);
        s->fd = -1;
        s->p = p;
        s->outgoing = outgoing;
        s->id = ++p->next_id;
        s->deadline = now + p->timeout_ms;
        veil_buf_init(&s->out);
        return s;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* libproto callbacks                                                       */

static void cb_keylog(void *user, const char *line)
{
    struct sess *s = user;
    vapp_keylog_write(&s->p->keylog, line);
}

/* Listener: the PSK for the identity a connecting peer names. */
static int cb_lookup_psk(void *user, const char *identity, uint8_t psk[VEIL_PSK_LEN])
{
    struct sess *s = user;
    if (!peer_name_ok(identity, strlen(identity))) { /* libproto checked it; be sure */
        s->lookup_failed = 1;
        return -1;
    }
    snprintf(s->claimed, sizeof s->claimed, "%s", identity);
    const peer_contact *c = peer_directory_find(&s->p->dir, identity);
    if (c == NULL || !c->has_psk || strcmp(c->name, s->p->me) == 0) {
        s->lookup_failed = 1;
        return -1;
    }
    memcpy(psk, c->psk, VEIL_PSK_LEN);
    return 0;
}

/*
 * Identity keys.  Connecting side: the listener's key must be the one
 * pinned for the contact (without a pin the PSK alone authenticates it).
 * Listening side, called once a client's ClientVerify signature checked:
 * the key must be pinned for the contact the client is, so the signature
 * names it (PEER.md, AUTHENTICATION).
 */
static int cb_verify(void *user, const uint8_t fp[VEIL_FINGERPRINT_LEN], const uint8_t *spki,
                     size_t spki_len)
{
    struct sess *s = user;
    (void)spki;
    (void)spki_len;
    veil_fingerprint_hex(fp, s->seen_fp);
    if (s->outgoing) {
        if (s->to->has_fp && veil_memeq_ct(fp, s->to->fp, VEIL_FINGERPRINT_LEN) != 0) {
            s->untrusted = 1;
            return -1;
        }
        return 0;
    }
    const peer_directory *d = &s->p->dir;
    if (s->claimed[0] != '\0' && !s->lookup_failed) {
        /* Shared secret already proven for this name: a signature from it
           must be with its pinned key, if it has one. */
        const peer_contact *c = peer_directory_find(d, s->claimed);
        if (c != NULL && c->has_fp) {
            if (veil_memeq_ct(fp, c->fp, VEIL_FINGERPRINT_LEN) != 0) {
                s->key_refused = 1;
                return -1;
            }
            snprintf(s->signer, sizeof s->signer, "%s", c->name);
        }
        return 0;
    }
    for (size_t i = 0; i < d->n; i++) {
        const peer_contact *c = &d->c[i];
        if (c->has_fp && strcmp(c->name, s->p->me) != 0 &&
            veil_memeq_ct(fp, c->fp, VEIL_FINGERPRINT_LEN) == 0) {
            snprintf(s->signer, sizeof s->signer, "%s", c->name);
            return 0;
        }
    }
    s->key_refused = 1;
    return -1;
}

/* How a finished handshake authenticated the other side. */
static const char *auth_how(const veil_conn *vc)
{
    return veil_conn_psk_identity(vc) != NULL ? "shared secret" : "pinned keys";
}

/* Listener: the contact whose pinned key signed this session, checked once
 * more against the key libproto bound the session to; NULL if none. */
static const char *signer_of(const struct sess *s)
{
    uint8_t fp[VEIL_FINGERPRINT_LEN];
    if (s->signer[0] == '\0' || veil_conn_peer_fingerprint(s->vc, fp) != 0)
        return NULL;
    const peer_contact *c = peer_directory_find(&s->p->dir, s->signer);
    if (c == NULL || !c->has_fp || veil_memeq_ct(fp, c->fp, VEIL_FINGERPRINT_LEN) != 0)
        return NULL;
    return c->name;
}

/* Checks an incoming message and decides what to show and acknowledge. */
static void on_incoming_text(struct sess *s, const veil_event *ev)
{
    struct peer *p = s->p;
    peer_msg m;
    int d = peer_msg_decode(ev->data, ev->len, &m);
    const char *psk_id = veil_conn_psk_identity(s->vc);
    char tmp[32];
    s->ack_due = 1;
    if (d == PEER_DEC_TYPE) {
        s->ack_st = PEER_ST_UNKNOWN_TYPE;
        snprintf(s->ack_text, sizeof s->ack_text, "message type 0x%02x is not known",
                 (unsigned)m.type);
    } else if (d == PEER_DEC_CRC) {
        s->ack_st = PEER_ST_BAD_CRC;
        snprintf(s->ack_text, sizeof s->ack_text,
                 "CRC-32C mismatch: the message says %08x, its bytes give %08x", m.crc,
                 m.crc_computed);
    } else if (d != PEER_DEC_OK) {
        s->ack_st = PEER_ST_MALFORMED;
        snprintf(s->ack_text, sizeof s->ack_text, "malformed message: %s (%zu bytes)",
                 peer_dec_name(d), ev->len);
    } else {
        /* Never NULL here: unauthenticated sessions never reach this. */
        const char *auth = psk_id != NULL ? psk_id : signer_of(s);
        int64_t delta = 0;
        if (auth == NULL || strcmp(auth, m.sender) != 0) {
            s->ack_st = PEER_ST_SENDER_MISMATCH;
            snprintf(s->ack_text, sizeof s->ack_text,
                     "the message says it is from \"%s\" but the session authenticated \"%s\"",
                     m.sender, auth != NULL ? auth : "nobody");
        } else if (peer_ts_check(wall_ms(p), m.timestamp_ms, p->max_skew_ms, &delta) != 0) {
            char ts[VAPP_TIMESTR_LEN];
            vapp_format_utc(m.timestamp_ms, ts);
            s->ack_st = PEER_ST_STALE;
            snprintf(tmp, sizeof tmp, "%.1f", (double)(delta < 0 ? -delta : delta) / 1000.0);
            snprintf(s->ack_text, sizeof s->ack_text,
                     "timestamp %s is %s s %s %s's clock; the window is +/-%.1f s", ts, tmp,
                     delta < 0 ? "behind" : "ahead of", p->me,
                     (double)p->max_skew_ms / 1000.0);
        } else {
            /* Accepted: shown on stdout, sanitised (the peer may be hostile). */
            char ts[VAPP_TIMESTR_LEN];
            vapp_format_utc(m.timestamp_ms, ts);
            vapp_sanitize(m.text, m.text_len, g_text, sizeof g_text);
            printf("[%s] %s: %s\n", ts, m.sender, g_text);
            fflush(stdout);
            p->shown++;
            s->ack_st = PEER_ST_SHOWN;
            snprintf(s->ack_text, sizeof s->ack_text, "shown to %s", p->me);
            slog(s, VAPP_LOG_INFO, "message from %s shown (%zu bytes, %s, %s)", m.sender,
                 m.text_len, mode_name(veil_conn_mode(s->vc)), auth_how(s->vc));
            if (veil_conn_mode(s->vc) == VEIL_MODE_PLAINTEXT)
                slog(s, VAPP_LOG_WARN, "that message crossed the network in plaintext mode");
            return;
        }
    }
    p->refused++;
    slog(s, VAPP_LOG_WARN, "message refused (%s): %s", peer_status_name(s->ack_st), s->ack_text);
}

static int cb_event(void *user, const veil_event *ev)
{
    struct sess *s = user;
    switch (ev->type) {
    case VEIL_EV_HANDSHAKE_DONE:
        s->hs_done = 1;
        /* Listener: the peer must have proven a shared secret or a pinned
           key (libproto cannot require "one of the two"); otherwise the
           session is aborted after this feed, and nothing it sends is read. */
        if (!s->outgoing && veil_conn_psk_identity(s->vc) == NULL && signer_of(s) == NULL)
            s->unauthenticated = 1;
        break;
    case VEIL_EV_MESSAGE:
        if (s->outgoing) {
            if (ev->kind != VEIL_MSG_ACK || s->got_ack || !s->sent) {
                slog(s, VAPP_LOG_WARN, "ignored an unexpected %s message (%zu bytes)",
                     veil_msg_kind_name(ev->kind), ev->len);
                break;
            }
            const uint8_t *reason;
            size_t rlen;
            if (peer_ack_decode(ev->data, ev->len, &s->ack_status, &reason, &rlen) != 0) {
                s->ack_status = PEER_ST_MALFORMED;
                snprintf(s->ack_reason, sizeof s->ack_reason, "(empty acknowledgement)");
            } else {
                vapp_sanitize(reason, rlen, s->ack_reason, sizeof s->ack_reason);
            }
            s->got_ack = 1;
        } else if (!s->unauthenticated) {
            if (ev->kind != VEIL_MSG_TEXT) {
                slog(s, VAPP_LOG_WARN, "ignored a %s message (%zu bytes)",
                     veil_msg_kind_name(ev->kind), ev->len);
                break;
            }
            if (s->n_msgs++ > 0) {
                slog(s, VAPP_LOG_WARN, "ignored message %u: one message per session", s->n_msgs);
                break;
            }
            on_incoming_text(s, ev);
        }
        break;
    case VEIL_EV_KEY_UPDATE:
        break;
    case VEIL_EV_PEER_CLOSED:
        s->peer_closed = 1;
        break;
    }
    return 0;
}

static void callbacks_for(struct sess *s, veil_callbacks *cb)
{
    memset(cb, 0, sizeof *cb);
    cb->random = vapp_random;
    cb->keylog = cb_keylog;
    cb->on_event = cb_event;
    cb->user = s;
    cb->verify_identity = cb_verify;
    if (!s->outgoing)
        cb->lookup_psk = cb_lookup_psk;
}

/* ------------------------------------------------------------------------ */
/* Errors in words                                                          */

static int peer_alert_of(int err)
{
    if (err <= VEIL_ERR_PEER_ALERT_BASE && err >= VEIL_ERR_PEER_ALERT_MIN)
        return VEIL_ERR_PEER_ALERT_BASE - err;
    return -1;
}

/* The outcome line of an outgoing session that libproto ended with err. */
static void out_error(struct sess *s, int err)
{
    const char *to = s->to->name;
    int pa = peer_alert_of(err);
    if (err == -VEIL_ALERT_UNTRUSTED_IDENTITY && s->untrusted) {
        char pin[VEIL_FINGERPRINT_HEX_LEN];
        veil_fingerprint_hex(s->to->fp, pin);
        out_result(s, 0,
                   "%s's identity is not the pinned one: it presented sha256:%s, the directory "
                   "pins sha256:%s (sent alert untrusted_identity)",
                   to, s->seen_fp, pin);
    } else if ((err == -VEIL_ALERT_AUTH_FAILED || err == -VEIL_ALERT_DECRYPT_ERROR) &&
               s->to->has_psk) {
        /* libproto checks the listener's Finished first: a wrong secret
           shows up here, before we ever prove ours. */
        out_result(s, 0,
                   "handshake failed: %s's Finished does not prove our shared secret: the "
                   "secrets differ, or this is not %s (sent alert %s)",
                   to, to, veil_alert_name(-err));
    } else if (pa == VEIL_ALERT_AUTH_FAILED && s->hs_done) {
        out_result(s, 0, "%s could not verify our Finished (alert auth_failed): the shared "
                         "secrets differ",
                   to);
    } else if (pa == VEIL_ALERT_AUTH_FAILED) {
        if (s->to->has_psk)
            out_result(s, 0,
                       "%s refused us (alert auth_failed): %s's directory has no shared secret "
                       "for \"%s\"",
                       to, to, s->p->me);
        else
            out_result(s, 0,
                       "%s refused us (alert auth_failed): %s wants a shared secret, and %s has "
                       "only a fingerprint for %s here",
                       to, to, s->p->dir_path, to);
    } else if (pa == VEIL_ALERT_DECRYPT_ERROR) {
        out_result(s, 0,
                   "%s could not verify our Finished (alert decrypt_error): the shared secrets "
                   "differ",
                   to);
    } else if (pa == VEIL_ALERT_UNTRUSTED_IDENTITY) {
        out_result(s, 0,
                   "%s does not accept our key (alert untrusted_identity): %s's directory must "
                   "pin %s for \"%s\"%s",
                   to, to, s->p->id_fp, s->p->me,
                   s->p->key_given ? "" : " (no --key: this run signs with a fresh key)");
    } else if (pa == VEIL_ALERT_PLAINTEXT_REFUSED) {
        out_result(s, 0,
                   "%s does not accept plaintext mode (alert plaintext_refused; %s must run with "
                   "--allow-plain, or send without --plain)",
                   to, to);
    } else if (pa >= 0) {
        out_result(s, 0, "%s ended the session with alert %s", to, veil_alert_name(pa));
    } else if (err <= -1 && err >= VEIL_ERR_ALERT_MIN) {
        out_result(s, 0, "protocol error %s: %s (sent alert %s)",
                   s->hs_done ? "in the session" : "in the handshake", veil_strerror(err),
                   veil_alert_name(-err));
    } else {
        out_result(s, 0, "%s", veil_strerror(err));
    }
}

/* The log line of an incoming session that libproto ended with err. */
static void in_error(struct sess *s, int err)
{
    int pa = peer_alert_of(err);
    char who[PEER_MAX_NAME + 32] = "";
    if (s->claimed[0] != '\0')
        snprintf(who, sizeof who, " (claims to be \"%s\")", s->claimed);
    if (err == -VEIL_ALERT_AUTH_FAILED && s->lookup_failed) {
        slog(s, VAPP_LOG_WARN,
             "refused%s: not a contact with a shared secret in %s (sent alert auth_failed)", who,
             s->p->dir_path);
    } else if (err == -VEIL_ALERT_AUTH_FAILED && s->claimed[0] == '\0') {
        slog(s, VAPP_LOG_WARN,
             "refused: the peer offered no shared secret, and every contact in %s has one "
             "(sent alert auth_failed)",
             s->p->dir_path);
    } else if ((pa == VEIL_ALERT_AUTH_FAILED || pa == VEIL_ALERT_DECRYPT_ERROR) &&
               s->claimed[0] != '\0') {
        slog(s, VAPP_LOG_WARN,
             "handshake failed%s: the peer could not verify our Finished (alert %s): the shared "
             "secrets differ, or it is not \"%s\"",
             who, veil_alert_name(pa), s->claimed);
    } else if (err == -VEIL_ALERT_DECRYPT_ERROR || err == -VEIL_ALERT_AUTH_FAILED) {
        slog(s, VAPP_LOG_WARN,
             "handshake failed%s: the peer's Finished does not verify (sent alert %s)%s", who,
             veil_alert_name(-err), s->claimed[0] != '\0' ? ": the shared secrets differ" : "");
    } else if (err == -VEIL_ALERT_UNTRUSTED_IDENTITY && s->key_refused) {
        if (s->claimed[0] != '\0')
            slog(s, VAPP_LOG_WARN,
                 "refused%s: it signed with sha256:%s, not the key %s pins for \"%s\" (sent "
                 "alert untrusted_identity)",
                 who, s->seen_fp, s->p->dir_path, s->claimed);
        else
            slog(s, VAPP_LOG_WARN,
                 "refused: it signed with key sha256:%s, which no contact in %s pins (sent alert "
                 "untrusted_identity)",
                 s->seen_fp, s->p->dir_path);
    } else if (err == -VEIL_ALERT_PLAINTEXT_REFUSED) {
        slog(s, VAPP_LOG_WARN,
             "refused%s: the peer asked for plaintext mode, allowed only with --allow-plain "
             "(sent alert plaintext_refused)",
             who);
    } else if (pa >= 0) {
        slog(s, VAPP_LOG_WARN, "%s%s: peer sent alert %s",
             s->hs_done ? "session failed" : "handshake failed", who, veil_alert_name(pa));
    } else if (err <= -1 && err >= VEIL_ERR_ALERT_MIN) {
        slog(s, VAPP_LOG_WARN, "%s%s: %s (sent alert %s)",
             s->hs_done ? "session failed" : "handshake failed", who, veil_strerror(err),
             veil_alert_name(-err));
    } else {
        slog(s, VAPP_LOG_WARN, "session failed%s: %s", who, veil_strerror(err));
    }
}

/* ------------------------------------------------------------------------ */
/* After each feed: what the events asked for                               */

static void fail_session(struct sess *s, int err, uint64_t now)
{
    if (s->outgoing)
        out_error(s, err);
    else
        in_error(s, err);
    s->dead = 1;
    sess_begin_close(s, now);
}

static void close_session(struct sess *s, uint64_t now)
{
    if (!s->sent_close && !s->dead) {
        int r = veil_conn_close(s->vc, &s->out);
        if (r != 0)
            s->dead = 1;
        s->sent_close = 1;
    }
    sess_begin_close(s, now);
}

static void out_after_feed(struct sess *s, uint64_t now)
{
    if (s->dead)
        return;
    if (s->hs_done && !s->sent) {
        /* The key the session is bound to must be the one the trust
           decision was made on (belt and braces over cb_verify). */
        uint8_t fp[VEIL_FINGERPRINT_LEN];
        if (s->to->has_fp && (veil_conn_peer_fingerprint(s->vc, fp) != 0 ||
                              veil_memeq_ct(fp, s->to->fp, VEIL_FINGERPRINT_LEN) != 0)) {
            veil_conn_abort(s->vc, VEIL_ALERT_INTERNAL_ERROR, &s->out);
            out_result(s, 0, "internal error: the identity of %s was not checked", s->to->name);
            s->dead = 1;
            sess_begin_close(s, now);
            return;
        }
        const char *psk_id = veil_conn_psk_identity(s->vc);
        slog(s, VAPP_LOG_DEBUG, "handshake done: mode %s, suite %s, group %s, %s",
             mode_name(veil_conn_mode(s->vc)), suite_label(veil_conn_suite(s->vc)),
             veil_group_name(veil_conn_group(s->vc)),
             psk_id != NULL ? "shared secret proven" : "pinned keys proven");
        int r = veil_conn_send(s->vc, VEIL_MSG_TEXT, s->ts, s->payload, s->payload_len, &s->out);
        if (r != 0) {
            fail_session(s, r, now);
            return;
        }
        s->sent = 1;
    }
    if (s->got_ack && !s->sent_close) {
        if (s->ack_status == PEER_ST_SHOWN)
            out_result(s, 1, "%s showed it (%s, %s)", s->to->name,
                       mode_name(veil_conn_mode(s->vc)), auth_how(s->vc));
        else
            out_result(s, 0, "%s refused it (%s): %s", s->to->name,
                       peer_status_name(s->ack_status), s->ack_reason);
        close_session(s, now);
        return;
    }
    if (s->peer_closed && !s->sent_close) {
        out_result(s, 0, "%s closed the session without acknowledging the message", s->to->name);
        close_session(s, now);
    }
}

static void in_after_feed(struct sess *s, uint64_t now)
{
    if (s->dead)
        return;
    if (s->unauthenticated) {
        slog(s, VAPP_LOG_WARN,
             "refused: the peer proved neither a shared secret nor a key pinned in %s (sent "
             "alert untrusted_identity)",
             s->p->dir_path);
        veil_conn_abort(s->vc, VEIL_ALERT_UNTRUSTED_IDENTITY, &s->out);
        s->dead = 1;
        sess_begin_close(s, now);
        return;
    }
    if (s->ack_due && !s->sent_close) {
        uint8_t ack[1 + PEER_MAX_REASON];
        size_t n = peer_ack_encode(s->ack_st, s->ack_text, ack, sizeof ack);
        int r = veil_conn_send(s->vc, VEIL_MSG_ACK, wall_ms(s->p), ack, n, &s->out);
        s->ack_due = 0;
        if (r != 0) {
            fail_session(s, r, now);
            return;
        }
        close_session(s, now);
        return;
    }
    if (s->peer_closed && !s->sent_close) {
        if (s->n_msgs == 0)
            slog(s, VAPP_LOG_INFO, "closed by the peer without a message");
        close_session(s, now);
    }
}

/* Returns -1 if s was destroyed. */
int peer_sess_readable(struct sess *s, uint64_t now)
{
    for (int i = 0; i < READS_PER_EVENT && !s->rd_eof; i++) {
        ssize_t n = recv(s->fd, g_rdbuf, sizeof g_rdbuf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (s->st != ST_CLOSING) {
                if (s->outgoing)
                    out_result(s, 0, "connection lost: %s", strerror(errno));
                else
                    slog(s, VAPP_LOG_WARN, "connection lost: %s", strerror(errno));
            }
            peer_sess_destroy(s);
            return -1;
        }
        if (n == 0) {
            s->rd_eof = 1;
            if (s->st == ST_CLOSING) {
                if (s->out.len == 0) {
                    peer_sess_destroy(s);
                    return -1;
                }
                break;
            }
            if (s->outgoing)
                out_result(s, 0, "%s closed the connection %s", s->to->name,
                           s->hs_done ? "without acknowledging the message (truncated)"
                                      : "during the handshake");
            else
                slog(s, VAPP_LOG_INFO, "disconnected %s",
                     s->hs_done ? "without close_notify (truncated)" : "during the handshake");
            peer_sess_destroy(s);
            return -1;
        }
        /* After our close_notify we still read, to see the peer's. */
        if (s->dead || (s->st == ST_CLOSING && !s->sent_close) || s->peer_closed)
            continue;
        int r = veil_conn_feed(s->vc, g_rdbuf, (size_t)n, now, &s->out);
        if (r != 0) {
            if (s->st == ST_CLOSING) {
                s->dead = 1; /* after our close: nothing more to say */
                continue;
            }
            fail_session(s, r, now);
            break;
        }
        if (s->outgoing)
            out_after_feed(s, now);
        else
            in_after_feed(s, now);
    }
    return peer_sess_flush(s);
}

/* ------------------------------------------------------------------------ */
/* Outgoing                                                                 */

static void on_connected(struct sess *s, uint64_t now)
{
    struct peer *p = s->p;
    vapp_set_nodelay(s->fd);
    veil_config cfg;
    veil_config_init(&cfg, VEIL_ROLE_CLIENT);
    cfg.modes = p->plain ? VEIL_MODE_PLAINTEXT : VEIL_MODE_ENCRYPTED;
    cfg.handshake_timeout_ms = s->deadline > now ? s->deadline - now : 1;
    if (s->to->has_psk) {
        cfg.psk = s->to->psk;
        cfg.psk_identity = p->me;
    }
    /* A contact we pin pins us too: sign the handshake with our key. */
    if (s->to->has_fp && !p->test_no_sign)
        cfg.client_identity = p->id;
    veil_callbacks cb;
    callbacks_for(s, &cb);
    int r = veil_conn_new(&cfg, &cb, now, &s->vc);
    if (r == 0)
        r = veil_conn_start(s->vc, &s->out);
    if (r != 0) {
        out_result(s, 0, "cannot start a session: %s", veil_strerror(r));
        peer_sess_destroy(s);
        return;
    }
    s->st = ST_OPEN;
    (void)peer_sess_flush(s);
}

static void connect_failed(struct sess *s, int e)
{
    out_result(s, 0, "cannot reach %s at %s: %s%s", s->to->name, s->addr, strerror(e),
               e == ECONNREFUSED ? " (is their veil-peer running?)" : "");
    peer_sess_destroy(s);
}

/* Starts a session to deliver text to contact c. */
void peer_send_message(struct peer *p, const peer_contact *c, const char *text, size_t len,
                           uint64_t now)
{
    struct sess *s = sess_alloc(p, 1, now);
    if (s == NULL) {
        vapp_log(VAPP_LOG_WARN, "message to %s NOT sent: too many sessions in progress", c->name);
        p->failed++;
        return;
    }
    s->to = c;
    s->ts = wall_ms(p);
    s->payload = malloc(PEER_MSG_FIXED_LEN + PEER_MAX_NAME + len);
    if (s->payload != NULL)
        s->payload_len = peer_msg_encode(s->ts, p->test_sender ? p->test_sender : p->me,
                                         (const uint8_t *)text, len, p->corrupt_crc,
                                         s->payload, PEER_MSG_FIXED_LEN + PEER_MAX_NAME + len);
    if (s->payload == NULL || s->payload_len == 0) {
        s->reported = 1;
        vapp_log(VAPP_LOG_ERROR, "message to %s NOT sent: %s", c->name,
                 s->payload == NULL ? "out of memory" : "cannot encode it");
        p->failed++;
        peer_sess_destroy(s);
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int g = getaddrinfo(c->ip, port, &hints, &ai);
    if (g != 0 || ai == NULL) {
        snprintf(s->addr, sizeof s->addr, "%s:%s", c->ip, port);
        out_result(s, 0, "bad address %s: %s", c->ip, gai_strerror(g));
        if (ai != NULL)
            freeaddrinfo(ai);
        peer_sess_destroy(s);
        return;
    }
    vapp_format_addr(ai->ai_addr, ai->ai_addrlen, s->addr);
    /* Non-blocking connect inside the event loop (not vapp_connect, which
       waits): a contact that does not answer must not stall the others. */
    s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        int e = errno;
        freeaddrinfo(ai);
        out_result(s, 0, "cannot create a socket: %s", strerror(e));
        peer_sess_destroy(s);
        return;
    }
    int r = connect(s->fd, ai->ai_addr, ai->ai_addrlen);
    int e = errno;
    freeaddrinfo(ai);
    slog(s, VAPP_LOG_DEBUG, "connecting (%zu bytes of text)", len);
    if (r == 0) {
        on_connected(s, now);
    } else if (e == EINPROGRESS) {
        s->st = ST_CONNECTING;
    } else {
        connect_failed(s, e);
    }
}

void peer_sess_connected(struct sess *s, uint64_t now)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        connect_failed(s, soerr);
        return;
    }
    on_connected(s, now);
}

/* ------------------------------------------------------------------------ */
/* Incoming                                                                 */

void peer_accept(struct peer *p, int lfd, uint64_t now)
{
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                vapp_log(VAPP_LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        char addr[VAPP_ADDRSTR_LEN];
        vapp_format_addr((struct sockaddr *)&ss, sl, addr);
        struct sess *s = peer_sessions_count(p, 0) < MAX_INCOMING ? sess_alloc(p, 0, now) : NULL;
        veil_callbacks cb;
        if (s != NULL) {
            s->fd = fd;
            snprintf(s->addr, sizeof s->addr, "%s", addr);
            callbacks_for(s, &cb);
            if (veil_conn_new(&p->srv_cfg, &cb, now, &s->vc) != 0) {
                vapp_log(VAPP_LOG_ERROR, "from %s: dropped: cannot set up a session", addr);
                peer_sess_destroy(s);
                continue;
            }
            vapp_set_nodelay(fd);
            s->st = ST_OPEN;
            slog(s, VAPP_LOG_DEBUG, "connected");
            continue;
        }
        /* Full: a server_busy alert from a throw-away veil_conn, best effort. */
        vapp_refuse_and_close(fd, &p->srv_cfg, VEIL_ALERT_SERVER_BUSY, now);
        vapp_log(VAPP_LOG_WARN, "from %s: refused: %d incoming sessions already (sent alert "
                                "server_busy)",
                 addr, MAX_INCOMING);
    }
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */

uint64_t peer_sess_deadline(const struct sess *s)
{
    if (s->st == ST_CLOSING)
        return s->close_deadline;
    uint64_t t = s->deadline;
    if (s->vc != NULL) {
        uint64_t v = veil_conn_next_timeout(s->vc);
        if (v < t)
            t = v;
    }
    return t;
}

void peer_run_timers(struct peer *p, uint64_t now)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct sess *s = &p->s[i];
        if (s->st == ST_FREE || peer_sess_deadline(s) > now)
            continue;
        if (s->st == ST_CLOSING) {
            peer_sess_destroy(s);
            continue;
        }
        if (s->st == ST_CONNECTING) {
            out_result(s, 0, "cannot reach %s at %s: no answer within %.1f s", s->to->name,
                       s->addr, (double)p->timeout_ms / 1000.0);
            peer_sess_destroy(s);
            continue;
        }
        int r = veil_conn_handle_timeout(s->vc, now, &s->out);
        if (r == 0 && veil_conn_next_timeout(s->vc) > now && s->deadline > now)
            continue; /* nothing was due after all */
        if (r == 0)
            veil_conn_abort(s->vc, VEIL_ALERT_TIMEOUT, &s->out);
        const char *what = !s->hs_done ? "the handshake" : s->outgoing ? "the acknowledgement"
                                                                        : "the message";
        if (s->outgoing)
            out_result(s, 0, "timed out after %.1f s waiting for %s (sent alert timeout)",
                       (double)p->timeout_ms / 1000.0, what);
        else
            slog(s, VAPP_LOG_WARN, "timed out waiting for %s (sent alert timeout)", what);
        s->dead = 1;
        sess_begin_close(s, now);
        (void)peer_sess_flush(s);
    }
}
