/* Grammar builder: rules, byte sets, repetitions, UTF-8 character classes, and the final pass that
 * keeps only productive alternatives, rejects left recursion and flattens the rules for the matcher. */
#include "grammar/grammar_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

g4_status gb_fail(gb *b, g4_status code, const char *fmt, ...) {
    if (b->st) return b->st;
    b->st = code;
    if (b->err) {
        b->err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err->msg, sizeof b->err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

g4_status gb_init(gb *b, g4_error *err) {
    memset(b, 0, sizeof *b);
    b->err = err;
    uint32_t none = gb_rule(b), eps = gb_rule(b);
    gb_add(b, eps, NULL, 0);
    if (b->st || none != GR_NONE || eps != GR_EPS) return b->st ? b->st : gb_fail(b, G4_ERR_NOMEM, "grammar: init");
    return G4_OK;
}

void gb_free(gb *b) {
    for (uint32_t i = 0; i < b->n_rules; i++) free(b->rules[i].alts);
    free(b->rules);
    free(b->pool);
    free(b->cs);
    free(b->cs_ht);
    memset(b, 0, sizeof *b);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

uint32_t gb_rule(gb *b) {
    if (b->st) return GR_NONE;
    if (b->n_rules >= G_MAX_RULES)
        return gb_fail(b, G4_ERR_UNSUPPORTED, "schema too large: more than %u grammar rules", G_MAX_RULES), GR_NONE;
    size_t cap = b->cap_rules;
    if (!grow((void **)&b->rules, &cap, (size_t)b->n_rules + 1, sizeof *b->rules))
        return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
    b->cap_rules = (uint32_t)cap;
    memset(&b->rules[b->n_rules], 0, sizeof *b->rules);
    return b->n_rules++;
}

void gb_add(gb *b, uint32_t rule, const uint32_t *syms, size_t n) {
    if (b->st || rule == GR_NONE || rule >= b->n_rules) return;
    if (b->n_pool + n > G_MAX_SYMS) {
        gb_fail(b, G4_ERR_UNSUPPORTED, "schema too large: more than %u grammar symbols", G_MAX_SYMS);
        return;
    }
    grule *r = &b->rules[rule];
    size_t cap = r->cap;
    if (!grow((void **)&r->alts, &cap, (size_t)r->n + 1, sizeof *r->alts) ||
        !grow((void **)&b->pool, &b->cap_pool, b->n_pool + n + 1, sizeof *b->pool)) {
        gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory");
        return;
    }
    r->cap = (uint32_t)cap;
    if (n) memcpy(b->pool + b->n_pool, syms, n * sizeof *syms);
    r->alts[r->n].off = (uint32_t)b->n_pool;
    r->alts[r->n].len = (uint32_t)n;
    r->n++;
    b->n_pool += n;
}

#define GB_MAXV 64
void gb_addv(gb *b, uint32_t rule, int n, ...) {
    uint32_t s[GB_MAXV];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < GB_MAXV; i++) s[i] = va_arg(ap, uint32_t);
    va_end(ap);
    gb_add(b, rule, s, (size_t)(n < GB_MAXV ? n : GB_MAXV));
}

uint32_t gb_seq(gb *b, const uint32_t *syms, size_t n) {
    if (n == 1) return syms[0];
    if (n == 0) return GR_EPS;
    for (size_t i = 0; i < n; i++)
        if (syms[i] == GR_NONE) return GR_NONE;
    uint32_t r = gb_rule(b);
    gb_add(b, r, syms, n);
    return r;
}

uint32_t gb_seqv(gb *b, int n, ...) {
    uint32_t s[GB_MAXV];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < GB_MAXV; i++) s[i] = va_arg(ap, uint32_t);
    va_end(ap);
    return gb_seq(b, s, (size_t)(n < GB_MAXV ? n : GB_MAXV));
}

uint32_t gb_altv(gb *b, int n, ...) {
    uint32_t r = gb_rule(b);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        uint32_t s = va_arg(ap, uint32_t);
        if (s != GR_NONE) gb_add(b, r, &s, 1);
    }
    va_end(ap);
    return r;
}

static uint32_t cs_hash(const uint8_t bm[32]) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 32; i++) h = (h ^ bm[i]) * 16777619u;
    return h;
}

