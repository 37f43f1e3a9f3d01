/* The Gemma 4 forward pass over a batch of tokens, and the inference context that owns the KV cache
 * and scratch buffers. One straight-line function per stage; the order of operations follows
 * ../shared/docs/gemma4-architecture.md §2 exactly. */
#include "kernels/ops.h"
#include "kv/kv.h"
#include "model/model.h"
#include "quant/repack.h"
#include "quant/types.h"
#include "util/pool.h"
#include "util/util.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ATT_SPLIT 256   /* keys per split of the attention softmax (fixed: see attend) */
#define G4_BATCH 32     /* tokens per forward batch (prefill is cut into batches of this size) */
#define G4_ROLLBACK 256 /* extra cells in sliding-layer rings: how far g4_ctx_truncate can go back */

struct g4_ctx {
    g4_model *m;
    g4_ctx_params p;
    g4_kv kv;
    int n_past;
    int n_batch;
    int32_t *tokens; /* the n_past tokens in the cache */
    g4_abort_fn abort_fn;
    void *abort_user;
    /* scratch, sized for n_batch tokens */
    float *x;      /* [T][D] residual stream */
    float *xn;     /* [T][D] normed input of a block */
    float *t1, *t2;/* [T][D] block outputs */
    float *q;      /* [T][H*hd_max] */
    float *k, *v;  /* [T][nkv_max*hd_max] */
    float *att;    /* [T][H*hd_max] attention output */
    float *ffa, *ffb; /* [T][ff_max] */
    float *scores; /* [n_threads][group_max * ATT_SPLIT] scores of one split */
    float *part;   /* [n_threads][splits_max][group_max][2 + hd_max] partial softmax sums of splits */
    int8_t *q8;    /* packed KV layers: [T][H*hd_max] int8 rotated queries */
    g4_tq_gqa_query *gq; /* [T][H] */
    int splits_max, group_max, hd_max;
    g4_pool *pool;
    float *ple;    /* [T][L*P] per-layer inputs */
    float *plet;   /* [T][L*P] */
    float *moe_in, *moe_acc, *moe_g, *moe_y; /* MoE per-token buffers */
    float *router; /* [n_expert] */
    void *qact;    /* encoded activation rows for the fast path */
    size_t qact_row; /* bytes per encoded row slot */
};

g4_ctx_params g4_ctx_default_params(void) {
    g4_ctx_params p = {.n_ctx = 4096, .kv_type = G4_KV_F16, .exact = 0, .n_threads = 0,
                       .kv_type_k = G4_KV_DEFAULT, .kv_type_v = G4_KV_DEFAULT, .kv_layers = G4_KV_LAYERS_FULL,
                       .n_kv_override = 0};
    return p;
}

uint64_t g4_model_kv_bytes(const g4_model *m, int n_ctx, g4_kv_type kv) {
    g4_ctx_params p = g4_ctx_default_params();
    if (kv == G4_KV_F32 || kv == G4_KV_F16) p.kv_type = kv;
    else { /* a packed type: every layer */
        p.kv_type_k = p.kv_type_v = kv;
        p.kv_layers = G4_KV_LAYERS_ALL;
    }
    return g4_kv_size(m, n_ctx, G4_BATCH + G4_ROLLBACK, &p);
}

uint64_t g4_model_kv_bytes_params(const g4_model *m, int n_ctx, const g4_ctx_params *p) {
    return g4_kv_size(m, n_ctx, G4_BATCH + G4_ROLLBACK, p);
}
uint64_t g4_ctx_kv_bytes(const g4_ctx *c) { return c->kv.bytes; }
int g4_ctx_n_past(const g4_ctx *c) { return c->n_past; }
g4_model *g4_ctx_model(const g4_ctx *c) { return c->m; }
void g4_ctx_set_abort(g4_ctx *c, g4_abort_fn fn, void *user) {
    c->abort_fn = fn;
    c->abort_user = user;
}
int g4_ctx_n_ctx(const g4_ctx *c) { return c->p.n_ctx; }
void g4_ctx_reset(g4_ctx *c) { c->n_past = 0; }
const int32_t *g4_ctx_tokens(const g4_ctx *c) { return c->tokens; }

/* Going back to n tokens works while every sliding ring still holds the window before position n. */
g4_status g4_ctx_truncate(g4_ctx *c, int n, g4_error *err) {
    if (n < 0 || n > c->n_past) return g4_fail(err, G4_ERR_ARG, "cannot truncate %d tokens to %d", c->n_past, n);
    const g4_model *m = c->m;
    int need = n - m->sliding_window + 1; /* oldest position a query at n can see on a sliding layer */
    if (need < 0) need = 0;
    for (int l = 0; l < m->n_layer; l++) {
        const g4_kv_layer *k = &c->kv.layers[l];
        if (k->n_cells && m->layers[l].is_swa && n > 0 && need < c->n_past - k->n_cells)
            return g4_fail(err, G4_ERR_CONTEXT, "the cache no longer holds the window before token %d", n);
    }
    c->n_past = n;
    return G4_OK;
}

