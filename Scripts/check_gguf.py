#!/usr/bin/env python3
"""Reads a GGUF file with gguf-py's GGUFReader (llama.cpp's independent implementation) and prints JSON:

  {"version": 3, "alignment": 64, "data_offset": N,
   "metadata": {key: {"type": "UINT32", "value": ...}, ...},          # file order; arrays: "element_type"
   "tensors": [{"name", "type", "shape" (innermost first, as stored), "n_elements", "n_bytes", "offset",
                "sum", "absmax", "first" (up to 8 dequantized values), "first_bits" (their f32 bits)}, ...]}
  Arrays of arrays come out flattened ("flattened": true, "leaf_type"), as gguf-py reads them.

Q8_0 / Q4_0 tensors are verified: dequantizing and re-quantizing with gguf.quants must give back the
stored bytes (both formats are idempotent under that round trip), and the dequantized values must be
finite. Exits 1 (with the JSON still printed, "ok": false, "problems": [...]) if a check fails, 2 if the
file cannot be read. Used by GGUFTests (skipped when `import gguf` fails) and by CI inside a venv:

  python3 -m venv .venv && .venv/bin/pip install gguf && .venv/bin/python Scripts/check_gguf.py file.gguf
"""
import json
import math
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
from gguf.quants import dequantize, quantize

FLOAT_TYPES = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16}
BLOCK_TYPES = {GGMLQuantizationType.Q8_0, GGMLQuantizationType.Q4_0}


def field_json(field):
    main = field.types[0]
    if main == GGUFValueType.ARRAY:
        element = field.types[1] if len(field.types) > 1 else None
        out = {"type": "ARRAY", "element_type": element.name if element is not None else None}
        if element == GGUFValueType.ARRAY:
            # gguf-py flattens arrays of arrays: report the innermost type and the leaves in order.
            out["flattened"] = True
            out["leaf_type"] = field.types[-1].name
        out["value"] = [clean(v) for v in field.contents()]
        return out
    return {"type": main.name, "value": clean(field.contents())}


def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def tensor_json(t, problems):
    qtype = GGMLQuantizationType(t.tensor_type)
    out = {
        "name": t.name,
        "type": qtype.name,
        "shape": [int(d) for d in t.shape],
        "n_elements": int(t.n_elements),
        "n_bytes": int(t.n_bytes),
        "offset": int(t.data_offset),
    }
    raw = np.asarray(t.data)
    if qtype in FLOAT_TYPES or qtype in BLOCK_TYPES:
        if qtype in BLOCK_TYPES or qtype == GGMLQuantizationType.BF16:
            values = dequantize(raw.view(np.uint8), qtype).astype(np.float64).ravel()
        else:
            values = raw.astype(np.float64).ravel()
        if values.size != t.n_elements:
            problems.append(f"{t.name}: {values.size} values after dequantizing, expected {t.n_elements}")
        out["sum"] = float(values.sum())
        out["absmax"] = float(np.abs(values).max()) if values.size else 0.0
        out["first"] = [float(v) for v in values[:8]]
        # Exact float32 bit patterns too: JSON decimal round trips are not exact in every parser.
        out["first_bits"] = [int(b) for b in values[:8].astype(np.float32).view(np.uint32)]
        if qtype in BLOCK_TYPES:
            if not np.isfinite(values).all():
                problems.append(f"{t.name}: non-finite values after dequantizing")
            with np.errstate(all="ignore"):
                again = quantize(dequantize(raw.view(np.uint8), qtype), qtype)
            if not np.array_equal(again.view(np.uint8).ravel(), raw.view(np.uint8).ravel()):
                problems.append(f"{t.name}: {qtype.name} bytes do not survive dequantize + quantize")
    return out


def main(argv):
    if len(argv) != 2:
        print("usage: check_gguf.py FILE.gguf", file=sys.stderr)
        return 2
    try:
        reader = GGUFReader(argv[1])
    except Exception as e:  # the reader raises ValueError / struct errors on malformed files
        print(f"{argv[1]}: gguf-py cannot read it: {e}", file=sys.stderr)
        return 2
    problems = []
    version_field = reader.fields.get("GGUF.version")
    result = {
        "version": int(version_field.contents()) if version_field else None,
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "metadata": {k: field_json(f) for k, f in reader.fields.items() if not k.startswith("GGUF.")},
        "tensors": [tensor_json(t, problems) for t in reader.tensors],
    }
    result["ok"] = not problems
    result["problems"] = problems
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
