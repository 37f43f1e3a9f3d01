/* KV cache: one K and one V buffer per layer that owns a cache. Full-attention layers hold every
 * position up to n_ctx; sliding layers hold a ring of (window - 1 + n_extra) cells, so their memory does
 * not grow with the context: a batch of up to n_batch queries needs window - 1 + n_batch cells, and the
 * caller adds a margin that lets it go back a few tokens (g4_ctx_truncate). Layers that share
 * another layer's KV own nothing. Element type f32 or f16; layout [cell][kv head][head_dim]. */
#ifndef G4_KV_H
#define G4_KV_H

#include "g4.h"
#include <stdint.h>

struct g4_model;

#define G4_KV_MAX_HEAD_DIM 1024

typedef struct g4_kv_layer {
    int n_cells;      /* positions held; position p lives in cell p % n_cells */
    int n_head_kv, head_dim;
    g4_kv_type type;
    void *k, *v;
} g4_kv_layer;

typedef struct g4_kv {
    int n_layer;
    g4_kv_layer *layers; /* indexed by layer; n_cells == 0 for layers without a cache */
    uint64_t bytes;
} g4_kv;

/* cells a layer's cache holds for n_ctx tokens (n_extra: ring cells beyond the window, >= the batch) */
int g4_kv_cells(const struct g4_model *m, int layer, int n_ctx, int n_extra);
uint64_t g4_kv_size(const struct g4_model *m, int n_ctx, int n_extra, g4_kv_type type);

g4_status g4_kv_init(g4_kv *kv, const struct g4_model *m, int n_ctx, int n_extra, g4_kv_type type, g4_error *err);
void g4_kv_free(g4_kv *kv);

/* store the K and V rows ([n_head_kv * head_dim] each) of position pos */
void g4_kv_store(g4_kv_layer *c, int pos, const float *k, const float *v);
/* q · K[pos][head] */
float g4_kv_dot_k(const g4_kv_layer *c, int pos, int head, const float *q);
/* out += a * V[pos][head] */
void g4_kv_axpy_v(const g4_kv_layer *c, int pos, int head, float a, float *out);

#endif
