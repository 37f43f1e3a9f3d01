/* libFuzzer target for the tokenizer and the detokenizer.
 *
 *   make fuzz-tokenizer FUZZ_SECONDS=60      (clang -fsanitize=fuzzer,address,undefined)
 *
 * Vocabularies: g4 synth's small BPE vocabulary written as a "gemma4" file and as a "llama"
 * (SentencePiece) file with extra user-defined tokens (space / newline runs, an HTML tag), plus, when
 * G4_FUZZ_VOCAB names a GGUF file, that one (e.g. a real Gemma vocabulary).
 * The first input byte chooses the vocabulary, parse_special and BOS; the rest is the text (any bytes).
 * With the top bit of the first byte set, the rest is a GGUF file instead: its tokenizer is loaded
 * (any error must be a clean G4_ERR_*), and when it loads it tokenizes and detokenizes the input.
 * Checked for every input:
 *   - tokenizing never fails; every id is in range; the same text gives the same ids again (word cache);
 *     a too small buffer reports G4_ERR_ARG with the same count;
 *   - detokenized text is valid UTF-8; the streaming detokenizer gives the same bytes as g4_detokenize;
 *   - for valid UTF-8 without U+2581, detokenize(tokenize(text)) == text (with special tokens shown
 *     when they were parsed; without parse_special, unless SentencePiece merges spelled a control token).
 */
#include "gguf/gguf.h"
#include "synth/synth.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENSURE(c)                                                                                        \
    do {                                                                                                 \
        if (!(c)) {                                                                                      \
            fprintf(stderr, "fuzz_tokenizer: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #c);  \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

static g4_vocab *vocabs[3];
static int n_vocabs;

static g4_vocab *make_vocab(const g4_synth_vocab *sv, int llama) {
    static const char *extra[] = {"  ", "   ", "\n\n\n", "<b>", "</s>", "<start_of_turn>"};
    int n = sv->n;
    const char **toks = malloc(((size_t)n + 8) * sizeof *toks);
    float *scores = malloc(((size_t)n + 8) * sizeof *scores);
    int32_t *types = malloc(((size_t)n + 8) * sizeof *types);
    ENSURE(toks && scores && types);
    for (int i = 0; i < n; i++) {
        toks[i] = sv->tokens[i];
        types[i] = sv->types[i];
        scores[i] = types[i] == 6 ? 0.0f : -(float)i;
    }
    if (llama) {
        for (size_t k = 0; k < sizeof extra / sizeof *extra; k++) {
            int dup = 0;
            for (int i = 0; i < n && !dup; i++) dup = !strcmp(toks[i], extra[k]);
            if (dup) continue;
            toks[n] = extra[k];
            scores[n] = -1000.0f;
            types[n] = k == 5 ? 3 : 4;
            n++;
        }
    }
    gguf_writer *w = gguf_writer_new();
    ENSURE(w);
    gguf_w_str(w, "general.architecture", "llama");
    gguf_w_str(w, "tokenizer.ggml.model", llama ? "llama" : "gemma4");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, scores, (uint64_t)n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, (uint64_t)n);
    if (!llama) gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)sv->merges, (uint64_t)sv->n_merges);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 2);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 1);
    gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    char path[] = "/tmp/g4-fuzz-tok-XXXXXX";
    int fd = mkstemp(path);
    ENSURE(fd >= 0);
    close(fd);
    g4_error err;
    ENSURE(gguf_writer_write(w, path, NULL, NULL, NULL, &err) == G4_OK);
    gguf_writer_free(w);
    g4_vocab *v;
    ENSURE(g4_vocab_open(&v, path, &err) == G4_OK);
    unlink(path); /* the mapping stays valid */
    free(toks);
    free(scores);
    free(types);
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g4_synth_vocab sv;
    g4_error err;
    ENSURE(g4_synth_vocab_build(&sv, 600, &err) == G4_OK);
    vocabs[n_vocabs++] = make_vocab(&sv, 0);
    vocabs[n_vocabs++] = make_vocab(&sv, 1);
    g4_synth_vocab_free(&sv);
    const char *extra = getenv("G4_FUZZ_VOCAB");
    if (extra && *extra) {
        if (g4_vocab_open(&vocabs[n_vocabs], extra, &err) == G4_OK) n_vocabs++;
        else fprintf(stderr, "fuzz_tokenizer: G4_FUZZ_VOCAB: %s\n", err.msg);
    }
    return 0;
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int comp;
        int k = tok_utf8_prefix(s + i, n - i, &comp);
        if (!comp) return 0;
        i += (size_t)k;
    }
    return 1;
}

