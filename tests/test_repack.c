/* Repacked (8-row interleaved) weight kernels (src/quant/repack.h).
 *
 *   scalar reference gemm vs the row-by-row scalar dot_q of the original rows: the same integer block
 *     sums, only the float accumulation differs: |ref - dot| <= (nb + 48) * FLT_EPSILON * A, A the sum
 *     of |w_i * x_i| (as in test_simd);
 *   the kernel set's gemm (AVX2, ...) vs the scalar reference: bit-identical, for 1..4 activation rows,
 *     any activation stride and output stride;
 *   the same for the AVX-512 kernels, whatever the kernel set: natively on a CPU with AVX-512
 *     F/BW/VL/VNNI, and everywhere compiled against SIMDe (the *_avx512_emu functions, see the Makefile)
 *     when libsimde-dev is there; these must also leave every other output element untouched;
 *   a token's result does not depend on how many tokens were multiplied with it (bit-identical).
 * Weights are random bytes with random non-zero fp16 scales over the whole range; activations have
 * per-block magnitudes 2^-20 .. 2^20, never zero.
 *
 *   test_repack --bench   single-thread GB/s of weight bytes: decode (1 activation row) and prefill
 *                         (32 rows), repacked kernel vs the row-by-row kernels, on 256 MiB of weights.
 */
#include "quant/blocks.h"
#include "quant/repack.h"
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

static const int types[] = {G4_TYPE_Q4_0, G4_TYPE_Q8_0, G4_TYPE_Q4_K, G4_TYPE_Q6_K, G4_TYPE_F16, G4_TYPE_F32};

