/* TurboQuant KV cache, the math core (issue #5): rotation, Lloyd–Max codebooks, packed records and
 * attention on packed records. Self-contained: nothing here knows about layers or the cache layout;
 * the KV cache stores one record per (token, KV head) and calls these functions.
 * Method and measured numbers: docs/turboquant.md; background: ../shared/docs/turboquant.md.
 *
 * ROTATION. Every vector of head dimension d (a power of two, 16 <= d <= 1024) is rotated by
 *     R = H · D,   H = the Walsh–Hadamard matrix of order d normalized by 1/sqrt(d) (orthonormal,
 *                  symmetric, H·H = I),   D = diag(sign), sign_i = ±1.
 * so R is orthogonal and R⁻¹ = Rᵀ = D · H. The signs come from a documented generator:
 *     state = seed ^ (0x9E3779B97F4A7C15 * d);  for i = 0 .. d-1: sign_i = (splitmix64(&state) >> 63) ? -1 : +1
 * with splitmix64 as published by S. Vigna (state += 0x9E3779B97F4A7C15; z = state;
 * z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9; z = (z ^ z >> 27) * 0x94D049BB133111EB; return z ^ z >> 31).
 * The default seed is G4_TQ_SEED; anything persisted with packed records must record the seed.
 *
 * CODEBOOKS. For b = 1..4 bits, the 2^b-level Lloyd–Max quantizer of one coordinate of a uniformly
 * random unit vector of R^d (density ∝ (1 - x²)^((d-3)/2) on [-1, 1]), computed at first use (thread
 * safe) by Lloyd iteration on the exact density (closed-form CDF and moments, no tables), converged to
 * 1e-12. Values are kept in unit-variance units: C*_k = c_k · sqrt(d), so a rotated unit vector's
 * coordinates times sqrt(d) are ≈ N(0, 1) and are quantized with the boundaries t*_k.
 *
 * RECORDS. One record per vector (token, KV head); all multi-byte fields little-endian; no alignment
 * needed (fp16 fields are read with memcpy). B = min(d, 32), G = min(d, 128).
 *   q8   d/B blocks of { fp16 scale δ; int8 q[B] }, q = round(y / δ) (half to even), δ = max|y_blk| / 127
 *        of y = R x (ggml's Q8_0 block for B = 32, applied to the rotated vector)        34·d/32 bytes
 *   tq4  d/2 bytes of 4-bit indices, then fp16 scale s. Per B-element block j (bytes j·B/2 ..):
 *        byte m = idx[jB + m] | idx[jB + m + B/2] << 4   (ggml's Q4_0 nibble order)      d/2 + 2 bytes
 *   tq3  2-bit plane (d/4 bytes) with the low two bits of every index, then a 1-bit plane (d/8 bytes)
 *        with the high bit, then fp16 s. 2-bit plane: per G-element group g (bytes g·G/4 ..), byte m
 *        holds elements gG + m + k·G/4 for k = 0..3 in bits 2k, 2k+1 (ggml Q3_K's qs order: one
 *        32-byte load and four shifts give four runs of 32 indices). 1-bit plane: bit i (byte i/8,
 *        bit i%8) is bit 2 of idx[i] (Q3_K's hmask as a plain bitmap).                    d/4 + d/8 + 2
 *   tq2  the 2-bit plane of tq3, then fp16 s                                              d/4 + 2 bytes
 * Index k means centroid C*_k, ascending (0 = most negative). Reconstruction in the rotated domain:
 *     ŷ_i = s · C*_{idx_i}  (tq),   ŷ_i = δ_blk · q_i  (q8);   x̂ = Rᵀ ŷ.
 *
 * SCALE s (tq types), from n = ||x||, z = sqrt(d) · R x / n, C = C*_idx (§1.2.2, §5.4 of the design doc):
 *   G4_TQ_SCALE_NORM (default, "norm-corrected"): s = n / ||C||, so ||x̂|| = ||x|| exactly; inner
 *       products are shrunk by ≈ D_mse/2 (half the paper's bias), the doc's recommendation (§5.1, §5.4);
 *   G4_TQ_SCALE_RAW (the paper): s = n / sqrt(d); inner products shrunk by D_mse;
 *   G4_TQ_SCALE_UNBIASED: s = n · sqrt(d) / <C, z>, so <x̂, x> = ||x||²: unbiased inner products, a
 *       little more variance.
 * s is stored as fp16, clamped to ±65504 (a norm above ≈ 65504·sqrt(d) saturates); a zero vector gets
 * s = 0 and decodes to zeros. fp16 keeps its full relative precision (2^-11) for scales >= 6.1e-5, i.e.
 * coordinate RMS >= 6.1e-5 (tq) or block maximum >= 7.8e-3 (q8); Gemma 4's normed K and V are O(1).
 *
 * ATTENTION (decode; one query head against n records): the query is rotated once (and optionally
 * quantized to int8 per B elements with a float scale); score_t = q · k̂_t = s_t · Σ_i (Rq)_i C*_{idx_i}
 * (or its int8 form s_t · u · Σ_blk qscale_blk · Σ_i q8_i c8_{idx_i}, c8 = the codebook rounded to int8
 * with one float unit u per codebook, see g4_tq_codebook); online softmax (running max and sum, one
 * rescale per tile of 32 keys); values accumulated in the rotated domain, acc += p_t · s_t · C*_{idx};
 * one inverse rotation at the end. Every kernel has a scalar reference (g4_tq_kernels_scalar); an AVX2
 * set is chosen at g4_tq_params_init when the library's kernel set is SIMD (G4_ISA=scalar forces the
 * scalar one). Library code: never exits, reports through status codes.
 */
