/*
 * ui_term.c - line input that does not fight with asynchronous output
 * (see ui_term.h).
 */
#include "ui_term.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The terminal whose settings must be restored on exit or on a signal.
 * One at a time: a program has one controlling terminal. */
static ui_term *g_active;
static int g_hooks_installed;

static void restore_now(void)
{
    ui_term *t = g_active;
    if (t != NULL && t->active) {
        (void)tcsetattr(t->fd, TCSAFLUSH, &t->saved);
        t->active = 0;
    }
}

static void on_exit_restore(void)
{
    if (g_active != NULL && g_active->prompt_shown) {
        fputs("\r\033[K", g_active->out);
        fflush(g_active->out);
    }
    restore_now();
}

/* tcsetattr is async-signal-safe; then the signal's default action. */
static void on_fatal_signal(int sig)
{
    ui_term *t = g_active;
    if (t != NULL && t->active) {
        (void)tcsetattr(t->fd, TCSAFLUSH, &t->saved);
        t->active = 0;
        (void)!write(STDOUT_FILENO, "\r\n", 2);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_hooks(void)
{
    if (g_hooks_installed)
        return;
    g_hooks_installed = 1;
    atexit(on_exit_restore);
    static const int sigs[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        /* Keep a handler someone else installed (or an ignored signal). */
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            (void)sigaction(sigs[i], &sa, NULL);
    }
}

int ui_term_open(ui_term *t, int fd, FILE *out, const char *prompt)
{
    memset(t, 0, sizeof *t);
    t->fd = fd;
    t->out = out;
    snprintf(t->prompt, sizeof t->prompt, "%s", prompt ? prompt : "");
    if (!isatty(fd) || !isatty(fileno(out)))
        return 0;
    if (tcgetattr(fd, &t->saved) != 0)
        return -1;
    struct termios raw = t->saved;
    /* No kernel echo, line editing, signal keys or flow control; output
       processing stays on, so "\n" still moves to the start of a line. */
    raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= (tcflag_t) ~(IXON | ISTRIP | INLCR | IGNCR);
    raw.c_iflag |= ICRNL;
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    install_hooks();
    g_active = t;
    if (tcsetattr(fd, TCSAFLUSH, &raw) != 0) {
        g_active = NULL;
        return -1;
    }
    t->raw = 1;
    t->active = 1;
    ui_term_show(t);
    return 0;
}

static size_t term_cols(const ui_term *t)
{
    struct winsize ws;
    if (ioctl(fileno(t->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Redraws prompt + input; a line wider than the terminal shows its tail,
 * so the cursor never wraps onto a row "\r\033[K" would not clear. */
static void redraw(ui_term *t)
{
    size_t cols = term_cols(t);
    size_t plen = strlen(t->prompt);
    size_t avail = cols > plen + 11 ? cols - plen - 1 : 10;
    size_t start = t->len, chars = 0;
    while (start > 0) {
        size_t i = start - 1;
        /* Step back over UTF-8 continuation bytes to a character start. */
        while (i > 0 && ((unsigned char)t->line[i] & 0xC0) == 0x80)
            i--;
        if (chars + 1 > avail)
            break;
        chars++;
        start = i;
    }
    fputs("\r\033[K", t->out);
    fputs(t->prompt, t->out);
    fwrite(t->line + start, 1, t->len - start, t->out);
    fflush(t->out);
    t->prompt_shown = 1;
}

void ui_term_hide(ui_term *t)
{
    if (!t->raw || !t->prompt_shown)
        return;
    fputs("\r\033[K", t->out);
    fflush(t->out);
    t->prompt_shown = 0;
}

void ui_term_show(ui_term *t)
{
    if (t->raw && t->active)
        redraw(t);
}

void ui_term_print(ui_term *t, const char *text)
{
    if (t->raw) {
        ui_term_hide(t);
        fputs(text, t->out);
        fputs("\n", t->out);
        ui_term_show(t);
    } else {
        fputs(text, t->out);
        fputs("\n", t->out);
    }
    fflush(t->out);
}

void ui_term_close(ui_term *t)
{
    if (t->raw && t->active) {
        ui_term_hide(t);
        (void)tcsetattr(t->fd, TCSAFLUSH, &t->saved);
        t->active = 0;
    }
    if (g_active == t)
        g_active = NULL;
}

/* Appends one input byte to the line (dropping the line when it is too long). */
static void put_byte(ui_term *t, char ch)
{
    if (t->too_long)
        return;
    if (t->len >= UI_TERM_MAX_LINE) {
        t->too_long = 1;
        return;
    }
    t->line[t->len++] = ch;
}

/* Ends the current line and hands it to fn. */
static int deliver(ui_term *t, ui_term_line_fn fn, void *user)
{
    int too_long = t->too_long;
    size_t len = too_long ? 0 : t->len;
    t->line[len] = '\0';
    t->len = 0;
    t->too_long = 0;
    return fn(user, t->line, len, too_long);
}

static void erase_char(ui_term *t)
{
    while (t->len > 0) {
        unsigned char b = (unsigned char)t->line[--t->len];
        if ((b & 0xC0) != 0x80)
            break; /* removed a whole UTF-8 character */
    }
}

static void erase_word(ui_term *t)
{
    while (t->len > 0 && t->line[t->len - 1] == ' ')
        t->len--;
    while (t->len > 0 && t->line[t->len - 1] != ' ')
        t->len--;
}

/* Terminal mode: one byte typed. Returns 0, UI_TERM_*, or fn's result. */
static int raw_byte(ui_term *t, unsigned char b, ui_term_line_fn fn, void *user)
{
    if (t->esc == 1) {
        /* ESC [ or ESC O start a sequence (arrows, function keys); any other
           byte ends a two-byte escape.  Both are ignored. */
        t->esc = (b == '[' || b == 'O') ? 2 : 0;
        return 0;
    }
    if (t->esc == 2) {
        if (b >= 0x40 && b <= 0x7E)
            t->esc = 0;
        return 0;
    }
    switch (b) {
    case '\r':
    case '\n': {
        /* The typed line leaves the screen; the caller shows it if it wants. */
        ui_term_hide(t);
        return deliver(t, fn, user);
    }
    case 0x03: /* Ctrl-C */
        return UI_TERM_INTR;
    case 0x04: /* Ctrl-D */
        return t->len == 0 && !t->too_long ? UI_TERM_EOF : 0;
    case 0x08:
    case 0x7F: /* Backspace */
        if (t->too_long) {
            t->too_long = 0;
            t->len = 0;
        }
        erase_char(t);
        return 0;
    case 0x15: /* Ctrl-U */
        t->len = 0;
        t->too_long = 0;
        return 0;
    case 0x17: /* Ctrl-W */
        erase_word(t);
        return 0;
    case 0x1B:
        t->esc = 1;
        return 0;
    case '\t':
        put_byte(t, ' ');
        return 0;
    default:
        if (b < 0x20)
            return 0; /* other control keys: ignored */
        put_byte(t, (char)b);
        return 0;
    }
}

int ui_term_read(ui_term *t, ui_term_line_fn fn, void *user)
{
    char buf[4096];
    ssize_t n;
    do {
        n = read(t->fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
    if (n == 0) {
        /* A last line without its newline still counts. */
        if (!t->raw && (t->len > 0 || t->too_long)) {
            int r = deliver(t, fn, user);
            if (r != 0)
                return r;
        }
        ui_term_hide(t);
        return UI_TERM_EOF;
    }
    int r = 0;
    for (ssize_t i = 0; i < n && r == 0; i++) {
        unsigned char b = (unsigned char)buf[i];
        if (t->raw) {
            r = raw_byte(t, b, fn, user);
        } else if (b == '\n') {
            if (t->len > 0 && t->line[t->len - 1] == '\r')
                t->len--;
            r = deliver(t, fn, user);
        } else {
            put_byte(t, (char)b);
        }
    }
    if (t->raw && t->active && r == 0)
        redraw(t);
    return r;
}