void g4_ctx_free(g4_ctx *c) {
    if (!c) return;
    g4_kv_free(&c->kv);
    g4_pool_free(c->pool);
    free(c->tokens);
    float *bufs[] = {c->x, c->xn, c->t1, c->t2, c->q, c->k, c->v, c->att, c->ffa, c->ffb, c->scores, c->part,
                     c->ple, c->plet, c->moe_in, c->moe_acc, c->moe_g, c->moe_y, c->router};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(c->qact);
    free(c->q8);
    free(c->gq);
    free(c);
}

static float *falloc(size_t n, int *ok) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = 0;
    return p;
}

g4_status g4_ctx_new(g4_ctx **out, g4_model *m, const g4_ctx_params *p, g4_error *err) {
    *out = NULL;
    if (p->n_ctx < 1) return g4_fail(err, G4_ERR_ARG, "context length must be at least 1 (got %d)", p->n_ctx);
    g4_status s = g4_kv_check(m, p, err);
    if (s) return s;
    g4_ctx *c = calloc(1, sizeof *c);
    if (!c) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = *p;
    c->n_batch = G4_BATCH;
    c->tokens = malloc((size_t)p->n_ctx * sizeof *c->tokens);
    if (!c->tokens) {
        free(c);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    s = g4_kv_init(&c->kv, m, p->n_ctx, c->n_batch + G4_ROLLBACK, c->n_batch, p, err);
    if (s) {
        free(c->tokens);
        free(c);
        return s;
    }
    size_t T = (size_t)c->n_batch, D = (size_t)m->n_embd, H = (size_t)m->n_head;
    size_t hd = (size_t)(m->head_dim_full > m->head_dim_swa ? m->head_dim_full : m->head_dim_swa);
    size_t nkv = 0, ff = 0;
    for (int l = 0; l < m->n_layer; l++) {
        if ((size_t)m->layers[l].n_head_kv > nkv) nkv = (size_t)m->layers[l].n_head_kv;
        if ((size_t)m->layers[l].n_ff > ff) ff = (size_t)m->layers[l].n_ff;
    }
    if ((size_t)m->n_ff_exp * 2 > ff) ff = (size_t)m->n_ff_exp * 2;
    size_t LP = (size_t)m->n_layer * (size_t)m->n_embd_per_layer;
    int ok = 1;
    c->x = falloc(T * D, &ok);
    c->xn = falloc(T * D, &ok);
    c->t1 = falloc(T * D, &ok);
    c->t2 = falloc(T * D, &ok);
    c->q = falloc(T * H * hd, &ok);
    c->k = falloc(T * nkv * hd, &ok);
    c->v = falloc(T * nkv * hd, &ok);
    c->att = falloc(T * H * hd, &ok);
    c->ffa = falloc(T * ff, &ok);
    c->ffb = falloc(T * ff, &ok);
    if (g4_pool_new(&c->pool, p->n_threads, err)) {
        g4_ctx_free(c);
        return err ? err->code : G4_ERR_NOMEM;
    }
    c->hd_max = (int)hd;
    c->group_max = 1;
    for (int l = 0; l < m->n_layer; l++)
        if (m->n_head / m->layers[l].n_head_kv > c->group_max) c->group_max = m->n_head / m->layers[l].n_head_kv;
    c->splits_max = (p->n_ctx + ATT_SPLIT - 1) / ATT_SPLIT;
    const size_t nth_all = (size_t)g4_pool_size(c->pool);
    c->scores = falloc(nth_all * (size_t)c->group_max * ATT_SPLIT, &ok);
    c->part = falloc(nth_all * (size_t)c->splits_max * (size_t)c->group_max * (2 + hd), &ok);
    c->ple = falloc(T * LP, &ok);
    c->plet = falloc(T * LP, &ok);
    c->moe_in = falloc(D, &ok);
    c->moe_acc = falloc(D, &ok);
    c->moe_g = falloc(ff, &ok);
    c->moe_y = falloc(D, &ok);
    c->router = falloc((size_t)m->n_expert, &ok);
    /* the longest input row of any matmul, encoded in the widest activation type (f32) */
    size_t maxin = D;
    if (H * hd > maxin) maxin = H * hd;
    if (ff > maxin) maxin = ff;
    if ((size_t)m->n_embd_per_layer > maxin) maxin = (size_t)m->n_embd_per_layer;
    c->qact_row = maxin * sizeof(float) + 64;
    c->qact = malloc(T * c->qact_row);
    c->q8 = malloc(T * H * hd);
    c->gq = malloc(T * H * sizeof *c->gq);
    if (!ok || !c->qact || !c->q8 || !c->gq) {
        g4_ctx_free(c);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating inference buffers");
    }
    if (!p->exact) g4_model_repack(m, c->pool, NULL); /* once per model; failure leaves the plain rows */
    *out = c;
    return G4_OK;
}

/* ---- matrix multiplication: Y[t][r] = W[r] · X[t] for t < T, rows split across the threads ---- */

typedef struct mm_task {
    const g4_weight *w;
    const g4_type_traits *tr;
    const float *X;      /* exact path: float activations */
    const uint8_t *qa;   /* fast path: encoded activations, ab bytes per row */
    int packed;          /* qa encoded for w->rp: groups of 8 rows at a time */
    size_t ab, ldx, ldy;
    int T;
    float *Y;
    int64_t chunk;       /* rows handed out at a time */
    atomic_llong next;   /* next row to hand out */
} mm_task;

/* Threads take chunks of rows from a shared counter, so one that is descheduled delays nobody; every
 * row is computed whole by one thread, so the result does not depend on who computed it. */
static void mm_rows(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    mm_task *k = arg;
    const g4_weight *w = k->w;
    const int64_t n = w->ne0;
    float out[G4_BATCH];
    if (k->packed) { /* chunks of 8-row groups; each group meets the batch G4_RP_MAXT tokens at a time */
        const int64_t groups = w->ne1 / G4_RP_ROWS;
        const size_t gb = g4_repack_group_bytes(w->rp, n);
        for (;;) {
            const int64_t g0 = atomic_fetch_add_explicit(&k->next, k->chunk, memory_order_relaxed);
            if (g0 >= groups) break;
            const int64_t g1 = g0 + k->chunk < groups ? g0 + k->chunk : groups;
            for (int64_t g = g0; g < g1; g++)
                for (int t0 = 0; t0 < k->T; t0 += G4_RP_MAXT)
                    w->rp->gemm(w->packed + (size_t)g * gb, k->qa + (size_t)t0 * k->ab, k->ab,
                                k->T - t0 < G4_RP_MAXT ? k->T - t0 : G4_RP_MAXT,
                                k->Y + (size_t)t0 * k->ldy + (size_t)g * G4_RP_ROWS, k->ldy, n);
        }
        return;
    }
    for (;;) {
        const int64_t r0 = atomic_fetch_add_explicit(&k->next, k->chunk, memory_order_relaxed);
        if (r0 >= w->ne1) break;
        const int64_t r1 = r0 + k->chunk < w->ne1 ? r0 + k->chunk : w->ne1;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = w->data + (size_t)r * w->row_bytes;
            if (k->qa && k->T > 1) { /* one pass over the weight row for the whole batch */
                g4_dot_q_multi(k->tr, row, k->qa, k->ab, k->T, out, n);
                for (int t = 0; t < k->T; t++) k->Y[(size_t)t * k->ldy + (size_t)r] = out[t];
            } else if (k->qa) {
                k->Y[r] = k->tr->dot_q(row, k->qa, n);
            } else {
                for (int t = 0; t < k->T; t++)
                    k->Y[(size_t)t * k->ldy + (size_t)r] = k->tr->dot_f32(row, k->X + (size_t)t * k->ldx, n);
            }
        }
    }
}

