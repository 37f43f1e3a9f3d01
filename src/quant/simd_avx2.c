/* AVX2 + FMA + F16C kernels (x86-64). Each function carries its own target attribute, so the file
 * builds with the generic flags; g4_types_init installs them only when g4_cpu_has_avx2() says so.
 * Contracts and the scalar references: see simd.h. blocks.h turns floating-point contraction off
 * for this file too, so the scalar float epilogues below round exactly like the references. */
#include "quant/simd.h"

#if defined(__x86_64__)

#include "quant/blocks.h"
#include "quant/repack.h"
#include "util/util.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
/* gcc -O2 does not unroll the short fixed loops over accumulators: force it, so they stay in registers */
#define UNROLL _Pragma("GCC unroll 8")

int g4_cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned fma = 1u << 12, osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((c & (fma | osxsave | avx | f16c)) != (fma | osxsave | avx | f16c)) return 0;
    unsigned xlo, xhi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(xlo), "=d"(xhi) : "c"(0)); /* xgetbv(0) */
    (void)xhi;
    if ((xlo & 6) != 6) return 0; /* XMM and YMM state saved by the OS */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1; /* AVX2 */
}

/* ---- helpers ---------------------------------------------------------------------------------- */

AVX2 static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

AVX2 static inline float h2f(g4_half h) { return _cvtsh_ss(h); }

