/* The integer-dot kernels of simd_neon.c, included there twice: once for the ARMv8.0 baseline and once
 * for the dot-product extension (not a header for anything else). The includer defines
 *   NEON_FN(name)   name_<suffix>: exported kernels and this copy's internal helpers
 *   KATTR           the target attribute of this copy (empty, or the dot-product one)
 *   DOT32_ANY(a0, a1, b0, b1)   4 int32 partial sums of the 32 products a * b, any int8 operands
 *   DOT32_SMALL(a0, a1, b0, b1) the same for |a| <= 32
 *   MLA32(acc, a0, a1, b0, b1, sc)  acc + sc * (partial sums of 32 products), |a| <= 32
 *   MLA16(acc, a, b, sc)            acc + sc * (partial sums of 16 products), |a| <= 32
 * Every integer sum is exact and everything done in float is the same in both copies, so they agree
 * bit for bit. The kernels take K activation rows (xs bytes apart) against one weight row, K a
 * compile-time constant after inlining; dot_q is the K = 1 case, so dot_q_multi is bit-identical to it
 * row by row. */

/* ---- 32-value blocks ------------------------------------------------------------------------------
 * Per block the exact integer sum; blocks are combined four at a time in the 4 lanes of a float
 * accumulator (lane k takes blocks i = k mod 4), the remaining ones in a scalar; then both are added. */

/* Q8_0, Q4_0, Q5_0 against Q8_0 */
#define NEON_LEGACY_XK(kname, block_t, WLOAD, DOT)                                                        \
    KATTR static inline ALWAYS_INLINE void kname(const void *w, const uint8_t *x, size_t xs, const int K,  \
                                                 float *out, int64_t n) {                                 \
        const block_t *a = w;                                                                            \
        const int64_t nb = n / QK8_0;                                                                    \
        float32x4_t acc[4];                                                                              \
        float tail[4];                                                                                   \
        UNROLL for (int t = 0; t < K; t++) {                                                             \
            acc[t] = vdupq_n_f32(0.0f);                                                                  \
            tail[t] = 0.0f;                                                                              \
        }                                                                                                \
        int64_t i = 0;                                                                                   \
        for (; i + 4 <= nb; i += 4) {                                                                    \
            int8x16_t q[8];                                                                              \
            UNROLL for (int k = 0; k < 4; k++) WLOAD(&a[i + k], &q[2 * k], &q[2 * k + 1]);               \
            const float32x4_t da = h2f4(a[i].d, a[i + 1].d, a[i + 2].d, a[i + 3].d);                     \
            UNROLL for (int t = 0; t < K; t++) {                                                         \
                const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)t * xs) + i;                     \
                int32x4_t p[4];                                                                          \
                UNROLL for (int k = 0; k < 4; k++)                                                       \
                    p[k] = DOT(q[2 * k], q[2 * k + 1], vld1q_s8(b[k].qs), vld1q_s8(b[k].qs + 16));      \
                const float32x4_t d = vmulq_f32(da, h2f4(b[0].d, b[1].d, b[2].d, b[3].d));               \
                acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(hadd4_s32(p[0], p[1], p[2], p[3])), d);         \
            }                                                                                            \
        }                                                                                                \
        for (; i < nb; i++) {                                                                            \
            int8x16_t q0, q1;                                                                            \
            WLOAD(&a[i], &q0, &q1);                                                                      \
            const float da = h2f(a[i].d);                                                                \
            UNROLL for (int t = 0; t < K; t++) {                                                         \
                const block_q8_0 *b = (const block_q8_0 *)(x + (size_t)t * xs) + i;                     \
                const int sumi = vaddvq_s32(DOT(q0, q1, vld1q_s8(b->qs), vld1q_s8(b->qs + 16)));         \
                tail[t] += (float)sumi * (da * h2f(b->d));                                               \
            }                                                                                            \
        }                                                                                                \
        UNROLL for (int t = 0; t < K; t++) out[t] = vaddvq_f32(acc[t]) + tail[t];                        \
    }

