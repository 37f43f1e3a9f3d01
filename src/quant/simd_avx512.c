/* AVX-512 kernels (x86-64): AVX512F + BW + VL + VNNI (vpdpbusd / vpdpwssd), plus a BF16 dot with
 * AVX512_BF16 (vdpbf16ps). Each function carries its own target attribute, so the file builds with the
 * generic flags; g4_types_init installs them (over the AVX2 ones) only when g4_cpu_has_avx512() says
 * so. Contracts and the scalar references: see simd.h; blocks.h turns floating-point contraction off
 * here too, so the scalar float epilogues of the k-quants round exactly like the references.
 *
 * Emulation for the tests: compiled with -DG4_SIMDE, the same source includes SIMDe's portable
 * implementations of the intrinsics (header-only, libsimde-dev) instead of <immintrin.h>, drops the
 * target attributes and names every function *_emu; the Makefile links that object into tests/test_simd
 * and tests/test_repack, which so check the kernels' logic on any x86-64 CPU. The few intrinsics the
 * SIMDe of Debian 12 lacks (or emulates with a different rounding: the 256-bit FMAs) are defined below
 * from their documented per-lane semantics (that build only). Without SIMDe that build is empty. */
#include "quant/simd.h"

#if defined(__x86_64__) && (!defined(G4_SIMDE) || defined(G4_HAVE_SIMDE))

#include "quant/blocks.h"
#include "quant/repack.h"
#include "util/util.h"

#include <math.h>
#include <string.h>

#if defined(G4_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define A512
#define A512BF16
#define KNAME(f) f##_avx512_emu
#define KNAME_BF16(f) f##_avx512bf16_emu
#else
#include <cpuid.h>
#include <immintrin.h>
#define A512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define A512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c")))
#define KNAME(f) f##_avx512
#define KNAME_BF16(f) f##_avx512bf16
#endif

/* gcc -O2 does not unroll the short fixed loops over accumulators: force it, so they stay in registers */
#define UNROLL _Pragma("GCC unroll 8")
#define XK static inline __attribute__((always_inline))

