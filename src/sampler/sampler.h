/* Moved to the public header g4_sampler.h. */
#include "g4_sampler.h"
