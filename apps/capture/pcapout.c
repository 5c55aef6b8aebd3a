/*
 * pcapout.c - a small pcapng writer (one section, one interface, Enhanced
 * Packet Blocks with comments) and a reader of the packet comments of a
 * pcapng file.
 *
 * libpcap reads pcapng but cannot write it, and does not expose packet
 * comments; --export-decrypted needs both (docs/CAPTURE.md, "Exporting
 * decrypted captures").  Format: draft-ietf-opsawg-pcapng, sections 4.1
 * (SHB), 4.2 (IDB), 4.3 (EPB), 4.4 (SPB), 3.5 (options).  The writer uses the
 * host's byte order, as pcapng allows; the reader accepts both.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "rd.h"

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_PB 0x00000002u /* obsolete Packet Block */
#define BT_SPB 0x00000003u
#define BT_EPB 0x00000006u
#define BOM 0x1A2B3C4Du
#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_TSRESOL 9
#define MAX_BLOCK (64u << 20) /* a larger block is treated as corruption */

struct vc_pcapng {
    FILE *f;
    int failed;
};

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static void w32(vc_pcapng *w, uint32_t v)
{
    if (fwrite(&v, 4, 1, w->f) != 1)
        w->failed = 1;
}

static void w16(vc_pcapng *w, uint16_t v)
{
    if (fwrite(&v, 2, 1, w->f) != 1)
        w->failed = 1;
}

static void wbytes(vc_pcapng *w, const void *p, size_t n)
{
    static const uint8_t zero[4];
    if (n > 0 && fwrite(p, 1, n, w->f) != n)
        w->failed = 1;
    if (pad4(n) != n && fwrite(zero, 1, pad4(n) - n, w->f) != pad4(n) - n)
        w->failed = 1;
}

static size_t opt_size(size_t len) { return 4 + pad4(len); }

static void wopt(vc_pcapng *w, uint16_t code, const void *p, size_t len)
{
    w16(w, code);
    w16(w, (uint16_t)len);
    wbytes(w, p, len);
}

