#!/usr/bin/env python3
"""Seed corpus for fuzz/fuzz_gguf.c: a handful of small valid and near-valid GGUF files (< 8 KB each).

    python3 fuzz/make_corpus.py [outdir]      (default: fuzz/corpus next to this script)

Python 3 standard library only; the output is deterministic. Valid seeds cover every metadata value
type, several tensor types, alignments 1/32/64, version 2 and 3, zero tensors, and two tiny Gemma 4
models (dense with shared KV; MoE + per-layer embeddings) that g4_model_from_gguf accepts, so the
fuzzer also reaches the model loader. Near-valid seeds each break one rule.
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
              U64: "<Q", I64: "<q", F64: "<d"}

# ggml type id -> (values per block, bytes per block)
T_F32, T_F16, T_Q4_0, T_Q8_0, T_Q4_K, T_Q6_K, T_BF16 = 0, 1, 2, 8, 12, 14, 30
BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_BF16: (1, 2), T_Q4_0: (32, 18), T_Q8_0: (32, 34),
         T_Q4_K: (256, 144), T_Q6_K: (256, 210)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        for it in items:
            out += value(et, it)
        return out
    return struct.pack(SCALAR_FMT[t], v)


def f16(x):
    return struct.pack("<e", x)


class Gguf:
    def __init__(self, version=3, align=32):
        self.version, self.align = version, align
        self.kv = []        # (key, type, value) or raw bytes
        self.tensors = []   # (name, type, ne, data, offset or None)

    def add(self, key, t, v):
        self.kv.append((key, t, v))
        return self

    def tensor(self, name, t, ne, data=None, offset=None):
        """t outside BLOCK (an unknown type id) needs explicit data."""
        if data is None:
            blk, bs = BLOCK[t]
            nel = 1
            for d in ne:
                nel *= d
            data = tensor_bytes(t, nel, nel // blk * bs, len(self.tensors))
        self.tensors.append((name, t, list(ne), data, offset))
        return self

    def build(self, n_kv=None, n_tensors=None):
        out = struct.pack("<IIQQ", 0x46554747, self.version,
                          len(self.tensors) if n_tensors is None else n_tensors,
                          len(self.kv) if n_kv is None else n_kv)
        for e in self.kv:
            if isinstance(e, bytes):
                out += e
            else:
                key, t, v = e
                out += gstr(key) + struct.pack("<I", t) + value(t, v)
        # place the data
        offs, at = [], 0
        for (_, _, _, data, off) in self.tensors:
            if off is None:
                off = (at + self.align - 1) // self.align * self.align
            offs.append(off)
            at = max(at, off + len(data))
        for (name, t, ne, _, _), off in zip(self.tensors, offs):
            out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
            out += struct.pack("<IQ", t, off)
        out += b"\0" * (-len(out) % self.align)
        blob = bytearray(at)
        for (_, _, _, data, _), off in zip(self.tensors, offs):
            blob[off:off + len(data)] = data
        return bytes(out) + bytes(blob)


def tensor_bytes(t, nel, nbytes, seed):
    """Deterministic, finite contents: small floats for F32/F16/BF16, plausible blocks otherwise."""
    if t == T_F32:
        return b"".join(struct.pack("<f", ((i * 7 + seed * 3) % 17 - 8) / 16.0) for i in range(nel))
    if t == T_F16:
        return b"".join(f16(((i * 5 + seed) % 13 - 6) / 8.0) for i in range(nel))
    if t == T_BF16:
        return b"".join(struct.pack("<f", ((i * 3 + seed) % 11 - 5) / 4.0)[2:] for i in range(nel))
    # quantized: every block starts with an f16 scale (d) of 1/64; the rest is a byte pattern
    blk, bs = BLOCK[t]
    out = bytearray()
    for b in range(nbytes // bs):
        body = bytes(((b * 31 + i * 7 + seed) & 0xFF) for i in range(bs))
        if t in (T_Q4_0, T_Q8_0):
            body = f16(1 / 64) + body[2:]
        elif t == T_Q4_K:
            body = f16(1 / 64) + f16(1 / 128) + body[4:]
        elif t == T_Q6_K:
            body = body[:-2] + f16(1 / 64)
        out += body
    return bytes(out)


def all_types(version=3, align=None, reverse=False):
    g = Gguf(version=version, align=align or 32)
    g.add("general.architecture", STR, "test")
    if align:
        g.add("general.alignment", U32, align)
    g.add("t.u8", U8, 200).add("t.i8", I8, -100).add("t.u16", U16, 60000).add("t.i16", I16, -30000)
    g.add("t.u32", U32, 4000000000).add("t.i32", I32, -2000000000).add("t.f32", F32, 1.5)
    g.add("t.bool", BOOL, 1).add("t.str", STR, "hello").add("t.u64", U64, 1 << 40)
    g.add("t.i64", I64, -(1 << 40)).add("t.f64", F64, 3.25)
    g.add("t.arr_i32", ARR, (I32, [-7, 7, 1 << 30])).add("t.arr_f32", ARR, (F32, [0.5, -2.25, 1e30]))
    g.add("t.arr_u8", ARR, (U8, [1, 2, 255])).add("t.arr_bool", ARR, (BOOL, [1, 0]))
    g.add("t.arr_f64", ARR, (F64, [1e300, float("nan")])).add("t.arr_u64", ARR, (U64, [1 << 63]))
    g.add("t.arr_str", ARR, (STR, ["a", "", "b\0c", "\u00fc"])).add("t.arr_empty", ARR, (U32, []))
    ts = [("a.f32", T_F32, [8, 3]), ("b.f16", T_F16, [32, 2, 1]), ("c.q8_0", T_Q8_0, [64, 2]),
          ("d.q4_k", T_Q4_K, [256, 1]), ("e.empty", T_F32, [0, 4]), ("f.q6_k", T_Q6_K, [256, 1, 1, 1]),
          ("g.bf16", T_BF16, [5]), ("h.q4_0", T_Q4_0, [32, 2])]
    for name, t, ne in ts:
        g.tensor(name, t, ne)
    if reverse:  # data in the opposite order of the infos
        blobs = [x[3] for x in g.tensors]
        offs, at = [0] * len(blobs), 0
        for i in reversed(range(len(blobs))):
            offs[i] = (at + g.align - 1) // g.align * g.align
            at = offs[i] + len(blobs[i])
        g.tensors = [(n, t, ne, d, o) for (n, t, ne, d, _), o in zip(g.tensors, offs)]
    return g


def gemma4(layers, pattern, moe=False, ple=0, shared=0, mat_type=T_F16, optional=True):
    """A tiny model: D=8, 2 query heads, 1 KV head, head dims 8 (full) / 4 (sliding), vocab 4.
    optional=False leaves out the optional tensors (rope_freqs, layer_output_scale, ffn_down_exps.scale)."""
    D, H, V, FF, HDF, HDS = 8, 2, 4, 8, 8, 4
    g = Gguf()
    g.add("general.architecture", STR, "gemma4").add("general.name", STR, "fuzz-seed")
    g.add("gemma4.context_length", U32, 64).add("gemma4.embedding_length", U32, D)
    g.add("gemma4.block_count", U32, layers).add("gemma4.feed_forward_length", U32, FF)
    g.add("gemma4.attention.head_count", U32, H)
    g.add("gemma4.attention.head_count_kv", ARR, (I32, [1] * layers))
    g.add("gemma4.attention.key_length", U32, HDF).add("gemma4.attention.value_length", U32, HDF)
    g.add("gemma4.attention.key_length_swa", U32, HDS).add("gemma4.attention.value_length_swa", U32, HDS)
    g.add("gemma4.attention.layer_norm_rms_epsilon", F32, 1e-6)
    g.add("gemma4.attention.sliding_window", U32, 4)
    g.add("gemma4.attention.sliding_window_pattern", ARR, (BOOL, pattern))
    g.add("gemma4.attention.shared_kv_layers", U32, shared)
    g.add("gemma4.embedding_length_per_layer_input", U32, ple)
    g.add("gemma4.rope.freq_base", F32, 1e6).add("gemma4.rope.freq_base_swa", F32, 1e4)
    g.add("gemma4.final_logit_softcapping", F32, 30.0)
    E, FE = 2, 4
    if moe:
        g.add("gemma4.expert_count", U32, E).add("gemma4.expert_used_count", U32, 1)
        g.add("gemma4.expert_feed_forward_length", U32, FE)
    g.tensor("token_embd.weight", mat_type, [D, V]).tensor("output_norm.weight", T_F32, [D])
    if optional:
        g.tensor("rope_freqs.weight", T_F32, [HDF // 2])
    if ple:
        g.tensor("per_layer_token_embd.weight", mat_type, [layers * ple, V])
        g.tensor("per_layer_model_proj.weight", mat_type, [D, layers * ple])
        g.tensor("per_layer_proj_norm.weight", T_F32, [ple])
    first_shared = layers - shared
    for l in range(layers):
        hd = HDS if pattern[l] else HDF
        b = "blk.%d." % l
        g.tensor(b + "attn_norm.weight", T_F32, [D]).tensor(b + "attn_q.weight", mat_type, [D, H * hd])
        g.tensor(b + "attn_q_norm.weight", T_F32, [hd])
        if l < first_shared:
            g.tensor(b + "attn_k.weight", mat_type, [D, hd]).tensor(b + "attn_k_norm.weight", T_F32, [hd])
            if l != 0:  # layer 0 has no V: "K=V"
                g.tensor(b + "attn_v.weight", mat_type, [D, hd])
        g.tensor(b + "attn_output.weight", mat_type, [H * hd, D])
        g.tensor(b + "post_attention_norm.weight", T_F32, [D]).tensor(b + "ffn_norm.weight", T_F32, [D])
        g.tensor(b + "ffn_gate.weight", mat_type, [D, FF]).tensor(b + "ffn_up.weight", mat_type, [D, FF])
        g.tensor(b + "ffn_down.weight", mat_type, [FF, D]).tensor(b + "post_ffw_norm.weight", T_F32, [D])
        if moe:
            g.tensor(b + "ffn_gate_inp.weight", T_F32, [D, E]).tensor(b + "ffn_gate_inp.scale", T_F32, [D])
            if optional:
                g.tensor(b + "ffn_down_exps.scale", T_F32, [E])
            g.tensor(b + "pre_ffw_norm_2.weight", T_F32, [D]).tensor(b + "post_ffw_norm_1.weight", T_F32, [D])
            g.tensor(b + "post_ffw_norm_2.weight", T_F32, [D])
            if l % 2 == 0:
                g.tensor(b + "ffn_gate_up_exps.weight", mat_type, [D, 2 * FE, E])
            else:
                g.tensor(b + "ffn_gate_exps.weight", mat_type, [D, FE, E])
                g.tensor(b + "ffn_up_exps.weight", mat_type, [D, FE, E])
            g.tensor(b + "ffn_down_exps.weight", mat_type, [FE, D, E])
        if ple:
            g.tensor(b + "inp_gate.weight", mat_type, [D, ple]).tensor(b + "proj.weight", mat_type, [ple, D])
            g.tensor(b + "post_norm.weight", T_F32, [D])
        if optional:
            g.tensor(b + "layer_output_scale.weight", T_F32, [1])
    return g


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(outdir, exist_ok=True)
    seeds = {}

    seeds["valid-all-types.gguf"] = all_types().build()
    seeds["valid-v2-align64-reversed.gguf"] = all_types(version=2, align=64, reverse=True).build()
    seeds["valid-align1.gguf"] = all_types(align=1).build()
    z = Gguf()
    z.add("general.architecture", STR, "gemma4").add("k", U32, 5)
    seeds["valid-zero-tensors.gguf"] = z.build()
    seeds["model-dense-shared-kv.gguf"] = gemma4(3, [1, 0, 1], shared=1).build()
    seeds["model-moe-ple.gguf"] = gemma4(2, [1, 0], moe=True, ple=2, optional=False).build()

    # near-valid: one rule broken each
    seeds["bad-truncated.gguf"] = seeds["valid-all-types.gguf"][:-7]
    g = Gguf()
    g.add("a", U32, 1)
    g.tensor("x", T_F32, [16], offset=0).tensor("y", T_F32, [16], offset=32)
    seeds["bad-overlap.gguf"] = g.build()
    g = Gguf()
    g.add("a", U32, 1)
    g.tensor("x", 99, [4], data=bytes(16))  # unknown tensor type
    seeds["bad-tensor-type.gguf"] = g.build()
    g = Gguf()
    g.add("dup", U32, 1).add("dup", STR, "again").add("nest", ARR, (U8, [1, 2]))
    seeds["bad-dup-key.gguf"] = g.build()
    g = Gguf()
    g.kv.append(gstr("nested") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 1) + b"\1")
    g.tensor("x", T_F32, [4])
    seeds["bad-nested-array.gguf"] = g.build()
    bad = gemma4(2, [1, 0], mat_type=T_F32)
    bad.kv = [e for e in bad.kv if e[0] != "gemma4.attention.sliding_window_pattern"]
    seeds["bad-model-no-pattern.gguf"] = bad.build()

    for name, data in sorted(seeds.items()):
        assert len(data) < 8192, (name, len(data))
        with open(os.path.join(outdir, name), "wb") as fp:
            fp.write(data)
        print("%-34s %5d bytes" % (name, len(data)))


if __name__ == "__main__":
    main()