NEON_LEGACY_XK(NEON_FN(q8_0_xk), block_q8_0, wload_q8_0, DOT32_ANY)
NEON_LEGACY_XK(NEON_FN(q4_0_xk), block_q4_0, wload_q4_0, DOT32_SMALL)
NEON_LEGACY_XK(NEON_FN(q5_0_xk), block_q5_0, wload_q5_0, DOT32_SMALL)
#undef NEON_LEGACY_XK

/* Q4_1, Q5_1 against Q8_1: d * dy * sum(q * qy) + m * s per block (s = dy * sum(qy), stored) */
#define NEON_LEGACY1(fname, block_t, WLOAD)                                                              \
    KATTR float fname(const void *w, const void *xq, int64_t n) {                                       \
        const block_t *a = w;                                                                            \
        const block_q8_1 *b = xq;                                                                        \
        const int64_t nb = n / QK8_1;                                                                    \
        float32x4_t acc = vdupq_n_f32(0.0f), accm = vdupq_n_f32(0.0f);                                   \
        float tail = 0.0f;                                                                               \
        int64_t i = 0;                                                                                   \
        for (; i + 4 <= nb; i += 4) {                                                                    \
            int32x4_t p[4];                                                                              \
            UNROLL for (int k = 0; k < 4; k++) {                                                         \
                int8x16_t q0, q1;                                                                        \
                WLOAD(&a[i + k], &q0, &q1);                                                              \
                p[k] = DOT32_SMALL(q0, q1, vld1q_s8(b[i + k].qs), vld1q_s8(b[i + k].qs + 16));           \
            }                                                                                            \
            const float32x4_t d = vmulq_f32(h2f4(a[i].d, a[i + 1].d, a[i + 2].d, a[i + 3].d),            \
                                            h2f4(b[i].d, b[i + 1].d, b[i + 2].d, b[i + 3].d));           \
            acc = vfmaq_f32(acc, vcvtq_f32_s32(hadd4_s32(p[0], p[1], p[2], p[3])), d);                   \
            accm = vfmaq_f32(accm, h2f4(a[i].m, a[i + 1].m, a[i + 2].m, a[i + 3].m),                     \
                             h2f4(b[i].s, b[i + 1].s, b[i + 2].s, b[i + 3].s));                          \
        }                                                                                                \
        for (; i < nb; i++) {                                                                            \
            int8x16_t q0, q1;                                                                            \
            WLOAD(&a[i], &q0, &q1);                                                                      \
            const int sumi = vaddvq_s32(DOT32_SMALL(q0, q1, vld1q_s8(b[i].qs), vld1q_s8(b[i].qs + 16))); \
            tail += h2f(a[i].d) * h2f(b[i].d) * (float)sumi + h2f(a[i].m) * h2f(b[i].s);                 \
        }                                                                                                \
        return vaddvq_f32(vaddq_f32(acc, accm)) + tail;                                                  \
    }

NEON_LEGACY1(NEON_FN(g4_dot_q_q4_1_q8_1), block_q4_1, wload_q4_1)
NEON_LEGACY1(NEON_FN(g4_dot_q_q5_1_q8_1), block_q5_1, wload_q5_1)
#undef NEON_LEGACY1

/* ---- k-quants against Q8_K: exact integer sums per super-block, the reference's float epilogue ---- */