int vc_pcapng_open(const char *path, int dlt, const char *shb_comment, vc_pcapng **out, char *err)
{
    vc_pcapng *w = calloc(1, sizeof *w);
    if (w == NULL) {
        vapp_errf(err, "out of memory");
        return -1;
    }
    w->f = fopen(path, "wb");
    if (w->f == NULL) {
        vapp_errf(err, "cannot create %s: %s", path, strerror(errno));
        free(w);
        return -1;
    }
    static const char appl[] = "veil-capture";
    size_t clen = shb_comment != NULL ? strlen(shb_comment) : 0;
    if (clen > 60000)
        clen = 60000;
    size_t opts = opt_size(sizeof appl - 1) + (clen ? opt_size(clen) : 0) + 4;
    uint32_t len = (uint32_t)(28 + opts);
    w32(w, BT_SHB);
    w32(w, len);
    w32(w, BOM);
    w16(w, 1);
    w16(w, 0);
    w32(w, 0xffffffffu); /* section length: unknown (-1) */
    w32(w, 0xffffffffu);
    wopt(w, SHB_USERAPPL, appl, sizeof appl - 1);
    if (clen)
        wopt(w, OPT_COMMENT, shb_comment, clen);
    w32(w, OPT_END);
    w32(w, len);

    uint8_t res = 9; /* nanoseconds */
    len = 20 + (uint32_t)opt_size(1) + 4;
    w32(w, BT_IDB);
    w32(w, len);
    w16(w, (uint16_t)dlt);
    w16(w, 0);
    w32(w, 262144); /* snap length */
    wopt(w, IF_TSRESOL, &res, 1);
    w32(w, OPT_END);
    w32(w, len);
    if (w->failed) {
        vapp_errf(err, "cannot write %s: %s", path, strerror(errno));
        fclose(w->f);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int vc_pcapng_write(vc_pcapng *w, uint64_t ts_ns, const uint8_t *frame, size_t len, size_t orig_len,
                    const char *const *comments, size_t n_comments)
{
    size_t opts = 0;
    for (size_t i = 0; i < n_comments; i++) {
        size_t cl = strlen(comments[i]);
        opts += opt_size(cl > 65535 ? 65535 : cl);
    }
    if (opts > 0)
        opts += 4;
    size_t total = 32 + pad4(len) + opts;
    if (total > MAX_BLOCK)
        return -1;
    w32(w, BT_EPB);
    w32(w, (uint32_t)total);
    w32(w, 0); /* interface 0 */
    w32(w, (uint32_t)(ts_ns >> 32));
    w32(w, (uint32_t)ts_ns);
    w32(w, (uint32_t)len);
    w32(w, (uint32_t)(orig_len < len ? len : orig_len));
    wbytes(w, frame, len);
    for (size_t i = 0; i < n_comments; i++) {
        size_t cl = strlen(comments[i]);
        wopt(w, OPT_COMMENT, comments[i], cl > 65535 ? 65535 : cl);
    }
    if (opts > 0)
        w32(w, OPT_END);
    w32(w, (uint32_t)total);
    return w->failed ? -1 : 0;
}

int vc_pcapng_close(vc_pcapng *w, char *err)
{
    if (w == NULL)
        return 0;
    int failed = w->failed;
    if (fclose(w->f) != 0)
        failed = 1;
    free(w);
    if (failed) {
        vapp_errf(err, "writing the export failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- reading comments ------------------------------------------------------ */

static uint32_t get32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

static uint16_t get16(const uint8_t *p, int swap)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return swap ? __builtin_bswap16(v) : v;
}

/* Options at [p, p+n): appends each opt_comment for frame.  -1: out of memory. */
static int options(const uint8_t *p, size_t n, int swap, unsigned long frame, vc_comment **list,
                   size_t *count, size_t *cap, size_t max)
{
    vc_rd r;
    vc_rd_init(&r, p, n);
    for (int i = 0; i < 4096 && vc_rd_have(&r, 4); i++) {
        const uint8_t *h = vc_rd_ptr(&r, 4);
        uint16_t code = get16(h, swap), len = get16(h + 2, swap);
        if (code == OPT_END)
            break;
        const uint8_t *v = vc_rd_ptr(&r, pad4(len));
        if (v == NULL)
            return 0; /* malformed options: libpcap judges the file; no more comments */
        if (code != OPT_COMMENT || *count >= max)
            continue;
        if (*count == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            vc_comment *nl = realloc(*list, nc * sizeof *nl);
            if (nl == NULL)
                return -1;
            *list = nl;
            *cap = nc;
        }
        char *t = malloc((size_t)len + 1);
        if (t == NULL)
            return -1;
        memcpy(t, v, len);
        t[len] = '\0';
        (*list)[*count].frame = frame;
        (*list)[*count].text = t;
        (*count)++;
    }
    return 0;
}

int vc_pcapng_read_comments(const char *path, size_t max_comments, vc_comment **out, size_t *n,
                            char *err)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        vapp_errf(err, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t hdr[12];
    size_t cap = 0;
    unsigned long frame = 0;
    int swap = 0, ret = 0;
    uint8_t *blk = NULL;
    if (fread(hdr, 1, 12, f) != 12 || get32(hdr, 0) != BT_SHB) {
        fclose(f);
        return 0; /* not pcapng (classic pcap): no comments */
    }
    for (int first = 1;; first = 0) {
        if (!first && fread(hdr, 1, 8, f) != 8)
            break; /* end of file */
        uint32_t type, len;
        if (first || get32(hdr, 0) == BT_SHB) {
            if (!first && fread(hdr + 8, 1, 4, f) != 4)
                break;
            uint32_t bom;
            memcpy(&bom, hdr + 8, 4);
            if (bom == BOM)
                swap = 0;
            else if (__builtin_bswap32(bom) == BOM)
                swap = 1;
            else
                break; /* corrupt: libpcap reports it */
            len = get32(hdr + 4, swap);
            if (len < 28 || len > MAX_BLOCK || (len & 3))
                break;
            if (fseek(f, (long)len - 12, SEEK_CUR) != 0)
                break;
            continue;
        }
        type = get32(hdr, swap);
        len = get32(hdr + 4, swap);
        if (len < 12 || len > MAX_BLOCK || (len & 3))
            break;
        size_t body = len - 12; /* without type, length and the trailing length */
        if (type != BT_EPB && type != BT_SPB && type != BT_PB) {
            if (fseek(f, (long)body + 4, SEEK_CUR) != 0)
                break;
            continue;
        }
        frame++;
        uint8_t *nb = realloc(blk, body + 4);
        if (nb == NULL) {
            vapp_errf(err, "out of memory");
            ret = -1;
            break;
        }
        blk = nb;
        if (fread(blk, 1, body + 4, f) != body + 4)
            break;
        if (type == BT_SPB)
            continue;
        /* EPB: if, ts hi, ts lo, caplen, len (20 bytes); PB: if(2) drops(2) ts ts caplen len. */
        if (body < 20)
            break;
        uint32_t caplen = get32(blk + 12, swap);
        if (caplen > body - 20)
            break;
        size_t opt_off = 20 + pad4(caplen);
        if (opt_off > body)
            break;
        if (options(blk + opt_off, body - opt_off, swap, frame, out, n, &cap, max_comments) != 0) {
            vapp_errf(err, "out of memory");
            ret = -1;
            break;
        }
    }
    free(blk);
    fclose(f);
    return ret;
}

void vc_comments_free(vc_comment *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].text);
    free(c);
}
