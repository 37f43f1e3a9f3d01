/* AVX2 + FMA + F16C kernels of the TurboQuant records (turboquant.h): score (float query, float
 * codebook), score_i8 (int8 query, int8 codebook, integer dot products per 32 values), axpy, the
 * Walsh–Hadamard butterflies and the encoder.
 * Each function carries its own target attribute, so the file builds with the generic flags;
 * g4_tq_kernels_avx2() returns NULL on a CPU without AVX2. Shapes the vector code does not cover
 * (d < 32, and d < 128 for the 2-bit plane) go to the scalar reference.
 *
 * Contract against the scalar reference: fwht and encode_rotated are bit-identical for finite input (the same float
 * operations on the same pairs; the norm in the reference's 8-lane double order; round half to even).
 * score / score_i8 / axpy: the same products, only the order of the float sums differs (8 lanes,
 * several accumulators, FMA), so results agree to a few ulps times the sum of the absolute terms; the
 * integer block sums of score_i8 are exact in both. */
#include "kv/turboquant.h"
#include "kv/turboquant_internal.h"

#if defined(__x86_64__)

#include "quant/simd.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/exp_avx2.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float h2f(const uint8_t *b) {
    uint16_t h;
    memcpy(&h, b, 2);
    return _cvtsh_ss(h);
}

AVX2 static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the 32 indices (0..15, one per byte) of elements 32j .. 32j+31 of a tq record; d >= 32 for tq4,
 * d >= 128 for tq3 / tq2 */
AVX2 static inline __m256i idx32(const g4_tq_params *p, const uint8_t *rec, int j) {
    if (p->type == G4_TQ_TQ4) { /* byte m: element m (low nibble), m + 16 (high nibble) */
        const __m128i t = _mm_loadu_si128((const __m128i *)(rec + 16 * j));
        const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
        return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
    }
    /* 2-bit plane: 128-element groups of 32 bytes, element 32k + m of the group at byte m, bits 2k */
    const __m256i v = _mm256_loadu_si256((const __m256i *)(rec + 32 * (j >> 2)));
    const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * (j & 3))), _mm256_set1_epi8(3));
    if (p->type == G4_TQ_TQ2) return lo;
    /* 1-bit plane: bit i of the bitmap is bit 2 of element i */
    uint32_t bits;
    memcpy(&bits, rec + p->d / 4 + 4 * j, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i h = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    h = _mm256_cmpeq_epi8(_mm256_and_si256(h, sel), sel);
    return _mm256_or_si256(lo, _mm256_and_si256(h, _mm256_set1_epi8(4)));
}

static int vec_ok(const g4_tq_params *p) {
    if (p->type == G4_TQ_TQ4 || p->type == G4_TQ_Q8) return p->d >= 32;
    return p->d >= 128;
}

/* codebook lookup of 8 indices (int32 lanes) */
AVX2 static inline __m256 lut(__m256 lo, __m256 hi, __m256i i, int bits) {
    const __m256 a = _mm256_permutevar8x32_ps(lo, i);
    if (bits < 4) return a;
    const __m256 b = _mm256_permutevar8x32_ps(hi, i);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
}

/* the four runs of 8 indices of a 32-index vector, as int32 lanes */
#define SPLIT4(ix, i0, i1, i2, i3)                                                                                     \
    do {                                                                                                               \
        const __m128i l_ = _mm256_castsi256_si128(ix), h_ = _mm256_extracti128_si256(ix, 1);                           \
        i0 = _mm256_cvtepu8_epi32(l_);                                                                                 \
        i1 = _mm256_cvtepu8_epi32(_mm_srli_si128(l_, 8));                                                              \
        i2 = _mm256_cvtepu8_epi32(h_);                                                                                 \
        i3 = _mm256_cvtepu8_epi32(_mm_srli_si128(h_, 8));                                                              \
    } while (0)