static void matmul(g4_ctx *c, const g4_weight *w, const float *X, int T, size_t ldx, float *Y, size_t ldy) {
    const g4_type_traits *tr = g4_type_traits_get(w->type);
    const int64_t n = w->ne0;
    const g4_type_traits *at = NULL;
    mm_task k = {.w = w, .tr = tr, .X = X, .ldx = ldx, .ldy = ldy, .T = T, .Y = Y};
    const int nth = g4_pool_size(c->pool);
    /* about 8 chunks per thread, at least 4 rows each */
    k.chunk = w->ne1 / (8 * nth) > 4 ? w->ne1 / (8 * nth) : 4;
    atomic_init(&k.next, 0);
    if (!c->p.exact && w->packed && g4_repack_act_bytes(w->rp, n) <= c->qact_row) {
        k.ab = g4_repack_act_bytes(w->rp, n);
        for (int t = 0; t < T; t++) w->rp->act(X + (size_t)t * ldx, c->qact + (size_t)t * k.ab, n);
        k.qa = c->qact;
        k.packed = 1;
        const int64_t groups = w->ne1 / G4_RP_ROWS;
        k.chunk = groups / (8 * nth) > 1 ? groups / (8 * nth) : 1;
    } else if (!c->p.exact && tr->dot_q && (at = g4_type_traits_get(tr->vec_dot_type)) && at->from_float &&
        g4_type_row_bytes(tr->vec_dot_type, n) <= c->qact_row) {
        k.ab = g4_type_row_bytes(tr->vec_dot_type, n);
        uint8_t *qa = c->qact;
        for (int t = 0; t < T; t++) at->from_float(X + (size_t)t * ldx, qa + (size_t)t * k.ab, n);
        k.qa = qa;
    }
    /* small products are not worth waking the workers */
    if ((uint64_t)w->ne1 * (uint64_t)n * (uint64_t)T < 32768) {
        k.chunk = w->ne1;
        mm_rows(&k, 0, 1);
    }
    else g4_pool_run(c->pool, mm_rows, &k);
}

/* ---- stages ---- */