AVX2 static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31) */
AVX2 static inline __m256i nibbles32(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* byte j = 0xFF if bit j of x is set, else 0 */
AVX2 static inline __m256i bits32(uint32_t x) {
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* signed int8 x signed int8, 32 pairs -> 8 int32 partial sums (exact: |x| <= 128, |y| <= 127) */
AVX2 static inline __m256i dot_i8(__m256i x, __m256i y) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* unsigned (< 128) x signed int8, 32 pairs -> 8 int32 partial sums */
AVX2 static inline __m256i dot_u8(__m256i u, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

/* ---- 32-value blocks against Q8_0 / Q8_1 --------------------------------------------------------- */

AVX2 float g4_dot_q_q8_0_q8_0_avx2(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *a = w, *b = xq;
    const int64_t nb = n / QK8_0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256i p0 = dot_i8(load256(a[i].qs), load256(b[i].qs));
        const __m256i p1 = dot_i8(load256(a[i + 1].qs), load256(b[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i + 1].d) * h2f(b[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i p0 = dot_i8(load256(a[i].qs), load256(b[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

AVX2 float g4_dot_q_q4_0_q8_0_avx2(const void *w, const void *xq, int64_t n) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = xq;
    const int64_t nb = n / QK8_0;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const __m256i x0 = _mm256_sub_epi8(nibbles32(a[i].qs), off);
        const __m256i x1 = _mm256_sub_epi8(nibbles32(a[i + 1].qs), off);
        const __m256i p0 = dot_i8(x0, load256(b[i].qs));
        const __m256i p1 = dot_i8(x1, load256(b[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i + 1].d) * h2f(b[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        const __m256i p0 = dot_i8(_mm256_sub_epi8(nibbles32(a[i].qs), off), load256(b[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

AVX2 float g4_dot_q_q5_0_q8_0_avx2(const void *w, const void *xq, int64_t n) {
    const block_q5_0 *a = w;
    const block_q8_0 *b = xq;
    const int64_t nb = n / QK8_0;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        /* q - 16: the nibble where bit 4 is set, else nibble - 16 (= nibble | 0xF0 as int8) */
        const __m256i x = _mm256_or_si256(nibbles32(a[i].qs), _mm256_andnot_si256(bits32(qh), _mm256_set1_epi8((char)0xF0)));
        const __m256i p = dot_i8(x, load256(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum_ps(acc);
}

AVX2 float g4_dot_q_q4_1_q8_1_avx2(const void *w, const void *xq, int64_t n) {
    const block_q4_1 *a = w;
    const block_q8_1 *b = xq;
    const int64_t nb = n / QK8_1;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const __m256i p = dot_u8(nibbles32(a[i].qs), load256(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p), acc);
        summ += h2f(a[i].m) * h2f(b[i].s);
    }
    return hsum_ps(acc) + summ;
}

AVX2 float g4_dot_q_q5_1_q8_1_avx2(const void *w, const void *xq, int64_t n) {
    const block_q5_1 *a = w;
    const block_q8_1 *b = xq;
    const int64_t nb = n / QK8_1;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        const __m256i x = _mm256_or_si256(nibbles32(a[i].qs), _mm256_and_si256(bits32(qh), _mm256_set1_epi8(0x10)));
        const __m256i p = dot_u8(x, load256(b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), _mm256_cvtepi32_ps(p), acc);
        summ += h2f(a[i].m) * h2f(b[i].s);
    }
    return hsum_ps(acc) + summ;
}

/* ---- k-quants against Q8_K: exact integer sums per super-block, scalar float epilogue ------------ */

/* The 8 six-bit scales (bytes 0..7 of the result) and mins (bytes 8..15) of a Q4_K / Q5_K super-block,
 * g4_scale_min_k4 for j = 0..7 done four bytes at a time: q[0..3] hold scales 0..3 (low 6 bits) and
 * the top bits of scales 4..7; q[4..7] mins 0..3 and the top bits of mins 4..7; q[8..11] the low
 * nibbles of scales 4..7 (low) and mins 4..7 (high). */
AVX2 static inline __m128i scales_mins_k4(const uint8_t *q) {
    uint32_t u[3], r[4];
    memcpy(u, q, 12);
    r[0] = u[0] & 0x3f3f3f3fu;
    r[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4;
    r[2] = u[1] & 0x3f3f3f3fu;
    r[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;
    return _mm_loadu_si128((const __m128i *)r);
}

/* sum over the 8 sub-blocks of m[s] * (bsums[2s] + bsums[2s+1]), m in bytes 8..15 of sm */
AVX2 static inline int mins_dot_bsums(__m128i sm, const int16_t *bsums) {
    const __m128i bs = _mm_loadu_si128((const __m128i *)bsums);      /* bsums 0..7 */
    const __m128i bs2 = _mm_loadu_si128((const __m128i *)(bsums + 8)); /* bsums 8..15 */
    const __m128i pair = _mm_hadd_epi16(bs, bs2); /* 8 sums of adjacent pairs (|.| <= 2*16*128: no wrap) */
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm));
    __m128i s = _mm_madd_epi16(m16, pair);
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* int16 scale s of sc16 (8 scales as int16, in both 128-bit lanes) broadcast to all 16 lanes */
#define BCAST16(sc16, s) _mm256_shuffle_epi8((sc16), _mm256_set1_epi16((short)(0x0100 + 0x0202 * (s))))

AVX2 float g4_dot_q_q4_K_q8_K_avx2(const void *w, const void *xq, int64_t n) {
    const block_q4_K *a = w;
    const block_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i sm = scales_mins_k4(a[i].scales);
        const int summ = mins_dot_bsums(sm, b[i].bsums);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        __m256i acc = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < 4; c++) {
            const __m256i q = load256(a[i].qs + 32 * c);
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i plo = _mm256_maddubs_epi16(lo, load256(b[i].qs + 64 * c));
            const __m256i phi = _mm256_maddubs_epi16(hi, load256(b[i].qs + 64 * c + 32));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, BCAST16(sc16, 2 * c)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, BCAST16(sc16, 2 * c + 1)));
        }
        const int sumi = hsum_i32(acc);
        const float dy = b[i].d;
        sum += dy * h2f(a[i].d) * (float)sumi - dy * h2f(a[i].dmin) * (float)summ;
    }
    return sum;
}

AVX2 float g4_dot_q_q5_K_q8_K_avx2(const void *w, const void *xq, int64_t n) {
    const block_q5_K *a = w;
    const block_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i sm = scales_mins_k4(a[i].scales);
        const int summ = mins_dot_bsums(sm, b[i].bsums);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        __m256i qh = load256(a[i].qh), acc = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < 4; c++) {
            const __m256i q = load256(a[i].qs + 32 * c);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4);
            qh = _mm256_srli_epi16(qh, 2);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            const __m256i plo = _mm256_maddubs_epi16(lo, load256(b[i].qs + 64 * c));
            const __m256i phi = _mm256_maddubs_epi16(hi, load256(b[i].qs + 64 * c + 32));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, BCAST16(sc16, 2 * c)));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, BCAST16(sc16, 2 * c + 1)));
        }
        const int sumi = hsum_i32(acc);
        const float dy = b[i].d;
        sum += dy * h2f(a[i].d) * (float)sumi - dy * h2f(a[i].dmin) * (float)summ;
    }
    return sum;
}

/* Q6_K: q - 32 with q in 0..63: sum sc * (q . y) - 32 * sum sc * bsums, both exact in int32 */
AVX2 float g4_dot_q_q6_K_q8_K_avx2(const void *w, const void *xq, int64_t n) {
    const block_q6_K *a = w;
    const block_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *sc = a[i].scales;
        const int8_t *y = b[i].qs;
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i qa = load256(a[i].ql + 64 * h), qb = load256(a[i].ql + 64 * h + 32);
            const __m256i hb = load256(a[i].qh + 32 * h);
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
            v[1] = _mm256_or_si256(_mm256_and_si256(qb, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
            UNROLL for (int g = 0; g < 4; g++) {
                const int s = 8 * h + 2 * g; /* sub-blocks s (low 16 values) and s+1 (high 16) */
                const __m256i p = _mm256_maddubs_epi16(v[g], load256(y + 128 * h + 32 * g));
                const __m256i scv = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(sc[s])),
                                                            _mm_set1_epi16(sc[s + 1]), 1);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
            }
        }
        /* bias: 32 * sum over the 16 sub-blocks of sc[s] * bsums[s] */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const __m256i bias = _mm256_madd_epi16(sc16, load256(b[i].bsums));
        acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(bias, 5));
        const int sumi = hsum_i32(acc);
        sum += b[i].d * h2f(a[i].d) * (float)sumi;
    }
    return sum;
}

/* ---- one weight row against up to 4 activation rows (prefill): the weight blocks are decoded once,
 * and every activation row sees exactly the operations of the single-row kernel above, in the same
 * order (so the results are bit-identical to it). K is a compile-time constant after inlining. ---- */

#define MULTI_DRIVER(name, kern)                                                                    \
    AVX2 void name(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n) {       \
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

/* Q8_0 / Q4_0: 2 accumulators per activation row (even / odd blocks), as the single-row kernels */
#define LEGACY_MULTI(fname, block_t, WLOAD)                                                          \
    AVX2 static inline __attribute__((always_inline)) void fname(const void *w, const uint8_t *x, size_t xs,  \
                                                                 const int K, float *out, int64_t n) { \
        const block_t *a = w;                                                                      \
        const int64_t nb = n / QK8_0;                                                              \
        const __m256i off = _mm256_set1_epi8(8);                                                   \
        (void)off;                                                                                 \
        __m256 acc0[4], acc1[4];                                                                   \
        UNROLL for (int t = 0; t < K; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();                       \
        int64_t i = 0;                                                                             \
        for (; i + 1 < nb; i += 2) {                                                               \
            const __m256i w0 = WLOAD(a[i]), w1 = WLOAD(a[i + 1]);                                  \
            const __m256i aw0 = _mm256_sign_epi8(w0, w0), aw1 = _mm256_sign_epi8(w1, w1);          \
            const float da0 = h2f(a[i].d), da1 = h2f(a[i + 1].d);                                  \
            UNROLL for (int t = 0; t < K; t++) {                                                          \
                const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)t * xs);                    \
                const __m256i p0 = _mm256_madd_epi16(                                              \
                    _mm256_maddubs_epi16(aw0, _mm256_sign_epi8(load256(b[i].qs), w0)), _mm256_set1_epi16(1)); \
                const __m256i p1 = _mm256_madd_epi16(                                              \
                    _mm256_maddubs_epi16(aw1, _mm256_sign_epi8(load256(b[i + 1].qs), w1)), _mm256_set1_epi16(1)); \
                acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(da0 * h2f(b[i].d)), _mm256_cvtepi32_ps(p0), acc0[t]); \
                acc1[t] = _mm256_fmadd_ps(_mm256_set1_ps(da1 * h2f(b[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1[t]); \
            }                                                                                      \
        }                                                                                          \
        for (; i < nb; i++) {                                                                      \
            const __m256i w0 = WLOAD(a[i]);                                                        \
            const float da0 = h2f(a[i].d);                                                         \
            UNROLL for (int t = 0; t < K; t++) {                                                          \
                const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)t * xs);                    \
                const __m256i p0 = dot_i8(w0, load256(b[i].qs));                                   \
                acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(da0 * h2f(b[i].d)), _mm256_cvtepi32_ps(p0), acc0[t]); \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int t = 0; t < K; t++) out[t] = hsum_ps(_mm256_add_ps(acc0[t], acc1[t]));             \
    }

#define WLOAD_Q8_0(blk) load256((blk).qs)
#define WLOAD_Q4_0(blk) _mm256_sub_epi8(nibbles32((blk).qs), off)
LEGACY_MULTI(q8_0_xk, block_q8_0, WLOAD_Q8_0)
LEGACY_MULTI(q4_0_xk, block_q4_0, WLOAD_Q4_0)
MULTI_DRIVER(g4_dot_q_multi_q8_0_q8_0_avx2, q8_0_xk)
MULTI_DRIVER(g4_dot_q_multi_q4_0_q8_0_avx2, q4_0_xk)

AVX2 static inline __attribute__((always_inline)) void q4_K_xk(const void *w, const uint8_t *x, size_t xs, const int K,
                                                               float *out, int64_t n) {
    const block_q4_K *a = w;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const __m128i sm = scales_mins_k4(a[i].scales);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        __m256i acc[4];
        UNROLL for (int t = 0; t < K; t++) acc[t] = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < 4; c++) {
            const __m256i q = load256(a[i].qs + 32 * c);
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i slo = BCAST16(sc16, 2 * c), shi = BCAST16(sc16, 2 * c + 1);
            UNROLL for (int t = 0; t < K; t++) {
                const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
                const __m256i plo = _mm256_maddubs_epi16(lo, load256(b[i].qs + 64 * c));
                const __m256i phi = _mm256_maddubs_epi16(hi, load256(b[i].qs + 64 * c + 32));
                acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(plo, slo));
                acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(phi, shi));
            }
        }
        const float d = h2f(a[i].d), dmin = h2f(a[i].dmin);
        UNROLL for (int t = 0; t < K; t++) {
            const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
            const int summ = mins_dot_bsums(sm, b[i].bsums);
            const int sumi = hsum_i32(acc[t]);
            const float dy = b[i].d;
            sum[t] += dy * d * (float)sumi - dy * dmin * (float)summ;
        }
    }
    UNROLL for (int t = 0; t < K; t++) out[t] = sum[t];
}
MULTI_DRIVER(g4_dot_q_multi_q4_K_q8_K_avx2, q4_K_xk)

