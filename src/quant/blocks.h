/* Block layouts of the GGML weight types, bit-exact with ggml-common.h, and the scalar reference
 * kernels behind the traits table (src/quant/types.c). Internal to the library: SIMD kernel files
 * include this to reuse the layouts and to fall back to the scalar code.
 *
 * All multi-byte fields are little-endian (GGUF); g4 assumes a little-endian host. A block pointer
 * must be aligned like its struct (2 bytes; 4 for block_q8_K), which GGUF's 32-byte tensor alignment
 * and every row size (a whole number of blocks) guarantee.
 *
 * Dequantization must reproduce ggml's float32 results bit for bit, so the exact order of the float
 * operations matters and floating-point contraction (a*b+c -> fma) must stay off in these files:
 * -std=c11 turns it off in gcc; the pragmas below make that explicit for clang and for gnu modes.
 */
#ifndef G4_QUANT_BLOCKS_H
#define G4_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

#include "quant/types.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256      /* super-block size of the k-quants */
#define K_SCALE_SIZE 12

typedef uint16_t g4_half; /* IEEE binary16 bits */

/* Q4_0: x = d * (q - 8), q 4 bits. qs[j] holds element j (low nibble) and j+16 (high nibble). */
typedef struct {
    g4_half d;
    uint8_t qs[QK4_0 / 2];
} block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

/* Q4_1: x = d * q + m, q 4 bits, same nibble order as Q4_0. */
typedef struct {
    g4_half d;
    g4_half m;
    uint8_t qs[QK4_1 / 2];
} block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

/* Q5_0: x = d * (q - 16), q 5 bits: low 4 bits as in Q4_0, bit 4 of element j is bit j of the
 * little-endian uint32 qh. */
