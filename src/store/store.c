/* The local model store: manifests by name, content-addressed GGUF blobs (layout in store.h and
 * docs/models.md). */
#include "store/store.h"
#include "gguf/gguf.h"
#include "quant/types.h"
#include "store/internal.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
#define COPY_CHUNK ((size_t)4 << 20)
#define STALE_TMP_SECONDS 3600

struct g4_store {
    char *dir;
};

static unsigned g_tmp_counter;

/* ---- small helpers ---- */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* malloc'ed printf; NULL when out of memory */
static char *xfmt(const char *fmt, ...) G4_PRINTF(1, 2);
#include <stdarg.h>
static char *xfmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = malloc((size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static g4_status nomem(g4_error *err) { return g4_fail(err, G4_ERR_NOMEM, "out of memory"); }

static void lower(char *s) {
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

static int is_hex64(const char *s) {
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == 0;
}

/* "sha256:<hex>" / "sha256-<hex>" -> hex; 0 if not such a digest */
static int digest_hex(const char *d, char hex[65]) {
    if (!d || strncmp(d, "sha256", 6) || (d[6] != ':' && d[6] != '-') || strlen(d) != 71 || !is_hex64(d + 7)) return 0;
    memcpy(hex, d + 7, 65);
    return 1;
}

/* mkdir -p of path (absolute or relative), 0755 */
static g4_status mkdirs(const char *path, g4_error *err) {
    char *p = xstrdup(path);
    if (!p) return nomem(err);
    for (char *q = p + 1;; q++) {
        if (*q == '/' || !*q) {
            char c = *q;
            *q = 0;
            if (mkdir(p, 0755) && errno != EEXIST) {
                g4_status st = g4_fail(err, G4_ERR_IO, "cannot create directory '%s': %s", p, strerror(errno));
                free(p);
                return st;
            }
            *q = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(p, &st) || !S_ISDIR(st.st_mode)) {
        g4_status r = g4_fail(err, G4_ERR_IO, "'%s' is not a directory", p);
        free(p);
        return r;
    }
    free(p);
    return G4_OK;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static char *dir_of(const char *path) {
    const char *sl = strrchr(path, '/');
    if (!sl) return xstrdup(".");
    if (sl == path) return xstrdup("/");
    char *d = malloc((size_t)(sl - path) + 1);
    if (d) {
        memcpy(d, path, (size_t)(sl - path));
        d[sl - path] = 0;
    }
    return d;
}

static g4_status write_all(int fd, const void *buf, size_t n, const char *path, g4_error *err) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return g4_fail(err, G4_ERR_IO, "cannot write '%s': %s", path, w < 0 ? strerror(errno) : "short write");
        p += w, n -= (size_t)w;
    }
    return G4_OK;
}

/* a temporary name in dir for a file about to become `base` */
static char *tmp_name(const char *dir, const char *base) {
    return xfmt("%s/.tmp-%s-%ld-%u-%ld", dir, base, (long)getpid(), __atomic_add_fetch(&g_tmp_counter, 1, __ATOMIC_RELAXED),
                (long)time(NULL));
}

/* data -> path atomically: temporary file in the same directory, fsync, rename, fsync of the directory */
static g4_status write_atomic(const char *path, const char *data, size_t n, g4_error *err) {
    char *dir = dir_of(path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *tmp = dir ? tmp_name(dir, base) : NULL;
    if (!tmp) {
        free(dir);
        return nomem(err);
    }
    g4_status st = G4_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = g4_fail(err, G4_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto done;
    }
    st = write_all(fd, data, n, tmp, err);
    if (!st && fsync(fd)) st = g4_fail(err, G4_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno));
    if (close(fd) && !st) st = g4_fail(err, G4_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (!st && rename(tmp, path)) st = g4_fail(err, G4_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (st) unlink(tmp);
    else fsync_dir(dir);
done:
    free(tmp);
    free(dir);
    return st;
}

/* ---- store ---- */

g4_status g4_store_default_dir(char *buf, size_t size, g4_error *err) {
    const char *e = getenv("G4_MODELS");
    int n;
    if (e && *e) n = snprintf(buf, size, "%s", e);
    else if ((e = getenv("XDG_DATA_HOME")) && e[0] == '/') n = snprintf(buf, size, "%s/g4/models", e);
    else if ((e = getenv("HOME")) && *e) n = snprintf(buf, size, "%s/.local/share/g4/models", e);
    else return g4_fail(err, G4_ERR_ARG, "no model directory: set G4_MODELS (or HOME), or give --models DIR");
    if (n < 0 || (size_t)n >= size) return g4_fail(err, G4_ERR_ARG, "the model directory's path is too long");
    return G4_OK;
}

g4_status g4_store_open(g4_store **out, const char *dir, g4_error *err) {
    *out = NULL;
    char buf[PATH_MAX];
    if (!dir || !*dir) {
        g4_status st = g4_store_default_dir(buf, sizeof buf, err);
        if (st) return st;
        dir = buf;
    }
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    if (n + 128 >= PATH_MAX) return g4_fail(err, G4_ERR_ARG, "the model directory's path is too long");
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return g4_fail(err, G4_ERR_IO, "model directory '%s' is not a directory", dir);
    g4_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = malloc(n + 1))) {
        free(s);
        return nomem(err);
    }
    memcpy(s->dir, dir, n);
    s->dir[n] = 0;
    *out = s;
    return G4_OK;
}

void g4_store_close(g4_store *s) {
    if (!s) return;
    free(s->dir);
    free(s);
}

const char *g4_store_dir(const g4_store *s) { return s->dir; }

/* exclusive lock of the store while manifests / blobs are committed or removed; -1 on failure */
static int store_lock(g4_store *s, g4_error *err) {
    if (mkdirs(s->dir, err)) return -1;
    char *p = xfmt("%s/.lock", s->dir);
    if (!p) {
        nomem(err);
        return -1;
    }
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        g4_fail(err, G4_ERR_IO, "cannot open '%s': %s", p, strerror(errno));
        free(p);
        return -1;
    }
    while (flock(fd, LOCK_EX)) {
        if (errno == EINTR) continue;
        g4_fail(err, G4_ERR_IO, "cannot lock '%s': %s", p, strerror(errno));
        close(fd);
        free(p);
        return -1;
    }
    free(p);
    return fd;
}

static void store_unlock(int fd) {
    if (fd >= 0) close(fd); /* releases the flock */
}

static char *manifest_path(const g4_store *s, const g4_model_name *n) {
    char ns[G4_NAME_PART_MAX + 1], m[G4_NAME_PART_MAX + 1], t[G4_NAME_PART_MAX + 1];
    strcpy(ns, n->ns), strcpy(m, n->model), strcpy(t, n->tag);
    lower(ns), lower(m), lower(t);
    return xfmt("%s/manifests/%s/%s/%s.json", s->dir, ns, m, t);
}

static char *blob_path(const g4_store *s, const char *hex) { return xfmt("%s/blobs/sha256-%s", s->dir, hex); }

g4_status g4_store_blob_path(const g4_store *s, const char *digest, char *buf, size_t size, g4_error *err) {
    char hex[65];
    if (!digest_hex(digest, hex)) return g4_fail(err, G4_ERR_ARG, "invalid digest '%.80s' (sha256:<64 hex digits>)", digest ? digest : "");
    int n = snprintf(buf, size, "%s/blobs/sha256-%s", s->dir, hex);
    if (n < 0 || (size_t)n >= size) return g4_fail(err, G4_ERR_ARG, "path too long");
    return G4_OK;
}

int g4_store_blob_has(const g4_store *s, const char *digest) {
    char p[PATH_MAX];
    if (g4_store_blob_path(s, digest, p, sizeof p, NULL)) return -1;
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- GGUF facts: details and model_info ---- */

static const char *const ftype_names[] = {
    [0] = "F32",      [1] = "F16",      [2] = "Q4_0",     [3] = "Q4_1",     [7] = "Q8_0",     [8] = "Q5_0",
    [9] = "Q5_1",     [10] = "Q2_K",    [11] = "Q3_K_S",  [12] = "Q3_K_M",  [13] = "Q3_K_L",  [14] = "Q4_K_S",
    [15] = "Q4_K_M",  [16] = "Q5_K_S",  [17] = "Q5_K_M",  [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS",
    [21] = "Q2_K_S",  [22] = "IQ3_XS",  [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL",  [26] = "IQ3_S",
    [27] = "IQ3_M",   [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS",  [31] = "IQ1_M",   [32] = "BF16",
    [36] = "TQ1_0",   [37] = "TQ2_0",   [38] = "MXFP4_MOE",
};

const char *g4_file_type_name(uint32_t ft) {
    if (ft >= sizeof ftype_names / sizeof ftype_names[0]) return NULL;
    return ftype_names[ft];
}

void g4_param_size_string(uint64_t b, char *buf, size_t size) {
    /* Ollama's format.HumanNumber: decimal units, B with one decimal, M with two, K with none */
    double x;
    if (b >= 1000000000ull) {
        x = (double)b / 1e9;
        if (x == (double)(uint64_t)x) snprintf(buf, size, "%.0fB", x);
        else snprintf(buf, size, "%.1fB", x);
    } else if (b >= 1000000ull) {
        x = (double)b / 1e6;
        if (x == (double)(uint64_t)x) snprintf(buf, size, "%.0fM", x);
        else snprintf(buf, size, "%.2fM", x);
    } else if (b >= 1000) {
        snprintf(buf, size, "%.0fK", (double)b / 1e3);
    } else {
        snprintf(buf, size, "%llu", (unsigned long long)b);
    }
}

/* a GGUF string as a JSON string (invalid UTF-8 replaced by U+FFFD) */
static json_t *json_str_lossy(const char *s, uint64_t n) {
    json_t *v = json_stringn(s, (size_t)n);
    if (v) return v;
    char *b = malloc((size_t)n * 3 + 1);
    if (!b) return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        size_t k = *p ? g4_store_utf8_len(p, e) : 0;
        if (k) {
            memcpy(b + o, p, k);
            o += k, p += k;
        } else {
            memcpy(b + o, "\xef\xbf\xbd", 3);
            o += 3, p++;
        }
    }
    v = json_stringn(b, o);
    free(b);
    return v;
}

static json_t *kv_scalar(int type, const gguf_kv *kv, uint64_t i) {
    int arr = kv->type == GGUF_ARRAY;
    switch (type) {
    case GGUF_FLOAT32:
    case GGUF_FLOAT64: return json_real(arr ? gguf_arr_f64(kv, i) : gguf_kv_f64(kv));
    case GGUF_BOOL: return json_boolean(arr ? gguf_arr_i64(kv, i) : (int64_t)gguf_kv_u64(kv));
    case GGUF_STRING: {
        uint64_t len;
        const char *s;
        if (arr) s = gguf_arr_str(kv, i, &len);
        else memcpy(&len, kv->data, 8), s = (const char *)kv->data + 8;
        return json_str_lossy(s, len);
    }
    case GGUF_UINT64: {
        uint64_t u = arr ? (uint64_t)gguf_arr_i64(kv, i) : gguf_kv_u64(kv);
        return u > (uint64_t)INT64_MAX ? json_real((double)u) : json_integer((json_int_t)u);
    }
    default: return json_integer(arr ? gguf_arr_i64(kv, i) : (int64_t)gguf_kv_u64(kv));
    }
}

static uint64_t n_params(const gguf_file *f) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) n += f->tensors[i].n_elements;
    return n;
}

static g4_status details_of(const gguf_file *f, const char *parent, json_t **out, g4_error *err) {
    const char *arch = NULL;
    uint64_t alen = 0;
    const gguf_kv *kv = gguf_find_kv(f, "general.architecture");
    if (kv && kv->type == GGUF_STRING) memcpy(&alen, kv->data, 8), arch = (const char *)kv->data + 8;
    char family[64] = "unknown";
    if (arch) snprintf(family, sizeof family, "%.*s", (int)(alen < 63 ? alen : 63), arch);
    char psize[32];
    g4_param_size_string(n_params(f), psize, sizeof psize);
    const char *q = NULL;
    uint32_t ft = UINT32_MAX;
    if (!gguf_get_u32(f, "general.file_type", 0, &ft, NULL) && ft != UINT32_MAX) q = g4_file_type_name(ft);
    char qbuf[32];
    if (!q) { /* the type holding most weights */
        uint64_t by[64] = {0};
        for (uint64_t i = 0; i < f->n_tensors; i++)
            if (f->tensors[i].type >= 0 && f->tensors[i].type < 64) by[f->tensors[i].type] += f->tensors[i].n_elements;
        int best = -1;
        for (int t = 0; t < 64; t++)
            if (by[t] && (best < 0 || by[t] > by[best])) best = t;
        const char *nm = best >= 0 ? g4_type_name(best) : NULL;
        snprintf(qbuf, sizeof qbuf, "%s", nm ? nm : "unknown");
        q = qbuf;
    }
    json_t *d = json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "parent_model", parent ? parent : "", "format", "gguf",
                          "family", family, "families", family, "parameter_size", psize, "quantization_level", q);
    if (!d) return nomem(err);
    *out = d;
    return G4_OK;
}

g4_status g4_gguf_details(const char *path, json_t **details, g4_error *err) {
    gguf_file *f;
    g4_status st = gguf_open(&f, path, err);
    if (st) return st;
    st = details_of(f, NULL, details, err);
    gguf_close(f);
    return st;
}

static g4_status model_info_of(const gguf_file *f, int verbose, json_t **out, g4_error *err) {
    json_t *o = json_object();
    if (!o) return nomem(err);
    for (uint64_t k = 0; k < f->n_kv; k++) {
        const gguf_kv *kv = &f->kv[k];
        json_t *v;
        if (kv->type == GGUF_ARRAY) {
            v = json_array();
            if (v && (verbose || kv->arr_n <= 5))
                for (uint64_t i = 0; i < kv->arr_n; i++)
                    if (json_array_append_new(v, kv_scalar(kv->arr_type, kv, i))) {
                        json_decref(v);
                        v = NULL;
                        break;
                    }
        } else {
            v = kv_scalar(kv->type, kv, 0);
        }
        if (!v || json_object_set_new(o, kv->key, v)) {
            json_decref(o);
            return nomem(err);
        }
    }
    if (!json_object_get(o, "general.parameter_count") &&
        json_object_set_new(o, "general.parameter_count", json_integer((json_int_t)n_params(f)))) {
        json_decref(o);
        return nomem(err);
    }
    *out = o;
    return G4_OK;
}

g4_status g4_gguf_model_info(const char *path, int verbose, json_t **info, g4_error *err) {
    gguf_file *f;
    g4_status st = gguf_open(&f, path, err);
    if (st) return st;
    st = model_info_of(f, verbose, info, err);
    gguf_close(f);
    return st;
}

/* ---- manifests ---- */

static g4_status manifest_digest(const json_t *man, char hex[65], g4_error *err) {
    json_t *c = json_deep_copy(man);
    if (!c) return nomem(err);
    json_object_del(c, "name"); /* the ID is what the model is, not what it is called or made from */
    json_object_del(c, "from");
    char *txt = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    if (!txt) return nomem(err);
    g4_sha256_buf_hex(txt, strlen(txt), hex);
    free(txt);
    return G4_OK;
}

static int opt_str(const json_t *o, const char *k, const char **out) {
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v)) return 1;
    if (!json_is_string(v)) return 0;
    *out = json_string_value(v);
    return 1;
}

