/*
 * svc_auth.c - veil-server's user authentication policy (docs/SERVICES.md
 * §1).  libproto does the cryptography (PROTOCOL.md §4.13); this file
 * decides what surrounds it:
 *
 *  - the user directory (--users FILE, apps/common/userdir.h), reloaded
 *    when the file changes, so veil-user add/del take effect without a
 *    restart;
 *  - the decoy key, from which libproto derives the salt it shows for an
 *    unknown user.  It is derived from the identity key, so it is the same
 *    after a restart: a salt that changed at each restart would tell an
 *    attacker "this user does not exist" (a real user's salt never does);
 *  - a failed login is answered after AUTH_FAIL_DELAY_MS (veil-server.c
 *    holds the alert back without blocking anybody else);
 *  - rate limits: at most N failures per user name and M per address
 *    (IPv4 address, IPv6 /64) within AUTH_WINDOW_MS; beyond that, logins
 *    for that name, and sessions from that address, are refused at once.
 *    A refused attempt does not count, so the lock ends AUTH_WINDOW_MS
 *    after the last real failure.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc.h"
#include "userdir.h"

#define RL_MAX_ENTRIES 4096 /* names or addresses remembered per table */
#define RELOAD_EVERY_MS 1000

/* Failures of one key (a user name or an address) within the window. */
struct rl_entry {
    char key[AUTH_ADDR_LEN > VEIL_MAX_USER_NAME + 1 ? AUTH_ADDR_LEN : VEIL_MAX_USER_NAME + 1];
    uint64_t last;   /* newest failure */
    unsigned n;      /* timestamps held in t (at most limit) */
    unsigned head;   /* next slot of the ring */
    uint64_t *t;     /* ring of the latest failures */
};

struct rl_table {
    const char *what; /* "user", "address" */
    unsigned limit;
    struct rl_entry *e;
    size_t n;
};

static struct {
    vapp_userdir users;
    uint64_t last_reload;
    uint8_t decoy[32];
    struct rl_table by_user, by_addr;
} g_auth;

/* ------------------------------------------------------------------------ */
/* Rate limits                                                              */

static struct rl_entry *rl_find(struct rl_table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    return NULL;
}

/* Failures of key within the window ending at now. */
static unsigned rl_count(struct rl_table *t, const char *key, uint64_t now)
{
    struct rl_entry *e = rl_find(t, key);
    if (e == NULL)
        return 0;
    unsigned c = 0;
    for (unsigned i = 0; i < e->n; i++)
        c += e->t[i] + AUTH_WINDOW_MS > now;
    return c;
}

static void rl_drop(struct rl_table *t, size_t i)
{
    free(t->e[i].t);
    t->e[i] = t->e[--t->n];
}

/* Records a failure of key at now; returns the count within the window. */
static unsigned rl_add(struct rl_table *t, const char *key, uint64_t now)
{
    struct rl_entry *e = rl_find(t, key);
    if (e == NULL) {
        if (t->n == RL_MAX_ENTRIES) {
            /* Forget keys whose failures are all out of the window; if none,
               the one whose last failure is oldest. */
            size_t oldest = 0;
            for (size_t i = t->n; i-- > 0;) {
                if (t->e[i].last + AUTH_WINDOW_MS <= now) {
                    rl_drop(t, i);
                    continue;
                }
                if (t->e[i].last < t->e[oldest].last)
                    oldest = i;
            }
            if (t->n == RL_MAX_ENTRIES)
                rl_drop(t, oldest);
        }
        if (t->e == NULL) {
            t->e = calloc(RL_MAX_ENTRIES, sizeof *t->e);
            if (t->e == NULL)
                return 0;
        }
        e = &t->e[t->n];
        memset(e, 0, sizeof *e);
        e->t = calloc(t->limit, sizeof *e->t);
        if (e->t == NULL)
            return 0;
        snprintf(e->key, sizeof e->key, "%s", key);
        t->n++;
    }
    e->t[e->head] = now;
    e->head = (e->head + 1) % t->limit;
    if (e->n < t->limit)
        e->n++;
    e->last = now;
    return rl_count(t, key, now);
}

static void rl_free(struct rl_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].t);
    free(t->e);
    t->e = NULL;
    t->n = 0;
}

/* ------------------------------------------------------------------------ */

int auth_init(const char *users_path, const veil_identity *id, unsigned user_limit,
              unsigned addr_limit, char *err)
{
    vapp_userdir_init(&g_auth.users);
    int r = vapp_userdir_load(&g_auth.users, users_path, err);
    if (r == -2) {
        vapp_errf(err, "no user directory at %s (create it with: veil-user -f %s add NAME)",
                  users_path, users_path);
        return -1;
    }
    if (r != 0)
        return -1;
    g_auth.by_user.what = "user";
    g_auth.by_user.limit = user_limit;
    g_auth.by_addr.what = "address";
    g_auth.by_addr.limit = addr_limit;

    /* decoy key = PRF(identity private key) with a label of its own:
       ServerKey of PBKDF2-HMAC-SHA256(PEM, "veil decoy key", 4096), i.e.
       HMAC(SaltedPassword, "Server Key"), through the public API. */
    static const uint8_t label[VEIL_SCRAM_SALT_LEN] = "veil decoy key";
    veil_buf pem;
    veil_buf_init(&pem);
    veil_user_verifier v;
    int ok = veil_identity_to_pem(id, &pem) == 0 &&
             veil_user_verifier_make((const char *)pem.base, pem.len, label,
                                     VEIL_SCRAM_MIN_ITERATIONS, &v) == 0;
    veil_buf_free(&pem);
    if (!ok) {
        vapp_errf(err, "cannot derive the decoy key from the identity");
        vapp_userdir_free(&g_auth.users);
        return -1;
    }
    memcpy(g_auth.decoy, v.server_key, sizeof g_auth.decoy);
    veil_memzero(&v, sizeof v);
    return 0;
}

