#!/usr/bin/env bash
# Quality of the compressed KV cache (issue #5) on oracle models: g4 eval with every token attending to the
# compressed cache (--chunk 1), against the same model with an f16 cache, on a public-domain text (the first
# 12 kB of the oracle's tokenizer corpus: Jane Austen's Persuasion), one window of 512 tokens.
# Bounds on the mean KL divergence (docs/turboquant.md): q8 <= 0.005, tq4 <= 0.012, k=tq4,v=tq3 <= 0.02;
# top-1 agreement >= 99% / 95% / 93%. Quantized weights run with --exact (without it the 8-bit activation
# quantization's rounding flips add a noise floor of their own: an f32 cache moves those files' logits by
# KL 0.01-0.02 too). Also: memory per token of the tiny files as the record sizes say, and the eval errors.
#   BUILD      build directory holding g4 (default build)
#   G4_ORACLE  oracle pack (default ../shared/oracle)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

zcat "$ORACLE/tokenizer/corpus.txt.gz" | head -c 12000 >"$tmp/text.txt"

# model  kv  max-KL  min-top1
checks="e2b-F32 q8 0.005 0.99
e2b-F32 tq4 0.012 0.95
e2b-F32 k=tq4,v=tq3 0.02 0.93
e4b-F16 q8 0.005 0.99
e4b-F16 tq4 0.012 0.95
e4b-F16 k=tq4,v=tq3 0.02 0.93
dense-Q8_0 q8 0.005 0.99
dense-Q8_0 tq4 0.012 0.95
dense-Q8_0 k=tq4,v=tq3 0.02 0.93
moe-F16 tq4 0.012 0.95"
while read -r model kv maxkl mintop; do
    exact=
    case $model in *Q8_0 | *Q4*) exact=--exact ;; esac
    out="$tmp/$model-$kv.out"
    if "$G4" eval "$ORACLE/models/$model.gguf" --file "$tmp/text.txt" --kv "$kv" --chunk 1 --ctx 512 --limit 511 \
        --threads 1 --json --quiet $exact >"$out" 2>&1; then
        if tail -n 1 "$out" | python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
ok = d['n_tokens'] == 511 and d['kl_mean'] <= $maxkl and d['top1_agree'] >= $mintop and d['kl_mean'] > 0
print('%s %s: mean KL %.5f (bound $maxkl), top-1 %.1f%%, ppl %.4g vs %.4g' % ('$model', '$kv', d['kl_mean'], 100 * d['top1_agree'], d['ppl'], d['ppl_ref']))
sys.exit(0 if ok else 1)
"; then ok; else bad "$model --kv $kv: $(tail -n 1 "$out")"; fi
    else
        bad "g4 eval $model --kv $kv failed: $(head -c 400 "$out")"
    fi
done <<<"$checks"

# the f16 cache against itself: exactly 0 (the reference's chunking does not matter)
if "$G4" eval "$ORACLE/models/e2b-F32.gguf" --file "$tmp/text.txt" --kv f16 --chunk 1 --ctx 64 --limit 100 --json --quiet \
    | tail -n 1 | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if d['kl_mean'] == 0 and d['top1_agree'] == 1 else 1)"; then
    ok
else bad "f16 against f16 is not 0"; fi

# memory: KV bytes per token from g4 bench = the record sizes (tiny E2B: one full-attention cache of head dim 32)
B="$tmp/tiny.gguf"
"$G4" synth --variant e2b --out "$B" --quiet
for kv in f16 q8 tq4 tq3 tq2 k=tq4,v=tq3; do
    "$G4" bench "$B" --kv "$kv" --prompt 4 --gen 2 --depth 20 --fill random --threads 1 --json 2>/dev/null | tail -n 1 >"$tmp/bench-$kv.json"
done
if python3 - "$tmp" <<'PY'; then ok; else bad "KV bytes per token"; fi
import json, sys
per = {kv: json.load(open(f"{sys.argv[1]}/bench-{kv}.json"))["kv_bytes_per_token"]
       for kv in ("f16", "q8", "tq4", "tq3", "tq2", "k=tq4,v=tq3")}
