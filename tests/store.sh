#!/usr/bin/env bash
# The model store from the command line (docs/models.md): g4 create / list / show / cp / rm, names, Modelfile
# errors, what happens to the blobs and to the user's own file.
#   BUILD      build directory holding g4 (default build)
#   G4_ORACLE  oracle pack (default ../shared/oracle)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export G4_MODELS="$tmp/models"
unset XDG_DATA_HOME

# expect STATUS PATTERN -- CMD...: exit status and a pattern (grep -E) in stdout+stderr
expect() {
    local want=$1 pat=$2
    shift 3
    "$@" >"$tmp/out" 2>&1
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "'$*' exited $rc, expected $want: $(head -c 400 "$tmp/out")"
    elif [ -n "$pat" ] && ! grep -qE -- "$pat" "$tmp/out"; then
        bad "'$*' output lacks /$pat/: $(head -c 400 "$tmp/out")"
    else
        ok
    fi
}
check() { if eval "$1"; then ok; else bad "$2"; fi; }

mkdir -p "$tmp/src"
cp "$ORACLE/models/e2b-Q4_K_M.gguf" "$tmp/src/model.gguf"
sum_before=$(sha256sum "$tmp/src/model.gguf" | cut -d' ' -f1)
cat >"$tmp/src/Modelfile" <<'EOF'
# a Gemma 4 model with settings
FROM ./model.gguf
PARAMETER temperature 0.6
PARAMETER num_ctx 2048
PARAMETER stop "<end_of_turn>"
PARAMETER stop </s>
SYSTEM """You are a pirate.
Answer in one line."""
MESSAGE user Who are you?
MESSAGE assistant "A pirate, arr."
LICENSE """Gemma Terms of Use
second line"""
EOF

# create, from another directory (FROM is relative to the Modelfile)
expect 0 "success" -- "$G4" create Pirate -f "$tmp/src/Modelfile"
expect 0 "usage: g4 create" -- "$G4" create --help
blob="$G4_MODELS/blobs/sha256-$sum_before"
check '[ -f "$blob" ]' "blob named by the file's SHA-256 (sha256sum)"
check '[ "$(stat -c %i "$blob")" = "$(stat -c %i "$tmp/src/model.gguf")" ]' "blob is a hard link"
check '[ -f "$G4_MODELS/manifests/library/pirate/latest.json" ]' "manifest path (lower case)"
check 'python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$G4_MODELS/manifests/library/pirate/latest.json"' "manifest is JSON"

