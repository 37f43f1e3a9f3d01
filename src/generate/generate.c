#include "generate/generate.h"
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

/* Text waiting to be sent: held back while its end could be the start of a stop string. */
typedef struct pending {
    char *buf;
    size_t len, cap;
} pending;

static int pend_add(pending *p, const char *s, size_t n) {
    if (p->len + n + 1 > p->cap) {
        size_t cap = (p->len + n + 1) * 2;
        char *b = realloc(p->buf, cap);
        if (!b) return 0;
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = 0;
    return 1;
}

/* length of the longest suffix of buf[0..n) that is a proper prefix of a stop string (empty ones: none) */
static size_t held_suffix(const char *buf, size_t n, const char *const *stop, int n_stop) {
    size_t best = 0;
    for (int i = 0; i < n_stop; i++) {
        size_t sl = strlen(stop[i]);
        if (sl == 0) continue;
        for (size_t k = sl > n ? n : sl - 1; k > best; k--)
            if (memcmp(buf + n - k, stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* do not split a UTF-8 character when holding back part of the text */
static size_t utf8_start(const char *buf, size_t at) {
    while (at > 0 && ((unsigned char)buf[at] & 0xC0) == 0x80) at--;
    return at;
}

/* the widest top-k taken through g4_eval_top (per-thread heaps of k entries); wider ones use the full row */
#define G4_TOP_PATH_MAX 1024

/* what the next draw is made from: every logit, or the n_top largest */
typedef struct step {
    int kmax;        /* room in ids / vals (0: always every logit) */
    float *logits;   /* [n_vocab] */
    int32_t *ids;
    float *vals;
    int n_top;       /* -1: logits holds the row */
} step;

static g4_status eval_step(g4_ctx *c, const g4_sampler *s, step *st, const int32_t *toks, int n, g4_error *err) {
    const int k = g4_sampler_top_k(s);
    if (k > 0 && k <= st->kmax) return g4_eval_top(c, toks, n, k, st->ids, st->vals, &st->n_top, err);
    st->n_top = -1;
    return g4_eval(c, toks, n, st->logits, 0, err);
}

g4_status g4_generate(g4_ctx *c, const g4_vocab *v, g4_sampler *s, const int32_t *prompt, int n_prompt,
                      const g4_gen_params *gp, g4_gen_text_fn on_text, void *user, g4_gen_stats *st,
                      g4_error *err) {
    g4_gen_stats dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    st->last_token = -1;
    const double t0 = g4_time_s();
    if (n_prompt < 1) return g4_fail(err, G4_ERR_ARG, "empty prompt");
    g4_status prc = g4_gen_params_check(gp, err);
    if (prc) return prc;
    if ((prc = g4_sampler_params_check(g4_sampler_get_params(s), err))) return prc;
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
    float *logits = malloc((size_t)info.n_vocab * sizeof *logits);
    /* when the draw depends only on the k largest logits (greedy, or top-k without penalties), the
     * engine hands over just those (g4_eval_top): no pass over the vocabulary after the LM head */
    const g4_sampler_params *sp = g4_sampler_get_params(s);
    /* (a top-k wider than G4_TOP_PATH_MAX takes the full row, its heaps would cost more; greedy takes top-1) */
    step st_ = {.kmax = gp->full_logits ? 0 : sp->top_k > 1 && sp->top_k <= G4_TOP_PATH_MAX ? sp->top_k : 1,
                .logits = logits};
    if (st_.kmax > info.n_vocab) st_.kmax = info.n_vocab;
    st_.ids = malloc((size_t)(st_.kmax ? st_.kmax : 1) * sizeof *st_.ids);
    st_.vals = malloc((size_t)(st_.kmax ? st_.kmax : 1) * sizeof *st_.vals);
    g4_detok *dt = NULL;
    pending pd = {0};
    g4_status rc = G4_OK;
    if (!logits || !st_.ids || !st_.vals) {
        rc = g4_fail(err, G4_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = g4_detok_new(&dt, v, gp->special, err))) goto out;
    if ((rc = eval_step(c, s, &st_, prompt + common, n_prompt - common, err))) {
        if (rc == G4_ERR_INTERRUPTED) { /* stopped while reading the prompt: nothing generated */
            st->stop = G4_STOP_CALLER;
            st->t_prompt = g4_time_s() - t0;
            rc = G4_OK;
        }
        goto out;
    }
    st->t_prompt = g4_time_s() - t0;
    double t_first = 0;
    for (;;) {
        int32_t tok = st_.n_top >= 0 ? g4_sampler_sample_top(s, st_.ids, st_.vals, st_.n_top)
                                     : g4_sampler_sample(s, logits);
        g4_sampler_accept(s, tok);
        if (!st->n_gen) t_first = g4_time_s();
        st->n_gen++;
        if (g4_vocab_is_eog(v, tok)) {
            st->stop = G4_STOP_EOG;
            st->last_token = tok;
            break;
        }
        size_t n;
        const char *txt = g4_detok_push(dt, tok, &n);
        if (n && !pend_add(&pd, txt, n)) {
            rc = g4_fail(err, G4_ERR_NOMEM, "out of memory");
            goto out;
        }
        /* stop strings: cut at the first match */
        size_t cut = pd.len;
        for (int i = 0; i < gp->n_stop; i++) {
            const size_t sl = strlen(gp->stop[i]); /* memmem: the text may hold NUL bytes */
            const char *hit = sl && pd.len ? memmem(pd.buf, pd.len, gp->stop[i], sl) : NULL;
            if (hit && (size_t)(hit - pd.buf) < cut) cut = (size_t)(hit - pd.buf);
        }
        if (cut < pd.len) {
            if (cut && on_text) on_text(user, pd.buf, cut);
            pd.len = 0;
            st->stop = G4_STOP_STRING;
            break;
        }
        size_t send = utf8_start(pd.buf, pd.len - held_suffix(pd.buf, pd.len, gp->stop, gp->n_stop));
        if (send) {
            int stop = on_text && on_text(user, pd.buf, send);
            memmove(pd.buf, pd.buf + send, pd.len - send);
            pd.len -= send;
            if (stop) {
                st->stop = G4_STOP_CALLER;
                break;
            }
        }
        if (gp->max_tokens > 0 && st->n_gen >= gp->max_tokens) {
            st->stop = G4_STOP_MAX;
            break;
        }
        if (g4_ctx_n_past(c) >= n_ctx) {
            st->stop = G4_STOP_CONTEXT;
            break;
        }
        if ((rc = eval_step(c, s, &st_, &tok, 1, err))) {
            if (rc == G4_ERR_INTERRUPTED) {
                st->stop = G4_STOP_CALLER;
                rc = G4_OK;
                break;
            }
            goto out;
        }
    }
    if (st->stop != G4_STOP_STRING) { /* what was held back is text after all */
        size_t n;
        const char *txt = g4_detok_flush(dt, &n);
        if (n && !pend_add(&pd, txt, n)) {
            rc = g4_fail(err, G4_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (pd.len && on_text) on_text(user, pd.buf, pd.len);
    }
    st->t_first = t_first - t0;
    st->t_gen = g4_time_s() - t_first;
out:
    free(logits);
    free(st_.ids);
    free(st_.vals);
    free(pd.buf);
    g4_detok_free(dt);
    return rc;
}
