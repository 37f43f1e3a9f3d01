#!/usr/bin/env python3
"""bench/serve.sh's report: results.jsonl -> a markdown table (bench/serve_results.md) and gnuplot data."""
import json
import sys
import time

src, md, dat, machine, tokens, reqs, threads = sys.argv[1:8]
rows = [json.loads(l) for l in open(src) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["engine"], {})[r["r"]["concurrency"]] = r
engines = list(by)
levels = sorted({c for e in by.values() for c in e})
with open(md, "w") as f:
    f.write("# g4 serve: aggregate decode throughput by concurrency\n\n")
    f.write(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine}; full-size E2B-shaped Q4_0 file (random "
            f"weights), {threads} engine threads, each client streams {reqs} /v1/completions of {tokens} tokens (greedy) "
            "one after the other; both servers run back to back in one `make bench-serve`.\n\n")
    f.write("| streams | " + " | ".join(f"{e} tok/s | {e} TTFT p50 / max (s) | {e} failed" for e in engines)
            + (" | g4 / llama-server" if len(engines) > 1 else "") + " |\n")
    f.write("|---:|" + "---:|---:|---:|" * len(engines) + ("---:|" if len(engines) > 1 else "") + "\n")
    for c in levels:
        cells = []
        for e in engines:
            r = by[e].get(c)
            if not r:
                cells += ["-", "-", "-"]
                continue
            x = r["r"]
            cells += [f"{x['tok_s']:.2f}", f"{x['ttft_p50_s']:.2f} / {x['ttft_max_s']:.2f}", str(x["failed"])]
        ratio = ""
        if len(engines) > 1 and c in by[engines[0]] and c in by[engines[1]] and by[engines[1]][c]["r"]["tok_s"]:
            ratio = f" | {by[engines[0]][c]['r']['tok_s'] / by[engines[1]][c]['r']['tok_s']:.2f}x"
        elif len(engines) > 1:
            ratio = " | -"
        f.write(f"| {c} | " + " | ".join(cells) + ratio + " |\n")
    g = by.get("g4", {})
    if 1 in g and 8 in g and g[1]["r"]["tok_s"]:
        f.write(f"\ng4: 8 streams give {g[8]['r']['tok_s'] / g[1]['r']['tok_s']:.2f}x the tokens/s of one stream.\n")
    for e in engines:
        rss = max(r["rss_kib"] for r in by[e].values())
        f.write(f"{e}: resident memory after the runs {rss / 1048576:.2f} GiB.\n")
with open(dat, "w") as f:
    f.write("# streams " + " ".join(engines) + "\n")
    for c in levels:
        f.write(str(c) + " " + " ".join(str(by[e][c]["r"]["tok_s"]) if c in by[e] else "NaN" for e in engines) + "\n")
print(open(md).read())
