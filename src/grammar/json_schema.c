/* JSON schema -> grammar. grammar.h lists what is supported and the choices made. */
#include "grammar/grammar_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256
#define MAX_REFS 64
#define MAX_MERGES 20000
#define ANY_MAX 64
#define INT_LIM 999999999999999LL /* 15 digits */
#define NUM_LIM 999999999LL       /* bounded numbers: 9 integer digits ... */
#define NUM_FRAC 6                /* ... and 6 fraction digits */

enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_NUM = 32, T_INT = 64, T_ALL = 127 };

typedef struct { const void *k; uint32_t v; } memo_ent;

typedef struct sc {
    gb b;
    const json_t *root;
    g4_grammar_opts o;
    memo_ent *memo;
    size_t n_memo, cap_memo;
    json_t *temps; /* merged schemas, alive until the end */
    int merges, depth;
    uint32_t ws, str_body, str, num, integer, boolean, null, comma, colon;
    uint32_t any[ANY_MAX + 1], any_obj[ANY_MAX + 1];
} sc;

static uint32_t compile(sc *c, const json_t *s, const char *path);

#define FAIL(c, code, ...) (gb_fail(&(c)->b, code, __VA_ARGS__), GR_NONE)
#define FAILX(c, code, ...) gb_fail(&(c)->b, code, __VA_ARGS__)

static uint32_t lits(sc *c, const char *s) { return gb_lit(&c->b, s, strlen(s)); }
static uint32_t ch(sc *c, unsigned x) { return gb_byte(&c->b, x); }

/* ---- memo (pointer hash) ---- */

static uint32_t ptr_hash(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32);
}

static int memo_get(sc *c, const void *k, uint32_t *v) {
    if (!c->cap_memo) return 0;
    for (size_t h = ptr_hash(k) & (c->cap_memo - 1);; h = (h + 1) & (c->cap_memo - 1)) {
        if (!c->memo[h].k) return 0;
        if (c->memo[h].k == k) {
            *v = c->memo[h].v;
            return 1;
        }
    }
}

static void memo_put(sc *c, const void *k, uint32_t v) {
    if ((c->n_memo + 1) * 2 > c->cap_memo) {
        size_t nc = c->cap_memo ? c->cap_memo * 2 : 256;
        memo_ent *m = calloc(nc, sizeof *m);
        if (!m) {
            gb_fail(&c->b, G4_ERR_NOMEM, "schema: out of memory");
            return;
        }
        for (size_t i = 0; i < c->cap_memo; i++)
            if (c->memo[i].k) {
                size_t h = ptr_hash(c->memo[i].k) & (nc - 1);
                while (m[h].k) h = (h + 1) & (nc - 1);
                m[h] = c->memo[i];
            }
        free(c->memo);
        c->memo = m;
        c->cap_memo = nc;
    }
    size_t h = ptr_hash(k) & (c->cap_memo - 1);
    while (c->memo[h].k) h = (h + 1) & (c->cap_memo - 1);
    c->memo[h].k = k;
    c->memo[h].v = v;
    c->n_memo++;
}

/* ---- common JSON rules ---- */

static uint32_t ws(sc *c) {
    if (c->ws) return c->ws;
    if (c->o.ws_indent < 0) return c->ws = GR_EPS;
    uint32_t nl = gb_seqv(&c->b, 2, ch(c, '\n'), gb_rep(&c->b, ch(c, ' '), 0, c->o.ws_indent, 0));
    return c->ws = gb_altv(&c->b, 3, GR_EPS, ch(c, ' '), nl);
}

static uint32_t comma_ws(sc *c) {
    if (!c->comma) c->comma = gb_seqv(&c->b, 2, ch(c, ','), ws(c));
    return c->comma;
}

static uint32_t colon_ws(sc *c) {
    if (!c->colon) c->colon = gb_seqv(&c->b, 2, ch(c, ':'), ws(c));
    return c->colon;
}

/* string content then the closing quote */
static uint32_t str_body(sc *c) {
    if (c->str_body) return c->str_body;
    uint32_t r = gb_rule(&c->b);
    gb_addv(&c->b, r, 2, gb_strchar(&c->b), r);
    gb_addv(&c->b, r, 1, ch(c, '"'));
    return c->str_body = r;
}

static uint32_t any_string(sc *c) {
    if (!c->str) c->str = gb_seqv(&c->b, 2, ch(c, '"'), str_body(c));
    return c->str;
}

/* digits d{min..max} */
static uint32_t digits(sc *c, int min, int max) { return gb_rep(&c->b, gb_digit(&c->b), min, max, 0); }

static uint32_t int_part(sc *c, int maxd) {
    return gb_altv(&c->b, 2, ch(c, '0'), gb_seqv(&c->b, 2, gb_range(&c->b, '1', '9'), digits(c, 0, maxd - 1)));
}

static uint32_t any_number(sc *c) {
    if (c->num) return c->num;
    uint32_t frac = gb_opt(&c->b, gb_seqv(&c->b, 2, ch(c, '.'), digits(c, 1, 15)));
    uint32_t exp = gb_opt(&c->b, gb_seqv(&c->b, 3, gb_bytes_of(&c->b, "eE"), gb_opt(&c->b, gb_bytes_of(&c->b, "+-")),
                                         digits(c, 1, 2)));
    return c->num = gb_seqv(&c->b, 4, gb_opt(&c->b, ch(c, '-')), int_part(c, 15), frac, exp);
}

static uint32_t any_integer(sc *c) {
    if (!c->integer) c->integer = gb_seqv(&c->b, 2, gb_opt(&c->b, ch(c, '-')), int_part(c, 15));
    return c->integer;
}

static uint32_t any_bool(sc *c) {
    if (!c->boolean) c->boolean = gb_altv(&c->b, 2, lits(c, "true"), lits(c, "false"));
    return c->boolean;
}

static uint32_t null_lit(sc *c) {
    if (!c->null) c->null = lits(c, "null");
    return c->null;
}

/* "[" ws ( "]" | item ("," ws item)* ws "]" ) and the like */
static uint32_t container(sc *c, char open, char close, uint32_t item, long min, long max) {
    uint32_t cl = gb_seqv(&c->b, 2, ws(c), ch(c, (unsigned)close));
    uint32_t body = GR_NONE;
    if (max != 0) body = gb_seqv(&c->b, 2, gb_rep(&c->b, item, min > 1 ? min : 1, max, comma_ws(c)), cl);
    return gb_seqv(&c->b, 3, ch(c, (unsigned)open), ws(c),
                   gb_altv(&c->b, 2, min == 0 ? ch(c, (unsigned)close) : GR_NONE, body));
}

static uint32_t any_value(sc *c, int d);

static uint32_t any_object_v(sc *c, int d, uint32_t value) {
    uint32_t kv = gb_seqv(&c->b, 3, any_string(c), colon_ws(c), value);
    (void)d;
    return container(c, '{', '}', kv, 0, -1);
}

static uint32_t any_object(sc *c, int d) {
    if (d < 1) d = 1;
    if (c->any_obj[d]) return c->any_obj[d];
    return c->any_obj[d] = any_object_v(c, d, any_value(c, d - 1));
}

static uint32_t any_value(sc *c, int d) {
    if (d < 0) d = 0;
    if (c->any[d]) return c->any[d];
    uint32_t r = gb_altv(&c->b, 5, any_string(c), any_number(c), any_bool(c), null_lit(c),
                         d > 0 ? any_object(c, d) : GR_NONE);
    if (d > 0) gb_addv(&c->b, r, 1, container(c, '[', ']', any_value(c, d - 1), 0, -1));
    return c->any[d] = r;
}

/* ---- helpers over schemas ---- */

static const char *ignored_kw[] = {"title", "description", "examples", "default", "$schema", "$id", "$comment",
                                   "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "contentEncoding",
                                   "contentMediaType", "$anchor", "example", NULL};
static const char *unsupported_kw[] = {"not", "if", "then", "else", "patternProperties", "propertyNames",
                                       "minProperties", "maxProperties", "contains", "minContains", "maxContains",
                                       "multipleOf", "dependentRequired", "dependentSchemas", "dependencies",
                                       "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef",
                                       "contentSchema", NULL};
static const char *known_kw[] = {"type", "properties", "required", "additionalProperties", "enum", "const", "anyOf",
                                 "oneOf", "allOf", "items", "prefixItems", "additionalItems", "minItems", "maxItems",
                                 "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
                                 "exclusiveMaximum", "$ref", "format", "pattern", "nullable", "uniqueItems", NULL};

static int in_list(const char *k, const char **l) {
    for (; *l; l++)
        if (!strcmp(k, *l)) return 1;
    return 0;
}

/* keyword k constrains (known or unsupported, not ignored) */
static int constraining(const char *k, const json_t *v) {
    if (in_list(k, ignored_kw)) return 0;
    if (!strcmp(k, "uniqueItems")) return json_is_true(v);
    if (!strcmp(k, "nullable")) return 1;
    return in_list(k, known_kw) || in_list(k, unsupported_kw);
}

static int has_constraint_except(const json_t *s, const char *a, const char *b2) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if ((a && !strcmp(k, a)) || (b2 && !strcmp(k, b2))) continue;
        if (constraining(k, v)) return 1;
    }
    return 0;
}

