/* Several sequences in one forward pass (g4_engine_eval): the logits of each sequence in a mixed batch equal
 * - bit for bit - its logits run alone with the same cut of its tokens into passes; sequences that finish,
 * start and are cancelled mid-way leave the others unchanged; a copied prefix (g4_seq_copy) continues exactly
 * like the sequence it was copied from. Oracle models of every variant, f16 and tq4 caches, 1-3 threads,
 * default and exact modes. */
#include "t.h"

#include "g4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 6
#define MAX_STEP 8

/* A scripted run: at each step every live sequence contributes a chunk of tokens (a prompt chunk, or one
 * decode token), logits wanted for the chunk's last token (and, for chunks of 3 or more, its first). */
typedef struct script {
    int n_seq;
    int len[MAX_SEQ][MAX_STEP];  /* tokens per step (0: not in this step) */
    int freed_after[MAX_SEQ];    /* freed (finished or cancelled) after this step, or -1 */
} script;

typedef struct run {
    int32_t *tok[MAX_SEQ];       /* each sequence's token stream */
    int n_tok[MAX_SEQ];
    float *logits[MAX_SEQ];      /* logits rows in order of wanted positions */
    int n_rows[MAX_SEQ];
} run;

static int wants(int len, int i) { return i == len - 1 || (len >= 3 && i == 0); }

static void run_free(run *r) {
    for (int s = 0; s < MAX_SEQ; s++) free(r->logits[s]);
}

/* everything in one engine, sequences batched together: returns 0 on an engine error */
static int run_mixed(g4_engine *e, const g4_ctx_params *cp, const script *sc, const run *in, run *out, int V) {
    g4_seq *seq[MAX_SEQ] = {0};
    int pos[MAX_SEQ] = {0};
    g4_error err = {0};
    int ok = 1;
    g4_batch_entry *b = malloc(1024 * sizeof *b);
    float *lg = malloc((size_t)1024 * V * sizeof *lg);
    for (int s = 0; s < sc->n_seq; s++) {
        out->logits[s] = malloc((size_t)in->n_tok[s] * V * sizeof(float));
        out->n_rows[s] = 0;
    }
    for (int step = 0; step < MAX_STEP && ok; step++) {
        int n = 0;
        for (int s = 0; s < sc->n_seq; s++) {
            const int len = sc->len[s][step];
            if (!len) continue;
            if (!seq[s] && g4_seq_new(&seq[s], e, cp, &err)) {
                fprintf(stderr, "seq_new: %s\n", err.msg);
                ok = 0;
                break;
            }
            for (int i = 0; i < len; i++) b[n++] = (g4_batch_entry){.seq = seq[s], .token = in->tok[s][pos[s] + i], .logits = wants(len, i)};
            pos[s] += len;
        }
        if (!ok || !n) continue;
        if (g4_engine_eval(e, b, n, lg, &err)) {
            fprintf(stderr, "engine_eval: %s\n", err.msg);
            ok = 0;
            break;
        }
        int row = 0;
        for (int i = 0; i < n; i++) {
            if (!b[i].logits) continue;
            int s = 0;
            while (seq[s] != b[i].seq) s++;
            memcpy(out->logits[s] + (size_t)out->n_rows[s]++ * V, lg + (size_t)row++ * V, (size_t)V * sizeof(float));
        }
        for (int s = 0; s < sc->n_seq; s++)
            if (sc->freed_after[s] == step && seq[s]) {
                g4_seq_free(seq[s]);
                seq[s] = NULL;
            }
    }
    for (int s = 0; s < MAX_SEQ; s++) g4_seq_free(seq[s]);
    free(b);
    free(lg);
    return ok;
}

/* each sequence alone, with the same cut of its tokens into passes as in the mixed run */
static int run_alone(g4_engine *e, const g4_ctx_params *cp, const script *sc, const run *in, run *out, int V) {
    const int P = g4_engine_batch_size();
    g4_error err = {0};
    g4_batch_entry *b = malloc(1024 * sizeof *b);
    float *lg = malloc((size_t)1024 * V * sizeof *lg);
    int ok = 1;
    for (int s = 0; s < sc->n_seq && ok; s++) {
        g4_seq *q;
        if (g4_seq_new(&q, e, cp, &err)) return 0;
        out->logits[s] = malloc((size_t)in->n_tok[s] * V * sizeof(float));
        out->n_rows[s] = 0;
        int pos = 0;
        for (int step = 0; step < MAX_STEP && ok; step++) {
            const int len = sc->len[s][step];
            if (!len) continue;
            /* where this sequence's chunk falls in the step's batch: the entries of the sequences before it */
            int start = 0;
            for (int r = 0; r < s; r++) start += sc->len[r][step];
            for (int i = 0; i < len;) { /* the part of the chunk in one pass of P entries */
                const int pass_end = ((start + i) / P + 1) * P;
                const int m = start + len < pass_end ? len - i : pass_end - (start + i);
                for (int j = 0; j < m; j++) b[j] = (g4_batch_entry){.seq = q, .token = in->tok[s][pos + i + j], .logits = wants(len, i + j)};
                if (g4_engine_eval(e, b, m, lg, &err)) {
                    fprintf(stderr, "alone: %s\n", err.msg);
                    ok = 0;
                    break;
                }
                int row = 0;
                for (int j = 0; j < m; j++)
                    if (b[j].logits) memcpy(out->logits[s] + (size_t)out->n_rows[s]++ * V, lg + (size_t)row++ * V, (size_t)V * sizeof(float));
                i += m;
            }
            pos += len;
        }
        g4_seq_free(q);
    }
    free(b);
    free(lg);
    return ok;
}

