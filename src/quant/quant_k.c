/* The k-quants: super-blocks of 256 values with sub-block scales (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and
 * their activation type Q8_K.
 *
 * Dequantization follows ggml's dequantize_row_* operation by operation: the sub-block factors
 * (d*sc, dmin*m) are rounded to float first, then each value is factor * q (- min factor). In every
 * type the sub-block of element j is simply j/16 (Q2_K, Q3_K, Q6_K) or j/32 (Q4_K, Q5_K); only the
 * bit positions of the quants are interleaved (see blocks.h).
 *
 * The quantizers are g4's own: a weighted least-squares fit of each sub-block (affine for Q2/Q4/Q5_K,
 * symmetric for Q3/Q6_K), scales quantized against the super-block maximum, then every value
 * re-quantized with the scales exactly as they will be decoded. Q8_K is ggml's scheme exactly
 * (qs = round(-127/max * x), d = 1/iscale, bsums), since dot_q results depend on it.
 */
#include "quant/blocks.h"
#include "util/util.h"

#include <math.h>

/* ---- per-block dequantization -------------------------------------------------------------------- */

static inline void deq_q2_K(const block_q2_K *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    const float min = g4_fp16_to_fp32(b->dmin);
    for (int h = 0; h < 2; h++) {              /* two halves of 128 values, 32 bytes of qs each */
        const uint8_t *q = b->qs + 32 * h;
        for (int g = 0; g < 4; g++) {          /* 2-bit field g of each byte: 32 values */
            for (int k = 0; k < 2; k++) {      /* 16 values per scale */
                const uint8_t sc = b->scales[8 * h + 2 * g + k];
                const float dl = d * (float)(sc & 0xF);
                const float ml = min * (float)(sc >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[16 * k + l] >> (2 * g)) & 3) - ml;
            }
        }
    }
}

/* the 16 6-bit scales of Q3_K, minus 32 */
static inline void q3_K_scales(const uint8_t *s, int *sc) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (lo | hi << 4) - 32;
    }
}

