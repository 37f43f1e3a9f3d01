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
#define G4_ROPE_KINDS 4 /* RoPE tables per context (Gemma 4 has two kinds of layer) */

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
    /* RoPE (cos, sin) tables of the batch's positions, one per kind of layer (n_rot, base, factors) */
    int n_rope;
    struct { int n_rot; float base; const float *ff; float *cs; /* [T][n_rot] */ } rope[G4_ROPE_KINDS];
    int *rope_of;  /* [n_layer] table index, or -1: computed per head */
    /* g4_eval_top: the logit row, and per thread heaps of top_k entries (allocated on first use) */
    float *logit_buf, *top_v, *top_pairs;
    int32_t *top_id;
    struct top_heap *top_heaps;
    int top_k;
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
    for (int r = 0; r < c->n_rope; r++) free(c->rope[r].cs);
    free(c->rope_of);
    free(c->logit_buf);
    free(c->top_v);
    free(c->top_pairs);
    free(c->top_id);
    free(c->top_heaps);
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
    c->rope_of = malloc((size_t)m->n_layer * sizeof *c->rope_of);
    for (int l = 0; c->rope_of && l < m->n_layer; l++) {
        const g4_layer *ly = &m->layers[l];
        int r = 0;
        while (r < c->n_rope && !(c->rope[r].n_rot == ly->n_rot && c->rope[r].base == ly->rope_base &&
                                  c->rope[r].ff == ly->rope_ff))
            r++;
        if (r == c->n_rope && r < G4_ROPE_KINDS) {
            c->rope[r].n_rot = ly->n_rot;
            c->rope[r].base = ly->rope_base;
            c->rope[r].ff = ly->rope_ff;
            c->rope[r].cs = falloc(T * (size_t)ly->n_rot, &ok);
            c->n_rope++;
        }
        c->rope_of[l] = r < c->n_rope ? r : -1;
    }
    if (!ok || !c->qact || !c->q8 || !c->gq || !c->rope_of) {
        g4_ctx_free(c);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating inference buffers");
    }
    if (!p->exact) g4_model_repack(m, c->pool, NULL); /* once per model; failure leaves the plain rows */
    *out = c;
    return G4_OK;
}

/* ---- matrix multiplication: Y[t][r] = W[r] · X[t] for t < T, rows split across the threads ----
 * A "job" is one weight matrix and its output; one dispatch runs one or several jobs that share their
 * input (Q/K/V; gate/up), so the input is normed and encoded once and the threads pass one barrier
 * instead of three. Work is handed out in chunks of rows (or 8-row groups of a repacked matrix) from an
 * atomic counter, so a thread that is descheduled delays nobody; every row is computed whole by one
 * thread, so results depend neither on the thread count nor on which jobs were fused. */

typedef struct mm_job {
    const g4_weight *w;
    float *Y;
    size_t ldy;
    const g4_type_traits *tr;
    g4_from_float_fn act; /* encoder of the activation rows, or NULL: float rows (dot_f32) */
    int packed;           /* act encodes for w->rp: groups of 8 rows at a time */
    size_t ab;            /* bytes per encoded activation row */
    const uint8_t *qa;    /* the encoded rows */
    int64_t units;        /* 8-row groups (packed) or rows */
    int64_t step;         /* chunks are multiples of this many units (8 rows) */
    int64_t off;          /* where its units start in the task's count */
} mm_job;

typedef struct mm_task {
    mm_job *jobs;
    int glu;             /* jobs 0 (gate) and 1 (up) in step, each chunk then a = gelu(a) * b on its rows */
    int exact;
    const float *X;      /* float input rows (after the norm, if any) */
    size_t ldx;
    int T;
    int64_t total;       /* units over all jobs (glu: of job 0) */
    int nth;
    float cap;           /* > 0: soft-cap the outputs of job 0, cap * tanh(y / cap), chunk by chunk */
    struct top_heap *top;/* [nth]: each thread keeps the largest outputs of token 0 it computed */
    atomic_llong next;
} mm_task;

/* The k largest values with their ids, in the order (value descending, id ascending), NaN and -inf left
 * out: a min-heap whose root is the entry to beat. */
typedef struct top_heap {
    int k, n;
    int32_t *id;
    float *v;
} top_heap;

#define TOP_LESS(va, ia, vb, ib) ((va) < (vb) || ((va) == (vb) && (ia) > (ib)))

