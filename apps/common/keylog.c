/*
 * keylog.c - appending NSS-style keylog lines (PROTOCOL.md §9) to a file.
 *
 * The lines come from libproto's keylog callback; this file only stores
 * them.  The file holds session secrets: it is created 0600, opened without
 * following a symlink, only ever appended to, and each line goes out in a
 * single write(2) on an O_APPEND descriptor so that a client and a server
 * logging to the same file never interleave inside a line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "veilapp.h"

int vapp_keylog_open(vapp_keylog *kl, const char *path, char *err)
{
    kl->fd = -1;
    kl->path[0] = '\0';
    if (path == NULL) {
        path = getenv("VEIL_KEYLOGFILE");
        if (path == NULL || path[0] == '\0')
            return 0;
    }
    if (strlen(path) >= sizeof kl->path) {
        vapp_errf(err, "keylog file path too long");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        vapp_errf(err, "cannot open keylog file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vapp_errf(err, "keylog file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0)
        vapp_log(VAPP_LOG_WARN,
                 "keylog file %s has mode %04o: the session secrets in it are readable by "
                 "other users (chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
    kl->fd = fd;
    memcpy(kl->path, path, strlen(path) + 1);
    return 0;
}

void vapp_keylog_write(vapp_keylog *kl, const char *line)
{
    if (kl == NULL || kl->fd < 0 || line == NULL)
        return;
    char buf[512];
    size_t len = strlen(line);
    if (len + 1 > sizeof buf) {
        vapp_log(VAPP_LOG_WARN, "keylog line too long, not written");
        return;
    }
    memcpy(buf, line, len);
    buf[len++] = '\n';
    size_t off = 0;
    /* O_APPEND regular file: one write normally takes it all; a short write
       (disk full) is retried a bounded number of times. */
    for (int tries = 0; off < len && tries < 8; tries++) {
        ssize_t n = write(kl->fd, buf + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            vapp_log(VAPP_LOG_WARN, "cannot write keylog file %s: %s", kl->path, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    veil_memzero(buf, sizeof buf);
}

void vapp_keylog_close(vapp_keylog *kl)
{
    if (kl->fd >= 0)
        close(kl->fd);
    kl->fd = -1;
}
