/* Model loading and evaluation: errors for broken models (each naming the key or tensor), and the
 * consistency of batched, chunked and token-by-token evaluation (ring buffers, KV sharing). */
#include "t.h"

#include "g4.h"
#include "generate/generate.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/types.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- rewriting a GGUF file with edits ---- */

typedef struct edit {
    const char *drop_key;       /* leave this key out */
    const char *str_key;        /* set this key to a string value */
    const char *str_val;
    const char *u32_key;        /* set this key to a u32 value */
    uint32_t u32_val;
    const char *arr_key;        /* set this key to a u32 array of arr_n values arr_val */
    uint32_t arr_n, arr_val;
    const char *drop_tensor;    /* leave this tensor out */
    const char *halve_tensor;   /* declare this tensor with half its rows (ne[1] / 2) */
} edit;

typedef struct { const gguf_file *src; } copy_ctx;

static g4_status fill(void *user, int index, const char *name, int type, const int64_t *ne, int64_t row0,
                      int64_t nrows, void *dst, uint64_t nbytes, g4_error *err) {
    (void)index, (void)err;
    copy_ctx *c = user;
    const gguf_tensor *t = gguf_find_tensor(c->src, name);
    size_t rb = g4_type_row_bytes(type, ne[0]);
    (void)nrows;
    memcpy(dst, t->data + (size_t)row0 * rb, nbytes);
    return G4_OK;
}

static int rewrite(const char *src_path, const char *dst_path, const edit *e) {
    gguf_file *f;
    g4_error err = {0};
    if (gguf_open(&f, src_path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 0;
    }
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (e->drop_key && !strcmp(kv->key, e->drop_key)) continue;
        if (e->str_key && !strcmp(kv->key, e->str_key)) continue;
        if (e->u32_key && !strcmp(kv->key, e->u32_key)) continue;
        if (e->arr_key && !strcmp(kv->key, e->arr_key)) continue;
        if (kv->type == GGUF_STRING) {
            uint64_t len;
            memcpy(&len, kv->data, 8);
            char *s = malloc(len + 1);
            memcpy(s, kv->data + 8, len);
            s[len] = 0;
            gguf_w_str(w, kv->key, s);
            free(s);
        } else if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING) {
            char **s = malloc(kv->arr_n * sizeof *s + 1);
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                uint64_t len;
                const char *p = gguf_arr_str(kv, j, &len);
                s[j] = malloc(len + 1);
                memcpy(s[j], p, len);
                s[j][len] = 0;
            }
            gguf_w_arr_str(w, kv->key, (const char *const *)s, kv->arr_n);
            for (uint64_t j = 0; j < kv->arr_n; j++) free(s[j]);
            free(s);
        } else if (kv->type == GGUF_ARRAY) {
            gguf_w_arr(w, kv->key, kv->arr_type, kv->data, kv->arr_n);
        } else {
            gguf_w_scalar(w, kv->key, kv->type, kv->data);
        }
    }
    if (e->str_key) gguf_w_str(w, e->str_key, e->str_val);
    if (e->u32_key) gguf_w_u32(w, e->u32_key, e->u32_val);
    if (e->arr_key) {
        uint32_t v[256];
        for (uint32_t j = 0; j < e->arr_n && j < 256; j++) v[j] = e->arr_val;
        gguf_w_arr(w, e->arr_key, GGUF_UINT32, v, e->arr_n);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (e->drop_tensor && !strcmp(t->name, e->drop_tensor)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (e->halve_tensor && !strcmp(t->name, e->halve_tensor)) ne[1] /= 2;
        gguf_w_tensor(w, t->name, t->type, t->n_dims, ne);
    }
    copy_ctx c = {f};
    g4_status s = gguf_writer_write(w, dst_path, fill, NULL, &c, &err);
    if (s) fprintf(stderr, "rewrite: %s\n", err.msg);
    gguf_writer_free(w);
    gguf_close(f);
    return s == G4_OK;
}

static char tmpdir[] = "/tmp/g4-test-model-XXXXXX";

