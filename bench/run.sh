#!/usr/bin/env bash
# make bench: g4 against llama.cpp on full-size E2B-shaped Gemma 4 files (random weights from `g4 synth --scale
# full`, cached in build/bench), same file, same threads, back to back. Writes bench/results.md and the plots
# bench/tok_s_by_type.png, bench/tok_s_by_depth.png and bench/kv_by_context.png (g4's KV cache types: decode tok/s
# and KV memory against context length). docs/performance.md and docs/turboquant.md explain the method.
#
# Needs: python3 (tables), node + node-llama-cpp (the llama.cpp side; without it those columns say n/a),
# gnuplot (apt-get install gnuplot-nox; without it the plots are skipped). It installs nothing itself.
#
# Settings (environment):
#   BUILD              build directory holding g4 (default build)
#   BENCH_CACHE        where the synthesized models and raw JSON results go (default build/bench)
#   BENCH_THREADS      threads for both engines (default 2)
#   BENCH_TYPES        weight types (default "f16 q8_0 q4_0 q4_k")
#   BENCH_PROMPT/GEN   prompt and decode tokens of the side-by-side runs (default 512 / 128: llama-bench's
#                      pp512 / tg128)
#   BENCH_LLAMA_REF    1: also run llama.cpp at 512 / 128 when PROMPT/GEN differ (default 0)
#   BENCH_DEPTHS       context depths of the decode-vs-depth series on BENCH_DEPTH_TYPE (default "0 512 2048", q4_0)
#   BENCH_DEPTH_PROMPT/GEN  prompt and decode tokens at each depth (default 16 / 16)
#   BENCH_KV_TYPES     KV cache types of the decode-by-context series on BENCH_DEPTH_TYPE (default "f16 q8 tq4 tq3";
#                      the compressed types on the full-attention layers, `g4 bench --kv`; "" skips the series)
#   BENCH_KV_DEPTHS    its depths (default "0 4096 16384"; docs/turboquant.md adds 32768); the cache is filled with
#                      random K/V (`g4 bench --fill random`: decode speed does not depend on the values, and the
#                      fill takes seconds instead of hours); BENCH_KV_FILL=eval evaluates the tokens instead
#   BENCH_SCALE        full (default) or tiny (a smoke test of this script in seconds)
#   BENCH_BW_GBS       memory read bandwidth for the decode bound, GB/s (default 29.8, measured on this machine kind)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
G4="$BUILD/g4"
CACHE=${BENCH_CACHE:-build/bench}
THREADS=${BENCH_THREADS:-2}
TYPES=${BENCH_TYPES:-"f16 q8_0 q4_0 q4_k"}
PROMPT=${BENCH_PROMPT:-512}
GEN=${BENCH_GEN:-128}
LLAMA_REF=${BENCH_LLAMA_REF:-0}
DEPTHS=${BENCH_DEPTHS:-"0 512 2048"}
DEPTH_TYPE=${BENCH_DEPTH_TYPE:-q4_0}
DEPTH_PROMPT=${BENCH_DEPTH_PROMPT:-16}
DEPTH_GEN=${BENCH_DEPTH_GEN:-16}
BW=${BENCH_BW_GBS:-29.8}
SCALE=${BENCH_SCALE:-full}
KV_TYPES=${BENCH_KV_TYPES-"f16 q8 tq4 tq3"}
KV_DEPTHS=${BENCH_KV_DEPTHS:-"0 4096 16384"}
KV_FILL=${BENCH_KV_FILL:-random}
RES="$CACHE/results"

[ -x "$G4" ] || { echo "bench: $G4 not found (run make first)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: python3 is needed for the tables" >&2; exit 1; }
mkdir -p "$CACHE" "$RES"
rm -f "$RES"/*.json
start=$(date +%s)
load0=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load0" 'BEGIN { exit !(l > 0.5) }'; then
    echo "bench: load average is $load0: other work on this machine will distort the numbers (llama.cpp's" \
         "spinning threads suffer most when a core is taken)" >&2
fi

have_llama=1
if ! command -v node >/dev/null || ! node bench/llama_bench.mjs --help 2>&1 | grep -q usage ||
   ! { [ -n "${G4_LLAMA_NODE_MODULES:-}" ] || [ -d /work/llamacpp/node_modules/node-llama-cpp ] ||
       [ -d build/npm-llama/node_modules/node-llama-cpp ]; }; then
    echo "bench: node-llama-cpp not found: the llama.cpp columns will say n/a" >&2
    have_llama=0
fi

model_of() { echo "$CACHE/e2b-$SCALE-$1.gguf"; }
ensure_model() {
    local m
    m=$(model_of "$1")
    if [ ! -s "$m" ]; then
        echo "== synth $1 (once; cached in $CACHE)"
        "$G4" synth --variant e2b --scale "$SCALE" --type "$1" --seed 1 --quiet --out "$m"
    fi
}
# run NAME CMD...: the last line of the command's stdout into RES/NAME.json (failures are noted, not fatal)
run() {
    local name=$1
    shift
    echo "== $name: $*"
    if "$@" >"$RES/$name.log" 2>&1; then
        tail -n1 "$RES/$name.log" >"$RES/$name.json"
        grep -E "prompt tok/s|decode tok/s" "$RES/$name.log" | sed 's/^ */   /' | tr -s ' ' | paste -sd' ' -
    else
        echo "   FAILED (see $RES/$name.log)" >&2
    fi
}

