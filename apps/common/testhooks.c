/*
 * testhooks.c - TEST-ONLY determinism for the programs (docs/CAPTURE.md,
 * "Deterministic mode").  Compiled only when CMake is given
 * -DVEIL_TEST_HOOKS=ON; a default build contains none of this code and
 * ignores the variables below.
 *
 *   VEIL_TEST_SEED=STRING  vapp_random() returns a reproducible stream derived
 *                          from STRING and the program's name (so a server and
 *                          a client given the same seed still differ).  It is
 *                          SplitMix64: fast, reproducible, and NOT random.
 *   VEIL_TEST_CLOCK=MS     vapp_wall_ms() returns MS (UTC milliseconds since
 *                          1970) on every call: message timestamps and log
 *                          times are frozen.  The monotonic clock that drives
 *                          libproto's timers is untouched, so timeouts still
 *                          fire.
 *
 * captures/make.sh uses both to record the corpus byte for byte.  Each
 * program says on stderr, once, that a hook is active.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "veilapp.h"


static int g_seed_state; /* 0 unknown, 1 active, -1 off */
static uint64_t g_rng;
static int g_clock_state;
static uint64_t g_clock_ms;

static void announce(const char *what)
{
    fprintf(stderr, "%s: TEST HOOK ACTIVE: %s (VEIL_TEST_HOOKS build; never use it for real "
                    "traffic)\n",
            program_invocation_short_name, what);
}

/* FNV-1a, 64 bits: turns the seed text into a starting state. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* SplitMix64 (Steele, Lea, Flood 2014). */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int vapp_test_random(uint8_t *out, size_t len)
{
    if (g_seed_state == 0) {
        const char *seed = getenv("VEIL_TEST_SEED");
        if (seed == NULL || *seed == '\0') {
            g_seed_state = -1;
        } else {
            g_rng = fnv1a(fnv1a(0xcbf29ce484222325ull, seed), "/");
            g_rng = fnv1a(g_rng, program_invocation_short_name);
            g_seed_state = 1;
            announce("deterministic RNG from VEIL_TEST_SEED");
        }
    }
    if (g_seed_state < 0)
        return 1;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = splitmix64(&g_rng);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            out[i + j] = (uint8_t)(v >> (8 * j));
    }
    return 0;
}

int vapp_test_clock(uint64_t *ms)
{
    if (g_clock_state == 0) {
        const char *v = getenv("VEIL_TEST_CLOCK");
        unsigned long long t = 0;
        char *end = NULL;
        g_clock_state = -1;
        if (v != NULL && *v >= '0' && *v <= '9') {
            errno = 0;
            t = strtoull(v, &end, 10);
            if (errno == 0 && *end == '\0') {
                g_clock_ms = (uint64_t)t;
                g_clock_state = 1;
                announce("frozen wall clock from VEIL_TEST_CLOCK");
            }
        }
    }
    if (g_clock_state < 0)
        return 0;
    *ms = g_clock_ms;
    return 1;
}
