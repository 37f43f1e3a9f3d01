/* NEON kernels (arm64). Advanced SIMD is part of the ARMv8-A baseline, so these need no CPU check; the
 * integer dots are built twice (simd_neon_int.h): for the baseline (widening multiplies, "neon") and for
 * the dot-product extension (SDOT, optional from ARMv8.2, "neon-dotprod"), which g4_types_init picks
 * when g4_cpu_has_neon_dotprod() says so. Both builds compute the same exact integer sums and share the
 * float code, so they give the same results bit for bit. The dot-product functions carry their own
 * target attribute, so the file builds with the generic flags.
 * Contracts and the scalar references: see simd.h. blocks.h turns floating-point contraction off for
 * this file too, so the scalar float epilogues below round exactly like the references. */
#include "quant/simd.h"

#if defined(__aarch64__)

#include "quant/blocks.h"
#include "util/util.h"

#include <arm_neon.h>
#include <string.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif

/* The dot-product functions: nothing to add when the whole build already targets it; clang < 16
 * declares vdotq_s32 only then, so it gets SDOT as inline assembly (see sdot below). */
#if defined(__ARM_FEATURE_DOTPROD)
#define DOTPROD
#elif defined(__clang__)
#define DOTPROD __attribute__((target("dotprod")))
#else
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#define ALWAYS_INLINE __attribute__((always_inline))
/* gcc -O2 does not unroll the short fixed loops over accumulators: force it, so they stay in registers */
#define UNROLL _Pragma("GCC unroll 8")

int g4_cpu_has_neon_dotprod(void) {
#if defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__ARM_FEATURE_DOTPROD)
    return 1;
#else
    return 0;
#endif
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* fp16 -> float in hardware (exact for every non-NaN half) */
static inline float h2f(g4_half h) {
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

static inline float32x4_t h2f4(g4_half a, g4_half b, g4_half c, g4_half d) {
    const uint16_t h[4] = {a, b, c, d};
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

/* the 4 totals of 4 vectors of partial sums */
static inline int32x4_t hadd4_s32(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

static inline int8x16_t lo_nibbles(uint8x16_t q) { return vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))); }
static inline int8x16_t hi_nibbles(uint8x16_t q) { return vreinterpretq_s8_u8(vshrq_n_u8(q, 4)); }

/* byte j of (m0, m1) = 0xFF if bit j of x is set, else 0 */
static inline void bits32(uint32_t x, uint8x16_t *m0, uint8x16_t *m1) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t b = vld1q_u8(bit);
    *m0 = vtstq_u8(vcombine_u8(vdup_n_u8((uint8_t)x), vdup_n_u8((uint8_t)(x >> 8))), b);
    *m1 = vtstq_u8(vcombine_u8(vdup_n_u8((uint8_t)(x >> 16)), vdup_n_u8((uint8_t)(x >> 24))), b);
}

/* ---- the 32 weights of a block as int8 (elements 0..15, 16..31) --------------------------------- */

static inline void wload_q8_0(const block_q8_0 *b, int8x16_t *a0, int8x16_t *a1) {
    *a0 = vld1q_s8(b->qs);
    *a1 = vld1q_s8(b->qs + 16);
}

static inline void wload_q4_0(const block_q4_0 *b, int8x16_t *a0, int8x16_t *a1) {
    const uint8x16_t q = vld1q_u8(b->qs);
    *a0 = vsubq_s8(lo_nibbles(q), vdupq_n_s8(8));
    *a1 = vsubq_s8(hi_nibbles(q), vdupq_n_s8(8));
}

/* q - 16: the nibble where bit 4 is set, else nibble - 16 (= nibble | 0xF0 as int8) */
static inline void wload_q5_0(const block_q5_0 *b, int8x16_t *a0, int8x16_t *a1) {
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    uint8x16_t m0, m1;
    bits32(qh, &m0, &m1);
    const uint8x16_t q = vld1q_u8(b->qs), f0 = vdupq_n_u8(0xF0);
    *a0 = vorrq_s8(lo_nibbles(q), vreinterpretq_s8_u8(vbicq_u8(f0, m0)));
    *a1 = vorrq_s8(hi_nibbles(q), vreinterpretq_s8_u8(vbicq_u8(f0, m1)));
}

static inline void wload_q4_1(const block_q4_1 *b, int8x16_t *a0, int8x16_t *a1) {
    const uint8x16_t q = vld1q_u8(b->qs);
    *a0 = lo_nibbles(q);
    *a1 = hi_nibbles(q);
}