AVX2 static inline __attribute__((always_inline)) void q6_K_xk(const void *w, const uint8_t *x, size_t xs, const int K,
                                                               float *out, int64_t n) {
    const block_q6_K *a = w;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *sc = a[i].scales;
        __m256i acc[4];
        UNROLL for (int t = 0; t < K; t++) acc[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i qa = load256(a[i].ql + 64 * h), qb = load256(a[i].ql + 64 * h + 32);
            const __m256i hb = load256(a[i].qh + 32 * h);
            __m256i v[4];
            v[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
            v[1] = _mm256_or_si256(_mm256_and_si256(qb, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
            v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
            v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
            UNROLL for (int g = 0; g < 4; g++) {
                const int s = 8 * h + 2 * g;
                const __m256i scv = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(sc[s])),
                                                            _mm_set1_epi16(sc[s + 1]), 1);
                UNROLL for (int t = 0; t < K; t++) {
                    const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
                    const __m256i p = _mm256_maddubs_epi16(v[g], load256(b[i].qs + 128 * h + 32 * g));
                    acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(p, scv));
                }
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        const float d = h2f(a[i].d);
        UNROLL for (int t = 0; t < K; t++) {
            const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs);
            const __m256i bias = _mm256_madd_epi16(sc16, load256(b[i].bsums));
            const int sumi = hsum_i32(_mm256_sub_epi32(acc[t], _mm256_slli_epi32(bias, 5)));
            sum[t] += b[i].d * d * (float)sumi;
        }
    }
    UNROLL for (int t = 0; t < K; t++) out[t] = sum[t];
}
MULTI_DRIVER(g4_dot_q_multi_q6_K_q8_K_avx2, q6_K_xk)

