/*
 * replay.c - `veil-capture replay FILE --to HOST:PORT`: sends the client
 * half of a recorded session to a live server and shows where the server's
 * answers differ from the recorded ones (docs/CAPTURE.md, "replay").
 *
 * Two ways to replay, chosen from what the recording reveals:
 *
 *   verbatim  the client's records are sent byte for byte, turn by turn
 *             (each run of client records, then the server's answers).  A
 *             live server picks a fresh random and key share, so the recorded
 *             client Finished no longer matches its transcript: the replay is
 *             refused in the handshake (decrypt_error) and nothing the client
 *             sent after it is ever processed.  Used for encrypted sessions,
 *             and for any session with --verbatim.
 *
 *   content   when every client record can be read (a plaintext session, or
 *             an encrypted one with its keylog), the replay does what an
 *             eavesdropper on such a session can do: open a new session with
 *             the recorded handshake parameters (mode, suites, groups,
 *             service) - the client is not authenticated - and resend each
 *             recorded message with its original kind, timestamp and payload.
 *
 * Each answer is compared with the recorded one field by field, through
 * libproto's observer: header (type, flags, epoch, length, sequence number)
 * and content.  Values that are fresh in every session by design (randoms,
 * key shares, signatures, Finished MACs) and message timestamps are not
 * counted as differences ("timestamps normalised").
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture.h"

#define ALERT_HIDDEN 1000 /* an alert whose code is encrypted */

static const char *const SYN_REPLAY =
    "veil-capture replay FILE --to HOST:PORT [--stream N] [--keylog FILE] [--verbatim]";

typedef struct rrec {
    int dir;
    size_t off, len;
} rrec;

typedef struct recording {
    unsigned long want_stream; /* 0: the first stream with a ClientHello */
    unsigned long stream;
    veil_buf raw;
    rrec *r;
    size_t n, cap;
    uint8_t mode;
    uint16_t suites[16], groups[8];
    size_t n_suites, n_groups;
    char service[VEIL_MAX_SERVICE_NAME + 1];
    size_t unreadable_c2s; /* client records after the handshake that cannot be read */
    uint64_t gaps;
    vc_decoder *dec;
} recording;

static void rec_event(void *user, const vc_event *ev)
{
    recording *R = user;
    if (ev->kind == VC_EV_GAP && ev->s->id == R->stream)
        R->gaps++;
    if (ev->kind != VC_EV_RECORD)
        return;
    const veil_observed_record *r = ev->rec;
    if (R->stream == 0) {
        int is_ch = ev->dir == VC_C2S && r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL &&
                    r->parse_error == 0 && r->hs_type == VEIL_HS_CLIENT_HELLO;
        if ((R->want_stream != 0 && ev->s->id == R->want_stream) || (R->want_stream == 0 && is_ch))
            R->stream = ev->s->id;
        else
            return;
    }
    if (ev->s->id != R->stream)
        return;
    if (ev->dir == VC_C2S && r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL &&
        r->parse_error == 0 && r->hs_type == VEIL_HS_CLIENT_HELLO) {
        R->mode = r->hello.mode;
        R->n_suites = r->hello.n_suites < 16 ? r->hello.n_suites : 16;
        memcpy(R->suites, r->hello.suites, R->n_suites * sizeof R->suites[0]);
        R->n_groups = r->hello.n_groups < 8 ? r->hello.n_groups : 8;
        memcpy(R->groups, r->hello.groups, R->n_groups * sizeof R->groups[0]);
        memcpy(R->service, r->hello.service, sizeof R->service);
    }
    if (ev->dir == VC_C2S && r->hdr.type != VEIL_REC_HANDSHAKE && (r->content == NULL || r->parse_error))
        R->unreadable_c2s++;
    if (R->n == R->cap) {
        size_t nc = R->cap ? R->cap * 2 : 64;
        rrec *nr = realloc(R->r, nc * sizeof *nr);
        if (nr == NULL)
            return;
        R->r = nr;
        R->cap = nc;
    }
    if (veil_buf_reserve(&R->raw, ev->raw_len) != 0)
        return;
    R->r[R->n++] = (rrec){.dir = ev->dir, .off = R->raw.len, .len = ev->raw_len};
    memcpy(R->raw.base + R->raw.len, ev->raw, ev->raw_len);
    R->raw.len += ev->raw_len;
}