static void embed(g4_ctx *c, const int32_t *tok, int T) {
    const g4_model *m = c->m;
    const g4_type_traits *tr = g4_type_traits_get(m->tok_embd.type);
    const int D = m->n_embd;
    const float scale = sqrtf((float)D);
    for (int t = 0; t < T; t++) {
        float *x = c->x + (size_t)t * D;
        tr->to_float(m->tok_embd.data + (size_t)tok[t] * m->tok_embd.row_bytes, x, D);
        for (int i = 0; i < D; i++) x[i] *= scale;
    }
}

/* per-layer inputs: ple[t][l*P..] = (rms(proj(x0)/sqrt(D))[l] * norm + tok_row[l] * sqrt(P)) / sqrt(2) */
static void per_layer_inputs(g4_ctx *c, const int32_t *tok, int T) {
    const g4_model *m = c->m;
    const int D = m->n_embd, L = m->n_layer, P = m->n_embd_per_layer;
    const size_t LP = (size_t)L * (size_t)P;
    matmul(c, &m->ple_model_proj, c->x, T, (size_t)D, c->ple, LP);
    const g4_type_traits *tr = g4_type_traits_get(m->ple_tok.type);
    const float inv_sqrt_d = 1.0f / sqrtf((float)D), sqrt_p = sqrtf((float)P), inv_sqrt2 = 1.0f / sqrtf(2.0f);
    for (int t = 0; t < T; t++) {
        float *pl = c->ple + (size_t)t * LP, *tk = c->plet + (size_t)t * LP;
        /* gathered one row per token straight from the mapping */
        tr->to_float(m->ple_tok.data + (size_t)tok[t] * m->ple_tok.row_bytes, tk, (int64_t)LP);
        for (size_t i = 0; i < LP; i++) pl[i] *= inv_sqrt_d;
        for (int l = 0; l < L; l++) {
            float *pr = pl + (size_t)l * P;
            g4_rmsnorm(pr, pr, m->ple_proj_norm, P, m->eps);
            for (int i = 0; i < P; i++) pr[i] = (pr[i] + tk[(size_t)l * P + i] * sqrt_p) * inv_sqrt2;
        }
    }
}

/* ---- attention ----
 * softmax(q·K) V per query head; scale 1.0, causal, window on sliding layers. The keys of a query are cut
 * into splits of ATT_SPLIT positions (from the first key the query sees); each split yields, per query
 * head of a KV group, the partial softmax {max m, sum l of exp(s - m), o = sum exp(s - m) V}; the splits
 * are merged in order. The K and V rows of a split are read once for all the query heads of their group.
 * Work items are (token, KV head) pairs, each taking all its splits in turn, or - when there are fewer
 * pairs than threads (decode) - single splits, merged after. The arithmetic of a query is the same either
 * way, so results depend neither on the thread count nor on the batch size. */

typedef struct att_task {
    g4_ctx *c;
    const g4_layer *ly;
    const g4_kv_layer *cache;
    int T;
    int by_split;      /* items are (pair, split) instead of pairs */
    atomic_int next;
} att_task;

/* the key range [j0, pos] of token t */
static void key_range(const g4_ctx *c, const g4_layer *ly, int t, int *j0, int *n) {
    const int pos = c->n_past + t, w = c->m->sliding_window;
    *j0 = ly->is_swa && pos - w + 1 > 0 ? pos - w + 1 : 0;
    *n = pos - *j0 + 1;
}

