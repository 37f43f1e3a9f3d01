/* Loading a Gemma 4 model: hyper-parameters from the GGUF metadata, every tensor looked up, its type
 * and shape checked, and views into the mapping set up. */
#include "model/model.h"
#include "quant/types.h"
#include "tokenizer/tokenizer.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARCH "gemma4"

static g4_status key_name(char *buf, size_t n, const char *suffix) {
    snprintf(buf, n, ARCH ".%s", suffix);
    return G4_OK;
}

/* A per-layer integer: scalar (same for every layer) or an array of n_layer integers. */
static g4_status get_per_layer(const gguf_file *f, const char *suffix, int n_layer, int required, int *out,
                               int *is_array, g4_error *err) {
    char key[128];
    key_name(key, sizeof key, suffix);
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (is_array) *is_array = 0;
    if (!kv) {
        if (required) return g4_fail(err, G4_ERR_FORMAT, "GGUF file lacks the required key '%s'", key);
        return G4_OK;
    }
    if (kv->type == GGUF_ARRAY) {
        if (!gguf_vtype_is_int(kv->arr_type))
            return g4_fail(err, G4_ERR_FORMAT, "key '%s' is an array of %s, expected integers", key,
                           gguf_vtype_name(kv->arr_type));
        if (kv->arr_n != (uint64_t)n_layer)
            return g4_fail(err, G4_ERR_FORMAT, "key '%s' has %llu values, expected one per layer (%d)", key,
                           (unsigned long long)kv->arr_n, n_layer);
        for (int l = 0; l < n_layer; l++) {
            int64_t v = gguf_arr_i64(kv, (uint64_t)l);
            if (v < 0 || v > (1 << 24))
                return g4_fail(err, G4_ERR_FORMAT, "key '%s'[%d] = %lld is out of range", key, l, (long long)v);
            out[l] = (int)v;
        }
        if (is_array) *is_array = 1;
        return G4_OK;
    }
    uint32_t v;
    g4_status s = gguf_get_u32(f, key, 1, &v, err);
    if (s) return s;
    if (v > (1u << 24)) return g4_fail(err, G4_ERR_FORMAT, "key '%s' = %u is out of range", key, v);
    for (int l = 0; l < n_layer; l++) out[l] = (int)v;
    return G4_OK;
}

static g4_status get_int(const gguf_file *f, const char *suffix, int required, int *out, int max, g4_error *err) {
    char key[128];
    key_name(key, sizeof key, suffix);
    uint32_t v = (uint32_t)*out;
    g4_status s = gguf_get_u32(f, key, required, &v, err);
    if (s) return s;
    if (v > (uint32_t)max) return g4_fail(err, G4_ERR_FORMAT, "key '%s' = %u is out of range (max %d)", key, v, max);
    *out = (int)v;
    return G4_OK;
}

static g4_status get_float(const gguf_file *f, const char *suffix, int required, float *out, g4_error *err) {
    char key[128];
    key_name(key, sizeof key, suffix);
    g4_status s = gguf_get_f32(f, key, required, out, err);
    if (s) return s;
    if (!isfinite(*out)) return g4_fail(err, G4_ERR_FORMAT, "key '%s' is not a finite number", key);
    return G4_OK;
}

/* ---- tensors ---- */

static void shape_str(char *buf, size_t n, const int64_t *ne, int nd) {
    size_t j = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < nd && j < n; d++) j += (size_t)snprintf(buf + j, n - j, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (j < n) snprintf(buf + j, n - j, "]");
}

/* Look up a matrix (or 3-D expert tensor) and check its shape. ne2 = 0 means a 2-D tensor. */
static g4_status get_mat(const gguf_file *f, const char *name, int required, int64_t ne0, int64_t ne1, int64_t ne2,
                         g4_weight *w, g4_error *err) {
    memset(w, 0, sizeof *w);
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return required ? g4_fail(err, G4_ERR_FORMAT, "model lacks the tensor '%s'", name) : G4_OK;
    int64_t want[3] = {ne0, ne1, ne2 ? ne2 : 1};
    if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != want[2] || t->ne[3] != 1) {
        char a[96], b[96];
        shape_str(a, sizeof a, t->ne, t->n_dims);
        shape_str(b, sizeof b, want, ne2 ? 3 : 2);
        return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' has shape %s, expected %s", name, a, b);
    }
    const g4_type_traits *tr = g4_type_traits_get(t->type);
    if (!tr || !tr->dot_f32 || !tr->to_float)
        return g4_fail(err, G4_ERR_UNSUPPORTED, "tensor '%s' has type %s, which g4 cannot use as a weight matrix", name,
                       g4_type_name(t->type) ? g4_type_name(t->type) : "?");
    if ((uintptr_t)t->data % 4)
        return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' data is not 4-byte aligned (general.alignment too small)", name);
    w->t = t;
    w->type = t->type;
    w->ne0 = t->ne[0];
    w->ne1 = t->ne[1];
    w->ne2 = t->ne[2];
    w->row_bytes = g4_type_row_bytes(t->type, t->ne[0]);
    w->data = t->data;
    return G4_OK;
}