/* rewrite src with e, open it, expect status want and a message containing needle */
static void expect_load(const char *src, const edit *e, g4_status want, const char *needle, const char *what) {
    char path[256];
    snprintf(path, sizeof path, "%s/m.gguf", tmpdir);
    if (!rewrite(src, path, e)) {
        CHECK(0, "%s: could not write the test file", what);
        return;
    }
    g4_model *m = NULL;
    g4_error err = {0};
    g4_status s = g4_model_open(&m, path, &err);
    CHECK(s == want, "%s: status %d (%s), expected %d", what, s, err.msg, want);
    if (needle) CHECK(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle);
    g4_model_free(m);
    unlink(path);
}

/* ---- evaluation consistency ---- */

static float max_rel_diff(const float *a, const float *b, size_t n) {
    float mx = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabsf(a[i]) > mx) mx = fabsf(a[i]);
        if (fabsf(a[i] - b[i]) > d) d = fabsf(a[i] - b[i]);
    }
    return mx > 0 ? d / mx : d;
}

static int g_threads; /* 0: all CPUs */

/* abort callback: allows *left more polls, then asks to stop */
static int abort_after(void *user) {
    int *left = user;
    return (*left)-- <= 0;
}

/* logits of every position, feeding the tokens in chunks of the given sizes (0-terminated, repeated) */
static int run_chunks(g4_model *m, const int32_t *tok, int n, const int *chunks, g4_kv_type kv, int exact,
                      float *out) {
    g4_ctx_params p = g4_ctx_default_params();
    p.n_ctx = n;
    p.kv_type = kv;
    p.exact = exact;
    p.n_threads = g_threads;
    g4_ctx *c;
    g4_error err;
    if (g4_ctx_new(&c, m, &p, &err)) return 0;
    int V = 0;
    g4_model_info in;
    g4_model_get_info(m, &in);
    V = in.n_vocab;
    int i = 0, k = 0;
    while (i < n) {
        int T = chunks[k] ? chunks[k++] : (k = 0, chunks[k++]);
        if (T > n - i) T = n - i;
        if (g4_eval(c, tok + i, T, out + (size_t)i * V, 1, &err)) {
            fprintf(stderr, "eval: %s\n", err.msg);
            g4_ctx_free(c);
            return 0;
        }
        i += T;
    }
    g4_ctx_free(c);
    return 1;
}

