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
    G4_ERR_INTERRUPTED, /* the caller's abort callback asked to stop */
    G4_ERR_BUSY,        /* no room now (every slot busy and the queue full): try again later */
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
    /* weight matrices copied into interleaved layouts for the CPU's kernels (done once, by the first
     * engine that is not in exact mode; G4_REPACK=0 turns it off), and the bytes of those copies
     * (the original pages are released, so resident memory does not grow by this much) */
    int n_repacked;
    uint64_t repacked_bytes;
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

/* KV cache element types. f32 and f16 store the vectors as they are; q8 and the TurboQuant types store
 * each (token, KV head) vector rotated (sign flips + Walsh-Hadamard) and quantized, and attention runs on
 * the packed records (docs/turboquant.md): q8 = int8 per 32 values with an fp16 scale (8.5 bits per
 * value), tq4 / tq3 / tq2 = 4 / 3 / 2-bit Lloyd-Max codebook indices with one fp16 scale per vector. */
typedef enum {
    G4_KV_DEFAULT = -1, /* kv_type_k / kv_type_v only: the same as kv_type */
    G4_KV_F32 = 0,
    G4_KV_F16 = 1,
    G4_KV_Q8 = 2,
    G4_KV_TQ4 = 3,
    G4_KV_TQ3 = 4,
    G4_KV_TQ2 = 5,
    G4_KV_N_TYPES
} g4_kv_type;

/* which layers take kv_type_k / kv_type_v */
typedef enum {
    G4_KV_LAYERS_FULL = 0, /* full-attention layers: the caches that grow with the context (default) */
    G4_KV_LAYERS_ALL = 1,  /* every layer (sliding-window rings too) */
} g4_kv_layers;

#define G4_KV_MAX_OVERRIDES 8
#define G4_KV_DONORS (-1) /* g4_kv_override.layer: every layer whose cache later layers share */

/* K and V types for one layer's own cache (or every KV-sharing donor), applied after the policy */
typedef struct g4_kv_override {
    int layer;
    g4_kv_type k, v;
} g4_kv_override;

typedef struct g4_ctx_params {
    int n_ctx;             /* context length in tokens (KV memory is sized from this) */
    g4_kv_type kv_type;    /* cache element type: f32 or f16 (every layer the fields below leave alone) */
    int exact;             /* 1: float32 activations everywhere (reference mode) */
    int n_threads;         /* 0 = default */
    /* compressed KV cache: K and V types of the layers kv_layers selects (G4_KV_DEFAULT: kv_type), then
     * per-layer overrides. A layer's K and V must both be f32/f16 or both packed (q8/tq4/tq3/tq2);
     * packed types need a power-of-two head dim in [16, 1024]. Start from g4_ctx_default_params(): a
     * zeroed struct means f32 everywhere. */
    g4_kv_type kv_type_k, kv_type_v;
    g4_kv_layers kv_layers;
    int n_kv_override;
    g4_kv_override kv_override[G4_KV_MAX_OVERRIDES];
} g4_ctx_params;

/* n_ctx 4096, f16 cache on every layer, 8-bit activations for quantized weights, one thread per CPU */
g4_ctx_params g4_ctx_default_params(void);

/* "f32", "f16", "q8", "tq4", "tq3", "tq2" (NULL for anything else); and back (-1 if unknown) */
const char *g4_kv_type_name(g4_kv_type t);
int g4_kv_type_from_name(const char *name);

/* Applies a KV cache specification, as the command line's --kv takes it, to p. Comma-separated items:
 *   TYPE            f32 / f16: every layer; q8 / tq4 / tq3 / tq2: K and V of the selected layers
 *   k=TYPE, v=TYPE  K or V of the selected layers
 *   layers=full|all which layers the K/V types apply to (default full: full-attention layers)
 *   donors=T[/T]    K[/V] types of the layers whose cache KV-shared layers read
 *   N=T[/T]         K[/V] types of layer N's own cache
 * e.g. "tq4", "k=tq4,v=tq3", "q8,layers=all", "tq3,donors=q8". G4_ERR_ARG with a message naming the bad
 * item and the valid values. Layer numbers and types are checked against the model by g4_ctx_new. */
g4_status g4_kv_parse(const char *spec, g4_ctx_params *p, g4_error *err);
/* The specification of p in the form g4_kv_parse takes ("f16", "tq4", "k=tq4,v=tq3,layers=all", ...). */
void g4_kv_spec_string(const g4_ctx_params *p, char *buf, size_t size);
/* The K and V types layer `layer` of model m gets under p (the types of the cache it reads: a KV-shared
 * layer reports its donor's). G4_ERR_ARG for an invalid combination (naming the layer). */
