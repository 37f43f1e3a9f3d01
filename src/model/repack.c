/* Load-time repacking of the weight matrices into the interleaved layouts of quant/repack.h.
 *
 * Which matrices: every 2-D matrix a matrix product reads (attention, FFN, per-layer-embedding gate
 * and projection, the LM head) whose type has a layout for the kernel set in use and whose row count
 * is a multiple of 8. Not the token embeddings (gathered a row at a time; when the LM head is tied to
 * them, the head gets a packed copy and the table stays), not the per-layer embedding table, not the
 * MoE expert tensors (yet). The packed copies take the bytes of the originals (Q4_K: 2.8% more), in one
 * anonymous mapping (transparent huge pages requested: the decode loop streams it once per token);
 * the original pages are then released from the process with MADV_DONTNEED (they stay in the page
 * cache, and reading them again just maps them back), so resident memory does not double.
 */
#include "model/model.h"
#include "quant/repack.h"
#include "quant/types.h"
#include "util/pool.h"
#include "util/util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const g4_repack_traits *layout_for(const g4_weight *w) {
    if (!w->data || w->ne2 > 1 || w->ne1 <= 0 || w->ne1 % G4_RP_ROWS) return NULL;
    const g4_repack_traits *rt = g4_repack_get(w->type);
    if (!rt || w->ne0 % rt->blck) return NULL;
    return rt;
}

/* the matrices to repack, in file order-ish; returns the count (list may be NULL to count) */
static int collect(g4_model *m, g4_weight **list) {
    int n = 0;
#define ADD(wp)                                                                                      \
    do {                                                                                             \
        if (layout_for(wp)) {                                                                        \
            if (list) list[n] = (wp);                                                                \
            n++;                                                                                     \
        }                                                                                            \
    } while (0)
    for (int l = 0; l < m->n_layer; l++) {
        g4_layer *ly = &m->layers[l];
        ADD(&ly->wq);
        if (ly->kv_src == l) {
            ADD(&ly->wk);
            if (ly->has_v) ADD(&ly->wv);
        }
        ADD(&ly->wo);
        ADD(&ly->gate);
        ADD(&ly->up);
        ADD(&ly->down);
        ADD(&ly->ple_gate);
        ADD(&ly->ple_proj);
    }
    ADD(&m->ple_model_proj);
    ADD(&m->output);
#undef ADD
    return n;
}

static size_t packed_bytes(const g4_weight *w) {
    return (size_t)(w->ne1 / G4_RP_ROWS) * g4_repack_group_bytes(layout_for(w), w->ne0);
}

typedef struct {
    const g4_weight *w;
    const g4_repack_traits *rt;
    uint8_t *dst;
    int release; /* give the source pages back as soon as they are copied (file mapping) */
    atomic_llong next;
} pack_task;

static void release_pages(const uint8_t *p, size_t n);

static void pack_groups(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    pack_task *k = arg;
    const int64_t groups = k->w->ne1 / G4_RP_ROWS, chunk = 16;
    const size_t sb = (size_t)G4_RP_ROWS * k->w->row_bytes, db = g4_repack_group_bytes(k->rt, k->w->ne0);
    for (;;) {
        const int64_t g0 = atomic_fetch_add_explicit(&k->next, chunk, memory_order_relaxed);
        if (g0 >= groups) break;
        const int64_t g1 = g0 + chunk < groups ? g0 + chunk : groups;
        for (int64_t g = g0; g < g1; g++)
            k->rt->pack(k->w->data + (size_t)g * sb, k->w->row_bytes, k->dst + (size_t)g * db, k->w->ne0);
        /* so that the copy never doubles resident memory, even for the 262144-row LM head (the pages
         * straddling two chunks go when the whole matrix is done) */
        if (k->release) release_pages(k->w->data + (size_t)g0 * sb, (size_t)(g1 - g0) * sb);
    }
}

/* give the whole pages of [p, p + n) back (file mapping only) */
static void release_pages(const uint8_t *p, size_t n) {
    const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + ps - 1) & ~(ps - 1), b = ((uintptr_t)p + n) & ~(ps - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

g4_status g4_model_repack(g4_model *m, g4_pool *pool, g4_error *err) {
    (void)err;
    const char *env = getenv("G4_REPACK");
    if (env && !strcmp(env, "0")) return G4_OK;
    pthread_mutex_lock(&m->repack_lock);
    if (m->repack_done) {
        pthread_mutex_unlock(&m->repack_lock);
        return G4_OK;
    }
    m->repack_done = 1;
    const int n = collect(m, NULL);
    g4_weight **list = n ? malloc((size_t)n * sizeof *list) : NULL;
    size_t total = 0;
    if (list) {
        collect(m, list);
        for (int i = 0; i < n; i++) total += packed_bytes(list[i]);
    }
    void *map = list && total ? mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (map == MAP_FAILED) { /* nothing to do, or no memory: the row-by-row kernels read the originals */
        free(list);
        pthread_mutex_unlock(&m->repack_lock);
        return G4_OK;
    }
#ifdef MADV_HUGEPAGE
    madvise(map, total, MADV_HUGEPAGE);
#endif
    uint8_t *dst = map;
    for (int i = 0; i < n; i++) {
        g4_weight *w = list[i];
        const size_t bytes = (size_t)w->ne1 * w->row_bytes;
        pack_task k = {.w = w, .rt = layout_for(w), .dst = dst, .release = m->gf->mapped};
        atomic_init(&k.next, 0);
        g4_pool_run(pool, pack_groups, &k);
        w->packed = dst;
        w->rp = k.rt;
        /* everything is now read from the copy; a tied LM head's table is still gathered a row per
         * token, which maps back just the pages of those rows */
        if (m->gf->mapped) release_pages(w->data, bytes);
        dst += packed_bytes(w);
    }
    m->packed = map;
    m->packed_bytes = total;
    m->n_packed = n;
    free(list);
    pthread_mutex_unlock(&m->repack_lock);
    return G4_OK;
}

void g4_model_unpack(g4_model *m) {
    if (!m->packed) return;
    munmap(m->packed, m->packed_bytes);
    m->packed = NULL;
    m->packed_bytes = 0;
}