#ifndef G4_KV_TURBOQUANT_H
#define G4_KV_TURBOQUANT_H

#include "g4.h"
#include <stddef.h>
#include <stdint.h>

#define G4_TQ_MIN_DIM 16
#define G4_TQ_MAX_DIM 1024
#define G4_TQ_MAX_BITS 4
/* default sign seed ("TQsigns" + version byte 1); bump the version when the rotation changes */
#define G4_TQ_SEED 0x54517369676E7301ull

typedef enum {
    G4_TQ_Q8 = 0,  /* rotated int8, one fp16 scale per 32 values (8.5 bits per value) */
    G4_TQ_TQ4 = 1, /* 4-bit Lloyd–Max indices + fp16 scale per vector */
    G4_TQ_TQ3 = 2, /* 3-bit (2-bit plane + 1-bit plane) + fp16 scale */
    G4_TQ_TQ2 = 3, /* 2-bit + fp16 scale */
    G4_TQ_N_TYPES
} g4_tq_type;

typedef enum {
    G4_TQ_SCALE_NORM = 0, /* norm-corrected: ||x̂|| = ||x|| (default) */
    G4_TQ_SCALE_RAW = 1,  /* the paper: s = ||x|| / sqrt(d) */
    G4_TQ_SCALE_UNBIASED = 2,
} g4_tq_scale;

/* The Lloyd–Max codebook of one (d, bits), in unit-variance units (value × sqrt(d) of the raw
 * coordinate). Symmetric: c[k] = -c[n-1-k]; t[k] = (c[k] + c[k+1]) / 2, t[n/2-1] = 0. */
typedef struct g4_tq_codebook {
    int d, bits, n; /* n = 2^bits levels */
    int iters;      /* Lloyd iterations until the centroids moved less than 1e-12 */
    double c[16];   /* centroids, ascending */
    double t[15];   /* decision boundaries, ascending */
    double p[16];   /* probability of each cell */
    double mse;     /* D_mse: E||x - x̃||² for a unit vector x (= d × the per-coordinate MSE) */
    float cf[16];   /* c as float (the reconstruction values) */
    float tf[15];   /* t as float (the encoder's boundaries) */
    int8_t c8[16];  /* c ≈ c8 · unit8 (the integer score path) */
    float unit8;    /* chosen to minimise Σ p_k (c_k - c8_k unit8)² */
    double mse8;    /* D_mse with c8 · unit8 as the reconstruction: mse + Σ p_k (c_k - c8_k unit8)² */
} g4_tq_codebook;

