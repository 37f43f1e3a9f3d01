/* g4 serve: HTTP (libmicrohttpd, a thread per connection), models, and the API handlers (server.h). */
#include "serve/server.h"
#include "g4_conv.h"
#include "chat/chat.h"
#include "grammar/grammar.h"
#include "sampler/sampler.h"
#include "serve/request.h"
#include "serve/webui.h"
#include "store/store.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OLLAMA_COMPAT_VERSION "0.13.0" /* the Ollama API version g4 serve answers /api/version with */
#define MAX_JOBS G4_SREQ_MAX_N /* choices of one request: n x prompts */
#define WAIT_MS 200

/* ---- small helpers ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom || !n) return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 1024;
        while (c < b->len + n + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) G4_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
/* v as compact JSON (then v is released) */
static void sb_json(sbuf *b, json_t *v) {
    if (!v) {
        b->oom = 1;
        return;
    }
    char *t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(v);
    if (!t) {
        b->oom = 1;
        return;
    }
    sb_str(b, t);
    free(t);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- the server ---- */

typedef struct smodel {
    char *key;            /* canonical name ("tiny:latest", or the path) */
    g4_store_model *sm;
    g4_model *m;
    g4_sched *sched;
    const g4_vocab *vocab;
    g4_gvocab *gv;        /* built on first structured-output request */
    pthread_mutex_t gv_mu;
    g4_chat_flavour flavour;
    int refs, loading;
    double ka;            /* keep_alive of the latest request (seconds; < 0 forever) */
    double expires;       /* g4_time_s() when idle and past it: unloaded (INFINITY: never) */
    double expires_wall;
    double load_s;
    struct smodel *next;
} smodel;

typedef enum { CONN_RECEIVING = 0, CONN_HANDLING } conn_stage;

typedef struct cinfo { /* one TCP connection (the housekeeper shuts down those that send too slowly) */
    int fd;
    double t_start;
    conn_stage stage;
    struct cinfo *next, *prev;
} cinfo;

typedef struct counters {
    uint64_t http_requests, http_errors, gen_requests, prompt_tokens, gen_tokens, cancelled;
    double prompt_s, gen_s;
} counters;

struct g4_server {
    g4_server_params p;
    char host[256];
    struct MHD_Daemon *d;
    int port;
    g4_store *store;
    pthread_mutex_t store_mu;
    pthread_mutex_t mu;   /* models, counters */
    pthread_cond_t cv;
    smodel *models;
    counters cnt;
    pthread_mutex_t log_mu;
    pthread_t house;
    int house_started;
    pthread_cond_t house_cv;
    atomic_int stopping;
    pthread_mutex_t conn_mu;
    cinfo *conns;
    int n_conns;
    /* the preloaded model */
    char *pre_path;       /* a GGUF path given on the command line (NULL: none or a stored name) */
    char *pre_alias;      /* its base name as a model name, "name:latest" */
    uint64_t seed_state;
};

static void slog(g4_server *s, const char *fmt, ...) G4_PRINTF(2, 3);
static void slog(g4_server *s, const char *fmt, ...) {
    if (!s->p.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->log_mu);
    s->p.log(s->p.log_user, line);
    pthread_mutex_unlock(&s->log_mu);
}

g4_server_params g4_server_default_params(void) {
    g4_server_params p = {0};
    p.host = "127.0.0.1";
    p.port = 11434;
    p.sched = g4_sched_default_params();
    p.sched.n_parallel = 4;
    p.sched.max_queue = 512;
    p.max_loaded = 1;
    p.keep_alive = 300;
    p.max_body = (size_t)16 << 20;
    p.max_header = (size_t)32 << 10;
    p.idle_timeout = 30;
    p.read_timeout = 60;
    p.max_connections = 256;
    return p;
}

int g4_server_port(const g4_server *s) { return s->port; }

g4_status g4_server_parse_host(const char *in, char *host, size_t hsize, int *port, g4_error *err) {
    const char *s = in;
    if (!strncasecmp(s, "http://", 7)) s += 7;
    else if (!strncasecmp(s, "https://", 8)) s += 8;
    size_t n = strcspn(s, "/"); /* a path after the address is ignored */
    const char *hs = s, *ps = NULL;
    size_t hl = n;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return g4_fail(err, G4_ERR_ARG, "'%.200s': unterminated [IPv6 address]", in);
        hs = s + 1;
        hl = (size_t)(close - s - 1);
        if ((size_t)(close - s + 1) < n) {
            if (close[1] != ':') return g4_fail(err, G4_ERR_ARG, "'%.200s': expected :PORT after ]", in);
            ps = close + 2;
        }
    } else {
        const char *c1 = memchr(s, ':', n);
        if (c1 && !memchr(c1 + 1, ':', (size_t)(s + n - c1 - 1))) { /* exactly one colon: host:port */
            hl = (size_t)(c1 - s);
            ps = c1 + 1;
        }
    }
    if (hl >= hsize) return g4_fail(err, G4_ERR_ARG, "'%.200s': host name too long", in);
    memcpy(host, hs, hl);
    host[hl] = 0;
    if (ps) {
        size_t pl = (size_t)(s + n - ps);
        char buf[8];
        if (!pl || pl > 5) return g4_fail(err, G4_ERR_ARG, "'%.200s': bad port", in);
        memcpy(buf, ps, pl);
        buf[pl] = 0;
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || v < 0 || v > 65535) return g4_fail(err, G4_ERR_ARG, "'%.200s': bad port (0 to 65535)", in);
        *port = (int)v;
    }
    return G4_OK;
}

/* ---- models ---- */

static void model_free(smodel *m) {
    if (!m) return;
    g4_sched_free(m->sched);
    g4_gvocab_free(m->gv);
    g4_model_free(m->m);
    g4_store_model_free(m->sm);
    pthread_mutex_destroy(&m->gv_mu);
    free(m->key);
    free(m);
}

static void model_unlink(g4_server *s, smodel *m) {
    for (smodel **pp = &s->models; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            return;
        }
}

static int n_models(const g4_server *s) {
    int n = 0;
    for (const smodel *m = s->models; m; m = m->next) n++;
    return n;
}

/* a request's model name -> its stored model and canonical key. HTTP status on failure (msg filled). */
static int model_resolve(g4_server *s, const char *name, g4_store_model **sm, char **key, char *msg, size_t msz) {
    g4_error err = {0};
    *sm = NULL;
    *key = NULL;
    if (s->pre_path && s->pre_alias) {
        char alias[G4_NAME_MAX + 1];
        g4_model_name nm;
        int is_alias = !strcmp(name, s->pre_path);
        if (!is_alias && !g4_name_parse(name, strlen(name), &nm, NULL)) {
            g4_name_string(&nm, alias, sizeof alias);
            is_alias = !strcasecmp(alias, s->pre_alias);
        }
        if (is_alias) {
            if (g4_store_resolve(NULL, s->pre_path, sm, &err)) goto fail500;
            *key = strdup(s->pre_alias);
            goto done;
        }
    }
    if (g4_name_is_path(name)) {
        if (!s->p.allow_paths) {
            snprintf(msg, msz, "model '%.200s' not found (g4 serve takes model names; file paths only with --allow-paths)", name);
            return 404;
        }
        if (g4_store_resolve(NULL, name, sm, &err)) {
            snprintf(msg, msz, "%s", err.msg);
            return 404;
        }
        *key = strdup(name);
        goto done;
    }
    pthread_mutex_lock(&s->store_mu);
    int has = s->store ? g4_store_has(s->store, name) : 0;
    g4_status rc = has == 1 ? g4_store_get(s->store, name, sm, &err) : G4_OK;
    pthread_mutex_unlock(&s->store_mu);
    if (has < 0) {
        snprintf(msg, msz, "invalid model name '%.200s'", name);
        return 400;
    }
    if (has == 0) {
        snprintf(msg, msz, "model '%.200s' not found", name);
        return 404;
    }
    if (rc) goto fail500;
    *key = strdup((*sm)->name);
done:
    if (!*key) {
        g4_store_model_free(*sm);
        *sm = NULL;
        snprintf(msg, msz, "out of memory");
        return 500;
    }
    return 0;
fail500:
    snprintf(msg, msz, "%s", err.msg);
    return 500;
}

static g4_chat_flavour model_flavour(const g4_model *m) { return g4_chat_flavour_of_model(m, NULL); }

static g4_status model_load(g4_server *s, smodel *m, g4_error *err) {
    const double t0 = g4_time_s();
    g4_status rc = g4_model_open(&m->m, m->sm->path, err);
    if (rc) return rc;
    m->vocab = g4_model_vocab(m->m);
    if (!m->vocab) return g4_fail(err, G4_ERR_FORMAT, "%s has no tokenizer", m->sm->path);
    m->flavour = model_flavour(m->m);
    if (!json_object_size(m->sm->details)) { /* a file given by path: its details from the GGUF */
        json_t *d = NULL;
        if (!g4_gguf_details(m->sm->path, &d, NULL) && d) {
            json_decref(m->sm->details);
            m->sm->details = d;
        }
    }
    if ((rc = g4_sched_new(&m->sched, m->m, &s->p.sched, err))) return rc;
    m->load_s = g4_time_s() - t0;
    g4_sched_stats st;
    g4_sched_get_stats(m->sched, &st);
    char spec[128];
    g4_kv_spec_string(&s->p.sched.ctx, spec, sizeof spec);
    slog(s, "loaded %s (%s) in %.2f s: %d slots x %d tokens, KV cache %s %.1f MiB", m->key, m->sm->path, m->load_s,
         st.n_parallel, st.n_ctx, spec, st.kv_bytes / 1048576.0);
    return G4_OK;
}

