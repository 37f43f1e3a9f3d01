/* g4 serve's chat page (webui.h): which requests get it, and its response headers. */
#include "serve/webui.h"

#include <string.h>
#include <strings.h>

int g4_webui_wanted(struct MHD_Connection *c, const char *url) {
    if (!strcmp(url, "/index.html")) return 1;
    if (strcmp(url, "/")) return 0;
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    return accept && strcasestr(accept, "text/html") != NULL;
}

enum MHD_Result g4_webui_send(struct MHD_Connection *c, unsigned *status) {
    /* the page is constant: PERSISTENT, no copy */
    struct MHD_Response *r = MHD_create_response_from_buffer(g4_webui_html_len, (void *)g4_webui_html, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    static const char *const h[][2] = {
        {"Content-Type", "text/html; charset=utf-8"},
        {"Cache-Control", "no-cache"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"X-Frame-Options", "DENY"},
        {"Vary", "Accept"}, /* "/" answers a browser with this page, other clients with text */
    };
    int ok = MHD_add_response_header(r, "Content-Security-Policy", g4_webui_csp) == MHD_YES;
    for (size_t i = 0; i < sizeof h / sizeof *h; i++) ok &= MHD_add_response_header(r, h[i][0], h[i][1]) == MHD_YES;
    enum MHD_Result ret = ok ? MHD_queue_response(c, MHD_HTTP_OK, r) : MHD_NO;
    MHD_destroy_response(r);
    if (ret == MHD_YES && status) *status = MHD_HTTP_OK;
    return ret;
}