AVX2 static inline __m256 i8x8_to_ps(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

AVX2 static float score_avx2(const g4_tq_params *p, const g4_tq_query *q, const uint8_t *rec) {
    if (!vec_ok(p)) return g4_tq_kernels_scalar()->score(p, q, rec);
    const int nb = p->d / 32;
    if (p->type == G4_TQ_Q8) {
        __m256 tot = _mm256_setzero_ps();
        for (int j = 0; j < nb; j++) {
            const uint8_t *blk = rec + 34 * j;
            const int8_t *k8 = (const int8_t *)(blk + 2);
            const float *r = q->rot + 32 * j;
            __m256 a = _mm256_mul_ps(i8x8_to_ps(k8), _mm256_loadu_ps(r));
            __m256 b = _mm256_mul_ps(i8x8_to_ps(k8 + 8), _mm256_loadu_ps(r + 8));
            a = _mm256_fmadd_ps(i8x8_to_ps(k8 + 16), _mm256_loadu_ps(r + 16), a);
            b = _mm256_fmadd_ps(i8x8_to_ps(k8 + 24), _mm256_loadu_ps(r + 24), b);
            tot = _mm256_fmadd_ps(_mm256_add_ps(a, b), _mm256_set1_ps(h2f(blk)), tot);
        }
        return hsum_ps(tot);
    }
    const float *cf = p->cb->cf;
    float cpad[16] = {0};
    memcpy(cpad, cf, (size_t)p->cb->n * sizeof *cf);
    const __m256 lo = _mm256_loadu_ps(cpad), hi = _mm256_loadu_ps(cpad + 8);
    const int bits = p->bits;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < nb; j++) {
        const __m256i ix = idx32(p, rec, j);
        __m256i i0, i1, i2, i3;
        SPLIT4(ix, i0, i1, i2, i3);
        const float *r = q->rot + 32 * j;
        a0 = _mm256_fmadd_ps(lut(lo, hi, i0, bits), _mm256_loadu_ps(r), a0);
        a1 = _mm256_fmadd_ps(lut(lo, hi, i1, bits), _mm256_loadu_ps(r + 8), a1);
        a2 = _mm256_fmadd_ps(lut(lo, hi, i2, bits), _mm256_loadu_ps(r + 16), a2);
        a3 = _mm256_fmadd_ps(lut(lo, hi, i3, bits), _mm256_loadu_ps(r + 24), a3);
    }
    const float s = h2f(rec + p->record_bytes - 2);
    return s * hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* Σ of the 32 products of int8 a and b (|a|, |b| <= 127) as 8 int32 lanes */
AVX2 static inline __m256i dot32_i8(__m256i a, __m256i b) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AVX2 static float score_i8_avx2(const g4_tq_params *p, const g4_tq_query *q, const uint8_t *rec) {
    if (!vec_ok(p)) return g4_tq_kernels_scalar()->score_i8(p, q, rec);
    const int nb = p->d / 32;
    __m256 acc = _mm256_setzero_ps();
    if (p->type == G4_TQ_Q8) {
        for (int j = 0; j < nb; j++) {
            const uint8_t *blk = rec + 34 * j;
            const __m256i k = _mm256_loadu_si256((const __m256i *)(blk + 2));
            const __m256i x = _mm256_loadu_si256((const __m256i *)(q->q8 + 32 * j));
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot32_i8(k, x)), _mm256_set1_ps(h2f(blk) * q->qscale[j]), acc);
        }
        return hsum_ps(acc);
    }
    int8_t tpad[16] = {0};
    memcpy(tpad, p->cb->c8, (size_t)p->cb->n);
    const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tpad));
    for (int j = 0; j < nb; j++) {
        const __m256i codes = _mm256_shuffle_epi8(tbl, idx32(p, rec, j));
        const __m256i x = _mm256_loadu_si256((const __m256i *)(q->q8 + 32 * j));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot32_i8(codes, x)), _mm256_set1_ps(q->qscale[j]), acc);
    }
    return h2f(rec + p->record_bytes - 2) * p->cb->unit8 * hsum_ps(acc);
}

