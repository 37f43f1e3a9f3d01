/* A conversation with a model, as the CLI's chat and the server hold it: the system prompt, the messages (OpenAI
 * shape, see chat.h), the tools, the chat format; turned into the prompt's tokens, and made to fit a context by
 * dropping the oldest exchanges when the caller allows it (never silently: the caller is told how many). */
#ifndef G4_CONV_H
#define G4_CONV_H

#include "g4_chat.h"
#include "g4.h"

#include <jansson.h>

/* The chat format a model's file asks for (its template), else by the model's size: large for MoE and 26B/31B
 * shapes. *from_template (if not NULL) says which. */
g4_chat_flavour g4_chat_flavour_of_model(const g4_model *m, int *from_template);

typedef struct g4_conv g4_conv;

g4_status g4_conv_new(g4_conv **out, g4_chat_flavour flavour, g4_error *err);
void g4_conv_free(g4_conv *c);

/* NULL or "": none. G4_ERR_ARG when not valid UTF-8. */
g4_status g4_conv_set_system(g4_conv *c, const char *text, g4_error *err);
const char *g4_conv_system(const g4_conv *c); /* NULL: none */
/* tools: a JSON array of tool declarations (copied), or NULL for none */
g4_status g4_conv_set_tools(g4_conv *c, const json_t *tools, g4_error *err);
void g4_conv_set_thinking(g4_conv *c, int on);
int g4_conv_thinking(const g4_conv *c);
g4_chat_flavour g4_conv_flavour(const g4_conv *c);

/* Appends a message (a reference is taken). */
g4_status g4_conv_add(g4_conv *c, json_t *message, g4_error *err);
/* Appends {"role": "user", "content": text}; G4_ERR_ARG when text is not valid UTF-8. */
g4_status g4_conv_add_user(g4_conv *c, const char *text, size_t len, g4_error *err);
/* Replaces every message (a copy of the array is taken); the system prompt and tools stay. */
g4_status g4_conv_set_messages(g4_conv *c, const json_t *messages, g4_error *err);
/* Removes the last message (nothing when there is none). */
void g4_conv_pop(g4_conv *c);
/* Forgets the messages (the system prompt and tools stay). */
void g4_conv_clear(g4_conv *c);
/* The messages, without the system prompt (borrowed). */
const json_t *g4_conv_messages(const g4_conv *c);
/* Drops the oldest exchange (a user message and what follows up to the next user message); 0 when only the
 * latest exchange is left. */
int g4_conv_drop_oldest(g4_conv *c);

/* The prompt: the conversation rendered in the chat format with the generation prompt, as text (malloc'ed) and
 * tokens (malloc'ed); *in_thinking says whether it ends in an open thought block (g4_chat_prompt_in_thinking).
 * Any out-pointer may be NULL. */
g4_status g4_conv_prompt(const g4_conv *c, const g4_vocab *v, char **text, size_t *text_len, int32_t **ids,
                         size_t *n_ids, int *in_thinking, g4_error *err);

/* The prompt when it fits: n_ids + reserve <= n_ctx. With drop set, the oldest exchanges are dropped until it
 * does (*n_dropped tells how many messages went); G4_ERR_CONTEXT when it cannot fit (the conversation is then
 * left as it was, nothing dropped). */
g4_status g4_conv_fit(g4_conv *c, const g4_vocab *v, int n_ctx, int reserve, int drop, int32_t **ids, size_t *n_ids,
                      int *in_thinking, int *n_dropped, g4_error *err);

#endif
