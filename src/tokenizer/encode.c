/* Text -> token ids, bit-exact with llama.cpp's "gemma4" BPE path and its SentencePiece ("llama") path.
 *
 * Outline (docs/tokenizer.md has the details and the reasons):
 *   1. partition: special tokens found in the text (a trie finds every occurrence; overlapping ones are
 *      resolved in llama.cpp's order: longer tokens first, each left to right) cut it into raw fragments;
 *   2. each raw fragment: spaces become U+2581; gemma4 splits it into newline runs and other runs;
 *   3. runs are cut into chunks before a U+2581 wherever no token (or merge result) can span the cut,
 *      so chunks tokenize independently; chunks are looked up in a word cache;
 *   4. a chunk not in the cache is split into characters and merged with a binary heap: gemma4 by merge
 *      rank (pairs looked up by token ids), llama by the score of the concatenated text; ties go to
 *      the leftmost pair; symbols that are not tokens at the end fall back to <0xXX> byte tokens.
 */
#include "tokenizer/tokenizer.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- tokenizer state: scratch buffers and the word cache --------------------------------------------- */

typedef struct tok_sym {
    uint32_t start, n;
    int32_t prev, next, id;
} tok_sym;

typedef struct tok_hent {
    uint64_t key; /* priority << 32 | left symbol */
    uint32_t size;
    int32_t res;
} tok_hent;

#define WC_SLOTS (1u << 17)
#define WC_MAX_ENTRIES 65536u
#define WC_MAX_KEY 64u
#define WC_KEY_BYTES (2u << 20)
#define WC_IDS (1u << 19)
#define OCC_MAX (1u << 16) /* occurrences kept per special-token cluster */
#define PC_SIZE 4096u /* pair cache: recent answers of the merge table (gemma4) / token table (llama) */

typedef struct tok_pc {
    uint64_t key; /* UINT64_MAX: empty */
    uint32_t rank; /* UINT32_MAX: no merge */
    int32_t res;
} tok_pc;

typedef struct wc_ent {
    uint64_t h;
    uint32_t key_off, key_len, ids_off, n_ids;
} wc_ent;

struct tok_state {
    uint8_t *esc;
    size_t esc_cap;
    tok_sym *sy;
    size_t sy_cap;
    tok_hent *hp;
    size_t hp_cap;
    uint8_t *cov;
    size_t cov_cap;
    int32_t *mark;
    size_t mark_cap;
    uint64_t *occ;    /* occurrences in the current cluster: special << 32 | offset */
    size_t occ_n, occ_cap;
    int occ_over;     /* too many to keep: resolve by searching again */
    int32_t *cl_spec; /* [n_spec] specials seen in the current cluster */
    int cl_n;
    uint32_t *stamp;  /* [n_spec] */
    uint32_t gen;
    tok_pc *pc;       /* [PC_SIZE] */
    /* word cache (NULL slots: disabled) */
    uint32_t *wc_slot;
    wc_ent *wc;
    uint32_t wc_n, wc_key_n, wc_ids_n;
    uint8_t *wc_key;
    int32_t *wc_ids;
};

void tok_state_free(struct tok_state *st) {
    if (!st) return;
    free(st->esc);
    free(st->sy);
    free(st->hp);
    free(st->cov);
    free(st->mark);
    free(st->cl_spec);
    free(st->stamp);
    free(st->pc);
    free(st->occ);
    free(st->wc_slot);
    free(st->wc);
    free(st->wc_key);
    free(st->wc_ids);
    free(st);
}

static struct tok_state *state_new(const g4_vocab *v, int cache) {
    struct tok_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    if (v->n_spec) {
        st->cl_spec = malloc((size_t)v->n_spec * sizeof *st->cl_spec);
        st->stamp = calloc((size_t)v->n_spec, sizeof *st->stamp);
        if (!st->cl_spec || !st->stamp) goto fail;
    }
    st->pc = malloc(PC_SIZE * sizeof *st->pc);
    if (!st->pc) goto fail;
    for (uint32_t i = 0; i < PC_SIZE; i++) st->pc[i].key = UINT64_MAX;
    if (cache) {
        st->wc_slot = calloc(WC_SLOTS, sizeof *st->wc_slot);
        st->wc = malloc(WC_MAX_ENTRIES * sizeof *st->wc);
        st->wc_key = malloc(WC_KEY_BYTES);
        st->wc_ids = malloc(WC_IDS * sizeof *st->wc_ids);
        if (!st->wc_slot || !st->wc || !st->wc_key || !st->wc_ids) goto fail;
    }
    return st;
fail:
    tok_state_free(st);
    return NULL;
}

