/*
 * veil.h - public API of libproto, the Veil protocol core.
 *
 * libproto is sans-IO: it never touches a socket, a file, the clock or the
 * process RNG.  Callers feed it bytes and the current time; it appends the
 * bytes to send to a caller-owned buffer and reports application events
 * through callbacks.  Randomness and keylog output go through callbacks too,
 * so a whole session is reproducible byte for byte with a deterministic RNG.
 *
 * The wire format is specified in docs/PROTOCOL.md; section numbers in the
 * comments below ("PROTOCOL.md §3") refer to it.
 *
 * Errors: every function returning int returns 0 on success or a negative
 * VEIL_ERR_* code.  Codes in [-255, -1] are protocol errors and equal
 * -(alert code) of the alert sent (down to VEIL_ERR_ALERT_MIN); see veil_strerror().
 */
#ifndef VEIL_VEIL_H
#define VEIL_VEIL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define VEIL_MUST_CHECK __attribute__((warn_unused_result))
#else
#define VEIL_MUST_CHECK
#endif

/* ------------------------------------------------------------------------ */
/* Constants (PROTOCOL.md §2, §3)                                           */

#define VEIL_DEFAULT_PORT 51424
#define VEIL_VERSION_1 0x01

#define VEIL_MAGIC0 0x56 /* 'V' */
#define VEIL_MAGIC1 0x4C /* 'L' */
#define VEIL_HEADER_LEN 16
/* Largest content (plaintext) carried by one record. */
#define VEIL_MAX_CONTENT 16384
/* Largest expansion a suite may add (CBC: 16 IV + 16 padding + 32 MAC). */
#define VEIL_MAX_OVERHEAD 64
/* Largest body length accepted on the wire; a larger length field is an error. */
#define VEIL_MAX_BODY (VEIL_MAX_CONTENT + VEIL_MAX_OVERHEAD)
#define VEIL_MAX_RECORD (VEIL_HEADER_LEN + VEIL_MAX_BODY)

#define VEIL_RANDOM_LEN 32
#define VEIL_SECRET_LEN 32
#define VEIL_HASH_LEN 32
#define VEIL_FINGERPRINT_LEN 32

/* Record types (PROTOCOL.md §2.2) */
enum {
    VEIL_REC_HANDSHAKE = 0x01,
    VEIL_REC_ALERT = 0x02,
    VEIL_REC_APPDATA = 0x03,
    VEIL_REC_KEY_UPDATE = 0x04,
};

/* Record flags (PROTOCOL.md §2.3) */
#define VEIL_FLAG_ENCRYPTED 0x01
#define VEIL_FLAGS_KNOWN VEIL_FLAG_ENCRYPTED

/* Handshake message types (PROTOCOL.md §4) */
enum {
    VEIL_HS_CLIENT_HELLO = 0x01,
    VEIL_HS_SERVER_HELLO = 0x02,
    VEIL_HS_SERVER_VERIFY = 0x03,
    VEIL_HS_FINISHED = 0x04,
    VEIL_HS_CLIENT_KEY_EXCHANGE = 0x05, /* RSA key transport only */
    VEIL_HS_CLIENT_AUTH = 0x06,         /* user authentication: the client's proof */
    VEIL_HS_SERVER_AUTH = 0x07,         /* user authentication: the server's proof */
    VEIL_HS_CLIENT_VERIFY = 0x08,       /* client identity: its key and signature */
};

/* Handshake extensions (PROTOCOL.md §4.12) */
enum {
    VEIL_EXT_SERVICE = 0x0001,
    VEIL_EXT_USER = 0x0002,         /* ClientHello: user name; ServerHello: salt, iterations */
    VEIL_EXT_PSK_IDENTITY = 0x0003, /* ClientHello: whose pre-shared key */
    VEIL_EXT_CLIENT_IDENTITY = 0x0004, /* ClientHello: will sign; ServerHello: echo */
};
#define VEIL_MAX_USER_NAME 64
#define VEIL_MAX_SERVICE_NAME 32
#define VEIL_DEFAULT_SERVICE "msg"

/* Modes (PROTOCOL.md §4.1) */
#define VEIL_MODE_ENCRYPTED 0x01
#define VEIL_MODE_PLAINTEXT 0x02

