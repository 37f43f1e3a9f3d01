#!/usr/bin/env bash
# Structured output, checked by an independent validator: tests/test_grammar writes the schemas of its
# random walks and every document it generated (G4_GRAMMAR_OUT); each document must validate against its
# schema with ajv (npm ajv@8 + ajv-formats@3, installed once under $G4_AJV_DIR, default build/npm-ajv).
# The token walks run on the real Gemma 4 vocabulary (262,144 tokens, built by tests/tokvocab.sh under
# $G4_TOKVOCAB_BUILD, default $BUILD) when it can be built, else on the oracle's 512-token vocabulary.
# Without npm / node the ajv part is skipped ("0 passed, 0 failed" for it).
#   BUILD   build directory holding tests/test_grammar (default build)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
T="$BUILD/tests/test_grammar"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$T" ] || { echo "$T not built"; echo "0 passed, 1 failed"; exit 1; }

vocab=""
if V=$(tests/tokvocab.sh "${G4_TOKVOCAB_BUILD:-$BUILD}" 2>"$tmp/tokvocab.log"); then
    vocab="$V/gemma4/vocab.gguf"
else
    echo "Gemma 4 vocabulary not available (tests/tokvocab.sh): token walks on the oracle vocabulary"
fi

mkdir -p "$tmp/out"
[ -n "$vocab" ] && export G4_GRAMMAR_VOCAB="$vocab"
G4_GRAMMAR_OUT="$tmp/out" "$T" >"$tmp/test.out" 2>&1
rc=$?
grep -v '^FAIL' "$tmp/test.out" | tail -n 3
grep '^FAIL' "$tmp/test.out" | head -n 20
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/test.out" | tail -n 1)
if [ -n "$line" ]; then
    pass=$((pass + ${line%% passed*}))
    f=${line#*passed, }
    fail=$((fail + ${f%% failed*}))
else
    bad "test_grammar gave no result (exit status $rc)"
fi
[ "$rc" -eq 0 ] || [ -z "$line" ] || [ "${f%% failed*}" -ne 0 ] || bad "test_grammar exit status $rc"

AJV=${G4_AJV_DIR:-$PWD/build/npm-ajv}
if command -v node >/dev/null && { [ -d "$AJV/node_modules/ajv-formats" ] || command -v npm >/dev/null; }; then
    if [ ! -d "$AJV/node_modules/ajv-formats" ]; then
        mkdir -p "$AJV"
        (cd "$AJV" && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
            npm install --no-audit --no-fund --loglevel=error ajv@8.17.1 ajv-formats@3.0.1 >npm.log 2>&1) ||
            echo "npm install of ajv failed (see $AJV/npm.log)"
    fi
fi
if [ -d "$AJV/node_modules/ajv-formats" ] && command -v node >/dev/null; then
    cat >"$tmp/validate.js" <<'JS'
const fs = require("fs"), path = require("path");
const Ajv2020 = require("ajv/dist/2020").default, Ajv07 = require("ajv").default;
const addFormats = require("ajv-formats").default;
const dir = process.argv[2];
let pass = 0, fail = 0, shown = 0;
function make(A) { const a = new A({ strict: false, allErrors: false, validateFormats: true }); addFormats(a); return a; }
for (const f of fs.readdirSync(dir).filter(f => f.endsWith(".schema.json")).sort()) {
    const schema = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    const docsFile = path.join(dir, f.replace(".schema.json", ".docs.jsonl"));
    if (!fs.existsSync(docsFile)) continue;
    let validate;
    try { validate = make(Ajv2020).compile(schema); }
    catch (e) {
        try { validate = make(Ajv07).compile(schema); }
        catch (e2) { console.log(`FAIL ${f}: ajv cannot compile the schema: ${e2.message}`); fail++; continue; }
    }
    for (const line of fs.readFileSync(docsFile, "utf8").split("\n")) {
        if (!line) continue;
        const text = JSON.parse(line);
        let doc, ok;
        try { doc = JSON.parse(text); ok = validate(doc); } catch (e) { ok = false; }
        if (ok) pass++;
        else {
            fail++;
            if (shown++ < 10) console.log(`FAIL ${f}: ${JSON.stringify(text)}: ${JSON.stringify(validate.errors)}`);
        }
    }
}
console.log(`ajv: ${pass} documents valid, ${fail} invalid`);
console.log(`${pass} passed, ${fail} failed`);
JS
    NODE_PATH="$AJV/node_modules" node "$tmp/validate.js" "$tmp/out" >"$tmp/ajv.out" 2>&1
    cat "$tmp/ajv.out" | head -n 20
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/ajv.out" | tail -n 1)
    if [ -n "$line" ]; then
        pass=$((pass + ${line%% passed*}))
        f=${line#*passed, }
        fail=$((fail + ${f%% failed*}))
    else
        bad "ajv validation gave no result"
    fi
else
    echo "npm/node or ajv not available: the documents are not validated with ajv (skipped)"
    echo "ajv: 0 passed, 0 failed"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
