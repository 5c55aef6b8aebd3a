/*
 * known_hosts.c - trust on first use for server identities.
 *
 * File format, one entry per line:   host:port <64 hex digits>
 *   e.g.  example.org:51424 5f1c...e9
 *         [::1]:51424 0a9b...77
 * '#' starts a comment line; blank lines are ignored.  The fingerprint is
 * the SHA-256 of the server's identity key (DER SubjectPublicKeyInfo), as
 * printed by veil-keygen and veil-server.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "veilapp.h"

int vapp_known_hosts_default(char *out, size_t outlen, char *err)
{
    char dir[4096];
    if (vapp_config_dir(dir, sizeof dir, err) != 0)
        return -1;
    int n = snprintf(out, outlen, "%s/known_hosts", dir);
    if (n < 0 || (size_t)n >= outlen) {
        vapp_errf(err, "home directory path too long");
        return -1;
    }
    return 0;
}

void vapp_known_hosts_key(const char *host, const char *port, char *out, size_t outlen)
{
    char h[512];
    size_t i = 0;
    for (; host[i] != '\0' && i < sizeof h - 1; i++)
        h[i] = (char)tolower((unsigned char)host[i]);
    h[i] = '\0';
    if (strchr(h, ':') != NULL)
        snprintf(out, outlen, "[%s]:%s", h, port);
    else
        snprintf(out, outlen, "%s:%s", h, port);
}

vapp_kh_result vapp_known_hosts_check(const char *path, const char *key, const char *fp_hex,
                                      char *old_hex, unsigned long *old_line, char *err)
{
    uint8_t want[VEIL_FINGERPRINT_LEN];
    if (veil_fingerprint_parse(fp_hex, want) != 0) {
        vapp_errf(err, "internal error: bad fingerprint");
        return VAPP_KH_ERROR;
    }
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return VAPP_KH_UNKNOWN;
        vapp_errf(err, "cannot read known_hosts file %s: %s", path, strerror(errno));
        return VAPP_KH_ERROR;
    }
    vapp_kh_result res = VAPP_KH_UNKNOWN;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    size_t keylen = strlen(key);
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char *sp = p + strcspn(p, " \t");
        if (*sp == '\0') {
            vapp_log(VAPP_LOG_WARN, "%s:%lu: malformed line ignored", path, lineno);
            continue;
        }
        size_t hlen = (size_t)(sp - p);
        if (hlen != keylen || strncasecmp(p, key, keylen) != 0)
            continue;
        char *fp = sp;
        while (*fp == ' ' || *fp == '\t')
            fp++;
        fp[strcspn(fp, " \t")] = '\0';
        uint8_t have[VEIL_FINGERPRINT_LEN];
        if (veil_fingerprint_parse(fp, have) != 0) {
            vapp_log(VAPP_LOG_WARN, "%s:%lu: malformed fingerprint ignored", path, lineno);
            continue;
        }
        if (veil_memeq_ct(have, want, sizeof want) == 0) {
            res = VAPP_KH_MATCH;
            break;
        }
        if (res == VAPP_KH_UNKNOWN) {
            res = VAPP_KH_CHANGED;
            if (old_hex != NULL)
                veil_fingerprint_hex(have, old_hex);
            if (old_line != NULL)
                *old_line = lineno;
        }
    }
    int rerr = ferror(f);
    free(line);
    fclose(f);
    if (rerr && res != VAPP_KH_MATCH) {
        vapp_errf(err, "cannot read known_hosts file %s", path);
        return VAPP_KH_ERROR;
    }
    return res;
}

int vapp_known_hosts_add(const char *path, const char *key, const char *fp_hex, char *err)
{
    if (vapp_mkdir_parents(path, err) != 0)
        return -1;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        vapp_errf(err, "cannot write known_hosts file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[1024];
    size_t off = 0;
    struct stat st;
    char last = '\n';
    /* A hand-edited file may lack its final newline: do not glue lines. */
    if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 &&
        last != '\n')
        buf[off++] = '\n';
    int n = snprintf(buf + off, sizeof buf - off, "%s %s\n", key, fp_hex);
    if (n < 0 || (size_t)n >= sizeof buf - off) {
        close(fd);
        vapp_errf(err, "host name too long for known_hosts");
        return -1;
    }
    off += (size_t)n;
    ssize_t w = write(fd, buf, off);
    int e = errno;
    if (close(fd) != 0 && w == (ssize_t)off) {
        w = -1;
        e = errno;
    }
    if (w != (ssize_t)off) {
        vapp_errf(err, "cannot write known_hosts file %s: %s", path,
                 w < 0 ? strerror(e) : "short write");
        return -1;
    }
    return 0;
}

void vapp_known_hosts_warn_changed(const char *prog, const char *path, const char *key,
                                   const char *new_hex, const char *old_hex,
                                   unsigned long old_line)
{
    fprintf(stderr,
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
            "Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n"
            "It is also possible that the server's identity key has just been changed.\n"
            "The identity key fingerprint sent by the Veil server %s is\n"
            "    sha256:%s\n"
            "but %s line %lu records\n"
            "    sha256:%s\n"
            "If you have verified the new fingerprint with the server's operator,\n"
            "delete line %lu of %s and connect again.\n"
            "%s: server identity for %s has changed; connection refused.\n",
            key, new_hex, path, old_line, old_hex, old_line, path, prog, key);
    fflush(stderr);
}
