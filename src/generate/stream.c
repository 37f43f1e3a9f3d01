#include "generate/stream.h"
#include "util/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct g4_stream {
    g4_stream_params p;
    const g4_vocab *v;
    int n_vocab;
    g4_sampler *sampler;
    int own_sampler;
    g4_detok *dt;
    g4_chat_parser *parser;
    g4_gmatch *gm;
    char **stop;            /* copies of the non-empty stop strings */
    int n_stop;
    char *text;             /* released text */
    size_t len, cap;
    char *pend;             /* decoded, held back while it may start a stop string */
    size_t plen, pcap;
    int32_t channel_tok;    /* "<|channel>" (opens a thought block), or -1 */
    int n_gen;
    int done;
    g4_stop_reason stop_reason;
    int32_t last;
    g4_token_logprob *lp;
    int n_lp, cap_lp;
};

g4_stream_params g4_stream_default_params(void) {
    g4_stream_params p = {.sampling = g4_sampler_default_params(), .max_tokens = -1, .n_logprobs = -1};
    return p;
}

void g4_stream_free(g4_stream *s) {
    if (!s) return;
    if (s->own_sampler) g4_sampler_free(s->sampler);
    g4_detok_free(s->dt);
    g4_chat_parser_free(s->parser);
    g4_gmatch_free(s->gm);
    for (int i = 0; i < s->n_stop; i++) free(s->stop[i]);
    free(s->stop);
    free(s->text);
    free(s->pend);
    free(s->lp);
    free(s);
}

g4_status g4_stream_new(g4_stream **out, const g4_vocab *v, const g4_stream_params *p, g4_error *err) {
    *out = NULL;
    g4_gen_params gp = {.max_tokens = p->max_tokens, .stop = p->stop, .n_stop = p->n_stop};
    g4_status rc = g4_gen_params_check(&gp, err);
    if (rc) return rc;
    if (p->grammar && !p->gvocab) return g4_fail(err, G4_ERR_ARG, "a grammar needs its vocabulary (gvocab)");
    if (p->n_logprobs > G4_STREAM_MAX_LOGPROBS)
        return g4_fail(err, G4_ERR_ARG, "top_logprobs %d is out of range: 0 to %d", p->n_logprobs, G4_STREAM_MAX_LOGPROBS);
    g4_stream *s = calloc(1, sizeof *s);
    if (!s) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    s->p = *p;
    s->p.stop = NULL;
    s->v = v;
    s->n_vocab = g4_vocab_n_tokens(v);
    s->last = -1;
    s->channel_tok = g4_vocab_find(v, "<|channel>", 10);
    s->sampler = p->sampler;
    s->own_sampler = !p->sampler;
    if ((s->own_sampler && (rc = g4_sampler_new(&s->sampler, &p->sampling, s->n_vocab, err))) ||
        (!s->own_sampler && (rc = g4_sampler_params_check(g4_sampler_get_params(p->sampler), err))) ||
        (rc = g4_detok_new(&s->dt, v, 0, err)) ||
        (p->chat && (rc = g4_chat_parser_new(&s->parser, p->in_thinking, err))) ||
        (p->grammar && (rc = g4_gmatch_new(&s->gm, p->grammar, err))))
        goto fail;
    if (p->n_stop > 0) {
        s->stop = calloc((size_t)p->n_stop, sizeof *s->stop);
        if (!s->stop) goto nomem;
        for (int i = 0; i < p->n_stop; i++) {
            if (!p->stop[i][0]) continue;
            if (!(s->stop[s->n_stop] = strdup(p->stop[i]))) goto nomem;
            s->n_stop++;
        }
    }
    s->cap = 256;
    s->pcap = 256;
    if (!(s->text = malloc(s->cap)) || !(s->pend = malloc(s->pcap))) goto nomem;
    s->text[0] = 0;
    *out = s;
    return G4_OK;
nomem:
    rc = g4_fail(err, G4_ERR_NOMEM, "out of memory");
fail:
    g4_stream_free(s);
    return rc;
}

int g4_stream_done(const g4_stream *s) { return s->done; }
g4_stop_reason g4_stream_stop_reason(const g4_stream *s) { return s->stop_reason; }
int g4_stream_n_gen(const g4_stream *s) { return s->n_gen; }
int32_t g4_stream_last_token(const g4_stream *s) { return s->last; }
const g4_chat_parser *g4_stream_chat(const g4_stream *s) { return s->parser; }
g4_sampler *g4_stream_sampler(g4_stream *s) { return s->sampler; }
int g4_stream_n_logprobs(const g4_stream *s) { return s->n_lp; }
const g4_token_logprob *g4_stream_logprob(const g4_stream *s, int i) { return i >= 0 && i < s->n_lp ? &s->lp[i] : NULL; }
const char *g4_stream_text(const g4_stream *s, size_t *len) {
    if (len) *len = s->len;
    return s->text;
}

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t c = *cap * 2 > need ? *cap * 2 : need;
    char *b = realloc(*buf, c);
    if (!b) return 0;
    *buf = b;
    *cap = c;
    return 1;
}

