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
