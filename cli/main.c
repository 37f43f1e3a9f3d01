/* g4: run, inspect and make Gemma 4 models. */
#include "cli.h"
#include "g4.h"

#include <stdio.h>
#include <string.h>

static const char *usage =
    "g4 " G4_VERSION " — Gemma 4 on your CPU\n"
    "\n"
    "usage: g4 COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run MODEL [PROMPT]            answer one prompt, streamed (no prompt on a terminal: chat)\n"
    "  chat MODEL                    interactive conversation (/help inside)\n"
    "  info MODEL [--ctx N]          architecture, hyper-parameters, tensors, memory needed\n"
    "  logits MODEL --tokens IDS     logits of the last (or every, --all) position\n"
    "  synth --variant V --out FILE  write a random-weight Gemma 4 GGUF of a variant's shape\n"
    "  tokenize MODEL --text T       token ids of a text (--file F, --lines, --special, --no-bos)\n"
    "  detokenize MODEL --ids IDS    the text of token ids\n"
    "  vocab-import TOKENIZER.json --out VOCAB.gguf   HF tokenizer.json -> vocab-only GGUF\n"
    "  render MODEL --messages F     the exact prompt text for a conversation (Gemma 4 chat format)\n"
    "  bench MODEL                   prompt and decode tok/s, time to first token, memory (--json)\n"
    "  eval MODEL --file TEXT        perplexity, and KL divergence / top-1 agreement against an f16\n"
    "                                KV cache (--kv tq4 --chunk 1)\n"
    "  create NAME -f Modelfile      store a model by name (FROM a GGUF or a model; PARAMETER, SYSTEM...)\n"
    "  list, ls                      the stored models (NAME ID SIZE MODIFIED)\n"
    "  show MODEL                    a model's details, parameters, system prompt, license (--modelfile)\n"
    "  rm MODEL...                   remove stored models       cp SRC DST   copy a model to a new name\n"
    "  serve [MODEL]                 HTTP server: Ollama + OpenAI APIs (--port, --parallel, --ctx; docs/serving.md)\n"
    "  ps                            the models a running server has loaded\n"
    "  (MODEL is a GGUF file or a stored model's name: [namespace/]model[:tag])\n"
    "\n"
    "Run 'g4 COMMAND --help' for the options of a command.\n";

int g4_cmd_serve(int argc, char **argv); /* cli/cmd_serve.c */
int g4_cmd_ps(int argc, char **argv);

static int dispatch(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("g4 %s\n", G4_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return g4_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "chat")) return g4_cmd_chat(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return g4_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "logits")) return g4_cmd_logits(argc - 1, argv + 1);
    if (!strcmp(cmd, "synth")) return g4_cmd_synth(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return g4_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "detokenize")) return g4_cmd_detokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "vocab-import")) return g4_cmd_vocab_import(argc - 1, argv + 1);
    if (!strcmp(cmd, "render")) return g4_cmd_render(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return g4_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return g4_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "create")) return g4_cmd_create(argc - 1, argv + 1);
    if (!strcmp(cmd, "list") || !strcmp(cmd, "ls")) return g4_cmd_list(argc - 1, argv + 1);
    if (!strcmp(cmd, "show")) return g4_cmd_show(argc - 1, argv + 1);
    if (!strcmp(cmd, "rm")) return g4_cmd_rm(argc - 1, argv + 1);
    if (!strcmp(cmd, "cp")) return g4_cmd_cp(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return g4_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "ps")) return g4_cmd_ps(argc - 1, argv + 1);
    fprintf(stderr, "g4: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}

/* every command's output checked once more at the end: a full disk or a closed pipe is an error */
int main(int argc, char **argv) {
    int rc = dispatch(argc, argv);
    if (!cli_stdout_flush(NULL) && rc == 0) rc = 1;
    return rc;
}
