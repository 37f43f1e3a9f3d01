/* Parsing Gemma 4 output: a streaming splitter into thinking / answer / tool calls, and the parser of the
 * template's value notation inside a tool call (key:value, <|"|>strings<|"|>, numbers, true/false/null, {}, []). */
#include "chat.h"
#include "chat_py.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the value notation ------------------------------------------------------------------------------------------------ */

#define QUOTE "<|\"|>"
#define QLEN 5
#define MAX_DEPTH 128

typedef struct tp {
    const char *s;
    size_t n, i;
    char err[160];
    int oom;
} tp;

static int tp_fail(tp *t, const char *what) {
    if (!t->err[0]) snprintf(t->err, sizeof t->err, "%s at byte %zu", what, t->i);
    return -1;
}

static json_t *tp_oom(tp *t) {
    t->oom = 1;
    tp_fail(t, "out of memory");
    return NULL;
}

/* v, or the out-of-memory failure when v is NULL */
static json_t *tp_new(tp *t, json_t *v) { return v ? v : tp_oom(t); }

static void tp_ws(tp *t) {
    while (t->i < t->n && (t->s[t->i] == ' ' || t->s[t->i] == '\t' || t->s[t->i] == '\n' || t->s[t->i] == '\r'))
        t->i++;
}

static int tp_at(const tp *t, const char *lit, size_t len) {
    return t->n - t->i >= len && !memcmp(t->s + t->i, lit, len);
}

/* a JSON string from raw bytes: invalid UTF-8 becomes U+FFFD */
static json_t *lossy_string(const char *s, size_t n) {
    cbuf b = {0};
    size_t i = 0, l;
    while (i < n) {
        uint32_t cp = u8_decode(s + i, n - i, &l);
        if (l == 1 && cp >= 0x80) cb_puts(&b, "\xEF\xBF\xBD");
        else cb_put(&b, s + i, l);
        i += l;
    }
    json_t *j = b.oom ? NULL : json_stringn_nocheck(b.p ? b.p : "", b.n);
    cb_free(&b);
    return j;
}