static inline void wload_q5_1(const block_q5_1 *b, int8x16_t *a0, int8x16_t *a1) {
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    uint8x16_t m0, m1;
    bits32(qh, &m0, &m1);
    const uint8x16_t q = vld1q_u8(b->qs), h = vdupq_n_u8(0x10);
    *a0 = vorrq_s8(lo_nibbles(q), vreinterpretq_s8_u8(vandq_u8(m0, h)));
    *a1 = vorrq_s8(hi_nibbles(q), vreinterpretq_s8_u8(vandq_u8(m1, h)));
}

/* The 8 six-bit scales (sm[0..7]) and mins (sm[8..15]) of a Q4_K / Q5_K super-block: g4_scale_min_k4
 * for j = 0..7, four bytes at a time. q[0..3] hold scales 0..3 (low 6 bits) and the top bits of scales
 * 4..7; q[4..7] mins 0..3 and the top bits of mins 4..7; q[8..11] the low nibbles of scales 4..7 (low)
 * and mins 4..7 (high). */
static inline void scales_mins_k4(const uint8_t *q, uint8_t *sm) {
    uint32_t u[3], r[4];
    memcpy(u, q, 12);
    r[0] = u[0] & 0x3f3f3f3fu;
    r[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4;
    r[2] = u[1] & 0x3f3f3f3fu;
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;
    memcpy(sm, r, 16);
}

/* sum over the 8 sub-blocks of m[s] * (bsums[2s] + bsums[2s+1]), m = sm[8..15] */
static inline int mins_dot_bsums(const uint8_t *sm, const int16_t *bsums) {
    const int16x8_t pair = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8)); /* |.| <= 2*16*128 */
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
    const int32x4_t s = vmlal_high_s16(vmull_s16(vget_low_s16(pair), vget_low_s16(m)), pair, m);
    return vaddvq_s32(s);
}

/* ---- integer products: the ARMv8.0 baseline (widening multiplies) ------------------------------ */

/* 32 products of any int8 operands -> 4 int32 partial sums (each int16 product fits, |p| <= 2^14) */
static inline int32x4_t dot32_any_base(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
    s = vpadalq_s16(s, vmull_high_s8(a0, b0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
    return vpadalq_s16(s, vmull_high_s8(a1, b1));
}

/* |a| <= 32: four products per int16 lane stay below 2^15 (4 * 32 * 128 = 16384) */
static inline int16x8_t dot32_i16(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    int16x8_t p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    p = vmlal_high_s8(p, a0, b0);
    p = vmlal_s8(p, vget_low_s8(a1), vget_low_s8(b1));
    return vmlal_high_s8(p, a1, b1);
}

static inline int32x4_t dot32_small_base(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    return vpaddlq_s16(dot32_i16(a0, a1, b0, b1));
}

/* acc + sc * (partial sums of 32 products), |a| <= 32, |sc| <= 127 */
static inline int32x4_t mla32_base(int32x4_t acc, int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1, int sc) {
    const int16x8_t p = dot32_i16(a0, a1, b0, b1);
    return vmlal_high_n_s16(vmlal_n_s16(acc, vget_low_s16(p), (int16_t)sc), p, (int16_t)sc);
}

/* acc + sc * (partial sums of 16 products), |a| <= 32 */
static inline int32x4_t mla16_base(int32x4_t acc, int8x16_t a, int8x16_t b, int sc) {
    const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
    return vmlal_high_n_s16(vmlal_n_s16(acc, vget_low_s16(p), (int16_t)sc), p, (int16_t)sc);
}

/* ---- integer products: the dot-product extension ----------------------------------------------- */

DOTPROD static inline int32x4_t sdot(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__clang__) && __clang_major__ < 16 && !defined(__ARM_FEATURE_DOTPROD)
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
#else
    return vdotq_s32(acc, a, b);
#endif
}

DOTPROD static inline int32x4_t dot32_dp(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
    return sdot(sdot(vdupq_n_s32(0), a0, b0), a1, b1);
}

DOTPROD static inline int32x4_t mla32_dp(int32x4_t acc, int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1, int sc) {
    return vmlaq_n_s32(acc, dot32_dp(a0, a1, b0, b1), sc);
}

DOTPROD static inline int32x4_t mla16_dp(int32x4_t acc, int8x16_t a, int8x16_t b, int sc) {
    return vmlaq_n_s32(acc, sdot(vdupq_n_s32(0), a, b), sc);
}

/* ---- the integer-dot kernels, twice ---------------------------------------------------------------- */

#define NEON_CAT2(a, b) a##_##b
#define NEON_CAT(a, b) NEON_CAT2(a, b)
#define NEON_FN(name) NEON_CAT(name, NEON_SFX)

#define NEON_SFX neon
#define KATTR
#define DOT32_ANY dot32_any_base
#define DOT32_SMALL dot32_small_base
#define MLA32 mla32_base
#define MLA16 mla16_base
#include "quant/simd_neon_int.h"
#undef NEON_SFX
#undef KATTR
#undef DOT32_ANY
#undef DOT32_SMALL
#undef MLA32
#undef MLA16

#define NEON_SFX neon_dotprod
#define KATTR DOTPROD
#define DOT32_ANY dot32_dp
#define DOT32_SMALL dot32_dp
#define MLA32 mla32_dp
#define MLA16 mla16_dp
#include "quant/simd_neon_int.h"
#undef NEON_SFX
#undef KATTR
#undef DOT32_ANY
#undef DOT32_SMALL
#undef MLA32
#undef MLA16

/* ---- float types --------------------------------------------------------------------------------- */

/* 32 values per step in 8 accumulators of 4 lanes; LOADW / LOADX(p, i) give the 4 floats at element
 * i, WS / XS one (the tail) */
#define FLOAT_DOT_NEON(qual, fname, wtype, xtype, LOADW, LOADX, WS, XS)                              \
    qual float fname(const void *w_, const void *x_, int64_t n) {                                         \
        const wtype *w = w_;                                                                         \
        const xtype *x = x_;                                                                         \
        float32x4_t acc[8];                                                                          \
        UNROLL for (int k = 0; k < 8; k++) acc[k] = vdupq_n_f32(0.0f);                               \
        int64_t i = 0;                                                                               \
        for (; i + 32 <= n; i += 32)                                                                 \
            UNROLL for (int k = 0; k < 8; k++) acc[k] = vfmaq_f32(acc[k], LOADW(w, i + 4 * k), LOADX(x, i + 4 * k)); \
        for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], LOADW(w, i), LOADX(x, i));            \
        UNROLL for (int k = 0; k < 4; k++) acc[k] = vaddq_f32(acc[k], acc[k + 4]);                   \
        float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));     \
        for (; i < n; i++) sum += WS(w[i]) * XS(x[i]);                                               \
        return sum;                                                                                  \
    }

