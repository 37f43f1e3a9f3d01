/* g4 bench: prompt-processing and decode speed, time to first token, memory and KV cache size of a model.
 *
 * One repetition: reset the context, fill it with --depth D pseudo-random tokens (not timed), evaluate a
 * --prompt N token prompt in one g4_eval (timed: prompt tok/s, time to first token = that eval plus the
 * argmax of its logits), then --gen G single-token g4_eval calls, each fed the argmax of the previous
 * logits (timed: decode tok/s, measured at depth D+N .. D+N+G). With --reps R the medians are reported. */
#include "cli.h"
#include "g4.h"
#include "gguf/gguf.h"
#include "quant/types.h"
#include "util/pool.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The ISA the kernels were chosen for, when the quant layer says (weak: absent in scalar-only builds). */
extern const char *g4_types_isa(void) __attribute__((weak));

static const char *usage =
    "usage: g4 bench MODEL [--threads N] [--prompt N] [--gen N] [--depth N] [--kv SPEC]\n"
    "                [--fill eval|random] [--ctx N] [--top K] [--parallel N] [--reps R] [--seed S] [--json]\n"
    "\n"
    "Measures prompt processing (one g4_eval of N pseudo-random token ids), decode (G single-token\n"
    "evaluations, each fed the most likely token of the previous one), the time to first token\n"
    "(prompt evaluation + first logits), peak and current RSS, and the KV cache size (in total and\n"
    "per token of context).\n"
    "\n"
    "  --threads N   worker threads (default: one per CPU)\n"
    "  --prompt N    prompt tokens (default 512)\n"
    "  --gen N       decoded tokens (default 128)\n"
    "  --depth D     first fill the cache with D tokens (not timed): prompt and decode are measured\n"
    "                at that depth (default 0)\n"
    "  --fill HOW    how the depth is filled: eval (default) evaluates D pseudo-random tokens;\n"
    "                random writes pseudo-random K and V vectors straight into the cache (seconds\n"
    "                instead of hours at D = 32768; decode speed does not depend on the values)\n"
    "  --ctx N       context length (default: depth + prompt + gen)\n"
    "  --top K       take only the K largest logits of each step (g4_eval_top, what g4 run does when\n"
    "                the sampler allows: greedy K = 1, Gemma's default top-k 64); default 0: every\n"
    "                logit, then the argmax (what llama-bench's numbers include)\n"
    "  --parallel N  also decode N sequences batched (each with its own --prompt N token prompt, at\n"
    "                --depth D): aggregate decode tok/s of the N, every weight matrix read once per\n"
    "                step for all of them (what g4 serve --parallel N does); default 1: not measured\n"
    CLI_KV_HELP
    "  --reps R      repetitions; the median of each measure is reported (default 1)\n"
    "  --seed S      seed of the pseudo-random token ids (default 1)\n"
    "  --json        after the table, one JSON object on the last line of stdout\n"
    "\n"
    "The weight matrices are repacked into 8-row interleaved copies when the context is created (the load\n"
    "time includes it); G4_REPACK=0 in the environment keeps the file's row layout, G4_ISA=scalar|avx2|avx512\n"
    "forces a kernel set.\n";

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}
static int check_interrupted(void *user) {
    (void)user;
    return interrupted;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(const double *v, int n) {
    double t[64];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static uint64_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (uint64_t)ru.ru_maxrss * 1024; /* Linux: kilobytes */
}
static uint64_t current_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)res * (uint64_t)page : 0;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* pseudo-random token ids in [lo, n_vocab) (xorshift64*) */
static void random_tokens(int32_t *ids, int n, int n_vocab, uint64_t *state) {
    int lo = n_vocab > 16 ? 4 : 0;
    for (int i = 0; i < n; i++) {
        uint64_t x = *state;
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        *state = x;
        ids[i] = lo + (int32_t)((x * 0x2545F4914F6CDD1DULL >> 33) % (uint64_t)(n_vocab - lo));
    }
}

/* what the weights are: bytes per type, and the bytes one decoded token streams (every tensor but the
 * per-layer embedding table, which is gathered a row per token; token_embd is the tied LM head and is
 * streamed whole) */
typedef struct weight_facts {
    uint64_t per_type[G4_TYPE_COUNT];
    uint64_t streamed;
    int main_type; /* the type holding most bytes among the streamed matrices */
} weight_facts;

