#!/usr/bin/env node
// llama_bench.mjs — the llama.cpp side of `make bench`: the same measures as `g4 bench --json` on the same
// GGUF file and the same number of threads, with llama.cpp's prebuilt CPU library as shipped by the npm
// package node-llama-cpp (flash attention off, f16 KV cache by default, like `llama-bench -p 512 -n 128`).
//
// One repetition (as g4 bench does it): a fresh sequence; --depth D pseudo-random tokens evaluated without
// timing; a --prompt N token prompt evaluated in one batch (timed: prompt tok/s; time to first token = the
// prompt plus sampling the first token); then --gen G decode steps of one token each, greedy (timed: decode
// tok/s). Medians of --reps R. Prints a short table and, with --json, one JSON object on the last line.
//
// Usage:
//   node bench/llama_bench.mjs MODEL.gguf [--threads N] [--prompt N] [--gen N] [--depth N] [--kv f16|f32]
//        [--reps R] [--seed S] [--json] [--node-modules DIR]
//   --node-modules   the node_modules directory holding node-llama-cpp (default: $G4_LLAMA_NODE_MODULES,
//                    then /work/llamacpp/node_modules, then build/npm-llama/node_modules)
// Exit status: 0 on success, 1 when llama.cpp fails, 2 for bad arguments.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
function usage(msg) {
    if (msg) console.error(`llama_bench: ${msg}`);
    console.error("usage: node bench/llama_bench.mjs MODEL.gguf [--threads N] [--prompt N] [--gen N] [--depth N] " +
        "[--kv f16|f32] [--reps R] [--seed S] [--json] [--node-modules DIR]");
    process.exit(2);
}

const args = { model: null, threads: 2, prompt: 512, gen: 128, depth: 0, kv: "f16", reps: 1, seed: 1, json: false,
    nodeModules: process.env.G4_LLAMA_NODE_MODULES || null };
const argv = process.argv.slice(2);
const intArg = (name, s, lo, hi) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < lo || n > hi) usage(`bad ${name} '${s}' (${lo}..${hi})`);
    return n;
};
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === "-h" || a === "--help") usage();
    else if (a === "--threads") args.threads = intArg(a, val(), 1, 256);
    else if (a === "--prompt") args.prompt = intArg(a, val(), 1, 1 << 20);
    else if (a === "--gen") args.gen = intArg(a, val(), 1, 1 << 20);
    else if (a === "--depth") args.depth = intArg(a, val(), 0, 1 << 22);
    else if (a === "--reps") args.reps = intArg(a, val(), 1, 64);
    else if (a === "--seed") args.seed = intArg(a, val(), 0, 0x7fffffff);
    else if (a === "--kv") args.kv = val();
    else if (a === "--json") args.json = true;
    else if (a === "--node-modules") args.nodeModules = val();
    else if (a.startsWith("-")) usage(`unknown option ${a}`);
    else if (!args.model) args.model = a;
    else usage(`unexpected argument ${a}`);
}
if (!args.model) usage("no model given");
if (!fs.existsSync(args.model)) usage(`no such file: ${args.model}`);
if (args.kv !== "f32" && args.kv !== "f16") usage("--kv must be f32 or f16");

const candidates = args.nodeModules ? [args.nodeModules]
    : ["/work/llamacpp/node_modules", path.join(here, "..", "build", "npm-llama", "node_modules")];
const nm = candidates.find((d) => fs.existsSync(path.join(d, "node-llama-cpp", "dist", "index.js")));
if (!nm) usage(`node-llama-cpp not found in ${candidates.join(" or ")} (set G4_LLAMA_NODE_MODULES or --node-modules)`);
const nlcVersion = JSON.parse(fs.readFileSync(path.join(nm, "node-llama-cpp", "package.json"), "utf8")).version;
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(nm, "node-llama-cpp", "dist", "index.js")).href);

let stop = false;
process.on("SIGINT", () => { stop = true; });

