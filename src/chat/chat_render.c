/* Gemma 4 prompt rendering: Google's chat template (2026-07-09) written out in C.
 *
 * Every function below mirrors one macro or block of the template and is named after it; comments quote the
 * template where its behaviour is surprising. The template is evaluated by Jinja with Python values, so the
 * helpers in chat_py.c supply Python's str(), truthiness, ==, str.upper/lower/strip and Jinja's dictsort
 * (case-insensitive key order) and iteration. A NULL json_t* is Jinja's Undefined (a missing key). */
#include "chat.h"
#include "chat_py.h"
#include "gguf/gguf.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define Q "<|\"|>" /* the template's string quote */

typedef enum { PREV_NONE = 0, PREV_THINK, PREV_TOOL, PREV_TOOL_CALL, PREV_TOOL_RESPONSE } prev_type;

typedef struct rctx {
    cbuf *out;
    g4_error *err;
    g4_status st;   /* first failure */
    char where[96]; /* what is being rendered, for messages: "tools[2]", "messages[4]" */
} rctx;

static int fail(rctx *c, g4_status st, const char *fmt, ...) G4_PRINTF(3, 4);
static int fail(rctx *c, g4_status st, const char *fmt, ...) {
    if (c->st != G4_OK) return -1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = g4_fail(c->err, st, "%s%s%s", c->where, c->where[0] ? ": " : "", msg);
    return -1;
}

static int oom(rctx *c) { return fail(c, G4_ERR_NOMEM, "out of memory"); }

static const char *type_name(const json_t *v) {
    if (!v) return "missing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static void put_json_str(cbuf *b, const json_t *s) { cb_put(b, json_string_value(s), json_string_length(s)); }

/* value | upper, as a new buffer's bytes */
static void upper_of(cbuf *dst, const json_t *v) {
    cbuf s = {0};
    py_str(&s, v);
    py_upper(dst, s.p ? s.p : "", s.n);
    if (s.oom) dst->oom = 1;
    cb_free(&s);
}

static int buf_is(const cbuf *b, const char *s) { return b->n == strlen(s) && (!b->n || !memcmp(b->p, s, b->n)); }

/* `for x in v`, failing like Python when v cannot be iterated */
static json_t *iter_or_fail(rctx *c, const json_t *v, const char *what) {
    int bad;
    json_t *a = py_iter(v, &bad);
    if (!a) {
        if (bad) fail(c, G4_ERR_ARG, "%s must be a list, not %s", what, type_name(v));
        else oom(c);
    }
    return a;
}

static py_item *dictsort_or_fail(rctx *c, const json_t *v, size_t *n, const char *what) {
    if (!json_is_object(v)) {
        fail(c, G4_ERR_ARG, "%s must be an object, not %s", what, type_name(v));
        return NULL;
    }
    int o;
    py_item *it = py_dictsort(v, n, &o);
    if (o) oom(c);
    return it;
}

/* ---- macro format_argument(argument, escape_keys=True) -------------------------------------------------------------------- */
static int format_argument(rctx *c, const json_t *a, int escape_keys) {
    cbuf *o = c->out;
    if (!a) { /* Undefined passes the template's `is sequence` test and iterates as nothing */
        cb_puts(o, "[]");
        return 0;
    }
    switch (json_typeof(a)) {
    case JSON_NULL: cb_puts(o, "null"); return 0;
    case JSON_STRING:
        cb_puts(o, Q);
        put_json_str(o, a);
        cb_puts(o, Q);
        return 0;
    case JSON_TRUE: cb_puts(o, "true"); return 0;
    case JSON_FALSE: cb_puts(o, "false"); return 0;
    case JSON_OBJECT: {
        size_t n;
        py_item *it = dictsort_or_fail(c, a, &n, "value");
        if (c->st) return -1;
        cb_putc(o, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) cb_putc(o, ',');
            if (escape_keys) cb_puts(o, Q);
            cb_put(o, it[i].key, it[i].klen);
            if (escape_keys) cb_puts(o, Q);
            cb_putc(o, ':');
            if (format_argument(c, it[i].value, escape_keys)) break;
        }
        cb_putc(o, '}');
        free(it);
        return c->st ? -1 : 0;
    }
    case JSON_ARRAY:
        cb_putc(o, '[');
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (i) cb_putc(o, ',');
            if (format_argument(c, json_array_get(a, i), escape_keys)) return -1;
        }
        cb_putc(o, ']');
        return 0;
    default: py_str(o, a); return 0; /* numbers: Python's str() */
    }
}

