/* Moved to the public header g4_grammar.h. */
#include "g4_grammar.h"
