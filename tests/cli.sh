#!/usr/bin/env bash
# Command-line tests: what a user types, what they see, and the exit status.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
G4="$BUILD/g4"
ORACLE=${G4_ORACLE:-../shared/oracle}
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
