#!/usr/bin/env python3
"""g4 against llama.cpp on files made by `g4 synth`: every variant, several weight types.

    tests/llama_compare.py G4_BINARY [--node-modules DIR] [--types f32,q8_0,q4_0] [--keep DIR]

For each variant and type it writes a tiny random-weight model with `g4 synth`, runs the same token
sequence through `g4 logits --all` and through llama.cpp (tools/llama_check.mjs, node-llama-cpp), and
requires at every position: the same most likely next token wherever llama.cpp's top-1/top-2 gap is
clear (> 0.25 for float weights; > 1.0 for quantized ones, where both engines round activations to 8
bits and differ by a few % of the logits' rms, like llama.cpp's own runs), the top-5 sets overlapping in at least 3 tokens, and a relative rms difference of the
logits below 5% (quantized activations make both engines differ from the exact result by a few %).
Prints one line per file and "N passed, N failed". Without node-llama-cpp it says so and counts nothing.
"""
import array, math, os, subprocess, sys, tempfile

def load(path, V):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return [a[i:i + V] for i in range(0, len(a), V)]

def top(r, k):
    return sorted(range(len(r)), key=lambda i: -r[i])[:k]

def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    g4 = args[0]
    nm = os.environ.get("G4_LLAMA_NODE_MODULES", "/work/llamacpp/node_modules")
    types = ["f32", "f16", "q8_0", "q4_0"]
    keep = None
    i = 1
    while i < len(args):
        if args[i] == "--node-modules":
            nm = args[i + 1]; i += 1
        elif args[i] == "--types":
            types = args[i + 1].split(","); i += 1
        elif args[i] == "--keep":
            keep = args[i + 1]; i += 1
        i += 1
    if not os.path.isdir(os.path.join(nm, "node-llama-cpp")):
        print("node-llama-cpp not found in %s: llama.cpp comparison skipped" % nm)
        print("0 passed, 0 failed")
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    check = os.path.join(here, "..", "tools", "llama_check.mjs")
    tmp = keep or tempfile.mkdtemp(prefix="g4-llama-")
    # BOS, a chat turn opener, ordinary pieces, byte tokens, long enough to cross the 16-token window
    toks = [2, 5, 300, 301, 302, 263, 400, 401, 77, 120, 350, 351, 352, 6, 263, 5, 329, 443, 321, 328, 263,
            410, 411, 412, 413, 200, 201, 202, 480, 481]
    ids = ",".join(map(str, toks))
    npass = nfail = 0
    for variant in ["e2b", "e4b", "26b-a4b", "31b"]:
        for t in types:
            path = os.path.join(tmp, "%s-%s.gguf" % (variant, t))
            subprocess.run([g4, "synth", "--variant", variant, "--scale", "tiny", "--type", t, "--seed", "7",
                            "--out", path, "--quiet"], check=True)
            g = os.path.join(tmp, "g4.f32"); l = os.path.join(tmp, "llama.f32")
            subprocess.run([g4, "logits", path, "--tokens", ids, "--all", "--out", g], check=True)
            r = subprocess.run(["node", check, path, "--tokens", ids, "--all", "--out", l, "--node-modules", nm],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if r.returncode != 0:
                print("FAIL  %s %s: llama.cpp: %s" % (variant, t, r.stderr.decode()[-300:]))
                nfail += 1
                continue
            V = os.path.getsize(g) // 4 // len(toks)
            G, L = load(g, V), load(l, V)
            bad_top1 = overlap_min = 0
            overlap_min = 5
            d2 = r2 = 0.0
            for gr, lr in zip(G, L):
                tl = top(lr, 5); tg = top(gr, 5)
                gap = lr[tl[0]] - lr[tl[1]]
                if gap > (0.25 if t in ("f32", "f16", "bf16") else 1.0) and tg[0] != tl[0]:
                    bad_top1 += 1
                overlap_min = min(overlap_min, len(set(tl) & set(tg)))
                d2 += sum((a - b) ** 2 for a, b in zip(gr, lr)); r2 += sum(b * b for b in lr)
            rms = math.sqrt(d2 / r2)
            ok = bad_top1 == 0 and overlap_min >= 3 and rms < 0.05
            print("%s  %-8s %-5s top-1 disagreements %d, min top-5 overlap %d/5, rms diff %.4f" %
                  ("PASS" if ok else "FAIL", variant, t, bad_top1, overlap_min, rms))
            npass += ok; nfail += not ok
    print("%d passed, %d failed" % (npass, nfail))
    return 0 if nfail == 0 else 1

sys.exit(main())
