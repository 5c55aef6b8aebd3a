/*
 * gen_session.c - test fixture generator for the dissector tests: runs a
 * Veil client and server against each other in memory (libproto's public
 * API only) and writes what they sent as a pcap of one TCP connection over
 * loopback, with its keylog, for session variants the programs in apps/ do
 * not make: key updates, FFDHE2048 and several key shares, RSA key
 * transport, a service extension.
 *
 *     veil-gen-session OUT.pcap OUT.keys [options] [MESSAGE...]
 *       --plain              plaintext mode (default: encrypted)
 *       --suite N            offer only suite N (1, 2 or 3)
 *       --groups G[,G...]    client key shares, in order: x25519, ffdhe2048, rsa
 *       --rsa-key FILE       RSA server identity (2048 bits), its PEM written to FILE
 *       --rekey N            key update after N records per key
 *       --service NAME       ask for service NAME (the server offers msg and NAME)
 *       --no-close           end without close_notify (a truncated session)
 *       --no-acks            the server does not acknowledge texts (chat, bank)
 *       --chat               encode texts as chat lines (docs/SERVICES.md §2.1)
 *
 * A MESSAGE is a text the client sends; "S:TEXT" is one the server sends.
 * With --chat, a client's TEXT goes out with an empty name, and a server's
 * "S:NAME:TEXT" with the sender NAME (empty: a notice of the service).
 *
 * Test only: the random generator is a fixed-seed splitmix64, NOT a
 * cryptographic one, so runs are reproducible (except RSA key generation and
 * RSA-OAEP, which draw from OpenSSL's generator).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veil/veil.h>

#include "svc_wire.h"

#define MAX_MSGS 32
#define MAX_STEPS 1000

typedef struct side {
    veil_conn *conn;
    veil_buf out;
    uint64_t rng;
    int n_acks_due;
    size_t acks[MAX_MSGS];
    int peer_closed;
} side;

static FILE *keylog_file;

static int rng_cb(void *user, uint8_t *out, size_t len)
{
    side *s = user;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        out[i] = (uint8_t)(z ^ (z >> 31));
    }
    return 0;
}

static void keylog_cb(void *user, const char *line)
{
    (void)user;
    if (keylog_file != NULL)
        fprintf(keylog_file, "%s\n", line);
}

static int event_cb(void *user, const veil_event *ev)
{
    side *s = user;
    if (ev->type == VEIL_EV_MESSAGE && ev->kind == VEIL_MSG_TEXT && s->n_acks_due < MAX_MSGS)
        s->acks[s->n_acks_due++] = ev->len;
    if (ev->type == VEIL_EV_PEER_CLOSED)
        s->peer_closed = 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* pcap of one TCP connection 127.0.0.1:40000 -> 127.0.0.1:51424            */

static FILE *pcap;
static uint32_t tcp_seq[2] = {1000, 5000};
static uint32_t pcap_usec;

static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v);
}

static void le32(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fwrite(b, 1, 4, pcap);
}

/* One segment from dir (0 = client) with flags and payload. */
static void segment(int dir, uint8_t flags, const uint8_t *data, size_t len)
{
    static uint8_t pkt[14 + 20 + 20 + 65536];
    uint8_t *ip = pkt + 14, *tcp = ip + 20;
    size_t tlen = 20 + len;
    memset(pkt, 0, 14 + 40);
    pkt[12] = 0x08;
    ip[0] = 0x45;
    put16(ip + 2, (uint32_t)(20 + tlen));
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12] = ip[16] = 127;
    ip[15] = ip[19] = 1;
    put16(ip + 10, csum(ip, 20, 0));
    put16(tcp, dir == 0 ? 40000 : 51424);
    put16(tcp + 2, dir == 0 ? 51424 : 40000);
    put32(tcp + 4, tcp_seq[dir]);
    put32(tcp + 8, (flags & 0x10) ? tcp_seq[1 - dir] : 0);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    if (len > 0)
        memcpy(tcp + 20, data, len);
    uint32_t pseudo = 127 + 1 + 127 + 1 + 6 + (uint32_t)tlen;
    put16(tcp + 16, csum(tcp, tlen, pseudo));
    pcap_usec += 1000;
    le32(1700000000u + pcap_usec / 1000000u);
    le32(pcap_usec % 1000000u);
    le32((uint32_t)(14 + 20 + tlen));
    le32((uint32_t)(14 + 20 + tlen));
    fwrite(pkt, 1, 14 + 20 + tlen, pcap);
    tcp_seq[dir] += (uint32_t)len + ((flags & 0x03) ? 1 : 0);
}

