#include "kv/kv.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "quant/types.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- types and the per-layer policy --------------------------------------------------------------- */

static const char *const kv_names[G4_KV_N_TYPES] = {"f32", "f16", "q8", "tq4", "tq3", "tq2"};
#define KV_TYPE_LIST "f32, f16, q8, tq4, tq3, tq2"

const char *g4_kv_type_name(g4_kv_type t) { return t >= 0 && t < G4_KV_N_TYPES ? kv_names[t] : NULL; }

int g4_kv_type_from_name(const char *name) {
    for (int t = 0; t < G4_KV_N_TYPES; t++)
        if (name && !strcmp(name, kv_names[t])) return t;
    return -1;
}

static int valid_type(g4_kv_type t) { return t >= 0 && t < G4_KV_N_TYPES; }
static int is_packed(g4_kv_type t) { return t >= G4_KV_Q8 && t < G4_KV_N_TYPES; }
static g4_tq_type tq_of(g4_kv_type t) {
    return t == G4_KV_Q8 ? G4_TQ_Q8 : t == G4_KV_TQ4 ? G4_TQ_TQ4 : t == G4_KV_TQ3 ? G4_TQ_TQ3 : G4_TQ_TQ2;
}

/* bytes of one (cell, KV head) row of head dim d; 0 if type t cannot hold it */
static size_t row_bytes(g4_kv_type t, int d) {
    if (t == G4_KV_F32) return (size_t)d * 4;
    if (t == G4_KV_F16) return (size_t)d * 2;
    return g4_tq_record_bytes(tq_of(t), d);
}

static int is_donor(const g4_model *m, int l) {
    for (int j = 0; j < m->n_layer; j++)
        if (j != l && m->layers[j].kv_src == l) return 1;
    return 0;
}

g4_status g4_kv_resolve(const g4_model *m, const g4_ctx_params *p, int l, g4_kv_type *k, g4_kv_type *v,
                        g4_error *err) {
    const g4_layer *ly = &m->layers[l];
    int sel = p->kv_layers == G4_KV_LAYERS_ALL || !ly->is_swa;
    g4_kv_type tk = p->kv_type, tv = p->kv_type;
    if (sel && p->kv_type_k != G4_KV_DEFAULT) tk = p->kv_type_k;
    if (sel && p->kv_type_v != G4_KV_DEFAULT) tv = p->kv_type_v;
    for (int i = 0; i < p->n_kv_override && i < G4_KV_MAX_OVERRIDES; i++) {
        const g4_kv_override *o = &p->kv_override[i];
        if (o->layer == l || (o->layer == G4_KV_DONORS && is_donor(m, l))) {
            if (o->k != G4_KV_DEFAULT) tk = o->k;
            if (o->v != G4_KV_DEFAULT) tv = o->v;
        }
    }
    if (!valid_type(tk) || !valid_type(tv))
        return g4_fail(err, G4_ERR_ARG, "layer %d: unknown KV cache type %d (types: " KV_TYPE_LIST ")", l,
                       (int)(valid_type(tk) ? tv : tk));
    if (is_packed(tk) != is_packed(tv))
        return g4_fail(err, G4_ERR_ARG,
                       "layer %d: K %s with V %s: a layer's K and V must both be f32/f16 or both q8/tq4/tq3/tq2", l,
                       kv_names[tk], kv_names[tv]);
    if (is_packed(tk) && (!row_bytes(tk, ly->head_dim) || !row_bytes(tv, ly->head_dim)))
        return g4_fail(err, G4_ERR_UNSUPPORTED,
                       "layer %d: head dim %d: the q8/tq KV types need a power of two from %d to %d", l, ly->head_dim,
                       G4_TQ_MIN_DIM, G4_TQ_MAX_DIM);
    *k = tk;
    *v = tv;
    return G4_OK;
}

