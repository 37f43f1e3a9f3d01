/* Interleaved weight layouts: packers, activation encoding and the scalar reference kernels (the
 * layouts and the exact result each kernel must give are described in repack.h). */
#include "quant/repack.h"
#include "quant/blocks.h"
#include "quant/types.h"
#include "util/util.h"

#include <math.h>
#include <string.h>

/* ---- packers ---- */

/* 32-value blocks: the 8 rows' fp16 scales, then `chunks` runs of 4 quant bytes per row (repack.h) */
static void pack_32x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n, size_t block, int chunks) {
    const size_t col = 16 + 32 * (size_t)chunks;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8_t *g = dst + (size_t)i * col;
        for (int r = 0; r < G4_RP_ROWS; r++) {
            const uint8_t *b = src + (size_t)r * row_bytes + (size_t)i * block; /* d first, then qs */
            memcpy(g + 2 * r, b, 2);
            for (int c = 0; c < chunks; c++) memcpy(g + 16 + 32 * c + 4 * r, b + 2 + 4 * c, 4);
        }
    }
}

void g4_rp_pack_q4_0x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    pack_32x8(src, row_bytes, dst, n, sizeof(block_q4_0), 4);
}

void g4_rp_pack_q8_0x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    pack_32x8(src, row_bytes, dst, n, sizeof(block_q8_0), 8);
}

/* Q4_K: unpack the 6-bit scales and mins (g4_scale_min_k4) */
void g4_rp_pack_q4_Kx8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *g = dst + (size_t)i * 1184;
        for (int r = 0; r < G4_RP_ROWS; r++) {
            const block_q4_K *b = (const block_q4_K *)(src + (size_t)r * row_bytes) + i;
            memcpy(g + 2 * r, &b->d, 2);
            memcpy(g + 16 + 2 * r, &b->dmin, 2);
            for (int s = 0; s < 8; s++) {
                uint8_t sc, m;
                g4_scale_min_k4(s, b->scales, &sc, &m);
                g[32 + 8 * s + r] = sc;
                g[96 + 16 * (s / 2) + 2 * r + (s % 2)] = m;
            }
            for (int p = 0; p < 4; p++)
                for (int c = 0; c < 8; c++) memcpy(g + 160 + 256 * p + 32 * c + 4 * r, b->qs + 32 * p + 4 * c, 4);
        }
    }
}

/* the 6-bit value of element j of a Q6_K block (blocks.h) */
static inline int q6_value(const block_q6_K *b, int j) {
    const int h = j / 128, g = (j % 128) / 32, l = j % 32;
    const uint8_t lo = b->ql[64 * h + l + 32 * (g & 1)];
    return ((g < 2 ? lo & 0x0F : lo >> 4) | (((b->qh[32 * h + l] >> (2 * g)) & 3) << 4));
}

void g4_rp_pack_q6_Kx8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *g = dst + (size_t)i * 1680;
        for (int r = 0; r < G4_RP_ROWS; r++) {
            const block_q6_K *b = (const block_q6_K *)(src + (size_t)r * row_bytes) + i;
            memcpy(g + 2 * r, &b->d, 2);
            for (int u = 0; u < 8; u++) {
                memcpy(g + 16 + 16 * u + 2 * r, &b->scales[2 * u], 2);
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 4; k++) {
                        const int e = 32 * u + 4 * c + k;
                        g[144 + 128 * u + 32 * c + 4 * r + k] = (uint8_t)((q6_value(b, e) & 15) | (q6_value(b, e + 16) & 15) << 4);
                    }
                for (int h = 0; h < 2; h++)
                    for (int k = 0; k < 4; k++) {
                        const int e = 32 * u + 8 * h + k;
                        g[1168 + 64 * u + 32 * h + 4 * r + k] =
                            (uint8_t)(q6_value(b, e) >> 4 | (q6_value(b, e + 16) >> 4) << 2 | (q6_value(b, e + 4) >> 4) << 4 |
                                      (q6_value(b, e + 20) >> 4) << 6);
                    }
            }
        }
    }
}

void g4_rp_pack_f16x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        for (int r = 0; r < G4_RP_ROWS; r++) memcpy(dst + 2 * ((size_t)k * G4_RP_ROWS + (size_t)r), src + (size_t)r * row_bytes + 2 * (size_t)k, 2);
}

void g4_rp_pack_f32x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        for (int r = 0; r < G4_RP_ROWS; r++) memcpy(dst + 4 * ((size_t)k * G4_RP_ROWS + (size_t)r), src + (size_t)r * row_bytes + 4 * (size_t)k, 4);
}