/* '<|"|>' + item + '<|"|>' for every item of a `required` list, comma separated */
static int quoted_list(rctx *c, const json_t *v, const char *what) {
    json_t *a = iter_or_fail(c, v, what);
    if (!a) return -1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (i) cb_putc(c->out, ',');
        cb_puts(c->out, Q);
        py_str(c->out, json_array_get(a, i));
        cb_puts(c->out, Q);
    }
    json_decref(a);
    return 0;
}

/* ---- macro format_parameters(properties, required, filter_keys=false) -------------------------------------------------------
 * (`required` is passed by the template but never used inside the macro) */
static int format_parameters(rctx *c, const json_t *properties, int filter_keys, int depth) {
    static const char *const standard_keys[] = {"description", "type", "properties", "required", "nullable"};
    cbuf *o = c->out;
    if (depth > 256) return fail(c, G4_ERR_ARG, "tool parameters nested too deeply");
    size_t n;
    py_item *items = dictsort_or_fail(c, properties, &n, "properties");
    if (c->st) return -1;
    int found_first = 0;
    for (size_t i = 0; i < n && !c->st; i++) {
        const char *key = items[i].key;
        size_t klen = items[i].klen;
        const json_t *value = items[i].value;
        if (filter_keys) {
            int std = 0;
            for (size_t k = 0; k < 5; k++)
                if (klen == strlen(standard_keys[k]) && !memcmp(key, standard_keys[k], klen)) std = 1;
            if (std) continue;
        }
        int add_comma = 0;
#define COMMA() (add_comma ? cb_putc(o, ',') : (void)(add_comma = 1))
        if (found_first) cb_putc(o, ',');
        found_first = 1;
        cb_put(o, key, klen);
        cb_puts(o, ":{");
        const json_t *desc = py_get(value, "description");
        if (py_truthy(desc)) {
            cb_puts(o, "description:" Q);
            py_str(o, desc);
            cb_puts(o, Q);
            add_comma = 1;
        }
        cbuf type = {0};
        upper_of(&type, py_get(value, "type"));
        if (type.oom) {
            cb_free(&type);
            oom(c);
            break;
        }
        if (buf_is(&type, "STRING")) {
            const json_t *en = py_get(value, "enum");
            if (py_truthy(en)) {
                COMMA();
                cb_puts(o, "enum:");
                format_argument(c, en, 1);
            }
        } else if (buf_is(&type, "ARRAY")) {
            /* value['items'] of an object without "items" is the dict's items() method in Jinja: not a mapping */
            const json_t *its = py_get(value, "items");
            if (json_is_object(its) && py_truthy(its)) {
                COMMA();
                cb_puts(o, "items:{");
                size_t m;
                py_item *ii = dictsort_or_fail(c, its, &m, "items");
                int ff = 0;
                for (size_t j = 0; j < m && !c->st; j++) {
                    const char *ik = ii[j].key;
                    size_t ikl = ii[j].klen;
                    const json_t *iv = ii[j].value;
                    if (json_is_null(iv)) continue;
                    if (ff) cb_putc(o, ',');
                    ff = 1;
                    if (ikl == 10 && !memcmp(ik, "properties", 10)) {
                        cb_puts(o, "properties:{");
                        if (json_is_object(iv)) format_parameters(c, iv, 0, depth + 1);
                        cb_putc(o, '}');
                    } else if (ikl == 8 && !memcmp(ik, "required", 8)) {
                        cb_puts(o, "required:[");
                        quoted_list(c, iv, "items.required");
                        cb_putc(o, ']');
                    } else if (ikl == 4 && !memcmp(ik, "type", 4)) {
                        cb_puts(o, "type:");
                        if (json_is_string(iv)) { /* format_argument(item_value | upper) */
                            cb_puts(o, Q);
                            upper_of(o, iv);
                            cb_puts(o, Q);
                        } else { /* format_argument(item_value | map('upper') | list) */
                            json_t *a = iter_or_fail(c, iv, "items.type");
                            if (!a) break;
                            cb_putc(o, '[');
                            for (size_t k = 0; k < json_array_size(a); k++) {
                                if (k) cb_putc(o, ',');
                                cb_puts(o, Q);
                                upper_of(o, json_array_get(a, k));
                                cb_puts(o, Q);
                            }
                            cb_putc(o, ']');
                            json_decref(a);
                        }
                    } else {
                        cb_put(o, ik, ikl);
                        cb_putc(o, ':');
                        format_argument(c, iv, 1);
                    }
                }
                free(ii);
                cb_putc(o, '}');
            }
        }
        if (py_truthy(py_get(value, "nullable"))) {
            COMMA();
            cb_puts(o, "nullable:true");
        }
        if (buf_is(&type, "OBJECT") && !c->st) {
            const json_t *props = py_get(value, "properties");
            if (props && json_is_object(props)) {
                COMMA();
                cb_puts(o, "properties:{");
                format_parameters(c, props, 0, depth + 1);
                cb_putc(o, '}');
            } else if (json_is_object(value)) {
                /* an object without "properties": its own non-standard keys are listed as if they were properties */
                COMMA();
                cb_puts(o, "properties:{");
                format_parameters(c, value, 1, depth + 1);
                cb_putc(o, '}');
            }
            const json_t *req = py_get(value, "required");
            if (py_truthy(req)) {
                COMMA();
                cb_puts(o, "required:[");
                quoted_list(c, req, "required");
                cb_putc(o, ']');
            }
        }
        COMMA();
        cb_puts(o, "type:" Q);
        cb_put(o, type.p, type.n);
        cb_puts(o, Q "}");
        cb_free(&type);
#undef COMMA
    }
    free(items);
    return c->st ? -1 : 0;
}