KATTR static inline ALWAYS_INLINE void NEON_FN(q4_K_xk)(const void *w, const uint8_t *x, size_t xs, const int K,
                                                        float *out, int64_t n) {
    const block_q4_K *a = w;
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sm[16];
        scales_mins_k4(a[i].scales, sm);
        int32x4_t acc[4];
        UNROLL for (int t = 0; t < K; t++) acc[t] = vdupq_n_s32(0);
        UNROLL for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(a[i].qs + 32 * c), q1 = vld1q_u8(a[i].qs + 32 * c + 16);
            const int8x16_t l0 = lo_nibbles(q0), l1 = lo_nibbles(q1), h0 = hi_nibbles(q0), h1 = hi_nibbles(q1);
            UNROLL for (int t = 0; t < K; t++) {
                const int8_t *y = ((const block_q8_K *)(x + (size_t)t * xs))[i].qs + 64 * c;
                acc[t] = MLA32(acc[t], l0, l1, vld1q_s8(y), vld1q_s8(y + 16), sm[2 * c]);
                acc[t] = MLA32(acc[t], h0, h1, vld1q_s8(y + 32), vld1q_s8(y + 48), sm[2 * c + 1]);
            }
        }
        const float d = h2f(a[i].d), dmin = h2f(a[i].dmin);
        UNROLL for (int t = 0; t < K; t++) {
            const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs) + i;
            const int summ = mins_dot_bsums(sm, b->bsums);
            const int sumi = vaddvq_s32(acc[t]);
            const float dy = b->d;
            sum[t] += dy * d * (float)sumi - dy * dmin * (float)summ;
        }
    }
    UNROLL for (int t = 0; t < K; t++) out[t] = sum[t];
}

KATTR float NEON_FN(g4_dot_q_q5_K_q8_K)(const void *w, const void *xq, int64_t n) {
    const block_q5_K *a = w;
    const block_q8_K *b = xq;
    const uint8x16_t one = vdupq_n_u8(1);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t sm[16];
        scales_mins_k4(a[i].scales, sm);
        uint8x16_t qh0 = vld1q_u8(a[i].qh), qh1 = vld1q_u8(a[i].qh + 16);
        int32x4_t acc = vdupq_n_s32(0);
        UNROLL for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(a[i].qs + 32 * c), q1 = vld1q_u8(a[i].qs + 32 * c + 16);
            /* bit 2c of qh[l] is the 5th bit of the low nibbles, bit 2c+1 of the high ones */
            const int8x16_t l0 = vorrq_s8(lo_nibbles(q0), vreinterpretq_s8_u8(vshlq_n_u8(vandq_u8(qh0, one), 4)));
            const int8x16_t l1 = vorrq_s8(lo_nibbles(q1), vreinterpretq_s8_u8(vshlq_n_u8(vandq_u8(qh1, one), 4)));
            const int8x16_t h0 = vorrq_s8(hi_nibbles(q0), vreinterpretq_s8_u8(vshlq_n_u8(vandq_u8(qh0, vdupq_n_u8(2)), 3)));
            const int8x16_t h1 = vorrq_s8(hi_nibbles(q1), vreinterpretq_s8_u8(vshlq_n_u8(vandq_u8(qh1, vdupq_n_u8(2)), 3)));
            qh0 = vshrq_n_u8(qh0, 2);
            qh1 = vshrq_n_u8(qh1, 2);
            const int8_t *y = b[i].qs + 64 * c;
            acc = MLA32(acc, l0, l1, vld1q_s8(y), vld1q_s8(y + 16), sm[2 * c]);
            acc = MLA32(acc, h0, h1, vld1q_s8(y + 32), vld1q_s8(y + 48), sm[2 * c + 1]);
        }
        const int summ = mins_dot_bsums(sm, b[i].bsums);
        const int sumi = vaddvq_s32(acc);
        const float dy = b[i].d;
        sum += dy * h2f(a[i].d) * (float)sumi - dy * h2f(a[i].dmin) * (float)summ;
    }
    return sum;
}

