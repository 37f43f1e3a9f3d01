#!/usr/bin/env bash
# The chat page of g4 serve (src/serve/webui) in a real headless browser: Debian's chromium driven by
# puppeteer-core (npm, installed into build/npm-webui), against build/g4 serve on a tiny random-weight model
# (g4 synth) on a free loopback port, plus a second server with --api-key. tests/webui.mjs does the checks;
# this script starts and always stops the servers, then checks what they logged. A screenshot goes to
# $BUILD/webui.png (and -dark, -phone). Skipped only when chromium is not installed (.ci/run installs it).
#   BUILD                 build directory holding g4 (default build)
#   G4_WEBUI_NPM_DIR      where puppeteer-core is installed (default build/npm-webui)
#   G4_WEBUI_SHOT         screenshot path (default $BUILD/webui.png)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
NPM_DIR=${G4_WEBUI_NPM_DIR:-build/npm-webui}
SHOT=${G4_WEBUI_SHOT:-$BUILD/webui.png}
PUPPETEER=puppeteer-core@24.40.0

if [ ! -x "$CHROMIUM" ]; then
    echo "webui tests skipped: no chromium at $CHROMIUM (apt-get install chromium)"
    echo "0 passed, 0 failed"
    exit 0
fi
command -v node >/dev/null || { echo "FAIL: node not found (apt-get install nodejs npm)"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -d "$NPM_DIR/node_modules/puppeteer-core" ]; then
    mkdir -p "$NPM_DIR"
    (cd "$NPM_DIR" && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
        npm install --no-audit --no-fund "$PUPPETEER" >npm.log 2>&1) || {
        echo "FAIL: npm install $PUPPETEER failed (see $NPM_DIR/npm.log)"
        echo "0 passed, 1 failed"
        exit 1
    }
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# serve NAME ARGS...: g4 serve on a free port (--port 0), its port in $port, its pid in pids and $NAME.pid
serve() {
    local name=$1
    shift
    "$G4" serve "$@" --port 0 --host 127.0.0.1 --threads 1 --parallel 2 --ctx 16384 >"$tmp/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    echo "$pid" >"$tmp/$name.pid"
    port=
    for _ in $(seq 200); do
        port=$(sed -n 's/.*ready on port \([0-9]*\).*/\1/p' "$tmp/$name.log" 2>/dev/null | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: g4 serve ($name) did not start:"
    sed 's/^/    /' "$tmp/$name.log"
    return 1
}

model="$tmp/tiny.gguf"
if ! "$G4" synth --variant e2b --scale tiny --type q8_0 --seed 42 --out "$model" >"$tmp/synth.out" 2>&1; then
    cat "$tmp/synth.out"
    echo "0 passed, 1 failed"
    exit 1
fi
# a second model in the server's store, so that the picker has a choice to remember
printf 'FROM %s\n' "$model" >"$tmp/Modelfile"
"$G4" create second -f "$tmp/Modelfile" --models "$tmp/store" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; bad "g4 create"; }

serve main "$model" --models "$tmp/store" || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }
main_port=$port
key=k-$RANDOM$RANDOM
serve key "$model" --models "$tmp/store" --api-key "$key" || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }
key_port=$port

G4_WEBUI_URL=http://127.0.0.1:$main_port G4_WEBUI_MODELS=tiny:latest,second:latest \
    G4_WEBUI_KEY_URL=http://127.0.0.1:$key_port G4_WEBUI_KEY=$key \
    G4_WEBUI_NODE_MODULES=$PWD/$NPM_DIR/node_modules G4_WEBUI_SHOT=$SHOT CHROMIUM=$CHROMIUM \
    timeout 300 node tests/webui.mjs >"$tmp/webui.out" 2>&1
rc=$?
grep -v '^[0-9]* passed, [0-9]* failed' "$tmp/webui.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/webui.out" | tail -n 1)
if [ -n "$line" ]; then
    pass=$((pass + ${line%% passed*}))
    f=${line#*passed, }
    fail=$((fail + ${f%% failed*}))
fi
[ $rc -eq 0 ] || [ -n "$line" ] || bad "tests/webui.mjs exited with status $rc"

# the server's side of Stop: it saw the stream's connection close before the answer's end
if grep -Eq 'POST /api/chat .*\((client gone|connection error)\)' "$tmp/main.log"; then ok
else bad "the stopped answer's closed connection is not in the server's log"; fi
# both servers end cleanly on SIGTERM (under ASan: no leaks, no errors)
for name in main key; do
    pid=$(cat "$tmp/$name.pid")
    kill "$pid"
    wait "$pid"
    rc=$?
    if [ $rc -eq 0 ]; then ok; else bad "g4 serve ($name) exited with status $rc on SIGTERM"; sed -n '1,40p' "$tmp/$name.log" | sed 's/^/    /'; fi
done
pids=()
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
