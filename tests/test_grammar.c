/* Structured output (src/grammar): schema compilation, the matcher on hand-written texts, random walks
 * (every generated document must parse; tests/grammar.sh also validates them with ajv), token-level
 * walks on a real vocabulary (mask == token_ok for every token), no dead ends, limits and errors.
 *   G4_GRAMMAR_OUT=DIR   write DIR/NNN.schema.json and DIR/NNN.docs.jsonl (one JSON string per document)
 *   G4_GRAMMAR_VOCAB=F   vocabulary (GGUF) for the token walks (default: the oracle's e2b-Q8_0.gguf)
 *   G4_GRAMMAR_WALKS=N   random documents per schema (default 40) */
#include "grammar/grammar.h"
#include "t.h"

#include <string.h>

static const char *outdir;
static int walks_per_schema = 40;

static g4_grammar *mk(const char *schema) {
    g4_grammar *g = NULL;
    g4_error e = {0};
    g4_status st = schema ? g4_grammar_from_schema_text(&g, schema, strlen(schema), NULL, &e)
                          : g4_grammar_from_schema(&g, NULL, &e);
    CHECK(st == G4_OK, "schema %s: %s", schema ? schema : "(null)", e.msg);
    return st == G4_OK ? g : NULL;
}

/* 1 if text is a complete document of g */
static int matches(const g4_grammar *g, const char *text, size_t n) {
    g4_gmatch *m;
    g4_error e;
    if (g4_gmatch_new(&m, g, &e)) return -1;
    int ok = g4_gmatch_accept(m, text, n) && g4_gmatch_done(m);
    g4_gmatch_free(m);
    return ok;
}

