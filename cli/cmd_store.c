/* g4 create / list / show / rm / cp: the local model store (src/store, docs/models.md). */
#include "cli.h"
#include "g4.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MODELS_HELP                                                                                                    \
    "  --models DIR     the model store (default $G4_MODELS, else $XDG_DATA_HOME/g4/models,\n"                        \
    "                   else ~/.local/share/g4/models)\n"

static const char *usage_create =
    "usage: g4 create NAME [-f Modelfile] [--copy] [--models DIR] [-q]\n"
    "\n"
    "Makes model NAME ([namespace/]model[:tag], tag latest by default) from a Modelfile (default:\n"
    "./Modelfile): FROM a GGUF file (relative to the Modelfile's directory) or an existing model,\n"
    "PARAMETER, SYSTEM, MESSAGE, LICENSE, TEMPLATE (kept for reference: g4 renders Gemma 4's chat\n"
    "format itself). The GGUF is hard-linked into the store when it is on the same filesystem, else\n"
    "copied; the original is never changed. See docs/models.md.\n"
    "\n"
    "  -f, --file FILE  the Modelfile\n"
    "  --copy           copy the GGUF even when a hard link is possible\n"
    "  -q, --quiet      no progress\n" MODELS_HELP;

static const char *usage_list = "usage: g4 list [--json] [--models DIR]   (alias: g4 ls)\n"
                                "\n"
                                "The stored models: NAME, ID (the first 12 digits of the manifest's SHA-256), SIZE,\n"
                                "MODIFIED. --json prints Ollama's /api/tags body.\n" MODELS_HELP;

static const char *usage_show =
    "usage: g4 show MODEL [--modelfile | --parameters | --system | --template | --license | --json] [-v]\n"
    "\n"
    "What a stored model (or a GGUF file) is: architecture, parameters, context length, quantization,\n"
    "capabilities, stored parameters, system prompt, license. -v adds the GGUF metadata; --json prints\n"
    "Ollama's /api/show body.\n" MODELS_HELP;

static const char *usage_rm = "usage: g4 rm MODEL [MODEL...] [--models DIR]\n"
                              "\n"
                              "Removes models; a GGUF blob goes when no model uses it any more (your original file\n"
                              "is never touched).\n" MODELS_HELP;

static const char *usage_cp = "usage: g4 cp SOURCE DESTINATION [--models DIR]\n"
                              "\n"
                              "Another name for a stored model (same GGUF, same settings).\n" MODELS_HELP;

static g4_store *open_store(const char *dir) {
    g4_store *s;
    g4_error err = {0};
    if (g4_store_open(&s, dir, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return NULL;
    }
    return s;
}

/* ---- create ---- */

typedef struct prog {
    int quiet, tty;
    char last[64];
    int last_pct;
} prog;

static void on_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    prog *p = user;
    if (p->quiet) return;
    int same = !strcmp(p->last, status);
    if (total) {
        int pct = (int)(100.0 * (double)done / (double)total);
        if (p->tty) {
            char h1[32], h2[32];
            fprintf(stderr, "\r%s %3d%% (%s / %s)\033[K", status, pct, cli_human_bytes((double)done, h1, sizeof h1),
                    cli_human_bytes((double)total, h2, sizeof h2));
            if (done >= total) fputc('\n', stderr);
        } else if (!same || (done >= total && p->last_pct != 100)) {
            if (done >= total) fprintf(stderr, "%s 100%%\n", status);
            else if (!same) fprintf(stderr, "%s\n", status);
        }
        p->last_pct = done >= total ? 100 : pct;
    } else if (!same) {
        fprintf(stderr, "%s\n", status);
    }
    snprintf(p->last, sizeof p->last, "%s", status);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            if (cap > G4_MODELFILE_MAX_BYTES + 2) break;
            char *q = realloc(b, cap * 2);
            if (!q) break;
            b = q, cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) break;
            fclose(f);
            b[n] = 0;
            *len = n;
            return b;
        }
    }
    free(b);
    fclose(f);
    errno = errno ? errno : ENOMEM;
    return NULL;
}

