/*
 * fuzz_header.c - veil_header_decode (PROTOCOL.md §2.1) on arbitrary bytes.
 * A header that decodes satisfies every rule of §2.9 step 1 and re-encodes to
 * the same 16 bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "veil_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    veil_header h;
    int ret = veil_header_decode(data, size, &h);
    if (size < VEIL_HEADER_LEN) {
        if (ret != VEIL_ERR_NEED_MORE)
            abort();
        return 0;
    }
    if (ret != 0) {
        if (ret != VEIL_PERR(VEIL_ALERT_DECODE_ERROR) && ret != VEIL_PERR(VEIL_ALERT_PROTOCOL_VERSION) &&
            ret != VEIL_PERR(VEIL_ALERT_RECORD_OVERFLOW))
            abort();
        return 0;
    }
    if (data[0] != VEIL_MAGIC0 || data[1] != VEIL_MAGIC1 || h.version != VEIL_VERSION_1 ||
        h.type < VEIL_REC_HANDSHAKE || h.type > VEIL_REC_KEY_UPDATE || (h.flags & ~VEIL_FLAGS_KNOWN) != 0 ||
        h.length > VEIL_MAX_BODY)
        abort();
    if (!(h.flags & VEIL_FLAG_ENCRYPTED) && (h.epoch != 0 || h.length < 4))
        abort();
    uint8_t again[VEIL_HEADER_LEN];
    veil_header_encode(&h, again);
    if (memcmp(again, data, VEIL_HEADER_LEN) != 0)
        abort();
    return 0;
}