const tLoad0 = performance.now();
const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    logLevel: LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath: path.resolve(args.model), gpuLayers: 0, useMmap: true });
const nVocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length ?? 262144;
const nCtx = args.depth + args.prompt + args.gen + 8;
const context = await model.createContext({
    contextSize: nCtx,
    batchSize: Math.min(Math.max(args.prompt, args.depth, 1), 2048),
    threads: args.threads,
    flashAttention: false,
    experimentalKvCacheKeyType: args.kv.toUpperCase(),
    experimentalKvCacheValueType: args.kv.toUpperCase(),
});
const loadS = (performance.now() - tLoad0) / 1000;

let rng = (BigInt(args.seed) ^ 0x9E3779B97F4A7C15n) & 0xFFFFFFFFFFFFFFFFn;
function randomTokens(n) { // xorshift64*, ids in [4, n_vocab) like g4 bench
    const out = new Array(n);
    const M = 0xFFFFFFFFFFFFFFFFn;
    for (let i = 0; i < n; i++) {
        let x = rng;
        x ^= x >> 12n; x ^= (x << 25n) & M; x ^= x >> 27n;
        rng = x;
        out[i] = 4 + Number((((x * 0x2545F4914F6CDD1Dn) & M) >> 33n) % BigInt(nVocab - 4));
    }
    return out;
}

const median = (v) => { const t = [...v].sort((a, b) => a - b); const n = t.length;
    return n % 2 ? t[(n - 1) / 2] : (t[n / 2 - 1] + t[n / 2]) / 2; };
const pp = [], tg = [], ttft = [];
for (let r = 0; r < args.reps && !stop; r++) {
    const seq = context.getSequence();
    if (args.depth > 0) await seq.evaluateWithoutGeneratingNewTokens(randomTokens(args.depth));
    const prompt = randomTokens(args.prompt);
    const t0 = performance.now();
    const it = seq.evaluate(prompt, { temperature: 0 });
    let res = await it.next(); // the prompt in one batch + the first token
    const t1 = performance.now();
    for (let i = 0; i < args.gen && !res.done && !stop; i++) res = await it.next(res.value); // one token per step
    const t2 = performance.now();
    await it.return();
    seq.dispose();
    if (stop) break;
    ttft.push((t1 - t0) / 1000);
    pp.push(args.prompt / ((t1 - t0) / 1000));
    tg.push(args.gen / ((t2 - t1) / 1000));
    if (!args.json) console.error(`  rep ${r + 1}: prompt ${pp.at(-1).toFixed(2)} tok/s, decode ${tg.at(-1).toFixed(2)} tok/s`);
}
if (stop) {
    console.error("llama_bench: interrupted");
    process.exit(130);
}
const result = {
    model: args.model,
    engine: `llama.cpp via node-llama-cpp ${nlcVersion} (binaries ${llama.llamaCppRelease?.release ?? "?"})`,
    node_llama_cpp: nlcVersion,
    llama_cpp_release: llama.llamaCppRelease?.release ?? null,
    threads: args.threads, kv_type: args.kv, flash_attention: false,
    n_prompt: args.prompt, n_gen: args.gen, depth: args.depth, reps: args.reps,
    pp_tok_s: median(pp), tg_tok_s: median(tg), ttft_s: median(ttft), load_s: loadS,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024, // includes node itself (~50 MB)
    llama_state_size: context.stateSize ?? null, // as llama.cpp reports it (not comparable to kv_bytes)
    pp_runs: pp, tg_runs: tg,
};
console.log(`llama.cpp ${result.engine}: ${path.basename(args.model)}, ${args.threads} threads, ` +
    `prompt ${args.prompt}, decode ${args.gen}, depth ${args.depth}`);
console.log(`  prompt tok/s ${result.pp_tok_s.toFixed(2)}, decode tok/s ${result.tg_tok_s.toFixed(2)}, ` +
    `time to first token ${result.ttft_s.toFixed(3)} s, load ${loadS.toFixed(3)} s, peak RSS ${(result.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB`);
if (args.json) console.log(JSON.stringify(result));
await context.dispose();
await model.dispose();
await llama.dispose();
process.exit(0);