/* copy of s without keys a and b2 (kept in temps) */
static json_t *without(sc *c, const json_t *s, const char *a, const char *b2) {
    json_t *o = json_object();
    if (!o || json_array_append_new(c->temps, o)) {
        gb_fail(&c->b, G4_ERR_NOMEM, "schema: out of memory");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if ((a && !strcmp(k, a)) || (b2 && !strcmp(k, b2))) continue;
        json_object_set(o, k, v);
    }
    return o;
}

static json_t *temp(sc *c, json_t *o) {
    if (!o || json_array_append_new(c->temps, o)) {
        gb_fail(&c->b, G4_ERR_NOMEM, "schema: out of memory");
        return NULL;
    }
    return o;
}

/* JSON pointer "#/a/b" -> node */
static const json_t *resolve_ref(sc *c, const json_t *ref, const char *path) {
    if (!json_is_string(ref)) return FAILX(c, G4_ERR_ARG, "$ref at %s must be a string", path), NULL;
    const char *r = json_string_value(ref);
    if (r[0] != '#') return FAILX(c, G4_ERR_UNSUPPORTED, "$ref \"%s\" at %s: only local references (\"#/...\") are supported", r, path), NULL;
    const json_t *n = c->root;
    const char *p = r + 1;
    if (*p && *p != '/')
        return FAILX(c, G4_ERR_UNSUPPORTED, "$ref \"%s\" at %s: anchors are not supported", r, path), NULL;
    char tok[512];
    while (*p == '/') {
        p++;
        size_t k = 0;
        while (*p && *p != '/') {
            char x = *p++;
            if (x == '~' && *p == '0') { x = '~'; p++; }
            else if (x == '~' && *p == '1') { x = '/'; p++; }
            else if (x == '%' && p[0] && p[1]) {
                unsigned v;
                char hx[3] = {p[0], p[1], 0};
                if (sscanf(hx, "%2x", &v) == 1) { x = (char)v; p += 2; }
            }
            if (k + 1 < sizeof tok) tok[k++] = x;
        }
        tok[k] = 0;
        if (json_is_object(n)) {
            n = json_object_get(n, tok);
        } else if (json_is_array(n)) {
            char *e;
            long i = strtol(tok, &e, 10);
            n = (*tok && !*e && i >= 0) ? json_array_get(n, (size_t)i) : NULL;
        } else {
            n = NULL;
        }
        if (!n) return FAILX(c, G4_ERR_ARG, "$ref \"%s\" at %s does not resolve", r, path), NULL;
    }
    return n;
}

static json_t *merge(sc *c, const json_t *a, const json_t *b, const char *path);

/* follows a top-level $ref (merging its constraining siblings); returns s itself when there is none */
static const json_t *resolve_top(sc *c, const json_t *s, const char *path) {
    for (int i = 0; json_is_object(s) && json_object_get(s, "$ref"); i++) {
        if (i >= MAX_REFS) return FAILX(c, G4_ERR_ARG, "$ref chain longer than %d (circular?) at %s", MAX_REFS, path), NULL;
        const json_t *t = resolve_ref(c, json_object_get(s, "$ref"), path);
        if (!t) return NULL;
        if (has_constraint_except(s, "$ref", NULL)) {
            json_t *rest = without(c, s, "$ref", NULL);
            if (!rest) return NULL;
            s = merge(c, t, rest, path);
        } else {
            s = t;
        }
    }
    return s;
}

/* ---- type sets ---- */

static int type_bit(const char *t) {
    static const char *names[] = {"null", "boolean", "object", "array", "string", "number", "integer"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(t, names[i])) return 1 << i;
    return 0;
}

/* types of the "type" keyword (+ nullable); T_ALL if absent; -1 malformed */
static int type_set(sc *c, const json_t *s, const char *path) {
    const json_t *t = json_object_get(s, "type");
    int m = 0;
    if (!t) return T_ALL;
    if (json_is_string(t)) {
        m = type_bit(json_string_value(t));
        if (!m) return FAILX(c, G4_ERR_ARG, "unknown type \"%s\" at %s", json_string_value(t), path), -1;
    } else if (json_is_array(t)) {
        size_t i;
        json_t *x;
        json_array_foreach(t, i, x) {
            int b = json_is_string(x) ? type_bit(json_string_value(x)) : 0;
            if (!b) return FAILX(c, G4_ERR_ARG, "malformed type array at %s/type", path), -1;
            m |= b;
        }
    } else {
        return FAILX(c, G4_ERR_ARG, "type at %s must be a string or an array", path), -1;
    }
    if (json_is_true(json_object_get(s, "nullable"))) m |= T_NULL;
    return m;
}

static int value_type(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL: return T_NULL;
    case JSON_TRUE: case JSON_FALSE: return T_BOOL;
    case JSON_OBJECT: return T_OBJ;
    case JSON_ARRAY: return T_ARR;
    case JSON_STRING: return T_STR;
    case JSON_INTEGER: return T_NUM | T_INT;
    case JSON_REAL: {
        double d = json_real_value(v);
        return T_NUM | (d == floor(d) && fabs(d) < 9e15 ? T_INT : 0);
    }
    }
    return 0;
}

/* type intersection where integer is a subset of number */
static int type_and(int a, int b) {
    int r = a & b;
    if ((a & T_NUM) && (b & T_INT)) r |= T_INT;
    if ((b & T_NUM) && (a & T_INT)) r |= T_INT;
    return r;
}

/* ---- a small validator for the supported keywords: 1 valid, 0 not, -1 cannot tell ---- */

static size_t utf8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static int jvalid(sc *c, const json_t *s, const json_t *v, int depth) {
    if (depth > 64 || c->b.st) return -1;
    if (json_is_true(s)) return 1;
    if (json_is_false(s)) return 0;
    if (!json_is_object(s)) return -1;
    int res = 1;
#define AND(x) do { int r_ = (x); if (r_ == 0) return 0; if (r_ < 0) res = -1; } while (0)
    const char *k;
    json_t *kv;
    json_object_foreach((json_t *)s, k, kv) {
        if (in_list(k, unsupported_kw) || !strcmp(k, "pattern") || !strcmp(k, "format")) {
            if (!strcmp(k, "format") && !json_is_string(v)) continue;
            if (!strcmp(k, "pattern") && !json_is_string(v)) continue;
            res = -1;
        }
    }
    int vt = value_type(v);
    const json_t *x;
    if ((x = json_object_get(s, "$ref"))) {
        const json_t *t = resolve_ref(c, x, "$ref");
        if (!t) return -1;
        AND(jvalid(c, t, v, depth + 1));
    }
    if (json_object_get(s, "type")) {
        int ts = type_set(c, s, "");
        if (ts < 0) return -1;
        if (!(ts & vt) && !((ts & T_INT) && (vt & T_INT))) return 0;
        if ((ts & (T_NUM | T_INT)) == T_INT && (vt & T_NUM) && !(vt & T_INT) && !(ts & ~T_INT & vt)) return 0;
    }
    if ((x = json_object_get(s, "const")) && !json_equal(x, (json_t *)v)) return 0;
    if ((x = json_object_get(s, "enum")) && json_is_array(x)) {
        size_t i;
        json_t *e;
        int found = 0;
        json_array_foreach(x, i, e) found |= json_equal(e, (json_t *)v);
        if (!found) return 0;
    }
    if (json_is_string(v)) {
        size_t n = utf8_len(json_string_value(v), json_string_length(v));
        if ((x = json_object_get(s, "minLength")) && json_is_number(x) && (double)n < json_number_value(x)) return 0;
        if ((x = json_object_get(s, "maxLength")) && json_is_number(x) && (double)n > json_number_value(x)) return 0;
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if ((x = json_object_get(s, "minimum")) && json_is_number(x) && d < json_number_value(x)) return 0;
        if ((x = json_object_get(s, "maximum")) && json_is_number(x) && d > json_number_value(x)) return 0;
        if ((x = json_object_get(s, "exclusiveMinimum"))) {
            if (json_is_number(x) && d <= json_number_value(x)) return 0;
            if (json_is_boolean(x)) res = -1;
        }
        if ((x = json_object_get(s, "exclusiveMaximum"))) {
            if (json_is_number(x) && d >= json_number_value(x)) return 0;
            if (json_is_boolean(x)) res = -1;
        }
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties"), *ap = json_object_get(s, "additionalProperties");
        if ((x = json_object_get(s, "required")) && json_is_array(x)) {
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) if (json_is_string(e) && !json_object_get(v, json_string_value(e))) return 0;
        }
        const char *key;
        json_t *pv;
        json_object_foreach((json_t *)v, key, pv) {
            const json_t *ps = json_is_object(props) ? json_object_get(props, key) : NULL;
            if (ps) AND(jvalid(c, ps, pv, depth + 1));
            else if (ap) AND(jvalid(c, ap, pv, depth + 1));
        }
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if ((x = json_object_get(s, "minItems")) && json_is_number(x) && (double)n < json_number_value(x)) return 0;
        if ((x = json_object_get(s, "maxItems")) && json_is_number(x) && (double)n > json_number_value(x)) return 0;
        const json_t *pre = json_object_get(s, "prefixItems"), *it = json_object_get(s, "items");
        if (json_is_array(it)) {
            pre = it;
            it = json_object_get(s, "additionalItems");
        }
        size_t np = json_is_array(pre) ? json_array_size(pre) : 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *is = i < np ? json_array_get(pre, i) : it;
            if (is) AND(jvalid(c, is, json_array_get(v, i), depth + 1));
        }
        if (json_is_true(json_object_get(s, "uniqueItems"))) res = -1;
    }
    if ((x = json_object_get(s, "allOf")) && json_is_array(x)) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e) AND(jvalid(c, e, v, depth + 1));
    }
    if ((x = json_object_get(s, "anyOf")) && json_is_array(x)) {
        size_t i;
        json_t *e;
        int any = 0, unk = 0;
        json_array_foreach(x, i, e) {
            int r = jvalid(c, e, v, depth + 1);
            any |= r == 1;
            unk |= r < 0;
        }
        if (!any) {
            if (!unk) return 0;
            res = -1;
        }
    }
    if ((x = json_object_get(s, "oneOf")) && json_is_array(x)) {
        size_t i;
        json_t *e;
        int ones = 0, unk = 0;
        json_array_foreach(x, i, e) {
            int r = jvalid(c, e, v, depth + 1);
            ones += r == 1;
            unk |= r < 0;
        }
        if (unk) res = -1;
        else if (ones != 1) return 0;
    }