g4_weight g4_weight_expert(const g4_weight *w, int e) {
    g4_weight r = *w;
    r.ne2 = 1;
    r.data = w->data + (size_t)e * (size_t)w->ne1 * w->row_bytes;
    return r;
}

/* A 1-D tensor of n values as float32: points into the mapping when it is F32, else a converted copy. */
static g4_status get_vec(g4_model *m, const char *name, int required, int64_t n, const float **out, g4_error *err) {
    *out = NULL;
    const gguf_tensor *t = gguf_find_tensor(m->gf, name);
    if (!t) return required ? g4_fail(err, G4_ERR_FORMAT, "model lacks the tensor '%s'", name) : G4_OK;
    if ((int64_t)t->n_elements != n || t->ne[0] != n) {
        char a[96];
        shape_str(a, sizeof a, t->ne, t->n_dims);
        return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' has shape %s, expected [%lld]", name, a, (long long)n);
    }
    if (t->type == G4_TYPE_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = (const float *)t->data;
        return G4_OK;
    }
    const g4_type_traits *tr = g4_type_traits_get(t->type);
    if (!tr || !tr->to_float)
        return g4_fail(err, G4_ERR_UNSUPPORTED, "tensor '%s' has type %s, which g4 cannot read", name,
                       g4_type_name(t->type) ? g4_type_name(t->type) : "?");
    if ((uintptr_t)t->data % 4)
        return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' data is not 4-byte aligned (general.alignment too small)", name);
    float *buf = malloc((size_t)n * sizeof *buf);
    float **owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (!buf || !owned) {
        free(buf);
        if (owned) m->owned = owned;
        return g4_fail(err, G4_ERR_NOMEM, "out of memory converting '%s'", name);
    }
    m->owned = owned;
    m->owned[m->n_owned++] = buf;
    tr->to_float(t->data, buf, n);
    *out = buf;
    return G4_OK;
}

/* ---- the model ---- */

void g4_model_free(g4_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    g4_model_unpack(m);
    pthread_mutex_destroy(&m->repack_lock);
    free(m->layers);
    g4_vocab_free(m->vocab);
    gguf_close(m->gf);
    free(m);
}

static void guess_variant(g4_model *m) {
    const char *v = "custom";
    int ple = m->n_embd_per_layer > 0;
    if (m->n_vocab == 262144) {
        if (m->n_layer == 35 && m->n_embd == 1536 && ple) v = "E2B";
        else if (m->n_layer == 42 && m->n_embd == 2560 && ple) v = "E4B";
        else if (m->n_layer == 30 && m->n_expert > 0) v = "26B-A4B";
        else if (m->n_layer == 60 && m->n_embd == 5376) v = "31B";
        else if (m->n_layer == 48 && m->n_embd == 3840) v = "12B";
    }
    if (!strcmp(v, "custom")) {
        int dw = 0;
        for (int l = 1; l < m->n_layer; l++) dw |= m->layers[l].n_ff != m->layers[0].n_ff;
        v = ple ? (dw ? "E2B-like" : "E4B-like") : m->n_expert ? "26B-A4B-like" : "31B-like";
    }
    snprintf(m->variant, sizeof m->variant, "%s", v);
}

