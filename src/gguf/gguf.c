/* GGUF reader: map, validate everything, then hand out pointers into the mapping.
 *
 * File layout (little-endian):
 *   u32 magic "GGUF", u32 version (2 or 3), u64 n_tensors, u64 n_kv
 *   n_kv x { string key, u32 type, value }            string = u64 length + bytes (no NUL)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to general.alignment (default 32), then the data section; tensor offsets are relative
 *   to it and aligned.
 */
#include "gguf/gguf.h"
#include "quant/types.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const size_t vtype_size[GGUF_VTYPE_COUNT] = {
    [GGUF_UINT8] = 1, [GGUF_INT8] = 1, [GGUF_UINT16] = 2, [GGUF_INT16] = 2, [GGUF_UINT32] = 4,
    [GGUF_INT32] = 4, [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1, [GGUF_UINT64] = 8, [GGUF_INT64] = 8,
    [GGUF_FLOAT64] = 8,
};

const char *gguf_vtype_name(int t) {
    static const char *names[GGUF_VTYPE_COUNT] = {"u8",   "i8",  "u16",    "i16",   "u32", "i32", "f32",
                                                  "bool", "str", "array", "u64", "i64", "f64"};
    return t >= 0 && t < GGUF_VTYPE_COUNT ? names[t] : "?";
}

size_t gguf_vtype_size(int t) { return t >= 0 && t < GGUF_VTYPE_COUNT ? vtype_size[t] : 0; }

int gguf_vtype_is_int(int t) {
    return t == GGUF_UINT8 || t == GGUF_INT8 || t == GGUF_UINT16 || t == GGUF_INT16 || t == GGUF_UINT32 ||
           t == GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

/* ---- bounded cursor over the buffer ---- */

typedef struct {
    const uint8_t *p;
    uint64_t size, pos;
    g4_error *err;
} cursor;

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static g4_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return g4_fail(c->err, G4_ERR_FORMAT,
                       "truncated GGUF: %s at offset %llu needs %llu bytes, only %llu left in the %llu-byte file",
                       what, (unsigned long long)c->pos, (unsigned long long)n,
                       (unsigned long long)(c->size - c->pos), (unsigned long long)c->size);
    return G4_OK;
}

static g4_status get_u32(cursor *c, uint32_t *v, const char *what) {
    g4_status s = need(c, 4, what);
    if (s) return s;
    *v = rd_u32(c->p + c->pos);
    c->pos += 4;
    return G4_OK;
}

static g4_status get_u64(cursor *c, uint64_t *v, const char *what) {
    g4_status s = need(c, 8, what);
    if (s) return s;
    *v = rd_u64(c->p + c->pos);
    c->pos += 8;
    return G4_OK;
}

/* string: u64 length + bytes; returns pointer into the buffer */
static g4_status get_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what) {
    uint64_t at = c->pos;
    g4_status st = get_u64(c, len, what);
    if (st) return st;
    if (*len > c->size - c->pos)
        return g4_fail(c->err, G4_ERR_FORMAT,
                       "GGUF %s at offset %llu has length %llu, more than the %llu bytes left in the file", what,
                       (unsigned long long)at, (unsigned long long)*len, (unsigned long long)(c->size - c->pos));
    *s = c->p + c->pos;
    c->pos += *len;
    return G4_OK;
}

static char *dup_name(const uint8_t *s, uint64_t len) {
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

/* printable version of a possibly binary name for error messages */
static const char *show(const char *s, char *buf, size_t n) {
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 5 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 32 && ch < 127) buf[j++] = (char)ch;
        else j += (size_t)snprintf(buf + j, n - j, "\\x%02x", ch);
    }
    buf[j] = 0;
    return buf;
}

/* ---- metadata values ---- */