/* Cipher suites (PROTOCOL.md §6) */
enum {
    VEIL_SUITE_NULL = 0x0000, /* plaintext mode only, never offered */
    VEIL_SUITE_AES_256_GCM_SHA256 = 0x0001,
    VEIL_SUITE_CHACHA20_POLY1305_SHA256 = 0x0002,
    VEIL_SUITE_AES_256_CBC_HMAC_SHA256 = 0x0003,
};

/* Key-exchange groups (PROTOCOL.md §4.1) */
enum {
    VEIL_GROUP_X25519 = 0x0001,
    VEIL_GROUP_FFDHE2048 = 0x0002,        /* RFC 7919 classic Diffie-Hellman */
    VEIL_GROUP_RSA_TRANSPORT = 0x0100,    /* RSA-OAEP key transport: no forward secrecy */
};

/* Signature schemes (PROTOCOL.md §4.4) */
enum {
    VEIL_SIG_ED25519 = 0x0001,
    VEIL_SIG_RSA_PSS_SHA256 = 0x0002,
};

/* Application message kinds (PROTOCOL.md §7) */
enum {
    VEIL_MSG_TEXT = 0x01,
    VEIL_MSG_ACK = 0x02,
};
#define VEIL_MSG_HEADER_LEN 9 /* kind(1) + timestamp(8) */
#define VEIL_MAX_MESSAGE (VEIL_MAX_CONTENT - VEIL_MSG_HEADER_LEN)

/* Alert codes (PROTOCOL.md §8).  A protocol error returns -(code). */
enum {
    VEIL_ALERT_CLOSE_NOTIFY = 0,
    VEIL_ALERT_UNEXPECTED_MESSAGE = 10,
    VEIL_ALERT_BAD_RECORD_MAC = 20,
    VEIL_ALERT_BAD_CHECKSUM = 21,
    VEIL_ALERT_RECORD_OVERFLOW = 22,
    VEIL_ALERT_HANDSHAKE_FAILURE = 40,
    VEIL_ALERT_UNTRUSTED_IDENTITY = 42,
    VEIL_ALERT_ILLEGAL_PARAMETER = 47,
    VEIL_ALERT_DECODE_ERROR = 50,
    VEIL_ALERT_DECRYPT_ERROR = 51,
    VEIL_ALERT_PROTOCOL_VERSION = 70,
    VEIL_ALERT_PLAINTEXT_REFUSED = 71,
    VEIL_ALERT_BAD_SEQUENCE = 72,
    VEIL_ALERT_UNKNOWN_SERVICE = 73,
    VEIL_ALERT_AUTH_FAILED = 74, /* unknown user, wrong password, unknown or wrong PSK: one code */
    VEIL_ALERT_INTERNAL_ERROR = 80,
    VEIL_ALERT_TIMEOUT = 90,
    VEIL_ALERT_SERVER_BUSY = 91,
};
#define VEIL_ALERT_LEVEL_WARNING 1
#define VEIL_ALERT_LEVEL_FATAL 2

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* -1 .. -255: protocol error; the alert -(err) was (or would be) sent. */
#define VEIL_ERR_ALERT_MIN (-255)
/* -256 .. -511: the peer sent a fatal alert; code = -(err) - 256. */
#define VEIL_ERR_PEER_ALERT_BASE (-256)
#define VEIL_ERR_PEER_ALERT(code) (VEIL_ERR_PEER_ALERT_BASE - (int)(code))
#define VEIL_ERR_PEER_ALERT_MIN (-511)
/* Local errors, -1000 and below: no alert involved. */
#define VEIL_ERR_NOMEM (-1001)
#define VEIL_ERR_INVALID_ARG (-1002)
#define VEIL_ERR_NEED_MORE (-1003)   /* not an error: more input needed */
#define VEIL_ERR_STATE (-1004)       /* call not valid in the current state */
#define VEIL_ERR_TOO_LARGE (-1005)   /* payload larger than VEIL_MAX_MESSAGE */
#define VEIL_ERR_CRYPTO (-1006)      /* crypto backend failure */
#define VEIL_ERR_RNG (-1007)         /* the random callback failed */
#define VEIL_ERR_KEY_FORMAT (-1008)  /* key material could not be parsed */
#define VEIL_ERR_CLOSED (-1009)      /* connection already closed */
#define VEIL_ERR_NO_KEY (-1010)      /* observer: no secret for this session */
#define VEIL_ERR_UNSUPPORTED (-1011) /* observer: suite or feature unknown */

