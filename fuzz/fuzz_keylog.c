/*
 * fuzz_keylog.c - veil_keylog_add_text on arbitrary text, then lookups; and a
 * format -> parse round trip with a random and a secret taken from the input.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "veil_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    veil_keylog *kl;
    uint8_t secret[VEIL_SECRET_LEN];
    if (veil_keylog_new(&kl) != 0)
        return 0;
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    size_t bad = veil_keylog_add_text(kl, (const char *)data, size);
    if (bad > lines + 1 || veil_keylog_count(kl) > lines + 1)
        abort();
    if (size >= VEIL_RANDOM_LEN)
        for (int dir = 0; dir < 2; dir++) {
            int ret = veil_keylog_find(kl, data, dir, secret);
            if (ret != 0 && ret != VEIL_ERR_NO_KEY)
                abort();
        }
    /* Whatever the table holds, a formatted line is read back exactly. */
    if (size >= VEIL_RANDOM_LEN + VEIL_SECRET_LEN) {
        char line[160];
        int dir = data[size - 1] & 1;
        veil_keylog_format(dir ? VEIL_KEYLOG_SERVER_TRAFFIC : VEIL_KEYLOG_CLIENT_TRAFFIC, data,
                           data + VEIL_RANDOM_LEN, line);
        size_t before = veil_keylog_count(kl);
        if (veil_keylog_add_line(kl, line, strlen(line)) != 0 ||
            veil_keylog_find(kl, data, dir, secret) != 0 ||
            memcmp(secret, data + VEIL_RANDOM_LEN, VEIL_SECRET_LEN) != 0 || veil_keylog_count(kl) < before ||
            veil_keylog_count(kl) > before + 1)
            abort();
    }
    veil_keylog_free(kl);
    return 0;
}
