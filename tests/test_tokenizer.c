/* Tokenizer unit tests on small vocabularies written with the GGUF writer:
 *   - gemma4 (BPE) rules: merges by rank, ties to the leftmost pair, byte fallback, newline runs,
 *     spaces as U+2581, no dummy prefix, BOS;
 *   - special tokens: parsed only with parse_special, user-defined ones always, longest first in
 *     llama.cpp's order (not left-to-right), end-of-generation tokens made control as llama.cpp does;
 *   - llama (SentencePiece) rules: merges by score, user-defined space runs matched before escaping,
 *     byte fallback, the dummy prefix when the file asks for it;
 *   - invalid UTF-8 never fails and becomes byte tokens;
 *   - randomized: g4_tokenize against a slow reference written here straight from llama.cpp's
 *     algorithm (partition, escape, merge loop), for both kinds, with and without parse_special;
 *   - the streaming detokenizer: split UTF-8, invalid bytes, control tokens, U+2581, flush;
 *   - the model loader: a model with a tokenizer has one, a model without tokenizer keys loads with none.
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "synth/synth.h"
#include "t.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

enum { N = G4_TOKEN_NORMAL, U = G4_TOKEN_UNKNOWN, C = G4_TOKEN_CONTROL, D = G4_TOKEN_USER_DEFINED, B = G4_TOKEN_BYTE };

typedef struct tv {
    const char *text;
    int type;
    float score;
} tv;

#define SP "\xe2\x96\x81"

/* ---- vocabularies ----------------------------------------------------------------------------------- */

/* gemma4 layout: specials, byte tokens 16..271, then pieces */
static tv g4toks[512];
static int n_g4;
static const char *g4merges[] = {
    "b c",      /* 0 */
    "a b",      /* 1 */
    "a bc",     /* 2 */
    "c d",      /* 3 */
    "bc d",     /* 4 */
    "a a",      /* 5 */
    SP " a",    /* 6 */
    "\n \n",    /* 7 */
    "x y",      /* 8 */
    SP " " SP,  /* 9 */
    "> " SP,    /* 10: ">▁" exists inside a token: no chunk cut between > and ▁ */
    ">" SP " x",/* 11 */
    SP " x",    /* 12 */
    "aa a",     /* 13 */
    "d d",      /* 14 */
    "é é",      /* 15: results not in the vocabulary are fine (then byte fallback) */
};
static const int n_g4merges = (int)(sizeof g4merges / sizeof *g4merges);

static char bytenames[256][8];

static void add(tv *t, int *n, const char *text, int type, float score) {
    t[*n].text = text;
    t[*n].type = type;
    t[*n].score = score;
    (*n)++;
}

static void make_g4_tokens(void) {
    n_g4 = 0;
    add(g4toks, &n_g4, "<pad>", C, 0);            /* 0 */
    add(g4toks, &n_g4, "<eos>", C, 0);            /* 1 */
    add(g4toks, &n_g4, "<bos>", C, 0);            /* 2 */
    add(g4toks, &n_g4, "<unk>", U, 0);            /* 3 */
    add(g4toks, &n_g4, "<|turn>", C, 0);          /* 4 */
    add(g4toks, &n_g4, "<turn|>", C, 0);          /* 5 */
    add(g4toks, &n_g4, "<|tool_response>", D, 0); /* 6: user-defined in the file, made control (EOG) */
    add(g4toks, &n_g4, "<|channel>", D, 0);       /* 7 */
    add(g4toks, &n_g4, "<ab>", C, 0);             /* 8 */
    add(g4toks, &n_g4, "<abc>", C, 0);            /* 9 */
    add(g4toks, &n_g4, "PQ", D, 0);               /* 10 */
    add(g4toks, &n_g4, "QRS", D, 0);              /* 11 */
    add(g4toks, &n_g4, "<unused0>", N, 0);        /* 12 */
    add(g4toks, &n_g4, "</s>", N, 0);             /* 13 */
    add(g4toks, &n_g4, "[m]", N, 0);              /* 14 */
    add(g4toks, &n_g4, "<mask>", C, 0);           /* 15 */
    for (int b = 0; b < 256; b++) {
        snprintf(bytenames[b], sizeof bytenames[b], "<0x%02X>", b);
        add(g4toks, &n_g4, bytenames[b], B, 0); /* 16 + b */
    }
    static const char *pieces[] = {"a", "b", "c", "d", "ab", "bc", "abc", SP, SP "a", "\n", "\n\n", "é", "x", "y",
                                   "xy", "cd", "bcd", "aa", "aaa", SP SP, ">", ">" SP, ">" SP "x", SP "x", "dd",
                                   "<", "|", "P", "Q", "R", "S", "日"};
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) add(g4toks, &n_g4, pieces[i], N, -(float)n_g4);
}

static int32_t g4id(const char *text) {
    for (int i = 0; i < n_g4; i++)
        if (!strcmp(g4toks[i].text, text)) return i;
    return -1;
}

/* llama (SentencePiece) layout, Gemma 3 style: user-defined space / newline runs with real spaces */
static tv sptoks[512];
static int n_sp;