#if defined(G4_SIMDE)
/* ---- emulation only: intrinsics missing from SIMDe 0.7, per lane as the Intel documentation says ---- */
typedef simde__mmask16 __mmask16;
typedef simde__mmask32 __mmask32;
typedef simde__mmask64 __mmask64;
#if !defined(_mm512_cvtepi32_ps)
static inline __m512 emu_cvtepi32_ps(__m512i a) {
    int32_t s[16];
    float r[16];
    memcpy(s, &a, 64);
    for (int i = 0; i < 16; i++) r[i] = (float)s[i]; /* round to nearest even, as vcvtdq2ps */
    __m512 v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_cvtepi32_ps emu_cvtepi32_ps
#endif
#if !defined(_mm512_cvttps_epi32)
static inline __m512i emu_cvttps_epi32(__m512 a) {
    float s[16];
    int32_t r[16];
    memcpy(s, &a, 64);
    for (int i = 0; i < 16; i++) /* truncation; NaN and out of range give 0x80000000 */
        r[i] = s[i] > -2147483904.0f && s[i] < 2147483648.0f ? (int32_t)s[i] : INT32_MIN;
    __m512i v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_cvttps_epi32 emu_cvttps_epi32
#endif
#if !defined(_mm512_cvtph_ps)
static inline __m512 emu_cvtph_ps(__m256i a) {
    uint16_t s[16];
    float r[16];
    memcpy(s, &a, 32);
    for (int i = 0; i < 16; i++) r[i] = g4_fp16_to_fp32(s[i]);
    __m512 v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_cvtph_ps emu_cvtph_ps
#endif
#if !defined(_mm512_cvtepu8_epi32)
static inline __m512i emu_cvtepu8_epi32(__m128i a) {
    uint8_t s[16];
    int32_t r[16];
    memcpy(s, &a, 16);
    for (int i = 0; i < 16; i++) r[i] = s[i];
    __m512i v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_cvtepu8_epi32 emu_cvtepu8_epi32
#endif
#if !defined(_mm512_cvtepu8_epi16)
static inline __m512i emu_cvtepu8_epi16(__m256i a) {
    uint8_t s[32];
    int16_t r[32];
    memcpy(s, &a, 32);
    for (int i = 0; i < 32; i++) r[i] = s[i];
    __m512i v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_cvtepu8_epi16 emu_cvtepu8_epi16
#endif
#if !defined(_mm512_shufflelo_epi16) /* per 128-bit lane: words 0-3 picked by imm, 4-7 kept */
static inline __m512i emu_shuffle_epi16(__m512i a, int imm, int hi) {
    int16_t s[32], r[32];
    memcpy(s, &a, 64);
    memcpy(r, s, 64);
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < 4; k++) r[8 * l + 4 * hi + k] = s[8 * l + 4 * hi + ((imm >> (2 * k)) & 3)];
    __m512i v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_shufflelo_epi16(a, imm) emu_shuffle_epi16(a, imm, 0)
#define _mm512_shufflehi_epi16(a, imm) emu_shuffle_epi16(a, imm, 1)
#endif
#if !defined(_mm512_srai_epi32)
static inline __m512i emu_srai_epi32(__m512i a, int c) {
    int32_t s[16];
    memcpy(s, &a, 64);
    for (int i = 0; i < 16; i++) s[i] = c > 31 ? (s[i] < 0 ? -1 : 0) : s[i] >> c; /* arithmetic (gcc) */
    __m512i v;
    memcpy(&v, s, 64);
    return v;
}
#define _mm512_srai_epi32 emu_srai_epi32
#endif
/* masked loads read only the selected elements (the instruction suppresses faults on the others) */
#if !defined(_mm512_maskz_loadu_ps)
static inline __m512 emu_maskz_loadu_ps(__mmask16 k, const void *p) {
    float r[16];
    for (int i = 0; i < 16; i++) r[i] = (k >> i) & 1 ? ((const float *)p)[i] : 0.0f;
    __m512 v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_maskz_loadu_ps emu_maskz_loadu_ps
#endif
#if !defined(_mm512_maskz_loadu_epi16)
static inline __m512i emu_maskz_loadu_epi16(__mmask32 k, const void *p) {
    uint16_t r[32];
    for (int i = 0; i < 32; i++) r[i] = (k >> i) & 1 ? ((const uint16_t *)p)[i] : 0;
    __m512i v;
    memcpy(&v, r, 64);
    return v;
}
#define _mm512_maskz_loadu_epi16 emu_maskz_loadu_epi16
#endif
#if !defined(_mm256_maskz_loadu_epi16)
static inline __m256i emu_mm256_maskz_loadu_epi16(__mmask16 k, const void *p) {
    uint16_t r[16];
    for (int i = 0; i < 16; i++) r[i] = (k >> i) & 1 ? ((const uint16_t *)p)[i] : 0;
    __m256i v;
    memcpy(&v, r, 32);
    return v;
}
#define _mm256_maskz_loadu_epi16 emu_mm256_maskz_loadu_epi16
#endif
#if !defined(_cvtsh_ss)
#define _cvtsh_ss(h) g4_fp16_to_fp32(h)
#endif
#if !defined(_mm256_cvtph_ps) /* F16C is not part of SIMDe's avx512.h */
static inline __m256 emu_mm256_cvtph_ps(__m128i a) {
    uint16_t s[8];
    float r[8];
    memcpy(s, &a, 16);
    for (int i = 0; i < 8; i++) r[i] = g4_fp16_to_fp32(s[i]);
    __m256 v;
    memcpy(&v, r, 32);
    return v;
}
#define _mm256_cvtph_ps emu_mm256_cvtph_ps
#endif
/* SIMDe 0.7 computes vfmadd / vfnmadd without FMA hardware as a product rounded before the sum; the
 * repacked kernels must round once like the instruction (their results are compared bit for bit) */
static inline __m256 emu_mm256_fmadd_ps(__m256 a, __m256 b, __m256 c, float sign) {
    float x[8], y[8], z[8];
    memcpy(x, &a, 32);
    memcpy(y, &b, 32);
    memcpy(z, &c, 32);
    for (int i = 0; i < 8; i++) z[i] = fmaf(sign * x[i], y[i], z[i]); /* vfnmadd: -(a * b) + c, one rounding */
    __m256 v;
    memcpy(&v, z, 32);
    return v;
}
#undef _mm256_fmadd_ps
#undef _mm256_fnmadd_ps
#define _mm256_fmadd_ps(a, b, c) emu_mm256_fmadd_ps(a, b, c, 1.0f)
#define _mm256_fnmadd_ps(a, b, c) emu_mm256_fmadd_ps(a, b, c, -1.0f)
static inline __m512 emu_mm512_fmadd_ps(__m512 a, __m512 b, __m512 c, float sign) {
    float x[16], y[16], z[16];
    memcpy(x, &a, 64);
    memcpy(y, &b, 64);
    memcpy(z, &c, 64);
    for (int i = 0; i < 16; i++) z[i] = fmaf(sign * x[i], y[i], z[i]);
    __m512 v;
    memcpy(&v, z, 64);
    return v;
}
#undef _mm512_fmadd_ps
#undef _mm512_fnmadd_ps
#define _mm512_fmadd_ps(a, b, c) emu_mm512_fmadd_ps(a, b, c, 1.0f)
#define _mm512_fnmadd_ps(a, b, c) emu_mm512_fmadd_ps(a, b, c, -1.0f)
#endif /* G4_SIMDE */

#if !defined(G4_SIMDE)
/* AVX-512 F/BW/VL + VNNI with the OS saving the opmask and ZMM state, on top of AVX2/FMA/F16C */
int g4_cpu_has_avx512(void) {
    if (!g4_cpu_has_avx2()) return 0; /* also checks OSXSAVE and the XMM/YMM state */
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned f = 1u << 16, bw = 1u << 30, vl = 1u << 31, vnni = 1u << 11;
    if ((b & (f | bw | vl)) != (f | bw | vl) || !(c & vnni)) return 0;
    unsigned xlo, xhi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(xlo), "=d"(xhi) : "c"(0)); /* xgetbv(0) */
    (void)xhi;
    const unsigned state = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7); /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM */
    return (xlo & state) == state;
}

int g4_cpu_has_avx512bf16(void) {
    if (!g4_cpu_has_avx512()) return 0;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0; /* eax: the highest sub-leaf */
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1; /* AVX512_BF16 */
}
#endif

/* ---- helpers ---------------------------------------------------------------------------------- */

A512 static inline float hsum512_ps(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

A512 static inline int hsum128_i32(__m128i s) {
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

A512 static inline int hsum256_i32(__m256i v) {
    return hsum128_i32(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

A512 static inline int hsum512_i32(__m512i v) {
    return hsum256_i32(_mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}

A512 static inline float hmax512_ps(__m512 v) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

A512 static inline float h2f(g4_half h) { return _cvtsh_ss(h); }

A512 static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
A512 static inline __m512i load512(const void *p) { return _mm512_loadu_si512(p); }

/* a 256-bit vector in the low half of a zmm, the high half zero */
A512 static inline __m512i zext256(__m256i v) { return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0); }

/* two 32-value blocks side by side: lo in lanes 0..7 of the int32 / float view, hi in lanes 8..15 */
A512 static inline __m512i join256(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* s0 in float lanes 0..7, s1 in lanes 8..15 */
A512 static inline __m512 scale2(float s0, float s1) { return _mm512_mask_mov_ps(_mm512_set1_ps(s0), 0xFF00, _mm512_set1_ps(s1)); }

/* ---- 32-value blocks against Q8_0 ------------------------------------------------------------------
 * Two blocks per zmm (the second one zero for an odd last block: zero products change nothing).
 * vpdpbusd multiplies unsigned by signed bytes, exactly (4 products per int32 lane, no saturation):
 *   Q8_0: |w| (w = -128 included: 128 as unsigned) times y negated where w < 0 (|y| <= 127);
 *   Q4_0: the nibble q (0..15) times y, minus 8 * (1 . y): (q - 8) . y exactly.
 * Each block's int32 lanes are converted and multiplied by d_w * d_x with FMA into two accumulators
 * (block pairs 0,1 / 2,3 of every 4), as the AVX2 kernels do; the multi-row kernels are the same code,
 * so they are bit-identical to the single-row ones. */

typedef struct {
    __m512i u; /* weight bytes made unsigned (|w| for Q8_0, q for Q4_0) */
    __mmask64 neg; /* Q8_0: the bytes where w < 0 */
} wpair;

A512 static inline wpair q8_0_pair(const block_q8_0 *a, int two) {
    const __m512i w = join256(load256(a[0].qs), two ? load256(a[1].qs) : _mm256_setzero_si256());
    return (wpair){_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
}

A512 static inline wpair q4_0_pair(const block_q4_0 *a, int two) {
    /* 128-bit lanes: qs of block 0 twice, qs of block 1 twice; low nibbles of lanes 0, 2 and high
     * nibbles of lanes 1, 3 (16-bit shifts by 0 / 4) are elements 0..15 and 16..31 of each block */
    const __m512i b0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)a[0].qs));
    const __m512i b1 = two ? _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)a[1].qs)) : _mm512_setzero_si512();
    const long long s4 = 0x0004000400040004LL;
    const __m512i q = _mm512_srlv_epi16(_mm512_mask_blend_epi64(0xF0, b0, b1), _mm512_setr_epi64(0, 0, s4, s4, 0, 0, s4, s4));
    return (wpair){_mm512_and_si512(q, _mm512_set1_epi8(0x0F)), 0};
}

A512 static inline __m512i act_pair(const block_q8_0 *b, int two) {
    return join256(load256(b[0].qs), two ? load256(b[1].qs) : _mm256_setzero_si256());
}

A512 static inline __m512i dot_pair_q8_0(wpair w, __m512i y) {
    const __m512i z = _mm512_setzero_si512();
    return _mm512_dpbusd_epi32(z, w.u, _mm512_mask_sub_epi8(y, w.neg, z, y));
}

A512 static inline __m512i dot_pair_q4_0(wpair w, __m512i y) {
    const __m512i z = _mm512_setzero_si512();
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(z, w.u, y), _mm512_dpbusd_epi32(z, _mm512_set1_epi8(8), y));
}

#define LEGACY_XK(fname, block_t, WPAIR, DOT)                                                             \
    A512 XK void fname(const void *w, const uint8_t *x, size_t xs, const int K, float *out, int64_t n) {   \
        const block_t *a = w;                                                                             \
        const int64_t nb = n / QK8_0;                                                                     \
        __m512 acc0[4], acc1[4];                                                                          \
        UNROLL for (int t = 0; t < K; t++) acc0[t] = acc1[t] = _mm512_setzero_ps();                      \
        int64_t i = 0;                                                                                    \
        for (; i + 4 <= nb; i += 4) {                                                                     \
            const wpair w0 = WPAIR(a + i, 1), w1 = WPAIR(a + i + 2, 1);                                   \
            const float d0 = h2f(a[i].d), d1 = h2f(a[i + 1].d), d2 = h2f(a[i + 2].d), d3 = h2f(a[i + 3].d); \
            UNROLL for (int t = 0; t < K; t++) {                                                          \
                const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)t * xs);                           \
                const __m512i p0 = DOT(w0, act_pair(b + i, 1)), p1 = DOT(w1, act_pair(b + i + 2, 1));     \
                acc0[t] = _mm512_fmadd_ps(scale2(d0 * h2f(b[i].d), d1 * h2f(b[i + 1].d)), _mm512_cvtepi32_ps(p0), acc0[t]); \
                acc1[t] = _mm512_fmadd_ps(scale2(d2 * h2f(b[i + 2].d), d3 * h2f(b[i + 3].d)), _mm512_cvtepi32_ps(p1), acc1[t]); \
            }                                                                                             \
        }                                                                                                 \
        for (; i < nb; i += 2) { /* 1 to 3 blocks left: a pair, then maybe a single one */                 \
            const int two = i + 1 < nb;                                                                   \
            const wpair w0 = WPAIR(a + i, two);                                                           \
            const float d0 = h2f(a[i].d), d1 = two ? h2f(a[i + 1].d) : 0.0f;                              \
            UNROLL for (int t = 0; t < K; t++) {                                                          \
                const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)t * xs);                           \
                const __m512i p0 = DOT(w0, act_pair(b + i, two));                                         \
                const float s1 = two ? d1 * h2f(b[i + 1].d) : 0.0f;                                       \
                acc0[t] = _mm512_fmadd_ps(scale2(d0 * h2f(b[i].d), s1), _mm512_cvtepi32_ps(p0), acc0[t]);  \
            }                                                                                             \
        }                                                                                                 \
        UNROLL for (int t = 0; t < K; t++) out[t] = hsum512_ps(_mm512_add_ps(acc0[t], acc1[t]));          \
    }

