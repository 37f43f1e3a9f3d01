/* g4 run / g4 chat: talk to a model in Gemma 4's chat format, streaming the answer. */
#include "chat/chat.h"
#include "chat/conv.h"
#include "cli.h"
#include "store/store.h"
#include "g4.h"
#include "generate/generate.h"
#include "quant/types.h"
#include "sampler/sampler.h"
#include "util/util.h"
#include "util/wfile.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *usage_run =
    "usage: g4 run MODEL [PROMPT] [options]\n"
    "       g4 chat MODEL [options]\n"
    "\n"
    "run answers one prompt (the argument, or standard input) and streams the answer to stdout; without a\n"
    "prompt on a terminal it starts a chat. chat is an interactive conversation (type /help there).\n"
    "\n"
    "  --system TEXT         system prompt\n"
    "  --think on|off        thinking mode (default off); thinking is shown dimmed, apart from the answer\n"
    "  --hide-thinking       do not show the thinking\n"
    "  --raw                 run only: no chat format, the prompt is fed as plain text after BOS\n"
    "  -n, --max-tokens N    stop after N tokens (default: end of turn or full context)\n"
    "  --temperature T       sampling temperature (default 1.0 or the model's; 0 = greedy)\n"
    "  --top-k K  --top-p P  --min-p P\n"
    "  --repeat-penalty R  --presence-penalty P  --frequency-penalty F  --repeat-last-n N\n"
    "  --seed N              random seed (default: from the clock; set it to reproduce an answer)\n"
    "  --stop TEXT           stop when TEXT appears (repeatable)\n"
    "  --ctx N               context length in tokens (default 4096, or the model's num_ctx)\n"
    "  --models DIR          the model store for MODEL names (default $G4_MODELS, else\n"
    "                        ~/.local/share/g4/models; see docs/models.md)\n"
    "  --kv SPEC             KV cache types: f16 (default), f32, or q8 / tq4 / tq3 / tq2 on the\n"
    "                        full-attention layers (k=TYPE,v=TYPE; layers=all; see g4 bench --help)\n"
    "  --threads N           worker threads (default: one per CPU)\n"
    "  --overflow ask|truncate|stop\n"
    "                        when the conversation outgrows the context: ask (default on a terminal),\n"
    "                        drop the oldest turns, or stop with a message (default otherwise)\n"
    "  --flavour small|large chat format flavour when the model file does not say (default small)\n"
    "  -v, --verbose         timings: prompt and generation tokens/s, time to first token\n";

static const char *chat_help =
    "commands:\n"
    "  /set temperature|top_k|top_p|min_p|repeat_penalty|presence_penalty|frequency_penalty|\n"
    "       repeat_last_n|seed|num_predict VALUE     change a sampling parameter\n"
    "  /set system TEXT     /system TEXT      set the system prompt (clears nothing else)\n"
    "  /set think on|off    /think on|off     thinking mode\n"
    "  /set verbose on|off                    timings after each answer\n"
    "  /show                                  current settings\n"
    "  /clear                                 forget the conversation (keeps the system prompt)\n"
    "  /save FILE   /load FILE                conversation and settings as JSON (/load takes the file's\n"
    "                                         messages, system prompt, thinking mode and parameters)\n"
    "  /bye                                   leave (or Ctrl-D)\n"
    "  \"\"\"                                    begin / end a multi-line message\n"
    "On a terminal: line editing and history (arrows, Ctrl-R; ~/.editrc). Ctrl-C stops the answer being\n"
    "written, or drops the line being typed; Ctrl-D leaves.\n";

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}
static int check_interrupted(void *user) {
    (void)user;
    return g_interrupted != 0;
}

typedef enum { OVERFLOW_ASK, OVERFLOW_TRUNCATE, OVERFLOW_STOP } overflow_policy;

typedef struct session {
    const char *model_path;
    g4_model *model;
    const g4_vocab *vocab;
    g4_ctx *ctx;
    g4_sampler *sampler;
    g4_sampler_params sp;
    g4_chat_flavour flavour;
    g4_conv *conv;        /* the conversation: system prompt, messages (src/chat/conv.h) */
    char *system;         /* the system prompt given before the conversation exists (flags, store) */
    int think, hide_thinking, verbose, raw, max_tokens;
    overflow_policy overflow;
    const char **stop;
    int n_stop;
    int tty_out, tty_in;
    cli_input *in;        /* the user's lines (line editing on a terminal) */
    int werr;             /* errno of the first failed write of the answer to stdout (0: none) */
} session;

/* the answer on stdout; 0 (and s->werr set) once a write failed: generation then stops */
static int emit(session *s, const char *p, size_t n) {
    if (s->werr) return 0;
    if (n && fwrite(p, 1, n, stdout) != n) s->werr = errno ? errno : EIO;
    return !s->werr;
}
static int emit_s(session *s, const char *p) { return emit(s, p, strlen(p)); }
static int emit_flush(session *s) {
    if (!s->werr && (fflush(stdout) != 0 || ferror(stdout))) s->werr = errno ? errno : EIO;
    return !s->werr;
}
/* after the answer: the failure reported once, the exit status */
static int report_write(session *s) {
    if (!s->werr) emit_flush(s);
    if (!s->werr) return 0;
    cli_stdout_fail("the answer", s->werr); /* once */
    return 1;
}

/* ---- printing the model's output ---- */

typedef struct printer {
    session *s;
    g4_chat_parser *parser;
    size_t shown_think, shown_answer;
    int in_think_shown; /* thinking header printed */
    int any_answer;
} printer;