static inline float32x4_t ld_f32(const float *p, int64_t i) { return vld1q_f32(p + i); }
static inline float32x4_t ld_f16(const uint16_t *p, int64_t i) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + i))); }
static inline float32x4_t ld_bf16(const uint16_t *p, int64_t i) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p + i), 16));
}
#define AS_F32(v) (v)

FLOAT_DOT_NEON(, g4_dot_q_f32_f32_neon, float, float, ld_f32, ld_f32, AS_F32, AS_F32)
FLOAT_DOT_NEON(, g4_dot_q_f16_f16_neon, uint16_t, uint16_t, ld_f16, ld_f16, h2f, h2f)
FLOAT_DOT_NEON(, g4_dot_q_bf16_bf16_neon, uint16_t, uint16_t, ld_bf16, ld_bf16, g4_bf16_to_fp32, g4_bf16_to_fp32)
FLOAT_DOT_NEON(static, dot_f16_f32, uint16_t, float, ld_f16, ld_f32, h2f, AS_F32)

/* ---- exact path (float32 activations) and dequantization ----------------------------------------- */

/* F16 -> F32: the conversion is exact for every finite and infinite half; a group of 8 holding a NaN
 * is converted by the scalar code instead (the hardware quiets signalling NaNs, the reference keeps
 * the bits) */
void g4_to_float_f16_neon(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t h = vld1q_u16(s + i);
        if (vmaxvq_u16(vcgtq_u16(vandq_u16(h, vdupq_n_u16(0x7fff)), vdupq_n_u16(0x7c00)))) {
            for (int k = 0; k < 8; k++) dst[i + k] = g4_fp16_to_fp32(s[i + k]);
        } else {
            const float16x8_t f = vreinterpretq_f16_u16(h);
            vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(f)));
            vst1q_f32(dst + i + 4, vcvt_high_f32_f16(f));
        }
    }
    for (; i < n; i++) dst[i] = g4_fp16_to_fp32(s[i]);
}

float g4_dot_f32_f32_neon(const void *w, const float *x, int64_t n) { return g4_dot_q_f32_f32_neon(w, x, n); }
float g4_dot_f32_f16_neon(const void *w, const float *x, int64_t n) { return dot_f16_f32(w, x, n); }

/* 16 int8 quants times d (dequantized exactly as the reference: (float)q * d, a plain multiply), times
 * 16 floats of x, added to acc */