/* ---- float types --------------------------------------------------------------------------------- */

AVX2 float g4_dot_q_f16_f16_avx2(const void *w_, const void *x_, int64_t n) {
    const uint16_t *w = w_, *x = x_;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        UNROLL for (int k = 0; k < 4; k++) {
            const __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8 * k)));
            const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8 * k)));
            acc[k] = _mm256_fmadd_ps(a, b, acc[k]);
        }
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        acc[0] = _mm256_fmadd_ps(a, b, acc[0]);
    }
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += h2f(w[i]) * h2f(x[i]);
    return sum;
}

AVX2 static inline __m256 bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

AVX2 float g4_dot_q_bf16_bf16_avx2(const void *w_, const void *x_, int64_t n) {
    const uint16_t *w = w_, *x = x_;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        UNROLL for (int k = 0; k < 4; k++) acc[k] = _mm256_fmadd_ps(bf16x8(w + i + 8 * k), bf16x8(x + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(bf16x8(w + i), bf16x8(x + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += g4_bf16_to_fp32(w[i]) * g4_bf16_to_fp32(x[i]);
    return sum;
}

AVX2 float g4_dot_q_f32_f32_avx2(const void *w_, const void *x_, int64_t n) {
    const float *w = w_, *x = x_;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        UNROLL for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * k), _mm256_loadu_ps(x + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += w[i] * x[i];
    return sum;
}

/* ---- exact path (float32 activations) and dequantization ----------------------------------------- */

/* F16 -> F32 with F16C: exact for every finite and infinite half; a block of 8 holding a NaN is
 * converted by the scalar code instead (F16C quiets signalling NaNs, the reference keeps the bits). */
AVX2 void g4_to_float_f16_avx2(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i)));
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)))
            for (int k = 0; k < 8; k++) dst[i + k] = g4_fp16_to_fp32(s[i + k]);
        else
            _mm256_storeu_ps(dst + i, v);
    }
    for (; i < n; i++) dst[i] = g4_fp16_to_fp32(s[i]);
}