static void check_detok(const g4_vocab *v, const int32_t *ids, size_t n, int special, const uint8_t *text,
                        size_t len, int expect_equal) {
    g4_error err;
    char *out;
    size_t ol;
    ENSURE(g4_detokenize(v, ids, n, special, &out, &ol, &err) == G4_OK);
    ENSURE(valid_utf8((const uint8_t *)out, ol));
    ENSURE(strlen(out) <= ol);
    /* the stream, token by token */
    g4_detok *d;
    ENSURE(g4_detok_new(&d, v, special, &err) == G4_OK);
    size_t k = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t m;
        const char *p = i < n ? g4_detok_push(d, ids[i], &m) : g4_detok_flush(d, &m);
        ENSURE(k + m <= ol && memcmp(out + k, p, m) == 0);
        k += m;
    }
    ENSURE(k == ol);
    g4_detok_free(d);
    if (expect_equal) ENSURE(ol == len && memcmp(out, text, len) == 0);
    free(out);
}

/* the tokenizer of a fuzzed GGUF file */
static void fuzz_loader(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    g4_error err;
    if (gguf_parse(&f, data, size, &err) != G4_OK) return;
    g4_vocab *v = NULL;
    memset(&err, 0, sizeof err);
    g4_status s = g4_vocab_from_gguf(&v, f, &err);
    if (s != G4_OK) {
        ENSURE(v == NULL && err.msg[0]);
        ENSURE(s == G4_ERR_FORMAT || s == G4_ERR_UNSUPPORTED || s == G4_ERR_NOMEM);
    } else if (v) {
        int32_t *ids;
        size_t n;
        for (int special = 0; special < 2; special++) {
            ENSURE(g4_tokenize_alloc(v, (const char *)data, size < 512 ? size : 512, 1, special, &ids, &n, &err) == G4_OK);
            for (size_t i = 0; i < n; i++) ENSURE(ids[i] >= 0 && ids[i] < g4_vocab_n_tokens(v));
            check_detok(v, ids, n, special, NULL, 0, 0);
            free(ids);
        }
        for (int32_t i = 0; i < g4_vocab_n_tokens(v) && i < 64; i++) {
            char buf[8];
            (void)g4_token_to_piece(v, i, 1, buf, sizeof buf);
            (void)g4_vocab_is_eog(v, i);
        }
        g4_vocab_free(v);
    }
    gguf_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    if (flags & 0x80) {
        fuzz_loader(data + 1, size - 1);
        return 0;
    }
    const g4_vocab *v = vocabs[(flags & 3) % n_vocabs];
    int special = (flags >> 2) & 1, bos = (flags >> 3) & 1;
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    g4_error err;
    int32_t *ids = NULL, *again = NULL;
    size_t n = 0, n2 = 0;
    ENSURE(g4_tokenize_alloc(v, (const char *)text, len, bos, special, &ids, &n, &err) == G4_OK);
    ENSURE(n <= g4_tokenize_bound(len));
    int nv = g4_vocab_n_tokens(v);
    for (size_t i = 0; i < n; i++) ENSURE(ids[i] >= 0 && ids[i] < nv);
    ENSURE(g4_tokenize_alloc(v, (const char *)text, len, bos, special, &again, &n2, &err) == G4_OK);
    ENSURE(n2 == n && (n == 0 || memcmp(ids, again, n * sizeof *ids) == 0));
    if (n > 1) {
        size_t n3 = 0;
        ENSURE(g4_tokenize(v, (const char *)text, len, bos, special, again, n / 2, &n3, &err) == G4_ERR_ARG);
        ENSURE(n3 == n && memcmp(ids, again, (n / 2) * sizeof *ids) == 0);
    }
    int plain = valid_utf8(text, len) && !memmem(text, len, "\xe2\x96\x81", 3);
    /* without parse_special no control token comes from the text, except when SentencePiece merges
     * happen to spell one (llama.cpp's behaviour too): then the round trip cannot hold */
    int ctl = 0;
    for (size_t i = bos && n && ids[0] == g4_vocab_bos(v); i < n; i++) ctl |= g4_vocab_is_control(v, ids[i]);
    check_detok(v, ids, n, 0, text, len, plain && !special && !ctl);
    check_detok(v, ids, n, 1, text, len, 0);
    if (plain && special && !bos) check_detok(v, ids, n, 1, text, len, 1);
    free(ids);
    free(again);
    return 0;
}
