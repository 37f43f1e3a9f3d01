/* Gemma 4 chat format: render a conversation into the exact prompt Google's chat template makes, and parse the
 * model's output back into thinking, answer and tool calls. docs/chat-format.md describes the format.
 *
 * Conversations are jansson values in the OpenAI chat shape:
 *   messages  [{"role": "system"|"developer"|"user"|"assistant"|"model"|"tool", "content": ...}, ...]
 *             content: a string, null, or a list of {"type": "text", "text": S} / {"type": "image"|"image_url"}
 *             / {"type": "audio"|"input_audio"} / {"type": "video"} items
 *             assistant: "tool_calls": [{"id": ID, "type": "function", "function": {"name": N, "arguments": A}}]
 *             with A a JSON object or a string holding one; "reasoning_content" (or "reasoning"): thinking text
 *             tool: "content", "tool_call_id" (matched against the calls' ids) and/or "name"
 *   tools     [{"type": "function", "function": {"name", "description", "parameters": JSON schema, "response"}}]
 *             (a bare {"name", "description", "parameters"} declaration is accepted too)
 *
 * Rendering follows Google's template (../shared/oracle/chat/gemma4-e2b.jinja and gemma4-31b.jinja, 2026-07-09)
 * line by line, including its quirks, and equals its output byte for byte for every conversation the template
 * accepts, with these exceptions, which g4 refuses with a message instead of rendering what the template would:
 * a message that is not an object or has no string role, an unknown role, a tool without a name, a content
 * item that is not an object with a known type, a text item without a string text, tool_calls that are not a
 * list of objects. Tool-call arguments given as a JSON string are parsed first (the template itself would
 * refuse a string); an empty string means {}. Integers beyond 64 bits are refused by the JSON reader.
 */
#ifndef G4_CHAT_H
#define G4_CHAT_H

#include "g4.h"
#include <jansson.h>
#include <stddef.h>

/* ---- rendering ------------------------------------------------------------------------------------------------------ */

/* small: E2B / E4B. large: 12B / 26B-A4B / 31B, whose generation prompt with thinking off ends in an empty thought
 * block "<|channel>thought\n<channel|>". Nothing else differs. */
typedef enum { G4_CHAT_SMALL = 0, G4_CHAT_LARGE = 1 } g4_chat_flavour;

const char *g4_chat_flavour_name(g4_chat_flavour f); /* "small" / "large" */
/* "small"/"e2b"/"e4b" or "large"/"12b"/"26b"/"26b-a4b"/"31b" (any case); G4_ERR_ARG otherwise */
g4_status g4_chat_flavour_parse(const char *s, g4_chat_flavour *out, g4_error *err);

/* The flavour a GGUF's tokenizer.chat_template asks for: large when the template writes the empty thought block
 * (the escaped "<|channel>thought\n<channel|>" as Jinja source holds it, or with a real newline), small when it
 * is a Gemma 4 template without it. G4_ERR_UNSUPPORTED with a message when the text is not a Gemma 4 chat
 * template (no "<|turn>"). */
g4_status g4_chat_flavour_from_template(const char *tmpl, size_t len, g4_chat_flavour *out, g4_error *err);

struct gguf_file;
/* The flavour of a GGUF file, from its tokenizer.chat_template (a vocab-only file is enough). G4_ERR_UNSUPPORTED
 * with a message when the file has no template or a template that is not Gemma 4's; G4_ERR_FORMAT when the key
 * is not a string. */
g4_status g4_chat_flavour_from_gguf(const struct gguf_file *f, g4_chat_flavour *out, g4_error *err);

typedef struct g4_chat_opts {
    g4_chat_flavour flavour;
    int enable_thinking;       /* <|think|> in the system turn */
    int add_generation_prompt; /* end with the opening of the model's turn */
    int preserve_thinking;     /* the template's preserve_thinking: keep reasoning of earlier tool-calling turns */
    const char *bos;           /* NULL: "<bos>" (the template's bos_token); "" for none */
} g4_chat_opts;

/* small, thinking off, generation prompt on, preserve_thinking off, "<bos>" */
g4_chat_opts g4_chat_default_opts(void);

/* Renders messages (a JSON array) and tools (a JSON array, or NULL / null / [] for none) into *out: malloc'ed,
 * NUL-terminated, *out_len bytes (if messages hold "\u0000", so does the prompt). On error *out is NULL and err
 * names the message and field: G4_ERR_ARG for a conversation g4 or the template refuses, G4_ERR_NOMEM. */
g4_status g4_chat_render(const json_t *messages, const json_t *tools, const g4_chat_opts *o, char **out,
                         size_t *out_len, g4_error *err);

/* 1 when a rendered prompt ends inside an open thought block ("<|channel>thought\n": thinking on, after a tool
 * response): the model's output then starts with thinking text. Pass it to g4_chat_parser_new. */
int g4_chat_prompt_in_thinking(const char *prompt, size_t len);

