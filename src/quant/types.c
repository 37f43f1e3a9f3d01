/* The weight-type table: names and block sizes of every GGML type id, traits (kernels) of the ones
 * g4 can compute with, and the float types F32 / F16 / BF16.
 *
 * Quantized kernels live in quant_legacy.c (Q4_0 .. Q8_1, 32-value blocks) and quant_k.c (the
 * 256-value k-quants). g4_types_init is the drop-in point for SIMD: it may overwrite the to_float /
 * dot_f32 / dot_q entries of `traits` with faster kernels that give the same results (to_float
 * bit-exact, dots within float rounding), keeping the g4_* scalar functions as the reference.
 */
#include "quant/blocks.h"
#include "quant/repack.h"
#include "quant/simd.h"
#include "quant/types.h"
#include "util/util.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and block sizes of every id ggml has defined -------------------------------------------
 * Names as gguf-py / GGUF tools print them. Sizes let the GGUF reader size tensors of types g4 cannot
 * compute with. Ids 4, 5, 31-33 and 36-38 were removed from ggml (blck 0: no tensor can use them);
 * they keep their historic names for error messages. */
typedef struct {
    const char *name;
    int blck;
    size_t type_size;
} type_info;

static const type_info infos[] = {
    [G4_TYPE_F32] = {"F32", 1, 4},
    [G4_TYPE_F16] = {"F16", 1, 2},
    [G4_TYPE_Q4_0] = {"Q4_0", QK4_0, sizeof(block_q4_0)},
    [G4_TYPE_Q4_1] = {"Q4_1", QK4_1, sizeof(block_q4_1)},
    [4] = {"Q4_2", 0, 0},
    [5] = {"Q4_3", 0, 0},
    [G4_TYPE_Q5_0] = {"Q5_0", QK5_0, sizeof(block_q5_0)},
    [G4_TYPE_Q5_1] = {"Q5_1", QK5_1, sizeof(block_q5_1)},
    [G4_TYPE_Q8_0] = {"Q8_0", QK8_0, sizeof(block_q8_0)},
    [G4_TYPE_Q8_1] = {"Q8_1", QK8_1, sizeof(block_q8_1)},
    [G4_TYPE_Q2_K] = {"Q2_K", QK_K, sizeof(block_q2_K)},
    [G4_TYPE_Q3_K] = {"Q3_K", QK_K, sizeof(block_q3_K)},
    [G4_TYPE_Q4_K] = {"Q4_K", QK_K, sizeof(block_q4_K)},
    [G4_TYPE_Q5_K] = {"Q5_K", QK_K, sizeof(block_q5_K)},
    [G4_TYPE_Q6_K] = {"Q6_K", QK_K, sizeof(block_q6_K)},
    [G4_TYPE_Q8_K] = {"Q8_K", QK_K, sizeof(block_q8_K)},
    [16] = {"IQ2_XXS", QK_K, 66},
    [17] = {"IQ2_XS", QK_K, 74},
    [18] = {"IQ3_XXS", QK_K, 98},
    [19] = {"IQ1_S", QK_K, 50},
    [20] = {"IQ4_NL", 32, 18},
    [21] = {"IQ3_S", QK_K, 110},
    [22] = {"IQ2_S", QK_K, 82},
    [23] = {"IQ4_XS", QK_K, 136},
    [G4_TYPE_I8] = {"I8", 1, 1},
    [G4_TYPE_I16] = {"I16", 1, 2},
    [G4_TYPE_I32] = {"I32", 1, 4},
    [G4_TYPE_I64] = {"I64", 1, 8},
    [G4_TYPE_F64] = {"F64", 1, 8},
    [29] = {"IQ1_M", QK_K, 56},
    [G4_TYPE_BF16] = {"BF16", 1, 2},
    [31] = {"Q4_0_4_4", 0, 0},
    [32] = {"Q4_0_4_8", 0, 0},
    [33] = {"Q4_0_8_8", 0, 0},
    [34] = {"TQ1_0", QK_K, 54},
    [35] = {"TQ2_0", QK_K, 66},
    [36] = {"IQ4_NL_4_4", 0, 0},
    [37] = {"IQ4_NL_4_8", 0, 0},
    [38] = {"IQ4_NL_8_8", 0, 0},
    [39] = {"MXFP4", 32, 17},
    [40] = {"NVFP4", 64, 36}, /* ids past G4_TYPE_COUNT: newer ggml */
    [41] = {"Q1_0", 128, 18},
};
#define N_INFOS ((int)(sizeof infos / sizeof infos[0]))