/* The model of a request, loaded if need be (refs taken). 0, or an HTTP status with msg. */
static int model_acquire(g4_server *s, const char *name, smodel **out, double *load_s, char *msg, size_t msz) {
    *out = NULL;
    *load_s = 0;
    g4_store_model *sm;
    char *key;
    int st = model_resolve(s, name, &sm, &key, msg, msz);
    if (st) return st;
    const double give_up = g4_time_s() + 30;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (atomic_load(&s->stopping)) {
            pthread_mutex_unlock(&s->mu);
            g4_store_model_free(sm);
            free(key);
            snprintf(msg, msz, "the server is shutting down");
            return 503;
        }
        smodel *m = s->models;
        while (m && strcmp(m->key, key)) m = m->next;
        if (m && !m->loading) {
            m->refs++;
            pthread_mutex_unlock(&s->mu);
            g4_store_model_free(sm);
            free(key);
            *out = m;
            return 0;
        }
        if (!m && n_models(s) >= s->p.max_loaded) { /* make room: unload the idle model that expires first */
            smodel *victim = NULL;
            for (smodel *o = s->models; o; o = o->next)
                if (!o->refs && !o->loading && (!victim || o->expires < victim->expires)) victim = o;
            if (victim) {
                model_unlink(s, victim);
                pthread_mutex_unlock(&s->mu);
                slog(s, "unloading %s to make room for %s", victim->key, key);
                model_free(victim);
                pthread_mutex_lock(&s->mu);
                continue;
            }
        } else if (!m) {
            break; /* room: load it */
        }
        /* it is being loaded, or every loaded model is busy: wait (like Ollama, which queues the request) */
        if (g4_time_s() > give_up) {
            pthread_mutex_unlock(&s->mu);
            g4_store_model_free(sm);
            free(key);
            snprintf(msg, msz, "server busy: %s (--max-loaded %d)", m ? "the model is still loading" : "every loaded model is in use",
                     s->p.max_loaded);
            return 503;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    smodel *m = calloc(1, sizeof *m);
    if (!m) {
        pthread_mutex_unlock(&s->mu);
        g4_store_model_free(sm);
        free(key);
        snprintf(msg, msz, "out of memory");
        return 500;
    }
    pthread_mutex_init(&m->gv_mu, NULL);
    m->key = key;
    m->sm = sm;
    m->loading = 1;
    m->refs = 1;
    m->ka = s->p.keep_alive;
    m->expires = INFINITY;
    m->next = s->models;
    s->models = m;
    pthread_mutex_unlock(&s->mu);
    g4_error err = {0};
    g4_status rc = model_load(s, m, &err);
    pthread_mutex_lock(&s->mu);
    if (rc) {
        model_unlink(s, m);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        slog(s, "loading %s failed: %s", m->key, err.msg);
        snprintf(msg, msz, "cannot load model '%.200s': %.500s", name, err.msg);
        model_free(m);
        return rc == G4_ERR_NOMEM ? 507 : 500;
    }
    m->loading = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *load_s = m->load_s;
    *out = m;
    return 0;
}

/* The request is done with the model: keep_alive (the request's, else the server's) starts when the last one
 * leaves; 0 unloads it at once. */
static void model_release(g4_server *s, smodel *m, int has_ka, double ka) {
    if (!m) return;
    pthread_mutex_lock(&s->mu);
    if (has_ka) m->ka = ka;
    smodel *drop = NULL;
    if (--m->refs == 0) {
        if (m->ka == 0) {
            model_unlink(s, m);
            drop = m;
        } else {
            m->expires = m->ka < 0 ? INFINITY : g4_time_s() + m->ka;
            m->expires_wall = m->ka < 0 ? INFINITY : wall_now() + m->ka;
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (drop) {
        slog(s, "unloading %s (keep_alive 0)", drop->key);
        model_free(drop);
    }
}

static g4_gvocab *model_gvocab(smodel *m, g4_error *err) {
    pthread_mutex_lock(&m->gv_mu);
    if (!m->gv) g4_gvocab_new(&m->gv, m->vocab, err);
    g4_gvocab *gv = m->gv;
    pthread_mutex_unlock(&m->gv_mu);
    return gv;
}

/* ---- housekeeping: idle models out, slow connections cut ---- */

static void *housekeeper(void *arg) {
    g4_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->house_cv, &s->mu, &ts);
        if (atomic_load(&s->stopping)) break;
        const double now = g4_time_s();
        for (;;) {
            smodel *m = s->models;
            while (m && (m->refs || m->loading || !(m->expires <= now))) m = m->next;
            if (!m) break;
            model_unlink(s, m);
            pthread_mutex_unlock(&s->mu);
            slog(s, "unloading %s (idle for keep_alive %.0f s)", m->key, m->ka);
            model_free(m);
            pthread_mutex_lock(&s->mu);
        }
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->conn_mu);
        for (cinfo *c = s->conns; c; c = c->next)
            if (c->stage == CONN_RECEIVING && c->fd >= 0 && now - c->t_start > s->p.read_timeout) {
                shutdown(c->fd, SHUT_RDWR); /* the connection's thread sees the end and closes it */
                c->fd = -1;
            }
        pthread_mutex_unlock(&s->conn_mu);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    g4_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        cinfo *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (!c) return;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        c->t_start = g4_time_s();
        pthread_mutex_lock(&s->conn_mu);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        pthread_mutex_unlock(&s->conn_mu);
    } else {
        cinfo *c = *socket_context;
        if (!c) return;
        pthread_mutex_lock(&s->conn_mu);
        if (c->prev) c->prev->next = c->next;
        else s->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        s->n_conns--;
        pthread_mutex_unlock(&s->conn_mu);
        free(c);
        *socket_context = NULL;
    }
}

static void conn_stage_set(g4_server *s, struct MHD_Connection *conn, conn_stage st) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    cinfo *c = ci ? ci->socket_context : NULL;
    if (!c) return;
    pthread_mutex_lock(&s->conn_mu);
    c->stage = st;
    c->t_start = g4_time_s();
    pthread_mutex_unlock(&s->conn_mu);
}