static void attend_split(const g4_ctx *c, const g4_layer *ly, const g4_kv_layer *cache, int t, int g, int a, int b,
                         float *sc, float *part) {
    const int H = c->m->n_head, hd = ly->head_dim, group = H / ly->n_head_kv;
    const float *q = c->q + (size_t)t * (size_t)H * (size_t)hd + (size_t)g * group * (size_t)hd;
    const int n = b - a;
    for (int j = 0; j < n; j++)
        for (int h = 0; h < group; h++) sc[h * ATT_SPLIT + j] = g4_kv_dot_k(cache, a + j, g, q + (size_t)h * hd);
    for (int h = 0; h < group; h++) {
        float *s = sc + h * ATT_SPLIT, *ph = part + (size_t)h * (2 + (size_t)hd);
        float mx = -INFINITY, l = 0.0f;
        for (int j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
        for (int j = 0; j < n; j++) l += (s[j] = expf(s[j] - mx));
        ph[0] = mx;
        ph[1] = l;
        memset(ph + 2, 0, (size_t)hd * sizeof *ph);
    }
    for (int j = 0; j < n; j++)
        for (int h = 0; h < group; h++)
            g4_kv_axpy_v(cache, a + j, g, sc[h * ATT_SPLIT + j], part + (size_t)h * (2 + (size_t)hd) + 2);
}

/* The same on a packed (q8 / tq) cache, in the rotated domain: the queries were rotated and quantized
 * (c->q, c->gq), positions before the batch are scored on their records (integer dot products of all the
 * group's heads per record), the batch's own positions on its exact rotated K/V rows (cache->bk / bv);
 * the values are accumulated rotated, and attend_merge rotates the outputs back. */
static void attend_split_packed(const g4_ctx *c, const g4_layer *ly, const g4_kv_layer *cache, int t, int g, int a,
                                int b, float *sc, float *part) {
    const int H = c->m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv, group = H / nkv, p0 = c->n_past;
    const float *qr = c->q + (size_t)t * (size_t)H * (size_t)hd + (size_t)g * group * (size_t)hd;
    const g4_tq_gqa_query *gq = c->gq + (size_t)t * H + (size_t)g * group;
    const g4_tq_kernels *kk = cache->pk->kern, *kv = cache->pv->kern;
    const g4_type_traits *f32 = g4_type_traits_get(G4_TYPE_F32);
    const int n = b - a, nrec = p0 > a ? (p0 < b ? p0 : b) - a : 0;
    const size_t ks = (size_t)nkv * cache->k_bytes, vs = (size_t)nkv * cache->v_bytes;
    for (int j = 0; j < nrec;) { /* a ring buffer's range wraps at most once */
        const int cell = (a + j) % cache->n_cells, run = nrec - j < cache->n_cells - cell ? nrec - j : cache->n_cells - cell;
        kk->gqa_scores(cache->pk, gq, group, g4_kv_rec_k(cache, cell, g), ks, run, sc + j, ATT_SPLIT);
        j += run;
    }
    for (int j = nrec; j < n; j++) {
        const float *kr = cache->bk + ((size_t)(a + j - p0) * nkv + (size_t)g) * (size_t)hd;
        for (int h = 0; h < group; h++) sc[h * ATT_SPLIT + j] = f32->dot_f32(kr, qr + (size_t)h * hd, hd);
    }
    for (int h = 0; h < group; h++) {
        float *s = sc + h * ATT_SPLIT, *ph = part + (size_t)h * (2 + (size_t)hd);
        float mx = -INFINITY;
        for (int j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
        ph[0] = mx;
        ph[1] = kk->exp_sum(s, n, mx);
        memset(ph + 2, 0, (size_t)hd * sizeof *ph);
    }
    for (int j = 0; j < nrec;) {
        const int cell = (a + j) % cache->n_cells, run = nrec - j < cache->n_cells - cell ? nrec - j : cache->n_cells - cell;
        kv->gqa_values(cache->pv, g4_kv_rec_v(cache, cell, g), vs, run, sc + j, ATT_SPLIT, group, part + 2, 2 + hd);
        j += run;
    }
    for (int j = nrec; j < n; j++) {
        const float *vr = cache->bv + ((size_t)(a + j - p0) * nkv + (size_t)g) * (size_t)hd;
        for (int h = 0; h < group; h++) g4_axpy_f32_fast(sc[h * ATT_SPLIT + j], vr, part + (size_t)h * (2 + (size_t)hd) + 2, hd);
    }
}

/* merge ns splits (consecutive in part, stride group * (2 + hd)) into the outputs of the group's heads
 * (rotated back with the V rotation of a packed cache) */
static void attend_merge(const g4_ctx *c, const g4_layer *ly, const g4_kv_layer *cache, int t, int g, const float *part,
                         int ns) {
    const int H = c->m->n_head, hd = ly->head_dim, group = H / ly->n_head_kv;
    const size_t ps = (size_t)group * (2 + (size_t)hd);
    for (int h = 0; h < group; h++) {
        float *o = c->att + (size_t)t * (size_t)H * (size_t)hd + (size_t)(g * group + h) * (size_t)hd;
        float M = -INFINITY, l = 0.0f;
        for (int s = 0; s < ns; s++) M = part[s * ps + (size_t)h * (2 + hd)] > M ? part[s * ps + (size_t)h * (2 + hd)] : M;
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int s = 0; s < ns; s++) {
            const float *ph = part + s * ps + (size_t)h * (2 + hd);
            const float f = expf(ph[0] - M);
            l += ph[1] * f;
            for (int i = 0; i < hd; i++) o[i] += f * ph[2 + i];
        }
        const float inv = 1.0f / l;
        for (int i = 0; i < hd; i++) o[i] *= inv;
        if (cache->packed) cache->pv->kern->unrotate(cache->pv, o, o);
    }
}

static void attend(void *arg, int ith, int nth) {
    (void)nth;
    att_task *k = arg;
    g4_ctx *c = k->c;
    const g4_layer *ly = k->ly;
    const int nkv = ly->n_head_kv, group = c->m->n_head / nkv, hd = ly->head_dim;
    const size_t ps = (size_t)group * (2 + (size_t)hd);
    float *sc = c->scores + (size_t)ith * (size_t)c->group_max * ATT_SPLIT;
    const int pairs = k->T * nkv;
    if (k->by_split) { /* item = pair * splits_max + split; partials in the shared buffer, merged after */
        for (;;) {
            const int i = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed);
            if (i >= pairs * c->splits_max) break;
            const int pr = i / c->splits_max, s = i % c->splits_max, t = pr / nkv, g = pr % nkv;
            int j0, n;
            key_range(c, ly, t, &j0, &n);
            if (s * ATT_SPLIT >= n) continue;
            const int a = j0 + s * ATT_SPLIT, b = a + ATT_SPLIT < j0 + n ? a + ATT_SPLIT : j0 + n;
            (k->cache->packed ? attend_split_packed : attend_split)(c, ly, k->cache, t, g, a, b, sc,
                                                                    c->part + (size_t)i * ps);
        }
        return;
    }
    float *part = c->part + (size_t)ith * (size_t)c->splits_max * ps;
    for (;;) {
        const int pr = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed);
        if (pr >= pairs) break;
        const int t = pr / nkv, g = pr % nkv;
        int j0, n;
        key_range(c, ly, t, &j0, &n);
        const int ns = (n + ATT_SPLIT - 1) / ATT_SPLIT;
        for (int s = 0; s < ns; s++) {
            const int a = j0 + s * ATT_SPLIT, b = a + ATT_SPLIT < j0 + n ? a + ATT_SPLIT : j0 + n;
            (k->cache->packed ? attend_split_packed : attend_split)(c, ly, k->cache, t, g, a, b, sc,
                                                                    part + (size_t)s * ps);
        }
        attend_merge(c, ly, k->cache, t, g, part, ns);
    }
}

