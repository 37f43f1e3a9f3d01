/* g4's tokenizer: internal structures shared by tokenizer.c (load + tokenize), detok.c (pieces and the
 * streaming detokenizer) and import_hf.c (HF tokenizer.json -> GGUF tokenizer section).
 *
 * The public API is the tokenizer section of include/g4.h; docs/tokenizer.md describes the algorithms.
 */
#ifndef G4_TOKENIZER_H
#define G4_TOKENIZER_H

#include "g4.h"
#include "gguf/gguf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* token attributes: llama.cpp's llama_token_attr bits (derived from the file's token types, then
 * adjusted exactly as llama.cpp adjusts them at load: end-of-generation tokens become CONTROL, ...) */
enum {
    TA_UNKNOWN = 1 << 0,
    TA_UNUSED = 1 << 1,
    TA_NORMAL = 1 << 2,
    TA_CONTROL = 1 << 3,
    TA_USER = 1 << 4,
    TA_BYTE = 1 << 5,
};

typedef enum { TOK_SPM = 1, TOK_BPE = 2 } tok_kind;

/* BPE merge table entry: (left id, right id) -> (rank, id of the merged string) */
typedef struct tok_pair {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t res;
} tok_pair;

struct tok_state;

#define TOK_MAX_EOG 16

struct g4_vocab {
    gguf_file *gf;            /* owned when made by g4_vocab_open, else NULL (the model owns the file) */
    tok_kind kind;
    char kind_name[16];       /* "gemma4" or "llama" */
    int32_t n;                /* tokens */
    /* strings: ids 0..n-1 are the tokens; BPE adds n..n_str-1 for merge parts / results that are not
     * tokens (possible in a GGUF, never in Gemma's), so that every merge can be looked up by ids */
    int32_t n_str, cap_str;
    const uint8_t **text;     /* [n_str], not NUL-terminated */
    uint32_t *len;            /* [n_str] */
    float *score;             /* [n] */
    uint8_t *attr;            /* [n] TA_* */
    uint8_t *ftype;           /* [n] token type as stored in the file (G4_TOKEN_*) */
    uint32_t max_len;         /* longest token text in bytes */
    /* string -> id, open addressing; slot = (hash >> 32) << 32 | (id + 1), 0 = empty */
    uint64_t *slots;
    uint64_t slot_mask;
    uint64_t n_slots_used;
    /* BPE merges */
    tok_pair *pairs;
    uint64_t pair_mask;
    uint32_t n_merges;
    /* byte fallback: token for each byte value (-1: dropped) */
    int32_t byte_tok[256];
    /* id of each one-byte string (-1 if it is not a token / string), and of each character's string for
     * U+0080..U+FFFF (-1 likewise) */
    int32_t single[256];
    int32_t *cp_id;
    /* special tokens (CONTROL, USER_DEFINED or UNKNOWN), in llama.cpp's matching order: longer texts
     * first, ties by id; a trie over their texts finds every occurrence at a position */
    int32_t *spec;            /* [n_spec] token ids */
    uint8_t *spec_always;     /* [n_spec] 1: matched even without parse_special (USER_DEFINED only) */
    int n_spec, n_spec_always;
    int32_t trie_root[256];   /* child of the root by byte, -1 */
    int32_t *trie_term;       /* [n_nodes] special index ending here, -1 */
    int16_t *trie_one;        /* [n_nodes] the byte of the only child, -1: no child, -2: several */
    int32_t *trie_one_child;
    uint64_t *trie_edge_key;  /* edge hash: (node << 8 | byte) + 1, 0 = empty */
    int32_t *trie_edge_child;
    uint64_t trie_edge_mask;
    int32_t n_nodes;
    uint8_t spec_first[256];  /* byte can start a special token */
    /* chunking for the word cache: a text may be cut before a U+2581 unless the character before it
     * ends a string that continues with U+2581 inside some token / merge result (see docs) */
    uint8_t unsafe_ascii[128];
    uint64_t *unsafe;         /* sorted keys (len << 32 | bytes) of non-ASCII "unsafe" characters */
    int n_unsafe;
    /* special ids (-1 = none) and flags */
    int32_t bos, eos, eot, eom, unk, pad;
    int add_bos, add_eos, add_space_prefix;
    int32_t eog[TOK_MAX_EOG];
    int n_eog;
    const char *chat_template;
    size_t chat_template_len;
    /* owned string storage ("[EMPTY_i]" names, extra merge strings) */
    uint8_t **blocks;
    int n_blocks, cap_blocks;
    /* reusable scratch + word cache for g4_tokenize (used by one caller at a time) */
    atomic_int busy;
    struct tok_state *st;
};