/* ---- macro format_function_declaration(tool_data) ------------------------------------------------------------------------ */
static int format_function_declaration(rctx *c, const json_t *tool) {
    cbuf *o = c->out;
    if (!json_is_object(tool)) return fail(c, G4_ERR_ARG, "a tool must be an object, not %s", type_name(tool));
    const json_t *fn = py_get(tool, "function");
    if (!fn && py_get(tool, "name")) fn = tool; /* a bare function declaration */
    if (!json_is_object(fn)) return fail(c, G4_ERR_ARG, "\"function\" must be an object, not %s", type_name(fn));
    const json_t *name = py_get(fn, "name");
    if (!json_is_string(name)) return fail(c, G4_ERR_ARG, "function \"name\" must be a string, not %s", type_name(name));
    cb_puts(o, "declaration:");
    put_json_str(o, name);
    cb_puts(o, "{description:" Q);
    py_str(o, py_get(fn, "description"));
    cb_puts(o, Q);
    const json_t *params = py_get(fn, "parameters");
    if (py_truthy(params)) {
        cb_puts(o, ",parameters:{");
        const json_t *props = py_get(params, "properties");
        if (py_truthy(props)) {
            cb_puts(o, "properties:{");
            if (format_parameters(c, props, 0, 0)) return -1;
            cb_puts(o, "},");
        }
        const json_t *req = py_get(params, "required");
        if (py_truthy(req)) {
            cb_puts(o, "required:[");
            if (quoted_list(c, req, "parameters.required")) return -1;
            cb_puts(o, "],");
        }
        const json_t *type = py_get(params, "type");
        if (py_truthy(type)) { /* without a type the parameters brace stays open, as in the template */
            cb_puts(o, "type:" Q);
            upper_of(o, type);
            cb_puts(o, Q "}");
        }
    }
    if (json_object_get(fn, "response")) {
        const json_t *rd = json_object_get(fn, "response");
        cb_puts(o, ",response:{");
        const json_t *d = py_get(rd, "description");
        if (py_truthy(d)) {
            cb_puts(o, "description:" Q);
            py_str(o, d);
            cb_puts(o, Q ",");
        }
        cbuf t = {0};
        upper_of(&t, py_get(rd, "type"));
        if (buf_is(&t, "OBJECT")) cb_puts(o, "type:" Q "OBJECT" Q "}");
        if (t.oom) o->oom = 1;
        cb_free(&t);
    }
    cb_putc(o, '}');
    return 0;
}

/* ---- macro strip_thinking(text): drop every <|channel>...<channel|> span, then trim ----------------------------------------- */
static void strip_thinking(cbuf *o, const char *s, size_t n) {
    static const char open[] = "<|channel>", close[] = "<channel|>";
    cbuf r = {0};
    size_t i = 0;
    for (;;) { /* text.split('<channel|>') */
        const char *e = memmem(s + i, n - i, close, sizeof close - 1);
        size_t plen = e ? (size_t)(e - (s + i)) : n - i;
        const char *ch = memmem(s + i, plen, open, sizeof open - 1);
        cb_put(&r, s + i, ch ? (size_t)(ch - (s + i)) : plen);
        if (!e) break;
        i += plen + sizeof close - 1;
    }
    size_t off, len;
    py_strip(r.p ? r.p : "", r.n, &off, &len);
    if (len) cb_put(o, r.p + off, len);
    if (r.oom) o->oom = 1;
    cb_free(&r);
}

