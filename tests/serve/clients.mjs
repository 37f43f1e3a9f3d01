// g4 serve against the official clients, unmodified: the `ollama` and `openai` npm packages (and ajv to validate
// structured output). Usage: node clients.mjs URL MODEL_NAME GGUF_PATH   (NODE_MODULES=dir of the packages)
// Prints "ok ..." / "FAIL ..." per check and "N passed, N failed" at the end.
//
// The model is a tiny random-weight Gemma 4: its words are meaningless, so the checks are about the protocol
// (shapes, fields, streaming, errors, limits), never about what the model says. Tool calls: a random model does not
// decide to call a tool, so (1) the tool-call path from model output to each API's tool_calls is driven by a
// grammar that forces the model to write the bytes of a Gemma 4 tool call (the model, sampler, grammar, chat parser
// and response formatting are all the real ones; only the decision to call is forced). The stream turns the grammar
// off once the chat parser is inside a tool call, so the request also carries a stop string that the forced call
// is a prefix of (and never completes): while the call is being written it is held back as a possible stop string,
// the parser does not see it yet and the grammar keeps constraining; the text goes to the parser when the grammar
// closes the string. (2) Tool declarations,
// assistant tool calls and tool results sent by a client are checked in the exact prompt the model reads
// (/apply-template) and in the token count the generation request reports.
import { createRequire } from 'node:module';
const require = createRequire((process.env.NODE_MODULES || './node_modules') + '/');
const { Ollama } = require('ollama');
const OpenAI = require('openai');
const Ajv = require('ajv');

const [URL, MODEL, GGUF] = process.argv.slice(2);
let pass = 0, fail = 0;
const ok = (c, what, extra) => {
    if (c) { pass++; console.log('ok ' + what); } else { fail++; console.log('FAIL ' + what + (extra !== undefined ? ': ' + JSON.stringify(extra).slice(0, 400) : '')); }
};
async function check(what, fn) {
    try { await fn(); } catch (e) { fail++; console.log('FAIL ' + what + ': threw ' + (e && e.stack || e)); }
}
const ollama = new Ollama({ host: URL });
const openai = new OpenAI({ baseURL: URL + '/v1', apiKey: 'unused', maxRetries: 0 });
const ajv = new Ajv();
const opts = { num_predict: 12, seed: 7 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function metric(name) {
    const t = await (await fetch(URL + '/metrics')).text();
    const m = t.match(new RegExp('^g4:' + name + ' ([0-9.]+)$', 'm'));
    return m ? Number(m[1]) : NaN;
}

await check('ollama list / version / show / ps', async () => {
    const l = await ollama.list();
    ok(l.models.some((m) => m.name === MODEL + ':latest' || m.name === MODEL), 'list has the model', l);
    const v = await ollama.version();
    ok(typeof v.version === 'string', 'version', v);
    const s = await ollama.show({ model: MODEL });
    ok(s.details && s.details.family === 'gemma4' && Array.isArray(s.capabilities), 'show: details and capabilities', s.details);
    const p = await ollama.ps();
    ok(p.models.length >= 1 && p.models[0].context_length > 0 && p.models[0].size_vram === 0 && p.models[0].expires_at, 'ps', p);
});

await check('ollama chat (not streamed)', async () => {
    const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], options: opts });
    ok(r.done === true && typeof r.message.content === 'string' && r.message.role === 'assistant', 'chat answer', r);
    ok(r.eval_count > 0 && r.eval_count <= 12 && r.prompt_eval_count > 0 && r.total_duration > 0 && r.eval_duration >= 0, 'chat counts and durations', r);
    ok(r.done_reason === 'length' || r.done_reason === 'stop', 'chat done_reason', r.done_reason);
    const again = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], options: opts });
    ok(again.message.content === r.message.content, 'same seed, same answer', [r.message.content, again.message.content]);
});

