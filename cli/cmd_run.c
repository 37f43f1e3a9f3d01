/* g4 run / g4 chat: talk to a model in Gemma 4's chat format, streaming the answer. */
#include "chat/chat.h"
#include "cli.h"
#include "g4.h"
#include "generate/generate.h"
#include "quant/types.h"
#include "sampler/sampler.h"
#include "util/util.h"

#include <errno.h>
#include <signal.h>
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
    "  --ctx N               context length in tokens (default 4096)\n"
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
    "  /save FILE   /load FILE                conversation and settings as JSON\n"
    "  /bye                                   leave (or Ctrl-D)\n"
    "  \"\"\"                                    begin / end a multi-line message\n"
    "Ctrl-C stops the answer being written.\n";

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
    json_t *messages;     /* conversation without the system prompt */
    char *system;         /* NULL: none */
    int think, hide_thinking, verbose, raw, max_tokens;
    overflow_policy overflow;
    const char **stop;
    int n_stop;
    int tty_out, tty_in;
} session;

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
            fputs(s->tty_out ? "\033[2mThinking...\n" : "Thinking...\n", stdout);
            pr->in_think_shown = 1;
        } else if (s->tty_out) {
            fputs("\033[2m", stdout);
        }
        fwrite(th + pr->shown_think, 1, tl - pr->shown_think, stdout);
        if (s->tty_out) fputs("\033[0m", stdout);
    }
    pr->shown_think = tl;
    if (al > pr->shown_answer) {
        if (pr->in_think_shown && !pr->any_answer) fputs(s->tty_out ? "\033[2m\n...done thinking.\033[0m\n\n" : "\n...done thinking.\n\n", stdout);
        pr->any_answer = 1;
        fwrite(an + pr->shown_answer, 1, al - pr->shown_answer, stdout);
    }
    pr->shown_answer = al;
    fflush(stdout);
}

static int on_chat_text(void *user, const char *text, size_t len) {
    printer *pr = user;
    if (g4_chat_parser_feed(pr->parser, text, len, NULL)) return 1;
    show_delta(pr);
    return g_interrupted != 0;
}

static int on_raw_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return g_interrupted != 0;
}

static void print_stats(const g4_gen_stats *st) {
    int n_eval = st->n_prompt - st->n_prompt_cached;
    fprintf(stderr, "\n[prompt: %d tokens (%d cached), %.1f tok/s | generation: %d tokens, %.1f tok/s | first token after %.2f s | stop: %s | %s kernels]\n",
            st->n_prompt, st->n_prompt_cached, st->t_prompt > 0 ? n_eval / st->t_prompt : 0.0, st->n_gen,
            st->t_gen > 0 && st->n_gen > 1 ? (st->n_gen - 1) / st->t_gen : 0.0, st->t_first, g4_stop_reason_str(st->stop),
            g4_types_isa());
}

/* ---- the conversation ---- */

/* messages with the system prompt in front (new reference) */
static json_t *full_conversation(const session *s) {
    json_t *all = json_array();
    if (!all) return NULL;
    if (s->system && *s->system) json_array_append_new(all, json_pack("{s:s,s:s}", "role", "system", "content", s->system));
    json_array_extend(all, s->messages);
    return all;
}

/* render + tokenize the conversation with the generation prompt */
static g4_status build_prompt(const session *s, int32_t **ids, size_t *n, int *in_thinking, g4_error *err) {
    json_t *all = full_conversation(s);
    if (!all) return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    g4_chat_opts o = g4_chat_default_opts();
    o.flavour = s->flavour;
    o.enable_thinking = s->think;
    o.add_generation_prompt = 1;
    char *text = NULL;
    size_t len = 0;
    g4_status rc = g4_chat_render(all, NULL, &o, &text, &len, err);
    json_decref(all);
    if (rc) return rc;
    *in_thinking = g4_chat_prompt_in_thinking(text, len);
    if (getenv("G4_DEBUG_PROMPT")) fprintf(stderr, "[prompt]%.*s[/prompt]\n", (int)len, text);
    rc = g4_tokenize_alloc(s->vocab, text, len, 0, 1, ids, n, err);
    free(text);
    return rc;
}

