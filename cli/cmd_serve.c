/* g4 serve: the HTTP server (src/serve/server.h) on the command line; g4 ps: a running server's loaded models. */
#include <stdatomic.h>
#include "cli.h"
#include "g4.h"
#include "serve/request.h"
#include "serve/server.h"

#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

int g4_cmd_serve(int argc, char **argv);
int g4_cmd_ps(int argc, char **argv);

static const char *usage_serve =
    "usage: g4 serve [MODEL] [options]\n"
    "\n"
    "An HTTP server speaking Ollama's API (/api/chat, /api/generate, /api/tags, ...), the OpenAI API\n"
    "(/v1/chat/completions, /v1/completions, /v1/models) and llama-server's /health and /metrics.\n"
    "MODEL (a stored model's name or a GGUF path) is loaded at start; others load on first use.\n"
    "See docs/serving.md.\n"
    "\n"
    "  --host HOST[:PORT]    address to listen on (default 127.0.0.1; env G4_HOST, like OLLAMA_HOST:\n"
    "                        \"host:port\", \"host\", \":port\", \"http://host:port\")\n"
    "  --port N              port (default 11434; 0: any free port, printed)\n"
    "  --models DIR          the model store (env G4_MODELS; default ~/.local/share/g4/models)\n"
    "  --parallel N          slots: requests decoded together per model (default 4)\n"
    "  --ctx N               context tokens per slot (default 4096); KV memory = parallel x ctx\n"
    "  --kv SPEC             KV cache types (f16, q8, tq4, k=tq4,v=tq3, ...; see g4 bench --help)\n"
    "  --threads N           engine threads (default: one per CPU)\n"
    "  --max-queue N         requests waiting for a slot before 503 (default 512)\n"
    "  --max-loaded N        models loaded at once (default 1)\n"
    "  --keep-alive DUR      how long an idle model stays loaded: 5m (default), 30s, 1h, -1 (forever), 0\n"
    "  --think on|off        thinking when a request does not say (default off)\n"
    "  --api-key KEY         require \"Authorization: Bearer KEY\" (env G4_API_KEY)\n"
    "  --cors ORIGINS        allowed browser origins, comma-separated, * for any (env G4_ORIGINS;\n"
    "                        default: localhost origins)\n"
    "  --max-body BYTES      largest request body (default 16777216; more: 413)\n"
    "  --max-header BYTES    memory for a request's line and headers (default 32768)\n"
    "  --idle-timeout S      close connections idle for S seconds (default 30)\n"
    "  --read-timeout S      a request must arrive whole within S seconds (default 60)\n"
    "  --max-connections N   connections at once (default 256); --max-per-ip N (default: no limit)\n"
    "  --allow-paths         requests may name GGUF files on the server by path\n";

/* Memory: connection threads come and go (one per connection), and glibc's malloc gives each its arena and
 * keeps what they freed; two arenas and a trim every 128 requests keep the resident size flat under load. */
static atomic_uint n_logged;

static void on_log(void *user, const char *line) {
    (void)user;
#ifdef __GLIBC__
    if ((atomic_fetch_add(&n_logged, 1) & 127) == 127) malloc_trim(0);
#endif
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, line);
}

static long int_arg(const char *flag, const char *v, long lo, long hi) {
    long x;
    if (!cli_parse_int(v, lo, hi, &x)) cli_die_usage(usage_serve, "bad %s '%s' (%ld to %ld)", flag, v, lo, hi);
    return x;
}

