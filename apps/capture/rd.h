/*
 * rd.h - bounds-checked readers for packet headers (tcpdump's extract.h idea).
 *
 * A reader knows how many bytes were captured.  Reading past the end does
 * not happen: the reader is marked bad, returns 0, and every later read
 * fails too, so a parser checks rd->bad once after a run of reads.
 */
#ifndef VEIL_CAPTURE_RD_H
#define VEIL_CAPTURE_RD_H

#include <stddef.h>
#include <stdint.h>

typedef struct vc_rd {
    const uint8_t *p;
    size_t len; /* bytes available from p */
    size_t off; /* next byte to read */
    int bad;    /* a read went past len */
} vc_rd;

static inline void vc_rd_init(vc_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->bad = 0;
}

/* Bytes left; 0 once bad. */
static inline size_t vc_rd_left(const vc_rd *r) { return r->bad ? 0 : r->len - r->off; }

static inline int vc_rd_have(const vc_rd *r, size_t n) { return !r->bad && r->len - r->off >= n; }

static inline uint8_t vc_rd_u8(vc_rd *r)
{
    if (!vc_rd_have(r, 1)) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->off++];
}

static inline uint16_t vc_rd_u16(vc_rd *r)
{
    if (!vc_rd_have(r, 2)) {
        r->bad = 1;
        return 0;
    }
    uint16_t v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return v;
}

static inline uint32_t vc_rd_u32(vc_rd *r)
{
    if (!vc_rd_have(r, 4)) {
        r->bad = 1;
        return 0;
    }
    const uint8_t *q = r->p + r->off;
    r->off += 4;
    return ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
}

/* Little-endian u32 (BSD null link header written by a little-endian host). */
static inline uint32_t vc_rd_u32le(vc_rd *r)
{
    if (!vc_rd_have(r, 4)) {
        r->bad = 1;
        return 0;
    }
    const uint8_t *q = r->p + r->off;
    r->off += 4;
    return ((uint32_t)q[3] << 24) | ((uint32_t)q[2] << 16) | ((uint32_t)q[1] << 8) | q[0];
}

static inline void vc_rd_skip(vc_rd *r, size_t n)
{
    if (!vc_rd_have(r, n)) {
        r->bad = 1;
        return;
    }
    r->off += n;
}

/* Pointer to the next n bytes (consumed), or NULL and bad. */
static inline const uint8_t *vc_rd_ptr(vc_rd *r, size_t n)
{
    if (!vc_rd_have(r, n)) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

/* Writers for building frames: the caller has checked the room. */
static inline void vc_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void vc_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif /* VEIL_CAPTURE_RD_H */
