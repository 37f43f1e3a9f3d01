/* Tokenizer loading: GGUF tokenizer metadata -> the tables of a g4_vocab (string table, merge table,
 * special tokens and their trie, end-of-generation set, ...), exactly as llama.cpp reads them.
 * Tokenizing is in encode.c, detokenizing in detok.c; docs/tokenizer.md describes both.
 */
#include "tokenizer/tokenizer.h"
#include "model/model.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Large lookup tables: zeroed, 2 MiB aligned and backed by huge pages where the kernel allows (the
 * probes are random accesses; huge pages save most of the TLB misses). Free with free(). */
static void *table_alloc(size_t bytes) {
    size_t align = (size_t)2 << 20;
    if (bytes < align) return calloc(1, bytes);
    size_t n = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, n);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    memset(p, 0, n);
    return p;
}

static uint64_t pow2_at_least(uint64_t x) {
    uint64_t p = 16;
    while (p < x) p <<= 1;
    return p;
}

/* ---- owned strings ---------------------------------------------------------------------------------- */

static uint8_t *arena_alloc(g4_vocab *v, size_t n) {
    if (v->n_blocks == v->cap_blocks) {
        int cap = v->cap_blocks ? 2 * v->cap_blocks : 16;
        uint8_t **b = realloc(v->blocks, (size_t)cap * sizeof *b);
        if (!b) return NULL;
        v->blocks = b;
        v->cap_blocks = cap;
    }
    uint8_t *p = malloc(n ? n : 1);
    if (!p) return NULL;
    v->blocks[v->n_blocks++] = p;
    return p;
}

static int grow_bytes(uint8_t **p, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* ---- string table ----------------------------------------------------------------------------------- */

int32_t tok_find(const g4_vocab *v, const uint8_t *s, size_t n) {
    int32_t id = str_find(v, s, n);
    return id < v->n ? id : -1;
}

static void slot_put(g4_vocab *v, uint64_t h, int32_t id) {
    uint64_t i = h & v->slot_mask;
    while (v->slots[i]) i = (i + 1) & v->slot_mask;
    v->slots[i] = (h >> 32) << 32 | (uint64_t)(uint32_t)(id + 1);
    v->n_slots_used++;
}

static int slots_rehash(g4_vocab *v, uint64_t want) {
    uint64_t cap = pow2_at_least(want);
    uint64_t *s = table_alloc(cap * sizeof *s);
    if (!s) return 0;
    free(v->slots);
    v->slots = s;
    v->slot_mask = cap - 1;
    v->n_slots_used = 0;
    for (int32_t id = 0; id < v->n_str; id++) slot_put(v, tok_hash(v->text[id], v->len[id]), id);
    return 1;
}

/* Adds a string that is not yet present (BPE extras); returns its id or -1 when out of memory. */
static int32_t str_add(g4_vocab *v, const uint8_t *s, uint32_t n, uint64_t h) {
    if (v->n_str == v->cap_str) {
        if (v->cap_str > INT32_MAX / 2) return -1;
        int32_t cap = v->cap_str * 2;
        const uint8_t **t = realloc((void *)v->text, (size_t)cap * sizeof *t);
        if (!t) return -1;
        v->text = t;
        uint32_t *l = realloc(v->len, (size_t)cap * sizeof *l);
        if (!l) return -1;
        v->len = l;
        v->cap_str = cap;
    }
    int32_t id = v->n_str++;
    v->text[id] = s;
    v->len[id] = n;
    if ((v->n_slots_used + 1) * 2 > v->slot_mask + 1) {
        if (!slots_rehash(v, (v->slot_mask + 1) * 2)) {
            v->n_str--;
            return -1;
        }
        return id; /* the rehash inserted it */
    }
    slot_put(v, h, id);
    return id;
}

/* ---- loading ---------------------------------------------------------------------------------------- */

static int streq(const uint8_t *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    return n == m && memcmp(s, lit, m) == 0;
}

static int32_t find_lit(const g4_vocab *v, const char *lit) { return tok_find(v, (const uint8_t *)lit, strlen(lit)); }

/* special token id from an optional integer key; out-of-range values keep the default (as llama.cpp) */
static g4_status get_id(const gguf_file *f, const char *key, int32_t n, int32_t *id, g4_error *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return G4_OK;
    if (!gguf_vtype_is_int(kv->type))
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer key '%s' has type %s, expected an integer", key,
                       gguf_vtype_name(kv->type));
    int is_signed = kv->type == GGUF_INT8 || kv->type == GGUF_INT16 || kv->type == GGUF_INT32 || kv->type == GGUF_INT64;
    uint64_t u = gguf_kv_u64(kv);
    if (is_signed && (int64_t)u < 0) return G4_OK;
    if (u < (uint64_t)n) *id = (int32_t)u;
    return G4_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void eog_add(g4_vocab *v, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return;
    if (v->n_eog < TOK_MAX_EOG) v->eog[v->n_eog++] = id;
}

static void eog_remove(g4_vocab *v, int32_t id) {
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) {
            v->eog[i] = v->eog[--v->n_eog];
            return;
        }
}

