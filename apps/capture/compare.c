/*
 * compare.c - `veil-capture compare A B`: what an eavesdropper recovers from
 * two captures, side by side (docs/CAPTURE.md, "compare").
 *
 * For each record, in the order they appear: its type and length, the byte
 * entropy of its body as it crossed the wire (Shannon, bits per byte), how
 * many bytes of content can be read, and the printable strings (4 or more
 * printable ASCII characters, like strings(1)) found in the body.  Then the
 * totals: bytes readable and hidden, and every distinct string.  Without
 * --keylog this is exactly the eavesdropper's view; with it, what the keys
 * add.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"

static const char *const SYN_COMPARE = "veil-capture compare [--keylog FILE] A.pcap B.pcap";

#define COL 62
#define MAX_STRINGS 64

typedef struct crec {
    char label[48];
    uint16_t len;
    double entropy;
    size_t visible, hidden;
    char strings[160];
} crec;

typedef struct side {
    const char *path;
    crec *r;
    size_t n, cap;
    uint64_t visible, hidden, headers, records;
    uint64_t app_bytes;
    double app_entropy_sum;
    uint64_t app_records;
    char *uniq[MAX_STRINGS];
    size_t n_uniq;
    int more_strings;
    vc_decoder *dec;
} side;

static int is_print(uint8_t c) { return c >= 0x20 && c < 0x7f; }

static void note_string(side *s, const char *str)
{
    for (size_t i = 0; i < s->n_uniq; i++)
        if (strcmp(s->uniq[i], str) == 0)
            return;
    if (s->n_uniq == MAX_STRINGS) {
        s->more_strings = 1;
        return;
    }
    s->uniq[s->n_uniq] = strdup(str);
    if (s->uniq[s->n_uniq] != NULL)
        s->n_uniq++;
}

/* Printable runs of 4+ characters in p, quoted and joined into out. */
static void find_strings(side *s, const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && is_print(p[j]))
            j++;
        if (j - i >= 4) {
            char str[128];
            size_t k = j - i < sizeof str - 1 ? j - i : sizeof str - 1;
            memcpy(str, p + i, k);
            str[k] = '\0';
            note_string(s, str);
            if (used < cap)
                used += (size_t)snprintf(out + used, cap - used, "%s\"%s\"", used ? " " : "", str);
        }
        i = j + 1;
    }
    if (used >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4);
}

static void on_event(void *user, const vc_event *ev)
{
    side *s = user;
    if (ev->kind != VC_EV_RECORD)
        return;
    const veil_observed_record *r = ev->rec;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        crec *nr = realloc(s->r, nc * sizeof *nr);
        if (nr == NULL)
            return;
        s->r = nr;
        s->cap = nc;
    }
    crec *c = &s->r[s->n++];
    memset(c, 0, sizeof *c);
    const char *type = veil_record_type_name(r->hdr.type);
    if (r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL)
        snprintf(c->label, sizeof c->label, "#%lu %s %s", ev->s->id, vc_dir_name(ev->dir),
                 veil_hs_type_name(r->hs_type));
    else
        snprintf(c->label, sizeof c->label, "#%lu %s %s", ev->s->id, vc_dir_name(ev->dir), type);
    c->len = r->hdr.length;
    c->entropy = vc_entropy(r->body, r->hdr.length);
    if (r->content != NULL) {
        c->visible = r->content_len;
        /* Strings an observer reads: in the content (plaintext, or decrypted). */
        find_strings(s, r->content, r->content_len, c->strings, sizeof c->strings);
    } else {
        c->hidden = r->hdr.length;
        find_strings(s, r->body, r->hdr.length, c->strings, sizeof c->strings);
    }
    s->visible += c->visible;
    s->hidden += c->hidden;
    s->headers += VEIL_HEADER_LEN;
    s->records++;
    if (r->hdr.type == VEIL_REC_APPDATA) {
        s->app_records++;
        s->app_bytes += r->hdr.length;
        s->app_entropy_sum += c->entropy;
    }
}

static int frame_cb(void *user, int dlt, const uint8_t *frame, size_t caplen, size_t wirelen,
                    uint64_t ts_ns)
{
    side *s = user;
    (void)wirelen;
    vc_decoder_frame(s->dec, dlt, frame, caplen, ts_ns);
    return 0;
}

static int load(side *s, const veil_keylog *kl)
{
    char err[VAPP_ERRLEN];
    vc_decoder_config dc = {.keys = kl};
    static const uint16_t port = VEIL_DEFAULT_PORT;
    dc.reasm.server_ports = &port;
    dc.reasm.n_server_ports = 1;
    if (vc_decoder_new(&dc, on_event, s, &s->dec) != 0)
        return VC_EXIT_LOCAL;
    int st = vc_read_file(s->path, NULL, frame_cb, s, err);
    if (st != 0)
        fprintf(stderr, "%s compare: %s\n", VC_PROG, err);
    vc_decoder_finish(s->dec);
    vc_decoder_free(s->dec);
    s->dec = NULL;
    return st == VC_EXIT_CORRUPT ? 0 : st;
}

