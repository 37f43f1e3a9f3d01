#include "util/pool.h"
#include "util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Waiting threads spin (with the CPU's pause hint) for up to SPIN_NS before sleeping: long enough to
 * bridge the serial steps between two matrix products of a decode step (a norm, a RoPE: microseconds),
 * short enough that a thread waiting for a descheduled one (a busy machine) soon yields its core. */
#define SPIN_NS 100000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* spin until *v != val, for at most SPIN_NS; returns 1 if it changed */
static int spin_while_eq_uint(atomic_uint *v, unsigned val, atomic_int *quit) {
    int64_t t0 = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(v, memory_order_acquire) != val || atomic_load_explicit(quit, memory_order_relaxed)) return 1;
        cpu_relax();
        if (i % 16 == 0) {
            const int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_NS) return 0;
        }
    }
}

static int spin_while_pos(atomic_int *v) {
    int64_t t0 = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(v, memory_order_acquire) <= 0) return 1;
        cpu_relax();
        if (i % 16 == 0) {
            const int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_NS) return 0;
        }
    }
}

typedef struct worker {
    struct g4_pool *pool;
    int ith;
    pthread_t tid;
} worker;

struct g4_pool {
    int n;
    worker *w;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint gen;     /* incremented for every run */
    atomic_int pending;  /* workers still running the current task */
    atomic_int quit;
    atomic_int sleepers; /* workers blocked on `wake` (or about to be) */
    atomic_int waiting;  /* the caller is blocked on `done` (or about to be) */
    g4_task_fn fn;
    void *arg;
};

int g4_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static void *worker_main(void *p) {
    worker *w = p;
    g4_pool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        spin_while_eq_uint(&pool->gen, seen, &pool->quit);
        while ((g = atomic_load_explicit(&pool->gen, memory_order_acquire)) == seen && !atomic_load(&pool->quit)) {
            /* announce the sleep before the last look at gen: the caller bumps gen before it looks at
             * sleepers (both sequentially consistent), so one of the two sees the other */
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->quit)) pthread_cond_wait(&pool->wake, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit)) return NULL;
        seen = g;
        pool->fn(pool->arg, w->ith, pool->n);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->waiting)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

g4_status g4_pool_new(g4_pool **out, int n, g4_error *err) {
    *out = NULL;
    if (n <= 0) n = g4_cpu_count();
    g4_pool *p = calloc(1, sizeof *p);
    if (!p) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    p->n = n;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->quit, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->waiting, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->w = calloc((size_t)n, sizeof *p->w);
    if (!p->w) {
        g4_pool_free(p);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    for (int i = 1; i < n; i++) {
        p->w[i].pool = p;
        p->w[i].ith = i;
        if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]) != 0) {
            p->n = i; /* the threads started so far are joined by free */
            g4_pool_free(p);
            return g4_fail(err, G4_ERR_NOMEM, "cannot start worker thread %d of %d", i, n);
        }
    }
    *out = p;
    return G4_OK;
}

void g4_pool_free(g4_pool *p) {
    if (!p) return;
    if (p->w) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->quit, 1);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++) pthread_join(p->w[i].tid, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->w);
    free(p);
}

int g4_pool_size(const g4_pool *p) { return p ? p->n : 1; }

void g4_pool_run(g4_pool *p, g4_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) { /* only sleeping workers need the (system call) wake-up */
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    spin_while_pos(&p->pending);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->waiting, 1); /* then look at pending: the last worker decrements it, then looks here */
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
}
