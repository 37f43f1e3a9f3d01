/* g4 serve's request layer: API bodies in, internal requests and API answers out (request.h). */
#include "serve/request.h"
#include "sampler/sampler.h"
#include "store/store.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *jtype(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static char *dupn(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

void g4_sreq_free(g4_sreq *r) {
    if (!r) return;
    free(r->model);
    json_decref(r->messages);
    json_decref(r->tools);
    free(r->prompt);
    json_decref(r->prompts);
    free(r->system);
    json_decref(r->schema);
    json_decref(r->options);
    memset(r, 0, sizeof *r);
}

/* ---- durations ---- */

g4_status g4_parse_duration(const char *s, double *seconds, g4_error *err) {
    const char *p = s;
    double sign = 1, total = 0;
    if (*p == '-' || *p == '+') sign = *p++ == '-' ? -1 : 1;
    if (!*p) return g4_fail(err, G4_ERR_ARG, "keep_alive '%.64s' is not a duration (e.g. \"5m\", \"30s\", \"-1\")", s);
    int units = 0;
    while (*p) {
        char *end;
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return g4_fail(err, G4_ERR_ARG, "keep_alive '%.64s' is not a duration (e.g. \"5m\", \"30s\", \"-1\")", s);
        double x = strtod(p, &end);
        if (end == p || !isfinite(x))
            return g4_fail(err, G4_ERR_ARG, "keep_alive '%.64s' is not a duration (e.g. \"5m\", \"30s\", \"-1\")", s);
        p = end;
        double mul;
        if (!*p) { /* a bare number: seconds (Ollama's fallback), only alone */
            if (units) return g4_fail(err, G4_ERR_ARG, "keep_alive '%.64s': a number without a unit", s);
            mul = 1;
        } else if (!strncmp(p, "ns", 2)) mul = 1e-9, p += 2;
        else if (!strncmp(p, "us", 2)) mul = 1e-6, p += 2;
        else if (!strncmp(p, "\xc2\xb5s", 3)) mul = 1e-6, p += 3;
        else if (!strncmp(p, "ms", 2)) mul = 1e-3, p += 2;
        else if (*p == 's') mul = 1, p++;
        else if (*p == 'm') mul = 60, p++;
        else if (*p == 'h') mul = 3600, p++;
        else return g4_fail(err, G4_ERR_ARG, "keep_alive '%.64s': unknown unit (ns, us, ms, s, m, h)", s);
        total += x * mul;
        units++;
    }
    if (!isfinite(total) || total > 1e12) total = 1e12;
    *seconds = sign * total;
    return G4_OK;
}

g4_status g4_parse_duration_json(const json_t *v, double *seconds, g4_error *err) {
    if (json_is_number(v)) {
        double x = json_number_value(v);
        if (!isfinite(x)) return g4_fail(err, G4_ERR_ARG, "keep_alive is not a finite number");
        *seconds = x > 1e12 ? 1e12 : x;
        return G4_OK;
    }
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return g4_fail(err, G4_ERR_ARG, "keep_alive holds a NUL character");
        return g4_parse_duration(json_string_value(v), seconds, err);
    }
    return g4_fail(err, G4_ERR_ARG, "keep_alive must be a duration string or a number of seconds, not %s", jtype(v));
}

/* ---- field helpers ---- */

static g4_status get_bool(const json_t *o, const char *k, int *out, g4_error *err) {
    const json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return G4_OK;
    if (!json_is_boolean(v)) return g4_fail(err, G4_ERR_ARG, "%s must be a boolean, not %s", k, jtype(v));
    *out = json_is_true(v);
    return G4_OK;
}

/* a string field (NULL when absent or null); NUL bytes refused */
static g4_status get_str(const json_t *o, const char *k, const char **out, size_t *len, g4_error *err) {
    const json_t *v = json_object_get(o, k);
    *out = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) return G4_OK;
    if (!json_is_string(v)) return g4_fail(err, G4_ERR_ARG, "%s must be a string, not %s", k, jtype(v));
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return G4_OK;
}

static g4_status get_int(const json_t *o, const char *k, long long lo, long long hi, int *out, g4_error *err) {
    const json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return G4_OK;
    double x;
    if (json_is_integer(v)) x = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) x = json_real_value(v);
    else return g4_fail(err, G4_ERR_ARG, "%s must be an integer, not %s", k, jtype(v));
    if (!(x >= (double)lo && x <= (double)hi)) return g4_fail(err, G4_ERR_ARG, "%s %.17g is out of range: %lld to %lld", k, x, lo, hi);
    *out = (int)x;
    return G4_OK;
}

/* Ollama's think: a boolean or "low" / "medium" / "high" / "max" (thinking on) */
static g4_status get_think(const json_t *o, int *think, g4_error *err) {
    const json_t *v = json_object_get(o, "think");
    if (!v || json_is_null(v)) return G4_OK;
    if (json_is_boolean(v)) {
        *think = json_is_true(v);
        return G4_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high") || !strcmp(s, "max")) {
            *think = 1;
            return G4_OK;
        }
        if (!strcmp(s, "none") || !strcmp(s, "false")) {
            *think = 0;
            return G4_OK;
        }
        if (!strcmp(s, "true")) {
            *think = 1;
            return G4_OK;
        }
    }
    return g4_fail(err, G4_ERR_ARG, "think must be true, false, \"low\", \"medium\" or \"high\"");
}

