/* GGUF reader: a valid in-memory file with every value type and several tensor types parses and every
 * accessor returns the right thing; a large set of malformed files (truncation at every length, bad
 * headers, absurd counts and lengths, bad values, bad tensor infos, bad data layout) is rejected with
 * one clear message and never crashes; every oracle model parses and its layout adds up to the file size.
 *
 * Files are built here by a tiny byte builder (independent of the GGUF writer). Every buffer handed to
 * gguf_parse is a heap block of exactly the file's size, so ASan flags any read past the end.
 * G4_TEST_VERBOSE=1 prints every rejection message.
 */
#include "gguf/gguf.h"
#include "quant/types.h"
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int verbose;
static int n_reject; /* named malformed cases checked */
static int n_trunc;  /* truncated copies of valid files checked */

/* ---- byte builder ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void bb_u16(bb *b, uint16_t v) { bb_put(b, &v, 2); } /* little-endian host (x86-64, arm64) */
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_f32(bb *b, float v) { bb_put(b, &v, 4); }
static void bb_f64(bb *b, double v) { bb_put(b, &v, 8); }
static void bb_strn(bb *b, const void *s, uint64_t n) {
    bb_u64(b, n);
    bb_put(b, s, (size_t)n);
}
static void bb_str(bb *b, const char *s) { bb_strn(b, s, strlen(s)); }

/* ---- GGUF builder: metadata and tensor infos collected separately, assembled by gg_build ---------- */

typedef struct {
    uint32_t magic, version;
    bb kv, ti;
    uint64_t n_kv, n_ti;
    int set_n_kv, set_n_ti;   /* header counts overridden by hdr_n_kv / hdr_n_ti */
    uint64_t hdr_n_kv, hdr_n_ti;
    uint64_t align;           /* padding before the data section */
    int no_pad;               /* end the file (or start the data) right after the tensor infos */
    uint64_t data_len;        /* bytes of data section (auto: end of the last tensor added by ti_add) */
    uint64_t hdr_end;         /* filled by gg_build: end of the tensor infos */
} gg;

static void gg_init(gg *g) {
    memset(g, 0, sizeof *g);
    g->magic = GGUF_MAGIC;
    g->version = 3;
    g->align = GGUF_DEFAULT_ALIGNMENT;
}
static void gg_free(gg *g) {
    free(g->kv.p);
    free(g->ti.p);
}

static uint8_t pat(uint64_t i) { return (uint8_t)(i * 131u + 7u); } /* data section byte i */

/* exact-size heap copy of the file */
static uint8_t *gg_build(gg *g, size_t *len) {
    bb b = {0};
    bb_u32(&b, g->magic);
    bb_u32(&b, g->version);
    bb_u64(&b, g->set_n_ti ? g->hdr_n_ti : g->n_ti);
    bb_u64(&b, g->set_n_kv ? g->hdr_n_kv : g->n_kv);
    bb_put(&b, g->kv.p, g->kv.n);
    bb_put(&b, g->ti.p, g->ti.n);
    g->hdr_end = b.n;
    if (!g->no_pad)
        while (b.n % g->align) bb_u8(&b, 0);
    for (uint64_t i = 0; i < g->data_len; i++) bb_u8(&b, pat(i));
    uint8_t *out = malloc(b.n ? b.n : 1);
    if (!out) exit(2);
    if (b.n) memcpy(out, b.p, b.n);
    *len = b.n;
    free(b.p);
    return out;
}

static void kv_key(gg *g, const char *k) {
    bb_str(&g->kv, k);
    g->n_kv++;
}
static void kv_keyn(gg *g, const void *k, uint64_t n) {
    bb_strn(&g->kv, k, n);
    g->n_kv++;
}
static void kv_u8(gg *g, const char *k, uint8_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_UINT8); bb_u8(&g->kv, v); }
static void kv_i8(gg *g, const char *k, int8_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_INT8); bb_u8(&g->kv, (uint8_t)v); }
static void kv_u16(gg *g, const char *k, uint16_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_UINT16); bb_u16(&g->kv, v); }
static void kv_i16(gg *g, const char *k, int16_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_INT16); bb_u16(&g->kv, (uint16_t)v); }
static void kv_u32(gg *g, const char *k, uint32_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_UINT32); bb_u32(&g->kv, v); }
static void kv_i32(gg *g, const char *k, int32_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_INT32); bb_u32(&g->kv, (uint32_t)v); }
static void kv_f32(gg *g, const char *k, float v) { kv_key(g, k); bb_u32(&g->kv, GGUF_FLOAT32); bb_f32(&g->kv, v); }
static void kv_bool(gg *g, const char *k, int v) { kv_key(g, k); bb_u32(&g->kv, GGUF_BOOL); bb_u8(&g->kv, (uint8_t)v); }
static void kv_u64(gg *g, const char *k, uint64_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_UINT64); bb_u64(&g->kv, v); }
static void kv_i64(gg *g, const char *k, int64_t v) { kv_key(g, k); bb_u32(&g->kv, GGUF_INT64); bb_u64(&g->kv, (uint64_t)v); }
static void kv_f64(gg *g, const char *k, double v) { kv_key(g, k); bb_u32(&g->kv, GGUF_FLOAT64); bb_f64(&g->kv, v); }
static void kv_str(gg *g, const char *k, const char *v) { kv_key(g, k); bb_u32(&g->kv, GGUF_STRING); bb_str(&g->kv, v); }
/* array header; the caller appends the elements to g->kv */
static void kv_arr(gg *g, const char *k, uint32_t elem, uint64_t n) {
    kv_key(g, k);
    bb_u32(&g->kv, GGUF_ARRAY);
    bb_u32(&g->kv, elem);
    bb_u64(&g->kv, n);
}

/* type layout (values per block, bytes per block) for the types these tests use, from ggml */
static int blk_of(uint32_t type, uint64_t *bytes) {
    switch (type) {
    case G4_TYPE_F32: *bytes = 4; return 1;
    case G4_TYPE_F16: case G4_TYPE_BF16: *bytes = 2; return 1;
    case G4_TYPE_Q4_0: *bytes = 18; return 32;
    case G4_TYPE_Q8_0: *bytes = 34; return 32;
    case G4_TYPE_Q4_K: *bytes = 144; return 256;
    case G4_TYPE_Q6_K: *bytes = 210; return 256;
    default: *bytes = 0; return 0;
    }
}
static uint64_t tensor_bytes(uint32_t type, uint32_t nd, const uint64_t *ne) {
    uint64_t bs;
    int blk = blk_of(type, &bs);
    if (!blk) return 0;
    uint64_t n = ne[0] / (uint64_t)blk * bs;
    for (uint32_t d = 1; d < nd; d++) n *= ne[d];
    return n;
}

/* raw tensor info */
static void ti_raw(gg *g, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(&g->ti, name);
    bb_u32(&g->ti, nd);
    for (uint32_t d = 0; d < nd; d++) bb_u64(&g->ti, ne[d]);
    bb_u32(&g->ti, type);
    bb_u64(&g->ti, off);
    g->n_ti++;
}
/* tensor placed after the previous ones (aligned); grows the data section; returns its offset */
static uint64_t ti_add(gg *g, const char *name, uint32_t type, uint32_t nd, uint64_t ne0, uint64_t ne1, uint64_t ne2,
                       uint64_t ne3) {
    uint64_t ne[4] = {ne0, ne1, ne2, ne3};
    uint64_t off = (g->data_len + g->align - 1) / g->align * g->align;
    ti_raw(g, name, nd, ne, type, off);
    g->data_len = off + tensor_bytes(type, nd, ne);
    return off;
}

/* ---- checking helpers --------------------------------------------------------------------------- */

/* the one-liner every rejection goes through: not OK, FORMAT or UNSUPPORTED, *out NULL, message names
 * the problem; the same with err == NULL (must not crash) */
static void reject_buf(const uint8_t *buf, size_t len, const char *want, const char *label, int line) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) exit(2);
    if (len) memcpy(copy, buf, len);
    g4_error err;
    memset(&err, 0, sizeof err);
    gguf_file *f = (gguf_file *)&err; /* must be reset to NULL */
    g4_status s = gguf_parse(&f, copy, len, &err);
    n_reject++;
    if (verbose) printf("  %-44s -> [%s] %s\n", label, g4_status_str(s), err.msg);
    CHECK(s == G4_ERR_FORMAT || s == G4_ERR_UNSUPPORTED, "line %d: %s: status %d (%s) msg '%s'", line, label, (int)s,
          g4_status_str(s), err.msg);
    CHECK(f == NULL, "line %d: %s: *out not NULL after failure", line, label);
    CHECK(err.code == s, "line %d: %s: err.code %d != status %d", line, label, (int)err.code, (int)s);
    CHECK(err.msg[0] != 0, "line %d: %s: empty message", line, label);
    CHECK(want == NULL || strstr(err.msg, want) != NULL, "line %d: %s: message '%s' lacks '%s'", line, label, err.msg,
          want ? want : "");
    if (s == G4_OK) {
        gguf_close(f);
    } else {
        gguf_file *f2 = NULL;
        g4_status s2 = gguf_parse(&f2, copy, len, NULL);
        CHECK(s2 == s && f2 == NULL, "line %d: %s: with err=NULL status %d != %d", line, label, (int)s2, (int)s);
        if (s2 == G4_OK) gguf_close(f2);
    }
    free(copy);
}
#define REJECT_BUF(buf, len, want, label) reject_buf(buf, len, want, label, __LINE__)

static void reject_gg(gg *g, const char *want, const char *label, int line) {
    size_t len;
    uint8_t *buf = gg_build(g, &len);
    reject_buf(buf, len, want, label, line);
    free(buf);
    gg_free(g);
}
#define REJECT(g, want, label) reject_gg(g, want, label, __LINE__)