static void attention(g4_ctx *c, int l, int T) {
    const g4_model *m = c->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd, H = m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv;
    const size_t qw = (size_t)H * hd, kw = (size_t)nkv * hd;
    const int p0 = c->n_past;

    for (int t = 0; t < T; t++) g4_rmsnorm(c->xn + (size_t)t * D, c->x + (size_t)t * D, ly->attn_norm, D, m->eps);
    matmul(c, &ly->wq, c->xn, T, (size_t)D, c->q, qw);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            float *qh = c->q + (size_t)t * qw + (size_t)h * hd;
            g4_rmsnorm(qh, qh, ly->q_norm, hd, m->eps);
            g4_rope_neox(qh, hd, ly->n_rot, p0 + t, ly->rope_base, ly->rope_ff);
        }
    g4_kv_layer *cache = &c->kv.layers[ly->kv_src];
    if (cache->packed) /* rotate the queries once, and quantize them for the integer scores */
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                float *qh = c->q + (size_t)t * qw + (size_t)h * hd;
                cache->pk->kern->rotate(cache->pk, qh, qh);
                g4_tq_gqa_query_init(cache->pk, qh, c->q8 + (size_t)t * qw + (size_t)h * hd, &c->gq[(size_t)t * H + h]);
            }
    if (ly->kv_src == l) {
        matmul(c, &ly->wk, c->xn, T, (size_t)D, c->k, kw);
        if (ly->has_v) matmul(c, &ly->wv, c->xn, T, (size_t)D, c->v, kw);
        else memcpy(c->v, c->k, (size_t)T * kw * sizeof(float)); /* K=V: V is the raw K projection */
        for (int t = 0; t < T; t++) {
            for (int g = 0; g < nkv; g++) {
                float *kh = c->k + (size_t)t * kw + (size_t)g * hd, *vh = c->v + (size_t)t * kw + (size_t)g * hd;
                g4_rmsnorm(kh, kh, ly->k_norm, hd, m->eps);
                g4_rope_neox(kh, hd, ly->n_rot, p0 + t, ly->rope_base, ly->rope_ff);
                g4_rmsnorm(vh, vh, NULL, hd, m->eps);
            }
            if (cache->packed) g4_kv_store_packed(cache, t, p0 + t, c->k + (size_t)t * kw, c->v + (size_t)t * kw);
            else g4_kv_store(cache, p0 + t, c->k + (size_t)t * kw, c->v + (size_t)t * kw);
        }
    }
    att_task k = {.c = c, .ly = ly, .cache = cache, .T = T};
    const int pairs = T * nkv;
    /* fewer (token, KV head) pairs than threads: share out the splits (the buffer holds them when
     * pairs < threads) */
    k.by_split = pairs < g4_pool_size(c->pool);
    atomic_init(&k.next, 0);
    g4_pool_run(c->pool, attend, &k);
    if (k.by_split) {
        const size_t ps = (size_t)(H / nkv) * (2 + (size_t)hd);
        for (int pr = 0; pr < pairs; pr++) {
            int j0, n;
            key_range(c, ly, pr / nkv, &j0, &n);
            attend_merge(c, ly, cache, pr / nkv, pr % nkv, c->part + (size_t)pr * c->splits_max * ps,
                         (n + ATT_SPLIT - 1) / ATT_SPLIT);
        }
    }
    matmul(c, &ly->wo, c->att, T, qw, c->t1, (size_t)D);
    for (int t = 0; t < T; t++) {
        float *x = c->x + (size_t)t * D, *a = c->t1 + (size_t)t * D;
        g4_rmsnorm(a, a, ly->post_attn_norm, D, m->eps);
        for (int i = 0; i < D; i++) x[i] += a[i];
    }
}

/* a = gelu(a) * b: the scalar reference in exact mode, else the CPU's kernels */
static void gelu_mul(const g4_ctx *c, float *a, const float *b, size_t n) {
    (c->p.exact ? g4_gelu_mul : g4_gelu_mul_fast)(a, b, n);
}