static g4_status read_value(cursor *c, gguf_kv *kv, const char *key) {
    char kb[96];
    uint32_t t;
    g4_status s = get_u32(c, &t, "metadata value type");
    if (s) return s;
    if (t >= GGUF_VTYPE_COUNT)
        return g4_fail(c->err, G4_ERR_FORMAT, "GGUF key '%s' at offset %llu has unknown value type %u",
                       show(key, kb, sizeof kb), (unsigned long long)kv->file_offset, t);
    kv->type = (int)t;
    if (t == GGUF_STRING) {
        const uint8_t *str;
        uint64_t len;
        kv->data = c->p + c->pos;
        if ((s = get_str(c, &str, &len, "string value"))) return s;
        kv->nbytes = 8 + len;
        return G4_OK;
    }
    if (t != GGUF_ARRAY) {
        if ((s = need(c, vtype_size[t], "metadata value"))) return s;
        kv->data = c->p + c->pos;
        kv->nbytes = vtype_size[t];
        c->pos += vtype_size[t];
        return G4_OK;
    }
    uint32_t at;
    uint64_t n;
    if ((s = get_u32(c, &at, "array element type")) || (s = get_u64(c, &n, "array length"))) return s;
    if (at >= GGUF_VTYPE_COUNT || at == GGUF_ARRAY)
        return g4_fail(c->err, G4_ERR_FORMAT, "GGUF key '%s' is an array of %s element type %u",
                       show(key, kb, sizeof kb), at == GGUF_ARRAY ? "nested-array" : "unknown", at);
    kv->arr_type = (int)at;
    kv->arr_n = n;
    kv->data = c->p + c->pos;
    if (at != GGUF_STRING) {
        uint64_t bytes;
        if (!g4_mul_ok(n, vtype_size[at], &bytes) || bytes > c->size - c->pos)
            return g4_fail(c->err, G4_ERR_FORMAT,
                           "GGUF key '%s': array of %llu %s elements does not fit in the file (offset %llu)",
                           show(key, kb, sizeof kb), (unsigned long long)n, gguf_vtype_name((int)at),
                           (unsigned long long)c->pos);
        c->pos += bytes;
        kv->nbytes = bytes;
        return G4_OK;
    }
    /* array of strings: each needs at least its 8-byte length */
    if (n > (c->size - c->pos) / 8)
        return g4_fail(c->err, G4_ERR_FORMAT,
                       "GGUF key '%s': array of %llu strings cannot fit in the %llu bytes left (offset %llu)",
                       show(key, kb, sizeof kb), (unsigned long long)n, (unsigned long long)(c->size - c->pos),
                       (unsigned long long)c->pos);
    kv->str_off = malloc((n ? n : 1) * sizeof *kv->str_off);
    if (!kv->str_off) return g4_fail(c->err, G4_ERR_NOMEM, "out of memory indexing GGUF key '%s'", key);
    uint64_t start = c->pos;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *str;
        uint64_t len;
        kv->str_off[i] = c->pos - start;
        if ((s = get_str(c, &str, &len, "string array element"))) return s;
    }
    kv->nbytes = c->pos - start;
    return G4_OK;
}

/* ---- accessors ---- */

uint64_t gguf_kv_u64(const gguf_kv *kv) {
    const uint8_t *p = kv->data;
    switch (kv->type) {
    case GGUF_UINT8: case GGUF_BOOL: return p[0];
    case GGUF_INT8: return (uint64_t)(int64_t)(int8_t)p[0];
    case GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_INT16: { int16_t v; memcpy(&v, p, 2); return (uint64_t)(int64_t)v; }
    case GGUF_UINT32: return rd_u32(p);
    case GGUF_INT32: { int32_t v; memcpy(&v, p, 4); return (uint64_t)(int64_t)v; }
    case GGUF_UINT64: case GGUF_INT64: return rd_u64(p);
    default: return 0;
    }
}

