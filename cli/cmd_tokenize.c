/* g4 tokenize / detokenize / vocab-import: the tokenizer from the command line. */
#include "cli.h"
#include "g4.h"
#include "tokenizer/import_hf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *tok_usage =
    "usage: g4 tokenize MODEL (--text T | --file F) [--lines | --sep S] [--no-bos] [--special] [--bench]\n"
    "\n"
    "  MODEL       a GGUF file with a tokenizer: a whole model or a vocab-only file\n"
    "  --text T    the text to tokenize\n"
    "  --file F    read the text from F ('-': standard input)\n"
    "  --lines     every input line (ended by \"\\n\") is a text of its own: one output line of ids each\n"
    "              (an empty line gives an empty line)\n"
    "  --sep S     the input is several texts separated by the string S: one output line of ids each\n"
    "  --no-bos    do not add BOS in front\n"
    "  --special   control tokens written in the text (<|turn>, <bos>, ...) become those tokens\n"
    "              (without it they are plain text; user-defined tokens are always recognised)\n"
    "  --bench     tokenize the input repeatedly for about 2 s and report tokens/s (no ids printed)\n"
    "\n"
    "Prints the ids separated by spaces.\n";

static const char *detok_usage =
    "usage: g4 detokenize MODEL [--ids ID,ID,...] [--lines] [--special]\n"
    "\n"
    "  --ids IDS   token ids separated by commas or spaces; without it they are read from standard input\n"
    "  --lines     (standard input) every line is a sequence of its own: one output line each\n"
    "  --special   print control tokens too (<|turn>, <bos>, ...)\n"
    "\n"
    "Prints the text the ids stand for (nothing added at the end, except one \"\\n\" per line with --lines).\n";

static const char *import_usage =
    "usage: g4 vocab-import TOKENIZER.json --out VOCAB.gguf [--model gemma4|llama] [--name NAME]\n"
    "                       [--config tokenizer_config.json] [--chat-template FILE]\n"
    "\n"
    "Converts a Hugging Face tokenizer.json (BPE, as Gemma ships it) into a vocab-only GGUF with the\n"
    "tokenizer section llama.cpp's converter writes.\n"
    "  --model M          gemma4 (default): BPE with merges (Gemma 4); llama: SentencePiece layout (Gemma 3)\n"
    "  --name NAME        general.name (default g4-vocab-MODEL)\n"
    "  --config FILE      take the chat template from a tokenizer_config.json\n"
    "  --chat-template F  take the chat template from a file\n";

/* whole file ('-': stdin) into memory */
static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

typedef struct obuf {
    char *p;
    size_t n, cap;
} obuf;

static void ob_flush(obuf *o) {
    if (o->n && cli_stdout_ok(NULL)) fwrite(o->p, 1, o->n, stdout);
    o->n = 0;
}

static void ob_ids(obuf *o, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (o->n + 16 > o->cap) ob_flush(o);
        char tmp[12];
        int k = 0;
        uint32_t v = (uint32_t)ids[i];
        do tmp[k++] = (char)('0' + v % 10);
        while (v /= 10);
        if (i) o->p[o->n++] = ' ';
        while (k) o->p[o->n++] = tmp[--k];
    }
    if (o->n + 1 > o->cap) ob_flush(o);
    o->p[o->n++] = '\n';
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct piece {
    const char *p;
    size_t n;
} piece;

/* splits the input into texts: one (whole), lines, or by a separator */
static piece *split(const char *buf, size_t len, int lines, const char *sep, size_t *n_out) {
    size_t cap = 16, n = 0;
    piece *v = malloc(cap * sizeof *v);
    if (!v) return NULL;
    const char *s = lines ? "\n" : sep;
    size_t sl = s ? strlen(s) : 0;
    size_t i = 0;
    for (;;) {
        const char *hit = sl ? memmem(buf + i, len - i, s, sl) : NULL;
        size_t end = hit ? (size_t)(hit - buf) : len;
        if (!hit && lines && i == len) break; /* a final "\n" does not start another line */
        if (n == cap) {
            piece *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                free(v);
                return NULL;
            }
            v = nv;
            cap *= 2;
        }
        v[n].p = buf + i;
        v[n].n = end - i;
        n++;
        if (!hit) break;
        i = end + sl;
    }
    *n_out = n;
    return v;
}

