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

/* A part of a message: offset and length; len < 0 when absent. */
typedef struct svc_span {
    int32_t off, len;
} svc_span;
#define SVC_NO_SPAN ((svc_span){0, -1})

/* The named words of a bank request or reply (SERVICES.md §3.1). */
typedef struct svc_bank_msg {
    svc_span op;    /* the first word: request keyword, or reply kind */
    svc_span ok_op; /* OK replies: DEPOSIT or WITHDRAW */
    svc_span request_id, amount, balance, error;
    svc_span count; /* HISTORY: the count asked for, or the number of entries */
    int replayed;   /* OK ... REPLAYED */
} svc_bank_msg;

static inline int svc_span_is(const uint8_t *p, svc_span w, const char *kw)
{
    return w.len >= 0 && (size_t)w.len == strlen(kw) && memcmp(p + w.off, kw, (size_t)w.len) == 0;
}

#define SVC_BANK_MAX_WORDS 9

/*
 * Splits the first line of a bank message (p, len) into its words and names
 * them: a request when from_client, else a reply.  Returns NULL, or why the
 * message does not follow SERVICES.md §3.1 (words of the wrong number, an
 * unknown keyword, empty words).  The one parser of the bank text, used by
 * the server, and by the Wireshark plugin for both directions.
 */
static inline const char *svc_bank_parse(const uint8_t *p, size_t len, int from_client, svc_bank_msg *b)
{
    svc_span w[SVC_BANK_MAX_WORDS];
    int n = 0;
    size_t end = 0, i = 0;
    while (end < len && p[end] != '\n')
        end++;
    b->op = b->ok_op = b->request_id = b->amount = b->balance = b->error = b->count = SVC_NO_SPAN;
    b->replayed = 0;
    if (end == 0)
        return "empty bank message";
    for (;;) {
        size_t start = i;
        while (i < end && p[i] != ' ')
            i++;
        if (i == start)
            return "empty word (not single spaces)";
        if (n < SVC_BANK_MAX_WORDS)
            w[n] = (svc_span){(int32_t)start, (int32_t)(i - start)};
        n++;
        if (i == end)
            break;
        i++; /* the space */
        if (i == end)
            return "trailing space";
    }
    b->op = w[0];
    if (from_client) {
        if (svc_span_is(p, w[0], SVC_BANK_DEPOSIT) || svc_span_is(p, w[0], SVC_BANK_WITHDRAW)) {
            if (n != 3)
                return "a deposit or withdrawal has a request id and an amount";
            b->request_id = w[1];
            b->amount = w[2];
        } else if (svc_span_is(p, w[0], SVC_BANK_BALANCE)) {
            if (n != 1)
                return "BALANCE takes no argument";
        } else if (svc_span_is(p, w[0], SVC_BANK_HISTORY)) {
            if (n > 2)
                return "HISTORY takes at most a count";
            if (n == 2)
                b->count = w[1];
        } else {
            b->op = SVC_NO_SPAN;
            return "unknown bank request";
        }
        return NULL;
    }
    if (svc_span_is(p, w[0], SVC_BANK_OK)) {
        if (n != 7 && !(n == 8 && svc_span_is(p, w[7], SVC_BANK_REPLAYED)))
            return "malformed OK reply";
        b->ok_op = w[1];
        b->request_id = w[2];
        b->amount = w[3];
        b->balance = w[4];
        b->replayed = n == 8;
    } else if (svc_span_is(p, w[0], SVC_BANK_ERR)) {
        if (n < 4)
            return "malformed ERR reply";
        b->request_id = w[1];
        b->error = w[2];
    } else if (svc_span_is(p, w[0], SVC_BANK_BALANCE)) {
        if (n != 2)
            return "malformed BALANCE reply";
        b->balance = w[1];
    } else if (svc_span_is(p, w[0], SVC_BANK_HISTORY)) {
        if (n != 2)
            return "malformed HISTORY reply";
        b->count = w[1];
    } else {
        b->op = SVC_NO_SPAN;
        return "unknown bank reply";
    }
    return NULL;
}

#endif /* VEIL_SVC_WIRE_H */
