/*
 * userdir.c - the user directory file (userdir.h): strict JSON in, sorted
 * JSON out, written atomically with mode 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "userdir.h"
#include "veilapp.h"

_Static_assert(sizeof(((veil_user_verifier *)0)->stored_key) == 32, "64 hex digits");
_Static_assert(sizeof(((veil_user_verifier *)0)->server_key) == 32, "64 hex digits");

int vapp_user_name_valid(const char *name)
{
    if (name == NULL)
        return 0;
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        if (n >= VEIL_MAX_USER_NAME)
            return 0;
        char c = name[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1;
}

int vapp_userdir_default_path(char *out, size_t outlen, char *err)
{
    char dir[PATH_MAX];
    if (vapp_config_dir(dir, sizeof dir, err) != 0)
        return -1;
    int n = snprintf(out, outlen, "%s/users.json", dir);
    if (n < 0 || (size_t)n >= outlen) {
        vapp_errf(err, "home directory path too long");
        return -1;
    }
    return 0;
}

void vapp_userdir_init(vapp_userdir *d) { memset(d, 0, sizeof *d); }

void vapp_userdir_free(vapp_userdir *d)
{
    if (d->users != NULL) {
        veil_memzero(d->users, d->cap * sizeof *d->users);
        free(d->users);
    }
    vapp_userdir_init(d);
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                   */

/* Index of name, or -(insertion point) - 1. */
static long find_index(const vapp_userdir *d, const char *name)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->users[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

const vapp_user *vapp_userdir_find(const vapp_userdir *d, const char *name)
{
    if (d == NULL || name == NULL || d->n == 0)
        return NULL;
    long i = find_index(d, name);
    return i >= 0 ? &d->users[i] : NULL;
}

int vapp_userdir_lookup(void *user, const char *name, veil_user_verifier *v)
{
    const vapp_user *u = vapp_userdir_find(user, name);
    if (u == NULL)
        return -1;
    *v = u->verifier;
    return 0;
}

static int iterations_valid(uint64_t it)
{
    return it >= VEIL_SCRAM_MIN_ITERATIONS && it <= VAPP_USERDIR_MAX_ITERATIONS;
}

int vapp_userdir_put(vapp_userdir *d, const char *name, const veil_user_verifier *v,
                     int *replaced, char *err)
{
    if (!vapp_user_name_valid(name)) {
        vapp_errf(err, "invalid user name: use 1 to %d characters of A-Z a-z 0-9 . _ -",
                  VEIL_MAX_USER_NAME);
        return -1;
    }
    if (!iterations_valid(v->iterations)) {
        vapp_errf(err, "iterations must be between %d and %u", VEIL_SCRAM_MIN_ITERATIONS,
                  VAPP_USERDIR_MAX_ITERATIONS);
        return -1;
    }
    long i = find_index(d, name);
    if (replaced != NULL)
        *replaced = i >= 0;
    if (i >= 0) {
        d->users[i].verifier = *v;
        return 0;
    }
    size_t at = (size_t)(-i - 1);
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        vapp_user *u = calloc(cap, sizeof *u);
        if (u == NULL) {
            vapp_errf(err, "out of memory");
            return -1;
        }
        /* Copy and wipe rather than realloc, which would leave the old block unwiped. */
        if (d->users != NULL) {
            memcpy(u, d->users, d->n * sizeof *u);
            veil_memzero(d->users, d->cap * sizeof *u);
            free(d->users);
        }
        d->users = u;
        d->cap = cap;
    }
    memmove(&d->users[at + 1], &d->users[at], (d->n - at) * sizeof *d->users);
    memset(&d->users[at], 0, sizeof *d->users);
    memcpy(d->users[at].name, name, strlen(name) + 1);
    d->users[at].verifier = *v;
    d->n++;
    return 0;
}