/* "S<schema>" starts a schema, "+doc" must match, "-doc" must not */
static const char *cases[] = {
    "S{\"type\":\"string\"}",
    "+\"\"", "+\"abc\"", "+\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\"", "+\"\\u00e9\\u20AC\"", "+\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"",
    "-\"abc", "-abc", "-\"a\nb\"", "-\"\\x\"", "-\"\\u12\"", "-\"\\u0000\"", "-\"\\ud800\"", "-\"\\uDFFF\"",
    "-\"\xc3\"", "-\"\xed\xa0\x80\"", "-\"\xc0\xaf\"", "-\"\xf5\x80\x80\x80\"", "-\"\xff\"", "-1", "- \"a\"",
    "+\"a\" ", "+\"a\"\n", "-\"a\"  ",
    "S{\"type\":\"integer\"}",
    "+0", "+-0", "+123", "+-42", "+999999999999999", "-1234567890123456", "-01", "-1.5", "-1e3", "---1", "-+1", "-",
    "S{\"type\":\"number\"}",
    "+0", "+1.5", "+-0.25", "+1e10", "+1E-5", "+2.5e+3", "-1.", "-.5", "-1e", "-1e123", "-00", "-NaN", "-Infinity",
    "S{\"type\":\"boolean\"}", "+true", "+false", "-True", "-tru", "-1",
    "S{\"type\":\"null\"}", "+null", "-nul", "-\"null\"",
    "S{\"type\":[\"string\",\"null\"]}", "+null", "+\"x\"", "-1", "-true",
    "S{\"type\":\"string\",\"nullable\":true}", "+null", "+\"x\"", "-1",
    "S{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
    "+\"ab\"", "+\"abc\"", "+\"\\n\\u0041b\"", "+\"\xc3\xa9\xc3\xa9\"", "+\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"",
    "-\"a\"", "-\"abcd\"", "-\"\"",
    "S{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},\"required\":[\"a\"]}",
    "+{\"a\":1}", "+{\"a\":1,\"b\":\"x\"}", "+{ \"a\": 1, \"b\": \"x\" }", "+{\n  \"a\": 1,\n  \"b\": \"x\"\n}",
    "-{}", "-{\"b\":\"x\"}", "-{\"b\":\"x\",\"a\":1}", "-{\"a\":1,\"c\":2}", "-{\"a\":\"1\"}", "-{\"a\":1,}",
    "-{\"a\" :1}", "-{\"a\":1,\"b\":\"x\",\"b\":\"y\"}", "-{\"a\":1}}", "-{  \"a\":1}",
    "S{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"},\"c\":{\"type\":\"integer\"}}}",
    "+{}", "+{\"a\":1}", "+{\"b\":1}", "+{\"c\":1}", "+{\"a\":1,\"c\":3}", "+{\"a\":1,\"b\":2,\"c\":3}", "-{\"c\":1,\"a\":1}",
    "-{,\"a\":1}", "-{\"d\":1}",
    "S{\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":true}",
    "+{}", "+{\"a\":1}", "+{\"a\":1,\"b\":[1,{\"x\":null}]}", "+{\"zz\":1}", "+{\"ab\":1}", "+{\"\":1}",
    "-{\"a\\u0041\":2}", "+{\"ax\\u0041\":2}", "-{\"a\":\"s\"}", "-{\"b\":1,\"a\":1}", "-{\"\\u0061\":1}", "-{\"a\":1,\"a\":2}",
    "S{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"additionalProperties\":{\"type\":\"integer\"}}",
    "+{\"name\":\"x\",\"n\":1}", "+{\"nam\":1,\"names\":2}", "-{\"n\":\"x\"}", "-{\"name\":1}", "-{\"x\":1,\"name\":\"y\"}",
    "S{\"type\":\"object\",\"additionalProperties\":false}", "+{}", "+{ }", "-{\"a\":1}",
    "S{\"type\":\"object\",\"additionalProperties\":{\"type\":\"boolean\"}}", "+{}", "+{\"x\":true,\"y\":false}", "-{\"x\":1}",
    "S{\"type\":\"object\",\"required\":[\"id\"]}", "+{\"id\":1}", "+{\"id\":{\"a\":[]}}", "-{}", "-{\"x\":1}",
    "S{\"enum\":[\"red\",\"green\",1,null,{\"a\":[1,2]}]}",
    "+\"red\"", "+\"green\"", "+1", "+null", "+{\"a\":[1,2]}", "-\"blue\"", "-\"re\"", "-2", "-{\"a\":[1]}",
    "S{\"type\":\"string\",\"enum\":[\"a\",1,\"b\"]}", "+\"a\"", "+\"b\"", "-1",
    "S{\"const\":\"fixed\"}", "+\"fixed\"", "-\"fixe\"", "-\"fixed2\"",
    "S{\"const\":{\"k\":[true,null]}}", "+{\"k\":[true,null]}", "-{\"k\":[true]}",
    "S{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":2}]}", "+1", "+\"ab\"", "-\"abc\"", "-true",
    "S{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"boolean\"}]}", "+7", "+true", "-\"x\"",
    "S{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"a\"},\"x\":{\"type\":\"integer\"}},\"required\":[\"kind\"]},"
    "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"b\"},\"y\":{\"type\":\"string\"}},\"required\":[\"kind\"]}]}",
    "+{\"kind\":\"a\",\"x\":1}", "+{\"kind\":\"b\",\"y\":\"s\"}", "-{\"kind\":\"a\",\"y\":\"s\"}", "-{\"kind\":\"c\"}",
    "S{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
    "{\"properties\":{\"b\":{\"type\":\"string\"}},\"required\":[\"b\"]}]}",
    "+{\"a\":1,\"b\":\"x\"}", "-{\"a\":1}", "-{\"b\":\"x\"}",
    "S{\"allOf\":[{\"type\":\"integer\",\"minimum\":0},{\"maximum\":10}]}", "+0", "+10", "-11", "--1",
    "S{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "+[]", "+[1]", "+[1,2,3]", "+[ 1, 2 ]", "+[\n  1,\n  2\n]",
    "-[1,]", "-[,1]", "-[\"a\"]", "-[1 2]",
    "S{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":3}",
    "+[true,false]", "+[true,true,true]", "-[true]", "-[true,true,true,true]", "-[]",
    "S{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}],\"items\":false}",
    "+[]", "+[1]", "+[1,\"a\"]", "-[1,\"a\",2]", "-[\"a\"]",
    "S{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"}],\"items\":{\"type\":\"string\"},\"minItems\":2}",
    "+[1,\"a\"]", "+[1,\"a\",\"b\"]", "-[1]", "-[1,2]",
    "S{\"type\":\"array\",\"items\":[{\"type\":\"null\"}],\"additionalItems\":{\"type\":\"integer\"}}", "+[null,1,2]", "-[1]",
    "S{\"type\":\"array\"}", "+[]", "+[1,\"a\",{\"b\":[null]}]", "-[1,]",
    "S{\"type\":\"array\",\"maxItems\":0}", "+[]", "-[1]",
    "S{\"type\":\"integer\",\"minimum\":-5,\"maximum\":123}",
    "+-5", "+-1", "+0", "+9", "+10", "+99", "+100", "+123", "--6", "-124", "-200", "-1000", "--10",
    "S{\"type\":\"integer\",\"exclusiveMinimum\":10,\"exclusiveMaximum\":20}", "+11", "+19", "-10", "-20", "-5",
    "S{\"type\":\"integer\",\"minimum\":1000}", "+1000", "+1001", "+9999", "+123456", "-999", "-0", "--1000",
    "S{\"type\":\"integer\",\"maximum\":-3}", "+-3", "+-4", "+-1000", "--2", "-0", "-5",
    "S{\"type\":\"integer\",\"minimum\":37,\"maximum\":4099}", "+37", "+99", "+100", "+4099", "+4000", "+999", "-36", "-4100", "-5000",
    "S{\"type\":\"number\",\"minimum\":0,\"maximum\":1}", "+0", "+0.5", "+1", "+1.0", "+0.999999", "-1.5", "--0.5", "-2", "-1.01",
    "S{\"type\":\"number\",\"exclusiveMinimum\":0}", "+0.001", "+1", "+25.5", "-0", "-0.0", "--1",
    "S{\"type\":\"number\",\"minimum\":-2,\"exclusiveMaximum\":3}", "+-2", "+-1.5", "+2.999", "+0", "--2.5", "-3", "-3.0",
    "S{\"type\":\"string\",\"format\":\"date\"}", "+\"2024-02-29\"", "+\"2023-12-31\"", "+\"2000-02-29\"", "-\"1900-02-29\"",
    "-\"2023-02-29\"", "-\"2023-04-31\"", "-\"2023-13-01\"", "-\"2023-00-10\"", "-\"2023-1-01\"",
    "S{\"type\":\"string\",\"format\":\"time\"}", "+\"12:34:56Z\"", "+\"23:59:59.123+02:00\"", "-\"24:00:00Z\"", "-\"12:60:00Z\"", "-\"12:34:56\"",
    "S{\"type\":\"string\",\"format\":\"date-time\"}", "+\"2024-01-15T08:30:00Z\"", "-\"2024-01-15 08:30:00Z\"",
    "S{\"type\":\"string\",\"format\":\"uuid\"}", "+\"123e4567-e89b-12d3-a456-426614174000\"", "-\"123e4567e89b12d3a456426614174000\"",
    "S{\"type\":\"string\",\"format\":\"ipv4\"}", "+\"192.168.0.1\"", "+\"255.255.255.255\"", "-\"256.1.1.1\"", "-\"01.1.1.1\"",
    "S{\"type\":\"string\",\"format\":\"email\"}", "+\"a.b@example.com\"", "-\"a@b\"", "-\"@x.com\"",
    "S{\"type\":\"string\",\"pattern\":\"^[a-z]{2,4}-\\\\d+$\"}", "+\"ab-1\"", "+\"abcd-0123\"", "-\"a-1\"", "-\"ab-\"", "-\"AB-1\"",
    "S{\"type\":\"string\",\"pattern\":\"^(foo|bar)?baz$\"}", "+\"baz\"", "+\"foobaz\"", "-\"foo\"",
    "S{\"type\":\"string\",\"pattern\":\"abc\"}", "+\"abc\"", "+\"xxabcyy\"", "-\"ab\"",
    "S{\"type\":\"string\",\"pattern\":\"^[^a-z]*$\"}", "+\"ABC 1\"", "+\"\\\"\"", "+\"\\n\"", "-\"a\"",
    "S{\"type\":\"string\",\"pattern\":\"^\\\\w+@\\\\w+\\\\.[a-z]{2,3}$\"}", "+\"joe@mail.com\"", "-\"joe@mail.c\"",
    "S{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"next\":{\"$ref\":\"#/$defs/node\"}},\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}",
    "+{\"v\":1}", "+{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}}}", "-{\"v\":1,\"next\":{}}",
    "S{\"definitions\":{\"t\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/t\"}}},\"$ref\":\"#/definitions/t\"}",
    "+[]", "+[[],[[]]]", "-[1]",
    "S{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},\"required\":[\"tags\"],\"title\":\"x\",\"description\":\"d\",\"examples\":[1],\"$schema\":\"http://json-schema.org/draft-07/schema#\"}",
    "+{\"tags\":[]}", "+{\"tags\":[\"a\",\"b\"]}", "-{\"tags\":[1]}",
    "S{\"$ref\":\"#/$defs/a\",\"description\":\"x\",\"$defs\":{\"a\":{\"type\":\"integer\"}}}", "+5", "-\"5\"",
    "S{\"$ref\":\"#/$defs/a\",\"maximum\":3,\"$defs\":{\"a\":{\"type\":\"integer\",\"minimum\":1}}}", "+1", "+3", "-0", "-4",
    "S{\"type\":\"string\",\"enum\":[\"a\",\"b\"],\"minLength\":1}", "+\"a\"", "-\"c\"",
    "S{}", "+1", "+\"s\"", "+{\"a\":[1,2,{\"b\":null}]}", "+[]", "-", "-{\"a\":}",
    "Strue", "+null",
    "S{\"type\":\"object\",\"properties\":{\"a\\\"b\":{\"type\":\"integer\"},\"\xc3\xa9\":{\"type\":\"integer\"}},\"required\":[\"a\\\"b\",\"\xc3\xa9\"]}",
    "+{\"a\\\"b\":1,\"\xc3\xa9\":2}", "-{\"a\\\"b\":1}",
    NULL};

