/* Weight-type traits (src/quant): names and sizes, bit-exact dequantization against an independent
 * element-by-element reference and against ggml's own output (the oracle's dequant vectors), exact
 * dots, fast (quantized-activation) dots, and quantizer round trips.
 *
 * The reference dequantizer here reads the raw bytes at the offsets of ggml's block layouts (it does
 * not use blocks.h) and computes each value with ggml's float operation order. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "gguf/gguf.h"
#include "quant/types.h"
#include "util/util.h"

#include "t.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* every type with traits, in test order */
static const int all_types[] = {
    G4_TYPE_F32,  G4_TYPE_F16,  G4_TYPE_BF16, G4_TYPE_Q4_0, G4_TYPE_Q4_1, G4_TYPE_Q5_0, G4_TYPE_Q5_1, G4_TYPE_Q8_0,
    G4_TYPE_Q8_1, G4_TYPE_Q2_K, G4_TYPE_Q3_K, G4_TYPE_Q4_K, G4_TYPE_Q5_K, G4_TYPE_Q6_K, G4_TYPE_Q8_K,
};
#define N_TYPES ((int)(sizeof all_types / sizeof all_types[0]))
#define U (1.0 / 16777216.0) /* unit roundoff of float, 2^-24 */

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- independent reference decoding ------------------------------------------------------------ */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* IEEE half -> float by arithmetic (not the library's bit manipulation); NaNs keep their payload */
static float half(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    if (e == 31) return u2f((uint32_t)s << 31 | 0x7f800000u | (uint32_t)m << 13);
    const double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static float rdhalf(const uint8_t *p) { return half(rd16(p)); }

/* Element j of the block at p, as ggml's dequantize_row_* computes it. */
static float ref_value(int type, const uint8_t *p, int j) {
    switch (type) {
    case G4_TYPE_F32: return u2f(rd32(p));
    case G4_TYPE_F16: return half(rd16(p));
    case G4_TYPE_BF16: return u2f((uint32_t)rd16(p) << 16);
    case G4_TYPE_Q4_0: { /* d | qs[16]: element j < 16 low nibble of byte j, else high nibble of j-16 */
        const int q = j < 16 ? p[2 + j] & 15 : p[2 + j - 16] >> 4;
        return (float)(q - 8) * rdhalf(p);
    }
    case G4_TYPE_Q4_1: { /* d | m | qs[16] */
        const int q = j < 16 ? p[4 + j] & 15 : p[4 + j - 16] >> 4;
        return (float)q * rdhalf(p) + rdhalf(p + 2);
    }
    case G4_TYPE_Q5_0: { /* d | qh (u32, bit j = 5th bit of element j) | qs[16] */
        const int lo = j < 16 ? p[6 + j] & 15 : p[6 + j - 16] >> 4;
        const int q = lo | (int)((rd32(p + 2) >> j) & 1) << 4;
        return (float)(q - 16) * rdhalf(p);
    }
    case G4_TYPE_Q5_1: { /* d | m | qh | qs[16] */
        const int lo = j < 16 ? p[8 + j] & 15 : p[8 + j - 16] >> 4;
        const int q = lo | (int)((rd32(p + 4) >> j) & 1) << 4;
        return (float)q * rdhalf(p) + rdhalf(p + 2);
    }
    case G4_TYPE_Q8_0: return (float)(int8_t)p[2 + j] * rdhalf(p);
    case G4_TYPE_Q8_1: return (float)(int8_t)p[4 + j] * rdhalf(p);
    case G4_TYPE_Q2_K: { /* scales[16] | qs[64] | d | dmin */
        const int h = j / 128, g = (j % 128) / 32, l = j % 32, sc = p[j / 16];
        const int q = (p[16 + 32 * h + l] >> (2 * g)) & 3;
        const float dl = rdhalf(p + 80) * (float)(sc & 15), ml = rdhalf(p + 82) * (float)(sc >> 4);
        return dl * (float)q - ml;
    }
    case G4_TYPE_Q3_K: { /* hmask[32] | qs[64] | scales[12] | d */
        const int h = j / 128, g = (j % 128) / 32, l = j % 32, s = j / 16;
        const uint8_t *sc = p + 96;
        const int lo = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4, hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        const int scale = (lo | hi << 4) - 32;
        const int q = ((p[32 + 32 * h + l] >> (2 * g)) & 3) - (((p[l] >> (j / 32)) & 1) ? 0 : 4);
        return (rdhalf(p + 108) * (float)scale) * (float)q;
    }
    case G4_TYPE_Q4_K:
    case G4_TYPE_Q5_K: { /* d | dmin | scales[12] | (Q5_K: qh[32]) | qs[128] */
        const int s = j / 32, c = j / 64, l = j % 32;
        const uint8_t *sc = p + 4;
        int scale, min;
        if (s < 4) {
            scale = sc[s] & 63;
            min = sc[s + 4] & 63;
        } else {
            scale = (sc[s + 4] & 15) | (sc[s - 4] >> 6) << 4;
            min = (sc[s + 4] >> 4) | (sc[s] >> 6) << 4;
        }
        const uint8_t *qs = p + (type == G4_TYPE_Q4_K ? 16 : 48);
        int q = (j % 64) < 32 ? qs[32 * c + l] & 15 : qs[32 * c + l] >> 4;
        if (type == G4_TYPE_Q5_K) q += ((p[16 + l] >> s) & 1) * 16;
        const float d1 = rdhalf(p) * (float)scale, m1 = rdhalf(p + 2) * (float)min;
        return d1 * (float)q - m1;
    }
    case G4_TYPE_Q6_K: { /* ql[128] | qh[64] | scales[16] (int8) | d */
        const int h = j / 128, g = (j % 128) / 32, l = j % 32;
        const int lo = (p[64 * h + l + 32 * (g & 1)] >> (g < 2 ? 0 : 4)) & 15;
        const int hi = (p[128 + 32 * h + l] >> (2 * g)) & 3;
        const int q = (lo | hi << 4) - 32;
        return rdhalf(p + 208) * (float)(int8_t)p[192 + j / 16] * (float)q;
    }
    case G4_TYPE_Q8_K: /* d (float) | qs[256] | bsums[16] */
        return u2f(rd32(p)) * (float)(int8_t)p[4 + j];
    }
    return NAN;
}

/* ---- random blocks -------------------------------------------------------------------------------- */

/* byte offsets of the fp16 scale fields of each block type (-1 terminated) */
static const int *half_fields(int type) {
    static const int none[] = {-1}, at0[] = {0, -1}, at01[] = {0, 2, -1}, q2k[] = {80, 82, -1}, q3k[] = {108, -1},
                     q6k[] = {208, -1};
    switch (type) {
    case G4_TYPE_Q4_0: case G4_TYPE_Q5_0: case G4_TYPE_Q8_0: return at0;
    case G4_TYPE_Q4_1: case G4_TYPE_Q5_1: case G4_TYPE_Q8_1: case G4_TYPE_Q4_K: case G4_TYPE_Q5_K: return at01;
    case G4_TYPE_Q2_K: return q2k;
    case G4_TYPE_Q3_K: return q3k;
    case G4_TYPE_Q6_K: return q6k;
    }
    return none;
}

/* a sane fp16 scale: either sign, magnitude 2^-10 .. 2^5 */
static uint16_t sane_half(void) {
    const uint64_t r = t_rand64();
    return (uint16_t)((r & 1) << 15 | (5 + (r >> 1) % 16) << 10 | (r >> 8) % 1024);
}

/* extreme fp16 values: huge, inf, tiny, subnormal, zero, negative, NaN */
static uint16_t extreme_half(int allow_nan) {
    static const uint16_t v[] = {0x7bff, 0xfbff, 0x7800, 0x7c00, 0xfc00, 0x0001, 0x8001, 0x03ff, 0x83ff, 0x0400,
                                 0x8400, 0x0000, 0x8000, 0x0200, 0x0010, 0x3c00, 0xbc00};
    const uint64_t r = t_rand64();
    switch (r % 4) {
    case 0: return v[(r >> 8) % (sizeof v / sizeof v[0])];
    case 1: return (uint16_t)((r >> 8) & 0x83ff); /* random subnormal */
    case 2:
        if (allow_nan) return (uint16_t)(0x7c01 | ((r >> 8) & 0x83ff)); /* NaN, signalling or quiet */
        return sane_half();
    default: return (uint16_t)((r >> 8) & 0xfbff); /* any finite value (exponent never all ones) */
    }
}

/* Fill nb random blocks. mode 0: sane scales; 1: extreme scales. At most one NaN field per block so
 * that no float operation ever sees two NaN operands (whose payload choice is up to the compiler). */
static void random_blocks(int type, uint8_t *buf, int nb, int mode) {
    const size_t ts = g4_type_size(type);
    for (size_t i = 0; i < ts * (size_t)nb; i++) buf[i] = (uint8_t)(t_rand64() >> 32);
    for (int b = 0; b < nb; b++) {
        uint8_t *p = buf + ts * (size_t)b;
        if (type == G4_TYPE_Q8_K) {
            float d;
            if (mode == 0) {
                d = (float)ldexp(t_randf(), -(int)(t_rand64() % 12));
            } else {
                static const float v[] = {FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f, -1e-45f,
                                          3e-39f,  0.0f,     -0.0f,   1e30f,  INFINITY};
                d = v[t_rand64() % (sizeof v / sizeof v[0])];
            }
            memcpy(p, &d, 4);
            continue;
        }
        if (type == G4_TYPE_F32 || type == G4_TYPE_F16 || type == G4_TYPE_BF16) continue; /* all bit patterns */
        int nan_used = 0;
        for (const int *f = half_fields(type); *f >= 0; f++) {
            uint16_t h = mode == 0 ? sane_half() : extreme_half(!nan_used && f == half_fields(type));
            if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) nan_used = 1;
            if (nan_used && f != half_fields(type) && (h & 0x7c00) == 0x7c00) h = sane_half(); /* no inf with NaN */
            p[*f] = (uint8_t)h;
            p[*f + 1] = (uint8_t)(h >> 8);
        }
    }
}

/* ---- 0. names, sizes, table consistency ---------------------------------------------------------- */

static void test_names(void) {
    CHECK(g4_type_name(G4_TYPE_Q4_K) && !strcmp(g4_type_name(G4_TYPE_Q4_K), "Q4_K"), "Q4_K name");
    CHECK(g4_type_name(G4_TYPE_BF16) && !strcmp(g4_type_name(G4_TYPE_BF16), "BF16"), "BF16 name");
    CHECK(g4_type_name(16) && !strcmp(g4_type_name(16), "IQ2_XXS"), "IQ2_XXS name");
    CHECK(g4_type_name(23) && !strcmp(g4_type_name(23), "IQ4_XS"), "IQ4_XS name");
    CHECK(g4_type_name(39) && !strcmp(g4_type_name(39), "MXFP4"), "MXFP4 name");
    CHECK(g4_type_name(-1) == NULL && g4_type_name(1000) == NULL && g4_type_name(G4_TYPE_COUNT + 20) == NULL,
          "unknown ids have no name");
    CHECK(g4_type_from_name("q4_k") == G4_TYPE_Q4_K && g4_type_from_name("Q4_K") == G4_TYPE_Q4_K &&
              g4_type_from_name("bf16") == G4_TYPE_BF16 && g4_type_from_name("F32") == G4_TYPE_F32 &&
              g4_type_from_name("iq2_xxs") == 16 && g4_type_from_name("Q8_0") == G4_TYPE_Q8_0,
          "from_name");
    CHECK(g4_type_from_name("q4") == -1 && g4_type_from_name("q4_k_m") == -1 && g4_type_from_name("") == -1 &&
              g4_type_from_name(NULL) == -1,
          "from_name rejects unknown names");
    int named = 0, roundtrip = 0;
    for (int t = 0; t < 64; t++) {
        const char *nm = g4_type_name(t);
        if (!nm) continue;
        named++;
        roundtrip += g4_type_from_name(nm) == t;
    }
    CHECK(named == roundtrip && named >= 40, "%d names, %d parse back", named, roundtrip);

    static const struct { int type, blck; size_t size; } sizes[] = {
        {G4_TYPE_F32, 1, 4},     {G4_TYPE_F16, 1, 2},     {G4_TYPE_BF16, 1, 2},    {G4_TYPE_Q4_0, 32, 18},
        {G4_TYPE_Q4_1, 32, 20},  {G4_TYPE_Q5_0, 32, 22},  {G4_TYPE_Q5_1, 32, 24},  {G4_TYPE_Q8_0, 32, 34},
        {G4_TYPE_Q8_1, 32, 36},  {G4_TYPE_Q2_K, 256, 84}, {G4_TYPE_Q3_K, 256, 110}, {G4_TYPE_Q4_K, 256, 144},
        {G4_TYPE_Q5_K, 256, 176}, {G4_TYPE_Q6_K, 256, 210}, {G4_TYPE_Q8_K, 256, 292}, {16, 256, 66},
        {20, 32, 18},            {23, 256, 136},          {G4_TYPE_I32, 1, 4},     {39, 32, 17},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int t = sizes[i].type;
        CHECK(g4_type_blck(t) == sizes[i].blck && g4_type_size(t) == sizes[i].size, "%s: blck %d size %zu",
              g4_type_name(t), g4_type_blck(t), g4_type_size(t));
        CHECK(g4_type_row_bytes(t, 3 * sizes[i].blck) == 3 * sizes[i].size, "%s row bytes", g4_type_name(t));
        const g4_type_traits *tr = g4_type_traits_get(t);
        if (tr) CHECK(tr->blck == sizes[i].blck && tr->type_size == sizes[i].size, "%s traits size", tr->name);
    }
    CHECK(g4_type_row_bytes(G4_TYPE_Q4_K, 512) == 288 && g4_type_row_bytes(G4_TYPE_Q4_K, 100) == 0 &&
              g4_type_row_bytes(G4_TYPE_Q4_0, -32) == 0 && g4_type_row_bytes(4, 32) == 0 &&
              g4_type_row_bytes(1000, 32) == 0 && g4_type_row_bytes(G4_TYPE_F32, INT64_MAX) == 0,
          "row_bytes rejects bad input");
    CHECK(g4_type_traits_get(16) == NULL && g4_type_traits_get(G4_TYPE_I32) == NULL && g4_type_traits_get(-1) == NULL &&
              g4_type_traits_get(G4_TYPE_COUNT) == NULL && g4_type_traits_get(4) == NULL,
          "no traits for types g4 cannot read");

    g4_types_init();
    g4_types_init(); /* idempotent */
    for (int i = 0; i < N_TYPES; i++) {
        const int t = all_types[i];
        const g4_type_traits *tr = g4_type_traits_get(t);
        CHECK(tr != NULL, "traits for %s", g4_type_name(t));
        if (!tr) continue;
        CHECK(!strcmp(tr->name, g4_type_name(t)) && tr->to_float && tr->from_float, "%s traits", tr->name);
        CHECK(tr->is_quantized == (t != G4_TYPE_F32 && t != G4_TYPE_F16 && t != G4_TYPE_BF16), "%s is_quantized",
              tr->name);
        const int weight = t != G4_TYPE_Q8_1 && t != G4_TYPE_Q8_K;
        CHECK(weight ? tr->dot_f32 && tr->dot_q : !tr->dot_f32 && !tr->dot_q, "%s dots", tr->name);
        if (tr->dot_q) {
            const g4_type_traits *vt = g4_type_traits_get(tr->vec_dot_type);
            CHECK(vt && vt->from_float && vt->blck == tr->blck, "%s vec_dot_type %d", tr->name, tr->vec_dot_type);
        }
    }
}

/* ---- 1. dequantization vs the reference ----------------------------------------------------------- */

static void test_dequant_random(void) {
    for (int i = 0; i < N_TYPES; i++) {
        const int t = all_types[i];
        const g4_type_traits *tr = g4_type_traits_get(t);
        if (!tr) continue;
        const int nb = tr->blck == 1 ? 20000 : 400;
        const size_t ts = tr->type_size;
        uint8_t *buf = malloc(ts * (size_t)nb);
        float *out = malloc(sizeof(float) * (size_t)nb * (size_t)tr->blck);
        for (int mode = 0; mode < 2; mode++) {
            random_blocks(t, buf, nb, mode);
            tr->to_float(buf, out, (int64_t)nb * tr->blck);
            long bad = 0;
            for (int b = 0; b < nb; b++)
                for (int j = 0; j < tr->blck; j++) {
                    const float r = ref_value(t, buf + ts * (size_t)b, j);
                    const float v = out[(size_t)b * (size_t)tr->blck + (size_t)j];
                    if (f2u(r) != f2u(v) && bad++ < 3)
                        fprintf(stderr, "  %s block %d elem %d: got %08x (%g), want %08x (%g)\n", tr->name, b, j,
                                f2u(v), v, f2u(r), r);
                }
            CHECK(bad == 0, "%s (%s scales): %ld values differ from the reference", tr->name,
                  mode ? "extreme" : "sane", bad);
        }
        free(buf);
        free(out);
    }
}

/* ---- 2. dot_f32 vs float64 sum of dequantized * x -------------------------------------------------- */

static void test_dot_f32(void) {
    static const int nblocks[] = {1, 3, 7, 33};
    for (int i = 0; i < N_TYPES; i++) {
        const int t = all_types[i];
        const g4_type_traits *tr = g4_type_traits_get(t);
        if (!tr || !tr->dot_f32) continue;
        for (int k = 0; k < 4 + (tr->blck == 1); k++) {
            /* float types: 1, 3, 7, 33 values and 33 chunks + 5 */
            const int64_t n = tr->blck == 1 ? (k < 4 ? nblocks[k] : 33 * 32 + 5) : (int64_t)nblocks[k] * tr->blck;
            const int64_t nb = n / tr->blck;
            uint8_t *w = malloc(g4_type_row_bytes(t, n));
            float *x = malloc(sizeof(float) * (size_t)n), *wf = malloc(sizeof(float) * (size_t)n);
            if (tr->blck == 1) { /* random finite values of moderate size */
                float *tmp = malloc(sizeof(float) * (size_t)n);
                for (int64_t j = 0; j < n; j++) tmp[j] = t_randf() * 4.0f;
                tr->from_float(tmp, w, n);
                free(tmp);
            } else {
                random_blocks(t, w, (int)nb, 0);
            }
            for (int64_t j = 0; j < n; j++) x[j] = t_randf();
            tr->to_float(w, wf, n);
            double exact = 0, mag = 0;
            for (int64_t j = 0; j < n; j++) {
                exact += (double)wf[j] * x[j];
                mag += fabs((double)wf[j] * x[j]);
            }
            const float got = tr->dot_f32(w, x, n);
            /* block (or 32-chunk) sums then a sum of block sums: at most blck + nblocks + 1 roundings on
             * any term, each bounded by u * sum |w x| */
            const int chunk = tr->blck == 1 ? 32 : tr->blck;
            const double tol = (double)(chunk + n / chunk + 2) * U * mag + 1e-37;
            CHECK(fabs(got - exact) <= tol, "%s dot_f32 n=%lld: %.9g vs %.9g (err %.3g, tol %.3g)", tr->name,
                  (long long)n, got, exact, fabs(got - exact), tol);
            free(w);
            free(x);
            free(wf);
        }
    }
}

/* ---- 3. dot_q vs dot_f32 --------------------------------------------------------------------------- */

/* Tolerances. With xq = the activation row encoded in vec_dot_type and x' = to_float(xq):
 *  (a) |dot_q - sum w*x'| <= rounding only: integer sums inside a block are exact, then a handful of
 *      float operations per block and one running float sum over nb blocks (32-value chunks for the
 *      float types): 4 (nb + 16) u sum |w| (|x| + |x'|); plus, for Q8_1 activations, the fp16
 *      rounding of s = d * sum(q) that Q4_1 / Q5_1 use (2^-11 |m| |s| per block);
 *  (b) |dot_q - dot_f32(w, x)| <= sum |w| |x - x'| (what activation quantization explains) + the
 *      rounding terms of (a) and of dot_f32. */
static void test_dot_q(void) {
    static const int nblocks[] = {1, 3, 7, 33};
    for (int i = 0; i < N_TYPES; i++) {
        const int t = all_types[i];
        const g4_type_traits *tr = g4_type_traits_get(t);
        if (!tr || !tr->dot_q) continue;
        const g4_type_traits *vt = g4_type_traits_get(tr->vec_dot_type);
        if (!vt) continue;
        for (int k = 0; k < 4; k++) {
            const int64_t n = (int64_t)nblocks[k] * (tr->blck == 1 ? 32 : tr->blck) + (tr->blck == 1 ? 3 : 0);
            const int64_t nb = n / tr->blck;
            uint8_t *w = malloc(g4_type_row_bytes(t, n)), *xq = malloc(g4_type_row_bytes(tr->vec_dot_type, n));
            float *x = malloc(sizeof(float) * (size_t)n), *xd = malloc(sizeof(float) * (size_t)n),
                  *wf = malloc(sizeof(float) * (size_t)n);
            if (tr->blck == 1) {
                for (int64_t j = 0; j < n; j++) x[j] = t_randf() * 4.0f;
                tr->from_float(x, w, n);
            } else {
                random_blocks(t, w, (int)nb, 0);
            }
            /* activations: roughly normal, a few outliers */
            for (int64_t j = 0; j < n; j++) {
                x[j] = (t_randf() + t_randf() + t_randf()) * 0.5f;
                if (t_rand64() % 64 == 0) x[j] *= 8;
            }
            tr->to_float(w, wf, n);
            vt->from_float(x, xq, n);
            vt->to_float(xq, xd, n);
            double exact_q = 0, mag = 0, act_err = 0, s_err = 0;
            for (int64_t j = 0; j < n; j++) {
                exact_q += (double)wf[j] * xd[j];
                mag += fabs((double)wf[j]) * (fabs((double)xd[j]) + fabs((double)x[j]));
                act_err += fabs((double)wf[j]) * fabs((double)x[j] - xd[j]);
            }
            if (tr->vec_dot_type == G4_TYPE_Q8_1) /* |m| * |s| * 2^-11 per block (+ subnormal spacing) */
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *wb = w + (size_t)b * tr->type_size, *xb = xq + (size_t)b * vt->type_size;
                    s_err += fabs(rdhalf(wb + 2)) * (fabs(rdhalf(xb + 2)) * ldexp(1, -11) + ldexp(1, -25));
                }
            const int blk = tr->blck == 1 ? 32 : tr->blck;
            const double round = 4.0 * (double)(n / blk + 16) * U * mag + 1e-30;
            const float got = tr->dot_q(w, xq, n), ref = tr->dot_f32(w, x, n);
            if (getenv("G4_TEST_VERBOSE"))
                printf("  %s n=%lld: |dot_q - exact on x'| %.3g (tol %.3g), |dot_q - dot_f32| %.3g (tol %.3g)\n",
                       tr->name, (long long)n, fabs(got - exact_q), round + s_err, fabs(got - ref),
                       act_err + round + s_err);
            CHECK(fabs(got - exact_q) <= round + s_err, "%s dot_q n=%lld vs exact on quantized x: %.9g vs %.9g "
                  "(err %.3g, tol %.3g)", tr->name, (long long)n, got, exact_q, fabs(got - exact_q), round + s_err);
            CHECK(fabs(got - ref) <= act_err + round + s_err, "%s dot_q n=%lld vs dot_f32: %.9g vs %.9g (err %.3g, "
                  "activation error %.3g)", tr->name, (long long)n, got, ref, fabs(got - ref), act_err);
            free(w);
            free(xq);
            free(x);
            free(xd);
            free(wf);
        }
    }
}

