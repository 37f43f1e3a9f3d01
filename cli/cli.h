/* g4 command-line tool: one function per sub-command, each returning the process exit status. */
#ifndef G4_CLI_H
#define G4_CLI_H

int g4_cmd_info(int argc, char **argv);
int g4_cmd_run(int argc, char **argv);
int g4_cmd_chat(int argc, char **argv);
int g4_cmd_logits(int argc, char **argv);
int g4_cmd_synth(int argc, char **argv);
int g4_cmd_tokenize(int argc, char **argv);    /* cmd_tokenize.c */
int g4_cmd_detokenize(int argc, char **argv);
int g4_cmd_vocab_import(int argc, char **argv);
int g4_cmd_render(int argc, char **argv);
int g4_cmd_bench(int argc, char **argv);       /* cmd_bench.c */
int g4_cmd_eval(int argc, char **argv);        /* cmd_eval.c */

/* shared helpers (cli/common.c) */
void cli_die_usage(const char *usage, const char *fmt, ...);
int cli_parse_int(const char *s, long lo, long hi, long *out);
const char *cli_human_bytes(double bytes, char *buf, int n);
/* Standard output: 1 while every write so far went out; after the first failure prints once on stderr
 * "g4: writing WHAT failed: <reason>" (WHAT e.g. "the answer"; NULL: "to standard output") and returns 0.
 * cli_stdout_ok only looks at the stream's error flag (cheap: call it after writes in loops, so that
 * a command stops at the first failed write); cli_stdout_flush flushes first. */
int cli_stdout_ok(const char *what);
int cli_stdout_flush(const char *what);
/* a failure the caller saw itself (errno e), reported like the above (once); returns 0 */
int cli_stdout_fail(const char *what, int e);
/* the error of the first write that failed on stdout (0: none) */
int cli_stdout_errno(void);
/* The user's lines (cli/input.c): with line editing and history (libedit) when tty, else plain reads
 * of stdin. interrupted: the SIGINT flag (a Ctrl-C while waiting abandons the line). */
#include <signal.h>
typedef struct cli_input cli_input;
cli_input *cli_input_new(const char *prog, int tty, volatile sig_atomic_t *interrupted);
void cli_input_free(cli_input *in);
int cli_input_is_editing(const cli_input *in);
/* a line without its newline (malloc'ed; history keeps it), or NULL at the end of the input, or NULL with
 * *interrupted set (and the flag cleared) after a Ctrl-C */
char *cli_input_read(cli_input *in, const char *prompt, int *interrupted);
/* s as a JSON string on stdout, quoted and escaped (paths and names may hold anything) */
void cli_json_str(const char *s);
/* --kv SPEC applied to p (g4_kv_parse); a bad spec exits with status 2 and the usage text */
struct g4_ctx_params;
void cli_kv_option(const char *usage, const char *spec, struct g4_ctx_params *p);
/* the KV types of a model's caches under p, e.g. "tq4 on 3 full-attention layers, f16 on 12 sliding layers" */
struct g4_model;
const char *cli_kv_summary(const struct g4_model *m, const struct g4_ctx_params *p, char *buf, int n);
/* the --kv lines of the commands' help texts */
#define CLI_KV_HELP                                                                                                    \
    "  --kv SPEC        KV cache types: f16 (default), f32, or a compressed type for the\n"                            \
    "                   full-attention layers (their cache grows with the context; sliding\n"                          \
    "                   layers stay f16): q8 (8.5 bits), tq4, tq3, tq2 (TurboQuant 4/3/2 bits);\n"                      \
    "                   K and V apart: k=tq4,v=tq3; more: layers=all (every layer),\n"                                 \
    "                   donors=TYPE (layers whose cache others share), N=TYPE (layer N)\n"

/* Models by name (cli/common.c, src/store/store.h): name_or_path is a GGUF path (ends in .gguf, or has a '/'
 * and exists) or a stored model's name ([namespace/]model[:tag]); models_dir is --models DIR (NULL: $G4_MODELS,
 * else $XDG_DATA_HOME/g4/models, else ~/.local/share/g4/models). Prints "g4: <error>" and returns NULL when
 * there is no such model or file. m->path is the GGUF to open; m->params (Ollama option names), m->system,
 * m->messages are the stored settings (empty for a file). Free with g4_store_model_free. */
struct g4_store_model;
struct g4_sampler_params;
struct g4_store_model *cli_resolve_model(const char *name_or_path, const char *models_dir);
/* the stored sampling parameters (temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
 * frequency_penalty, repeat_last_n, seed >= 0) over *sp; those the model does not set are left alone */
void cli_model_sampling(const struct g4_store_model *m, struct g4_sampler_params *sp);
/* a stored integer parameter (num_ctx, num_predict, seed, ...): 1 and *v when the model has it */
int cli_model_int(const struct g4_store_model *m, const char *name, long long *v);
/* the stored stop strings (pointers into m, valid while it lives): how many, at most max */
int cli_model_stops(const struct g4_store_model *m, const char **stops, int max);
/* the store commands (cli/cmd_store.c) */
int g4_cmd_create(int argc, char **argv);
int g4_cmd_list(int argc, char **argv);
int g4_cmd_show(int argc, char **argv);
int g4_cmd_rm(int argc, char **argv);
int g4_cmd_cp(int argc, char **argv);

#endif