int g4_cmd_serve(int argc, char **argv) {
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 2);
#endif
    g4_server_params p = g4_server_default_params();
    char host[256] = "127.0.0.1";
    int port = p.port;
    g4_error err = {0};
    const char *env = getenv("G4_HOST");
    if (env && *env) {
        char h[256];
        if (g4_server_parse_host(env, h, sizeof h, &port, &err)) cli_die_usage(NULL, "G4_HOST: %s", err.msg);
        if (*h) snprintf(host, sizeof host, "%s", h);
    }
    p.api_key = getenv("G4_API_KEY");
    if (p.api_key && !*p.api_key) p.api_key = NULL;
    p.cors = getenv("G4_ORIGINS");
    if (p.cors && !*p.cors) p.cors = NULL;
    p.sched.ctx.n_ctx = 4096;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_serve, stdout);
            return 0;
        } else if (!strcmp(a, "--host") && more) {
            char h[256];
            if (g4_server_parse_host(argv[++i], h, sizeof h, &port, &err)) cli_die_usage(usage_serve, "--host: %s", err.msg);
            if (*h) snprintf(host, sizeof host, "%s", h);
        } else if (!strcmp(a, "--port") && more) port = (int)int_arg(a, argv[++i], 0, 65535);
        else if (!strcmp(a, "--models") && more) p.models_dir = argv[++i];
        else if (!strcmp(a, "--parallel") && more) p.sched.n_parallel = (int)int_arg(a, argv[++i], 1, 256);
        else if (!strcmp(a, "--ctx") && more) p.sched.ctx.n_ctx = (int)int_arg(a, argv[++i], 16, 1 << 24);
        else if (!strcmp(a, "--kv") && more) cli_kv_option(usage_serve, argv[++i], &p.sched.ctx);
        else if (!strcmp(a, "--threads") && more) p.sched.n_threads = (int)int_arg(a, argv[++i], 1, 256);
        else if (!strcmp(a, "--max-queue") && more) p.sched.max_queue = (int)int_arg(a, argv[++i], 1, 1 << 20);
        else if (!strcmp(a, "--max-loaded") && more) p.max_loaded = (int)int_arg(a, argv[++i], 1, 64);
        else if (!strcmp(a, "--keep-alive") && more) {
            if (g4_parse_duration(argv[++i], &p.keep_alive, &err)) cli_die_usage(usage_serve, "--keep-alive: %s", err.msg);
        } else if (!strcmp(a, "--think") && more) {
            const char *t = argv[++i];
            if (!strcmp(t, "on")) p.think_default = 1;
            else if (!strcmp(t, "off")) p.think_default = 0;
            else cli_die_usage(usage_serve, "--think takes on or off");
        } else if (!strcmp(a, "--api-key") && more) p.api_key = argv[++i];
        else if (!strcmp(a, "--cors") && more) p.cors = argv[++i];
        else if (!strcmp(a, "--max-body") && more) p.max_body = (size_t)int_arg(a, argv[++i], 1, 1L << 34);
        else if (!strcmp(a, "--max-header") && more) p.max_header = (size_t)int_arg(a, argv[++i], 4096, 1L << 24);
        else if (!strcmp(a, "--idle-timeout") && more) p.idle_timeout = (int)int_arg(a, argv[++i], 1, 86400);
        else if (!strcmp(a, "--read-timeout") && more) p.read_timeout = (int)int_arg(a, argv[++i], 1, 86400);
        else if (!strcmp(a, "--max-connections") && more) p.max_connections = (int)int_arg(a, argv[++i], 1, 65536);
        else if (!strcmp(a, "--max-per-ip") && more) p.max_per_ip = (int)int_arg(a, argv[++i], 1, 65536);
        else if (!strcmp(a, "--allow-paths")) p.allow_paths = 1;
        else if (a[0] == '-' && a[1]) cli_die_usage(usage_serve, "unknown or incomplete option '%s'", a);
        else if (!p.preload) p.preload = a;
        else cli_die_usage(usage_serve, "unexpected argument '%s'", a);
    }
    if (p.api_key && !*p.api_key) cli_die_usage(usage_serve, "--api-key: an empty key");
    p.host = host;
    p.port = port;
    p.log = on_log;
    /* SIGINT / SIGTERM are taken by this thread alone (sigwait); every thread the server starts inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    char spec[128];
    g4_kv_spec_string(&p.sched.ctx, spec, sizeof spec);
    fprintf(stderr, "g4 serve %s: KV pool per model: %d slots x %d tokens (%s)%s\n", G4_VERSION, p.sched.n_parallel,
            p.sched.ctx.n_ctx, spec, p.preload ? "" : "; models load on first use");
    g4_server *s = NULL;
    if (g4_server_start(&s, &p, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 1;
    }
    /* the port line, for scripts (--port 0) */
    fprintf(stderr, "g4 serve: ready on port %d\n", g4_server_port(s));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "g4 serve: %s: shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    g4_server_stop(s);
    fprintf(stderr, "g4 serve: stopped\n");
    return 0;
}

/* ---- g4 ps: GET /api/ps of a running server ---- */

static const char *usage_ps = "usage: g4 ps [--host HOST[:PORT]]\n"
                              "The models a running g4 serve (or Ollama) has loaded: NAME ID SIZE PROCESSOR CONTEXT UNTIL.\n"
                              "The server is G4_HOST (default 127.0.0.1:11434).\n";

/* a GET over HTTP/1.0 (the server closes the connection after the answer); the body (malloc'ed) or NULL */
static char *http_get(const char *host, int port, const char *path, int *status) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) || !ai) return NULL;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    char req[512];
    const char *key = getenv("G4_API_KEY");
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n", path, host,
                     key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *b = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf) return NULL;
    buf[len] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (!body || sscanf(buf, "HTTP/%*s %d", status) != 1) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

int g4_cmd_ps(int argc, char **argv) {
    char host[256] = "127.0.0.1";
    int port = 11434;
    g4_error err = {0};
    const char *env = getenv("G4_HOST");
    const char *h_arg = env && *env ? env : NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_ps, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--host") && i + 1 < argc) h_arg = argv[++i];
        else cli_die_usage(usage_ps, "unexpected argument '%s'", argv[i]);
    }
    if (h_arg) {
        char h[256];
        if (g4_server_parse_host(h_arg, h, sizeof h, &port, &err)) cli_die_usage(usage_ps, "%s", err.msg);
        if (*h) snprintf(host, sizeof host, "%s", h);
    }
    if (!strcmp(host, "0.0.0.0")) snprintf(host, sizeof host, "127.0.0.1");
    int status = 0;
    char *body = http_get(host, port, "/api/ps", &status);
    if (!body) {
        fprintf(stderr, "g4: no server answers at %s:%d (start one with g4 serve)\n", host, port);
        return 1;
    }
    json_t *o = json_loads(body, 0, NULL);
    free(body);
    if (status != 200 || !json_is_object(o)) {
        fprintf(stderr, "g4: the server at %s:%d answered %d\n", host, port, status);
        json_decref(o);
        return 1;
    }
    printf("%-28s %-14s %-10s %-10s %-8s %s\n", "NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(o, "models"), i, m) {
        char size[32], id[16];
        const char *dg = json_string_value(json_object_get(m, "digest"));
        snprintf(id, sizeof id, "%.12s", dg && *dg ? dg : "-");
        cli_human_bytes((double)json_integer_value(json_object_get(m, "size")), size, sizeof size);
        const char *until = json_string_value(json_object_get(m, "expires_at"));
        printf("%-28s %-14s %-10s %-10s %-8lld %s\n", json_string_value(json_object_get(m, "name")), id, size, "100% CPU",
               (long long)json_integer_value(json_object_get(m, "context_length")),
               until && !strncmp(until, "2318", 4) ? "Forever" : until ? until : "-");
    }
    json_decref(o);
    return 0;
}
