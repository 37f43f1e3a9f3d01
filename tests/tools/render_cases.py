#!/usr/bin/python3
"""Render Gemma 4 chat cases with Google's templates, the way ../shared/oracle/chat/README.md says.

    /usr/bin/python3 tests/tools/render_cases.py check ORACLE/chat/cases.jsonl
        re-render every case and compare with its `rendered` field (proves this script renders like the oracle)
    /usr/bin/python3 tests/tools/render_cases.py make > tests/data/chat_cases_extra.jsonl
        write g4's extra golden cases: the hand-written ones below and a seeded random set
    /usr/bin/python3 tests/tools/render_cases.py make 5000 7 > /tmp/more.jsonl && build/tests/test_chat /tmp/more.jsonl
        a longer differential run: N random cases from another seed, checked by test_chat

Needs jinja2 (Debian: apt-get install python3-jinja2, used by /usr/bin/python3). Rendering: sandboxed environment,
trim_blocks, lstrip_blocks, bos_token "<bos>", raise_exception defined; messages, tools (when not null),
enable_thinking and add_generation_prompt (and preserve_thinking when a case sets it). Tool-call `arguments`
given as a JSON string (the OpenAI shape) are parsed before rendering, as an engine that takes OpenAI requests
does; the case file keeps the string so g4 is tested on it.
"""
import copy
import json
import os
import random
import sys

from jinja2.sandbox import SandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
CHAT = os.environ.get("G4_ORACLE", os.path.join(HERE, "..", "..", "..", "shared", "oracle")) + "/chat"
FLAVOURS = {"e2b": "gemma4-e2b.jinja", "31b": "gemma4-31b.jinja"}


class TemplateError(Exception):
    pass


def raise_exception(msg):
    raise TemplateError(msg)


def load_templates():
    env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    out = {}
    for k, f in FLAVOURS.items():
        with open(os.path.join(CHAT, f), encoding="utf-8") as fh:
            out[k] = env.from_string(fh.read())
    return out


def prepare(messages):
    msgs = copy.deepcopy(messages)
    for m in msgs:
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") if isinstance(tc, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                fn["arguments"] = json.loads(fn["arguments"]) if fn["arguments"].strip() else {}
    return msgs


def render(tmpls, case):
    out = {}
    for k, t in tmpls.items():
        kw = dict(bos_token="<bos>", messages=prepare(case["messages"]),
                  enable_thinking=case["enable_thinking"], add_generation_prompt=case["add_generation_prompt"])
        if case.get("tools") is not None:
            kw["tools"] = case["tools"]
        if "preserve_thinking" in case:
            kw["preserve_thinking"] = case["preserve_thinking"]
        out[k] = t.render(**kw)
    return out


# ---- hand-written cases -----------------------------------------------------------------------------------------
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"}},
        "required": ["city"]}}}

NESTED = {"type": "function", "function": {
    "name": "book_trip", "description": "Book a trip with travellers and options\nacross lines",
    "parameters": {"type": "object", "properties": {
        "travellers": {"type": "array", "description": "who travels",
                       "items": {"type": "object", "properties": {
                           "name": {"type": "string"},
                           "age": {"type": "integer", "description": "years", "nullable": True},
                           "Seat": {"type": "string", "enum": ["window", "aisle", "middle"]}},
                           "required": ["name"]}},
        "dates": {"type": "object", "description": "when", "properties": {
            "start": {"type": "string", "description": "ISO date"},
            "end": {"type": "string"}}, "required": ["start", "end"]},
        "budget": {"type": "number", "nullable": True},
        "tags": {"type": "array", "items": {"type": ["string", "null"], "maxLength": 20, "pattern": "^[a-z]+$"}},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "options": {"type": "object", "additionalProperties": {"type": "boolean"}, "title": "Options"},
        "Priority": {"type": "integer", "enum": [1, 2, 3], "minimum": 1},
        "confirm": {"type": "boolean", "description": ""}},
        "required": ["travellers", "dates"]},
    "response": {"type": "object", "description": "booking reference"}}}