static void top_sift_down(top_heap *h, int j) {
    for (;;) {
        int l = 2 * j + 1, r = l + 1, m = j;
        if (l < h->n && TOP_LESS(h->v[l], h->id[l], h->v[m], h->id[m])) m = l;
        if (r < h->n && TOP_LESS(h->v[r], h->id[r], h->v[m], h->id[m])) m = r;
        if (m == j) return;
        float tv = h->v[j];
        int32_t ti = h->id[j];
        h->v[j] = h->v[m], h->id[j] = h->id[m];
        h->v[m] = tv, h->id[m] = ti;
        j = m;
    }
}

static void top_push(top_heap *h, float v, int32_t id) {
    if (!(v > -INFINITY)) return; /* NaN or -inf: never a candidate (as in the sampler) */
    if (h->n < h->k) {
        int j = h->n++;
        while (j > 0 && TOP_LESS(v, id, h->v[(j - 1) / 2], h->id[(j - 1) / 2])) {
            h->v[j] = h->v[(j - 1) / 2], h->id[j] = h->id[(j - 1) / 2];
            j = (j - 1) / 2;
        }
        h->v[j] = v, h->id[j] = id;
        return;
    }
    if (!TOP_LESS(h->v[0], h->id[0], v, id)) return;
    h->v[0] = v, h->id[0] = id;
    top_sift_down(h, 0);
}

/* units [u0, u1) of a job for all T tokens */
static void mm_units(const mm_job *j, const float *X, size_t ldx, int T, int64_t u0, int64_t u1) {
    const g4_weight *w = j->w;
    const int64_t n = w->ne0;
    if (j->packed) { /* each group meets the batch G4_RP_MAXT tokens at a time */
        const size_t gb = g4_repack_group_bytes(w->rp, n);
        for (int64_t g = u0; g < u1; g++)
            for (int t0 = 0; t0 < T; t0 += G4_RP_MAXT)
                w->rp->gemm(w->packed + (size_t)g * gb, j->qa + (size_t)t0 * j->ab, j->ab,
                            T - t0 < G4_RP_MAXT ? T - t0 : G4_RP_MAXT, j->Y + (size_t)t0 * j->ldy + (size_t)g * G4_RP_ROWS,
                            j->ldy, n);
        return;
    }
    float out[G4_BATCH];
    for (int64_t r = u0; r < u1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        if (j->act && T > 1) { /* one pass over the weight row for the whole batch */
            g4_dot_q_multi(j->tr, row, j->qa, j->ab, T, out, n);
            for (int t = 0; t < T; t++) j->Y[(size_t)t * j->ldy + (size_t)r] = out[t];
        } else if (j->act) {
            j->Y[r] = j->tr->dot_q(row, j->qa, n);
        } else {
            for (int t = 0; t < T; t++) j->Y[(size_t)t * j->ldy + (size_t)r] = j->tr->dot_f32(row, X + (size_t)t * ldx, n);
        }
    }
}

/* Take the next chunk: a share of what is left (guided scheduling: large chunks first, single groups at
 * the end, so the threads finish together), never crossing into the next job. 0 when all is taken. */
static int mm_grab(mm_task *k, int *jo, int64_t *u0, int64_t *u1) {
    long long cur = atomic_load_explicit(&k->next, memory_order_relaxed);
    for (;;) {
        if (cur >= k->total) return 0;
        int j = 0;
        while (cur >= k->jobs[j].off + k->jobs[j].units) j++;
        const mm_job *jb = &k->jobs[j];
        int64_t sz = (k->total - cur) / (2 * (int64_t)k->nth);
        sz = (sz + jb->step - 1) / jb->step * jb->step;
        if (sz < jb->step) sz = jb->step;
        const long long end = cur + sz < jb->off + jb->units ? cur + sz : jb->off + jb->units;
        if (atomic_compare_exchange_weak_explicit(&k->next, &cur, end, memory_order_relaxed, memory_order_relaxed)) {
            *jo = j;
            *u0 = cur - jb->off;
            *u1 = end - jb->off;
            return 1;
        }
    }
}