/* drop the oldest exchange (a user message and everything up to the next user message) */
static int drop_oldest_turn(session *s) {
    size_t n = json_array_size(s->messages), end = 1;
    if (n < 2) return 0;
    while (end < n) {
        const char *role = json_string_value(json_object_get(json_array_get(s->messages, end), "role"));
        if (role && !strcmp(role, "user")) break;
        end++;
    }
    if (end >= n) return 0; /* only the latest exchange is left */
    for (size_t i = 0; i < end; i++) json_array_remove(s->messages, 0);
    return 1;
}

static char *read_line(FILE *in); /* below */

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
            json_array_remove(s->messages, json_array_size(s->messages) - 1);
            return 0;
        }
        if ((int)*n + reserve <= n_ctx) return 1;
        fprintf(stderr, "\nThe conversation is %zu tokens; the context holds %d, with %d kept free for the answer.\n", *n,
                n_ctx, reserve);
        if (pol == OVERFLOW_ASK) {
            if (!s->tty_in) pol = OVERFLOW_STOP;
            else {
                fprintf(stderr, "[t]runcate the oldest turns, or [s]top and withdraw your message? ");
                char *ans = read_line(stdin);
                pol = ans && (ans[0] == 't' || ans[0] == 'T') ? OVERFLOW_TRUNCATE : OVERFLOW_STOP;
                free(ans);
                g_interrupted = 0;
            }
        }
        if (pol == OVERFLOW_TRUNCATE && drop_oldest_turn(s)) {
            fprintf(stderr, "(dropped the oldest turn)\n");
            continue;
        }
        if (pol == OVERFLOW_TRUNCATE)
            fprintf(stderr, "Your message alone does not fit; it was not sent (a longer context: --ctx).\n");
        else
            fprintf(stderr, "Your message was not sent (/clear starts over; a longer context: --ctx).\n");
        json_array_remove(s->messages, json_array_size(s->messages) - 1);
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
        json_array_remove(s->messages, json_array_size(s->messages) - 1);
        return 1;
    }
    if (st.stop == G4_STOP_CALLER && st.n_gen == 0) { /* stopped while reading the prompt */
        fprintf(stderr, "\n[stopped before the answer began; the message was withdrawn]\n");
        g4_chat_parser_free(pr.parser);
        json_array_remove(s->messages, json_array_size(s->messages) - 1);
        return 1;
    }
    g4_chat_parser_finish(pr.parser, NULL);
    show_delta(&pr);
    for (int i = 0; i < g4_chat_parser_n_tool_calls(pr.parser); i++) {
        const g4_chat_tool_call *tc = g4_chat_parser_tool_call(pr.parser, i);
        printf("%s[tool call] %s(%s)", pr.any_answer || i ? "\n" : "", tc->name, tc->args_json);
    }
    putchar('\n');
    fflush(stdout); /* the answer before any note on stderr */
    if (st.stop == G4_STOP_CALLER) fprintf(stderr, "[stopped]\n");
    else if (st.stop == G4_STOP_CONTEXT) fprintf(stderr, "[the context is full: the answer was cut off; /clear starts over]\n");
    else if (st.stop == G4_STOP_MAX) fprintf(stderr, "[token limit reached]\n");
    if (s->verbose) print_stats(&st);
    json_t *msg = NULL;
    if (g4_chat_parser_message(pr.parser, NULL, &msg, &err) == G4_OK) json_array_append_new(s->messages, msg);
    g4_chat_parser_free(pr.parser);
    fflush(stdout);
    return 0;
}

