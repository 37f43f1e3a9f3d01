/* Interleaved ("repacked") weight layouts for the matrix products.
 *
 * GGUF stores a weight matrix row after row. A decode step multiplies every row with one activation
 * row, so a kernel working on one weight row at a time ends each row with a horizontal sum and keeps
 * only one row's worth of independent work in flight. Repacking puts G4_RP_ROWS (8) consecutive rows
 * side by side, block by block: lane r of a 256-bit register then always belongs to row r, the
 * activation bytes are broadcast to all lanes, and one pass yields 8 results with no horizontal sums.
 *
 * Layouts (one "block column" = block i of the 8 rows of a group, stored contiguously, groups one after
 * the other):
 *   Q4_0x8  144 bytes: d[8] (fp16 of rows 0..7), then for chunk c = 0..3, for row r = 0..7, the 4
 *           bytes qs[4c..4c+3] of row r (low nibbles: elements 4c..4c+3, high: 16+4c..16+4c+3).
 *   Q8_0x8  272 bytes: d[8], then for chunk c = 0..7, for row r = 0..7, qs[4c..4c+3] of row r.
 *   Q4_Kx8  1184 bytes per super-block column (+2.8%: the 6-bit scales are unpacked):
 *           d[8], dmin[8] (fp16); sc[8 sub-blocks][8 rows] (u8); m[4 pairs p][8 rows][2] (u8: the mins of
 *           sub-blocks 2p, 2p+1); qs[4 pairs p][8 chunks c][8 rows][4] = bytes qs[32p + 4c .. +3] of the row
 *           (low nibble: element 64p + 4c + k, sub-block 2p; high: 64p + 32 + 4c + k, sub-block 2p+1).
 *   Q6_Kx8  1680 bytes (the same as 8 rows): d[8]; sc[8 units u][8 rows][2] (int8: scales of sub-blocks
 *           2u, 2u+1); nibbles[8 units][4 chunks c][8 rows][4]: byte k = low 4 bits of element 32u + 4c + k
 *           | those of element 32u + 16 + 4c + k << 4; high bits[8 units][2 halves h][8 rows][4]: byte k
 *           holds the top 2 bits of elements 32u + 8h + k, 32u + 16 + 8h + k, 32u + 8h + 4 + k,
 *           32u + 20 + 8h + k in bit pairs 0-1, 2-3, 4-5, 6-7 (q is the 6-bit unsigned value, 0..63).
 *   F16x8 / F32x8  blocks of 8 values: [value k][row r] (128 / 256 bytes), activations plain f32.
 * The 32-value and float layouts take exactly as many bytes as the original rows.
 *
 * Activations for these kernels: block_q8p, the Q8_0 encoding of the row (bit-identical quants and
 * scale) with the scale as float and the sum of the 32 quants (the Q4_0 kernel multiplies unsigned
 * nibbles and subtracts 8 * sum once per block).
 *
 * Results: for each row r and activation row t,
 *     acc = 0; for each block i: acc = fmaf(d_w[r][i] * d_x[t][i], (float)sumi(r, t, i), acc)
 * with sumi the exact integer dot product of the block (Q6_K: sum over sub-blocks of sc * sum (q-32) a).
 * Q4_K: isum = sum over sub-blocks s of sc_s * (q . a)_s, msum = sum of m_s * (sum of a over s), both
 * exact; acc = fmaf(d * d_x, (float)isum, acc), then acc = fmaf(-(dmin * d_x), (float)msum, acc).
 * The activations of the k-quant layouts are Q8_K rows (bsums give the sums over sub-blocks).
 * F16 / F32: four partial sums per row, acc[k % 4] = fmaf(w[r][k], x[k], acc[k % 4]) over k in order,
 * result (acc0 + acc1) + (acc2 + acc3) (activations kept in f32: more exact than ggml's f16 rounding). The SIMD kernels compute exactly this (the
 * integer parts are exact and the float steps are the same correctly rounded operations), so they are
 * bit-identical to the scalar references here, and a token's result does not depend on how many
 * tokens were multiplied together (decode and prefill agree).
 */
