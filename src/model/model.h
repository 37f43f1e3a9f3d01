/* The Gemma 4 model as read from GGUF metadata: hyper-parameters, per-layer structure and views of
 * the weights inside the mapping. Nothing here is hard-coded to one variant: E2B, E4B, 26B-A4B, 31B
 * (and any other shape written with the same keys) differ only in what the metadata says. */
#ifndef G4_MODEL_H
#define G4_MODEL_H

#include "g4.h"
#include "gguf/gguf.h"

#include <pthread.h>

struct g4_pool;
struct g4_repack_traits;

/* A weight matrix in the mapping: ne0 = input length (contiguous row), ne1 = rows (outputs),
 * ne2 = experts (1 for ordinary matrices). */
typedef struct g4_weight {
    const gguf_tensor *t;
    int type;
    int64_t ne0, ne1, ne2;
    size_t row_bytes;
    const uint8_t *data;
    /* the same rows interleaved for the kernel set (model/repack.c), or NULL */
    const uint8_t *packed;
    const struct g4_repack_traits *rp;
} g4_weight;

typedef struct g4_layer {
    /* structure */
    int is_swa;        /* sliding-window layer */
    int head_dim;
    int n_head_kv;
    int n_ff;          /* dense FFN width */
    int kv_src;        /* layer whose cache this layer reads (itself when it owns one) */
    int has_v;         /* attn_v present (else V = raw K projection: "K=V") */
    int is_moe;
    int n_rot;
    float rope_base;
    const float *rope_ff; /* frequency factors (full layers), or NULL */

    /* attention */
    const float *attn_norm, *q_norm, *k_norm, *post_attn_norm;
    g4_weight wq, wk, wv, wo;
    /* dense FFN */
    const float *ffn_norm, *post_ffw_norm;
    g4_weight gate, up, down;
    /* MoE branch */
    const float *post_ffw_norm_1, *pre_ffw_norm_2, *post_ffw_norm_2, *router_scale, *expert_scale;
    g4_weight router;            /* [D, n_expert] */
    g4_weight gate_up_exps;      /* [D, 2*n_ff_exp, n_expert] (gate rows first), or split: */
    g4_weight gate_exps, up_exps;/* [D, n_ff_exp, n_expert] */
    g4_weight down_exps;         /* [n_ff_exp, D, n_expert] */
    /* per-layer embedding injection */
    g4_weight ple_gate;          /* inp_gate [D, P] */
    g4_weight ple_proj;          /* proj [P, D] */
    const float *ple_post_norm;
    /* residual scale */
    float out_scale;
} g4_layer;

struct g4_model {
    gguf_file *gf;
    g4_vocab *vocab;   /* tokenizer (src/tokenizer), NULL when the file has none */
    char variant[16];
    /* hyper-parameters */
    int n_vocab, n_embd, n_layer, n_head, n_ctx_train;
    int head_dim_swa, head_dim_full, n_rot_swa, n_rot_full;
    int sliding_window;
    int n_kv_shared;
    int n_embd_per_layer; /* P */
    int n_expert, n_expert_used, n_ff_exp;
    float rope_base, rope_base_swa, softcap, eps;
    /* global weights */
    g4_weight tok_embd, output; /* output = tok_embd when tied */
    const float *output_norm, *rope_freqs;
    g4_weight ple_tok;          /* per_layer_token_embd [L*P, V] */
    g4_weight ple_model_proj;   /* per_layer_model_proj [D, L*P] */
    const float *ple_proj_norm; /* [P] */
    g4_layer *layers;
    /* f32 copies of small 1-D tensors stored in other types */
    float **owned;
    int n_owned;
    /* load-time repacking (model/repack.c): done once, by the first context that computes */
    pthread_mutex_t repack_lock;
    int repack_done;
    uint8_t *packed;       /* one anonymous mapping holding every repacked matrix */
    size_t packed_bytes;
    int n_packed;          /* matrices repacked */
};

/* Build a model from an already parsed GGUF file; takes ownership of f (also on failure). */
g4_status g4_model_from_gguf(g4_model **out, gguf_file *f, g4_error *err);

/* Repack the weight matrices into the interleaved layouts of the kernel set in use (once per model;
 * thread-safe; a no-op when the kernel set has none or G4_REPACK=0). The rows are copied with the
 * pool's threads, then the original pages of the file mapping are released from the process (they
 * stay in the page cache). On failure (out of memory) the model keeps working on the original rows. */
g4_status g4_model_repack(g4_model *m, struct g4_pool *pool, g4_error *err);
/* Drop the repacked copies (g4_model_free does it). */
void g4_model_unpack(g4_model *m);

/* Matrix e of a 3-D expert tensor as a 2-D weight. */
g4_weight g4_weight_expert(const g4_weight *w, int e);

#endif