static inline void deq_q3_K(const block_q3_K *b, float *y) {
    const float d_all = g4_fp16_to_fp32(b->d);
    int sc[16];
    q3_K_scales(b->scales, sc);
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = b->qs + 32 * h;
        for (int g = 0; g < 4; g++) {
            const uint8_t m = (uint8_t)(1u << (4 * h + g)); /* hmask bit of this 32-value group */
            for (int k = 0; k < 2; k++) {
                const float dl = d_all * (float)sc[8 * h + 2 * g + k];
                for (int l = 16 * k; l < 16 * k + 16; l++) {
                    const int v = ((q[l] >> (2 * g)) & 3) - ((b->hmask[l] & m) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
        }
    }
}

static inline void deq_q4_K(const block_q4_K *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    const float min = g4_fp16_to_fp32(b->dmin);
    const uint8_t *q = b->qs;
    for (int c = 0; c < 4; c++, q += 32) {     /* 64 values: low nibbles, then high nibbles */
        uint8_t sc, m;
        g4_scale_min_k4(2 * c, b->scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = min * (float)m;
        g4_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = min * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}

static inline void deq_q5_K(const block_q5_K *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    const float min = g4_fp16_to_fp32(b->dmin);
    const uint8_t *ql = b->qs, *qh = b->qh;
    for (int c = 0; c < 4; c++, ql += 32) {
        const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c)); /* 5th-bit masks */
        uint8_t sc, m;
        g4_scale_min_k4(2 * c, b->scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = min * (float)m;
        g4_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = min * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static inline void deq_q6_K(const block_q6_K *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int8_t *sc = b->scales + 8 * h;
        float *yh = y + 128 * h;
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
            const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            /* ggml: d * sc * q, i.e. (d * sc) * q */
            yh[l + 0] = d * (float)sc[is + 0] * (float)q1;
            yh[l + 32] = d * (float)sc[is + 2] * (float)q2;
            yh[l + 64] = d * (float)sc[is + 4] * (float)q3;
            yh[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

static inline void deq_q8_K(const block_q8_K *b, float *y) {
    for (int j = 0; j < QK_K; j++) y[j] = b->d * (float)b->qs[j];
}

#define ROW_KERNELS(t)                                                                              \
    void g4_to_float_##t(const void *src, float *dst, int64_t n) {                                 \
        const block_##t *b = src;                                                                  \
        for (int64_t i = 0; i < n / QK_K; i++) deq_##t(&b[i], dst + i * QK_K);                     \
    }
#define DOT_F32_KERNEL(t)                                                                           \
    float g4_dot_f32_##t(const void *w, const float *x, int64_t n) {                               \
        const block_##t *b = w;                                                                    \
        float sum = 0.0f, buf[QK_K];                                                               \
        for (int64_t i = 0; i < n / QK_K; i++) {                                                   \
            deq_##t(&b[i], buf);                                                                   \
            const float *xb = x + i * QK_K;                                                        \
            float part = 0.0f;                                                                     \
            for (int j = 0; j < QK_K; j++) part += buf[j] * xb[j];                                 \
            sum += part;                                                                           \
        }                                                                                          \
        return sum;                                                                                \
    }

ROW_KERNELS(q2_K)
ROW_KERNELS(q3_K)
ROW_KERNELS(q4_K)
ROW_KERNELS(q5_K)
ROW_KERNELS(q6_K)
ROW_KERNELS(q8_K)
DOT_F32_KERNEL(q2_K)
DOT_F32_KERNEL(q3_K)
DOT_F32_KERNEL(q4_K)
DOT_F32_KERNEL(q5_K)
DOT_F32_KERNEL(q6_K)

/* ---- fitting helpers for the quantizers ---------------------------------------------------------- */

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Affine fit x[i] ~ scale * L[i] - neg_min, L in 0..nmax, neg_min >= 0 (the range always includes 0),
 * minimising sum w[i] * err[i]^2. Tries nstep+1 grid spacings around nmax steps over [min, max] and,
 * for each rounding, the least-squares (scale, min). Returns scale; L gets the best quants. */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                        int nstep, float rmin, float rdelta) { /* n <= 32 */
    float lo = x[0], hi = x[0];
    double sw = 0, sx = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sw += w[i];
        sx += (double)w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (!(hi > lo)) { /* constant (or NaN) block */
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -lo;
        return 0.0f;
    }
    /* start: plain min/max grid */
    float scale = (hi - lo) / (float)nmax, min = lo;
    double best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(g4_nearest_int((x[i] - lo) / scale), 0, nmax);
        const double e = (double)scale * L[i] + min - x[i];
        best += w[i] * e * e;
    }
    uint8_t Lt[32];
    for (int is = 0; is <= nstep; is++) {
        const float iscale = (rmin + rdelta * (float)is + (float)nmax) / (hi - lo);
        double sl = 0, sll = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(g4_nearest_int(iscale * (x[i] - lo)), 0, nmax);
            Lt[i] = (uint8_t)l;
            sl += (double)w[i] * l;
            sll += (double)w[i] * l * l;
            sxl += (double)w[i] * l * x[i];
        }
        const double D = sw * sll - sl * sl;
        if (!(D > 0)) continue;
        double s = (sw * sxl - sx * sl) / D, m = (sll * sx - sl * sxl) / D;
        if (m > 0) { /* the offset must not exceed 0: refit the scale alone */
            m = 0;
            s = sxl / sll;
        }
        double err = 0;
        for (int i = 0; i < n; i++) {
            const double e = s * Lt[i] + m - x[i];
            err += w[i] * e * e;
        }
        if (err < best) {
            best = err;
            scale = (float)s;
            min = (float)m;
            memcpy(L, Lt, (size_t)n);
        }
    }
    *neg_min = -min;
    return scale;
}

/* Symmetric fit x[i] ~ scale * (L[i] - nmax), L - nmax in -nmax..nmax-1, weights x^2 (large values
 * matter most). The value of largest magnitude anchors the grid at -nmax; 19 spacings are tried and
 * the least-squares scale of the best one is returned (it may be negative). */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (int8_t)nmax; /* 0 until a fit is found */
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (!(amax >= 1e-15f)) return 0.0f;
    double best = -1;
    float scale = 0;
    for (int is = -9; is <= 9; is++) {
        const float iscale = -((float)nmax + 0.1f * (float)is) / max;
        double sxl = 0, sll = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(g4_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const double w = (double)x[i] * x[i];
            sxl += w * x[i] * l;
            sll += w * l * l;
        }
        /* error = sum w x^2 - sxl^2 / sll: maximise sxl^2 / sll */
        if (sll > 0 && sxl * sxl / sll > best) {
            best = sxl * sxl / sll;
            scale = (float)(sxl / sll);
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(clampi(g4_nearest_int(iscale * x[i]), -nmax, nmax - 1) + nmax);
        }
    }
    return scale;
}

/* sub-block weights for the affine fits: rms of the sub-block + |x| */
static void rms_weights(const float *x, int n, float *w) {
    float s2 = 0;
    for (int i = 0; i < n; i++) s2 += x[i] * x[i];
    const float av = sqrtf(s2 / (float)n);
    for (int i = 0; i < n; i++) w[i] = av + fabsf(x[i]);
}

/* inverse of a super-block scale: 0 when the scale is 0 (or not a number) */
static inline float inv_or_zero(float num, float den) { return den > 0 ? num / den : 0.0f; }

/* ---- Q2_K ---- */

void g4_from_float_q2_K(const float *x, void *dst, int64_t n) {
    block_q2_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        float scales[16], mins[16], w[16];
        float max_scale = 0, max_min = 0;
        for (int s = 0; s < 16; s++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * s + l]);
            scales[s] = fit_affine(16, 3, x + 16 * s, w, L + 16 * s, &mins[s], 15, -0.5f, 0.1f);
            if (scales[s] > max_scale) max_scale = scales[s];
            if (mins[s] > max_min) max_min = mins[s];
        }
        const float iscale = inv_or_zero(15.0f, max_scale), imin = inv_or_zero(15.0f, max_min);
        for (int s = 0; s < 16; s++) {
            const int ls = clampi(g4_nearest_int(iscale * scales[s]), 0, 15);
            const int lm = clampi(g4_nearest_int(imin * mins[s]), 0, 15);
            y[i].scales[s] = (uint8_t)(ls | lm << 4);
        }
        y[i].d = g4_fp32_to_fp16(max_scale / 15.0f);
        y[i].dmin = g4_fp32_to_fp16(max_min / 15.0f);
        /* re-quantize against the scales as they decode */
        const float d = g4_fp16_to_fp32(y[i].d), dmin = g4_fp16_to_fp32(y[i].dmin);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)(y[i].scales[s] & 0xF);
            const float ml = dmin * (float)(y[i].scales[s] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * s + l] = dl != 0.0f ? (uint8_t)clampi(g4_nearest_int((x[16 * s + l] + ml) / dl), 0, 3) : 0;
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *Lh = L + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(Lh[0] | Lh[32] << 2 | Lh[64] << 4 | Lh[96] << 6);
            }
    }
}