AVX2 static void axpy_avx2(const g4_tq_params *p, const uint8_t *rec, float a, float *acc) {
    if (!vec_ok(p)) {
        g4_tq_kernels_scalar()->axpy(p, rec, a, acc);
        return;
    }
    const int nb = p->d / 32;
    if (p->type == G4_TQ_Q8) {
        for (int j = 0; j < nb; j++) {
            const uint8_t *blk = rec + 34 * j;
            const int8_t *k8 = (const int8_t *)(blk + 2);
            const __m256 w = _mm256_set1_ps(a * h2f(blk));
            float *o = acc + 32 * j;
            for (int k = 0; k < 4; k++)
                _mm256_storeu_ps(o + 8 * k, _mm256_fmadd_ps(i8x8_to_ps(k8 + 8 * k), w, _mm256_loadu_ps(o + 8 * k)));
        }
        return;
    }
    float cpad[16] = {0};
    memcpy(cpad, p->cb->cf, (size_t)p->cb->n * sizeof(float));
    const __m256 lo = _mm256_loadu_ps(cpad), hi = _mm256_loadu_ps(cpad + 8);
    const int bits = p->bits;
    const __m256 w = _mm256_set1_ps(a * h2f(rec + p->record_bytes - 2));
    for (int j = 0; j < nb; j++) {
        const __m256i ix = idx32(p, rec, j);
        __m256i i0, i1, i2, i3;
        SPLIT4(ix, i0, i1, i2, i3);
        float *o = acc + 32 * j;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(lut(lo, hi, i0, bits), w, _mm256_loadu_ps(o)));
        _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(lut(lo, hi, i1, bits), w, _mm256_loadu_ps(o + 8)));
        _mm256_storeu_ps(o + 16, _mm256_fmadd_ps(lut(lo, hi, i2, bits), w, _mm256_loadu_ps(o + 16)));
        _mm256_storeu_ps(o + 24, _mm256_fmadd_ps(lut(lo, hi, i3, bits), w, _mm256_loadu_ps(o + 24)));
    }
}

/* ---- butterflies and encoder ---------------------------------------------------------------------- */

/* the three in-register stages (h = 1, 2, 4) of one run of 8 */
AVX2 static inline __m256 fwht8(__m256 v) {
    __m256 w = _mm256_permute_ps(v, 0xB1); /* [1 0 3 2]: h = 1 */
    v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xAA);
    w = _mm256_permute_ps(v, 0x4E); /* [2 3 0 1]: h = 2 */
    v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xCC);
    w = _mm256_permute2f128_ps(v, v, 1); /* halves swapped: h = 4 */
    return _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xF0);
}

/* the stages h >= 8 of x <- H_u x (d >= 8), after fwht8 on every run of 8 */
AVX2 static void fwht_tail(float *x, int d) {
    for (int h = 8; h < d; h *= 2)
        for (int i = 0; i < d; i += 2 * h)
            for (int j = i; j < i + h; j += 8) {
                const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
                _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
                _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
            }
}

AVX2 static void rotate_avx2(const g4_tq_params *p, const float *x, float *y) {
    const int d = p->d;
    for (int i = 0; i < d; i += 8)
        _mm256_storeu_ps(y + i, fwht8(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(p->sign_scaled + i))));
    fwht_tail(y, d);
}

AVX2 static void unrotate_avx2(const g4_tq_params *p, const float *y, float *x) {
    const int d = p->d;
    for (int i = 0; i < d; i += 8) _mm256_storeu_ps(x + i, fwht8(_mm256_loadu_ps(y + i)));
    fwht_tail(x, d);
    for (int i = 0; i < d; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(p->sign_scaled + i)));
}

/* g4_tq_norm2_ref's order: lanes 0-3 and 4-7 of each run of 8 in two double accumulators */
AVX2 static double norm2_avx2(const float *y, int d) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0;
    for (int i = 0; i < d; i += 8) {
        const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(y + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(y + i + 4));
        a0 = _mm256_add_pd(a0, _mm256_mul_pd(lo, lo));
        a1 = _mm256_add_pd(a1, _mm256_mul_pd(hi, hi));
    }
    const __m256d s = _mm256_add_pd(a0, a1); /* s0+s4, s1+s5, s2+s6, s3+s7 */
    const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t));
}

