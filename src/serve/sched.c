#include "serve/sched.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct g4_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;              /* the consumer's and the scheduler's */
    int cancelled;
    int done;
    int32_t *prompt;
    int n_prompt;
    int n_limit;           /* positions it may use (prompt + answer) */
    g4_stream *st;         /* touched by the scheduler under mu; read by the consumer under mu */
    g4_job_result res;
    double t_submit, t_start, t_first;
    g4_job *next;          /* queue */
};

typedef enum { SLOT_IDLE, SLOT_PREFILL, SLOT_DECODE } slot_state;

typedef struct slot {
    g4_seq *seq;
    g4_job *job;
    slot_state state;
    int fed;               /* prompt tokens in the cache */
    int32_t next;          /* the token to evaluate next (decode) */
    uint64_t started;      /* order of arrival (prefill chunks go oldest first) */
} slot;

struct g4_sched {
    g4_model *m;
    g4_engine *e;
    g4_sched_params p;
    slot *slots;
    int n_vocab;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;    /* queue, stop flag, stats */
    pthread_cond_t cv;
    g4_job *qhead, *qtail;
    int queued;
    int stop;
    uint64_t arrivals;
    g4_sched_stats stats;
    /* step scratch */
    g4_batch_entry *entries;
    int *entry_slot;       /* the slot of each wanted row */
    float *logits;
};

g4_sched_params g4_sched_default_params(void) {
    g4_sched_params p = {.n_parallel = 4, .ctx = g4_ctx_default_params(), .n_threads = 0, .max_queue = 0, .step_tokens = 0};
    return p;
}

g4_model *g4_sched_model(const g4_sched *s) { return s->m; }

/* ---- jobs ----------------------------------------------------------------------------------------- */

static void job_unref(g4_job *j) {
    pthread_mutex_lock(&j->mu);
    const int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    g4_stream_free(j->st);
    free(j->prompt);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* the end of a job: its result is final and the consumer is woken (called by the scheduler, which then
 * drops its reference) */
static void job_end(g4_job *j, g4_stop_reason why, g4_status error, const char *msg) {
    pthread_mutex_lock(&j->mu);
    if (!j->done) {
        g4_error err = {0};
        if (!error && g4_stream_finish(j->st, why, &err)) {
            error = err.code;
            msg = err.msg;
        }
        const double now = g4_time_s();
        j->res.stop = g4_stream_done(j->st) ? g4_stream_stop_reason(j->st) : why;
        j->res.n_gen = g4_stream_n_gen(j->st);
        j->res.t_queue = (j->t_start ? j->t_start : now) - j->t_submit;
        j->res.t_prompt = j->t_first ? j->t_first - j->t_start : j->t_start ? now - j->t_start : 0;
        j->res.t_gen = j->t_first ? now - j->t_first : 0;
        j->res.error = error;
        if (msg) snprintf(j->res.message, sizeof j->res.message, "%s", msg);
        if (g4_stream_chat(j->st)) j->res.chat_flags = g4_chat_parser_flags(g4_stream_chat(j->st));
        j->done = 1;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

g4_status g4_sched_submit(g4_sched *s, const g4_job_params *p, g4_job **out, g4_error *err) {
    *out = NULL;
    const int n_ctx = s->p.ctx.n_ctx;
    const int limit = p->n_ctx > 0 && p->n_ctx < n_ctx ? p->n_ctx : n_ctx;
    if (p->n_prompt < 1) return g4_fail(err, G4_ERR_ARG, "empty prompt");
    if (p->n_prompt >= limit)
        return g4_fail(err, G4_ERR_CONTEXT, "the prompt has %d tokens; the context holds %d (with room for the answer)",
                       p->n_prompt, limit);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= s->n_vocab)
            return g4_fail(err, G4_ERR_ARG, "token id %d is outside the vocabulary", (int)p->prompt[i]);
    g4_job *j = calloc(1, sizeof *j);
    if (!j) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2;
    j->n_limit = limit;
    j->n_prompt = p->n_prompt;
    j->prompt = malloc((size_t)p->n_prompt * sizeof *j->prompt);
    g4_status rc = j->prompt ? G4_OK : g4_fail(err, G4_ERR_NOMEM, "out of memory");
    if (!rc) {
        memcpy(j->prompt, p->prompt, (size_t)p->n_prompt * sizeof *j->prompt);
        rc = g4_stream_new(&j->st, g4_model_vocab(s->m), &p->stream, err);
    }
    if (rc) {
        j->refs = 1;
        job_unref(j);
        return rc;
    }
    j->res.n_prompt = p->n_prompt;
    j->t_submit = g4_time_s();
    pthread_mutex_lock(&s->mu);
    if (s->stop || s->queued >= s->p.max_queue) {
        const int stopping = s->stop;
        pthread_mutex_unlock(&s->mu);
        j->refs = 1;
        job_unref(j);
        return stopping ? g4_fail(err, G4_ERR_BUSY, "the model is being unloaded")
                        : g4_fail(err, G4_ERR_BUSY, "server busy: %d requests are waiting", s->p.max_queue);
    }
    if (s->qtail) s->qtail->next = j;
    else s->qhead = j;
    s->qtail = j;
    s->queued++;
    s->stats.n_requests++;
    s->stats.last_use = j->t_submit;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *out = j;
    return G4_OK;
}

static char *copy_bytes(const char *p, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, p, n);
        c[n] = 0;
    }
    return c;
}

