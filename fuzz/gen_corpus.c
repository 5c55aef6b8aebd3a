/*
 * gen_corpus.c - writes the seed corpora of the fuzz targets from real
 * sessions run in memory (fuzz_run_session: the targets' own configurations
 * and RNG streams, so the seeds replay as complete, valid sessions).
 *
 *   veil-fuzz-corpus DIR     writes DIR/<target>/<seed> (DIR is usually fuzz/corpus)
 *
 * The output is deterministic, except in the two sessions with the RSA
 * identity (rsa-transport, chat-rsa-pss): RSA-PSS salts and RSA-OAEP seeds come
 * from OpenSSL's own generator, not from the RNG callback (PROTOCOL.md §4.4),
 * so those bytes change from run to run, and a replay of them stops where the
 * randomness enters (the Finished check).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "veil_internal.h"

static const char *outdir;
static int n_files;

static void die(const char *what)
{
    fprintf(stderr, "veil-fuzz-corpus: %s\n", what);
    exit(1);
}

static void mkdir_p(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
}

/* Writes prefix || data as DIR/target/name. */
static void seed(const char *target, const char *name, const uint8_t *prefix, size_t plen, const uint8_t *data,
                 size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    mkdir_p(path);
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(prefix, 1, plen, f) != plen || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path);
    n_files++;
}

/* The i-th record of a stream (header and body); NULL past the end. */
static const uint8_t *record_at(const veil_buf *stream, int index, size_t *len)
{
    size_t off = 0;
    for (int i = 0; off < stream->len; i++) {
        veil_header h;
        if (veil_header_decode(stream->base + off, stream->len - off, &h) != 0)
            die("bad record in a recorded session");
        *len = VEIL_HEADER_LEN + h.length;
        if (i == index)
            return stream->base + off;
        off += *len;
    }
    return NULL;
}

/* Content of an unencrypted record (body minus the CRC). */
static const uint8_t *clear_content(const uint8_t *rec, size_t rec_len, size_t *len)
{
    if (rec == NULL || (rec[4] & VEIL_FLAG_ENCRYPTED) || rec_len < VEIL_HEADER_LEN + 4)
        die("expected an unencrypted record");
    *len = rec_len - VEIL_HEADER_LEN - 4;
    return rec + VEIL_HEADER_LEN;
}

/* The observer layout: segments of at most 128 bytes, control byte dir << 7 | (len - 1). */
static void observer_seed(const fuzz_session *s, const char *name)
{
    veil_buf b;
    size_t off[2] = {0, 0};
    veil_buf_init(&b);
    for (int i = 0; i < s->n_seg; i++) {
        int dir = s->seg_dir[i];
        const uint8_t *p = (dir == 0 ? s->c2s.base : s->s2c.base) + off[dir];
        size_t left = s->seg_len[i];
        off[dir] += left;
        while (left > 0) {
            size_t n = left < 128 ? left : 128;
            uint8_t c = (uint8_t)(dir << 7 | (n - 1));
            if (veil_buf_append(&b, &c, 1) != 0 || veil_buf_append(&b, p, n) != 0)
                die("out of memory");
            p += n;
            left -= n;
        }
    }
    seed("fuzz_observer", name, NULL, 0, b.base, b.len);
    veil_buf_free(&b);
}

/* The first unencrypted handshake record of type hs_type in a stream, or NULL. */
static const uint8_t *find_hs(const veil_buf *stream, uint8_t hs_type, size_t *len)
{
    const uint8_t *rec;
    for (int i = 0; (rec = record_at(stream, i, len)) != NULL; i++)
        if (rec[3] == VEIL_REC_HANDSHAKE && !(rec[4] & VEIL_FLAG_ENCRYPTED) && *len > VEIL_HEADER_LEN &&
            rec[VEIL_HEADER_LEN] == hs_type)
            return rec;
    return NULL;
}

static const char *const config_names[FUZZ_N_CLIENT_CONFIGS] = {
    "all", "gcm", "chacha", "cbc", "plain", "ffdhe", "user", "psk", "client-sig", "rsa-transport", "chat-rsa-pss",
};

