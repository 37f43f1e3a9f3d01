#!/usr/bin/env python3
"""bench/report.py: bench/results.md (and the gnuplot data files) from the JSON lines bench/run.sh collected."""
import argparse
import json
import os

# llama.cpp build 34af94cd9, 2 threads, llama-bench -p 512 -n 128, same kind of machine (issue #4)
ISSUE = {"f16": (36.3, 5.62, 6.5), "q8_0": (34.4, 5.81, 12.2), "q4_0": (47.3, 8.63, 21.2), "q4_k": (47.5, 8.88, 20.2)}
LABEL = {"f16": "F16", "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_k": "Q4_K (synth; ≈Q4_K_M)"}

ap = argparse.ArgumentParser()
for a in ("results", "out", "types", "depths", "depth-type", "cpu", "date", "g4-version", "load"):
    ap.add_argument("--" + a, required=True)
for a in ("threads", "prompt", "gen", "depth-prompt", "depth-gen", "elapsed"):
    ap.add_argument("--" + a, type=int, required=True)
ap.add_argument("--bw", type=float, required=True)
ap.add_argument("--bw-measured", type=float, default=0.0)
ap.add_argument("--kv-types", default="")
ap.add_argument("--kv-depths", default="")
ap.add_argument("--kv-fill", default="random")
a = ap.parse_args()


def load(name):
    try:
        with open(os.path.join(a.results, name + ".json")) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def f(x, d=2):
    return "n/a" if x is None else f"{x:.{d}f}"


def ratio(x, y):
    return "n/a" if x is None or not y else f"{x / y:.2f}×"


def get(r, k):
    return None if r is None else r.get(k)


def gb(x, d=2):
    return "n/a" if x is None else f"{x / 1e9:.{d}f} GB"


def mib(x):
    return "n/a" if x is None else f"{x / 2**20:.0f} MiB"


types = a.types.split()
depths = [int(d) for d in a.depths.split()]
isa = next((r["isa"] for t in types for r in [load("g4-" + t)] if r), "?")
llama_engine = next((r["engine"] for t in types for r in [load("llama-" + t)] if r), None)
L = []
L.append("# g4 benchmark results\n")
L.append(f"{a.date}, {a.cpu}, {a.threads} threads, g4 {a.g4_version} (kernels: **{isa}**), "
         f"{llama_engine or 'llama.cpp: not available'}.")
L.append(f"Written by `make bench` ({a.elapsed} s of measuring; load average {a.load}); "
         "method and bound: `docs/performance.md`.")
L.append("Random-weight E2B-shaped Gemma 4 files from `g4 synth --variant e2b --scale full --seed 1` (262144 vocab, "
         "PLE, KV sharing), f16 KV cache, flash attention off, both engines on the same file with the same threads, "
         "back to back, after the file was read into the page cache. One repetition each (medians with `--reps`).\n")
try:
    busy = float(a.load.split()[0]) > 0.5
except ValueError:
    busy = False
if busy:
    L.append(f"**Warning: the machine was busy (load average {a.load}).** llama.cpp's worker threads spin at "
             "barriers and lose most of their speed when another process takes a core; its numbers here are "
             "then far below an idle machine's (compare the issue's column). Re-run `make bench` on an idle "
             "machine before quoting ratios.\n")
L.append(f"## Side by side: prompt {a.prompt} tokens, decode {a.gen} tokens\n")
if (a.prompt, a.gen) == (512, 128):
    L.append("llama-bench's pp512 / tg128 measure; the last columns: llama.cpp at 512 / 128 in a separate run here "
             "(only with BENCH_LLAMA_REF=1) and in the issue (build 34af94cd9, a machine with AVX-512). "
             f"Bound: bytes streamed per decoded token over {a.bw} GB/s.\n")
else:
    L.append(f"Smaller than llama-bench's pp512 / tg128; the last columns are llama.cpp at 512 / 128 here and in "
             f"the issue (build 34af94cd9) for reference. Bound: bytes streamed per decoded token over {a.bw} GB/s.\n")