AVX2 float g4_dot_f32_f32_avx2(const void *w, const float *x, int64_t n) { return g4_dot_q_f32_f32_avx2(w, x, n); }

AVX2 float g4_dot_f32_f16_avx2(const void *w_, const float *x, int64_t n) {
    const uint16_t *w = w_;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        UNROLL for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8 * k))),
                                     _mm256_loadu_ps(x + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), acc[0]);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++) sum += h2f(w[i]) * x[i];
    return sum;
}

/* Q8_0 / Q4_0 against float32: each weight dequantized exactly as the reference ((float)q * d, a
 * plain multiply), then multiplied and summed with FMA in 8 lanes */
AVX2 static inline __m256 deq8(__m128i q8, __m256 d) { return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d); }

AVX2 static inline __m256 dot32_f32(__m256i q, __m256 d, const float *x, __m256 acc) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    acc = _mm256_fmadd_ps(deq8(lo, d), _mm256_loadu_ps(x), acc);
    acc = _mm256_fmadd_ps(deq8(_mm_unpackhi_epi64(lo, lo), d), _mm256_loadu_ps(x + 8), acc);
    acc = _mm256_fmadd_ps(deq8(hi, d), _mm256_loadu_ps(x + 16), acc);
    return _mm256_fmadd_ps(deq8(_mm_unpackhi_epi64(hi, hi), d), _mm256_loadu_ps(x + 24), acc);
}

AVX2 float g4_dot_f32_q8_0_avx2(const void *w, const float *x, int64_t n) {
    const block_q8_0 *a = w;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; i++) acc = dot32_f32(load256(a[i].qs), _mm256_set1_ps(h2f(a[i].d)), x + 32 * i, acc);
    return hsum_ps(acc);
}

AVX2 float g4_dot_f32_q4_0_avx2(const void *w, const float *x, int64_t n) {
    const block_q4_0 *a = w;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK4_0; i++)
        acc = dot32_f32(_mm256_sub_epi8(nibbles32(a[i].qs), off), _mm256_set1_ps(h2f(a[i].d)), x + 32 * i, acc);
    return hsum_ps(acc);
}

/* ---- activation quantizers (bit-identical to the scalar ones for finite inputs) ------------------- */

AVX2 static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 floats -> 32 int8: roundf(v * id) (half away from zero) clamped to [-127, 127], NaN -> 0.
 * Half away from zero as trunc(v + copysign(0.5 - 2^-25, v)): the sum rounds up to the next integer
 * exactly when |frac(v)| >= 0.5 (checked exhaustively for |v| < 2^23). Returns the int32 sum of the quants. */
AVX2 static inline int q8_row32(const float *x, float id, int8_t *out) {
    const __m256 vid = _mm256_set1_ps(id), sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.49999997f);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i q[4];
    UNROLL for (int k = 0; k < 4; k++) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid);
        __m256 r = _mm256_round_ps(_mm256_add_ps(v, _mm256_or_ps(_mm256_and_ps(v, sign), half)),
                                   _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
        r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
        q[k] = _mm256_cvtps_epi32(r);
    }
    const int s = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)out, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    return s;
}

AVX2 static inline float absmax32(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
    for (int k = 1; k < 4; k++) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    return hmax_ps(m);
}

AVX2 void g4_from_float_q8_0_avx2(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = absmax32(x) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        (void)q8_row32(x, id, y[i].qs);
    }
}

AVX2 void g4_from_float_q8_1_avx2(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = absmax32(x) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        const int sum = q8_row32(x, id, y[i].qs);
        y[i].s = g4_fp32_to_fp16((float)sum * d);
    }
}

/* Q8_K: ggml's scheme. The signed maximum is the first element of largest magnitude; the quants are
 * round-to-nearest-even of iscale * x (g4_nearest_int), saturated to [-128, 127] by the packs. */
