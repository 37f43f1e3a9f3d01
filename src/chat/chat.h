/* Moved to the public header g4_chat.h. */
#include "g4_chat.h"
