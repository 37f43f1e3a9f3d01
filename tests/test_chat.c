/* Chat format: every oracle case (../shared/oracle/chat/cases.jsonl) and every extra golden case
 * (tests/data/chat_cases_extra.jsonl, rendered with Google's templates by tests/tools/render_cases.py) renders byte
 * for byte like the template, for both flavours; cases the template refuses are refused; flavour detection from
 * the two templates; Python number / string semantics the template depends on; clear errors for bad input; the
 * output parser on hand-made outputs, whole and streamed in every chunking, including truncated and malformed ones.
 * G4_TEST_VERBOSE=1 prints every error message checked. */
#include "chat/chat.h"
#include "chat/chat_py.h"
#include "gguf/gguf.h"
#include "t.h"

#include <string.h>
#include <unistd.h>

static int verbose;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap + 1);
    size_t r;
    while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *q = realloc(p, cap * 2 + 1);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (!p) return NULL;
    p[n] = 0;
    *len = n;
    return p;
}

/* first differing byte, with some context, for a failure message */
static void show_diff(const char *id, const char *fl, const char *want, size_t wn, const char *got, size_t gn) {
    size_t i = 0;
    while (i < wn && i < gn && want[i] == got[i]) i++;
    size_t a = i > 40 ? i - 40 : 0;
    fprintf(stderr, "  %s [%s] differs at byte %zu (want %zu bytes, got %zu)\n    want: ", id, fl, i, wn, gn);
    fwrite(want + a, 1, (wn - a) < 100 ? wn - a : 100, stderr);
    fprintf(stderr, "\n    got:  ");
    fwrite(got + a, 1, (gn - a) < 100 ? gn - a : 100, stderr);
    fputc('\n', stderr);
}

typedef struct {
    int cases, ok[2], bad[2], refused_ok, refused_bad;
} case_stats;

/* every line of a cases file: render for both flavours and compare with rendered.e2b / rendered.31b */
static void run_cases(const char *path, case_stats *st) {
    size_t len;
    char *text = read_file(path, &len);
    CHECK(text != NULL, "cannot read %s", path);
    if (!text) return;
    char *line = text;
    int lineno = 0;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        lineno++;
        if (ll) {
            json_t *c;
            g4_error e;
            g4_status s = g4_chat_json_load(line, ll, path, &c, &e);
            CHECK(s == G4_OK, "%s:%d: %s", path, lineno, e.msg);
            if (s == G4_OK) {
                st->cases++;
                const char *id = json_string_value(json_object_get(c, "id"));
                const json_t *rendered = json_object_get(c, "rendered");
                for (int f = 0; f < 2; f++) {
                    g4_chat_opts o = g4_chat_default_opts();
                    o.flavour = f ? G4_CHAT_LARGE : G4_CHAT_SMALL;
                    o.enable_thinking = json_is_true(json_object_get(c, "enable_thinking"));
                    o.add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt"));
                    o.preserve_thinking = json_is_true(json_object_get(c, "preserve_thinking"));
                    char *out = NULL;
                    size_t on = 0;
                    g4_error re;
                    g4_status rs = g4_chat_render(json_object_get(c, "messages"), json_object_get(c, "tools"), &o,
                                                  &out, &on, &re);
                    if (json_is_null(rendered)) { /* the template refuses this case */
                        if (rs != G4_OK) st->refused_ok++;
                        else st->refused_bad++;
                        CHECK(rs != G4_OK, "%s [%s]: rendered a case the template refuses",
                              id, f ? "large" : "small");
                        if (rs != G4_OK && verbose) printf("refused %s: %s\n", id, re.msg);
                    } else {
                        const json_t *want = json_object_get(rendered, f ? "31b" : "e2b");
                        int same = rs == G4_OK && json_string_length(want) == on &&
                                   !memcmp(json_string_value(want), out, on);
                        if (same) st->ok[f]++;
                        else st->bad[f]++;
                        CHECK(same, "%s [%s]: %s", id, f ? "large" : "small",
                              rs == G4_OK ? "rendered prompt differs" : re.msg);
                        if (!same && rs == G4_OK)
                            show_diff(id, f ? "large" : "small", json_string_value(want), json_string_length(want),
                                      out, on);
                    }
                    free(out);
                }
                json_decref(c);
            }
        }
        line += ll + 1;
    }
    free(text);
}