g4_status g4_kv_check(const g4_model *m, const g4_ctx_params *p, g4_error *err) {
    if (p->kv_type != G4_KV_F32 && p->kv_type != G4_KV_F16) {
        if (!g4_kv_type_name(p->kv_type))
            return g4_fail(err, G4_ERR_ARG, "unknown KV cache type %d (types: " KV_TYPE_LIST ")", (int)p->kv_type);
        return g4_fail(err, G4_ERR_ARG, "KV cache kv_type %s: the base type is f32 or f16 (compressed types go in "
                       "kv_type_k / kv_type_v)", g4_kv_type_name(p->kv_type));
    }
    if ((p->kv_type_k != G4_KV_DEFAULT && !valid_type(p->kv_type_k)) ||
        (p->kv_type_v != G4_KV_DEFAULT && !valid_type(p->kv_type_v)))
        return g4_fail(err, G4_ERR_ARG, "unknown KV cache type %d (types: " KV_TYPE_LIST ")",
                       (int)(valid_type(p->kv_type_k) || p->kv_type_k == G4_KV_DEFAULT ? p->kv_type_v : p->kv_type_k));
    if (p->kv_layers != G4_KV_LAYERS_FULL && p->kv_layers != G4_KV_LAYERS_ALL)
        return g4_fail(err, G4_ERR_ARG, "unknown KV layer selection %d (full or all)", (int)p->kv_layers);
    if (p->n_kv_override < 0 || p->n_kv_override > G4_KV_MAX_OVERRIDES)
        return g4_fail(err, G4_ERR_ARG, "%d KV overrides (at most %d)", p->n_kv_override, G4_KV_MAX_OVERRIDES);
    for (int i = 0; i < p->n_kv_override; i++) {
        const g4_kv_override *o = &p->kv_override[i];
        if (o->layer == G4_KV_DONORS) continue;
        if (o->layer < 0 || o->layer >= m->n_layer)
            return g4_fail(err, G4_ERR_ARG, "KV override for layer %d: the model has layers 0 to %d", o->layer,
                           m->n_layer - 1);
        if (m->layers[o->layer].kv_src != o->layer)
            return g4_fail(err, G4_ERR_ARG, "KV override for layer %d: it reads layer %d's cache (override layer %d)",
                           o->layer, m->layers[o->layer].kv_src, m->layers[o->layer].kv_src);
    }
    for (int l = 0; l < m->n_layer; l++) {
        if (m->layers[l].kv_src != l) continue;
        g4_kv_type k, v;
        g4_status s = g4_kv_resolve(m, p, l, &k, &v, err);
        if (s) return s;
    }
    return G4_OK;
}

g4_status g4_kv_layer_types(const g4_model *m, const g4_ctx_params *p, int layer, g4_kv_type *k, g4_kv_type *v,
                            g4_error *err) {
    if (layer < 0 || layer >= m->n_layer)
        return g4_fail(err, G4_ERR_ARG, "layer %d: the model has layers 0 to %d", layer, m->n_layer - 1);
    g4_status s = g4_kv_check(m, p, err);
    if (s) return s;
    return g4_kv_resolve(m, p, m->layers[layer].kv_src, k, v, err);
}

/* ---- the --kv specification ----------------------------------------------------------------------- */

#define KV_ITEMS "items: TYPE, k=TYPE, v=TYPE, layers=full|all, donors=TYPE[/TYPE], N=TYPE[/TYPE]"

/* a type name of len bytes: the type, G4_KV_DEFAULT for "default", -2 if unknown */
static int type_of(const char *a, size_t len) {
    if (len == 7 && !strncmp(a, "default", 7)) return G4_KV_DEFAULT;
    for (int t = 0; t < G4_KV_N_TYPES; t++)
        if (strlen(kv_names[t]) == len && !strncmp(a, kv_names[t], len)) return t;
    return -2;
}