void auth_free(void)
{
    vapp_userdir_free(&g_auth.users);
    rl_free(&g_auth.by_user);
    rl_free(&g_auth.by_addr);
    veil_memzero(g_auth.decoy, sizeof g_auth.decoy);
}

const uint8_t *auth_decoy_key(void) { return g_auth.decoy; }

void auth_addr_key(const struct sockaddr *sa, socklen_t len, char out[AUTH_ADDR_LEN])
{
    snprintf(out, AUTH_ADDR_LEN, "?");
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, out, AUTH_ADDR_LEN);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        struct in6_addr a = s6->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], out, AUTH_ADDR_LEN);
            return;
        }
        memset(&a.s6_addr[8], 0, 8); /* the /64 */
        char buf[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a, buf, sizeof buf) != NULL)
            snprintf(out, AUTH_ADDR_LEN, "%s/64", buf);
    }
}

int auth_addr_blocked(const char *addr, uint64_t now_ms)
{
    return rl_count(&g_auth.by_addr, addr, now_ms) >= g_auth.by_addr.limit;
}

static void maybe_reload(uint64_t now)
{
    if (g_auth.last_reload != 0 && now - g_auth.last_reload < RELOAD_EVERY_MS)
        return;
    g_auth.last_reload = now;
    char err[VAPP_ERRLEN];
    int r = vapp_userdir_reload(&g_auth.users, err);
    if (r == 1)
        vapp_log(VAPP_LOG_INFO, "user directory %s reloaded: %zu user%s", g_auth.users.path,
                 g_auth.users.n, g_auth.users.n == 1 ? "" : "s");
    else if (r < 0)
        vapp_log(VAPP_LOG_WARN, "user directory not reloaded (the users loaded before stay): %s",
                 err);
}

int auth_lookup(const char *name, const char *addr, uint64_t now_ms, veil_user_verifier *v,
                auth_attempt *a)
{
    maybe_reload(now_ms);
    snprintf(a->name, sizeof a->name, "%s", name);
    const vapp_user *u = vapp_userdir_find(&g_auth.users, name);
    a->known = u != NULL;
    a->blocked = rl_count(&g_auth.by_user, name, now_ms) >= g_auth.by_user.limit ||
                 auth_addr_blocked(addr, now_ms);
    if (u == NULL)
        return -1; /* libproto's decoy */
    *v = u->verifier;
    if (a->blocked) {
        /* Same salt and iterations as always; keys nobody can match. */
        if (vapp_random(NULL, v->stored_key, sizeof v->stored_key) != 0 ||
            vapp_random(NULL, v->server_key, sizeof v->server_key) != 0) {
            veil_memzero(v, sizeof *v);
            return -1;
        }
    }
    return 0;
}

uint64_t auth_failed(const auth_attempt *a, const char *addr, const char *peer, unsigned long id,
                     uint64_t now_ms)
{
    const char *name = a->name[0] ? a->name : NULL;
    if (a->blocked) {
        vapp_log(VAPP_LOG_WARN,
                 "#%lu %s login refused%s%s%s: too many failed logins in the last %d s (for the "
                 "user or from %s); sent auth_failed at once",
                 id, peer, name ? " for user '" : "", name ? name : "", name ? "'" : "",
                 AUTH_WINDOW_MS / 1000, addr);
        return 0;
    }
    unsigned nu = name ? rl_add(&g_auth.by_user, name, now_ms) : 0;
    unsigned na = rl_add(&g_auth.by_addr, addr, now_ms);
    if (name != NULL)
        vapp_log(VAPP_LOG_WARN,
                 "#%lu %s authentication failed for user '%s' (%s); auth_failed sent after %d ms; "
                 "failures in the last %d s: user %u/%u, address %s %u/%u",
                 id, peer, name, a->known ? "wrong password" : "no such user", AUTH_FAIL_DELAY_MS,
                 AUTH_WINDOW_MS / 1000, nu, g_auth.by_user.limit, addr, na, g_auth.by_addr.limit);
    else
        vapp_log(VAPP_LOG_WARN,
                 "#%lu %s authentication failed: no user name given (this server requires "
                 "one); auth_failed sent after %d ms; failures in the last %d s: address %s %u/%u",
                 id, peer, AUTH_FAIL_DELAY_MS, AUTH_WINDOW_MS / 1000, addr, na,
                 g_auth.by_addr.limit);
    if (name != NULL && nu == g_auth.by_user.limit)
        vapp_log(VAPP_LOG_WARN,
                 "user '%s' reached %u failed logins in %d s: its logins are refused until the "
                 "failures age out",
                 name, nu, AUTH_WINDOW_MS / 1000);
    if (na == g_auth.by_addr.limit)
        vapp_log(VAPP_LOG_WARN,
                 "address %s reached %u failed logins in %d s: its sessions are refused until the "
                 "failures age out",
                 addr, na, AUTH_WINDOW_MS / 1000);
    return AUTH_FAIL_DELAY_MS;
}
