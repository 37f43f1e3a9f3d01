/* Structured output cost per generated token (one thread): g4_gmatch_token_ok (the check of the sampled
 * token) and g4_gmatch_mask (the full pass over the vocabulary, needed only when the sampled token is
 * refused) for a few schemas and states, on a real vocabulary.
 *   bench_grammar VOCAB.gguf [REPEATS]        (make bench-grammar: the Gemma 4 vocabulary, 262,144 tokens)
 * "cold": the first mask in a state (DFA transitions computed on the way); "warm": again with the
 * transitions known but the allowed-set cache cleared (a full trie walk); "cached": a repeated mask in
 * the same state (copy of the remembered set + the pass over the logits). token_ok: averaged over every
 * token of the vocabulary. */
#include "grammar/grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *person =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\",\"minimum\":0,"
    "\"maximum\":150},\"email\":{\"type\":\"string\",\"format\":\"email\"},\"tags\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"string\"}},\"address\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"zip\":"
    "{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}},\"required\":[\"city\"]}},\"required\":[\"name\",\"age\"]}";
static const char *shapes =
    "{\"type\":\"array\",\"items\":{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"circle\"},"
    "\"r\":{\"type\":\"number\",\"minimum\":0}},\"required\":[\"kind\",\"r\"]},{\"type\":\"object\",\"properties\":"
    "{\"kind\":{\"const\":\"rect\"},\"w\":{\"type\":\"number\"},\"h\":{\"type\":\"number\"}},\"required\":[\"kind\","
    "\"w\",\"h\"]}]}}";

static const struct { const char *name, *schema, *prefix; } cases[] = {
    {"any object, start", NULL, ""},
    {"any object, in a key", NULL, "{\"na"},
    {"any object, in a string value", NULL, "{\"name\": \"Jo"},
    {"any object, after a value", NULL, "{\"a\": 1"},
    {"any object, in a number", NULL, "{\"a\": 12"},
    {"person, start", NULL, ""},
    {"person, in \"name\" value", NULL, "{\"name\": \"Ann"},
    {"person, before a key", NULL, "{\"name\": \"Ann\", "},
    {"person, in \"age\"", NULL, "{\"name\": \"Ann\", \"age\": 4"},
    {"person, in \"email\"", NULL, "{\"name\": \"Ann\", \"age\": 40, \"email\": \"ann@ex"},
    {"shapes (oneOf), after [", NULL, "["},
    {"shapes (oneOf), in a number", NULL, "[{\"kind\": \"rect\", \"w\": 3.2"},
    {"enum of 3, start", "{\"enum\":[\"alpha\",\"beta\",\"gamma\"]}", ""},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_grammar VOCAB.gguf [REPEATS]\n");
        return 1;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (reps < 1) reps = 1;
    g4_vocab *v;
    g4_error e;
    if (g4_vocab_open(&v, argv[1], &e)) {
        fprintf(stderr, "bench_grammar: %s\n", e.msg);
        return 1;
    }
    double t0 = now();
    g4_gvocab *gv;
    if (g4_gvocab_new(&gv, v, &e)) {
        fprintf(stderr, "bench_grammar: %s\n", e.msg);
        return 1;
    }
    int nt = g4_gvocab_n_tokens(gv);
    printf("vocabulary %s: %d tokens, trie built in %.1f ms\n", argv[1], nt, (now() - t0) * 1e3);
    printf("%-34s %8s %9s %10s %10s %10s %9s\n", "schema, state", "allowed", "token_ok", "mask cold", "mask warm",
           "cached", "compile");
    printf("%-34s %8s %9s %10s %10s %10s %9s\n", "", "", "us/token", "us", "us", "us", "us");
    float *logits = malloc((size_t)nt * sizeof *logits);
    uint32_t *bits = malloc(((size_t)nt + 31) / 32 * sizeof *bits);
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const char *schema = cases[ci].schema;
        if (!schema && !strncmp(cases[ci].name, "person", 6)) schema = person;
        if (!schema && !strncmp(cases[ci].name, "shapes", 6)) schema = shapes;
        g4_grammar *g;
        double tc = now();
        g4_status st = schema ? g4_grammar_from_schema_text(&g, schema, strlen(schema), NULL, &e)
                              : g4_grammar_from_schema(&g, NULL, &e);
        tc = now() - tc;
        if (st) {
            fprintf(stderr, "bench_grammar: %s: %s\n", cases[ci].name, e.msg);
            return 1;
        }
        g4_gmatch *m;
        if (g4_gmatch_new(&m, g, &e) || !g4_gmatch_accept(m, cases[ci].prefix, strlen(cases[ci].prefix))) {
            fprintf(stderr, "bench_grammar: %s: prefix refused\n", cases[ci].name);
            return 1;
        }
        double tm = now();
        if (g4_gmatch_mask(m, gv, logits, &e)) {
            fprintf(stderr, "bench_grammar: %s\n", e.msg);
            return 1;
        }
        double cold = now() - tm;
        int na = 0;
        g4_gmatch_allowed(m, gv, bits, &na, &e);
        tm = now();
        for (int r = 0; r < reps; r++) {
            g4_gmatch_forget_masks(m);
            g4_gmatch_mask(m, gv, logits, &e);
        }
        double warm = (now() - tm) / reps;
        tm = now();
        for (int r = 0; r < reps; r++) g4_gmatch_mask(m, gv, logits, &e);
        double cached = (now() - tm) / reps;
        /* token_ok over every token (what a check of the sampled token costs, averaged over the vocabulary) */
        volatile int sink = 0;
        tm = now();
        for (int r = 0; r < 3; r++)
            for (int t = 0; t < nt; t++) sink += g4_gmatch_token_ok(m, gv, t);
        double tok = (now() - tm) / (3.0 * nt);
        (void)sink;
        printf("%-34s %8d %9.3f %10.0f %10.0f %10.0f %9.0f\n", cases[ci].name, na, tok * 1e6, cold * 1e6, warm * 1e6,
               cached * 1e6, tc * 1e6);
        g4_gmatch_free(m);
        g4_grammar_free(g);
    }
    free(logits);
    free(bits);
    g4_gvocab_free(gv);
    g4_vocab_free(v);
    return 0;
}