/* append the user's message; 0 (with a message) when it is not valid UTF-8 */
static int add_user_message(session *s, const char *text, size_t len) {
    json_t *m = json_pack("{s:s,s:s%}", "role", "user", "content", text, len);
    if (!m) {
        fprintf(stderr, "g4: the message is not valid UTF-8 text; it was not sent\n");
        return 0;
    }
    if (json_array_append_new(s->messages, m)) {
        fprintf(stderr, "g4: out of memory\n");
        return 0;
    }
    return 1;
}

/* ---- settings ---- */

static int set_param(session *s, const char *name, const char *val) {
    char *end;
    double d = strtod(val, &end);
    int is_num = end != val && *end == 0;
    g4_sampler_params p = s->sp;
#define NUM(key, field, lo, hi, cast)                                                                         \
    if (!strcasecmp(name, key)) {                                                                             \
        if (!is_num || d < (lo) || d > (hi)) {                                                                \
            fprintf(stderr, "%s must be a number in [%g, %g]\n", key, (double)(lo), (double)(hi));          \
            return 0;                                                                                         \
        }                                                                                                     \
        field = (cast)d;                                                                                      \
        goto done;                                                                                            \
    }
    NUM("temperature", p.temperature, 0, 100, float)
    NUM("top_k", p.top_k, 0, 1000000, int)
    NUM("top_p", p.top_p, 0, 1, float)
    NUM("min_p", p.min_p, 0, 1, float)
    NUM("repeat_penalty", p.repeat_penalty, 0, 100, float)
    NUM("presence_penalty", p.presence_penalty, -100, 100, float)
    NUM("frequency_penalty", p.frequency_penalty, -100, 100, float)
    NUM("repeat_last_n", p.penalty_last_n, -1, 1000000, int)
    NUM("seed", p.seed, 0, 1.8e19, uint64_t)
    if (!strcasecmp(name, "num_predict") || !strcasecmp(name, "max_tokens")) {
        if (!is_num || d < -1 || d > 1e9) {
            fprintf(stderr, "num_predict must be a number (-1: no limit)\n");
            return 0;
        }
        s->max_tokens = (int)d;
        return 1;
    }
    fprintf(stderr, "unknown parameter '%s' (see /help)\n", name);
    return 0;
#undef NUM
done:
    s->sp = p;
    g4_sampler_set_params(s->sampler, &p);
    return 1;
}

static void show_settings(const session *s) {
    printf("model        %s\n", s->model_path);
    printf("format       Gemma 4 (%s), thinking %s\n", g4_chat_flavour_name(s->flavour), s->think ? "on" : "off");
    printf("system       %s\n", s->system && *s->system ? s->system : "(none)");
    printf("temperature  %g   top_k %d   top_p %g   min_p %g\n", s->sp.temperature, s->sp.top_k, s->sp.top_p, s->sp.min_p);
    printf("penalties    repeat %g   presence %g   frequency %g   last_n %d\n", s->sp.repeat_penalty, s->sp.presence_penalty,
           s->sp.frequency_penalty, s->sp.penalty_last_n);
    printf("seed         %llu   num_predict %d\n", (unsigned long long)s->sp.seed, s->max_tokens);
    printf("context      %d tokens, %d in use, %zu messages\n", g4_ctx_n_ctx(s->ctx), g4_ctx_n_past(s->ctx), json_array_size(s->messages));
}

static int save_conversation(const session *s, const char *path) {
    json_t *o = json_pack("{s:s,s:s,s:O,s:b,s:{s:f,s:i,s:f,s:f,s:f,s:f,s:f,s:i,s:I,s:i}}", "format", "g4-chat/1", "model",
                          s->model_path, "messages", s->messages, "think", s->think, "params", "temperature",
                          (double)s->sp.temperature, "top_k", s->sp.top_k, "top_p", (double)s->sp.top_p, "min_p",
                          (double)s->sp.min_p, "repeat_penalty", (double)s->sp.repeat_penalty, "presence_penalty",
                          (double)s->sp.presence_penalty, "frequency_penalty", (double)s->sp.frequency_penalty,
                          "repeat_last_n", s->sp.penalty_last_n, "seed", (json_int_t)s->sp.seed, "num_predict", s->max_tokens);
    if (!o) {
        fprintf(stderr, "g4: out of memory\n");
        return 0;
    }
    if (s->system) json_object_set_new(o, "system", json_string(s->system));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int ok = json_dump_file(o, tmp, JSON_INDENT(2) | JSON_ENSURE_ASCII) == 0 && rename(tmp, path) == 0;
    if (!ok) {
        fprintf(stderr, "g4: cannot save to '%s': %s\n", path, strerror(errno));
        unlink(tmp);
    }
    json_decref(o);
    return ok;
}

