#include "cli.h"
#include "g4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

