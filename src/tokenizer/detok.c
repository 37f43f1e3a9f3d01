/* Token ids -> text: the piece of each token (as llama.cpp's token_to_piece) and a streaming
 * detokenizer that only ever hands out complete, valid UTF-8. */
#include "tokenizer/tokenizer.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t g4_token_to_piece(const g4_vocab *v, int32_t id, int special, char *buf, size_t size) {
    if (!v || id < 0 || id >= v->n) return 0;
    uint8_t a = v->attr[id];
    const uint8_t *t = v->text[id];
    uint32_t n = v->len[id];
    if (a & (TA_UNKNOWN | TA_CONTROL)) {
        if (!special) return 0;
    } else if (a & TA_USER) {
        /* raw text below */
    } else if (a & TA_NORMAL) { /* U+2581 -> ' ' */
        size_t k = 0;
        for (uint32_t i = 0; i < n;) {
            if (i + 3 <= n && t[i] == 0xE2 && t[i + 1] == 0x96 && t[i + 2] == 0x81) {
                if (k < size) buf[k] = ' ';
                k++;
                i += 3;
            } else {
                if (k < size) buf[k] = (char)t[i];
                k++;
                i++;
            }
        }
        return k;
    } else if (a & TA_BYTE) { /* <0xXX>: the hex digits at 3..4, as llama.cpp reads them */
        int b = 0;
        for (uint32_t i = 3; i < 5 && i < n; i++) {
            int h = hexval(t[i]);
            if (h < 0) break;
            b = b * 16 + h;
        }
        if (size) buf[0] = (char)b;
        return 1;
    } else {
        return 0; /* unused / undefined tokens print nothing */
    }
    memcpy(buf, t, n < size ? n : size);
    return n;
}

struct g4_detok {
    const g4_vocab *v;
    int special, first;
    uint8_t *work; /* 4 bytes of held-back input, then the piece */
    size_t work_cap;
    int nhold;
    uint8_t *out;
    size_t out_cap;
};

g4_status g4_detok_new(g4_detok **out, const g4_vocab *v, int special, g4_error *err) {
    *out = NULL;
    if (!v) return g4_fail(err, G4_ERR_ARG, "detokenizer: no vocabulary");
    g4_detok *d = calloc(1, sizeof *d);
    if (!d) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    d->v = v;
    d->special = special;
    d->first = 1;
    d->work_cap = (size_t)v->max_len + 8;
    d->out_cap = 3 * d->work_cap + 8;
    d->work = malloc(d->work_cap);
    d->out = malloc(d->out_cap);
    if (!d->work || !d->out) {
        g4_detok_free(d);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    *out = d;
    return G4_OK;
}

void g4_detok_free(g4_detok *d) {
    if (!d) return;
    free(d->work);
    free(d->out);
    free(d);
}

void g4_detok_reset(g4_detok *d) {
    d->nhold = 0;
    d->first = 1;
}

static size_t put_fffd(uint8_t *o, size_t k) {
    o[k] = 0xEF;
    o[k + 1] = 0xBF;
    o[k + 2] = 0xBD;
    return k + 3;
}

const char *g4_detok_push(g4_detok *d, int32_t id, size_t *len) {
    uint8_t *piece = d->work + 4;
    size_t n = g4_token_to_piece(d->v, id, d->special, (char *)piece, d->work_cap - 4);
    if (n > d->work_cap - 4) n = d->work_cap - 4; /* cannot happen: pieces are at most max_len */
    if (d->first && d->v->add_space_prefix && n && piece[0] == ' ') { /* SentencePiece's dummy prefix */
        piece++;
        n--;
    }
    d->first = 0;
    /* held-back bytes go right in front of the piece */
    uint8_t *s = piece - d->nhold;
    memmove(s, d->work, (size_t)d->nhold);
    size_t total = (size_t)d->nhold + n, k = 0, i = 0;
    d->nhold = 0;
    while (i < total) {
        if (s[i] < 0x80) {
            d->out[k++] = s[i++];
            continue;
        }
        int comp;
        int m = tok_utf8_prefix(s + i, total - i, &comp);
        if (comp) {
            memcpy(d->out + k, s + i, (size_t)m);
            k += (size_t)m;
            i += (size_t)m;
        } else if (m > 0 && i + (size_t)m == total) { /* unfinished: wait for the next token */
            memmove(d->work, s + i, (size_t)m);
            d->nhold = m;
            break;
        } else { /* a maximal invalid subsequence */
            k = put_fffd(d->out, k);
            i += m > 0 ? (size_t)m : 1;
        }
    }
    *len = k;
    return (const char *)d->out;
}

const char *g4_detok_flush(g4_detok *d, size_t *len) {
    size_t k = 0;
    if (d->nhold) k = put_fffd(d->out, 0);
    d->nhold = 0;
    d->first = 1;
    *len = k;
    return (const char *)d->out;
}

g4_status g4_detokenize(const g4_vocab *v, const int32_t *ids, size_t n, int special, char **out, size_t *len,
                        g4_error *err) {
    *out = NULL;
    if (len) *len = 0;
    g4_detok *d;
    g4_status s = g4_detok_new(&d, v, special, err);
    if (s) return s;
    size_t cap = 64, k = 0;
    char *buf = malloc(cap);
    if (!buf) {
        g4_detok_free(d);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i <= n; i++) {
        size_t m;
        const char *p = i < n ? g4_detok_push(d, ids[i], &m) : g4_detok_flush(d, &m);
        if (k + m + 1 > cap) {
            while (k + m + 1 > cap) cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                g4_detok_free(d);
                return g4_fail(err, G4_ERR_NOMEM, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf + k, p, m);
        k += m;
    }
    buf[k] = 0;
    g4_detok_free(d);
    *out = buf;
    if (len) *len = k;
    return G4_OK;
}