/* Human-readable text for any VEIL_ERR_* code (never NULL, static storage). */
const char *veil_strerror(int err);
/* Name of an alert code, e.g. "bad_record_mac"; "unknown" if not defined. */
const char *veil_alert_name(int code);
const char *veil_suite_name(uint16_t suite);   /* "AES_256_GCM_SHA256", ... */
int veil_suite_from_name(const char *name, uint16_t *suite); /* 0 or INVALID_ARG */
const char *veil_group_name(uint16_t group); /* "X25519", "FFDHE2048", "RSA_TRANSPORT" */
int veil_group_from_name(const char *name, uint16_t *group); /* also "ffdhe-2048", "rsa" */
const char *veil_sig_name(uint16_t scheme);
const char *veil_record_type_name(uint8_t type);
const char *veil_hs_type_name(uint8_t type);
const char *veil_msg_kind_name(uint8_t kind);

/* ------------------------------------------------------------------------ */
/* Buffers: caller-owned, grown with realloc by libproto when needed.       */

typedef struct veil_buf {
    uint8_t *base;
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} veil_buf;

void veil_buf_init(veil_buf *b);
/* Frees the storage after wiping it. */
void veil_buf_free(veil_buf *b);
/* Makes room for n more bytes; 0 or VEIL_ERR_NOMEM. */
int veil_buf_reserve(veil_buf *b, size_t n);
/* Drops the first n bytes (after they were written out). */
void veil_buf_consume(veil_buf *b, size_t n);

/* Wipes memory in a way the compiler cannot elide. */
void veil_memzero(void *p, size_t n);
/* Constant-time comparison: 0 if equal. */
int veil_memeq_ct(const void *a, const void *b, size_t n);

/* CRC-32C (Castagnoli), as used for plaintext record bodies. */
uint32_t veil_crc32c(uint32_t crc, const uint8_t *p, size_t n);

/* ------------------------------------------------------------------------ */
/* Record header (PROTOCOL.md §2)                                           */

typedef struct veil_header {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint8_t epoch;
    uint16_t length; /* body length */
    uint64_t seq;
} veil_header;

/*
 * Decodes the fixed 16-byte header at p.  Returns 0, VEIL_ERR_NEED_MORE when
 * len < 16, or a protocol error: -VEIL_ALERT_DECODE_ERROR (bad magic, unknown
 * type or flags), -VEIL_ALERT_PROTOCOL_VERSION, -VEIL_ALERT_RECORD_OVERFLOW.
 * On a protocol error *h is still filled as far as it was read.
 */
int veil_header_decode(const uint8_t *p, size_t len, veil_header *h) VEIL_MUST_CHECK;
void veil_header_encode(const veil_header *h, uint8_t out[VEIL_HEADER_LEN]);

/* ------------------------------------------------------------------------ */
/* Identities (Ed25519), fingerprints                                       */

typedef struct veil_identity veil_identity;

/* Makes a new Ed25519 identity with the RNG callback (32 bytes of seed). */
int veil_identity_generate(int (*rng)(void *user, uint8_t *out, size_t len), void *user,
                           veil_identity **out) VEIL_MUST_CHECK;
/*
 * Makes a new RSA identity of the given size (2048..8192 bits; 3072 is the
 * default of veil-keygen).  RSA key generation draws from OpenSSL's DRBG, not
 * from an RNG callback (docs/DESIGN.md).
 */
int veil_identity_generate_rsa(unsigned bits, veil_identity **out) VEIL_MUST_CHECK;
/* "Ed25519" or "RSA-<bits>". */
const char *veil_identity_algorithm(const veil_identity *id);
/* Parses a PKCS#8 PEM private key (Ed25519, or RSA of 2048 bits or more) held in memory. */
int veil_identity_from_pem(const char *pem, size_t len, veil_identity **out) VEIL_MUST_CHECK;
/* Writes the private key as PKCS#8 PEM into out (caller wipes and frees). */
int veil_identity_to_pem(const veil_identity *id, veil_buf *out) VEIL_MUST_CHECK;
/* Writes the public key as SubjectPublicKeyInfo PEM. */
int veil_identity_public_pem(const veil_identity *id, veil_buf *out) VEIL_MUST_CHECK;
/* SHA-256 of the DER SubjectPublicKeyInfo: `openssl pkey -pubout -outform DER | sha256sum`. */
void veil_identity_fingerprint(const veil_identity *id, uint8_t fp[VEIL_FINGERPRINT_LEN]);
void veil_identity_free(veil_identity *id);

