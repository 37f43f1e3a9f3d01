/* TurboQuant KV cache math core: rotation, codebooks, records, scalar kernels and attention.
 * Formats and conventions: turboquant.h. AVX2 kernels: turboquant_avx2.c. */
#include "kv/turboquant.h"
#include "kv/turboquant_internal.h"
#include "quant/types.h"
#include "util/util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

/* ---- types ---------------------------------------------------------------------------------------- */

static int is_pow2_dim(int d) { return d >= G4_TQ_MIN_DIM && d <= G4_TQ_MAX_DIM && (d & (d - 1)) == 0; }

size_t g4_tq_record_bytes(g4_tq_type type, int d) {
    if (!is_pow2_dim(d)) return 0;
    size_t n = (size_t)d, b = n < 32 ? n : 32;
    switch (type) {
    case G4_TQ_Q8: return n / b * (2 + b);
    case G4_TQ_TQ4: return n / 2 + 2;
    case G4_TQ_TQ3: return n / 4 + n / 8 + 2;
    case G4_TQ_TQ2: return n / 4 + 2;
    default: return 0;
    }
}

static const char *const type_names[G4_TQ_N_TYPES] = {"q8", "tq4", "tq3", "tq2"};

const char *g4_tq_type_name(g4_tq_type type) { return (unsigned)type < G4_TQ_N_TYPES ? type_names[type] : NULL; }

int g4_tq_type_from_name(const char *name) {
    for (int t = 0; t < G4_TQ_N_TYPES; t++)
        if (name && !strcmp(name, type_names[t])) return t;
    return -1;
}

