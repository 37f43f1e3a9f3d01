/* The 32-value block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the activation type Q8_1.
 *
 * Dequantization follows ggml's dequantize_row_* operation by operation (the int quant is converted
 * to float, then "q*d" or "q*d + m"), so results are bit-identical. The quantizers are ggml's
 * reference ("_ref") rounding schemes; dot_q pairs Q4_0 / Q5_0 / Q8_0 with Q8_0 activations and
 * Q4_1 / Q5_1 with Q8_1 activations, as ggml does.
 */
#include "quant/blocks.h"
#include "util/util.h"

#include <float.h>
#include <math.h>

/* ---- per-block dequantization -------------------------------------------------------------------- */

static inline void deq_q4_0(const block_q4_0 *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    for (int j = 0; j < QK4_0 / 2; j++) {
        const int x0 = (b->qs[j] & 0x0F) - 8;
        const int x1 = (b->qs[j] >> 4) - 8;
        y[j] = (float)x0 * d;
        y[j + QK4_0 / 2] = (float)x1 * d;
    }
}

static inline void deq_q4_1(const block_q4_1 *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    const float m = g4_fp16_to_fp32(b->m);
    for (int j = 0; j < QK4_1 / 2; j++) {
        const int x0 = b->qs[j] & 0x0F;
        const int x1 = b->qs[j] >> 4;
        y[j] = (float)x0 * d + m;
        y[j + QK4_1 / 2] = (float)x1 * d + m;
    }
}

static inline uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void deq_q5_0(const block_q5_0 *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    const uint32_t qh = load_u32le(b->qh);
    for (int j = 0; j < QK5_0 / 2; j++) {
        const int h0 = (int)((qh >> j) & 1) << 4;        /* bit j: element j */
        const int h1 = (int)((qh >> (j + 16)) & 1) << 4; /* bit j+16: element j+16 */
        const int x0 = ((b->qs[j] & 0x0F) | h0) - 16;
        const int x1 = ((b->qs[j] >> 4) | h1) - 16;
        y[j] = (float)x0 * d;
        y[j + QK5_0 / 2] = (float)x1 * d;
    }
}

static inline void deq_q5_1(const block_q5_1 *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    const float m = g4_fp16_to_fp32(b->m);
    const uint32_t qh = load_u32le(b->qh);
    for (int j = 0; j < QK5_1 / 2; j++) {
        const int h0 = (int)((qh >> j) & 1) << 4;
        const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
        const int x0 = (b->qs[j] & 0x0F) | h0;
        const int x1 = (b->qs[j] >> 4) | h1;
        y[j] = (float)x0 * d + m;
        y[j + QK5_1 / 2] = (float)x1 * d + m;
    }
}

static inline void deq_q8_0(const block_q8_0 *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    for (int j = 0; j < QK8_0; j++) y[j] = (float)b->qs[j] * d;
}

static inline void deq_q8_1(const block_q8_1 *b, float *y) {
    const float d = g4_fp16_to_fp32(b->d);
    for (int j = 0; j < QK8_1; j++) y[j] = (float)b->qs[j] * d;
}

/* to_float and dot_f32 from the block dequantizer. dot_f32 sums each block in a float, then adds
 * the block sum to the total. */
#define ROW_KERNELS(t, QK)                                                                          \
    void g4_to_float_##t(const void *src, float *dst, int64_t n) {                                 \
        const block_##t *b = src;                                                                  \
        for (int64_t i = 0; i < n / QK; i++) deq_##t(&b[i], dst + i * QK);                         \
    }
#define DOT_F32_KERNEL(t, QK)                                                                       \
    float g4_dot_f32_##t(const void *w, const float *x, int64_t n) {                               \
        const block_##t *b = w;                                                                    \
        float sum = 0.0f, buf[QK];                                                                 \
        for (int64_t i = 0; i < n / QK; i++) {                                                     \
            deq_##t(&b[i], buf);                                                                   \
            const float *xb = x + i * QK;                                                          \
            float part = 0.0f;                                                                     \
            for (int j = 0; j < QK; j++) part += buf[j] * xb[j];                                   \
            sum += part;                                                                           \
        }                                                                                          \
        return sum;                                                                                \
    }

ROW_KERNELS(q4_0, QK4_0)
ROW_KERNELS(q4_1, QK4_1)
ROW_KERNELS(q5_0, QK5_0)
ROW_KERNELS(q5_1, QK5_1)
ROW_KERNELS(q8_0, QK8_0)
ROW_KERNELS(q8_1, QK8_1)
DOT_F32_KERNEL(q4_0, QK4_0)
DOT_F32_KERNEL(q4_1, QK4_1)
DOT_F32_KERNEL(q5_0, QK5_0)
DOT_F32_KERNEL(q5_1, QK5_1)
DOT_F32_KERNEL(q8_0, QK8_0)