/* ---- Q3_K ---- */

void g4_from_float_q3_K(const float *x, void *dst, int64_t n) {
    block_q3_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[16], amax = 0, max_scale = 0;
        for (int s = 0; s < 16; s++) {
            scales[s] = fit_symmetric(16, 4, x + 16 * s, L + 16 * s);
            if (fabsf(scales[s]) > amax) {
                amax = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (int s = 0; s < 16; s++) {
                const int l = clampi(g4_nearest_int(iscale * scales[s]), -32, 31) + 32; /* 6 bits */
                if (s < 8)
                    y[i].scales[s] |= (uint8_t)(l & 0xF);
                else
                    y[i].scales[s - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[8 + s % 4] |= (uint8_t)((l >> 4) << (2 * (s / 4)));
            }
            y[i].d = g4_fp32_to_fp16(1.0f / iscale);
        } else {
            y[i].d = g4_fp32_to_fp16(0.0f);
        }
        int sc[16];
        q3_K_scales(y[i].scales, sc);
        const float d = g4_fp16_to_fp32(y[i].d);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)sc[s];
            for (int l = 0; l < 16; l++)
                L[16 * s + l] = (int8_t)(dl != 0.0f ? clampi(g4_nearest_int(x[16 * s + l] / dl), -4, 3) + 4 : 4);
        }
        /* bit 2 of L goes to hmask (bit j/32 of byte j%32), the low 2 bits to qs */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < QK_K; j++)
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] -= 4;
            }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *Lh = L + 128 * h + l;
                y[i].qs[32 * h + l] = (uint8_t)(Lh[0] | Lh[32] << 2 | Lh[64] << 4 | Lh[96] << 6);
            }
    }
}

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes ---- */