static void wc_reset(struct tok_state *st) {
    memset(st->wc_slot, 0, WC_SLOTS * sizeof *st->wc_slot);
    st->wc_n = st->wc_key_n = st->wc_ids_n = 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return 0;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* ---- output ----------------------------------------------------------------------------------------- */

typedef struct tok_out {
    int32_t *ids;
    size_t n, cap;
    int growable, oom;
} tok_out;

static void out_push(tok_out *o, int32_t id) {
    if (o->n >= o->cap && o->growable && !o->oom) {
        size_t c = o->cap;
        if (!grow((void **)&o->ids, &c, o->n + 1, sizeof *o->ids)) o->oom = 1;
        else o->cap = c;
    }
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

typedef struct tok_ctx {
    const g4_vocab *v;
    struct tok_state *st;
    tok_out *o;
} tok_ctx;

/* ---- the merge loop --------------------------------------------------------------------------------- */

static inline void hp_push(tok_hent *hp, size_t *hn, tok_hent e) {
    size_t i = (*hn)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (hp[p].key <= e.key) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i] = e;
}

static inline tok_hent hp_pop(tok_hent *hp, size_t *hn) {
    tok_hent top = hp[0], last = hp[--(*hn)];
    size_t n = *hn, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hp[c + 1].key < hp[c].key) c++;
        if (last.key <= hp[c].key) break;
        hp[i] = hp[c];
        i = c;
    }
    if (n) hp[i] = last;
    return top;
}

