/* The objects of inference: the engine (one per model and process: thread pool, scratch, repacked weights),
 * sequences (KV cache, tokens, position) and the batch call that runs entries of several sequences in shared
 * forward passes; and the single-sequence context of the original API on top of them. */
#include "model/engine.h"
#include "kv/kv.h"
#include "model/model.h"
#include "util/pool.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- engine --------------------------------------------------------------------------------------- */

g4_engine_params g4_engine_default_params(void) {
    g4_engine_params p = {.n_threads = 0, .exact = 0};
    return p;
}

int g4_engine_batch_size(void) { return G4_BATCH; }
g4_model *g4_engine_model(const g4_engine *e) { return e->m; }
int g4_engine_n_threads(const g4_engine *e) { return g4_pool_size(e->pool); }
void g4_engine_set_abort(g4_engine *e, g4_abort_fn fn, void *user) {
    e->abort_fn = fn;
    e->abort_user = user;
}

void g4_engine_free(g4_engine *e) {
    if (!e) return;
    g4_pool_free(e->pool);
    float *bufs[] = {e->x, e->xn, e->t1, e->t2, e->q, e->k, e->v, e->att, e->ffa, e->ffb, e->scores, e->part,
                     e->ple, e->plet, e->moe_in, e->moe_gin, e->moe_g, e->moe_y, e->router, e->moe_w};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(e->moe_sel);
    free(e->moe_tok);
    free(e->bseq);
    free(e->bpos);
    free(e->qact);
    for (int r = 0; r < e->n_rope; r++) free(e->rope[r].cs);
    free(e->rope_of);
    free(e->logit_buf);
    free(e->top_v);
    free(e->top_pairs);
    free(e->top_id);
    free(e->top_heaps);
    free(e->q8);
    free(e->gq);
    free(e);
}

static float *falloc(size_t n, int *ok) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *ok = 0;
    return p;
}

