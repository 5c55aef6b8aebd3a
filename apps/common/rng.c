/*
 * rng.c - the RNG callback handed to libproto: getrandom(2), nothing else.
 */
#include <errno.h>
#include <sys/random.h>

#include "veilapp.h"

int vapp_random(void *user, uint8_t *out, size_t len)
{
    (void)user;
#ifdef VEIL_TEST_HOOKS
    if (vapp_test_random(out, len) == 0)
        return 0; /* VEIL_TEST_SEED: reproducible, not random (testhooks.c) */
#endif
    size_t done = 0;
    /* getrandom returns at most 32 MiB per call and may be interrupted by a
       signal before the pool is ready; each pass makes progress or fails. */
    for (unsigned tries = 0; done < len && tries < 64; tries++) {
        ssize_t n = getrandom(out + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return done == len ? 0 : -1;
}