for t in $TYPES; do
    ensure_model "$t"
    m=$(model_of "$t")
    # warm the page cache once so neither engine pays the first read of the file
    cat "$m" >/dev/null
    run "g4-$t" "$G4" bench "$m" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" --kv f16 --json
    if [ $have_llama = 1 ]; then
        run "llama-$t" node bench/llama_bench.mjs "$m" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" --kv f16 --json
        if [ "$LLAMA_REF" = 1 ]; then
            run "llamaref-$t" node bench/llama_bench.mjs "$m" --threads "$THREADS" --prompt 512 --gen 128 --kv f16 --json
        fi
    fi
done

ensure_model "$DEPTH_TYPE"
m=$(model_of "$DEPTH_TYPE")
cat "$m" >/dev/null
for d in $DEPTHS; do
    run "g4-depth-$d" "$G4" bench "$m" --threads "$THREADS" --prompt "$DEPTH_PROMPT" --gen "$DEPTH_GEN" --depth "$d" --kv f16 --json
    if [ $have_llama = 1 ]; then
        run "llama-depth-$d" node bench/llama_bench.mjs "$m" --threads "$THREADS" \
            --prompt "$DEPTH_PROMPT" --gen "$DEPTH_GEN" --depth "$d" --kv f16 --json
    fi
done
# g4's KV cache types by context length (issue #5): decode tok/s and KV bytes
for d in $KV_DEPTHS; do
    for kv in $KV_TYPES; do
        run "g4-kv-$kv-$d" "$G4" bench "$m" --threads "$THREADS" --prompt "$DEPTH_PROMPT" --gen "$DEPTH_GEN" --depth "$d" \
            --fill "$KV_FILL" --kv "$kv" --json
    done
done
elapsed=$(($(date +%s) - start))
load1=$(cut -d' ' -f1 /proc/loadavg)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
# the read bandwidth this machine reaches with a streaming loop (bench/membw.c), for the "% of measured" column
MEASURED_BW=0
if [ -x "$BUILD/bench/membw" ]; then
    MEASURED_BW=$("$BUILD/bench/membw" "$THREADS" | sed -E 's/.*: ([0-9.]+) GB.*/\1/')
    echo "== read bandwidth measured here: $MEASURED_BW GB/s"
fi
python3 bench/report.py --bw-measured "$MEASURED_BW" --results "$RES" --out bench/results.md --types "$TYPES" --depths "$DEPTHS" \
    --depth-type "$DEPTH_TYPE" --bw "$BW" --threads "$THREADS" --prompt "$PROMPT" --gen "$GEN" \
    --depth-prompt "$DEPTH_PROMPT" --depth-gen "$DEPTH_GEN" --cpu "$cpu" --elapsed "$elapsed" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --g4-version "$("$G4" --version | cut -d' ' -f2)" \
    --load "$load0 at the start, $load1 at the end" --kv-types "$KV_TYPES" --kv-depths "$KV_DEPTHS" --kv-fill "$KV_FILL"

if command -v gnuplot >/dev/null; then
    gnuplot -e "dir='$RES'" bench/plots.gp && echo "wrote bench/tok_s_by_type.png bench/tok_s_by_depth.png"
    if [ -n "$KV_TYPES" ]; then
        gnuplot -e "dir='$RES'; types='$KV_TYPES'" bench/plots_kv.gp && echo "wrote bench/kv_by_context.png"
    fi
else
    echo "bench: gnuplot not found (apt-get install gnuplot-nox): plots skipped" >&2
fi
echo "wrote bench/results.md ($elapsed s of measuring)"
