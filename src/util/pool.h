/* A persistent pool of worker threads for data-parallel loops: g4_pool_run(pool, fn, arg) calls
 * fn(arg, ith, nth) once on each of the nth threads (the caller is thread 0) and returns when all are
 * done. Workers spin briefly before sleeping, so back-to-back runs (one per matrix product) are cheap. */
#ifndef G4_POOL_H
#define G4_POOL_H

#include "g4.h"

typedef struct g4_pool g4_pool;
typedef void (*g4_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one per online CPU */
g4_status g4_pool_new(g4_pool **out, int n_threads, g4_error *err);
void g4_pool_free(g4_pool *p);
int g4_pool_size(const g4_pool *p);
void g4_pool_run(g4_pool *p, g4_task_fn fn, void *arg);
/* online CPUs (at least 1) */
int g4_cpu_count(void);

#endif
