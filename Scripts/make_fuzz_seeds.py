#!/usr/bin/env python3
"""Writes the small seed corpora of Scripts/fuzz.sh into Fuzz/Corpus/<target>/.

Seeds are valid inputs the fuzzer mutates from: tiny hand-built files in each format plus pieces of
the fixtures (configs, the sharded index, the first tensors of a real checkpoint). Needs numpy and
the `zstd` command. Rerun after changing a format; the total stays far below 2 MB.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(ROOT, "Fuzz", "Corpus")
DT = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
      "I8": np.int8, "I16": np.int16, "F64": np.float64, "BOOL": np.bool_}


def put(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, raw=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def arr(dtype, shape, values=None):
    a = np.arange(int(np.prod(shape)), dtype=np.float64) if values is None else np.asarray(values)
    return a.astype(DT[dtype]).reshape(shape).tobytes()


def bf16(shape):
    a = (np.arange(int(np.prod(shape)), dtype=np.float32) / 7).view(np.uint32) >> 16
    return a.astype(np.uint16).tobytes()


def safetensors_seeds():
    t = "safetensors"
    put(t, "one-f32", safetensors([("a", "F32", [2], arr("F32", [2]))]))
    put(t, "all-dtypes", safetensors(
        [(f"t.{d.lower()}", d, [2, 3], arr(d, [2, 3])) for d in ["F64", "F32", "F16", "I64", "I32", "I16", "I8", "U8", "BOOL"]]
        + [("t.bf16", "BF16", [3, 2], bf16([3, 2]))], metadata={"format": "pt", "note": "seed"}))
    put(t, "scalar-and-empty", safetensors([("s", "F32", [], arr("F32", [1])), ("e", "F16", [0, 4], b""),
                                            ("z", "I64", [3, 0], b"")]))
    put(t, "header-only", safetensors([]))
    # The first tensors of a real checkpoint, offsets rewritten.
    with open(os.path.join(FIX, "ouro-tiny-a", "model.safetensors"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    picked = sorted(((k, v) for k, v in header.items()), key=lambda kv: kv[1]["data_offsets"][0])
    small = [(k, v) for k, v in picked if v["data_offsets"][1] - v["data_offsets"][0] <= 256][:4]
    put(t, "tiny-a-excerpt", safetensors(
        [(k, v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in small],
        metadata=meta))


def index_seeds():
    t = "checkpoint-index"
    shutil.copy(os.path.join(FIX, "ouro-tiny-b", "model.safetensors.index.json"), os.path.join(OUT, t, "tiny-b-index"))
    put(t, "minimal", b'{"weight_map":{"a":"model-1.safetensors"}}')
    put(t, "with-metadata", json.dumps({"metadata": {"total_size": 123}, "weight_map": {
        "model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors",
        "x\u00e9\\n": "s\"1"}}, indent=2).encode())


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(v):
    kind, x = v
    if kind == "u32": return struct.pack("<II", 4, x)
    if kind == "f32": return struct.pack("<If", 6, x)
    if kind == "bool": return struct.pack("<IB", 7, x)
    if kind == "str": return struct.pack("<I", 8) + gguf_string(x)
    if kind == "strs": return struct.pack("<IIQ", 9, 8, len(x)) + b"".join(gguf_string(s) for s in x)
    if kind == "i32s": return struct.pack("<IIQ", 9, 5, len(x)) + struct.pack(f"<{len(x)}i", *x)
    raise ValueError(kind)


def q8_0(row):
    out = b""
    for i in range(0, len(row), 32):
        block = row[i:i + 32]
        d = max(abs(block).max() / 127, 1e-8)
        out += np.float16(d).tobytes() + np.round(block / d).astype(np.int8).tobytes()
    return out


def gguf(metadata, tensors, alignment=32):
    """tensors: (name, dims outermost-first, ggml type, bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for k, v in metadata:
        head += gguf_string(k) + gguf_value(v)
    data, offsets = b"", []
    for _, _, _, blob in tensors:
        data += b"\0" * (-len(data) % alignment)
        offsets.append(len(data))
        data += blob
    for (name, dims, ty, _), off in zip(tensors, offsets):
        head += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *reversed(dims))
        head += struct.pack("<IQ", ty, off)
    head += b"\0" * (-len(head) % alignment)
    return head + data