static void make_sp_tokens(void) {
    n_sp = 0;
    add(sptoks, &n_sp, "<pad>", C, -1000);         /* 0 */
    add(sptoks, &n_sp, "<eos>", C, -1000);         /* 1 */
    add(sptoks, &n_sp, "<bos>", C, -1000);         /* 2 */
    add(sptoks, &n_sp, "<unk>", C, -1000);         /* 3 */
    add(sptoks, &n_sp, "<start_of_turn>", C, -1000); /* 4 */
    add(sptoks, &n_sp, "<end_of_turn>", C, -1000); /* 5: EOT by name */
    add(sptoks, &n_sp, "  ", D, -1000);            /* 6 */
    add(sptoks, &n_sp, "   ", D, -1000);           /* 7 */
    add(sptoks, &n_sp, "\n\n", D, -1000);          /* 8 */
    add(sptoks, &n_sp, "<b>", D, -1000);           /* 9 */
    add(sptoks, &n_sp, "</s>", D, -1000);          /* 10: made control (an EOG name in llama.cpp) */
    for (int b = 0; b < 256; b++) add(sptoks, &n_sp, bytenames[b], B, 0); /* 11 + b */
    /* pieces with scores: higher wins; "bc" beats "ab", ties go left */
    add(sptoks, &n_sp, "a", N, -1);
    add(sptoks, &n_sp, "b", N, -1);
    add(sptoks, &n_sp, "c", N, -1);
    add(sptoks, &n_sp, "d", N, -1);
    add(sptoks, &n_sp, SP, N, -1);
    add(sptoks, &n_sp, "\n", N, -1);
    add(sptoks, &n_sp, "bc", N, -2);
    add(sptoks, &n_sp, "ab", N, -3);
    add(sptoks, &n_sp, "abc", N, -4);
    add(sptoks, &n_sp, SP "a", N, -2.5f);
    add(sptoks, &n_sp, "cd", N, -3); /* same score as "ab": the leftmost pair goes first */
    add(sptoks, &n_sp, "aa", N, -5);
    add(sptoks, &n_sp, SP SP, N, -6);
    add(sptoks, &n_sp, "é", N, -1);
    add(sptoks, &n_sp, "<", N, -1);
    add(sptoks, &n_sp, ">", N, -1);
    add(sptoks, &n_sp, "<b", N, -7);
    add(sptoks, &n_sp, ">" SP, N, -7);
}

static int32_t spid(const char *text) {
    for (int i = 0; i < n_sp; i++)
        if (!strcmp(sptoks[i].text, text)) return i;
    return -1;
}

static int write_vocab(const char *path, const char *model, const tv *t, int n, const char *const *merges, int nm,
                       int bos, int eos, int add_space_prefix) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return 0;
    const char **texts = malloc((size_t)n * sizeof *texts);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    for (int i = 0; i < n; i++) {
        texts[i] = t[i].text;
        scores[i] = t[i].score;
        types[i] = t[i].type;
    }
    gguf_w_str(w, "general.architecture", "llama");
    gguf_w_str(w, "tokenizer.ggml.model", model);
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", texts, (uint64_t)n);
    gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, scores, (uint64_t)n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, (uint64_t)n);
    if (merges) gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)nm);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", add_space_prefix);
    gguf_w_str(w, "tokenizer.chat_template", "{{ messages }}");
    g4_error err;
    g4_status s = gguf_writer_write(w, path, NULL, NULL, NULL, &err);
    if (s) fprintf(stderr, "write_vocab: %s\n", err.msg);
    gguf_writer_free(w);
    free(texts);
    free(scores);
    free(types);
    return s == G4_OK;
}

/* ---- helpers ---------------------------------------------------------------------------------------- */

static size_t tok(const g4_vocab *v, const char *s, size_t n, int bos, int special, int32_t *ids, size_t cap) {
    size_t k = 0;
    g4_error err;
    g4_status st = g4_tokenize(v, s, n, bos, special, ids, cap, &k, &err);
    if (st) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        return (size_t)-1;
    }
    return k;
}

/* ids of a NUL-terminated text as "1 2 3" */
static const char *ids_str(const g4_vocab *v, const char *s, int bos, int special) {
    static char out[4096];
    int32_t ids[512];
    size_t n = tok(v, s, strlen(s), bos, special, ids, 512);
    out[0] = 0;
    if (n == (size_t)-1) return "error";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 16 < sizeof out; i++) k += (size_t)snprintf(out + k, sizeof out - k, i ? " %d" : "%d", ids[i]);
    return out;
}

static const char *join(const int32_t *ids, int n) {
    static char out[4096];
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(out + k, sizeof out - k, i ? " %d" : "%d", ids[i]);
    return out;
}

#define EXPECT_IDS(v, text, bos, special, ...)                                                         \
    do {                                                                                                \
        const int32_t want_[] = {__VA_ARGS__};                                                          \
        char w_[4096];                                                                                  \
        snprintf(w_, sizeof w_, "%s", join(want_, (int)(sizeof want_ / sizeof *want_)));                \
        const char *g_ = ids_str(v, text, bos, special);                                                \
        CHECK(!strcmp(g_, w_), "'%s': got [%s], want [%s]", text, g_, w_);                              \
    } while (0)

static int has_id(const g4_vocab *v, const char *s, int special, int32_t id) {
    int32_t ids[512];
    size_t n = tok(v, s, strlen(s), 0, special, ids, 512);
    for (size_t i = 0; i < n && n != (size_t)-1; i++)
        if (ids[i] == id) return 1;
    return 0;
}

/* ---- reference tokenizer (slow, literal) ---------------------------------------------------------- */

typedef struct ref {
    const g4_vocab *v;
    int bpe;
    const tv *t;
    int n;
    const char *const *merges;
    int nm;
} ref;

static int ref_find(const ref *r, const uint8_t *s, size_t n) {
    for (int i = 0; i < r->n; i++)
        if (strlen(r->t[i].text) == n && !memcmp(r->t[i].text, s, n)) return i;
    return -1;
}

