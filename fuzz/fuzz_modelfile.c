/* libFuzzer target for the model store's parsers of outside input (src/store).
 *
 *   make fuzz-modelfile FUZZ_SECONDS=60      (clang -fsanitize=fuzzer,address,undefined)
 *
 * The input is used as
 *  - a Modelfile: parsed, either to a model or to an error with a message; a parsed one is written back with
 *    g4_modelfile_text, which must parse to the same model and write the same text again;
 *  - model names (the whole input, and each line): a name that parses is written with g4_name_string and parses
 *    back to the same name, and its parts hold only [A-Za-z0-9_.-] (so no path can come out of it);
 *  - a JSON object of parameters for g4_params_check (strict and lenient): a checked set checks again unchanged.
 * Seeds: fuzz/corpus-modelfile.
 */
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENSURE(c)                                                                                        \
    do {                                                                                                 \
        if (!(c)) {                                                                                      \
            fprintf(stderr, "fuzz_modelfile: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

static int str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static int mf_equal(const g4_modelfile *a, const g4_modelfile *b) {
    if (!str_eq(a->from, b->from) || !str_eq(a->system, b->system) || !str_eq(a->tmpl, b->tmpl) ||
        !str_eq(a->renderer, b->renderer) || !str_eq(a->parser, b->parser) || !str_eq(a->requires, b->requires) ||
        !json_equal(a->params, b->params) || a->n_messages != b->n_messages || a->n_license != b->n_license)
        return 0;
    for (size_t i = 0; i < a->n_messages; i++)
        if (!str_eq(a->messages[i].role, b->messages[i].role) || !str_eq(a->messages[i].content, b->messages[i].content))
            return 0;
    for (size_t i = 0; i < a->n_license; i++)
        if (!str_eq(a->license[i], b->license[i])) return 0;
    return 1;
}

static void fuzz_modelfile(const char *d, size_t n) {
    g4_modelfile *mf = NULL;
    g4_error e = {0};
    if (g4_modelfile_parse(d, n, &mf, &e)) {
        ENSURE(!mf && e.msg[0]);
        return;
    }
    ENSURE(mf && mf->from && mf->params);
    char *t1 = NULL, *t2 = NULL;
    ENSURE(g4_modelfile_text(mf, &t1, &e) == G4_OK);
    g4_modelfile *back = NULL;
    if (g4_modelfile_parse(t1, strlen(t1), &back, &e)) {
        fprintf(stderr, "written Modelfile does not parse: %s\n---\n%s---\n", e.msg, t1);
        abort();
    }
    ENSURE(mf_equal(mf, back));
    ENSURE(g4_modelfile_text(back, &t2, &e) == G4_OK);
    ENSURE(!strcmp(t1, t2));
    char *pt = NULL;
    ENSURE(g4_params_text(mf->params, &pt, &e) == G4_OK);
    free(pt);
    free(t1);
    free(t2);
    g4_modelfile_free(back);
    g4_modelfile_free(mf);
}

static void fuzz_name(const char *s, size_t n) {
    g4_model_name a, b;
    g4_error e = {0};
    if (g4_name_parse(s, n, &a, &e)) {
        ENSURE(e.code == G4_ERR_ARG && e.msg[0]);
        return;
    }
    const char *parts[3] = {a.ns, a.model, a.tag};
    for (int p = 0; p < 3; p++) {
        size_t L = strlen(parts[p]);
        ENSURE(L >= 1 && L <= G4_NAME_PART_MAX && parts[p][0] != '.' && parts[p][0] != '-');
        for (size_t i = 0; i < L; i++) {
            char c = parts[p][i];
            ENSURE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                   c == '.');
        }
    }
    char str[G4_NAME_MAX + 1];
    g4_name_string(&a, str, sizeof str);
    ENSURE(g4_name_parse(str, strlen(str), &b, &e) == G4_OK && g4_name_equal(&a, &b));
}

static void fuzz_params(const char *d, size_t n) {
    json_error_t je;
    json_t *in = json_loadb(d, n, 0, &je);
    if (!in) return;
    for (int lenient = 0; lenient < 2; lenient++) {
        json_t *out = NULL, *again = NULL;
        g4_error e = {0};
        if (g4_params_check(in, lenient, &out, &e)) {
            ENSURE(!out && e.msg[0]);
            continue;
        }
        ENSURE(g4_params_check(out, 0, &again, &e) == G4_OK && json_equal(out, again));
        json_decref(again);
        json_decref(out);
    }
    json_decref(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    fuzz_modelfile(d, size);
    if (size <= 4 * G4_NAME_MAX) fuzz_name(d, size);
    for (size_t i = 0, start = 0; i <= size; i++)
        if (i == size || d[i] == '\n') {
            if (i - start <= 4 * G4_NAME_MAX) fuzz_name(d + start, i - start);
            start = i + 1;
        }
    fuzz_params(d, size);
    return 0;
}
