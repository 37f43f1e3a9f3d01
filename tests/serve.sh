#!/usr/bin/env bash
# g4 serve (docs/serving.md) with the real clients: the official `ollama` and `openai` npm packages (and ajv) drive a
# server on a free loopback port (tests/serve/clients.mjs), a hostile-request suite (tests/serve/abuse.py), a soak of
# 32 concurrent streaming clients (tests/serve/soak.mjs; G4_SOAK_SECONDS, default 60; make soak: 300), and a clean
# shutdown on SIGTERM (exit status 0, no leak report under ASan). Every server started here is stopped on exit.
#   BUILD            build directory holding g4 (default build)
#   G4_SERVE_NPM     where the npm packages are installed once (default build/npm-serve)
#   G4_SOAK_SECONDS  soak length (0: no soak)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
case $BUILD in *asan*) sanitized=1 ;; *) sanitized=0 ;; esac

NPM_DIR=${G4_SERVE_NPM:-build/npm-serve}
NM=$PWD/$NPM_DIR/node_modules
if ! command -v node >/dev/null; then
    echo "node not found: the client tests need Node.js"
    echo "0 passed, 1 failed"
    exit 1
fi
if [ ! -d "$NM/ollama" ] || [ ! -d "$NM/openai" ] || [ ! -d "$NM/ajv" ]; then
    mkdir -p "$NPM_DIR"
    (cd "$NPM_DIR" && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
        npm install --no-audit --no-fund ollama@0.6.4 openai@6.49.0 ajv@8.20.0 >npm.log 2>&1) ||
        { echo "npm install of ollama/openai/ajv failed (see $NPM_DIR/npm.log)"; echo "0 passed, 1 failed"; exit 1; }
fi

# the README's demo model: a tiny random-weight E2B-shaped Gemma 4
model=$tmp/tiny.gguf
"$G4" synth --variant e2b --scale tiny --type q8_0 --seed 42 --out "$model" >/dev/null 2>&1 || bad "g4 synth"

# start_server LOG ARGS...: g4 serve on a free port (--port 0); sets PORT and SRV (its pid)
start_server() {
    local log=$1
    shift
    "$G4" serve "$@" --port 0 >"$log" 2>&1 &
    SRV=$!
    pids+=("$SRV")
    PORT=
    for _ in $(seq 1 300); do
        PORT=$(sed -n 's/^g4 serve: ready on port \([0-9]*\)$/\1/p' "$log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SRV" 2>/dev/null || break
        sleep 0.1
    done
    echo "the server did not start:"
    sed -n '1,20p' "$log"
    return 1
}
# stop_server LOG: SIGTERM, exit status 0, "stopped" printed, no sanitizer report
stop_server() {
    local log=$1 rc
    kill -TERM "$SRV"
    wait "$SRV"
    rc=$?
    pids=("${pids[@]/$SRV/}")
    if [ $rc -eq 0 ] && grep -q '^g4 serve: stopped$' "$log" && ! grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error' "$log"; then
        ok
    else
        bad "server shutdown (exit status $rc): $(grep -E 'Sanitizer|runtime error' "$log" | head -3)"
        tail -n 30 "$log"
    fi
}
# part NAME OUTPUT-FILE: add a script's "N passed, N failed" to the counts
part() {
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
    p=${line%% passed*}
    f=${line#*passed, }
    f=${f%% failed*}
    [ -n "$line" ] || { p=0; f=1; }
    pass=$((pass + p))
    fail=$((fail + f))
    echo "$1: ${line:-no result}"
    grep -E '^FAIL' "$2" | head -n 20
}

# 1. the official clients (a store of its own; the tiny model preloaded by path and served as "tiny")
mkdir -p "$tmp/store"
if start_server "$tmp/srv1.log" "$model" --models "$tmp/store" --parallel 2 --ctx 4096 --threads 2; then
    NODE_MODULES=$NM timeout 600 node tests/serve/clients.mjs "http://127.0.0.1:$PORT" tiny "$model" >"$tmp/clients.out" 2>&1
    part clients "$tmp/clients.out"
    # one log line per request: method, path, status, tokens, ms
    if grep -q -E 'POST /api/chat 200 [0-9]+\+[0-9]+ tokens [0-9]+ ms' "$tmp/srv1.log"; then ok; else bad "request log lines"; fi
    # g4 ps against it
    if G4_HOST=127.0.0.1:$PORT "$G4" ps >"$tmp/ps.out" 2>&1 && grep -q '^tiny:latest ' "$tmp/ps.out"; then ok; else bad "g4 ps: $(cat "$tmp/ps.out")"; fi
    # empty prompt + keep_alive 0 unloads
    out=$(curl -s "http://127.0.0.1:$PORT/api/generate" -d '{"model":"tiny","keep_alive":0}')
    if echo "$out" | grep -q '"done_reason":"unload"' && curl -s "http://127.0.0.1:$PORT/api/ps" | grep -q '"models":\[\]'; then ok; else bad "unload: $out"; fi
    stop_server "$tmp/srv1.log"
fi

# 2. hostile requests (API key on, small limits)
if start_server "$tmp/srv2.log" "$model" --models "$tmp/store" --parallel 2 --ctx 512 --api-key s3cret-key-123 \
    --max-body 4194304 --read-timeout 3 --threads 2; then
    timeout 600 python3 tests/serve/abuse.py "$PORT" s3cret-key-123 tiny >"$tmp/abuse.out" 2>&1
    part abuse "$tmp/abuse.out"
    stop_server "$tmp/srv2.log"
fi

# 3. keep-alive: a model named by the store loads on first use and unloads when idle
if start_server "$tmp/srv3.log" --models "$tmp/store" --keep-alive 1s --parallel 1 --ctx 256 --threads 1; then
    curl -s "http://127.0.0.1:$PORT/api/create" -d "{\"model\":\"ka\",\"from\":\"$model\"}" >/dev/null
    out=$(curl -s "http://127.0.0.1:$PORT/api/generate" -d '{"model":"ka","prompt":"hi","stream":false,"options":{"num_predict":2}}')
    loaded=$(curl -s "http://127.0.0.1:$PORT/api/ps")
    sleep 3
    after=$(curl -s "http://127.0.0.1:$PORT/api/ps")
    if echo "$out" | grep -q '"done":true' && echo "$loaded" | grep -q '"name":"ka:latest"' && echo "$after" | grep -q '"models":\[\]'; then ok
    else bad "keep_alive: $out / $loaded / $after"; fi
    if curl -s "http://127.0.0.1:$PORT/health" | grep -q '"status":"ok"'; then ok; else bad "/health"; fi
    stop_server "$tmp/srv3.log"
fi

# 4. soak: 32 concurrent streaming clients
soak=${G4_SOAK_SECONDS:-60}
if [ "$soak" -gt 0 ] && start_server "$tmp/srv4.log" "$model" --models "$tmp/store" --parallel 8 --ctx 512; then
    drift=0.02
    [ "$sanitized" = 1 ] && drift=off # ASan's quarantine holds freed memory by design
    MAX_DRIFT=$drift timeout $((soak + 120)) node tests/serve/soak.mjs "http://127.0.0.1:$PORT" "$SRV" "$soak" 32 tiny >"$tmp/soak.out" 2>&1
    grep '^soak:' "$tmp/soak.out"
    part soak "$tmp/soak.out"
    stop_server "$tmp/srv4.log"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