/* ---- activations: the Q8_0 encoding (the installed, bit-identical quantizer), scale as float + sum ---- */

void g4_rp_act_q8p(const float *x, void *dst, int64_t n) {
    const g4_type_traits *q8 = g4_type_traits_get(G4_TYPE_Q8_0);
    block_q8p *o = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        block_q8_0 b;
        q8->from_float(x + i * QK8_0, &b, QK8_0);
        int s = 0;
        for (int j = 0; j < QK8_0; j++) s += b.qs[j];
        o[i].d = g4_fp16_to_fp32(b.d);
        o[i].s = s;
        memcpy(o[i].qs, b.qs, QK8_0);
    }
}

void g4_rp_act_f32(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof *x);
}

void g4_rp_act_q8K(const float *x, void *dst, int64_t n) {
    g4_type_traits_get(G4_TYPE_Q8_K)->from_float(x, dst, n);
}

/* ---- scalar reference kernels ---- */

void g4_rp_gemm_q4_0x8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK4_0;
    for (int t = 0; t < nt; t++) {
        const block_q8p *a = (const block_q8p *)(act + (size_t)t * as);
        for (int r = 0; r < G4_RP_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *g = pw + (size_t)i * 144;
                g4_half h;
                memcpy(&h, g + 2 * r, 2);
                int sumi = 0;
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 4; k++) {
                        const int q = g[16 + 32 * c + 4 * r + k];
                        sumi += ((q & 0x0F) - 8) * a[i].qs[4 * c + k] + ((q >> 4) - 8) * a[i].qs[16 + 4 * c + k];
                    }
                acc = fmaf(g4_fp16_to_fp32(h) * a[i].d, (float)sumi, acc);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
    }
}

void g4_rp_gemm_q8_0x8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK8_0;
    for (int t = 0; t < nt; t++) {
        const block_q8p *a = (const block_q8p *)(act + (size_t)t * as);
        for (int r = 0; r < G4_RP_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *g = pw + (size_t)i * 272;
                g4_half h;
                memcpy(&h, g + 2 * r, 2);
                int sumi = 0;
                for (int c = 0; c < 8; c++)
                    for (int k = 0; k < 4; k++) sumi += (int8_t)g[16 + 32 * c + 4 * r + k] * a[i].qs[4 * c + k];
                acc = fmaf(g4_fp16_to_fp32(h) * a[i].d, (float)sumi, acc);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
    }
}

void g4_rp_gemm_q4_Kx8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *a = (const block_q8_K *)(act + (size_t)t * as);
        for (int r = 0; r < G4_RP_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *g = pw + (size_t)i * 1184;
                g4_half d, dmin;
                memcpy(&d, g + 2 * r, 2);
                memcpy(&dmin, g + 16 + 2 * r, 2);
                int isum = 0, msum = 0;
                for (int s = 0; s < 8; s++) {
                    const int p = s / 2, hi = s % 2;
                    int dot = 0;
                    for (int c = 0; c < 8; c++)
                        for (int k = 0; k < 4; k++) {
                            const int q = g[160 + 256 * p + 32 * c + 4 * r + k];
                            dot += (hi ? q >> 4 : q & 0x0F) * a[i].qs[64 * p + 32 * hi + 4 * c + k];
                        }
                    isum += g[32 + 8 * s + r] * dot;
                    msum += g[96 + 16 * p + 2 * r + hi] * (a[i].bsums[2 * s] + a[i].bsums[2 * s + 1]);
                }
                const float dx = a[i].d;
                acc = fmaf(g4_fp16_to_fp32(d) * dx, (float)isum, acc);
                acc = fmaf(-(g4_fp16_to_fp32(dmin) * dx), (float)msum, acc);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
    }
}

void g4_rp_gemm_q6_Kx8(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int t = 0; t < nt; t++) {
        const block_q8_K *a = (const block_q8_K *)(act + (size_t)t * as);
        for (int r = 0; r < G4_RP_ROWS; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *g = pw + (size_t)i * 1680;
                g4_half d;
                memcpy(&d, g + 2 * r, 2);
                int sumi = 0;
                for (int u = 0; u < 8; u++)
                    for (int half = 0; half < 2; half++) { /* sub-block 2u + half: unit elements 16 half .. +15 */
                        const int sc = (int8_t)g[16 + 16 * u + 2 * r + half];
                        int dot = 0;
                        for (int e = 0; e < 16; e++) {
                            const int c = e / 4, k = e % 4; /* nibble chunk and byte */
                            const int nib = g[144 + 128 * u + 32 * c + 4 * r + k];
                            const int lo4 = half ? nib >> 4 : nib & 0x0F;
                            /* top bits: half h2 = c / 2, field = half + 2 * (c % 2) */
                            const int hb = g[1168 + 64 * u + 32 * (c / 2) + 4 * r + k];
                            const int q = lo4 | ((hb >> (2 * (half + 2 * (c % 2)))) & 3) << 4;
                            dot += (q - 32) * a[i].qs[32 * u + 16 * half + e];
                        }
                        sumi += sc * dot;
                    }
                acc = fmaf(g4_fp16_to_fp32(d) * a[i].d, (float)sumi, acc);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
    }
}

