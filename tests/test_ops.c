/* Element-wise operations: the SIMD versions (src/kernels/ops_avx2.c) against the scalar references
 * (src/kernels/ops.c) on random inputs over many magnitudes, both signs, and the special values.
 *
 * Tolerances: the vector tanh is within a few float ulps of tanhf, so
 *   gelu_mul: |got - ref| <= 4 * 2^-24 * |x * b| + tiny (gelu(x) = x (1 + tanh(.)) / 2: an absolute
 *             error e in tanh moves it by |x| e / 2; near tanh = -1 both sides lose the same digits);
 *   softcap:  |got - ref| <= 4 * 2^-24 * cap  and  <= 8 ulp of ref relatively where |ref| < cap / 2.
 *   NaN in, NaN out; +-inf saturate like the references.
 */
#include "kernels/ops.h"
#include "quant/simd.h"
#include "quant/types.h"
#include "util/util.h"

#include "t.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(G4_HAVE_AVX2_KERNELS)
static float rand_wide(void) {
    const int e = (int)(t_rand64() % 40) - 30; /* 2^-30 .. 2^9 */
    return ldexpf(t_randf(), e);
}

static void check_gelu(void) {
    enum { N = 100003 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *r = malloc(N * sizeof *r), *g = malloc(N * sizeof *g);
    if (!a || !b || !r || !g) abort();
    for (int i = 0; i < N; i++) {
        a[i] = rand_wide();
        b[i] = t_randf();
    }
    a[0] = 0.0f, a[1] = -0.0f, a[2] = INFINITY, a[3] = -INFINITY, a[4] = NAN, a[5] = 0.55f / 0.7978845608028654f;
    memcpy(r, a, N * sizeof *a);
    memcpy(g, a, N * sizeof *a);
    g4_gelu_mul(r, b, N);
    g4_gelu_mul_avx2(g, b, N);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (isnan(r[i]) || isnan(g[i])) {
            if (isnan(r[i]) != isnan(g[i]) && bad++ < 5) CHECK(0, "gelu(%g): %g vs %g", a[i], g[i], r[i]);
            continue;
        }
        if (isinf(r[i]) || isinf(g[i])) {
            if (r[i] != g[i] && bad++ < 5) CHECK(0, "gelu(%g): %g vs %g", a[i], g[i], r[i]);
            continue;
        }
        const double tol = 4.0 * 0x1p-24 * fabs((double)a[i] * b[i]) + 1e-38;
        const double err = fabs((double)g[i] - r[i]);
        if (err / tol > worst) worst = err / tol;
        if (!(err <= tol) && bad++ < 5) CHECK(0, "gelu(%.9g) * %.9g: avx2 %.9g ref %.9g", a[i], b[i], g[i], r[i]);
    }
    CHECK(bad == 0, "gelu_mul: %d of %d outside tolerance", bad, N);
    printf("ok gelu_mul avx2 vs scalar: %d values, worst err/tol %.3f\n", N, worst);
    free(a), free(b), free(r), free(g);
}

static void check_softcap(float cap) {
    enum { N = 262147 };
    float *x = malloc(N * sizeof *x), *r = malloc(N * sizeof *r), *g = malloc(N * sizeof *g);
    if (!x || !r || !g) abort();
    for (int i = 0; i < N; i++) x[i] = rand_wide() * (t_rand64() % 2 ? 1.0f : cap / 8);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = INFINITY, x[3] = -INFINITY, x[4] = NAN, x[5] = 1e30f, x[6] = -1e30f;
    memcpy(r, x, N * sizeof *x);
    memcpy(g, x, N * sizeof *x);
    g4_softcap(r, N, cap);
    g4_softcap_avx2(g, N, cap);
    int bad = 0;
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (isnan(r[i]) || isnan(g[i])) {
            if (isnan(r[i]) != isnan(g[i]) && bad++ < 5) CHECK(0, "softcap(%g): %g vs %g", x[i], g[i], r[i]);
            continue;
        }
        double tol = 4.0 * 0x1p-24 * cap;
        if (fabs(r[i]) < cap / 2) tol = fmin(tol, 8.0 * 0x1p-24 * fabs(r[i])) + 1e-38;
        const double err = fabs((double)g[i] - r[i]);
        if (err / tol > worst) worst = err / tol;
        if (!(err <= tol) && bad++ < 5) CHECK(0, "softcap %g of %.9g: avx2 %.9g ref %.9g", cap, x[i], g[i], r[i]);
    }
    CHECK(bad == 0, "softcap: %d of %d outside tolerance", bad, N);
    printf("ok softcap(%g) avx2 vs scalar: %d values, worst err/tol %.3f\n", cap, N, worst);
    free(x), free(r), free(g);
}

/* out += a * v: fused multiply-add vs mul then add: at most one rounding of |a v| + |out| apart */
static void check_axpy(void) {
    enum { N = 1031 };
    uint16_t h[N];
    float v[N], o1[N], o2[N], o3[N], o4[N];
    int bad = 0;
    for (int rep = 0; rep < 50; rep++) {
        const float a = rand_wide();
        for (int i = 0; i < N; i++) {
            v[i] = rand_wide();
            h[i] = g4_fp32_to_fp16(v[i]);
            o1[i] = o2[i] = o3[i] = o4[i] = rand_wide();
        }
        const int n = N - rep; /* odd tails */
        g4_axpy_f16(a, h, o1, n);
        g4_axpy_f16_avx2(a, h, o2, n);
        g4_axpy_f32(a, v, o3, n);
        g4_axpy_f32_avx2(a, v, o4, n);
        for (int i = 0; i < N; i++) {
            const double t16 = 0x1p-23 * (fabs((double)a * g4_fp16_to_fp32(h[i])) + fabs(o1[i])) + 1e-38;
            const double t32 = 0x1p-23 * (fabs((double)a * v[i]) + fabs(o3[i])) + 1e-38;
            if (!(fabs((double)o1[i] - o2[i]) <= t16) && bad++ < 5) CHECK(0, "axpy f16 [%d]: %.9g vs %.9g", i, o2[i], o1[i]);
            if (!(fabs((double)o3[i] - o4[i]) <= t32) && bad++ < 5) CHECK(0, "axpy f32 [%d]: %.9g vs %.9g", i, o4[i], o3[i]);
        }
    }
    CHECK(bad == 0, "axpy: %d values outside tolerance", bad);
    printf("ok axpy f16/f32 avx2 vs scalar\n");
}
#endif

int main(void) {
#if defined(G4_HAVE_AVX2_KERNELS)
    if (g4_cpu_has_avx2()) {
        check_gelu();
        check_softcap(30.0f);
        check_softcap(1.0f);
        check_axpy();
    } else {
        printf("CPU without AVX2/FMA: AVX2 element-wise kernels not tested\n");
    }
#endif
    /* the dispatching entry points give the scalar results or the AVX2 ones */
    float a[19], b[19], r[19];
    for (int i = 0; i < 19; i++) a[i] = r[i] = t_randf() * 4, b[i] = t_randf();
    g4_gelu_mul_fast(a, b, 19);
    g4_gelu_mul(r, b, 19);
    int close = 1;
    for (int i = 0; i < 19; i++) close &= fabsf(a[i] - r[i]) <= 1e-6f * (fabsf(r[i]) + 1e-3f);
    CHECK(close, "gelu_mul_fast differs from the reference (kernel set %s)", g4_types_isa());
    return t_done();
}