static void put_trimmed(cbuf *o, const json_t *v) {
    cbuf s = {0};
    py_str(&s, v);
    size_t off, len;
    py_strip(s.p ? s.p : "", s.n, &off, &len);
    if (len) cb_put(o, s.p + off, len);
    if (s.oom) o->oom = 1;
    cb_free(&s);
}

/* ---- macro format_tool_response_block(tool_name, response) ----------------------------------------------------------------- */
/* key:value,key:value of an object's fields in the template's dictsort order (no braces) */
static void format_fields(rctx *c, const json_t *obj, const char *what) {
    cbuf *o = c->out;
    size_t n;
    py_item *it = dictsort_or_fail(c, obj, &n, what);
    for (size_t i = 0; i < n && !c->st; i++) {
        if (i) cb_putc(o, ',');
        cb_put(o, it[i].key, it[i].klen);
        cb_putc(o, ':');
        format_argument(c, it[i].value, 0);
    }
    free(it);
}

static int format_tool_response_block(rctx *c, const json_t *name, const json_t *response) {
    cbuf *o = c->out;
    cb_puts(o, "<|tool_response>response:");
    if (name) put_json_str(o, name);
    else cb_puts(o, "unknown");
    cb_putc(o, '{');
    if (json_is_object(response)) {
        format_fields(c, response, "response");
    } else {
        cb_puts(o, "value:");
        format_argument(c, response, 0);
    }
    cb_puts(o, "}<tool_response|>");
    return c->st ? -1 : 0;
}

/* content item kinds; unknown types are refused (the template would drop them silently) */
typedef enum { ITEM_TEXT, ITEM_IMAGE, ITEM_AUDIO, ITEM_VIDEO } item_kind;

static int item_kind_of(rctx *c, const json_t *item, size_t idx, item_kind *k) {
    if (!json_is_object(item))
        return fail(c, G4_ERR_ARG, "content[%zu] must be an object, not %s", idx, type_name(item));
    const json_t *t = json_object_get(item, "type");
    if (py_is_str(t, "text")) *k = ITEM_TEXT;
    else if (py_is_str(t, "image") || py_is_str(t, "image_url")) *k = ITEM_IMAGE;
    else if (py_is_str(t, "audio") || py_is_str(t, "input_audio")) *k = ITEM_AUDIO;
    else if (py_is_str(t, "video")) *k = ITEM_VIDEO;
    else if (json_is_string(t))
        return fail(c, G4_ERR_ARG, "content[%zu]: unknown item type \"%s\" (text, image, image_url, audio, "
                                   "input_audio, video)", idx, json_string_value(t));
    else return fail(c, G4_ERR_ARG, "content[%zu]: \"type\" must be a string, not %s", idx, type_name(t));
    if (*k == ITEM_TEXT && !json_is_string(json_object_get(item, "text")))
        return fail(c, G4_ERR_ARG, "content[%zu]: a text item needs a string \"text\", not %s", idx,
                    type_name(json_object_get(item, "text")));
    return 0;
}

static const char *placeholder(item_kind k) {
    return k == ITEM_IMAGE ? "<|image|>" : k == ITEM_AUDIO ? "<|audio|>" : k == ITEM_VIDEO ? "<|video|>" : "";
}

/* tool_calls: a list of objects with function.name a string (the template fails on anything else) */
static int check_tool_calls(rctx *c, const json_t *tcs) {
    if (!json_is_array(tcs)) return fail(c, G4_ERR_ARG, "tool_calls must be a list, not %s", type_name(tcs));
    for (size_t i = 0; i < json_array_size(tcs); i++) {
        const json_t *tc = json_array_get(tcs, i);
        if (!json_is_object(tc))
            return fail(c, G4_ERR_ARG, "tool_calls[%zu] must be an object, not %s", i, type_name(tc));
        const json_t *fn = json_object_get(tc, "function");
        if (!json_is_object(fn))
            return fail(c, G4_ERR_ARG, "tool_calls[%zu].function must be an object, not %s", i, type_name(fn));
        const json_t *name = json_object_get(fn, "name");
        if (!json_is_string(name))
            return fail(c, G4_ERR_ARG, "tool_calls[%zu].function.name must be a string, not %s", i, type_name(name));
    }
    return 0;
}