static void show_delta(printer *pr) {
    session *s = pr->s;
    size_t tl, al;
    const char *th = g4_chat_parser_thinking(pr->parser, &tl);
    const char *an = g4_chat_parser_answer(pr->parser, &al);
    if (tl > pr->shown_think && !s->hide_thinking && (s->tty_out || s->verbose)) {
        if (!pr->in_think_shown) {
            emit_s(s, s->tty_out ? "\033[2mThinking...\n" : "Thinking...\n");
            pr->in_think_shown = 1;
        } else if (s->tty_out) {
            emit_s(s, "\033[2m");
        }
        emit(s, th + pr->shown_think, tl - pr->shown_think);
        if (s->tty_out) emit_s(s, "\033[0m");
    }
    pr->shown_think = tl;
    if (al > pr->shown_answer) {
        if (pr->in_think_shown && !pr->any_answer) emit_s(s, s->tty_out ? "\033[2m\n...done thinking.\033[0m\n\n" : "\n...done thinking.\n\n");
        pr->any_answer = 1;
        emit(s, an + pr->shown_answer, al - pr->shown_answer);
    }
    pr->shown_answer = al;
    emit_flush(s);
}

/* the text callbacks: "stop" on Ctrl-C and when writing the answer failed (a closed pipe, a full disk) */
static int on_chat_text(void *user, const char *text, size_t len) {
    printer *pr = user;
    if (g4_chat_parser_feed(pr->parser, text, len, NULL)) return 1;
    show_delta(pr);
    return g_interrupted != 0 || pr->s->werr != 0;
}

static int on_raw_text(void *user, const char *text, size_t len) {
    session *s = user;
    emit(s, text, len);
    emit_flush(s);
    return g_interrupted != 0 || s->werr != 0;
}

static void print_stats(const g4_gen_stats *st) {
    int n_eval = st->n_prompt - st->n_prompt_cached;
    fprintf(stderr, "\n[prompt: %d tokens (%d cached), %.1f tok/s | generation: %d tokens, %.1f tok/s | first token after %.2f s | stop: %s | %s kernels]\n",
            st->n_prompt, st->n_prompt_cached, st->t_prompt > 0 ? n_eval / st->t_prompt : 0.0, st->n_gen,
            st->t_gen > 0 && st->n_gen > 1 ? (st->n_gen - 1) / st->t_gen : 0.0, st->t_first, g4_stop_reason_str(st->stop),
            g4_types_isa());
}

/* ---- the conversation ---- */

/* render + tokenize the conversation with the generation prompt (the library's conversation) */
static g4_status build_prompt(const session *s, int32_t **ids, size_t *n, int *in_thinking, g4_error *err) {
    g4_conv_set_thinking(s->conv, s->think);
    const int debug = getenv("G4_DEBUG_PROMPT") != NULL;
    char *text = NULL;
    size_t len = 0;
    g4_status rc = g4_conv_prompt(s->conv, s->vocab, debug ? &text : NULL, &len, ids, n, in_thinking, err);
    if (!rc && debug) fprintf(stderr, "[prompt]%.*s[/prompt]\n", (int)len, text);
    free(text);
    return rc;
}

static int n_messages(const session *s) { return (int)json_array_size(g4_conv_messages(s->conv)); }

/* Make the conversation fit: returns 1 if it fits (maybe after truncating), 0 if the user's last
 * message was withdrawn. */
