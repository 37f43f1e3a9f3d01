/* Sampler: greedy, seeds, top-k / top-p / min-p masks and temperature on hand-made distributions,
 * penalties, and the empirical distribution of draws. */
#include "t.h"

#include "sampler/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static g4_sampler_params plain(void) {
    g4_sampler_params p = g4_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static g4_sampler *mk(const g4_sampler_params *p, int V) {
    g4_sampler *s = NULL;
    g4_error err;
    CHECK(g4_sampler_new(&s, p, V, &err) == G4_OK, "sampler_new");
    return s;
}

/* logits = log(prob) */
static void logits_of(const double *prob, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = prob[i] > 0 ? (float)log(prob[i]) : -INFINITY;
}

/* after one draw, the candidate set equals ids[] with probabilities want[] (within 1e-5) */
static void expect_cands(g4_sampler *s, const float *logits, const int *ids, const double *want, int n, const char *what) {
    g4_sampler_sample(s, logits);
    const int *ci;
    const float *cp;
    int m = g4_sampler_last_candidates(s, &ci, &cp);
    CHECK(m == n, "%s: %d candidates, expected %d", what, m, n);
    for (int i = 0; i < n && i < m; i++) {
        CHECK(ci[i] == ids[i], "%s: candidate %d is %d, expected %d", what, i, ci[i], ids[i]);
        CHECK(fabs(cp[i] - want[i]) < 1e-5, "%s: p[%d] = %g, expected %g", what, i, cp[i], want[i]);
    }
}

/* the top-k path (g4_sampler_sample_top on the k largest logits, as g4_eval_top gives them) draws the
 * same tokens as the full row, whenever g4_sampler_top_k says it may be used */
static const float *g_lg;
static int cmp_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (g_lg[x] != g_lg[y]) return g_lg[x] > g_lg[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void test_top_path(void) {
    enum { V = 3000, STEPS = 200 };
    static float lg[V];
    static int32_t ids[V];
    static float vals[V];
    const float temps[] = {0.0f, 0.7f, 1.0f, 1.5f};
    const int topks[] = {0, 1, 5, 40, 64};
    uint64_t st = 12345;
    int used = 0, same = 0, total = 0;
    for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++)
        for (size_t ki = 0; ki < sizeof topks / sizeof topks[0]; ki++)
            for (int pen = 0; pen < 2; pen++) {
                g4_sampler_params p = g4_sampler_default_params();
                p.temperature = temps[ti];
                p.top_k = topks[ki];
                p.top_p = 0.9f;
                p.min_p = 0.02f;
                p.seed = 99 + ti * 10 + ki;
                if (pen) p.repeat_penalty = 1.3f, p.penalty_last_n = 16;
                g4_sampler *a = mk(&p, V), *b = mk(&p, V);
                for (int step = 0; step < STEPS; step++) {
                    for (int i = 0; i < V; i++) { /* peaked logits with ties and a few -inf / NaN */
                        st = st * 6364136223846793005ull + 1442695040888963407ull;
                        const int r = (int)(st >> 40) % 1000;
                        lg[i] = r < 3 ? -INFINITY : r < 5 ? NAN : (float)((int)(st >> 33) % 64) * 0.25f - (i % 97 == 0 ? 0 : 6);
                    }
                    const int k = g4_sampler_top_k(b);
                    const int ta = g4_sampler_sample(a, lg);
                    int tb;
                    if (k > 0) {
                        int n = 0;
                        for (int i = 0; i < V; i++)
                            if (lg[i] > -INFINITY) ids[n++] = i;
                        g_lg = lg;
                        qsort(ids, (size_t)n, sizeof *ids, cmp_desc);
                        if (n > k) n = k;
                        for (int i = 0; i < n; i++) vals[i] = lg[ids[i]];
                        tb = g4_sampler_sample_top(b, ids, vals, n);
                        used++;
                    } else {
                        tb = g4_sampler_sample(b, lg);
                    }
                    same += ta == tb;
                    total++;
                    g4_sampler_accept(a, ta);
                    g4_sampler_accept(b, tb);
                    if (ta != tb) break;
                }
                CHECK(g4_sampler_top_k(b) == (pen ? 0 : temps[ti] <= 0 ? 1 : topks[ki]),
                      "top_k %d for temperature %g, top-k %d, penalties %d", g4_sampler_top_k(b), temps[ti], topks[ki], pen);
                g4_sampler_free(a);
                g4_sampler_free(b);
            }
    CHECK(same == total && used > total / 3, "top-k path: %d of %d draws equal to the full row's (%d on the top-k path)", same,
          total, used);
}