static int render_tool_call(rctx *c, const json_t *tc, size_t idx) {
    cbuf *o = c->out;
    const json_t *fn = json_object_get(tc, "function");
    const json_t *args = json_object_get(fn, "arguments");
    json_t *parsed = NULL;
    if (json_is_string(args)) { /* the OpenAI shape: a JSON string holding the object */
        size_t off, len;
        py_strip(json_string_value(args), json_string_length(args), &off, &len);
        if (len == 0) {
            parsed = json_object();
            if (!parsed) return oom(c);
        } else {
            char what[64];
            snprintf(what, sizeof what, "tool_calls[%zu].function.arguments", idx);
            g4_error e;
            g4_status st = g4_chat_json_load(json_string_value(args), json_string_length(args), what, &parsed, &e);
            if (st) return fail(c, st, "%s", e.msg);
        }
        args = parsed;
    }
    cb_puts(o, "<|tool_call>call:");
    put_json_str(o, json_object_get(fn, "name"));
    cb_putc(o, '{');
    if (json_is_object(args)) {
        format_fields(c, args, "arguments");
    } else if (!json_is_null(args)) {
        fail(c, G4_ERR_ARG, "tool_calls[%zu].function.arguments must be a JSON object (or a string holding one), "
                            "not %s", idx, type_name(args));
    }
    cb_puts(o, "}<tool_call|>");
    json_decref(parsed);
    return c->st ? -1 : 0;
}

static const char *const known_roles[] = {"system", "developer", "user", "assistant", "model", "tool"};

static int check_message(rctx *c, const json_t *m) {
    if (!json_is_object(m)) return fail(c, G4_ERR_ARG, "a message must be an object, not %s", type_name(m));
    const json_t *role = json_object_get(m, "role");
    if (!json_is_string(role)) return fail(c, G4_ERR_ARG, "\"role\" must be a string, not %s", type_name(role));
    for (size_t i = 0; i < sizeof known_roles / sizeof known_roles[0]; i++)
        if (py_is_str(role, known_roles[i])) return 0;
    return fail(c, G4_ERR_ARG, "unknown role \"%s\" (system, developer, user, assistant, model, tool)",
                json_string_value(role));
}

static const char *role_of(const json_t *m) { return json_string_value(json_object_get(m, "role")); }

/* the content of a message, as the template's `captured_content` block renders it */
static int render_content(rctx *c, const json_t *content, int is_model) {
    cbuf *o = c->out;
    if (json_is_string(content)) {
        if (is_model) strip_thinking(o, json_string_value(content), json_string_length(content));
        else put_trimmed(o, content);
    } else if (json_is_object(content)) {
        return fail(c, G4_ERR_ARG, "content must be a string or a list of items, not an object");
    } else if (json_is_array(content)) {
        for (size_t i = 0; i < json_array_size(content); i++) {
            const json_t *item = json_array_get(content, i);
            item_kind k;
            if (item_kind_of(c, item, i, &k)) return -1;
            if (k == ITEM_TEXT) {
                const json_t *t = json_object_get(item, "text");
                if (is_model) strip_thinking(o, json_string_value(t), json_string_length(t));
                else put_trimmed(o, t);
            } else {
                cb_puts(o, placeholder(k));
            }
        }
    }
    return 0; /* null, numbers, booleans: nothing */
}

/* the tool messages that follow an assistant message with tool calls, as response blocks */
static int render_tool_responses(rctx *c, const json_t *msgs, size_t from, size_t n, const json_t *tcs) {
    for (size_t k = from; k < n; k++) {
        const json_t *follow = json_array_get(msgs, k);
        if (strcmp(role_of(follow), "tool")) break;
        snprintf(c->where, sizeof c->where, "messages[%zu]", k);
        /* name: follow.get('name') or 'unknown', then the name of the (last) call whose id equals tool_call_id;
         * a missing id equals a missing tool_call_id (None == None) */
        const json_t *name = json_object_get(follow, "name");
        if (!py_truthy(name)) name = NULL;
        for (size_t t = 0; t < json_array_size(tcs); t++) {
            const json_t *tc = json_array_get(tcs, t);
            if (py_eq(json_object_get(tc, "id"), json_object_get(follow, "tool_call_id")))
                name = json_object_get(json_object_get(tc, "function"), "name");
        }
        if (name && !json_is_string(name))
            return fail(c, G4_ERR_ARG, "\"name\" must be a string, not %s", type_name(name));
        const json_t *body = json_object_get(follow, "content");
        if (json_is_object(body)) return fail(c, G4_ERR_ARG, "tool content must be a string or a list, not an object");
        if (json_is_array(body)) {
            cbuf txt = {0};
            for (size_t i = 0; i < json_array_size(body); i++) {
                item_kind kd;
                if (item_kind_of(c, json_array_get(body, i), i, &kd)) {
                    cb_free(&txt);
                    return -1;
                }
                if (kd == ITEM_TEXT) put_json_str(&txt, json_object_get(json_array_get(body, i), "text"));
            }
            json_t *s = txt.oom ? NULL : json_stringn_nocheck(txt.p ? txt.p : "", txt.n);
            cb_free(&txt);
            if (!s) return oom(c);
            int r = format_tool_response_block(c, name, s);
            json_decref(s);
            if (r) return -1;
            for (size_t i = 0; i < json_array_size(body); i++) {
                item_kind kd;
                item_kind_of(c, json_array_get(body, i), i, &kd);
                cb_puts(c->out, placeholder(kd));
            }
        } else {
            const json_t *v = body ? body : json_null();
            if (format_tool_response_block(c, name, v)) return -1;
        }
    }
    return 0;
}