static void mm_run(void *arg, int ith, int nth) {
    (void)nth;
    mm_task *k = arg;
    int j;
    int64_t u0, u1;
    while (mm_grab(k, &j, &u0, &u1)) {
        const mm_job *jb = &k->jobs[j];
        mm_units(jb, k->X, k->ldx, k->T, u0, u1);
        /* rows [r0, r1) with r0 a multiple of 8: the vector lanes of the GELU and the soft-cap meet the same
         * elements as in one call on the whole row (of one token), so results do not depend on the chunking */
        const int64_t r0 = jb->packed ? u0 * G4_RP_ROWS : u0, r1 = jb->packed ? u1 * G4_RP_ROWS : u1;
        if (k->glu) {
            mm_units(&k->jobs[1], k->X, k->ldx, k->T, u0, u1);
            for (int t = 0; t < k->T; t++)
                (k->exact ? g4_gelu_mul : g4_gelu_mul_fast)(jb->Y + (size_t)t * jb->ldy + r0,
                                                            k->jobs[1].Y + (size_t)t * k->jobs[1].ldy + r0,
                                                            (size_t)(r1 - r0));
            continue;
        }
        if (j) continue;
        if (k->cap > 0)
            for (int t = 0; t < k->T; t++)
                (k->exact ? g4_softcap : g4_softcap_fast)(jb->Y + (size_t)t * jb->ldy + r0, (size_t)(r1 - r0), k->cap);
        if (k->top)
            for (int64_t r = r0; r < r1; r++) top_push(&k->top[ith], jb->Y[r], (int32_t)r);
    }
}

/* how a job runs: the encoded-activation path when there is one (fast mode), in units of what size */
static void mm_plan(const g4_ctx *c, mm_job *j) {
    const g4_weight *w = j->w;
    const int64_t n = w->ne0;
    const g4_type_traits *at = NULL;
    j->tr = g4_type_traits_get(w->type);
    j->act = NULL;
    j->packed = 0;
    j->ab = 0;
    if (!c->p.exact && w->packed && g4_repack_act_bytes(w->rp, n) <= c->qact_row) {
        j->packed = 1;
        j->act = w->rp->act;
        j->ab = g4_repack_act_bytes(w->rp, n);
    } else if (!c->p.exact && j->tr->dot_q && (at = g4_type_traits_get(j->tr->vec_dot_type)) && at->from_float &&
               g4_type_row_bytes(j->tr->vec_dot_type, n) <= c->qact_row) {
        j->act = at->from_float;
        j->ab = g4_type_row_bytes(j->tr->vec_dot_type, n);
    }
    j->units = j->packed ? w->ne1 / G4_RP_ROWS : w->ne1;
    j->step = j->packed ? 1 : 8;
}

typedef struct prep_task {
    const g4_ctx *c;
    const float *X;
    size_t ldx;
    float *Xn;          /* normed rows (D apart), or NULL: no norm */
    const float *norm;  /* RMS norm weights, or NULL for an unweighted norm */
    int64_t n;
    const mm_job *job;  /* encoder and destination */
    int T;
    atomic_int next;
} prep_task;

/* norm + encode of one row, in one pass while the row is in L1 */
static void prep_row(const prep_task *k, int t) {
    const float *x = k->X + (size_t)t * k->ldx;
    if (k->Xn) {
        float *xn = k->Xn + (size_t)t * (size_t)k->n;
        g4_rmsnorm(xn, x, k->norm, (int)k->n, k->c->m->eps);
        x = xn;
    }
    if (k->job->act) k->job->act(x, (uint8_t *)k->job->qa + (size_t)t * k->job->ab, k->n);
}

static void prep_run(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    prep_task *k = arg;
    for (int t; (t = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed)) < k->T;) prep_row(k, t);
}

/* Y_j = W_j · norm(X) for the jobs (same input size). With xn, X is first RMS-normed into xn (with the
 * weights norm, or none when norm is NULL and the norm is wanted: norm_on) and the products read xn. glu:
 * jobs 0 and 1 are gate and up of a gated MLP, and jobs[0].Y becomes gelu(gate) * up. Jobs whose
 * activation encodings differ are run one dispatch each. */
static void matmul_jobs_post(g4_ctx *c, const float *X, size_t ldx, int T, float *xn, const float *norm, mm_job *jobs,
                             int nj, int glu, float cap, top_heap *top);

static void matmul_jobs(g4_ctx *c, const float *X, size_t ldx, int T, float *xn, const float *norm, mm_job *jobs,
                        int nj, int glu) {
    matmul_jobs_post(c, X, ldx, T, xn, norm, jobs, nj, glu, 0.0f, NULL);
}

/* the same with the post-operations of the LM head on job 0: soft-cap (cap > 0) and, for T = 1, the
 * largest values kept in top[ith] by each thread */
