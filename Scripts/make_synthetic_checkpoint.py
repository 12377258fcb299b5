#!/usr/bin/env python3
"""Write a full-size synthetic Ouro checkpoint (random bf16 weights, real Hugging Face layout).

Used by the benchmarks: the weights are random, but names, shapes, dtypes, config.json and file layout
are those of the real Ouro checkpoints, so conversion and inference cost what they would.

    python3 Scripts/make_synthetic_checkpoint.py --shape 1.4b /tmp/ouro-1.4b-synthetic
    python3 Scripts/make_synthetic_checkpoint.py --shape 2.6b --shards 2 /tmp/ouro-2.6b-synthetic

Only numpy is needed. Tensors are generated and written in chunks, so memory stays small.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

SHAPES = {
    # Ouro-1.4B: hidden 2048, intermediate 5632, 24 layers, 16 heads of 128, vocab 49152, 4 loops.
    "1.4b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=24, num_attention_heads=16,
                 num_key_value_heads=16, head_dim=128, vocab_size=49152, total_ut_steps=4),
    # Ouro-2.6B: the same blocks, 48 layers.
    "2.6b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=48, num_attention_heads=16,
                 num_key_value_heads=16, head_dim=128, vocab_size=49152, total_ut_steps=4),
    # A small shape for smoke tests of this script.
    "tiny": dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, head_dim=16, vocab_size=384, total_ut_steps=4),
}


def tensors(c):
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q = c["num_attention_heads"] * c["head_dim"]
    kv = c["num_key_value_heads"] * c["head_dim"]
    yield "model.embed_tokens.weight", (v, h), 1.0
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        yield p + "input_layernorm.weight", (h,), None
        yield p + "self_attn.q_proj.weight", (q, h), h ** -0.5
        yield p + "self_attn.k_proj.weight", (kv, h), h ** -0.5
        yield p + "self_attn.v_proj.weight", (kv, h), h ** -0.5
        yield p + "self_attn.o_proj.weight", (h, q), q ** -0.5
        yield p + "input_layernorm_2.weight", (h,), None
        yield p + "post_attention_layernorm.weight", (h,), None
        yield p + "mlp.gate_proj.weight", (i, h), h ** -0.5
        yield p + "mlp.up_proj.weight", (i, h), h ** -0.5
        yield p + "mlp.down_proj.weight", (h, i), i ** -0.5
        yield p + "post_attention_layernorm_2.weight", (h,), None
    yield "model.norm.weight", (h,), None
    yield "model.early_exit_gate.weight", (1, h), h ** -0.5
    yield "model.early_exit_gate.bias", (1,), 0.5
    yield "lm_head.weight", (v, h), h ** -0.5


def write_shard(path, items, rng):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in items:
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, scale in items:
            count = int(np.prod(shape))
            for start in range(0, count, 1 << 24):
                n = min(1 << 24, count - start)
                if scale is None:  # RMSNorm weights: around 1
                    x = 1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)
                else:
                    x = rng.standard_normal(n, dtype=np.float32) * np.float32(scale)
                f.write((x.view(np.uint32) >> 16).astype(np.uint16).tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1.4b")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    c = SHAPES[a.shape]
    os.makedirs(a.folder, exist_ok=True)
    config = dict(architectures=["OuroForCausalLM"], model_type="ouro", hidden_act="silu",
                  max_position_embeddings=65536, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                  tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=0,
                  early_exit_threshold=1.0, torch_dtype="bfloat16", **c)
    with open(os.path.join(a.folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    items = list(tensors(c))
    rng = np.random.default_rng(a.seed)
    if a.shards == 1:
        write_shard(os.path.join(a.folder, "model.safetensors"), items, rng)
    else:
        per = -(-len(items) // a.shards)
        weight_map, total = {}, 0
        for s in range(a.shards):
            name = f"model-{s + 1:05d}-of-{a.shards:05d}.safetensors"
            part = items[s * per:(s + 1) * per]
            write_shard(os.path.join(a.folder, name), part, rng)
            for t, shape, _ in part:
                weight_map[t] = name
                total += int(np.prod(shape)) * 2
        with open(os.path.join(a.folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    params = sum(int(np.prod(s)) for _, s, _ in items)
    print(f"{a.folder}: {params / 1e9:.2f}B parameters, {params * 2 / 1e9:.2f} GB bf16", file=sys.stderr)


if __name__ == "__main__":
    main()