/* ---- flavour detection ------------------------------------------------------------------------------------------ */
static void test_flavour(void) {
    char path[1024];
    const char *names[2] = {"gemma4-e2b.jinja", "gemma4-31b.jinja"};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/chat/%s", t_oracle(), names[f]);
        size_t n;
        char *t = read_file(path, &n);
        CHECK(t != NULL, "cannot read %s", path);
        if (!t) continue;
        g4_chat_flavour fl = (g4_chat_flavour)-1;
        g4_error e;
        CHECK(g4_chat_flavour_from_template(t, n, &fl, &e) == G4_OK && fl == (f ? G4_CHAT_LARGE : G4_CHAT_SMALL),
              "%s detected as %d", names[f], (int)fl);
        free(t);
    }
    g4_chat_flavour fl;
    g4_error e;
    const char *g3 = "{{ bos_token }}<start_of_turn>user\n";
    CHECK(g4_chat_flavour_from_template(g3, strlen(g3), &fl, &e) == G4_ERR_UNSUPPORTED, "gemma 3 template accepted");
    const char *raw = "<|turn>model\n<|channel>thought\n<channel|>";
    CHECK(g4_chat_flavour_from_template(raw, strlen(raw), &fl, &e) == G4_OK && fl == G4_CHAT_LARGE, "raw newline");
    CHECK(g4_chat_flavour_parse("31B", &fl, &e) == G4_OK && fl == G4_CHAT_LARGE, "31B");
    CHECK(g4_chat_flavour_parse("e4b", &fl, &e) == G4_OK && fl == G4_CHAT_SMALL, "e4b");
    CHECK(g4_chat_flavour_parse("huge", &fl, &e) == G4_ERR_ARG, "huge");
}

/* flavour of vocab-only GGUF files (metadata, no tensors) carrying each template, none, or a foreign one */
static void gguf_flavour(const char *tmpl, int as_u32, g4_status want_st, g4_chat_flavour want, const char *what) {
    char path[] = "/tmp/g4-test-chat-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    gguf_writer *w = gguf_writer_new();
    g4_error e = {0};
    gguf_w_str(w, "general.architecture", "gemma4");
    if (tmpl && as_u32) gguf_w_u32(w, "tokenizer.chat_template", 7);
    else if (tmpl) gguf_w_str(w, "tokenizer.chat_template", tmpl);
    g4_status st = gguf_writer_write(w, path, NULL, NULL, NULL, &e);
    gguf_writer_free(w);
    CHECK(st == G4_OK, "%s: write: %s", what, e.msg);
    gguf_file *f = NULL;
    if (st == G4_OK) st = gguf_open(&f, path, &e);
    CHECK(st == G4_OK, "%s: open: %s", what, e.msg);
    if (f) {
        g4_chat_flavour fl = (g4_chat_flavour)-1;
        st = g4_chat_flavour_from_gguf(f, &fl, &e);
        CHECK(st == want_st && (st != G4_OK || fl == want), "%s: status %d flavour %d", what, (int)st, (int)fl);
        if (verbose && st) printf("%s: %s\n", what, e.msg);
        gguf_close(f);
    }
    unlink(path);
}

static void test_gguf_flavour(void) {
    char path[1024];
    const char *names[2] = {"gemma4-e2b.jinja", "gemma4-31b.jinja"};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/chat/%s", t_oracle(), names[f]);
        size_t n;
        char *t = read_file(path, &n);
        if (!t) continue;
        gguf_flavour(t, 0, G4_OK, f ? G4_CHAT_LARGE : G4_CHAT_SMALL, names[f]);
        free(t);
    }
    gguf_flavour(NULL, 0, G4_ERR_UNSUPPORTED, G4_CHAT_SMALL, "no template");
    gguf_flavour("{{ bos_token }}<start_of_turn>", 0, G4_ERR_UNSUPPORTED, G4_CHAT_SMALL, "gemma 3 template");
    gguf_flavour("x", 1, G4_ERR_FORMAT, G4_CHAT_SMALL, "template of the wrong type");
}

