/* KV cache: one K and one V buffer per layer that owns a cache. Full-attention layers hold every
 * position up to n_ctx; sliding layers hold a ring of (window - 1 + n_extra) cells, so their memory does
 * not grow with the context: a batch of up to n_batch queries needs window - 1 + n_batch cells, and the
 * caller adds a margin that lets it go back a few tokens (g4_ctx_truncate). Layers that share
 * another layer's KV own nothing.
 *
 * Types per layer and per K / V (g4_ctx_params: kv_type, kv_type_k / kv_type_v on the layers kv_layers
 * selects, then overrides): f32 / f16 rows [cell][kv head][head_dim], or packed TurboQuant records
 * (q8 / tq4 / tq3 / tq2, src/kv/turboquant.h) [cell][kv head][record], the vectors rotated. A packed
 * layer also keeps the current batch's K and V rotated in f32 (bk, bv): the batch attends to those
 * exactly, and earlier positions through the records (docs/turboquant.md, "Integration"). */
#ifndef G4_KV_H
#define G4_KV_H

#include "g4.h"
#include "kv/turboquant.h"
#include <stdint.h>

struct g4_model;

#define G4_KV_MAX_HEAD_DIM 1024

typedef struct g4_kv_layer {
    int n_cells;      /* positions held; position p lives in cell p % n_cells */
    int n_head_kv, head_dim;
    g4_kv_type type_k, type_v;
    size_t k_bytes, v_bytes; /* bytes of one (cell, KV head) row or record */
    void *k, *v;
    /* packed layers (type_k and type_v are q8 / tq*): */
    int packed;
    const g4_tq_params *pk, *pv; /* owned by g4_kv */
    float *bk, *bv;              /* [n_batch][n_head_kv][head_dim]: the batch's K and V, rotated */
} g4_kv_layer;

typedef struct g4_kv {
    int n_layer;
    int n_batch;
    g4_kv_layer *layers; /* indexed by layer; n_cells == 0 for layers without a cache */
    uint64_t bytes;
    int n_params;
    g4_tq_params *params[8]; /* one per (packed type, head dim) in use */
} g4_kv;

/* cells a layer's cache holds for n_ctx tokens (n_extra: ring cells beyond the window, >= the batch) */
int g4_kv_cells(const struct g4_model *m, int layer, int n_ctx, int n_extra);
/* bytes of the cache for the KV settings of p (p->n_ctx ignored); 0 if p is invalid for m */
uint64_t g4_kv_size(const struct g4_model *m, int n_ctx, int n_extra, const g4_ctx_params *p);
/* the K and V types of layer l's own cache under p (layer l must own one) */
g4_status g4_kv_resolve(const struct g4_model *m, const g4_ctx_params *p, int l, g4_kv_type *k, g4_kv_type *v,
                        g4_error *err);
/* checks every setting of p against m (types, overrides, head dims) */
g4_status g4_kv_check(const struct g4_model *m, const g4_ctx_params *p, g4_error *err);

g4_status g4_kv_init(g4_kv *kv, const struct g4_model *m, int n_ctx, int n_extra, int n_batch, const g4_ctx_params *p,
                     g4_error *err);
void g4_kv_free(g4_kv *kv);

/* f32 / f16 layers: store the K and V rows ([n_head_kv * head_dim] each) of position pos */
void g4_kv_store(g4_kv_layer *c, int pos, const float *k, const float *v);
/* packed layers: rotate the K and V rows of batch token t (position pos) into bk / bv and encode them
 * into the records of pos */
void g4_kv_store_packed(g4_kv_layer *c, int t, int pos, const float *k, const float *v);
/* the same for one KV head g (k, v: head_dim values); different heads may be stored concurrently */
void g4_kv_store_head(g4_kv_layer *c, int pos, int g, const float *k, const float *v);
void g4_kv_store_packed_head(g4_kv_layer *c, int t, int pos, int g, const float *k, const float *v);
/* f32 / f16 layers: q · K[pos][head], and out += a * V[pos][head] */
float g4_kv_dot_k(const g4_kv_layer *c, int pos, int head, const float *q);
void g4_kv_axpy_v(const g4_kv_layer *c, int pos, int head, float a, float *out);
/* packed layers: the record of (pos, head), and the byte distance between consecutive cells */
static inline const uint8_t *g4_kv_rec_k(const g4_kv_layer *c, int cell, int head) {
    return (const uint8_t *)c->k + ((size_t)cell * (size_t)c->n_head_kv + (size_t)head) * c->k_bytes;
}
static inline const uint8_t *g4_kv_rec_v(const g4_kv_layer *c, int cell, int head) {
    return (const uint8_t *)c->v + ((size_t)cell * (size_t)c->n_head_kv + (size_t)head) * c->v_bytes;
}

#endif
