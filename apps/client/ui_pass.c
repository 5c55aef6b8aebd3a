/*
 * ui_pass.c - reading a password from the terminal or a descriptor (ui_pass.h).
 */
#include "ui_pass.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "veilapp.h"

/* The terminal being read with echo off, restored by a signal handler. */
static volatile sig_atomic_t g_tty_fd = -1;
static struct termios g_saved;

static void on_signal(int sig)
{
    if (g_tty_fd >= 0)
        (void)tcsetattr(g_tty_fd, TCSAFLUSH, &g_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line from fd, byte by byte (so nothing after the newline is
 * consumed from a shared descriptor).  Returns the length, -1 at EOF with
 * nothing read, -2 too long, -3 NUL byte, -4 read error (errno). */
static long read_line_fd(int fd, char *pw, size_t cap)
{
    size_t n = 0;
    int too_long = 0, nul = 0, any = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -4;
        if (r == 0)
            break;
        any = 1;
        if (ch == '\n')
            break;
        if (ch == '\0')
            nul = 1;
        if (n + 2 < cap)
            pw[n++] = ch;
        else
            too_long = 1;
    }
    if (n > 0 && pw[n - 1] == '\r')
        n--;
    pw[n] = '\0';
    if (!any)
        return -1;
    if (too_long)
        return -2;
    if (nul)
        return -3;
    return (long)n;
}

int ui_read_password(const char *user, const char *where, int fd, char *pw, size_t cap, size_t *len,
                     char *err)
{
    long n;
    int tty = -1;
    if (cap > UI_PASS_MAX + 2)
        cap = UI_PASS_MAX + 2;
    if (fd >= 0) {
        n = read_line_fd(fd, pw, cap);
    } else {
        tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (tty < 0) {
            vapp_errf(err, "no terminal to read the password from (%s); give it on a file "
                           "descriptor with --password-fd N",
                      strerror(errno));
            return -1;
        }
        struct termios t;
        if (tcgetattr(tty, &t) != 0) {
            vapp_errf(err, "cannot read a password from the terminal: %s", strerror(errno));
            close(tty);
            return -1;
        }
        g_saved = t;
        struct sigaction sa, old[3];
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
        for (int i = 0; i < 3; i++)
            sigaction(sigs[i], &sa, &old[i]);
        t.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
        t.c_lflag |= ECHONL | ICANON;
        g_tty_fd = tty;
        (void)tcsetattr(tty, TCSAFLUSH, &t);
        /* The prompt only once echo is off: what is typed after it is never shown. */
        char prompt[256];
        int pl = snprintf(prompt, sizeof prompt, "Password for %s@%s: ", user, where);
        if (pl > 0)
            (void)!write(tty, prompt, (size_t)pl < sizeof prompt ? (size_t)pl : sizeof prompt - 1);
        n = read_line_fd(tty, pw, cap);
        int e = errno;
        (void)tcsetattr(tty, TCSAFLUSH, &g_saved);
        g_tty_fd = -1;
        for (int i = 0; i < 3; i++)
            sigaction(sigs[i], &old[i], NULL);
        if (n == -1)
            (void)!write(tty, "\n", 1); /* ^D: ECHONL did not end the prompt's line */
        close(tty);
        errno = e;
    }
    if (n > 0) {
        *len = (size_t)n;
        return 0;
    }
    veil_memzero(pw, cap);
    const char *src = fd >= 0 ? "--password-fd" : "the terminal";
    if (n == -1)
        vapp_errf(err, "no password given (end of input on %s)", src);
    else if (n == -2)
        vapp_errf(err, "password too long (at most %d bytes)", UI_PASS_MAX);
    else if (n == -3)
        vapp_errf(err, "the password contains a NUL byte");
    else if (n == -4)
        vapp_errf(err, "cannot read the password from %s: %s", src, strerror(errno));
    else
        vapp_errf(err, "empty password");
    return -1;
}