static void unit_cases(void) {
    g4_grammar *g = NULL;
    const char *schema = NULL;
    for (const char **c = cases; *c; c++) {
        if (**c == 'S') {
            g4_grammar_free(g);
            schema = *c + 1;
            g = mk(schema);
            continue;
        }
        if (!g) continue;
        int want = **c == '+';
        int got = matches(g, *c + 1, strlen(*c + 1));
        CHECK(got == want, "schema %s: %s should %s", schema, *c + 1, want ? "match" : "not match");
    }
    g4_grammar_free(g);
    /* NULL schema: any JSON object at the top level */
    g = mk(NULL);
    if (g) {
        CHECK(matches(g, "{}", 2) == 1, "any object: {}");
        CHECK(matches(g, "{\"a\":[1,{\"b\":\"c\"}]}", 19) == 1, "any object: nested");
        CHECK(matches(g, "[1]", 3) == 0, "any object: no top-level array");
        CHECK(matches(g, "1", 1) == 0, "any object: no scalar");
        g4_grammar_free(g);
    }
    /* compact option: no whitespace */
    g4_grammar_opts o;
    g4_grammar_opts_default(&o);
    o.ws_indent = -1;
    g4_error e;
    if (g4_grammar_from_schema_text(&g, "{\"type\":\"array\"}", 16, &o, &e) == G4_OK) {
        CHECK(matches(g, "[1,2]", 5) == 1, "compact");
        CHECK(matches(g, "[1, 2]", 6) == 0, "compact: no space");
        g4_grammar_free(g);
    } else {
        CHECK(0, "compact: %s", e.msg);
    }
    /* any_depth bounds nesting of unconstrained values */
    o.ws_indent = 20;
    o.any_depth = 2;
    if (g4_grammar_from_schema_text(&g, "{}", 2, &o, &e) == G4_OK) {
        CHECK(matches(g, "[[1]]", 5) == 1, "depth 2");
        CHECK(matches(g, "[[[1]]]", 7) == 0, "depth 3 refused");
        g4_grammar_free(g);
    }
}

