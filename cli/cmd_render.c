/* g4 render: the exact prompt text g4 feeds a Gemma 4 model for a conversation. */
#include "chat/chat.h"
#include "cli.h"
#include "g4.h"
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: g4 render [MODEL] --messages CONV.json [--tools TOOLS.json] [--think on|off]\n"
    "                 [--no-generation-prompt] [--flavour small|large]\n"
    "\n"
    "Prints the prompt for a conversation exactly as Google's Gemma 4 chat template renders it (no newline\n"
    "is added). CONV.json holds the messages in the OpenAI chat shape: a list of {\"role\", \"content\", ...},\n"
    "or a request object {\"messages\": [...], \"tools\": [...]}; '-' reads standard input. TOOLS.json is a\n"
    "list of OpenAI function declarations.\n"
    "\n"
    "  MODEL                   a Gemma 4 GGUF (a vocab-only one is enough): its tokenizer.chat_template tells\n"
    "                          the flavour; may be left out when --flavour is given\n"
    "  --think on|off          thinking mode (<|think|> in the system turn); default off\n"
    "  --no-generation-prompt  do not end with the opening of the model's turn\n"
    "  --flavour small|large   small = E2B/E4B, large = 12B/26B-A4B/31B (adds an empty thought block to the\n"
    "                          generation prompt when thinking is off); overrides the model's template\n";

/* the whole file (or standard input for "-"), NUL-terminated */
static char *slurp(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 14, n = 0, r;
    char *p = malloc(cap + 1);
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = cap > ((size_t)1 << 40) ? NULL : realloc(p, cap * 2 + 1);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!p || bad) {
        free(p);
        return NULL;
    }
    p[n] = 0;
    *len = n;
    return p;
}

static json_t *load_json_file(const char *path, const char *what) {
    size_t n;
    char *text = slurp(path, &n);
    if (!text) {
        fprintf(stderr, "g4 render: cannot read %s '%s'\n", what, path);
        return NULL;
    }
    json_t *v;
    g4_error e;
    g4_status s = g4_chat_json_load(text, n, path, &v, &e);
    free(text);
    if (s) {
        fprintf(stderr, "g4 render: %s\n", e.msg);
        return NULL;
    }
    return v;
}

/* the flavour from MODEL's tokenizer.chat_template (a --flavour flag wins); 0 on success, else an exit status */
static int model_flavour(const char *path, int have_flag, g4_chat_flavour *fl) {
    gguf_file *f;
    g4_error e;
    if (gguf_open(&f, path, &e)) {
        fprintf(stderr, "g4 render: %s\n", e.msg);
        return 1;
    }
    g4_chat_flavour tf;
    g4_status st = g4_chat_flavour_from_gguf(f, &tf, &e);
    gguf_close(f);
    if (st == G4_ERR_UNSUPPORTED && have_flag) return 0;
    if (st == G4_ERR_UNSUPPORTED) {
        fprintf(stderr, "g4 render: %s: %s; pass --flavour small (E2B/E4B) or --flavour large (12B/26B-A4B/31B)\n",
                path, e.msg);
        return 1;
    }
    if (st) {
        fprintf(stderr, "g4 render: %s: %s\n", path, e.msg);
        return 1;
    }
    if (have_flag && tf != *fl)
        fprintf(stderr, "g4 render: note: the chat template of %s is the %s flavour; rendering the %s one as asked\n",
                path, g4_chat_flavour_name(tf), g4_chat_flavour_name(*fl));
    if (!have_flag) *fl = tf;
    return 0;
}

int g4_cmd_render(int argc, char **argv) {
    const char *model = NULL, *msgs_path = NULL, *tools_path = NULL;
    g4_chat_opts o = g4_chat_default_opts();
    int have_flavour = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--messages") && i + 1 < argc) {
            msgs_path = argv[++i];
        } else if (!strcmp(a, "--tools") && i + 1 < argc) {
            tools_path = argv[++i];
        } else if (!strcmp(a, "--think") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "on")) o.enable_thinking = 1;
            else if (!strcmp(v, "off")) o.enable_thinking = 0;
            else cli_die_usage(usage, "--think takes on or off, not '%s'", v);
        } else if (!strcmp(a, "--no-generation-prompt")) {
            o.add_generation_prompt = 0;
        } else if (!strcmp(a, "--flavour") && i + 1 < argc) {
            g4_error e;
            if (g4_chat_flavour_parse(argv[++i], &o.flavour, &e)) cli_die_usage(usage, "%s", e.msg);
            have_flavour = 1;
        } else if (a[0] == '-' && a[1]) {
            cli_die_usage(usage, "unknown or incomplete option '%s'", a);
        } else if (!model) {
            model = a;
        } else {
            cli_die_usage(usage, "unexpected argument '%s'", a);
        }
    }
    if (!msgs_path) cli_die_usage(usage, "--messages CONV.json is required");
    if (!model && !have_flavour) cli_die_usage(usage, "give MODEL, or --flavour small|large");
    if (model) {
        int rc = model_flavour(model, have_flavour, &o.flavour);
        if (rc) return rc;
    }

    int rc = 1;
    json_t *conv = load_json_file(msgs_path, "messages file"), *tools = NULL;
    if (!conv) return 1;
    const json_t *messages = conv, *conv_tools = NULL;
    if (json_is_object(conv)) { /* a request body */
        messages = json_object_get(conv, "messages");
        conv_tools = json_object_get(conv, "tools");
        if (!messages) {
            fprintf(stderr, "g4 render: %s: an object needs a \"messages\" list\n", msgs_path);
            goto done;
        }
    }
    if (tools_path) {
        tools = load_json_file(tools_path, "tools file");
        if (!tools) goto done;
        if (json_is_object(tools) && json_object_get(tools, "tools")) { /* {"tools": [...]} */
            json_t *t = json_incref(json_object_get(tools, "tools"));
            json_decref(tools);
            tools = t;
        }
    } else if (conv_tools) {
        tools = json_incref((json_t *)conv_tools);
    }
    char *prompt;
    size_t n;
    g4_error e;
    if (g4_chat_render(messages, tools, &o, &prompt, &n, &e)) {
        fprintf(stderr, "g4 render: %s\n", e.msg);
        goto done;
    }
    fwrite(prompt, 1, n, stdout);
    rc = cli_stdout_flush("the prompt") ? 0 : 1;
    free(prompt);
done:
    json_decref(conv);
    json_decref(tools);
    return rc;
}