/* llama.cpp's load-time attribute adjustments and end-of-generation set */
static void set_eog(g4_vocab *v) {
    static const char *eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                      "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                      "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
                                      "<end_of_utterance>"};
    static const char *eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
                                      "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
                                      "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
                                      "<turn|>", "<|tool_response>",
                                      "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
                                      "[e~["};
    if (v->eot < 0) {
        for (size_t k = 0; k < sizeof eot_names / sizeof *eot_names && v->eot < 0; k++) {
            int32_t id = find_lit(v, eot_names[k]);
            if (id >= 0) {
                v->eot = id;
                v->attr[id] |= TA_CONTROL;
            }
        }
    }
    if (v->eom < 0) {
        int32_t id = find_lit(v, "<|eom_id|>");
        if (id >= 0) {
            v->eom = id;
            v->attr[id] |= TA_CONTROL;
        }
    }
    /* control tokens named "unused..." */
    for (int32_t id = 0; id < v->n; id++)
        if ((v->attr[id] & TA_CONTROL) && v->len[id] >= 6 && memmem(v->text[id], v->len[id], "unused", 6))
            v->attr[id] |= TA_UNUSED;
    int32_t s_id = -1;
    for (size_t k = 0; k < sizeof eog_names / sizeof *eog_names; k++) {
        int32_t id = find_lit(v, eog_names[k]);
        if (id < 0) continue;
        eog_add(v, id);
        v->attr[id] |= TA_CONTROL;
        if (!strcmp(eog_names[k], "</s>")) s_id = id;
    }
    eog_add(v, v->eos);
    eog_add(v, v->eot);
    eog_add(v, v->eom);
    /* llama.cpp: with <|tool_response> present (Gemma 4), </s> is an ordinary token */
    if (s_id >= 0 && s_id != v->eos && s_id != v->eot && s_id != v->eom) {
        if (find_lit(v, "<|tool_response>") >= 0) {
            eog_remove(v, s_id);
            v->attr[s_id] = TA_NORMAL;
        } else if (find_lit(v, "<end_of_turn>") >= 0) {
            /* g4: in Gemma 3 files </s> is an HTML tag, not a stop token (llama.cpp's list has it for
             * another model); its attributes stay as llama.cpp sets them */
            eog_remove(v, s_id);
        }
    }
    /* sorted */
    for (int i = 1; i < v->n_eog; i++)
        for (int j = i; j > 0 && v->eog[j - 1] > v->eog[j]; j--) {
            int32_t t = v->eog[j];
            v->eog[j] = v->eog[j - 1];
            v->eog[j - 1] = t;
        }
}