/* the client closed its end (or the socket failed) */
static int conn_gone(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    struct pollfd pf = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&pf, 1, 0) < 0) return 0;
    return (pf.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* ---- requests ---- */

typedef enum { SHAPE_OLLAMA, SHAPE_OPENAI } err_shape;

typedef struct reqctx {
    char *body;
    size_t len, cap;
    int too_big, early; /* early: a response was queued before the body was read */
    double t0;
    unsigned status;
    int n_prompt, n_gen;
    char method[12];
    char path[160];
    const char *origin; /* allowed Origin to echo (NULL: none) */
    int origin_star;
} reqctx;

static err_shape shape_of(const char *url) {
    return !strncmp(url, "/api/", 5) || !strcmp(url, "/") ? SHAPE_OLLAMA : SHAPE_OPENAI;
}

static void add_headers(struct MHD_Response *r, const reqctx *rq) {
    if (rq->origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", rq->origin_star ? "*" : rq->origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
}

static enum MHD_Result send_text(struct MHD_Connection *c, reqctx *rq, unsigned status, const char *ctype,
                                 const char *body, size_t len, const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    add_headers(r, rq);
    rq->status = status;
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, reqctx *rq, unsigned status, json_t *v) {
    char *t = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!t) return send_text(c, rq, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
    enum MHD_Result ret = send_text(c, rq, status, "application/json; charset=utf-8", t, strlen(t), NULL);
    free(t);
    return ret;
}

static const char *oai_type(unsigned status) {
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429:
    case 503: return "unavailable_error";
    case 500:
    case 507: return "server_error";
    default: return "invalid_request_error";
    }
}

static enum MHD_Result send_error(struct MHD_Connection *c, reqctx *rq, err_shape shape, unsigned status, const char *msg) {
    json_t *v;
    if (shape == SHAPE_OLLAMA) v = g4_ollama_error(msg);
    else {
        v = g4_oai_error(msg, oai_type(status), NULL, status == 404 && strstr(msg, "model") ? "model_not_found" : NULL);
        if (v) json_object_set_new(json_object_get(v, "error"), "code", json_integer(status)); /* llama-server's */
    }
    char *t = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(v);
    enum MHD_Result ret = t ? send_text(c, rq, status, "application/json; charset=utf-8", t, strlen(t),
                                        status == 503 ? "1" : NULL)
                            : send_text(c, rq, 500, "application/json", "{\"error\":\"out of memory\"}", 25, NULL);
    free(t);
    return ret;
}

static int http_status_of(g4_status rc) {
    switch (rc) {
    case G4_ERR_ARG:
    case G4_ERR_CONTEXT:
    case G4_ERR_UNSUPPORTED:
    case G4_ERR_FORMAT: return 400;
    case G4_ERR_BUSY: return 503;
    case G4_ERR_NOMEM: return 507;
    default: return 500;
    }
}

/* ---- generation ---- */

typedef struct gen {
    g4_server *s;
    smodel *m;
    g4_sreq r;
    struct MHD_Connection *conn;
    reqctx *rq;
    int n_jobs;
    g4_job *jobs[MAX_JOBS];
    g4_job_cursor cur[MAX_JOBS];
    g4_choice ch[MAX_JOBS];
    int n_calls_sent[MAX_JOBS], role_sent[MAX_JOBS], final_sent[MAX_JOBS];
    int n_done;
    g4_grammar *grammar;
    sbuf out;
    size_t out_off;
    int finished;
    double t0, load_s;
    char id[48];
    int64_t created;
    int clamped;
} gen;

static void gen_free(gen *g) {
    if (!g) return;
    int any = 0;
    for (int i = 0; i < g->n_jobs; i++)
        if (g->jobs[i]) {
            if (!g->ch[i].done) any = 1;
            g4_job_cancel(g->jobs[i]);
        }
    /* a grammar must outlive its jobs' streams: wait until the scheduler has let go of them */
    for (int i = 0; g->grammar && i < g->n_jobs; i++) {
        g4_job_delta d;
        while (g->jobs[i] && !g->ch[i].done) {
            if (g4_job_next(g->jobs[i], &g->cur[i], WAIT_MS, &d) && d.done) g->ch[i].done = 1;
            g4_job_delta_clear(&d);
        }
    }
    g4_server *s = g->s;
    pthread_mutex_lock(&s->mu);
    if (any) s->cnt.cancelled++;
    for (int i = 0; i < g->n_jobs; i++) {
        s->cnt.prompt_tokens += (uint64_t)g->ch[i].res.n_prompt;
        s->cnt.gen_tokens += (uint64_t)g->ch[i].res.n_gen;
        s->cnt.prompt_s += g->ch[i].res.t_prompt;
        s->cnt.gen_s += g->ch[i].res.t_gen;
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < g->n_jobs; i++) {
        g4_job_release(g->jobs[i]);
        g4_choice_free(&g->ch[i]);
    }
    g4_grammar_free(g->grammar);
    model_release(s, g->m, g->r.has_keep_alive, g->r.keep_alive);
    g4_sreq_free(&g->r);
    free(g->out.p);
    free(g);
}

static void gen_count(gen *g) {
    int np = 0, ng = 0;
    for (int i = 0; i < g->n_jobs; i++) {
        np += g->ch[i].res.n_prompt;
        ng += g->ch[i].res.n_gen;
    }
    g->rq->n_prompt = np;
    g->rq->n_gen = ng;
}

static json_t *jstr(const char *p, size_t n) {
    json_t *v = json_stringn(p ? p : "", p ? n : 0);
    return v ? v : json_string("\xef\xbf\xbd");
}

/* the streamed form of one delta of choice i */
static void stream_delta(gen *g, int i, const g4_job_delta *d) {
    const g4_sreq *r = &g->r;
    g4_choice *c = &g->ch[i];
    char ts[48];
    g4_rfc3339(wall_now(), ts, sizeof ts);
    if (r->api == G4_API_GENERATE || r->api == G4_API_CHAT) {
        const int raw = r->api == G4_API_GENERATE && r->raw;
        const char *content = raw ? d->text : d->answer;
        size_t clen = raw ? d->text_len : d->answer_len;
        const int calls = d->tool_calls && json_array_size(d->tool_calls);
        if (clen || d->thinking_len || calls) {
            json_t *o = json_pack("{s:s,s:s}", "model", r->model, "created_at", ts);
            if (r->api == G4_API_GENERATE) {
                json_object_set_new(o, "response", jstr(content, clen));
                if (d->thinking_len) json_object_set_new(o, "thinking", jstr(d->thinking, d->thinking_len));
            } else {
                json_t *m = json_pack("{s:s,s:o}", "role", "assistant", "content", jstr(content, clen));
                if (d->thinking_len) json_object_set_new(m, "thinking", jstr(d->thinking, d->thinking_len));
                if (calls) json_object_set_new(m, "tool_calls", g4_ollama_tool_calls(d->tool_calls, g->n_calls_sent[i], NULL));
                json_object_set_new(o, "message", m);
            }
            json_object_set_new(o, "done", json_false());
            sb_json(&g->out, o);
            sb_str(&g->out, "\n");
        }
        if (d->done) {
            if (d->result.error) {
                sb_json(&g->out, g4_ollama_error(d->result.message));
                sb_str(&g->out, "\n");
            } else {
                json_t *o = json_pack("{s:s,s:s}", "model", r->model, "created_at", ts);
                if (r->api == G4_API_GENERATE) json_object_set_new(o, "response", json_string(""));
                else json_object_set_new(o, "message", json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
                json_object_set_new(o, "done", json_true());
                g4_ollama_final_fields(o, &d->result, g4_time_s() - g->t0, g->load_s);
                sb_json(&g->out, o);
                sb_str(&g->out, "\n");
            }
        }
    } else {
        const int chat = r->api == G4_API_OAI_CHAT;
        json_t *lp = d->n_logprobs ? g4_logprobs_json(d->logprobs, d->n_logprobs, g->m->vocab) : NULL;
        const int calls = d->tool_calls && json_array_size(d->tool_calls);
        int any = chat ? (d->answer_len || d->thinking_len || calls || lp) : (d->text_len || lp);
        if (chat && !g->role_sent[i]) any = 1;
        if (any) {
            json_t *ch = json_pack("{s:i}", "index", i);
            if (chat) {
                json_t *delta = json_object();
                if (!g->role_sent[i]) {
                    json_object_set_new(delta, "role", json_string("assistant"));
                    if (!d->answer_len) json_object_set_new(delta, "content", json_string(""));
                    g->role_sent[i] = 1;
                }
                if (d->answer_len) json_object_set_new(delta, "content", jstr(d->answer, d->answer_len));
                if (d->thinking_len) json_object_set_new(delta, "reasoning_content", jstr(d->thinking, d->thinking_len));
                if (calls) json_object_set_new(delta, "tool_calls", g4_oai_tool_calls(d->tool_calls, g->n_calls_sent[i], "call_", 1));
                json_object_set_new(ch, "delta", delta);
                json_object_set_new(ch, "logprobs", lp ? json_pack("{s:O}", "content", lp) : json_null());
            } else {
                json_object_set_new(ch, "text", jstr(d->text, d->text_len));
                json_object_set_new(ch, "logprobs", json_null());
            }
            json_object_set_new(ch, "finish_reason", json_null());
            json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", g->id, "object",
                                  chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)g->created,
                                  "model", r->model, "system_fingerprint", "g4", "choices", ch);
            sb_str(&g->out, "data: ");
            sb_json(&g->out, o);
            sb_str(&g->out, "\n\n");
        }
        json_decref(lp);
        if (d->done) {
            if (d->result.error) {
                sb_str(&g->out, "data: ");
                sb_json(&g->out, g4_oai_error(d->result.message, "server_error", NULL, NULL));
                sb_str(&g->out, "\n\n");
            } else {
                const int has_calls = json_array_size(c->tool_calls) + (calls ? json_array_size(d->tool_calls) : 0) > 0;
                json_t *ch = json_pack("{s:i,s:o,s:s}", "index", i, chat ? "delta" : "text", chat ? json_object() : json_string(""),
                                       "finish_reason", g4_finish_reason(&d->result, has_calls));
                json_object_set_new(ch, "logprobs", json_null());
                json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", g->id, "object",
                                      chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)g->created,
                                      "model", r->model, "system_fingerprint", "g4", "choices", ch);
                sb_str(&g->out, "data: ");
                sb_json(&g->out, o);
                sb_str(&g->out, "\n\n");
            }
        }
    }
    if (d->tool_calls) g->n_calls_sent[i] += (int)json_array_size(d->tool_calls);
}

/* after the last choice ended: OpenAI's usage chunk and [DONE] */
static void stream_end(gen *g) {
    if (g->r.api == G4_API_OAI_CHAT || g->r.api == G4_API_OAI_COMPLETION) {
        if (g->r.include_usage) {
            int p = 0, cached = 0, n = 0;
            for (int i = 0; i < g->n_jobs; i++) {
                if (i % g->r.n == 0) p += g->ch[i].res.n_prompt, cached += g->ch[i].res.n_prompt_cached;
                n += g->ch[i].res.n_gen;
            }
            json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[],s:o}", "id", g->id, "object",
                                  g->r.api == G4_API_OAI_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                                  (json_int_t)g->created, "model", g->r.model, "system_fingerprint", "g4", "choices", "usage",
                                  g4_oai_usage(p, cached, n));
            sb_str(&g->out, "data: ");
            sb_json(&g->out, o);
            sb_str(&g->out, "\n\n");
        }
        sb_str(&g->out, "data: [DONE]\n\n");
    }
    g->finished = 1;
}

/* Gathers what the jobs have produced (waiting up to wait_ms when nothing is new); streaming: formats it into out. */
static void gen_poll(gen *g, int wait_ms, int streaming) {
    int any = 0;
    for (int pass = 0; pass < 2 && !any; pass++) {
        for (int i = 0; i < g->n_jobs; i++) {
            if (g->ch[i].done) continue;
            g4_job_delta d;
            /* first pass: whatever is ready; second: wait on the first unfinished job */
            int got = g4_job_next(g->jobs[i], &g->cur[i], pass ? wait_ms : 0, &d);
            if (got) {
                any = 1;
                if (streaming) stream_delta(g, i, &d);
                if (g4_choice_add(&g->ch[i], &d, g->m->vocab, NULL)) g->out.oom = 1;
                if (d.done) {
                    g->ch[i].done = 1;
                    g->ch[i].res = d.result;
                    g->n_done++;
                }
            }
            g4_job_delta_clear(&d);
            if (pass) break;
        }
    }
    gen_count(g);
    if (streaming && g->n_done == g->n_jobs && !g->finished) stream_end(g);
}

static ssize_t gen_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    gen *g = cls;
    for (;;) {
        if (g->out_off < g->out.len) {
            size_t n = g->out.len - g->out_off;
            if (n > max) n = max;
            memcpy(buf, g->out.p + g->out_off, n);
            g->out_off += n;
            return (ssize_t)n;
        }
        g->out.len = g->out_off = 0;
        if (g->out.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (g->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&g->s->stopping)) return MHD_CONTENT_READER_END_WITH_ERROR;
        gen_poll(g, WAIT_MS, 1);
        if (!g->out.len && conn_gone(g->conn)) return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left */
    }
}