int g4_cmd_create(int argc, char **argv) {
    const char *name = NULL, *file = NULL, *dir = NULL;
    int flags = 0;
    prog p = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_create, stdout);
            return 0;
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && more) file = argv[++i];
        else if (!strcmp(a, "--models") && more) dir = argv[++i];
        else if (!strcmp(a, "--copy")) flags |= G4_CREATE_COPY;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) p.quiet = 1;
        else if (a[0] == '-' && a[1]) cli_die_usage(usage_create, "unknown or incomplete option '%s'", a);
        else if (!name) name = a;
        else cli_die_usage(usage_create, "unexpected argument '%s'", a);
    }
    if (!name) cli_die_usage(usage_create, "no model name given");
    if (!file) file = "Modelfile";
    g4_error err = {0};
    g4_model_name n;
    if (g4_name_parse(name, strlen(name), &n, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    size_t len;
    char *text = read_file(file, &len);
    if (!text) {
        fprintf(stderr, "g4: cannot read the Modelfile '%s': %s\n", file, strerror(errno));
        return 1;
    }
    g4_modelfile *mf;
    if (g4_modelfile_parse(text, len, &mf, &err)) {
        fprintf(stderr, "g4: %s: %s\n", file, err.msg);
        free(text);
        return 1;
    }
    free(text);
    g4_store *s = open_store(dir);
    if (!s) {
        g4_modelfile_free(mf);
        return 1;
    }
    const char *sl = strrchr(file, '/');
    char base[4096];
    snprintf(base, sizeof base, "%.*s", sl ? (int)(sl - file) : 1, sl ? file : ".");
    if (sl == file) snprintf(base, sizeof base, "/");
    p.tty = isatty(2);
    if (mf->tmpl && !p.quiet)
        fprintf(stderr, "note: TEMPLATE is kept for reference only; g4 renders Gemma 4's chat format itself\n");
    if (mf->renderer && !p.quiet) fprintf(stderr, "note: RENDERER is kept for reference only (g4 renders Gemma 4)\n");
    if (mf->parser && !p.quiet) fprintf(stderr, "note: PARSER is kept for reference only (g4 parses Gemma 4)\n");
    int rc = 0;
    if (g4_store_create(s, name, mf, base, flags, on_progress, &p, &err)) {
        if (p.tty && p.last_pct && p.last_pct < 100) fputc('\n', stderr);
        fprintf(stderr, "g4: %s\n", err.msg);
        rc = 1;
    }
    g4_modelfile_free(mf);
    g4_store_close(s);
    return rc;
}

/* ---- list ---- */

/* Ollama's size column: decimal units */
static const char *human_size(uint64_t b, char *buf, size_t n) {
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000 && i < 4) v /= 1000, i++;
    if (i == 0) snprintf(buf, n, "%llu B", (unsigned long long)b);
    else if (v >= 10) snprintf(buf, n, "%d %s", (int)v, u[i]);
    else snprintf(buf, n, "%.1f %s", v, u[i]);
    return buf;
}

static const char *human_ago(int64_t t, char *buf, size_t n) {
    long long d = (long long)time(NULL) - t;
    if (d < 0) d = 0;
    if (d < 1) snprintf(buf, n, "Less than a second ago");
    else if (d < 60) snprintf(buf, n, "%lld second%s ago", d, d == 1 ? "" : "s");
    else if (d < 120) snprintf(buf, n, "About a minute ago");
    else if (d < 3600) snprintf(buf, n, "%lld minutes ago", d / 60);
    else if (d < 7200) snprintf(buf, n, "About an hour ago");
    else if (d < 48 * 3600) snprintf(buf, n, "%lld hours ago", d / 3600);
    else if (d < 14 * 86400) snprintf(buf, n, "%lld days ago", d / 86400);
    else if (d < 60 * 86400) snprintf(buf, n, "%lld weeks ago", d / (7 * 86400));
    else if (d < 730 * 86400) snprintf(buf, n, "%lld months ago", d / (30 * 86400));
    else snprintf(buf, n, "%lld years ago", d / (365 * 86400));
    return buf;
}

