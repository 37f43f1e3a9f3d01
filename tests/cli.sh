#!/usr/bin/env bash
# Command-line tests: what a user types, what they see, and the exit status.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect STATUS PATTERN -- CMD...: exit status and a pattern (grep -E) in stdout+stderr
expect() {
    local want=$1 pat=$2
    shift 3
    "$@" >"$tmp/out" 2>&1
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "'$*' exited $rc, expected $want: $(head -c 300 "$tmp/out")"
    elif [ -n "$pat" ] && ! grep -qE -- "$pat" "$tmp/out"; then
        bad "'$*' output lacks /$pat/: $(head -c 300 "$tmp/out")"
    else
        ok
    fi
}

M=$ORACLE/models/e2b-Q8_0.gguf

# usage and errors
expect 0 "usage: g4" -- "$G4" --help
expect 2 "unknown command" -- "$G4" frobnicate
expect 0 "g4 logits MODEL" -- "$G4" logits --help
expect 2 "no --tokens" -- "$G4" logits "$M"
expect 2 "bad token id" -- "$G4" logits "$M" --tokens 2,x
expect 1 "cannot open" -- "$G4" logits "$tmp/missing.gguf" --tokens 2
expect 1 "outside the vocabulary" -- "$G4" logits "$M" --tokens 2,512
expect 1 "do not fit" -- "$G4" logits "$M" --tokens 2,3,4 --ctx 2
expect 1 "not a GGUF file" -- "$G4" info "$ORACLE/README.md"
expect 1 "not a regular file" -- "$G4" info "$ORACLE"
head -c 5000 "$M" >"$tmp/trunc.gguf"
expect 1 "truncated|cannot hold" -- "$G4" logits "$tmp/trunc.gguf" --tokens 2
head -c $(( $(stat -c %s "$M") - 100 )) "$M" >"$tmp/trunc2.gguf"
expect 1 "ends past the end of the file" -- "$G4" info "$tmp/trunc2.gguf"