static g4_status load_hparams(g4_model *m, int **ff_out, int **kvh_out, g4_error *err) {
    const gguf_file *f = m->gf;
    g4_status s;
    const char *arch;
    uint64_t alen;
    if ((s = gguf_get_str(f, "general.architecture", 1, &arch, &alen, err))) return s;
    if (alen != strlen(ARCH) || memcmp(arch, ARCH, alen) != 0) {
        char a[64];
        snprintf(a, sizeof a, "%.*s", (int)(alen < 48 ? alen : 48), arch);
        return g4_fail(err, G4_ERR_UNSUPPORTED, "architecture '%s' is not supported: g4 runs Gemma 4 ('gemma4') models", a);
    }
    if ((s = get_int(f, "embedding_length", 1, &m->n_embd, 1 << 16, err))) return s;
    if ((s = get_int(f, "block_count", 1, &m->n_layer, 4096, err))) return s;
    if (m->n_embd < 1 || m->n_layer < 1) return g4_fail(err, G4_ERR_FORMAT, "embedding_length and block_count must be positive");
    if ((s = get_int(f, "attention.head_count", 1, &m->n_head, 4096, err))) return s;
    if (m->n_head < 1) return g4_fail(err, G4_ERR_FORMAT, "attention.head_count must be positive");
    m->n_ctx_train = 131072;
    if ((s = get_int(f, "context_length", 0, &m->n_ctx_train, 1 << 30, err))) return s;
    if ((s = get_int(f, "attention.key_length", 1, &m->head_dim_full, 4096, err))) return s;
    m->head_dim_swa = m->head_dim_full;
    if ((s = get_int(f, "attention.key_length_swa", 0, &m->head_dim_swa, 4096, err))) return s;
    int vl = m->head_dim_full, vls = m->head_dim_swa;
    if ((s = get_int(f, "attention.value_length", 0, &vl, 4096, err))) return s;
    if ((s = get_int(f, "attention.value_length_swa", 0, &vls, 4096, err))) return s;
    if (vl != m->head_dim_full || vls != m->head_dim_swa)
        return g4_fail(err, G4_ERR_UNSUPPORTED, "value length (%d/%d) differs from key length (%d/%d)", vl, vls,
                       m->head_dim_full, m->head_dim_swa);
    if (m->head_dim_full < 2 || m->head_dim_swa < 2 || (m->head_dim_full & 1) || (m->head_dim_swa & 1))
        return g4_fail(err, G4_ERR_FORMAT, "head dims %d/%d must be even and positive", m->head_dim_full, m->head_dim_swa);
    m->n_rot_full = m->head_dim_full;
    m->n_rot_swa = m->head_dim_swa;
    if ((s = get_int(f, "rope.dimension_count", 0, &m->n_rot_full, 4096, err))) return s;
    if ((s = get_int(f, "rope.dimension_count_swa", 0, &m->n_rot_swa, 4096, err))) return s;
    if (m->n_rot_full > m->head_dim_full || m->n_rot_swa > m->head_dim_swa || (m->n_rot_full & 1) || (m->n_rot_swa & 1))
        return g4_fail(err, G4_ERR_FORMAT, "rope dimension counts %d/%d do not fit head dims %d/%d", m->n_rot_full,
                       m->n_rot_swa, m->head_dim_full, m->head_dim_swa);
    m->eps = 1e-6f;
    if ((s = get_float(f, "attention.layer_norm_rms_epsilon", 0, &m->eps, err))) return s;
    m->rope_base = 1e6f;
    m->rope_base_swa = 1e4f;
    if ((s = get_float(f, "rope.freq_base", 0, &m->rope_base, err))) return s;
    if ((s = get_float(f, "rope.freq_base_swa", 0, &m->rope_base_swa, err))) return s;
    m->softcap = 0;
    if ((s = get_float(f, "final_logit_softcapping", 0, &m->softcap, err))) return s;
    if ((s = get_int(f, "attention.sliding_window", 1, &m->sliding_window, 1 << 30, err))) return s;
    if (m->sliding_window < 1) return g4_fail(err, G4_ERR_FORMAT, "attention.sliding_window must be positive");
    if ((s = get_int(f, "attention.shared_kv_layers", 0, &m->n_kv_shared, m->n_layer, err))) return s;
    if ((s = get_int(f, "embedding_length_per_layer_input", 0, &m->n_embd_per_layer, 1 << 16, err))) return s;
    if ((s = get_int(f, "expert_count", 0, &m->n_expert, 1 << 16, err))) return s;
    if ((s = get_int(f, "expert_used_count", 0, &m->n_expert_used, 1 << 16, err))) return s;
    if ((s = get_int(f, "expert_feed_forward_length", 0, &m->n_ff_exp, 1 << 24, err))) return s;
    if (m->n_expert && (m->n_expert_used < 1 || m->n_expert_used > m->n_expert || m->n_expert_used > 64 || m->n_ff_exp < 1))
        return g4_fail(err, G4_ERR_FORMAT, "MoE settings are inconsistent: %d experts, %d used, expert width %d",
                       m->n_expert, m->n_expert_used, m->n_ff_exp);

    int L = m->n_layer;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    int *ff = calloc((size_t)L, sizeof *ff), *kvh = calloc((size_t)L, sizeof *kvh);
    *ff_out = ff;
    *kvh_out = kvh;
    if (!m->layers || !ff || !kvh) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    if ((s = get_per_layer(f, "feed_forward_length", L, 1, ff, NULL, err))) return s;
    if ((s = get_per_layer(f, "attention.head_count_kv", L, 1, kvh, NULL, err))) return s;

    const gguf_kv *pat = gguf_find_kv(f, ARCH ".attention.sliding_window_pattern");
    if (!pat) return g4_fail(err, G4_ERR_FORMAT, "GGUF file lacks the required key '" ARCH ".attention.sliding_window_pattern'");
    if (pat->type != GGUF_ARRAY || (pat->arr_type != GGUF_BOOL && !gguf_vtype_is_int(pat->arr_type)) ||
        pat->arr_n != (uint64_t)L)
        return g4_fail(err, G4_ERR_FORMAT, "key '" ARCH ".attention.sliding_window_pattern' must be an array of %d bools", L);
    for (int l = 0; l < L; l++) {
        g4_layer *ly = &m->layers[l];
        ly->is_swa = gguf_arr_i64(pat, (uint64_t)l) != 0;
        ly->head_dim = ly->is_swa ? m->head_dim_swa : m->head_dim_full;
        ly->n_rot = ly->is_swa ? m->n_rot_swa : m->n_rot_full;
        ly->rope_base = ly->is_swa ? m->rope_base_swa : m->rope_base;
        ly->n_head_kv = kvh[l];
        ly->n_ff = ff[l];
        if (kvh[l] < 1 || m->n_head % kvh[l])
            return g4_fail(err, G4_ERR_FORMAT, "layer %d: %d KV heads do not divide %d query heads", l, kvh[l], m->n_head);
        if (ff[l] < 1) return g4_fail(err, G4_ERR_FORMAT, "layer %d: feed_forward_length is 0", l);
    }
    /* KV sharing: the last n_kv_shared layers reuse the cache of the last owning layer of the same kind */
    int first_shared = L - m->n_kv_shared;
    if (first_shared < 1 && m->n_kv_shared) return g4_fail(err, G4_ERR_FORMAT, "shared_kv_layers = %d leaves no layer that owns a KV cache", m->n_kv_shared);
    for (int l = 0; l < L; l++) {
        g4_layer *ly = &m->layers[l];
        ly->kv_src = l;
        if (l < first_shared) continue;
        ly->kv_src = -1;
        for (int j = first_shared - 1; j >= 0; j--)
            if (m->layers[j].is_swa == ly->is_swa) {
                ly->kv_src = j;
                break;
            }
        if (ly->kv_src < 0)
            return g4_fail(err, G4_ERR_FORMAT, "layer %d shares KV but no earlier %s layer owns a cache", l,
                           ly->is_swa ? "sliding" : "full-attention");
        if (m->layers[ly->kv_src].n_head_kv != ly->n_head_kv)
            return g4_fail(err, G4_ERR_FORMAT, "layer %d reads layer %d's cache but has %d KV heads instead of %d", l,
                           ly->kv_src, ly->n_head_kv, m->layers[ly->kv_src].n_head_kv);
    }
    return G4_OK;
}

