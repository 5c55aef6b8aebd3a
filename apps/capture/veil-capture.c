/*
 * veil-capture - captures or reads Veil sessions and shows every record:
 * headers always, contents when they are in clear or when the keylog (or the
 * server's RSA key) decrypts them.  See docs/CAPTURE.md.
 *
 *   veil-capture [-i IFACE] [-f FILTER] [-w FILE] [options]      live
 *   veil-capture -r FILE [options]                                offline
 *   veil-capture compare A B | replay FILE --to H:P | relay ...   subcommands
 *
 * Frames come from libpcap; link, IP and TCP headers are decoded here with
 * checked readers (pkt.c), streams are reassembled (reasm.c), and each Veil
 * record is framed and decoded by libproto (decode.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"

const char *const VC_PROG = "veil-capture";
static const char *const SYNOPSIS = "veil-capture [-i IFACE | -r FILE] [options]";

static volatile sig_atomic_t g_stop;
static pcap_t *volatile g_live;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_live != NULL)
        pcap_breakloop(g_live);
}

/* ---- files ------------------------------------------------------------- */

/* Reads a whole file of at most max bytes into b. 0, -1 (err set). */
static int read_small_file(const char *path, size_t max, veil_buf *b, char *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        vapp_errf(err, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        vapp_errf(err, "%s is not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((uint64_t)st.st_size > max) {
        vapp_errf(err, "%s is larger than %zu bytes", path, max);
        fclose(f);
        return -1;
    }
    if (veil_buf_reserve(b, (size_t)st.st_size + 1) != 0) {
        vapp_errf(err, "out of memory");
        fclose(f);
        return -1;
    }
    size_t n = fread(b->base, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        vapp_errf(err, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    b->len = n;
    b->base[n] = '\0';
    return 0;
}

int vc_load_keylog(const char *path, veil_keylog *kl, size_t *malformed, char *err)
{
    veil_buf b;
    veil_buf_init(&b);
    if (read_small_file(path, 64u << 20, &b, err) != 0) {
        veil_buf_free(&b);
        return -1;
    }
    *malformed = veil_keylog_add_text(kl, (const char *)b.base, b.len);
    veil_buf_free(&b); /* wipes the secrets */
    return 0;
}

int vc_load_rsa_key(const char *path, veil_identity **out, char *err)
{
    veil_buf b;
    veil_buf_init(&b);
    if (read_small_file(path, 64u << 10, &b, err) != 0) {
        veil_buf_free(&b);
        return -1;
    }
    int r = veil_identity_from_pem((const char *)b.base, b.len, out);
    veil_buf_free(&b);
    if (r != 0) {
        vapp_errf(err, "%s is not a usable private key: %s", path, veil_strerror(r));
        return -1;
    }
    if (strncmp(veil_identity_algorithm(*out), "RSA", 3) != 0) {
        vapp_errf(err,
                  "%s is an %s key: only an RSA server key decrypts a session (RSA key "
                  "transport); other sessions need --keylog",
                  path, veil_identity_algorithm(*out));
        veil_identity_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* ---- the decoding pipeline ---------------------------------------------- */

typedef struct keyfile {
    const char *path;
    off_t size;
    struct timespec mtime;
} keyfile;

typedef struct ctx {
    vc_printer pr;
    const char *xpath; /* --export-decrypted, opened once the link type is known */
    veil_keylog *kl;
    keyfile keyfiles[16];
    size_t n_keyfiles;
    vc_decoder *dec;
    vc_export *exp;
    pcap_dumper_t *dump;
    int live;
    uint64_t frames;
    uint64_t max_frames;
    vc_comment *comments;
    size_t n_comments, next_comment;
    int export_failed;
} ctx;

/* Live: a keylog written while we capture (the programs append at each
 * handshake) is read again when it changes, before the next packet. */
static void refresh_keylogs(ctx *c)
{
    for (size_t i = 0; i < c->n_keyfiles; i++) {
        keyfile *k = &c->keyfiles[i];
        struct stat st;
        if (stat(k->path, &st) != 0)
            continue;
        if (st.st_size == k->size && st.st_mtim.tv_sec == k->mtime.tv_sec &&
            st.st_mtim.tv_nsec == k->mtime.tv_nsec)
            continue;
        char err[VAPP_ERRLEN];
        size_t bad;
        if (vc_load_keylog(k->path, c->kl, &bad, err) == 0) {
            k->size = st.st_size;
            k->mtime = st.st_mtim;
        }
    }
}

static void on_event(void *user, const vc_event *ev)
{
    ctx *c = user;
    vc_print_event(&c->pr, ev);
    if (c->exp != NULL)
        vc_export_event(c->exp, ev);
}

static int on_frame(void *user, int dlt, const uint8_t *frame, size_t caplen, size_t wirelen,
                    uint64_t ts_ns)
{
    ctx *c = user;
    c->frames++;
    while (c->next_comment < c->n_comments && c->comments[c->next_comment].frame <= c->frames) {
        if (c->comments[c->next_comment].frame == c->frames)
            vc_print_comment(&c->pr, ts_ns, (unsigned long)c->frames,
                             c->comments[c->next_comment].text);
        c->next_comment++;
    }
    if (c->live && c->n_keyfiles > 0)
        refresh_keylogs(c);
    if (c->exp != NULL)
        vc_export_begin_frame(c->exp, frame, caplen, wirelen, ts_ns);
    vc_decoder_frame(c->dec, dlt, frame, caplen, ts_ns);
    if (c->exp != NULL && vc_export_end_frame(c->exp, c->dec) != 0)
        c->export_failed = 1;
    if (c->live)
        fflush(c->pr.f);
    return c->max_frames > 0 && c->frames >= c->max_frames;
}

static uint64_t ts_of(const struct pcap_pkthdr *h, int nano)
{
    return (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec * (nano ? 1u : 1000u);
}

static int set_filter(pcap_t *p, const char *filter, char *err)
{
    if (filter == NULL || *filter == '\0')
        return 0;
    struct bpf_program prog;
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        vapp_errf(err, "invalid filter '%s': %s", filter, pcap_geterr(p));
        return -1;
    }
    int r = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (r != 0) {
        vapp_errf(err, "cannot set the filter '%s': %s", filter, pcap_geterr(p));
        return -1;
    }
    return 0;
}

typedef struct file_cb {
    vc_frame_cb cb;
    void *user;
} file_cb;

/* Opens a capture file ("-": standard input) with nanosecond timestamps. */
static pcap_t *open_file(const char *path, int *status, char *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    if (strcmp(path, "-") != 0 && access(path, R_OK) != 0) {
        vapp_errf(err, "cannot read %s: %s", path, strerror(errno));
        *status = VC_EXIT_SOURCE;
        return NULL;
    }
    pcap_t *p;
    if (strcmp(path, "-") == 0) {
        p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    } else {
        /* What pcap_open_offline does, with a 1 MiB stdio buffer instead of
           4 KiB: libpcap reads each packet with fread, and a large file
           otherwise costs one read(2) per 4 KiB. */
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            snprintf(ebuf, sizeof ebuf, "%s: %s", path, strerror(errno));
            p = NULL;
        } else {
            (void)setvbuf(f, NULL, _IOFBF, 1u << 20);
            p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, ebuf);
            if (p == NULL)
                fclose(f); /* pcap_close closes it otherwise */
        }
    }
    if (p == NULL) {
        vapp_errf(err, "%s is not a readable pcap or pcapng capture (libpcap: %s)", path, ebuf);
        *status = VC_EXIT_SOURCE;
    }
    return p;
}

/* Every frame of p to cb (and to dump, if any).  0, or VC_EXIT_CORRUPT. */
static int read_frames(pcap_t *p, const char *path, vc_frame_cb cb, void *user,
                       pcap_dumper_t *dump, char *err)
{
    int dlt = pcap_datalink(p);
    int nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    unsigned long n = 0;
    for (;;) {
        struct pcap_pkthdr *h;
        const u_char *data;
        int r = pcap_next_ex(p, &h, &data);
        if (r == 1) {
            n++;
            if (dump != NULL)
                pcap_dump((u_char *)dump, h, data);
            if (cb(user, dlt, data, h->caplen, h->len, ts_of(h, nano)) != 0)
                return 0;
            continue;
        }
        if (r == PCAP_ERROR_BREAK)
            return 0; /* end of file */
        vapp_errf(err, "%s is corrupt or truncated after packet %lu: %s", path, n, pcap_geterr(p));
        return VC_EXIT_CORRUPT;
    }
}

int vc_read_file(const char *path, const char *filter, vc_frame_cb cb, void *user, char *err)
{
    int status = 0;
    pcap_t *p = open_file(path, &status, err);
    if (p == NULL)
        return status;
    if (set_filter(p, filter, err) != 0) {
        pcap_close(p);
        return VC_EXIT_USAGE;
    }
    status = read_frames(p, path, cb, user, NULL, err);
    pcap_close(p);
    return status;
}

/* ---- live capture ------------------------------------------------------- */

typedef struct live_ctx {
    ctx *c;
    int dlt, nano;
    pcap_dumper_t *dump;
} live_ctx;

static void live_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    live_ctx *l = (live_ctx *)(void *)user;
    if (l->dump != NULL) {
        pcap_dump((u_char *)l->dump, h, data);
        pcap_dump_flush(l->dump); /* the file is usable at every moment */
    }
    if (on_frame(l->c, l->dlt, data, h->caplen, h->len, ts_of(h, l->nano)))
        g_stop = 1;
}

static int open_live(const char *iface, pcap_t **out, char *err)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(iface, ebuf);
    if (p == NULL) {
        vapp_errf(err, "cannot capture on '%s': %s", iface, ebuf);
        return -1;
    }
    pcap_set_snaplen(p, 262144);
    pcap_set_promisc(p, 0);
    pcap_set_timeout(p, 100);
    /* Deliver each packet at once: some kernels (gVisor among them) hold
       packets in the capture ring otherwise (shared/WIRESHARK.md). */
    pcap_set_immediate_mode(p, 1);
    pcap_set_buffer_size(p, 4 << 20);
    (void)pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    int r = pcap_activate(p);
    if (r < 0) {
        switch (r) {
        case PCAP_ERROR_NO_SUCH_DEVICE:
            vapp_errf(err, "no such interface '%s' (list them with 'ip link')", iface);
            break;
        case PCAP_ERROR_PERM_DENIED:
            vapp_errf(err,
                      "no permission to capture on '%s': run as root, or give the program "
                      "the capabilities: setcap cap_net_raw,cap_net_admin=eip veil-capture "
                      "(or read a saved file with -r)",
                      iface);
            break;
        case PCAP_ERROR_IFACE_NOT_UP:
            vapp_errf(err, "interface '%s' is down", iface);
            break;
        default:
            vapp_errf(err, "cannot capture on '%s': %s", iface, pcap_geterr(p));
        }
        pcap_close(p);
        return -1;
    }
    if (r > 0)
        fprintf(stderr, "%s: warning: %s: %s\n", VC_PROG, iface, pcap_geterr(p));
    *out = p;
    return 0;
}

static int run_live(ctx *c, const char *iface, const char *filter, const char *wfile,
                    uint64_t duration_ms, char *err)
{
    pcap_t *p;
    if (open_live(iface, &p, err) != 0)
        return VC_EXIT_SOURCE;
    if (set_filter(p, filter, err) != 0) {
        pcap_close(p);
        return VC_EXIT_USAGE;
    }
    live_ctx l = {.c = c, .dlt = pcap_datalink(p),
                  .nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO};
    if (!vc_dlt_supported(l.dlt))
        fprintf(stderr, "%s: warning: link type %d of '%s' is not decoded (%s)\n", VC_PROG, l.dlt,
                iface, pcap_datalink_val_to_name(l.dlt) ? pcap_datalink_val_to_name(l.dlt) : "?");
    if (c->xpath != NULL && vc_export_open(c->xpath, l.dlt, &c->exp, err) != 0) {
        pcap_close(p);
        return VC_EXIT_LOCAL;
    }
    if (wfile != NULL) {
        l.dump = pcap_dump_open(p, wfile);
        if (l.dump == NULL) {
            vapp_errf(err, "cannot write %s: %s", wfile, pcap_geterr(p));
            pcap_close(p);
            return VC_EXIT_LOCAL;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a signal must interrupt the capture */
    g_live = p;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    fprintf(stderr, "%s: listening on %s, link type %s, filter '%s'%s%s\n", VC_PROG, iface,
            vc_dlt_name(l.dlt), filter ? filter : "", wfile ? ", saving to " : "",
            wfile ? wfile : "");
    fflush(stderr);
    /* Non-blocking reads driven by poll(2) with a short timeout: in immediate
       mode libpcap's own timeout does not apply, and --duration and signals
       must be noticed even when no packet arrives. */
    int sel = pcap_get_selectable_fd(p);
    char nberr[PCAP_ERRBUF_SIZE];
    if (sel < 0 || pcap_setnonblock(p, 1, nberr) != 0)
        sel = -1; /* fall back to blocking dispatch, ended by pcap_breakloop */
    uint64_t start = vapp_mono_ms();
    int ret = 0;
    while (!g_stop) {
        if (duration_ms > 0 && vapp_mono_ms() - start >= duration_ms)
            break;
        if (sel >= 0) {
            struct pollfd pf = {.fd = sel, .events = POLLIN};
            int pr = poll(&pf, 1, 100);
            if (pr < 0 && errno != EINTR) {
                vapp_errf(err, "capture on '%s' failed: %s", iface, strerror(errno));
                ret = VC_EXIT_SOURCE;
                break;
            }
            if (pr <= 0)
                continue;
        }
        int n = pcap_dispatch(p, -1, live_packet, (u_char *)&l);
        if (n == PCAP_ERROR_BREAK)
            break;
        if (n < 0) {
            vapp_errf(err, "capture on '%s' failed: %s", iface, pcap_geterr(p));
            ret = VC_EXIT_SOURCE;
            break;
        }
    }
    g_live = NULL;
    struct pcap_stat ps;
    if (pcap_stats(p, &ps) == 0 && ps.ps_drop > 0)
        fprintf(stderr, "%s: warning: the kernel dropped %u packets (capture buffer full)\n",
                VC_PROG, ps.ps_drop);
    if (l.dump != NULL) {
        pcap_dump_flush(l.dump);
        pcap_dump_close(l.dump);
    }
    pcap_close(p);
    return ret;
}

/* ---- command line ------------------------------------------------------- */

static void usage(void)
{
    printf(
        "Usage: veil-capture [options]                 capture live (default: lo)\n"
        "       veil-capture -r FILE [options]         read a pcap or pcapng file\n"
        "       veil-capture compare A.pcap B.pcap     what an eavesdropper recovers, side by side\n"
        "       veil-capture replay FILE --to HOST:PORT  resend a recorded client half\n"
        "       veil-capture relay --listen PORT --to HOST:PORT -w FILE  record through a relay\n"
        "\n"
        "Shows every Veil record of the captured TCP streams, one line each: time (UTC),\n"
        "stream, direction (C>S or S>C), record type (and handshake message), sequence\n"
        "number, body length, protection, and the content when it can be read.\n"
        "\n"
        "Options:\n"
        "  -i, --interface IFACE    capture on IFACE (default lo); needs root or\n"
        "                           CAP_NET_RAW and CAP_NET_ADMIN\n"
        "  -f, --filter EXPR        BPF capture filter (default live: \"tcp port %d\";\n"
        "                           default with -r: none); \"\" captures everything\n"
        "  -r, --read FILE          read FILE (pcap or pcapng) instead of capturing\n"
        "  -w, --write FILE         also save the packets read or captured to FILE (pcap);\n"
        "                           Ctrl-C still leaves a complete file\n"
        "  -c, --count N            stop after N packets\n"
        "  -d, --duration SEC       live: stop after SEC seconds\n"
        "  -V, --verbose            every field of every record, and hex dumps\n"
        "      --json               one JSON object per line (docs/CAPTURE.md)\n"
        "  -q, --quiet              no per-record output, only the summary\n"
        "      --no-summary         no summary at the end\n"
        "      --keylog FILE        decrypt with the secrets in FILE (NSS keylog format,\n"
        "                           PROTOCOL.md section 9); repeatable\n"
        "      --rsa-key FILE       decrypt RSA key-transport sessions with the server's\n"
        "                           RSA private key (PEM)\n"
        "      --export-decrypted OUT  write OUT (pcapng): the capture with every decrypted\n"
        "                           record replaced by the same record in clear, each marked\n"
        "                           by a packet comment \"veil-decrypted ...\"\n"
        "      --port N             a server port, to tell client from server in streams\n"
        "                           whose SYN was not captured (repeatable; default %d)\n"
        "      --max-buffer BYTES   out-of-order bytes kept per direction (default 1048576);\n"
        "                           beyond, the missing bytes are reported as a gap\n"
        "      --max-streams N      streams tracked at once (default 10000); beyond, the\n"
        "                           least recently active one is closed\n"
        "  -h, --help               show this help and exit\n"
        "      --version            show the version and exit\n"
        "\n"
        "Exit status:\n"
        "  0  the input was read to the end (or the capture was stopped)\n"
        "  1  bad arguments or filter\n"
        "  2  cannot capture (no such interface, no permission) or cannot open the file\n"
        "  3  replay: the server's answers differ from the recorded ones\n"
        "  4  the file is corrupt or truncated: what came before was decoded\n"
        "  6  local error: keylog, key or output file unusable, out of memory\n",
        VEIL_DEFAULT_PORT, VEIL_DEFAULT_PORT);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return vc_cmd_compare(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "replay") == 0)
        return vc_cmd_replay(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "relay") == 0)
        return vc_cmd_relay(argc - 1, argv + 1);

    enum {
        OPT_JSON = 256,
        OPT_NO_SUMMARY,
        OPT_KEYLOG,
        OPT_RSA_KEY,
        OPT_EXPORT,
        OPT_PORT,
        OPT_MAX_BUFFER,
        OPT_MAX_STREAMS,
        OPT_VERSION,
    };
    static const struct option opts[] = {
        {"interface", required_argument, NULL, 'i'},
        {"filter", required_argument, NULL, 'f'},
        {"read", required_argument, NULL, 'r'},
        {"write", required_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"verbose", no_argument, NULL, 'V'},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"no-summary", no_argument, NULL, OPT_NO_SUMMARY},
        {"keylog", required_argument, NULL, OPT_KEYLOG},
        {"rsa-key", required_argument, NULL, OPT_RSA_KEY},
        {"export-decrypted", required_argument, NULL, OPT_EXPORT},
        {"port", required_argument, NULL, OPT_PORT},
        {"max-buffer", required_argument, NULL, OPT_MAX_BUFFER},
        {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *iface = NULL, *filter = NULL, *rfile = NULL, *wfile = NULL, *xfile = NULL;
    const char *rsa_path = NULL;
    const char *keylogs[16];
    size_t n_keylogs = 0;
    uint16_t ports[16];
    size_t n_ports = 0;
    int filter_given = 0, verbose = 0, json = 0, quiet = 0, no_summary = 0;
    unsigned long count = 0, max_buffer = 1u << 20, max_streams = 10000;
    uint64_t duration_ms = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:f:r:w:c:d:Vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'i': iface = optarg; break;
        case 'f': filter = optarg; filter_given = 1; break;
        case 'r': rfile = optarg; break;
        case 'w': wfile = optarg; break;
        case 'c':
            if (vapp_parse_ulong(optarg, 1, 4000000000ul, &count) != 0)
                vapp_usage_error(VC_PROG, SYNOPSIS, "--count needs a number of packets (1 or more)");
            break;
        case 'd':
            if (vapp_parse_seconds(optarg, 86400.0 * 365, 0, &duration_ms) != 0)
                vapp_usage_error(VC_PROG, SYNOPSIS, "--duration needs seconds (more than 0)");
            break;
        case 'V': verbose = 1; break;
        case OPT_JSON: json = 1; break;
        case 'q': quiet = 1; break;
        case OPT_NO_SUMMARY: no_summary = 1; break;
        case OPT_KEYLOG:
            if (n_keylogs == 16)
                vapp_usage_error(VC_PROG, SYNOPSIS, "at most 16 --keylog options");
            keylogs[n_keylogs++] = optarg;
            break;
        case OPT_RSA_KEY: rsa_path = optarg; break;
        case OPT_EXPORT: xfile = optarg; break;
        case OPT_PORT: {
            int port = vapp_parse_port(optarg, 0);
            if (port < 0)
                vapp_usage_error(VC_PROG, SYNOPSIS, "--port needs a port number (1-65535)");
            if (n_ports == 16)
                vapp_usage_error(VC_PROG, SYNOPSIS, "at most 16 --port options");
            ports[n_ports++] = (uint16_t)port;
            break;
        }
        case OPT_MAX_BUFFER:
            if (vapp_parse_ulong(optarg, 1024, 1ul << 30, &max_buffer) != 0)
                vapp_usage_error(VC_PROG, SYNOPSIS, "--max-buffer needs bytes, 1024 to 1073741824");
            break;
        case OPT_MAX_STREAMS:
            if (vapp_parse_ulong(optarg, 1, 10000000, &max_streams) != 0)
                vapp_usage_error(VC_PROG, SYNOPSIS, "--max-streams needs a number, 1 to 10000000");
            break;
        case 'h': usage(); return VC_EXIT_OK;
        case OPT_VERSION: printf("veil-capture (Veil) 1\n"); return VC_EXIT_OK;
        default: vapp_getopt_error(VC_PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind < argc)
        vapp_usage_error(VC_PROG, SYNOPSIS, "unexpected argument '%s'", argv[optind]);
    if (rfile != NULL && iface != NULL)
        vapp_usage_error(VC_PROG, SYNOPSIS, "-i and -r conflict: capture live or read a file");
    if (duration_ms > 0 && rfile != NULL)
        vapp_usage_error(VC_PROG, SYNOPSIS, "--duration applies to live captures only");
    if (json && verbose)
        vapp_usage_error(VC_PROG, SYNOPSIS, "--json already carries every field; drop -V");
    if (xfile != NULL && wfile != NULL && strcmp(xfile, wfile) == 0)
        vapp_usage_error(VC_PROG, SYNOPSIS, "-w and --export-decrypted name the same file");
    if (xfile != NULL && rfile != NULL && strcmp(xfile, rfile) == 0)
        vapp_usage_error(VC_PROG, SYNOPSIS, "--export-decrypted would overwrite the input");
    if (wfile != NULL && rfile != NULL && strcmp(wfile, rfile) == 0)
        vapp_usage_error(VC_PROG, SYNOPSIS, "-w would overwrite the input");
    if (rfile == NULL && iface == NULL)
        iface = "lo";
    char deffilter[32];
    if (!filter_given && rfile == NULL) {
        snprintf(deffilter, sizeof deffilter, "tcp port %d", VEIL_DEFAULT_PORT);
        filter = deffilter;
    }
    if (n_ports == 0)
        ports[n_ports++] = VEIL_DEFAULT_PORT;

    char err[VAPP_ERRLEN];
    int status = VC_EXIT_OK;
    veil_keylog *kl = NULL;
    veil_identity *rsa = NULL;
    ctx cx;
    memset(&cx, 0, sizeof cx);
    cx.pr.f = stdout;
    cx.pr.fmt = json ? VC_FMT_JSON : verbose ? VC_FMT_VERBOSE : VC_FMT_TEXT;
    cx.pr.quiet = quiet;
    cx.max_frames = count;
    cx.live = rfile == NULL;

    if (veil_keylog_new(&kl) != 0) {
        fprintf(stderr, "%s: out of memory\n", VC_PROG);
        return VC_EXIT_LOCAL;
    }
    cx.kl = kl;
    for (size_t i = 0; i < n_keylogs; i++) {
        size_t bad = 0;
        size_t before = veil_keylog_count(kl);
        struct stat kst;
        cx.keyfiles[cx.n_keyfiles].path = keylogs[i];
        if (stat(keylogs[i], &kst) == 0) {
            cx.keyfiles[cx.n_keyfiles].size = kst.st_size;
            cx.keyfiles[cx.n_keyfiles].mtime = kst.st_mtim;
        }
        cx.n_keyfiles++;
        if (rfile == NULL && access(keylogs[i], F_OK) != 0 && errno == ENOENT) {
            /* Live: the programs may create it during the capture. */
            fprintf(stderr, "%s: %s does not exist yet: it is read when it appears\n", VC_PROG,
                    keylogs[i]);
            continue;
        }
        if (vc_load_keylog(keylogs[i], kl, &bad, err) != 0) {
            fprintf(stderr, "%s: %s\n", VC_PROG, err);
            status = VC_EXIT_LOCAL;
            goto out;
        }
        if (bad > 0)
            fprintf(stderr, "%s: warning: %s: %zu malformed keylog line%s ignored\n", VC_PROG,
                    keylogs[i], bad, bad == 1 ? "" : "s");
        if (veil_keylog_count(kl) == before && rfile != NULL)
            fprintf(stderr, "%s: warning: %s holds no Veil secrets (VEIL_*_TRAFFIC_SECRET_0 lines)\n",
                    VC_PROG, keylogs[i]);
    }
    if (rsa_path != NULL && vc_load_rsa_key(rsa_path, &rsa, err) != 0) {
        fprintf(stderr, "%s: %s\n", VC_PROG, err);
        status = VC_EXIT_LOCAL;
        goto out;
    }
    vc_decoder_config dc = {
        .keys = kl,
        .rsa_key = rsa,
        .reasm = {.max_ooo_bytes = max_buffer, .max_streams = max_streams,
                  .server_ports = ports, .n_server_ports = n_ports},
    };
    if (vc_decoder_new(&dc, on_event, &cx, &cx.dec) != 0) {
        fprintf(stderr, "%s: out of memory\n", VC_PROG);
        status = VC_EXIT_LOCAL;
        goto out;
    }

    if (rfile != NULL) {
        /* Reading a file into a file or pipe: one write(2) per 256 KiB rather
           than per 4 KiB (the output is the same; a terminal stays line-buffered,
           and standard input may be a live stream, so "-r -" is left alone). */
        if (strcmp(rfile, "-") != 0 && !isatty(STDOUT_FILENO))
            (void)setvbuf(stdout, NULL, _IOFBF, 256u << 10);
        pcap_t *p = open_file(rfile, &status, err);
        if (p == NULL) {
            fprintf(stderr, "%s: %s\n", VC_PROG, err);
            goto out;
        }
        int dlt = pcap_datalink(p);
        pcap_dumper_t *dump = NULL;
        if (set_filter(p, filter, err) != 0) {
            fprintf(stderr, "%s: %s\n", VC_PROG, err);
            pcap_close(p);
            status = VC_EXIT_USAGE;
            goto out;
        }
        if (wfile != NULL && (dump = pcap_dump_open(p, wfile)) == NULL) {
            fprintf(stderr, "%s: cannot write %s: %s\n", VC_PROG, wfile, pcap_geterr(p));
            pcap_close(p);
            status = VC_EXIT_LOCAL;
            goto out;
        }
        if (!vc_dlt_supported(dlt))
            fprintf(stderr, "%s: warning: %s has link type %d, which is not decoded\n", VC_PROG,
                    rfile, dlt);
        if (xfile != NULL && vc_export_open(xfile, dlt, &cx.exp, err) != 0) {
            fprintf(stderr, "%s: %s\n", VC_PROG, err);
            status = VC_EXIT_LOCAL;
        } else if (strcmp(rfile, "-") != 0 &&
                   vc_pcapng_read_comments(rfile, 1000000, &cx.comments, &cx.n_comments, err) != 0) {
            fprintf(stderr, "%s: %s\n", VC_PROG, err);
            status = VC_EXIT_LOCAL;
        } else {
            status = read_frames(p, rfile, on_frame, &cx, dump, err);
            if (status != 0)
                fprintf(stderr, "%s: %s\n", VC_PROG, err);
        }
        if (dump != NULL)
            pcap_dump_close(dump);
        pcap_close(p);
        if (status == VC_EXIT_LOCAL)
            goto out;
    } else {
        cx.xpath = xfile;
        status = run_live(&cx, iface, filter, wfile, duration_ms, err);
        if (status != 0) {
            fprintf(stderr, "%s: %s\n", VC_PROG, err);
            if (status != VC_EXIT_SOURCE || cx.frames == 0)
                goto out;
        }
    }
    vc_decoder_finish(cx.dec);
    if (cx.exp != NULL && vc_export_end_frame(cx.exp, cx.dec) != 0)
        cx.export_failed = 1;
    if (!no_summary)
        vc_print_summary(&cx.pr, vc_decoder_totals(cx.dec));
    if (cx.exp != NULL) {
        uint64_t n = 0;
        vc_export *x = cx.exp;
        cx.exp = NULL;
        if (vc_export_close(x, &n, err) != 0 || cx.export_failed) {
            fprintf(stderr, "%s: --export-decrypted %s: %s\n", VC_PROG, xfile, err);
            status = VC_EXIT_LOCAL;
        } else {
            fprintf(stderr, "%s: exported %s: %" PRIu64 " record%s rewritten in clear\n", VC_PROG,
                    xfile, n, n == 1 ? "" : "s");
        }
    }
out:
    fflush(stdout);
    if (cx.exp != NULL) {
        uint64_t n;
        (void)vc_export_close(cx.exp, &n, err);
    }
    vc_decoder_free(cx.dec);
    vc_comments_free(cx.comments, cx.n_comments);
    veil_identity_free(rsa);
    veil_keylog_free(kl);
    return status;
}
