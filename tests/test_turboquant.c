/* TurboQuant math core (src/kv/turboquant.h): rotation, codebooks, records, kernels, attention.
 *
 *   rotation     the FWHT is the Sylvester–Hadamard matrix / sqrt(d) (checked entry by entry for small d),
 *                orthonormal and its own inverse (round trip 1e-6) for d = 16 .. 1024; signs pinned;
 *   codebooks    sorted, symmetric, midpoint boundaries, cell probabilities sum to 1, D_mse between the
 *                Shannon lower bound 4^-b and the paper's upper bound (sqrt(3) pi / 2) 4^-b, and equal to
 *                the exact-Beta values printed in ../shared/docs/turboquant.md §1.2.1 (d = 128, 256, 512);
 *   records      byte sizes; every index is the nearest centroid of the rotated, normalized coordinate;
 *                scales of the three modes; q8 within half a step; zero vectors;
 *   distortion   10^5 random unit vectors for d = 256 and 512, b = 1..4: D_mse within 1% of the computed
 *                codebook value, within 3% of §1.2.1 and under the paper's bound; inner products with
 *                independent random unit queries: bias slope and d·E[err²] per scale mode, printed and
 *                checked against the paper's bounds (4^-b <= d·E[err²] <= (sqrt(3) pi / 2) 4^-b, bias
 *                -D_mse for the paper's scale, about -D_mse/2 norm-corrected, 0 unbiased);
 *   kernels      every SIMD kernel against its scalar reference on encoded random vectors: rotations and
 *                encoding bit-identical, scores / axpy within (d + 16) eps of the sum of |terms|;
 *   attention    packed-domain attention (float and int8 score paths, scalar and SIMD kernels, split and
 *                merged states) equals the scalar reference that dequantizes everything first; the output
 *                error against exact f32 attention is printed per type.
 *
 *   test_turboquant --bench       also prints ns per record of score / score_i8 / axpy / encode, scalar vs SIMD
 *   test_turboquant --vectors N   N random vectors per d in the distortion test (default 10^5)
 */
#include "t.h"

#include "kv/turboquant.h"
#include "util/util.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

