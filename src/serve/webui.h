/* g4 serve's chat page at "/": src/serve/webui/index.html, one self-contained file (HTML, CSS, JS; nothing is
 * downloaded), embedded at build time by tools/embed.c as $(BUILD)/gen/webui.c. It talks to the server's own
 * Ollama API (GET /api/tags, POST /api/chat streamed as NDJSON). */
#ifndef G4_WEBUI_H
#define G4_WEBUI_H

#include <microhttpd.h>
#include <stddef.h>

extern const unsigned char g4_webui_html[]; /* the page (UTF-8), then a NUL that the length leaves out */
extern const size_t g4_webui_html_len;
/* Content-Security-Policy of the page: default-src 'none'; the page's one inline script and one inline style
 * admitted by their SHA-256 (no 'unsafe-inline'); fetch only to the page's own origin ('self') */
extern const char g4_webui_csp[];

/* 1 when a GET or HEAD of url is for the page: "/index.html", or "/" from a browser (its Accept header names
 * text/html). Other clients asking for "/" (Ollama's probe "is it running?") keep the server's plain answer. */
int g4_webui_wanted(struct MHD_Connection *c, const char *url);

/* Queues the page: 200, Content-Type: text/html; charset=utf-8, Cache-Control: no-cache, the CSP,
 * X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer, X-Frame-Options: DENY. *status = 200 when
 * queued (status may be NULL). */
enum MHD_Result g4_webui_send(struct MHD_Connection *c, unsigned *status);

#endif