#undef AND
    return res;
}

/* ---- merging (allOf, $ref with siblings, anyOf/oneOf with siblings) ---- */

static const json_t *ap_of(const json_t *s) { return json_object_get(s, "additionalProperties"); }

/* conjunction of two schemas (allOf of both) as one schema object */
static json_t *merge(sc *c, const json_t *a, const json_t *b, const char *path) {
    if (c->b.st) return NULL;
    if (++c->merges > MAX_MERGES)
        return FAILX(c, G4_ERR_UNSUPPORTED, "schema too complex: more than %d allOf/$ref merges (at %s)", MAX_MERGES, path), NULL;
    a = resolve_top(c, a, path);
    b = resolve_top(c, b, path);
    if (!a || !b) return NULL;
    if (json_is_true(a)) a = NULL;
    if (json_is_true(b)) b = NULL;
    if (json_is_false(a) || json_is_false(b)) return temp(c, json_pack("{s:[]}", "type"));
    if ((a && !json_is_object(a)) || (b && !json_is_object(b)))
        return FAILX(c, G4_ERR_ARG, "schema in allOf at %s must be an object or boolean", path), NULL;
    if (!a) return without(c, b, NULL, NULL);
    if (!b) return without(c, a, NULL, NULL);
    json_t *o = temp(c, json_object());
    if (!o) return NULL;
    const char *k;
    json_t *v;
    /* everything not handled below: from a, then from b */
    const json_t *src[2] = {a, b};
    static const char *special[] = {"type", "nullable", "properties", "required", "additionalProperties", "enum",
                                    "const", "minLength", "minItems", "minimum", "maxLength", "maxItems",
                                    "maximum", "exclusiveMinimum", "exclusiveMaximum", "items", "prefixItems",
                                    "additionalItems", "format", "pattern", "anyOf", "oneOf", "allOf", NULL};
    for (int i = 0; i < 2; i++)
        json_object_foreach((json_t *)src[i], k, v) if (!in_list(k, special) && !json_object_get(o, k))
            json_object_set(o, k, v);
    /* type */
    int ta = json_object_get(a, "type") ? type_set(c, a, path) : T_ALL;
    int tb = json_object_get(b, "type") ? type_set(c, b, path) : T_ALL;
    if (ta < 0 || tb < 0) return NULL;
    int t = type_and(ta, tb);
    if (t != T_ALL) {
        json_t *arr = json_array();
        static const char *names[] = {"null", "boolean", "object", "array", "string", "number", "integer"};
        for (int i = 0; i < 7; i++)
            if (t & (1 << i) && !(i == 6 && (t & T_NUM))) json_array_append_new(arr, json_string(names[i]));
        json_object_set_new(o, "type", arr);
    }
    /* enum / const */
    const json_t *ea = json_object_get(a, "enum"), *eb = json_object_get(b, "enum");
    json_t *tmpa = NULL, *tmpb = NULL;
    if (json_object_get(a, "const")) ea = tmpa = json_pack("[O]", json_object_get(a, "const"));
    if (json_object_get(b, "const")) eb = tmpb = json_pack("[O]", json_object_get(b, "const"));
    if ((ea && !json_is_array(ea)) || (eb && !json_is_array(eb))) {
        json_decref(tmpa);
        json_decref(tmpb);
        return FAILX(c, G4_ERR_ARG, "enum at %s must be an array", path), NULL;
    }
    if (ea && eb) {
        json_t *e = json_array();
        size_t i, j;
        json_t *x, *y;
        json_array_foreach(ea, i, x) {
            int in = 0;
            json_array_foreach(eb, j, y) in |= json_equal(x, y);
            if (in) json_array_append(e, x);
        }
        json_object_set_new(o, "enum", e);
    } else if (ea || eb) {
        json_object_set(o, "enum", (json_t *)(ea ? ea : eb));
    }
    json_decref(tmpa);
    json_decref(tmpb);
    /* bounds */
    static const char *mins[] = {"minLength", "minItems", "minimum", "exclusiveMinimum", NULL};
    static const char *maxs[] = {"maxLength", "maxItems", "maximum", "exclusiveMaximum", NULL};
    for (int w = 0; w < 2; w++)
        for (const char **kk = w ? maxs : mins; *kk; kk++) {
            const json_t *x = json_object_get(a, *kk), *y = json_object_get(b, *kk);
            if ((x && json_is_boolean(x)) || (y && json_is_boolean(y))) {
                if (x && y && !json_equal((json_t *)x, (json_t *)y))
                    return FAILX(c, G4_ERR_UNSUPPORTED, "allOf at %s: boolean %s in both schemas", path, *kk), NULL;
                json_object_set(o, *kk, (json_t *)(x ? x : y));
                continue;
            }
            if (!x || !y) {
                if (x || y) json_object_set(o, *kk, (json_t *)(x ? x : y));
                continue;
            }
            double dx = json_number_value(x), dy = json_number_value(y);
            json_object_set(o, *kk, (json_t *)(((dx > dy) ^ w) ? x : y));
        }
    /* format, pattern: equal or one */
    static const char *same[] = {"format", "pattern", NULL};
    for (const char **kk = same; *kk; kk++) {
        const json_t *x = json_object_get(a, *kk), *y = json_object_get(b, *kk);
        if (x && y && !json_equal((json_t *)x, (json_t *)y))
            return FAILX(c, G4_ERR_UNSUPPORTED, "allOf at %s: two different %s keywords", path, *kk), NULL;
        if (x || y) json_object_set(o, *kk, (json_t *)(x ? x : y));
    }
    /* items */
    if (json_object_get(a, "prefixItems") || json_object_get(b, "prefixItems") ||
        json_is_array(json_object_get(a, "items")) || json_is_array(json_object_get(b, "items"))) {
        int na = json_object_get(a, "prefixItems") || json_object_get(a, "items");
        int nb = json_object_get(b, "prefixItems") || json_object_get(b, "items");
        if (na && nb) return FAILX(c, G4_ERR_UNSUPPORTED, "allOf at %s: tuple (prefixItems) in a merge", path), NULL;
        const json_t *s2 = na ? a : b;
        static const char *ik[] = {"prefixItems", "items", "additionalItems", NULL};
        for (const char **kk = ik; *kk; kk++)
            if (json_object_get(s2, *kk)) json_object_set(o, *kk, json_object_get(s2, *kk));
    } else {
        const json_t *x = json_object_get(a, "items"), *y = json_object_get(b, "items");
        if (x && y) json_object_set_new(o, "items", json_pack("{s:[O,O]}", "allOf", x, y));
        else if (x || y) json_object_set(o, "items", (json_t *)(x ? x : y));
    }
    /* objects: properties, required, additionalProperties */
    const json_t *pa = json_object_get(a, "properties"), *pb = json_object_get(b, "properties");
    const json_t *aa = ap_of(a), *ab = ap_of(b);
    json_t *req = json_array();
    for (int i = 0; i < 2; i++) {
        const json_t *r = json_object_get(src[i], "required");
        size_t j;
        json_t *x;
        if (json_is_array(r)) json_array_foreach(r, j, x) {
                size_t q;
                json_t *y;
                int dup = 0;
                json_array_foreach(req, q, y) dup |= json_equal(x, y);
                if (!dup) json_array_append(req, x);
            }
    }
    if (pa || pb) {
        json_t *props = json_object();
        for (int i = 0; i < 2; i++) {
            const json_t *p = i ? pb : pa;
            if (!json_is_object(p)) continue;
            json_object_foreach((json_t *)p, k, v) {
                if (json_object_get(props, k)) continue;
                const json_t *sa = json_is_object(pa) ? json_object_get(pa, k) : NULL;
                const json_t *sb = json_is_object(pb) ? json_object_get(pb, k) : NULL;
                if (!sa) sa = aa; /* the other schema's additionalProperties applies */
                if (!sb) sb = ab;
                if (json_is_false(sa) || json_is_false(sb)) {
                    size_t q;
                    json_t *y;
                    json_array_foreach(req, q, y) if (json_is_string(y) && !strcmp(json_string_value(y), k))
                        json_object_set_new(o, "type", json_array()); /* required but forbidden */
                    continue;
                }
                if (sa && sb) json_object_set_new(props, k, json_pack("{s:[O,O]}", "allOf", sa, sb));
                else json_object_set(props, k, (json_t *)(sa ? sa : sb));
            }
        }
        json_object_set_new(o, "properties", props);
    }
    if (json_array_size(req)) json_object_set(o, "required", req);
    json_decref(req);
    if (aa || ab) {
        if (json_is_false(aa) || json_is_false(ab)) json_object_set_new(o, "additionalProperties", json_false());
        else if (aa && ab && !json_is_true(aa) && !json_is_true(ab))
            json_object_set_new(o, "additionalProperties", json_pack("{s:[O,O]}", "allOf", aa, ab));
        else if (aa && !json_is_true(aa)) json_object_set(o, "additionalProperties", (json_t *)aa);
        else if (ab && !json_is_true(ab)) json_object_set(o, "additionalProperties", (json_t *)ab);
        else json_object_set_new(o, "additionalProperties", json_true());
    }
    /* anyOf / oneOf / allOf */
    const json_t *xa = json_object_get(a, "anyOf"), *xb = json_object_get(b, "anyOf");
    if (xa && xb) {
        if (!json_is_array(xa) || !json_is_array(xb))
            return FAILX(c, G4_ERR_ARG, "anyOf at %s must be an array", path), NULL;
        if (json_array_size(xa) * json_array_size(xb) > 256)
            return FAILX(c, G4_ERR_UNSUPPORTED, "allOf at %s: two large anyOf lists", path), NULL;
        json_t *arr = json_array();
        size_t i, j;
        json_t *x, *y;
        json_array_foreach(xa, i, x) json_array_foreach(xb, j, y)
            json_array_append_new(arr, json_pack("{s:[O,O]}", "allOf", x, y));
        json_object_set_new(o, "anyOf", arr);
    } else if (xa || xb) {
        json_object_set(o, "anyOf", (json_t *)(xa ? xa : xb));
    }
    xa = json_object_get(a, "oneOf");
    xb = json_object_get(b, "oneOf");
    if (xa && xb) return FAILX(c, G4_ERR_UNSUPPORTED, "allOf at %s: oneOf in two merged schemas", path), NULL;
    if (xa || xb) json_object_set(o, "oneOf", (json_t *)(xa ? xa : xb));
    xa = json_object_get(a, "allOf");
    xb = json_object_get(b, "allOf");
    if (xa || xb) {
        json_t *arr = json_array();
        if (json_is_array(xa)) json_array_extend(arr, (json_t *)xa);
        if (json_is_array(xb)) json_array_extend(arr, (json_t *)xb);
        json_object_set_new(o, "allOf", arr);
    }
    return o;
}