static int fit_context(session *s, int32_t **ids, size_t *n, int *in_thinking) {
    g4_error err = {0};
    const int n_ctx = g4_ctx_n_ctx(s->ctx);
    const int reserve = n_ctx / 8 < 1 ? 1 : n_ctx / 8 > 512 ? 512 : n_ctx / 8; /* room for the answer */
    overflow_policy pol = s->overflow; /* once the user chose, the choice holds for this message */
    for (;;) {
        free(*ids);
        *ids = NULL;
        if (build_prompt(s, ids, n, in_thinking, &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            g4_conv_pop(s->conv);
            return 0;
        }
        if ((int)*n + reserve <= n_ctx) return 1;
        fprintf(stderr, "\nThe conversation is %zu tokens; the context holds %d, with %d kept free for the answer.\n", *n,
                n_ctx, reserve);
        if (pol == OVERFLOW_ASK) {
            if (!s->tty_in || !s->in) pol = OVERFLOW_STOP;
            else {
                fprintf(stderr, "[t]runcate the oldest turns, or [s]top and withdraw your message? ");
                int intr;
                char *ans = cli_input_read(s->in, "", &intr);
                pol = ans && (ans[0] == 't' || ans[0] == 'T') ? OVERFLOW_TRUNCATE : OVERFLOW_STOP;
                free(ans);
                g_interrupted = 0;
            }
        }
        if (pol == OVERFLOW_TRUNCATE && g4_conv_drop_oldest(s->conv)) {
            fprintf(stderr, "(dropped the oldest turn)\n");
            continue;
        }
        if (pol == OVERFLOW_TRUNCATE)
            fprintf(stderr, "Your message alone does not fit; it was not sent (a longer context: --ctx).\n");
        else
            fprintf(stderr, "Your message was not sent (/clear starts over; a longer context: --ctx).\n");
        g4_conv_pop(s->conv);
        return 0;
    }
}

/* one model turn after the user's message (already appended) */
static int answer(session *s) {
    int32_t *ids = NULL;
    size_t n = 0;
    int in_thinking = 0;
    if (!fit_context(s, &ids, &n, &in_thinking)) {
        free(ids);
        return 1;
    }
    printer pr = {.s = s};
    g4_error err = {0};
    if (g4_chat_parser_new(&pr.parser, in_thinking, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        free(ids);
        return 1;
    }
    /* control tokens stay hidden; the chat-format markers the parser needs (<|channel>, <|tool_call>, ...) are
     * user-defined tokens and come through as text */
    g4_gen_params gp = {.max_tokens = s->max_tokens, .stop = s->stop, .n_stop = s->n_stop, .special = 0};
    g4_gen_stats st;
    g_interrupted = 0;
    g4_status rc = g4_generate(s->ctx, s->vocab, s->sampler, ids, (int)n, &gp, on_chat_text, &pr, &st, &err);
    free(ids);
    if (rc) {
        fprintf(stderr, "\ng4: %s\n", err.msg);
        g4_chat_parser_free(pr.parser);
        g4_conv_pop(s->conv);
        return 1;
    }
    if (st.stop == G4_STOP_CALLER && st.n_gen == 0) { /* stopped while reading the prompt */
        fprintf(stderr, "\n[stopped before the answer began; the message was withdrawn]\n");
        g4_chat_parser_free(pr.parser);
        g4_conv_pop(s->conv);
        return 1;
    }
    g4_chat_parser_finish(pr.parser, NULL);
    show_delta(&pr);
    for (int i = 0; i < g4_chat_parser_n_tool_calls(pr.parser) && !s->werr; i++) {
        const g4_chat_tool_call *tc = g4_chat_parser_tool_call(pr.parser, i);
        if (pr.any_answer || i) emit_s(s, "\n");
        emit_s(s, "[tool call] ");
        emit_s(s, tc->name);
        emit_s(s, "(");
        emit_s(s, tc->args_json);
        emit_s(s, ")");
    }
    emit_s(s, "\n");
    if (report_write(s)) { /* the answer before any note on stderr; a failed write ends the command */
        if (s->verbose) print_stats(&st);
        g4_chat_parser_free(pr.parser);
        g4_conv_pop(s->conv);
        return 1;
    }
    if (st.stop == G4_STOP_CALLER) fprintf(stderr, "[stopped]\n");
    else if (st.stop == G4_STOP_CONTEXT) fprintf(stderr, "[the context is full: the answer was cut off; /clear starts over]\n");
    else if (st.stop == G4_STOP_MAX) fprintf(stderr, "[token limit reached]\n");
    if (s->verbose) print_stats(&st);
    json_t *msg = NULL;
    if (g4_chat_parser_message(pr.parser, NULL, &msg, &err) == G4_OK) {
        if (g4_conv_add(s->conv, msg, &err)) fprintf(stderr, "g4: %s\n", err.msg);
        json_decref(msg);
    }
    g4_chat_parser_free(pr.parser);
    fflush(stdout);
    return 0;
}

/* append the user's message; 0 (with a message) when it is not valid UTF-8 */
static int add_user_message(session *s, const char *text, size_t len) {
    g4_error err = {0};
    if (g4_conv_add_user(s->conv, text, len, &err) == G4_OK) return 1;
    fprintf(stderr, "g4: %s; it was not sent\n", err.code == G4_ERR_ARG ? "the message is not valid UTF-8 text" : err.msg);
    return 0;
}

/* ---- settings ---- */

/* name = value into *p and *max_tokens (the caller's copies); 0 with a message on stderr when the name is
 * unknown or the value is not a number of the parameter's kind. The ranges are the library's
 * (g4_sampler_params_check, g4_gen_params_check), checked by the callers on the whole set. */
static int parse_param(const char *name, const char *val, g4_sampler_params *p, int *max_tokens) {
    static const struct {
        const char *name;
        int kind; /* 0 float, 1 int, 2 seed (unsigned 64-bit), 3 num_predict */
        size_t off;
    } tab[] = {
        {"temperature", 0, offsetof(g4_sampler_params, temperature)},
        {"top_k", 1, offsetof(g4_sampler_params, top_k)},
        {"top_p", 0, offsetof(g4_sampler_params, top_p)},
        {"min_p", 0, offsetof(g4_sampler_params, min_p)},
        {"repeat_penalty", 0, offsetof(g4_sampler_params, repeat_penalty)},
        {"presence_penalty", 0, offsetof(g4_sampler_params, presence_penalty)},
        {"frequency_penalty", 0, offsetof(g4_sampler_params, frequency_penalty)},
        {"repeat_last_n", 1, offsetof(g4_sampler_params, penalty_last_n)},
        {"penalty_last_n", 1, offsetof(g4_sampler_params, penalty_last_n)},
        {"seed", 2, offsetof(g4_sampler_params, seed)},
        {"num_predict", 3, 0},
        {"max_tokens", 3, 0},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcasecmp(name, tab[i].name)) continue;
        char *end;
        errno = 0;
        if (tab[i].kind == 0) {
            double d = strtod(val, &end);
            if (end == val || *end) break;
            float f = (float)d; /* out of float range: inf, refused by the check */
            memcpy((char *)p + tab[i].off, &f, sizeof f);
        } else if (tab[i].kind == 2) {
            unsigned long long u = strtoull(val, &end, 10);
            if (end == val || *end || errno || strchr(val, '-')) {
                fprintf(stderr, "seed must be a whole number from 0 to 18446744073709551615\n");
                return 0;
            }
            p->seed = (uint64_t)u;
        } else {
            long v = strtol(val, &end, 10);
            if (end == val || *end || errno || v < INT_MIN || v > INT_MAX) {
                fprintf(stderr, "%s must be a whole number\n", tab[i].name);
                return 0;
            }
            if (tab[i].kind == 3) *max_tokens = (int)v;
            else memcpy((char *)p + tab[i].off, &(int){(int)v}, sizeof(int));
        }
        return 1;
    }
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcasecmp(name, tab[i].name)) {
            fprintf(stderr, "%s must be a number, not '%s'\n", tab[i].name, val);
            return 0;
        }
    fprintf(stderr, "unknown parameter '%s' (see /help)\n", name);
    return 0;
}