static void matmul_jobs_post(g4_ctx *c, const float *X, size_t ldx, int T, float *xn, const float *norm, mm_job *jobs,
                             int nj, int glu, float cap, top_heap *top) {
    const int nth = g4_pool_size(c->pool);
    const int64_t n = jobs[0].w->ne0;
    for (int j = 0; j < nj; j++) mm_plan(c, &jobs[j]);
    int same = 1;
    for (int j = 1; j < nj; j++)
        same &= jobs[j].act == jobs[0].act && jobs[j].ab == jobs[0].ab && jobs[j].w->ne0 == n;
    if (glu)
        same &= jobs[0].packed == jobs[1].packed && jobs[0].units == jobs[1].units;
    if (!same) { /* one at a time; the first one norms the input (and carries job 0's post-operations) */
        matmul_jobs_post(c, X, ldx, T, xn, norm, &jobs[0], 1, 0, cap, top);
        for (int j = 1; j < nj; j++) matmul_jobs(c, xn ? xn : X, xn ? (size_t)n : ldx, T, NULL, NULL, &jobs[j], 1, 0);
        if (glu)
            for (int t = 0; t < T; t++)
                (c->p.exact ? g4_gelu_mul : g4_gelu_mul_fast)(jobs[0].Y + (size_t)t * jobs[0].ldy,
                                                              jobs[1].Y + (size_t)t * jobs[1].ldy, (size_t)jobs[0].w->ne1);
        return;
    }
    for (int j = 0; j < nj; j++) jobs[j].qa = c->qact;
    /* norm and encoding: a pass per row, shared out over the threads for a batch */
    if (xn || jobs[0].act) {
        prep_task p = {.c = c, .X = X, .ldx = ldx, .Xn = xn, .norm = norm, .n = n, .job = &jobs[0], .T = T};
        atomic_init(&p.next, 0);
        if (T >= 4 && nth > 1) g4_pool_run(c->pool, prep_run, &p);
        else
            for (int t = 0; t < T; t++) prep_row(&p, t);
    }
    mm_task k = {.jobs = jobs, .glu = glu, .exact = c->p.exact, .X = xn ? xn : X,
                 .ldx = xn ? (size_t)n : ldx, .T = T, .nth = nth, .cap = cap, .top = top};
    for (int j = 0; j < nj; j++) {
        jobs[j].off = glu ? 0 : k.total;
        if (!glu || j == 0) k.total += jobs[j].units;
    }
    atomic_init(&k.next, 0);
    uint64_t work = 0;
    for (int j = 0; j < nj; j++) work += (uint64_t)jobs[j].w->ne1 * (uint64_t)n * (uint64_t)T;
    if (work < 32768) { /* small products are not worth waking the workers */
        k.nth = 1;
        mm_run(&k, 0, 1);
    }
    else g4_pool_run(c->pool, mm_run, &k);
}

static void matmul(g4_ctx *c, const g4_weight *w, const float *X, int T, size_t ldx, float *Y, size_t ldy) {
    mm_job j = {.w = w, .Y = Y, .ldy = ldy};
    matmul_jobs(c, X, ldx, T, NULL, NULL, &j, 1, 0);
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

/* ---- per-head work between the Q/K/V products and attention: q and k norms, RoPE, the cache write ----
 * Items are (token, query head) and (token, KV head) pairs, each done in one pass while the head is in
 * L1: a query head is normed, rotated by RoPE (and for a packed cache rotated by the Hadamard transform and
 * quantized); a KV head's K is normed and rotated, its V normed, and both are written to the cache. */

typedef struct heads_task {
    g4_ctx *c;
    const g4_layer *ly;
    g4_kv_layer *cache;
    int T, n_q, n_items;
    const float *cs; /* the RoPE table of the layer, or NULL */
    atomic_int next;
} heads_task;

static void rope_head(const heads_task *k, float *x, int t) {
    const g4_layer *ly = k->ly;
    if (k->cs) g4_rope_neox_cs(x, ly->n_rot, k->cs + (size_t)t * (size_t)ly->n_rot);
    else g4_rope_neox(x, ly->head_dim, ly->n_rot, k->c->n_past + t, ly->rope_base, ly->rope_ff);
}

static void head_item(const heads_task *k, int i) {
    g4_ctx *c = k->c;
    const g4_layer *ly = k->ly;
    const int H = c->m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv;
    const size_t qw = (size_t)H * hd, kw = (size_t)nkv * hd;
    const float eps = c->m->eps;
    if (i < k->n_q) {
        const int t = i / H, h = i % H;
        float *qh = c->q + (size_t)t * qw + (size_t)h * hd;
        g4_rmsnorm(qh, qh, ly->q_norm, hd, eps);
        rope_head(k, qh, t);
        if (k->cache->packed) { /* rotate the query once, and quantize it for the integer scores */
            k->cache->pk->kern->rotate(k->cache->pk, qh, qh);
            g4_tq_gqa_query_init(k->cache->pk, qh, c->q8 + (size_t)t * qw + (size_t)h * hd, &c->gq[(size_t)t * H + h]);
        }
        return;
    }
    i -= k->n_q;
    const int t = i / nkv, g = i % nkv;
    float *kh = c->k + (size_t)t * kw + (size_t)g * hd, *vh = c->v + (size_t)t * kw + (size_t)g * hd;
    g4_rmsnorm(kh, kh, ly->k_norm, hd, eps);
    rope_head(k, kh, t);
    g4_rmsnorm(vh, vh, NULL, hd, eps);
    if (k->cache->packed) g4_kv_store_packed_head(k->cache, t, c->n_past + t, g, kh, vh);
    else g4_kv_store_head(k->cache, c->n_past + t, g, kh, vh);
}

static void heads_run(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    heads_task *k = arg;
    for (int i; (i = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed)) < k->n_items;) head_item(k, i);
}

