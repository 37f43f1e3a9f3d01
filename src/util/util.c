#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

g4_status g4_fail(g4_error *err, g4_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *g4_status_str(g4_status s) {
    switch (s) {
    case G4_OK: return "ok";
    case G4_ERR_IO: return "I/O error";
    case G4_ERR_FORMAT: return "malformed file";
    case G4_ERR_UNSUPPORTED: return "unsupported";
    case G4_ERR_NOMEM: return "out of memory";
    case G4_ERR_ARG: return "invalid argument";
    case G4_ERR_CONTEXT: return "context full";
    case G4_ERR_INTERRUPTED: return "interrupted";
    case G4_ERR_BUSY: return "busy";
    }
    return "unknown status";
}

double g4_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