static void test_consistency(const char *path) {
    g4_model *m;
    g4_error err;
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "open %s: %s", path, err.msg);
        return;
    }
    g4_model_info in;
    g4_model_get_info(m, &in);
    enum { N = 100 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)(t_rand64() % (unsigned)in.n_vocab);
    tok[0] = 2;
    size_t sz = (size_t)N * in.n_vocab;
    float *a = malloc(sz * sizeof *a), *b = malloc(sz * sizeof *b);
    const int whole[] = {N, 0}, ones[] = {1, 0}, odd[] = {7, 50, 3, 31, 0};
    CHECK(run_chunks(m, tok, N, whole, G4_KV_F32, 1, a), "%s: batch run", path);
    CHECK(run_chunks(m, tok, N, ones, G4_KV_F32, 1, b), "%s: token-by-token run", path);
    float d = max_rel_diff(a, b, sz);
    CHECK(d < 2e-5f, "%s: token by token differs from batch by %g (relative to max |logit|)", path, d);
    CHECK(run_chunks(m, tok, N, odd, G4_KV_F32, 1, b), "%s: chunked run", path);
    d = max_rel_diff(a, b, sz);
    CHECK(d < 2e-5f, "%s: chunks 7,50,3,31 differ from batch by %g", path, d);
    /* threads split rows and heads, never a sum: any thread count gives the same bits */
    g_threads = 1;
    CHECK(run_chunks(m, tok, N, odd, G4_KV_F32, 0, a), "%s: 1 thread", path);
    g_threads = 3;
    CHECK(run_chunks(m, tok, N, odd, G4_KV_F32, 0, b), "%s: 3 threads", path);
    g_threads = 0;
    CHECK(memcmp(a, b, sz * sizeof *a) == 0, "%s: 1 and 3 threads give different logits", path);
    CHECK(run_chunks(m, tok, N, whole, G4_KV_F32, 1, a), "%s: batch run", path);
    CHECK(run_chunks(m, tok, N, odd, G4_KV_F16, 1, b), "%s: f16 cache run", path);
    d = max_rel_diff(a, b, sz);
    CHECK(d > 0 && d < 0.05f, "%s: f16 KV cache differs from f32 by %g", path, d);
    CHECK(run_chunks(m, tok, N, odd, G4_KV_F32, 0, b), "%s: default-mode run", path);
    d = max_rel_diff(a, b, sz);
    CHECK(d < 0.5f, "%s: default mode differs from exact by %g", path, d);

    /* going back: truncate to 90 and continue with other tokens = a fresh run of the same tokens */
    {
        g4_ctx_params q = g4_ctx_default_params();
        q.n_ctx = N;
        q.kv_type = G4_KV_F32;
        q.exact = 1;
        g4_ctx *c1;
        int32_t alt[N];
        memcpy(alt, tok, sizeof alt);
        for (int i = 90; i < N; i++) alt[i] = (tok[i] + 1) % in.n_vocab;
        CHECK(g4_ctx_new(&c1, m, &q, &err) == G4_OK, "ctx");
        CHECK(g4_eval(c1, tok, N, NULL, 0, &err) == G4_OK, "eval");
        CHECK(g4_ctx_truncate(c1, 90, &err) == G4_OK && g4_ctx_n_past(c1) == 90, "truncate to 90: %s", err.msg);
        CHECK(memcmp(g4_ctx_tokens(c1), tok, 90 * sizeof *tok) == 0, "cached tokens kept");
        CHECK(g4_eval(c1, alt + 90, N - 90, b + (size_t)90 * in.n_vocab, 1, &err) == G4_OK, "continue");
        const int whole1[] = {N, 0};
        CHECK(run_chunks(m, alt, N, whole1, G4_KV_F32, 1, a), "fresh run");
        d = max_rel_diff(a + (size_t)90 * in.n_vocab, b + (size_t)90 * in.n_vocab, (size_t)(N - 90) * in.n_vocab);
        CHECK(d < 2e-5f, "%s: continuing after truncate differs from a fresh run by %g", path, d);
        CHECK(g4_ctx_truncate(c1, N + 1, &err) == G4_ERR_ARG, "truncate past the end");
        g4_ctx_free(c1);
        /* far back: the sliding rings no longer hold the window */
        q.n_ctx = 600;
        int32_t *many = malloc(600 * sizeof *many);
        for (int i = 0; i < 600; i++) many[i] = (int32_t)(t_rand64() % (unsigned)in.n_vocab);
        CHECK(g4_ctx_new(&c1, m, &q, &err) == G4_OK, "ctx");
        CHECK(g4_eval(c1, many, 600, NULL, 0, &err) == G4_OK, "eval 600");
        CHECK(g4_ctx_truncate(c1, 100, &err) == G4_ERR_CONTEXT && g4_ctx_n_past(c1) == 600, "far truncate refused: %s", err.msg);
        CHECK(g4_ctx_truncate(c1, 0, &err) == G4_OK, "truncate to 0 always works");
        g4_ctx_free(c1);
        free(many);
    }

    /* the abort callback stops g4_eval between layers and leaves the context usable */
    {
        g4_ctx_params q = g4_ctx_default_params();
        q.n_ctx = N;
        g4_ctx *c1;
        int calls = 0;
        CHECK(g4_ctx_new(&c1, m, &q, &err) == G4_OK, "ctx");
        CHECK(g4_eval(c1, tok, 40, NULL, 0, &err) == G4_OK, "eval 40");
        g4_ctx_set_abort(c1, abort_after, &calls);
        calls = 3;
        CHECK(g4_eval(c1, tok + 40, 10, NULL, 0, &err) == G4_ERR_INTERRUPTED && g4_ctx_n_past(c1) == 40,
              "interrupted eval keeps n_past: %s", err.msg);
        g4_ctx_set_abort(c1, NULL, NULL);
        CHECK(g4_eval(c1, tok + 40, 10, NULL, 0, &err) == G4_OK && g4_ctx_n_past(c1) == 50, "continues after an interruption");
        g4_ctx_free(c1);
    }

    /* context limits: nothing is evaluated when the tokens do not fit */
    g4_ctx_params p = g4_ctx_default_params();
    p.n_ctx = 8;
    g4_ctx *c;
    CHECK(g4_ctx_new(&c, m, &p, &err) == G4_OK, "ctx");
    CHECK(g4_eval(c, tok, 5, NULL, 0, &err) == G4_OK, "eval 5 of 8");
    CHECK(g4_eval(c, tok, 4, NULL, 0, &err) == G4_ERR_CONTEXT && g4_ctx_n_past(c) == 5, "overflow rejected: %s", err.msg);
    CHECK(g4_eval(c, tok, 3, NULL, 0, &err) == G4_OK && g4_ctx_n_past(c) == 8, "fills exactly");
    int32_t badtok = in.n_vocab;
    g4_ctx_reset(c);
    CHECK(g4_eval(c, &badtok, 1, NULL, 0, &err) == G4_ERR_ARG && strstr(err.msg, "outside the vocabulary"), "bad token: %s", err.msg);
    CHECK(g4_eval(c, tok, 0, NULL, 0, &err) == G4_ERR_ARG, "empty batch");
    g4_ctx_free(c);

    /* KV memory: sliding layers are rings, full layers grow by exactly one cell per token */
    uint64_t per_tok = 0;
    for (int l = 0; l < in.n_layer; l++) {
        g4_layer_info li;
        g4_model_get_layer(m, l, &li);
        if (li.kv_src == l && !li.is_swa) per_tok += 2ull * li.n_head_kv * li.head_dim * 2;
    }
    uint64_t k1 = g4_model_kv_bytes(m, 10000, G4_KV_F16), k2 = g4_model_kv_bytes(m, 10001, G4_KV_F16);
    CHECK(k2 - k1 == per_tok, "%s: KV grows by %llu bytes per token, expected %llu", path, (unsigned long long)(k2 - k1),
          (unsigned long long)per_tok);
    CHECK(g4_model_kv_bytes(m, 1000, G4_KV_F32) == 2 * g4_model_kv_bytes(m, 1000, G4_KV_F16), "f32 cache is twice f16");
    free(a);
    free(b);
    g4_model_free(m);
}