uint32_t gb_set(gb *b, const uint8_t bm[32]) {
    if (b->st) return GR_NONE;
    int empty = 1;
    for (int i = 0; i < 32; i++) empty &= bm[i] == 0;
    if (empty) return GR_NONE;
    if (b->n_cs * 2 + 2 > b->cs_htcap) {
        uint32_t nc = b->cs_htcap ? b->cs_htcap * 2 : 256;
        uint32_t *ht = calloc(nc, sizeof *ht);
        if (!ht) return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
        for (uint32_t i = 0; i < b->n_cs; i++) {
            uint32_t h = cs_hash(b->cs[i]) & (nc - 1);
            while (ht[h]) h = (h + 1) & (nc - 1);
            ht[h] = i + 1;
        }
        free(b->cs_ht);
        b->cs_ht = ht;
        b->cs_htcap = nc;
    }
    uint32_t h = cs_hash(bm) & (b->cs_htcap - 1);
    while (b->cs_ht[h]) {
        uint32_t id = b->cs_ht[h] - 1;
        if (!memcmp(b->cs[id], bm, 32)) return GS_CS | id;
        h = (h + 1) & (b->cs_htcap - 1);
    }
    size_t cap = b->cap_cs;
    if (!grow((void **)&b->cs, &cap, (size_t)b->n_cs + 1, 32))
        return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
    b->cap_cs = (uint32_t)cap;
    memcpy(b->cs[b->n_cs], bm, 32);
    b->cs_ht[h] = b->n_cs + 1;
    return GS_CS | b->n_cs++;
}

uint32_t gb_range(gb *b, unsigned lo, unsigned hi) {
    uint8_t bm[32] = {0};
    for (unsigned c = lo; c <= hi && c < 256; c++) bm[c >> 3] |= (uint8_t)(1u << (c & 7));
    return gb_set(b, bm);
}

uint32_t gb_byte(gb *b, unsigned c) { return gb_range(b, c, c); }

uint32_t gb_bytes_of(gb *b, const char *chars) {
    uint8_t bm[32] = {0};
    for (const unsigned char *p = (const unsigned char *)chars; *p; p++) bm[*p >> 3] |= (uint8_t)(1u << (*p & 7));
    return gb_set(b, bm);
}

uint32_t gb_lit(gb *b, const char *s, size_t n) {
    if (n == 0) return GR_EPS;
    if (b->st) return GR_NONE;
    if (n > G_MAX_SYMS) return gb_fail(b, G4_ERR_UNSUPPORTED, "schema too large: literal of %zu bytes", n), GR_NONE;
    uint32_t *syms = malloc(n * sizeof *syms);
    if (!syms) return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
    for (size_t i = 0; i < n; i++) syms[i] = gb_byte(b, (unsigned char)s[i]);
    uint32_t r = gb_seq(b, syms, n);
    free(syms);
    return r;
}

uint32_t gb_opt(gb *b, uint32_t sym) {
    if (sym == GR_EPS) return GR_EPS;
    return gb_altv(b, 2, sym, GR_EPS);
}

/* unit repeated min..max times (max < 0: unbounded), no separator */
static uint32_t rep_plain(gb *b, uint32_t unit, long min, long max) {
    if (b->st) return GR_NONE;
    uint32_t tail;
    if (max < 0) {
        tail = gb_rule(b);
        gb_addv(b, tail, 2, unit, tail);
        gb_add(b, tail, NULL, 0);
    } else {
        tail = GR_EPS;
        for (long k = 0; k < max - min && !b->st; k++) {
            uint32_t r = gb_rule(b);
            gb_addv(b, r, 2, unit, tail);
            gb_add(b, r, NULL, 0);
            tail = r;
        }
    }
    if (min == 0) return tail;
    uint32_t *syms = malloc(((size_t)min + 1) * sizeof *syms);
    if (!syms) return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
    for (long i = 0; i < min; i++) syms[i] = unit;
    syms[min] = tail;
    uint32_t r = gb_seq(b, syms, (size_t)min + (tail != GR_EPS));
    free(syms);
    return r;
}

