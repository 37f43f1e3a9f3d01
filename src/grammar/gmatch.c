/* The matcher: a set of parse stacks over the compiled grammar, built lazily into a DFA.
 *
 * A stack frame is (element position, parent frame); frames are hash-consed, so a stack is one frame
 * id and equal stacks have equal ids. A state is the sorted set of the stacks' top frames (each top
 * points at a byte-set element) plus an "accepting" flag (some stack derived the whole root). States
 * are hash-consed too and each keeps a lazily filled transition table over the 256 bytes, so walking
 * a byte already seen from a state is one table lookup. The vocabulary trie (g4_gvocab) is a preorder
 * array of nodes with subtree ends: the mask is one linear pass that skips every subtree a
 * transition rules out. When the tables grow past a soft limit they are rebuilt around the current
 * state. */
#include "grammar/grammar_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TR_UNKNOWN (-2)
#define TR_DEAD (-1)
#define MAX_TOPS 4096
#define FR_SOFT (1u << 20)
#define ST_SOFT (1u << 14)
#define FR_HARD (1u << 23)
#define ST_HARD (1u << 17)
#define CLOSURE_MAX (1u << 21)
#define MASK_CACHE 8

typedef struct { uint32_t pos, parent; } gframe;
typedef struct { uint32_t off, n, acc, hash; } gstate;

struct g4_gmatch {
    const g4_grammar *g;
    gframe *fr;
    uint32_t n_fr, cap_fr;
    uint32_t *fr_ht, fr_htcap; /* frame id + 1 */
    uint32_t *tp;              /* tops of all states */
    size_t n_tp, cap_tp;
    gstate *st;
    int32_t **tr; /* per state: 256 transitions or NULL */
    uint32_t n_st, cap_st;
    uint32_t *st_ht, st_htcap; /* state id + 1 */
    int32_t cur;
    /* closure scratch */
    uint32_t *wk;
    size_t n_wk, cap_wk;
    uint32_t *tops;
    size_t n_tops, cap_tops;
    uint32_t *vis, *vis_stamp, vis_cap, stamp, n_vis;
    /* trie walk scratch */
    int32_t *dstk;
    size_t cap_dstk;
    /* allowed-token sets of recent states (a state recurs e.g. after every character of a string) */
    struct { const void *gv; int32_t state; int n_allowed; uint32_t *bits; } mc[MASK_CACHE];
    int mc_next;
    g4_status err;
    char msg[160];
};

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

static int set_err(g4_gmatch *m, g4_status code, const char *msg) {
    if (!m->err) {
        m->err = code;
        snprintf(m->msg, sizeof m->msg, "%s", msg);
    }
    return -1;
}

