/* GGUF writer and `g4 synth`:
 *   - writer round trip: every metadata type (scalars, numeric arrays, string arrays, empty ones), tensors
 *     of several types and ranks (one large enough to be filled in several chunks), custom alignment; read
 *     back with gguf_open: keys in order, values, tensor infos and data bytes equal, sizes add up;
 *   - writer errors: duplicate keys / tensors, bad shapes, bad alignment, unwritable path, a failing fill
 *     callback (no file and no .tmp left behind, an existing file untouched);
 *   - the synthetic tokenizer: layout, distinct tokens, every merge producing a token, padding to 262144;
 *   - g4 synth tiny of every variant and weight type: gguf_open accepts it, expected tensor count and types,
 *     metadata, file size = header + tensor data + padding, weight statistics of the recipe, determinism;
 *   - full-scale plans (dry run): tensor counts of the real variants.
 */
#include "gguf/gguf.h"
#include "quant/types.h"
#include "synth/synth.h"
#include "t.h"
#include "util/util.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *path_in(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static uint64_t file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* ---- writer round trip ---------------------------------------------------------------------------- */

/* byte j of row r of tensor i */
static uint8_t pat(int i, int64_t r, uint64_t j) { return (uint8_t)(i * 31 + r * 7 + (int64_t)j * 13 + (int64_t)(j >> 8)); }

typedef struct rt_state {
    int64_t next_row[8];
    int n_calls[8];
    int bad_calls;
    int fail_at; /* tensor index whose fill fails, -1 none */
    uint64_t last_done, last_total;
    int n_progress;
} rt_state;

static g4_status rt_fill(void *user, int index, const char *name, int type, const int64_t *ne, int64_t row0,
                         int64_t nrows, void *dst, uint64_t nbytes, g4_error *err) {
    rt_state *s = user;
    (void)name;
    size_t rb = g4_type_row_bytes(type, ne[0]);
    if (index < 0 || index >= 8 || row0 != s->next_row[index] || nrows < 1 || nbytes != (uint64_t)nrows * rb ||
        (nrows > 1 && nbytes > GGUF_W_CHUNK_BYTES))
        s->bad_calls++;
    if (index == s->fail_at) return g4_fail(err, G4_ERR_IO, "deliberate failure");
    for (int64_t r = 0; r < nrows; r++)
        for (size_t j = 0; j < rb; j++) ((uint8_t *)dst)[(uint64_t)r * rb + j] = pat(index, row0 + r, j);
    s->next_row[index] = row0 + nrows;
    s->n_calls[index]++;
    return G4_OK;
}

static void rt_progress(void *user, uint64_t done, uint64_t total) {
    rt_state *s = user;
    if (done < s->last_done || (s->n_progress && total != s->last_total)) s->bad_calls++;
    s->last_done = done;
    s->last_total = total;
    s->n_progress++;
}

typedef struct tdecl {
    const char *name;
    int type, n_dims;
    int64_t ne[4];
} tdecl;

static const tdecl rt_tensors[] = {
    {"a", G4_TYPE_F32, 1, {7, 1, 1, 1}},
    {"blk.0.b", G4_TYPE_F16, 2, {32, 3, 1, 1}},
    {"c", G4_TYPE_Q8_0, 3, {64, 2, 2, 1}},
    {"big", G4_TYPE_F32, 2, {1024, 4200, 1, 1}}, /* 16.4 MiB: more than one chunk */
    {"d", G4_TYPE_Q4_0, 1, {32, 1, 1, 1}},
    {"e4", G4_TYPE_BF16, 4, {2, 3, 2, 2}},
};
#define RT_N ((int)(sizeof rt_tensors / sizeof rt_tensors[0]))