g4_status g4_engine_new(g4_engine **out, g4_model *m, const g4_engine_params *p, g4_error *err) {
    *out = NULL;
    g4_engine *e = calloc(1, sizeof *e);
    if (!e) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    e->m = m;
    e->exact = p->exact != 0;
    e->n_batch = G4_BATCH;
    if (g4_pool_new(&e->pool, p->n_threads, err)) {
        g4_engine_free(e);
        return err ? err->code : G4_ERR_NOMEM;
    }
    size_t T = (size_t)e->n_batch, D = (size_t)m->n_embd, H = (size_t)m->n_head;
    size_t hd = (size_t)(m->head_dim_full > m->head_dim_swa ? m->head_dim_full : m->head_dim_swa);
    size_t nkv = 0, ff = 0;
    for (int l = 0; l < m->n_layer; l++) {
        if ((size_t)m->layers[l].n_head_kv > nkv) nkv = (size_t)m->layers[l].n_head_kv;
        if ((size_t)m->layers[l].n_ff > ff) ff = (size_t)m->layers[l].n_ff;
    }
    if ((size_t)m->n_ff_exp * 2 > ff) ff = (size_t)m->n_ff_exp * 2;
    size_t LP = (size_t)m->n_layer * (size_t)m->n_embd_per_layer;
    const size_t K = (size_t)(m->n_expert_used > 0 ? m->n_expert_used : 1);
    int ok = 1;
    e->x = falloc(T * D, &ok);
    e->xn = falloc(T * D, &ok);
    e->t1 = falloc(T * D, &ok);
    e->t2 = falloc(T * D, &ok);
    e->q = falloc(T * H * hd, &ok);
    e->k = falloc(T * nkv * hd, &ok);
    e->v = falloc(T * nkv * hd, &ok);
    e->att = falloc(T * H * hd, &ok);
    e->ffa = falloc(T * ff, &ok);
    e->ffb = falloc(T * ff, &ok);
    e->hd_max = (int)hd;
    e->group_max = 1;
    for (int l = 0; l < m->n_layer; l++)
        if (m->n_head / m->layers[l].n_head_kv > e->group_max) e->group_max = m->n_head / m->layers[l].n_head_kv;
    const size_t nth_all = (size_t)g4_pool_size(e->pool);
    e->scores = falloc(nth_all * (size_t)e->group_max * G4_ATT_SPLIT, &ok);
    e->ple = falloc(T * LP, &ok);
    e->plet = falloc(T * LP, &ok);
    if (m->n_expert > 0) {
        e->moe_in = falloc(T * D, &ok);
        e->moe_gin = falloc(T * D, &ok);
        e->moe_g = falloc(T * 2 * (size_t)m->n_ff_exp, &ok);
        e->moe_y = falloc(T * K * D, &ok);
        e->router = falloc(T * (size_t)m->n_expert, &ok);
        e->moe_w = falloc(T * K, &ok);
        e->moe_sel = calloc(T * K, sizeof *e->moe_sel);
        e->moe_tok = calloc(T, sizeof *e->moe_tok);
        if (!e->moe_sel || !e->moe_tok) ok = 0;
    }
    e->bseq = calloc(T, sizeof *e->bseq);
    e->bpos = calloc(T, sizeof *e->bpos);
    /* the longest input row of any matmul, encoded in the widest activation type (f32) */
    size_t maxin = D;
    if (H * hd > maxin) maxin = H * hd;
    if (ff > maxin) maxin = ff;
    if ((size_t)m->n_embd_per_layer > maxin) maxin = (size_t)m->n_embd_per_layer;
    e->qact_row = maxin * sizeof(float) + 64;
    e->qact = malloc(T * e->qact_row);
    e->q8 = malloc(T * H * hd);
    e->gq = malloc(T * H * sizeof *e->gq);
    e->rope_of = malloc((size_t)m->n_layer * sizeof *e->rope_of);
    for (int l = 0; e->rope_of && l < m->n_layer; l++) {
        const g4_layer *ly = &m->layers[l];
        int r = 0;
        while (r < e->n_rope && !(e->rope[r].n_rot == ly->n_rot && e->rope[r].base == ly->rope_base &&
                                  e->rope[r].ff == ly->rope_ff))
            r++;
        if (r == e->n_rope && r < G4_ROPE_KINDS) {
            e->rope[r].n_rot = ly->n_rot;
            e->rope[r].base = ly->rope_base;
            e->rope[r].ff = ly->rope_ff;
            e->rope[r].cs = falloc(T * (size_t)ly->n_rot, &ok);
            e->n_rope++;
        }
        e->rope_of[l] = r < e->n_rope ? r : -1;
    }
    if (!ok || !e->qact || !e->q8 || !e->gq || !e->rope_of || !e->bseq || !e->bpos) {
        g4_engine_free(e);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating inference buffers");
    }
    g4_status s = g4_engine_reserve_ctx(e, 1, err);
    if (s) {
        g4_engine_free(e);
        return s;
    }
    if (!e->exact) g4_model_repack(m, e->pool, NULL); /* once per model; failure leaves the plain rows */
    *out = e;
    return G4_OK;
}

g4_status g4_engine_reserve_ctx(g4_engine *e, int n_ctx, g4_error *err) {
    const int splits = (n_ctx + G4_ATT_SPLIT - 1) / G4_ATT_SPLIT;
    if (splits <= e->splits_max) return G4_OK;
    const size_t nth = (size_t)g4_pool_size(e->pool);
    float *part = calloc(nth * (size_t)splits * (size_t)e->group_max * (2 + (size_t)e->hd_max), sizeof(float));
    if (!part) return g4_fail(err, G4_ERR_NOMEM, "out of memory for the attention scratch of %d tokens", n_ctx);
    free(e->part);
    e->part = part;
    e->splits_max = splits;
    return G4_OK;
}