static int all_strings(const json_t *a) {
    size_t i;
    json_t *e;
    if (!json_is_array(a)) return 0;
    json_array_foreach(a, i, e) if (!json_is_string(e)) return 0;
    return 1;
}

static int valid_messages(const json_t *a) {
    size_t i;
    json_t *e;
    if (!json_is_array(a)) return 0;
    json_array_foreach(a, i, e) {
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "role")) || !json_is_string(json_object_get(e, "content")))
            return 0;
    }
    return 1;
}

static char *dup_or_null(const char *s, int *oom) {
    if (!s) return NULL;
    char *d = xstrdup(s);
    if (!d) *oom = 1;
    return d;
}

/* manifest JSON (as loaded from path, for name n) -> model */
static g4_status model_from_manifest(const g4_store *s, const json_t *man, const g4_model_name *n, const char *mpath,
                                     g4_store_model **out, g4_error *err) {
    *out = NULL;
    json_t *model = json_object_get(man, "model");
    const char *digest = json_string_value(json_object_get(model, "digest"));
    json_t *size = json_object_get(model, "size");
    json_t *params = json_object_get(man, "parameters"), *msgs = json_object_get(man, "messages"),
           *lic = json_object_get(man, "license"), *det = json_object_get(man, "details");
    const char *name, *system, *tmpl, *from, *renderer, *parser, *requires;
    char hex[65];
    if (!json_is_object(man) || json_integer_value(json_object_get(man, "schema_version")) != SCHEMA_VERSION ||
        !digest_hex(digest, hex) || !json_is_integer(size) || json_integer_value(size) < 0 ||
        (params && !json_is_object(params)) || (msgs && !valid_messages(msgs)) || (lic && !all_strings(lic)) ||
        (det && !json_is_object(det)) || !opt_str(man, "name", &name) || !opt_str(man, "system", &system) ||
        !opt_str(man, "template", &tmpl) || !opt_str(man, "from", &from) || !opt_str(man, "renderer", &renderer) ||
        !opt_str(man, "parser", &parser) || !opt_str(man, "requires", &requires))
        return g4_fail(err, G4_ERR_FORMAT, "manifest '%s' is malformed (remove it with g4 rm, or delete the file)", mpath);
    g4_store_model *m = calloc(1, sizeof *m);
    if (!m) return nomem(err);
    int oom = 0;
    /* the stored spelling when it is this name (it always is, unless the file was moved by hand) */
    g4_model_name sn;
    char nbuf[G4_NAME_MAX + 1];
    if (name && !g4_name_parse(name, strlen(name), &sn, NULL) && g4_name_equal(&sn, n)) g4_name_string(&sn, nbuf, sizeof nbuf);
    else g4_name_string(n, nbuf, sizeof nbuf);
    m->name = dup_or_null(nbuf, &oom);
    m->path = blob_path(s, hex);
    oom |= !m->path;
    snprintf(m->blob, sizeof m->blob, "sha256:%s", hex);
    m->size = (uint64_t)json_integer_value(size);
    m->params = params ? json_deep_copy(params) : json_object();
    m->messages = msgs ? json_deep_copy(msgs) : json_array();
    m->license = lic ? json_deep_copy(lic) : json_array();
    m->details = det ? json_deep_copy(det) : json_object();
    oom |= !m->params || !m->messages || !m->license || !m->details;
    m->system = dup_or_null(system, &oom);
    m->tmpl = dup_or_null(tmpl, &oom);
    m->from = dup_or_null(from, &oom);
    m->renderer = dup_or_null(renderer, &oom);
    m->parser = dup_or_null(parser, &oom);
    m->requires = dup_or_null(requires, &oom);
    if (oom) {
        g4_store_model_free(m);
        return nomem(err);
    }
    g4_status st = manifest_digest(man, m->digest, err);
    if (st) {
        g4_store_model_free(m);
        return st;
    }
    struct stat sb;
    if (stat(mpath, &sb) == 0) m->modified = (int64_t)sb.st_mtime;
    *out = m;
    return G4_OK;
}