/* ---- shared helpers (tokenizer.c loads, encode.c tokenizes) ------------------------------------------ */

static inline uint64_t tok_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x243F6A8885A308D3ull ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        h = (h ^ x) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t x = 0;
        memcpy(&x, p, n);
        h = (h ^ x ^ 0xFFull << 56) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}

static inline uint64_t mix64(uint64_t k) { /* splitmix64's finalizer */
    k ^= k >> 30;
    k *= 0xBF58476D1CE4E5B9ull;
    k ^= k >> 27;
    k *= 0x94D049BB133111EBull;
    return k ^ (k >> 31);
}

/* lead byte -> sequence length as llama.cpp's unicode_len_utf8 (no validation) */
static const uint8_t tok_lead_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

/* id of the string s[0..n) (a token, or a BPE extra string), -1 if none */
static inline int32_t str_find_h(const g4_vocab *v, const uint8_t *s, size_t n, uint64_t h) {
    uint64_t tag = h >> 32, i = h & v->slot_mask;
    for (;;) {
        uint64_t e = v->slots[i];
        if (!e) return -1;
        if ((e >> 32) == tag) {
            int32_t id = (int32_t)(uint32_t)e - 1;
            if (v->len[id] == n && memcmp(v->text[id], s, n) == 0) return id;
        }
        i = (i + 1) & v->slot_mask;
    }
}

static inline int32_t str_find(const g4_vocab *v, const uint8_t *s, size_t n) {
    return str_find_h(v, s, n, tok_hash(s, n));
}

/* child of a special-token trie node by byte, -1 if none */
static inline int32_t trie_child(const g4_vocab *v, int32_t node, uint8_t b) {
    if (node == 0) return v->trie_root[b];
    int16_t one = v->trie_one[node]; /* most nodes have one child or none: no hashing */
    if (one >= 0) return one == b ? v->trie_one_child[node] : -1;
    if (one == -1) return -1;
    uint64_t key = ((uint64_t)node << 8 | b) + 1;
    uint64_t i = mix64(key) & v->trie_edge_mask;
    for (;;) {
        uint64_t k = v->trie_edge_key[i];
        if (!k) return -1;
        if (k == key) return v->trie_edge_child[i];
        i = (i + 1) & v->trie_edge_mask;
    }
}

struct tok_state;
/* the scratch state of g4_tokenize (encode.c) */
void tok_state_free(struct tok_state *st);

/* Builds the tokenizer of an opened GGUF file. *out = NULL with G4_OK when the file has no tokenizer
 * (no tokenizer.ggml.model key, or "none" / "no_vocab"). Token texts point into f's mapping: f must
 * outlive the vocabulary. */
g4_status g4_vocab_from_gguf(g4_vocab **out, const gguf_file *f, g4_error *err);

/* id of the token whose text is exactly s[0..n), -1 if none (extra BPE strings are not tokens) */
int32_t tok_find(const g4_vocab *v, const uint8_t *s, size_t n);

/* UTF-8: length of the longest prefix of s[0..n) that is a valid start of a UTF-8 sequence (1..4), and
 * whether that prefix is a complete character (Unicode's "maximal subpart" rules: no overlong forms,
 * no surrogates, nothing above U+10FFFF). Returns 0 for a byte that cannot start a character. */
static inline int tok_utf8_prefix(const uint8_t *s, size_t n, int *complete) {
    uint8_t b = s[0];
    *complete = 0;
    if (b < 0x80) {
        *complete = 1;
        return 1;
    }
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b == 0xE0) need = 2, lo = 0xA0;
    else if (b >= 0xE1 && b <= 0xEC) need = 2;
    else if (b == 0xED) need = 2, hi = 0x9F;
    else if (b >= 0xEE && b <= 0xEF) need = 2;
    else if (b == 0xF0) need = 3, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) need = 3;
    else if (b == 0xF4) need = 3, hi = 0x8F;
    else return 0;
    int k = 1;
    for (; k <= need && (size_t)k < n; k++) {
        uint8_t c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return k;
    }
    if (k == need + 1) *complete = 1;
    return k;
}

#endif
