/* The local model store: models by name, as Ollama users expect (docs/models.md).
 *
 *   DIR/manifests/<namespace>/<model>/<tag>.json   one small JSON file per name (lower-case on disk)
 *   DIR/blobs/sha256-<64 hex>                      the GGUF files, content-addressed
 *   DIR/.lock                                       flock'ed while a manifest or blob is committed or removed
 *
 * DIR is --models DIR, else $G4_MODELS, else $XDG_DATA_HOME/g4/models, else ~/.local/share/g4/models
 * (g4_store_default_dir). A manifest is written to a temporary file in its directory, fsync'ed and renamed
 * over the old one (then the directory is fsync'ed): a crash leaves the old manifest or the new one, never a
 * part of one. A blob is a hard link to the user's GGUF when both are on one filesystem (the original is never
 * modified, moved or deleted), else a copy written to a temporary file and renamed; either way its digest is
 * computed from the bytes the blob holds. A blob is removed when no manifest refers to it any more.
 *
 * Names: [namespace/]model[:tag] (g4_name_parse). Every function that takes a model name also takes a GGUF
 * file path where it says "name_or_path": a string ending in ".gguf", or containing '/' and naming an
 * existing file, is that file; anything else is a model name, and when no such model exists but a file of
 * that name does, the file (g4_store_resolve).
 *
 * Like the rest of the library: nothing here prints or exits; every function returns a g4_status and fills
 * err. jansson objects returned are new references the caller json_decref's.
 */
#ifndef G4_STORE_H
#define G4_STORE_H

#include "g4.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- SHA-256 (FIPS 180-4) ----------------------------------------------------------------------------- */

typedef struct g4_sha256 {
    uint32_t h[8];
    uint64_t n;
    uint8_t buf[64];
    size_t nbuf;
} g4_sha256;

void g4_sha256_init(g4_sha256 *c);
void g4_sha256_update(g4_sha256 *c, const void *data, size_t len);
void g4_sha256_final(g4_sha256 *c, uint8_t out[32]);
void g4_sha256_hex(const uint8_t d[32], char hex[65]);
void g4_sha256_buf_hex(const void *data, size_t len, char hex[65]); /* one call: data -> lower-case hex */

/* ---- names ---------------------------------------------------------------------------------------------
 * [namespace/]model[:tag], as Ollama writes them. Each part: 1..80 bytes of ASCII letters, digits, '_', '-',
 * '.', the first a letter, digit or '_' (no '.' in the namespace). The namespace defaults to "library" and
 * the tag to "latest". Matching is case-insensitive: the files are named in lower case, the manifest keeps the
 * spelling of the last create/cp. Anything else is refused with G4_ERR_ARG naming the problem: so no name
 * can be a path that leaves the store ("../x", "a/../../b", "/etc/passwd", "%2e%2e", NUL bytes, a host
 * part "registry/ns/model" - g4 has no registry). */

#define G4_NAME_PART_MAX 80
#define G4_NAME_MAX (3 * G4_NAME_PART_MAX + 3)

typedef struct g4_model_name {
    char ns[G4_NAME_PART_MAX + 1];    /* "library" when not given */
    char model[G4_NAME_PART_MAX + 1];
    char tag[G4_NAME_PART_MAX + 1];   /* "latest" when not given */
} g4_model_name;

/* s[0..len) (may hold NUL bytes: refused) */
g4_status g4_name_parse(const char *s, size_t len, g4_model_name *out, g4_error *err);
/* "model:tag", or "namespace/model:tag" when the namespace is not "library" (buf >= G4_NAME_MAX + 1) */
void g4_name_string(const g4_model_name *n, char *buf, size_t size);
int g4_name_equal(const g4_model_name *a, const g4_model_name *b); /* case-insensitive */
/* Is s a file path rather than a model name: it ends in ".gguf" (any case), or contains '/' and names an
 * existing regular file (or a symlink to one). */
int g4_name_is_path(const char *s);

/* ---- Modelfile -----------------------------------------------------------------------------------------
 * Ollama's syntax: one INSTRUCTION per line (case-insensitive), '#' lines are comments, a value is the rest
 * of the line (trimmed), or "..." (one line: everything between the first and the last quote of the line),
 * or """...""" (any number of lines, kept byte for byte). Instructions:
 *   FROM <file.gguf | model name>   required, once; a relative path is relative to the Modelfile's directory
 *   PARAMETER <name> <value>        num_ctx, num_predict, repeat_last_n, repeat_penalty, temperature, seed,
 *                                   stop (repeatable), top_k, top_p, min_p, presence_penalty,
 *                                   frequency_penalty; typed and range-checked (g4_param_set); each once
 *   SYSTEM <text>                   the system prompt (the last one counts, like Ollama)
 *   TEMPLATE <text>                 kept for reference only: g4 renders Gemma 4's chat format itself
 *   MESSAGE <role> <text>           few-shot history; role user, assistant or system
 *   LICENSE <text>                  repeatable
 *   RENDERER / PARSER <name>        kept for reference only (g4 always uses its Gemma 4 renderer/parser)
 *   REQUIRES <version>              kept (it names an Ollama version; g4 does not check it)
 *   ADAPTER <path>                  refused: G4_ERR_UNSUPPORTED (LoRA adapters are not supported yet)
 * Errors are G4_ERR_ARG (G4_ERR_UNSUPPORTED for ADAPTER and safetensors) with "line N: ..." messages. */

