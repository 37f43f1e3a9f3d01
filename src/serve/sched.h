/* The scheduler of a loaded model: one engine, a pool of sequence slots (--parallel N slots of --ctx tokens of
 * KV cache each, allocated up front), one thread that steps every running request in shared forward passes:
 * each step holds the next token of every decoding request and chunks of the prompts being read (chunked
 * prefill, so a long prompt does not stall the others), then samples each request's next token with its own
 * stream (src/generate/stream.h). Requests wait in a bounded queue when every slot is busy.
 *
 * Prompt-prefix cache: a request goes to the free slot whose cached tokens share the longest prefix with its
 * prompt; when another slot (running or not) holds a longer one, that KV is copied instead of recomputed
 * (the same system prompt, the earlier turns of the same chat).
 *
 * Threads: submit, next, cancel and release may be called from any thread (the HTTP server's); the
 * scheduler's own thread is the only one touching the engine. */
#ifndef G4_SCHED_H
#define G4_SCHED_H

#include "g4.h"
#include "generate/stream.h"

#include <jansson.h>

typedef struct g4_sched g4_sched;
typedef struct g4_job g4_job;

typedef struct g4_sched_params {
    int n_parallel;        /* slots (sequences decoded together); >= 1 */
    g4_ctx_params ctx;     /* n_ctx per slot and the KV cache types */
    int n_threads;         /* engine threads (0: one per CPU) */
    int max_queue;         /* requests waiting for a slot beyond which submit says G4_ERR_BUSY (0: 4 * n_parallel) */
    int step_tokens;       /* entries per step (decode tokens first, then prompt chunks; 0: the engine's pass size) */
} g4_sched_params;

g4_sched_params g4_sched_default_params(void);

/* Creates the engine (repacking the weights) and the slots, and starts the thread. m must outlive it. */
g4_status g4_sched_new(g4_sched **out, g4_model *m, const g4_sched_params *p, g4_error *err);
/* Stops the thread; running and waiting requests end with G4_STOP_CALLER (their consumers see done). */
void g4_sched_free(g4_sched *s);

typedef struct g4_sched_stats {
    int n_parallel, n_ctx;
    int busy;              /* slots running a request */
    int queued;            /* requests waiting */
    uint64_t kv_bytes;     /* KV cache of all slots (allocated) */
    uint64_t kv_tokens;    /* tokens held in the slots' caches (running or kept for prefix reuse) */
    uint64_t n_requests, n_prompt_tokens, n_prompt_cached, n_gen_tokens, n_steps;
    double t_busy;         /* seconds the thread spent in steps */
    double last_use;       /* g4_time_s() of the last step or submit */
} g4_sched_stats;
void g4_sched_get_stats(g4_sched *s, g4_sched_stats *st);
g4_model *g4_sched_model(const g4_sched *s);

typedef struct g4_job_params {
    const int32_t *prompt; /* copied */
    int n_prompt;
    g4_stream_params stream; /* stop strings and the rest copied; grammar / gvocab must outlive the job */
    int n_ctx;             /* 0, or a smaller context for this request (prompt + answer) */
} g4_job_params;

/* Queues a request. G4_ERR_CONTEXT when the prompt leaves no room for an answer in a slot (nothing queued),
 * G4_ERR_BUSY when the queue is full, G4_ERR_ARG for parameters the stream refuses. *out is released with
 * g4_job_release (also when the consumer stops caring: that cancels it). */
g4_status g4_sched_submit(g4_sched *s, const g4_job_params *p, g4_job **out, g4_error *err);

/* What a job has produced since a cursor (the consumer's offsets). */
typedef struct g4_job_cursor {
    size_t text, thinking, answer;
    int tool_calls, logprobs;
} g4_job_cursor;

typedef struct g4_job_result {
    int n_prompt, n_prompt_cached, n_gen;
    double t_queue;        /* seconds waiting for a slot */
    double t_prompt;       /* seconds from taking a slot to the first token */
    double t_gen;          /* seconds from the first token to the end */
    g4_stop_reason stop;
    g4_status error;       /* G4_OK, or why the request failed */
    char message[512];
    unsigned chat_flags;   /* g4_chat_parser_flags at the end (chat parsing) */
} g4_job_result;

typedef struct g4_job_delta {
    char *text;            /* new raw text (malloc'ed, NUL-terminated; NULL when none) */
    size_t text_len;
    char *thinking, *answer; /* chat parsing: new thinking / answer text */
    size_t thinking_len, answer_len;
    json_t *tool_calls;    /* new completed tool calls [{"name", "arguments": {...}}] (NULL when none) */
    g4_token_logprob *logprobs; /* new entries (malloc'ed) */
    int n_logprobs;
    int done;              /* the job has ended: result is final */
    g4_job_result result;
} g4_job_delta;

/* Waits until the job has something past cur or has ended (timeout_ms < 0: no timeout; 0: do not wait), then
 * fills d with what is new and advances cur. Returns 1 when d holds something new or the end, 0 on timeout.
 * Free d's contents with g4_job_delta_clear. */
int g4_job_next(g4_job *j, g4_job_cursor *cur, int timeout_ms, g4_job_delta *d);
void g4_job_delta_clear(g4_job_delta *d);
/* Asks the scheduler to stop the job (the client left): its slot is freed at the next step. */
void g4_job_cancel(g4_job *j);
/* The consumer is done with the job (cancels it if it is still running). */
void g4_job_release(g4_job *j);

#endif
