#include "sampler/sampler.h"
#include "model/model.h"
#include "util/util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct g4_sampler {
    g4_sampler_params p;
    int n_vocab;
    uint64_t rng[4];
    /* penalty history: ring of the last `hist_cap` tokens, and per-token counts over it */
    int32_t *hist;
    int hist_cap, hist_len, hist_pos;
    int32_t *counts;
    /* candidates */
    int *ids;
    float *val;
    float *prob; /* probabilities of the last draw's candidates, in candidate order */
    int n_cand;
};

g4_sampler_params g4_sampler_default_params(void) {
    g4_sampler_params p = {.temperature = 1.0f, .top_k = 64, .top_p = 0.95f, .min_p = 0.0f, .repeat_penalty = 1.0f,
                           .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .penalty_last_n = 64, .seed = 0};
    return p;
}

g4_sampler_params g4_sampler_model_params(const g4_model *m) {
    g4_sampler_params p = g4_sampler_default_params();
    float t = p.temperature, tp = p.top_p, mp = p.min_p;
    uint32_t k = (uint32_t)p.top_k;
    /* absent keys leave the values alone; keys of a wrong type or out of range are ignored */
    if (gguf_get_f32(m->gf, "general.sampling.temp", 0, &t, NULL) == G4_OK && t >= 0 && t <= 100) p.temperature = t;
    if (gguf_get_f32(m->gf, "general.sampling.top_p", 0, &tp, NULL) == G4_OK && tp > 0 && tp <= 1) p.top_p = tp;
    if (gguf_get_f32(m->gf, "general.sampling.min_p", 0, &mp, NULL) == G4_OK && mp >= 0 && mp <= 1) p.min_p = mp;
    if (gguf_get_u32(m->gf, "general.sampling.top_k", 0, &k, NULL) == G4_OK && k <= 1000000) p.top_k = (int)k;
    return p;
}

/* splitmix64 to seed xoshiro256** */
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t next64(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}
static void seed_rng(g4_sampler *s, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix(&x);
}

static int hist_capacity(const g4_sampler_params *p) {
    return p->penalty_last_n < 0 ? G4_SAMPLER_MAX_LAST_N : p->penalty_last_n;
}

/* value v of a float parameter within [lo, hi] (finite) */
static g4_status check_f(g4_error *err, const char *name, float v, float lo, float hi, const char *range) {
    if (isfinite(v) && v >= lo && v <= hi) return G4_OK;
    return g4_fail(err, G4_ERR_ARG, "%s %g is out of range: %s", name, (double)v, range);
}

g4_status g4_sampler_params_check(const g4_sampler_params *p, g4_error *err) {
    g4_status s;
    if (!p) return g4_fail(err, G4_ERR_ARG, "sampler: no parameters");
    if ((s = check_f(err, "temperature", p->temperature, 0.0f, FLT_MAX, "a finite number >= 0 (0: greedy)")) ||
        (s = check_f(err, "top_p", p->top_p, 0.0f, 1.0f, "a number from 0 to 1 (1: off)")) ||
        (s = check_f(err, "min_p", p->min_p, 0.0f, 1.0f, "a number from 0 to 1 (0: off)")) ||
        (s = check_f(err, "repeat_penalty", p->repeat_penalty, G4_SAMPLER_MIN_REPEAT_PENALTY, G4_SAMPLER_MAX_PENALTY,
                     "a number from 0.01 to 100 (1: off)")) ||
        (s = check_f(err, "presence_penalty", p->presence_penalty, -G4_SAMPLER_MAX_PENALTY, G4_SAMPLER_MAX_PENALTY,
                     "a number from -100 to 100 (0: off)")) ||
        (s = check_f(err, "frequency_penalty", p->frequency_penalty, -G4_SAMPLER_MAX_PENALTY, G4_SAMPLER_MAX_PENALTY,
                     "a number from -100 to 100 (0: off)")))
        return s;
    if (p->top_k < 0 || p->top_k > G4_SAMPLER_MAX_TOP_K)
        return g4_fail(err, G4_ERR_ARG, "top_k %d is out of range: an integer from 0 to %d (0: off)", p->top_k,
                       G4_SAMPLER_MAX_TOP_K);
    if (p->penalty_last_n < -1 || p->penalty_last_n > G4_SAMPLER_MAX_LAST_N)
        return g4_fail(err, G4_ERR_ARG,
                       "penalty_last_n %d is out of range: an integer from -1 to %d (0: no penalties, -1: the whole "
                       "history)",
                       p->penalty_last_n, G4_SAMPLER_MAX_LAST_N);
    return G4_OK;
}