g4_status g4_engine_reserve_top(g4_engine *e, int k, g4_error *err) {
    if (k <= e->top_k) return G4_OK;
    const g4_model *m = e->m;
    const size_t nh = (size_t)g4_pool_size(e->pool);
    if (!e->logit_buf) e->logit_buf = malloc((size_t)m->n_vocab * sizeof(float));
    if (!e->top_heaps) e->top_heaps = malloc(nh * sizeof *e->top_heaps);
    float *tv = malloc(nh * k * sizeof(float)), *tp = malloc(nh * k * 2 * sizeof(float));
    int32_t *ti = malloc(nh * k * sizeof(int32_t));
    if (!e->logit_buf || !e->top_heaps || !tv || !tp || !ti) {
        free(tv), free(tp), free(ti);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory for the top-%d logits", k);
    }
    free(e->top_v), free(e->top_pairs), free(e->top_id);
    e->top_v = tv, e->top_pairs = tp, e->top_id = ti;
    e->top_k = k;
    return G4_OK;
}

/* ---- sequences ------------------------------------------------------------------------------------ */

g4_status g4_seq_new(g4_seq **out, g4_engine *e, const g4_ctx_params *p, g4_error *err) {
    *out = NULL;
    if (p->n_ctx < 1) return g4_fail(err, G4_ERR_ARG, "context length must be at least 1 (got %d)", p->n_ctx);
    g4_status s = g4_kv_check(e->m, p, err);
    if (s) return s;
    if ((s = g4_engine_reserve_ctx(e, p->n_ctx, err))) return s;
    g4_seq *q = calloc(1, sizeof *q);
    if (!q) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    q->e = e;
    q->p = *p;
    q->p.exact = e->exact;
    q->p.n_threads = g4_pool_size(e->pool);
    q->tokens = malloc((size_t)p->n_ctx * sizeof *q->tokens);
    if (!q->tokens) {
        free(q);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory for %d tokens", p->n_ctx);
    }
    if ((s = g4_kv_init(&q->kv, e->m, p->n_ctx, e->n_batch + G4_ROLLBACK, e->n_batch, p, err))) {
        free(q->tokens);
        free(q);
        return s;
    }
    *out = q;
    return G4_OK;
}

void g4_seq_free(g4_seq *s) {
    if (!s) return;
    g4_kv_free(&s->kv);
    free(s->tokens);
    free(s);
}

g4_engine *g4_seq_engine(const g4_seq *s) { return s->e; }
int g4_seq_n_ctx(const g4_seq *s) { return s->p.n_ctx; }
int g4_seq_n_past(const g4_seq *s) { return s->n_past; }
const int32_t *g4_seq_tokens(const g4_seq *s) { return s->tokens; }
uint64_t g4_seq_kv_bytes(const g4_seq *s) { return s->kv.bytes; }
const g4_ctx_params *g4_seq_params(const g4_seq *s) { return &s->p; }
void g4_seq_reset(g4_seq *s) {
    s->n_past = 0;
    s->ring_lo = 0;
}

/* the oldest position a query at position n reads on a sliding layer */
static int window_start(const g4_model *m, int n) {
    const int need = n - m->sliding_window + 1;
    return need < 0 ? 0 : need;
}

/* whether every sliding ring of s still holds what a query at position n (< its n_past) needs */
static int rings_hold(const g4_seq *s, int n) {
    const g4_model *m = s->e->m;
    if (n == 0) return 1;
    const int need = window_start(m, n);
    if (need < s->ring_lo) return 0;
    for (int l = 0; l < m->n_layer; l++) {
        const g4_kv_layer *k = &s->kv.layers[l];
        if (k->n_cells && m->layers[l].is_swa && need < s->n_past - k->n_cells) return 0;
    }
    return 1;
}

/* Going back to n tokens works while every sliding ring still holds the window before position n. */
g4_status g4_seq_truncate(g4_seq *s, int n, g4_error *err) {
    if (n < 0 || n > s->n_past) return g4_fail(err, G4_ERR_ARG, "cannot truncate %d tokens to %d", s->n_past, n);
    if (!rings_hold(s, n))
        return g4_fail(err, G4_ERR_CONTEXT, "the cache no longer holds the window before token %d", n);
    s->n_past = n;
    if (n == 0) s->ring_lo = 0;
    return G4_OK;
}

