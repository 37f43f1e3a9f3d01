/* Structured output: a JSON schema (or "any JSON object") compiled into a byte-level context-free
 * grammar, a matcher that follows generated text through it, and a vocabulary trie that turns the
 * matcher's state into the set of allowed tokens (a mask over the logits). docs/structured-output.md
 * describes the design and the measured cost.
 *
 * Typical use (one grammar per request, one vocabulary per model):
 *
 *     g4_grammar *g;  g4_gvocab *gv;  g4_gmatch *m;
 *     g4_grammar_from_schema(&g, schema_or_NULL, &err);
 *     g4_gvocab_new(&gv, vocab, &err);                    // once per vocabulary
 *     g4_gmatch_new(&m, g, &err);
 *     loop: sample tok from logits;
 *           if (!g4_gmatch_token_ok(m, gv, tok)) {        // cheap: walks the token's bytes
 *               g4_gmatch_mask(m, gv, logits, &err);      // full pass over the vocabulary
 *               sample tok again;
 *           }
 *           if (g4_vocab_is_eog(vocab, tok)) stop;        // only allowed when g4_gmatch_done(m)
 *           g4_gmatch_accept_token(m, gv, tok);
 *
 * Guarantee: if every token passes token_ok (or the mask) and generation stops only at an
 * end-of-generation token (allowed exactly when g4_gmatch_done), the text parses as JSON (RFC 8259,
 * and with jansson: no \u0000, no lone surrogate escapes, integers and reals in range) and validates
 * against the schema. Every state the matcher can reach can still be completed (the grammar keeps
 * only productive alternatives), so a masked sampler never runs into a dead end as long as the
 * vocabulary can spell every byte (Gemma's <0xXX> tokens can); g4_gmatch_min_remaining says how
 * many bytes the shortest completion takes (to close the document before a token limit).
 *
 * What the compiler supports, and what it chose where JSON Schema leaves freedom:
 *   type (string, number, integer, boolean, null, object, array, and arrays of them), enum, const,
 *   properties, required, additionalProperties (false / true / a schema), anyOf, oneOf (only when
 *   the compiler can show the alternatives exclude each other: different types, a required property
 *   one of them cannot have, or a const/enum discriminator; otherwise G4_ERR_UNSUPPORTED "oneOf ...
 *   may overlap, use anyOf"), allOf (merged: types intersected, properties and required united,
 *   bounds tightened, enums intersected), items, prefixItems (and draft-07 array "items" with
 *   additionalItems), minItems, maxItems, minLength, maxLength (code points; an escape is one),
 *   minimum / maximum / exclusiveMinimum / exclusiveMaximum for integers (any bounds) and numbers
 *   (integer-valued bounds; then at most 9 integer and 6 fraction digits, no exponent), $ref to
 *   "#", "#/$defs/...", "#/definitions/..." or any JSON pointer into the schema (recursion works),
 *   format date, time (always with a zone offset), date-time, uuid, ipv4, email (a simple subset),
 *   pattern (a regular-expression subset: literals, ., classes [...] and \d \w \s \D \W \S, groups,
 *   (?:...), |, * + ? {n} {n,} {n,m} (lazy forms too), ^ and $ at the ends; no backreferences,
 *   lookaround or \b: G4_ERR_UNSUPPORTED naming "pattern"), nullable (OpenAPI) true.
 *   Ignored (they do not constrain): title, description, examples, default, $schema, $id, $comment,
 *   deprecated, readOnly, writeOnly, $defs, definitions, contentEncoding, contentMediaType and any
 *   keyword JSON Schema does not define. Keywords that would constrain but are not implemented (not,
 *   if/then/else, patternProperties, propertyNames, minProperties, maxProperties, uniqueItems: true,
 *   contains, multipleOf, dependentRequired, dependentSchemas, dependencies, unevaluated*, other
 *   formats) give G4_ERR_UNSUPPORTED naming the keyword and the JSON path (e.g. "/properties/a").
 *   A malformed schema (wrong value types, a $ref that does not resolve) gives G4_ERR_ARG with the
 *   path; so does a schema no document can satisfy.
 *
 *   additionalProperties: as llama.cpp's json-schema-to-grammar does, an object schema WITH
 *   properties and without additionalProperties allows no other properties (stricter than JSON
 *   Schema's default, never invalid); additionalProperties true or a schema allows other keys (never
 *   one of the named ones), after the named properties. An object schema without properties allows
 *   any keys (additionalProperties, when a schema, constrains their values).
 *   Properties come in schema order; optional ones may be left out. Required properties that
 *   "properties" does not list come after the listed ones (any value).
 *   Whitespace: none before the document; after { [ , : and before } ] one optional unit of either
 *   a single space or a newline followed by up to opts.ws_indent spaces (default 20); one such unit
 *   after the document. So a model cannot loop in whitespace.
 *   Numbers: integer parts of at most 15 digits (exact in every JSON parser, including JavaScript),
 *   fractions of at most 15 digits, exponents of at most 2 digits. Strings: valid UTF-8 only (no raw
 *   control characters), escapes \" \\ \/ \b \f \n \r \t \uXXXX (not \u0000 and no surrogate
 *   escapes: characters beyond U+FFFF are written as UTF-8). Unconstrained values ("any JSON",
 *   additionalProperties true, items absent) nest at most opts.any_depth (default 16) levels.
 *
 * Limits (a hostile schema fails with G4_ERR_UNSUPPORTED naming the limit instead of using memory
 * or time): 2,000,000 grammar symbols, 500,000 rules, schema nesting 256, 64 chained $refs, 20,000
 * merges of allOf / $ref siblings, repetition bounds (minItems, maxItems, minLength, maxLength,
 * pattern {n,m}) up to 100,000, integer bounds within 15 digits, number bounds within 9 digits. A
 * matcher keeps at most 4,096 parallel parse stacks per state (more are dropped: still sound, fewer
 * alternatives), rebuilds its caches around the current state past 1M frames / 16k states, and fails
 * an operation with G4_ERR_NOMEM past 8M frames / 128k states (a few hundred MB at most).
 *
 * Not JSON Schema exactly (all on the safe side: what is generated validates): keys of additional
 * properties contain no escapes until they differ from every named property; a `^a|b$` pattern is
 * read as `^(a|b)$`; duplicate keys are possible only among additional properties (each value valid).
 *
 * Threads: a g4_grammar and a g4_gvocab do not change once made and may be shared; a g4_gmatch is
 * used by one thread at a time. The grammar and the vocabulary must outlive the matchers using them.
 */