static int ref_rank(const ref *r, const uint8_t *a, size_t la, const uint8_t *b, size_t lb) {
    for (int i = 0; i < r->nm; i++) {
        const char *m = r->merges[i];
        size_t ml = strlen(m);
        if (ml == la + 1 + lb && !memcmp(m, a, la) && m[la] == ' ' && !memcmp(m + la + 1, b, lb)) return i;
    }
    return -1;
}

/* llama.cpp's merge loop on one word, written the slow and obvious way */
static void ref_word(const ref *r, const uint8_t *s, size_t n, int32_t *out, size_t *k) {
    size_t st[1024], ln[1024];
    int ns = 0;
    for (size_t i = 0; i < n;) {
        size_t L;
        if (r->bpe) {
            int comp;
            int m = tok_utf8_prefix(s + i, n - i, &comp);
            L = comp ? (size_t)m : 1;
        } else {
            static const uint8_t lt[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
            L = lt[s[i] >> 4];
            if (L > n - i) L = n - i;
        }
        st[ns] = i;
        ln[ns] = L;
        ns++;
        i += L;
    }
    for (;;) {
        int best = -1;
        double bp = 0;
        for (int i = 0; i + 1 < ns; i++) {
            double p;
            if (r->bpe) {
                int rk = ref_rank(r, s + st[i], ln[i], s + st[i + 1], ln[i + 1]);
                if (rk < 0) continue;
                p = rk;
            } else {
                int id = ref_find(r, s + st[i], ln[i] + ln[i + 1]);
                if (id < 0) continue;
                p = -r->t[id].score;
            }
            if (best < 0 || p < bp) {
                best = i;
                bp = p;
            }
        }
        if (best < 0) break;
        ln[best] += ln[best + 1];
        memmove(st + best + 1, st + best + 2, (size_t)(ns - best - 2) * sizeof *st);
        memmove(ln + best + 1, ln + best + 2, (size_t)(ns - best - 2) * sizeof *ln);
        ns--;
    }
    for (int i = 0; i < ns; i++) {
        int id = ref_find(r, s + st[i], ln[i]);
        if (id >= 0) {
            out[(*k)++] = id;
            continue;
        }
        for (size_t j = 0; j < ln[i]; j++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", s[st[i] + j]);
            int b = ref_find(r, (const uint8_t *)name, 6);
            if (b >= 0) out[(*k)++] = b;
        }
    }
}

static void ref_raw(const ref *r, const uint8_t *p, size_t n, int prefix, int32_t *out, size_t *k) {
    uint8_t e[4096];
    size_t en = 0;
    if (prefix) memcpy(e + en, SP, 3), en += 3;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') memcpy(e + en, SP, 3), en += 3;
        else e[en++] = p[i];
    }
    if (!r->bpe) {
        ref_word(r, e, en, out, k);
        return;
    }
    for (size_t i = 0; i < en;) {
        size_t j = i;
        int nl = e[i] == '\n';
        while (j < en && (e[j] == '\n') == nl) j++;
        int id = nl ? ref_find(r, e + i, j - i) : -1;
        if (id >= 0) out[(*k)++] = id;
        else ref_word(r, e + i, j - i, out, k);
        i = j;
    }
}

/* partition as llama.cpp: for each special token, longest first (ties by id), split every raw
 * fragment at its leftmost occurrences */
