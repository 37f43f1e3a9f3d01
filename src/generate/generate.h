/* Moved to the public header g4_generate.h. */
#include "g4_generate.h"