/* ---- Python semantics ------------------------------------------------------------------------------------------- */
static void check_float(double x, const char *want) {
    cbuf b = {0};
    py_float(&b, x);
    CHECK(b.n == strlen(want) && !memcmp(b.p, want, b.n), "repr(%.17g) = %.*s, want %s", x, (int)b.n, b.p, want);
    cb_free(&b);
}

static void check_str(void (*fn)(cbuf *, const char *, size_t), const char *in, const char *want, const char *what) {
    cbuf b = {0};
    fn(&b, in, strlen(in));
    CHECK(b.n == strlen(want) && !memcmp(b.p, want, b.n), "%s(%s) = %.*s, want %s", what, in, (int)b.n, b.p, want);
    cb_free(&b);
}

static void check_repr(const char *json, const char *want) {
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    cbuf b = {0};
    py_str(&b, v);
    CHECK(b.n == strlen(want) && !memcmp(b.p, want, b.n), "str(%s) = %.*s, want %s", json, (int)b.n, b.p, want);
    cb_free(&b);
    json_decref(v);
}

static void test_python(void) {
    check_float(0.1, "0.1");
    check_float(1.0, "1.0");
    check_float(-0.0, "-0.0");
    check_float(1e16, "1e+16");
    check_float(1e15, "1000000000000000.0");
    check_float(9999999999999998.0, "9999999999999998.0");
    check_float(0.0001, "0.0001");
    check_float(0.00001, "1e-05");
    check_float(1.5e-7, "1.5e-07");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    check_float(0.1 + 0.2, "0.30000000000000004");
    check_float(123456789.125, "123456789.125");
    check_float(-2.35, "-2.35");
    check_float(1.2345678901234567e19, "1.2345678901234567e+19");
    check_str(py_upper, "straße ǅ ﬁ ŉ \xce\x90 abc", "STRASSE Ǆ FI ʼN \xce\x99\xcc\x88\xcc\x81 ABC", "upper");
    check_str(py_lower, "ÅNGSTRÖM İ ΑΣ Σ ΑΣ.Β ǅ", "ångström i̇ ας σ ασ.β ǆ", "lower");
    check_repr("[1, \"a\", \"it's\", true, null, {\"k\": \"\\u00a0\\n\\u2028\\u00e9\\ud83d\\ude42\"}, 2.5]",
               "[1, 'a', \"it's\", True, None, {'k': '\\xa0\\n\\u2028é🙂'}, 2.5]");
    check_repr("\"plain\"", "plain");
    check_repr("[\"a'\\\"b\", \"\\u0001\\u007f\"]", "['a\\'\"b', '\\x01\\x7f']");
    /* strip: Python's white space, including U+3000, U+0085, U+001C; not U+200B */
    const char *s = "\xe3\x80\x80\xc2\x85\x1c x\xe2\x80\x8b \t\n";
    size_t off, len;
    py_strip(s, strlen(s), &off, &len);
    CHECK(len == 4 && !memcmp(s + off, "x\xe2\x80\x8b", 4), "strip: off %zu len %zu", off, len);
    /* equality as Python's == */
    json_t *a = json_loads("[1, 2.0, true, {\"x\": [null]}]", 0, NULL), *b = json_loads("[1.0, 2, 1, {\"x\": [null]}]", 0, NULL);
    CHECK(py_eq(a, b), "1 == 1.0 == True");
    json_t *c = json_loads("[1, 2.5]", 0, NULL);
    CHECK(!py_eq(a, c), "different lists");
    CHECK(py_eq(NULL, json_null()), "missing == None");
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* ---- errors ------------------------------------------------------------------------------------------------------ */
static void expect_error(const char *msgs, const char *tools, const char *needle) {
    json_t *m = NULL, *t = NULL;
    g4_error e = {0};
    g4_status s = g4_chat_json_load(msgs, strlen(msgs), "messages", &m, &e);
    if (s == G4_OK && tools) s = g4_chat_json_load(tools, strlen(tools), "tools", &t, &e);
    if (s == G4_OK) {
        char *out = NULL;
        s = g4_chat_render(m, t, NULL, &out, NULL, &e);
        CHECK(out == NULL || s == G4_OK, "output on failure");
        free(out);
    }
    CHECK(s != G4_OK && strstr(e.msg, needle), "input %s: want an error containing '%s', got %d '%s'", msgs, needle,
          (int)s, s ? e.msg : "");
    if (verbose) printf("error: %s\n", e.msg);
    json_decref(m);
    json_decref(t);
}

static void test_errors(void) {
    expect_error("[{\"role\": \"user\", \"content\": \"hi\"},\n {\"role\": \"user\" \"content\": 1}]", NULL,
                 "line 2, column");
    expect_error("[{\"role\": \"robot\", \"content\": \"hi\"}]", NULL, "messages[0]: unknown role \"robot\"");
    expect_error("[{\"content\": \"hi\"}]", NULL, "\"role\" must be a string");
    expect_error("[3]", NULL, "a message must be an object");
    expect_error("{\"role\": \"user\"}", NULL, "messages must be a list");
    expect_error("[{\"role\": \"user\", \"content\": [{\"type\": \"file\"}]}]", NULL, "unknown item type \"file\"");
    expect_error("[{\"role\": \"user\", \"content\": [\"text\"]}]", NULL, "content[0] must be an object");
    expect_error("[{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]", NULL, "needs a string \"text\"");
    expect_error("[{\"role\": \"user\", \"content\": [{\"text\": \"x\"}]}]", NULL, "\"type\" must be a string");
    expect_error("[{\"role\": \"user\", \"content\": {\"a\": 1}}]", NULL, "not an object");
    expect_error("[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"function\": "
                 "{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": }\"}}]}]",
                 NULL, "tool_calls[0].function.arguments: malformed JSON at line 1, column");
    expect_error("[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"function\": "
                 "{\"name\": \"f\", \"arguments\": 5}}]}]",
                 NULL, "must be a JSON object");
    expect_error("[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"tool_calls\": {\"a\": 1}}]", NULL,
                 "tool_calls must be a list");
    expect_error("[{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"tool_calls\": [{\"function\": "
                 "{\"arguments\": {}}}]}]",
                 NULL, "function.name must be a string");
    expect_error("[]", "[{\"type\": \"function\", \"function\": {\"description\": \"x\"}}]", "tools[0]: function \"name\"");
    expect_error("[]", "{\"a\": 1}", "tools must be a list");
    expect_error("[]", "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"properties\": [1]}}}]",
                 "properties must be an object");
    expect_error("[]", "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"properties\": "
                       "{\"a\": {\"type\": \"object\", \"required\": 5}}}}}]",
                 "required must be a list");
}

