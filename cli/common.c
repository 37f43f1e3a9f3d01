#include "cli.h"
#include "g4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_die_usage(const char *usage, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("g4: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (usage) fputs(usage, stderr);
    exit(2);
}

int cli_parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

const char *cli_human_bytes(double b, char *buf, int n) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, (size_t)n, i ? "%.2f %s" : "%.0f %s", b, u[i]);
    return buf;
}

void cli_kv_option(const char *usage, const char *spec, g4_ctx_params *p) {
    g4_error err = {0};
    if (g4_kv_parse(spec, p, &err)) cli_die_usage(usage, "--kv: %s", err.msg);
}

const char *cli_kv_summary(const g4_model *m, const g4_ctx_params *p, char *buf, int n) {
    g4_model_info info;
    g4_model_get_info(m, &info);
    /* owning layers grouped by (K, V): how many sliding, how many full */
    int key[64][2], cnt[64][2], nk = 0;
    buf[0] = 0;
    for (int l = 0; l < info.n_layer; l++) {
        g4_layer_info li;
        g4_model_get_layer(m, l, &li);
        if (li.kv_src != l) continue;
        g4_kv_type k, v;
        if (g4_kv_layer_types(m, p, l, &k, &v, NULL)) return buf;
        int i = 0;
        while (i < nk && !(key[i][0] == (int)k && key[i][1] == (int)v)) i++;
        if (i == nk) {
            if (nk == 64) continue;
            key[nk][0] = (int)k, key[nk][1] = (int)v, cnt[nk][0] = cnt[nk][1] = 0, nk++;
        }
        cnt[i][li.is_swa ? 0 : 1]++;
    }
    int w = 0;
    for (int i = 0; i < nk && w < n; i++) {
        char t[32], where[64];
        if (key[i][0] == key[i][1]) snprintf(t, sizeof t, "%s", g4_kv_type_name((g4_kv_type)key[i][0]));
        else snprintf(t, sizeof t, "k=%s,v=%s", g4_kv_type_name((g4_kv_type)key[i][0]), g4_kv_type_name((g4_kv_type)key[i][1]));
        const int s = cnt[i][0], f = cnt[i][1];
        if (s && f) snprintf(where, sizeof where, "%d sliding + %d full-attention layers", s, f);
        else snprintf(where, sizeof where, "%d %s layer%s", s + f, s ? "sliding" : "full-attention", s + f > 1 ? "s" : "");
        int r = snprintf(buf + w, (size_t)(n - w), "%s%s on %s", i ? ", " : "", t, where);
        if (r < 0) break;
        w += r;
    }
    return buf;
}

void cli_json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 32) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}


static int g_out_errno; /* first failure on stdout, reported */
static int out_failed(const char *what, int e);

int cli_stdout_fail(const char *what, int e) { return out_failed(what, e); }

static int out_failed(const char *what, int e) {
    if (!g_out_errno) {
        g_out_errno = e ? e : EIO;
        fprintf(stderr, "g4: writing %s failed: %s\n", what ? what : "to standard output", strerror(g_out_errno));
    }
    return 0;
}

int cli_stdout_ok(const char *what) {
    int e = errno; /* of the write just made, when it failed */
    if (g_out_errno) return 0;
    return ferror(stdout) ? out_failed(what, e) : 1;
}

int cli_stdout_flush(const char *what) {
    int e0 = errno;
    if (g_out_errno) return 0;
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 1;
    return out_failed(what, errno ? errno : e0);
}

int cli_stdout_errno(void) { return g_out_errno; }

/* ---- models by name: the store (src/store, docs/models.md) ---- */

#include "sampler/sampler.h"
#include "store/store.h"

g4_store_model *cli_resolve_model(const char *name_or_path, const char *models_dir) {
    g4_error err = {0};
    g4_store *st = NULL;
    /* a path needs no store; a name does (an unusable store directory is an error only then) */
    if (!g4_name_is_path(name_or_path) && g4_store_open(&st, models_dir, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return NULL;
    }
    g4_store_model *m = NULL;
    if (g4_store_resolve(st, name_or_path, &m, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        m = NULL;
    }
    g4_store_close(st);
    return m;
}

static int model_num(const g4_store_model *m, const char *name, double *v) {
    json_t *x = m ? json_object_get(m->params, name) : NULL;
    if (!json_is_number(x)) return 0;
    *v = json_number_value(x);
    return 1;
}

int cli_model_int(const g4_store_model *m, const char *name, long long *v) {
    json_t *x = m ? json_object_get(m->params, name) : NULL;
    if (!json_is_integer(x)) return 0;
    *v = (long long)json_integer_value(x);
    return 1;
}

void cli_model_sampling(const g4_store_model *m, g4_sampler_params *sp) {
    double d;
    long long i;
    if (model_num(m, "temperature", &d)) sp->temperature = (float)d;
    if (cli_model_int(m, "top_k", &i)) sp->top_k = (int)i;
    if (model_num(m, "top_p", &d)) sp->top_p = (float)d;
    if (model_num(m, "min_p", &d)) sp->min_p = (float)d;
    if (model_num(m, "repeat_penalty", &d)) sp->repeat_penalty = (float)d;
    if (model_num(m, "presence_penalty", &d)) sp->presence_penalty = (float)d;
    if (model_num(m, "frequency_penalty", &d)) sp->frequency_penalty = (float)d;
    if (cli_model_int(m, "repeat_last_n", &i)) sp->penalty_last_n = (int)i;
    if (cli_model_int(m, "seed", &i) && i >= 0) sp->seed = (uint64_t)i;
}

int cli_model_stops(const g4_store_model *m, const char **stops, int max) {
    json_t *a = m ? json_object_get(m->params, "stop") : NULL;
    int n = 0;
    for (size_t i = 0; i < json_array_size(a) && n < max; i++)
        if (json_is_string(json_array_get(a, i))) stops[n++] = json_string_value(json_array_get(a, i));
    return n;
}