/* The codebook for (d, bits): d a power of two in [G4_TQ_MIN_DIM, G4_TQ_MAX_DIM], bits 1..4.
 * Computed on first use (a few ms; thread safe), then shared and never freed. */
g4_status g4_tq_codebook_get(int d, int bits, const g4_tq_codebook **out, g4_error *err);

struct g4_tq_kernels;

typedef struct g4_tq_params {
    g4_tq_type type;
    g4_tq_scale scale_mode;
    int d, log2d, bits; /* bits: 4/3/2 for tq types, 8 for q8 */
    int blk;            /* B = min(d, 32): q8 block, nibble block, query int8 block */
    size_t record_bytes;
    uint64_t seed;
    const g4_tq_codebook *cb;         /* NULL for q8 */
    const struct g4_tq_kernels *kern; /* score / axpy kernels (may be replaced, e.g. by tests) */
    int8_t c7[16];                    /* tq: the codebook as 7-bit integers for the GQA score kernel, */
    float unit7;                      /*     C*_k ≈ c7[k] · unit7, |c7| <= 63 (see g4_tq_gqa_query) */
    float sign[G4_TQ_MAX_DIM];        /* ±1 */
    float sign_scaled[G4_TQ_MAX_DIM]; /* ±1/sqrt(d): sign and normalization folded together */
} g4_tq_params;

/* Fills p for head dimension d (a power of two in [16, 1024]), type and sign seed (G4_TQ_SEED by
 * default), scale mode G4_TQ_SCALE_NORM, best kernel set. G4_ERR_ARG for an unknown type or a d that is
 * not such a power of two. */
g4_status g4_tq_params_init(g4_tq_params *p, g4_tq_type type, int d, uint64_t seed, g4_error *err);

/* bytes of one record; 0 if (type, d) is not supported */
size_t g4_tq_record_bytes(g4_tq_type type, int d);
/* "q8", "tq4", "tq3", "tq2" (NULL for an unknown type); and back (-1 if unknown) */
const char *g4_tq_type_name(g4_tq_type type);
int g4_tq_type_from_name(const char *name);

/* ---- rotation ------------------------------------------------------------------------------------ */

/* the ±1 signs of (seed, d) as documented above */
void g4_tq_signs(uint64_t seed, int d, float *sign);
/* x <- H x in place: normalized fast Walsh–Hadamard transform (orthonormal, its own inverse);
 * d any power of two >= 1 */
void g4_tq_fwht(float *x, int d);
/* y = R x and x = Rᵀ y (in == out allowed) */
void g4_tq_rotate(const g4_tq_params *p, const float *x, float *y);
void g4_tq_unrotate(const g4_tq_params *p, const float *y, float *x);

/* ---- records ------------------------------------------------------------------------------------- */

/* x (d floats) -> one record of p->record_bytes bytes */
void g4_tq_encode(const g4_tq_params *p, const float *x, uint8_t *rec);
/* the same from y = R x, already rotated */
void g4_tq_encode_rotated(const g4_tq_params *p, const float *y, uint8_t *rec);
/* record -> ŷ (rotated domain) or x̂ = Rᵀ ŷ */
void g4_tq_decode_rotated(const g4_tq_params *p, const uint8_t *rec, float *y);
void g4_tq_decode(const g4_tq_params *p, const uint8_t *rec, float *x);
/* the stored scale of a record (s for tq types; the first block's δ for q8) */
float g4_tq_record_scale(const g4_tq_params *p, const uint8_t *rec);
/* the codebook index of element i of a tq record (0 for q8) */
int g4_tq_record_index(const g4_tq_params *p, const uint8_t *rec, int i);

