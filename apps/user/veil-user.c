/*
 * veil-user - manages the user directory a Veil server authenticates users
 * against (SCRAM-SHA-256 verifiers, never passwords).  See docs/USAGE.md.
 *
 *   veil-user [-f FILE] [--iterations N] add NAME
 *   veil-user [-f FILE] [--iterations N] passwd NAME
 *   veil-user [-f FILE] del NAME
 *   veil-user [-f FILE] list
 *
 * Passwords are read from the terminal with echo off (asked twice), or as
 * one line from standard input when it is not a terminal; never from the
 * command line, where other users could read them in ps(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include "userdir.h"
#include "veilapp.h"

static const char *const PROG = "veil-user";
static const char *const SYNOPSIS = "veil-user [-f FILE] [--iterations N] add|passwd|del NAME | list";

/* Exit statuses beyond the shared ones (docs/USAGE.md). */
enum {
    EXIT_USER = 7,     /* add: the user exists; del, passwd: no such user */
    EXIT_PASSWORD = 8, /* no password, empty, too long, or the two entries differ */
};

/* Longest password accepted, in bytes. */
#define MAX_PASSWORD 1024

static void usage(void)
{
    printf("Usage: veil-user [-f FILE] [--iterations N] add NAME\n"
           "       veil-user [-f FILE] [--iterations N] passwd NAME\n"
           "       veil-user [-f FILE] del NAME\n"
           "       veil-user [-f FILE] list\n"
           "\n"
           "Manages the user directory of a Veil server: for each user a salted,\n"
           "iterated SCRAM-SHA-256 verifier (PBKDF2-HMAC-SHA256), never the password.\n"
           "\n"
           "Commands:\n"
           "  add NAME     add a user; asks for the password\n"
           "  passwd NAME  set a new password (and a new salt) for a user\n"
           "  del NAME     remove a user\n"
           "  list         print the user names, one per line, sorted\n"
           "\n"
           "The password is read from the terminal with echo off and asked twice, or,\n"
           "when standard input is not a terminal, as its first line (without the\n"
           "newline).  It is never taken from the command line.\n"
           "NAME: 1 to %d characters of A-Z a-z 0-9 . _ -\n"
           "\n"
           "Options:\n"
           "  -f, --file FILE    the user directory (default: ~/.config/veil/users.json;\n"
           "                     created with mode 0600, missing directories 0700)\n"
           "      --iterations N PBKDF2 iterations for add and passwd (%d to %u,\n"
           "                     default %d)\n"
           "  -h, --help         show this help and exit\n"
           "  -V, --version      show the version and exit\n"
           "\n"
           "The file is refused if its mode gives group or others any access\n"
           "(fix: chmod 600 FILE).\n"
           "\n"
           "Exit status:\n"
           "  0  success\n"
           "  1  bad arguments (including an invalid user name)\n"
           "  6  local error: the file cannot be read or written, is accessible by\n"
           "     others, or is malformed\n"
           "  7  add: the user already exists; del, passwd: no such user\n"
           "  8  no password given, empty or too long, or the two entries differ\n",
           VEIL_MAX_USER_NAME, VEIL_SCRAM_MIN_ITERATIONS, VAPP_USERDIR_MAX_ITERATIONS,
           VEIL_SCRAM_DEFAULT_ITERATIONS);
}

/* ------------------------------------------------------------------------ */
/* Reading a password                                                       */

/* Terminal state to restore if a signal arrives while echo is off. */
static struct termios saved_tio;
static volatile sig_atomic_t echo_off;

static void restore_and_reraise(int sig)
{
    if (echo_off)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    signal(sig, SIG_DFL);
    raise(sig);
}

/*
 * Reads one line from standard input into buf (cap = longest accepted + 2),
 * without the newline (and a "\r" before it).  read(2) byte by byte, so no copy of the password stays
 * in a stdio buffer and nothing after the line is consumed.
 * Returns the length, -1 at end of input before any byte, -2 if too long,
 * -3 if it contains a NUL byte, -4 on a read error.
 */