/* the one range check of the library for a complete set (the sampler's and the generation's) */
static int params_valid(const session *s, const g4_sampler_params *p, int max_tokens, const char *where) {
    g4_error err = {0};
    g4_gen_params gp = {.max_tokens = max_tokens, .stop = s->stop, .n_stop = s->n_stop};
    if (g4_sampler_params_check(p, &err) == G4_OK && g4_gen_params_check(&gp, &err) == G4_OK) return 1;
    fprintf(stderr, "g4: %s%s\n", where ? where : "", err.msg);
    return 0;
}

/* the new settings in the sampler and the session; 0 (nothing changed) when refused */
static int apply_params(session *s, const g4_sampler_params *p, int max_tokens) {
    g4_error err = {0};
    if (!params_valid(s, p, max_tokens, NULL)) return 0;
    if (g4_sampler_set_params(s->sampler, p, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        return 0;
    }
    s->sp = *p;
    s->max_tokens = max_tokens;
    return 1;
}

static int set_param(session *s, const char *name, const char *val) {
    g4_sampler_params p = s->sp;
    int mt = s->max_tokens;
    return parse_param(name, val, &p, &mt) && apply_params(s, &p, mt);
}

static void show_settings(const session *s) {
    printf("model        %s\n", s->model_path);
    printf("format       Gemma 4 (%s), thinking %s\n", g4_chat_flavour_name(s->flavour), s->think ? "on" : "off");
    printf("system       %s\n", g4_conv_system(s->conv) ? g4_conv_system(s->conv) : "(none)");
    printf("temperature  %g   top_k %d   top_p %g   min_p %g\n", s->sp.temperature, s->sp.top_k, s->sp.top_p, s->sp.min_p);
    printf("penalties    repeat %g   presence %g   frequency %g   last_n %d\n", s->sp.repeat_penalty, s->sp.presence_penalty,
           s->sp.frequency_penalty, s->sp.penalty_last_n);
    printf("seed         %llu   num_predict %d\n", (unsigned long long)s->sp.seed, s->max_tokens);
    printf("context      %d tokens, %d in use, %zu messages\n", g4_ctx_n_ctx(s->ctx), g4_ctx_n_past(s->ctx), (size_t)n_messages(s));
}

/* format g4-chat/1: {"format", "model", "messages" (without the system prompt), "system" (absent: none),
 * "think", "params": {temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
 * frequency_penalty, repeat_last_n, num_predict, "seed": a decimal string (64 bits do not fit JSON's
 * signed integers; /load takes a number too)}} */
static int save_conversation(const session *s, const char *path) {
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->sp.seed);
    json_t *o = json_pack("{s:s,s:s,s:O,s:b,s:{s:f,s:i,s:f,s:f,s:f,s:f,s:f,s:i,s:s,s:i}}", "format", "g4-chat/1", "model",
                          s->model_path, "messages", (json_t *)g4_conv_messages(s->conv), "think", s->think, "params", "temperature",
                          (double)s->sp.temperature, "top_k", s->sp.top_k, "top_p", (double)s->sp.top_p, "min_p",
                          (double)s->sp.min_p, "repeat_penalty", (double)s->sp.repeat_penalty, "presence_penalty",
                          (double)s->sp.presence_penalty, "frequency_penalty", (double)s->sp.frequency_penalty,
                          "repeat_last_n", s->sp.penalty_last_n, "seed", seed, "num_predict", s->max_tokens);
    if (!o) {
        fprintf(stderr, "g4: cannot save to '%s': the settings do not make a JSON document\n", path);
        return 0;
    }
    if (g4_conv_system(s->conv) && json_object_set_new(o, "system", json_string(g4_conv_system(s->conv)))) {
        fprintf(stderr, "g4: cannot save to '%s': the system prompt is not valid UTF-8\n", path);
        json_decref(o);
        return 0;
    }
    /* util/wfile: never over a device or through a symlink; complete (fsync'ed) or not at all */
    g4_error err = {0};
    g4_wfile *wf;
    int ok = 0;
    if (g4_wfile_open(&wf, path, &err) == G4_OK) {
        if (json_dumpf(o, g4_wfile_stream(wf), JSON_INDENT(2) | JSON_ENSURE_ASCII) == 0 &&
            fputc('\n', g4_wfile_stream(wf)) != EOF) {
            ok = g4_wfile_commit(wf, &err) == G4_OK;
        } else {
            g4_fail(&err, G4_ERR_IO, "writing '%s' failed: %s", g4_wfile_tmp_path(wf), strerror(errno));
            g4_wfile_abort(wf);
        }
    }
    if (!ok) fprintf(stderr, "g4: cannot save to '%s': %s\n", path, err.msg);
    json_decref(o);
    return ok;
}

/* the file's conversation, system prompt, thinking mode and parameters, exactly: no system prompt in the
 * file, none after loading; nothing changes when anything in the file is refused */
