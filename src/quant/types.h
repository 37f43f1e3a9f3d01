/* Weight types: one table of traits per GGML type id.
 *
 * Block layouts are bit-exact with GGUF/ggml. Each type provides
 *   to_float   dequantize n values (n a multiple of blck) exactly as ggml's dequantize_row_*;
 *   from_float quantize n values (reference quantizer, used by `g4 synth` and tests), may be NULL;
 *   dot_f32    dot product of n weights with a float32 activation row, weights dequantized exactly
 *              (the reference "--exact" path: no activation rounding);
 *   vec_dot_type / dot_q
 *              the fast path: the activation row is first converted with the traits of vec_dot_type
 *              (from_float: Q8_0, Q8_K, F16, BF16 or F32) and dot_q multiplies the two encoded rows.
 * The table is the drop-in point for SIMD: a kernel file per ISA may replace dot_f32 / dot_q / to_float
 * entries at start-up (g4_types_init), keeping the scalar ones as reference.
 */
#ifndef G4_TYPES_H
#define G4_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* GGML type ids (the values stored in GGUF tensor infos) */
enum g4_type {
    G4_TYPE_F32 = 0,
    G4_TYPE_F16 = 1,
    G4_TYPE_Q4_0 = 2,
    G4_TYPE_Q4_1 = 3,
    G4_TYPE_Q5_0 = 6,
    G4_TYPE_Q5_1 = 7,
    G4_TYPE_Q8_0 = 8,
    G4_TYPE_Q8_1 = 9,
    G4_TYPE_Q2_K = 10,
    G4_TYPE_Q3_K = 11,
    G4_TYPE_Q4_K = 12,
    G4_TYPE_Q5_K = 13,
    G4_TYPE_Q6_K = 14,
    G4_TYPE_Q8_K = 15,
    G4_TYPE_I8 = 24,
    G4_TYPE_I16 = 25,
    G4_TYPE_I32 = 26,
    G4_TYPE_I64 = 27,
    G4_TYPE_F64 = 28,
    G4_TYPE_BF16 = 30,
    G4_TYPE_COUNT = 40
};

typedef void (*g4_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*g4_from_float_fn)(const float *src, void *dst, int64_t n);
typedef float (*g4_dot_f32_fn)(const void *w, const float *x, int64_t n);
typedef float (*g4_dot_q_fn)(const void *w, const void *xq, int64_t n);
/* one weight row against nx encoded activation rows, xs bytes apart: out[j] = dot_q(w, x + j*xs, n) */
typedef void (*g4_dot_q_multi_fn)(const void *w, const void *xq, size_t xs, int nx, float *out, int64_t n);

typedef struct g4_type_traits {
    const char *name;        /* "Q4_K" as GGUF tools print it */
    int blck;                /* values per block */
    size_t type_size;        /* bytes per block */
    int is_quantized;
    g4_to_float_fn to_float;
    g4_from_float_fn from_float; /* may be NULL */
    g4_dot_f32_fn dot_f32;       /* may be NULL for types that are not weights (Q8_K, I32...) */
    int vec_dot_type;            /* activation encoding for dot_q (-1 if dot_q is NULL) */
    g4_dot_q_fn dot_q;           /* may be NULL */
    /* dot_q_multi: the same products for several activation rows (prefill batches), reading each
     * weight block once for up to 4 of them; results bit-identical to calling dot_q once per row, so
     * batching never changes logits. NULL when the kernel set has none for the type: loop over dot_q
     * (g4_dot_q_multi does either). */
    g4_dot_q_multi_fn dot_q_multi;
} g4_type_traits;

/* Traits of a type id, or NULL if g4 does not know it (or it is not a tensor data type it can read). */
const g4_type_traits *g4_type_traits_get(int type);
/* Name of any type id, "type<N>" style for unknown ones (thread-unsafe static buffer not used: returns NULL). */
const char *g4_type_name(int type);
/* Bytes for n values of type (n must be a multiple of blck); 0 if unknown type or not a multiple.
 * Works for every id ggml defines (IQ*, TQ*, I32...), not only those with traits. */
size_t g4_type_row_bytes(int type, int64_t n);
/* Values per block / bytes per block of any type id ggml defines, including ones g4 cannot compute
 * with (so that their tensors can still be sized); 0 for unknown or removed ids. */
int g4_type_blck(int type);
size_t g4_type_size(int type);
/* Parse a name like "q4_0" / "Q4_K" / "f16" (case-insensitive); -1 if unknown. */
int g4_type_from_name(const char *name);

/* out[j] = tr->dot_q(w, xq + j*xs, n) for j < nx, with tr->dot_q_multi when the type has one. */
void g4_dot_q_multi(const g4_type_traits *tr, const void *w, const void *xq, size_t xs, int nx, float *out, int64_t n);

/* Select the best kernels for this CPU (idempotent, thread-safe): the scalar references, or the SIMD
 * kernels of the best instruction set the CPU supports. The environment variable
 * G4_ISA=scalar|avx2|avx512|neon|neon-dotprod forces a set; one the CPU lacks falls back to the best
 * available (with a note on stderr). On x86-64, avx512 (F/BW/VL/VNNI) replaces some of the avx2
 * kernels; on arm64, neon is the ARMv8.0 baseline and neon-dotprod adds SDOT (same results). */
void g4_types_init(void);
/* The kernel set in use: "scalar", "avx2", "avx512", "neon" or "neon-dotprod" (calls g4_types_init). */
const char *g4_types_isa(void);

#endif