static long read_line(char *buf, size_t cap)
{
    size_t len = 0;
    int got = 0, nul = 0;
    for (;;) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -4;
        if (n == 0) {
            if (!got)
                return -1;
            break;
        }
        got = 1;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = 1;
        if (len + 1 >= cap) {
            /* Too long: drain the rest of the line, keep nothing of it. */
            veil_memzero(buf, cap);
            while ((n = read(STDIN_FILENO, &c, 1)) > 0 && c != '\n') {
            }
            return -2;
        }
        buf[len++] = c;
    }
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    /* cap holds the longest password, a "\r" and the NUL. */
    if (len + 2 > cap) {
        veil_memzero(buf, cap);
        return -2;
    }
    if (nul)
        return -3;
    return (long)len;
}

/* Prompts on stderr and reads a line from the terminal with echo off. */
static long read_hidden(const char *prompt, char *buf, size_t cap)
{
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &saved_tio) != 0)
        return -4;
    tio = saved_tio;
    tio.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK);
    tio.c_lflag |= ECHONL | ICANON;
    struct sigaction sa, old[4];
    static const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = restore_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);
    echo_off = 1;
    long n;
    /* Echo off first, then the prompt (as getpass does): whatever is typed
       after the prompt appears is not echoed.  TCSAFLUSH drops what was
       typed before it, which was echoed in clear and is no password. */
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) != 0) {
        n = -4;
    } else {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        n = read_line(buf, cap);
    }
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    echo_off = 0;
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    if (n == -1)
        fputc('\n', stderr); /* ^D: ECHONL did not end the prompt's line */
    return n;
}

/* Reports a read_line failure; returns EXIT_PASSWORD. */
static int password_error(long n, int tty)
{
    if (n == -1)
        fprintf(stderr, "%s: no password given (%s)\n", PROG,
                tty ? "end of input" : "standard input is empty");
    else if (n == -2)
        fprintf(stderr, "%s: password too long (at most %d bytes)\n", PROG, MAX_PASSWORD);
    else if (n == -3)
        fprintf(stderr, "%s: the password contains a NUL byte\n", PROG);
    else if (n == -4)
        fprintf(stderr, "%s: cannot read the password: %s\n", PROG, strerror(errno));
    else
        fprintf(stderr, "%s: empty passwords are not accepted\n", PROG);
    return EXIT_PASSWORD;
}