LEGACY_XK(q8_0_xk, block_q8_0, q8_0_pair, dot_pair_q8_0)
LEGACY_XK(q4_0_xk, block_q4_0, q4_0_pair, dot_pair_q4_0)

/* one weight row against up to 4 activation rows at a time; K is a compile-time constant after inlining */
#define MULTI_DRIVER(name, kern)                                                                    \
    A512 void name(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n) {       \
        const uint8_t *xb = x;                                                                     \
        int j = 0;                                                                                 \
        for (; j + 4 <= nx; j += 4) kern(w, xb + (size_t)j * xs, xs, 4, out + j, n);               \
        switch (nx - j) {                                                                          \
        case 3: kern(w, xb + (size_t)j * xs, xs, 3, out + j, n); break;                            \
        case 2: kern(w, xb + (size_t)j * xs, xs, 2, out + j, n); break;                            \
        case 1: kern(w, xb + (size_t)j * xs, xs, 1, out + j, n); break;                            \
        default: break;                                                                            \
        }                                                                                          \
    }

/* the single-row kernel: the same code with one activation row */
#define SINGLE(name, kern)                                                                          \
    A512 float name(const void *w, const void *x, int64_t n) {                                     \
        float out;                                                                                 \
        kern(w, (const uint8_t *)x, 0, 1, &out, n);                                                \
        return out;                                                                                \
    }

SINGLE(KNAME(g4_dot_q_q8_0_q8_0), q8_0_xk)
SINGLE(KNAME(g4_dot_q_q4_0_q8_0), q4_0_xk)
MULTI_DRIVER(KNAME(g4_dot_q_multi_q8_0_q8_0), q8_0_xk)
MULTI_DRIVER(KNAME(g4_dot_q_multi_q4_0_q8_0), q4_0_xk)

/* ---- k-quants against Q8_K: exact integer sums per super-block, the reference's float epilogue -----
 * 64 values per zmm: vpmaddubsw (unsigned quant x signed activation, pairs into int16: at most
 * 2 * 63 * 128, no saturation) then vpdpwssd with the sub-block scales as int16 (pairs into int32). */

/* the 8 six-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K / Q5_K super-block:
 * g4_scale_min_k4 for j = 0..7, four bytes at a time */
A512 static inline __m128i scales_mins_k4(const uint8_t *q) {
    uint32_t u[3], r[4];
    memcpy(u, q, 12);
    r[0] = u[0] & 0x3f3f3f3fu;                                       /* scales 0..3 */
    r[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4; /* scales 4..7 */
    r[2] = u[1] & 0x3f3f3f3fu;                                       /* mins 0..3 */
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4; /* mins 4..7 */
    return _mm_loadu_si128((const __m128i *)r);
}

/* sum over the 8 sub-blocks of m[s] * (bsums[2s] + bsums[2s+1]), m in bytes 8..15 of sm */
A512 static inline int mins_dot_bsums(__m128i sm, const int16_t *bsums) {
    const __m128i pair = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums), _mm_loadu_si128((const __m128i *)(bsums + 8)));
    return hsum128_i32(_mm_madd_epi16(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm)), pair)); /* |pair| <= 4096 */
}

/* int16 index vector: e0 in lanes 0..15, e1 in lanes 16..31 (for vpermw) */
A512 static inline __m512i idx2(int e0, int e1) {
    return _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16((short)e0), _mm512_set1_epi16((short)e1));
}

/* Q4_K: zmm c holds sub-blocks 2c (low nibbles of qs[32c..32c+31]) and 2c+1 (their high nibbles),
 * activations y[64c .. 64c+63] as they are */
A512 static inline void q4_K_decode(const block_q4_K *a, __m512i wv[4], __m512i sv[4], __m128i *sm) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    *sm = scales_mins_k4(a->scales);
    const __m512i sc = zext256(_mm256_cvtepu8_epi16(*sm)); /* scales as int16 in lanes 0..7 */
    UNROLL for (int k = 0; k < 2; k++) {
        const __m512i q = load512(a->qs + 64 * k);
        const __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        wv[2 * k] = _mm512_shuffle_i32x4(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));     /* lo[0..31], hi[0..31] */
        wv[2 * k + 1] = _mm512_shuffle_i32x4(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)); /* lo[32..63], hi[32..63] */
    }
    UNROLL for (int c = 0; c < 4; c++) sv[c] = _mm512_permutexvar_epi16(idx2(2 * c, 2 * c + 1), sc);
}

A512 XK void q4_K_xk(const void *w, const uint8_t *x, size_t xs, const int K, float *out, int64_t n) {
    const block_q4_K *a = w;
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n / QK_K; i++) {
        __m512i wv[4], sv[4], acc[4];
        __m128i sm;
        q4_K_decode(&a[i], wv, sv, &sm);
        UNROLL for (int t = 0; t < K; t++) acc[t] = _mm512_setzero_si512();
        UNROLL for (int c = 0; c < 4; c++)
            UNROLL for (int t = 0; t < K; t++) {
                const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
                acc[t] = _mm512_dpwssd_epi32(acc[t], _mm512_maddubs_epi16(wv[c], load512(b[i].qs + 64 * c)), sv[c]);
            }
        const float d = h2f(a[i].d), dmin = h2f(a[i].dmin);
        UNROLL for (int t = 0; t < K; t++) {
            const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
            const int summ = mins_dot_bsums(sm, b[i].bsums);
            const int sumi = hsum512_i32(acc[t]);
            const float dy = b[i].d;
            sum[t] += dy * d * (float)sumi - dy * dmin * (float)summ;
        }
    }
    UNROLL for (int t = 0; t < K; t++) out[t] = sum[t];
}
SINGLE(KNAME(g4_dot_q_q4_K_q8_K), q4_K_xk)
MULTI_DRIVER(KNAME(g4_dot_q_multi_q4_K_q8_K), q4_K_xk)

