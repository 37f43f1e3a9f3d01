/* Streaming GGUF v3 writer (see the writer section of gguf.h for the contract).
 *
 * Metadata values are serialized into one byte blob per key as soon as they are set (so setters copy
 * everything and the header is written with plain fwrite calls); tensor infos are kept as a list and
 * offsets are assigned at write time. Tensor data never sits in memory as a whole: for each tensor the
 * writer hands the fill callback one buffer of at most GGUF_W_CHUNK_BYTES (a whole number of rows) at
 * a time and streams it to PATH.tmp (util/wfile.h: never over a device or through a symlink), which is
 * renamed to PATH only after everything was written, flushed, fsync'ed and closed without error.
 */
#include "gguf/gguf.h"
#include "quant/types.h"
#include "util/util.h"
#include "util/wfile.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    uint8_t *val; /* serialized: u32 type, then the value (GGUF layout) */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    int type;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t row_bytes, n_rows, nbytes;
    uint64_t offset; /* relative to the data section, assigned by layout() */
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint64_t alignment;
    g4_status first_err; /* sticky error of a setter */
    char first_msg[256];
};

/* ---- small helpers -------------------------------------------------------------------------------- */

static g4_status w_fail(gguf_writer *w, g4_status code, const char *fmt, ...) G4_PRINTF(3, 4);
static g4_status w_fail(gguf_writer *w, g4_status code, const char *fmt, ...) {
    if (w && w->first_err == G4_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_msg, sizeof w->first_msg, fmt, ap);
        va_end(ap);
        w->first_err = code;
    }
    return code;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* ---- metadata --------------------------------------------------------------------------------------- */

static size_t scalar_size(int t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Checks the key and reserves a slot; the caller fills val/len (and frees nothing on failure). */
static g4_status kv_add(gguf_writer *w, const char *key, uint8_t *val, size_t len) {
    if (!w) {
        free(val);
        return G4_ERR_ARG;
    }
    if (!key || !*key) {
        free(val);
        return w_fail(w, G4_ERR_ARG, "gguf writer: empty metadata key");
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(val);
            return w_fail(w, G4_ERR_ARG, "gguf writer: duplicate metadata key '%s'", key);
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *p = realloc(w->kv, cap * sizeof *p);
        if (!p) {
            free(val);
            return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory adding key '%s'", key);
        }
        w->kv = p;
        w->cap_kv = cap;
    }
    char *k = xstrdup(key);
    if (!k) {
        free(val);
        return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory adding key '%s'", key);
    }
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].val = val;
    w->kv[w->n_kv].len = len;
    w->n_kv++;
    return G4_OK;
}