static const struct { const char *schema; g4_status code; const char *msg; } errors[] = {
    {"{\"type\":\"string\",\"not\":{}}", G4_ERR_UNSUPPORTED, "\"not\""},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"multipleOf\":3}}}", G4_ERR_UNSUPPORTED, "/properties/a"},
    {"{\"patternProperties\":{}}", G4_ERR_UNSUPPORTED, "patternProperties"},
    {"{\"type\":\"array\",\"uniqueItems\":true}", G4_ERR_UNSUPPORTED, "uniqueItems"},
    {"{\"type\":\"string\",\"format\":\"hostname\"}", G4_ERR_UNSUPPORTED, "hostname"},
    {"{\"type\":\"string\",\"pattern\":\"^(a)\\\\1$\"}", G4_ERR_UNSUPPORTED, "pattern"},
    {"{\"type\":\"string\",\"pattern\":\"(?=a)b\"}", G4_ERR_UNSUPPORTED, "pattern"},
    {"{\"type\":\"string\",\"pattern\":\"\\\\bx\"}", G4_ERR_UNSUPPORTED, "pattern"},
    {"{\"type\":\"number\",\"minimum\":0.5}", G4_ERR_UNSUPPORTED, "minimum"},
    {"{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}", G4_ERR_UNSUPPORTED, "oneOf"},
    {"{\"oneOf\":[{\"type\":\"string\"},{\"properties\":{\"a\":{}}}]}", G4_ERR_UNSUPPORTED, "overlap"},
    {"{\"$ref\":\"http://example.com/s.json\"}", G4_ERR_UNSUPPORTED, "$ref"},
    {"{\"type\":\"strin\"}", G4_ERR_ARG, "strin"},
    {"{\"type\":\"object\",\"properties\":[]}", G4_ERR_ARG, "properties"},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"minItems\":-1}}}", G4_ERR_ARG, "/properties/a"},
    {"{\"$ref\":\"#/$defs/missing\"}", G4_ERR_ARG, "does not resolve"},
    {"{\"$ref\":\"#\"}", G4_ERR_ARG, "satisf"},
    {"{\"anyOf\":[{\"$ref\":\"#\"},{\"type\":\"null\"}]}", G4_ERR_ARG, "recursi"},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#\"}},\"required\":[\"a\"]}", G4_ERR_ARG, "satisf"},
    {"{\"enum\":[]}", G4_ERR_ARG, "satisf"},
    {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", G4_ERR_ARG, "satisf"},
    {"{\"allOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", G4_ERR_ARG, "satisf"},
    {"{\"type\":\"string\",\"maxLength\":1000000000}", G4_ERR_UNSUPPORTED, "maxLength"},
    {"[1]", G4_ERR_ARG, "schema"},
    {"{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":3,\"maxItems\":2}", G4_ERR_ARG, "satisf"},
    {"not json", G4_ERR_ARG, "JSON"},
};

