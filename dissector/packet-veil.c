/*
 * packet-veil.c - Wireshark 4.0 dissector plugin for Veil (docs/PROTOCOL.md).
 *
 * The wire format is parsed by libproto only.  This file frames records with
 * veil_header_decode (the PDU length and the heuristic), hands every complete
 * record to one veil_observer per TCP conversation (veil_observer_record), and
 * turns what the observer reports into Wireshark fields, columns and expert
 * infos.  Handshake values (versions, suites, randoms, key shares, identity,
 * fingerprint, signature, ...) come from the observer's veil_observed_record;
 * the byte ranges they are highlighted on come from the pointers libproto
 * returns and from the fixed layout of PROTOCOL.md §4 (docs/DISSECTOR.md).
 * The text messages of the "chat" and "bank" services (docs/SERVICES.md) are
 * split with apps/server/svc_wire.h, the codec the server and client use.
 *
 * Passes.  The observer is stateful (sequence numbers, keys, epochs), so it
 * only ever sees each record once: on the first pass (!PINFO_FD_VISITED).
 * What it says about a record is copied into file-scoped memory (vd_record)
 * and attached to the frame with p_add_proto_data; every dissection, first or
 * later, builds the tree from that copy alone.  `tshark -2` therefore prints
 * exactly what a single pass prints.
 *
 *     record header (PROTOCOL.md §2.1), always in clear:
 *      0       1       2       3       4       5       6       7       8          16
 *     +-------+-------+-------+-------+-------+-------+-------+-------+~~~~~~~~~~+
 *     | 0x56  | 0x4C  |version| type  | flags | epoch |  length (u16) | seq (u64)|
 *     +-------+-------+-------+-------+-------+-------+-------+-------+~~~~~~~~~~+
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <wireshark.h>

#include <epan/conversation.h>
#include <epan/dissectors/packet-tcp.h>
#include <epan/expert.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/proto.h>
#include <epan/proto_data.h>
#include <epan/range.h>
#include <epan/strutil.h>
#include <epan/tfs.h>

#include <veil/veil.h>

#include "keylog_file.h"
#include "svc_wire.h" /* apps/server: the chat and bank payloads (docs/SERVICES.md) */

#ifndef VEIL_PLUGIN_VERSION
#define VEIL_PLUGIN_VERSION "0.0.0"
#endif

/* ------------------------------------------------------------------------ */
/* Plugin entry points (Wireshark 4.0 ABI)                                  */

WS_DLL_PUBLIC_DEF const gchar plugin_version[] = VEIL_PLUGIN_VERSION;
WS_DLL_PUBLIC_DEF const int plugin_want_major = WIRESHARK_VERSION_MAJOR;
WS_DLL_PUBLIC_DEF const int plugin_want_minor = WIRESHARK_VERSION_MINOR;
WS_DLL_PUBLIC void plugin_register(void);

/* ------------------------------------------------------------------------ */
/* Registration handles                                                     */

static int proto_veil = -1;

static int hf_magic = -1;
static int hf_version = -1;
static int hf_type = -1;
static int hf_flags = -1;
static int hf_flags_encrypted = -1;
static int hf_flags_reserved = -1;
static int hf_epoch = -1;
static int hf_length = -1;
static int hf_seq = -1;
static int hf_seq_expected = -1;
static int hf_direction = -1;
static int hf_content = -1;
static int hf_encrypted_body = -1;
static int hf_crc = -1;
static int hf_crc_status = -1;
static int hf_decrypted = -1;
static int hf_decrypt_status = -1;
static int hf_truncated = -1;

static int hf_hs_type = -1;
static int hf_hs_length = -1;
static int hf_hs_body = -1;
static int hf_ch_versions_count = -1;
static int hf_ch_version = -1;
static int hf_ch_mode = -1;
static int hf_ch_suites_count = -1;
static int hf_ch_suite = -1;
static int hf_ch_shares_count = -1;
static int hf_ch_group = -1;
static int hf_ch_key_length = -1;
static int hf_ch_key_share = -1;
static int hf_ch_random = -1;
static int hf_sh_version = -1;
static int hf_sh_mode = -1;
static int hf_sh_suite = -1;
static int hf_sh_group = -1;
static int hf_sh_random = -1;
static int hf_sh_key_length = -1;
static int hf_sh_key_share = -1;
static int hf_sh_identity_length = -1;
static int hf_sh_identity = -1;
static int hf_sh_fingerprint = -1;
static int hf_ext_length = -1;
static int hf_extensions = -1;
static int hf_service = -1;
static int hf_sv_sig_scheme = -1;
static int hf_sv_sig_length = -1;
static int hf_sv_signature = -1;
static int hf_fin_verify_data = -1;
static int hf_cke_length = -1;
static int hf_cke_ciphertext = -1;
static int hf_cv_identity_length = -1;
static int hf_cv_identity = -1;
static int hf_cv_fingerprint = -1;
static int hf_cv_sig_scheme = -1;
static int hf_cv_sig_length = -1;
static int hf_cv_signature = -1;
static int hf_auth_proof = -1;

static int hf_alert_level = -1;
static int hf_alert_code = -1;
static int hf_key_update_epoch = -1;
static int hf_app_kind = -1;
static int hf_app_timestamp = -1;
static int hf_app_text = -1;
static int hf_app_payload = -1;
static int hf_chat_sender = -1;
static int hf_chat_text = -1;
static int hf_bank_op = -1;
static int hf_bank_request_id = -1;
static int hf_bank_amount = -1;
static int hf_bank_balance = -1;
static int hf_bank_error = -1;
static int hf_bank_ok_op = -1;
static int hf_bank_replayed = -1;
static int hf_bank_count = -1;

static gint ett_veil = -1;
static gint ett_flags = -1;
static gint ett_hs = -1;
static gint ett_suites = -1;
static gint ett_key_share = -1;
static gint ett_alert = -1;
static gint ett_app = -1;
static gint ett_key_update = -1;
static gint ett_chat = -1;
static gint ett_bank = -1;

static expert_field ei_malformed = EI_INIT;
static expert_field ei_incomplete = EI_INIT;
static expert_field ei_bad_crc = EI_INIT;
static expert_field ei_auth_failed = EI_INIT;
static expert_field ei_unsupported = EI_INIT;
static expert_field ei_seq = EI_INIT;
static expert_field ei_fatal_alert = EI_INIT;
static expert_field ei_truncated = EI_INIT;
static expert_field ei_plaintext_mode = EI_INIT;
static expert_field ei_no_rsa_key = EI_INIT;

static dissector_handle_t veil_tcp_handle;
static dissector_handle_t veil_end_handle;
static int hf_tcp_flags = -1; /* "tcp.flags", wanted by the end-of-stream postdissector */

/* Preferences */
static gboolean pref_desegment = TRUE;
static const char *pref_keylog_path = "";
static const char *pref_rsa_key_path = "";

/* ------------------------------------------------------------------------ */
/* Per-file state, between the init and cleanup routines                    */

static vd_keylog_file g_keylog;   /* the veil.keylog_file, borrowed by every observer */
static veil_identity *g_rsa_key;  /* the veil.rsa_key_file, borrowed by every observer */
static GPtrArray *g_observers;    /* every veil_observer made for this file */

/* Keys of the data attached to frames. */
#define VD_KEY_COUNTER 0u    /* pinfo->pool: records dissected so far in this frame */
#define VD_KEY_END 1u        /* file scope: end-of-stream check of a FIN/RST frame */
#define VD_KEY_RECORD 0x100u /* file scope: VD_KEY_RECORD + n is the n-th record of the frame */

/* The service of a session (SERVICES.md), from the hellos' service extension. */
enum { VD_SVC_OTHER = 0, VD_SVC_CHAT, VD_SVC_BANK };

/* One TCP conversation that carries Veil. */
typedef struct vd_conv {
    veil_observer *obs;    /* NULL if it could not be allocated */
    address server_addr;   /* the server endpoint, fixed at the first record */
    guint32 server_port;
    bool fatal_alert;      /* a readable fatal alert was seen, in either direction */
    bool opaque_alert;     /* an alert that could not be read was seen */
    guint32 records[2];    /* records seen, per direction */
    bool end_checked[2];   /* the first FIN or RST of the direction was checked */
    bool keyed[2];         /* the observer found a key for the direction */
    guint16 group;         /* from the ServerHello: the key exchange */
    guint8 service;        /* VD_SVC_*: from the hellos (the ServerHello's wins), first pass */
} vd_conv;

typedef enum vd_state {
    VD_REC_OK = 0,     /* given to the observer: see rec.status */
    VD_REC_BAD_HEADER, /* veil_header_decode refused the header: err */
    VD_REC_SHORT,      /* fewer bytes than the record needs (snapshot length, no reassembly) */
    VD_REC_REFUSED,    /* veil_observer_record refused the record: err */
    VD_REC_NO_STATE,   /* no observer for this conversation (out of memory) */
} vd_state;

/* The part of libproto's veil_observed_record kept for display (same names). */
typedef struct vd_fields {
    veil_header hdr;
    veil_body_status status;
    bool seq_ok;
    guint64 seq_expected;
    int parse_error;
    guint8 hs_type;
    const veil_hello_info *hello; /* ClientHello, ServerHello, ClientVerify: a file-scope copy; else NULL */
    guint32 hs_body_len;
    guint16 sig_scheme;
    guint8 alert_level, alert_code;
    guint8 msg_kind;
    guint64 msg_timestamp_ms;
    guint32 msg_len;
} vd_fields;

/* What the observer said about one record, kept for every later pass. */
typedef struct vd_record {
    vd_state state;
    int err;
    int dir;
    vd_fields rec;            /* libproto's answer; hello pointers cleared */
    guint8 *plain;            /* decrypted content (file scope); NULL if not decrypted */
    guint32 content_len;      /* readable content (plaintext or decrypted), else 0 */
    /* Where libproto's pointers pointed, as offsets into the content; -1 = none. */
    gint32 key_share_off, identity_off, hs_body_off, msg_off;
    guint8 key_update_epoch;  /* key_update content, when readable */
    guint32 crc_computed;     /* unencrypted records: CRC-32C of header || content */
    bool rsa_transport;       /* the session uses RSA key transport (decryptable with veil.rsa_key_file) */
    guint8 service;           /* VD_SVC_*: the session's service when the record was seen */
} vd_record;