if a.bw_measured:
    L.append(f"Read bandwidth measured here right after the runs (bench/membw, {a.threads} threads, huge pages, best of 10 passes with and without software prefetch): "
             f"{a.bw_measured} GB/s; the \"% of measured bw\" columns are decode tok/s x bytes streamed per token "
             "over it.\n")
L.append("| weights | file | g4 prompt tok/s | llama.cpp prompt tok/s | g4 / llama | g4 decode tok/s | "
         "llama.cpp decode tok/s | g4 / llama | decode bound | g4 % of bound | g4 % of measured bw | "
         "llama.cpp % of measured bw | llama.cpp pp512 / tg128 here | issue pp512 / tg128 |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
def pct_bw(tg, streamed):
    if not tg or not streamed or not a.bw_measured:
        return "n/a"
    return f"{100 * tg * streamed / (a.bw_measured * 1e9):.0f}%"


type_dat = []
for t in types:
    g, l, r = load("g4-" + t), load("llama-" + t), load("llamaref-" + t)
    streamed = get(g, "streamed_bytes_per_token")
    bound = streamed and a.bw * 1e9 / streamed
    gpp, gtg, lpp, ltg = get(g, "pp_tok_s"), get(g, "tg_tok_s"), get(l, "pp_tok_s"), get(l, "tg_tok_s")
    iss = ISSUE.get(t)
    L.append(f"| {LABEL.get(t, t)} | {gb(get(g, 'file_bytes'))} | "
             f"{f(gpp)} | {f(lpp)} | {ratio(gpp, lpp)} | {f(gtg)} | {f(ltg)} | {ratio(gtg, ltg)} | {f(bound, 1)} | "
             f"{'n/a' if not gtg or not bound else f'{100 * gtg / bound:.0f}%'} | "
             f"{pct_bw(gtg, streamed)} | {pct_bw(ltg, streamed)} | "
             f"{f(get(r, 'pp_tok_s'), 1)} / {f(get(r, 'tg_tok_s'), 2)} | "
             f"{f'{iss[0]} / {iss[1]}' if iss else 'n/a'} |")
    type_dat.append(f"{LABEL.get(t, t).split(' ')[0]} {gpp or 0} {lpp or 0} {gtg or 0} {ltg or 0} {bound or 0}")
L.append("")
L.append("## Latency and memory (same runs)\n")
L.append("| weights | g4 time to first token (s) | llama.cpp (s) | g4 load (s) | llama.cpp load (s) | g4 peak RSS | "
         "llama.cpp peak RSS (node incl.) | g4 KV at end | KV bytes per extra token | streamed per token |")
L.append("|---|---|---|---|---|---|---|---|---|---|")
for t in types:
    g, l = load("g4-" + t), load("llama-" + t)
    L.append(f"| {LABEL.get(t, t)} | {f(get(g, 'ttft_s'), 2)} | {f(get(l, 'ttft_s'), 2)} | {f(get(g, 'load_s'), 2)} | "
             f"{f(get(l, 'load_s'), 2)} | {mib(get(g, 'peak_rss_bytes'))} | {mib(get(l, 'peak_rss_bytes'))} | "
             f"{mib(get(g, 'kv_bytes'))} | {get(g, 'kv_bytes_per_token') or 'n/a'} B | "
             f"{gb(get(g, 'streamed_bytes_per_token'), 3)} |")
L.append("")
L.append(f"## Decode by context depth ({LABEL.get(a.depth_type, a.depth_type)})\n")
L.append(f"The cache is first filled with D tokens (not timed), then a {a.depth_prompt}-token prompt and "
         f"{a.depth_gen} decode steps are measured (so decode runs at depth D+{a.depth_prompt}).\n")
L.append("| depth | g4 prompt tok/s | llama.cpp prompt tok/s | g4 decode tok/s | llama.cpp decode tok/s | g4 / llama decode | g4 KV at end |")
L.append("|---|---|---|---|---|---|---|")
depth_dat = []
for d in depths:
    g, l = load(f"g4-depth-{d}"), load(f"llama-depth-{d}")
    L.append(f"| {d} | {f(get(g, 'pp_tok_s'))} | {f(get(l, 'pp_tok_s'))} | {f(get(g, 'tg_tok_s'))} | "
             f"{f(get(l, 'tg_tok_s'))} | {ratio(get(g, 'tg_tok_s'), get(l, 'tg_tok_s'))} | {mib(get(g, 'kv_bytes'))} |")
    depth_dat.append(f"{d} {get(g, 'tg_tok_s') or 0} {get(l, 'tg_tok_s') or 0} {get(g, 'pp_tok_s') or 0} {get(l, 'pp_tok_s') or 0}")
L.append("")
L.append("Plots: `bench/tok_s_by_type.png`, `bench/tok_s_by_depth.png` (gnuplot; skipped when it is not installed).")
L.append("Raw results: one JSON object per run in `build/bench/results/` (`g4 bench --json`, `bench/llama_bench.mjs --json`).")
# KV cache types by context (issue #5)
kv_types, kv_depths = a.kv_types.split(), [int(d) for d in a.kv_depths.split()]
kv_dat = []
if kv_types and kv_depths:
    L.append("")
    L.append(f"## KV cache types by context ({LABEL.get(a.depth_type, a.depth_type)}, `g4 bench --kv`)\n")
    L.append(f"Decode tok/s at depth D (a {a.depth_prompt}-token prompt, then {a.depth_gen} decode steps) and the KV "
             "cache allocated for the context (D + prompt + decode). The compressed types apply to the full-attention "
             "layers, sliding layers stay f16 (`docs/turboquant.md`). "
             + ("The cache was filled with random K/V vectors (`--fill random`): decode speed does not depend on the "
                "values. " if a.kv_fill == "random" else "") +
             "Plot: `bench/kv_by_context.png`.\n")
    L.append("| depth | " + " | ".join(f"{t} decode tok/s" for t in kv_types) + " | "
             + " | ".join(f"{t} / f16" for t in kv_types if t != "f16") + " | "
             + " | ".join(f"{t} KV" for t in kv_types) + " |")
    L.append("|---" * (1 + 2 * len(kv_types) + len([t for t in kv_types if t != "f16"])) + "|")
    for d in kv_depths:
        rs = {t: load(f"g4-kv-{t}-{d}") for t in kv_types}
        f16 = get(rs.get("f16"), "tg_tok_s")
        L.append(f"| {d} | " + " | ".join(f(get(rs[t], "tg_tok_s")) for t in kv_types) + " | "
                 + " | ".join(ratio(get(rs[t], "tg_tok_s"), f16) for t in kv_types if t != "f16") + " | "
                 + " | ".join(mib(get(rs[t], "kv_bytes")) for t in kv_types) + " |")
        kv_dat.append(f"{d + a.depth_prompt + a.depth_gen} " + " ".join(
            f"{get(rs[t], 'tg_tok_s') or 0} {(get(rs[t], 'kv_bytes') or 0) / 2**20:.3f}" for t in kv_types))
    per = {t: get(load(f"g4-kv-{t}-{kv_depths[-1]}"), "kv_bytes_per_token") for t in kv_types}
    if per.get("f16"):
        L.append("")
        L.append("KV bytes per token of context: " + ", ".join(
            f"{t} {per[t]} B ({per[t] / per['f16']:.3f}× f16)" for t in kv_types if per.get(t)) + ".")
with open(a.out, "w") as out:
    out.write("\n".join(L) + "\n")
if kv_dat:
    with open(os.path.join(a.results, "kv.dat"), "w") as out:
        out.write("# context " + " ".join(f"{t}_tg {t}_kv_mib" for t in kv_types) + "\n" + "\n".join(kv_dat) + "\n")
with open(os.path.join(a.results, "type.dat"), "w") as out:
    out.write("# type g4_pp llama_pp g4_tg llama_tg bound\n" + "\n".join(type_dat) + "\n")
with open(os.path.join(a.results, "depth.dat"), "w") as out:
    out.write("# depth g4_tg llama_tg g4_pp llama_pp\n" + "\n".join(depth_dat) + "\n")
