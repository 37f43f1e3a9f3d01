/* g4 info: everything g4 knows about a GGUF file and the Gemma 4 model in it. */
#include "cli.h"
#include "g4.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/types.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: g4 info MODEL [--ctx N] [--kv SPEC] [--no-tensors] [--no-metadata]\n"
    "\n"
    "Prints the architecture, every hyper-parameter, the per-layer structure, the metadata, the\n"
    "tensor table (type, shape, bytes) and the memory needed: weights, and KV cache for N tokens\n"
    "of context (default: 4096 and the model's training context) with the KV cache types of --kv\n"
    "(default f16; see g4 bench --help for SPEC).\n";

static void print_str(const char *s, uint64_t len, uint64_t max) {
    putchar('"');
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 32 || ch == 127) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('"');
    if (len > max) printf("... (%llu bytes)", (unsigned long long)len);
}

static void print_scalar(int type, const gguf_kv *kv, uint64_t i) {
    if (type == GGUF_FLOAT32 || type == GGUF_FLOAT64)
        printf("%g", kv->type == GGUF_ARRAY ? gguf_arr_f64(kv, i) : gguf_kv_f64(kv));
    else if (type == GGUF_BOOL)
        printf("%s", (kv->type == GGUF_ARRAY ? gguf_arr_i64(kv, i) : (int64_t)gguf_kv_u64(kv)) ? "true" : "false");
    else if (type == GGUF_UINT64)
        printf("%llu", (unsigned long long)(kv->type == GGUF_ARRAY ? (uint64_t)gguf_arr_i64(kv, i) : gguf_kv_u64(kv)));
    else
        printf("%lld", (long long)(kv->type == GGUF_ARRAY ? gguf_arr_i64(kv, i) : (int64_t)gguf_kv_u64(kv)));
}

static void print_metadata(const gguf_file *f) {
    printf("\nmetadata (%llu keys):\n", (unsigned long long)f->n_kv);
    for (uint64_t k = 0; k < f->n_kv; k++) {
        const gguf_kv *kv = &f->kv[k];
        printf("  %-48s ", kv->key);
        if (kv->type == GGUF_STRING) {
            uint64_t len;
            memcpy(&len, kv->data, 8);
            printf("str    ");
            print_str((const char *)kv->data + 8, len, 60);
        } else if (kv->type == GGUF_ARRAY) {
            printf("%s[%llu] [", gguf_vtype_name(kv->arr_type), (unsigned long long)kv->arr_n);
            uint64_t show = kv->arr_n < 8 ? kv->arr_n : 8;
            for (uint64_t i = 0; i < show; i++) {
                if (i) fputs(", ", stdout);
                if (kv->arr_type == GGUF_STRING) {
                    uint64_t len;
                    const char *s = gguf_arr_str(kv, i, &len);
                    print_str(s, len, 24);
                } else {
                    print_scalar(kv->arr_type, kv, i);
                }
            }
            printf("%s]", kv->arr_n > show ? ", ..." : "");
        } else {
            printf("%-6s ", gguf_vtype_name(kv->type));
            print_scalar(kv->type, kv, 0);
        }
        putchar('\n');
        if (!cli_stdout_ok(NULL)) return; /* stop at the first failed write */
    }
}

static void print_tensors(const gguf_file *f) {
    char b[32];
    printf("\ntensors (%llu):\n", (unsigned long long)f->n_tensors);
    printf("  %-36s %-6s %-28s %14s %12s\n", "name", "type", "shape", "offset", "bytes");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char shape[64];
        int j = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->n_dims; d++) j += snprintf(shape + j, sizeof shape - (size_t)j, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        snprintf(shape + j, sizeof shape - (size_t)j, "]");
        const char *tn = g4_type_name(t->type);
        printf("  %-36s %-6s %-28s %14llu %12llu\n", t->name, tn ? tn : "?", shape,
               (unsigned long long)(f->data_offset + t->offset), (unsigned long long)t->nbytes);
        if (!cli_stdout_ok(NULL)) return;
    }
    /* bytes per type */
    uint64_t per_type[G4_TYPE_COUNT] = {0};
    int count[G4_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].type >= 0 && f->tensors[i].type < G4_TYPE_COUNT) {
            per_type[f->tensors[i].type] += f->tensors[i].nbytes;
            count[f->tensors[i].type]++;
        }
    printf("\nbytes by type:\n");
    for (int t = 0; t < G4_TYPE_COUNT; t++)
        if (count[t]) printf("  %-6s %4d tensors %14llu bytes (%s)\n", g4_type_name(t), count[t], (unsigned long long)per_type[t], cli_human_bytes((double)per_type[t], b, sizeof b));
}

static void print_layout(const gguf_file *f) {
    uint64_t pad_header = f->data_offset - f->header_bytes;
    uint64_t data_section = f->size >= f->data_offset ? f->size - f->data_offset : 0;
    uint64_t pad_data = data_section - f->data_bytes;
    printf("\nfile layout:\n");
    printf("  header, metadata and tensor infos %14llu bytes\n", (unsigned long long)f->header_bytes);
    printf("  alignment padding (%llu)          %14llu bytes\n", (unsigned long long)f->alignment, (unsigned long long)(pad_header + pad_data));
    printf("  tensor data                       %14llu bytes\n", (unsigned long long)f->data_bytes);
    printf("  total                             %14llu bytes (file: %llu bytes%s)\n",
           (unsigned long long)(f->header_bytes + pad_header + pad_data + f->data_bytes), (unsigned long long)f->size,
           f->header_bytes + pad_header + pad_data + f->data_bytes == f->size ? ", all accounted for" : ", MISMATCH");
}