/* 64 lowercase hex digits plus NUL. */
#define VEIL_FINGERPRINT_HEX_LEN 65
void veil_fingerprint_hex(const uint8_t fp[VEIL_FINGERPRINT_LEN], char out[VEIL_FINGERPRINT_HEX_LEN]);
/* Accepts 64 hex digits, optionally with ':' separators and a "sha256:" prefix. */
int veil_fingerprint_parse(const char *text, uint8_t fp[VEIL_FINGERPRINT_LEN]) VEIL_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* User authentication (PROTOCOL.md §4.13): SCRAM-SHA-256 style verifiers   */

#define VEIL_SCRAM_SALT_LEN 16
#define VEIL_SCRAM_MIN_ITERATIONS 4096
#define VEIL_SCRAM_DEFAULT_ITERATIONS 100000
#define VEIL_SCRAM_MAX_ITERATIONS 10000000 /* clients refuse more (denial of service) */

/* What a server stores per user: never the password. */
typedef struct veil_user_verifier {
    uint8_t salt[VEIL_SCRAM_SALT_LEN];
    uint32_t iterations;
    uint8_t stored_key[32]; /* H(HMAC(SaltedPassword, "Client Key")) */
    uint8_t server_key[32]; /* HMAC(SaltedPassword, "Server Key") */
} veil_user_verifier;

/* SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations); derives the verifier. */
int veil_user_verifier_make(const char *password, size_t password_len, const uint8_t salt[VEIL_SCRAM_SALT_LEN],
                            uint32_t iterations, veil_user_verifier *out) VEIL_MUST_CHECK;

/* Pre-shared keys (PROTOCOL.md §4.14): a shared secret stretched with
 * PBKDF2-HMAC-SHA256 (salt "veil psk v1", VEIL_PSK_ITERATIONS) into 32 bytes. */
#define VEIL_PSK_LEN 32
#define VEIL_PSK_ITERATIONS 100000
int veil_psk_stretch(const char *secret, size_t secret_len, uint8_t psk[VEIL_PSK_LEN]) VEIL_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* Connections                                                              */

typedef enum veil_role { VEIL_ROLE_CLIENT = 0, VEIL_ROLE_SERVER = 1 } veil_role;

typedef enum veil_event_type {
    VEIL_EV_HANDSHAKE_DONE = 1, /* keys established; data may flow */
    VEIL_EV_MESSAGE,            /* an application message arrived */
    VEIL_EV_KEY_UPDATE,         /* the peer moved to its next key epoch */
    VEIL_EV_PEER_CLOSED,        /* authenticated close_notify from the peer */
} veil_event_type;

typedef struct veil_event {
    veil_event_type type;
    /* VEIL_EV_MESSAGE */
    uint8_t kind;
    uint64_t timestamp_ms; /* UTC milliseconds since the epoch, as sent */
    const uint8_t *data;   /* valid during the callback only */
    size_t len;
    /* VEIL_EV_KEY_UPDATE: new epoch */
    uint8_t epoch;
} veil_event;