/* ---- numbers ---- */

/* non-negative integers with equal digit counts x..y (strings of n digits) */
static uint32_t same_len(sc *c, const char *x, const char *y, int n) {
    gb *b = &c->b;
    if (n == 1) return gb_range(b, (unsigned char)x[0], (unsigned char)y[0]);
    if (x[0] == y[0]) return gb_seqv(b, 2, ch(c, (unsigned char)x[0]), same_len(c, x + 1, y + 1, n - 1));
    char zeros[20], nines[20];
    memset(zeros, '0', (size_t)n - 1);
    memset(nines, '9', (size_t)n - 1);
    int xz = !memcmp(x + 1, zeros, (size_t)n - 1), y9 = !memcmp(y + 1, nines, (size_t)n - 1);
    uint32_t r = gb_rule(b);
    int lo = x[0], hi = y[0];
    if (!xz) {
        gb_addv(b, r, 2, ch(c, (unsigned)lo), same_len(c, x + 1, nines, n - 1));
        lo++;
    }
    if (!y9) {
        gb_addv(b, r, 2, ch(c, (unsigned)hi), same_len(c, zeros, y + 1, n - 1));
        hi--;
    }
    if (lo <= hi) gb_addv(b, r, 2, gb_range(b, (unsigned)lo, (unsigned)hi), digits(c, n - 1, n - 1));
    return r;
}

static int ndig(long long v) {
    int n = 1;
    while (v >= 10) { v /= 10; n++; }
    return n;
}

/* decimal a..b, 0 <= a <= b, no leading zeros */
static uint32_t nonneg_range(sc *c, long long a, long long b) {
    uint32_t r = gb_rule(&c->b);
    long long p = 1;
    for (int L = 1; L <= ndig(b); L++, p *= 10) {
        long long lo = L == 1 ? 0 : p, hi = p * 10 - 1;
        if (lo < a) lo = a;
        if (hi > b) hi = b;
        if (lo > hi) continue;
        char xs[24], ys[24];
        snprintf(xs, sizeof xs, "%lld", lo);
        snprintf(ys, sizeof ys, "%lld", hi);
        gb_addv(&c->b, r, 1, same_len(c, xs, ys, L));
    }
    return r;
}

static uint32_t int_range(sc *c, long long lo, long long hi) {
    if (lo > hi) return GR_NONE;
    uint32_t r = gb_rule(&c->b);
    if (hi >= 0) gb_addv(&c->b, r, 1, nonneg_range(c, lo > 0 ? lo : 0, hi));
    if (lo < 0) gb_addv(&c->b, r, 2, ch(c, '-'), nonneg_range(c, hi < 0 ? -hi : 1, -lo));
    return r;
}

/* fraction that is not all zeros, of at most k digits */
static uint32_t nz_frac(sc *c, int k) {
    uint32_t r = gb_seqv(&c->b, 2, gb_range(&c->b, '1', '9'), digits(c, 0, k - 1));
    if (k > 1) r = gb_altv(&c->b, 2, r, gb_seqv(&c->b, 2, ch(c, '0'), nz_frac(c, k - 1)));
    return r;
}

/* magnitude I[.F] with a (excl ae) <= value <= b (excl be); binf: no upper bound */
static uint32_t num_mag(sc *c, long long a, int ae, long long b, int binf, int be) {
    gb *g = &c->b;
    uint32_t frac_any = gb_opt(g, gb_seqv(g, 2, ch(c, '.'), digits(c, 1, NUM_FRAC)));
    uint32_t frac_zero = gb_opt(g, gb_seqv(g, 2, ch(c, '.'), gb_rep(g, ch(c, '0'), 1, NUM_FRAC, 0)));
    uint32_t frac_nz = gb_seqv(g, 2, ch(c, '.'), nz_frac(c, NUM_FRAC));
    long long top = b;
    int top_any = 0;
    if (binf || b > NUM_LIM) {
        top = NUM_LIM;
        top_any = 1;
    }
    if (a > NUM_LIM) return FAIL(c, G4_ERR_UNSUPPORTED, "number bound %lld beyond %lld", a, NUM_LIM);
    uint32_t r = gb_rule(g);
    char s[24];
    if (a == top && !top_any) {
        if (!ae && !be) {
            snprintf(s, sizeof s, "%lld", a);
            gb_addv(g, r, 2, lits(c, s), frac_zero);
        }
        return r;
    }
    if (a > top) return r;
    snprintf(s, sizeof s, "%lld", a);
    gb_addv(g, r, 2, lits(c, s), ae ? frac_nz : frac_any);
    long long hi_mid = top_any ? top : top - 1;
    if (a + 1 <= hi_mid) gb_addv(g, r, 2, nonneg_range(c, a + 1, hi_mid), frac_any);
    if (!top_any && !be) {
        snprintf(s, sizeof s, "%lld", top);
        gb_addv(g, r, 2, lits(c, s), frac_zero);
    }
    return r;
}

static int get_bound(sc *c, const json_t *s, const char *k, double *v, int *excl_bool, const char *path) {
    const json_t *x = json_object_get(s, k);
    if (!x) return 0;
    if (json_is_boolean(x) && excl_bool) {
        *excl_bool = json_is_true(x);
        return 0;
    }
    if (!json_is_number(x)) return FAILX(c, G4_ERR_ARG, "%s at %s must be a number", k, path), -1;
    *v = json_number_value(x);
    if (!isfinite(*v)) return FAILX(c, G4_ERR_ARG, "%s at %s is not finite", k, path), -1;
    return 1;
}

/* bounds: lo/hi with exclusivity; *has_lo, *has_hi */
static int bounds(sc *c, const json_t *s, double *lo, int *lo_e, int *has_lo, double *hi, int *hi_e, int *has_hi,
                  const char *path) {
    int bmin = 0, bmax = 0; /* draft-4 boolean exclusives */
    double v;
    *has_lo = *has_hi = *lo_e = *hi_e = 0;
    int r = get_bound(c, s, "minimum", &v, NULL, path);
    if (r < 0) return -1;
    if (r) { *lo = v; *has_lo = 1; }
    r = get_bound(c, s, "maximum", &v, NULL, path);
    if (r < 0) return -1;
    if (r) { *hi = v; *has_hi = 1; }
    r = get_bound(c, s, "exclusiveMinimum", &v, &bmin, path);
    if (r < 0) return -1;
    if (r && (!*has_lo || v >= *lo)) { *lo = v; *has_lo = 1; *lo_e = 1; }
    if (bmin && *has_lo) *lo_e = 1;
    r = get_bound(c, s, "exclusiveMaximum", &v, &bmax, path);
    if (r < 0) return -1;
    if (r && (!*has_hi || v <= *hi)) { *hi = v; *has_hi = 1; *hi_e = 1; }
    if (bmax && *has_hi) *hi_e = 1;
    return 0;
}

