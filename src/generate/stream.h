/* Moved to the public header g4_stream.h. */
#include "g4_stream.h"
