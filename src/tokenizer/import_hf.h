/* Hugging Face tokenizer.json (BPE model, as Gemma 3 / Gemma 4 ship it) -> the GGUF tokenizer section
 * llama.cpp's converter writes (tokens, scores, token types, merges, special ids, flags).
 *
 * Two layouts, following ../shared/oracle/tokenizer/build_vocab.py (which imitates llama.cpp's
 * converters):
 *   G4_HF_GEMMA4  tokenizer.ggml.model = "gemma4": tokens as in the vocabulary, merges "left right" in
 *                 rank order; added tokens CONTROL, except <unk> UNKNOWN and <|channel> <channel|>
 *                 <|tool_call> <tool_call|> <|tool_response> <tool_response|> <|"|> USER_DEFINED
 *   G4_HF_LLAMA   tokenizer.ggml.model = "llama" (Gemma 3 style SentencePiece): no merges; added tokens
 *                 CONTROL when special or special-looking (<pad> <mask> <|...|> <unused...>), else
 *                 USER_DEFINED with U+2581 written as a space; their score is -1000
 * Both: <0xXX> pieces BYTE with score 0, every other piece NORMAL with score -id (the tokenizer.json
 * has no scores; on Gemma's vocabulary -id orders pieces exactly like the merge ranks).
 * Used by `g4 vocab-import` and meant for `g4 convert`.
 */
#ifndef G4_IMPORT_HF_H
#define G4_IMPORT_HF_H

#include "g4.h"
#include "gguf/gguf.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { G4_HF_GEMMA4 = 0, G4_HF_LLAMA = 1 } g4_hf_layout;

typedef struct g4_hf_vocab {
    g4_hf_layout layout;
    uint32_t n;                 /* tokens (ids 0..n-1; added tokens beyond the vocabulary are dropped) */
    const char **tokens;        /* NUL-terminated */
    float *scores;
    int32_t *types;             /* G4_TOKEN_* */
    uint32_t n_merges;          /* G4_HF_GEMMA4 only */
    const char **merges;        /* "left right" */
    int32_t bos, eos, unk, pad; /* -1: not in the vocabulary (key not written) */
    int add_bos, add_eos, add_space_prefix;
    char *chat_template;        /* NULL: not written */
    /* internal */
    void *json;
    char **owned;
    size_t n_owned, cap_owned;
} g4_hf_vocab;

/* Reads tokenizer.json. */
g4_status g4_hf_vocab_load(g4_hf_vocab **out, const char *tokenizer_json, g4_hf_layout layout, g4_error *err);
/* Takes the chat template of a tokenizer_config.json ("chat_template": a string, or a list of
 * {name, template} of which "default" or else the first is used); no template there is not an error. */
g4_status g4_hf_vocab_load_config(g4_hf_vocab *hv, const char *tokenizer_config_json, g4_error *err);
/* Sets the chat template from text. */
g4_status g4_hf_vocab_set_chat_template(g4_hf_vocab *hv, const char *text, size_t len, g4_error *err);
/* Adds the tokenizer.ggml.* keys (and tokenizer.chat_template) to a GGUF writer, in llama.cpp's order. */
g4_status g4_hf_vocab_set_keys(const g4_hf_vocab *hv, gguf_writer *w, g4_error *err);
/* Writes a vocab-only GGUF (no tensors): general.architecture "llama" with minimal llama.* keys, so
 * llama.cpp can load it with vocab_only, then the tokenizer keys; name NULL: "g4-vocab-<layout>". */
g4_status g4_hf_vocab_write(const g4_hf_vocab *hv, const char *path, const char *name, g4_error *err);
void g4_hf_vocab_free(g4_hf_vocab *hv);

#endif
