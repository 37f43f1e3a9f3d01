/* SIMD kernels against their scalar references (src/quant/simd.h), for every kernel set the CPU has.
 *
 * Inputs: random bytes for the weight quants (every bit pattern, e.g. Q8_0's -128), block scales drawn
 * over the whole fp16 range (subnormal to 2^15), activations with per-block magnitudes from 2^-20 to
 * 2^20 (2^+-10 against Q8_1, whose block sum is an fp16; 2^+-40 for the float types and Q8_K), never
 * zero; sizes of 1, 3, 7 and 33 blocks (and odd element counts for the float types).
 *
 * Tolerances:
 *   from_float of Q8_0 / Q8_1 / Q8_K: bit-identical (memcmp), including halfway cases of the rounding;
 *   dot_q of Q4_K / Q5_K / Q6_K: bit-identical (exact integer sums per super-block, same float epilogue);
 *   dot_q of the other types: the per-block integer (or float product) parts are exact, only the order
 *   of the float accumulation differs, so |simd - ref| <= (nb + 48) * FLT_EPSILON * A, where nb is the
 *   number of blocks (32-value chunks for float types) and A the sum of |w_i * x_i| over the dequantized
 *   operands (plus |m * s| per block for Q4_1 / Q5_1): both results are within (nb + 40) u A of the
 *   exact sum by the recursive-summation bound.
 *
 *   dot_q_multi (several activation rows): bit-identical to the single-row SIMD kernel, row by row;
 *   dot_f32 (exact path): the same bound as the dots above, with float activations;
 *   to_float of F16: bit-exact on every one of the 65536 halves (NaNs included).
 *
 *   test_simd --bench   also prints a microbenchmark of every dot_q (GB/s of weight bytes, scalar vs SIMD).
 *
 * The AVX-512 kernels run here only on a CPU with AVX-512 F/BW/VL/VNNI (and AVX512_BF16 for vdpbf16ps);
 * their source is also linked a second time, compiled against SIMDe's portable intrinsics (the *_emu
 * functions, see the Makefile), and checked the same way on any x86-64 CPU when libsimde-dev is there.
 */
#include "quant/blocks.h"
#include "quant/simd.h"
#include "quant/types.h"
#include "util/util.h"

#include "t.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *isa;
    int type;
    g4_dot_q_fn ref, simd;
    int exact; /* bit-identical expected */
} dot_case;

typedef struct {
    const char *isa;
    int type;
    g4_from_float_fn ref, simd;
} quant_case;

typedef struct {
    const char *isa;
    int type;
    g4_dot_q_fn single; /* the kernel the multi-row one must match bit for bit */
    g4_dot_q_multi_fn multi;
} multi_case;

typedef struct {
    const char *isa;
    int type;
    g4_dot_f32_fn ref, simd;
} f32_case;

#if defined(G4_HAVE_AVX2_KERNELS)
static const dot_case avx2_dots[] = {
    {"avx2", G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0, g4_dot_q_q8_0_q8_0_avx2, 0},
    {"avx2", G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0, g4_dot_q_q4_0_q8_0_avx2, 0},
    {"avx2", G4_TYPE_Q4_K, g4_dot_q_q4_K_q8_K, g4_dot_q_q4_K_q8_K_avx2, 1},
    {"avx2", G4_TYPE_Q6_K, g4_dot_q_q6_K_q8_K, g4_dot_q_q6_K_q8_K_avx2, 1},
    {"avx2", G4_TYPE_F16, g4_dot_q_f16_f16, g4_dot_q_f16_f16_avx2, 0},
    {"avx2", G4_TYPE_Q5_K, g4_dot_q_q5_K_q8_K, g4_dot_q_q5_K_q8_K_avx2, 1},
    {"avx2", G4_TYPE_Q5_0, g4_dot_q_q5_0_q8_0, g4_dot_q_q5_0_q8_0_avx2, 0},
    {"avx2", G4_TYPE_Q4_1, g4_dot_q_q4_1_q8_1, g4_dot_q_q4_1_q8_1_avx2, 0},
    {"avx2", G4_TYPE_Q5_1, g4_dot_q_q5_1_q8_1, g4_dot_q_q5_1_q8_1_avx2, 0},
    {"avx2", G4_TYPE_BF16, g4_dot_q_bf16_bf16, g4_dot_q_bf16_bf16_avx2, 0},
    {"avx2", G4_TYPE_F32, g4_dot_q_f32_f32, g4_dot_q_f32_f32_avx2, 0},
};
static const multi_case avx2_multis[] = {
    {"avx2", G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0_avx2, g4_dot_q_multi_q8_0_q8_0_avx2},
    {"avx2", G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0_avx2, g4_dot_q_multi_q4_0_q8_0_avx2},
    {"avx2", G4_TYPE_Q4_K, g4_dot_q_q4_K_q8_K_avx2, g4_dot_q_multi_q4_K_q8_K_avx2},
    {"avx2", G4_TYPE_Q6_K, g4_dot_q_q6_K_q8_K_avx2, g4_dot_q_multi_q6_K_q8_K_avx2},
};
static const f32_case avx2_f32s[] = {
    {"avx2", G4_TYPE_F32, g4_dot_f32_f32, g4_dot_f32_f32_avx2},
    {"avx2", G4_TYPE_F16, g4_dot_f32_f16, g4_dot_f32_f16_avx2},
    {"avx2", G4_TYPE_Q8_0, g4_dot_f32_q8_0, g4_dot_f32_q8_0_avx2},
    {"avx2", G4_TYPE_Q4_0, g4_dot_f32_q4_0, g4_dot_f32_q4_0_avx2},
};
static const quant_case avx2_quants[] = {
    {"avx2", G4_TYPE_Q8_0, g4_from_float_q8_0, g4_from_float_q8_0_avx2},
    {"avx2", G4_TYPE_Q8_1, g4_from_float_q8_1, g4_from_float_q8_1_avx2},
    {"avx2", G4_TYPE_Q8_K, g4_from_float_q8_K, g4_from_float_q8_K_avx2},
};
#endif