/* OpenAI-shaped input: string arguments equal object arguments; bare declarations equal wrapped ones */
static void test_shapes(void) {
    const char *a = "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                    "[{\"id\":\"1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                    "\"{\\\"b\\\": [1, 2.50, {\\\"c\\\": null}], \\\"a\\\": \\\"x\\\"}\"}}]}]";
    const char *b = "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                    "[{\"id\":\"1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                    "{\"a\": \"x\", \"b\": [1, 2.5, {\"c\": null}]}}}]}]";
    const char *tw = "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":"
                     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}]";
    const char *tb = "[{\"name\":\"f\",\"description\":\"d\",\"parameters\":"
                     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}]";
    json_t *ma = NULL, *mb = NULL, *ta = NULL, *tbb = NULL;
    g4_error e;
    CHECK(!g4_chat_json_load(a, strlen(a), "a", &ma, &e) && !g4_chat_json_load(b, strlen(b), "b", &mb, &e) &&
              !g4_chat_json_load(tw, strlen(tw), "t", &ta, &e) && !g4_chat_json_load(tb, strlen(tb), "t", &tbb, &e),
          "load: %s", e.msg);
    char *ra = NULL, *rb = NULL;
    size_t na = 0, nb = 0;
    CHECK(!g4_chat_render(ma, ta, NULL, &ra, &na, &e) && !g4_chat_render(mb, tbb, NULL, &rb, &nb, &e), "%s", e.msg);
    CHECK(ra && rb && na == nb && !memcmp(ra, rb, na), "string arguments render like object arguments");
    CHECK(ra && strstr(ra, "<|tool_call>call:f{a:<|\"|>x<|\"|>,b:[1,2.5,{c:null}]}<tool_call|><|tool_response>"),
          "tool call text: %s", ra ? ra : "");
    free(ra);
    free(rb);
    /* no BOS */
    g4_chat_opts o = g4_chat_default_opts();
    o.bos = "";
    o.flavour = G4_CHAT_LARGE;
    json_t *one = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);
    char *r = NULL;
    size_t n = 0;
    CHECK(!g4_chat_render(one, NULL, &o, &r, &n, &e) &&
              !strcmp(r, "<|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"),
          "no bos: %s", r ? r : e.msg);
    CHECK(!g4_chat_prompt_in_thinking(r, n), "not in thinking");
    free(r);
    json_decref(one);
    json_decref(ma);
    json_decref(mb);
    json_decref(ta);
    json_decref(tbb);
}

