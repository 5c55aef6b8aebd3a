/*
 * errors.c - error texts and the names of protocol code points.
 */
#include <stdio.h>
#include <string.h>

#include "veil_internal.h"

const char *veil_alert_name(int code)
{
    switch (code) {
    case VEIL_ALERT_CLOSE_NOTIFY: return "close_notify";
    case VEIL_ALERT_UNEXPECTED_MESSAGE: return "unexpected_message";
    case VEIL_ALERT_BAD_RECORD_MAC: return "bad_record_mac";
    case VEIL_ALERT_BAD_CHECKSUM: return "bad_checksum";
    case VEIL_ALERT_RECORD_OVERFLOW: return "record_overflow";
    case VEIL_ALERT_HANDSHAKE_FAILURE: return "handshake_failure";
    case VEIL_ALERT_UNTRUSTED_IDENTITY: return "untrusted_identity";
    case VEIL_ALERT_ILLEGAL_PARAMETER: return "illegal_parameter";
    case VEIL_ALERT_DECODE_ERROR: return "decode_error";
    case VEIL_ALERT_DECRYPT_ERROR: return "decrypt_error";
    case VEIL_ALERT_PROTOCOL_VERSION: return "protocol_version";
    case VEIL_ALERT_PLAINTEXT_REFUSED: return "plaintext_refused";
    case VEIL_ALERT_BAD_SEQUENCE: return "bad_sequence";
    case VEIL_ALERT_UNKNOWN_SERVICE: return "unknown_service";
    case VEIL_ALERT_AUTH_FAILED: return "auth_failed";
    case VEIL_ALERT_INTERNAL_ERROR: return "internal_error";
    case VEIL_ALERT_TIMEOUT: return "timeout";
    case VEIL_ALERT_SERVER_BUSY: return "server_busy";
    default: return "unknown";
    }
}

static const char *alert_text(int code)
{
    switch (code) {
    case VEIL_ALERT_CLOSE_NOTIFY: return "connection closed";
    case VEIL_ALERT_UNEXPECTED_MESSAGE: return "unexpected message for the protocol state";
    case VEIL_ALERT_BAD_RECORD_MAC: return "record authentication failed (tampered or wrong key)";
    case VEIL_ALERT_BAD_CHECKSUM: return "plaintext record checksum mismatch";
    case VEIL_ALERT_RECORD_OVERFLOW: return "record longer than the maximum";
    case VEIL_ALERT_HANDSHAKE_FAILURE: return "no acceptable mode, suite or group in common";
    case VEIL_ALERT_UNTRUSTED_IDENTITY: return "server identity not trusted";
    case VEIL_ALERT_ILLEGAL_PARAMETER: return "illegal parameter in handshake";
    case VEIL_ALERT_DECODE_ERROR: return "malformed message";
    case VEIL_ALERT_DECRYPT_ERROR: return "handshake signature or Finished check failed";
    case VEIL_ALERT_PROTOCOL_VERSION: return "unsupported protocol version";
    case VEIL_ALERT_PLAINTEXT_REFUSED: return "plaintext mode not allowed by the server";
    case VEIL_ALERT_BAD_SEQUENCE: return "replayed, reordered or missing record";
    case VEIL_ALERT_UNKNOWN_SERVICE: return "service not offered by the server";
    case VEIL_ALERT_AUTH_FAILED: return "authentication failed";
    case VEIL_ALERT_INTERNAL_ERROR: return "internal error";
    case VEIL_ALERT_TIMEOUT: return "timed out";
    case VEIL_ALERT_SERVER_BUSY: return "server busy (connection limit reached)";
    default: return "unknown alert";
    }
}

const char *veil_strerror(int err)
{
    static _Thread_local char buf[128];
    if (err == 0)
        return "success";
    if (err < 0 && err >= VEIL_ERR_ALERT_MIN)
        return alert_text(-err);
    if (err <= VEIL_ERR_PEER_ALERT_BASE && err >= VEIL_ERR_PEER_ALERT_MIN) {
        int code = VEIL_ERR_PEER_ALERT_BASE - err;
        snprintf(buf, sizeof(buf), "peer sent alert %s: %s", veil_alert_name(code), alert_text(code));
        return buf;
    }
    switch (err) {
    case VEIL_ERR_NOMEM: return "out of memory";
    case VEIL_ERR_INVALID_ARG: return "invalid argument";
    case VEIL_ERR_NEED_MORE: return "more input needed";
    case VEIL_ERR_STATE: return "not valid in the current connection state";
    case VEIL_ERR_TOO_LARGE: return "message too large";
    case VEIL_ERR_CRYPTO: return "cryptographic library failure";
    case VEIL_ERR_RNG: return "random number generator failure";
    case VEIL_ERR_KEY_FORMAT: return "key is not a usable Ed25519 or RSA (2048 bits or more) private key";
    case VEIL_ERR_CLOSED: return "connection is closed";
    case VEIL_ERR_NO_KEY: return "no key for this session";
    case VEIL_ERR_UNSUPPORTED: return "unsupported suite";
    default: return "unknown error";
    }
}