static int render(rctx *c, const json_t *msgs, const json_t *tools, const g4_chat_opts *opt) {
    cbuf *o = c->out;
    if (!json_is_array(msgs)) return fail(c, G4_ERR_ARG, "messages must be a list, not %s", type_name(msgs));
    if (tools && !json_is_null(tools) && !json_is_array(tools))
        return fail(c, G4_ERR_ARG, "tools must be a list, not %s", type_name(tools));
    size_t n = json_array_size(msgs);
    for (size_t i = 0; i < n; i++) {
        snprintf(c->where, sizeof c->where, "messages[%zu]", i);
        if (check_message(c, json_array_get(msgs, i))) return -1;
    }
    c->where[0] = 0;
    int thinking = opt->enable_thinking != 0, has_tools = py_truthy(tools);
    prev_type prev = PREV_NONE;

    cb_puts(o, opt->bos ? opt->bos : "<bos>");
    /* system turn: when thinking is on, tools are declared, or the first message is a system/developer one */
    size_t start = 0;
    int first_sys = n > 0 && (!strcmp(role_of(json_array_get(msgs, 0)), "system") ||
                              !strcmp(role_of(json_array_get(msgs, 0)), "developer"));
    if (thinking || has_tools || first_sys) {
        cb_puts(o, "<|turn>system\n");
        if (thinking) {
            cb_puts(o, "<|think|>\n");
            prev = PREV_THINK;
        }
        if (first_sys) {
            const json_t *m = json_array_get(msgs, 0);
            const json_t *content = json_object_get(m, "content");
            snprintf(c->where, sizeof c->where, "messages[0]");
            if (json_is_string(content)) {
                put_trimmed(o, content);
            } else if (json_is_object(content)) {
                return fail(c, G4_ERR_ARG, "content must be a string or a list of items, not an object");
            } else if (json_is_array(content)) {
                /* every item as (item['text'] | trim) + ' ': a trailing space, and a lone space for non-text items */
                for (size_t i = 0; i < json_array_size(content); i++) {
                    item_kind k;
                    if (item_kind_of(c, json_array_get(content, i), i, &k)) return -1;
                    put_trimmed(o, py_get(json_array_get(content, i), "text"));
                    cb_putc(o, ' ');
                }
            }
            start = 1;
        }
        if (has_tools) {
            for (size_t t = 0; t < json_array_size(tools); t++) {
                snprintf(c->where, sizeof c->where, "tools[%zu]", t);
                cb_puts(o, "<|tool>");
                if (format_function_declaration(c, json_array_get(tools, t))) return -1;
                cb_puts(o, "<tool|>");
            }
            prev = PREV_TOOL;
        }
        cb_puts(o, "<turn|>\n");
    }

    /* index of the last user message: reasoning is only shown for messages after it */
    long last_user = -1;
    for (size_t i = start; i < n; i++)
        if (!strcmp(role_of(json_array_get(msgs, i)), "user")) last_user = (long)(i - start);

    const char *prev_non_tool_role = NULL;
    for (size_t i = start; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *raw = role_of(m);
        if (!strcmp(raw, "tool")) continue; /* rendered by the assistant message before it, or not at all */
        snprintf(c->where, sizeof c->where, "messages[%zu]", i);
        prev = PREV_NONE;
        int is_model = !strcmp(raw, "assistant") || !strcmp(raw, "model");
        const char *role = !strcmp(raw, "assistant") ? "model" : raw;
        int continue_same = !strcmp(role, "model") && prev_non_tool_role && !strcmp(prev_non_tool_role, "assistant");
        if (!continue_same) {
            cb_puts(o, "<|turn>");
            cb_puts(o, role);
            cb_putc(o, '\n');
        }

        const json_t *thinking_text = json_object_get(m, "reasoning");
        if (!py_truthy(thinking_text)) thinking_text = json_object_get(m, "reasoning_content");
        const json_t *tcs = json_object_get(m, "tool_calls");
        int has_calls = py_truthy(tcs);
        int gate = (long)(i - start) > last_user || (opt->preserve_thinking && has_calls);
        if (py_truthy(thinking_text) && gate) {
            if (!json_is_string(thinking_text))
                return fail(c, G4_ERR_ARG, "reasoning must be a string, not %s", type_name(thinking_text));
            cb_puts(o, "<|channel>thought\n");
            put_json_str(o, thinking_text);
            cb_puts(o, "\n<channel|>");
        }

        if (has_calls) {
            if (check_tool_calls(c, tcs)) return -1;
            for (size_t t = 0; t < json_array_size(tcs); t++)
                if (render_tool_call(c, json_array_get(tcs, t), t)) return -1;
            prev = PREV_TOOL_CALL;
        }

        int tr_out = 0;
        const json_t *trs = json_object_get(m, "tool_responses");
        if (py_truthy(trs)) { /* legacy: responses carried by the assistant message itself */
            json_t *a = iter_or_fail(c, trs, "tool_responses");
            if (!a) return -1;
            for (size_t t = 0; t < json_array_size(a) && !c->st; t++) {
                const json_t *tr = json_array_get(a, t);
                const json_t *name = py_get(tr, "name"); /* | default('unknown', true) */
                if (!py_truthy(name)) name = NULL;
                else if (!json_is_string(name))
                    fail(c, G4_ERR_ARG, "tool_responses[%zu].name must be a string, not %s", t, type_name(name));
                if (!c->st) format_tool_response_block(c, name, py_get(tr, "response"));
                tr_out = 1;
                prev = PREV_TOOL_RESPONSE;
            }
            json_decref(a);
            if (c->st) return -1;
        } else if (has_calls) {
            if (render_tool_responses(c, msgs, i + 1, n, tcs)) return -1;
            snprintf(c->where, sizeof c->where, "messages[%zu]", i);
            if (i + 1 < n && !strcmp(role_of(json_array_get(msgs, i + 1)), "tool")) {
                tr_out = 1;
                prev = PREV_TOOL_RESPONSE;
            }
        }

        size_t before = o->n;
        if (render_content(c, json_object_get(m, "content"), is_model)) return -1;
        size_t off, len;
        py_strip(o->p ? o->p + before : "", o->n - before, &off, &len);
        int has_content = len > 0;

        /* the next message that is not a tool message */
        const char *next_role = NULL;
        for (size_t j = i + 1; j < n && !next_role; j++)
            if (strcmp(role_of(json_array_get(msgs, j)), "tool")) next_role = role_of(json_array_get(msgs, j));
        int continues_into_next = !strcmp(role, "model") && next_role && !strcmp(next_role, "assistant") &&
                                  (!has_calls || tr_out);
        if (prev == PREV_TOOL_CALL && !tr_out) cb_puts(o, "<|tool_response>"); /* waiting for the results */
        else if (continues_into_next) {
        } else if (!(tr_out && !has_content && !next_role)) cb_puts(o, "<turn|>\n");
        prev_non_tool_role = raw;
    }
    c->where[0] = 0;

    if (opt->add_generation_prompt) {
        if (prev != PREV_TOOL_RESPONSE && prev != PREV_TOOL_CALL) {
            cb_puts(o, "<|turn>model\n");
            if (opt->flavour == G4_CHAT_LARGE && !thinking) cb_puts(o, "<|channel>thought\n<channel|>");
        } else if (prev == PREV_TOOL_RESPONSE && thinking) {
            cb_puts(o, "<|channel>thought\n");
        }
    }
    if (o->oom) return oom(c);
    return c->st ? -1 : 0;
}