/* ---- output parser ------------------------------------------------------------------------------------------------ */
typedef struct {
    const char *name;
    const char *out;
    int in_thinking;
    const char *thinking, *answer;
    int n_calls;
    const char *call0_name, *call0_args, *call1_args;
    unsigned flags;
} pcase;

static const pcase pcases[] = {
    {"plain", "Hello there!<turn|>", 0, "", "Hello there!", 0, NULL, NULL, NULL, G4_CHAT_END_OF_TURN},
    {"no end", "  Hello\n\n", 0, "", "Hello", 0, NULL, NULL, NULL, 0},
    {"thinking", "<|channel>thought\nLet me think.\nStep 2.\n<channel|>The answer is 4.<turn|>", 0,
     "Let me think.\nStep 2.", "The answer is 4.", 0, NULL, NULL, NULL, G4_CHAT_END_OF_TURN},
    {"after tool response", "more thoughts\n<channel|>\n\nDone.<turn|>", 1, "more thoughts", "Done.", 0, NULL, NULL,
     NULL, G4_CHAT_END_OF_TURN},
    {"repeated opener", "<|channel>thought\nok<channel|>yes", 1, "ok", "yes", 0, NULL, NULL, NULL, 0},
    {"empty thought", "<|channel>thought\n<channel|>Hi<turn|>", 0, "", "Hi", 0, NULL, NULL, NULL, G4_CHAT_END_OF_TURN},
    {"tool call", "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,unit:<|\"|>celsius<|\"|>}<tool_call|><|tool_response>",
     0, "", "", 1, "get_weather", "{\"city\":\"Paris\",\"unit\":\"celsius\"}", NULL, G4_CHAT_WAITS_TOOL},
    {"thinking + text + two calls",
     "<|channel>thought\nneed tools<channel|>Checking.<|tool_call>call:a{x:1,y:-2.5e3,z:true,w:null,v:false}<tool_call|>"
     "<|tool_call>call:b{nested:{k:[1,<|\"|>two<|\"|>,{deep:[]}],e:{}},s:<|\"|>quote \" and\nnewline, {braces}: "
     "東京<|\"|>}<tool_call|><|tool_response>",
     0, "need tools", "Checking.", 2, "a", "{\"x\":1,\"y\":-2500.0,\"z\":true,\"w\":null,\"v\":false}",
     "{\"nested\":{\"k\":[1,\"two\",{\"deep\":[]}],\"e\":{}},\"s\":\"quote \\\" and\\nnewline, {braces}: 東京\"}",
     G4_CHAT_WAITS_TOOL},
    {"marker inside a string", "<|tool_call>call:say{text:<|\"|>use <tool_call|> and <|channel>? no<|\"|>}<tool_call|>",
     0, "", "", 1, "say", NULL, NULL, 0},
    {"truncated call", "Let me check.<|tool_call>call:get_weather{city:<|\"|>Par", 0, "",
     "Let me check.<|tool_call>call:get_weather{city:<|\"|>Par", 0, NULL, NULL, NULL,
     G4_CHAT_MALFORMED_CALL | G4_CHAT_TRUNCATED},
    {"malformed call", "<|tool_call>call:f{a:1,,}<tool_call|>ok<turn|>", 0, "", "<|tool_call>call:f{a:1,,}<tool_call|>ok",
     0, NULL, NULL, NULL, G4_CHAT_MALFORMED_CALL | G4_CHAT_END_OF_TURN},
    {"call cut by end of turn", "<|tool_call>call:f{a:1<turn|>", 0, "", "<|tool_call>call:f{a:1", 0, NULL, NULL, NULL,
     G4_CHAT_MALFORMED_CALL | G4_CHAT_END_OF_TURN},
    {"truncated thinking", "<|channel>thought\nhmm, let me", 0, "hmm, let me", "", 0, NULL, NULL, NULL,
     G4_CHAT_TRUNCATED},
    {"text after end", "Hi<turn|>\n<|turn>user\nmore", 0, "", "Hi", 0, NULL, NULL, NULL,
     G4_CHAT_END_OF_TURN | G4_CHAT_TEXT_AFTER_END},
    {"stray markers and lookalikes", "a <channel|>b <tool_call|>c <|\"|> d <|turnx> <e> <|chan<eos>", 0, "",
     "a b c <|\"|> d <|turnx> <e> <|chan", 0, NULL, NULL, NULL, G4_CHAT_END_OF_TURN},
    {"lenient call", "<|tool_call>call: f {\"q\": \"json \\\"str\\\"\", unit: celsius, n: 007, t: [1,2,],}<tool_call|>", 0,
     "", "", 1, "f", "{\"q\":\"json \\\"str\\\"\",\"unit\":\"celsius\",\"n\":\"007\",\"t\":[1,2]}", NULL, 0},
    {"call from unclosed thinking", "<|channel>thought\nI will call<|tool_call>call:f{}<tool_call|>", 0, "I will call",
     "", 1, "f", "{}", NULL, 0},
    {"eos", "fine<eos>", 0, "", "fine", 0, NULL, NULL, NULL, G4_CHAT_END_OF_TURN},
    {"empty", "", 0, "", "", 0, NULL, NULL, NULL, 0},
    {"lone lt at end", "a <", 0, "", "a <", 0, NULL, NULL, NULL, 0},
    {"utf8", "caf\xc3\xa9 \xf0\x9f\x99\x82<turn|>", 0, "", "caf\xc3\xa9 \xf0\x9f\x99\x82", 0, NULL, NULL, NULL,
     G4_CHAT_END_OF_TURN},
    {"big numbers", "<|tool_call>call:f{a:123456789012345678901234567890,b:1e400,c:-0}<tool_call|>", 0, "", "", 1, "f",
     "{\"a\":1.2345678901234568e+29,\"b\":\"1e400\",\"c\":0}", NULL, 0},
};