/* ---- attention ----------------------------------------------------------------------------------- */

/* a query head prepared for the kernels: rotated, and quantized to int8 per B elements */
typedef struct g4_tq_query {
    int d, blk;
    float rot[G4_TQ_MAX_DIM];         /* R q */
    int8_t q8[G4_TQ_MAX_DIM];         /* round(rot / qscale_blk) */
    float qscale[G4_TQ_MAX_DIM / 32]; /* max|rot_blk| / 127 (d/B <= 32 blocks) */
} g4_tq_query;

void g4_tq_query_prepare(const g4_tq_params *pk, const float *q, g4_tq_query *out);

/* ---- several query heads against the same records (GQA: the heads of one KV group) ---------------
 * What the KV cache's decode and prefill attention use: every record is unpacked once for all G query
 * heads of its KV group.
 *
 * Query: the rotated head rot = R q, quantized to int8 with ONE scale for the whole head (the rotation
 * makes its coordinates alike): q8 = round(rot / qs) (half to even), qs = max|rot| / 127, qsum = Σ q8.
 * Scores (gqa_scores), with the 7-bit codebook c7 / unit7 of the params (|c7| <= 63, so the AVX2 kernel
 * multiplies the unsigned bytes c7 + 64 by the signed query and pmaddubsw cannot saturate:
 * 2 · 127 · 127 < 32768):
 *     tq:  score = (float)(Σ_i q8_i · (c7[idx_i] + 64) - 64 · qsum) · (qs · (s · unit7))
 *     q8:  score = Σ_blk (float)(Σ_i q8_i · k_i) · (δ_blk · qs)      (blocks in order)
 * The integer sums are exact, so the tq scores of every kernel set are bit-identical; q8 scores differ
 * in the order of the float block sums only.
 * Values (gqa_values), with the 8-bit codebook of g4_tq_codebook (c8 · unit8: one pshufb per 32 values;
 * it adds 0.1 % to D_mse): acc_h[i] <- fma(w_h,j · (s_j · unit8), (float)c8[idx_j,i], acc_h[i]) for
 * j = 0, 1, .. n-1 in that order (q8: fma(w_h,j, δ_blk · k_j,i, acc_h[i])), which every kernel set computes
 * bit-identically.
 * exp_sum: x[j] <- exp(x[j] - m) for j < n (m >= every x[j]; -inf gives 0), returns Σ x[j] (the AVX2
 * exp is within 2 ulp of expf; the sum's order differs). */
typedef struct g4_tq_gqa_query {
    const int8_t *q8; /* d values */
    float qs;
    int32_t qsum;
} g4_tq_gqa_query;

/* rot (d floats, already rotated) -> q8 (d int8), *qs, *qsum as described above */
void g4_tq_gqa_query_init(const g4_tq_params *pk, const float *rot, int8_t *q8, g4_tq_gqa_query *out);

/* One kernel set. Every function works on one record of the params' type:
 *   score           q · k̂ with the float rotated query and the float codebook (s · Σ rot_i C*_idx_i)
 *   score_i8        the same from the int8 query and the int8 codebook (integer dot products per block)
 *   axpy            acc[i] += a · ŷ_i (rotated-domain accumulation of a value)
 *   rotate          g4_tq_rotate (y = R x)
 *   unrotate        g4_tq_unrotate (x = Rᵀ y)
 *   encode_rotated  g4_tq_encode_rotated
 * Contract of a SIMD set against the scalar one: rotate, unrotate and encode_rotated bit-identical for
 * finite input; score, score_i8 and axpy the same products summed in another order (score_i8: exact
 * integer block sums). */