/* Reads the new password for name into pw (MAX_PASSWORD + 2 bytes); 0 or an exit status. */
static int get_password(const char *name, char *pw, size_t cap, size_t *len)
{
    int tty = isatty(STDIN_FILENO);
    long n;
    if (tty) {
        char prompt[128], again[MAX_PASSWORD + 2];
        snprintf(prompt, sizeof prompt, "New password for %s: ", name);
        n = read_hidden(prompt, pw, cap);
        if (n <= 0)
            return password_error(n, tty);
        long m = read_hidden("Retype the password: ", again, sizeof again);
        int same = m == n && memcmp(pw, again, (size_t)n) == 0;
        veil_memzero(again, sizeof again);
        if (m < 0)
            return password_error(m, tty);
        if (!same) {
            fprintf(stderr, "%s: the passwords do not match; nothing changed\n", PROG);
            return EXIT_PASSWORD;
        }
    } else {
        n = read_line(pw, cap);
        if (n <= 0)
            return password_error(n, tty);
    }
    *len = (size_t)n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The file                                                                 */

/*
 * Serialises writers: an exclusive flock(2) on the file's directory (the
 * file itself is replaced by rename at each save, so a lock on it would not
 * hold).  Returns the fd to close, or -1 with err set.
 */
static int lock_dir(const char *path, char *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        vapp_errf(err, "cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            vapp_errf(err, "cannot lock directory %s: %s", dir, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Loads path; a missing file is an empty directory when missing_ok. */
static int load(vapp_userdir *d, const char *path, int missing_ok)
{
    char err[VAPP_ERRLEN];
    int r = vapp_userdir_load(d, path, err);
    if (r == -2 && missing_ok)
        return 0;
    if (r == -2) {
        fprintf(stderr, "%s: no user directory at %s (create it with: %s -f %s add NAME)\n", PROG,
                path, PROG, path);
        return VAPP_EXIT_LOCAL;
    }
    if (r != 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return VAPP_EXIT_LOCAL;
    }
    return 0;
}

enum cmd { CMD_ADD, CMD_PASSWD, CMD_DEL, CMD_LIST };

/* add and passwd: a new salt and verifier for name. */
static int set_password(enum cmd cmd, const char *path, const char *name, uint32_t iterations)
{
    char err[VAPP_ERRLEN];
    vapp_userdir d;
    vapp_userdir_init(&d);
    /* Refuse early, before asking for a password to no purpose. */
    int st = load(&d, path, cmd == CMD_ADD);
    if (st != 0)
        return st;
    int exists = vapp_userdir_find(&d, name) != NULL;
    vapp_userdir_free(&d);
    if (cmd == CMD_ADD && exists) {
        fprintf(stderr, "%s: user %s already exists in %s (to change the password: %s passwd %s)\n",
                PROG, name, path, PROG, name);
        return EXIT_USER;
    }
    if (cmd == CMD_PASSWD && !exists) {
        fprintf(stderr, "%s: no user %s in %s\n", PROG, name, path);
        return EXIT_USER;
    }

    char pw[MAX_PASSWORD + 2];
    size_t pwlen = 0;
    veil_user_verifier v;
    uint8_t salt[VEIL_SCRAM_SALT_LEN];
    st = get_password(name, pw, sizeof pw, &pwlen);
    if (st == 0 && vapp_random(NULL, salt, sizeof salt) != 0) {
        fprintf(stderr, "%s: getrandom failed: %s\n", PROG, strerror(errno));
        st = VAPP_EXIT_LOCAL;
    }
    if (st == 0) {
        /* libproto's derivation, the one the handshake checks against. */
        int r = veil_user_verifier_make(pw, pwlen, salt, iterations, &v);
        if (r != 0) {
            fprintf(stderr, "%s: cannot derive the verifier: %s\n", PROG, veil_strerror(r));
            st = VAPP_EXIT_LOCAL;
        }
    }
    veil_memzero(pw, sizeof pw);
    if (st != 0)
        return st;

    /* Read-modify-write under the lock, on a fresh copy of the file. */
    if (vapp_mkdir_parents(path, err) != 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        veil_memzero(&v, sizeof v);
        return VAPP_EXIT_LOCAL;
    }
    int lock = lock_dir(path, err);
    if (lock < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        veil_memzero(&v, sizeof v);
        return VAPP_EXIT_LOCAL;
    }
    st = load(&d, path, cmd == CMD_ADD);
    if (st == 0) {
        exists = vapp_userdir_find(&d, name) != NULL;
        if (cmd == CMD_ADD && exists) {
            fprintf(stderr, "%s: user %s was added to %s meanwhile; nothing changed\n", PROG, name,
                    path);
            st = EXIT_USER;
        } else if (cmd == CMD_PASSWD && !exists) {
            fprintf(stderr, "%s: user %s was removed from %s meanwhile; nothing changed\n", PROG,
                    name, path);
            st = EXIT_USER;
        } else if (vapp_userdir_put(&d, name, &v, NULL, err) != 0 ||
                   vapp_userdir_save(&d, path, err) != 0) {
            fprintf(stderr, "%s: %s\n", PROG, err);
            st = VAPP_EXIT_LOCAL;
        }
    }
    close(lock);
    vapp_userdir_free(&d);
    veil_memzero(&v, sizeof v);
    if (st == 0)
        printf("%s user %s in %s (PBKDF2-HMAC-SHA256, %u iterations)\n",
               cmd == CMD_ADD ? "added" : "new password for", name, path, (unsigned)iterations);
    return st;
}

static int del_user(const char *path, const char *name)
{
    char err[VAPP_ERRLEN];
    int lock = lock_dir(path, err);
    if (lock < 0) {
        /* A missing directory means a missing file: say that instead. */
        vapp_userdir d;
        vapp_userdir_init(&d);
        int st = load(&d, path, 0);
        vapp_userdir_free(&d);
        if (st == 0)
            fprintf(stderr, "%s: %s\n", PROG, err);
        return VAPP_EXIT_LOCAL;
    }
    vapp_userdir d;
    vapp_userdir_init(&d);
    int st = load(&d, path, 0);
    if (st == 0 && vapp_userdir_del(&d, name) != 0) {
        fprintf(stderr, "%s: no user %s in %s\n", PROG, name, path);
        st = EXIT_USER;
    }
    if (st == 0 && vapp_userdir_save(&d, path, err) != 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        st = VAPP_EXIT_LOCAL;
    }
    close(lock);
    vapp_userdir_free(&d);
    if (st == 0)
        printf("removed user %s from %s\n", name, path);
    return st;
}

static int list_users(const char *path)
{
    vapp_userdir d;
    vapp_userdir_init(&d);
    int st = load(&d, path, 0);
    if (st != 0)
        return st;
    for (size_t i = 0; i < d.n; i++)
        printf("%s\n", d.users[i].name);
    vapp_userdir_free(&d);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: cannot write the list: %s\n", PROG, strerror(errno));
        return VAPP_EXIT_LOCAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_ITERATIONS = 256 };
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"iterations", required_argument, NULL, OPT_ITERATIONS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    unsigned long iterations = VEIL_SCRAM_DEFAULT_ITERATIONS;
    int iterations_set = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'f': path = optarg; break;
        case OPT_ITERATIONS:
            if (vapp_parse_ulong(optarg, VEIL_SCRAM_MIN_ITERATIONS, VAPP_USERDIR_MAX_ITERATIONS,
                                 &iterations) != 0)
                vapp_usage_error(PROG, SYNOPSIS, "--iterations must be a number from %d to %u",
                                 VEIL_SCRAM_MIN_ITERATIONS, VAPP_USERDIR_MAX_ITERATIONS);
            iterations_set = 1;
            break;
        case 'h': usage(); return VAPP_EXIT_OK;
        case 'V': printf("veil-user (Veil) 1\n"); return VAPP_EXIT_OK;
        default: vapp_getopt_error(PROG, SYNOPSIS, c, optopt, argv, optind);
        }
    }
    if (optind >= argc)
        vapp_usage_error(PROG, SYNOPSIS, "missing command (add, passwd, del or list)");
    const char *word = argv[optind++];
    enum cmd cmd;
    if (strcmp(word, "add") == 0)
        cmd = CMD_ADD;
    else if (strcmp(word, "passwd") == 0)
        cmd = CMD_PASSWD;
    else if (strcmp(word, "del") == 0)
        cmd = CMD_DEL;
    else if (strcmp(word, "list") == 0)
        cmd = CMD_LIST;
    else
        vapp_usage_error(PROG, SYNOPSIS, "unknown command '%.64s'", word);

    const char *name = NULL;
    if (cmd != CMD_LIST) {
        if (optind >= argc)
            vapp_usage_error(PROG, SYNOPSIS, "%s needs a user name", word);
        name = argv[optind++];
        if (!vapp_user_name_valid(name))
            vapp_usage_error(PROG, SYNOPSIS,
                             "invalid user name: use 1 to %d characters of A-Z a-z 0-9 . _ -",
                             VEIL_MAX_USER_NAME);
    }
    if (optind < argc) {
        /* Not echoed: after "add NAME" it may well be a password. */
        if (cmd == CMD_ADD || cmd == CMD_PASSWD)
            vapp_usage_error(PROG, SYNOPSIS,
                             "too many arguments; passwords are never taken from the command "
                             "line: type it when asked, or give it on standard input");
        vapp_usage_error(PROG, SYNOPSIS, "too many arguments");
    }
    if (iterations_set && cmd != CMD_ADD && cmd != CMD_PASSWD)
        vapp_usage_error(PROG, SYNOPSIS, "--iterations applies to add and passwd only");

    char def[PATH_MAX], err[VAPP_ERRLEN];
    if (path == NULL) {
        if (vapp_userdir_default_path(def, sizeof def, err) != 0) {
            fprintf(stderr, "%s: %s; use -f FILE\n", PROG, err);
            return VAPP_EXIT_LOCAL;
        }
        path = def;
    }
    switch (cmd) {
    case CMD_ADD:
    case CMD_PASSWD: return set_password(cmd, path, name, (uint32_t)iterations);
    case CMD_DEL: return del_user(path, name);
    case CMD_LIST: return list_users(path);
    }
    return VAPP_EXIT_USAGE;
}
