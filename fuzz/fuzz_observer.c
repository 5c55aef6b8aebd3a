/*
 * fuzz_observer.c - veil_observer_feed on both directions of a session, with a
 * keylog that holds the secrets of the seed sessions and the RSA server key
 * (so decryption, key updates and content parsing are reached).  The input is a list of
 * segments, each a control byte c and then (c & 0x7F) + 1 bytes for
 * direction c >> 7 (0 client to server, 1 server to client).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "veil_internal.h"

static veil_keylog *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (veil_keylog_new(&keys) != 0)
        abort();
    size_t encrypted = 0;
    for (unsigned sel = 0; sel < FUZZ_N_CLIENT_CONFIGS; sel++) {
        fuzz_session s;
        if (fuzz_run_session(sel, &s) != 0)
            abort();
        for (int i = 0; i < s.n_keylog; i++)
            if (veil_keylog_add_line(keys, s.keylog[i], strlen(s.keylog[i])) != 0)
                abort();
        encrypted += fuzz_client_encrypts(sel) != 0;
        fuzz_session_free(&s);
    }
    if (veil_keylog_count(keys) != encrypted) /* one client random per configuration */
        abort();
    return 0;
}

static volatile uint8_t sink;

static void touch(const uint8_t *p, size_t n)
{
    if (n > 0 && p == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        sink ^= p[i];
}

static int on_record(void *user, const veil_observed_record *rec)
{
    (void)user;
    if (rec->dir != 0 && rec->dir != 1)
        abort();
    touch(rec->body, rec->hdr.length);
    switch (rec->status) {
    case VEIL_BODY_PLAINTEXT:
    case VEIL_BODY_DECRYPTED:
        if (rec->content == NULL || rec->content_len > VEIL_MAX_BODY)
            abort();
        touch(rec->content, rec->content_len);
        break;
    case VEIL_BODY_BAD_CRC:
    case VEIL_BODY_NO_KEY:
    case VEIL_BODY_AUTH_FAILED:
    case VEIL_BODY_UNSUPPORTED:
    case VEIL_BODY_MALFORMED:
        break;
    default:
        abort();
    }
    if (rec->seq_ok != (rec->hdr.seq == rec->seq_expected))
        abort();
    if (rec->content != NULL && rec->parse_error == 0) {
        touch(rec->hello.key_share, rec->hello.key_share_len);
        touch(rec->hello.identity_spki, rec->hello.identity_spki_len);
        touch(rec->hs_body, rec->hs_body_len);
        touch(rec->msg_data, rec->msg_len);
    }
    (void)veil_body_status_name(rec->status);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    veil_observer *o;
    bool desync[2] = {false, false};
    if (veil_observer_new(keys, &o) != 0)
        return 0;
    /* RSA key-transport sessions are readable with the server's key alone. */
    veil_observer_set_rsa_identity(o, fuzz_rsa_identity());
    size_t off = 0;
    while (off < size) {
        int dir = data[off] >> 7;
        size_t n = (size_t)(data[off] & 0x7F) + 1;
        off++;
        if (n > size - off)
            n = size - off;
        int ret = veil_observer_feed(o, dir, data + off, n, on_record, NULL);
        off += n;
        if (desync[dir]) {
            /* A desynchronised direction ignores everything after. */
            if (ret != 0 || veil_observer_pending(o, dir) != 0)
                abort();
        } else if (ret != 0) {
            if (ret == VEIL_ERR_NOMEM)
                break;
            if (ret < VEIL_ERR_ALERT_MIN || ret >= 0)
                abort();
            desync[dir] = true;
        }
        if (veil_observer_pending(o, dir) >= VEIL_MAX_RECORD)
            abort(); /* never more than one incomplete record buffered */
    }
    (void)veil_observer_closed(o, 0);
    (void)veil_observer_closed(o, 1);
    veil_observer_free(o);
    return 0;
}