typedef struct veil_callbacks {
    /* Fills out with len random bytes; returns 0, or non-zero on failure. Required. */
    int (*random)(void *user, uint8_t *out, size_t len);
    /* Receives one NSS-style keylog line, without newline. Optional (NULL). */
    void (*keylog)(void *user, const char *line);
    /* Receives application events. Optional. A non-zero return aborts the
       feed call with that value (use a negative code of your own) and the
       connection is dead afterwards, without an alert.  From inside the
       callback, veil_conn_send, veil_conn_close and veil_conn_abort may be
       called on the same connection (with the same out buffer); veil_conn_feed
       and veil_conn_free must not. */
    int (*on_event)(void *user, const veil_event *ev);
    /*
     * Decides whether the peer's identity is trusted: on a client, the
     * server's; on a server, a client's that signs (client_identity).
     * fp is the SHA-256 of spki.  Return 0 to accept; non-zero refuses
     * with alert untrusted_identity.  If NULL, every identity is accepted
     * (the handshake still proves the peer holds the key it showed).
     */
    int (*verify_identity)(void *user, const uint8_t fp[VEIL_FINGERPRINT_LEN], const uint8_t *spki,
                           size_t spki_len);
    /*
     * Server only, for user authentication: fills *v for the user name and
     * returns 0, or returns non-zero when there is no such user (the server
     * then answers with a decoy salt so the two cases look alike, and the
     * proof fails with auth_failed).  NULL: clients that name a user are refused.
     */
    int (*lookup_user)(void *user, const char *name, veil_user_verifier *v);
    /* Server only, for PSK mode: fills psk for the identity and returns 0, or non-zero if unknown. */
    int (*lookup_psk)(void *user, const char *identity, uint8_t psk[VEIL_PSK_LEN]);
    void *user;
} veil_callbacks;

typedef struct veil_config {
    veil_role role;
    /* Client: the one mode it asks for.  Server: the modes it allows (bit mask). */
    uint8_t modes;
    /* Suites in preference order (client: offered; server: accepted).  NULL = all, default order. */
    const uint16_t *suites;
    size_t n_suites;
    /* Server: its identity (borrowed; must outlive the connection). */
    const veil_identity *identity;
    /* Rekey after this many records or bytes of content on one key (0 = defaults,
       PROTOCOL.md §6.4: 2^20 records, 2^34 bytes). */
    uint64_t rekey_records;
    uint64_t rekey_bytes;
    /* Handshake must complete within this many ms of veil_conn_new (0 = 10000). */
    uint64_t handshake_timeout_ms;
    /* Key-exchange groups in preference order (client: offered; server: accepted).
       NULL = client offers X25519 only; server accepts X25519, FFDHE-2048, and RSA
       transport when its identity is an RSA key. */
    const uint16_t *groups;
    size_t n_groups;
    /* Client: the service asked for (NULL = "msg").  Server: comma-separated
       services it offers (NULL = "msg"); another is refused with unknown_service. */
    const char *service;
    /* Client, user authentication: name and password (borrowed; NULL = none). */
    const char *user_name;
    const char *password;
    size_t password_len;
    /* Server: 32 secret bytes from which decoy salts for unknown users are derived
       (borrowed; required when lookup_user is set, so the decoy is stable per name). */
    const uint8_t *decoy_key;
    /* Server: refuse clients that do not authenticate as a user (auth_failed). */
    int require_user;
    /* PSK mode: the stretched pre-shared key mixed into the key schedule.  Client:
       psk and psk_identity (the name the server looks the key up by).  Server: set
       require_psk to refuse clients without one; keys come from lookup_psk. */
    const uint8_t *psk;
    const char *psk_identity;
    int require_psk;
    /* Client: an identity to sign the handshake with (mutual authentication by
       keys; borrowed).  Server: set require_client_identity to refuse clients
       that do not sign (untrusted_identity). */
    const veil_identity *client_identity;
    int require_client_identity;
} veil_config;

typedef struct veil_conn veil_conn;

/* Fills defaults: encrypted mode, all suites, default limits. */
void veil_config_init(veil_config *cfg, veil_role role);

int veil_conn_new(const veil_config *cfg, const veil_callbacks *cb, uint64_t now_ms,
                  veil_conn **out) VEIL_MUST_CHECK;
/* Wipes every secret and frees. NULL is fine. */
void veil_conn_free(veil_conn *c);

/* Client: appends the ClientHello to out.  Server: no-op. */
int veil_conn_start(veil_conn *c, veil_buf *out) VEIL_MUST_CHECK;

/*
 * Feeds received bytes.  Consumes all of in (partial records are buffered
 * internally), appends any response to out and reports events through
 * cb->on_event.  On a protocol error the fatal alert is appended to out and
 * the error is returned; the connection is then dead (every later call
 * returns VEIL_ERR_CLOSED).  When the peer sends a fatal alert,
 * VEIL_ERR_PEER_ALERT(code) is returned.
 */