static int load_conversation(session *s, const char *path) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        fprintf(stderr, "g4: cannot load '%s': %s (line %d, column %d)\n", path, je.text, je.line, je.column);
        return 0;
    }
    int ok = 0;
    json_t *msgs = json_object_get(o, "messages"), *copy = NULL;
    char *sys = NULL;
    if (!json_is_array(msgs)) {
        fprintf(stderr, "g4: '%s' has no \"messages\" list\n", path);
        goto out;
    }
    copy = json_deep_copy(msgs);
    if (!copy) {
        fprintf(stderr, "g4: out of memory\n");
        goto out;
    }
    /* the system prompt: a leading system message (with text content) or the "system" key, else none */
    json_t *first = json_array_get(copy, 0);
    const char *role = json_string_value(json_object_get(first, "role"));
    json_t *sk = json_object_get(o, "system");
    if (sk && !json_is_string(sk) && !json_is_null(sk)) {
        fprintf(stderr, "g4: '%s': \"system\" must be a string\n", path);
        goto out;
    }
    if (role && !strcmp(role, "system") && json_is_string(json_object_get(first, "content"))) {
        sys = strdup(json_string_value(json_object_get(first, "content")));
        json_array_remove(copy, 0);
        if (!sys) goto nomem;
    } else if (json_is_string(sk) && *json_string_value(sk)) {
        if (!(sys = strdup(json_string_value(sk)))) goto nomem;
    }
    /* a conversation g4 cannot render is refused here, not at the next message */
    {
        json_t *probe = json_deep_copy(copy);
        if (!probe) goto nomem;
        char *text = NULL;
        size_t len;
        g4_error err = {0};
        g4_chat_opts co = g4_chat_default_opts();
        co.flavour = s->flavour;
        g4_status rc = g4_chat_render(probe, NULL, &co, &text, &len, &err);
        free(text);
        json_decref(probe);
        if (rc) {
            fprintf(stderr, "g4: '%s': %s\n", path, err.msg);
            goto out;
        }
    }
    json_t *th = json_object_get(o, "think");
    if (th && !json_is_boolean(th)) {
        fprintf(stderr, "g4: '%s': \"think\" must be true or false\n", path);
        goto out;
    }
    /* parameters: those in the file replace the current ones, all checked before any is used */
    g4_sampler_params p = s->sp;
    int mt = s->max_tokens;
    json_t *params = json_object_get(o, "params");
    if (params && !json_is_object(params)) {
        fprintf(stderr, "g4: '%s': \"params\" must be an object\n", path);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(params, k, v) {
        char buf[64];
        if (json_is_integer(v) && !strcasecmp(k, "seed")) /* older files: the seed as a signed 64-bit integer */
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)(uint64_t)json_integer_value(v));
        else if (json_is_integer(v)) snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v)) snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        else if (json_is_string(v)) snprintf(buf, sizeof buf, "%s", json_string_value(v));
        else {
            fprintf(stderr, "g4: '%s': params.%s must be a number\n", path, k);
            goto out;
        }
        if (!parse_param(k, buf, &p, &mt)) {
            fprintf(stderr, "g4: '%s': params.%s refused; nothing was loaded\n", path, k);
            goto out;
        }
    }
    char where[1100];
    snprintf(where, sizeof where, "'%.1000s': ", path);
    if (!params_valid(s, &p, mt, where) || !apply_params(s, &p, mt)) goto out;
    {
        g4_error e = {0};
        if (g4_conv_set_messages(s->conv, copy, &e) || g4_conv_set_system(s->conv, sys, &e)) {
            fprintf(stderr, "g4: cannot load '%s': %s\n", path, e.msg);
            goto out;
        }
    }
    s->think = json_is_true(th);
    printf("loaded %zu messages from %s\n", (size_t)n_messages(s), path);
    ok = 1;
    goto out;
nomem:
    fprintf(stderr, "g4: out of memory\n");
out:
    free(sys);
    json_decref(copy);
    json_decref(o);
    return ok;
}

/* ---- input ---- */

static char *strip(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* one user message: a line, or """ ... """ over several lines, or lines ending in a backslash.
 * NULL at end of input. *interrupted is set when Ctrl-C arrived while waiting. */
static char *read_message(session *s, int *interrupted) {
    *interrupted = 0;
    char *line = cli_input_read(s->in, s->tty_in ? ">>> " : "", interrupted);
    if (!line) return NULL;
    char *t = strip(line);
    int triple = !strncmp(t, "\"\"\"", 3);
    size_t n = strlen(line);
    if (!triple && !(n && line[n - 1] == '\\')) return line;
    /* multi-line: the lines are joined with newlines; the opening """ and closing """ (or the trailing
     * backslashes) are not part of the message */
    size_t cap = n + 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        free(line);
        return NULL;
    }
    buf[0] = 0;
    char *cur = line;
    int first = 1, nparts = 0;
    for (;;) {
        char *part = cur;
        if (triple && first) part = strip(part) + 3;
        size_t pl = strlen(part);
        int end;
        if (triple) {
            end = pl >= 3 && !strcmp(part + pl - 3, "\"\"\"");
            if (end) pl -= 3;
        } else {
            end = !(pl && part[pl - 1] == '\\');
            if (!end) pl--;
        }
        /* an empty remainder on the opening or closing line is not a line of the message */
        int skip = triple && pl == 0 && (first || end);
        if (!skip) {
            if (len + pl + 2 > cap) {
                cap = (len + pl + 2) * 2;
                char *b = realloc(buf, cap);
                if (!b) {
                    free(cur);
                    free(buf);
                    return NULL;
                }
                buf = b;
            }
            if (nparts++) buf[len++] = '\n';
            memcpy(buf + len, part, pl);
            len += pl;
            buf[len] = 0;
        }
        free(cur);
        cur = NULL;
        if (end) break;
        first = 0;
        cur = cli_input_read(s->in, s->tty_in ? "... " : "", interrupted);
        if (!cur && *interrupted) { /* Ctrl-C: the whole message is abandoned */
            free(buf);
            return NULL;
        }
        if (!cur) break; /* end of input: what was typed is the message */
    }
    return buf;
}

