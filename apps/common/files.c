/*
 * files.c - key files and configuration paths with safe permissions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "veilapp.h"

#define MAX_KEY_FILE (64 * 1024)

int vapp_config_dir(char *out, size_t outlen, char *err)
{
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] == '\0') {
        vapp_errf(err, "cannot find the home directory ($HOME is not set)");
        return -1;
    }
    int n = snprintf(out, outlen, "%s/.config/veil", home);
    if (n < 0 || (size_t)n >= outlen) {
        vapp_errf(err, "home directory path too long");
        return -1;
    }
    return 0;
}

int vapp_mkdir_parents(const char *path, char *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) {
        vapp_errf(err, "path too long: %s", path);
        return -1;
    }
    memcpy(buf, path, len + 1);
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return 0; /* relative file in the cwd, or directly under / */
    *slash = '\0';
    /* Create each component in turn; existing ones are left as they are. */
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                vapp_errf(err, "cannot create directory %s: %s", buf, strerror(errno));
                return -1;
            }
            struct stat st;
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
                vapp_errf(err, "%s exists and is not a directory", buf);
                return -1;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vapp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           int overwrite, char *err)
{
    char tmp[PATH_MAX];
    int fd = -1;
    /* A fresh random name next to the target, created exclusively: an
       attacker's pre-planted file or symlink makes open fail, never redirects
       the write.  Bounded retries on (improbable) name collisions. */
    for (int tries = 0; tries < 16 && fd < 0; tries++) {
        uint8_t r[6];
        if (vapp_random(NULL, r, sizeof r) != 0) {
            vapp_errf(err, "getrandom failed: %s", strerror(errno));
            return -1;
        }
        int n = snprintf(tmp, sizeof tmp, "%s.tmp-%02x%02x%02x%02x%02x%02x", path, r[0], r[1],
                         r[2], r[3], r[4], r[5]);
        if (n < 0 || (size_t)n >= sizeof tmp) {
            vapp_errf(err, "path too long: %s", path);
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            vapp_errf(err, "cannot create %s: %s", tmp, strerror(errno));
            return -1;
        }
    }
    if (fd < 0) {
        vapp_errf(err, "cannot create a temporary file next to %s", path);
        return -1;
    }
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        vapp_errf(err, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        vapp_errf(err, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (overwrite) {
        if (rename(tmp, path) != 0) {
            vapp_errf(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
            unlink(tmp);
            return -1;
        }
    } else {
        /* link(2) refuses an existing target atomically: no window between
           "does it exist?" and "create it". */
        if (link(tmp, path) != 0) {
            int e = errno;
            unlink(tmp);
            if (e == EEXIST) {
                vapp_errf(err, "%s already exists", path);
                return -2;
            }
            vapp_errf(err, "cannot create %s: %s", path, strerror(e));
            return -1;
        }
        unlink(tmp);
    }
    /* Make the new directory entry durable too (best effort). */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int vapp_read_file(const char *path, const char *what, size_t max, int private_only, veil_buf *out,
                   struct stat *info, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        vapp_errf(err, "cannot open %s %s: %s", what, path, strerror(e));
        return e == ENOENT ? -2 : -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        vapp_errf(err, "cannot stat %s %s: %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        vapp_errf(err, "%s %s is not a regular file", what, path);
        close(fd);
        return -1;
    }
    /* Like ssh: a secret that others may read is treated as already
       compromised, and refused rather than silently used. */
    if (private_only && (st.st_mode & 077) != 0) {
        snprintf(err, VAPP_ERRLEN,
                 "%s %s has mode %04o: it is accessible by other users, so it is "
                 "refused; fix it with: chmod 600 %s",
                 what, path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    if (info != NULL)
        *info = st;
    out->len = 0;
    /* A file that grows after fstat is read up to max and then refused. */
    if ((size_t)st.st_size > max || veil_buf_reserve(out, (size_t)st.st_size + 1) != 0) {
        if ((size_t)st.st_size > max)
            vapp_errf(err, "%s %s is larger than %zu bytes", what, path, max);
        else
            vapp_errf(err, "out of memory");
        close(fd);
        return -1;
    }
    for (;;) {
        if (out->cap - out->len < 2 && veil_buf_reserve(out, 4096) != 0) {
            vapp_errf(err, "out of memory");
            close(fd);
            return -1;
        }
        ssize_t n = read(fd, out->base + out->len, out->cap - out->len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            vapp_errf(err, "cannot read %s %s: %s", what, path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
        if (out->len > max) {
            vapp_errf(err, "%s %s is larger than %zu bytes", what, path, max);
            close(fd);
            return -1;
        }
    }
    close(fd);
    out->base[out->len] = '\0'; /* a terminator for text parsers, not counted */
    return 0;
}

int vapp_read_private_file(const char *path, veil_buf *out, char *err)
{
    return vapp_read_file(path, "key file", MAX_KEY_FILE, 1, out, NULL, err);
}

int vapp_identity_load(const char *path, veil_identity **out, char *err)
{
    veil_buf b;
    veil_buf_init(&b);
    int r = vapp_read_private_file(path, &b, err);
    if (r != 0) {
        veil_buf_free(&b);
        return r;
    }
    int v = veil_identity_from_pem((const char *)b.base, b.len, out);
    veil_buf_free(&b); /* wipes the PEM */
    if (v != 0) {
        snprintf(err, VAPP_ERRLEN,
                 "key file %s is not a Veil identity (an Ed25519 or RSA PKCS#8 PEM private "
                 "key): %s",
                 path, veil_strerror(v));
        return -1;
    }
    return 0;
}

/* rsa_bits 0: Ed25519; else RSA of that size. */
static int identity_create(const char *path, unsigned rsa_bits, int overwrite, veil_identity **out,
                           char *err)
{
    veil_identity *id = NULL;
    veil_buf pem;
    veil_buf_init(&pem);
    int ret = -1;
    if (vapp_mkdir_parents(path, err) != 0)
        goto done;
    int v = rsa_bits == 0 ? veil_identity_generate(vapp_random, NULL, &id)
                          : veil_identity_generate_rsa(rsa_bits, &id);
    if (v != 0) {
        vapp_errf(err, "cannot generate a key: %s", veil_strerror(v));
        goto done;
    }
    v = veil_identity_to_pem(id, &pem);
    if (v != 0) {
        vapp_errf(err, "cannot encode the key: %s", veil_strerror(v));
        goto done;
    }
    int w = vapp_write_file_atomic(path, pem.base, pem.len, 0600, overwrite, err);
    if (w != 0) {
        ret = w;
        goto done;
    }
    veil_buf_free(&pem);
    veil_buf_init(&pem);
    v = veil_identity_public_pem(id, &pem);
    if (v != 0) {
        vapp_errf(err, "cannot encode the public key: %s", veil_strerror(v));
        goto done;
    }
    char pub[PATH_MAX];
    int n = snprintf(pub, sizeof pub, "%s.pub", path);
    if (n < 0 || (size_t)n >= sizeof pub) {
        vapp_errf(err, "path too long: %s", path);
        goto done;
    }
    if (vapp_write_file_atomic(pub, pem.base, pem.len, 0644, 1, err) != 0)
        goto done;
    ret = 0;
done:
    veil_buf_free(&pem);
    if (ret == 0 && out != NULL)
        *out = id;
    else
        veil_identity_free(id);
    return ret;
}

int vapp_identity_create(const char *path, int overwrite, veil_identity **out, char *err)
{
    return identity_create(path, 0, overwrite, out, err);
}

int vapp_identity_create_rsa(const char *path, unsigned bits, int overwrite, veil_identity **out,
                             char *err)
{
    return identity_create(path, bits, overwrite, out, err);
}

void vapp_fp_string(const uint8_t fp[VEIL_FINGERPRINT_LEN], char out[VAPP_FPSTR_LEN])
{
    char hex[VEIL_FINGERPRINT_HEX_LEN];
    veil_fingerprint_hex(fp, hex);
    snprintf(out, VAPP_FPSTR_LEN, "sha256:%s", hex);
}