static g4_status build_specials(g4_vocab *v, g4_error *err) {
    int n_spec = 0;
    uint64_t total = 0;
    for (int32_t id = 0; id < v->n; id++)
        if (v->attr[id] & (TA_CONTROL | TA_USER | TA_UNKNOWN)) {
            n_spec++;
            total += v->len[id];
        }
    v->n_spec = n_spec;
    for (int b = 0; b < 256; b++) v->trie_root[b] = -1;
    if (!n_spec) return G4_OK;
    uint64_t *keys = malloc((size_t)n_spec * sizeof *keys);
    v->spec = malloc((size_t)n_spec * sizeof *v->spec);
    v->spec_always = malloc((size_t)n_spec);
    if (total + 1 > (uint64_t)INT32_MAX / 2) {
        free(keys);
        return g4_fail(err, G4_ERR_UNSUPPORTED, "tokenizer: special tokens total %llu bytes", (unsigned long long)total);
    }
    v->trie_term = malloc((size_t)(total + 1) * sizeof *v->trie_term);
    v->trie_one = malloc((size_t)(total + 1) * sizeof *v->trie_one);
    v->trie_one_child = malloc((size_t)(total + 1) * sizeof *v->trie_one_child);
    uint64_t ecap = pow2_at_least(2 * total + 2);
    v->trie_edge_key = calloc(ecap, sizeof *v->trie_edge_key);
    v->trie_edge_child = malloc(ecap * sizeof *v->trie_edge_child);
    if (!keys || !v->spec || !v->spec_always || !v->trie_term || !v->trie_one || !v->trie_one_child ||
        !v->trie_edge_key || !v->trie_edge_child) {
        free(keys);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory building the special-token table");
    }
    v->trie_edge_mask = ecap - 1;
    int k = 0;
    for (int32_t id = 0; id < v->n; id++)
        if (v->attr[id] & (TA_CONTROL | TA_USER | TA_UNKNOWN))
            keys[k++] = (uint64_t)(UINT32_MAX - v->len[id]) << 32 | (uint32_t)id;
    qsort(keys, (size_t)n_spec, sizeof *keys, cmp_u64); /* longer first, then by id */
    v->n_nodes = 1;
    v->trie_term[0] = -1;
    v->trie_one[0] = -2;
    for (int s = 0; s < n_spec; s++) {
        int32_t id = (int32_t)(uint32_t)keys[s];
        v->spec[s] = id;
        v->spec_always[s] = !(v->attr[id] & (TA_CONTROL | TA_UNKNOWN));
        v->n_spec_always += v->spec_always[s];
        const uint8_t *t = v->text[id];
        int32_t node = 0;
        for (uint32_t j = 0; j < v->len[id]; j++) {
            int32_t c = trie_child(v, node, t[j]);
            if (c < 0) {
                c = v->n_nodes++;
                v->trie_term[c] = -1;
                v->trie_one[c] = -1;
                if (node == 0) {
                    v->trie_root[t[j]] = c;
                } else {
                    if (v->trie_one[node] == -1) {
                        v->trie_one[node] = t[j];
                        v->trie_one_child[node] = c;
                    } else {
                        v->trie_one[node] = -2;
                    }
                    uint64_t key = ((uint64_t)node << 8 | t[j]) + 1;
                    uint64_t i = mix64(key) & v->trie_edge_mask;
                    while (v->trie_edge_key[i]) i = (i + 1) & v->trie_edge_mask;
                    v->trie_edge_key[i] = key;
                    v->trie_edge_child[i] = c;
                }
            }
            node = c;
        }
        if (v->trie_term[node] < 0) v->trie_term[node] = s;
        v->spec_first[t[0]] = 1;
    }
    free(keys);
    return G4_OK;
}

/* first slot entry whose tag matches h (a candidate id), or -1: only used to prefetch */
static inline int32_t str_candidate(const g4_vocab *v, uint64_t h) {
    uint64_t tag = h >> 32, i = h & v->slot_mask;
    for (;;) {
        uint64_t e = v->slots[i];
        if (!e) return -1;
        if ((e >> 32) == tag) return (int32_t)(uint32_t)e - 1;
        i = (i + 1) & v->slot_mask;
    }
}

static inline void prefetch_str(const g4_vocab *v, int32_t id) {
    if (id < 0) return;
    __builtin_prefetch(&v->len[id]);
    __builtin_prefetch(&v->text[id]);
}

/* BPE merges: "left right", split at the first space at index >= 1 (as llama.cpp); rank = index.
 * The lookups are random accesses into tables much larger than the caches, so merges are handled in
 * batches, each step prefetching what the next one reads. */
#define MERGE_BATCH 32
typedef struct mrec {
    const uint8_t *a, *b;
    uint32_t la, lb;
    size_t cat;           /* offset of a+b in the batch buffer */
    uint64_t h[3];        /* a, b, a+b */
    int32_t id[3];
    int ok;
} mrec;

