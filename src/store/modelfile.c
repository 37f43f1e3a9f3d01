/* Modelfiles (Ollama's syntax) and model parameters (Ollama's option names): parse, check, write back. */
#include "store/store.h"
#include "store/internal.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* ---- parameters ---- */

typedef enum { P_INT, P_FLOAT, P_STOP } ptype;

static const struct param_def {
    const char *name;
    ptype type;
    double lo, hi;
    const char *what;
} defs[] = {
    {"num_ctx", P_INT, 16, 16777216, "context length in tokens"},
    {"num_predict", P_INT, -2, 1073741824, "tokens to generate at most (-1: no limit, -2: until the context is full)"},
    {"repeat_last_n", P_INT, -1, 1048576, "tokens the penalties look back at (-1: all, 0: none)"},
    {"repeat_penalty", P_FLOAT, 0.01, 100, "repetition penalty (1: off)"},
    {"temperature", P_FLOAT, 0, DBL_MAX, "sampling temperature (0: greedy)"},
    {"seed", P_INT, -1, 9223372036854775807.0, "random seed (-1: a new one each time)"},
    {"stop", P_STOP, 0, 0, "stop string (repeatable)"},
    {"top_k", P_INT, 0, 1000000, "top-k (0: off)"},
    {"top_p", P_FLOAT, 0, 1, "top-p (1: off)"},
    {"min_p", P_FLOAT, 0, 1, "min-p (0: off)"},
    {"presence_penalty", P_FLOAT, -100, 100, "presence penalty (0: off)"},
    {"frequency_penalty", P_FLOAT, -100, 100, "frequency penalty (0: off)"},
};
#define N_DEFS ((int)(sizeof defs / sizeof defs[0]))

const char *const g4_param_names[] = {"num_ctx", "num_predict", "repeat_last_n", "repeat_penalty", "temperature",
                                      "seed", "stop", "top_k", "top_p", "min_p", "presence_penalty",
                                      "frequency_penalty", NULL};

/* Ollama options g4 has no use for (so the error can say what they are) */
static const char *const ollama_only[] = {"num_keep", "typical_p", "penalize_newline", "numa", "num_batch", "num_gpu",
                                          "main_gpu", "use_mmap", "use_mlock", "num_thread", "low_vram", "f16_kv",
                                          "vocab_only", "mirostat", "mirostat_eta", "mirostat_tau", "tfs_z",
                                          "draft_num_predict", "logits_all", "embedding_only", "rope_frequency_base",
                                          "rope_frequency_scale", NULL};

static int def_index(const char *name) {
    for (int i = 0; i < N_DEFS; i++)
        if (!strcasecmp(defs[i].name, name)) return i;
    return -1;
}

static g4_status unknown_param(const char *name, g4_error *err) {
    for (int i = 0; ollama_only[i]; i++)
        if (!strcasecmp(ollama_only[i], name))
            return g4_fail(err, G4_ERR_ARG,
                           "parameter '%s' is an Ollama option g4 does not use (g4 knows num_ctx, num_predict, "
                           "repeat_last_n, repeat_penalty, temperature, seed, stop, top_k, top_p, min_p, "
                           "presence_penalty, frequency_penalty)",
                           name);
    return g4_fail(err, G4_ERR_ARG,
                   "unknown parameter '%.80s' (g4 knows num_ctx, num_predict, repeat_last_n, repeat_penalty, "
                   "temperature, seed, stop, top_k, top_p, min_p, presence_penalty, frequency_penalty)",
                   name);
}

static g4_status range_err(const struct param_def *d, const char *value, g4_error *err) {
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%.15g", d->lo);
    if (d->hi == DBL_MAX) snprintf(hi, sizeof hi, "any");
    else snprintf(hi, sizeof hi, "%.15g", d->hi);
    if (d->hi == DBL_MAX)
        return g4_fail(err, G4_ERR_ARG, "parameter %s: '%.60s' is out of range (%s: a number >= %s)", d->name, value,
                       d->what, lo);
    return g4_fail(err, G4_ERR_ARG, "parameter %s: '%.60s' is out of range (%s: %s .. %s)", d->name, value, d->what,
                   lo, hi);
}