/* out[t] = down(gelu(gate(in[t])) * up(in[t])) */
static void mlp(g4_ctx *c, const g4_weight *gate, const g4_weight *up, const g4_weight *down, const float *in, int T,
                float *out) {
    const int D = c->m->n_embd, F = (int)gate->ne1;
    matmul(c, gate, in, T, (size_t)D, c->ffa, (size_t)F);
    matmul(c, up, in, T, (size_t)D, c->ffb, (size_t)F);
    gelu_mul(c, c->ffa, c->ffb, (size_t)T * F);
    matmul(c, down, c->ffa, T, (size_t)F, out, (size_t)D);
}

/* MoE branch for one token: sum over the top-k experts of w_k * expert_k(rms(x) * pre_ffw_norm_2) */
static void moe_token(g4_ctx *c, const g4_layer *ly, const float *x, float *out) {
    const g4_model *m = c->m;
    const int D = m->n_embd, E = m->n_expert, K = m->n_expert_used, F = m->n_ff_exp;
    /* router on the un-weighted norm of the residual, scaled by 1/sqrt(D) and the router scale */
    g4_rmsnorm(c->moe_in, x, NULL, D, m->eps);
    const float inv_sqrt_d = 1.0f / sqrtf((float)D);
    for (int i = 0; i < D; i++) c->moe_in[i] *= inv_sqrt_d * ly->router_scale[i];
    matmul(c, &ly->router, c->moe_in, 1, (size_t)D, c->router, (size_t)E);
    g4_softmax(c->router, E);
    int sel[64];
    float w[64], wsum = 0;
    int kk = K < 64 ? K : 64;
    for (int k = 0; k < kk; k++) { /* top-k, lowest index first among equals */
        int best = -1;
        for (int e = 0; e < E; e++) {
            int used = 0;
            for (int j = 0; j < k; j++) used |= sel[j] == e;
            if (!used && (best < 0 || c->router[e] > c->router[best])) best = e;
        }
        sel[k] = best;
        w[k] = c->router[best];
        wsum += w[k];
    }
    if (wsum < 6.103515625e-5f) wsum = 6.103515625e-5f;
    g4_rmsnorm(c->moe_in, x, ly->pre_ffw_norm_2, D, m->eps);
    memset(out, 0, (size_t)D * sizeof *out);
    for (int k = 0; k < kk; k++) {
        const int e = sel[k];
        if (ly->gate_up_exps.t) {
            g4_weight gu = g4_weight_expert(&ly->gate_up_exps, e);
            matmul(c, &gu, c->moe_in, 1, (size_t)D, c->moe_g, (size_t)2 * F);
            gelu_mul(c, c->moe_g, c->moe_g + F, (size_t)F);
        } else {
            g4_weight g = g4_weight_expert(&ly->gate_exps, e), u = g4_weight_expert(&ly->up_exps, e);
            matmul(c, &g, c->moe_in, 1, (size_t)D, c->moe_g, (size_t)F);
            matmul(c, &u, c->moe_in, 1, (size_t)D, c->moe_g + F, (size_t)F);
            gelu_mul(c, c->moe_g, c->moe_g + F, (size_t)F);
        }
        g4_weight dn = g4_weight_expert(&ly->down_exps, e);
        matmul(c, &dn, c->moe_g, 1, (size_t)F, c->moe_y, (size_t)D);
        const float a = w[k] / wsum * (ly->expert_scale ? ly->expert_scale[e] : 1.0f);
        for (int i = 0; i < D; i++) out[i] += a * c->moe_y[i];
    }
}

static void feed_forward(g4_ctx *c, int l, int T) {
    const g4_model *m = c->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd;
    for (int t = 0; t < T; t++) g4_rmsnorm(c->xn + (size_t)t * D, c->x + (size_t)t * D, ly->ffn_norm, D, m->eps);
    mlp(c, &ly->gate, &ly->up, &ly->down, c->xn, T, c->t1);
    for (int t = 0; t < T; t++) {
        float *x = c->x + (size_t)t * D, *d = c->t1 + (size_t)t * D;
        if (ly->is_moe) {
            float *e = c->t2 + (size_t)t * D;
            g4_rmsnorm(d, d, ly->post_ffw_norm_1, D, m->eps);
            moe_token(c, ly, x, e);
            g4_rmsnorm(e, e, ly->post_ffw_norm_2, D, m->eps);
            for (int i = 0; i < D; i++) d[i] += e[i];
        }
        g4_rmsnorm(d, d, ly->post_ffw_norm, D, m->eps);
        for (int i = 0; i < D; i++) x[i] += d[i];
    }
}

/* x += rms(proj(gelu(inp_gate(x)) * ple[l])) * post_norm */
static void per_layer_injection(g4_ctx *c, int l, int T) {
    const g4_model *m = c->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd, P = m->n_embd_per_layer;
    const size_t LP = (size_t)m->n_layer * (size_t)P;
    matmul(c, &ly->ple_gate, c->x, T, (size_t)D, c->ffa, (size_t)P);
    for (int t = 0; t < T; t++) {
        float *g = c->ffa + (size_t)t * P;
        const float *pl = c->ple + (size_t)t * LP + (size_t)l * P;
        gelu_mul(c, g, pl, (size_t)P);
    }
    matmul(c, &ly->ple_proj, c->ffa, T, (size_t)P, c->t1, (size_t)D);
    for (int t = 0; t < T; t++) {
        float *x = c->x + (size_t)t * D, *y = c->t1 + (size_t)t * D;
        g4_rmsnorm(y, y, ly->ple_post_norm, D, m->eps);
        for (int i = 0; i < D; i++) x[i] += y[i];
    }
}

