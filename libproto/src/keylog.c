/*
 * keylog.c - NSS-style keylog lines (PROTOCOL.md §9): formatting for the
 * endpoints and a parsed store, indexed by client random, for observers.
 */
#include <stdlib.h>
#include <string.h>

#include "veil_internal.h"

typedef struct keylog_entry {
    uint8_t random[VEIL_RANDOM_LEN];
    uint8_t secret[2][VEIL_SECRET_LEN]; /* [VEIL_DIR_*] */
    uint8_t have[2];
    uint8_t used;
} keylog_entry;

struct veil_keylog {
    keylog_entry *slots; /* open addressing, power-of-two capacity */
    size_t cap;
    size_t count;
};

void veil_keylog_format(const char *label, const uint8_t random[VEIL_RANDOM_LEN],
                        const uint8_t secret[VEIL_SECRET_LEN], char out[160])
{
    size_t n = strlen(label);
    memcpy(out, label, n);
    out[n++] = ' ';
    veil_hex(random, VEIL_RANDOM_LEN, out + n);
    n += 2 * VEIL_RANDOM_LEN;
    out[n++] = ' ';
    veil_hex(secret, VEIL_SECRET_LEN, out + n);
}

int veil_keylog_new(veil_keylog **out)
{
    veil_keylog *kl = calloc(1, sizeof(*kl));
    if (kl == NULL)
        return VEIL_ERR_NOMEM;
    *out = kl;
    return 0;
}

void veil_keylog_free(veil_keylog *kl)
{
    if (kl == NULL)
        return;
    if (kl->slots != NULL) {
        veil_memzero(kl->slots, kl->cap * sizeof(*kl->slots));
        free(kl->slots);
    }
    free(kl);
}

static size_t slot_of(const veil_keylog *kl, const uint8_t random[VEIL_RANDOM_LEN])
{
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) /* client randoms are uniformly random */
        h = h << 8 | random[i];
    return (size_t)(h * 0x9E3779B97F4A7C15ull) & (kl->cap - 1);
}

static keylog_entry *find(const veil_keylog *kl, const uint8_t random[VEIL_RANDOM_LEN])
{
    if (kl->cap == 0)
        return NULL;
    for (size_t i = slot_of(kl, random);; i = (i + 1) & (kl->cap - 1)) {
        keylog_entry *e = &kl->slots[i];
        if (!e->used)
            return NULL;
        if (memcmp(e->random, random, VEIL_RANDOM_LEN) == 0)
            return e;
    }
}

static int grow(veil_keylog *kl)
{
    size_t cap = kl->cap == 0 ? 64 : kl->cap * 2;
    keylog_entry *old = kl->slots, *slots = calloc(cap, sizeof(*slots));
    size_t old_cap = kl->cap;
    if (slots == NULL)
        return VEIL_ERR_NOMEM;
    kl->slots = slots;
    kl->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].used)
            continue;
        size_t j = slot_of(kl, old[i].random);
        while (slots[j].used)
            j = (j + 1) & (cap - 1);
        slots[j] = old[i];
    }
    if (old != NULL) {
        veil_memzero(old, old_cap * sizeof(*old));
        free(old);
    }
    return 0;
}

static int parse_hex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0)
                return -1;
            v = v << 4 | d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

int veil_keylog_add_line(veil_keylog *kl, const char *line, size_t len)
{
    static const char *const labels[2] = {VEIL_KEYLOG_CLIENT_TRAFFIC, VEIL_KEYLOG_SERVER_TRAFFIC};
    uint8_t random[VEIL_RANDOM_LEN], secret[VEIL_SECRET_LEN];
    int dir = -1, ret = VEIL_PERR(VEIL_ALERT_DECODE_ERROR);

    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0 || line[0] == '#')
        return 0;
    for (int d = 0; d < 2; d++) {
        size_t n = strlen(labels[d]);
        if (len > n && memcmp(line, labels[d], n) == 0 && line[n] == ' ')
            dir = d;
    }
    if (dir < 0)
        return 0; /* another protocol's line (the file may be shared with TLS) */
    size_t n = strlen(labels[dir]);
    if (len != n + 1 + 2 * VEIL_RANDOM_LEN + 1 + 2 * VEIL_SECRET_LEN ||
        line[n + 1 + 2 * VEIL_RANDOM_LEN] != ' ' || parse_hex(line + n + 1, VEIL_RANDOM_LEN, random) != 0 ||
        parse_hex(line + n + 2 + 2 * VEIL_RANDOM_LEN, VEIL_SECRET_LEN, secret) != 0)
        goto Exit;
    keylog_entry *e = find(kl, random);
    if (e == NULL) {
        if ((kl->count + 1) * 4 > kl->cap * 3 && (ret = grow(kl)) != 0)
            goto Exit;
        size_t i = slot_of(kl, random);
        while (kl->slots[i].used)
            i = (i + 1) & (kl->cap - 1);
        e = &kl->slots[i];
        e->used = 1;
        memcpy(e->random, random, VEIL_RANDOM_LEN);
        kl->count++;
    }
    memcpy(e->secret[dir], secret, VEIL_SECRET_LEN); /* a later line wins */
    e->have[dir] = 1;
    ret = 0;
Exit:
    veil_memzero(secret, sizeof(secret));
    return ret;
}

size_t veil_keylog_add_text(veil_keylog *kl, const char *text, size_t len)
{
    size_t bad = 0;
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - text) + 1 : len;
        if (veil_keylog_add_line(kl, text, n) != 0)
            bad++;
        text += n;
        len -= n;
    }
    return bad;
}

size_t veil_keylog_count(const veil_keylog *kl) { return kl->count; }

int veil_keylog_find(const veil_keylog *kl, const uint8_t client_random[VEIL_RANDOM_LEN], int dir,
                     uint8_t secret[VEIL_SECRET_LEN])
{
    const keylog_entry *e = kl != NULL ? find(kl, client_random) : NULL;
    if (e == NULL || dir < 0 || dir > 1 || !e->have[dir])
        return VEIL_ERR_NO_KEY;
    memcpy(secret, e->secret[dir], VEIL_SECRET_LEN);
    return 0;
}
