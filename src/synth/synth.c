/* `g4 synth`: random-weight Gemma 4 GGUF files (see synth.h).
 *
 * Layout and names follow llama.cpp's gemma4 architecture (docs/gemma4-architecture.md §3) and the oracle
 * pack's micro models (shared/oracle/README.md §1), whose weight recipe this copies:
 *   matrices                 N(0, 0.02)
 *   token_embd               N(0, 0.02) * per-row log-normal factor exp(0.5 * N(0,1))  (peaked logits)
 *   norm weights             c * (1 + 0.05 N(0,1)) with c = 1, except
 *     attn_q_norm            c = 1/sqrt(head_dim)  (attention scale is 1.0: keeps scores ~N(0,1))
 *     output_norm            c chosen so that logits have rms ~4 (see output_norm_centre)
 *   layer_output_scale       U(0.6, 1.0)
 *   router ffn_gate_inp      N(0, 2) (decisive routing); ffn_gate_inp.scale, ffn_down_exps.scale U(0.5, 1.5)
 *   experts                  sqrt(0.9) * common + sqrt(0.1) * own (correlated, like trained experts)
 *   rope_freqs               1 for the first 25% of the frequency pairs of the full head dim, 1e30 after
 *
 * Random numbers: every row of every tensor has its own stream (splitmix64 seeded from the model seed, the
 * tensor name and the row index), so the data does not depend on the chunking of the writer. The bulk
 * normal deviates are Irwin-Hall sums of four 16-bit uniforms (mean 0, variance 1, |x| <= 3.46): one
 * 64-bit draw per value, plenty for random weights and fast enough to stream billions of values.
 */
#include "synth/synth.h"
#include "gguf/gguf.h"
#include "quant/types.h"
#include "util/util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configurations --------------------------------------------------------------------------------- */

/* Full size: the official configs (architecture doc §1). */
static const g4_synth_config full_cfg[G4_SYNTH_N_VARIANTS] = {
    /* name  vocab  embd L  H  kvS kvF hdS hdF ff     dw shared P  win  per keqv E  Eu Fe  ctx */
    {"e2b", 262144, 1536, 35, 8, 1, 1, 256, 512, 6144, 1, 20, 256, 512, 5, 0, 0, 0, 0, 131072, 1e6f, 1e4f, 30.0f, 1e-6f},
    {"e4b", 262144, 2560, 42, 8, 2, 2, 256, 512, 10240, 0, 18, 256, 512, 6, 0, 0, 0, 0, 131072, 1e6f, 1e4f, 30.0f, 1e-6f},
    {"26b-a4b", 262144, 2816, 30, 16, 8, 2, 256, 512, 2112, 0, 0, 0, 1024, 6, 1, 128, 8, 704, 262144, 1e6f, 1e4f, 30.0f, 1e-6f},
    {"31b", 262144, 5376, 60, 32, 16, 4, 256, 512, 21504, 0, 0, 0, 1024, 6, 1, 0, 0, 0, 262144, 1e6f, 1e4f, 30.0f, 1e-6f},
};

/* Tiny: the oracle pack's micro models (same shapes), which run in milliseconds. */
static const g4_synth_config tiny_cfg[G4_SYNTH_N_VARIANTS] = {
    {"e2b", 512, 128, 10, 4, 1, 1, 16, 32, 32, 1, 5, 32, 16, 5, 0, 0, 0, 0, 4096, 1e6f, 1e4f, 30.0f, 1e-6f},
    {"e4b", 512, 128, 12, 4, 2, 2, 16, 32, 32, 0, 6, 32, 16, 6, 0, 0, 0, 0, 4096, 1e6f, 1e4f, 30.0f, 1e-6f},
    {"26b-a4b", 512, 256, 6, 4, 2, 1, 16, 32, 32, 0, 0, 0, 16, 6, 1, 4, 2, 32, 4096, 1e6f, 1e4f, 30.0f, 1e-6f},
    {"31b", 512, 256, 6, 4, 2, 1, 32, 64, 32, 0, 0, 0, 16, 6, 1, 0, 0, 0, 4096, 1e6f, 1e4f, 30.0f, 1e-6f},
};