/* Sends what s has queued as one segment (and its ACK), and feeds the peer. */
static int flush(side *s, side *peer, int dir, uint64_t now)
{
    if (s->out.len == 0)
        return 0;
    segment(dir, 0x18, s->out.base, s->out.len);
    segment(1 - dir, 0x10, NULL, 0);
    int ret = veil_conn_feed(peer->conn, s->out.base, s->out.len, now, &peer->out);
    veil_buf_consume(&s->out, s->out.len);
    return ret;
}

static uint16_t group_code(const char *name)
{
    uint16_t g = 0;
    if (veil_group_from_name(name, &g) != 0) {
        fprintf(stderr, "unknown group %s\n", name);
        exit(2);
    }
    return g;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT.pcap OUT.keys [options] [MESSAGE...]\n", argv[0]);
        return 2;
    }
    uint8_t mode = VEIL_MODE_ENCRYPTED;
    uint16_t suite = 0, groups[8];
    size_t n_groups = 0;
    const char *rsa_key = NULL, *service = NULL;
    uint64_t rekey = 0;
    int close_session = 1, n_msgs = 0, acks = 1, chat = 0;
    const char *msgs[MAX_MSGS];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--plain") == 0) {
            mode = VEIL_MODE_PLAINTEXT;
        } else if (strcmp(argv[i], "--suite") == 0 && i + 1 < argc) {
            suite = (uint16_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc) {
            char *list = argv[++i];
            for (char *tok = strtok(list, ","); tok != NULL && n_groups < 8; tok = strtok(NULL, ","))
                groups[n_groups++] = group_code(tok);
        } else if (strcmp(argv[i], "--rsa-key") == 0 && i + 1 < argc) {
            rsa_key = argv[++i];
        } else if (strcmp(argv[i], "--rekey") == 0 && i + 1 < argc) {
            rekey = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc) {
            service = argv[++i];
        } else if (strcmp(argv[i], "--no-close") == 0) {
            close_session = 0;
        } else if (strcmp(argv[i], "--no-acks") == 0) {
            acks = 0;
        } else if (strcmp(argv[i], "--chat") == 0) {
            chat = 1;
        } else if (n_msgs < MAX_MSGS) {
            msgs[n_msgs++] = argv[i];
        }
    }

    veil_identity *id = NULL;
    side cl = {.rng = 1}, sv = {.rng = 2};
    side idr = {.rng = 3};
    int ret = rsa_key != NULL ? veil_identity_generate_rsa(2048, &id) : veil_identity_generate(rng_cb, &idr, &id);
    if (ret != 0) {
        fprintf(stderr, "identity: %s\n", veil_strerror(ret));
        return 1;
    }
    if (rsa_key != NULL) {
        veil_buf pem;
        veil_buf_init(&pem);
        FILE *f = fopen(rsa_key, "w");
        if (f == NULL || veil_identity_to_pem(id, &pem) != 0 || fwrite(pem.base, 1, pem.len, f) != pem.len) {
            fprintf(stderr, "cannot write %s\n", rsa_key);
            return 1;
        }
        fclose(f);
        veil_buf_free(&pem);
    }
    keylog_file = fopen(argv[2], "w");
    pcap = fopen(argv[1], "wb");
    if (keylog_file == NULL || pcap == NULL) {
        perror("output");
        return 1;
    }
    le32(0xa1b2c3d4u);
    uint8_t ver[4] = {2, 0, 4, 0};
    fwrite(ver, 1, 4, pcap);
    le32(0);
    le32(0);
    le32(262144);
    le32(1); /* Ethernet */

    char server_services[80];
    snprintf(server_services, sizeof(server_services), "msg%s%s", service != NULL ? "," : "",
             service != NULL ? service : "");
    veil_config ccfg, scfg;
    veil_config_init(&ccfg, VEIL_ROLE_CLIENT);
    veil_config_init(&scfg, VEIL_ROLE_SERVER);
    ccfg.modes = mode;
    scfg.modes = VEIL_MODE_ENCRYPTED | VEIL_MODE_PLAINTEXT;
    scfg.identity = id;
    if (suite != 0) {
        ccfg.suites = &suite;
        ccfg.n_suites = 1;
    }
    if (n_groups > 0) {
        ccfg.groups = groups;
        ccfg.n_groups = n_groups;
    }
    ccfg.rekey_records = scfg.rekey_records = rekey;
    ccfg.service = service;
    scfg.service = server_services;
    veil_callbacks cb = {.random = rng_cb, .keylog = keylog_cb, .on_event = event_cb};
    cb.user = &cl;
    veil_buf_init(&cl.out);
    veil_buf_init(&sv.out);
    if ((ret = veil_conn_new(&ccfg, &cb, 0, &cl.conn)) != 0)
        goto fail;
    cb.user = &sv;
    if ((ret = veil_conn_new(&scfg, &cb, 0, &sv.conn)) != 0)
        goto fail;

    segment(0, 0x02, NULL, 0);
    segment(1, 0x12, NULL, 0);
    segment(0, 0x10, NULL, 0);
    uint64_t now = 1700000000000ull;
    if ((ret = veil_conn_start(cl.conn, &cl.out)) != 0)
        goto fail;
    /* Handshake: bounded ping-pong until both are done. */
    for (int step = 0; step < MAX_STEPS && !(veil_conn_handshake_done(cl.conn) && veil_conn_handshake_done(sv.conn));
         step++) {
        if ((ret = flush(&cl, &sv, 0, now)) != 0 || (ret = flush(&sv, &cl, 1, now)) != 0)
            goto fail;
        if (cl.out.len == 0 && sv.out.len == 0 &&
            !(veil_conn_handshake_done(cl.conn) && veil_conn_handshake_done(sv.conn)))
            break;
    }
    for (int i = 0; i < n_msgs; i++) {
        now++;
        int from_server = strncmp(msgs[i], "S:", 2) == 0;
        const char *text = msgs[i] + (from_server ? 2 : 0), *name = "";
        size_t name_len = 0;
        static uint8_t payload[VEIL_MAX_MESSAGE];
        size_t len = strlen(text);
        if (chat && from_server) {
            const char *colon = strchr(text, ':');
            if (colon == NULL) {
                fprintf(stderr, "--chat: a server message is S:NAME:TEXT\n");
                return 2;
            }
            name = text;
            name_len = (size_t)(colon - text);
            text = colon + 1;
            len = strlen(text);
        }
        if (chat) {
            len = svc_chat_encode(name, name_len, text, len, payload, sizeof(payload));
        } else if (len <= sizeof(payload)) {
            memcpy(payload, text, len);
        } else {
            len = 0;
        }
        if (len == 0) {
            fprintf(stderr, "message too long: %s\n", msgs[i]);
            return 2;
        }
        side *from = from_server ? &sv : &cl, *to = from_server ? &cl : &sv;
        if ((ret = veil_conn_send(from->conn, VEIL_MSG_TEXT, now, payload, len, &from->out)) != 0 ||
            (ret = flush(from, to, from_server, now)) != 0)
            goto fail;
        if (!acks)
            sv.n_acks_due = 0;
        for (int a = 0; a < sv.n_acks_due; a++) {
            char ack[64];
            snprintf(ack, sizeof(ack), "received %zu bytes", sv.acks[a]);
            if ((ret = veil_conn_send(sv.conn, VEIL_MSG_ACK, now, (const uint8_t *)ack, strlen(ack), &sv.out)) != 0)
                goto fail;
        }
        sv.n_acks_due = 0;
        if ((ret = flush(&sv, &cl, 1, now)) != 0)
            goto fail;
    }
    if (close_session) {
        if ((ret = veil_conn_close(cl.conn, &cl.out)) != 0 || (ret = flush(&cl, &sv, 0, now)) != 0)
            goto fail;
        if (sv.peer_closed && ((ret = veil_conn_close(sv.conn, &sv.out)) != 0 || (ret = flush(&sv, &cl, 1, now)) != 0))
            goto fail;
    }
    segment(1, 0x11, NULL, 0);
    segment(0, 0x11, NULL, 0);
    segment(1, 0x10, NULL, 0);
    fclose(pcap);
    fclose(keylog_file);
    veil_conn_free(cl.conn);
    veil_conn_free(sv.conn);
    veil_buf_free(&cl.out);
    veil_buf_free(&sv.out);
    veil_identity_free(id);
    return 0;
fail:
    fprintf(stderr, "session failed: %s\n", veil_strerror(ret));
    return 1;
}