AVX2 static void encode_rotated_avx2(const g4_tq_params *p, const float *y, uint8_t *rec) {
    const int d = p->d;
    if (d < 32) {
        g4_tq_kernels_scalar()->encode_rotated(p, y, rec);
        return;
    }
    if (p->type == G4_TQ_Q8) {
        const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        for (int j = 0; j < d / 32; j++) {
            uint8_t *blk = rec + 34 * j;
            __m256 v[4], m = _mm256_setzero_ps();
            for (int k = 0; k < 4; k++) {
                v[k] = _mm256_loadu_ps(y + 32 * j + 8 * k);
                m = _mm256_max_ps(m, _mm256_and_ps(v[k], absm));
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float dl = _mm_cvtss_f32(m4) / 127.0f, id = dl != 0 ? 1.0f / dl : 0.0f;
            uint16_t h = (uint16_t)_cvtss_sh(dl > 65504.0f ? 65504.0f : dl, _MM_FROUND_TO_NEAREST_INT);
            memcpy(blk, &h, 2);
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], _mm256_set1_ps(id)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
                q[k] = _mm256_cvtps_epi32(r);
            }
            const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            const __m256i o = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(blk + 2), o);
        }
        return;
    }
    if (p->type != G4_TQ_TQ4 && d < 128) {
        g4_tq_kernels_scalar()->encode_rotated(p, y, rec);
        return;
    }
    const double n2 = norm2_avx2(y, d);
    if (!(n2 > 0)) {
        g4_tq_finish_record(p, y, n2, 0, NULL, rec);
        return;
    }
    uint8_t idx[G4_TQ_MAX_DIM];
    const float zs = g4_tq_zscale(d, n2);
    {
        const g4_tq_codebook *cb = p->cb;
        const __m256 vzs = _mm256_set1_ps(zs);
        __m256 t[15];
        for (int k = 0; k + 1 < cb->n; k++) t[k] = _mm256_set1_ps(cb->tf[k]);
        for (int i = 0; i < d; i += 32) {
            __m256i c[4];
            for (int r = 0; r < 4; r++) {
                const __m256 z = _mm256_mul_ps(_mm256_loadu_ps(y + i + 8 * r), vzs);
                __m256i cnt = _mm256_setzero_si256(); /* #{boundaries < z}: each true compare is -1 */
                for (int k = 0; k + 1 < cb->n; k++)
                    cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(z, t[k], _CMP_GT_OQ)));
                c[r] = cnt;
            }
            const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
            _mm256_storeu_si256((__m256i *)(idx + i),
                                _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        }
    }
    if (p->type == G4_TQ_TQ4) { /* per 32: byte m = idx[m] | idx[m + 16] << 4 */
        for (int i = 0; i < d; i += 32) {
            const __m128i lo = _mm_loadu_si128((const __m128i *)(idx + i)),
                          hi = _mm_loadu_si128((const __m128i *)(idx + i + 16));
            _mm_storeu_si128((__m128i *)(rec + i / 2), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
        }
    } else {
        const __m256i three = _mm256_set1_epi8(3);
        for (int g = 0; g < d; g += 128) { /* 2-bit plane: byte m of the group = Σ_k (idx[32k + m] & 3) << 2k */
            __m256i v[4];
            for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_si256((const __m256i *)(idx + g + 32 * k));
            __m256i b = _mm256_and_si256(v[0], three);
            b = _mm256_or_si256(b, _mm256_slli_epi16(_mm256_and_si256(v[1], three), 2));
            b = _mm256_or_si256(b, _mm256_slli_epi16(_mm256_and_si256(v[2], three), 4));
            b = _mm256_or_si256(b, _mm256_slli_epi16(_mm256_and_si256(v[3], three), 6));
            _mm256_storeu_si256((__m256i *)(rec + g / 4), b);
            if (p->type == G4_TQ_TQ3)
                for (int k = 0; k < 4; k++) { /* 1-bit plane: bit 2 of each index, moved to bit 7 */
                    const uint32_t m = (uint32_t)_mm256_movemask_epi8(_mm256_slli_epi16(v[k], 5));
                    memcpy(rec + d / 4 + (g + 32 * k) / 8, &m, 4);
                }
        }
    }
    g4_tq_put_scale(p, rec, g4_tq_scale_of(p, y, n2, zs, idx));
}