/* Ollama's format: "" / null (free text), "json" (any JSON object) or a JSON schema object */
static g4_status get_format(const json_t *o, g4_sreq *r, g4_error *err) {
    const json_t *v = json_object_get(o, "format");
    if (!v || json_is_null(v)) return G4_OK;
    if (json_is_string(v)) {
        if (!json_string_length(v)) return G4_OK;
        if (!strcmp(json_string_value(v), "json")) {
            r->format = 1;
            return G4_OK;
        }
        return g4_fail(err, G4_ERR_ARG, "format must be \"json\" or a JSON schema object, not \"%.64s\"", json_string_value(v));
    }
    if (!json_is_object(v)) return g4_fail(err, G4_ERR_ARG, "format must be \"json\" or a JSON schema object, not %s", jtype(v));
    r->format = 2;
    r->schema = json_deep_copy(v);
    return r->schema ? G4_OK : g4_fail(err, G4_ERR_NOMEM, "out of memory");
}

static g4_status get_keep_alive(const json_t *o, g4_sreq *r, g4_error *err) {
    const json_t *v = json_object_get(o, "keep_alive");
    if (!v || json_is_null(v)) return G4_OK;
    g4_status rc = g4_parse_duration_json(v, &r->keep_alive, err);
    if (!rc) r->has_keep_alive = 1;
    return rc;
}

/* content parts: text only (images, audio and video: G4_ERR_UNSUPPORTED) */
static g4_status check_content(const json_t *c, size_t i, g4_error *err) {
    if (!c || json_is_null(c) || json_is_string(c)) return G4_OK;
    if (!json_is_array(c))
        return g4_fail(err, G4_ERR_ARG, "messages[%zu].content must be a string or a list of parts, not %s", i, jtype(c));
    size_t j;
    const json_t *part;
    json_array_foreach(c, j, part) {
        const char *t = json_string_value(json_object_get(part, "type"));
        if (!json_is_object(part) || !t)
            return g4_fail(err, G4_ERR_ARG, "messages[%zu].content[%zu] must be an object with a \"type\"", i, j);
        if (!strcmp(t, "text")) continue;
        if (!strcmp(t, "image") || !strcmp(t, "image_url"))
            return g4_fail(err, G4_ERR_UNSUPPORTED, "images are not supported (messages[%zu].content[%zu])", i, j);
        if (!strcmp(t, "audio") || !strcmp(t, "input_audio") || !strcmp(t, "video") || !strcmp(t, "input_video"))
            return g4_fail(err, G4_ERR_UNSUPPORTED, "%s input is not supported (messages[%zu].content[%zu])", t, i, j);
        return g4_fail(err, G4_ERR_ARG, "messages[%zu].content[%zu]: unknown part type \"%.32s\"", i, j, t);
    }
    return G4_OK;
}

#define NOMEM() g4_fail(err, G4_ERR_NOMEM, "out of memory")

/* Ollama's messages into the renderer's shape: thinking -> reasoning_content, tool_name -> name, tool calls with
 * "type": "function"; images refused */
static g4_status ollama_messages(const json_t *in, json_t **out, g4_error *err) {
    *out = json_array();
    if (!*out) return NOMEM();
    size_t i;
    const json_t *m;
    json_array_foreach(in, i, m) {
        if (!json_is_object(m)) return g4_fail(err, G4_ERR_ARG, "messages[%zu] must be an object, not %s", i, jtype(m));
        const json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) return g4_fail(err, G4_ERR_ARG, "messages[%zu].role must be a string", i);
        const json_t *imgs = json_object_get(m, "images");
        if (imgs && !json_is_null(imgs) && (!json_is_array(imgs) || json_array_size(imgs)))
            return g4_fail(err, G4_ERR_UNSUPPORTED, "images are not supported (messages[%zu].images)", i);
        const json_t *c = json_object_get(m, "content");
        g4_status rc = check_content(c, i, err);
        if (rc) return rc;
        json_t *o = json_object();
        if (!o || json_array_append_new(*out, o)) return NOMEM();
        if (json_object_set(o, "role", (json_t *)role)) return NOMEM();
        if (json_object_set_new(o, "content", c && !json_is_null(c) ? json_deep_copy(c) : json_string(""))) return NOMEM();
        const json_t *th = json_object_get(m, "thinking");
        if (th && !json_is_null(th)) {
            if (!json_is_string(th)) return g4_fail(err, G4_ERR_ARG, "messages[%zu].thinking must be a string", i);
            if (json_string_length(th) && json_object_set(o, "reasoning_content", (json_t *)th)) return NOMEM();
        }
        const char *names[] = {"tool_name", "name"};
        for (int k = 0; k < 2; k++) {
            const json_t *tn = json_object_get(m, names[k]);
            if (!tn || json_is_null(tn)) continue;
            if (!json_is_string(tn)) return g4_fail(err, G4_ERR_ARG, "messages[%zu].%s must be a string", i, names[k]);
            if (json_object_set(o, "name", (json_t *)tn)) return NOMEM();
            break;
        }
        const json_t *tid = json_object_get(m, "tool_call_id");
        if (json_is_string(tid) && json_object_set(o, "tool_call_id", (json_t *)tid)) return NOMEM();
        const json_t *tcs = json_object_get(m, "tool_calls");
        if (tcs && !json_is_null(tcs)) {
            if (!json_is_array(tcs)) return g4_fail(err, G4_ERR_ARG, "messages[%zu].tool_calls must be a list", i);
            json_t *a = json_array();
            if (!a || json_object_set_new(o, "tool_calls", a)) return NOMEM();
            size_t j;
            const json_t *tc;
            json_array_foreach(tcs, j, tc) {
                const json_t *fn = json_object_get(tc, "function");
                if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
                    return g4_fail(err, G4_ERR_ARG, "messages[%zu].tool_calls[%zu] needs function.name", i, j);
                const json_t *args = json_object_get(fn, "arguments");
                json_t *f = json_pack("{s:O,s:o}", "name", json_object_get(fn, "name"), "arguments",
                                      args ? json_incref((json_t *)args) : json_object());
                json_t *call = f ? json_pack("{s:s,s:o}", "type", "function", "function", f) : NULL;
                if (!call) return NOMEM();
                const json_t *id = json_object_get(tc, "id");
                if (json_is_string(id) && json_object_set(call, "id", (json_t *)id)) {
                    json_decref(call);
                    return NOMEM();
                }
                if (json_array_append_new(a, call)) return NOMEM();
            }
        }
    }
    return G4_OK;
}

