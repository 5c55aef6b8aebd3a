/*
 * keyschedule.c - HKDF-SHA256 key schedule, PROTOCOL.md §5.
 *
 *   ikm ──HKDF-Extract(salt = PSK or 0^32)──> hs
 *   hs ──"c hs"/"s hs", th_hs──> c_hs, s_hs ──"finished"──> finished keys
 *   hs ──"c ap"/"s ap", th_ap──> c_ap_0, s_ap_0 ──"upd"──> _1 ...
 * th_hs = H(CH||SH) for DH groups, H(CH||SH||SV||CKE) for RSA transport;
 * th_ap = H(CH||SH||SV||SF) for DH groups, H(CH||SH||SV||CKE) for RSA transport.
 */
#include <string.h>

#include "veil_internal.h"

#define LABEL_PREFIX "veil1 "

/* HKDF-Expand-Label: info = u16 L || u8 len || "veil1 " label || u8 ctx_len || ctx */
int veil_expand_label(const uint8_t secret[VEIL_SECRET_LEN], const char *label, const uint8_t *ctx,
                      size_t ctx_len, uint8_t *out, size_t out_len)
{
    uint8_t info[2 + 1 + 255 + 1 + 255];
    size_t label_len = strlen(label), prefix_len = sizeof(LABEL_PREFIX) - 1;
    if (prefix_len + label_len > 255 || ctx_len > 255 || out_len > 0xFFFF)
        return VEIL_ERR_INVALID_ARG;
    size_t n = 0;
    veil_put_u16(info, (uint16_t)out_len);
    n += 2;
    info[n++] = (uint8_t)(prefix_len + label_len);
    memcpy(info + n, LABEL_PREFIX, prefix_len);
    n += prefix_len;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = (uint8_t)ctx_len;
    if (ctx_len != 0)
        memcpy(info + n, ctx, ctx_len);
    n += ctx_len;
    return veil_hkdf_expand(secret, info, n, out, out_len);
}

int veil_schedule_handshake(veil_schedule *ks, const uint8_t *ikm, size_t ikm_len, const uint8_t *psk,
                            const uint8_t th1[VEIL_HASH_LEN])
{
    uint8_t c_hs[VEIL_SECRET_LEN], s_hs[VEIL_SECRET_LEN];
    int ret;
    if ((ret = veil_hkdf_extract(psk, psk != NULL ? VEIL_PSK_LEN : 0, ikm, ikm_len, ks->hs)) != 0 ||
        (ret = veil_expand_label(ks->hs, "c hs", th1, VEIL_HASH_LEN, c_hs, sizeof(c_hs))) != 0 ||
        (ret = veil_expand_label(ks->hs, "s hs", th1, VEIL_HASH_LEN, s_hs, sizeof(s_hs))) != 0 ||
        (ret = veil_expand_label(c_hs, "finished", NULL, 0, ks->c_finished_key, VEIL_SECRET_LEN)) != 0 ||
        (ret = veil_expand_label(s_hs, "finished", NULL, 0, ks->s_finished_key, VEIL_SECRET_LEN)) != 0)
        veil_schedule_wipe(ks);
    veil_memzero(c_hs, sizeof(c_hs));
    veil_memzero(s_hs, sizeof(s_hs));
    return ret;
}

int veil_schedule_traffic(veil_schedule *ks, const uint8_t th2[VEIL_HASH_LEN])
{
    int ret;
    if ((ret = veil_expand_label(ks->hs, "c ap", th2, VEIL_HASH_LEN, ks->c_ap, VEIL_SECRET_LEN)) != 0 ||
        (ret = veil_expand_label(ks->hs, "s ap", th2, VEIL_HASH_LEN, ks->s_ap, VEIL_SECRET_LEN)) != 0)
        return ret;
    veil_memzero(ks->hs, sizeof(ks->hs));
    return 0;
}

int veil_secret_update(uint8_t secret[VEIL_SECRET_LEN])
{
    uint8_t next[VEIL_SECRET_LEN];
    int ret = veil_expand_label(secret, "upd", NULL, 0, next, sizeof(next));
    if (ret == 0)
        memcpy(secret, next, sizeof(next));
    veil_memzero(next, sizeof(next));
    return ret;
}

void veil_schedule_wipe(veil_schedule *ks) { veil_memzero(ks, sizeof(*ks)); }

/* PROTOCOL.md §4.13: SaltedPassword, ClientKey, StoredKey, ServerKey as in SCRAM (RFC 5802). */
int veil_user_verifier_make(const char *password, size_t password_len, const uint8_t salt[VEIL_SCRAM_SALT_LEN],
                            uint32_t iterations, veil_user_verifier *out)
{
    uint8_t salted[32], client_key[32];
    int ret;
    if (password == NULL || iterations < VEIL_SCRAM_MIN_ITERATIONS)
        return VEIL_ERR_INVALID_ARG;
    memcpy(out->salt, salt, VEIL_SCRAM_SALT_LEN);
    out->iterations = iterations;
    if ((ret = veil_pbkdf2_sha256((const uint8_t *)password, password_len, salt, VEIL_SCRAM_SALT_LEN, iterations,
                                  salted, sizeof(salted))) == 0 &&
        (ret = veil_hmac_sha256(salted, sizeof(salted), (const uint8_t *)"Client Key", 10, client_key)) == 0 &&
        (ret = veil_sha256(client_key, sizeof(client_key), out->stored_key)) == 0)
        ret = veil_hmac_sha256(salted, sizeof(salted), (const uint8_t *)"Server Key", 10, out->server_key);
    veil_memzero(salted, sizeof(salted));
    veil_memzero(client_key, sizeof(client_key));
    return ret;
}

int veil_psk_stretch(const char *secret, size_t secret_len, uint8_t psk[VEIL_PSK_LEN])
{
    static const char salt[] = "veil psk v1";
    if (secret == NULL || secret_len == 0)
        return VEIL_ERR_INVALID_ARG;
    return veil_pbkdf2_sha256((const uint8_t *)secret, secret_len, (const uint8_t *)salt, sizeof(salt) - 1,
                              VEIL_PSK_ITERATIONS, psk, VEIL_PSK_LEN);
}
