/*
 * veilapp.h - the operating-system half of the Veil programs.
 *
 * libproto is sans-IO; everything it deliberately does not do lives here:
 * randomness (getrandom), clocks, logging, files with safe permissions, the
 * keylog file, known_hosts, and sockets.  The programs in apps/ are thin
 * loops over libproto plus these helpers.  Nothing here parses or builds
 * Veil wire bytes: that is libproto's job alone.
 *
 * Conventions: functions returning int return 0 on success and -1 on failure
 * unless documented otherwise.  On failure they write one human-readable
 * line (no trailing newline, no secrets) into the caller's err buffer.
 */
#ifndef VEILAPP_H
#define VEILAPP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "veil/veil.h"

#if defined(__GNUC__) || defined(__clang__)
#define VAPP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define VAPP_NORETURN __attribute__((noreturn))
#else
#define VAPP_PRINTF(f, a)
#define VAPP_NORETURN
#endif

/* Size of the err buffers passed to the helpers below. */
#define VAPP_ERRLEN 512

/* ------------------------------------------------------------------------ */
/* Exit statuses shared by the programs (docs/USAGE.md, "EXIT STATUS")     */

enum {
    VAPP_EXIT_OK = 0,
    VAPP_EXIT_USAGE = 1,     /* bad arguments */
    VAPP_EXIT_CONNECT = 2,   /* cannot connect / cannot listen */
    VAPP_EXIT_UNTRUSTED = 3, /* server identity not trusted */
    VAPP_EXIT_REFUSED = 4,   /* the server refused the handshake (alert) */
    VAPP_EXIT_PROTOCOL = 5,  /* protocol error, connection lost, truncated, timeout */
    VAPP_EXIT_LOCAL = 6,     /* local error: key file, keylog, known_hosts, memory */
};

/* Writes a message into an err buffer of VAPP_ERRLEN bytes (truncating). */
void vapp_errf(char *err, const char *fmt, ...) VAPP_PRINTF(2, 3);

/* Command line (cli.c).  Both print ONE line and exit(VAPP_EXIT_USAGE). */
VAPP_NORETURN void vapp_usage_error(const char *prog, const char *synopsis, const char *fmt, ...)
    VAPP_PRINTF(3, 4);
/* Reports getopt_long's ':' (missing value) or '?' (unknown option). */
VAPP_NORETURN void vapp_getopt_error(const char *prog, const char *synopsis, int c, int opt,
                                     char *const argv[], int ind);

/* ------------------------------------------------------------------------ */
/* Randomness and time (rng.c, clock.c)                                     */

/* veil_callbacks.random: fills out from getrandom(2).  0 or -1. */
int vapp_random(void *user, uint8_t *out, size_t len);

#ifdef VEIL_TEST_HOOKS
/* Test-only (testhooks.c, built only with -DVEIL_TEST_HOOKS=ON; docs/CAPTURE.md).
 * vapp_test_random: fills out from the VEIL_TEST_SEED stream and returns 0,
 * or returns 1 when VEIL_TEST_SEED is unset.  vapp_test_clock: returns 1 and
 * the frozen VEIL_TEST_CLOCK time, or 0 when it is unset. */
int vapp_test_random(uint8_t *out, size_t len);
int vapp_test_clock(uint64_t *ms);
#endif

/* Milliseconds on CLOCK_MONOTONIC: what libproto's timers are fed. */
uint64_t vapp_mono_ms(void);
/* Milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME): message timestamps. */
uint64_t vapp_wall_ms(void);
/* Formats UTC ms as "2024-05-01T12:34:56.789Z".  Values beyond year 9999
 * (a hostile timestamp) are printed as "@<ms>". */
#define VAPP_TIMESTR_LEN 96 /* room for any int fields, for -Wformat-truncation */
void vapp_format_utc(uint64_t ms, char out[VAPP_TIMESTR_LEN]);

/* Parses a duration in seconds ("10", "0.5") into ms; 0 ok, -1 if malformed,
 * negative, or larger than max_s. zero_ok allows 0. */
int vapp_parse_seconds(const char *s, double max_s, int zero_ok, uint64_t *ms);
/* Parses an unsigned decimal in [min, max]. */
int vapp_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* ------------------------------------------------------------------------ */
/* Logging (log.c): one line per event on stderr,
 * "2024-05-01T12:34:56.789Z INFO  message".                               */