typedef struct {
    g4_half d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

/* Q5_1: x = d * q + m, q 5 bits laid out as in Q5_0. */
typedef struct {
    g4_half d;
    g4_half m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

/* Q8_0: x = d * q, q int8. */
typedef struct {
    g4_half d;
    int8_t qs[QK8_0];
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

/* Q8_1 (activations for Q4_1 / Q5_1): Q8_0 plus s = fp16(d * sum(qs)), d as float before rounding. */
typedef struct {
    g4_half d;
    g4_half s;
    int8_t qs[QK8_1];
} block_q8_1;
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

/* Q2_K: 16 sub-blocks of 16, x = d*(sc & 15) * q - dmin*(sc >> 4), q 2 bits.
 * Element j: h = j/128, g = (j%128)/32, l = j%32: q = (qs[32h + l] >> 2g) & 3,
 * sub-block (scales index) 8h + 2g + l/16. */
typedef struct {
    uint8_t scales[QK_K / 16]; /* low nibble: scale, high nibble: min */
    uint8_t qs[QK_K / 4];
    g4_half d;
    g4_half dmin;
} block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

/* Q3_K: 16 sub-blocks of 16, x = d*(sc - 32) * (q - 4), q 3 bits, sc 6 bits.
 * Element j (h, g, l as in Q2_K): low 2 bits (qs[32h + l] >> 2g) & 3, high bit = bit (4h + g) of
 * hmask[l] (set means +4, i.e. no -4 offset). Scale s (0..15): low 4 bits in scales[s] (s < 8) or
 * scales[s-8] >> 4 (s >= 8), high 2 bits (scales[8 + s%4] >> 2*(s/4)) & 3. */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    g4_half d;
} block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

/* Q4_K: 8 sub-blocks of 32, x = d*sc * q - dmin*m, q 4 bits, sc and m 6 bits (see g4_scale_min_k4).
 * Element j: c = j/64, sub-block 2c + (j%64)/32, byte qs[32c + j%32], low nibble for the first 32
 * of each 64, high nibble for the second 32. */
typedef struct {
    g4_half d;
    g4_half dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

/* Q5_K: Q4_K plus a 5th bit: bit (2c + (j%64)/32) of qh[j%32] adds 16. */
typedef struct {
    g4_half d;
    g4_half dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

/* Q6_K: 16 sub-blocks of 16, x = d*sc * (q - 32), q 6 bits, sc int8.
 * Element j: h = j/128, g = (j%128)/32, l = j%32: low 4 bits from ql[64h + l + 32*(g&1)]
 * (low nibble for g < 2, high nibble for g >= 2), high 2 bits (qh[32h + l] >> 2g) & 3,
 * scale scales[8h + 2g + l/16]. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    g4_half d;
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

/* Q8_K (activations for the k-quants): x = d * q, plus bsums[i] = sum of qs[16i .. 16i+15]. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K from the 12 packed bytes:
 * j < 4: scale = q[j] & 63, min = q[j+4] & 63;
 * j >= 4: low 4 bits in q[j+4] (scale: low nibble, min: high nibble), high 2 bits are the top two
 * bits of q[j-4] (scale) and q[j] (min). */
static inline void g4_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ---- scalar reference kernels (n is a multiple of the block size; pointers as in types.h) ---- */

#define G4_DECL_TYPE(t)                                                                            \
    void g4_to_float_##t(const void *src, float *dst, int64_t n);                                 \
    void g4_from_float_##t(const float *src, void *dst, int64_t n);                               \
    float g4_dot_f32_##t(const void *w, const float *x, int64_t n);

G4_DECL_TYPE(f32)
G4_DECL_TYPE(f16)
G4_DECL_TYPE(bf16)
G4_DECL_TYPE(q4_0)
G4_DECL_TYPE(q4_1)
G4_DECL_TYPE(q5_0)
G4_DECL_TYPE(q5_1)
G4_DECL_TYPE(q8_0)
G4_DECL_TYPE(q2_K)
G4_DECL_TYPE(q3_K)
G4_DECL_TYPE(q4_K)
G4_DECL_TYPE(q5_K)
G4_DECL_TYPE(q6_K)
#undef G4_DECL_TYPE

/* activation-only types: no dot_f32 */
void g4_to_float_q8_1(const void *src, float *dst, int64_t n);
void g4_from_float_q8_1(const float *src, void *dst, int64_t n);
void g4_to_float_q8_K(const void *src, float *dst, int64_t n);
void g4_from_float_q8_K(const float *src, void *dst, int64_t n);

/* fast paths: weights times encoded activations */
float g4_dot_q_f32_f32(const void *w, const void *x, int64_t n);
float g4_dot_q_f16_f16(const void *w, const void *x, int64_t n);
float g4_dot_q_bf16_bf16(const void *w, const void *x, int64_t n);
float g4_dot_q_q4_0_q8_0(const void *w, const void *x, int64_t n);
float g4_dot_q_q5_0_q8_0(const void *w, const void *x, int64_t n);
float g4_dot_q_q8_0_q8_0(const void *w, const void *x, int64_t n);
float g4_dot_q_q4_1_q8_1(const void *w, const void *x, int64_t n);
float g4_dot_q_q5_1_q8_1(const void *w, const void *x, int64_t n);
float g4_dot_q_q2_K_q8_K(const void *w, const void *x, int64_t n);
float g4_dot_q_q3_K_q8_K(const void *w, const void *x, int64_t n);
float g4_dot_q_q4_K_q8_K(const void *w, const void *x, int64_t n);
float g4_dot_q_q5_K_q8_K(const void *w, const void *x, int64_t n);
float g4_dot_q_q6_K_q8_K(const void *w, const void *x, int64_t n);

/* Round to nearest, ties to even, for |x| < 2^22 (the float "magic number" trick, as ggml's
 * nearest_int); out-of-range and NaN inputs are clamped first, so the result is always defined. */
static inline int g4_nearest_int(float x) {
    if (!(x > -4194303.0f)) x = -4194303.0f; /* also catches NaN */
    if (x > 4194303.0f) x = 4194303.0f;
    float v = x + 12582912.0f; /* 1.5 * 2^23: the integer lands in the low mantissa bits */
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

#endif