/* must parse */
static gguf_file *accept_buf(const uint8_t *buf, size_t len, const char *label, int line) {
    g4_error err;
    memset(&err, 0, sizeof err);
    gguf_file *f = NULL;
    g4_status s = gguf_parse(&f, buf, len, &err);
    CHECK(s == G4_OK && f != NULL, "line %d: %s: status %d: %s", line, label, (int)s, err.msg);
    return s == G4_OK ? f : NULL;
}

/* every accessor on every kv and tensor: pointers must stay inside [base, base+size) */
static void walk_all(const gguf_file *f, const char *label) {
    const uint8_t *lo = f->base, *hi = f->base + f->size;
    int bad = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (gguf_find_kv(f, kv->key) != kv) bad++;
        if (kv->nbytes && (kv->data < lo || kv->data + kv->nbytes > hi)) bad++;
        if (kv->type == GGUF_STRING) {
            const char *s;
            uint64_t n;
            g4_error e;
            if (gguf_get_str(f, kv->key, 1, &s, &n, &e) != G4_OK) bad++;
            else if ((const uint8_t *)s < lo || (const uint8_t *)s + n > hi) bad++;
        } else if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING) {
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                uint64_t n;
                const char *s = gguf_arr_str(kv, j, &n);
                if ((const uint8_t *)s < lo || (const uint8_t *)s + n > hi) bad++;
            }
        } else if (kv->type == GGUF_ARRAY) {
            for (uint64_t j = 0; j < kv->arr_n; j++) (void)gguf_arr_f64(kv, j), (void)gguf_arr_i64(kv, j);
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (gguf_find_tensor(f, t->name) != t) bad++;
        if (t->data < f->base + f->data_offset || t->data + t->nbytes > hi) bad++;
        if ((uint64_t)(t->data - f->base) % f->alignment) bad++;
        if (t->data != f->base + f->data_offset + t->offset) bad++;
    }
    CHECK(bad == 0, "%s: %d pointers/sizes out of the mapping", label, bad);
}

/* ---- the valid file ----------------------------------------------------------------------------- */

static const char *const arr_strs[] = {"a", "", "bc\0d", "\xc3\xbcn\xc3\xaf", "last"};
static const uint64_t arr_strs_len[] = {1, 0, 4, 6, 4};

typedef struct {
    const char *name;
    uint32_t type, nd;
    uint64_t ne[4];
} tdesc;

static const tdesc valid_tensors[] = {
    {"token_embd.weight", G4_TYPE_F32, 2, {8, 3, 1, 1}},
    {"a.f16", G4_TYPE_F16, 3, {32, 2, 1, 1}},
    {"b.q8_0", G4_TYPE_Q8_0, 2, {64, 2, 1, 1}},
    {"c.q4_k", G4_TYPE_Q4_K, 2, {256, 2, 1, 1}},
    {"d.q6_k", G4_TYPE_Q6_K, 4, {256, 1, 1, 1}},
    {"e.bf16", G4_TYPE_BF16, 1, {5, 1, 1, 1}},
    {"f.q4_0", G4_TYPE_Q4_0, 3, {32, 3, 2, 1}},
    {"g.4d", G4_TYPE_F32, 4, {2, 3, 4, 5}},
    {"h.last", G4_TYPE_F32, 1, {3, 1, 1, 1}},
};
#define N_VALID_TENSORS (sizeof valid_tensors / sizeof valid_tensors[0])

/* align_kv: value of general.alignment, 0 = no key (default 32).
 * reverse: tensor data in the opposite order of the tensor infos. */
static void build_valid(gg *g, uint32_t align_kv, int reverse) {
    gg_init(g);
    if (align_kv) g->align = align_kv;
    kv_str(g, "general.architecture", "gemma4");
    if (align_kv) kv_u32(g, "general.alignment", align_kv);
    kv_u8(g, "t.u8", 200);
    kv_i8(g, "t.i8", -100);
    kv_u16(g, "t.u16", 60000);
    kv_i16(g, "t.i16", -30000);
    kv_u32(g, "t.u32", 4000000000u);
    kv_i32(g, "t.i32", -2000000000);
    kv_i32(g, "t.i32pos", 123456);
    kv_f32(g, "t.f32", 1.5f);
    kv_bool(g, "t.bool_t", 1);
    kv_bool(g, "t.bool_f", 0);
    kv_str(g, "t.str", "hello, world");
    kv_str(g, "t.str_empty", "");
    kv_u64(g, "t.u64", 1ull << 40);
    kv_u64(g, "t.u64small", 77);
    kv_i64(g, "t.i64", -(1ll << 40));
    kv_f64(g, "t.f64", 3.25);
    kv_arr(g, "t.arr_u8", GGUF_UINT8, 3);
    bb_u8(&g->kv, 1), bb_u8(&g->kv, 2), bb_u8(&g->kv, 255);
    kv_arr(g, "t.arr_i8", GGUF_INT8, 3);
    bb_u8(&g->kv, 0xff), bb_u8(&g->kv, 0x80), bb_u8(&g->kv, 0x7f);
    kv_arr(g, "t.arr_u16", GGUF_UINT16, 2);
    bb_u16(&g->kv, 65535), bb_u16(&g->kv, 7);
    kv_arr(g, "t.arr_i16", GGUF_INT16, 2);
    bb_u16(&g->kv, (uint16_t)-32768), bb_u16(&g->kv, 5);
    kv_arr(g, "t.arr_u32", GGUF_UINT32, 2);
    bb_u32(&g->kv, 0), bb_u32(&g->kv, 4294967295u);
    kv_arr(g, "t.arr_i32", GGUF_INT32, 3);
    bb_u32(&g->kv, (uint32_t)-7), bb_u32(&g->kv, 7), bb_u32(&g->kv, 0x80000000u);
    kv_arr(g, "t.arr_f32", GGUF_FLOAT32, 3);
    bb_f32(&g->kv, 0.5f), bb_f32(&g->kv, -2.25f), bb_f32(&g->kv, 1e30f);
    kv_arr(g, "t.arr_bool", GGUF_BOOL, 3);
    bb_u8(&g->kv, 1), bb_u8(&g->kv, 0), bb_u8(&g->kv, 1);
    kv_arr(g, "t.arr_u64", GGUF_UINT64, 2);
    bb_u64(&g->kv, 12345678901234ull), bb_u64(&g->kv, 3);
    kv_arr(g, "t.arr_i64", GGUF_INT64, 2);
    bb_u64(&g->kv, (uint64_t)-5), bb_u64(&g->kv, (uint64_t)INT64_MAX);
    kv_arr(g, "t.arr_f64", GGUF_FLOAT64, 2);
    bb_f64(&g->kv, 1e300), bb_f64(&g->kv, -0.125);
    kv_arr(g, "t.arr_str", GGUF_STRING, 5);
    for (int i = 0; i < 5; i++) bb_strn(&g->kv, arr_strs[i], arr_strs_len[i]);
    kv_arr(g, "t.arr_empty", GGUF_UINT32, 0);
    kv_arr(g, "t.arr_str_empty", GGUF_STRING, 0);
    kv_str(g, "t.after_arrays", "tail");

    uint64_t offs[N_VALID_TENSORS];
    if (!reverse) {
        for (size_t i = 0; i < N_VALID_TENSORS; i++) {
            const tdesc *d = &valid_tensors[i];
            offs[i] = ti_add(g, d->name, d->type, d->nd, d->ne[0], d->ne[1], d->ne[2], d->ne[3]);
        }
    } else {
        uint64_t at = 0;
        for (size_t k = N_VALID_TENSORS; k-- > 0;) {
            offs[k] = (at + g->align - 1) / g->align * g->align;
            at = offs[k] + tensor_bytes(valid_tensors[k].type, valid_tensors[k].nd, valid_tensors[k].ne);
        }
        for (size_t i = 0; i < N_VALID_TENSORS; i++)
            ti_raw(g, valid_tensors[i].name, valid_tensors[i].nd, valid_tensors[i].ne, valid_tensors[i].type, offs[i]);
        g->data_len = at;
    }
}

static int feq(double a, double b) { return a == b; }