enum { VAPP_LOG_ERROR = 0, VAPP_LOG_WARN = 1, VAPP_LOG_INFO = 2, VAPP_LOG_DEBUG = 3 };
void vapp_log_set_level(int level);
int vapp_log_enabled(int level);
void vapp_log(int level, const char *fmt, ...) VAPP_PRINTF(2, 3);
void vapp_vlog(int level, const char *fmt, va_list ap) VAPP_PRINTF(2, 0);
/* Called with before = 1 just before a log line is written and 0 just after
 * (a terminal line editor takes its prompt off the screen meanwhile); NULL
 * removes it. */
void vapp_log_set_hook(void (*hook)(void *user, int before), void *user);

/* ------------------------------------------------------------------------ */
/* Text from the network (text.c)                                           */

/*
 * Makes untrusted bytes safe to print on a terminal: valid UTF-8 passes
 * through except control characters (C0, DEL, C1) and bidirectional
 * overrides, which become \n, \t, \r, \\, \xNN or \u{NNNN} escapes; invalid
 * UTF-8 bytes become \xNN.  Always NUL-terminates; truncates with "..." if
 * out is too small.  Returns out.
 */
char *vapp_sanitize(const uint8_t *p, size_t len, char *out, size_t outcap);
/* Worst-case output size for len input bytes (plus NUL). */
#define VAPP_SANITIZED_MAX(len) ((len) * 4 + 8)

/* ------------------------------------------------------------------------ */
/* Files (files.c)                                                          */

/* $HOME/.config/veil (from $HOME, else the password database). */
int vapp_config_dir(char *out, size_t outlen, char *err);
/* Creates every missing directory of path's parent with mode 0700. */
int vapp_mkdir_parents(const char *path, char *err);

/*
 * Writes data to path atomically: a temporary file next to it is created
 * with O_CREAT|O_EXCL|O_NOFOLLOW, chmod'ed to mode, written and fsync'ed,
 * then moved into place.  Without overwrite the move is link(2), which fails
 * if path exists (no check-then-create race); with overwrite it is rename(2).
 * Returns 0, -1 (err set), or -2 if path exists and overwrite is 0.
 */
int vapp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           int overwrite, char *err);

/*
 * Reads a private key file into out (caller wipes with veil_buf_free).
 * Refuses a file that is not a regular file, is larger than 64 KiB, or whose
 * mode gives any permission to group or others, with a message naming the
 * mode and the fix ("chmod 600 FILE").
 * Returns 0, -1 (err set), or -2 if the file does not exist (err set).
 */
int vapp_read_private_file(const char *path, veil_buf *out, char *err);
/*
 * The general form: reads a whole file of at most max bytes into out, which
 * is NUL-terminated after out->len (not counted); the caller wipes it with
 * veil_buf_free.  Refuses a file that is not a regular file, is larger than
 * max, or (private_only) gives any permission to group or others.  what names
 * the file in messages ("key file", "user directory").  *info, if not NULL,
 * receives the file's fstat (mode, identity, size, time).  Returns 0, -1 (err set), or -2 if it does not exist.
 */
struct stat;
int vapp_read_file(const char *path, const char *what, size_t max, int private_only, veil_buf *out,
                   struct stat *info, char *err);

/* Loads an identity (Ed25519 or RSA) from a private key file (checks as above). */
int vapp_identity_load(const char *path, veil_identity **out, char *err);
/* Generates an Ed25519 identity and writes path (0600) and path.pub (0644).
 * Returns 0, -1, or -2 if path exists and overwrite is 0. */
int vapp_identity_create(const char *path, int overwrite, veil_identity **out, char *err);
/* The same with an RSA key of bits bits (2048..8192; libproto's DRBG). */
int vapp_identity_create_rsa(const char *path, unsigned bits, int overwrite, veil_identity **out,
                             char *err);
/* "sha256:<64 hex>" of an identity or a raw fingerprint. */
#define VAPP_FPSTR_LEN (7 + VEIL_FINGERPRINT_HEX_LEN)
void vapp_fp_string(const uint8_t fp[VEIL_FINGERPRINT_LEN], char out[VAPP_FPSTR_LEN]);

/* ------------------------------------------------------------------------ */
/* Keylog file (keylog.c), PROTOCOL.md §9                                  */

typedef struct vapp_keylog {
    int fd; /* -1 when keylogging is off */
    char path[4096];
} vapp_keylog;

/*
 * Opens the keylog file: path if non-NULL, else $VEIL_KEYLOGFILE if set and
 * non-empty, else keylogging stays off (kl->fd = -1, returns 0).  The file
 * is opened O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW with mode 0600 and never
 * truncated.  Warns if an existing file is readable by others.
 */
int vapp_keylog_open(vapp_keylog *kl, const char *path, char *err);
/* Appends line + "\n" with one write(2), so concurrent writers never
 * interleave inside a line; the copy holding the secret is wiped. */
