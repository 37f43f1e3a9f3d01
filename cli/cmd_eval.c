/* g4 eval: perplexity of a model on a text with a given KV cache, and how far its next-token
 * distributions move from the same model with an f16 cache (mean KL divergence, top-1 agreement).
 *
 * The text is cut into windows of --ctx tokens, each evaluated from an empty cache. Per window, both
 * contexts see the same tokens: the reference in batches of 32 (an f16 cache gives the same logits in any
 * chunking), the evaluated one in calls of --chunk tokens. A compressed cache is read only for the tokens
 * of earlier calls (the tokens of one batch attend to each other's exact K/V, as in prefill), so
 * --chunk 1 is the measure of the cache itself: every position is a decode step on the compressed cache. */
#include "cli.h"
#include "g4.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *usage =
    "usage: g4 eval MODEL (--file TEXT | --tokens IDS) [--kv SPEC] [--ctx N] [--chunk N] [--exact]\n"
    "               [--ref-kv SPEC | --no-ref] [--limit N] [--threads N] [--json] [--quiet]\n"
    "\n"
    "Perplexity of the model on a text with the KV cache of --kv, and against the same model with\n"
    "an f16 cache (--ref-kv): the mean KL divergence KL(p_ref || p) of the next-token distributions\n"
    "and how often both predict the same most likely token (top-1 agreement).\n"
    "\n"
    "  --file F       the text, tokenized with the model's vocabulary\n"
    "  --tokens IDS   token ids instead, comma-separated (models without a vocabulary)\n"
    CLI_KV_HELP
    "  --ref-kv SPEC  the reference cache (default f16)\n"
    "  --no-ref       perplexity only (no reference context)\n"
    "  --ctx N        window: the text is cut into windows of N tokens (BOS first), each evaluated\n"
    "                 from an empty cache (default 1024)\n"
    "  --chunk N      tokens per evaluation call (default 32, the engine's batch; larger is the same).\n"
    "                 The tokens of one call attend to each other's exact K and V: only the tokens of\n"
    "                 earlier calls are read from the compressed cache. --chunk 1 makes every token\n"
    "                 attend to the compressed cache (every position a decode step): the real measure\n"
    "  --limit N      score at most N tokens (default: the whole text)\n"
    "  --exact        float32 activations in both contexts (no 8-bit activation quantization for\n"
    "                 quantized weights: its rounding flips add a noise floor of their own)\n"
    "  --threads N    worker threads (default: one per CPU)\n"
    "  --json         after the table, one JSON object on the last line of stdout\n"
    "  --quiet        no progress on stderr\n";

#define PIECE 32 /* tokens compared at a time (the engine's batch) */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int32_t *parse_ids(const char *s, size_t *n) {
    size_t cap = 64, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    while (ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) {
            free(ids);
            cli_die_usage(usage, "eval: bad token id near '%.20s' in --tokens", s);
        }
        if (k == cap) {
            int32_t *t = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!t) {
                free(ids);
                return NULL;
            }
            ids = t;
        }
        ids[k++] = (int32_t)v;
        s = end;
        while (*s == ',' || *s == ' ' || *s == '\n') s++;
    }
    *n = k;
    return ids;
}