g4_status g4_seq_copy(g4_seq *dst, const g4_seq *src, int n, g4_error *err) {
    const g4_model *m = src->e->m;
    if (dst->e != src->e) return g4_fail(err, G4_ERR_ARG, "the sequences belong to different engines");
    if (n < 0 || n > src->n_past) return g4_fail(err, G4_ERR_ARG, "cannot copy %d tokens of %d", n, src->n_past);
    if (n > dst->p.n_ctx) return g4_fail(err, G4_ERR_CONTEXT, "%d tokens do not fit in a context of %d", n, dst->p.n_ctx);
    if (dst == src) return g4_seq_truncate(dst, n, err);
    for (int l = 0; l < m->n_layer; l++) {
        const g4_kv_layer *a = &src->kv.layers[l], *b = &dst->kv.layers[l];
        if (!a->n_cells != !b->n_cells || a->type_k != b->type_k || a->type_v != b->type_v)
            return g4_fail(err, G4_ERR_ARG, "layer %d: the sequences' KV cache types differ", l);
    }
    if (!rings_hold(src, n))
        return g4_fail(err, G4_ERR_CONTEXT, "the cache no longer holds the window before token %d", n);
    int lo = n; /* the oldest position copied to a ring */
    for (int l = 0; l < m->n_layer; l++) {
        const g4_kv_layer *a = &src->kv.layers[l];
        g4_kv_layer *b = &dst->kv.layers[l];
        if (!a->n_cells) continue;
        /* positions [from, n): all of them on full layers, what both rings can hold on sliding ones */
        int from = n - b->n_cells;
        if (src->n_past - a->n_cells > from) from = src->n_past - a->n_cells;
        if (from < 0) from = 0;
        if (m->layers[l].is_swa && from < lo) lo = from;
        const size_t kb = (size_t)a->n_head_kv * a->k_bytes, vb = (size_t)a->n_head_kv * a->v_bytes;
        for (int p = from; p < n; p++) {
            memcpy((uint8_t *)b->k + (size_t)(p % b->n_cells) * kb, (const uint8_t *)a->k + (size_t)(p % a->n_cells) * kb, kb);
            memcpy((uint8_t *)b->v + (size_t)(p % b->n_cells) * vb, (const uint8_t *)a->v + (size_t)(p % a->n_cells) * vb, vb);
        }
    }
    memcpy(dst->tokens, src->tokens, (size_t)n * sizeof *dst->tokens);
    dst->n_past = n;
    dst->ring_lo = lo < n ? lo : 0;
    if (dst->ring_lo < src->ring_lo) dst->ring_lo = src->ring_lo;
    return G4_OK;
}