static uint32_t compile_integer(sc *c, const json_t *s, const char *path) {
    double lo, hi;
    int le, he, hl, hh;
    if (bounds(c, s, &lo, &le, &hl, &hi, &he, &hh, path)) return GR_NONE;
    if (!hl && !hh) return any_integer(c);
    long long a = -INT_LIM, z = INT_LIM;
    if (hl) {
        double f = le ? floor(lo) + 1 : ceil(lo);
        if (f > (double)INT_LIM) return FAIL(c, G4_ERR_UNSUPPORTED, "minimum at %s beyond 15 digits", path);
        if (f > (double)a) a = (long long)f;
    }
    if (hh) {
        double f = he ? ceil(hi) - 1 : floor(hi);
        if (f < (double)-INT_LIM) return FAIL(c, G4_ERR_UNSUPPORTED, "maximum at %s beyond 15 digits", path);
        if (f < (double)z) z = (long long)f;
    }
    return int_range(c, a, z);
}

static uint32_t compile_number(sc *c, const json_t *s, const char *path) {
    double lo, hi;
    int le, he, hl, hh;
    if (bounds(c, s, &lo, &le, &hl, &hi, &he, &hh, path)) return GR_NONE;
    if (!hl && !hh) return any_number(c);
    if ((hl && lo != floor(lo)) || (hh && hi != floor(hi)))
        return FAIL(c, G4_ERR_UNSUPPORTED,
                    "minimum/maximum at %s: only integer-valued bounds are supported for type number", path);
    if ((hl && fabs(lo) > (double)NUM_LIM) || (hh && fabs(hi) > (double)NUM_LIM))
        return FAIL(c, G4_ERR_UNSUPPORTED, "minimum/maximum at %s: number bounds beyond 9 digits", path);
    if (hl && hh && (lo > hi || (lo == hi && (le || he)))) return GR_NONE;
    long long L = hl ? (long long)lo : 0, H = hh ? (long long)hi : 0;
    uint32_t r = gb_rule(&c->b);
    /* value >= 0 */
    if (!hh || H > 0 || (H == 0 && !he)) {
        long long a = (hl && L >= 0) ? L : 0;
        int ae = (hl && L >= 0) ? le : 0;
        gb_addv(&c->b, r, 1, num_mag(c, a, ae, H, !hh, he));
    }
    /* value < 0 */
    if (!hl || L < 0) {
        long long a = (hh && H < 0) ? -H : 0;
        int ae = (hh && H < 0) ? he : 1;
        gb_addv(&c->b, r, 2, ch(c, '-'), num_mag(c, a, ae, -L, !hl, le));
    }
    return r;
}

/* ---- strings ---- */

static uint32_t hexd(sc *c) { return gb_bytes_of(&c->b, "0123456789abcdefABCDEF"); }

static uint32_t fmt_date(sc *c) {
    gb *b = &c->b;
    uint32_t d = gb_digit(b), dash = ch(c, '-');
    uint32_t year = digits(c, 4, 4);
    uint32_t m31 = gb_altv(b, 2, gb_seqv(b, 2, ch(c, '0'), gb_bytes_of(b, "13578")), gb_seqv(b, 2, ch(c, '1'), gb_bytes_of(b, "02")));
    uint32_t m30 = gb_altv(b, 2, gb_seqv(b, 2, ch(c, '0'), gb_bytes_of(b, "469")), lits(c, "11"));
    uint32_t d01_19 = gb_altv(b, 2, gb_seqv(b, 2, ch(c, '0'), gb_range(b, '1', '9')), gb_seqv(b, 2, ch(c, '1'), d));
    uint32_t d31 = gb_altv(b, 3, d01_19, gb_seqv(b, 2, ch(c, '2'), d), gb_seqv(b, 2, ch(c, '3'), gb_bytes_of(b, "01")));
    uint32_t d30 = gb_altv(b, 3, d01_19, gb_seqv(b, 2, ch(c, '2'), d), lits(c, "30"));
    uint32_t d28 = gb_altv(b, 2, d01_19, gb_seqv(b, 2, ch(c, '2'), gb_range(b, '0', '8')));
    uint32_t m4nz = gb_altv(b, 3, gb_seqv(b, 2, ch(c, '0'), gb_bytes_of(b, "48")),
                            gb_seqv(b, 2, gb_bytes_of(b, "2468"), gb_bytes_of(b, "048")),
                            gb_seqv(b, 2, gb_bytes_of(b, "13579"), gb_bytes_of(b, "26")));
    uint32_t leap = gb_altv(b, 2, gb_seqv(b, 3, d, d, m4nz), gb_seqv(b, 2, gb_altv(b, 2, m4nz, lits(c, "00")), lits(c, "00")));
    return gb_altv(b, 4, gb_seqv(b, 5, year, dash, m31, dash, d31), gb_seqv(b, 5, year, dash, m30, dash, d30),
                   gb_seqv(b, 3, year, lits(c, "-02-"), d28), gb_seqv(b, 2, leap, lits(c, "-02-29")));
}

static uint32_t fmt_time(sc *c) {
    gb *b = &c->b;
    uint32_t hh = gb_altv(b, 2, gb_seqv(b, 2, gb_bytes_of(b, "01"), gb_digit(b)), gb_seqv(b, 2, ch(c, '2'), gb_range(b, '0', '3')));
    uint32_t mm = gb_seqv(b, 2, gb_range(b, '0', '5'), gb_digit(b));
    uint32_t frac = gb_opt(b, gb_seqv(b, 2, ch(c, '.'), digits(c, 1, 6)));
    uint32_t zone = gb_altv(b, 2, ch(c, 'Z'), gb_seqv(b, 4, gb_bytes_of(b, "+-"), hh, ch(c, ':'), mm));
    return gb_seqv(b, 7, hh, ch(c, ':'), mm, ch(c, ':'), mm, frac, zone);
}

static uint32_t fmt_uuid(sc *c) {
    gb *b = &c->b;
    uint32_t h = hexd(c), dash = ch(c, '-');
    return gb_seqv(b, 9, gb_rep(b, h, 8, 8, 0), dash, gb_rep(b, h, 4, 4, 0), dash, gb_rep(b, h, 4, 4, 0), dash,
                   gb_rep(b, h, 4, 4, 0), dash, gb_rep(b, h, 12, 12, 0));
}

static uint32_t fmt_ipv4(sc *c) {
    gb *b = &c->b;
    uint32_t d = gb_digit(b);
    uint32_t oct = gb_altv(b, 5, gb_seqv(b, 2, lits(c, "25"), gb_range(b, '0', '5')),
                           gb_seqv(b, 3, ch(c, '2'), gb_range(b, '0', '4'), d), gb_seqv(b, 3, ch(c, '1'), d, d),
                           gb_seqv(b, 2, gb_range(b, '1', '9'), d), d);
    uint32_t dot = gb_seqv(b, 2, ch(c, '.'), oct);
    return gb_seqv(b, 4, oct, dot, dot, dot);
}

