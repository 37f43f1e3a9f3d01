// The chat page of g4 serve (src/serve/webui/index.html) in headless Chromium, driven by puppeteer-core,
// against a running g4 serve (tests/webui.sh starts it on a random-weight model and stops it).
//   node tests/webui.mjs
// Environment:
//   G4_WEBUI_URL     the server, http://127.0.0.1:PORT
//   G4_WEBUI_MODELS  the names it serves, comma-separated (the first is preloaded)
//   G4_WEBUI_KEY_URL, G4_WEBUI_KEY   a second server started with --api-key KEY (optional)
//   G4_WEBUI_NODE_MODULES  where puppeteer-core is installed
//   G4_WEBUI_SHOT    screenshot path (desktop, light); -phone and -dark variants beside it
//   CHROMIUM         browser (default /usr/bin/chromium)
// Prints "ok - CHECK" or "FAIL: CHECK: why" per check and "N passed, N failed" last.
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(path.join(process.env.G4_WEBUI_NODE_MODULES || "node_modules", "x.js"));
const puppeteer = require("puppeteer-core");

const BASE = process.env.G4_WEBUI_URL;
const MODELS = (process.env.G4_WEBUI_MODELS || "").split(",").filter(Boolean);
const KEY_URL = process.env.G4_WEBUI_KEY_URL || "";
const KEY = process.env.G4_WEBUI_KEY || "";
const SHOT = process.env.G4_WEBUI_SHOT || "webui.png";
if (!BASE || !MODELS.length) {
  console.error("G4_WEBUI_URL and G4_WEBUI_MODELS are needed (tests/webui.sh sets them)");
  process.exit(2);
}

let pass = 0, fail = 0;
function check(name, cond, why = "") {
  if (cond) { pass++; console.log("ok - " + name); }
  else { fail++; console.log("FAIL: " + name + (why ? ": " + why : "")); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms = 10000, step = 25) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) return v;
    await sleep(step);
  }
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "g4-webui-chromium-"));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile],
  protocolTimeout: 60000,
});

// every request the pages make, every console error, per phase (errors are expected only where the page is
// meant to get an HTTP error: the browser logs "Failed to load resource" for those)
const requests = [], consoleErrors = [];
let phase = "load";
function watch(page, label) {
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push({ phase, label, text: m.text() }); });
  page.on("pageerror", (e) => consoleErrors.push({ phase, label, text: "page error: " + e.message }));
  page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() || "", headers: r.headers(), label }));
}
const chatBodies = () => requests.filter((r) => r.method === "POST" && r.url === BASE + "/api/chat").map((r) => JSON.parse(r.body));

// text of the last answer, its stats line, and whether an answer is streaming
const last = (page) => page.evaluate(() => {
  const a = [...document.querySelectorAll(".msg.assistant")].pop();
  if (!a) return null;
  const q = (s) => a.querySelector(s);
  return {
    text: q(".content").textContent, stats: q(".stats") ? q(".stats").textContent : null,
    error: q(".error") ? q(".error").textContent : null, streaming: a.classList.contains("streaming"),
    thinking: q(".thinking") ? { text: q(".thought").textContent, open: q(".thinking").open, summary: q("summary").textContent,
                                   opacity: Number(getComputedStyle(q(".thinking")).opacity) } : null,
  };
});
const visible = (page, sel) => page.$eval(sel, (e) => !e.hidden && getComputedStyle(e).display !== "none").catch(() => false);
async function typeAndSend(page, text) {
  await page.click("#prompt");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}
async function waitDone(page, ms = 30000) {
  return until(async () => { const l = await last(page); return l && !l.streaming ? l : null; }, ms);
}
async function setField(page, sel, value) {
  await page.$eval(sel, (e, v) => { e.value = v; e.dispatchEvent(new Event("input", { bubbles: true })); }, value);
}
// the NDJSON objects the server sent in the page's last /api/chat response
function ndjson(text) { return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)); }

