/*
 * userdir.h - the user directory: the SCRAM-SHA-256 verifiers a server
 * authenticates users against (PROTOCOL.md §4.13), one JSON file:
 *
 *   {
 *     "version": 1,
 *     "users": {
 *       "alice": {
 *         "salt": "<32 hex digits>",
 *         "iterations": 100000,
 *         "stored_key": "<64 hex digits>",
 *         "server_key": "<64 hex digits>"
 *       }
 *     }
 *   }
 *
 * Never the password: a verifier lets the server check a proof and prove
 * itself, but logging in with it still needs the password (or a PBKDF2
 * search over it).  The file is private all the same: it is refused when its
 * mode gives any access to group or others, and written with mode 0600.
 *
 * Loading is strict: unknown or missing fields, duplicate names, bad hex,
 * iterations below VEIL_SCRAM_MIN_ITERATIONS or invalid names are errors
 * naming the file and the user.  Managed with veil-user (docs/USAGE.md).
 *
 * Conventions as in veilapp.h: 0 on success, -1 on failure with one line in
 * err (VAPP_ERRLEN bytes).
 */
#ifndef VEILAPP_USERDIR_H
#define VEILAPP_USERDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "veil/veil.h"

#define VAPP_USERDIR_VERSION 1
/* Largest user directory file accepted (about 30000 users). */
#define VAPP_USERDIR_MAX_FILE (8 * 1024 * 1024)
/* Largest --iterations accepted: above this a login would take minutes. */
#define VAPP_USERDIR_MAX_ITERATIONS VEIL_SCRAM_MAX_ITERATIONS /* what clients accept */

typedef struct vapp_user {
    char name[VEIL_MAX_USER_NAME + 1];
    veil_user_verifier verifier;
} vapp_user;

typedef struct vapp_userdir {
    vapp_user *users; /* sorted by name (strcmp) */
    size_t n, cap;
    /* The file it was loaded from, to notice replacement (vapp_userdir_reload). */
    char path[4096];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} vapp_userdir;

/* 1 if name is a valid user name: 1..VEIL_MAX_USER_NAME of [A-Za-z0-9._-]. */
int vapp_user_name_valid(const char *name);

/* ~/.config/veil/users.json */
int vapp_userdir_default_path(char *out, size_t outlen, char *err);

/* An empty directory. */
void vapp_userdir_init(vapp_userdir *d);
/* Wipes the verifiers and frees; d is empty afterwards. */
void vapp_userdir_free(vapp_userdir *d);

/*
 * Loads path into d (replacing what d held only on success).  Refuses a file
 * that is not a regular file, is larger than VAPP_USERDIR_MAX_FILE, gives any
 * permission to group or others (the message names the mode and the fix,
 * "chmod 600 FILE"), or is malformed.  Returns 0, -1, or -2 if the file does
 * not exist (err set; d is left as it was).
 */
int vapp_userdir_load(vapp_userdir *d, const char *path, char *err);

/*
 * For a long-running server: if the file at d->path was replaced or changed
 * since it was loaded (device, inode, size or mtime differ), loads it again.
 * Returns 1 if reloaded, 0 if unchanged, -1 on error (d keeps the users it
 * had, so a broken edit does not lock everybody out).
 */
int vapp_userdir_reload(vapp_userdir *d, char *err);

/*
 * Writes d to path atomically (temporary file, fsync, rename) with mode
 * 0600, creating missing parent directories with mode 0700.
 */
int vapp_userdir_save(const vapp_userdir *d, const char *path, char *err);

/* The user of that name, or NULL. */
const vapp_user *vapp_userdir_find(const vapp_userdir *d, const char *name);

/* Adds name, or replaces its verifier if it exists (*replaced says which,
 * if not NULL).  Fails on an invalid name or a verifier whose iterations are
 * out of range. */
int vapp_userdir_put(vapp_userdir *d, const char *name, const veil_user_verifier *v,
                     int *replaced, char *err);

/* Removes name: 0, or -1 if there is no such user. */
int vapp_userdir_del(vapp_userdir *d, const char *name);

/*
 * veil_callbacks.lookup_user: user is a vapp_userdir *.  Copies the verifier
 * of name into *v and returns 0, or returns -1 if there is no such user.
 */
int vapp_userdir_lookup(void *user, const char *name, veil_user_verifier *v);

#endif /* VEILAPP_USERDIR_H */