static size_t ref_tokenize(const ref *r, const uint8_t *s, size_t n, int special, int32_t *out) {
    typedef struct frag {
        int tokid; /* -1: raw */
        size_t off, len;
    } frag;
    frag fr[2048], nf[2048];
    int nfr = 0;
    if (n) fr[nfr++] = (frag){-1, 0, n};
    int order[512], no = 0;
    for (int i = 0; i < r->n; i++) {
        int ty = g4_vocab_token_type(r->v, i);
        int ctl = g4_vocab_is_control(r->v, i);
        if (ctl || ty == G4_TOKEN_USER_DEFINED) order[no++] = i;
    }
    for (int a = 1; a < no; a++) /* length desc, then id */
        for (int b = a; b > 0; b--) {
            size_t l0 = strlen(r->t[order[b - 1]].text), l1 = strlen(r->t[order[b]].text);
            if (l0 > l1 || (l0 == l1 && order[b - 1] < order[b])) break;
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    for (int oi = 0; oi < no; oi++) {
        int id = order[oi];
        if (!special && g4_vocab_is_control(r->v, id)) continue;
        const char *tx = r->t[id].text;
        size_t tl = strlen(tx);
        int m = 0;
        for (int f = 0; f < nfr; f++) {
            if (fr[f].tokid >= 0) {
                nf[m++] = fr[f];
                continue;
            }
            size_t o = fr[f].off, e = fr[f].off + fr[f].len;
            for (;;) {
                const uint8_t *hit = memmem(s + o, e - o, tx, tl);
                if (!hit) break;
                size_t p = (size_t)(hit - s);
                if (p > o) nf[m++] = (frag){-1, o, p - o};
                nf[m++] = (frag){id, p, tl};
                o = p + tl;
            }
            if (o < e) nf[m++] = (frag){-1, o, e - o};
        }
        memcpy(fr, nf, (size_t)m * sizeof *fr);
        nfr = m;
    }
    size_t k = 0;
    int prev_special = 1;
    for (int f = 0; f < nfr; f++) {
        if (fr[f].tokid >= 0) {
            out[k++] = fr[f].tokid;
            prev_special = 1;
        } else {
            int sp_prefix = 0;
            if (!r->bpe) {
                size_t n1;
                const char *t1 = g4_vocab_token_text(r->v, 0, &n1);
                (void)t1;
                sp_prefix = prev_special && r->v->add_space_prefix;
            }
            ref_raw(r, s + fr[f].off, fr[f].len, sp_prefix, out, &k);
            prev_special = 0;
        }
    }
    return k;
}

/* ---- tests ------------------------------------------------------------------------------------------ */

static void test_gemma4_rules(const g4_vocab *v) {
    CHECK(!strcmp(g4_vocab_kind(v), "gemma4"), "kind %s", g4_vocab_kind(v));
    CHECK(g4_vocab_n_tokens(v) == n_g4, "n %d", g4_vocab_n_tokens(v));
    CHECK(g4_vocab_bos(v) == 2 && g4_vocab_eos(v) == 1, "bos/eos");
    /* merges by rank: b+c (rank 0) before a+b (rank 1), then a+bc (2) */
    EXPECT_IDS(v, "abc", 0, 0, g4id("abc"));
    EXPECT_IDS(v, "abcd", 0, 0, g4id("abc"), g4id("d"));
    EXPECT_IDS(v, "ab", 0, 0, g4id("ab"));
    /* ties: the leftmost pair first */
    EXPECT_IDS(v, "aaa", 0, 0, g4id("aaa"));
    EXPECT_IDS(v, "aaaa", 0, 0, g4id("aa"), g4id("aa")); /* a+a (rank 5) at 2..3 goes before aa+a (13) */
    EXPECT_IDS(v, "ddd", 0, 0, g4id("dd"), g4id("d"));
    /* spaces: U+2581, no dummy prefix */
    EXPECT_IDS(v, "a a", 0, 0, g4id("a"), g4id(SP "a"));
    EXPECT_IDS(v, " a", 0, 0, g4id(SP "a"));
    EXPECT_IDS(v, "  x", 0, 0, g4id(SP SP), g4id("x"));
    EXPECT_IDS(v, ">  x", 0, 0, g4id(">"), g4id(SP SP), g4id("x"));
    EXPECT_IDS(v, "> x", 0, 0, g4id(">" SP "x")); /* > and U+2581 are not cut apart (">▁x" is a token) */
    /* byte fallback, also for a merge result that is not a token */
    EXPECT_IDS(v, "z", 0, 0, 16 + 'z');
    EXPECT_IDS(v, "日", 0, 0, g4id("日"));
    EXPECT_IDS(v, "語", 0, 0, 16 + 0xE8, 16 + 0xAA, 16 + 0x9E);
    EXPECT_IDS(v, "éé", 0, 0, 16 + 0xC3, 16 + 0xA9, 16 + 0xC3, 16 + 0xA9);
    /* newline runs: whole when a token, else merged; never merged with the text around */
    EXPECT_IDS(v, "\n\n", 0, 0, g4id("\n\n"));
    EXPECT_IDS(v, "\n\n\n", 0, 0, g4id("\n\n"), g4id("\n"));
    EXPECT_IDS(v, "a\nb", 0, 0, g4id("a"), g4id("\n"), g4id("b"));
    /* BOS */
    EXPECT_IDS(v, "ab", 1, 0, 2, g4id("ab"));
    EXPECT_IDS(v, "", 1, 0, 2);
    CHECK(!strcmp(ids_str(v, "", 0, 0), ""), "empty");
    /* invalid UTF-8: byte tokens, the rest unharmed */
    EXPECT_IDS(v, "a\xff" "b", 0, 0, g4id("a"), 16 + 0xFF, g4id("b"));
    EXPECT_IDS(v, "\xe2" "ab", 0, 0, 16 + 0xE2, g4id("ab"));
    EXPECT_IDS(v, "x\xe6\x97", 0, 0, g4id("x"), 16 + 0xE6, 16 + 0x97);
    EXPECT_IDS(v, "\xc0\x80", 0, 0, 16 + 0xC0, 16 + 0x80);
    EXPECT_IDS(v, "\xed\xa0\x80", 0, 0, 16 + 0xED, 16 + 0xA0, 16 + 0x80);
    /* NUL bytes are text too */
    int32_t ids[16];
    CHECK(tok(v, "a\0b", 3, 0, 0, ids, 16) == 3 && ids[1] == 16, "NUL byte");
    /* buffer too small: G4_ERR_ARG and the count */
    size_t k = 0, k2 = 0;
    g4_error err;
    int32_t *all = NULL;
    CHECK(g4_tokenize_alloc(v, "abc abc abc", 11, 1, 0, &all, &k, &err) == G4_OK && k == 6 && all[0] == 2, "alloc %zu", k);
    free(all);
    CHECK(g4_tokenize(v, "abc abc abc", 11, 1, 0, ids, 2, &k2, &err) == G4_ERR_ARG && k2 == k && ids[0] == 2, "small buffer");
    CHECK(g4_tokenize(v, "abc abc abc", 11, 1, 0, NULL, 0, &k2, &err) == G4_ERR_ARG && k2 == k, "count only");
    CHECK(g4_tokenize_bound(10) >= 32, "bound");
}

static void test_specials(const g4_vocab *v) {
    /* control tokens only with parse_special */
    EXPECT_IDS(v, "<|turn>ab<turn|>", 0, 1, 4, g4id("ab"), 5);
    CHECK(!has_id(v, "<|turn>x<turn|>", 0, 4) && !has_id(v, "<|turn>x<turn|>", 0, 5), "not parsed without parse_special");
    CHECK(!has_id(v, "<bos><eos><unk><pad>", 0, 2) && !has_id(v, "<unk>", 0, 3), "not parsed without parse_special");
    EXPECT_IDS(v, "<bos><eos><unk><pad>", 0, 1, 2, 1, 3, 0);
    /* user-defined: always */
    EXPECT_IDS(v, "a<|channel>b", 0, 0, g4id("a"), 7, g4id("b"));
    EXPECT_IDS(v, "a<|channel>b", 0, 1, g4id("a"), 7, g4id("b"));
    /* <|tool_response> is user-defined in the file but an end-of-generation token: control */
    CHECK(g4_vocab_is_eog(v, 6) && g4_vocab_is_control(v, 6), "tool_response eog/control");
    CHECK(!has_id(v, "<|tool_response>", 0, 6), "tool_response plain without special");
    EXPECT_IDS(v, "<|tool_response>", 0, 1, 6);
    /* longest first */
    EXPECT_IDS(v, "<abc>", 0, 1, 9);
    EXPECT_IDS(v, "<ab><abc>", 0, 1, 8, 9);
    /* llama.cpp's order, not left-to-right: QRS (longer) is taken before PQ */
    EXPECT_IDS(v, "PQRS", 0, 0, g4id("P"), 11);
    EXPECT_IDS(v, "PQ", 0, 0, 10);
    EXPECT_IDS(v, "PQPQRS", 0, 0, 10, g4id("P"), 11);
    /* unused / HTML-like names are ordinary text in the gemma4 layout */
    CHECK(!has_id(v, "<unused0>", 1, 12), "<unused0> is not special");
    /* end of generation: <eos> <turn|> <|tool_response>; </s> is not (gemma4: </s> stays normal) */
    CHECK(g4_vocab_is_eog(v, 1) && g4_vocab_is_eog(v, 5) && g4_vocab_is_eog(v, 6), "eog set");
    CHECK(!g4_vocab_is_eog(v, 4) && !g4_vocab_is_eog(v, 13) && !g4_vocab_is_control(v, 13), "</s> normal");
    CHECK(g4_vocab_n_eog(v) == 3 && g4_vocab_eog(v, 0) == 1 && g4_vocab_eog(v, 2) == 6, "eog list");
    /* lookups */
    CHECK(g4_vocab_find(v, "<|turn>", 7) == 4 && g4_vocab_find(v, "nope", 4) == -1, "find");
    size_t len;
    const char *t = g4_vocab_token_text(v, 7, &len);
    CHECK(t && len == 10 && !memcmp(t, "<|channel>", 10), "token text");
    CHECK(!g4_vocab_token_text(v, -1, &len) && !g4_vocab_token_text(v, n_g4, &len), "bad ids");
    CHECK(g4_vocab_token_type(v, 16) == G4_TOKEN_BYTE && g4_vocab_token_type(v, 6) == G4_TOKEN_USER_DEFINED, "types");
    t = g4_vocab_chat_template(v, &len);
    CHECK(t && len == 14 && !memcmp(t, "{{ messages }}", 14), "chat template");
}

static void test_spm(const g4_vocab *v, const g4_vocab *vp) {
    CHECK(!strcmp(g4_vocab_kind(v), "llama"), "kind");
    CHECK(g4_vocab_eot(v) == 5 && g4_vocab_is_eog(v, 5) && g4_vocab_is_eog(v, 1), "eot by name");
    CHECK(!g4_vocab_is_eog(v, 10) && g4_vocab_is_control(v, 10), "</s>: control (llama.cpp), not a stop token");
    /* scores: bc (-2) before ab (-3) */
    EXPECT_IDS(v, "abc", 0, 0, spid("abc"));
    EXPECT_IDS(v, "ab", 0, 0, spid("ab"));
    EXPECT_IDS(v, "bcd", 0, 0, spid("bc"), spid("d"));
    /* equal scores: the leftmost pair (ab before cd) */
    EXPECT_IDS(v, "abcd", 0, 0, spid("abc"), spid("d"));
    EXPECT_IDS(v, "aaa", 0, 0, spid("aa"), spid("a"));
    /* user-defined space runs match the raw text before spaces become U+2581 */
    EXPECT_IDS(v, "  a", 0, 0, 6, spid("a"));
    EXPECT_IDS(v, "a   a", 0, 0, spid("a"), 7, spid("a"));
    EXPECT_IDS(v, "a a", 0, 0, spid("a"), spid(SP "a"));
    EXPECT_IDS(v, "a\n\nb", 0, 0, spid("a"), 8, spid("b"));
    EXPECT_IDS(v, "<b>x", 0, 0, 9, 11 + 'x');
    /* a literal U+2581 next to a space: llama.cpp's answer (not HF's) */
    EXPECT_IDS(v, " " SP, 0, 0, spid(SP SP));
    EXPECT_IDS(v, "  " SP, 0, 0, 6, spid(SP));
    /* control tokens */
    EXPECT_IDS(v, "<start_of_turn>a<end_of_turn>", 0, 1, 4, spid("a"), 5);
    EXPECT_IDS(v, "<bos>", 1, 1, 2, 2);
    /* invalid UTF-8: SentencePiece's unchecked split (a lead byte takes the next bytes) */
    EXPECT_IDS(v, "\xe2" "ab", 0, 0, 11 + 0xE2, 11 + 'a', 11 + 'b');
    EXPECT_IDS(v, "a\xff", 0, 0, spid("a"), 11 + 0xFF);
    /* dummy prefix (add_space_prefix): at the start and after a special token */
    EXPECT_IDS(vp, "a", 0, 0, spid(SP "a"));
    EXPECT_IDS(vp, "a<start_of_turn>a", 0, 1, spid(SP "a"), 4, spid(SP "a"));
}

static const char *alphabet[] = {"a", "b", "c", "d", "x", "y", " ", "  ", "\n", "\n\n", "é", "日", "語", ">", "<",
                                 "|", "ab", "\xff", "\xe2", "\xe6\x97", SP, "<|turn>", "<turn|>", "<ab>", "<abc>",
                                 "PQ", "QRS", "R", "S", "<|channel>", "<|tool_response>", "</s>", "<b>", "   ",
                                 "<start_of_turn>", "aaa", "dd", "\t", "z", "\0"};

static void random_text(char *buf, size_t *n, int pieces) {
    size_t k = 0;
    int np = (int)(t_rand64() % (uint64_t)pieces) + 1;
    for (int i = 0; i < np; i++) {
        int a = (int)(t_rand64() % (sizeof alphabet / sizeof *alphabet));
        size_t l = a == (int)(sizeof alphabet / sizeof *alphabet) - 1 ? 1 : strlen(alphabet[a]);
        memcpy(buf + k, alphabet[a], l);
        k += l;
    }
    *n = k;
}

static void test_random(const g4_vocab *v, const ref *r, const char *name) {
    char buf[2048];
    int32_t got[4096], want[4096];
    int bad = 0;
    for (int it = 0; it < 3000; it++) {
        size_t n;
        random_text(buf, &n, it < 2000 ? 12 : 60);
        int special = it & 1;
        size_t kg = tok(v, buf, n, 0, special, got, 4096);
        size_t kw = ref_tokenize(r, (const uint8_t *)buf, n, special, want);
        if (kg != kw || memcmp(got, want, kw * sizeof *got)) {
            if (bad++ < 5) {
                char w[4096];
                snprintf(w, sizeof w, "%s", join(want, (int)kw));
                fprintf(stderr, "%s: special %d text '%.*s': got [%s] want [%s]\n", name, special, (int)n, buf,
                        kg == (size_t)-1 ? "error" : join(got, (int)kg), w);
            }
        }
    }
    CHECK(bad == 0, "%s: %d of 3000 random texts differ from the reference", name, bad);
    /* the same long text tokenizes the same every time (word cache) */
    char big[65536];
    size_t bn = 0;
    while (bn + 64 < sizeof big) {
        size_t n;
        random_text(big + bn, &n, 4);
        bn += n;
    }
    static int32_t a1[200000], a2[200000];
    size_t k1 = tok(v, big, bn, 1, 1, a1, 200000), k2 = tok(v, big, bn, 1, 1, a2, 200000);
    CHECK(k1 == k2 && k1 != (size_t)-1 && !memcmp(a1, a2, k1 * sizeof *a1), "%s: repeatable", name);
    static int32_t ref_out[200000];
    (void)ref_out;
}

static void test_detok(const g4_vocab *v) {
    char buf[64];
    /* pieces */
    CHECK(g4_token_to_piece(v, g4id(SP "a"), 0, buf, sizeof buf) == 2 && !memcmp(buf, " a", 2), "▁a -> ' a'");
    CHECK(g4_token_to_piece(v, 16 + 0x41, 0, buf, sizeof buf) == 1 && buf[0] == 'A', "byte token");
    CHECK(g4_token_to_piece(v, 4, 0, buf, sizeof buf) == 0, "control hidden");
    CHECK(g4_token_to_piece(v, 4, 1, buf, sizeof buf) == 7 && !memcmp(buf, "<|turn>", 7), "control shown");
    CHECK(g4_token_to_piece(v, 7, 0, buf, sizeof buf) == 10, "user-defined shown");
    CHECK(g4_token_to_piece(v, 3, 0, buf, sizeof buf) == 0, "unknown hidden");
    CHECK(g4_token_to_piece(v, 7, 0, buf, 3) == 10 && !memcmp(buf, "<|c", 3), "short buffer");
    CHECK(g4_token_to_piece(v, -1, 1, buf, sizeof buf) == 0 && g4_token_to_piece(v, n_g4, 1, buf, sizeof buf) == 0, "bad id");

    g4_detok *d;
    g4_error err;
    CHECK(g4_detok_new(&d, v, 0, &err) == G4_OK, "detok new");
    size_t n;
    const char *p;
    /* 日 = e6 97 a5 split over three byte tokens */
    p = g4_detok_push(d, 16 + 0xE6, &n);
    CHECK(n == 0, "held 1");
    p = g4_detok_push(d, 16 + 0x97, &n);
    CHECK(n == 0, "held 2");
    p = g4_detok_push(d, 16 + 0xA5, &n);
    CHECK(n == 3 && !memcmp(p, "日", 3), "complete");
    /* a character cut short by the next token: U+FFFD, then the token */
    g4_detok_push(d, 16 + 0xE6, &n);
    p = g4_detok_push(d, g4id("a"), &n);
    CHECK(n == 4 && !memcmp(p, "\xef\xbf\xbd" "a", 4), "broken sequence: %zu", n);
    /* invalid bytes at once */
    p = g4_detok_push(d, 16 + 0xFF, &n);
    CHECK(n == 3 && !memcmp(p, "\xef\xbf\xbd", 3), "0xff");
    p = g4_detok_push(d, 16 + 0x80, &n);
    CHECK(n == 3 && !memcmp(p, "\xef\xbf\xbd", 3), "lone continuation");
    /* flush: an unfinished character becomes U+FFFD */
    g4_detok_push(d, 16 + 0xE6, &n);
    g4_detok_push(d, 16 + 0x97, &n);
    p = g4_detok_flush(d, &n);
    CHECK(n == 3 && !memcmp(p, "\xef\xbf\xbd", 3), "flush");
    p = g4_detok_flush(d, &n);
    CHECK(n == 0, "flush twice");
    /* control tokens hidden, U+2581 as a space */
    p = g4_detok_push(d, 4, &n);
    CHECK(n == 0, "control hidden in stream");
    p = g4_detok_push(d, g4id(SP "a"), &n);
    CHECK(n == 2 && !memcmp(p, " a", 2), "space");
    /* 4-byte character from bytes, with a valid ASCII piece before */
    g4_detok_reset(d);
    const char *smile = "\xf0\x9f\x98\x80";
    size_t tot = 0;
    char acc[32];
    for (int i = 0; i < 4; i++) {
        p = g4_detok_push(d, 16 + (uint8_t)smile[i], &n);
        memcpy(acc + tot, p, n);
        tot += n;
        CHECK(n == (i == 3 ? 4u : 0u), "emoji step %d: %zu", i, n);
    }
    CHECK(tot == 4 && !memcmp(acc, smile, 4), "emoji");
    g4_detok_free(d);
    CHECK(g4_detok_new(&d, v, 1, &err) == G4_OK, "detok new special");
    p = g4_detok_push(d, 4, &n);
    CHECK(n == 7 && !memcmp(p, "<|turn>", 7), "control shown in stream");
    g4_detok_free(d);

    /* whole sequences round trip */
    const char *texts[] = {"abc abcd  x\n\n\nz 日語é", "a\xe6\x97\xa5 b", "> x >  x", ""};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t ids[256];
        size_t k = tok(v, texts[i], strlen(texts[i]), 0, 0, ids, 256);
        char *out;
        size_t ol;
        CHECK(g4_detokenize(v, ids, k, 0, &out, &ol, &err) == G4_OK && ol == strlen(texts[i]) && !strcmp(out, texts[i]),
              "round trip '%s'", texts[i]);
        free(out);
    }
    /* invalid input comes back as U+FFFD */
    int32_t ids[16];
    size_t k = tok(v, "a\xff", 2, 0, 0, ids, 16);
    char *out;
    size_t ol;
    CHECK(g4_detokenize(v, ids, k, 0, &out, &ol, &err) == G4_OK && ol == 4 && !memcmp(out, "a\xef\xbf\xbd", 4), "fffd");
    free(out);
}