/* "..." with JSON escapes (models sometimes write JSON inside a call) */
static json_t *tp_json_string(tp *t) {
    size_t j = t->i + 1;
    while (j < t->n && t->s[j] != '"') j += t->s[j] == '\\' ? 2 : 1;
    if (j >= t->n) {
        tp_fail(t, "unterminated \"string\"");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(t->s + t->i, j + 1 - t->i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v || !json_is_string(v)) {
        json_decref(v);
        tp_fail(t, "bad \"string\"");
        return NULL;
    }
    t->i = j + 1;
    return v;
}

/* <|"|>...<|"|>: everything up to the next quote token, verbatim */
static json_t *tp_quoted(tp *t) {
    const char *e = memmem(t->s + t->i + QLEN, t->n - t->i - QLEN, QUOTE, QLEN);
    if (!e) {
        tp_fail(t, "unterminated <|\"|>string");
        return NULL;
    }
    size_t a = t->i + QLEN, len = (size_t)(e - (t->s + a));
    t->i = a + len + QLEN;
    return tp_new(t, lossy_string(t->s + a, len));
}

/* a bare token: a number, true, false, null, or (leniently) a word taken as a string */
static json_t *tp_bare(tp *t) {
    size_t a = t->i;
    while (t->i < t->n && !strchr(",}]{[", t->s[t->i]) && !tp_at(t, QUOTE, QLEN) && t->s[t->i] != '\0') t->i++;
    size_t z = t->i;
    while (z > a && (t->s[z - 1] == ' ' || t->s[z - 1] == '\t' || t->s[z - 1] == '\n' || t->s[z - 1] == '\r')) z--;
    size_t len = z - a;
    const char *s = t->s + a;
    if (!len) {
        tp_fail(t, "missing value");
        return NULL;
    }
    if (len == 4 && !memcmp(s, "true", 4)) return json_true();
    if (len == 5 && !memcmp(s, "false", 5)) return json_false();
    if (len == 4 && !memcmp(s, "null", 4)) return json_null();  /* static singletons: never NULL */
    /* JSON number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
    size_t k = 0;
    int integral = 1;
    if (k < len && s[k] == '-') k++;
    size_t d0 = k;
    while (k < len && s[k] >= '0' && s[k] <= '9') k++;
    int ok = k > d0 && !(s[d0] == '0' && k - d0 > 1);
    if (ok && k < len && s[k] == '.') {
        integral = 0;
        size_t f = ++k;
        while (k < len && s[k] >= '0' && s[k] <= '9') k++;
        ok = k > f;
    }
    if (ok && k < len && (s[k] == 'e' || s[k] == 'E')) {
        integral = 0;
        k++;
        if (k < len && (s[k] == '+' || s[k] == '-')) k++;
        size_t e = k;
        while (k < len && s[k] >= '0' && s[k] <= '9') k++;
        ok = k > e;
    }
    if (ok && k == len) {
        char tmp[64];
        if (len < sizeof tmp) {
            memcpy(tmp, s, len);
            tmp[len] = 0;
            if (integral) {
                errno = 0;
                long long v = strtoll(tmp, NULL, 10);
                if (errno == 0) return tp_new(t, json_integer(v));
            }
            double d = strtod(tmp, NULL);
            if (isfinite(d)) return tp_new(t, json_real(d));
        }
    }
    return tp_new(t, lossy_string(s, len));
}

static json_t *tp_value(tp *t, int depth);

static json_t *tp_key(tp *t) {
    tp_ws(t);
    if (tp_at(t, QUOTE, QLEN)) return tp_quoted(t);
    if (t->i < t->n && t->s[t->i] == '"') return tp_json_string(t);
    size_t a = t->i;
    while (t->i < t->n && t->s[t->i] != ':') {
        if (strchr("{}[],", t->s[t->i]) || t->s[t->i] == '\0' || tp_at(t, QUOTE, QLEN)) {
            tp_fail(t, "bad key");
            return NULL;
        }
        t->i++;
    }
    size_t z = t->i;
    while (z > a && (t->s[z - 1] == ' ' || t->s[z - 1] == '\t' || t->s[z - 1] == '\n' || t->s[z - 1] == '\r')) z--;
    if (t->i >= t->n || z == a) {
        tp_fail(t, "missing key");
        return NULL;
    }
    return tp_new(t, lossy_string(t->s + a, z - a));
}

/* After an element of an object or array: 0 when a ',' leads to another element, 1 when `close` (or a
 * trailing ',' before it) ends the container, -1 (with the error set) otherwise. */
static int tp_after_item(tp *t, char close) {
    tp_ws(t);
    if (t->i < t->n && t->s[t->i] == ',') {
        t->i++;
        tp_ws(t);
        if (t->i < t->n && t->s[t->i] == close) { /* trailing comma */
            t->i++;
            return 1;
        }
        return 0;
    }
    if (t->i < t->n && t->s[t->i] == close) {
        t->i++;
        return 1;
    }
    tp_fail(t, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    return -1;
}

static json_t *tp_object(tp *t, int depth) {
    json_t *o = json_object();
    if (!o) return tp_oom(t);
    t->i++; /* { */
    tp_ws(t);
    if (t->i < t->n && t->s[t->i] == '}') {
        t->i++;
        return o;
    }
    for (;;) {
        json_t *k = tp_key(t);
        if (!k) goto fail;
        if (memchr(json_string_value(k), 0, json_string_length(k))) {
            json_decref(k);
            tp_fail(t, "NUL byte in a key");
            goto fail;
        }
        tp_ws(t);
        if (t->i >= t->n || t->s[t->i] != ':') {
            json_decref(k);
            tp_fail(t, "expected ':'");
            goto fail;
        }
        t->i++;
        json_t *v = tp_value(t, depth + 1);
        if (!v) {
            json_decref(k);
            goto fail;
        }
        int r = json_object_setn_new_nocheck(o, json_string_value(k), json_string_length(k), v);
        json_decref(k);
        if (r) {
            tp_oom(t);
            goto fail;
        }
        int end = tp_after_item(t, '}');
        if (end < 0) goto fail;
        if (end) return o;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *tp_array(tp *t, int depth) {
    json_t *a = json_array();
    if (!a) return tp_oom(t);
    t->i++; /* [ */
    tp_ws(t);
    if (t->i < t->n && t->s[t->i] == ']') {
        t->i++;
        return a;
    }
    for (;;) {
        json_t *v = tp_value(t, depth + 1);
        if (!v) goto fail;
        if (json_array_append_new(a, v)) {
            tp_oom(t);
            goto fail;
        }
        int end = tp_after_item(t, ']');
        if (end < 0) goto fail;
        if (end) return a;
    }
fail:
    json_decref(a);
    return NULL;
}

static json_t *tp_value(tp *t, int depth) {
    if (depth > MAX_DEPTH) {
        tp_fail(t, "nested too deeply");
        return NULL;
    }
    tp_ws(t);
    if (t->i >= t->n) {
        tp_fail(t, "missing value");
        return NULL;
    }
    if (tp_at(t, QUOTE, QLEN)) return tp_quoted(t);
    switch (t->s[t->i]) {
    case '{': return tp_object(t, depth);
    case '[': return tp_array(t, depth);
    case '"': return tp_json_string(t);
    default: return tp_bare(t);
    }
}

g4_status g4_chat_parse_tool_call(const char *s, size_t n, char **name, json_t **args, g4_error *err) {
    *name = NULL;
    *args = NULL;
    tp t = {s, n, 0, "", 0};
    tp_ws(&t);
    if (tp_at(&t, "call:", 5)) t.i += 5;
    size_t a = t.i;
    while (t.i < n && s[t.i] != '{') {
        if (s[t.i] == '\n' || s[t.i] == '\0' || strchr("}[],:", s[t.i]) || tp_at(&t, QUOTE, QLEN))
            return g4_fail(err, G4_ERR_FORMAT, "tool call: bad function name at byte %zu", t.i);
        t.i++;
    }
    size_t z = t.i;
    while (z > a && (s[z - 1] == ' ' || s[z - 1] == '\t')) z--;
    while (a < z && (s[a] == ' ' || s[a] == '\t')) a++;
    if (t.i >= n) return g4_fail(err, G4_ERR_FORMAT, "tool call: no '{' after the function name");
    if (z == a) return g4_fail(err, G4_ERR_FORMAT, "tool call: missing function name");
    json_t *o = tp_object(&t, 0);
    if (!o) return g4_fail(err, t.oom ? G4_ERR_NOMEM : G4_ERR_FORMAT, "tool call: %s", t.err);
    tp_ws(&t);
    if (t.i != n) {
        json_decref(o);
        return g4_fail(err, G4_ERR_FORMAT, "tool call: unexpected text after the arguments at byte %zu", t.i);
    }
    json_t *nm = lossy_string(s + a, z - a);
    char *c = nm ? strndup(json_string_value(nm), json_string_length(nm)) : NULL;
    json_decref(nm);
    if (!c) {
        json_decref(o);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    *name = c;
    *args = o;
    return G4_OK;
}

/* ---- the streaming splitter ------------------------------------------------------------------------------------------ */

enum { S_ANSWER, S_HEADER, S_THINKING, S_CALL, S_DONE };

typedef struct chan {
    cbuf text, ws; /* text so far; white space waiting for something after it */
    int started;
} chan;

struct g4_chat_parser {
    cbuf hold; /* input not yet decided */
    int state, header_len, in_str;
    chan think, answer;
    cbuf call; /* inside of the current tool call */
    g4_chat_tool_call *calls;
    int n_calls, cap_calls;
    unsigned flags;
    int oom;
};

static void chan_emit(chan *c, const char *s, size_t n) {
    size_t i = 0, l;
    while (i < n) {
        uint32_t cp = u8_decode(s + i, n - i, &l);
        if (py_isspace(cp)) {
            if (c->started) cb_put(&c->ws, s + i, l);
            i += l;
            continue;
        }
        size_t a = i; /* a run of non-space characters */
        while (i < n) {
            cp = u8_decode(s + i, n - i, &l);
            if (py_isspace(cp)) break;
            i += l;
        }
        if (c->ws.n) {
            cb_put(&c->text, c->ws.p, c->ws.n);
            if (c->ws.oom) c->text.oom = 1;
            c->ws.n = 0;
        }
        cb_put(&c->text, s + a, i - a);
        c->started = 1;
    }
}

static void chan_free(chan *c) {
    cb_free(&c->text);
    cb_free(&c->ws);
}

g4_status g4_chat_parser_new(g4_chat_parser **out, int in_thinking, g4_error *err) {
    g4_chat_parser *p = calloc(1, sizeof *p);
    *out = p;
    if (!p) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    p->state = in_thinking ? S_THINKING : S_ANSWER;
    return G4_OK;
}

void g4_chat_parser_free(g4_chat_parser *p) {
    if (!p) return;
    cb_free(&p->hold);
    cb_free(&p->call);
    chan_free(&p->think);
    chan_free(&p->answer);
    for (int i = 0; i < p->n_calls; i++) {
        free(p->calls[i].name);
        json_decref(p->calls[i].args);
        free(p->calls[i].args_json);
    }
    free(p->calls);
    free(p);
}

/* the tool call in p->call is complete: parse it, or give its text to the answer */
static void end_call(g4_chat_parser *p, int terminated) {
    char *name = NULL;
    json_t *args = NULL;
    g4_status st = terminated ? g4_chat_parse_tool_call(p->call.p ? p->call.p : "", p->call.n, &name, &args, NULL)
                              : G4_ERR_FORMAT;
    if (st == G4_OK) {
        char *js = g4_chat_json_dump(args, NULL);
        if (p->n_calls == p->cap_calls) {
            int cap = p->cap_calls ? p->cap_calls * 2 : 4;
            g4_chat_tool_call *c = realloc(p->calls, (size_t)cap * sizeof *c);
            if (c) {
                p->calls = c;
                p->cap_calls = cap;
            }
        }
        if (!js || p->n_calls == p->cap_calls) {
            free(js);
            free(name);
            json_decref(args);
            p->oom = 1;
        } else {
            p->calls[p->n_calls++] = (g4_chat_tool_call){name, args, js};
        }
    } else {
        if (st == G4_ERR_NOMEM) p->oom = 1;
        chan_emit(&p->answer, "<|tool_call>", 12);
        chan_emit(&p->answer, p->call.p ? p->call.p : "", p->call.n);
        if (terminated) chan_emit(&p->answer, "<tool_call|>", 12);
        p->flags |= G4_CHAT_MALFORMED_CALL;
    }
    cb_free(&p->call);
    p->in_str = 0;
    p->state = S_ANSWER;
}

static const char *const markers[] = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", QUOTE,
                                      "<turn|>",    "<eos>",      "<|tool_response>"};
enum { M_CH_OPEN, M_CH_CLOSE, M_CALL_OPEN, M_CALL_CLOSE, M_QUOTE, M_TURN_END, M_EOS, M_TOOL_RESPONSE, M_COUNT };

static void emit_text(g4_chat_parser *p, const char *s, size_t n) {
    if (!n) return;
    if (p->state == S_CALL) cb_put(&p->call, s, n);
    else if (p->state == S_THINKING) chan_emit(&p->think, s, n);
    else chan_emit(&p->answer, s, n);
}

/* length of an incomplete UTF-8 sequence at the end of s[0..n) (0 when it ends on a character boundary) */
static size_t partial_utf8(const char *s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

static void process(g4_chat_parser *p, int final) {
    const char *d = p->hold.p;
    size_t n = p->hold.n, i = 0;
    while (i < n && p->state != S_DONE) {
        if (p->state == S_HEADER) { /* the channel name after <|channel>, and its newline */
            while (i < n && p->header_len < 32 &&
                   ((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= '0' && d[i] <= '9') ||
                    d[i] == '_')) {
                i++;
                p->header_len++;
            }
            if (i == n && !final && p->header_len < 32) break;
            if (i < n && d[i] == '\n') i++;
            p->state = S_THINKING;
            continue;
        }
        const char *lt = memchr(d + i, '<', n - i);
        size_t j = lt ? (size_t)(lt - d) : n;
        if (j > i) {
            size_t keep = j == n && !final ? partial_utf8(d + i, j - i) : 0;
            emit_text(p, d + i, j - i - keep);
            i = j - keep;
            if (keep) break;
            continue;
        }
        /* at '<': a marker, the start of one (wait for more), or text */
        int m, partial = 0;
        for (m = 0; m < M_COUNT; m++) {
            size_t ml = strlen(markers[m]);
            if (n - i >= ml) {
                if (!memcmp(d + i, markers[m], ml)) break;
            } else if (!memcmp(d + i, markers[m], n - i)) {
                partial = 1;
            }
        }
        if (m == M_COUNT) {
            if (partial && !final) break;
            emit_text(p, d + i, 1);
            i++;
            continue;
        }
        size_t ml = strlen(markers[m]);
        i += ml;
        if (m == M_TURN_END || m == M_EOS || m == M_TOOL_RESPONSE) {
            if (p->state == S_CALL) end_call(p, 0);
            p->flags |= m == M_TOOL_RESPONSE ? G4_CHAT_WAITS_TOOL : G4_CHAT_END_OF_TURN;
            p->state = S_DONE;
            break;
        }
        if (p->state == S_CALL) {
            if (m == M_QUOTE) {
                p->in_str = !p->in_str;
                cb_put(&p->call, markers[m], ml);
            } else if (m == M_CALL_CLOSE && !p->in_str) {
                end_call(p, 1);
            } else {
                cb_put(&p->call, markers[m], ml);
            }
            continue;
        }
        switch (m) {
        case M_CH_OPEN: /* also a repeated opener at the very start of thinking; later ones are dropped */
            if (p->state == S_ANSWER || !p->think.started) {
                p->state = S_HEADER;
                p->header_len = 0;
            }
            break;
        case M_CH_CLOSE:
            if (p->state == S_THINKING) p->state = S_ANSWER;
            break; /* a stray one in the answer is dropped */
        case M_CALL_OPEN:
            p->state = S_CALL; /* also from inside an unclosed thought block */
            p->in_str = 0;
            break;
        case M_CALL_CLOSE: break; /* stray */
        default: emit_text(p, markers[m], ml); break; /* <|"|> outside a call is text */
        }
    }
    if (p->state == S_DONE && i < n) {
        for (size_t k = i; k < n; k++)
            if (d[k] != ' ' && d[k] != '\n' && d[k] != '\t' && d[k] != '\r') {
                p->flags |= G4_CHAT_TEXT_AFTER_END;
                break;
            }
        i = n;
    }
    if (i) {
        memmove(p->hold.p, d + i, n - i);
        p->hold.n = n - i;
    }
}

static g4_status check_oom(g4_chat_parser *p, g4_error *err) {
    if (p->hold.oom || p->call.oom || p->think.text.oom || p->think.ws.oom || p->answer.text.oom ||
        p->answer.ws.oom)
        p->oom = 1;
    return p->oom ? g4_fail(err, G4_ERR_NOMEM, "out of memory parsing the model's output") : G4_OK;
}

g4_status g4_chat_parser_feed(g4_chat_parser *p, const char *text, size_t len, g4_error *err) {
    if (p->oom) return check_oom(p, err);
    if (p->state == S_DONE) {
        for (size_t k = 0; k < len; k++)
            if (text[k] != ' ' && text[k] != '\n' && text[k] != '\t' && text[k] != '\r') {
                p->flags |= G4_CHAT_TEXT_AFTER_END;
                break;
            }
        return G4_OK;
    }
    cb_put(&p->hold, text, len);
    if (p->hold.oom) return check_oom(p, err);
    process(p, 0);
    return check_oom(p, err);
}

g4_status g4_chat_parser_finish(g4_chat_parser *p, g4_error *err) {
    if (p->oom) return check_oom(p, err);
    process(p, 1);
    if (p->state == S_CALL) {
        end_call(p, 0);
        p->flags |= G4_CHAT_TRUNCATED;
    } else if (p->state == S_THINKING || p->state == S_HEADER) {
        p->flags |= G4_CHAT_TRUNCATED;
    }
    p->state = S_DONE;
    p->hold.n = 0;
    p->think.ws.n = 0;
    p->answer.ws.n = 0;
    return check_oom(p, err);
}

g4_chat_state g4_chat_parser_state(const g4_chat_parser *p) {
    switch (p->state) {
    case S_ANSWER: return G4_CHAT_IN_ANSWER;
    case S_HEADER:
    case S_THINKING: return G4_CHAT_IN_THINKING;
    case S_CALL: return G4_CHAT_IN_TOOL_CALL;
    default: return G4_CHAT_DONE;
    }
}

unsigned g4_chat_parser_flags(const g4_chat_parser *p) { return p->flags; }

const char *g4_chat_parser_thinking(const g4_chat_parser *p, size_t *len) {
    if (len) *len = p->think.text.n;
    return p->think.text.p ? p->think.text.p : "";
}

const char *g4_chat_parser_answer(const g4_chat_parser *p, size_t *len) {
    if (len) *len = p->answer.text.n;
    return p->answer.text.p ? p->answer.text.p : "";
}

int g4_chat_parser_n_tool_calls(const g4_chat_parser *p) { return p->n_calls; }

const g4_chat_tool_call *g4_chat_parser_tool_call(const g4_chat_parser *p, int i) {
    return i >= 0 && i < p->n_calls ? &p->calls[i] : NULL;
}

g4_status g4_chat_parser_message(const g4_chat_parser *p, const char *id_prefix, json_t **out, g4_error *err) {
    *out = NULL;
    json_t *m = json_object();
    if (!m) goto oom;
    size_t n;
    const char *a = g4_chat_parser_answer(p, &n);
    if (json_object_set_new(m, "role", json_string("assistant")) ||
        json_object_set_new(m, "content", lossy_string(a, n)))
        goto oom;
    const char *t = g4_chat_parser_thinking(p, &n);
    if (n && json_object_set_new(m, "reasoning_content", lossy_string(t, n))) goto oom;
    if (p->n_calls) {
        json_t *tcs = json_array();
        if (json_object_set_new(m, "tool_calls", tcs)) goto oom;
        for (int i = 0; i < p->n_calls; i++) {
            json_t *tc = json_object(), *fn = json_object();
            if (json_array_append_new(tcs, tc) || !fn) {
                json_decref(fn);
                goto oom;
            }
            if (id_prefix) {
                char id[96];
                snprintf(id, sizeof id, "%.80s%d", id_prefix, i);
                if (json_object_set_new(tc, "id", lossy_string(id, strlen(id)))) {
                    json_decref(fn);
                    goto oom;
                }
            }
            if (json_object_set_new(tc, "type", json_string("function")) || json_object_set_new(tc, "function", fn) ||
                json_object_set_new(fn, "name", lossy_string(p->calls[i].name, strlen(p->calls[i].name))) ||
                json_object_set_new(fn, "arguments", json_deep_copy(p->calls[i].args)))
                goto oom;
        }
    }
    *out = m;
    return G4_OK;
oom:
    json_decref(m);
    return g4_fail(err, G4_ERR_NOMEM, "out of memory");
}
