/*
 * fuzz_server.c - a fresh server connection (deterministic RNG, fixed
 * identities) fed the input as the client's byte stream.  The first byte
 * selects the server configuration (fuzz_server_config: Ed25519 or RSA
 * identity; user, PSK or client signature required); the rest has the chunk
 * layout of fuzz_common.h.  The seeds are complete client streams, so the
 * fuzzer also reaches the encrypted state: user and client authentication,
 * application data, key_update, alerts, close.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_endpoint e;
    veil_config cfg;
    fuzz_chunks ch;
    if (size == 0)
        return 0;
    fuzz_server_config(&cfg, data[0]);
    fuzz_endpoint_new(&e, &cfg, "server");
    fuzz_chunks_parse(data + 1, size - 1, &ch);
    fuzz_drive(&e, &ch);
    fuzz_endpoint_free(&e);
    return 0;
}