/* standard normal (Marsaglia's polar method on the harness's xorshift) */
static double gauss(void) {
    static int have;
    static double spare;
    if (have) {
        have = 0;
        return spare;
    }
    double u, v, s;
    do {
        u = (double)(t_rand64() >> 11) * (2.0 / 9007199254740992.0) - 1.0;
        v = (double)(t_rand64() >> 11) * (2.0 / 9007199254740992.0) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    spare = v * f;
    have = 1;
    return u * f;
}

static void rand_unit(float *x, int d) {
    double g[G4_TQ_MAX_DIM], n = 0;
    for (int i = 0; i < d; i++) {
        g[i] = gauss();
        n += g[i] * g[i];
    }
    n = 1.0 / sqrt(n);
    for (int i = 0; i < d; i++) x[i] = (float)(g[i] * n);
}

static double dotf(const float *a, const float *b, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

static g4_tq_params *mkparams(g4_tq_type t, int d) {
    g4_tq_params *p = malloc(sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    g4_error err;
    g4_status st = g4_tq_params_init(p, t, d, G4_TQ_SEED, &err);
    CHECK(st == G4_OK, "params_init(%s, %d): %s", g4_tq_type_name(t), d, err.msg);
    return p;
}

/* ---- sizes and names ---------------------------------------------------------------------------- */

static void test_sizes(void) {
    static const size_t want256[] = {272, 130, 98, 66}, want512[] = {544, 258, 194, 130};
    for (int t = 0; t < G4_TQ_N_TYPES; t++) {
        CHECK(g4_tq_record_bytes((g4_tq_type)t, 256) == want256[t], "%s d=256: %zu bytes",
              g4_tq_type_name((g4_tq_type)t), g4_tq_record_bytes((g4_tq_type)t, 256));
        CHECK(g4_tq_record_bytes((g4_tq_type)t, 512) == want512[t], "%s d=512", g4_tq_type_name((g4_tq_type)t));
        CHECK(g4_tq_type_from_name(g4_tq_type_name((g4_tq_type)t)) == t, "name round trip %d", t);
    }
    CHECK(g4_tq_record_bytes(G4_TQ_Q8, 16) == 18, "q8 d=16: one block of 16");
    CHECK(g4_tq_record_bytes(G4_TQ_TQ3, 16) == 8, "tq3 d=16");
    CHECK(g4_tq_record_bytes(G4_TQ_TQ4, 24) == 0 && g4_tq_record_bytes(G4_TQ_TQ4, 8) == 0 &&
              g4_tq_record_bytes(G4_TQ_TQ4, 2048) == 0,
          "unsupported dims have no size");
    CHECK(g4_tq_type_from_name("tq5") == -1 && g4_tq_type_name((g4_tq_type)7) == NULL, "unknown names");
    g4_tq_params *p = malloc(sizeof *p);
    g4_error err;
    CHECK(p != NULL, "alloc");
    if (!p) return;
    CHECK(g4_tq_params_init(p, G4_TQ_TQ4, 96, G4_TQ_SEED, &err) == G4_ERR_ARG, "d = 96 rejected");
    CHECK(g4_tq_params_init(p, G4_TQ_TQ4, 8, G4_TQ_SEED, &err) == G4_ERR_ARG, "d = 8 rejected");
    CHECK(g4_tq_params_init(p, (g4_tq_type)9, 256, G4_TQ_SEED, &err) == G4_ERR_ARG, "type 9 rejected");
    const g4_tq_codebook *cb;
    CHECK(g4_tq_codebook_get(256, 5, &cb, &err) == G4_ERR_ARG && cb == NULL, "5-bit codebook rejected");
    free(p);
}

/* ---- rotation ----------------------------------------------------------------------------------- */

static int popcount(unsigned x) {
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

static void test_rotation(void) {
    float x[G4_TQ_MAX_DIM], y[G4_TQ_MAX_DIM], z[G4_TQ_MAX_DIM], w[G4_TQ_MAX_DIM];
    for (int d = 1; d <= G4_TQ_MAX_DIM; d *= 2) {
        for (int i = 0; i < d; i++) x[i] = t_randf();
        memcpy(y, x, (size_t)d * sizeof *x);
        g4_tq_fwht(y, d);
        if (d <= 64) { /* against the matrix definition */
            double maxe = 0;
            for (int i = 0; i < d; i++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += (popcount((unsigned)(i & j)) & 1 ? -1.0 : 1.0) * x[j];
                maxe = fmax(maxe, fabs(s / sqrt((double)d) - y[i]));
            }
            CHECK(maxe < 1e-5, "fwht d=%d differs from the Sylvester matrix by %g", d, maxe);
        }
        double nx = sqrt(dotf(x, x, d)), ny = sqrt(dotf(y, y, d));
        CHECK(fabs(nx - ny) <= 1e-6 * nx, "fwht d=%d changes the norm: %g -> %g", d, nx, ny);
        g4_tq_fwht(y, d);
        double maxe = 0;
        for (int i = 0; i < d; i++) maxe = fmax(maxe, fabs(y[i] - x[i]));
        CHECK(maxe < 1e-6, "fwht d=%d is not its own inverse: %g", d, maxe);
    }
    for (int d = G4_TQ_MIN_DIM; d <= G4_TQ_MAX_DIM; d *= 2) {
        g4_tq_params *p = mkparams(G4_TQ_TQ4, d);
        int neg = 0;
        for (int i = 0; i < d; i++) neg += p->sign[i] < 0;
        CHECK(neg > d / 4 && neg < 3 * d / 4, "d=%d: %d of the signs are negative", d, neg);
        for (int i = 0; i < d; i++) {
            x[i] = t_randf();
            w[i] = t_randf();
        }
        g4_tq_rotate(p, x, y);
        g4_tq_rotate(p, w, z);
        double ip = dotf(x, w, d), ipr = dotf(y, z, d);
        CHECK(fabs(ip - ipr) < 1e-5 * sqrt(dotf(x, x, d) * dotf(w, w, d)), "d=%d rotation changes <x,w>: %g -> %g", d,
              ip, ipr);
        g4_tq_unrotate(p, y, z);
        double maxe = 0;
        for (int i = 0; i < d; i++) maxe = fmax(maxe, fabs(z[i] - x[i]));
        CHECK(maxe < 1e-6, "d=%d rotate/unrotate round trip %g", d, maxe);
        g4_tq_rotate(p, x, x); /* in place */
        CHECK(!memcmp(x, y, (size_t)d * sizeof *x), "d=%d in-place rotation", d);
        free(p);
    }
    /* the default signs are part of the format (persisted caches): pin the first 32 of d = 256 and 512 */
    float s[G4_TQ_MAX_DIM];
    uint32_t bits256 = 0, bits512 = 0;
    g4_tq_signs(G4_TQ_SEED, 256, s);
    for (int i = 0; i < 32; i++) bits256 |= (uint32_t)(s[i] < 0) << i;
    g4_tq_signs(G4_TQ_SEED, 512, s);
    for (int i = 0; i < 32; i++) bits512 |= (uint32_t)(s[i] < 0) << i;
    CHECK(bits256 == 0xc3910a65u && bits512 == 0xace38609u, "default signs changed: 0x%08x 0x%08x", bits256, bits512);
}

/* ---- codebooks ---------------------------------------------------------------------------------- */

/* ../shared/docs/turboquant.md §1.2.1: centroids × sqrt(d) (positive half) and D_mse, 5 decimals */
static const struct {
    int d, b;
    double c[8], mse;
} doc_cb[] = {
    {256, 1, {0.79866}, 0.36214},
    {256, 2, {0.45262, 1.50780}, 0.11674},
    {256, 3, {0.24476, 0.75467, 1.34025, 2.14167}, 0.03426},
    {256, 4, {0.12813, 0.38721, 0.65519, 0.93971, 1.25199, 1.61117, 2.05741, 2.71057}, 0.00941},
    {512, 1, {0.79827}, 0.36276},
    {512, 2, {0.45270, 1.50911}, 0.11711},
    {512, 3, {0.24493, 0.75534, 1.34208, 2.14680}, 0.03440},
    {512, 4, {0.12826, 0.38763, 0.65597, 0.94103, 1.25411, 1.61460, 2.06320, 2.72154}, 0.00945},
    {128, 3, {0.24442, 0.75333, 1.33660, 2.13147}, 0.03397},
    {128, 4, {0.12787, 0.38638, 0.65362, 0.93710, 1.24777, 1.60434, 2.04593, 2.68886}, 0.00931},
};

static double upper_bound(int b) { return sqrt(3.0) * PI / 2 * pow(4.0, -b); }

static void test_codebooks(void) {
    printf("Lloyd-Max codebooks: D_mse (unit vectors) per d and bits; +int8 = extra D_mse of the int8 codebook\n");
    printf("  %5s %10s %10s %10s %10s   %s\n", "d", "b=1", "b=2", "b=3", "b=4", "int8 extra (b=2,3,4)");
    for (int d = G4_TQ_MIN_DIM; d <= G4_TQ_MAX_DIM; d *= 2) {
        double mse[5] = {0}, x8[5] = {0};
        for (int b = 1; b <= 4; b++) {
            const g4_tq_codebook *cb = NULL;
            g4_error err;
            CHECK(g4_tq_codebook_get(d, b, &cb, &err) == G4_OK, "codebook %d %d", d, b);
            if (!cb) continue;
            const int n = cb->n;
            CHECK(n == 1 << b && cb->d == d && cb->bits == b, "codebook header");
            double ps = 0;
            for (int k = 0; k < n; k++) {
                CHECK(cb->c[k] == -cb->c[n - 1 - k], "d=%d b=%d not symmetric at %d", d, b, k);
                if (k + 1 < n) {
                    CHECK(cb->c[k] < cb->c[k + 1], "d=%d b=%d not sorted at %d", d, b, k);
                    CHECK(fabs(cb->t[k] - 0.5 * (cb->c[k] + cb->c[k + 1])) < 1e-15, "d=%d b=%d boundary %d", d, b, k);
                    CHECK(cb->tf[k] == (float)cb->t[k], "float boundary");
                }
                CHECK(cb->cf[k] == (float)cb->c[k], "float centroid");
                CHECK(fabs(cb->c8[k] * cb->unit8 - cb->c[k]) <= 0.5 * cb->unit8 * 1.0001, "int8 centroid");
                ps += cb->p[k];
            }
            CHECK(cb->t[n / 2 - 1] == 0, "d=%d b=%d: 0 is the middle boundary", d, b);
            CHECK(fabs(ps - 1) < 1e-12, "d=%d b=%d: cell probabilities sum to %.15f", d, b, ps);
            CHECK(cb->mse > pow(4.0, -b) && cb->mse < upper_bound(b), "d=%d b=%d: D_mse %g outside [4^-b, bound]", d, b,
                  cb->mse);
            CHECK(cb->mse8 - cb->mse < 0.005 * cb->mse, "d=%d b=%d: int8 codebook adds %.3g%% MSE", d, b,
                  100 * (cb->mse8 / cb->mse - 1));
            CHECK(cb->iters < 100000, "d=%d b=%d: Lloyd did not converge", d, b);
            mse[b] = cb->mse;
            x8[b] = 100 * (cb->mse8 / cb->mse - 1);
        }
        printf("  %5d %10.5f %10.5f %10.5f %10.5f   +%.3f%% +%.3f%% +%.3f%%\n", d, mse[1], mse[2], mse[3], mse[4],
               x8[2], x8[3], x8[4]);
    }
    for (size_t i = 0; i < sizeof doc_cb / sizeof doc_cb[0]; i++) {
        const g4_tq_codebook *cb = NULL;
        g4_tq_codebook_get(doc_cb[i].d, doc_cb[i].b, &cb, NULL);
        if (!cb) continue;
        double maxe = 0;
        for (int k = 0; k < cb->n / 2; k++) maxe = fmax(maxe, fabs(cb->c[cb->n / 2 + k] - doc_cb[i].c[k]));
        CHECK(maxe <= 6e-6, "d=%d b=%d: centroids differ from turboquant.md §1.2.1 by %g", doc_cb[i].d, doc_cb[i].b,
              maxe);
        CHECK(fabs(cb->mse - doc_cb[i].mse) <= 6e-6, "d=%d b=%d: D_mse %.6f, turboquant.md says %.5f", doc_cb[i].d,
              doc_cb[i].b, cb->mse, doc_cb[i].mse);
    }
    /* the paper's closed forms for b = 1, 2 in the Gaussian limit: sqrt(2/pi) and {0.453, 1.51} */
    const g4_tq_codebook *cb1 = NULL, *cb2 = NULL;
    g4_tq_codebook_get(1024, 1, &cb1, NULL);
    g4_tq_codebook_get(1024, 2, &cb2, NULL);
    if (cb1 && cb2) {
        CHECK(fabs(cb1->c[1] - sqrt(2 / PI)) < 2e-3, "b=1 centroid %g vs sqrt(2/pi)", cb1->c[1]);
        CHECK(fabs(cb2->c[2] - 0.453) < 1e-3 && fabs(cb2->c[3] - 1.51) < 2e-3, "b=2 centroids %g %g", cb2->c[2],
              cb2->c[3]);
    }
}

/* ---- records ------------------------------------------------------------------------------------ */

static void test_records(void) {
    float x[G4_TQ_MAX_DIM], y[G4_TQ_MAX_DIM], yh[G4_TQ_MAX_DIM], xh[G4_TQ_MAX_DIM];
    uint8_t rec[2 * G4_TQ_MAX_DIM];
    for (int d = G4_TQ_MIN_DIM; d <= G4_TQ_MAX_DIM; d *= 2)
        for (int t = 0; t < G4_TQ_N_TYPES; t++) {
            g4_tq_params *p = mkparams((g4_tq_type)t, d);
            CHECK(p->record_bytes == g4_tq_record_bytes((g4_tq_type)t, d), "record bytes");
            int bad_idx = 0, bad_val = 0;
            double worst_s = 0;
            for (int rep = 0; rep < 20; rep++) {
                /* per-coordinate RMS from 1e-2 to 1e2 (fp16 scales keep full precision there) */
                double norm = sqrt((double)d) * pow(10.0, -2 + 4 * (double)(t_rand64() >> 11) / 9007199254740992.0);
                rand_unit(x, d);
                for (int i = 0; i < d; i++) x[i] *= (float)norm;
                memset(rec, 0xA5, sizeof rec);
                g4_tq_encode(p, x, rec);
                g4_tq_rotate(p, x, y);
                g4_tq_decode_rotated(p, rec, yh);
                g4_tq_decode(p, rec, xh);
                if (t == G4_TQ_Q8) {
                    for (int j = 0; j < d; j += p->blk) {
                        float amax = 0;
                        for (int i = 0; i < p->blk; i++) amax = fmaxf(amax, fabsf(y[j + i]));
                        for (int i = 0; i < p->blk; i++)
                            /* half a step, plus the fp16 rounding of the step times |q| <= 127 */
                            bad_val += !(fabsf(yh[j + i] - y[j + i]) <= amax / 127 * (0.5f + 127.0f / 2048) * 1.001f);
                    }
                } else {
                    const g4_tq_codebook *cb = p->cb;
                    const float s = g4_tq_record_scale(p, rec);
                    double n = sqrt(dotf(y, y, d)), cc = 0;
                    for (int i = 0; i < d; i++) {
                        /* the nearest centroid of z, found here by a plain scan */
                        double z = y[i] * sqrt((double)d) / n;
                        int best = 0;
                        for (int k = 1; k < cb->n; k++)
                            if (fabs(z - cb->c[k]) < fabs(z - cb->c[best])) best = k;
                        int got = g4_tq_record_index(p, rec, i);
                        /* a z within float rounding of a boundary may go either way */
                        if (got != best &&
                            !(abs(got - best) == 1 && fabs(fabs(z - cb->c[got]) - fabs(z - cb->c[best])) < 1e-5))
                            bad_idx++;
                        bad_val += yh[i] != s * cb->cf[got];
                        cc += (double)cb->cf[got] * cb->cf[got];
                    }
                    double want = n / sqrt(cc);
                    worst_s = fmax(worst_s, fabs(s - want) / want);
                }
                double ex = 0;
                for (int i = 0; i < d; i++) ex = fmax(ex, fabs(xh[i] - x[i]));
                CHECK(ex <= 0.5 * norm + 1e-6 || t == G4_TQ_TQ2, "%s d=%d decode error %g for norm %g",
                      g4_tq_type_name(p->type), d, ex, norm);
            }
            CHECK(bad_idx == 0, "%s d=%d: %d indices are not the nearest centroid", g4_tq_type_name(p->type), d,
                  bad_idx);
            CHECK(bad_val == 0, "%s d=%d: %d decoded values wrong", g4_tq_type_name(p->type), d, bad_val);
            CHECK(worst_s <= 1.0 / 2048, "%s d=%d: norm-corrected scale off by %g", g4_tq_type_name(p->type), d,
                  worst_s);
            /* zero vector */
            memset(x, 0, (size_t)d * sizeof *x);
            g4_tq_encode(p, x, rec);
            g4_tq_decode(p, rec, xh);
            int nz = 0;
            for (int i = 0; i < d; i++) nz += xh[i] != 0;
            CHECK(nz == 0, "%s d=%d: zero vector decodes to %d non-zeros", g4_tq_type_name(p->type), d, nz);
            /* the three scale modes (tq types) */
            if (t != G4_TQ_Q8) {
                rand_unit(x, d);
                for (int i = 0; i < d; i++) x[i] *= 3.0f;
                g4_tq_rotate(p, x, y);
                const g4_tq_scale modes[3] = {G4_TQ_SCALE_NORM, G4_TQ_SCALE_RAW, G4_TQ_SCALE_UNBIASED};
                for (int m = 0; m < 3; m++) {
                    p->scale_mode = modes[m];
                    g4_tq_encode(p, x, rec);
                    g4_tq_decode_rotated(p, rec, yh);
                    double got = m == 0 ? sqrt(dotf(yh, yh, d)) : m == 1 ? g4_tq_record_scale(p, rec) : dotf(yh, y, d);
                    double want = m == 0 ? 3.0 : m == 1 ? 3.0 / sqrt((double)d) : 9.0;
                    CHECK(fabs(got - want) <= want * 1.2e-3, "%s d=%d scale mode %d: %g, want %g",
                          g4_tq_type_name(p->type), d, m, got, want);
                }
            }
            free(p);
        }
    /* layouts, spelled out: tq4 d=64 nibble order, tq3 d=128 planes */
    g4_tq_params *p4 = mkparams(G4_TQ_TQ4, 64), *p3 = mkparams(G4_TQ_TQ3, 128);
    for (int i = 0; i < 64; i++) x[i] = t_randf();
    g4_tq_encode(p4, x, rec);
    int bad = 0;
    for (int i = 0; i < 64; i++) {
        int blk = i / 32, j = i % 32, byte = blk * 16 + (j % 16);
        bad += g4_tq_record_index(p4, rec, i) != ((rec[byte] >> (j < 16 ? 0 : 4)) & 15);
    }
    CHECK(bad == 0, "tq4 nibble layout");
    for (int i = 0; i < 128; i++) x[i] = t_randf();
    g4_tq_encode(p3, x, rec);
    bad = 0;
    for (int i = 0; i < 128; i++) {
        int lo = (rec[i % 32] >> (2 * (i / 32))) & 3, hi = (rec[32 + i / 8] >> (i % 8)) & 1;
        bad += g4_tq_record_index(p3, rec, i) != (lo | hi << 2);
    }
    CHECK(bad == 0, "tq3 plane layout");
    free(p4);
    free(p3);
}

/* ---- distortion and inner products on random unit vectors --------------------------------------- */

static double doc_mse(int d, int b) {
    for (size_t i = 0; i < sizeof doc_cb / sizeof doc_cb[0]; i++)
        if (doc_cb[i].d == d && doc_cb[i].b == b) return doc_cb[i].mse;
    return NAN;
}

enum { M_RAW, M_NC, M_UNB, N_MODES };
static const char *const mode_name[N_MODES] = {"paper (raw norm)", "norm-corrected", "unbiased"};

typedef struct {
    double mse, saa, sab, sa2e2, se, see;
} ip_stats;

/* bias and variance of <q, x̂> for independent queries */
static void print_ip_header(void) {
    printf(
        "inner products <q, x̂> vs <q, x>, q independent random unit vectors: bias slope (E<q,x̂>/<q,x> - 1) with its\n"
        "standard error and prediction, mean error, and d·E[err²] against the bounds 4^-b (any quantizer, TQ Thm 3) "
        "and\n"
        "(sqrt3·pi/2)·4^-b (TurboQuant_mse, Thm 1); TurboQuant_prod's bound (Thm 2) sqrt3·pi²·4^-b for comparison\n");
    printf("  %4s %2s %-17s %9s %8s %9s %10s %9s %9s %9s %9s\n", "d", "b", "scale", "slope-1", "se", "predict",
           "mean err", "d·E[e²]", "lower", "mse bound", "prod bnd");
}

static void ip_report(int d, int b, int m, const ip_stats *q, int N, double D) {
    const double slope = q->sab / q->saa - 1, se = sqrt(q->sa2e2) / q->saa, v = d * q->see / N;
    const double pred = m == M_RAW ? -D : m == M_NC ? sqrt(1 - D) - 1 : 0;
    printf("  %4d %2d %-17s %+9.5f %8.5f %+9.5f %+10.2e %9.5f %9.5f %9.5f %9.4f\n", d, b, mode_name[m], slope, se, pred,
           q->se / N, v, pow(4.0, -b), upper_bound(b), sqrt(3.0) * PI * PI * pow(4.0, -b));
    CHECK(fabs(slope - pred) <= 5 * se + 0.03 * fabs(pred), "d=%d b=%d %s: bias slope %.5f, predicted %.5f", d, b,
          mode_name[m], slope, pred);
    CHECK(fabs(q->se / N) <= 5 * sqrt(v / d / N), "d=%d b=%d %s: mean error %g", d, b, mode_name[m], q->se / N);
    CHECK(v >= pow(4.0, -b) && v <= upper_bound(b), "d=%d b=%d %s: d·E[err²] = %.5f outside [4^-b, (sqrt3 pi/2) 4^-b]",
          d, b, mode_name[m], v);
    /* for an independent uniform query E<q, x̂ - x>² = E||x̂ - x||² / d */
    CHECK(fabs(v - q->mse / N) <= fmax(0.03, 5 * sqrt(2.0 / N)) * v, "d=%d b=%d %s: d·E[err²] %.5f vs D %.5f", d, b,
          mode_name[m], v, q->mse / N);
}

static void test_distortion(int N) {
    float *x = malloc(2 * G4_TQ_MAX_DIM * sizeof *x), *y = malloc(2 * G4_TQ_MAX_DIM * sizeof *y);
    float yh[G4_TQ_MAX_DIM];
    uint8_t rec[G4_TQ_MAX_DIM];
    CHECK(x && y, "alloc");
    if (!x || !y) return;
    static ip_stats all[2][5][N_MODES];
    memset(all, 0, sizeof all);
    printf("distortion: %d random unit vectors per d; queries: independent random unit vectors\n", N);
    printf("  %4s %2s %11s %11s %9s %9s %10s %11s %11s\n", "d", "b", "D_mse", "codebook", "doc 1.2.1", "bound",
           "vs doc", "norm-corr.", "unbiased");
    for (int d = 256; d <= 512; d *= 2) {
        g4_tq_params *p[5] = {NULL, NULL, mkparams(G4_TQ_TQ2, d), mkparams(G4_TQ_TQ3, d), mkparams(G4_TQ_TQ4, d)};
        const g4_tq_codebook *cb1 = NULL;
        g4_tq_codebook_get(d, 1, &cb1, NULL);
        if (!cb1) return;
        ip_stats(*st)[N_MODES] = all[d == 512];
        const double sd = sqrt((double)d);
        float *xp = x + G4_TQ_MAX_DIM, *gp = y + G4_TQ_MAX_DIM; /* the previous vector: this one's query */
        rand_unit(xp, d);
        g4_tq_rotate(p[2], xp, gp);
        for (int v = 0; v < N; v++) {
            rand_unit(x, d);
            g4_tq_rotate(p[2], x, y);
            const double n2 = dotf(y, y, d), n = sqrt(n2), a = dotf(xp, x, d);
            for (int b = 1; b <= 4; b++) {
                double yc, gc, cc, nc_mse, nc_b; /* <y,C>, <g,C>, ||C||² with C = C*_idx; the stored NC record */
                if (b == 1) {
                    const double c1 = cb1->cf[1];
                    double ay = 0, gs = 0;
                    for (int i = 0; i < d; i++) {
                        ay += fabsf(y[i]);
                        gs += y[i] > 0 ? gp[i] : -gp[i];
                    }
                    yc = c1 * ay;
                    gc = c1 * gs;
                    cc = c1 * c1 * d;
                    const double s = n / sqrt(cc);
                    nc_mse = n2 - 2 * s * yc + s * s * cc;
                    nc_b = s * gc;
                } else {
                    g4_tq_encode_rotated(p[b], y, rec);
                    g4_tq_decode_rotated(p[b], rec, yh);
                    double yy = 0, hh = 0, gh = 0;
                    for (int i = 0; i < d; i++) {
                        yy += (double)y[i] * yh[i];
                        hh += (double)yh[i] * yh[i];
                        gh += (double)gp[i] * yh[i];
                    }
                    const double s = g4_tq_record_scale(p[b], rec);
                    nc_b = gh;
                    nc_mse = n2 - 2 * yy + hh;
                    yc = yy / s;
                    gc = nc_b / s;
                    cc = hh / (s * s);
                }
                const double s_raw = n / sd, s_unb = n2 / yc;
                const double mse[N_MODES] = {n2 - 2 * s_raw * yc + s_raw * s_raw * cc, nc_mse, s_unb * s_unb * cc - n2};
                const double bb[N_MODES] = {s_raw * gc, nc_b, s_unb * gc};
                for (int m = 0; m < N_MODES; m++) {
                    ip_stats *q = &st[b][m];
                    const double e = bb[m] - a;
                    q->mse += mse[m] / n2;
                    q->saa += a * a;
                    q->sab += a * bb[m];
                    q->sa2e2 += a * a * e * e;
                    q->se += e;
                    q->see += e * e;
                }
            }
            memcpy(xp, x, (size_t)d * sizeof *x);
            memcpy(gp, y, (size_t)d * sizeof *y);
        }
        for (int b = 1; b <= 4; b++) {
            const g4_tq_codebook *cb = NULL;
            g4_tq_codebook_get(d, b, &cb, NULL);
            const double raw = st[b][M_RAW].mse / N, nc = st[b][M_NC].mse / N, unb = st[b][M_UNB].mse / N;
            const double doc = doc_mse(d, b), D = cb->mse;
            printf("  %4d %2d %11.5f %11.5f %9.4f %9.4f %+9.2f%% %11.5f %11.5f\n", d, b, raw, D, doc, upper_bound(b),
                   100 * (raw / doc - 1), nc, unb);
            CHECK(fabs(raw - D) <= 0.01 * D, "d=%d b=%d: measured D_mse %.5f, codebook %.5f", d, b, raw, D);
            CHECK(fabs(raw - doc) <= 0.03 * doc, "d=%d b=%d: measured D_mse %.5f, turboquant.md 1.2.1 %.5f", d, b, raw,
                  doc);
            CHECK(raw < upper_bound(b) && nc < upper_bound(b) && unb < upper_bound(b),
                  "d=%d b=%d: D_mse over the paper's bound %.4f", d, b, upper_bound(b));
            /* NC: ||x - x̂||² = 2 - 2<x, C>/||C|| ≈ 2 - 2 sqrt(1 - D); unbiased: ≈ D / (1 - D) */
            CHECK(fabs(nc - (2 - 2 * sqrt(1 - D))) <= 0.03 * nc, "d=%d b=%d: norm-corrected MSE %.5f", d, b, nc);
            CHECK(fabs(unb - D / (1 - D)) <= 0.03 * unb, "d=%d b=%d: unbiased-scale MSE %.5f", d, b, unb);
        }
        free(p[2]);
        free(p[3]);
        free(p[4]);
    }
    print_ip_header();
    for (int d = 256; d <= 512; d *= 2)
        for (int b = 1; b <= 4; b++) {
            const g4_tq_codebook *cb = NULL;
            g4_tq_codebook_get(d, b, &cb, NULL);
            for (int m = 0; m < N_MODES; m++) ip_report(d, b, m, &all[d == 512][b][m], N, cb->mse);
        }
    free(x);
    free(y);
}

/* ---- SIMD kernels against the scalar reference ------------------------------------------------- */

static void rand_vec(float *x, int d, double rms) {
    for (int i = 0; i < d; i++) x[i] = (float)(gauss() * rms);
}

static void test_kernels(void) {
    const g4_tq_kernels *ref = g4_tq_kernels_scalar(), *simd = g4_tq_kernels_avx2();
    if (!simd) {
        printf("kernels: no SIMD kernel set on this CPU; scalar only\n");
        return;
    }
    printf("kernels: %s against %s\n", simd->isa, ref->isa);
    float x[G4_TQ_MAX_DIM], q[G4_TQ_MAX_DIM], yh[G4_TQ_MAX_DIM], acc0[G4_TQ_MAX_DIM], acc1[G4_TQ_MAX_DIM],
        qd[G4_TQ_MAX_DIM];
    uint8_t rec[2 * G4_TQ_MAX_DIM];
    g4_tq_query *qq = malloc(sizeof *qq);
    CHECK(qq != NULL, "alloc");
    if (!qq) return;
    for (int d = G4_TQ_MIN_DIM; d <= G4_TQ_MAX_DIM; d *= 2)
        for (int t = 0; t < G4_TQ_N_TYPES; t++) {
            g4_tq_params *p = mkparams((g4_tq_type)t, d);
            int bad_s = 0, bad_i = 0, bad_a = 0;
            double worst = 0;
            for (int rep = 0; rep < 40; rep++) {
                rand_vec(x, d, pow(10.0, (double)(rep % 5) - 2));
                rand_vec(q, d, pow(10.0, (double)(rep % 3) - 1));
                g4_tq_encode(p, x, rec);
                g4_tq_query_prepare(p, q, qq);
                g4_tq_decode_rotated(p, rec, yh);
                /* sum of |terms|: float path, int8 path (dequantized operands) */
                double A = 0, A8 = 0;
                const double sc = p->cb ? g4_tq_record_scale(p, rec) : 0;
                for (int i = 0; i < d; i++) {
                    qd[i] = qq->qscale[i / qq->blk] * qq->q8[i];
                    A += fabs((double)qq->rot[i] * yh[i]);
                    double k8 = yh[i];
                    if (p->cb) { /* the int8 codebook value of element i (its index: the centroid yh[i] / s) */
                        int k = 0;
                        for (int c = 1; c < p->cb->n; c++)
                            if (fabs(yh[i] - sc * p->cb->cf[c]) < fabs(yh[i] - sc * p->cb->cf[k])) k = c;
                        k8 = sc * p->cb->unit8 * p->cb->c8[k];
                    }
                    A8 += fabs(qd[i] * k8);
                }
                const double tol = (d + 16) * (double)FLT_EPSILON;
                float r0 = ref->score(p, qq, rec), r1 = simd->score(p, qq, rec);
                bad_s += !(fabs((double)r0 - r1) <= tol * A + 1e-37);
                worst = fmax(worst, fabs((double)r0 - r1) / (A + 1e-37));
                r0 = ref->score_i8(p, qq, rec);
                r1 = simd->score_i8(p, qq, rec);
                bad_i += !(fabs((double)r0 - r1) <= tol * A8 + 1e-37);
                const float a = (float)gauss();
                for (int i = 0; i < d; i++) acc0[i] = acc1[i] = (float)gauss();
                ref->axpy(p, rec, a, acc0);
                simd->axpy(p, rec, a, acc1);
                for (int i = 0; i < d; i++)
                    bad_a += !(fabsf(acc0[i] - acc1[i]) <= 4 * FLT_EPSILON * (fabsf(acc0[i]) + fabsf(a * yh[i])));
            }
            /* rotations and encoder: bit-identical, every scale mode, norms from 1e-3 to 1e3, zero vectors */
            int bad_f = 0, bad_e = 0;
            uint8_t rec2[2 * G4_TQ_MAX_DIM];
            for (int rep = 0; rep < 60; rep++) {
                p->scale_mode = (g4_tq_scale)(rep % 3);
                rand_vec(x, d, rep == 59 ? 0.0 : pow(10.0, (double)(rep % 7) - 3));
                ref->rotate(p, x, q);
                simd->rotate(p, x, yh);
                bad_f += memcmp(yh, q, (size_t)d * sizeof *x) != 0;
                ref->unrotate(p, q, acc0);
                simd->unrotate(p, q, acc1);
                bad_f += memcmp(acc0, acc1, (size_t)d * sizeof *x) != 0;
                memcpy(x, q, (size_t)d * sizeof *x);
                memset(rec, 0x5A, p->record_bytes);
                memset(rec2, 0xA5, p->record_bytes);
                ref->encode_rotated(p, x, rec);
                simd->encode_rotated(p, x, rec2);
                bad_e += memcmp(rec, rec2, p->record_bytes) != 0;
            }
            p->scale_mode = G4_TQ_SCALE_NORM;
            CHECK(bad_f == 0, "%s d=%d: %d SIMD rotations differ", g4_tq_type_name(p->type), d, bad_f);
            CHECK(bad_e == 0, "%s d=%d: %d SIMD encodings differ", g4_tq_type_name(p->type), d, bad_e);
            CHECK(bad_s == 0, "%s d=%d: %d SIMD scores off (worst %g of the sum of |terms|)", g4_tq_type_name(p->type),
                  d, bad_s, worst);
            CHECK(bad_i == 0, "%s d=%d: %d SIMD int8 scores off", g4_tq_type_name(p->type), d, bad_i);
            CHECK(bad_a == 0, "%s d=%d: %d SIMD axpy values off", g4_tq_type_name(p->type), d, bad_a);
            free(p);
        }
    free(qq);
}

/* ---- attention ---------------------------------------------------------------------------------- */

typedef struct {
    g4_tq_type k, v;
} kv_pair;

static const kv_pair pairs[] = {{G4_TQ_Q8, G4_TQ_Q8},   {G4_TQ_TQ4, G4_TQ_TQ4}, {G4_TQ_TQ3, G4_TQ_TQ3},
                                {G4_TQ_TQ2, G4_TQ_TQ2}, {G4_TQ_Q8, G4_TQ_TQ4},  {G4_TQ_TQ4, G4_TQ_TQ3},
                                {G4_TQ_TQ3, G4_TQ_TQ2}};
#define N_PAIRS (int)(sizeof pairs / sizeof pairs[0])

static double max_rel(const float *a, const float *b, int d) {
    double e = 0, m = 0;
    for (int i = 0; i < d; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / (m > 0 ? m : 1);
}

/* packed-domain attention equals the reference that dequantizes first */
static void test_attention_ref(void) {
    static const int dims[] = {16, 64, 256, 512}, ns[] = {1, 7, 40, 300};
    const g4_tq_kernels *sets[2] = {g4_tq_kernels_scalar(), g4_tq_kernels_avx2()};
    const int NMAX = 300;
    float *keys = malloc((size_t)NMAX * G4_TQ_MAX_DIM * sizeof *keys),
          *vals = malloc((size_t)NMAX * G4_TQ_MAX_DIM * sizeof *vals);
    uint8_t *kr = malloc((size_t)NMAX * (2 * G4_TQ_MAX_DIM + 8)), *vr = malloc((size_t)NMAX * (2 * G4_TQ_MAX_DIM + 8));
    g4_tq_attn *s1 = malloc(sizeof *s1), *s2 = malloc(sizeof *s2);
    g4_tq_query *qq = malloc(sizeof *qq);
    float q[G4_TQ_MAX_DIM], out[G4_TQ_MAX_DIM], ref[G4_TQ_MAX_DIM], out2[G4_TQ_MAX_DIM];
    CHECK(keys && vals && kr && vr && s1 && s2 && qq, "alloc");
    if (!keys || !vals || !kr || !vr || !s1 || !s2 || !qq) return;
    double worst[2] = {0, 0}, worst_merge = 0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const int d = dims[di];
        for (int t = 0; t < NMAX; t++) {
            rand_vec(keys + (size_t)t * d, d, 0.5 + (double)(t_rand64() >> 11) / 9007199254740992.0 * 1.5);
            rand_vec(vals + (size_t)t * d, d, 1.0);
        }
        for (int pi = 0; pi < N_PAIRS; pi++) {
            g4_tq_params *pk = mkparams(pairs[pi].k, d), *pv = mkparams(pairs[pi].v, d);
            const size_t ks = pk->record_bytes + 3, vs = pv->record_bytes + 5; /* odd strides: no alignment needed */
            for (int t = 0; t < NMAX; t++) {
                g4_tq_encode(pk, keys + (size_t)t * d, kr + (size_t)t * ks);
                g4_tq_encode(pv, vals + (size_t)t * d, vr + (size_t)t * vs);
            }
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                const int n = ns[ni];
                rand_vec(q, d, 3.0 / sqrt((double)d)); /* logits with a spread of about 3 */
                for (int fl = 0; fl <= G4_TQ_ATTN_I8; fl++) {
                    g4_error err;
                    CHECK(g4_tq_attend_ref(pk, pv, q, kr, ks, vr, vs, n, fl, ref, &err) == G4_OK, "attend_ref");
                    for (int ki = 0; ki < 2; ki++) {
                        if (!sets[ki]) continue;
                        pk->kern = pv->kern = sets[ki];
                        CHECK(g4_tq_attend(pk, pv, q, kr, ks, vr, vs, n, fl, out, &err) == G4_OK, "attend");
                        double e = max_rel(out, ref, d);
                        worst[fl] = fmax(worst[fl], e);
                        CHECK(e < 2e-5, "%s/%s d=%d n=%d %s %s: packed attention differs from the reference by %g",
                              g4_tq_type_name(pk->type), g4_tq_type_name(pv->type), d, n, fl ? "int8" : "float",
                              sets[ki]->isa, e);
                        /* two states over a split range, merged in reverse order */
                        const int cut = n / 3;
                        g4_tq_query_prepare(pk, q, qq);
                        g4_tq_attn_init(s1, d);
                        g4_tq_attn_init(s2, d);
                        g4_tq_attn_add(pk, pv, qq, fl, kr + (size_t)cut * ks, ks, vr + (size_t)cut * vs, vs, n - cut,
                                       s1);
                        g4_tq_attn_add(pk, pv, qq, fl, kr, ks, vr, vs, cut, s2);
                        g4_tq_attn_merge(s1, s2);
                        g4_tq_attn_finish(pv, s1, out2);
                        e = max_rel(out2, out, d);
                        worst_merge = fmax(worst_merge, e);
                        CHECK(e < 1e-5, "%s/%s d=%d n=%d: merged states differ by %g", g4_tq_type_name(pk->type),
                              g4_tq_type_name(pv->type), d, n, e);
                    }
                }
            }
            /* no keys; mismatched dims; negative n */
            g4_error err;
            for (int i = 0; i < d; i++) out[i] = 1;
            CHECK(g4_tq_attend(pk, pv, q, kr, ks, vr, vs, 0, 0, out, &err) == G4_OK, "n = 0");
            int nz = 0;
            for (int i = 0; i < d; i++) nz += out[i] != 0;
            CHECK(nz == 0, "n = 0 gives zeros");
            CHECK(g4_tq_attend(pk, pv, q, kr, ks, vr, vs, -1, 0, out, &err) == G4_ERR_ARG, "n < 0 rejected");
            free(pk);
            free(pv);
        }
    }
    g4_tq_params *a = mkparams(G4_TQ_TQ4, 256), *b = mkparams(G4_TQ_TQ4, 512);
    g4_error err;
    CHECK(g4_tq_attend(a, b, q, kr, 1, vr, 1, 1, 0, out, &err) == G4_ERR_ARG, "K/V dims must match");
    printf("packed attention vs the dequantizing reference: max relative difference %.2e (float scores), %.2e (int8 "
           "scores), merged states %.2e\n",
           worst[0], worst[1], worst_merge);
    free(a);
    free(b);
    free(keys);
    free(vals);
    free(kr);
    free(vr);
    free(s1);
    free(s2);
    free(qq);
}

/* output error and attention-weight KL against exact f32 attention, per type (synthetic heads in the
 * style of turboquant.md §3.9: log-normal key norms, a few outlier channels, queries pulled toward 8
 * "needle" keys, logit standard deviation 2.5) */
static void test_attention_exact(void) {
    const int n = 1024, NQ = 64;
    float *keys = malloc((size_t)n * G4_TQ_MAX_DIM * sizeof *keys),
          *vals = malloc((size_t)n * G4_TQ_MAX_DIM * sizeof *vals);
    float *kdec = malloc((size_t)n * G4_TQ_MAX_DIM * sizeof *kdec);
    uint8_t *kr = malloc((size_t)n * 2 * G4_TQ_MAX_DIM), *vr = malloc((size_t)n * 2 * G4_TQ_MAX_DIM);
    double *lg = malloc((size_t)n * sizeof *lg), *pe = malloc((size_t)n * sizeof *pe);
    float *qs = malloc((size_t)NQ * G4_TQ_MAX_DIM * sizeof *qs);
    g4_tq_query *qq = malloc(sizeof *qq);
    CHECK(keys && vals && kdec && kr && vr && lg && pe && qs && qq, "alloc");
    if (!keys || !vals || !kdec || !kr || !vr || !lg || !pe || !qs || !qq) return;
    printf(
        "attention vs exact f32 (n = %d keys, %d queries): mean relative output error ||o - o_exact|| / ||o_exact||, "
        "float and int8 score paths; mean KL(p_exact || p) of the attention weights; top-1 agreement\n",
        n, NQ);
    printf("  %4s %-9s %12s %12s %12s %8s %14s\n", "d", "K/V", "out err", "out err i8", "KL", "top-1", "i8 logit err");
    for (int d = 256; d <= 512; d *= 2) {
        float ch[G4_TQ_MAX_DIM], out[G4_TQ_MAX_DIM];
        for (int i = 0; i < d; i++) ch[i] = i % 37 == 5 ? 4.0f : 1.0f; /* outlier channels */
        for (int t = 0; t < n; t++) {
            double nrm = exp(0.5 * gauss());
            for (int i = 0; i < d; i++) keys[(size_t)t * d + i] = (float)(gauss() * ch[i] * nrm);
            double vn = 0;
            float *v = vals + (size_t)t * d;
            rand_vec(v, d, 1.0);
            for (int i = 0; i < d; i++) vn += (double)v[i] * v[i];
            for (int i = 0; i < d; i++) v[i] = (float)(v[i] * sqrt(d / vn)); /* RMS 1, like Gemma's V norm */
        }
        for (int qi = 0; qi < NQ; qi++) { /* query: noise plus the direction of 8 needle keys */
            float *q = qs + (size_t)qi * d;
            rand_vec(q, d, 1.0);
            for (int j = 0; j < 8; j++) {
                const float *k = keys + (size_t)(t_rand64() % (uint64_t)n) * d;
                double kn = sqrt(dotf(k, k, d));
                for (int i = 0; i < d; i++) q[i] += (float)(1.5 * sqrt((double)d) * k[i] / kn / sqrt(8.0));
            }
            double m = 0, m2 = 0;
            for (int t = 0; t < n; t++) {
                double l = dotf(q, keys + (size_t)t * d, d);
                m += l;
                m2 += l * l;
            }
            double sdv = sqrt(m2 / n - (m / n) * (m / n));
            for (int i = 0; i < d; i++) q[i] = (float)(q[i] * 2.5 / sdv);
        }
        double err_pair[N_PAIRS];
        for (int pi = 0; pi < N_PAIRS; pi++) {
            g4_tq_params *pk = mkparams(pairs[pi].k, d), *pv = mkparams(pairs[pi].v, d);
            for (int t = 0; t < n; t++) {
                g4_tq_encode(pk, keys + (size_t)t * d, kr + (size_t)t * pk->record_bytes);
                g4_tq_encode(pv, vals + (size_t)t * d, vr + (size_t)t * pv->record_bytes);
                g4_tq_decode(pk, kr + (size_t)t * pk->record_bytes, kdec + (size_t)t * d);
            }
            double e0 = 0, e1 = 0, kl = 0, dl2 = 0;
            int top1 = 0;
            for (int qi = 0; qi < NQ; qi++) {
                const float *q = qs + (size_t)qi * d;
                /* the int8 score path against the float one, per key (relative to the logit spread 2.5) */
                g4_tq_query_prepare(pk, q, qq);
                for (int t = 0; t < n; t++) {
                    const uint8_t *r = kr + (size_t)t * pk->record_bytes;
                    double df = (double)pk->kern->score_i8(pk, qq, r) - pk->kern->score(pk, qq, r);
                    dl2 += df * df / ((double)n * NQ);
                }
                /* exact attention, in double */
                double mx = -INFINITY, sum = 0, ex[G4_TQ_MAX_DIM] = {0};
                int am = 0;
                for (int t = 0; t < n; t++) {
                    lg[t] = dotf(q, keys + (size_t)t * d, d);
                    if (lg[t] > mx) mx = lg[t], am = t;
                }
                for (int t = 0; t < n; t++) sum += pe[t] = exp(lg[t] - mx);
                for (int t = 0; t < n; t++) {
                    pe[t] /= sum;
                    for (int i = 0; i < d; i++) ex[i] += pe[t] * vals[(size_t)t * d + i];
                }
                /* quantized weights: scores against the decoded keys */
                double mq = -INFINITY, sq = 0;
                int aq = 0;
                for (int t = 0; t < n; t++) {
                    lg[t] = dotf(q, kdec + (size_t)t * d, d);
                    if (lg[t] > mq) mq = lg[t], aq = t;
                }
                for (int t = 0; t < n; t++) sq += exp(lg[t] - mq);
                for (int t = 0; t < n; t++) kl += pe[t] * (log(pe[t]) - (lg[t] - mq - log(sq)));
                top1 += am == aq;
                double en = 0;
                for (int i = 0; i < d; i++) en += ex[i] * ex[i];
                for (int fl = 0; fl <= G4_TQ_ATTN_I8; fl++) {
                    g4_tq_attend(pk, pv, q, kr, pk->record_bytes, vr, pv->record_bytes, n, fl, out, NULL);
                    double dd = 0;
                    for (int i = 0; i < d; i++) dd += (out[i] - ex[i]) * (out[i] - ex[i]);
                    *(fl ? &e1 : &e0) += sqrt(dd / en) / NQ;
                }
            }
            char name[16];
            snprintf(name, sizeof name, "%s/%s", g4_tq_type_name(pk->type), g4_tq_type_name(pv->type));
            printf("  %4d %-9s %12.5f %12.5f %12.6f %7.0f%% %14.5f\n", d, name, e0, e1, kl / NQ, 100.0 * top1 / NQ,
                   sqrt(dl2) / 2.5);
            err_pair[pi] = e0;
            CHECK(fabs(e1 - e0) <= 0.1 * e0 + 5e-3, "%s d=%d: the int8 path adds too much error (%g vs %g)", name, d,
                  e1, e0);
            free(pk);
            free(pv);
        }
        /* sanity: more bits, less error; q8 near exact */
        CHECK(err_pair[0] < 0.02, "d=%d q8 output error %g", d, err_pair[0]);
        CHECK(err_pair[0] < err_pair[1] && err_pair[1] < err_pair[2] && err_pair[2] < err_pair[3],
              "d=%d errors not ordered q8 < tq4 < tq3 < tq2: %g %g %g %g", d, err_pair[0], err_pair[1], err_pair[2],
              err_pair[3]);
        CHECK(err_pair[1] < 0.25, "d=%d tq4 output error %g", d, err_pair[1]);
    }
    free(keys);
    free(vals);
    free(kdec);
    free(kr);
    free(vr);
    free(lg);
    free(pe);
    free(qs);
    free(qq);
}

/* ---- microbenchmark (--bench) -------------------------------------------------------------------- */

static void bench(void) {
    const int n = 4096;
    const g4_tq_kernels *sets[2] = {g4_tq_kernels_scalar(), g4_tq_kernels_avx2()};
    uint8_t *rec = malloc((size_t)n * 2 * G4_TQ_MAX_DIM);
    g4_tq_query *qq = malloc(sizeof *qq);
    float x[G4_TQ_MAX_DIM], acc[G4_TQ_MAX_DIM] = {0};
    if (!rec || !qq) return;
    printf("bench: ns per record (best of 20 passes over %d records), scalar / SIMD; encode: g4_tq_encode with the "
           "best kernels (rotation included)\n",
           n);
    printf("  %4s %-4s %20s %20s %20s %12s\n", "d", "type", "score", "score_i8", "axpy", "encode");
    for (int d = 256; d <= 512; d *= 2)
        for (int t = 0; t < G4_TQ_N_TYPES; t++) {
            g4_tq_params *p = mkparams((g4_tq_type)t, d);
            for (int r = 0; r < n; r++) {
                rand_vec(x, d, 1.0);
                g4_tq_encode(p, x, rec + (size_t)r * p->record_bytes);
            }
            double t0, tenc = INFINITY;
            for (int rep = 0; rep < 20; rep++) { /* the best of 20 passes: the machine may be busy */
                t0 = g4_time_s();
                for (int r = 0; r < n; r++) g4_tq_encode(p, x, rec + (size_t)r * p->record_bytes);
                tenc = fmin(tenc, (g4_time_s() - t0) / n * 1e9);
            }
            rand_vec(x, d, 1.0);
            g4_tq_query_prepare(p, x, qq);
            double ns[2][3] = {{0}};
            volatile float sink = 0;
            for (int k = 0; k < 2; k++) {
                if (!sets[k]) continue;
                for (int f = 0; f < 3; f++) {
                    double best = INFINITY;
                    for (int rep = 0; rep < 20; rep++) {
                        t0 = g4_time_s();
                        for (int r = 0; r < n; r++) {
                            const uint8_t *rr = rec + (size_t)r * p->record_bytes;
                            if (f == 0)
                                sink += sets[k]->score(p, qq, rr);
                            else if (f == 1)
                                sink += sets[k]->score_i8(p, qq, rr);
                            else
                                sets[k]->axpy(p, rr, 1e-3f, acc);
                        }
                        best = fmin(best, g4_time_s() - t0);
                    }
                    ns[k][f] = best / n * 1e9;
                }
            }
            printf("  %4d %-4s %9.1f / %8.1f %9.1f / %8.1f %9.1f / %8.1f %12.1f\n", d, g4_tq_type_name(p->type),
                   ns[0][0], ns[1][0], ns[0][1], ns[1][1], ns[0][2], ns[1][2], tenc);
            (void)sink;
            free(p);
        }
    free(rec);
    free(qq);
}

int main(int argc, char **argv) {
    int N = 100000, do_bench = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vectors") && i + 1 < argc) N = atoi(argv[++i]);
        if (!strcmp(argv[i], "--bench")) do_bench = 1;
    }
    test_sizes();
    test_rotation();
    test_codebooks();
    test_records();
    test_distortion(N);
    test_kernels();
    test_attention_ref();
    test_attention_exact();
    if (do_bench) bench();
    return t_done();
}
