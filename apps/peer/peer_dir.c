/*
 * peer_dir.c - the veil-peer contact directory (docs/PEER.md, DIRECTORY):
 *
 *   {"version": 1,
 *    "contacts": [
 *      {"name": "bob", "ip": "127.0.0.1", "port": 51425, "secret": "..."},
 *      {"name": "carol", "ip": "::1", "port": 51426, "fingerprint": "sha256:..."}]}
 *
 * Parsed with jansson, then every field is checked with a message that names
 * the file, the contact and the field.  Shared secrets are stretched into
 * PSKs at load time; the clear text is wiped from the file buffer and, through
 * jansson's allocator hooks, from every string jansson copied it into.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peer.h"
#include "veilapp.h"

/* ------------------------------------------------------------------------ */
/* jansson allocations that are wiped when freed                            */

/* A 16-byte header (keeps malloc's alignment) records each block's size so
 * the free hook can wipe it: jansson copies every string of the document,
 * secrets included, into blocks of its own. */
#define WIPE_HDR 16

static void *wipe_malloc(size_t n)
{
    if (n > SIZE_MAX - WIPE_HDR)
        return NULL;
    unsigned char *b = malloc(n + WIPE_HDR);
    if (b == NULL)
        return NULL;
    memcpy(b, &n, sizeof n);
    return b + WIPE_HDR;
}

static void wipe_free(void *p)
{
    if (p == NULL)
        return;
    unsigned char *b = (unsigned char *)p - WIPE_HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    veil_memzero(p, n);
    free(b);
}

/* ------------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int peer_psk_parse(const char *hex, size_t len, uint8_t psk[VEIL_PSK_LEN])
{
    if (len != 2 * VEIL_PSK_LEN)
        return -1;
    for (size_t i = 0; i < VEIL_PSK_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            veil_memzero(psk, VEIL_PSK_LEN);
            return -1;
        }
        psk[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

const peer_contact *peer_directory_find(const peer_directory *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->c[i].name, name) == 0)
            return &d->c[i];
    return NULL;
}

void peer_directory_free(peer_directory *d)
{
    if (d->c != NULL) {
        veil_memzero(d->c, d->n * sizeof *d->c);
        free(d->c);
    }
    d->c = NULL;
    d->n = 0;
}

/* Error context: "PATH: contacts[i] (name): ". */
struct ctx {
    const char *path;
    size_t index;
    const char *name; /* NULL until known */
    char *err;
};