/* "T" or "T/T" -> k, v (v = k without a slash); 0 with the unknown name in bad */
static int parse_pair(const char *s, size_t n, g4_kv_type *k, g4_kv_type *v, char *bad, size_t badn) {
    const char *slash = memchr(s, '/', n);
    size_t nk = slash ? (size_t)(slash - s) : n;
    int tk = type_of(s, nk), tv = slash ? type_of(slash + 1, n - nk - 1) : tk;
    if (tk == -2 || tv == -2) {
        const char *a = tk == -2 ? s : slash + 1;
        size_t len = tk == -2 ? nk : n - nk - 1;
        snprintf(bad, badn, "%.*s", (int)(len < 32 ? len : 32), a);
        return 0;
    }
    *k = (g4_kv_type)tk;
    *v = (g4_kv_type)tv;
    return 1;
}

g4_status g4_kv_parse(const char *spec, g4_ctx_params *p, g4_error *err) {
    if (!spec || !*spec) return g4_fail(err, G4_ERR_ARG, "empty KV cache specification (" KV_ITEMS ")");
    g4_ctx_params q = *p;
    const char *s = spec;
    while (1) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        char bad[40];
        g4_kv_type k, v;
        if (n == 0) return g4_fail(err, G4_ERR_ARG, "empty item in KV cache specification '%s' (" KV_ITEMS ")", spec);
        if (!eq) { /* TYPE or K/V */
            if (!parse_pair(s, n, &k, &v, bad, sizeof bad))
                return g4_fail(err, G4_ERR_ARG, "unknown KV type '%s' in '%s' (types: " KV_TYPE_LIST ")", bad, spec);
            if (!memchr(s, '/', n) && (k == G4_KV_F32 || k == G4_KV_F16)) {
                q.kv_type = k; /* f32 / f16: the base type of every layer */
            } else {
                if (k == G4_KV_DEFAULT || v == G4_KV_DEFAULT || (!memchr(s, '/', n) && !is_packed(k)))
                    return g4_fail(err, G4_ERR_ARG, "bad KV item '%.*s' in '%s' (" KV_ITEMS ")", (int)n, s, spec);
                q.kv_type_k = k;
                q.kv_type_v = v;
            }
        } else {
            size_t kn = (size_t)(eq - s);
            const char *val = eq + 1;
            size_t vn = n - kn - 1;
            if ((kn == 1 && (*s == 'k' || *s == 'v'))) {
                if (memchr(val, '/', vn) || !parse_pair(val, vn, &k, &v, bad, sizeof bad))
                    return g4_fail(err, G4_ERR_ARG, "unknown KV type '%s' in '%s' (types: " KV_TYPE_LIST ")",
                                   memchr(val, '/', vn) ? "with /" : bad, spec);
                if (*s == 'k') q.kv_type_k = k;
                else q.kv_type_v = k;
            } else if (kn == 6 && !strncmp(s, "layers", 6)) {
                if (vn == 4 && !strncmp(val, "full", 4)) q.kv_layers = G4_KV_LAYERS_FULL;
                else if (vn == 3 && !strncmp(val, "all", 3)) q.kv_layers = G4_KV_LAYERS_ALL;
                else return g4_fail(err, G4_ERR_ARG, "layers=%.*s in '%s': full or all", (int)vn, val, spec);
            } else {
                int layer;
                if (kn == 6 && !strncmp(s, "donors", 6)) layer = G4_KV_DONORS;
                else {
                    layer = 0;
                    for (size_t i = 0; i < kn; i++) {
                        if (s[i] < '0' || s[i] > '9' || layer > 100000) {
                            layer = -2;
                            break;
                        }
                        layer = layer * 10 + (s[i] - '0');
                    }
                    if (kn == 0 || layer < 0)
                        return g4_fail(err, G4_ERR_ARG, "bad KV item '%.*s' in '%s' (" KV_ITEMS ")", (int)n, s, spec);
                }
                if (!parse_pair(val, vn, &k, &v, bad, sizeof bad))
                    return g4_fail(err, G4_ERR_ARG, "unknown KV type '%s' in '%s' (types: " KV_TYPE_LIST ")", bad, spec);
                int i = 0;
                while (i < q.n_kv_override && q.kv_override[i].layer != layer) i++;
                if (i == G4_KV_MAX_OVERRIDES)
                    return g4_fail(err, G4_ERR_ARG, "more than %d layer overrides in '%s'", G4_KV_MAX_OVERRIDES, spec);
                q.kv_override[i] = (g4_kv_override){.layer = layer, .k = k, .v = v};
                if (i == q.n_kv_override) q.n_kv_override++;
            }
        }
        if (!e) break;
        s = e + 1;
    }
    *p = q;
    return G4_OK;
}