typedef struct g4_tq_kernels {
    const char *isa;
    float (*score)(const g4_tq_params *p, const g4_tq_query *q, const uint8_t *rec);
    float (*score_i8)(const g4_tq_params *p, const g4_tq_query *q, const uint8_t *rec);
    void (*axpy)(const g4_tq_params *p, const uint8_t *rec, float a, float *acc);
    void (*rotate)(const g4_tq_params *p, const float *x, float *y);
    void (*unrotate)(const g4_tq_params *p, const float *y, float *x);
    void (*encode_rotated)(const g4_tq_params *p, const float *y, uint8_t *rec);
    /* the GQA kernels (see "several query heads" below) */
    void (*gqa_scores)(const g4_tq_params *p, const g4_tq_gqa_query *q, int G, const uint8_t *rec, size_t stride,
                       int n, float *sc, int sc_stride);
    void (*gqa_values)(const g4_tq_params *p, const uint8_t *rec, size_t stride, int n, const float *w, int w_stride,
                       int G, float *acc, int acc_stride);
    float (*exp_sum)(float *x, int n, float m);
} g4_tq_kernels;

const g4_tq_kernels *g4_tq_kernels_scalar(void);
/* NULL when the CPU (or the build) has no AVX2 + FMA + F16C */
const g4_tq_kernels *g4_tq_kernels_avx2(void);
/* the set g4_tq_params_init installs: AVX2 when the library's weight kernels use it (G4_ISA) */
const g4_tq_kernels *g4_tq_kernels_best(void);

/* attention flags */
#define G4_TQ_ATTN_I8 1 /* integer score path (int8 query, int8 codebook) */

/* Online-softmax state of one query head: out = Rᵀ acc / l at the end. States of disjoint key
 * ranges (threads, ring-buffer pieces) merge exactly like one pass over their union. */
typedef struct g4_tq_attn {
    int d;
    float m, l;               /* running max of the scores (-inf when empty), Σ exp(score - m) */
    float acc[G4_TQ_MAX_DIM]; /* Σ exp(score - m) · ŷ_v, rotated domain (V's rotation) */
} g4_tq_attn;

void g4_tq_attn_init(g4_tq_attn *st, int d);
/* adds n keys/values (record t at k + t·k_stride, v + t·v_stride); pk and pv have the same d */
void g4_tq_attn_add(const g4_tq_params *pk, const g4_tq_params *pv, const g4_tq_query *q, int flags, const uint8_t *k,
                    size_t k_stride, const uint8_t *v, size_t v_stride, int n, g4_tq_attn *st);
/* dst <- the state of dst's keys and src's keys together */
void g4_tq_attn_merge(g4_tq_attn *dst, const g4_tq_attn *src);
/* out = Rᵀ_v acc / l (zeros if no key was added); st is left rotated back (scratch) */
void g4_tq_attn_finish(const g4_tq_params *pv, g4_tq_attn *st, float *out);

/* softmax(q · K̂ᵀ) · V̂ over n records for one query head (the caller scales q): rotates q once, scores
 * on packed keys, online softmax, values accumulated rotated, one inverse rotation. G4_ERR_ARG when the
 * K and V params disagree on d or n < 0; n == 0 gives zeros. */
g4_status g4_tq_attend(const g4_tq_params *pk, const g4_tq_params *pv, const float *q, const uint8_t *k,
                       size_t k_stride, const uint8_t *v, size_t v_stride, int n, int flags, float *out, g4_error *err);
/* Scalar reference of the same attention in the original domain: every key and value decoded to float
 * (g4_tq_decode), scores q̃ · x̂ in double, plain two-pass softmax, out = Σ p v̂. With G4_TQ_ATTN_I8 it
 * computes what the integer path computes: the query as its int8 form (Rᵀ of qscale · q8) and keys
 * decoded with the int8 codebook (c8 · unit8). G4_ERR_NOMEM if the n scores cannot be allocated. */
g4_status g4_tq_attend_ref(const g4_tq_params *pk, const g4_tq_params *pv, const float *q, const uint8_t *k,
                           size_t k_stride, const uint8_t *v, size_t v_stride, int n, int flags, float *out,
                           g4_error *err);

#endif
