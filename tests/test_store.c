/* The model store (src/store): SHA-256 against the FIPS 180-2 / NIST vectors, names (traversal attempts
 * refused), the Modelfile parser (errors with line numbers, round trip through the writer), parameters,
 * create / list / show / cp / rm in a temporary directory, crash safety of manifests. */
#include "store/store.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[256];
static char g_model[512], g_model2[512];

static void sha_hex(const char *s, size_t n, char hex[65]) { g4_sha256_buf_hex(s, n, hex); }

static void test_sha256(void) {
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha_hex(v[i].in, strlen(v[i].in), hex);
        CHECK(!strcmp(hex, v[i].out), "sha256(\"%s\") = %s", v[i].in, hex);
    }
    /* one million 'a', fed in uneven pieces */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    g4_sha256 c;
    g4_sha256_init(&c);
    for (size_t off = 0, k = 1; off < 1000000; k = k * 7 % 1000 + 1) {
        size_t n = off + k > 1000000 ? 1000000 - off : k;
        g4_sha256_update(&c, a + off, n);
        off += n;
    }
    uint8_t d[32];
    g4_sha256_final(&c, d);
    g4_sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);
    /* every length around the block boundaries: pieces == one shot */
    for (size_t n = 0; n < 200; n++) {
        char one[65], two[65];
        sha_hex(a, n, one);
        g4_sha256_init(&c);
        for (size_t i = 0; i < n; i++) g4_sha256_update(&c, a + i, 1);
        g4_sha256_final(&c, d);
        g4_sha256_hex(d, two);
        CHECK(!strcmp(one, two), "length %zu", n);
    }
    free(a);
}