static void gen_reader_free(void *cls) { gen_free(cls); }

/* the conversation in front of the request's: the system prompt (the request's, else the Modelfile's), then the
 * Modelfile's MESSAGEs */
static g4_status render_prompt(const gen *g, int think, char **text, size_t *len, g4_error *err) {
    const g4_sreq *r = &g->r;
    const g4_store_model *sm = g->m->sm;
    json_t *conv = json_array();
    if (!conv) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    size_t first = 0;
    const char *sys = NULL;
    if (r->api == G4_API_GENERATE) sys = r->system ? r->system : sm->system;
    else {
        const json_t *m0 = json_array_get(r->messages, 0);
        const char *role = json_string_value(json_object_get(m0, "role"));
        if (role && (!strcmp(role, "system") || !strcmp(role, "developer"))) {
            json_array_append(conv, (json_t *)m0);
            first = 1;
        } else sys = sm->system;
    }
    if (sys && *sys) json_array_append_new(conv, json_pack("{s:s,s:s}", "role", "system", "content", sys));
    json_array_extend(conv, sm->messages);
    if (r->api == G4_API_GENERATE) json_array_append_new(conv, json_pack("{s:s,s:s%}", "role", "user", "content", r->prompt, r->prompt_len));
    else
        for (size_t i = first; i < json_array_size(r->messages); i++) json_array_append(conv, json_array_get(r->messages, i));
    g4_chat_opts o = g4_chat_default_opts();
    o.flavour = g->m->flavour;
    o.enable_thinking = think;
    o.add_generation_prompt = 1;
    g4_status rc = g4_chat_render(conv, r->tools, &o, text, len, err);
    json_decref(conv);
    return rc;
}

/* raw text: tokenized as it is (control tokens written in it count), BOS in front unless it starts with one */
static g4_status tokenize_raw(const g4_vocab *v, const char *t, size_t n, int32_t **ids, size_t *nids, g4_error *err) {
    const int has_bos = n >= 5 && !memcmp(t, "<bos>", 5);
    return g4_tokenize_alloc(v, t, n, !has_bos, 1, ids, nids, err);
}

static enum MHD_Result handle_generate(g4_server *s, struct MHD_Connection *c, reqctx *rq, g4_api api) {
    const err_shape shape = api == G4_API_GENERATE || api == G4_API_CHAT ? SHAPE_OLLAMA : SHAPE_OPENAI;
    g4_error err = {0};
    char msg[1024];
    gen *g = calloc(1, sizeof *g);
    if (!g) return send_error(c, rq, shape, 507, "out of memory");
    g->s = s;
    g->conn = c;
    g->rq = rq;
    g->t0 = rq->t0;
    g->created = (int64_t)wall_now();
    pthread_mutex_lock(&s->mu);
    s->cnt.gen_requests++;
    uint64_t rnd = splitmix(&s->seed_state);
    pthread_mutex_unlock(&s->mu);
    snprintf(g->id, sizeof g->id, "%s-%016llx", api == G4_API_OAI_CHAT ? "chatcmpl" : "cmpl", (unsigned long long)rnd);
    g4_status rc = g4_sreq_parse(api, rq->body ? rq->body : "", rq->len, &g->r, &err);
    if (rc) {
        gen_free(g);
        return send_error(c, rq, shape, http_status_of(rc), err.msg);
    }
    int st = model_acquire(s, g->r.model, &g->m, &g->load_s, msg, sizeof msg);
    if (st) {
        gen_free(g);
        return send_error(c, rq, shape, (unsigned)st, msg);
    }
    const g4_sreq *r = &g->r;
    if (r->empty && (api == G4_API_GENERATE || api == G4_API_CHAT)) { /* load (or unload) only */
        const int unload = r->has_keep_alive && r->keep_alive == 0;
        char ts[48];
        g4_rfc3339(wall_now(), ts, sizeof ts);
        json_t *o = json_pack("{s:s,s:s}", "model", r->model, "created_at", ts);
        if (api == G4_API_GENERATE) json_object_set_new(o, "response", json_string(""));
        else json_object_set_new(o, "message", json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
        json_object_set_new(o, "done", json_true());
        json_object_set_new(o, "done_reason", json_string(unload ? "unload" : "load"));
        gen_free(g);
        return send_json(c, rq, 200, o);
    }
    /* settings: the model's defaults, the Modelfile's PARAMETERs, the request's options */
    g4_sampler_params base = g4_sampler_model_params(g->m->m), sp;
    const char *stops[G4_GEN_MAX_STOP];
    int max_tokens, n_stop, n_ctx, clamped;
    g4_sched_stats sst;
    g4_sched_get_stats(g->m->sched, &sst);
    rc = g4_sreq_settings(r, &base, g->m->sm->params, sst.n_ctx, rnd, &sp, &max_tokens, stops, G4_GEN_MAX_STOP, &n_stop,
                          &n_ctx, &clamped, &err);
    if (rc) {
        gen_free(g);
        return send_error(c, rq, shape, 400, err.msg);
    }
    if (clamped) slog(s, "num_ctx larger than the server's context (%d tokens, --ctx) was clamped to it", sst.n_ctx);
    g4_gvocab *gv = NULL;
    if (r->format) {
        rc = g4_grammar_from_schema(&g->grammar, r->format == 2 ? r->schema : NULL, &err);
        if (!rc && !(gv = model_gvocab(g->m, &err))) rc = err.code ? err.code : G4_ERR_NOMEM;
        if (rc) {
            snprintf(msg, sizeof msg, "%s: %s", api == G4_API_GENERATE || api == G4_API_CHAT ? "format" : "response_format", err.msg);
            gen_free(g);
            return send_error(c, rq, shape, rc == G4_ERR_NOMEM ? 507 : 400, msg);
        }
    }
    const int think = r->think < 0 ? s->p.think_default : r->think;
    const int chat = !(r->raw || api == G4_API_OAI_COMPLETION);
    const int n_prompts = api == G4_API_OAI_COMPLETION ? (int)json_array_size(r->prompts) : 1;
    if (n_prompts * r->n > MAX_JOBS) {
        snprintf(msg, sizeof msg, "%d prompts x n %d: at most %d choices in one request", n_prompts, r->n, MAX_JOBS);
        gen_free(g);
        return send_error(c, rq, shape, 400, msg);
    }
    for (int pi = 0; pi < n_prompts; pi++) {
        int32_t *ids = NULL;
        size_t nids = 0;
        int in_thinking = 0;
        if (chat) {
            char *text = NULL;
            size_t len = 0;
            rc = render_prompt(g, think, &text, &len, &err);
            if (!rc) {
                in_thinking = g4_chat_prompt_in_thinking(text, len);
                rc = g4_tokenize_alloc(g->m->vocab, text, len, 0, 1, &ids, &nids, &err);
            }
            free(text);
        } else if (api == G4_API_GENERATE) {
            rc = tokenize_raw(g->m->vocab, r->prompt, r->prompt_len, &ids, &nids, &err);
        } else {
            const json_t *p = json_array_get(r->prompts, (size_t)pi);
            rc = tokenize_raw(g->m->vocab, json_string_value(p), json_string_length(p), &ids, &nids, &err);
        }
        if (!rc && nids > (size_t)sst.n_ctx) {
            rc = g4_fail(&err, G4_ERR_CONTEXT, "the prompt has %zu tokens; the context holds %d (--ctx)", nids, sst.n_ctx);
        }
        for (int k = 0; !rc && k < r->n; k++) {
            g4_job_params jp = {.prompt = ids, .n_prompt = (int)nids, .n_ctx = n_ctx};
            jp.stream = g4_stream_default_params();
            jp.stream.sampling = sp;
            jp.stream.sampling.seed = sp.seed + (uint64_t)k;
            jp.stream.max_tokens = max_tokens;
            jp.stream.stop = stops;
            jp.stream.n_stop = n_stop;
            jp.stream.chat = chat;
            jp.stream.think = chat && think;
            jp.stream.in_thinking = in_thinking;
            jp.stream.grammar = g->grammar;
            jp.stream.gvocab = gv;
            jp.stream.n_logprobs = r->logprobs;
            const int j = g->n_jobs;
            if ((rc = g4_choice_init(&g->ch[j], &err))) break;
            g->n_jobs++;
            rc = g4_sched_submit(g->m->sched, &jp, &g->jobs[j], &err);
            if (rc) g->ch[j].done = 1;
        }
        free(ids);
        if (rc) {
            const unsigned hs = (unsigned)http_status_of(rc);
            if (rc == G4_ERR_CONTEXT && strstr(err.msg, "context holds")) {
                snprintf(msg, sizeof msg, "%s: the prompt is too long for this server (raise --ctx, or shorten it)", err.msg);
            } else snprintf(msg, sizeof msg, "%s", err.msg);
            gen_free(g);
            return send_error(c, rq, shape, hs, msg);
        }
    }
    /* generation may take longer than the idle timeout: the connection's own timeout is off from here on */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0);
    if (r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, gen_reader, g, gen_reader_free);
        if (!resp) {
            gen_free(g);
            return MHD_NO;
        }
        const int sse = api == G4_API_OAI_CHAT || api == G4_API_OAI_COMPLETION;
        MHD_add_response_header(resp, "Content-Type", sse ? "text/event-stream" : "application/x-ndjson");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        add_headers(resp, rq);
        rq->status = 200;
        enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    while (g->n_done < g->n_jobs) {
        if (atomic_load(&s->stopping)) {
            gen_free(g);
            return send_error(c, rq, shape, 503, "the server is shutting down");
        }
        gen_poll(g, WAIT_MS, 0);
        if (g->n_done < g->n_jobs && conn_gone(c)) { /* the client left: its slots are freed now */
            gen_free(g);
            rq->status = 499;
            return MHD_NO;
        }
    }
    for (int i = 0; i < g->n_jobs; i++)
        if (g->ch[i].res.error) {
            snprintf(msg, sizeof msg, "%s", g->ch[i].res.message);
            const unsigned hs = (unsigned)http_status_of(g->ch[i].res.error);
            gen_free(g);
            return send_error(c, rq, shape, hs, msg);
        }
    json_t *ans;
    if (shape == SHAPE_OLLAMA) ans = g4_ollama_answer(r, r->model, wall_now(), &g->ch[0], g4_time_s() - g->t0, g->load_s);
    else {
        g4_choice *cs[MAX_JOBS];
        for (int i = 0; i < g->n_jobs; i++) cs[i] = &g->ch[i];
        ans = g4_oai_answer(r, g->id, r->model, g->created, cs, g->n_jobs);
    }
    gen_free(g);
    return send_json(c, rq, 200, ans);
}

