/* GGUF v2/v3 reader (memory-mapped, zero copy, validated) and streaming writer.
 *
 * Reader: gguf_open maps the file and checks everything before anyone uses it: magic, version,
 * counts against the file size, every string length, every metadata value and array, tensor dims,
 * n_elements * type size overflow, block-size divisibility, offsets and alignment inside the data
 * section, overlapping tensors, duplicate keys and tensor names. Any problem is one readable error
 * naming the offset, key or tensor. After a successful open, every pointer in the structures points
 * inside the mapping and every size has been checked.
 */
#ifndef G4_GGUF_H
#define G4_GGUF_H

#include "g4.h"
#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4, GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10,
    GGUF_INT64 = 11, GGUF_FLOAT64 = 12, GGUF_VTYPE_COUNT = 13
};

const char *gguf_vtype_name(int t);

typedef struct gguf_kv {
    char *key;               /* NUL-terminated copy */
    int type;                /* enum gguf_vtype */
    int arr_type;            /* element type if type == GGUF_ARRAY */
    uint64_t arr_n;          /* element count if array */
    const uint8_t *data;     /* value bytes in the mapping (for arrays: first element) */
    uint64_t nbytes;         /* bytes of the value (arrays: all elements, incl. string lengths) */
    uint64_t file_offset;    /* offset of the key in the file */
    uint64_t *str_off;       /* arrays of strings: offset of each element from data (NULL otherwise) */
} gguf_kv;

typedef struct gguf_tensor {
    char *name;              /* NUL-terminated copy */
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] contiguous; unused dims are 1 */
    int type;                /* GGML type id */
    uint64_t offset;         /* relative to the data section */
    uint64_t nbytes;
    uint64_t n_elements;
    const uint8_t *data;     /* inside the mapping */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;     /* mapping (or caller buffer) */
    uint64_t size;
    int mapped;              /* 1 if base must be munmap'ed */
    uint32_t version;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t header_bytes;   /* header + metadata + tensor infos, before the alignment padding */
    uint64_t data_offset;    /* start of the tensor data section */
    uint64_t data_bytes;     /* sum of tensor nbytes (without padding) */
} gguf_file;

/* Map and parse a file. */
g4_status gguf_open(gguf_file **out, const char *path, g4_error *err);
/* Parse a buffer that stays owned by the caller (fuzzing, tests). */
g4_status gguf_parse(gguf_file **out, const void *buf, size_t size, g4_error *err);
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters: G4_OK, or G4_ERR_FORMAT if present with a wrong type (message names the key),
 * or G4_ERR_FORMAT "missing key" when required and absent; when not required and absent the output
 * is untouched and G4_OK is returned. Integer getters accept any integer type whose value fits. */
g4_status gguf_get_u32(const gguf_file *f, const char *key, int required, uint32_t *out, g4_error *err);
g4_status gguf_get_f32(const gguf_file *f, const char *key, int required, float *out, g4_error *err);
g4_status gguf_get_bool(const gguf_file *f, const char *key, int required, int *out, g4_error *err);
/* string value: pointer into the mapping + length (not NUL-terminated) */
g4_status gguf_get_str(const gguf_file *f, const char *key, int required, const char **s, uint64_t *len, g4_error *err);

/* Scalars and array elements (caller has checked types) */
uint64_t gguf_kv_u64(const gguf_kv *kv);   /* any unsigned/signed integer or bool scalar */
double gguf_kv_f64(const gguf_kv *kv);     /* any numeric scalar */
/* element i of a numeric array as int64 / double */
int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i);
double gguf_arr_f64(const gguf_kv *kv, uint64_t i);
/* element i of a string array (pointer into mapping) */
const char *gguf_arr_str(const gguf_kv *kv, uint64_t i, uint64_t *len);
int gguf_vtype_is_int(int t);
size_t gguf_vtype_size(int t); /* scalar size; 0 for string/array */

