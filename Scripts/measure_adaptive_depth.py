#!/usr/bin/env python3
"""Adaptive-depth measurements on a small trained model (Docs/ADAPTIVE_DEPTH.md).

For each 64-token window of a held-out id file, runs `ouro generate --tokens ... --json` in every mode
below, interleaved (mode after mode, round after round, so a machine whose speed drifts affects all
modes alike), and reports per mode the median over (prompt, round) of decode tok/s relative to the
baseline mode run next to it, plus token identity, mean loop steps and acceptance rate.

  python3 Scripts/measure_adaptive_depth.py .build/release/ouro Tests/Fixtures/ouro-trained-s \
      Docs/calibration/trained-s-heldout.txt --prompts 4 --rounds 3

--windows 0,8,16 picks the windows by index instead (window i is ids[i*length : (i+1)*length]), so
settings chosen on one set of windows can be reported on others.

Speed is reported three ways, each against the baseline run next to it: the median of per-pair
in-process decode tok/s ratios with its quartiles; the pooled ratio (all tokens over all decode
seconds of a mode, so a pair disturbed by the load weighs what its time weighs, not a vote); and the
pooled ratio of decode CPU seconds (`decode_cpu_seconds`: the process's CPU time over the decode,
which time-slicing on a loaded machine does not stretch). --warmup runs every mode once per window
first and drops it (the first process after a build or a file change pays the cold page cache).
"""
import argparse, json, re, statistics, subprocess, sys


def run(ouro, model, prompt, new, extra):
    cmd = [ouro, "generate", model, "--tokens", ",".join(map(str, prompt)), "--max-new", str(new), "--json"] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ouro"); ap.add_argument("model"); ap.add_argument("ids")
    ap.add_argument("--prompts", type=int, default=4); ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--length", type=int, default=64); ap.add_argument("--new", type=int, default=192)
    ap.add_argument("--speculate", default="2:1,3:1,4:1,6:1,3:2,4:2", help="K:D or K:D:P (P: --draft-min-probability), comma-separated")
    ap.add_argument("--threshold", default="0.5")
    ap.add_argument("--windows", help="comma-separated window indices (window i: ids[i*length:(i+1)*length])")
    ap.add_argument("--no-threshold", action="store_true", help="skip the early-exit modes")
    ap.add_argument("--warmup", action="store_true", help="run every mode once per window first, untimed")
    ap.add_argument("--extra", default="", help="arguments added to every run, e.g. '--threads 1'")
    a = ap.parse_args()
    ids = [int(x) for x in re.split(r"[,\s]+", open(a.ids).read()) if x]
    if a.windows:
        prompts = [ids[int(i) * a.length:(int(i) + 1) * a.length] for i in a.windows.split(",")]
        if any(len(p) < a.length for p in prompts):
            sys.exit(f"--windows: the id file holds {len(ids) // a.length} windows of {a.length} tokens")
    else:
        stride = max(a.length, (len(ids) - a.length) // max(1, a.prompts))
        prompts = [ids[i * stride: i * stride + a.length] for i in range(a.prompts)]
    common = a.extra.split()
    modes = {"plain": ["--exit", "last"] + common}
    for spec in a.speculate.split(","):
        # K:D, or K:D:P with --draft-min-probability P
        k, d, *p = spec.split(":")
        extra = ["--draft-min-probability", p[0]] if p else []
        modes[f"speculate K={k} D={d}" + (f" P={p[0]}" if p else "")] = ["--exit", "last", "--speculate", k, "--draft-steps", d] + extra + common
    if not a.no_threshold:
        modes[f"threshold:{a.threshold} full depth"] = ["--exit", f"threshold:{a.threshold}", "--full-depth"] + common
        modes[f"threshold:{a.threshold} early exit"] = ["--exit", f"threshold:{a.threshold}"] + common
    results = {m: [] for m in modes}
    if a.warmup:
        for prompt in prompts:
            for extra in modes.values():
                run(a.ouro, a.model, prompt, a.new, extra)
    for r in range(a.rounds):
        for p, prompt in enumerate(prompts):
            for m, extra in modes.items():
                results[m].append((p, r, run(a.ouro, a.model, prompt, a.new, extra)))
    base = {(p, r): o for p, r, o in results["plain"]}
    full = {(p, r): o for p, r, o in results.get(f"threshold:{a.threshold} full depth", [])}
    print(f"{len(prompts)} prompts x {a.length} tokens, {a.new} new tokens, {a.rounds} rounds; ratios are medians of per-run pairs")
    for m, rows in results.items():
        yard = full if "early exit" in m else base
        ratios = [o["decode_tokens_per_second"] / yard[(p, r)]["decode_tokens_per_second"] for p, r, o in rows]
        same = sum(o["generated"] == yard[(p, r)]["generated"] for p, r, o in rows)
        agree = statistics.mean(sum(x == y for x, y in zip(o["generated"], yard[(p, r)]["generated"])) / len(o["generated"])
                                for p, r, o in rows)
        first = [next((i for i, (x, y) in enumerate(zip(o["generated"], yard[(p, r)]["generated"])) if x != y), len(o["generated"]))
                 for p, r, o in rows]
        steps = [o.get("mean_loop_steps") for _, _, o in rows if o.get("mean_loop_steps") is not None]
        acc = [o.get("acceptance_rate") for _, _, o in rows if o.get("acceptance_rate") is not None]
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        def pooled(key):
            # tokens per second of all this mode's runs over the baseline's runs next to them
            mine = sum(len(o["generated"]) - 1 for _, _, o in rows) / sum(o[key] for _, _, o in rows)
            theirs = sum(len(yard[(p, r)]["generated"]) - 1 for p, r, _ in rows) / sum(yard[(p, r)][key] for p, r, _ in rows)
            return mine / theirs
        cpu = f"  pooled x{pooled('decode_seconds'):.3f}" + (f"  CPU x{pooled('decode_cpu_seconds'):.3f}" if "decode_cpu_seconds" in rows[0][2] else "")
        print(f"{m:32s} tok/s {statistics.median(o['decode_tokens_per_second'] for _, _, o in rows):9.1f}  "
              f"x{statistics.median(ratios):.3f} [{quartiles[0]:.2f}-{quartiles[2]:.2f}]{cpu} vs {'full depth' if yard is full else 'plain'}  "
              f"identical {same}/{len(rows)}  positional agreement {agree:.3f}  first difference (median) {statistics.median(first)}"
              + (f"  mean loop steps {statistics.mean(steps):.3f}" if steps else "")
              + (f"  acceptance {statistics.mean(acc):.3f}" if acc else ""))


if __name__ == "__main__":
    sys.exit(main())