/* OpenAI messages: checked, copied */
static g4_status oai_messages(const json_t *in, json_t **out, g4_error *err) {
    size_t i;
    const json_t *m;
    json_array_foreach(in, i, m) {
        if (!json_is_object(m)) return g4_fail(err, G4_ERR_ARG, "messages[%zu] must be an object, not %s", i, jtype(m));
        if (!json_is_string(json_object_get(m, "role"))) return g4_fail(err, G4_ERR_ARG, "messages[%zu].role must be a string", i);
        g4_status rc = check_content(json_object_get(m, "content"), i, err);
        if (rc) return rc;
    }
    *out = json_deep_copy(in);
    return *out ? G4_OK : NOMEM();
}

static g4_status set_opt(json_t *opts, const char *name, const json_t *v, g4_error *err) {
    if (!v || json_is_null(v)) return G4_OK;
    return json_object_set(opts, name, (json_t *)v) ? NOMEM() : G4_OK;
}

/* OpenAI's sampling fields as Ollama options (checked by g4_params_check afterwards) */
static g4_status oai_options(const json_t *o, json_t *opts, g4_error *err) {
    static const char *const same[] = {"temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop",
                                       "top_k", "min_p", "repeat_penalty", "repeat_last_n"};
    g4_status rc;
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        if ((rc = set_opt(opts, same[i], json_object_get(o, same[i]), err))) return rc;
    const char *mt[] = {"max_tokens", "max_completion_tokens", "n_predict"};
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(o, mt[i]);
        if (!v || json_is_null(v)) continue;
        if (!json_is_integer(v)) return g4_fail(err, G4_ERR_ARG, "%s must be an integer, not %s", mt[i], jtype(v));
        json_int_t x = json_integer_value(v);
        if (x < 1 && !(i == 2 && x == -1))
            return g4_fail(err, G4_ERR_ARG, "%s %lld is out of range: at least 1", mt[i], (long long)x);
        if ((rc = set_opt(opts, "num_predict", v, err))) return rc;
    }
    return G4_OK;
}

/* response_format: {"type":"text"|"json_object"|"json_schema", "json_schema":{"name","schema","strict"}} (also
 * llama-server's {"type":"json_schema","schema":{...}}) */
static g4_status oai_response_format(const json_t *o, g4_sreq *r, g4_error *err) {
    const json_t *rf = json_object_get(o, "response_format");
    if (!rf || json_is_null(rf)) return G4_OK;
    if (!json_is_object(rf)) return g4_fail(err, G4_ERR_ARG, "response_format must be an object, not %s", jtype(rf));
    const char *t = json_string_value(json_object_get(rf, "type"));
    if (!t) return g4_fail(err, G4_ERR_ARG, "response_format.type must be \"text\", \"json_object\" or \"json_schema\"");
    if (!strcmp(t, "text")) return G4_OK;
    if (!strcmp(t, "json_object")) {
        const json_t *s = json_object_get(rf, "schema");
        if (json_is_object(s)) { /* llama-server: json_object with a schema */
            r->format = 2;
            r->schema = json_deep_copy(s);
            return r->schema ? G4_OK : NOMEM();
        }
        r->format = 1;
        return G4_OK;
    }
    if (strcmp(t, "json_schema"))
        return g4_fail(err, G4_ERR_ARG, "response_format.type must be \"text\", \"json_object\" or \"json_schema\", not \"%.32s\"", t);
    const json_t *js = json_object_get(rf, "json_schema");
    const json_t *s = json_is_object(js) ? json_object_get(js, "schema") : json_object_get(rf, "schema");
    if (js && !json_is_object(js)) return g4_fail(err, G4_ERR_ARG, "response_format.json_schema must be an object");
    if (!s || json_is_null(s)) { /* a json_schema without a schema: any JSON object */
        r->format = 1;
        return G4_OK;
    }
    if (!json_is_object(s) && !json_is_boolean(s))
        return g4_fail(err, G4_ERR_ARG, "response_format.json_schema.schema must be an object, not %s", jtype(s));
    r->format = 2;
    r->schema = json_deep_copy(s);
    return r->schema ? G4_OK : NOMEM();
}