static g4_status load_tensors(g4_model *m, g4_error *err) {
    const gguf_file *f = m->gf;
    g4_status s;
    int D = m->n_embd, L = m->n_layer, P = m->n_embd_per_layer;
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) return g4_fail(err, G4_ERR_FORMAT, "model lacks the tensor 'token_embd.weight'");
    if (te->ne[1] < 1 || te->ne[1] > (1 << 24)) return g4_fail(err, G4_ERR_FORMAT, "token_embd.weight has %lld rows", (long long)te->ne[1]);
    m->n_vocab = (int)te->ne[1];
    if ((s = get_mat(f, "token_embd.weight", 1, D, m->n_vocab, 0, &m->tok_embd, err))) return s;
    if ((s = get_mat(f, "output.weight", 0, D, m->n_vocab, 0, &m->output, err))) return s;
    if (!m->output.t) m->output = m->tok_embd;
    if ((s = get_vec(m, "output_norm.weight", 1, D, &m->output_norm, err))) return s;
    if ((s = get_vec(m, "rope_freqs.weight", 0, m->n_rot_full / 2, &m->rope_freqs, err))) return s;
    if (P > 0) {
        if ((s = get_mat(f, "per_layer_token_embd.weight", 1, (int64_t)L * P, m->n_vocab, 0, &m->ple_tok, err))) return s;
        if ((s = get_mat(f, "per_layer_model_proj.weight", 1, D, (int64_t)L * P, 0, &m->ple_model_proj, err))) return s;
        if ((s = get_vec(m, "per_layer_proj_norm.weight", 1, P, &m->ple_proj_norm, err))) return s;
    }
    char nm[160];