static inline float32x4_t dot16_f32(int8x16_t q, float32x4_t d, const float *x, float32x4_t acc) {
    const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
    acc = vfmaq_f32(acc, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d), vld1q_f32(x));
    acc = vfmaq_f32(acc, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d), vld1q_f32(x + 4));
    acc = vfmaq_f32(acc, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d), vld1q_f32(x + 8));
    return vfmaq_f32(acc, vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d), vld1q_f32(x + 12));
}

float g4_dot_f32_q8_0_neon(const void *w, const float *x, int64_t n) {
    const block_q8_0 *a = w;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int8x16_t q0, q1;
        wload_q8_0(&a[i], &q0, &q1);
        const float32x4_t d = vdupq_n_f32(h2f(a[i].d));
        acc0 = dot16_f32(q0, d, x + 32 * i, acc0);
        acc1 = dot16_f32(q1, d, x + 32 * i + 16, acc1);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

float g4_dot_f32_q4_0_neon(const void *w, const float *x, int64_t n) {
    const block_q4_0 *a = w;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int8x16_t q0, q1;
        wload_q4_0(&a[i], &q0, &q1);
        const float32x4_t d = vdupq_n_f32(h2f(a[i].d));
        acc0 = dot16_f32(q0, d, x + 32 * i, acc0);
        acc1 = dot16_f32(q1, d, x + 32 * i + 16, acc1);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

/* ---- activation quantizers (bit-identical to the scalar ones for finite inputs) ------------------- */

static inline float absmax32(const float *x) {
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    for (int k = 1; k < 8; k++) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + 4 * k)));
    return vmaxvq_f32(m);
}

/* 32 floats -> 32 int8: roundf(v * id) clamped to [-127, 127], NaN -> 0, as the reference. FCVTAS
 * rounds half away from zero like roundf, saturates, and gives 0 for NaN. Returns the sum of the quants. */
static inline int q8_row32(const float *x, float id, int8_t *out) {
    const float32x4_t vid = vdupq_n_f32(id);
    int16x8_t h[4];
    UNROLL for (int k = 0; k < 4; k++) {
        const int32x4_t a = vcvtaq_s32_f32(vmulq_f32(vld1q_f32(x + 8 * k), vid));
        const int32x4_t b = vcvtaq_s32_f32(vmulq_f32(vld1q_f32(x + 8 * k + 4), vid));
        h[k] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    }
    const int8x16_t lo = vdupq_n_s8(-127);
    const int8x16_t q0 = vmaxq_s8(vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1])), lo);
    const int8x16_t q1 = vmaxq_s8(vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3])), lo);
    vst1q_s8(out, q0);
    vst1q_s8(out + 16, q1);
    return vaddlvq_s8(q0) + vaddlvq_s8(q1);
}

void g4_from_float_q8_0_neon(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = absmax32(x) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        (void)q8_row32(x, id, y[i].qs);
    }
}

void g4_from_float_q8_1_neon(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = absmax32(x) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        const int sum = q8_row32(x, id, y[i].qs);
        y[i].s = g4_fp32_to_fp16((float)sum * d);
    }
}

/* Q8_K: the signed maximum is the first element of largest magnitude; the quants are round to nearest
 * even of iscale * x (FCVTNS, as g4_nearest_int in this range), saturated to [-128, 127] by the
 * narrowing. A block whose maximum is zero or NaN goes to the scalar code. */
void g4_from_float_q8_K_neon(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K; k += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
        const float amax = vmaxvq_f32(m);
        if (!(amax > 0.0f)) {
            g4_from_float_q8_K(x, &y[i], QK_K);
            continue;
        }
        float max = amax;
        for (int k = 0; k < QK_K; k++)
            if (x[k] == amax || x[k] == -amax) {
                max = x[k];
                break;
            }
        const float iscale = -127.0f / max;
        const float32x4_t vs = vdupq_n_f32(iscale);
        for (int k = 0; k < QK_K; k += 16) {
            int16x8_t h[2];
            for (int j = 0; j < 2; j++) {
                const int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vs, vld1q_f32(x + k + 8 * j)));
                const int32x4_t b = vcvtnq_s32_f32(vmulq_f32(vs, vld1q_f32(x + k + 8 * j + 4)));
                h[j] = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
            }
            const int8x16_t q = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
            vst1q_s8(y[i].qs + k, q);
            y[i].bsums[k / 16] = vaddlvq_s8(q);
        }
        y[i].d = 1.0f / iscale;
    }
}

#endif /* __aarch64__ */