typedef struct g4_mf_message {
    char *role;    /* "system", "user" or "assistant" */
    char *content;
} g4_mf_message;

typedef struct g4_modelfile {
    char *from;                  /* FROM value as written (NULL only in one made by g4_modelfile_new) */
    int from_line;
    json_t *params;              /* object of Ollama option names -> values (stop: array); never NULL */
    char *system, *tmpl, *renderer, *parser, *requires; /* NULL: not given */
    char **license;
    size_t n_license;
    g4_mf_message *messages;
    size_t n_messages;
} g4_modelfile;

#define G4_MODELFILE_MAX_BYTES ((size_t)16 << 20)
#define G4_MAX_STOP 64

/* An empty Modelfile (for programmatic use, e.g. the server's /api/create): set from with g4_mf_set. */
g4_status g4_modelfile_new(g4_modelfile **out, g4_error *err);
g4_status g4_modelfile_parse(const char *text, size_t len, g4_modelfile **out, g4_error *err);
void g4_modelfile_free(g4_modelfile *mf);
/* replace a string field (*field is one of mf's char * members) by a copy of value (NULL: clear) */
g4_status g4_mf_set(char **field, const char *value, g4_error *err);
g4_status g4_mf_add_message(g4_modelfile *mf, const char *role, const char *content, g4_error *err);
g4_status g4_mf_add_license(g4_modelfile *mf, const char *text, g4_error *err);
/* The Modelfile text of mf (malloc'ed, NUL-terminated; free()). Parsing it gives mf back, for every mf the
 * parser can produce; a value that cannot be written in the syntax (a multi-line text holding three quotes)
 * is written as well as possible after a comment saying so. */
g4_status g4_modelfile_text(const g4_modelfile *mf, char **out, g4_error *err);

/* ---- parameters (Ollama option names) ------------------------------------------------------------------ */

/* Parses the text value of PARAMETER name into params (stop is appended, others set). G4_ERR_ARG for an
 * unknown name, a wrong type or a value out of range, the message naming the parameter. */
g4_status g4_param_set(json_t *params, const char *name, const char *value, g4_error *err);
/* Checks a JSON object of options (the API's "options" / "parameters") and returns a normalized copy:
 * integers as integers, stop always an array. Unknown names: an error, or skipped when allow_unknown
 * (Ollama clients send options such as num_gpu that mean nothing to g4). */
g4_status g4_params_check(const json_t *in, int allow_unknown, json_t **out, g4_error *err);
/* Ollama's "parameters" text of /api/show: one "name<padding> value" line per value, names sorted,
 * strings quoted (malloc'ed; free()). */
g4_status g4_params_text(const json_t *params, char **out, g4_error *err);
/* The Ollama names g4_param_set knows, NULL-terminated. */
extern const char *const g4_param_names[];

/* ---- the store ------------------------------------------------------------------------------------------ */

typedef struct g4_store g4_store;

/* The default directory ($G4_MODELS, $XDG_DATA_HOME/g4/models, $HOME/.local/share/g4/models) into buf. */
g4_status g4_store_default_dir(char *buf, size_t size, g4_error *err);
/* Opens the store at dir (NULL: the default). Does not create anything: a missing directory is an empty
 * store (create makes it). */
g4_status g4_store_open(g4_store **out, const char *dir, g4_error *err);
void g4_store_close(g4_store *s);
const char *g4_store_dir(const g4_store *s);

/* Progress of create: status text ("copying model data", "hashing model data", "using existing blob",
 * "writing manifest", "success"), bytes done / total (0 / 0 for steps without a size). May be NULL. */
typedef void (*g4_store_progress_fn)(void *user, const char *status, uint64_t done, uint64_t total);

enum {
    G4_CREATE_COPY = 1, /* always copy the GGUF into the store, never hard-link it */
};

/* Creates (or replaces) model `name` from a Modelfile. mf->from is a GGUF path (relative ones against
 * base_dir, NULL: the current directory) or an existing model's name, whose blob, parameters, system prompt,
 * template, messages and license the new model starts from (mf's values replace them: parameters one by
 * one, messages / licenses as a whole). The GGUF must open as a Gemma 4 model (g4_model_open). */
g4_status g4_store_create(g4_store *s, const char *name, const g4_modelfile *mf, const char *base_dir, int flags,
                          g4_store_progress_fn progress, void *user, g4_error *err);
/* The same from a GGUF path and options (params: NULL or an object for g4_params_check; system may be NULL). */
g4_status g4_store_create_gguf(g4_store *s, const char *name, const char *gguf_path, const json_t *params,
                               const char *system, int flags, g4_store_progress_fn progress, void *user,
                               g4_error *err);