/* 1 and *man when the manifest exists, 0 when it does not, -1 on error */
static int load_manifest(const char *mpath, json_t **man, g4_error *err) {
    *man = NULL;
    struct stat sb;
    if (stat(mpath, &sb)) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        g4_fail(err, G4_ERR_IO, "cannot read '%s': %s", mpath, strerror(errno));
        return -1;
    }
    json_error_t je;
    *man = json_load_file(mpath, JSON_REJECT_DUPLICATES, &je);
    if (!*man) {
        g4_fail(err, G4_ERR_FORMAT, "manifest '%s' cannot be read: %s", mpath, je.text);
        return -1;
    }
    return 1;
}

void g4_store_model_free(g4_store_model *m) {
    if (!m) return;
    free(m->name);
    free(m->path);
    json_decref(m->params);
    free(m->system);
    free(m->tmpl);
    json_decref(m->messages);
    json_decref(m->license);
    free(m->from);
    free(m->renderer);
    free(m->parser);
    free(m->requires);
    json_decref(m->details);
    free(m);
}

static g4_status not_found(const char *name, g4_error *err) {
    return g4_fail(err, G4_ERR_ARG, "model '%.200s' not found (g4 list shows the models; g4 create makes one)", name);
}

/* name -> manifest JSON (found: 1, missing: 0, error: -1) */
static int find(const g4_store *s, const g4_model_name *n, json_t **man, char **mpath, g4_error *err) {
    *mpath = manifest_path(s, n);
    if (!*mpath) {
        nomem(err);
        return -1;
    }
    return load_manifest(*mpath, man, err);
}

g4_status g4_store_get(g4_store *s, const char *name, g4_store_model **out, g4_error *err) {
    *out = NULL;
    g4_model_name n;
    g4_status st = g4_name_parse(name, strlen(name), &n, err);
    if (st) return st;
    json_t *man;
    char *mp;
    int r = find(s, &n, &man, &mp, err);
    if (r == 1) {
        st = model_from_manifest(s, man, &n, mp, out, err);
        json_decref(man);
    } else {
        st = r == 0 ? not_found(name, err) : err ? err->code : G4_ERR_IO;
    }
    free(mp);
    return st;
}

