#include "util/pool.h"
#include "util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN 20000

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
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->gen, memory_order_acquire)) == seen && !atomic_load(&pool->quit)) {
            if (++spins < SPIN) continue;
            pthread_mutex_lock(&pool->mu);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->quit)) pthread_cond_wait(&pool->wake, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit)) return NULL;
        seen = g;
        pool->fn(pool->arg, w->ith, pool->n);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
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
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins < SPIN) continue;
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
