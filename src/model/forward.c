/* The Gemma 4 forward pass over a batch of entries that may belong to different sequences: every weight
 * matrix is read once per pass for all of them, attention reads each entry's own sequence's cache at its own
 * position. One straight-line function per stage; the order of operations follows
 * ../shared/docs/gemma4-architecture.md §2 exactly. The objects (engine, sequence, context) are in engine.c. */
#include "kernels/ops.h"
#include "kv/kv.h"
#include "model/engine.h"
#include "model/model.h"
#include "quant/repack.h"
#include "quant/types.h"
#include "util/pool.h"
#include "util/util.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ATT_SPLIT G4_ATT_SPLIT

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
typedef struct top_heap top_heap; /* engine.h */

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
    if (j->packed) { /* each group meets the batch G4_RP_MAXT tokens at a time (pairs: G4_RP_MAXT16) */
        const size_t gb = g4_repack_group_bytes(w->rp, n);
        int64_t g = u0;
        if (w->rp->gemm16 && T >= G4_RP_MIN16)
            for (; g + 1 < u1; g += 2)
                for (int t0 = 0; t0 < T; t0 += G4_RP_MAXT16)
                    w->rp->gemm16(w->packed + (size_t)g * gb, gb, j->qa + (size_t)t0 * j->ab, j->ab,
                                  T - t0 < G4_RP_MAXT16 ? T - t0 : G4_RP_MAXT16,
                                  j->Y + (size_t)t0 * j->ldy + (size_t)g * G4_RP_ROWS, j->ldy, n);
        for (; g < u1; g++)
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
static void mm_plan(const g4_engine *e, mm_job *j) {
    const g4_weight *w = j->w;
    const int64_t n = w->ne0;
    const g4_type_traits *at = NULL;
    j->tr = g4_type_traits_get(w->type);
    j->act = NULL;
    j->packed = 0;
    j->ab = 0;
    if (!e->exact && w->packed && g4_repack_act_bytes(w->rp, n) <= e->qact_row) {
        j->packed = 1;
        j->act = w->rp->act;
        j->ab = g4_repack_act_bytes(w->rp, n);
    } else if (!e->exact && j->tr->dot_q && (at = g4_type_traits_get(j->tr->vec_dot_type)) && at->from_float &&
               g4_type_row_bytes(j->tr->vec_dot_type, n) <= e->qact_row) {
        j->act = at->from_float;
        j->ab = g4_type_row_bytes(j->tr->vec_dot_type, n);
    }
    j->units = j->packed ? w->ne1 / G4_RP_ROWS : w->ne1;
    j->step = j->packed ? (w->rp->gemm16 ? 2 : 1) : 8;
}

typedef struct prep_task {
    const g4_engine *e;
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
        g4_rmsnorm(xn, x, k->norm, (int)k->n, k->e->m->eps);
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
static void matmul_jobs_post(g4_engine *e, const float *X, size_t ldx, int T, float *xn, const float *norm, mm_job *jobs,
                             int nj, int glu, float cap, top_heap *top);

static void matmul_jobs(g4_engine *e, const float *X, size_t ldx, int T, float *xn, const float *norm, mm_job *jobs,
                        int nj, int glu) {
    matmul_jobs_post(e, X, ldx, T, xn, norm, jobs, nj, glu, 0.0f, NULL);
}

/* the same with the post-operations of the LM head on job 0: soft-cap (cap > 0) and, for T = 1, the
 * largest values kept in top[ith] by each thread */
static void matmul_jobs_post(g4_engine *e, const float *X, size_t ldx, int T, float *xn, const float *norm, mm_job *jobs,
                             int nj, int glu, float cap, top_heap *top) {
    const int nth = g4_pool_size(e->pool);
    const int64_t n = jobs[0].w->ne0;
    for (int j = 0; j < nj; j++) mm_plan(e, &jobs[j]);
    int same = 1;
    for (int j = 1; j < nj; j++)
        same &= jobs[j].act == jobs[0].act && jobs[j].ab == jobs[0].ab && jobs[j].w->ne0 == n;
    if (glu)
        same &= jobs[0].packed == jobs[1].packed && jobs[0].units == jobs[1].units;
    if (!same) { /* one at a time; the first one norms the input (and carries job 0's post-operations) */
        matmul_jobs_post(e, X, ldx, T, xn, norm, &jobs[0], 1, 0, cap, top);
        for (int j = 1; j < nj; j++) matmul_jobs(e, xn ? xn : X, xn ? (size_t)n : ldx, T, NULL, NULL, &jobs[j], 1, 0);
        if (glu)
            for (int t = 0; t < T; t++)
                (e->exact ? g4_gelu_mul : g4_gelu_mul_fast)(jobs[0].Y + (size_t)t * jobs[0].ldy,
                                                              jobs[1].Y + (size_t)t * jobs[1].ldy, (size_t)jobs[0].w->ne1);
        return;
    }
    for (int j = 0; j < nj; j++) jobs[j].qa = e->qact;
    /* norm and encoding: a pass per row, shared out over the threads for a batch */
    if (xn || jobs[0].act) {
        prep_task p = {.e = e, .X = X, .ldx = ldx, .Xn = xn, .norm = norm, .n = n, .job = &jobs[0], .T = T};
        atomic_init(&p.next, 0);
        if (T >= 4 && nth > 1) g4_pool_run(e->pool, prep_run, &p);
        else
            for (int t = 0; t < T; t++) prep_row(&p, t);
    }
    mm_task k = {.jobs = jobs, .glu = glu, .exact = e->exact, .X = xn ? xn : X,
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
    else g4_pool_run(e->pool, mm_run, &k);
}

static void matmul(g4_engine *e, const g4_weight *w, const float *X, int T, size_t ldx, float *Y, size_t ldy) {
    mm_job j = {.w = w, .Y = Y, .ldy = ldy};
    matmul_jobs(e, X, ldx, T, NULL, NULL, &j, 1, 0);
}

/* ---- stages ---- */

static void embed(g4_engine *e, const int32_t *tok, int T) {
    const g4_model *m = e->m;
    const g4_type_traits *tr = g4_type_traits_get(m->tok_embd.type);
    const int D = m->n_embd;
    const float scale = sqrtf((float)D);
    for (int t = 0; t < T; t++) {
        float *x = e->x + (size_t)t * D;
        tr->to_float(m->tok_embd.data + (size_t)tok[t] * m->tok_embd.row_bytes, x, D);
        for (int i = 0; i < D; i++) x[i] *= scale;
    }
}

/* per-layer inputs: ple[t][l*P..] = (rms(proj(x0)/sqrt(D))[l] * norm + tok_row[l] * sqrt(P)) / sqrt(2) */
static void per_layer_inputs(g4_engine *e, const int32_t *tok, int T) {
    const g4_model *m = e->m;
    const int D = m->n_embd, L = m->n_layer, P = m->n_embd_per_layer;
    const size_t LP = (size_t)L * (size_t)P;
    matmul(e, &m->ple_model_proj, e->x, T, (size_t)D, e->ple, LP);
    const g4_type_traits *tr = g4_type_traits_get(m->ple_tok.type);
    const float inv_sqrt_d = 1.0f / sqrtf((float)D), sqrt_p = sqrtf((float)P), inv_sqrt2 = 1.0f / sqrtf(2.0f);
    for (int t = 0; t < T; t++) {
        float *pl = e->ple + (size_t)t * LP, *tk = e->plet + (size_t)t * LP;
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
    g4_engine *e;
    const g4_layer *ly;
    int l; /* the layer whose cache it reads (ly->kv_src) */
    int T;
    int by_split;      /* items are (pair, split) instead of pairs */
    atomic_int next;
} att_task;

/* the cache entry t reads at layer l (its own sequence's) */
static inline g4_kv_layer *cache_of(const g4_engine *e, int t, int l) { return &e->bseq[t]->kv.layers[l]; }

/* the key range [j0, pos] of entry t */
static void key_range(const g4_engine *e, const g4_layer *ly, int t, int *j0, int *n) {
    const int pos = e->bpos[t], w = e->m->sliding_window;
    *j0 = ly->is_swa && pos - w + 1 > 0 ? pos - w + 1 : 0;
    *n = pos - *j0 + 1;
}

static void attend_split(const g4_engine *e, const g4_layer *ly, const g4_kv_layer *cache, int t, int g, int a, int b,
                         float *sc, float *part) {
    const int H = e->m->n_head, hd = ly->head_dim, group = H / ly->n_head_kv;
    const float *q = e->q + (size_t)t * (size_t)H * (size_t)hd + (size_t)g * group * (size_t)hd;
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
 * (e->q, e->gq), positions before the batch are scored on their records (integer dot products of all the
 * group's heads per record), the batch's own positions on its exact rotated K/V rows (cache->bk / bv);
 * the values are accumulated rotated, and attend_merge rotates the outputs back. */
static void attend_split_packed(const g4_engine *e, const g4_layer *ly, const g4_kv_layer *cache, int t, int g, int a,
                                int b, float *sc, float *part) {
    const int H = e->m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv, group = H / nkv;
    const int p0 = e->bseq[t]->n_past; /* the first position of its sequence in this pass: from there on bk / bv */
    const float *qr = e->q + (size_t)t * (size_t)H * (size_t)hd + (size_t)g * group * (size_t)hd;
    const g4_tq_gqa_query *gq = e->gq + (size_t)t * H + (size_t)g * group;
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
static void attend_merge(const g4_engine *e, const g4_layer *ly, const g4_kv_layer *cache, int t, int g, const float *part,
                         int ns) {
    const int H = e->m->n_head, hd = ly->head_dim, group = H / ly->n_head_kv;
    const size_t ps = (size_t)group * (2 + (size_t)hd);
    for (int h = 0; h < group; h++) {
        float *o = e->att + (size_t)t * (size_t)H * (size_t)hd + (size_t)(g * group + h) * (size_t)hd;
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
    g4_engine *e = k->e;
    const g4_layer *ly = k->ly;
    const int nkv = ly->n_head_kv, group = e->m->n_head / nkv, hd = ly->head_dim;
    const size_t ps = (size_t)group * (2 + (size_t)hd);
    float *sc = e->scores + (size_t)ith * (size_t)e->group_max * ATT_SPLIT;
    const int pairs = k->T * nkv;
    if (k->by_split) { /* item = pair * splits_max + split; partials in the shared buffer, merged after */
        for (;;) {
            const int i = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed);
            if (i >= pairs * e->splits_max) break;
            const int pr = i / e->splits_max, s = i % e->splits_max, t = pr / nkv, g = pr % nkv;
            int j0, n;
            key_range(e, ly, t, &j0, &n);
            if (s * ATT_SPLIT >= n) continue;
            const int a = j0 + s * ATT_SPLIT, b = a + ATT_SPLIT < j0 + n ? a + ATT_SPLIT : j0 + n;
            const g4_kv_layer *cache = cache_of(e, t, k->l);
            (cache->packed ? attend_split_packed : attend_split)(e, ly, cache, t, g, a, b, sc, e->part + (size_t)i * ps);
        }
        return;
    }
    float *part = e->part + (size_t)ith * (size_t)e->splits_max * ps;
    for (;;) {
        const int pr = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed);
        if (pr >= pairs) break;
        const int t = pr / nkv, g = pr % nkv;
        int j0, n;
        key_range(e, ly, t, &j0, &n);
        const int ns = (n + ATT_SPLIT - 1) / ATT_SPLIT;
        const g4_kv_layer *cache = cache_of(e, t, k->l);
        for (int s = 0; s < ns; s++) {
            const int a = j0 + s * ATT_SPLIT, b = a + ATT_SPLIT < j0 + n ? a + ATT_SPLIT : j0 + n;
            (cache->packed ? attend_split_packed : attend_split)(e, ly, cache, t, g, a, b, sc, part + (size_t)s * ps);
        }
        attend_merge(e, ly, cache, t, g, part, ns);
    }
}

/* ---- per-head work between the Q/K/V products and attention: q and k norms, RoPE, the cache write ----
 * Items are (token, query head) and (token, KV head) pairs, each done in one pass while the head is in
 * L1: a query head is normed, rotated by RoPE (and for a packed cache rotated by the Hadamard transform and
 * quantized); a KV head's K is normed and rotated, its V normed, and both are written to the cache. */

typedef struct heads_task {
    g4_engine *e;
    const g4_layer *ly;
    int l; /* the layer whose cache it uses (ly->kv_src) */
    int T, n_q, n_items;
    const float *cs; /* the RoPE table of the layer, or NULL */
    atomic_int next;
} heads_task;

static void rope_head(const heads_task *k, float *x, int t) {
    const g4_layer *ly = k->ly;
    if (k->cs) g4_rope_neox_cs(x, ly->n_rot, k->cs + (size_t)t * (size_t)ly->n_rot);
    else g4_rope_neox(x, ly->head_dim, ly->n_rot, k->e->bpos[t], ly->rope_base, ly->rope_ff);
}

static void head_item(const heads_task *k, int i) {
    g4_engine *e = k->e;
    const g4_layer *ly = k->ly;
    const int H = e->m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv;
    const size_t qw = (size_t)H * hd, kw = (size_t)nkv * hd;
    const float eps = e->m->eps;
    if (i < k->n_q) {
        const int t = i / H, h = i % H;
        float *qh = e->q + (size_t)t * qw + (size_t)h * hd;
        g4_rmsnorm(qh, qh, ly->q_norm, hd, eps);
        rope_head(k, qh, t);
        const g4_kv_layer *cache = cache_of(e, t, k->l);
        if (cache->packed) { /* rotate the query once, and quantize it for the integer scores */
            cache->pk->kern->rotate(cache->pk, qh, qh);
            g4_tq_gqa_query_init(cache->pk, qh, e->q8 + (size_t)t * qw + (size_t)h * hd, &e->gq[(size_t)t * H + h]);
        }
        return;
    }
    i -= k->n_q;
    const int t = i / nkv, g = i % nkv;
    float *kh = e->k + (size_t)t * kw + (size_t)g * hd, *vh = e->v + (size_t)t * kw + (size_t)g * hd;
    g4_rmsnorm(kh, kh, ly->k_norm, hd, eps);
    rope_head(k, kh, t);
    g4_rmsnorm(vh, vh, NULL, hd, eps);
    g4_kv_layer *cache = cache_of(e, t, k->l);
    const int pos = e->bpos[t];
    if (cache->packed) g4_kv_store_packed_head(cache, pos - e->bseq[t]->n_past, pos, g, kh, vh);
    else g4_kv_store_head(cache, pos, g, kh, vh);
}

static void heads_run(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    heads_task *k = arg;
    for (int i; (i = atomic_fetch_add_explicit(&k->next, 1, memory_order_relaxed)) < k->n_items;) head_item(k, i);
}

static void attention(g4_engine *e, int l, int T) {
    const g4_model *m = e->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd, H = m->n_head, hd = ly->head_dim, nkv = ly->n_head_kv;
    const size_t qw = (size_t)H * hd, kw = (size_t)nkv * hd;

    /* Q, K and V in one dispatch on the normed input (K and V only where this layer writes the cache) */
    mm_job jobs[3] = {{.w = &ly->wq, .Y = e->q, .ldy = qw}};
    int nj = 1;
    if (ly->kv_src == l) {
        jobs[nj++] = (mm_job){.w = &ly->wk, .Y = e->k, .ldy = kw};
        if (ly->has_v) jobs[nj++] = (mm_job){.w = &ly->wv, .Y = e->v, .ldy = kw};
    }
    matmul_jobs(e, e->x, (size_t)D, T, e->xn, ly->attn_norm, jobs, nj, 0);
    if (ly->kv_src == l && !ly->has_v) memcpy(e->v, e->k, (size_t)T * kw * sizeof(float)); /* K=V: the raw K */

    heads_task hk = {.e = e, .ly = ly, .l = ly->kv_src, .T = T, .n_q = T * H,
                     .cs = e->rope_of[l] >= 0 ? e->rope[e->rope_of[l]].cs : NULL};
    hk.n_items = hk.n_q + (ly->kv_src == l ? T * nkv : 0);
    atomic_init(&hk.next, 0);
    if (T >= 2 && g4_pool_size(e->pool) > 1) g4_pool_run(e->pool, heads_run, &hk);
    else
        for (int i = 0; i < hk.n_items; i++) head_item(&hk, i);

    att_task k = {.e = e, .ly = ly, .l = ly->kv_src, .T = T};
    const int pairs = T * nkv;
    /* fewer (token, KV head) pairs than threads: share out the splits (the buffer holds them when
     * pairs < threads) */
    k.by_split = pairs < g4_pool_size(e->pool);
    atomic_init(&k.next, 0);
    g4_pool_run(e->pool, attend, &k);
    if (k.by_split) {
        const size_t ps = (size_t)(H / nkv) * (2 + (size_t)hd);
        for (int pr = 0; pr < pairs; pr++) {
            int j0, n;
            key_range(e, ly, pr / nkv, &j0, &n);
            attend_merge(e, ly, cache_of(e, pr / nkv, ly->kv_src), pr / nkv, pr % nkv, e->part + (size_t)pr * e->splits_max * ps,
                         (n + ATT_SPLIT - 1) / ATT_SPLIT);
        }
    }
    matmul(e, &ly->wo, e->att, T, qw, e->t1, (size_t)D);
    for (int t = 0; t < T; t++) {
        float *x = e->x + (size_t)t * D, *a = e->t1 + (size_t)t * D;
        g4_rmsnorm(a, a, ly->post_attn_norm, D, m->eps);
        for (int i = 0; i < D; i++) x[i] += a[i];
    }
}

/* a = gelu(a) * b: the scalar reference in exact mode, else the CPU's kernels */
static void gelu_mul(const g4_engine *e, float *a, const float *b, size_t n) {
    (e->exact ? g4_gelu_mul : g4_gelu_mul_fast)(a, b, n);
}

/* out[t] = down(gelu(gate(n[t])) * up(n[t])) with n = rms(x) * norm: the norm, gate, up and GELU in
 * one dispatch */
static void mlp(g4_engine *e, const g4_layer *ly, const float *x, int T, float *out) {
    const int D = e->m->n_embd, F = (int)ly->gate.ne1;
    mm_job jobs[2] = {{.w = &ly->gate, .Y = e->ffa, .ldy = (size_t)F}, {.w = &ly->up, .Y = e->ffb, .ldy = (size_t)F}};
    matmul_jobs(e, x, (size_t)D, T, e->xn, ly->ffn_norm, jobs, 2, 1);
    matmul(e, &ly->down, e->ffa, T, (size_t)F, out, (size_t)D);
}

/* MoE branch of the batch: out[t] = sum over token t's top-k experts of w_k * expert_k(rms(x[t]) *
 * pre_ffw_norm_2). The tokens are grouped by expert, so each expert's matrices are read once per pass for all
 * the tokens routed to it; each token's expert outputs are kept apart and summed in its own routing order, so
 * its result does not depend on which other tokens share the pass. */
static void moe_batch(g4_engine *e, const g4_layer *ly, const float *x, int T, float *out) {
    const g4_model *m = e->m;
    const int D = m->n_embd, E = m->n_expert, K = m->n_expert_used, F = m->n_ff_exp;
    /* router on the un-weighted norm of the residual, scaled by 1/sqrt(D) and the router scale */
    const float inv_sqrt_d = 1.0f / sqrtf((float)D);
    for (int t = 0; t < T; t++) {
        float *in = e->moe_in + (size_t)t * D;
        g4_rmsnorm(in, x + (size_t)t * D, NULL, D, m->eps);
        for (int i = 0; i < D; i++) in[i] *= inv_sqrt_d * ly->router_scale[i];
    }
    matmul(e, &ly->router, e->moe_in, T, (size_t)D, e->router, (size_t)E);
    for (int t = 0; t < T; t++) {
        float *r = e->router + (size_t)t * E, wsum = 0;
        int *sel = e->moe_sel + (size_t)t * K;
        float *w = e->moe_w + (size_t)t * K;
        g4_softmax(r, E);
        for (int k = 0; k < K; k++) { /* top-k, lowest index first among equals */
            int best = -1;
            for (int x_ = 0; x_ < E; x_++) {
                int used = 0;
                for (int j = 0; j < k; j++) used |= sel[j] == x_;
                if (!used && (best < 0 || r[x_] > r[best])) best = x_;
            }
            sel[k] = best;
            w[k] = r[best];
            wsum += w[k];
        }
        if (wsum < 6.103515625e-5f) wsum = 6.103515625e-5f;
        for (int k = 0; k < K; k++) w[k] = w[k] / wsum * (ly->expert_scale ? ly->expert_scale[sel[k]] : 1.0f);
        g4_rmsnorm(e->moe_in + (size_t)t * D, x + (size_t)t * D, ly->pre_ffw_norm_2, D, m->eps);
    }
    /* each expert once, with the tokens routed to it (in batch order); y[t][k] = its output for token t */
    for (int x_ = 0; x_ < E; x_++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (e->moe_sel[(size_t)t * K + k] == x_) {
                    e->moe_tok[n] = t * K + k;
                    memcpy(e->moe_gin + (size_t)n * D, e->moe_in + (size_t)t * D, (size_t)D * sizeof(float));
                    n++;
                }
        if (!n) continue;
        float *g = e->moe_g;
        if (ly->gate_up_exps.t) {
            g4_weight gu = g4_weight_expert(&ly->gate_up_exps, x_);
            matmul(e, &gu, e->moe_gin, n, (size_t)D, g, (size_t)2 * F);
        } else {
            g4_weight wg = g4_weight_expert(&ly->gate_exps, x_), wu = g4_weight_expert(&ly->up_exps, x_);
            matmul(e, &wg, e->moe_gin, n, (size_t)D, g, (size_t)2 * F);
            matmul(e, &wu, e->moe_gin, n, (size_t)D, g + F, (size_t)2 * F);
        }
        for (int i = 0; i < n; i++) gelu_mul(e, g + (size_t)i * 2 * F, g + (size_t)i * 2 * F + F, (size_t)F);
        g4_weight dn = g4_weight_expert(&ly->down_exps, x_);
        /* the outputs land in moe_gin (free again), then go to each token's slot */
        matmul(e, &dn, g, n, (size_t)2 * F, e->moe_gin, (size_t)D);
        for (int i = 0; i < n; i++)
            memcpy(e->moe_y + (size_t)e->moe_tok[i] * D, e->moe_gin + (size_t)i * D, (size_t)D * sizeof(float));
    }
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * D;
        memset(o, 0, (size_t)D * sizeof *o);
        for (int k = 0; k < K; k++) {
            const float a = e->moe_w[(size_t)t * K + k], *y = e->moe_y + ((size_t)t * K + k) * D;
            for (int i = 0; i < D; i++) o[i] += a * y[i];
        }
    }
}

static void feed_forward(g4_engine *e, int l, int T) {
    const g4_model *m = e->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd;
    mlp(e, ly, e->x, T, e->t1);
    if (ly->is_moe) moe_batch(e, ly, e->x, T, e->t2);
    for (int t = 0; t < T; t++) {
        float *x = e->x + (size_t)t * D, *d = e->t1 + (size_t)t * D;
        if (ly->is_moe) {
            float *o = e->t2 + (size_t)t * D;
            g4_rmsnorm(d, d, ly->post_ffw_norm_1, D, m->eps);
            g4_rmsnorm(o, o, ly->post_ffw_norm_2, D, m->eps);
            for (int i = 0; i < D; i++) d[i] += o[i];
        }
        g4_rmsnorm(d, d, ly->post_ffw_norm, D, m->eps);
        for (int i = 0; i < D; i++) x[i] += d[i];
    }
}

/* x += rms(proj(gelu(inp_gate(x)) * ple[l])) * post_norm */
static void per_layer_injection(g4_engine *e, int l, int T) {
    const g4_model *m = e->m;
    const g4_layer *ly = &m->layers[l];
    const int D = m->n_embd, P = m->n_embd_per_layer;
    const size_t LP = (size_t)m->n_layer * (size_t)P;
    matmul(e, &ly->ple_gate, e->x, T, (size_t)D, e->ffa, (size_t)P);
    for (int t = 0; t < T; t++) {
        float *g = e->ffa + (size_t)t * P;
        const float *pl = e->ple + (size_t)t * LP + (size_t)l * P;
        gelu_mul(e, g, pl, (size_t)P);
    }
    matmul(e, &ly->ple_proj, e->ffa, T, (size_t)P, e->t1, (size_t)D);
    for (int t = 0; t < T; t++) {
        float *x = e->x + (size_t)t * D, *y = e->t1 + (size_t)t * D;
        g4_rmsnorm(y, y, ly->ple_post_norm, D, m->eps);
        for (int i = 0; i < D; i++) x[i] += y[i];
    }
}

/* the LM head on the n rows of x listed in rows[]: soft-capped logits, n_vocab per row, in one dispatch (the
 * table is read once for all of them); the cap is applied chunk by chunk by the threads */
static void output_logits(g4_engine *e, const int *rows, int n, float *logits) {
    const g4_model *m = e->m;
    const int D = m->n_embd;
    for (int i = 0; i < n; i++) g4_rmsnorm(e->xn + (size_t)i * D, e->x + (size_t)rows[i] * D, m->output_norm, D, m->eps);
    mm_job j = {.w = &m->output, .Y = logits, .ldy = (size_t)m->n_vocab};
    matmul_jobs_post(e, e->xn, (size_t)D, n, NULL, NULL, &j, 1, 0, m->softcap, NULL);
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
static int output_top(g4_engine *e, int t, int k, int32_t *ids, float *vals) {
    const g4_model *m = e->m;
    const int D = m->n_embd, nth = g4_pool_size(e->pool);
    if (k > m->n_vocab) k = m->n_vocab;
    g4_rmsnorm(e->xn, e->x + (size_t)t * D, m->output_norm, D, m->eps);
    top_heap *heaps = e->top_heaps;
    const int nh = nth;
    for (int i = 0; i < nh; i++)
        heaps[i] = (top_heap){.k = k, .id = e->top_id + (size_t)i * k, .v = e->top_v + (size_t)i * k};
    mm_job j = {.w = &m->output, .Y = e->logit_buf, .ldy = (size_t)m->n_vocab};
    matmul_jobs_post(e, e->xn, (size_t)D, 1, NULL, NULL, &j, 1, 0, m->softcap, heaps);
    /* merge: (value, id) pairs of every heap, sorted */
    float *pairs = e->top_pairs;
    int n = 0;
    for (int i = 0; i < nh; i++)
        for (int q = 0; q < heaps[i].n; q++) {
            pairs[2 * n] = heaps[i].v[q];
            memcpy(&pairs[2 * n + 1], &heaps[i].id[q], sizeof(int32_t));
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

int g4_forward_pass(g4_engine *e, const int32_t *tok, int T, const int *want, float *logits, engine_top_req *top) {
    const g4_model *m = e->m;
    embed(e, tok, T);
    for (int r = 0; r < e->n_rope; r++)
        for (int t = 0; t < T; t++)
            g4_rope_cs(e->rope[r].cs + (size_t)t * (size_t)e->rope[r].n_rot, e->rope[r].n_rot, e->bpos[t],
                       e->rope[r].base, e->rope[r].ff);
    if (m->n_embd_per_layer > 0) per_layer_inputs(e, tok, T);
    for (int l = 0; l < m->n_layer; l++) {
        if (e->abort_fn && e->abort_fn(e->abort_user)) return 0;
        attention(e, l, T);
        feed_forward(e, l, T);
        if (m->n_embd_per_layer > 0) per_layer_injection(e, l, T);
        const float s = m->layers[l].out_scale;
        if (s != 1.0f)
            for (size_t i = 0; i < (size_t)T * m->n_embd; i++) e->x[i] *= s;
    }
    if (top) {
        top->n = output_top(e, T - 1, top->k, top->ids, top->vals);
        return 1;
    }
    if (!logits || !want) return 1;
    int rows[G4_BATCH], n = 0;
    for (int t = 0; t < T; t++)
        if (want[t]) rows[n++] = t;
    if (n) output_logits(e, rows, n, logits);
    return 1;
}