uint32_t gb_rep(gb *b, uint32_t sym, long min, long max, uint32_t sep) {
    if (b->st) return GR_NONE;
    if (min < 0) min = 0;
    if (min > G_MAX_REP || max > G_MAX_REP)
        return gb_fail(b, G4_ERR_UNSUPPORTED, "schema too large: repetition bound %ld above %d", min > max ? min : max,
                       G_MAX_REP),
               GR_NONE;
    if (max >= 0 && max < min) return GR_NONE;
    if (max == 0) return GR_EPS;
    if (sym == GR_NONE) return min == 0 ? GR_EPS : GR_NONE;
    if (!sep) return rep_plain(b, sym, min, max);
    uint32_t unit = gb_seqv(b, 2, sep, sym);
    uint32_t tail = rep_plain(b, unit, min ? min - 1 : 0, max < 0 ? -1 : max - 1);
    uint32_t one = tail == GR_EPS ? sym : gb_seqv(b, 2, sym, tail);
    return min == 0 ? gb_opt(b, one) : one;
}

/* ---- UTF-8 character classes ---- */

static int enc_utf8(uint32_t c, uint8_t *o) {
    if (c < 0x80) { o[0] = (uint8_t)c; return 1; }
    if (c < 0x800) { o[0] = (uint8_t)(0xC0 | c >> 6); o[1] = (uint8_t)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | c >> 12); o[1] = (uint8_t)(0x80 | ((c >> 6) & 63)); o[2] = (uint8_t)(0x80 | (c & 63));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | c >> 18); o[1] = (uint8_t)(0x80 | ((c >> 12) & 63));
    o[2] = (uint8_t)(0x80 | ((c >> 6) & 63)); o[3] = (uint8_t)(0x80 | (c & 63));
    return 4;
}

/* both ends encode to n bytes; adds alternatives of byte-range sequences to rule r */
static void cps_split(gb *b, uint32_t r, uint32_t lo, uint32_t hi, int n) {
    if (b->st) return;
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if (lo & m) {
                cps_split(b, r, lo, lo | m, n);
                cps_split(b, r, (lo | m) + 1, hi, n);
                return;
            }
            if ((hi & m) != m) {
                cps_split(b, r, lo, (hi & ~m) - 1, n);
                cps_split(b, r, hi & ~m, hi, n);
                return;
            }
        }
    }
    uint8_t a[4], z[4];
    enc_utf8(lo, a);
    enc_utf8(hi, z);
    uint32_t s[4];
    for (int i = 0; i < n; i++) s[i] = gb_range(b, a[i], z[i]);
    gb_add(b, r, s, (size_t)n);
}

static int cmp_u32pair(const void *x, const void *y) {
    const uint32_t *a = x, *c = y;
    return a[0] < c[0] ? -1 : a[0] > c[0];
}

uint32_t gb_cps(gb *b, const uint32_t *ranges, size_t n_pairs) {
    if (b->st) return GR_NONE;
    uint32_t *v = malloc((n_pairs + 1) * 2 * sizeof *v);
    if (!v) return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
    size_t n = 0;
    for (size_t i = 0; i < n_pairs; i++) {
        uint32_t lo = ranges[2 * i], hi = ranges[2 * i + 1];
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        if (lo > hi) continue;
        v[2 * n] = lo;
        v[2 * n + 1] = hi;
        n++;
    }
    qsort(v, n, 2 * sizeof *v, cmp_u32pair);
    uint32_t r = gb_rule(b);
    static const uint32_t bounds[][3] = {{0, 0x7F, 1}, {0x80, 0x7FF, 2}, {0x800, 0xD7FF, 3}, {0xE000, 0xFFFF, 3},
                                         {0x10000, 0x10FFFF, 4}};
    size_t i = 0;
    while (i < n) {
        uint32_t lo = v[2 * i], hi = v[2 * i + 1];
        i++;
        while (i < n && v[2 * i] <= hi + 1) { /* merge overlapping / adjacent */
            if (v[2 * i + 1] > hi) hi = v[2 * i + 1];
            i++;
        }
        for (int k = 0; k < 5; k++) {
            uint32_t a = lo > bounds[k][0] ? lo : bounds[k][0], z = hi < bounds[k][1] ? hi : bounds[k][1];
            if (a <= z) cps_split(b, r, a, z, (int)bounds[k][2]);
        }
    }
    free(v);
    return r;
}