/* A model as stored (or a GGUF file named by its path). */
typedef struct g4_store_model {
    char *name;       /* "model:tag" / "ns/model:tag" as created; for a file, the path as given */
    char *path;       /* the GGUF file to open: the blob, or the file */
    int is_file;      /* 1: name_or_path was a file, not a stored model (the fields below are empty) */
    char digest[65];  /* the model's ID: SHA-256 of its manifest without "name" and "from" (hex); "" for a file */
    char blob[72];    /* "sha256:<hex>" of the GGUF; "" for a file */
    uint64_t size;    /* bytes of the GGUF */
    int64_t modified; /* Unix time of the manifest (of the file for a file) */
    json_t *params;   /* Ollama option names -> values; never NULL */
    char *system;     /* NULL: none */
    char *tmpl;       /* TEMPLATE, kept for reference (NULL: none) */
    json_t *messages; /* [{"role","content"}]; never NULL */
    json_t *license;  /* [string]; never NULL */
    char *from;       /* what FROM said (NULL for a file) */
    char *renderer, *parser, *requires;
    json_t *details;  /* Ollama's details: format, family, families, parameter_size, quantization_level,
                         parent_model; never NULL */
} g4_store_model;

void g4_store_model_free(g4_store_model *m);

/* name_or_path -> model (see the top of this file for which it is). s may be NULL: files only. A name that is
 * not in the store and no file: G4_ERR_ARG "model 'x' not found". */
g4_status g4_store_resolve(g4_store *s, const char *name_or_path, g4_store_model **out, g4_error *err);
/* A stored model by name only (no paths). */
g4_status g4_store_get(g4_store *s, const char *name, g4_store_model **out, g4_error *err);
/* 1 if a model of that name is stored, 0 if not, -1 if name is not a valid name (server: 404 vs 400). */
int g4_store_has(g4_store *s, const char *name);

/* Every stored model, sorted by name (*out: array of *n models; g4_store_list_free). Manifests that cannot be
 * read are skipped and counted in *n_bad (may be NULL). */
g4_status g4_store_list(g4_store *s, g4_store_model ***out, size_t *n, size_t *n_bad, g4_error *err);
void g4_store_list_free(g4_store_model **m, size_t n);
/* The body of Ollama's GET /api/tags: {"models":[{"name","model","modified_at","size","digest","details"}]} */
g4_status g4_store_tags_json(g4_store *s, json_t **out, g4_error *err);

/* The body of Ollama's POST /api/show for a name or path: license, modelfile, parameters, template, system,
 * details, messages, model_info (the GGUF metadata; arrays of more than 5 values left empty unless verbose,
 * like Ollama), capabilities (["completion","tools","thinking"] for Gemma 4), modified_at; plus "g4":
 * {"path", "template_note"} (where the GGUF is; that TEMPLATE is kept for reference only). */
g4_status g4_store_show(g4_store *s, const char *name_or_path, int verbose, json_t **out, g4_error *err);
/* The Modelfile of a stored model (FROM names its blob's path), as `show --modelfile` prints it. */
g4_status g4_store_modelfile_text(g4_store *s, const char *name, char **out, g4_error *err);

/* Ollama's details and model_info of a GGUF file (metadata only; no tensor data is read). */
g4_status g4_gguf_details(const char *path, json_t **details, g4_error *err);
g4_status g4_gguf_model_info(const char *path, int verbose, json_t **info, g4_error *err);
/* "4.6B", "980M", "12K": Ollama's parameter_size of n parameters (buf >= 16) */
void g4_param_size_string(uint64_t n, char *buf, size_t size);
/* Ollama's name of a general.file_type value ("Q4_K_M", "F16", ...), NULL if unknown */
const char *g4_file_type_name(uint32_t ft);

/* Copies (another name for the same blob and settings; replaces dst if it exists). */
g4_status g4_store_copy(g4_store *s, const char *src, const char *dst, g4_error *err);
/* Removes a name; its blob too when no other manifest refers to it. */
g4_status g4_store_delete(g4_store *s, const char *name, g4_error *err);
/* Removes blobs no manifest refers to and temporary files a crash left (older than an hour). */
g4_status g4_store_gc(g4_store *s, int *n_removed, g4_error *err);

/* Blobs for the server's HEAD/POST /api/blobs/:digest ("sha256:<hex>" or "sha256-<hex>"). */
g4_status g4_store_blob_path(const g4_store *s, const char *digest, char *buf, size_t size, g4_error *err);
int g4_store_blob_has(const g4_store *s, const char *digest); /* 1 yes, 0 no, -1 bad digest */
/* Stores the bytes read(user, buf, size) returns (>0 bytes, 0 at the end, <0 error) as a blob, refusing them
 * (and storing nothing) when their SHA-256 is not `digest`. */
typedef long long (*g4_store_read_fn)(void *user, void *buf, size_t size);
g4_status g4_store_blob_write(g4_store *s, const char *digest, g4_store_read_fn read, void *user, g4_error *err);

#endif
