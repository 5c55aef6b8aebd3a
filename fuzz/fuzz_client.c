/*
 * fuzz_client.c - a client connection, after veil_conn_start, fed the input as
 * the server's byte stream.  The first byte selects the client configuration
 * (fuzz_client_config: all suites, one suite each, plaintext); the rest has
 * the chunk layout of fuzz_common.h.  The seeds are complete server streams
 * answering exactly that client's ClientHello.
 */
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_endpoint e;
    veil_config cfg;
    fuzz_chunks ch;
    if (size == 0)
        return 0;
    fuzz_client_config(&cfg, data[0]);
    fuzz_endpoint_new(&e, &cfg, fuzz_client_label(data[0]));
    if (veil_conn_start(e.conn, &e.out) != 0)
        abort();
    fuzz_check_records(e.out.base, e.out.len);
    e.out.len = 0;
    fuzz_chunks_parse(data + 1, size - 1, &ch);
    fuzz_drive(&e, &ch);
    fuzz_endpoint_free(&e);
    return 0;
}
