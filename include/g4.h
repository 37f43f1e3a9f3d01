/* g4 — Gemma 4 inference engine in C11.
 *
 * Public API. Every function that can fail returns a g4_status and, when `err` is not NULL, fills it
 * with a readable message naming the problem (file offset, tensor, key). The library never exits.
 */
#ifndef G4_H
#define G4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define G4_VERSION "0.1.0"

typedef enum {
    G4_OK = 0,
    G4_ERR_IO,          /* cannot open / read / write / map a file */
    G4_ERR_FORMAT,      /* malformed or truncated file */
    G4_ERR_UNSUPPORTED, /* valid file, but something g4 does not implement (architecture, weight type) */
    G4_ERR_NOMEM,       /* allocation failed */
    G4_ERR_ARG,         /* invalid argument from the caller */
    G4_ERR_CONTEXT,     /* the context is full */
} g4_status;

typedef struct g4_error {
    g4_status code;
    char msg[512];
} g4_error;

const char *g4_status_str(g4_status s);

/* ---- model ------------------------------------------------------------------------------------- */

typedef struct g4_model g4_model;

/* Memory-maps a Gemma 4 GGUF file and validates it (format, architecture, hyper-parameters, every
 * tensor's presence, type and shape). Weights stay in the mapping; nothing is copied. */
g4_status g4_model_open(g4_model **out, const char *path, g4_error *err);
void g4_model_free(g4_model *m);

typedef struct g4_model_info {
    const char *arch;       /* "gemma4" */
    const char *variant;    /* best guess: "E2B", "E4B", "26B-A4B", "31B", or "custom" */
    int n_vocab, n_embd, n_layer, n_head;
    int n_ctx_train;
    int sliding_window;
    int head_dim_swa, head_dim_full;
    int n_embd_per_layer;   /* PLE width P, 0 if none */
    int n_kv_shared;        /* number of trailing layers that reuse another layer's KV */
    int n_expert, n_expert_used, n_ff_exp;
    float rope_base, rope_base_swa, final_logit_softcap, rms_eps;
    uint64_t weight_bytes;  /* bytes of tensor data */
    uint64_t file_bytes;
} g4_model_info;

void g4_model_get_info(const g4_model *m, g4_model_info *info);

/* Text of a vocabulary entry as stored in the GGUF (tokenizer.ggml.tokens, not NUL-terminated), or
 * NULL when the file has no such entry. */
const char *g4_token_text(const g4_model *m, int id, size_t *len);

/* per-layer facts: is it sliding, head dim, KV heads, FFN width, which layer's KV it reads */
typedef struct g4_layer_info {
    int is_swa, head_dim, n_head_kv, n_ff, kv_src, has_v, is_moe;
} g4_layer_info;
void g4_model_get_layer(const g4_model *m, int layer, g4_layer_info *li);

/* ---- inference context --------------------------------------------------------------------------- */

typedef enum { G4_KV_F32 = 0, G4_KV_F16 = 1 } g4_kv_type;

typedef struct g4_ctx_params {
    int n_ctx;             /* context length in tokens (KV memory is sized from this) */
    g4_kv_type kv_type;    /* cache element type */
    int exact;             /* 1: float32 activations everywhere (reference mode) */
    int n_threads;         /* 0 = default */
} g4_ctx_params;

g4_ctx_params g4_ctx_default_params(void);

typedef struct g4_ctx g4_ctx;

g4_status g4_ctx_new(g4_ctx **out, g4_model *m, const g4_ctx_params *p, g4_error *err);
void g4_ctx_free(g4_ctx *c);

/* Bytes of KV cache this context holds (allocated for n_ctx tokens). */
uint64_t g4_ctx_kv_bytes(const g4_ctx *c);
/* Bytes the KV cache of `m` would need for n_ctx tokens of type kv. */
uint64_t g4_model_kv_bytes(const g4_model *m, int n_ctx, g4_kv_type kv);

/* Number of tokens already in the context. */
int g4_ctx_n_past(const g4_ctx *c);
/* Forget everything (n_past = 0). */
void g4_ctx_reset(g4_ctx *c);
/* The tokens in the cache (g4_ctx_n_past of them). */
const int32_t *g4_ctx_tokens(const g4_ctx *c);
/* Keep only the first n tokens, so a new continuation can reuse the cached prefix. Fails with
 * G4_ERR_CONTEXT when the sliding-window caches no longer hold what position n needs (then reset and
 * evaluate again); the context is unchanged then. */
g4_status g4_ctx_truncate(g4_ctx *c, int n, g4_error *err);

/* Runs n tokens at positions n_past .. n_past+n-1 as one batch (prefill) and appends them to the
 * cache. If `logits` is not NULL it receives n_vocab floats per position: for every position when
 * all_logits is set ([n x n_vocab]), else for the last position only. */
g4_status g4_eval(g4_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits,
                  g4_error *err);

#ifdef __cplusplus
}
#endif
#endif