/* reasoning_effort / reasoning.effort / chat_template_kwargs.enable_thinking */
static g4_status oai_think(const json_t *o, int *think, g4_error *err) {
    const json_t *e = json_object_get(o, "reasoning_effort");
    const json_t *rs = json_object_get(o, "reasoning");
    if ((!e || json_is_null(e)) && json_is_object(rs)) e = json_object_get(rs, "effort");
    if (e && !json_is_null(e)) {
        const char *s = json_string_value(e);
        if (!s) return g4_fail(err, G4_ERR_ARG, "reasoning_effort must be a string, not %s", jtype(e));
        if (!strcmp(s, "none") || !strcmp(s, "minimal")) *think = 0;
        else if (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high") || !strcmp(s, "max")) *think = 1;
        else return g4_fail(err, G4_ERR_ARG, "reasoning_effort must be \"none\", \"low\", \"medium\" or \"high\", not \"%.32s\"", s);
    }
    const json_t *kw = json_object_get(o, "chat_template_kwargs");
    if (json_is_object(kw)) {
        const json_t *et = json_object_get(kw, "enable_thinking");
        if (json_is_boolean(et)) *think = json_is_true(et);
    }
    return G4_OK;
}

static g4_status parse_ollama(g4_api api, const json_t *o, g4_sreq *r, g4_error *err) {
    g4_status rc;
    r->stream = 1;
    if ((rc = get_bool(o, "stream", &r->stream, err)) || (rc = get_think(o, &r->think, err)) || (rc = get_format(o, r, err)) ||
        (rc = get_keep_alive(o, r, err)))
        return rc;
    const json_t *opts = json_object_get(o, "options");
    if (opts && !json_is_null(opts) && !json_is_object(opts))
        return g4_fail(err, G4_ERR_ARG, "options must be an object, not %s", jtype(opts));
    json_decref(r->options);
    r->options = NULL;
    if ((rc = g4_params_check(json_is_object(opts) ? opts : NULL, 1, &r->options, err))) return rc;
    if (api == G4_API_GENERATE) {
        const char *s;
        size_t n;
        if ((rc = get_str(o, "prompt", &s, &n, err))) return rc;
        if (s && !(r->prompt = dupn(s, n))) return NOMEM();
        r->prompt_len = n;
        if ((rc = get_str(o, "system", &s, &n, err))) return rc;
        if (s && !(r->system = dupn(s, n))) return NOMEM();
        if ((rc = get_bool(o, "raw", &r->raw, err))) return rc;
        if ((rc = get_str(o, "suffix", &s, &n, err))) return rc;
        if (n) return g4_fail(err, G4_ERR_UNSUPPORTED, "suffix (fill-in-the-middle) is not supported");
        if ((rc = get_str(o, "template", &s, &n, err))) return rc; /* accepted, not used: g4 renders Gemma 4 itself */
        const json_t *imgs = json_object_get(o, "images");
        if (imgs && !json_is_null(imgs) && (!json_is_array(imgs) || json_array_size(imgs)))
            return g4_fail(err, G4_ERR_UNSUPPORTED, "images are not supported");
        r->empty = !r->prompt_len;
        return G4_OK;
    }
    const json_t *msgs = json_object_get(o, "messages");
    if (msgs && !json_is_null(msgs) && !json_is_array(msgs))
        return g4_fail(err, G4_ERR_ARG, "messages must be a list, not %s", jtype(msgs));
    if ((rc = ollama_messages(json_is_array(msgs) ? msgs : NULL, &r->messages, err))) return rc;
    const json_t *tools = json_object_get(o, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) return g4_fail(err, G4_ERR_ARG, "tools must be a list, not %s", jtype(tools));
        if (json_array_size(tools) && !(r->tools = json_deep_copy(tools))) return NOMEM();
    }
    r->empty = !json_array_size(r->messages);
    return G4_OK;
}