/* ---- writer ------------------------------------------------------------------------------------------
 * Metadata and tensor infos are collected in memory; tensor data is produced by a callback while the
 * file is written, so multi-gigabyte files never sit in RAM (implementation: gguf_write.c).
 *
 * Output is GGUF v3, little-endian: header, metadata in the order the keys were set, tensor infos in
 * declaration order, zero padding to the alignment, then each tensor's data in declaration order, each
 * starting at a multiple of the alignment (zero padding between tensors and after the last one).
 * The alignment is GGUF_DEFAULT_ALIGNMENT (32) unless the u32 key "general.alignment" is set (a power
 * of two); the key is only written when set explicitly. */
typedef struct gguf_writer gguf_writer;

/* NULL if out of memory */
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);

/* Setters copy their arguments and keep the order of the calls. They return G4_OK, G4_ERR_NOMEM or
 * G4_ERR_ARG (duplicate key, bad type, bad shape...). The first failure is also remembered by the
 * writer, and gguf_writer_write then fails with its message: a caller may set many keys and check
 * only the final write. */
g4_status gguf_w_u32(gguf_writer *w, const char *key, uint32_t v);
g4_status gguf_w_i32(gguf_writer *w, const char *key, int32_t v);
g4_status gguf_w_u64(gguf_writer *w, const char *key, uint64_t v);
g4_status gguf_w_f32(gguf_writer *w, const char *key, float v);
g4_status gguf_w_bool(gguf_writer *w, const char *key, int v);
g4_status gguf_w_str(gguf_writer *w, const char *key, const char *v);
/* any non-string scalar: vtype one of UINT8..FLOAT64 (not STRING / ARRAY), *v of that C type
 * (GGUF_BOOL: one byte, 0 or 1) */
g4_status gguf_w_scalar(gguf_writer *w, const char *key, int vtype, const void *v);
/* numeric array: elem_type one of the scalar gguf_vtype values, n elements of that size */
g4_status gguf_w_arr(gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
g4_status gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);

/* Declare a tensor; its data comes later from the callback. n_dims 1..4, every ne >= 1, ne[0] a
 * multiple of the type's block size, type known to g4_type_row_bytes; unique names. */
g4_status gguf_w_tensor(gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne);

/* G4_OK, or the first error of a setter (with its message): what gguf_writer_write would report. */
g4_status gguf_writer_status(const gguf_writer *w, g4_error *err);
/* Number of tensors declared, and the exact size in bytes the file will have (after all setters). */
uint64_t gguf_writer_n_tensors(const gguf_writer *w);
uint64_t gguf_writer_file_size(const gguf_writer *w);

/* Largest buffer handed to the fill callback (unless a single row is larger). */
#define GGUF_W_CHUNK_BYTES ((uint64_t)16 << 20)

/* Callback: produce rows [row0, row0 + nrows) of tensor `index` (declaration order) into `dst`.
 * A "row" is ne[0] consecutive values (g4_type_row_bytes(type, ne[0]) bytes); a tensor has
 * ne[1]*ne[2]*ne[3] rows. The writer calls it for consecutive row ranges that together cover the
 * tensor exactly once, in order, each at most GGUF_W_CHUNK_BYTES (but at least one row), so
 * nbytes == nrows * row bytes. dst is zeroed before the call. Return G4_OK or an error (filled into
 * err; writing then stops and the temporary file is removed). */
typedef g4_status (*gguf_fill_fn)(void *user, int index, const char *name, int type, const int64_t *ne,
                                  int64_t row0, int64_t nrows, void *dst, uint64_t nbytes, g4_error *err);
/* progress: called after each chunk of tensor data with bytes done / total (tensor data bytes,
 * without header and padding); may be NULL */
typedef void (*gguf_progress_fn)(void *user, uint64_t done, uint64_t total);

/* Write the file (to path.tmp, then rename, so a failure never leaves a half file behind). */
g4_status gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, gguf_progress_fn progress,
                            void *user, g4_error *err);

#endif
