/* Internal to the TurboQuant files (turboquant.c and the SIMD kernel files): the pieces of encoding
 * that the SIMD code shares with the scalar reference, so both produce bit-identical records. */
#ifndef G4_KV_TURBOQUANT_INTERNAL_H
#define G4_KV_TURBOQUANT_INTERNAL_H

#include "kv/turboquant.h"

/* Σ y_i² in double, in the reference order: eight partial sums (element i into sum i % 8), combined as
 * ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)). Each (double)y² is exact, so FMA or not, any
 * implementation of this order gives the same bits. */
double g4_tq_norm2_ref(const float *y, int d);

/* The unit-variance scale of a vector of squared norm n2 > 0: z_i = y_i · zs. */
static inline float g4_tq_zscale(int d, double n2) { return (float)(__builtin_sqrt((double)d) / __builtin_sqrt(n2)); }

/* The scale s of p->scale_mode for the indices idx[d] (k = #{boundaries < z_i}) of y, n2 > 0. */
float g4_tq_scale_of(const g4_tq_params *p, const float *y, double n2, float zs, const uint8_t *idx);
/* stores s (fp16, clamped to ±65504) in a tq record */
void g4_tq_put_scale(const g4_tq_params *p, uint8_t *rec, float s);
/* tq record from the indices: g4_tq_scale_of, then the scalar packing; n2 == 0 (or NaN) gives the
 * zero (NaN) record and idx is not read. */
void g4_tq_finish_record(const g4_tq_params *p, const float *y, double n2, float zs, const uint8_t *idx, uint8_t *rec);

#endif