/* ---- the other endpoints ---- */

/* a JSON object body (NULL with the response sent when it is not one) */
static json_t *body_object(struct MHD_Connection *c, reqctx *rq, err_shape shape, enum MHD_Result *ret) {
    json_error_t je;
    json_t *o = json_loadb(rq->body ? rq->body : "", rq->len, 0, &je);
    if (!json_is_object(o)) {
        char msg[300];
        if (o) snprintf(msg, sizeof msg, "the request body must be a JSON object");
        else snprintf(msg, sizeof msg, "invalid JSON in the request body: %s (line %d, column %d)", je.text, je.line, je.column);
        json_decref(o);
        *ret = send_error(c, rq, shape, 400, msg);
        return NULL;
    }
    return o;
}

/* model / name field of a body */
static const char *body_model(const json_t *o) {
    const char *m = json_string_value(json_object_get(o, "model"));
    return m && *m ? m : json_string_value(json_object_get(o, "name"));
}

/* the preloaded file as a /api/tags entry */
static json_t *preload_tag(g4_server *s) {
    g4_store_model *sm = NULL;
    if (!s->pre_path || g4_store_resolve(NULL, s->pre_path, &sm, NULL)) return NULL;
    char ts[48];
    g4_rfc3339((double)sm->modified, ts, sizeof ts);
    json_t *details = NULL;
    if (g4_gguf_details(sm->path, &details, NULL)) details = json_object();
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", s->pre_alias, "model", s->pre_alias, "modified_at", ts, "size",
                          (json_int_t)sm->size, "digest", "", "details", details ? details : json_object());
    g4_store_model_free(sm);
    return o;
}

static json_t *tags_json(g4_server *s) {
    json_t *tags = NULL;
    pthread_mutex_lock(&s->store_mu);
    if (!s->store || g4_store_tags_json(s->store, &tags, NULL)) tags = NULL;
    pthread_mutex_unlock(&s->store_mu);
    if (!tags) tags = json_pack("{s:[]}", "models");
    json_t *pre = preload_tag(s);
    if (pre && tags) json_array_insert_new(json_object_get(tags, "models"), 0, pre);
    else json_decref(pre);
    return tags;
}

static enum MHD_Result handle_show(g4_server *s, struct MHD_Connection *c, reqctx *rq) {
    enum MHD_Result ret;
    json_t *o = body_object(c, rq, SHAPE_OLLAMA, &ret);
    if (!o) return ret;
    const char *name = body_model(o);
    if (!name) {
        json_decref(o);
        return send_error(c, rq, SHAPE_OLLAMA, 400, "model is required");
    }
    g4_store_model *sm;
    char *key, msg[1024];
    int st = model_resolve(s, name, &sm, &key, msg, sizeof msg);
    if (st) {
        json_decref(o);
        return send_error(c, rq, SHAPE_OLLAMA, (unsigned)st, msg);
    }
    const int verbose = json_is_true(json_object_get(o, "verbose"));
    json_t *show = NULL;
    g4_error err = {0};
    pthread_mutex_lock(&s->store_mu);
    g4_status rc = g4_store_show(sm->is_file ? NULL : s->store, sm->is_file ? sm->path : sm->name, verbose, &show, &err);
    pthread_mutex_unlock(&s->store_mu);
    g4_store_model_free(sm);
    free(key);
    json_decref(o);
    if (rc) return send_error(c, rq, SHAPE_OLLAMA, rc == G4_ERR_ARG ? 404 : 500, err.msg);
    return send_json(c, rq, 200, show);
}

static json_t *ps_json(g4_server *s) {
    json_t *a = json_array();
    pthread_mutex_lock(&s->mu);
    for (smodel *m = s->models; m && a; m = m->next) {
        if (m->loading) continue;
        g4_sched_stats st;
        g4_sched_get_stats(m->sched, &st);
        char ts[48], spec[128];
        double exp = m->refs ? wall_now() + (m->ka < 0 ? 0 : m->ka) : m->expires_wall;
        if (m->ka < 0 || !isfinite(exp)) snprintf(ts, sizeof ts, "2318-01-01T00:00:00Z"); /* forever, as Ollama writes it */
        else g4_rfc3339(exp, ts, sizeof ts);
        g4_kv_spec_string(&s->p.sched.ctx, spec, sizeof spec);
        json_t *e = json_pack("{s:s,s:s,s:I,s:s,s:O,s:s,s:i,s:i,s:{s:s,s:i,s:I,s:I,s:i,s:i,s:s}}", "name", m->key, "model",
                              m->key, "size", (json_int_t)(m->sm->size + st.kv_bytes), "digest", m->sm->digest, "details",
                              m->sm->details, "expires_at", ts, "size_vram", 0, "context_length", st.n_ctx, "g4", "path",
                              m->sm->path, "parallel", st.n_parallel, "kv_bytes", (json_int_t)st.kv_bytes, "kv_tokens",
                              (json_int_t)st.kv_tokens, "busy", st.busy, "queued", st.queued, "kv", spec);
        if (e) json_array_append_new(a, e);
    }
    pthread_mutex_unlock(&s->mu);
    return a ? json_pack("{s:o}", "models", a) : NULL;
}

typedef struct create_log {
    json_t *lines;
} create_log;

static void create_progress(void *user, const char *status, uint64_t done, uint64_t total) {
    create_log *cl = user;
    json_t *o = total ? json_pack("{s:s,s:I,s:I}", "status", status, "total", (json_int_t)total, "completed", (json_int_t)done)
                      : json_pack("{s:s}", "status", status);
    /* one line per step (sizes: only the end of each) */
    size_t n = json_array_size(cl->lines);
    json_t *last = n ? json_array_get(cl->lines, n - 1) : NULL;
    if (o && last && json_equal(json_object_get(last, "status"), json_object_get(o, "status")) && total)
        json_array_set_new(cl->lines, n - 1, o);
    else if (o) json_array_append_new(cl->lines, o);
}