static uint32_t fmt_email(sc *c) {
    gb *b = &c->b;
    uint32_t an = gb_bytes_of(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    uint32_t atomc = gb_bytes_of(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-");
    uint32_t anh = gb_bytes_of(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
    uint32_t atom = gb_rep(b, atomc, 1, -1, 0);
    uint32_t local = gb_rep(b, atom, 1, -1, ch(c, '.'));
    uint32_t l2 = gb_rule(b); /* [an-]* [an] */
    gb_addv(b, l2, 1, an);
    gb_addv(b, l2, 2, anh, l2);
    uint32_t label = gb_altv(b, 2, an, gb_seqv(b, 2, an, l2));
    uint32_t domain = gb_seqv(b, 2, gb_rep(b, gb_seqv(b, 2, label, ch(c, '.')), 1, -1, 0), label);
    return gb_seqv(b, 3, local, ch(c, '@'), domain);
}

static long get_count(sc *c, const json_t *s, const char *k, long dflt, const char *path) {
    const json_t *x = json_object_get(s, k);
    if (!x) return dflt;
    double v = json_number_value(x);
    if (!json_is_number(x) || v < 0 || v != floor(v))
        return gb_fail(&c->b, G4_ERR_ARG, "%s at %s must be a non-negative integer", k, path), dflt;
    if (v > 1e15) return LONG_MAX / 4;
    return (long)v;
}

static uint32_t compile_string(sc *c, const json_t *s, const char *path) {
    gb *b = &c->b;
    const json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    long mn = get_count(c, s, "minLength", 0, path), mx = get_count(c, s, "maxLength", -1, path);
    int has_len = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if (mx > G_MAX_REP) return FAIL(c, G4_ERR_UNSUPPORTED, "maxLength at %s above %d", path, G_MAX_REP);
    uint32_t q = ch(c, '"');
    if (fmt) {
        if (!json_is_string(fmt)) return FAIL(c, G4_ERR_ARG, "format at %s must be a string", path);
        const char *f = json_string_value(fmt);
        uint32_t body;
        if (!strcmp(f, "date")) body = fmt_date(c);
        else if (!strcmp(f, "time")) body = fmt_time(c);
        else if (!strcmp(f, "date-time")) body = gb_seqv(b, 3, fmt_date(c), ch(c, 'T'), fmt_time(c));
        else if (!strcmp(f, "uuid")) body = fmt_uuid(c);
        else if (!strcmp(f, "ipv4")) body = fmt_ipv4(c);
        else if (!strcmp(f, "email")) body = fmt_email(c);
        else return FAIL(c, G4_ERR_UNSUPPORTED, "format \"%s\" at %s is not supported", f, path);
        if (pat || has_len)
            return FAIL(c, G4_ERR_UNSUPPORTED, "format together with pattern/minLength/maxLength at %s", path);
        return gb_seqv(b, 3, q, body, q);
    }
    if (pat) {
        if (!json_is_string(pat)) return FAIL(c, G4_ERR_ARG, "pattern at %s must be a string", path);
        if (has_len) return FAIL(c, G4_ERR_UNSUPPORTED, "pattern together with minLength/maxLength at %s", path);
        char p2[600];
        snprintf(p2, sizeof p2, "%s/pattern", path);
        return gb_seqv(b, 3, q, gb_pattern(b, json_string_value(pat), json_string_length(pat), p2), q);
    }
    if (!has_len) return any_string(c);
    if (mx >= 0 && mx < mn) return GR_NONE;
    return gb_seqv(b, 3, q, gb_rep(b, gb_strchar(b), mn, mx, 0), q);
}

/* ---- objects ---- */

typedef struct { const char *p; size_t n; } name;

static int cmp_name(const void *x, const void *y) {
    const name *a = x, *b = y;
    size_t n = a->n < b->n ? a->n : b->n;
    int r = memcmp(a->p, b->p, n);
    return r ? r : (a->n < b->n ? -1 : a->n > b->n);
}

static uint32_t dec_utf8(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80 || n < 2) { *len = 1; return u[0]; }
    if (u[0] < 0xE0 || n < 3) { *len = 2; return (uint32_t)(u[0] & 31) << 6 | (u[1] & 63); }
    if (u[0] < 0xF0 || n < 4) { *len = 3; return (uint32_t)(u[0] & 15) << 12 | (uint32_t)(u[1] & 63) << 6 | (u[2] & 63); }
    *len = 4;
    return (uint32_t)(u[0] & 7) << 18 | (uint32_t)(u[1] & 63) << 12 | (uint32_t)(u[2] & 63) << 6 | (u[3] & 63);
}

/* key content + closing quote for a key that is none of names[0..n) (which share their first d bytes) */
static uint32_t key_not_in(sc *c, name *names, size_t n, size_t d, int depth) {
    gb *b = &c->b;
    if (depth > 4096) return FAIL(c, G4_ERR_UNSUPPORTED, "property name longer than 4096 characters");
    uint32_t r = gb_rule(b);
    int terminal = 0;
    uint32_t *cps = malloc((n + 1) * sizeof *cps);
    uint32_t *rng = malloc((n + 4) * 2 * sizeof *rng);
    if (!cps || !rng) {
        free(cps);
        free(rng);
        return FAIL(c, G4_ERR_NOMEM, "schema: out of memory");
    }
    size_t nc = 0, i = 0;
    while (i < n && !b->st) {
        if (names[i].n == d) {
            terminal = 1;
            i++;
            continue;
        }
        size_t cl;
        uint32_t cp = dec_utf8(names[i].p + d, names[i].n - d, &cl);
        size_t j = i + 1;
        while (j < n && names[j].n >= d + cl && !memcmp(names[j].p + d, names[i].p + d, cl)) j++;
        cps[nc++] = cp;
        if (cp >= 0x20 && cp != '"' && cp != '\\')
            gb_addv(b, r, 2, gb_lit(b, names[i].p + d, cl), key_not_in(c, names + i, j - i, d + cl, depth + 1));
        i = j;
    }
    /* deviation: a raw character that is none of the children, then any string */
    static const uint32_t raw[] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x10FFFF};
    size_t nr = 0;
    for (int k = 0; k < 3; k++) {
        uint32_t lo = raw[2 * k], hi = raw[2 * k + 1];
        for (size_t q = 0; q < nc; q++) { /* cps are sorted (names are) */
            if (cps[q] < lo || cps[q] > hi) continue;
            if (cps[q] > lo) { rng[2 * nr] = lo; rng[2 * nr + 1] = cps[q] - 1; nr++; }
            lo = cps[q] + 1;
        }
        if (lo <= hi) { rng[2 * nr] = lo; rng[2 * nr + 1] = hi; nr++; }
    }
    if (nr) gb_addv(b, r, 2, gb_cps(b, rng, nr), str_body(c));
    if (!terminal) gb_addv(b, r, 1, ch(c, '"'));
    free(cps);
    free(rng);
    return r;
}

static uint32_t compile_object(sc *c, const json_t *s, const char *path) {
    gb *b = &c->b;
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    char sub[600];
    if (props && !json_is_object(props)) return FAIL(c, G4_ERR_ARG, "properties at %s must be an object", path);
    if (req && !json_is_array(req)) return FAIL(c, G4_ERR_ARG, "required at %s must be an array", path);
    if (ap && !json_is_boolean(ap) && !json_is_object(ap))
        return FAIL(c, G4_ERR_ARG, "additionalProperties at %s must be a boolean or a schema", path);
    size_t i;
    json_t *x;
    if (req) json_array_foreach(req, i, x) if (!json_is_string(x))
            return FAIL(c, G4_ERR_ARG, "required at %s must list strings", path);
    size_t np = props ? json_object_size(props) : 0, nreq = req ? json_array_size(req) : 0;
    uint32_t extra_val = GR_NONE;
    if (json_is_object(ap)) {
        snprintf(sub, sizeof sub, "%s/additionalProperties", path);
        extra_val = compile(c, ap, sub);
    } else if (!json_is_false(ap) && (np + nreq == 0 || json_is_true(ap))) {
        extra_val = any_value(c, c->o.any_depth - 1);
    }
    if (np + nreq == 0) {
        if (extra_val == GR_NONE) return gb_seqv(b, 4, ch(c, '{'), ws(c), ch(c, '}'), GR_EPS);
        return any_object_v(c, 0, extra_val);
    }
    /* the entries: listed properties, then required ones not listed */
    size_t n = 0;
    name *names = malloc((np + nreq + 1) * sizeof *names);
    uint32_t *kv = malloc((np + nreq + 1) * sizeof *kv);
    uint8_t *isreq = calloc(np + nreq + 1, 1);
    if (!names || !kv || !isreq) {
        free(names);
        free(kv);
        free(isreq);
        return FAIL(c, G4_ERR_NOMEM, "schema: out of memory");
    }
    const char *k;
    json_t *v;
    for (int pass = 0; pass < 2; pass++) {
        void *it = pass == 0 && props ? json_object_iter((json_t *)props) : NULL;
        size_t ri = 0;
        for (;;) {
            const json_t *ps;
            if (pass == 0) {
                if (!it) break;
                k = json_object_iter_key(it);
                ps = json_object_iter_value(it);
                it = json_object_iter_next((json_t *)props, it);
            } else {
                if (ri >= nreq) break;
                k = json_string_value(json_array_get(req, ri++));
                if (props && json_object_get(props, k)) continue;
                int dup = 0;
                for (size_t q = 0; q < n; q++) dup |= !strcmp(names[q].p, k);
                if (dup) continue;
                ps = json_true();
            }
            int r = 0;
            if (req) json_array_foreach(req, i, x) r |= !strcmp(json_string_value(x), k);
            snprintf(sub, sizeof sub, "%s/properties/%s", path, k);
            uint32_t val = compile(c, ps, sub);
            json_t *ks = json_string(k);
            char *enc = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (!enc) {
                gb_fail(b, G4_ERR_NOMEM, "schema: out of memory");
                break;
            }
            if (val == GR_NONE && !r) { /* an optional property no value satisfies: leave it out */
                free(enc);
                names[n].p = k;
                names[n].n = strlen(k);
                kv[n] = GR_NONE;
                isreq[n++] = 0;
                continue;
            }
            kv[n] = gb_seqv(b, 3, lits(c, enc), colon_ws(c), val);
            free(enc);
            names[n].p = k;
            names[n].n = strlen(k);
            isreq[n++] = (uint8_t)r;
        }
    }
    (void)v;
    uint32_t close = gb_seqv(b, 2, ws(c), ch(c, '}'));
    uint32_t rest0, rest1; /* after all entries: nothing emitted yet / something emitted */
    if (extra_val != GR_NONE) {
        name *sorted = malloc((n + 1) * sizeof *sorted);
        if (!sorted) {
            free(names);
            free(kv);
            free(isreq);
            return FAIL(c, G4_ERR_NOMEM, "schema: out of memory");
        }
        memcpy(sorted, names, n * sizeof *names);
        qsort(sorted, n, sizeof *sorted, cmp_name);
        uint32_t key = gb_seqv(b, 2, ch(c, '"'), key_not_in(c, sorted, n, 0, 0));
        free(sorted);
        uint32_t ekv = gb_seqv(b, 3, key, colon_ws(c), extra_val);
        uint32_t more = gb_rep(b, gb_seqv(b, 2, comma_ws(c), ekv), 0, -1, 0);
        rest1 = gb_seqv(b, 2, more, close);
        rest0 = gb_altv(b, 2, close, gb_seqv(b, 3, ekv, more, close));
    } else {
        rest0 = rest1 = close;
    }
    for (size_t j = n; j-- > 0;) {
        uint32_t e0 = gb_seqv(b, 2, kv[j], rest1), e1 = gb_seqv(b, 3, comma_ws(c), kv[j], rest1);
        if (isreq[j]) {
            rest0 = e0;
            rest1 = e1;
        } else {
            rest0 = gb_altv(b, 2, e0, rest0);
            rest1 = gb_altv(b, 2, e1, rest1);
        }
    }
    free(names);
    free(kv);
    free(isreq);
    return gb_seqv(b, 3, ch(c, '{'), ws(c), rest0);
}

/* ---- arrays ---- */

static uint32_t compile_array(sc *c, const json_t *s, const char *path) {
    gb *b = &c->b;
    char sub[600];
    const json_t *pre = json_object_get(s, "prefixItems"), *items = json_object_get(s, "items");
    const char *pre_kw = "prefixItems", *items_kw = "items";
    if (json_is_array(items)) { /* draft-07 tuple */
        if (pre) return FAIL(c, G4_ERR_ARG, "both prefixItems and an items array at %s", path);
        pre = items;
        pre_kw = "items";
        items = json_object_get(s, "additionalItems");
        items_kw = "additionalItems";
    }
    if (pre && !json_is_array(pre)) return FAIL(c, G4_ERR_ARG, "%s at %s must be an array", pre_kw, path);
    long mn = get_count(c, s, "minItems", 0, path), mx = get_count(c, s, "maxItems", -1, path);
    if (mx > G_MAX_REP) return FAIL(c, G4_ERR_UNSUPPORTED, "maxItems at %s above %d", path, G_MAX_REP);
    if (mn > G_MAX_REP) return FAIL(c, G4_ERR_UNSUPPORTED, "minItems at %s above %d", path, G_MAX_REP);
    if (mx >= 0 && mx < mn) return GR_NONE;
    uint32_t rest;
    if (items) {
        snprintf(sub, sizeof sub, "%s/%s", path, items_kw);
        rest = compile(c, items, sub);
    } else {
        rest = any_value(c, c->o.any_depth - 1);
    }
    size_t L = pre ? json_array_size(pre) : 0;
    if (L == 0) return container(c, '[', ']', rest, mn, mx);
    uint32_t *el = malloc(L * sizeof *el);
    if (!el) return FAIL(c, G4_ERR_NOMEM, "schema: out of memory");
    for (size_t i = 0; i < L; i++) {
        snprintf(sub, sizeof sub, "%s/%s/%zu", path, pre_kw, i);
        el[i] = compile(c, json_array_get(pre, i), sub);
    }
    uint32_t close = gb_seqv(b, 2, ws(c), ch(c, ']'));
    long K = (long)L > mn ? (long)L : mn;
    if (mx >= 0 && K > mx) K = mx;
    if (K < 1) K = 1;
    uint32_t t;
    if (mx >= 0 && K == mx) t = K >= mn ? close : GR_NONE;
    else t = gb_seqv(b, 2, gb_rep(b, gb_seqv(b, 2, comma_ws(c), rest), 0, mx < 0 ? -1 : mx - K, 0), close);
    for (long k = K - 1; k >= 1 && !b->st; k--) {
        uint32_t item = (size_t)k < L ? el[k] : rest;
        t = gb_altv(b, 2, k >= mn ? close : GR_NONE, gb_seqv(b, 3, comma_ws(c), item, t));
    }
    uint32_t first = gb_seqv(b, 2, el[0], t);
    free(el);
    return gb_seqv(b, 3, ch(c, '['), ws(c), gb_altv(b, 2, mn == 0 ? ch(c, ']') : GR_NONE, mx != 0 ? first : GR_NONE));
}

/* ---- oneOf: can the alternatives overlap? ---- */

/* types the compiled grammar of s generates (a superset) */
static int gen_types(sc *c, const json_t *s, int depth) {
    if (json_is_true(s)) return T_ALL;
    if (!json_is_object(s) || depth > 32) return json_is_false(s) ? 0 : T_ALL;
    s = resolve_top(c, s, "oneOf");
    if (!s || !json_is_object(s)) return T_ALL;
    const json_t *e = json_object_get(s, "enum"), *k = json_object_get(s, "const");
    if (k) return value_type(k);
    if (json_is_array(e)) {
        int m = 0;
        size_t i;
        json_t *x;
        json_array_foreach(e, i, x) m |= value_type(x);
        return m;
    }
    int t = type_set(c, s, "oneOf");
    if (t < 0) return T_ALL;
    const json_t *alts = json_object_get(s, "anyOf");
    if (!alts) alts = json_object_get(s, "oneOf");
    if (json_is_array(alts)) {
        int m = 0;
        size_t i;
        json_t *x;
        json_array_foreach(alts, i, x) m |= gen_types(c, x, depth + 1);
        t = type_and(t, m);
    }
    const json_t *all = json_object_get(s, "allOf");
    if (json_is_array(all)) {
        size_t i;
        json_t *x;
        json_array_foreach(all, i, x) t = type_and(t, gen_types(c, x, depth + 1));
    }
    if (t == T_ALL && !alts && !all) { /* inferred from the keywords, as compile does */
        if (json_object_get(s, "properties") || json_object_get(s, "required") || json_object_get(s, "additionalProperties")) return T_OBJ;
        if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems") || json_object_get(s, "maxItems")) return T_ARR;
        if (json_object_get(s, "minLength") || json_object_get(s, "maxLength") || json_object_get(s, "pattern") || json_object_get(s, "format")) return T_STR;
        if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum")) return T_NUM;
    }
    return t;
}

/* types a validator of s accepts (a superset) */
static int acc_types(sc *c, const json_t *s, int depth) {
    if (json_is_true(s)) return T_ALL;
    if (!json_is_object(s) || depth > 32) return json_is_false(s) ? 0 : T_ALL;
    s = resolve_top(c, s, "oneOf");
    if (!s || !json_is_object(s)) return T_ALL;
    int t = type_set(c, s, "oneOf");
    if (t < 0) return T_ALL;
    const json_t *k = json_object_get(s, "const"), *e = json_object_get(s, "enum");
    if (k) t = type_and(t, value_type(k));
    else if (json_is_array(e)) {
        int m = 0;
        size_t i;
        json_t *x;
        json_array_foreach(e, i, x) m |= value_type(x);
        t = type_and(t, m);
    }
    static const char *ak[] = {"anyOf", "oneOf", NULL};
    for (const char **q = ak; *q; q++) {
        const json_t *alts = json_object_get(s, *q);
        if (json_is_array(alts)) {
            int m = 0;
            size_t i;
            json_t *x;
            json_array_foreach(alts, i, x) m |= acc_types(c, x, depth + 1);
            t = type_and(t, m);
        }
    }
    const json_t *all = json_object_get(s, "allOf");
    if (json_is_array(all)) {
        size_t i;
        json_t *x;
        json_array_foreach(all, i, x) t = type_and(t, acc_types(c, x, depth + 1));
    }
    return t;
}

static int norm_t(int t) { return (t & T_INT) ? (t | T_NUM) & ~T_INT : t; }

/* 1 when no document generated from a validates against bj */
static int excludes(sc *c, const json_t *a, const json_t *bj) {
    if (!(norm_t(gen_types(c, a, 0)) & norm_t(acc_types(c, bj, 0)))) return 1;
    a = resolve_top(c, a, "oneOf");
    const json_t *b2 = resolve_top(c, bj, "oneOf");
    if (!json_is_object(a) || !json_is_object(b2)) return 0;
    const json_t *e = json_object_get(a, "enum"), *k = json_object_get(a, "const");
    if (k || json_is_array(e)) {
        size_t i;
        json_t *x;
        if (k) return jvalid(c, b2, k, 0) == 0;
        json_array_foreach(e, i, x) if (jvalid(c, b2, x, 0) != 0) return 0;
        return 1;
    }
    if (gen_types(c, a, 0) != T_OBJ || json_object_get(a, "anyOf") || json_object_get(a, "oneOf") ||
        json_object_get(a, "allOf"))
        return 0;
    const json_t *pa = json_object_get(a, "properties"), *ra = json_object_get(a, "required");
    const json_t *pb = json_object_get(b2, "properties"), *rb = json_object_get(b2, "required");
    const json_t *apa = json_object_get(a, "additionalProperties");
    /* b requires a key a never writes */
    int closed = json_is_object(pa) && json_object_size(pa) && (!apa || json_is_false(apa));
    size_t i;
    json_t *x;
    if (closed && json_is_array(rb)) json_array_foreach(rb, i, x) if (json_is_string(x) && !json_object_get(pa, json_string_value(x))) return 1;
    /* discriminator: a required property whose values all fail b's schema for it */
    if (json_is_array(ra) && json_is_object(pa) && json_is_object(pb)) json_array_foreach(ra, i, x) {
            if (!json_is_string(x)) continue;
            const json_t *sa = resolve_top(c, json_object_get(pa, json_string_value(x)), "oneOf");
            const json_t *sb = json_object_get(pb, json_string_value(x));
            if (!json_is_object(sa) || !sb) continue;
            const json_t *ka = json_object_get(sa, "const"), *ea = json_object_get(sa, "enum");
            if (ka) {
                if (jvalid(c, sb, ka, 0) == 0) return 1;
            } else if (json_is_array(ea) && json_array_size(ea)) {
                size_t j;
                json_t *y;
                int all = 1;
                json_array_foreach(ea, j, y) all &= jvalid(c, sb, y, 0) == 0;
                if (all) return 1;
            }
        }
    return 0;
}

/* ---- the compiler ---- */

static uint32_t compile_enum(sc *c, const json_t *s, const char *path) {
    const json_t *k = json_object_get(s, "const"), *e = json_object_get(s, "enum");
    if (e && !json_is_array(e)) return FAIL(c, G4_ERR_ARG, "enum at %s must be an array", path);
    uint32_t r = gb_rule(&c->b);
    size_t n = k ? 1 : json_array_size(e);
    for (size_t i = 0; i < n && !c->b.st; i++) {
        const json_t *v = k ? k : json_array_get(e, i);
        int ok = jvalid(c, s, v, 0);
        if (ok < 0) return FAIL(c, G4_ERR_UNSUPPORTED, "enum/const at %s together with keywords g4 cannot check a value against", path);
        if (!ok) continue;
        if (json_is_real(v) && !isfinite(json_real_value(v))) continue;
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!t) return FAIL(c, G4_ERR_NOMEM, "schema: out of memory");
        gb_addv(&c->b, r, 1, lits(c, t));
        free(t);
    }
    return r;
}