static g4_status build_merges(g4_vocab *v, const gguf_kv *mk, g4_error *err) {
    uint64_t nm = mk->arr_n;
    if (nm > (uint64_t)INT32_MAX / 4) return g4_fail(err, G4_ERR_UNSUPPORTED, "tokenizer: %llu merges", (unsigned long long)nm);
    uint64_t cap = pow2_at_least(2 * nm + 2);
    v->pairs = table_alloc(cap * sizeof *v->pairs);
    if (!v->pairs) return g4_fail(err, G4_ERR_NOMEM, "out of memory for %llu merges", (unsigned long long)nm);
    for (uint64_t i = 0; i < cap; i++) v->pairs[i].key = UINT64_MAX;
    v->pair_mask = cap - 1;
    v->n_merges = (uint32_t)nm;
    mrec rec[MERGE_BATCH];
    uint8_t *cat = NULL;
    size_t cat_cap = 0;
    g4_status st = G4_OK;
    for (uint64_t r0 = 0; r0 < nm; r0 += MERGE_BATCH) {
        int cnt = nm - r0 < MERGE_BATCH ? (int)(nm - r0) : MERGE_BATCH;
        size_t need = 0;
        for (int k = 0; k < cnt; k++) {
            mrec *m = &rec[k];
            uint64_t sl;
            const uint8_t *s = (const uint8_t *)gguf_arr_str(mk, r0 + (uint64_t)k, &sl);
            uint64_t pos = 1;
            while (pos < sl && s[pos] != ' ') pos++;
            /* no separator or an empty right part: never matches (llama.cpp keeps ("", "")) */
            m->ok = pos < sl && pos + 1 < sl;
            if (!m->ok) continue;
            m->a = s;
            m->b = s + pos + 1;
            m->la = (uint32_t)pos;
            m->lb = (uint32_t)(sl - pos - 1);
            m->cat = need;
            need += (size_t)m->la + m->lb;
        }
        if (!grow_bytes(&cat, &cat_cap, need)) goto oom;
        for (int k = 0; k < cnt; k++) { /* hashes; prefetch the slots */
            mrec *m = &rec[k];
            if (!m->ok) continue;
            memcpy(cat + m->cat, m->a, m->la);
            memcpy(cat + m->cat + m->la, m->b, m->lb);
            m->h[0] = tok_hash(m->a, m->la);
            m->h[1] = tok_hash(m->b, m->lb);
            m->h[2] = tok_hash(cat + m->cat, (size_t)m->la + m->lb);
            for (int j = 0; j < 3; j++) __builtin_prefetch(&v->slots[m->h[j] & v->slot_mask]);
        }
        for (int k = 0; k < cnt; k++) /* candidates; prefetch their length and text pointer */
            if (rec[k].ok)
                for (int j = 0; j < 3; j++) prefetch_str(v, rec[k].id[j] = str_candidate(v, rec[k].h[j]));
        for (int k = 0; k < cnt; k++) /* prefetch the candidates' text */
            if (rec[k].ok)
                for (int j = 0; j < 3; j++)
                    if (rec[k].id[j] >= 0) __builtin_prefetch(v->text[rec[k].id[j]]);
        for (int k = 0; k < cnt; k++) { /* ids (adding strings that are not tokens); prefetch the pair slot */
            mrec *m = &rec[k];
            if (!m->ok) continue;
            const uint8_t *p[3] = {m->a, m->b, cat + m->cat};
            uint32_t l[3] = {m->la, m->lb, m->la + m->lb};
            for (int j = 0; j < 3; j++) {
                int32_t id = str_find_h(v, p[j], l[j], m->h[j]);
                if (id < 0) {
                    const uint8_t *q = p[j];
                    if (j == 2) { /* a+b is not in the file: keep a copy */
                        uint8_t *copy = arena_alloc(v, l[j]);
                        if (!copy) goto oom;
                        memcpy(copy, p[j], l[j]);
                        q = copy;
                    }
                    if ((id = str_add(v, q, l[j], m->h[j])) < 0) goto oom;
                }
                m->id[j] = id;
            }
            uint64_t key = (uint64_t)(uint32_t)m->id[0] << 32 | (uint32_t)m->id[1];
            m->h[0] = key;
            __builtin_prefetch(&v->pairs[mix64(key) & v->pair_mask]);
        }
        for (int k = 0; k < cnt; k++) {
            mrec *m = &rec[k];
            if (!m->ok) continue;
            uint64_t key = m->h[0];
            uint64_t i = mix64(key) & v->pair_mask;
            while (v->pairs[i].key != UINT64_MAX && v->pairs[i].key != key) i = (i + 1) & v->pair_mask;
            if (v->pairs[i].key == UINT64_MAX) { /* the first rank of a repeated pair wins */
                v->pairs[i].key = key;
                v->pairs[i].rank = (uint32_t)(r0 + (uint64_t)k);
                v->pairs[i].res = m->id[2];
            }
        }
    }
    goto done;
oom:
    st = g4_fail(err, G4_ERR_NOMEM, "out of memory reading the merges");
done:
    free(cat);
    return st;
}