static void check_valid(uint32_t align_kv, int reverse) {
    char label[64];
    snprintf(label, sizeof label, "valid (alignment %u%s)", align_kv, reverse ? ", reversed data" : "");
    gg g;
    build_valid(&g, align_kv, reverse);
    size_t len;
    uint8_t *buf = gg_build(&g, &len);
    uint64_t align = align_kv ? align_kv : GGUF_DEFAULT_ALIGNMENT;
    gguf_file *f = accept_buf(buf, len, label, __LINE__);
    if (!f) {
        free(buf);
        gg_free(&g);
        return;
    }
    g4_error err;
    CHECK(f->version == 3 && f->size == len && f->base == buf, "%s: header", label);
    CHECK(f->n_kv == g.n_kv && f->n_tensors == N_VALID_TENSORS, "%s: counts %llu %llu", label,
          (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
    CHECK(f->alignment == align, "%s: alignment %llu", label, (unsigned long long)f->alignment);
    CHECK(f->data_offset == (g.hdr_end + align - 1) / align * align, "%s: data_offset %llu (infos end %llu)", label,
          (unsigned long long)f->data_offset, (unsigned long long)g.hdr_end);
    CHECK(f->header_bytes == g.hdr_end, "%s: header_bytes %llu != %llu", label, (unsigned long long)f->header_bytes,
          (unsigned long long)g.hdr_end);
    CHECK(f->kv[0].file_offset == 24, "%s: first key offset %llu", label, (unsigned long long)f->kv[0].file_offset);

    /* typed getters */
    uint32_t u = 0;
    CHECK(gguf_get_u32(f, "t.u8", 1, &u, &err) == G4_OK && u == 200, "u8 -> %u", u);
    CHECK(gguf_get_u32(f, "t.u16", 1, &u, &err) == G4_OK && u == 60000, "u16 -> %u", u);
    CHECK(gguf_get_u32(f, "t.u32", 1, &u, &err) == G4_OK && u == 4000000000u, "u32 -> %u", u);
    CHECK(gguf_get_u32(f, "t.i32pos", 1, &u, &err) == G4_OK && u == 123456, "i32 -> %u", u);
    CHECK(gguf_get_u32(f, "t.u64small", 1, &u, &err) == G4_OK && u == 77, "u64 -> %u", u);
    if (align_kv) CHECK(gguf_get_u32(f, "general.alignment", 1, &u, &err) == G4_OK && u == align_kv, "alignment %u", u);
    u = 99;
    CHECK(gguf_get_u32(f, "t.i8", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "out of range") && u == 99,
          "negative i8 as u32: %s", err.msg);
    CHECK(gguf_get_u32(f, "t.i32", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "-2000000000"),
          "negative i32 as u32: %s", err.msg);
    CHECK(gguf_get_u32(f, "t.u64", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "1099511627776"),
          "2^40 as u32: %s", err.msg);
    CHECK(gguf_get_u32(f, "t.str", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "'t.str'") &&
              strstr(err.msg, "has type str, expected an unsigned integer"),
          "str as u32: %s", err.msg);
    CHECK(gguf_get_u32(f, "t.f32", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "has type f32"), "f32 as u32: %s",
          err.msg);
    CHECK(gguf_get_u32(f, "t.bool_t", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "has type bool"),
          "bool as u32: %s", err.msg);
    CHECK(gguf_get_u32(f, "t.arr_u32", 1, &u, &err) == G4_ERR_FORMAT && strstr(err.msg, "has type array of u32"),
          "array as u32: %s", err.msg);
    CHECK(gguf_get_u32(f, "no.such.key", 1, &u, &err) == G4_ERR_FORMAT &&
              strstr(err.msg, "lacks the required key 'no.such.key'") && u == 99,
          "missing required: %s", err.msg);
    CHECK(gguf_get_u32(f, "no.such.key", 0, &u, &err) == G4_OK && u == 99, "missing optional");

    float x = 0;
    CHECK(gguf_get_f32(f, "t.f32", 1, &x, &err) == G4_OK && x == 1.5f, "f32 -> %g", x);
    CHECK(gguf_get_f32(f, "t.f64", 1, &x, &err) == G4_OK && x == 3.25f, "f64 -> %g", x);
    CHECK(gguf_get_f32(f, "t.i16", 1, &x, &err) == G4_OK && x == -30000.0f, "i16 -> %g", x);
    CHECK(gguf_get_f32(f, "t.str", 1, &x, &err) == G4_ERR_FORMAT && strstr(err.msg, "expected a number"),
          "str as f32: %s", err.msg);
    CHECK(gguf_get_f32(f, "t.arr_f32", 1, &x, &err) == G4_ERR_FORMAT && strstr(err.msg, "array of f32"),
          "array as f32: %s", err.msg);
    CHECK(gguf_get_f32(f, "nope", 1, &x, &err) == G4_ERR_FORMAT && strstr(err.msg, "lacks the required key"),
          "missing f32");
    x = 7;
    CHECK(gguf_get_f32(f, "nope", 0, &x, &err) == G4_OK && x == 7, "optional f32");

    int bv = -1;
    CHECK(gguf_get_bool(f, "t.bool_t", 1, &bv, &err) == G4_OK && bv == 1, "bool_t");
    CHECK(gguf_get_bool(f, "t.bool_f", 1, &bv, &err) == G4_OK && bv == 0, "bool_f");
    CHECK(gguf_get_bool(f, "t.u8", 1, &bv, &err) == G4_OK && bv == 1, "u8 as bool");
    CHECK(gguf_get_bool(f, "t.str", 1, &bv, &err) == G4_ERR_FORMAT && strstr(err.msg, "expected a bool"),
          "str as bool: %s", err.msg);
    CHECK(gguf_get_bool(f, "t.f32", 1, &bv, &err) == G4_ERR_FORMAT, "f32 as bool");

    const char *s = NULL;
    uint64_t sl = 0;
    CHECK(gguf_get_str(f, "t.str", 1, &s, &sl, &err) == G4_OK && sl == 12 && memcmp(s, "hello, world", 12) == 0,
          "str");
    CHECK((const uint8_t *)s > buf && (const uint8_t *)s + sl <= buf + len, "str points into the buffer");
    CHECK(gguf_get_str(f, "t.str_empty", 1, &s, &sl, &err) == G4_OK && sl == 0, "empty str");
    CHECK(gguf_get_str(f, "general.architecture", 1, &s, &sl, &err) == G4_OK && sl == 6 && !memcmp(s, "gemma4", 6),
          "arch");
    CHECK(gguf_get_str(f, "t.after_arrays", 1, &s, &sl, &err) == G4_OK && sl == 4 && !memcmp(s, "tail", 4), "tail");
    CHECK(gguf_get_str(f, "t.u32", 1, &s, &sl, &err) == G4_ERR_FORMAT && strstr(err.msg, "has type u32, expected a string"),
          "u32 as str: %s", err.msg);
    CHECK(gguf_get_str(f, "t.arr_str", 1, &s, &sl, &err) == G4_ERR_FORMAT && strstr(err.msg, "array of str"),
          "str array as str: %s", err.msg);

    /* scalar accessors */
    const gguf_kv *kv;
    CHECK((kv = gguf_find_kv(f, "t.i8")) && kv->type == GGUF_INT8 && (int64_t)gguf_kv_u64(kv) == -100 &&
              feq(gguf_kv_f64(kv), -100),
          "i8 scalar");
    CHECK((kv = gguf_find_kv(f, "t.i16")) && (int64_t)gguf_kv_u64(kv) == -30000, "i16 scalar");
    CHECK((kv = gguf_find_kv(f, "t.i32")) && (int64_t)gguf_kv_u64(kv) == -2000000000, "i32 scalar");
    CHECK((kv = gguf_find_kv(f, "t.u64")) && gguf_kv_u64(kv) == 1ull << 40 && feq(gguf_kv_f64(kv), 1099511627776.0),
          "u64 scalar");
    CHECK((kv = gguf_find_kv(f, "t.i64")) && (int64_t)gguf_kv_u64(kv) == -(1ll << 40) &&
              feq(gguf_kv_f64(kv), -1099511627776.0),
          "i64 scalar");
    CHECK((kv = gguf_find_kv(f, "t.f64")) && kv->type == GGUF_FLOAT64 && feq(gguf_kv_f64(kv), 3.25) && kv->nbytes == 8,
          "f64 scalar");
    CHECK((kv = gguf_find_kv(f, "t.u16")) && gguf_kv_u64(kv) == 60000 && kv->nbytes == 2, "u16 scalar");
    CHECK((kv = gguf_find_kv(f, "t.str")) && kv->nbytes == 8 + 12, "str nbytes");
    CHECK(gguf_find_kv(f, "t.") == NULL && gguf_find_kv(f, "") == NULL && gguf_find_kv(f, "t.u8x") == NULL,
          "find_kv misses");

    /* arrays */
    CHECK((kv = gguf_find_kv(f, "t.arr_u8")) && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_UINT8 &&
              kv->arr_n == 3 && kv->nbytes == 3 && gguf_arr_i64(kv, 2) == 255 && feq(gguf_arr_f64(kv, 0), 1),
          "arr_u8");
    CHECK((kv = gguf_find_kv(f, "t.arr_i8")) && gguf_arr_i64(kv, 0) == -1 && gguf_arr_i64(kv, 1) == -128 &&
              gguf_arr_i64(kv, 2) == 127,
          "arr_i8");
    CHECK((kv = gguf_find_kv(f, "t.arr_u16")) && gguf_arr_i64(kv, 0) == 65535 && gguf_arr_i64(kv, 1) == 7, "arr_u16");
    CHECK((kv = gguf_find_kv(f, "t.arr_i16")) && gguf_arr_i64(kv, 0) == -32768 && feq(gguf_arr_f64(kv, 1), 5),
          "arr_i16");
    CHECK((kv = gguf_find_kv(f, "t.arr_u32")) && gguf_arr_i64(kv, 1) == 4294967295ll && kv->nbytes == 8, "arr_u32");
    CHECK((kv = gguf_find_kv(f, "t.arr_i32")) && gguf_arr_i64(kv, 0) == -7 && gguf_arr_i64(kv, 1) == 7 &&
              gguf_arr_i64(kv, 2) == INT32_MIN,
          "arr_i32");
    CHECK((kv = gguf_find_kv(f, "t.arr_f32")) && feq(gguf_arr_f64(kv, 0), 0.5) && feq(gguf_arr_f64(kv, 1), -2.25) &&
              feq(gguf_arr_f64(kv, 2), (double)1e30f) && gguf_arr_i64(kv, 1) == -2,
          "arr_f32");
    CHECK((kv = gguf_find_kv(f, "t.arr_bool")) && gguf_arr_i64(kv, 0) == 1 && gguf_arr_i64(kv, 1) == 0, "arr_bool");
    CHECK((kv = gguf_find_kv(f, "t.arr_u64")) && gguf_arr_i64(kv, 0) == 12345678901234ll &&
              feq(gguf_arr_f64(kv, 0), 12345678901234.0),
          "arr_u64");
    CHECK((kv = gguf_find_kv(f, "t.arr_i64")) && gguf_arr_i64(kv, 0) == -5 && gguf_arr_i64(kv, 1) == INT64_MAX, "arr_i64");
    CHECK((kv = gguf_find_kv(f, "t.arr_f64")) && feq(gguf_arr_f64(kv, 0), 1e300) && feq(gguf_arr_f64(kv, 1), -0.125),
          "arr_f64");
    /* out-of-range index and wrong-kind accessors answer 0 / "" instead of reading anything */
    CHECK(kv && gguf_arr_i64(kv, 2) == 0 && feq(gguf_arr_f64(kv, 99), 0), "arr index out of range");
    {
        uint64_t n = 77;
        const char *e = gguf_arr_str(kv, 0, &n);
        CHECK(e && n == 0, "arr_str on a numeric array");
    }
    CHECK((kv = gguf_find_kv(f, "t.arr_str")) && kv->arr_type == GGUF_STRING && kv->arr_n == 5, "arr_str");
    if (kv) {
        uint64_t total = 0;
        for (uint64_t i = 0; i < 5; i++) {
            uint64_t n = 99;
            const char *e = gguf_arr_str(kv, i, &n);
            CHECK(n == arr_strs_len[i] && memcmp(e, arr_strs[i], n) == 0, "arr_str[%llu] len %llu", (unsigned long long)i,
                  (unsigned long long)n);
            CHECK((const uint8_t *)e >= buf && (const uint8_t *)e + n <= buf + len, "arr_str[%llu] in buffer",
                  (unsigned long long)i);
            total += 8 + arr_strs_len[i];
        }
        CHECK(kv->nbytes == total, "string array nbytes %llu != %llu", (unsigned long long)kv->nbytes,
              (unsigned long long)total);
        uint64_t n = 5;
        CHECK(gguf_arr_str(kv, 5, &n) != NULL && n == 0, "arr_str out of range");
        CHECK(gguf_arr_i64(kv, 0) == 0 && feq(gguf_arr_f64(kv, 0), 0), "numeric accessors on a string array");
    }
    CHECK((kv = gguf_find_kv(f, "t.arr_empty")) && kv->arr_n == 0 && kv->nbytes == 0 && gguf_arr_i64(kv, 0) == 0,
          "empty array");
    CHECK((kv = gguf_find_kv(f, "t.arr_str_empty")) && kv->arr_n == 0 && kv->arr_type == GGUF_STRING, "empty str array");
    CHECK((kv = gguf_find_kv(f, "t.u8")) && gguf_arr_i64(kv, 0) == 0, "array accessor on a scalar");

    /* tensors */
    uint64_t sum = 0;
    for (size_t i = 0; i < N_VALID_TENSORS; i++) {
        const tdesc *d = &valid_tensors[i];
        const gguf_tensor *t = gguf_find_tensor(f, d->name);
        CHECK(t == &f->tensors[i], "tensor %s found at index %zu", d->name, i);
        if (!t) continue;
        uint64_t nb = tensor_bytes(d->type, d->nd, d->ne), nel = d->ne[0] * d->ne[1] * d->ne[2] * d->ne[3];
        CHECK(t->n_dims == (int)d->nd && t->type == (int)d->type, "%s: dims %d type %d", d->name, t->n_dims, t->type);
        for (int k = 0; k < 4; k++) CHECK(t->ne[k] == (int64_t)d->ne[k], "%s: ne[%d] = %lld", d->name, k, (long long)t->ne[k]);
        CHECK(t->nbytes == nb && t->n_elements == nel, "%s: nbytes %llu (want %llu) n_elements %llu", d->name,
              (unsigned long long)t->nbytes, (unsigned long long)nb, (unsigned long long)t->n_elements);
        CHECK(t->offset % align == 0, "%s: offset %llu", d->name, (unsigned long long)t->offset);
        CHECK(t->data == buf + f->data_offset + t->offset, "%s: data pointer", d->name);
        int ok = 1;
        for (uint64_t j = 0; j < t->nbytes; j++) ok &= t->data[j] == pat(t->offset + j);
        CHECK(ok, "%s: data bytes", d->name);
        sum += nb;
    }
    CHECK(f->data_bytes == sum, "data_bytes %llu != %llu", (unsigned long long)f->data_bytes, (unsigned long long)sum);
    const char *last_name = valid_tensors[reverse ? 0 : N_VALID_TENSORS - 1].name;
    const gguf_tensor *last = &f->tensors[reverse ? 0 : N_VALID_TENSORS - 1];
    CHECK(last->data + last->nbytes == buf + len, "%s: last tensor ends the file", label);
    CHECK(gguf_find_tensor(f, "nope") == NULL && gguf_find_tensor(f, "a.f1") == NULL, "find_tensor misses");
    walk_all(f, label);
    gguf_close(f);

    /* truncation at every length: all fail cleanly (the last tensor ends the file) */
    int trunc_bad = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        if (!cut) exit(2);
        memcpy(cut, buf, n);
        memset(&err, 0, sizeof err);
        gguf_file *ft = NULL;
        g4_status st = gguf_parse(&ft, cut, n, &err);
        int msg_ok = strstr(err.msg, "truncated") || strstr(err.msg, "not a GGUF file: only") ||
                     strstr(err.msg, "cannot hold them") || strstr(err.msg, "left in the file") ||
                     strstr(err.msg, "does not fit in the file") || strstr(err.msg, "cannot fit in the");
        if (st != G4_ERR_FORMAT || ft || err.code != st || !msg_ok) {
            if (trunc_bad++ < 5)
                fprintf(stderr, "  truncated to %zu of %zu: status %d '%s'\n", n, len, (int)st, err.msg);
        }
        if (ft) gguf_close(ft);
        free(cut);
        n_trunc++;
    }
    CHECK(trunc_bad == 0, "%s: %d truncated lengths not rejected cleanly", label, trunc_bad);
    /* and the message of a cut inside the tensor data names the tensor */
    {
        memset(&err, 0, sizeof err);
        gguf_file *ft = NULL;
        CHECK(gguf_parse(&ft, buf, len - 1, &err) == G4_ERR_FORMAT && strstr(err.msg, last_name) &&
                  strstr(err.msg, "ends past the end"),
              "cut in data: %s", err.msg);
    }
    /* one byte of trailing garbage after the last tensor is tolerated (as ggml does) */
    {
        uint8_t *more = malloc(len + 1);
        memcpy(more, buf, len);
        more[len] = 0xaa;
        gguf_file *fm = accept_buf(more, len + 1, "trailing byte", __LINE__);
        gguf_close(fm);
        free(more);
    }
    free(buf);
    gg_free(&g);
}

/* ---- zero-tensor files -------------------------------------------------------------------------- */

static void check_zero_tensors(void) {
    gg g;
    gg_init(&g);
    kv_str(&g, "general.architecture", "x");
    kv_u32(&g, "k", 5); /* 24 + 8+20+4+8+1 + 8+1+4+4 = 82 bytes: not a multiple of 32 */
    size_t len;
    uint8_t *buf = gg_build(&g, &len); /* padded to 96, no data */
    CHECK(len == 96 && g.hdr_end == 82, "zero-tensor file is %zu bytes (infos end %llu)", len,
          (unsigned long long)g.hdr_end);
    gguf_file *f = accept_buf(buf, len, "zero tensors, data section exactly at the end", __LINE__);
    if (f) {
        CHECK(f->n_tensors == 0 && f->data_offset == len && f->data_bytes == 0, "zero tensors: data_offset %llu",
              (unsigned long long)f->data_offset);
        walk_all(f, "zero tensors");
        gguf_close(f);
    }
    /* every truncation: short of the metadata fails, from the end of the metadata on it parses */
    for (size_t n = 0; n <= len; n++) {
        g4_error err = {0};
        gguf_file *ft = NULL;
        g4_status st = gguf_parse(&ft, buf, n, &err);
        if (n < g.hdr_end) {
            CHECK(st == G4_ERR_FORMAT && !ft, "zero tensors cut to %zu: status %d", n, (int)st);
        } else {
            CHECK(st == G4_OK && ft, "zero tensors cut to %zu (unpadded, no data): %s", n, err.msg);
            if (ft) CHECK(ft->data_offset <= n, "data_offset %llu past the %zu-byte buffer",
                          (unsigned long long)ft->data_offset, n);
        }
        if (ft) gguf_close(ft);
    }
    free(buf);
    gg_free(&g);

    /* header only */
    gg_init(&g);
    buf = gg_build(&g, &len);
    CHECK(len == 32, "empty file %zu", len);
    f = accept_buf(buf, 24, "header only", __LINE__);
    if (f) {
        CHECK(f->n_kv == 0 && f->n_tensors == 0 && f->alignment == 32, "header only counts");
        gguf_close(f);
    }
    f = accept_buf(buf, len, "header + padding", __LINE__);
    gguf_close(f);
    free(buf);
    gg_free(&g);

    /* version 2 is read too */
    gg_init(&g);
    g.version = 2;
    kv_u32(&g, "a", 1);
    ti_add(&g, "t", G4_TYPE_F32, 1, 4, 1, 1, 1);
    buf = gg_build(&g, &len);
    f = accept_buf(buf, len, "version 2", __LINE__);
    if (f) CHECK(f->version == 2 && f->tensors[0].nbytes == 16, "version 2 file");
    gguf_close(f);
    free(buf);
    gg_free(&g);

    /* a zero-element tensor is legal; its data pointer may sit at the very end */
    gg_init(&g);
    ti_add(&g, "full", G4_TYPE_F32, 1, 8, 1, 1, 1);
    {
        uint64_t ne[2] = {0, 5};
        ti_raw(&g, "empty", 2, ne, G4_TYPE_F32, 32);
    }
    buf = gg_build(&g, &len);
    f = accept_buf(buf, len, "zero-element tensor at the end", __LINE__);
    if (f) {
        const gguf_tensor *t = gguf_find_tensor(f, "empty");
        CHECK(t && t->nbytes == 0 && t->n_elements == 0 && t->ne[1] == 5, "zero-element tensor");
        gguf_close(f);
    }
    free(buf);
    gg_free(&g);
}

/* ---- malformed files ---------------------------------------------------------------------------- */

/* minimal valid file: one kv, one F32[4] tensor */
static void mini(gg *g) {
    gg_init(g);
    kv_u32(g, "a.b", 1);
    ti_add(g, "w", G4_TYPE_F32, 1, 4, 1, 1, 1);
}

/* long enough that the header's cheap count checks pass and the entry itself is what is cut */
#define LONGKEY "a.key.long.enough.to.pass.the.count.checks.0123456789"

static void check_header(void) {
    gg g;
    uint8_t z[8] = {0};
    REJECT_BUF(z, 0, "only 0 bytes", "0 bytes");
    REJECT_BUF((const uint8_t *)"GGU", 3, "only 3 bytes", "3 bytes");
    REJECT_BUF((const uint8_t *)"GGUF", 4, "truncated", "magic only");
    REJECT_BUF(z, 8, "bad magic 00 00 00 00", "zeros");

    mini(&g), g.magic = 0x46554746; /* "FGUF" */
    REJECT(&g, "bad magic 46 47 55 46", "bad magic");
    mini(&g), g.magic = 0x4655474b;
    REJECT(&g, "expected 'GGUF'", "bad magic 2");
    mini(&g), g.version = 1;
    REJECT(&g, "version 1 is obsolete", "version 1");
    mini(&g), g.version = 0;
    REJECT(&g, "unsupported GGUF version 0", "version 0");
    mini(&g), g.version = 4;
    REJECT(&g, "unsupported GGUF version 4", "version 4");
    mini(&g), g.version = 0xffffffffu;
    REJECT(&g, "big-endian", "version 2^32-1");
    mini(&g), g.version = 0x03000000u; /* a big-endian v3 file read as little-endian */
    REJECT(&g, "big-endian", "big-endian v3");
    mini(&g), g.version = 0x02000000u;
    REJECT(&g, "big-endian", "big-endian v2");
    mini(&g), g.version = 0x00010003u;
    REJECT(&g, "unsupported GGUF version 65539", "version 65539");

    static const uint64_t absurd[] = {1ull << 63, 1ull << 40, UINT64_MAX, 1ull << 32, 1000000};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        char l[64];
        mini(&g), g.set_n_kv = 1, g.hdr_n_kv = absurd[i];
        snprintf(l, sizeof l, "n_kv = %llu", (unsigned long long)absurd[i]);
        REJECT(&g, "metadata entries; the", l);
        mini(&g), g.set_n_ti = 1, g.hdr_n_ti = absurd[i];
        snprintf(l, sizeof l, "n_tensors = %llu", (unsigned long long)absurd[i]);
        REJECT(&g, "tensors; the", l);
    }
    /* plausible counts, but more entries than present */
    mini(&g), g.set_n_kv = 1, g.hdr_n_kv = 2;
    REJECT(&g, NULL, "n_kv one too many");
    mini(&g), g.set_n_ti = 1, g.hdr_n_ti = 2;
    REJECT(&g, NULL, "n_tensors one too many");
    /* fewer: the rest of the metadata is read as tensor infos */
    mini(&g), kv_u32(&g, "c.d", 2), g.set_n_kv = 1, g.hdr_n_kv = 1;
    REJECT(&g, NULL, "n_kv one too few");
}

