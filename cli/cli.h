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

/* shared helpers (cli/common.c) */
void cli_die_usage(const char *usage, const char *fmt, ...);
int cli_parse_int(const char *s, long lo, long hi, long *out);
const char *cli_human_bytes(double bytes, char *buf, int n);

#endif