/* ---- g4_eval_top: the k largest logits equal the largest of g4_eval's row, ties by lower id ---- */

static const float *g_row;
static int cmp_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (g_row[x] != g_row[y]) return g_row[x] > g_row[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void test_top(const char *path) {
    g4_error err;
    g4_model *m;
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "open %s: %s", path, err.msg);
        return;
    }
    g4_model_info in;
    g4_model_get_info(m, &in);
    const int V = in.n_vocab, N = 45;
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 2654435761u) % (uint32_t)V);
    float *row = malloc((size_t)V * sizeof *row), *vals = malloc((size_t)V * sizeof *vals);
    int32_t *ref = malloc((size_t)V * sizeof *ref), *ids = malloc((size_t)V * sizeof *ids);
    const int ks[] = {1, 7, 64, V};
    for (int mode = 0; mode < 4 && row && vals && ref && ids; mode++) {
        g4_ctx_params p = g4_ctx_default_params();
        p.n_ctx = 64;
        p.exact = mode & 1;
        p.n_threads = mode & 2 ? 3 : 1;
        for (int step = 0; step < 2; step++) { /* a prompt of N, then one more token */
            const int32_t *t = step ? tok + N - 1 : tok;
            const int n = step ? 1 : N - 1;
            g4_ctx *c;
            CHECK(g4_ctx_new(&c, m, &p, &err) == G4_OK, "ctx: %s", err.msg);
            if (step) CHECK(g4_eval(c, tok, N - 1, NULL, 0, &err) == G4_OK, "prompt");
            CHECK(g4_eval(c, t, n, row, 0, &err) == G4_OK, "eval: %s", err.msg);
            int nref = 0;
            for (int i = 0; i < V; i++)
                if (row[i] > -INFINITY) ref[nref++] = i;
            g_row = row;
            qsort(ref, (size_t)nref, sizeof *ref, cmp_desc);
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                const int k = ks[ki];
                g4_ctx_truncate(c, step ? N - 1 : 0, NULL);
                int nt = -1, bad = 0;
                CHECK(g4_eval_top(c, t, n, k, ids, vals, &nt, &err) == G4_OK, "eval_top: %s", err.msg);
                const int want = k < nref ? k : nref;
                for (int i = 0; i < want && nt == want; i++)
                    bad += ids[i] != ref[i] || memcmp(&vals[i], &row[ref[i]], sizeof(float)) != 0;
                CHECK(nt == want && !bad, "%s: top-%d (%s, %d threads, %s): %d of %d entries differ from g4_eval's row", path,
                      k, p.exact ? "exact" : "default", p.n_threads, step ? "decode" : "prompt", nt == want ? bad : -1, want);
                CHECK(g4_ctx_n_past(c) == (step ? N : N - 1), "eval_top advances the context");
            }
            g4_ctx_free(c);
        }
    }
    int nt;
    g4_ctx *c;
    g4_ctx_params p = g4_ctx_default_params();
    p.n_ctx = 8;
    CHECK(g4_ctx_new(&c, m, &p, &err) == G4_OK, "ctx");
    CHECK(g4_eval_top(c, tok, 1, 0, ids, vals, &nt, &err) == G4_ERR_ARG && g4_ctx_n_past(c) == 0, "k = 0 refused");
    CHECK(g4_eval_top(c, tok, 9, 3, ids, vals, &nt, &err) == G4_ERR_CONTEXT && nt == 0, "overflow refused: %s", err.msg);
    g4_ctx_free(c);
    free(row), free(vals), free(ref), free(ids);
    g4_model_free(m);
}