# g4 info on every oracle model: sizes add up to the file size
for f in "$ORACLE"/models/*.gguf; do
    expect 0 "all accounted for" -- "$G4" info "$f"
done
expect 0 "KV cache f16,    8192 tok" -- "$G4" info "$M" --ctx 8192 --no-tensors

# logits output formats
"$G4" logits "$M" --tokens 2,17,305,9 --all >"$tmp/all.txt" 2>&1
if [ "$(wc -l <"$tmp/all.txt")" -eq 4 ] && [ "$(head -n 1 "$tmp/all.txt" | wc -w)" -eq 512 ]; then ok; else bad "--all text output shape"; fi
"$G4" logits "$M" --tokens 2,17,305,9 >"$tmp/last.txt" 2>&1
if cmp -s "$tmp/last.txt" <(tail -n 1 "$tmp/all.txt"); then ok; else bad "last-position logits differ from the last row of --all"; fi
"$G4" logits "$M" --tokens 2,17,305,9 --all --out "$tmp/all.f32"
if [ "$(stat -c %s "$tmp/all.f32")" -eq $((4 * 512 * 4)) ]; then ok; else bad "--out size"; fi
expect 0 "position 3: +[0-9]+ \(" -- "$G4" logits "$M" --tokens 2,17,305,9 --top 3
expect 1 "cannot write" -- "$G4" logits "$M" --tokens 2 --out "$tmp/no/such/dir/x.f32"

# g4 render: every oracle chat case through the command, on vocab-only GGUFs (metadata only) carrying Google's
# two templates, must print exactly the template's prompt; then flags and errors
mkvocab() { # OUT [TEMPLATE_FILE]: a GGUF v3 file with no tensors, an architecture and maybe a chat template
    python3 - "$@" <<'PY'
import struct, sys
kv = [("general.architecture", b"gemma4")]
if len(sys.argv) > 2:
    kv.append(("tokenizer.chat_template", open(sys.argv[2], "rb").read()))
out = struct.pack("<IIQQ", 0x46554747, 3, 0, len(kv))
for k, v in kv:
    out += struct.pack("<Q", len(k)) + k.encode() + struct.pack("<IQ", 8, len(v)) + v
open(sys.argv[1], "wb").write(out)
PY
}
mkvocab "$tmp/v-e2b.gguf" "$ORACLE/chat/gemma4-e2b.jinja"
mkvocab "$tmp/v-31b.gguf" "$ORACLE/chat/gemma4-31b.jinja"
mkvocab "$tmp/v-none.gguf"
python3 - "$G4" "$ORACLE/chat/cases.jsonl" "$tmp" >"$tmp/render.out" 2>&1 <<'PY'
import json, subprocess, sys
g4, cases, tmp = sys.argv[1:]
bad = n = 0
for line in open(cases, encoding="utf-8"):
    c = json.loads(line)
    with open(tmp + "/m.json", "w", encoding="utf-8") as f:
        json.dump(c["messages"], f)
    args = ["--messages", tmp + "/m.json", "--think", "on" if c["enable_thinking"] else "off"]
    if c["tools"] is not None:
        with open(tmp + "/t.json", "w", encoding="utf-8") as f:
            json.dump(c["tools"], f)
        args += ["--tools", tmp + "/t.json"]
    if not c["add_generation_prompt"]:
        args.append("--no-generation-prompt")
    for model, key in ((tmp + "/v-e2b.gguf", "e2b"), (tmp + "/v-31b.gguf", "31b")):
        n += 1
        r = subprocess.run([g4, "render", model] + args, capture_output=True)
        if r.returncode != 0 or r.stdout != c["rendered"][key].encode("utf-8"):
            bad += 1
            print("FAIL", c["id"], key, r.stderr.decode(errors="replace")[:200])
print("render cases: %d of %d differ" % (bad, n))
PY
if grep -q "render cases: 0 of 80 differ" "$tmp/render.out"; then ok; else bad "g4 render on the oracle cases: $(head -c 600 "$tmp/render.out")"; fi
echo '[{"role": "user", "content": "hi"}]' >"$tmp/hi.json"
expect 0 "^<\|turn>model$" -- "$G4" render "$tmp/v-e2b.gguf" --messages "$tmp/hi.json"
expect 0 "<channel\|>" -- "$G4" render "$tmp/v-31b.gguf" --messages "$tmp/hi.json"
expect 0 "<channel\|>" -- "$G4" render --flavour large --messages "$tmp/hi.json"
expect 0 "note: the chat template .* small flavour" -- "$G4" render "$tmp/v-e2b.gguf" --flavour large --messages "$tmp/hi.json"
expect 0 "<\|think\|>" -- "$G4" render "$M" --think on --messages "$tmp/hi.json"
expect 0 "^hi<turn\|>$" -- "$G4" render --flavour small --no-generation-prompt --messages - <"$tmp/hi.json"
expect 1 "no tokenizer.chat_template; pass --flavour" -- "$G4" render "$tmp/v-none.gguf" --messages "$tmp/hi.json"
expect 0 "<bos><\|turn>user" -- "$G4" render "$tmp/v-none.gguf" --flavour small --messages "$tmp/hi.json"
expect 2 "give MODEL, or --flavour" -- "$G4" render --messages "$tmp/hi.json"
expect 2 "--messages CONV.json is required" -- "$G4" render --flavour small
expect 2 "--think takes on or off" -- "$G4" render --flavour small --think maybe --messages "$tmp/hi.json"
expect 2 "unknown chat flavour" -- "$G4" render --flavour huge --messages "$tmp/hi.json"
expect 1 "cannot read messages file" -- "$G4" render --flavour small --messages "$tmp/missing.json"
printf '[{"role": "user",\n  "content": "hi",}]' >"$tmp/bad.json"
expect 1 "bad.json: malformed JSON at line 2, column" -- "$G4" render --flavour small --messages "$tmp/bad.json"
echo '[{"role": "robot", "content": "hi"}]' >"$tmp/robot.json"
expect 1 "messages\[0\]: unknown role \"robot\"" -- "$G4" render --flavour small --messages "$tmp/robot.json"
echo '[{"role": "user", "content": [{"type": "file", "file": {}}]}]' >"$tmp/item.json"
expect 1 "unknown item type \"file\"" -- "$G4" render --flavour small --messages "$tmp/item.json"
echo '{"messages": [{"role": "user", "content": "q"}], "tools": [{"type": "function", "function": {"name": "f", "description": "d"}}]}' >"$tmp/req.json"
expect 0 "<\|tool>declaration:f\{description:<\|\"\|>d<\|\"\|>\}<tool\|>" -- "$G4" render --flavour small --messages "$tmp/req.json"

# g4 synth + g4 run / g4 chat on a tiny random-weight model (the output text is meaningless; the
# behaviour is what is checked: streaming, limits, stop strings, errors, chat commands)
S="$tmp/syn.gguf"
expect 0 "wrote .*syn.gguf \(e4b tiny q8_0, seed 5\)" -- "$G4" synth --variant e4b --type q8_0 --seed 5 --out "$S"
expect 2 "unknown variant|--variant" -- "$G4" synth --variant e9b --out "$tmp/x.gguf"
expect 0 "token limit reached" -- "$G4" run "$S" "Hello" -n 5 --seed 1
"$G4" run "$S" "Hello" -n 12 --seed 4 >"$tmp/r1.txt" 2>/dev/null
"$G4" run "$S" "Hello" -n 12 --seed 4 >"$tmp/r2.txt" 2>/dev/null
if cmp -s "$tmp/r1.txt" "$tmp/r2.txt" && [ -s "$tmp/r1.txt" ]; then ok; else bad "the same seed gave different answers"; fi
echo "Hello from stdin" | "$G4" run "$S" -n 8 --seed 4 -v >"$tmp/r3.txt" 2>"$tmp/r3.err"
if grep -qE "prompt: [0-9]+ tokens .* tok/s \| generation: 8 tokens" "$tmp/r3.err"; then ok; else bad "run -v timings: $(cat "$tmp/r3.err")"; fi
expect 0 "" -- "$G4" run "$S" "Hello" --raw -n 4 --temperature 0
expect 1 "The conversation is [0-9]+ tokens; the context holds 16, with 2 kept free" -- "$G4" run "$S" "$(printf 'word %.0s' $(seq 60))" --ctx 16
printf 'bad \xff text' >"$tmp/bad.txt"
expect 1 "not valid UTF-8" -- sh -c "'$G4' run '$S' <'$tmp/bad.txt'"
expect 2 "--think takes on or off" -- "$G4" run "$S" "hi" --think maybe
expect 2 "bad --temperature" -- "$G4" run "$S" "hi" --temperature hot
expect 1 "has no tokenizer|cannot open" -- "$G4" run "$tmp/missing.gguf" "hi"
# chat driven through standard input: settings, a multi-line message, save and load
cat >"$tmp/chat.in" <<CHAT
/set temperature 0
/set num_predict 6
/set bogus 1
/think on
"""
first line
second line
"""
/show
/save $tmp/conv.json
/clear
/load $tmp/conv.json
/bye
CHAT
"$G4" chat "$S" --seed 2 <"$tmp/chat.in" >"$tmp/chat.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "(temperature = 0)" "$tmp/chat.out" && grep -q "unknown parameter 'bogus'" "$tmp/chat.out" &&
   grep -q "thinking on" "$tmp/chat.out" && grep -q "temperature  0 " "$tmp/chat.out" &&
   grep -q "loaded 2 messages" "$tmp/chat.out"; then ok; else bad "chat session: rc $rc: $(head -c 800 "$tmp/chat.out")"; fi
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['messages'][0]['content']=='first line\nsecond line', d; assert d['params']['temperature']==0 and d['think'] is True" "$tmp/conv.json"; then ok; else bad "saved conversation"; fi
echo '{"messages": "nope"}' >"$tmp/badconv.json"
printf '/load %s\n/load %s\n' "$tmp/badconv.json" "$tmp/missing.json" | "$G4" chat "$S" >"$tmp/chat2.out" 2>&1
if grep -q 'has no "messages" list' "$tmp/chat2.out" && grep -q "cannot load" "$tmp/chat2.out"; then ok; else bad "chat /load errors: $(cat "$tmp/chat2.out")"; fi
# a conversation that outgrows the context: with --overflow truncate the oldest turns go, with stop the message is withdrawn
printf 'one two three four five six\nseven eight nine ten eleven twelve\nthirteen fourteen fifteen sixteen\n' >"$tmp/long.in"
"$G4" chat "$S" --ctx 96 -n 20 --overflow truncate --seed 1 <"$tmp/long.in" >"$tmp/long.out" 2>&1
if grep -q "dropped the oldest turn" "$tmp/long.out"; then ok; else bad "overflow truncate: $(cat "$tmp/long.out")"; fi
"$G4" chat "$S" --ctx 96 -n 20 --overflow stop --seed 1 <"$tmp/long.in" >"$tmp/long2.out" 2>&1
if grep -q "Your message was not sent" "$tmp/long2.out"; then ok; else bad "overflow stop: $(cat "$tmp/long2.out")"; fi

# ---- what strangers will type: parameters, stop strings, failed writes, odd files ----
# empty stop strings are ignored (they used to crash held_suffix); the answer is the one without them
"$G4" run "$M" hi -n 8 --seed 3 >"$tmp/st0.txt" 2>/dev/null
expect 0 "" -- "$G4" run "$M" hi --stop ''
"$G4" run "$M" hi -n 8 --seed 3 --stop '' --stop $'\x01never' --stop '' >"$tmp/st1.txt" 2>/dev/null
if cmp -s "$tmp/st0.txt" "$tmp/st1.txt"; then ok; else bad "empty --stop strings changed the answer"; fi
expect 0 "" -- "$G4" run "$M" hi --raw -n 8 --stop ''
expect 2 "longer than 1024 bytes" -- "$G4" run "$M" hi --stop "$(head -c 1025 /dev/zero | tr '\0' x)"
# sampling parameters: one range check in the library (g4_sampler_params_check), named with value and range
expect 2 "temperature nan is out of range: a finite number >= 0" -- "$G4" run "$M" hi --temperature nan
expect 2 "temperature inf is out of range" -- "$G4" run "$M" hi --temperature inf
expect 2 "temperature -1 is out of range" -- "$G4" run "$M" hi --temperature -1
expect 2 "top_p 2 is out of range: a number from 0 to 1" -- "$G4" run "$M" hi --top-p 2
expect 2 "min_p -1 is out of range" -- "$G4" run "$M" hi --min-p -1
expect 2 "top_k -1 is out of range" -- "$G4" run "$M" hi --top-k -1
expect 2 "repeat_penalty 0 is out of range" -- "$G4" run "$M" hi --repeat-penalty 0
expect 2 "presence_penalty 1000 is out of range" -- "$G4" run "$M" hi --presence-penalty 1000
expect 2 "penalty_last_n -2 is out of range" -- "$G4" run "$M" hi --repeat-last-n -2
expect 2 "bad --seed '-1'" -- "$G4" run "$M" hi --seed -1
expect 0 "token limit" -- "$G4" run "$M" hi -n 2 --temperature 0 --top-k 0 --seed 18446744073709551615
# chat: /set refuses the same values (and /save still works afterwards); /load takes the file's state exactly
cat >"$tmp/chat3.in" <<CHAT
/set temperature nan
/set top_p 2
/set temperature 0.5
/set seed 18446744073709551615
/save $tmp/c3.json
/system be brief
/set seed 5
/save $tmp/c3sys.json
/load $tmp/c3.json
/show
/bye
CHAT
"$G4" chat "$M" <"$tmp/chat3.in" >"$tmp/chat3.out" 2>&1
if grep -q "temperature nan is out of range" "$tmp/chat3.out" && grep -q "top_p 2 is out of range" "$tmp/chat3.out" &&
   grep -q "(saved 0 messages" "$tmp/chat3.out" && ! grep -q "out of memory" "$tmp/chat3.out" &&
   grep -q "system       (none)" "$tmp/chat3.out" && grep -q "seed         18446744073709551615 " "$tmp/chat3.out" &&
   grep -q "temperature  0.5 " "$tmp/chat3.out"; then ok; else bad "chat /set, /save, /load: $(head -c 1500 "$tmp/chat3.out")"; fi
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['params']['seed']=='18446744073709551615' and 'system' not in d, d; d=json.load(open(sys.argv[2])); assert d['system']=='be brief' and d['params']['seed']=='5', d" "$tmp/c3.json" "$tmp/c3sys.json"; then ok; else bad "saved seed / system: $(cat "$tmp/c3.json")"; fi
# older files: the seed as a (signed) number; a refused parameter loads nothing
python3 -c "import json,sys; json.dump({'messages': [], 'system': 'old', 'params': {'seed': -1, 'top_k': 7}}, open(sys.argv[1], 'w')); json.dump({'messages': [], 'params': {'top_k': 9, 'temperature': 'nan'}}, open(sys.argv[2], 'w'))" "$tmp/old.json" "$tmp/nan.json"
printf '/load %s\n/show\n/load %s\n/show\n' "$tmp/old.json" "$tmp/nan.json" | "$G4" chat "$M" >"$tmp/chat4.out" 2>&1
if grep -q "seed         18446744073709551615 " "$tmp/chat4.out" && grep -q "system       old" "$tmp/chat4.out" &&
   grep -q "temperature nan is out of range" "$tmp/chat4.out" && [ "$(grep -c 'top_k 7 ' "$tmp/chat4.out")" -eq 2 ]; then ok; else bad "chat /load of older / refused files: $(head -c 1500 "$tmp/chat4.out")"; fi
# failed writes: stop at the first one, exit non-zero, say so on stderr
( trap '' PIPE; "$G4" run "$M" hi --raw -n 3000 --seed 1 -v 2>"$tmp/pipe.err" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}" >"$tmp/pipe.rc" )
n_gen=$(sed -n 's/.*generation: \([0-9]*\) tokens.*/\1/p' "$tmp/pipe.err")
if [ "$(cat "$tmp/pipe.rc")" = 1 ] && grep -q "writing the answer failed: Broken pipe" "$tmp/pipe.err" && [ "${n_gen:-9999}" -lt 500 ]; then ok
else bad "run into a closed pipe: rc $(cat "$tmp/pipe.rc"), $n_gen tokens: $(cat "$tmp/pipe.err")"; fi
( trap '' PIPE; "$G4" run "$M" hi -n 3000 --seed 1 2>"$tmp/pipe2.err" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}" >"$tmp/pipe2.rc" )
if [ "$(cat "$tmp/pipe2.rc")" = 1 ] && grep -q "writing the answer failed: Broken pipe" "$tmp/pipe2.err"; then ok; else bad "run (chat format) into a closed pipe: $(cat "$tmp/pipe2.err")"; fi
if [ -w /dev/full ]; then
    full() { # CMD...: output to /dev/full must fail with status 1 and a message naming the reason
        "$@" >/dev/full 2>"$tmp/full.err"
        local rc=$?
        if [ $rc -eq 1 ] && grep -q "failed: No space left on device" "$tmp/full.err"; then ok; else bad "'$*' >/dev/full: rc $rc: $(head -c 300 "$tmp/full.err")"; fi
    }
    full "$G4" info "$M"
    full "$G4" info "$M" --no-metadata --no-tensors
    full "$G4" --version
    full "$G4" --help
    full "$G4" run --help
    full "$G4" logits "$M" --tokens 2,17
    full "$G4" logits "$M" --tokens 2,17 --top 3
    full "$G4" tokenize "$M" --text "hello world"
    full "$G4" detokenize "$M" --ids 100,200
    full "$G4" render --flavour small --messages "$tmp/hi.json"
    full "$G4" run "$M" hi -n 4
    full "$G4" run "$M" hi -n 4 --raw
    full sh -c "printf 'hello\n/bye\n' | '$G4' chat '$M' -n 4"
    full "$G4" synth --variant e2b --dry-run
    full "$G4" bench "$M" --prompt 8 --gen 2 --reps 1 --threads 1
    full "$G4" eval "$M" --tokens 2,17,305,9,40,41