/* feeds out in chunks of `chunk` bytes (0 = all at once), checking that the texts only ever grow by appending */
static g4_chat_parser *feed(const char *out, int in_thinking, size_t chunk, int *monotone) {
    g4_chat_parser *p;
    g4_error e;
    if (g4_chat_parser_new(&p, in_thinking, &e)) return NULL;
    size_t n = strlen(out), i = 0;
    char *seen_t = strdup(""), *seen_a = strdup("");
    *monotone = 1;
    while (i < n) {
        size_t k = chunk && chunk < n - i ? chunk : n - i;
        if (g4_chat_parser_feed(p, out + i, k, &e)) break;
        i += k;
        const char *t = g4_chat_parser_thinking(p, NULL), *a = g4_chat_parser_answer(p, NULL);
        if (strncmp(t, seen_t, strlen(seen_t)) || strncmp(a, seen_a, strlen(seen_a))) *monotone = 0;
        free(seen_t);
        free(seen_a);
        seen_t = strdup(t);
        seen_a = strdup(a);
    }
    g4_chat_parser_finish(p, &e);
    free(seen_t);
    free(seen_a);
    return p;
}

static void test_parser(void) {
    for (size_t c = 0; c < sizeof pcases / sizeof pcases[0]; c++) {
        const pcase *pc = &pcases[c];
        size_t n = strlen(pc->out);
        for (size_t chunk = 0; chunk <= n && chunk <= 64; chunk++) {
            int mono;
            g4_chat_parser *p = feed(pc->out, pc->in_thinking, chunk, &mono);
            CHECK(p != NULL, "%s: parser", pc->name);
            if (!p) continue;
            const char *t = g4_chat_parser_thinking(p, NULL), *a = g4_chat_parser_answer(p, NULL);
            CHECK(!strcmp(t, pc->thinking), "%s (chunk %zu): thinking '%s', want '%s'", pc->name, chunk, t, pc->thinking);
            CHECK(!strcmp(a, pc->answer), "%s (chunk %zu): answer '%s', want '%s'", pc->name, chunk, a, pc->answer);
            CHECK(g4_chat_parser_n_tool_calls(p) == pc->n_calls, "%s (chunk %zu): %d calls", pc->name, chunk,
                  g4_chat_parser_n_tool_calls(p));
            CHECK(mono, "%s (chunk %zu): streamed text was taken back", pc->name, chunk);
            if (pc->n_calls && g4_chat_parser_n_tool_calls(p) == pc->n_calls) {
                const g4_chat_tool_call *tc = g4_chat_parser_tool_call(p, 0);
                CHECK(!strcmp(tc->name, pc->call0_name), "%s: name %s", pc->name, tc->name);
                if (pc->call0_args)
                    CHECK(!strcmp(tc->args_json, pc->call0_args), "%s: args %s, want %s", pc->name, tc->args_json,
                          pc->call0_args);
                if (pc->call1_args)
                    CHECK(!strcmp(g4_chat_parser_tool_call(p, 1)->args_json, pc->call1_args), "%s: args1 %s", pc->name,
                          g4_chat_parser_tool_call(p, 1)->args_json);
            }
            if (!strcmp(pc->name, "marker inside a string") && g4_chat_parser_n_tool_calls(p) == 1)
                CHECK(!strcmp(json_string_value(json_object_get(g4_chat_parser_tool_call(p, 0)->args, "text")),
                              "use <tool_call|> and <|channel>? no"),
                      "string with markers");
            unsigned fl = g4_chat_parser_flags(p);
            CHECK(fl == pc->flags, "%s (chunk %zu): flags %u, want %u", pc->name, chunk, fl, pc->flags);
            CHECK(g4_chat_parser_state(p) == G4_CHAT_DONE, "%s: state", pc->name);
            g4_chat_parser_free(p);
        }
    }
    /* state while streaming */
    g4_chat_parser *p;
    g4_error e;
    g4_chat_parser_new(&p, 0, &e);
    g4_chat_parser_feed(p, "<|channel>thought\nabc", 21, &e);
    CHECK(g4_chat_parser_state(p) == G4_CHAT_IN_THINKING, "state thinking");
    g4_chat_parser_feed(p, "<channel|>x", 11, &e);
    CHECK(g4_chat_parser_state(p) == G4_CHAT_IN_ANSWER, "state answer");
    g4_chat_parser_feed(p, "<|tool_call>call:f{", 19, &e);
    CHECK(g4_chat_parser_state(p) == G4_CHAT_IN_TOOL_CALL, "state call");
    g4_chat_parser_feed(p, "}<tool_call|>", 13, &e);
    CHECK(g4_chat_parser_n_tool_calls(p) == 1 && g4_chat_parser_state(p) == G4_CHAT_IN_ANSWER, "call done");
    g4_chat_parser_free(p);
}