static float max_abs(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fabsf(a[i] - b[i]) > d ? fabsf(a[i] - b[i]) : d;
    return d;
}

static void test_model(const char *name, const char *kv, int threads, int exact, const script *sc) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s.gguf", t_oracle(), name);
    g4_model *m;
    g4_error err = {0};
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "%s: %s", path, err.msg);
        return;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    const int V = info.n_vocab;
    g4_engine_params ep = g4_engine_default_params();
    ep.n_threads = threads;
    ep.exact = exact;
    g4_engine *e;
    if (g4_engine_new(&e, m, &ep, &err)) {
        CHECK(0, "engine: %s", err.msg);
        g4_model_free(m);
        return;
    }
    g4_ctx_params cp = g4_ctx_default_params();
    cp.n_ctx = 256;
    CHECK(g4_kv_parse(kv, &cp, &err) == G4_OK, "kv %s: %s", kv, err.msg);
    run in = {0};
    unsigned long long st = 0x1234567ull * (unsigned long long)(threads + 7 * exact + 1);
    for (int s = 0; s < sc->n_seq; s++) {
        int n = 0;
        for (int step = 0; step < MAX_STEP; step++) n += sc->len[s][step];
        in.n_tok[s] = n;
        in.tok[s] = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        for (int i = 0; i < n; i++) {
            st ^= st << 13, st ^= st >> 7, st ^= st << 17;
            in.tok[s][i] = (int32_t)(st % (unsigned long long)V);
        }
        if (n) in.tok[s][0] = 2; /* BOS */
    }
    run mixed = {0}, alone = {0};
    int ok = run_mixed(e, &cp, sc, &in, &mixed, V) && run_alone(e, &cp, sc, &in, &alone, V);
    CHECK(ok, "%s %s: runs failed", name, kv);
    for (int s = 0; ok && s < sc->n_seq; s++) {
        CHECK(mixed.n_rows[s] == alone.n_rows[s], "%s seq %d: %d vs %d rows", name, s, mixed.n_rows[s], alone.n_rows[s]);
        const size_t nb = (size_t)mixed.n_rows[s] * V;
        CHECK(!memcmp(mixed.logits[s], alone.logits[s], nb * sizeof(float)),
              "%s kv=%s threads=%d exact=%d seq %d: mixed-batch logits differ from alone (max |diff| %g)", name, kv,
              threads, exact, s, max_abs(mixed.logits[s], alone.logits[s], nb));
    }
    for (int s = 0; s < MAX_SEQ; s++) free(in.tok[s]);
    run_free(&mixed);
    run_free(&alone);
    g4_engine_free(e);
    g4_model_free(m);
}

