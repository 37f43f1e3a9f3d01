/* Generation and sampling parameters as a stranger may send them: empty and long stop strings, limits out of
 * range, nan / inf sampling values (g4_gen_params_check, g4_sampler_params_check, g4_generate on the oracle's
 * tiny random-weight e2b-Q8_0 model). */
#include "t.h"

#include "g4.h"
#include "generate/generate.h"
#include "sampler/sampler.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char buf[8192];
    size_t len;
} text_acc;

static int on_text(void *user, const char *t, size_t n) {
    text_acc *a = user;
    if (a->len + n < sizeof a->buf) memcpy(a->buf + a->len, t, n), a->len += n;
    return 0;
}

static int has(const char *msg, const char *needle) { return strstr(msg, needle) != NULL; }

/* g4_sampler_params_check: every parameter's range, and the message names parameter, value and range */
static void test_sampler_check(void) {
    g4_error err;
    g4_sampler_params ok = g4_sampler_default_params();
    CHECK(g4_sampler_params_check(&ok, &err) == G4_OK, "defaults: %s", err.msg);
    /* the edges that are allowed: greedy, top-k off, top-p 0 / 1, min-p 0 / 1, penalties at their bounds */
    g4_sampler_params e = ok;
    e.temperature = 0, e.top_k = 0, e.top_p = 0, e.min_p = 1, e.repeat_penalty = G4_SAMPLER_MIN_REPEAT_PENALTY;
    e.presence_penalty = -G4_SAMPLER_MAX_PENALTY, e.frequency_penalty = G4_SAMPLER_MAX_PENALTY, e.penalty_last_n = -1;
    e.seed = UINT64_MAX;
    CHECK(g4_sampler_params_check(&e, &err) == G4_OK, "edges: %s", err.msg);
    e.top_p = 1, e.min_p = 0, e.penalty_last_n = G4_SAMPLER_MAX_LAST_N, e.temperature = 1e30f;
    CHECK(g4_sampler_params_check(&e, &err) == G4_OK, "edges 2: %s", err.msg);

    struct {
        const char *what, *needle;
        g4_sampler_params p;
    } bad[32];
    int n = 0;
#define BAD(field, val, needle_)                                                                                       \
    do {                                                                                                               \
        bad[n].what = #field " = " #val;                                                                               \
        bad[n].needle = needle_;                                                                                       \
        bad[n].p = ok;                                                                                                 \
        bad[n].p.field = val;                                                                                          \
        n++;                                                                                                           \
    } while (0)
    BAD(temperature, NAN, "temperature nan");
    BAD(temperature, INFINITY, "temperature inf");
    BAD(temperature, -1.0f, "temperature -1");
    BAD(top_k, -1, "top_k -1");
    BAD(top_k, G4_SAMPLER_MAX_TOP_K + 1, "top_k 1000001");
    BAD(top_p, 2.0f, "top_p 2");
    BAD(top_p, -0.1f, "top_p -0.1");
    BAD(top_p, NAN, "top_p nan");
    BAD(min_p, -1.0f, "min_p -1");
    BAD(min_p, 1.5f, "min_p 1.5");
    BAD(repeat_penalty, 0.0f, "repeat_penalty 0");
    BAD(repeat_penalty, -1.0f, "repeat_penalty -1");
    BAD(repeat_penalty, INFINITY, "repeat_penalty inf");
    BAD(repeat_penalty, 1000.0f, "repeat_penalty 1000");
    BAD(presence_penalty, NAN, "presence_penalty nan");
    BAD(presence_penalty, 101.0f, "presence_penalty 101");
    BAD(frequency_penalty, -INFINITY, "frequency_penalty -inf");
    BAD(frequency_penalty, -101.0f, "frequency_penalty -101");
    BAD(penalty_last_n, -2, "penalty_last_n -2");
    BAD(penalty_last_n, G4_SAMPLER_MAX_LAST_N + 1, "penalty_last_n 1048577");
#undef BAD
    for (int i = 0; i < n; i++) {
        err.msg[0] = 0;
        CHECK(g4_sampler_params_check(&bad[i].p, &err) == G4_ERR_ARG, "%s accepted", bad[i].what);
        CHECK(has(err.msg, bad[i].needle) && has(err.msg, "out of range:"), "%s: message '%s' lacks '%s'", bad[i].what,
              err.msg, bad[i].needle);
        g4_sampler *s = (g4_sampler *)1;
        CHECK(g4_sampler_new(&s, &bad[i].p, 16, &err) == G4_ERR_ARG && s == NULL, "%s: g4_sampler_new accepted it",
              bad[i].what);
    }
    /* set_params refuses and leaves the sampler as it was */
    g4_sampler *s = NULL;
    CHECK(g4_sampler_new(&s, &ok, 16, &err) == G4_OK, "sampler_new: %s", err.msg);
    if (s) {
        for (int i = 0; i < n; i++)
            CHECK(g4_sampler_set_params(s, &bad[i].p, &err) == G4_ERR_ARG, "%s: set_params accepted it", bad[i].what);
        CHECK(memcmp(g4_sampler_get_params(s), &ok, sizeof ok) == 0, "set_params changed the parameters it refused");
        g4_sampler_params t = ok;
        t.temperature = 0.5f;
        CHECK(g4_sampler_set_params(s, &t, &err) == G4_OK && g4_sampler_get_params(s)->temperature == 0.5f,
              "set_params: %s", err.msg);
        g4_sampler_free(s);
    }
    CHECK(g4_sampler_params_check(NULL, &err) == G4_ERR_ARG, "NULL parameters accepted");
}