static g4_status parse_openai(g4_api api, const json_t *o, g4_sreq *r, g4_error *err) {
    g4_status rc;
    r->stream = 0;
    if ((rc = get_bool(o, "stream", &r->stream, err)) || (rc = get_keep_alive(o, r, err)) ||
        (rc = get_int(o, "n", 1, G4_SREQ_MAX_N, &r->n, err)))
        return rc;
    const json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return g4_fail(err, G4_ERR_ARG, "stream_options must be an object, not %s", jtype(so));
        if ((rc = get_bool(so, "include_usage", &r->include_usage, err))) return rc;
    }
    json_t *opts = json_object();
    if (!opts) return NOMEM();
    rc = oai_options(o, opts, err);
    json_decref(r->options);
    r->options = NULL;
    if (!rc) rc = g4_params_check(opts, 0, &r->options, err);
    json_decref(opts);
    if (rc) return rc;
    if ((rc = oai_response_format(o, r, err))) return rc;
    if (api == G4_API_OAI_CHAT) {
        const json_t *msgs = json_object_get(o, "messages");
        if (!json_is_array(msgs)) return g4_fail(err, G4_ERR_ARG, "messages must be a list of messages");
        if (!json_array_size(msgs)) return g4_fail(err, G4_ERR_ARG, "messages must not be empty");
        if ((rc = oai_messages(msgs, &r->messages, err)) || (rc = oai_think(o, &r->think, err))) return rc;
        const json_t *tools = json_object_get(o, "tools");
        if (tools && !json_is_null(tools)) {
            if (!json_is_array(tools)) return g4_fail(err, G4_ERR_ARG, "tools must be a list, not %s", jtype(tools));
            if (json_array_size(tools) && !(r->tools = json_deep_copy(tools))) return NOMEM();
        }
        const json_t *tc = json_object_get(o, "tool_choice");
        if (tc && !json_is_null(tc)) {
            const char *s = json_string_value(tc);
            if (s && !strcmp(s, "none")) {
                json_decref(r->tools);
                r->tools = NULL;
            } else if (!(s && (!strcmp(s, "auto") || !strcmp(s, "required"))) && !json_is_object(tc))
                return g4_fail(err, G4_ERR_ARG, "tool_choice must be \"none\", \"auto\", \"required\" or an object");
        }
        int lp = 0, top = 0;
        if ((rc = get_bool(o, "logprobs", &lp, err)) || (rc = get_int(o, "top_logprobs", 0, G4_STREAM_MAX_LOGPROBS, &top, err)))
            return rc;
        r->logprobs = lp ? top : -1;
    } else {
        const json_t *p = json_object_get(o, "prompt");
        if (json_is_string(p)) {
            r->prompts = json_pack("[O]", p);
            if (!r->prompts) return NOMEM();
        } else if (json_is_array(p) && json_array_size(p) >= 1 && json_array_size(p) <= G4_SREQ_MAX_PROMPTS) {
            size_t i;
            const json_t *e;
            json_array_foreach(p, i, e) if (!json_is_string(e))
                return g4_fail(err, G4_ERR_ARG, "prompt[%zu] must be a string (token arrays are not supported)", i);
            if (!(r->prompts = json_deep_copy(p))) return NOMEM();
        } else {
            return g4_fail(err, G4_ERR_ARG, "prompt must be a string or a list of 1 to %d strings", G4_SREQ_MAX_PROMPTS);
        }
        int echo = 0;
        const char *s;
        size_t n;
        if ((rc = get_bool(o, "echo", &echo, err))) return rc;
        if (echo) return g4_fail(err, G4_ERR_UNSUPPORTED, "echo is not supported");
        if ((rc = get_str(o, "suffix", &s, &n, err))) return rc;
        if (n) return g4_fail(err, G4_ERR_UNSUPPORTED, "suffix (fill-in-the-middle) is not supported");
        int lp = -1;
        if ((rc = get_int(o, "logprobs", 0, G4_STREAM_MAX_LOGPROBS, &lp, err))) return rc;
        r->logprobs = lp;
        r->raw = 1;
        r->think = 0;
    }
    return G4_OK;
}

g4_status g4_sreq_parse(g4_api api, const char *body, size_t len, g4_sreq *r, g4_error *err) {
    memset(r, 0, sizeof *r);
    r->api = api;
    r->think = -1;
    r->n = 1;
    r->logprobs = -1;
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    if (!o) return g4_fail(err, G4_ERR_ARG, "invalid JSON in the request body: %s (line %d, column %d)", je.text, je.line, je.column);
    g4_status rc = G4_OK;
    if (!json_is_object(o)) {
        rc = g4_fail(err, G4_ERR_ARG, "the request body must be a JSON object, not %s", jtype(o));
        goto done;
    }
    const char *model;
    size_t mlen;
    if ((rc = get_str(o, "model", &model, &mlen, err))) goto done;
    if (!model || !mlen) {
        rc = g4_fail(err, G4_ERR_ARG, "model is required");
        goto done;
    }
    if (strlen(model) != mlen) {
        rc = g4_fail(err, G4_ERR_ARG, "model holds a NUL character");
        goto done;
    }
    if (!(r->model = dupn(model, mlen))) {
        rc = NOMEM();
        goto done;
    }
    rc = api == G4_API_GENERATE || api == G4_API_CHAT ? parse_ollama(api, o, r, err) : parse_openai(api, o, r, err);
    if (!rc && !r->options && g4_params_check(NULL, 1, &r->options, err)) rc = NOMEM();
done:
    json_decref(o);
    return rc;
}

/* ---- settings ---- */