fi
# results to stdout, errors to stderr
for c in "info" "run" "chat" "logits --tokens 2" "tokenize --text x" "detokenize --ids 1" "bench" "eval --tokens 2,3,4"; do
    # shellcheck disable=SC2086
    set -- $c
    cmd=$1
    shift
    "$G4" "$cmd" "$tmp/missing.gguf" "$@" </dev/null >"$tmp/e.out" 2>"$tmp/e.err"
    if [ ! -s "$tmp/e.out" ] && grep -q "cannot open" "$tmp/e.err"; then ok; else bad "g4 $c on a missing file: stdout '$(head -c 200 "$tmp/e.out")', stderr '$(head -c 200 "$tmp/e.err")'"; fi
done
"$G4" info "$tmp/v-none.gguf" >"$tmp/i.out" 2>"$tmp/i.err"
if [ $? -eq 1 ] && grep -q "GGUF version 3" "$tmp/i.out" && ! grep -q "not a runnable" "$tmp/i.out" && grep -q "not a runnable Gemma 4 model" "$tmp/i.err"; then ok
else bad "info on a vocab-only file: the error belongs on stderr: $(cat "$tmp/i.out" "$tmp/i.err" | head -c 400)"; fi
# model files that are not regular files: refused at once, a FIFO does not block
mkfifo "$tmp/fifo.gguf"
for c in info "run" "tokenize --text x" "logits --tokens 2"; do
    # shellcheck disable=SC2086
    set -- $c
    cmd=$1
    shift
    timeout 20 "$G4" "$cmd" "$tmp/fifo.gguf" "$@" </dev/null >"$tmp/f.out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q "is not a regular file (a FIFO)" "$tmp/f.out"; then ok; else bad "g4 $c on a FIFO: rc $rc (124: it blocked): $(head -c 300 "$tmp/f.out")"; fi
