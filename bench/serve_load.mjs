// Concurrent streaming load on an OpenAI-compatible server (g4 serve or llama-server), for make bench-serve.
//   node bench/serve_load.mjs URL CONCURRENCY REQUESTS_PER_CLIENT MAX_TOKENS PROMPT_WORDS [MODEL]
// Each client sends REQUESTS_PER_CLIENT streamed /v1/completions one after the other (greedy, the same
// token budget, a different prompt each). Prints one JSON line: aggregate generated tokens/s over the wall
// time, time to first token (p50 / p90 / max), per-stream decode tok/s, failures.
const [url, conc, reqs, maxTokens, words, model] = process.argv.slice(2);
const C = +conc, R = +reqs, N = +maxTokens, W = +words;

const vocab = 'the a of and to in is was for on that with as by at from it an be this which or are were has'.split(' ');
function prompt(seed) {
    let x = seed * 2654435761 >>> 0, out = [];
    for (let i = 0; i < W; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        out.push(vocab[x % vocab.length]);
    }
    return out.join(' ');
}

async function one(seed) {
    const t0 = performance.now();
    const res = await fetch(url + '/v1/completions', {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({model: model || 'bench', prompt: prompt(seed), max_tokens: N, temperature: 0,
                              stream: true, stream_options: {include_usage: true}}),
    });
    if (!res.ok) throw new Error('HTTP ' + res.status + ' ' + (await res.text()).slice(0, 200));
    const dec = new TextDecoder();
    let buf = '', first = 0, tokens = 0, chunks = 0, done = false;
    for await (const part of res.body) {
        buf += dec.decode(part, {stream: true});
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            for (const line of ev.split('\n')) {
                if (!line.startsWith('data:')) continue;
                const d = line.slice(5).trim();
                if (d === '[DONE]') { done = true; continue; }
                const j = JSON.parse(d);
                if (j.choices && j.choices.length && j.choices[0].text !== undefined && j.choices[0].text !== '') {
                    if (!first) first = performance.now();
                    chunks++;
                }
                if (j.usage && j.usage.completion_tokens) tokens = j.usage.completion_tokens;
            }
        }
    }
    const t1 = performance.now();
    if (!done) throw new Error('stream ended without [DONE]');
    if (!tokens) tokens = chunks;
    return {ttft: ((first || t1) - t0) / 1000, total: (t1 - t0) / 1000, tokens,
            decode: first && tokens > 1 ? (tokens - 1) / ((t1 - first) / 1000) : 0};
}

const results = [], failures = [];
const wall0 = performance.now();
await Promise.all(Array.from({length: C}, async (_, c) => {
    for (let r = 0; r < R; r++) {
        try { results.push(await one(c * 1000 + r)); } catch (e) { failures.push(String(e.message || e)); }
    }
}));
const wall = (performance.now() - wall0) / 1000;
const q = (a, p) => a.length ? a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))] : 0;
const tok = results.reduce((s, r) => s + r.tokens, 0);
const ttft = results.map(r => r.ttft), dec = results.map(r => r.decode);
console.log(JSON.stringify({concurrency: C, requests: results.length, failed: failures.length, tokens: tok, wall_s: +wall.toFixed(3),
                            tok_s: +(tok / wall).toFixed(3), ttft_p50_s: +q(ttft, 0.5).toFixed(3), ttft_p90_s: +q(ttft, 0.9).toFixed(3),
                            ttft_max_s: +Math.max(0, ...ttft).toFixed(3), stream_decode_p50_tok_s: +q(dec, 0.5).toFixed(3),
                            errors: failures.slice(0, 3)}));