/* what is past cur (caller holds j->mu); 1 if anything */
static int job_delta(g4_job *j, g4_job_cursor *cur, g4_job_delta *d) {
    int any = 0;
    size_t n;
    const char *t = g4_stream_text(j->st, &n);
    if (n > cur->text) {
        d->text = copy_bytes(t + cur->text, n - cur->text);
        d->text_len = d->text ? n - cur->text : 0;
        cur->text = n;
        any = 1;
    }
    const g4_chat_parser *cp = g4_stream_chat(j->st);
    if (cp) {
        t = g4_chat_parser_thinking(cp, &n);
        if (n > cur->thinking) {
            d->thinking = copy_bytes(t + cur->thinking, n - cur->thinking);
            d->thinking_len = d->thinking ? n - cur->thinking : 0;
            cur->thinking = n;
            any = 1;
        }
        t = g4_chat_parser_answer(cp, &n);
        if (n > cur->answer) {
            d->answer = copy_bytes(t + cur->answer, n - cur->answer);
            d->answer_len = d->answer ? n - cur->answer : 0;
            cur->answer = n;
            any = 1;
        }
        const int nc = g4_chat_parser_n_tool_calls(cp);
        if (nc > cur->tool_calls) {
            d->tool_calls = json_array();
            for (int i = cur->tool_calls; d->tool_calls && i < nc; i++) {
                const g4_chat_tool_call *tc = g4_chat_parser_tool_call(cp, i);
                json_array_append_new(d->tool_calls, json_pack("{s:s,s:O}", "name", tc->name, "arguments", tc->args));
            }
            cur->tool_calls = nc;
            any = 1;
        }
    }
    const int nl = g4_stream_n_logprobs(j->st);
    if (nl > cur->logprobs) {
        d->logprobs = malloc((size_t)(nl - cur->logprobs) * sizeof *d->logprobs);
        if (d->logprobs) {
            for (int i = cur->logprobs; i < nl; i++) d->logprobs[i - cur->logprobs] = *g4_stream_logprob(j->st, i);
            d->n_logprobs = nl - cur->logprobs;
        }
        cur->logprobs = nl;
        any = 1;
    }
    if (j->done) {
        d->done = 1;
        d->result = j->res;
        any = 1;
    }
    return any;
}

