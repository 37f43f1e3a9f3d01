/* The synthetic tokenizer of `g4 synth`: a small SentencePiece-style BPE vocabulary ("gemma4" layout)
 * that llama.cpp loads and tokenizes with.
 *
 *   0..6      <pad> <eos> <bos> <unk> <mask> <|turn> <turn|>        (control; <unk> type unknown)
 *   7..262    <0x00> .. <0xFF>                                       (byte fallback tokens)
 *   263..     whitespace pieces, the 94 printable ASCII characters   (the BPE alphabet)
 *   ..511     pieces learnt by BPE from a built-in English text; every learnt piece has its merge, merges
 *             are listed in rank order and each produces a token of the vocabulary
 *   512..     (only when n_vocab > 512) distinct ordinary pieces of letters, unreachable by merges
 * Scores: 0 for control and byte tokens, -id for the others (lower id = preferred), as in the oracle pack.
 */
#include "synth/synth.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

/* Text the BPE pieces are learnt from (written for this purpose). */
static const char corpus[] =
    "The keeper of the old lighthouse wrote in her log every evening. The sea was calm, the wind came "
    "from the west, and the ships passed the rocks at a safe distance. She counted them: one at seven, "
    "two at nine, and a small fishing boat that turned back before the storm. In the morning she "
    "cleaned the lamp, checked the oil, and walked along the shore to look for things the water had "
    "brought in. There were shells and stones, a broken oar, a bottle with no message, and once a "
    "wooden box full of letters that nobody could read. She kept the box on the table by the window. "
    "When the weather was bad she read the letters again and tried to guess the words. Some of them "
    "looked like the names of places; others were numbers, 12, 40, 365, written in a careful hand. "
    "In the winter the days were short and the nights were long. The keeper listened to the radio, "
    "mended her nets, and painted the door of the tower red, then green, then red again. Her brother "
    "came to visit in the spring. He brought bread, coffee, a new pair of boots, and news from the "
    "town: the school had a new teacher, the bridge was finally open, and the bakery sold a cake that "
    "everyone wanted to try. They talked until the light in the tower turned on by itself, and then "
    "they went outside to watch the beam move across the water. What is the longest night you have "
    "seen? he asked. She thought about it for a while. The one when the boat did not come back, she "
    "said, but it came back the next day, and the people on it were tired and hungry and happy. "
    "The station was built in 1887 and rebuilt after the fire of 1923. Its light can be seen from "
    "twenty miles away on a clear night, and the horn can be heard from the harbour when the fog is "
    "thick. Every part of the machine has a name, and the keeper knows them all: the lens, the "
    "clockwork, the weights, the chain, the valve, the vent. She writes them down for the next keeper, "
    "who will arrive when she retires, and who will read the log and learn the way the sea changes "
    "with the seasons. It is quiet work. It is important work. On most days nothing happens, and that "
    "is exactly what the light is for.";

typedef struct vb {
    g4_synth_vocab *v;
    int cap;
    uint32_t *hash;     /* open addressing: id + 1, 0 = empty */
    uint32_t hash_mask;
} vb;

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    while (*s) h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static int vb_find(const vb *b, const char *s) {
    for (uint32_t i = fnv1a(s) & b->hash_mask;; i = (i + 1) & b->hash_mask) {
        uint32_t e = b->hash[i];
        if (!e) return -1;
        if (strcmp(b->v->tokens[e - 1], s) == 0) return (int)e - 1;
    }
}

/* Adds a token (string copied); returns its id, -1 if present already, -2 out of memory / full. */
static int vb_add(vb *b, const char *s, int type) {
    if (vb_find(b, s) >= 0) return -1;
    g4_synth_vocab *v = b->v;
    if (v->n >= b->cap) return -2;
    size_t len = strlen(s) + 1;
    char *p = malloc(len);
    if (!p) return -2;
    memcpy(p, s, len);
    int id = v->n++;
    v->tokens[id] = p;
    v->types[id] = type;
    v->scores[id] = type == TT_NORMAL ? -(float)id : 0.0f;
    uint32_t i = fnv1a(s) & b->hash_mask;
    while (b->hash[i]) i = (i + 1) & b->hash_mask;
    b->hash[i] = (uint32_t)id + 1;
    return id;
}

static int vb_merge(vb *b, int cap_merges, const char *l, const char *r) {
    g4_synth_vocab *v = b->v;
    if (v->n_merges >= cap_merges) return -2;
    size_t n = strlen(l) + 1 + strlen(r) + 1;
    char *m = malloc(n);
    if (!m) return -2;
    snprintf(m, n, "%s %s", l, r);
    v->merges[v->n_merges++] = m;
    return 0;
}