/* log-sum-exp of a row, in double */
static double lse(const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + log(s);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

typedef struct stats {
    long n;               /* scored predictions */
    double nll, nll_ref;  /* sums of -log p(next) */
    double kl, kl_max;    /* sum and max of KL(p_ref || p) */
    long top1;            /* same argmax */
} stats;

int g4_cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL, *tokens = NULL;
    long n_ctx = 1024, chunk = 32, limit = 0, threads = 0;
    int json = 0, quiet = 0, no_ref = 0, exact = 0;
    g4_ctx_params p = g4_ctx_default_params(), pr = g4_ctx_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--file") && more) file = argv[++i];
        else if (!strcmp(a, "--tokens") && more) tokens = argv[++i];
        else if (!strcmp(a, "--kv") && more) cli_kv_option(usage, argv[++i], &p);
        else if (!strcmp(a, "--ref-kv") && more) cli_kv_option(usage, argv[++i], &pr);
        else if (!strcmp(a, "--no-ref")) no_ref = 1;
        else if (!strcmp(a, "--exact")) exact = 1;
        else if (!strcmp(a, "--ctx") && more) {
            if (!cli_parse_int(argv[++i], 2, 1 << 24, &n_ctx)) cli_die_usage(usage, "eval: bad --ctx '%s' (2..16777216)", argv[i]);
        } else if (!strcmp(a, "--chunk") && more) {
            if (!cli_parse_int(argv[++i], 1, 1 << 24, &chunk)) cli_die_usage(usage, "eval: bad --chunk '%s' (1 or more)", argv[i]);
        } else if (!strcmp(a, "--limit") && more) {
            if (!cli_parse_int(argv[++i], 1, 1L << 40, &limit)) cli_die_usage(usage, "eval: bad --limit '%s'", argv[i]);
        } else if (!strcmp(a, "--threads") && more) {
            if (!cli_parse_int(argv[++i], 1, 256, &threads)) cli_die_usage(usage, "eval: bad --threads '%s' (1..256)", argv[i]);
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (a[0] == '-') cli_die_usage(usage, "eval: unknown or incomplete option '%s'", a);
        else if (!model_path) model_path = a;
        else cli_die_usage(usage, "eval: unexpected argument '%s'", a);
    }
    if (!model_path) cli_die_usage(usage, "eval: no model given");
    if (!file == !tokens) cli_die_usage(usage, "eval: give the text with --file TEXT or its ids with --tokens IDS");
    if (chunk > PIECE) chunk = PIECE;

    g4_error err = {0};
    g4_model *m = NULL;
    g4_ctx *c = NULL, *cr = NULL;
    int32_t *ids = NULL, *win = NULL;
    float *lt = NULL, *lr = NULL;
    int rc = 1;
    size_t n_ids = 0;
    if (g4_model_open(&m, model_path, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    const g4_vocab *vocab = g4_model_vocab(m);
    int32_t bos = -1;
    if (file) {
        if (!vocab) {
            fprintf(stderr, "g4: %s has no tokenizer (tokenizer.ggml.* metadata): pass the text as --tokens IDS\n",
                    model_path);
            goto done;
        }
        size_t len;
        char *text = read_file(file, &len);
        if (!text) {
            fprintf(stderr, "g4: cannot read '%s': %s\n", file, strerror(errno));
            goto done;
        }
        g4_status st = g4_tokenize_alloc(vocab, text, len, 0, 0, &ids, &n_ids, &err);
        free(text);
        if (st) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
        bos = g4_vocab_bos(vocab);
    } else {
        ids = parse_ids(tokens, &n_ids);
        if (!ids) {
            fprintf(stderr, "g4: out of memory\n");
            goto done;
        }
    }
    /* windows: BOS (when the text came with a vocabulary that has one) + up to text_per_win tokens */
    const long text_per_win = bos >= 0 ? n_ctx - 1 : n_ctx;
    if ((long)n_ids + (bos >= 0) < 2) {
        fprintf(stderr, "g4: the text has %zu token%s: nothing to predict\n", n_ids, n_ids == 1 ? "" : "s");
        goto done;
    }
    p.n_ctx = pr.n_ctx = (int)n_ctx;
    p.n_threads = pr.n_threads = (int)threads;
    p.exact = pr.exact = exact;
    if (g4_ctx_new(&c, m, &p, &err) || (!no_ref && g4_ctx_new(&cr, m, &pr, &err))) {
        fprintf(stderr, "g4: %s\n", err.msg);
        goto done;
    }
    const size_t V = (size_t)info.n_vocab;
    lt = malloc(PIECE * V * sizeof *lt);
    lr = no_ref ? NULL : malloc(PIECE * V * sizeof *lr);
    win = malloc((size_t)n_ctx * sizeof *win);
    if (!lt || (!no_ref && !lr) || !win) {
        fprintf(stderr, "g4: out of memory for the logits\n");
        goto done;
    }
    long total = (long)n_ids - (bos >= 0 ? 0 : 1); /* predictions in the whole text */
    {
        long nwin = ((long)n_ids + text_per_win - 1) / text_per_win, extra = bos >= 0 ? 0 : nwin - 1;
        total -= extra; /* without BOS, each window's first token is not predicted */
    }
    if (limit && limit < total) total = limit;
    stats st = {0};
    const double t0 = now_s();
    double last = t0;
    int tty = isatty(2);
    for (size_t off = 0; off < n_ids && st.n < total;) {
        int n = 0;
        if (bos >= 0) win[n++] = bos;
        while (n < n_ctx && off < n_ids) win[n++] = ids[off++];
        if (n < 2) break;
        g4_ctx_reset(c);
        if (cr) g4_ctx_reset(cr);
        for (int i = 0; i < n - 1 && st.n < total; i += PIECE) {
            /* positions i .. i+np-1 predict tokens i+1 .. i+np */
            int np = n - 1 - i < PIECE ? n - 1 - i : PIECE;
            for (int j = 0; j < np; j += (int)chunk) {
                int nc = np - j < chunk ? np - j : (int)chunk;
                if (g4_eval(c, win + i + j, nc, lt + (size_t)j * V, 1, &err)) {
                    fprintf(stderr, "g4: %s\n", err.msg);
                    goto done;
                }
            }
            if (cr && g4_eval(cr, win + i, np, lr, 1, &err)) {
                fprintf(stderr, "g4: %s\n", err.msg);
                goto done;
            }
            for (int j = 0; j < np && st.n < total; j++) {
                const float *x = lt + (size_t)j * V;
                const int next = win[i + j + 1];
                const double zt = lse(x, (int)V);
                st.nll += zt - x[next];
                if (cr) {
                    const float *r = lr + (size_t)j * V;
                    const double zr = lse(r, (int)V);
                    double kl = 0;
                    for (size_t k = 0; k < V; k++) {
                        const double a = (double)r[k] - zr;
                        kl += exp(a) * (a - ((double)x[k] - zt));
                    }
                    if (kl < 0) kl = 0; /* rounding */
                    st.kl += kl;
                    if (kl > st.kl_max) st.kl_max = kl;
                    st.nll_ref += zr - r[next];
                    st.top1 += argmax(x, (int)V) == argmax(r, (int)V);
                }
                st.n++;
            }
            double now = now_s();
            if (!quiet && now - last >= (tty ? 0.5 : 30.0)) {
                last = now;
                fprintf(stderr, "%seval: %ld/%ld tokens, ppl %.4f", tty ? "\r" : "", st.n, total, exp(st.nll / (double)st.n));
                if (cr)
                    fprintf(stderr, ", kl %.5f, top-1 %.2f%%", st.kl / (double)st.n, 100.0 * (double)st.top1 / (double)st.n);
                fprintf(stderr, ", %.1f tok/s%s", (double)st.n / (now - t0), tty ? "   " : "\n");
            }
        }
    }
    if (!quiet && tty && last > t0) fputc('\n', stderr);
    {
        const double secs = now_s() - t0, ppl = exp(st.nll / (double)st.n);
        char spec[256], sum[512], spec_r[256];
        g4_kv_spec_string(&p, spec, sizeof spec);
        g4_kv_spec_string(&pr, spec_r, sizeof spec_r);
        cli_kv_summary(m, &p, sum, sizeof sum);
        char b1[32], b2[32];
        printf("model          %s (%s)\n", model_path, info.variant);
        printf("text           %s: %zu tokens, %ld scored, windows of %ld, chunk %ld%s\n", file ? file : "--tokens",
               n_ids, st.n, n_ctx, chunk, exact ? ", exact mode" : "");
        printf("KV cache       %s: %s, %s\n", spec, sum, cli_human_bytes((double)g4_ctx_kv_bytes(c), b1, sizeof b1));
        if (cr)
            printf("reference      %s, %s\n", spec_r, cli_human_bytes((double)g4_ctx_kv_bytes(cr), b2, sizeof b2));
        printf("\n  %-26s %12s\n", "measure", "value");
        printf("  %-26s %12.4f\n", "perplexity", ppl);
        if (cr) {
            printf("  %-26s %12.4f\n", "perplexity (reference)", exp(st.nll_ref / (double)st.n));
            printf("  %-26s %12.6f\n", "mean KL(ref || kv)", st.kl / (double)st.n);
            printf("  %-26s %12.6f\n", "max KL", st.kl_max);
            printf("  %-26s %11.2f%%\n", "top-1 agreement", 100.0 * (double)st.top1 / (double)st.n);
        }
        printf("  %-26s %12.1f\n", "seconds", secs);
        if (json) {
            printf("{\"model\":");
            cli_json_str(model_path);
            printf(",\"kv\":");
            cli_json_str(spec);
            printf(",\"kv_layers\":");
            cli_json_str(sum);
            printf(",\"kv_bytes\":%llu", (unsigned long long)g4_ctx_kv_bytes(c));
            if (cr) {
                printf(",\"ref_kv\":");
                cli_json_str(spec_r);
                printf(",\"kv_bytes_ref\":%llu", (unsigned long long)g4_ctx_kv_bytes(cr));
            }
            printf(",\"exact\":%s,\"n_ctx\":%ld,\"chunk\":%ld,\"n_text_tokens\":%zu,\"n_tokens\":%ld,\"ppl\":%.6f", exact ? "true" : "false", n_ctx,
                   chunk, n_ids, st.n, ppl);
            if (cr)
                printf(",\"ppl_ref\":%.6f,\"kl_mean\":%.8f,\"kl_max\":%.8f,\"top1_agree\":%.6f",
                       exp(st.nll_ref / (double)st.n), st.kl / (double)st.n, st.kl_max, (double)st.top1 / (double)st.n);
            else printf(",\"ppl_ref\":null,\"kl_mean\":null,\"kl_max\":null,\"top1_agree\":null");
            printf(",\"seconds\":%.3f,\"engine\":\"g4 %s\"}\n", secs, G4_VERSION);
        }
        if (!cli_stdout_flush(NULL)) goto done;
    }
    rc = 0;
done:
    free(lt);
    free(lr);
    free(win);
    free(ids);
    g4_ctx_free(c);
    g4_ctx_free(cr);
    g4_model_free(m);
    return rc;
}