static const char *name_or_default(g4_kv_type t) { return t == G4_KV_DEFAULT ? "default" : g4_kv_type_name(t) ? g4_kv_type_name(t) : "?"; }

void g4_kv_spec_string(const g4_ctx_params *p, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = 0;
#define PUT(...)                                                                                                       \
    do {                                                                                                               \
        if (n < size) {                                                                                                \
            int w_ = snprintf(buf + n, size - n, "%s", n ? "," : "");                                                  \
            n += w_ > 0 ? (size_t)w_ : 0;                                                                              \
        }                                                                                                              \
        if (n < size) {                                                                                                \
            int w_ = snprintf(buf + n, size - n, __VA_ARGS__);                                                         \
            n += w_ > 0 ? (size_t)w_ : 0;                                                                              \
        }                                                                                                              \
    } while (0)
    if (p->kv_type != G4_KV_F16 || (p->kv_type_k == G4_KV_DEFAULT && p->kv_type_v == G4_KV_DEFAULT))
        PUT("%s", name_or_default(p->kv_type));
    if (p->kv_type_k != G4_KV_DEFAULT && p->kv_type_k == p->kv_type_v && is_packed(p->kv_type_k))
        PUT("%s", name_or_default(p->kv_type_k));
    else {
        if (p->kv_type_k != G4_KV_DEFAULT) PUT("k=%s", name_or_default(p->kv_type_k));
        if (p->kv_type_v != G4_KV_DEFAULT) PUT("v=%s", name_or_default(p->kv_type_v));
    }
    if (p->kv_layers == G4_KV_LAYERS_ALL) PUT("layers=all");
    for (int i = 0; i < p->n_kv_override && i < G4_KV_MAX_OVERRIDES; i++) {
        const g4_kv_override *o = &p->kv_override[i];
        char who[16];
        if (o->layer == G4_KV_DONORS) snprintf(who, sizeof who, "donors");
        else snprintf(who, sizeof who, "%d", o->layer);
        if (o->k == o->v) PUT("%s=%s", who, name_or_default(o->k));
        else PUT("%s=%s/%s", who, name_or_default(o->k), name_or_default(o->v));
    }
#undef PUT
}

/* ---- allocation ----------------------------------------------------------------------------------- */

int g4_kv_cells(const g4_model *m, int l, int n_ctx, int n_extra) {
    const g4_layer *ly = &m->layers[l];
    if (ly->kv_src != l) return 0;
    if (!ly->is_swa) return n_ctx;
    int ring = m->sliding_window - 1 + n_extra;
    return ring < n_ctx ? ring : n_ctx;
}

uint64_t g4_kv_size(const g4_model *m, int n_ctx, int n_extra, const g4_ctx_params *p) {
    if (g4_kv_check(m, p, NULL)) return 0;
    uint64_t total = 0;
    for (int l = 0; l < m->n_layer; l++) {
        const g4_layer *ly = &m->layers[l];
        if (ly->kv_src != l) continue;
        g4_kv_type k, v;
        g4_kv_resolve(m, p, l, &k, &v, NULL);
        total += (uint64_t)g4_kv_cells(m, l, n_ctx, n_extra) * (uint64_t)ly->n_head_kv *
                 (uint64_t)(row_bytes(k, ly->head_dim) + row_bytes(v, ly->head_dim));
    }
    return total;
}

