#!/usr/bin/env python3
"""Checks an `ouro convert` output against its source checkpoint with independent code.

    python3 Scripts/check_conversion.py CHECKPOINT_DIR FILE.gguf

Reads the checkpoint's safetensors with numpy and the GGUF file with gguf-py's GGUFReader (llama.cpp's
own Python reader), then for every tensor:
  - F32/F16/BF16: the stored values equal the source values converted to that type;
  - Q8_0/Q4_0 written by plain rounding: the stored bytes equal gguf-py's `gguf.quants.quantize` of the
    source values;
  - every other block type, and Q8_0/Q4_0 tensors listed under `ouro.quantization.gptq.tensors` or
    `ouro.quantization.imatrix.tensors` (codes or scales chosen differently from gguf-py's rounding):
    gguf-py's `gguf.quants.dequantize` decodes every element, all finite, and the relative RMS error
    against the source is at most the type's bound below (about twice what ggml's own rounding of
    Gaussian-like weights gives; GPTQ trades weight error for output error, so its codes sit above
    plain rounding's weight error, not far above).
Every metadata key is read and decoded with gguf-py (`ReaderField.contents()`).
ggml's C quantizer and gguf-py differ in one corner (a Q4_0 block of zeros whose first value is -0: C
stores d = -0, gguf-py +0); such blocks are counted and reported, not failed.
Prints a JSON summary; exits 0 when every tensor matches, 1 when one does not, 2 on unreadable input.
"""
import json
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFReader
from gguf.quants import dequantize, quantize

# Largest relative RMS error (|w - q| / |w| over a tensor) accepted from gguf-py's dequantization.
RMS_BOUND = {
    T.Q8_0: 0.02, T.Q6_K: 0.05, T.Q5_K: 0.09, T.Q4_0: 0.2, T.Q4_K: 0.2, T.IQ4_NL: 0.2, T.IQ4_XS: 0.2,
    T.Q3_K: 0.4,
}

HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "model.early_exit_gate.weight": "exit_gate.weight",
    "model.early_exit_gate.bias": "exit_gate.bias",
}
LAYER = {
    "input_layernorm": "attn_norm", "input_layernorm_2": "post_attention_norm",
    "post_attention_layernorm": "ffn_norm", "post_attention_layernorm_2": "post_ffw_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf):
    if hf in HF_TO_GGUF:
        return HF_TO_GGUF[hf]
    parts = hf.split(".")
    if parts[:2] == ["model", "layers"] and hf.endswith(".weight"):
        return f"blk.{parts[2]}.{LAYER['.'.join(parts[3:-1])]}.weight"
    raise KeyError(hf)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data, dtype=np.uint8, count=e - b, offset=base + b)
        if info["dtype"] == "BF16":
            values = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "F16":
            values = raw.view(np.float16).astype(np.float32)
        elif info["dtype"] == "F32":
            values = raw.view(np.float32)
        else:
            raise ValueError(f"{path}: {name}: dtype {info['dtype']}")
        out[name] = values.reshape(info["shape"])
    return out


def source_tensors(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(read_safetensors(os.path.join(folder, f)))
    return tensors


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        source = source_tensors(argv[1])
        reader = GGUFReader(argv[2])
    except Exception as e:
        print(f"check_conversion: cannot read input: {e}", file=sys.stderr)
        return 2
    stored = {t.name: t for t in reader.tensors}
    problems, checked, signed_zero_blocks, keys, worst = [], {}, 0, 0, {}
    listed = set()
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):  # gguf-py's view of the header (version, counts), not a key
            continue
        try:
            value = field.contents()
        except Exception as e:  # noqa: BLE001 (any failure to decode a key is a finding)
            problems.append(f"key {name}: gguf-py cannot decode it: {e}")
            continue
        keys += 1
        if name in ("ouro.quantization.gptq.tensors", "ouro.quantization.imatrix.tensors"):
            listed.update(value or [])
    for hf, values in source.items():
        name = gguf_name(hf)
        if name not in stored:
            problems.append(f"{name}: missing from the GGUF file")
            continue
        t = stored[name]
        qtype = T(t.tensor_type)
        raw = np.asarray(t.data).view(np.uint8).ravel()
        rows = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(1, -1)
        if [int(d) for d in t.shape] != list(values.shape[::-1]):
            problems.append(f"{name}: shape {list(t.shape)} (innermost first) vs source {list(values.shape)}")
            continue
        if qtype in RMS_BOUND and (qtype not in (T.Q8_0, T.Q4_0) or name in listed):
            decoded = dequantize(raw, qtype).astype(np.float64).reshape(rows.shape)
            if not np.all(np.isfinite(decoded)):
                problems.append(f"{name}: {qtype.name} decodes to non-finite values")
            else:
                reference = rows.astype(np.float64)
                error = np.sqrt(np.sum((decoded - reference) ** 2) / max(np.sum(reference ** 2), 1e-30))
                worst[qtype.name] = max(worst.get(qtype.name, 0.0), float(error))
                if error > RMS_BOUND[qtype]:
                    problems.append(f"{name}: {qtype.name} relative RMS error {error:.3f} above {RMS_BOUND[qtype]}")
        elif qtype in (T.Q8_0, T.Q4_0):
            expected = quantize(rows.astype(np.float32), qtype).view(np.uint8).ravel()
            if not np.array_equal(expected, raw):
                bad = np.flatnonzero((expected != raw).reshape(-1, 2 + (32 if qtype == T.Q8_0 else 16)).any(axis=1))
                # gguf-py's Q4_0 zero-block sign corner (see the docstring): d bytes 00 00 vs 00 80, same quants.
                ours = raw.reshape(-1, 18)[bad] if qtype == T.Q4_0 else None
                theirs = expected.reshape(-1, 18)[bad] if qtype == T.Q4_0 else None
                if ours is not None and np.all(ours[:, 1] == 0x80) and np.all(theirs[:, :2] == 0) \
                        and np.all(ours[:, 0] == 0) and np.array_equal(ours[:, 2:], theirs[:, 2:]):
                    signed_zero_blocks += len(bad)
                else:
                    problems.append(f"{name}: {len(bad)} {qtype.name} blocks differ from gguf-py's quantize")
        elif qtype == T.F32:
            if not np.array_equal(raw.view(np.float32), rows.astype(np.float32).ravel()):
                problems.append(f"{name}: F32 values differ from the source")
        elif qtype == T.F16:
            if not np.array_equal(raw.view(np.float16), rows.astype(np.float16).ravel()):
                problems.append(f"{name}: F16 values differ from the source converted to f16")
        elif qtype == T.BF16:
            expected = quantize(rows.astype(np.float32), T.BF16).view(np.uint8).ravel()
            if not np.array_equal(expected, raw):
                problems.append(f"{name}: BF16 values differ from the source converted to bf16")
        else:
            problems.append(f"{name}: type {qtype.name} not checked by this script")
        checked[qtype.name] = checked.get(qtype.name, 0) + 1
    extra = sorted(set(stored) - {gguf_name(h) for h in source})
    if extra:
        problems.append(f"tensors not in the source: {extra}")
    print(json.dumps({"ok": not problems, "keys_read": keys, "tensors_checked": checked,
                      "dequantized_relative_rms_worst": worst,
                      "q4_0_signed_zero_blocks": signed_zero_blocks, "problems": problems}, indent=1))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