#ifndef G4_QUANT_REPACK_H
#define G4_QUANT_REPACK_H

#include <stddef.h>
#include <stdint.h>

#define G4_RP_ROWS 8   /* rows per interleaved group */
#define G4_RP_MAXT 4   /* activation rows per gemm call */
#define G4_RP_MAXT16 8 /* activation rows per gemm16 call */
#define G4_RP_MIN16 3  /* gemm16 from this many rows on (fewer: the 8-row kernel streams faster; test_repack --bench) */

typedef struct {
    float d;       /* the Q8_0 scale (an fp16 value) as float */
    int32_t s;     /* sum of qs */
    int8_t qs[32];
} block_q8p;
_Static_assert(sizeof(block_q8p) == 40, "block_q8p size");

/* Multiply one packed group (8 rows of n values) with nt <= G4_RP_MAXT encoded activation rows
 * (act, as bytes apart): y[t * ldy + r] for r < 8, t < nt. */
typedef void (*g4_rp_gemm_fn)(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy,
                              int64_t n);
/* The same for two consecutive groups (16 rows; the second starts gb bytes after the first) and
 * nt <= G4_RP_MAXT16 activation rows: y[t * ldy + r] for r < 16. Optional (a kernel set whose registers
 * hold 16 lanes); results bit-identical to two gemm calls. */
typedef void (*g4_rp_gemm16_fn)(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y,
                                size_t ldy, int64_t n);
/* Interleave 8 rows (row_bytes apart, n values each) into one group. */
typedef void (*g4_rp_pack_fn)(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
/* Encode an activation row of n floats for the kernel (dst: act_bytes(n) bytes). */
typedef void (*g4_rp_act_fn)(const float *x, void *dst, int64_t n);

typedef struct g4_repack_traits {
    const char *name;  /* "Q4_0x8" */
    int type;          /* the GGUF weight type it repacks */
    int blck;          /* values per block */
    size_t col_bytes;  /* bytes per block column of 8 rows */
    size_t act_block;  /* bytes per activation block */
    g4_rp_pack_fn pack;
    g4_rp_act_fn act;
    g4_rp_gemm_fn gemm;
    g4_rp_gemm16_fn gemm16; /* or NULL */
} g4_repack_traits;

/* The repacked layout of a weight type for the kernel set in use (g4_types_init), or NULL when there
 * is none (types without one, or the scalar kernel set: then the row-by-row kernels are used). */
const g4_repack_traits *g4_repack_get(int type);
/* The layout with its scalar reference kernels, whatever the kernel set (tests). */
const g4_repack_traits *g4_repack_ref(int type);
/* bytes of an encoded activation row, and of one packed group of 8 rows of n values */
size_t g4_repack_act_bytes(const g4_repack_traits *rt, int64_t n);
size_t g4_repack_group_bytes(const g4_repack_traits *rt, int64_t n);

/* scalar references (also the fallback pieces of the SIMD tables) */
void g4_rp_pack_q4_0x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
void g4_rp_pack_q8_0x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
void g4_rp_pack_q4_Kx8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
void g4_rp_pack_q6_Kx8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
void g4_rp_pack_f16x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
void g4_rp_pack_f32x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n);
void g4_rp_act_f32(const float *x, void *dst, int64_t n);
void g4_rp_act_q8p(const float *x, void *dst, int64_t n);
void g4_rp_act_q8K(const float *x, void *dst, int64_t n);
void g4_rp_gemm_q4_0x8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_q8_0x8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_q4_Kx8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_q6_Kx8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_f16x8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_f32x8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);

/* installed by g4_types_init for the kernel set in use (gemm16 and act may be NULL: none, the reference's) */
void g4_repack_install(int type, g4_rp_gemm_fn gemm, g4_rp_gemm16_fn gemm16, g4_rp_act_fn act);

#endif