static const struct {
    uint16_t id;
    const char *name;
    const char *alias;
} suites[] = {
    {VEIL_SUITE_AES_256_GCM_SHA256, "AES_256_GCM_SHA256", "aes-256-gcm"},
    {VEIL_SUITE_CHACHA20_POLY1305_SHA256, "CHACHA20_POLY1305_SHA256", "chacha20-poly1305"},
    {VEIL_SUITE_AES_256_CBC_HMAC_SHA256, "AES_256_CBC_HMAC_SHA256", "aes-256-cbc-hmac-sha256"},
    {VEIL_SUITE_NULL, "NULL", "null"},
};

const char *veil_suite_name(uint16_t suite)
{
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        if (suites[i].id == suite)
            return suites[i].name;
    return "unknown";
}

static int same_ci(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* Accepts "AES_256_GCM_SHA256" or "aes-256-gcm" style names, any case; not NULL. */
int veil_suite_from_name(const char *name, uint16_t *suite)
{
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        if (suites[i].id != VEIL_SUITE_NULL &&
            (same_ci(name, suites[i].name) || same_ci(name, suites[i].alias))) {
            *suite = suites[i].id;
            return 0;
        }
    return VEIL_ERR_INVALID_ARG;
}

const char *veil_group_name(uint16_t group)
{
    switch (group) {
    case VEIL_GROUP_X25519: return "X25519";
    case VEIL_GROUP_FFDHE2048: return "FFDHE2048";
    case VEIL_GROUP_RSA_TRANSPORT: return "RSA_TRANSPORT";
    default: return "unknown";
    }
}

/* Accepts "X25519", "FFDHE2048"/"ffdhe2048", "RSA_TRANSPORT"/"rsa", any case. */
int veil_group_from_name(const char *name, uint16_t *group)
{
    static const struct {
        uint16_t id;
        const char *a, *b;
    } groups[] = {{VEIL_GROUP_X25519, "X25519", "x25519"},
                  {VEIL_GROUP_FFDHE2048, "FFDHE2048", "ffdhe-2048"},
                  {VEIL_GROUP_RSA_TRANSPORT, "RSA_TRANSPORT", "rsa"}};
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (same_ci(name, groups[i].a) || same_ci(name, groups[i].b)) {
            *group = groups[i].id;
            return 0;
        }
    return VEIL_ERR_INVALID_ARG;
}

const char *veil_sig_name(uint16_t scheme)
{
    switch (scheme) {
    case VEIL_SIG_ED25519: return "Ed25519";
    case VEIL_SIG_RSA_PSS_SHA256: return "RSA_PSS_SHA256";
    default: return "unknown";
    }
}

const char *veil_record_type_name(uint8_t type)
{
    switch (type) {
    case VEIL_REC_HANDSHAKE: return "handshake";
    case VEIL_REC_ALERT: return "alert";
    case VEIL_REC_APPDATA: return "appdata";
    case VEIL_REC_KEY_UPDATE: return "key_update";
    default: return "unknown";
    }
}

const char *veil_hs_type_name(uint8_t type)
{
    switch (type) {
    case VEIL_HS_CLIENT_HELLO: return "ClientHello";
    case VEIL_HS_SERVER_HELLO: return "ServerHello";
    case VEIL_HS_SERVER_VERIFY: return "ServerVerify";
    case VEIL_HS_FINISHED: return "Finished";
    case VEIL_HS_CLIENT_KEY_EXCHANGE: return "ClientKeyExchange";
    case VEIL_HS_CLIENT_AUTH: return "ClientAuth";
    case VEIL_HS_SERVER_AUTH: return "ServerAuth";
    case VEIL_HS_CLIENT_VERIFY: return "ClientVerify";
    default: return "unknown";
    }
}

const char *veil_msg_kind_name(uint8_t kind)
{
    switch (kind) {
    case VEIL_MSG_TEXT: return "text";
    case VEIL_MSG_ACK: return "ack";
    default: return "unknown";
    }
}

const char *veil_body_status_name(veil_body_status s)
{
    switch (s) {
    case VEIL_BODY_PLAINTEXT: return "plaintext";
    case VEIL_BODY_BAD_CRC: return "bad CRC-32C";
    case VEIL_BODY_DECRYPTED: return "decrypted";
    case VEIL_BODY_NO_KEY: return "no key for this session";
    case VEIL_BODY_AUTH_FAILED: return "authentication failed";
    case VEIL_BODY_UNSUPPORTED: return "unsupported or unknown suite";
    case VEIL_BODY_MALFORMED: return "malformed body";
    default: return "unknown";
    }
}