await check('ollama chat (streamed)', async () => {
    const st = await ollama.chat({ model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], stream: true, options: opts });
    let text = '', n = 0, last;
    for await (const part of st) { n++; text += part.message.content; last = part; }
    ok(n >= 2 && last.done && last.eval_count > 0 && typeof last.done_reason === 'string', 'stream ends with the final object', last);
    const whole = await ollama.chat({ model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], options: opts });
    ok(whole.message.content === text, 'streamed text = non-streamed text (same seed)', [text, whole.message.content]);
});

await check('ollama generate', async () => {
    const r = await ollama.generate({ model: MODEL, prompt: 'Why is the sky blue?', options: opts });
    ok(r.done && typeof r.response === 'string' && r.eval_count > 0, 'generate', r);
    const st = await ollama.generate({ model: MODEL, prompt: 'Why?', stream: true, options: opts });
    let n = 0, last;
    for await (const p of st) { n++; last = p; }
    ok(n >= 2 && last.done && last.prompt_eval_count > 0, 'generate streamed', last);
    const raw = await ollama.generate({ model: MODEL, prompt: '<start_of_turn>', raw: true, options: opts });
    ok(raw.done && raw.prompt_eval_count >= 1, 'generate raw', raw);
    const think = await ollama.generate({ model: MODEL, prompt: 'Think.', think: true, options: opts });
    ok(think.done, 'generate think:true accepted', think);
    const load = await ollama.generate({ model: MODEL, prompt: '' });
    ok(load.done && load.done_reason === 'load', 'empty prompt loads', load);
});

const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer', minimum: 0, maximum: 120 } }, required: ['name', 'age'] };
await check('structured output validates (ajv)', async () => {
    const validate = ajv.compile(schema);
    const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'JSON please' }], format: schema, options: { seed: 3, num_predict: 200 } });
    let v; try { v = JSON.parse(r.message.content); } catch (e) { v = undefined; }
    ok(v !== undefined && validate(v), 'ollama format schema', [r.message.content, validate.errors]);
    const j = await ollama.generate({ model: MODEL, prompt: 'JSON', format: 'json', options: { seed: 5, num_predict: 200, temperature: 0.5 } });
    // (a random model may not close an unconstrained object within the token limit: then it must be one cut off)
    let jv; try { jv = JSON.parse(j.response); } catch (e) { jv = undefined; }
    ok(j.done_reason === 'stop' ? jv !== undefined && typeof jv === 'object' && !Array.isArray(jv) : j.response.startsWith('{'), 'ollama format "json" gives an object', [j.done_reason, j.response]);
    const o = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'JSON' }], seed: 4, max_tokens: 200,
        response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } } });
    let ov; try { ov = JSON.parse(o.choices[0].message.content); } catch (e) { ov = undefined; }
    ok(ov !== undefined && validate(ov), 'openai response_format json_schema', [o.choices[0].message.content, validate.errors]);
    const jo = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'JSON' }], seed: 9, max_tokens: 200, response_format: { type: 'json_object' } });
    let jov; try { jov = JSON.parse(jo.choices[0].message.content); } catch (e) { jov = undefined; }
    ok(jo.choices[0].finish_reason === 'stop' ? jov !== undefined && typeof jov === 'object' : jo.choices[0].message.content.startsWith('{'), 'openai json_object', jo.choices[0]);
});