AVX2 void g4_from_float_q8_K_avx2(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
        const float amax = hmax_ps(m);
        if (!(amax > 0.0f)) { /* zero block (or NaN): the scalar path decides */
            g4_from_float_q8_K(x, &y[i], QK_K);
            continue;
        }
        float max = amax;
        const __m256 va = _mm256_set1_ps(amax);
        for (int k = 0; k < QK_K; k += 8) {
            const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), va, _CMP_EQ_OQ));
            if (mask) {
                max = x[k + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) {
                const __m256 v = _mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + k + 8 * j)),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[j] = _mm256_cvtps_epi32(v);
            }
            const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            const __m256i qs = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), qs);
            /* two bsums: 16 int8 each */
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), qs); /* pairs, exact */
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));  /* quads */
            const __m128i lo = _mm256_castsi256_si128(s32), hi = _mm256_extracti128_si256(s32, 1);
            __m128i t = _mm_hadd_epi32(lo, hi); /* lo0+lo1, lo2+lo3, hi0+hi1, hi2+hi3 */
            t = _mm_hadd_epi32(t, t);          /* sum lo, sum hi, ... */
            y[i].bsums[k / 16] = (int16_t)_mm_cvtsi128_si32(t);
            y[i].bsums[k / 16 + 1] = (int16_t)_mm_extract_epi32(t, 1);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- repacked (8-row interleaved) layouts: see repack.h ------------------------------------------
 * Lane r of every 256-bit vector belongs to weight row r; 4 activation bytes are broadcast to all
 * lanes. Q4_0: unsigned nibbles (0..15) x activation, 8 maddubs results summed in int16 (|sum| <=
 * 8 * 2 * 15 * 128 = 30720: exact), then 8 * (sum of the activation block) subtracted in int32.
 * Q8_0: sign trick per 4-byte chunk, int32 sums. The float epilogue is the reference's
 * fmaf(d_w * d_x, sumi, acc), lane by lane: results bit-identical to repack.c. */

AVX2 static inline __attribute__((always_inline)) __m256i bcast32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

#ifndef Q4_0_PF
#define Q4_0_PF 16 /* prefetch distance in block columns (16 measured ~5% faster decode than 8 here) */
#endif
AVX2 static inline __attribute__((always_inline)) void rp_q4_0x8_k(const uint8_t *pw, const uint8_t *act, size_t as,
                                                                   const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK4_0;
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 144;
        _mm_prefetch((const char *)g + Q4_0_PF * 144, _MM_HINT_T0); /* Q4_0_PF columns ahead: 2.25 lines each */
        _mm_prefetch((const char *)g + Q4_0_PF * 144 + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)g + Q4_0_PF * 144 + 128, _MM_HINT_T0);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        __m256i s[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 1") for (int c = 0; c < 4; c++) {
            const __m256i v = load256(g + 16 + 32 * c);
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            UNROLL for (int t = 0; t < NT; t++) {
                const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
                s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(lo, bcast32(a->qs + 4 * c)));
                s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(hi, bcast32(a->qs + 16 + 4 * c)));
            }
        }
        UNROLL for (int t = 0; t < NT; t++) {
            const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
            const __m256i si = _mm256_sub_epi32(_mm256_madd_epi16(s[t], ones), _mm256_set1_epi32(8 * a->s));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d)), _mm256_cvtepi32_ps(si), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