static void test_names(void) {
    static const struct {
        const char *in, *ns, *model, *tag, *str;
    } ok[] = {
        {"gemma4", "library", "gemma4", "latest", "gemma4:latest"},
        {"gemma4:e2b", "library", "gemma4", "e2b", "gemma4:e2b"},
        {"me/my-model.v2:Q4_K_M", "me", "my-model.v2", "Q4_K_M", "me/my-model.v2:Q4_K_M"},
        {"library/x", "library", "x", "latest", "x:latest"},
        {"_a:_b", "library", "_a", "_b", "_a:_b"},
        {"A1.b-c_d", "library", "A1.b-c_d", "latest", "A1.b-c_d:latest"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        g4_model_name n;
        g4_error e = {0};
        g4_status st = g4_name_parse(ok[i].in, strlen(ok[i].in), &n, &e);
        CHECK(st == G4_OK, "%s: %s", ok[i].in, e.msg);
        if (st) continue;
        char s[G4_NAME_MAX + 1];
        g4_name_string(&n, s, sizeof s);
        CHECK(!strcmp(n.ns, ok[i].ns) && !strcmp(n.model, ok[i].model) && !strcmp(n.tag, ok[i].tag) &&
                  !strcmp(s, ok[i].str),
              "%s -> %s/%s:%s (%s)", ok[i].in, n.ns, n.model, n.tag, s);
    }
    static const char *bad[] = {
        "", "../x", "..", ".", "a/../../b", "/etc/passwd", "a/b/c", "./x", "x/", "/x", ":tag", "x:", "x::y",
        "%2e%2e", "%2e%2e/x", "a\\b", "a b", ".hidden", "-x", "x/-y", "ns.dot/x", "x:.tag", "x:-t", "é", "a:b/c",
        "a\tb", "x:y:z", "~/x", "a*", "con?", "x\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 81 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g4_model_name n;
        g4_error e = {0};
        g4_status st = g4_name_parse(bad[i], strlen(bad[i]), &n, &e);
        CHECK(st == G4_ERR_ARG && e.msg[0], "'%s' accepted", bad[i]);
    }
    /* NUL inside */
    g4_model_name n;
    g4_error e = {0};
    CHECK(g4_name_parse("ab\0../c", 7, &n, &e) == G4_ERR_ARG && strstr(e.msg, "NUL"), "NUL: %s", e.msg);
    /* 80 is the limit */
    char l80[81];
    memset(l80, 'm', 80);
    l80[80] = 0;
    CHECK(g4_name_parse(l80, 80, &n, &e) == G4_OK, "80 characters");
    /* case-insensitive */
    g4_model_name a, b;
    g4_name_parse("Me/Gemma:E2B", 12, &a, NULL);
    g4_name_parse("me/gemma:e2b", 12, &b, NULL);
    CHECK(g4_name_equal(&a, &b), "case");
    g4_name_parse("gemma", 5, &a, NULL);
    g4_name_parse("library/GEMMA:latest", 20, &b, NULL);
    CHECK(g4_name_equal(&a, &b), "defaults");
    /* paths */
    CHECK(g4_name_is_path("x.gguf") && g4_name_is_path("a/b/C.GGUF") && !g4_name_is_path("gemma4:e2b") &&
              !g4_name_is_path("me/model") && g4_name_is_path(g_model),
          "is_path");
}

static g4_modelfile *parse(const char *t, g4_error *e) {
    g4_modelfile *mf = NULL;
    memset(e, 0, sizeof *e);
    if (g4_modelfile_parse(t, strlen(t), &mf, e)) return NULL;
    return mf;
}

static int mf_equal(const g4_modelfile *a, const g4_modelfile *b) {
#define SEQ(x, y) ((!(x) && !(y)) || ((x) && (y) && !strcmp(x, y)))
    if (!SEQ(a->from, b->from) || !SEQ(a->system, b->system) || !SEQ(a->tmpl, b->tmpl) ||
        !SEQ(a->renderer, b->renderer) || !SEQ(a->parser, b->parser) || !SEQ(a->requires, b->requires))
        return 0;
    if (!json_equal(a->params, b->params) || a->n_messages != b->n_messages || a->n_license != b->n_license) return 0;
    for (size_t i = 0; i < a->n_messages; i++)
        if (!SEQ(a->messages[i].role, b->messages[i].role) || !SEQ(a->messages[i].content, b->messages[i].content))
            return 0;
    for (size_t i = 0; i < a->n_license; i++)
        if (!SEQ(a->license[i], b->license[i])) return 0;
    return 1;
#undef SEQ
}

static void roundtrip(const g4_modelfile *mf, const char *what) {
    char *t = NULL;
    g4_error e = {0};
    CHECK(g4_modelfile_text(mf, &t, &e) == G4_OK, "%s: text: %s", what, e.msg);
    if (!t) return;
    g4_modelfile *b = parse(t, &e);
    CHECK(b && mf_equal(mf, b), "%s: round trip: %s\n%s", what, e.msg, t);
    g4_modelfile_free(b);
    free(t);
}

static void test_modelfile(void) {
    g4_error e;
    const char *full = "# a comment\n"
                       "  from ./model.gguf  \r\n"
                       "\n"
                       "Parameter temperature 0.7\n"
                       "PARAMETER num_ctx 8192\n"
                       "PARAMETER stop <end_of_turn>\n"
                       "PARAMETER stop \"<|x|> \"\n"
                       "PARAMETER seed -1\n"
                       "PARAMETER top_k 40\n"
                       "PARAMETER top_p .9\n"
                       "PARAMETER min_p 0.05\n"
                       "PARAMETER repeat_penalty 1.1\n"
                       "PARAMETER repeat_last_n 64\n"
                       "PARAMETER num_predict -1\n"
                       "PARAMETER presence_penalty 0.5\n"
                       "PARAMETER frequency_penalty -0.5\n"
                       "SYSTEM \"\"\"\nYou are Mario.\n  # not a comment\nFROM not an instruction\n\"\"\"\n"
                       "TEMPLATE \"\"\"{{ .System }} {{ .Prompt }}\"\"\"\n"
                       "MESSAGE user Is Toronto in Canada?\n"
                       "message ASSISTANT \"yes\"\n"
                       "MESSAGE system \"\"\n"
                       "LICENSE \"\"\"line one\nline two\"\"\"\n"
                       "LICENSE second \"quoted\" word\n"
                       "REQUIRES 0.5.0\n"
                       "RENDERER gemma4\n"
                       "PARSER gemma4\n";
    g4_modelfile *mf = parse(full, &e);
    CHECK(mf, "full: %s", e.msg);
    if (mf) {
        CHECK(!strcmp(mf->from, "./model.gguf") && mf->from_line == 2, "from '%s' line %d", mf->from, mf->from_line);
        CHECK(!strcmp(mf->system, "\nYou are Mario.\n  # not a comment\nFROM not an instruction\n"), "system '%s'", mf->system);
        CHECK(!strcmp(mf->tmpl, "{{ .System }} {{ .Prompt }}"), "template");
        json_t *p = mf->params;
        CHECK(json_is_real(json_object_get(p, "temperature")) && json_real_value(json_object_get(p, "temperature")) == 0.7, "temperature");
        CHECK(json_integer_value(json_object_get(p, "num_ctx")) == 8192 && json_is_integer(json_object_get(p, "num_ctx")), "num_ctx");
        CHECK(json_integer_value(json_object_get(p, "seed")) == -1, "seed");
        CHECK(json_real_value(json_object_get(p, "top_p")) == 0.9, "top_p");
        json_t *stop = json_object_get(p, "stop");
        CHECK(json_array_size(stop) == 2 && !strcmp(json_string_value(json_array_get(stop, 0)), "<end_of_turn>") &&
                  !strcmp(json_string_value(json_array_get(stop, 1)), "<|x|> "),
              "stop");
        CHECK(json_object_size(p) == 12, "%zu params", json_object_size(p));
        CHECK(mf->n_messages == 3 && !strcmp(mf->messages[0].role, "user") &&
                  !strcmp(mf->messages[0].content, "Is Toronto in Canada?") && !strcmp(mf->messages[1].role, "assistant") &&
                  !strcmp(mf->messages[1].content, "yes") && !strcmp(mf->messages[2].content, ""),
              "messages");
        CHECK(mf->n_license == 2 && !strcmp(mf->license[0], "line one\nline two") &&
                  !strcmp(mf->license[1], "second \"quoted\" word"),
              "license '%s'", mf->n_license > 1 ? mf->license[1] : "");
        CHECK(!strcmp(mf->requires, "0.5.0") && !strcmp(mf->renderer, "gemma4") && !strcmp(mf->parser, "gemma4"), "requires");
        roundtrip(mf, "full");
        char *ptxt = NULL;
        CHECK(g4_params_text(mf->params, &ptxt, &e) == G4_OK && ptxt &&
                  strstr(ptxt, "stop                           \"<end_of_turn>\"\n") &&
                  strstr(ptxt, "temperature                    0.7"),
              "params text:\n%s", ptxt);
        free(ptxt);
        g4_modelfile_free(mf);
    }
    /* SYSTEM twice: the last counts; quoted values keep their quotes inside */
    mf = parse("FROM x\nSYSTEM one\nSYSTEM \"two \"\"\n", &e);
    CHECK(mf && !strcmp(mf->system, "two \""), "system twice: %s", mf ? mf->system : e.msg);
    g4_modelfile_free(mf);
    /* values the writer must quote */
    const char *tricky[] = {"", " lead", "trail ", "\"q", "a\"\"\"b", "x\r", "#hash", "tab\tin", "\"", "\"\"",
                            "two\nlines", "ends\n", "\nstarts", "a\"\"\"", "\"\"x"};
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        g4_modelfile *m;
        g4_modelfile_new(&m, NULL);
        g4_mf_set(&m->from, "m", NULL);
        g4_mf_set(&m->system, tricky[i], NULL);
        g4_mf_add_message(m, "user", tricky[i], NULL);
        if (tricky[i][0]) g4_param_set(m->params, "stop", tricky[i], NULL);
        const char *x = tricky[i];
        size_t L = strlen(x);
        int single = !strchr(x, '\n') && !(x[0] == '"' && (x[1] == '"' || !x[1]));
        int triple = !strstr(x, "\"\"\"") && !(L && x[L - 1] == '"');
        int representable = single || triple;
        if (representable) roundtrip(m, tricky[i]);
        g4_modelfile_free(m);
    }
    /* errors, each naming its line */
    static const struct {
        const char *text, *want;
        g4_status code;
    } errs[] = {
        {"FROM x\nPARAMETER temperature hot\n", "line 2: parameter temperature: 'hot' is not a number", G4_ERR_ARG},
        {"FROM x\n\nPARAMETER num_gpu 99\n", "line 3: parameter 'num_gpu' is an Ollama option g4 does not use", G4_ERR_ARG},
        {"FROM x\nPARAMETER bogus 1\n", "line 2: unknown parameter 'bogus'", G4_ERR_ARG},
        {"FROM x\nPARAMETER top_k 1.5\n", "line 2: parameter top_k: '1.5' is not an integer", G4_ERR_ARG},
        {"FROM x\nPARAMETER top_p 2\n", "line 2: parameter top_p: '2' is out of range", G4_ERR_ARG},
        {"FROM x\nPARAMETER num_ctx 99999999999999999999\n", "line 2: parameter num_ctx", G4_ERR_ARG},
        {"FROM x\nPARAMETER temperature nan\n", "line 2: parameter temperature", G4_ERR_ARG},
        {"FROM x\nPARAMETER temperature -1\n", "line 2: parameter temperature", G4_ERR_ARG},
        {"FROM x\nPARAMETER temperature\n", "line 2: PARAMETER needs a value", G4_ERR_ARG},
        {"FROM x\nPARAMETER\n", "line 2: PARAMETER needs a parameter name", G4_ERR_ARG},
        {"FROM x\nPARAMETER seed 1\nPARAMETER seed 2\n", "line 3: PARAMETER seed given twice (first on line 2)", G4_ERR_ARG},
        {"FROM x\nFROM y\n", "line 2: a second FROM (the first is on line 1)", G4_ERR_ARG},
        {"# nothing\nSYSTEM hi\n", "no FROM line", G4_ERR_ARG},
        {"FROM x\nBOGUS y\n", "line 2: unknown instruction 'BOGUS'", G4_ERR_ARG},
        {"FROM x\nFROM: y\n", "line 2: unknown instruction 'FROM:'", G4_ERR_ARG},
        {"FROM x\nSYSTEM \"\"\"\nnever closed\n", "line 2: SYSTEM: the \"\"\" is never closed", G4_ERR_ARG},
        {"FROM x\nSYSTEM \"\"\"a\nb\"\"\" tail\n", "line 3: SYSTEM: unexpected text after the closing", G4_ERR_ARG},
        {"FROM x\nSYSTEM \"open\n", "line 2: SYSTEM: the quote is not closed", G4_ERR_ARG},
        {"FROM x\nMESSAGE tool hi\n", "line 2: MESSAGE role must be user, assistant or system, not 'tool'", G4_ERR_ARG},
        {"FROM x\nMESSAGE user\n", "line 2: MESSAGE needs a value", G4_ERR_ARG},
        {"FROM x\nADAPTER ./lora.gguf\n", "line 2: ADAPTER: LoRA adapters are not supported yet", G4_ERR_UNSUPPORTED},
        {"FROM\n", "line 1: FROM needs a value", G4_ERR_ARG},
        {"FROM x\nSYSTEM \xff\n", "line 2: not valid UTF-8", G4_ERR_ARG},
        {"FROM x\n\n\nPARAMETER stop \"\"\n", "line 4: parameter stop: an empty stop string", G4_ERR_ARG},
    };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        mf = parse(errs[i].text, &e);
        CHECK(!mf && e.code == errs[i].code && strstr(e.msg, errs[i].want), "'%s': got '%s'", errs[i].text, e.msg);
        g4_modelfile_free(mf);
    }
    /* NUL byte */
    g4_modelfile *m2 = NULL;
    CHECK(g4_modelfile_parse("FROM x\nSYSTEM a\0b\n", 17, &m2, &e) == G4_ERR_ARG && strstr(e.msg, "line 2: a NUL byte"), "NUL: %s", e.msg);
    /* 65 stop strings */
    char big[8192] = "FROM x\n";
    for (int i = 0; i < 65; i++) snprintf(big + strlen(big), sizeof big - strlen(big), "PARAMETER stop s%d\n", i);
    mf = parse(big, &e);
    CHECK(!mf && strstr(e.msg, "line 66: parameter stop: more than 64"), "stops: %s", e.msg);
    /* JSON parameters */
    json_error_t je;
    json_t *in = json_loads("{\"temperature\": 1, \"top_k\": 40.0, \"stop\": \"x\", \"num_gpu\": 1}", 0, &je), *out = NULL;
    CHECK(g4_params_check(in, 0, &out, &e) == G4_ERR_ARG && strstr(e.msg, "num_gpu"), "unknown json: %s", e.msg);
    CHECK(g4_params_check(in, 1, &out, &e) == G4_OK && json_is_real(json_object_get(out, "temperature")) &&
              json_is_integer(json_object_get(out, "top_k")) && json_array_size(json_object_get(out, "stop")) == 1 &&
              !json_object_get(out, "num_gpu"),
          "json: %s", e.msg);
    json_decref(out);
    json_decref(in);
    in = json_loads("{\"top_k\": \"40\"}", 0, &je);
    CHECK(g4_params_check(in, 0, &out, &e) == G4_ERR_ARG && strstr(e.msg, "top_k"), "string top_k: %s", e.msg);
    json_decref(in);
    in = json_loads("{\"stop\": [\"a\", 3]}", 0, &je);
    CHECK(g4_params_check(in, 0, &out, &e) == G4_ERR_ARG && strstr(e.msg, "stop"), "stop [3]: %s", e.msg);
    json_decref(in);
    char ps[16];
    g4_param_size_string(4600000000ull, ps, sizeof ps);
    CHECK(!strcmp(ps, "4.6B"), "%s", ps);
    g4_param_size_string(8000000000ull, ps, sizeof ps);
    CHECK(!strcmp(ps, "8B"), "%s", ps);
    g4_param_size_string(137500000ull, ps, sizeof ps);
    CHECK(!strcmp(ps, "137.50M"), "%s", ps);
    g4_param_size_string(765432, ps, sizeof ps);
    CHECK(!strcmp(ps, "765K"), "%s", ps);
    CHECK(!strcmp(g4_file_type_name(15), "Q4_K_M") && !strcmp(g4_file_type_name(7), "Q8_0") && !g4_file_type_name(999), "file types");
}