#define FLOAT_GEMM(fname, wtype, W)                                                                  \
    void fname(const uint8_t *pw, const uint8_t *act, size_t as, int nt, float *y, size_t ldy, int64_t n) { \
        const wtype *w = (const wtype *)pw;                                                          \
        for (int t = 0; t < nt; t++) {                                                               \
            const float *x = (const float *)(act + (size_t)t * as);                                  \
            for (int r = 0; r < G4_RP_ROWS; r++) {                                                   \
                float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                             \
                for (int64_t k = 0; k < n; k++) acc[k % 4] = fmaf(W(w[(size_t)k * G4_RP_ROWS + (size_t)r]), x[k], acc[k % 4]); \
                y[(size_t)t * ldy + (size_t)r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);              \
            }                                                                                        \
        }                                                                                            \
    }
#define AS_F32(v) (v)
FLOAT_GEMM(g4_rp_gemm_f16x8, uint16_t, g4_fp16_to_fp32)
FLOAT_GEMM(g4_rp_gemm_f32x8, float, AS_F32)

/* ---- tables ---- */

static const g4_repack_traits refs[] = {
    {"Q4_0x8", G4_TYPE_Q4_0, QK4_0, 144, sizeof(block_q8p), g4_rp_pack_q4_0x8, g4_rp_act_q8p, g4_rp_gemm_q4_0x8, NULL},
    {"Q8_0x8", G4_TYPE_Q8_0, QK8_0, 272, sizeof(block_q8p), g4_rp_pack_q8_0x8, g4_rp_act_q8p, g4_rp_gemm_q8_0x8, NULL},
    {"Q4_Kx8", G4_TYPE_Q4_K, QK_K, 1184, sizeof(block_q8_K), g4_rp_pack_q4_Kx8, g4_rp_act_q8K, g4_rp_gemm_q4_Kx8, NULL},
    {"Q6_Kx8", G4_TYPE_Q6_K, QK_K, 1680, sizeof(block_q8_K), g4_rp_pack_q6_Kx8, g4_rp_act_q8K, g4_rp_gemm_q6_Kx8, NULL},
    {"F16x8", G4_TYPE_F16, 8, 128, 32, g4_rp_pack_f16x8, g4_rp_act_f32, g4_rp_gemm_f16x8, NULL},
    {"F32x8", G4_TYPE_F32, 8, 256, 32, g4_rp_pack_f32x8, g4_rp_act_f32, g4_rp_gemm_f32x8, NULL},
};
#define N_RP ((int)(sizeof refs / sizeof refs[0]))

/* the kernel set's table: empty (scalar set) until g4_types_init installs SIMD kernels */
static g4_repack_traits active[N_RP];

const g4_repack_traits *g4_repack_ref(int type) {
    for (int i = 0; i < N_RP; i++)
        if (refs[i].type == type) return &refs[i];
    return NULL;
}

void g4_repack_install(int type, g4_rp_gemm_fn gemm, g4_rp_gemm16_fn gemm16, g4_rp_act_fn act) {
    for (int i = 0; i < N_RP; i++)
        if (refs[i].type == type) {
            active[i] = refs[i];
            active[i].gemm = gemm;
            active[i].gemm16 = gemm16;
            if (act) active[i].act = act;
        }
}

const g4_repack_traits *g4_repack_get(int type) {
    g4_types_init();
    for (int i = 0; i < N_RP; i++)
        if (active[i].gemm && active[i].type == type) return &active[i];
    return NULL;
}

size_t g4_repack_act_bytes(const g4_repack_traits *rt, int64_t n) {
    return (size_t)(n / rt->blck) * rt->act_block;
}

size_t g4_repack_group_bytes(const g4_repack_traits *rt, int64_t n) {
    return (size_t)(n / rt->blck) * rt->col_bytes;
}