void g4_synth_vocab_free(g4_synth_vocab *v) {
    if (!v) return;
    if (v->tokens)
        for (int i = 0; i < v->n; i++) free(v->tokens[i]);
    if (v->merges)
        for (int i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

#define N_LEARN 512    /* the BPE part ends at this many tokens (same for every vocabulary size) */
#define MAX_MERGES 1024

g4_status g4_synth_vocab_build(g4_synth_vocab *v, int n_vocab, g4_error *err) {
    memset(v, 0, sizeof *v);
    if (n_vocab < N_LEARN || n_vocab > (1 << 24))
        return g4_fail(err, G4_ERR_ARG, "synth vocab: n_vocab %d not in %d..%d", n_vocab, N_LEARN, 1 << 24);
    vb b = {v, n_vocab, NULL, 0};
    uint32_t hcap = 1;
    while (hcap < 2u * (uint32_t)n_vocab) hcap <<= 1;
    b.hash_mask = hcap - 1;
    b.hash = calloc(hcap, sizeof *b.hash);
    v->tokens = calloc((size_t)n_vocab, sizeof *v->tokens);
    v->scores = calloc((size_t)n_vocab, sizeof *v->scores);
    v->types = calloc((size_t)n_vocab, sizeof *v->types);
    v->merges = calloc(MAX_MERGES, sizeof *v->merges);
    /* word symbols of the corpus, and the pair-count table of the BPE learner */
    size_t clen = sizeof corpus - 1;
    int *sym = malloc((clen + 1) * 2 * sizeof *sym);
    int *cnt = malloc((size_t)N_LEARN * N_LEARN * sizeof *cnt);
    g4_status st = G4_OK;
    if (!b.hash || !v->tokens || !v->scores || !v->types || !v->merges || !sym || !cnt) {
        st = g4_fail(err, G4_ERR_NOMEM, "synth vocab: out of memory");
        goto done;
    }

    static const char *const specials[7] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"};
    for (int i = 0; i < 7; i++)
        if (vb_add(&b, specials[i], i == 3 ? TT_UNKNOWN : TT_CONTROL) != i) goto nomem;
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        if (vb_add(&b, s, TT_BYTE) != 7 + i) goto nomem;
    }
    /* whitespace: single pieces first, then runs with their merges */
    static const char *const ws[] = {"\n", "\t", SP};
    for (int i = 0; i < 3; i++)
        if (vb_add(&b, ws[i], TT_NORMAL) < 0) goto nomem;
    int ascii_id[128];
    for (int c = 0; c < 128; c++) ascii_id[c] = -1;
    ascii_id[' '] = vb_find(&b, SP);
    for (int c = 0x21; c < 0x7f; c++) {
        char s[2] = {(char)c, 0};
        if ((ascii_id[c] = vb_add(&b, s, TT_NORMAL)) < 0) goto nomem;
    }
    static const char *const runs[][3] = {
        {"\n", "\n", "\n\n"}, {SP, SP, SP SP}, {"\n\n", "\n", "\n\n\n"}, {SP SP, SP SP, SP SP SP SP}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        if (vb_add(&b, runs[i][2], TT_NORMAL) < 0 || vb_merge(&b, MAX_MERGES, runs[i][0], runs[i][1]) < 0) goto nomem;

    /* corpus -> words "▁w o r d", symbols separated by -1 */
    int ns = 0;
    for (size_t i = 0; i < clen;) {
        while (i < clen && corpus[i] == ' ') i++;
        if (i >= clen) break;
        sym[ns++] = ascii_id[' '];
        while (i < clen && corpus[i] != ' ') sym[ns++] = ascii_id[(unsigned char)corpus[i++] & 127];
        sym[ns++] = -1;
    }
    /* BPE: repeatedly merge the most frequent adjacent pair (ties: lowest ids), until N_LEARN tokens */
    while (v->n < N_LEARN && v->n_merges < MAX_MERGES) {
        memset(cnt, 0, (size_t)N_LEARN * N_LEARN * sizeof *cnt);
        int best = -1, best_n = 1;
        for (int i = 0; i + 1 < ns; i++) {
            if (sym[i] < 0 || sym[i + 1] < 0) continue;
            int k = sym[i] * N_LEARN + sym[i + 1];
            cnt[k]++;
        }
        for (int k = 0; k < N_LEARN * N_LEARN; k++)
            if (cnt[k] > best_n) best_n = cnt[k], best = k;
        if (best < 0) break; /* nothing occurs twice any more: pad below */
        int a = best / N_LEARN, c = best % N_LEARN;
        size_t la = strlen(v->tokens[a]), lc = strlen(v->tokens[c]);
        char *m = malloc(la + lc + 1);
        if (!m) goto nomem;
        memcpy(m, v->tokens[a], la);
        memcpy(m + la, v->tokens[c], lc + 1);
        int id = vb_find(&b, m);
        if (id < 0) id = vb_add(&b, m, TT_NORMAL);
        free(m);
        if (id < 0 || vb_merge(&b, MAX_MERGES, v->tokens[a], v->tokens[c]) < 0) goto nomem;
        int o = 0;
        for (int i = 0; i < ns; i++) {
            if (i + 1 < ns && sym[i] == a && sym[i + 1] == c) {
                sym[o++] = id;
                i++;
            } else {
                sym[o++] = sym[i];
            }
        }
        ns = o;
    }
    /* padding: distinct letter pieces ("abc", "▁abc", ...) not present yet */
    for (uint64_t k = 0; v->n < n_vocab; k++) {
        char s[32];
        int o = 0;
        if (k & 1) {
            memcpy(s, SP, 3);
            o = 3;
        }
        char letters[16];
        int nl = 0;
        for (uint64_t x = (k >> 1) + 26 * 26; x; x /= 26) letters[nl++] = (char)('a' + x % 26);
        while (nl) s[o++] = letters[--nl];
        s[o] = 0;
        if (vb_add(&b, s, TT_NORMAL) == -2) goto nomem;
    }
    goto done;
nomem:
    st = g4_fail(err, G4_ERR_NOMEM, "synth vocab: out of memory");
done:
    free(b.hash);
    free(sym);
    free(cnt);
    if (st != G4_OK) g4_synth_vocab_free(v);
    return st;
}