/* ---- GQA kernels ---------------------------------------------------------------------------------- */

#define COMMA , /* a comma inside a macro argument */

/* the 8 int32 lanes of a summed */
AVX2 static inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* totals of 4 vectors of 8 int32 lanes: [Σa, Σb, Σc, Σd] */
AVX2 static inline __m128i hsum4_epi32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* Integer scores of 8, 4, 2 or 1 heads against one tq record: tot[h] = Σ_i q8_h,i · (c7[idx_i] + 64).
 * Written out head by head so that the accumulators stay in registers (compilers do not unroll the
 * head loop at -O2). */
#define TQ_STEP(h)                                                                                                     \
    a##h = _mm256_add_epi32(                                                                                           \
        a##h, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, _mm256_loadu_si256((const __m256i *)(q[h].q8 + o))), ones))
#define TQ_DOT(NAME, DECL, STEPS, SUMS)                                                                                \
    AVX2 static inline void NAME(const g4_tq_params *p, const g4_tq_gqa_query *q, const uint8_t *r, __m256i tbl,         \
                                 int32_t *tot) {                                                                       \
        const __m256i ones = _mm256_set1_epi16(1);                                                                     \
        __m256i DECL;                                                                                                  \
        const int nb = p->d / 32;                                                                                      \
        for (int b = 0; b < nb; b++) {                                                                                 \
            const __m256i codes = _mm256_shuffle_epi8(tbl, idx32(p, r, b));                                           \
            const int o = 32 * b;                                                                                      \
            STEPS;                                                                                                     \
        }                                                                                                              \
        SUMS;                                                                                                          \
    }
#define Z _mm256_setzero_si256()
TQ_DOT(gqa_tq_dot8, a0 = Z COMMA a1 = Z COMMA a2 = Z COMMA a3 = Z COMMA a4 = Z COMMA a5 = Z COMMA a6 = Z COMMA a7 = Z,
       (TQ_STEP(0), TQ_STEP(1), TQ_STEP(2), TQ_STEP(3), TQ_STEP(4), TQ_STEP(5), TQ_STEP(6), TQ_STEP(7)),
       (_mm_storeu_si128((__m128i *)tot, hsum4_epi32(a0, a1, a2, a3)),
        _mm_storeu_si128((__m128i *)(tot + 4), hsum4_epi32(a4, a5, a6, a7))))
TQ_DOT(gqa_tq_dot4, a0 = Z COMMA a1 = Z COMMA a2 = Z COMMA a3 = Z, (TQ_STEP(0), TQ_STEP(1), TQ_STEP(2), TQ_STEP(3)),
       _mm_storeu_si128((__m128i *)tot, hsum4_epi32(a0, a1, a2, a3)))
TQ_DOT(gqa_tq_dot2, a0 = Z COMMA a1 = Z, (TQ_STEP(0), TQ_STEP(1)), (tot[0] = hsum_epi32(a0), tot[1] = hsum_epi32(a1)))
TQ_DOT(gqa_tq_dot1, a0 = Z, TQ_STEP(0), tot[0] = hsum_epi32(a0))

/* float scores of 8, 4, 2 or 1 heads against one q8 record: Σ_blk δ_blk · Σ_i q8_h,i k_i (times qs_h after) */
#define Q8_STEP(h)                                                                                                     \
    a##h = _mm256_fmadd_ps(                                                                                            \
        _mm256_cvtepi32_ps(_mm256_madd_epi16(                                                                          \
            _mm256_maddubs_epi16(ak, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(q[h].q8 + 32 * b)), kv)),   \
            ones)),                                                                                                    \
        dl, a##h)