static int load_conversation(session *s, const char *path) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        fprintf(stderr, "g4: cannot load '%s': %s (line %d, column %d)\n", path, je.text, je.line, je.column);
        return 0;
    }
    json_t *msgs = json_object_get(o, "messages");
    if (!json_is_array(msgs)) {
        fprintf(stderr, "g4: '%s' has no \"messages\" list\n", path);
        json_decref(o);
        return 0;
    }
    /* a conversation g4 cannot render is refused here, not at the next message */
    json_t *probe = json_deep_copy(msgs);
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
        json_decref(o);
        return 0;
    }
    json_decref(s->messages);
    s->messages = json_deep_copy(msgs);
    /* a system message in the list becomes the system prompt */
    json_t *first = json_array_get(s->messages, 0);
    const char *role = json_string_value(json_object_get(first, "role"));
    const char *sys = json_string_value(json_object_get(o, "system"));
    if (role && !strcmp(role, "system") && json_is_string(json_object_get(first, "content"))) {
        sys = json_string_value(json_object_get(first, "content"));
        free(s->system);
        s->system = strdup(sys);
        json_array_remove(s->messages, 0);
    } else if (sys) {
        free(s->system);
        s->system = strdup(sys);
    }
    json_t *th = json_object_get(o, "think");
    if (json_is_boolean(th)) s->think = json_is_true(th);
    json_t *p = json_object_get(o, "params");
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
        char buf[64];
        if (json_is_number(v)) {
            snprintf(buf, sizeof buf, "%.17g", json_number_value(v));
            set_param(s, k, buf);
        }
    }
    printf("loaded %zu messages from %s\n", json_array_size(s->messages), path);
    json_decref(o);
    return 1;
}

/* ---- input ---- */

static char *read_line(FILE *in) {
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t n = getline(&line, &cap, in);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n && line[n - 1] == '\n') line[--n] = 0;
    if (n && line[n - 1] == '\r') line[--n] = 0;
    return line;
}

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
    if (s->tty_in) {
        fputs(">>> ", stdout);
        fflush(stdout);
    }
    char *line = read_line(stdin);
    if (!line) {
        if (g_interrupted) {
            clearerr(stdin);
            g_interrupted = 0;
            *interrupted = 1;
        }
        return NULL;
    }
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
        if (s->tty_in) {
            fputs("... ", stdout);
            fflush(stdout);
        }
        cur = read_line(stdin);
        if (!cur) break;
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
        json_array_clear(s->messages);
        printf("(conversation cleared)\n");
    } else if (!strcmp(cmd, "/system") || (!strcmp(cmd, "/set") && !strncmp(arg, "system", 6) && (arg[6] == ' ' || !arg[6]))) {
        const char *text = !strcmp(cmd, "/system") ? arg : strip(arg + 6);
        free(s->system);
        s->system = *text ? strdup(text) : NULL;
        printf(*text ? "(system prompt set)\n" : "(system prompt removed)\n");
    } else if (!strcmp(cmd, "/think") || (!strcmp(cmd, "/set") && !strncmp(arg, "think", 5) && (arg[5] == ' ' || !arg[5]))) {
        const char *v = !strcmp(cmd, "/think") ? arg : strip(arg + 5);
        if (on_off(v, &s->think)) printf("(thinking %s)\n", s->think ? "on" : "off");
    } else if (!strcmp(cmd, "/set") && !strncmp(arg, "verbose", 7)) {
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
        else if (save_conversation(s, arg)) printf("(saved %zu messages to %s)\n", json_array_size(s->messages), arg);
    } else if (!strcmp(cmd, "/load")) {
        if (!*arg) fprintf(stderr, "usage: /load FILE\n");
        else load_conversation(s, arg);
    } else {
        fprintf(stderr, "unknown command '%s' (/help lists them)\n", cmd);
    }
    return 1;
}

