#!/usr/bin/env node
// llama_check.mjs — run a GGUF file through llama.cpp (the prebuilt CPU build shipped by the npm package
// node-llama-cpp) and print the top-5 next tokens, so g4's logits can be compared with llama.cpp's.
// A developer tool: nothing in the build or the tests depends on it.
//
// Setup (once, outside the repo):
//   mkdir -p /work/llamacpp && cd /work/llamacpp && npm install node-llama-cpp @node-llama-cpp/linux-x64
//
// Usage:
//   node tools/llama_check.mjs MODEL.gguf [--tokens 2,345,17 | --text "hello world"] [--all]
//        [--node-modules DIR] [--out FILE] [--kv f32|f16] [--threads N] [--ctx N] [--verbose]
//
//   MODEL            a GGUF file (e.g. from `g4 synth`)
//   --tokens IDS     comma-separated token ids, fed as given (no BOS added); default: 2 (BOS) and a few ids
//   --text STR       tokenized by llama.cpp (BOS added, special tokens parsed), printed, then evaluated
//   --all            top-5 for every position, not only the last
//   --out FILE       write the logits as raw little-endian float32, row-major [positions x n_vocab]
//                    (all positions with --all, else the last one) — the oracle's logits format
//   --kv T           K/V cache type (default f32, like the oracle pack's llama.cpp runs)
//   --node-modules   the node_modules directory holding node-llama-cpp (default: $G4_LLAMA_NODE_MODULES,
//                    then /work/llamacpp/node_modules)
// Exit status: 0 when the model loaded and every logit is finite, 1 otherwise, 2 for bad arguments.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

function usage(msg) {
    if (msg) console.error(`llama_check: ${msg}`);
    console.error("usage: node tools/llama_check.mjs MODEL.gguf [--tokens IDS | --text STR] [--all] " +
        "[--out FILE] [--kv f32|f16] [--threads N] [--ctx N] [--node-modules DIR] [--verbose]");
    process.exit(2);
}

const args = { model: null, tokens: null, text: null, all: false, out: null, kv: "f32", threads: 2, ctx: 0,
    nodeModules: process.env.G4_LLAMA_NODE_MODULES || "/work/llamacpp/node_modules", verbose: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === "-h" || a === "--help") usage();
    else if (a === "--tokens") args.tokens = val().split(",").filter((s) => s.length).map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) usage(`bad token id '${s}'`);
        return n;
    });
    else if (a === "--text") args.text = val();
    else if (a === "--all") args.all = true;
    else if (a === "--out") args.out = val();
    else if (a === "--kv") args.kv = val();
    else if (a === "--threads") args.threads = Number(val());
    else if (a === "--ctx") args.ctx = Number(val());
    else if (a === "--node-modules") args.nodeModules = val();
    else if (a === "--verbose") args.verbose = true;
    else if (a.startsWith("-")) usage(`unknown option ${a}`);
    else if (!args.model) args.model = a;
    else usage(`unexpected argument ${a}`);
}
if (!args.model) usage("no model given");
if (!fs.existsSync(args.model)) usage(`no such file: ${args.model}`);
if (args.kv !== "f32" && args.kv !== "f16") usage("--kv must be f32 or f16");

const entry = path.join(path.resolve(args.nodeModules), "node-llama-cpp", "dist", "index.js");
if (!fs.existsSync(entry)) usage(`node-llama-cpp not found at ${entry} (set G4_LLAMA_NODE_MODULES or --node-modules)`);
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(entry).href);

const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: args.verbose ? LlamaLogLevel.debug : LlamaLogLevel.error,
});
const t0 = Date.now();
const model = await llama.loadModel({ modelPath: path.resolve(args.model), gpuLayers: 0, useMmap: true });
const nVocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length ?? null;

let tokens = args.tokens;
if (args.text !== null) {
    tokens = [...model.tokenize(args.text, true)];
    if (model.tokens.bos != null && tokens[0] !== model.tokens.bos) tokens.unshift(model.tokens.bos);
    console.log(`text ${JSON.stringify(args.text)} -> ${tokens.length} tokens: ${tokens.join(",")}`);
}
if (!tokens || tokens.length === 0) tokens = [2, 300, 301, 302, 303, 263, 320, 330];

const piece = (t) => JSON.stringify(model.detokenize([t], true));
const context = await model.createContext({
    contextSize: Math.max(args.ctx || 0, tokens.length + 16, 64),
    batchSize: Math.max(tokens.length, 1),
    threads: args.threads,
    flashAttention: false,
    experimentalKvCacheKeyType: args.kv.toUpperCase(),
    experimentalKvCacheValueType: args.kv.toUpperCase(),
});
const seq = context.getSequence();
const input = tokens.map((t, i) => (args.all || i === tokens.length - 1)
    ? [t, { generateNext: { logits: true } }] : t);
const res = await seq.controlledEvaluate(input);
const loadMs = Date.now() - t0;

let bad = 0, rows = [];
for (let i = 0; i < tokens.length; i++) {
    const r = res[i];
    if (!r || !r.next || !r.next.logits) continue;
    const logits = r.next.logits; // Map token -> logit, sorted high to low
    const n = nVocab ?? logits.size;
    const row = new Float32Array(n).fill(Number.NaN);
    for (const [t, v] of logits) {
        if (t < n) row[t] = v;
        if (!Number.isFinite(v)) bad++;
    }
    if (logits.size !== n) {
        console.error(`position ${i}: got ${logits.size} logits, vocabulary has ${n}`);
        bad++;
    }
    rows.push(row);
    const top = [...logits.entries()].slice(0, 5).map(([t, v]) => `${t} ${piece(t)} ${v.toFixed(4)}`);
    let sumsq = 0, cnt = 0;
    for (const v of row) if (Number.isFinite(v)) { sumsq += v * v; cnt++; }
    console.log(`pos ${i} (token ${tokens[i]}): top5 ${top.join(" | ")}  rms ${Math.sqrt(sumsq / Math.max(cnt, 1)).toFixed(3)}`);
}
if (args.out) {
    const buf = Buffer.alloc(rows.reduce((s, r) => s + r.length * 4, 0));
    let o = 0;
    for (const r of rows) for (const v of r) { buf.writeFloatLE(v, o); o += 4; }
    fs.writeFileSync(args.out, buf);
    console.log(`wrote ${rows.length} x ${rows[0]?.length ?? 0} float32 logits to ${args.out}`);
}
console.log(`${path.basename(args.model)}: n_vocab ${nVocab}, ${tokens.length} tokens, ` +
    `${bad ? bad + " non-finite/missing logits: FAIL" : "all logits finite: OK"} (${loadMs} ms)`);
await context.dispose();
await model.dispose();
await llama.dispose();
process.exit(bad ? 1 : 0);