static int family(const json_t *s) {
    static const char *obj[] = {"properties", "required", "additionalProperties", NULL};
    static const char *arr[] = {"items", "prefixItems", "minItems", "maxItems", "additionalItems", NULL};
    static const char *str[] = {"minLength", "maxLength", "pattern", "format", NULL};
    static const char *num[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};
    const char **fam[] = {obj, arr, str, num};
    static const int bits[] = {T_OBJ, T_ARR, T_STR, T_NUM};
    for (int f = 0; f < 4; f++)
        for (const char **k = fam[f]; *k; k++)
            if (json_object_get(s, *k)) return bits[f];
    return T_ALL;
}

static uint32_t compile_obj(sc *c, const json_t *s, const char *path) {
    gb *b = &c->b;
    const char *k;
    json_t *v;
    char sub[600];
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(k, unsupported_kw))
            return FAIL(c, G4_ERR_UNSUPPORTED, "keyword \"%s\" at %s is not supported", k, path[0] ? path : "/");
        if (!strcmp(k, "uniqueItems") && json_is_true(v))
            return FAIL(c, G4_ERR_UNSUPPORTED, "keyword \"uniqueItems\" (true) at %s is not supported", path[0] ? path : "/");
    }
    if (json_object_get(s, "$ref")) {
        const json_t *t = resolve_ref(c, json_object_get(s, "$ref"), path[0] ? path : "/");
        if (!t) return GR_NONE;
        if (!has_constraint_except(s, "$ref", NULL)) return compile(c, t, json_string_value(json_object_get(s, "$ref")));
        json_t *rest = without(c, s, "$ref", NULL);
        json_t *m = rest ? merge(c, t, rest, path) : NULL;
        return m ? compile(c, m, path) : GR_NONE;
    }
    if (json_object_get(s, "allOf")) {
        const json_t *all = json_object_get(s, "allOf");
        if (!json_is_array(all)) return FAIL(c, G4_ERR_ARG, "allOf at %s must be an array", path);
        json_t *m = without(c, s, "allOf", NULL);
        size_t i;
        json_t *x;
        json_array_foreach(all, i, x) {
            if (!m) return GR_NONE;
            snprintf(sub, sizeof sub, "%s/allOf/%zu", path, i);
            m = merge(c, m, x, sub);
        }
        return m ? compile(c, m, path) : GR_NONE;
    }
    static const char *alt_kw[] = {"anyOf", "oneOf"};
    for (int w = 0; w < 2; w++) {
        const json_t *alts = json_object_get(s, alt_kw[w]);
        if (!alts) continue;
        if (!json_is_array(alts) || !json_array_size(alts))
            return FAIL(c, G4_ERR_ARG, "%s at %s must be a non-empty array", alt_kw[w], path);
        json_t *rest = NULL;
        if (has_constraint_except(s, alt_kw[w], NULL)) rest = without(c, s, alt_kw[w], NULL);
        size_t n = json_array_size(alts), i;
        json_t *x;
        json_t *list = temp(c, json_array());
        if (!list) return GR_NONE;
        json_array_foreach(alts, i, x) {
            snprintf(sub, sizeof sub, "%s/%s/%zu", path, alt_kw[w], i);
            json_t *m = rest ? merge(c, rest, x, sub) : NULL;
            json_array_append(list, m ? m : x);
            if (b->st) return GR_NONE;
        }
        if (w == 1) /* oneOf: exactly one must match */
            for (size_t a = 0; a < n; a++)
                for (size_t z = 0; z < n; z++)
                    if (a != z && !excludes(c, json_array_get(list, a), json_array_get(list, z))) {
                        if (b->st) return GR_NONE;
                        return FAIL(c, G4_ERR_UNSUPPORTED,
                                    "oneOf at %s: alternatives %zu and %zu may overlap (g4 cannot guarantee exactly "
                                    "one matches; use anyOf)",
                                    path, a < z ? a : z, a < z ? z : a);
                    }
        uint32_t r = gb_rule(b);
        json_array_foreach(list, i, x) {
            snprintf(sub, sizeof sub, "%s/%s/%zu", path, alt_kw[w], i);
            uint32_t y = compile(c, x, sub);
            if (y != GR_NONE) gb_add(b, r, &y, 1);
        }
        return r;
    }
    int t = type_set(c, s, path);
    if (t < 0) return GR_NONE;
    if (json_object_get(s, "const") || json_object_get(s, "enum")) return compile_enum(c, s, path);
    if (t == T_ALL) {
        t = family(s);
        if (t == T_ALL) return any_value(c, c->o.any_depth);
    }
    uint32_t r = gb_rule(b);
    if (t & T_NULL) gb_addv(b, r, 1, null_lit(c));
    if (t & T_BOOL) gb_addv(b, r, 1, any_bool(c));
    if (t & T_STR) gb_addv(b, r, 1, compile_string(c, s, path));
    if (t & T_NUM) gb_addv(b, r, 1, compile_number(c, s, path));
    else if (t & T_INT) gb_addv(b, r, 1, compile_integer(c, s, path));
    if (t & T_OBJ) gb_addv(b, r, 1, compile_object(c, s, path));
    if (t & T_ARR) gb_addv(b, r, 1, compile_array(c, s, path));
    return r;
}