static int num(const json_t *o, const char *k, double *v) {
    const json_t *x = o ? json_object_get(o, k) : NULL;
    if (!json_is_number(x)) return 0;
    *v = json_number_value(x);
    return 1;
}

static void apply_params(const json_t *o, g4_sampler_params *sp, int *seed_set) {
    double d;
    if (num(o, "temperature", &d)) sp->temperature = (float)d;
    if (num(o, "top_k", &d)) sp->top_k = (int)d;
    if (num(o, "top_p", &d)) sp->top_p = (float)d;
    if (num(o, "min_p", &d)) sp->min_p = (float)d;
    if (num(o, "repeat_penalty", &d)) sp->repeat_penalty = (float)d;
    if (num(o, "presence_penalty", &d)) sp->presence_penalty = (float)d;
    if (num(o, "frequency_penalty", &d)) sp->frequency_penalty = (float)d;
    if (num(o, "repeat_last_n", &d)) sp->penalty_last_n = (int)d;
    if (num(o, "seed", &d) && d >= 0) {
        sp->seed = (uint64_t)d;
        *seed_set = 1;
    }
}

g4_status g4_sreq_settings(const g4_sreq *r, const g4_sampler_params *base, const json_t *model_params,
                           int server_ctx, uint64_t seed_random, g4_sampler_params *sp, int *max_tokens,
                           const char **stops, int max_stop, int *n_stop, int *n_ctx, int *clamped, g4_error *err) {
    *sp = *base;
    int seed_set = 0;
    apply_params(model_params, sp, &seed_set);
    apply_params(r->options, sp, &seed_set);
    if (!seed_set) sp->seed = seed_random;
    *max_tokens = -1;
    *n_ctx = 0;
    *clamped = 0;
    double d;
    for (int k = 0; k < 2; k++) {
        const json_t *o = k ? r->options : model_params;
        if (num(o, "num_predict", &d)) *max_tokens = d > 0 ? (int)d : -1; /* -1, -2 and 0: no limit but the context */
        if (num(o, "num_ctx", &d)) {
            *n_ctx = d > server_ctx ? server_ctx : (int)d;
            *clamped = d > server_ctx;
        }
    }
    const json_t *st = json_object_get(r->options, "stop");
    if (!st) st = model_params ? json_object_get(model_params, "stop") : NULL;
    *n_stop = 0;
    if (json_array_size(st) > (size_t)max_stop)
        return g4_fail(err, G4_ERR_ARG, "stop: %zu strings, at most %d", json_array_size(st), max_stop);
    for (size_t i = 0; i < json_array_size(st); i++)
        if (json_is_string(json_array_get(st, i))) stops[(*n_stop)++] = json_string_value(json_array_get(st, i));
    g4_status rc = g4_sampler_params_check(sp, err);
    if (rc) return rc;
    g4_gen_params gp = {.max_tokens = *max_tokens, .stop = stops, .n_stop = *n_stop};
    return g4_gen_params_check(&gp, err);
}

/* ---- answers ---- */

g4_status g4_choice_init(g4_choice *c, g4_error *err) {
    memset(c, 0, sizeof *c);
    c->text = calloc(1, 1);
    c->thinking = calloc(1, 1);
    c->answer = calloc(1, 1);
    c->tool_calls = json_array();
    c->logprobs = json_array();
    if (!c->text || !c->thinking || !c->answer || !c->tool_calls || !c->logprobs) {
        g4_choice_free(c);
        return NOMEM();
    }
    return G4_OK;
}

void g4_choice_free(g4_choice *c) {
    free(c->text);
    free(c->thinking);
    free(c->answer);
    json_decref(c->tool_calls);
    json_decref(c->logprobs);
    memset(c, 0, sizeof *c);
}

static int append(char **buf, size_t *len, const char *s, size_t n) {
    if (!n) return 1;
    char *b = realloc(*buf, *len + n + 1);
    if (!b) return 0;
    memcpy(b + *len, s, n);
    *len += n;
    b[*len] = 0;
    *buf = b;
    return 1;
}