/* ---- generation: the top-k path (g4_eval_top) draws the same tokens as the full logit row ---- */

typedef struct { char buf[4096]; size_t len; } text_acc;
static int on_text(void *user, const char *t, size_t n) {
    text_acc *a = user;
    if (a->len + n < sizeof a->buf) memcpy(a->buf + a->len, t, n), a->len += n;
    return 0;
}

static void test_generate_paths(const char *path) {
    g4_error err;
    g4_model *m;
    g4_vocab *v;
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "open %s: %s", path, err.msg);
        return;
    }
    if (g4_vocab_open(&v, path, &err)) {
        CHECK(0, "vocab %s: %s", path, err.msg);
        g4_model_free(m);
        return;
    }
    const int32_t prompt[] = {2, 40, 41, 42, 43, 44};
    struct { float temp; int top_k; float rep; uint64_t seed; } cases[] = {
        {0.0f, 64, 1.0f, 1}, {1.0f, 64, 1.0f, 7}, {1.3f, 5, 1.0f, 8}, {0.8f, 40, 1.3f, 9}, {1.0f, 0, 1.0f, 10}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        text_acc out[2];
        g4_gen_stats st[2];
        for (int full = 0; full < 2; full++) {
            g4_ctx_params p = g4_ctx_default_params();
            p.n_ctx = 96;
            p.n_threads = 2;
            g4_ctx *c;
            g4_sampler *s;
            g4_sampler_params sp = g4_sampler_default_params();
            sp.temperature = cases[ci].temp;
            sp.top_k = cases[ci].top_k;
            sp.repeat_penalty = cases[ci].rep;
            sp.penalty_last_n = 64;
            sp.seed = cases[ci].seed;
            out[full].len = 0;
            CHECK(g4_ctx_new(&c, m, &p, &err) == G4_OK, "ctx");
            CHECK(g4_sampler_new(&s, &sp, g4_vocab_n_tokens(v), &err) == G4_OK, "sampler");
            g4_gen_params gp = {.max_tokens = 40, .special = 1, .full_logits = full};
            CHECK(g4_generate(c, v, s, prompt, 6, &gp, on_text, &out[full], &st[full], &err) == G4_OK, "generate: %s",
                  err.msg);
            g4_sampler_free(s);
            g4_ctx_free(c);
        }
        CHECK(st[0].n_gen == st[1].n_gen && out[0].len == out[1].len && memcmp(out[0].buf, out[1].buf, out[0].len) == 0,
              "%s: case %zu (temperature %g, top-k %d, repeat penalty %g): the top-k path generated %d tokens / %zu bytes, "
              "the full row %d / %zu, or other text", path, ci, cases[ci].temp, cases[ci].top_k, cases[ci].rep, st[0].n_gen,
              out[0].len, st[1].n_gen, out[1].len);
    }
    g4_vocab_free(v);
    g4_model_free(m);
}