static void check_strings(void) {
    gg g;
    /* key length past the end */
    gg_init(&g), bb_u64(&g.kv, 100), bb_put(&g.kv, "abc", 3), g.n_kv = 1; /* padded to 64 bytes */
    REJECT(&g, "metadata key at offset 24 has length 100", "key length past end");
    gg_init(&g), bb_u64(&g.kv, UINT64_MAX), bb_put(&g.kv, "abcdefghijklmn", 14), g.n_kv = 1;
    REJECT(&g, "has length 18446744073709551615", "key length 2^64-1");
    gg_init(&g), bb_u64(&g.kv, 1ull << 63), bb_put(&g.kv, "abcdefghijklmn", 14), g.n_kv = 1;
    REJECT(&g, "metadata key", "key length 2^63");
    /* string value */
    mini(&g), kv_key(&g, "s"), bb_u32(&g.kv, GGUF_STRING), bb_u64(&g.kv, 1000), bb_put(&g.kv, "xy", 2);
    REJECT(&g, "string value at offset", "string value past end");
    mini(&g), kv_key(&g, "s"), bb_u32(&g.kv, GGUF_STRING), bb_u64(&g.kv, UINT64_MAX);
    REJECT(&g, "string value", "string value 2^64-1");
    mini(&g), kv_key(&g, "s"), bb_u32(&g.kv, GGUF_STRING), bb_u64(&g.kv, UINT64_MAX - 7);
    REJECT(&g, "string value", "string value 2^64-8");
    /* string array element */
    mini(&g), kv_arr(&g, "sa", GGUF_STRING, 2), bb_str(&g.kv, "ok"), bb_u64(&g.kv, UINT64_MAX);
    REJECT(&g, "string array element", "string array element 2^64-1");
    mini(&g), kv_arr(&g, "sa", GGUF_STRING, 2), bb_str(&g.kv, "ok"), bb_u64(&g.kv, 500);
    REJECT(&g, "string array element", "string array element past end");
    /* tensor name */
    gg_init(&g), bb_u64(&g.ti, 1ull << 62), g.n_ti = 1, bb_put(&g.ti, "0123456789012345678901234567890123", 34);
    REJECT(&g, "tensor name at offset 24 has length", "tensor name 2^62");
    gg_init(&g), kv_u32(&g, "x", 1), bb_u64(&g.ti, UINT64_MAX), g.n_ti = 1,
        bb_put(&g.ti, "0123456789012345678901234567890123", 34);
    REJECT(&g, "tensor name", "tensor name 2^64-1");
}