/* Parses JSON text (any value) with jansson, "\u0000" allowed. Errors name `what` and the line and column. */
g4_status g4_chat_json_load(const char *text, size_t len, const char *what, json_t **out, g4_error *err);

/* Compact JSON text of v (Python's json.dumps(v, ensure_ascii=False, separators=(",", ":")): keys in insertion
 * order, UTF-8 kept, floats in their shortest form "0.1", "1e+16"). malloc'ed; NULL when out of memory. */
char *g4_chat_json_dump(const json_t *v, size_t *len);

/* ---- parsing the model's output --------------------------------------------------------------------------------------- */
/* The model writes  [<|channel>thought\n THINKING <channel|>] ANSWER [<|tool_call>call:NAME{ARGS}<tool_call|>]...
 * and ends with <turn|> (or <|tool_response> when it waits for tool results, or <eos>). ARGS are key:value pairs in
 * the template's own notation: keys bare, strings as <|"|>text<|"|>, numbers, true, false, null, {...}, [...].
 *
 * Feed the output text (special tokens included, as the detokenizer shows them) in chunks of any size; after each
 * feed the thinking and answer texts hold everything known so far (a partial marker or UTF-8 sequence at the end
 * of a chunk waits for the next one), and every completed tool call is available. Leading and trailing white space
 * of the thinking and of the answer is dropped (trailing white space waits until something follows it). Nothing
 * the model writes makes the parser fail: a tool call that cannot be parsed, or is cut off by the end of the output,
 * is kept as text in the answer and flagged. */
typedef struct g4_chat_parser g4_chat_parser;

typedef enum {
    G4_CHAT_IN_ANSWER = 0, /* the model is writing its answer */
    G4_CHAT_IN_THINKING,   /* inside a thought block */
    G4_CHAT_IN_TOOL_CALL,  /* inside <|tool_call> ... (not yet complete) */
    G4_CHAT_DONE,          /* end of turn seen, or g4_chat_parser_finish called */
} g4_chat_state;

/* flags */
#define G4_CHAT_MALFORMED_CALL 1u /* a tool call could not be parsed: its text is in the answer */
#define G4_CHAT_TRUNCATED 2u      /* the output ended (finish) inside a thought block or a tool call */
#define G4_CHAT_END_OF_TURN 4u    /* <turn|> or <eos> seen */
#define G4_CHAT_WAITS_TOOL 8u     /* <|tool_response> seen: the model waits for tool results */
#define G4_CHAT_TEXT_AFTER_END 16u /* text after the end marker was ignored */

typedef struct g4_chat_tool_call {
    char *name;      /* NUL-terminated */
    json_t *args;    /* JSON object, keys in the order the model wrote them */
    char *args_json; /* g4_chat_json_dump(args): what OpenAI's "arguments" string holds */
} g4_chat_tool_call;

/* in_thinking: the prompt ended inside a thought block (g4_chat_prompt_in_thinking) */
g4_status g4_chat_parser_new(g4_chat_parser **out, int in_thinking, g4_error *err);
void g4_chat_parser_free(g4_chat_parser *p);
/* G4_ERR_NOMEM is the only failure (the parser is unusable after it) */
g4_status g4_chat_parser_feed(g4_chat_parser *p, const char *text, size_t len, g4_error *err);
/* end of output: whatever is pending is decided (an unterminated tool call becomes text, flagged TRUNCATED) */
g4_status g4_chat_parser_finish(g4_chat_parser *p, g4_error *err);

g4_chat_state g4_chat_parser_state(const g4_chat_parser *p);
unsigned g4_chat_parser_flags(const g4_chat_parser *p);
/* NUL-terminated texts so far (never NULL); *len may be NULL */
const char *g4_chat_parser_thinking(const g4_chat_parser *p, size_t *len);
const char *g4_chat_parser_answer(const g4_chat_parser *p, size_t *len);
int g4_chat_parser_n_tool_calls(const g4_chat_parser *p);
const g4_chat_tool_call *g4_chat_parser_tool_call(const g4_chat_parser *p, int i);

/* The parsed output as an assistant message for the conversation (renders back into the same turn):
 * {"role": "assistant", "content": ANSWER, "reasoning_content": THINKING (when any),
 *  "tool_calls": [{"id": "<id_prefix>N", "type": "function", "function": {"name", "arguments": {...}}}] (when any)};
 * ids are left out when id_prefix is NULL. */
g4_status g4_chat_parser_message(const g4_chat_parser *p, const char *id_prefix, json_t **out, g4_error *err);

/* The inside of one tool call, "call:NAME{ARGS}": G4_OK with *name (malloc'ed) and *args (an object), or
 * G4_ERR_FORMAT with the position of the problem (G4_ERR_NOMEM). Besides the template's notation it accepts what
 * models sometimes write instead: JSON strings ("..."), quoted keys, bare words (taken as strings), trailing commas. */
g4_status g4_chat_parse_tool_call(const char *s, size_t n, char **name, json_t **args, g4_error *err);

#endif
