#!/usr/bin/env bash
# make bench: prompt and decode speed of g4 on a full-size E2B-shaped Gemma 4 (random weights, made by
# `g4 synth` and cached in BUILD/bench), written to bench/results.md. The tokenizer's throughput is
# measured by bench/tokenizer.sh (make bench-tokenizer, which make bench runs first).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
G4="$BUILD/g4"
mkdir -p "$BUILD/bench"
out=bench/results.md
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
    echo "# g4 benchmark results"
    echo
    echo "$(date -u +%Y-%m-%d), $cpu, $(nproc) threads, g4 $("$G4" --version | cut -d' ' -f2)."
    echo "Scalar kernels (SIMD is issue #4). Random-weight E2B-shaped models from \`g4 synth --scale full\`."
    echo
    echo "| weights | file | prompt tok/s (64 tokens) | decode tok/s (16 tokens) |"
    echo "|---|---|---|---|"
} >"$out"
for t in q4_0 q8_0; do
    m="$BUILD/bench/e2b-full-$t.gguf"
    [ -s "$m" ] || "$G4" synth --variant e2b --scale full --type "$t" --seed 1 --out "$m"
    prompt=$(printf 'the quick brown fox jumps over the lazy dog %.0s' $(seq 8))
    "$G4" run "$m" "$prompt" --raw -n 16 --temperature 0 --ctx 1024 -v >/dev/null 2>"$BUILD/bench/run-$t.log"
    line=$(grep -E '^\[prompt:' "$BUILD/bench/run-$t.log")
    pp=$(echo "$line" | sed -E 's/.*cached\), ([0-9.]+) tok\/s.*/\1/')
    tg=$(echo "$line" | sed -E 's/.*generation: [0-9]+ tokens, ([0-9.]+) tok\/s.*/\1/')
    size=$(du -h "$m" | cut -f1)
    echo "| $t | $size | $pp | $tg |" >>"$out"
    echo "$t: prompt $pp tok/s, decode $tg tok/s"
done
echo "wrote $out"