int g4_cmd_list(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_list, stdout);
            return 0;
        } else if (!strcmp(a, "--models") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(a, "--json")) json = 1;
        else cli_die_usage(usage_list, "unexpected argument '%s'", a);
    }
    g4_store *s = open_store(dir);
    if (!s) return 1;
    g4_error err = {0};
    int rc = 0;
    if (json) {
        json_t *o;
        if (g4_store_tags_json(s, &o, &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            rc = 1;
        } else {
            char *t = json_dumps(o, JSON_INDENT(2));
            if (t) puts(t);
            else rc = 1;
            free(t);
            json_decref(o);
        }
        g4_store_close(s);
        return rc;
    }
    g4_store_model **v;
    size_t n, bad = 0;
    if (g4_store_list(s, &v, &n, &bad, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        g4_store_close(s);
        return 1;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(v[i]->name) > w) w = (int)strlen(v[i]->name);
    printf("%-*s    %-12s    %-8s    %s\n", w, "NAME", "ID", "SIZE", "MODIFIED");
    for (size_t i = 0; i < n; i++) {
        char sz[32], ago[48];
        printf("%-*s    %.12s    %-8s    %s\n", w, v[i]->name, v[i]->digest, human_size(v[i]->size, sz, sizeof sz),
               human_ago(v[i]->modified, ago, sizeof ago));
    }
    if (bad) fprintf(stderr, "g4: %zu manifest%s in %s could not be read\n", bad, bad == 1 ? "" : "s", g4_store_dir(s));
    g4_store_list_free(v, n);
    g4_store_close(s);
    return 0;
}

/* ---- show ---- */

static void print_value(const json_t *v, int max_items) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t L = strlen(s);
        putchar('"');
        for (size_t i = 0; i < L && i < 200; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\n') fputs("\\n", stdout);
            else if (c < 32) printf("\\x%02x", c);
            else putchar(c);
        }
        putchar('"');
        if (L > 200) printf("... (%zu bytes)", L);
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v);
        putchar('[');
        for (size_t i = 0; i < n && (int)i < max_items; i++) {
            if (i) fputs(", ", stdout);
            print_value(json_array_get(v, i), max_items);
        }
        if ((int)n > max_items) printf(", ... (%zu values)", n);
        putchar(']');
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
        if (t) fputs(t, stdout);
        free(t);
    }
}

static void section_text(const char *title, const char *text, int max_lines) {
    if (!text || !*text) return;
    printf("  %s\n", title);
    int lines = 0;
    const char *p = text;
    while (*p && lines < max_lines) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        printf("    %.*s\n", (int)n, p);
        lines++;
        p = e ? e + 1 : p + n;
    }
    if (*p) printf("    ...\n");
    putchar('\n');
}

