/* libFuzzer target for the chat format (src/chat).
 *
 *   make fuzz-chat FUZZ_SECONDS=60      (clang -fsanitize=fuzzer,address,undefined)
 *
 * The first byte chooses options; the rest is used twice:
 *  - as conversation JSON (a list of messages, or {"messages": [...], "tools": [...]}) rendered for both
 *    flavours: either a prompt or an error with a message, never a crash; on success the prompt starts with BOS;
 *  - as model output for the streaming parser, fed in chunks whose sizes come from the option byte, and all at
 *    once: both must give the same thinking, answer, tool calls and flags; the parsed message must render back
 *    without error; the tool-call parser also gets the raw bytes.
 * Seeds: fuzz/corpus-chat.
 */
#include "chat/chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENSURE(c)                                                                                   \
    do {                                                                                            \
        if (!(c)) {                                                                                 \
            fprintf(stderr, "fuzz_chat: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

static void fuzz_render(const uint8_t *d, size_t n, unsigned opt) {
    json_t *v;
    g4_error e;
    if (g4_chat_json_load((const char *)d, n, "input", &v, &e)) {
        ENSURE(e.msg[0]);
        return;
    }
    const json_t *msgs = v, *tools = NULL;
    if (json_is_object(v)) {
        msgs = json_object_get(v, "messages");
        tools = json_object_get(v, "tools");
    }
    for (int f = 0; f < 2; f++) {
        g4_chat_opts o = g4_chat_default_opts();
        o.flavour = f ? G4_CHAT_LARGE : G4_CHAT_SMALL;
        o.enable_thinking = opt & 1;
        o.add_generation_prompt = (opt >> 1) & 1;
        o.preserve_thinking = (opt >> 2) & 1;
        char *out = NULL;
        size_t len = 0;
        memset(&e, 0, sizeof e);
        g4_status st = g4_chat_render(msgs, tools, &o, &out, &len, &e);
        if (st == G4_OK) {
            ENSURE(out && len >= 5 && !memcmp(out, "<bos>", 5) && out[len] == 0);
        } else {
            ENSURE(!out && e.msg[0]);
        }
        free(out);
    }
    json_decref(v);
}

typedef struct {
    char *think, *answer;
    int n;
    char **calls; /* name + " " + args json */
    unsigned flags;
} result;

static void collect(g4_chat_parser *p, result *r) {
    r->think = strdup(g4_chat_parser_thinking(p, NULL));
    r->answer = strdup(g4_chat_parser_answer(p, NULL));
    r->n = g4_chat_parser_n_tool_calls(p);
    r->flags = g4_chat_parser_flags(p);
    r->calls = calloc((size_t)r->n + 1, sizeof *r->calls);
    ENSURE(r->think && r->answer && r->calls);
    for (int i = 0; i < r->n; i++) {
        const g4_chat_tool_call *tc = g4_chat_parser_tool_call(p, i);
        ENSURE(tc && tc->name && tc->args && json_is_object(tc->args) && tc->args_json);
        size_t a = strlen(tc->name), b = strlen(tc->args_json);
        r->calls[i] = malloc(a + b + 2);
        ENSURE(r->calls[i]);
        memcpy(r->calls[i], tc->name, a);
        r->calls[i][a] = ' ';
        memcpy(r->calls[i] + a + 1, tc->args_json, b + 1);
    }
}

static void drop(result *r) {
    for (int i = 0; i < r->n; i++) free(r->calls[i]);
    free(r->calls);
    free(r->think);
    free(r->answer);
}

static void fuzz_parse(const uint8_t *d, size_t n, unsigned opt) {
    g4_error e;
    int in_thinking = (opt >> 3) & 1;
    size_t chunk = 1 + ((opt >> 4) & 15);
    g4_chat_parser *whole, *streamed;
    ENSURE(g4_chat_parser_new(&whole, in_thinking, &e) == G4_OK);
    ENSURE(g4_chat_parser_new(&streamed, in_thinking, &e) == G4_OK);
    ENSURE(g4_chat_parser_feed(whole, (const char *)d, n, &e) == G4_OK);
    ENSURE(g4_chat_parser_finish(whole, &e) == G4_OK);
    for (size_t i = 0; i < n; i += chunk) {
        ENSURE(g4_chat_parser_feed(streamed, (const char *)d + i, n - i < chunk ? n - i : chunk, &e) == G4_OK);
        (void)g4_chat_parser_state(streamed);
    }
    ENSURE(g4_chat_parser_finish(streamed, &e) == G4_OK);
    ENSURE(g4_chat_parser_state(whole) == G4_CHAT_DONE);
    result a, b;
    collect(whole, &a);
    collect(streamed, &b);
    ENSURE(!strcmp(a.think, b.think));
    ENSURE(!strcmp(a.answer, b.answer));
    ENSURE(a.n == b.n && a.flags == b.flags);
    for (int i = 0; i < a.n; i++) ENSURE(!strcmp(a.calls[i], b.calls[i]));
    drop(&a);
    drop(&b);

    /* the parsed output, as the assistant message of a conversation, renders */
    json_t *msg;
    ENSURE(g4_chat_parser_message(whole, "call_", &msg, &e) == G4_OK);
    json_t *conv = json_pack("[{s:s, s:s}, o]", "role", "user", "content", "q", msg);
    ENSURE(conv);
    char *out = NULL;
    g4_chat_opts o = g4_chat_default_opts();
    g4_status st = g4_chat_render(conv, NULL, &o, &out, NULL, &e);
    if (st != G4_OK) fprintf(stderr, "render of a parsed message failed: %s\n", e.msg);
    ENSURE(st == G4_OK);
    free(out);
    json_decref(conv);
    g4_chat_parser_free(whole);
    g4_chat_parser_free(streamed);

    char *name = NULL;
    json_t *args = NULL;
    if (g4_chat_parse_tool_call((const char *)d, n, &name, &args, &e) == G4_OK) {
        ENSURE(name && json_is_object(args));
        char *js = g4_chat_json_dump(args, NULL);
        ENSURE(js);
        json_t *back = json_loads(js, JSON_ALLOW_NUL, NULL); /* the dump is JSON jansson reads back */
        ENSURE(back && json_is_object(back));
        json_decref(back);
        free(js);
    }
    free(name);
    json_decref(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned opt = data[0];
    fuzz_render(data + 1, size - 1, opt);
    fuzz_parse(data + 1, size - 1, opt);
    return 0;
}