def gguf_seeds():
    t = "gguf"
    h, inter, heads, kv, hd, vocab = 32, 64, 2, 1, 16, 8
    meta = [("general.architecture", ("str", "ouro")), ("general.name", ("str", "seed")),
            ("general.alignment", ("u32", 32)),
            ("ouro.context_length", ("u32", 64)), ("ouro.embedding_length", ("u32", h)),
            ("ouro.feed_forward_length", ("u32", inter)), ("ouro.block_count", ("u32", 1)),
            ("ouro.loop_count", ("u32", 2)), ("ouro.exit_threshold", ("f32", 0.5)),
            ("ouro.tie_word_embeddings", ("bool", 1)), ("ouro.attention.head_count", ("u32", heads)),
            ("ouro.attention.head_count_kv", ("u32", kv)), ("ouro.attention.key_length", ("u32", hd)),
            ("ouro.attention.value_length", ("u32", hd)),
            ("ouro.attention.layer_norm_rms_epsilon", ("f32", 1e-6)), ("ouro.rope.freq_base", ("f32", 10000.0)),
            ("ouro.vocab_size", ("u32", vocab)), ("tokenizer.ggml.bos_token_id", ("u32", 1)),
            ("tokenizer.ggml.tokens", ("strs", [f"t{i}" for i in range(vocab)])),
            ("tokenizer.ggml.token_type", ("i32s", [1] * vocab))]

    def f32(shape):
        return (np.arange(int(np.prod(shape)), dtype=np.float32) / 100).tobytes()

    def q8(shape):
        return q8_0(np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32))

    tensors = [("token_embd.weight", [vocab, h], 0, f32([vocab, h]))]
    for name, shape in [("attn_norm", [h]), ("attn_q", [heads * hd, h]), ("attn_k", [kv * hd, h]),
                        ("attn_v", [kv * hd, h]), ("attn_output", [h, heads * hd]), ("post_attention_norm", [h]),
                        ("ffn_norm", [h]), ("ffn_gate", [inter, h]), ("ffn_up", [inter, h]),
                        ("ffn_down", [h, inter]), ("post_ffw_norm", [h])]:
        quantized = len(shape) == 2
        tensors.append((f"blk.0.{name}.weight", shape, 8 if quantized else 0, q8(shape) if quantized else f32(shape)))
    tensors += [("output_norm.weight", [h], 0, f32([h])), ("exit_gate.weight", [1, h], 0, f32([1, h])),
                ("exit_gate.bias", [1], 0, f32([1]))]
    put(t, "ouro-q8_0-1-layer", gguf(meta, tensors))
    put(t, "metadata-only", gguf(meta[:6], []))
    put(t, "mixed-types", gguf([("general.architecture", ("str", "llama"))], [
        ("a", [2, 32], 2, b"\1" * 36), ("b", [4], 1, np.arange(4, dtype=np.float16).tobytes()),
        ("c", [2, 3], 30, bf16([2, 3]))]))


def config_seeds():
    t = "config"
    for fixture in ["ouro-tiny-a", "ouro-tiny-b", "ouro-trained-s"]:
        shutil.copy(os.path.join(FIX, fixture, "config.json"), os.path.join(OUT, t, fixture))
    put(t, "minimal", json.dumps({"model_type": "ouro", "hidden_size": 8, "intermediate_size": 16,
                                  "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 4,
                                  "max_position_embeddings": 16}).encode())


def bundle_seeds():
    t = "bundle"
    S, T, V = 2, 3, 4
    f = lambda *shape: arr("F32", shape)
    ids = lambda *values: arr("I64", [len(values)], values)
    tensors = [("p0.input_ids", "I64", [T], ids(1, 2, 3)), ("p0.step_logits", "F32", [S, T, V], f(S, T, V)),
               ("p0.step_hidden", "F32", [S, T, 2], f(S, T, 2)), ("p0.gate_logits", "F32", [S, T], f(S, T)),
               ("p0.exit_pdf", "F32", [T, S], f(T, S)), ("p0.final_logits", "F32", [T, V], f(T, V)),
               ("p0.weighted_logits", "F32", [T, V], f(T, V)),
               ("p0.threshold_0.5.logits", "F32", [T, V], f(T, V)),
               ("p0.threshold_0.5.exit_steps", "I64", [T], ids(0, 1, 1)),
               ("p0.exit_at_step_1.logits", "F32", [T, V], f(T, V)),
               ("p0.greedy_cached", "I64", [2], ids(3, 0)), ("p0.greedy_uncached", "I64", [2], ids(3, 0)),
               ("p0.labels", "I64", [T], ids(2, 3, -100)),
               ("p2.input_ids", "I32", [1], arr("I32", [1], [0])), ("p2.step_logits", "F16", [S, 1, V], arr("F16", [S, 1, V])),
               ("p2.gate_logits", "F32", [S, 1], f(S, 1)), ("p2.exit_pdf", "F32", [1, S], f(1, S)),
               ("p2.final_logits", "F32", [1, V], f(1, V))]
    plain = safetensors(tensors, metadata={"format": "ouro-reference", "format_version": "1"})
    put(t, "two-prompts", plain)
    put(t, "two-prompts-zstd", subprocess.run(["zstd", "-q", "-c", "-3"], input=plain, capture_output=True, check=True).stdout)
    unsized = subprocess.run(["zstd", "-q", "-c", "--no-content-size"], input=safetensors(tensors[:5] + tensors[5:6]),
                             capture_output=True, check=True).stdout
    put(t, "no-content-size-zstd", unsized)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for target in ["safetensors", "checkpoint-index", "gguf", "config", "bundle"]:
        os.makedirs(os.path.join(OUT, target))
    safetensors_seeds(); index_seeds(); gguf_seeds(); config_seeds(); bundle_seeds()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"seeds written to {OUT}: {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
