/*
 * ui_term.h - line input that does not fight with asynchronous output.
 *
 * The chat (docs/SERVICES.md) reads what a person types while lines from
 * other participants arrive at any moment.  ui_term reads lines from a file
 * descriptor in one of two ways:
 *
 *  - terminal (input and output both ttys): the terminal is put in a raw
 *    mode (no kernel echo, no kernel line editing, no signals from keys) and
 *    ui_term edits the line itself: printable text, Backspace (one UTF-8
 *    character), Ctrl-U (whole line), Ctrl-W (word), Ctrl-L (redraw), Enter.
 *    Ctrl-C, and Ctrl-D on an empty line, end the input.  Every line printed
 *    with ui_term_print first clears the prompt line, prints the text on a
 *    line of its own, then redraws the prompt and the partial input, so
 *    output and typing never garble each other.  The terminal settings are
 *    restored by ui_term_close, at exit, and on SIGTERM/SIGHUP/SIGINT.
 *  - anything else (a pipe, a file, a tty whose output is redirected):
 *    plain lines, "\n" or "\r\n" terminated, no prompt, no echo; output
 *    lines are written whole.
 *
 * ui_term never blocks: ui_term_read does one read(2) (call it when poll(2)
 * says the descriptor is readable), so a caller can poll a socket and the
 * terminal together.  The descriptor is not switched to O_NONBLOCK (that
 * would leak to the shell sharing the terminal).
 */
#ifndef VEIL_UI_TERM_H
#define VEIL_UI_TERM_H

#include <stddef.h>
#include <stdio.h>
#include <termios.h>

#include "veil/veil.h"

/* Longest line accepted: a whole Veil message. */
#define UI_TERM_MAX_LINE VEIL_MAX_MESSAGE

/* ui_term_read results besides 0 (more input may come). */
enum {
    UI_TERM_EOF = 1,  /* end of input (EOF, or Ctrl-D on an empty line) */
    UI_TERM_INTR = 2, /* Ctrl-C typed (terminal mode only) */
};

typedef struct ui_term {
    int fd;       /* input */
    FILE *out;    /* where lines and the prompt go */
    int raw;      /* 1: terminal mode (see above) */
    int active;   /* raw settings applied */
    struct termios saved;
    char prompt[64];
    int prompt_shown;
    int esc;      /* inside an escape sequence: 1 after ESC, 2 inside CSI/SS3 */
    int too_long; /* the current line passed UI_TERM_MAX_LINE: it is dropped */
    size_t len;
    char line[UI_TERM_MAX_LINE + 1];
} ui_term;

/*
 * Called for each complete line (without its terminator, NUL-terminated).
 * too_long: the line was longer than UI_TERM_MAX_LINE and was dropped (line
 * is then empty).  A non-zero return stops ui_term_read, which returns it.
 */
typedef int (*ui_term_line_fn)(void *user, const char *line, size_t len, int too_long);

/* Sets t up for fd; terminal mode when fd and out are both terminals.
 * Returns 0, or -1 if the terminal could not be configured (errno). */
int ui_term_open(ui_term *t, int fd, FILE *out, const char *prompt);
/* Reads once and calls fn for every complete line.  Returns 0, UI_TERM_EOF,
 * UI_TERM_INTR, -1 on a read error (errno), or fn's non-zero result.  At EOF
 * a last line without a terminator is delivered first. */
int ui_term_read(ui_term *t, ui_term_line_fn fn, void *user);
/* Prints one line of output (text without newline) as described above. */
void ui_term_print(ui_term *t, const char *text);
/* Takes the prompt off the screen (before writing something else to the
 * terminal) and puts it back. No-ops outside terminal mode. */
void ui_term_hide(ui_term *t);
void ui_term_show(ui_term *t);
/* Restores the terminal (idempotent). */
void ui_term_close(ui_term *t);

#endif /* VEIL_UI_TERM_H */
