/* Internal helpers of src/chat: a growable byte buffer, UTF-8, and the few Python / Jinja semantics Google's chat
 * template relies on (str(), repr(), str.upper/lower/strip, truthiness, ==, dictsort, iteration), applied to
 * jansson values. A NULL json_t* plays Jinja's Undefined (a missing key); a JSON null is Python's None. */
#ifndef G4_CHAT_PY_H
#define G4_CHAT_PY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- byte buffer: appends never fail loudly; `oom` records an allocation failure ---------------------------------- */
typedef struct cbuf {
    char *p;
    size_t n, cap;
    int oom;
} cbuf;

void cb_put(cbuf *b, const void *s, size_t n);
void cb_puts(cbuf *b, const char *s);
void cb_putc(cbuf *b, char c);
void cb_printf(cbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cb_free(cbuf *b);
/* NUL-terminates and hands the bytes over (NULL when out of memory); the buffer is empty afterwards */
char *cb_take(cbuf *b, size_t *len);

/* ---- UTF-8 -------------------------------------------------------------------------------------------------------- */
/* decode one code point at s[0..n) (n >= 1); an invalid byte decodes as itself with length 1 */
uint32_t u8_decode(const char *s, size_t n, size_t *len);
void u8_encode(cbuf *b, uint32_t cp);

/* ---- Python string semantics ---------------------------------------------------------------------------------------- */
int py_isspace(uint32_t cp);
/* str.strip(): the [*off, *off + *len) part of s */
void py_strip(const char *s, size_t n, size_t *off, size_t *len);
void py_upper(cbuf *b, const char *s, size_t n);
void py_lower(cbuf *b, const char *s, size_t n);
/* repr(float) */
void py_float(cbuf *b, double x);

/* ---- values ------------------------------------------------------------------------------------------------------ */
/* str(v) as Jinja prints it: Undefined -> "", None -> "None", True, 1.5, [1, 'a'], {'k': None} */
void py_str(cbuf *b, const json_t *v);
void py_repr(cbuf *b, const json_t *v);
/* Python truthiness (Undefined is false) */
int py_truthy(const json_t *v);
/* a == b in Python (None stands for a missing value): 1 == 1.0 == True, dicts regardless of order */
int py_eq(const json_t *a, const json_t *b);
/* obj[key] as the sandboxed template sees it: the value, or NULL (Undefined) when obj is not an object or lacks key */
json_t *py_get(const json_t *obj, const char *key);
int py_is_str(const json_t *v, const char *s);  /* v is the string s */

/* dictsort: the items of an object sorted by key.lower() (Python's str.lower, code point order), ties in
 * insertion order. Returns a malloc'ed array of n pairs (NULL with *n = 0 for an empty object or when out of
 * memory: *oom tells). */
typedef struct py_item {
    const char *key;
    size_t klen;
    json_t *value;
} py_item;
py_item *py_dictsort(const json_t *obj, size_t *n, int *oom);

/* `for x in v`: a new JSON array of the items of a list, the characters of a string, the keys of a dict. NULL with
 * *not_iterable set for anything else (a number, a bool, None), NULL with it clear when out of memory. */
json_t *py_iter(const json_t *v, int *not_iterable);

#endif