/* ---- the store ---- */

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static int count_files(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s' -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static g4_status create_text(g4_store *s, const char *name, const char *text, const char *base, int flags, g4_error *e) {
    g4_modelfile *mf;
    g4_status st = g4_modelfile_parse(text, strlen(text), &mf, e);
    if (st) return st;
    st = g4_store_create(s, name, mf, base, flags, NULL, NULL, e);
    g4_modelfile_free(mf);
    return st;
}

typedef struct prog_log {
    int calls, success, done_total;
} prog_log;
static void on_prog(void *user, const char *status, uint64_t done, uint64_t total) {
    prog_log *p = user;
    p->calls++;
    if (!strcmp(status, "success")) p->success = 1;
    if (total && done == total) p->done_total = 1;
}

static long long read_mem(void *user, void *buf, size_t size) {
    const char **p = user;
    size_t n = strlen(*p);
    if (n > size) n = size;
    memcpy(buf, *p, n);
    *p += n;
    return (long long)n;
}

static void test_store(void) {
    char dir[300], path[1200], mfdir[300];
    snprintf(dir, sizeof dir, "%s/models", g_tmp);
    snprintf(mfdir, sizeof mfdir, "%s/src", g_tmp);
    mkdir(mfdir, 0755);
    g4_store *s;
    g4_error e = {0};
    CHECK(g4_store_open(&s, dir, &e) == G4_OK, "open: %s", e.msg);
    if (!s) return;
    /* an empty store that does not exist yet */
    g4_store_model **v;
    size_t n, bad;
    CHECK(g4_store_list(s, &v, &n, &bad, &e) == G4_OK && n == 0, "empty list");
    g4_store_list_free(v, n);
    CHECK(g4_store_has(s, "x") == 0 && g4_store_has(s, "../x") == -1, "has");

    /* a copy of the oracle model next to the Modelfile, FROM relative to it */
    snprintf(path, sizeof path, "cp '%s' '%s/m.gguf'", g_model, mfdir);
    CHECK(system(path) == 0, "cp");
    char text[2048];
    snprintf(text, sizeof text, "FROM ./m.gguf\nPARAMETER temperature 0.5\nPARAMETER stop <a>\nPARAMETER num_ctx 2048\n"
                                "SYSTEM \"\"\"Be brief.\"\"\"\nMESSAGE user hi\nMESSAGE assistant hello\nLICENSE L1\n");
    prog_log pl = {0};
    g4_modelfile *mf;
    CHECK(g4_modelfile_parse(text, strlen(text), &mf, &e) == G4_OK, "parse: %s", e.msg);
    CHECK(g4_store_create(s, "Me/Tiny:V1", mf, mfdir, 0, on_prog, &pl, &e) == G4_OK, "create: %s", e.msg);
    g4_modelfile_free(mf);
    CHECK(pl.success && pl.done_total && pl.calls >= 3, "progress %d %d %d", pl.calls, pl.success, pl.done_total);
    /* the blob is the file's SHA-256, a hard link (same filesystem); the original is still there */
    char want[65], cmd[1200];
    snprintf(cmd, sizeof cmd, "%s/m.gguf", mfdir);
    {
        FILE *f = fopen(cmd, "rb");
        fseek(f, 0, SEEK_END);
        long L = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *b = malloc((size_t)L);
        CHECK(fread(b, 1, (size_t)L, f) == (size_t)L, "read");
        fclose(f);
        sha_hex(b, (size_t)L, want);
        free(b);
    }
    g4_store_model *m = NULL;
    CHECK(g4_store_get(s, "me/tiny:v1", &m, &e) == G4_OK, "get (case-insensitive): %s", e.msg);
    if (m) {
        CHECK(!strcmp(m->name, "Me/Tiny:V1"), "name %s", m->name);
        CHECK(!strncmp(m->blob, "sha256:", 7) && !strcmp(m->blob + 7, want), "blob %s want %s", m->blob, want);
        struct stat a, b;
        CHECK(stat(m->path, &a) == 0 && stat(cmd, &b) == 0 && a.st_ino == b.st_ino, "hard link");
        CHECK(!strcmp(m->system, "Be brief.") && json_array_size(m->messages) == 2 && json_array_size(m->license) == 1, "settings");
        CHECK(json_real_value(json_object_get(m->params, "temperature")) == 0.5 &&
                  json_integer_value(json_object_get(m->params, "num_ctx")) == 2048,
              "params");
        CHECK(!strcmp(json_string_value(json_object_get(m->details, "family")), "gemma4") &&
                  !strcmp(json_string_value(json_object_get(m->details, "format")), "gguf") &&
                  json_string_value(json_object_get(m->details, "quantization_level")) &&
                  json_string_value(json_object_get(m->details, "parameter_size")),
              "details");
        CHECK(strlen(m->digest) == 64 && m->size > 0 && m->modified > 0, "digest/size/modified");
    }
    /* create again under another name, copying: same blob, no second file */
    CHECK(create_text(s, "other", text, mfdir, G4_CREATE_COPY, &e) == G4_OK, "create copy: %s", e.msg);
    snprintf(path, sizeof path, "%s/blobs", dir);
    CHECK(count_files(path) == 1, "one blob: %d", count_files(path));
    /* FROM an existing model: settings inherited, overridden one by one */
    CHECK(create_text(s, "child", "FROM me/tiny:v1\nPARAMETER temperature 0.9\nSYSTEM other\n", NULL, 0, &e) == G4_OK, "from model: %s", e.msg);
    g4_store_model *c = NULL;
    CHECK(g4_store_get(s, "child", &c, &e) == G4_OK, "get child");
    if (c && m) {
        CHECK(!strcmp(c->blob, m->blob), "same blob");
        CHECK(json_real_value(json_object_get(c->params, "temperature")) == 0.9 &&
                  json_integer_value(json_object_get(c->params, "num_ctx")) == 2048 &&
                  json_array_size(json_object_get(c->params, "stop")) == 1,
              "merged params");
        CHECK(!strcmp(c->system, "other") && json_array_size(c->messages) == 2, "inherited");
        CHECK(!strcmp(json_string_value(json_object_get(c->details, "parent_model")), "Me/Tiny:V1"), "parent");
    }
    g4_store_model_free(c);
    /* create errors */
    CHECK(create_text(s, "../evil", text, mfdir, 0, &e) == G4_ERR_ARG, "bad name");
    CHECK(create_text(s, "x", "FROM ./nope.gguf\n", mfdir, 0, &e) == G4_ERR_IO && strstr(e.msg, "nope.gguf"), "missing file: %s", e.msg);
    CHECK(create_text(s, "x", "FROM nope\n", mfdir, 0, &e) == G4_ERR_ARG && strstr(e.msg, "no such model"), "missing model: %s", e.msg);
    CHECK(create_text(s, "x", "FROM .\n", mfdir, 0, &e) == G4_ERR_UNSUPPORTED && strstr(e.msg, "directory"), "dir: %s", e.msg);
    snprintf(path, sizeof path, "%s/not.gguf", mfdir);
    write_text(path, "not a gguf file at all");
    CHECK(create_text(s, "x", "FROM not.gguf\n", mfdir, 0, &e) != G4_OK && e.msg[0], "not gguf");
    CHECK(g4_store_has(s, "x") == 0, "nothing made");
    snprintf(path, sizeof path, "%s/blobs", dir);
    CHECK(count_files(path) == 1, "no blob left behind: %d", count_files(path));

    /* list, sorted, with the IDs */
    CHECK(g4_store_list(s, &v, &n, &bad, &e) == G4_OK && n == 3 && bad == 0, "list %zu", n);
    if (n == 3)
        CHECK(!strcmp(v[0]->name, "child:latest") && !strcmp(v[1]->name, "Me/Tiny:V1") && !strcmp(v[2]->name, "other:latest"),
              "order %s %s %s", v[0]->name, v[1]->name, v[2]->name);
    g4_store_list_free(v, n);
    json_t *tags = NULL;
    CHECK(g4_store_tags_json(s, &tags, &e) == G4_OK && json_array_size(json_object_get(tags, "models")) == 3, "tags");
    json_t *t0 = json_array_get(json_object_get(tags, "models"), 1);
    CHECK(t0 && json_is_string(json_object_get(t0, "modified_at")) && json_is_integer(json_object_get(t0, "size")) &&
              strlen(json_string_value(json_object_get(t0, "digest"))) == 64 && json_is_object(json_object_get(t0, "details")),
          "tags entry");
    json_decref(tags);

    /* show */
    json_t *sh = NULL;
    CHECK(g4_store_show(s, "me/tiny:v1", 0, &sh, &e) == G4_OK, "show: %s", e.msg);
    if (sh) {
        json_t *caps = json_object_get(sh, "capabilities");
        CHECK(json_array_size(caps) == 3 && !strcmp(json_string_value(json_array_get(caps, 1)), "tools") &&
                  !strcmp(json_string_value(json_array_get(caps, 2)), "thinking"),
              "capabilities");
        json_t *info = json_object_get(sh, "model_info");
        CHECK(!strcmp(json_string_value(json_object_get(info, "general.architecture")), "gemma4"), "model_info");
        json_t *toks = json_object_get(info, "tokenizer.ggml.tokens");
        CHECK(!toks || (json_is_array(toks) && json_array_size(toks) == 0), "tokens summarized");
        CHECK(json_integer_value(json_object_get(info, "general.parameter_count")) > 0, "parameter_count");
        const char *mft = json_string_value(json_object_get(sh, "modelfile"));
        CHECK(mft && strstr(mft, "FROM ") && strstr(mft, "/blobs/sha256-") && strstr(mft, "PARAMETER temperature 0.5") &&
                  strstr(mft, "SYSTEM \"Be brief.\""),
              "modelfile:\n%s", mft ? mft : "(none)");
        /* the regenerated Modelfile makes the same model */
        if (mft) CHECK(create_text(s, "again", mft, NULL, 0, &e) == G4_OK, "create from show's modelfile: %s", e.msg);
        g4_store_model *ag = NULL;
        if (!g4_store_get(s, "again", &ag, &e) && m)
            CHECK(json_equal(ag->params, m->params) && !strcmp(ag->blob, m->blob) && !strcmp(ag->system, m->system) &&
                      json_equal(ag->messages, m->messages) && json_equal(ag->license, m->license),
                  "same settings");
        g4_store_model_free(ag);
        CHECK(strstr(json_string_value(json_object_get(sh, "parameters")), "num_ctx"), "parameters text");
        CHECK(!strcmp(json_string_value(json_object_get(sh, "license")), "L1"), "license");
        json_decref(sh);
    }
    CHECK(g4_store_show(s, "me/tiny:v1", 1, &sh, &e) == G4_OK, "show -v");
    if (sh) {
        json_t *toks = json_object_get(json_object_get(sh, "model_info"), "tokenizer.ggml.tokens");
        CHECK(!toks || json_array_size(toks) > 5, "verbose tokens");
        json_decref(sh);
    }
    CHECK(g4_store_show(s, g_model2, 0, &sh, &e) == G4_OK && sh, "show a file: %s", e.msg);
    json_decref(sh);
    CHECK(g4_store_show(s, "nothere", 0, &sh, &e) == G4_ERR_ARG && strstr(e.msg, "not found"), "show missing");

    /* resolve: names and paths */
    g4_store_model *r = NULL;
    CHECK(g4_store_resolve(s, g_model2, &r, &e) == G4_OK && r->is_file && !strcmp(r->path, g_model2), "path");
    g4_store_model_free(r);
    CHECK(g4_store_resolve(s, "ME/TINY:v1", &r, &e) == G4_OK && !r->is_file && m && !strcmp(r->path, m->path), "name");
    g4_store_model_free(r);
    CHECK(g4_store_resolve(s, "nothere:x", &r, &e) == G4_ERR_ARG && strstr(e.msg, "not found"), "unknown name");
    /* not names: paths that are not there (a store path is never made from them) */
    CHECK(g4_store_resolve(s, "../../nonexistent/x", &r, &e) == G4_ERR_IO && strstr(e.msg, "cannot open"), "traversal: %s", e.msg);
    CHECK(g4_store_resolve(s, "x/../../../etc/passwd:latest", &r, &e) == G4_ERR_IO, "traversal 2");
    CHECK(g4_store_get(s, "x/../../../etc/passwd:latest", &r, &e) == G4_ERR_ARG, "get: traversal");
    CHECK(g4_store_get(s, "/etc/passwd", &r, &e) == G4_ERR_ARG, "get: absolute path");
    CHECK(g4_store_resolve(s, "bad name", &r, &e) == G4_ERR_ARG && strstr(e.msg, "invalid model name"), "bad name: %s", e.msg);
    CHECK(g4_store_resolve(NULL, g_model2, &r, &e) == G4_OK, "no store, path");
    g4_store_model_free(r);
    /* a file without .gguf in the current directory: a name first, then the file */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "cwd");
    CHECK(chdir(mfdir) == 0, "chdir");
    CHECK(symlink("m.gguf", "plainfile") == 0 || errno == EEXIST, "symlink");
    CHECK(g4_store_resolve(s, "plainfile", &r, &e) == G4_OK && r->is_file, "file fallback: %s", e.msg);
    g4_store_model_free(r);
    CHECK(create_text(s, "plainfile", "FROM m.gguf\n", NULL, 0, &e) == G4_OK, "create plainfile");
    CHECK(g4_store_resolve(s, "plainfile", &r, &e) == G4_OK && !r->is_file, "the name wins");
    g4_store_model_free(r);
    CHECK(chdir(cwd) == 0, "chdir back");
    g4_store_model_free(m);
    m = NULL;

    /* copy */
    CHECK(g4_store_copy(s, "me/tiny:v1", "Copy:One", &e) == G4_OK, "cp: %s", e.msg);
    g4_store_model *a = NULL, *b = NULL;
    g4_store_get(s, "me/tiny:v1", &a, NULL);
    g4_store_get(s, "copy:one", &b, NULL);
    CHECK(a && b && !strcmp(a->digest, b->digest) && !strcmp(b->name, "Copy:One") && !strcmp(a->path, b->path), "copy = same ID");
    g4_store_model_free(a);
    g4_store_model_free(b);
    CHECK(g4_store_copy(s, "nothere", "y", &e) == G4_ERR_ARG && strstr(e.msg, "not found"), "cp missing");
    CHECK(g4_store_copy(s, "copy:one", "../y", &e) == G4_ERR_ARG, "cp bad dst");

    /* crash safety: a manifest is replaced atomically while another process reads it all the time */
    pid_t pid = fork();
    if (pid == 0) {
        g4_error ce;
        for (int i = 0; i < 40; i++) {
            char t[4096];
            snprintf(t, sizeof t, "FROM me/tiny:v1\nPARAMETER seed %d\nSYSTEM \"%0*d\"\n", i, 1 + (i * 37) % 3000, 0);
            if (create_text(s, "race", t, NULL, 0, &ce)) _exit(1);
        }
        _exit(0);
    }
    int reads = 0, torn = 0, status = 0;
    for (;;) {
        g4_store_model *x = NULL;
        g4_error re = {0};
        g4_status st = g4_store_get(s, "race", &x, &re);
        if (st == G4_OK) reads++;
        else if (st != G4_ERR_ARG) torn++; /* not found before the first write is fine; a bad manifest is not */
        g4_store_model_free(x);
        if (waitpid(pid, &status, WNOHANG) == pid) break;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer");
    CHECK(torn == 0 && reads > 0, "torn reads %d of %d", torn, reads);
    /* no temporary file left next to the manifests */
    snprintf(cmd, sizeof cmd, "find '%s/manifests' -name '.tmp-*' | wc -l", dir);
    FILE *pp = popen(cmd, "r");
    int ntmp = -1;
    if (pp) {
        if (fscanf(pp, "%d", &ntmp) != 1) ntmp = -1;
        pclose(pp);
    }
    CHECK(ntmp == 0, "temporary files %d", ntmp);
    /* a half-written file (as a crash in the middle of a plain write would leave) is reported, not used */
    snprintf(path, sizeof path, "%s/manifests/library/broken/latest.json", dir);
    snprintf(cmd, sizeof cmd, "%s/manifests/library/broken", dir);
    mkdir(cmd, 0755);
    write_text(path, "{\"schema_version\": 1, \"model\": {\"dig");
    CHECK(g4_store_get(s, "broken", &r, &e) == G4_ERR_FORMAT && strstr(e.msg, "broken"), "broken: %s", e.msg);
    CHECK(g4_store_list(s, &v, &n, &bad, &e) == G4_OK && bad == 1, "list skips it (%zu bad)", bad);
    g4_store_list_free(v, n);
    /* leftovers of a crash: an old temporary blob goes at the next gc, a fresh one stays */
    snprintf(path, sizeof path, "%s/blobs/.tmp-blob-1-1-1", dir);
    write_text(path, "partial");
    int removed = -1;
    CHECK(g4_store_gc(s, &removed, &e) == G4_OK && removed == 0, "gc keeps fresh tmp (removed %d)", removed);
    /* a blob nobody refers to is removed by gc (not while a broken manifest might refer to it) */
    snprintf(path, sizeof path, "%s/blobs/sha256-%064d", dir, 0);
    write_text(path, "orphan");
    CHECK(g4_store_gc(s, &removed, &e) == G4_OK && removed == 0, "gc with a broken manifest removes nothing");
    CHECK(g4_store_delete(s, "broken", &e) == G4_OK, "rm broken: %s", e.msg);
    CHECK(access(path, F_OK) != 0, "orphan removed by rm's gc");

    /* blobs from a stream */
    const char *data = "hello blob", *p = data;
    char dg[80];
    sha_hex(data, strlen(data), want);
    snprintf(dg, sizeof dg, "sha256:%s", want);
    CHECK(g4_store_blob_has(s, dg) == 0 && g4_store_blob_has(s, "sha256:zz") == -1, "blob_has");
    CHECK(g4_store_blob_write(s, dg, read_mem, &p, &e) == G4_OK && g4_store_blob_has(s, dg) == 1, "blob_write: %s", e.msg);
    p = "other data";
    snprintf(dg, sizeof dg, "sha256:%064d", 1);
    CHECK(g4_store_blob_write(s, dg, read_mem, &p, &e) == G4_ERR_ARG && strstr(e.msg, "mismatch") && g4_store_blob_has(s, dg) == 0,
          "digest mismatch: %s", e.msg);
    CHECK(g4_store_blob_write(s, "../../x", read_mem, &p, &e) == G4_ERR_ARG, "bad digest");

    /* delete: the blob stays while a model uses it */
    const char *names[] = {"me/tiny:v1", "other", "child", "again", "Copy:One", "race", "plainfile"};
    snprintf(path, sizeof path, "%s/blobs", dir);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK(count_files(path) >= 1, "blob present before rm %s", names[i]);
        CHECK(g4_store_delete(s, names[i], &e) == G4_OK, "rm %s: %s", names[i], e.msg);
    }
    CHECK(g4_store_delete(s, "child", &e) == G4_ERR_ARG && strstr(e.msg, "not found"), "rm twice");
    CHECK(g4_store_delete(s, "../x", &e) == G4_ERR_ARG, "rm bad name");
    CHECK(g4_store_gc(s, &removed, &e) == G4_OK, "gc");
    CHECK(count_files(path) == 1, "only the fresh temporary file is left: %d", count_files(path)); /* .tmp-blob-1-1-1 */
    snprintf(cmd, sizeof cmd, "%s/m.gguf", mfdir);
    struct stat sb;
    CHECK(stat(cmd, &sb) == 0 && sb.st_size > 0, "the user's file is still there");
    CHECK(g4_store_list(s, &v, &n, &bad, &e) == G4_OK && n == 0, "empty again (%zu)", n);
    g4_store_list_free(v, n);
    g4_store_close(s);

    /* default directory */
    char buf[512];
    setenv("G4_MODELS", "/x/y", 1);
    CHECK(g4_store_default_dir(buf, sizeof buf, &e) == G4_OK && !strcmp(buf, "/x/y"), "G4_MODELS");
    unsetenv("G4_MODELS");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    CHECK(g4_store_default_dir(buf, sizeof buf, &e) == G4_OK && !strcmp(buf, "/xdg/g4/models"), "XDG");
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/home/u", 1);
    CHECK(g4_store_default_dir(buf, sizeof buf, &e) == G4_OK && !strcmp(buf, "/home/u/.local/share/g4/models"), "HOME");
    /* a store path that is a file */
    snprintf(path, sizeof path, "%s/src/m.gguf", g_tmp);
    CHECK(g4_store_open(&s, path, &e) == G4_ERR_IO, "file as store");
}

int main(void) {
    snprintf(g_model, sizeof g_model, "%s/models/e2b-Q8_0.gguf", t_oracle());
    snprintf(g_model2, sizeof g_model2, "%s/models/dense-Q4_K_M.gguf", t_oracle());
    snprintf(g_tmp, sizeof g_tmp, "/tmp/g4-test-store-XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    test_sha256();
    test_names();
    test_modelfile();
    if (access(g_model, R_OK) == 0) test_store();
    else CHECK(0, "oracle model %s missing", g_model);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", g_tmp);
    return t_done();
}