g4_status g4_kv_layer_types(const g4_model *m, const g4_ctx_params *p, int layer, g4_kv_type *k, g4_kv_type *v,
                            g4_error *err);

/* ---- engine, sequences and batches ----------------------------------------------------------------
 * An engine is what one model needs to compute, once per process: the thread pool, the scratch of a forward
 * pass and the weights repacked for the CPU's kernels (done by g4_engine_new: loading a model for inference is
 * that explicit step). A sequence is one stream of tokens: its KV cache (of the types its parameters ask for,
 * TurboQuant included), its tokens and its position. g4_engine_eval runs a batch of entries that may belong
 * to any of the engine's sequences - prompt chunks of new requests and the next tokens of running ones - in
 * passes of up to g4_engine_batch_size() entries, each pass reading every weight matrix once for all of them
 * (continuous batching). An entry's result does not depend on the other entries of its pass: a sequence's
 * logits in a mixed batch equal its logits run alone (with the same cut of its own tokens into passes).
 *
 * One call at a time per engine (and on its sequences): the caller serializes. */

typedef struct g4_engine g4_engine;
typedef struct g4_seq g4_seq;
typedef int (*g4_abort_fn)(void *user);

typedef struct g4_engine_params {
    int n_threads; /* 0 = one per CPU */
    int exact;     /* 1: float32 activations everywhere (reference mode; no repacking) */
} g4_engine_params;

g4_engine_params g4_engine_default_params(void);

/* The engine of model m (which must outlive it). Repacks m's weights unless exact (once per model). */
g4_status g4_engine_new(g4_engine **out, g4_model *m, const g4_engine_params *p, g4_error *err);
/* Frees the engine; its sequences must have been freed before. */
void g4_engine_free(g4_engine *e);
g4_model *g4_engine_model(const g4_engine *e);
int g4_engine_n_threads(const g4_engine *e);
/* Entries per forward pass. */
int g4_engine_batch_size(void);
/* A callback the engine polls between layers; non-zero stops g4_engine_eval with G4_ERR_INTERRUPTED. */
void g4_engine_set_abort(g4_engine *e, g4_abort_fn fn, void *user);

/* A new, empty sequence on engine e: n_ctx tokens of KV cache of the types p asks for (p->exact and
 * p->n_threads are the engine's and not looked at). */
g4_status g4_seq_new(g4_seq **out, g4_engine *e, const g4_ctx_params *p, g4_error *err);
void g4_seq_free(g4_seq *s);
g4_engine *g4_seq_engine(const g4_seq *s);
int g4_seq_n_ctx(const g4_seq *s);
int g4_seq_n_past(const g4_seq *s);
const int32_t *g4_seq_tokens(const g4_seq *s); /* the g4_seq_n_past tokens in its cache */
uint64_t g4_seq_kv_bytes(const g4_seq *s);
const g4_ctx_params *g4_seq_params(const g4_seq *s);
void g4_seq_reset(g4_seq *s);
/* Keep only the first n tokens (see g4_ctx_truncate). */
g4_status g4_seq_truncate(g4_seq *s, int n, g4_error *err);
/* dst becomes src's first n tokens with their KV cache (copied, not recomputed): a prompt that starts with
 * tokens another sequence holds reuses them. Both on the same engine with the same KV types; n <= dst's
 * n_ctx. G4_ERR_CONTEXT when src's sliding-window caches no longer hold what position n needs; dst is then
 * unchanged. */
g4_status g4_seq_copy(g4_seq *dst, const g4_seq *src, int n, g4_error *err);
/* Random K/V for benchmarks (see g4_ctx_fill_random). */
g4_status g4_seq_fill_random(g4_seq *s, int n, uint64_t seed, g4_error *err);

typedef struct g4_batch_entry {
    g4_seq *seq;
    int32_t token;
    int logits; /* non-zero: this position's logits are wanted */
} g4_batch_entry;

/* Evaluates n entries: each token goes to the next position of its sequence (a sequence's entries in the
 * order given). For every entry with .logits set, in order, n_vocab soft-capped logits are written to
 * `logits` (which may be NULL when none is set). Checked before anything runs: tokens in the vocabulary,
 * sequences of this engine with room for their entries (G4_ERR_CONTEXT). On G4_ERR_INTERRUPTED the passes
 * finished before the callback asked to stop are in the caches (g4_seq_n_past tells), and their logits
 * written. */