static double num_at(int type, const uint8_t *p) {
    switch (type) {
    case GGUF_UINT8: case GGUF_BOOL: return p[0];
    case GGUF_INT8: return (int8_t)p[0];
    case GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_UINT32: return rd_u32(p);
    case GGUF_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_UINT64: return (double)rd_u64(p);
    case GGUF_INT64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case GGUF_FLOAT32: { float v; memcpy(&v, p, 4); return v; }
    case GGUF_FLOAT64: { double v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

double gguf_kv_f64(const gguf_kv *kv) { return num_at(kv->type, kv->data); }

double gguf_arr_f64(const gguf_kv *kv, uint64_t i) {
    if (kv->type != GGUF_ARRAY || i >= kv->arr_n || kv->arr_type == GGUF_STRING) return 0;
    return num_at(kv->arr_type, kv->data + i * vtype_size[kv->arr_type]);
}

int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i) {
    if (kv->type != GGUF_ARRAY || i >= kv->arr_n || kv->arr_type == GGUF_STRING) return 0;
    const uint8_t *p = kv->data + i * vtype_size[kv->arr_type];
    if (kv->arr_type == GGUF_INT64 || kv->arr_type == GGUF_UINT64) {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    /* floats: saturate (NaN -> 0); converting an out-of-range double to int64 is undefined */
    double d = num_at(kv->arr_type, p);
    if (d != d) return 0;
    if (d >= 9223372036854775808.0) return INT64_MAX;
    if (d < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)d;
}

const char *gguf_arr_str(const gguf_kv *kv, uint64_t i, uint64_t *len) {
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING || i >= kv->arr_n) {
        *len = 0;
        return "";
    }
    const uint8_t *p = kv->data + kv->str_off[i];
    *len = rd_u64(p);
    return (const char *)p + 8;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (strcmp(f->kv[i].key, key) == 0) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static g4_status wrong_type(const gguf_kv *kv, const char *want, g4_error *err) {
    return g4_fail(err, G4_ERR_FORMAT, "GGUF key '%s' (offset %llu) has type %s%s%s, expected %s", kv->key,
                   (unsigned long long)kv->file_offset, gguf_vtype_name(kv->type),
                   kv->type == GGUF_ARRAY ? " of " : "", kv->type == GGUF_ARRAY ? gguf_vtype_name(kv->arr_type) : "",
                   want);
}

static const gguf_kv *lookup(const gguf_file *f, const char *key, int required, g4_status *st, g4_error *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    *st = G4_OK;
    if (!kv && required) *st = g4_fail(err, G4_ERR_FORMAT, "GGUF file lacks the required key '%s'", key);
    return kv;
}

g4_status gguf_get_u32(const gguf_file *f, const char *key, int required, uint32_t *out, g4_error *err) {
    g4_status st;
    const gguf_kv *kv = lookup(f, key, required, &st, err);
    if (!kv) return st;
    if (!gguf_vtype_is_int(kv->type)) return wrong_type(kv, "an unsigned integer", err);
    int is_signed = kv->type == GGUF_INT8 || kv->type == GGUF_INT16 || kv->type == GGUF_INT32 || kv->type == GGUF_INT64;
    uint64_t v = gguf_kv_u64(kv);
    if ((is_signed && (int64_t)v < 0) || v > UINT32_MAX) {
        if (is_signed) return g4_fail(err, G4_ERR_FORMAT, "GGUF key '%s' has value %lld, out of range", key, (long long)v);
        return g4_fail(err, G4_ERR_FORMAT, "GGUF key '%s' has value %llu, out of range", key, (unsigned long long)v);
    }
    *out = (uint32_t)v;
    return G4_OK;
}

g4_status gguf_get_f32(const gguf_file *f, const char *key, int required, float *out, g4_error *err) {
    g4_status st;
    const gguf_kv *kv = lookup(f, key, required, &st, err);
    if (!kv) return st;
    if (kv->type != GGUF_FLOAT32 && kv->type != GGUF_FLOAT64 && !gguf_vtype_is_int(kv->type))
        return wrong_type(kv, "a number", err);
    *out = (float)gguf_kv_f64(kv);
    return G4_OK;
}

g4_status gguf_get_bool(const gguf_file *f, const char *key, int required, int *out, g4_error *err) {
    g4_status st;
    const gguf_kv *kv = lookup(f, key, required, &st, err);
    if (!kv) return st;
    if (kv->type != GGUF_BOOL && !gguf_vtype_is_int(kv->type)) return wrong_type(kv, "a bool", err);
    *out = gguf_kv_u64(kv) != 0;
    return G4_OK;
}

g4_status gguf_get_str(const gguf_file *f, const char *key, int required, const char **s, uint64_t *len,
                       g4_error *err) {
    g4_status st;
    const gguf_kv *kv = lookup(f, key, required, &st, err);
    if (!kv) return st;
    if (kv->type != GGUF_STRING) return wrong_type(kv, "a string", err);
    *len = rd_u64(kv->data);
    *s = (const char *)kv->data + 8;
    return G4_OK;
}

/* ---- parse ---- */

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) {
            free(f->kv[i].key);
            free(f->kv[i].str_off);
        }
    if (f->tensors)
        for (uint64_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    free(f);
}

static int cmp_name_idx(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

typedef struct { uint64_t off, end; const char *name; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off ? 1 : 0;
}

/* duplicate detection over n names: sorted copy of the pointers */
static g4_status check_dups(const char **names, uint64_t n, const char *what, g4_error *err) {
    if (n < 2) return G4_OK;
    qsort(names, n, sizeof *names, cmp_name_idx);
    for (uint64_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            char b[96];
            return g4_fail(err, G4_ERR_FORMAT, "GGUF file has two %s named '%s'", what, show(names[i], b, sizeof b));
        }
    return G4_OK;
}

static g4_status parse(gguf_file *f, g4_error *err) {
    cursor c = {f->base, f->size, 0, err};
    uint32_t version;
    g4_status s;
    char nb[96];

    if (f->size < 4 || rd_u32(f->base) != GGUF_MAGIC) {
        if (f->size < 4) return g4_fail(err, G4_ERR_FORMAT, "not a GGUF file: only %llu bytes", (unsigned long long)f->size);
        return g4_fail(err, G4_ERR_FORMAT, "not a GGUF file: bad magic %02x %02x %02x %02x (expected 'GGUF')",
                       f->base[0], f->base[1], f->base[2], f->base[3]);
    }
    c.pos = 4;
    if ((s = get_u32(&c, &version, "version"))) return s;
    if (version == 1) return g4_fail(err, G4_ERR_UNSUPPORTED, "GGUF version 1 is obsolete; convert the file again");
    if (version > 0xffff && (version >> 24) >= 2)
        return g4_fail(err, G4_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
    if (version != 2 && version != 3)
        return g4_fail(err, G4_ERR_UNSUPPORTED, "unsupported GGUF version %u (g4 reads versions 2 and 3)", version);
    f->version = version;
    if ((s = get_u64(&c, &f->n_tensors, "tensor count")) || (s = get_u64(&c, &f->n_kv, "metadata count"))) return s;
    /* cheapest possible entries: kv = 8 (key len) + 1 (key) + 4 (type) + 1 (u8); tensor = 8 + 1 + 4 + 8 + 4 + 8 */
    if (f->n_kv > (f->size - c.pos) / 14)
        return g4_fail(err, G4_ERR_FORMAT, "GGUF header claims %llu metadata entries; the %llu-byte file cannot hold them",
                       (unsigned long long)f->n_kv, (unsigned long long)f->size);
    if (f->n_tensors > (f->size - c.pos) / 33)
        return g4_fail(err, G4_ERR_FORMAT, "GGUF header claims %llu tensors; the %llu-byte file cannot hold them",
                       (unsigned long long)f->n_tensors, (unsigned long long)f->size);
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors) return g4_fail(err, G4_ERR_NOMEM, "out of memory reading GGUF header");

    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        const uint8_t *k;
        uint64_t klen;
        kv->file_offset = c.pos;
        if ((s = get_str(&c, &k, &klen, "metadata key"))) return s;
        if (klen == 0) return g4_fail(err, G4_ERR_FORMAT, "GGUF metadata entry %llu (offset %llu) has an empty key",
                                      (unsigned long long)i, (unsigned long long)kv->file_offset);
        if (memchr(k, 0, klen)) return g4_fail(err, G4_ERR_FORMAT, "GGUF metadata key at offset %llu contains a NUL byte",
                                               (unsigned long long)kv->file_offset);
        if (!(kv->key = dup_name(k, klen))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        if ((s = read_value(&c, kv, kv->key))) return s;
    }
    {
        const char **names = malloc((f->n_kv ? f->n_kv : 1) * sizeof *names);
        if (!names) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < f->n_kv; i++) names[i] = f->kv[i].key;
        s = check_dups(names, f->n_kv, "metadata keys", err);
        free(names);
        if (s) return s;
    }

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find_kv(f, "general.alignment");
    if (al) {
        if (al->type != GGUF_UINT32) return wrong_type(al, "u32", err);
        uint64_t a = gguf_kv_u64(al);
        if (a == 0 || (a & (a - 1)) || a > (1u << 24))
            return g4_fail(err, G4_ERR_FORMAT, "GGUF general.alignment = %llu is not a power of two in 1..2^24",
                           (unsigned long long)a);
        f->alignment = a;
    }

    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        const uint8_t *nm;
        uint64_t nlen, at = c.pos;
        uint32_t nd, type;
        if ((s = get_str(&c, &nm, &nlen, "tensor name"))) return s;
        if (nlen == 0 || memchr(nm, 0, nlen))
            return g4_fail(err, G4_ERR_FORMAT, "GGUF tensor %llu (offset %llu) has an empty or invalid name",
                           (unsigned long long)i, (unsigned long long)at);
        if (!(t->name = dup_name(nm, nlen))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        if ((s = get_u32(&c, &nd, "tensor dimension count"))) return s;
        if (nd < 1 || nd > GGUF_MAX_DIMS)
            return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' (offset %llu) has %u dimensions (1..%d allowed)",
                           show(t->name, nb, sizeof nb), (unsigned long long)at, nd, GGUF_MAX_DIMS);
        t->n_dims = (int)nd;
        uint64_t nel = 1, mag = 1; /* mag: product of the non-zero dims, so a 0 cannot hide an overflow */
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if ((s = get_u64(&c, &v, "tensor dimension"))) return s;
            if (v > (uint64_t)INT64_MAX || !g4_mul_ok(nel, v, &nel) || !g4_mul_ok(mag, v ? v : 1, &mag) ||
                mag > (uint64_t)INT64_MAX)
                return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' has absurd dimensions (dim %u = %llu): element count overflows",
                               show(t->name, nb, sizeof nb), d, (unsigned long long)v);
            t->ne[d] = (int64_t)v;
        }
        t->n_elements = nel;
        if ((s = get_u32(&c, &type, "tensor type")) || (s = get_u64(&c, &t->offset, "tensor offset"))) return s;
        t->type = (int)type;
        const g4_type_traits *tr = g4_type_traits_get((int)type);
        if (!tr) {
            const char *tn = g4_type_name((int)type);
            return g4_fail(err, tn ? G4_ERR_UNSUPPORTED : G4_ERR_FORMAT,
                           "tensor '%s' has weight type %u%s%s%s, which g4 %s", show(t->name, nb, sizeof nb), type,
                           tn ? " (" : "", tn ? tn : "", tn ? ")" : "", tn ? "does not support yet" : "does not know");
        }
        if (t->ne[0] % tr->blck)
            return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' has row length %lld, not a multiple of the %s block size %d",
                           show(t->name, nb, sizeof nb), (long long)t->ne[0], tr->name, tr->blck);
        if (!g4_mul_ok(nel / (uint64_t)tr->blck, tr->type_size, &t->nbytes))
            return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' byte size overflows", show(t->name, nb, sizeof nb));
        if (t->offset % f->alignment)
            return g4_fail(err, G4_ERR_FORMAT, "tensor '%s' data offset %llu is not aligned to %llu bytes",
                           show(t->name, nb, sizeof nb), (unsigned long long)t->offset, (unsigned long long)f->alignment);
    }
    {
        const char **names = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *names);
        if (!names) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        for (uint64_t i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
        s = check_dups(names, f->n_tensors, "tensors", err);
        free(names);
        if (s) return s;
    }

    /* data section starts at the next multiple of the alignment */
    uint64_t data = c.pos + (f->alignment - c.pos % f->alignment) % f->alignment;
    if (f->n_tensors && data > f->size)
        return g4_fail(err, G4_ERR_FORMAT, "truncated GGUF: data section would start at %llu, past the end (%llu bytes)",
                       (unsigned long long)data, (unsigned long long)f->size);
    f->header_bytes = c.pos;
    f->data_offset = data > f->size ? f->size : data; /* only without tensors: a file may end unpadded */
    span *sp = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *sp);
    if (!sp) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    uint64_t avail = f->size > data ? f->size - data : 0;
    f->data_bytes = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            free(sp);
            return g4_fail(err, G4_ERR_FORMAT,
                           "truncated GGUF: tensor '%s' (%llu bytes at data offset %llu) ends past the end of the file "
                           "(data section has %llu bytes)",
                           show(t->name, nb, sizeof nb), (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                           (unsigned long long)avail);
        }
        t->data = f->base + data + t->offset;
        sp[i] = (span){t->offset, t->offset + t->nbytes, t->name};
        f->data_bytes += t->nbytes;
    }
    qsort(sp, f->n_tensors, sizeof *sp, cmp_span);
    /* sorted by start: a non-empty span overlaps an earlier one iff it starts before the furthest end
     * seen so far (empty spans occupy nothing and are skipped, so they cannot hide an overlap) */
    const span *far = NULL;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (sp[i].end == sp[i].off) continue;
        if (far && sp[i].off < far->end) {
            char b2[96];
            g4_status r = g4_fail(err, G4_ERR_FORMAT, "GGUF tensors '%s' and '%s' overlap in the data section",
                                  show(far->name, nb, sizeof nb), show(sp[i].name, b2, sizeof b2));
            free(sp);
            return r;
        }
        if (!far || sp[i].end > far->end) far = &sp[i];
    }
    free(sp);
    return G4_OK;
}

