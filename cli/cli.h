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

#endif