static int on_off(const char *v, int *out) {
    if (!strcasecmp(v, "on") || !strcmp(v, "1") || !strcasecmp(v, "true")) *out = 1;
    else if (!strcasecmp(v, "off") || !strcmp(v, "0") || !strcasecmp(v, "false")) *out = 0;
    else {
        fprintf(stderr, "say on or off\n");
        return 0;
    }
    return 1;
}

static int valid_utf8(const char *t) {
    json_t *j = json_string(t);
    json_decref(j);
    return j != NULL;
}

/* returns 0 to leave */
static int command(session *s, char *line) {
    char *cmd = strip(line);
    char *arg = cmd;
    while (*arg && *arg != ' ' && *arg != '\t') arg++;
    if (*arg) *arg++ = 0;
    arg = strip(arg);
    if (!strcmp(cmd, "/bye") || !strcmp(cmd, "/exit") || !strcmp(cmd, "/quit")) return 0;
    if (!strcmp(cmd, "/help") || !strcmp(cmd, "/?")) fputs(chat_help, stdout);
    else if (!strcmp(cmd, "/show")) show_settings(s);
    else if (!strcmp(cmd, "/clear")) {
        g4_conv_clear(s->conv);
        printf("(conversation cleared)\n");
    } else if (!strcmp(cmd, "/system") || (!strcmp(cmd, "/set") && !strncmp(arg, "system", 6) && (arg[6] == ' ' || !arg[6]))) {
        const char *text = !strcmp(cmd, "/system") ? arg : strip(arg + 6);
        if (!valid_utf8(text)) fprintf(stderr, "g4: the system prompt is not valid UTF-8 text; it was not set\n");
        else {
            g4_conv_set_system(s->conv, text, NULL);
            printf(*text ? "(system prompt set)\n" : "(system prompt removed)\n");
        }
    } else if (!strcmp(cmd, "/think") || (!strcmp(cmd, "/set") && !strncmp(arg, "think", 5) && (arg[5] == ' ' || !arg[5]))) {
        const char *v = !strcmp(cmd, "/think") ? arg : strip(arg + 5);
        if (on_off(v, &s->think)) printf("(thinking %s)\n", s->think ? "on" : "off");
    } else if (!strcmp(cmd, "/set") && !strncmp(arg, "verbose", 7) && (arg[7] == ' ' || !arg[7])) {
        on_off(strip(arg + 7), &s->verbose);
    } else if (!strcmp(cmd, "/set")) {
        char *name = arg, *val = arg;
        while (*val && *val != ' ' && *val != '\t') val++;
        if (*val) *val++ = 0;
        val = strip(val);
        if (!*name || !*val) fprintf(stderr, "usage: /set PARAMETER VALUE (see /help)\n");
        else if (set_param(s, name, val)) printf("(%s = %s)\n", name, val);
    } else if (!strcmp(cmd, "/save")) {
        if (!*arg) fprintf(stderr, "usage: /save FILE\n");
        else if (save_conversation(s, arg)) printf("(saved %zu messages to %s)\n", (size_t)n_messages(s), arg);
    } else if (!strcmp(cmd, "/load")) {
        if (!*arg) fprintf(stderr, "usage: /load FILE\n");
        else load_conversation(s, arg);
    } else {
        fprintf(stderr, "unknown command '%s' (/help lists them)\n", cmd);
    }
    return 1;
}

/* the exit status: 0, or 1 when writing to stdout failed (nobody reads the answers any more) */
static int chat_loop(session *s) {
    if (s->tty_in) printf("g4 chat with %s. /help for commands, /bye to leave.\n", s->model_path);
    for (;;) {
        if (s->werr || !cli_stdout_flush(NULL)) return 1;
        int intr;
        char *msg = read_message(s, &intr);
        if (!msg) {
            if (intr) { /* Ctrl-C at the prompt: the line is dropped */
                printf("\n(Use /bye or Ctrl-D to leave)\n");
                continue;
            }
            if (s->tty_in) putchar('\n');
            return cli_stdout_flush(NULL) ? 0 : 1;
        }
        char *t = strip(msg);
        if (!*t) {
            free(msg);
            continue;
        }
        if (t[0] == '/' && strncmp(t, "///", 3)) {
            int go = command(s, t);
            free(msg);
            if (!go) return 0;
            continue;
        }
        int ok = add_user_message(s, msg, strlen(msg));
        free(msg);
        if (ok) answer(s);
    }
}

/* ---- set-up ---- */

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 4096 > cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void apply_overrides(g4_sampler_params *p, const g4_sampler_params *over, const int *set) {
    if (set[0]) p->temperature = over->temperature;
    if (set[1]) p->top_k = over->top_k;
    if (set[2]) p->top_p = over->top_p;
    if (set[3]) p->min_p = over->min_p;
    if (set[4]) p->repeat_penalty = over->repeat_penalty;
    if (set[5]) p->presence_penalty = over->presence_penalty;
    if (set[6]) p->frequency_penalty = over->frequency_penalty;
    if (set[7]) p->penalty_last_n = over->penalty_last_n;
}

