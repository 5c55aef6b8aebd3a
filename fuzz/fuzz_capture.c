/*
 * fuzz_capture.c - veil-capture's decoder (apps/capture: link layers, IPv4 and
 * IPv6, TCP reassembly, record framing, decryption, and the three output
 * formats) on arbitrary frames.  The keylogs of the recorded corpus
 * (captures/ *.keys) are loaded, so the seeds, made from captures/ *.pcap,
 * decrypt.  Input: a control byte (bits 0-1: output format text, verbose or
 * JSON; bits 2-4: link type), then frames, each a big-endian u16 length and
 * that many bytes (the last one cut short by the end of the input).  Small
 * reassembly limits make eviction and overflow reachable.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "fuzz_common.h"

static veil_keylog *keys;
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    glob_t g;
    if (veil_keylog_new(&keys) != 0 || glob(VEIL_SOURCE_DIR "/captures/*.keys", 0, NULL, &g) != 0)
        abort();
    for (size_t i = 0; i < g.gl_pathc; i++) {
        veil_buf text;
        char err[VAPP_ERRLEN];
        veil_buf_init(&text);
        if (strstr(g.gl_pathv[i], "wrong") != NULL)
            continue; /* the deliberately wrong secrets */
        if (vapp_read_file(g.gl_pathv[i], "keylog", 1 << 20, 0, &text, NULL, err) != 0)
            abort();
        (void)veil_keylog_add_text(keys, (const char *)text.base, text.len);
        veil_buf_free(&text);
    }
    globfree(&g);
    if (veil_keylog_count(keys) == 0 || (devnull = fopen("/dev/null", "w")) == NULL)
        abort();
    return 0;
}

static void on_event(void *user, const vc_event *ev)
{
    vc_print_event(user, ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int dlts[8] = {VC_DLT_EN10MB, VC_DLT_NULL, VC_DLT_RAW, VC_DLT_LOOP,
                                VC_DLT_LINUX_SLL, VC_DLT_IPV4, VC_DLT_IPV6, VC_DLT_LINUX_SLL2};
    static const uint16_t ports[1] = {VEIL_DEFAULT_PORT};
    if (size < 1)
        return 0;
    vc_printer pr = {.f = devnull, .fmt = (vc_format)(data[0] & 3) % 3};
    int dlt = dlts[(data[0] >> 2) & 7];
    vc_decoder_config cfg = {.keys = keys,
                             .reasm = {.max_ooo_bytes = 4096, .max_streams = 4, .server_ports = ports,
                                       .n_server_ports = 1}};
    vc_decoder *d = NULL;
    if (vc_decoder_new(&cfg, on_event, &pr, &d) != 0)
        abort();
    uint64_t ts = 1700000000ull * 1000000000ull;
    for (size_t off = 1; off + 2 <= size;) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        /* A copy of exactly len bytes: ASan sees any read past the frame. */
        uint8_t *frame = malloc(len ? len : 1);
        if (frame == NULL)
            abort();
        memcpy(frame, data + off, len);
        vc_decoder_frame(d, dlt, frame, len, ts);
        free(frame);
        off += len;
        ts += 1000000;
    }
    vc_decoder_finish(d);
    vc_print_summary(&pr, vc_decoder_totals(d));
    vc_decoder_free(d);
    return 0;
}