int g4_store_has(g4_store *s, const char *name) {
    g4_model_name n;
    if (g4_name_parse(name, strlen(name), &n, NULL)) return -1;
    char *mp = manifest_path(s, &n);
    if (!mp) return 0;
    struct stat sb;
    int r = stat(mp, &sb) == 0 && S_ISREG(sb.st_mode);
    free(mp);
    return r;
}

static g4_status file_model(const char *path, g4_store_model **out, g4_error *err) {
    struct stat sb;
    if (stat(path, &sb)) return g4_fail(err, G4_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) {
        const mode_t md = sb.st_mode;
        return g4_fail(err, G4_ERR_IO, "'%s' is not a regular file (%s)", path,
                       S_ISDIR(md) ? "a directory" : S_ISFIFO(md) ? "a FIFO" : S_ISCHR(md) || S_ISBLK(md) ? "a device" :
                       S_ISSOCK(md) ? "a socket" : "not a plain file");
    }
    g4_store_model *m = calloc(1, sizeof *m);
    if (!m) return nomem(err);
    m->is_file = 1;
    m->name = xstrdup(path);
    m->path = xstrdup(path);
    m->size = (uint64_t)sb.st_size;
    m->modified = (int64_t)sb.st_mtime;
    m->params = json_object();
    m->messages = json_array();
    m->license = json_array();
    m->details = json_object();
    if (!m->name || !m->path || !m->params || !m->messages || !m->license || !m->details) {
        g4_store_model_free(m);
        return nomem(err);
    }
    *out = m;
    return G4_OK;
}

static int is_regular(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

g4_status g4_store_resolve(g4_store *s, const char *x, g4_store_model **out, g4_error *err) {
    *out = NULL;
    if (!x || !*x) return g4_fail(err, G4_ERR_ARG, "no model given");
    if (g4_name_is_path(x)) return file_model(x, out, err);
    g4_model_name n;
    g4_error nerr = {0};
    if (g4_name_parse(x, strlen(x), &n, &nerr)) {
        /* not a name: a path that is not there (or not a file) says so */
        if (is_regular(x) || strchr(x, '/')) return file_model(x, out, err);
        if (err) *err = nerr;
        return nerr.code;
    }
    if (s) {
        json_t *man;
        char *mp;
        int r = find(s, &n, &man, &mp, err);
        g4_status st = G4_OK;
        if (r == 1) {
            st = model_from_manifest(s, man, &n, mp, out, err);
            json_decref(man);
            if (!st && !is_regular((*out)->path)) {
                st = g4_fail(err, G4_ERR_IO,
                             "model '%s': its GGUF blob %s is missing (the store was changed by hand; g4 rm it and "
                             "create it again)",
                             (*out)->name, (*out)->path);
                g4_store_model_free(*out);
                *out = NULL;
            }
        } else if (r < 0) {
            st = err ? err->code : G4_ERR_IO;
        }
        free(mp);
        if (r != 0) return st;
    }
    if (is_regular(x)) return file_model(x, out, err);
    return not_found(x, err);
}

/* ---- list ---- */

static int valid_entry(const char *d_name, int is_ns) {
    if (d_name[0] == '.') return 0;
    size_t n = strlen(d_name);
    if (!n || n > G4_NAME_PART_MAX) return 0;
    g4_model_name x;
    char full[G4_NAME_PART_MAX + 8];
    snprintf(full, sizeof full, is_ns ? "%s/m" : "%s", d_name);
    return !g4_name_parse(full, strlen(full), &x, NULL);
}

typedef struct mlist {
    g4_store_model **v;
    size_t n, cap;
} mlist;

static int cmp_model(const void *a, const void *b) {
    return strcasecmp((*(g4_store_model *const *)a)->name, (*(g4_store_model *const *)b)->name);
}

/* calls fn for every manifest file; stops at an error from fn */
typedef g4_status (*walk_fn)(void *user, const g4_model_name *n, const char *mpath, g4_error *err);

static g4_status walk(const g4_store *s, walk_fn fn, void *user, g4_error *err) {
    char *root = xfmt("%s/manifests", s->dir);
    if (!root) return nomem(err);
    DIR *d0 = opendir(root);
    g4_status st = G4_OK;
    if (!d0) {
        if (errno != ENOENT) st = g4_fail(err, G4_ERR_IO, "cannot read '%s': %s", root, strerror(errno));
        free(root);
        return st;
    }
    struct dirent *e0;
    while (!st && (e0 = readdir(d0))) {
        if (!valid_entry(e0->d_name, 1)) continue;
        char *p1 = xfmt("%s/%s", root, e0->d_name);
        DIR *d1 = p1 ? opendir(p1) : NULL;
        if (!p1) st = nomem(err);
        struct dirent *e1;
        while (!st && d1 && (e1 = readdir(d1))) {
            if (!valid_entry(e1->d_name, 0)) continue;
            char *p2 = xfmt("%s/%s", p1, e1->d_name);
            DIR *d2 = p2 ? opendir(p2) : NULL;
            if (!p2) st = nomem(err);
            struct dirent *e2;
            while (!st && d2 && (e2 = readdir(d2))) {
                size_t L = strlen(e2->d_name);
                if (L <= 5 || strcmp(e2->d_name + L - 5, ".json") || L - 5 > G4_NAME_PART_MAX) continue;
                char full[3 * 256 + 8];
                snprintf(full, sizeof full, "%s/%s:%.*s", e0->d_name, e1->d_name, (int)(L - 5), e2->d_name);
                g4_model_name n;
                if (g4_name_parse(full, strlen(full), &n, NULL) || e2->d_name[0] == '.') continue;
                char *mp = xfmt("%s/%s", p2, e2->d_name);
                if (!mp) st = nomem(err);
                else st = fn(user, &n, mp, err);
                free(mp);
            }
            if (d2) closedir(d2);
            free(p2);
        }
        if (d1) closedir(d1);
        free(p1);
    }
    closedir(d0);
    free(root);
    return st;
}

typedef struct list_ctx {
    const g4_store *s;
    mlist l;
    size_t bad;
} list_ctx;

static g4_status list_one(void *user, const g4_model_name *n, const char *mp, g4_error *err) {
    list_ctx *c = user;
    json_t *man;
    g4_error e2;
    if (load_manifest(mp, &man, &e2) != 1) {
        c->bad++;
        return G4_OK;
    }
    g4_store_model *m;
    g4_status st = model_from_manifest(c->s, man, n, mp, &m, &e2);
    json_decref(man);
    if (st == G4_ERR_NOMEM) return nomem(err);
    if (st) {
        c->bad++;
        return G4_OK;
    }
    if (c->l.n == c->l.cap) {
        size_t nc = c->l.cap ? 2 * c->l.cap : 16;
        g4_store_model **v = realloc(c->l.v, nc * sizeof *v);
        if (!v) {
            g4_store_model_free(m);
            return nomem(err);
        }
        c->l.v = v, c->l.cap = nc;
    }
    c->l.v[c->l.n++] = m;
    return G4_OK;
}

g4_status g4_store_list(g4_store *s, g4_store_model ***out, size_t *n, size_t *n_bad, g4_error *err) {
    *out = NULL;
    *n = 0;
    list_ctx c = {s, {0}, 0};
    g4_status st = walk(s, list_one, &c, err);
    if (st) {
        g4_store_list_free(c.l.v, c.l.n);
        return st;
    }
    if (c.l.n) qsort(c.l.v, c.l.n, sizeof *c.l.v, cmp_model);
    *out = c.l.v;
    *n = c.l.n;
    if (n_bad) *n_bad = c.bad;
    return G4_OK;
}

void g4_store_list_free(g4_store_model **m, size_t n) {
    for (size_t i = 0; i < n; i++) g4_store_model_free(m[i]);
    free(m);
}

static void rfc3339(int64_t t, char *buf, size_t size) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, size, "1970-01-01T00:00:00Z");
        return;
    }
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