static void put_all_kv(gguf_writer *w) {
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -((int64_t)1 << 40) - 3;
    double f64 = -2.5e-300;
    CHECK(gguf_w_scalar(w, "t.u8", GGUF_UINT8, &u8) == G4_OK, "u8");
    CHECK(gguf_w_scalar(w, "t.i8", GGUF_INT8, &i8) == G4_OK, "i8");
    CHECK(gguf_w_scalar(w, "t.u16", GGUF_UINT16, &u16) == G4_OK, "u16");
    CHECK(gguf_w_scalar(w, "t.i16", GGUF_INT16, &i16) == G4_OK, "i16");
    CHECK(gguf_w_u32(w, "t.u32", 4000000000u) == G4_OK, "u32");
    CHECK(gguf_w_i32(w, "t.i32", -2000000000) == G4_OK, "i32");
    CHECK(gguf_w_f32(w, "t.f32", 3.25f) == G4_OK, "f32");
    CHECK(gguf_w_bool(w, "t.bool", 1) == G4_OK, "bool");
    CHECK(gguf_w_bool(w, "t.bool0", 0) == G4_OK, "bool");
    CHECK(gguf_w_str(w, "t.str", "h\xc3\xa9llo \xe2\x96\x81 world") == G4_OK, "str");
    CHECK(gguf_w_str(w, "t.empty", "") == G4_OK, "empty str");
    CHECK(gguf_w_u64(w, "t.u64", ((uint64_t)1 << 40) + 5) == G4_OK, "u64");
    CHECK(gguf_w_scalar(w, "t.i64", GGUF_INT64, &i64) == G4_OK, "i64");
    CHECK(gguf_w_scalar(w, "t.f64", GGUF_FLOAT64, &f64) == G4_OK, "f64");
    const uint8_t a_u8[] = {1, 2, 255};
    const int8_t a_i8[] = {-1, 0, 127};
    const uint16_t a_u16[] = {65535, 1};
    const int16_t a_i16[] = {-32768, 5};
    const uint32_t a_u32[] = {0, 7, 4294967295u};
    const int32_t a_i32[] = {-7, 6144, 12288};
    const float a_f32[] = {1.5f, -0.0f, 1e30f};
    const uint8_t a_bool[] = {1, 1, 0, 1};
    const uint64_t a_u64[] = {(uint64_t)1 << 63};
    const int64_t a_i64[] = {-1, (int64_t)1 << 50};
    const double a_f64[] = {0.1, -3.0};
    CHECK(gguf_w_arr(w, "a.u8", GGUF_UINT8, a_u8, 3) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.i8", GGUF_INT8, a_i8, 3) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.u16", GGUF_UINT16, a_u16, 2) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.i16", GGUF_INT16, a_i16, 2) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.u32", GGUF_UINT32, a_u32, 3) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.i32", GGUF_INT32, a_i32, 3) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.f32", GGUF_FLOAT32, a_f32, 3) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.bool", GGUF_BOOL, a_bool, 4) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.u64", GGUF_UINT64, a_u64, 1) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.i64", GGUF_INT64, a_i64, 2) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.f64", GGUF_FLOAT64, a_f64, 2) == G4_OK, "arr");
    CHECK(gguf_w_arr(w, "a.empty", GGUF_UINT32, NULL, 0) == G4_OK, "empty arr");
    const char *strs[] = {"a", "", "\xe2\x96\x81\x62 c", "<0x0A>"};
    CHECK(gguf_w_arr_str(w, "a.str", strs, 4) == G4_OK, "arr str");
    CHECK(gguf_w_arr_str(w, "a.str_empty", NULL, 0) == G4_OK, "empty arr str");
}

/* the string array of put_all_kv */
static void check_arr_str(const gguf_file *f) {
    const gguf_kv *kv = gguf_find_kv(f, "a.str");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && kv->arr_n == 4, "a.str");
    if (!kv || kv->arr_n != 4) return;
    const char *want[] = {"a", "", "\xe2\x96\x81\x62 c", "<0x0A>"};
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t len;
        const char *s = gguf_arr_str(kv, i, &len);
        CHECK(s && len == strlen(want[i]) && !memcmp(s, want[i], len), "a.str[%llu]", (unsigned long long)i);
    }
}