g4_status g4_engine_eval(g4_engine *e, const g4_batch_entry *b, int n, float *logits, g4_error *err);

/* ---- single-sequence context: an engine of its own and one sequence ---------------------------------- */

typedef struct g4_ctx g4_ctx;

g4_status g4_ctx_new(g4_ctx **out, g4_model *m, const g4_ctx_params *p, g4_error *err);
void g4_ctx_free(g4_ctx *c);

/* Bytes of KV cache this context holds (allocated for n_ctx tokens). */
uint64_t g4_ctx_kv_bytes(const g4_ctx *c);
/* Bytes the KV cache of `m` would need for n_ctx tokens of type kv on every layer. */
uint64_t g4_model_kv_bytes(const g4_model *m, int n_ctx, g4_kv_type kv);
/* The same for the KV settings of p (p->n_ctx is not used); 0 when p is invalid for m. */
uint64_t g4_model_kv_bytes_params(const g4_model *m, int n_ctx, const g4_ctx_params *p);

/* The model and the context length of a context; its engine and sequence. */
g4_model *g4_ctx_model(const g4_ctx *c);
g4_engine *g4_ctx_engine(const g4_ctx *c);
g4_seq *g4_ctx_seq(const g4_ctx *c);
int g4_ctx_n_ctx(const g4_ctx *c);

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

/* A callback g4_eval polls between layers; when it returns non-zero, g4_eval stops and returns
 * G4_ERR_INTERRUPTED with the tokens of the unfinished batch not added (the context stays usable). */
void g4_ctx_set_abort(g4_ctx *c, g4_abort_fn fn, void *user);

/* Appends n positions of pseudo-random K and V vectors (Gaussian, variance 1 per coordinate, like the
 * model's normalized K and V; token id 0) to every cache, as if n tokens had been evaluated: for
 * benchmarks of decode at a depth without the time to evaluate that depth. What the model computes
 * afterwards is meaningless. G4_ERR_CONTEXT if n does not fit. */
g4_status g4_ctx_fill_random(g4_ctx *c, int n, uint64_t seed, g4_error *err);

/* Runs n tokens at positions n_past .. n_past+n-1 as one batch (prefill) and appends them to the
 * cache. If `logits` is not NULL it receives n_vocab floats per position: for every position when
 * all_logits is set ([n x n_vocab]), else for the last position only. */
g4_status g4_eval(g4_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits,
                  g4_error *err);
/* Like g4_eval, but instead of the whole logit row of the last position, only its k largest logits:
 * ids[] and logits[] (k entries each) sorted by decreasing logit, ties by lower id, NaN and -inf left
 * out (*n_top says how many there are, at most k). The values are exactly those g4_eval gives; the
 * threads pick them while the LM head is computed, so no pass over the vocabulary is left for the
 * caller (the sampler's top-k or greedy step). */
g4_status g4_eval_top(g4_ctx *c, const int32_t *tokens, int n, int k, int32_t *ids, float *logits, int *n_top,
                      g4_error *err);

/* ---- tokenizer ----------------------------------------------------------------------------------
 * Text <-> token ids from a GGUF file's tokenizer.ggml.* metadata, bit-exact with llama.cpp for the two
 * kinds Gemma files use: "gemma4" (BPE with merge ranks; Gemma 4) and "llama" (SentencePiece-style
 * merges by score; Gemma 3). docs/tokenizer.md describes the algorithms.
 *
 * A g4_vocab does not change once made: every function here may be called from several threads at
 * once on the same vocabulary (g4_tokenize reuses one scratch area per vocabulary and makes a
 * temporary one when another thread is using it). */

typedef struct g4_vocab g4_vocab;

/* token types, as tokenizer.ggml.token_type stores them */
enum {
    G4_TOKEN_UNDEFINED = 0, G4_TOKEN_NORMAL = 1, G4_TOKEN_UNKNOWN = 2, G4_TOKEN_CONTROL = 3,
    G4_TOKEN_USER_DEFINED = 4, G4_TOKEN_UNUSED = 5, G4_TOKEN_BYTE = 6
};

/* The tokenizer of a GGUF file: a vocab-only file (tokenizer metadata, no tensors) or a whole model
 * (its tensors are not looked at). G4_ERR_FORMAT if the file has no tokenizer. */
g4_status g4_vocab_open(g4_vocab **out, const char *path, g4_error *err);
void g4_vocab_free(g4_vocab *v);