#ifndef Q8_0_PF
#define Q8_0_PF 4 /* prefetch distance in block columns */
#endif
AVX2 static inline __attribute__((always_inline)) void rp_q8_0x8_k(const uint8_t *pw, const uint8_t *act, size_t as,
                                                                   const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK8_0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 272;
        UNROLL for (int k = 0; k < 5; k++) _mm_prefetch((const char *)g + Q8_0_PF * 272 + 64 * k, _MM_HINT_T0);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        __m256i s[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 1") for (int c = 0; c < 8; c++) {
            const __m256i v = load256(g + 16 + 32 * c);
            const __m256i av = _mm256_sign_epi8(v, v);
            UNROLL for (int t = 0; t < NT; t++) {
                const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
                const __m256i p = _mm256_maddubs_epi16(av, _mm256_sign_epi8(bcast32(a->qs + 4 * c), v));
                s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p, ones));
            }
        }
        UNROLL for (int t = 0; t < NT; t++) {
            const block_q8p *a = (const block_q8p *)(act + (size_t)t * as) + i;
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d)), _mm256_cvtepi32_ps(s[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q4_Kx8: per pair of sub-blocks, 8 chunks of (8 rows x 4 bytes); unsigned nibbles x activations
 * summed in int16 per sub-block (|sum| <= 8 * 2 * 15 * 128 = 30720), then times the sub-block scale
 * (both int16 halves of lane r) with madd: isum in int32, exact. Mins: (m_2p, m_2p+1) pairs of lane r
 * times the activation sums of the two sub-blocks, madd. */
AVX2 static inline __attribute__((always_inline)) __m256i dup16(__m256i x32) {
    return _mm256_or_si256(x32, _mm256_slli_epi32(x32, 16));
}

AVX2 static inline __attribute__((always_inline)) void rp_q4_Kx8_k(const uint8_t *pw, const uint8_t *act, size_t as,
                                                                   const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 1184;
        __m256i isum[G4_RP_MAXT], msum[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 1") for (int p = 0; p < 4; p++) {
            /* the next super-block column, a quarter per pair (see Q6_Kx8) */
            UNROLL for (int k = 0; k < 5; k++) _mm_prefetch((const char *)g + 1184 + 320 * p + 64 * k, _MM_HINT_T0);
            __m256i slo[G4_RP_MAXT], shi[G4_RP_MAXT];
            UNROLL for (int t = 0; t < NT; t++) slo[t] = shi[t] = _mm256_setzero_si256();
            const uint8_t *q = g + 160 + 256 * p;
            /* not unrolled: unrolled, gcc turns the int16 accumulation chains into trees over all 8
             * chunks and spills most of the partial products */
            _Pragma("GCC unroll 1") for (int c = 0; c < 8; c++) {
                const __m256i v = load256(q + 32 * c);
                const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                UNROLL for (int t = 0; t < NT; t++) {
                    const int8_t *a = ((const block_q8_K *)(act + (size_t)t * as) + i)->qs + 64 * p + 4 * c;
                    slo[t] = _mm256_add_epi16(slo[t], _mm256_maddubs_epi16(lo, bcast32(a)));
                    shi[t] = _mm256_add_epi16(shi[t], _mm256_maddubs_epi16(hi, bcast32(a + 32)));
                }
            }
            int64_t s0, s1;
            memcpy(&s0, g + 32 + 16 * p, 8);
            memcpy(&s1, g + 40 + 16 * p, 8);
            const __m256i sc0 = dup16(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(s0)));
            const __m256i sc1 = dup16(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(s1)));
            UNROLL for (int t = 0; t < NT; t++)
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(slo[t], sc0), _mm256_madd_epi16(shi[t], sc1)));
        }
        /* the mins after the quants: fewer registers live in the loop above */
        UNROLL for (int p = 0; p < 4; p++) {
            const __m256i mp = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(g + 96 + 16 * p)));
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = ((const block_q8_K *)(act + (size_t)t * as) + i)->bsums + 4 * p;
                const uint32_t b0 = (uint16_t)(bs[0] + bs[1]), b1 = (uint16_t)(bs[2] + bs[3]);
                msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(mp, _mm256_set1_epi32((int)(b0 | b1 << 16))));
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

/* Q6_Kx8: per unit of 32 elements (sub-blocks 2u, 2u+1) and half h, two nibble chunks get their top bits
 * from one vector of bit pairs; 6-bit unsigned q x activation, two maddubs summed in int16 (<= 2 * 2 *
 * 63 * 128 = 32256), times the int8 scale with madd; minus 32 * sum(sc * bsums) at the end: exact. */