static void check_values(void) {
    gg g;
    static const uint32_t bad_types[] = {GGUF_VTYPE_COUNT, 99, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        char l[64];
        snprintf(l, sizeof l, "value type %u", bad_types[i]);
        mini(&g), kv_key(&g, "bad.type"), bb_u32(&g.kv, bad_types[i]), bb_u64(&g.kv, 0);
        REJECT(&g, "key 'bad.type' at offset", l);
        snprintf(l, sizeof l, "array element type %u", bad_types[i]);
        mini(&g), kv_arr(&g, "bad.arr", bad_types[i], 1), bb_u64(&g.kv, 0);
        REJECT(&g, "array of unknown element type", l);
    }
    /* nested arrays */
    mini(&g), kv_arr(&g, "nest", GGUF_ARRAY, 1), bb_u32(&g.kv, GGUF_UINT8), bb_u64(&g.kv, 1), bb_u8(&g.kv, 1);
    REJECT(&g, "'nest' is an array of nested-array", "nested array");
    mini(&g), kv_arr(&g, "nest0", GGUF_ARRAY, 0);
    REJECT(&g, "nested-array", "empty nested array");
    /* truncated scalars */
    static const uint32_t scalars[] = {GGUF_UINT8, GGUF_UINT16, GGUF_UINT32, GGUF_UINT64, GGUF_FLOAT64, GGUF_BOOL};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        char l[64];
        snprintf(l, sizeof l, "truncated %s scalar", gguf_vtype_name((int)scalars[i]));
        gg_init(&g), kv_key(&g, LONGKEY), bb_u32(&g.kv, scalars[i]), g.no_pad = 1;
        REJECT(&g, "truncated GGUF: metadata value at offset", l);
    }
    gg_init(&g), kv_key(&g, LONGKEY), g.no_pad = 1;
    REJECT(&g, "truncated GGUF: metadata value type", "missing value type");
    gg_init(&g), kv_key(&g, LONGKEY), bb_u32(&g.kv, GGUF_ARRAY), g.no_pad = 1;
    REJECT(&g, "array element type", "missing array type");
    gg_init(&g), kv_key(&g, LONGKEY), bb_u32(&g.kv, GGUF_ARRAY), bb_u32(&g.kv, GGUF_UINT8), bb_u32(&g.kv, 0), g.no_pad = 1;
    REJECT(&g, "array length", "short array length");

    /* array counts: n * elem_size overflows (wraps to a small number) or exceeds the file */
    struct { uint32_t t; uint64_t n; } ov[] = {
        {GGUF_UINT64, 1ull << 61},       /* * 8 = 2^64 -> 0 */
        {GGUF_UINT32, (1ull << 62) + 1}, /* * 4 -> 4 */
        {GGUF_UINT16, 1ull << 63},       /* * 2 -> 0 */
        {GGUF_FLOAT64, UINT64_MAX},
        {GGUF_UINT8, UINT64_MAX},
        {GGUF_INT32, 1ull << 40},
        {GGUF_UINT8, 1000}, /* past the end of the whole file */
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        char l[80];
        snprintf(l, sizeof l, "array of %llu %s", (unsigned long long)ov[i].n, gguf_vtype_name((int)ov[i].t));
        mini(&g), kv_arr(&g, "big.arr", ov[i].t, ov[i].n), bb_u64(&g.kv, 0);
        REJECT(&g, "does not fit in the file", l);
    }
    /* string arrays with absurd counts */
    static const uint64_t sn[] = {1ull << 63, UINT64_MAX, 1ull << 61, (1ull << 61) + 1, 1ull << 40, 20};
    for (size_t i = 0; i < sizeof sn / sizeof sn[0]; i++) {
        char l[80];
        snprintf(l, sizeof l, "array of %llu strings", (unsigned long long)sn[i]);
        mini(&g), kv_arr(&g, "big.sarr", GGUF_STRING, sn[i]), bb_str(&g.kv, "a");
        REJECT(&g, "strings cannot fit", l);
    }
    /* a string array whose count fits the 8-byte minimum but whose strings run out */
    mini(&g), kv_arr(&g, "sarr", GGUF_STRING, 3), bb_str(&g.kv, "a"), bb_str(&g.kv, "b");
    REJECT(&g, NULL, "string array one element short");

    /* keys */
    mini(&g), kv_str(&g, "", "v");
    REJECT(&g, "has an empty key", "empty key");
    mini(&g), kv_keyn(&g, "ab\0cd", 5), bb_u32(&g.kv, GGUF_UINT8), bb_u8(&g.kv, 1);
    REJECT(&g, "contains a NUL byte", "key with NUL");
    mini(&g), kv_keyn(&g, "\0", 1), bb_u32(&g.kv, GGUF_UINT8), bb_u8(&g.kv, 1);
    REJECT(&g, "contains a NUL byte", "key that is one NUL");
    mini(&g), kv_u32(&g, "dup.key", 1), kv_str(&g, "dup.key", "x");
    REJECT(&g, "two metadata keys named 'dup.key'", "duplicate keys");
    mini(&g), kv_u32(&g, "z", 1), kv_u32(&g, "y", 1), kv_u32(&g, "a.b", 3);
    REJECT(&g, "two metadata keys named 'a.b'", "duplicate keys far apart");
    mini(&g), kv_u32(&g, "bin\x01\xff", 1), kv_u32(&g, "bin\x01\xff", 1);
    REJECT(&g, "'bin\\x01\\xff'", "duplicate binary keys shown escaped");

    /* general.alignment */
    mini(&g), kv_u64(&g, "general.alignment", 32);
    REJECT(&g, "'general.alignment' (offset", "alignment u64");
    mini(&g), kv_i32(&g, "general.alignment", 32);
    REJECT(&g, "has type i32, expected u32", "alignment i32");
    mini(&g), kv_str(&g, "general.alignment", "32");
    REJECT(&g, "has type str, expected u32", "alignment str");
    mini(&g), kv_arr(&g, "general.alignment", GGUF_UINT32, 1), bb_u32(&g.kv, 32);
    REJECT(&g, "has type array of u32, expected u32", "alignment array");
    mini(&g), kv_f32(&g, "general.alignment", 32);
    REJECT(&g, "expected u32", "alignment f32");
    static const uint32_t bad_al[] = {0, 3, 48, 100, 1u << 25, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_al / sizeof bad_al[0]; i++) {
        char l[64], w[64];
        snprintf(l, sizeof l, "alignment %u", bad_al[i]);
        snprintf(w, sizeof w, "general.alignment = %u is not a power of two", bad_al[i]);
        mini(&g), kv_u32(&g, "general.alignment", bad_al[i]);
        REJECT(&g, w, l);
    }

    /* known keys with wrong value types, through the typed getters */
    gg_init(&g);
    kv_str(&g, "gemma4.block_count", "six");
    kv_f32(&g, "gemma4.context_length", 4096.0f);
    kv_u32(&g, "gemma4.rope.freq_base", 10000);
    kv_str(&g, "gemma4.final_logit_softcapping", "30");
    kv_arr(&g, "tokenizer.ggml.model", GGUF_STRING, 1), bb_str(&g.kv, "gemma4");
    kv_u32(&g, "tokenizer.ggml.add_bos_token", 1);
    kv_i32(&g, "tokenizer.ggml.eos_token_id", -1);
    kv_u64(&g, "gemma4.embedding_length", 1ull << 33);
    {
        size_t len;
        uint8_t *buf = gg_build(&g, &len);
        gguf_file *f = accept_buf(buf, len, "wrong types for known keys", __LINE__);
        if (f) {
            g4_error err;
            uint32_t u = 5;
            float x = 5;
            int b = 5;
            const char *s = NULL;
            uint64_t sl = 0;
            CHECK(gguf_get_u32(f, "gemma4.block_count", 1, &u, &err) == G4_ERR_FORMAT &&
                      strstr(err.msg, "GGUF key 'gemma4.block_count' (offset 24) has type str, expected an unsigned integer") &&
                      u == 5,
                  "block_count str: %s", err.msg);
            CHECK(gguf_get_u32(f, "gemma4.context_length", 1, &u, &err) == G4_ERR_FORMAT &&
                      strstr(err.msg, "has type f32, expected an unsigned integer"),
                  "context_length f32: %s", err.msg);
            CHECK(gguf_get_f32(f, "gemma4.rope.freq_base", 1, &x, &err) == G4_OK && x == 10000.0f,
                  "u32 where f32 expected is accepted");
            CHECK(gguf_get_f32(f, "gemma4.final_logit_softcapping", 1, &x, &err) == G4_ERR_FORMAT &&
                      strstr(err.msg, "'gemma4.final_logit_softcapping'") && strstr(err.msg, "expected a number"),
                  "softcap str: %s", err.msg);
            CHECK(gguf_get_str(f, "tokenizer.ggml.model", 1, &s, &sl, &err) == G4_ERR_FORMAT &&
                      strstr(err.msg, "has type array of str, expected a string"),
                  "model array: %s", err.msg);
            CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", 1, &b, &err) == G4_OK && b == 1,
                  "u32 where bool expected is accepted");
            CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", 1, &u, &err) == G4_ERR_FORMAT &&
                      strstr(err.msg, "'tokenizer.ggml.eos_token_id' has value -1, out of range"),
                  "eos -1: %s", err.msg);
            CHECK(gguf_get_u32(f, "gemma4.embedding_length", 1, &u, &err) == G4_ERR_FORMAT &&
                      strstr(err.msg, "has value 8589934592, out of range"),
                  "n_embd 2^33: %s", err.msg);
            CHECK(u == 5 && x == 10000.0f && b == 1, "outputs untouched on errors");
            CHECK(gguf_get_u32(f, "gemma4.block_count", 1, &u, NULL) == G4_ERR_FORMAT, "err may be NULL");
            gguf_close(f);
        }
        free(buf);
        gg_free(&g);
    }
}