static void print_model(const g4_model *m, long n_ctx, const g4_ctx_params *kv) {
    g4_model_info in;
    char b1[32], b2[32];
    g4_model_get_info(m, &in);
    printf("\nmodel: Gemma 4 (%s), architecture '%s'\n", in.variant, in.arch);
    printf("  vocabulary               %d\n", in.n_vocab);
    printf("  embedding width          %d\n", in.n_embd);
    printf("  layers                   %d\n", in.n_layer);
    printf("  query heads              %d\n", in.n_head);
    printf("  head dim sliding / full  %d / %d\n", in.head_dim_swa, in.head_dim_full);
    printf("  sliding window           %d\n", in.sliding_window);
    printf("  RoPE base sliding / full %g / %g\n", in.rope_base_swa, in.rope_base);
    printf("  RMS norm eps             %g\n", in.rms_eps);
    printf("  final logit softcap      %g\n", in.final_logit_softcap);
    printf("  training context         %d\n", in.n_ctx_train);
    printf("  per-layer embeddings     %s", in.n_embd_per_layer ? "" : "none\n");
    if (in.n_embd_per_layer) printf("%d per layer (table %d x %d, gathered a row per token)\n", in.n_embd_per_layer, in.n_vocab, in.n_embd_per_layer * in.n_layer);
    printf("  KV-shared layers         %d\n", in.n_kv_shared);
    if (in.n_expert) printf("  experts                  %d, %d used per token, width %d\n", in.n_expert, in.n_expert_used, in.n_ff_exp);
    printf("\n  layer  kind     head_dim  kv_heads  ffn    kv_from  v\n");
    for (int l = 0; l < in.n_layer; l++) {
        g4_layer_info li;
        g4_model_get_layer(m, l, &li);
        printf("  %5d  %-7s  %8d  %8d  %-6d %7s  %s%s\n", l, li.is_swa ? "sliding" : "full", li.head_dim, li.n_head_kv, li.n_ff,
               li.kv_src == l ? "own" : (snprintf(b1, sizeof b1, "%d", li.kv_src), b1), li.has_v ? "attn_v" : "K=V",
               li.is_moe ? "  +MoE" : "");
    }
    printf("\nmemory:\n");
    printf("  weights (mapped)         %s\n", cli_human_bytes((double)in.weight_bytes, b1, sizeof b1));
    long ctxs[2] = {n_ctx, in.n_ctx_train};
    for (int i = 0; i < 2; i++) {
        if (i && ctxs[1] == ctxs[0]) break;
        uint64_t kvb = g4_model_kv_bytes_params(m, (int)ctxs[i], kv);
        char spec[256];
        g4_kv_spec_string(kv, spec, sizeof spec);
        printf("  KV cache %s, %7ld tok %s\n", spec, ctxs[i], cli_human_bytes((double)kvb, b2, sizeof b2));
    }
    char sum[512];
    g4_error err = {0};
    g4_kv_type tk, tv;
    if (g4_kv_layer_types(m, kv, 0, &tk, &tv, &err)) printf("  KV cache settings: %s\n", err.msg);
    else printf("  KV cache types           %s\n", cli_kv_summary(m, kv, sum, sizeof sum));
}

int g4_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    long n_ctx = 4096;
    int show_tensors = 1, show_meta = 1;
    g4_ctx_params kv = g4_ctx_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--ctx") && i + 1 < argc) {
            if (!cli_parse_int(argv[++i], 1, 1 << 24, &n_ctx)) cli_die_usage(usage, "bad --ctx '%s'", argv[i]);
        } else if (!strcmp(a, "--kv") && i + 1 < argc) cli_kv_option(usage, argv[++i], &kv);
        else if (!strcmp(a, "--no-tensors")) show_tensors = 0;
        else if (!strcmp(a, "--no-metadata")) show_meta = 0;
        else if (a[0] == '-') cli_die_usage(usage, "unknown or incomplete option '%s'", a);
        else if (!path) path = a;
        else cli_die_usage(usage, "unexpected argument '%s'", a);
    }
    if (!path) cli_die_usage(usage, "no model given");
    g4_error err = {0};
    gguf_file *f;
    if (gguf_open(&f, path, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    printf("file: %s\n  GGUF version %u, %llu metadata keys, %llu tensors, %llu bytes\n", path, f->version,
           (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, (unsigned long long)f->size);
    if (show_meta && cli_stdout_ok(NULL)) print_metadata(f);
    if (show_tensors && cli_stdout_ok(NULL)) print_tensors(f);
    if (cli_stdout_ok(NULL)) print_layout(f);
    gguf_close(f);
    if (!cli_stdout_flush(NULL)) return 1;
    g4_model *m;
    if (g4_model_open(&m, path, &err)) {
        fprintf(stderr, "g4: not a runnable Gemma 4 model: %s\n", err.msg);
        return 1;
    }
    print_model(m, n_ctx, &kv);
    g4_model_free(m);
    return cli_stdout_flush(NULL) ? 0 : 1;
}