static void check_all_kv(const gguf_file *f) {
    static const char *order[] = {"t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32", "t.bool", "t.bool0",
                                  "t.str", "t.empty", "t.u64", "t.i64", "t.f64", "a.u8", "a.i8", "a.u16", "a.i16",
                                  "a.u32", "a.i32", "a.f32", "a.bool", "a.u64", "a.i64", "a.f64", "a.empty", "a.str",
                                  "a.str_empty"};
    const uint64_t n = sizeof order / sizeof order[0];
    CHECK(f->n_kv >= n, "n_kv %llu", (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < n && i < f->n_kv; i++)
        CHECK(!strcmp(f->kv[i].key, order[i]), "key %llu is %s, want %s", (unsigned long long)i, f->kv[i].key, order[i]);
    const gguf_kv *kv;
#define SCALAR(key, vt) ((kv = gguf_find_kv(f, key)) != NULL && kv->type == (vt))
    CHECK(SCALAR("t.u8", GGUF_UINT8) && gguf_kv_u64(kv) == 200, "u8");
    CHECK(SCALAR("t.i8", GGUF_INT8) && (int8_t)kv->data[0] == -100, "i8");
    CHECK(SCALAR("t.u16", GGUF_UINT16) && gguf_kv_u64(kv) == 60000, "u16");
    CHECK(SCALAR("t.i16", GGUF_INT16) && gguf_kv_f64(kv) == -30000.0, "i16");
    CHECK(SCALAR("t.u32", GGUF_UINT32) && gguf_kv_u64(kv) == 4000000000u, "u32");
    CHECK(SCALAR("t.i32", GGUF_INT32) && gguf_kv_f64(kv) == -2000000000.0, "i32");
    CHECK(SCALAR("t.f32", GGUF_FLOAT32) && gguf_kv_f64(kv) == 3.25, "f32");
    CHECK(SCALAR("t.bool", GGUF_BOOL) && kv->data[0] == 1, "bool");
    CHECK(SCALAR("t.bool0", GGUF_BOOL) && kv->data[0] == 0, "bool0");
    CHECK(SCALAR("t.u64", GGUF_UINT64) && gguf_kv_u64(kv) == ((uint64_t)1 << 40) + 5, "u64");
    CHECK(SCALAR("t.i64", GGUF_INT64) && gguf_kv_f64(kv) == (double)(-((int64_t)1 << 40) - 3), "i64");
    CHECK(SCALAR("t.f64", GGUF_FLOAT64) && gguf_kv_f64(kv) == -2.5e-300, "f64");
    const char *s;
    uint64_t len;
    g4_error err = {0};
    CHECK(gguf_get_str(f, "t.str", 1, &s, &len, &err) == G4_OK && len == 16 && !memcmp(s, "h\xc3\xa9llo \xe2\x96\x81 world", 16),
          "str");
    CHECK(gguf_get_str(f, "t.empty", 1, &s, &len, &err) == G4_OK && len == 0, "empty str");
    uint32_t u32;
    CHECK(gguf_get_u32(f, "t.u32", 1, &u32, &err) == G4_OK && u32 == 4000000000u, "get_u32");
    int b;
    CHECK(gguf_get_bool(f, "t.bool", 1, &b, &err) == G4_OK && b == 1, "get_bool");
#define ARR(key, at, n) ((kv = gguf_find_kv(f, key)) != NULL && kv->type == GGUF_ARRAY && kv->arr_type == (at) && kv->arr_n == (n))
    CHECK(ARR("a.u8", GGUF_UINT8, 3) && gguf_arr_i64(kv, 2) == 255 && gguf_arr_i64(kv, 0) == 1, "a.u8");
    CHECK(ARR("a.i8", GGUF_INT8, 3) && gguf_arr_i64(kv, 0) == -1 && gguf_arr_i64(kv, 2) == 127, "a.i8");
    CHECK(ARR("a.u16", GGUF_UINT16, 2) && gguf_arr_i64(kv, 0) == 65535, "a.u16");
    CHECK(ARR("a.i16", GGUF_INT16, 2) && gguf_arr_i64(kv, 0) == -32768 && gguf_arr_i64(kv, 1) == 5, "a.i16");
    CHECK(ARR("a.u32", GGUF_UINT32, 3) && gguf_arr_i64(kv, 2) == 4294967295ll, "a.u32");
    CHECK(ARR("a.i32", GGUF_INT32, 3) && gguf_arr_i64(kv, 0) == -7 && gguf_arr_i64(kv, 2) == 12288, "a.i32");
    CHECK(ARR("a.f32", GGUF_FLOAT32, 3) && gguf_arr_f64(kv, 0) == 1.5 && gguf_arr_f64(kv, 2) == (double)1e30f, "a.f32");
    CHECK(ARR("a.bool", GGUF_BOOL, 4) && gguf_arr_i64(kv, 0) == 1 && gguf_arr_i64(kv, 2) == 0, "a.bool");
    CHECK(ARR("a.u64", GGUF_UINT64, 1) && (uint64_t)gguf_arr_i64(kv, 0) == (uint64_t)1 << 63, "a.u64");
    CHECK(ARR("a.i64", GGUF_INT64, 2) && gguf_arr_i64(kv, 0) == -1 && gguf_arr_i64(kv, 1) == (int64_t)1 << 50, "a.i64");
    CHECK(ARR("a.f64", GGUF_FLOAT64, 2) && gguf_arr_f64(kv, 0) == 0.1 && gguf_arr_f64(kv, 1) == -3.0, "a.f64");
    CHECK(ARR("a.empty", GGUF_UINT32, 0), "a.empty");
    CHECK(ARR("a.str_empty", GGUF_STRING, 0), "a.str_empty");
    check_arr_str(f);
#undef SCALAR
#undef ARR
}

static void test_roundtrip(uint32_t alignment) {
    char path[128];
    path_in(alignment ? "rt_align.gguf" : "rt.gguf", path, sizeof path);
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL, "writer_new");
    if (!w) return;
    put_all_kv(w);
    if (alignment) CHECK(gguf_w_u32(w, "general.alignment", alignment) == G4_OK, "alignment");
    for (int i = 0; i < RT_N; i++)
        CHECK(gguf_w_tensor(w, rt_tensors[i].name, rt_tensors[i].type, rt_tensors[i].n_dims, rt_tensors[i].ne) == G4_OK,
              "tensor %s", rt_tensors[i].name);
    CHECK(gguf_writer_n_tensors(w) == (uint64_t)RT_N, "n_tensors");
    rt_state s;
    memset(&s, 0, sizeof s);
    s.fail_at = -1;
    g4_error err = {0};
    g4_status st = gguf_writer_write(w, path, rt_fill, rt_progress, &s, &err);
    CHECK(st == G4_OK, "write: %s", err.msg);
    const uint64_t predicted = gguf_writer_file_size(w);
    gguf_writer_free(w);
    if (st != G4_OK) return;
    CHECK(s.bad_calls == 0, "%d bad fill/progress calls", s.bad_calls);
    CHECK(s.n_calls[3] >= 2, "big tensor filled in %d calls", s.n_calls[3]);
    CHECK(s.last_done == s.last_total && s.n_progress > 0, "progress ends at total");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!file_exists(tmp), "no .tmp left");
    const uint64_t fsz = file_size(path);
    CHECK(fsz == predicted, "file size %llu, predicted %llu", (unsigned long long)fsz, (unsigned long long)predicted);

    gguf_file *f = NULL;
    st = gguf_open(&f, path, &err);
    CHECK(st == G4_OK, "gguf_open: %s", err.msg);
    if (st != G4_OK) return;
    const uint64_t al = alignment ? alignment : 32;
    CHECK(f->version == 3, "version %u", f->version);
    CHECK(f->alignment == al, "alignment %llu", (unsigned long long)f->alignment);
    CHECK(f->data_offset % al == 0, "data offset %llu", (unsigned long long)f->data_offset);
    check_all_kv(f);
    CHECK(f->n_tensors == (uint64_t)RT_N, "n_tensors %llu", (unsigned long long)f->n_tensors);
    uint64_t end = f->data_offset;
    for (int i = 0; i < RT_N && (uint64_t)i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const tdecl *d = &rt_tensors[i];
        CHECK(!strcmp(t->name, d->name) && t->type == d->type && t->n_dims == d->n_dims, "tensor %d info", i);
        for (int k = 0; k < 4; k++) CHECK(t->ne[k] == d->ne[k], "tensor %s ne[%d]", d->name, k);
        CHECK(t->offset % al == 0, "tensor %s offset %llu", d->name, (unsigned long long)t->offset);
        CHECK(f->data_offset + t->offset == end, "tensor %s follows the previous one", d->name);
        const size_t rb = g4_type_row_bytes(d->type, d->ne[0]);
        const int64_t rows = d->ne[1] * d->ne[2] * d->ne[3];
        CHECK(t->nbytes == rb * (uint64_t)rows, "tensor %s nbytes", d->name);
        int same = 1;
        for (int64_t r = 0; r < rows && same; r++)
            for (size_t j = 0; j < rb; j++)
                if (t->data[(uint64_t)r * rb + j] != pat(i, r, j)) {
                    same = 0;
                    break;
                }
        CHECK(same, "tensor %s data differs", d->name);
        end = align_up(f->data_offset + t->offset + t->nbytes, al);
    }
    CHECK(end == fsz, "header + data + padding %llu == file size %llu", (unsigned long long)end, (unsigned long long)fsz);
    gguf_close(f);
}

