/* SIMD kernels per ISA, internal to the library (the traits table in types.c installs them; the tests
 * call them directly to compare with the scalar references in blocks.h).
 *
 * Every kernel here has a scalar reference of the same name without the ISA suffix (blocks.h) and
 * keeps its contract:
 *   dot_q of the k-quants (Q4_K, Q5_K, Q6_K): bit-identical to the scalar reference (the integer sum of
 *     each super-block is exact and its float combination is done in the same order);
 *   dot_q of the 32-value types and the float types: the integer (or exact float) products of each
 *     block are the same; only the order of the float accumulation differs (per-lane partial sums),
 *     so the result is within a few ulps times the sum of the |block terms| of the reference;
 *   from_float of the activation types Q8_0, Q8_1, Q8_K: bit-identical for finite inputs.
 * Functions are compiled with per-function target attributes, so these files build with the normal
 * generic flags; callers must check the CPU first (g4_cpu_has_avx2, g4_cpu_has_neon_dotprod).
 */
#ifndef G4_QUANT_SIMD_H
#define G4_QUANT_SIMD_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#define G4_HAVE_AVX2_KERNELS 1

/* 1 if the CPU and the OS support AVX2, FMA and F16C (YMM state enabled in XCR0). */
int g4_cpu_has_avx2(void);

float g4_dot_q_q8_0_q8_0_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q4_0_q8_0_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q5_0_q8_0_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q4_1_q8_1_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q5_1_q8_1_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q4_K_q8_K_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q5_K_q8_K_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_q6_K_q8_K_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_f16_f16_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_bf16_bf16_avx2(const void *w, const void *x, int64_t n);
float g4_dot_q_f32_f32_avx2(const void *w, const void *x, int64_t n);

/* dot_q_multi (types.h): bit-identical to the dot_q_avx2 kernel of the same type, row by row */
void g4_dot_q_multi_q8_0_q8_0_avx2(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);
void g4_dot_q_multi_q4_0_q8_0_avx2(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);
void g4_dot_q_multi_q4_K_q8_K_avx2(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);
void g4_dot_q_multi_q6_K_q8_K_avx2(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);

/* exact path and dequantization: to_float bit-exact, dot_f32 within float rounding of the reference */
void g4_to_float_f16_avx2(const void *src, float *dst, int64_t n);
float g4_dot_f32_f32_avx2(const void *w, const float *x, int64_t n);
float g4_dot_f32_f16_avx2(const void *w, const float *x, int64_t n);
float g4_dot_f32_q8_0_avx2(const void *w, const float *x, int64_t n);
float g4_dot_f32_q4_0_avx2(const void *w, const float *x, int64_t n);

void g4_from_float_q8_0_avx2(const float *src, void *dst, int64_t n);
void g4_from_float_q8_1_avx2(const float *src, void *dst, int64_t n);
void g4_from_float_q8_K_avx2(const float *src, void *dst, int64_t n);