/* a tiny temperature is (almost) greedy, not a nan draw of the least likely token */
static void test_tiny_temperature(void) {
    g4_error err;
    g4_sampler_params p = g4_sampler_default_params();
    p.top_k = 0, p.top_p = 1, p.temperature = 1e-20f;
    g4_sampler *s;
    CHECK(g4_sampler_new(&s, &p, 8, &err) == G4_OK, "sampler: %s", err.msg);
    const float lg[8] = {0.1f, 0.2f, 3.0f, 0.4f, -1.0f, 0.0f, 0.5f, NAN};
    for (int i = 0; i < 20; i++) CHECK(g4_sampler_sample(s, lg) == 2, "temperature 1e-20 did not take the most likely token");
    /* +inf logits: drawn, not nan */
    float li[8] = {1.0f, INFINITY, 0.0f, NAN, -1.0f, -2.0f, -INFINITY, 3.0f};
    p.temperature = 1.0f;
    CHECK(g4_sampler_set_params(s, &p, &err) == G4_OK, "set: %s", err.msg);
    for (int i = 0; i < 20; i++) CHECK(g4_sampler_sample(s, li) == 1, "an +inf logit was not drawn");
    g4_sampler_free(s);
}

/* g4_gen_params_check */
static void test_gen_check(void) {
    g4_error err;
    g4_gen_params gp = {0};
    CHECK(g4_gen_params_check(&gp, &err) == G4_OK, "zero parameters: %s", err.msg);
    gp.max_tokens = -1;
    CHECK(g4_gen_params_check(&gp, &err) == G4_OK, "max_tokens -1: %s", err.msg);
    gp.max_tokens = -2;
    CHECK(g4_gen_params_check(&gp, &err) == G4_ERR_ARG && has(err.msg, "max_tokens -2"), "max_tokens -2: %s", err.msg);
    gp.max_tokens = 10;
    static const char *many[G4_GEN_MAX_STOP + 1];
    for (int i = 0; i <= G4_GEN_MAX_STOP; i++) many[i] = "x";
    gp.stop = many, gp.n_stop = G4_GEN_MAX_STOP;
    CHECK(g4_gen_params_check(&gp, &err) == G4_OK, "%d stop strings: %s", G4_GEN_MAX_STOP, err.msg);
    gp.n_stop = G4_GEN_MAX_STOP + 1;
    CHECK(g4_gen_params_check(&gp, &err) == G4_ERR_ARG && has(err.msg, "65 stop strings: at most 64"), "65 stops: %s", err.msg);
    gp.n_stop = -1;
    CHECK(g4_gen_params_check(&gp, &err) == G4_ERR_ARG, "-1 stop strings accepted");
    gp.stop = NULL, gp.n_stop = 1;
    CHECK(g4_gen_params_check(&gp, &err) == G4_ERR_ARG, "a NULL list accepted");
    static char longs[G4_GEN_MAX_STOP_BYTES + 2];
    memset(longs, 'a', G4_GEN_MAX_STOP_BYTES);
    const char *one[3] = {"", longs, NULL};
    gp.stop = one, gp.n_stop = 2;
    CHECK(g4_gen_params_check(&gp, &err) == G4_OK, "a stop string of %d bytes: %s", G4_GEN_MAX_STOP_BYTES, err.msg);
    longs[G4_GEN_MAX_STOP_BYTES] = 'a';
    CHECK(g4_gen_params_check(&gp, &err) == G4_ERR_ARG && has(err.msg, "stop string 1 is longer than 1024 bytes"),
          "a stop string of 1025 bytes: %s", err.msg);
    gp.n_stop = 3;
    longs[G4_GEN_MAX_STOP_BYTES] = 0;
    CHECK(g4_gen_params_check(&gp, &err) == G4_ERR_ARG && has(err.msg, "stop string 2"), "a NULL stop string: %s", err.msg);
    CHECK(g4_gen_params_check(NULL, &err) == G4_ERR_ARG, "NULL accepted");
}