static const type_info *info_of(int type) {
    if (type < 0 || type >= N_INFOS || !infos[type].name) return NULL;
    return &infos[type];
}

const char *g4_type_name(int type) {
    const type_info *ti = info_of(type);
    return ti ? ti->name : NULL;
}

int g4_type_blck(int type) {
    const type_info *ti = info_of(type);
    return ti ? ti->blck : 0;
}

size_t g4_type_size(int type) {
    const type_info *ti = info_of(type);
    return ti ? ti->type_size : 0;
}

size_t g4_type_row_bytes(int type, int64_t n) {
    const type_info *ti = info_of(type);
    if (!ti || ti->blck <= 0 || n < 0 || n % ti->blck) return 0;
    uint64_t bytes;
    if (!g4_mul_ok((uint64_t)(n / ti->blck), ti->type_size, &bytes) || bytes > SIZE_MAX) return 0;
    return (size_t)bytes;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

int g4_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < N_INFOS; t++) {
        const char *a = infos[t].name, *b = name;
        if (!a) continue;
        while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return t;
    }
    return -1;
}

/* ---- float types --------------------------------------------------------------------------------
 * Dots accumulate 32 products in a float, then add that partial sum to the total: the same
 * summation shape as a 32-value block of the quantized types. */
#define CHUNK 32

void g4_to_float_f32(const void *src, float *dst, int64_t n) {
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
}
void g4_from_float_f32(const float *src, void *dst, int64_t n) {
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
}

void g4_to_float_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = g4_fp16_to_fp32(s[i]);
}
void g4_from_float_f16(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = g4_fp32_to_fp16(src[i]);
}

void g4_to_float_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = g4_bf16_to_fp32(s[i]);
}
void g4_from_float_bf16(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = g4_fp32_to_bf16(src[i]);
}

/* Dot of n float-type weights with n float-type activations: W(i) / X(i) load element i as float. */
#define FLOAT_DOT(fname, wtype, W, xparam, xtype, X)                                               \
    float fname(const void *w_, const xparam *x_, int64_t n) {                                      \
        const wtype *w = w_;                                                                        \
        const xtype *x = (const xtype *)x_;                                                         \
        float sum = 0.0f;                                                                           \
        for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {                                                 \
            int64_t i1 = n - i0 < CHUNK ? n : i0 + CHUNK;                                           \
            float part = 0.0f;                                                                      \
            for (int64_t i = i0; i < i1; i++) part += W(w[i]) * X(x[i]);                            \
            sum += part;                                                                            \
        }                                                                                           \
        return sum;                                                                                 \
    }
#define AS_F32(v) (v)

/* exact path: float32 activations */
FLOAT_DOT(g4_dot_f32_f32, float, AS_F32, float, float, AS_F32)
FLOAT_DOT(g4_dot_f32_f16, uint16_t, g4_fp16_to_fp32, float, float, AS_F32)
FLOAT_DOT(g4_dot_f32_bf16, uint16_t, g4_bf16_to_fp32, float, float, AS_F32)
/* fast path: activations in the weight's own encoding (as ggml's vec_dot_f16 / vec_dot_bf16) */
FLOAT_DOT(g4_dot_q_f32_f32, float, AS_F32, void, float, AS_F32)
FLOAT_DOT(g4_dot_q_f16_f16, uint16_t, g4_fp16_to_fp32, void, uint16_t, g4_fp16_to_fp32)
FLOAT_DOT(g4_dot_q_bf16_bf16, uint16_t, g4_bf16_to_fp32, void, uint16_t, g4_bf16_to_fp32)

/* ---- the traits table ------------------------------------------------------------------------------ */

