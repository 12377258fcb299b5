#!/usr/bin/env python3
"""Generates Q3_K / Q4_K / Q5_K / Q6_K / IQ4_NL / IQ4_XS (and importance-weighted Q4_0) test vectors.

gguf-py (0.19) can dequantize these types but not quantize them, so the two halves come from two
independent implementations:

  * quantization: ggml's own C (`ggml/src/ggml-quants.c`, compiled unchanged from the ggml-python
    sdist on PyPI, which vendors it) driven by Scripts/ggml_quantize_harness.c, one row per call,
    with and without an importance matrix, exactly as llama-quantize calls `quantize_<type>`.
    Compiled for baseline x86-64 with -ffp-contract=off: no fused multiply-adds, i.e. the C
    source's plain float semantics (a build that contracts a*b+c into FMAs can differ in ties);
  * dequantization: gguf-py's `gguf.quants.dequantize`, over ggml's bytes and over random blocks
    (every byte random, the f16 scales random finite values including subnormals and zeros), so
    every field and bit position of each layout is exercised.

Writes into Tests/QuantizationTests/Vectors/KQuants/ (little-endian, no headers; shapes in manifest.json):
  inputs.f32, importance.f32      ROWS x 256 float32 (importance: per-column imatrix values, > 0)
  <t>.ggml.bin                    ggml quantize_<t>(inputs, imatrix = NULL)          t in q3_k q4_k q5_k q6_k iq4_nl iq4_xs
  <t>.ggml.imatrix.bin            ggml quantize_<t>(inputs, imatrix = importance)    t in the above and q4_0
  <t>.ggml.dequant.f32            gguf-py dequantize(<t>.ggml.bin)
  <t>.random.bin, <t>.random.dequant.f32   random blocks and their gguf-py dequantization

Usage: python3 Scripts/make_kquant_vectors.py [--ggml-src DIR]   (needs gcc, numpy, `pip install gguf`;
without --ggml-src it runs `pip download ggml-python==0.0.45 --no-deps --no-binary ggml-python` into a temp dir)
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

ROWS, COLUMNS = 48, 256
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "QuantizationTests", "Vectors", "KQuants")
GGML_PYTHON = "ggml-python==0.0.45"
TYPES = {"q4_k": (T.Q4_K, "q4_K"), "q6_k": (T.Q6_K, "q6_K"), "iq4_nl": (T.IQ4_NL, "iq4_nl"), "q4_0": (T.Q4_0, "q4_0"),
         "q3_k": (T.Q3_K, "q3_K"), "q5_k": (T.Q5_K, "q5_K"), "iq4_xs": (T.IQ4_XS, "iq4_xs")}


def make_rows(rng):
    rows = []
    # Weight-like Gaussian rows over several decades.
    for i in range(16):
        rows.append(rng.standard_normal(COLUMNS) * 10.0 ** rng.uniform(-4, 2))
    # Heavy tails and isolated outliers (what real projection matrices look like).
    for i in range(6):
        rows.append(rng.standard_t(3, COLUMNS) * 0.02)
    for i in range(4):
        r = rng.standard_normal(COLUMNS) * 0.01
        r[rng.integers(COLUMNS, size=3)] = rng.choice([-1, 1], 3) * rng.uniform(0.2, 1.0, 3)
        rows.append(r)
    # Zeros: a whole row, whole 32- and 16-element sub-blocks, scattered.
    rows.append(np.zeros(COLUMNS))
    r = rng.standard_normal(COLUMNS); r[32:64] = 0; r[200:216] = 0; rows.append(r)
    r = rng.standard_normal(COLUMNS); r[rng.random(COLUMNS) < 0.5] = 0; rows.append(r)
    # One sub-block tiny next to the others: its 6-bit / int8 sub-scale rounds to 0.
    r = rng.standard_normal(COLUMNS); r[64:96] *= 1e-4; r[0:16] *= 1e-5; rows.append(r)
    # All positive, all negative (the Q4_K min clamps to 0 / is used fully).
    rows.append(np.abs(rng.standard_normal(COLUMNS)) + 0.5)
    rows.append(-np.abs(rng.standard_normal(COLUMNS)) - 0.5)
    rows.append(rng.uniform(0, 1, COLUMNS))
    # Constant rows, sign patterns, a single nonzero.
    rows.append(np.full(COLUMNS, 0.75)); rows.append(np.full(COLUMNS, -3.0))
    r = np.zeros(COLUMNS); r[77] = -2.5; rows.append(r)
    rows.append(np.where(np.arange(COLUMNS) % 2 == 0, 1.0, -1.0) * rng.uniform(0.5, 1, COLUMNS))
    # Scales whose f16 super-block scales are subnormal.
    for s in (1e-3, 1e-5, 1e-7):
        rows.append(rng.standard_normal(COLUMNS) * s)
    # Fill with uniform rows of mixed magnitude.
    while len(rows) < ROWS:
        rows.append(rng.uniform(-1, 1, COLUMNS) * 10.0 ** rng.uniform(-3, 1))
    return np.stack(rows[:ROWS]).astype(np.float32)


def make_importance(rng):
    # imatrix entries are means of squared activations: positive, spread over decades; one row has a
    # zero-importance stretch (columns never activated).
    imp = np.exp(rng.standard_normal((ROWS, COLUMNS)) * 1.5).astype(np.float32)
    imp[5, 40:80] = 0
    return imp


def random_blocks(rng, qtype, count):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (count, size), dtype=np.uint8)
    def f16s(n):
        v = rng.choice([-1, 1], n) * 2.0 ** rng.uniform(-26, 8, n)
        v[::9] = 0
        return v.astype(np.float16).view(np.uint8).reshape(n, 2)
    if qtype in (T.Q4_K, T.Q5_K):
        raw[:, 0:2] = f16s(count); raw[:, 2:4] = f16s(count)
    elif qtype == T.Q6_K:
        raw[:, 208:210] = f16s(count)
    elif qtype == T.Q3_K:
        raw[:, 108:110] = f16s(count)
    else:
        raw[:, 0:2] = f16s(count)
    return raw


def build_harness(ggml_src, work):
    src = os.path.join(ggml_src, "src")
    flags = ["-O2", "-ffp-contract=off", "-std=gnu11", "-I" + os.path.join(ggml_src, "include"), "-I" + src,
             "-I" + os.path.join(src, "ggml-cpu")]
    obj = os.path.join(work, "ggml-quants.o")
    subprocess.check_call(["gcc", *flags, "-c", os.path.join(src, "ggml-quants.c"), "-o", obj])
    exe = os.path.join(work, "harness")
    subprocess.check_call(["gcc", "-O2", os.path.join(HERE, "ggml_quantize_harness.c"), obj, "-lm", "-o", exe])
    return exe


def fetch_ggml(work):
    subprocess.check_call([sys.executable, "-m", "pip", "download", GGML_PYTHON, "--no-deps", "--no-binary", "ggml-python", "-d", work])
    archive = glob.glob(os.path.join(work, "ggml_python-*.tar.gz"))[0]
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    return glob.glob(os.path.join(work, "ggml_python-*", "vendor", "ggml"))[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ggml-src", help="a ggml source tree (the folder holding src/ggml-quants.c)")
    args = ap.parse_args()
    rng = np.random.default_rng(20240618)
    inputs, importance = make_rows(rng), make_importance(rng)
    os.makedirs(OUT, exist_ok=True)
    files = ["inputs.f32", "importance.f32"]
    inputs.astype("<f4").tofile(os.path.join(OUT, "inputs.f32"))
    importance.astype("<f4").tofile(os.path.join(OUT, "importance.f32"))
    with tempfile.TemporaryDirectory() as work:
        exe = build_harness(args.ggml_src or fetch_ggml(work), work)
        for stem, (qtype, cname) in TYPES.items():
            variants = [("imatrix", os.path.join(OUT, "importance.f32"))] + ([] if stem == "q4_0" else [("", "-")])
            for tag, imat in variants:
                name = f"{stem}.ggml{'.' + tag if tag else ''}.bin"
                subprocess.check_call([exe, cname, os.path.join(OUT, "inputs.f32"), str(ROWS), str(COLUMNS), imat, os.path.join(OUT, name)])
                files.append(name)
            if stem == "q4_0":
                continue
            q = np.fromfile(os.path.join(OUT, f"{stem}.ggml.bin"), dtype=np.uint8).reshape(ROWS, -1)
            dequantize(q, qtype).astype("<f4").tofile(os.path.join(OUT, f"{stem}.ggml.dequant.f32"))
            raw = random_blocks(rng, qtype, 64)
            raw.tofile(os.path.join(OUT, f"{stem}.random.bin"))
            with np.errstate(all="ignore"):
                dequantize(raw, qtype).astype("<f4").tofile(os.path.join(OUT, f"{stem}.random.dequant.f32"))
            files += [f"{stem}.ggml.dequant.f32", f"{stem}.random.bin", f"{stem}.random.dequant.f32"]
    manifest = {
        "generator": "Scripts/make_kquant_vectors.py",
        "ggml_source": args.ggml_src and "local tree" or GGML_PYTHON + " (vendor/ggml)",
        "gguf_version": gguf_version(),
        "numpy_version": np.__version__,
        "rows": ROWS, "columns": COLUMNS, "random_blocks": 64,
        "files": files,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(files)} files to {os.path.normpath(OUT)}")
    return 0


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
