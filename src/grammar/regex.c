/* JSON Schema "pattern" (ECMA-262 regular expressions, "u" flag) -> grammar, for a subset: literals,
 * ., classes [...] [^...] with ranges, \d \w \s \D \W \S, escapes (\n \t \r \f \v \xHH \uHHHH \u{H..}
 * and escaped punctuation), groups (...) (?:...) (?<name>...), alternation |, quantifiers * + ? {n}
 * {n,} {n,m} (lazy forms match the same strings), ^ at the start and $ at the end (without them the
 * pattern may match anywhere: any characters are allowed around it). Each character is written as
 * JSON string content (raw UTF-8, escapes for " \ and control characters). Not supported (an error
 * naming the keyword): backreferences, lookaround, \b \B, \p{...}, anchors elsewhere, and a
 * repeated sub-pattern that can match the empty string. */
#include "grammar/grammar_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    gb *b;
    const char *s;
    size_t n, i;
    const char *path;
    int depth;
} rx;

typedef struct { uint32_t sym; int nullable; } rnode;

#define RFAIL(r, ...) (gb_fail((r)->b, G4_ERR_UNSUPPORTED, __VA_ARGS__), (rnode){GR_NONE, 0})

typedef struct { uint32_t *v; size_t n, cap; } cpset;

static int cp_add(cpset *c, uint32_t lo, uint32_t hi) {
    if (c->n + 1 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        uint32_t *p = realloc(c->v, nc * 2 * sizeof *p);
        if (!p) return -1;
        c->v = p;
        c->cap = nc;
    }
    c->v[2 * c->n] = lo;
    c->v[2 * c->n + 1] = hi;
    c->n++;
    return 0;
}

static int cmp_pair(const void *x, const void *y) {
    const uint32_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

/* complement within 0..0x10FFFF */
static int cp_negate(cpset *c) {
    qsort(c->v, c->n, 2 * sizeof *c->v, cmp_pair);
    cpset o = {0};
    uint32_t next = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[2 * i] > next && cp_add(&o, next, c->v[2 * i] - 1)) return -1;
        if (c->v[2 * i + 1] + 1 > next) next = c->v[2 * i + 1] + 1;
    }
    if (next <= 0x10FFFF && cp_add(&o, next, 0x10FFFF)) return -1;
    free(c->v);
    *c = o;
    return 0;
}

static int add_class(cpset *c, char k) {
    static const uint32_t d[] = {'0', '9'};
    static const uint32_t w[] = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};
    static const uint32_t s[] = {9, 13, ' ', ' ', 0xA0, 0xA0, 0x1680, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029,
                                 0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF};
    const uint32_t *t;
    size_t n;
    switch (k | 0x20) {
    case 'd': t = d; n = 1; break;
    case 'w': t = w; n = 4; break;
    default: t = s; n = 10; break;
    }
    cpset x = {0};
    for (size_t i = 0; i < n; i++)
        if (cp_add(&x, t[2 * i], t[2 * i + 1])) return -1;
    if (k >= 'A' && k <= 'Z' && cp_negate(&x)) return -1;
    for (size_t i = 0; i < x.n; i++)
        if (cp_add(c, x.v[2 * i], x.v[2 * i + 1])) return -1;
    free(x.v);
    return 0;
}

static uint32_t dec(rx *r) { /* one UTF-8 character of the pattern */
    const unsigned char *u = (const unsigned char *)r->s + r->i;
    size_t left = r->n - r->i;
    if (u[0] < 0x80 || left < 2) { r->i++; return u[0]; }
    if (u[0] < 0xE0 || left < 3) { r->i += 2; return (uint32_t)(u[0] & 31) << 6 | (u[1] & 63); }
    if (u[0] < 0xF0 || left < 4) { r->i += 3; return (uint32_t)(u[0] & 15) << 12 | (uint32_t)(u[1] & 63) << 6 | (u[2] & 63); }
    r->i += 4;
    return (uint32_t)(u[0] & 7) << 18 | (uint32_t)(u[1] & 63) << 12 | (uint32_t)(u[2] & 63) << 6 | (u[3] & 63);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

static int hexn(rx *r, int n, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < n; k++) {
        if (r->i >= r->n || hexval(r->s[r->i]) < 0) return -1;
        v = v * 16 + (uint32_t)hexval(r->s[r->i++]);
    }
    *out = v;
    return 0;
}