g4_status g4_store_tags_json(g4_store *s, json_t **out, g4_error *err) {
    *out = NULL;
    g4_store_model **v;
    size_t n;
    g4_status st = g4_store_list(s, &v, &n, NULL, err);
    if (st) return st;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        char t[40];
        rfc3339(v[i]->modified, t, sizeof t);
        json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:s, s:O}", "name", v[i]->name, "model", v[i]->name, "modified_at",
                              t, "size", (json_int_t)v[i]->size, "digest", v[i]->digest, "details", v[i]->details);
        if (!e || json_array_append_new(arr, e)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    g4_store_list_free(v, n);
    if (!arr || !(*out = json_pack("{s:o}", "models", arr))) return nomem(err);
    return G4_OK;
}

/* ---- create ---- */

/* What FROM names: a file, or a stored model. Paths relative to base_dir. */
static g4_status resolve_from(g4_store *s, const char *from, const char *base_dir, char **file, g4_store_model **base,
                              g4_error *err) {
    *file = NULL;
    *base = NULL;
    char *path;
    if (from[0] == '/') path = xstrdup(from);
    else if (from[0] == '~' && from[1] == '/' && getenv("HOME")) path = xfmt("%s%s", getenv("HOME"), from + 1);
    else if (base_dir && *base_dir) path = xfmt("%s/%s", base_dir, from);
    else path = xstrdup(from);
    if (!path) return nomem(err);
    struct stat sb;
    size_t fl = strlen(from);
    /* a path for sure: .gguf, absolute, ./ ../ ~/; else a stored model's name before a file of that name,
     * unless it holds a '/' and that file exists */
    int surely_path = (fl >= 5 && !strcasecmp(from + fl - 5, ".gguf")) || from[0] == '/' || !strncmp(from, "./", 2) ||
                      !strncmp(from, "../", 3) || !strncmp(from, "~/", 2);
    int exists = stat(path, &sb) == 0;
    g4_model_name n;
    int is_name = !surely_path && !g4_name_parse(from, fl, &n, NULL);
    if (is_name && !(strchr(from, '/') && exists && S_ISREG(sb.st_mode)) && g4_store_has(s, from) == 1) {
        free(path);
        return g4_store_get(s, from, base, err);
    }
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            g4_status st = g4_fail(err, G4_ERR_UNSUPPORTED,
                                   "FROM '%s' is a directory: g4 reads GGUF files (convert safetensors to GGUF first, "
                                   "e.g. with llama.cpp's convert_hf_to_gguf.py)",
                                   from);
            free(path);
            return st;
        }
        *file = path;
        return G4_OK;
    }
    g4_status st = is_name ? g4_fail(err, G4_ERR_ARG, "FROM '%s': no such model in %s, and no such file", from, s->dir)
                           : g4_fail(err, G4_ERR_IO, "FROM '%s': cannot open '%s': %s", from, path, strerror(errno));
    free(path);
    return st;
}

typedef struct progress {
    g4_store_progress_fn fn;
    void *user;
} progress;

static void report(const progress *p, const char *status, uint64_t done, uint64_t total) {
    if (p->fn) p->fn(p->user, status, done, total);
}