g4_status gguf_parse(gguf_file **out, const void *buf, size_t size, g4_error *err) {
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    f->base = buf;
    f->size = size;
    g4_status s = parse(f, err);
    if (s) {
        gguf_close(f);
        return s;
    }
    *out = f;
    return G4_OK;
}

static g4_status not_regular(const char *path, const struct stat *st, g4_error *err) {
    const mode_t m = st->st_mode;
    return g4_fail(err, G4_ERR_IO, "'%s' is not a regular file (%s)", path,
                   S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) || S_ISBLK(m) ? "a device" :
                   S_ISSOCK(m) ? "a socket" : "not a plain file");
}

g4_status gguf_open(gguf_file **out, const char *path, g4_error *err) {
    *out = NULL;
    /* stat first: a FIFO, device or directory is refused without being opened (opening some devices has
     * effects; a FIFO would wait for a writer). O_NONBLOCK covers a swap between stat and open, and fstat
     * checks what was opened (the flag changes nothing for a regular file, which is only mapped). */
    struct stat st;
    if (stat(path, &st) != 0) return g4_fail(err, G4_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return not_regular(path, &st, err);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return g4_fail(err, G4_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return g4_fail(err, G4_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return not_regular(path, &st, err);
    }
    if (st.st_size == 0) {
        close(fd);
        return g4_fail(err, G4_ERR_FORMAT, "'%s' is empty, not a GGUF file", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return g4_fail(err, G4_ERR_IO, "cannot map '%s': %s", path, strerror(e));
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(map, (size_t)st.st_size);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    f->base = map;
    f->size = (uint64_t)st.st_size;
    f->mapped = 1;
    g4_status s = parse(f, err);
    if (s) {
        /* prefix the file name once */
        if (err) {
            char tmp[sizeof err->msg + 1024];
            snprintf(tmp, sizeof tmp, "%.1000s: %s", path, err->msg);
            size_t n = strlen(tmp);
            if (n >= sizeof err->msg) n = sizeof err->msg - 1;
            memcpy(err->msg, tmp, n);
            err->msg[n] = 0;
        }
        gguf_close(f);
        return s;
    }
    *out = f;
    return G4_OK;
}
