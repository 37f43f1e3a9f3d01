/* AVX2 + FMA versions of the element-wise operations whose scalar references are in ops.c: GELU
 * (tanh form) times the up projection, and the final logit soft-cap. Both need tanh; libm's tanhf
 * costs ~20 ns a value, which for 262144 logits and ~200k FFN activations per token was a tenth of a
 * decode step. Here tanh(y) = sign(y) * (1 - 2 / (exp(2|y|) + 1)) for |y| >= 0.55 with a vector exp
 * (range reduction by ln 2 in two parts, degree-7 polynomial), and its Taylor series to y^17 below
 * 0.55 (truncation error < 1e-7 relative there): a few ulp from tanhf (tests/test_ops.c). */
#include "kernels/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kernels/exp_avx2.h"

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 tanh_v(__m256 y) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_andnot_ps(sign, y);
    /* large: 1 - 2 / (exp(2a) + 1), 2a clamped below the float exp overflow (tanh is 1 there anyway) */
    const __m256 e = g4_exp_avx2(_mm256_min_ps(_mm256_add_ps(a, a), _mm256_set1_ps(88.0f)));
    const __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                     _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    /* small: a + a^3 * P(a^2), Taylor coefficients of tanh */
    const __m256 z = _mm256_mul_ps(a, a);
    __m256 p = _mm256_set1_ps(-6404582.0f / 10854718875.0f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(929569.0f / 638512875.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-21844.0f / 6081075.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1382.0f / 155925.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-62.0f / 2835.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(17.0f / 315.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-2.0f / 15.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 3.0f));
    /* p = 1/3 - 2/15 z + ... ; tanh = a - a^3 p */
    const __m256 small = _mm256_fnmadd_ps(_mm256_mul_ps(a, z), p, a);
    __m256 t = _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.55f), _CMP_LT_OQ));
    t = _mm256_or_ps(t, _mm256_and_ps(y, sign));                        /* copy the sign */
    return _mm256_blendv_ps(t, y, _mm256_cmp_ps(y, y, _CMP_UNORD_Q)); /* NaN stays NaN */
}

AVX2 void g4_gelu_mul_avx2(float *a, const float *b, size_t n) {
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f), half = _mm256_set1_ps(0.5f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(a + i);
        const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        const __m256 t = tanh_v(_mm256_mul_ps(c, _mm256_fmadd_ps(k, x3, x)));
        const __m256 g = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
        _mm256_storeu_ps(a + i, _mm256_mul_ps(g, _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++) a[i] = g4_gelu(a[i]) * b[i];
}

AVX2 void g4_softcap_avx2(float *x, size_t n, float cap) {
    const __m256 vc = _mm256_set1_ps(cap), inv = _mm256_set1_ps(1.0f / cap);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(vc, tanh_v(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv))));
    for (; i < n; i++) x[i] = cap * tanhf(x[i] * (1.0f / cap));
}

__attribute__((target("avx2,fma,f16c"))) void g4_axpy_f16_avx2(float a, const uint16_t *v, float *out, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(va, x, _mm256_loadu_ps(out + i)));
    }
    for (; i < n; i++) out[i] = fmaf(a, _cvtsh_ss(v[i]), out[i]);
}

AVX2 void g4_axpy_f32_avx2(float a, const float *v, float *out, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
    for (; i < n; i++) out[i] = fmaf(a, v[i], out[i]);
}
#endif