g4_status g4_sampler_new(g4_sampler **out, const g4_sampler_params *p, int n_vocab, g4_error *err) {
    *out = NULL;
    if (n_vocab < 1) return g4_fail(err, G4_ERR_ARG, "sampler: vocabulary size %d", n_vocab);
    g4_status st = g4_sampler_params_check(p, err);
    if (st) return st;
    g4_sampler *s = calloc(1, sizeof *s);
    if (!s) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    s->n_vocab = n_vocab;
    s->ids = malloc((size_t)n_vocab * sizeof *s->ids);
    s->val = malloc((size_t)n_vocab * sizeof *s->val);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    if (!s->ids || !s->val || !s->prob || !s->counts) {
        g4_sampler_free(s);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    if ((st = g4_sampler_set_params(s, p, err))) {
        g4_sampler_free(s);
        return st;
    }
    seed_rng(s, p->seed);
    *out = s;
    return G4_OK;
}

void g4_sampler_free(g4_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->counts);
    free(s->ids);
    free(s->val);
    free(s->prob);
    free(s);
}

void g4_sampler_reset(g4_sampler *s) {
    s->hist_len = s->hist_pos = 0;
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof *s->counts);
}

g4_status g4_sampler_set_params(g4_sampler *s, const g4_sampler_params *p, g4_error *err) {
    g4_status st = g4_sampler_params_check(p, err);
    if (st) return st;
    int reseed = p->seed != s->p.seed;
    int cap = hist_capacity(p);
    if (cap != s->hist_cap) { /* new window: start the history afresh */
        int32_t *h = NULL;
        if (cap && !(h = malloc((size_t)cap * sizeof *h))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        free(s->hist);
        s->hist = h;
        s->hist_cap = cap;
        g4_sampler_reset(s);
    }
    s->p = *p;
    if (reseed) seed_rng(s, p->seed);
    return G4_OK;
}

const g4_sampler_params *g4_sampler_get_params(const g4_sampler *s) { return &s->p; }

void g4_sampler_accept(g4_sampler *s, int token) {
    if (token < 0 || token >= s->n_vocab || !s->hist_cap) return;
    if (s->hist_len == s->hist_cap) s->counts[s->hist[s->hist_pos]]--;
    else s->hist_len++;
    s->hist[s->hist_pos] = token;
    s->counts[token]++;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
}

/* sort candidate ids by decreasing value (ties: lower id first); qsort has no context argument in C11,
 * so the values are passed through a thread-local */
static _Thread_local const float *g_sort_val;
static int cmp_idx(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    float vx = g_sort_val[x], vy = g_sort_val[y];
    if (vx != vy) return vx > vy ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* min-heap of candidate ids by (v[id], then higher id = smaller): the root is the entry to beat */
#define HEAP_LESS(a, b) (v[a] < v[b] || (v[a] == v[b] && (a) > (b)))
static void heap_sift_down(int *heap, int k, const float *v, int j) {
    for (;;) {
        int l = 2 * j + 1, r = l + 1, m = j;
        if (l < k && HEAP_LESS(heap[l], heap[m])) m = l;
        if (r < k && HEAP_LESS(heap[r], heap[m])) m = r;
        if (m == j) return;
        int t = heap[j]; heap[j] = heap[m]; heap[m] = t;
        j = m;
    }
}

static void heapify(int *heap, int k, const float *v) {
    for (int i = k / 2 - 1; i >= 0; i--) heap_sift_down(heap, k, v, i);
}

/* keep the k largest of ids[0..n) by v[id], sorted, ties by id: a bounded selection then a sort */
static int select_top(int *ids, int n, const float *v, int k) {
    if (k <= 0 || k > n) k = n;
    if (k < n) { /* a min-heap of the best k in the first k slots */
        heapify(ids, k, v);
        for (int i = k; i < n; i++) {
            const int c = ids[i];
            if (!HEAP_LESS(ids[0], c)) continue;
            ids[0] = c;
            heap_sift_down(ids, k, v, 0);
        }
    }
    g_sort_val = v;
    qsort(ids, (size_t)k, sizeof *ids, cmp_idx);
    return k;
}

static int pick(g4_sampler *s, int n);
static int penalties_on(const g4_sampler *s);

/* Without penalties, the candidates of a greedy or top-k chain straight from the logits in one pass (no
 * copy of the vocabulary): the k largest sanitized values (nan and -inf left out, +inf as FLT_MAX) by
 * (value descending, id ascending), into s->ids (unsorted) with their values in s->val: the same set
 * select_top keeps from the full list, so pick() gives the same token. */
static int collect_top(g4_sampler *s, const float *logits, int k) {
    float *v = s->val;
    int *h = s->ids, n = 0;
    for (int i = 0; i < s->n_vocab; i++) {
        float x = logits[i];
        if (!(x > -INFINITY)) continue;
        if (x == INFINITY) x = FLT_MAX;
        if (n < k) {
            v[i] = x;
            h[n++] = i;
            if (n == k) heapify(h, k, v);
        } else if (v[h[0]] < x || (v[h[0]] == x && h[0] > i)) { /* i beats the root */
            v[i] = x;
            h[0] = i;
            heap_sift_down(h, k, v, 0);
        }
    }
    return n;
}

int g4_sampler_sample(g4_sampler *s, const float *logits) {
    const g4_sampler_params *p = &s->p;
    const int V = s->n_vocab;
    float *v = s->val;
    if (!penalties_on(s) && (p->temperature <= 0.0f || (p->top_k > 0 && p->top_k < V / 4)))
        return pick(s, collect_top(s, logits, p->temperature <= 0.0f ? 1 : p->top_k));
    memcpy(v, logits, (size_t)V * sizeof *v);
    for (int i = 0; i < V; i++) /* nan: never drawn; +inf: the largest finite value (inf - inf is nan) */
        if (isnan(v[i])) v[i] = -INFINITY;
        else if (v[i] == INFINITY) v[i] = FLT_MAX;
    /* penalties over the recent history */
    if (penalties_on(s)) {
        for (int i = 0; i < s->hist_len; i++) {
            int t = s->hist[i];
            if (s->counts[t] <= 0) continue;
            /* apply once per distinct token: mark by negating the count, undo below */
            int c = s->counts[t];
            if (p->repeat_penalty != 1.0f)
                v[t] = v[t] > 0 ? v[t] / p->repeat_penalty : v[t] * p->repeat_penalty;
            v[t] -= (float)c * p->frequency_penalty + p->presence_penalty;
            if (v[t] > FLT_MAX) v[t] = FLT_MAX; /* a penalty < 1 (or a negative one) may overflow */
            s->counts[t] = -c;
        }
        for (int i = 0; i < s->hist_len; i++)
            if (s->counts[s->hist[i]] < 0) s->counts[s->hist[i]] = -s->counts[s->hist[i]];
    }
    int n = 0;
    for (int i = 0; i < V; i++)
        if (v[i] > -INFINITY) s->ids[n++] = i;
    return pick(s, n);
}

static int penalties_on(const g4_sampler *s) {
    const g4_sampler_params *p = &s->p;
    return s->hist_len && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
}

int g4_sampler_top_k(const g4_sampler *s) {
    if (penalties_on(s)) return 0; /* a penalized token may leave the top k and let another in */
    if (s->p.temperature <= 0.0f) return 1;
    return s->p.top_k > 0 ? s->p.top_k : 0;
}

int g4_sampler_sample_top(g4_sampler *s, const int32_t *ids, const float *logits, int n) {
    for (int i = 0; i < n; i++) { /* as in g4_sampler_sample: no inf - inf (nan) in the softmax */
        float x = logits[i];
        s->ids[i] = ids[i];
        s->val[ids[i]] = isnan(x) || x < -FLT_MAX ? -FLT_MAX : x > FLT_MAX ? FLT_MAX : x;
    }
    return pick(s, n);
}

/* the rest of the chain on the n candidates in s->ids (values in s->val by id) */
static int pick(g4_sampler *s, int n) {
    const g4_sampler_params *p = &s->p;
    float *v = s->val;
    if (n == 0) { /* every logit -inf or nan: nothing is better than anything; take the first */
        s->ids[0] = 0;
        v[0] = 0;
        n = 1;
    }
    if (p->temperature <= 0.0f) { /* greedy */
        int best = s->ids[0];
        for (int i = 1; i < n; i++)
            if (v[s->ids[i]] > v[best]) best = s->ids[i];
        s->ids[0] = best;
        s->n_cand = 1;
        s->prob[0] = 1.0f;
        return best;
    }
    n = select_top(s->ids, n, v, p->top_k);
    /* softmax over the candidates (sorted, so the first is the maximum) */
    const float mx = v[s->ids[0]];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float e = expf(v[s->ids[i]] - mx);
        v[s->ids[i]] = e;
        sum += e;
    }
    for (int i = 0; i < n; i++) v[s->ids[i]] = (float)(v[s->ids[i]] / sum);
    /* top-p: the smallest prefix whose mass reaches p (at least one token) */
    if (p->top_p < 1.0f) {
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += v[s->ids[i]];
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    /* min-p: drop tokens below min_p times the most likely one */
    if (p->min_p > 0.0f) {
        const float thr = p->min_p * v[s->ids[0]];
        int keep = 1;
        while (keep < n && v[s->ids[keep]] >= thr) keep++;
        n = keep;
    }
    /* temperature on the survivors: (p_i / p_max)^(1/T), renormalised (equal to softmax(logit/T)); relative
     * to the most likely one, so that a tiny T cannot turn every weight into 0 */
    sum = 0;
    const double pmax = v[s->ids[0]];
    for (int i = 0; i < n; i++) {
        double q = p->temperature == 1.0f ? v[s->ids[i]] : pow(v[s->ids[i]] / pmax, 1.0 / p->temperature);
        v[s->ids[i]] = (float)q;
        sum += q;
    }
    for (int i = 0; i < n; i++) v[s->ids[i]] = (float)(v[s->ids[i]] / sum);
    if (p->temperature != 1.0f) { /* order may only change between exact ties: keep it sorted anyway */
        g_sort_val = v;
        qsort(s->ids, (size_t)n, sizeof *s->ids, cmp_idx);
    }
    s->n_cand = n;
    for (int i = 0; i < n; i++) s->prob[i] = v[s->ids[i]];
    /* draw */
    double r = (double)(next64(s->rng) >> 11) * (1.0 / 9007199254740992.0), cum = 0;
    for (int i = 0; i < n; i++) {
        cum += v[s->ids[i]];
        if (r < cum) return s->ids[i];
    }
    return s->ids[n - 1];
}

int g4_sampler_last_candidates(const g4_sampler *s, const int **ids, const float **probs) {
    *ids = s->ids;
    *probs = s->prob;
    return s->n_cand;
}
