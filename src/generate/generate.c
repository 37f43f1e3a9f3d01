#include "generate/generate.h"
#include "generate/stream.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

const char *g4_stop_reason_str(g4_stop_reason r) {
    switch (r) {
    case G4_STOP_NONE: return "none";
    case G4_STOP_EOG: return "end of turn";
    case G4_STOP_MAX: return "token limit";
    case G4_STOP_STRING: return "stop string";
    case G4_STOP_CALLER: return "interrupted";
    case G4_STOP_CONTEXT: return "context full";
    }
    return "?";
}

g4_status g4_gen_params_check(const g4_gen_params *gp, g4_error *err) {
    if (!gp) return g4_fail(err, G4_ERR_ARG, "generation: no parameters");
    if (gp->max_tokens < -1)
        return g4_fail(err, G4_ERR_ARG, "max_tokens %d is out of range: -1 or 0 (until the context is full) or a positive number",
                       gp->max_tokens);
    if (gp->n_stop < 0 || gp->n_stop > G4_GEN_MAX_STOP)
        return g4_fail(err, G4_ERR_ARG, "%d stop strings: at most %d", gp->n_stop, G4_GEN_MAX_STOP);
    if (gp->n_stop && !gp->stop) return g4_fail(err, G4_ERR_ARG, "%d stop strings but no list", gp->n_stop);
    for (int i = 0; i < gp->n_stop; i++) {
        if (!gp->stop[i]) return g4_fail(err, G4_ERR_ARG, "stop string %d is missing (NULL)", i);
        size_t n = strnlen(gp->stop[i], G4_GEN_MAX_STOP_BYTES + 1);
        if (n > G4_GEN_MAX_STOP_BYTES)
            return g4_fail(err, G4_ERR_ARG, "stop string %d is longer than %d bytes", i, G4_GEN_MAX_STOP_BYTES);
    }
    return G4_OK;
}

/* the widest top-k taken through g4_eval_top (per-thread heaps of k entries); wider ones use the full row */
#define G4_TOP_PATH_MAX 1024

/* The generation loop of one context, on a stream (src/generate/stream.c): the same sampling, stop strings and
 * hold-back as the server's scheduler. When the draw depends only on the k largest logits (greedy, top-k
 * without penalties) the engine hands over just those (g4_eval_top): no pass over the vocabulary after the LM
 * head. */
g4_status g4_generate(g4_ctx *c, const g4_vocab *v, g4_sampler *s, const int32_t *prompt, int n_prompt,
                      const g4_gen_params *gp, g4_gen_text_fn on_text, void *user, g4_gen_stats *st,
                      g4_error *err) {
    g4_gen_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    st->last_token = -1;
    const double t0 = g4_time_s();
    if (n_prompt < 1) return g4_fail(err, G4_ERR_ARG, "empty prompt");
    g4_status rc = g4_gen_params_check(gp, err);
    if (rc) return rc;
    if ((rc = g4_sampler_params_check(g4_sampler_get_params(s), err))) return rc;
    g4_model_info info;
    g4_model_get_info(g4_ctx_model(c), &info);
    const int n_ctx = g4_ctx_n_ctx(c);
    if (n_prompt >= n_ctx)
        return g4_fail(err, G4_ERR_CONTEXT, "the prompt has %d tokens; the context holds %d (a longer context: --ctx)",
                       n_prompt, n_ctx);
    /* reuse the cached prefix (at least the last prompt token is evaluated again, for its logits) */
    int common = 0, n_past = g4_ctx_n_past(c);
    const int32_t *cached = g4_ctx_tokens(c);
    while (common < n_past && common < n_prompt - 1 && cached[common] == prompt[common]) common++;
    if (g4_ctx_truncate(c, common, NULL) != G4_OK) {
        g4_ctx_reset(c);
        common = 0;
    }
    st->n_prompt = n_prompt;
    st->n_prompt_cached = common;
    g4_stream_params sp = g4_stream_default_params();
    sp.sampler = s;
    sp.max_tokens = gp->max_tokens;
    sp.stop = gp->stop;
    sp.n_stop = gp->n_stop;
    g4_stream *strm = NULL;
    const int kmax0 = g4_sampler_get_params(s)->top_k;
    const int kmax = gp->full_logits ? 0 : kmax0 > 1 && kmax0 <= G4_TOP_PATH_MAX ? (kmax0 < info.n_vocab ? kmax0 : info.n_vocab) : 1;
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    int32_t *ids = malloc((size_t)(kmax ? kmax : 1) * sizeof *ids);
    float *vals = malloc((size_t)(kmax ? kmax : 1) * sizeof *vals);
    if (!logits || !ids || !vals) {
        rc = g4_fail(err, G4_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = g4_stream_new(&strm, v, &sp, err))) goto out;
    const int32_t *toks = prompt + common;
    int n = n_prompt - common, n_top = -1;
    size_t sent = 0;
    double t_first = 0;
    int32_t next_tok = -1;
    for (;;) {
        const int k = g4_stream_top_k(strm);
        rc = k > 0 && k <= kmax ? g4_eval_top(c, toks, n, k, ids, vals, &n_top, err)
                                : (n_top = -1, g4_eval(c, toks, n, logits, 0, err));
        if (rc == G4_ERR_INTERRUPTED) {
            rc = g4_stream_finish(strm, G4_STOP_CALLER, err);
            if (!st->t_prompt) st->t_prompt = g4_time_s() - t0;
        }
        if (rc || g4_stream_done(strm)) break;
        if (!st->t_prompt) st->t_prompt = g4_time_s() - t0;
        int32_t tok;
        int done;
        rc = n_top >= 0 ? g4_stream_next_top(strm, ids, vals, n_top, &tok, &done, err)
                        : g4_stream_next(strm, logits, &tok, &done, err);
        if (rc) break;
        if (!t_first) t_first = g4_time_s();
        size_t len;
        const char *text = g4_stream_text(strm, &len);
        if (len > sent) {
            const int stop = on_text && on_text(user, text + sent, len - sent);
            sent = len;
            if (stop && !done) {
                rc = g4_stream_finish(strm, G4_STOP_CALLER, err);
                break;
            }
        }
        if (done) break;
        if (g4_ctx_n_past(c) >= n_ctx) {
            rc = g4_stream_finish(strm, G4_STOP_CONTEXT, err);
            break;
        }
        next_tok = tok;
        toks = &next_tok;
        n = 1;
    }
    if (!rc) { /* what finishing released */
        size_t len;
        const char *text = g4_stream_text(strm, &len);
        if (len > sent && on_text) on_text(user, text + sent, len - sent);
        st->stop = g4_stream_stop_reason(strm);
        st->n_gen = g4_stream_n_gen(strm);
        st->last_token = st->stop == G4_STOP_EOG ? g4_stream_last_token(strm) : -1;
        st->t_first = t_first ? t_first - t0 : 0;
        st->t_gen = t_first ? g4_time_s() - t_first : 0;
    }
out:
    g4_stream_free(strm);
    free(logits);
    free(ids);
    free(vals);
    return rc;
}