int main(void) {
    char e2b[512], moe[512], dense[512];
    snprintf(e2b, sizeof e2b, "%s/models/e2b-F32.gguf", t_oracle());
    snprintf(moe, sizeof moe, "%s/models/moe-Q8_0.gguf", t_oracle());
    snprintf(dense, sizeof dense, "%s/models/dense-Q4_K.gguf", t_oracle());
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return t_done();
    }

    /* an unmodified copy loads */
    expect_load(e2b, &(edit){0}, G4_OK, NULL, "plain copy");
    expect_load(moe, &(edit){0}, G4_OK, NULL, "plain copy moe");
    /* metadata errors */
    expect_load(e2b, &(edit){.str_key = "general.architecture", .str_val = "llama"}, G4_ERR_UNSUPPORTED,
                "architecture 'llama'", "other architecture");
    expect_load(e2b, &(edit){.drop_key = "general.architecture"}, G4_ERR_FORMAT, "general.architecture", "no architecture");
    expect_load(e2b, &(edit){.drop_key = "gemma4.attention.sliding_window_pattern"}, G4_ERR_FORMAT,
                "sliding_window_pattern", "no layer pattern");
    expect_load(e2b, &(edit){.drop_key = "gemma4.embedding_length"}, G4_ERR_FORMAT, "gemma4.embedding_length", "no width");
    expect_load(e2b, &(edit){.str_key = "gemma4.block_count", .str_val = "ten"}, G4_ERR_FORMAT, "expected an unsigned integer",
                "string for an integer key");
    expect_load(e2b, &(edit){.arr_key = "gemma4.feed_forward_length", .arr_n = 3, .arr_val = 32}, G4_ERR_FORMAT,
                "one per layer", "per-layer array of the wrong length");
    expect_load(e2b, &(edit){.u32_key = "gemma4.attention.head_count_kv", .u32_val = 3}, G4_ERR_FORMAT, "do not divide",
                "KV heads that do not divide the heads");
    expect_load(e2b, &(edit){.u32_key = "gemma4.attention.shared_kv_layers", .u32_val = 10}, G4_ERR_FORMAT,
                "no layer that owns", "every layer shared");
    expect_load(e2b, &(edit){.u32_key = "gemma4.embedding_length", .u32_val = 96}, G4_ERR_FORMAT, "has shape",
                "width that does not match the tensors");
    expect_load(moe, &(edit){.u32_key = "gemma4.expert_used_count", .u32_val = 9}, G4_ERR_FORMAT, "inconsistent",
                "more experts used than exist");
    /* tensor errors */
    expect_load(e2b, &(edit){.drop_tensor = "blk.3.attn_q.weight"}, G4_ERR_FORMAT, "'blk.3.attn_q.weight'", "missing q");
    expect_load(e2b, &(edit){.drop_tensor = "per_layer_token_embd.weight"}, G4_ERR_FORMAT, "per_layer_token_embd",
                "missing PLE table");
    expect_load(e2b, &(edit){.drop_tensor = "token_embd.weight"}, G4_ERR_FORMAT, "token_embd", "missing embeddings");
    expect_load(e2b, &(edit){.halve_tensor = "blk.4.attn_k.weight"}, G4_ERR_FORMAT, "'blk.4.attn_k.weight' has shape",
                "wrong shape");
    expect_load(moe, &(edit){.drop_tensor = "blk.2.ffn_gate_inp.weight"}, G4_ERR_FORMAT, "blk.2.ffn_gate_inp.weight",
                "missing router");
    expect_load(moe, &(edit){.drop_tensor = "blk.1.ffn_down_exps.weight"}, G4_ERR_FORMAT, "blk.1.ffn_down_exps.weight",
                "missing experts");
    /* optional tensors: KV-shared layers need no K/V projections, a missing attn_v means K=V */
    expect_load(e2b, &(edit){.drop_tensor = "blk.7.attn_k.weight"}, G4_OK, NULL, "shared layer without attn_k");
    expect_load(e2b, &(edit){.drop_tensor = "blk.2.attn_v.weight"}, G4_OK, NULL, "attn_v dropped: K=V");

    test_consistency(e2b);
    test_consistency(moe);
    test_consistency(dense);
    test_top(e2b);
    test_top(dense);
    char e4b[512];
    snprintf(e4b, sizeof e4b, "%s/models/e4b-Q4_0.gguf", t_oracle());
    test_top(e4b);
    test_generate_paths(e4b);
    test_generate_paths(dense);
    rmdir(tmpdir);
    return t_done();
}