static enum MHD_Result handle_create(g4_server *s, struct MHD_Connection *c, reqctx *rq) {
    enum MHD_Result ret;
    json_t *o = body_object(c, rq, SHAPE_OLLAMA, &ret);
    if (!o) return ret;
    g4_error err = {0};
    g4_modelfile *mf = NULL;
    create_log cl = {json_array()};
    const char *name = body_model(o);
    const json_t *from = json_object_get(o, "from"), *files = json_object_get(o, "files");
    g4_status rc = G4_OK;
    char blob[4096] = "";
    if (!name || !*name) rc = g4_fail(&err, G4_ERR_ARG, "model is required");
    else if (json_object_get(o, "quantize") && !json_is_null(json_object_get(o, "quantize")))
        rc = g4_fail(&err, G4_ERR_UNSUPPORTED, "quantize is not supported (g4 has no quantizer yet)");
    else if (json_array_size(json_object_get(o, "adapters")) || json_object_size(json_object_get(o, "adapters")))
        rc = g4_fail(&err, G4_ERR_UNSUPPORTED, "adapters (LoRA) are not supported");
    else if (json_object_size(files) == 1 && !from) { /* blobs uploaded before: {"x.gguf": "sha256:..."} */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)files, k, v) {
            pthread_mutex_lock(&s->store_mu);
            int has = json_is_string(v) && s->store ? g4_store_blob_has(s->store, json_string_value(v)) : -1;
            if (has == 1) rc = g4_store_blob_path(s->store, json_string_value(v), blob, sizeof blob, &err);
            pthread_mutex_unlock(&s->store_mu);
            if (has != 1) rc = g4_fail(&err, G4_ERR_ARG, "files: blob %.80s not found (POST /api/blobs is not supported: give \"from\" a GGUF path on the server)",
                                       json_is_string(v) ? json_string_value(v) : "?");
        }
    } else if (!json_is_string(from)) {
        rc = g4_fail(&err, G4_ERR_ARG, "from is required: a GGUF file on the server or an existing model");
    }
    if (!rc) rc = g4_modelfile_new(&mf, &err);
    if (!rc) rc = g4_mf_set(&mf->from, *blob ? blob : json_string_value(from), &err);
    const json_t *params = json_object_get(o, "parameters");
    if (!rc && params && !json_is_null(params)) {
        json_t *np = NULL;
        rc = g4_params_check(params, 0, &np, &err);
        if (!rc) {
            json_decref(mf->params);
            mf->params = np;
        }
    }
    const json_t *sys = json_object_get(o, "system");
    if (!rc && json_is_string(sys)) rc = g4_mf_set(&mf->system, json_string_value(sys), &err);
    const json_t *tmpl = json_object_get(o, "template");
    if (!rc && json_is_string(tmpl)) rc = g4_mf_set(&mf->tmpl, json_string_value(tmpl), &err);
    const json_t *lic = json_object_get(o, "license");
    if (!rc && json_is_string(lic)) rc = g4_mf_add_license(mf, json_string_value(lic), &err);
    for (size_t i = 0; !rc && i < json_array_size(lic); i++)
        if (json_is_string(json_array_get(lic, i))) rc = g4_mf_add_license(mf, json_string_value(json_array_get(lic, i)), &err);
    const json_t *msgs = json_object_get(o, "messages");
    for (size_t i = 0; !rc && i < json_array_size(msgs); i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role")), *content = json_string_value(json_object_get(m, "content"));
        if (!role || !content) rc = g4_fail(&err, G4_ERR_ARG, "messages[%zu] needs a string role and content", i);
        else rc = g4_mf_add_message(mf, role, content, &err);
    }
    if (!rc) {
        pthread_mutex_lock(&s->store_mu);
        rc = s->store ? g4_store_create(s->store, name, mf, NULL, 0, create_progress, &cl, &err)
                      : g4_fail(&err, G4_ERR_IO, "no model store");
        pthread_mutex_unlock(&s->store_mu);
    }
    g4_modelfile_free(mf);
    int stream = 1;
    if (json_is_boolean(json_object_get(o, "stream"))) stream = json_is_true(json_object_get(o, "stream"));
    if (!rc) slog(s, "created model %s", name);
    json_decref(o); /* (name pointed into it) */
    if (rc) {
        json_decref(cl.lines);
        return send_error(c, rq, SHAPE_OLLAMA, rc == G4_ERR_IO ? 500 : 400, err.msg);
    }
    if (!stream) {
        json_decref(cl.lines);
        return send_json(c, rq, 200, json_pack("{s:s}", "status", "success"));
    }
    sbuf b = {0};
    size_t i;
    json_t *l;
    json_array_foreach(cl.lines, i, l) {
        sb_json(&b, json_incref(l));
        sb_str(&b, "\n");
    }
    json_decref(cl.lines);
    enum MHD_Result r = b.oom ? send_error(c, rq, SHAPE_OLLAMA, 507, "out of memory")
                              : send_text(c, rq, 200, "application/x-ndjson", b.p ? b.p : "", b.len, NULL);
    free(b.p);
    return r;
}

static enum MHD_Result handle_copy_delete(g4_server *s, struct MHD_Connection *c, reqctx *rq, int copy) {
    enum MHD_Result ret;
    json_t *o = body_object(c, rq, SHAPE_OLLAMA, &ret);
    if (!o) return ret;
    const char *src = copy ? json_string_value(json_object_get(o, "source")) : body_model(o);
    const char *dst = json_string_value(json_object_get(o, "destination"));
    g4_error err = {0};
    unsigned st = 200;
    if (!src || (copy && !dst)) {
        st = 400;
        snprintf(err.msg, sizeof err.msg, copy ? "source and destination are required" : "model is required");
    } else {
        pthread_mutex_lock(&s->store_mu);
        int has = s->store ? g4_store_has(s->store, src) : 0;
        if (has < 0) st = 400, snprintf(err.msg, sizeof err.msg, "invalid model name '%.200s'", src);
        else if (has == 0) st = 404, snprintf(err.msg, sizeof err.msg, "model '%.200s' not found", src);
        else if (copy ? g4_store_copy(s->store, src, dst, &err) : g4_store_delete(s->store, src, &err))
            st = err.code == G4_ERR_ARG ? 400 : 500;
        pthread_mutex_unlock(&s->store_mu);
    }
    json_decref(o);
    if (st != 200) return send_error(c, rq, SHAPE_OLLAMA, st, err.msg);
    return send_text(c, rq, 200, "application/json; charset=utf-8", "{}", 2, NULL);
}

static enum MHD_Result handle_embed(g4_server *s, struct MHD_Connection *c, reqctx *rq, err_shape shape) {
    enum MHD_Result ret;
    json_t *o = body_object(c, rq, shape, &ret);
    if (!o) return ret;
    const char *name = body_model(o);
    char msg[1024];
    unsigned st = 400;
    if (!name) snprintf(msg, sizeof msg, "model is required");
    else {
        g4_store_model *sm;
        char *key;
        int r = model_resolve(s, name, &sm, &key, msg, sizeof msg);
        if (r) st = (unsigned)r;
        else snprintf(msg, sizeof msg, "this model does not support embeddings");
        g4_store_model_free(sm);
        free(key);
    }
    json_decref(o);
    return send_error(c, rq, shape, st, msg);
}

/* llama-server's POST /apply-template (an OpenAI chat body -> {"prompt": the exact text the model reads}) and
 * POST /tokenize ({"model", "content", "add_special", "parse_special"} -> {"tokens": [...]}): the prompt path of
 * /v1/chat/completions without generating (tests use them to check how tool messages are rendered). */
static enum MHD_Result handle_template(g4_server *s, struct MHD_Connection *c, reqctx *rq, int tokenize) {
    g4_error err = {0};
    char msg[1024];
    gen *g = calloc(1, sizeof *g);
    if (!g) return send_error(c, rq, SHAPE_OPENAI, 507, "out of memory");
    g->s = s;
    json_t *o = NULL;
    enum MHD_Result ret;
    if (tokenize && !(o = body_object(c, rq, SHAPE_OPENAI, &ret))) {
        free(g);
        return ret;
    }
    g4_status rc = tokenize ? G4_OK : g4_sreq_parse(G4_API_OAI_CHAT, rq->body ? rq->body : "", rq->len, &g->r, &err);
    const char *name = tokenize ? body_model(o) : g->r.model;
    if (rc || !name) {
        json_decref(o);
        gen_free(g);
        return send_error(c, rq, SHAPE_OPENAI, 400, rc ? err.msg : "model is required");
    }
    int st = model_acquire(s, name, &g->m, &g->load_s, msg, sizeof msg);
    if (st) {
        json_decref(o);
        gen_free(g);
        return send_error(c, rq, SHAPE_OPENAI, (unsigned)st, msg);
    }
    json_t *ans = NULL;
    if (tokenize) {
        const json_t *ct = json_object_get(o, "content");
        int32_t *ids = NULL;
        size_t n = 0;
        if (!json_is_string(ct)) rc = g4_fail(&err, G4_ERR_ARG, "content must be a string");
        else
            rc = g4_tokenize_alloc(g->m->vocab, json_string_value(ct), json_string_length(ct),
                                   json_is_true(json_object_get(o, "add_special")),
                                   !json_is_false(json_object_get(o, "parse_special")), &ids, &n, &err);
        if (!rc) {
            json_t *a = json_array();
            for (size_t i = 0; a && i < n; i++) json_array_append_new(a, json_integer(ids[i]));
            ans = a ? json_pack("{s:o}", "tokens", a) : NULL;
        }
        free(ids);
    } else {
        char *text = NULL;
        size_t len = 0;
        rc = render_prompt(g, g->r.think < 0 ? s->p.think_default : g->r.think, &text, &len, &err);
        if (!rc) ans = json_pack("{s:s%}", "prompt", text, len);
        free(text);
    }
    json_decref(o);
    gen_free(g);
    if (rc) return send_error(c, rq, SHAPE_OPENAI, (unsigned)http_status_of(rc), err.msg);
    return send_json(c, rq, 200, ans);
}

static json_t *oai_model_entry(const json_t *tag) {
    const char *mod = json_string_value(json_object_get(tag, "modified_at"));
    struct tm tm = {0};
    int64_t created = 0;
    if (mod && strptime(mod, "%Y-%m-%dT%H:%M:%S", &tm)) created = (int64_t)timegm(&tm);
    return json_pack("{s:O,s:s,s:I,s:s}", "id", json_object_get(tag, "name"), "object", "model", "created",
                     (json_int_t)created, "owned_by", "library");
}

