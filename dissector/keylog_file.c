/*
 * keylog_file.c - tracks the keylog file named by the veil.keylog_file
 * preference and feeds what is new in it to libproto's keylog parser.
 *
 * A keylog file is only ever appended to (PROTOCOL.md §9), so the common case
 * is "the file grew": only the new bytes are read, up to the end of the last
 * complete line (a line still being written is parsed again once its newline
 * has arrived).  A different device or inode (the file was replaced, e.g. by
 * an editor that renames), a smaller size (truncated) or the same size with a
 * new mtime (rewritten in place) makes the whole file be read again.
 */
#include "keylog_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int vd_keylog_file_open(vd_keylog_file *kf, const char *path)
{
    memset(kf, 0, sizeof(*kf));
    if (veil_keylog_new(&kf->keys) != 0)
        return VEIL_ERR_NOMEM;
    if (path != NULL && path[0] != '\0') {
        kf->path = strdup(path);
        if (kf->path == NULL) {
            veil_keylog_free(kf->keys);
            kf->keys = NULL;
            return VEIL_ERR_NOMEM;
        }
    }
    vd_keylog_file_refresh(kf);
    return 0;
}

void vd_keylog_file_close(vd_keylog_file *kf)
{
    veil_keylog_free(kf->keys);
    free(kf->path);
    memset(kf, 0, sizeof(*kf));
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Reads bytes [from, to) of the file into a new buffer; *got is what was read. */
static char *read_range(const char *path, off_t from, off_t to, size_t *got)
{
    size_t want = (size_t)(to - from);
    char *buf = malloc(want > 0 ? want : 1);
    *got = 0;
    if (buf == NULL)
        return NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        free(buf);
        return NULL;
    }
    if (fseeko(f, from, SEEK_SET) == 0)
        *got = fread(buf, 1, want, f);
    fclose(f);
    return buf;
}

void vd_keylog_file_refresh(vd_keylog_file *kf)
{
    struct stat st;
    if (kf->keys == NULL || kf->path == NULL || stat(kf->path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    off_t size = st.st_size < (off_t)VD_KEYLOG_MAX_FILE ? st.st_size : (off_t)VD_KEYLOG_MAX_FILE;
    bool replaced = !kf->have_stat || st.st_dev != kf->dev || st.st_ino != kf->ino || size < kf->consumed ||
                    (size == kf->size && !same_time(&st.st_mtim, &kf->mtime));
    if (!replaced && size == kf->size && same_time(&st.st_mtim, &kf->mtime))
        return; /* unchanged */
    off_t from = replaced ? 0 : kf->consumed;
    size_t got = 0;
    char *buf = size > from ? read_range(kf->path, from, size, &got) : NULL;
    if (size > from && buf == NULL)
        return; /* unreadable now: try again at the next refresh */
    kf->have_stat = true;
    kf->dev = st.st_dev;
    kf->ino = st.st_ino;
    kf->size = size;
    kf->mtime = st.st_mtim;
    if (replaced)
        kf->consumed = 0;
    if (buf == NULL)
        return;
    kf->reads++;
    /* Complete lines count (and advance consumed); a trailing partial line is
       parsed too, so a file without a final newline still works, but it is
       read again next time in case it was still being written. */
    const char *nl = got > 0 ? memrchr(buf, '\n', got) : NULL;
    size_t complete = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
    kf->malformed += veil_keylog_add_text(kf->keys, buf, complete);
    if (got > complete)
        (void)veil_keylog_add_text(kf->keys, buf + complete, got - complete);
    kf->consumed = from + (off_t)complete;
    veil_memzero(buf, got);
    free(buf);
}
