#!/usr/bin/env python3
"""Hostile requests against a running g4 serve: each must get the right answer (status and error shape), and the
server must stay healthy after all of them.

usage: abuse.py PORT API_KEY MODEL   (the server runs with --api-key API_KEY --max-body 4194304 --read-timeout 3
                                      --ctx 512, with MODEL loaded)
Prints "ok ..." / "FAIL ..." per case and "N passed, N failed".
"""
import http.client
import json
import socket
import sys
import threading
import time

PORT, KEY, MODEL = int(sys.argv[1]), sys.argv[2], sys.argv[3]
AUTH = {"Authorization": "Bearer " + KEY}
passed = failed = 0


def ok(cond, what, extra=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok", what)
    else:
        failed += 1
        print("FAIL", what, str(extra)[:300])


def req(method, path, body=None, headers=None, raw=None, timeout=30):
    """(status, parsed JSON or text, headers); status 0 when the connection failed"""
    h = dict(AUTH)
    if headers is not None:
        h = headers
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        t = r.read()
        try:
            v = json.loads(t)
        except Exception:
            v = t.decode("utf-8", "replace")
        return r.status, v, dict(r.getheaders())
    except Exception as e:
        return 0, str(e), {}
    finally:
        c.close()


def ollama_err(v):
    return isinstance(v, dict) and isinstance(v.get("error"), str) and v["error"]


def oai_err(v):
    return isinstance(v, dict) and isinstance(v.get("error"), dict) and isinstance(v["error"].get("message"), str) and "type" in v["error"]


def chat(extra=None, api="/api/chat", **kw):
    b = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False, "options": {"num_predict": 4}}
    if api.startswith("/v1"):
        b = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    if extra:
        b.update(extra)
    return req("POST", api, b, **kw)


def expect(status, shape, what, r):
    st, v, _ = r
    good = st == status and (shape(v) if shape else True)
    ok(good, what, (st, v))


def metric(name):
    st, t, _ = req("GET", "/metrics")
    for line in (t if isinstance(t, str) else "").splitlines():
        if line.startswith("g4:" + name + " "):
            return float(line.split()[1])
    return None