g4_status gguf_w_scalar(gguf_writer *w, const char *key, int vtype, const void *v) {
    size_t sz = scalar_size(vtype);
    if (!w) return G4_ERR_ARG;
    if (sz == 0 || !v) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': bad scalar type %d", key ? key : "?", vtype);
    if (vtype == GGUF_BOOL && *(const uint8_t *)v > 1)
        return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': bool value %u", key ? key : "?", *(const uint8_t *)v);
    if (vtype == GGUF_UINT32 && key && strcmp(key, "general.alignment") == 0) {
        uint32_t a;
        memcpy(&a, v, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return w_fail(w, G4_ERR_ARG, "gguf writer: general.alignment %u is not a power of two", a);
    }
    uint8_t *val = malloc(4 + sz);
    if (!val) return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory");
    put_u32(val, (uint32_t)vtype);
    /* host value -> little-endian bytes */
    uint64_t bits = 0;
    switch (sz) {
    case 1: { uint8_t x; memcpy(&x, v, 1); bits = x; break; }
    case 2: { uint16_t x; memcpy(&x, v, 2); bits = x; break; }
    case 4: { uint32_t x; memcpy(&x, v, 4); bits = x; break; }
    default: memcpy(&bits, v, 8); break;
    }
    for (size_t i = 0; i < sz; i++) val[4 + i] = (uint8_t)(bits >> (8 * i));
    g4_status st = kv_add(w, key, val, 4 + sz);
    if (st == G4_OK && vtype == GGUF_UINT32 && strcmp(key, "general.alignment") == 0) {
        uint32_t a;
        memcpy(&a, v, 4);
        w->alignment = a;
    }
    return st;
}

g4_status gguf_w_u32(gguf_writer *w, const char *key, uint32_t v) { return gguf_w_scalar(w, key, GGUF_UINT32, &v); }
g4_status gguf_w_i32(gguf_writer *w, const char *key, int32_t v) { return gguf_w_scalar(w, key, GGUF_INT32, &v); }
g4_status gguf_w_u64(gguf_writer *w, const char *key, uint64_t v) { return gguf_w_scalar(w, key, GGUF_UINT64, &v); }
g4_status gguf_w_f32(gguf_writer *w, const char *key, float v) { return gguf_w_scalar(w, key, GGUF_FLOAT32, &v); }
g4_status gguf_w_bool(gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    return gguf_w_scalar(w, key, GGUF_BOOL, &b);
}

g4_status gguf_w_str(gguf_writer *w, const char *key, const char *v) {
    if (!w) return G4_ERR_ARG;
    if (!v) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': NULL string", key ? key : "?");
    size_t n = strlen(v);
    uint8_t *val = malloc(4 + 8 + n);
    if (!val) return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory");
    put_u32(val, GGUF_STRING);
    put_u64(val + 4, n);
    memcpy(val + 12, v, n);
    return kv_add(w, key, val, 12 + n);
}

g4_status gguf_w_arr(gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n) {
    if (!w) return G4_ERR_ARG;
    size_t sz = scalar_size(elem_type);
    if (sz == 0) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': bad array element type %d", key ? key : "?", elem_type);
    if (n && !data) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': NULL array data", key ? key : "?");
    uint64_t body;
    if (!g4_mul_ok(n, sz, &body) || body > SIZE_MAX - 16)
        return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': array too large", key ? key : "?");
    uint8_t *val = malloc(16 + (size_t)body);
    if (!val) return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory for array '%s'", key ? key : "?");
    put_u32(val, GGUF_ARRAY);
    put_u32(val + 4, (uint32_t)elem_type);
    put_u64(val + 8, n);
    const uint8_t *src = data;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *d = val + 16 + i * sz;
        uint64_t bits = 0;
        switch (sz) {
        case 1: bits = src[i]; break;
        case 2: { uint16_t x; memcpy(&x, src + 2 * i, 2); bits = x; break; }
        case 4: { uint32_t x; memcpy(&x, src + 4 * i, 4); bits = x; break; }
        default: memcpy(&bits, src + 8 * i, 8); break;
        }
        if (elem_type == GGUF_BOOL && bits > 1) {
            free(val);
            return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': bool element %" PRIu64 " is %" PRIu64, key ? key : "?", i, bits);
        }
        for (size_t b = 0; b < sz; b++) d[b] = (uint8_t)(bits >> (8 * b));
    }
    return kv_add(w, key, val, 16 + (size_t)body);
}

g4_status gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!w) return G4_ERR_ARG;
    if (n && !strs) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': NULL string array", key ? key : "?");
    uint64_t total = 16;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': element %" PRIu64 " is NULL", key ? key : "?", i);
        total += 8 + strlen(strs[i]);
        if (total > SIZE_MAX / 2) return w_fail(w, G4_ERR_ARG, "gguf writer: key '%s': array too large", key ? key : "?");
    }
    uint8_t *val = malloc((size_t)total);
    if (!val) return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory for array '%s'", key ? key : "?");
    put_u32(val, GGUF_ARRAY);
    put_u32(val + 4, GGUF_STRING);
    put_u64(val + 8, n);
    size_t o = 16;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(strs[i]);
        put_u64(val + o, len);
        memcpy(val + o + 8, strs[i], len);
        o += 8 + len;
    }
    return kv_add(w, key, val, o);
}

/* ---- tensors ---------------------------------------------------------------------------------------- */

g4_status gguf_w_tensor(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne) {
    if (!w) return G4_ERR_ARG;
    if (!name || !*name) return w_fail(w, G4_ERR_ARG, "gguf writer: empty tensor name");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return w_fail(w, G4_ERR_ARG, "gguf writer: tensor '%s': n_dims %d not in 1..%d", name, n_dims, GGUF_MAX_DIMS);
    wtensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.n_dims = n_dims;
    uint64_t rows = 1;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) {
        t.ne[i] = i < n_dims ? ne[i] : 1;
        if (t.ne[i] < 1) return w_fail(w, G4_ERR_ARG, "gguf writer: tensor '%s': ne[%d] = %" PRId64, name, i, t.ne[i]);
        if (i > 0 && !g4_mul_ok(rows, (uint64_t)t.ne[i], &rows))
            return w_fail(w, G4_ERR_ARG, "gguf writer: tensor '%s': too many elements", name);
    }
    t.row_bytes = g4_type_row_bytes(type, t.ne[0]);
    if (t.row_bytes == 0) {
        const g4_type_traits *tr = g4_type_traits_get(type);
        if (!tr) return w_fail(w, G4_ERR_ARG, "gguf writer: tensor '%s': unknown type %d", name, type);
        return w_fail(w, G4_ERR_ARG, "gguf writer: tensor '%s': row length %" PRId64 " is not a multiple of %s block size %d",
                      name, t.ne[0], tr->name, tr->blck);
    }
    t.n_rows = rows;
    if (!g4_mul_ok(rows, t.row_bytes, &t.nbytes) || t.nbytes > (UINT64_MAX >> 2))
        return w_fail(w, G4_ERR_ARG, "gguf writer: tensor '%s': too large", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return w_fail(w, G4_ERR_ARG, "gguf writer: duplicate tensor '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory adding tensor '%s'", name);
        w->t = p;
        w->cap_t = cap;
    }
    t.name = xstrdup(name);
    if (!t.name) return w_fail(w, G4_ERR_NOMEM, "gguf writer: out of memory adding tensor '%s'", name);
    w->t[w->n_t++] = t;
    return G4_OK;
}