int veil_conn_feed(veil_conn *c, const uint8_t *in, size_t len, uint64_t now_ms,
                   veil_buf *out) VEIL_MUST_CHECK;

/* Sends one application message of the given kind and timestamp. */
int veil_conn_send(veil_conn *c, uint8_t kind, uint64_t timestamp_ms, const uint8_t *data,
                   size_t len, veil_buf *out) VEIL_MUST_CHECK;

/* Appends an authenticated close_notify; the connection accepts no more sends. */
int veil_conn_close(veil_conn *c, veil_buf *out) VEIL_MUST_CHECK;

/* Appends a fatal alert with the given code (e.g. server_busy, timeout) and kills the connection. */
int veil_conn_abort(veil_conn *c, int alert_code, veil_buf *out);

/* Earliest time (ms) at which veil_conn_handle_timeout must be called; UINT64_MAX if none. */
uint64_t veil_conn_next_timeout(const veil_conn *c);
/* If a deadline passed: appends alert timeout and returns -VEIL_ALERT_TIMEOUT. */
int veil_conn_handle_timeout(veil_conn *c, uint64_t now_ms, veil_buf *out);

int veil_conn_handshake_done(const veil_conn *c);
/* 1 once close_notify was received, or the connection failed. */
int veil_conn_is_closed(const veil_conn *c);
uint8_t veil_conn_mode(const veil_conn *c);
uint16_t veil_conn_suite(const veil_conn *c);
uint16_t veil_conn_group(const veil_conn *c);
/* The negotiated service name (after the ClientHello on a server, the ServerHello on a client). */
const char *veil_conn_service(const veil_conn *c);
/* Peer's identity fingerprint: the server's (client side, after ServerHello) or a
 * signing client's (server side, after its ClientVerify); 0 or VEIL_ERR_STATE. */
int veil_conn_peer_fingerprint(const veil_conn *c, uint8_t fp[VEIL_FINGERPRINT_LEN]);
/* The authenticated user name (server: once ClientAuth verified; client: once
 * ServerAuth verified), or NULL. */
const char *veil_conn_user(const veil_conn *c);
/* The PSK identity both sides proved (after the handshake), or NULL. */
const char *veil_conn_psk_identity(const veil_conn *c);
/* Alert received from the peer, or -1. */
int veil_conn_peer_alert(const veil_conn *c);

/* ------------------------------------------------------------------------ */
/* Keylog (PROTOCOL.md §9)                                                  */

/* Labels of the keylog lines. */
#define VEIL_KEYLOG_CLIENT_TRAFFIC "VEIL_CLIENT_TRAFFIC_SECRET_0"
#define VEIL_KEYLOG_SERVER_TRAFFIC "VEIL_SERVER_TRAFFIC_SECRET_0"

typedef struct veil_keylog veil_keylog;

int veil_keylog_new(veil_keylog **out) VEIL_MUST_CHECK;
void veil_keylog_free(veil_keylog *kl); /* wipes */
/*
 * Parses one line (trailing "\r\n" allowed).  Comments (#) and blank lines
 * return 0 and add nothing; unknown labels are ignored (0); a malformed Veil
 * line returns -VEIL_ALERT_DECODE_ERROR.
 */
int veil_keylog_add_line(veil_keylog *kl, const char *line, size_t len) VEIL_MUST_CHECK;
/* Parses every line of a text; returns the number of malformed lines. */
size_t veil_keylog_add_text(veil_keylog *kl, const char *text, size_t len);
size_t veil_keylog_count(const veil_keylog *kl); /* sessions with at least one secret */

/* ------------------------------------------------------------------------ */
/* Passive observer (PROTOCOL.md §10)                                       */

/* Direction of a byte stream within a session. */
enum { VEIL_DIR_CLIENT_TO_SERVER = 0, VEIL_DIR_SERVER_TO_CLIENT = 1 };

/* What the observer could do with a record's body. */
typedef enum veil_body_status {
    VEIL_BODY_PLAINTEXT = 0,    /* plaintext record, CRC-32C correct */
    VEIL_BODY_BAD_CRC,          /* plaintext record, CRC-32C wrong */
    VEIL_BODY_DECRYPTED,        /* decrypted and authenticated */
    VEIL_BODY_NO_KEY,           /* encrypted, no secret for this session */
    VEIL_BODY_AUTH_FAILED,      /* tag/MAC or padding check failed */
    VEIL_BODY_UNSUPPORTED,      /* suite unknown (or not seen in the capture) */
    VEIL_BODY_MALFORMED,        /* body too short for its suite */
} veil_body_status;