static void output_logits(g4_ctx *c, int t, float *logits) {
    const g4_model *m = c->m;
    const int D = m->n_embd;
    g4_rmsnorm(c->xn, c->x + (size_t)t * D, m->output_norm, D, m->eps);
    matmul(c, &m->output, c->xn, 1, (size_t)D, logits, (size_t)m->n_vocab);
    if (m->softcap > 0)
        (c->p.exact ? g4_softcap : g4_softcap_fast)(logits, (size_t)m->n_vocab, m->softcap);
}

/* returns 0 when the abort callback stopped it (n_past unchanged) */
static int forward_batch(g4_ctx *c, const int32_t *tok, int T, float *logits, int all) {
    const g4_model *m = c->m;
    embed(c, tok, T);
    if (m->n_embd_per_layer > 0) per_layer_inputs(c, tok, T);
    for (int l = 0; l < m->n_layer; l++) {
        if (c->abort_fn && c->abort_fn(c->abort_user)) return 0;
        attention(c, l, T);
        feed_forward(c, l, T);
        if (m->n_embd_per_layer > 0) per_layer_injection(c, l, T);
        const float s = m->layers[l].out_scale;
        if (s != 1.0f)
            for (size_t i = 0; i < (size_t)T * m->n_embd; i++) c->x[i] *= s;
    }
    c->n_past += T;
    if (!logits) return 1;
    if (all)
        for (int t = 0; t < T; t++) output_logits(c, t, logits + (size_t)t * m->n_vocab);
    else
        output_logits(c, T - 1, logits);
    return 1;
}

/* standard normal numbers from xorshift64* (Box-Muller) */
static float gauss(uint64_t *st) {
    uint64_t a, b;
    *st ^= *st >> 12, *st ^= *st << 25, *st ^= *st >> 27, a = *st * 0x2545F4914F6CDD1Dull;
    *st ^= *st >> 12, *st ^= *st << 25, *st ^= *st >> 27, b = *st * 0x2545F4914F6CDD1Dull;
    const double u = ((double)(a >> 11) + 0.5) / 9007199254740992.0, v = (double)(b >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

g4_status g4_ctx_fill_random(g4_ctx *c, int n, uint64_t seed, g4_error *err) {
    const g4_model *m = c->m;
    if (n < 0 || n > c->p.n_ctx - c->n_past)
        return g4_fail(err, G4_ERR_CONTEXT, "%d positions do not fit: the context holds %d and %d are used", n,
                       c->p.n_ctx, c->n_past);
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (int l = 0; l < m->n_layer; l++) {
        g4_kv_layer *cache = &c->kv.layers[l];
        if (!cache->n_cells) continue;
        const size_t kw = (size_t)cache->n_head_kv * (size_t)cache->head_dim;
        /* a ring keeps only its last n_cells positions */
        const int from = n > cache->n_cells ? n - cache->n_cells : 0;
        for (int i = from; i < n; i++) {
            for (size_t j = 0; j < kw; j++) c->k[j] = gauss(&st), c->v[j] = gauss(&st);
            if (cache->packed) g4_kv_store_packed(cache, 0, c->n_past + i, c->k, c->v);
            else g4_kv_store(cache, c->n_past + i, c->k, c->v);
        }
    }
    memset(c->tokens + c->n_past, 0, (size_t)n * sizeof *c->tokens);
    c->n_past += n;
    return G4_OK;
}

g4_status g4_eval(g4_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits, g4_error *err) {
    const g4_model *m = c->m;
    if (n < 1) return g4_fail(err, G4_ERR_ARG, "no tokens to evaluate");
    if (n > c->p.n_ctx - c->n_past)
        return g4_fail(err, G4_ERR_CONTEXT, "%d tokens do not fit: the context holds %d and %d are used", n, c->p.n_ctx,
                       c->n_past);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab)
            return g4_fail(err, G4_ERR_ARG, "token id %d at position %d is outside the vocabulary (0..%d)", (int)tokens[i], i,
                           m->n_vocab - 1);
    for (int i = 0; i < n; i += c->n_batch) {
        int T = n - i < c->n_batch ? n - i : c->n_batch;
        int last = i + T == n;
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)i * m->n_vocab;
        else if (logits && last) out = logits;
        memcpy(c->tokens + c->n_past, tokens + i, (size_t)T * sizeof *tokens);
        if (!forward_batch(c, tokens + i, T, out, all_logits))
            return g4_fail(err, G4_ERR_INTERRUPTED, "interrupted after %d of %d tokens", i, n);
    }
    return G4_OK;
}