static g4_status stop_append(json_t *params, const char *s, size_t len, g4_error *err) {
    if (!len) return g4_fail(err, G4_ERR_ARG, "parameter stop: an empty stop string");
    if (len > 1024) return g4_fail(err, G4_ERR_ARG, "parameter stop: longer than 1024 bytes"); /* G4_GEN_MAX_STOP_BYTES */
    json_t *arr = json_object_get(params, "stop");
    if (!arr) {
        arr = json_array();
        if (!arr || json_object_set_new(params, "stop", arr)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    if (json_array_size(arr) >= G4_MAX_STOP)
        return g4_fail(err, G4_ERR_ARG, "parameter stop: more than %d stop strings", G4_MAX_STOP);
    json_t *v = json_stringn(s, len);
    if (!v) return g4_fail(err, G4_ERR_ARG, "parameter stop: not valid UTF-8");
    if (json_array_append_new(arr, v)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    return G4_OK;
}

g4_status g4_param_set(json_t *params, const char *name, const char *value, g4_error *err) {
    int i = def_index(name);
    if (i < 0) return unknown_param(name, err);
    const struct param_def *d = &defs[i];
    json_t *v = NULL;
    if (d->type == P_STOP) return stop_append(params, value, strlen(value), err);
    char *end;
    errno = 0;
    if (d->type == P_INT) {
        long long x = strtoll(value, &end, 10);
        if (end == value || *end || isspace((unsigned char)value[0]))
            return g4_fail(err, G4_ERR_ARG, "parameter %s: '%.60s' is not an integer (%s)", d->name, value, d->what);
        if (errno || (double)x < d->lo || (double)x > d->hi) return range_err(d, value, err);
        v = json_integer(x);
    } else {
        double x = strtod(value, &end);
        if (end == value || *end || isspace((unsigned char)value[0]))
            return g4_fail(err, G4_ERR_ARG, "parameter %s: '%.60s' is not a number (%s)", d->name, value, d->what);
        if (!isfinite(x) || x < d->lo || x > d->hi) return range_err(d, value, err);
        if (x == 0) x = 0; /* no -0 */
        v = json_real(x);
    }
    if (!v || json_object_set_new(params, d->name, v)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    return G4_OK;
}

static void fmt_num(double d, char *buf, size_t n) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, d);
        if (strtod(buf, NULL) == d) return;
    }
}

g4_status g4_params_check(const json_t *in, int allow_unknown, json_t **out, g4_error *err) {
    *out = NULL;
    if (in && !json_is_object(in)) return g4_fail(err, G4_ERR_ARG, "parameters: not a JSON object");
    json_t *o = json_object();
    if (!o) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    const char *k;
    json_t *v;
    g4_status st = G4_OK;
    json_object_foreach((json_t *)in, k, v) {
        int i = def_index(k);
        if (i < 0) {
            if (allow_unknown || json_is_null(v)) continue;
            st = unknown_param(k, err);
            goto fail;
        }
        const struct param_def *d = &defs[i];
        if (json_is_null(v)) continue;
        char shown[64];
        if (json_is_number(v)) fmt_num(json_number_value(v), shown, sizeof shown);
        else snprintf(shown, sizeof shown, "(a JSON %s)", json_is_string(v) ? "string" : json_is_boolean(v) ? "boolean" : json_is_array(v) ? "array" : "object");
        if (d->type == P_STOP) {
            if (json_is_string(v)) {
                if ((st = stop_append(o, json_string_value(v), json_string_length(v), err))) goto fail;
            } else if (json_is_array(v)) {
                size_t j;
                json_t *e;
                if (!json_array_size(v) && json_object_set_new(o, "stop", json_array())) {
                    st = g4_fail(err, G4_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                json_array_foreach(v, j, e) {
                    if (!json_is_string(e)) {
                        st = g4_fail(err, G4_ERR_ARG, "parameter stop: element %zu is not a string", j);
                        goto fail;
                    }
                    if ((st = stop_append(o, json_string_value(e), json_string_length(e), err))) goto fail;
                }
            } else {
                st = g4_fail(err, G4_ERR_ARG, "parameter stop: %s is not a string or a list of strings", shown);
                goto fail;
            }
            continue;
        }
        if (!json_is_number(v)) {
            st = g4_fail(err, G4_ERR_ARG, "parameter %s: %s is not a number (%s)", d->name, shown, d->what);
            goto fail;
        }
        double x = json_number_value(v);
        if (!isfinite(x) || x < d->lo || x > d->hi) {
            st = range_err(d, shown, err);
            goto fail;
        }
        json_t *nv;
        if (d->type == P_INT) {
            if (x != floor(x) || x >= 9223372036854775807.0) { /* 2^63 as a double: no int64 */
                st = g4_fail(err, G4_ERR_ARG, "parameter %s: %s is not an integer (%s)", d->name, shown, d->what);
                goto fail;
            }
            nv = json_is_integer(v) ? json_integer(json_integer_value(v)) : json_integer((json_int_t)x);
        } else {
            nv = json_real(x == 0 ? 0.0 : x);
        }
        if (!nv || json_object_set_new(o, d->name, nv)) {
            st = g4_fail(err, G4_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    *out = o;
    return G4_OK;
fail:
    json_decref(o);
    return st;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* a string as Go's %#v shows it in Ollama's parameters text */
static void quote_go(sbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') snprintf(e, sizeof e, "\\%c", *p);
        else if (*p == '\n') strcpy(e, "\\n");
        else if (*p == '\t') strcpy(e, "\\t");
        else if (*p == '\r') strcpy(e, "\\r");
        else if (*p < 32 || *p == 127) snprintf(e, sizeof e, "\\x%02x", *p);
        else e[0] = (char)*p, e[1] = 0;
        sb_str(b, e);
    }
    sb_add(b, "\"", 1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

g4_status g4_params_text(const json_t *params, char **out, g4_error *err) {
    *out = NULL;
    sbuf b = {0};
    sb_add(&b, "", 0);
    size_t n = json_object_size(params);
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v) keys[k++] = key;
    qsort(keys, k, sizeof *keys, cmp_str);
    for (size_t i = 0; i < k; i++) {
        json_t *val = json_object_get(params, keys[i]);
        size_t m = json_is_array(val) ? json_array_size(val) : 1;
        for (size_t j = 0; j < m; j++) {
            json_t *e = json_is_array(val) ? json_array_get(val, j) : val;
            char line[128];
            snprintf(line, sizeof line, "%-30s ", keys[i]);
            sb_str(&b, line);
            if (json_is_string(e)) {
                quote_go(&b, json_string_value(e));
            } else if (json_is_integer(e)) {
                snprintf(line, sizeof line, "%lld", (long long)json_integer_value(e));
                sb_str(&b, line);
            } else if (json_is_number(e)) {
                fmt_num(json_number_value(e), line, sizeof line);
                sb_str(&b, line);
            } else {
                sb_str(&b, "?");
            }
            sb_add(&b, "\n", 1);
        }
    }
    free(keys);
    if (b.oom) {
        free(b.p);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    if (b.len) b.p[--b.len] = 0; /* no final newline, like Ollama */
    *out = b.p;
    return G4_OK;
}

/* ---- Modelfile structure ---- */

g4_status g4_modelfile_new(g4_modelfile **out, g4_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out || !((*out)->params = json_object())) {
        free(*out);
        *out = NULL;
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    return G4_OK;
}

void g4_modelfile_free(g4_modelfile *mf) {
    if (!mf) return;
    free(mf->from);
    json_decref(mf->params);
    free(mf->system);
    free(mf->tmpl);
    free(mf->renderer);
    free(mf->parser);
    free(mf->requires);
    for (size_t i = 0; i < mf->n_license; i++) free(mf->license[i]);
    free(mf->license);
    for (size_t i = 0; i < mf->n_messages; i++) {
        free(mf->messages[i].role);
        free(mf->messages[i].content);
    }
    free(mf->messages);
    free(mf);
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

g4_status g4_mf_set(char **field, const char *value, g4_error *err) {
    char *d = NULL;
    if (value && !(d = dupn(value, strlen(value)))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    free(*field);
    *field = d;
    return G4_OK;
}

#define MAX_MESSAGES 100000
#define MAX_LICENSES 1000

static g4_status add_message_n(g4_modelfile *mf, const char *role, const char *c, size_t clen, g4_error *err) {
    if (mf->n_messages >= MAX_MESSAGES) return g4_fail(err, G4_ERR_ARG, "more than %d MESSAGE lines", MAX_MESSAGES);
    g4_mf_message *m = realloc(mf->messages, (mf->n_messages + 1) * sizeof *m);
    if (!m) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    mf->messages = m;
    char *r = dupn(role, strlen(role)), *t = dupn(c, clen);
    if (!r || !t) {
        free(r);
        free(t);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    m[mf->n_messages].role = r;
    m[mf->n_messages].content = t;
    mf->n_messages++;
    return G4_OK;
}

static int valid_role(const char *r) { return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"); }

g4_status g4_mf_add_message(g4_modelfile *mf, const char *role, const char *content, g4_error *err) {
    if (!valid_role(role))
        return g4_fail(err, G4_ERR_ARG, "message role must be system, user or assistant, not '%.40s'", role);
    return add_message_n(mf, role, content, strlen(content), err);
}

static g4_status add_license_n(g4_modelfile *mf, const char *t, size_t n, g4_error *err) {
    if (mf->n_license >= MAX_LICENSES) return g4_fail(err, G4_ERR_ARG, "more than %d LICENSE lines", MAX_LICENSES);
    char **l = realloc(mf->license, (mf->n_license + 1) * sizeof *l);
    if (!l) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    mf->license = l;
    if (!(l[mf->n_license] = dupn(t, n))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    mf->n_license++;
    return G4_OK;
}

g4_status g4_mf_add_license(g4_modelfile *mf, const char *text, g4_error *err) {
    return add_license_n(mf, text, strlen(text), err);
}

/* ---- parser ---- */

size_t g4_store_utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, min = 0x10000;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    unsigned cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

enum { I_FROM, I_PARAMETER, I_SYSTEM, I_TEMPLATE, I_MESSAGE, I_LICENSE, I_ADAPTER, I_REQUIRES, I_RENDERER, I_PARSER };
static const char *const instr_names[] = {"FROM",    "PARAMETER", "SYSTEM",   "TEMPLATE", "MESSAGE",
                                          "LICENSE", "ADAPTER",   "REQUIRES", "RENDERER", "PARSER"};
#define N_INSTR ((int)(sizeof instr_names / sizeof instr_names[0]))

typedef struct cur {
    const char *p, *end;
    int line;
} cur;

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static void skip_blank(cur *c) {
    while (c->p < c->end && is_blank(*c->p)) c->p++;
}
/* the next space-separated word of the line */
static void word(cur *c, const char **w, size_t *n) {
    skip_blank(c);
    *w = c->p;
    while (c->p < c->end && !is_blank(*c->p) && *c->p != '\n' && *c->p != '\r') c->p++;
    *n = (size_t)(c->p - *w);
}

/* A value: unquoted (rest of the line, trimmed), "..." (one line) or """...""" (several). Leaves c at the end
 * of its last line (before the '\n'). *empty_ok: quoted values may be empty. */
static g4_status value(cur *c, const char *instr, const char **v, size_t *n, g4_error *err) {
    skip_blank(c);
    const char *le = c->p;
    while (le < c->end && *le != '\n') le++;
    if (c->end - c->p >= 3 && !memcmp(c->p, "\"\"\"", 3)) {
        const char *s = c->p + 3, *q = s;
        int start_line = c->line;
        while (q + 3 <= c->end && memcmp(q, "\"\"\"", 3)) q++;
        if (q + 3 > c->end)
            return g4_fail(err, G4_ERR_ARG, "line %d: %s: the \"\"\" is never closed", start_line, instr);
        for (const char *t = s; t < q; t++) c->line += *t == '\n';
        *v = s, *n = (size_t)(q - s);
        c->p = q + 3;
        while (c->p < c->end && (is_blank(*c->p) || *c->p == '\r')) c->p++;
        if (c->p < c->end && *c->p != '\n')
            return g4_fail(err, G4_ERR_ARG, "line %d: %s: unexpected text after the closing \"\"\"", c->line, instr);
        return G4_OK;
    }
    const char *t = le;
    while (t > c->p && (is_blank(t[-1]) || t[-1] == '\r')) t--;
    if (t == c->p) return g4_fail(err, G4_ERR_ARG, "line %d: %s needs a value", c->line, instr);
    if (*c->p == '"') {
        if (t - c->p < 2 || t[-1] != '"')
            return g4_fail(err, G4_ERR_ARG,
                           "line %d: %s: the quote is not closed on this line (\"\"\" quotes text of several lines)",
                           c->line, instr);
        *v = c->p + 1, *n = (size_t)(t - 1 - (c->p + 1));
    } else {
        *v = c->p, *n = (size_t)(t - c->p);
    }
    c->p = le;
    return G4_OK;
}

static g4_status set_n(char **field, const char *v, size_t n, g4_error *err) {
    char *d = dupn(v, n);
    if (!d) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    free(*field);
    *field = d;
    return G4_OK;
}

g4_status g4_modelfile_parse(const char *text, size_t len, g4_modelfile **out, g4_error *err) {
    *out = NULL;
    if (len > G4_MODELFILE_MAX_BYTES)
        return g4_fail(err, G4_ERR_ARG, "the Modelfile is larger than %zu bytes", G4_MODELFILE_MAX_BYTES);
    /* bytes: UTF-8 without NUL, so every value can be a JSON string */
    int line = 1;
    for (const unsigned char *p = (const unsigned char *)text, *e = p + len; p < e;) {
        if (*p == 0) return g4_fail(err, G4_ERR_ARG, "line %d: a NUL byte", line);
        size_t k = g4_store_utf8_len(p, e);
        if (!k) return g4_fail(err, G4_ERR_ARG, "line %d: not valid UTF-8 (byte 0x%02x)", line, *p);
        line += *p == '\n';
        p += k;
    }
    g4_modelfile *mf;
    g4_status st = g4_modelfile_new(&mf, err);
    if (st) return st;
    int pline[N_DEFS] = {0}, iline = 0;
    cur c = {text, text + len, 1};
    while (c.p < c.end) {
        skip_blank(&c);
        if (c.p == c.end) break;
        char ch = *c.p;
        if (ch == '\n') {
            c.line++, c.p++;
            continue;
        }
        if (ch == '\r') {
            c.p++;
            continue;
        }
        if (ch == '#') {
            while (c.p < c.end && *c.p != '\n') c.p++;
            continue;
        }
        const char *w = c.p;
        while (c.p < c.end && isalpha((unsigned char)*c.p)) c.p++;
        size_t wn = (size_t)(c.p - w);
        if (c.p < c.end && !is_blank(*c.p) && *c.p != '\n' && *c.p != '\r') {
            while (c.p < c.end && !is_blank(*c.p) && *c.p != '\n' && *c.p != '\r') c.p++;
            wn = (size_t)(c.p - w);
        }
        int in = -1;
        for (int i = 0; i < N_INSTR; i++)
            if (wn == strlen(instr_names[i]) && !strncasecmp(w, instr_names[i], wn)) in = i;
        if (in < 0) {
            st = g4_fail(err, G4_ERR_ARG,
                         "line %d: unknown instruction '%.*s' (a Modelfile has FROM, PARAMETER, SYSTEM, TEMPLATE, "
                         "MESSAGE, LICENSE, ADAPTER, REQUIRES, RENDERER, PARSER; '#' starts a comment)",
                         c.line, (int)(wn > 40 ? 40 : wn), w);
            goto fail;
        }
        const char *iname = instr_names[in];
        iline = c.line;
        const char *v;
        size_t vn;
        if (in == I_PARAMETER || in == I_MESSAGE) {
            const char *a;
            size_t an;
            word(&c, &a, &an);
            if (!an) {
                st = g4_fail(err, G4_ERR_ARG, "line %d: %s needs %s and a value", iline, iname,
                             in == I_PARAMETER ? "a parameter name" : "a role (user, assistant or system)");
                goto fail;
            }
            char key[48];
            if (an >= sizeof key) an = sizeof key - 1;
            for (size_t i = 0; i < an; i++) key[i] = (char)tolower((unsigned char)a[i]);
            key[an] = 0;
            if (in == I_MESSAGE && !valid_role(key)) {
                st = g4_fail(err, G4_ERR_ARG, "line %d: MESSAGE role must be user, assistant or system, not '%s'",
                             iline, key);
                goto fail;
            }
            int di = in == I_PARAMETER ? def_index(key) : -1;
            if (in == I_PARAMETER && di < 0) {
                unknown_param(key, err);
                char m[sizeof err->msg];
                snprintf(m, sizeof m, "%s", err ? err->msg : "");
                st = g4_fail(err, G4_ERR_ARG, "line %d: %s", iline, m);
                goto fail;
            }
            if (in == I_PARAMETER && defs[di].type != P_STOP && pline[di]) {
                st = g4_fail(err, G4_ERR_ARG, "line %d: PARAMETER %s given twice (first on line %d)", iline, key,
                             pline[di]);
                goto fail;
            }
            if ((st = value(&c, iname, &v, &vn, err))) goto fail;
            if (in == I_MESSAGE) {
                if ((st = add_message_n(mf, key, v, vn, err))) goto fail_line;
            } else {
                char *val = dupn(v, vn);
                if (!val) {
                    st = g4_fail(err, G4_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                st = g4_param_set(mf->params, key, val, err);
                free(val);
                if (st) goto fail_line;
                pline[di] = iline;
            }
            continue;
        }
        if ((st = value(&c, iname, &v, &vn, err))) goto fail;
        switch (in) {
        case I_FROM:
            if (mf->from) {
                st = g4_fail(err, G4_ERR_ARG, "line %d: a second FROM (the first is on line %d)", iline, mf->from_line);
                goto fail;
            }
            if (!vn) {
                st = g4_fail(err, G4_ERR_ARG, "line %d: FROM needs a value", iline);
                goto fail;
            }
            mf->from_line = iline;
            st = set_n(&mf->from, v, vn, err);
            break;
        case I_SYSTEM: st = set_n(&mf->system, v, vn, err); break;
        case I_TEMPLATE: st = set_n(&mf->tmpl, v, vn, err); break;
        case I_RENDERER: st = set_n(&mf->renderer, v, vn, err); break;
        case I_PARSER: st = set_n(&mf->parser, v, vn, err); break;
        case I_REQUIRES: st = set_n(&mf->requires, v, vn, err); break;
        case I_LICENSE: st = add_license_n(mf, v, vn, err); break;
        case I_ADAPTER:
            st = g4_fail(err, G4_ERR_UNSUPPORTED,
                         "line %d: ADAPTER: LoRA adapters are not supported yet (merge the adapter into the GGUF "
                         "first, e.g. with llama.cpp's llama-export-lora)",
                         iline);
            goto fail;
        }
        if (st) goto fail_line;
    }
    if (!mf->from) {
        st = g4_fail(err, G4_ERR_ARG, "the Modelfile has no FROM line (FROM ./model.gguf, or FROM an existing model's name)");
        goto fail;
    }
    *out = mf;
    return G4_OK;
fail_line:
    if (err && st != G4_ERR_NOMEM) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        g4_fail(err, st, "line %d: %s", iline, m);
    }
fail:
    g4_modelfile_free(mf);
    return st;
}

/* ---- writer ---- */

/* a value so that value() reads it back; 0 if s cannot be written exactly */
static int write_value(sbuf *b, const char *s, int prefer_quotes) {
    size_t n = strlen(s);
    int multi = strchr(s, '\n') != NULL;
    int edge = n && (is_blank(s[0]) || is_blank(s[n - 1]) || s[n - 1] == '\r' || s[0] == '\r');
    if (!prefer_quotes && n && !multi && !edge && s[0] != '"') {
        sb_add(b, s, n);
        return 1;
    }
    if (!multi && !(s[0] == '"' && (s[1] == '"' || s[1] == 0))) {
        sb_add(b, "\"", 1);
        sb_add(b, s, n);
        sb_add(b, "\"", 1);
        return 1;
    }
    int ok = !strstr(s, "\"\"\"") && !(n && s[n - 1] == '"');
    sb_add(b, "\"\"\"", 3);
    sb_add(b, s, n);
    sb_add(b, "\"\"\"", 3);
    return ok;
}

static void line_value(sbuf *b, const char *instr, const char *arg, const char *s, int prefer_quotes) {
    sbuf t = {0};
    int ok = write_value(&t, s, prefer_quotes);
    if (t.oom) b->oom = 1;
    if (!ok) {
        sb_str(b, "# g4: the next value holds \"\"\" (or ends in a quote) and cannot be written exactly\n");
    }
    sb_str(b, instr);
    sb_add(b, " ", 1);
    if (arg) {
        sb_str(b, arg);
        sb_add(b, " ", 1);
    }
    if (t.p) sb_add(b, t.p, t.len);
    else sb_add(b, "\"\"", 2);
    sb_add(b, "\n", 1);
    free(t.p);
}

g4_status g4_modelfile_text(const g4_modelfile *mf, char **out, g4_error *err) {
    *out = NULL;
    sbuf b = {0};
    sb_add(&b, "", 0);
    if (mf->from) line_value(&b, "FROM", NULL, mf->from, 0);
    if (mf->tmpl) line_value(&b, "TEMPLATE", NULL, mf->tmpl, 1);
    if (mf->renderer) line_value(&b, "RENDERER", NULL, mf->renderer, 0);
    if (mf->parser) line_value(&b, "PARSER", NULL, mf->parser, 0);
    if (mf->requires) line_value(&b, "REQUIRES", NULL, mf->requires, 0);
    if (mf->system) line_value(&b, "SYSTEM", NULL, mf->system, 1);
    for (int i = 0; i < N_DEFS; i++) {
        json_t *v = json_object_get(mf->params, defs[i].name);
        if (!v) continue;
        size_t m = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t j = 0; j < m; j++) {
            json_t *e = json_is_array(v) ? json_array_get(v, j) : v;
            char num[64];
            if (json_is_string(e)) {
                line_value(&b, "PARAMETER", defs[i].name, json_string_value(e), 1);
                continue;
            }
            if (json_is_integer(e)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(e));
            else if (json_is_number(e)) fmt_num(json_number_value(e), num, sizeof num);
            else continue;
            line_value(&b, "PARAMETER", defs[i].name, num, 0);
        }
    }
    for (size_t i = 0; i < mf->n_messages; i++)
        line_value(&b, "MESSAGE", mf->messages[i].role, mf->messages[i].content, 1);
    for (size_t i = 0; i < mf->n_license; i++) line_value(&b, "LICENSE", NULL, mf->license[i], 1);
    if (b.oom) {
        free(b.p);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    *out = b.p;
    return G4_OK;
}