/* Q6_K: (q - 32) in -32..31 straight into the products, 16 sub-blocks of 16 with int8 scales */
KATTR static inline ALWAYS_INLINE void NEON_FN(q6_K_xk)(const void *w, const uint8_t *x, size_t xs, const int K,
                                                        float *out, int64_t n) {
    const block_q6_K *a = w;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
    const int8x16_t off = vdupq_n_s8(32);
    float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *sc = a[i].scales;
        int32x4_t acc[4];
        UNROLL for (int t = 0; t < K; t++) acc[t] = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++)
            UNROLL for (int l0 = 0; l0 < 32; l0 += 16) {
                const uint8x16_t qa = vld1q_u8(a[i].ql + 64 * h + l0), qb = vld1q_u8(a[i].ql + 64 * h + 32 + l0);
                const uint8x16_t hb = vld1q_u8(a[i].qh + 32 * h + l0);
                int8x16_t v[4];
                v[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(qa, m4), vshlq_n_u8(vandq_u8(hb, m2), 4)));
                v[1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(qb, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m2), 4)));
                v[2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(qa, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m2), 4)));
                v[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(qb, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)));
                UNROLL for (int g = 0; g < 4; g++) {
                    const int8x16_t vg = vsubq_s8(v[g], off);
                    const int s = 8 * h + 2 * g + l0 / 16;
                    UNROLL for (int t = 0; t < K; t++) {
                        const int8_t *y = ((const block_q8_K *)(x + (size_t)t * xs))[i].qs + 128 * h + 32 * g + l0;
                        acc[t] = MLA16(acc[t], vg, vld1q_s8(y), sc[s]);
                    }
                }
            }
        const float d = h2f(a[i].d);
        UNROLL for (int t = 0; t < K; t++) {
            const block_q8_K *b = (const block_q8_K *)(x + (size_t)t * xs) + i;
            sum[t] += b->d * d * (float)vaddvq_s32(acc[t]);
        }
    }
    UNROLL for (int t = 0; t < K; t++) out[t] = sum[t];
}

/* ---- exported: dot_q (K = 1) and dot_q_multi (4 rows at a time, then the rest) -------------------- */

#define NEON_SINGLE(fname, kern)                                                                         \
    KATTR float fname(const void *w, const void *xq, int64_t n) {                                       \
        float r;                                                                                         \
        kern(w, (const uint8_t *)xq, 0, 1, &r, n);                                                       \
        return r;                                                                                        \
    }
#define NEON_MULTI(fname, kern)                                                                          \
    KATTR void fname(const void *w, const void *x, size_t xs, int nx, float *out, int64_t n) {          \
        const uint8_t *xb = x;                                                                           \
        int j = 0;                                                                                       \
        for (; j + 4 <= nx; j += 4) kern(w, xb + (size_t)j * xs, xs, 4, out + j, n);                     \
        switch (nx - j) {                                                                                \
        case 3: kern(w, xb + (size_t)j * xs, xs, 3, out + j, n); break;                                  \
        case 2: kern(w, xb + (size_t)j * xs, xs, 2, out + j, n); break;                                  \
        case 1: kern(w, xb + (size_t)j * xs, xs, 1, out + j, n); break;                                  \
        default: break;                                                                                  \
        }                                                                                                \
    }

NEON_SINGLE(NEON_FN(g4_dot_q_q8_0_q8_0), NEON_FN(q8_0_xk))
NEON_SINGLE(NEON_FN(g4_dot_q_q4_0_q8_0), NEON_FN(q4_0_xk))
NEON_SINGLE(NEON_FN(g4_dot_q_q5_0_q8_0), NEON_FN(q5_0_xk))
NEON_SINGLE(NEON_FN(g4_dot_q_q4_K_q8_K), NEON_FN(q4_K_xk))
NEON_SINGLE(NEON_FN(g4_dot_q_q6_K_q8_K), NEON_FN(q6_K_xk))
NEON_MULTI(NEON_FN(g4_dot_q_multi_q8_0_q8_0), NEON_FN(q8_0_xk))
NEON_MULTI(NEON_FN(g4_dot_q_multi_q4_0_q8_0), NEON_FN(q4_0_xk))
NEON_MULTI(NEON_FN(g4_dot_q_multi_q4_K_q8_K), NEON_FN(q4_K_xk))
NEON_MULTI(NEON_FN(g4_dot_q_multi_q6_K_q8_K), NEON_FN(q6_K_xk))
#undef NEON_SINGLE
#undef NEON_MULTI