g4_status g4_chat_render(const json_t *messages, const json_t *tools, const g4_chat_opts *o, char **out,
                         size_t *out_len, g4_error *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    g4_chat_opts def = g4_chat_default_opts();
    cbuf b = {0};
    rctx c = {&b, err, G4_OK, ""};
    if (render(&c, messages, tools, o ? o : &def) || c.st) {
        cb_free(&b);
        return c.st ? c.st : g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    *out = cb_take(&b, out_len);
    if (!*out) return g4_fail(err, G4_ERR_NOMEM, "out of memory rendering the prompt");
    return G4_OK;
}

g4_chat_opts g4_chat_default_opts(void) {
    g4_chat_opts o = {G4_CHAT_SMALL, 0, 1, 0, NULL};
    return o;
}

int g4_chat_prompt_in_thinking(const char *prompt, size_t len) {
    static const char tail[] = "<|channel>thought\n";
    return len >= sizeof tail - 1 && !memcmp(prompt + len - (sizeof tail - 1), tail, sizeof tail - 1);
}

const char *g4_chat_flavour_name(g4_chat_flavour f) { return f == G4_CHAT_LARGE ? "large" : "small"; }

g4_status g4_chat_flavour_parse(const char *s, g4_chat_flavour *out, g4_error *err) {
    static const char *const small[] = {"small", "e2b", "e4b"}, *const large[] = {"large", "12b", "26b", "26b-a4b", "31b"};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        if (!strcasecmp(s, small[i])) return *out = G4_CHAT_SMALL, G4_OK;
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
        if (!strcasecmp(s, large[i])) return *out = G4_CHAT_LARGE, G4_OK;
    return g4_fail(err, G4_ERR_ARG, "unknown chat flavour '%s' (small = E2B/E4B, large = 12B/26B-A4B/31B)", s);
}

g4_status g4_chat_flavour_from_template(const char *tmpl, size_t len, g4_chat_flavour *out, g4_error *err) {
    static const char turn[] = "<|turn>", esc[] = "<|channel>thought\\n<channel|>", raw[] = "<|channel>thought\n<channel|>";
    if (!tmpl || !memmem(tmpl, len, turn, sizeof turn - 1))
        return g4_fail(err, G4_ERR_UNSUPPORTED, "the chat template is not a Gemma 4 template (no \"<|turn>\")");
    *out = memmem(tmpl, len, esc, sizeof esc - 1) || memmem(tmpl, len, raw, sizeof raw - 1) ? G4_CHAT_LARGE
                                                                                                : G4_CHAT_SMALL;
    return G4_OK;
}

g4_status g4_chat_flavour_from_gguf(const gguf_file *f, g4_chat_flavour *out, g4_error *err) {
    const char *t = NULL;
    uint64_t n = 0;
    g4_status st = gguf_get_str(f, "tokenizer.chat_template", 0, &t, &n, err);
    if (st) return st;
    if (!t) return g4_fail(err, G4_ERR_UNSUPPORTED, "the file has no tokenizer.chat_template");
    return g4_chat_flavour_from_template(t, (size_t)n, out, err);
}

g4_status g4_chat_json_load(const char *text, size_t len, const char *what, json_t **out, g4_error *err) {
    json_error_t je;
    *out = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!*out) {
        if (je.line > 0)
            return g4_fail(err, G4_ERR_ARG, "%s: malformed JSON at line %d, column %d: %s", what, je.line, je.column,
                           je.text);
        return g4_fail(err, G4_ERR_ARG, "%s: malformed JSON: %s", what, je.text);
    }
    return G4_OK;
}

