#!/usr/bin/env bash
# The whole g4 test suite. Every part prints "N passed, N failed"; the last line of this script is the
# sum. Exit status 0 only if nothing failed.
#   BUILDS     build directories to test, each with g4 and tests/ (default: build); a directory whose
#              name contains "asan" is a sanitizer build: it runs everything but the fuzz smoke run
#   G4_ORACLE  oracle pack (default: ../shared/oracle)
set -u
cd "$(dirname "$0")/.."
BUILDS=${BUILDS:-${BUILD:-build}}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ORACLE=${G4_ORACLE:-../shared/oracle}
export G4_ORACLE=$ORACLE
. tests/lib.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -d "$ORACLE" ]; then
    echo "oracle pack not found at $ORACLE (set G4_ORACLE)"
    echo "0 passed, 1 failed"
    exit 1
fi

# llama.cpp for the comparisons (node-llama-cpp from npm, cached in build/npm-llama; skipped without npm)
# (node-llama-cpp needs Node.js 20 or later; with an older one these comparisons are skipped)
LLAMA_NM=${G4_LLAMA_NODE_MODULES:-$PWD/build/npm-llama/node_modules}
node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
[ "${node_major:-0}" -ge 20 ] 2>/dev/null || { echo "Node.js 20+ not found: the llama.cpp comparisons are skipped"; LLAMA_NM=/nonexistent; }
if [ "$LLAMA_NM" != /nonexistent ] && [ ! -d "$LLAMA_NM/node-llama-cpp" ] && [ -z "${G4_LLAMA_NODE_MODULES:-}" ] && command -v npm >/dev/null; then
    mkdir -p build/npm-llama
    (cd build/npm-llama && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
        npm install --no-audit --no-fund --omit=optional node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 \
        >npm.log 2>&1) || echo "npm install of node-llama-cpp failed (see build/npm-llama/npm.log)"
fi
if [ -d "$LLAMA_NM/node-llama-cpp" ] && command -v node >/dev/null; then
    export G4_LLAMA_NODE_MODULES=$LLAMA_NM
else
    LLAMA_NM=
fi

for BUILD in $BUILDS; do
if [ ! -x "$BUILD/g4" ]; then
    echo "$BUILD/g4 not built"
    fail=$((fail + 1))
    continue
fi
case $BUILD in *asan*) sanitized=1 ;; *) sanitized=0 ;; esac
echo "== $BUILD"

# 1. unit tests
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    "$t" >"$tmp/$n.out" 2>&1
    tally "$n" "$tmp/$n.out" $?
done

# 2. command-line tests
if [ -x tests/cli.sh ]; then
    BUILD=$BUILD tests/cli.sh >"$tmp/cli.out" 2>&1
    tally cli "$tmp/cli.out" $?
fi

# 2a. compressed KV cache: KL bounds on oracle models (g4 eval --chunk 1), memory per token, eval errors
if [ -x tests/kv.sh ]; then
    BUILD=$BUILD tests/kv.sh >"$tmp/kv.out" 2>&1
    tally kv-cache "$tmp/kv.out" $?
fi

# 2a'. the model store from the command line: create / list / show / cp / rm, names, Modelfile errors
if [ -x tests/store.sh ]; then
    BUILD=$BUILD tests/store.sh >"$tmp/store.out" 2>&1
    tally store "$tmp/store.out" $?
fi

# 2a''. structured output: generated documents validated with ajv, token walks on the Gemma 4 vocabulary
if [ -x tests/grammar.sh ]; then
    BUILD=$BUILD G4_TOKVOCAB_BUILD=${BUILDS%% *} tests/grammar.sh >"$tmp/grammar.out" 2>&1
    tally grammar "$tmp/grammar.out" $?
fi

# 2a'. g4 serve with the official ollama / openai clients, hostile requests, a soak (tests/serve.sh)
if [ -x tests/serve.sh ]; then
    BUILD=$BUILD tests/serve.sh >"$tmp/serve.out" 2>&1
    tally serve "$tmp/serve.out" $?
fi

# 2a''''. two g4 serve replicas behind HAProxy, one killed with SIGKILL under load (tests/replicas.sh, docs/replicas.md)
if [ -x tests/replicas.sh ]; then
    BUILD=$BUILD tests/replicas.sh >"$tmp/replicas.out" 2>&1
    tally replicas "$tmp/replicas.out" $?
fi