static void error_cases(void) {
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
        g4_grammar *g = NULL;
        g4_error e = {0};
        g4_status st = g4_grammar_from_schema_text(&g, errors[i].schema, strlen(errors[i].schema), NULL, &e);
        CHECK(st == errors[i].code && g == NULL, "schema %s: status %d (%s), want %d", errors[i].schema, st, e.msg,
              errors[i].code);
        CHECK(st == G4_OK || strstr(e.msg, errors[i].msg), "schema %s: message \"%s\" lacks \"%s\"", errors[i].schema,
              e.msg, errors[i].msg);
        g4_grammar_free(g);
    }
    /* hostile sizes end in errors, quickly */
    static char big[200000];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof big - n, "{\"anyOf\":[");
    for (int i = 0; i < 20000 && n < sizeof big - 100; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s{\"type\":\"string\",\"maxLength\":99999}", i ? "," : "");
    n += (size_t)snprintf(big + n, sizeof big - n, "]}");
    g4_grammar *g = NULL;
    g4_error e = {0};
    g4_status st = g4_grammar_from_schema_text(&g, big, n, NULL, &e);
    CHECK(st == G4_ERR_UNSUPPORTED && strstr(e.msg, "too large"), "huge schema: %d %s", st, e.msg);
    g4_grammar_free(g);
    /* deep nesting */
    n = 0;
    for (int i = 0; i < 400; i++) n += (size_t)snprintf(big + n, sizeof big - n, "{\"items\":");
    n += (size_t)snprintf(big + n, sizeof big - n, "{}");
    for (int i = 0; i < 400; i++) big[n++] = '}';
    st = g4_grammar_from_schema_text(&g, big, n, NULL, &e);
    CHECK(st == G4_ERR_UNSUPPORTED && strstr(e.msg, "deeper"), "deep schema: %d %s", st, e.msg);
    g4_grammar_free(g);
}