#ifndef G4_GRAMMAR_H
#define G4_GRAMMAR_H

#include "g4.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct g4_grammar g4_grammar;
typedef struct g4_gmatch g4_gmatch;
typedef struct g4_gvocab g4_gvocab;

typedef struct g4_grammar_opts {
    int ws_indent; /* spaces allowed after a newline in whitespace (0..64; default 20); -1: no
                    * whitespace at all (compact JSON) */
    int any_depth; /* nesting of unconstrained JSON values (1..64; default 16) */
} g4_grammar_opts;

/* Defaults of g4_grammar_opts. */
void g4_grammar_opts_default(g4_grammar_opts *o);

/* Compiles a JSON schema (schema NULL: any JSON object, as Ollama's format:"json" and OpenAI's
 * json_object ask for) into a grammar. opts NULL: the defaults. */
g4_status g4_grammar_from_schema(g4_grammar **out, const json_t *schema, g4_error *err);
g4_status g4_grammar_from_schema_opts(g4_grammar **out, const json_t *schema, const g4_grammar_opts *opts,
                                      g4_error *err);
/* The same from schema text (JSON); G4_ERR_ARG if it does not parse. */
g4_status g4_grammar_from_schema_text(g4_grammar **out, const char *text, size_t len, const g4_grammar_opts *opts,
                                      g4_error *err);
void g4_grammar_free(g4_grammar *g);
/* Size of the compiled grammar: rules and symbols (for limits and statistics). */
void g4_grammar_size(const g4_grammar *g, size_t *n_rules, size_t *n_symbols);

