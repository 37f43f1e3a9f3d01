/* libFuzzer target: g4 serve's request layer (src/serve/request.h) on arbitrary bodies. The first byte picks the API
 * (Ollama generate / chat, OpenAI chat / completions), the rest is the body: parsed and checked (options, messages
 * converted to the renderer's shape, structured output, keep_alive), the settings merged over a model's defaults,
 * the conversation rendered, and a made-up answer (the body's bytes as text, thinking, a tool call parsed from them,
 * logprobs) formatted in every API's shape: nothing may crash, leak or trip the sanitizers.
 *   make BUILD=build fuzz-request   (FUZZ_SECONDS=60)     seeds: fuzz/corpus-request */
#include "chat/chat.h"
#include "serve/request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const g4_api api = (g4_api)(data[0] % 4);
    const char *body = (const char *)data + 1;
    const size_t len = size - 1;
    g4_sreq r;
    g4_error err;
    if (g4_sreq_parse(api, body, len, &r, &err) == G4_OK) {
        g4_sampler_params base = g4_sampler_default_params(), sp;
        const char *stops[64];
        int max_tokens, n_stop, n_ctx, clamped;
        json_t *mp = json_pack("{s:f,s:i,s:[s]}", "temperature", 0.7, "num_ctx", 2048, "stop", "END");
        (void)g4_sreq_settings(&r, &base, mp, 1024, 42, &sp, &max_tokens, stops, 64, &n_stop, &n_ctx, &clamped, &err);
        json_decref(mp);
        if (r.messages) {
            g4_chat_opts o = g4_chat_default_opts();
            o.enable_thinking = r.think > 0;
            char *text = NULL;
            size_t tl = 0;
            if (g4_chat_render(r.messages, r.tools, &o, &text, &tl, &err) == G4_OK) (void)g4_chat_prompt_in_thinking(text, tl);
            free(text);
        }
        /* a made-up answer from the body's bytes */
        g4_choice c;
        if (g4_choice_init(&c, &err) == G4_OK) {
            g4_job_delta d;
            memset(&d, 0, sizeof d);
            const size_t half = len / 2;
            d.text = (char *)body;
            d.text_len = len;
            d.answer = (char *)body;
            d.answer_len = half;
            d.thinking = (char *)body + half;
            d.thinking_len = len - half;
            char *name = NULL;
            json_t *args = NULL;
            if (g4_chat_parse_tool_call(body, len, &name, &args, &err) == G4_OK) {
                d.tool_calls = json_pack("[{s:s,s:O}]", "name", name, "arguments", args);
                json_decref(args);
                free(name);
            }
            g4_token_logprob lp[2];
            memset(lp, 0, sizeof lp);
            lp[0].token = len ? (int32_t)data[1] : 0;
            lp[0].logprob = -0.5f;
            lp[0].n_top = 1;
            lp[0].top_id[0] = 7;
            lp[0].top_logprob[0] = -0.25f;
            lp[1].logprob = -1e30f;
            d.logprobs = lp;
            d.n_logprobs = 2;
            d.done = 1;
            d.result.n_prompt = 10;
            d.result.n_gen = (int)(len % 100);
            d.result.stop = (g4_stop_reason)(len % 6);
            d.result.t_gen = 0.25;
            if (g4_choice_add(&c, &d, NULL, &err) == G4_OK) {
                json_t *a = g4_ollama_answer(&r, r.model, 1.7e9 + (double)len, &c, 1.5, 0.25);
                char *t = a ? json_dumps(a, JSON_COMPACT) : NULL;
                free(t);
                json_decref(a);
                g4_choice *cs[1] = {&c};
                a = g4_oai_answer(&r, "chatcmpl-x", r.model, 1700000000, cs, 1);
                t = a ? json_dumps(a, JSON_COMPACT) : NULL;
                free(t);
                json_decref(a);
                json_decref(g4_ollama_tool_calls(c.tool_calls, 0, NULL));
                json_decref(g4_oai_tool_calls(c.tool_calls, 1, "call_", 1));
            }
            json_decref(d.tool_calls);
            g4_choice_free(&c);
        }
        json_decref(g4_ollama_error(body[0] ? "x" : "y"));
    }
    g4_sreq_free(&r);
    /* durations */
    char dur[64];
    size_t n = len < sizeof dur - 1 ? len : sizeof dur - 1;
    memcpy(dur, body, n);
    dur[n] = 0;
    double sec;
    (void)g4_parse_duration(dur, &sec, NULL);
    return 0;
}
