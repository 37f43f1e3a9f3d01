/* Element-wise and row operations of the forward pass (scalar reference implementations). */
#ifndef G4_OPS_H
#define G4_OPS_H

#include <stddef.h>
#include <stdint.h>

/* y = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no weight). y may alias x. */
void g4_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
/* gelu with the tanh approximation ("gelu_pytorch_tanh"), exact in float */
float g4_gelu(float x);
/* a[i] = gelu(a[i]) * b[i]  (the FFN's gate and up projections) */
void g4_gelu_mul(float *a, const float *b, size_t n);
/* x[i] = cap * tanh(x[i] / cap)  (Gemma's final logit soft-cap) */
void g4_softcap(float *x, size_t n, float cap);
/* The same with the kernels of the CPU (AVX2 + FMA: a vector tanh a few ulp from tanhf); the scalar
 * references above where there are none, or with G4_ISA=scalar. */
void g4_gelu_mul_fast(float *a, const float *b, size_t n);
void g4_softcap_fast(float *x, size_t n, float cap);
/* out[i] += a * v[i] with v in f16 or f32 (attention's value rows): references, and the CPU's kernels
 * (fused multiply-add: within one rounding per element of the reference) */
void g4_axpy_f16(float a, const uint16_t *v, float *out, int n);
void g4_axpy_f32(float a, const float *v, float *out, int n);
void g4_axpy_f16_fast(float a, const uint16_t *v, float *out, int n);
void g4_axpy_f32_fast(float a, const float *v, float *out, int n);
#if defined(__x86_64__)
void g4_axpy_f16_avx2(float a, const uint16_t *v, float *out, int n);
void g4_axpy_f32_avx2(float a, const float *v, float *out, int n);
void g4_gelu_mul_avx2(float *a, const float *b, size_t n);
void g4_softcap_avx2(float *x, size_t n, float cap);
#endif

/* NEOX RoPE on one head of d values, rotating the first n_rot dims (pairs i, i + n_rot/2):
 * angle_i = pos * base^(-2i/n_rot) / (freq_factors ? freq_factors[i] : 1) */
void g4_rope_neox(float *x, int d, int n_rot, int pos, float base, const float *freq_factors);
/* the same in two steps: the (cos, sin) pairs of a position (n_rot floats), computed once per position
 * and layer kind, then applied to each head; bit-identical to g4_rope_neox */
void g4_rope_cs(float *cs, int n_rot, int pos, float base, const float *freq_factors);
void g4_rope_neox_cs(float *x, int n_rot, const float *cs);
/* in-place softmax over n values */
void g4_softmax(float *x, int n);

#endif