/* length of the valid UTF-8 character at s[0..n) (no NUL, no surrogates, no overlongs), 0 if invalid */
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c && c < 0x80) return 1;
    size_t l = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!l || l > n) return 0;
    unsigned cp = c & (0x7f >> l);
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((l == 2 && cp < 0x80) || (l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return l;
}

/* s[0..n) as a JSON string, invalid UTF-8 bytes (and NUL) as U+FFFD (token pieces may be parts of characters) */
static json_t *utf8_string(const char *s, size_t n) {
    if (!s) return json_string("");
    json_t *j = json_stringn(s, n);
    if (j) return j;
    if (n > ((size_t)-1) / 3 - 1) return NULL;
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_char((const unsigned char *)s + i, n - i);
        if (l) {
            memcpy(o + k, s + i, l);
            k += l;
            i += l;
        } else {
            memcpy(o + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(o, k);
    free(o);
    return j;
}

static json_t *token_entry(const g4_vocab *v, int32_t id, float lp) {
    char buf[256];
    size_t n = v ? g4_token_to_piece(v, id, 1, buf, sizeof buf) : 0;
    if (n > sizeof buf) n = sizeof buf;
    json_t *bytes = json_array();
    for (size_t i = 0; bytes && i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)buf[i]));
    json_t *tok = utf8_string(buf, n);
    if (!bytes || !tok) {
        json_decref(bytes);
        json_decref(tok);
        return NULL;
    }
    return json_pack("{s:o,s:f,s:o}", "token", tok, "logprob", isfinite(lp) ? (double)lp : -9999.0, "bytes", bytes);
}

json_t *g4_logprobs_json(const g4_token_logprob *lp, int n, const g4_vocab *vocab) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *e = token_entry(vocab, lp[i].token, lp[i].logprob);
        json_t *top = json_array();
        for (int k = 0; top && k < lp[i].n_top && k < G4_STREAM_MAX_LOGPROBS; k++)
            json_array_append_new(top, token_entry(vocab, lp[i].top_id[k], lp[i].top_logprob[k]));
        if (!e || !top || json_object_set_new(e, "top_logprobs", top) || json_array_append_new(a, e)) {
            if (!e) json_decref(top);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

g4_status g4_choice_add(g4_choice *c, const g4_job_delta *d, const g4_vocab *vocab, g4_error *err) {
    if (!append(&c->text, &c->text_len, d->text, d->text_len) ||
        !append(&c->thinking, &c->thinking_len, d->thinking, d->thinking_len) ||
        !append(&c->answer, &c->answer_len, d->answer, d->answer_len) ||
        (d->tool_calls && json_array_extend(c->tool_calls, d->tool_calls)))
        return NOMEM();
    if (d->n_logprobs) {
        json_t *lp = g4_logprobs_json(d->logprobs, d->n_logprobs, vocab);
        if (!lp || json_array_extend(c->logprobs, lp)) {
            json_decref(lp);
            return NOMEM();
        }
        json_decref(lp);
    }
    if (d->done) {
        c->done = 1;
        c->res = d->result;
    }
    return G4_OK;
}

const char *g4_done_reason(const g4_job_result *res) {
    return res->stop == G4_STOP_MAX || res->stop == G4_STOP_CONTEXT ? "length" : "stop";
}

const char *g4_finish_reason(const g4_job_result *res, int has_tool_calls) {
    if (has_tool_calls && res->stop != G4_STOP_MAX && res->stop != G4_STOP_CONTEXT) return "tool_calls";
    return g4_done_reason(res);
}

void g4_rfc3339(double t, char *buf, size_t size) {
    if (!(t >= 0 && t < 253402300799.0)) t = 0;
    time_t s = (time_t)t;
    long ns = (long)((t - (double)s) * 1e9);
    if (ns < 0) ns = 0;
    if (ns > 999999999) ns = 999999999;
    struct tm tm;
    gmtime_r(&s, &tm);
    char frac[16] = "";
    if (ns) {
        snprintf(frac, sizeof frac, ".%09ld", ns);
        size_t l = strlen(frac);
        while (l > 1 && frac[l - 1] == '0') frac[--l] = 0;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, frac);
}

json_t *g4_ollama_tool_calls(const json_t *calls, int first, const char *id_prefix) {
    json_t *a = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c) {
        char id[96];
        snprintf(id, sizeof id, "%s%d", id_prefix ? id_prefix : "call_", first + (int)i);
        json_t *t = json_pack("{s:s,s:{s:i,s:O,s:O}}", "id", id, "function", "index", first + (int)i, "name",
                              json_object_get(c, "name"), "arguments", json_object_get(c, "arguments"));
        if (!a || !t || json_array_append_new(a, t)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *g4_oai_tool_calls(const json_t *calls, int first, const char *id_prefix, int with_index) {
    json_t *a = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c) {
        char id[96];
        snprintf(id, sizeof id, "%s%d", id_prefix ? id_prefix : "call_", first + (int)i);
        const json_t *args = json_object_get(c, "arguments");
        char *txt = args ? json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
        json_t *t = json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", id, "type", "function", "function", "name",
                              json_object_get(c, "name"), "arguments", txt ? txt : "{}");
        free(txt);
        if (t && with_index && json_object_set_new(t, "index", json_integer(first + (int)i))) {
            json_decref(t);
            t = NULL;
        }
        if (!a || !t || json_array_append_new(a, t)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_int_t ns(double s) { return s > 0 && s < 9e9 ? (json_int_t)(s * 1e9) : 0; }

void g4_ollama_final_fields(json_t *o, const g4_job_result *res, double total_s, double load_s) {
    json_object_set_new(o, "done_reason", json_string(g4_done_reason(res)));
    json_object_set_new(o, "total_duration", json_integer(ns(total_s)));
    json_object_set_new(o, "load_duration", json_integer(ns(load_s)));
    json_object_set_new(o, "prompt_eval_count", json_integer(res->n_prompt));
    json_object_set_new(o, "prompt_eval_duration", json_integer(ns(res->t_queue + res->t_prompt)));
    json_object_set_new(o, "eval_count", json_integer(res->n_gen));
    json_object_set_new(o, "eval_duration", json_integer(ns(res->t_gen)));
}

json_t *g4_oai_usage(int prompt, int cached, int completion) {
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens",
                     prompt + completion, "prompt_tokens_details", "cached_tokens", cached);
}

json_t *g4_ollama_answer(const g4_sreq *r, const char *model, double now, const g4_choice *c, double total_s,
                         double load_s) {
    char ts[48];
    g4_rfc3339(now, ts, sizeof ts);
    json_t *o = json_pack("{s:s,s:s}", "model", model, "created_at", ts);
    if (!o) return NULL;
    const int raw = r->api == G4_API_GENERATE && r->raw;
    const char *content = raw ? c->text : c->answer;
    const size_t clen = raw ? c->text_len : c->answer_len;
    if (r->api == G4_API_GENERATE) {
        json_object_set_new(o, "response", utf8_string(content, clen));
        if (c->thinking_len) json_object_set_new(o, "thinking", utf8_string(c->thinking, c->thinking_len));
    } else {
        json_t *m = json_pack("{s:s,s:o}", "role", "assistant", "content", utf8_string(content, clen));
        if (m && c->thinking_len) json_object_set_new(m, "thinking", utf8_string(c->thinking, c->thinking_len));
        if (m && json_array_size(c->tool_calls)) json_object_set_new(m, "tool_calls", g4_ollama_tool_calls(c->tool_calls, 0, NULL));
        if (!m || json_object_set_new(o, "message", m)) {
            json_decref(o);
            return NULL;
        }
    }
    json_object_set_new(o, "done", json_true());
    g4_ollama_final_fields(o, &c->res, total_s, load_s);
    return o;
}

/* OpenAI legacy completion logprobs {"tokens","token_logprobs","top_logprobs","text_offset"} from chat-shaped
 * entries */
static json_t *completion_logprobs(const json_t *entries) {
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t i, off = 0;
    const json_t *e;
    json_array_foreach(entries, i, e) {
        const json_t *t = json_object_get(e, "token");
        json_array_append(toks, (json_t *)t);
        json_array_append(lps, json_object_get(e, "logprob"));
        json_t *m = json_object();
        size_t k;
        const json_t *te;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, te) {
            const char *s = json_string_value(json_object_get(te, "token"));
            if (m && s) json_object_set(m, s, json_object_get(te, "logprob"));
        }
        json_array_append_new(tops, m);
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += json_string_length(t);
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops, "text_offset", offs);
}

json_t *g4_oai_answer(const g4_sreq *r, const char *id, const char *model, int64_t created, g4_choice *const *cs, int n) {
    const int chat = r->api == G4_API_OAI_CHAT;
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[]}", "id", id, "object", chat ? "chat.completion" : "text_completion",
                          "created", (json_int_t)created, "model", model, "system_fingerprint", "g4", "choices");
    if (!o) return NULL;
    json_t *choices = json_object_get(o, "choices");
    int prompt = 0, cached = 0, gen = 0;
    for (int i = 0; i < n; i++) {
        const g4_choice *c = cs[i];
        const int has_calls = json_array_size(c->tool_calls) > 0;
        json_t *ch = json_pack("{s:i,s:s}", "index", i, "finish_reason", g4_finish_reason(&c->res, has_calls));
        if (!ch || json_array_append_new(choices, ch)) goto nomem;
        if (chat) {
            json_t *m = json_pack("{s:s,s:o}", "role", "assistant", "content",
                                  has_calls && !c->answer_len ? json_null() : utf8_string(c->answer, c->answer_len));
            if (!m || json_object_set_new(ch, "message", m)) goto nomem;
            if (c->thinking_len) json_object_set_new(m, "reasoning_content", utf8_string(c->thinking, c->thinking_len));
            if (has_calls) json_object_set_new(m, "tool_calls", g4_oai_tool_calls(c->tool_calls, 0, "call_", 0));
            json_object_set_new(ch, "logprobs", r->logprobs >= 0 ? json_pack("{s:O}", "content", c->logprobs) : json_null());
        } else {
            json_object_set_new(ch, "text", utf8_string(c->text, c->text_len));
            json_object_set_new(ch, "logprobs", r->logprobs >= 0 ? completion_logprobs(c->logprobs) : json_null());
        }
        /* the prompt counts once per prompt (n choices of one prompt share it) */
        if (i % (r->n > 0 ? r->n : 1) == 0) {
            prompt += c->res.n_prompt;
            cached += c->res.n_prompt_cached;
        }
        gen += c->res.n_gen;
    }
    if (json_object_set_new(o, "usage", g4_oai_usage(prompt, cached, gen))) goto nomem;
    return o;
nomem:
    json_decref(o);
    return NULL;
}

json_t *g4_ollama_error(const char *msg) { return json_pack("{s:o}", "error", utf8_string(msg, strlen(msg))); }

json_t *g4_oai_error(const char *msg, const char *type, const char *param, const char *code) {
    return json_pack("{s:{s:o,s:s,s:o,s:o}}", "error", "message", utf8_string(msg, strlen(msg)), "type", type, "param",
                     param ? json_string(param) : json_null(), "code", code ? json_string(code) : json_null());
}