/* Without penalties a greedy or top-k chain takes its candidates from the logits in one pass; with a
 * penalty that changes nothing (a history of one token whose logit is -inf) the full copy-and-select path
 * runs. Both give the same tokens and the same candidates, bit for bit, on logits with ties, nan and
 * infinities. */
static void test_one_pass(void) {
    enum { V = 5000, STEPS = 60 };
    static float lg[V];
    const float temps[] = {0.0f, 0.7f, 1.0f};
    const int topks[] = {1, 2, 5, 40, 64, 1000};
    int total = 0, same = 0;
    for (int ti = 0; ti < 3; ti++)
        for (int ki = 0; ki < 6; ki++) {
            g4_sampler_params p = plain();
            p.temperature = temps[ti];
            p.top_k = topks[ki];
            p.top_p = ki % 2 ? 0.9f : 1.0f;
            p.seed = 7 + (uint64_t)ki;
            g4_sampler *a = mk(&p, V);
            p.frequency_penalty = 0.5f;
            p.penalty_last_n = 4;
            g4_sampler *b = mk(&p, V);
            for (int step = 0; step < STEPS; step++) {
                for (int i = 0; i < V; i++) lg[i] = (float)(t_rand64() % 64) * 0.25f - 8.0f; /* many ties */
                if (step % 3 == 0) lg[t_rand64() % V] = NAN, lg[t_rand64() % V] = INFINITY;
                if (step % 5 == 1) lg[t_rand64() % V] = INFINITY, lg[t_rand64() % V] = FLT_MAX;
                if (step % 7 == 2) for (int i = 0; i < V; i++) lg[i] = i % 9 ? -INFINITY : lg[i]; /* few left */
                lg[0] = -INFINITY;
                g4_sampler_reset(b);
                g4_sampler_accept(b, 0); /* penalizes token 0 only: -inf stays -inf */
                const int ta = g4_sampler_sample(a, lg), tb = g4_sampler_sample(b, lg);
                const int *ia, *ib;
                const float *pa, *pb;
                const int na = g4_sampler_last_candidates(a, &ia, &pa), nb = g4_sampler_last_candidates(b, &ib, &pb);
                total++;
                same += ta == tb && na == nb && !memcmp(ia, ib, (size_t)na * sizeof *ia) && !memcmp(pa, pb, (size_t)na * sizeof *pa);
            }
            g4_sampler_free(a);
            g4_sampler_free(b);
        }
    CHECK(same == total, "one-pass candidates: %d of %d draws equal to the full path's", same, total);
}

