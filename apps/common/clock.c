/*
 * clock.c - monotonic and wall clocks, UTC formatting, number parsing.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "veilapp.h"

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t vapp_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

uint64_t vapp_wall_ms(void)
{
#ifdef VEIL_TEST_HOOKS
    uint64_t frozen;
    if (vapp_test_clock(&frozen))
        return frozen; /* VEIL_TEST_CLOCK (testhooks.c) */
#endif
    return clock_ms(CLOCK_REALTIME);
}

void vapp_format_utc(uint64_t ms, char out[VAPP_TIMESTR_LEN])
{
    /* 253402300799 = 9999-12-31T23:59:59Z: beyond that (a peer may send any
       64-bit timestamp) print the raw number rather than a bogus date. */
    const uint64_t max_s = 253402300799ull;
    uint64_t s = ms / 1000u;
    struct tm tm;
    time_t t = (time_t)s;
    if (s > max_s || gmtime_r(&t, &tm) == NULL) {
        snprintf(out, VAPP_TIMESTR_LEN, "@%llu", (unsigned long long)ms);
        return;
    }
    snprintf(out, VAPP_TIMESTR_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000u));
}

int vapp_parse_seconds(const char *s, double max_s, int zero_ok, uint64_t *ms)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return -1; /* no exponents, hex, inf or nan */
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > max_s)
        return -1;
    if (v == 0 && !zero_ok)
        return -1;
    uint64_t r = (uint64_t)(v * 1000.0 + 0.5);
    if (r == 0 && !zero_ok)
        r = 1; /* "0.0001" means "as soon as possible", not "never" */
    *ms = r;
    return 0;
}

int vapp_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
