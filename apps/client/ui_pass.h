/*
 * ui_pass.h - reading a password for user authentication.
 *
 * Secrets never come from the command line or the environment (other local
 * users read both through /proc).  The password is read either from the
 * controlling terminal (/dev/tty) with echo off, so a client whose standard
 * input is a pipe of bank operations can still ask, or from a file
 * descriptor given with --password-fd N (scripts: "--password-fd 3
 * 3<secret-file").
 */
#ifndef VEIL_UI_PASS_H
#define VEIL_UI_PASS_H

#include <stddef.h>

/* Longest password accepted, in bytes (as veil-user). */
#define UI_PASS_MAX 1024

/*
 * Reads the password of user into pw (UI_PASS_MAX + 2 bytes), NUL-terminated,
 * *len its length.  fd >= 0: the first line of fd (up to "\n" or EOF; a
 * trailing "\r" is removed).  fd < 0: from /dev/tty, after the prompt
 * "Password for USER@WHERE: ", echo off.  Returns 0, or -1 with one line in
 * err (VAPP_ERRLEN bytes): no terminal, empty, too long, NUL byte, read error.
 */
int ui_read_password(const char *user, const char *where, int fd, char *pw, size_t cap, size_t *len,
                     char *err);

#endif /* VEIL_UI_PASS_H */