#define NAME(suffix) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), nm)
    for (int l = 0; l < L; l++) {
        g4_layer *ly = &m->layers[l];
        int hd = ly->head_dim, nkv = ly->n_head_kv, H = m->n_head;
        int owns = ly->kv_src == l;
        if (!ly->is_swa) ly->rope_ff = m->rope_freqs;
        if ((s = get_vec(m, NAME("attn_norm.weight"), 1, D, &ly->attn_norm, err))) return s;
        if ((s = get_mat(f, NAME("attn_q.weight"), 1, D, (int64_t)H * hd, 0, &ly->wq, err))) return s;
        if ((s = get_vec(m, NAME("attn_q_norm.weight"), 1, hd, &ly->q_norm, err))) return s;
        if (owns) {
            if ((s = get_mat(f, NAME("attn_k.weight"), 1, D, (int64_t)nkv * hd, 0, &ly->wk, err))) return s;
            if ((s = get_mat(f, NAME("attn_v.weight"), 0, D, (int64_t)nkv * hd, 0, &ly->wv, err))) return s;
            if ((s = get_vec(m, NAME("attn_k_norm.weight"), 1, hd, &ly->k_norm, err))) return s;
            ly->has_v = ly->wv.t != NULL;
        }
        if ((s = get_mat(f, NAME("attn_output.weight"), 1, (int64_t)H * hd, D, 0, &ly->wo, err))) return s;
        if ((s = get_vec(m, NAME("post_attention_norm.weight"), 1, D, &ly->post_attn_norm, err))) return s;
        if ((s = get_vec(m, NAME("ffn_norm.weight"), 1, D, &ly->ffn_norm, err))) return s;
        if ((s = get_mat(f, NAME("ffn_gate.weight"), 1, D, ly->n_ff, 0, &ly->gate, err))) return s;
        if ((s = get_mat(f, NAME("ffn_up.weight"), 1, D, ly->n_ff, 0, &ly->up, err))) return s;
        if ((s = get_mat(f, NAME("ffn_down.weight"), 1, ly->n_ff, D, 0, &ly->down, err))) return s;
        if ((s = get_vec(m, NAME("post_ffw_norm.weight"), 1, D, &ly->post_ffw_norm, err))) return s;
        ly->is_moe = m->n_expert > 0 && gguf_find_tensor(f, NAME("ffn_gate_inp.weight")) != NULL;
        if (m->n_expert > 0 && !ly->is_moe)
            return g4_fail(err, G4_ERR_FORMAT, "model has %d experts but lacks the tensor '%s'", m->n_expert, nm);
        if (ly->is_moe) {
            int E = m->n_expert, F = m->n_ff_exp;
            if ((s = get_mat(f, NAME("ffn_gate_inp.weight"), 1, D, E, 0, &ly->router, err))) return s;
            if ((s = get_vec(m, NAME("ffn_gate_inp.scale"), 1, D, &ly->router_scale, err))) return s;
            if ((s = get_vec(m, NAME("ffn_down_exps.scale"), 0, E, &ly->expert_scale, err))) return s;
            if ((s = get_vec(m, NAME("pre_ffw_norm_2.weight"), 1, D, &ly->pre_ffw_norm_2, err))) return s;
            if ((s = get_vec(m, NAME("post_ffw_norm_1.weight"), 1, D, &ly->post_ffw_norm_1, err))) return s;
            if ((s = get_vec(m, NAME("post_ffw_norm_2.weight"), 1, D, &ly->post_ffw_norm_2, err))) return s;
            if ((s = get_mat(f, NAME("ffn_gate_up_exps.weight"), 0, D, 2 * (int64_t)F, E, &ly->gate_up_exps, err))) return s;
            if (!ly->gate_up_exps.t) {
                if ((s = get_mat(f, NAME("ffn_gate_exps.weight"), 1, D, F, E, &ly->gate_exps, err))) return s;
                if ((s = get_mat(f, NAME("ffn_up_exps.weight"), 1, D, F, E, &ly->up_exps, err))) return s;
            }
            if ((s = get_mat(f, NAME("ffn_down_exps.weight"), 1, F, D, E, &ly->down_exps, err))) return s;
        }
        if (P > 0) {
            if ((s = get_mat(f, NAME("inp_gate.weight"), 1, D, P, 0, &ly->ple_gate, err))) return s;
            if ((s = get_mat(f, NAME("proj.weight"), 1, P, D, 0, &ly->ple_proj, err))) return s;
            if ((s = get_vec(m, NAME("post_norm.weight"), 1, D, &ly->ple_post_norm, err))) return s;
        }
        const float *os = NULL;
        if ((s = get_vec(m, NAME("layer_output_scale.weight"), 0, 1, &os, err))) return s;
        ly->out_scale = os ? os[0] : 1.0f;
    }