/* repacked layouts (repack.h): bit-identical to the scalar references g4_rp_gemm_* */
void g4_rp_gemm_q4_0x8_avx2(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_q8_0x8_avx2(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_q4_Kx8_avx2(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_q6_Kx8_avx2(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_f16x8_avx2(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
void g4_rp_gemm_f32x8_avx2(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
#endif

#if defined(__x86_64__)
/* AVX-512 (simd_avx512.c): F, BW, VL and VNNI, installed over the AVX2 set (types without an AVX-512
 * kernel keep the AVX2 one); the BF16 dot with vdpbf16ps needs AVX512_BF16 as well. */
#define G4_HAVE_AVX512_KERNELS 1

/* 1 if the CPU and the OS support AVX-512 F/BW/VL + VNNI (opmask and ZMM state enabled in XCR0) as
 * well as AVX2/FMA/F16C; the second one also AVX512_BF16. */
int g4_cpu_has_avx512(void);
int g4_cpu_has_avx512bf16(void);

/* S: the suffix after _avx512 / _avx512bf16 (empty for the real kernels) */
#define G4_DECL_AVX512(S)                                                                                       \
    float g4_dot_q_q8_0_q8_0_avx512##S(const void *w, const void *x, int64_t n);                                \
    float g4_dot_q_q4_0_q8_0_avx512##S(const void *w, const void *x, int64_t n);                                \
    float g4_dot_q_q4_K_q8_K_avx512##S(const void *w, const void *x, int64_t n);                                \
    float g4_dot_q_q5_K_q8_K_avx512##S(const void *w, const void *x, int64_t n);                                \
    float g4_dot_q_q6_K_q8_K_avx512##S(const void *w, const void *x, int64_t n);                                \
    float g4_dot_q_f16_f16_avx512##S(const void *w, const void *x, int64_t n);                                  \
    float g4_dot_q_bf16_bf16_avx512##S(const void *w, const void *x, int64_t n);                                \
    float g4_dot_q_bf16_bf16_avx512bf16##S(const void *w, const void *x, int64_t n);                            \
    float g4_dot_q_f32_f32_avx512##S(const void *w, const void *x, int64_t n);                                  \
    /* dot_q_multi (types.h): bit-identical to the dot_q kernel of the same type and build, row by row */      \
    void g4_dot_q_multi_q8_0_q8_0_avx512##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n); \
    void g4_dot_q_multi_q4_0_q8_0_avx512##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n); \
    void g4_dot_q_multi_q4_K_q8_K_avx512##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n); \
    void g4_dot_q_multi_q6_K_q8_K_avx512##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n); \
    void g4_from_float_q8_0_avx512##S(const float *src, void *dst, int64_t n);                                  \
    void g4_from_float_q8_1_avx512##S(const float *src, void *dst, int64_t n);                                  \
    void g4_from_float_q8_K_avx512##S(const float *src, void *dst, int64_t n);                                  \
    /* repacked layouts (repack.h): bit-identical to the scalar references g4_rp_gemm_* (F16x8 / F32x8: AVX2) */ \
    void g4_rp_gemm_q4_0x8_avx512##S(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm_q8_0x8_avx512##S(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm_q4_Kx8_avx512##S(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm_q6_Kx8_avx512##S(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm16_q4_0x8_avx512##S(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm16_q8_0x8_avx512##S(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm16_q4_Kx8_avx512##S(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n); \
    void g4_rp_gemm16_q6_Kx8_avx512##S(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n);
G4_DECL_AVX512()

/* Tests only: the same kernels compiled against SIMDe (header-only portable intrinsics, libsimde-dev)
 * with -DG4_SIMDE, suffix _emu, run on any x86-64 CPU (tests/test_simd and tests/test_repack link them). */
#if defined(__has_include)
#if __has_include(<simde/x86/avx512.h>)
#define G4_HAVE_SIMDE 1
G4_DECL_AVX512(_emu)
#endif
#endif
#undef G4_DECL_AVX512
#endif

#if defined(__aarch64__)
#define G4_HAVE_NEON_KERNELS 1

/* NEON (Advanced SIMD) is in every arm64 CPU. The integer dots come in two builds with identical
 * results: _neon (ARMv8.0) and _neon_dotprod (SDOT), usable when this returns 1 (AT_HWCAP ASIMDDP). */
int g4_cpu_has_neon_dotprod(void);

#define G4_DECL_NEON_INT(S)                                                                                      \
    float g4_dot_q_q8_0_q8_0_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q4_0_q8_0_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q5_0_q8_0_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q4_1_q8_1_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q5_1_q8_1_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q4_K_q8_K_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q5_K_q8_K_##S(const void *w, const void *x, int64_t n);                                       \
    float g4_dot_q_q6_K_q8_K_##S(const void *w, const void *x, int64_t n);                                       \
    /* dot_q_multi (types.h): bit-identical to the dot_q kernel of the same type and build, row by row */       \
    void g4_dot_q_multi_q8_0_q8_0_##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);  \
    void g4_dot_q_multi_q4_0_q8_0_##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);  \
    void g4_dot_q_multi_q4_K_q8_K_##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);  \
    void g4_dot_q_multi_q6_K_q8_K_##S(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n);
G4_DECL_NEON_INT(neon)
G4_DECL_NEON_INT(neon_dotprod)
#undef G4_DECL_NEON_INT

float g4_dot_q_f16_f16_neon(const void *w, const void *x, int64_t n);
float g4_dot_q_bf16_bf16_neon(const void *w, const void *x, int64_t n);
float g4_dot_q_f32_f32_neon(const void *w, const void *x, int64_t n);

/* exact path and dequantization: to_float bit-exact, dot_f32 within float rounding of the reference */
void g4_to_float_f16_neon(const void *src, float *dst, int64_t n);
float g4_dot_f32_f32_neon(const void *w, const float *x, int64_t n);
float g4_dot_f32_f16_neon(const void *w, const float *x, int64_t n);
float g4_dot_f32_q8_0_neon(const void *w, const float *x, int64_t n);
float g4_dot_f32_q4_0_neon(const void *w, const float *x, int64_t n);

void g4_from_float_q8_0_neon(const float *src, void *dst, int64_t n);
void g4_from_float_q8_1_neon(const float *src, void *dst, int64_t n);
void g4_from_float_q8_K_neon(const float *src, void *dst, int64_t n);
#endif

#endif
