/* The request layer of g4 serve, apart from HTTP: a JSON body of one of the generation APIs (Ollama's
 * /api/generate and /api/chat, OpenAI's /v1/chat/completions and /v1/completions) checked and turned into an
 * internal request (messages in the chat renderer's shape, options normalized, structured output, thinking,
 * keep_alive), the generation settings of a request on a model (the model's defaults, then the Modelfile's
 * PARAMETERs, then the request), and the JSON objects the APIs answer with. Nothing here prints, exits or does
 * I/O; every function can be fed anything (fuzz/fuzz_request.c). docs/serving.md lists the fields. */
#ifndef G4_SERVE_REQUEST_H
#define G4_SERVE_REQUEST_H

#include "g4.h"
#include "generate/stream.h"
#include "serve/sched.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { G4_API_GENERATE = 0, G4_API_CHAT, G4_API_OAI_CHAT, G4_API_OAI_COMPLETION } g4_api;

#define G4_SREQ_MAX_N 16      /* OpenAI n: choices per request */
#define G4_SREQ_MAX_PROMPTS 16 /* /v1/completions: prompts in one request */

typedef struct g4_sreq {
    g4_api api;
    char *model;            /* as the client wrote it */
    json_t *messages;       /* chat: the conversation in the renderer's shape (never NULL for chat APIs) */
    json_t *tools;          /* NULL: none (tool_choice "none" drops them) */
    char *prompt;           /* /api/generate: the prompt (NULL: none given) */
    size_t prompt_len;
    json_t *prompts;        /* /v1/completions: array of prompt strings */
    char *system;           /* /api/generate: system (NULL: the Modelfile's) */
    int raw;                /* /api/generate raw: the prompt as it is, no chat format */
    int stream;             /* stream the answer (Ollama: default true; OpenAI: default false) */
    int include_usage;      /* OpenAI stream_options.include_usage */
    int think;              /* -1: the server's default, 0 off, 1 on */
    int format;             /* 0 free text, 1 any JSON object, 2 the schema below */
    json_t *schema;
    json_t *options;        /* normalized Ollama option names (g4_params_check); never NULL after parse */
    int has_keep_alive;
    double keep_alive;      /* seconds; < 0 forever, 0 unload after the request */
    int n;                  /* choices (OpenAI n) */
    int logprobs;           /* -1: none; else the number of alternatives per token (0..20) */
    int empty;              /* Ollama: no prompt / no messages: load (and with keep_alive 0, unload) only */
} g4_sreq;

/* Parses and checks a request body. G4_ERR_ARG with a message saying what is wrong (the server answers 400);
 * G4_ERR_UNSUPPORTED for things g4 cannot do (images, audio, suffix); G4_ERR_NOMEM. r is always safe to free. */
g4_status g4_sreq_parse(g4_api api, const char *body, size_t len, g4_sreq *r, g4_error *err);
void g4_sreq_free(g4_sreq *r);

/* A keep_alive value: a JSON number (seconds) or a string in Go's duration syntax ("5m", "1h30m", "30s",
 * "500ms", "-1", "0", or a plain number of seconds). G4_ERR_ARG for anything else. */
g4_status g4_parse_duration_json(const json_t *v, double *seconds, g4_error *err);
g4_status g4_parse_duration(const char *s, double *seconds, g4_error *err);

/* The generation settings of request r on a model: base = g4_sampler_model_params(model), then the stored
 * parameters (model_params: Ollama option names, may be NULL), then the request's options. *sp gets the
 * sampling, *max_tokens the token limit (-1 none), stops/n_stop the stop strings (pointers into model_params or
 * r, at most max_stop), *n_ctx the per-request context (0: the server's; larger values than server_ctx are
 * clamped to it and *clamped set). seed_random is used when no seed is given. G4_ERR_ARG with the library's
 * messages for values out of range. */
g4_status g4_sreq_settings(const g4_sreq *r, const g4_sampler_params *base, const json_t *model_params,
                           int server_ctx, uint64_t seed_random, g4_sampler_params *sp, int *max_tokens,
                           const char **stops, int max_stop, int *n_stop, int *n_ctx, int *clamped, g4_error *err);

/* ---- answers ---- */

/* What one choice has produced so far (accumulated from g4_job_next deltas). */
typedef struct g4_choice {
    char *text, *thinking, *answer; /* malloc'ed, NUL-terminated (never NULL after g4_choice_init) */
    size_t text_len, thinking_len, answer_len;
    json_t *tool_calls;     /* [{"name","arguments":{...}}] */
    json_t *logprobs;       /* OpenAI chat logprobs content entries [{"token","logprob","bytes","top_logprobs"}] */
    int done;
    g4_job_result res;
} g4_choice;

g4_status g4_choice_init(g4_choice *c, g4_error *err);
void g4_choice_free(g4_choice *c);
/* Appends a delta to the choice. vocab (may be NULL) spells the logprob tokens. */
g4_status g4_choice_add(g4_choice *c, const g4_job_delta *d, const g4_vocab *vocab, g4_error *err);
/* The logprob entries of a delta in OpenAI's chat shape (new reference; NULL when none or out of memory). */
json_t *g4_logprobs_json(const g4_token_logprob *lp, int n, const g4_vocab *vocab);

/* Ollama's done_reason / OpenAI's finish_reason of a finished job ("stop", "length"; OpenAI "tool_calls" when
 * calls were made) */
const char *g4_done_reason(const g4_job_result *res);
const char *g4_finish_reason(const g4_job_result *res, int has_tool_calls);

/* RFC 3339 time with nanoseconds, UTC ("2024-07-22T20:37:46.836478Z"), as Ollama writes it; buf >= 40 */
void g4_rfc3339(double unix_seconds, char *buf, size_t size);

/* Ollama tool calls from the parser's [{"name","arguments"}]: [{"id","function":{"index","name","arguments"}}] */
json_t *g4_ollama_tool_calls(const json_t *calls, int first_index, const char *id_prefix);
/* OpenAI tool calls: [{"index"?, "id","type":"function","function":{"name","arguments":"<json text>"}}] */
json_t *g4_oai_tool_calls(const json_t *calls, int first_index, const char *id_prefix, int with_index);

/* Ollama's timing fields of a final object (durations in nanoseconds) onto o. */
void g4_ollama_final_fields(json_t *o, const g4_job_result *res, double total_s, double load_s);
/* OpenAI usage {"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details":{"cached_tokens"}} */
json_t *g4_oai_usage(int prompt, int cached, int completion);

/* The whole non-streamed answer of each API (new reference; NULL when out of memory).
 * Ollama: the object with response / message and the final fields. */
json_t *g4_ollama_answer(const g4_sreq *r, const char *model, double now, const g4_choice *c, double total_s,
                         double load_s);
/* OpenAI: chat.completion / text_completion with every choice. */
json_t *g4_oai_answer(const g4_sreq *r, const char *id, const char *model, int64_t created, g4_choice *const *cs,
                      int n);

/* Error bodies: Ollama {"error": msg}; OpenAI {"error":{"message","type","param","code"}} */
json_t *g4_ollama_error(const char *msg);
json_t *g4_oai_error(const char *msg, const char *type, const char *param, const char *code);

#endif
