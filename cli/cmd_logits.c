/* g4 logits: run a token sequence through a model and print or save the logits. */
#include "cli.h"
#include "g4.h"
#include "util/wfile.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: g4 logits MODEL --tokens ID,ID,... [--all] [--out FILE] [--exact] [--incremental]\n"
    "                 [--kv SPEC] [--ctx N]\n"
    "\n"
    "  --tokens IDS     token ids, comma-separated (fed as given: no BOS is added)\n"
    "  --all            logits of every position (default: the last one)\n"
    "  --out FILE       write little-endian float32 rows of n_vocab values, one per position;\n"
    "                   without it, one line of space-separated values per position on stdout\n"
    "  --exact          float32 activations everywhere (weights dequantized, no activation\n"
    "                   quantization): the reference mode\n"
    "  --incremental    feed the tokens one decode step at a time instead of as one prompt\n"
    "  --kv SPEC        KV cache types (default f32 on every layer; f16, or a compressed\n"
    "                   type for the full-attention layers: q8, tq4, tq3, tq2; k=TYPE,v=TYPE;\n"
    "                   layers=all, donors=TYPE, N=TYPE; see g4 bench --help)\n"
    "  --ctx N          context length (default: the number of tokens)\n"
    "  --threads N      worker threads (default: one per CPU)\n"
    "  --top K          instead of every logit, print the K most likely next tokens of each\n"
    "                   printed position: id, logit, probability and the token's text\n";

static void print_piece(const char *s, size_t n) {
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch < 32 || ch == 127) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('\'');
}

/* the k largest logits of a row, with softmax probabilities */
static void print_top(const g4_model *m, const float *x, size_t V, int k, size_t pos) {
    float mx = x[0];
    for (size_t i = 1; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (size_t i = 0; i < V; i++) sum += exp((double)x[i] - mx);
    printf("position %zu:", pos);
    int prev = -1;
    for (int j = 0; j < k && (size_t)j < V; j++) {
        int best = -1; /* next largest below the previous pick (ties by id) */
        for (size_t i = 0; i < V; i++) {
            if (prev >= 0 && (x[i] > x[prev] || (x[i] == x[prev] && (int)i <= prev))) continue;
            if (best < 0 || x[i] > x[best]) best = (int)i;
        }
        if (best < 0) break;
        size_t len;
        const char *t = g4_token_text(m, best, &len);
        printf("  %d (%.3f, p=%.3f", best, x[best], exp((double)x[best] - mx) / sum);
        if (t) {
            putchar(' ');
            print_piece(t, len);
        }
        putchar(')');
        prev = best;
    }
    putchar('\n');
}

static int32_t *parse_tokens(const char *s, int *n) {
    int cap = 16, k = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return NULL;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            free(ids);
            cli_die_usage(usage, "bad token id near '%.20s' in --tokens", p);
        }
        if (k == cap) {
            cap *= 2;
            int32_t *t = realloc(ids, (size_t)cap * sizeof *ids);
            if (!t) {
                free(ids);
                return NULL;
            }
            ids = t;
        }
        ids[k++] = (int32_t)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    *n = k;
    return ids;
}

static int write_f32_le(FILE *f, const float *x, size_t n) {
    const uint16_t one = 1;
    if (*(const uint8_t *)&one == 1) return fwrite(x, sizeof(float), n, f) == n;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        if (fwrite(b, 1, 4, f) != 4) return 0;
    }
    return 1;
}

int g4_cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *tokens = NULL, *out_path = NULL;
    int all = 0, exact = 0, incremental = 0;
    long top = 0, threads = 0;
    long n_ctx = 0;
    g4_ctx_params p = g4_ctx_default_params();
    p.kv_type = G4_KV_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--tokens") && i + 1 < argc) tokens = argv[++i];
        else if (!strcmp(a, "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(a, "--all")) all = 1;
        else if (!strcmp(a, "--exact")) exact = 1;
        else if (!strcmp(a, "--incremental")) incremental = 1;
        else if (!strcmp(a, "--kv") && i + 1 < argc) cli_kv_option(usage, argv[++i], &p);
        else if (!strcmp(a, "--ctx") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 1 << 24, &n_ctx)) cli_die_usage(usage, "bad --ctx '%s'", argv[i]);
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 256, &threads)) cli_die_usage(usage, "bad --threads '%s'", argv[i]);
        } else if (!strcmp(a, "--top") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 1000, &top)) cli_die_usage(usage, "bad --top '%s'", argv[i]);
        } else if (a[0] == '-') cli_die_usage(usage, "unknown or incomplete option '%s'", a);
        else if (!model_path) model_path = a;
        else cli_die_usage(usage, "unexpected argument '%s'", a);
    }
    if (!model_path) cli_die_usage(usage, "no model given");
    if (!tokens) cli_die_usage(usage, "no --tokens given");
    int n = 0;
    int32_t *ids = parse_tokens(tokens, &n);
    if (!ids) {
        fprintf(stderr, "g4: out of memory\n");
        return 1;
    }
    if (n == 0) {
        free(ids);
        cli_die_usage(usage, "--tokens is empty");
    }
    g4_error err = {0};
    g4_model *m;
    if (g4_model_open(&m, model_path, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        free(ids);
        return 1;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    p.n_ctx = n_ctx ? (int)n_ctx : n;
    p.exact = exact;
    p.n_threads = (int)threads;
    g4_ctx *c;
    int rc = 1;
    float *logits = NULL;
    if (g4_ctx_new(&c, m, &p, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        g4_model_free(m);
        free(ids);
        return 1;
    }
    size_t V = (size_t)info.n_vocab, rows = all ? (size_t)n : 1;
    logits = malloc(rows * V * sizeof *logits);
    if (!logits) {
        fprintf(stderr, "g4: out of memory for %zu logits\n", rows * V);
        goto done;
    }
    if (incremental) {
        for (int i = 0; i < n; i++) {
            float *dst = all ? logits + (size_t)i * V : logits;
            if (g4_eval(c, ids + i, 1, (all || i == n - 1) ? dst : NULL, 0, &err)) {
                fprintf(stderr, "g4: %s\n", err.msg);
                goto done;
            }
        }
    } else if (g4_eval(c, ids, n, logits, all, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        goto done;
    }
    if (out_path) { /* util/wfile: never over a device or through a symlink; complete or not at all */
        g4_wfile *wf;
        if (g4_wfile_open(&wf, out_path, &err)) {
            fprintf(stderr, "g4: cannot write '%s': %s\n", out_path, err.msg);
            goto done;
        }
        if (!write_f32_le(g4_wfile_stream(wf), logits, rows * V)) {
            fprintf(stderr, "g4: writing '%s' failed: %s\n", out_path, strerror(errno));
            g4_wfile_abort(wf);
            goto done;
        }
        if (g4_wfile_commit(wf, &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
    } else if (top) {
        for (size_t r = 0; r < rows && cli_stdout_ok(NULL); r++) print_top(m, logits + r * V, V, (int)top, all ? r : (size_t)n - 1);
    } else {
        for (size_t r = 0; r < rows && cli_stdout_ok(NULL); r++) {
            for (size_t i = 0; i < V; i++) printf(i ? " %.7g" : "%.7g", logits[r * V + i]);
            putchar('\n');
        }
    }
    if (!cli_stdout_flush(NULL)) goto done;
    rc = 0;
done:
    free(logits);
    g4_ctx_free(c);
    g4_model_free(m);
    free(ids);
    return rc;
}
