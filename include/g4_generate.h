/* The generation loop: reuse the cached prefix of the prompt, evaluate the rest, then sample, stream and
 * stop (end-of-generation token, stop string, token limit, full context, or the caller). */
#ifndef G4_GENERATE_H
#define G4_GENERATE_H

#include "g4.h"
#include "g4_sampler.h"

/* Limits of g4_gen_params_check (a server passes on what clients send) */
#define G4_GEN_MAX_STOP 64           /* stop strings */
#define G4_GEN_MAX_STOP_BYTES 1024   /* bytes of one stop string */

typedef struct g4_gen_params {
    int max_tokens;              /* -1 or 0: until the context is full; N > 0: at most N tokens */
    const char *const *stop;     /* stop strings (the text before the first match is kept); an empty
                                    string is ignored */
    int n_stop;                  /* 0 .. G4_GEN_MAX_STOP (stop may be NULL when 0) */
    int special;                 /* stream control tokens as text (the chat parser needs them) */
    int full_logits;             /* compute every logit even when the sampler needs only the top k
                                    (same tokens; for tests and comparisons) */
} g4_gen_params;

typedef enum {
    G4_STOP_NONE = 0,
    G4_STOP_EOG,       /* the model ended its turn */
    G4_STOP_MAX,       /* max_tokens reached */
    G4_STOP_STRING,    /* a stop string appeared */
    G4_STOP_CALLER,    /* the callback asked to stop (Ctrl-C) */
    G4_STOP_CONTEXT,   /* the context is full */
} g4_stop_reason;

const char *g4_stop_reason_str(g4_stop_reason r);

/* G4_OK, or G4_ERR_ARG naming the parameter, its value and the valid range: max_tokens >= -1, n_stop
 * 0 .. G4_GEN_MAX_STOP, every stop string non-NULL and at most G4_GEN_MAX_STOP_BYTES bytes.
 * g4_generate checks its parameters with it (and the sampler's with g4_sampler_params_check). */
g4_status g4_gen_params_check(const g4_gen_params *gp, g4_error *err);

typedef struct g4_gen_stats {
    int n_prompt;          /* prompt tokens */
    int n_prompt_cached;   /* of which were already in the cache */
    int n_gen;             /* tokens generated */
    double t_prompt;       /* seconds evaluating the prompt */
    double t_first;        /* seconds from the call to the first token's text */
    double t_gen;          /* seconds generating after the first token */
    g4_stop_reason stop;
    int32_t last_token;    /* the token that ended generation (EOG), or -1 */
} g4_gen_stats;

/* Text callback: valid UTF-8 pieces in order; return non-zero to stop. */
typedef int (*g4_gen_text_fn)(void *user, const char *text, size_t len);

/* G4_ERR_ARG (nothing evaluated) for parameters g4_gen_params_check refuses; G4_ERR_CONTEXT (nothing evaluated) when the prompt does not fit in the context with room for one
 * token; other errors from evaluation. On success the generated tokens (but the last sampled one) are in
 * the cache after the prompt. */
g4_status g4_generate(g4_ctx *c, const g4_vocab *v, g4_sampler *s, const int32_t *prompt, int n_prompt,
                      const g4_gen_params *gp, g4_gen_text_fn on_text, void *user, g4_gen_stats *st,
                      g4_error *err);

#endif
