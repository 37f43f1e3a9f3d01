/* The KV cache with TurboQuant types (issue #5): the GQA kernels (every SIMD kernel against its scalar
 * reference, and against plain float arithmetic on the decoded records), the --kv specification, the
 * per-layer policy, memory per token on an E2B-shaped layer table, and the forward pass on packed caches
 * (exact in-batch attention, thread independence, ring buffers, truncation, errors) on oracle models.
 *   test_kv            everything (needs the oracle pack for the model parts: $G4_ORACLE)
 *   test_kv --bench    ns per record of the GQA kernels (d = 256 / 512, G = 8) against the f16 rows */
#include "t.h"

#include "g4.h"
#include "kernels/ops.h"
#include "kv/kv.h"
#include "kv/turboquant.h"
#include "model/model.h"
#include "quant/types.h"
#include "util/util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static float gauss(void) {
    double u = ((double)(t_rand64() >> 11) + 0.5) / 9007199254740992.0, v = (double)(t_rand64() >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static g4_tq_params *mkparams(g4_tq_type t, int d) {
    g4_tq_params *p = malloc(sizeof *p);
    g4_error err;
    if (!p || g4_tq_params_init(p, t, d, G4_TQ_SEED, &err)) {
        CHECK(0, "params %d %d", (int)t, d);
        free(p);
        return NULL;
    }
    return p;
}

/* ---- GQA kernels ---------------------------------------------------------------------------------- */

static void test_gqa_kernels(void) {
    const g4_tq_kernels *ref = g4_tq_kernels_scalar(), *simd = g4_tq_kernels_avx2();
    if (!simd) printf("(no AVX2 on this CPU: the GQA kernels are checked against float arithmetic only)\n");
    const int dims[] = {16, 32, 64, 128, 256, 512, 1024}, Gs[] = {1, 2, 3, 5, 8, 11};
    enum { N = 37, GMAX = 11 };
    for (int t = 0; t < G4_TQ_N_TYPES; t++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            const int d = dims[di];
            g4_tq_params *p = mkparams((g4_tq_type)t, d);
            if (!p) continue;
            const size_t rb = p->record_bytes, stride = rb + 3; /* records apart, as in a cache with 2+ heads */
            uint8_t *rec = calloc(N, stride);
            float *y = malloc((size_t)N * d * sizeof *y), *x = malloc((size_t)d * sizeof *x);
            float *y8 = malloc((size_t)N * d * sizeof *y8); /* what the value kernel adds: the 8-bit codebook */
            float *rot = malloc((size_t)GMAX * d * sizeof *rot), *w = malloc((size_t)GMAX * N * sizeof *w);
            int8_t *q8 = malloc((size_t)GMAX * d);
            float *acc0 = malloc((size_t)GMAX * d * sizeof *acc0), *acc1 = malloc((size_t)GMAX * d * sizeof *acc1);
            float sc0[GMAX * N], sc1[GMAX * N];
            g4_tq_gqa_query gq[GMAX];
            for (int j = 0; j < N; j++) {
                for (int i = 0; i < d; i++) x[i] = gauss() * (i % 7 == 3 ? 4.0f : 1.0f) * (1.0f + (float)j / N);
                g4_tq_encode(p, x, rec + (size_t)j * stride);
                g4_tq_decode_rotated(p, rec + (size_t)j * stride, y + (size_t)j * d);
                for (int i = 0; i < d; i++)
                    y8[(size_t)j * d + i] = t == G4_TQ_Q8 ? y[(size_t)j * d + i]
                                                         : g4_tq_record_scale(p, rec + (size_t)j * stride) * p->cb->unit8 *
                                                               p->cb->c8[g4_tq_record_index(p, rec + (size_t)j * stride, i)];
            }
            for (size_t gi = 0; gi < sizeof Gs / sizeof Gs[0]; gi++) {
                const int G = Gs[gi];
                for (int h = 0; h < G; h++) {
                    for (int i = 0; i < d; i++) x[i] = gauss();
                    g4_tq_rotate(p, x, rot + (size_t)h * d);
                    g4_tq_gqa_query_init(p, rot + (size_t)h * d, q8 + (size_t)h * d, &gq[h]);
                    for (int j = 0; j < N; j++) w[h * N + j] = expf(-3.0f * (float)(t_rand64() % 1000) / 1000.0f);
                }
                /* scores: the scalar reference against float arithmetic on the decoded records */
                ref->gqa_scores(p, gq, G, rec, stride, N, sc0, N);
                double e2 = 0, r2 = 0;
                for (int h = 0; h < G; h++)
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int i = 0; i < d; i++) s += (double)rot[(size_t)h * d + i] * y[(size_t)j * d + i];
                        e2 += (sc0[h * N + j] - s) * (sc0[h * N + j] - s);
                        r2 += s * s;
                    }
                CHECK(sqrt(e2 / r2) < (t == G4_TQ_Q8 ? 0.01 : 0.03), "%s d=%d G=%d: integer scores off by %.4f (rms, relative)",
                      g4_tq_type_name(p->type), d, G, sqrt(e2 / r2));
                /* values: the scalar reference against double sums of the decoded records */
                for (size_t i = 0; i < (size_t)G * d; i++) acc0[i] = acc1[i] = gauss();
                double want_max = 0, err_max = 0, cb_max = 0;
                for (int h = 0; h < G; h++)
                    for (int i = 0; i < d; i++) {
                        double s = acc0[(size_t)h * d + i];
                        for (int j = 0; j < N; j++) s += (double)w[h * N + j] * y8[(size_t)j * d + i];
                        want_max = fmax(want_max, fabs(s));
                    }
                ref->gqa_values(p, rec, stride, N, w, N, G, acc0, d);
                for (int h = 0; h < G; h++)
                    for (int i = 0; i < d; i++) {
                        double s = acc1[(size_t)h * d + i], s32 = s;
                        for (int j = 0; j < N; j++) s += (double)w[h * N + j] * y8[(size_t)j * d + i];
                        for (int j = 0; j < N; j++) s32 += (double)w[h * N + j] * y[(size_t)j * d + i];
                        err_max = fmax(err_max, fabs(s - acc0[(size_t)h * d + i]));
                        cb_max = fmax(cb_max, fabs(s32 - acc0[(size_t)h * d + i]));
                    }
                CHECK(err_max <= 1e-5 * want_max, "%s d=%d G=%d: values off by %g of %g", g4_tq_type_name(p->type), d, G,
                      err_max, want_max);
                /* against the float codebook: the 8-bit codebook's rounding only (its unit / 2 per value) */
                CHECK(cb_max <= (t == G4_TQ_Q8 ? 1e-5 * want_max : 0.01 * want_max), "%s d=%d G=%d: values off the float "
                      "codebook by %g of %g", g4_tq_type_name(p->type), d, G, cb_max, want_max);
                if (!simd) continue;
                /* SIMD against the scalar reference: tq scores and every value bit-identical */
                simd->gqa_scores(p, gq, G, rec, stride, N, sc1, N);
                int diff = 0;
                double qd = 0;
                double smax = 0;
                for (int i = 0; i < G * N; i++) smax = fmax(smax, fabs(sc0[i]));
                for (int i = 0; i < G * N; i++) {
                    diff += memcmp(&sc0[i], &sc1[i], sizeof(float)) != 0;
                    qd = fmax(qd, fabs(sc0[i] - sc1[i]) / smax);
                }
                if (t == G4_TQ_Q8) CHECK(qd < 2e-6, "q8 d=%d G=%d: SIMD scores differ by %g", d, G, qd);
                else CHECK(diff == 0, "%s d=%d G=%d: %d SIMD scores differ from the reference", g4_tq_type_name(p->type), d, G, diff);
                simd->gqa_values(p, rec, stride, N, w, N, G, acc1, d);
                CHECK(memcmp(acc0, acc1, (size_t)G * d * sizeof *acc0) == 0, "%s d=%d G=%d: SIMD values differ",
                      g4_tq_type_name(p->type), d, G);
            }
            free(rec), free(y), free(y8), free(x), free(rot), free(w), free(q8), free(acc0), free(acc1), free(p);
        }
    /* the 7-bit codebooks: |c7| <= 63, ascending, symmetric */
    for (int b = 2; b <= 4; b++) {
        g4_tq_params *p = mkparams(b == 4 ? G4_TQ_TQ4 : b == 3 ? G4_TQ_TQ3 : G4_TQ_TQ2, 512);
        if (!p) continue;
        int ok = 1;
        for (int k = 0; k < p->cb->n; k++) {
            ok &= p->c7[k] >= -63 && p->c7[k] <= 63 && p->c7[k] == -p->c7[p->cb->n - 1 - k];
            if (k) ok &= p->c7[k] > p->c7[k - 1];
            ok &= fabs(p->c7[k] * p->unit7 - p->cb->c[k]) <= 0.5 * p->unit7 + 1e-6;
        }
        CHECK(ok, "%d-bit 7-bit codebook", b);
        free(p);
    }
    /* the query: |q8| <= 127, qsum, the largest coordinate at ±127 */
    {
        g4_tq_params *p = mkparams(G4_TQ_TQ4, 256);
        float r[256];
        int8_t q[256];
        g4_tq_gqa_query gq;
        for (int i = 0; i < 256; i++) r[i] = gauss();
        r[17] = 9.0f;
        g4_tq_gqa_query_init(p, r, q, &gq);
        int32_t s = 0;
        for (int i = 0; i < 256; i++) s += q[i];
        CHECK(q[17] == 127 && s == gq.qsum && fabsf(gq.qs - 9.0f / 127) < 1e-6f && gq.q8 == q, "gqa query");
        for (int i = 0; i < 256; i++) r[i] = 0;
        g4_tq_gqa_query_init(p, r, q, &gq);
        CHECK(gq.qs == 0 && gq.qsum == 0 && q[5] == 0, "zero query");
        free(p);
    }
    /* exp_sum: x <- exp(x - m), Σ */
    {
        enum { M = 203 };
        float a[M], b[M], c[M];
        for (int i = 0; i < M; i++) a[i] = -110.0f * (float)i / M + 2.0f;
        a[7] = -INFINITY;
        memcpy(b, a, sizeof a);
        memcpy(c, a, sizeof a);
        float s0 = ref->exp_sum(b, M, 2.0f);
        double want = 0, worst = 0;
        for (int i = 0; i < M; i++) want += exp((double)a[i] - 2.0);
        CHECK(fabs(s0 - want) < 1e-6 * want && b[7] == 0, "scalar exp_sum");
        if (simd) {
            float s1 = simd->exp_sum(c, M, 2.0f);
            for (int i = 0; i < M; i++) {
                double e = exp((double)a[i] - 2.0);
                worst = fmax(worst, fabs(c[i] - e) - 3e-7 * e);
            }
            CHECK(worst <= 2e-38 && c[7] == 0, "SIMD exp off by %g", worst);
            CHECK(fabs(s1 - want) < 1e-6 * want, "SIMD exp_sum %g vs %g", s1, want);
        }
    }
}