/* Matcher: where the text generated so far stands in the grammar. */
g4_status g4_gmatch_new(g4_gmatch **out, const g4_grammar *g, g4_error *err);
void g4_gmatch_free(g4_gmatch *m);
/* Back to the empty text. */
void g4_gmatch_reset(g4_gmatch *m);
/* 1 if bytes[0..n) continue the text validly (the state advances), 0 if not (the state is
 * unchanged; also 0 when the matcher ran out of memory: g4_gmatch_status tells). Bytes may end in the
 * middle of a UTF-8 character. */
int g4_gmatch_accept(g4_gmatch *m, const char *bytes, size_t n);
/* 1 if bytes[0..n) would be accepted; the state does not change. */
int g4_gmatch_check(g4_gmatch *m, const char *bytes, size_t n);
/* 1 when the text so far is a complete document (end of generation is allowed). */
int g4_gmatch_done(const g4_gmatch *m);
/* 1 when at least one more byte may follow. */
int g4_gmatch_can_continue(const g4_gmatch *m);
/* 1 when the text can still become a complete document: done, or some continuation is possible.
 * Always 1 for states reached through accept (the grammar has no dead ends); 0 after an error. */
int g4_gmatch_alive(const g4_gmatch *m);
/* The bytes that may come next: bit b of set[b / 8] (bit b % 8). 0, or -1 on an error. */
int g4_gmatch_next_bytes(g4_gmatch *m, uint8_t set[32]);
/* Fewest bytes that complete the document from here (0 when done). */
size_t g4_gmatch_min_remaining(const g4_gmatch *m);
/* Fewest bytes that complete the document after bytes[0..n) (the state does not change); SIZE_MAX
 * if those bytes are not a valid continuation. Choosing, at each step, a continuation of least cost
 * closes the document in g4_gmatch_min_remaining bytes (e.g. near a token limit). */
size_t g4_gmatch_cost_after(g4_gmatch *m, const char *bytes, size_t n);
/* G4_OK, or the error that made an accept / token_ok / mask fail (G4_ERR_NOMEM, limits). */
g4_status g4_gmatch_status(const g4_gmatch *m, g4_error *err);

/* A vocabulary prepared for masking: every token's bytes (g4_token_to_piece without special) in a
 * trie. Control (and unknown) tokens are never allowed, except end-of-generation tokens, which are
 * allowed exactly when the text is a complete document; tokens with no bytes are never allowed. */
g4_status g4_gvocab_new(g4_gvocab **out, const g4_vocab *v, g4_error *err);
void g4_gvocab_free(g4_gvocab *gv);
int g4_gvocab_n_tokens(const g4_gvocab *gv);
/* Bytes of token tok as the grammar sees them (NULL / 0 for tokens never allowed, EOG included). */
const char *g4_gvocab_token_bytes(const g4_gvocab *gv, int32_t tok, size_t *len);
/* 1 when every single byte 0x00..0xFF is a token of its own (then no state is a dead end). */
int g4_gvocab_has_all_bytes(const g4_gvocab *gv);

/* 1 if token tok may come next (cost: one step per byte of the token). */
int g4_gmatch_token_ok(g4_gmatch *m, const g4_gvocab *gv, int32_t tok);
/* Accepts token tok: 1 and the state advances if token_ok, else 0 and nothing changes. An
 * end-of-generation token is accepted (1) when done and leaves the state as it is. */
int g4_gmatch_accept_token(g4_gmatch *m, const g4_gvocab *gv, int32_t tok);
/* Sets every disallowed token's logit to -INFINITY (logits: g4_gvocab_n_tokens floats). */
g4_status g4_gmatch_mask(g4_gmatch *m, const g4_gvocab *gv, float *logits, g4_error *err);
/* The allowed tokens as a bitset: bit t of bits[t / 32]; (n_tokens + 31) / 32 words. *n_allowed
 * (if not NULL) receives their number. */
g4_status g4_gmatch_allowed(g4_gmatch *m, const g4_gvocab *gv, uint32_t *bits, int *n_allowed, g4_error *err);
/* mask / allowed remember the allowed set of the last 8 states (a state recurs, e.g. after every
 * character inside a string, so a repeated mask costs a copy); this forgets them (for benchmarks). */
void g4_gmatch_forget_masks(g4_gmatch *m);

#endif