/* a model turn rendered by the template parses back into the message it came from, and that message renders into
 * the same turn */
static void test_roundtrip(void) {
    const char *msgs = "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"Let me look.\","
                       "\"reasoning_content\":\"thinking hard\",\"tool_calls\":[{\"id\":\"c0\",\"type\":\"function\","
                       "\"function\":{\"name\":\"lookup\",\"arguments\":{\"q\":\"a \\\"b\\\"\\nc\",\"n\":[1,2.5,-3e-07],"
                       "\"o\":{\"Z\":true,\"a\":null}}}}]}]";
    json_t *m = json_loads(msgs, 0, NULL);
    char *r = NULL;
    size_t n;
    g4_error e;
    g4_chat_opts o = g4_chat_default_opts();
    o.add_generation_prompt = 0;
    CHECK(m && !g4_chat_render(m, NULL, &o, &r, &n, &e), "render");
    if (!r) return;
    const char *turn = strstr(r, "<|turn>model\n");
    CHECK(turn != NULL, "model turn");
    if (turn) {
        turn += strlen("<|turn>model\n");
        g4_chat_parser *p;
        g4_chat_parser_new(&p, 0, &e);
        g4_chat_parser_feed(p, turn, strlen(turn), &e);
        g4_chat_parser_finish(p, &e);
        CHECK(!strcmp(g4_chat_parser_thinking(p, NULL), "thinking hard"), "thinking: %s", g4_chat_parser_thinking(p, NULL));
        /* the template writes content after the calls: the parser reads it as answer text */
        CHECK(!strcmp(g4_chat_parser_answer(p, NULL), "Let me look."), "answer: %s", g4_chat_parser_answer(p, NULL));
        CHECK(g4_chat_parser_n_tool_calls(p) == 1, "calls");
        json_t *back;
        CHECK(!g4_chat_parser_message(p, "c", &back, &e), "message");
        json_t *m2 = json_array();
        json_array_append(m2, json_array_get(m, 0));
        json_array_append_new(m2, back);
        char *r2 = NULL;
        size_t n2;
        CHECK(!g4_chat_render(m2, NULL, &o, &r2, &n2, &e), "render back: %s", e.msg);
        CHECK(r2 && n2 == n && !memcmp(r, r2, n), "round trip:\n%s\n%s", r, r2 ? r2 : "");
        free(r2);
        json_decref(m2);
        g4_chat_parser_free(p);
    }
    free(r);
    json_decref(m);
}