static void check_tensor_infos(void) {
    gg g;
    uint64_t ne4[4] = {4, 1, 1, 1};
    /* names */
    gg_init(&g), ti_raw(&g, "", 1, ne4, G4_TYPE_F32, 0), g.data_len = 16;
    REJECT(&g, "tensor 0 (offset 24) has an empty or invalid name", "empty tensor name");
    gg_init(&g), bb_strn(&g.ti, "a\0b", 3), bb_u32(&g.ti, 1), bb_u64(&g.ti, 4), bb_u32(&g.ti, 0), bb_u64(&g.ti, 0),
        g.n_ti = 1, g.data_len = 16;
    REJECT(&g, "empty or invalid name", "tensor name with NUL");
    mini(&g), ti_add(&g, "w", G4_TYPE_F32, 1, 4, 1, 1, 1);
    REJECT(&g, "two tensors named 'w'", "duplicate tensor names");
    mini(&g), ti_add(&g, "v", G4_TYPE_F32, 1, 4, 1, 1, 1), ti_add(&g, "u", G4_TYPE_F16, 1, 4, 1, 1, 1),
        ti_add(&g, "v", G4_TYPE_F32, 2, 4, 2, 1, 1);
    REJECT(&g, "two tensors named 'v'", "duplicate tensor names, different shapes");

    /* n_dims */
    static const uint32_t bad_nd[] = {0, 5, 8, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_nd / sizeof bad_nd[0]; i++) {
        char l[64], w[64];
        snprintf(l, sizeof l, "n_dims %u", bad_nd[i]);
        snprintf(w, sizeof w, "has %u dimensions (1..4 allowed)", bad_nd[i]);
        uint64_t ne[8] = {4, 1, 1, 1, 1, 1, 1, 1};
        gg_init(&g), ti_raw(&g, "w", bad_nd[i] <= 8 ? bad_nd[i] : 8, ne, G4_TYPE_F32, 0), g.data_len = 64;
        if (bad_nd[i] > 8) memcpy(g.ti.p + 8 + 1, &bad_nd[i], 4); /* patch the count */
        REJECT(&g, w, l);
    }
    /* dims: products that overflow, values above INT64_MAX ("negative") */
    struct { uint32_t nd; uint64_t ne[4]; const char *want; } bd[] = {
        {2, {1ull << 32, 1ull << 32}, "element count overflows"},
        {2, {1ull << 62, 4}, "element count overflows"},
        {2, {1ull << 62, 2}, "element count overflows"}, /* 2^63 > INT64_MAX */
        {4, {1 << 16, 1 << 16, 1 << 16, 1 << 16}, "element count overflows"},
        {1, {1ull << 63}, "absurd dimensions (dim 0 = 9223372036854775808)"},
        {2, {4, UINT64_MAX}, "absurd dimensions (dim 1 = 18446744073709551615)"},
        {3, {4, 1, (uint64_t)-4}, "absurd dimensions"},
        /* a zero dimension must not hide an overflowing product of the others */
        {3, {0, 1ull << 62, 1ull << 62}, "element count overflows"},
        {4, {4, 0, UINT64_MAX, 1}, "absurd dimensions"},
        {2, {1ull << 61, 2}, "byte size overflows"}, /* 2^62 floats = 2^64 bytes */
    };
    for (size_t i = 0; i < sizeof bd / sizeof bd[0]; i++) {
        char l[96];
        snprintf(l, sizeof l, "dims %llu x %llu x %llu x %llu", (unsigned long long)bd[i].ne[0],
                 (unsigned long long)bd[i].ne[1], (unsigned long long)bd[i].ne[2], (unsigned long long)bd[i].ne[3]);
        gg_init(&g), ti_raw(&g, "big", bd[i].nd, bd[i].ne, G4_TYPE_F32, 0), g.data_len = 64;
        REJECT(&g, bd[i].want, l);
    }
    /* huge but representable: rejected because the data is not there */
    {
        uint64_t ne[2] = {1ull << 60, 2};
        gg_init(&g), ti_raw(&g, "huge", 2, ne, G4_TYPE_F32, 0), g.data_len = 64;
        REJECT(&g, "tensor 'huge' (9223372036854775808 bytes at data offset 0) ends past the end", "2^63-byte tensor");
    }

    /* types */
    static const uint32_t unk[] = {99, 1000, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof unk / sizeof unk[0]; i++) {
        char l[64], w[96];
        snprintf(l, sizeof l, "tensor type %u", unk[i]);
        snprintf(w, sizeof w, "tensor 'w' has weight type %u, which g4 does not know", unk[i]);
        gg_init(&g), ti_raw(&g, "w", 1, ne4, unk[i], 0), g.data_len = 64;
        REJECT(&g, w, l);
    }
    /* every id g4 names but cannot read: UNSUPPORTED, naming the type */
    int n_unsup = 0;
    for (int id = 0; id < 256; id++) {
        const char *nm = g4_type_name(id);
        if (g4_type_traits_get(id) || !nm) continue;
        char l[64], w[96];
        snprintf(l, sizeof l, "unsupported type %d (%s)", id, nm);
        snprintf(w, sizeof w, "weight type %d (%s), which g4 does not support yet", id, nm);
        gg_init(&g), ti_raw(&g, "w", 1, ne4, (uint32_t)id, 0), g.data_len = 64;
        size_t len;
        uint8_t *buf = gg_build(&g, &len);
        g4_error err = {0};
        gguf_file *f = NULL;
        CHECK(gguf_parse(&f, buf, len, &err) == G4_ERR_UNSUPPORTED && strstr(err.msg, w), "%s: %s", l, err.msg);
        if (verbose) printf("  %-44s -> %s\n", l, err.msg);
        gguf_close(f);
        free(buf);
        gg_free(&g);
        n_unsup++, n_reject++;
    }
    CHECK(n_unsup > 0, "no known-but-unsupported type id to test");

    /* row length vs block size */
    {
        uint64_t ne[2] = {48, 2};
        gg_init(&g), ti_raw(&g, "q", 2, ne, G4_TYPE_Q8_0, 0), g.data_len = 256;
        REJECT(&g, "tensor 'q' has row length 48, not a multiple of the Q8_0 block size 32", "Q8_0 row 48");
        uint64_t ne2[2] = {128, 4};
        gg_init(&g), ti_raw(&g, "k", 2, ne2, G4_TYPE_Q4_K, 0), g.data_len = 1024;
        REJECT(&g, "row length 128, not a multiple of the Q4_K block size 256", "Q4_K row 128");
        uint64_t ne3[1] = {33};
        gg_init(&g), ti_raw(&g, "k", 1, ne3, G4_TYPE_Q4_0, 0), g.data_len = 1024;
        REJECT(&g, "block size 32", "Q4_0 row 33");
    }

    /* truncated tensor infos */
    gg_init(&g), bb_str(&g.ti, LONGKEY), g.n_ti = 1, g.no_pad = 1;
    REJECT(&g, "truncated GGUF: tensor dimension count", "no n_dims");
    gg_init(&g), bb_str(&g.ti, LONGKEY), bb_u32(&g.ti, 2), bb_u64(&g.ti, 4), g.n_ti = 1, g.no_pad = 1;
    REJECT(&g, "truncated GGUF: tensor dimension at", "dims cut");
    gg_init(&g), bb_str(&g.ti, LONGKEY), bb_u32(&g.ti, 1), bb_u64(&g.ti, 4), g.n_ti = 1, g.no_pad = 1;
    REJECT(&g, "truncated GGUF: tensor type", "no type");
    gg_init(&g), bb_str(&g.ti, LONGKEY), bb_u32(&g.ti, 1), bb_u64(&g.ti, 4), bb_u32(&g.ti, 0), bb_u32(&g.ti, 0),
        g.n_ti = 1, g.no_pad = 1;
    REJECT(&g, "truncated GGUF: tensor offset", "offset cut");
}

