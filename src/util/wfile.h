/* Writing a file safely, for every file g4 writes (GGUF files, chat /save, logits --out):
 *   - the target must be absent or a regular file: a device (/dev/full), FIFO, directory, socket or
 *     symbolic link is refused with a clear error and left alone (a symlink is never followed);
 *   - the data goes to a new temporary file in the same directory (PATH.tmp, or PATH.tmp.N when that
 *     exists; created with O_EXCL, so never through a link), which is renamed over the target only after
 *     the complete write was flushed and fsync'ed: a failure at any point leaves the target as it was and
 *     removes the temporary file;
 *   - an existing target keeps its permission bits; a new one gets 0666 minus the umask. */
#ifndef G4_WFILE_H
#define G4_WFILE_H

#include "g4.h"
#include <stdio.h>

typedef struct g4_wfile g4_wfile;

/* G4_ERR_IO (the message names the path and the reason) or G4_ERR_NOMEM; *out is NULL then. */
g4_status g4_wfile_open(g4_wfile **out, const char *path, g4_error *err);
/* the stream to write to (a write error on it makes g4_wfile_commit fail) */
FILE *g4_wfile_stream(g4_wfile *w);
/* the temporary file's name (for messages) */
const char *g4_wfile_tmp_path(const g4_wfile *w);
/* flush, fsync, close, check the target again and rename the temporary file over it; frees w. On
 * failure the temporary file is removed and the target is untouched. */
g4_status g4_wfile_commit(g4_wfile *w, g4_error *err);
/* give up: close and remove the temporary file; frees w (NULL: nothing) */
void g4_wfile_abort(g4_wfile *w);
/* G4_OK when path is absent or a regular file (lstat), else G4_ERR_IO "... is not a regular file" */
g4_status g4_wfile_check_target(const char *path, g4_error *err);

#endif