static int run_main(int argc, char **argv, int is_chat) {
    session s = {0};
    const char *prompt = NULL, *flavour = NULL;
    long n_ctx = 4096, threads = 0, tmp;
    unsigned long long seed = 0;
    int seed_set = 0, think_set = 0, ctx_set = 0, max_set = 0;
    const char *models_dir = NULL;
    g4_ctx_params cp = g4_ctx_default_params();
    const char *stops[G4_GEN_MAX_STOP];
    g4_sampler_params over;
    int over_set[9] = {0};
    memset(&over, 0, sizeof over);
    s.max_tokens = -1;
    s.overflow = OVERFLOW_ASK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
#define FLT(opt, field, k)                                                                                          \
    else if (!strcmp(a, opt) && more) {                                                                             \
        char *e;                                                                                                    \
        double d = strtod(argv[++i], &e);                                                                           \
        if (e == argv[i] || *e) cli_die_usage(usage_run, "bad %s '%s'", opt, argv[i]);                             \
        over.field = (float)d;                                                                                      \
        over_set[k] = 1;                                                                                            \
    }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_run, stdout);
            return 0;
        } else if (!strcmp(a, "--system") && more) {
            if (!valid_utf8(argv[++i])) cli_die_usage(usage_run, "--system: not valid UTF-8 text");
            free(s.system);
            s.system = strdup(argv[i]);
        }
        else if (!strcmp(a, "--think") && more) {
            if (!on_off(argv[++i], &s.think)) cli_die_usage(usage_run, "--think takes on or off");
            think_set = 1;
        } else if (!strcmp(a, "--hide-thinking")) s.hide_thinking = 1;
        else if (!strcmp(a, "--raw")) s.raw = 1;
        else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && more) {
            if (!cli_parse_int(argv[++i], -1, 1 << 30, &tmp)) cli_die_usage(usage_run, "bad --max-tokens '%s'", argv[i]);
            s.max_tokens = (int)tmp;
            max_set = 1;
        }
        FLT("--temperature", temperature, 0)
        FLT("--temp", temperature, 0)
        FLT("--top-p", top_p, 2)
        FLT("--min-p", min_p, 3)
        FLT("--repeat-penalty", repeat_penalty, 4)
        FLT("--presence-penalty", presence_penalty, 5)
        FLT("--frequency-penalty", frequency_penalty, 6)
        else if (!strcmp(a, "--top-k") && more) { /* (the ranges: g4_sampler_params_check below) */
            if (!cli_parse_int(argv[++i], INT_MIN, INT_MAX, &tmp)) cli_die_usage(usage_run, "bad --top-k '%s'", argv[i]);
            over.top_k = (int)tmp;
            over_set[1] = 1;
        } else if (!strcmp(a, "--repeat-last-n") && more) {
            if (!cli_parse_int(argv[++i], INT_MIN, INT_MAX, &tmp)) cli_die_usage(usage_run, "bad --repeat-last-n '%s'", argv[i]);
            over.penalty_last_n = (int)tmp;
            over_set[7] = 1;
        } else if (!strcmp(a, "--seed") && more) {
            char *e;
            errno = 0;
            seed = strtoull(argv[++i], &e, 10);
            if (e == argv[i] || *e || errno || strchr(argv[i], '-'))
                cli_die_usage(usage_run, "bad --seed '%s' (a whole number from 0 to 18446744073709551615)", argv[i]);
            seed_set = 1;
        } else if (!strcmp(a, "--stop") && more) {
            if (s.n_stop == G4_GEN_MAX_STOP) cli_die_usage(usage_run, "too many --stop strings (at most %d)", G4_GEN_MAX_STOP);
            stops[s.n_stop++] = argv[++i];
        } else if (!strcmp(a, "--ctx") && more) {
            if (!cli_parse_int(argv[++i], 16, 1 << 24, &n_ctx)) cli_die_usage(usage_run, "bad --ctx '%s'", argv[i]);
            ctx_set = 1;
        } else if (!strcmp(a, "--threads") && more) {
            if (!cli_parse_int(argv[++i], 1, 256, &threads)) cli_die_usage(usage_run, "bad --threads '%s'", argv[i]);
        } else if (!strcmp(a, "--kv") && more) cli_kv_option(usage_run, argv[++i], &cp);
        else if (!strcmp(a, "--overflow") && more) {
            const char *t = argv[++i];
            if (!strcmp(t, "ask")) s.overflow = OVERFLOW_ASK;
            else if (!strcmp(t, "truncate")) s.overflow = OVERFLOW_TRUNCATE;
            else if (!strcmp(t, "stop")) s.overflow = OVERFLOW_STOP;
            else cli_die_usage(usage_run, "--overflow takes ask, truncate or stop");
        } else if (!strcmp(a, "--flavour") && more) flavour = argv[++i];
        else if (!strcmp(a, "--models") && more) models_dir = argv[++i];
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) s.verbose = 1;
        else if (a[0] == '-' && a[1]) cli_die_usage(usage_run, "unknown or incomplete option '%s'", a);
        else if (!s.model_path) s.model_path = a;
        else if (!prompt && !is_chat) prompt = a;
        else cli_die_usage(usage_run, "unexpected argument '%s'", a);
