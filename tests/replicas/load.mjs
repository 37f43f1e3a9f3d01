// Load through the balancer: CLIENTS concurrent clients for SECONDS, each in a loop of short requests cycling
// over /api/generate and /v1/chat/completions, streamed and not, through the HAProxy frontend at URL (loopback).
// Every request is recorded with its start and end (wall clock, ms), HTTP status, whether the answer was complete
// (NDJSON ending with done:true, SSE ending with data: [DONE], a whole JSON body) and the replica that served it
// (the X-Served-By header HAProxy adds). Writes them as JSON to OUT; prints a one-line summary.
// usage: node load.mjs URL SECONDS CLIENTS MODEL OUT
import http from 'node:http';
import fs from 'node:fs';

const [URL_, SECONDS, CLIENTS, MODEL, OUT] = process.argv.slice(2);
const url = new URL(URL_);
if (url.hostname !== '127.0.0.1') throw new Error('loopback only');
const seconds = Number(SECONDS), clients = Number(CLIENTS);
const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const KINDS = ['generate-stream', 'chat-stream', 'generate', 'chat'];

function body(kind, i, seq) {
    const stream = kind.endsWith('-stream');
    const n = stream ? 160 + (seq % 4) * 32 : 24; /* streamed answers long enough to be cut mid-way */
    const text = `client ${i} request ${seq}: tell me about the sea`;
    if (kind.startsWith('generate')) return { path: '/api/generate', json: { model: MODEL, prompt: text, stream, options: { num_predict: n, seed: seq } } };
    return { path: '/v1/chat/completions', json: { model: MODEL, stream, max_tokens: n, seed: seq, messages: [{ role: 'user', content: text }] } };
}

function complete(kind, status, buf) {
    if (status !== 200) return false;
    try {
        if (kind === 'chat-stream') return buf.endsWith('data: [DONE]\n\n') && buf.includes('"finish_reason":"');
        if (kind === 'generate-stream') {
            const lines = buf.trim().split('\n');
            return lines.length >= 2 && JSON.parse(lines[lines.length - 1]).done === true;
        }
        const o = JSON.parse(buf);
        if (kind === 'generate') return o.done === true && typeof o.response === 'string';
        return o.object === 'chat.completion' && typeof o.choices[0].finish_reason === 'string';
    } catch (e) { return false; }
}

function one(kind, i, seq) {
    const { path, json } = body(kind, i, seq);
    const data = JSON.stringify(json);
    return new Promise((resolve) => {
        const r = { client: i, seq, kind, t0: Date.now(), t1: 0, status: 0, ok: false, server: null, bytes: 0, err: null };
        let settled = false;
        const done = () => { if (!settled) { settled = true; r.t1 = Date.now(); resolve(r); } };
        const rq = http.request({ host: url.hostname, port: url.port, path, method: 'POST', agent,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
            r.status = res.statusCode;
            r.server = res.headers['x-served-by'] || null;
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { buf += d; });
            res.on('end', () => { r.bytes = buf.length; r.ok = complete(kind, res.statusCode, buf); if (!r.ok) r.err = r.err || 'incomplete'; done(); });
            res.on('aborted', () => { r.err = 'aborted mid-response'; });
            res.on('error', (e) => { r.bytes = buf.length; r.err = r.err || String(e.code || e.message); done(); });
            res.on('close', () => { if (!settled) { r.bytes = buf.length; r.err = r.err || 'closed'; done(); } });
        });
        rq.setTimeout(60000, () => rq.destroy(new Error('timeout')));
        rq.on('error', (e) => { r.err = r.err || String(e.code || e.message); done(); });
        rq.end(data);
    });
}

const t_end = Date.now() + seconds * 1000;
const all = [];
await Promise.all(Array.from({ length: clients }, async (_, i) => {
    for (let seq = 0; Date.now() < t_end && seq < 100000; seq++) all.push(await one(KINDS[(seq + i) % KINDS.length], i, seq));
}));
agent.destroy();
fs.writeFileSync(OUT, JSON.stringify(all));
console.log(`load: ${all.length} requests, ${all.filter((r) => r.ok).length} complete, ${all.filter((r) => !r.ok).length} failed`);