/* float score -> priority where a higher score gives a smaller number (ties compare equal, as floats) */
static inline uint32_t score_prio(float f) {
    uint32_t u;
    if (f == 0.0f) f = 0.0f; /* -0 == +0 */
    memcpy(&u, &f, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

/* gemma4: merge rank and result of the pair of ids (a, b); 0 if they do not merge. A small
 * direct-mapped cache of recent answers keeps the common pairs out of the big table. */
static inline int pair_lookup(const g4_vocab *v, tok_pc *pc, int32_t a, int32_t b, uint32_t *rank, int32_t *res) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint64_t h = mix64(key);
    tok_pc *c = &pc[h & (PC_SIZE - 1)];
    if (c->key != key) {
        uint64_t i = h & v->pair_mask;
        c->key = key;
        c->rank = UINT32_MAX;
        c->res = -1;
        for (;;) {
            const tok_pair *p = &v->pairs[i];
            if (p->key == key) {
                c->rank = p->rank;
                c->res = p->res;
                break;
            }
            if (p->key == UINT64_MAX) break;
            i = (i + 1) & v->pair_mask;
        }
    }
    *rank = c->rank;
    *res = c->res;
    return c->rank != UINT32_MAX;
}

/* a candidate pair (l, r): gemma4 looks the ids up in the merge table, llama looks the concatenated
 * text up among the tokens */
static inline void try_pair(const g4_vocab *v, tok_pc *pc, const uint8_t *s, const tok_sym *sy, int32_t l, int32_t r,
                            tok_hent *hp, size_t *hn) {
    if (l < 0 || r < 0) return;
    if (v->kind == TOK_BPE) {
        int32_t a = sy[l].id, b = sy[r].id, res;
        uint32_t rank;
        if (a < 0 || b < 0 || !pair_lookup(v, pc, a, b, &rank, &res)) return;
        hp_push(hp, hn, (tok_hent){(uint64_t)rank << 32 | (uint32_t)l, sy[l].n + sy[r].n, res});
    } else {
        /* symbols with an id are that token's text, so the answer for a pair of ids can be cached */
        uint32_t size = sy[l].n + sy[r].n, prio;
        if (size > v->max_len) return; /* longer than every token */
        int32_t a = sy[l].id, b = sy[r].id, t;
        if (a >= 0 && b >= 0) {
            uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
            tok_pc *c = &pc[mix64(key) & (PC_SIZE - 1)];
            if (c->key != key) {
                c->key = key;
                c->res = str_find(v, s + sy[l].start, size);
                c->rank = c->res >= 0 ? score_prio(v->score[c->res]) : 0;
            }
            t = c->res;
            prio = c->rank;
        } else {
            t = str_find(v, s + sy[l].start, size);
            prio = t >= 0 ? score_prio(v->score[t]) : 0;
        }
        if (t < 0) return;
        hp_push(hp, hn, (tok_hent){(uint64_t)prio << 32 | (uint32_t)l, size, t});
    }
}

/* id of the string of one character s[0..L) (L >= 2): the code point table for valid 2- and 3-byte
 * characters, else the string table */
static inline int32_t char_id(const g4_vocab *v, const uint8_t *s, uint32_t L) {
    if (L == 2 && (s[1] & 0xC0) == 0x80 && s[0] >= 0xC2) return v->cp_id[(uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F)];
    if (L == 3) {
        int comp;
        if (tok_utf8_prefix(s, 3, &comp) == 3 && comp)
            return v->cp_id[(uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F)];
    }
    return str_find(v, s, L);
}

/* tokenizes one chunk s[0..n) (already escaped) with the merge loop */
static int core(tok_ctx *c, const uint8_t *s, uint32_t n) {
    const g4_vocab *v = c->v;
    struct tok_state *st = c->st;
    if (!n) return 0;
    if (!grow((void **)&st->sy, &st->sy_cap, n, sizeof *st->sy)) return -1;
    tok_sym *sy = st->sy;
    int bpe = v->kind == TOK_BPE;
    int32_t ns = 0;
    for (uint32_t i = 0; i < n;) {
        uint8_t b = s[i];
        uint32_t L;
        int32_t id;
        if (b < 0x80) {
            L = 1;
            id = v->single[b];
        } else {
            if (bpe) { /* characters; an invalid byte is a symbol of its own (-> byte token) */
                int comp;
                int k = tok_utf8_prefix(s + i, n - i, &comp);
                L = comp ? (uint32_t)k : 1;
            } else { /* llama.cpp's SentencePiece split: length from the lead byte, unchecked */
                L = tok_lead_len[b >> 4];
                if (L > n - i) L = n - i;
            }
            id = L == 1 ? v->single[b] : char_id(v, s + i, L);
        }
        sy[ns].start = i;
        sy[ns].n = L;
        sy[ns].prev = ns - 1;
        sy[ns].next = ns + 1;
        sy[ns].id = id;
        ns++;
        i += L;
    }
    sy[ns - 1].next = -1;
    if (ns > 1) {
        /* every push follows a merge or an initial pair: at most 3 * ns entries */
        if (!grow((void **)&st->hp, &st->hp_cap, 3 * (size_t)ns, sizeof *st->hp)) return -1;
        tok_hent *hp = st->hp;
        size_t hn = 0;
        for (int32_t i = 1; i < ns; i++) try_pair(v, st->pc, s, sy, i - 1, i, hp, &hn);
        while (hn) {
            tok_hent e = hp_pop(hp, &hn);
            int32_t l = (int32_t)(uint32_t)e.key;
            tok_sym *L = &sy[l];
            if (!L->n) continue;
            int32_t r = L->next;
            if (r < 0 || L->n + sy[r].n != e.size) continue; /* stale: a neighbour has changed */
            tok_sym *R = &sy[r];
            L->n += R->n;
            L->id = e.res;
            R->n = 0;
            L->next = R->next;
            if (R->next >= 0) sy[R->next].prev = l;
            try_pair(v, st->pc, s, sy, L->prev, l, hp, &hn);
            try_pair(v, st->pc, s, sy, l, L->next, hp, &hn);
        }
    }
    for (int32_t k = 0; k != -1; k = sy[k].next) {
        int32_t id = sy[k].id;
        if (id >= 0 && id < v->n) {
            out_push(c->o, id);
        } else {
            for (uint32_t j = 0; j < sy[k].n; j++) {
                int32_t t = v->byte_tok[s[sy[k].start + j]];
                if (t >= 0) out_push(c->o, t);
            }
        }
    }
    return 0;
}

/* a chunk through the word cache */
static int encode_chunk(tok_ctx *c, const uint8_t *s, uint32_t n) {
    struct tok_state *st = c->st;
    if (!st->wc_slot || n > WC_MAX_KEY) return core(c, s, n);
    uint64_t h = tok_hash(s, n);
    uint32_t i = (uint32_t)h & (WC_SLOTS - 1);
    for (;;) {
        uint32_t e = st->wc_slot[i];
        if (!e) break;
        const wc_ent *w = &st->wc[e - 1];
        if (w->h == h && w->key_len == n && memcmp(st->wc_key + w->key_off, s, n) == 0) {
            tok_out *o = c->o;
            const int32_t *ids = st->wc_ids + w->ids_off;
            if (o->n + w->n_ids <= o->cap) {
                memcpy(o->ids + o->n, ids, w->n_ids * sizeof *ids);
                o->n += w->n_ids;
            } else {
                for (uint32_t k = 0; k < w->n_ids; k++) out_push(o, ids[k]);
            }
            return 0;
        }
        i = (i + 1) & (WC_SLOTS - 1);
    }
    size_t n0 = c->o->n;
    if (core(c, s, n)) return -1;
    size_t cnt = c->o->n - n0;
    if (c->o->n > c->o->cap) return 0; /* not all ids were stored: nothing to cache */
    if (st->wc_n >= WC_MAX_ENTRIES || st->wc_key_n + n > WC_KEY_BYTES || st->wc_ids_n + cnt > WC_IDS) {
        wc_reset(st);
        i = (uint32_t)h & (WC_SLOTS - 1);
    }
    wc_ent *w = &st->wc[st->wc_n];
    w->h = h;
    w->key_off = st->wc_key_n;
    w->key_len = n;
    w->ids_off = st->wc_ids_n;
    w->n_ids = (uint32_t)cnt;
    memcpy(st->wc_key + st->wc_key_n, s, n);
    memcpy(st->wc_ids + st->wc_ids_n, c->o->ids + n0, cnt * sizeof(int32_t));
    st->wc_key_n += n;
    st->wc_ids_n += (uint32_t)cnt;
    st->wc_slot[i] = ++st->wc_n;
    return 0;
}

static inline int safe_before_space(const g4_vocab *v, const uint8_t *p, uint32_t n) {
    if (n == 1 && p[0] < 0x80) return !v->unsafe_ascii[p[0]];
    uint64_t key = (uint64_t)n << 32;
    for (uint32_t q = 0; q < n; q++) key |= (uint64_t)p[q] << (8 * q);
    int lo = 0, hi = v->n_unsafe;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v->unsafe[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return !(lo < v->n_unsafe && v->unsafe[lo] == key);
}

/* an escaped run: cut into chunks before U+2581 where that is safe, each chunk through the cache */
static int encode_run(tok_ctx *c, const uint8_t *s, uint32_t n) {
    const g4_vocab *v = c->v;
    int bpe = v->kind == TOK_BPE;
    uint32_t cs = 0, prev = 0, prev_len = 0;
    for (uint32_t i = 0; i < n;) {
        uint8_t b = s[i];
        uint32_t L;
        if (b < 0x80) {
            L = 1;
        } else if (bpe) {
            int comp;
            int k = tok_utf8_prefix(s + i, n - i, &comp);
            L = comp ? (uint32_t)k : 1;
        } else {
            L = tok_lead_len[b >> 4];
            if (L > n - i) L = n - i;
        }
        if (L == 3 && b == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81 && i > cs &&
            safe_before_space(v, s + prev, prev_len)) {
            if (encode_chunk(c, s + cs, i - cs)) return -1;
            cs = i;
        }
        prev = i;
        prev_len = L;
        i += L;
    }
    return encode_chunk(c, s + cs, n - cs);
}

/* escape spaces: ' ' -> U+2581 (e2 96 81), into the state's buffer */
static const uint8_t *escape(struct tok_state *st, const uint8_t *p, size_t n, int prefix, uint32_t *out_n) {
    if (!grow((void **)&st->esc, &st->esc_cap, 3 * n + 3, 1)) return NULL;
    uint8_t *e = st->esc;
    size_t k = 0;
    if (prefix) {
        e[k++] = 0xE2;
        e[k++] = 0x96;
        e[k++] = 0x81;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') {
            e[k++] = 0xE2;
            e[k++] = 0x96;
            e[k++] = 0x81;
        } else {
            e[k++] = p[i];
        }
    }
    *out_n = (uint32_t)k;
    return e;
}

/* text between special tokens */
static int raw_fragment(tok_ctx *c, const uint8_t *p, size_t n, int *prev_special) {
    const g4_vocab *v = c->v;
    int ps = *prev_special;
    *prev_special = 0;
    uint32_t en;
    if (v->kind == TOK_SPM) {
        const uint8_t *e = escape(c->st, p, n, v->add_space_prefix && ps, &en);
        if (!e) return -1;
        return encode_run(c, e, en);
    }
    /* gemma4: newline runs and the runs between them are words of their own */
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        if (p[i] == '\n') {
            while (j < n && p[j] == '\n') j++;
            int32_t t = tok_find(v, p + i, j - i);
            if (t >= 0) out_push(c->o, t);
            else if (encode_chunk(c, p + i, (uint32_t)(j - i))) return -1;
        } else {
            const uint8_t *nl = memchr(p + i, '\n', n - i);
            j = nl ? (size_t)(nl - p) : n;
            const uint8_t *e = escape(c->st, p + i, j - i, 0, &en);
            if (!e || encode_run(c, e, en)) return -1;
        }
        i = j;
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Resolves the special-token occurrences of one cluster t[cs..ce) (a maximal stretch of overlapping
 * occurrences) in llama.cpp's order and emits raw text and tokens up to ce. */
static int resolve_cluster(tok_ctx *c, const uint8_t *t, size_t cs, size_t ce, size_t *raw_from, int *prev_special) {
    const g4_vocab *v = c->v;
    struct tok_state *st = c->st;
    size_t L = ce - cs;
    if (!grow((void **)&st->cov, &st->cov_cap, L, 1) || !grow((void **)&st->mark, &st->mark_cap, L, sizeof *st->mark))
        return -1;
    int32_t *m = st->mark;
    memset(st->cov, 0, L);
    for (size_t q = 0; q < L; q++) m[q] = -1;
    if (!st->occ_over) { /* the occurrences, by special (llama.cpp's order), then left to right */
        uint64_t *oc = st->occ;
        size_t no = st->occ_n;
        if (no > 16) {
            qsort(oc, no, sizeof *oc, cmp_u64);
        } else {
            for (size_t a = 1; a < no; a++)
                for (size_t b = a; b > 0 && oc[b - 1] > oc[b]; b--) {
                    uint64_t t = oc[b];
                    oc[b] = oc[b - 1];
                    oc[b - 1] = t;
                }
        }
        for (size_t k = 0; k < no; k++) {
            int s = (int)(oc[k] >> 32);
            size_t p = (uint32_t)oc[k], tl = v->len[v->spec[s]];
            if (!st->cov[p] && !st->cov[p + tl - 1]) { /* no overlap with anything taken before */
                memset(st->cov + p, 1, tl);
                m[p] = s;
            }
        }
        st->cl_n = 0;
    }
    if (st->cl_n > 1) qsort(st->cl_spec, (size_t)st->cl_n, sizeof *st->cl_spec, cmp_int);
    for (int k = 0; k < st->cl_n; k++) {
        int s = st->cl_spec[k];
        const uint8_t *tx = v->text[v->spec[s]];
        size_t tl = v->len[v->spec[s]];
        size_t q = cs;
        while (q + tl <= ce) {
            const uint8_t *hit = memmem(t + q, ce - q, tx, tl);
            if (!hit) break;
            size_t p = (size_t)(hit - t);
            if (!st->cov[p - cs] && !st->cov[p + tl - 1 - cs]) {
                memset(st->cov + (p - cs), 1, tl);
                m[p - cs] = s;
                q = p + tl;
            } else {
                q = p + 1;
            }
        }
    }
    for (size_t q = cs; q < ce;) {
        int s = m[q - cs];
        if (s < 0) {
            q++;
            continue;
        }
        if (*raw_from < q && raw_fragment(c, t + *raw_from, q - *raw_from, prev_special)) return -1;
        out_push(c->o, v->spec[s]);
        *prev_special = 1;
        q += v->len[v->spec[s]];
        *raw_from = q;
    }
    st->cl_n = 0;
    return 0;
}

static int tokenize_text(tok_ctx *c, const uint8_t *t, size_t n, int parse_special) {
    const g4_vocab *v = c->v;
    struct tok_state *st = c->st;
    int prev_special = 1;
    size_t raw_from = 0;
    if (parse_special ? v->n_spec : v->n_spec_always) {
        size_t cs = 0, ce = 0;
        int in_cluster = 0;
        st->cl_n = 0;
        for (size_t i = 0; i < n; i++) {
            if (in_cluster && i >= ce) {
                if (resolve_cluster(c, t, cs, ce, &raw_from, &prev_special)) return -1;
                in_cluster = 0;
            }
            if (!v->spec_first[t[i]]) continue;
            int32_t node = v->trie_root[t[i]];
            size_t j = i + 1;
            while (node >= 0) {
                int32_t s = v->trie_term[node];
                if (s >= 0 && (parse_special || v->spec_always[s])) {
                    if (!in_cluster) {
                        in_cluster = 1;
                        cs = i;
                        ce = j;
                        st->occ_n = 0;
                        st->occ_over = 0;
                        if (++st->gen == 0) {
                            memset(st->stamp, 0, (size_t)v->n_spec * sizeof *st->stamp);
                            st->gen = 1;
                        }
                    } else if (j > ce) {
                        ce = j;
                    }
                    if (!st->occ_over) {
                        if (st->occ_n == st->occ_cap &&
                            (st->occ_cap >= OCC_MAX || !grow((void **)&st->occ, &st->occ_cap, st->occ_n + 1, sizeof *st->occ)))
                            st->occ_over = 1;
                        else
                            st->occ[st->occ_n++] = (uint64_t)s << 32 | (uint32_t)(i - cs);
                    }
                    if (st->stamp[s] != st->gen) {
                        st->stamp[s] = st->gen;
                        st->cl_spec[st->cl_n++] = s;
                    }
                }
                if (j >= n) break;
                node = trie_child(v, node, t[j++]);
            }
        }
        if (in_cluster && resolve_cluster(c, t, cs, ce, &raw_from, &prev_special)) return -1;
    }
    if (raw_from < n && raw_fragment(c, t + raw_from, n - raw_from, &prev_special)) return -1;
    return 0;
}

/* ---- public entry points ---------------------------------------------------------------------------- */

size_t g4_tokenize_bound(size_t len) { return len > (SIZE_MAX - 2) / 3 ? SIZE_MAX : 3 * len + 2; }

static g4_status tokenize(const g4_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                          tok_out *o, g4_error *err) {
    if (!v) return g4_fail(err, G4_ERR_ARG, "tokenize: no vocabulary");
    if (!text && len) return g4_fail(err, G4_ERR_ARG, "tokenize: no text");
    if (len > ((size_t)1 << 30))
        return g4_fail(err, G4_ERR_ARG, "tokenize: %zu bytes of text in one call (1 GiB at most)", len);
    g4_vocab *mv = (g4_vocab *)v; /* the scratch state is the only thing that changes */
    struct tok_state *st = NULL;
    int own = 0, expected = 0;
    if (atomic_compare_exchange_strong(&mv->busy, &expected, 1)) {
        if (!mv->st) mv->st = state_new(v, 1);
        st = mv->st;
        if (!st) atomic_store(&mv->busy, 0);
    } else {
        st = state_new(v, 0);
        own = 1;
    }
    if (!st) return g4_fail(err, G4_ERR_NOMEM, "tokenize: out of memory");
    tok_ctx c = {v, st, o};
    if (add_bos && v->add_bos && v->bos >= 0) out_push(o, v->bos);
    int rc = tokenize_text(&c, (const uint8_t *)text, len, parse_special);
    if (!rc && add_bos && v->add_eos && v->eos >= 0) out_push(o, v->eos);
    if (own) {
        tok_state_free(st);
    } else {
        if (st->esc_cap > (16u << 20)) { /* do not keep a huge buffer around */
            free(st->esc);
            st->esc = NULL;
            st->esc_cap = 0;
        }
        atomic_store(&mv->busy, 0);
    }
    if (rc || o->oom) return g4_fail(err, G4_ERR_NOMEM, "tokenize: out of memory");
    return G4_OK;
}

g4_status g4_tokenize(const g4_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t *ids, size_t max_ids, size_t *n_ids, g4_error *err) {
    tok_out o = {ids, 0, ids ? max_ids : 0, 0, 0};
    g4_status s = tokenize(v, text, len, add_bos, parse_special, &o, err);
    if (n_ids) *n_ids = o.n;
    if (s) return s;
    if (o.n > o.cap)
        return g4_fail(err, G4_ERR_ARG, "tokenize: the text has %zu tokens, room for %zu", o.n, o.cap);
    return G4_OK;
}

g4_status g4_tokenize_alloc(const g4_vocab *v, const char *text, size_t len, int add_bos, int parse_special,
                            int32_t **ids, size_t *n_ids, g4_error *err) {
    *ids = NULL;
    if (n_ids) *n_ids = 0;
    tok_out o = {NULL, 0, 0, 1, 0};
    size_t guess = len / 3 + 16;
    o.ids = malloc(guess * sizeof *o.ids);
    if (!o.ids) return g4_fail(err, G4_ERR_NOMEM, "tokenize: out of memory");
    o.cap = guess;
    g4_status s = tokenize(v, text, len, add_bos, parse_special, &o, err);
    if (s) {
        free(o.ids);
        return s;
    }
    *ids = o.ids;
    if (n_ids) *n_ids = o.n;
    return G4_OK;
}
