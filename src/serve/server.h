/* g4 serve: an HTTP server (libmicrohttpd, a thread per connection) speaking Ollama's native API, the
 * OpenAI-compatible API and llama-server's monitoring endpoints, over the batching scheduler (sched.h): models
 * from the store by name, loaded on first use and unloaded after keep_alive. docs/serving.md describes every
 * endpoint, field, flag, limit and metric. The library never prints: every line goes to the log callback. */
#ifndef G4_SERVER_H
#define G4_SERVER_H

#include "g4.h"
#include "serve/sched.h"

#include <stddef.h>

typedef struct g4_server g4_server;

/* one line of log text (no newline); called from any thread, one call at a time */
typedef void (*g4_server_log_fn)(void *user, const char *line);

typedef struct g4_server_params {
    const char *host;        /* address to bind (default "127.0.0.1"; "0.0.0.0", "::", a name) */
    int port;                /* default 11434; 0: any free port (g4_server_port tells) */
    const char *models_dir;  /* the store (NULL: g4_store_default_dir) */
    const char *preload;     /* a model (name or GGUF path) loaded at start and served under its name and, for a
                                path, the file's base name without ".gguf"; NULL: none */
    g4_sched_params sched;   /* --parallel, --ctx, --kv, --threads, --max-queue */
    int max_loaded;          /* models loaded at once (default 1) */
    double keep_alive;       /* seconds an idle model stays loaded (default 300; < 0 forever; 0 unload at once) */
    int think_default;       /* thinking when a request does not say (default 0) */
    const char *api_key;     /* NULL: no authentication; else "Authorization: Bearer KEY" on every API */
    const char *cors;        /* allowed Origins, comma-separated ("*": any); NULL: localhost origins only */
    size_t max_body;         /* request body bytes (default 16 MiB; more: 413) */
    size_t max_header;       /* per-connection memory for the request line and headers (default 32 KiB) */
    int idle_timeout;        /* seconds a connection may be idle (default 30) */
    int read_timeout;        /* seconds to receive a whole request, headers and body (default 60) */
    int max_connections;     /* connections at once (default 256) */
    int max_per_ip;          /* connections per client address (default 0: no limit but max_connections) */
    int allow_paths;         /* requests may name GGUF paths on the server (default 0: only names) */
    g4_server_log_fn log;
    void *log_user;
} g4_server_params;

g4_server_params g4_server_default_params(void);

/* Binds, starts the daemon and loads the preload model (its errors fail the start). */
g4_status g4_server_start(g4_server **out, const g4_server_params *p, g4_error *err);
/* The port it listens on. */
int g4_server_port(const g4_server *s);
/* Stops accepting, ends every request (streams end, waiting requests get 503), unloads the models, frees s. */
void g4_server_stop(g4_server *s);

/* "host:port", "host", ":port", "http://host:port[/]", "[::1]:port" (OLLAMA_HOST's forms) into host (at most
 * hsize bytes with the NUL; empty when the text gives none) and *port (unchanged when the text gives none). */
g4_status g4_server_parse_host(const char *s, char *host, size_t hsize, int *port, g4_error *err);

#endif
