#!/usr/bin/env python3
"""Runs a command and reports its wall time and peak memory as one JSON line on stderr.

Peak RSS comes from the kernel (VmHWM, read just before the process exits is not possible from
outside, so /proc is sampled every 10 ms); RssAnon and RssFile are sampled the same way. RssAnon is
what the process itself allocated; RssFile is mapped file pages (the input checkpoint), which the
kernel can drop at any time.
The peaks are those of the largest process among the command and its descendants.
Usage: measure.py LABEL -- command args...
"""
import json, os, subprocess, sys, time

def status(pid):
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "RssAnon", "RssFile", "VmRSS"):
                    fields[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return fields

def tree(pid):
    """pid and its descendants (a command run through `sh -c` is measured by its children too)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out

label = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
start = time.monotonic()
proc = subprocess.Popen(command)
peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0}
while proc.poll() is None:
    for pid in tree(proc.pid):
        s = status(pid)
        for k in peak:
            peak[k] = max(peak[k], s.get(k, 0))
    time.sleep(0.01)
wall = time.monotonic() - start
print(json.dumps({"label": label, "seconds": round(wall, 3), "exit": proc.returncode,
                  "peak_rss_bytes": peak["VmHWM"], "peak_anon_bytes": peak["RssAnon"],
                  "peak_file_bytes": peak["RssFile"]}), file=sys.stderr)
sys.exit(proc.returncode)
