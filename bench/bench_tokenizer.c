/* Tokenizer throughput on one core.
 *
 *   bench_tokenizer VOCAB.gguf TEXT [--lines] [--no-special] [--rounds N]
 *
 * Loads the vocabulary (reports the time), then tokenizes TEXT (whole, or line by line with --lines)
 * once on a fresh vocabulary ("cold": empty word cache, the number to quote) and then N more times
 * ("warm"). Times are CPU time of this process (less sensitive to other load on the machine than wall
 * time, which is reported too). `make bench-tokenizer` runs it on the oracle pack's corpus.
 */
#define _POSIX_C_SOURCE 200809L
#include "g4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clk(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* one pass; returns the number of tokens */
static size_t pass(const g4_vocab *v, const char *text, size_t len, int lines, int special, int32_t *ids, size_t cap) {
    size_t total = 0, n;
    g4_error err;
    if (!lines) {
        if (g4_tokenize(v, text, len, 0, special, ids, cap, &n, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            exit(1);
        }
        return n;
    }
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (g4_tokenize(v, text + i, e - i, 0, special, ids, cap, &n, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            exit(1);
        }
        total += n;
        i = e + 1;
    }
    return total;
}

int main(int argc, char **argv) {
    const char *vpath = NULL, *tpath = NULL;
    int lines = 0, special = 1, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lines")) lines = 1;
        else if (!strcmp(argv[i], "--no-special")) special = 0;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!vpath) vpath = argv[i];
        else if (!tpath) tpath = argv[i];
        else vpath = NULL;
    }
    if (!vpath || !tpath) {
        fprintf(stderr, "usage: bench_tokenizer VOCAB.gguf TEXT [--lines] [--no-special] [--rounds N]\n");
        return 2;
    }
    size_t len;
    char *text = slurp(tpath, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", tpath);
        return 1;
    }
    size_t cap = g4_tokenize_bound(len);
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return 1;
    g4_error err;
    g4_vocab *v;
    double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
    if (g4_vocab_open(&v, vpath, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    double w1 = clk(CLOCK_MONOTONIC), c1 = clk(CLOCK_PROCESS_CPUTIME_ID);
    size_t ntok = pass(v, text, len, lines, special, ids, cap);
    double w2 = clk(CLOCK_MONOTONIC), c2 = clk(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < rounds; r++) pass(v, text, len, lines, special, ids, cap);
    double w3 = clk(CLOCK_MONOTONIC), c3 = clk(CLOCK_PROCESS_CPUTIME_ID);
    printf("tokenizer %s (%s, %d tokens): load %.3f s cpu (%.3f s wall)\n", vpath, g4_vocab_kind(v),
           g4_vocab_n_tokens(v), c1 - c0, w1 - w0);
    printf("  %s, %zu bytes%s, %zu tokens\n", tpath, len, lines ? " line by line" : " as one text", ntok);
    printf("  cold (first pass): %.3f s cpu: %.2f M tokens/s, %.2f MB/s (wall %.3f s)\n", c2 - c1,
           (double)ntok / (c2 - c1) / 1e6, (double)len / (c2 - c1) / 1e6, w2 - w1);
    if (rounds > 0)
        printf("  warm (%d more passes): %.3f s cpu: %.2f M tokens/s, %.2f MB/s (wall %.3f s)\n", rounds, c3 - c2,
               (double)ntok * rounds / (c3 - c2) / 1e6, (double)len * rounds / (c3 - c2) / 1e6, w3 - w2);
    g4_vocab_free(v);
    free(ids);
    free(text);
    return 0;
}