/* The end-of-stream check of one FIN or RST segment. */
typedef struct vd_end {
    int dir;
    bool rst;
    bool truncated;
} vd_end;

/* ------------------------------------------------------------------------ */
/* Value strings: built from libproto's name functions at registration      */

#define VS_CAP 64
static value_string vs_rec_type[VS_CAP + 1];
static value_string vs_hs_type[VS_CAP + 1];
static value_string vs_suite[VS_CAP + 1];
static value_string vs_group[VS_CAP + 1];
static value_string vs_sig[VS_CAP + 1];
static value_string vs_alert[VS_CAP + 1];
static value_string vs_msg_kind[VS_CAP + 1];

/* PROTOCOL.md §3, §4.1, §8.1: no name function in libproto for these. */
static const value_string vs_version[] = {{VEIL_VERSION_1, "Veil v1"}, {0, NULL}};
static const value_string vs_mode[] = {
    {VEIL_MODE_ENCRYPTED, "encrypted"}, {VEIL_MODE_PLAINTEXT, "plaintext"}, {0, NULL}};
static const value_string vs_alert_level[] = {
    {VEIL_ALERT_LEVEL_WARNING, "warning"}, {VEIL_ALERT_LEVEL_FATAL, "fatal"}, {0, NULL}};
static const value_string vs_direction[] = {
    {VEIL_DIR_CLIENT_TO_SERVER, "client to server"}, {VEIL_DIR_SERVER_TO_CLIENT, "server to client"}, {0, NULL}};

static const char *name_rec_type(guint32 c) { return veil_record_type_name((uint8_t)c); }
static const char *name_hs_type(guint32 c) { return veil_hs_type_name((uint8_t)c); }
static const char *name_suite(guint32 c) { return veil_suite_name((uint16_t)c); }
static const char *name_group(guint32 c) { return veil_group_name((uint16_t)c); }
static const char *name_sig(guint32 c) { return veil_sig_name((uint16_t)c); }
static const char *name_alert(guint32 c) { return veil_alert_name((int)c); }
static const char *name_msg_kind(guint32 c) { return veil_msg_kind_name((uint8_t)c); }

/* Every code in [0, last] that libproto names (not "unknown"), at most VS_CAP. */
static void fill_vs(value_string *vs, guint32 last, const char *(*name)(guint32))
{
    size_t n = 0;
    for (guint32 code = 0; code <= last && n < VS_CAP; code++) {
        const char *s = name(code);
        if (strcmp(s, "unknown") != 0) {
            vs[n].value = code;
            vs[n].strptr = s;
            n++;
        }
    }
    vs[n].value = 0;
    vs[n].strptr = NULL;
}

/* ------------------------------------------------------------------------ */
/* Framing                                                                  */

/* A header that could start a Veil stream: libproto accepts it, and an
   unencrypted record has epoch 0 and room for its CRC (PROTOCOL.md §2.9, 1). */
static bool header_plausible(const guint8 hb[VEIL_HEADER_LEN], veil_header *h)
{
    if (veil_header_decode(hb, VEIL_HEADER_LEN, h) != 0)
        return false;
    if (!(h->flags & VEIL_FLAG_ENCRYPTED) && (h->epoch != 0 || h->length < 4))
        return false;
    return true;
}

/*
 * PDU length for tcp_dissect_pdus.  Never throws: it reads the 16 header
 * bytes only once they are there.  A header libproto refuses ends the PDU at
 * the end of the segment, which the PDU dissector then shows as malformed.
 */
static guint get_veil_pdu_len(packet_info *pinfo _U_, tvbuff_t *tvb, int offset, void *data _U_)
{
    guint8 hb[VEIL_HEADER_LEN];
    veil_header h;
    gint captured = tvb_captured_length_remaining(tvb, offset);
    gint reported = tvb_reported_length_remaining(tvb, offset);
    if (captured < VEIL_HEADER_LEN)
        return VEIL_HEADER_LEN;
    tvb_memcpy(tvb, hb, offset, VEIL_HEADER_LEN);
    if (veil_header_decode(hb, VEIL_HEADER_LEN, &h) != 0)
        return reported > VEIL_HEADER_LEN ? (guint)reported : VEIL_HEADER_LEN;
    return VEIL_HEADER_LEN + (guint)h.length;
}

/* ------------------------------------------------------------------------ */
/* Conversations and the first-pass analysis                                */

static int frame_dir(const vd_conv *vc, const packet_info *pinfo)
{
    return addresses_equal(&pinfo->src, &vc->server_addr) && pinfo->srcport == vc->server_port
               ? VEIL_DIR_SERVER_TO_CLIENT
               : VEIL_DIR_CLIENT_TO_SERVER;
}

/*
 * New Veil conversation, at its first record (first pass).  The server is the
 * port the TCP handshake's SYN went to; without the SYN in the capture, the
 * side on a veil.tcp.port; failing that, the receiver of this first record
 * (a session starts with the client's ClientHello).
 */
static vd_conv *conv_new(packet_info *pinfo, conversation_t *conv)
{
    vd_conv *vc = wmem_new0(wmem_file_scope(), vd_conv);
    bool server_is_dst = true;
    if (pinfo->srcport != pinfo->destport) {
        struct tcp_analysis *tcpd = pinfo->ptype == PT_TCP ? get_tcp_conversation_data(conv, pinfo) : NULL;
        range_t *ports = prefs_get_range_value("veil", "tcp.port");
        if (tcpd != NULL && tcpd->server_port != 0 && tcpd->server_port == pinfo->destport)
            server_is_dst = true;
        else if (tcpd != NULL && tcpd->server_port != 0 && tcpd->server_port == pinfo->srcport)
            server_is_dst = false;
        else if (ports != NULL && value_is_in_range(ports, pinfo->destport))
            server_is_dst = true;
        else if (ports != NULL && value_is_in_range(ports, pinfo->srcport))
            server_is_dst = false;
    }
    copy_address_wmem(wmem_file_scope(), &vc->server_addr, server_is_dst ? &pinfo->dst : &pinfo->src);
    vc->server_port = server_is_dst ? pinfo->destport : pinfo->srcport;
    if (veil_observer_new(g_keylog.keys, &vc->obs) != 0) {
        vc->obs = NULL;
    } else {
        if (g_rsa_key != NULL)
            veil_observer_set_rsa_identity(vc->obs, g_rsa_key);
        if (g_observers != NULL)
            g_ptr_array_add(g_observers, vc->obs);
    }
    conversation_add_proto_data(conv, proto_veil, vc);
    return vc;
}

/* Offset of p in [base, base + len], or -1 (p NULL or elsewhere). */
static gint32 offset_in(const uint8_t *p, const uint8_t *base, size_t len)
{
    if (p == NULL || base == NULL)
        return -1;
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return a >= b && a - b <= len ? (gint32)(a - b) : -1;
}