/* ---- 4. quantizer round trips ---------------------------------------------------------------------- */

static float gauss(void) { /* approximately N(0, 1) */
    float s = 0;
    for (int k = 0; k < 12; k++) s += t_randf();
    return s * 0.5f;
}

static void test_round_trip(void) {
    /* rel_rmse: bound on rms(x - x') / rms(x) for N(0,1) data with 1/128 outliers (x8), 1.2x the
     * values measured when this test was written (printed below; F16 / BF16 sit near 2^-12 / 2^-9,
     * half an ulp). ggml_err: ggml's thresholds, see below. */
    static const struct { int type; double rel_rmse, ggml_err; } bounds[] = {
        {G4_TYPE_F32, 0, 0},          {G4_TYPE_F16, 2.7e-4, 0.002}, {G4_TYPE_BF16, 2e-3, 0.002},
        {G4_TYPE_Q8_0, 0.0095, 0.002}, {G4_TYPE_Q8_1, 0.0095, 0.002}, {G4_TYPE_Q8_K, 0.021, 0.002},
        {G4_TYPE_Q6_K, 0.030, 0.002},  {G4_TYPE_Q5_0, 0.077, 0.002},  {G4_TYPE_Q5_1, 0.054, 0.002},
        {G4_TYPE_Q5_K, 0.053, 0.002},  {G4_TYPE_Q4_0, 0.153, 0.002},  {G4_TYPE_Q4_1, 0.114, 0.002},
        {G4_TYPE_Q4_K, 0.105, 0.002},  {G4_TYPE_Q3_K, 0.223, 0.0040}, {G4_TYPE_Q2_K, 0.384, 0.0075},
    };
    const int64_t n = 64 * 256;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    uint8_t *q = malloc(g4_type_row_bytes(G4_TYPE_F32, n));
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const int t = bounds[i].type;
        const g4_type_traits *tr = g4_type_traits_get(t);
        if (!tr || !tr->from_float) continue;
        double e2 = 0, x2 = 0;
        int finite = 1;
        for (int rep = 0; rep < 2; rep++) {
            const float scale = rep == 0 ? 0.02f : 3.0f; /* weight-like and activation-like magnitudes */
            for (int64_t j = 0; j < n; j++) {
                x[j] = gauss() * scale;
                if (t_rand64() % 128 == 0) x[j] *= 8;
            }
            tr->from_float(x, q, n);
            tr->to_float(q, y, n);
            for (int64_t j = 0; j < n; j++) {
                finite &= isfinite(y[j]) != 0;
                e2 += ((double)x[j] - y[j]) * ((double)x[j] - y[j]) / (scale * scale);
                x2 += (double)x[j] * x[j] / (scale * scale);
            }
        }
        const double rel = sqrt(e2 / x2);
        printf("  round trip %-5s rel rmse %.5f (bound %.5f)\n", tr->name, rel, bounds[i].rel_rmse);
        CHECK(finite && rel <= bounds[i].rel_rmse, "%s round trip rel rmse %.5f > %.5f", tr->name, rel,
              bounds[i].rel_rmse);

        /* ggml's own yardstick (tests/test-quantize-fns.cpp): data 0.1 + 2 cos(i), 4096 values,
         * sqrt(sum (x - x')^2) / n below 0.002 (3-bit: 0.004, 2-bit: 0.0075) */
        for (int64_t j = 0; j < 4096; j++) x[j] = 0.1f + 2 * cosf((float)j);
        tr->from_float(x, q, 4096);
        tr->to_float(q, y, 4096);
        double se = 0;
        for (int64_t j = 0; j < 4096; j++) se += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        CHECK(sqrt(se) / 4096 <= bounds[i].ggml_err, "%s: ggml's synthetic quantization error %.5f > %.4f", tr->name,
              sqrt(se) / 4096, bounds[i].ggml_err);
        printf("  round trip %-5s ggml synthetic error %.6f (bound %.4f)\n", tr->name, sqrt(se) / 4096,
               bounds[i].ggml_err);

        /* zeros and constants stay (nearly) exact for every type */
        for (int64_t j = 0; j < 512; j++) x[j] = 0.0f;
        tr->from_float(x, q, 512);
        tr->to_float(q, y, 512);
        int zero = 1;
        for (int64_t j = 0; j < 512; j++) zero &= y[j] == 0.0f;
        CHECK(zero, "%s: zeros do not round-trip", tr->name);
        for (int64_t j = 0; j < 512; j++) x[j] = j < 256 ? 0.5f : -0.25f;
        tr->from_float(x, q, 512);
        tr->to_float(q, y, 512);
        double cerr = 0;
        for (int64_t j = 0; j < 512; j++) { /* (not fmax: gcc 12.2 for arm64 crashes vectorizing that loop) */
            const double e = fabs((double)x[j] - y[j]);
            if (e > cerr) cerr = e;
        }
        printf("  constant blocks %-5s max error %g\n", tr->name, cerr);
        CHECK(cerr <= 2e-3, "%s: constant blocks: max error %g", tr->name, cerr);

        /* non-finite input must not crash (garbage out is fine) */
        for (int64_t j = 0; j < 512; j++) x[j] = j % 7 == 0 ? NAN : j % 11 == 0 ? INFINITY : t_randf();
        tr->from_float(x, q, 512);
        tr->to_float(q, y, 512);
    }

    /* Q8_K: ggml's scheme exactly (d = -max/127 ... = 1/iscale) and bsums = sums of 16 quants */
    const g4_type_traits *k8 = g4_type_traits_get(G4_TYPE_Q8_K);
    for (int64_t j = 0; j < 1024; j++) x[j] = gauss();
    x[300] = -9.0f; /* block 1's extreme value is negative */
    k8->from_float(x, q, 1024);
    int bs_ok = 1, q_ok = 1;
    for (int b = 0; b < 4; b++) {
        const uint8_t *p = q + 292 * b;
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[256 * b + j]) > amax) amax = fabsf(x[256 * b + j]), max = x[256 * b + j];
        const float iscale = -127.f / max;
        q_ok &= f2u(u2f(rd32(p))) == f2u(1 / iscale);
        for (int j = 0; j < 256; j++) q_ok &= (int8_t)p[4 + j] == (int)nearbyintf(iscale * x[256 * b + j]);
        for (int s = 0; s < 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += (int8_t)p[4 + 16 * s + l];
            bs_ok &= (int16_t)rd16(p + 260 + 2 * s) == sum;
        }
    }
    CHECK(q_ok, "Q8_K quants / scale differ from ggml's scheme");
    CHECK(bs_ok, "Q8_K bsums");
    free(x);
    free(y);
    free(q);
}