/* The GGUF at src as a temporary blob in blobs/ (*tmp): hard link or copy; its digest and size. */
static g4_status stage_blob(g4_store *s, const char *src, int flags, const progress *pr, char **tmp, char hex[65],
                            uint64_t *size, g4_error *err) {
    *tmp = NULL;
    char *bdir = xfmt("%s/blobs", s->dir);
    if (!bdir) return nomem(err);
    g4_status st = mkdirs(bdir, err);
    char *t = st ? NULL : tmp_name(bdir, "blob");
    free(bdir);
    if (st) return st;
    if (!t) return nomem(err);
    int in = -1, out = -1;
    uint8_t *buf = NULL;
    int linked = !(flags & G4_CREATE_COPY) && linkat(AT_FDCWD, src, AT_FDCWD, t, AT_SYMLINK_FOLLOW) == 0;
    in = open(linked ? t : src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        st = g4_fail(err, G4_ERR_IO, "cannot open '%s': %s", src, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(in, &sb) || !S_ISREG(sb.st_mode)) {
        st = g4_fail(err, G4_ERR_IO, "'%s' is not a regular file", src);
        goto fail;
    }
    if (!linked && (out = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        st = g4_fail(err, G4_ERR_IO, "cannot create '%s': %s", t, strerror(errno));
        goto fail;
    }
    if (!(buf = malloc(COPY_CHUNK))) {
        st = nomem(err);
        goto fail;
    }
    const char *what = linked ? "hashing model data" : "copying model data";
    g4_sha256 h;
    g4_sha256_init(&h);
    uint64_t done = 0, total = (uint64_t)sb.st_size;
    report(pr, what, 0, total);
    for (;;) {
        ssize_t r = read(in, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = g4_fail(err, G4_ERR_IO, "cannot read '%s': %s", src, strerror(errno));
            goto fail;
        }
        if (r == 0) break;
        g4_sha256_update(&h, buf, (size_t)r);
        if (!linked && (st = write_all(out, buf, (size_t)r, t, err))) goto fail;
        done += (uint64_t)r;
        report(pr, what, done, total > done ? total : done);
    }
    if (!linked) {
        if (fsync(out) || fchmod(out, 0444)) {
            st = g4_fail(err, G4_ERR_IO, "cannot sync '%s': %s", t, strerror(errno));
            goto fail;
        }
        int c = close(out);
        out = -1;
        if (c) {
            st = g4_fail(err, G4_ERR_IO, "cannot close '%s': %s", t, strerror(errno));
            goto fail;
        }
    }
    uint8_t d[32];
    g4_sha256_final(&h, d);
    g4_sha256_hex(d, hex);
    *size = done;
    free(buf);
    close(in);
    *tmp = t;
    return G4_OK;
fail:
    free(buf);
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    unlink(t);
    free(t);
    return st;
}

/* under the lock: the staged blob becomes blobs/sha256-<hex> (or is dropped when that exists) */
static g4_status commit_blob(g4_store *s, const char *tmp, const char *hex, uint64_t size, const progress *pr,
                             g4_error *err) {
    char *final = blob_path(s, hex);
    if (!final) return nomem(err);
    struct stat sb;
    g4_status st = G4_OK;
    if (stat(final, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == size) {
        report(pr, "using existing blob", 0, 0);
        unlink(tmp);
    } else if (rename(tmp, final)) {
        st = g4_fail(err, G4_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        unlink(tmp);
    } else {
        char *bd = dir_of(final);
        if (bd) fsync_dir(bd);
        free(bd);
    }
    free(final);
    return st;
}

static int set_str(json_t *o, const char *k, const char *v) { return v ? json_object_set_new(o, k, json_string(v)) : 0; }

/* the manifest of a new model */
static json_t *make_manifest(const char *display, const char *hex, uint64_t size, const char *from, const json_t *details,
                             const json_t *params, const char *system, const char *tmpl, const char *renderer,
                             const char *parser, const char *requires, const json_t *messages, const json_t *license) {
    char dg[80];
    snprintf(dg, sizeof dg, "sha256:%s", hex);
    json_t *m = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:s, s:O, s:O, s:O, s:O}", "schema_version", SCHEMA_VERSION, "name",
                          display, "model", "digest", dg, "size", (json_int_t)size, "format", "gguf", "from", from,
                          "details", details, "parameters", params, "messages", messages, "license", license);
    if (!m) return NULL;
    if (set_str(m, "system", system) || set_str(m, "template", tmpl) || set_str(m, "renderer", renderer) ||
        set_str(m, "parser", parser) || set_str(m, "requires", requires)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static g4_status write_manifest(g4_store *s, const g4_model_name *n, json_t *man, g4_error *err) {
    char *mp = manifest_path(s, n);
    char *dir = mp ? dir_of(mp) : NULL;
    char *txt = json_dumps(man, JSON_INDENT(2) | JSON_SORT_KEYS);
    g4_status st = !mp || !dir || !txt ? nomem(err) : G4_OK;
    if (!st) st = mkdirs(dir, err);
    if (!st) {
        size_t L = strlen(txt);
        char *t2 = realloc(txt, L + 2);
        if (!t2) st = nomem(err);
        else {
            txt = t2;
            txt[L] = '\n', txt[L + 1] = 0;
            st = write_atomic(mp, txt, L + 1, err);
        }
    }
    free(txt);
    free(dir);
    free(mp);
    return st;
}

static g4_status check_model(const char *path, g4_error *err) {
    g4_model *m;
    g4_status st = g4_model_open(&m, path, err);
    if (st) return st;
    g4_model_free(m);
    return G4_OK;
}

g4_status g4_store_create(g4_store *s, const char *name, const g4_modelfile *mf, const char *base_dir, int flags,
                          g4_store_progress_fn progress_fn, void *user, g4_error *err) {
    progress pr = {progress_fn, user};
    g4_model_name n;
    g4_status st = g4_name_parse(name, strlen(name), &n, err);
    if (st) return st;
    if (!mf || !mf->from) return g4_fail(err, G4_ERR_ARG, "the Modelfile has no FROM");
    json_t *params = NULL;
    if ((st = g4_params_check(mf->params, 0, &params, err))) return st;
    char *file = NULL, *tmp = NULL, *from_abs = NULL;
    g4_store_model *base = NULL;
    json_t *details = NULL, *messages = NULL, *license = NULL, *man = NULL;
    char hex[65];
    uint64_t size = 0;
    int lock = -1;
    if ((st = resolve_from(s, mf->from, base_dir, &file, &base, err))) goto done;
    if (file) {
        report(&pr, "parsing GGUF", 0, 0);
        if ((st = check_model(file, err))) goto done;
        char rp[PATH_MAX];
        from_abs = xstrdup(realpath(file, rp) ? rp : file);
        if (!from_abs) {
            st = nomem(err);
            goto done;
        }
        if ((st = stage_blob(s, file, flags, &pr, &tmp, hex, &size, err))) goto done;
        gguf_file *f;
        if ((st = gguf_open(&f, tmp, err))) goto done;
        st = details_of(f, NULL, &details, err);
        gguf_close(f);
        if (st) goto done;
    } else {
        /* a stored model: its blob and settings, then the Modelfile's */
        if (!digest_hex(base->blob, hex)) {
            st = g4_fail(err, G4_ERR_FORMAT, "model '%s' has no blob", base->name);
            goto done;
        }
        size = base->size;
        if (!(details = json_deep_copy(base->details)) ||
            json_object_set_new(details, "parent_model", json_string(base->name))) {
            st = nomem(err);
            goto done;
        }
        json_t *merged = json_deep_copy(base->params);
        if (!merged || json_object_update(merged, params)) {
            json_decref(merged);
            st = nomem(err);
            goto done;
        }
        json_decref(params);
        params = merged;
    }
    messages = json_array();
    license = json_array();
    if (!messages || !license) {
        st = nomem(err);
        goto done;
    }
    for (size_t i = 0; i < mf->n_messages; i++)
        if (json_array_append_new(messages, json_pack("{s:s, s:s}", "role", mf->messages[i].role, "content", mf->messages[i].content))) {
            st = g4_fail(err, G4_ERR_ARG, "MESSAGE %zu is not valid UTF-8", i + 1);
            goto done;
        }
    for (size_t i = 0; i < mf->n_license; i++)
        if (json_array_append_new(license, json_string(mf->license[i]))) {
            st = g4_fail(err, G4_ERR_ARG, "LICENSE %zu is not valid UTF-8", i + 1);
            goto done;
        }
    if (base && !mf->n_messages) json_array_extend(messages, base->messages);
    if (base && !mf->n_license) json_array_extend(license, base->license);
#define PICK(field) (mf->field ? mf->field : base ? base->field : NULL)
    char display[G4_NAME_MAX + 1];
    g4_name_string(&n, display, sizeof display);
    man = make_manifest(display, hex, size, file ? from_abs : base->name, details, params, PICK(system), PICK(tmpl),
                        PICK(renderer), PICK(parser), PICK(requires), messages, license);
#undef PICK
    if (!man) {
        st = g4_fail(err, G4_ERR_ARG, "the model's settings cannot be stored (not valid UTF-8?)");
        goto done;
    }
    if ((lock = store_lock(s, err)) < 0) {
        st = err ? err->code : G4_ERR_IO;
        goto done;
    }
    if (tmp) {
        st = commit_blob(s, tmp, hex, size, &pr, err);
        free(tmp);
        tmp = NULL;
        if (st) goto done;
    } else {
        char *bp = blob_path(s, hex);
        int ok = bp && is_regular(bp);
        free(bp);
        if (!ok) {
            st = g4_fail(err, G4_ERR_IO, "the blob of '%s' is missing", base->name);
            goto done;
        }
    }
    report(&pr, "writing manifest", 0, 0);
    if ((st = write_manifest(s, &n, man, err))) goto done;
    store_unlock(lock);
    lock = -1;
    report(&pr, "success", 0, 0);
done:
    store_unlock(lock);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(file);
    free(from_abs);
    g4_store_model_free(base);
    json_decref(params);
    json_decref(details);
    json_decref(messages);
    json_decref(license);
    json_decref(man);
    return st;
}

g4_status g4_store_create_gguf(g4_store *s, const char *name, const char *gguf_path, const json_t *params,
                               const char *system, int flags, g4_store_progress_fn progress_fn, void *user,
                               g4_error *err) {
    g4_modelfile *mf;
    g4_status st = g4_modelfile_new(&mf, err);
    if (st) return st;
    json_t *p = NULL;
    if (!(st = g4_mf_set(&mf->from, gguf_path, err)) && !(st = g4_mf_set(&mf->system, system, err)) &&
        !(st = g4_params_check(params, 0, &p, err))) {
        json_decref(mf->params);
        mf->params = p;
        st = g4_store_create(s, name, mf, NULL, flags, progress_fn, user, err);
    }
    g4_modelfile_free(mf);
    return st;
}

/* ---- copy, delete, gc ---- */

g4_status g4_store_copy(g4_store *s, const char *src, const char *dst, g4_error *err) {
    g4_model_name a, b;
    g4_status st;
    if ((st = g4_name_parse(src, strlen(src), &a, err)) || (st = g4_name_parse(dst, strlen(dst), &b, err))) return st;
    json_t *man;
    char *mp;
    int r = find(s, &a, &man, &mp, err);
    free(mp);
    if (r <= 0) return r == 0 ? not_found(src, err) : err ? err->code : G4_ERR_IO;
    g4_store_model *m;
    if ((st = model_from_manifest(s, man, &a, "(source)", &m, err))) {
        json_decref(man);
        return st;
    }
    g4_store_model_free(m);
    char display[G4_NAME_MAX + 1];
    g4_name_string(&b, display, sizeof display);
    if (json_object_set_new(man, "name", json_string(display))) {
        json_decref(man);
        return nomem(err);
    }
    int lock = store_lock(s, err);
    if (lock < 0) {
        json_decref(man);
        return err ? err->code : G4_ERR_IO;
    }
    st = write_manifest(s, &b, man, err);
    store_unlock(lock);
    json_decref(man);
    return st;
}

typedef struct gc_ctx {
    char (*hex)[65];
    size_t n, cap;
    int bad;
} gc_ctx;

static g4_status gc_collect(void *user, const g4_model_name *n, const char *mp, g4_error *err) {
    (void)n;
    gc_ctx *c = user;
    json_t *man;
    g4_error e2;
    int r = load_manifest(mp, &man, &e2);
    char hex[65];
    if (r != 1 || !digest_hex(json_string_value(json_object_get(json_object_get(man, "model"), "digest")), hex)) {
        c->bad = 1; /* a manifest we cannot read may refer to any blob: remove none */
        json_decref(man);
        return G4_OK;
    }
    json_decref(man);
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 16;
        char(*h)[65] = realloc(c->hex, nc * sizeof *h);
        if (!h) return nomem(err);
        c->hex = h, c->cap = nc;
    }
    memcpy(c->hex[c->n++], hex, 65);
    return G4_OK;
}

/* with the lock held */
static g4_status gc_locked(g4_store *s, int *n_removed, g4_error *err) {
    if (n_removed) *n_removed = 0;
    gc_ctx c = {0};
    g4_status st = walk(s, gc_collect, &c, err);
    char *bdir = xfmt("%s/blobs", s->dir);
    DIR *d = NULL;
    if (!st && !bdir) st = nomem(err);
    if (!st && !(d = opendir(bdir)) && errno != ENOENT)
        st = g4_fail(err, G4_ERR_IO, "cannot read '%s': %s", bdir, strerror(errno));
    struct dirent *e;
    time_t now = time(NULL);
    while (!st && d && (e = readdir(d))) {
        char *p = NULL;
        if (!strncmp(e->d_name, "sha256-", 7) && is_hex64(e->d_name + 7)) {
            int used = c.bad;
            for (size_t i = 0; !used && i < c.n; i++) used = !strcmp(c.hex[i], e->d_name + 7);
            if (used) continue;
            p = xfmt("%s/%s", bdir, e->d_name);
        } else if (!strncmp(e->d_name, ".tmp-", 5)) {
            char *q = xfmt("%s/%s", bdir, e->d_name);
            struct stat sb;
            if (q && lstat(q, &sb) == 0 && now - sb.st_ctime > STALE_TMP_SECONDS) p = q;
            else free(q);
        } else {
            continue;
        }
        if (!p) continue;
        if (unlink(p) == 0 && n_removed) (*n_removed)++;
        free(p);
    }
    if (d) closedir(d);
    free(bdir);
    free(c.hex);
    return st;
}

g4_status g4_store_gc(g4_store *s, int *n_removed, g4_error *err) {
    int lock = store_lock(s, err);
    if (lock < 0) return err ? err->code : G4_ERR_IO;
    g4_status st = gc_locked(s, n_removed, err);
    store_unlock(lock);
    return st;
}

g4_status g4_store_delete(g4_store *s, const char *name, g4_error *err) {
    g4_model_name n;
    g4_status st = g4_name_parse(name, strlen(name), &n, err);
    if (st) return st;
    if (g4_store_has(s, name) != 1) return not_found(name, err);
    char *mp = manifest_path(s, &n);
    if (!mp) return nomem(err);
    int lock = store_lock(s, err);
    if (lock < 0) {
        free(mp);
        return err ? err->code : G4_ERR_IO;
    }
    if (unlink(mp)) {
        st = errno == ENOENT ? not_found(name, err) : g4_fail(err, G4_ERR_IO, "cannot remove '%s': %s", mp, strerror(errno));
    } else {
        char *d1 = dir_of(mp), *d0 = d1 ? dir_of(d1) : NULL;
        if (d1) fsync_dir(d1);
        if (d1) rmdir(d1); /* fails while other tags are there: fine */
        if (d0) rmdir(d0);
        free(d0);
        free(d1);
        st = gc_locked(s, NULL, err);
    }
    store_unlock(lock);
    free(mp);
    return st;
}

/* ---- blobs from a stream (the server's POST /api/blobs/:digest) ---- */

g4_status g4_store_blob_write(g4_store *s, const char *digest, g4_store_read_fn rd, void *user, g4_error *err) {
    char want[65], hex[65];
    if (!digest_hex(digest, want)) return g4_fail(err, G4_ERR_ARG, "invalid digest '%.80s' (sha256:<64 hex digits>)", digest ? digest : "");
    char *bdir = xfmt("%s/blobs", s->dir);
    if (!bdir) return nomem(err);
    g4_status st = mkdirs(bdir, err);
    char *t = st ? NULL : tmp_name(bdir, "upload");
    free(bdir);
    if (st) return st;
    if (!t) return nomem(err);
    uint8_t *buf = malloc(COPY_CHUNK);
    int fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (!buf || fd < 0) {
        st = !buf ? nomem(err) : g4_fail(err, G4_ERR_IO, "cannot create '%s': %s", t, strerror(errno));
        goto fail;
    }
    g4_sha256 h;
    g4_sha256_init(&h);
    uint64_t size = 0;
    for (;;) {
        long long r = rd(user, buf, COPY_CHUNK);
        if (r < 0) {
            st = g4_fail(err, G4_ERR_IO, "reading the blob's data failed");
            goto fail;
        }
        if (r == 0) break;
        if ((size_t)r > COPY_CHUNK) r = (long long)COPY_CHUNK;
        g4_sha256_update(&h, buf, (size_t)r);
        if ((st = write_all(fd, buf, (size_t)r, t, err))) goto fail;
        size += (uint64_t)r;
    }
    uint8_t d[32];
    g4_sha256_final(&h, d);
    g4_sha256_hex(d, hex);
    if (strcmp(hex, want)) {
        st = g4_fail(err, G4_ERR_ARG, "digest mismatch: the data's SHA-256 is sha256:%s, not sha256:%s", hex, want);
        goto fail;
    }
    if (fsync(fd) || fchmod(fd, 0444) || close(fd)) {
        fd = -1;
        st = g4_fail(err, G4_ERR_IO, "cannot write '%s': %s", t, strerror(errno));
        goto fail;
    }
    fd = -1;
    free(buf);
    buf = NULL;
    int lock = store_lock(s, err);
    if (lock < 0) {
        st = err ? err->code : G4_ERR_IO;
        goto fail;
    }
    progress none = {0};
    st = commit_blob(s, t, hex, size, &none, err);
    store_unlock(lock);
    free(t);
    return st;
fail:
    if (fd >= 0) close(fd);
    free(buf);
    unlink(t);
    free(t);
    return st;
}

/* ---- show ---- */

static g4_status mf_of_model(const g4_store_model *m, g4_modelfile **out, g4_error *err) {
    g4_modelfile *mf;
    g4_status st = g4_modelfile_new(&mf, err);
    if (st) return st;
    json_decref(mf->params);
    mf->params = json_deep_copy(m->params);
    if (!mf->params) st = nomem(err);
    if (!st) st = g4_mf_set(&mf->from, m->path, err);
    if (!st) st = g4_mf_set(&mf->system, m->system, err);
    if (!st) st = g4_mf_set(&mf->tmpl, m->tmpl, err);
    if (!st) st = g4_mf_set(&mf->renderer, m->renderer, err);
    if (!st) st = g4_mf_set(&mf->parser, m->parser, err);
    if (!st) st = g4_mf_set(&mf->requires, m->requires, err);
    size_t i;
    json_t *e;
    json_array_foreach(m->messages, i, e) {
        if (st) break;
        const char *role = json_string_value(json_object_get(e, "role"));
        const char *c = json_string_value(json_object_get(e, "content"));
        if (role && c) st = g4_mf_add_message(mf, role, c, err);
    }
    json_array_foreach(m->license, i, e) {
        if (st) break;
        st = g4_mf_add_license(mf, json_string_value(e), err);
    }
    if (st) {
        g4_modelfile_free(mf);
        return st;
    }
    *out = mf;
    return G4_OK;
}

static g4_status modelfile_of(const g4_store_model *m, char **out, g4_error *err) {
    *out = NULL;
    g4_modelfile *mf;
    g4_status st = mf_of_model(m, &mf, err);
    if (st) return st;
    char *body;
    st = g4_modelfile_text(mf, &body, err);
    g4_modelfile_free(mf);
    if (st) return st;
    if (m->is_file) {
        *out = body;
        return G4_OK;
    }
    *out = xfmt("# Modelfile generated by \"g4 show\"\n# To build a new Modelfile based on this, replace FROM with:\n"
                "# FROM %s\n\n%s",
                m->name, body);
    free(body);
    return *out ? G4_OK : nomem(err);
}

g4_status g4_store_modelfile_text(g4_store *s, const char *name, char **out, g4_error *err) {
    *out = NULL;
    g4_store_model *m;
    g4_status st = g4_store_resolve(s, name, &m, err);
    if (st) return st;
    st = modelfile_of(m, out, err);
    g4_store_model_free(m);
    return st;
}

static const char *TEMPLATE_NOTE =
    "g4 renders Gemma 4's chat format itself: a TEMPLATE in the Modelfile is kept for reference only";

g4_status g4_store_show(g4_store *s, const char *name_or_path, int verbose, json_t **out, g4_error *err) {
    *out = NULL;
    g4_store_model *m;
    g4_status st = g4_store_resolve(s, name_or_path, &m, err);
    if (st) return st;
    gguf_file *f = NULL;
    json_t *o = NULL, *info = NULL, *details = NULL;
    char *mf = NULL, *ptxt = NULL, *lic = NULL;
    if ((st = gguf_open(&f, m->path, err))) goto done;
    if ((st = model_info_of(f, verbose, &info, err))) goto done;
    if (m->is_file || !json_object_size(m->details)) {
        if ((st = details_of(f, NULL, &details, err))) goto done;
    } else if (!(details = json_deep_copy(m->details))) {
        st = nomem(err);
        goto done;
    }
    if ((st = modelfile_of(m, &mf, err)) || (st = g4_params_text(m->params, &ptxt, err))) goto done;
    /* the template: the Modelfile's TEMPLATE, else the GGUF's own chat template */
    json_t *tj = NULL;
    if (m->tmpl) {
        tj = json_string(m->tmpl);
    } else {
        const char *ts = NULL;
        uint64_t tl = 0;
        if (!gguf_get_str(f, "tokenizer.chat_template", 0, &ts, &tl, NULL) && ts) tj = json_str_lossy(ts, tl);
        else tj = json_string("");
    }
    /* licenses joined by newlines, like Ollama */
    size_t L = 1, i;
    json_t *e;
    json_array_foreach(m->license, i, e) L += strlen(json_string_value(e)) + 1;
    if ((lic = malloc(L))) {
        size_t w = 0;
        json_array_foreach(m->license, i, e) {
            size_t k = strlen(json_string_value(e));
            if (i) lic[w++] = '\n';
            memcpy(lic + w, json_string_value(e), k);
            w += k;
        }
        lic[w] = 0;
    }
    const char *arch = json_string_value(json_object_get(details, "family"));
    int g4arch = arch && !strcmp(arch, "gemma4");
    json_t *caps = g4arch ? json_pack("[s,s,s]", "completion", "tools", "thinking") : json_pack("[s]", "completion");
    char t[40];
    rfc3339(m->modified, t, sizeof t);
    if (!tj || !caps || !lic) {
        json_decref(tj);
        json_decref(caps);
        st = nomem(err);
        goto done;
    }
    o = json_pack("{s:s, s:s, s:s, s:o, s:s?, s:O, s:O, s:O, s:o, s:s, s:{s:s, s:s, s:b}}", "license", lic,
                  "modelfile", mf, "parameters", ptxt, "template", tj, "system", m->system, "details", details,
                  "messages", m->messages, "model_info", info, "capabilities", caps, "modified_at", t, "g4", "path",
                  m->path, "template_note", TEMPLATE_NOTE, "template_from_modelfile", m->tmpl != NULL);
    if (!o) st = g4_fail(err, G4_ERR_NOMEM, "out of memory (or a text that is not UTF-8)");
    if (o && m->is_file) json_object_del(o, "modified_at");
done:
    if (f) gguf_close(f);
    json_decref(info);
    json_decref(details);
    free(mf);
    free(ptxt);
    free(lic);
    g4_store_model_free(m);
    *out = o;
    return st;
}