#define TRAITS(id, nm, blk, tsz, q, to, from, dotf, vdt, dq)                                         \
    [id] = {.name = nm, .blck = blk, .type_size = tsz, .is_quantized = q, .to_float = to,            \
            .from_float = from, .dot_f32 = dotf, .vec_dot_type = vdt, .dot_q = dq}
#define QTRAITS(ID, t, blk, block_t, vdt, dq)                                                        \
    TRAITS(G4_TYPE_##ID, #ID, blk, sizeof(block_t), 1, g4_to_float_##t, g4_from_float_##t, g4_dot_f32_##t, \
           vdt, dq)

static g4_type_traits traits[G4_TYPE_COUNT] = {
    TRAITS(G4_TYPE_F32, "F32", 1, 4, 0, g4_to_float_f32, g4_from_float_f32, g4_dot_f32_f32, G4_TYPE_F32,
           g4_dot_q_f32_f32),
    TRAITS(G4_TYPE_F16, "F16", 1, 2, 0, g4_to_float_f16, g4_from_float_f16, g4_dot_f32_f16, G4_TYPE_F16,
           g4_dot_q_f16_f16),
    TRAITS(G4_TYPE_BF16, "BF16", 1, 2, 0, g4_to_float_bf16, g4_from_float_bf16, g4_dot_f32_bf16, G4_TYPE_BF16,
           g4_dot_q_bf16_bf16),
    QTRAITS(Q4_0, q4_0, QK4_0, block_q4_0, G4_TYPE_Q8_0, g4_dot_q_q4_0_q8_0),
    QTRAITS(Q4_1, q4_1, QK4_1, block_q4_1, G4_TYPE_Q8_1, g4_dot_q_q4_1_q8_1),
    QTRAITS(Q5_0, q5_0, QK5_0, block_q5_0, G4_TYPE_Q8_0, g4_dot_q_q5_0_q8_0),
    QTRAITS(Q5_1, q5_1, QK5_1, block_q5_1, G4_TYPE_Q8_1, g4_dot_q_q5_1_q8_1),
    QTRAITS(Q8_0, q8_0, QK8_0, block_q8_0, G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0),
    QTRAITS(Q2_K, q2_K, QK_K, block_q2_K, G4_TYPE_Q8_K, g4_dot_q_q2_K_q8_K),
    QTRAITS(Q3_K, q3_K, QK_K, block_q3_K, G4_TYPE_Q8_K, g4_dot_q_q3_K_q8_K),
    QTRAITS(Q4_K, q4_K, QK_K, block_q4_K, G4_TYPE_Q8_K, g4_dot_q_q4_K_q8_K),
    QTRAITS(Q5_K, q5_K, QK_K, block_q5_K, G4_TYPE_Q8_K, g4_dot_q_q5_K_q8_K),
    QTRAITS(Q6_K, q6_K, QK_K, block_q6_K, G4_TYPE_Q8_K, g4_dot_q_q6_K_q8_K),
    /* activation encodings: readable, but not weights (no dots) */
    TRAITS(G4_TYPE_Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), 1, g4_to_float_q8_1, g4_from_float_q8_1, NULL, -1,
           NULL),
    TRAITS(G4_TYPE_Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), 1, g4_to_float_q8_K, g4_from_float_q8_K, NULL, -1,
           NULL),
};

const g4_type_traits *g4_type_traits_get(int type) {
    if (type < 0 || type >= G4_TYPE_COUNT || !traits[type].name) return NULL;
    return &traits[type];
}

/* ---- ISA selection: scalar references, or the kernels of simd_<isa>.c when the CPU has them ---- */

static const char *isa_name = "scalar";

