#!/usr/bin/env python3
"""Calibration token ids for the byte-level trained fixture (id = byte + 3) from a text file.

Usage: Scripts/make_calibration.py SOURCE_FILE [--offset N] [--count N] > tokens.txt
The committed Docs/calibration/trained-s-textwrap.txt is
  Scripts/make_calibration.py /root/.pyenv/versions/3.11.7/lib/python3.11/textwrap.py --count 2048
(a CPython 3.11 stdlib file; never one of the reference prompts' held-out files).
"""
import argparse
import sys

parser = argparse.ArgumentParser()
parser.add_argument("source")
parser.add_argument("--offset", type=int, default=0)
parser.add_argument("--count", type=int, default=2048)
args = parser.parse_args()
data = open(args.source, "rb").read()[args.offset:args.offset + args.count]
ids = [b + 3 for b in data]
for i in range(0, len(ids), 32):
    print(",".join(str(x) for x in ids[i:i + 32]))
