/* The scheduler (src/serve/sched.c): requests stepped together in shared passes answer exactly what each
 * answers alone (greedy and seeded sampling, f16 cache); cancelled and finished requests leave the others
 * unchanged; the prompt-prefix cache reuses KV (counted, and the answer unchanged); the queue bound, over-long
 * prompts and bad parameters are refused with the right status. Also the stream (src/generate/stream.c) on its
 * own: stop strings, token limits, logprobs. */
#include "t.h"

#include "g4.h"
#include "generate/stream.h"
#include "serve/sched.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static g4_model *open_model(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s.gguf", t_oracle(), name);
    g4_model *m = NULL;
    g4_error err = {0};
    if (g4_model_open(&m, path, &err)) fprintf(stderr, "%s: %s\n", path, err.msg);
    return m;
}

/* the answer of one request alone: a context of its own, the stream stepped by hand */
static char *alone(g4_model *m, const int32_t *prompt, int n, const g4_stream_params *sp, int n_ctx, int *n_gen,
                   g4_stop_reason *why) {
    g4_error err = {0};
    g4_ctx_params cp = g4_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 2;
    g4_ctx *c;
    g4_stream *st;
    if (g4_ctx_new(&c, m, &cp, &err) || g4_stream_new(&st, g4_model_vocab(m), sp, &err)) {
        fprintf(stderr, "alone: %s\n", err.msg);
        return NULL;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    float *lg = malloc((size_t)info.n_vocab * sizeof *lg);
    g4_status rc = g4_eval(c, prompt, n, lg, 0, &err);
    int32_t tok;
    int done = 0;
    while (!rc) {
        if ((rc = g4_stream_next(st, lg, &tok, &done, &err)) || done) break;
        if (g4_ctx_n_past(c) >= n_ctx) {
            rc = g4_stream_finish(st, G4_STOP_CONTEXT, &err);
            break;
        }
        rc = g4_eval(c, &tok, 1, lg, 0, &err);
    }
    if (rc) fprintf(stderr, "alone: %s\n", err.msg);
    size_t len;
    const char *t = g4_stream_text(st, &len);
    char *out = malloc(len + 1);
    memcpy(out, t, len + 1);
    *n_gen = g4_stream_n_gen(st);
    *why = g4_stream_stop_reason(st);
    g4_stream_free(st);
    g4_ctx_free(c);
    free(lg);
    return out;
}

/* everything a job produces, collected through g4_job_next in small waits */
static char *collect(g4_job *j, g4_job_result *res, int cancel_after) {
    g4_job_cursor cur = {0};
    size_t len = 0;
    char *all = calloc(1, 1);
    for (;;) {
        g4_job_delta d;
        if (!g4_job_next(j, &cur, 2000, &d)) continue;
        if (d.text_len) {
            all = realloc(all, len + d.text_len + 1);
            memcpy(all + len, d.text, d.text_len);
            len += d.text_len;
            all[len] = 0;
        }
        const int done = d.done;
        if (done) *res = d.result;
        g4_job_delta_clear(&d);
        if (done) break;
        if (cancel_after > 0 && (int)len >= cancel_after) {
            g4_job_cancel(j);
            cancel_after = 0;
        }
    }
    return all;
}

#define NJ 9

static void make_prompt(int32_t *p, int n, int seed, int V) {
    unsigned x = 2166136261u ^ (unsigned)seed;
    p[0] = 2;
    for (int i = 1; i < n; i++) {
        x = x * 16777619u + 12345u;
        p[i] = (int32_t)(3 + x % (unsigned)(V - 3));
    }
}

static void test_many(const char *model, int n_parallel) {
    g4_model *m = open_model(model);
    if (!m) {
        CHECK(0, "model %s", model);
        return;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    const int V = info.n_vocab, n_ctx = 160;
    g4_sched_params sp = g4_sched_default_params();
    sp.n_parallel = n_parallel;
    sp.ctx.n_ctx = n_ctx;
    sp.n_threads = 2;
    sp.max_queue = 64;
    g4_sched *s;
    g4_error err = {0};
    if (g4_sched_new(&s, m, &sp, &err)) {
        CHECK(0, "sched: %s", err.msg);
        g4_model_free(m);
        return;
    }
    int32_t prompts[NJ][80];
    int lens[NJ];
    g4_stream_params stp[NJ];
    g4_job *jobs[NJ];
    for (int i = 0; i < NJ; i++) {
        lens[i] = 5 + (i * 17) % 70;
        make_prompt(prompts[i], lens[i], i, V);
        stp[i] = g4_stream_default_params();
        stp[i].max_tokens = 20 + i * 7;
        stp[i].sampling.seed = 100 + (uint64_t)i;
        if (i % 3 == 0) stp[i].sampling.temperature = 0; /* greedy */
        if (i == 4) stp[i].max_tokens = 400; /* runs into the context limit */
        g4_job_params jp = {.prompt = prompts[i], .n_prompt = lens[i], .stream = stp[i]};
        CHECK(g4_sched_submit(s, &jp, &jobs[i], &err) == G4_OK, "submit %d: %s", i, err.msg);
    }
    for (int i = 0; i < NJ; i++) {
        g4_job_result res;
        char *got = collect(jobs[i], &res, i == 7 ? 3 : 0);
        int n_gen;
        g4_stop_reason why;
        char *want = alone(m, prompts[i], lens[i], &stp[i], n_ctx, &n_gen, &why);
        if (i == 7) { /* cancelled: a prefix of the whole answer */
            CHECK(res.stop == G4_STOP_CALLER || res.stop == G4_STOP_EOG || res.stop == G4_STOP_MAX, "job 7 stop %d", res.stop);
            CHECK(want && !strncmp(want, got, strlen(got)), "cancelled job: not a prefix of its answer");
        } else {
            CHECK(want && !strcmp(want, got), "%s parallel %d job %d: scheduled answer differs from alone:\n[%s]\n[%s]",
                  model, n_parallel, i, got, want ? want : "(null)");
            CHECK(res.n_gen == n_gen && res.stop == why, "job %d: %d tokens / stop %d vs %d / %d", i, res.n_gen, res.stop,
                  n_gen, why);
        }
        CHECK(res.error == G4_OK, "job %d error %s", i, res.message);
        CHECK(res.n_prompt == lens[i], "job %d prompt count", i);
        free(got);
        free(want);
        g4_job_release(jobs[i]);
    }
    /* prefix reuse: a prompt, then one sharing its first 60 tokens (the slot that held the first one is
     * picked, or its KV copied) */
    g4_stream_params g = g4_stream_default_params();
    g.sampling.temperature = 0;
    g.max_tokens = 8;
    int32_t p1[80], p2[80];
    make_prompt(p1, 70, 77, V);
    memcpy(p2, p1, sizeof p2);
    for (int k = 60; k < 75; k++) p2[k] = (int32_t)(3 + (k * 31) % (V - 3));
    g4_job_params jp1 = {.prompt = p1, .n_prompt = 70, .stream = g};
    g4_job *j1;
    CHECK(g4_sched_submit(s, &jp1, &j1, &err) == G4_OK, "%s", err.msg);
    g4_job_result res1;
    free(collect(j1, &res1, 0));
    g4_job_release(j1);
    g4_job_params jp = {.prompt = p2, .n_prompt = 75, .stream = g};
    g4_job *j;
    CHECK(g4_sched_submit(s, &jp, &j, &err) == G4_OK, "%s", err.msg);
    g4_job_result res;
    char *got = collect(j, &res, 0);
    int n_gen;
    g4_stop_reason why;
    char *want = alone(m, p2, 75, &g, n_ctx, &n_gen, &why);
    CHECK(res.n_prompt_cached >= 60, "prefix reuse: %d of 75 cached", res.n_prompt_cached);
    CHECK(want && !strcmp(got, want), "answer after prefix reuse differs");
    free(got);
    free(want);
    g4_job_release(j);
    /* errors */
    int32_t big[200];
    make_prompt(big, 200, 9, V);
    jp = (g4_job_params){.prompt = big, .n_prompt = n_ctx, .stream = g};
    CHECK(g4_sched_submit(s, &jp, &j, &err) == G4_ERR_CONTEXT, "over-long prompt");
    jp.n_prompt = 100;
    jp.n_ctx = 50;
    CHECK(g4_sched_submit(s, &jp, &j, &err) == G4_ERR_CONTEXT, "prompt over the request's num_ctx");
    jp.n_ctx = 0;
    jp.stream.sampling.temperature = -1;
    CHECK(g4_sched_submit(s, &jp, &j, &err) == G4_ERR_ARG && strstr(err.msg, "temperature"), "bad temperature: %s", err.msg);
    g4_sched_stats st;
    g4_sched_get_stats(s, &st);
    CHECK(st.n_requests == NJ + 2 && st.n_parallel == n_parallel && st.kv_bytes > 0, "stats %llu", (unsigned long long)st.n_requests);
    g4_sched_free(s);
    g4_model_free(m);
}

/* a full queue says busy; freeing the scheduler ends waiting and running jobs */
static void test_busy(void) {
    g4_model *m = open_model("e2b-Q8_0");
    if (!m) return;
    g4_sched_params sp = g4_sched_default_params();
    sp.n_parallel = 1;
    sp.ctx.n_ctx = 512;
    sp.max_queue = 2;
    g4_sched *s;
    g4_error err = {0};
    CHECK(g4_sched_new(&s, m, &sp, &err) == G4_OK, "%s", err.msg);
    int32_t p[10];
    make_prompt(p, 10, 1, 512);
    g4_stream_params g = g4_stream_default_params();
    g.max_tokens = 100000;
    g4_job_params jp = {.prompt = p, .n_prompt = 10, .stream = g};
    g4_job *j[8];
    int n_ok = 0, n_busy = 0;
    for (int i = 0; i < 8; i++) {
        g4_status rc = g4_sched_submit(s, &jp, &j[n_ok], &err);
        if (rc == G4_OK) n_ok++;
        else if (rc == G4_ERR_BUSY) n_busy++;
    }
    CHECK(n_ok >= 2 && n_ok <= 3 && n_busy == 8 - n_ok, "queue bound: %d accepted, %d busy", n_ok, n_busy);
    g4_sched_free(s);
    for (int i = 0; i < n_ok; i++) {
        g4_job_cursor cur = {0};
        g4_job_delta d;
        int got = g4_job_next(j[i], &cur, 1000, &d);
        CHECK(got && d.done && d.result.stop == G4_STOP_CALLER, "job %d ended by the shutdown", i);
        g4_job_delta_clear(&d);
        g4_job_release(j[i]);
    }
    g4_model_free(m);
}

/* the stream alone: stop strings (empty ones ignored), token limit, logprobs */
static void test_stream(void) {
    g4_model *m = open_model("e2b-Q8_0");
    if (!m) return;
    g4_model_info info;
    g4_model_get_info(m, &info);
    int32_t p[12];
    make_prompt(p, 12, 5, info.n_vocab);
    g4_stream_params g = g4_stream_default_params();
    g.sampling.temperature = 0;
    g.max_tokens = 30;
    int n_gen;
    g4_stop_reason why;
    char *full = alone(m, p, 12, &g, 256, &n_gen, &why);
    CHECK(full && why == G4_STOP_MAX && n_gen == 30, "token limit: %d tokens, stop %d", n_gen, why);
    if (full && strlen(full) > 6) {
        char stop[4];
        memcpy(stop, full + 4, 3);
        stop[3] = 0;
        const char *stops[] = {"", stop};
        g.stop = stops;
        g.n_stop = 2;
        char *cut = alone(m, p, 12, &g, 256, &n_gen, &why);
        const char *at = strstr(full, stop);
        CHECK(cut && why == G4_STOP_STRING && at && strlen(cut) == (size_t)(at - full) && !strncmp(cut, full, strlen(cut)),
              "stop string '%s': [%s] of [%s]", stop, cut ? cut : "", full);
        free(cut);
    }
    free(full);
    g.stop = NULL;
    g.n_stop = 0;
    g.n_logprobs = 3;
    g4_stream *st;
    g4_error err = {0};
    CHECK(g4_stream_new(&st, g4_model_vocab(m), &g, &err) == G4_OK, "%s", err.msg);
    float *lg = malloc((size_t)info.n_vocab * sizeof *lg);
    for (int i = 0; i < info.n_vocab; i++) lg[i] = (float)(i % 7) + (i == 77 ? 30.0f : 0.0f);
    int32_t tok;
    int done;
    CHECK(g4_stream_next(st, lg, &tok, &done, &err) == G4_OK && tok == 77, "greedy pick %d", tok);
    const g4_token_logprob *e = g4_stream_logprob(st, 0);
    CHECK(e && e->token == 77 && e->n_top == 3 && e->top_id[0] == 77 && e->logprob <= 0 && e->logprob > -1e-3,
          "logprobs: token %d lp %g top %d", e ? e->token : -1, e ? (double)e->logprob : 0.0, e ? e->top_id[0] : -1);
    CHECK(e && e->top_logprob[1] >= e->top_logprob[2] && e->top_id[1] == 6, "second best %d", e ? e->top_id[1] : -1);
    g4_stream_free(st);
    free(lg);
    g.n_logprobs = 99;
    CHECK(g4_stream_new(&st, g4_model_vocab(m), &g, &err) == G4_ERR_ARG, "top_logprobs bound");
    g4_model_free(m);
}

/* structured output: whatever the (random-weight) model prefers, the answer is the schema's JSON, also with
 * thinking on (a thought block may come first) and through the scheduler */
static void test_grammar(void) {
    g4_model *m = open_model("e2b-Q8_0");
    if (!m) return;
    g4_error err = {0};
    g4_grammar *g;
    g4_gvocab *gv;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"},"
                         "\"ok\":{\"type\":\"boolean\"}},\"required\":[\"n\",\"ok\"]}";
    CHECK(g4_grammar_from_schema_text(&g, schema, strlen(schema), NULL, &err) == G4_OK, "%s", err.msg);
    CHECK(g4_gvocab_new(&gv, g4_model_vocab(m), &err) == G4_OK, "%s", err.msg);
    g4_model_info info;
    g4_model_get_info(m, &info);
    for (int k = 0; k < 6; k++) {
        int32_t p[16];
        make_prompt(p, 16, 40 + k, info.n_vocab);
        g4_stream_params sp = g4_stream_default_params();
        sp.sampling.seed = (uint64_t)k;
        sp.grammar = g;
        sp.gvocab = gv;
        sp.max_tokens = 300;
        sp.chat = k & 1;
        int n_gen;
        g4_stop_reason why;
        char *out = alone(m, p, 16, &sp, 512, &n_gen, &why);
        const char *json = out;
        if (out && sp.chat) json = strchr(out, '{') ? strchr(out, '{') : out; /* (no thought block without think) */
        json_error_t je;
        json_t *o = json && why == G4_STOP_EOG ? json_loads(json, 0, &je) : NULL;
        CHECK(o && json_is_integer(json_object_get(o, "n")) && json_is_boolean(json_object_get(o, "ok")) &&
                  json_object_size(o) == 2,
              "grammar run %d (stop %d): [%s]", k, why, out ? out : "");
        json_decref(o);
        free(out);
    }
    /* through the scheduler, several at once */
    g4_sched_params scp = g4_sched_default_params();
    scp.n_parallel = 3;
    scp.ctx.n_ctx = 256;
    g4_sched *s;
    CHECK(g4_sched_new(&s, m, &scp, &err) == G4_OK, "%s", err.msg);
    g4_job *j[4];
    int32_t p[4][12];
    for (int k = 0; k < 4; k++) {
        make_prompt(p[k], 12, 60 + k, info.n_vocab);
        g4_stream_params sp = g4_stream_default_params();
        sp.sampling.seed = 7 + (uint64_t)k;
        sp.grammar = g;
        sp.gvocab = gv;
        sp.max_tokens = 200;
        g4_job_params jp = {.prompt = p[k], .n_prompt = 12, .stream = sp};
        CHECK(g4_sched_submit(s, &jp, &j[k], &err) == G4_OK, "%s", err.msg);
    }
    for (int k = 0; k < 4; k++) {
        g4_job_result res;
        char *out = collect(j[k], &res, 0);
        json_error_t je;
        json_t *o = json_loads(out, 0, &je);
        CHECK(res.stop == G4_STOP_EOG && o && json_is_integer(json_object_get(o, "n")), "scheduled grammar job %d: [%s]", k, out);
        json_decref(o);
        free(out);
        g4_job_release(j[k]);
    }
    g4_sched_free(s);
    g4_gvocab_free(gv);
    g4_grammar_free(g);
    g4_model_free(m);
}

int main(void) {
    test_stream();
    test_grammar();
    test_many("e2b-Q8_0", 3);
    test_many("moe-Q4_0", 4);
    test_many("dense-Q8_0", 1);
    test_busy();
    return t_done();
}
