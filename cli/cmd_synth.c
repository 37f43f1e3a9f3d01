/* g4 synth: write a random-weight Gemma 4 GGUF of a variant's shape (src/synth/synth.h). */
#include "cli.h"
#include "g4.h"
#include "quant/types.h"
#include "synth/synth.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: g4 synth --variant e2b|e4b|26b-a4b|31b --out FILE [--scale tiny|full]\n"
    "                [--type f32|f16|bf16|q8_0|q4_0] [--seed N] [--quiet] [--dry-run]\n"
    "\n"
    "Writes a Gemma 4 GGUF file with random (seeded) weights: the exact metadata keys, tensor names\n"
    "and shapes of the variant as llama.cpp's gemma4 architecture stores them, a small BPE tokenizer,\n"
    "and weights drawn so that the random network is stable (oracle pack recipe).\n"
    "\n"
    "  --variant V   e2b, e4b, 26b-a4b (MoE) or 31b\n"
    "  --scale S     tiny (default): a small proportional model with every structural feature\n"
    "                (vocab 512, a few layers, PLE, KV sharing, MoE, K=V...), runs in milliseconds;\n"
    "                full: the real dimensions (262144 vocab; E2B q4_0 is about 3 GB)\n"
    "  --type T      weight type of the matrices (default f32); norms, 1-D tensors, the MoE router and\n"
    "                per_layer_model_proj stay f32; rows that do not fit a block fall back to f16\n"
    "                (k-quants: q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, as llama-quantize); q4_1,\n"
    "                q5_0, q5_1, q4_k, q5_k, q6_k also work\n"
    "  --seed N      random seed (default 42); the output is a function of variant, scale, type, seed\n"
    "  --out FILE    output path (written to FILE.tmp, then renamed; an existing FILE must be a\n"
    "                regular file: a device, directory or symbolic link is not replaced)\n"
    "  --quiet       no progress on stderr\n"
    "  --dry-run     print the tensor count and file size, write nothing (--out not needed)\n";

typedef struct progress_state {
    double t0, last;
    int shown;
    int tty;  /* stderr is a terminal: redraw one line; else a line every 10 s */
} progress_state;

/* percentage and MB/s on stderr, at most 4 times a second, only for writes longer than half a second */
static void show_progress(void *user, uint64_t done, uint64_t total) {
    progress_state *ps = user;
    double now = g4_time_s();
    if (!ps->shown && now - ps->t0 < 0.5) return;
    if (done < total && now - ps->last < (ps->tty ? 0.25 : 10.0)) return;
    ps->last = now;
    double dt = now - ps->t0 > 1e-9 ? now - ps->t0 : 1e-9;
    double mb = (double)done / 1e6;
    fprintf(stderr, "%ssynth: %5.1f%%  %9.1f / %.1f MB  %7.1f MB/s  %6.1f s", ps->tty ? "\r" : "",
            total ? 100.0 * (double)done / (double)total : 100.0, mb, (double)total / 1e6, mb / dt, dt);
    if (done >= total || !ps->tty) fputc('\n', stderr);
    ps->shown = 1;
    fflush(stderr);
}

int g4_cmd_synth(int argc, char **argv) {
    const char *variant = NULL, *scale = "tiny", *type = "f32", *out = NULL;
    unsigned long long seed = 42;
    int quiet = 0, dry_run = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            dry_run = 1;
            continue;
        }
        if (i + 1 >= argc) cli_die_usage(usage, "synth: option %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--variant")) variant = v;
        else if (!strcmp(a, "--scale")) scale = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 0);
            if (errno || end == v || *end || v[0] == '-') cli_die_usage(usage, "synth: bad --seed '%s'", v);
        } else {
            cli_die_usage(usage, "synth: unknown option '%s'", a);
        }
    }
    if (!variant) cli_die_usage(usage, "synth: --variant is required");
    if (!out && !dry_run) cli_die_usage(usage, "synth: --out is required");

    g4_synth_params p;
    memset(&p, 0, sizeof p);
    int vi = g4_synth_variant_from_name(variant);
    if (vi < 0) cli_die_usage(usage, "synth: unknown variant '%s' (e2b, e4b, 26b-a4b, 31b)", variant);
    int si = g4_synth_scale_from_name(scale);
    if (si < 0) cli_die_usage(usage, "synth: unknown scale '%s' (tiny, full)", scale);
    int ti = g4_type_from_name(type);
    if (ti < 0) cli_die_usage(usage, "synth: unknown type '%s' (f32, f16, bf16, q8_0, q4_0)", type);
    p.variant = (g4_synth_variant)vi;
    p.scale = (g4_synth_scale)si;
    p.type = ti;
    p.seed = seed;
    p.out = out;
    p.dry_run = dry_run;

    g4_types_init();
    progress_state ps = {g4_time_s(), 0.0, 0, isatty(2)};
    if (!quiet) {
        p.progress = show_progress;
        p.progress_user = &ps;
    }
    g4_error err = {G4_OK, ""};
    uint64_t n_tensors = 0, bytes = 0;
    g4_status st = g4_synth_ex(&p, &n_tensors, &bytes, &err);
    if (st != G4_OK) {
        if (ps.shown) fputc('\n', stderr);
        fprintf(stderr, "g4: %s\n", err.msg[0] ? err.msg : g4_status_str(st));
        return 1;
    }
    char hb[32];
    if (dry_run) {
        printf("%s %s %s: %llu tensors, %llu bytes (%s)\n", variant, scale, type, (unsigned long long)n_tensors,
               (unsigned long long)bytes, cli_human_bytes((double)bytes, hb, sizeof hb));
        return cli_stdout_flush(NULL) ? 0 : 1;
    }
    if (!quiet)
        fprintf(stderr, "synth: wrote %s (%s %s %s, seed %llu): %llu tensors, %s in %.1f s\n", out, variant, scale,
                type, seed, (unsigned long long)n_tensors, cli_human_bytes((double)bytes, hb, sizeof hb),
                g4_time_s() - ps.t0);
    return 0;
}