/* ---- the --kv specification ----------------------------------------------------------------------- */

static void test_spec(void) {
    g4_ctx_params p = g4_ctx_default_params();
    g4_error err;
    char buf[256];
    CHECK(p.kv_type == G4_KV_F16 && p.kv_type_k == G4_KV_DEFAULT && p.kv_type_v == G4_KV_DEFAULT &&
              p.kv_layers == G4_KV_LAYERS_FULL && p.n_kv_override == 0,
          "defaults");
    g4_kv_spec_string(&p, buf, sizeof buf);
    CHECK(!strcmp(buf, "f16"), "default spec '%s'", buf);
    struct {
        const char *spec, *canon;
    } ok[] = {
        {"tq4", "tq4"},
        {"f32", "f32"},
        {"k=tq4,v=tq3", "k=tq4,v=tq3"},
        {"tq4/tq3", "k=tq4,v=tq3"},
        {"q8,layers=all", "q8,layers=all"},
        {"tq3,donors=q8", "tq3,donors=q8"},
        {"tq4,14=q8/tq4,donors=tq4", "tq4,14=q8/tq4,donors=tq4"},
        {"f32,k=q8,v=q8,layers=full", "f32,q8"},
        {"tq2,tq4", "tq4"},
        {"4=f16", "f16,4=f16"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        g4_ctx_params q = g4_ctx_default_params();
        CHECK(g4_kv_parse(ok[i].spec, &q, &err) == G4_OK, "'%s': %s", ok[i].spec, err.msg);
        g4_kv_spec_string(&q, buf, sizeof buf);
        CHECK(!strcmp(buf, ok[i].canon), "'%s' -> '%s', expected '%s'", ok[i].spec, buf, ok[i].canon);
        g4_ctx_params r = g4_ctx_default_params();
        CHECK(g4_kv_parse(buf, &r, &err) == G4_OK && !memcmp(&q, &r, sizeof q), "'%s' round trip", buf);
    }
    struct {
        const char *spec, *msg;
    } bad[] = {
        {"tq5", "unknown KV type 'tq5'"},       {"k=q9", "unknown KV type 'q9'"},
        {"layers=some", "full or all"},         {"frob=tq4", "bad KV item 'frob=tq4'"},
        {"", "empty"},                          {"tq4,,q8", "empty item"},
        {"default", "bad KV item"},             {"k=tq4/tq3", "with /"},
        {"3=tq9/tq4", "unknown KV type 'tq9'"}, {"1=q8,2=q8,3=q8,4=q8,5=q8,6=q8,7=q8,8=q8,9=q8", "more than 8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g4_ctx_params q = g4_ctx_default_params();
        err.msg[0] = 0;
        CHECK(g4_kv_parse(bad[i].spec, &q, &err) == G4_ERR_ARG && strstr(err.msg, bad[i].msg), "'%s': '%s'", bad[i].spec,
              err.msg);
        CHECK(!memcmp(&q, &p, sizeof q), "'%s' left the params alone", bad[i].spec);
    }
    CHECK(strstr(err.msg, "") && g4_kv_type_from_name("tq3") == G4_KV_TQ3 && !strcmp(g4_kv_type_name(G4_KV_Q8), "q8") &&
              g4_kv_type_name(G4_KV_DEFAULT) == NULL && g4_kv_type_from_name("x") == -1,
          "type names");
}

/* ---- memory per token: an E2B-shaped layer table (35 layers, 4 sliding + 1 full, head dims 256 / 512,
 * one KV head, the last 20 layers sharing the caches of layers 13 and 14) ---------------------------- */

static void test_memory(void) {
    g4_model m;
    g4_layer ly[35];
    memset(&m, 0, sizeof m);
    memset(ly, 0, sizeof ly);
    m.n_layer = 35;
    m.sliding_window = 512;
    m.layers = ly;
    for (int l = 0; l < 35; l++) {
        ly[l].is_swa = l % 5 != 4;
        ly[l].head_dim = ly[l].is_swa ? 256 : 512;
        ly[l].n_head_kv = 1;
        ly[l].kv_src = l < 15 ? l : ly[l].is_swa ? 13 : 14;
    }
    const int n = 100000, extra = 32 + 256;
    const char *specs[] = {"f16", "f32", "q8", "tq4", "tq3", "tq2", "k=tq4,v=tq3", "k=q8,v=tq4"};
    const double want[] = {1.0, 2.0, 544.0 / 1024, 258.0 / 1024, 194.0 / 1024, 130.0 / 1024, 226.0 / 1024, 401.0 / 1024};
    g4_ctx_params f16 = g4_ctx_default_params();
    const double base = (double)(g4_kv_size(&m, n + 1, extra, &f16) - g4_kv_size(&m, n, extra, &f16));
    CHECK(base == 3 * 2 * 512 * 2, "f16: %g bytes per token (3 full-attention caches of 2 x 512 halves)", base);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        g4_ctx_params p = g4_ctx_default_params();
        g4_error err;
        CHECK(g4_kv_parse(specs[i], &p, &err) == G4_OK, "%s", specs[i]);
        double per = (double)(g4_kv_size(&m, n + 1, extra, &p) - g4_kv_size(&m, n, extra, &p));
        CHECK(fabs(per / base - want[i]) < 1e-12, "%s: %g bytes per token = %.4f x f16, expected %.4f", specs[i], per, per / base,
              want[i]);
        if (!strcmp(specs[i], "tq4")) CHECK(per / base <= 0.26, "tq4: %.4f x f16 per token", per / base);
        if (!strcmp(specs[i], "tq3")) CHECK(per / base <= 0.20, "tq3: %.4f x f16 per token", per / base);
    }
    /* the sliding rings are the same in every mode but layers=all */
    g4_ctx_params p = g4_ctx_default_params();
    g4_kv_parse("tq4", &p, NULL);
    CHECK(g4_kv_size(&m, 1000, extra, &p) - g4_kv_size(&m, 999, extra, &p) == 2 * 3 * 258, "tq4 per token");
    g4_kv_parse("layers=all", &p, NULL);
    uint64_t all = g4_kv_size(&m, 1000, extra, &p), full = g4_kv_size(&m, 1000, extra, &f16);
    CHECK(all * 3 < full, "layers=all: %llu bytes vs f16 %llu", (unsigned long long)all, (unsigned long long)full);
}

/* ---- the forward pass on packed caches (oracle models) --------------------------------------------- */

static double max_rel(const float *a, const float *b, size_t n) {
    double mx = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(a[i]));
        d = fmax(d, fabs((double)a[i] - b[i]));
    }
    return mx > 0 ? d / mx : d;
}