static uint32_t compile(sc *c, const json_t *s, const char *path) {
    if (c->b.st) return GR_NONE;
    if (json_is_true(s)) return any_value(c, c->o.any_depth);
    if (json_is_false(s)) return GR_NONE;
    if (!json_is_object(s)) return FAIL(c, G4_ERR_ARG, "schema at %s must be an object or a boolean", path[0] ? path : "/");
    uint32_t r;
    if (memo_get(c, s, &r)) return r;
    if (c->depth >= MAX_DEPTH) return FAIL(c, G4_ERR_UNSUPPORTED, "schema nested deeper than %d at %s", MAX_DEPTH, path);
    r = gb_rule(&c->b);
    memo_put(c, s, r);
    c->depth++;
    uint32_t y = compile_obj(c, s, path);
    c->depth--;
    if (y != GR_NONE) gb_add(&c->b, r, &y, 1);
    return r;
}

void g4_grammar_opts_default(g4_grammar_opts *o) {
    o->ws_indent = 20;
    o->any_depth = 16;
}

g4_status g4_grammar_from_schema_opts(g4_grammar **out, const json_t *schema, const g4_grammar_opts *opts,
                                      g4_error *err) {
    *out = NULL;
    sc *c = calloc(1, sizeof *c);
    if (!c) return g4_fail(err, G4_ERR_NOMEM, "schema: out of memory");
    g4_status st = gb_init(&c->b, err);
    if (st) {
        gb_free(&c->b);
        free(c);
        return st;
    }
    g4_grammar_opts_default(&c->o);
    if (opts) {
        if (opts->ws_indent < -1 || opts->ws_indent > 64 || opts->any_depth < 1 || opts->any_depth > ANY_MAX) {
            gb_free(&c->b);
            free(c);
            return g4_fail(err, G4_ERR_ARG, "grammar options: ws_indent -1..64, any_depth 1..%d", ANY_MAX);
        }
        c->o = *opts;
    }
    c->root = schema;
    c->temps = json_array();
    if (!c->temps) gb_fail(&c->b, G4_ERR_NOMEM, "schema: out of memory");
    uint32_t value = schema ? compile(c, schema, "") : any_object(c, c->o.any_depth);
    uint32_t root = gb_seqv(&c->b, 2, value, ws(c));
    if (!c->b.st) st = gb_finish(&c->b, root, out, err);
    else st = c->b.st;
    gb_free(&c->b);
    json_decref(c->temps);
    free(c->memo);
    free(c);
    return st;
}

g4_status g4_grammar_from_schema(g4_grammar **out, const json_t *schema, g4_error *err) {
    return g4_grammar_from_schema_opts(out, schema, NULL, err);
}

g4_status g4_grammar_from_schema_text(g4_grammar **out, const char *text, size_t len, const g4_grammar_opts *opts,
                                      g4_error *err) {
    *out = NULL;
    json_error_t je;
    json_t *s = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!s) return g4_fail(err, G4_ERR_ARG, "schema is not valid JSON: %s (line %d)", je.text, je.line);
    g4_status st = g4_grammar_from_schema_opts(out, s, opts, err);
    json_decref(s);
    return st;
}