#if defined(G4_HAVE_AVX2_KERNELS)
static void install_avx2(void) {
    traits[G4_TYPE_Q8_0].dot_q = g4_dot_q_q8_0_q8_0_avx2;
    traits[G4_TYPE_Q4_0].dot_q = g4_dot_q_q4_0_q8_0_avx2;
    traits[G4_TYPE_Q5_0].dot_q = g4_dot_q_q5_0_q8_0_avx2;
    traits[G4_TYPE_Q4_1].dot_q = g4_dot_q_q4_1_q8_1_avx2;
    traits[G4_TYPE_Q5_1].dot_q = g4_dot_q_q5_1_q8_1_avx2;
    traits[G4_TYPE_Q4_K].dot_q = g4_dot_q_q4_K_q8_K_avx2;
    traits[G4_TYPE_Q5_K].dot_q = g4_dot_q_q5_K_q8_K_avx2;
    traits[G4_TYPE_Q6_K].dot_q = g4_dot_q_q6_K_q8_K_avx2;
    traits[G4_TYPE_F16].dot_q = g4_dot_q_f16_f16_avx2;
    traits[G4_TYPE_BF16].dot_q = g4_dot_q_bf16_bf16_avx2;
    traits[G4_TYPE_F32].dot_q = g4_dot_q_f32_f32_avx2;
    /* several activation rows per weight row (prefill), bit-identical to the dot_q above */
    traits[G4_TYPE_Q8_0].dot_q_multi = g4_dot_q_multi_q8_0_q8_0_avx2;
    traits[G4_TYPE_Q4_0].dot_q_multi = g4_dot_q_multi_q4_0_q8_0_avx2;
    traits[G4_TYPE_Q4_K].dot_q_multi = g4_dot_q_multi_q4_K_q8_K_avx2;
    traits[G4_TYPE_Q6_K].dot_q_multi = g4_dot_q_multi_q6_K_q8_K_avx2;
    /* exact path: bit-exact F16 dequantization (the KV cache), dots within float rounding */
    traits[G4_TYPE_F16].to_float = g4_to_float_f16_avx2;
    traits[G4_TYPE_F32].dot_f32 = g4_dot_f32_f32_avx2;
    traits[G4_TYPE_F16].dot_f32 = g4_dot_f32_f16_avx2;
    traits[G4_TYPE_Q8_0].dot_f32 = g4_dot_f32_q8_0_avx2;
    traits[G4_TYPE_Q4_0].dot_f32 = g4_dot_f32_q4_0_avx2;
    /* bit-identical activation quantizers */
    traits[G4_TYPE_Q8_0].from_float = g4_from_float_q8_0_avx2;
    traits[G4_TYPE_Q8_1].from_float = g4_from_float_q8_1_avx2;
    traits[G4_TYPE_Q8_K].from_float = g4_from_float_q8_K_avx2;
    /* 8-row interleaved weights (repack.h) */
    g4_repack_install(G4_TYPE_Q4_0, g4_rp_gemm_q4_0x8_avx2, NULL, NULL);
    g4_repack_install(G4_TYPE_Q8_0, g4_rp_gemm_q8_0x8_avx2, NULL, NULL);
    g4_repack_install(G4_TYPE_Q4_K, g4_rp_gemm_q4_Kx8_avx2, NULL, NULL);
    g4_repack_install(G4_TYPE_Q6_K, g4_rp_gemm_q6_Kx8_avx2, NULL, NULL);
    g4_repack_install(G4_TYPE_F16, g4_rp_gemm_f16x8_avx2, NULL, NULL);
    g4_repack_install(G4_TYPE_F32, g4_rp_gemm_f32x8_avx2, NULL, NULL);
    isa_name = "avx2";
}
#endif

#if defined(G4_HAVE_AVX512_KERNELS)
/* AVX-512 F/BW/VL + VNNI (simd_avx512.c), installed over the AVX2 set: what it has no kernel for keeps
 * the AVX2 one; BF16 uses vdpbf16ps when the CPU has AVX512_BF16. */
