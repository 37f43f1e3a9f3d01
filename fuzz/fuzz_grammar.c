/* libFuzzer target for structured output (src/grammar).
 *
 *   make fuzz-grammar FUZZ_SECONDS=60      (clang -fsanitize=fuzzer,address,undefined)
 *
 * Input: schema JSON text (empty: any JSON object), optionally followed by a NUL byte and bytes for the matcher. The schema must
 * compile or fail with a message (never crash, leak or hang). On success the bytes are fed to a matcher in
 * chunks (a rejected chunk must leave the state unchanged); then the bytes steer a walk through allowed
 * bytes only, closed by least-cost bytes: every state on the way must be alive (no dead ends), the walk
 * must end in a complete document, and that text must parse as JSON.
 * Seeds: fuzz/corpus-grammar.
 */
#include "grammar/grammar.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENSURE(c)                                                                                      \
    do {                                                                                               \
        if (!(c)) {                                                                                    \
            fprintf(stderr, "fuzz_grammar: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                                   \
        }                                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    const uint8_t *nul = memchr(d, 0, n);
    size_t sl = nul ? (size_t)(nul - d) : n;
    const uint8_t *feed = nul ? nul + 1 : d + n;
    size_t fl = nul ? n - sl - 1 : 0;
    g4_grammar *g = NULL;
    g4_error e = {0};
    g4_grammar_opts o;
    g4_grammar_opts_default(&o);
    if (fl && feed[0] % 4 == 0) o.ws_indent = -1;
    g4_status st = sl ? g4_grammar_from_schema_text(&g, (const char *)d, sl, &o, &e)
                      : g4_grammar_from_schema_opts(&g, NULL, &o, &e); /* empty: any JSON object */
    if (st != G4_OK) {
        ENSURE(g == NULL && e.msg[0]);
        return 0;
    }
    g4_gmatch *m;
    if (g4_gmatch_new(&m, g, &e) != G4_OK) {
        ENSURE(e.msg[0]);
        g4_grammar_free(g);
        return 0;
    }
    ENSURE(g4_gmatch_alive(m));
    /* the bytes as text, in chunks */
    for (size_t i = 0; i < fl;) {
        size_t k = 1 + feed[i] % 5;
        if (k > fl - i) k = fl - i;
        int done = g4_gmatch_done(m), cont = g4_gmatch_can_continue(m);
        int chk = g4_gmatch_check(m, (const char *)feed + i, k);
        int ok = g4_gmatch_accept(m, (const char *)feed + i, k);
        ENSURE(chk == ok || g4_gmatch_status(m, NULL) != G4_OK);
        if (!ok) ENSURE(done == g4_gmatch_done(m) && cont == g4_gmatch_can_continue(m));
        ENSURE(g4_gmatch_alive(m) || g4_gmatch_status(m, NULL) != G4_OK);
        i += k;
    }
    /* a walk steered by the bytes, closed by least-cost bytes */
    g4_gmatch_reset(m);
    char *text = malloc(4096 + 1);
    size_t tn = 0, step = 0;
    while (text && tn < 4096) {
        uint8_t set[32];
        if (g4_gmatch_next_bytes(m, set)) break;
        int cands[256], nc = 0;
        for (int c = 0; c < 256; c++)
            if (set[c >> 3] >> (c & 7) & 1) cands[nc++] = c;
        ENSURE(nc > 0 || g4_gmatch_done(m));
        if (step >= fl && g4_gmatch_done(m)) break;
        if (!nc) break;
        int pick;
        if (step < fl) {
            pick = cands[feed[step] % nc];
        } else {
            size_t best = SIZE_MAX;
            pick = cands[0];
            for (int i = 0; i < nc; i++) {
                char b = (char)cands[i];
                size_t cst = g4_gmatch_cost_after(m, &b, 1);
                if (cst < best) { best = cst; pick = cands[i]; }
            }
            ENSURE(best + 1 == g4_gmatch_min_remaining(m) || g4_gmatch_status(m, NULL) != G4_OK);
        }
        step++;
        char b = (char)pick;
        if (!g4_gmatch_accept(m, &b, 1)) break;
        text[tn++] = b;
        ENSURE(g4_gmatch_alive(m));
    }
    if (text && g4_gmatch_status(m, NULL) == G4_OK && g4_gmatch_done(m)) {
        json_error_t je;
        json_t *v = json_loadb(text, tn, JSON_DECODE_ANY, &je);
        if (!v) fprintf(stderr, "fuzz_grammar: generated text does not parse: %s: %.*s\n", je.text, (int)tn, text);
        ENSURE(v != NULL);
        json_decref(v);
    }
    free(text);
    g4_gmatch_free(m);
    g4_grammar_free(g);
    return 0;
}