#if defined(G4_HAVE_NEON_KERNELS)
/* the integer dots exist twice: ARMv8.0 (neon) and with SDOT (neon-dotprod) */
#define NEON_INT_DOTS(isa, S)                                                                      \
    {isa, G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0, g4_dot_q_q8_0_q8_0_##S, 0},                             \
    {isa, G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0, g4_dot_q_q4_0_q8_0_##S, 0},                             \
    {isa, G4_TYPE_Q4_K, g4_dot_q_q4_K_q8_K, g4_dot_q_q4_K_q8_K_##S, 1},                             \
    {isa, G4_TYPE_Q6_K, g4_dot_q_q6_K_q8_K, g4_dot_q_q6_K_q8_K_##S, 1},                             \
    {isa, G4_TYPE_Q5_K, g4_dot_q_q5_K_q8_K, g4_dot_q_q5_K_q8_K_##S, 1},                             \
    {isa, G4_TYPE_Q5_0, g4_dot_q_q5_0_q8_0, g4_dot_q_q5_0_q8_0_##S, 0},                             \
    {isa, G4_TYPE_Q4_1, g4_dot_q_q4_1_q8_1, g4_dot_q_q4_1_q8_1_##S, 0},                             \
    {isa, G4_TYPE_Q5_1, g4_dot_q_q5_1_q8_1, g4_dot_q_q5_1_q8_1_##S, 0},
#define NEON_MULTIS(isa, S)                                                                        \
    {isa, G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0_##S, g4_dot_q_multi_q8_0_q8_0_##S},                       \
    {isa, G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0_##S, g4_dot_q_multi_q4_0_q8_0_##S},                       \
    {isa, G4_TYPE_Q4_K, g4_dot_q_q4_K_q8_K_##S, g4_dot_q_multi_q4_K_q8_K_##S},                       \
    {isa, G4_TYPE_Q6_K, g4_dot_q_q6_K_q8_K_##S, g4_dot_q_multi_q6_K_q8_K_##S},
static const dot_case neon_dots[] = {
    NEON_INT_DOTS("neon", neon)
    {"neon", G4_TYPE_F16, g4_dot_q_f16_f16, g4_dot_q_f16_f16_neon, 0},
    {"neon", G4_TYPE_BF16, g4_dot_q_bf16_bf16, g4_dot_q_bf16_bf16_neon, 0},
    {"neon", G4_TYPE_F32, g4_dot_q_f32_f32, g4_dot_q_f32_f32_neon, 0},
};
static const dot_case neon_dp_dots[] = {NEON_INT_DOTS("neon-dotprod", neon_dotprod)};
/* the two builds against each other: bit-identical (exact integer sums, the same float code) */
static const dot_case neon_dp_same[] = {
    {"neon-dotprod=neon", G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0_neon, g4_dot_q_q8_0_q8_0_neon_dotprod, 1},
    {"neon-dotprod=neon", G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0_neon, g4_dot_q_q4_0_q8_0_neon_dotprod, 1},
    {"neon-dotprod=neon", G4_TYPE_Q5_0, g4_dot_q_q5_0_q8_0_neon, g4_dot_q_q5_0_q8_0_neon_dotprod, 1},
    {"neon-dotprod=neon", G4_TYPE_Q4_1, g4_dot_q_q4_1_q8_1_neon, g4_dot_q_q4_1_q8_1_neon_dotprod, 1},
    {"neon-dotprod=neon", G4_TYPE_Q5_1, g4_dot_q_q5_1_q8_1_neon, g4_dot_q_q5_1_q8_1_neon_dotprod, 1},
};
static const multi_case neon_multis[] = {NEON_MULTIS("neon", neon)};
static const multi_case neon_dp_multis[] = {NEON_MULTIS("neon-dotprod", neon_dotprod)};
static const f32_case neon_f32s[] = {
    {"neon", G4_TYPE_F32, g4_dot_f32_f32, g4_dot_f32_f32_neon},
    {"neon", G4_TYPE_F16, g4_dot_f32_f16, g4_dot_f32_f16_neon},
    {"neon", G4_TYPE_Q8_0, g4_dot_f32_q8_0, g4_dot_f32_q8_0_neon},
    {"neon", G4_TYPE_Q4_0, g4_dot_f32_q4_0, g4_dot_f32_q4_0_neon},
};
static const quant_case neon_quants[] = {
    {"neon", G4_TYPE_Q8_0, g4_from_float_q8_0, g4_from_float_q8_0_neon},
    {"neon", G4_TYPE_Q8_1, g4_from_float_q8_1, g4_from_float_q8_1_neon},
    {"neon", G4_TYPE_Q8_K, g4_from_float_q8_K, g4_from_float_q8_K_neon},
};
#undef NEON_INT_DOTS
#undef NEON_MULTIS
#endif

#if defined(G4_HAVE_AVX512_KERNELS)
/* AVX-512: the real kernels (S empty, run when the CPU has AVX-512 F/BW/VL/VNNI) and the same source
 * compiled against SIMDe's portable intrinsics (S = _emu, G4_HAVE_SIMDE: run on any x86-64 CPU) */
#define AVX512_DOTS(isa, S)                                                                        \
    {isa, G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0, g4_dot_q_q8_0_q8_0_avx512##S, 0},                       \
    {isa, G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0, g4_dot_q_q4_0_q8_0_avx512##S, 0},                       \
    {isa, G4_TYPE_Q4_K, g4_dot_q_q4_K_q8_K, g4_dot_q_q4_K_q8_K_avx512##S, 1},                       \
    {isa, G4_TYPE_Q6_K, g4_dot_q_q6_K_q8_K, g4_dot_q_q6_K_q8_K_avx512##S, 1},                       \
    {isa, G4_TYPE_Q5_K, g4_dot_q_q5_K_q8_K, g4_dot_q_q5_K_q8_K_avx512##S, 1},                       \
    {isa, G4_TYPE_F16, g4_dot_q_f16_f16, g4_dot_q_f16_f16_avx512##S, 0},                            \
    {isa, G4_TYPE_BF16, g4_dot_q_bf16_bf16, g4_dot_q_bf16_bf16_avx512##S, 0},                       \
    {isa, G4_TYPE_F32, g4_dot_q_f32_f32, g4_dot_q_f32_f32_avx512##S, 0},
#define AVX512_BF16_DOTS(isa, S) {isa, G4_TYPE_BF16, g4_dot_q_bf16_bf16, g4_dot_q_bf16_bf16_avx512bf16##S, 0},
#define AVX512_MULTIS(isa, S)                                                                      \
    {isa, G4_TYPE_Q8_0, g4_dot_q_q8_0_q8_0_avx512##S, g4_dot_q_multi_q8_0_q8_0_avx512##S},           \
    {isa, G4_TYPE_Q4_0, g4_dot_q_q4_0_q8_0_avx512##S, g4_dot_q_multi_q4_0_q8_0_avx512##S},           \
    {isa, G4_TYPE_Q4_K, g4_dot_q_q4_K_q8_K_avx512##S, g4_dot_q_multi_q4_K_q8_K_avx512##S},           \
    {isa, G4_TYPE_Q6_K, g4_dot_q_q6_K_q8_K_avx512##S, g4_dot_q_multi_q6_K_q8_K_avx512##S},
#define AVX512_QUANTS(isa, S)                                                                      \
    {isa, G4_TYPE_Q8_0, g4_from_float_q8_0, g4_from_float_q8_0_avx512##S},                          \
    {isa, G4_TYPE_Q8_1, g4_from_float_q8_1, g4_from_float_q8_1_avx512##S},                          \
    {isa, G4_TYPE_Q8_K, g4_from_float_q8_K, g4_from_float_q8_K_avx512##S},
static const dot_case avx512_dots[] = {AVX512_DOTS("avx512", )};
static const dot_case avx512_bf16_dots[] = {AVX512_BF16_DOTS("avx512bf16", )};
static const multi_case avx512_multis[] = {AVX512_MULTIS("avx512", )};
static const quant_case avx512_quants[] = {AVX512_QUANTS("avx512", )};
#if defined(G4_HAVE_SIMDE)
static const dot_case avx512_emu_dots[] = {AVX512_DOTS("avx512-emu", _emu) AVX512_BF16_DOTS("avx512bf16-emu", _emu)};
static const multi_case avx512_emu_multis[] = {AVX512_MULTIS("avx512-emu", _emu)};
static const quant_case avx512_emu_quants[] = {AVX512_QUANTS("avx512-emu", _emu)};
#endif
#undef AVX512_DOTS
#undef AVX512_BF16_DOTS
#undef AVX512_MULTIS
#undef AVX512_QUANTS
#endif

/* ---- random inputs ---- */

/* random finite fp16 of magnitude 2^-24 .. 2^15 (subnormals included), random sign */
static uint16_t rand_half(int allow_neg) {
    for (;;) {
        uint16_t h = (uint16_t)(t_rand64() >> 48);
        if (!allow_neg) h &= 0x7fff;
        if ((h & 0x7c00) == 0x7c00) continue; /* inf / nan */
        if ((h & 0x7fff) == 0) continue;
        return h;
    }
}

/* bf16 of a random float of magnitude 2^-40 .. 2^40 */
static float rand_mag(void) {
    const int e = (int)(t_rand64() % 81) - 40;
    return ldexpf(t_randf(), e);
}

/* byte offsets of the fp16 scale fields in a block of type t (-1 ends) */
static const int *half_fields(int t) {
    static const int f0[] = {0, -1}, f02[] = {0, 2, -1}, f6k[] = {208, -1}, none[] = {-1};
    switch (t) {
    case G4_TYPE_Q4_0:
    case G4_TYPE_Q5_0:
    case G4_TYPE_Q8_0:
        return f0;
    case G4_TYPE_Q4_1:
    case G4_TYPE_Q5_1:
    case G4_TYPE_Q4_K:
    case G4_TYPE_Q5_K:
        return f02;
    case G4_TYPE_Q6_K:
        return f6k;
    default:
        return none;
    }
}

/* n values of weights of type t: random bytes with controlled scale fields */
static void rand_weights(int t, void *dst, int64_t n) {
    const g4_type_traits *tr = g4_type_traits_get(t);
    uint8_t *p = dst;
    const int64_t nb = n / tr->blck;
    if (t == G4_TYPE_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = rand_mag();
        return;
    }
    if (t == G4_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = rand_half(1);
        return;
    }
    if (t == G4_TYPE_BF16) {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = g4_fp32_to_bf16(rand_mag());
        return;
    }
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + (size_t)b * tr->type_size;
        for (size_t k = 0; k < tr->type_size; k++) blk[k] = (uint8_t)(t_rand64() >> 56);
        for (const int *f = half_fields(t); *f >= 0; f++) {
            const uint16_t h = rand_half(1);
            memcpy(blk + *f, &h, 2);
        }
    }
}

/* activations: blocks of 32 values with magnitudes varying per block, 2^-emax .. 2^emax (the Q8_0 /
 * Q8_1 scale is an fp16: amax / 127 must stay within its range, and Q8_1's fp16 block sum too) */
static void rand_acts(float *x, int64_t n, int emax) {
    for (int64_t i = 0; i < n; i += 32) {
        const float s = ldexpf(1.0f, (int)(t_rand64() % (unsigned)(2 * emax + 1)) - emax);
        for (int64_t j = i; j < n && j < i + 32; j++) x[j] = t_randf() * s;
    }
}

/* ---- checks ---- */

static double abs_terms(int t, const void *w, const void *xq, int vdt, int64_t n) {
    const g4_type_traits *tw = g4_type_traits_get(t), *tx = g4_type_traits_get(vdt);
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    tw->to_float(w, a, n);
    tx->to_float(xq, b, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    if (t == G4_TYPE_Q4_1 || t == G4_TYPE_Q5_1) { /* plus |m * s| per block */
        const uint8_t *wb = w;
        const block_q8_1 *xb = xq;
        for (int64_t i = 0; i < n / 32; i++) {
            uint16_t m;
            memcpy(&m, wb + (size_t)i * tw->type_size + 2, 2);
            s += fabs((double)g4_fp16_to_fp32(m) * g4_fp16_to_fp32(xb[i].s));
        }
    }
    free(a);
    free(b);
    return s;
}

static void check_dot(const dot_case *c) {
    const g4_type_traits *tr = g4_type_traits_get(c->type);
    const g4_type_traits *at = g4_type_traits_get(tr->vec_dot_type);
    static const int64_t blocks[] = {1, 3, 7, 33};
    static const int64_t odd[] = {1, 3, 7, 33, 37, 100, 257};
    const int is_float = tr->blck == 1;
    const int ncase = is_float ? 7 : 4;
    int fails = 0, runs = 0;
    double worst = 0;
    for (int rep = 0; rep < 20; rep++)
        for (int k = 0; k < ncase; k++) {
            const int64_t n = is_float ? odd[k] : blocks[k] * (at->blck > tr->blck ? at->blck : tr->blck);
            void *w = malloc(g4_type_row_bytes(c->type, n));
            void *xq = malloc(g4_type_row_bytes(tr->vec_dot_type, n));
            float *x = malloc((size_t)n * sizeof *x);
            rand_weights(c->type, w, n);
            if (is_float) {
                rand_weights(c->type, xq, n); /* the activation encoding is the weight type */
            } else {
                rand_acts(x, n, tr->vec_dot_type == G4_TYPE_Q8_1 ? 10 : 20);
                at->from_float(x, xq, n);
            }
            const float ref = c->ref(w, xq, n), got = c->simd(w, xq, n);
            runs++;
            if (c->exact) {
                uint32_t ur, ug;
                memcpy(&ur, &ref, 4);
                memcpy(&ug, &got, 4);
                if (ur != ug && fails++ < 3)
                    CHECK(ur == ug, "%s %s n=%lld: simd %.9g != scalar %.9g", c->isa, tr->name, (long long)n, got, ref);
            } else {
                const int64_t nb = is_float ? (n + 31) / 32 : n / 32;
                const double A = abs_terms(c->type, w, xq, tr->vec_dot_type, n);
                const double tol = (double)(nb + 48) * FLT_EPSILON * A + 1e-300;
                const double err = fabs((double)got - (double)ref);
                if (err / tol > worst) worst = err / tol;
                if (!(err <= tol) && fails++ < 3)
                    CHECK(err <= tol, "%s %s n=%lld: simd %.9g scalar %.9g err %g > tol %g", c->isa, tr->name,
                          (long long)n, got, ref, err, tol);
            }
            free(w);
            free(xq);
            free(x);
        }
    CHECK(fails == 0, "%s dot_q %s: %d of %d differ", c->isa, tr->name, fails, runs);
    printf("ok %s dot_q %-5s %3d inputs, %s (worst err/tol %.3f)\n", c->isa, tr->name, runs,
           c->exact ? "bit-identical" : "within tolerance", worst);
}

static void check_quant(const quant_case *c) {
    const g4_type_traits *tr = g4_type_traits_get(c->type);
    static const int64_t blocks[] = {1, 3, 7, 33};
    int fails = 0, runs = 0;
    for (int rep = 0; rep < 40; rep++)
        for (int k = 0; k < 4; k++) {
            const int64_t n = blocks[k] * tr->blck;
            const size_t bytes = g4_type_row_bytes(c->type, n);
            float *x = malloc((size_t)n * sizeof *x);
            uint8_t *a = malloc(bytes), *b = malloc(bytes);
            rand_acts(x, n, c->type == G4_TYPE_Q8_K ? 40 : 20);
            if (rep % 4 == 1) /* halfway cases: a block whose maximum is 127 quantizes with scale 1 */
                for (int64_t i = 0; i < n; i++) {
                    const int kk = (int)(t_rand64() % 127);
                    const float h = (float)kk + 0.5f;
                    const int r = (int)(t_rand64() % 3);
                    float v = r == 0 ? h : r == 1 ? nextafterf(h, 0.0f) : nextafterf(h, 200.0f);
                    if (v == 0.0f) v = 0.25f;
                    x[i] = (t_rand64() & 1) ? -v : v;
                    if (i % tr->blck == 0) x[i] = (t_rand64() & 1) ? -127.0f : 127.0f;
                }
            if (rep % 4 == 2) /* ties for the largest magnitude, with both signs */
                for (int64_t i = 0; i < n; i++) x[i] = (t_rand64() & 1) ? -3.0f : (t_rand64() & 1) ? 3.0f : t_randf();
            memset(a, 0xAA, bytes);
            memset(b, 0x55, bytes);
            c->ref(x, a, n);
            c->simd(x, b, n);
            runs++;
            if (memcmp(a, b, bytes) && fails++ < 3)
                CHECK(0, "%s from_float %s n=%lld differs from the scalar quantizer", c->isa, tr->name, (long long)n);
            free(x);
            free(a);
            free(b);
        }
    CHECK(fails == 0, "%s from_float %s: %d of %d differ", c->isa, tr->name, fails, runs);
    printf("ok %s from_float %-5s %3d inputs, bit-identical\n", c->isa, tr->name, runs);
}

/* exact path: dot_f32 within the accumulation tolerance, to_float of F16 bit-exact on all 65536 halves */
static void check_dot_f32(const f32_case *c) {
    const g4_type_traits *tr = g4_type_traits_get(c->type);
    static const int64_t sizes[] = {1, 3, 7, 33};
    static const int64_t odd[] = {1, 3, 7, 33, 37, 100, 257};
    const int is_float = tr->blck == 1, ncase = is_float ? 7 : 4;
    int fails = 0, runs = 0;
    double worst = 0;
    for (int rep = 0; rep < 20; rep++)
        for (int k = 0; k < ncase; k++) {
            const int64_t n = is_float ? odd[k] : sizes[k] * tr->blck;
            void *w = malloc(g4_type_row_bytes(c->type, n));
            float *x = malloc((size_t)n * sizeof *x), *wf = malloc((size_t)n * sizeof *wf);
            rand_weights(c->type, w, n);
            rand_acts(x, n, 40);
            tr->to_float(w, wf, n);
            double A = 0;
            for (int64_t i = 0; i < n; i++) A += fabs((double)wf[i] * x[i]);
            const float ref = c->ref(w, x, n), got = c->simd(w, x, n);
            const double tol = (double)((n + 31) / 32 + 48) * FLT_EPSILON * A + 1e-300;
            const double err = fabs((double)got - (double)ref);
            if (err / tol > worst) worst = err / tol;
            runs++;
            if (!(err <= tol) && fails++ < 3)
                CHECK(err <= tol, "%s dot_f32 %s n=%lld: simd %.9g scalar %.9g err %g > tol %g", c->isa, tr->name,
                      (long long)n, got, ref, err, tol);
            free(w);
            free(x);
            free(wf);
        }
    CHECK(fails == 0, "%s dot_f32 %s: %d of %d differ", c->isa, tr->name, fails, runs);
    printf("ok %s dot_f32 %-5s %3d inputs, within tolerance (worst err/tol %.3f)\n", c->isa, tr->name, runs, worst);
}

static void check_to_float_f16(const char *isa, g4_to_float_fn f) {
    uint16_t *h = malloc(65536 * 2 + 14);
    float *a = malloc((65536 + 7) * sizeof *a), *b = malloc((65536 + 7) * sizeof *b);
    for (int i = 0; i < 65536 + 7; i++) h[i] = (uint16_t)(i * 40503u); /* every half, permuted; odd tail */
    g4_to_float_f16(h, a, 65536 + 7);
    f(h, b, 65536 + 7);
    CHECK(!memcmp(a, b, (65536 + 7) * sizeof *a), "%s to_float F16 differs from the reference", isa);
    printf("ok %s to_float F16 all 65536 halves, bit-exact\n", isa);
    free(h);
    free(a);
    free(b);
}

/* dot_q_multi: every activation row bit-identical to the single-row kernel (and g4_dot_q_multi, the
 * dispatching wrapper, to the installed dot_q) */
static void check_multi(const multi_case *c) {
    const g4_type_traits *tr = g4_type_traits_get(c->type), *at = g4_type_traits_get(tr->vec_dot_type);
    static const int64_t blocks[] = {1, 3, 7, 33};
    int fails = 0, runs = 0;
    for (int k = 0; k < 4; k++)
        for (int nx = 1; nx <= 11; nx++) {
            const int64_t n = blocks[k] * at->blck;
            const size_t xs = g4_type_row_bytes(tr->vec_dot_type, n) + 4 * (size_t)(nx % 3); /* any stride */
            void *w = malloc(g4_type_row_bytes(c->type, n));
            uint8_t *xq = malloc(xs * (size_t)nx);
            float *x = malloc((size_t)n * sizeof *x), out[11], out2[11];
            rand_weights(c->type, w, n);
            for (int j = 0; j < nx; j++) {
                rand_acts(x, n, 20);
                at->from_float(x, xq + (size_t)j * xs, n);
            }
            c->multi(w, xq, xs, nx, out, n);
            g4_dot_q_multi(tr, w, xq, xs, nx, out2, n);
            for (int j = 0; j < nx; j++) {
                const float r = c->single(w, xq + (size_t)j * xs, n), r2 = tr->dot_q(w, xq + (size_t)j * xs, n);
                runs++;
                if ((memcmp(&r, &out[j], 4) || memcmp(&r2, &out2[j], 4)) && fails++ < 3)
                    CHECK(0, "%s dot_q_multi %s n=%lld nx=%d row %d: %.9g (wrapper %.9g), single row %.9g (%.9g)", c->isa,
                          tr->name, (long long)n, nx, j, out[j], out2[j], r, r2);
            }
            free(w);
            free(xq);
            free(x);
        }
    CHECK(fails == 0, "%s dot_q_multi %s: %d of %d differ", c->isa, tr->name, fails, runs);
    printf("ok %s dot_q_multi %-5s %3d rows, bit-identical to dot_q\n", c->isa, tr->name, runs);
}

/* ---- microbenchmark: one weight matrix streamed through dot_q, GB/s of weight bytes ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double bench_one(g4_dot_q_fn f, const uint8_t *w, size_t rb, int rows, const void *xq, int64_t n) {
    volatile float sink = 0;
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) {
        const double t0 = now_s();
        float s = 0;
        for (int r = 0; r < rows; r++) s += f(w + (size_t)r * rb, xq, n);
        const double t = now_s() - t0;
        sink += s;
        if (t < best) best = t;
    }
    (void)sink;
    return (double)rows * (double)rb / best / 1e9;
}

static void bench(const dot_case *cases, int ncases) {
    /* rows of 2048 values: 256 KiB of weights (cache-resident) and 256 MiB (streamed from RAM), one thread */
    const int64_t n = 2048;
    printf("\n%-5s %-6s %12s %12s %8s %12s %12s %8s\n", "isa", "type", "L2 scalar", "L2 simd", "x", "RAM scalar",
           "RAM simd", "x");
    for (int i = 0; i < ncases; i++) {
        const dot_case *c = &cases[i];
        const g4_type_traits *tr = g4_type_traits_get(c->type), *at = g4_type_traits_get(tr->vec_dot_type);
        const size_t rb = g4_type_row_bytes(c->type, n);
        const int rows_big = (int)((256u << 20) / rb); /* 256 MiB: streamed from RAM */
        uint8_t *w = malloc(rb * (size_t)rows_big);
        void *xq = malloc(g4_type_row_bytes(tr->vec_dot_type, n));
        float *x = malloc((size_t)n * sizeof *x);
        rand_weights(c->type, w, n);
        for (int r = 1; r < rows_big; r++) memcpy(w + (size_t)r * rb, w, rb);
        for (int64_t j = 0; j < n; j++) x[j] = t_randf();
        if (tr->blck == 1) rand_weights(c->type, xq, n);
        else at->from_float(x, xq, n);
        const int rows_small = (int)(262144 / rb) + 1;
        const double s1 = bench_one(c->ref, w, rb, rows_small, xq, n), v1 = bench_one(c->simd, w, rb, rows_small, xq, n);
        const double s2 = bench_one(c->ref, w, rb, rows_big, xq, n), v2 = bench_one(c->simd, w, rb, rows_big, xq, n);
        printf("%-5s %-6s %10.2f %12.2f %8.1f %12.2f %12.2f %8.1f\n", c->isa, tr->name, s1, v1, v1 / s1, s2, v2, v2 / s2);
        free(w);
        free(xq);
        free(x);
    }
}

/* a prefill-shaped product: 32 activation rows against 256 KiB of weight rows, single-row kernel per
 * (row, activation) vs the multi-row kernel; GB/s of weight bytes times activation rows */
static void bench_multi(const multi_case *cases, int ncases) {
    const int64_t n = 2048;
    const int T = 32;
    printf("\n%-5s %-6s %14s %14s %6s   (prefill: %d activation rows, GB/s of weights x rows)\n", "isa", "type",
           "dot_q loop", "dot_q_multi", "x", T);
    for (int i = 0; i < ncases; i++) {
        const multi_case *c = &cases[i];
        const g4_type_traits *tr = g4_type_traits_get(c->type), *at = g4_type_traits_get(tr->vec_dot_type);
        const size_t rb = g4_type_row_bytes(c->type, n), xs = g4_type_row_bytes(tr->vec_dot_type, n);
        const int rows = (int)(262144 / rb) + 1;
        uint8_t *w = malloc(rb * (size_t)rows), *xq = malloc(xs * T);
        float *x = malloc((size_t)n * sizeof *x), out[32];
        rand_weights(c->type, w, n * rows);
        for (int t = 0; t < T; t++) {
            for (int64_t j = 0; j < n; j++) x[j] = t_randf();
            at->from_float(x, xq + (size_t)t * xs, n);
        }
        double best1 = 1e30, best2 = 1e30;
        volatile float sink = 0;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_s();
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < T; t++) out[t] = c->single(w + (size_t)r * rb, xq + (size_t)t * xs, n);
            double t1 = now_s();
            sink += out[0];
            for (int r = 0; r < rows; r++) c->multi(w + (size_t)r * rb, xq, xs, T, out, n);
            double t2 = now_s();
            sink += out[0];
            if (t1 - t0 < best1) best1 = t1 - t0;
            if (t2 - t1 < best2) best2 = t2 - t1;
        }
        (void)sink;
        const double bytes = (double)rows * (double)rb * T;
        printf("%-5s %-6s %14.2f %14.2f %6.2f\n", c->isa, tr->name, bytes / best1 / 1e9, bytes / best2 / 1e9, best1 / best2);
        free(w);
        free(xq);
        free(x);
    }
}

int main(int argc, char **argv) {
    int do_bench = argc > 1 && !strcmp(argv[1], "--bench");
    g4_types_init();
    const char *isa = g4_types_isa();
    printf("kernel set in use: %s\n", isa);
    CHECK(!strcmp(isa, "scalar") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512") || !strcmp(isa, "neon") ||
              !strcmp(isa, "neon-dotprod"),
          "unknown kernel set %s", isa);
#if defined(G4_HAVE_AVX2_KERNELS)
    if (g4_cpu_has_avx2()) {
        const char *want = getenv("G4_ISA");
        if (!want || !*want || !strcmp(want, "avx2") || !strcmp(want, "avx512")) {
            /* AVX-512 over AVX2 unless G4_ISA=avx2; types without an AVX-512 kernel keep the AVX2 one */
            const int a512 = g4_cpu_has_avx512() && !(want && !strcmp(want, "avx2"));
            CHECK(!strcmp(isa, a512 ? "avx512" : "avx2"), "G4_ISA=%s on an AVX2%s CPU but kernel set %s", want ? want : "",
                  g4_cpu_has_avx512() ? "+AVX-512" : "", isa);
            CHECK(g4_type_traits_get(G4_TYPE_Q4_K)->dot_q == (a512 ? g4_dot_q_q4_K_q8_K_avx512 : g4_dot_q_q4_K_q8_K_avx2),
                  "Q4_K dot_q not installed");
            CHECK(g4_type_traits_get(G4_TYPE_Q8_K)->from_float == (a512 ? g4_from_float_q8_K_avx512 : g4_from_float_q8_K_avx2),
                  "Q8_K from_float not installed");
            CHECK(g4_type_traits_get(G4_TYPE_Q5_0)->dot_q == g4_dot_q_q5_0_q8_0_avx2, "Q5_0 dot_q is not the AVX2 one");
        } else if (!strcmp(want, "scalar")) {
            CHECK(!strcmp(isa, "scalar"), "G4_ISA=scalar but kernel set %s", isa);
            CHECK(g4_type_traits_get(G4_TYPE_Q4_K)->dot_q == g4_dot_q_q4_K_q8_K, "scalar Q4_K dot_q replaced");
        }
        for (size_t i = 0; i < sizeof avx2_quants / sizeof avx2_quants[0]; i++) check_quant(&avx2_quants[i]);
        for (size_t i = 0; i < sizeof avx2_dots / sizeof avx2_dots[0]; i++) check_dot(&avx2_dots[i]);
        for (size_t i = 0; i < sizeof avx2_multis / sizeof avx2_multis[0]; i++) check_multi(&avx2_multis[i]);
        for (size_t i = 0; i < sizeof avx2_f32s / sizeof avx2_f32s[0]; i++) check_dot_f32(&avx2_f32s[i]);
        check_to_float_f16("avx2", g4_to_float_f16_avx2);
        if (do_bench) {
            bench(avx2_dots, (int)(sizeof avx2_dots / sizeof avx2_dots[0]));
            bench_multi(avx2_multis, (int)(sizeof avx2_multis / sizeof avx2_multis[0]));
        }
    } else {
        printf("CPU without AVX2/FMA/F16C: AVX2 kernels not tested\n");
    }
    if (g4_cpu_has_avx512()) {
        for (size_t i = 0; i < sizeof avx512_quants / sizeof avx512_quants[0]; i++) check_quant(&avx512_quants[i]);
        for (size_t i = 0; i < sizeof avx512_dots / sizeof avx512_dots[0]; i++) check_dot(&avx512_dots[i]);
        for (size_t i = 0; i < sizeof avx512_multis / sizeof avx512_multis[0]; i++) check_multi(&avx512_multis[i]);
        if (g4_cpu_has_avx512bf16())
            check_dot(&avx512_bf16_dots[0]);
        else
            printf("CPU without AVX512_BF16: the vdpbf16ps kernel is not run natively\n");
        if (do_bench) {
            bench(avx512_dots, (int)(sizeof avx512_dots / sizeof avx512_dots[0]));
            if (g4_cpu_has_avx512bf16()) bench(avx512_bf16_dots, 1);
            bench_multi(avx512_multis, (int)(sizeof avx512_multis / sizeof avx512_multis[0]));
        }
    } else {
        printf("CPU without AVX-512 F/BW/VL/VNNI: the AVX-512 kernels are not run natively\n");
    }
#if defined(G4_HAVE_SIMDE)
    /* the AVX-512 source with SIMDe's portable intrinsics: its logic, on any x86-64 CPU */
    for (size_t i = 0; i < sizeof avx512_emu_quants / sizeof avx512_emu_quants[0]; i++) check_quant(&avx512_emu_quants[i]);
    for (size_t i = 0; i < sizeof avx512_emu_dots / sizeof avx512_emu_dots[0]; i++) check_dot(&avx512_emu_dots[i]);
    for (size_t i = 0; i < sizeof avx512_emu_multis / sizeof avx512_emu_multis[0]; i++) check_multi(&avx512_emu_multis[i]);
#else
    printf("SIMDe (libsimde-dev) not installed: the AVX-512 kernels are not tested in emulation\n");
#endif
#elif defined(G4_HAVE_NEON_KERNELS)
    /* NEON is always there; the SDOT build is tested when the CPU has the extension (under qemu:
     * -cpu max has it, -cpu cortex-a53 lacks it, so tests/neon.sh runs this binary on both) */
    const int dp = g4_cpu_has_neon_dotprod();
    printf("CPU %s the dot-product extension (SDOT)\n", dp ? "has" : "lacks");
    {
        const char *want = getenv("G4_ISA");
        if (!want || !*want) want = "auto";
        const int scalar = !strcmp(want, "scalar"), use_dp = dp && strcmp(want, "neon");
        CHECK(!strcmp(isa, scalar ? "scalar" : use_dp ? "neon-dotprod" : "neon"), "G4_ISA=%s on a CPU %s SDOT: kernel set %s",
              want, dp ? "with" : "without", isa);
        CHECK(g4_type_traits_get(G4_TYPE_Q4_K)->dot_q == (scalar ? g4_dot_q_q4_K_q8_K
                                                          : use_dp ? g4_dot_q_q4_K_q8_K_neon_dotprod
                                                                   : g4_dot_q_q4_K_q8_K_neon),
              "Q4_K dot_q of kernel set %s not installed", isa);
        CHECK(g4_type_traits_get(G4_TYPE_Q8_K)->from_float == (scalar ? g4_from_float_q8_K : g4_from_float_q8_K_neon),
              "Q8_K from_float of kernel set %s not installed", isa);
    }
    for (size_t i = 0; i < sizeof neon_quants / sizeof neon_quants[0]; i++) check_quant(&neon_quants[i]);
    for (size_t i = 0; i < sizeof neon_dots / sizeof neon_dots[0]; i++) check_dot(&neon_dots[i]);
    for (size_t i = 0; i < sizeof neon_multis / sizeof neon_multis[0]; i++) check_multi(&neon_multis[i]);
    for (size_t i = 0; i < sizeof neon_f32s / sizeof neon_f32s[0]; i++) check_dot_f32(&neon_f32s[i]);
    check_to_float_f16("neon", g4_to_float_f16_neon);
    if (dp) {
        for (size_t i = 0; i < sizeof neon_dp_dots / sizeof neon_dp_dots[0]; i++) check_dot(&neon_dp_dots[i]);
        for (size_t i = 0; i < sizeof neon_dp_same / sizeof neon_dp_same[0]; i++) check_dot(&neon_dp_same[i]);
        for (size_t i = 0; i < sizeof neon_dp_multis / sizeof neon_dp_multis[0]; i++) check_multi(&neon_dp_multis[i]);
    } else {
        printf("CPU without SDOT: neon-dotprod kernels not tested\n");
    }
    if (do_bench) {
        bench(neon_dots, (int)(sizeof neon_dots / sizeof neon_dots[0]));
        bench_multi(neon_multis, (int)(sizeof neon_multis / sizeof neon_multis[0]));
        if (dp) {
            bench(neon_dp_dots, (int)(sizeof neon_dp_dots / sizeof neon_dp_dots[0]));
            bench_multi(neon_dp_multis, (int)(sizeof neon_dp_multis / sizeof neon_dp_multis[0]));
        }
    }
#else
    printf("no SIMD kernels for this architecture\n");
    (void)do_bench;
#endif
    return t_done();
}