int g4_cmd_show(int argc, char **argv) {
    const char *name = NULL, *dir = NULL, *only = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_show, stdout);
            return 0;
        } else if (!strcmp(a, "--models") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = 1;
        else if (!strcmp(a, "--modelfile") || !strcmp(a, "--parameters") || !strcmp(a, "--system") ||
                 !strcmp(a, "--template") || !strcmp(a, "--license") || !strcmp(a, "--json")) {
            if (only) cli_die_usage(usage_show, "%s and %s: one at a time", only, a);
            only = a;
        } else if (a[0] == '-' && a[1]) cli_die_usage(usage_show, "unknown or incomplete option '%s'", a);
        else if (!name) name = a;
        else cli_die_usage(usage_show, "unexpected argument '%s'", a);
    }
    if (!name) cli_die_usage(usage_show, "no model given");
    g4_store *s = open_store(dir);
    if (!s) return 1;
    g4_error err = {0};
    json_t *o;
    if (g4_store_show(s, name, verbose || (only && !strcmp(only, "--json") && verbose), &o, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        g4_store_close(s);
        return 1;
    }
    g4_store_close(s);
    const char *field = NULL;
    if (only) {
        if (!strcmp(only, "--json")) {
            char *t = json_dumps(o, JSON_INDENT(2));
            if (t) puts(t);
            free(t);
            json_decref(o);
            return 0;
        }
        field = only + 2;
        const char *t = json_string_value(json_object_get(o, field));
        if (t && *t) {
            fputs(t, stdout);
            if (t[strlen(t) - 1] != '\n') putchar('\n');
        }
        if (!strcmp(field, "template") && t && *t)
            fprintf(stderr, "(%s%s)\n",
                    json_is_true(json_object_get(json_object_get(o, "g4"), "template_from_modelfile"))
                        ? "the Modelfile's TEMPLATE, kept for reference only: "
                        : "the GGUF's chat template; ",
                    "g4 renders Gemma 4's chat format itself");
        json_decref(o);
        return 0;
    }
    json_t *info = json_object_get(o, "model_info"), *det = json_object_get(o, "details");
    const char *arch = json_string_value(json_object_get(info, "general.architecture"));
    char key[128];
    printf("  Model\n");
    printf("    %-20s%s\n", "architecture", arch ? arch : "?");
    printf("    %-20s%s\n", "parameters", json_string_value(json_object_get(det, "parameter_size")));
    if (arch) {
        snprintf(key, sizeof key, "%s.context_length", arch);
        json_t *c = json_object_get(info, key);
        if (c) printf("    %-20s%lld\n", "context length", (long long)json_integer_value(c));
        snprintf(key, sizeof key, "%s.embedding_length", arch);
        if ((c = json_object_get(info, key))) printf("    %-20s%lld\n", "embedding length", (long long)json_integer_value(c));
    }
    printf("    %-20s%s\n", "quantization", json_string_value(json_object_get(det, "quantization_level")));
    const char *parent = json_string_value(json_object_get(det, "parent_model"));
    if (parent && *parent) printf("    %-20s%s\n", "parent model", parent);
    printf("    %-20s%s\n\n", "file", json_string_value(json_object_get(json_object_get(o, "g4"), "path")));
    printf("  Capabilities\n");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "capabilities"), i, e) printf("    %s\n", json_string_value(e));
    putchar('\n');
    const char *params = json_string_value(json_object_get(o, "parameters"));
    section_text("Parameters", params, 1000);
    section_text("System", json_string_value(json_object_get(o, "system")), verbose ? 1000000 : 10);
    json_t *msgs = json_object_get(o, "messages");
    if (json_array_size(msgs)) {
        printf("  Messages\n");
        json_array_foreach(msgs, i, e) {
            printf("    %-10s ", json_string_value(json_object_get(e, "role")));
            print_value(json_object_get(e, "content"), 8);
            putchar('\n');
        }
        putchar('\n');
    }
    if (json_is_true(json_object_get(json_object_get(o, "g4"), "template_from_modelfile")))
        printf("  Template\n    (a TEMPLATE is stored; kept for reference only: g4 renders Gemma 4's chat format itself)\n\n");
    section_text("License", json_string_value(json_object_get(o, "license")), verbose ? 1000000 : 2);
    if (verbose) {
        printf("  Metadata\n");
        const char *k;
        json_object_foreach(info, k, e) {
            printf("    %-44s ", k);
            print_value(e, 8);
            putchar('\n');
        }
        putchar('\n');
    }
    json_decref(o);
    return 0;
}

/* ---- rm, cp ---- */

int g4_cmd_rm(int argc, char **argv) {
    const char *dir = NULL;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_rm, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--models") && i + 1 < argc) dir = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) cli_die_usage(usage_rm, "unknown or incomplete option '%s'", argv[i]);
        else n++;
    }
    if (!n) cli_die_usage(usage_rm, "no model given");
    g4_store *s = open_store(dir);
    if (!s) return 1;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models")) {
            i++;
            continue;
        }
        g4_error err = {0};
        if (g4_store_delete(s, argv[i], &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            rc = 1;
        } else {
            printf("deleted '%s'\n", argv[i]);
        }
    }
    g4_store_close(s);
    return rc;
}

int g4_cmd_cp(int argc, char **argv) {
    const char *dir = NULL, *src = NULL, *dst = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_cp, stdout);
            return 0;
        } else if (!strcmp(a, "--models") && i + 1 < argc) dir = argv[++i];
        else if (a[0] == '-' && a[1]) cli_die_usage(usage_cp, "unknown or incomplete option '%s'", a);
        else if (!src) src = a;
        else if (!dst) dst = a;
        else cli_die_usage(usage_cp, "unexpected argument '%s'", a);
    }
    if (!dst) cli_die_usage(usage_cp, "cp needs a source and a destination");
    g4_store *s = open_store(dir);
    if (!s) return 1;
    g4_error err = {0};
    int rc = 0;
    if (g4_store_copy(s, src, dst, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        rc = 1;
    } else {
        printf("copied '%s' to '%s'\n", src, dst);
    }
    g4_store_close(s);
    return rc;
}
