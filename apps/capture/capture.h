/*
 * capture.h - internals of veil-capture (docs/CAPTURE.md).
 *
 * Layers, bottom up, one file each:
 *   rd.h       bounds-checked big-endian readers: every byte of a packet is
 *              read through them, so hostile or truncated input is an error
 *              value, never a read past the end;
 *   pkt.c      link layer (Ethernet/VLAN, Linux SLL and SLL2, raw IPv4/IPv6,
 *              BSD null/loop), IPv4, IPv6 and TCP headers; and the reverse:
 *              building frames with correct lengths and checksums;
 *   reasm.c    TCP reassembly: a hash table of streams, per direction
 *              in-order delivery with bounded out-of-order buffering, gaps;
 *   decode.c   Veil record framing on the reassembled bytes (headers through
 *              veil_header_decode), resynchronisation after gaps, and the
 *              decoding of each record by libproto's passive observer;
 *   print.c    the text, -V and --json outputs and the summary;
 *   pcapout.c  writing pcap and pcapng (with per-packet comments), and
 *              reading those comments back;
 *   export.c   --export-decrypted;  compare.c, replay.c, relay.c: the
 *              subcommands;  veil-capture.c: the command line.
 *
 * HARD RULE: the Veil wire format is parsed only by libproto.  This program
 * frames records with veil_header_decode() and decodes each one with
 * veil_observer_record(); it never reads a Veil field by hand.
 */
#ifndef VEIL_CAPTURE_H
#define VEIL_CAPTURE_H

#include <stdint.h>
#include <stdio.h>

#include "veilapp.h"

/* ------------------------------------------------------------------------ */
/* Packets (pkt.c)                                                          */

/* Link types we decode: libpcap DLT_* values. */
#define VC_DLT_NULL 0
#define VC_DLT_EN10MB 1
#define VC_DLT_RAW 12      /* Linux DLT_RAW; LINKTYPE_RAW (101) maps to it */
#define VC_DLT_RAW_OB 14   /* DLT_RAW on OpenBSD */
#define VC_DLT_LINKTYPE_RAW 101
#define VC_DLT_LOOP 108
#define VC_DLT_LINUX_SLL 113
#define VC_DLT_IPV4 228
#define VC_DLT_IPV6 229
#define VC_DLT_LINUX_SLL2 276

typedef struct vc_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t a[16];  /* IPv4 in the first 4 bytes */
} vc_addr;

enum {
    VC_TCP_FIN = 0x01,
    VC_TCP_SYN = 0x02,
    VC_TCP_RST = 0x04,
    VC_TCP_PSH = 0x08,
    VC_TCP_ACK = 0x10,
};

typedef enum vc_pkt_kind {
    VC_PKT_TCP = 0,      /* a TCP segment: the fields below are valid */
    VC_PKT_OTHER,        /* a packet that is not TCP over IP (ARP, UDP, ...) */
    VC_PKT_FRAGMENT,     /* an IP fragment: not reassembled, counted */
    VC_PKT_MALFORMED,    /* a header is inconsistent or cut short */
    VC_PKT_BAD_LINK,     /* link type we do not decode */
} vc_pkt_kind;

typedef struct vc_pkt {
    int dlt;
    size_t l3_off;        /* offset of the IP header in the frame */
    int ipver;            /* 4 or 6 */
    size_t ip_hdr_len;    /* IPv4 header or IPv6 header + extension headers */
    size_t ip_len;        /* IP datagram length as the header says */
    vc_addr src, dst;
    size_t tcp_off;       /* offset of the TCP header in the frame */
    size_t tcp_hdr_len;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    const uint8_t *payload; /* TCP payload as captured */
    size_t payload_len;     /* bytes of payload captured */
    size_t payload_wire;    /* bytes of payload on the wire (>= payload_len) */
    const char *why;        /* VC_PKT_MALFORMED / BAD_LINK: what was wrong */
} vc_pkt;

/* Decodes a frame of link type dlt; every read is bounds-checked. */
vc_pkt_kind vc_pkt_parse(int dlt, const uint8_t *frame, size_t caplen, vc_pkt *out);
/* 1 if the link type is one vc_pkt_parse decodes. */
int vc_dlt_supported(int dlt);
const char *vc_dlt_name(int dlt);

/* "127.0.0.1:51424" or "[::1]:51424". */
#define VC_ADDRSTR_LEN 64
void vc_addr_format(const vc_addr *a, uint16_t port, char out[VC_ADDRSTR_LEN]);
int vc_addr_equal(const vc_addr *x, const vc_addr *y);

