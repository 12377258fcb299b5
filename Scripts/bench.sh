#!/usr/bin/env bash
# Speed benchmarks on a full-size checkpoint (default: the synthetic Ouro-1.4B-shaped one made by
# Scripts/make_synthetic_checkpoint.py). Every figure is paired with a baseline measured in the same
# run: `cp` (+ fsync, as `ouro convert` commits with fsync) for conversion, read bandwidth over the
# model's own matrices for decode, OpenBLAS sgemm on the prefill shape for prefill.
# Usage: Scripts/bench.sh [checkpoint-folder] [work-dir]   (writes work-dir/bench-results.{jsonl,md})
set -euo pipefail
cd "$(dirname "$0")/.."
checkpoint=${1:-/work/bench/ouro-1.4b}
work=${2:-/work/bench}
repeats=${BENCH_REPEATS:-2}
mkdir -p "$work"
swift build -c release --product ouro >&2
ouro=.build/release/ouro
results="$work/bench-results.jsonl"
: > "$results"
measure() { python3 Scripts/measure.py "$@" 2>>"$results.tmp"; }
rm -f "$results.tmp"

echo "== machine" >&2
{
  printf '{"label":"machine","cpu":"%s","cores":%s,"load_before":"%s"}\n' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
} >> "$results"

echo "== conversion: cp vs ouro convert" >&2
src=$(ls "$checkpoint"/*.safetensors | head -1)
cat "$checkpoint"/*.safetensors > /dev/null        # same page-cache state for everyone
measure cp -- sh -c "cp '$src' '$work/cp-copy.bin' && sync '$work/cp-copy.bin'"
rm -f "$work/cp-copy.bin"
for type in q8_0 q4_0; do
  measure "convert-$type" -- "$ouro" convert "$checkpoint" --output "$work/bench-$type.gguf" --type "$type" >/dev/null
done
cat "$results.tmp" >> "$results"
rm -f "$results.tmp"

echo "== ouro bench (prefill 64, decode 16)" >&2
for type in q8_0 q4_0; do
  for threads in 1 2; do
    "$ouro" bench "$work/bench-$type.gguf" --prompt 64 --generate 16 --threads "$threads" --repeats "$repeats" --json \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); d["label"]="bench"; print(json.dumps(d))' >> "$results"
  done
done
"$ouro" bench "$work/bench-q8_0.gguf" --prompt 64 --generate 4 --threads 1 --float-prefill --json \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); d["label"]="bench-float-prefill"; print(json.dumps(d))' >> "$results"
printf '{"label":"load_after","load":"%s"}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$results"

python3 - "$results" > "$work/bench-results.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = lambda label: [r for r in rows if r["label"] == label]
machine = by("machine")[0]
print(f"Machine: {machine['cpu']}, {machine['cores']} cores; load average before {machine['load_before']}, "
      f"after {by('load_after')[0]['load']}\n")
cp = by("cp")[0]
print("| conversion | wall s | x cp | peak RSS MiB | peak anon MiB |")
print("|---|---|---|---|---|")
for r in [cp] + by("convert-q8_0") + by("convert-q4_0"):
    print(f"| {r['label']} | {r['seconds']:.2f} | {r['seconds'] / cp['seconds']:.2f} | "
          f"{r['peak_rss_bytes'] / 2**20:.0f} | {r['peak_anon_bytes'] / 2**20:.0f} |")
print()
print("| type | threads | prefill tok/s | prefill GFLOP/s | sgemm GFLOP/s | prefill / sgemm | decode tok/s | "
      "GB/token | read GB/s | decode limit tok/s | decode / limit | load ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in by("bench") + by("bench-float-prefill"):
    name = r["type"] + (" (f32 tiles + sgemm prefill)" if r["label"] == "bench-float-prefill" else "")
    print(f"| {name} | {r['threads']} | {r['prefill_tokens_per_s']:.2f} | {r['prefill_gflops']:.1f} | "
          f"{r['sgemm_gflops']:.1f} | {r['prefill_fraction_of_sgemm']:.2f} | {r['decode_tokens_per_s']:.2f} | "
          f"{r['bytes_per_token'] / 1e9:.2f} | {r['read_bandwidth_gb_per_s']:.1f} | {r['decode_limit_tokens_per_s']:.2f} | "
          f"{r['decode_fraction_of_limit']:.2f} | {r['load_ms']:.1f} |")
PY
cat "$work/bench-results.md"