/* ---- JSON output with Python's number forms ---------------------------------------------------------------------------- */
static void dump(cbuf *b, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL: cb_puts(b, "null"); break;
    case JSON_TRUE: cb_puts(b, "true"); break;
    case JSON_FALSE: cb_puts(b, "false"); break;
    case JSON_INTEGER: cb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d != d || d - d != 0) cb_puts(b, "null"); /* not JSON: never produced by jansson */
        else py_float(b, d);
        break;
    }
    case JSON_STRING: {
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        size_t n = json_string_length(v);
        cb_putc(b, '"');
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = s[i];
            if (ch == '"' || ch == '\\') {
                cb_putc(b, '\\');
                cb_putc(b, (char)ch);
            } else if (ch == '\n') cb_puts(b, "\\n");
            else if (ch == '\r') cb_puts(b, "\\r");
            else if (ch == '\t') cb_puts(b, "\\t");
            else if (ch == '\b') cb_puts(b, "\\b");
            else if (ch == '\f') cb_puts(b, "\\f");
            else if (ch < 0x20) cb_printf(b, "\\u%04x", ch);
            else cb_putc(b, (char)ch);
        }
        cb_putc(b, '"');
        break;
    }
    case JSON_ARRAY:
        cb_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) cb_putc(b, ',');
            dump(b, json_array_get(v, i));
        }
        cb_putc(b, ']');
        break;
    case JSON_OBJECT: {
        const char *k;
        size_t kl;
        json_t *x;
        int first = 1;
        cb_putc(b, '{');
        json_object_keylen_foreach((json_t *)v, k, kl, x) {
            if (!first) cb_putc(b, ',');
            first = 0;
            json_t *ks = json_stringn_nocheck(k, kl);
            if (!ks) {
                b->oom = 1;
                return;
            }
            dump(b, ks);
            json_decref(ks);
            cb_putc(b, ':');
            dump(b, x);
        }
        cb_putc(b, '}');
        break;
    }
    }
}

char *g4_chat_json_dump(const json_t *v, size_t *len) {
    cbuf b = {0};
    dump(&b, v);
    return cb_take(&b, len);
}