/* Characters c such that c followed by U+2581 occurs inside a token or a merge result: a text may not
 * be cut between them (every other "x|U+2581" boundary is a safe cut, see docs/tokenizer.md). */
static g4_status build_unsafe(g4_vocab *v, g4_error *err) {
    size_t cap = 64, n = 0;
    uint64_t *keys = malloc(cap * sizeof *keys);
    if (!keys) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    for (int32_t id = 0; id < v->n_str; id++) {
        const uint8_t *t = v->text[id];
        uint32_t L = v->len[id];
        for (uint32_t k = 1; k + 3 <= L; k++) {
            if (t[k] != 0xE2 || t[k + 1] != 0x96 || t[k + 2] != 0x81) continue;
            for (uint32_t j = 1; j <= 4 && j <= k; j++) {
                if (j == 1 && t[k - 1] < 0x80) {
                    v->unsafe_ascii[t[k - 1]] = 1;
                    continue;
                }
                uint64_t key = (uint64_t)j << 32;
                for (uint32_t q = 0; q < j; q++) key |= (uint64_t)t[k - j + q] << (8 * q);
                if (n == cap) {
                    uint64_t *nk = realloc(keys, 2 * cap * sizeof *keys);
                    if (!nk) {
                        free(keys);
                        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
                    }
                    keys = nk;
                    cap *= 2;
                }
                keys[n++] = key;
            }
        }
    }
    qsort(keys, n, sizeof *keys, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || keys[m - 1] != keys[i]) keys[m++] = keys[i];
    v->unsafe = keys;
    v->n_unsafe = (int)m;
    return G4_OK;
}

