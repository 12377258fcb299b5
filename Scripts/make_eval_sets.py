#!/usr/bin/env python3
"""Token sets for choosing and for reporting quantization methods on the trained fixture.

    Scripts/make_eval_sets.py [STDLIB_ROOT]   (default /root/.pyenv/versions/3.11.7/lib/python3.11)

Writes, one sequence of byte-level ids (byte + 3) per line:
  Docs/calibration/trained-s-selection.txt  reference prompts p0, p1 (192 positions): methods and
                                            defaults are chosen on these only
  Docs/calibration/trained-s-heldout.txt    p2, p3 plus 256 bytes from each of 8 other held-out files
                                            (2,560 positions): the reported numbers, never used to choose
The held-out files are the fixture's eval split (reference.json training.corpus.split: seeded shuffle
of the sorted stdlib file list, first 2%); calibration uses self-sampled tokens or training-split text.
"""
import glob
import json
import os
import random
import struct
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "/root/.pyenv/versions/3.11.7/lib/python3.11"
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
files = sorted(os.path.relpath(p, root) for p in glob.glob(root + "/**/*.py", recursive=True)
               if "site-packages" not in p and "__pycache__" not in p)
shuffled = files[:]
random.Random(20240611).shuffle(shuffled)
held_out = shuffled[:round(0.02 * len(files))]

raw = open(os.path.join(here, "Tests/Fixtures/ouro-trained-s/reference.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])


def ids(name):
    a, b = header[name]["data_offsets"]
    return list(struct.unpack("<%dq" % ((b - a) // 8), raw[8 + n + a:8 + n + b]))


prompts = [ids("p%d.input_ids" % i) for i in range(4)]
prompt_files = {s["file"] for s in json.load(open(os.path.join(here, "Tests/Fixtures/ouro-trained-s/reference.json")))["prompts"]["sources"]}
assert prompt_files <= set(held_out), "the split does not reproduce the fixture's"
others = [f for f in held_out if f not in prompt_files and os.path.getsize(os.path.join(root, f)) >= 4096]
rng = random.Random(777)
rng.shuffle(others)
extra = []
for f in others[:8]:
    data = open(os.path.join(root, f), "rb").read()
    starts = [i + 1 for i, c in enumerate(data[:-300]) if c == 10]
    s = rng.choice(starts)
    extra.append([b + 3 for b in data[s:s + 256]])
    print("held-out: %s at byte %d" % (f, s), file=sys.stderr)


def write(path, sequences):
    with open(os.path.join(here, path), "w") as out:
        out.write("\n".join(",".join(map(str, s)) for s in sequences) + "\n")


write("Docs/calibration/trained-s-selection.txt", prompts[:2])
write("Docs/calibration/trained-s-heldout.txt", prompts[2:] + extra)