/* ---- writer errors ------------------------------------------------------------------------------------ */

static void test_writer_errors(void) {
    char path[128], tmp[160];
    g4_error err = {0};
    const int64_t ne16[2] = {16, 2}, ne32[2] = {32, 2}, bad[2] = {32, 0};

    /* duplicate key: the setter fails and the write reports it, writing nothing */
    gguf_writer *w = gguf_writer_new();
    CHECK(gguf_w_u32(w, "k", 1) == G4_OK, "first key");
    CHECK(gguf_w_str(w, "k", "again") == G4_ERR_ARG, "duplicate key");
    CHECK(gguf_writer_status(w, &err) == G4_ERR_ARG && strstr(err.msg, "duplicate"), "status: %s", err.msg);
    path_in("dup.gguf", path, sizeof path);
    CHECK(gguf_writer_write(w, path, NULL, NULL, NULL, &err) == G4_ERR_ARG && strstr(err.msg, "'k'"), "write: %s", err.msg);
    CHECK(!file_exists(path), "no file after a setter error");
    gguf_writer_free(w);

    /* bad tensors and values */
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "q", G4_TYPE_Q4_0, 2, ne16) == G4_ERR_ARG, "Q4_0 row of 16");
    CHECK(gguf_w_tensor(w, "z", G4_TYPE_F32, 2, bad) == G4_ERR_ARG, "zero dim");
    CHECK(gguf_w_tensor(w, "u", 77, 2, ne32) == G4_ERR_ARG, "unknown type");
    CHECK(gguf_w_tensor(w, "x", G4_TYPE_F32, 5, ne32) == G4_ERR_ARG, "5 dims");
    CHECK(gguf_w_tensor(w, "t", G4_TYPE_F32, 2, ne32) == G4_OK, "tensor");
    CHECK(gguf_w_tensor(w, "t", G4_TYPE_F16, 2, ne32) == G4_ERR_ARG, "duplicate tensor");
    CHECK(gguf_w_u32(w, "general.alignment", 48) == G4_ERR_ARG, "alignment 48");
    const uint8_t b2[] = {1, 2};
    CHECK(gguf_w_arr(w, "bools", GGUF_BOOL, b2, 2) == G4_ERR_ARG, "bool 2");
    CHECK(gguf_w_arr(w, "strs", GGUF_STRING, b2, 2) == G4_ERR_ARG, "string via gguf_w_arr");
    CHECK(gguf_writer_status(w, &err) == G4_ERR_ARG && strstr(err.msg, "16"), "first error kept: %s", err.msg);
    gguf_writer_free(w);

    /* unwritable path */
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "t", G4_TYPE_F32, 2, ne32) == G4_OK, "tensor");
    err.msg[0] = 0;
    CHECK(gguf_writer_write(w, "/nonexistent-dir/x.gguf", rt_fill, NULL, NULL, &err) == G4_ERR_IO && err.msg[0],
          "unwritable: %s", err.msg);
    gguf_writer_free(w);

    /* the fill callback fails on the second tensor: an existing file stays as it was, no .tmp */
    path_in("keep.gguf", path, sizeof path);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fputs("old", fp) >= 0 && fclose(fp) == 0, "create keep.gguf");
    w = gguf_writer_new();
    CHECK(gguf_w_tensor(w, "t0", G4_TYPE_F32, 2, ne32) == G4_OK, "tensor");
    CHECK(gguf_w_tensor(w, "t1", G4_TYPE_F32, 2, ne32) == G4_OK, "tensor");
    rt_state s;
    memset(&s, 0, sizeof s);
    s.fail_at = 1;
    g4_status st = gguf_writer_write(w, path, rt_fill, NULL, &s, &err);
    CHECK(st == G4_ERR_IO && strstr(err.msg, "t1") && strstr(err.msg, "deliberate"), "fill failure: %s", err.msg);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!file_exists(tmp), ".tmp removed");
    CHECK(file_size(path) == 3, "existing file untouched");
    gguf_writer_free(w);
}