static void check_data_layout(void) {
    gg g;
    uint64_t ne4[1] = {4}, ne16[1] = {16}, ne64[1] = {64}, ne0[1] = {0};
    /* offsets */
    static const uint64_t unal[] = {4, 1, 16, 33, 0xffffffffffffffffull};
    for (size_t i = 0; i < sizeof unal / sizeof unal[0]; i++) {
        char l[64], w[96];
        snprintf(l, sizeof l, "offset %llu not aligned", (unsigned long long)unal[i]);
        snprintf(w, sizeof w, "tensor 'w' data offset %llu is not aligned to 32 bytes", (unsigned long long)unal[i]);
        gg_init(&g), ti_raw(&g, "w", 1, ne4, G4_TYPE_F32, unal[i]), g.data_len = 128;
        REJECT(&g, w, l);
    }
    gg_init(&g), kv_u32(&g, "general.alignment", 64), ti_raw(&g, "w", 1, ne4, G4_TYPE_F32, 32), g.align = 64,
        g.data_len = 128;
    REJECT(&g, "data offset 32 is not aligned to 64 bytes", "offset 32 with alignment 64");
    static const uint64_t past[] = {64, 1ull << 40, 1ull << 63, 0xffffffffffffffe0ull};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        char l[64];
        snprintf(l, sizeof l, "offset %llu past the end", (unsigned long long)past[i]);
        gg_init(&g), ti_raw(&g, "w", 1, ne4, G4_TYPE_F32, past[i]), g.data_len = 64;
        REJECT(&g, "tensor 'w' (16 bytes at data offset", l);
    }
    gg_init(&g), ti_raw(&g, "w", 1, ne16, G4_TYPE_F32, 0), g.data_len = 63;
    REJECT(&g, "tensor 'w' (64 bytes at data offset 0) ends past the end of the file (data section has 63 bytes)",
           "data one byte short");
    gg_init(&g), ti_raw(&g, "a", 1, ne4, G4_TYPE_F32, 0), ti_raw(&g, "w", 1, ne16, G4_TYPE_F32, 32), g.data_len = 64;
    REJECT(&g, "tensor 'w' (64 bytes at data offset 32) ends past", "second tensor runs past the end");
    gg_init(&g), ti_raw(&g, "z", 1, ne0, G4_TYPE_F32, 96), g.data_len = 64;
    REJECT(&g, "tensor 'z' (0 bytes at data offset 96)", "empty tensor past the end");
    /* data section start past the end (file ends inside the padding) */
    gg_init(&g), ti_raw(&g, "w", 1, ne0, G4_TYPE_F32, 0), g.no_pad = 1;
    REJECT(&g, "data section would start at 64, past the end (57 bytes)", "data section start past the end");

    /* overlapping tensors */
    gg_init(&g), ti_raw(&g, "a", 1, ne16, G4_TYPE_F32, 0), ti_raw(&g, "b", 1, ne16, G4_TYPE_F32, 32), g.data_len = 96;
    REJECT(&g, "GGUF tensors 'a' and 'b' overlap", "overlap by 32");
    gg_init(&g), ti_raw(&g, "a", 1, ne16, G4_TYPE_F32, 0), ti_raw(&g, "b", 1, ne4, G4_TYPE_F32, 0), g.data_len = 64;
    REJECT(&g, "overlap", "same offset");
    gg_init(&g), ti_raw(&g, "c", 1, ne64, G4_TYPE_F32, 0), ti_raw(&g, "d", 1, ne4, G4_TYPE_F32, 128), g.data_len = 256;
    REJECT(&g, "'c' and 'd' overlap", "tensor inside another");
    gg_init(&g), ti_raw(&g, "b", 1, ne16, G4_TYPE_F32, 64), ti_raw(&g, "a", 1, ne64, G4_TYPE_F32, 0),
        ti_raw(&g, "c", 1, ne4, G4_TYPE_F32, 256), g.data_len = 288;
    REJECT(&g, "'a' and 'b' overlap", "overlap, infos out of order");
    /* an empty tensor between two overlapping ones must not hide the overlap */
    gg_init(&g), ti_raw(&g, "a", 1, ne64, G4_TYPE_F32, 0), ti_raw(&g, "e", 1, ne0, G4_TYPE_F32, 64),
        ti_raw(&g, "b", 1, ne16, G4_TYPE_F32, 128), g.data_len = 256;
    REJECT(&g, "'a' and 'b' overlap", "overlap hidden by an empty tensor");
    /* a tensor wholly inside an earlier long one, with a third in between */
    gg_init(&g), ti_raw(&g, "a", 1, ne64, G4_TYPE_F32, 0), ti_raw(&g, "b", 1, ne4, G4_TYPE_F32, 32),
        ti_raw(&g, "c", 1, ne4, G4_TYPE_F32, 128), g.data_len = 256;
    REJECT(&g, "overlap", "two tensors inside a long one");
    /* adjacent and empty tensors sharing an offset are fine */
    gg_init(&g), ti_raw(&g, "a", 1, ne16, G4_TYPE_F32, 0), ti_raw(&g, "e", 1, ne0, G4_TYPE_F32, 64),
        ti_raw(&g, "b", 1, ne16, G4_TYPE_F32, 64), ti_raw(&g, "e2", 1, ne0, G4_TYPE_F32, 32), g.data_len = 128;
    {
        size_t len;
        uint8_t *buf = gg_build(&g, &len);
        gguf_file *f = accept_buf(buf, len, "adjacent tensors + empty ones", __LINE__);
        gguf_close(f);
        free(buf);
        gg_free(&g);
    }
}

/* ---- gguf_open: files, empty file, directory --------------------------------------------------- */

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL, "cannot create %s", path);
    if (!fp) return;
    if (n) CHECK(fwrite(p, 1, n, fp) == n, "write %s", path);
    fclose(fp);
}