int vapp_userdir_del(vapp_userdir *d, const char *name)
{
    long i = d->n ? find_index(d, name) : -1;
    if (i < 0)
        return -1;
    size_t at = (size_t)i;
    memmove(&d->users[at], &d->users[at + 1], (d->n - at - 1) * sizeof *d->users);
    d->n--;
    veil_memzero(&d->users[d->n], sizeof *d->users);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

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

/* Exactly 2*len hex digits into out. */
static int unhex(const char *s, uint8_t *out, size_t len)
{
    if (strlen(s) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void tohex(const uint8_t *p, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_field(const char *path, const char *user, json_t *entry, const char *field,
                     uint8_t *out, size_t len, char *err)
{
    json_t *v = json_object_get(entry, field);
    if (v == NULL || !json_is_string(v) || unhex(json_string_value(v), out, len) != 0) {
        vapp_errf(err, "user directory %s: user \"%s\": \"%s\" must be %zu hex digits", path,
                  user, field, 2 * len);
        return -1;
    }
    return 0;
}

/* Fills d from a parsed document (d is empty). */
static int parse(vapp_userdir *d, const char *path, json_t *root, char *err)
{
    if (!json_is_object(root)) {
        vapp_errf(err, "user directory %s: not a JSON object", path);
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "version") != 0 && strcmp(key, "users") != 0) {
            vapp_errf(err, "user directory %s: unknown field \"%.64s\"", path, key);
            return -1;
        }
    }
    json_t *version = json_object_get(root, "version");
    if (!json_is_integer(version) || json_integer_value(version) != VAPP_USERDIR_VERSION) {
        vapp_errf(err, "user directory %s: \"version\" must be %d%s", path, VAPP_USERDIR_VERSION,
                  json_is_integer(version) && json_integer_value(version) > VAPP_USERDIR_VERSION
                      ? " (the file was written by a newer Veil)"
                      : "");
        return -1;
    }
    json_t *users = json_object_get(root, "users");
    if (!json_is_object(users)) {
        vapp_errf(err, "user directory %s: \"users\" must be an object", path);
        return -1;
    }
    json_object_foreach(users, key, val)
    {
        if (!vapp_user_name_valid(key)) {
            vapp_errf(err,
                      "user directory %s: invalid user name \"%.64s\" (1 to %d characters of "
                      "A-Z a-z 0-9 . _ -)",
                      path, key, VEIL_MAX_USER_NAME);
            return -1;
        }
        if (!json_is_object(val)) {
            vapp_errf(err, "user directory %s: user \"%s\" must be an object", path, key);
            return -1;
        }
        const char *f;
        json_t *fv;
        json_object_foreach(val, f, fv)
        {
            if (strcmp(f, "salt") != 0 && strcmp(f, "iterations") != 0 &&
                strcmp(f, "stored_key") != 0 && strcmp(f, "server_key") != 0) {
                vapp_errf(err, "user directory %s: user \"%s\": unknown field \"%.64s\"", path,
                          key, f);
                return -1;
            }
        }
        veil_user_verifier v;
        memset(&v, 0, sizeof v);
        json_t *it = json_object_get(val, "iterations");
        if (!json_is_integer(it) || json_integer_value(it) < 0 ||
            !iterations_valid((uint64_t)json_integer_value(it))) {
            vapp_errf(err, "user directory %s: user \"%s\": \"iterations\" must be an integer "
                           "from %d to %u",
                      path, key, VEIL_SCRAM_MIN_ITERATIONS, VAPP_USERDIR_MAX_ITERATIONS);
            return -1;
        }
        v.iterations = (uint32_t)json_integer_value(it);
        if (hex_field(path, key, val, "salt", v.salt, sizeof v.salt, err) != 0 ||
            hex_field(path, key, val, "stored_key", v.stored_key, sizeof v.stored_key, err) != 0 ||
            hex_field(path, key, val, "server_key", v.server_key, sizeof v.server_key, err) != 0)
            return -1;
        /* Names are unique: the parser rejects duplicate keys. */
        int r = vapp_userdir_put(d, key, &v, NULL, err);
        veil_memzero(&v, sizeof v);
        if (r != 0)
            return -1;
    }
    return 0;
}

int vapp_userdir_load(vapp_userdir *d, const char *path, char *err)
{
    /* As for private keys: what others may read or change is not trusted. */
    veil_buf file;
    struct stat st;
    veil_buf_init(&file);
    int r = vapp_read_file(path, "user directory", VAPP_USERDIR_MAX_FILE, 1, &file, &st, err);
    if (r != 0) {
        veil_buf_free(&file);
        return r;
    }

    json_error_t jerr;
    json_t *root = json_loadb((const char *)file.base, file.len, JSON_REJECT_DUPLICATES, &jerr);
    veil_buf_free(&file); /* wipes */
    if (root == NULL) {
        vapp_errf(err, "user directory %s: line %d, column %d: %s", path, jerr.line, jerr.column,
                  jerr.text);
        return -1;
    }
    vapp_userdir fresh;
    vapp_userdir_init(&fresh);
    r = parse(&fresh, path, root, err);
    json_decref(root);
    if (r != 0) {
        vapp_userdir_free(&fresh);
        return -1;
    }
    if (strlen(path) >= sizeof fresh.path) {
        vapp_errf(err, "path too long: %s", path);
        vapp_userdir_free(&fresh);
        return -1;
    }
    memcpy(fresh.path, path, strlen(path) + 1);
    fresh.dev = st.st_dev;
    fresh.ino = st.st_ino;
    fresh.size = st.st_size;
    fresh.mtime = st.st_mtim;
    vapp_userdir_free(d);
    *d = fresh;
    return 0;
}

int vapp_userdir_reload(vapp_userdir *d, char *err)
{
    if (d->path[0] == '\0') {
        vapp_errf(err, "the user directory was not loaded from a file");
        return -1;
    }
    struct stat st;
    if (stat(d->path, &st) != 0) {
        vapp_errf(err, "cannot stat user directory %s: %s", d->path, strerror(errno));
        return -1;
    }
    if (st.st_dev == d->dev && st.st_ino == d->ino && st.st_size == d->size &&
        st.st_mtim.tv_sec == d->mtime.tv_sec && st.st_mtim.tv_nsec == d->mtime.tv_nsec)
        return 0;
    char path[sizeof d->path];
    memcpy(path, d->path, sizeof path);
    return vapp_userdir_load(d, path, err) == 0 ? 1 : -1;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

static int set_hex(json_t *obj, const char *field, const uint8_t *p, size_t len)
{
    char hex[2 * 32 + 1];
    tohex(p, len, hex);
    int r = json_object_set_new(obj, field, json_string(hex));
    veil_memzero(hex, sizeof hex);
    return r;
}

int vapp_userdir_save(const vapp_userdir *d, const char *path, char *err)
{
    int ret = -1;
    char *text = NULL;
    json_t *root = json_object(), *users = json_object();
    if (root == NULL || users == NULL || json_object_set_new(root, "version", json_integer(1)) != 0 ||
        json_object_set(root, "users", users) != 0)
        goto nomem;
    /* Fields in the documented order, users sorted: stable, diffable files. */
    for (size_t i = 0; i < d->n; i++) {
        const veil_user_verifier *v = &d->users[i].verifier;
        json_t *u = json_object();
        if (u == NULL || json_object_set_new(users, d->users[i].name, u) != 0 ||
            set_hex(u, "salt", v->salt, sizeof v->salt) != 0 ||
            json_object_set_new(u, "iterations", json_integer(v->iterations)) != 0 ||
            set_hex(u, "stored_key", v->stored_key, sizeof v->stored_key) != 0 ||
            set_hex(u, "server_key", v->server_key, sizeof v->server_key) != 0)
            goto nomem;
    }
    /* Into our own buffer (sized by a first pass), so it can be wiped. */
    size_t len = json_dumpb(root, NULL, 0, JSON_INDENT(2));
    if (len == 0 || (text = malloc(len + 1)) == NULL)
        goto nomem;
    if (json_dumpb(root, text, len, JSON_INDENT(2)) != len)
        goto nomem;
    text[len++] = '\n';
    if (vapp_mkdir_parents(path, err) == 0 &&
        vapp_write_file_atomic(path, text, len, 0600, 1, err) == 0)
        ret = 0;
    veil_memzero(text, len);
    goto done;
nomem:
    vapp_errf(err, "out of memory");
done:
    free(text);
    json_decref(users);
    json_decref(root);
    return ret;
}
