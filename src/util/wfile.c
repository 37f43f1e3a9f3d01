#include "util/wfile.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct g4_wfile {
    FILE *f;
    int fd;
    char *path, *tmp;
};

static const char *kind(mode_t m) {
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* lstat: 0 absent, 1 regular (mode in *st), or an error filled in */
static g4_status target_state(const char *path, struct stat *st, int *exists, g4_error *err) {
    *exists = 0;
    if (lstat(path, st) != 0) {
        if (errno == ENOENT) return G4_OK;
        return g4_fail(err, G4_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    if (!S_ISREG(st->st_mode))
        return g4_fail(err, G4_ERR_IO, "'%s' is %s, not a regular file: not replaced", path, kind(st->st_mode));
    *exists = 1;
    return G4_OK;
}

g4_status g4_wfile_check_target(const char *path, g4_error *err) {
    struct stat st;
    int exists;
    if (!path || !*path) return g4_fail(err, G4_ERR_ARG, "no output path");
    return target_state(path, &st, &exists, err);
}

static void wfile_free(g4_wfile *w) {
    free(w->path);
    free(w->tmp);
    free(w);
}

g4_status g4_wfile_open(g4_wfile **out, const char *path, g4_error *err) {
    *out = NULL;
    if (!path || !*path) return g4_fail(err, G4_ERR_ARG, "no output path");
    struct stat st;
    int exists;
    g4_status s = target_state(path, &st, &exists, err);
    if (s) return s;
    g4_wfile *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (w) w->path = strdup(path);
    if (w) w->tmp = malloc(n + 16);
    if (!w || !w->path || !w->tmp) {
        if (w) wfile_free(w);
        return g4_fail(err, G4_ERR_NOMEM, "out of memory");
    }
    /* O_EXCL: a new file, never an existing one nor the target of a link planted under that name */
    int fd = -1;
    for (int i = 0; i < 100 && fd < 0; i++) {
        if (i) snprintf(w->tmp, n + 16, "%s.tmp.%d", path, i);
        else snprintf(w->tmp, n + 16, "%s.tmp", path);
        fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        s = g4_fail(err, G4_ERR_IO, "cannot create '%s': %s", w->tmp, strerror(errno));
        wfile_free(w);
        return s;
    }
    if (exists) (void)fchmod(fd, st.st_mode & 07777); /* best effort: the file's permissions stay */
    w->fd = fd;
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        s = g4_fail(err, G4_ERR_IO, "cannot create '%s': %s", w->tmp, strerror(errno));
        close(fd);
        unlink(w->tmp);
        wfile_free(w);
        return s;
    }
    *out = w;
    return G4_OK;
}

FILE *g4_wfile_stream(g4_wfile *w) { return w->f; }
const char *g4_wfile_tmp_path(const g4_wfile *w) { return w->tmp; }

void g4_wfile_abort(g4_wfile *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    wfile_free(w);
}

/* the directory entry of the rename made durable too (best effort) */
static void sync_dir(const char *path) {
    char *d = strdup(path);
    if (!d) return;
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(d);
}

g4_status g4_wfile_commit(g4_wfile *w, g4_error *err) {
    g4_status s = G4_OK;
    if (fflush(w->f) != 0 || ferror(w->f))
        s = g4_fail(err, G4_ERR_IO, "writing '%s' failed: %s", w->tmp, errno ? strerror(errno) : "I/O error");
    if (!s && fsync(w->fd) != 0 && errno != EINVAL && errno != EROFS)
        s = g4_fail(err, G4_ERR_IO, "cannot sync '%s': %s", w->tmp, strerror(errno));
    int e = fclose(w->f);
    w->f = NULL;
    if (e != 0 && !s) s = g4_fail(err, G4_ERR_IO, "cannot close '%s': %s", w->tmp, strerror(errno));
    if (!s) { /* the target may have changed meanwhile: a device or link put there is still not replaced */
        struct stat st;
        int exists;
        s = target_state(w->path, &st, &exists, err);
    }
    if (!s && rename(w->tmp, w->path) != 0)
        s = g4_fail(err, G4_ERR_IO, "cannot rename '%s' to '%s': %s", w->tmp, w->path, strerror(errno));
    if (s) unlink(w->tmp);
    else sync_dir(w->path);
    wfile_free(w);
    return s;
}