/* text leaves the hold-back: appended to the released text and fed to the chat parser */
static g4_status release(g4_stream *s, const char *t, size_t n, g4_error *err) {
    if (!n) return G4_OK;
    if (!grow(&s->text, &s->cap, s->len + n + 1)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    memcpy(s->text + s->len, t, n);
    s->len += n;
    s->text[s->len] = 0;
    if (s->parser) return g4_chat_parser_feed(s->parser, t, n, err);
    return G4_OK;
}

/* length of the longest suffix of buf[0..n) that is a proper prefix of a stop string */
static size_t held_suffix(const g4_stream *s) {
    size_t best = 0;
    for (int i = 0; i < s->n_stop; i++) {
        const size_t sl = strlen(s->stop[i]);
        for (size_t k = sl - 1 < s->plen ? sl - 1 : s->plen; k > best; k--)
            if (!memcmp(s->pend + s->plen - k, s->stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* the start of the UTF-8 character at `at` (do not split one when holding back) */
static size_t utf8_start(const char *buf, size_t at) {
    while (at > 0 && ((unsigned char)buf[at] & 0xC0) == 0x80) at--;
    return at;
}

static g4_status end_stream(g4_stream *s, g4_stop_reason why, g4_error *err) {
    if (s->done) return G4_OK;
    s->done = 1;
    s->stop_reason = why;
    g4_status rc = G4_OK;
    if (why != G4_STOP_STRING) { /* what was held back is text after all */
        size_t n;
        const char *t = g4_detok_flush(s->dt, &n);
        if (n && !grow(&s->pend, &s->pcap, s->plen + n)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        memcpy(s->pend + s->plen, t, n);
        s->plen += n;
        rc = release(s, s->pend, s->plen, err);
        s->plen = 0;
    }
    if (!rc && s->parser) rc = g4_chat_parser_finish(s->parser, err);
    return rc;
}

g4_status g4_stream_finish(g4_stream *s, g4_stop_reason why, g4_error *err) { return end_stream(s, why, err); }

/* follows a sampled token */
static g4_status follow(g4_stream *s, int32_t tok, int *done, g4_error *err) {
    g4_sampler_accept(s->sampler, tok);
    s->n_gen++;
    s->last = tok;
    if (g4_vocab_is_eog(s->v, tok)) {
        *done = 1;
        return end_stream(s, G4_STOP_EOG, err);
    }
    size_t n;
    const char *t = g4_detok_push(s->dt, tok, &n);
    if (n) {
        if (!grow(&s->pend, &s->pcap, s->plen + n + 1)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        memcpy(s->pend + s->plen, t, n);
        s->plen += n;
    }
    /* stop strings: cut at the first match */
    size_t cut = s->plen;
    for (int i = 0; i < s->n_stop; i++) {
        const size_t sl = strlen(s->stop[i]);
        for (size_t at = 0; at + sl <= s->plen && at < cut; at++)
            if (!memcmp(s->pend + at, s->stop[i], sl)) {
                cut = at;
                break;
            }
    }
    g4_status rc;
    if (cut < s->plen) {
        if ((rc = release(s, s->pend, cut, err))) return rc;
        s->plen = 0;
        *done = 1;
        return end_stream(s, G4_STOP_STRING, err);
    }
    const size_t send = utf8_start(s->pend, s->plen - held_suffix(s));
    if (send) {
        if ((rc = release(s, s->pend, send, err))) return rc;
        memmove(s->pend, s->pend + send, s->plen - send);
        s->plen -= send;
    }
    if (s->parser && (g4_chat_parser_flags(s->parser) & G4_CHAT_END_OF_TURN)) {
        *done = 1;
        return end_stream(s, G4_STOP_EOG, err);
    }
    if (s->p.max_tokens > 0 && s->n_gen >= s->p.max_tokens) {
        *done = 1;
        return end_stream(s, G4_STOP_MAX, err);
    }
    return G4_OK;
}

/* whether the grammar constrains the next token: always without chat parsing; with it, while the parser is in
 * the answer (not in a thought block or a tool call). The first token of a thinking model may instead open a
 * thought block (exempt). */
static int grammar_on(const g4_stream *s) {
    if (!s->gm) return 0;
    if (!s->parser) return 1;
    return g4_chat_parser_state(s->parser) == G4_CHAT_IN_ANSWER;
}

/* the log-probability statistics of the model's row (before any mask): an entry whose token is set once it is
 * sampled; returns the log of the row's softmax normalizer in *lse */
static g4_status record_logprob(g4_stream *s, const float *logits, float *lse_out, g4_error *err) {
    if (s->n_lp == s->cap_lp) {
        int c = s->cap_lp ? s->cap_lp * 2 : 64;
        g4_token_logprob *l = realloc(s->lp, (size_t)c * sizeof *l);
        if (!l) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        s->lp = l;
        s->cap_lp = c;
    }
    g4_token_logprob *e = &s->lp[s->n_lp++];
    memset(e, 0, sizeof *e);
    e->token = -1;
    float mx = -INFINITY;
    for (int i = 0; i < s->n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < s->n_vocab; i++) sum += exp((double)(logits[i] - mx));
    const float lse = mx + (float)log(sum);
    const int k = s->p.n_logprobs;
    for (int i = 0; i < s->n_vocab && k > 0; i++) { /* insertion into the k best (value desc, id asc) */
        const float l = logits[i];
        if (!(l > -INFINITY)) continue;
        if (e->n_top == k && l <= e->top_logprob[k - 1]) continue;
        int j = e->n_top < k ? e->n_top++ : k - 1;
        while (j > 0 && e->top_logprob[j - 1] < l) {
            e->top_logprob[j] = e->top_logprob[j - 1];
            e->top_id[j] = e->top_id[j - 1];
            j--;
        }
        e->top_logprob[j] = l;
        e->top_id[j] = i;
    }
    for (int j = 0; j < e->n_top; j++) e->top_logprob[j] -= lse;
    *lse_out = lse;
    return G4_OK;
}

int g4_stream_top_k(const g4_stream *s) {
    if (s->gm || s->p.n_logprobs >= 0) return 0;
    return g4_sampler_top_k(s->sampler);
}

g4_status g4_stream_next(g4_stream *s, float *logits, int32_t *tok, int *done, g4_error *err) {
    *done = 0;
    *tok = -1;
    if (s->done) {
        *done = 1;
        return G4_OK;
    }
    g4_status rc;
    float lse = 0;
    if (s->p.n_logprobs >= 0 && (rc = record_logprob(s, logits, &lse, err))) return rc;
    int32_t t = g4_sampler_sample(s->sampler, logits);
    /* a thinking model's first token may open its thought block instead of starting the answer */
    const int may_think = s->p.think && s->n_gen == 0 && s->channel_tok >= 0;
    int on = grammar_on(s) && !(may_think && t == s->channel_tok);
    if (on && !g4_gmatch_token_ok(s->gm, s->p.gvocab, t)) { /* mask the row and draw again */
        const float keep = may_think ? logits[s->channel_tok] : 0;
        if ((rc = g4_gmatch_mask(s->gm, s->p.gvocab, logits, err))) return rc;
        if (may_think) logits[s->channel_tok] = keep;
        t = g4_sampler_sample(s->sampler, logits);
        if (t < 0 || t >= s->n_vocab || !(logits[t] > -INFINITY))
            return g4_fail(err, G4_ERR_ARG, "no token of the vocabulary can continue the structured output");
        on = !(may_think && t == s->channel_tok);
    }
    if (s->p.n_logprobs >= 0) { /* an allowed token's logit is the model's own (the mask only removes) */
        g4_token_logprob *e = &s->lp[s->n_lp - 1];
        e->token = t;
        e->logprob = logits[t] - lse;
    }
    if (on && !g4_vocab_is_eog(s->v, t) && !g4_gmatch_accept_token(s->gm, s->p.gvocab, t)) {
        rc = g4_gmatch_status(s->gm, err);
        return rc ? rc : g4_fail(err, G4_ERR_ARG, "the structured output cannot take token %d", (int)t);
    }
    *tok = t;
    return follow(s, t, done, err);
}

g4_status g4_stream_next_top(g4_stream *s, const int32_t *ids, const float *vals, int n, int32_t *tok, int *done,
                             g4_error *err) {
    *done = 0;
    *tok = -1;
    if (s->done) {
        *done = 1;
        return G4_OK;
    }
    if (s->gm || s->p.n_logprobs >= 0) return g4_fail(err, G4_ERR_ARG, "this stream needs every logit");
    const int32_t t = g4_sampler_sample_top(s->sampler, ids, vals, n);
    *tok = t;
    return follow(s, t, done, err);
}