/* ---- JSON pieces ---- */

uint32_t gb_digit(gb *b) {
    if (!b->r_digit) b->r_digit = gb_range(b, '0', '9');
    return b->r_digit;
}

uint32_t gb_strchar(gb *b) {
    if (b->r_strchar) return b->r_strchar;
    static const uint32_t raw[] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x10FFFF};
    uint32_t rawr = gb_cps(b, raw, 3);
    uint32_t H = gb_bytes_of(b, "0123456789abcdefABCDEF");
    uint32_t nz = gb_bytes_of(b, "123456789abcdefABCDEF");
    /* \uXXXX without 0000 and without surrogates D800-DFFF */
    uint32_t hex4 = gb_rule(b);
    gb_addv(b, hex4, 4, gb_bytes_of(b, "123456789abcABCefEF"), H, H, H);
    gb_addv(b, hex4, 4, gb_bytes_of(b, "dD"), gb_range(b, '0', '7'), H, H);
    uint32_t z3 = gb_rule(b); /* after "0": three digits, not all zero */
    gb_addv(b, z3, 3, nz, H, H);
    uint32_t z2 = gb_rule(b);
    gb_addv(b, z2, 2, nz, H);
    uint32_t z1 = gb_rule(b);
    gb_addv(b, z1, 2, gb_byte(b, '0'), nz);
    gb_addv(b, z2, 1, z1); /* "0" "0" nz */
    gb_addv(b, z3, 2, gb_byte(b, '0'), z2);
    gb_addv(b, hex4, 2, gb_byte(b, '0'), z3);
    uint32_t esc = gb_rule(b);
    gb_addv(b, esc, 1, gb_bytes_of(b, "\"\\/bfnrt"));
    gb_addv(b, esc, 2, gb_byte(b, 'u'), hex4);
    uint32_t r = gb_rule(b);
    gb_addv(b, r, 1, rawr);
    gb_addv(b, r, 2, gb_byte(b, '\\'), esc);
    if (!b->st) b->r_strchar = r;
    return r;
}

uint32_t gb_json_char(gb *b, uint32_t c) {
    char t[8];
    switch (c) {
    case '"': return gb_lit(b, "\\\"", 2);
    case '\\': return gb_lit(b, "\\\\", 2);
    case '\b': return gb_lit(b, "\\b", 2);
    case '\f': return gb_lit(b, "\\f", 2);
    case '\n': return gb_lit(b, "\\n", 2);
    case '\r': return gb_lit(b, "\\r", 2);
    case '\t': return gb_lit(b, "\\t", 2);
    default: break;
    }
    if (c == 0 || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) return GR_NONE;
    if (c < 0x20) {
        snprintf(t, sizeof t, "\\u%04x", (unsigned)c);
        return gb_lit(b, t, 6);
    }
    uint8_t o[4];
    int n = enc_utf8(c, o);
    return gb_lit(b, (const char *)o, (size_t)n);
}

uint32_t gb_json_cps(gb *b, const uint32_t *ranges, size_t n_pairs) {
    if (b->st) return GR_NONE;
    /* raw part: ranges minus 0x00-0x1F, '"', '\\' */
    uint32_t *v = malloc((n_pairs * 3 + 1) * 2 * sizeof *v);
    if (!v) return gb_fail(b, G4_ERR_NOMEM, "grammar: out of memory"), GR_NONE;
    static const uint32_t safe[] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x10FFFF};
    size_t n = 0;
    for (size_t i = 0; i < n_pairs; i++)
        for (int k = 0; k < 3; k++) {
            uint32_t lo = ranges[2 * i] > safe[2 * k] ? ranges[2 * i] : safe[2 * k];
            uint32_t hi = ranges[2 * i + 1] < safe[2 * k + 1] ? ranges[2 * i + 1] : safe[2 * k + 1];
            if (lo <= hi) { v[2 * n] = lo; v[2 * n + 1] = hi; n++; }
        }
    uint32_t r = gb_rule(b);
    if (n) gb_addv(b, r, 1, gb_cps(b, v, n));
    free(v);
    uint8_t special[0x5D] = {0};
    for (size_t i = 0; i < n_pairs; i++)
        for (uint32_t c = ranges[2 * i]; c <= ranges[2 * i + 1] && c < 0x5D; c++)
            if (c < 0x20 || c == '"' || c == '\\') special[c] = 1;
    for (uint32_t c = 0; c < 0x5D; c++)
        if (special[c]) {
            uint32_t s = gb_json_char(b, c);
            if (s != GR_NONE) gb_add(b, r, &s, 1);
        }
    return r;
}