int g4_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *sep = NULL;
    int lines = 0, bos = 1, special = 0, bench = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(tok_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--text") && i + 1 < argc) {
            text = argv[++i];
        } else if (!strcmp(a, "--file") && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(a, "--sep") && i + 1 < argc) {
            sep = argv[++i];
        } else if (!strcmp(a, "--lines")) {
            lines = 1;
        } else if (!strcmp(a, "--no-bos")) {
            bos = 0;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else if (!strcmp(a, "--bench")) {
            bench = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage(tok_usage, "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            cli_die_usage(tok_usage, "unexpected argument '%s'", a);
        }
    }
    if (!model) cli_die_usage(tok_usage, "no MODEL");
    if (!text == !file) cli_die_usage(tok_usage, "give --text or --file");
    if (lines && sep) cli_die_usage(tok_usage, "--lines and --sep do not go together");
    if (sep && !*sep) cli_die_usage(tok_usage, "empty --sep");

    double t0 = now_s();
    g4_error err;
    g4_vocab *v;
    if (g4_vocab_open(&v, model, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    double t_load = now_s() - t0;
    size_t len;
    char *buf;
    if (file) {
        buf = read_all(file, &len);
        if (!buf) {
            fprintf(stderr, "g4: cannot read %s: %s\n", file, strerror(errno));
            g4_vocab_free(v);
            return 1;
        }
    } else {
        len = strlen(text);
        buf = malloc(len + 1);
        if (buf) memcpy(buf, text, len + 1);
    }
    size_t n_texts = 0;
    piece *texts = buf ? split(buf, len, lines, sep, &n_texts) : NULL;
    size_t longest = 0;
    for (size_t i = 0; i < n_texts; i++) longest = texts[i].n > longest ? texts[i].n : longest;
    size_t cap = g4_tokenize_bound(longest);
    int32_t *ids = texts ? malloc(cap * sizeof *ids) : NULL;
    obuf o = {malloc(1 << 16), 0, 1 << 16};
    if (!buf || !texts || !ids || !o.p) {
        fprintf(stderr, "g4: out of memory\n");
        free(buf);
        free(texts);
        free(ids);
        free(o.p);
        g4_vocab_free(v);
        return 1;
    }
    int rc = 0;
    double t1 = now_s(), elapsed = 0;
    size_t total = 0, bytes = 0;
    int rounds = 0;
    do {
        for (size_t i = 0; i < n_texts; i++) {
            size_t n;
            if (g4_tokenize(v, texts[i].p, texts[i].n, bos, special, ids, cap, &n, &err)) {
                fprintf(stderr, "g4: %s\n", err.msg);
                rc = 1;
                break;
            }
            total += n;
            bytes += texts[i].n;
            if (!bench) ob_ids(&o, ids, n);
            if (!cli_stdout_ok(NULL)) { /* stop at the first failed write */
                rc = 1;
                break;
            }
        }
        rounds++;
        elapsed = now_s() - t1;
    } while (bench && !rc && elapsed < 2.0);
    ob_flush(&o);
    if (bench && !rc)
        fprintf(stderr,
                "%s: vocabulary %s, %d tokens, loaded in %.3f s\n"
                "%zu texts, %zu bytes, %zu tokens per round; %d rounds in %.3f s: %.0f tokens/s, %.2f MB/s\n",
                model, g4_vocab_kind(v), g4_vocab_n_tokens(v), t_load, n_texts, bytes / (size_t)rounds,
                total / (size_t)rounds, rounds, elapsed, (double)total / elapsed, (double)bytes / elapsed / 1e6);
    free(buf);
    free(texts);
    free(ids);
    free(o.p);
    g4_vocab_free(v);
    if (!cli_stdout_flush(NULL)) rc = 1;
    return rc;
}

/* ids separated by commas and/or white space; returns -1 on a bad id */
static int parse_ids(const char *s, const char *end, int32_t **ids, size_t *n, size_t *cap, int n_vocab) {
    const char *p = s;
    while (p < end) {
        while (p < end && (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
        if (p >= end) break;
        long v = 0;
        const char *q = p;
        while (q < end && *q >= '0' && *q <= '9' && v <= 100000000) v = v * 10 + (*q++ - '0');
        if (q == p || (q < end && !(*q == ',' || *q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))) {
            fprintf(stderr, "g4: bad token id near '%.20s'\n", p);
            return -1;
        }
        if (v >= n_vocab) {
            fprintf(stderr, "g4: token id %ld is outside the vocabulary (0..%d)\n", v, n_vocab - 1);
            return -1;
        }
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 256;
            int32_t *t = realloc(*ids, c * sizeof *t);
            if (!t) {
                fprintf(stderr, "g4: out of memory\n");
                return -1;
            }
            *ids = t;
            *cap = c;
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = q;
    }
    return 0;
}

static int detok_print(const g4_vocab *v, const int32_t *ids, size_t n, int special) {
    g4_error err;
    g4_detok *d;
    if (g4_detok_new(&d, v, special, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i <= n; i++) {
        size_t m;
        const char *p = i < n ? g4_detok_push(d, ids[i], &m) : g4_detok_flush(d, &m);
        if (m) fwrite(p, 1, m, stdout);
        if (!cli_stdout_ok(NULL)) break;
    }
    g4_detok_free(d);
    return cli_stdout_ok(NULL) ? 0 : 1;
}

int g4_cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL;
    int lines = 0, special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(detok_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--ids") && i + 1 < argc) {
            ids_arg = argv[++i];
        } else if (!strcmp(a, "--lines")) {
            lines = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage(detok_usage, "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            cli_die_usage(detok_usage, "unexpected argument '%s'", a);
        }
    }
    if (!model) cli_die_usage(detok_usage, "no MODEL");
    if (lines && ids_arg) cli_die_usage(detok_usage, "--lines reads standard input: not with --ids");
    g4_error err;
    g4_vocab *v;
    if (g4_vocab_open(&v, model, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    size_t len;
    char *buf = ids_arg ? NULL : read_all("-", &len);
    const char *in = ids_arg ? ids_arg : buf;
    if (ids_arg) len = strlen(ids_arg);
    int rc = 0;
    if (!in) {
        fprintf(stderr, "g4: cannot read standard input\n");
        rc = 1;
    }
    int32_t *ids = NULL;
    size_t cap = 0;
    const char *p = in, *end = in ? in + len : NULL;
    while (!rc && p < end) {
        const char *e = lines ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (!e) e = end;
        size_t n = 0;
        if (parse_ids(p, e, &ids, &n, &cap, g4_vocab_n_tokens(v))) rc = 1;
        else rc = detok_print(v, ids, n, special);
        if (!rc && lines) putchar('\n');
        p = e + (e < end);
    }
    free(ids);
    free(buf);
    g4_vocab_free(v);
    if (!cli_stdout_flush(NULL)) rc = 1;
    return rc;
}

int g4_cmd_vocab_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *kind = "gemma4", *name = NULL, *config = NULL, *tmpl = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(import_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--model") && i + 1 < argc) {
            kind = argv[++i];
        } else if (!strcmp(a, "--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (!strcmp(a, "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(a, "--chat-template") && i + 1 < argc) {
            tmpl = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage(import_usage, "unknown option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            cli_die_usage(import_usage, "unexpected argument '%s'", a);
        }
    }
    if (!in) cli_die_usage(import_usage, "no TOKENIZER.json");
    if (!out) cli_die_usage(import_usage, "no --out");
    g4_hf_layout layout = G4_HF_GEMMA4;
    if (!strcmp(kind, "gemma4")) layout = G4_HF_GEMMA4;
    else if (!strcmp(kind, "llama")) layout = G4_HF_LLAMA;
    else cli_die_usage(import_usage, "--model must be gemma4 or llama, not '%s'", kind);
    g4_error err;
    g4_hf_vocab *hv;
    if (g4_hf_vocab_load(&hv, in, layout, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    g4_status s = G4_OK;
    if (config) s = g4_hf_vocab_load_config(hv, config, &err);
    if (!s && tmpl) {
        size_t len;
        char *t = read_all(tmpl, &len);
        if (!t) {
            fprintf(stderr, "g4: cannot read %s: %s\n", tmpl, strerror(errno));
            g4_hf_vocab_free(hv);
            return 1;
        }
        s = g4_hf_vocab_set_chat_template(hv, t, len, &err);
        free(t);
    }
    if (!s) s = g4_hf_vocab_write(hv, out, name, &err);
    if (s) {
        fprintf(stderr, "g4: %s\n", err.msg);
        g4_hf_vocab_free(hv);
        return 1;
    }
    printf("%s: tokenizer \"%s\", %u tokens, %u merges, bos %d, eos %d%s\n", out, kind, hv->n, hv->n_merges, hv->bos,
           hv->eos, hv->chat_template ? ", chat template" : "");
    g4_hf_vocab_free(hv);
    return cli_stdout_flush(NULL) ? 0 : 1;
}