/* the params of (packed type t, head dim d), made once per cache and shared by its layers */
static g4_status kv_params(g4_kv *kv, g4_kv_type t, int d, const g4_tq_params **out, g4_error *err) {
    for (int i = 0; i < kv->n_params; i++)
        if (kv->params[i]->type == tq_of(t) && kv->params[i]->d == d) {
            *out = kv->params[i];
            return G4_OK;
        }
    if (kv->n_params == (int)(sizeof kv->params / sizeof kv->params[0]))
        return g4_fail(err, G4_ERR_UNSUPPORTED, "too many KV cache type and head dim combinations");
    g4_tq_params *p = malloc(sizeof *p);
    if (!p) return g4_fail(err, G4_ERR_NOMEM, "out of memory for the KV cache's quantizer");
    g4_status s = g4_tq_params_init(p, tq_of(t), d, G4_TQ_SEED, err);
    if (s) {
        free(p);
        return s;
    }
    kv->params[kv->n_params++] = p;
    *out = p;
    return G4_OK;
}

g4_status g4_kv_init(g4_kv *kv, const g4_model *m, int n_ctx, int n_extra, int n_batch, const g4_ctx_params *p,
                     g4_error *err) {
    memset(kv, 0, sizeof *kv);
    g4_status s = g4_kv_check(m, p, err);
    if (s) return s;
    kv->n_layer = m->n_layer;
    kv->n_batch = n_batch;
    kv->layers = calloc((size_t)m->n_layer, sizeof *kv->layers);
    if (!kv->layers) return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating the KV cache");
    for (int l = 0; l < m->n_layer; l++) {
        g4_kv_layer *c = &kv->layers[l];
        c->n_cells = g4_kv_cells(m, l, n_ctx, n_extra);
        c->n_head_kv = m->layers[l].n_head_kv;
        c->head_dim = m->layers[l].head_dim;
        if (c->head_dim > G4_KV_MAX_HEAD_DIM) {
            g4_kv_free(kv);
            return g4_fail(err, G4_ERR_UNSUPPORTED, "layer %d has head dim %d; g4's KV cache takes at most %d", l,
                           c->head_dim, G4_KV_MAX_HEAD_DIM);
        }
        if (!c->n_cells) continue;
        g4_kv_resolve(m, p, l, &c->type_k, &c->type_v, NULL);
        c->k_bytes = row_bytes(c->type_k, c->head_dim);
        c->v_bytes = row_bytes(c->type_v, c->head_dim);
        c->packed = is_packed(c->type_k);
        size_t cells = (size_t)c->n_cells * (size_t)c->n_head_kv;
        c->k = malloc(cells * c->k_bytes);
        c->v = malloc(cells * c->v_bytes);
        if (c->packed) {
            size_t nb = (size_t)n_batch * (size_t)c->n_head_kv * (size_t)c->head_dim;
            c->bk = malloc(nb * sizeof(float));
            c->bv = malloc(nb * sizeof(float));
            if ((s = kv_params(kv, c->type_k, c->head_dim, &c->pk, err)) ||
                (s = kv_params(kv, c->type_v, c->head_dim, &c->pv, err))) {
                g4_kv_free(kv);
                return s;
            }
        }
        if (!c->k || !c->v || (c->packed && (!c->bk || !c->bv))) {
            g4_kv_free(kv);
            return g4_fail(err, G4_ERR_NOMEM, "out of memory allocating %zu bytes of KV cache for layer %d",
                           cells * (c->k_bytes + c->v_bytes), l);
        }
        kv->bytes += cells * (c->k_bytes + c->v_bytes);
    }
    return G4_OK;
}

