/* Moved to the public header g4_conv.h. */
#include "g4_conv.h"