static int rec_frame(void *user, int dlt, const uint8_t *frame, size_t caplen, size_t wirelen,
                     uint64_t ts_ns)
{
    recording *R = user;
    (void)wirelen;
    vc_decoder_frame(R->dec, dlt, frame, caplen, ts_ns);
    return 0;
}

/* ---- the live side --------------------------------------------------------- */

typedef struct live {
    int fd;
    veil_buf rx;
    int eof;
    veil_observer *obs; /* decodes what we send and what the server answers */
    veil_keylog *kl;    /* the new session's secrets (content mode) */
    veil_conn *conn;    /* content mode: our client endpoint */
    veil_buf out;
    int conn_err;
    int hs_done;
} live;

/* The next complete record from the server: 1 (*len set, at rx.base), 0 on
 * EOF or timeout, -1 if the bytes do not frame as records. */
static int next_record(live *L, uint64_t deadline, size_t *len)
{
    static uint8_t buf[65536];
    for (;;) {
        if (L->rx.len >= VEIL_HEADER_LEN) {
            veil_header h;
            if (veil_header_decode(L->rx.base, L->rx.len, &h) != 0)
                return -1;
            size_t need = VEIL_HEADER_LEN + (size_t)h.length;
            if (L->rx.len >= need) {
                *len = need;
                return 1;
            }
        }
        if (L->eof)
            return 0;
        uint64_t now = vapp_mono_ms();
        if (now >= deadline)
            return 0;
        struct pollfd pf = {.fd = L->fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(deadline - now));
        if (pr < 0 && errno != EINTR)
            return 0;
        if (pr <= 0)
            continue;
        ssize_t n = recv(L->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            L->eof = 1; /* reset: what was received still counts */
            continue;
        }
        if (n == 0) {
            L->eof = 1;
            continue;
        }
        if (veil_buf_reserve(&L->rx, (size_t)n) != 0)
            return 0;
        memcpy(L->rx.base + L->rx.len, buf, (size_t)n);
        L->rx.len += (size_t)n;
    }
}

/* ---- describing and comparing records ---------------------------------------- */

static void label(const veil_observed_record *r, char *out, size_t cap)
{
    char what[64];
    if (r->hdr.type == VEIL_REC_HANDSHAKE && r->content != NULL && r->parse_error == 0)
        snprintf(what, sizeof what, "handshake/%s", veil_hs_type_name(r->hs_type));
    else
        snprintf(what, sizeof what, "%s", veil_record_type_name(r->hdr.type));
    int n = snprintf(out, cap, "%s seq=%" PRIu64 " len=%u", what, r->hdr.seq, r->hdr.length);
    if (n < 0 || (size_t)n >= cap || r->content == NULL || r->parse_error != 0) {
        if (r->content == NULL && n > 0 && (size_t)n < cap)
            snprintf(out + n, cap - (size_t)n, " (encrypted)");
        return;
    }
    if (r->hdr.type == VEIL_REC_APPDATA) {
        char text[VAPP_SANITIZED_MAX(48)];
        vapp_sanitize(r->msg_data, r->msg_len < 48 ? r->msg_len : 48, text, sizeof text);
        snprintf(out + n, cap - (size_t)n, " %s \"%s%s\"", veil_msg_kind_name(r->msg_kind), text,
                 r->msg_len > 48 ? "..." : "");
    } else if (r->hdr.type == VEIL_REC_ALERT) {
        snprintf(out + n, cap - (size_t)n, " %s %s",
                 r->alert_level == VEIL_ALERT_LEVEL_FATAL ? "fatal" : "warning",
                 veil_alert_name(r->alert_code));
    }
}

static void addf(char *buf, size_t cap, const char *what)
{
    size_t l = strlen(buf);
    snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", what);
}