static void install_avx512(void) {
    traits[G4_TYPE_Q8_0].dot_q = g4_dot_q_q8_0_q8_0_avx512;
    traits[G4_TYPE_Q4_0].dot_q = g4_dot_q_q4_0_q8_0_avx512;
    traits[G4_TYPE_Q4_K].dot_q = g4_dot_q_q4_K_q8_K_avx512;
    traits[G4_TYPE_Q5_K].dot_q = g4_dot_q_q5_K_q8_K_avx512;
    traits[G4_TYPE_Q6_K].dot_q = g4_dot_q_q6_K_q8_K_avx512;
    traits[G4_TYPE_F16].dot_q = g4_dot_q_f16_f16_avx512;
    traits[G4_TYPE_BF16].dot_q = g4_cpu_has_avx512bf16() ? g4_dot_q_bf16_bf16_avx512bf16 : g4_dot_q_bf16_bf16_avx512;
    traits[G4_TYPE_F32].dot_q = g4_dot_q_f32_f32_avx512;
    traits[G4_TYPE_Q8_0].dot_q_multi = g4_dot_q_multi_q8_0_q8_0_avx512;
    traits[G4_TYPE_Q4_0].dot_q_multi = g4_dot_q_multi_q4_0_q8_0_avx512;
    traits[G4_TYPE_Q4_K].dot_q_multi = g4_dot_q_multi_q4_K_q8_K_avx512;
    traits[G4_TYPE_Q6_K].dot_q_multi = g4_dot_q_multi_q6_K_q8_K_avx512;
    traits[G4_TYPE_Q8_0].from_float = g4_from_float_q8_0_avx512;
    traits[G4_TYPE_Q8_1].from_float = g4_from_float_q8_1_avx512;
    traits[G4_TYPE_Q8_K].from_float = g4_from_float_q8_K_avx512;
    /* 8-row interleaved weights (repack.h); F16x8 / F32x8 keep the AVX2 kernels */
    g4_repack_install(G4_TYPE_Q4_0, g4_rp_gemm_q4_0x8_avx512, g4_rp_gemm16_q4_0x8_avx512, NULL);
    g4_repack_install(G4_TYPE_Q8_0, g4_rp_gemm_q8_0x8_avx512, g4_rp_gemm16_q8_0x8_avx512, NULL);
    g4_repack_install(G4_TYPE_Q4_K, g4_rp_gemm_q4_Kx8_avx512, g4_rp_gemm16_q4_Kx8_avx512, NULL);
    g4_repack_install(G4_TYPE_Q6_K, g4_rp_gemm_q6_Kx8_avx512, g4_rp_gemm16_q6_Kx8_avx512, NULL);
    isa_name = "avx512";
}
#endif

#if defined(G4_HAVE_NEON_KERNELS)
/* arm64: NEON is in every CPU. The integer dots use SDOT when the CPU has the dot-product extension,
 * unless G4_ISA=neon asks for the ARMv8.0 baseline (both builds give the same results). */
#define NEON_INT_KERNELS(S)                                                                        \
    traits[G4_TYPE_Q8_0].dot_q = g4_dot_q_q8_0_q8_0_##S;                                           \
    traits[G4_TYPE_Q4_0].dot_q = g4_dot_q_q4_0_q8_0_##S;                                           \
    traits[G4_TYPE_Q5_0].dot_q = g4_dot_q_q5_0_q8_0_##S;                                           \
    traits[G4_TYPE_Q4_1].dot_q = g4_dot_q_q4_1_q8_1_##S;                                           \
    traits[G4_TYPE_Q5_1].dot_q = g4_dot_q_q5_1_q8_1_##S;                                           \
    traits[G4_TYPE_Q4_K].dot_q = g4_dot_q_q4_K_q8_K_##S;                                           \
    traits[G4_TYPE_Q5_K].dot_q = g4_dot_q_q5_K_q8_K_##S;                                           \
    traits[G4_TYPE_Q6_K].dot_q = g4_dot_q_q6_K_q8_K_##S;                                           \
    traits[G4_TYPE_Q8_0].dot_q_multi = g4_dot_q_multi_q8_0_q8_0_##S;                               \
    traits[G4_TYPE_Q4_0].dot_q_multi = g4_dot_q_multi_q4_0_q8_0_##S;                               \
    traits[G4_TYPE_Q4_K].dot_q_multi = g4_dot_q_multi_q4_K_q8_K_##S;                               \
    traits[G4_TYPE_Q6_K].dot_q_multi = g4_dot_q_multi_q6_K_q8_K_##S;