/* ---- the model loader ------------------------------------------------------------------------------- */

typedef struct copy_ctx {
    const gguf_file *f;
} copy_ctx;

static g4_status copy_fill(void *user, int index, const char *name, int type, const int64_t *ne, int64_t row0,
                           int64_t nrows, void *dst, uint64_t nbytes, g4_error *err) {
    (void)name, (void)type, (void)ne, (void)err;
    const copy_ctx *c = user;
    const gguf_tensor *t = &c->f->tensors[index];
    uint64_t row_bytes = t->nbytes / (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    memcpy(dst, t->data + (uint64_t)row0 * row_bytes, nbytes);
    (void)nrows;
    return G4_OK;
}

/* a copy of a GGUF file without its tokenizer.* keys */
static int strip_tokenizer(const char *in, const char *out) {
    gguf_file *f;
    g4_error err;
    if (gguf_open(&f, in, &err)) return 0;
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (!strncmp(kv->key, "tokenizer.", 10) || !strcmp(kv->key, "general.alignment")) continue;
        if (kv->type == GGUF_STRING) {
            const char *s;
            uint64_t l;
            gguf_get_str(f, kv->key, 1, &s, &l, NULL);
            char *z = malloc(l + 1);
            memcpy(z, s, l);
            z[l] = 0;
            gguf_w_str(w, kv->key, z);
            free(z);
        } else if (kv->type == GGUF_ARRAY && kv->arr_type != GGUF_STRING) {
            gguf_w_arr(w, kv->key, kv->arr_type, kv->data, kv->arr_n);
        } else if (kv->type != GGUF_ARRAY) {
            gguf_w_scalar(w, kv->key, kv->type, kv->data);
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne);
    }
    copy_ctx c = {f};
    g4_status s = gguf_writer_write(w, out, copy_fill, NULL, &c, &err);
    if (s) fprintf(stderr, "strip: %s\n", err.msg);
    gguf_writer_free(w);
    gguf_close(f);
    return s == G4_OK;
}