static g4_status vocab_load(g4_vocab *v, const gguf_file *f, g4_error *err) {
    g4_status s;
    const char *model;
    uint64_t mlen;
    if ((s = gguf_get_str(f, "tokenizer.ggml.model", 1, &model, &mlen, err))) return s;
    const char *pre = NULL;
    uint64_t plen = 0;
    if ((s = gguf_get_str(f, "tokenizer.ggml.pre", 0, &pre, &plen, err))) return s;
    if (streq((const uint8_t *)model, mlen, "llama")) {
        v->kind = TOK_SPM;
    } else if (streq((const uint8_t *)model, mlen, "gemma4") ||
               (streq((const uint8_t *)model, mlen, "gpt2") && pre && streq((const uint8_t *)pre, plen, "gemma4"))) {
        v->kind = TOK_BPE;
    } else {
        return g4_fail(err, G4_ERR_UNSUPPORTED,
                       "tokenizer.ggml.model '%.*s' is not supported (g4 reads \"gemma4\" and \"llama\")",
                       (int)(mlen > 40 ? 40 : mlen), model);
    }
    snprintf(v->kind_name, sizeof v->kind_name, "%s", v->kind == TOK_SPM ? "llama" : "gemma4");

    const gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!tk) return g4_fail(err, G4_ERR_FORMAT, "tokenizer: missing key 'tokenizer.ggml.tokens'");
    if (tk->type != GGUF_ARRAY || tk->arr_type != GGUF_STRING)
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.tokens' is not an array of strings");
    if (tk->arr_n == 0 || tk->arr_n > (uint64_t)INT32_MAX / 4)
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.tokens' has %llu entries",
                       (unsigned long long)tk->arr_n);
    int32_t n = (int32_t)tk->arr_n;
    const gguf_kv *sk = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (sk && (sk->type != GGUF_ARRAY || (sk->arr_type != GGUF_FLOAT32 && sk->arr_type != GGUF_INT32)))
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.scores' is not an f32 or i32 array");
    if (sk && sk->arr_n < (uint64_t)n)
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.scores' has %llu entries for %d tokens",
                       (unsigned long long)sk->arr_n, n);
    const gguf_kv *yk = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (yk && (yk->type != GGUF_ARRAY || yk->arr_type != GGUF_INT32))
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.token_type' is not an i32 array");
    if (yk && yk->arr_n < (uint64_t)n)
        return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.token_type' has %llu entries for %d tokens",
                       (unsigned long long)yk->arr_n, n);
    const gguf_kv *mk = NULL;
    if (v->kind == TOK_BPE) {
        mk = gguf_find_kv(f, "tokenizer.ggml.merges");
        if (!mk) return g4_fail(err, G4_ERR_FORMAT, "tokenizer: a '%s' tokenizer needs 'tokenizer.ggml.merges'", v->kind_name);
        if (mk->type != GGUF_ARRAY || mk->arr_type != GGUF_STRING)
            return g4_fail(err, G4_ERR_FORMAT, "tokenizer: 'tokenizer.ggml.merges' is not an array of strings");
    }

    v->n = n;
    v->n_str = n;
    v->cap_str = n + 16;
    v->text = malloc((size_t)v->cap_str * sizeof *v->text);
    v->len = malloc((size_t)v->cap_str * sizeof *v->len);
    v->score = malloc((size_t)n * sizeof *v->score);
    v->attr = malloc((size_t)n);
    v->ftype = malloc((size_t)n);
    if (!v->text || !v->len || !v->score || !v->attr || !v->ftype)
        return g4_fail(err, G4_ERR_NOMEM, "out of memory for %d tokens", n);
    uint64_t cap = pow2_at_least(2 * (uint64_t)n + 32);
    v->slots = table_alloc(cap * sizeof *v->slots);
    if (!v->slots) return g4_fail(err, G4_ERR_NOMEM, "out of memory for %d tokens", n);
    v->slot_mask = cap - 1;

    uint64_t *hs = malloc((size_t)n * sizeof *hs);
    if (!hs) return g4_fail(err, G4_ERR_NOMEM, "out of memory for %d tokens", n);
    for (int32_t id = 0; id < n; id++) {
        uint64_t l;
        const uint8_t *t = (const uint8_t *)gguf_arr_str(tk, (uint64_t)id, &l);
        if (l == 0) { /* as llama.cpp */
            char name[32];
            int m = snprintf(name, sizeof name, "[EMPTY_%d]", id);
            uint8_t *p = arena_alloc(v, (size_t)m);
            if (!p) {
                free(hs);
                return g4_fail(err, G4_ERR_NOMEM, "out of memory");
            }
            memcpy(p, name, (size_t)m);
            t = p;
            l = (uint64_t)m;
        }
        if (l > UINT32_MAX / 4) {
            free(hs);
            return g4_fail(err, G4_ERR_FORMAT, "tokenizer: token %d is %llu bytes long", id, (unsigned long long)l);
        }
        v->text[id] = t;
        v->len[id] = (uint32_t)l;
        if (l > v->max_len) v->max_len = (uint32_t)l;
        hs[id] = tok_hash(t, (size_t)l);
        float sc = 0.0f;
        if (sk) {
            if (sk->arr_type == GGUF_FLOAT32) memcpy(&sc, sk->data + 4 * (uint64_t)id, 4);
            else {
                int32_t iv;
                memcpy(&iv, sk->data + 4 * (uint64_t)id, 4);
                sc = (float)iv;
            }
        }
        v->score[id] = sc;
        int32_t ty = G4_TOKEN_NORMAL;
        if (yk) memcpy(&ty, yk->data + 4 * (uint64_t)id, 4);
        v->ftype[id] = (uint8_t)(ty >= 0 && ty <= 6 ? ty : 0);
        switch (ty) {
        case G4_TOKEN_UNKNOWN: v->attr[id] = TA_UNKNOWN; break;
        case G4_TOKEN_UNUSED: v->attr[id] = TA_UNUSED; break;
        case G4_TOKEN_NORMAL: v->attr[id] = TA_NORMAL; break;
        case G4_TOKEN_CONTROL: v->attr[id] = TA_CONTROL; break;
        case G4_TOKEN_USER_DEFINED: v->attr[id] = TA_USER; break;
        case G4_TOKEN_BYTE: v->attr[id] = TA_BYTE; break;
        default: v->attr[id] = 0; break;
        }
    }
    /* the string table (random accesses: prefetch a few tokens ahead) */
    for (int32_t id = 0; id < n; id++) {
        if (id + 16 < n) __builtin_prefetch(&v->slots[hs[id + 16] & v->slot_mask]);
        int32_t old = str_find_h(v, v->text[id], v->len[id], hs[id]);
        if (old >= 0) {
            free(hs);
            return g4_fail(err, G4_ERR_FORMAT, "tokenizer: duplicate token '%.*s' (ids %d and %d)",
                           (int)(v->len[id] > 60 ? 60 : v->len[id]), (const char *)v->text[id], old, id);
        }
        slot_put(v, hs[id], id);
    }
    free(hs);

    /* special ids and flags: defaults of the tokenizer kind, then the file's keys */
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = -1;
    if (v->kind == TOK_SPM) {
        v->bos = 1 < n ? 1 : -1;
        v->eos = 2 < n ? 2 : -1;
        v->unk = 0;
        v->add_space_prefix = 1;
        v->add_bos = 1;
    }
    if ((s = get_id(f, "tokenizer.ggml.bos_token_id", n, &v->bos, err)) ||
        (s = get_id(f, "tokenizer.ggml.eos_token_id", n, &v->eos, err)) ||
        (s = get_id(f, "tokenizer.ggml.eot_token_id", n, &v->eot, err)) ||
        (s = get_id(f, "tokenizer.ggml.eom_token_id", n, &v->eom, err)) ||
        (s = get_id(f, "tokenizer.ggml.unknown_token_id", n, &v->unk, err)) ||
        (s = get_id(f, "tokenizer.ggml.padding_token_id", n, &v->pad, err)))
        return s;
    if ((s = gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", 0, &v->add_space_prefix, err)) ||
        (s = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", 0, &v->add_bos, err)) ||
        (s = gguf_get_bool(f, "tokenizer.ggml.add_eos_token", 0, &v->add_eos, err)))
        return s;
    if (v->kind == TOK_BPE) {
        v->add_space_prefix = 0;
        v->add_bos = 1; /* llama.cpp forces it for Gemma 4 */
    }
    const char *tmpl;
    uint64_t tlen;
    if ((s = gguf_get_str(f, "tokenizer.chat_template", 0, &tmpl, &tlen, err))) return s;
    if (gguf_find_kv(f, "tokenizer.chat_template")) {
        v->chat_template = tmpl;
        v->chat_template_len = (size_t)tlen;
    }

    set_eog(v);
    if (mk && (s = build_merges(v, mk, err))) return s;
    if ((s = build_specials(v, err))) return s;
    if ((s = build_unsafe(v, err))) return s;

    /* ids of the strings of the characters U+0080..U+FFFF (surrogates: never looked up) */
    v->cp_id = malloc(0x10000 * sizeof *v->cp_id);
    if (!v->cp_id) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        uint8_t u[3];
        size_t k;
        if (cp < 0x80 || (cp >= 0xD800 && cp < 0xE000)) {
            v->cp_id[cp] = -1;
            continue;
        }
        if (cp < 0x800) {
            u[0] = (uint8_t)(0xC0 | cp >> 6);
            u[1] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 2;
        } else {
            u[0] = (uint8_t)(0xE0 | cp >> 12);
            u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 3;
        }
        v->cp_id[cp] = str_find(v, u, k);
    }
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b;
        v->single[b] = str_find(v, &one, 1);
        uint8_t name[6] = {'<', '0', 'x', (uint8_t)hex[b >> 4], (uint8_t)hex[b & 15], '>'};
        int32_t t = tok_find(v, name, 6);
        if (t < 0 && v->kind == TOK_SPM) { /* llama.cpp: then the one-byte token (g4: then <unk>) */
            t = tok_find(v, &one, 1);
            if (t < 0) t = v->unk;
        }
        v->byte_tok[b] = t;
    }
    return G4_OK;
}

