/* libFuzzer target for the GGUF reader (and the model loader on top of it).
 *
 *   make fuzz FUZZ_SECONDS=60      (clang -fsanitize=fuzzer,address,undefined)
 *
 * gguf_parse must either fail with a message or return a structure in which every pointer and size is
 * inside the input. After a successful parse every accessor is called on every kv and tensor and every
 * string byte, array element and the first/last byte of each tensor's data is read, so ASan sees any
 * pointer the reader got wrong; broken invariants abort. Then the file goes to g4_model_from_gguf.
 * Seeds: fuzz/corpus (made by fuzz/make_corpus.py).
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/types.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENSURE(c)                                                                                   \
    do {                                                                                            \
        if (!(c)) {                                                                                 \
            fprintf(stderr, "fuzz_gguf: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

static volatile uint64_t sink;

static void touch(const void *p, uint64_t n) {
    if (!n) return;
    const volatile uint8_t *b = p;
    sink += b[0];
    sink += b[n - 1];
}
static void read_all(const void *p, uint64_t n) {
    const volatile uint8_t *b = p;
    for (uint64_t i = 0; i < n; i++) sink += b[i];
}

static int inside(const gguf_file *f, const void *p, uint64_t n) {
    const uint8_t *b = p;
    return b >= f->base && b <= f->base + f->size && n <= (uint64_t)(f->base + f->size - b);
}

static void walk_kv(const gguf_file *f, const gguf_kv *kv) {
    g4_error err;
    ENSURE(kv->key && kv->key[0]);
    ENSURE(gguf_find_kv(f, kv->key) == kv); /* keys are unique */
    ENSURE(kv->type >= 0 && kv->type < GGUF_VTYPE_COUNT);
    ENSURE(inside(f, kv->data, kv->nbytes));
    ENSURE(kv->file_offset < f->size);
    (void)gguf_vtype_name(kv->type);
    (void)gguf_vtype_is_int(kv->type);
    read_all(kv->data, kv->nbytes);

    /* every typed getter on every key: OK or a message, never a crash */
    uint32_t u = 0;
    float x = 0;
    int b = 0;
    const char *s = NULL;
    uint64_t sl = 0;
    err.msg[0] = 0;
    if (gguf_get_u32(f, kv->key, 1, &u, &err) != G4_OK) ENSURE(err.msg[0]);
    err.msg[0] = 0;
    if (gguf_get_f32(f, kv->key, 1, &x, &err) != G4_OK) ENSURE(err.msg[0]);
    if (gguf_get_bool(f, kv->key, 0, &b, NULL) != G4_OK) ENSURE(kv->type != GGUF_BOOL);
    if (gguf_get_str(f, kv->key, 1, &s, &sl, &err) == G4_OK) {
        ENSURE(kv->type == GGUF_STRING);
        ENSURE(inside(f, s, sl));
        ENSURE(sl + 8 == kv->nbytes);
        read_all(s, sl);
    } else {
        ENSURE(kv->type != GGUF_STRING && err.msg[0]);
    }
    sink += u + (uint64_t)b;
    sink += (uint64_t)(x == x);

    if (kv->type != GGUF_ARRAY) {
        ENSURE(kv->type == GGUF_STRING || kv->nbytes == gguf_vtype_size(kv->type));
        sink += gguf_kv_u64(kv);
        double d = gguf_kv_f64(kv);
        sink += (uint64_t)(d == d);
        sink += (uint64_t)gguf_arr_i64(kv, 0); /* not an array: 0 */
        return;
    }
    ENSURE(kv->arr_type >= 0 && kv->arr_type < GGUF_VTYPE_COUNT && kv->arr_type != GGUF_ARRAY);
    if (kv->arr_type == GGUF_STRING) {
        ENSURE(kv->arr_n * 8 <= kv->nbytes);
        uint64_t total = 0;
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            uint64_t n = UINT64_MAX;
            const char *e = gguf_arr_str(kv, i, &n);
            ENSURE(inside(f, e, n));
            ENSURE((const uint8_t *)e >= kv->data && (const uint8_t *)e + n <= kv->data + kv->nbytes);
            touch(e, n);
            total += 8 + n;
            sink += (uint64_t)gguf_arr_i64(kv, i);
            double d = gguf_arr_f64(kv, i);
            sink += (uint64_t)(d == d);
        }
        ENSURE(total == kv->nbytes);
    } else {
        ENSURE(kv->nbytes == kv->arr_n * gguf_vtype_size(kv->arr_type));
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            sink += (uint64_t)gguf_arr_i64(kv, i);
            double d = gguf_arr_f64(kv, i);
            sink += (uint64_t)(d == d);
            uint64_t n = 1;
            (void)gguf_arr_str(kv, i, &n);
            ENSURE(n == 0);
        }
    }
    /* past the end: must answer 0 / "" without reading */
    uint64_t n = 1;
    sink += (uint64_t)gguf_arr_i64(kv, kv->arr_n);
    double d = gguf_arr_f64(kv, kv->arr_n);
    sink += (uint64_t)(d == d);
    (void)gguf_arr_str(kv, kv->arr_n, &n);
    ENSURE(n == 0);
}

