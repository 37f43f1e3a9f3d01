/* A generation stream: what turns one sequence's logits into text, a token at a time, for whoever drives the
 * engine (the CLI's generation loop, the server's scheduler that steps many streams in one batch). It owns the
 * sampler, the structured-output matcher, the detokenizer, the stop-string hold-back and the chat parser:
 *
 *     g4_stream_new(&st, vocab, &params, &err);
 *     (evaluate the prompt; the engine gives the logits of its last position)
 *     loop: g4_stream_next(st, logits, &tok, &done, &err);     sample, then follow the token
 *           if (done) break;
 *           (evaluate tok; its logits)
 *     g4_stream_finish(st, G4_STOP_CONTEXT, &err);              when the caller ends it (context full, cancel)
 *
 * Text only grows: g4_stream_text is everything released so far (valid UTF-8; the end of it is held back while
 * it could be the start of a stop string), and with chat parsing the parser's thinking and answer texts and its
 * tool calls only grow too, so a consumer sends what is past its last offsets. */
#ifndef G4_STREAM_H
#define G4_STREAM_H

#include "g4_chat.h"
#include "g4.h"
#include "g4_generate.h"
#include "g4_grammar.h"
#include "g4_sampler.h"

typedef struct g4_stream_params {
    g4_sampler_params sampling;
    g4_sampler *sampler;       /* NULL: the stream makes its own from `sampling`; else this one is used (and
                                  outlives the stream: a chat keeps one sampler's history over its turns) */
    int max_tokens;            /* -1 or 0: no limit (but the context); N > 0: at most N tokens */
    const char *const *stop;   /* stop strings (copied; empty ones ignored) */
    int n_stop;
    int chat;                  /* parse the output as Gemma 4's chat format (thinking, answer, tool calls) */
    int in_thinking;           /* chat: the prompt ended inside an open thought block */
    int think;                 /* chat: thinking was enabled (the model may open a thought block first) */
    /* structured output: the answer follows this grammar (NULL: free text); both outlive the stream. With
     * chat parsing the grammar applies from the first answer token: after the thought block when the model
     * thinks, else from the first token */
    const g4_grammar *grammar;
    const g4_gvocab *gvocab;
    int n_logprobs;            /* -1: no log-probabilities; 0..G4_STREAM_MAX_LOGPROBS: each token's, with that
                                  many most likely alternatives */
} g4_stream_params;

#define G4_STREAM_MAX_LOGPROBS 20

/* max_tokens -1, no stop strings, plain text, no grammar, no logprobs, the sampler's defaults */
g4_stream_params g4_stream_default_params(void);

typedef struct g4_stream g4_stream;

/* G4_ERR_ARG for parameters the sampler or g4_gen_params_check refuse, or a grammar without its vocabulary. */
g4_status g4_stream_new(g4_stream **out, const g4_vocab *v, const g4_stream_params *p, g4_error *err);
void g4_stream_free(g4_stream *s);

/* Samples the next token from logits (n_vocab values; modified when the grammar has to mask them) and follows
 * it: end of generation, detokenization, stop strings, the chat parser, the token limit. *done is set when the
 * stream has ended (then tok is the last token and must not be evaluated). Errors: G4_ERR_NOMEM, or what the
 * grammar matcher reports; the stream is unusable after one. */
g4_status g4_stream_next(g4_stream *s, float *logits, int32_t *tok, int *done, g4_error *err);
/* The same when only the k largest logits are known (g4_eval_top: ids / vals sorted); only valid when
 * g4_stream_top_k says k is enough. */
g4_status g4_stream_next_top(g4_stream *s, const int32_t *ids, const float *vals, int n, int32_t *tok, int *done,
                             g4_error *err);
/* How many of the largest logits the next draw needs (0: every logit, e.g. a grammar or logprobs). */
int g4_stream_top_k(const g4_stream *s);
/* Ends the stream from outside (the context is full, the caller stops): releases what was held back. */
g4_status g4_stream_finish(g4_stream *s, g4_stop_reason why, g4_error *err);

int g4_stream_done(const g4_stream *s);
g4_stop_reason g4_stream_stop_reason(const g4_stream *s);
int g4_stream_n_gen(const g4_stream *s);     /* tokens sampled (the end-of-generation token included) */
int32_t g4_stream_last_token(const g4_stream *s);
/* every byte released so far (NUL-terminated) */
const char *g4_stream_text(const g4_stream *s, size_t *len);
/* the chat parser (NULL without chat parsing) */
const g4_chat_parser *g4_stream_chat(const g4_stream *s);
g4_sampler *g4_stream_sampler(g4_stream *s);

/* log-probabilities of the tokens sampled so far (n_logprobs >= 0) */
typedef struct g4_token_logprob {
    int32_t token;
    float logprob;          /* natural log of the model's probability (softmax of the logits) */
    int n_top;
    int32_t top_id[G4_STREAM_MAX_LOGPROBS];
    float top_logprob[G4_STREAM_MAX_LOGPROBS];
} g4_token_logprob;
int g4_stream_n_logprobs(const g4_stream *s);
const g4_token_logprob *g4_stream_logprob(const g4_stream *s, int i);

#endif