#define Q8_DOT(NAME, DECL, STEPS, SUMS)                                                                                \
    AVX2 static inline void NAME(const g4_tq_params *p, const g4_tq_gqa_query *q, const uint8_t *r, float *tot) {     \
        const __m256i ones = _mm256_set1_epi16(1);                                                                     \
        __m256 DECL;                                                                                                   \
        const int nb = p->d / 32;                                                                                      \
        for (int b = 0; b < nb; b++) {                                                                                 \
            const uint8_t *blk = r + 34 * b;                                                                           \
            const __m256i kv = _mm256_loadu_si256((const __m256i *)(blk + 2));                                        \
            const __m256i ak = _mm256_sign_epi8(kv, kv);                                                               \
            const __m256 dl = _mm256_set1_ps(h2f(blk));                                                                \
            STEPS;                                                                                                     \
        }                                                                                                              \
        SUMS;                                                                                                          \
    }
#define ZF _mm256_setzero_ps()
Q8_DOT(gqa_q8_dot8, a0 = ZF COMMA a1 = ZF COMMA a2 = ZF COMMA a3 = ZF COMMA a4 = ZF COMMA a5 = ZF COMMA a6 = ZF COMMA a7 = ZF,
       (Q8_STEP(0), Q8_STEP(1), Q8_STEP(2), Q8_STEP(3), Q8_STEP(4), Q8_STEP(5), Q8_STEP(6), Q8_STEP(7)),
       (tot[0] = hsum_ps(a0), tot[1] = hsum_ps(a1), tot[2] = hsum_ps(a2), tot[3] = hsum_ps(a3), tot[4] = hsum_ps(a4),
        tot[5] = hsum_ps(a5), tot[6] = hsum_ps(a6), tot[7] = hsum_ps(a7)))
Q8_DOT(gqa_q8_dot4, a0 = ZF COMMA a1 = ZF COMMA a2 = ZF COMMA a3 = ZF, (Q8_STEP(0), Q8_STEP(1), Q8_STEP(2), Q8_STEP(3)),
       (tot[0] = hsum_ps(a0), tot[1] = hsum_ps(a1), tot[2] = hsum_ps(a2), tot[3] = hsum_ps(a3)))
Q8_DOT(gqa_q8_dot2, a0 = ZF COMMA a1 = ZF, (Q8_STEP(0), Q8_STEP(1)), (tot[0] = hsum_ps(a0), tot[1] = hsum_ps(a1)))
Q8_DOT(gqa_q8_dot1, a0 = ZF, Q8_STEP(0), tot[0] = hsum_ps(a0))

AVX2 static void gqa_scores_avx2(const g4_tq_params *p, const g4_tq_gqa_query *q, int G, const uint8_t *rec,
                                 size_t stride, int n, float *sc, int sc_stride) {
    if (!vec_ok(p)) {
        g4_tq_kernels_scalar()->gqa_scores(p, q, G, rec, stride, n, sc, sc_stride);
        return;
    }
    if (p->type == G4_TQ_Q8) {
        float tot[8];
        for (int j = 0; j < n; j++) {
            const uint8_t *r = rec + (size_t)j * stride;
            for (int h0 = 0; h0 < G;) {
                const int left = G - h0, g = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
                const g4_tq_gqa_query *qh = q + h0;
                if (g == 8) gqa_q8_dot8(p, qh, r, tot);
                else if (g == 4) gqa_q8_dot4(p, qh, r, tot);
                else if (g == 2) gqa_q8_dot2(p, qh, r, tot);
                else gqa_q8_dot1(p, qh, r, tot);
                for (int h = 0; h < g; h++) sc[(size_t)(h0 + h) * sc_stride + j] = tot[h] * qh[h].qs;
                h0 += g;
            }
        }
        return;
    }
    uint8_t tpad[16];
    for (int k = 0; k < 16; k++) tpad[k] = (uint8_t)(k < p->cb->n ? p->c7[k] + 64 : 64);
    const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tpad));
    int32_t tot[8];
    for (int j = 0; j < n; j++) {
        const uint8_t *r = rec + (size_t)j * stride;
        const float su = h2f(r + p->record_bytes - 2) * p->unit7;
        for (int h0 = 0; h0 < G;) {
            const int left = G - h0, g = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            const g4_tq_gqa_query *qh = q + h0;
            if (g == 8) gqa_tq_dot8(p, qh, r, tbl, tot);
            else if (g == 4) gqa_tq_dot4(p, qh, r, tbl, tot);
            else if (g == 2) gqa_tq_dot2(p, qh, r, tbl, tot);
            else gqa_tq_dot1(p, qh, r, tbl, tot);
            for (int h = 0; h < g; h++)
                sc[(size_t)(h0 + h) * sc_stride + j] = (float)(tot[h] - 64 * qh[h].qsum) * (qh[h].qs * su);
            h0 += g;
        }
    }
}