await check('openai chat', async () => {
    const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 10, seed: 1 });
    ok(r.object === 'chat.completion' && r.choices.length === 1 && typeof r.choices[0].message.content === 'string', 'chat.completion', r);
    ok(r.usage.completion_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'usage', r.usage);
    const st = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 10, seed: 1, stream: true, stream_options: { include_usage: true } });
    let text = '', finish = null, usage = null, role = null;
    for await (const ch of st) {
        if (ch.usage) usage = ch.usage;
        for (const c of ch.choices) { if (c.delta.role) role = c.delta.role; text += c.delta.content || ''; if (c.finish_reason) finish = c.finish_reason; }
    }
    ok(text === r.choices[0].message.content && role === 'assistant' && finish && usage && usage.completion_tokens > 0, 'streamed = not streamed, finish_reason, usage chunk', { text, finish, usage });
    const n = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 6, seed: 1, n: 3 });
    ok(n.choices.length === 3 && n.choices.every((c, i) => c.index === i), 'n = 3 choices', n.choices.length);
    const lp = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5, seed: 1, logprobs: true, top_logprobs: 3 });
    const e = lp.choices[0].logprobs && lp.choices[0].logprobs.content;
    ok(e && e.length > 0 && e.every((t) => typeof t.token === 'string' && t.logprob <= 0 && t.top_logprobs.length === 3), 'logprobs / top_logprobs', e && e[0]);
    const off = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5, reasoning_effort: 'none', stop: ['x', 'y'] });
    ok(off.choices.length === 1, 'reasoning_effort none, stop array', off.choices[0]);
});

await check('openai completions and models', async () => {
    const r = await openai.completions.create({ model: MODEL, prompt: ['Once upon', 'a time'], max_tokens: 6, seed: 2 });
    ok(r.object === 'text_completion' && r.choices.length === 2 && typeof r.choices[0].text === 'string', 'completions with two prompts', r);
    const st = await openai.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 6, seed: 2, stream: true });
    let t = '', fin = null;
    for await (const ch of st) for (const c of ch.choices) { t += c.text; if (c.finish_reason) fin = c.finish_reason; }
    ok(fin !== null, 'completions streamed', t);
    const ms = await openai.models.list();
    ok(ms.data.some((m) => m.id.startsWith(MODEL)) && ms.data.every((m) => m.object === 'model'), 'models.list', ms.data);
    const one = await openai.models.retrieve(MODEL);
    ok(one.id.startsWith(MODEL), 'models.retrieve', one);
});

await check('errors as each client expects', async () => {
    try { await ollama.chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }); ok(false, 'ollama 404'); }
    catch (e) { ok(e.status_code === 404 && /not found/.test(e.error), 'ollama ResponseError 404', { s: e.status_code, e: e.error }); }
    try { await openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }); ok(false, 'openai 404'); }
    catch (e) { ok(e.status === 404 && e instanceof OpenAI.NotFoundError && /not found/.test(e.message), 'openai NotFoundError', { s: e.status, m: e.message }); }
    try { await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'x' }], options: { temperature: 'hot' } }); ok(false, 'bad option'); }
    catch (e) { ok(e.status_code === 400 && /temperature/.test(e.error), 'ollama 400 names the option', e.error); }
    try { await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], top_p: 7 }); ok(false, 'bad top_p'); }
    catch (e) { ok(e.status === 400 && e instanceof OpenAI.BadRequestError && /top_p/.test(e.message), 'openai BadRequestError names the field', e.message); }
    try { await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'x', images: ['aGVsbG8='] }] }); ok(false, 'images'); }
    catch (e) { ok(e.status_code === 400 && /images are not supported/.test(e.error), 'images refused', e.error); }
});