static void check_open(void) {
    char dir[] = "/tmp/g4_test_gguf_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    char path[256];
    g4_error err;
    gguf_file *f;

    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    write_file(path, NULL, 0);
    memset(&err, 0, sizeof err);
    f = (gguf_file *)&err;
    CHECK(gguf_open(&f, path, &err) == G4_ERR_FORMAT && !f && strstr(err.msg, "is empty, not a GGUF file") &&
              strstr(err.msg, path),
          "empty file: %s", err.msg);
    if (verbose) printf("  %-44s -> %s\n", "empty file", err.msg);
    unlink(path);

    f = (gguf_file *)&err;
    CHECK(gguf_open(&f, dir, &err) != G4_OK && !f && strstr(err.msg, "is not a regular file") && strstr(err.msg, dir),
          "directory: %s", err.msg);
    if (verbose) printf("  %-44s -> %s\n", "directory", err.msg);

    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    CHECK(gguf_open(&f, path, &err) == G4_ERR_IO && !f && strstr(err.msg, "cannot open") && strstr(err.msg, path),
          "missing: %s", err.msg);
    if (verbose) printf("  %-44s -> %s\n", "missing file", err.msg);
    CHECK(gguf_open(&f, path, NULL) == G4_ERR_IO && !f, "missing, err NULL");

    /* a valid file from disk, then the same file cut short */
    gg g;
    build_valid(&g, 64, 0);
    size_t len;
    uint8_t *buf = gg_build(&g, &len);
    snprintf(path, sizeof path, "%s/valid.gguf", dir);
    write_file(path, buf, len);
    CHECK(gguf_open(&f, path, &err) == G4_OK && f, "open valid: %s", err.msg);
    if (f) {
        CHECK(f->size == len && f->mapped && f->n_tensors == N_VALID_TENSORS, "mapped valid file");
        const gguf_tensor *t = gguf_find_tensor(f, "c.q4_k");
        CHECK(t && t->data[0] == pat(t->offset) && t->data[t->nbytes - 1] == pat(t->offset + t->nbytes - 1),
              "mapped tensor data");
        walk_all(f, "mapped valid file");
        gguf_close(f);
    }
    snprintf(path, sizeof path, "%s/cut.gguf", dir);
    write_file(path, buf, len - 5);
    CHECK(gguf_open(&f, path, &err) == G4_ERR_FORMAT && !f && strstr(err.msg, path) && strstr(err.msg, "truncated GGUF"),
          "cut file: %s", err.msg);
    if (verbose) printf("  %-44s -> %s\n", "truncated file on disk", err.msg);
    unlink(path);
    snprintf(path, sizeof path, "%s/short.gguf", dir);
    write_file(path, buf, 3);
    CHECK(gguf_open(&f, path, &err) == G4_ERR_FORMAT && !f && strstr(err.msg, "only 3 bytes"), "3-byte file: %s",
          err.msg);
    unlink(path);
    snprintf(path, sizeof path, "%s/valid.gguf", dir);
    unlink(path);
    rmdir(dir);
    free(buf);
    gg_free(&g);
    n_reject += 5;
}

/* ---- oracle models ------------------------------------------------------------------------------ */

typedef struct { uint64_t off, nbytes; } ospan;
static int cmp_ospan(const void *a, const void *b) {
    const ospan *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void check_oracle(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models", t_oracle());
    DIR *d = opendir(dir);
    if (!d) {
        printf("oracle models not found in %s: skipped\n", dir);
        return;
    }
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 5, ".gguf")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        g4_error err;
        gguf_file *f = NULL;
        g4_status s = gguf_open(&f, path, &err);
        CHECK(s == G4_OK && f, "oracle %s: %s", e->d_name, err.msg);
        n_files++;
        if (!f) continue;
        struct stat st;
        CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == f->size, "%s: size", e->d_name);
        CHECK(f->data_offset % f->alignment == 0 && f->n_tensors > 0, "%s: data offset", e->d_name);
        /* header + tensor infos + padding + tensors with the padding between them == the file */
        ospan *sp = malloc(f->n_tensors * sizeof *sp);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const gguf_tensor *t = &f->tensors[i];
            sp[i] = (ospan){t->offset, t->nbytes};
            sum += t->nbytes;
            const g4_type_traits *tr = g4_type_traits_get(t->type);
            CHECK(tr && t->nbytes == g4_type_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]),
                  "%s: tensor %s nbytes", e->d_name, t->name);
        }
        CHECK(sum == f->data_bytes, "%s: data_bytes", e->d_name);
        qsort(sp, f->n_tensors, sizeof *sp, cmp_ospan);
        uint64_t at = 0;
        int gaps = 0;
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            uint64_t want = (at + f->alignment - 1) / f->alignment * f->alignment;
            if (sp[i].off != want) gaps++;
            at = sp[i].off + sp[i].nbytes;
        }
        uint64_t end = (at + f->alignment - 1) / f->alignment * f->alignment;
        CHECK(gaps == 0, "%s: %d tensors not packed at the next aligned offset", e->d_name, gaps);
        CHECK(f->data_offset + at == f->size || f->data_offset + end == f->size,
              "%s: header %llu + data %llu (padded %llu) != file size %llu", e->d_name,
              (unsigned long long)f->data_offset, (unsigned long long)at, (unsigned long long)end,
              (unsigned long long)f->size);
        /* the header proper: re-walk it by hand to find where the tensor infos end */
        uint64_t pos = 24;
        for (uint64_t i = 0; i < f->n_kv; i++) pos += 8 + strlen(f->kv[i].key) + 4 + (f->kv[i].type == GGUF_ARRAY ? 12 : 0) + f->kv[i].nbytes;
        for (uint64_t i = 0; i < f->n_tensors; i++) pos += 8 + strlen(f->tensors[i].name) + 4 + 8 * (uint64_t)f->tensors[i].n_dims + 4 + 8;
        CHECK(f->header_bytes == pos, "%s: header_bytes %llu, infos end at %llu", e->d_name,
              (unsigned long long)f->header_bytes, (unsigned long long)pos);
        CHECK(f->data_offset == (pos + f->alignment - 1) / f->alignment * f->alignment,
              "%s: infos end at %llu, data at %llu", e->d_name, (unsigned long long)pos, (unsigned long long)f->data_offset);
        free(sp);
        walk_all(f, e->d_name);
        const char *arch;
        uint64_t al;
        CHECK(gguf_get_str(f, "general.architecture", 1, &arch, &al, &err) == G4_OK && al == 6 && !memcmp(arch, "gemma4", 6),
              "%s: architecture", e->d_name);
        gguf_close(f);
    }
    closedir(d);
    printf("oracle: %d model files parsed\n", n_files);
    CHECK(n_files > 0, "no oracle models in %s", dir);
}

/* ---- regressions (found by review and by fuzz/fuzz_gguf.c) -------------------------------------------------------------------- */

static void check_fuzz_regressions(void) {
    gg g;
    /* gguf_arr_i64 on float arrays holding values no int64 can represent (NaN, 1e30, -inf) must not be
     * undefined behaviour (UBSan float-cast-overflow) */
    gg_init(&g);
    kv_arr(&g, "f", GGUF_FLOAT32, 4);
    bb_f32(&g.kv, 1e30f), bb_f32(&g.kv, -1e30f), bb_f32(&g.kv, NAN), bb_f32(&g.kv, -INFINITY);
    kv_arr(&g, "d", GGUF_FLOAT64, 3);
    bb_f64(&g.kv, 1e300), bb_f64(&g.kv, 9223372036854775808.0), bb_f64(&g.kv, -9223372036854775808.0);
    size_t len;
    uint8_t *buf = gg_build(&g, &len);
    gguf_file *f = accept_buf(buf, len, "float arrays with huge values", __LINE__);
    if (f) {
        const gguf_kv *kf = gguf_find_kv(f, "f"), *kd = gguf_find_kv(f, "d");
        CHECK(gguf_arr_i64(kf, 0) == INT64_MAX && gguf_arr_i64(kf, 1) == INT64_MIN && gguf_arr_i64(kf, 2) == 0 &&
                  gguf_arr_i64(kf, 3) == INT64_MIN,
              "saturating f32 -> i64");
        CHECK(gguf_arr_i64(kd, 0) == INT64_MAX && gguf_arr_i64(kd, 1) == INT64_MAX && gguf_arr_i64(kd, 2) == INT64_MIN,
              "saturating f64 -> i64");
        gguf_close(f);
    }
    free(buf);
    gg_free(&g);

    /* fuzz: header with no kv and no tensors plus 7 stray bytes: data_offset (32) was past the 31-byte
     * buffer; now it parses with data_offset clamped to the end */
    static const uint8_t stray[31] = {0x47, 0x47, 0x55, 0x46, 0x03};
    f = accept_buf(stray, sizeof stray, "fuzz: 31-byte empty file", __LINE__);
    if (f) CHECK(f->data_offset <= f->size && f->n_tensors == 0, "data_offset %llu", (unsigned long long)f->data_offset);
    gguf_close(f);

    /* fuzz (minimized): tensor '\x88' with dims [16, 0, 1660944384, 4814658338816]: the 0 made the
     * element count 0, so the int64 overflow of the other dims went through */
    static const uint8_t zero_dim[96] = {
        0x47, 0x47, 0x55, 0x46, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x88, 0x04, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x61, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x27, 0x3e, 0xe0, 0xbe, 0x00, 0xc0, 0xbe, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0xbe,
    };
    REJECT_BUF(zero_dim, sizeof zero_dim, "tensor '\\x88' has absurd dimensions", "fuzz: zero dim hides an overflow");

    /* fuzz (mutated MoE seed, reduced): gate_up [8, 8, 6] F16 (768 bytes at 0) overlaps inp_gate at 384;
     * the empty down_exps [8796093022212, 0, 2] sorted between them hid the overlap */
    {
        uint64_t a[3] = {8, 8, 6}, e[3] = {8796093022212ull, 0, 2}, c[2] = {8, 2};
        gg_init(&g);
        ti_raw(&g, "blk.0.ffn_gate_up_exps.weight", 3, a, G4_TYPE_F16, 0);
        ti_raw(&g, "blk.0.ffn_down_exps.weight", 3, e, G4_TYPE_F16, 256);
        ti_raw(&g, "blk.0.inp_gate.weight", 2, c, G4_TYPE_F16, 384);
        g.data_len = 768;
        REJECT(&g, "'blk.0.ffn_gate_up_exps.weight' and 'blk.0.inp_gate.weight' overlap", "fuzz: overlap behind an empty tensor");
    }
}

int main(void) {
    const char *v = getenv("G4_TEST_VERBOSE");
    verbose = v && *v && *v != '0';
    check_valid(0, 0);
    check_valid(64, 0);
    check_valid(64, 1);
    check_valid(1, 0);
    check_valid(256, 1);
    check_zero_tensors();
    check_header();
    check_strings();
    check_values();
    check_tensor_infos();
    check_data_layout();
    check_open();
    check_fuzz_regressions();
    check_oracle();
    printf("malformed inputs rejected: %d named cases + %d truncations\n", n_reject, n_trunc);
    return t_done();
}