static int chat_loop(session *s) {
    if (s->tty_in) printf("g4 chat with %s. /help for commands, /bye to leave.\n", s->model_path);
    for (;;) {
        int intr;
        char *msg = read_message(s, &intr);
        if (!msg) {
            if (intr) {
                printf("\n(Use /bye or Ctrl-D to leave)\n");
                continue;
            }
            if (s->tty_in) putchar('\n');
            return 0;
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

static int run_main(int argc, char **argv, int is_chat) {
    session s = {0};
    const char *prompt = NULL, *flavour = NULL;
    long n_ctx = 4096, threads = 0, seed = -1, tmp;
    int seed_set = 0, think_set = 0;
    g4_ctx_params cp = g4_ctx_default_params();
    const char *stops[64];
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
        } else if (!strcmp(a, "--system") && more) s.system = strdup(argv[++i]);
        else if (!strcmp(a, "--think") && more) {
            if (!on_off(argv[++i], &s.think)) cli_die_usage(usage_run, "--think takes on or off");
            think_set = 1;
        } else if (!strcmp(a, "--hide-thinking")) s.hide_thinking = 1;
        else if (!strcmp(a, "--raw")) s.raw = 1;
        else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && more) {
            if (!cli_parse_int(argv[++i], -1, 1 << 30, &tmp)) cli_die_usage(usage_run, "bad --max-tokens '%s'", argv[i]);
            s.max_tokens = (int)tmp;
        }
        FLT("--temperature", temperature, 0)
        FLT("--temp", temperature, 0)
        FLT("--top-p", top_p, 2)
        FLT("--min-p", min_p, 3)
        FLT("--repeat-penalty", repeat_penalty, 4)
        FLT("--presence-penalty", presence_penalty, 5)
        FLT("--frequency-penalty", frequency_penalty, 6)
        else if (!strcmp(a, "--top-k") && more) {
            if (!cli_parse_int(argv[++i], 0, 1 << 30, &tmp)) cli_die_usage(usage_run, "bad --top-k '%s'", argv[i]);
            over.top_k = (int)tmp;
            over_set[1] = 1;
        } else if (!strcmp(a, "--repeat-last-n") && more) {
            if (!cli_parse_int(argv[++i], -1, 1 << 30, &tmp)) cli_die_usage(usage_run, "bad --repeat-last-n '%s'", argv[i]);
            over.penalty_last_n = (int)tmp;
            over_set[7] = 1;
        } else if (!strcmp(a, "--seed") && more) {
            if (!cli_parse_int(argv[++i], 0, 0x7fffffffffffffffL, &seed)) cli_die_usage(usage_run, "bad --seed '%s'", argv[i]);
            seed_set = 1;
        } else if (!strcmp(a, "--stop") && more) {
            if (s.n_stop == 64) cli_die_usage(usage_run, "too many --stop strings");
            stops[s.n_stop++] = argv[++i];
        } else if (!strcmp(a, "--ctx") && more) {
            if (!cli_parse_int(argv[++i], 16, 1 << 24, &n_ctx)) cli_die_usage(usage_run, "bad --ctx '%s'", argv[i]);
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
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) s.verbose = 1;
        else if (a[0] == '-' && a[1]) cli_die_usage(usage_run, "unknown or incomplete option '%s'", a);
        else if (!s.model_path) s.model_path = a;
        else if (!prompt && !is_chat) prompt = a;
        else cli_die_usage(usage_run, "unexpected argument '%s'", a);
#undef FLT
    }
    (void)think_set;
    if (!s.model_path) cli_die_usage(usage_run, "no model given");
    s.stop = stops;
    s.tty_in = isatty(0);
    s.tty_out = isatty(1);
    g4_error err = {0};
    int rc = 1;
    char *stdin_text = NULL;
    if (g4_model_open(&s.model, s.model_path, &err)) {
        fprintf(stderr, "g4: %s\n", err.msg);
        free(s.system);
        return 1;
    }
    s.vocab = g4_model_vocab(s.model);
    if (!s.vocab) {
        fprintf(stderr, "g4: %s has no tokenizer (tokenizer.ggml.* metadata)\n", s.model_path);
        goto done;
    }
    /* chat flavour: from the template, else --flavour, else by model size */
    size_t tl;
    const char *tmpl = g4_vocab_chat_template(s.vocab, &tl);
    if (flavour) {
        if (g4_chat_flavour_parse(flavour, &s.flavour, &err)) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
    } else if (!tmpl || g4_chat_flavour_from_template(tmpl, tl, &s.flavour, &err)) {
        g4_model_info in;
        g4_model_get_info(s.model, &in);
        s.flavour = (in.n_expert || !strcmp(in.variant, "31B") || !strcmp(in.variant, "12B") ||
                     !strncmp(in.variant, "31B", 3) || !strncmp(in.variant, "26B", 3)) ? G4_CHAT_LARGE : G4_CHAT_SMALL;
        if (s.verbose) fprintf(stderr, "(no Gemma 4 chat template in the file: using the %s-model format)\n", g4_chat_flavour_name(s.flavour));
    }
    s.sp = g4_sampler_model_params(s.model);
    if (over_set[0]) s.sp.temperature = over.temperature;
    if (over_set[1]) s.sp.top_k = over.top_k;
    if (over_set[2]) s.sp.top_p = over.top_p;
    if (over_set[3]) s.sp.min_p = over.min_p;
    if (over_set[4]) s.sp.repeat_penalty = over.repeat_penalty;
    if (over_set[5]) s.sp.presence_penalty = over.presence_penalty;
    if (over_set[6]) s.sp.frequency_penalty = over.frequency_penalty;
    if (over_set[7]) s.sp.penalty_last_n = over.penalty_last_n;
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
    s.messages = json_array();
    if (!s.messages) goto done;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C interrupts a read at the prompt */
    sigaction(SIGINT, &sa, NULL);

    if (is_chat || (!prompt && s.tty_in)) {
        if (s.raw) fprintf(stderr, "g4: --raw applies to single prompts only; chatting in the chat format\n");
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
        g4_status r = g4_generate(s.ctx, s.vocab, s.sampler, ids, (int)n, &gp, on_raw_text, NULL, &st, &err);
        free(ids);
        if (r) {
            fprintf(stderr, "g4: %s\n", err.msg);
            goto done;
        }
        putchar('\n');
        fflush(stdout);
        if (s.verbose) print_stats(&st);
        rc = st.stop == G4_STOP_CALLER ? 130 : 0;
        goto done;
    }
    s.overflow = OVERFLOW_STOP;
    if (!add_user_message(&s, prompt, plen)) goto done;
    size_t before = json_array_size(s.messages);
    answer(&s);
    /* the message was withdrawn (did not fit) or generation failed: the assistant message is missing */
    rc = json_array_size(s.messages) > before ? (g_interrupted ? 130 : 0) : 1;
done:
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "g4: writing the answer failed\n");
        rc = 1;
    }
    free(stdin_text);
    json_decref(s.messages);
    g4_ctx_free(s.ctx);
    g4_sampler_free(s.sampler);
    g4_model_free(s.model);
    free(s.system);
    return rc;
}

int g4_cmd_run(int argc, char **argv) { return run_main(argc, argv, 0); }
int g4_cmd_chat(int argc, char **argv) { return run_main(argc, argv, 1); }
