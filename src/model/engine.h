/* The objects of inference (internal): the engine, shared by every sequence of a model in a process (thread
 * pool, batch scratch, RoPE tables), the sequence (its KV cache, tokens and position), and the single-sequence
 * context of the original API, which is an engine and one sequence. forward.c runs a batch of entries that may
 * belong to different sequences; engine.c owns the objects and the public calls. */
#ifndef G4_ENGINE_H
#define G4_ENGINE_H

#include "g4.h"
#include "kv/kv.h"
#include "model/model.h"

#define G4_ATT_SPLIT 256  /* keys per split of the attention softmax (fixed: see attend in forward.c) */
#define G4_BATCH 32       /* entries per forward pass (longer batches are cut into passes of this size) */
#define G4_ROLLBACK 256   /* extra cells in sliding-layer rings: how far g4_seq_truncate can go back */
#define G4_ROPE_KINDS 4   /* RoPE tables per engine (Gemma 4 has two kinds of layer) */

struct g4_pool;

/* The k largest values with their ids (forward.c's LM head top-k: a min-heap per thread) */
struct top_heap {
    int k, n;
    int32_t *id;
    float *v;
};

struct g4_seq {
    g4_engine *e;
    g4_ctx_params p;  /* n_ctx and the KV types */
    g4_kv kv;
    int n_past;
    int32_t *tokens;  /* the n_past tokens in the cache */
    int ring_lo;      /* sliding rings hold no position below this one (a copied prefix starts there) */
    int pending;      /* g4_engine_eval's count of its entries while checking a batch */
};

struct g4_engine {
    g4_model *m;
    int exact;
    int n_batch;
    struct g4_pool *pool;
    g4_abort_fn abort_fn;
    void *abort_user;
    /* the entries of the pass being computed: their sequence, position and index among that sequence's
     * entries of the pass (position - seq->n_past: where a packed cache keeps its exact rotated rows) */
    g4_seq **bseq;    /* [n_batch] */
    int *bpos;        /* [n_batch] */
    /* scratch, sized for n_batch entries */
    float *x;      /* [T][D] residual stream */
    float *xn;     /* [T][D] normed input of a block */
    float *t1, *t2;/* [T][D] block outputs */
    float *q;      /* [T][H*hd_max] */
    float *k, *v;  /* [T][nkv_max*hd_max] */
    float *att;    /* [T][H*hd_max] attention output */
    float *ffa, *ffb; /* [T][ff_max] */
    float *scores; /* [n_threads][group_max * G4_ATT_SPLIT] scores of one split */
    float *part;   /* [n_threads][splits_max][group_max][2 + hd_max] partial softmax sums of splits */
    int8_t *q8;    /* packed KV layers: [T][H*hd_max] int8 rotated queries */
    g4_tq_gqa_query *gq; /* [T][H] */
    int splits_max, group_max, hd_max;
    float *ple;    /* [T][L*P] per-layer inputs */
    float *plet;   /* [T][L*P] */
    /* MoE: the batch's tokens grouped by expert */
    float *moe_in;  /* [T][D] normed inputs of the experts */
    float *moe_gin; /* [T][D] the inputs of one expert's tokens, gathered */
    float *moe_g;   /* [T][2*F] gate/up outputs of one expert's tokens */
    float *moe_y;   /* [T][K][D] each token's expert outputs, in its routing order */
    float *router;  /* [T][n_expert] */
    int *moe_sel;   /* [T][K] selected experts */
    float *moe_w;   /* [T][K] their weights */
    int *moe_tok;   /* [T] tokens of one expert */
    void *qact;     /* encoded activation rows for the fast path */
    size_t qact_row; /* bytes per encoded row slot */
    /* RoPE (cos, sin) tables of the pass's positions, one per kind of layer (n_rot, base, factors) */
    int n_rope;
    struct { int n_rot; float base; const float *ff; float *cs; /* [T][n_rot] */ } rope[G4_ROPE_KINDS];
    int *rope_of;  /* [n_layer] table index, or -1: computed per head */
    /* top-k of one position: the logit row, and per thread heaps of top_k entries (allocated on first use) */
    float *logit_buf, *top_v, *top_pairs;
    int32_t *top_id;
    struct top_heap *top_heaps;
    int top_k;
};

struct g4_ctx {
    g4_engine *e;
    g4_seq *s;
};

/* the k largest logits of one position, from forward.c's LM head (scratch prepared by engine_top_alloc) */
typedef struct engine_top_req {
    int k;
    int32_t *ids;
    float *vals;
    int n; /* out */
} engine_top_req;

/* One forward pass over T <= n_batch entries (tokens valid, sequences with room, positions assigned in
 * e->bseq / e->bpos). logits: a row per entry with want[t] set, in order (want NULL: none). top: instead of
 * logits rows, the top-k of the last entry. Returns 0 when the abort callback stopped it (nothing added). The
 * caller advances the sequences. */
int g4_forward_pass(g4_engine *e, const int32_t *tok, int T, const int *want, float *logits, engine_top_req *top);
/* Scratch that depends on the longest context of the engine's sequences (attention splits). */
g4_status g4_engine_reserve_ctx(g4_engine *e, int n_ctx, g4_error *err);
/* Scratch for top-k requests of up to k entries. */
g4_status g4_engine_reserve_top(g4_engine *e, int k, g4_error *err);

#endif