/* schemas for the random walks: every schema of the cases, and some more */
static const char *extra_schemas[] = {
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":20},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",\"c\"]},\"maxItems\":4},"
    "\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}},\"required\":[\"zip\"]}},"
    "\"required\":[\"name\",\"age\"]}",
    "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}},\"required\":[\"x\"]},{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":1,\"maxItems\":2},{\"type\":\"null\"}]},\"minItems\":1,\"maxItems\":5}",
    "{\"$defs\":{\"tree\":{\"type\":\"object\",\"properties\":{\"value\":{\"type\":\"integer\",\"minimum\":-100,\"maximum\":100},\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/tree\"},\"maxItems\":3}},\"required\":[\"value\"]}},\"$ref\":\"#/$defs/tree\"}",
    "{\"type\":\"object\",\"properties\":{\"when\":{\"type\":\"string\",\"format\":\"date-time\"},\"day\":{\"type\":\"string\",\"format\":\"date\"},\"at\":{\"type\":\"string\",\"format\":\"time\"},\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"ip\":{\"type\":\"string\",\"format\":\"ipv4\"}},\"required\":[\"when\",\"day\",\"at\",\"id\",\"ip\"]}",
    "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"type\":{\"const\":\"circle\"},\"r\":{\"type\":\"number\",\"exclusiveMinimum\":0}},\"required\":[\"type\",\"r\"]},"
    "{\"type\":\"object\",\"properties\":{\"type\":{\"const\":\"rect\"},\"w\":{\"type\":\"number\",\"minimum\":0},\"h\":{\"type\":\"number\",\"minimum\":0}},\"required\":[\"type\",\"w\",\"h\"]}]}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},\"ab\":{\"type\":\"string\"},\"abc\":{\"type\":\"string\"}},\"additionalProperties\":{\"type\":\"integer\"}}",
    "{\"type\":\"object\",\"properties\":{\"k\":{\"type\":[\"integer\",\"string\",\"null\",\"boolean\",\"array\"],\"items\":{\"type\":\"integer\"}}},\"required\":[\"k\"]}",
    "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\",\"format\":\"date\"},{\"type\":\"integer\",\"minimum\":1,\"maximum\":12},{\"enum\":[true,\"x\",3.5]}],\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":3},\"minItems\":2,\"maxItems\":6}",
    "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"pattern\":\"^(\\\\+\\\\d{1,3} )?\\\\(\\\\d{3}\\\\) \\\\d{3}-\\\\d{4}$\"},\"t\":{\"type\":\"string\",\"pattern\":\"^[A-Z][a-z]+( [A-Z][a-z]+)*$\"},\"u\":{\"type\":\"string\",\"pattern\":\"[\\\"\\\\\\\\]x\"}},\"required\":[\"s\",\"t\",\"u\"]}",
    "{\"allOf\":[{\"$ref\":\"#/$defs/base\"},{\"properties\":{\"extra\":{\"type\":\"boolean\"}},\"required\":[\"extra\"]}],\"$defs\":{\"base\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\",\"exclusiveMinimum\":0}},\"required\":[\"id\"]}}}",
    "{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"number\",\"minimum\":-1000000,\"maximum\":-3}},\"required\":[\"v\"]}",
    "{\"type\":\"integer\",\"minimum\":-999999999999999,\"maximum\":999999999999999}",
    "{\"anyOf\":[{\"type\":\"string\",\"enum\":[\"ab\",\"abc\"]},{\"type\":\"string\",\"pattern\":\"^ab+$\"}]}",
    NULL};

static FILE *open_out(int idx, const char *kind) {
    if (!outdir) return NULL;
    char p[1024];
    snprintf(p, sizeof p, "%s/%03d.%s", outdir, idx, kind);
    return fopen(p, "w");
}

static void write_json_string(FILE *f, const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    if (t) fprintf(f, "%s\n", t);
    free(t);
    json_decref(j);
}

/* random document of m's grammar by bytes: random allowed bytes for `budget` bytes, then least-cost ones */
static size_t walk_bytes(g4_gmatch *m, char *out, size_t cap, size_t budget) {
    size_t n = 0;
    g4_gmatch_reset(m);
    while (n < cap - 1) {
        if (g4_gmatch_done(m) && (n >= budget || t_rand64() % 8 == 0)) break;
        uint8_t set[32];
        if (g4_gmatch_next_bytes(m, set)) return SIZE_MAX;
        int cands[256], nc = 0;
        for (int c = 0; c < 256; c++)
            if (set[c >> 3] >> (c & 7) & 1) cands[nc++] = c;
        if (!nc) {
            CHECK(g4_gmatch_done(m), "dead end after %zu bytes: %.*s", n, (int)n, out);
            break;
        }
        int pick;
        if (n < budget && t_rand64() % 4) {
            pick = cands[t_rand64() % (uint64_t)nc];
        } else {
            size_t best = SIZE_MAX;
            int nb = 0;
            pick = cands[0];
            for (int i = 0; i < nc; i++) {
                char b = (char)cands[i];
                size_t cst = g4_gmatch_cost_after(m, &b, 1);
                if (cst < best) { best = cst; nb = 0; }
                if (cst == best && t_rand64() % (uint64_t)(++nb) == 0) pick = cands[i];
            }
        }
        char b = (char)pick;
        if (!g4_gmatch_accept(m, &b, 1)) return SIZE_MAX;
        out[n++] = b;
        CHECK(g4_gmatch_alive(m), "not alive");
    }
    return n;
}

static int schema_idx;

