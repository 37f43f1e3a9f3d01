// Soak: CLIENTS concurrent streaming clients (half Ollama /api/chat NDJSON, half OpenAI /v1/chat/completions SSE)
// for SECONDS against a running g4 serve. Checks: no failed request, RSS of the server after warm-up drifts < 2%
// (skipped with MAX_DRIFT=off, e.g. under ASan whose quarantine grows by design). Prints p50/p99 latency and tok/s.
// usage: node soak.mjs URL SERVER_PID SECONDS CLIENTS MODEL
import http from 'node:http';
import fs from 'node:fs';

const [URL_, PID, SECONDS, CLIENTS, MODEL] = process.argv.slice(2);
const url = new URL(URL_);
const seconds = Number(SECONDS), clients = Number(CLIENTS);
const maxDrift = process.env.MAX_DRIFT === 'off' ? Infinity : Number(process.env.MAX_DRIFT || 0.02);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
let pass = 0, fail = 0;
const ok = (c, what, extra) => { if (c) { pass++; console.log('ok ' + what); } else { fail++; console.log('FAIL ' + what + (extra !== undefined ? ': ' + JSON.stringify(extra) : '')); } };

function rss() {
    try { return Number(fs.readFileSync(`/proc/${PID}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024; } catch (e) { return NaN; }
}

function one(i, seq) {
    const oai = i % 2 === 1;
    const body = oai
        ? JSON.stringify({ model: MODEL, stream: true, max_tokens: 16, seed: seq, messages: [{ role: 'user', content: `client ${i} request ${seq}` }] })
        : JSON.stringify({ model: MODEL, stream: true, options: { num_predict: 16, seed: seq }, messages: [{ role: 'user', content: `client ${i} request ${seq}` }] });
    return new Promise((resolve) => {
        const t0 = performance.now();
        const rq = http.request({ host: url.hostname, port: url.port, path: oai ? '/v1/chat/completions' : '/api/chat', method: 'POST', agent,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { buf += d; });
            res.on('end', () => {
                const ms = performance.now() - t0;
                let tokens = 0, good = res.statusCode === 200;
                if (oai) good = good && buf.endsWith('data: [DONE]\n\n');
                else {
                    const lines = buf.trim().split('\n');
                    try { const last = JSON.parse(lines[lines.length - 1]); good = good && last.done === true; tokens = last.eval_count || 0; } catch (e) { good = false; }
                }
                if (oai) tokens = (buf.match(/"content":"/g) || []).length; /* content chunks (about a token each) */
                resolve({ good, ms, tokens, status: res.statusCode });
            });
            res.on('error', () => resolve({ good: false, ms: performance.now() - t0, tokens: 0, status: 0 }));
        });
        rq.on('error', (e) => resolve({ good: false, ms: performance.now() - t0, tokens: 0, status: String(e.code || e) }));
        rq.end(body);
    });
}

const t_start = performance.now(), t_end = t_start + seconds * 1000, warm = t_start + Math.max(10000, seconds * 1000 / 3);
let rss_warm = NaN, peak_after_warm = 0;
const lat = [];
let failed = 0, total = 0, tokens = 0;
const bad = [];
const sampler = setInterval(() => {
    const now = performance.now(), r = rss();
    if (now >= warm && Number.isNaN(rss_warm)) rss_warm = r;
    if (now >= warm) peak_after_warm = Math.max(peak_after_warm, r);
}, 500);
await Promise.all(Array.from({ length: clients }, async (_, i) => {
    let seq = 0;
    while (performance.now() < t_end) {
        const r = await one(i, seq++);
        total++;
        if (!r.good) { failed++; if (bad.length < 5) bad.push(r); }
        if (performance.now() >= warm) { lat.push(r.ms); tokens += r.tokens; }
    }
}));
clearInterval(sampler);
const rss_end = rss();
lat.sort((a, b) => a - b);
const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN;
const measured = (performance.now() - warm) / 1000;
const drift = (rss_end - rss_warm) / rss_warm;
console.log(`soak: ${clients} clients, ${seconds} s: ${total} requests, ${failed} failed; after warm-up p50 ${q(0.5).toFixed(0)} ms, p99 ${q(0.99).toFixed(0)} ms, ` +
    `${(tokens / measured).toFixed(0)} generated tok/s; server RSS ${(rss_warm / 1048576).toFixed(1)} MiB after warm-up, ` +
    `${(rss_end / 1048576).toFixed(1)} MiB at the end (peak ${(peak_after_warm / 1048576).toFixed(1)}), drift ${(100 * drift).toFixed(2)}%`);
ok(total > clients && failed === 0, 'no failed request', bad);
ok(Number.isFinite(drift) && (maxDrift === Infinity || drift < maxDrift), `RSS drift < ${maxDrift === Infinity ? 'any (not checked)' : 100 * maxDrift + '%'}`, drift);
agent.destroy();
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