#undef NAME
    return G4_OK;
}

g4_status g4_model_from_gguf(g4_model **out, gguf_file *f, g4_error *err) {
    *out = NULL;
    g4_types_init();
    g4_model *m = calloc(1, sizeof *m);
    if (!m) {
        gguf_close(f);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    m->gf = f;
    pthread_mutex_init(&m->repack_lock, NULL);
    int *ff = NULL, *kvh = NULL;
    g4_status s = load_hparams(m, &ff, &kvh, err);
    free(ff);
    free(kvh);
    if (!s) s = load_tensors(m, err);
    if (!s) s = g4_vocab_from_gguf(&m->vocab, f, err); /* NULL when the file has no tokenizer */
    if (s) {
        g4_model_free(m);
        return s;
    }
    guess_variant(m);
    *out = m;
    return G4_OK;
}

g4_status g4_model_open(g4_model **out, const char *path, g4_error *err) {
    gguf_file *f;
    *out = NULL;
    g4_status s = gguf_open(&f, path, err);
    if (s) return s;
    s = g4_model_from_gguf(out, f, err);
    if (s && err) {
        char tmp[sizeof err->msg + 1024];
        snprintf(tmp, sizeof tmp, "%.1000s: %s", path, err->msg);
        size_t n = strlen(tmp);
        if (n >= sizeof err->msg) n = sizeof err->msg - 1;
        memcpy(err->msg, tmp, n);
        err->msg[n] = 0;
    }
    return s;
}

void g4_model_get_info(const g4_model *m, g4_model_info *i) {
    memset(i, 0, sizeof *i);
    i->arch = ARCH;
    i->variant = m->variant;
    i->n_vocab = m->n_vocab;
    i->n_embd = m->n_embd;
    i->n_layer = m->n_layer;
    i->n_head = m->n_head;
    i->n_ctx_train = m->n_ctx_train;
    i->sliding_window = m->sliding_window;
    i->head_dim_swa = m->head_dim_swa;
    i->head_dim_full = m->head_dim_full;
    i->n_embd_per_layer = m->n_embd_per_layer;
    i->n_kv_shared = m->n_kv_shared;
    i->n_expert = m->n_expert;
    i->n_expert_used = m->n_expert_used;
    i->n_ff_exp = m->n_ff_exp;
    i->rope_base = m->rope_base;
    i->rope_base_swa = m->rope_base_swa;
    i->final_logit_softcap = m->softcap;
    i->n_repacked = m->n_packed;
    i->repacked_bytes = m->packed_bytes;
    i->rms_eps = m->eps;
    i->weight_bytes = m->gf->data_bytes;
    i->file_bytes = m->gf->size;
}

void g4_model_get_layer(const g4_model *m, int l, g4_layer_info *li) {
    memset(li, 0, sizeof *li);
    if (l < 0 || l >= m->n_layer) return;
    const g4_layer *ly = &m->layers[l];
    li->is_swa = ly->is_swa;
    li->head_dim = ly->head_dim;
    li->n_head_kv = ly->n_head_kv;
    li->n_ff = ly->n_ff;
    li->kv_src = ly->kv_src;
    li->has_v = ly->kv_src == l ? ly->has_v : m->layers[ly->kv_src].has_v;
    li->is_moe = ly->is_moe;
}

const char *g4_token_text(const g4_model *m, int id, size_t *len) {
    const gguf_kv *kv = gguf_find_kv(m->gf, "tokenizer.ggml.tokens");
    *len = 0;
    if (!kv || kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING || id < 0 || (uint64_t)id >= kv->arr_n) return NULL;
    uint64_t n;
    const char *s = gguf_arr_str(kv, (uint64_t)id, &n);
    *len = (size_t)n;
    return s;
}
