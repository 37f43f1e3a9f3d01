#!/usr/bin/env bash
# make bench-serve: aggregate decode tokens/s of g4 serve at 1, 2, 4, 8, 16 concurrent streams on the
# full-size E2B-shaped Q4_0 file (random weights, g4 synth), and of llama.cpp's llama-server -np 8 on the same
# file at the same concurrency, back to back on this machine. Writes bench/serve_results.md and
# bench/serve_tok_s.png (gnuplot).
#   LLAMA_SERVER   path of a llama-server binary (built CPU-only outside the repository; skipped if unset)
#   BENCH_CACHE    where the synthesized model goes (default build/bench)
#   THREADS        engine threads (default 2)   TOKENS   tokens per answer (default 64)
#   LEVELS         concurrency levels (default "1 2 4 8 16")   REQS   requests per client (default 2)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
G4=$BUILD/g4
CACHE=${BENCH_CACHE:-build/bench}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-64}
LEVELS=${LEVELS:-"1 2 4 8 16"}
REQS=${REQS:-2}
WORDS=${WORDS:-24}
mkdir -p "$CACHE"
M=$CACHE/e2b-full-q4_0.gguf
[ -f "$M" ] || { echo "== synth $M (once)"; "$G4" synth --variant e2b --scale full --type q4_0 --seed 1 --quiet --out "$M" || exit 1; }
out=$CACHE/serve
mkdir -p "$out"
: >"$out/results.jsonl"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=(); }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { # URL PID
    for _ in $(seq 1 600); do
        curl -sf "$1/health" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

run_levels() { # ENGINE URL PID
    local eng=$1 url=$2 pid=$3 model
    model=$(curl -sf "$url/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
    # warm-up: one request (page cache, thread pools)
    node bench/serve_load.mjs "$url" 1 1 8 "$WORDS" "$model" >/dev/null 2>&1
    for c in $LEVELS; do
        line=$(node bench/serve_load.mjs "$url" "$c" "$REQS" "$TOKENS" "$WORDS" "$model")
        echo "$eng $line rss_kib=$(rss_kib "$pid")"
        echo "{\"engine\":\"$eng\",\"rss_kib\":$(rss_kib "$pid"),\"r\":$line}" >>"$out/results.jsonl"
    done
}

# g4: 16 slots (so that 16 streams decode together), context for prompt + answer each
port=$(free_port)
"$G4" serve "$M" --port "$port" --parallel 16 --ctx 512 --threads "$THREADS" >"$out/g4.log" 2>&1 &
pids+=($!)
if wait_up "http://127.0.0.1:$port" "${pids[-1]}"; then run_levels g4 "http://127.0.0.1:$port" "${pids[-1]}"
else echo "g4 serve did not start:"; tail -5 "$out/g4.log"; fi
cleanup

if [ -n "${LLAMA_SERVER:-}" ] && [ -x "$LLAMA_SERVER" ]; then
    port=$(free_port)
    # -np 8 slots sharing 8 x 512 tokens of context, continuous batching (its default)
    "$LLAMA_SERVER" -m "$M" --port "$port" --host 127.0.0.1 -np 8 -c 4096 -t "$THREADS" -tb "$THREADS" >"$out/llama.log" 2>&1 &
    pids+=($!)
    if wait_up "http://127.0.0.1:$port" "${pids[-1]}"; then run_levels llama-server-np8 "http://127.0.0.1:$port" "${pids[-1]}"
    else echo "llama-server did not start:"; tail -5 "$out/llama.log"; fi
    cleanup
else
    echo "(LLAMA_SERVER not set: llama-server not measured)"
fi

python3 bench/serve_report.py "$out/results.jsonl" bench/serve_results.md "$out/plot.dat" "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$TOKENS" "$REQS" "$THREADS"
if command -v gnuplot >/dev/null; then
    gnuplot -e "datafile='$out/plot.dat'; outfile='bench/serve_tok_s.png'" bench/serve_plot.gp && echo "wrote bench/serve_tok_s.png"
else
    echo "(gnuplot not installed: apt-get install gnuplot-nox for the plot)"
fi