static void pack_scale_min_k4(uint8_t *q, const uint8_t *ls, const uint8_t *lm) {
    memset(q, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] |= ls[j];
            q[j + 4] |= lm[j];
        } else {
            q[j + 4] = (uint8_t)((ls[j] & 0xF) | (lm[j] & 0xF) << 4);
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* shared by Q4_K and Q5_K: fills d, dmin, scales and the quants L (0..nmax) of one super-block */
static void quantize_k4(const float *x, int nmax, int nstep, float rmin, g4_half *dp, g4_half *dminp,
                        uint8_t *packed, uint8_t *L) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    for (int s = 0; s < 8; s++) {
        rms_weights(x + 32 * s, 32, w);
        scales[s] = fit_affine(32, nmax, x + 32 * s, w, L + 32 * s, &mins[s], nstep, rmin, 0.1f);
        if (scales[s] > max_scale) max_scale = scales[s];
        if (mins[s] > max_min) max_min = mins[s];
    }
    const float iscale = inv_or_zero(63.0f, max_scale), imin = inv_or_zero(63.0f, max_min);
    uint8_t ls[8], lm[8];
    for (int s = 0; s < 8; s++) {
        ls[s] = (uint8_t)clampi(g4_nearest_int(iscale * scales[s]), 0, 63);
        lm[s] = (uint8_t)clampi(g4_nearest_int(imin * mins[s]), 0, 63);
    }
    pack_scale_min_k4(packed, ls, lm);
    *dp = g4_fp32_to_fp16(max_scale / 63.0f);
    *dminp = g4_fp32_to_fp16(max_min / 63.0f);
    const float d = g4_fp16_to_fp32(*dp), dmin = g4_fp16_to_fp32(*dminp);
    for (int s = 0; s < 8; s++) {
        uint8_t sc, m;
        g4_scale_min_k4(s, packed, &sc, &m);
        const float dl = d * (float)sc, ml = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * s + l] = dl != 0.0f ? (uint8_t)clampi(g4_nearest_int((x[32 * s + l] + ml) / dl), 0, nmax) : 0;
    }
}

void g4_from_float_q4_K(const float *x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        quantize_k4(x, 15, 20, -1.0f, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void g4_from_float_q5_K(const float *x, void *dst, int64_t n) {
    block_q5_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        quantize_k4(x, 31, 15, -0.5f, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((l1 & 0xF) | (l2 & 0xF) << 4);
                y[i].qh[l] |= (uint8_t)((l1 >> 4) << (2 * c) | (l2 >> 4) << (2 * c + 1));
            }
    }
}

/* ---- Q6_K ---- */

void g4_from_float_q6_K(const float *x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t L[QK_K];
        float scales[16], amax = 0, max_scale = 0;
        for (int s = 0; s < 16; s++) {
            scales[s] = fit_symmetric(16, 32, x + 16 * s, L + 16 * s);
            if (fabsf(scales[s]) > amax) {
                amax = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        if (!(amax >= 1e-15f)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.0f / max_scale;
        y[i].d = g4_fp32_to_fp16(1.0f / iscale);
        for (int s = 0; s < 16; s++) y[i].scales[s] = (int8_t)clampi(g4_nearest_int(iscale * scales[s]), -128, 127);
        const float d = g4_fp16_to_fp32(y[i].d);
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)y[i].scales[s];
            for (int l = 0; l < 16; l++)
                L[16 * s + l] = (int8_t)(dl != 0.0f ? clampi(g4_nearest_int(x[16 * s + l] / dl), -32, 31) + 32 : 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *Lh = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((Lh[0] & 0xF) | (Lh[64] & 0xF) << 4);
                y[i].ql[64 * h + l + 32] = (uint8_t)((Lh[32] & 0xF) | (Lh[96] & 0xF) << 4);
                y[i].qh[32 * h + l] =
                    (uint8_t)((Lh[0] >> 4) | (Lh[32] >> 4) << 2 | (Lh[64] >> 4) << 4 | (Lh[96] >> 4) << 6);
            }
    }
}

/* ---- Q8_K (ggml's scheme exactly) ---- */

void g4_from_float_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.0f) { /* (ggml leaves bsums unset here; they are zero) */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            const int v = g4_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)clampi(v, -128, 127);
        }
        for (int s = 0; s < QK_K / 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * s + l];
            y[i].bsums[s] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- fast dots against Q8_K: integer sums per sub-block, float per super-block ----------------- */