static void attention(g4_ctx *c, int l, int T) {
    const g4_model *m = c->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd, H = m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv;
    const size_t qw = (size_t)H * hd, kw = (size_t)nkv * hd;
    g4_kv_layer *cache = &c->kv.layers[ly->kv_src];

    /* Q, K and V in one dispatch on the normed input (K and V only where this layer writes the cache) */
    mm_job jobs[3] = {{.w = &ly->wq, .Y = c->q, .ldy = qw}};
    int nj = 1;
    if (ly->kv_src == l) {
        jobs[nj++] = (mm_job){.w = &ly->wk, .Y = c->k, .ldy = kw};
        if (ly->has_v) jobs[nj++] = (mm_job){.w = &ly->wv, .Y = c->v, .ldy = kw};
    }
    matmul_jobs(c, c->x, (size_t)D, T, c->xn, ly->attn_norm, jobs, nj, 0);
    if (ly->kv_src == l && !ly->has_v) memcpy(c->v, c->k, (size_t)T * kw * sizeof(float)); /* K=V: the raw K */

    heads_task hk = {.c = c, .ly = ly, .cache = cache, .T = T, .n_q = T * H,
                     .cs = c->rope_of[l] >= 0 ? c->rope[c->rope_of[l]].cs : NULL};
    hk.n_items = hk.n_q + (ly->kv_src == l ? T * nkv : 0);
    atomic_init(&hk.next, 0);
    if (T >= 2 && g4_pool_size(c->pool) > 1) g4_pool_run(c->pool, heads_run, &hk);
    else
        for (int i = 0; i < hk.n_items; i++) head_item(&hk, i);

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

/* out[t] = down(gelu(gate(n[t])) * up(n[t])) with n = rms(x) * norm: the norm, gate, up and GELU in
 * one dispatch */
static void mlp(g4_ctx *c, const g4_layer *ly, const float *x, int T, float *out) {
    const int D = c->m->n_embd, F = (int)ly->gate.ne1;
    mm_job jobs[2] = {{.w = &ly->gate, .Y = c->ffa, .ldy = (size_t)F}, {.w = &ly->up, .Y = c->ffb, .ldy = (size_t)F}};
    matmul_jobs(c, x, (size_t)D, T, c->xn, ly->ffn_norm, jobs, 2, 1);
    matmul(c, &ly->down, c->ffa, T, (size_t)F, out, (size_t)D);
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
    mlp(c, ly, c->x, T, c->t1);
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

/* the LM head on token t: soft-capped logits, the cap applied chunk by chunk by the threads */
static void output_logits(g4_ctx *c, int t, float *logits) {
    const g4_model *m = c->m;
    const int D = m->n_embd;
    g4_rmsnorm(c->xn, c->x + (size_t)t * D, m->output_norm, D, m->eps);
    mm_job j = {.w = &m->output, .Y = logits, .ldy = (size_t)m->n_vocab};
    matmul_jobs_post(c, c->xn, (size_t)D, 1, NULL, NULL, &j, 1, 0, m->softcap, NULL);
}

static int cmp_top(const void *a, const void *b) {
    const float *x = a, *y = b; /* (value, id as float bits) pairs */
    if (x[0] != y[0]) return x[0] > y[0] ? -1 : 1;
    int32_t i, j;
    memcpy(&i, &x[1], sizeof i);
    memcpy(&j, &y[1], sizeof j);
    return (i > j) - (i < j);
}

/* the k largest logits of token t: each thread keeps the largest of the rows it computed, then the
 * heaps are merged; the full logit row is written to a scratch buffer on the way and never read */
static int output_top(g4_ctx *c, int t, int k, int32_t *ids, float *vals) {
    const g4_model *m = c->m;
    const int D = m->n_embd, nth = g4_pool_size(c->pool);
    if (k > m->n_vocab) k = m->n_vocab;
    g4_rmsnorm(c->xn, c->x + (size_t)t * D, m->output_norm, D, m->eps);
    top_heap *heaps = c->top_heaps;
    const int nh = nth;
    for (int i = 0; i < nh; i++)
        heaps[i] = (top_heap){.k = k, .id = c->top_id + (size_t)i * k, .v = c->top_v + (size_t)i * k};
    mm_job j = {.w = &m->output, .Y = c->logit_buf, .ldy = (size_t)m->n_vocab};
    matmul_jobs_post(c, c->xn, (size_t)D, 1, NULL, NULL, &j, 1, 0, m->softcap, heaps);
    /* merge: (value, id) pairs of every heap, sorted */
    float *pairs = c->top_pairs;
    int n = 0;
    for (int i = 0; i < nh; i++)
        for (int e = 0; e < heaps[i].n; e++) {
            pairs[2 * n] = heaps[i].v[e];
            memcpy(&pairs[2 * n + 1], &heaps[i].id[e], sizeof(int32_t));
            n++;
        }
    qsort(pairs, (size_t)n, 2 * sizeof(float), cmp_top);
    if (n > k) n = k;
    for (int i = 0; i < n; i++) {
        vals[i] = pairs[2 * i];
        memcpy(&ids[i], &pairs[2 * i + 1], sizeof(int32_t));
    }
    return n;
}

/* returns 0 when the abort callback stopped it (n_past unchanged) */
static int forward_batch(g4_ctx *c, const int32_t *tok, int T, float *logits, int all) {
    const g4_model *m = c->m;
    embed(c, tok, T);
    for (int r = 0; r < c->n_rope; r++)
        for (int t = 0; t < T; t++)
            g4_rope_cs(c->rope[r].cs + (size_t)t * (size_t)c->rope[r].n_rot, c->rope[r].n_rot, c->n_past + t,
                       c->rope[r].base, c->rope[r].ff);
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

g4_status g4_eval_top(g4_ctx *c, const int32_t *tokens, int n, int k, int32_t *ids, float *logits, int *n_top,
                      g4_error *err) {
    const g4_model *m = c->m;
    *n_top = 0;
    if (k < 1) return g4_fail(err, G4_ERR_ARG, "top-k needs k >= 1 (got %d)", k);
    if (k > m->n_vocab) k = m->n_vocab;
    if (k > c->top_k) { /* scratch for k entries per thread */
        const size_t nh = (size_t)g4_pool_size(c->pool);
        float *lb = c->logit_buf ? c->logit_buf : malloc((size_t)m->n_vocab * sizeof(float));
        top_heap *hp = c->top_heaps ? c->top_heaps : malloc(nh * sizeof *hp);
        float *tv = malloc(nh * k * sizeof(float)), *tp = malloc(nh * k * 2 * sizeof(float));
        int32_t *ti = malloc(nh * k * sizeof(int32_t));
        c->logit_buf = lb;
        c->top_heaps = hp;
        if (!lb || !hp || !tv || !tp || !ti) {
            free(tv), free(tp), free(ti);
            return g4_fail(err, G4_ERR_NOMEM, "out of memory for the top-%d logits", k);
        }
        free(c->top_v), free(c->top_pairs), free(c->top_id);
        c->top_v = tv, c->top_pairs = tp, c->top_id = ti;
        c->top_k = k;
    }
    g4_status s = g4_eval(c, tokens, n, NULL, 0, err);
    if (s) return s;
    const int last = (n - 1) % c->n_batch; /* the last token's row in the last batch */
    *n_top = output_top(c, last, k, ids, logits);
    return G4_OK;
}