static g4_status gen(g4_model *m, const g4_vocab *v, const g4_gen_params *gp, text_acc *out, g4_gen_stats *st,
                     g4_error *err) {
    g4_ctx_params cp = g4_ctx_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 1;
    g4_ctx *c;
    g4_sampler *s;
    g4_sampler_params sp = g4_sampler_default_params();
    sp.temperature = 0;
    out->len = 0;
    g4_status rc = g4_ctx_new(&c, m, &cp, err);
    if (rc) return rc;
    if ((rc = g4_sampler_new(&s, &sp, g4_vocab_n_tokens(v), err))) {
        g4_ctx_free(c);
        return rc;
    }
    const int32_t prompt[] = {2, 40, 41, 42, 43, 44};
    rc = g4_generate(c, v, s, prompt, 6, gp, on_text, out, st, err);
    g4_sampler_free(s);
    g4_ctx_free(c);
    return rc;
}

/* g4_generate: empty stop strings are ignored (alone, among others, first or last); a stop string cuts */
static void test_generate(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/e2b-Q8_0.gguf", t_oracle());
    g4_error err;
    g4_model *m;
    if (g4_model_open(&m, path, &err)) {
        CHECK(0, "open %s: %s", path, err.msg);
        return;
    }
    const g4_vocab *v = g4_model_vocab(m);
    CHECK(v != NULL, "no vocabulary in %s", path);
    if (!v) {
        g4_model_free(m);
        return;
    }
    static text_acc ref, out;
    g4_gen_stats st_ref, st;
    g4_gen_params gp = {.max_tokens = 30};
    CHECK(gen(m, v, &gp, &ref, &st_ref, &err) == G4_OK, "generate: %s", err.msg);
    CHECK(ref.len > 0, "no text generated");
    const char *sets[][3] = {{"", NULL, NULL}, {"", "", NULL}, {"\x01never\x02", "", NULL}, {"", "\x01never\x02", ""}};
    const int ns[] = {1, 2, 2, 3};
    for (int i = 0; i < 4; i++) {
        gp.stop = sets[i], gp.n_stop = ns[i];
        CHECK(gen(m, v, &gp, &out, &st, &err) == G4_OK, "generate with empty stop strings (set %d): %s", i, err.msg);
        CHECK(out.len == ref.len && !memcmp(out.buf, ref.buf, ref.len) && st.n_gen == st_ref.n_gen && st.stop == st_ref.stop,
              "set %d: empty stop strings changed the answer (%zu bytes, %d tokens, stop %s; without: %zu, %d, %s)", i,
              out.len, st.n_gen, g4_stop_reason_str(st.stop), ref.len, st_ref.n_gen, g4_stop_reason_str(st_ref.stop));
    }
    /* a stop string taken from the middle of the answer cuts it there, with empty ones around it */
    if (ref.len >= 6) {
        size_t at = ref.len / 2;
        char stop[4];
        memcpy(stop, ref.buf + at, 3);
        stop[3] = 0;
        size_t first = (size_t)((char *)memmem(ref.buf, ref.len, stop, 3) - ref.buf);
        const char *list[] = {"", stop, ""};
        gp.stop = list, gp.n_stop = 3;
        CHECK(gen(m, v, &gp, &out, &st, &err) == G4_OK, "generate with a stop string: %s", err.msg);
        CHECK(st.stop == G4_STOP_STRING && out.len == first && !memcmp(out.buf, ref.buf, first),
              "stop string '%s': stop %s, %zu bytes, expected the %zu before its first occurrence", stop,
              g4_stop_reason_str(st.stop), out.len, first);
    }
    /* refused before anything is evaluated */
    gp.stop = NULL, gp.n_stop = 0, gp.max_tokens = -5;
    CHECK(gen(m, v, &gp, &out, &st, &err) == G4_ERR_ARG && has(err.msg, "max_tokens -5") && out.len == 0,
          "max_tokens -5: %s", err.msg);
    g4_model_free(m);
}

int main(void) {
    test_sampler_check();
    test_tiny_temperature();
    test_gen_check();
    test_generate();
    return t_done();
}