void g4_vocab_free(g4_vocab *v) {
    if (!v) return;
    tok_state_free(v->st);
    free((void *)v->text);
    free(v->len);
    free(v->score);
    free(v->attr);
    free(v->ftype);
    free(v->slots);
    free(v->pairs);
    free(v->spec);
    free(v->spec_always);
    free(v->trie_term);
    free(v->trie_one);
    free(v->trie_one_child);
    free(v->trie_edge_key);
    free(v->trie_edge_child);
    free(v->unsafe);
    free(v->cp_id);
    for (int i = 0; i < v->n_blocks; i++) free(v->blocks[i]);
    free(v->blocks);
    if (v->gf) gguf_close(v->gf);
    free(v);
}

g4_status g4_vocab_from_gguf(g4_vocab **out, const gguf_file *f, g4_error *err) {
    *out = NULL;
    const gguf_kv *mk = gguf_find_kv(f, "tokenizer.ggml.model");
    if (!mk) return G4_OK;
    if (mk->type == GGUF_STRING) {
        const char *m;
        uint64_t ml;
        gguf_get_str(f, "tokenizer.ggml.model", 1, &m, &ml, NULL);
        if (streq((const uint8_t *)m, ml, "none") || streq((const uint8_t *)m, ml, "no_vocab")) return G4_OK;
    }
    g4_vocab *v = calloc(1, sizeof *v);
    if (!v) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    atomic_init(&v->busy, 0);
    g4_status s = vocab_load(v, f, err);
    if (s) {
        g4_vocab_free(v);
        return s;
    }
    *out = v;
    return G4_OK;
}