/* 1 if L answers like E; differences and fresh values listed. */
static int compare(const veil_observed_record *E, const veil_observed_record *L, char *diff,
                   size_t dcap, char *fresh, size_t fcap)
{
    diff[0] = fresh[0] = '\0';
    if (E->hdr.type != L->hdr.type)
        addf(diff, dcap, "type");
    if (E->hdr.flags != L->hdr.flags)
        addf(diff, dcap, "flags");
    if (E->hdr.epoch != L->hdr.epoch)
        addf(diff, dcap, "epoch");
    if (E->hdr.length != L->hdr.length)
        addf(diff, dcap, "length");
    if (E->hdr.seq != L->hdr.seq)
        addf(diff, dcap, "seq");
    int er = E->content != NULL && E->parse_error == 0;
    int lr = L->content != NULL && L->parse_error == 0;
    if (!er || !lr || E->hdr.type != L->hdr.type) {
        if (diff[0] == '\0' && (er != lr || !er))
            addf(fresh, fcap, "encrypted: content not compared");
        return diff[0] == '\0';
    }
    switch (E->hdr.type) {
    case VEIL_REC_HANDSHAKE:
        if (E->hs_type != L->hs_type) {
            addf(diff, dcap, "handshake message");
            break;
        }
        if (E->hs_type == VEIL_HS_SERVER_HELLO) {
            if (E->hello.version != L->hello.version)
                addf(diff, dcap, "version");
            if (E->hello.mode != L->hello.mode)
                addf(diff, dcap, "mode");
            if (E->hello.suite != L->hello.suite)
                addf(diff, dcap, "suite");
            if (E->hello.group != L->hello.group)
                addf(diff, dcap, "group");
            if (strcmp(E->hello.service, L->hello.service) != 0)
                addf(diff, dcap, "service");
            if (memcmp(E->hello.fingerprint, L->hello.fingerprint, VEIL_FINGERPRINT_LEN) != 0)
                addf(diff, dcap, "server identity");
            if (memcmp(E->hello.random, L->hello.random, VEIL_RANDOM_LEN) != 0)
                addf(fresh, fcap, "random");
            if (E->hello.key_share_len != L->hello.key_share_len ||
                memcmp(E->hello.key_share, L->hello.key_share, E->hello.key_share_len) != 0)
                addf(fresh, fcap, "key_share");
        } else if (E->hs_type == VEIL_HS_SERVER_VERIFY) {
            if (E->sig_scheme != L->sig_scheme)
                addf(diff, dcap, "signature scheme");
            if (E->hs_body_len != L->hs_body_len || memcmp(E->hs_body, L->hs_body, E->hs_body_len) != 0)
                addf(fresh, fcap, "signature");
        } else if (E->hs_type == VEIL_HS_FINISHED) {
            if (E->hs_body_len != L->hs_body_len || memcmp(E->hs_body, L->hs_body, E->hs_body_len) != 0)
                addf(fresh, fcap, "verify_data");
        } else if (E->hs_body_len != L->hs_body_len ||
                   memcmp(E->hs_body, L->hs_body, E->hs_body_len) != 0) {
            addf(fresh, fcap, "message body");
        }
        break;
    case VEIL_REC_ALERT:
        if (E->alert_level != L->alert_level || E->alert_code != L->alert_code)
            addf(diff, dcap, "alert");
        break;
    case VEIL_REC_APPDATA:
        if (E->msg_kind != L->msg_kind)
            addf(diff, dcap, "message kind");
        if (E->msg_len != L->msg_len || memcmp(E->msg_data, L->msg_data, E->msg_len) != 0)
            addf(diff, dcap, "payload");
        if (E->msg_timestamp_ms != L->msg_timestamp_ms)
            addf(fresh, fcap, "timestamp");
        break;
    default:
        break;
    }
    return diff[0] == '\0';
}

/* ---- content mode: our own endpoint ------------------------------------------ */

static void cb_keylog(void *user, const char *line)
{
    live *L = user;
    if (veil_keylog_add_line(L->kl, line, strlen(line)) != 0) {
        /* a line libproto wrote itself: cannot be malformed */
    }
}

static int cb_event(void *user, const veil_event *ev)
{
    live *L = user;
    if (ev->type == VEIL_EV_HANDSHAKE_DONE)
        L->hs_done = 1;
    return 0;
}

/* Sends L->out record by record, printing and observing each. */
static int flush_out(live *L, FILE *f, int *sent_any)
{
    size_t off = 0;
    while (L->out.len - off >= VEIL_HEADER_LEN) {
        veil_header h;
        if (veil_header_decode(L->out.base + off, L->out.len - off, &h) != 0)
            break;
        size_t n = VEIL_HEADER_LEN + (size_t)h.length;
        if (L->out.len - off < n)
            break;
        veil_observed_record r;
        if (veil_observer_record(L->obs, VC_C2S, L->out.base + off, n, &r) == 0) {
            char lb[512];
            label(&r, lb, sizeof lb);
            fprintf(f, "  C>S sent     %s\n", lb);
        }
        off += n;
    }
    int ret = vapp_send_all(L->fd, L->out.base, L->out.len, 5000);
    if (L->out.len > 0)
        *sent_any = 1;
    L->out.len = 0;
    return ret;
}