/* standard normal numbers from xorshift64* (Box-Muller) */
static float gauss(uint64_t *st) {
    uint64_t a, b;
    *st ^= *st >> 12, *st ^= *st << 25, *st ^= *st >> 27, a = *st * 0x2545F4914F6CDD1Dull;
    *st ^= *st >> 12, *st ^= *st << 25, *st ^= *st >> 27, b = *st * 0x2545F4914F6CDD1Dull;
    const double u = ((double)(a >> 11) + 0.5) / 9007199254740992.0, v = (double)(b >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

g4_status g4_seq_fill_random(g4_seq *s, int n, uint64_t seed, g4_error *err) {
    g4_engine *e = s->e;
    const g4_model *m = e->m;
    if (n < 0 || n > s->p.n_ctx - s->n_past)
        return g4_fail(err, G4_ERR_CONTEXT, "%d positions do not fit: the context holds %d and %d are used", n,
                       s->p.n_ctx, s->n_past);
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (int l = 0; l < m->n_layer; l++) {
        g4_kv_layer *cache = &s->kv.layers[l];
        if (!cache->n_cells) continue;
        const size_t kw = (size_t)cache->n_head_kv * (size_t)cache->head_dim;
        /* a ring keeps only its last n_cells positions */
        const int from = n > cache->n_cells ? n - cache->n_cells : 0;
        for (int i = from; i < n; i++) {
            for (size_t j = 0; j < kw; j++) e->k[j] = gauss(&st), e->v[j] = gauss(&st);
            if (cache->packed) g4_kv_store_packed(cache, 0, s->n_past + i, e->k, e->v);
            else g4_kv_store(cache, s->n_past + i, e->k, e->v);
        }
    }
    memset(s->tokens + s->n_past, 0, (size_t)n * sizeof *s->tokens);
    s->n_past += n;
    return G4_OK;
}

/* ---- batches -------------------------------------------------------------------------------------- */

/* checks, then passes of up to n_batch entries; top: the top-k of the last entry instead of logits rows */
static g4_status engine_eval(g4_engine *e, const g4_batch_entry *b, int n, float *logits, engine_top_req *top,
                             g4_error *err) {
    const g4_model *m = e->m;
    if (n < 1) return g4_fail(err, G4_ERR_ARG, "no tokens to evaluate");
    for (int i = 0; i < n; i++) {
        if (!b[i].seq || b[i].seq->e != e)
            return g4_fail(err, G4_ERR_ARG, "entry %d: %s", i, b[i].seq ? "a sequence of another engine" : "no sequence");
        if (b[i].token < 0 || b[i].token >= m->n_vocab)
            return g4_fail(err, G4_ERR_ARG, "token id %d at position %d is outside the vocabulary (0..%d)", (int)b[i].token,
                           i, m->n_vocab - 1);
        b[i].seq->pending = 0;
    }
    g4_status rc = G4_OK;
    for (int i = 0; i < n && !rc; i++) {
        g4_seq *s = b[i].seq;
        if (++s->pending > s->p.n_ctx - s->n_past)
            rc = g4_fail(err, G4_ERR_CONTEXT, "tokens do not fit: the context holds %d and %d are used", s->p.n_ctx,
                         s->n_past);
    }
    if (rc) {
        /* the count of the failing sequence, for the message */
        int cnt = 0;
        const g4_seq *s = NULL;
        for (int i = 0; i < n; i++)
            if (b[i].seq->pending > b[i].seq->p.n_ctx - b[i].seq->n_past) s = b[i].seq;
        for (int i = 0; s && i < n; i++) cnt += b[i].seq == s;
        if (s)
            g4_fail(err, G4_ERR_CONTEXT, "%d tokens do not fit: the context holds %d and %d are used", cnt, s->p.n_ctx,
                    s->n_past);
        return G4_ERR_CONTEXT;
    }
    int want[G4_BATCH];
    int32_t tok[G4_BATCH];
    for (int i = 0; i < n; i += e->n_batch) {
        const int T = n - i < e->n_batch ? n - i : e->n_batch;
        int n_out = 0;
        for (int t = 0; t < T; t++) {
            const g4_batch_entry *en = &b[i + t];
            int before = 0; /* earlier entries of its sequence in this pass */
            for (int j = 0; j < t; j++) before += e->bseq[j] == en->seq;
            e->bseq[t] = en->seq;
            e->bpos[t] = en->seq->n_past + before;
            tok[t] = en->token;
            want[t] = en->logits != 0 && logits != NULL;
            n_out += want[t];
        }
        const int last = i + T == n;
        if (!g4_forward_pass(e, tok, T, want, logits, top && last ? top : NULL))
            return g4_fail(err, G4_ERR_INTERRUPTED, "interrupted after %d of %d tokens", i, n);
        for (int t = 0; t < T; t++) {
            g4_seq *s = e->bseq[t];
            s->tokens[e->bpos[t]] = tok[t];
            if (e->bpos[t] + 1 > s->n_past) s->n_past = e->bpos[t] + 1;
        }
        if (logits) logits += (size_t)n_out * (size_t)m->n_vocab;
    }
    return G4_OK;
}

g4_status g4_engine_eval(g4_engine *e, const g4_batch_entry *b, int n, float *logits, g4_error *err) {
    return engine_eval(e, b, n, logits, NULL, err);
}

/* ---- the single-sequence context ------------------------------------------------------------------ */

g4_status g4_ctx_new(g4_ctx **out, g4_model *m, const g4_ctx_params *p, g4_error *err) {
    *out = NULL;
    if (p->n_ctx < 1) return g4_fail(err, G4_ERR_ARG, "context length must be at least 1 (got %d)", p->n_ctx);
    g4_status s = g4_kv_check(m, p, err);
    if (s) return s;
    g4_ctx *c = calloc(1, sizeof *c);
    if (!c) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    g4_engine_params ep = {.n_threads = p->n_threads, .exact = p->exact};
    if ((s = g4_engine_new(&c->e, m, &ep, err)) || (s = g4_seq_new(&c->s, c->e, p, err))) {
        g4_ctx_free(c);
        return s;
    }
    *out = c;
    return G4_OK;
}

void g4_ctx_free(g4_ctx *c) {
    if (!c) return;
    g4_seq_free(c->s);
    g4_engine_free(c->e);
    free(c);
}

uint64_t g4_ctx_kv_bytes(const g4_ctx *c) { return c->s->kv.bytes; }
int g4_ctx_n_past(const g4_ctx *c) { return c->s->n_past; }
g4_model *g4_ctx_model(const g4_ctx *c) { return c->e->m; }
g4_engine *g4_ctx_engine(const g4_ctx *c) { return c->e; }
g4_seq *g4_ctx_seq(const g4_ctx *c) { return c->s; }
void g4_ctx_set_abort(g4_ctx *c, g4_abort_fn fn, void *user) { g4_engine_set_abort(c->e, fn, user); }
int g4_ctx_n_ctx(const g4_ctx *c) { return c->s->p.n_ctx; }
void g4_ctx_reset(g4_ctx *c) { g4_seq_reset(c->s); }
const int32_t *g4_ctx_tokens(const g4_ctx *c) { return c->s->tokens; }
g4_status g4_ctx_truncate(g4_ctx *c, int n, g4_error *err) { return g4_seq_truncate(c->s, n, err); }
g4_status g4_ctx_fill_random(g4_ctx *c, int n, uint64_t seed, g4_error *err) {
    return g4_seq_fill_random(c->s, n, seed, err);
}

/* the tokens of one sequence as entries, a pass at a time (logits of the last one, or of every one) */
static g4_status ctx_eval(g4_ctx *c, const int32_t *tokens, int n, float *logits, int all, engine_top_req *top,
                          g4_error *err) {
    const g4_model *m = c->e->m;
    if (n < 1) return g4_fail(err, G4_ERR_ARG, "no tokens to evaluate");
    if (n > c->s->p.n_ctx - c->s->n_past)
        return g4_fail(err, G4_ERR_CONTEXT, "%d tokens do not fit: the context holds %d and %d are used", n,
                       c->s->p.n_ctx, c->s->n_past);
    g4_batch_entry b[G4_BATCH];
    for (int i = 0; i < n; i += G4_BATCH) {
        const int T = n - i < G4_BATCH ? n - i : G4_BATCH, last = i + T == n;
        for (int t = 0; t < T; t++) b[t] = (g4_batch_entry){.seq = c->s, .token = tokens[i + t], .logits = all || (last && t == T - 1)};
        float *out = !logits ? NULL : all ? logits + (size_t)i * m->n_vocab : last ? logits : NULL;
        g4_status s = engine_eval(c->e, b, T, out, last ? top : NULL, err);
        if (s == G4_ERR_INTERRUPTED) return g4_fail(err, s, "interrupted after %d of %d tokens", i, n);
        if (s) return s;
    }
    return G4_OK;
}

g4_status g4_eval(g4_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits, g4_error *err) {
    return ctx_eval(c, tokens, n, logits, all_logits, NULL, err);
}

g4_status g4_eval_top(g4_ctx *c, const int32_t *tokens, int n, int k, int32_t *ids, float *logits, int *n_top,
                      g4_error *err) {
    *n_top = 0;
    if (k < 1) return g4_fail(err, G4_ERR_ARG, "top-k needs k >= 1 (got %d)", k);
    if (k > c->e->m->n_vocab) k = c->e->m->n_vocab;
    g4_status s = g4_engine_reserve_top(c->e, k, err);
    if (s) return s;
    engine_top_req top = {.k = k, .ids = ids, .vals = logits};
    if ((s = ctx_eval(c, tokens, n, NULL, 0, &top, err))) return s;
    *n_top = top.n;
    return G4_OK;
}