/* test_chat [CASES.jsonl ...]: the extra cases come from the files given (default tests/data/chat_cases_extra.jsonl) */
int main(int argc, char **argv) {
    verbose = getenv("G4_TEST_VERBOSE") != NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/chat/cases.jsonl", t_oracle());
    case_stats oracle = {0}, extra = {0};
    run_cases(path, &oracle);
    if (argc > 1)
        for (int i = 1; i < argc; i++) run_cases(argv[i], &extra);
    else
        run_cases("tests/data/chat_cases_extra.jsonl", &extra);
    printf("oracle cases %d: small %d/%d, large %d/%d byte-identical\n", oracle.cases, oracle.ok[0],
           oracle.ok[0] + oracle.bad[0], oracle.ok[1], oracle.ok[1] + oracle.bad[1]);
    printf("extra cases %d: small %d/%d, large %d/%d byte-identical; %d/%d refusals of cases the template refuses\n",
           extra.cases, extra.ok[0], extra.ok[0] + extra.bad[0], extra.ok[1], extra.ok[1] + extra.bad[1],
           extra.refused_ok, extra.refused_ok + extra.refused_bad);
    CHECK(oracle.cases == 40, "expected 40 oracle cases, read %d", oracle.cases);
    test_flavour();
    test_gguf_flavour();
    test_python();
    test_errors();
    test_shapes();
    test_parser();
    test_roundtrip();
    return t_done();
}