/* ---- rotation ------------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void g4_tq_signs(uint64_t seed, int d, float *sign) {
    uint64_t st = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)d);
    for (int i = 0; i < d; i++) sign[i] = (splitmix64(&st) >> 63) ? -1.0f : 1.0f;
}

/* unnormalized butterflies: x <- H_u x, H_u[i][j] = (-1)^popcount(i & j) */
static void fwht_u(float *x, int d) {
    for (int h = 1; h < d; h *= 2)
        for (int i = 0; i < d; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

void g4_tq_fwht(float *x, int d) {
    fwht_u(x, d);
    float s = (float)(1.0 / sqrt((double)d));
    for (int i = 0; i < d; i++) x[i] *= s;
}

static void rotate_scalar(const g4_tq_params *p, const float *x, float *y) {
    for (int i = 0; i < p->d; i++) y[i] = x[i] * p->sign_scaled[i];
    fwht_u(y, p->d);
}

static void unrotate_scalar(const g4_tq_params *p, const float *y, float *x) {
    if (x != y) memcpy(x, y, (size_t)p->d * sizeof *x);
    fwht_u(x, p->d);
    for (int i = 0; i < p->d; i++) x[i] *= p->sign_scaled[i];
}

void g4_tq_rotate(const g4_tq_params *p, const float *x, float *y) { p->kern->rotate(p, x, y); }
void g4_tq_unrotate(const g4_tq_params *p, const float *y, float *x) { p->kern->unrotate(p, y, x); }

/* ---- Lloyd–Max codebooks ------------------------------------------------------------------------------
 * X = one coordinate of a uniform unit vector of R^d (d even >= 4): density f_d(x) = C_d (1-x²)^((d-3)/2),
 * C_2 = 1/pi, C_{k+2} = C_k · k/(k-1).
 *   G_d(x) = P(0 < X < x) = asin(x)/pi + Σ_{k=4,6..d} T_k,  T_k = C_k x (1-x²)^((k-3)/2) / (k-2)
 *            (from ∫(1-t²)^(n/2) = x(1-x²)^(n/2)/(n+1) + n/(n+1) ∫(1-t²)^(n/2-1); every term is positive,
 *            T_4 = x sqrt(1-x²)/pi, T_{k+2} = T_k (1-x²)(k-2)/(k-1))
 *   h(x)   = ∫_x^1 t f_d(t) dt = C_d (1-x²)^((d-1)/2) / (d-1)
 *   ∫_a^b t² f_d = a h(a) - b h(b) + (G_{d+2}(b) - G_{d+2}(a)) / d          (by parts; C_d/C_{d+2} = (d-1)/d)
 * Lloyd on the positive half (the optimum is symmetric, 0 is a boundary): centroid = ∫ t f / ∫ f over
 * its cell, boundaries = midpoints. */

typedef struct {
    int d;
    double cd; /* C_d */
} coord_dist;

static void dist_cdf(const coord_dist *D, double x, double *g, double *g2) {
    double w = (1.0 - x) * (1.0 + x);
    double sum = asin(x) / PI, t = x * sqrt(w) / PI;
    for (int k = 4; k <= D->d; k += 2) {
        sum += t;
        t *= w * (double)(k - 2) / (double)(k - 1);
    }
    *g = sum;
    if (g2) *g2 = sum + t;
}

static double dist_h(const coord_dist *D, double x) {
    double w = (1.0 - x) * (1.0 + x);
    if (w <= 0) return 0;
    return D->cd * exp(0.5 * (D->d - 1) * log(w)) / (double)(D->d - 1);
}

static void solve_codebook(int d, int bits, g4_tq_codebook *cb) {
    coord_dist D = {d, 1.0 / PI};
    for (int k = 2; k < d; k += 2) D.cd *= (double)k / (double)(k - 1);
    const int n = 1 << bits, K = n / 2;
    const double sd = sqrt((double)d);
    double c[8], t[9], G[9], G2[9], H[9];
    for (int i = 0; i < K; i++) c[i] = (i + 0.5) * (3.0 / K) / sd;
    int it = 0;
    for (; it < 100000; it++) {
        t[0] = 0;
        t[K] = 1;
        for (int i = 1; i < K; i++) t[i] = 0.5 * (c[i - 1] + c[i]);
        for (int i = 0; i <= K; i++) {
            dist_cdf(&D, t[i], &G[i], NULL);
            H[i] = dist_h(&D, t[i]);
        }
        double delta = 0;
        for (int i = 0; i < K; i++) {
            double nc = (H[i] - H[i + 1]) / (G[i + 1] - G[i]);
            delta = fmax(delta, fabs(nc - c[i]) * sd);
            c[i] = nc;
        }
        if (delta < 1e-12) break;
    }
    /* final boundaries, probabilities and D_mse of the converged centroids */
    t[0] = 0;
    t[K] = 1;
    for (int i = 1; i < K; i++) t[i] = 0.5 * (c[i - 1] + c[i]);
    for (int i = 0; i <= K; i++) {
        dist_cdf(&D, t[i], &G[i], &G2[i]);
        H[i] = dist_h(&D, t[i]);
    }
    double mse = 0;
    memset(cb, 0, sizeof *cb);
    cb->d = d;
    cb->bits = bits;
    cb->n = n;
    cb->iters = it + 1;
    for (int i = 0; i < K; i++) {
        double P = G[i + 1] - G[i], M = H[i] - H[i + 1];
        double S = t[i] * H[i] - t[i + 1] * H[i + 1] + (G2[i + 1] - G2[i]) / d;
        mse += S - 2 * c[i] * M + c[i] * c[i] * P;
        cb->c[K + i] = c[i] * sd;
        cb->c[K - 1 - i] = -c[i] * sd;
        cb->p[K + i] = cb->p[K - 1 - i] = P;
    }
    cb->mse = 2.0 * d * mse;
    for (int k = 0; k + 1 < n; k++) cb->t[k] = k + 1 == K ? 0.0 : 0.5 * (cb->c[k] + cb->c[k + 1]);
    for (int k = 0; k < n; k++) cb->cf[k] = (float)cb->c[k];
    for (int k = 0; k + 1 < n; k++) cb->tf[k] = (float)cb->t[k];
    /* int8 version: the outer level maps to ±m; m in 64..127 chosen for the least weighted error */
    double best = INFINITY, cmax = cb->c[n - 1];
    for (int m = 64; m <= 127; m++) {
        double u = cmax / m, e = 0;
        for (int k = 0; k < n; k++) {
            double r = cb->c[k] - u * round(cb->c[k] / u);
            e += cb->p[k] * r * r;
        }
        if (e < best) {
            best = e;
            cb->unit8 = (float)u;
        }
    }
    double e8 = 0;
    for (int k = 0; k < n; k++) {
        long q = lround(cb->c[k] / cb->unit8);
        cb->c8[k] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        double r = cb->c[k] - (double)cb->c8[k] * cb->unit8;
        e8 += cb->p[k] * r * r;
    }
    cb->mse8 = cb->mse + e8;
}

#define N_LOG2 (10 - 4 + 1) /* d = 16 .. 1024 */
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static g4_tq_codebook cb_table[N_LOG2][G4_TQ_MAX_BITS];
static int cb_ready[N_LOG2][G4_TQ_MAX_BITS];

static int ilog2(int d) {
    int l = 0;
    while ((1 << l) < d) l++;
    return l;
}

g4_status g4_tq_codebook_get(int d, int bits, const g4_tq_codebook **out, g4_error *err) {
    *out = NULL;
    if (!is_pow2_dim(d))
        return g4_fail(err, G4_ERR_ARG, "TurboQuant head dim %d is not a power of two in [%d, %d]", d, G4_TQ_MIN_DIM,
                       G4_TQ_MAX_DIM);
    if (bits < 1 || bits > G4_TQ_MAX_BITS)
        return g4_fail(err, G4_ERR_ARG, "TurboQuant codebooks have 1 to 4 bits, not %d", bits);
    int li = ilog2(d) - 4, bi = bits - 1;
    pthread_mutex_lock(&cb_lock);
    if (!cb_ready[li][bi]) {
        solve_codebook(d, bits, &cb_table[li][bi]);
        cb_ready[li][bi] = 1;
    }
    pthread_mutex_unlock(&cb_lock);
    *out = &cb_table[li][bi];
    return G4_OK;
}

/* ---- params --------------------------------------------------------------------------------------- */

g4_status g4_tq_params_init(g4_tq_params *p, g4_tq_type type, int d, uint64_t seed, g4_error *err) {
    if ((unsigned)type >= G4_TQ_N_TYPES) return g4_fail(err, G4_ERR_ARG, "unknown TurboQuant KV type %d", (int)type);
    if (!is_pow2_dim(d))
        return g4_fail(err, G4_ERR_ARG, "TurboQuant needs a power-of-two head dim in [%d, %d], not %d", G4_TQ_MIN_DIM,
                       G4_TQ_MAX_DIM, d);
    memset(p, 0, sizeof *p);
    p->type = type;
    p->scale_mode = G4_TQ_SCALE_NORM;
    p->d = d;
    p->log2d = ilog2(d);
    p->blk = d < 32 ? d : 32;
    p->record_bytes = g4_tq_record_bytes(type, d);
    p->seed = seed;
    p->bits = type == G4_TQ_Q8 ? 8 : type == G4_TQ_TQ4 ? 4 : type == G4_TQ_TQ3 ? 3 : 2;
    if (type != G4_TQ_Q8) {
        g4_status st = g4_tq_codebook_get(d, p->bits, &p->cb, err);
        if (st != G4_OK) return st;
        /* 7-bit codebook of the GQA score kernel: outer level at ±m, m in 32..63, least weighted error */
        const g4_tq_codebook *cb = p->cb;
        double best = INFINITY;
        for (int m = 32; m <= 63; m++) {
            double u = cb->c[cb->n - 1] / m, e = 0;
            for (int k = 0; k < cb->n; k++) {
                double r = cb->c[k] - u * round(cb->c[k] / u);
                e += cb->p[k] * r * r;
            }
            if (e < best) {
                best = e;
                p->unit7 = (float)u;
            }
        }
        for (int k = 0; k < cb->n; k++) {
            long q = lround(cb->c[k] / p->unit7);
            p->c7[k] = (int8_t)(q > 63 ? 63 : q < -63 ? -63 : q);
        }
    }
    g4_tq_signs(seed, d, p->sign);
    float inv = (float)(1.0 / sqrt((double)d));
    for (int i = 0; i < d; i++) p->sign_scaled[i] = p->sign[i] * inv;
    p->kern = g4_tq_kernels_best();
    return G4_OK;
}

/* ---- records -------------------------------------------------------------------------------------- */

static inline float rd_half(const uint8_t *b) {
    uint16_t h;
    memcpy(&h, b, 2);
    return g4_fp16_to_fp32(h);
}

static inline void wr_half(uint8_t *b, float f) {
    if (f > 65504.0f) f = 65504.0f;
    if (f < -65504.0f) f = -65504.0f;
    uint16_t h = g4_fp32_to_fp16(f);
    memcpy(b, &h, 2);
}

static size_t idx_bytes(const g4_tq_params *p) { return p->record_bytes - 2; }

/* indices of a tq record -> idx[d] */
static void unpack_idx(const g4_tq_params *p, const uint8_t *rec, uint8_t *idx) {
    const int d = p->d;
    if (p->type == G4_TQ_TQ4) {
        const int B = p->blk;
        for (int j = 0; j < d; j += B)
            for (int m = 0; m < B / 2; m++) {
                uint8_t b = rec[j / 2 + m];
                idx[j + m] = b & 15;
                idx[j + m + B / 2] = b >> 4;
            }
        return;
    }
    const int G = d < 128 ? d : 128, q = G / 4;
    for (int g = 0; g < d; g += G)
        for (int m = 0; m < q; m++) {
            uint8_t b = rec[g / 4 + m];
            for (int k = 0; k < 4; k++) idx[g + m + k * q] = (b >> (2 * k)) & 3;
        }
    if (p->type == G4_TQ_TQ3) {
        const uint8_t *hi = rec + d / 4;
        for (int i = 0; i < d; i++) idx[i] |= (uint8_t)(((hi[i >> 3] >> (i & 7)) & 1) << 2);
    }
}

static void pack_idx(const g4_tq_params *p, const uint8_t *idx, uint8_t *rec) {
    const int d = p->d;
    if (p->type == G4_TQ_TQ4) {
        const int B = p->blk;
        for (int j = 0; j < d; j += B)
            for (int m = 0; m < B / 2; m++) rec[j / 2 + m] = (uint8_t)(idx[j + m] | idx[j + m + B / 2] << 4);
        return;
    }
    const int G = d < 128 ? d : 128, q = G / 4;
    for (int g = 0; g < d; g += G)
        for (int m = 0; m < q; m++) {
            unsigned b = 0;
            for (int k = 0; k < 4; k++) b |= (unsigned)(idx[g + m + k * q] & 3) << (2 * k);
            rec[g / 4 + m] = (uint8_t)b;
        }
    if (p->type == G4_TQ_TQ3) {
        uint8_t *hi = rec + d / 4;
        memset(hi, 0, (size_t)d / 8);
        for (int i = 0; i < d; i++) hi[i >> 3] |= (uint8_t)(((idx[i] >> 2) & 1) << (i & 7));
    }
}

int g4_tq_record_index(const g4_tq_params *p, const uint8_t *rec, int i) {
    if (p->type == G4_TQ_Q8 || i < 0 || i >= p->d) return 0;
    uint8_t idx[G4_TQ_MAX_DIM];
    unpack_idx(p, rec, idx);
    return idx[i];
}

float g4_tq_record_scale(const g4_tq_params *p, const uint8_t *rec) {
    return rd_half(p->type == G4_TQ_Q8 ? rec : rec + idx_bytes(p));
}

double g4_tq_norm2_ref(const float *y, int d) {
    double s[8] = {0};
    for (int i = 0; i < d; i++) s[i & 7] += (double)y[i] * y[i];
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

float g4_tq_scale_of(const g4_tq_params *p, const float *y, double n2, float zs, const uint8_t *idx) {
    const g4_tq_codebook *cb = p->cb;
    const int d = p->d;
    const double n = sqrt(n2);
    if (p->scale_mode == G4_TQ_SCALE_RAW) return (float)(n / sqrt((double)d));
    if (p->scale_mode == G4_TQ_SCALE_UNBIASED) {
        double cz = 0;
        for (int i = 0; i < d; i++) cz += (double)cb->cf[idx[i]] * (y[i] * zs);
        return cz > 0 ? (float)(n * sqrt((double)d) / cz) : 0.0f;
    }
    int h[4][16] = {{0}}; /* four histograms: shorter store-to-load chains on runs of equal indices */
    for (int i = 0; i < d; i += 4) {
        h[0][idx[i]]++;
        h[1][idx[i + 1]]++;
        h[2][idx[i + 2]]++;
        h[3][idx[i + 3]]++;
    }
    double cc = 0;
    for (int k = 0; k < cb->n; k++) cc += (h[0][k] + h[1][k] + h[2][k] + h[3][k]) * ((double)cb->cf[k] * cb->cf[k]);
    return (float)(n / sqrt(cc));
}

void g4_tq_put_scale(const g4_tq_params *p, uint8_t *rec, float s) { wr_half(rec + idx_bytes(p), s); }

void g4_tq_finish_record(const g4_tq_params *p, const float *y, double n2, float zs, const uint8_t *idx, uint8_t *rec) {
    if (n2 > 0) {
        pack_idx(p, idx, rec);
        wr_half(rec + idx_bytes(p), g4_tq_scale_of(p, y, n2, zs, idx));
    } else {
        uint8_t mid[G4_TQ_MAX_DIM];
        memset(mid, p->cb->n / 2, (size_t)p->d);
        pack_idx(p, mid, rec);
        wr_half(rec + idx_bytes(p), n2 == 0 ? 0.0f : (float)sqrt(n2)); /* NaN stays NaN */
    }
}

static void encode_rotated_scalar(const g4_tq_params *p, const float *y, uint8_t *rec) {
    const int d = p->d;
    if (p->type == G4_TQ_Q8) {
        const int B = p->blk;
        for (int j = 0; j < d; j += B) {
            uint8_t *blk = rec + (size_t)(j / B) * (size_t)(2 + B);
            float amax = 0;
            for (int i = 0; i < B; i++) amax = fmaxf(amax, fabsf(y[j + i]));
            float dl = amax / 127.0f, id = dl != 0 ? 1.0f / dl : 0.0f;
            wr_half(blk, dl);
            for (int i = 0; i < B; i++) { /* round half to even (the SIMD rounding) */
                float r = nearbyintf(y[j + i] * id);
                r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
                blk[2 + i] = (uint8_t)(int8_t)r;
            }
        }
        return;
    }
    const g4_tq_codebook *cb = p->cb;
    const double n2 = g4_tq_norm2_ref(y, d);
    uint8_t idx[G4_TQ_MAX_DIM];
    float zs = 0;
    if (n2 > 0) {
        zs = g4_tq_zscale(d, n2);
        const int half = cb->n / 2;
        for (int i = 0; i < d; i++) {
            float z = y[i] * zs;
            int k = 0; /* branchless binary search: k = #{boundaries < z} */
            for (int step = half; step; step >>= 1) k += (z > cb->tf[k + step - 1]) * step;
            idx[i] = (uint8_t)k;
        }
    }
    g4_tq_finish_record(p, y, n2, zs, idx, rec);
}

void g4_tq_encode_rotated(const g4_tq_params *p, const float *y, uint8_t *rec) { p->kern->encode_rotated(p, y, rec); }

void g4_tq_encode(const g4_tq_params *p, const float *x, uint8_t *rec) {
    float y[G4_TQ_MAX_DIM];
    g4_tq_rotate(p, x, y);
    g4_tq_encode_rotated(p, y, rec);
}

/* ŷ with the float codebook, or (i8 != 0) with c8 · unit8 */
static void decode_rotated_cb(const g4_tq_params *p, const uint8_t *rec, float *y, int i8) {
    const int d = p->d;
    if (p->type == G4_TQ_Q8) {
        const int B = p->blk;
        for (int j = 0; j < d; j += B) {
            const uint8_t *blk = rec + (size_t)(j / B) * (size_t)(2 + B);
            float dl = rd_half(blk);
            for (int i = 0; i < B; i++) y[j + i] = dl * (float)(int8_t)blk[2 + i];
        }
        return;
    }
    uint8_t idx[G4_TQ_MAX_DIM];
    unpack_idx(p, rec, idx);
    float s = rd_half(rec + idx_bytes(p));
    if (i8) {
        float su = s * p->cb->unit8;
        for (int i = 0; i < d; i++) y[i] = su * (float)p->cb->c8[idx[i]];
    } else {
        for (int i = 0; i < d; i++) y[i] = s * p->cb->cf[idx[i]];
    }
}

void g4_tq_decode_rotated(const g4_tq_params *p, const uint8_t *rec, float *y) { decode_rotated_cb(p, rec, y, 0); }

void g4_tq_decode(const g4_tq_params *p, const uint8_t *rec, float *x) {
    decode_rotated_cb(p, rec, x, 0);
    g4_tq_unrotate(p, x, x);
}

/* ---- query and scalar kernels --------------------------------------------------------------------- */

void g4_tq_query_prepare(const g4_tq_params *pk, const float *q, g4_tq_query *out) {
    const int d = pk->d, B = pk->blk;
    out->d = d;
    out->blk = B;
    g4_tq_rotate(pk, q, out->rot);
    for (int j = 0; j < d; j += B) {
        float amax = 0;
        for (int i = 0; i < B; i++) amax = fmaxf(amax, fabsf(out->rot[j + i]));
        float qs = amax / 127.0f, id = qs != 0 ? 1.0f / qs : 0.0f;
        out->qscale[j / B] = qs;
        for (int i = 0; i < B; i++) {
            float r = nearbyintf(out->rot[j + i] * id);
            out->q8[j + i] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
        }
    }
}

static float score_scalar(const g4_tq_params *p, const g4_tq_query *q, const uint8_t *rec) {
    const int d = p->d;
    if (p->type == G4_TQ_Q8) {
        const int B = p->blk;
        float sum = 0;
        for (int j = 0; j < d; j += B) {
            const uint8_t *blk = rec + (size_t)(j / B) * (size_t)(2 + B);
            float bs = 0;
            for (int i = 0; i < B; i++) bs += q->rot[j + i] * (float)(int8_t)blk[2 + i];
            sum += rd_half(blk) * bs;
        }
        return sum;
    }
    uint8_t idx[G4_TQ_MAX_DIM];
    unpack_idx(p, rec, idx);
    const float *cf = p->cb->cf;
    float sum = 0;
    for (int i = 0; i < d; i++) sum += q->rot[i] * cf[idx[i]];
    return rd_half(rec + idx_bytes(p)) * sum;
}

static float score_i8_scalar(const g4_tq_params *p, const g4_tq_query *q, const uint8_t *rec) {
    const int d = p->d, B = p->blk;
    float sum = 0;
    if (p->type == G4_TQ_Q8) {
        for (int j = 0; j < d; j += B) {
            const uint8_t *blk = rec + (size_t)(j / B) * (size_t)(2 + B);
            int32_t is = 0;
            for (int i = 0; i < B; i++) is += (int32_t)q->q8[j + i] * (int8_t)blk[2 + i];
            sum += rd_half(blk) * q->qscale[j / B] * (float)is;
        }
        return sum;
    }
    uint8_t idx[G4_TQ_MAX_DIM];
    unpack_idx(p, rec, idx);
    const int8_t *c8 = p->cb->c8;
    for (int j = 0; j < d; j += B) {
        int32_t is = 0;
        for (int i = 0; i < B; i++) is += (int32_t)q->q8[j + i] * c8[idx[j + i]];
        sum += q->qscale[j / B] * (float)is;
    }
    return rd_half(rec + idx_bytes(p)) * p->cb->unit8 * sum;
}

static void axpy_scalar(const g4_tq_params *p, const uint8_t *rec, float a, float *acc) {
    const int d = p->d;
    if (p->type == G4_TQ_Q8) {
        const int B = p->blk;
        for (int j = 0; j < d; j += B) {
            const uint8_t *blk = rec + (size_t)(j / B) * (size_t)(2 + B);
            float w = a * rd_half(blk);
            for (int i = 0; i < B; i++) acc[j + i] += w * (float)(int8_t)blk[2 + i];
        }
        return;
    }
    uint8_t idx[G4_TQ_MAX_DIM];
    unpack_idx(p, rec, idx);
    const float *cf = p->cb->cf, w = a * rd_half(rec + idx_bytes(p));
    for (int i = 0; i < d; i++) acc[i] += w * cf[idx[i]];
}

/* ---- GQA kernels (scalar references) ---------------------------------------------------------- */

void g4_tq_gqa_query_init(const g4_tq_params *pk, const float *rot, int8_t *q8, g4_tq_gqa_query *out) {
    const int d = pk->d;
    float amax = 0;
    for (int i = 0; i < d; i++) amax = fmaxf(amax, fabsf(rot[i]));
    const float qs = amax / 127.0f, id = qs != 0 ? 1.0f / qs : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < d; i++) {
        float r = nearbyintf(rot[i] * id);
        q8[i] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
        sum += q8[i];
    }
    out->q8 = q8;
    out->qs = qs;
    out->qsum = sum;
}

static void gqa_scores_scalar(const g4_tq_params *p, const g4_tq_gqa_query *q, int G, const uint8_t *rec,
                              size_t stride, int n, float *sc, int sc_stride) {
    const int d = p->d, B = p->blk;
    for (int j = 0; j < n; j++) {
        const uint8_t *r = rec + (size_t)j * stride;
        if (p->type == G4_TQ_Q8) {
            for (int h = 0; h < G; h++) {
                float sum = 0;
                for (int b = 0; b < d; b += B) {
                    const uint8_t *blk = r + (size_t)(b / B) * (size_t)(2 + B);
                    int32_t is = 0;
                    for (int i = 0; i < B; i++) is += (int32_t)q[h].q8[b + i] * (int8_t)blk[2 + i];
                    sum += (float)is * (rd_half(blk) * q[h].qs);
                }
                sc[(size_t)h * sc_stride + j] = sum;
            }
            continue;
        }
        uint8_t idx[G4_TQ_MAX_DIM];
        unpack_idx(p, r, idx);
        const float su = rd_half(r + idx_bytes(p)) * p->unit7;
        for (int h = 0; h < G; h++) {
            int32_t is = 0;
            for (int i = 0; i < d; i++) is += (int32_t)q[h].q8[i] * (p->c7[idx[i]] + 64);
            sc[(size_t)h * sc_stride + j] = (float)(is - 64 * q[h].qsum) * (q[h].qs * su);
        }
    }
}

static void gqa_values_scalar(const g4_tq_params *p, const uint8_t *rec, size_t stride, int n, const float *w,
                              int w_stride, int G, float *acc, int acc_stride) {
    const int d = p->d, B = p->blk;
    float y[G4_TQ_MAX_DIM];
    for (int j = 0; j < n; j++) {
        const uint8_t *r = rec + (size_t)j * stride;
        float s = 1.0f;
        if (p->type == G4_TQ_Q8) {
            for (int b = 0; b < d; b += B) {
                const uint8_t *blk = r + (size_t)(b / B) * (size_t)(2 + B);
                const float dl = rd_half(blk);
                for (int i = 0; i < B; i++) y[b + i] = dl * (float)(int8_t)blk[2 + i];
            }
        } else { /* the 8-bit codebook (c8 · unit8): one pshufb per 32 values in SIMD */
            uint8_t idx[G4_TQ_MAX_DIM];
            unpack_idx(p, r, idx);
            for (int i = 0; i < d; i++) y[i] = (float)p->cb->c8[idx[i]];
            s = rd_half(r + idx_bytes(p)) * p->cb->unit8;
        }
        for (int h = 0; h < G; h++) {
            const float ws = w[(size_t)h * w_stride + j] * s;
            float *a = acc + (size_t)h * acc_stride;
            for (int i = 0; i < d; i++) a[i] = fmaf(ws, y[i], a[i]);
        }
    }
}

static float exp_sum_scalar(float *x, int n, float m) {
    float sum = 0;
    for (int j = 0; j < n; j++) sum += (x[j] = expf(x[j] - m));
    return sum;
}

static const g4_tq_kernels kernels_scalar = {
    .isa = "scalar",
    .score = score_scalar,
    .score_i8 = score_i8_scalar,
    .axpy = axpy_scalar,
    .rotate = rotate_scalar,
    .unrotate = unrotate_scalar,
    .encode_rotated = encode_rotated_scalar,
    .gqa_scores = gqa_scores_scalar,
    .gqa_values = gqa_values_scalar,
    .exp_sum = exp_sum_scalar,
};

const g4_tq_kernels *g4_tq_kernels_scalar(void) { return &kernels_scalar; }

const g4_tq_kernels *g4_tq_kernels_best(void) {
    const g4_tq_kernels *k = NULL;
    if (strcmp(g4_types_isa(), "scalar") != 0) k = g4_tq_kernels_avx2(); /* avx2 or avx512 weight kernels */
    return k ? k : &kernels_scalar;
}

/* ---- attention ------------------------------------------------------------------------------------ */

void g4_tq_attn_init(g4_tq_attn *st, int d) {
    st->d = d;
    st->m = -INFINITY;
    st->l = 0;
    memset(st->acc, 0, (size_t)d * sizeof st->acc[0]);
}

static void attn_rescale(g4_tq_attn *st, float r) {
    st->l *= r;
    for (int i = 0; i < st->d; i++) st->acc[i] *= r;
}

#define TILE 32

void g4_tq_attn_add(const g4_tq_params *pk, const g4_tq_params *pv, const g4_tq_query *q, int flags, const uint8_t *k,
                    size_t k_stride, const uint8_t *v, size_t v_stride, int n, g4_tq_attn *st) {
    float (*score)(const g4_tq_params *, const g4_tq_query *, const uint8_t *) =
        (flags & G4_TQ_ATTN_I8) ? pk->kern->score_i8 : pk->kern->score;
    void (*axpy)(const g4_tq_params *, const uint8_t *, float, float *) = pv->kern->axpy;
    float sc[TILE];
    for (int t0 = 0; t0 < n; t0 += TILE) {
        const int nt = n - t0 < TILE ? n - t0 : TILE;
        float mt = -INFINITY;
        for (int j = 0; j < nt; j++) {
            sc[j] = score(pk, q, k + (size_t)(t0 + j) * k_stride);
            if (sc[j] > mt) mt = sc[j];
        }
        if (mt > st->m) {
            if (st->m != -INFINITY) attn_rescale(st, expf(st->m - mt));
            st->m = mt;
        }
        if (st->m == -INFINITY) continue; /* every score so far is -inf (or NaN) */
        for (int j = 0; j < nt; j++) {
            float w = expf(sc[j] - st->m);
            if (w == 0) continue;
            st->l += w;
            axpy(pv, v + (size_t)(t0 + j) * v_stride, w, st->acc);
        }
    }
}

void g4_tq_attn_merge(g4_tq_attn *dst, const g4_tq_attn *src) {
    if (src->m == -INFINITY) return;
    if (dst->m == -INFINITY) {
        dst->m = src->m;
        dst->l = src->l;
        memcpy(dst->acc, src->acc, (size_t)dst->d * sizeof dst->acc[0]);
        return;
    }
    float m = fmaxf(dst->m, src->m), r1 = expf(dst->m - m), r2 = expf(src->m - m);
    dst->l = dst->l * r1 + src->l * r2;
    for (int i = 0; i < dst->d; i++) dst->acc[i] = dst->acc[i] * r1 + src->acc[i] * r2;
    dst->m = m;
}

void g4_tq_attn_finish(const g4_tq_params *pv, g4_tq_attn *st, float *out) {
    const int d = pv->d;
    if (st->m == -INFINITY || !(st->l > 0)) {
        memset(out, 0, (size_t)d * sizeof *out);
        return;
    }
    pv->kern->unrotate(pv, st->acc, out);
    const float il = 1.0f / st->l;
    for (int i = 0; i < d; i++) out[i] *= il;
}

static g4_status check_attn_args(const g4_tq_params *pk, const g4_tq_params *pv, int n, g4_error *err) {
    if (pk->d != pv->d)
        return g4_fail(err, G4_ERR_ARG, "TurboQuant attention: K head dim %d != V head dim %d", pk->d, pv->d);
    if (n < 0) return g4_fail(err, G4_ERR_ARG, "TurboQuant attention: %d keys", n);
    return G4_OK;
}

g4_status g4_tq_attend(const g4_tq_params *pk, const g4_tq_params *pv, const float *q, const uint8_t *k,
                       size_t k_stride, const uint8_t *v, size_t v_stride, int n, int flags, float *out,
                       g4_error *err) {
    g4_status s = check_attn_args(pk, pv, n, err);
    if (s != G4_OK) return s;
    g4_tq_query qq;
    g4_tq_attn st;
    g4_tq_query_prepare(pk, q, &qq);
    g4_tq_attn_init(&st, pk->d);
    g4_tq_attn_add(pk, pv, &qq, flags, k, k_stride, v, v_stride, n, &st);
    g4_tq_attn_finish(pv, &st, out);
    return G4_OK;
}

g4_status g4_tq_attend_ref(const g4_tq_params *pk, const g4_tq_params *pv, const float *q, const uint8_t *k,
                           size_t k_stride, const uint8_t *v, size_t v_stride, int n, int flags, float *out,
                           g4_error *err) {
    g4_status s = check_attn_args(pk, pv, n, err);
    if (s != G4_OK) return s;
    const int d = pk->d, i8 = (flags & G4_TQ_ATTN_I8) != 0;
    if (n == 0) {
        memset(out, 0, (size_t)d * sizeof *out);
        return G4_OK;
    }
    double *sc = malloc((size_t)n * sizeof *sc);
    if (!sc) return g4_fail(err, G4_ERR_NOMEM, "out of memory for %d attention scores", n);
    float qe[G4_TQ_MAX_DIM], x[G4_TQ_MAX_DIM];
    if (i8) { /* the int8 query, back in the original domain */
        g4_tq_query qq;
        g4_tq_query_prepare(pk, q, &qq);
        for (int i = 0; i < d; i++) qe[i] = qq.qscale[i / qq.blk] * (float)qq.q8[i];
        g4_tq_unrotate(pk, qe, qe);
    } else {
        memcpy(qe, q, (size_t)d * sizeof *qe);
    }
    double mx = -INFINITY;
    for (int t = 0; t < n; t++) {
        decode_rotated_cb(pk, k + (size_t)t * k_stride, x, i8);
        g4_tq_unrotate(pk, x, x);
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)qe[i] * x[i];
        sc[t] = dot;
        if (dot > mx) mx = dot;
    }
    double acc[G4_TQ_MAX_DIM] = {0}, sum = 0;
    for (int t = 0; t < n; t++) {
        double w = exp(sc[t] - mx);
        sum += w;
        g4_tq_decode(pv, v + (size_t)t * v_stride, x);
        for (int i = 0; i < d; i++) acc[i] += w * x[i];
    }
    for (int i = 0; i < d; i++) out[i] = (float)(acc[i] / sum);
    free(sc);
    return G4_OK;
}