static void random_walks_one(const char *schema) {
    g4_grammar *g = mk(schema);
    if (!g) return;
    g4_gmatch *m;
    g4_error e;
    if (g4_gmatch_new(&m, g, &e)) {
        CHECK(0, "gmatch_new: %s", e.msg);
        g4_grammar_free(g);
        return;
    }
    int idx = schema_idx++;
    FILE *fs = open_out(idx, "schema.json"), *fd = open_out(idx, "docs.jsonl");
    if (fs) {
        fprintf(fs, "%s\n", schema);
        fclose(fs);
    }
    static char doc[1 << 16];
    int bad = 0;
    for (int w = 0; w < walks_per_schema; w++) {
        size_t budget = (size_t)(t_rand64() % 200);
        size_t n = walk_bytes(m, doc, sizeof doc, budget);
        if (n == SIZE_MAX) {
            CHECK(0, "walk failed for %s", schema);
            break;
        }
        int done = g4_gmatch_done(m);
        CHECK(done, "walk not finished (%zu bytes) for %s", n, schema);
        json_error_t je;
        json_t *v = json_loadb(doc, n, JSON_DECODE_ANY, &je);
        if (!v && bad++ < 3) CHECK(0, "schema %s: generated text does not parse (%s): %.*s", schema, je.text, (int)n, doc);
        else if (v) t_pass++;
        json_decref(v);
        /* the whole text at once gives the same answer */
        CHECK(matches(g, doc, n) == 1, "re-match failed");
        if (fd) write_json_string(fd, doc, n);
    }
    if (fd) fclose(fd);
    g4_gmatch_free(m);
    g4_grammar_free(g);
}

static void random_walks(void) {
    for (const char **c = cases; *c; c++)
        if (**c == 'S') random_walks_one(*c + 1);
    for (const char **c = extra_schemas; *c; c++) random_walks_one(*c);
}

/* prefixes of valid documents are accepted byte by byte and in arbitrary splits */
static void split_consistency(void) {
    g4_grammar *g = mk(extra_schemas[0]);
    if (!g) return;
    const char *doc = "{\"name\": \"J\xc3\xb6rg \xf0\x9f\x98\x80\", \"age\": 42, \"tags\": [\"a\", \"c\"], \"address\": {\"zip\": \"12345\"}}";
    size_t n = strlen(doc);
    for (int rep = 0; rep < 50; rep++) {
        g4_gmatch *m;
        g4_error e;
        if (g4_gmatch_new(&m, g, &e)) break;
        size_t i = 0;
        int ok = 1;
        while (i < n) {
            size_t k = 1 + t_rand64() % 7;
            if (k > n - i) k = n - i;
            ok &= g4_gmatch_check(m, doc + i, k);
            ok &= g4_gmatch_accept(m, doc + i, k);
            i += k;
        }
        CHECK(ok && g4_gmatch_done(m), "split accept");
        /* a rejected continuation leaves the state unchanged */
        CHECK(!g4_gmatch_accept(m, "x", 1) && g4_gmatch_done(m), "reject keeps state");
        g4_gmatch_free(m);
    }
    g4_grammar_free(g);
}

/* ---- token level ---- */