/* mean KL(softmax(a) || softmax(b)) over rows */
static double mean_kl(const float *a, const float *b, int rows, int V) {
    double tot = 0;
    for (int r = 0; r < rows; r++) {
        const float *x = a + (size_t)r * V, *y = b + (size_t)r * V;
        double mx = -INFINITY, my = -INFINITY, sx = 0, sy = 0, kl = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, x[i]), my = fmax(my, y[i]);
        for (int i = 0; i < V; i++) sx += exp(x[i] - mx), sy += exp(y[i] - my);
        for (int i = 0; i < V; i++) {
            double lx = x[i] - mx - log(sx), lyy = y[i] - my - log(sy);
            kl += exp(lx) * (lx - lyy);
        }
        tot += kl;
    }
    return tot / rows;
}

/* every position's logits, in chunks of `chunk` tokens */
static int run(g4_model *m, const char *spec, int exact, int threads, const int32_t *tok, int n, int chunk, float *out) {
    g4_ctx_params p = g4_ctx_default_params();
    g4_error err;
    p.n_ctx = n;
    p.exact = exact;
    p.n_threads = threads;
    if (spec && g4_kv_parse(spec, &p, &err)) return 0;
    g4_ctx *c;
    if (g4_ctx_new(&c, m, &p, &err)) {
        fprintf(stderr, "%s: %s\n", spec, err.msg);
        return 0;
    }
    g4_model_info in;
    g4_model_get_info(m, &in);
    for (int i = 0; i < n; i += chunk) {
        int T = n - i < chunk ? n - i : chunk;
        if (g4_eval(c, tok + i, T, out + (size_t)i * in.n_vocab, 1, &err)) {
            fprintf(stderr, "%s: %s\n", spec, err.msg);
            g4_ctx_free(c);
            return 0;
        }
    }
    g4_ctx_free(c);
    return 1;
}

