/*
 * text.c - making untrusted bytes safe to show on a terminal.
 *
 * A message text or an ACK payload comes from the peer, who may be hostile:
 * raw ESC, CSI (0x9b), OSC sequences or bidi overrides could rewrite the
 * operator's screen or make a log line lie.  Only printable, valid UTF-8
 * passes through unchanged; everything else is shown as an escape.
 */
#include <stdio.h>
#include <string.h>

#include "veilapp.h"

/* Decodes one UTF-8 sequence at p (n bytes available).  Returns its length
 * and sets *cp, or 0 if it is not valid (overlong, surrogate, > U+10FFFF,
 * truncated, stray continuation byte). */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t b = p[0];
    size_t len;
    uint32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        len = 2, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
        len = 3, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
        len = 4, c = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Code points above ASCII that must not reach a terminal raw. */
static int is_dangerous(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9F)         /* C1 controls, incl. CSI */
           || c == 0x061C || c == 0x200E || c == 0x200F /* bidi marks */
           || (c >= 0x202A && c <= 0x202E)  /* bidi embeddings/overrides */
           || (c >= 0x2066 && c <= 0x2069)  /* bidi isolates */
           || c == 0x2028 || c == 0x2029    /* line/paragraph separators */
           || c == 0xFEFF;                  /* zero-width no-break space */
}

char *vapp_sanitize(const uint8_t *p, size_t len, char *out, size_t outcap)
{
    if (outcap == 0)
        return out;
    size_t o = 0;
    size_t i = 0;
    while (i < len) {
        char esc[16];
        const char *piece;
        size_t plen;
        uint32_t cp = 0;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", p[i]);
            piece = esc, plen = strlen(esc), n = 1;
        } else if (cp == '\n') {
            piece = "\\n", plen = 2;
        } else if (cp == '\t') {
            piece = "\\t", plen = 2;
        } else if (cp == '\r') {
            piece = "\\r", plen = 2;
        } else if (cp == '\\') {
            piece = "\\\\", plen = 2;
        } else if (cp < 0x20 || cp == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
            piece = esc, plen = strlen(esc);
        } else if (is_dangerous(cp)) {
            snprintf(esc, sizeof esc, "\\u{%04x}", (unsigned)cp);
            piece = esc, plen = strlen(esc);
        } else {
            piece = (const char *)p + i, plen = n;
        }
        if (o + plen + 1 > outcap) {
            /* No room: end with "..." if it fits, never split a sequence. */
            if (outcap >= 4) {
                if (o + 4 > outcap) {
                    o = outcap - 4;
                    while (o > 0 && ((uint8_t)out[o] & 0xC0) == 0x80)
                        o--; /* do not cut a UTF-8 sequence in half */
                }
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, piece, plen);
        o += plen;
        i += n;
    }
    out[o] = '\0';
    return out;
}
