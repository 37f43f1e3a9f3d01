/* Helpers shared by the store's files (not part of its API). */
#ifndef G4_STORE_INTERNAL_H
#define G4_STORE_INTERNAL_H

#include <stddef.h>

/* length of the valid UTF-8 sequence at p (before end), 0 if it is not one */
size_t g4_store_utf8_len(const unsigned char *p, const unsigned char *end);

#endif