done
expect 1 "is not a regular file \(a device\)" -- timeout 20 "$G4" info /dev/zero
# output files: never replace a device, FIFO, directory or symlink; a regular file is replaced whole
echo "keep me" >"$tmp/target.txt"
ln -s "$tmp/target.txt" "$tmp/link.gguf"
mkdir "$tmp/outdir"
for out in "$tmp/link.gguf" "$tmp/fifo.gguf" "$tmp/outdir"; do
    timeout 60 "$G4" synth --variant e2b --quiet --out "$out" >"$tmp/w.out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q "not a regular file: not replaced" "$tmp/w.out"; then ok; else bad "synth --out $out: rc $rc: $(head -c 300 "$tmp/w.out")"; fi
done
if [ -L "$tmp/link.gguf" ] && [ -p "$tmp/fifo.gguf" ] && [ "$(cat "$tmp/target.txt")" = "keep me" ] && ! ls "$tmp"/*.tmp* >/dev/null 2>&1; then ok
else bad "synth --out replaced or wrote through something: $(ls -la "$tmp" | head -30)"; fi
expect 1 "link.gguf' is a symbolic link, not a regular file: not replaced" -- "$G4" logits "$M" --tokens 2 --out "$tmp/link.gguf"
printf '/save %s\n/save %s\n/bye\n' "$tmp/link.gguf" "$tmp/fifo.gguf" | timeout 60 "$G4" chat "$M" >"$tmp/sv.out" 2>&1
if [ "$(grep -c "not a regular file: not replaced" "$tmp/sv.out")" -eq 2 ] && [ -L "$tmp/link.gguf" ] && [ "$(cat "$tmp/target.txt")" = "keep me" ]; then ok
else bad "chat /save over a symlink / FIFO: $(cat "$tmp/sv.out")"; fi
if [ "$(id -u)" = 0 ] && mknod "$tmp/dev" c 1 7 2>/dev/null; then # a device node (as root, --out /dev/full replaced the device)
    expect 1 "is a character device, not a regular file: not replaced" -- "$G4" synth --variant e2b --quiet --out "$tmp/dev"
    if [ -c "$tmp/dev" ]; then ok; else bad "synth --out replaced a device node"; fi
fi
cp "$S" "$tmp/over.gguf" && chmod 640 "$tmp/over.gguf"
expect 0 "" -- "$G4" synth --variant e2b --quiet --out "$tmp/over.gguf"
if [ "$(stat -c %a "$tmp/over.gguf")" = 640 ] && "$G4" info "$tmp/over.gguf" --no-tensors --no-metadata | grep -q "model: Gemma 4 (E2B"; then ok; else bad "synth over an existing file: mode $(stat -c %a "$tmp/over.gguf")"; fi
# g4 chat on a terminal (tmux): line editing and history (libedit), Ctrl-C drops the line, Ctrl-D leaves, no
# escape bytes reach the model (G4_DEBUG_PROMPT prints each prompt on stderr)
if command -v tmux >/dev/null; then
    sock="$tmp/tmux.sock"
    prompts() { grep -c '^\[prompt\]' "$tmp/tty.err" 2>/dev/null; }
    wait_prompts() { local i; for i in $(seq 200); do [ "$(prompts)" -ge "$1" ] && sleep 0.3 && return 0; sleep 0.1; done; return 1; }
    TERM=xterm tmux -S "$sock" -f /dev/null new-session -d -x 100 -y 30 \
        "G4_DEBUG_PROMPT=1 '$G4' chat '$M' -n 3 --seed 1 2>'$tmp/tty.err'; echo \$? >'$tmp/tty.rc'"
    tt() { tmux -S "$sock" send-keys "$@"; }
    sleep 1
    tt "hello there" Enter; wait_prompts 1
    tt Up Enter; wait_prompts 2                           # the same message again, from the history
    tt "abc" Left Left "X" End "d" Enter; wait_prompts 3  # edited in place: aXbcd
    tt "junk" C-c; sleep 0.5                              # dropped
    tt '"""' Enter "line one" Enter '"""' Enter; wait_prompts 4
    tt C-d
    for i in $(seq 100); do [ -s "$tmp/tty.rc" ] && break; sleep 0.1; done
    tmux -S "$sock" kill-server 2>/dev/null
    last=$(awk '/^\[prompt\]/{b=""} {b=b $0 "\n"} END{printf "%s", b}' "$tmp/tty.err")
    if [ "$(cat "$tmp/tty.rc" 2>/dev/null)" = 0 ] && [ "$(prompts)" = 4 ] &&
       [ "$(printf '%s' "$last" | grep -c '^hello there<turn|>')" = 2 ] && printf '%s' "$last" | grep -q '^aXbcd<turn|>' &&
       printf '%s' "$last" | grep -q '^line one<turn|>' && ! grep -q junk "$tmp/tty.err" &&
       ! LC_ALL=C grep -q "$(printf '\033')" "$tmp/tty.err"; then ok
    else bad "chat on a terminal: rc $(cat "$tmp/tty.rc" 2>/dev/null), $(prompts) prompts: $(cat -v "$tmp/tty.err" | tail -n 40)"; fi
else
    echo "note: tmux not installed: the terminal test of g4 chat is skipped"
fi

# g4 bench on a tiny E2B-shaped model: the table, one JSON object on the last line, clear errors
B="$tmp/bench.gguf"
if "$G4" synth --variant e2b --out "$B" --quiet && "$G4" bench "$B" --prompt 24 --gen 4 --depth 8 --reps 3 --threads 2 --json >"$tmp/bench.out" 2>&1; then
    if tail -n1 "$tmp/bench.out" | python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
for k in ('pp_tok_s', 'tg_tok_s', 'ttft_s', 'peak_rss_bytes', 'kv_bytes', 'kv_bytes_per_token', 'streamed_bytes_per_token', 'file_bytes'):
    assert isinstance(d[k], (int, float)) and d[k] > 0, (k, d.get(k))
assert d['threads'] == 2 and d['n_prompt'] == 24 and d['n_gen'] == 4 and d['depth'] == 8 and d['reps'] == 3, d
assert len(d['pp_runs']) == 3 and len(d['tg_runs']) == 3 and d['type'] == 'F32' and d['model'].endswith('bench.gguf'), d
"; then ok; else bad "bench --json: $(tail -n1 "$tmp/bench.out")"; fi
    if grep -q "prompt tok/s" "$tmp/bench.out" && grep -q "KV bytes per extra token" "$tmp/bench.out"; then ok; else bad "bench table: $(head -c 600 "$tmp/bench.out")"; fi
else bad "g4 bench failed: $(head -c 600 "$tmp/bench.out")"; fi
expect 0 "usage: g4 bench" -- "$G4" bench --help
expect 2 "no model given" -- "$G4" bench
expect 2 "bad --prompt '0'" -- "$G4" bench "$B" --prompt 0
expect 2 "bad --gen 'x'" -- "$G4" bench "$B" --gen x
expect 2 "bad --reps" -- "$G4" bench "$B" --reps 1000
expect 2 "unknown KV type 'q9'" -- "$G4" bench "$B" --kv q9
expect 2 "option --depth needs a value" -- "$G4" bench "$B" --depth
expect 2 "unknown option '--frob'" -- "$G4" bench "$B" --frob
expect 1 "cannot open" -- "$G4" bench "$tmp/missing.gguf"
printf 'not a gguf file at all' >"$tmp/junk.gguf"
expect 1 "GGUF|magic|truncated" -- "$G4" bench "$tmp/junk.gguf"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
