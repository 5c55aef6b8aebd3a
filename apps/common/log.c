/*
 * log.c - one line per event on stderr: "<ISO-8601 UTC> <LEVEL> <message>".
 */
#include <stdio.h>
#include <string.h>

#include "veilapp.h"

static int g_level = VAPP_LOG_INFO;
static void (*g_hook)(void *user, int before);
static void *g_hook_user;

void vapp_log_set_hook(void (*hook)(void *user, int before), void *user)
{
    g_hook = hook;
    g_hook_user = user;
}

void vapp_log_set_level(int level) { g_level = level; }

int vapp_log_enabled(int level) { return level <= g_level; }

void vapp_vlog(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
    if (level > g_level)
        return;
    if (level < 0)
        level = 0;
    if (level > VAPP_LOG_DEBUG)
        level = VAPP_LOG_DEBUG;
    char ts[VAPP_TIMESTR_LEN];
    vapp_format_utc(vapp_wall_ms(), ts);
    /* Build the whole line first so it reaches stderr in one write and lines
       from concurrent processes sharing a log file do not interleave. */
    char line[2048];
    int n = snprintf(line, sizeof line, "%s %s ", ts, names[level]);
    if (n < 0)
        return;
    size_t used = (size_t)n;
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    if (m < 0)
        return;
    used += (size_t)m;
    if (used > sizeof line - 2)
        used = sizeof line - 2; /* truncated */
    /* A message must never span lines: callers sanitise peer data, and
       this is the last line of defence for everything else. */
    for (size_t i = 0; i < used; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[used++] = '\n';
    if (g_hook != NULL)
        g_hook(g_hook_user, 1);
    fwrite(line, 1, used, stderr);
    fflush(stderr);
    if (g_hook != NULL)
        g_hook(g_hook_user, 0);
}

void vapp_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vapp_vlog(level, fmt, ap);
    va_end(ap);
}