int g4_job_next(g4_job *j, g4_job_cursor *cur, int timeout_ms, g4_job_delta *d) {
    memset(d, 0, sizeof *d);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    int any;
    while (!(any = job_delta(j, cur, d))) {
        if (timeout_ms == 0) break;
        if (timeout_ms < 0) pthread_cond_wait(&j->cv, &j->mu);
        else if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT) {
            any = job_delta(j, cur, d);
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    return any;
}

void g4_job_delta_clear(g4_job_delta *d) {
    free(d->text);
    free(d->thinking);
    free(d->answer);
    json_decref(d->tool_calls);
    free(d->logprobs);
    memset(d, 0, sizeof *d);
}

void g4_job_cancel(g4_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancelled = 1;
    pthread_mutex_unlock(&j->mu);
}

void g4_job_release(g4_job *j) {
    if (!j) return;
    g4_job_cancel(j);
    job_unref(j);
}

static int job_cancelled(g4_job *j) {
    pthread_mutex_lock(&j->mu);
    const int c = j->cancelled;
    pthread_mutex_unlock(&j->mu);
    return c;
}

/* ---- the scheduler's thread ----------------------------------------------------------------------- */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

static void slot_finish(g4_sched *s, slot *sl, g4_stop_reason why, g4_status error, const char *msg) {
    g4_job *j = sl->job;
    job_end(j, why, error, msg);
    pthread_mutex_lock(&s->mu);
    s->stats.n_gen_tokens += (uint64_t)j->res.n_gen;
    pthread_mutex_unlock(&s->mu);
    job_unref(j);
    sl->job = NULL;
    sl->state = SLOT_IDLE;
}

/* a job takes a free slot: the one with the longest common prefix, or a copy of a longer one held elsewhere */
static void slot_start(g4_sched *s, slot *sl, g4_job *j) {
    const int np = j->n_prompt - 1; /* the last prompt token is evaluated again for its logits */
    int have = common_prefix(g4_seq_tokens(sl->seq), g4_seq_n_past(sl->seq), j->prompt, np);
    int best = -1, best_n = have;
    for (int i = 0; i < s->p.n_parallel; i++) {
        const slot *o = &s->slots[i];
        if (o == sl) continue;
        const int n = common_prefix(g4_seq_tokens(o->seq), g4_seq_n_past(o->seq), j->prompt, np);
        if (n > best_n + 16) best = i, best_n = n; /* worth a copy */
    }
    if (best >= 0 && g4_seq_copy(sl->seq, s->slots[best].seq, best_n, NULL) == G4_OK) have = best_n;
    else if (g4_seq_truncate(sl->seq, have, NULL) != G4_OK) {
        g4_seq_reset(sl->seq);
        have = 0;
    }
    sl->job = j;
    sl->fed = have;
    sl->state = SLOT_PREFILL;
    sl->started = s->arrivals++;
    pthread_mutex_lock(&j->mu);
    j->t_start = g4_time_s();
    j->res.n_prompt_cached = have;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&s->mu);
    s->stats.n_prompt_tokens += (uint64_t)j->n_prompt;
    s->stats.n_prompt_cached += (uint64_t)have;
    pthread_mutex_unlock(&s->mu);
}

/* jobs from the queue into free slots, cancelled ones out; 0 when stopping */
static int admit(g4_sched *s) {
    for (int i = 0; i < s->p.n_parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->job && job_cancelled(sl->job)) slot_finish(s, sl, G4_STOP_CALLER, G4_OK, NULL);
    }
    for (;;) {
        pthread_mutex_lock(&s->mu);
        g4_job *j = s->qhead;
        /* drop cancelled jobs at the head */
        while (j && job_cancelled(j)) {
            s->qhead = j->next;
            if (!s->qhead) s->qtail = NULL;
            s->queued--;
            pthread_mutex_unlock(&s->mu);
            job_end(j, G4_STOP_CALLER, G4_OK, NULL);
            job_unref(j);
            pthread_mutex_lock(&s->mu);
            j = s->qhead;
        }
        int free_slot = -1, best = -1;
        for (int i = 0; j && i < s->p.n_parallel; i++) {
            if (s->slots[i].job) continue;
            const int n = common_prefix(g4_seq_tokens(s->slots[i].seq), g4_seq_n_past(s->slots[i].seq), j->prompt,
                                        j->n_prompt - 1);
            if (free_slot < 0 || n > best) free_slot = i, best = n;
        }
        if (!j || free_slot < 0) {
            pthread_mutex_unlock(&s->mu);
            return 1;
        }
        s->qhead = j->next;
        if (!s->qhead) s->qtail = NULL;
        s->queued--;
        j->next = NULL;
        pthread_mutex_unlock(&s->mu);
        slot_start(s, &s->slots[free_slot], j);
    }
}