static void cell(const crec *c, char *out, size_t cap)
{
    if (c == NULL) {
        out[0] = '\0';
        return;
    }
    char vis[24];
    if (c->hidden > 0)
        snprintf(vis, sizeof vis, "hidden");
    else
        snprintf(vis, sizeof vis, "%zu read", c->visible);
    int n = snprintf(out, cap, "%-26s %5u %4.2f %-8s %s", c->label, c->len, c->entropy, vis,
                     c->strings);
    if (n > 0 && (size_t)n >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4);
}

static void totals(const side *s, char *out, size_t cap, int which)
{
    switch (which) {
    case 0: snprintf(out, cap, "%" PRIu64 " records", s->records); break;
    case 1:
        snprintf(out, cap, "%" PRIu64 " content bytes readable, %" PRIu64 " hidden", s->visible,
                 s->hidden);
        break;
    case 2:
        snprintf(out, cap, "%" PRIu64 " header bytes (always in clear)", s->headers);
        break;
    case 3:
        if (s->app_records > 0)
            snprintf(out, cap, "appdata: %" PRIu64 " records, mean entropy %.2f bits/byte",
                     s->app_records, s->app_entropy_sum / (double)s->app_records);
        else
            snprintf(out, cap, "appdata: none");
        break;
    default: out[0] = '\0';
    }
}

int vc_cmd_compare(int argc, char **argv)
{
    enum { OPT_KEYLOG = 256 };
    static const struct option opts[] = {
        {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *keylogs[16];
    size_t nk = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_KEYLOG:
            if (nk == 16)
                vapp_usage_error(VC_PROG, SYN_COMPARE, "at most 16 --keylog options");
            keylogs[nk++] = optarg;
            break;
        case 'h':
            printf("Usage: %s\n\nShows side by side what an eavesdropper recovers from two captures:\n"
                   "per record its length, the entropy of its body on the wire (bits per byte),\n"
                   "how many content bytes are readable, and the printable strings in it; then\n"
                   "totals.  --keylog (repeatable) shows what the keys add.\n",
                   SYN_COMPARE);
            return VC_EXIT_OK;
        default: vapp_getopt_error(VC_PROG, SYN_COMPARE, c, optopt, argv, optind);
        }
    }
    if (argc - optind != 2)
        vapp_usage_error(VC_PROG, SYN_COMPARE, "needs two capture files");
    veil_keylog *kl = NULL;
    if (veil_keylog_new(&kl) != 0)
        return VC_EXIT_LOCAL;
    char err[VAPP_ERRLEN];
    for (size_t i = 0; i < nk; i++) {
        size_t bad;
        if (vc_load_keylog(keylogs[i], kl, &bad, err) != 0) {
            fprintf(stderr, "%s compare: %s\n", VC_PROG, err);
            veil_keylog_free(kl);
            return VC_EXIT_LOCAL;
        }
    }
    side s[2];
    memset(s, 0, sizeof s);
    s[0].path = argv[optind];
    s[1].path = argv[optind + 1];
    int status = VC_EXIT_OK;
    for (int i = 0; i < 2 && status == 0; i++)
        status = load(&s[i], kl);
    if (status == 0) {
        const char *base[2];
        for (int i = 0; i < 2; i++) {
            const char *sl = strrchr(s[i].path, '/');
            base[i] = sl ? sl + 1 : s[i].path;
        }
        printf("What an eavesdropper %s: A = %s, B = %s\n", nk ? "with the keylog recovers" : "recovers (no keys)",
               base[0], base[1]);
        printf("Columns: record, body length, entropy of the body on the wire (bits/byte, at\n"
               "most 8; log2(length) for short bodies), content bytes readable, strings seen.\n\n");
        char a[COL + 1], b[COL + 1];
        snprintf(a, sizeof a, "A: %s", base[0]);
        snprintf(b, sizeof b, "B: %s", base[1]);
        printf("%-*s | %s\n", COL, a, b);
        size_t n = s[0].n > s[1].n ? s[0].n : s[1].n;
        for (size_t i = 0; i < n; i++) {
            cell(i < s[0].n ? &s[0].r[i] : NULL, a, sizeof a);
            cell(i < s[1].n ? &s[1].r[i] : NULL, b, sizeof b);
            printf("%-*s | %s\n", COL, a, b);
        }
        printf("\n");
        for (int k = 0; k < 4; k++) {
            char ta[160], tb[160];
            totals(&s[0], ta, sizeof ta, k);
            totals(&s[1], tb, sizeof tb, k);
            printf("%-*s | %s\n", COL, ta, tb);
        }
        for (int i = 0; i < 2; i++) {
            printf("\nstrings readable in %s (%zu%s):", i == 0 ? "A" : "B", s[i].n_uniq,
                   s[i].more_strings ? "+" : "");
            if (s[i].n_uniq == 0)
                printf(" none");
            printf("\n");
            for (size_t k = 0; k < s[i].n_uniq; k++) {
                char safe[VAPP_SANITIZED_MAX(128)];
                vapp_sanitize((const uint8_t *)s[i].uniq[k], strlen(s[i].uniq[k]), safe, sizeof safe);
                printf("  \"%s\"\n", safe);
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        free(s[i].r);
        for (size_t k = 0; k < s[i].n_uniq; k++)
            free(s[i].uniq[k]);
    }
    veil_keylog_free(kl);
    return status;
}