int main(int argc, char **argv)
{
    fuzz_session s[FUZZ_N_CLIENT_CONFIGS];
    char name[64];
    size_t len, clen;
    const uint8_t *rec, *content;

    if (argc != 2) {
        fprintf(stderr, "usage: veil-fuzz-corpus DIR\n");
        return 2;
    }
    outdir = argv[1];
    mkdir_p(outdir);
    for (unsigned i = 0; i < FUZZ_N_CLIENT_CONFIGS; i++)
        if (fuzz_run_session(i, &s[i]) != 0) {
            fprintf(stderr, "veil-fuzz-corpus: session %s failed\n", config_names[i]);
            return 1;
        }

    /*
     * Connection targets: whole streams in one chunk.  "all" negotiates GCM, so
     * the GCM-only session is left out; the observer gets one session per
     * kind of key exchange and authentication.
     */
    for (unsigned i = 0; i < FUZZ_N_CLIENT_CONFIGS; i++) {
        if (i == 1)
            continue;
        snprintf(name, sizeof(name), "session-%s", config_names[i]);
        const uint8_t server_prefix[] = {(uint8_t)fuzz_client_peer(i), 0x00};
        seed("fuzz_server", name, server_prefix, sizeof(server_prefix), s[i].c2s.base, s[i].c2s.len);
        const uint8_t client_prefix[] = {(uint8_t)i, 0x00};
        seed("fuzz_client", name, client_prefix, sizeof(client_prefix), s[i].s2c.base, s[i].s2c.len);
        if (i != 2)
            observer_seed(&s[i], name);
    }
    /* Byte by byte, and chunks of 5, 100 and 251 bytes. */
    const uint8_t bytewise[] = {0, 0x01, 0x00};
    seed("fuzz_server", "bytewise-cbc", bytewise, sizeof(bytewise), s[3].c2s.base, s[3].c2s.len);
    const uint8_t chunked[] = {0, 0x03, 4, 99, 250};
    rec = record_at(&s[0].c2s, 0, &len);
    seed("fuzz_server", "clienthello-chunked", chunked, sizeof(chunked), rec, len);

    /* Headers: one of each kind of record seen (CBC session: every type occurs). */
    static const struct {
        int dir, index;
        const char *name;
    } headers[] = {
        {0, 0, "clienthello"},  {1, 0, "serverhello"}, {0, 2, "appdata-encrypted"},
        {0, 4, "key-update"},   {1, 4, "alert-encrypted"},
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        rec = record_at(headers[i].dir == 0 ? &s[3].c2s : &s[3].s2c, headers[i].index, &len);
        if (rec == NULL)
            die("session shorter than expected");
        seed("fuzz_header", headers[i].name, NULL, 0, rec, VEIL_HEADER_LEN);
    }
    rec = record_at(&s[4].c2s, 2, &len);
    seed("fuzz_header", "appdata-plain-whole-record", NULL, 0, rec, len);

    /* Handshake messages (selector byte, then the decoder's input). */
    static const struct {
        unsigned session;
        int dir;
        uint8_t hs_type, selector;
        const char *name;
    } msgs[] = {
        {0, 0, VEIL_HS_CLIENT_HELLO, 0, "clienthello"},
        {0, 1, VEIL_HS_SERVER_HELLO, 1, "serverhello"},
        {0, 1, VEIL_HS_SERVER_VERIFY, 2, "serververify"},
        {0, 1, VEIL_HS_FINISHED, 3, "finished"},
        {9, 0, VEIL_HS_CLIENT_KEY_EXCHANGE, 7, "clientkeyexchange"},
        {8, 0, VEIL_HS_CLIENT_VERIFY, 8, "clientverify"},
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        const fuzz_session *ss = &s[msgs[i].session];
        rec = find_hs(msgs[i].dir == 0 ? &ss->c2s : &ss->s2c, msgs[i].hs_type, &len);
        if (rec == NULL) {
            fprintf(stderr, "veil-fuzz-corpus: no clear %s in session %s, seed skipped\n", msgs[i].name,
                    config_names[msgs[i].session]);
            continue;
        }
        content = clear_content(rec, len, &clen);
        seed("fuzz_handshake_msgs", msgs[i].name, &msgs[i].selector, 1, content + VEIL_HS_HEADER_LEN,
             clen - VEIL_HS_HEADER_LEN);
    }
    rec = record_at(&s[0].c2s, 0, &len);
    content = clear_content(rec, len, &clen);
    const uint8_t sel_split = 6, sel_msg = 4, sel_alert = 5;
    seed("fuzz_handshake_msgs", "hs-split-clienthello", &sel_split, 1, content, clen);
    rec = record_at(&s[4].c2s, 2, &len); /* plaintext mode: the first message */
    content = clear_content(rec, len, &clen);
    seed("fuzz_handshake_msgs", "message", &sel_msg, 1, content, clen);
    rec = record_at(&s[4].c2s, 5, &len); /* close_notify */
    content = clear_content(rec, len, &clen);
    seed("fuzz_handshake_msgs", "alert-close-notify", &sel_alert, 1, content, clen);
    /* The extensions of the user session's ClientHello, looking for the user extension. */
    {
        veil_client_hello ch;
        rec = record_at(&s[6].c2s, 0, &len);
        content = clear_content(rec, len, &clen);
        if (veil_client_hello_decode(content + VEIL_HS_HEADER_LEN, clen - VEIL_HS_HEADER_LEN, &ch) != 0 ||
            ch.ext_len == 0)
            die("user ClientHello without extensions");
        const uint8_t prefix[3] = {9, VEIL_EXT_USER >> 8, VEIL_EXT_USER & 0xFF};
        seed("fuzz_handshake_msgs", "ext-find-user", prefix, sizeof(prefix), ch.ext, ch.ext_len);
    }

    /* Keylogs: the encrypted sessions' lines, with what a shared file also holds. */
    veil_buf kl;
    veil_buf_init(&kl);
    const char head[] = "# keylog shared with TLS\r\n"
                        "CLIENT_RANDOM 0000000000000000000000000000000000000000000000000000000000000000 "
                        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                        "0000\n\n";
    if (veil_buf_append(&kl, head, strlen(head)) != 0)
        die("out of memory");
    for (unsigned i = 0; i < 4; i++)
        for (int k = 0; k < s[i].n_keylog; k++)
            if (veil_buf_append(&kl, s[i].keylog[k], strlen(s[i].keylog[k])) != 0 ||
                veil_buf_append(&kl, k == 0 ? "\r\n" : "\n", k == 0 ? 2 : 1) != 0)
                die("out of memory");
    seed("fuzz_keylog", "sessions", NULL, 0, kl.base, kl.len);
    seed("fuzz_keylog", "one-line", NULL, 0, (const uint8_t *)s[1].keylog[1], strlen(s[1].keylog[1]));
    veil_buf_free(&kl);

    for (unsigned i = 0; i < FUZZ_N_CLIENT_CONFIGS; i++)
        fuzz_session_free(&s[i]);
    printf("veil-fuzz-corpus: %d seeds written under %s\n", n_files, outdir);
    return 0;
}
