/* embed: g4 serve's chat page (src/serve/webui/index.html) as C data, run at build time (Makefile).
 *
 *   embed IN.html OUT.c
 *
 * OUT.c defines g4_webui_html[] (the file's bytes and a NUL that g4_webui_html_len does not count) and
 * g4_webui_csp[], the page's Content-Security-Policy: the page's one inline <script> and one inline <style>
 * are admitted by their SHA-256 ('sha256-BASE64'), so nothing else can run or style it, not even text that
 * slipped into the DOM (src/serve/webui.h). The page must therefore have exactly one <script> and one
 * <style> element, no src= scripts, no inline event handlers and no style= attributes: embed refuses a
 * file that breaks those rules. It is built with the host compiler (HOSTCC) and links src/store/sha256.c. */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "embed: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap + 1);
    for (;;) {
        if (!p) die("%s: out of memory%s", path, "");
        n += fread(p + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        p = realloc(p, cap + 1);
    }
    if (ferror(f)) die("cannot read %s: %s", path, strerror(errno));
    fclose(f);
    p[n] = 0;
    *len = n;
    return p;
}

/* case-insensitive search of needle in [p, end) */
static const char *find(const char *p, const char *end, const char *needle) {
    size_t n = strlen(needle);
    for (; p + n <= end; p++) {
        size_t i = 0;
        while (i < n && (p[i] | 0x20) == (needle[i] | 0x20)) i++;
        if (i == n) return p;
    }
    return NULL;
}

/* find() outside HTML comments (<!-- ... -->), for tags */
static const char *find_tag(const char *p, const char *end, const char *tag) {
    for (;;) {
        const char *t = find(p, end, tag), *c = find(p, end, "<!--");
        if (!t || !c || t < c) return t;
        const char *e = find(c + 4, end, "-->");
        if (!e) return NULL;
        p = e + 3;
    }
}

/* The text of the one <TAG ...>...</TAG> element as 'sha256-BASE64' in out (at least 52 bytes). */
static void element_hash(const char *path, const char *html, size_t len, const char *tag, char *out) {
    const char *end = html + len;
    char open[16], close[16];
    snprintf(open, sizeof open, "<%s", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = find_tag(html, end, open);
    if (!a || (a[strlen(open)] != '>' && a[strlen(open)] != ' ')) die("%s: no <%s> element", path, tag);
    const char *gt = memchr(a, '>', (size_t)(end - a));
    if (!gt) die("%s: unterminated <%s", path, tag);
    if (find(a, gt, " src=")) die("%s: <%s src=...>: the page must be one self-contained file", path, tag);
    const char *body = gt + 1, *b = find(body, end, close);
    if (!b) die("%s: no %s", path, close);
    if (find_tag(b, end, open)) die("%s: more than one <%s> element (the CSP admits one by its hash)", path, tag);
    uint8_t d[32];
    g4_sha256 c;
    g4_sha256_init(&c);
    g4_sha256_update(&c, body, (size_t)(b - body));
    g4_sha256_final(&c, d);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = out + sprintf(out, "sha256-");
    for (int i = 0; i < 32; i += 3) { /* 32 bytes: ten groups of 3 and one of 2 (one '=') */
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < 32 ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < 32 ? d[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < 32 ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < 32 ? b64[v & 63] : '=';
    }
    *o = 0;
}

/* Attributes the CSP would block (so they would fail silently in the browser): on*= handlers, style=. */
static void check_attributes(const char *path, const char *html, size_t len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (!strncmp(html + i, "<!--", 4)) { /* comments are not markup */
            const char *e = find(html + i + 4, html + len, "-->");
            if (!e) break;
            i = (size_t)(e - html) + 2;
            continue;
        }
        if (html[i] != '<' || !((html[i + 1] | 0x20) >= 'a' && (html[i + 1] | 0x20) <= 'z')) continue;
        const char *gt = memchr(html + i, '>', len - i);
        if (!gt) break;
        for (const char *q = html + i; q < gt; q++) {
            if (*q != ' ' && *q != '\n' && *q != '\t') continue;
            const char *n = q + 1;
            if (((n[0] | 0x20) == 'o' && (n[1] | 0x20) == 'n' && (n[2] | 0x20) >= 'a' && (n[2] | 0x20) <= 'z') ||
                !strncmp(n, "style=", 6)) {
                const char *e = n;
                while (e < gt && *e != '=' && *e != ' ') e++;
                char attr[64];
                snprintf(attr, sizeof attr, "%.*s", (int)(e - n), n);
                die("%s: attribute '%s' (inline handlers and styles are refused by the page's CSP)", path, attr);
            }
        }
        /* skip the contents of <script> and <style>: not markup */
        if (!strncmp(html + i + 1, "script", 6) || !strncmp(html + i + 1, "style", 5)) {
            const char *close = find(gt, html + len, html[i + 2] == 'c' ? "</script>" : "</style>");
            if (close) i = (size_t)(close - html);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: embed IN.html OUT.c\n");
        return 2;
    }
    size_t len;
    unsigned char *html = slurp(argv[1], &len);
    if (memchr(html, 0, len)) die("%s: contains a NUL byte%s", argv[1], "");
    char script[64], style[64];
    element_hash(argv[1], (const char *)html, len, "script", script);
    element_hash(argv[1], (const char *)html, len, "style", style);
    check_attributes(argv[1], (const char *)html, len);

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (!f) die("cannot create %s: %s", tmp, strerror(errno));
    fprintf(f, "/* generated by tools/embed.c from %s: do not edit */\n", argv[1]);
    fprintf(f, "#include \"serve/webui.h\"\n\n");
    fprintf(f, "const char g4_webui_csp[] =\n    \"default-src 'none'; script-src '%s'; style-src '%s'; \"\n", script, style);
    fprintf(f, "    \"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\";\n\n");
    fprintf(f, "const size_t g4_webui_html_len = %zu;\n\n", len);
    fprintf(f, "const unsigned char g4_webui_html[%zu] = {", len + 1);
    for (size_t i = 0; i <= len; i++) fprintf(f, "%s%u,", i % 24 ? "" : "\n    ", i < len ? html[i] : 0);
    fprintf(f, "\n};\n");
    int werr = ferror(f);
    if (fclose(f) || werr) die("cannot write %s: %s", tmp, strerror(errno));
    if (rename(tmp, argv[2])) die("cannot rename to %s: %s", argv[2], strerror(errno));
    free(html);
    return 0;
}