static void walk_tensor(const gguf_file *f, const gguf_tensor *t) {
    ENSURE(t->name && t->name[0]);
    ENSURE(gguf_find_tensor(f, t->name) == t); /* names are unique */
    ENSURE(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
    uint64_t nel = 1;
    int64_t mag = 1; /* product of the non-zero dims: users multiply dims in int64 */
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        ENSURE(t->ne[d] >= 0);
        if (d >= t->n_dims) ENSURE(t->ne[d] == 1);
        nel *= (uint64_t)t->ne[d];
        if (t->ne[d]) ENSURE(!__builtin_mul_overflow(mag, t->ne[d], &mag));
    }
    ENSURE(nel == t->n_elements);
    const g4_type_traits *tr = g4_type_traits_get(t->type);
    ENSURE(tr != NULL);
    ENSURE(t->ne[0] % tr->blck == 0);
    uint64_t rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
    if (t->ne[0]) ENSURE(t->nbytes == g4_type_row_bytes(t->type, t->ne[0]) * rows);
    else ENSURE(t->nbytes == 0);
    ENSURE(t->offset % f->alignment == 0);
    ENSURE(t->data == f->base + f->data_offset + t->offset);
    ENSURE(inside(f, t->data, t->nbytes));
    touch(t->data, t->nbytes);
}

/* no two non-empty tensors share a byte: sort by start, each must start at or after the furthest end */
typedef struct { uint64_t off, end; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}
static void check_disjoint(const gguf_file *f) {
    if (f->n_tensors < 2) return;
    span *sp = malloc(f->n_tensors * sizeof *sp);
    ENSURE(sp);
    uint64_t n = 0, far = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].nbytes) sp[n++] = (span){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].nbytes};
    qsort(sp, n, sizeof *sp, cmp_span);
    for (uint64_t i = 0; i < n; i++) {
        ENSURE(i == 0 || sp[i].off >= far);
        if (sp[i].end > far) far = sp[i].end;
    }
    free(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    g4_error err;
    memset(&err, 0, sizeof err);
    g4_status s = gguf_parse(&f, data, size, &err);
    if (s != G4_OK) {
        ENSURE(f == NULL);
        ENSURE(err.code == s && err.msg[0]);
        ENSURE(s == G4_ERR_FORMAT || s == G4_ERR_UNSUPPORTED);
        return 0;
    }
    ENSURE(f && f->base == data && f->size == size);
    ENSURE(f->version == 2 || f->version == 3);
    ENSURE(f->alignment && (f->alignment & (f->alignment - 1)) == 0);
    ENSURE(f->data_offset <= f->size);
    ENSURE(f->n_tensors == 0 || f->data_offset % f->alignment == 0);

    for (uint64_t i = 0; i < f->n_kv; i++) walk_kv(f, &f->kv[i]);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        walk_tensor(f, &f->tensors[i]);
        sum += f->tensors[i].nbytes;
    }
    ENSURE(sum == f->data_bytes);
    ENSURE(f->data_bytes <= f->size - f->data_offset);
    check_disjoint(f);
    ENSURE(gguf_find_kv(f, "") == NULL && gguf_find_tensor(f, "") == NULL);

    /* the model loader on top (it takes ownership of f, also on failure) */
    g4_model *m = NULL;
    memset(&err, 0, sizeof err);
    s = g4_model_from_gguf(&m, f, &err);
    if (s == G4_OK) {
        g4_model_info info;
        g4_model_get_info(m, &info);
        for (int l = 0; l < info.n_layer; l++) {
            g4_layer_info li;
            g4_model_get_layer(m, l, &li);
            sink += (uint64_t)li.head_dim;
        }
        g4_model_free(m);
    } else {
        ENSURE(m == NULL && err.msg[0]);
    }
    return 0;
}