await check('tools: a call the model writes comes back as tool_calls', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    // the grammar forces the model's answer to be a JSON string holding a Gemma 4 tool call (see the top of this file)
    const force = { type: 'string', pattern: '^<\\|tool_call>call:get_weather\\{city:Tokyo\\}<tool_call\\|>$' };
    const hold = ['<|tool_call>call:get_weather{city:Tokyo}<tool_call|>NEVER'];
    const r = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Weather in Tokyo?' }], tools, format: force, options: { temperature: 0, num_predict: 60, stop: hold } });
    const tc = r.message.tool_calls;
    ok(tc && tc.length === 1 && tc[0].function.name === 'get_weather' && tc[0].function.arguments.city === 'Tokyo', 'ollama message.tool_calls, arguments an object', r.message);
    const o = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather in Tokyo?' }], tools, tool_choice: 'auto', temperature: 0, max_tokens: 60, stop: hold,
        response_format: { type: 'json_schema', json_schema: { name: 'call', schema: force } } });
    const oc = o.choices[0].message.tool_calls;
    ok(oc && oc.length === 1 && oc[0].type === 'function' && typeof oc[0].id === 'string' && oc[0].function.name === 'get_weather' &&
        JSON.parse(oc[0].function.arguments).city === 'Tokyo' && o.choices[0].finish_reason === 'tool_calls', 'openai tool_calls, arguments a JSON string, finish_reason tool_calls', o.choices[0]);
    const st = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather?' }], tools, temperature: 0, max_tokens: 60, stream: true, stop: hold,
        response_format: { type: 'json_schema', json_schema: { name: 'call', schema: force } } });
    let calls = [], fin = null;
    for await (const ch of st) for (const c of ch.choices) { if (c.delta.tool_calls) calls.push(...c.delta.tool_calls); if (c.finish_reason) fin = c.finish_reason; }
    ok(calls.length === 1 && calls[0].index === 0 && calls[0].function.name === 'get_weather' && fin === 'tool_calls', 'streamed tool_calls delta', { calls, fin });
    const ost = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Weather?' }], tools, format: force, stream: true, options: { temperature: 0, num_predict: 60, stop: hold } });
    let ocalls = [];
    for await (const p of ost) if (p.message.tool_calls) ocalls.push(...p.message.tool_calls);
    ok(ocalls.length === 1 && ocalls[0].function.arguments.city === 'Tokyo', 'ollama streamed tool_calls', ocalls);
    const none = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Weather?' }], tools, tool_choice: 'none', max_tokens: 4 });
    ok(!none.choices[0].message.tool_calls, 'tool_choice none', none.choices[0].message);
});

await check('tools: declarations, calls and results reach the prompt', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const oaiMsgs = [{ role: 'user', content: 'Weather in Tokyo?' },
        { role: 'assistant', content: '', tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Tokyo"}' } }] },
        { role: 'tool', tool_call_id: 'call_0', content: '11 degrees' }];
    const t = await (await fetch(URL + '/apply-template', { method: 'POST', body: JSON.stringify({ model: MODEL, messages: oaiMsgs, tools }) })).json();
    const p = t.prompt || '';
    ok(p.includes('<|tool>declaration:get_weather{') && p.includes('<|tool_call>call:get_weather{city:<|"|>Tokyo<|"|>}<tool_call|>') &&
        p.includes('<|tool_response>response:get_weather') && p.includes('11 degrees'), 'declaration, call and result rendered', p);
    const toks = await (await fetch(URL + '/tokenize', { method: 'POST', body: JSON.stringify({ model: MODEL, content: p }) })).json();
    // the same conversation in Ollama's shape (arguments an object, tool_name) must make exactly that prompt
    const r = await ollama.chat({ model: MODEL, tools, options: { num_predict: 3 }, messages: [{ role: 'user', content: 'Weather in Tokyo?' },
        { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Tokyo' } } }] },
        { role: 'tool', tool_name: 'get_weather', content: '11 degrees' }] });
    ok(toks.tokens && r.prompt_eval_count === toks.tokens.length, 'ollama tool round trip: prompt tokens = the rendered prompt', [r.prompt_eval_count, toks.tokens && toks.tokens.length]);
    const o = await openai.chat.completions.create({ model: MODEL, messages: oaiMsgs, tools, max_tokens: 3 });
    ok(o.usage.prompt_tokens === toks.tokens.length, 'openai tool round trip: prompt tokens = the rendered prompt', [o.usage.prompt_tokens, toks.tokens.length]);
});

await check('create / copy / delete through the store', async () => {
    // from a GGUF file on the server: ollama-js refuses local paths itself, so this one is a plain POST
    const cr = await fetch(URL + '/api/create', { method: 'POST', body: JSON.stringify({ model: 'g4test-base', from: GGUF }) });
    const lines = (await cr.text()).trim().split('\n').map((l) => JSON.parse(l).status);
    ok(cr.status === 200 && lines[lines.length - 1] === 'success', 'create from a GGUF path streams status lines', lines);
    const st = await ollama.create({ model: 'g4test-terse', from: 'g4test-base', system: 'You are terse.', parameters: { num_predict: 3, temperature: 0 }, stream: true });
    const l2 = [];
    for await (const l of st) l2.push(l.status);
    ok(l2[l2.length - 1] === 'success', 'ollama.create from a model with system and parameters', l2);
    const r = await ollama.chat({ model: 'g4test-terse', messages: [{ role: 'user', content: 'Hi' }] });
    ok(r.eval_count <= 3, 'the Modelfile PARAMETER num_predict applies', r.eval_count);
    const s = await ollama.show({ model: 'g4test-terse' });
    ok(s.system === 'You are terse.' && /num_predict/.test(s.parameters), 'show: system and parameters', { sys: s.system, p: s.parameters });
    await ollama.copy({ source: 'g4test-terse', destination: 'g4test-copy' });
    ok((await ollama.list()).models.some((m) => m.name === 'g4test-copy:latest'), 'copy');
    await ollama.delete({ model: 'g4test-copy' });
    await ollama.delete({ model: 'g4test-terse' });
    await ollama.delete({ model: 'g4test-base' });
    ok(!(await ollama.list()).models.some((m) => m.name.startsWith('g4test')), 'delete');
    try { await ollama.delete({ model: 'g4test-terse' }); ok(false, 'delete twice'); } catch (e) { ok(e.status_code === 404, 'delete of a missing model: 404', e.status_code); }
    // the model MODEL is loaded again (max-loaded 1): the store model took its place
    const back = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], options: opts });
    ok(back.done, 'switching back to the first model', back.done_reason);
});