try {
  const page = await browser.newPage();
  watch(page, "main");
  await page.setViewport({ width: 1280, height: 820 });
  const chatResponses = [];
  page.on("response", (r) => { if (r.url() === BASE + "/api/chat" && r.request().method() === "POST") chatResponses.push(r); });

  // ---- the page itself ----
  const resp = await page.goto(BASE + "/", { waitUntil: "load" });
  const h = resp.headers();
  check("GET / from a browser: 200 text/html", resp.status() === 200 && /^text\/html; charset=utf-8/.test(h["content-type"] || ""),
        resp.status() + " " + h["content-type"]);
  const csp = h["content-security-policy"] || "";
  check("CSP: default-src 'none', hashed script and style, no unsafe-inline, connect-src 'self'",
        /default-src 'none'/.test(csp) && /script-src 'sha256-[A-Za-z0-9+/]{43}='/.test(csp) && /style-src 'sha256-/.test(csp) &&
        !/unsafe-inline|unsafe-eval/.test(csp) && /connect-src 'self'/.test(csp), csp);
  check("Cache-Control: no-cache", h["cache-control"] === "no-cache", h["cache-control"]);
  const plain = await fetch(BASE + "/", { headers: { Accept: "*/*" } });
  check("GET / from other clients is still 'Ollama is running'", (await plain.text()) === "Ollama is running");
  const idx = await fetch(BASE + "/index.html");
  check("GET /index.html is the page", idx.status === 200 && (await idx.text()).startsWith("<!doctype html>"));

  // ---- the model picker ----
  await until(() => page.$eval("#model", (s) => !s.disabled && s.options.length > 0 && !!s.value));
  const opts = await page.$$eval("#model option", (os) => os.map((o) => o.value));
  check("model picker lists the served models", MODELS.every((m) => opts.includes(m)), JSON.stringify(opts));
  check("model picker selects the first model", (await page.$eval("#model", (s) => s.value)) === opts[0]);

  // ---- a message, streamed ----
  phase = "chat";
  // the tiny model writes ~6000 tokens/s, faster than frames are drawn: the browser's download is throttled to
  // 48 kB/s for this answer (~120 bytes of NDJSON a token), so that its bytes arrive over about a second
  await setField(page, "#max-tokens", "400");
  // greedy: a random-weight model's sampled answer is sometimes one end-of-turn token (~4% of draws), which
  // would leave nothing to stream; its greedy answer to this prompt is the whole 400 tokens
  await setField(page, "#temperature", "0");
  await page.emulateNetworkConditions({ download: 48000, upload: 1e7, latency: 0 });
  await page.evaluate(() => { // every change of the answer's text, as the reader would see it
    window.__lens = [];
    new MutationObserver(() => {
      const c = [...document.querySelectorAll(".msg.assistant .content")].pop();
      if (c) window.__lens.push(c.textContent.length);
    }).observe(document.getElementById("messages"), { childList: true, subtree: true, characterData: true });
    window.__stopSeen = false; // the stop button replaces send while the answer streams
    const stop = document.getElementById("stop"), send = document.getElementById("send");
    new MutationObserver(() => { if (!stop.hidden && send.hidden) window.__stopSeen = true; })
      .observe(stop, { attributes: true, attributeFilter: ["hidden"] });
  });
  await typeAndSend(page, "Hello! Who are you?");
  let ans = await waitDone(page);
  await page.emulateNetworkConditions(null);
  check("while streaming the stop button replaces send", await page.evaluate(() => window.__stopSeen));
  const lens = await page.evaluate(() => window.__lens);
  const grew = [...new Set(lens)].filter((n) => n > 0);
  console.log("note: the answer's text was drawn at " + grew.length + " lengths");
  check("the answer appears incrementally (several updates of the text)", grew.length > 1,
        "text lengths seen: " + JSON.stringify(grew.slice(0, 20)));
  check("the answer is complete, with its stats", ans && ans.text.length > 0 && /tokens/.test(ans.stats || ""), JSON.stringify(ans));
  let body = chatBodies().pop();
  check("POST /api/chat: model, stream, think:false, options (num_predict, temperature), the user message",
        body && body.model === opts[0] && body.stream === true && body.think === false && body.options && body.options.num_predict === 400 && body.options.temperature === 0 &&
        body.messages.length === 1 && body.messages[0].role === "user" && body.messages[0].content === "Hello! Who are you?", JSON.stringify(body));
  const r0 = chatResponses[chatResponses.length - 1];
  let sent = "";
  try { sent = ndjson(await r0.text()).map((o) => (o.message && o.message.content) || "").join(""); } catch (e) { sent = "(" + e.message + ")"; }
  check("the page shows exactly the text the server streamed", ans && (sent.includes("```") || ans.text === sent),
        JSON.stringify({ page: ans && ans.text.slice(0, 80), server: sent.slice(0, 80) }));
  check("the user's message is shown", (await page.$$eval(".msg.user .content", (e) => e.map((x) => x.textContent))).includes("Hello! Who are you?"));

  // ---- Shift+Enter is a new line, Enter sends; the conversation carries the history ----
  await page.click("#prompt");
  await page.keyboard.type("first line");
  await page.keyboard.down("Shift"); await page.keyboard.press("Enter"); await page.keyboard.up("Shift");
  await page.keyboard.type("second line");
  const nBefore = chatBodies().length;
  check("Shift+Enter inserts a newline and does not send",
        (await page.$eval("#prompt", (t) => t.value)) === "first line\nsecond line" && chatBodies().length === nBefore);
  await page.keyboard.press("Enter");
  ans = await until(async () => chatBodies().length > nBefore && (await waitDone(page)));
  body = chatBodies().pop();
  check("the second request carries the conversation (user, assistant, user)",
        body && body.messages.map((m) => m.role).join(",") === "user,assistant,user" && body.messages[2].content === "first line\nsecond line",
        JSON.stringify(body && body.messages.map((m) => m.role)));

  // ---- think toggle and system prompt ----
  await page.click("#new-chat");
  check("New chat clears the conversation", (await page.$$(".msg")).length === 0 && (await visible(page, "#empty")));
  await page.click(".switch");
  check("the think toggle turns on", await page.$eval("#think", (t) => t.checked));
  await page.click("#settings-toggle");
  await page.click("#system");
  await page.keyboard.type("You are terse.");
  await typeAndSend(page, "Think first.");
  ans = await waitDone(page);
  body = chatBodies().pop();
  check("think on sends think:true", body && body.think === true, JSON.stringify(body && body.think));
  check("the system prompt goes first, and only the new conversation follows",
        body && body.messages.length === 2 && body.messages[0].role === "system" && body.messages[0].content === "You are terse." &&
        body.messages[1].content === "Think first.", JSON.stringify(body && body.messages));
  let thought = "";
  try { thought = ndjson(await chatResponses[chatResponses.length - 1].text()).map((o) => (o.message && o.message.thinking) || "").join(""); } catch (e) { /* none */ }
  if (thought) check("the model's thought is shown apart from the answer", ans.thinking && ans.thinking.text === thought, JSON.stringify(ans.thinking));
  else console.log("note: this random-weight model emitted no thought block; the thinking display is checked on a canned stream below");

  // ---- stop ----
  phase = "stop";
  await page.click("#new-chat");
  await setField(page, "#max-tokens", "15000"); // seconds of writing (the server has --ctx 16384)
  await typeAndSend(page, "Tell me a very long story.");
  await until(async () => { const l = await last(page); return l && l.text.length > 0; }, 10000, 5);
  await page.click("#stop");
  const stopped = await until(async () => { const l = await last(page); return l && !l.streaming ? l : null; }, 5000);
  check("Stop ends the stream at once ('stopped')", stopped && stopped.stats === "stopped", JSON.stringify(stopped));
  const lenAtStop = stopped ? stopped.text.length : -1;
  await sleep(400);
  const after = await last(page);
  check("after Stop the text no longer grows", after && after.text.length === lenAtStop);
  check("after Stop the send button is back", (await visible(page, "#send")) && !(await visible(page, "#stop")));
  const idle = await until(async () => {
    const slots = await (await fetch(BASE + "/slots")).json();
    return Array.isArray(slots) && slots.every((s) => !s.is_processing);
  }, 5000, 50);
  check("the server frees the slot of the stopped answer (GET /slots: none processing)", !!idle);
  await setField(page, "#max-tokens", "40");
  await typeAndSend(page, "And now a short one.");
  ans = await waitDone(page);
  check("the page is usable after Stop (the next answer completes)", ans && ans.text.length > 0 && /tokens/.test(ans.stats || ""), JSON.stringify(ans));
  body = chatBodies().pop();
  check("the stopped answer's partial text stays in the conversation",
        body && body.messages.filter((m) => m.role === "assistant").length === 1, JSON.stringify(body && body.messages.map((m) => m.role)));

  // ---- errors: a model the server does not have ----
  phase = "bad-model";
  await page.click("#new-chat");
  await page.evaluate(() => {
    const s = document.getElementById("model"), o = document.createElement("option");
    o.value = o.textContent = "no-such-model";
    s.append(o);
    s.value = "no-such-model";
  });
  await typeAndSend(page, "Anyone there?");
  ans = await waitDone(page);
  check("a bad model shows the HTTP status and the server's error", ans && /HTTP 404/.test(ans.error || "") && /no-such-model/.test(ans.error || ""),
        JSON.stringify(ans));
  check("the failed message returns to the input", (await page.$eval("#prompt", (t) => t.value)) === "Anyone there?");
  await page.evaluate(() => { const s = document.getElementById("model"); s.lastChild.remove(); s.selectedIndex = 0; s.dispatchEvent(new Event("change")); });
  await page.$eval("#prompt", (t) => { t.value = ""; });

  // ---- the thinking display and safe text, on a canned stream (random weights seldom think) ----
  phase = "canned";
  await page.click("#new-chat");
  await page.setRequestInterception(true);
  const evil = '<img src=x id=pwned onerror="window.__pwned=1"><b>bold?</b>';
  const canned = [
    { message: { role: "assistant", content: "", thinking: "The user asks for a haiku. Five, seven, five syllables; " } },
    { message: { role: "assistant", content: "", thinking: "keep it about the sky. " + evil } },
    { message: { role: "assistant", content: "Here is a haiku:\n\n" } },
    { message: { role: "assistant", content: "```text\nBlue light, scattered wide,\nshort waves bend in the thin air -\nthe sky keeps the day.\n```\n" } },
    { message: { role: "assistant", content: "Rayleigh scattering makes short wavelengths dominate. " + evil } },
    { message: { role: "assistant", content: "" }, done: true, done_reason: "stop", eval_count: 58, eval_duration: 1.9e9, prompt_eval_count: 31 },
  ].map((o) => JSON.stringify({ model: opts[0], created_at: new Date().toISOString(), done: false, ...o })).join("\n") + "\n";
  const onReq = (r) => {
    if (r.isInterceptResolutionHandled()) return;
    if (r.url() === BASE + "/api/chat") r.respond({ status: 200, contentType: "application/x-ndjson", body: canned });
    else r.continue();
  };
  page.on("request", onReq);
  await typeAndSend(page, "Write a haiku about why the sky is blue.");
  ans = await waitDone(page);
  page.off("request", onReq);
  await page.setRequestInterception(false);
  check("thinking is shown apart, collapsible and dimmed",
        ans && ans.thinking && ans.thinking.text.startsWith("The user asks") && ans.thinking.opacity < 1 && /^Thought/.test(ans.thinking.summary),
        JSON.stringify(ans && ans.thinking));
  check("the thought folds away once the answer is written", ans && ans.thinking && ans.thinking.open === false);
  await page.click(".thinking summary");
  check("clicking the thought opens it", await page.$eval(".thinking", (d) => d.open));
  check("model text is text: no markup from the model becomes elements",
        !(await page.$("#pwned")) && !(await page.evaluate(() => window.__pwned)) && ans.text.includes("<img src=x") &&
        (await page.$$eval(".msg.assistant .content b", (b) => b.length)) === 0);
  check("a fenced block is shown as code", (await page.$$eval(".msg.assistant .content pre code", (c) => c.map((x) => x.textContent))).some((t) => t.startsWith("Blue light")));
  check("the final stats line (tokens, tok/s)", /58 tokens · 30\.5 tok\/s/.test(ans.stats || ""), ans.stats);
  await page.$eval("#settings-toggle", (b) => b.getAttribute("aria-expanded") === "true" && b.click());
  await page.$eval("#prompt", (t) => t.blur());
  await sleep(200);
  await page.screenshot({ path: SHOT });
  check("screenshot " + SHOT, fs.statSync(SHOT).size > 10000);

  // ---- the choice of model is remembered; dark mode; a phone ----
  phase = "reload";
  if (opts.length > 1) {
    await page.select("#model", opts[1]);
    await page.reload({ waitUntil: "load" });
    await until(() => page.$eval("#model", (s) => !s.disabled && !!s.value));
    check("the chosen model is remembered (localStorage)", (await page.$eval("#model", (s) => s.value)) === opts[1]);
    await page.select("#model", opts[0]);
  }
  const light = await page.$eval("body", (b) => getComputedStyle(b).backgroundColor);
  await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
  const dark = await page.$eval("body", (b) => getComputedStyle(b).backgroundColor);
  check("dark colours under prefers-color-scheme: dark", light !== dark, light + " / " + dark);
  await setField(page, "#max-tokens", "60");
  await typeAndSend(page, "Hello in the dark.");
  await waitDone(page);
  await page.screenshot({ path: SHOT.replace(/\.png$/, "-dark.png") });
  await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);

  const phone = await browser.newPage();
  watch(phone, "phone");
  await phone.setViewport({ width: 390, height: 800, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await phone.goto(BASE + "/", { waitUntil: "load" });
  await until(() => phone.$eval("#model", (s) => !s.disabled && !!s.value));
  await typeAndSend(phone, "A question from a phone, long enough to wrap over more than one line of the screen.");
  await waitDone(phone);
  const fits = await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth &&
    [...document.querySelectorAll("header, footer, .msg, #model, #send")].every((e) => e.getBoundingClientRect().right <= window.innerWidth + 0.5));
  check("phone width (390 px): nothing wider than the screen", fits);
  const composerOnScreen = await phone.$eval(".composer", (c) => c.getBoundingClientRect().bottom <= window.innerHeight);
  check("phone width: the composer stays on screen", composerOnScreen);
  await phone.screenshot({ path: SHOT.replace(/\.png$/, "-phone.png") });
  await phone.close();

  // ---- a server with --api-key: the page asks for the key after a 401 ----
  if (KEY_URL) {
    phase = "api-key";
    const kp = await browser.newPage();
    watch(kp, "key");
    await kp.goto(KEY_URL + "/", { waitUntil: "load" });
    const asked = await until(() => visible(kp, "#key-row"), 5000);
    check("401 from /api/tags: the page shows the API key field and the error", asked &&
          /HTTP 401/.test(await kp.$eval("#notice", (n) => n.textContent)));
    await kp.click("#api-key");
    await kp.keyboard.type(KEY);
    await kp.keyboard.press("Enter");
    const listed = await until(() => kp.$eval("#model", (s) => !s.disabled && !!s.value), 5000);
    check("with the key the models load", !!listed && !(await visible(kp, "#notice")));
    await setField(kp, "#max-tokens", "20");
    await typeAndSend(kp, "Hello with a key.");
    const ka = await waitDone(kp);
    const kreq = requests.filter((r) => r.label === "key" && r.method === "POST").pop();
    check("requests carry Authorization: Bearer KEY and the answer arrives",
          kreq && kreq.headers.authorization === "Bearer " + KEY && ka && /tokens/.test(ka.stats || ""), JSON.stringify(ka));
    await kp.close();
  }

  // ---- what the pages did overall ----
  const foreign = requests.filter((r) => !r.url.startsWith(BASE + "/") && !(KEY_URL && r.url.startsWith(KEY_URL + "/")) && !r.url.startsWith("data:"));
  check("the pages made no request outside 127.0.0.1", requests.length > 0 && foreign.length === 0, JSON.stringify(foreign.map((r) => r.url)));
  const unexpected = consoleErrors.filter((e) => !((e.phase === "bad-model" && /status of 404/.test(e.text)) ||
                                                   (e.phase === "api-key" && /status of 401/.test(e.text))));
  check("no console errors (only the expected 404 and 401 loads)", unexpected.length === 0, JSON.stringify(unexpected));
} catch (e) {
  check("the browser test ran to its end", false, e.stack || String(e));
} finally {
  await browser.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(pass + " passed, " + fail + " failed");
process.exit(fail ? 1 : 0);