/* ---- layout ----------------------------------------------------------------------------------------- */

/* Assigns tensor offsets; returns the size of the header (before padding) and the data bytes
 * (with padding after every tensor). */
static void layout(const gguf_writer *w, uint64_t *header_bytes, uint64_t *data_bytes) {
    uint64_t h = 4 + 4 + 8 + 8;
    for (size_t i = 0; i < w->n_kv; i++) h += 8 + strlen(w->kv[i].key) + w->kv[i].len;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        h += 8 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].n_dims + 4 + 8;
        w->t[i].offset = off;
        off = align_up(off + w->t[i].nbytes, w->alignment);
    }
    *header_bytes = h;
    *data_bytes = off;
}

g4_status gguf_writer_status(const gguf_writer *w, g4_error *err) {
    if (!w) return g4_fail(err, G4_ERR_ARG, "gguf writer: no writer");
    if (w->first_err != G4_OK) return g4_fail(err, w->first_err, "%s", w->first_msg);
    return G4_OK;
}

uint64_t gguf_writer_n_tensors(const gguf_writer *w) { return w ? w->n_t : 0; }

uint64_t gguf_writer_file_size(const gguf_writer *w) {
    if (!w) return 0;
    uint64_t h, d;
    layout(w, &h, &d);
    return align_up(h, w->alignment) + d;
}

/* ---- output ----------------------------------------------------------------------------------------- */

typedef struct wout {
    FILE *f;
    const char *path;
    uint64_t written;
    g4_error *err;
} wout;

static g4_status out_bytes(wout *o, const void *p, size_t n) {
    if (n == 0) return G4_OK;
    if (fwrite(p, 1, n, o->f) != n)
        return g4_fail(o->err, G4_ERR_IO, "cannot write %s at offset %" PRIu64 ": %s", o->path, o->written,
                       strerror(errno));
    o->written += n;
    return G4_OK;
}

static g4_status out_u32(wout *o, uint32_t v) {
    uint8_t b[4];
    put_u32(b, v);
    return out_bytes(o, b, 4);
}

static g4_status out_u64(wout *o, uint64_t v) {
    uint8_t b[8];
    put_u64(b, v);
    return out_bytes(o, b, 8);
}

static g4_status out_str(wout *o, const char *s) {
    size_t n = strlen(s);
    g4_status st = out_u64(o, n);
    return st ? st : out_bytes(o, s, n);
}

static g4_status out_pad(wout *o, uint64_t align) {
    static const uint8_t zeros[256];
    uint64_t target = align_up(o->written, align);
    while (o->written < target) {
        uint64_t n = target - o->written;
        g4_status st = out_bytes(o, zeros, (size_t)(n < sizeof zeros ? n : sizeof zeros));
        if (st) return st;
    }
    return G4_OK;
}

