/* HF tokenizer.json -> GGUF tokenizer section (see import_hf.h for the rules). */
#include "tokenizer/import_hf.h"
#include "util/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *own(g4_hf_vocab *hv, size_t n) {
    if (hv->n_owned == hv->cap_owned) {
        size_t cap = hv->cap_owned ? 2 * hv->cap_owned : 64;
        char **o = realloc(hv->owned, cap * sizeof *o);
        if (!o) return NULL;
        hv->owned = o;
        hv->cap_owned = cap;
    }
    char *p = malloc(n + 1);
    if (!p) return NULL;
    hv->owned[hv->n_owned++] = p;
    return p;
}

void g4_hf_vocab_free(g4_hf_vocab *hv) {
    if (!hv) return;
    for (size_t i = 0; i < hv->n_owned; i++) free(hv->owned[i]);
    free(hv->owned);
    free((void *)hv->tokens);
    free(hv->scores);
    free(hv->types);
    free((void *)hv->merges);
    free(hv->chat_template);
    if (hv->json) json_decref((json_t *)hv->json);
    free(hv);
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends(const char *s, const char *p) {
    size_t n = strlen(s), m = strlen(p);
    return n >= m && memcmp(s + n - m, p, m) == 0;
}

/* number of code points (the text is valid UTF-8: it comes from JSON) */
static size_t n_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int32_t find_token(const g4_hf_vocab *hv, const char *t) {
    if (!t) return -1;
    for (uint32_t i = 0; i < hv->n; i++)
        if (hv->tokens[i] && !strcmp(hv->tokens[i], t)) return (int32_t)i;
    return -1;
}

/* Prepend("▁") anywhere in the normalizer: SentencePiece's dummy prefix */
static int has_prepend(json_t *norm) {
    if (!json_is_object(norm)) return 0;
    const char *type = json_string_value(json_object_get(norm, "type"));
    if (type && !strcmp(type, "Prepend")) return 1;
    json_t *list = json_object_get(norm, "normalizers");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (has_prepend(e)) return 1;
    return 0;
}

static const char *special_in(json_t *item) {
    json_t *st = json_object_get(item, "SpecialToken");
    return st ? json_string_value(json_object_get(st, "id")) : NULL;
}

g4_status g4_hf_vocab_load(g4_hf_vocab **out, const char *path, g4_hf_layout layout, g4_error *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (je.line < 0)
            return g4_fail(err, G4_ERR_IO, "%s: %s", path, je.text);
        return g4_fail(err, G4_ERR_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    g4_hf_vocab *hv = calloc(1, sizeof *hv);
    if (!hv) {
        json_decref(root);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    hv->json = root;
    hv->layout = layout;
    g4_status s = G4_OK;

    json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    json_t *vocab = json_object_get(model, "vocab");
    if (mtype && strcmp(mtype, "BPE")) {
        s = g4_fail(err, G4_ERR_UNSUPPORTED, "%s: tokenizer model type '%s' (g4 imports BPE tokenizers)", path, mtype);
        goto fail;
    }
    if (!json_is_object(model) || !json_is_object(vocab)) {
        s = g4_fail(err, G4_ERR_FORMAT, "%s: no \"model\": {\"vocab\": {...}} object", path);
        goto fail;
    }
    size_t n = json_object_size(vocab);
    if (n == 0 || n > (size_t)INT32_MAX / 4) {
        s = g4_fail(err, G4_ERR_FORMAT, "%s: the vocabulary has %zu entries", path, n);
        goto fail;
    }
    hv->n = (uint32_t)n;
    hv->tokens = calloc(n, sizeof *hv->tokens);
    hv->scores = malloc(n * sizeof *hv->scores);
    hv->types = malloc(n * sizeof *hv->types);
    if (!hv->tokens || !hv->scores || !hv->types) {
        s = g4_fail(err, G4_ERR_NOMEM, "out of memory for %zu tokens", n);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || (size_t)id >= n) {
            s = g4_fail(err, G4_ERR_FORMAT, "%s: vocabulary entry '%.60s' has id %lld, not in 0..%zu", path, key,
                        (long long)id, n - 1);
            goto fail;
        }
        if (hv->tokens[id]) {
            s = g4_fail(err, G4_ERR_FORMAT, "%s: id %lld is used by '%.60s' and '%.60s'", path, (long long)id,
                        hv->tokens[id], key);
            goto fail;
        }
        if (!*key) {
            s = g4_fail(err, G4_ERR_FORMAT, "%s: empty vocabulary entry (id %lld)", path, (long long)id);
            goto fail;
        }
        hv->tokens[id] = key;
    }
    for (uint32_t i = 0; i < hv->n; i++) {
        const char *t = hv->tokens[i];
        int byte = n_chars(t) == 6 && starts(t, "<0x") && ends(t, ">");
        hv->types[i] = byte ? G4_TOKEN_BYTE : G4_TOKEN_NORMAL;
        hv->scores[i] = byte ? 0.0f : -(float)i;
    }

    /* added tokens */
    static const char *user_defined[] = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                                         "<|tool_response>", "<tool_response|>", "<|\"|>"};
    json_t *added = json_object_get(root, "added_tokens");
    size_t ai;
    json_t *a;
    json_array_foreach(added, ai, a) {
        json_t *jid = json_object_get(a, "id");
        const char *content = json_string_value(json_object_get(a, "content"));
        if (!json_is_integer(jid) || !content) {
            s = g4_fail(err, G4_ERR_FORMAT, "%s: added_tokens[%zu] has no id or content", path, ai);
            goto fail;
        }
        json_int_t id = json_integer_value(jid);
        if (id < 0 || (size_t)id >= n) continue; /* outside the vocabulary (Gemma 3's <image_soft_token>) */
        int special = json_is_true(json_object_get(a, "special"));
        if (layout == G4_HF_LLAMA) {
            int looks = !strcmp(content, "<pad>") || !strcmp(content, "<mask>") ||
                        (starts(content, "<|") && ends(content, "|>")) ||
                        (starts(content, "<unused") && ends(content, ">"));
            if (special || looks) {
                hv->types[id] = G4_TOKEN_CONTROL;
                hv->tokens[id] = content;
            } else { /* user-defined: U+2581 written as a space */
                hv->types[id] = G4_TOKEN_USER_DEFINED;
                size_t cl = strlen(content);
                char *t = own(hv, cl);
                if (!t) {
                    s = g4_fail(err, G4_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                size_t k = 0;
                for (size_t i = 0; i < cl;) {
                    if (i + 3 <= cl && !memcmp(content + i, "\xe2\x96\x81", 3)) {
                        t[k++] = ' ';
                        i += 3;
                    } else {
                        t[k++] = content[i++];
                    }
                }
                t[k] = 0;
                hv->tokens[id] = t;
            }
            hv->scores[id] = -1000.0f;
        } else {
            int user = 0;
            for (size_t k = 0; k < sizeof user_defined / sizeof *user_defined; k++) user |= !strcmp(content, user_defined[k]);
            hv->types[id] = !strcmp(content, "<unk>") ? G4_TOKEN_UNKNOWN : user ? G4_TOKEN_USER_DEFINED : G4_TOKEN_CONTROL;
        }
    }

    /* merges (gemma4 layout): "left right" strings or [left, right] pairs, in rank order */
    if (layout == G4_HF_GEMMA4) {
        json_t *merges = json_object_get(model, "merges");
        if (!json_is_array(merges)) {
            s = g4_fail(err, G4_ERR_FORMAT, "%s: no \"model\": {\"merges\": [...]} array", path);
            goto fail;
        }
        size_t nm = json_array_size(merges);
        hv->merges = malloc((nm ? nm : 1) * sizeof *hv->merges);
        if (!hv->merges) {
            s = g4_fail(err, G4_ERR_NOMEM, "out of memory for %zu merges", nm);
            goto fail;
        }
        size_t i;
        json_t *m;
        json_array_foreach(merges, i, m) {
            if (json_is_string(m)) {
                hv->merges[i] = json_string_value(m);
            } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                       json_is_string(json_array_get(m, 1))) {
                const char *l = json_string_value(json_array_get(m, 0)), *r = json_string_value(json_array_get(m, 1));
                size_t ll = strlen(l), rl = strlen(r);
                char *t = own(hv, ll + 1 + rl);
                if (!t) {
                    s = g4_fail(err, G4_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                memcpy(t, l, ll);
                t[ll] = ' ';
                memcpy(t + ll + 1, r, rl + 1);
                hv->merges[i] = t;
            } else {
                s = g4_fail(err, G4_ERR_FORMAT, "%s: merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, i);
                goto fail;
            }
        }
        hv->n_merges = (uint32_t)nm;
    }

    /* special ids and flags */
    hv->bos = find_token(hv, "<bos>");
    hv->eos = find_token(hv, "<eos>");
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    hv->unk = find_token(hv, unk ? unk : "<unk>");
    hv->pad = find_token(hv, "<pad>");
    hv->add_bos = 1;
    hv->add_eos = 0;
    json_t *pp = json_object_get(root, "post_processor");
    const char *pptype = json_string_value(json_object_get(pp, "type"));
    json_t *single = json_object_get(pp, "single");
    if (pptype && !strcmp(pptype, "TemplateProcessing") && json_array_size(single) > 0) {
        hv->add_bos = special_in(json_array_get(single, 0)) != NULL;
        hv->add_eos = json_array_size(single) > 1 && special_in(json_array_get(single, json_array_size(single) - 1)) != NULL;
    }
    hv->add_space_prefix = has_prepend(json_object_get(root, "normalizer"));
    *out = hv;
    return G4_OK;
fail:
    g4_hf_vocab_free(hv);
    return s;
}

g4_status g4_hf_vocab_set_chat_template(g4_hf_vocab *hv, const char *text, size_t len, g4_error *err) {
    if (memchr(text, 0, len)) return g4_fail(err, G4_ERR_FORMAT, "the chat template contains a NUL byte");
    char *t = malloc(len + 1);
    if (!t) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    memcpy(t, text, len);
    t[len] = 0;
    free(hv->chat_template);
    hv->chat_template = t;
    return G4_OK;
}

g4_status g4_hf_vocab_load_config(g4_hf_vocab *hv, const char *path, g4_error *err) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        if (je.line < 0) return g4_fail(err, G4_ERR_IO, "%s: %s", path, je.text);
        return g4_fail(err, G4_ERR_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    json_t *ct = json_object_get(root, "chat_template");
    const char *t = NULL;
    if (json_is_string(ct)) {
        t = json_string_value(ct);
    } else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            const char *tt = json_string_value(json_object_get(e, "template"));
            if (tt && (!t || (name && !strcmp(name, "default")))) t = tt;
        }
    }
    g4_status s = t ? g4_hf_vocab_set_chat_template(hv, t, strlen(t), err) : G4_OK;
    json_decref(root);
    return s;
}

g4_status g4_hf_vocab_set_keys(const g4_hf_vocab *hv, gguf_writer *w, g4_error *err) {
    int llama = hv->layout == G4_HF_LLAMA;
    gguf_w_str(w, "tokenizer.ggml.model", llama ? "llama" : "gemma4");
    if (llama) gguf_w_str(w, "tokenizer.ggml.pre", "default");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", hv->tokens, hv->n);
    gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, hv->scores, hv->n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, hv->types, hv->n);
    if (!llama) gguf_w_arr_str(w, "tokenizer.ggml.merges", hv->merges, hv->n_merges);
    if (hv->bos >= 0) gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)hv->bos);
    if (hv->eos >= 0) gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)hv->eos);
    if (hv->unk >= 0) gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)hv->unk);
    if (hv->pad >= 0) gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)hv->pad);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", hv->add_bos);
    gguf_w_bool(w, "tokenizer.ggml.add_eos_token", hv->add_eos);
    gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", hv->add_space_prefix);
    if (hv->chat_template) gguf_w_str(w, "tokenizer.chat_template", hv->chat_template);
    return gguf_writer_status(w, err);
}

g4_status g4_hf_vocab_write(const g4_hf_vocab *hv, const char *path, const char *name, g4_error *err) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    char defname[32];
    snprintf(defname, sizeof defname, "g4-vocab-%s", hv->layout == G4_HF_LLAMA ? "llama" : "gemma4");
    /* a minimal "llama" header, so that llama.cpp loads the file with vocab_only */
    gguf_w_str(w, "general.architecture", "llama");
    gguf_w_str(w, "general.name", name ? name : defname);
    gguf_w_u32(w, "llama.context_length", 8192);
    gguf_w_u32(w, "llama.embedding_length", 64);
    gguf_w_u32(w, "llama.block_count", 1);
    gguf_w_u32(w, "llama.feed_forward_length", 128);
    gguf_w_u32(w, "llama.attention.head_count", 1);
    gguf_w_u32(w, "llama.attention.head_count_kv", 1);
    gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    gguf_w_u32(w, "llama.rope.dimension_count", 64);
    g4_status s = g4_hf_vocab_set_keys(hv, w, err);
    if (!s) s = gguf_writer_write(w, path, NULL, NULL, NULL, err);
    gguf_writer_free(w);
    return s;
}