/* one step: the next token of every decoding slot, then prompt chunks (oldest first), one engine call */
static void step(g4_sched *s) {
    const int budget = s->p.step_tokens > 0 ? s->p.step_tokens : g4_engine_batch_size();
    int n = 0, n_out = 0;
    for (int i = 0; i < s->p.n_parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_DECODE) continue;
        if (g4_seq_n_past(sl->seq) >= sl->job->n_limit) { /* no room for the token */
            slot_finish(s, sl, G4_STOP_CONTEXT, G4_OK, NULL);
            continue;
        }
        s->entries[n++] = (g4_batch_entry){.seq = sl->seq, .token = sl->next, .logits = 1};
        s->entry_slot[n_out++] = i;
    }
    /* prompt chunks: at least a quarter of the budget even when many decode */
    int room = budget - n;
    if (room < budget / 4) room = budget / 4;
    for (;;) {
        slot *pick = NULL;
        int pi = -1;
        for (int i = 0; i < s->p.n_parallel; i++) {
            slot *sl = &s->slots[i];
            if (sl->state == SLOT_PREFILL && sl->fed < sl->job->n_prompt && (!pick || sl->started < pick->started)) {
                int queued = 0; /* already given a chunk in this step */
                for (int k = 0; k < n; k++) queued |= s->entries[k].seq == sl->seq;
                if (!queued) pick = sl, pi = i;
            }
        }
        if (!pick || room <= 0) break;
        const int left = pick->job->n_prompt - pick->fed, m = left < room ? left : room;
        for (int k = 0; k < m; k++) {
            const int last = pick->fed + k == pick->job->n_prompt - 1;
            s->entries[n++] = (g4_batch_entry){.seq = pick->seq, .token = pick->job->prompt[pick->fed + k], .logits = last};
            if (last) s->entry_slot[n_out++] = pi;
        }
        pick->fed += m;
        room -= m;
    }
    if (!n) return;
    const double t0 = g4_time_s();
    g4_error err = {0};
    g4_status rc = g4_engine_eval(s->e, s->entries, n, s->logits, &err);
    if (rc == G4_ERR_INTERRUPTED) return; /* stopping: g4_sched_free ends the jobs */
    if (rc) { /* every request of the step fails */
        for (int i = 0; i < s->p.n_parallel; i++) {
            slot *sl = &s->slots[i];
            int in = 0;
            for (int k = 0; k < n; k++) in |= s->entries[k].seq == sl->seq;
            if (in && sl->job) {
                slot_finish(s, sl, G4_STOP_NONE, rc, err.msg);
                g4_seq_reset(sl->seq);
            }
        }
        return;
    }
    for (int r = 0; r < n_out; r++) {
        slot *sl = &s->slots[s->entry_slot[r]];
        g4_job *j = sl->job;
        float *row = s->logits + (size_t)r * (size_t)s->n_vocab;
        int32_t tok;
        int done;
        pthread_mutex_lock(&j->mu);
        rc = g4_stream_next(j->st, row, &tok, &done, &err);
        if (!j->t_first) j->t_first = g4_time_s();
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        if (rc) slot_finish(s, sl, G4_STOP_NONE, rc, err.msg);
        else if (done) slot_finish(s, sl, g4_stream_stop_reason(j->st), G4_OK, NULL);
        else {
            sl->state = SLOT_DECODE;
            sl->next = tok;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->stats.n_steps++;
    s->stats.t_busy += g4_time_s() - t0;
    s->stats.last_use = g4_time_s();
    pthread_mutex_unlock(&s->mu);
}

static void *sched_main(void *arg) {
    g4_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int active = 0;
        for (int i = 0; i < s->p.n_parallel; i++) active |= s->slots[i].job != NULL;
        while (!s->stop && !active && !s->qhead) pthread_cond_wait(&s->cv, &s->mu);
        const int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        admit(s);
        step(s);
        /* occupancy, for the statistics (the slots are this thread's) */
        int busy = 0;
        uint64_t held = 0;
        for (int i = 0; i < s->p.n_parallel; i++) {
            busy += s->slots[i].job != NULL;
            held += (uint64_t)g4_seq_n_past(s->slots[i].seq);
        }
        pthread_mutex_lock(&s->mu);
        s->stats.busy = busy;
        s->stats.kv_tokens = held;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* the engine polls this between layers: a stop request interrupts a long pass */
static int sched_abort(void *user) {
    g4_sched *s = user;
    pthread_mutex_lock(&s->mu);
    const int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* ---- life cycle ----------------------------------------------------------------------------------- */

void g4_sched_free(g4_sched *s) {
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; s->slots && i < s->p.n_parallel; i++) {
        if (s->slots[i].job) slot_finish(s, &s->slots[i], G4_STOP_CALLER, G4_OK, NULL);
        g4_seq_free(s->slots[i].seq);
    }
    while (s->qhead) {
        g4_job *j = s->qhead;
        s->qhead = j->next;
        job_end(j, G4_STOP_CALLER, G4_OK, NULL);
        job_unref(j);
    }
    g4_engine_free(s->e);
    free(s->slots);
    free(s->entries);
    free(s->entry_slot);
    free(s->logits);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

g4_status g4_sched_new(g4_sched **out, g4_model *m, const g4_sched_params *p, g4_error *err) {
    *out = NULL;
    if (p->n_parallel < 1 || p->n_parallel > 256)
        return g4_fail(err, G4_ERR_ARG, "parallel %d is out of range: 1 to 256", p->n_parallel);
    if (!g4_model_vocab(m)) return g4_fail(err, G4_ERR_FORMAT, "the model has no tokenizer");
    g4_sched *s = calloc(1, sizeof *s);
    if (!s) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->m = m;
    s->p = *p;
    if (s->p.max_queue <= 0) s->p.max_queue = 4 * p->n_parallel;
    g4_model_info info;
    g4_model_get_info(m, &info);
    s->n_vocab = info.n_vocab;
    g4_engine_params ep = {.n_threads = p->n_threads, .exact = p->ctx.exact};
    g4_status rc = g4_engine_new(&s->e, m, &ep, err);
    const int budget = p->step_tokens > 0 ? p->step_tokens : g4_engine_batch_size();
    const int max_entries = budget + p->n_parallel + budget / 4 + 1;
    if (!rc) {
        s->slots = calloc((size_t)p->n_parallel, sizeof *s->slots);
        s->entries = malloc((size_t)max_entries * sizeof *s->entries);
        s->entry_slot = malloc((size_t)max_entries * sizeof *s->entry_slot);
        s->logits = malloc((size_t)p->n_parallel * 2 * (size_t)s->n_vocab * sizeof(float));
        if (!s->slots || !s->entries || !s->entry_slot || !s->logits) rc = g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; !rc && i < p->n_parallel; i++) {
        rc = g4_seq_new(&s->slots[i].seq, s->e, &p->ctx, err);
        if (!rc) s->stats.kv_bytes += g4_seq_kv_bytes(s->slots[i].seq);
    }
    if (!rc) {
        g4_engine_set_abort(s->e, sched_abort, s);
        if (pthread_create(&s->thread, NULL, sched_main, s))
            rc = g4_fail(err, G4_ERR_NOMEM, "cannot start the scheduler thread");
        else s->thread_started = 1;
    }
    if (rc) {
        g4_sched_free(s);
        return rc;
    }
    s->stats.n_parallel = p->n_parallel;
    s->stats.n_ctx = p->ctx.n_ctx;
    s->stats.last_use = g4_time_s();
    *out = s;
    return G4_OK;
}

void g4_sched_get_stats(g4_sched *s, g4_sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    *st = s->stats;
    st->queued = s->queued;
    pthread_mutex_unlock(&s->mu);
}