int main(void) {
    test_top_path();
    test_one_pass();
    enum { V = 6 };
    const double prob[V] = {0.05, 0.5, 0.1, 0.3, 0.05, 0.0};
    float lg[V];
    logits_of(prob, V, lg);

    /* greedy */
    g4_sampler_params p = plain();
    p.temperature = 0;
    g4_sampler *s = mk(&p, V);
    CHECK(g4_sampler_sample(s, lg) == 1, "greedy picks the argmax");
    float tie[V] = {1, 3, 3, 2, 0, 0};
    CHECK(g4_sampler_sample(s, tie) == 1, "greedy tie goes to the lower id");
    g4_sampler_free(s);

    /* no filter: the full distribution, sorted, token 5 (prob 0, logit -inf) excluded */
    p = plain();
    s = mk(&p, V);
    expect_cands(s, lg, (int[]){1, 3, 2, 0, 4}, (double[]){0.5, 0.3, 0.1, 0.05, 0.05}, 5, "no filter");
    g4_sampler_free(s);

    /* top-k 2 */
    p = plain();
    p.top_k = 2;
    s = mk(&p, V);
    expect_cands(s, lg, (int[]){1, 3}, (double[]){0.5 / 0.8, 0.3 / 0.8}, 2, "top-k 2");
    g4_sampler_free(s);

    /* top-p 0.85: 0.5 + 0.3 = 0.8 < 0.85, + 0.1 reaches it: three tokens */
    p = plain();
    p.top_p = 0.85f;
    s = mk(&p, V);
    expect_cands(s, lg, (int[]){1, 3, 2}, (double[]){0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9}, 3, "top-p 0.85");
    g4_sampler_free(s);
    p.top_p = 0.3f; /* the first token alone reaches it */
    s = mk(&p, V);
    expect_cands(s, lg, (int[]){1}, (double[]){1.0}, 1, "top-p 0.3");
    g4_sampler_free(s);

    /* min-p 0.25: keep p >= 0.125 */
    p = plain();
    p.min_p = 0.25f;
    s = mk(&p, V);
    expect_cands(s, lg, (int[]){1, 3}, (double[]){0.5 / 0.8, 0.3 / 0.8}, 2, "min-p 0.25");
    g4_sampler_free(s);

    /* temperature 0.5 after top-k 2: p^2 renormalised */
    p = plain();
    p.top_k = 2;
    p.temperature = 0.5f;
    s = mk(&p, V);
    expect_cands(s, lg, (int[]){1, 3}, (double[]){0.25 / 0.34, 0.09 / 0.34}, 2, "temperature 0.5");
    g4_sampler_free(s);

    /* penalties: logits {4, -2, 1, 0}, history 0 0 0 1 */
    {
        float pl[4] = {4, -2, 1, 0};
        p = plain();
        p.repeat_penalty = 2.0f;
        p.frequency_penalty = 0.5f;
        p.presence_penalty = 1.0f;
        p.penalty_last_n = 8;
        s = mk(&p, 4);
        g4_sampler_accept(s, 0);
        g4_sampler_accept(s, 0);
        g4_sampler_accept(s, 0);
        g4_sampler_accept(s, 1);
        /* token 0: 4/2 - 3*0.5 - 1 = -0.5; token 1: -2*2 - 0.5 - 1 = -5.5; 2: 1; 3: 0 */
        double e[4] = {exp(-0.5), exp(-5.5), exp(1), exp(0)}, z = e[0] + e[1] + e[2] + e[3];
        expect_cands(s, pl, (int[]){2, 3, 0, 1}, (double[]){e[2] / z, e[3] / z, e[0] / z, e[1] / z}, 4, "penalties");
        /* a window of 2 keeps only the last two tokens (0, 1): token 0 counted once */
        p.penalty_last_n = 2;
        CHECK(g4_sampler_set_params(s, &p, NULL) == G4_OK, "set_params");
        g4_sampler_accept(s, 0);
        g4_sampler_accept(s, 0);
        g4_sampler_accept(s, 0);
        g4_sampler_accept(s, 1);
        double f[4] = {exp(4.0 / 2 - 0.5 - 1), exp(-2 * 2 - 0.5 - 1), exp(1), exp(0)}, zf = f[0] + f[1] + f[2] + f[3];
        expect_cands(s, pl, (int[]){2, 0, 3, 1}, (double[]){f[2] / zf, f[0] / zf, f[3] / zf, f[1] / zf}, 4, "penalty window");
        g4_sampler_reset(s);
        double g[4] = {exp(4), exp(-2), exp(1), exp(0)}, zg = g[0] + g[1] + g[2] + g[3];
        expect_cands(s, pl, (int[]){0, 2, 3, 1}, (double[]){g[0] / zg, g[2] / zg, g[3] / zg, g[1] / zg}, 4, "reset");
        g4_sampler_free(s);
    }

    /* seeds: same seed, same tokens; another seed, other tokens */
    {
        enum { N = 64, W = 1000 };
        static float flat[W];
        for (int i = 0; i < W; i++) flat[i] = t_randf();
        p = g4_sampler_default_params();
        p.top_k = 0;
        p.top_p = 1.0f;
        p.seed = 1234;
        g4_sampler *a = mk(&p, W), *b = mk(&p, W);
        p.seed = 99;
        g4_sampler *c = mk(&p, W);
        int same = 1, diff = 0;
        for (int i = 0; i < N; i++) {
            int x = g4_sampler_sample(a, flat), y = g4_sampler_sample(b, flat), z = g4_sampler_sample(c, flat);
            same &= x == y;
            diff += x != z;
        }
        CHECK(same, "same seed gives the same tokens");
        CHECK(diff > N / 2, "another seed gives other tokens (%d of %d differ)", diff, N);
        g4_sampler_free(a);
        g4_sampler_free(b);
        g4_sampler_free(c);
    }

    /* draws follow the distribution */
    {
        const double pr[3] = {0.5, 0.3, 0.2};
        float l3[3];
        logits_of(pr, 3, l3);
        p = plain();
        p.seed = 7;
        s = mk(&p, 3);
        int cnt[3] = {0};
        const int n = 200000;
        for (int i = 0; i < n; i++) cnt[g4_sampler_sample(s, l3)]++;
        for (int i = 0; i < 3; i++)
            CHECK(fabs((double)cnt[i] / n - pr[i]) < 0.006, "token %d drawn %.4f of the time, expected %.2f", i,
                  (double)cnt[i] / n, pr[i]);
        g4_sampler_free(s);
    }

    /* NaN and all -inf logits do not crash and give a valid token */
    {
        float bad[4] = {NAN, -INFINITY, 2.0f, NAN};
        p = g4_sampler_default_params();
        s = mk(&p, 4);
        CHECK(g4_sampler_sample(s, bad) == 2, "NaN logits are never picked");
        float none[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        int t = g4_sampler_sample(s, none);
        CHECK(t >= 0 && t < 4, "all -inf gives a valid token");
        g4_sampler_free(s);
    }
    return t_done();
}