static void token_walks(const char *vpath) {
    g4_vocab *v = NULL;
    g4_error e;
    if (g4_vocab_open(&v, vpath, &e)) {
        printf("token walks skipped: %s\n", e.msg);
        return;
    }
    g4_gvocab *gv;
    if (g4_gvocab_new(&gv, v, &e)) {
        CHECK(0, "gvocab: %s", e.msg);
        g4_vocab_free(v);
        return;
    }
    int nt = g4_gvocab_n_tokens(gv);
    printf("token walks on %s: %d tokens, all bytes: %d\n", vpath, nt, g4_gvocab_has_all_bytes(gv));
    uint32_t *bits = malloc(((size_t)nt + 31) / 32 * 4);
    float *logits = malloc((size_t)nt * sizeof *logits);
    int32_t eog = -1;
    for (int t = 0; t < nt; t++)
        if (g4_vocab_is_eog(v, t)) { eog = t; break; }
    const char *schemas[] = {NULL, extra_schemas[0], extra_schemas[1], extra_schemas[2], extra_schemas[3],
                             extra_schemas[7], "{\"type\":\"string\",\"maxLength\":30}",
                             "{\"enum\":[\"alpha\",\"beta\",\"gamma\"]}"};
    int mismatches = 0;
    for (size_t si = 0; si < sizeof schemas / sizeof *schemas; si++) {
        g4_grammar *g = mk(schemas[si]);
        if (!g) continue;
        g4_gmatch *m;
        if (g4_gmatch_new(&m, g, &e)) {
            g4_grammar_free(g);
            continue;
        }
        for (int w = 0; w < 6; w++) {
            g4_gmatch_reset(m);
            char doc[8192];
            size_t n = 0;
            int steps = 0, budget = (int)(t_rand64() % 40), finished = 0;
            while (steps++ < 600 && n < sizeof doc - 64) {
                int na;
                if (g4_gmatch_allowed(m, gv, bits, &na, &e)) {
                    CHECK(0, "allowed: %s", e.msg);
                    break;
                }
                /* mask == token_ok, for all tokens (every few steps) or a sample */
                int full = steps % 5 == 1;
                for (int k = 0; k < (full ? nt : 300); k++) {
                    int t = full ? k : (int)(t_rand64() % (uint64_t)nt);
                    int a = (int)(bits[t >> 5] >> (t & 31) & 1), b = g4_gmatch_token_ok(m, gv, t);
                    if (a != b && mismatches++ < 5) CHECK(0, "token %d: mask %d, token_ok %d", t, a, b);
                }
                if (full) {
                    for (int t = 0; t < nt; t++) logits[t] = 1.0f;
                    g4_gmatch_mask(m, gv, logits, &e);
                    int agree = 1;
                    for (int t = 0; t < nt; t++) agree &= (logits[t] == -INFINITY) == !(bits[t >> 5] >> (t & 31) & 1);
                    CHECK(agree, "mask logits agree with the bitset");
                }
                CHECK(na > 0, "no allowed token (dead end) after %zu bytes", n);
                if (na == 0) break;
                if (g4_gmatch_done(m) && (steps > budget || t_rand64() % 6 == 0)) {
                    CHECK(eog < 0 || (bits[eog >> 5] >> (eog & 31) & 1), "EOG allowed when done");
                    finished = 1;
                    break;
                }
                if (eog >= 0 && !g4_gmatch_done(m)) CHECK(!(bits[eog >> 5] >> (eog & 31) & 1), "EOG refused");
                /* choose: random allowed token, or (past the budget) the allowed one of least cost */
                int32_t pick = -1;
                if (steps <= budget) {
                    int r = (int)(t_rand64() % (uint64_t)na), q = 0;
                    for (int t = 0; t < nt && pick < 0; t++)
                        if ((bits[t >> 5] >> (t & 31) & 1) && !g4_vocab_is_eog(v, t) && q++ >= r) pick = t;
                }
                if (pick < 0) {
                    size_t best = SIZE_MAX;
                    for (int t = 0; t < nt; t++) {
                        if (!(bits[t >> 5] >> (t & 31) & 1) || g4_vocab_is_eog(v, t)) continue;
                        size_t len;
                        const char *p = g4_gvocab_token_bytes(gv, t, &len);
                        size_t c = g4_gmatch_cost_after(m, p, len);
                        if (c < best || (c == best && t_rand64() % 3 == 0)) {
                            best = c;
                            pick = t;
                        }
                        if (best == 0 && t % 64 == 0) break;
                    }
                }
                if (pick < 0) {
                    finished = g4_gmatch_done(m);
                    break;
                }
                size_t len;
                const char *p = g4_gvocab_token_bytes(gv, pick, &len);
                CHECK(g4_gmatch_accept_token(m, gv, pick), "accept allowed token %d", pick);
                memcpy(doc + n, p, len);
                n += len;
            }
            CHECK(finished, "token walk did not finish (%zu bytes)", n);
            json_error_t je;
            json_t *jv = json_loadb(doc, n, JSON_DECODE_ANY, &je);
            CHECK(jv != NULL, "token walk text does not parse (%s): %.*s", je.text, (int)n, doc);
            json_decref(jv);
        }
        g4_gmatch_free(m);
        g4_grammar_free(g);
    }
    free(bits);
    free(logits);
    g4_gvocab_free(gv);
    g4_vocab_free(v);
}

int main(void) {
    outdir = getenv("G4_GRAMMAR_OUT");
    if (getenv("G4_GRAMMAR_WALKS")) walks_per_schema = atoi(getenv("G4_GRAMMAR_WALKS"));
    unit_cases();
    error_cases();
    split_consistency();
    random_walks();
    char vp[1024];
    const char *vpath = getenv("G4_GRAMMAR_VOCAB");
    if (!vpath) {
        snprintf(vp, sizeof vp, "%s/models/e2b-Q8_0.gguf", t_oracle());
        vpath = vp;
    }
    token_walks(vpath);
    return t_done();
}