/*
 * Builds one frame into out (cap bytes): link header copied from l2 (l2_len
 * bytes, may be 0 for raw IP), then an IPv4 or IPv6 header (from ip_hdr if
 * given, else a minimal one), a 20-byte TCP header (or the tcp_hdr given,
 * options kept) and the payload, with every length and checksum recomputed.
 * Returns the frame length, or 0 if it does not fit.
 */
typedef struct vc_frame_spec {
    const uint8_t *l2;
    size_t l2_len;
    int ipver;
    const vc_addr *src, *dst;
    const uint8_t *ip_hdr; /* original IP header (+ IPv6 extension headers) or NULL */
    size_t ip_hdr_len;
    const uint8_t *tcp_hdr; /* original TCP header (with options) or NULL */
    size_t tcp_hdr_len;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    uint16_t ip_id;
    const uint8_t *payload;
    size_t payload_len;
} vc_frame_spec;
size_t vc_frame_build(const vc_frame_spec *spec, uint8_t *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* TCP reassembly (reasm.c)                                                 */

typedef struct vc_stream vc_stream;

enum { VC_C2S = 0, VC_S2C = 1 }; /* equal to VEIL_DIR_CLIENT_TO_SERVER/... */

typedef struct vc_reasm_ops {
    /* A new stream; midstream = no SYN seen (the capture started late). */
    void (*on_open)(void *user, vc_stream *s);
    /* In-order bytes of one direction. */
    void (*on_data)(void *user, vc_stream *s, int dir, const uint8_t *p, size_t n);
    /* n bytes will never be seen (n = 0: unknown, e.g. a mid-stream start). */
    void (*on_gap)(void *user, vc_stream *s, int dir, uint64_t n, const char *why);
    /* The direction's FIN was reached: no more data in dir. */
    void (*on_fin)(void *user, vc_stream *s, int dir);
    /* The stream ends (both FINs, RST, end of input, eviction): last call. */
    void (*on_close)(void *user, vc_stream *s, const char *why);
} vc_reasm_ops;

typedef struct vc_half_stats {
    uint64_t bytes;      /* delivered in order */
    uint64_t segments;   /* segments carrying data */
    uint64_t retrans;    /* segments or parts already delivered (dropped) */
    uint64_t ooo;        /* segments that arrived ahead of a hole */
    uint64_t overlaps;   /* overlapping bytes that disagreed (first copy kept) */
    uint64_t gaps;
    uint64_t gap_bytes;
    uint64_t overflows;  /* out-of-order buffer exceeded: a gap was forced */
} vc_half_stats;

struct vc_stream {
    unsigned long id;      /* 1, 2, ... in order of appearance */
    vc_addr cli, srv;      /* client and server address */
    uint16_t cport, sport; /* client and server port */
    int midstream;         /* no SYN seen */
    int role_guess;        /* client/server chosen by port, not by SYN */
    uint64_t first_ns, last_ns;
    vc_half_stats st[2];
    void *app;  /* the decoder's per-stream state */
    void *xapp; /* an event consumer's per-stream state (export) */
};

typedef struct vc_reasm vc_reasm;

typedef struct vc_reasm_config {
    size_t max_ooo_bytes;  /* per direction; default 1 MiB */
    size_t max_streams;    /* live streams; the least recently active is evicted */
    const uint16_t *server_ports; /* ports that identify the server without a SYN */
    size_t n_server_ports;
} vc_reasm_config;

int vc_reasm_new(const vc_reasm_config *cfg, const vc_reasm_ops *ops, void *user, vc_reasm **out);
/* Feeds one decoded TCP segment seen at time ts_ns. */
void vc_reasm_packet(vc_reasm *r, const vc_pkt *p, uint64_t ts_ns);
/* Ends every stream (end of input): flushes buffered data as gaps. */
void vc_reasm_finish(vc_reasm *r);
void vc_reasm_free(vc_reasm *r);
/* The stream and direction of the last packet fed (NULL if none). */
vc_stream *vc_reasm_current(const vc_reasm *r, int *dir);
unsigned long vc_reasm_stream_count(const vc_reasm *r);
uint64_t vc_reasm_evictions(const vc_reasm *r);

/* ------------------------------------------------------------------------ */
/* Veil decoding of streams (decode.c)                                      */

/* One event of the decoder, in the order they happen. */
typedef enum vc_event_kind {
    VC_EV_OPEN = 1, /* stream appeared */
    VC_EV_RECORD,   /* a record was framed and decoded */
    VC_EV_GAP,      /* bytes missing in a direction */
    VC_EV_RESYNC,   /* a record boundary was found again */
    VC_EV_FRAMING,  /* bytes that do not frame as a record: decoding lost sync */
    VC_EV_TRUNCATED,/* the direction ended inside a record */
    VC_EV_CLOSE,    /* stream ended */
    /* For consumers that rebuild streams (export); not printed: */
    VC_EV_SKIPPED,  /* received bytes dropped outside any record (raw, raw_len) */
    VC_EV_DIR_END,  /* the direction reached its FIN */
} vc_event_kind;

typedef struct vc_event {
    vc_event_kind kind;
    uint64_t ts_ns;
    vc_stream *s;
    int dir;
    uint64_t offset;   /* stream offset of the record / gap / resync point */
    uint64_t count;    /* GAP: bytes missing (0 = unknown); RESYNC: bytes skipped;
                          TRUNCATED: bytes of the incomplete record */
    const char *why;   /* GAP, FRAMING, CLOSE: explanation */
    int err;           /* FRAMING: veil_header_decode's error */
    /* RECORD */
    const veil_observed_record *rec;
    const uint8_t *raw; /* RECORD: the record as on the wire; SKIPPED: the bytes */
    size_t raw_len;
    int after_resync;   /* first record after a gap or resync: seq not checked */
    /* CLOSE: per direction totals */
    uint64_t records[2];
    int is_veil;
    const char *mode;   /* CLOSE: "encrypted", "plaintext" or NULL if unknown */
    /* CLOSE: how each direction ended: "close_notify", "fatal_alert" (one side
       sent a fatal alert), "truncated" (no close_notify: PROTOCOL.md §8.3) or
       "unknown" (an alert could not be decrypted). */
    const char *ending[2];
} vc_event;

typedef void (*vc_event_cb)(void *user, const vc_event *ev);

typedef struct vc_decoder vc_decoder;

typedef struct vc_decoder_config {
    const veil_keylog *keys;      /* may be NULL */
    const veil_identity *rsa_key; /* may be NULL */
    vc_reasm_config reasm;
} vc_decoder_config;

typedef struct vc_totals {
    unsigned long streams, veil_streams;
    uint64_t packets, tcp_packets, other_packets, fragments, malformed, bad_link, truncated;
    uint64_t records, plaintext, decrypted, no_key, auth_failed, bad_crc, unsupported,
        malformed_bodies, parse_errors, seq_errors;
    uint64_t gaps, gap_bytes, resyncs, framing_errors, truncated_records, retrans, ooo,
        overlaps, overflows, evictions;
} vc_totals;

int vc_decoder_new(const vc_decoder_config *cfg, vc_event_cb cb, void *user, vc_decoder **out);
/* Feeds one captured frame (link type dlt, caplen bytes captured). */
void vc_decoder_frame(vc_decoder *d, int dlt, const uint8_t *frame, size_t caplen, uint64_t ts_ns);
/* End of input: flushes and closes every stream. */
void vc_decoder_finish(vc_decoder *d);
const vc_totals *vc_decoder_totals(const vc_decoder *d);
/* The packet being processed (valid during vc_decoder_frame's callbacks). */
const vc_pkt *vc_decoder_packet(const vc_decoder *d, vc_pkt_kind *kind);
/* The stream and direction of the packet being processed, or NULL. */
vc_stream *vc_decoder_current(const vc_decoder *d, int *dir);
void vc_decoder_free(vc_decoder *d);

/* ------------------------------------------------------------------------ */
/* Output (print.c)                                                         */

typedef enum vc_format { VC_FMT_TEXT = 0, VC_FMT_VERBOSE, VC_FMT_JSON } vc_format;

typedef struct vc_printer {
    FILE *f;
    vc_format fmt;
    int quiet; /* no per-record output (summary only) */
} vc_printer;

void vc_print_event(vc_printer *pr, const vc_event *ev);
void vc_print_summary(vc_printer *pr, const vc_totals *t);
/* Extra per-packet annotation (pcapng comments of an exported capture). */
void vc_print_comment(vc_printer *pr, uint64_t ts_ns, unsigned long frame, const char *text);

/* "2024-05-01T12:34:56.789012Z" from nanoseconds since the epoch. */
#define VC_TIMESTR_LEN 48
void vc_format_ns(uint64_t ns, char out[VC_TIMESTR_LEN]);
/* Stable short names (docs/CAPTURE.md): "plaintext", "decrypted", "no_key"... */
const char *vc_status_token(veil_body_status s);
const char *vc_mode_name(uint8_t mode);
const char *vc_dir_name(int dir); /* "C>S" or "S>C" */

/* ------------------------------------------------------------------------ */
/* Capture files (pcapout.c)                                                */

typedef struct vc_pcapng vc_pcapng;

/* A pcapng writer: one section, one interface of link type dlt, timestamps
 * in nanoseconds.  shb_comment may be NULL. */
int vc_pcapng_open(const char *path, int dlt, const char *shb_comment, vc_pcapng **out,
                   char *err);
/* Writes one packet with any number of comments (opt_comment). */
int vc_pcapng_write(vc_pcapng *w, uint64_t ts_ns, const uint8_t *frame, size_t len,
                    size_t orig_len, const char *const *comments, size_t n_comments);
int vc_pcapng_close(vc_pcapng *w, char *err);

/*
 * Collects the opt_comment strings of the Enhanced/Simple Packet Blocks of a
 * pcapng file, by packet number (1-based), so that the markers written by
 * --export-decrypted can be shown when the file is read back (libpcap does
 * not expose comments).  A classic pcap file yields nothing.  Bounded: at
 * most max_comments comments are kept.  Returns 0, or -1 on a read error.
 */
typedef struct vc_comment {
    unsigned long frame;
    char *text;
} vc_comment;
int vc_pcapng_read_comments(const char *path, size_t max_comments, vc_comment **out, size_t *n,
                            char *err);
void vc_comments_free(vc_comment *c, size_t n);

/* ------------------------------------------------------------------------ */
/* Reading a capture (veil-capture.c): libpcap offline or live.             */

typedef struct vc_source vc_source;
/* Called for each frame; return non-zero to stop. */
typedef int (*vc_frame_cb)(void *user, int dlt, const uint8_t *frame, size_t caplen,
                           size_t wirelen, uint64_t ts_ns);
/* Reads every frame of a pcap/pcapng file through libpcap (filter may be NULL).
 * Returns 0, 2 if the file cannot be opened (err set), 4 if it is corrupt or
 * truncated after some packets (err set, frames so far delivered). */
int vc_read_file(const char *path, const char *filter, vc_frame_cb cb, void *user, char *err);

/* ------------------------------------------------------------------------ */
/* Subcommands                                                              */

int vc_cmd_compare(int argc, char **argv);
int vc_cmd_replay(int argc, char **argv);
int vc_cmd_relay(int argc, char **argv);

/* Export (export.c): a decoder consumer that writes the decrypted capture. */
typedef struct vc_export vc_export;
int vc_export_open(const char *path, int dlt, vc_export **out, char *err);
/* Called by the frame loop: before decoding a frame and after. */
void vc_export_begin_frame(vc_export *x, const uint8_t *frame, size_t caplen, size_t wirelen,
                           uint64_t ts_ns);
void vc_export_event(vc_export *x, const vc_event *ev);
int vc_export_end_frame(vc_export *x, vc_decoder *d);
int vc_export_close(vc_export *x, uint64_t *rewritten, char *err);

/* Exit statuses of veil-capture (docs/CAPTURE.md). */
enum {
    VC_EXIT_OK = 0,
    VC_EXIT_USAGE = 1,
    VC_EXIT_SOURCE = 2,   /* cannot open the interface or file */
    VC_EXIT_DIFFER = 3,   /* replay: answers differ; compare: n/a */
    VC_EXIT_CORRUPT = 4,  /* the file is corrupt or truncated (decoded up to there) */
    VC_EXIT_LOCAL = 6,    /* local error: keylog, key, output file, memory */
};

extern const char *const VC_PROG;

/* Loads a keylog file (PROTOCOL.md §9) into kl; 0 or -1 (err set). */
int vc_load_keylog(const char *path, veil_keylog *kl, size_t *malformed, char *err);
/* Loads an RSA (or any) identity private key for --rsa-key; 0 or -1. */
int vc_load_rsa_key(const char *path, veil_identity **out, char *err);

/* Shannon entropy of n bytes, in bits per byte (0..8). */
double vc_entropy(const uint8_t *p, size_t n);

#endif /* VEIL_CAPTURE_H */