/* ---- reference quantizers ------------------------------------------------------------------------
 * ggml's reference schemes. Quants are computed from the unrounded float scale; the block stores
 * its fp16 rounding. Conversions to int go through clampf so that NaN / inf inputs give garbage
 * blocks rather than undefined behaviour. */

/* v clamped to [lo, hi] (NaN -> lo), truncated toward zero as a C cast would */
static inline int clamp_trunc(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* symmetric: the value of largest magnitude (with its sign) maps to -2^(bits-1) */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

void g4_from_float_q4_0(const float *x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = clamp_trunc(x[j] * id + 8.5f, 0, 15);
            const int q1 = clamp_trunc(x[j + QK4_0 / 2] * id + 8.5f, 0, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void g4_from_float_q5_0(const float *x, void *dst, int64_t n) {
    block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int q0 = clamp_trunc(x[j] * id + 16.5f, 0, 31);
            const int q1 = clamp_trunc(x[j + QK5_0 / 2] * id + 16.5f, 0, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) y[i].qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

/* affine: [min, max] spread over 2^bits - 1 steps */
static void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

void g4_from_float_q4_1(const float *x, void *dst, int64_t n) {
    block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        y[i].m = g4_fp32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = clamp_trunc((x[j] - min) * id + 0.5f, 0, 15);
            const int q1 = clamp_trunc((x[j + QK4_1 / 2] - min) * id + 0.5f, 0, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void g4_from_float_q5_1(const float *x, void *dst, int64_t n) {
    block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        y[i].m = g4_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int q0 = clamp_trunc((x[j] - min) * id + 0.5f, 0, 31);
            const int q1 = clamp_trunc((x[j + QK5_1 / 2] - min) * id + 0.5f, 0, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) y[i].qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

/* roundf (half away from zero) into [-127, 127]; NaN -> 0 */
static inline int8_t round_q8(float v) {
    if (!(v == v)) return 0;
    v = roundf(v);
    return (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
}

static float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    return amax;
}

void g4_from_float_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        const float d = absmax(x, QK8_0) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = g4_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = round_q8(x[j] * id);
    }
}

void g4_from_float_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = absmax(x, QK8_1) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        y[i].d = g4_fp32_to_fp16(d);
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = round_q8(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = g4_fp32_to_fp16((float)sum * d);
    }
}

/* ---- fast dots: integer sums inside a block, one float multiply-add per block -------------------- */

float g4_dot_q_q4_0_q8_0(const void *w, const void *xq, int64_t n) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK4_0 / 2];
        }
        sum += (float)sumi * g4_fp16_to_fp32(a[i].d) * g4_fp16_to_fp32(b[i].d);
    }
    return sum;
}

float g4_dot_q_q5_0_q8_0(const void *w, const void *xq, int64_t n) {
    const block_q5_0 *a = w;
    const block_q8_0 *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const uint32_t qh = load_u32le(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int x0 = ((a[i].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4) - 16;
            const int x1 = ((a[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16;
            sumi += x0 * b[i].qs[j] + x1 * b[i].qs[j + QK5_0 / 2];
        }
        sum += (float)sumi * g4_fp16_to_fp32(a[i].d) * g4_fp16_to_fp32(b[i].d);
    }
    return sum;
}

float g4_dot_q_q8_0_q8_0(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *a = w;
    const block_q8_0 *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += a[i].qs[j] * b[i].qs[j];
        sum += (float)sumi * (g4_fp16_to_fp32(a[i].d) * g4_fp16_to_fp32(b[i].d));
    }
    return sum;
}

/* x = d*q + m against y = dy*qy: sum = d*dy*sum(q*qy) + m*dy*sum(qy), and dy*sum(qy) is block_q8_1.s */
float g4_dot_q_q4_1_q8_1(const void *w, const void *xq, int64_t n) {
    const block_q4_1 *a = w;
    const block_q8_1 *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (a[i].qs[j] & 0x0F) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + QK4_1 / 2];
        }
        sum += g4_fp16_to_fp32(a[i].d) * g4_fp16_to_fp32(b[i].d) * (float)sumi +
               g4_fp16_to_fp32(a[i].m) * g4_fp16_to_fp32(b[i].s);
    }
    return sum;
}

float g4_dot_q_q5_1_q8_1(const void *w, const void *xq, int64_t n) {
    const block_q5_1 *a = w;
    const block_q8_1 *b = xq;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const uint32_t qh = load_u32le(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int x0 = (a[i].qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            const int x1 = (a[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            sumi += x0 * b[i].qs[j] + x1 * b[i].qs[j + QK5_1 / 2];
        }
        sum += g4_fp16_to_fp32(a[i].d) * g4_fp16_to_fp32(b[i].d) * (float)sumi +
               g4_fp16_to_fp32(a[i].m) * g4_fp16_to_fp32(b[i].s);
    }
    return sum;
}