/* Gives one complete record to the conversation's observer (first pass only). */
static vd_record *analyse_record(tvbuff_t *tvb, vd_conv *vc, int dir)
{
    vd_record *r = wmem_new0(wmem_file_scope(), vd_record);
    veil_observed_record rec;
    veil_header hdr;
    r->dir = dir;
    r->key_share_off = r->identity_off = r->hs_body_off = r->msg_off = -1;

    guint captured = tvb_captured_length(tvb);
    if (captured < VEIL_HEADER_LEN) {
        r->state = VD_REC_SHORT;
        return r;
    }
    r->err = veil_header_decode(tvb_get_ptr(tvb, 0, VEIL_HEADER_LEN), VEIL_HEADER_LEN, &hdr);
    r->rec.hdr = hdr;
    if (r->err != 0) {
        r->state = VD_REC_BAD_HEADER;
        return r;
    }
    guint need = VEIL_HEADER_LEN + hdr.length;
    if (captured < need || tvb_reported_length(tvb) < need) {
        r->state = VD_REC_SHORT;
        return r;
    }
    if (vc->obs == NULL) {
        r->state = VD_REC_NO_STATE;
        return r;
    }
    /* Keys appended to the keylog since the last look count, until this
       direction has a key (the observer looks a key up until it finds one). */
    if ((hdr.flags & VEIL_FLAG_ENCRYPTED) && !vc->keyed[dir])
        vd_keylog_file_refresh(&g_keylog);
    const guint8 *p = tvb_get_ptr(tvb, 0, need);
    r->err = veil_observer_record(vc->obs, dir, p, need, &rec);
    if (r->err != 0) {
        r->state = VD_REC_REFUSED;
        return r;
    }
    vc->records[dir]++;
    if ((rec.hdr.flags & VEIL_FLAG_ENCRYPTED) &&
        (rec.status == VEIL_BODY_DECRYPTED || rec.status == VEIL_BODY_AUTH_FAILED))
        vc->keyed[dir] = true;
    r->rec.hdr = rec.hdr;
    r->rec.status = rec.status;
    r->rec.seq_ok = rec.seq_ok != 0;
    r->rec.seq_expected = rec.seq_expected;
    r->rec.parse_error = rec.parse_error;
    r->rec.hs_type = rec.hs_type;
    r->rec.hs_body_len = (guint32)rec.hs_body_len;
    r->rec.sig_scheme = rec.sig_scheme;
    r->rec.alert_level = rec.alert_level;
    r->rec.alert_code = rec.alert_code;
    r->rec.msg_kind = rec.msg_kind;
    r->rec.msg_timestamp_ms = rec.msg_timestamp_ms;
    r->rec.msg_len = (guint32)rec.msg_len;
    if (rec.content != NULL && rec.hdr.type == VEIL_REC_HANDSHAKE &&
        (rec.hs_type == VEIL_HS_CLIENT_HELLO || rec.hs_type == VEIL_HS_SERVER_HELLO ||
         rec.hs_type == VEIL_HS_CLIENT_VERIFY)) {
        veil_hello_info *h = (veil_hello_info *)wmem_memdup(wmem_file_scope(), &rec.hello, sizeof(rec.hello));
        h->key_share = h->identity_spki = NULL; /* they point into this packet: offsets below */
        r->rec.hello = h;
    }
    if (rec.content != NULL) {
        r->content_len = (guint32)rec.content_len;
        if (rec.status == VEIL_BODY_DECRYPTED && rec.content_len > 0)
            r->plain = (guint8 *)wmem_memdup(wmem_file_scope(), rec.content, rec.content_len);
        r->key_share_off = offset_in(rec.hello.key_share, rec.content, rec.content_len);
        r->identity_off = offset_in(rec.hello.identity_spki, rec.content, rec.content_len);
        r->hs_body_off = offset_in(rec.hs_body, rec.content, rec.content_len);
        r->msg_off = offset_in(rec.msg_data, rec.content, rec.content_len);
        if (rec.hdr.type == VEIL_REC_KEY_UPDATE && rec.parse_error == 0 && rec.content_len == 1)
            r->key_update_epoch = rec.content[0];
        if (rec.hdr.type == VEIL_REC_HANDSHAKE && rec.parse_error == 0 && rec.hs_type == VEIL_HS_SERVER_HELLO &&
            dir == VEIL_DIR_SERVER_TO_CLIENT)
            vc->group = rec.hello.group;
        if (rec.hdr.type == VEIL_REC_HANDSHAKE && rec.parse_error == 0 &&
            ((rec.hs_type == VEIL_HS_CLIENT_HELLO && dir == VEIL_DIR_CLIENT_TO_SERVER) ||
             (rec.hs_type == VEIL_HS_SERVER_HELLO && dir == VEIL_DIR_SERVER_TO_CLIENT)) &&
            (rec.hs_type == VEIL_HS_SERVER_HELLO || rec.hello.service[0] != '\0'))
            vc->service = strcmp(rec.hello.service, "chat") == 0   ? VD_SVC_CHAT
                          : strcmp(rec.hello.service, "bank") == 0 ? VD_SVC_BANK
                                                                   : VD_SVC_OTHER;
    }
    r->service = vc->service;
    r->rsa_transport = vc->group == VEIL_GROUP_RSA_TRANSPORT;
    if (!(rec.hdr.flags & VEIL_FLAG_ENCRYPTED) && need >= VEIL_HEADER_LEN + 4)
        r->crc_computed = veil_crc32c(0, p, need - 4);
    if (rec.hdr.type == VEIL_REC_ALERT) {
        if (rec.content != NULL && rec.parse_error == 0) {
            if (rec.alert_level == VEIL_ALERT_LEVEL_FATAL)
                vc->fatal_alert = true;
        } else {
            vc->opaque_alert = true;
        }
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Display helpers                                                          */

static bool readable(const vd_record *r)
{
    return r->state == VD_REC_OK &&
           (r->rec.status == VEIL_BODY_PLAINTEXT || r->rec.status == VEIL_BODY_DECRYPTED);
}

static bool fits(gint32 off, guint32 len, tvbuff_t *tvb)
{
    guint total = tvb_reported_length(tvb);
    return off >= 0 && (guint)off <= total && len <= total - (guint)off;
}

/* The item is generated (shown with no bytes) when its range is unknown. */
static proto_item *mark(proto_item *pi, bool generated)
{
    if (generated)
        proto_item_set_generated(pi);
    return pi;
}

static proto_item *add_uint(proto_tree *t, int hf, tvbuff_t *tvb, gint32 off, guint32 len, guint32 v)
{
    bool ok = fits(off, len, tvb);
    return mark(proto_tree_add_uint(t, hf, tvb, ok ? off : 0, ok ? (gint)len : 0, v), !ok);
}

/* Bytes that libproto pointed at: [off, off + len) of the content. */
static proto_item *add_bytes(proto_tree *t, int hf, tvbuff_t *tvb, gint32 off, guint32 len)
{
    if (!fits(off, len, tvb))
        return NULL;
    return proto_tree_add_item(t, hf, tvb, off, (gint)len, ENC_NA);
}

/* Bytes whose value libproto returned (value, value_len), shown on [off, off + len). */
static proto_item *add_value(proto_tree *t, int hf, tvbuff_t *tvb, gint32 off, guint32 len, const guint8 *value,
                             guint32 value_len)
{
    bool ok = fits(off, len, tvb);
    return mark(proto_tree_add_bytes_with_length(t, hf, tvb, ok ? off : 0, ok ? (gint)len : 0, value,
                                                 (gint)value_len),
                !ok);
}

/* Extensions block of a hello: ext_len (u16) at off, then the entries up to
   the end of the message (libproto checked that they fill it exactly). */
static void add_extensions(proto_tree *t, tvbuff_t *ctvb, gint32 off, const veil_hello_info *h)
{
    guint total = tvb_reported_length(ctvb);
    if (!fits(off, 2, ctvb))
        return;
    guint32 ext_len = total - (guint)off - 2;
    add_uint(t, hf_ext_length, ctvb, off, 2, ext_len);
    if (ext_len > 0)
        proto_tree_add_item(t, hf_extensions, ctvb, off + 2, (gint)ext_len, ENC_NA);
    if (h->service[0] != '\0')
        mark(proto_tree_add_string(t, hf_service, ctvb, off + 2, (gint)ext_len, h->service), ext_len == 0);
}

/* Offset of the 32-byte value in tvb at or after from, or -1. */
static gint32 find_value(tvbuff_t *tvb, gint32 from, const guint8 *value, guint len)
{
    guint total = tvb_reported_length(tvb);
    if (from < 0 || (guint)from > total || total - (guint)from < len)
        return -1;
    for (guint off = (guint)from; off + len <= total; off++)
        if (tvb_memeql(tvb, off, value, len) == 0)
            return (gint32)off;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Content: handshake messages (PROTOCOL.md §4)                             */

/*
 * ClientHello body (§4.2), after the 4-byte message header:
 *   n_vers, versions[V], mode, n_suites, suites[2S], n_shares,
 *   shares (group u16, key_len u16, key), random[32], ext_len u16, extensions
 */
static void show_client_hello(tvbuff_t *ctvb, proto_tree *t, const vd_record *r)
{
    const veil_hello_info *h = r->rec.hello;
    gint32 off = 4;
    add_uint(t, hf_ch_versions_count, ctvb, off, 1, h->n_versions);
    off += 1;
    for (guint i = 0; i < h->n_versions && i < G_N_ELEMENTS(h->versions); i++)
        add_uint(t, hf_ch_version, ctvb, off + (gint32)i, 1, h->versions[i]);
    off += h->n_versions;
    add_uint(t, hf_ch_mode, ctvb, off, 1, h->mode);
    off += 1;
    add_uint(t, hf_ch_suites_count, ctvb, off, 1, h->n_suites);
    off += 1;
    proto_tree *st = proto_tree_add_subtree_format(t, ctvb, off, 2 * h->n_suites, ett_suites, NULL,
                                                   "Cipher Suites (%u)", h->n_suites);
    for (guint i = 0; i < h->n_suites && i < G_N_ELEMENTS(h->suites); i++)
        add_uint(st, hf_ch_suite, ctvb, off + 2 * (gint32)i, 2, h->suites[i]);
    off += 2 * h->n_suites;
    add_uint(t, hf_ch_shares_count, ctvb, off, 1, h->n_groups);
    off += 1;

    /* First share: libproto points at its key; group and key_len precede it. */
    gint32 key_off = r->key_share_off;
    gint32 share0 = key_off >= 4 ? key_off - 4 : off;
    gint32 shares_end = key_off >= 0 ? key_off + (gint32)h->key_share_len : -1;
    gint32 random_off = -1;
    if (h->n_groups == 1)
        random_off = shares_end;
    else if (h->n_groups > 1)
        random_off = find_value(ctvb, shares_end, h->random, VEIL_RANDOM_LEN);
    for (guint i = 0; i < h->n_groups && i < G_N_ELEMENTS(h->groups); i++) {
        proto_tree *kt;
        if (i == 0) {
            kt = proto_tree_add_subtree_format(t, ctvb, share0, fits(share0, 4 + (guint32)h->key_share_len, ctvb)
                                                                    ? 4 + (gint)h->key_share_len : 0,
                                               ett_key_share, NULL, "Key Share: %s",
                                               val_to_str_const(h->groups[0], vs_group, "unknown"));
            add_uint(kt, hf_ch_group, ctvb, share0, 2, h->groups[0]);
            add_uint(kt, hf_ch_key_length, ctvb, share0 + 2, 2, (guint32)h->key_share_len);
            add_bytes(kt, hf_ch_key_share, ctvb, key_off, (guint32)h->key_share_len);
        } else {
            /* libproto reports only the group of the later shares (docs/DISSECTOR.md) */
            kt = proto_tree_add_subtree_format(t, ctvb, 0, 0, ett_key_share, NULL, "Key Share: %s",
                                               val_to_str_const(h->groups[i], vs_group, "unknown"));
            mark(proto_tree_add_uint(kt, hf_ch_group, ctvb, 0, 0, h->groups[i]), true);
        }
    }
    add_value(t, hf_ch_random, ctvb, random_off, VEIL_RANDOM_LEN, h->random, VEIL_RANDOM_LEN);
    if (random_off >= 0)
        add_extensions(t, ctvb, random_off + VEIL_RANDOM_LEN, h);
    else if (h->service[0] != '\0')
        mark(proto_tree_add_string(t, hf_service, ctvb, 0, 0, h->service), true);
}

/*
 * ServerHello body (§4.3): version, mode, suite u16, group u16, random[32],
 * key_len u16, key, identity_len u16, identity, ext_len u16, extensions.
 */
static void show_server_hello(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *t, const vd_record *r)
{
    const veil_hello_info *h = r->rec.hello;
    add_uint(t, hf_sh_version, ctvb, 4, 1, h->version);
    proto_item *mi = add_uint(t, hf_sh_mode, ctvb, 5, 1, h->mode);
    add_uint(t, hf_sh_suite, ctvb, 6, 2, h->suite);
    add_uint(t, hf_sh_group, ctvb, 8, 2, h->group);
    add_value(t, hf_sh_random, ctvb, 10, VEIL_RANDOM_LEN, h->random, VEIL_RANDOM_LEN);
    gint32 key_off = r->key_share_off, id_off = r->identity_off;
    add_uint(t, hf_sh_key_length, ctvb, key_off >= 2 ? key_off - 2 : -1, 2, (guint32)h->key_share_len);
    add_bytes(t, hf_sh_key_share, ctvb, key_off, (guint32)h->key_share_len);
    add_uint(t, hf_sh_identity_length, ctvb, id_off >= 2 ? id_off - 2 : -1, 2, (guint32)h->identity_spki_len);
    add_bytes(t, hf_sh_identity, ctvb, id_off, (guint32)h->identity_spki_len);
    proto_item *fi = add_value(t, hf_sh_fingerprint, ctvb, id_off, (guint32)h->identity_spki_len, h->fingerprint,
                               VEIL_FINGERPRINT_LEN);
    proto_item_set_generated(fi);
    if (id_off >= 0)
        add_extensions(t, ctvb, id_off + (gint32)h->identity_spki_len, h);
    if (h->mode == VEIL_MODE_PLAINTEXT)
        expert_add_info(pinfo, mi, &ei_plaintext_mode);
}

static void show_handshake(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *tree, const vd_record *r)
{
    const vd_fields *o = &r->rec;
    guint32 clen = r->content_len;
    proto_item *hi;
    if (o->hs_type == 0 || clen < 4) {
        hi = proto_tree_add_item(tree, hf_content, ctvb, 0, (gint)clen, ENC_NA);
        expert_add_info_format(pinfo, hi, &ei_malformed, "Malformed handshake message: %s",
                               veil_strerror(o->parse_error));
        return;
    }
    const char *name = val_to_str_const(o->hs_type, vs_hs_type, "Unknown");
    proto_tree *t = proto_tree_add_subtree_format(tree, ctvb, 0, (gint)clen, ett_hs, &hi,
                                                  "Handshake Protocol: %s", name);
    proto_tree_add_uint(t, hf_hs_type, ctvb, 0, 1, o->hs_type);
    proto_tree_add_uint(t, hf_hs_length, ctvb, 1, 3, clen - 4);
    if (o->parse_error != 0) {
        if (clen > 4)
            proto_tree_add_item(t, hf_hs_body, ctvb, 4, (gint)(clen - 4), ENC_NA);
        expert_add_info_format(pinfo, hi, &ei_malformed, "Malformed %s: %s", name, veil_strerror(o->parse_error));
        return;
    }
    gint32 b = r->hs_body_off;
    guint32 blen = (guint32)o->hs_body_len;
    bool hello_type = o->hs_type == VEIL_HS_CLIENT_HELLO || o->hs_type == VEIL_HS_SERVER_HELLO ||
                      o->hs_type == VEIL_HS_CLIENT_VERIFY;
    if (hello_type && o->hello == NULL) { /* not parsed by libproto (e.g. sent the wrong way) */
        if (clen > 4)
            proto_tree_add_item(t, hf_hs_body, ctvb, 4, (gint)(clen - 4), ENC_NA);
        return;
    }
    switch (o->hs_type) {
    case VEIL_HS_CLIENT_HELLO:
        show_client_hello(ctvb, t, r);
        break;
    case VEIL_HS_SERVER_HELLO:
        show_server_hello(ctvb, pinfo, t, r);
        break;
    case VEIL_HS_SERVER_VERIFY: /* §4.4: sig_scheme u16, sig_len u16, signature */
        add_uint(t, hf_sv_sig_scheme, ctvb, b >= 4 ? b - 4 : -1, 2, o->sig_scheme);
        add_uint(t, hf_sv_sig_length, ctvb, b >= 2 ? b - 2 : -1, 2, blen);
        add_bytes(t, hf_sv_signature, ctvb, b, blen);
        break;
    case VEIL_HS_FINISHED: /* §4.5: verify_data */
        add_bytes(t, hf_fin_verify_data, ctvb, b, blen);
        break;
    case VEIL_HS_CLIENT_KEY_EXCHANGE: /* §4.11: ct_len u16, ct */
        add_uint(t, hf_cke_length, ctvb, b >= 2 ? b - 2 : -1, 2, blen);
        add_bytes(t, hf_cke_ciphertext, ctvb, b, blen);
        break;
    case VEIL_HS_CLIENT_VERIFY: { /* identity_len u16, identity, sig_scheme u16, sig_len u16, signature */
        const veil_hello_info *h = o->hello;
        gint32 id = r->identity_off;
        add_uint(t, hf_cv_identity_length, ctvb, id >= 2 ? id - 2 : -1, 2, (guint32)h->identity_spki_len);
        add_bytes(t, hf_cv_identity, ctvb, id, (guint32)h->identity_spki_len);
        proto_item_set_generated(add_value(t, hf_cv_fingerprint, ctvb, id, (guint32)h->identity_spki_len,
                                           h->fingerprint, VEIL_FINGERPRINT_LEN));
        add_uint(t, hf_cv_sig_scheme, ctvb, b >= 4 ? b - 4 : -1, 2, o->sig_scheme);
        add_uint(t, hf_cv_sig_length, ctvb, b >= 2 ? b - 2 : -1, 2, blen);
        add_bytes(t, hf_cv_signature, ctvb, b, blen);
        break;
    }
    case VEIL_HS_CLIENT_AUTH: /* user authentication proofs */
    case VEIL_HS_SERVER_AUTH:
        add_bytes(t, hf_auth_proof, ctvb, b, blen);
        break;
    default:
        if (clen > 4)
            proto_tree_add_item(t, hf_hs_body, ctvb, 4, (gint)(clen - 4), ENC_NA);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Content: alerts, application messages, key updates (§8, §7, §6.4)        */

static void show_malformed_content(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *tree, const vd_record *r,
                                   const char *what)
{
    proto_item *pi = proto_tree_add_item(tree, hf_content, ctvb, 0, (gint)r->content_len, ENC_NA);
    expert_add_info_format(pinfo, pi, &ei_malformed, "Malformed %s: %s", what, veil_strerror(r->rec.parse_error));
}

static void show_alert(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *tree, const vd_record *r)
{
    const vd_fields *o = &r->rec;
    if (o->parse_error != 0) {
        show_malformed_content(ctvb, pinfo, tree, r, "alert");
        return;
    }
    proto_item *ai;
    proto_tree *t = proto_tree_add_subtree_format(tree, ctvb, 0, (gint)r->content_len, ett_alert, &ai,
                                                  "Alert: %s, %s",
                                                  val_to_str_const(o->alert_level, vs_alert_level, "unknown"),
                                                  val_to_str_const(o->alert_code, vs_alert, "unknown"));
    add_uint(t, hf_alert_level, ctvb, 0, 1, o->alert_level);
    proto_item *ci = add_uint(t, hf_alert_code, ctvb, 1, 1, o->alert_code);
    if (o->alert_level == VEIL_ALERT_LEVEL_FATAL)
        expert_add_info_format(pinfo, ci, &ei_fatal_alert, "Fatal alert %s: %s",
                               val_to_str_const(o->alert_code, vs_alert, "unknown"),
                               veil_strerror(-(int)o->alert_code));
}

/* ------------------------------------------------------------------------ */
/* Service payloads inside text messages (docs/SERVICES.md), via svc_wire.h  */

/* A part of a message: offset and length in the message; len < 0 = absent. */
typedef svc_span vd_span;
#define VD_NO_SPAN SVC_NO_SPAN

/* A chat line (SERVICES.md §2.1), split by svc_chat_decode. */
typedef struct vd_chat {
    vd_span name, text;
} vd_chat;

static const char *chat_parse(const guint8 *p, size_t len, vd_chat *c)
{
    const uint8_t *name, *text;
    size_t name_len, text_len;
    if (svc_chat_decode(p, len, &name, &name_len, &text, &text_len) != 0)
        return len == 0 ? "empty chat payload" : "chat name length runs past the end";
    c->name = (vd_span){(gint32)(name - p), (gint32)name_len};
    c->text = (vd_span){(gint32)(text - p), (gint32)text_len};
    return NULL;
}

/* Bank requests and replies are split by svc_bank_parse (svc_wire.h). */
typedef svc_bank_msg vd_bank;

static const char *bank_parse(const guint8 *p, size_t len, int dir, vd_bank *b)
{
    return svc_bank_parse(p, len, dir == VEIL_DIR_CLIENT_TO_SERVER, b);
}

/* The message of a readable text record of a chat or bank session. */
static bool is_service_text(const vd_record *r)
{
    return (r->service == VD_SVC_CHAT || r->service == VD_SVC_BANK) && r->rec.hdr.type == VEIL_REC_APPDATA &&
           r->rec.parse_error == 0 && r->rec.msg_kind == VEIL_MSG_TEXT;
}

static void add_span(proto_tree *t, int hf, tvbuff_t *ctvb, gint32 msg_off, vd_span s, guint enc)
{
    if (s.len >= 0)
        proto_tree_add_item(t, hf, ctvb, msg_off + s.off, s.len, enc);
}

/* Chat and bank fields of a text message at r->msg_off in ctvb (which fits);
   a payload that does not parse is shown whole as veil.app.text, malformed. */
static void show_service(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *t, const vd_record *r)
{
    guint32 len = r->rec.msg_len;
    const guint8 *p = tvb_get_ptr(ctvb, r->msg_off, (gint)len);
    const char *why;
    proto_item *pi;
    if (r->service == VD_SVC_CHAT) {
        vd_chat c;
        why = chat_parse(p, len, &c);
        if (why == NULL) {
            proto_tree *ct = proto_tree_add_subtree(t, ctvb, r->msg_off, (gint)len, ett_chat, &pi, "Chat");
            if (c.name.len > 0)
                add_span(ct, hf_chat_sender, ctvb, r->msg_off, c.name, ENC_UTF_8);
            add_span(ct, hf_chat_text, ctvb, r->msg_off, c.text, ENC_UTF_8);
            proto_item_append_text(pi, c.name.len > 0 ? " line"
                                       : r->dir == VEIL_DIR_SERVER_TO_CLIENT ? " notice" : " line (to the server)");
            return;
        }
    } else {
        vd_bank b;
        why = bank_parse(p, len, r->dir, &b);
        proto_tree *bt = proto_tree_add_subtree(t, ctvb, r->msg_off, (gint)len, ett_bank, &pi,
                                                r->dir == VEIL_DIR_CLIENT_TO_SERVER ? "Bank Request" : "Bank Reply");
        add_span(bt, hf_bank_op, ctvb, r->msg_off, b.op, ENC_ASCII);
        add_span(bt, hf_bank_ok_op, ctvb, r->msg_off, b.ok_op, ENC_ASCII);
        add_span(bt, hf_bank_request_id, ctvb, r->msg_off, b.request_id, ENC_ASCII);
        add_span(bt, hf_bank_amount, ctvb, r->msg_off, b.amount, ENC_ASCII);
        add_span(bt, hf_bank_balance, ctvb, r->msg_off, b.balance, ENC_ASCII);
        add_span(bt, hf_bank_error, ctvb, r->msg_off, b.error, ENC_ASCII);
        add_span(bt, hf_bank_count, ctvb, r->msg_off, b.count, ENC_ASCII);
        if (b.replayed)
            proto_item_set_generated(proto_tree_add_boolean(bt, hf_bank_replayed, ctvb, r->msg_off, (gint)len, TRUE));
        /* The whole message, as for any text: error texts and history entries. */
        pi = proto_tree_add_item(t, hf_app_text, ctvb, r->msg_off, (gint)len, ENC_UTF_8);
        if (why != NULL)
            expert_add_info_format(pinfo, pi, &ei_malformed, "Malformed bank message: %s", why);
        return;
    }
    pi = proto_tree_add_item(t, hf_app_text, ctvb, r->msg_off, (gint)len, ENC_UTF_8);
    expert_add_info_format(pinfo, pi, &ei_malformed, "Malformed chat message: %s", why);
}

/* The service part of the Info column ("chat from alice", "bank DEPOSIT 12.34"), or NULL. */
static const char *service_summary(wmem_allocator_t *pool, const vd_record *r, const guint8 *p)
{
    guint32 len = r->rec.msg_len;
    if (r->service == VD_SVC_CHAT) {
        vd_chat c;
        if (chat_parse(p, len, &c) != NULL)
            return NULL;
        if (c.name.len > 0)
            return wmem_strdup_printf(pool, "chat from %s",
                                      format_text(pool, p + c.name.off, (size_t)c.name.len));
        return r->dir == VEIL_DIR_SERVER_TO_CLIENT ? "chat notice" : "chat";
    }
    vd_bank b;
    if (bank_parse(p, len, r->dir, &b) != NULL)
        return NULL;
    wmem_strbuf_t *s = wmem_strbuf_new(pool, "bank");
    vd_span parts[] = {b.op, b.ok_op, b.amount, b.error, b.count};
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        if (parts[i].len >= 0)
            wmem_strbuf_append_printf(s, " %s", format_text(pool, p + parts[i].off, (size_t)parts[i].len));
    if (b.balance.len >= 0)
        wmem_strbuf_append_printf(s, " balance %s", format_text(pool, p + b.balance.off, (size_t)b.balance.len));
    if (b.replayed)
        wmem_strbuf_append(s, " REPLAYED");
    return wmem_strbuf_get_str(s);
}

static void show_appdata(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *tree, const vd_record *r)
{
    const vd_fields *o = &r->rec;
    if (o->parse_error != 0) {
        show_malformed_content(ctvb, pinfo, tree, r, "application message");
        return;
    }
    proto_tree *t = proto_tree_add_subtree_format(tree, ctvb, 0, (gint)r->content_len, ett_app, NULL,
                                                  "Application Message: %s",
                                                  val_to_str_const(o->msg_kind, vs_msg_kind, "unknown kind"));
    add_uint(t, hf_app_kind, ctvb, 0, 1, o->msg_kind);
    nstime_t ts;
    ts.secs = (time_t)(o->msg_timestamp_ms / 1000);
    ts.nsecs = (int)(o->msg_timestamp_ms % 1000) * 1000000;
    proto_tree_add_time(t, hf_app_timestamp, ctvb, 1, 8, &ts);
    if (!fits(r->msg_off, (guint32)o->msg_len, ctvb))
        return;
    if (is_service_text(r))
        show_service(ctvb, pinfo, t, r);
    else if (o->msg_kind == VEIL_MSG_TEXT || o->msg_kind == VEIL_MSG_ACK)
        proto_tree_add_item(t, hf_app_text, ctvb, r->msg_off, (gint)o->msg_len, ENC_UTF_8);
    else if (o->msg_len > 0)
        proto_tree_add_item(t, hf_app_payload, ctvb, r->msg_off, (gint)o->msg_len, ENC_NA);
}

static void show_key_update(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *tree, const vd_record *r)
{
    if (r->rec.parse_error != 0) {
        show_malformed_content(ctvb, pinfo, tree, r, "key_update");
        return;
    }
    proto_tree *t = proto_tree_add_subtree_format(tree, ctvb, 0, (gint)r->content_len, ett_key_update, NULL,
                                                  "Key Update: epoch %u", r->key_update_epoch);
    add_uint(t, hf_key_update_epoch, ctvb, 0, 1, r->key_update_epoch);
}

/* Readable content, in the record's tvb (plaintext) or the decrypted one. */
static void show_content(tvbuff_t *ctvb, packet_info *pinfo, proto_tree *tree, const vd_record *r)
{
    switch (r->rec.hdr.type) {
    case VEIL_REC_HANDSHAKE:
        show_handshake(ctvb, pinfo, tree, r);
        break;
    case VEIL_REC_ALERT:
        show_alert(ctvb, pinfo, tree, r);
        break;
    case VEIL_REC_APPDATA:
        show_appdata(ctvb, pinfo, tree, r);
        break;
    case VEIL_REC_KEY_UPDATE:
        show_key_update(ctvb, pinfo, tree, r);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */

/* One line for the Info column and the record's tree item. */
static const char *record_summary(wmem_allocator_t *pool, const vd_record *r, tvbuff_t *tvb)
{
    if (r == NULL)
        return "Record [not analysed]";
    if (r->state == VD_REC_BAD_HEADER || r->state == VD_REC_REFUSED)
        return "Malformed Record";
    const vd_fields *o = &r->rec;
    bool ok = readable(r) && o->parse_error == 0;
    bool enc = (o->hdr.flags & VEIL_FLAG_ENCRYPTED) != 0;
    wmem_strbuf_t *s = wmem_strbuf_new(pool, "");
    switch (o->hdr.type) {
    case VEIL_REC_HANDSHAKE:
        wmem_strbuf_append(s, ok ? val_to_str_const(o->hs_type, vs_hs_type, "Handshake") : "Handshake");
        break;
    case VEIL_REC_ALERT:
        if (ok)
            wmem_strbuf_append_printf(s, "Alert (%s, %s)",
                                      val_to_str_const(o->alert_level, vs_alert_level, "unknown"),
                                      val_to_str_const(o->alert_code, vs_alert, "unknown"));
        else
            wmem_strbuf_append(s, enc ? "Encrypted Alert" : "Alert");
        break;
    case VEIL_REC_APPDATA:
        if (ok) {
            const char *what = NULL;
            if (is_service_text(r)) {
                const guint8 *m = NULL;
                if (r->plain != NULL && r->msg_off >= 0 && (guint32)r->msg_off <= r->content_len &&
                    o->msg_len <= r->content_len - (guint32)r->msg_off)
                    m = r->plain + r->msg_off;
                else if (r->plain == NULL && r->msg_off >= 0 &&
                         tvb_bytes_exist(tvb, VEIL_HEADER_LEN + r->msg_off, (gint)o->msg_len))
                    m = tvb_get_ptr(tvb, VEIL_HEADER_LEN + r->msg_off, (gint)o->msg_len);
                if (m != NULL)
                    what = service_summary(pool, r, m);
            }
            wmem_strbuf_append_printf(s, "Application Data (%s)",
                                      what != NULL ? what : val_to_str_const(o->msg_kind, vs_msg_kind, "unknown kind"));
        }
        else
            wmem_strbuf_append(s, "Application Data");
        break;
    case VEIL_REC_KEY_UPDATE:
        if (ok)
            wmem_strbuf_append_printf(s, "Key Update (epoch %u)", r->key_update_epoch);
        else
            wmem_strbuf_append(s, "Key Update");
        break;
    default:
        wmem_strbuf_append(s, "Record");
        break;
    }
    if (r->state == VD_REC_SHORT)
        wmem_strbuf_append(s, " [Incomplete]");
    else if (r->state == VD_REC_OK) {
        switch (o->status) {
        case VEIL_BODY_DECRYPTED:
            wmem_strbuf_append(s, " [Decrypted]");
            break;
        case VEIL_BODY_AUTH_FAILED:
            wmem_strbuf_append(s, " [Authentication failed]");
            break;
        case VEIL_BODY_BAD_CRC:
            wmem_strbuf_append(s, " [Bad CRC]");
            break;
        case VEIL_BODY_MALFORMED:
            wmem_strbuf_append(s, " [Malformed]");
            break;
        default:
            break;
        }
        if (readable(r) && o->parse_error != 0)
            wmem_strbuf_append(s, " [Malformed]");
        if (!o->seq_ok)
            wmem_strbuf_append(s, " [Unexpected sequence number]");
    }
    return wmem_strbuf_get_str(s);
}

static void show_seq_problem(packet_info *pinfo, proto_tree *t, tvbuff_t *tvb, proto_item *seq_item,
                             const vd_fields *o)
{
    proto_item *pi = proto_tree_add_uint64(t, hf_seq_expected, tvb, 8, 8, o->seq_expected);
    proto_item_set_generated(pi);
    if (o->seq_expected == 0)
        expert_add_info_format(pinfo, seq_item, &ei_seq,
                               "First record of this direction has sequence number %" PRIu64
                               ", expected 0 (capture started mid-session, or records are missing)",
                               o->hdr.seq);
    else
        expert_add_info_format(pinfo, seq_item, &ei_seq, "Sequence number %" PRIu64 " %s: expected %" PRIu64,
                               o->hdr.seq, o->hdr.seq < o->seq_expected ? "repeated or reordered" : "skipped",
                               o->seq_expected);
}

/* Body of a record the observer accepted (PROTOCOL.md §2.7, §6). */
static void show_body(tvbuff_t *tvb, packet_info *pinfo, proto_tree *vt, const vd_record *r)
{
    const vd_fields *o = &r->rec;
    guint32 len = o->hdr.length;
    if (!(o->hdr.flags & VEIL_FLAG_ENCRYPTED)) {
        guint32 clen = len >= 4 ? len - 4 : 0;
        if (o->status == VEIL_BODY_PLAINTEXT)
            show_content(tvb_new_subset_length(tvb, VEIL_HEADER_LEN, (gint)clen), pinfo, vt, r);
        else if (clen > 0)
            proto_tree_add_item(vt, hf_content, tvb, VEIL_HEADER_LEN, (gint)clen, ENC_NA);
        proto_tree_add_checksum(vt, tvb, VEIL_HEADER_LEN + clen, hf_crc, hf_crc_status, &ei_bad_crc, pinfo,
                                r->crc_computed, ENC_BIG_ENDIAN, PROTO_CHECKSUM_VERIFY);
        return;
    }
    proto_item *bi = proto_tree_add_item(vt, hf_encrypted_body, tvb, VEIL_HEADER_LEN, (gint)len, ENC_NA);
    proto_item_set_generated(proto_tree_add_boolean(vt, hf_decrypted, tvb, VEIL_HEADER_LEN, (gint)len,
                                                    o->status == VEIL_BODY_DECRYPTED));
    proto_item_set_generated(proto_tree_add_string(vt, hf_decrypt_status, tvb, VEIL_HEADER_LEN, (gint)len,
                                                   veil_body_status_name(o->status)));
    switch (o->status) {
    case VEIL_BODY_DECRYPTED:
        if (r->plain != NULL && r->content_len > 0) {
            tvbuff_t *ctvb = tvb_new_child_real_data(tvb, r->plain, r->content_len, (gint)r->content_len);
            add_new_data_source(pinfo, ctvb, "Decrypted Veil");
            show_content(ctvb, pinfo, vt, r);
        }
        break;
    case VEIL_BODY_AUTH_FAILED:
        expert_add_info(pinfo, bi, &ei_auth_failed);
        break;
    case VEIL_BODY_UNSUPPORTED:
        expert_add_info(pinfo, bi, &ei_unsupported);
        break;
    case VEIL_BODY_MALFORMED:
        expert_add_info_format(pinfo, bi, &ei_malformed, "Malformed record: body too short for the suite");
        break;
    case VEIL_BODY_NO_KEY: /* veil.decrypt_status says so; an RSA session needs the server's key */
        if (r->rsa_transport)
            expert_add_info(pinfo, bi, &ei_no_rsa_key);
        break;
    default:
        break;
    }
}

static void show_record(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, const vd_record *r)
{
    const char *summary = record_summary(pinfo->pool, r, tvb);
    col_append_sep_str(pinfo->cinfo, COL_INFO, ", ", summary);
    proto_item *ti = proto_tree_add_item(tree, proto_veil, tvb, 0, -1, ENC_NA);
    proto_tree *vt = proto_item_add_subtree(ti, ett_veil);
    guint captured = tvb_captured_length(tvb);
    if (r == NULL || captured < VEIL_HEADER_LEN) {
        proto_item_append_text(ti, ", %s", summary);
        if (r != NULL)
            expert_add_info_format(pinfo, ti, &ei_incomplete, "Record shorter than its 16-byte header");
        return;
    }
    const vd_fields *o = &r->rec;
    static int *const flag_fields[] = {&hf_flags_encrypted, &hf_flags_reserved, NULL};
    proto_tree_add_item(vt, hf_magic, tvb, 0, 2, ENC_BIG_ENDIAN);
    proto_tree_add_item(vt, hf_version, tvb, 2, 1, ENC_NA);
    proto_tree_add_item(vt, hf_type, tvb, 3, 1, ENC_NA);
    proto_tree_add_bitmask(vt, tvb, 4, hf_flags, ett_flags, flag_fields, ENC_NA);
    proto_tree_add_item(vt, hf_epoch, tvb, 5, 1, ENC_NA);
    proto_item *li = proto_tree_add_item(vt, hf_length, tvb, 6, 2, ENC_BIG_ENDIAN);
    proto_item *si = proto_tree_add_item(vt, hf_seq, tvb, 8, 8, ENC_BIG_ENDIAN);
    if (r->state == VD_REC_BAD_HEADER || r->state == VD_REC_REFUSED) {
        proto_item_append_text(ti, ", %s", summary);
        expert_add_info_format(pinfo, ti, &ei_malformed, "Malformed record: %s", veil_strerror(r->err));
        if (tvb_reported_length(tvb) > VEIL_HEADER_LEN)
            proto_tree_add_item(vt, hf_content, tvb, VEIL_HEADER_LEN, -1, ENC_NA);
        return;
    }
    proto_item_append_text(ti, ", %s, Seq %" PRIu64, summary, o->hdr.seq);
    proto_item_set_generated(proto_tree_add_uint(vt, hf_direction, tvb, 0, 0, (guint32)r->dir));
    if (r->state == VD_REC_SHORT) {
        expert_add_info_format(pinfo, li, &ei_incomplete,
                               "Record incomplete: %u bytes of %u captured (snapshot length, or TCP reassembly off)",
                               captured, VEIL_HEADER_LEN + o->hdr.length);
        return;
    }
    if (r->state == VD_REC_NO_STATE)
        return;
    if (!o->seq_ok)
        show_seq_problem(pinfo, vt, tvb, si, o);
    show_body(tvb, pinfo, vt, r);
}

/* One record, as framed by tcp_dissect_pdus. */
static int dissect_veil_pdu(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint32 n = GPOINTER_TO_UINT(p_get_proto_data(pinfo->pool, pinfo, proto_veil, VD_KEY_COUNTER));
    p_set_proto_data(pinfo->pool, pinfo, proto_veil, VD_KEY_COUNTER, GUINT_TO_POINTER(n + 1));
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "Veil");
    if (n == 0)
        col_clear(pinfo->cinfo, COL_INFO);

    vd_record *r = (vd_record *)p_get_proto_data(wmem_file_scope(), pinfo, proto_veil, VD_KEY_RECORD + n);
    if (r == NULL && !PINFO_FD_VISITED(pinfo)) {
        conversation_t *conv = find_or_create_conversation(pinfo);
        vd_conv *vc = (vd_conv *)conversation_get_proto_data(conv, proto_veil);
        if (vc == NULL)
            vc = conv_new(pinfo, conv);
        r = analyse_record(tvb, vc, frame_dir(vc, pinfo));
        p_add_proto_data(wmem_file_scope(), pinfo, proto_veil, VD_KEY_RECORD + n, r);
    }
    show_record(tvb, pinfo, tree, r);
    return (int)tvb_captured_length(tvb);
}

static int dissect_veil_tcp(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    tcp_dissect_pdus(tvb, pinfo, tree, pref_desegment, VEIL_HEADER_LEN, get_veil_pdu_len, dissect_veil_pdu, data);
    return (int)tvb_captured_length(tvb);
}

/* Any TCP port: claims a conversation whose data starts with a Veil header. */
static gboolean dissect_veil_heur_tcp(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    guint8 hb[VEIL_HEADER_LEN];
    veil_header h;
    if (tvb_captured_length(tvb) < VEIL_HEADER_LEN)
        return FALSE;
    tvb_memcpy(tvb, hb, 0, VEIL_HEADER_LEN);
    if (!header_plausible(hb, &h))
        return FALSE;
    conversation_set_dissector(find_or_create_conversation(pinfo), veil_tcp_handle);
    dissect_veil_tcp(tvb, pinfo, tree, data);
    return TRUE;
}

/* ------------------------------------------------------------------------ */
/* End of stream: truncation (PROTOCOL.md §8.3)                             */

/*
 * Postdissector, run on every frame.  At the first FIN or RST of each
 * direction of a Veil conversation it decides, on the first pass, whether the
 * stream ended without an authenticated close: no close_notify from that
 * direction and no fatal alert either way.  An alert that could not be read
 * (encrypted, no key) might be either, so it suppresses the verdict.  The
 * verdict is kept with the frame, so every pass shows the same thing.
 */
static int dissect_veil_end(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    if (g_observers == NULL || g_observers->len == 0)
        return 0;
    vd_end *e = (vd_end *)p_get_proto_data(wmem_file_scope(), pinfo, proto_veil, VD_KEY_END);
    if (e == NULL && !PINFO_FD_VISITED(pinfo) && pinfo->ptype == PT_TCP && tree != NULL && hf_tcp_flags > 0) {
        GPtrArray *fl = proto_get_finfo_ptr_array(tree, hf_tcp_flags);
        guint32 flags = 0;
        if (fl != NULL && fl->len > 0)
            flags = fvalue_get_uinteger(&((field_info *)g_ptr_array_index(fl, fl->len - 1))->value);
        conversation_t *conv = (flags & 0x005) != 0 ? find_conversation_pinfo(pinfo, 0) : NULL;
        vd_conv *vc = conv != NULL ? (vd_conv *)conversation_get_proto_data(conv, proto_veil) : NULL;
        int dir = vc != NULL ? frame_dir(vc, pinfo) : 0;
        if (vc != NULL && vc->obs != NULL && !vc->end_checked[dir]) {
            vc->end_checked[dir] = true;
            e = wmem_new0(wmem_file_scope(), vd_end);
            e->dir = dir;
            e->rst = (flags & 0x004) != 0;
            e->truncated = vc->records[0] + vc->records[1] > 0 && !veil_observer_closed(vc->obs, dir) &&
                           !vc->fatal_alert && !vc->opaque_alert;
            p_add_proto_data(wmem_file_scope(), pinfo, proto_veil, VD_KEY_END, e);
        }
    }
    if (e == NULL || !e->truncated)
        return 0;
    col_append_str(pinfo->cinfo, COL_INFO, " [Veil: end of stream without close_notify]");
    proto_item *ti = proto_tree_add_item(tree, proto_veil, tvb, 0, 0, ENC_NA);
    proto_item_append_text(ti, ", end of stream without close_notify");
    proto_tree *vt = proto_item_add_subtree(ti, ett_veil);
    proto_item *pi = proto_tree_add_boolean(vt, hf_truncated, tvb, 0, 0, TRUE);
    proto_item_set_generated(pi);
    expert_add_info_format(pinfo, pi, &ei_truncated,
                           "Session truncated: the %s closed its stream (TCP %s) without close_notify",
                           e->dir == VEIL_DIR_CLIENT_TO_SERVER ? "client" : "server", e->rst ? "RST" : "FIN");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Per-file setup                                                           */

/* The server's RSA private key from veil.rsa_key_file, or NULL (no file, not a usable key). */
static veil_identity *load_rsa_key(const char *path)
{
    gchar *pem = NULL;
    gsize len = 0;
    veil_identity *id = NULL;
    if (path == NULL || path[0] == '\0' || !g_file_get_contents(path, &pem, &len, NULL))
        return NULL;
    if (veil_identity_from_pem(pem, len, &id) != 0)
        id = NULL;
    veil_memzero(pem, len);
    g_free(pem);
    return id;
}

static void veil_cleanup(void);

static void veil_init(void)
{
    if (g_observers != NULL) /* init twice without cleanup: start afresh */
        veil_cleanup();
    g_observers = g_ptr_array_new();
    if (vd_keylog_file_open(&g_keylog, pref_keylog_path) != 0)
        memset(&g_keylog, 0, sizeof(g_keylog)); /* out of memory: headers only */
    g_rsa_key = load_rsa_key(pref_rsa_key_path);
}

static void veil_cleanup(void)
{
    if (g_observers != NULL) {
        for (guint i = 0; i < g_observers->len; i++)
            veil_observer_free((veil_observer *)g_ptr_array_index(g_observers, i));
        g_ptr_array_free(g_observers, TRUE);
        g_observers = NULL;
    }
    vd_keylog_file_close(&g_keylog);
    veil_identity_free(g_rsa_key);
    g_rsa_key = NULL;
}

/* ------------------------------------------------------------------------ */
/* Registration                                                             */

static void proto_register_veil(void)
{
    fill_vs(vs_rec_type, 0xff, name_rec_type);
    fill_vs(vs_hs_type, 0xff, name_hs_type);
    fill_vs(vs_suite, 0xffff, name_suite);
    fill_vs(vs_group, 0xffff, name_group);
    fill_vs(vs_sig, 0xffff, name_sig);
    fill_vs(vs_alert, 0xff, name_alert);
    fill_vs(vs_msg_kind, 0xff, name_msg_kind);

    static hf_register_info hf[] = {
        /* Record header (§2.1) */
        {&hf_magic, {"Magic", "veil.magic", FT_UINT16, BASE_HEX, NULL, 0, "\"VL\" (0x564c)", HFILL}},
        {&hf_version, {"Version", "veil.version", FT_UINT8, BASE_HEX, VALS(vs_version), 0, NULL, HFILL}},
        {&hf_type, {"Type", "veil.type", FT_UINT8, BASE_DEC, VALS(vs_rec_type), 0, "Record type", HFILL}},
        {&hf_flags, {"Flags", "veil.flags", FT_UINT8, BASE_HEX, NULL, 0, NULL, HFILL}},
        {&hf_flags_encrypted,
         {"Encrypted", "veil.flags.encrypted", FT_BOOLEAN, 8, TFS(&tfs_set_notset), VEIL_FLAG_ENCRYPTED,
          "Body protected by the negotiated suite", HFILL}},
        {&hf_flags_reserved,
         {"Reserved", "veil.flags.reserved", FT_UINT8, BASE_HEX, NULL, (guint8)~VEIL_FLAGS_KNOWN, "Must be 0",
          HFILL}},
        {&hf_epoch, {"Epoch", "veil.epoch", FT_UINT8, BASE_DEC, NULL, 0, "Key epoch modulo 256", HFILL}},
        {&hf_length, {"Length", "veil.length", FT_UINT16, BASE_DEC, NULL, 0, "Body length", HFILL}},
        {&hf_seq, {"Sequence Number", "veil.seq", FT_UINT64, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_seq_expected,
         {"Expected Sequence Number", "veil.seq.expected", FT_UINT64, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_direction, {"Direction", "veil.direction", FT_UINT8, BASE_DEC, VALS(vs_direction), 0, NULL, HFILL}},
        {&hf_content, {"Content", "veil.content", FT_BYTES, BASE_NONE, NULL, 0, "Content not decoded", HFILL}},
        {&hf_encrypted_body,
         {"Encrypted Body", "veil.encrypted_body", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_crc, {"CRC-32C", "veil.crc", FT_UINT32, BASE_HEX, NULL, 0, NULL, HFILL}},
        {&hf_crc_status,
         {"CRC-32C Status", "veil.crc.status", FT_UINT8, BASE_NONE, VALS(proto_checksum_vals), 0, NULL, HFILL}},
        {&hf_decrypted,
         {"Decrypted", "veil.decrypted", FT_BOOLEAN, BASE_NONE, NULL, 0, "Body decrypted and authenticated", HFILL}},
        {&hf_decrypt_status,
         {"Decryption Status", "veil.decrypt_status", FT_STRING, BASE_NONE, NULL, 0,
          "What became of the body: decrypted, no key for this session, authentication failed, ...", HFILL}},
        {&hf_truncated,
         {"Truncated", "veil.truncated", FT_BOOLEAN, BASE_NONE, NULL, 0,
          "End of stream without close_notify", HFILL}},

        /* Handshake (§4) */
        {&hf_hs_type, {"Handshake Type", "veil.hs.type", FT_UINT8, BASE_DEC, VALS(vs_hs_type), 0, NULL, HFILL}},
        {&hf_hs_length, {"Length", "veil.hs.length", FT_UINT24, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_hs_body, {"Body", "veil.hs.body", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_ch_versions_count, {"Version Count", "veil.hs.ch.versions_count", FT_UINT8, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_ch_version, {"Version", "veil.hs.ch.version", FT_UINT8, BASE_HEX, VALS(vs_version), 0, NULL, HFILL}},
        {&hf_ch_mode, {"Mode", "veil.hs.ch.mode", FT_UINT8, BASE_HEX, VALS(vs_mode), 0, "Mode asked for", HFILL}},
        {&hf_ch_suites_count, {"Suite Count", "veil.hs.ch.suites_count", FT_UINT8, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_ch_suite,
         {"Cipher Suite", "veil.hs.ch.suite", FT_UINT16, BASE_HEX, VALS(vs_suite), 0, "Offered suite", HFILL}},
        {&hf_ch_shares_count, {"Key Share Count", "veil.hs.ch.shares_count", FT_UINT8, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_ch_group, {"Group", "veil.hs.ch.group", FT_UINT16, BASE_HEX, VALS(vs_group), 0, "Offered group", HFILL}},
        {&hf_ch_key_length, {"Key Length", "veil.hs.ch.key_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_ch_key_share,
         {"Key", "veil.hs.ch.key_share", FT_BYTES, BASE_NONE, NULL, 0, "Client public key", HFILL}},
        {&hf_ch_random, {"Random", "veil.hs.ch.random", FT_BYTES, BASE_NONE, NULL, 0, "Client random", HFILL}},
        {&hf_sh_version, {"Version", "veil.hs.sh.version", FT_UINT8, BASE_HEX, VALS(vs_version), 0, NULL, HFILL}},
        {&hf_sh_mode, {"Mode", "veil.hs.sh.mode", FT_UINT8, BASE_HEX, VALS(vs_mode), 0, "Mode granted", HFILL}},
        {&hf_sh_suite,
         {"Cipher Suite", "veil.hs.sh.suite", FT_UINT16, BASE_HEX, VALS(vs_suite), 0, "Selected suite", HFILL}},
        {&hf_sh_group, {"Group", "veil.hs.sh.group", FT_UINT16, BASE_HEX, VALS(vs_group), 0, "Selected group", HFILL}},
        {&hf_sh_random, {"Random", "veil.hs.sh.random", FT_BYTES, BASE_NONE, NULL, 0, "Server random", HFILL}},
        {&hf_sh_key_length, {"Key Length", "veil.hs.sh.key_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_sh_key_share,
         {"Key Share", "veil.hs.sh.key_share", FT_BYTES, BASE_NONE, NULL, 0, "Server public key", HFILL}},
        {&hf_sh_identity_length,
         {"Identity Length", "veil.hs.sh.identity_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_sh_identity,
         {"Identity", "veil.hs.sh.identity", FT_BYTES, BASE_NONE, NULL, 0,
          "Server identity key, DER SubjectPublicKeyInfo", HFILL}},
        {&hf_sh_fingerprint,
         {"Fingerprint", "veil.hs.sh.fingerprint", FT_BYTES, BASE_NONE, NULL, 0,
          "SHA-256 of the identity (what clients pin as sha256:<hex>)", HFILL}},
        {&hf_ext_length, {"Extensions Length", "veil.hs.ext_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_extensions, {"Extensions", "veil.hs.extensions", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_service, {"Service", "veil.hs.service", FT_STRING, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_sv_sig_scheme,
         {"Signature Scheme", "veil.hs.sv.sig_scheme", FT_UINT16, BASE_HEX, VALS(vs_sig), 0, NULL, HFILL}},
        {&hf_sv_sig_length, {"Signature Length", "veil.hs.sv.sig_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_sv_signature, {"Signature", "veil.hs.sv.signature", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_fin_verify_data,
         {"Verify Data", "veil.hs.fin.verify_data", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_cke_length, {"Ciphertext Length", "veil.hs.cke.length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_cke_ciphertext,
         {"Encrypted Premaster Secret", "veil.hs.cke.ciphertext", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_cv_identity_length,
         {"Identity Length", "veil.hs.cv.identity_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_cv_identity,
         {"Client Identity", "veil.hs.cv.identity", FT_BYTES, BASE_NONE, NULL, 0,
          "Client identity key, DER SubjectPublicKeyInfo", HFILL}},
        {&hf_cv_fingerprint,
         {"Client Fingerprint", "veil.hs.cv.fingerprint", FT_BYTES, BASE_NONE, NULL, 0,
          "SHA-256 of the client identity", HFILL}},
        {&hf_cv_sig_scheme,
         {"Signature Scheme", "veil.hs.cv.sig_scheme", FT_UINT16, BASE_HEX, VALS(vs_sig), 0, NULL, HFILL}},
        {&hf_cv_sig_length, {"Signature Length", "veil.hs.cv.sig_length", FT_UINT16, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_cv_signature, {"Signature", "veil.hs.cv.signature", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_auth_proof, {"Proof", "veil.hs.auth.proof", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},

        /* Alerts (§8), key updates (§6.4), application messages (§7) */
        {&hf_alert_level, {"Level", "veil.alert.level", FT_UINT8, BASE_DEC, VALS(vs_alert_level), 0, NULL, HFILL}},
        {&hf_alert_code, {"Code", "veil.alert.code", FT_UINT8, BASE_DEC, VALS(vs_alert), 0, NULL, HFILL}},
        {&hf_key_update_epoch,
         {"New Epoch", "veil.key_update.epoch", FT_UINT8, BASE_DEC, NULL, 0, NULL, HFILL}},
        {&hf_app_kind, {"Kind", "veil.app.kind", FT_UINT8, BASE_DEC, VALS(vs_msg_kind), 0, NULL, HFILL}},
        {&hf_app_timestamp,
         {"Timestamp", "veil.app.timestamp", FT_ABSOLUTE_TIME, ABSOLUTE_TIME_UTC, NULL, 0,
          "Sender's time of sending", HFILL}},
        {&hf_app_text, {"Text", "veil.app.text", FT_STRING, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_app_payload, {"Payload", "veil.app.payload", FT_BYTES, BASE_NONE, NULL, 0, NULL, HFILL}},
        /* Service payloads (SERVICES.md §2.1, §3.1) */
        {&hf_chat_sender,
         {"Sender", "veil.chat.sender", FT_STRING, BASE_NONE, NULL, 0,
          "Name the server gives the sender (absent in client lines and service notices)", HFILL}},
        {&hf_chat_text, {"Text", "veil.chat.text", FT_STRING, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_bank_op,
         {"Operation", "veil.bank.op", FT_STRING, BASE_NONE, NULL, 0,
          "Request (DEPOSIT, WITHDRAW, BALANCE, HISTORY) or reply kind (OK, ERR, BALANCE, HISTORY)", HFILL}},
        {&hf_bank_request_id, {"Request ID", "veil.bank.request_id", FT_STRING, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_bank_amount, {"Amount", "veil.bank.amount", FT_STRING, BASE_NONE, NULL, 0, "As sent", HFILL}},
        {&hf_bank_balance, {"Balance", "veil.bank.balance", FT_STRING, BASE_NONE, NULL, 0, NULL, HFILL}},
        {&hf_bank_error, {"Error", "veil.bank.error", FT_STRING, BASE_NONE, NULL, 0, "ERR reply code", HFILL}},
        {&hf_bank_ok_op,
         {"Operation Done", "veil.bank.ok_op", FT_STRING, BASE_NONE, NULL, 0, "OK reply: DEPOSIT or WITHDRAW", HFILL}},
        {&hf_bank_replayed,
         {"Replayed", "veil.bank.replayed", FT_BOOLEAN, BASE_NONE, NULL, 0,
          "OK reply to a repeated request id: not applied again", HFILL}},
        {&hf_bank_count,
         {"Count", "veil.bank.count", FT_STRING, BASE_NONE, NULL, 0,
          "HISTORY: entries asked for (request) or listed (reply)", HFILL}},
    };

    static gint *ett[] = {&ett_veil, &ett_flags, &ett_hs, &ett_suites, &ett_key_share, &ett_alert, &ett_app,
                          &ett_key_update, &ett_chat, &ett_bank};

    static ei_register_info ei[] = {
        {&ei_malformed, {"veil.malformed", PI_MALFORMED, PI_ERROR, "Malformed record", EXPFILL}},
        {&ei_incomplete, {"veil.incomplete", PI_MALFORMED, PI_WARN, "Record incomplete", EXPFILL}},
        {&ei_bad_crc, {"veil.crc.bad", PI_CHECKSUM, PI_ERROR, "Bad CRC-32C", EXPFILL}},
        {&ei_auth_failed,
         {"veil.auth_failed", PI_DECRYPTION, PI_WARN,
          "Decryption failed: authentication tag or MAC wrong (wrong key, or the record was altered)", EXPFILL}},
        {&ei_unsupported,
         {"veil.unsupported", PI_UNDECODED, PI_NOTE,
          "Not decrypted: suite unknown, or the handshake is not in the capture", EXPFILL}},
        {&ei_seq, {"veil.seq.unexpected", PI_SEQUENCE, PI_WARN, "Unexpected sequence number", EXPFILL}},
        {&ei_fatal_alert, {"veil.alert.fatal", PI_RESPONSE_CODE, PI_WARN, "Fatal alert", EXPFILL}},
        {&ei_truncated,
         {"veil.session_truncated", PI_SECURITY, PI_WARN, "Session truncated: end of stream without close_notify",
          EXPFILL}},
        {&ei_plaintext_mode,
         {"veil.plaintext_mode", PI_SECURITY, PI_NOTE,
          "Plaintext mode: application data and alerts are neither encrypted nor authenticated", EXPFILL}},
        {&ei_no_rsa_key,
         {"veil.no_rsa_key", PI_DECRYPTION, PI_NOTE,
          "RSA key-transport session: set veil.rsa_key_file to the server's private key to decrypt it", EXPFILL}},
    };

    proto_veil = proto_register_protocol("Veil", "Veil", "veil");
    proto_register_field_array(proto_veil, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_veil);
    expert_register_field_array(em, ei, array_length(ei));

    veil_tcp_handle = register_dissector("veil", dissect_veil_tcp, proto_veil);
    veil_end_handle = create_dissector_handle(dissect_veil_end, proto_veil);
    register_postdissector(veil_end_handle);

    module_t *m = prefs_register_protocol(proto_veil, NULL);
    prefs_register_bool_preference(m, "desegment", "Reassemble Veil records spanning multiple TCP segments",
                                   "Whether the Veil dissector should reassemble records spanning multiple TCP "
                                   "segments. To use this option, you must also enable \"Allow subdissectors to "
                                   "reassemble TCP streams\" in the TCP protocol settings.",
                                   &pref_desegment);
    prefs_register_filename_preference(
        m, "keylog_file", "Key log file",
        "The NSS-style key log file written by veil-server or veil-client with --keylog (or "
        "$VEIL_KEYLOGFILE): lines VEIL_CLIENT_TRAFFIC_SECRET_0 / VEIL_SERVER_TRAFFIC_SECRET_0. It is read "
        "again when it grows or is replaced, so keys appended during a live capture are used.",
        &pref_keylog_path, FALSE);
    prefs_register_filename_preference(
        m, "rsa_key_file", "RSA private key file",
        "The server's RSA identity private key (PEM), for decrypting RSA key-transport sessions without a key "
        "log (PROTOCOL.md §10.3). Sessions that use X25519 or FFDHE2048 cannot be decrypted this way: they need "
        "the key log.",
        &pref_rsa_key_path, FALSE);

    register_init_routine(veil_init);
    register_cleanup_routine(veil_cleanup);
}

static void proto_reg_handoff_veil(void)
{
    dissector_add_uint_range_with_preference("tcp.port", "51424", veil_tcp_handle);
    heur_dissector_add("tcp", dissect_veil_heur_tcp, "Veil over TCP", "veil_tcp", proto_veil, HEURISTIC_ENABLE);

    /* The end-of-stream check reads the TCP flags of each frame. */
    hf_tcp_flags = proto_registrar_get_id_byname("tcp.flags");
    GArray *wanted = g_array_new(FALSE, FALSE, (guint)sizeof(int));
    if (hf_tcp_flags > 0)
        g_array_append_val(wanted, hf_tcp_flags);
    set_postdissector_wanted_hfids(veil_end_handle, wanted);
}

void plugin_register(void)
{
    static proto_plugin plug;
    plug.register_protoinfo = proto_register_veil;
    plug.register_handoff = proto_reg_handoff_veil;
    proto_register_plugin(&plug);
}