# 2a'''. g4 serve's chat page in headless chromium (puppeteer-core): streaming, stop, thinking, errors, API key
if [ -x tests/webui.sh ]; then
    BUILD=$BUILD tests/webui.sh >"$tmp/webui.out" 2>&1
    tally webui "$tmp/webui.out" $?
fi

# 2b. tokenizer exactness on the oracle's vectors (vocabularies built once, under the first build)
if [ -x tests/tokenizer.sh ]; then
    BUILD=$BUILD G4_TOKVOCAB_BUILD=${BUILDS%% *} tests/tokenizer.sh >"$tmp/tokenizer.out" 2>&1
    tally tokenizer "$tmp/tokenizer.out" $?
fi

# 3. logits against the oracle: default mode, exact mode (strict), token by token
oracle_check() {
    local name=$1
    shift
    python3 "$ORACLE/check_logits.py" "$BUILD/g4" "$ORACLE" --timeout 600 "$@" >"$tmp/$name.out" 2>&1
    local rc=$? line ok total
    line=$(grep -E '^logits: [0-9]+/[0-9]+' "$tmp/$name.out" | tail -n 1)
    ok=$(echo "$line" | sed -E 's#^logits: ([0-9]+)/([0-9]+).*#\1#')
    total=$(echo "$line" | sed -E 's#^logits: ([0-9]+)/([0-9]+).*#\2#')
    [ -n "$ok" ] || { ok=0; total=1; }
    echo "$ok passed, $((total - ok)) failed" >>"$tmp/$name.out"
    tally "$name" "$tmp/$name.out" $rc
}
oracle_check oracle-logits
oracle_check oracle-logits-exact --strict --arg --exact
oracle_check oracle-logits-incremental --arg --incremental
# the default mode again with each non-default kernel set forced (G4_ISA; the default is the best the CPU has:
# with AVX-512 F/BW/VL/VNNI that is avx512, so avx2 is checked too)
isas=scalar
if grep -qw avx512bw /proc/cpuinfo 2>/dev/null && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512_vnni /proc/cpuinfo; then
    isas="scalar avx2"
fi
for isa in $isas; do G4_ISA=$isa oracle_check "oracle-logits-isa-$isa"; done
# and with the file's row layout (no interleaved copies: the row-by-row kernels)
G4_REPACK=0 oracle_check oracle-logits-norepack

# llama.cpp on g4 synth files of every variant
if [ "$sanitized" != 1 ] && [ -n "$LLAMA_NM" ]; then
    G4_LLAMA_NODE_MODULES=$LLAMA_NM python3 tests/llama_compare.py "$BUILD/g4" >"$tmp/llama.out" 2>&1
    tally llama-compare "$tmp/llama.out" $?
fi

# 4. fuzz smoke runs of every parser of outside input (clang + libFuzzer)
if [ "$sanitized" != 1 ] && [ "${G4_NO_FUZZ:-0}" != 1 ] && command -v clang >/dev/null; then
    for f in gguf:65536 chat:16384 tokenizer:4096 modelfile:8192 grammar:4096 request:16384; do
        name=${f%%:*}
        maxlen=${f#*:}
        out="$tmp/fuzz-$name.out"
        if make -s BUILD="$BUILD" "$BUILD/fuzz/fuzz_$name" >"$out" 2>&1; then
            mkdir -p "$tmp/corpus-$name"
            seeds=fuzz/corpus
            [ "$name" = gguf ] || seeds=fuzz/corpus-$name
            "$BUILD/fuzz/fuzz_$name" -max_total_time="${G4_FUZZ_SECONDS:-15}" -max_len="$maxlen" "$tmp/corpus-$name" "$seeds" >>"$out" 2>&1
            rc=$?
            if [ $rc -eq 0 ]; then echo "1 passed, 0 failed" >>"$out"; else echo "0 passed, 1 failed" >>"$out"; fi
            tally "fuzz-$name-smoke" "$out" $rc
        else
            echo "0 passed, 1 failed" >>"$out"
            tally "fuzz-$name-build" "$out" 1
        fi
    done
fi
done

# 5. the NEON kernels (arm64) cross-compiled and run under qemu-user, once (into <first build>-neon;
# skipped with "0 passed, 0 failed" where the cross compiler or qemu is missing)
if [ -x tests/neon.sh ]; then
    echo "== arm64 (qemu)"
    BUILD=${BUILDS%% *} tests/neon.sh >"$tmp/neon.out" 2>&1
    tally neon-qemu "$tmp/neon.out" $?
fi

echo
if [ "$fail" -ne 0 ]; then echo "failed: ${failed_parts[*]}"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