/* Q5_K: Q4_K plus the 5th bit: bit 2c of qh[l] for element l of sub-block 2c, bit 2c+1 for 2c+1 */
A512 static inline __m512i q5_K_sub2(__m512i v, __m512i qh, int c, __m512i sc, const int8_t *y, __m512i acc) {
    /* +16 where bit 2c (low half) / 2c+1 (high half) of qh is set (shifts of 1 / 2 by at most 6: no carry) */
    const __m512i bit = _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8(1), _mm512_set1_epi8(2));
    const __mmask64 hb = _mm512_test_epi8_mask(qh, _mm512_slli_epi16(bit, (unsigned)(2 * c)));
    v = _mm512_mask_add_epi8(v, hb, v, _mm512_set1_epi8(16));
    const __m512i sv = _mm512_permutexvar_epi16(idx2(2 * c, 2 * c + 1), sc);
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(v, load512(y + 64 * c)), sv);
}

A512 float KNAME(g4_dot_q_q5_K_q8_K)(const void *w, const void *xq, int64_t n) {
    const block_q5_K *a = w;
    const block_q8_K *b = xq;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i sm = scales_mins_k4(a[i].scales);
        const int summ = mins_dot_bsums(sm, b[i].bsums);
        const __m512i sc = zext256(_mm256_cvtepu8_epi16(sm));
        const __m512i qh = _mm512_broadcast_i64x4(load256(a[i].qh));
        __m512i acc = _mm512_setzero_si512();
        UNROLL for (int k = 0; k < 2; k++) {
            const __m512i q = load512(a[i].qs + 64 * k);
            const __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            acc = q5_K_sub2(_mm512_shuffle_i32x4(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)), qh, 2 * k, sc, b[i].qs, acc);
            acc = q5_K_sub2(_mm512_shuffle_i32x4(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)), qh, 2 * k + 1, sc, b[i].qs, acc);
        }
        const int sumi = hsum512_i32(acc);
        const float dy = b[i].d;
        sum += dy * h2f(a[i].d) * (float)sumi - dy * h2f(a[i].dmin) * (float)summ;
    }
    return sum;
}

/* Q6_K: q - 32 with q in 0..63: sum sc * (q . y) - 32 * sum sc * bsums, both exact in int32.
 * Half h: ql[64h .. 64h+63] low nibbles are values 0..63 of the half, high nibbles 64..127; the
 * 2 high bits come from qh[32h + l] >> 0, 2 (values 0..63) and >> 4, 6 (64..127). A zmm then holds 4
 * consecutive sub-blocks of 16, in order. */
A512 static inline void q6_K_decode(const block_q6_K *a, __m512i wv[4], __m512i sv[4], __m256i *sc16) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
    const __m512i sh02 = _mm512_setr_epi64(0, 0, 0, 0, 0x0002000200020002LL, 0x0002000200020002LL,
                                           0x0002000200020002LL, 0x0002000200020002LL);
    *sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a->scales));
    const __m512i sc = zext256(*sc16);
    UNROLL for (int h = 0; h < 2; h++) {
        const __m512i ql = load512(a->ql + 64 * h);
        const __m512i t = _mm512_srlv_epi16(_mm512_broadcast_i64x4(load256(a->qh + 32 * h)), sh02); /* qh | qh >> 2 */
        const __m512i h01 = _mm512_slli_epi16(_mm512_and_si512(t, m2), 4);
        const __m512i h23 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(t, 4), m2), 4);
        wv[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), h01);
        wv[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), h23);
    }
    /* int16 lanes 8j .. 8j+7 of zmm z take scale 4z + j */
    UNROLL for (int z = 0; z < 4; z++) {
        const __m512i idx = _mm512_add_epi16(_mm512_setr_epi64(0, 0, 0x0001000100010001LL, 0x0001000100010001LL,
                                                               0x0002000200020002LL, 0x0002000200020002LL,
                                                               0x0003000300030003LL, 0x0003000300030003LL),
                                             _mm512_set1_epi16((short)(4 * z)));
        sv[z] = _mm512_permutexvar_epi16(idx, sc);
    }
}

A512 XK void q6_K_xk(const void *w, const uint8_t *x, size_t xs, const int K, float *out, int64_t n) {
    const block_q6_K *a = w;
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n / QK_K; i++) {
        __m512i wv[4], sv[4], acc[4];
        __m256i sc16;
        q6_K_decode(&a[i], wv, sv, &sc16);
        UNROLL for (int t = 0; t < K; t++) acc[t] = _mm512_setzero_si512();
        UNROLL for (int z = 0; z < 4; z++)
            UNROLL for (int t = 0; t < K; t++) {
                const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
                acc[t] = _mm512_dpwssd_epi32(acc[t], _mm512_maddubs_epi16(wv[z], load512(b[i].qs + 64 * z)), sv[z]);
            }
        const float d = h2f(a[i].d);
        UNROLL for (int t = 0; t < K; t++) {
            const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
            const int bias = hsum256_i32(_mm256_madd_epi16(sc16, load256(b[i].bsums))); /* sum sc[s] * bsums[s] */
            const int sumi = hsum512_i32(acc[t]) - 32 * bias;
            sum[t] += b[i].d * d * (float)sumi;
        }
    }
    UNROLL for (int t = 0; t < K; t++) out[t] = sum[t];
}
SINGLE(KNAME(g4_dot_q_q6_K_q8_K), q6_K_xk)
MULTI_DRIVER(KNAME(g4_dot_q_multi_q6_K_q8_K), q6_K_xk)

/* ---- float types: 64 values per step in 4 accumulators of 16 lanes, the rest with masked loads
 * (zero lanes add exact zeros) ------------------------------------------------------------------ */

A512 static inline float sum4(const __m512 acc[4]) {
    return hsum512_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

A512 float KNAME(g4_dot_q_f32_f32)(const void *w_, const void *x_, int64_t n) {
    const float *w = w_, *x = x_;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        UNROLL for (int k = 0; k < 4; k++)
            acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16 * k), _mm512_loadu_ps(x + i + 16 * k), acc[k]);
    for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc[0]);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), acc[1]);
    }
    return sum4(acc);
}

A512 float KNAME(g4_dot_q_f16_f16)(const void *w_, const void *x_, int64_t n) {
    const uint16_t *w = w_, *x = x_;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        UNROLL for (int k = 0; k < 4; k++)
            acc[k] = _mm512_fmadd_ps(_mm512_cvtph_ps(load256(w + i + 16 * k)), _mm512_cvtph_ps(load256(x + i + 16 * k)), acc[k]);
    for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(_mm512_cvtph_ps(load256(w + i)), _mm512_cvtph_ps(load256(x + i)), acc[0]);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)),
                                 _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)), acc[1]);
    }
    return sum4(acc);
}

/* BF16: 32 values per zmm; the even elements are the low halves of the 32-bit lanes (shifted up
 * they are their float32 values), the odd ones the high halves (masked) */
A512 static inline __m512 bf16_even(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
A512 static inline __m512 bf16_odd(__m512i v) {
    return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u)));
}