static void test_forward(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s.gguf", t_oracle(), name);
    g4_model *m;
    g4_error err;
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "open %s: %s", path, err.msg);
        return;
    }
    g4_model_info in;
    g4_model_get_info(m, &in);
    const int V = in.n_vocab;
    enum { N = 340 }; /* > the 303-cell rings of the sliding layers, > one 256-key split */
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = 4 + (int32_t)(t_rand64() % (unsigned)(V - 4));
    tok[0] = 2;
    float *a = malloc((size_t)N * V * sizeof *a), *b = malloc((size_t)N * V * sizeof *b);

    /* within one batch every type attends to the batch's exact K/V: the same as an f32 cache */
    CHECK(run(m, "f32", 1, 1, tok, 30, 30, a), "%s f32 batch", name);
    const char *packed[] = {"q8,layers=all", "tq4,layers=all", "tq3,layers=all", "tq2,layers=all", "k=q8,v=tq2,layers=all"};
    for (size_t i = 0; i < sizeof packed / sizeof packed[0]; i++) {
        CHECK(run(m, packed[i], 1, 1, tok, 30, 30, b), "%s %s batch", name, packed[i]);
        double d = max_rel(a, b, (size_t)30 * V);
        CHECK(d < 2e-5, "%s %s: one batch differs from the f32 cache by %g", name, packed[i], d);
    }
    /* token by token (every key but the token's own from the records), through the rings and splits */
    CHECK(run(m, "f16", 1, 1, tok, N, 1, a), "%s f16", name);
    struct {
        const char *spec;
        double kl;
    } tbl[] = {{"q8,layers=all", 0.02}, {"tq4", 0.03}, {"tq4,layers=all", 3.0}, {"tq2", 0.5}};
    for (size_t i = 0; i < sizeof tbl / sizeof tbl[0]; i++) {
        CHECK(run(m, tbl[i].spec, 1, 1, tok, N, 1, b), "%s %s", name, tbl[i].spec);
        double kl = mean_kl(a, b, N, V);
        if (getenv("T_VERBOSE")) printf("%s %s: mean KL %.6f\n", name, tbl[i].spec, kl);
        CHECK(kl > 0 && kl < tbl[i].kl, "%s %s: mean KL %g against f16 (limit %g)", name, tbl[i].spec, kl, tbl[i].kl);
        if (i == 1) { /* threads share splits, never a sum: the same bits with 1 and 3 threads */
            float *c = malloc((size_t)N * V * sizeof *c);
            CHECK(run(m, tbl[i].spec, 1, 3, tok, N, 1, c), "%s 3 threads", name);
            CHECK(!memcmp(b, c, (size_t)N * V * sizeof *c), "%s %s: 1 and 3 threads differ", name, tbl[i].spec);
            CHECK(run(m, tbl[i].spec, 0, 3, tok, N, 7, c) && run(m, tbl[i].spec, 0, 1, tok, N, 7, b), "%s chunks", name);
            CHECK(!memcmp(b, c, (size_t)N * V * sizeof *c), "%s %s: chunks of 7, 1 and 3 threads differ", name, tbl[i].spec);
            free(c);
        }
    }
    /* truncation keeps the records: truncate + new tokens = a fresh run of the new sequence */
    {
        g4_ctx_params p = g4_ctx_default_params();
        g4_kv_parse("tq3,layers=all", &p, NULL);
        p.n_ctx = 100;
        p.exact = 1;
        g4_ctx *c;
        int32_t alt[100];
        memcpy(alt, tok, sizeof alt);
        for (int i = 90; i < 100; i++) alt[i] = 4 + (tok[i] + 1) % (V - 4);
        CHECK(g4_ctx_new(&c, m, &p, &err) == G4_OK, "ctx");
        for (int i = 0; i < 100; i++) g4_eval(c, tok + i, 1, NULL, 0, &err);
        CHECK(g4_ctx_truncate(c, 90, &err) == G4_OK, "truncate: %s", err.msg);
        for (int i = 90; i < 100; i++) g4_eval(c, alt + i, 1, b + (size_t)i * V, 0, &err);
        g4_ctx_free(c);
        CHECK(run(m, "tq3,layers=all", 1, 1, alt, 100, 1, a), "fresh");
        CHECK(!memcmp(a + (size_t)90 * V, b + (size_t)90 * V, (size_t)10 * V * sizeof *a), "%s: truncated packed cache", name);
    }
    /* a randomly filled cache (g4 bench --fill random) decodes */
    {
        g4_ctx_params p = g4_ctx_default_params();
        g4_kv_parse("tq4,layers=all", &p, NULL);
        p.n_ctx = 400;
        g4_ctx *c;
        CHECK(g4_ctx_new(&c, m, &p, &err) == G4_OK, "ctx");
        CHECK(g4_ctx_fill_random(c, 390, 1, &err) == G4_OK && g4_ctx_n_past(c) == 390, "fill");
        CHECK(g4_ctx_fill_random(c, 11, 1, &err) == G4_ERR_CONTEXT, "fill past the context");
        CHECK(g4_eval(c, tok, 3, a, 0, &err) == G4_OK && isfinite(a[0]) && isfinite(a[V - 1]), "decode after fill");
        g4_ctx_free(c);
    }
    /* errors name the layer and the rule */
    {
        struct {
            const char *spec, *msg;
        } bad[] = {{"k=tq4", "K tq4 with V f16"}, {"v=q8,layers=all", "layer 0: K f16 with V q8"}};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            g4_ctx_params p = g4_ctx_default_params();
            g4_ctx *c = NULL;
            g4_kv_parse(bad[i].spec, &p, NULL);
            CHECK(g4_ctx_new(&c, m, &p, &err) == G4_ERR_ARG && !c && strstr(err.msg, bad[i].msg), "%s: %s", bad[i].spec, err.msg);
        }
        g4_ctx_params p = g4_ctx_default_params();
        g4_ctx *c = NULL;
        p.kv_type = G4_KV_TQ4;
        CHECK(g4_ctx_new(&c, m, &p, &err) == G4_ERR_ARG && strstr(err.msg, "base type is f32 or f16"), "kv_type tq4: %s", err.msg);
        p = g4_ctx_default_params();
        g4_kv_parse("99=q8", &p, NULL);
        CHECK(g4_ctx_new(&c, m, &p, &err) == G4_ERR_ARG && strstr(err.msg, "layer 99"), "layer 99: %s", err.msg);
        /* the last layer of every oracle model reads another layer's cache or is its own donor */
        int last = in.n_layer - 1;
        g4_layer_info li;
        g4_model_get_layer(m, last, &li);
        if (li.kv_src != last) {
            char s[32];
            snprintf(s, sizeof s, "%d=q8", last);
            p = g4_ctx_default_params();
            g4_kv_parse(s, &p, NULL);
            CHECK(g4_ctx_new(&c, m, &p, &err) == G4_ERR_ARG && strstr(err.msg, "reads layer"), "%s: %s", s, err.msg);
        }
        /* the policy, layer by layer */
        p = g4_ctx_default_params();
        g4_kv_parse("tq3,donors=q8", &p, NULL);
        for (int l = 0; l < in.n_layer; l++) {
            g4_kv_type k, v, want;
            g4_model_get_layer(m, l, &li);
            int donor = 0;
            for (int j = 0; j < in.n_layer; j++) {
                g4_layer_info lj;
                g4_model_get_layer(m, j, &lj);
                donor |= j != li.kv_src && lj.kv_src == li.kv_src;
            }
            g4_layer_info src;
            g4_model_get_layer(m, li.kv_src, &src);
            want = donor ? G4_KV_Q8 : src.is_swa ? G4_KV_F16 : G4_KV_TQ3;
            CHECK(g4_kv_layer_types(m, &p, l, &k, &v, &err) == G4_OK && k == want && v == want, "%s layer %d: %d/%d, want %d",
                  name, l, (int)k, (int)v, (int)want);
        }
        CHECK(g4_model_kv_bytes_params(m, 1000, &p) < g4_model_kv_bytes(m, 1000, G4_KV_F16), "smaller");
    }
    free(a);
    free(b);
    g4_model_free(m);
}

