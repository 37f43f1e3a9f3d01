#include "kv/kv.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "quant/types.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static size_t elem_size(g4_kv_type t) { return t == G4_KV_F16 ? 2 : 4; }

int g4_kv_cells(const g4_model *m, int l, int n_ctx, int n_extra) {
    const g4_layer *ly = &m->layers[l];
    if (ly->kv_src != l) return 0;
    if (!ly->is_swa) return n_ctx;
    int ring = m->sliding_window - 1 + n_extra;
    return ring < n_ctx ? ring : n_ctx;
}

uint64_t g4_kv_size(const g4_model *m, int n_ctx, int n_extra, g4_kv_type type) {
    uint64_t total = 0;
    for (int l = 0; l < m->n_layer; l++) {
        const g4_layer *ly = &m->layers[l];
        total += 2ull * (uint64_t)g4_kv_cells(m, l, n_ctx, n_extra) * (uint64_t)ly->n_head_kv *
                 (uint64_t)ly->head_dim * elem_size(type);
    }
    return total;
}

g4_status g4_kv_init(g4_kv *kv, const g4_model *m, int n_ctx, int n_extra, g4_kv_type type, g4_error *err) {
    memset(kv, 0, sizeof *kv);
    kv->n_layer = m->n_layer;
    kv->layers = calloc((size_t)m->n_layer, sizeof *kv->layers);
    if (!kv->layers) return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating the KV cache");
    for (int l = 0; l < m->n_layer; l++) {
        g4_kv_layer *c = &kv->layers[l];
        c->n_cells = g4_kv_cells(m, l, n_ctx, n_extra);
        c->n_head_kv = m->layers[l].n_head_kv;
        c->head_dim = m->layers[l].head_dim;
        c->type = type;
        if (c->head_dim > G4_KV_MAX_HEAD_DIM) {
            g4_kv_free(kv);
            return g4_fail(err, G4_ERR_UNSUPPORTED, "layer %d has head dim %d; g4's KV cache takes at most %d", l,
                           c->head_dim, G4_KV_MAX_HEAD_DIM);
        }
        if (!c->n_cells) continue;
        size_t bytes = (size_t)c->n_cells * (size_t)c->n_head_kv * (size_t)c->head_dim * elem_size(type);
        c->k = malloc(bytes);
        c->v = malloc(bytes);
        if (!c->k || !c->v) {
            g4_kv_free(kv);
            return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating %zu bytes of KV cache for layer %d", 2 * bytes, l);
        }
        kv->bytes += 2 * bytes;
    }
    return G4_OK;
}

void g4_kv_free(g4_kv *kv) {
    if (!kv->layers) return;
    for (int l = 0; l < kv->n_layer; l++) {
        free(kv->layers[l].k);
        free(kv->layers[l].v);
    }
    free(kv->layers);
    memset(kv, 0, sizeof *kv);
}

/* Rows go through the weight-type kernels (F16 <-> F32 conversion and F32 dot products), so the cache
 * gets whatever SIMD the types table chose for this CPU. */
void g4_kv_store(g4_kv_layer *c, int pos, const float *k, const float *v) {
    size_t n = (size_t)c->n_head_kv * (size_t)c->head_dim, off = (size_t)(pos % c->n_cells) * n;
    if (c->type == G4_KV_F16) {
        const g4_type_traits *f16 = g4_type_traits_get(G4_TYPE_F16);
        f16->from_float(k, (uint16_t *)c->k + off, (int64_t)n);
        f16->from_float(v, (uint16_t *)c->v + off, (int64_t)n);
    } else {
        memcpy((float *)c->k + off, k, n * sizeof(float));
        memcpy((float *)c->v + off, v, n * sizeof(float));
    }
}

float g4_kv_dot_k(const g4_kv_layer *c, int pos, int head, const float *q) {
    size_t off = ((size_t)(pos % c->n_cells) * (size_t)c->n_head_kv + (size_t)head) * (size_t)c->head_dim;
    const g4_type_traits *f32 = g4_type_traits_get(G4_TYPE_F32);
    if (c->type == G4_KV_F16) return g4_type_traits_get(G4_TYPE_F16)->dot_f32((const uint16_t *)c->k + off, q, c->head_dim);
    return f32->dot_f32((const float *)c->k + off, q, c->head_dim);
}

void g4_kv_axpy_v(const g4_kv_layer *c, int pos, int head, float a, float *out) {
    size_t off = ((size_t)(pos % c->n_cells) * (size_t)c->n_head_kv + (size_t)head) * (size_t)c->head_dim;
    if (c->type == G4_KV_F16) g4_axpy_f16_fast(a, (const uint16_t *)c->v + off, out, c->head_dim);
    else g4_axpy_f32_fast(a, (const float *)c->v + off, out, c->head_dim);
}
