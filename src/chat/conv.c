#include "chat/conv.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

struct g4_conv {
    g4_chat_flavour flavour;
    int think;
    char *system;
    json_t *messages;
    json_t *tools;
};

g4_chat_flavour g4_chat_flavour_of_model(const g4_model *m, int *from_template) {
    const g4_vocab *v = g4_model_vocab(m);
    size_t tl = 0;
    const char *tmpl = v ? g4_vocab_chat_template(v, &tl) : NULL;
    g4_chat_flavour f;
    if (tmpl && g4_chat_flavour_from_template(tmpl, tl, &f, NULL) == G4_OK) {
        if (from_template) *from_template = 1;
        return f;
    }
    if (from_template) *from_template = 0;
    g4_model_info in;
    g4_model_get_info(m, &in);
    return in.n_expert || !strncmp(in.variant, "31B", 3) || !strncmp(in.variant, "12B", 3) ||
                   !strncmp(in.variant, "26B", 3)
               ? G4_CHAT_LARGE
               : G4_CHAT_SMALL;
}

g4_status g4_conv_new(g4_conv **out, g4_chat_flavour flavour, g4_error *err) {
    *out = NULL;
    g4_conv *c = calloc(1, sizeof *c);
    if (!c || !(c->messages = json_array())) {
        free(c);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    c->flavour = flavour;
    *out = c;
    return G4_OK;
}

void g4_conv_free(g4_conv *c) {
    if (!c) return;
    free(c->system);
    json_decref(c->messages);
    json_decref(c->tools);
    free(c);
}

g4_status g4_conv_set_system(g4_conv *c, const char *text, g4_error *err) {
    char *s = NULL;
    if (text && *text) {
        json_t *probe = json_string(text);
        if (!probe) return g4_fail(err, G4_ERR_ARG, "the system prompt is not valid UTF-8 text");
        json_decref(probe);
        if (!(s = strdup(text))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    free(c->system);
    c->system = s;
    return G4_OK;
}

const char *g4_conv_system(const g4_conv *c) { return c->system; }
void g4_conv_set_thinking(g4_conv *c, int on) { c->think = on != 0; }
int g4_conv_thinking(const g4_conv *c) { return c->think; }
g4_chat_flavour g4_conv_flavour(const g4_conv *c) { return c->flavour; }
const json_t *g4_conv_messages(const g4_conv *c) { return c->messages; }

g4_status g4_conv_set_tools(g4_conv *c, const json_t *tools, g4_error *err) {
    json_t *t = NULL;
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) return g4_fail(err, G4_ERR_ARG, "tools must be a list");
        if (!(t = json_deep_copy(tools))) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    json_decref(c->tools);
    c->tools = t;
    return G4_OK;
}

g4_status g4_conv_add(g4_conv *c, json_t *message, g4_error *err) {
    if (!json_is_object(message)) return g4_fail(err, G4_ERR_ARG, "a message must be an object");
    if (json_array_append(c->messages, message)) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    return G4_OK;
}

g4_status g4_conv_add_user(g4_conv *c, const char *text, size_t len, g4_error *err) {
    json_t *m = json_pack("{s:s,s:s%}", "role", "user", "content", text, len);
    if (!m) return g4_fail(err, G4_ERR_ARG, "the message is not valid UTF-8 text");
    g4_status rc = g4_conv_add(c, m, err);
    json_decref(m);
    return rc;
}

g4_status g4_conv_set_messages(g4_conv *c, const json_t *messages, g4_error *err) {
    if (!json_is_array(messages)) return g4_fail(err, G4_ERR_ARG, "messages must be a list");
    json_t *copy = json_deep_copy(messages);
    if (!copy) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    json_decref(c->messages);
    c->messages = copy;
    return G4_OK;
}

void g4_conv_pop(g4_conv *c) {
    const size_t n = json_array_size(c->messages);
    if (n) json_array_remove(c->messages, n - 1);
}

void g4_conv_clear(g4_conv *c) { json_array_clear(c->messages); }

static int is_user(const json_t *m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    return role && !strcmp(role, "user");
}

int g4_conv_drop_oldest(g4_conv *c) {
    const size_t n = json_array_size(c->messages);
    size_t end = 1;
    if (n < 2) return 0;
    while (end < n && !is_user(json_array_get(c->messages, end))) end++;
    if (end >= n) return 0; /* only the latest exchange is left */
    for (size_t i = 0; i < end; i++) json_array_remove(c->messages, 0);
    return (int)end;
}

g4_status g4_conv_prompt(const g4_conv *c, const g4_vocab *v, char **text_out, size_t *text_len, int32_t **ids,
                         size_t *n_ids, int *in_thinking, g4_error *err) {
    if (text_out) *text_out = NULL;
    if (ids) *ids = NULL;
    json_t *all = json_array();
    if (!all) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    if (c->system) {
        json_t *sm = json_pack("{s:s,s:s}", "role", "system", "content", c->system);
        if (!sm || json_array_append_new(all, sm)) {
            json_decref(all);
            return g4_fail(err, G4_ERR_NOMEM, "out of memory");
        }
    }
    if (json_array_extend(all, c->messages)) {
        json_decref(all);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    g4_chat_opts o = g4_chat_default_opts();
    o.flavour = c->flavour;
    o.enable_thinking = c->think;
    o.add_generation_prompt = 1;
    char *text = NULL;
    size_t len = 0;
    g4_status rc = g4_chat_render(all, c->tools, &o, &text, &len, err);
    json_decref(all);
    if (rc) return rc;
    if (in_thinking) *in_thinking = g4_chat_prompt_in_thinking(text, len);
    if (ids) rc = g4_tokenize_alloc(v, text, len, 0, 1, ids, n_ids, err);
    if (text_out && !rc) {
        *text_out = text;
        if (text_len) *text_len = len;
    } else {
        free(text);
    }
    return rc;
}

g4_status g4_conv_fit(g4_conv *c, const g4_vocab *v, int n_ctx, int reserve, int drop, int32_t **ids, size_t *n_ids,
                      int *in_thinking, int *n_dropped, g4_error *err) {
    *ids = NULL;
    if (n_dropped) *n_dropped = 0;
    json_t *keep = drop ? json_deep_copy(c->messages) : NULL;
    if (drop && !keep) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    int dropped = 0;
    g4_status rc;
    for (;;) {
        rc = g4_conv_prompt(c, v, NULL, NULL, ids, n_ids, in_thinking, err);
        if (rc) break;
        if ((long long)*n_ids + reserve <= (long long)n_ctx) {
            json_decref(keep);
            if (n_dropped) *n_dropped = dropped;
            return G4_OK;
        }
        const size_t n = *n_ids;
        free(*ids);
        *ids = NULL;
        int k = drop ? g4_conv_drop_oldest(c) : 0;
        if (k) {
            dropped += k;
            continue;
        }
        rc = g4_fail(err, G4_ERR_CONTEXT, "the conversation is %zu tokens; the context holds %d, with %d kept free for the answer",
                     n, n_ctx, reserve);
        if (keep) { /* nothing dropped after all */
            json_decref(c->messages);
            c->messages = keep;
            keep = NULL;
        }
        json_decref(keep);
        return rc;
    }
    /* a render or tokenizer error: the conversation as it was */
    if (keep) {
        json_decref(c->messages);
        c->messages = keep;
    }
    return rc;
}