static void test_model(void) {
    char path[128], stripped[128];
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    snprintf(stripped, sizeof stripped, "%s/model-notok.gguf", dir);
    g4_synth_params p = {0};
    p.variant = G4_SYNTH_E2B;
    p.scale = G4_SYNTH_TINY;
    p.type = 0; /* F32 */
    p.seed = 7;
    p.out = path;
    g4_error err;
    CHECK(g4_synth(&p, &err) == G4_OK, "synth: %s", err.msg);
    g4_model *m;
    CHECK(g4_model_open(&m, path, &err) == G4_OK, "open: %s", err.msg);
    if (m) {
        const g4_vocab *v = g4_model_vocab(m);
        CHECK(v != NULL, "model vocab");
        if (v) {
            CHECK(g4_vocab_n_tokens(v) == m->n_vocab, "n tokens %d", g4_vocab_n_tokens(v));
            CHECK(!strcmp(ids_str(v, "<|turn>", 1, 1), "2 5"), "synth specials: %s", ids_str(v, "<|turn>", 1, 1));
            int32_t ids[256];
            const char *txt = "The keeper of the old lighthouse wrote in her log.";
            size_t k = tok(v, txt, strlen(txt), 0, 0, ids, 256);
            CHECK(k > 0 && k < 30, "synth tokens %zu", k);
            char *out;
            CHECK(g4_detokenize(v, ids, k, 0, &out, NULL, &err) == G4_OK && !strcmp(out, txt), "synth round trip");
            free(out);
        }
        g4_model_free(m);
    }
    g4_vocab *v;
    CHECK(g4_vocab_open(&v, path, &err) == G4_OK, "vocab from a model file: %s", err.msg);
    g4_vocab_free(v);
    CHECK(strip_tokenizer(path, stripped), "strip");
    CHECK(g4_model_open(&m, stripped, &err) == G4_OK, "open without tokenizer: %s", err.msg);
    if (m) {
        CHECK(g4_model_vocab(m) == NULL, "no vocab");
        g4_model_free(m);
    }
    CHECK(g4_vocab_open(&v, stripped, &err) == G4_ERR_FORMAT && strstr(err.msg, "no tokenizer"), "vocab_open: %s", err.msg);
    unlink(path);
    unlink(stripped);
}