void vapp_keylog_write(vapp_keylog *kl, const char *line);
void vapp_keylog_close(vapp_keylog *kl);

/* ------------------------------------------------------------------------ */
/* known_hosts (known_hosts.c): lines "host:port sha256hex"                 */

typedef enum vapp_kh_result {
    VAPP_KH_MATCH = 0,    /* a line for host:port has this fingerprint */
    VAPP_KH_UNKNOWN = 1,  /* no line for host:port */
    VAPP_KH_CHANGED = 2,  /* lines for host:port exist, none with this fingerprint */
    VAPP_KH_ERROR = -1,   /* file unreadable or malformed (err set) */
} vapp_kh_result;

/* Default file: ~/.config/veil/known_hosts. */
int vapp_known_hosts_default(char *out, size_t outlen, char *err);
/* The key used in the file: "host:port", "[v6addr]:port"; host lowercased. */
void vapp_known_hosts_key(const char *host, const char *port, char *out, size_t outlen);
/*
 * Looks key up.  On VAPP_KH_CHANGED, old_hex (65 bytes) and *old_line
 * receive the first conflicting entry.  A missing file is VAPP_KH_UNKNOWN.
 */
vapp_kh_result vapp_known_hosts_check(const char *path, const char *key, const char *fp_hex,
                                      char *old_hex, unsigned long *old_line, char *err);
/* Appends "key fp_hex\n" (creating the file 0600 and its directory 0700). */
int vapp_known_hosts_add(const char *path, const char *key, const char *fp_hex, char *err);
/* Prints the loud multi-line "REMOTE HOST IDENTIFICATION HAS CHANGED" block. */
void vapp_known_hosts_warn_changed(const char *prog, const char *path, const char *key,
                                   const char *new_hex, const char *old_hex,
                                   unsigned long old_line);

/* ------------------------------------------------------------------------ */
/* Network (net.c)                                                          */

#define VAPP_ADDRSTR_LEN 80 /* "[ipv6%scope]:port" */
/* "1.2.3.4:5" or "[::1]:5"; IPv4-mapped IPv6 shown as IPv4. */
void vapp_format_addr(const struct sockaddr *sa, socklen_t len, char out[VAPP_ADDRSTR_LEN]);
int vapp_set_nonblock(int fd);
/* Sends a fatal alert from a throw-away connection (best effort) and closes fd. */
void vapp_refuse_and_close(int fd, const veil_config *cfg, int alert, uint64_t now);
/* Sends all of p, waiting for room with poll, within timeout_ms; 0 or -1. */
int vapp_send_all(int fd, const uint8_t *p, size_t n, uint64_t timeout_ms);
/* Non-blocking: sends what the socket takes of out now and consumes it.
 * 0: all of it went, or the socket is full (out->len > 0 then); -1: the
 * connection failed, with the reason in errno. */
int vapp_send_pending(int fd, veil_buf *out);
/* TCP_NODELAY: libproto hands over whole records and flights, so Nagle's
 * algorithm would only add a delayed-ACK wait (~40 ms) per exchange. */
void vapp_set_nodelay(int fd);

#define VAPP_MAX_LISTEN 8
/*
 * Opens non-blocking listening sockets.  bind_addr NULL: "::" dual-stack
 * (IPV6_V6ONLY=0), or 0.0.0.0 if the host has no IPv6.  Otherwise every
 * address bind_addr resolves to.  Port "0" picks a free port (the same one
 * for every socket).  The sockets have TCP_NODELAY, which the sockets they
 * accept inherit.  Returns the number of sockets (>= 1), or -1.
 */
int vapp_listen(const char *bind_addr, const char *port, int fds[VAPP_MAX_LISTEN], char *err);

typedef enum vapp_connect_error {
    VAPP_CONN_OK = 0,
    VAPP_CONN_DNS,     /* name did not resolve */
    VAPP_CONN_REFUSED, /* every address refused or was unreachable */
    VAPP_CONN_TIMEOUT, /* the deadline passed */
    VAPP_CONN_OTHER,
} vapp_connect_error;
/*
 * Resolves host/port (IPv4 and IPv6) and tries each address with a
 * non-blocking connect until one succeeds or timeout_ms (total) passes.
 * Returns a connected non-blocking socket, or -1 with *why and err set.
 */
int vapp_connect(const char *host, const char *port, uint64_t timeout_ms, vapp_connect_error *why,
                 char *peer, char *err);

/* Parses a port number "1".."65535" ("0" too if zero_ok). */
int vapp_parse_port(const char *s, int zero_ok);

#endif /* VEILAPP_H */