static enum MHD_Result handle_v1_models(g4_server *s, struct MHD_Connection *c, reqctx *rq, const char *id) {
    json_t *tags = tags_json(s);
    if (!tags) return send_error(c, rq, SHAPE_OPENAI, 507, "out of memory");
    json_t *data = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(tags, "models"), i, t) {
        if (id) {
            g4_model_name a, b;
            const char *n = json_string_value(json_object_get(t, "name"));
            if (!n || g4_name_parse(id, strlen(id), &a, NULL) || g4_name_parse(n, strlen(n), &b, NULL) || !g4_name_equal(&a, &b))
                continue;
            json_t *e = oai_model_entry(t);
            json_decref(tags);
            json_decref(data);
            return send_json(c, rq, 200, e);
        }
        json_array_append_new(data, oai_model_entry(t));
    }
    json_decref(tags);
    if (id) {
        json_decref(data);
        char msg[300];
        snprintf(msg, sizeof msg, "model '%.200s' not found", id);
        return send_error(c, rq, SHAPE_OPENAI, 404, msg);
    }
    return send_json(c, rq, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static int any_loading(g4_server *s) {
    pthread_mutex_lock(&s->mu);
    int l = 0;
    for (smodel *m = s->models; m; m = m->next) l |= m->loading;
    pthread_mutex_unlock(&s->mu);
    return l;
}

static enum MHD_Result handle_metrics(g4_server *s, struct MHD_Connection *c, reqctx *rq) {
    sbuf b = {0};
    pthread_mutex_lock(&s->mu);
    counters k = s->cnt;
    int busy = 0, queued = 0, slots = 0, loaded = 0;
    uint64_t kv_bytes = 0, kv_tokens = 0, steps = 0;
    for (smodel *m = s->models; m; m = m->next) {
        if (m->loading) continue;
        g4_sched_stats st;
        g4_sched_get_stats(m->sched, &st);
        busy += st.busy;
        queued += st.queued;
        slots += st.n_parallel;
        kv_bytes += st.kv_bytes;
        kv_tokens += st.kv_tokens;
        steps += st.n_steps;
        loaded++;
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->conn_mu);
    const int conns = s->n_conns;
    pthread_mutex_unlock(&s->conn_mu);
#define M(name, type, help, fmt, val) sb_printf(&b, "# HELP g4:" name " " help "\n# TYPE g4:" name " " type "\ng4:" name " " fmt "\n", val)
    M("prompt_tokens_total", "counter", "Prompt tokens of finished requests.", "%llu", (unsigned long long)k.prompt_tokens);
    M("prompt_seconds_total", "counter", "Seconds from taking a slot to the first token.", "%.3f", k.prompt_s);
    M("tokens_predicted_total", "counter", "Generated tokens of finished requests.", "%llu", (unsigned long long)k.gen_tokens);
    M("tokens_predicted_seconds_total", "counter", "Seconds spent generating after the first token.", "%.3f", k.gen_s);
    M("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", "%.3f", k.prompt_s > 0 ? k.prompt_tokens / k.prompt_s : 0.0);
    M("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", "%.3f", k.gen_s > 0 ? k.gen_tokens / k.gen_s : 0.0);
    M("requests_processing", "gauge", "Requests running in a slot (busy slots).", "%d", busy);
    M("requests_deferred", "gauge", "Requests waiting for a slot (queue depth).", "%d", queued);
    M("n_decode_total", "counter", "Scheduler steps (batched forward passes) of the loaded models.", "%llu", (unsigned long long)steps);
    M("slots_total", "gauge", "Slots of the loaded models.", "%d", slots);
    M("kv_cache_bytes", "gauge", "KV cache bytes allocated by the loaded models.", "%llu", (unsigned long long)kv_bytes);
    M("kv_cache_tokens", "gauge", "Tokens held in the slots' KV caches (running or kept for prefix reuse).", "%llu", (unsigned long long)kv_tokens);
    M("models_loaded", "gauge", "Models loaded.", "%d", loaded);
    M("http_requests_total", "counter", "HTTP requests answered.", "%llu", (unsigned long long)k.http_requests);
    M("http_errors_total", "counter", "HTTP requests answered with a status >= 400.", "%llu", (unsigned long long)k.http_errors);
    M("generation_requests_total", "counter", "Generation requests received.", "%llu", (unsigned long long)k.gen_requests);
    M("requests_cancelled_total", "counter", "Generation requests whose client left before the end.", "%llu", (unsigned long long)k.cancelled);
    M("connections", "gauge", "Open HTTP connections.", "%d", conns);
#undef M
    enum MHD_Result r = b.oom ? send_error(c, rq, SHAPE_OPENAI, 507, "out of memory")
                              : send_text(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.len, NULL);
    free(b.p);
    return r;
}

static enum MHD_Result handle_props_slots(g4_server *s, struct MHD_Connection *c, reqctx *rq, int slots) {
    json_t *a = json_array();
    json_t *props = NULL;
    pthread_mutex_lock(&s->mu);
    for (smodel *m = s->models; m; m = m->next) {
        if (m->loading) continue;
        g4_sched_stats st;
        g4_sched_get_stats(m->sched, &st);
        if (slots) {
            for (int i = 0; i < st.n_parallel; i++)
                json_array_append_new(a, json_pack("{s:i,s:s,s:i,s:b}", "id", i, "model", m->key, "n_ctx", st.n_ctx,
                                                   "is_processing", i < st.busy));
        } else if (!props) {
            size_t tl = 0;
            const char *t = g4_vocab_chat_template(m->vocab, &tl);
            props = json_pack("{s:{s:i},s:i,s:s,s:s,s:s%,s:s,s:{s:b,s:b}}", "default_generation_settings", "n_ctx", st.n_ctx,
                              "total_slots", st.n_parallel, "model_alias", m->key, "model_path", m->sm->path, "chat_template",
                              t ? t : "", t ? tl : 0, "build_info", "g4 " G4_VERSION, "modalities", "vision", 0, "audio", 0);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (slots) return send_json(c, rq, 200, a);
    json_decref(a);
    if (!props)
        props = json_pack("{s:{s:i},s:i,s:s,s:{s:b,s:b}}", "default_generation_settings", "n_ctx", s->p.sched.ctx.n_ctx,
                          "total_slots", s->p.sched.n_parallel, "build_info", "g4 " G4_VERSION, "modalities", "vision", 0,
                          "audio", 0);
    return send_json(c, rq, 200, props);
}

/* ---- the access handler ---- */

static int origin_allowed(const g4_server *s, const char *origin, int *star) {
    *star = 0;
    const char *list = s->p.cors;
    if (!list) { /* like Ollama: the local machine's origins */
        static const char *const local[] = {"http://localhost", "https://localhost", "http://127.0.0.1", "https://127.0.0.1",
                                            "http://[::1]", "https://[::1]", "app://", "file://", "tauri://"};
        for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
            size_t n = strlen(local[i]);
            if (!strncmp(origin, local[i], n) && (origin[n] == 0 || origin[n] == ':' || local[i][n - 1] == '/')) return 1;
        }
        return 0;
    }
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *q = p;
        size_t m = n;
        while (m && (*q == ' ')) q++, m--;
        while (m && q[m - 1] == ' ') m--;
        if (m == 1 && *q == '*') {
            *star = 1;
            return 1;
        }
        if (m && strlen(origin) == m && !strncasecmp(origin, q, m)) return 1;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

static int key_ok(const g4_server *s, const char *auth) {
    const char *key = s->p.api_key;
    const char *given = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : "";
    size_t kl = strlen(key), gl = strlen(given);
    unsigned diff = (unsigned)(kl ^ gl) | (kl == 0);
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return diff == 0;
}

static int is(const char *method, const char *m, const char *url, const char *u) { return !strcmp(method, m) && !strcmp(url, u); }

static enum MHD_Result route(g4_server *s, struct MHD_Connection *c, reqctx *rq, const char *url, const char *method) {
    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (get && g4_webui_wanted(c, url)) return g4_webui_send(c, &rq->status); /* the chat page (webui.h) */
    if (get && (!strcmp(url, "/") || !strcmp(url, "/api")))
        return send_text(c, rq, 200, "text/plain; charset=utf-8", "Ollama is running", 17, NULL);
    if (post && !strcmp(url, "/api/generate")) return handle_generate(s, c, rq, G4_API_GENERATE);
    if (post && !strcmp(url, "/api/chat")) return handle_generate(s, c, rq, G4_API_CHAT);
    if (post && (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")))
        return handle_generate(s, c, rq, G4_API_OAI_CHAT);
    if (post && (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")))
        return handle_generate(s, c, rq, G4_API_OAI_COMPLETION);
    if (get && !strcmp(url, "/api/version"))
        return send_json(c, rq, 200, json_pack("{s:s,s:s}", "version", OLLAMA_COMPAT_VERSION, "g4", G4_VERSION));
    if (get && !strcmp(url, "/api/tags")) {
        json_t *t = tags_json(s);
        return t ? send_json(c, rq, 200, t) : send_error(c, rq, SHAPE_OLLAMA, 507, "out of memory");
    }
    if (post && !strcmp(url, "/api/show")) return handle_show(s, c, rq);
    if (get && !strcmp(url, "/api/ps")) {
        json_t *t = ps_json(s);
        return t ? send_json(c, rq, 200, t) : send_error(c, rq, SHAPE_OLLAMA, 507, "out of memory");
    }
    if (post && !strcmp(url, "/api/create")) return handle_create(s, c, rq);
    if (post && !strcmp(url, "/api/copy")) return handle_copy_delete(s, c, rq, 1);
    if (is(method, "DELETE", url, "/api/delete")) return handle_copy_delete(s, c, rq, 0);
    if (post && (!strcmp(url, "/api/embed") || !strcmp(url, "/api/embeddings"))) return handle_embed(s, c, rq, SHAPE_OLLAMA);
    if (post && (!strcmp(url, "/v1/embeddings") || !strcmp(url, "/embeddings") || !strcmp(url, "/embedding")))
        return handle_embed(s, c, rq, SHAPE_OPENAI);
    if (post && (!strcmp(url, "/api/pull") || !strcmp(url, "/api/push")))
        return send_error(c, rq, SHAPE_OLLAMA, 400,
                          "g4 serve does not download or upload models (no network): make one from a GGUF file with "
                          "'g4 create NAME -f Modelfile' or POST /api/create {\"model\", \"from\": \"/path/file.gguf\"}");
    if (!strncmp(url, "/api/blobs/", 11))
        return send_error(c, rq, SHAPE_OLLAMA, 400,
                          "blob uploads are not supported: POST /api/create with \"from\" naming a GGUF file on the server");
    if (get && (!strcmp(url, "/v1/models") || !strcmp(url, "/models"))) return handle_v1_models(s, c, rq, NULL);
    if (get && !strncmp(url, "/v1/models/", 11) && url[11]) return handle_v1_models(s, c, rq, url + 11);
    if (get && (!strcmp(url, "/health") || !strcmp(url, "/v1/health"))) {
        if (any_loading(s)) return send_error(c, rq, SHAPE_OPENAI, 503, "Loading model");
        return send_text(c, rq, 200, "application/json; charset=utf-8", "{\"status\":\"ok\"}", 15, NULL);
    }
    if (get && !strcmp(url, "/metrics")) return handle_metrics(s, c, rq);
    if (post && !strcmp(url, "/apply-template")) return handle_template(s, c, rq, 0);
    if (post && !strcmp(url, "/tokenize")) return handle_template(s, c, rq, 1);
    if (get && !strcmp(url, "/props")) return handle_props_slots(s, c, rq, 0);
    if (get && !strcmp(url, "/slots")) return handle_props_slots(s, c, rq, 1);
    static const char *const known[] = {"/api/generate", "/api/chat", "/api/show", "/api/create", "/api/copy", "/api/delete",
                                        "/api/tags", "/api/ps", "/api/version", "/v1/chat/completions", "/v1/completions",
                                        "/v1/models", "/health", "/metrics", "/props", "/slots", "/api/embed", "/api/pull"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(url, known[i])) {
            char msg[200];
            snprintf(msg, sizeof msg, "method %.16s not allowed on %s", method, url);
            return send_error(c, rq, shape_of(url), 405, msg);
        }
    char msg[300];
    snprintf(msg, sizeof msg, "%.16s %.200s: no such endpoint", method, url);
    return send_error(c, rq, shape_of(url), 404, msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    g4_server *s = cls;
    reqctx *rq = *con_cls;
    if (!rq) { /* headers are in: checks that need no body */
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        rq->t0 = g4_time_s();
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->path, sizeof rq->path, "%s", url);
        const err_shape shape = shape_of(url);
        const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
        if (origin) {
            if (origin_allowed(s, origin, &rq->origin_star)) rq->origin = origin;
            else {
                rq->early = 1;
                return send_error(c, rq, shape, 403, "origin not allowed (g4 serve --cors ORIGINS)");
            }
        }
        if (!strcmp(method, "OPTIONS")) { /* CORS preflight */
            rq->early = 1;
            struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!r) return MHD_NO;
            const char *rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
            MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, HEAD, OPTIONS");
            MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                    rh ? rh : "Authorization, Content-Type, Accept, User-Agent, X-Requested-With");
            MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
            add_headers(r, rq);
            rq->status = 204;
            enum MHD_Result ret = MHD_queue_response(c, 204, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (s->p.api_key && strcmp(url, "/") && strcmp(url, "/index.html") && strcmp(url, "/health") && strcmp(url, "/v1/health") &&
            !key_ok(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))) {
            rq->early = 1;
            return send_error(c, rq, shape, 401, shape == SHAPE_OLLAMA ? "unauthorized: a valid API key is required (Authorization: Bearer KEY)"
                                                                        : "Invalid API Key");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > s->p.max_body) {
                rq->early = 1;
                char msg[160];
                snprintf(msg, sizeof msg, "request body too large: at most %zu bytes (--max-body)", s->p.max_body);
                return send_error(c, rq, shape, 413, msg);
            }
            if (n) {
                rq->body = malloc((size_t)n + 1);
                if (!rq->body) {
                    rq->early = 1;
                    return send_error(c, rq, shape, 507, "out of memory");
                }
                rq->cap = (size_t)n + 1;
            }
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (!rq->early && !rq->too_big) {
            if (rq->len + *upload_size > s->p.max_body) {
                rq->too_big = 1;
            } else {
                if (rq->len + *upload_size + 1 > rq->cap) {
                    size_t nc = rq->cap ? rq->cap : 4096;
                    while (nc < rq->len + *upload_size + 1) nc *= 2;
                    char *b = realloc(rq->body, nc);
                    if (!b) return MHD_NO;
                    rq->body = b;
                    rq->cap = nc;
                }
                memcpy(rq->body + rq->len, upload, *upload_size);
                rq->len += *upload_size;
                rq->body[rq->len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->early) return MHD_YES; /* answered already */
    conn_stage_set(s, c, CONN_HANDLING);
    if (rq->too_big) {
        char msg[160];
        snprintf(msg, sizeof msg, "request body too large: at most %zu bytes (--max-body)", s->p.max_body);
        return send_error(c, rq, shape_of(url), 413, msg);
    }
    if (atomic_load(&s->stopping)) return send_error(c, rq, shape_of(url), 503, "the server is shutting down");
    return route(s, c, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    g4_server *s = cls;
    reqctx *rq = *con_cls;
    if (!rq) return;
    const double ms = (g4_time_s() - rq->t0) * 1e3;
    const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                      : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT || rq->status == 499 ? " (client gone)"
                      : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timeout)"
                      : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (shutdown)"
                                                                       : " (connection error)";
    if (rq->n_prompt || rq->n_gen)
        slog(s, "%s %s %u %d+%d tokens %.0f ms%s", rq->method, rq->path, rq->status, rq->n_prompt, rq->n_gen, ms, how);
    else slog(s, "%s %s %u %.0f ms%s", rq->method, rq->path, rq->status, ms, how);
    pthread_mutex_lock(&s->mu);
    s->cnt.http_requests++;
    if (rq->status >= 400 || !rq->status) s->cnt.http_errors++;
    pthread_mutex_unlock(&s->mu);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    conn_stage_set(s, c, CONN_RECEIVING); /* a kept-alive connection waits for its next request */
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    g4_server *s = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    slog(s, "http: %s", line);
}

/* ---- life cycle ---- */

void g4_server_stop(g4_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    if (s->d) MHD_stop_daemon(s->d); /* every connection's thread ends (streams see stopping within WAIT_MS) */
    if (s->house_started) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->house_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->house, NULL);
    }
    while (s->models) {
        smodel *m = s->models;
        s->models = m->next;
        slog(s, "unloading %s", m->key);
        model_free(m);
    }
    g4_store_close(s->store);
    free(s->pre_path);
    free(s->pre_alias);
    pthread_mutex_destroy(&s->store_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->house_cv);
    pthread_mutex_destroy(&s->log_mu);
    pthread_mutex_destroy(&s->conn_mu);
    free(s);
}

/* the preload model's alias: the file's base name without .gguf as a model name ("tiny" -> "tiny:latest") */
static char *alias_of(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcasecmp(b + n - 5, ".gguf")) n -= 5;
    char name[G4_NAME_MAX + 1];
    g4_model_name nm;
    if (g4_name_parse(b, n, &nm, NULL)) return strdup("default:latest");
    g4_name_string(&nm, name, sizeof name);
    return strdup(name);
}

g4_status g4_server_start(g4_server **out, const g4_server_params *p, g4_error *err) {
    *out = NULL;
    if (p->max_loaded < 1) return g4_fail(err, G4_ERR_ARG, "max_loaded %d: at least 1", p->max_loaded);
    if (p->port < 0 || p->port > 65535) return g4_fail(err, G4_ERR_ARG, "port %d: 0 to 65535", p->port);
    g4_server *s = calloc(1, sizeof *s);
    if (!s) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    s->p = *p;
    pthread_mutex_init(&s->store_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->house_cv, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    s->seed_state = (uint64_t)(wall_now() * 1e9) ^ ((uint64_t)getpid() << 32);
    snprintf(s->host, sizeof s->host, "%s", p->host && *p->host ? p->host : "127.0.0.1");
    g4_status rc = g4_store_open(&s->store, p->models_dir, err);
    if (rc) {
        g4_server_stop(s);
        return rc;
    }
    if (p->preload && g4_name_is_path(p->preload)) {
        s->pre_path = strdup(p->preload);
        s->pre_alias = alias_of(p->preload);
        if (!s->pre_path || !s->pre_alias) {
            g4_server_stop(s);
            return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        }
    }
    /* the address */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", p->port);
    int gai = getaddrinfo(s->host, port, &hints, &ai);
    if (gai || !ai) {
        g4_server_stop(s);
        return g4_fail(err, G4_ERR_ARG, "cannot resolve host '%s': %s", p->host, gai_strerror(gai));
    }
    struct sockaddr_storage addr;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen < sizeof addr ? ai->ai_addrlen : sizeof addr);
    const int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (v6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, p->max_header > 4096 ? p->max_header : (size_t)4096,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(p->idle_timeout > 0 ? p->idle_timeout : 0),
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)(p->max_connections > 0 ? p->max_connections : 256),
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(p->max_per_ip > 0 ? p->max_per_ip : 0),
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            /* a connection's thread needs far less than the default 8 MiB of stack */
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(2u << 20), MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        g4_server_stop(s);
        return g4_fail(err, G4_ERR_IO, "cannot listen on %s port %d: %s", p->host ? p->host : "127.0.0.1", p->port,
                       e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    if (pthread_create(&s->house, NULL, housekeeper, s)) {
        g4_server_stop(s);
        return g4_fail(err, G4_ERR_NOMEM, "cannot start the housekeeping thread");
    }
    s->house_started = 1;
    slog(s, "listening on http://%s%s%s:%d (Ollama API, OpenAI API /v1, /health, /metrics)", v6 ? "[" : "", s->host,
         v6 ? "]" : "", s->port);
    if (p->preload) {
        smodel *m;
        double load_s;
        char msg[1024];
        int st = model_acquire(s, p->preload, &m, &load_s, msg, sizeof msg);
        if (st) {
            g4_server_stop(s);
            return g4_fail(err, st == 404 ? G4_ERR_ARG : G4_ERR_IO, "%s", msg);
        }
        model_release(s, m, 1, -1); /* a preloaded model stays */
        if (s->pre_alias) slog(s, "serving %s as '%s'", p->preload, s->pre_alias);
    }
    *out = s;
    return G4_OK;
}