await check('cancellation frees the slot', async () => {
    const before = await metric('requests_cancelled_total');
    // a long answer: the grammar asks for a huge array, so the model cannot end early
    const long = { type: 'array', items: { type: 'integer' }, minItems: 100000 };
    const st = await ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'Count' }], format: long, stream: true, options: { num_predict: -1 } });
    let n = 0;
    for await (const p of st) { if (++n === 5) { st.abort(); break; } }
    let busy = NaN;
    for (let i = 0; i < 40; i++) { await sleep(100); busy = await metric('requests_processing'); if (busy === 0) break; }
    ok(n === 5 && busy === 0, 'ollama stream aborted: no busy slot', { n, busy });
    ok((await metric('requests_cancelled_total')) === before + 1, 'counted as cancelled');
    const ost = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Count' }], stream: true,
        response_format: { type: 'json_schema', json_schema: { name: 'n', schema: long } } });
    n = 0;
    for await (const ch of ost) { if (++n === 5) { ost.controller.abort(); break; } }
    for (let i = 0; i < 40; i++) { await sleep(100); busy = await metric('requests_processing'); if (busy === 0) break; }
    ok(busy === 0, 'openai stream aborted: no busy slot', busy);
    const ps = await ollama.ps();
    ok(ps.models[0].g4.busy === 0, '/api/ps shows the slots free', ps.models[0].g4);
    const ac = new AbortController();
    const p = fetch(URL + '/api/chat', { method: 'POST', signal: ac.signal, body: JSON.stringify({ model: MODEL, stream: false, format: long, messages: [{ role: 'user', content: 'x' }] }) }).catch(() => null);
    await sleep(300);
    ac.abort();
    await p;
    for (let i = 0; i < 40; i++) { await sleep(100); busy = await metric('requests_processing'); if (busy === 0) break; }
    ok(busy === 0, 'non-streamed request abandoned: slot freed', busy);
});

await check('parallel requests', async () => {
    const rs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'n' + i }], options: { num_predict: 8, seed: i } })));
    ok(rs.every((r) => r.done && r.eval_count > 0), 'six at once', rs.map((r) => r.eval_count));
});

console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