/* escape after '\': a code point (>= 0), or -2 for a class letter (put into set), -1 error */
static long escape(rx *r, cpset *set, int in_class) {
    if (r->i >= r->n) return gb_fail(r->b, G4_ERR_UNSUPPORTED, "%s: pattern ends with a backslash", r->path), -1;
    char c = r->s[r->i++];
    uint32_t v;
    switch (c) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        if (add_class(set, c)) return gb_fail(r->b, G4_ERR_NOMEM, "pattern: out of memory"), -1;
        return -2;
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    case 'b':
        if (in_class) return '\b';
        return gb_fail(r->b, G4_ERR_UNSUPPORTED, "%s: \\b (word boundary) is not supported", r->path), -1;
    case 'x':
        if (hexn(r, 2, &v)) return gb_fail(r->b, G4_ERR_UNSUPPORTED, "%s: bad \\x escape", r->path), -1;
        return v;
    case 'u':
        if (r->i < r->n && r->s[r->i] == '{') {
            r->i++;
            v = 0;
            int k = 0;
            while (r->i < r->n && hexval(r->s[r->i]) >= 0 && k < 8) v = v * 16 + (uint32_t)hexval(r->s[r->i++]), k++;
            if (r->i >= r->n || r->s[r->i] != '}' || !k || v > 0x10FFFF)
                return gb_fail(r->b, G4_ERR_UNSUPPORTED, "%s: bad \\u{...} escape", r->path), -1;
            r->i++;
            return v;
        }
        if (hexn(r, 4, &v)) return gb_fail(r->b, G4_ERR_UNSUPPORTED, "%s: bad \\u escape", r->path), -1;
        if (v >= 0xD800 && v <= 0xDBFF && r->i + 6 <= r->n && r->s[r->i] == '\\' && r->s[r->i + 1] == 'u') {
            size_t save = r->i;
            uint32_t lo;
            r->i += 2;
            if (!hexn(r, 4, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            r->i = save;
        }
        return v;
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9'))
            return gb_fail(r->b, G4_ERR_UNSUPPORTED, "%s: escape \\%c is not supported", r->path, c), -1;
        r->i--;
        return dec(r);
    }
}

static rnode from_set(rx *r, cpset *set) {
    uint32_t s = gb_json_cps(r->b, set->v, set->n);
    free(set->v);
    set->v = NULL;
    return (rnode){s, 0};
}

static rnode parse_class(rx *r) {
    cpset set = {0};
    int neg = 0;
    if (r->i < r->n && r->s[r->i] == '^') { neg = 1; r->i++; }
    while (r->i < r->n && r->s[r->i] != ']') {
        long lo;
        if (r->s[r->i] == '\\') {
            r->i++;
            lo = escape(r, &set, 1);
        } else {
            lo = dec(r);
        }
        if (lo == -1) { free(set.v); return (rnode){GR_NONE, 0}; }
        if (lo == -2) continue;
        long hi = lo;
        if (r->i + 1 < r->n && r->s[r->i] == '-' && r->s[r->i + 1] != ']') {
            r->i++;
            if (r->s[r->i] == '\\') {
                r->i++;
                hi = escape(r, &set, 1);
                if (hi == -2) { free(set.v); return RFAIL(r, "%s: class range ending in a class escape", r->path); }
            } else {
                hi = dec(r);
            }
            if (hi < 0) { free(set.v); return (rnode){GR_NONE, 0}; }
            if (hi < lo) { free(set.v); return RFAIL(r, "%s: class range out of order", r->path); }
        }
        if (cp_add(&set, (uint32_t)lo, (uint32_t)hi)) { free(set.v); return RFAIL(r, "pattern: out of memory"); }
    }
    if (r->i >= r->n) { free(set.v); return RFAIL(r, "%s: unterminated character class", r->path); }
    r->i++;
    if (neg && cp_negate(&set)) { free(set.v); return RFAIL(r, "pattern: out of memory"); }
    return from_set(r, &set);
}

static rnode parse_alt(rx *r);

static rnode parse_atom(rx *r) {
    char c = r->s[r->i];
    cpset set = {0};
    if (c == '(') {
        r->i++;
        if (r->i < r->n && r->s[r->i] == '?') {
            if (r->i + 1 < r->n && r->s[r->i + 1] == ':') {
                r->i += 2;
            } else if (r->i + 2 < r->n && r->s[r->i + 1] == '<' && r->s[r->i + 2] != '=' && r->s[r->i + 2] != '!') {
                while (r->i < r->n && r->s[r->i] != '>') r->i++;
                r->i++;
            } else {
                return RFAIL(r, "%s: lookaround and (?...) groups are not supported", r->path);
            }
        }
        if (++r->depth > 200) return RFAIL(r, "%s: groups nested too deeply", r->path);
        rnode x = parse_alt(r);
        r->depth--;
        if (r->i >= r->n || r->s[r->i] != ')') return RFAIL(r, "%s: unbalanced parenthesis", r->path);
        r->i++;
        return x;
    }
    if (c == '[') {
        r->i++;
        return parse_class(r);
    }
    if (c == '.') {
        r->i++;
        static const uint32_t dot[] = {0, 9, 11, 12, 14, 0x2027, 0x202A, 0x10FFFF};
        for (int k = 0; k < 4; k++) cp_add(&set, dot[2 * k], dot[2 * k + 1]);
        return from_set(r, &set);
    }
    if (c == '^' || c == '$') return RFAIL(r, "%s: anchors are only supported at the start and the end", r->path);
    if (c == '*' || c == '+' || c == '?' || c == '{')
        return RFAIL(r, "%s: quantifier without anything to repeat", r->path);
    long v;
    if (c == '\\') {
        r->i++;
        v = escape(r, &set, 0);
        if (v == -1) return (rnode){GR_NONE, 0};
        if (v == -2) return from_set(r, &set);
    } else {
        v = dec(r);
    }
    return (rnode){gb_json_char(r->b, (uint32_t)v), 0};
}

static int number(rx *r, long *out) {
    if (r->i >= r->n || r->s[r->i] < '0' || r->s[r->i] > '9') return -1;
    long v = 0;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') {
        v = v * 10 + (r->s[r->i++] - '0');
        if (v > 100000000) v = 100000000;
    }
    *out = v;
    return 0;
}

