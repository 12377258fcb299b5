#!/usr/bin/env python3
"""Generates Q8_0 / Q4_0 test vectors with gguf-py (llama.cpp's independent Python implementation).

Writes into Tests/QuantizationTests/Vectors/ (little-endian, no headers; shapes in manifest.json):
  inputs.f32          ROWS x COLUMNS float32 rows
  q8_0.bin, q4_0.bin  gguf.quants.quantize(inputs, Q8_0 / Q4_0): the expected stored bytes
  q8_0.dequant.f32,
  q4_0.dequant.f32    gguf.quants.dequantize of those bytes

Rows are one block each and cover: random values over many scales, zeros (whole rows and scattered),
exact rounding ties after scaling, blocks whose largest magnitude is negative, equal +/- magnitudes
(the first one wins), all-equal blocks, and scales whose f16 `d` is subnormal or rounds to zero.

Known deviation of gguf-py from ggml's C (`quantize_row_q4_0_ref`), found by running a C transcription
of the reference over these inputs: for a Q4_0 block whose elements are all +/-0 and whose first element
is -0, gguf-py takes that -0 as the block maximum and stores d = +0 (0x0000), while the C loop never
replaces its initial `max = 0.0f` and stores d = 0.0f / -8 = -0 (0x8000). Quants agree. Q8_0 is identical.
Such blocks are listed in manifest.json under "q4_0_negative_zero_blocks"; the Swift quantizer follows C.

Usage: python3 Scripts/make_quant_vectors.py   (needs `pip install gguf numpy`; deterministic seed)
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

ROWS, COLUMNS = 320, 32
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "QuantizationTests", "Vectors")


def make_rows(rng: np.random.Generator) -> np.ndarray:
    rows = []
    # Random rows over 14 decades of scale, some with scattered zeros.
    for i in range(160):
        scale = np.float32(10.0 ** rng.uniform(-9, 5))
        r = (rng.standard_normal(COLUMNS) * scale).astype(np.float32)
        if i % 4 == 0:
            r[rng.random(COLUMNS) < 0.3] = 0
        rows.append(r)
    rows.append(np.zeros(COLUMNS, np.float32))
    rows.append(-np.zeros(COLUMNS, np.float32))
    # Q8_0 ties: amax = 127 * 2^e gives d = 2^e exactly, id = 2^-e, so x = (k + 0.5) * 2^e scales to a tie.
    for e in (-20, -3, 0, 2, 7):
        r = ((rng.integers(-127, 127, COLUMNS) + 0.5) * 2.0 ** e).astype(np.float32)
        r[rng.integers(COLUMNS)] = 127 * 2.0 ** e * rng.choice([-1, 1])
        rows.append(r)
    # Q4_0 ties: max = -8 * 2^e gives d = 2^e, so x = (k + 0.5) * 2^e lands on x*id + 8.5 = integer.
    for e in (-12, -1, 0, 3, 9):
        for sign in (-1, 1):
            r = ((rng.integers(-8, 8, COLUMNS) + 0.5) * 2.0 ** e).astype(np.float32)
            r[rng.integers(COLUMNS)] = sign * 8 * 2.0 ** e
            rows.append(r)
    # Ties in magnitude between +m and -m: the first occurrence decides the sign of Q4_0's d.
    for first in (-1, 1):
        r = rng.uniform(-1, 1, COLUMNS).astype(np.float32)
        r[3], r[20] = first * 2.0, -first * 2.0
        rows.append(r)
    # Negative-max blocks.
    for _ in range(20):
        r = rng.uniform(-1, 1, COLUMNS).astype(np.float32)
        r[rng.integers(COLUMNS)] = -np.float32(10.0 ** rng.uniform(0, 3))
        rows.append(r)
    # All-equal blocks.
    for v in (1.0, -1.0, 0.1, -3.75, 1e-6, 1234.5, 8.0, -127.0):
        rows.append(np.full(COLUMNS, v, np.float32))
    # A single nonzero element.
    for v in (1.0, -1.0, 1e-30, 65000.0):
        r = np.zeros(COLUMNS, np.float32)
        r[rng.integers(COLUMNS)] = v
        rows.append(r)
    # f16 d subnormal (amax/127 < 6.1e-5) or flushed to zero (amax/127 < 2^-25).
    for scale in (1e-3, 1e-5, 3e-6, 1e-7, 1e-9, 1e-12):
        rows.append((rng.uniform(-1, 1, COLUMNS) * scale).astype(np.float32))
    # Fill up with uniform rows of mixed sign and magnitude.
    while len(rows) < ROWS:
        rows.append((rng.uniform(-1, 1, COLUMNS) * 10.0 ** rng.uniform(-4, 4)).astype(np.float32))
    return np.stack(rows[:ROWS]).astype(np.float32)


def main() -> int:
    rng = np.random.default_rng(20240617)
    inputs = make_rows(rng)
    assert inputs.shape == (ROWS, COLUMNS) and inputs.dtype == np.float32
    os.makedirs(OUT, exist_ok=True)
    inputs.astype("<f4").tofile(os.path.join(OUT, "inputs.f32"))
    for qtype, stem in ((T.Q8_0, "q8_0"), (T.Q4_0, "q4_0")):
        with np.errstate(over="ignore", under="ignore"):
            q = quantize(inputs, qtype)
            back = dequantize(q, qtype)
        q.astype(np.uint8).tofile(os.path.join(OUT, f"{stem}.bin"))
        back.astype("<f4").tofile(os.path.join(OUT, f"{stem}.dequant.f32"))
    negzero = [i for i in range(ROWS) if not inputs[i].any() and np.signbit(inputs[i, 0])]
    manifest = {
        "generator": "Scripts/make_quant_vectors.py",
        "gguf_version": getattr(gguf, "__version__", None) or _dist_version(),
        "numpy_version": np.__version__,
        "rows": ROWS,
        "columns": COLUMNS,
        "q4_0_negative_zero_blocks": negzero,
        "files": ["inputs.f32", "q8_0.bin", "q8_0.dequant.f32", "q4_0.bin", "q4_0.dequant.f32"],
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in manifest["files"])
    print(f"wrote {ROWS} rows x {COLUMNS} to {os.path.normpath(OUT)} ({total} bytes)")
    return 0


def _dist_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