static void install_neon(const char *want) {
    const int dp = g4_cpu_has_neon_dotprod();
    if (want && !strcmp(want, "neon-dotprod") && !dp)
        fprintf(stderr, "g4: G4_ISA=neon-dotprod but this CPU lacks the dot-product extension; using neon\n");
    if (dp && !(want && !strcmp(want, "neon"))) {
        NEON_INT_KERNELS(neon_dotprod)
        isa_name = "neon-dotprod";
    } else {
        NEON_INT_KERNELS(neon)
        isa_name = "neon";
    }
    traits[G4_TYPE_F16].dot_q = g4_dot_q_f16_f16_neon;
    traits[G4_TYPE_BF16].dot_q = g4_dot_q_bf16_bf16_neon;
    traits[G4_TYPE_F32].dot_q = g4_dot_q_f32_f32_neon;
    traits[G4_TYPE_F16].to_float = g4_to_float_f16_neon;
    traits[G4_TYPE_F32].dot_f32 = g4_dot_f32_f32_neon;
    traits[G4_TYPE_F16].dot_f32 = g4_dot_f32_f16_neon;
    traits[G4_TYPE_Q8_0].dot_f32 = g4_dot_f32_q8_0_neon;
    traits[G4_TYPE_Q4_0].dot_f32 = g4_dot_f32_q4_0_neon;
    traits[G4_TYPE_Q8_0].from_float = g4_from_float_q8_0_neon;
    traits[G4_TYPE_Q8_1].from_float = g4_from_float_q8_1_neon;
    traits[G4_TYPE_Q8_K].from_float = g4_from_float_q8_K_neon;
}
#undef NEON_INT_KERNELS
#endif

static void types_init_once(void) {
    /* G4_ISA=scalar|avx2|avx512|neon|neon-dotprod forces a path; one the CPU lacks (or an unknown name) falls
     * back to the best available, with a note on stderr. */
    const char *want = getenv("G4_ISA");
    if (want && !*want) want = NULL;
    if (want && !strcmp(want, "scalar")) return;
    int have_avx2 = 0, have_avx512 = 0;
#if defined(G4_HAVE_AVX2_KERNELS)
    have_avx2 = g4_cpu_has_avx2();
#endif
#if defined(G4_HAVE_AVX512_KERNELS)
    have_avx512 = g4_cpu_has_avx512();
#endif
    if (want && strcmp(want, "avx2") && strcmp(want, "avx512") && strcmp(want, "auto") && strcmp(want, "neon") && strcmp(want, "neon-dotprod"))
        fprintf(stderr, "g4: G4_ISA=%s is not a known kernel set (scalar, avx2, avx512, neon, neon-dotprod); using the best available\n", want);
    else if (want && !strcmp(want, "avx2") && !have_avx2)
        fprintf(stderr, "g4: G4_ISA=avx2 but this CPU lacks AVX2/FMA/F16C; using the best available\n");
    else if (want && !strcmp(want, "avx512") && !have_avx512)
        fprintf(stderr, "g4: G4_ISA=avx512 but this CPU lacks AVX-512 F/BW/VL/VNNI; using the best available\n");
#if defined(G4_HAVE_AVX2_KERNELS)
    if (have_avx2) install_avx2();
#endif
#if defined(G4_HAVE_AVX512_KERNELS)
    if (have_avx512 && !(want && !strcmp(want, "avx2"))) install_avx512(); /* G4_ISA=avx2: AVX2 only */
#endif
#if defined(G4_HAVE_NEON_KERNELS)
    install_neon(want);
#else
    if (want && !strncmp(want, "neon", 4))
        fprintf(stderr, "g4: G4_ISA=%s but NEON kernels exist only in arm64 builds; using the best available\n", want);
#endif
}

void g4_types_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, types_init_once);
}

void g4_dot_q_multi(const g4_type_traits *tr, const void *w, const void *xq, size_t xs, int nx, float *out, int64_t n) {
    if (tr->dot_q_multi) {
        tr->dot_q_multi(w, xq, xs, nx, out, n);
        return;
    }
    for (int j = 0; j < nx; j++) out[j] = tr->dot_q(w, (const uint8_t *)xq + (size_t)j * xs, n);
}

const char *g4_types_isa(void) {
    g4_types_init();
    return isa_name;
}