const char *veil_body_status_name(veil_body_status s);

typedef struct veil_hello_info {
    /* ClientHello */
    uint8_t n_versions;
    uint8_t versions[8];
    uint8_t mode;
    uint8_t n_suites;
    uint16_t suites[16];
    uint8_t n_groups;
    uint16_t groups[8];
    /* ServerHello: chosen values (n_* = 0) */
    uint8_t version;
    uint16_t suite;
    uint16_t group;
    uint8_t random[VEIL_RANDOM_LEN];
    const uint8_t *key_share; /* pointers into the record content */
    size_t key_share_len;
    const uint8_t *identity_spki; /* ServerHello only */
    size_t identity_spki_len;
    uint8_t fingerprint[VEIL_FINGERPRINT_LEN]; /* ServerHello only */
    char service[VEIL_MAX_SERVICE_NAME + 1];  /* "" when the extension is absent */
} veil_hello_info;

typedef struct veil_observed_record {
    int dir;
    veil_header hdr;
    size_t offset;          /* stream offset of the header */
    const uint8_t *body;    /* raw body as on the wire */
    veil_body_status status;
    /* Sequence check: seq_ok is 1 when hdr.seq equals seq_expected, the number
       that follows the previous record of this direction (0 for the first). */
    int seq_ok;
    uint64_t seq_expected;
    /* Content when readable (plaintext or decrypted). */
    const uint8_t *content;
    size_t content_len;
    /* Parsed content, when readable: */
    int parse_error;        /* 0, or a negative protocol error if content is malformed */
    uint8_t hs_type;        /* handshake records */
    veil_hello_info hello;  /* ClientHello / ServerHello */
    const uint8_t *hs_body; /* ServerVerify signature / Finished MAC */
    size_t hs_body_len;
    uint16_t sig_scheme;    /* ServerVerify */
    uint8_t alert_level, alert_code; /* alert records */
    uint8_t msg_kind;       /* appdata */
    uint64_t msg_timestamp_ms;
    const uint8_t *msg_data;
    size_t msg_len;
} veil_observed_record;

typedef struct veil_observer veil_observer;

/* keys may be NULL (headers only) and is borrowed; it can be filled later. */
int veil_observer_new(const veil_keylog *keys, veil_observer **out) VEIL_MUST_CHECK;
/*
 * Gives the observer the server's RSA private key (borrowed): an RSA
 * key-transport session is then decrypted from the capture alone, without a
 * keylog, which is exactly why that mode has no forward secrecy.
 */
void veil_observer_set_rsa_identity(veil_observer *o, const veil_identity *id);
void veil_observer_free(veil_observer *o);

/*
 * Decodes one complete record (header + body, exactly len bytes) seen in
 * direction dir, updating the session state (hellos, keys, epochs,
 * sequence numbers).  The pointers in *rec stay valid until the next call.
 * Returns 0 (see rec->status for the body), or a protocol error if the header
 * is invalid or len disagrees with it.
 */
int veil_observer_record(veil_observer *o, int dir, const uint8_t *p, size_t len,
                         veil_observed_record *rec);

typedef int (*veil_observer_cb)(void *user, const veil_observed_record *rec);

/*
 * Stream form: feeds bytes of one direction in order; buffers partial records
 * and calls cb for each complete one.  Returns 0, the first non-zero cb
 * result, or a protocol error when the stream cannot be framed (bad header);
 * after that the direction is desynchronised and further bytes are ignored.
 */
int veil_observer_feed(veil_observer *o, int dir, const uint8_t *p, size_t len, veil_observer_cb cb,
                       void *user);
/* Bytes of an incomplete record buffered at the end of a direction. */
size_t veil_observer_pending(const veil_observer *o, int dir);
/* 1 if an authenticated (or, in plaintext mode, plain) close_notify was seen in dir. */
int veil_observer_closed(const veil_observer *o, int dir);

#ifdef __cplusplus
}
#endif
#endif /* VEIL_VEIL_H */
