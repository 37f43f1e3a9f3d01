/* Synthetic Gemma 4 models: random-weight GGUF files with the exact shape, metadata keys and tensor
 * names of a real variant (llama.cpp's `gemma4` architecture), at full size or as a tiny proportional
 * model that keeps every structural feature (sliding/full pattern, two head dims, per-layer
 * embeddings, KV sharing, double-wide MLP, MoE, K=V, per-layer arrays).
 *
 * Weights follow the oracle pack's recipe (shared/oracle/README.md §1), so a random network is stable
 * and its logits are peaked but sane. Generation is deterministic in (variant, scale, type, seed): each
 * row of each tensor has its own PRNG stream, so the output does not depend on how the writer chunks
 * the data. The file is streamed (never held in memory) and written to OUT.tmp, then renamed.
 */
#ifndef G4_SYNTH_H
#define G4_SYNTH_H

#include "g4.h"
#include <stdint.h>

typedef enum { G4_SYNTH_E2B = 0, G4_SYNTH_E4B, G4_SYNTH_26B_A4B, G4_SYNTH_31B, G4_SYNTH_N_VARIANTS } g4_synth_variant;
typedef enum { G4_SYNTH_TINY = 0, G4_SYNTH_FULL = 1 } g4_synth_scale;

/* Shape of a synthetic model (all that the GGUF metadata says, in one place). */
typedef struct g4_synth_config {
    const char *name;        /* "e2b", "e4b", "26b-a4b", "31b" */
    int n_vocab, n_embd, n_layer, n_head;
    int n_head_kv_swa;       /* KV heads of sliding layers */
    int n_head_kv_full;      /* KV heads of full layers; if != n_head_kv_swa head_count_kv is a per-layer array */
    int head_dim_swa, head_dim_full;
    int n_ff;                /* intermediate size (dense MLP) */
    int double_wide;         /* KV-shared layers have 2 * n_ff (feed_forward_length is a per-layer array) */
    int n_kv_shared;         /* trailing layers without K/V of their own */
    int n_embd_per_layer;    /* PLE width P (0: no PLE) */
    int sliding_window;
    int swa_period;          /* layer l is full-attention iff l % swa_period == swa_period - 1 */
    int k_eq_v;              /* full layers have no attn_v (V = raw K) */
    int n_expert, n_expert_used, n_ff_exp; /* 0 if dense */
    int n_ctx_train;
    float rope_base, rope_base_swa, final_logit_softcap, rms_eps;
} g4_synth_config;

/* The configuration of a variant at a scale (G4_ERR_ARG if out of range). */
g4_status g4_synth_get_config(g4_synth_variant v, g4_synth_scale s, g4_synth_config *cfg, g4_error *err);

/* Per-layer facts derived from a config (same rules as llama.cpp / the architecture doc §2.3). */
int g4_synth_layer_is_swa(const g4_synth_config *c, int l);
int g4_synth_layer_owns_kv(const g4_synth_config *c, int l);
int g4_synth_layer_n_ff(const g4_synth_config *c, int l);
int g4_synth_layer_n_head_kv(const g4_synth_config *c, int l);
int g4_synth_layer_head_dim(const g4_synth_config *c, int l);

/* Name parsing: -1 if unknown. Variants: "e2b" "e4b" "26b-a4b" (also "26b", "moe") "31b" (also "dense");
 * scales: "tiny" "full". */
int g4_synth_variant_from_name(const char *s);
int g4_synth_scale_from_name(const char *s);

typedef struct g4_synth_params {
    g4_synth_variant variant;
    g4_synth_scale scale;
    int type;                /* G4 type id for the matrices: F32, F16, BF16, Q8_0, Q4_0 (any type with a
                              * from_float quantizer works); 1-D tensors, rope_freqs, norms, router and
                              * per_layer_model_proj stay F32; rows that do not fit the block size fall back
                              * (k-quants as llama-quantize: Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0; else F16) */
    uint64_t seed;
    const char *out;         /* output path (may be NULL with dry_run) */
    int dry_run;             /* plan only: report tensor count and file size, write nothing */
    /* optional progress report (tensor data bytes done / total), called often: throttle in the callee */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} g4_synth_params;

/* Writes the file. On success, if n_tensors / file_bytes are not NULL they receive the tensor count and
 * the file size. */
g4_status g4_synth(const g4_synth_params *p, g4_error *err);
g4_status g4_synth_ex(const g4_synth_params *p, uint64_t *n_tensors, uint64_t *file_bytes, g4_error *err);

/* ---- internal: the synthetic tokenizer (synth_vocab.c) -------------------------------------------------
 * ids 0-6 <pad> <eos> <bos> <unk> <mask> <|turn> <turn|>, 7-262 byte tokens <0x00>..<0xFF>, then
 * whitespace pieces, printable ASCII, and BPE pieces learnt from a small built-in English text with their
 * merges (in rank order); padded with distinct ordinary pieces up to n_vocab. */
typedef struct g4_synth_vocab {
    int n;                   /* tokens */
    char **tokens;
    float *scores;
    int32_t *types;          /* llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte */
    int n_merges;
    char **merges;           /* "left right" */
} g4_synth_vocab;

/* n_vocab >= 512 */
g4_status g4_synth_vocab_build(g4_synth_vocab *v, int n_vocab, g4_error *err);
void g4_synth_vocab_free(g4_synth_vocab *v);

#endif