static void test_errors(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    g4_error err;
    g4_vocab *v;
    /* duplicate token */
    tv dup[] = {{"a", N, 0}, {"b", N, 0}, {"a", N, 0}};
    CHECK(write_vocab(path, "llama", dup, 3, NULL, 0, 0, 0, 0), "write");
    CHECK(g4_vocab_open(&v, path, &err) == G4_ERR_FORMAT && strstr(err.msg, "duplicate token 'a'"), "dup: %s", err.msg);
    /* unknown tokenizer model */
    CHECK(write_vocab(path, "bert", dup, 2, NULL, 0, 0, 0, 0), "write");
    CHECK(g4_vocab_open(&v, path, &err) == G4_ERR_UNSUPPORTED && strstr(err.msg, "'bert'"), "bert: %s", err.msg);
    /* gemma4 without merges */
    CHECK(write_vocab(path, "gemma4", dup, 2, NULL, 0, 0, 0, 0), "write");
    CHECK(g4_vocab_open(&v, path, &err) == G4_ERR_FORMAT && strstr(err.msg, "merges"), "merges: %s", err.msg);
    /* odd merges are ignored, empty tokens get llama.cpp's names, out-of-range ids fall back */
    tv odd[] = {{"a", N, 0}, {"", N, 0}, {"b", N, 0}};
    const char *om[] = {"ab", "a ", " a", "a b", "zz q"};
    CHECK(write_vocab(path, "gemma4", odd, 3, om, 5, 7, 99, 0), "write");
    CHECK(g4_vocab_open(&v, path, &err) == G4_OK, "odd: %s", err.msg);
    if (v) {
        size_t l;
        const char *t = g4_vocab_token_text(v, 1, &l);
        CHECK(t && l == 9 && !memcmp(t, "[EMPTY_1]", 9), "empty token name");
        CHECK(g4_vocab_bos(v) == -1 && g4_vocab_eos(v) == -1, "ids out of range");
        /* "a b" makes "ab": not a token, and no byte tokens to fall back to: dropped, as llama.cpp */
        CHECK(!strcmp(ids_str(v, "ab", 1, 0), ""), "ab: %s", ids_str(v, "ab", 1, 0));
        EXPECT_IDS(v, "ba", 1, 0, 2, 0);
        g4_vocab_free(v);
    }
    CHECK(g4_vocab_open(&v, "/nonexistent/x.gguf", &err) == G4_ERR_IO, "missing file");
    unlink(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/g4_test_tok_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_g4_tokens();
    make_sp_tokens();
    char p4[128], p3[128], p3p[128];
    snprintf(p4, sizeof p4, "%s/g4.gguf", dir);
    snprintf(p3, sizeof p3, "%s/sp.gguf", dir);
    snprintf(p3p, sizeof p3p, "%s/spp.gguf", dir);
    CHECK(write_vocab(p4, "gemma4", g4toks, n_g4, g4merges, n_g4merges, 2, 1, 0), "write gemma4 vocab");
    CHECK(write_vocab(p3, "llama", sptoks, n_sp, NULL, 0, 2, 1, 0), "write llama vocab");
    CHECK(write_vocab(p3p, "llama", sptoks, n_sp, NULL, 0, 2, 1, 1), "write llama vocab (prefix)");
    g4_error err;
    g4_vocab *v4 = NULL, *v3 = NULL, *v3p = NULL;
    CHECK(g4_vocab_open(&v4, p4, &err) == G4_OK, "open gemma4: %s", err.msg);
    CHECK(g4_vocab_open(&v3, p3, &err) == G4_OK, "open llama: %s", err.msg);
    CHECK(g4_vocab_open(&v3p, p3p, &err) == G4_OK, "open llama prefix: %s", err.msg);
    if (v4 && v3 && v3p) {
        test_gemma4_rules(v4);
        test_specials(v4);
        test_spm(v3, v3p);
        ref r4 = {v4, 1, g4toks, n_g4, g4merges, n_g4merges};
        ref r3 = {v3, 0, sptoks, n_sp, NULL, 0};
        ref r3p = {v3p, 0, sptoks, n_sp, NULL, 0};
        test_random(v4, &r4, "gemma4");
        test_random(v3, &r3, "llama");
        test_random(v3p, &r3p, "llama+prefix");
        test_detok(v4);
    }
    g4_vocab_free(v4);
    g4_vocab_free(v3);
    g4_vocab_free(v3p);
    test_errors();
    test_model();
    unlink(p4);
    unlink(p3);
    unlink(p3p);
    rmdir(dir);
    return t_done();
}