A512 float KNAME(g4_dot_q_bf16_bf16)(const void *w_, const void *x_, int64_t n) {
    const uint16_t *w = w_, *x = x_;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        UNROLL for (int k = 0; k < 2; k++) {
            const __m512i a = load512(w + i + 32 * k), b = load512(x + i + 32 * k);
            acc[2 * k] = _mm512_fmadd_ps(bf16_even(a), bf16_even(b), acc[2 * k]);
            acc[2 * k + 1] = _mm512_fmadd_ps(bf16_odd(a), bf16_odd(b), acc[2 * k + 1]);
        }
    if (i < n) { /* up to 63 left: one full or masked zmm, then maybe a masked one */
        for (; i < n; i += 32) {
            const __mmask32 m = n - i >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (n - i)) - 1);
            const __m512i a = _mm512_maskz_loadu_epi16(m, w + i), b = _mm512_maskz_loadu_epi16(m, x + i);
            acc[0] = _mm512_fmadd_ps(bf16_even(a), bf16_even(b), acc[0]);
            acc[1] = _mm512_fmadd_ps(bf16_odd(a), bf16_odd(b), acc[1]);
        }
    }
    return sum4(acc);
}

/* BF16 with vdpbf16ps: two products per lane and instruction. Its products are exact (8-bit by 8-bit
 * significands), but it treats subnormal bf16 inputs as zero and flushes subnormal results (ggml uses
 * it the same way): a term below 2^-126 * |other factor| may be dropped. */
A512BF16 static inline __m512bh as_bh(__m512i v) {
    __m512bh r;
    memcpy(&r, &v, sizeof r);
    return r;
}

A512BF16 float KNAME_BF16(g4_dot_q_bf16_bf16)(const void *w_, const void *x_, int64_t n) {
    const uint16_t *w = w_, *x = x_;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 128 <= n; i += 128)
        UNROLL for (int k = 0; k < 4; k++)
            acc[k] = _mm512_dpbf16_ps(acc[k], as_bh(load512(w + i + 32 * k)), as_bh(load512(x + i + 32 * k)));
    for (; i < n; i += 32) {
        const __mmask32 m = n - i >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (n - i)) - 1);
        acc[0] = _mm512_dpbf16_ps(acc[0], as_bh(_mm512_maskz_loadu_epi16(m, w + i)), as_bh(_mm512_maskz_loadu_epi16(m, x + i)));
    }
    return sum4(acc);
}

/* ---- activation quantizers (bit-identical to the scalar ones for finite inputs) ------------------- */

A512 static inline __m512 abs512(__m512 v) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF)));
}

/* 16 floats -> 16 int32: roundf(v * id) (half away from zero) clamped to [-127, 127], NaN -> 0.
 * Half away from zero as trunc(v + copysign(0.5 - 2^-25, v)): the sum rounds up to the next integer
 * exactly when |frac(v)| >= 0.5 (the clamp before the truncation gives the same integers). */
A512 static inline __m512i q8_16(const float *x, __m512 vid) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x), vid);
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u));
    const __m512 half = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(0.49999997f))));
    __m512 r = _mm512_add_ps(v, half);
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), r); /* NaN -> 0 */
    return _mm512_cvttps_epi32(r);
}

A512 static inline float absmax32(const float *x) {
    return hmax512_ps(_mm512_max_ps(abs512(_mm512_loadu_ps(x)), abs512(_mm512_loadu_ps(x + 16))));
}

A512 void KNAME(g4_from_float_q8_0)(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = absmax32(x) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        y[i].d = g4_fp32_to_fp16(d);
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(q8_16(x, vid)));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(q8_16(x + 16, vid)));
    }
}

A512 void KNAME(g4_from_float_q8_1)(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = absmax32(x) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i q0 = q8_16(x, vid), q1 = q8_16(x + 16, vid);
        y[i].d = g4_fp32_to_fp16(d);
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(q1));
        const int sum = hsum512_i32(_mm512_add_epi32(q0, q1));
        y[i].s = g4_fp32_to_fp16((float)sum * d);
    }
}

/* Q8_K: ggml's scheme. The signed maximum is the first element of largest magnitude; the quants are
 * round-to-nearest-even of iscale * x (g4_nearest_int), saturated to [-128, 127] by vpmovsdb; each
 * bsum is the sum of its 16 stored bytes (unsigned sum of the bytes + 128, less 16 * 128). */
A512 void KNAME(g4_from_float_q8_K)(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < QK_K; k += 16) m = _mm512_max_ps(m, abs512(_mm512_loadu_ps(x + k)));
        const float amax = hmax512_ps(m);
        if (!(amax > 0.0f)) { /* zero block (or NaN): the scalar path decides */
            g4_from_float_q8_K(x, &y[i], QK_K);
            continue;
        }
        float max = amax;
        const __m512 va = _mm512_set1_ps(amax);
        for (int k = 0; k < QK_K; k += 16) {
            const __mmask16 eq = _mm512_cmp_ps_mask(abs512(_mm512_loadu_ps(x + k)), va, _CMP_EQ_OQ);
            if (eq) {
                max = x[k + __builtin_ctz((unsigned)eq)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        const __m128i bias = _mm_set1_epi8((char)0x80);
        for (int k = 0; k < QK_K; k += 16) {
            const __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(x + k)), _MM_FROUND_TO_NEAREST_INT);
            const __m128i q = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(v));
            _mm_storeu_si128((__m128i *)(y[i].qs + k), q);
            const __m128i s = _mm_sad_epu8(_mm_xor_si128(q, bias), _mm_setzero_si128());
            y[i].bsums[k / 16] = (int16_t)(_mm_cvtsi128_si32(s) + _mm_extract_epi16(s, 4) - 16 * 128);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- repacked (8-row interleaved) layouts: see repack.h ------------------------------------------
 * The AVX2 kernels' scheme (lane r of a 256-bit vector = weight row r, 4 activation bytes broadcast to
 * all lanes) with two AVX-512 additions, both at 256 bits (AVX512VL):
 *   vpdpbusd: u8 x s8, the 4 products of an int32 lane summed into it exactly (no int16 stage, no
 *     saturation), one instruction for AVX2's vpmaddubsw + vpaddw (+ vpmaddwd + vpaddd);
 *   32 vector registers: 4 activation rows per pass for every type (AVX2: 2 for Q6_K).
 * 512-bit vectors would need a lane shuffle per activation broadcast (two tokens or two block columns
 * in one zmm), as many instructions as the second ymm product they save. Every block's integer is the
 * exact sumi of repack.c and the float steps are the reference's, lane by lane: bit-identical. */

A512 XK __m256i rp_bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

A512 XK __m512i rp_bcast32x16(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* 32 (16) bytes of each group side by side: lanes 0-7 the first group's rows, 8-15 the second's */
A512 XK __m512i rp_pair256(const uint8_t *g0, const uint8_t *g1) { return join256(load256(g0), load256(g1)); }
A512 XK __m256i rp_pair128(const uint8_t *g0, const uint8_t *g1) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)g0)),
                                   _mm_loadu_si128((const __m128i *)g1), 1);
}

/* Q4_0x8: (q - 8) . a = q . a - 8 * (sum of a): the int32 lanes start at -8 * s (block_q8p.s), then
 * 8 vpdpbusd of the unsigned nibbles. AVX2 per block and token: 8 vpmaddubsw + 8 vpaddw + vpmaddwd +
 * vpsubd; here 8 vpdpbusd (+ a broadcast of -8 s). */
