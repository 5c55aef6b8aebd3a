/*
 * fuzz_handshake_msgs.c - the content decoders of codec.c on arbitrary bytes.
 * The first byte selects the decoder, the rest is its input:
 *   0 ClientHello body   1 ServerHello body   2 ServerVerify body
 *   3 Finished body      4 application message 5 alert   6 veil_hs_split
 *   7 ClientKeyExchange body   8 ClientVerify body   9 veil_ext_find (the
 *     next two bytes are the type looked for, the rest the extensions block)
 * Whatever decodes re-encodes to exactly the input (the decoders accept
 * nothing they could not have produced), and every field respects its limits.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "veil_internal.h"

static void same_as_input(veil_buf *b, uint8_t type, const uint8_t *body, size_t len)
{
    if (b->len != VEIL_HS_HEADER_LEN + len || b->base[0] != type ||
        (((size_t)b->base[1] << 16) | ((size_t)b->base[2] << 8) | b->base[3]) != len ||
        (len > 0 && memcmp(b->base + VEIL_HS_HEADER_LEN, body, len) != 0))
        abort();
    veil_buf_free(b);
}

static void is_error(int ret)
{
    if (ret != VEIL_PERR(VEIL_ALERT_DECODE_ERROR) && ret != VEIL_PERR(VEIL_ALERT_ILLEGAL_PARAMETER))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t sel = data[0];
    const uint8_t *p = data + 1;
    const size_t len = size - 1;
    veil_buf b;
    int ret;
    veil_buf_init(&b);

    switch (sel % 10) {
    case 0: {
        veil_client_hello ch;
        if ((ret = veil_client_hello_decode(p, len, &ch)) != 0) {
            is_error(ret);
            break;
        }
        if (ch.n_versions < 1 || ch.n_versions > VEIL_MAX_VERSIONS || ch.n_suites < 1 ||
            ch.n_suites > VEIL_MAX_SUITES || ch.n_shares < 1 || ch.n_shares > VEIL_MAX_SHARES ||
            (ch.mode != VEIL_MODE_ENCRYPTED && ch.mode != VEIL_MODE_PLAINTEXT) || ch.random == NULL)
            abort();
        for (unsigned i = 0; i < ch.n_shares; i++)
            for (unsigned j = 0; j < i; j++)
                if (ch.groups[i] == ch.groups[j])
                    abort();
        if (veil_client_hello_encode(&ch, &b) != 0)
            abort();
        same_as_input(&b, VEIL_HS_CLIENT_HELLO, p, len);
        break;
    }
    case 1: {
        veil_server_hello sh;
        if ((ret = veil_server_hello_decode(p, len, &sh)) != 0) {
            is_error(ret);
            break;
        }
        if (veil_server_hello_encode(&sh, &b) != 0)
            abort();
        same_as_input(&b, VEIL_HS_SERVER_HELLO, p, len);
        break;
    }
    case 2: {
        veil_server_verify sv;
        if ((ret = veil_server_verify_decode(p, len, &sv)) != 0) {
            is_error(ret);
            break;
        }
        if (veil_server_verify_encode(&sv, &b) != 0)
            abort();
        same_as_input(&b, VEIL_HS_SERVER_VERIFY, p, len);
        break;
    }
    case 3: {
        const uint8_t *vd = NULL;
        if ((ret = veil_finished_decode(p, len, &vd)) != 0) {
            is_error(ret);
            break;
        }
        if (len != VEIL_HASH_LEN || vd != p || veil_finished_encode(vd, &b) != 0)
            abort();
        same_as_input(&b, VEIL_HS_FINISHED, p, len);
        break;
    }
    case 4: {
        uint8_t kind;
        uint64_t ts;
        const uint8_t *msg;
        size_t msg_len;
        if ((ret = veil_message_decode(p, len, &kind, &ts, &msg, &msg_len)) != 0) {
            if (len >= VEIL_MSG_HEADER_LEN)
                abort();
            is_error(ret);
            break;
        }
        if (len < VEIL_MSG_HEADER_LEN || msg != p + VEIL_MSG_HEADER_LEN || msg_len != len - VEIL_MSG_HEADER_LEN ||
            kind != p[0])
            abort();
        break;
    }
    case 5: {
        uint8_t level, code;
        if ((ret = veil_alert_decode(p, len, &level, &code)) != 0) {
            is_error(ret);
            break;
        }
        if (len != 2 || (level == VEIL_ALERT_LEVEL_WARNING) != (code == VEIL_ALERT_CLOSE_NOTIFY) ||
            (level != VEIL_ALERT_LEVEL_WARNING && level != VEIL_ALERT_LEVEL_FATAL))
            abort();
        break;
    }
    case 7: {
        const uint8_t *ct;
        uint16_t ct_len;
        if ((ret = veil_client_key_exchange_decode(p, len, &ct, &ct_len)) != 0) {
            is_error(ret);
            break;
        }
        if (ct_len == 0 || veil_client_key_exchange_encode(ct, ct_len, &b) != 0)
            abort();
        same_as_input(&b, VEIL_HS_CLIENT_KEY_EXCHANGE, p, len);
        break;
    }
    case 8: {
        veil_client_verify cv;
        if ((ret = veil_client_verify_decode(p, len, &cv)) != 0) {
            is_error(ret);
            break;
        }
        if (veil_client_verify_encode(&cv, &b) != 0)
            abort();
        same_as_input(&b, VEIL_HS_CLIENT_VERIFY, p, len);
        break;
    }
    case 9: {
        const uint8_t *d;
        uint16_t n;
        if (len < 2)
            break;
        uint16_t type = (uint16_t)(p[0] << 8 | p[1]);
        if (veil_ext_find(p + 2, len - 2, type, &d, &n)) {
            /* The entry found lies inside the block and carries the type asked for. */
            if (d < p + 2 + 4 || d + n > p + len || d[-4] != p[0] || d[-3] != p[1] ||
                ((size_t)d[-2] << 8 | d[-1]) != n)
                abort();
        }
        break;
    }
    case 6: {
        uint8_t type;
        const uint8_t *body;
        size_t body_len;
        if ((ret = veil_hs_split(p, len, &type, &body, &body_len)) != 0) {
            is_error(ret);
            break;
        }
        if (len < VEIL_HS_HEADER_LEN || type != p[0] || body != p + VEIL_HS_HEADER_LEN ||
            body_len != len - VEIL_HS_HEADER_LEN)
            abort();
        break;
    }
    }
    veil_buf_free(&b);
    return 0;
}
