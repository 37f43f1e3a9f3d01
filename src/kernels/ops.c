#include "kernels/ops.h"
#include "quant/simd.h"
#include "quant/types.h"
#include "util/util.h"

#include <stdatomic.h>
#include <string.h>

#include <math.h>

void g4_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    /* the sum of squares in double (exact products, an error far below float's), in 8 interleaved partial
     * sums so the additions do not wait on each other (one chain of n dependent adds was 4% of a decode
     * step); the order is fixed, so results do not depend on the caller */
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) p[k] += (double)x[i + k] * x[i + k];
    for (; i < n; i++) p[0] += (double)x[i] * x[i];
    const double ss = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    if (w)
        for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
    else
        for (int i = 0; i < n; i++) y[i] = x[i] * scale;
}

float g4_gelu(float x) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

void g4_gelu_mul(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = g4_gelu(a[i]) * b[i];
}

void g4_softcap(float *x, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

/* the kernel set of the weight kernels decides (quant/types.c: G4_ISA, CPUID) */
#if defined(G4_HAVE_AVX2_KERNELS) /* (only there: an unused static function breaks -Werror builds elsewhere) */
static int use_avx2(void) {
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = strcmp(g4_types_isa(), "scalar") != 0 && g4_cpu_has_avx2();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}
#endif

void g4_gelu_mul_fast(float *a, const float *b, size_t n) {
#if defined(G4_HAVE_AVX2_KERNELS)
    if (use_avx2()) {
        g4_gelu_mul_avx2(a, b, n);
        return;
    }
#endif
    g4_gelu_mul(a, b, n);
}

void g4_softcap_fast(float *x, size_t n, float cap) {
#if defined(G4_HAVE_AVX2_KERNELS)
    if (use_avx2()) {
        g4_softcap_avx2(x, n, cap);
        return;
    }
#endif
    g4_softcap(x, n, cap);
}

void g4_axpy_f16(float a, const uint16_t *v, float *out, int n) {
    for (int i = 0; i < n; i++) out[i] += a * g4_fp16_to_fp32(v[i]);
}

void g4_axpy_f32(float a, const float *v, float *out, int n) {
    for (int i = 0; i < n; i++) out[i] += a * v[i];
}

void g4_axpy_f16_fast(float a, const uint16_t *v, float *out, int n) {
#if defined(G4_HAVE_AVX2_KERNELS)
    if (use_avx2()) {
        g4_axpy_f16_avx2(a, v, out, n);
        return;
    }
#endif
    g4_axpy_f16(a, v, out, n);
}

void g4_axpy_f32_fast(float a, const float *v, float *out, int n) {
#if defined(G4_HAVE_AVX2_KERNELS)
    if (use_avx2()) {
        g4_axpy_f32_avx2(a, v, out, n);
        return;
    }
#endif
    g4_axpy_f32(a, v, out, n);
}

/* cos / sin of the rotation angle of pair i at position pos, theta computed in double then rounded
 * (like a careful fp32 implementation) */
static inline void rope_angle(float *cs, int i, int n_rot, int pos, float base, const float *ff) {
    double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
    if (ff) theta /= ff[i];
    cs[0] = (float)cos(theta);
    cs[1] = (float)sin(theta);
}

static inline void rope_pair(float *x, int i, int half, const float *cs) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cs[0] - b * cs[1];
    x[i + half] = b * cs[0] + a * cs[1];
}

void g4_rope_cs(float *cs, int n_rot, int pos, float base, const float *ff) {
    for (int i = 0; i < n_rot / 2; i++) rope_angle(cs + 2 * i, i, n_rot, pos, base, ff);
}

void g4_rope_neox_cs(float *x, int n_rot, const float *cs) {
    for (int i = 0; i < n_rot / 2; i++) rope_pair(x, i, n_rot / 2, cs + 2 * i);
}

void g4_rope_neox(float *x, int d, int n_rot, int pos, float base, const float *ff) {
    (void)d;
    for (int i = 0; i < n_rot / 2; i++) {
        float cs[2];
        rope_angle(cs, i, n_rot, pos, base, ff);
        rope_pair(x, i, n_rot / 2, cs);
    }
}

void g4_softmax(float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}