#define GQA_TILE 8 /* records decoded at a time for the value accumulation (8 x 512 floats = 16 KiB) */

/* acc_h[c .. c+16) += Σ_j ws[h][j] · tile[j][c .. c+16) for 4, 2 or 1 heads (written out head by head so
 * that the 8 accumulators stay in registers) */
#define ACC_LOAD(h) a0_##h = _mm256_loadu_ps(acc[h] + c), a1_##h = _mm256_loadu_ps(acc[h] + c + 8)
#define ACC_STEP(h)                                                                                                    \
    w = _mm256_broadcast_ss(ws + (h) * GQA_TILE + j), a0_##h = _mm256_fmadd_ps(w, v0, a0_##h),                          \
    a1_##h = _mm256_fmadd_ps(w, v1, a1_##h)
#define ACC_STORE(h) _mm256_storeu_ps(acc[h] + c, a0_##h), _mm256_storeu_ps(acc[h] + c + 8, a1_##h)
#define GQA_ACC(NAME, DECL, LOADS, STEPS, STORES)                                                                      \
    AVX2 static inline void NAME(const float *tile, int d, int nt, const float *ws, float *const *acc) {             \
        for (int c = 0; c < d; c += 16) {                                                                              \
            __m256 DECL, w;                                                                                            \
            LOADS;                                                                                                     \
            for (int j = 0; j < nt; j++) {                                                                             \
                const __m256 v0 = _mm256_loadu_ps(tile + (size_t)j * d + c);                                           \
                const __m256 v1 = _mm256_loadu_ps(tile + (size_t)j * d + c + 8);                                       \
                STEPS;                                                                                                 \
            }                                                                                                          \
            STORES;                                                                                                    \
        }                                                                                                              \
    }
GQA_ACC(gqa_acc4, a0_0 COMMA a1_0 COMMA a0_1 COMMA a1_1 COMMA a0_2 COMMA a1_2 COMMA a0_3 COMMA a1_3,
        (ACC_LOAD(0), ACC_LOAD(1), ACC_LOAD(2), ACC_LOAD(3)), (ACC_STEP(0), ACC_STEP(1), ACC_STEP(2), ACC_STEP(3)),
        (ACC_STORE(0), ACC_STORE(1), ACC_STORE(2), ACC_STORE(3)))
GQA_ACC(gqa_acc2, a0_0 COMMA a1_0 COMMA a0_1 COMMA a1_1, (ACC_LOAD(0), ACC_LOAD(1)), (ACC_STEP(0), ACC_STEP(1)),
        (ACC_STORE(0), ACC_STORE(1)))
GQA_ACC(gqa_acc1, a0_0 COMMA a1_0, ACC_LOAD(0), ACC_STEP(0), ACC_STORE(0))