/* ---- the replay ------------------------------------------------------------- */

static void replay_usage(void)
{
    printf("Usage: %s\n"
           "\n"
           "Sends the client half of a recorded session to a live server and shows, answer\n"
           "by answer, where the server's answers differ from the recorded ones.  A session\n"
           "whose client records can all be read (plaintext, or encrypted with --keylog) is\n"
           "replayed by content over a new handshake, as an eavesdropper could; any other,\n"
           "or any with --verbatim, byte for byte.  Randoms, key shares, signatures,\n"
           "Finished MACs and message timestamps are fresh in every session and are not\n"
           "counted as differences.\n"
           "\n"
           "Options:\n"
           "  -t, --to HOST:PORT   the live server\n"
           "  -s, --stream N       the stream to replay (default: the first with a ClientHello)\n"
           "      --keylog FILE    secrets of the recorded session (reads encrypted records)\n"
           "      --verbatim       send the recorded bytes as they are\n"
           "      --timeout SEC    wait at most SEC for each run of answers (default 3)\n"
           "  -h, --help           show this help\n"
           "\n"
           "Exit status: 0 same answers, 3 the answers differ (or the server refused),\n"
           "1 bad arguments, 2 cannot read the file or connect, 6 local error.\n",
           SYN_REPLAY);
}

