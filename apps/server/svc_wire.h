/*
 * svc_wire.h - the payloads of the "chat" and "bank" services inside Veil
 * text messages (VEIL_MSG_TEXT), docs/SERVICES.md.  Header-only and without
 * dependencies, so veil-server, veil-client and the capture tool read them
 * with the same code.
 *
 * chat (SERVICES.md §2): one chat line per message
 *
 *     0        1                      1 + name_len
 *     +--------+~~~~~~~~~~~~~~~~~~~~~~+~~~~~~~~~~~~~~~~~~~~~~~~~~~~+
 *     |name_len|   name (name_len)    |   text (the rest)          |
 *     +--------+~~~~~~~~~~~~~~~~~~~~~~+~~~~~~~~~~~~~~~~~~~~~~~~~~~~+
 *
 *   client -> server: name_len = 0 (the server names the sender itself);
 *   server -> client: the sender's name, or name_len = 0 for a notice of
 *   the chat service itself ("alice joined the chat").
 *   text: UTF-8, no line breaks, at most SVC_CHAT_MAX_TEXT bytes.
 *
 * bank (SERVICES.md §3): one request or reply per message, ASCII words
 * separated by single spaces; see svc_bank.c and the spec.
 */
#ifndef VEIL_SVC_WIRE_H
#define VEIL_SVC_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "veil/veil.h"

#define SVC_CHAT_MAX_NAME 255
/* The longest text a client may send: any sender name still fits when the
 * server relays it. */
#define SVC_CHAT_MAX_TEXT (VEIL_MAX_MESSAGE - 1 - SVC_CHAT_MAX_NAME)

/* Encodes a chat line into out (at least 1 + name_len + text_len bytes);
 * returns its length, or 0 if name or text is too long. */
static inline size_t svc_chat_encode(const char *name, size_t name_len, const char *text,
                                     size_t text_len, uint8_t *out, size_t cap)
{
    if (name_len > SVC_CHAT_MAX_NAME || text_len > SVC_CHAT_MAX_TEXT ||
        1 + name_len + text_len > cap)
        return 0;
    out[0] = (uint8_t)name_len;
    if (name_len > 0)
        memcpy(out + 1, name, name_len);
    if (text_len > 0)
        memcpy(out + 1 + name_len, text, text_len);
    return 1 + name_len + text_len;
}

/* Splits a chat payload; returns 0, or -1 if it is empty or name_len runs
 * past the end. */
static inline int svc_chat_decode(const uint8_t *p, size_t len, const uint8_t **name,
                                  size_t *name_len, const uint8_t **text, size_t *text_len)
{
    if (len < 1 || (size_t)p[0] > len - 1)
        return -1;
    *name_len = p[0];
    *name = p + 1;
    *text = p + 1 + p[0];
    *text_len = len - 1 - p[0];
    return 0;
}

/* Bank (SERVICES.md §3): the request and reply keywords. */
#define SVC_BANK_DEPOSIT "DEPOSIT"
#define SVC_BANK_WITHDRAW "WITHDRAW"
#define SVC_BANK_BALANCE "BALANCE"
#define SVC_BANK_HISTORY "HISTORY"
#define SVC_BANK_OK "OK"
#define SVC_BANK_ERR "ERR"
#define SVC_BANK_REPLAYED "REPLAYED"
/* History entries per reply: at most this many (and 20 when not given). */
#define SVC_BANK_HISTORY_MAX 100
#define SVC_BANK_HISTORY_DEFAULT 20

#endif /* VEIL_SVC_WIRE_H */