static g4_status write_all(gguf_writer *w, wout *o, gguf_fill_fn fill, gguf_progress_fn progress, void *user) {
    g4_error *err = o->err;
    uint64_t header_bytes, data_bytes;
    layout(w, &header_bytes, &data_bytes);
    uint64_t data_start = align_up(header_bytes, w->alignment);

    g4_status st;
    if ((st = out_u32(o, GGUF_MAGIC)) || (st = out_u32(o, 3)) || (st = out_u64(o, w->n_t)) || (st = out_u64(o, w->n_kv)))
        return st;
    for (size_t i = 0; i < w->n_kv; i++)
        if ((st = out_str(o, w->kv[i].key)) || (st = out_bytes(o, w->kv[i].val, w->kv[i].len))) return st;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if ((st = out_str(o, t->name)) || (st = out_u32(o, (uint32_t)t->n_dims))) return st;
        for (int d = 0; d < t->n_dims; d++)
            if ((st = out_u64(o, (uint64_t)t->ne[d]))) return st;
        if ((st = out_u32(o, (uint32_t)t->type)) || (st = out_u64(o, t->offset))) return st;
    }
    if (o->written != header_bytes)
        return g4_fail(err, G4_ERR_IO, "gguf writer: internal error: header is %" PRIu64 " bytes, expected %" PRIu64,
                       o->written, header_bytes);
    if ((st = out_pad(o, w->alignment))) return st;

    /* tensor data: one reusable buffer of at most GGUF_W_CHUNK_BYTES (or one row) */
    uint64_t buf_bytes = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t rows = GGUF_W_CHUNK_BYTES / t->row_bytes;
        if (rows < 1) rows = 1;
        if (rows > t->n_rows) rows = t->n_rows;
        if (rows * t->row_bytes > buf_bytes) buf_bytes = rows * t->row_bytes;
    }
    if (buf_bytes > SIZE_MAX) return g4_fail(err, G4_ERR_NOMEM, "gguf writer: a row of %" PRIu64 " bytes is too large", buf_bytes);
    uint8_t *buf = NULL;
    if (w->n_t) {
        buf = malloc(buf_bytes ? (size_t)buf_bytes : 1);
        if (!buf) return g4_fail(err, G4_ERR_NOMEM, "gguf writer: cannot allocate %" PRIu64 " bytes of tensor buffer", buf_bytes);
    }
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < w->n_t; i++) total += w->t[i].nbytes;

    for (size_t i = 0; i < w->n_t && st == G4_OK; i++) {
        const wtensor *t = &w->t[i];
        if (o->written != data_start + t->offset) {
            st = g4_fail(err, G4_ERR_IO, "gguf writer: internal error: tensor '%s' at %" PRIu64 ", expected %" PRIu64,
                         t->name, o->written, data_start + t->offset);
            break;
        }
        uint64_t rows_per = GGUF_W_CHUNK_BYTES / t->row_bytes;
        if (rows_per < 1) rows_per = 1;
        for (uint64_t r = 0; r < t->n_rows && st == G4_OK; r += rows_per) {
            uint64_t nr = t->n_rows - r < rows_per ? t->n_rows - r : rows_per;
            uint64_t nb = nr * t->row_bytes;
            memset(buf, 0, (size_t)nb);
            if (fill) {
                g4_error ferr = {G4_OK, ""};
                st = fill(user, (int)i, t->name, t->type, t->ne, (int64_t)r, (int64_t)nr, buf, nb, &ferr);
                if (st != G4_OK) {
                    g4_fail(err, st, "tensor '%s' rows %" PRIu64 "..%" PRIu64 ": %s", t->name, r, r + nr - 1,
                            ferr.msg[0] ? ferr.msg : g4_status_str(st));
                    break;
                }
            }
            st = out_bytes(o, buf, (size_t)nb);
            done += nb;
            if (st == G4_OK && progress) progress(user, done, total);
        }
        if (st == G4_OK) st = out_pad(o, w->alignment);
    }
    free(buf);
    if (st) return st;
    if (o->written != data_start + data_bytes)
        return g4_fail(err, G4_ERR_IO, "gguf writer: internal error: wrote %" PRIu64 " bytes, expected %" PRIu64,
                       o->written, data_start + data_bytes);
    return G4_OK;
}

g4_status gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, gguf_progress_fn progress,
                            void *user, g4_error *err) {
    if (!w || !path || !*path) return g4_fail(err, G4_ERR_ARG, "gguf writer: no writer or no path");
    if (w->first_err != G4_OK) return g4_fail(err, w->first_err, "%s", w->first_msg);

    /* util/wfile: a regular file or nothing at PATH (a device or symlink is refused), written to PATH.tmp,
     * fsync'ed and renamed over PATH only when complete */
    g4_wfile *wf;
    g4_status st = g4_wfile_open(&wf, path, err);
    if (st) return st;
    FILE *f = g4_wfile_stream(wf);
    /* large stdio buffer: tensor chunks are written in one call anyway, this helps the header */
    setvbuf(f, NULL, _IOFBF, 1 << 20);

    wout o = {f, g4_wfile_tmp_path(wf), 0, err};
    st = write_all(w, &o, fill, progress, user);
    if (st == G4_OK) st = g4_wfile_commit(wf, err);
    else g4_wfile_abort(wf);
    return st;
}