g4_status g4_synth_get_config(g4_synth_variant v, g4_synth_scale s, g4_synth_config *cfg, g4_error *err) {
    if ((int)v < 0 || v >= G4_SYNTH_N_VARIANTS) return g4_fail(err, G4_ERR_ARG, "synth: unknown variant %d", (int)v);
    if (s != G4_SYNTH_TINY && s != G4_SYNTH_FULL) return g4_fail(err, G4_ERR_ARG, "synth: unknown scale %d", (int)s);
    *cfg = s == G4_SYNTH_FULL ? full_cfg[v] : tiny_cfg[v];
    return G4_OK;
}

int g4_synth_layer_is_swa(const g4_synth_config *c, int l) { return l % c->swa_period != c->swa_period - 1; }
int g4_synth_layer_owns_kv(const g4_synth_config *c, int l) { return l < c->n_layer - c->n_kv_shared; }
int g4_synth_layer_n_ff(const g4_synth_config *c, int l) {
    return c->n_ff * (c->double_wide && !g4_synth_layer_owns_kv(c, l) ? 2 : 1);
}
int g4_synth_layer_n_head_kv(const g4_synth_config *c, int l) {
    return g4_synth_layer_is_swa(c, l) ? c->n_head_kv_swa : c->n_head_kv_full;
}
int g4_synth_layer_head_dim(const g4_synth_config *c, int l) {
    return g4_synth_layer_is_swa(c, l) ? c->head_dim_swa : c->head_dim_full;
}

int g4_synth_variant_from_name(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "e2b") || !strcmp(s, "E2B")) return G4_SYNTH_E2B;
    if (!strcmp(s, "e4b") || !strcmp(s, "E4B")) return G4_SYNTH_E4B;
    if (!strcmp(s, "26b-a4b") || !strcmp(s, "26B-A4B") || !strcmp(s, "26b") || !strcmp(s, "moe")) return G4_SYNTH_26B_A4B;
    if (!strcmp(s, "31b") || !strcmp(s, "31B") || !strcmp(s, "dense")) return G4_SYNTH_31B;
    return -1;
}

int g4_synth_scale_from_name(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "tiny")) return G4_SYNTH_TINY;
    if (!strcmp(s, "full")) return G4_SYNTH_FULL;
    return -1;
}

/* ---- random numbers --------------------------------------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash_str(const char *s) { /* FNV-1a 64 */
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
    return h;
}

/* stream of row `row` of a tensor with seed `tseed` */
static inline uint64_t row_stream(uint64_t tseed, uint64_t row) {
    uint64_t s = tseed ^ (row * 0xD1B54A32D192ED03ull);
    splitmix64(&s);
    return s;
}

/* approximately N(0,1): Irwin-Hall of four 16-bit uniforms, scaled to unit variance */
static inline float fast_normal(uint64_t *s) {
    uint64_t x = splitmix64(s);
    int32_t sum = (int32_t)(x & 0xffff) + (int32_t)((x >> 16) & 0xffff) + (int32_t)((x >> 32) & 0xffff) +
                  (int32_t)(x >> 48);
    /* variance of the sum: 4 * (65536^2 - 1) / 12 */
    return (float)(sum - 131070) * (float)(1.7320508075688772 / 65536.0);
}