/* ---- tokenizer ---------------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int vocab_find(const g4_synth_vocab *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->tokens[i], s)) return i;
    return -1;
}

static void test_vocab(void) {
    g4_synth_vocab v, big;
    g4_error err = {0};
    CHECK(g4_synth_vocab_build(&v, 100, &err) == G4_ERR_ARG, "vocab of 100 refused");
    if (g4_synth_vocab_build(&v, 512, &err) != G4_OK) {
        CHECK(0, "vocab 512: %s", err.msg);
        return;
    }
    CHECK(v.n == 512, "n %d", v.n);
    const char *sp[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"};
    for (int i = 0; i < 7; i++) CHECK(!strcmp(v.tokens[i], sp[i]) && v.types[i] == (i == 3 ? 2 : 3), "special %d", i);
    CHECK(!strcmp(v.tokens[7], "<0x00>") && !strcmp(v.tokens[7 + 0x0A], "<0x0A>") && !strcmp(v.tokens[262], "<0xFF>"),
          "byte tokens");
    for (int i = 7; i < 263; i++) CHECK(v.types[i] == 6, "byte type %d", i);
    for (int i = 263; i < v.n; i++) CHECK(v.types[i] == 1 && v.scores[i] == -(float)i, "normal token %d", i);
    CHECK(vocab_find(&v, "\n") >= 0 && vocab_find(&v, "\xe2\x96\x81") >= 0 && vocab_find(&v, "~") >= 0 &&
              vocab_find(&v, "A") >= 0,
          "whitespace and characters");
    /* merges: both sides and the result in the vocabulary; BPE pieces beyond the alphabet all come from merges */
    CHECK(v.n_merges >= 100, "%d merges", v.n_merges);
    int bad = 0;
    for (int m = 0; m < v.n_merges; m++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v.merges[m]);
        char *space = strchr(buf + 1, ' ');
        if (!space) {
            bad++;
            continue;
        }
        *space = 0;
        char joined[256];
        snprintf(joined, sizeof joined, "%s%s", buf, space + 1);
        if (vocab_find(&v, buf) < 0 || vocab_find(&v, space + 1) < 0 || vocab_find(&v, joined) < 0) bad++;
    }
    CHECK(bad == 0, "%d merges with a piece outside the vocabulary", bad);
    char **sorted = malloc(512 * sizeof *sorted);
    memcpy(sorted, v.tokens, 512 * sizeof *sorted);
    qsort(sorted, 512, sizeof *sorted, cmp_str);
    int dups = 0;
    for (int i = 1; i < 512; i++) dups += !strcmp(sorted[i - 1], sorted[i]);
    CHECK(dups == 0, "%d duplicate tokens", dups);
    free(sorted);

    if (g4_synth_vocab_build(&big, 262144, &err) != G4_OK) {
        CHECK(0, "vocab 262144: %s", err.msg);
        g4_synth_vocab_free(&v);
        return;
    }
    CHECK(big.n == 262144 && big.n_merges == v.n_merges, "big vocab");
    int same = 1;
    for (int i = 0; i < 512; i++) same &= !strcmp(big.tokens[i], v.tokens[i]);
    CHECK(same, "the first 512 tokens do not depend on the vocabulary size");
    sorted = malloc((size_t)big.n * sizeof *sorted);
    memcpy(sorted, big.tokens, (size_t)big.n * sizeof *sorted);
    qsort(sorted, (size_t)big.n, sizeof *sorted, cmp_str);
    dups = 0;
    for (int i = 1; i < big.n; i++) dups += !strcmp(sorted[i - 1], sorted[i]);
    CHECK(dups == 0, "%d duplicate tokens in the padded vocabulary", dups);
    free(sorted);
    g4_synth_vocab_free(&big);
    g4_synth_vocab_free(&v);
}

/* ---- synth ----------------------------------------------------------------------------------------------- */