/* ---- 5. the oracle: ggml's own dequantization of random blocks ------------------------------------ */

static void test_oracle(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/dequant/blocks.txt", t_oracle());
    FILE *fl = fopen(path, "r");
    CHECK(fl != NULL, "oracle index %s missing: the dequant vectors are required (set G4_ORACLE)", path);
    if (!fl) return;
    snprintf(path, sizeof path, "%s/dequant/blocks.f32", t_oracle());
    FILE *ff = fopen(path, "rb");
    CHECK(ff != NULL, "oracle values %s missing", path);
    if (!ff) {
        fclose(fl);
        return;
    }
    fseek(ff, 0, SEEK_END);
    const long nfloats = ftell(ff) / 4;
    fseek(ff, 0, SEEK_SET);
    uint32_t *want = malloc(sizeof(uint32_t) * (size_t)(nfloats > 0 ? nfloats : 1));
    CHECK(nfloats > 0 && fread(want, 4, (size_t)nfloats, ff) == (size_t)nfloats, "read %s", path);
    fclose(ff);

    snprintf(path, sizeof path, "%s/dequant/blocks.gguf", t_oracle());
    gguf_file *gf = NULL;
    g4_error err = {0};
    g4_status st = gguf_open(&gf, path, &err);
    CHECK(st == G4_OK, "gguf_open %s: %s", path, err.msg);
    if (st != G4_OK) {
        fclose(fl);
        free(want);
        return;
    }
    char line[512];
    int tensors = 0;
    long values = 0;
    while (fgets(line, sizeof line, fl)) {
        char name[128], tname[32];
        long long ne0, ne1, off;
        if (line[0] == '#' || sscanf(line, "%127s %31s %lld %lld %lld", name, tname, &ne0, &ne1, &off) != 5) continue;
        const int type = g4_type_from_name(tname);
        const g4_type_traits *tr = g4_type_traits_get(type);
        const gguf_tensor *t = gguf_find_tensor(gf, name);
        CHECK(tr && t, "oracle tensor %s (%s) not found or type unknown", name, tname);
        if (!tr || !t) continue;
        CHECK(t->type == type && t->ne[0] == ne0 && t->ne[1] == ne1, "oracle tensor %s: type %d %lldx%lld", name,
              t->type, (long long)t->ne[0], (long long)t->ne[1]);
        if (t->type != type || t->ne[0] != ne0 || t->ne[1] != ne1 || off < 0 || off + ne0 * ne1 > nfloats) continue;
        const size_t rb = g4_type_row_bytes(type, ne0);
        CHECK(rb * (size_t)ne1 == t->nbytes, "%s: row bytes %zu", name, rb);
        float *out = malloc(sizeof(float) * (size_t)(ne0 * ne1));
        for (long long r = 0; r < ne1; r++) tr->to_float(t->data + (size_t)r * rb, out + r * ne0, ne0);
        long bad = 0;
        for (long long j = 0; j < ne0 * ne1; j++)
            if (f2u(out[j]) != want[off + j] && bad++ < 5)
                fprintf(stderr, "  %s value %lld (block %lld): got %08x (%g), ggml %08x (%g)\n", name, j,
                        j / tr->blck, f2u(out[j]), out[j], want[off + j], u2f(want[off + j]));
        CHECK(bad == 0, "%s: %ld of %lld values differ from ggml", name, bad, ne0 * ne1);

        /* the exact dot agrees with the oracle values too (finite rows only) */
        float *x = malloc(sizeof(float) * (size_t)ne0);
        for (long long j = 0; j < ne0; j++) x[j] = t_randf();
        int dots_ok = 1, rows = 0;
        for (long long r = 0; r < ne1; r++) {
            double exact = 0, mag = 0;
            for (long long j = 0; j < ne0; j++) {
                const double v = u2f(want[off + r * ne0 + j]);
                exact += v * x[j];
                mag += fabs(v * x[j]);
            }
            if (!isfinite(mag) || mag > 1e30) continue;
            rows++;
            const float got = tr->dot_f32(t->data + (size_t)r * rb, x, ne0);
            dots_ok &= fabs(got - exact) <= (double)(tr->blck + ne0 / tr->blck + 34) * U * mag + 1e-37;
        }
        CHECK(dots_ok, "%s: dot_f32 on the oracle rows (%d finite rows)", name, rows);
        free(x);
        free(out);
        tensors++;
        values += (long)(ne0 * ne1);
    }
    printf("  oracle: %d tensors, %ld values compared bit for bit\n", tensors, values);
    CHECK(tensors >= 10, "oracle: only %d tensors checked", tensors);
    gguf_close(gf);
    fclose(fl);
    free(want);
}

int main(void) {
    test_names();
    test_dequant_random();
    test_dot_f32();
    test_dot_q();
    test_round_trip();
    test_oracle();
    return t_done();
}