def raw_socket(data, read=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


# --- bodies
expect(400, ollama_err, "malformed JSON", req("POST", "/api/chat", raw=b'{"model": "x", '))
expect(400, ollama_err, "JSON that is not an object", req("POST", "/api/chat", raw=b"[1,2,3]"))
expect(400, ollama_err, "empty body", req("POST", "/api/chat", raw=b""))
expect(400, oai_err, "malformed JSON (OpenAI shape)", req("POST", "/v1/chat/completions", raw=b"{{{"))
expect(400, ollama_err, "deeply nested JSON", req("POST", "/api/chat", raw=b"[" * 100000))
expect(400, lambda v: "temperature" in ollama_err(v), "temperature \"hot\"", chat({"options": {"temperature": "hot"}}))
expect(400, lambda v: "temperature" in ollama_err(v), "negative temperature", chat({"options": {"temperature": -1}}))
expect(400, lambda v: "top_p" in ollama_err(v), "top_p 2", chat({"options": {"top_p": 2}}))
expect(400, lambda v: "num_predict" in ollama_err(v), "num_predict -5", chat({"options": {"num_predict": -5}}))
expect(400, ollama_err, "integer beyond 64 bits", req("POST", "/api/chat", raw=b'{"model":"%s","messages":[],"options":{"seed":123456789012345678901234567890}}' % MODEL.encode()))
expect(400, ollama_err, "1e400", req("POST", "/api/chat", raw=b'{"model":"%s","messages":[{"role":"user","content":"x"}],"options":{"temperature":1e400}}' % MODEL.encode()))
expect(400, lambda v: "top_k" in ollama_err(v), "top_k 1e12", chat({"options": {"top_k": 1e12}}))
expect(400, oai_err, "max_tokens 0 (OpenAI)", chat({"max_tokens": 0}, api="/v1/chat/completions"))
expect(400, oai_err, "max_tokens a string (OpenAI)", chat({"max_tokens": "many"}, api="/v1/chat/completions"))
expect(400, oai_err, "n = 1000", chat({"n": 1000}, api="/v1/chat/completions"))
expect(400, oai_err, "top_logprobs 50", chat({"logprobs": True, "top_logprobs": 50}, api="/v1/chat/completions"))
expect(400, ollama_err, "100 stop strings", chat({"options": {"num_predict": 4, "stop": ["s%d" % i for i in range(100)]}}))
expect(400, ollama_err, "stream not a boolean", chat({"stream": "yes"}))
expect(400, ollama_err, "keep_alive \"banana\"", chat({"keep_alive": "banana"}))
expect(400, ollama_err, "messages not a list", chat({"messages": "hi"}))
expect(400, ollama_err, "message without a role", chat({"messages": [{"content": "hi"}]}))
expect(400, ollama_err, "unknown role", chat({"messages": [{"role": "wizard", "content": "hi"}]}))
expect(400, ollama_err, "tools not a list", chat({"tools": {"a": 1}}))
expect(400, lambda v: "images are not supported" in ollama_err(v), "images", chat({"messages": [{"role": "user", "content": "x", "images": ["AAAA"]}]}))
expect(400, lambda v: "images" in v["error"]["message"], "image_url part (OpenAI)", chat({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]}, api="/v1/chat/completions"))
expect(400, ollama_err, "format \"xml\"", chat({"format": "xml"}))
expect(400, lambda v: "format" in ollama_err(v), "schema with an unsupported keyword", chat({"format": {"type": "object", "not": {}}}))
expect(400, oai_err, "response_format type bogus", chat({"response_format": {"type": "yaml"}}, api="/v1/chat/completions"))
expect(400, lambda v: "too long" in ollama_err(v), "prompt longer than the context", chat({"messages": [{"role": "user", "content": "word " * 3000}]}))
expect(400, ollama_err, "invalid UTF-8 in a string", req("POST", "/api/chat", raw=b'{"model":"%s","messages":[{"role":"user","content":"\xff\xfe"}]}' % MODEL.encode()))
expect(400, ollama_err, "\\u0000 in the model name", req("POST", "/api/chat", raw=b'{"model":"a\\u0000b","messages":[]}'))
expect(400, ollama_err, "model missing", req("POST", "/api/chat", {"messages": []}))
expect(400, ollama_err, "model not a string", req("POST", "/api/chat", {"model": 5, "messages": []}))
st, v, _ = chat({"model": "../../../etc/passwd"})
ok(st in (400, 404) and ollama_err(v), "model '../../../etc/passwd'", (st, v))
st, v, _ = chat({"model": "/etc/passwd"})
ok(st in (400, 404) and ollama_err(v), "model '/etc/passwd' (a path)", (st, v))
st, v, _ = chat({"model": "x" * 5000})
ok(st in (400, 404) and ollama_err(v), "5000-byte model name", st)
expect(404, lambda v: ollama_err(v) == "model 'nosuchmodel' not found", "unknown model (Ollama)", chat({"model": "nosuchmodel"}))
expect(404, lambda v: oai_err(v) and "not found" in v["error"]["message"], "unknown model (OpenAI)", chat({"model": "nosuchmodel"}, api="/v1/chat/completions"))
expect(400, lambda v: "embeddings" in ollama_err(v), "/api/embed", req("POST", "/api/embed", {"model": MODEL, "input": "x"}))
expect(400, ollama_err, "/api/pull (no network)", req("POST", "/api/pull", {"model": "gemma4"}))
st, v, _ = chat({"options": {"num_predict": 2, "num_ctx": 100000}})
ok(st == 200, "num_ctx above --ctx is clamped", (st, v))