AVX2 static void gqa_values_avx2(const g4_tq_params *p, const uint8_t *rec, size_t stride, int n, const float *w,
                                 int w_stride, int G, float *acc, int acc_stride) {
    if (!vec_ok(p)) {
        g4_tq_kernels_scalar()->gqa_values(p, rec, stride, n, w, w_stride, G, acc, acc_stride);
        return;
    }
    const int d = p->d, nb = d / 32;
    _Alignas(32) float tile[GQA_TILE * G4_TQ_MAX_DIM];
    int8_t tpad[16] = {0};
    if (p->cb) memcpy(tpad, p->cb->c8, (size_t)p->cb->n);
    const __m256i tbl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tpad));
    const float unit8 = p->cb ? p->cb->unit8 : 1.0f;
    for (int j0 = 0; j0 < n; j0 += GQA_TILE) {
        const int nt = n - j0 < GQA_TILE ? n - j0 : GQA_TILE;
        float s[GQA_TILE];
        for (int j = 0; j < nt; j++) { /* decode: ŷ / (s · unit8) (tq) or δ·k (q8) */
            const uint8_t *r = rec + (size_t)(j0 + j) * stride;
            float *y = tile + (size_t)j * d;
            if (p->type == G4_TQ_Q8) {
                s[j] = 1.0f;
                for (int b = 0; b < nb; b++) {
                    const int8_t *k8 = (const int8_t *)(r + 34 * b + 2);
                    const __m256 dl = _mm256_set1_ps(h2f(r + 34 * b));
                    for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 32 * b + 8 * k, _mm256_mul_ps(dl, i8x8_to_ps(k8 + 8 * k)));
                }
            } else { /* c8[idx] as floats; s · unit8 goes into the weights */
                s[j] = h2f(r + p->record_bytes - 2) * unit8;
                for (int b = 0; b < nb; b++) {
                    const __m256i c = _mm256_shuffle_epi8(tbl, idx32(p, r, b));
                    const __m128i l = _mm256_castsi256_si128(c), h = _mm256_extracti128_si256(c, 1);
                    _mm256_storeu_ps(y + 32 * b, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(l)));
                    _mm256_storeu_ps(y + 32 * b + 8, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(l, 8))));
                    _mm256_storeu_ps(y + 32 * b + 16, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h)));
                    _mm256_storeu_ps(y + 32 * b + 24, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(h, 8))));
                }
            }
        }
        for (int h0 = 0; h0 < G;) {
            const int left = G - h0, g = left >= 4 ? 4 : left >= 2 ? 2 : 1;
            float ws[4 * GQA_TILE];
            float *a[4];
            for (int h = 0; h < g; h++) {
                a[h] = acc + (size_t)(h0 + h) * acc_stride;
                for (int j = 0; j < nt; j++) ws[h * GQA_TILE + j] = w[(size_t)(h0 + h) * w_stride + j0 + j] * s[j];
            }
            if (g == 4) gqa_acc4(tile, d, nt, ws, a);
            else if (g == 2) gqa_acc2(tile, d, nt, ws, a);
            else gqa_acc1(tile, d, nt, ws, a);
            h0 += g;
        }
    }
}

/* exp(x) for x <= 0 (0 below -87.3, where expf is subnormal or 0) */
AVX2 static inline __m256 exp_neg(__m256 x) {
    const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    return _mm256_and_ps(g4_exp_avx2(_mm256_max_ps(x, _mm256_set1_ps(-87.3f))), under);
}

AVX2 static float exp_sum_avx2(float *x, int n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
        _mm256_storeu_ps(x + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (j < n) {
        float t[8];
        for (int k = 0; k < 8; k++) t[k] = j + k < n ? x[j + k] : -INFINITY;
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(t), vm));
        _mm256_storeu_ps(t, e);
        sum = _mm256_add_ps(sum, e);
        for (int k = 0; j + k < n; k++) x[j + k] = t[k];
    }
    return hsum_ps(sum);
}

static const g4_tq_kernels kernels_avx2 = {
    .isa = "avx2",
    .score = score_avx2,
    .score_i8 = score_i8_avx2,
    .axpy = axpy_avx2,
    .rotate = rotate_avx2,
    .unrotate = unrotate_avx2,
    .encode_rotated = encode_rotated_avx2,
    .gqa_scores = gqa_scores_avx2,
    .gqa_values = gqa_values_avx2,
    .exp_sum = exp_sum_avx2,
};

const g4_tq_kernels *g4_tq_kernels_avx2(void) { return g4_cpu_has_avx2() ? &kernels_avx2 : NULL; }

#else

const g4_tq_kernels *g4_tq_kernels_avx2(void) { return NULL; }

#endif