want = {"f16": 2 * 64, "q8": 2 * 34, "tq4": 2 * 18, "tq3": 2 * 14, "tq2": 2 * 10, "k=tq4,v=tq3": 18 + 14}
print("KV bytes per token (head dim 32):", per)
sys.exit(0 if per == want else 1)
PY
if "$G4" bench "$B" --kv tq4 --prompt 4 --gen 2 --depth 20 --fill random --threads 1 2>&1 | grep -qE "KV cache +tq4: f16 on 4 sliding layers, tq4 on 1 full-attention layer"; then ok; else bad "bench KV summary"; fi

expect_info() { "$G4" info "$B" --kv "$1" --ctx 1000 --no-tensors --no-metadata 2>&1 | grep -qE -- "$2"; }
if expect_info tq4 "KV cache tq4,    1000 tok" && expect_info k=tq4,v=tq3 "KV cache types +f16 on 4 sliding layers, k=tq4,v=tq3 on 1" &&
    expect_info "tq3,4=q8" "q8 on 1 full-attention layer"; then ok; else bad "g4 info --kv"; fi

# eval's errors
expect() { # STATUS PATTERN -- CMD...
    local want=$1 pat=$2
    shift 3
    "$@" >"$tmp/o" 2>&1
    local rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -qE -- "$pat" "$tmp/o"; then bad "'$*' exited $rc (want $want), output: $(head -c 300 "$tmp/o")"; else ok; fi
}
M="$ORACLE/models/e2b-F32.gguf"
expect 0 "usage: g4 eval" -- "$G4" eval --help
expect 2 "--file TEXT or its ids with --tokens" -- "$G4" eval "$M"
expect 2 "unknown KV type 'tq9' in 'tq9' \(types: f32, f16, q8, tq4, tq3, tq2\)" -- "$G4" eval "$M" --file "$tmp/text.txt" --kv tq9
expect 2 "bad --chunk '0'" -- "$G4" eval "$M" --file "$tmp/text.txt" --chunk 0
expect 1 "cannot read" -- "$G4" eval "$M" --file "$tmp/missing.txt"
expect 1 "K tq4 with V f16" -- "$G4" eval "$M" --file "$tmp/text.txt" --kv k=tq4
expect 1 "nothing to predict" -- "$G4" eval "$M" --tokens 2
expect 0 "perplexity" -- "$G4" eval "$M" --tokens 2,17,305,9,44 --kv tq3 --no-ref
# a file without a vocabulary: a clear error, and --tokens works
python3 - "$M" "$tmp/novocab.gguf" <<'PY'
import struct, sys
# copy the GGUF without its tokenizer.* keys
src = open(sys.argv[1], "rb").read()
magic, ver, nt, nkv = struct.unpack_from("<IIQQ", src, 0)
off = 24
def rd_str(o):
    n = struct.unpack_from("<Q", src, o)[0]
    return src[o + 8:o + 8 + n], o + 8 + n
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip_val(t, o):
    if t == 8:
        return rd_str(o)[1]
    if t == 9:
        at, n = struct.unpack_from("<IQ", src, o)
        o += 12
        for _ in range(n):
            o = skip_val(at, o)
        return o
    return o + SIZES[t]
kept = []
for _ in range(nkv):
    k0 = off
    key, off = rd_str(off)
    t = struct.unpack_from("<I", src, off)[0]
    end = skip_val(t, off + 4)
    if not key.startswith(b"tokenizer."):
        kept.append(src[k0:end])
    off = end
tensors_start = off
for _ in range(nt):
    name, off = rd_str(off)
    nd = struct.unpack_from("<I", src, off)[0]
    off += 4 + 8 * nd + 4 + 8
infos = src[tensors_start:off]
align = 32
header = struct.pack("<IIQQ", magic, ver, nt, len(kept)) + b"".join(kept) + infos
data_off = (off + align - 1) // align * align
pad = (-len(header)) % align
open(sys.argv[2], "wb").write(header + b"\0" * pad + src[data_off:])
PY
expect 1 "has no tokenizer .*--tokens IDS" -- "$G4" eval "$tmp/novocab.gguf" --file "$tmp/text.txt"
expect 0 "mean KL" -- "$G4" eval "$tmp/novocab.gguf" --tokens 2,17,305,9,44,100,200,300 --kv tq4 --chunk 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