static inline uint32_t hash2(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

/* frame (pos, parent) -> id; UINT32_MAX on failure */
static uint32_t frame(g4_gmatch *m, uint32_t pos, uint32_t parent) {
    if (m->n_fr * 2 + 2 > m->fr_htcap) {
        if (m->n_fr >= FR_HARD) return set_err(m, G4_ERR_NOMEM, "grammar matcher: too many parse frames"), UINT32_MAX;
        uint32_t nc = m->fr_htcap ? m->fr_htcap * 2 : 1024;
        uint32_t *ht = calloc(nc, sizeof *ht);
        if (!ht) return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory"), UINT32_MAX;
        for (uint32_t i = 0; i < m->n_fr; i++) {
            uint32_t h = hash2(m->fr[i].pos, m->fr[i].parent) & (nc - 1);
            while (ht[h]) h = (h + 1) & (nc - 1);
            ht[h] = i + 1;
        }
        free(m->fr_ht);
        m->fr_ht = ht;
        m->fr_htcap = nc;
    }
    uint32_t h = hash2(pos, parent) & (m->fr_htcap - 1);
    while (m->fr_ht[h]) {
        uint32_t id = m->fr_ht[h] - 1;
        if (m->fr[id].pos == pos && m->fr[id].parent == parent) return id;
        h = (h + 1) & (m->fr_htcap - 1);
    }
    size_t cap = m->cap_fr;
    if (!grow((void **)&m->fr, &cap, (size_t)m->n_fr + 1, sizeof *m->fr))
        return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory"), UINT32_MAX;
    m->cap_fr = (uint32_t)cap;
    m->fr[m->n_fr].pos = pos;
    m->fr[m->n_fr].parent = parent;
    m->fr_ht[h] = m->n_fr + 1;
    return m->n_fr++;
}

static uint32_t state_hash(const uint32_t *tops, size_t n, uint32_t acc) {
    uint32_t h = acc ? 0x85EBCA6Bu : 0x27D4EB2Fu;
    for (size_t i = 0; i < n; i++) h = hash2(h, tops[i]);
    return h;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* interns the state of m->tops (sorted here) + acc; TR_DEAD if empty and not accepting; -3 on error */
static int32_t intern_state(g4_gmatch *m, uint32_t acc) {
    size_t n = m->n_tops;
    if (n > 1) {
        qsort(m->tops, n, sizeof *m->tops, cmp_u32);
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (m->tops[i] != m->tops[k - 1]) m->tops[k++] = m->tops[i];
        n = k;
    }
    if (n > MAX_TOPS) n = MAX_TOPS; /* sound: every kept stack still completes */
    if (n == 0 && !acc) return TR_DEAD;
    uint32_t h = state_hash(m->tops, n, acc);
    if (m->n_st * 2 + 2 > m->st_htcap) {
        if (m->n_st >= ST_HARD) return set_err(m, G4_ERR_NOMEM, "grammar matcher: too many states"), -3;
        uint32_t nc = m->st_htcap ? m->st_htcap * 2 : 256;
        uint32_t *ht = calloc(nc, sizeof *ht);
        if (!ht) return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory"), -3;
        for (uint32_t i = 0; i < m->n_st; i++) {
            uint32_t q = m->st[i].hash & (nc - 1);
            while (ht[q]) q = (q + 1) & (nc - 1);
            ht[q] = i + 1;
        }
        free(m->st_ht);
        m->st_ht = ht;
        m->st_htcap = nc;
    }
    uint32_t q = h & (m->st_htcap - 1);
    while (m->st_ht[q]) {
        uint32_t id = m->st_ht[q] - 1;
        const gstate *s = &m->st[id];
        if (s->hash == h && s->n == n && s->acc == acc && !memcmp(m->tp + s->off, m->tops, n * sizeof *m->tops))
            return (int32_t)id;
        q = (q + 1) & (m->st_htcap - 1);
    }
    size_t cap = m->cap_st, cap2 = m->cap_st;
    if (!grow((void **)&m->st, &cap, (size_t)m->n_st + 1, sizeof *m->st) ||
        !grow((void **)&m->tr, &cap2, (size_t)m->n_st + 1, sizeof *m->tr) ||
        !grow((void **)&m->tp, &m->cap_tp, m->n_tp + n, sizeof *m->tp))
        return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory"), -3;
    m->cap_st = (uint32_t)(cap < cap2 ? cap : cap2);
    gstate *s = &m->st[m->n_st];
    s->off = (uint32_t)m->n_tp;
    s->n = (uint32_t)n;
    s->acc = acc;
    s->hash = h;
    m->tr[m->n_st] = NULL;
    if (n) memcpy(m->tp + m->n_tp, m->tops, n * sizeof *m->tops);
    m->n_tp += n;
    m->st_ht[q] = m->n_st + 1;
    return (int32_t)m->n_st++;
}

/* closure scratch: work items are (pos, parent) pairs */
static int push_work(g4_gmatch *m, uint32_t pos, uint32_t parent) {
    /* visited set over (pos, parent) of this closure */
    if ((size_t)m->n_vis * 2 + 2 > m->vis_cap) {
        uint32_t nc = m->vis_cap ? m->vis_cap * 2 : 1024;
        if (nc > 4 * CLOSURE_MAX) return set_err(m, G4_ERR_NOMEM, "grammar matcher: closure too large");
        uint32_t *v = malloc((size_t)nc * 2 * sizeof *v), *s = calloc(nc, sizeof *s);
        if (!v || !s) {
            free(v);
            free(s);
            return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory");
        }
        /* rehash the live entries */
        for (uint32_t i = 0; i < m->vis_cap; i++)
            if (m->vis_stamp[i] == m->stamp) {
                uint32_t h = hash2(m->vis[2 * i], m->vis[2 * i + 1]) & (nc - 1);
                while (s[h] == m->stamp) h = (h + 1) & (nc - 1);
                s[h] = m->stamp;
                v[2 * h] = m->vis[2 * i];
                v[2 * h + 1] = m->vis[2 * i + 1];
            }
        free(m->vis);
        free(m->vis_stamp);
        m->vis = v;
        m->vis_stamp = s;
        m->vis_cap = nc;
    }
    uint32_t h = hash2(pos, parent) & (m->vis_cap - 1);
    while (m->vis_stamp[h] == m->stamp) {
        if (m->vis[2 * h] == pos && m->vis[2 * h + 1] == parent) return 0;
        h = (h + 1) & (m->vis_cap - 1);
    }
    m->vis_stamp[h] = m->stamp;
    m->n_vis++;
    m->vis[2 * h] = pos;
    m->vis[2 * h + 1] = parent;
    if (!grow((void **)&m->wk, &m->cap_wk, m->n_wk + 2, sizeof *m->wk))
        return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory");
    m->wk[m->n_wk++] = pos;
    m->wk[m->n_wk++] = parent;
    return 0;
}

static void closure_begin(g4_gmatch *m) {
    m->n_wk = 0;
    m->n_tops = 0;
    m->n_vis = 0;
    if (++m->stamp == 0) { /* wrapped: clear the stamps */
        if (m->vis_stamp) memset(m->vis_stamp, 0, m->vis_cap * sizeof *m->vis_stamp);
        m->stamp = 1;
    }
}

/* runs the closure of the queued items; returns the new state (or TR_DEAD), -3 on error */
static int32_t closure_run(g4_gmatch *m) {
    const g4_grammar *g = m->g;
    uint32_t acc = 0;
    size_t steps = 0;
    while (m->n_wk) {
        uint32_t parent = m->wk[--m->n_wk], pos = m->wk[--m->n_wk];
        if (++steps > CLOSURE_MAX) return set_err(m, G4_ERR_NOMEM, "grammar matcher: closure too large"), -3;
        uint32_t e = g->elems[pos];
        if (e == GS_END) {
            if (parent == UINT32_MAX) {
                acc = 1;
            } else if (push_work(m, m->fr[parent].pos, m->fr[parent].parent)) {
                return -3;
            }
        } else if (e & GS_CS) {
            uint32_t f = frame(m, pos, parent);
            if (f == UINT32_MAX) return -3;
            if (!grow((void **)&m->tops, &m->cap_tops, m->n_tops + 1, sizeof *m->tops))
                return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory"), -3;
            m->tops[m->n_tops++] = f;
        } else {
            uint32_t cont = parent;
            if (g->elems[pos + 1] != GS_END) { /* not a tail call: remember where to continue */
                cont = frame(m, pos + 1, parent);
                if (cont == UINT32_MAX) return -3;
            }
            for (uint32_t a = g->alt_off[e]; a < g->alt_off[e + 1]; a++)
                if (push_work(m, g->alt_start[a], cont)) return -3;
        }
    }
    return intern_state(m, acc);
}

static int32_t initial_state(g4_gmatch *m) {
    closure_begin(m);
    const g4_grammar *g = m->g;
    for (uint32_t a = g->alt_off[g->root]; a < g->alt_off[g->root + 1]; a++)
        if (push_work(m, g->alt_start[a], UINT32_MAX)) return -3;
    return closure_run(m);
}

/* transition of state s on byte c: a state, TR_DEAD, or -3 on error */
static int32_t step(g4_gmatch *m, int32_t s, unsigned c) {
    int32_t *t = m->tr[s];
    if (t && t[c] != TR_UNKNOWN) return t[c];
    if (!t) {
        t = malloc(256 * sizeof *t);
        if (!t) return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory"), -3;
        for (int i = 0; i < 256; i++) t[i] = TR_UNKNOWN;
        m->tr[s] = t;
    }
    closure_begin(m);
    const g4_grammar *g = m->g;
    for (uint32_t i = 0; i < m->st[s].n; i++) {
        uint32_t f = m->tp[m->st[s].off + i];
        uint32_t pos = m->fr[f].pos, cs = g->elems[pos] & ~GS_CS;
        if (g->cs[cs][c >> 3] >> (c & 7) & 1)
            if (push_work(m, pos + 1, m->fr[f].parent)) return -3;
    }
    int32_t ns = closure_run(m);
    if (ns == -3) return -3;
    m->tr[s][c] = ns; /* m->tr may have moved: index again */
    return ns;
}

static void tables_free(g4_gmatch *m) {
    for (int i = 0; i < MASK_CACHE; i++) m->mc[i].state = -1; /* state ids are about to change */
    for (uint32_t i = 0; i < m->n_st; i++) free(m->tr[i]);
    m->n_st = 0;
    m->n_tp = 0;
    m->n_fr = 0;
    if (m->st_ht) memset(m->st_ht, 0, m->st_htcap * sizeof *m->st_ht);
    if (m->fr_ht) memset(m->fr_ht, 0, m->fr_htcap * sizeof *m->fr_ht);
}

/* rebuilds the tables around the current state when they got large (between operations only) */
static int maybe_compact(g4_gmatch *m) {
    if (m->err) return -1;
    if (m->n_fr < FR_SOFT && m->n_st < ST_SOFT) return 0;
    /* copy the current stacks out: each as the chain of positions from the top */
    const gstate cs = m->st[m->cur];
    size_t total = 0;
    for (uint32_t i = 0; i < cs.n; i++)
        for (uint32_t f = m->tp[cs.off + i]; f != UINT32_MAX; f = m->fr[f].parent) total++;
    uint32_t *chain = malloc((total + cs.n + 1) * sizeof *chain);
    if (!chain) return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory");
    size_t k = 0;
    for (uint32_t i = 0; i < cs.n; i++) {
        size_t start = k;
        for (uint32_t f = m->tp[cs.off + i]; f != UINT32_MAX; f = m->fr[f].parent) chain[k++] = m->fr[f].pos;
        chain[k++] = UINT32_MAX; /* separator */
        (void)start;
    }
    uint32_t acc = cs.acc;
    tables_free(m);
    m->n_tops = 0;
    size_t i = 0;
    while (i < k) {
        size_t j = i;
        while (chain[j] != UINT32_MAX) j++;
        uint32_t parent = UINT32_MAX;
        for (size_t q = j; q-- > i;) {
            parent = frame(m, chain[q], parent);
            if (parent == UINT32_MAX) {
                free(chain);
                return -1;
            }
        }
        if (!grow((void **)&m->tops, &m->cap_tops, m->n_tops + 1, sizeof *m->tops)) {
            free(chain);
            return set_err(m, G4_ERR_NOMEM, "grammar matcher: out of memory");
        }
        m->tops[m->n_tops++] = parent;
        i = j + 1;
    }
    free(chain);
    int32_t s = intern_state(m, acc);
    if (s < 0) return set_err(m, G4_ERR_NOMEM, "grammar matcher: compaction failed");
    m->cur = s;
    return 0;
}

g4_status g4_gmatch_new(g4_gmatch **out, const g4_grammar *g, g4_error *err) {
    *out = NULL;
    if (!g) return g4_fail(err, G4_ERR_ARG, "g4_gmatch_new: no grammar");
    g4_gmatch *m = calloc(1, sizeof *m);
    if (!m) return g4_fail(err, G4_ERR_NOMEM, "grammar matcher: out of memory");
    m->g = g;
    for (int i = 0; i < MASK_CACHE; i++) m->mc[i].state = -1;
    m->cur = initial_state(m);
    if (m->cur < 0) {
        g4_status st = g4_fail(err, m->err ? m->err : G4_ERR_ARG, "%s", m->err ? m->msg : "grammar matches nothing");
        g4_gmatch_free(m);
        return st;
    }
    *out = m;
    return G4_OK;
}

void g4_gmatch_free(g4_gmatch *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->n_st; i++) free(m->tr[i]);
    free(m->fr);
    free(m->fr_ht);
    free(m->tp);
    free(m->st);
    free(m->tr);
    free(m->st_ht);
    free(m->wk);
    free(m->tops);
    free(m->vis);
    free(m->vis_stamp);
    free(m->dstk);
    for (int i = 0; i < MASK_CACHE; i++) free(m->mc[i].bits);
    free(m);
}

void g4_gmatch_reset(g4_gmatch *m) {
    tables_free(m);
    m->err = G4_OK;
    m->msg[0] = 0;
    m->cur = initial_state(m);
    if (m->cur < 0) m->cur = 0, set_err(m, G4_ERR_NOMEM, "grammar matcher: reset failed");
}

static int walk(g4_gmatch *m, const char *bytes, size_t n, int commit) {
    if (maybe_compact(m)) return 0;
    int32_t s = m->cur;
    for (size_t i = 0; i < n; i++) {
        s = step(m, s, (unsigned char)bytes[i]);
        if (s < 0) return 0;
    }
    if (commit) m->cur = s;
    return 1;
}

int g4_gmatch_accept(g4_gmatch *m, const char *bytes, size_t n) { return walk(m, bytes, n, 1); }
int g4_gmatch_check(g4_gmatch *m, const char *bytes, size_t n) { return walk(m, bytes, n, 0); }
int g4_gmatch_done(const g4_gmatch *m) { return !m->err && m->st[m->cur].acc; }
int g4_gmatch_can_continue(const g4_gmatch *m) { return !m->err && m->st[m->cur].n > 0; }
int g4_gmatch_alive(const g4_gmatch *m) { return g4_gmatch_done(m) || g4_gmatch_can_continue(m); }

int g4_gmatch_next_bytes(g4_gmatch *m, uint8_t set[32]) {
    memset(set, 0, 32);
    if (maybe_compact(m)) return -1;
    for (unsigned c = 0; c < 256; c++) {
        int32_t s = step(m, m->cur, c);
        if (s == -3) return -1;
        if (s >= 0) set[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    return 0;
}

static size_t state_remaining(const g4_gmatch *m, int32_t id) {
    const gstate *s = &m->st[id];
    if (s->acc) return 0;
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < s->n; i++) {
        uint64_t d = 0;
        for (uint32_t f = m->tp[s->off + i]; f != UINT32_MAX && d < best; f = m->fr[f].parent)
            d += m->g->rest[m->fr[f].pos];
        if (d < best) best = d;
    }
    return best >= SIZE_MAX ? SIZE_MAX - 1 : (size_t)best;
}

size_t g4_gmatch_min_remaining(const g4_gmatch *m) {
    if (m->err) return SIZE_MAX;
    return state_remaining(m, m->cur);
}

size_t g4_gmatch_cost_after(g4_gmatch *m, const char *bytes, size_t n) {
    if (maybe_compact(m)) return SIZE_MAX;
    int32_t s = m->cur;
    for (size_t i = 0; i < n; i++) {
        s = step(m, s, (unsigned char)bytes[i]);
        if (s < 0) return SIZE_MAX;
    }
    return state_remaining(m, s);
}

g4_status g4_gmatch_status(const g4_gmatch *m, g4_error *err) {
    if (!m->err) return G4_OK;
    return g4_fail(err, m->err, "%s", m->msg);
}

/* ---- vocabulary ---- */

typedef struct { uint32_t skip, tok_off; uint16_t tok_n, depth; uint8_t byte; } gnode;

struct g4_gvocab {
    int n_tokens;
    uint32_t *off, *len; /* bytes of token t: bytes[off[t] .. off[t] + len[t]) (len 0: never allowed) */
    char *bytes;
    uint8_t *eog;
    gnode *nodes;
    uint32_t n_nodes;
    int32_t *node_toks;
    uint32_t max_depth;
    int all_bytes;
};

typedef struct { const char *p; uint32_t n; int32_t id; } tokref;

static int cmp_tok(const void *a, const void *b) {
    const tokref *x = a, *y = b;
    uint32_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

g4_status g4_gvocab_new(g4_gvocab **out, const g4_vocab *v, g4_error *err) {
    *out = NULL;
    if (!v) return g4_fail(err, G4_ERR_ARG, "g4_gvocab_new: no vocabulary");
    int n = g4_vocab_n_tokens(v);
    if (n <= 0) return g4_fail(err, G4_ERR_ARG, "g4_gvocab_new: empty vocabulary");
    g4_gvocab *gv = calloc(1, sizeof *gv);
    tokref *refs = NULL;
    uint32_t *path = NULL;
    g4_status st = G4_OK;
    if (!gv) return g4_fail(err, G4_ERR_NOMEM, "gvocab: out of memory");
    gv->n_tokens = n;
    gv->off = calloc((size_t)n, sizeof *gv->off);
    gv->len = calloc((size_t)n, sizeof *gv->len);
    gv->eog = calloc((size_t)n, 1);
    refs = malloc((size_t)n * sizeof *refs);
    if (!gv->off || !gv->len || !gv->eog || !refs) goto nomem;
    size_t total = 0, cap = 0;
    char buf[256];
    for (int t = 0; t < n; t++) {
        if (g4_vocab_is_eog(v, t)) {
            gv->eog[t] = 1;
            continue;
        }
        if (g4_vocab_is_control(v, t)) continue;
        size_t len = g4_token_to_piece(v, t, 0, buf, sizeof buf);
        if (len == 0 || len > 65535) continue;
        if (!grow((void **)&gv->bytes, &cap, total + len, 1)) goto nomem;
        if (len > sizeof buf) {
            size_t l2 = g4_token_to_piece(v, t, 0, gv->bytes + total, len);
            if (l2 != len) continue;
        } else {
            memcpy(gv->bytes + total, buf, len);
        }
        gv->off[t] = (uint32_t)total;
        gv->len[t] = (uint32_t)len;
        total += len;
    }
    size_t nr = 0;
    for (int t = 0; t < n; t++)
        if (gv->len[t]) {
            refs[nr].p = gv->bytes + gv->off[t];
            refs[nr].n = gv->len[t];
            refs[nr].id = t;
            nr++;
        }
    qsort(refs, nr, sizeof *refs, cmp_tok);
    gv->node_toks = malloc((nr + 1) * sizeof *gv->node_toks);
    size_t ncap = 0, n_nodes = 0;
    uint32_t maxlen = 1;
    for (size_t i = 0; i < nr; i++) maxlen = refs[i].n > maxlen ? refs[i].n : maxlen;
    path = malloc(((size_t)maxlen + 1) * sizeof *path);
    if (!gv->node_toks || !path) goto nomem;
    uint32_t plen = 0; /* open nodes path[0..plen) at depths 1..plen */
    uint8_t single[256] = {0};
    for (size_t i = 0; i < nr; i++) {
        uint32_t lcp = 0;
        if (i > 0) {
            uint32_t mn = refs[i - 1].n < refs[i].n ? refs[i - 1].n : refs[i].n;
            while (lcp < mn && refs[i - 1].p[lcp] == refs[i].p[lcp]) lcp++;
        }
        while (plen > lcp) gv->nodes[path[--plen]].skip = (uint32_t)n_nodes;
        while (plen < refs[i].n) {
            if (!grow((void **)&gv->nodes, &ncap, n_nodes + 1, sizeof *gv->nodes)) goto nomem;
            gnode *nd = &gv->nodes[n_nodes];
            nd->byte = (uint8_t)refs[i].p[plen];
            nd->depth = (uint16_t)(plen + 1);
            nd->tok_off = 0;
            nd->tok_n = 0;
            nd->skip = 0;
            path[plen++] = (uint32_t)n_nodes++;
        }
        gnode *last = &gv->nodes[path[plen - 1]];
        if (last->tok_n == 0) last->tok_off = (uint32_t)i;
        if (last->tok_n < 65535) last->tok_n++;
        gv->node_toks[i] = refs[i].id;
        if (refs[i].n == 1) single[(unsigned char)refs[i].p[0]] = 1;
    }
    while (plen > 0) gv->nodes[path[--plen]].skip = (uint32_t)n_nodes;
    gv->n_nodes = (uint32_t)n_nodes;
    gv->max_depth = maxlen;
    gv->all_bytes = 1;
    for (int c = 0; c < 256; c++) gv->all_bytes &= single[c];
    free(refs);
    free(path);
    *out = gv;
    return G4_OK;
nomem:
    st = g4_fail(err, G4_ERR_NOMEM, "gvocab: out of memory");
    free(refs);
    free(path);
    g4_gvocab_free(gv);
    return st;
}

void g4_gvocab_free(g4_gvocab *gv) {
    if (!gv) return;
    free(gv->off);
    free(gv->len);
    free(gv->bytes);
    free(gv->eog);
    free(gv->nodes);
    free(gv->node_toks);
    free(gv);
}

int g4_gvocab_n_tokens(const g4_gvocab *gv) { return gv->n_tokens; }
int g4_gvocab_has_all_bytes(const g4_gvocab *gv) { return gv->all_bytes; }

const char *g4_gvocab_token_bytes(const g4_gvocab *gv, int32_t tok, size_t *len) {
    if (tok < 0 || tok >= gv->n_tokens || !gv->len[tok]) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = gv->len[tok];
    return gv->bytes + gv->off[tok];
}

int g4_gmatch_token_ok(g4_gmatch *m, const g4_gvocab *gv, int32_t tok) {
    if (tok < 0 || tok >= gv->n_tokens || m->err) return 0;
    if (gv->eog[tok]) return g4_gmatch_done(m);
    if (!gv->len[tok]) return 0;
    return walk(m, gv->bytes + gv->off[tok], gv->len[tok], 0);
}

int g4_gmatch_accept_token(g4_gmatch *m, const g4_gvocab *gv, int32_t tok) {
    if (tok < 0 || tok >= gv->n_tokens || m->err) return 0;
    if (gv->eog[tok]) return g4_gmatch_done(m);
    if (!gv->len[tok]) return 0;
    return walk(m, gv->bytes + gv->off[tok], gv->len[tok], 1);
}

g4_status g4_gmatch_allowed(g4_gmatch *m, const g4_gvocab *gv, uint32_t *bits, int *n_allowed, g4_error *err) {
    size_t nw = ((size_t)gv->n_tokens + 31) / 32;
    memset(bits, 0, nw * sizeof *bits);
    if (n_allowed) *n_allowed = 0;
    if (maybe_compact(m)) return g4_gmatch_status(m, err);
    for (int i = 0; i < MASK_CACHE; i++)
        if (m->mc[i].state == m->cur && m->mc[i].gv == gv) {
            memcpy(bits, m->mc[i].bits, nw * sizeof *bits);
            if (n_allowed) *n_allowed = m->mc[i].n_allowed;
            return G4_OK;
        }
    if (!grow((void **)&m->dstk, &m->cap_dstk, (size_t)gv->max_depth + 1, sizeof *m->dstk))
        return g4_fail(err, G4_ERR_NOMEM, "grammar matcher: out of memory");
    int32_t *ds = m->dstk;
    ds[0] = m->cur;
    const gnode *nd = gv->nodes;
    int cnt = 0;
    for (uint32_t i = 0; i < gv->n_nodes;) {
        int32_t from = ds[nd[i].depth - 1];
        int32_t s;
        const int32_t *t = m->tr[from];
        if (t && t[nd[i].byte] != TR_UNKNOWN) {
            s = t[nd[i].byte];
        } else {
            s = step(m, from, nd[i].byte);
            if (s == -3) return g4_gmatch_status(m, err);
        }
        if (s < 0) {
            i = nd[i].skip;
            continue;
        }
        ds[nd[i].depth] = s;
        for (uint32_t k = 0; k < nd[i].tok_n; k++) {
            int32_t id = gv->node_toks[nd[i].tok_off + k];
            bits[id >> 5] |= 1u << (id & 31);
        }
        cnt += nd[i].tok_n;
        i++;
    }
    if (m->st[m->cur].acc)
        for (int t = 0; t < gv->n_tokens; t++)
            if (gv->eog[t]) {
                bits[t >> 5] |= 1u << (t & 31);
                cnt++;
            }
    if (n_allowed) *n_allowed = cnt;
    /* remember it (the cache is an optimisation: without memory it is simply skipped) */
    int slot = m->mc_next;
    if (m->mc[slot].gv != gv || !m->mc[slot].bits) {
        free(m->mc[slot].bits);
        m->mc[slot].bits = malloc(nw * sizeof *bits);
        m->mc[slot].gv = gv;
    }
    if (m->mc[slot].bits) {
        memcpy(m->mc[slot].bits, bits, nw * sizeof *bits);
        m->mc[slot].state = m->cur;
        m->mc[slot].n_allowed = cnt;
        m->mc_next = (slot + 1) % MASK_CACHE;
    } else {
        m->mc[slot].state = -1;
    }
    return G4_OK;
}

void g4_gmatch_forget_masks(g4_gmatch *m) {
    for (int i = 0; i < MASK_CACHE; i++) m->mc[i].state = -1;
}

g4_status g4_gmatch_mask(g4_gmatch *m, const g4_gvocab *gv, float *logits, g4_error *err) {
    size_t nw = ((size_t)gv->n_tokens + 31) / 32;
    uint32_t *bits = malloc(nw * sizeof *bits);
    if (!bits) return g4_fail(err, G4_ERR_NOMEM, "grammar mask: out of memory");
    g4_status st = g4_gmatch_allowed(m, gv, bits, NULL, err);
    if (st == G4_OK)
        for (size_t w = 0; w < nw; w++) {
            uint32_t x = bits[w];
            if (x == 0xFFFFFFFFu) continue;
            size_t base = w * 32;
            if (x == 0 && base + 32 <= (size_t)gv->n_tokens) { /* the common case: a whole word refused */
                float *l = logits + base;
                for (int k = 0; k < 32; k++) l[k] = -INFINITY;
                continue;
            }
            for (int k = 0; k < 32 && base + (size_t)k < (size_t)gv->n_tokens; k++)
                if (!(x >> k & 1)) logits[base + (size_t)k] = -INFINITY;
        }
    free(bits);
    return st;
}