#undef FLT
    }
    (void)think_set;
    if (!s.model_path) cli_die_usage(usage_run, "no model given");
    /* a GGUF path or a stored model's name (docs/models.md); its stored settings come before the flags */
    g4_store_model *sm = cli_resolve_model(s.model_path, models_dir);
    if (!sm) {
        free(s.system);
        return 1;
    }
    long long sv;
    if (!ctx_set && cli_model_int(sm, "num_ctx", &sv)) n_ctx = (long)sv;
    if (!max_set && cli_model_int(sm, "num_predict", &sv)) s.max_tokens = sv < 0 ? -1 : (int)sv;
    if (!seed_set && cli_model_int(sm, "seed", &sv) && sv >= 0) seed = (unsigned long long)sv, seed_set = 1;
    if (!s.system && sm->system && !(s.system = strdup(sm->system))) {
        g4_store_model_free(sm);
        return 1;
    }
    s.n_stop += cli_model_stops(sm, stops + s.n_stop, G4_GEN_MAX_STOP - s.n_stop);
    s.stop = stops;
    { /* the values given, checked by the library before anything is loaded (the model's own are checked too) */
        g4_sampler_params p = g4_sampler_default_params();
        apply_overrides(&p, &over, over_set);
        g4_error e = {0};
        g4_gen_params gp = {.max_tokens = s.max_tokens, .stop = s.stop, .n_stop = s.n_stop};
        if (g4_sampler_params_check(&p, &e) || g4_gen_params_check(&gp, &e)) cli_die_usage(usage_run, "%s", e.msg);
    }
    s.tty_in = isatty(0);
    s.tty_out = isatty(1);
    g4_error err = {0};
    int rc = 1;
    char *stdin_text = NULL;
    if (g4_model_open(&s.model, sm->path, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        free(s.system);
        g4_store_model_free(sm);
        return 1;
    }
    s.vocab = g4_model_vocab(s.model);
    if (!s.vocab) {
        fprintf(stderr, "g4: %s has no tokenizer (tokenizer.ggml.* metadata)\n", s.model_path);
        goto done;
    }
    /* chat flavour: --flavour, else from the template, else by model size (the library decides as the server does) */
    if (flavour) {
        if (g4_chat_flavour_parse(flavour, &s.flavour, &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
    } else {
        int from_template;
        s.flavour = g4_chat_flavour_of_model(s.model, &from_template);
        if (!from_template && s.verbose)
            fprintf(stderr, "(no Gemma 4 chat template in the file: using the %s-model format)\n", g4_chat_flavour_name(s.flavour));
    }
    s.sp = g4_sampler_model_params(s.model);
    cli_model_sampling(sm, &s.sp); /* the file's defaults < the stored parameters < the flags */
    apply_overrides(&s.sp, &over, over_set);
    s.sp.seed = seed_set ? (uint64_t)seed : (uint64_t)(g4_time_s() * 1e9) ^ (uint64_t)getpid();
    if (g4_sampler_new(&s.sampler, &s.sp, g4_vocab_n_tokens(s.vocab), &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        goto done;
    }
    cp.n_ctx = (int)n_ctx;
    cp.n_threads = (int)threads;
    if (g4_ctx_new(&s.ctx, s.model, &cp, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        goto done;
    }
    g4_ctx_set_abort(s.ctx, check_interrupted, NULL);
    if (g4_conv_new(&s.conv, s.flavour, &err) || g4_conv_set_system(s.conv, s.system, &err) ||
        (sm->messages && g4_conv_set_messages(s.conv, sm->messages, &err))) { /* MESSAGE lines: few-shot history */
        fprintf(stderr, "g4: %s\n", err.msg);
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C interrupts a read at the prompt */
    sigaction(SIGINT, &sa, NULL);

    if (is_chat || (!prompt && s.tty_in)) {
        if (s.raw) fprintf(stderr, "g4: --raw applies to single prompts only; chatting in the chat format\n");
        s.in = cli_input_new("g4", s.tty_in, &g_interrupted);
        if (!s.in) {
            fprintf(stderr, "g4: out of memory\n");
            goto done;
        }
        rc = chat_loop(&s);
        goto done;
    }
    size_t plen;
    if (!prompt) {
        stdin_text = read_all(stdin, &plen);
        if (!stdin_text) {
            fprintf(stderr, "g4: cannot read the prompt from standard input\n");
            goto done;
        }
        prompt = stdin_text;
    } else {
        plen = strlen(prompt);
    }
    if (s.raw) {
        int32_t *ids = NULL;
        size_t n;
        if (g4_tokenize_alloc(s.vocab, prompt, plen, 1, 0, &ids, &n, &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
        g4_gen_params gp = {.max_tokens = s.max_tokens, .stop = s.stop, .n_stop = s.n_stop, .special = 0};
        g4_gen_stats st;
        g4_status r = g4_generate(s.ctx, s.vocab, s.sampler, ids, (int)n, &gp, on_raw_text, &s, &st, &err);
        free(ids);
        if (r) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
        emit_s(&s, "\n");
        if (s.verbose) print_stats(&st);
        if (report_write(&s)) goto done; /* stopped at the first failed write */
        rc = st.stop == G4_STOP_CALLER ? 130 : 0;
        goto done;
    }
    s.overflow = OVERFLOW_STOP;
    if (!add_user_message(&s, prompt, plen)) goto done;
    const int before = n_messages(&s);
    answer(&s);
    /* the message was withdrawn (did not fit) or generation failed: the assistant message is missing */
    rc = n_messages(&s) > before ? (g_interrupted ? 130 : 0) : 1;
done:
    if (report_write(&s) || !cli_stdout_flush("the answer")) rc = 1;
    cli_input_free(s.in);
    free(stdin_text);
    g4_conv_free(s.conv);
    g4_ctx_free(s.ctx);
    g4_sampler_free(s.sampler);
    g4_model_free(s.model);
    g4_store_model_free(sm);
    free(s.system);
    return rc;
}

int g4_cmd_run(int argc, char **argv) { return run_main(argc, argv, 0); }
int g4_cmd_chat(int argc, char **argv) { return run_main(argc, argv, 1); }