/* kernels checked besides the kernel set's: other builds of the same layouts */
typedef struct {
    const char *isa;
    int type;
    g4_rp_gemm_fn gemm;
} rp_case;
#if defined(G4_HAVE_AVX512_KERNELS)
#define AVX512_RP(isa, S)                                         \
    {isa, G4_TYPE_Q4_0, g4_rp_gemm_q4_0x8_avx512##S},             \
    {isa, G4_TYPE_Q8_0, g4_rp_gemm_q8_0x8_avx512##S},             \
    {isa, G4_TYPE_Q4_K, g4_rp_gemm_q4_Kx8_avx512##S},             \
    {isa, G4_TYPE_Q6_K, g4_rp_gemm_q6_Kx8_avx512##S},
static const rp_case avx512_rps[] = {AVX512_RP("avx512", )};
#if defined(G4_HAVE_SIMDE)
static const rp_case avx512_emu_rps[] = {AVX512_RP("avx512-emu", _emu)};
#endif
#endif

/* the extra kernels for a type on this machine */
static int extra_kernels(int type, const rp_case **out) {
    int k = 0;
#if defined(G4_HAVE_AVX512_KERNELS)
    for (size_t i = 0; i < sizeof avx512_rps / sizeof avx512_rps[0]; i++)
        if (avx512_rps[i].type == type && g4_cpu_has_avx512()) out[k++] = &avx512_rps[i];
#if defined(G4_HAVE_SIMDE)
    for (size_t i = 0; i < sizeof avx512_emu_rps / sizeof avx512_emu_rps[0]; i++)
        if (avx512_emu_rps[i].type == type) out[k++] = &avx512_emu_rps[i];
#endif
#endif
    (void)type, (void)out;
    return k;
}

static uint16_t rand_scale(void) {
    for (;;) {
        const uint16_t h = (uint16_t)(t_rand64() >> 48);
        if ((h & 0x7c00) == 0x7c00 || (h & 0x7fff) == 0) continue;
        return h;
    }
}

/* rows of random blocks with random non-zero fp16 scale fields */
static void rand_rows(int type, uint8_t *w, int64_t nrows, int64_t n) {
    const g4_type_traits *tr = g4_type_traits_get(type);
    const size_t nblk = (size_t)nrows * (size_t)(n / tr->blck);
    if (type == G4_TYPE_F16 || type == G4_TYPE_F32) { /* finite values over a wide range */
        for (size_t i = 0; i < nblk; i++) {
            const float v = ldexpf(t_randf(), (int)(t_rand64() % 21) - 10);
            if (type == G4_TYPE_F16) ((uint16_t *)w)[i] = g4_fp32_to_fp16(v);
            else ((float *)w)[i] = v;
        }
        return;
    }
    static const int f0[] = {0, -1}, f02[] = {0, 2, -1}, f6k[] = {208, -1};
    const int *fields = type == G4_TYPE_Q4_K ? f02 : type == G4_TYPE_Q6_K ? f6k : f0;
    for (size_t b = 0; b < nblk; b++) {
        uint8_t *blk = w + b * tr->type_size;
        for (size_t k = 0; k < tr->type_size; k++) blk[k] = (uint8_t)(t_rand64() >> 56);
        for (const int *f = fields; *f >= 0; f++) {
            const uint16_t h = rand_scale();
            memcpy(blk + *f, &h, 2);
        }
    }
}

static void rand_acts(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 32) {
        const float s = ldexpf(1.0f, (int)(t_rand64() % 41) - 20);
        for (int64_t j = i; j < n && j < i + 32; j++) x[j] = t_randf() * s;
    }
}

/* 16-row kernels (two groups per call): the kernel set's, and other builds */
typedef struct {
    const char *isa;
    int type;
    g4_rp_gemm16_fn gemm16;
} rp16_case;
static const rp16_case rp16s[] = {
#if defined(G4_HAVE_AVX512_KERNELS)
    {"avx512", G4_TYPE_Q4_0, g4_rp_gemm16_q4_0x8_avx512},
    {"avx512", G4_TYPE_Q8_0, g4_rp_gemm16_q8_0x8_avx512},
    {"avx512", G4_TYPE_Q4_K, g4_rp_gemm16_q4_Kx8_avx512},
    {"avx512", G4_TYPE_Q6_K, g4_rp_gemm16_q6_Kx8_avx512},
#if defined(G4_HAVE_SIMDE)
    {"avx512-emu", G4_TYPE_Q4_0, g4_rp_gemm16_q4_0x8_avx512_emu},
    {"avx512-emu", G4_TYPE_Q8_0, g4_rp_gemm16_q8_0x8_avx512_emu},
    {"avx512-emu", G4_TYPE_Q4_K, g4_rp_gemm16_q4_Kx8_avx512_emu},
    {"avx512-emu", G4_TYPE_Q6_K, g4_rp_gemm16_q6_Kx8_avx512_emu},
#endif
#endif
    {NULL, 0, NULL}};

/* gemm16 against the scalar reference gemm (two groups, G4_RP_MAXT tokens at a time): bit-identical for
 * 1..8 tokens, any strides, nothing written outside the 16 x nt outputs */
static void check16(const char *isa, int type, g4_rp_gemm16_fn gemm16) {
    const g4_repack_traits *ref = g4_repack_ref(type);
    static const int64_t blocks[] = {1, 3, 7, 33}, kblocks[] = {1, 2, 3, 6};
    int fails = 0, runs = 0;
    for (int k = 0; k < 4; k++) {
        const int64_t n = (ref->blck == QK_K ? kblocks[k] : blocks[k]) * ref->blck, rows = 2 * G4_RP_ROWS;
        const g4_type_traits *tr = g4_type_traits_get(type);
        const size_t rb = g4_type_row_bytes(type, n), ab = g4_repack_act_bytes(ref, n), gb = g4_repack_group_bytes(ref, n);
        const size_t as = ab + 8 * (size_t)(k % 2), ldy = (size_t)rows + 5, gap = (size_t)(k % 2) * 64;
        uint8_t *w = malloc(rb * (size_t)rows), *pw = malloc(2 * gb + gap), *xa = malloc(as * G4_RP_MAXT16);
        float *x = malloc((size_t)n * sizeof *x), *yr = malloc(ldy * G4_RP_MAXT16 * sizeof *yr);
        float *ye = malloc(ldy * G4_RP_MAXT16 * sizeof *ye);
        if (!w || !pw || !xa || !x || !yr || !ye) abort();
        rand_rows(type, w, rows, n);
        /* the second group gb + gap bytes after the first: the kernel must use the stride it is given */
        ref->pack(w, rb, pw, n);
        ref->pack(w + G4_RP_ROWS * rb, rb, pw + gb + gap, n);
        for (int t = 0; t < G4_RP_MAXT16; t++) {
            rand_acts(x, n);
            ref->act(x, xa + (size_t)t * as, n);
        }
        for (int nt = 1; nt <= G4_RP_MAXT16; nt++) {
            for (int t0 = 0; t0 < nt; t0 += G4_RP_MAXT)
                for (int g = 0; g < 2; g++)
                    ref->gemm(pw + (size_t)g * (gb + gap), xa + (size_t)t0 * as, as, nt - t0 < G4_RP_MAXT ? nt - t0 : G4_RP_MAXT,
                              yr + (size_t)t0 * ldy + (size_t)g * G4_RP_ROWS, ldy, n);
            memset(ye, 0xFF, ldy * G4_RP_MAXT16 * sizeof *ye);
            gemm16(pw, gb + gap, xa, as, nt, ye, ldy, n);
            for (int t = 0; t < G4_RP_MAXT16; t++)
                for (size_t r = 0; r < ldy; r++) {
                    const size_t o = (size_t)t * ldy + r;
                    const uint32_t untouched = 0xFFFFFFFFu;
                    const int in = t < nt && r < (size_t)rows;
                    runs += in;
                    if ((in ? memcmp(&ye[o], &yr[o], 4) : memcmp(&ye[o], &untouched, 4)) && fails++ < 3)
                        CHECK(0, "%s %s gemm16 n=%lld row %zu t=%d nt=%d: %.9g vs reference %.9g", isa, tr->name,
                              (long long)n, r, t, nt, ye[o], in ? yr[o] : 0.0f);
                }
        }
        free(w), free(pw), free(xa), free(x), free(yr), free(ye);
    }
    CHECK(fails == 0, "%s %s gemm16: %d of %d results differ from the reference", isa, ref->name, fails, runs);
    printf("ok %s %s gemm16 (16 rows, 1..%d tokens): %d results bit-identical to the reference\n", isa, ref->name,
           G4_RP_MAXT16, runs);
}

/* sum of |w_i x_i|, plus for Q4_K twice the |dmin m x_i| terms (the scaled and the min parts are summed
 * separately, each can exceed |w x|) */
static double abs_terms(int type, const uint8_t *w, const void *xq, int64_t n) {
    const int vdt = g4_type_traits_get(type)->vec_dot_type;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    g4_type_traits_get(type)->to_float(w, a, n);
    g4_type_traits_get(vdt)->to_float(xq, b, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    if (type == G4_TYPE_Q4_K)
        for (int64_t i = 0; i < n; i++) {
            const block_q4_K *blk = (const block_q4_K *)w + i / QK_K;
            uint8_t sc, m;
            g4_scale_min_k4((int)(i % QK_K) / 32, blk->scales, &sc, &m);
            s += 2.0 * fabs((double)g4_fp16_to_fp32(blk->dmin) * m * b[i]);
        }
    free(a);
    free(b);
    return s;
}

static void check_type(int type) {
    const g4_type_traits *tr = g4_type_traits_get(type), *q8 = g4_type_traits_get(tr->vec_dot_type);
    const g4_repack_traits *ref = g4_repack_ref(type), *act = g4_repack_get(type);
    CHECK(ref != NULL, "no reference layout for %s", tr->name);
    if (!ref) return;
    static const int64_t blocks[] = {1, 3, 7, 33}, kblocks[] = {1, 2, 3, 6};
    int fails_ref = 0, fails_simd = 0, fails_nt = 0, runs = 0;
    const rp_case *extra[4];
    const int ne = extra_kernels(type, extra);
    int fails_extra[4] = {0, 0, 0, 0};
    double worst = 0;
    for (int k = 0; k < 4; k++)
        for (int groups = 1; groups <= 3; groups++) {
            const int64_t n = (ref->blck == QK_K ? kblocks[k] : blocks[k]) * ref->blck, rows = (int64_t)groups * G4_RP_ROWS;
            const size_t rb = g4_type_row_bytes(type, n), ab = g4_repack_act_bytes(ref, n);
            const size_t as = ab + 8 * (size_t)(k % 2); /* any activation stride */
            const size_t ldy = (size_t)rows + 3;        /* and output stride */
            const size_t gb = g4_repack_group_bytes(ref, n);
            uint8_t *w = malloc(rb * (size_t)rows), *pw = malloc(gb * (size_t)groups);
            uint8_t *xa = malloc(as * G4_RP_MAXT), *xq = malloc(g4_type_row_bytes(tr->vec_dot_type, n) * G4_RP_MAXT);
            float *x = malloc((size_t)n * sizeof *x);
            float *yr = malloc(ldy * G4_RP_MAXT * sizeof *yr), *ys = malloc(ldy * G4_RP_MAXT * sizeof *ys);
            float *y1 = malloc(ldy * sizeof *y1), *ye = malloc(ldy * G4_RP_MAXT * sizeof *ye);
            if (!w || !pw || !xa || !xq || !x || !yr || !ys || !y1 || !ye) abort();
            rand_rows(type, w, rows, n);
            for (int g = 0; g < groups; g++)
                ref->pack(w + (size_t)g * G4_RP_ROWS * rb, rb, pw + (size_t)g * gb, n);
            const size_t qb = g4_type_row_bytes(tr->vec_dot_type, n);
            for (int t = 0; t < G4_RP_MAXT; t++) {
                rand_acts(x, n);
                ref->act(x, xa + (size_t)t * as, n);
                q8->from_float(x, xq + (size_t)t * qb, n);
            }
            for (int nt = 1; nt <= G4_RP_MAXT; nt++) {
                for (int g = 0; g < groups; g++) {
                    const uint8_t *pg = pw + (size_t)g * gb;
                    ref->gemm(pg, xa, as, nt, yr + (size_t)g * G4_RP_ROWS, ldy, n);
                    if (act) act->gemm(pg, xa, as, nt, ys + (size_t)g * G4_RP_ROWS, ldy, n);
                }
                for (int t = 0; t < nt; t++)
                    for (int64_t r = 0; r < rows; r++) {
                        const float got = yr[(size_t)t * ldy + (size_t)r];
                        float dot;
                        double A, tol;
                        if (tr->blck == 1) { /* float weights x float activations: against the exact sum */
                            const float *xf = (const float *)(xa + (size_t)t * as);
                            double e = 0, a = 0;
                            for (int64_t i = 0; i < n; i++) {
                                float wv;
                                tr->to_float(w + (size_t)r * rb + (size_t)i * tr->type_size, &wv, 1);
                                e += (double)wv * xf[i];
                                a += fabs((double)wv * xf[i]);
                            }
                            dot = (float)e;
                            A = a;
                            tol = (double)(n / 4 + 8) * FLT_EPSILON * A + 1e-300;
                        } else {
                            dot = tr->dot_q(w + (size_t)r * rb, xq + (size_t)t * qb, n);
                            A = abs_terms(type, w + (size_t)r * rb, xq + (size_t)t * qb, n);
                            tol = (double)(n / 16 + 48) * FLT_EPSILON * A + 1e-300;
                        }
                        const double err = fabs((double)got - (double)dot);
                        if (err / tol > worst) worst = err / tol;
                        runs++;
                        if (!(err <= tol) && fails_ref++ < 3)
                            CHECK(0, "%s ref n=%lld row %lld t=%d: %.9g vs dot_q %.9g", tr->name, (long long)n,
                                  (long long)r, t, got, dot);
                        if (act && memcmp(&got, &ys[(size_t)t * ldy + (size_t)r], 4) && fails_simd++ < 3)
                            CHECK(0, "%s %s n=%lld row %lld t=%d nt=%d: %.9g vs reference %.9g", g4_types_isa(),
                                  tr->name, (long long)n, (long long)r, t, nt, ys[(size_t)t * ldy + (size_t)r], got);
                    }
                /* the other builds: the reference's bits in the nt x rows outputs, nothing written elsewhere */
                for (int e = 0; e < ne; e++) {
                    memset(ye, 0xFF, ldy * G4_RP_MAXT * sizeof *ye);
                    for (int g = 0; g < groups; g++)
                        extra[e]->gemm(pw + (size_t)g * gb, xa, as, nt, ye + (size_t)g * G4_RP_ROWS, ldy, n);
                    for (int t = 0; t < G4_RP_MAXT; t++)
                        for (size_t r = 0; r < ldy; r++) {
                            const size_t o = (size_t)t * ldy + r;
                            const uint32_t untouched = 0xFFFFFFFFu;
                            const int bad = t < nt && r < (size_t)rows ? memcmp(&ye[o], &yr[o], 4) != 0 : memcmp(&ye[o], &untouched, 4) != 0;
                            if (bad && fails_extra[e]++ < 3)
                                CHECK(0, "%s %s n=%lld row %zu t=%d nt=%d: %.9g vs reference %.9g", extra[e]->isa, tr->name,
                                      (long long)n, r, t, nt, ye[o], t < nt && r < (size_t)rows ? yr[o] : 0.0f);
                        }
                }
            }
            /* the last token alone gives the same bits as within a batch of 4 */
            for (int g = 0; g < groups; g++) {
                const g4_repack_traits *use = act ? act : ref;
                use->gemm(pw + (size_t)g * gb, xa + 3 * as, as, 1, y1 + (size_t)g * G4_RP_ROWS, ldy, n);
                use->gemm(pw + (size_t)g * gb, xa, as, 4, ys + (size_t)g * G4_RP_ROWS, ldy, n);
            }
            for (int64_t r = 0; r < rows; r++)
                if (memcmp(&y1[r], &ys[3 * ldy + (size_t)r], 4) && fails_nt++ < 3)
                    CHECK(0, "%s n=%lld row %lld: alone %.9g, in a batch %.9g", tr->name, (long long)n, (long long)r,
                          y1[r], ys[3 * ldy + (size_t)r]);
            free(w), free(pw), free(xa), free(xq), free(x), free(yr), free(ys), free(y1), free(ye);
        }
    CHECK(fails_ref == 0, "%s: %d of %d reference results off the row-by-row dot", tr->name, fails_ref, runs);
    CHECK(fails_simd == 0, "%s: %d of %d %s results differ from the reference", tr->name, fails_simd, runs,
          g4_types_isa());
    CHECK(fails_nt == 0, "%s: batch size changes results", tr->name);
    for (int e = 0; e < ne; e++)
        CHECK(fails_extra[e] == 0, "%s: %d %s results differ from the reference", tr->name, fails_extra[e], extra[e]->isa);
    printf("ok %s: %d results; reference within tolerance of dot_q (worst err/tol %.3f); %s", ref->name, runs, worst,
           act ? "kernel bit-identical to the reference" : "no SIMD kernel in this set");
    for (int e = 0; e < ne; e++) printf("; %s %s", extra[e]->isa, fails_extra[e] ? "DIFFERS" : "bit-identical");
    printf("\n");
}

/* ---- microbenchmark ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench(int type) {
    const g4_type_traits *tr = g4_type_traits_get(type), *q8 = g4_type_traits_get(tr->vec_dot_type);
    const g4_repack_traits *rt = g4_repack_get(type);
    if (!rt) return;
    const int64_t n = 2048;
    const size_t rb = g4_type_row_bytes(type, n), ab = g4_repack_act_bytes(rt, n), qb = g4_type_row_bytes(tr->vec_dot_type, n);
    const size_t gb = g4_repack_group_bytes(rt, n);
    const int64_t rows = (int64_t)((256u << 20) / rb) / G4_RP_ROWS * G4_RP_ROWS;
    uint8_t *w = malloc(rb * (size_t)rows), *pw = malloc(gb * (size_t)(rows / G4_RP_ROWS));
    uint8_t *xa = malloc(ab * 32), *xq = malloc(qb * 32);
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)rows * 32 * sizeof *y);
    if (!w || !pw || !xa || !xq || !x || !y) abort();
    rand_rows(type, w, G4_RP_ROWS, n);
    for (int64_t r = G4_RP_ROWS; r < rows; r++) memcpy(w + (size_t)r * rb, w + (size_t)(r % G4_RP_ROWS) * rb, rb);
    for (int64_t g = 0; g < rows / G4_RP_ROWS; g++)
        rt->pack(w + (size_t)g * G4_RP_ROWS * rb, rb, pw + (size_t)g * gb, n);
    for (int t = 0; t < 32; t++) {
        rand_acts(x, n);
        rt->act(x, xa + (size_t)t * ab, n);
        q8->from_float(x, xq + (size_t)t * qb, n);
    }
    double b_rows = 1e30, b_pack = 1e30, b_multi = 1e30, b_pack32 = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        for (int64_t r = 0; r < rows; r++) y[r] = tr->dot_q(w + (size_t)r * rb, xq, n);
        double t1 = now_s();
        for (int64_t g = 0; g < rows / G4_RP_ROWS; g++)
            rt->gemm(pw + (size_t)g * gb, xa, ab, 1, y + g * G4_RP_ROWS, (size_t)rows, n);
        double t2 = now_s();
        if (t1 - t0 < b_rows) b_rows = t1 - t0;
        if (t2 - t1 < b_pack) b_pack = t2 - t1;
    }
    /* prefill: 32 activation rows over 512 KiB of weights (cache-resident) */
    const int64_t prow = (int64_t)((512u << 10) / rb) / G4_RP_ROWS * G4_RP_ROWS;
    for (int rep = 0; rep < 5; rep++) {
        float out[32];
        double t0 = now_s();
        for (int64_t r = 0; r < prow; r++) g4_dot_q_multi(tr, w + (size_t)r * rb, xq, qb, 32, out, n);
        double t1 = now_s();
        for (int64_t g = 0; g < prow / G4_RP_ROWS; g++)
            for (int t = 0; t < 32; t += 4)
                rt->gemm(pw + (size_t)g * gb, xa + (size_t)t * ab, ab, 4, y + (size_t)t * prow + g * G4_RP_ROWS,
                         (size_t)prow, n);
        double t2 = now_s();
        y[0] += out[0];
        if (t1 - t0 < b_multi) b_multi = t1 - t0;
        if (t2 - t1 < b_pack32) b_pack32 = t2 - t1;
    }
    /* the 16-row kernel, when the set has one, on 8 rows (a batch of 8 streams) in cache */
    double b16_8 = 1e30, b8_8 = 1e30;
    if (rt->gemm16)
        for (int rep = 0; rep < 5; rep++) {
            double t1 = now_s();
            for (int64_t g = 0; g + 1 < prow / G4_RP_ROWS; g += 2)
                rt->gemm16(pw + (size_t)g * gb, gb, xa, ab, 8, y + g * G4_RP_ROWS, (size_t)prow, n);
            double t2 = now_s();
            for (int64_t g = 0; g < prow / G4_RP_ROWS; g++)
                for (int t = 0; t < 8; t += 4)
                    rt->gemm(pw + (size_t)g * gb, xa + (size_t)t * ab, ab, 4, y + (size_t)t * prow + g * G4_RP_ROWS,
                             (size_t)prow, n);
            double t3 = now_s();
            if (t2 - t1 < b16_8) b16_8 = t2 - t1;
            if (t3 - t2 < b8_8) b8_8 = t3 - t2;
        }
    const double big = (double)rows * (double)rb, small = (double)prow * (double)rb * 32;
    if (rt->gemm16) /* streaming from memory: which kernel for how many tokens */
        for (int nt = 1; nt <= 4; nt++) {
            double a = 1e30, b = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                double t0 = now_s();
                for (int64_t g = 0; g + 1 < rows / G4_RP_ROWS; g += 2)
                    rt->gemm16(pw + (size_t)g * gb, gb, xa, ab, nt, y + g * G4_RP_ROWS, (size_t)rows, n);
                double t1 = now_s();
                for (int64_t g = 0; g < rows / G4_RP_ROWS; g++)
                    rt->gemm(pw + (size_t)g * gb, xa, ab, nt, y + g * G4_RP_ROWS, (size_t)rows, n);
                double t2 = now_s();
                if (t1 - t0 < a) a = t1 - t0;
                if (t2 - t1 < b) b = t2 - t1;
            }
            printf("%-7s %d token(s) from memory: 16-row %6.2f GB/s, 8-row %6.2f GB/s\n", rt->name, nt, big / a / 1e9, big / b / 1e9);
        }
    if (rt->gemm16)
        printf("%-7s 16-row kernel, 8 tokens in cache: %6.2f GB/s x8 (8-row kernel %6.2f, x%.2f)\n", rt->name,
               (double)prow * (double)rb * 8 / b16_8 / 1e9, (double)prow * (double)rb * 8 / b8_8 / 1e9,
               b8_8 / b16_8);
    printf("%-7s decode %6.2f GB/s row by row, %6.2f GB/s repacked (x%.2f) | prefill x32 %6.2f vs %6.2f GB/s (x%.2f)\n",
           rt->name, big / b_rows / 1e9, big / b_pack / 1e9, b_rows / b_pack, small / b_multi / 1e9,
           small / b_pack32 / 1e9, b_multi / b_pack32);
    free(w), free(pw), free(xa), free(xq), free(x), free(y);
}

int main(int argc, char **argv) {
    printf("kernel set in use: %s\n", g4_types_isa());
#if defined(G4_HAVE_AVX512_KERNELS)
    if (!strcmp(g4_types_isa(), "avx512")) { /* installed over the AVX2 kernels, F16x8 / F32x8 stay AVX2 */
        for (size_t i = 0; i < sizeof avx512_rps / sizeof avx512_rps[0]; i++)
            CHECK(g4_repack_get(avx512_rps[i].type)->gemm == avx512_rps[i].gemm, "%s: AVX-512 kernel not installed",
                  g4_repack_ref(avx512_rps[i].type)->name);
        CHECK(g4_repack_get(G4_TYPE_F16)->gemm == g4_rp_gemm_f16x8_avx2, "F16x8: not the AVX2 kernel");
        CHECK(g4_repack_get(G4_TYPE_F32)->gemm == g4_rp_gemm_f32x8_avx2, "F32x8: not the AVX2 kernel");
    }
    if (!g4_cpu_has_avx512()) printf("CPU without AVX-512 F/BW/VL/VNNI: the AVX-512 kernels are not run natively\n");
#if !defined(G4_HAVE_SIMDE)
    printf("SIMDe (libsimde-dev) not installed: the AVX-512 kernels are not tested in emulation\n");
#endif
#endif
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) check_type(types[i]);
    /* every 16-row kernel of the builds this CPU runs; the kernel set installs those of its own build */
    for (const rp16_case *c = rp16s; c->isa; c++) {
        if (strcmp(c->isa, "avx512") || g4_cpu_has_avx512()) check16(c->isa, c->type, c->gemm16);
        if (!strcmp(c->isa, g4_types_isa()))
            CHECK(g4_repack_get(c->type)->gemm16 == c->gemm16, "%s: 16-row kernel not installed", g4_repack_ref(c->type)->name);
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const g4_repack_traits *rt = g4_repack_get(types[i]);
        int known = !rt || !rt->gemm16;
        for (const rp16_case *c = rp16s; c->isa; c++) known |= rt && c->gemm16 == rt->gemm16;
        CHECK(known, "%s: an installed 16-row kernel this test does not check", g4_repack_ref(types[i])->name);
    }
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) bench(types[i]);
    return t_done();
}