A512 XK void rp_q4_0x8_k(const uint8_t *pw, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK4_0;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 144;
        _mm_prefetch((const char *)g + 8 * 144, _MM_HINT_T0); /* 8 columns ahead: 2.25 lines each */
        _mm_prefetch((const char *)g + 8 * 144 + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)g + 8 * 144 + 128, _MM_HINT_T0);
        __m256i s[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) s[t] = _mm256_set1_epi32(-8 * ((const block_q8p *)(act + (size_t)t * as) + i)->s);
        UNROLL for (int c = 0; c < 4; c++) {
            const __m256i v = load256(g + 16 + 32 * c);
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            UNROLL for (int t = 0; t < NT; t++) {
                const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
                s[t] = _mm256_dpbusd_epi32(s[t], lo, rp_bcast32(a->qs + 4 * c));
                s[t] = _mm256_dpbusd_epi32(s[t], hi, rp_bcast32(a->qs + 16 + 4 * c));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        UNROLL for (int t = 0; t < NT; t++) {
            const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d)), _mm256_cvtepi32_ps(s[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q4_0, two consecutive groups (16 rows) per 512-bit register: lanes 0-7 are rows of the first group,
 * lanes 8-15 of the second, so one 4-byte activation broadcast feeds 16 rows and a vpdpbusd does twice
 * the work of the 256-bit one (Zen 5 issues both at the same rate); up to 8 tokens per pass share each
 * weight load and nibble split. Per lane the same integer and float steps as rp_q4_0x8_k: bit-identical. */
A512 XK void rp_q4_0x16_k(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy,
                          int64_t n) {
    const int64_t nb = n / QK4_0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[G4_RP_MAXT16];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g0 = pw + (size_t)i * 144, *g1 = g0 + gb;
        /* 8 columns ahead in both groups; past their end, the next pair's starts (after the second group
         * comes the third: the first group's look-ahead then skips to the fourth) */
        const char *p0 = (const char *)g0 + 8 * 144 + (i + 8 < nb ? 0 : 2 * gb), *p1 = (const char *)g1 + 8 * 144;
        _mm_prefetch(p0, _MM_HINT_T0);
        _mm_prefetch(p0 + 64, _MM_HINT_T0);
        _mm_prefetch(p0 + 128, _MM_HINT_T0);
        _mm_prefetch(p1, _MM_HINT_T0);
        _mm_prefetch(p1 + 64, _MM_HINT_T0);
        _mm_prefetch(p1 + 128, _MM_HINT_T0);
        __m512i s[G4_RP_MAXT16];
        UNROLL for (int t = 0; t < NT; t++) s[t] = _mm512_set1_epi32(-8 * ((const block_q8p *)(act + (size_t)t * as) + i)->s);
        UNROLL for (int c = 0; c < 4; c++) {
            const __m512i v = rp_pair256(g0 + 16 + 32 * c, g1 + 16 + 32 * c);
            const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            UNROLL for (int t = 0; t < NT; t++) {
                const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
                s[t] = _mm512_dpbusd_epi32(s[t], lo, rp_bcast32x16(a->qs + 4 * c));
                s[t] = _mm512_dpbusd_epi32(s[t], hi, rp_bcast32x16(a->qs + 16 + 4 * c));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(rp_pair128(g0, g1));
        UNROLL for (int t = 0; t < NT; t++) {
            const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a->d)), _mm512_cvtepi32_ps(s[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q8_0x8: w + 128 is an unsigned byte, and (w + 128) . a - 128 * (sum of a) = w . a exactly (|lane| <
 * 2^20): the lanes start at -128 s, one vpxor per chunk makes the weights unsigned, then one vpdpbusd
 * per chunk and token. AVX2: vpsignb + vpmaddubsw + vpmaddwd + vpaddd per chunk and token. */
A512 XK void rp_q8_0x8_k(const uint8_t *pw, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK8_0;
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 272;
        UNROLL for (int k = 0; k < 5; k++) _mm_prefetch((const char *)g + 4 * 272 + 64 * k, _MM_HINT_T0);
        __m256i s[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) s[t] = _mm256_set1_epi32(-128 * ((const block_q8p *)(act + (size_t)t * as) + i)->s);
        UNROLL for (int c = 0; c < 8; c++) {
            const __m256i u = _mm256_xor_si256(load256(g + 16 + 32 * c), bias);
            UNROLL for (int t = 0; t < NT; t++) {
                const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
                s[t] = _mm256_dpbusd_epi32(s[t], u, rp_bcast32(a->qs + 4 * c));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        UNROLL for (int t = 0; t < NT; t++) {
            const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d)), _mm256_cvtepi32_ps(s[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q8_0, 16 rows per zmm (see rp_q4_0x16_k): bit-identical to rp_q8_0x8_k lane by lane. */
A512 XK void rp_q8_0x16_k(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy,
                          int64_t n) {
    const int64_t nb = n / QK8_0;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[G4_RP_MAXT16];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g0 = pw + (size_t)i * 272, *g1 = g0 + gb;
        const char *p0 = (const char *)g0 + 4 * 272 + (i + 4 < nb ? 0 : 2 * gb), *p1 = (const char *)g1 + 4 * 272;
        UNROLL for (int k = 0; k < 5; k++) {
            _mm_prefetch(p0 + 64 * k, _MM_HINT_T0);
            _mm_prefetch(p1 + 64 * k, _MM_HINT_T0);
        }
        __m512i s[G4_RP_MAXT16];
        UNROLL for (int t = 0; t < NT; t++) s[t] = _mm512_set1_epi32(-128 * ((const block_q8p *)(act + (size_t)t * as) + i)->s);
        UNROLL for (int c = 0; c < 8; c++) {
            const __m512i u = _mm512_xor_si512(rp_pair256(g0 + 16 + 32 * c, g1 + 16 + 32 * c), bias);
            UNROLL for (int t = 0; t < NT; t++) {
                const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
                s[t] = _mm512_dpbusd_epi32(s[t], u, rp_bcast32x16(a->qs + 4 * c));
            }
        }
        const __m512 dw = _mm512_cvtph_ps(rp_pair128(g0, g1));
        UNROLL for (int t = 0; t < NT; t++) {
            const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a->d)), _mm512_cvtepi32_ps(s[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q4_K, 16 rows per zmm, up to 4 tokens (5 accumulators per token): bit-identical to rp_q4_Kx8_k. */
A512 XK void rp_q4_Kx16_k(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy,
                          int64_t n) {
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g0 = pw + (size_t)i * 1184, *g1 = g0 + gb;
        const char *p0 = (const char *)g0 + 1184 + (i + 1 < nb ? 0 : 2 * gb), *p1 = (const char *)g1 + 1184;
        __m512i isum[G4_RP_MAXT], msum[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) isum[t] = msum[t] = _mm512_setzero_si512();
        UNROLL for (int p = 0; p < 4; p++) {
            UNROLL for (int k = 0; k < 5; k++) {
                _mm_prefetch(p0 + 320 * p + 64 * k, _MM_HINT_T0);
                _mm_prefetch(p1 + 320 * p + 64 * k, _MM_HINT_T0);
            }
            __m512i slo[G4_RP_MAXT], shi[G4_RP_MAXT];
            UNROLL for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm512_setzero_si512();
            UNROLL for (int c = 0; c < 8; c++) {
                const __m512i v = rp_pair256(g0 + 160 + 256 * p + 32 * c, g1 + 160 + 256 * p + 32 * c);
                const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                UNROLL for (int t = 0; t < NT; t++) {
                    const int8_t *a = ((const block_q8_K *)(act + (size_t)t * as) + i)->qs + 64 * p + 4 * c;
                    slo[t] = _mm512_dpbusd_epi32(slo[t], lo, rp_bcast32x16(a));
                    shi[t] = _mm512_dpbusd_epi32(shi[t], hi, rp_bcast32x16(a + 32));
                }
            }
            const __m512i sc0 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(g0 + 32 + 16 * p)),
                                                                        _mm_loadl_epi64((const __m128i *)(g1 + 32 + 16 * p))));
            const __m512i sc1 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(g0 + 40 + 16 * p)),
                                                                        _mm_loadl_epi64((const __m128i *)(g1 + 40 + 16 * p))));
            UNROLL for (int t = 0; t < NT; t++)
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(slo[t], sc0), _mm512_mullo_epi32(shi[t], sc1)));
        }
        UNROLL for (int p = 0; p < 4; p++) {
            const __m512i mp = _mm512_cvtepu8_epi16(rp_pair128(g0 + 96 + 16 * p, g1 + 96 + 16 * p)); /* m_2p, m_2p+1 */
            const __m512i m0 = _mm512_shufflehi_epi16(_mm512_shufflelo_epi16(mp, 0xA0), 0xA0);
            const __m512i m1 = _mm512_shufflehi_epi16(_mm512_shufflelo_epi16(mp, 0xF5), 0xF5);
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = ((const block_q8_K *)(act + (size_t)t * as) + i)->bsums + 4 * p;
                msum[t] = _mm512_dpwssd_epi32(msum[t], m0, rp_bcast32x16((const int8_t *)bs));
                msum[t] = _mm512_dpwssd_epi32(msum[t], m1, rp_bcast32x16((const int8_t *)(bs + 2)));
            }
        }
        const __m512 d = _mm512_cvtph_ps(rp_pair128(g0, g1)), dmin = _mm512_cvtph_ps(rp_pair128(g0 + 16, g1 + 16));
        UNROLL for (int t = 0; t < NT; t++) {
            const __m512 dx = _mm512_set1_ps(((const block_q8_K *)(act + (size_t)t * as) + i)->d);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q6_K, 16 rows per zmm, up to 4 tokens: bit-identical to rp_q6_Kx8_k. */
A512 XK void rp_q6_Kx16_k(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy,
                          int64_t n) {
    const int64_t nb = n / QK_K;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g0 = pw + (size_t)i * 1680, *g1 = g0 + gb;
        const char *p0 = (const char *)g0 + 1680 + (i + 1 < nb ? 0 : 2 * gb), *p1 = (const char *)g1 + 1680;
        __m512i isum[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
        for (int u = 0; u < 8; u++) {
            UNROLL for (int k = 0; k < 4; k++) {
                _mm_prefetch(p0 + 256 * u + 64 * k, _MM_HINT_T0);
                _mm_prefetch(p1 + 256 * u + 64 * k, _MM_HINT_T0);
            }
            __m512i sA[G4_RP_MAXT], sB[G4_RP_MAXT];
            UNROLL for (int t = 0; t < NT; t++) sA[t] = sB[t] = _mm512_setzero_si512();
            UNROLL for (int h = 0; h < 2; h++) {
                const __m512i hb = rp_pair256(g0 + 1168 + 64 * u + 32 * h, g1 + 1168 + 64 * u + 32 * h);
                const __m512i v0 = rp_pair256(g0 + 144 + 128 * u + 64 * h, g1 + 144 + 128 * u + 64 * h);
                const __m512i v1 = rp_pair256(g0 + 144 + 128 * u + 64 * h + 32, g1 + 144 + 128 * u + 64 * h + 32);
                const __m512i qa0 = _mm512_or_si512(_mm512_and_si512(v0, m4), _mm512_and_si512(_mm512_slli_epi16(hb, 4), m30));
                const __m512i qb0 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                                                    _mm512_and_si512(_mm512_slli_epi16(hb, 2), m30));
                const __m512i qa1 = _mm512_or_si512(_mm512_and_si512(v1, m4), _mm512_and_si512(hb, m30));
                const __m512i qb1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v1, 4), m4),
                                                    _mm512_and_si512(_mm512_srli_epi16(hb, 2), m30));
                UNROLL for (int t = 0; t < NT; t++) {
                    const int8_t *a = ((const block_q8_K *)(act + (size_t)t * as) + i)->qs + 32 * u + 8 * h;
                    sA[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sA[t], qa0, rp_bcast32x16(a)), qa1, rp_bcast32x16(a + 4));
                    sB[t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sB[t], qb0, rp_bcast32x16(a + 16)), qb1, rp_bcast32x16(a + 20));
                }
            }
            const __m512i sp = _mm512_cvtepi8_epi16(rp_pair128(g0 + 16 + 16 * u, g1 + 16 + 16 * u)); /* sc_2u, sc_2u+1 */
            const __m512i scA = _mm512_srai_epi32(_mm512_slli_epi32(sp, 16), 16), scB = _mm512_srai_epi32(sp, 16);
            const __m512i sp32 = _mm512_sub_epi16(_mm512_setzero_si512(), _mm512_slli_epi16(sp, 5));
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = ((const block_q8_K *)(act + (size_t)t * as) + i)->bsums + 2 * u;
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(sA[t], scA), _mm512_mullo_epi32(sB[t], scB)));
                isum[t] = _mm512_dpwssd_epi32(isum[t], sp32, rp_bcast32x16((const int8_t *)bs));
            }
        }
        const __m512 d = _mm512_cvtph_ps(rp_pair128(g0, g1));
        UNROLL for (int t = 0; t < NT; t++) {
            const __m512 dx = _mm512_set1_ps(((const block_q8_K *)(act + (size_t)t * as) + i)->d);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q4_Kx8: per pair of sub-blocks, 8 vpdpbusd per sub-block and token give its dot in int32 (|dot| <=
 * 32 * 15 * 128), times the scale with vpmulld (exact: < 2^22). Mins: vpdpwssd of (m_s, m_s) with the
 * activation sums (bsums[2s], bsums[2s+1]) of lane r. AVX2 per super-block and token: 64 vpmaddubsw +
 * 64 vpaddw + 12 vpmaddwd + 12 vpaddd (+ scalar bsum pairs); here 64 vpdpbusd + 8 vpmulld + 8 vpaddd +
 * 8 vpdpwssd (both 4 tokens per pass). */
A512 XK void rp_q4_Kx8_k(const uint8_t *pw, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 1184;
        __m256i isum[G4_RP_MAXT], msum[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
        UNROLL for (int p = 0; p < 4; p++) {
            /* the next super-block column, a quarter per pair */
            UNROLL for (int k = 0; k < 5; k++) _mm_prefetch((const char *)g + 1184 + 320 * p + 64 * k, _MM_HINT_T0);
            __m256i slo[G4_RP_MAXT], shi[G4_RP_MAXT];
            UNROLL for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm256_setzero_si256();
            const uint8_t *q = g + 160 + 256 * p;
            UNROLL for (int c = 0; c < 8; c++) {
                const __m256i v = load256(q + 32 * c);
                const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                UNROLL for (int t = 0; t < NT; t++) {
                    const int8_t *a = ((const block_q8_K *)(act + (size_t)t * as) + i)->qs + 64 * p + 4 * c;
                    slo[t] = _mm256_dpbusd_epi32(slo[t], lo, rp_bcast32(a));
                    shi[t] = _mm256_dpbusd_epi32(shi[t], hi, rp_bcast32(a + 32));
                }
            }
            const __m256i sc0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(g + 32 + 16 * p)));
            const __m256i sc1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(g + 40 + 16 * p)));
            UNROLL for (int t = 0; t < NT; t++)
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_mullo_epi32(slo[t], sc0), _mm256_mullo_epi32(shi[t], sc1)));
        }
        UNROLL for (int p = 0; p < 4; p++) {
            const __m256i mp = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(g + 96 + 16 * p))); /* m_2p, m_2p+1 */
            const __m256i m0 = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(mp, 0xA0), 0xA0);    /* m_2p twice */
            const __m256i m1 = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(mp, 0xF5), 0xF5);    /* m_2p+1 twice */
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = ((const block_q8_K *)(act + (size_t)t * as) + i)->bsums + 4 * p;
                msum[t] = _mm256_dpwssd_epi32(msum[t], m0, rp_bcast32((const int8_t *)bs));
                msum[t] = _mm256_dpwssd_epi32(msum[t], m1, rp_bcast32((const int8_t *)(bs + 2)));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16)));
        UNROLL for (int t = 0; t < NT; t++) {
            const __m256 dx = _mm256_set1_ps(((const block_q8_K *)(act + (size_t)t * as) + i)->d);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(msum[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q6_Kx8: the AVX2 kernel's 6-bit decode; per unit (sub-blocks 2u, 2u+1) 4 vpdpbusd per sub-block and
 * token give sum q a (<= 16 * 63 * 128), times the int8 scale with vpmulld; the -32 enters as one
 * vpdpwssd of (-32 sc_2u, -32 sc_2u+1) with (bsums[2u], bsums[2u+1]) per unit (all exact in int32).
 * AVX2 per unit and token: 8 vpmaddubsw + 4 vpaddw + 5 vpmaddwd + 5 vpaddd (2 tokens per pass); here
 * 8 vpdpbusd + 2 vpmulld + 2 vpaddd + 1 vpdpwssd (4 tokens per pass). */
A512 XK void rp_q6_Kx8_k(const uint8_t *pw, const uint8_t *act, size_t as, const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 1680;
        __m256i isum[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
        for (int u = 0; u < 8; u++) {
            /* the next super-block column, a quarter of it per unit */
            const char *pf = (const char *)g + 1680 + 256 * u;
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 64, _MM_HINT_T0);
            _mm_prefetch(pf + 128, _MM_HINT_T0);
            _mm_prefetch(pf + 192, _MM_HINT_T0);
            __m256i sA[G4_RP_MAXT], sB[G4_RP_MAXT];
            UNROLL for (int t = 0; t < NT; t++) sA[t] = sB[t] = _mm256_setzero_si256();
            UNROLL for (int h = 0; h < 2; h++) {
                const __m256i hb = load256(g + 1168 + 64 * u + 32 * h);
                const __m256i v0 = load256(g + 144 + 128 * u + 64 * h), v1 = load256(g + 144 + 128 * u + 64 * h + 32);
                const __m256i qa0 = _mm256_or_si256(_mm256_and_si256(v0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
                const __m256i qb0 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                                                    _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
                const __m256i qa1 = _mm256_or_si256(_mm256_and_si256(v1, m4), _mm256_and_si256(hb, m30));
                const __m256i qb1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4),
                                                    _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
                UNROLL for (int t = 0; t < NT; t++) {
                    const int8_t *a = ((const block_q8_K *)(act + (size_t)t * as) + i)->qs + 32 * u + 8 * h;
                    sA[t] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(sA[t], qa0, rp_bcast32(a)), qa1, rp_bcast32(a + 4));
                    sB[t] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(sB[t], qb0, rp_bcast32(a + 16)), qb1, rp_bcast32(a + 20));
                }
            }
            const __m256i sp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g + 16 + 16 * u))); /* sc_2u, sc_2u+1 */
            const __m256i scA = _mm256_srai_epi32(_mm256_slli_epi32(sp, 16), 16), scB = _mm256_srai_epi32(sp, 16);
            const __m256i sp32 = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sp, 5)); /* -32 sc: |.| <= 4096 */
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = ((const block_q8_K *)(act + (size_t)t * as) + i)->bsums + 2 * u;
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_mullo_epi32(sA[t], scA), _mm256_mullo_epi32(sB[t], scB)));
                isum[t] = _mm256_dpwssd_epi32(isum[t], sp32, rp_bcast32((const int8_t *)bs));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        UNROLL for (int t = 0; t < NT; t++) {
            const __m256 dx = _mm256_set1_ps(((const block_q8_K *)(act + (size_t)t * as) + i)->d);
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(isum[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* y rows are 8 floats apart within a token; ldy between tokens. F16x8 / F32x8 keep the AVX2 kernels. */
#define RP_DRIVER(fname, kern)                                                                       \
    A512 void fname(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) { \
        switch (nt) {                                                                              \
        case 4: kern(pw, act, as, 4, y, ldy, n); break;                                            \
        case 3: kern(pw, act, as, 3, y, ldy, n); break;                                            \
        case 2: kern(pw, act, as, 2, y, ldy, n); break;                                            \
        case 1: kern(pw, act, as, 1, y, ldy, n); break;                                            \
        default: break;                                                                            \
        }                                                                                          \
    }
RP_DRIVER(KNAME(g4_rp_gemm_q4_0x8), rp_q4_0x8_k)
RP_DRIVER(KNAME(g4_rp_gemm_q8_0x8), rp_q8_0x8_k)
RP_DRIVER(KNAME(g4_rp_gemm_q4_Kx8), rp_q4_Kx8_k)
RP_DRIVER(KNAME(g4_rp_gemm_q6_Kx8), rp_q6_Kx8_k)

/* two groups (16 rows, the second gb bytes after the first), up to G4_RP_MAXT16 tokens */
#define RP_DRIVER16(fname, kern)                                                                     \
    A512 void fname(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) { \
        switch (nt) {                                                                              \
        case 8: kern(pw, gb, act, as, 8, y, ldy, n); break;                                        \
        case 7: kern(pw, gb, act, as, 7, y, ldy, n); break;                                        \
        case 6: kern(pw, gb, act, as, 6, y, ldy, n); break;                                        \
        case 5: kern(pw, gb, act, as, 5, y, ldy, n); break;                                        \
        case 4: kern(pw, gb, act, as, 4, y, ldy, n); break;                                        \
        case 3: kern(pw, gb, act, as, 3, y, ldy, n); break;                                        \
        case 2: kern(pw, gb, act, as, 2, y, ldy, n); break;                                        \
        case 1: kern(pw, gb, act, as, 1, y, ldy, n); break;                                        \
        default: break;                                                                            \
        }                                                                                          \
    }
RP_DRIVER16(KNAME(g4_rp_gemm16_q4_0x8), rp_q4_0x16_k)
RP_DRIVER16(KNAME(g4_rp_gemm16_q8_0x8), rp_q8_0x16_k)

/* the k-quant kernels hold 5 (Q4_K) or 4 (Q6_K) accumulators per token: 4 tokens per pass */
#define RP_DRIVER16_4(fname, kern)                                                                   \
    A512 void fname(const uint8_t *pw, size_t gb, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) { \
        for (int t0 = 0; t0 < nt; t0 += 4, act += 4 * as, y += 4 * ldy)                            \
            switch (nt - t0 < 4 ? nt - t0 : 4) {                                                   \
            case 4: kern(pw, gb, act, as, 4, y, ldy, n); break;                                    \
            case 3: kern(pw, gb, act, as, 3, y, ldy, n); break;                                    \
            case 2: kern(pw, gb, act, as, 2, y, ldy, n); break;                                    \
            case 1: kern(pw, gb, act, as, 1, y, ldy, n); break;                                    \
            default: break;                                                                        \
            }                                                                                      \
    }
RP_DRIVER16_4(KNAME(g4_rp_gemm16_q4_Kx8), rp_q4_Kx16_k)
RP_DRIVER16_4(KNAME(g4_rp_gemm16_q6_Kx8), rp_q6_Kx16_k)

#endif /* __x86_64__ */
