/* Internals of src/grammar: the grammar builder (used by the schema and pattern compilers) and the
 * compiled grammar the matcher walks.
 *
 * A grammar is a set of rules; a rule is a list of alternatives; an alternative is a sequence of
 * symbols, each a rule or a byte set (256-bit). Symbols are uint32: a rule id, or GS_CS | charset id.
 * Builder functions never fail individually: the first error is kept in gb.st (sticky) and later
 * calls return the empty rule, so a compiler checks gb.st at the end (or whenever convenient). */
#ifndef G4_GRAMMAR_INT_H
#define G4_GRAMMAR_INT_H

#include "grammar/grammar.h"
#include "util/util.h"

#include <stdarg.h>
#include <stdint.h>

#define GS_CS 0x80000000u
#define GS_END 0xFFFFFFFFu
#define GR_NONE 0u /* the rule with no alternative (empty language) */
#define GR_EPS 1u  /* the rule with one empty alternative */
#define G_INF 0xFFFFFFFFu

#define G_MAX_SYMS 2000000u
#define G_MAX_RULES 500000u
#define G_MAX_REP 100000

typedef struct { uint32_t off, len; } galt;
typedef struct { galt *alts; uint32_t n, cap; } grule;

typedef struct gb {
    grule *rules;
    uint32_t n_rules, cap_rules;
    uint32_t *pool;
    size_t n_pool, cap_pool;
    uint8_t (*cs)[32];
    uint32_t n_cs, cap_cs;
    uint32_t *cs_ht; /* charset hash: id + 1, 0 empty */
    uint32_t cs_htcap;
    g4_status st;
    g4_error *err;
    /* memo of common rules (0 = not built yet) */
    uint32_t r_strchar, r_hex, r_digit, r_ws, r_any_str;
} gb;

g4_status gb_init(gb *b, g4_error *err);
void gb_free(gb *b);
/* Records the first error (printf-like message) and returns it. */
g4_status gb_fail(gb *b, g4_status code, const char *fmt, ...) G4_PRINTF(3, 4);

uint32_t gb_rule(gb *b);                                     /* new empty rule */
void gb_add(gb *b, uint32_t rule, const uint32_t *syms, size_t n); /* add an alternative */
void gb_addv(gb *b, uint32_t rule, int n, ...);              /* n uint32_t symbols */
uint32_t gb_seq(gb *b, const uint32_t *syms, size_t n);      /* one alternative (n == 1: that symbol) */
uint32_t gb_seqv(gb *b, int n, ...);
uint32_t gb_altv(gb *b, int n, ...);                          /* n alternatives of one symbol each */
uint32_t gb_set(gb *b, const uint8_t bm[32]);                /* byte set symbol */
uint32_t gb_byte(gb *b, unsigned c);
uint32_t gb_range(gb *b, unsigned lo, unsigned hi);
uint32_t gb_bytes_of(gb *b, const char *chars);              /* set of the listed bytes */
uint32_t gb_lit(gb *b, const char *s, size_t n);             /* exactly these bytes */
uint32_t gb_opt(gb *b, uint32_t sym);
/* sym repeated min..max times (max < 0: no maximum), with sep between repetitions (sep 0: none) */
uint32_t gb_rep(gb *b, uint32_t sym, long min, long max, uint32_t sep);
/* The UTF-8 encodings of the code points in ranges (pairs lo, hi; any order, may overlap; surrogates
 * are left out): a rule matching exactly one such character. */
uint32_t gb_cps(gb *b, const uint32_t *ranges, size_t n_pairs);

/* JSON pieces shared by the compilers */
uint32_t gb_strchar(gb *b);  /* one character of JSON string content: raw UTF-8 or an escape */
uint32_t gb_digit(gb *b);
/* JSON text of one code point c inside a string (raw UTF-8, or an escape for " \ and controls):
 * a rule matching that. */
uint32_t gb_json_char(gb *b, uint32_t c);
/* Characters from code point ranges, written as JSON string content (raw UTF-8; " \ and control
 * characters as escapes). */
uint32_t gb_json_cps(gb *b, const uint32_t *ranges, size_t n_pairs);

/* pattern (regular expression subset) -> rule for the JSON string content (without the quotes).
 * path names the keyword in messages. */
uint32_t gb_pattern(gb *b, const char *re, size_t len, const char *path);

struct g4_grammar {
    uint32_t *elems; /* alternatives: symbols then GS_END */
    size_t n_elems;
    uint32_t *alt_off;   /* rule r: alternatives alt_start[alt_off[r] .. alt_off[r + 1]) */
    uint32_t *alt_start; /* element index of each alternative's first symbol */
    uint32_t n_rules, n_alts;
    uint8_t (*cs)[32];
    uint32_t n_cs;
    uint32_t root;
    uint32_t *rest; /* per element: fewest bytes from it to the end of its alternative */
    size_t n_symbols;
};

/* Turns the builder into a grammar with root rule `root`: keeps only productive alternatives (G4_ERR_ARG
 * when the root can derive no finite text), rejects left recursion. Frees nothing of b. */
g4_status gb_finish(gb *b, uint32_t root, g4_grammar **out, g4_error *err);

#endif