/* ---- finishing ---- */

static uint32_t sat_add(uint32_t a, uint32_t c) {
    uint64_t s = (uint64_t)a + c;
    return s >= G_INF ? G_INF : (uint32_t)s;
}

static uint32_t sym_min(const uint32_t *rmin, uint32_t s) { return (s & GS_CS) ? 1 : rmin[s]; }

g4_status gb_finish(gb *b, uint32_t root, g4_grammar **out, g4_error *err) {
    *out = NULL;
    if (b->st) return b->st;
    uint32_t nr = b->n_rules;
    uint32_t *rmin = malloc(nr * sizeof *rmin), *order = malloc(nr * sizeof *order);
    uint32_t *stk = malloc(nr * sizeof *stk), *it = malloc(nr * sizeof *it), *ij = malloc(nr * sizeof *ij);
    uint8_t *mark = calloc(nr, 1);
    g4_grammar *g = calloc(1, sizeof *g);
    g4_status st = G4_OK;
    if (!rmin || !order || !stk || !it || !ij || !mark || !g) {
        st = g4_fail(err, G4_ERR_NOMEM, "grammar: out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < nr; i++) rmin[i] = G_INF;
    /* postorder of the rules reachable from the root (iterative DFS; ia/ij: alternative and symbol) */
    uint32_t n_order = 0, sp = 0;
    stk[sp] = root;
    it[sp] = 0;
    ij[sp++] = 0;
    mark[root] = 1;
    while (sp) {
        uint32_t r = stk[sp - 1];
        const grule *ru = &b->rules[r];
        while (it[sp - 1] < ru->n && ij[sp - 1] >= ru->alts[it[sp - 1]].len) {
            it[sp - 1]++;
            ij[sp - 1] = 0;
        }
        if (it[sp - 1] >= ru->n) {
            order[n_order++] = r;
            sp--;
            continue;
        }
        uint32_t s = b->pool[ru->alts[it[sp - 1]].off + ij[sp - 1]++];
        if (!(s & GS_CS) && !mark[s]) {
            mark[s] = 1;
            stk[sp] = s;
            it[sp] = 0;
            ij[sp++] = 0;
        }
    }
    /* fewest bytes each rule derives: passes in postorder until nothing changes */
    uint64_t work = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t i = 0; i < n_order; i++) {
            uint32_t r = order[i];
            const grule *ru = &b->rules[r];
            uint32_t best = rmin[r];
            for (uint32_t a = 0; a < ru->n; a++) {
                uint32_t m = 0;
                const uint32_t *p = b->pool + ru->alts[a].off;
                for (uint32_t j = 0; j < ru->alts[a].len && m != G_INF; j++) m = sat_add(m, sym_min(rmin, p[j]));
                if (m < best) best = m;
            }
            work += ru->n + 1;
            if (best < rmin[r]) {
                rmin[r] = best;
                changed = 1;
            }
        }
        work += b->n_pool;
        if (work > 400000000ull) {
            st = g4_fail(err, G4_ERR_UNSUPPORTED, "schema too complex (grammar analysis exceeded its work limit)");
            goto done;
        }
    }
    if (rmin[root] == G_INF) {
        st = g4_fail(err, G4_ERR_ARG, "schema cannot be satisfied by any (finite) JSON document");
        goto done;
    }
    /* left recursion: a rule reaching itself through leading symbols that derive nothing */
    memset(mark, 0, nr); /* 0 unseen, 1 on stack, 2 finished */
    for (uint32_t i = 0; i < n_order; i++) {
        uint32_t start = order[i];
        if (mark[start] || rmin[start] == G_INF) continue;
        sp = 0;
        stk[sp] = start;
        it[sp] = 0;
        ij[sp++] = 0;
        mark[start] = 1;
        while (sp) {
            uint32_t r = stk[sp - 1];
            const grule *ru = &b->rules[r];
            /* next left-corner symbol of a productive alternative of r */
            uint32_t s = GS_END;
            while (it[sp - 1] < ru->n) {
                const uint32_t *p = b->pool + ru->alts[it[sp - 1]].off;
                uint32_t len = ru->alts[it[sp - 1]].len, j = ij[sp - 1];
                if (j == 0) {
                    uint32_t prod = 1;
                    for (uint32_t q = 0; q < len; q++) prod &= sym_min(rmin, p[q]) != G_INF;
                    if (!prod) j = len;
                }
                if (j < len && !(p[j] & GS_CS) && (j == 0 || rmin[p[j - 1]] == 0)) {
                    s = p[j];
                    ij[sp - 1] = j + 1;
                    break;
                }
                it[sp - 1]++;
                ij[sp - 1] = 0;
            }
            if (s == GS_END) {
                mark[r] = 2;
                sp--;
                continue;
            }
            if (mark[s] == 1) {
                st = g4_fail(err, G4_ERR_ARG,
                             "schema is left-recursive: a $ref cycle that produces no text before recursing");
                goto done;
            }
            if (!mark[s]) {
                mark[s] = 1;
                stk[sp] = s;
                it[sp] = 0;
                ij[sp++] = 0;
            }
        }
    }
    /* flatten the productive alternatives */
    size_t n_el = 0, n_alt = 0;
    for (uint32_t r = 0; r < nr; r++)
        for (uint32_t a = 0; a < b->rules[r].n; a++) {
            n_el += b->rules[r].alts[a].len + 1;
            n_alt++;
        }
    g->elems = malloc(n_el * sizeof *g->elems);
    g->rest = malloc(n_el * sizeof *g->rest);
    g->alt_start = malloc((n_alt + 1) * sizeof *g->alt_start);
    g->alt_off = malloc(((size_t)nr + 1) * sizeof *g->alt_off);
    g->cs = malloc(((size_t)b->n_cs + 1) * 32);
    if (!g->elems || !g->rest || !g->alt_start || !g->alt_off || !g->cs) {
        st = g4_fail(err, G4_ERR_NOMEM, "grammar: out of memory");
        goto done;
    }
    if (b->n_cs) memcpy(g->cs, b->cs, (size_t)b->n_cs * 32);
    g->n_cs = b->n_cs;
    size_t e = 0;
    uint32_t na = 0;
    for (uint32_t r = 0; r < nr; r++) {
        g->alt_off[r] = na;
        if (rmin[r] == G_INF) continue;
        for (uint32_t a = 0; a < b->rules[r].n; a++) {
            const uint32_t *p = b->pool + b->rules[r].alts[a].off;
            uint32_t len = b->rules[r].alts[a].len, prod = 1;
            for (uint32_t j = 0; j < len; j++) prod &= sym_min(rmin, p[j]) != G_INF;
            if (!prod) continue;
            g->alt_start[na++] = (uint32_t)e;
            memcpy(g->elems + e, p, len * sizeof *p);
            g->elems[e + len] = GS_END;
            g->rest[e + len] = 0;
            for (uint32_t j = len; j-- > 0;) g->rest[e + j] = sat_add(g->rest[e + j + 1], sym_min(rmin, p[j]));
            e += len + 1;
        }
    }
    g->alt_off[nr] = na;
    g->n_elems = e;
    g->n_alts = na;
    g->n_rules = nr;
    g->root = root;
    g->n_symbols = b->n_pool;
    *out = g;
    g = NULL;
done:
    free(rmin);
    free(order);
    free(stk);
    free(it);
    free(ij);
    free(mark);
    g4_grammar_free(g);
    return st;
}

void g4_grammar_free(g4_grammar *g) {
    if (!g) return;
    free(g->elems);
    free(g->rest);
    free(g->alt_start);
    free(g->alt_off);
    free(g->cs);
    free(g);
}

void g4_grammar_size(const g4_grammar *g, size_t *n_rules, size_t *n_symbols) {
    if (n_rules) *n_rules = g ? g->n_rules : 0;
    if (n_symbols) *n_symbols = g ? g->n_symbols : 0;
}