float g4_dot_q_q2_K_q8_K(const void *w, const void *xq, int64_t n) {
    const block_q2_K *a = w;
    const block_q8_K *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        for (int s = 0; s < 16; s++) {
            const int h = s / 8, g = (s % 8) / 2, k = s % 2;
            const uint8_t *q = a[i].qs + 32 * h + 16 * k;
            const int8_t *y = b[i].qs + 16 * s;
            int isum = 0;
            for (int l = 0; l < 16; l++) isum += ((q[l] >> (2 * g)) & 3) * y[l];
            sumi += (a[i].scales[s] & 0xF) * isum;
            summ += (a[i].scales[s] >> 4) * b[i].bsums[s];
        }
        const float dy = b[i].d;
        sum += dy * g4_fp16_to_fp32(a[i].d) * (float)sumi - dy * g4_fp16_to_fp32(a[i].dmin) * (float)summ;
    }
    return sum;
}

float g4_dot_q_q3_K_q8_K(const void *w, const void *xq, int64_t n) {
    const block_q3_K *a = w;
    const block_q8_K *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sc[16], sumi = 0;
        q3_K_scales(a[i].scales, sc);
        for (int s = 0; s < 16; s++) {
            const int h = s / 8, g = (s % 8) / 2, l0 = 16 * (s % 2);
            const uint8_t *q = a[i].qs + 32 * h;
            const uint8_t m = (uint8_t)(1u << (4 * h + g));
            const int8_t *y = b[i].qs + 16 * s;
            int isum = 0;
            for (int l = 0; l < 16; l++)
                isum += (((q[l0 + l] >> (2 * g)) & 3) - ((a[i].hmask[l0 + l] & m) ? 0 : 4)) * y[l];
            sumi += sc[s] * isum;
        }
        sum += b[i].d * g4_fp16_to_fp32(a[i].d) * (float)sumi;
    }
    return sum;
}

float g4_dot_q_q4_K_q8_K(const void *w, const void *xq, int64_t n) {
    const block_q4_K *a = w;
    const block_q8_K *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            g4_scale_min_k4(s, a[i].scales, &sc, &m);
            const uint8_t *q = a[i].qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            const int8_t *y = b[i].qs + 32 * s;
            int isum = 0;
            for (int l = 0; l < 32; l++) isum += ((q[l] >> shift) & 0xF) * y[l];
            sumi += sc * isum;
            summ += m * (b[i].bsums[2 * s] + b[i].bsums[2 * s + 1]);
        }
        const float dy = b[i].d;
        sum += dy * g4_fp16_to_fp32(a[i].d) * (float)sumi - dy * g4_fp16_to_fp32(a[i].dmin) * (float)summ;
    }
    return sum;
}

float g4_dot_q_q5_K_q8_K(const void *w, const void *xq, int64_t n) {
    const block_q5_K *a = w;
    const block_q8_K *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            g4_scale_min_k4(s, a[i].scales, &sc, &m);
            const uint8_t *q = a[i].qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            const int8_t *y = b[i].qs + 32 * s;
            int isum = 0;
            for (int l = 0; l < 32; l++) {
                const int v = ((q[l] >> shift) & 0xF) | ((a[i].qh[l] >> s) & 1) << 4;
                isum += v * y[l];
            }
            sumi += sc * isum;
            summ += m * (b[i].bsums[2 * s] + b[i].bsums[2 * s + 1]);
        }
        const float dy = b[i].d;
        sum += dy * g4_fp16_to_fp32(a[i].d) * (float)sumi - dy * g4_fp16_to_fp32(a[i].dmin) * (float)summ;
    }
    return sum;
}

float g4_dot_q_q6_K_q8_K(const void *w, const void *xq, int64_t n) {
    const block_q6_K *a = w;
    const block_q8_K *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0;
        for (int s = 0; s < 16; s++) {
            const int h = s / 8, g = (s % 8) / 2, l0 = 16 * (s % 2);
            const uint8_t *ql = a[i].ql + 64 * h + 32 * (g & 1), *qh = a[i].qh + 32 * h;
            const int shift = g < 2 ? 0 : 4;
            const int8_t *y = b[i].qs + 16 * s;
            int isum = 0;
            for (int l = 0; l < 16; l++) {
                const int v = (((ql[l0 + l] >> shift) & 0xF) | ((qh[l0 + l] >> (2 * g)) & 3) << 4) - 32;
                isum += v * y[l];
            }
            sumi += a[i].scales[s] * isum;
        }
        sum += b[i].d * g4_fp16_to_fp32(a[i].d) * (float)sumi;
    }
    return sum;
}
