/* Python / Jinja semantics for the chat renderer (see chat_py.h). */
#include "chat_py.h"
#include "chat_unicode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffer ---------------------------------------------------------------------------------------------------- */

static int cb_reserve(cbuf *b, size_t extra) {
    if (b->oom) return 0;
    if (extra > SIZE_MAX - b->n - 1) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->n + extra + 1;
    if (need <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void cb_put(cbuf *b, const void *s, size_t n) {
    if (!n || !cb_reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void cb_puts(cbuf *b, const char *s) { cb_put(b, s, strlen(s)); }

void cb_putc(cbuf *b, char c) { cb_put(b, &c, 1); }

void cb_printf(cbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        cb_put(b, tmp, (size_t)n);
        return;
    }
    if (!cb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void cb_free(cbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

char *cb_take(cbuf *b, size_t *len) {
    if (!b->oom) cb_reserve(b, 0);
    if (b->oom) {
        cb_free(b);
        return NULL;
    }
    char *p = b->p;
    if (len) *len = b->n;
    memset(b, 0, sizeof *b);
    return p;
}

/* ---- UTF-8 ---------------------------------------------------------------------------------------------------------- */

uint32_t u8_decode(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[0];
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (k <= 1 || k > n) {
        *len = 1;
        return c;
    }
    uint32_t cp = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *len = 1;
            return c;
        }
        cp = cp << 6 | (u[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF) {
        *len = 1;
        return c;
    }
    *len = k;
    return cp;
}

void u8_encode(cbuf *b, uint32_t cp) {
    char t[4];
    if (cp < 0x80) {
        t[0] = (char)cp;
        cb_put(b, t, 1);
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | cp >> 6);
        t[1] = (char)(0x80 | (cp & 0x3F));
        cb_put(b, t, 2);
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | cp >> 12);
        t[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        cb_put(b, t, 3);
    } else {
        t[0] = (char)(0xF0 | cp >> 18);
        t[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        t[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        t[3] = (char)(0x80 | (cp & 0x3F));
        cb_put(b, t, 4);
    }
}

/* ---- Unicode tables --------------------------------------------------------------------------------------------------- */

static int in_ranges(const g4u_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r[mid].hi < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && r[lo].lo <= cp;
}

#define IN_RANGES(tab, cp) in_ranges(tab, sizeof tab / sizeof tab[0], cp)

/* one-to-one mapping of cp through a table, cp itself when unmapped */
static uint32_t map_cp(const g4u_map *m, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m[mid].hi < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n && m[lo].lo <= cp && (cp - m[lo].lo) % m[lo].stride == 0) return (uint32_t)((int64_t)cp + m[lo].delta);
    return cp;
}

static const g4u_multi *find_multi(const g4u_multi *m, size_t n, uint32_t cp) {
    for (size_t i = 0; i < n; i++)
        if (m[i].cp == cp) return &m[i];
    return NULL;
}

int py_isspace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

void py_strip(const char *s, size_t n, size_t *off, size_t *len) {
    size_t a = 0, z = n, l;
    while (a < z) {
        uint32_t cp = u8_decode(s + a, z - a, &l);
        if (!py_isspace(cp)) break;
        a += l;
    }
    while (z > a) {
        size_t st = z - 1; /* start of the last character: at most 3 continuation bytes back */
        while (st > a && z - st < 4 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        uint32_t cp = u8_decode(s + st, z - st, &l);
        if (st + l != z) { /* not one well-formed character: the last byte stands alone */
            st = z - 1;
            cp = (unsigned char)s[st];
        }
        if (!py_isspace(cp)) break;
        z = st;
    }
    *off = a;
    *len = z - a;
}

void py_upper(cbuf *b, const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n) {
        uint32_t cp = u8_decode(s + i, n - i, &l);
        if (cp < 0x80) {
            cb_putc(b, (char)(cp >= 'a' && cp <= 'z' ? cp - 32 : cp));
        } else if (l == 1) {
            cb_put(b, s + i, 1); /* invalid byte: copied */
        } else {
            const g4u_multi *m = find_multi(g4u_upper_multi, sizeof g4u_upper_multi / sizeof g4u_upper_multi[0], cp);
            if (m) {
                for (uint32_t k = 0; k < m->n; k++) u8_encode(b, m->to[k]);
            } else {
                u8_encode(b, map_cp(g4u_upper, sizeof g4u_upper / sizeof g4u_upper[0], cp));
            }
        }
        i += l;
    }
}

/* CPython's final sigma rule: U+03A3 at s[i] becomes U+03C2 when preceded by a cased letter and not followed by
 * one (skipping case-ignorable code points on both sides) */
static int final_sigma(const char *s, size_t n, size_t i, size_t len) {
    size_t j = i, l;
    int cased_before = 0;
    while (j > 0) {
        size_t st = j - 1;
        while (st > 0 && j - st < 4 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        uint32_t cp = u8_decode(s + st, j - st, &l);
        if (st + l != j) {
            st = j - 1;
            cp = (unsigned char)s[st];
        }
        if (!IN_RANGES(g4u_ignorable, cp)) {
            cased_before = IN_RANGES(g4u_cased, cp);
            break;
        }
        j = st;
    }
    if (!cased_before) return 0;
    for (j = i + len; j < n; j += l) {
        uint32_t cp = u8_decode(s + j, n - j, &l);
        if (!IN_RANGES(g4u_ignorable, cp)) return !IN_RANGES(g4u_cased, cp);
    }
    return 1;
}

void py_lower(cbuf *b, const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n) {
        uint32_t cp = u8_decode(s + i, n - i, &l);
        if (cp < 0x80) {
            cb_putc(b, (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
        } else if (l == 1) {
            cb_put(b, s + i, 1);
        } else if (cp == 0x3A3) {
            u8_encode(b, final_sigma(s, n, i, l) ? 0x3C2 : 0x3C3);
        } else {
            const g4u_multi *m = find_multi(g4u_lower_multi, sizeof g4u_lower_multi / sizeof g4u_lower_multi[0], cp);
            if (m) {
                for (uint32_t k = 0; k < m->n; k++) u8_encode(b, m->to[k]);
            } else {
                u8_encode(b, map_cp(g4u_lower, sizeof g4u_lower / sizeof g4u_lower[0], cp));
            }
        }
        i += l;
    }
}

/* ---- numbers ---------------------------------------------------------------------------------------------------------- */

/* repr(float): the shortest digits that read back as x; fixed notation when the decimal exponent is in (-4, 16],
 * scientific otherwise ("1e+16", "1e-05"), ".0" added to whole numbers */
void py_float(cbuf *b, double x) {
    if (isnan(x)) {
        cb_puts(b, "nan");
        return;
    }
    if (isinf(x)) {
        cb_puts(b, x < 0 ? "-inf" : "inf");
        return;
    }
    if (x == 0) {
        cb_puts(b, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char t[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, x);
        if (strtod(t, NULL) == x) break;
    }
    /* t = [-]d[.ddd]e(+|-)XX */
    const char *q = t;
    if (*q == '-') {
        cb_putc(b, '-');
        q++;
    }
    char dig[20];
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < 19) dig[nd++] = *q;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    int e = *q == 'e' ? atoi(q + 1) : 0;
    int decpt = e + 1; /* x = 0.d1d2... * 10^decpt */
    if (decpt <= -4 || decpt > 16) {
        cb_putc(b, dig[0]);
        if (nd > 1) {
            cb_putc(b, '.');
            cb_put(b, dig + 1, (size_t)nd - 1);
        }
        cb_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (decpt <= 0) {
        cb_puts(b, "0.");
        for (int i = 0; i < -decpt; i++) cb_putc(b, '0');
        cb_put(b, dig, (size_t)nd);
    } else if (decpt >= nd) {
        cb_put(b, dig, (size_t)nd);
        for (int i = nd; i < decpt; i++) cb_putc(b, '0');
        cb_puts(b, ".0");
    } else {
        cb_put(b, dig, (size_t)decpt);
        cb_putc(b, '.');
        cb_put(b, dig + decpt, (size_t)(nd - decpt));
    }
}

/* ---- str() / repr() ------------------------------------------------------------------------------------------------------ */

static void py_repr_str(cbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    cb_putc(b, q);
    size_t i = 0, l;
    while (i < n) {
        uint32_t cp = u8_decode(s + i, n - i, &l);
        if (l == 1 && cp >= 0x80) cp = 0xDC00 + cp; /* an invalid byte would be a surrogate escape in Python */
        if (cp == (uint32_t)q || cp == '\\') {
            cb_putc(b, '\\');
            cb_putc(b, (char)cp);
        } else if (cp == '\t') {
            cb_puts(b, "\\t");
        } else if (cp == '\n') {
            cb_puts(b, "\\n");
        } else if (cp == '\r') {
            cb_puts(b, "\\r");
        } else if (cp < 0x20 || cp == 0x7F) {
            cb_printf(b, "\\x%02x", cp);
        } else if (cp < 0x80) {
            cb_putc(b, (char)cp);
        } else if (IN_RANGES(g4u_nonprint, cp)) {
            if (cp < 0x100) cb_printf(b, "\\x%02x", cp);
            else if (cp < 0x10000) cb_printf(b, "\\u%04x", cp);
            else cb_printf(b, "\\U%08x", cp);
        } else {
            cb_put(b, s + i, l);
        }
        i += l;
    }
    cb_putc(b, q);
}

static void py_any(cbuf *b, const json_t *v, int repr) {
    if (!v) return;
    switch (json_typeof(v)) {
    case JSON_NULL: cb_puts(b, "None"); break;
    case JSON_TRUE: cb_puts(b, "True"); break;
    case JSON_FALSE: cb_puts(b, "False"); break;
    case JSON_INTEGER: cb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: py_float(b, json_real_value(v)); break;
    case JSON_STRING:
        if (repr) py_repr_str(b, json_string_value(v), json_string_length(v));
        else cb_put(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_ARRAY: {
        cb_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) cb_puts(b, ", ");
            py_any(b, json_array_get(v, i), 1);
        }
        cb_putc(b, ']');
        break;
    }
    case JSON_OBJECT: {
        const char *k;
        size_t kl;
        json_t *x;
        int first = 1;
        cb_putc(b, '{');
        json_object_keylen_foreach((json_t *)v, k, kl, x) {
            if (!first) cb_puts(b, ", ");
            first = 0;
            py_repr_str(b, k, kl);
            cb_puts(b, ": ");
            py_any(b, x, 1);
        }
        cb_putc(b, '}');
        break;
    }
    }
}

void py_str(cbuf *b, const json_t *v) { py_any(b, v, 0); }
void py_repr(cbuf *b, const json_t *v) { py_any(b, v, 1); }

/* ---- truthiness, equality, lookup ---------------------------------------------------------------------------------------- */

int py_truthy(const json_t *v) {
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return 0;
    case JSON_TRUE: return 1;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0;
    case JSON_STRING: return json_string_length(v) != 0;
    case JSON_ARRAY: return json_array_size(v) != 0;
    case JSON_OBJECT: return json_object_size(v) != 0;
    }
    return 0;
}

/* numeric value of a number or bool: kind 0 = not a number, 1 = integer (*i), 2 = real (*d) */
static int num_of(const json_t *v, json_int_t *i, double *d) {
    switch (json_typeof(v)) {
    case JSON_TRUE: *i = 1; return 1;
    case JSON_FALSE: *i = 0; return 1;
    case JSON_INTEGER: *i = json_integer_value(v); return 1;
    case JSON_REAL: *d = json_real_value(v); return 2;
    default: return 0;
    }
}

static int int_eq_real(json_int_t i, double d) {
    if (!isfinite(d) || d != floor(d)) return 0;
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) return 0;
    return (json_int_t)d == i;
}

int py_eq(const json_t *a, const json_t *b) {
    if (!a) a = json_null(); /* jansson's null is a static singleton: no reference to drop */
    if (!b) b = json_null();
    json_int_t ia = 0, ib = 0;
    double da = 0, db = 0;
    int ka = num_of(a, &ia, &da), kb = num_of(b, &ib, &db);
    if (ka || kb) {
        if (!ka || !kb) return 0;
        if (ka == 1 && kb == 1) return ia == ib;
        if (ka == 2 && kb == 2) return da == db;
        return ka == 1 ? int_eq_real(ia, db) : int_eq_real(ib, da);
    }
    if (json_typeof(a) != json_typeof(b)) return 0;
    switch (json_typeof(a)) {
    case JSON_NULL: return 1;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!py_eq(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        size_t kl;
        json_t *x;
        json_object_keylen_foreach((json_t *)a, k, kl, x) {
            json_t *y = json_object_getn(b, k, kl);
            if (!y || !py_eq(x, y)) return 0;
        }
        return 1;
    }
    default: return 0;
    }
}

json_t *py_get(const json_t *obj, const char *key) {
    return obj && json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

int py_is_str(const json_t *v, const char *s) {
    size_t n = strlen(s);
    return v && json_is_string(v) && json_string_length(v) == n && !memcmp(json_string_value(v), s, n);
}

/* ---- dictsort, iteration -------------------------------------------------------------------------------------------------- */

typedef struct {
    py_item it;
    char *lower;
    size_t llen, idx;
} sort_ent;

static int sort_cmp(const void *pa, const void *pb) {
    const sort_ent *a = pa, *b = pb;
    size_t m = a->llen < b->llen ? a->llen : b->llen;
    int c = memcmp(a->lower, b->lower, m);
    if (c) return c;
    if (a->llen != b->llen) return a->llen < b->llen ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

py_item *py_dictsort(const json_t *obj, size_t *n, int *oom) {
    *n = 0;
    *oom = 0;
    size_t cnt = json_object_size(obj);
    if (!cnt) return NULL;
    sort_ent *e = calloc(cnt, sizeof *e);
    py_item *out = malloc(cnt * sizeof *out);
    if (!e || !out) goto fail;
    const char *k;
    size_t kl, i = 0;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, k, kl, v) {
        if (i >= cnt) break;
        cbuf lb = {0};
        py_lower(&lb, k, kl);
        size_t ll = 0;
        char *lp = cb_take(&lb, &ll);
        if (!lp) {
            /* an empty key lowers to nothing: cb_take of an empty buffer still allocates, so NULL is OOM */
            for (size_t j = 0; j < i; j++) free(e[j].lower);
            goto fail;
        }
        e[i] = (sort_ent){{k, kl, v}, lp, ll, i};
        i++;
    }
    cnt = i;
    qsort(e, cnt, sizeof *e, sort_cmp);
    for (i = 0; i < cnt; i++) {
        out[i] = e[i].it;
        free(e[i].lower);
    }
    free(e);
    *n = cnt;
    return out;
fail:
    free(e);
    free(out);
    *oom = 1;
    return NULL;
}

json_t *py_iter(const json_t *v, int *not_iterable) {
    *not_iterable = 0;
    if (!v) return json_array(); /* Undefined iterates as nothing */
    json_t *a = json_array();
    if (!a) return NULL;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (json_array_append(a, json_array_get(v, i))) goto oom;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), i = 0, l;
        while (i < n) {
            u8_decode(s + i, n - i, &l);
            if (json_array_append_new(a, json_stringn_nocheck(s + i, l))) goto oom;
            i += l;
        }
    } else if (json_is_object(v)) {
        const char *k;
        size_t kl;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, kl, x) {
            (void)x;
            if (json_array_append_new(a, json_stringn_nocheck(k, kl))) goto oom;
        }
    } else {
        json_decref(a);
        *not_iterable = 1;
        return NULL;
    }
    return a;
oom:
    json_decref(a);
    return NULL;
}
