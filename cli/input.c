/* Reading the user's lines in g4 chat: libedit (BSD editline: line editing, history in memory) when
 * standard input is a terminal, plain getline otherwise (pipes, files, tests). */
#include "cli.h"

#include <errno.h>
#include <histedit.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

struct cli_input {
    EditLine *el;
    History *hist;
    HistEvent ev;
    const char *prompt;
    volatile sig_atomic_t *interrupted;
};

static char *prompt_fn(EditLine *el) {
    void *d = NULL;
    el_get(el, EL_CLIENTDATA, &d);
    cli_input *in = d;
    return (char *)(in && in->prompt ? in->prompt : "");
}

/* one character from the terminal: like libedit's own reader, but a signal (Ctrl-C) ends the read at once
 * (libedit retries the first interrupted read) so that the line is abandoned; UTF-8 (or the locale's
 * encoding) decoded here */
static int getc_fn(EditLine *el, wchar_t *wc) {
    void *d = NULL;
    el_get(el, EL_CLIENTDATA, &d);
    cli_input *in = d;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    for (;;) {
        unsigned char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r == 0) return 0;
        if (r < 0) {
            if (errno == EINTR && !(in && in->interrupted && *in->interrupted)) continue;
            return -1;
        }
        size_t k = mbrtowc(wc, (const char *)&c, 1, &st);
        if (k == (size_t)-2) continue;    /* more bytes of this character */
        if (k == (size_t)-1) {            /* not valid in the locale: the byte itself */
            memset(&st, 0, sizeof st);
            *wc = (wchar_t)c;
        }
        return 1;
    }
}

cli_input *cli_input_new(const char *prog, int tty, volatile sig_atomic_t *interrupted) {
    cli_input *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->interrupted = interrupted;
    if (!tty) return in;
    /* the terminal's encoding (UTF-8 text in and out); only LC_CTYPE, numbers keep the C locale */
    if (!setlocale(LC_CTYPE, "") || MB_CUR_MAX == 1) setlocale(LC_CTYPE, "C.UTF-8");
    in->el = el_init(prog, stdin, stdout, stderr);
    in->hist = history_init();
    if (!in->el || !in->hist) { /* no editor after all: plain reading */
        if (in->el) el_end(in->el);
        if (in->hist) history_end(in->hist);
        in->el = NULL;
        in->hist = NULL;
        return in;
    }
    history(in->hist, &in->ev, H_SETSIZE, 1000);
    history(in->hist, &in->ev, H_SETUNIQUE, 1);
    el_set(in->el, EL_CLIENTDATA, (void *)in);
    el_set(in->el, EL_EDITOR, "emacs");
    el_set(in->el, EL_SIGNAL, 0); /* g4's own SIGINT handler stays (Ctrl-C stops an answer) */
    el_set(in->el, EL_PROMPT, prompt_fn);
    el_set(in->el, EL_HIST, history, in->hist);
    el_set(in->el, EL_GETCFN, getc_fn);
    el_source(in->el, NULL); /* ~/.editrc, as other editline programs */
    return in;
}

void cli_input_free(cli_input *in) {
    if (!in) return;
    if (in->el) el_end(in->el);
    if (in->hist) history_end(in->hist);
    free(in);
}

int cli_input_is_editing(const cli_input *in) { return in && in->el; }

char *cli_input_read(cli_input *in, const char *prompt, int *interrupted) {
    *interrupted = 0;
    if (!in->el) {
        if (prompt && *prompt) {
            fputs(prompt, stdout);
            fflush(stdout);
        }
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            free(line);
            if (in->interrupted && *in->interrupted) {
                clearerr(stdin);
                *in->interrupted = 0;
                *interrupted = 1;
            }
            return NULL;
        }
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (n && line[n - 1] == '\r') line[--n] = 0;
        return line;
    }
    in->prompt = prompt ? prompt : "";
    int count = 0;
    const char *l = el_gets(in->el, &count);
    if (!l || count <= 0) {
        if (in->interrupted && *in->interrupted) { /* Ctrl-C: the line is dropped */
            *in->interrupted = 0;
            *interrupted = 1;
        }
        return NULL;
    }
    size_t n = strlen(l);
    char *line = malloc(n + 1);
    if (!line) return NULL;
    memcpy(line, l, n + 1);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (n) history(in->hist, &in->ev, H_ENTER, line);
    return line;
}