g4_status g4_vocab_open(g4_vocab **out, const char *path, g4_error *err) {
    *out = NULL;
    if (!path) return g4_fail(err, G4_ERR_ARG, "no path");
    gguf_file *f;
    g4_status s = gguf_open(&f, path, err);
    if (s) return s;
    g4_vocab *v;
    s = g4_vocab_from_gguf(&v, f, err);
    if (s == G4_OK && !v) s = g4_fail(err, G4_ERR_FORMAT, "%s has no tokenizer (no 'tokenizer.ggml.model' key)", path);
    if (s) {
        gguf_close(f);
        return s;
    }
    v->gf = f;
    *out = v;
    return G4_OK;
}

const g4_vocab *g4_model_vocab(const g4_model *m) { return m ? m->vocab : NULL; }

/* ---- accessors -------------------------------------------------------------------------------------- */

const char *g4_vocab_kind(const g4_vocab *v) { return v->kind_name; }
int g4_vocab_n_tokens(const g4_vocab *v) { return v->n; }
int32_t g4_vocab_bos(const g4_vocab *v) { return v->bos; }
int32_t g4_vocab_eos(const g4_vocab *v) { return v->eos; }
int32_t g4_vocab_eot(const g4_vocab *v) { return v->eot; }
int g4_vocab_n_eog(const g4_vocab *v) { return v->n_eog; }
int32_t g4_vocab_eog(const g4_vocab *v, int i) { return i >= 0 && i < v->n_eog ? v->eog[i] : -1; }

int g4_vocab_is_eog(const g4_vocab *v, int32_t id) {
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return 1;
    return 0;
}

int g4_vocab_is_control(const g4_vocab *v, int32_t id) {
    return id >= 0 && id < v->n && (v->attr[id] & (TA_CONTROL | TA_UNKNOWN)) != 0;
}

int g4_vocab_token_type(const g4_vocab *v, int32_t id) { return id >= 0 && id < v->n ? v->ftype[id] : -1; }

const char *g4_vocab_token_text(const g4_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = v->len[id];
    return (const char *)v->text[id];
}

int32_t g4_vocab_find(const g4_vocab *v, const char *text, size_t len) {
    if (!text && len) return -1;
    return tok_find(v, (const uint8_t *)text, len);
}

const char *g4_vocab_chat_template(const g4_vocab *v, size_t *len) {
    if (len) *len = v->chat_template ? v->chat_template_len : 0;
    return v->chat_template;
}
