/*
 * svc.c - the service names of veil-server (docs/SERVICES.md).
 */
#include <stdio.h>
#include <string.h>

#include "svc.h"

static const struct {
    const char *name;
    int id;
} k_services[] = {
    {"msg", SVC_MSG},
    {"chat", SVC_CHAT},
    {"bank", SVC_BANK},
};
#define N_SERVICES (sizeof k_services / sizeof k_services[0])

int svc_from_name(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_SERVICES; i++)
        if (strcmp(name, k_services[i].name) == 0)
            return k_services[i].id;
    return SVC_NONE;
}

int svc_parse_list(const char *list, int *mask, char *canon, size_t canon_len, char *err)
{
    int m = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && *p == ' ')
            p++, n--;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        int id = SVC_NONE;
        for (size_t i = 0; i < N_SERVICES; i++)
            if (strlen(k_services[i].name) == n && memcmp(p, k_services[i].name, n) == 0)
                id = k_services[i].id;
        if (id == SVC_NONE) {
            vapp_errf(err, "unknown service '%.*s' (known: msg, chat, bank)", (int)(n > 40 ? 40 : n),
                      p);
            return -1;
        }
        m |= id;
        if (end == NULL)
            break;
        p = end + 1;
    }
    canon[0] = '\0';
    for (size_t i = 0; i < N_SERVICES; i++) {
        if (!(m & k_services[i].id))
            continue;
        size_t l = strlen(canon);
        snprintf(canon + l, canon_len - l, "%s%s", l ? "," : "", k_services[i].name);
    }
    *mask = m;
    return 0;
}