/* The tokenizer of a model; NULL when its file has no tokenizer metadata. Owned by the model. */
const g4_vocab *g4_model_vocab(const g4_model *m);

const char *g4_vocab_kind(const g4_vocab *v);      /* "gemma4" or "llama" */
int g4_vocab_n_tokens(const g4_vocab *v);
int32_t g4_vocab_bos(const g4_vocab *v);           /* special ids: -1 when the vocabulary has none */
int32_t g4_vocab_eos(const g4_vocab *v);
int32_t g4_vocab_eot(const g4_vocab *v);           /* end of turn (<end_of_turn> in Gemma 3), if any */
/* End of generation: <eos>, <turn|>, <|tool_response>, <end_of_turn> (those present), and the
 * tokenizer.ggml.eos_token_id / eot_token_id tokens. */
int g4_vocab_is_eog(const g4_vocab *v, int32_t id);
/* Number of end-of-generation ids and the i-th of them (sorted). */
int g4_vocab_n_eog(const g4_vocab *v);
int32_t g4_vocab_eog(const g4_vocab *v, int i);
/* Control or unknown token (printed only when asked for special tokens). */
int g4_vocab_is_control(const g4_vocab *v, int32_t id);
int g4_vocab_token_type(const g4_vocab *v, int32_t id); /* G4_TOKEN_*, -1 for an invalid id */
/* Text of a token as stored in the file (not NUL-terminated), NULL for an invalid id. */
const char *g4_vocab_token_text(const g4_vocab *v, int32_t id, size_t *len);
/* Id of the token whose text is exactly text[0..len), -1 if there is none. */
int32_t g4_vocab_find(const g4_vocab *v, const char *text, size_t len);
/* tokenizer.chat_template of the file (not NUL-terminated), NULL if absent. */
const char *g4_vocab_chat_template(const g4_vocab *v, size_t *len);

/* Largest number of ids text of `len` bytes can produce (each byte gives at most 3 byte-fallback
 * tokens, plus BOS and EOS). */
size_t g4_tokenize_bound(size_t len);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 becomes byte tokens, never an error).
 *   add_bos        add BOS in front when the vocabulary adds one (tokenizer.ggml.add_bos_token; Gemma:
 *                  always), and EOS at the end when it adds one (add_eos_token)
 *   parse_special  control tokens written in the text (<|turn>, <bos>, ...) become those tokens;
 *                  otherwise they are ordinary text. User-defined tokens are always matched.
 * Writes up to max_ids ids and sets *n_ids to the number of ids the text has; if that is more than
 * max_ids, returns G4_ERR_ARG (a buffer of g4_tokenize_bound(len) ids is always enough). */
g4_status g4_tokenize(const g4_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t *ids, size_t max_ids, size_t *n_ids, g4_error *err);
/* The same into a malloc'ed array (free it with free()). */
g4_status g4_tokenize_alloc(const g4_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                            int32_t **ids, size_t *n_ids, g4_error *err);

/* The bytes a token stands for: U+2581 becomes a space, <0xXX> that byte; control and unknown tokens
 * give nothing unless `special`. Copies min(size, length) bytes to buf and returns the length. An
 * invalid id gives 0. */
size_t g4_token_to_piece(const g4_vocab *v, int32_t id, int special, char *buf, size_t size);

/* Streaming detokenizer: feed ids one at a time, print what comes back. Output is always valid UTF-8:
 * the bytes of an unfinished character are held back until it is complete, and bytes that cannot form
 * a character become U+FFFD (one per maximal invalid subsequence, as Unicode recommends). */
typedef struct g4_detok g4_detok;
g4_status g4_detok_new(g4_detok **out, const g4_vocab *v, int special, g4_error *err);
void g4_detok_free(g4_detok *d);
/* Bytes ready after token `id` (*len of them; the pointer is valid until the next call on d). */
const char *g4_detok_push(g4_detok *d, int32_t id, size_t *len);
/* End of the stream: what was held back (an unfinished character becomes U+FFFD); then starts over. */
const char *g4_detok_flush(g4_detok *d, size_t *len);
void g4_detok_reset(g4_detok *d);
/* A whole sequence into a malloc'ed, NUL-terminated string (free it with free()). */
g4_status g4_detokenize(const g4_vocab *v, const int32_t *ids, size_t n, int special, char **out,
                        size_t *len, g4_error *err);

#ifdef __cplusplus
}
#endif
#endif