/* a prefix copied from a sequence continues exactly like that sequence would; errors for mismatches */
static void test_copy(const char *name, const char *kv) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s.gguf", t_oracle(), name);
    g4_model *m;
    g4_error err = {0};
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "%s: %s", path, err.msg);
        return;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    const int V = info.n_vocab;
    g4_engine_params ep = g4_engine_default_params();
    ep.n_threads = 2;
    g4_engine *e;
    CHECK(g4_engine_new(&e, m, &ep, &err) == G4_OK, "%s", err.msg);
    g4_ctx_params cp = g4_ctx_default_params();
    cp.n_ctx = 512;
    CHECK(g4_kv_parse(kv, &cp, &err) == G4_OK, "%s", err.msg);
    g4_seq *a, *b, *c;
    CHECK(g4_seq_new(&a, e, &cp, &err) == G4_OK && g4_seq_new(&b, e, &cp, &err) == G4_OK &&
              g4_seq_new(&c, e, &cp, &err) == G4_OK, "%s", err.msg);
    int32_t tok[300];
    for (int i = 0; i < 300; i++) tok[i] = (int32_t)((i * 7919 + 13) % V);
    tok[0] = 2;
    g4_batch_entry be[32];
    float *la = malloc((size_t)V * sizeof(float)), *lb = malloc((size_t)V * sizeof(float));
    /* a: 96 prompt tokens in passes of 32; c: the same */
    for (int i = 0; i < 96; i += 32) {
        for (int j = 0; j < 32; j++) be[j] = (g4_batch_entry){.seq = a, .token = tok[i + j], .logits = j == 31};
        CHECK(g4_engine_eval(e, be, 32, la, &err) == G4_OK, "%s", err.msg);
        for (int j = 0; j < 32; j++) be[j].seq = c;
        CHECK(g4_engine_eval(e, be, 32, la, &err) == G4_OK, "%s", err.msg);
    }
    /* b takes a's first 64 tokens; c is cut back to 64; both continue with the same tokens */
    CHECK(g4_seq_copy(b, a, 64, &err) == G4_OK, "copy: %s", err.msg);
    CHECK(g4_seq_n_past(b) == 64 && !memcmp(g4_seq_tokens(b), tok, 64 * sizeof(int32_t)), "copied tokens");
    CHECK(g4_seq_truncate(c, 64, &err) == G4_OK, "truncate: %s", err.msg);
    for (int i = 0; i < 20; i++) {
        be[0] = (g4_batch_entry){.seq = b, .token = tok[100 + i], .logits = 1};
        be[1] = (g4_batch_entry){.seq = c, .token = tok[100 + i], .logits = 1};
        float *two = malloc((size_t)2 * V * sizeof(float));
        CHECK(g4_engine_eval(e, be, 2, two, &err) == G4_OK, "%s", err.msg);
        CHECK(!memcmp(two, two + V, (size_t)V * sizeof(float)), "%s kv=%s step %d: copied prefix continues differently", name, kv, i);
        free(two);
    }
    /* errors: too long for the destination, more than the source holds, different KV types */
    g4_ctx_params small = cp;
    small.n_ctx = 32;
    g4_seq *d;
    CHECK(g4_seq_new(&d, e, &small, &err) == G4_OK, "%s", err.msg);
    CHECK(g4_seq_copy(d, a, 64, &err) == G4_ERR_CONTEXT, "copy into a short sequence");
    CHECK(g4_seq_copy(d, a, 200, &err) == G4_ERR_ARG, "copy of more than the source holds");
    g4_seq_free(d);
    g4_ctx_params other = g4_ctx_default_params();
    other.n_ctx = cp.n_ctx;
    CHECK(g4_kv_parse(!strcmp(kv, "f16") ? "tq4" : "f16", &other, &err) == G4_OK, "%s", err.msg);
    CHECK(g4_seq_new(&d, e, &other, &err) == G4_OK, "%s", err.msg);
    CHECK(g4_seq_copy(d, a, 10, &err) == G4_ERR_ARG && strstr(err.msg, "types differ"), "copy across KV types: %s", err.msg);
    g4_seq_free(d);
    /* checks before anything runs: a sequence without room, a token outside the vocabulary */
    const int before = g4_seq_n_past(a);
    be[0] = (g4_batch_entry){.seq = a, .token = 5};
    be[1] = (g4_batch_entry){.seq = b, .token = V};
    CHECK(g4_engine_eval(e, be, 2, NULL, &err) == G4_ERR_ARG && g4_seq_n_past(a) == before, "bad token refused first");
    free(la);
    free(lb);
    g4_seq_free(a);
    g4_seq_free(b);
    g4_seq_free(c);
    g4_engine_free(e);
    g4_model_free(m);
}

int main(void) {
    /* 0: a long prompt started first, then decode; 1: starts at step 1, prompt in two chunks, cancelled after
     * step 4; 2: starts at step 2, a prompt that straddles two passes with the others, finishes after step 5;
     * 3: starts after 2 is gone (in the place it left); 4: a one-token prompt */
    script sc = {.n_seq = 5,
                 .len = {{13, 1, 1, 1, 1, 1, 1, 1},
                         {0, 20, 25, 1, 1, 0, 0, 0},
                         {0, 0, 9, 1, 1, 1, 0, 0},
                         {0, 0, 0, 0, 0, 0, 40, 1},
                         {0, 0, 0, 0, 1, 1, 1, 1}},
                 .freed_after = {-1, 4, 5, -1, -1}};
    const char *models[] = {"e2b-Q8_0", "e4b-Q4_0", "moe-Q4_K_M", "dense-Q6_K", "e2b-F32", "moe-F16"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        for (int threads = 1; threads <= 3; threads++) {
            test_model(models[i], "f16", threads, 0, &sc);
            test_model(models[i], "tq4", threads, 0, &sc);
        }
    for (size_t i = 0; i < 4; i++) {
        test_model(models[i], "f16", 2, 1, &sc);
        test_model(models[i], "tq4", 3, 1, &sc);
    }
    test_copy("e2b-Q8_0", "f16");
    test_copy("e2b-Q8_0", "tq4");
    test_copy("moe-Q4_0", "f16");
    return t_done();
}