NOPARAMS = {"type": "function", "function": {"name": "now", "description": "Current time"}}
EMPTYPARAMS = {"type": "function", "function": {"name": "ping", "description": "Ping",
                                                "parameters": {"type": "object", "properties": {}}}}
NOTYPE = {"type": "function", "function": {"name": "raw", "description": "no type in parameters",
                                           "parameters": {"properties": {"x": {"type": "string"}}, "required": ["x"]}}}

TRICKY = "quotes \"double\" and 'single', back\\slash, tab\there\nnew line, unicode: café 東京 🙂 \u00a0nbsp, <|\"|> marker"


def hand_cases():
    c = []

    def add(name, messages, tools=None, think=False, gen=True, **extra):
        d = {"id": "extra-" + name, "messages": messages, "tools": tools,
             "enable_thinking": think, "add_generation_prompt": gen}
        d.update(extra)
        c.append(d)

    for think in (False, True):
        t = "think" if think else "nothink"
        add("user-only-" + t, [{"role": "user", "content": "Hello!"}], think=think)
        add("system-" + t, [{"role": "system", "content": "  You are terse.  \n"},
                            {"role": "user", "content": "  Hi there  "}], think=think)
        add("developer-" + t, [{"role": "developer", "content": "Be kind."},
                               {"role": "user", "content": "Hi"}], think=think)
        add("multiturn-" + t, [{"role": "system", "content": "sys"},
                               {"role": "user", "content": "one"},
                               {"role": "assistant", "content": "two"},
                               {"role": "user", "content": "three"},
                               {"role": "assistant", "content": "four"},
                               {"role": "user", "content": "five"}], think=think)
        add("model-role-" + t, [{"role": "user", "content": "a"}, {"role": "model", "content": "b"},
                                {"role": "model", "content": "c"}, {"role": "user", "content": "d"}], think=think)
        add("no-genprompt-" + t, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            think=think, gen=False)
        add("tools-decl-" + t, [{"role": "user", "content": "What's the weather?"}],
            tools=[WEATHER, NESTED, NOPARAMS, EMPTYPARAMS, NOTYPE], think=think)
        add("tools-only-no-messages-" + t, [], tools=[WEATHER], think=think)
        add("empty-" + t, [], think=think)
        add("empty-nogen-" + t, [], think=think, gen=False)
        add("toolcall-pending-" + t, [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]}],
            tools=[WEATHER], think=think)
        add("toolcall-answered-" + t, [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "reasoning_content": "I should call the tool.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21, \"sky\": \"clear\"}"}],
            tools=[WEATHER], think=think)
        add("toolcall-full-" + t, [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking both.", "reasoning_content": "two calls",
             "tool_calls": [
                 {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                 {"id": "b", "type": "function", "function": {"name": "book_trip", "arguments": "{\"dates\":{\"start\":\"x\"}}"}}]},
            {"role": "tool", "tool_call_id": "b", "content": "booked"},
            {"role": "tool", "tool_call_id": "a", "name": "ignored", "content": [{"type": "text", "text": "21 "},
                                                                                 {"type": "text", "text": "C"},
                                                                                 {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "assistant", "content": "Paris is 21C.<|channel>leak<channel|> Done."},
            {"role": "user", "content": "thanks"}],
            tools=[WEATHER, NESTED], think=think)
        add("toolcall-values-" + t, [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "book_trip", "arguments": {
                "travellers": [{"name": TRICKY, "age": 42, "Seat": "aisle"}, {"name": "Bob", "age": None}],
                "dates": {"start": "2026-01-01", "end": "2026-01-09"},
                "budget": 1234.5, "tags": [], "matrix": [[1, 2], [3, -4], []], "options": {},
                "Priority": 3, "confirm": True, "zero": 0, "neg": -0.0, "big": 1e16, "small": 1e-05,
                "pi": 3.141592653589793, "f": 0.1, "e": 12345678901234567890.0, "t": 0.0001,
                "ints": [9007199254740993, -9223372036854775808], "flag": False, "empty": "", "nested": {"a": {"b": {"c": [None, True, "x"]}}},
                "Zeta": 1, "alpha": 2, "Beta": 3, "beta": 4, "_u": 5, "Émile": 6, "émile": 7, "zed": 8}}}]},
            {"role": "tool", "content": "{\"ok\": true}"}],
            tools=[NESTED], think=think)
        add("tool-response-types-" + t, [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": 1, "type": "function", "function": {"name": "now", "arguments": {}}},
                {"id": 2, "type": "function", "function": {"name": "ping", "arguments": None}},
                {"id": 3, "type": "function", "function": {"name": "raw", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": 1, "content": None},
            {"role": "tool", "tool_call_id": 2.0, "content": 17},
            {"role": "tool", "tool_call_id": 3, "content": [{"type": "audio"}, {"type": "text", "text": "ok"},
                                                            {"type": "video"}, {"type": "input_audio"}]},
            {"role": "user", "content": "and?"}],
            tools=[NOPARAMS, EMPTYPARAMS, NOTYPE], think=think)
        add("legacy-tool-responses-" + t, [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "now", "arguments": {}}}],
             "tool_responses": [{"name": "now", "response": {"time": "12:00", "Zone": "UTC", "dst": False}},
                                {"response": "plain"}, {"name": "", "response": [1, 2.5, None]}]},
            {"role": "assistant", "content": "It is noon."}], tools=[NOPARAMS], think=think)
        add("reasoning-history-" + t, [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer one", "reasoning_content": "old thoughts"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "<|channel>thought\ninline thoughts<channel|>answer two",
             "reasoning": "new thoughts\nwith lines"}], think=think, gen=False)
        add("reasoning-after-last-user-" + t, [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "reasoning_content": "thinking about tools",
             "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {}}}]},
            {"role": "tool", "content": "12:00"},
            {"role": "assistant", "content": "noon", "reasoning_content": "final thoughts"}],
            tools=[NOPARAMS], think=think)
        add("preserve-thinking-" + t, [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "reasoning_content": "kept because of tool call",
             "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {}}}]},
            {"role": "tool", "content": "12:00"},
            {"role": "assistant", "content": "ok", "reasoning_content": "dropped"},
            {"role": "user", "content": "next"}], tools=[NOPARAMS], think=think, preserve_thinking=True)
        add("multimodal-" + t, [
            {"role": "system", "content": [{"type": "text", "text": " part one "}, {"type": "text", "text": "part two"}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  What is this?  "},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                         {"type": "audio"}, {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
                                         {"type": "video"}]},
            {"role": "assistant", "content": [{"type": "text", "text": " A cat. "}, {"type": "text", "text": "<|channel>x<channel|>Meow"}]},
            {"role": "user", "content": [{"type": "text", "text": ""}]}], think=think)
        add("empty-contents-" + t, [
            {"role": "system", "content": ""},
            {"role": "user", "content": ""},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": []},
            {"role": "assistant", "content": None},
            {"role": "user"}], think=think)
        add("tricky-strings-" + t, [
            {"role": "system", "content": TRICKY},
            {"role": "user", "content": "\u3000\u2003 ideographic spaces \u2028\u0085\t"},
            {"role": "assistant", "content": "\n\n  <channel|>odd<|channel>unclosed"},
            {"role": "user", "content": "x\u200by"}], think=think)
        add("assistant-last-continue-" + t, [
            {"role": "user", "content": "q"}, {"role": "assistant", "content": "a1"},
            {"role": "assistant", "content": "a2"}], think=think)
        add("tool-after-user-" + t, [
            {"role": "user", "content": "q"}, {"role": "tool", "content": "orphan"},
            {"role": "assistant", "content": "a"}], think=think)
        add("system-mid-" + t, [
            {"role": "user", "content": "q"}, {"role": "system", "content": "mid system"},
            {"role": "assistant", "content": "a"}], think=think)
        add("tool-last-no-content-" + t, [
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {}}}]},
            {"role": "tool", "content": "12:00"}], tools=[NOPARAMS], think=think, gen=False)
        add("model-assistant-mix-" + t, [
            {"role": "user", "content": "a"}, {"role": "model", "content": "b"}, {"role": "assistant", "content": "c"},
            {"role": "user", "content": "d"}, {"role": "assistant", "content": "e"}, {"role": "model", "content": "f"}],
            think=think)
        add("toolcall-then-assistant-" + t, [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "calling", "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {}}}]},
            {"role": "assistant", "content": "no response came"}], tools=[NOPARAMS], think=think)
    # inputs the template itself refuses (g4 must refuse them too, with a message)
    add("error-args-not-object", [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]}])
    add("error-args-missing", [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f"}}]}])
    add("error-tool-content-object", [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {}}}]}, {"role": "tool", "content": {"ok": True}}])
    add("error-tool-text-null", [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {}}}]},
        {"role": "tool", "content": [{"type": "text"}]}])
    add("error-content-item-string", [{"role": "user", "content": ["just a string"]}])
    add("error-reasoning-not-string", [{"role": "user", "content": "q"},
                                       {"role": "assistant", "content": "a", "reasoning_content": ["x"]}])
    add("error-tool-name-missing", [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"arguments": {}}}]}])
    add("error-properties-list", [{"role": "user", "content": "q"}], tools=[{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": ["a"]}}}])
    add("error-role-missing", [{"content": "q"}])
    return c


# ---- random cases -----------------------------------------------------------------------------------------------
WORDS = ["the", "river", "café", "東京", "🙂", "naïve", "3.14", "42", "a", "Straße", "ÅNGSTRÖM", "ǅ", "İstanbul",
         "tabs\tand\nnew", "quote\"d", "it's", "back\\slash", " lead", "trail ", "\u00a0nb", "x\u200bzw", "<|\"|>",
         "<turn|>", "{braces}", "[brackets]", "colon:comma,", "ﬁ", "ß", "\u0130", "\x7f", "\x01ctl", "\u2028",
         "Ω", "ω", "Σ", "ς", "\U0001F600", "\U000E0001"]
KEYS = ["a", "B", "b", "A", "city", "City", "_x", "x_1", "Z", "z", "é", "É", "ö", "Ö", "ß", "ẞ", "item", "items",
        "type", "description", "required", "properties", "enum", "nullable", "Ǆ", "ǆ", "ǅ", "Ω", "ω", "İ", "i"]


def rword(r, n=None):
    return " ".join(r.choice(WORDS) for _ in range(n or r.randint(1, 6)))


def rnum(r):
    k = r.randint(0, 9)
    if k == 0:
        return r.randint(-10, 10)
    if k == 1:
        return r.randint(-2**63, 2**63 - 1)
    if k == 2:
        return r.choice([0.0, -0.0, 1.0, 0.5, 1e16, 1e15, 1e-4, 1e-5, 123456789.0, 5e-324,
                         1.7976931348623157e308, 2.5e-7, 9.999999999999999e15, 0.1 + 0.2])
    if k == 3:
        return r.uniform(-1e6, 1e6)
    if k == 4:
        return float(r.randint(-100, 100))
    if k == 5:
        return r.uniform(-1, 1) * 10 ** r.randint(-30, 30)
    return round(r.uniform(-100, 100), r.randint(0, 4))


def rvalue(r, depth=0):
    k = r.randint(0, 9 if depth < 3 else 5)
    if k <= 1:
        return rword(r)
    if k == 2:
        return rnum(r)
    if k == 3:
        return r.choice([True, False])
    if k == 4:
        return None
    if k == 5:
        return ""
    if k <= 7:
        return [rvalue(r, depth + 1) for _ in range(r.randint(0, 3))]
    return {r.choice(KEYS): rvalue(r, depth + 1) for _ in range(r.randint(0, 4))}


def rschema(r, depth=0):
    t = r.choice(["string", "integer", "number", "boolean", "array", "object"] if depth < 3 else ["string", "integer", "boolean"])
    if r.random() < 0.1:
        t = t.upper() if r.random() < 0.5 else t.capitalize()
    s = {"type": t}
    if r.random() < 0.5:
        s["description"] = rword(r)
    if r.random() < 0.15:
        s["nullable"] = r.choice([True, False])
    if t.lower() == "string" and r.random() < 0.4:
        s["enum"] = [rword(r, 1) for _ in range(r.randint(0, 3))]
    if t.lower() == "array":
        k = r.random()
        if k < 0.7:
            s["items"] = rschema(r, depth + 1)
            if r.random() < 0.2:
                s["items"]["minItems"] = r.randint(0, 3)
            if r.random() < 0.15:
                s["items"]["type"] = ["string", "null"]
            if r.random() < 0.1:
                s["items"]["description"] = None
        elif k < 0.8:
            s["items"] = {}
    if t.lower() == "object":
        k = r.random()
        if k < 0.7:
            s["properties"] = {r.choice(KEYS): rschema(r, depth + 1) for _ in range(r.randint(0, 4))}
            if s["properties"] and r.random() < 0.6:
                s["required"] = r.sample(list(s["properties"]), r.randint(1, len(s["properties"])))
        elif k < 0.85:
            s["additionalProperties"] = rschema(r, depth + 1)
            if r.random() < 0.3:
                s["title"] = rword(r, 1)
    return s


def rweird_schema(r, depth=0):
    """schemas with values of unexpected types: the template prints them with Python's str()/repr()"""
    s = rschema(r, depth + 1)
    k = r.randint(0, 11)
    if k == 0:
        s["type"] = r.choice([["string", "null"], ["integer", "ǅ"], {"a": 1}, None, 5, True, "ſtring", "straße"])
    elif k == 1:
        s["description"] = rvalue(r)
    elif k == 2:
        s["type"] = "object"
        s["required"] = r.choice(["ab", {"x": 1}, [1, None, "é"], []])
    elif k == 3:
        s["type"] = "string"
        s["enum"] = [rvalue(r) for _ in range(r.randint(1, 3))]
    elif k == 4:
        s["nullable"] = rvalue(r)
    elif k == 5:
        s["type"] = "array"
        s["items"] = r.choice([["string"], "string", None, {"type": "object"}, {"required": "xy", "properties": 5},
                               {"type": ["a", 1, None], "x": None, "y": {"Z": [1.5, True]}}])
    elif k == 6:
        s["type"] = "object"
        s["properties"] = {r.choice(KEYS): r.choice(["string", 5, None, [1], {"type": "string"}]) for _ in range(2)}
    elif k == 7:
        s["type"] = "object"
        s.pop("properties", None)
        s["extra"] = rvalue(r)
        s["nullable"] = r.choice([True, 0, "yes"])
    elif k == 8:
        s["type"] = "OBJECT"
        s["properties"] = None
    elif k == 9:
        s["description"] = "  padded \n"
    return s


def rtool(r, i, weird=False):
    sch = rweird_schema if weird else rschema
    params = {"type": "object", "properties": {r.choice(KEYS) + str(j): sch(r) for j in range(r.randint(0, 4))}}
    if weird and r.random() < 0.2:
        params["type"] = r.choice([None, "", "Object", ["object"]])
    if weird and r.random() < 0.1:
        params["required"] = "req"
    if params["properties"] and r.random() < 0.7:
        params["required"] = r.sample(list(params["properties"]), r.randint(1, len(params["properties"])))
    fn = {"name": "fn_%d_%s" % (i, r.choice(["a", "B", "c"])), "description": rword(r)}
    if r.random() < 0.9:
        fn["parameters"] = params
    if r.random() < 0.15:
        fn["response"] = {"type": r.choice(["object", "string"]), "description": rword(r)}
    if weird and r.random() < 0.2:
        fn["description"] = rvalue(r)
    if weird and r.random() < 0.1:
        fn["response"] = r.choice([None, "x", {"type": ["object"]}, {"description": 5}])
    return {"type": "function", "function": fn}


def rcontent(r, role):
    k = r.random()
    if k < 0.7:
        s = rword(r, r.randint(1, 12))
        if role == "assistant" and r.random() < 0.2:
            s = " <|channel>thought\n" + rword(r) + "<channel|>" + s
        return s
    if k < 0.8:
        return ""
    items = []
    for _ in range(r.randint(1, 4)):
        t = r.choice(["text", "text", "image", "image_url", "audio", "input_audio", "video"])
        items.append({"type": t, "text": rword(r)} if t == "text" else {"type": t})
    return items


def rcase(r, n, weird=False):
    tools = [rtool(r, i, weird) for i in range(r.randint(1, 3))] if weird or r.random() < 0.5 else None
    msgs = []
    if r.random() < 0.5:
        msgs.append({"role": r.choice(["system", "system", "developer"]), "content": rword(r, r.randint(1, 8))})
    for _ in range(r.randint(0, 4)):
        msgs.append({"role": "user", "content": rcontent(r, "user")})
        k = r.random()
        if tools and k < 0.5:
            calls = []
            for j in range(r.randint(1, 3)):
                fn = r.choice(tools)["function"]
                args = {r.choice(KEYS): rvalue(r) for _ in range(r.randint(0, 4))}
                tc = {"type": "function", "function": {"name": fn["name"],
                                                       "arguments": json.dumps(args) if r.random() < 0.5 else args}}
                if r.random() < 0.7:
                    tc["id"] = "call_%d" % j
                calls.append(tc)
            m = {"role": "assistant", "content": r.choice(["", None, rword(r)]), "tool_calls": calls}
            if r.random() < 0.5:
                m["reasoning_content"] = rword(r)
            msgs.append(m)
            answered = r.random() < 0.8
            if answered:
                for tc in calls:
                    tm = {"role": "tool", "content": r.choice([rword(r), json.dumps(rvalue(r)), None, 5,
                                                              [{"type": "text", "text": rword(r)}, {"type": "image"}]])}
                    if "id" in tc and r.random() < 0.8:
                        tm["tool_call_id"] = tc["id"]
                    if r.random() < 0.5:
                        tm["name"] = tc["function"]["name"]
                    msgs.append(tm)
                if r.random() < 0.6:
                    msgs.append({"role": "assistant", "content": rcontent(r, "assistant")})
            elif r.random() < 0.5:
                break
        elif k < 0.9:
            m = {"role": "assistant", "content": rcontent(r, "assistant")}
            if r.random() < 0.3:
                m["reasoning_content"] = rword(r)
            msgs.append(m)
    if msgs and msgs[-1]["role"] == "assistant" and r.random() < 0.5:
        msgs.append({"role": "user", "content": rcontent(r, "user")})
    return {"id": "extra-%s-%03d" % ("weird" if weird else "random", n), "messages": msgs, "tools": tools, "enable_thinking": r.random() < 0.5,
            "add_generation_prompt": r.random() < 0.8}


def main():
    tmpls = load_templates()
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        bad = n = 0
        with open(sys.argv[2], encoding="utf-8") as fh:
            for line in fh:
                case = json.loads(line)
                got = render(tmpls, case)
                for k in FLAVOURS:
                    n += 1
                    if got[k] != case["rendered"][k]:
                        bad += 1
                        print("MISMATCH", case.get("id"), k, file=sys.stderr)
        print("%d/%d renders equal" % (n - bad, n))
        return 1 if bad else 0
    if len(sys.argv) >= 2 and sys.argv[1] == "make":
        # optional: make N SEED writes N random cases only (for longer differential runs; not committed)
        if len(sys.argv) >= 4:
            r = random.Random(int(sys.argv[3]))
            cases = [rcase(r, i, i % 4 == 3) for i in range(int(sys.argv[2]))]
        else:
            r = random.Random(20260709)
            cases = hand_cases() + [rcase(r, i) for i in range(300)]
            r = random.Random(31)
            cases += [rcase(r, i, True) for i in range(100)]
        for case in cases:
            try:
                case["rendered"] = render(tmpls, case)
            except Exception as e:  # the template itself refuses: g4 must refuse too
                case["rendered"] = None
                case["error"] = "%s: %s" % (type(e).__name__, e)
            sys.stdout.write(json.dumps(case, ensure_ascii=False) + "\n")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
