/*
 * peer.h - the parts of veil-peer that are not the event loop: the message
 * payload carried inside a Veil text message (peer_msg.c) and the JSON
 * contact directory (peer_dir.c).  Both are pure enough to be unit-tested
 * without sockets (tests/peer/test_peer_units.c).
 *
 * The formats are specified in docs/PEER.md; section names in the comments
 * ("PEER.md, MESSAGE FORMAT") refer to it.
 */
#ifndef VEIL_PEER_H
#define VEIL_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "veil/veil.h"

/* ------------------------------------------------------------------------ */
/* Names (PEER.md, DIRECTORY): 1 to 64 of [A-Za-z0-9._-], the same alphabet
 * libproto accepts for a PSK identity, so a contact name can be one.      */

#define PEER_MAX_NAME VEIL_MAX_USER_NAME

/* 1 if the n bytes at s form a valid contact name. */
int peer_name_ok(const char *s, size_t n);

/* ------------------------------------------------------------------------ */
/* Message payload (PEER.md, MESSAGE FORMAT), carried as the payload of one
 * VEIL_MSG_TEXT application message:
 *
 *    0      1               5                      13           14
 *    +------+---------------+----------------------+------------+~~~~~~~~+~~~~~~~~~~~+
 *    | type |  crc32c (u32) |  timestamp_ms (u64)  | sender_len | sender |   text    |
 *    +------+---------------+----------------------+------------+~~~~~~~~+~~~~~~~~~~~+
 *
 * Big-endian.  crc32c is the CRC-32C (veil_crc32c) of every other byte of
 * the payload in order: type, timestamp_ms, sender_len, sender, text.     */

#define PEER_MSG_TEXT 0x01 /* the only type defined */
#define PEER_MSG_FIXED_LEN 14
/* Longest text: what is left of a Veil message after the fixed fields and
 * the longest sender name. */
#define PEER_MAX_TEXT (VEIL_MAX_MESSAGE - PEER_MSG_FIXED_LEN - PEER_MAX_NAME)

typedef struct peer_msg {
    uint8_t type;
    uint32_t crc;          /* as received */
    uint32_t crc_computed; /* over the received bytes */
    uint64_t timestamp_ms;
    char sender[PEER_MAX_NAME + 1];
    const uint8_t *text; /* points into the decoded buffer */
    size_t text_len;
} peer_msg;

/* Results of peer_msg_decode. */
enum {
    PEER_DEC_OK = 0,
    PEER_DEC_SHORT = -1,    /* fewer bytes than the fields announce */
    PEER_DEC_TYPE = -2,     /* type other than PEER_MSG_TEXT */
    PEER_DEC_SENDER = -3,   /* sender_len 0 or > 64, or a byte outside the alphabet */
    PEER_DEC_CRC = -4,      /* the fields decode but the CRC disagrees */
};

/* The CRC-32C of a payload's covered fields. */
uint32_t peer_msg_crc(uint8_t type, uint64_t timestamp_ms, const char *sender, const uint8_t *text,
                      size_t text_len);
/*
 * Encodes a payload into out (at most PEER_MSG_FIXED_LEN + 64 + text_len
 * bytes).  Returns the length, or 0 if sender is not a valid name, text_len
 * exceeds PEER_MAX_TEXT or cap is too small.  corrupt_crc flips the CRC (a
 * test hook, never set by the program outside test builds).
 */
size_t peer_msg_encode(uint64_t timestamp_ms, const char *sender, const uint8_t *text,
                       size_t text_len, int corrupt_crc, uint8_t *out, size_t cap);
/* Decodes a payload; on PEER_DEC_CRC every field of *m is filled. */
int peer_msg_decode(const uint8_t *p, size_t n, peer_msg *m);
/* A short description of a decode result, e.g. "truncated". */
const char *peer_dec_name(int r);

/*
 * The acknowledgement, sent by the receiver as one VEIL_MSG_ACK message:
 *
 *    0        1
 *    +--------+~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~+
 *    | status |  reason (UTF-8, 0..255 bytes)     |
 *    +--------+~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~+
 */
/* Only authenticated peers ever get an acknowledgement: a session that
 * proved neither a shared secret nor a pinned key is aborted before. */
enum peer_status {
    PEER_ST_SHOWN = 0,           /* accepted and shown to the user */
    PEER_ST_MALFORMED = 1,       /* payload does not decode */
    PEER_ST_BAD_CRC = 2,         /* CRC-32C mismatch */
    PEER_ST_STALE = 3,           /* timestamp outside the receiver's window */
    PEER_ST_SENDER_MISMATCH = 4, /* sender differs from the authenticated name */
    PEER_ST_UNKNOWN_TYPE = 5,    /* type other than PEER_MSG_TEXT */
};
#define PEER_MAX_REASON 255

const char *peer_status_name(int status);
/* Encodes an acknowledgement; returns its length (1 + strlen(reason), the
 * reason cut at PEER_MAX_REASON bytes). */
size_t peer_ack_encode(uint8_t status, const char *reason, uint8_t *out, size_t cap);
/* 0, or -1 if n is 0. */
int peer_ack_decode(const uint8_t *p, size_t n, uint8_t *status, const uint8_t **reason,
                    size_t *reason_len);

/*
 * Timestamp window: 0 if |ts - now| <= max_skew_ms; else -1 and *delta_ms
 * = ts - now (negative: the message is from the past).
 */
int peer_ts_check(uint64_t now_ms, uint64_t ts_ms, uint64_t max_skew_ms, int64_t *delta_ms);

/* ------------------------------------------------------------------------ */
/* Directory (PEER.md, DIRECTORY)                                           */

#define PEER_MAX_CONTACTS 4096
#define PEER_MAX_DIR_FILE (1024 * 1024)
#define PEER_MAX_SECRET 1024
#define PEER_MIN_SECRET_WARN 12 /* shorter secrets load with a warning */

typedef struct peer_contact {
    char name[PEER_MAX_NAME + 1];
    char ip[64]; /* numeric IPv4 or IPv6 address, as written */
    uint16_t port;
    int has_psk; /* "secret" (stretched here) or "psk" */
    uint8_t psk[VEIL_PSK_LEN];
    int has_fp; /* "fingerprint" */
    uint8_t fp[VEIL_FINGERPRINT_LEN];
    int short_secret; /* "secret" shorter than PEER_MIN_SECRET_WARN */
} peer_contact;

typedef struct peer_directory {
    peer_contact *c;
    size_t n;
    int holds_secrets; /* some contact has "secret" or "psk" */
} peer_directory;

/*
 * Loads and validates a directory file.  Every field is checked; the first
 * problem is described in err (VAPP_ERRLEN bytes) as
 * "PATH: contacts[i] (name): what is wrong".  Every contact needs "secret",
 * "psk" or "fingerprint", except the one named self (the user's own entry,
 * which may be only a name, an address and a port).  A file holding a
 * "secret" or "psk" is refused if its mode gives any access to group or
 * others.  Secrets are stretched with veil_psk_stretch; the clear secrets
 * are wiped from every buffer that held them.  Returns 0 or -1.
 */
int peer_directory_load(const char *path, const char *self, peer_directory *d, char *err);
/* Parses 64 hex digits into a PSK: 0 or -1. */
int peer_psk_parse(const char *hex, size_t len, uint8_t psk[VEIL_PSK_LEN]);
/* Wipes the PSKs and frees. */
void peer_directory_free(peer_directory *d);
/* The contact with exactly this name, or NULL. */
const peer_contact *peer_directory_find(const peer_directory *d, const char *name);

#endif /* VEIL_PEER_H */
