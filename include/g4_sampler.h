/* Token sampling: penalties over the recent history, then top-k, top-p, min-p, temperature and a
 * seeded draw (llama.cpp's default order). temperature 0 is greedy. Reproducible: the same seed,
 * logits and history give the same tokens. */
#ifndef G4_SAMPLER_H
#define G4_SAMPLER_H

#include "g4.h"
#include <stdint.h>

/* Valid ranges (g4_sampler_params_check; g4_sampler_new and g4_sampler_set_params refuse anything else):
 *   temperature        finite, >= 0 (0: greedy)
 *   top_k              0 .. G4_SAMPLER_MAX_TOP_K (0: off)
 *   top_p, min_p       finite, 0 .. 1 (top_p 1: off; min_p 0: off)
 *   repeat_penalty     finite, G4_SAMPLER_MIN_REPEAT_PENALTY .. G4_SAMPLER_MAX_PENALTY (1: off)
 *   presence_penalty,
 *   frequency_penalty  finite, -G4_SAMPLER_MAX_PENALTY .. G4_SAMPLER_MAX_PENALTY (0: off)
 *   penalty_last_n     -1 .. G4_SAMPLER_MAX_LAST_N (-1: the whole history, up to G4_SAMPLER_MAX_LAST_N tokens)
 *   seed               any */
#define G4_SAMPLER_MAX_TOP_K 1000000
#define G4_SAMPLER_MIN_REPEAT_PENALTY 0.01f
#define G4_SAMPLER_MAX_PENALTY 100.0f
#define G4_SAMPLER_MAX_LAST_N (1 << 20)

typedef struct g4_sampler_params {
    float temperature;       /* 0: greedy (argmax) */
    int top_k;               /* 0: off */
    float top_p;             /* 1: off */
    float min_p;             /* 0: off */
    float repeat_penalty;    /* 1: off; logits of recent tokens: positive /= p, negative *= p */
    float presence_penalty;  /* 0: off; subtracted once from every recent token's logit */
    float frequency_penalty; /* 0: off; subtracted per occurrence */
    int penalty_last_n;      /* history window for the penalties (0: none, -1: whole history) */
    uint64_t seed;
} g4_sampler_params;

/* G4_OK, or G4_ERR_ARG with a message naming the first parameter out of range, its value and the valid
 * range (e.g. "temperature nan is out of range: a finite number >= 0 (0: greedy)"). The one check for
 * every caller (command line, chat /set, /load, a server's request). */
g4_status g4_sampler_params_check(const g4_sampler_params *p, g4_error *err);

/* Gemma 4's model-card defaults: temperature 1.0, top-k 64, top-p 0.95, no min-p, no penalties */
g4_sampler_params g4_sampler_default_params(void);
/* The defaults a model's file asks for (general.sampling.temp / top_k / top_p / min_p), else the above. */
g4_sampler_params g4_sampler_model_params(const g4_model *m);

typedef struct g4_sampler g4_sampler;

/* G4_ERR_ARG for parameters g4_sampler_params_check refuses */
g4_status g4_sampler_new(g4_sampler **out, const g4_sampler_params *p, int n_vocab, g4_error *err);
void g4_sampler_free(g4_sampler *s);
/* change parameters (the history and the random state are kept unless the seed changes; a new
 * penalty_last_n starts the history afresh). Invalid parameters (G4_ERR_ARG) or no memory for the new
 * history (G4_ERR_NOMEM) leave the sampler as it was. */
g4_status g4_sampler_set_params(g4_sampler *s, const g4_sampler_params *p, g4_error *err);
const g4_sampler_params *g4_sampler_get_params(const g4_sampler *s);

/* Pick the next token from n_vocab logits (the array is not modified). */
int g4_sampler_sample(g4_sampler *s, const float *logits);
/* How many of the largest logits the next draw depends on with the current parameters and history (1
 * when greedy, top_k without penalties), or 0 when it needs them all: then g4_eval_top and
 * g4_sampler_sample_top give the same token as g4_eval and g4_sampler_sample. */
int g4_sampler_top_k(const g4_sampler *s);
/* Draw from the n largest logits only (ids and logits sorted by decreasing logit, ties by lower id:
 * g4_eval_top's output), n <= the k above. */
int g4_sampler_sample_top(g4_sampler *s, const int32_t *ids, const float *logits, int n);
/* Record a token in the penalty history (prompt tokens too, if they should count). */
void g4_sampler_accept(g4_sampler *s, int token);
/* Forget the history (the random state continues). */
void g4_sampler_reset(g4_sampler *s);

/* The probabilities the last g4_sampler_sample drew from, after every filter: n candidates, their ids
 * and probabilities (summing to 1), sorted by decreasing probability. For tests and --verbose. */
int g4_sampler_last_candidates(const g4_sampler *s, const int **ids, const float **probs);

#endif
