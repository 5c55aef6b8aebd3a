/*
 * cli.c - command-line error reporting shared by the programs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "veilapp.h"

void vapp_errf(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, VAPP_ERRLEN, fmt, ap); /* truncation is fine: a message */
    va_end(ap);
}

void vapp_usage_error(const char *prog, const char *synopsis, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s (usage: %s; see '%s --help')\n", prog, msg, synopsis, prog);
    exit(VAPP_EXIT_USAGE);
}

void vapp_getopt_error(const char *prog, const char *synopsis, int c, int opt, char *const argv[],
                       int ind)
{
    const char *arg = ind > 0 ? argv[ind - 1] : "?";
    char shortopt[3] = {'-', (char)opt, '\0'};
    /* For a short option getopt reports the letter; argv may hold a group
       such as "-qx", so name the letter itself. */
    const char *name = (opt > ' ' && opt < 127) ? shortopt : arg;
    if (c == ':')
        vapp_usage_error(prog, synopsis, "option '%s' needs a value", name);
    vapp_usage_error(prog, synopsis, "unknown option '%s'", name);
}