# --- size limits
big = b'{"model":"%s","messages":[{"role":"user","content":"' % MODEL.encode() + b"a" * (10 << 20) + b'"}]}'
sk = socket.create_connection(("127.0.0.1", PORT), timeout=10)
sk.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (KEY.encode(), len(big)) + big[:65536])
out = sk.recv(4096)  # answered before the body is read (and the connection closed)
sk.close()
ok(out.startswith(b"HTTP/1.1 413") and b'"error"' in out, "10 MB body", out[:80])
out = raw_socket(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 b"".join(b"100000\r\n" + b"b" * 0x100000 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n", timeout=20)
ok(out.startswith(b"HTTP/1.1 413"), "6 MiB chunked body without Content-Length", out[:60])
out = raw_socket(b"GET /api/tags HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 64) for i in range(3000)) + b"\r\n")
ok(out == b"" or out.split(b" ")[1] in (b"413", b"431", b"400"), "3000 headers", out[:60])
out = raw_socket(b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
ok(out == b"" or out.split(b" ")[1] in (b"414", b"413", b"431", b"400"), "100 KB URL", out[:60])
out = raw_socket(b"GARBAGE\r\n\r\n")
ok(out == b"" or out.startswith(b"HTTP/1.1 400"), "garbage request line", out[:60])
out = raw_socket(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"model\"", read=False)
ok(True, "body shorter than Content-Length, then close")
out = raw_socket(b"GET /api/version HTTP/1.0\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n")
ok(out.startswith(b"HTTP/1.") and b" 200 " in out[:20] and b"version" in out, "HTTP/1.0 request", out[:60])

# --- routing, methods, auth, CORS
expect(405, ollama_err, "GET on a POST endpoint", req("GET", "/api/chat", headers=AUTH))
expect(404, oai_err, "unknown path", req("GET", "/v1/nothing", headers=AUTH))
expect(404, ollama_err, "invalid UTF-8 in the path", req("GET", "/api/%ff%fe", headers=AUTH))
expect(401, ollama_err, "no API key (Ollama shape)", req("GET", "/api/tags", headers={}))
expect(401, lambda v: oai_err(v) and v["error"]["type"] == "authentication_error", "wrong API key (OpenAI shape)", req("GET", "/v1/models", headers={"Authorization": "Bearer wrong"}))
expect(401, oai_err, "API key as a prefix of the right one", req("GET", "/v1/models", headers={"Authorization": "Bearer " + KEY[:-1]}))
expect(401, oai_err, "API key with extra bytes", req("GET", "/v1/models", headers={"Authorization": "Bearer " + KEY + "x"}))
expect(200, None, "/health needs no key", req("GET", "/health", headers={}))
st, v, h = req("OPTIONS", "/api/chat", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"})
ok(st == 204 and h.get("Access-Control-Allow-Origin") == "http://localhost:3000" and "authorization" in h.get("Access-Control-Allow-Headers", ""), "CORS preflight from localhost", (st, h))
st, v, h = req("GET", "/api/tags", headers={"Origin": "http://evil.example", **AUTH})
ok(st == 403 and "Access-Control-Allow-Origin" not in h, "request from a foreign origin refused", (st, h))

# --- slow and vanishing clients
slow = []
for i in range(8):  # slowloris: headers a byte at a time
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"GET /api/tags HTTP/1.1\r\nHost: x\r\n")
    slow.append(s)
t0 = time.time()
st, v, _ = req("GET", "/health", headers={})
ok(st == 200 and time.time() - t0 < 2, "answers while slow clients hold connections", st)
time.sleep(5)  # --read-timeout 3: the housekeeper cuts them
cut = 0
for s in slow:
    try:
        s.sendall(b"X")
        s.settimeout(2)
        cut += s.recv(100) == b""
    except Exception:
        cut += 1
    s.close()
ok(cut == len(slow), "slow clients cut after --read-timeout", cut)

long_req = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "count"}], "format": {"type": "array", "items": {"type": "integer"}, "minItems": 100000}, "options": {"num_predict": -1}}
before = metric("requests_cancelled_total")
s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
b = json.dumps(long_req).encode()
s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (KEY.encode(), len(b)) + b)
got = s.recv(4096)
s.close()
busy = None
for _ in range(40):
    time.sleep(0.1)
    busy = metric("requests_processing")
    if busy == 0 and metric("requests_cancelled_total") == before + 1:
        break
ok(got.startswith(b"HTTP/1.1 200") and busy == 0 and metric("requests_cancelled_total") == before + 1, "disconnect mid-stream frees the slot", (got[:40], busy))
s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
long_req["stream"] = False
b = json.dumps(long_req).encode()
s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (KEY.encode(), len(b)) + b)
time.sleep(0.05)  # (the answer would take about a second: --ctx 512 tokens of a huge array)
s.close()
for _ in range(40):
    time.sleep(0.1)
    busy = metric("requests_processing")
    if busy == 0 and metric("requests_cancelled_total") == before + 2:
        break
ok(busy == 0 and metric("requests_cancelled_total") == before + 2, "disconnect while waiting for a whole answer", busy)

# many at once, some abandoned
def worker(i, res):
    r = chat({"options": {"num_predict": 6, "seed": i}})
    res[i] = r[0]
res = {}
ts = [threading.Thread(target=worker, args=(i, res)) for i in range(24)]
for t in ts:
    t.start()
for t in ts:
    t.join()
ok(all(v == 200 for v in res.values()) and len(res) == 24, "24 concurrent requests", res)

# --- still healthy
expect(200, None, "healthy after all of it", req("GET", "/health", headers={}))
st, v, _ = chat()
ok(st == 200 and v.get("done") is True, "a normal chat still works", (st, v))
ok(metric("requests_processing") == 0 and metric("requests_deferred") == 0, "no busy slot, nothing queued")
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
