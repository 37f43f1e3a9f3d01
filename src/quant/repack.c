/* Interleaved weight layouts: packers, activation encoding and the scalar reference kernels (the
 * layouts and the exact result each kernel must give are described in repack.h). */
#include "quant/repack.h"
#include "quant/blocks.h"
#include "quant/types.h"
#include "util/util.h"

#include <math.h>
#include <string.h>

/* ---- packers ---- */

void g4_rp_pack_q4_0x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *g = dst + (size_t)i * 144;
        for (int r = 0; r < G4_RP_ROWS; r++) {
            const block_q4_0 *b = (const block_q4_0 *)(src + (size_t)r * row_bytes) + i;
            memcpy(g + 2 * r, &b->d, 2);
            for (int c = 0; c < 4; c++) memcpy(g + 16 + 32 * c + 4 * r, b->qs + 4 * c, 4);
        }
    }
}

void g4_rp_pack_q8_0x8(const uint8_t *src, size_t row_bytes, uint8_t *dst, int64_t n) {
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *g = dst + (size_t)i * 272;
        for (int r = 0; r < G4_RP_ROWS; r++) {
            const block_q8_0 *b = (const block_q8_0 *)(src + (size_t)r * row_bytes) + i;
            memcpy(g + 2 * r, &b->d, 2);
            for (int c = 0; c < 8; c++) memcpy(g + 16 + 32 * c + 4 * r, b->qs + 4 * c, 4);
        }
    }
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

/* ---- tables ---- */

static const g4_repack_traits refs[] = {
    {"Q4_0x8", G4_TYPE_Q4_0, QK4_0, sizeof(block_q8p), g4_rp_pack_q4_0x8, g4_rp_act_q8p, g4_rp_gemm_q4_0x8},
    {"Q8_0x8", G4_TYPE_Q8_0, QK8_0, sizeof(block_q8p), g4_rp_pack_q8_0x8, g4_rp_act_q8p, g4_rp_gemm_q8_0x8},
};
#define N_RP ((int)(sizeof refs / sizeof refs[0]))

/* the kernel set's table: empty (scalar set) until g4_types_init installs SIMD kernels */
static g4_repack_traits active[N_RP];

const g4_repack_traits *g4_repack_ref(int type) {
    for (int i = 0; i < N_RP; i++)
        if (refs[i].type == type) return &refs[i];
    return NULL;
}

void g4_repack_install(int type, g4_rp_gemm_fn gemm, g4_rp_act_fn act) {
    for (int i = 0; i < N_RP; i++)
        if (refs[i].type == type) {
            active[i] = refs[i];
            active[i].gemm = gemm;
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