/* tensor count from the structure alone (architecture doc §3.2) */
static uint64_t expected_tensors(const g4_synth_config *c) {
    uint64_t n = 1 + 2 + (c->n_embd_per_layer ? 3 : 0); /* token_embd, output_norm, rope_freqs, PLE globals */
    for (int l = 0; l < c->n_layer; l++) {
        n += 11; /* attn_norm q output q_norm post_attention ffn_norm gate up down post_ffw layer_output_scale */
        if (g4_synth_layer_owns_kv(c, l)) n += 2 + !(c->k_eq_v && !g4_synth_layer_is_swa(c, l)); /* k k_norm v */
        if (c->n_expert) n += 8;
        if (c->n_embd_per_layer) n += 3;
    }
    return n;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* mean and rms of an F32 tensor */
static void f32_stats(const gguf_tensor *t, double *mean, double *rms) {
    const float *x = (const float *)(const void *)t->data;
    double s = 0, s2 = 0;
    for (uint64_t i = 0; i < t->n_elements; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    *mean = s / (double)t->n_elements;
    *rms = sqrt(s2 / (double)t->n_elements);
}

static void check_synth_file(const char *path, const g4_synth_config *c, int type, uint64_t n_t, uint64_t bytes) {
    static const uint64_t oracle_counts[G4_SYNTH_N_VARIANTS] = {161, 192, 134, 86};
    gguf_file *f = NULL;
    g4_error err = {0};
    g4_status st = gguf_open(&f, path, &err);
    CHECK(st == G4_OK, "%s: gguf_open: %s", path, err.msg);
    if (st != G4_OK) return;
    const int vi = g4_synth_variant_from_name(c->name);
    CHECK(f->n_tensors == expected_tensors(c) && f->n_tensors == n_t, "%s: %llu tensors, expected %llu", path,
          (unsigned long long)f->n_tensors, (unsigned long long)expected_tensors(c));
    CHECK(vi >= 0 && f->n_tensors == oracle_counts[vi], "%s: tensor count differs from the oracle model", path);
    /* sizes: header, padding, every tensor padded to the alignment */
    uint64_t end = f->data_offset, sum = 0;
    int types_ok = 1;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        CHECK(f->data_offset + t->offset == end, "%s: %s not right after the previous tensor", path, t->name);
        end = align_up(f->data_offset + t->offset + t->nbytes, 32);
        sum += t->nbytes;
        const int keep_f32 = t->n_dims == 1 || ends_with(t->name, "ffn_gate_inp.weight") ||
                             ends_with(t->name, "per_layer_model_proj.weight");
        if (t->type != (keep_f32 ? G4_TYPE_F32 : type)) {
            types_ok = 0;
            fprintf(stderr, "  %s: %s has type %d\n", path, t->name, t->type);
        }
    }
    CHECK(types_ok, "%s: tensor types", path);
    const uint64_t fsz = file_size(path);
    CHECK(end == fsz && fsz == bytes && f->size == fsz, "%s: header+data+padding %llu, file %llu, reported %llu", path,
          (unsigned long long)end, (unsigned long long)fsz, (unsigned long long)bytes);
    CHECK(f->data_bytes == sum, "%s: data bytes", path);

    /* metadata */
    const char *s;
    uint64_t len;
    uint32_t u;
    CHECK(gguf_get_str(f, "general.architecture", 1, &s, &len, &err) == G4_OK && len == 6 && !memcmp(s, "gemma4", 6), "arch");
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", 1, &s, &len, &err) == G4_OK && len == 6 && !memcmp(s, "gemma4", 6), "tok model");
    CHECK(gguf_get_u32(f, "gemma4.block_count", 1, &u, &err) == G4_OK && u == (uint32_t)c->n_layer, "block_count");
    CHECK(gguf_get_u32(f, "gemma4.embedding_length", 1, &u, &err) == G4_OK && u == (uint32_t)c->n_embd, "embd");
    CHECK(gguf_get_u32(f, "gemma4.attention.key_length_swa", 1, &u, &err) == G4_OK && u == (uint32_t)c->head_dim_swa, "hd swa");
    CHECK(gguf_get_u32(f, "gemma4.attention.shared_kv_layers", 1, &u, &err) == G4_OK && u == (uint32_t)c->n_kv_shared, "shared");
    CHECK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", 1, &u, &err) == G4_OK && u == 2, "bos");
    int bval = 0;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", 1, &bval, &err) == G4_OK && bval == 1, "add_bos");
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", 1, &bval, &err) == G4_OK && bval == 0, "add_space_prefix");
    CHECK(gguf_find_tensor(f, "output.weight") == NULL, "no output.weight (tied)");
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(kv && kv->arr_type == GGUF_STRING && kv->arr_n == (uint64_t)c->n_vocab, "tokens");
    kv = gguf_find_kv(f, "gemma4.attention.sliding_window_pattern");
    int pat_ok = kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_BOOL && kv->arr_n == (uint64_t)c->n_layer;
    for (int l = 0; pat_ok && l < c->n_layer; l++) pat_ok = gguf_arr_i64(kv, (uint64_t)l) == g4_synth_layer_is_swa(c, l);
    CHECK(pat_ok, "sliding_window_pattern");
    kv = gguf_find_kv(f, "gemma4.feed_forward_length");
    if (c->double_wide) {
        int ok = kv && kv->type == GGUF_ARRAY && kv->arr_n == (uint64_t)c->n_layer;
        for (int l = 0; ok && l < c->n_layer; l++) ok = gguf_arr_i64(kv, (uint64_t)l) == g4_synth_layer_n_ff(c, l);
        CHECK(ok && gguf_arr_i64(kv, (uint64_t)c->n_layer - 1) == 2 * c->n_ff, "feed_forward_length array");
    } else {
        CHECK(kv && kv->type != GGUF_ARRAY && gguf_kv_u64(kv) == (uint64_t)c->n_ff, "feed_forward_length");
    }
    kv = gguf_find_kv(f, "gemma4.attention.head_count_kv");
    if (c->n_head_kv_full != c->n_head_kv_swa) {
        int ok = kv && kv->type == GGUF_ARRAY && kv->arr_n == (uint64_t)c->n_layer;
        for (int l = 0; ok && l < c->n_layer; l++) ok = gguf_arr_i64(kv, (uint64_t)l) == g4_synth_layer_n_head_kv(c, l);
        CHECK(ok, "head_count_kv array");
    } else {
        CHECK(kv && kv->type != GGUF_ARRAY && gguf_kv_u64(kv) == (uint64_t)c->n_head_kv_swa, "head_count_kv");
    }
    CHECK((gguf_find_kv(f, "gemma4.expert_count") != NULL) == (c->n_expert > 0), "expert keys");

    /* F32 tensors: the recipe */
    const gguf_tensor *t = gguf_find_tensor(f, "rope_freqs.weight");
    CHECK(t && t->type == G4_TYPE_F32 && t->ne[0] == c->head_dim_full / 2, "rope_freqs");
    if (t) {
        const float *x = (const float *)(const void *)t->data;
        int ok = 1;
        for (int i = 0; i < c->head_dim_full / 2; i++) ok &= x[i] == (i < c->head_dim_full / 8 ? 1.0f : 1e30f);
        CHECK(ok, "rope_freqs values");
    }
    char name[64];
    double mean, rms;
    for (int l = 0; l < c->n_layer; l++) {
        snprintf(name, sizeof name, "blk.%d.layer_output_scale.weight", l);
        t = gguf_find_tensor(f, name);
        float v = t ? *(const float *)(const void *)t->data : 0;
        CHECK(t && v >= 0.6f && v <= 1.0f, "%s = %g", name, v);
        snprintf(name, sizeof name, "blk.%d.attn_q_norm.weight", l);
        t = gguf_find_tensor(f, name);
        if (t) {
            f32_stats(t, &mean, &rms);
            const double want = 1.0 / sqrt((double)g4_synth_layer_head_dim(c, l));
            CHECK(fabs(mean - want) < 0.05 * want, "%s mean %g, want %g", name, mean, want);
        }
    }
    if (type == G4_TYPE_F32) {
        t = gguf_find_tensor(f, "token_embd.weight");
        f32_stats(t, &mean, &rms);
        CHECK(fabs(mean) < 0.002 && rms > 0.02 && rms < 0.04, "token_embd mean %g rms %g", mean, rms);
        t = gguf_find_tensor(f, "blk.0.ffn_up.weight");
        f32_stats(t, &mean, &rms);
        CHECK(fabs(rms - 0.02) < 0.002, "ffn_up rms %g", rms);
        if (c->n_expert) {
            t = gguf_find_tensor(f, "blk.0.ffn_gate_inp.weight");
            f32_stats(t, &mean, &rms);
            CHECK(fabs(rms - 2.0) < 0.2, "router rms %g", rms);
            /* experts correlated: expert 0 and 1 of ffn_down_exps */
            t = gguf_find_tensor(f, "blk.0.ffn_down_exps.weight");
            const float *x = (const float *)(const void *)t->data;
            const uint64_t per = (uint64_t)t->ne[0] * (uint64_t)t->ne[1];
            double sxy = 0, sxx = 0, syy = 0;
            for (uint64_t i = 0; i < per; i++) {
                sxy += (double)x[i] * x[per + i];
                sxx += (double)x[i] * x[i];
                syy += (double)x[per + i] * x[per + i];
            }
            const double corr = sxy / sqrt(sxx * syy);
            CHECK(corr > 0.85 && corr < 0.95, "expert correlation %g", corr);
        }
    }
    gguf_close(f);
}

static void test_synth_tiny(void) {
    static const int types[] = {G4_TYPE_F32, G4_TYPE_F16, G4_TYPE_BF16, G4_TYPE_Q8_0, G4_TYPE_Q4_0};
    for (int v = 0; v < G4_SYNTH_N_VARIANTS; v++) {
        g4_synth_config c;
        g4_error err = {0};
        CHECK(g4_synth_get_config((g4_synth_variant)v, G4_SYNTH_TINY, &c, &err) == G4_OK, "config");
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            char fname[64], path[128];
            snprintf(fname, sizeof fname, "%s-%s.gguf", c.name, g4_type_name(types[k]));
            path_in(fname, path, sizeof path);
            g4_synth_params p;
            memset(&p, 0, sizeof p);
            p.variant = (g4_synth_variant)v;
            p.scale = G4_SYNTH_TINY;
            p.type = types[k];
            p.seed = 1234;
            p.out = path;
            uint64_t n_t = 0, bytes = 0;
            g4_status st = g4_synth_ex(&p, &n_t, &bytes, &err);
            CHECK(st == G4_OK, "synth %s: %s", fname, err.msg);
            if (st == G4_OK) check_synth_file(path, &c, types[k], n_t, bytes);
            unlink(path);
        }
    }
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static void test_synth_misc(void) {
    char p1[128], p2[128], p3[128];
    path_in("s1.gguf", p1, sizeof p1);
    path_in("s2.gguf", p2, sizeof p2);
    path_in("s3.gguf", p3, sizeof p3);
    g4_synth_params p;
    memset(&p, 0, sizeof p);
    p.variant = G4_SYNTH_26B_A4B;
    p.type = G4_TYPE_Q4_0;
    p.seed = 7;
    g4_error err = {0};
    p.out = p1;
    CHECK(g4_synth(&p, &err) == G4_OK, "synth: %s", err.msg);
    p.out = p2;
    CHECK(g4_synth(&p, &err) == G4_OK, "synth: %s", err.msg);
    p.seed = 8;
    p.out = p3;
    CHECK(g4_synth(&p, &err) == G4_OK, "synth: %s", err.msg);
    CHECK(files_equal(p1, p2), "same seed, same file");
    CHECK(!files_equal(p1, p3) && file_size(p1) == file_size(p3), "another seed, other weights, same size");
    unlink(p1);
    unlink(p2);
    unlink(p3);

    /* bad parameters */
    p.type = G4_TYPE_Q8_K; /* an activation encoding, not a weight type */
    CHECK(g4_synth(&p, &err) == G4_ERR_UNSUPPORTED, "Q8_K refused: %s", err.msg);
    p.type = 99;
    CHECK(g4_synth(&p, &err) == G4_ERR_ARG, "unknown type refused");
    p.type = G4_TYPE_F32;
    p.variant = (g4_synth_variant)9;
    CHECK(g4_synth(&p, &err) == G4_ERR_ARG, "unknown variant refused");
    CHECK(g4_synth_variant_from_name("26b-a4b") == G4_SYNTH_26B_A4B && g4_synth_variant_from_name("31b") == G4_SYNTH_31B &&
              g4_synth_variant_from_name("e9b") < 0 && g4_synth_scale_from_name("full") == G4_SYNTH_FULL,
          "names");

    /* full-scale plans of the real variants: tensor counts and sizes (nothing written) */
    static const uint64_t full_counts[G4_SYNTH_N_VARIANTS] = {541, 666, 658, 833};
    for (int v = 0; v < G4_SYNTH_N_VARIANTS; v++) {
        g4_synth_config c;
        g4_synth_get_config((g4_synth_variant)v, G4_SYNTH_FULL, &c, &err);
        memset(&p, 0, sizeof p);
        p.variant = (g4_synth_variant)v;
        p.scale = G4_SYNTH_FULL;
        p.type = G4_TYPE_Q4_0;
        p.dry_run = 1;
        uint64_t n_t = 0, bytes = 0;
        CHECK(g4_synth_ex(&p, &n_t, &bytes, &err) == G4_OK, "dry run %s: %s", c.name, err.msg);
        CHECK(n_t == expected_tensors(&c) && n_t == full_counts[v], "%s full: %llu tensors", c.name, (unsigned long long)n_t);
        CHECK(bytes > ((uint64_t)2 << 30), "%s full: %llu bytes", c.name, (unsigned long long)bytes);
    }
    /* E2B full facts from the architecture doc */
    g4_synth_config e;
    g4_synth_get_config(G4_SYNTH_E2B, G4_SYNTH_FULL, &e, &err);
    int full_layers = 0;
    for (int l = 0; l < e.n_layer; l++) full_layers += !g4_synth_layer_is_swa(&e, l);
    CHECK(full_layers == 7 && !g4_synth_layer_is_swa(&e, 34) && g4_synth_layer_owns_kv(&e, 14) &&
              !g4_synth_layer_owns_kv(&e, 15) && g4_synth_layer_n_ff(&e, 14) == 6144 && g4_synth_layer_n_ff(&e, 15) == 12288,
          "E2B layer structure");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/g4_test_synth_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    g4_types_init();
    test_roundtrip(0);
    test_roundtrip(64);
    test_writer_errors();
    test_vocab();
    test_synth_tiny();
    test_synth_misc();
    char p[128];
    unlink(path_in("rt.gguf", p, sizeof p));
    unlink(path_in("rt_align.gguf", p, sizeof p));
    unlink(path_in("keep.gguf", p, sizeof p));
    rmdir(dir);
    return t_done();
}
