/*
 * peer_app.h - veil-peer's program state, shared by its event loop
 * (veil-peer.c: options, standard input, poll) and its sessions
 * (peer_session.c: one veil_conn per connection, authentication decisions,
 * message checks).  Internal to apps/peer.
 */
#ifndef VEIL_PEER_APP_H
#define VEIL_PEER_APP_H

#include <stddef.h>
#include <stdint.h>

#include "peer.h"
#include "veilapp.h"

#define DEFAULT_TIMEOUT_S 10
#define DEFAULT_MAX_SKEW_S 120
#define MAX_OUTGOING 16 /* sessions we started; stdin waits while full */
#define MAX_INCOMING 48 /* sessions others started; more are refused (server_busy) */
#define MAX_SESSIONS (MAX_OUTGOING + MAX_INCOMING)
#define CLOSE_LINGER_MS 2000    /* a closing session is gone after this */
#define SHUTDOWN_GRACE_MS 3000  /* time left to sessions after EOF or a signal */
#define READS_PER_EVENT 4
#define ACCEPTS_PER_EVENT 16
/* A typed line: name, ": ", the longest text, "\r\n", with room to spare. */
#define LINE_CAP (PEER_MAX_TEXT + 2 * PEER_MAX_NAME + 64)
#define EXIT_UNDELIVERED 5

enum sess_state { ST_FREE = 0, ST_CONNECTING, ST_OPEN, ST_CLOSING };

struct peer;

/* One connection, outgoing (we deliver a message) or incoming (we receive one). */
struct sess {
    struct peer *p;
    enum sess_state st;
    int outgoing;
    int fd;
    unsigned long id;
    char addr[VAPP_ADDRSTR_LEN];
    veil_conn *vc;
    veil_buf out;
    uint64_t deadline;       /* the whole session, from its start */
    uint64_t close_deadline; /* ST_CLOSING */
    int hs_done, peer_closed, rd_eof, wr_shut, dead, sent_close;
    /* outgoing */
    const peer_contact *to;
    uint8_t *payload; /* the encoded message, sent when the handshake is done */
    size_t payload_len;
    uint64_t ts;
    int sent, got_ack, reported;
    uint8_t ack_status;
    char ack_reason[VAPP_SANITIZED_MAX(PEER_MAX_REASON)];
    int untrusted;
    char seen_fp[VEIL_FINGERPRINT_HEX_LEN];
    /* incoming */
    char claimed[PEER_MAX_NAME + 1]; /* PSK identity the client asked for */
    int lookup_failed;               /* ... which is not a contact with a secret */
    char signer[PEER_MAX_NAME + 1];  /* contact whose pinned key the client signed with */
    int key_refused;                 /* the client signed with a key not pinned for it */
    int unauthenticated;             /* handshake done with neither PSK nor pinned key */
    unsigned n_msgs;
    int ack_due;
    uint8_t ack_st;
    char ack_text[PEER_MAX_REASON + 1];
};

/* The whole program: options, directory, identity, listeners, sessions. */
struct peer {
    /* options */
    const char *me;
    const char *dir_path;
    int plain, allow_plain, receive_only;
    uint64_t timeout_ms, max_skew_ms;
    int64_t clock_offset_ms; /* test builds only (--test-clock-offset) */
    int corrupt_crc;         /* test builds only (--test-corrupt-crc) */
    const char *test_sender; /* test builds only (--test-sender): a forged sender */
    int test_no_sign;        /* test builds only (--test-no-sign): never sign */
    /* state */
    peer_directory dir;
    int any_fp_only; /* some contact has a fingerprint and no secret */
    veil_identity *id;
    int key_given; /* --key (else a fresh identity for this run) */
    char id_fp[VAPP_FPSTR_LEN];
    vapp_keylog keylog;
    veil_config srv_cfg;
    int lst[VAPP_MAX_LISTEN];
    int n_lst;
    int sigfd;
    int stdin_open;
    char line[LINE_CAP];
    size_t line_len;
    int line_discard; /* dropping the rest of an overlong line */
    struct sess s[MAX_SESSIONS];
    unsigned long next_id;
    unsigned long delivered, failed, shown, refused;
    int quitting;
    uint64_t quit_deadline;
};

/* peer_session.c */

/* Number of live sessions in one direction. */
size_t peer_sessions_count(const struct peer *p, int outgoing);
/* Starts a session delivering text (len bytes) to contact c; every outcome,
 * failure to start included, is one log line. */
void peer_send_message(struct peer *p, const peer_contact *c, const char *text, size_t len,
                       uint64_t now);
/* Accepts what is pending on a listening socket. */
void peer_accept(struct peer *p, int lfd, uint64_t now);
/* ST_CONNECTING: the socket became writable (connected, or failed). */
void peer_sess_connected(struct sess *s, uint64_t now);
/* Reads and feeds; returns -1 if s was destroyed. */
int peer_sess_readable(struct sess *s, uint64_t now);
/* Writes pending output; returns -1 if s was destroyed. */
int peer_sess_flush(struct sess *s);
/* Frees s now (an unreported outgoing message is reported undelivered). */
void peer_sess_destroy(struct sess *s);
/* When s next needs peer_run_timers. */
uint64_t peer_sess_deadline(const struct sess *s);
/* Handles every deadline that passed. */
void peer_run_timers(struct peer *p, uint64_t now);

#endif /* VEIL_PEER_APP_H */
