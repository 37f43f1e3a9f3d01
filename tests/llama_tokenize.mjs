#!/usr/bin/env node
// Tokenizes texts with llama.cpp itself (the prebuilt CPU build in the npm package node-llama-cpp, loading
// a vocab-only GGUF), for tests/tokenizer.sh's differential check against g4.
//   node tests/llama_tokenize.mjs NODE_MODULES VOCAB.gguf TEXTS.json OUT PARSE_SPECIAL(0|1)
// TEXTS.json is a JSON array of strings; OUT gets one line of space-separated ids per text
// (llama_tokenize with add_special = false).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [nm, vocab, textsPath, outPath, special] = process.argv.slice(2);
if (!special) {
    console.error("usage: node tests/llama_tokenize.mjs NODE_MODULES VOCAB.gguf TEXTS.json OUT 0|1");
    process.exit(2);
}
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(nm, "node-llama-cpp/dist/index.js")).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: path.resolve(vocab), vocabOnly: true });
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const lines = texts.map((t) => Array.from(model.tokenize(t, special === "1")).join(" "));
fs.writeFileSync(outPath, lines.join("\n") + "\n");
process.exit(0);