static rnode parse_seq(rx *r) {
    uint32_t *syms = NULL;
    size_t n = 0, cap = 0;
    int nullable = 1;
    while (r->i < r->n && r->s[r->i] != '|' && r->s[r->i] != ')' && !r->b->st) {
        if (r->s[r->i] == '$' && r->i + 1 == r->n) break;
        rnode a = parse_atom(r);
        if (r->b->st) break;
        long mn = 1, mx = 1;
        if (r->i < r->n) {
            char q = r->s[r->i];
            size_t save = r->i;
            if (q == '*') { mn = 0; mx = -1; r->i++; }
            else if (q == '+') { mn = 1; mx = -1; r->i++; }
            else if (q == '?') { mn = 0; mx = 1; r->i++; }
            else if (q == '{') {
                r->i++;
                if (number(r, &mn)) { r->i = save; goto lit; }
                mx = mn;
                if (r->i < r->n && r->s[r->i] == ',') {
                    r->i++;
                    mx = -1;
                    if (r->i < r->n && r->s[r->i] != '}' && number(r, &mx)) { r->i = save; goto lit; }
                }
                if (r->i >= r->n || r->s[r->i] != '}') { r->i = save; goto lit; }
                r->i++;
                if (mx >= 0 && mx < mn) { free(syms); return RFAIL(r, "%s: quantifier {%ld,%ld} out of order", r->path, mn, mx); }
            }
            if (r->i != save && r->i < r->n && r->s[r->i] == '?') r->i++; /* lazy */
        }
        if (0) {
        lit: /* "{" not followed by a quantifier: left for parse_atom, which rejects it */
            mn = mx = 1;
        }
        if (a.nullable && (mx < 0 || mx > 1)) {
            free(syms);
            return RFAIL(r, "%s: a repeated sub-pattern that can match the empty string is not supported", r->path);
        }
        uint32_t s = (mn == 1 && mx == 1) ? a.sym : gb_rep(r->b, a.sym, mn, mx, 0);
        if (!(a.nullable || mn == 0)) nullable = 0;
        if (n + 1 > cap) {
            cap = cap ? cap * 2 : 16;
            uint32_t *p = realloc(syms, cap * sizeof *p);
            if (!p) { free(syms); return RFAIL(r, "pattern: out of memory"); }
            syms = p;
        }
        syms[n++] = s;
    }
    uint32_t s = gb_seq(r->b, syms, n);
    free(syms);
    return (rnode){s, nullable};
}

static rnode parse_alt(rx *r) {
    rnode x = parse_seq(r);
    if (r->i >= r->n || r->s[r->i] != '|') return x;
    uint32_t rule = gb_rule(r->b);
    int nullable = x.nullable;
    gb_add(r->b, rule, &x.sym, 1);
    while (r->i < r->n && r->s[r->i] == '|' && !r->b->st) {
        r->i++;
        rnode y = parse_seq(r);
        nullable |= y.nullable;
        gb_add(r->b, rule, &y.sym, 1);
    }
    return (rnode){rule, nullable};
}

uint32_t gb_pattern(gb *b, const char *re, size_t len, const char *path) {
    rx r = {b, re, len, 0, path, 0};
    int start = len && re[0] == '^', end = 0;
    if (start) r.i = 1;
    /* a final unescaped '$' anchors the end */
    if (len > (size_t)start && re[len - 1] == '$') {
        size_t bs = 0;
        for (size_t k = len - 1; k > 0 && re[k - 1] == '\\'; k--) bs++;
        if (bs % 2 == 0) end = 1;
    }
    rnode x = parse_alt(&r);
    if (b->st) return GR_NONE;
    if (end) r.i++;
    if (r.i < len) {
        gb_fail(b, G4_ERR_UNSUPPORTED, "%s: unexpected '%c' at offset %zu", path, re[r.i], r.i);
        return GR_NONE;
    }
    uint32_t any = GR_EPS;
    if (!start || !end) any = gb_rep(b, gb_strchar(b), 0, -1, 0);
    return gb_seqv(b, 3, start ? GR_EPS : any, x.sym, end ? GR_EPS : any);
}