AVX2 static inline __attribute__((always_inline)) void rp_q6_Kx8_k(const uint8_t *pw, const uint8_t *act, size_t as,
                                                                   const int NT, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[G4_RP_MAXT];
    UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *g = pw + (size_t)i * 1680;
        __m256i isum[G4_RP_MAXT], msum[G4_RP_MAXT];
        UNROLL for (int t = 0; t < NT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
        for (int u = 0; u < 8; u++) {
            /* the next super-block column, a quarter of it per unit: the loop is long enough per byte
             * that the hardware prefetcher alone falls behind */
            const char *pf = (const char *)g + 1680 + 256 * u;
            _mm_prefetch(pf, _MM_HINT_T0);
            _mm_prefetch(pf + 64, _MM_HINT_T0);
            _mm_prefetch(pf + 128, _MM_HINT_T0);
            _mm_prefetch(pf + 192, _MM_HINT_T0);
            const __m256i sp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g + 16 + 16 * u)));
            const __m256i scA = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(sp, 0xA0), 0xA0);
            const __m256i scB = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(sp, 0xF5), 0xF5);
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
                    const __m256i sa = _mm256_add_epi16(_mm256_maddubs_epi16(qa0, bcast32(a)), _mm256_maddubs_epi16(qa1, bcast32(a + 4)));
                    const __m256i sb = _mm256_add_epi16(_mm256_maddubs_epi16(qb0, bcast32(a + 16)), _mm256_maddubs_epi16(qb1, bcast32(a + 20)));
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(sa, scA), _mm256_madd_epi16(sb, scB)));
                }
            }
            UNROLL for (int t = 0; t < NT; t++) {
                const int16_t *bs = ((const block_q8_K *)(act + (size_t)t * as) + i)->bsums + 2 * u;
                const uint32_t b = (uint16_t)bs[0] | (uint32_t)(uint16_t)bs[1] << 16;
                msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(sp, _mm256_set1_epi32((int)b)));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g));
        UNROLL for (int t = 0; t < NT; t++) {
            const __m256 dx = _mm256_set1_ps(((const block_q8_K *)(act + (size_t)t * as) + i)->d);
            const __m256i si = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(msum[t], 5));
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(si), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* F16x8 / F32x8: lane r = row r; 4 accumulators per token (k % 4), combined (a0 + a1) + (a2 + a3) */
#define FLOAT_RP(fname, LOADW, esz)                                                                  \
    AVX2 static inline __attribute__((always_inline)) void fname(const uint8_t *pw, const uint8_t *act, size_t as, \
                                                                 const int NT, float *y, size_t ldy, int64_t n) { \
        __m256 acc[2][4];                                                                          \
        UNROLL for (int t = 0; t < NT; t++) UNROLL for (int j = 0; j < 4; j++) acc[t][j] = _mm256_setzero_ps(); \
        const float *x0 = (const float *)act, *x1 = (const float *)(act + as);                      \
        for (int64_t k = 0; k < n; k += 4) {                                                       \
            _mm_prefetch((const char *)pw + (size_t)(k + 64) * 8 * esz, _MM_HINT_T0);              \
            if (esz == 4) _mm_prefetch((const char *)pw + (size_t)(k + 64) * 8 * esz + 64, _MM_HINT_T0); \
            UNROLL for (int j = 0; j < 4; j++) {                                                   \
                const __m256 w = LOADW(pw + (size_t)(k + j) * 8 * esz);                            \
                acc[0][j] = _mm256_fmadd_ps(w, _mm256_broadcast_ss(x0 + k + j), acc[0][j]);        \
                if (NT > 1) acc[1][j] = _mm256_fmadd_ps(w, _mm256_broadcast_ss(x1 + k + j), acc[1][j]); \
            }                                                                                      \
        }                                                                                          \
        UNROLL for (int t = 0; t < NT; t++)                                                        \
            _mm256_storeu_ps(y + (size_t)t * ldy, _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), \
                                                                 _mm256_add_ps(acc[t][2], acc[t][3]))); \
    }
#define LOADW_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOADW_F32(p) _mm256_loadu_ps((const float *)(p))
FLOAT_RP(rp_f16x8_k, LOADW_F16, 2)
FLOAT_RP(rp_f32x8_k, LOADW_F32, 4)

/* y rows are 8 floats apart within a token; ldy between tokens */
#define RP_DRIVER(fname, kern)                                                                       \
    AVX2 void fname(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) { \
        switch (nt) {                                                                              \
        case 4: kern(pw, act, as, 4, y, ldy, n); break;                                            \
        case 3: kern(pw, act, as, 3, y, ldy, n); break;                                            \
        case 2: kern(pw, act, as, 2, y, ldy, n); break;                                            \
        case 1: kern(pw, act, as, 1, y, ldy, n); break;                                            \
        default: break;                                                                            \
        }                                                                                          \
    }
RP_DRIVER(g4_rp_gemm_q4_0x8_avx2, rp_q4_0x8_k)
RP_DRIVER(g4_rp_gemm_q8_0x8_avx2, rp_q8_0x8_k)
/* the k-quant kernels keep too many accumulators live for 4 tokens in 16 registers: pairs of tokens */
#define RP_DRIVER2(fname, kern)                                                                      \
    AVX2 void fname(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) { \
        for (; nt >= 2; nt -= 2, act += 2 * as, y += 2 * ldy) kern(pw, act, as, 2, y, ldy, n);    \
        if (nt) kern(pw, act, as, 1, y, ldy, n);                                                   \
    }
RP_DRIVER(g4_rp_gemm_q4_Kx8_avx2, rp_q4_Kx8_k)
RP_DRIVER2(g4_rp_gemm_q6_Kx8_avx2, rp_q6_Kx8_k)
RP_DRIVER2(g4_rp_gemm_f16x8_avx2, rp_f16x8_k)
RP_DRIVER2(g4_rp_gemm_f32x8_avx2, rp_f32x8_k)

#endif /* __x86_64__ */