int vc_cmd_replay(int argc, char **argv)
{
    enum { OPT_KEYLOG = 256, OPT_VERBATIM, OPT_TIMEOUT };
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"stream", required_argument, NULL, 's'},
        {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"verbatim", no_argument, NULL, OPT_VERBATIM},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *to = NULL, *keylog = NULL;
    unsigned long stream = 0;
    int verbatim = 0;
    uint64_t timeout_ms = 3000;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': to = optarg; break;
        case 's':
            if (vapp_parse_ulong(optarg, 1, 4000000000ul, &stream) != 0)
                vapp_usage_error(VC_PROG, SYN_REPLAY, "--stream needs a stream number (1, 2, ...)");
            break;
        case OPT_KEYLOG: keylog = optarg; break;
        case OPT_VERBATIM: verbatim = 1; break;
        case OPT_TIMEOUT:
            if (vapp_parse_seconds(optarg, 600.0, 0, &timeout_ms) != 0)
                vapp_usage_error(VC_PROG, SYN_REPLAY, "--timeout needs seconds (0 < SEC <= 600)");
            break;
        case 'h': replay_usage(); return VC_EXIT_OK;
        default: vapp_getopt_error(VC_PROG, SYN_REPLAY, c, optopt, argv, optind);
        }
    }
    if (argc - optind != 1)
        vapp_usage_error(VC_PROG, SYN_REPLAY, "needs one capture file");
    if (to == NULL)
        vapp_usage_error(VC_PROG, SYN_REPLAY, "--to HOST:PORT is required");
    const char *path = argv[optind];
    char host[256], port[16];
    {
        const char *colon = strrchr(to, ':');
        size_t hl = colon ? (size_t)(colon - to) : 0;
        const char *h = to;
        if (hl >= 2 && to[0] == '[' && to[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        if (colon == NULL || hl == 0 || hl >= sizeof host || vapp_parse_port(colon + 1, 0) < 0)
            vapp_usage_error(VC_PROG, SYN_REPLAY, "--to needs HOST:PORT");
        memcpy(host, h, hl);
        host[hl] = '\0';
        snprintf(port, sizeof port, "%s", colon + 1);
    }

    int status = VC_EXIT_OK;
    char err[VAPP_ERRLEN];
    recording R;
    memset(&R, 0, sizeof R);
    veil_buf_init(&R.raw);
    R.want_stream = stream;
    veil_keylog *fkl = NULL;
    live L;
    memset(&L, 0, sizeof L);
    L.fd = -1;
    veil_buf_init(&L.rx);
    veil_buf_init(&L.out);
    veil_observer *robs = NULL;
    if (veil_keylog_new(&fkl) != 0 || veil_keylog_new(&L.kl) != 0) {
        status = VC_EXIT_LOCAL;
        goto out;
    }
    if (keylog != NULL) {
        size_t bad;
        if (vc_load_keylog(keylog, fkl, &bad, err) != 0) {
            fprintf(stderr, "%s replay: %s\n", VC_PROG, err);
            status = VC_EXIT_LOCAL;
            goto out;
        }
    }
    vc_decoder_config dc = {.keys = fkl};
    static const uint16_t defport = VEIL_DEFAULT_PORT;
    dc.reasm.server_ports = &defport;
    dc.reasm.n_server_ports = 1;
    if (vc_decoder_new(&dc, rec_event, &R, &R.dec) != 0) {
        status = VC_EXIT_LOCAL;
        goto out;
    }
    int st = vc_read_file(path, NULL, rec_frame, &R, err);
    vc_decoder_finish(R.dec);
    vc_decoder_free(R.dec);
    R.dec = NULL;
    if (st == VC_EXIT_SOURCE || st == VC_EXIT_USAGE) {
        fprintf(stderr, "%s replay: %s\n", VC_PROG, err);
        status = st;
        goto out;
    }
    if (R.stream == 0 || R.n == 0) {
        fprintf(stderr, "%s replay: %s holds no Veil session%s to replay\n", VC_PROG, path,
                stream ? " with that stream number" : " that starts with a ClientHello");
        status = VC_EXIT_SOURCE;
        goto out;
    }
    int content = !verbatim && R.mode != 0 && R.unreadable_c2s == 0;
    const char *mode = R.mode ? vc_mode_name(R.mode) : "unknown";
    printf("replay: stream #%lu of %s (%s mode, %zu records) to %s:%s\n", R.stream, path, mode,
           R.n, host, port);
    if (content)
        printf("method: by content: a new handshake with the recorded parameters, then every "
               "recorded client message resent with its kind, timestamp and payload\n");
    else
        printf("method: verbatim: the recorded client records are sent byte for byte\n");
    if (R.gaps > 0)
        printf("warning: the recording has %" PRIu64 " gap%s: records may be missing\n", R.gaps,
               R.gaps == 1 ? "" : "s");
    fflush(stdout);

    if (veil_observer_new(content ? L.kl : NULL, &L.obs) != 0 || veil_observer_new(fkl, &robs) != 0) {
        status = VC_EXIT_LOCAL;
        goto out;
    }
    vapp_connect_error why;
    char peer[VAPP_ADDRSTR_LEN];
    L.fd = vapp_connect(host, port, 5000, &why, peer, err);
    if (L.fd < 0) {
        fprintf(stderr, "%s replay: %s\n", VC_PROG, err);
        status = VC_EXIT_SOURCE;
        goto out;
    }
    vapp_set_nodelay(L.fd);
    if (content) {
        veil_config cfg;
        veil_config_init(&cfg, VEIL_ROLE_CLIENT);
        cfg.modes = R.mode;
        if (R.n_suites > 0) {
            cfg.suites = R.suites;
            cfg.n_suites = R.n_suites;
        }
        if (R.n_groups > 0) {
            cfg.groups = R.groups;
            cfg.n_groups = R.n_groups;
        }
        cfg.service = R.service[0] ? R.service : NULL;
        veil_callbacks cb = {.random = vapp_random, .keylog = cb_keylog, .on_event = cb_event,
                             .user = &L};
        int r = veil_conn_new(&cfg, &cb, vapp_mono_ms(), &L.conn);
        if (r != 0) {
            fprintf(stderr, "%s replay: cannot start a session: %s\n", VC_PROG, veil_strerror(r));
            status = VC_EXIT_LOCAL;
            goto out;
        }
    }

    size_t rcur = 0; /* recorded records fed to robs so far */
    size_t same = 0, differ = 0, missing = 0, extra = 0;
    int refused_alert = -1, got_appdata = 0, stop = 0, sent_any = 0;
    for (size_t i = 0; i < R.n && !stop;) {
        size_t j = i;
        while (j < R.n && R.r[j].dir == R.r[i].dir)
            j++;
        if (R.r[i].dir == VC_C2S) {
            for (size_t k = i; k < j; k++) {
                const uint8_t *p = R.raw.base + R.r[k].off;
                size_t n = R.r[k].len;
                if (!content) {
                    if (veil_buf_reserve(&L.out, n) == 0) {
                        memcpy(L.out.base + L.out.len, p, n);
                        L.out.len += n;
                    }
                    continue;
                }
                /* By content: what does the recorded record ask for? */
                veil_observed_record e;
                for (; rcur <= k; rcur++)
                    (void)veil_observer_record(robs, R.r[rcur].dir, R.raw.base + R.r[rcur].off,
                                               R.r[rcur].len, &e);
                int r = 0;
                if (e.hdr.type == VEIL_REC_HANDSHAKE) {
                    if (e.hs_type == VEIL_HS_CLIENT_HELLO)
                        r = veil_conn_start(L.conn, &L.out);
                    /* the client's other handshake messages come from libproto itself */
                } else if (e.hdr.type == VEIL_REC_APPDATA) {
                    r = veil_conn_send(L.conn, e.msg_kind, e.msg_timestamp_ms, e.msg_data, e.msg_len,
                                       &L.out);
                } else if (e.hdr.type == VEIL_REC_ALERT) {
                    if (e.alert_code == VEIL_ALERT_CLOSE_NOTIFY)
                        r = veil_conn_close(L.conn, &L.out);
                    else
                        r = veil_conn_abort(L.conn, e.alert_code, &L.out);
                } else if (e.hdr.type == VEIL_REC_KEY_UPDATE) {
                    printf("  C>S skipped  key_update seq=%" PRIu64 " (libproto decides when to rekey)\n",
                           e.hdr.seq);
                }
                if (r != 0) {
                    printf("  C>S cannot resend record seq=%" PRIu64 ": %s\n", e.hdr.seq,
                           veil_strerror(r));
                    stop = 1;
                    break;
                }
            }
            if (!content) {
                /* Show what we send, decoded. */
                size_t off = 0;
                while (off < L.out.len) {
                    veil_header h;
                    if (veil_header_decode(L.out.base + off, L.out.len - off, &h) != 0)
                        break;
                    size_t n = VEIL_HEADER_LEN + (size_t)h.length;
                    veil_observed_record r;
                    if (veil_observer_record(L.obs, VC_C2S, L.out.base + off, n, &r) == 0) {
                        char lb[512];
                        label(&r, lb, sizeof lb);
                        printf("  C>S sent     %s\n", lb);
                    }
                    off += n;
                }
                if (vapp_send_all(L.fd, L.out.base, L.out.len, 5000) != 0) {
                    printf("  C>S the server no longer accepts data\n");
                    stop = 1;
                }
                if (L.out.len > 0)
                    sent_any = 1;
                L.out.len = 0;
            } else if (flush_out(&L, stdout, &sent_any) != 0) {
                printf("  C>S the server no longer accepts data\n");
                stop = 1;
            }
            i = j;
            continue;
        }
        /* A run of server records: read as many answers. */
        uint64_t deadline = vapp_mono_ms() + timeout_ms;
        for (size_t k = i; k < j; k++) {
            veil_observed_record e, l;
            for (; rcur <= k; rcur++)
                (void)veil_observer_record(robs, R.r[rcur].dir, R.raw.base + R.r[rcur].off,
                                           R.r[rcur].len, &e);
            char eb[512], lb[512], diff[256], fresh[256];
            label(&e, eb, sizeof eb);
            size_t n = 0;
            int got = stop ? 0 : next_record(&L, deadline, &n);
            if (got < 0) {
                printf("  S>C expected %s: the server sent bytes that are not Veil records\n", eb);
                missing += j - k;
                stop = 1;
                break;
            }
            if (got == 0) {
                printf("  S>C expected %s: MISSING (%s)\n", eb,
                       L.eof ? "the server closed the connection" : "no answer in time");
                missing++;
                continue;
            }
            if (content && L.conn_err == 0) {
                int r = veil_conn_feed(L.conn, L.rx.base, n, vapp_mono_ms(), &L.out);
                if (r != 0)
                    L.conn_err = r;
            }
            if (veil_observer_record(L.obs, VC_S2C, L.rx.base, n, &l) != 0) {
                printf("  S>C expected %s: got a record libproto rejects\n", eb);
                differ++;
                veil_buf_consume(&L.rx, n);
                continue;
            }
            label(&l, lb, sizeof lb);
            if (compare(&e, &l, diff, sizeof diff, fresh, sizeof fresh)) {
                same++;
                if (strcmp(fresh, "timestamp") == 0)
                    printf("  S>C same     %s (timestamp normalised)\n", lb);
                else if (strncmp(fresh, "encrypted", 9) == 0)
                    printf("  S>C same     %s (%s)\n", lb, fresh);
                else if (fresh[0])
                    printf("  S>C same     %s (fresh in every session: %s)\n", lb, fresh);
                else
                    printf("  S>C same     %s\n", lb);
            } else {
                differ++;
                printf("  S>C DIFFERS  expected %s\n               got      %s  [%s]\n", eb, lb, diff);
            }
            if (l.hdr.type == VEIL_REC_APPDATA)
                got_appdata = 1;
            /* An alert where the recording has none: the server refuses.  In
               encrypted mode its code is hidden (the alert is protected with
               the new session's keys, which the replay cannot know). */
            if (l.hdr.type == VEIL_REC_ALERT && e.hdr.type != VEIL_REC_ALERT && refused_alert < 0) {
                if (l.content != NULL && l.parse_error == 0)
                    refused_alert = l.alert_code;
                else
                    refused_alert = ALERT_HIDDEN;
            }
            veil_buf_consume(&L.rx, n);
        }
        i = j;
        if (refused_alert >= 0 || (L.eof && L.rx.len == 0 && i < R.n && R.r[i].dir == VC_C2S)) {
            /* The server ended the session: the rest of the client half is not sent. */
            size_t left = 0;
            for (size_t k = i; k < R.n; k++)
                left += R.r[k].dir == VC_C2S;
            for (size_t k = i; k < R.n; k++)
                missing += R.r[k].dir == VC_S2C;
            if (left > 0)
                printf("  C>S not sent: %zu client record%s (the server ended the session)\n", left,
                       left == 1 ? "" : "s");
            stop = 1;
        }
    }
    /* Anything more the server says, until it closes (bounded). */
    if (content && L.conn != NULL && L.out.len > 0 && !stop)
        (void)flush_out(&L, stdout, &sent_any);
    shutdown(L.fd, SHUT_WR);
    {
        uint64_t deadline = vapp_mono_ms() + 1000;
        size_t n;
        while (next_record(&L, deadline, &n) == 1) {
            veil_observed_record l;
            char lb[512];
            if (veil_observer_record(L.obs, VC_S2C, L.rx.base, n, &l) == 0) {
                label(&l, lb, sizeof lb);
                printf("  S>C EXTRA    %s\n", lb);
            }
            extra++;
            veil_buf_consume(&L.rx, n);
        }
    }
    (void)sent_any;
    printf("result: %zu answer%s the same, %zu different, %zu missing, %zu extra\n", same,
           same == 1 ? "" : "s", differ, missing, extra);
    if (differ + missing + extra == 0) {
        printf("verdict: SAME ANSWERS: the server accepted the replay and answered as recorded "
               "(fresh values and timestamps normalised)\n");
    } else {
        status = VC_EXIT_DIFFER;
        if (refused_alert == ALERT_HIDDEN && !got_appdata)
            printf("verdict: REFUSED IN THE HANDSHAKE: the server answered with an alert instead "
                   "(encrypted: only the server's log names it) and closed the connection; the "
                   "server's fresh random changed the transcript, so the recorded client Finished "
                   "could not verify, and nothing after it was processed\n");
        else if (refused_alert >= 0 && !got_appdata)
            printf("verdict: REFUSED IN THE HANDSHAKE with alert %s%s\n", veil_alert_name(refused_alert),
                   refused_alert == VEIL_ALERT_DECRYPT_ERROR
                       ? ": the server's fresh random changed the transcript, so the recorded "
                         "client Finished did not verify; nothing after it was processed"
                       : "");
        else if (refused_alert >= 0)
            printf("verdict: DIFFERENT: the server ended the session with alert %s\n",
                   refused_alert == ALERT_HIDDEN ? "(encrypted)" : veil_alert_name(refused_alert));
        else
            printf("verdict: DIFFERENT answers\n");
    }
out:
    fflush(stdout);
    if (L.fd >= 0)
        close(L.fd);
    veil_conn_free(L.conn);
    veil_observer_free(L.obs);
    veil_observer_free(robs);
    veil_buf_free(&L.rx);
    veil_buf_free(&L.out);
    veil_keylog_free(L.kl);
    veil_keylog_free(fkl);
    veil_buf_free(&R.raw);
    free(R.r);
    return status;
}
