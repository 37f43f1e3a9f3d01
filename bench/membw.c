/* membw: the memory read bandwidth a streaming loop reaches with N threads (default: every CPU), the
 * number against which decode speed is judged (docs/performance.md). Each thread reads its own slice of
 * a 1 GiB buffer (transparent huge pages, like g4's repacked weights) with 32-byte loads (AVX2 where the
 * CPU has it, else 8-byte loads), with and without software prefetch; the best of 5 passes of each.
 *   membw [THREADS] [MIB]      prints "read bandwidth: X GB/s (T threads)" */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static uint8_t *buf;
static size_t slice;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n, int pf) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        if (pf) {
            _mm_prefetch((const char *)(p + i + 1024), _MM_HINT_T0);
            _mm_prefetch((const char *)(p + i + 1024 + 64), _MM_HINT_T0);
        }
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0);
}
#endif

static uint64_t read_plain(const uint8_t *p, size_t n) {
    uint64_t s0 = 0, s1 = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        s0 ^= x, s1 ^= y;
    }
    return s0 ^ s1;
}

static volatile uint64_t sink;
static int use_avx2, prefetch;

static void *run(void *arg) {
    const uint8_t *p = buf + (size_t)(uintptr_t)arg * slice;
#if defined(__x86_64__)
    if (use_avx2) {
        sink ^= read_avx2(p, slice, prefetch);
        return NULL;
    }
#endif
    sink ^= read_plain(p, slice);
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    long nth = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
    long mib = argc > 2 ? atol(argv[2]) : 1024;
    if (nth < 1 || nth > 256 || mib < 16) {
        fprintf(stderr, "usage: membw [THREADS] [MIB >= 16]\n");
        return 2;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2");
#endif
    const size_t total = (size_t)mib << 20;
    slice = total / (size_t)nth / 128 * 128;
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buf = map == MAP_FAILED ? NULL : map;
#ifdef MADV_HUGEPAGE
    if (buf) madvise(buf, total, MADV_HUGEPAGE);
#endif
    if (!buf) {
        fprintf(stderr, "membw: out of memory\n");
        return 1;
    }
    memset(buf, 1, total);
    double best = 0, best_of[2] = {0, 0};
    for (int rep = 0; rep < 10; rep++) {
        prefetch = rep % 2;
        pthread_t t[256];
        const double t0 = now();
        for (long i = 0; i < nth; i++)
            if (pthread_create(&t[i], NULL, run, (void *)(uintptr_t)i)) {
                fprintf(stderr, "membw: cannot start a thread\n");
                return 1;
            }
        for (long i = 0; i < nth; i++) pthread_join(t[i], NULL);
        const double gbs = (double)slice * (double)nth / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
        if (gbs > best_of[prefetch]) best_of[prefetch] = gbs;
    }
    printf("read bandwidth: %.1f GB/s (%ld threads; %.1f without software prefetch, %.1f with)\n", best, nth, best_of[0],
           best_of[1]);
    munmap(buf, total);
    return 0;
}