static void cerr(const struct ctx *x, const char *fmt, ...) VAPP_PRINTF(2, 3);
static void cerr(const struct ctx *x, const char *fmt, ...)
{
    char what[VAPP_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (x->name != NULL)
        vapp_errf(x->err, "%s: contacts[%zu] (\"%s\"): %s", x->path, x->index, x->name, what);
    else
        vapp_errf(x->err, "%s: contacts[%zu]: %s", x->path, x->index, what);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* A string field: NULL (and err set) if present with another type. */
static int get_string(const struct ctx *x, json_t *o, const char *key, const char **s, size_t *len)
{
    json_t *v = json_object_get(o, key);
    *s = NULL;
    *len = 0;
    if (v == NULL)
        return 0;
    if (!json_is_string(v)) {
        cerr(x, "\"%s\" must be a string, not %s", key, json_type_name(v));
        return -1;
    }
    *s = json_string_value(v);
    *len = json_string_length(v);
    if (memchr(*s, '\0', *len) != NULL) {
        cerr(x, "\"%s\" contains a NUL character (\\u0000)", key);
        return -1;
    }
    return 0;
}

static int parse_contact(const struct ctx *x0, json_t *o, const char *self, peer_contact *c)
{
    struct ctx x = *x0;
    if (!json_is_object(o)) {
        cerr(&x, "each contact must be an object, not %s", json_type_name(o));
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        static const char *const known[] = {"name",   "ip",          "port",   "secret",
                                            "psk",    "fingerprint", "comment"};
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            char shown[VAPP_SANITIZED_MAX(64)];
            vapp_sanitize((const uint8_t *)key, strlen(key) > 64 ? 64 : strlen(key), shown,
                          sizeof shown);
            cerr(&x,
                 "unknown field \"%s\" (known: name, ip, port, secret, psk, fingerprint, "
                 "comment)",
                 shown);
            return -1;
        }
    }

    const char *s;
    size_t len;
    if (get_string(&x, o, "name", &s, &len) != 0)
        return -1;
    if (s == NULL) {
        cerr(&x, "missing \"name\"");
        return -1;
    }
    if (!peer_name_ok(s, len)) {
        cerr(&x,
             "\"name\" must be 1 to %d characters among letters, digits, '.', '_' and '-'",
             PEER_MAX_NAME);
        return -1;
    }
    memcpy(c->name, s, len + 1);
    x.name = c->name;

    if (get_string(&x, o, "ip", &s, &len) != 0)
        return -1;
    if (s == NULL) {
        cerr(&x, "missing \"ip\"");
        return -1;
    }
    unsigned char addr[sizeof(struct in6_addr)];
    if (len >= sizeof c->ip ||
        (inet_pton(AF_INET, s, addr) != 1 && inet_pton(AF_INET6, s, addr) != 1)) {
        char shown[VAPP_SANITIZED_MAX(64)];
        vapp_sanitize((const uint8_t *)s, len > 64 ? 64 : len, shown, sizeof shown);
        cerr(&x, "\"ip\" must be a numeric IPv4 or IPv6 address such as 127.0.0.1 or ::1, not "
                 "\"%s\"",
             shown);
        return -1;
    }
    memcpy(c->ip, s, len + 1);

    v = json_object_get(o, "port");
    if (v == NULL) {
        cerr(&x, "missing \"port\"");
        return -1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
        cerr(&x, "\"port\" must be an integer from 1 to 65535%s%s",
             json_is_integer(v) ? "" : ", not ", json_is_integer(v) ? "" : json_type_name(v));
        return -1;
    }
    c->port = (uint16_t)json_integer_value(v);

    const char *secret, *pskhex, *fp;
    size_t secret_len, pskhex_len, fp_len;
    if (get_string(&x, o, "secret", &secret, &secret_len) != 0 ||
        get_string(&x, o, "psk", &pskhex, &pskhex_len) != 0 ||
        get_string(&x, o, "fingerprint", &fp, &fp_len) != 0 ||
        get_string(&x, o, "comment", &s, &len) != 0)
        return -1;
    if (secret != NULL && pskhex != NULL) {
        cerr(&x, "has both \"secret\" and \"psk\"; keep one");
        return -1;
    }
    if (secret != NULL) {
        if (secret_len == 0 || secret_len > PEER_MAX_SECRET) {
            cerr(&x, "\"secret\" must be 1 to %d bytes long", PEER_MAX_SECRET);
            return -1;
        }
        int r = veil_psk_stretch(secret, secret_len, c->psk);
        if (r != 0) {
            cerr(&x, "cannot stretch the secret: %s", veil_strerror(r));
            return -1;
        }
        c->has_psk = 1;
        c->short_secret = secret_len < PEER_MIN_SECRET_WARN;
    }
    if (pskhex != NULL) {
        if (peer_psk_parse(pskhex, pskhex_len, c->psk) != 0) {
            cerr(&x, "\"psk\" must be %d hex digits (as printed by veil-peer --stretch)",
                 2 * VEIL_PSK_LEN);
            return -1;
        }
        c->has_psk = 1;
    }
    if (fp != NULL) {
        if (veil_fingerprint_parse(fp, c->fp) != 0) {
            cerr(&x, "\"fingerprint\" must be \"sha256:\" and 64 hex digits, as printed by "
                     "veil-keygen");
            return -1;
        }
        c->has_fp = 1;
    }
    int is_self = self != NULL && strcmp(c->name, self) == 0;
    if (!c->has_psk && !c->has_fp && !is_self) {
        cerr(&x, "needs a \"secret\" (or \"psk\") or a \"fingerprint\" to be authenticated");
        return -1;
    }
    return 0;
}

int peer_directory_load(const char *path, const char *self, peer_directory *d, char *err)
{
    memset(d, 0, sizeof *d);
    /* Before any other jansson call; veil-peer is jansson's only user. */
    json_set_alloc_funcs(wipe_malloc, wipe_free);

    veil_buf file;
    veil_buf_init(&file);
    struct stat st;
    /* The mode is judged below, once it is known whether the file holds secrets. */
    if (vapp_read_file(path, "directory file", PEER_MAX_DIR_FILE, 0, &file, &st, err) != 0) {
        veil_buf_free(&file);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)file.base, file.len, JSON_REJECT_DUPLICATES, &jerr);
    veil_buf_free(&file); /* wipes */
    if (root == NULL) {
        vapp_errf(err, "%s: line %d, column %d: invalid JSON: %s", path, jerr.line, jerr.column,
                  jerr.text);
        return -1;
    }
    int ret = -1;
    if (!json_is_object(root)) {
        vapp_errf(err, "%s: the top level must be an object {\"version\": 1, \"contacts\": [...]}",
                  path);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "version") != 0 && strcmp(key, "contacts") != 0 &&
            strcmp(key, "comment") != 0) {
            char shown[VAPP_SANITIZED_MAX(64)];
            vapp_sanitize((const uint8_t *)key, strlen(key) > 64 ? 64 : strlen(key), shown,
                          sizeof shown);
            vapp_errf(err, "%s: unknown top-level field \"%s\" (known: version, contacts, comment)",
                      path, shown);
            goto done;
        }
    }
    v = json_object_get(root, "version");
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) != 1) {
        vapp_errf(err, "%s: \"version\" must be the integer 1%s", path,
                  v == NULL ? " (it is missing)" : "");
        goto done;
    }
    json_t *arr = json_object_get(root, "contacts");
    if (arr == NULL || !json_is_array(arr)) {
        vapp_errf(err, "%s: \"contacts\" must be an array of contacts%s", path,
                  arr == NULL ? " (it is missing)" : "");
        goto done;
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        vapp_errf(err, "%s: \"contacts\" is empty", path);
        goto done;
    }
    if (n > PEER_MAX_CONTACTS) {
        vapp_errf(err, "%s: more than %d contacts", path, PEER_MAX_CONTACTS);
        goto done;
    }
    /* Secrets in a file other users can read are treated as disclosed
       (as ssh does with private keys): refused, with the fix.  Checked
       before any secret is stretched. */
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        if (json_is_object(o) &&
            (json_object_get(o, "secret") != NULL || json_object_get(o, "psk") != NULL))
            d->holds_secrets = 1;
    }
    if (d->holds_secrets && (st.st_mode & 077) != 0) {
        vapp_errf(err,
                  "%s holds shared secrets but has mode %04o: other users can read it, so it is "
                  "refused; fix it with: chmod 600 %s",
                  path, (unsigned)(st.st_mode & 07777), path);
        goto done;
    }
    d->c = calloc(n, sizeof *d->c);
    if (d->c == NULL) {
        vapp_errf(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        struct ctx x = {.path = path, .index = i, .name = NULL, .err = err};
        peer_contact *c = &d->c[i];
        d->n = i + 1; /* so that free wipes what was stretched so far */
        if (parse_contact(&x, json_array_get(arr, i), self, c) != 0)
            goto done;
        /* Names differing only in case are refused: "Bob" beside "bob"
           would be a look-alike waiting to be confused. */
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(d->c[j].name, c->name) == 0) {
                x.name = c->name;
                cerr(&x, "the name is already used by contacts[%zu] (\"%s\")", j, d->c[j].name);
                goto done;
            }
            /* A key names its holder: one key, one contact. */
            if (c->has_fp && d->c[j].has_fp && memcmp(c->fp, d->c[j].fp, sizeof c->fp) == 0) {
                x.name = c->name;
                cerr(&x, "the fingerprint is already pinned for contacts[%zu] (\"%s\")", j,
                     d->c[j].name);
                goto done;
            }
        }
    }
    ret = 0;
done:
    json_decref(root);
    if (ret != 0)
        peer_directory_free(d);
    return ret;
}