void g4_kv_free(g4_kv *kv) {
    if (kv->layers)
        for (int l = 0; l < kv->n_layer; l++) {
            free(kv->layers[l].k);
            free(kv->layers[l].v);
            free(kv->layers[l].bk);
            free(kv->layers[l].bv);
        }
    for (int i = 0; i < kv->n_params; i++) free(kv->params[i]);
    free(kv->layers);
    memset(kv, 0, sizeof *kv);
}

/* ---- rows ----------------------------------------------------------------------------------------- */

/* Rows go through the weight-type kernels (F16 <-> F32 conversion and F32 dot products), so the cache
 * gets whatever SIMD the types table chose for this CPU. */
static void store_row(g4_kv_type t, void *dst, size_t off, const float *x, size_t n) {
    if (t == G4_KV_F16) g4_type_traits_get(G4_TYPE_F16)->from_float(x, (uint16_t *)dst + off, (int64_t)n);
    else memcpy((float *)dst + off, x, n * sizeof(float));
}

void g4_kv_store(g4_kv_layer *c, int pos, const float *k, const float *v) {
    size_t n = (size_t)c->n_head_kv * (size_t)c->head_dim, off = (size_t)(pos % c->n_cells) * n;
    store_row(c->type_k, c->k, off, k, n);
    store_row(c->type_v, c->v, off, v, n);
}

void g4_kv_store_packed(g4_kv_layer *c, int t, int pos, const float *k, const float *v) {
    const size_t hd = (size_t)c->head_dim;
    for (int g = 0; g < c->n_head_kv; g++) g4_kv_store_packed_head(c, t, pos, g, k + (size_t)g * hd, v + (size_t)g * hd);
}

void g4_kv_store_head(g4_kv_layer *c, int pos, int g, const float *k, const float *v) {
    size_t n = (size_t)c->head_dim,
           off = ((size_t)(pos % c->n_cells) * (size_t)c->n_head_kv + (size_t)g) * (size_t)c->head_dim;
    store_row(c->type_k, c->k, off, k, n);
    store_row(c->type_v, c->v, off, v, n);
}

void g4_kv_store_packed_head(g4_kv_layer *c, int t, int pos, int g, const float *k, const float *v) {
    const int hd = c->head_dim, cell = pos % c->n_cells;
    float *bk = c->bk + ((size_t)t * c->n_head_kv + (size_t)g) * (size_t)hd;
    float *bv = c->bv + ((size_t)t * c->n_head_kv + (size_t)g) * (size_t)hd;
    c->pk->kern->rotate(c->pk, k, bk);
    c->pv->kern->rotate(c->pv, v, bv);
    c->pk->kern->encode_rotated(c->pk, bk, (uint8_t *)g4_kv_rec_k(c, cell, g));
    c->pv->kern->encode_rotated(c->pv, bv, (uint8_t *)g4_kv_rec_v(c, cell, g));
}

float g4_kv_dot_k(const g4_kv_layer *c, int pos, int head, const float *q) {
    size_t off = ((size_t)(pos % c->n_cells) * (size_t)c->n_head_kv + (size_t)head) * (size_t)c->head_dim;
    if (c->type_k == G4_KV_F16) return g4_type_traits_get(G4_TYPE_F16)->dot_f32((const uint16_t *)c->k + off, q, c->head_dim);
    return g4_type_traits_get(G4_TYPE_F32)->dot_f32((const float *)c->k + off, q, c->head_dim);
}

void g4_kv_axpy_v(const g4_kv_layer *c, int pos, int head, float a, float *out) {
    size_t off = ((size_t)(pos % c->n_cells) * (size_t)c->n_head_kv + (size_t)head) * (size_t)c->head_dim;
    if (c->type_v == G4_KV_F16) g4_axpy_f16_fast(a, (const uint16_t *)c->v + off, out, c->head_dim);
    else g4_axpy_f32_fast(a, (const float *)c->v + off, out, c->head_dim);
}