static int weight_facts_of(const char *path, weight_facts *w, g4_error *err) {
    memset(w, 0, sizeof *w);
    w->main_type = -1;
    gguf_file *f;
    if (gguf_open(&f, path, err)) return 0;
    uint64_t mat[G4_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (t->type < 0 || t->type >= G4_TYPE_COUNT) continue;
        w->per_type[t->type] += t->nbytes;
        if (strcmp(t->name, "per_layer_token_embd.weight")) {
            w->streamed += t->nbytes;
            if (t->n_dims >= 2 && strcmp(t->name, "per_layer_model_proj.weight")) mat[t->type] += t->nbytes;
        }
    }
    for (int t = 0; t < G4_TYPE_COUNT; t++)
        if (mat[t] && (w->main_type < 0 || mat[t] > mat[w->main_type])) w->main_type = t;
    gguf_close(f);
    return 1;
}

/* Linux CPU model name (or "unknown") */
static void cpu_name(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *p = strchr(line, ':');
        if (!p) break;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, n, "%s", p);
        break;
    }
    fclose(f);
}

#define MAX_REPS 64

int g4_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL;
    long threads = 0, n_prompt = 512, n_gen = 128, depth = 0, reps = 1, seed = 1, ctx = 0, top = 0, parallel = 1;
    int json = 0, fill_random = 0;
    g4_ctx_params p = g4_ctx_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--threads") || !strcmp(a, "--prompt") || !strcmp(a, "--gen") || !strcmp(a, "--depth") ||
                 !strcmp(a, "--reps") || !strcmp(a, "--seed") || !strcmp(a, "--kv") || !strcmp(a, "--ctx") ||
                 !strcmp(a, "--fill") || !strcmp(a, "--top") || !strcmp(a, "--parallel")) {
            if (i + 1 >= argc) cli_die_usage(usage, "bench: option %s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--kv")) cli_kv_option(usage, v, &p);
            else if (!strcmp(a, "--fill")) {
                if (!strcmp(v, "eval")) fill_random = 0;
                else if (!strcmp(v, "random")) fill_random = 1;
                else cli_die_usage(usage, "bench: --fill takes eval or random, not '%s'", v);
            }
            else if (!strcmp(a, "--parallel")) {
                if (!cli_parse_int(v, 1, 256, &parallel)) cli_die_usage(usage, "bench: bad --parallel '%s' (1..256)", v);
            } else if (!strcmp(a, "--top")) {
                if (!cli_parse_int(v, 0, 1 << 20, &top)) cli_die_usage(usage, "bench: bad --top '%s' (0..1048576)", v);
            } else if (!strcmp(a, "--ctx")) {
                if (!cli_parse_int(v, 1, 1 << 22, &ctx)) cli_die_usage(usage, "bench: bad --ctx '%s' (1..4194304)", v);
            } else if (!strcmp(a, "--threads")) {
                if (!cli_parse_int(v, 1, 256, &threads)) cli_die_usage(usage, "bench: bad --threads '%s' (1..256)", v);
            } else if (!strcmp(a, "--prompt")) {
                if (!cli_parse_int(v, 1, 1 << 20, &n_prompt)) cli_die_usage(usage, "bench: bad --prompt '%s' (1..1048576)", v);
            } else if (!strcmp(a, "--gen")) {
                if (!cli_parse_int(v, 1, 1 << 20, &n_gen)) cli_die_usage(usage, "bench: bad --gen '%s' (1..1048576)", v);
            } else if (!strcmp(a, "--depth")) {
                if (!cli_parse_int(v, 0, 1 << 22, &depth)) cli_die_usage(usage, "bench: bad --depth '%s' (0..4194304)", v);
            } else if (!strcmp(a, "--reps")) {
                if (!cli_parse_int(v, 1, MAX_REPS, &reps)) cli_die_usage(usage, "bench: bad --reps '%s' (1..%d)", v, MAX_REPS);
            } else if (!cli_parse_int(v, 0, 0x7fffffffL, &seed)) cli_die_usage(usage, "bench: bad --seed '%s'", v);
        } else if (a[0] == '-') cli_die_usage(usage, "bench: unknown option '%s'", a);
        else if (!model_path) model_path = a;
        else cli_die_usage(usage, "bench: unexpected argument '%s'", a);
    }
    if (!model_path) cli_die_usage(usage, "bench: no model given");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    g4_types_init();
    g4_error err = {0};
    weight_facts wf;
    double t_load0 = now_s();
    if (!weight_facts_of(model_path, &wf, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    g4_model *m = NULL;
    if (g4_model_open(&m, model_path, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    g4_model_info info;
    g4_model_get_info(m, &info);
    long n_ctx = depth + n_prompt + n_gen;
    if (n_ctx > (1L << 22)) {
        fprintf(stderr, "g4: bench: depth + prompt + gen = %ld tokens is too large\n", n_ctx);
        g4_model_free(m);
        return 2;
    }
    if (ctx && ctx < n_ctx) {
        fprintf(stderr, "g4: bench: --ctx %ld is less than depth + prompt + gen = %ld\n", ctx, n_ctx);
        g4_model_free(m);
        return 2;
    }
    if (ctx) n_ctx = ctx;
    p.n_ctx = (int)n_ctx;
    p.n_threads = (int)threads;
    g4_ctx *c = NULL;
    if (g4_ctx_new(&c, m, &p, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        g4_model_free(m);
        return 1;
    }
    double load_s = now_s() - t_load0;
    g4_ctx_set_abort(c, check_interrupted, NULL);
    int n_threads = threads ? (int)threads : g4_cpu_count();

    int rc = 1;
    size_t V = (size_t)info.n_vocab;
    float *logits = malloc(V * sizeof *logits);
    const long n_ids = depth > n_prompt ? depth : n_prompt;
    int32_t *ids = malloc((size_t)(n_ids > 32 ? n_ids : 32) * sizeof *ids);
    int32_t *top_ids = malloc((size_t)(top ? top : 1) * sizeof *top_ids);
    int n_top;
    double pp[MAX_REPS], tg[MAX_REPS], ttft[MAX_REPS], fill[MAX_REPS], tgp[MAX_REPS];
    /* --parallel: N more sequences on the same engine, decoded in one batch per step */
    g4_seq **seqs = parallel > 1 ? calloc((size_t)parallel, sizeof *seqs) : NULL;
    g4_batch_entry *be = parallel > 1 ? malloc((size_t)parallel * sizeof *be) : NULL;
    float *plogits = parallel > 1 ? malloc((size_t)parallel * V * sizeof *plogits) : NULL;
    for (long i = 0; seqs && i < parallel; i++)
        if (g4_seq_new(&seqs[i], g4_ctx_engine(c), &p, &err)) {
            fprintf(stderr, "g4: %s (--parallel %ld)\n", err.msg, parallel);
            goto done;
        }
    if (!logits || !ids || !top_ids || (parallel > 1 && (!seqs || !be || !plogits))) {
        fprintf(stderr, "g4: out of memory\n");
        goto done;
    }
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)seed;
    if (!json) {
        fprintf(stderr, "g4 bench: %s, %ld prompt + %ld decoded tokens at depth %ld, %d threads, %ld rep%s\n",
                model_path, n_prompt, n_gen, depth, n_threads, reps, reps > 1 ? "s" : "");
    }
    for (int r = 0; r < reps; r++) {
        g4_ctx_reset(c);
        fill[r] = 0;
        if (depth > 0) {
            random_tokens(ids, (int)depth, (int)V, &rng);
            double t0 = now_s();
            if (fill_random ? g4_ctx_fill_random(c, (int)depth, (uint64_t)seed + (uint64_t)r, &err)
                            : g4_eval(c, ids, (int)depth, NULL, 0, &err))
                goto eval_failed;
            fill[r] = now_s() - t0;
        }
        random_tokens(ids, (int)n_prompt, (int)V, &rng);
        double t0 = now_s();
        int32_t tok;
        if (top) { /* the logits array takes the top values */
            if (g4_eval_top(c, ids, (int)n_prompt, (int)top, top_ids, logits, &n_top, &err)) goto eval_failed;
            tok = n_top ? top_ids[0] : 0;
        } else {
            if (g4_eval(c, ids, (int)n_prompt, logits, 0, &err)) goto eval_failed;
            tok = argmax(logits, (int)V);
        }
        double t1 = now_s();
        ttft[r] = t1 - t0;
        pp[r] = (double)n_prompt / (t1 - t0);
        t0 = now_s();
        for (long i = 0; i < n_gen; i++) {
            if (top) {
                if (g4_eval_top(c, &tok, 1, (int)top, top_ids, logits, &n_top, &err)) goto eval_failed;
                tok = n_top ? top_ids[0] : 0;
            } else {
                if (g4_eval(c, &tok, 1, logits, 0, &err)) goto eval_failed;
                tok = argmax(logits, (int)V);
            }
        }
        t1 = now_s();
        tg[r] = (double)n_gen / (t1 - t0);
        tgp[r] = 0;
        if (parallel > 1) { /* each sequence: depth and prompt (not timed), then n_gen batched steps */
            for (long q = 0; q < parallel; q++) {
                g4_seq_reset(seqs[q]);
                if (depth > 0 && fill_random && g4_seq_fill_random(seqs[q], (int)depth, (uint64_t)seed + (uint64_t)q, &err))
                    goto eval_failed;
                const long np = depth > 0 && !fill_random ? depth + n_prompt : n_prompt;
                for (long i = 0; i < np; i += 32) {
                    g4_batch_entry pe[32];
                    const int T = np - i < 32 ? (int)(np - i) : 32;
                    random_tokens(ids, T, (int)V, &rng);
                    for (int t = 0; t < T; t++) pe[t] = (g4_batch_entry){.seq = seqs[q], .token = ids[t], .logits = i + t == np - 1};
                    if (g4_engine_eval(g4_ctx_engine(c), pe, T, plogits, &err)) goto eval_failed;
                }
                be[q] = (g4_batch_entry){.seq = seqs[q], .token = argmax(plogits, (int)V), .logits = 1};
            }
            t0 = now_s();
            for (long i = 0; i < n_gen; i++) {
                if (g4_engine_eval(g4_ctx_engine(c), be, (int)parallel, plogits, &err)) goto eval_failed;
                for (long q = 0; q < parallel; q++) be[q].token = argmax(plogits + (size_t)q * V, (int)V);
            }
            tgp[r] = (double)(parallel * n_gen) / (now_s() - t0);
        }
        if (!json) {
            fprintf(stderr, "  rep %d: prompt %.2f tok/s, decode %.2f tok/s, first token %.3f s", r + 1, pp[r], tg[r], ttft[r]);
            if (parallel > 1) fprintf(stderr, ", %ld sequences batched: %.2f tok/s", parallel, tgp[r]);
            fputc('\n', stderr);
        }
    }
    {
        double pp_m = median(pp, (int)reps), tg_m = median(tg, (int)reps), ttft_m = median(ttft, (int)reps);
        double fill_m = median(fill, (int)reps), tgp_m = median(tgp, (int)reps);
        uint64_t peak = peak_rss_bytes(), cur = current_rss_bytes(), kvb = g4_ctx_kv_bytes(c);
        if (cur > peak) peak = cur; /* ru_maxrss lags the last page faults */
        int big = 1 << 20;
        uint64_t kv_tok = g4_model_kv_bytes_params(m, big + 1, &p) - g4_model_kv_bytes_params(m, big, &p);
        char kvs[256], kvsum[512];
        g4_kv_spec_string(&p, kvs, sizeof kvs);
        cli_kv_summary(m, &p, kvsum, sizeof kvsum);
        const char *isa = g4_types_isa ? g4_types_isa() : "scalar";
        const char *type = wf.main_type >= 0 ? g4_type_name(wf.main_type) : "?";
        char cpu[256], b1[32], b2[32], b3[32], b4[32], b5[32];
        cpu_name(cpu, sizeof cpu);
        printf("model        %s (%s, %s, %s)\n", model_path, info.variant, type,
               cli_human_bytes((double)info.file_bytes, b1, sizeof b1));
        printf("weights      ");
        for (int t = 0, k = 0; t < G4_TYPE_COUNT; t++)
            if (wf.per_type[t]) printf("%s%s %s", k++ ? ", " : "", g4_type_name(t), cli_human_bytes((double)wf.per_type[t], b1, sizeof b1));
        printf("; streamed per decoded token %s\n", cli_human_bytes((double)wf.streamed, b1, sizeof b1));
        g4_model_info after;
        g4_model_get_info(m, &after); /* the context repacked the weights */
        if (after.n_repacked)
            printf("repacked     %d matrices into 8-row interleaved copies, %s (their file pages released)\n",
                   after.n_repacked, cli_human_bytes((double)after.repacked_bytes, b1, sizeof b1));
        printf("machine      %s, %d threads, kernels %s\n", cpu, n_threads, isa);
        printf("run          prompt %ld, decode %ld, depth %ld%s, context %ld, %s, median of %ld\n", n_prompt, n_gen, depth,
               depth && fill_random ? " (random K/V)" : "", n_ctx, top ? "top-k logits" : "every logit", reps);
        printf("KV cache     %s: %s\n", kvs, kvsum);
        printf("\n");
        printf("  %-28s %12s\n", "measure", "value");
        printf("  %-28s %12.2f\n", "prompt tok/s", pp_m);
        printf("  %-28s %12.2f\n", "decode tok/s", tg_m);
        if (parallel > 1) {
            char lbl[64];
            snprintf(lbl, sizeof lbl, "decode tok/s, %ld batched", parallel);
            printf("  %-28s %12.2f  (%.2fx one sequence)\n", lbl, tgp_m, tg_m > 0 ? tgp_m / tg_m : 0.0);
        }
        printf("  %-28s %12.3f\n", "time to first token (s)", ttft_m);
        printf("  %-28s %12.3f\n", "load (s)", load_s);
        if (depth && !fill_random) printf("  %-28s %12.2f\n", "depth fill tok/s", (double)depth / (fill_m > 0 ? fill_m : 1e-9));
        printf("  %-28s %12s\n", "peak RSS", cli_human_bytes((double)peak, b2, sizeof b2));
        printf("  %-28s %12s\n", "current RSS", cli_human_bytes((double)cur, b3, sizeof b3));
        printf("  %-28s %12s\n", "KV cache", cli_human_bytes((double)kvb, b4, sizeof b4));
        printf("  %-28s %12s\n", "KV bytes per extra token", cli_human_bytes((double)kv_tok, b5, sizeof b5));
        if (json) {
            printf("{\"model\":");
            cli_json_str(model_path);
            printf(",\"variant\":");
            cli_json_str(info.variant);
            printf(",\"type\":");
            cli_json_str(type);
            printf(",\"types\":{");
            for (int t = 0, k = 0; t < G4_TYPE_COUNT; t++)
                if (wf.per_type[t]) printf("%s\"%s\":%llu", k++ ? "," : "", g4_type_name(t), (unsigned long long)wf.per_type[t]);
            printf("},\"file_bytes\":%llu,\"weight_bytes\":%llu,\"streamed_bytes_per_token\":%llu",
                   (unsigned long long)info.file_bytes, (unsigned long long)info.weight_bytes,
                   (unsigned long long)wf.streamed);
            printf(",\"repacked_bytes\":%llu,\"n_repacked\":%d", (unsigned long long)after.repacked_bytes, after.n_repacked);
            printf(",\"threads\":%d,\"isa\":", n_threads);
            cli_json_str(isa);
            printf(",\"cpu\":");
            cli_json_str(cpu);
            printf(",\"kv_type\":");
            cli_json_str(kvs);
            printf(",\"kv_layers\":");
            cli_json_str(kvsum);
            printf(",\"top\":%ld", top);
            printf(",\"fill\":\"%s\",\"n_ctx\":%ld,\"n_prompt\":%ld,\"n_gen\":%ld,\"depth\":%ld,\"reps\":%ld", fill_random ? "random" : "eval", n_ctx, n_prompt,
                   n_gen, depth, reps);
            printf(",\"parallel\":%ld,\"tg_parallel_tok_s\":%.4f", parallel, parallel > 1 ? tgp_m : tg_m);
            printf(",\"pp_tok_s\":%.4f,\"tg_tok_s\":%.4f,\"ttft_s\":%.6f,\"load_s\":%.6f", pp_m, tg_m, ttft_m, load_s);
            printf(",\"peak_rss_bytes\":%llu,\"rss_bytes\":%llu,\"kv_bytes\":%llu,\"kv_bytes_per_token\":%llu",
                   (unsigned long long)peak, (unsigned long long)cur, (unsigned long long)kvb, (unsigned long long)kv_tok);
            printf(",\"pp_runs\":[");
            for (int r = 0; r < reps; r++) printf("%s%.4f", r ? "," : "", pp[r]);
            printf("],\"tg_runs\":[");
            for (int r = 0; r < reps; r++) printf("%s%.4f", r ? "," : "", tg[r]);
            printf("],\"engine\":\"g4 %s\"}\n", G4_VERSION);
        }
        if (!cli_stdout_flush(NULL)) goto done;
    }
    rc = 0;
    goto done;
eval_failed:
    if (err.code == G4_ERR_INTERRUPTED || interrupted) {
        fprintf(stderr, "\ng4: bench interrupted\n");
        rc = 130;
    } else fprintf(stderr, "g4: %s\n", err.msg);
done:
    for (long q = 0; seqs && q < parallel; q++) g4_seq_free(seqs[q]);
    free(seqs);
    free(be);
    free(plogits);
    free(ids);
    free(top_ids);
    free(logits);
    g4_ctx_free(c);
    g4_model_free(m);
    return rc;
}
