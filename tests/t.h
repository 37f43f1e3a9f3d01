/* Minimal test harness: CHECK records a failure and goes on; the program prints
 * "N passed, N failed" last and exits non-zero if anything failed. */
#ifndef G4_T_H
#define G4_T_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                                         \
    do {                                                                                         \
        if (cond) {                                                                              \
            t_pass++;                                                                            \
        } else {                                                                                 \
            t_fail++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fputc('\n', stderr);                                                                 \
        }                                                                                        \
    } while (0)

static inline int t_done(void) {
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail ? 1 : 0;
}

/* directory of the oracle pack: $G4_ORACLE or ../shared/oracle */
static inline const char *t_oracle(void) {
    const char *d = getenv("G4_ORACLE");
    return d && *d ? d : "../shared/oracle";
}

/* deterministic random numbers for tests (xorshift64*) */
static unsigned long long t_rng_state = 0x9E3779B97F4A7C15ull;
static inline unsigned long long t_rand64(void) {
    t_rng_state ^= t_rng_state >> 12;
    t_rng_state ^= t_rng_state << 25;
    t_rng_state ^= t_rng_state >> 27;
    return t_rng_state * 0x2545F4914F6CDD1Dull;
}
/* uniform in [-1, 1), never exactly zero */
static inline float t_randf(void) {
    float f = (float)((double)(t_rand64() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    return f == 0.0f ? 1e-3f : f;
}
#endif