# list
expect 0 "^NAME +ID +SIZE +MODIFIED" -- "$G4" list
expect 0 "^Pirate:latest +[0-9a-f]{12} +[0-9.]+ KB +(Less than a second|[0-9]+ seconds?) ago" -- "$G4" ls
expect 0 '"models"' -- "$G4" list --json
check '"$G4" list --json | python3 -c "
import json, sys
m = json.load(sys.stdin)[\"models\"]
assert len(m) == 1 and m[0][\"name\"] == \"Pirate:latest\" and len(m[0][\"digest\"]) == 64
d = m[0][\"details\"]
assert d[\"format\"] == \"gguf\" and d[\"family\"] == \"gemma4\" and d[\"quantization_level\"] == \"Q4_K_M\", d
assert d[\"parameter_size\"]
"' "list --json is /api/tags"

# show (case-insensitive names)
expect 0 "architecture +gemma4" -- "$G4" show pirate
expect 0 "quantization +Q4_K_M" -- "$G4" show PIRATE:latest
expect 0 "thinking" -- "$G4" show pirate
expect 0 "temperature +0.6" -- "$G4" show pirate
expect 0 "You are a pirate" -- "$G4" show pirate
expect 0 "Gemma Terms of Use" -- "$G4" show pirate
expect 0 "^You are a pirate.$" -- "$G4" show pirate --system
expect 0 "^stop +\"</s>\"$" -- "$G4" show pirate --parameters
expect 0 "^second line$" -- "$G4" show pirate --license
expect 0 "^FROM $G4_MODELS/blobs/sha256-$sum_before$" -- "$G4" show pirate --modelfile
expect 0 "^PARAMETER num_ctx 2048$" -- "$G4" show pirate --modelfile
expect 0 "^MESSAGE assistant \"A pirate, arr.\"$" -- "$G4" show pirate --modelfile
expect 0 "chat template" -- "$G4" show pirate --template
expect 0 "Metadata" -- "$G4" show pirate -v
expect 0 "tokenizer.ggml.tokens +\[.*values" -- "$G4" show pirate -v
check '"$G4" show pirate --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d[\"capabilities\"] == [\"completion\", \"tools\", \"thinking\"], d[\"capabilities\"]
assert d[\"model_info\"][\"general.architecture\"] == \"gemma4\"
assert d[\"model_info\"].get(\"tokenizer.ggml.tokens\", []) == []
assert d[\"system\"].startswith(\"You are a pirate\") and d[\"messages\"][0][\"role\"] == \"user\"
assert \"num_ctx\" in d[\"parameters\"] and d[\"details\"][\"family\"] == \"gemma4\"
"' "show --json is /api/show"
expect 0 "architecture +gemma4" -- "$G4" show "$ORACLE/models/moe-Q8_0.gguf"
expect 0 "quantization +Q8_0" -- "$G4" show "$ORACLE/models/moe-Q8_0.gguf"
expect 1 "model 'nothere' not found" -- "$G4" show nothere

# the regenerated Modelfile makes the same model again
"$G4" show pirate --modelfile >"$tmp/Modelfile2"
expect 0 "success" -- "$G4" create pirate2 -f "$tmp/Modelfile2"
check '[ "$("$G4" list | awk "/^Pirate:/ {print \$2}")" = "$("$G4" list | awk "/^pirate2:/ {print \$2}")" ]' "same ID from show --modelfile"

# FROM a stored model, with a namespace and tag; TEMPLATE kept for reference
printf 'FROM pirate\nPARAMETER temperature 0\nTEMPLATE """{{ .Prompt }}"""\n' >"$tmp/Modelfile3"
expect 0 "TEMPLATE is kept for reference only" -- "$G4" create me/captain:v2 -f "$tmp/Modelfile3"
expect 0 "parent model +Pirate:latest" -- "$G4" show me/captain:v2
expect 0 "^temperature +0$" -- "$G4" show me/captain:v2 --parameters
expect 0 "^num_ctx +2048$" -- "$G4" show me/captain:v2 --parameters
expect 0 "kept for reference only" -- "$G4" show me/captain:v2 --template
expect 0 "^me/captain:v2 " -- "$G4" list

# --copy: a separate file; --models DIR instead of the environment
expect 0 "copying model data" -- "$G4" create copied -f "$tmp/src/Modelfile" --copy --models "$tmp/other"
check '[ "$(stat -c %i "$tmp/other/blobs/sha256-$sum_before")" != "$(stat -c %i "$tmp/src/model.gguf")" ]' "--copy copies"
check '[ "$(stat -c %a "$tmp/other/blobs/sha256-$sum_before")" = 444 ]' "copied blob read-only"
expect 0 "^copied:latest" -- "$G4" list --models "$tmp/other"
expect 0 "^NAME" -- env -u G4_MODELS HOME="$tmp/home" "$G4" list
expect 0 "" -- env -u G4_MODELS HOME="$tmp/home" "$G4" create h -f "$tmp/src/Modelfile" -q
check '[ ! -s "$tmp/out" ]' "-q prints nothing"
check '[ -f "$tmp/home/.local/share/g4/models/manifests/library/h/latest.json" ]' "default store under HOME"
expect 0 "success" -- env -u G4_MODELS XDG_DATA_HOME="$tmp/xdg" "$G4" create x -f "$tmp/src/Modelfile"
check '[ -f "$tmp/xdg/g4/models/manifests/library/x/latest.json" ]' "default store under XDG_DATA_HOME"

# cp and rm: the blob stays while a name uses it, the user's file always
expect 0 "copied 'pirate' to 'backup:1'" -- "$G4" cp pirate backup:1
expect 0 "^backup:1 " -- "$G4" list
expect 1 "model 'ghost' not found" -- "$G4" cp ghost x
expect 0 "deleted 'pirate'" -- "$G4" rm pirate
expect 0 "deleted 'pirate2'" -- "$G4" rm pirate2 me/captain:v2
check '[ -f "$blob" ]' "blob kept for backup:1"
expect 1 "model 'pirate' not found" -- "$G4" rm pirate backup:1
check '[ ! -e "$blob" ]' "blob removed with its last name"
check '[ "$(sha256sum "$tmp/src/model.gguf" | cut -d" " -f1)" = "$sum_before" ]' "user's file untouched"
check '[ -z "$(ls "$G4_MODELS/manifests")" ]' "empty manifest directories removed"
expect 0 "^NAME +ID +SIZE +MODIFIED$" -- "$G4" list

# names: traversal and friends refused, nothing created
for n in ../x a/../../b /etc/passwd %2e%2e "x y" .x x/-y a/b/c x:: "$(printf 'a\tb')"; do
    expect 1 "invalid model name|empty" -- "$G4" create "$n" -f "$tmp/src/Modelfile"
done
check '[ -z "$(ls "$G4_MODELS/manifests")" ]' "no manifest from an invalid name"
expect 1 "invalid model name" -- "$G4" rm ../../x
expect 1 "invalid model name" -- "$G4" cp pirate ../../x

# Modelfile errors name the line
mf() { printf "$1" >"$tmp/bad.mf"; expect "${3:-1}" "$2" -- "$G4" create bad -f "$tmp/bad.mf"; }
mf 'FROM ./src/model.gguf\nPARAMETER temperature warm\n' "line 2: parameter temperature: 'warm' is not a number"
mf 'FROM ./src/model.gguf\n\nPARAMETER num_thread 4\n' "line 3: parameter 'num_thread' is an Ollama option g4 does not use"
mf 'FROM ./src/model.gguf\nPARAMETER mirror 1\n' "line 2: parameter 'mirror'|line 2: unknown parameter 'mirror'"
mf 'FROM ./src/model.gguf\nADAPTER ./lora.gguf\n' "line 2: ADAPTER: LoRA adapters are not supported yet"
mf 'FROM ./src/model.gguf\nSYSTEM """\nopen\n' 'line 2: SYSTEM: the """ is never closed'
mf 'FROM ./src/model.gguf\nMESSAGE robot hi\n' "line 2: MESSAGE role must be user, assistant or system"
mf 'FROMM x\n' "line 1: unknown instruction 'FROMM'"
mf 'SYSTEM hi\n' "no FROM line"
mf 'FROM ./missing.gguf\n' "FROM './missing.gguf': cannot open"
mf 'FROM nosuchmodel\n' "FROM 'nosuchmodel': no such model"
mf 'FROM ./src\n' "is a directory: g4 reads GGUF files"
mf "FROM $(cd "$ORACLE" && pwd)/README.md\n" "not a GGUF|GGUF"
check '! "$G4" list | grep -q "^bad"' "no model from a bad Modelfile"
check '[ -z "$(ls -A "$G4_MODELS/blobs")" ]' "no blob left behind by failed creates"
expect 1 "cannot read the Modelfile" -- "$G4" create y -f "$tmp/nope"
expect 2 "no model name" -- "$G4" create
expect 2 "one at a time" -- "$G4" show x --system --license

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