/* ---- kernel speed ------------------------------------------------------------------------------- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(void) {
    enum { N = 4096, G = 8 };
    const g4_type_traits *f16 = g4_type_traits_get(G4_TYPE_F16);
    printf("ns per record (one KV head, G = %d query heads): scores | values | both\n", G);
    for (int d = 256; d <= 512; d *= 2) {
        /* f16 rows as the f16 cache reads them: one dot and one axpy per (record, head) */
        uint16_t *rows = malloc((size_t)N * d * 2);
        float *q = malloc((size_t)G * d * sizeof *q), *acc = calloc((size_t)G * d, sizeof *acc), *w = malloc((size_t)G * N * sizeof *w);
        for (size_t i = 0; i < (size_t)N * d; i++) rows[i] = g4_fp32_to_fp16(gauss());
        for (int i = 0; i < G * d; i++) q[i] = gauss();
        for (int i = 0; i < G * N; i++) w[i] = 0.001f;
        double best_s = 1e9, best_v = 1e9;
        volatile float sink = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            for (int j = 0; j < N; j++)
                for (int h = 0; h < G; h++) sink += f16->dot_f32(rows + (size_t)j * d, q + (size_t)h * d, d);
            double t1 = now();
            for (int j = 0; j < N; j++)
                for (int h = 0; h < G; h++) g4_axpy_f16_fast(w[h * N + j], rows + (size_t)j * d, acc + (size_t)h * d, d);
            double t2 = now();
            best_s = fmin(best_s, t1 - t0), best_v = fmin(best_v, t2 - t1);
        }
        (void)sink;
        printf("  d=%d f16   %7.1f | %7.1f | %7.1f\n", d, best_s / N * 1e9, best_v / N * 1e9, (best_s + best_v) / N * 1e9);
        for (int t = 0; t < G4_TQ_N_TYPES; t++) {
            g4_tq_params *p = mkparams((g4_tq_type)t, d);
            uint8_t *rec = malloc((size_t)N * p->record_bytes);
            float *x = malloc((size_t)d * sizeof *x), *sc = malloc((size_t)G * N * sizeof *sc);
            int8_t *q8 = malloc((size_t)G * d);
            g4_tq_gqa_query gq[G];
            for (int j = 0; j < N; j++) {
                for (int i = 0; i < d; i++) x[i] = gauss();
                g4_tq_encode(p, x, rec + (size_t)j * p->record_bytes);
            }
            for (int h = 0; h < G; h++) g4_tq_gqa_query_init(p, q + (size_t)h * d, q8 + (size_t)h * d, &gq[h]);
            best_s = best_v = 1e9;
            double best_e = 1e9;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                p->kern->gqa_scores(p, gq, G, rec, p->record_bytes, N, sc, N);
                double t1 = now();
                p->kern->gqa_values(p, rec, p->record_bytes, N, w, N, G, acc, d);
                double t2 = now();
                for (int h = 0; h < G; h++) p->kern->exp_sum(sc + (size_t)h * N, N, 100.0f);
                double t3 = now();
                best_s = fmin(best_s, t1 - t0), best_v = fmin(best_v, t2 - t1), best_e = fmin(best_e, t3 - t2);
            }
            printf("  d=%d %-5s %7.1f | %7.1f | %7.1f   (exp of G scores %.1f; %s)\n", d, g4_tq_type_name((g4_tq_type)t),
                   best_s / N * 1e9, best_v / N * 1e9, (best_s + best_v) / N * 1e9, best_e / N * 1e9, p->kern->isa);
            free(rec), free(x), free(sc), free(q8), free(p);
        }
        free(rows), free(q), free(acc), free(w);
    }
}

int main(int argc, char **argv) {
    g4_types_init();
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        return 0;
    }
    test_gqa_kernels();
    test_spec();
    test_memory();
    const char *models[] = {"e2b-F32", "moe-Q8_0", "dense-F16"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) test_forward(models[i]);
    return t_done();
}
