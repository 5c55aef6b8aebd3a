/*
 * keylog_file.h - a Veil keylog file (PROTOCOL.md §9) that the dissector
 * re-reads when it grows or is replaced, so that keys appended during a live
 * capture are picked up.  Parsing is libproto's (veil_keylog_add_text); this
 * module only tracks the file and feeds it new bytes.
 */
#ifndef VEIL_DISSECTOR_KEYLOG_FILE_H
#define VEIL_DISSECTOR_KEYLOG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <veil/veil.h>

/* Largest keylog file read (bytes); the rest of a larger file is ignored. */
#define VD_KEYLOG_MAX_FILE (64u * 1024u * 1024u)

typedef struct vd_keylog_file {
    char *path;        /* NULL or "" when no file is configured */
    veil_keylog *keys; /* owned; lives as long as the vd_keylog_file, so observers may borrow it */
    bool have_stat;    /* the fields below describe the file as last read */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    off_t consumed;   /* bytes parsed, up to the end of the last complete line */
    size_t malformed; /* malformed Veil lines seen so far */
    unsigned reads;   /* times the file was (partly) read: for tests and debugging */
} vd_keylog_file;

/*
 * Starts tracking path (may be NULL or ""): makes an empty keylog and reads
 * the file if it exists.  Returns 0 or VEIL_ERR_NOMEM.
 */
int vd_keylog_file_open(vd_keylog_file *kf, const char *path);

/*
 * Checks the file (stat: device, inode, size, mtime) and reads what changed:
 * only the appended bytes when it grew, the whole file again when it was
 * replaced, truncated or rewritten.  Keys are only ever added (a later line
 * for the same client random wins), never removed, so a record decrypted once
 * stays decryptable.  A missing or unreadable file changes nothing.
 */
void vd_keylog_file_refresh(vd_keylog_file *kf);

/* Wipes and frees the keys; kf can be opened again. */
void vd_keylog_file_close(vd_keylog_file *kf);

#endif
