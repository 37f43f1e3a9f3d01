/* Model names: [namespace/]model[:tag], validated so that no name can leave the store's directory. */
#include "store/store.h"
#include "util/util.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

static int part_char(unsigned char c, int first, int is_ns) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') return 1;
    if (first) return 0;
    if (c == '-') return 1;
    return c == '.' && !is_ns;
}

/* the part s[0..n) as `what` into dst */
static g4_status part(const char *s, size_t n, const char *what, int is_ns, char *dst, const char *full, size_t flen,
                      g4_error *err) {
    if (n == 0) return g4_fail(err, G4_ERR_ARG, "invalid model name '%.*s': empty %s", (int)(flen > 200 ? 200 : flen), full, what);
    if (n > G4_NAME_PART_MAX)
        return g4_fail(err, G4_ERR_ARG, "invalid model name '%.*s...': the %s is longer than %d characters", 60, full,
                       what, G4_NAME_PART_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!part_char(c, i == 0, is_ns)) {
            char shown[8];
            if (c >= 33 && c < 127) snprintf(shown, sizeof shown, "'%c'", c);
            else snprintf(shown, sizeof shown, "0x%02x", c);
            return g4_fail(err, G4_ERR_ARG,
                           "invalid model name '%.*s': %s %s in the %s (names are [namespace/]model[:tag]; each part "
                           "letters, digits, '_', '-'%s, starting with a letter, digit or '_')",
                           (int)(flen > 200 ? 200 : flen), c >= 32 && c < 127 ? full : "(unprintable)",
                           i == 0 ? "starts with" : "has", shown, what, is_ns ? "" : ", '.'");
        }
    }
    memcpy(dst, s, n);
    dst[n] = 0;
    return G4_OK;
}

g4_status g4_name_parse(const char *s, size_t len, g4_model_name *out, g4_error *err) {
    if (!s || !len) return g4_fail(err, G4_ERR_ARG, "empty model name");
    if (memchr(s, 0, len)) return g4_fail(err, G4_ERR_ARG, "invalid model name: it holds a NUL byte");
    if (len > G4_NAME_MAX)
        return g4_fail(err, G4_ERR_ARG, "invalid model name '%.60s...': longer than %d characters", s, G4_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c >= 127) return g4_fail(err, G4_ERR_ARG, "invalid model name: byte 0x%02x at %zu", c, i);
    }
    const char *slash = memchr(s, '/', len);
    const char *colon = memchr(s, ':', len);
    if (slash && memchr(slash + 1, '/', len - (size_t)(slash + 1 - s)))
        return g4_fail(err, G4_ERR_ARG,
                       "invalid model name '%.*s': more than one '/' (names are [namespace/]model[:tag]; g4 has no "
                       "registry host part)",
                       (int)len, s);
    if (colon && (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) || (slash && slash > colon)))
        return g4_fail(err, G4_ERR_ARG, "invalid model name '%.*s': the tag comes last, after one ':'", (int)len, s);
    const char *mstart = slash ? slash + 1 : s;
    const char *mend = colon ? colon : s + len;
    g4_status st;
    if (slash) {
        if ((st = part(s, (size_t)(slash - s), "namespace", 1, out->ns, s, len, err))) return st;
    } else {
        strcpy(out->ns, "library");
    }
    if ((st = part(mstart, (size_t)(mend - mstart), "model", 0, out->model, s, len, err))) return st;
    if (colon) {
        if ((st = part(colon + 1, len - (size_t)(colon + 1 - s), "tag", 0, out->tag, s, len, err))) return st;
    } else {
        strcpy(out->tag, "latest");
    }
    return G4_OK;
}

void g4_name_string(const g4_model_name *n, char *buf, size_t size) {
    if (!strcasecmp(n->ns, "library")) snprintf(buf, size, "%s:%s", n->model, n->tag);
    else snprintf(buf, size, "%s/%s:%s", n->ns, n->model, n->tag);
}

int g4_name_equal(const g4_model_name *a, const g4_model_name *b) {
    return !strcasecmp(a->ns, b->ns) && !strcasecmp(a->model, b->model) && !strcasecmp(a->tag, b->tag);
}

int g4_name_is_path(const char *s) {
    size_t n = strlen(s);
    if (n >= 5 && !strcasecmp(s + n - 5, ".gguf")) return 1;
    if (!strchr(s, '/')) return 0;
    struct stat st;
    return stat(s, &st) == 0 && S_ISREG(st.st_mode);
}