static inline double uniform01(uint64_t *s) { return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

/* exact N(0,1) (Box-Muller), for the few per-row / per-tensor scalars */
static double exact_normal(uint64_t *s) {
    double u1 = uniform01(s), u2 = uniform01(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- tensor plan ------------------------------------------------------------------------------------ */

typedef enum {
    K_NORMAL,     /* N(0, a) */
    K_EMBD,       /* N(0, a) * exp(0.5 N(0,1)) per row */
    K_NORM,       /* a * (1 + 0.05 N(0,1)) */
    K_UNIFORM,    /* U(a, b) */
    K_ROPE_FREQS, /* 1 for the first `b` values, 1e30 after */
    K_EXPERTS,    /* N(0, a) correlated over ne[2]: sqrt(.9) common(row within expert) + sqrt(.1) own */
} init_kind;

typedef struct tspec {
    char name[64];
    int type, n_dims;
    int64_t ne[4];
    init_kind kind;
    double a, b;
    uint64_t seed;
} tspec;

typedef struct synth_ctx {
    const g4_synth_params *p;
    g4_synth_config cfg;
    tspec *t;
    int n_t, cap_t;
    int want_type;
    float *scratch;      /* one row of floats */
    int64_t scratch_n;
    float *common;       /* K_EXPERTS: the shared part of tensor common_idx, [ne1][ne0], computed once */
    size_t common_cap;
    int common_idx;
    g4_status err;       /* planning error */
    char err_msg[200];
} synth_ctx;

static int type_is_native(int type) { return type == G4_TYPE_F32 || type == G4_TYPE_F16 || type == G4_TYPE_BF16; }

/* Type of a matrix with rows of ne0 values, as llama-quantize --pure would choose it. */
static int pick_type(int want, int64_t ne0) {
    if (type_is_native(want)) return want; /* block size 1 */
    const g4_type_traits *tr = g4_type_traits_get(want);
    if (tr && ne0 % tr->blck == 0) return want;
    int fb = G4_TYPE_F16;
    switch (want) {
    case G4_TYPE_Q4_K: fb = G4_TYPE_Q5_0; break;
    case G4_TYPE_Q5_K: fb = G4_TYPE_Q5_1; break;
    case G4_TYPE_Q6_K: fb = G4_TYPE_Q8_0; break;
    default: break;
    }
    const g4_type_traits *ft = g4_type_traits_get(fb);
    if (fb != G4_TYPE_F16 && (!ft || !ft->from_float || ne0 % ft->blck != 0)) fb = G4_TYPE_F16;
    return fb;
}

/* add a tensor; `quant` = may take the requested weight type (else F32) */
static void add(synth_ctx *c, const char *name, int quant, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                init_kind kind, double a, double b) {
    if (c->err) return;
    if (c->n_t == c->cap_t) {
        int cap = c->cap_t ? 2 * c->cap_t : 256;
        tspec *p = realloc(c->t, (size_t)cap * sizeof *p);
        if (!p) {
            c->err = G4_ERR_NOMEM;
            snprintf(c->err_msg, sizeof c->err_msg, "synth: out of memory");
            return;
        }
        c->t = p;
        c->cap_t = cap;
    }
    tspec *t = &c->t[c->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = 1;
    t->kind = kind;
    t->a = a;
    t->b = b;
    t->type = quant && n_dims >= 2 ? pick_type(c->want_type, ne0) : G4_TYPE_F32;
    t->seed = hash_str(name) ^ (c->p->seed * 0x9E3779B97F4A7C15ull);
    uint64_t s = t->seed;
    t->seed = splitmix64(&s);
    if (ne0 > c->scratch_n) c->scratch_n = ne0;
}

/* output_norm centre: logit_t = c * E_t . rmsnorm(x), E_t ~ N(0, 0.02^2 s_t^2) with E[s^2] = exp(0.5)
 * for the log-normal row factor, so rms(logits) = c * 0.02 * sqrt(D) * exp(0.25); aim at 4. */
static double output_norm_centre(int n_embd) { return 4.0 / (0.02 * sqrt((double)n_embd) * exp(0.25)); }

static void plan(synth_ctx *c) {
    const g4_synth_config *g = &c->cfg;
    const int D = g->n_embd, V = g->n_vocab, L = g->n_layer, P = g->n_embd_per_layer;
    const double sd = 0.02;
    char n[64];
    add(c, "token_embd.weight", 1, 2, D, V, 1, K_EMBD, sd, 0);
    if (P > 0) {
        add(c, "per_layer_token_embd.weight", 1, 2, (int64_t)L * P, V, 1, K_NORMAL, sd, 0);
        add(c, "per_layer_model_proj.weight", 0, 2, D, (int64_t)L * P, 1, K_NORMAL, sd, 0);
        add(c, "per_layer_proj_norm.weight", 0, 1, P, 1, 1, K_NORM, 1.0, 0);
    }
    add(c, "output_norm.weight", 0, 1, D, 1, 1, K_NORM, output_norm_centre(D), 0);
    /* proportional RoPE on full layers: int(0.25 * hd / 2) rotating pairs of hd/2 */
    add(c, "rope_freqs.weight", 0, 1, g->head_dim_full / 2, 1, 1, K_ROPE_FREQS, 0, (int)(g->head_dim_full * 0.25 / 2));
    for (int l = 0; l < L; l++) {
        const int swa = g4_synth_layer_is_swa(g, l), owns = g4_synth_layer_owns_kv(g, l);
        const int hd = g4_synth_layer_head_dim(g, l), nkv = g4_synth_layer_n_head_kv(g, l);
        const int ff = g4_synth_layer_n_ff(g, l);
#define T(suffix) (snprintf(n, sizeof n, "blk.%d." suffix, l), n)
        add(c, T("attn_norm.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
        add(c, T("attn_q.weight"), 1, 2, D, (int64_t)g->n_head * hd, 1, K_NORMAL, sd, 0);
        if (owns) {
            add(c, T("attn_k.weight"), 1, 2, D, (int64_t)nkv * hd, 1, K_NORMAL, sd, 0);
            if (!(g->k_eq_v && !swa)) add(c, T("attn_v.weight"), 1, 2, D, (int64_t)nkv * hd, 1, K_NORMAL, sd, 0);
        }
        add(c, T("attn_output.weight"), 1, 2, (int64_t)g->n_head * hd, D, 1, K_NORMAL, sd, 0);
        add(c, T("attn_q_norm.weight"), 0, 1, hd, 1, 1, K_NORM, 1.0 / sqrt((double)hd), 0);
        if (owns) add(c, T("attn_k_norm.weight"), 0, 1, hd, 1, 1, K_NORM, 1.0, 0);
        add(c, T("post_attention_norm.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
        add(c, T("ffn_norm.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
        add(c, T("ffn_gate.weight"), 1, 2, D, ff, 1, K_NORMAL, sd, 0);
        add(c, T("ffn_up.weight"), 1, 2, D, ff, 1, K_NORMAL, sd, 0);
        add(c, T("ffn_down.weight"), 1, 2, ff, D, 1, K_NORMAL, sd, 0);
        add(c, T("post_ffw_norm.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
        if (g->n_expert > 0) {
            const int E = g->n_expert, F = g->n_ff_exp;
            add(c, T("ffn_gate_inp.weight"), 0, 2, D, E, 1, K_NORMAL, 2.0, 0); /* router: stays F32 */
            add(c, T("ffn_gate_inp.scale"), 0, 1, D, 1, 1, K_UNIFORM, 0.5, 1.5);
            add(c, T("pre_ffw_norm_2.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
            add(c, T("post_ffw_norm_1.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
            add(c, T("post_ffw_norm_2.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
            add(c, T("ffn_gate_up_exps.weight"), 1, 3, D, 2 * (int64_t)F, E, K_EXPERTS, sd, 0); /* gate rows first */
            add(c, T("ffn_down_exps.weight"), 1, 3, F, D, E, K_EXPERTS, sd, 0);
            add(c, T("ffn_down_exps.scale"), 0, 1, E, 1, 1, K_UNIFORM, 0.5, 1.5);
        }
        if (P > 0) {
            add(c, T("inp_gate.weight"), 1, 2, D, P, 1, K_NORMAL, sd, 0);
            add(c, T("proj.weight"), 1, 2, P, D, 1, K_NORMAL, sd, 0);
            add(c, T("post_norm.weight"), 0, 1, D, 1, 1, K_NORM, 1.0, 0);
        }
        add(c, T("layer_output_scale.weight"), 0, 1, 1, 1, 1, K_UNIFORM, 0.6, 1.0);
#undef T
    }
}

/* ---- data ------------------------------------------------------------------------------------------- */

/* seed of the common (expert-independent) part of a K_EXPERTS tensor */
static uint64_t common_seed(const tspec *t) { return t->seed ^ 0xC0FFEE1234567ull; }

/* float values of row `row` of tensor t into out[0 .. ne0); `common` = the K_EXPERTS shared part */
static void gen_row(const tspec *t, int64_t row, const float *common, float *out) {
    const int64_t n = t->ne[0];
    uint64_t s = row_stream(t->seed, (uint64_t)row);
    switch (t->kind) {
    case K_NORMAL: {
        const float sd = (float)t->a;
        for (int64_t i = 0; i < n; i++) out[i] = sd * fast_normal(&s);
        break;
    }
    case K_EMBD: {
        const float sd = (float)(t->a * exp(0.5 * exact_normal(&s)));
        for (int64_t i = 0; i < n; i++) out[i] = sd * fast_normal(&s);
        break;
    }
    case K_NORM:
        for (int64_t i = 0; i < n; i++) out[i] = (float)(t->a * (1.0 + 0.05 * exact_normal(&s)));
        break;
    case K_UNIFORM:
        for (int64_t i = 0; i < n; i++) out[i] = (float)(t->a + (t->b - t->a) * uniform01(&s));
        break;
    case K_ROPE_FREQS:
        for (int64_t i = 0; i < n; i++) out[i] = i < (int64_t)t->b ? 1.0f : 1e30f;
        break;
    case K_EXPERTS: {
        /* rows are (expert e, row j within the expert): sqrt(.9) * common[j] + sqrt(.1) * own */
        const float *cj = common + (size_t)(row % t->ne[1]) * (size_t)n;
        const float wc = (float)(t->a * sqrt(0.9)), wo = (float)(t->a * sqrt(0.1));
        for (int64_t i = 0; i < n; i++) out[i] = wc * cj[i] + wo * fast_normal(&s);
        break;
    }
    }
}

/* the shared part of the experts of tensor `index`: ne1 rows of N(0,1), one stream per row */
static g4_status prepare_common(synth_ctx *c, int index, g4_error *err) {
    const tspec *t = &c->t[index];
    if (c->common_idx == index) return G4_OK;
    const size_t n = (size_t)t->ne[0] * (size_t)t->ne[1];
    if (n > c->common_cap) {
        float *p = realloc(c->common, n * sizeof *p);
        if (!p) return g4_fail(err, G4_ERR_NOMEM, "synth: out of memory for the experts of %s", t->name);
        c->common = p;
        c->common_cap = n;
    }
    for (int64_t j = 0; j < t->ne[1]; j++) {
        uint64_t s = row_stream(common_seed(t), (uint64_t)j);
        float *row = c->common + (size_t)j * (size_t)t->ne[0];
        for (int64_t i = 0; i < t->ne[0]; i++) row[i] = fast_normal(&s);
    }
    c->common_idx = index;
    return G4_OK;
}

static g4_status fill(void *user, int index, const char *name, int type, const int64_t *ne, int64_t row0,
                      int64_t nrows, void *dst, uint64_t nbytes, g4_error *err) {
    synth_ctx *c = user;
    const tspec *t = &c->t[index];
    if (strcmp(t->name, name) != 0 || t->type != type || t->ne[0] != ne[0])
        return g4_fail(err, G4_ERR_ARG, "synth: writer asked for tensor %d '%s', planned '%s'", index, name, t->name);
    const int64_t n = ne[0];
    const size_t rb = g4_type_row_bytes(type, n);
    if (rb == 0 || (uint64_t)nrows * rb != nbytes)
        return g4_fail(err, G4_ERR_ARG, "synth: tensor '%s': %" PRIu64 " bytes for %" PRId64 " rows", name, nbytes, nrows);
    const g4_type_traits *tr = type_is_native(type) ? NULL : g4_type_traits_get(type);
    if (!type_is_native(type) && (!tr || !tr->from_float))
        return g4_fail(err, G4_ERR_UNSUPPORTED, "synth: no quantizer for type %d", type);
    if (t->kind == K_EXPERTS) {
        g4_status st = prepare_common(c, index, err);
        if (st) return st;
    }
    float *f = c->scratch;
    uint8_t *d = dst;
    for (int64_t r = 0; r < nrows; r++, d += rb) {
        gen_row(t, row0 + r, c->common, f);
        switch (type) {
        case G4_TYPE_F32: memcpy(d, f, (size_t)n * sizeof(float)); break;
        case G4_TYPE_F16:
            for (int64_t i = 0; i < n; i++) {
                uint16_t h = g4_fp32_to_fp16(f[i]);
                memcpy(d + 2 * i, &h, 2);
            }
            break;
        case G4_TYPE_BF16:
            for (int64_t i = 0; i < n; i++) {
                uint16_t h = g4_fp32_to_bf16(f[i]);
                memcpy(d + 2 * i, &h, 2);
            }
            break;
        default: tr->from_float(f, d, n); break;
        }
    }
    return G4_OK;
}

static void progress_cb(void *user, uint64_t done, uint64_t total) {
    synth_ctx *c = user;
    if (c->p->progress) c->p->progress(c->p->progress_user, done, total);
}

/* general.file_type (llama_ftype) of a single-type file */
static int file_type_of(int type) {
    switch (type) {
    case G4_TYPE_F32: return 0;
    case G4_TYPE_F16: return 1;
    case G4_TYPE_Q4_0: return 2;
    case G4_TYPE_Q4_1: return 3;
    case G4_TYPE_Q8_0: return 7;
    case G4_TYPE_Q5_0: return 8;
    case G4_TYPE_Q5_1: return 9;
    case G4_TYPE_Q4_K: return 14; /* Q4_K_S */
    case G4_TYPE_Q5_K: return 16; /* Q5_K_S */
    case G4_TYPE_Q6_K: return 18;
    case G4_TYPE_BF16: return 32;
    default: return -1;
    }
}

static const char chat_template[] =
    "{{ bos_token }}{% for message in messages %}<|turn>{{ message['role'] }}\n{{ message['content'] | trim }}"
    "<turn|>\n{% endfor %}{% if add_generation_prompt %}<|turn>model\n{% endif %}";

static void put_metadata(gguf_writer *w, const synth_ctx *c, const g4_synth_vocab *v, const int32_t *ff_arr,
                         const int32_t *kv_arr, const uint8_t *swa_arr) {
    const g4_synth_config *g = &c->cfg;
    char name[96];
    snprintf(name, sizeof name, "g4-synth-%s-%s", g->name, c->p->scale == G4_SYNTH_FULL ? "full" : "tiny");
    gguf_w_str(w, "general.architecture", "gemma4");
    gguf_w_str(w, "general.name", name);
    int ft = file_type_of(c->want_type);
    if (ft >= 0) gguf_w_u32(w, "general.file_type", (uint32_t)ft);
    gguf_w_u32(w, "general.quantization_version", 2);
    gguf_w_u32(w, "gemma4.context_length", (uint32_t)g->n_ctx_train);
    gguf_w_u32(w, "gemma4.embedding_length", (uint32_t)g->n_embd);
    gguf_w_u32(w, "gemma4.block_count", (uint32_t)g->n_layer);
    if (g->double_wide)
        gguf_w_arr(w, "gemma4.feed_forward_length", GGUF_INT32, ff_arr, (uint64_t)g->n_layer);
    else
        gguf_w_u32(w, "gemma4.feed_forward_length", (uint32_t)g->n_ff);
    gguf_w_u32(w, "gemma4.attention.head_count", (uint32_t)g->n_head);
    if (g->n_head_kv_full != g->n_head_kv_swa)
        gguf_w_arr(w, "gemma4.attention.head_count_kv", GGUF_INT32, kv_arr, (uint64_t)g->n_layer);
    else
        gguf_w_u32(w, "gemma4.attention.head_count_kv", (uint32_t)g->n_head_kv_swa);
    gguf_w_u32(w, "gemma4.attention.key_length", (uint32_t)g->head_dim_full);
    gguf_w_u32(w, "gemma4.attention.value_length", (uint32_t)g->head_dim_full);
    gguf_w_u32(w, "gemma4.attention.key_length_swa", (uint32_t)g->head_dim_swa);
    gguf_w_u32(w, "gemma4.attention.value_length_swa", (uint32_t)g->head_dim_swa);
    gguf_w_f32(w, "gemma4.attention.layer_norm_rms_epsilon", g->rms_eps);
    gguf_w_u32(w, "gemma4.attention.sliding_window", (uint32_t)g->sliding_window);
    gguf_w_arr(w, "gemma4.attention.sliding_window_pattern", GGUF_BOOL, swa_arr, (uint64_t)g->n_layer);
    gguf_w_u32(w, "gemma4.attention.shared_kv_layers", (uint32_t)g->n_kv_shared);
    gguf_w_u32(w, "gemma4.embedding_length_per_layer_input", (uint32_t)g->n_embd_per_layer);
    gguf_w_f32(w, "gemma4.rope.freq_base", g->rope_base);
    gguf_w_f32(w, "gemma4.rope.freq_base_swa", g->rope_base_swa);
    gguf_w_u32(w, "gemma4.rope.dimension_count", (uint32_t)g->head_dim_full);
    gguf_w_u32(w, "gemma4.rope.dimension_count_swa", (uint32_t)g->head_dim_swa);
    gguf_w_f32(w, "gemma4.final_logit_softcapping", g->final_logit_softcap);
    if (g->n_expert > 0) {
        gguf_w_u32(w, "gemma4.expert_count", (uint32_t)g->n_expert);
        gguf_w_u32(w, "gemma4.expert_used_count", (uint32_t)g->n_expert_used);
        gguf_w_u32(w, "gemma4.expert_feed_forward_length", (uint32_t)g->n_ff_exp);
    }
    gguf_w_str(w, "tokenizer.ggml.model", "gemma4");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, (uint64_t)v->n);
    gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, v->scores, (uint64_t)v->n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, v->types, (uint64_t)v->n);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (uint64_t)v->n_merges);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 2);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 1);
    gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 3);
    gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 0);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 0);
    gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    gguf_w_str(w, "tokenizer.chat_template", chat_template);
}

g4_status g4_synth_ex(const g4_synth_params *p, uint64_t *n_tensors, uint64_t *file_bytes, g4_error *err) {
    if (!p) return g4_fail(err, G4_ERR_ARG, "synth: no parameters");
    if (!p->dry_run && (!p->out || !*p->out)) return g4_fail(err, G4_ERR_ARG, "synth: no output path");
    synth_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.common_idx = -1;
    g4_status st = g4_synth_get_config(p->variant, p->scale, &c.cfg, err);
    if (st) return st;
    c.want_type = p->type;
    if (!type_is_native(p->type)) {
        const g4_type_traits *tr = g4_type_traits_get(p->type);
        if (!tr) return g4_fail(err, G4_ERR_ARG, "synth: unknown weight type %d", p->type);
        if (!tr->is_quantized || !tr->from_float || !tr->dot_f32)
            return g4_fail(err, G4_ERR_UNSUPPORTED, "synth: %s is not a weight type g4 can quantize", tr->name);
    }

    const int L = c.cfg.n_layer;
    g4_synth_vocab vocab;
    memset(&vocab, 0, sizeof vocab);
    gguf_writer *w = NULL;
    int32_t *ff_arr = malloc((size_t)L * sizeof *ff_arr), *kv_arr = malloc((size_t)L * sizeof *kv_arr);
    uint8_t *swa_arr = malloc((size_t)L);
    if (!ff_arr || !kv_arr || !swa_arr) {
        st = g4_fail(err, G4_ERR_NOMEM, "synth: out of memory");
        goto out;
    }
    for (int l = 0; l < L; l++) {
        ff_arr[l] = g4_synth_layer_n_ff(&c.cfg, l);
        kv_arr[l] = g4_synth_layer_n_head_kv(&c.cfg, l);
        swa_arr[l] = (uint8_t)g4_synth_layer_is_swa(&c.cfg, l);
    }

    plan(&c);
    if (c.err) {
        st = g4_fail(err, c.err, "%s", c.err_msg);
        goto out;
    }
    c.scratch = malloc((size_t)c.scratch_n * sizeof(float));
    if (!c.scratch) {
        st = g4_fail(err, G4_ERR_NOMEM, "synth: out of memory");
        goto out;
    }
    if ((st = g4_synth_vocab_build(&vocab, c.cfg.n_vocab, err))) goto out;

    w = gguf_writer_new();
    if (!w) {
        st = g4_fail(err, G4_ERR_NOMEM, "synth: out of memory");
        goto out;
    }
    put_metadata(w, &c, &vocab, ff_arr, kv_arr, swa_arr);
    for (int i = 0; i < c.n_t; i++) gguf_w_tensor(w, c.t[i].name, c.t[i].type, c.t[i].n_dims, c.t[i].ne);
    /* setter errors are sticky: gguf_writer_write reports the first one */
    st = p->dry_run ? gguf_writer_status(w, err) : gguf_writer_write(w, p->out, fill, progress_cb, &c, err);
    if (st == G4_OK) {
        if (n_tensors) *n_tensors = gguf_writer_n_tensors(w);
        if (file_bytes) *file_bytes = gguf_writer_file_size(w);
    }
out:
    gguf_writer_free(w);
    g4_synth_vocab_free(&vocab);
    free(c.t);
    free(c.scratch);
    free(c.common);
    free(ff_arr);
    free(kv_arr);
    free(swa_arr);
    return st;
}

g4_status g4_synth(const g4_synth_params *p, g4_error *err) { return g4_synth_ex(p, NULL, NULL, err); }
