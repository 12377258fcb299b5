#!/usr/bin/env bash
# OuroKit against llama.cpp on this machine, in one run: conversion time, prefill and decode speed.
# Everything is reported as a ratio ours / llama.cpp measured in the same run, interleaved, because
# the machine's absolute speed drifts. See Docs/BENCHMARKS.md for what the figures mean.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: Scripts/bench_peers.sh [options]

Builds llama.cpp (from the llama-cpp-python sdist on PyPI, which bundles it) into a cache outside the
repository if it is not there yet, writes the Ouro checkpoint's blocks as a llama-architecture f16
GGUF, quantizes it with llama-quantize and the checkpoint with `ouro convert` (timing both), then runs
`ouro bench` and `llama-bench` on each type and thread count, alternating between the two.
llama.cpp runs the 24 blocks once per token and Ouro runs them 4 times (total_ut_steps), so
llama.cpp's tok/s are divided by 4: the same weight traffic per token.

Options:
  --checkpoint DIR     Ouro checkpoint (bf16 safetensors)    [/work/bench/ouro-1.4b]
  --work DIR           where GGUF files and results go        [$OURO_PEER_CACHE/run]
  --types LIST         our --type values, comma-separated     [q8_0,q4_0,q4_k,q4_k_s,q4_k_m,iq4_nl,q6_k]
                       also iq4_xs, q5_k, q3_k (paired with llama.cpp's type of the same name;
                       q4_k with Q4_K_S, q5_k and q3_k with uniform --pure Q5_K_S / Q3_K_S)
  --threads LIST       thread counts                          [1,2]
  --rounds N           alternating rounds; best kept          [2]
  --prompt N           prompt tokens (prefill)                [64]
  --generate N         generated tokens                       [16]
  --slow-types LIST    types to run with --slow-generate tokens instead (for slow code paths) []
  --slow-generate N    generated tokens for --slow-types      [4]
  --no-convert         reuse existing GGUF files (conversion not timed; missing files are made)
  --quick              --types q8_0,q4_0,q4_k --threads 1 --rounds 1 --generate 8 --no-convert
  -h, --help           this text

Environment: OURO_PEER_CACHE (default ~/.cache/ourokit-peers) holds the llama.cpp source and build,
a Python venv with gguf-py, and the default work folder. LLAMA_CPP_PYTHON_VERSION picks the sdist
[0.3.36]; if pip cannot get it, the newest is used. Results: WORK/peers-results.{jsonl,md}.
`ouro convert --type loop` is not timed here (no llama.cpp counterpart; Docs/BENCHMARKS.md times it against --type q4_k).
EOF
}

die() { echo "bench_peers.sh: $*" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${OURO_PEER_CACHE:-$HOME/.cache/ourokit-peers}
checkpoint=/work/bench/ouro-1.4b
work=""
types=q8_0,q4_0,q4_k,q4_k_s,q4_k_m,iq4_nl,q6_k
thread_list=1,2
rounds=2
prompt=64
generate=16
slow_types=""
slow_generate=4
convert=1
llama_version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}

need() { [ $# -ge 2 ] || die "option $1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoint) need "$@"; checkpoint=$2; shift 2 ;;
    --work) need "$@"; work=$2; shift 2 ;;
    --types) need "$@"; types=$2; shift 2 ;;
    --threads) need "$@"; thread_list=$2; shift 2 ;;
    --rounds) need "$@"; rounds=$2; shift 2 ;;
    --prompt) need "$@"; prompt=$2; shift 2 ;;
    --generate) need "$@"; generate=$2; shift 2 ;;
    --slow-types) need "$@"; slow_types=$2; shift 2 ;;
    --slow-generate) need "$@"; slow_generate=$2; shift 2 ;;
    --no-convert) convert=0; shift ;;
    --quick) types=q8_0,q4_0,q4_k; thread_list=1; rounds=1; generate=8; convert=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
work=${work:-$cache/run}

# The llama.cpp type each of our types is compared with, and whether llama-quantize gets --pure
# (uniform files, as ours: without it llama-quantize gives the output head Q6_K).
peer_of() {
  case "$1" in
    q8_0|q4_0|iq4_nl|q6_k|iq4_xs) echo "$1" ;;
    q4_k|q4_k_s) echo q4_k_s ;;
    q5_k) echo q5_k_s ;;          # --pure: uniform Q5_K, as ours
    q3_k) echo q3_k_s ;;          # --pure: uniform Q3_K
    q4_k_m) echo q4_k_m ;;
    *) return 1 ;;
  esac
}
is_preset() { case "$1" in q4_k_s|q4_k_m) return 0 ;; *) return 1 ;; esac; }

IFS=, read -r -a type_array <<< "$types"
IFS=, read -r -a thread_array <<< "$thread_list"
for t in "${type_array[@]}"; do
  [ "$t" = loop ] && die "--types loop: the loop preset's search is far too slow at 1.4B today; not benchmarked"
  peer_of "$t" >/dev/null || die "--types: '$t' is not one of q8_0,q4_0,q4_k,q4_k_s,q4_k_m,iq4_nl,q6_k,iq4_xs,q5_k,q3_k"
done
for n in "${thread_array[@]}" "$rounds" "$prompt" "$generate" "$slow_generate"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive whole number"
done
[ "$generate" -ge 2 ] && [ "$slow_generate" -ge 2 ] || die "--generate and --slow-generate must be 2 or more (one decode step at least)"
[ -f "$checkpoint/config.json" ] || die "$checkpoint: no config.json (make one with Scripts/make_synthetic_checkpoint.py)"
generate_for() { if [[ ",$slow_types," == *",$1,"* ]]; then echo "$slow_generate"; else echo "$generate"; fi; }

# --- llama.cpp and the Python helper's venv, in the cache (never in the repository) -------------
venv=$cache/venv
mkdir -p "$cache/src" "$work/logs"
if ! "$venv/bin/python" -c 'import gguf, numpy, scikit_build_core' 2>/dev/null; then
  echo "== venv with gguf-py: $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q gguf numpy scikit-build-core
fi

llama_bin() { ls -d "$cache"/build-*/bin 2>/dev/null | sort -V | tail -1; }
bin=$(llama_bin || true)
if [ -z "$bin" ] || [ ! -x "$bin/llama-bench" ] || [ ! -x "$bin/llama-quantize" ]; then
  if ! command -v cmake >/dev/null; then
    [ "$(id -u)" = 0 ] || die "cmake is missing (apt-get install cmake)"
    apt-get install -y cmake >&2 || { apt-get update >&2 && apt-get install -y cmake >&2; }
  fi
  # pip prepares the sdist's metadata even for a download; with --no-build-isolation it uses the
  # venv's scikit-build-core and the system cmake instead of building cmake from source.
  if ! ls "$cache/src/llama_cpp_python-$llama_version.tar.gz" >/dev/null 2>&1; then
    echo "== downloading llama-cpp-python $llama_version (sdist)" >&2
    "$venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation "llama-cpp-python==$llama_version" -d "$cache/src" >&2 \
      || { echo "llama-cpp-python $llama_version unavailable; taking the newest" >&2
           "$venv/bin/pip" download -q --no-deps --no-binary :all: --no-build-isolation llama-cpp-python -d "$cache/src" >&2
           llama_version=$(ls "$cache"/src/llama_cpp_python-*.tar.gz | sed 's/.*llama_cpp_python-\(.*\)\.tar\.gz/\1/' | sort -V | tail -1); }
  fi
  src=$cache/src/llama_cpp_python-$llama_version
  [ -d "$src/vendor/llama.cpp" ] || tar -xzf "$src.tar.gz" -C "$cache/src"
  echo "== building llama-bench and llama-quantize ($src/vendor/llama.cpp -> $cache/build-$llama_version)" >&2
  cmake -S "$src/vendor/llama.cpp" -B "$cache/build-$llama_version" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF >"$cache/build-$llama_version.log" 2>&1
  nice cmake --build "$cache/build-$llama_version" --target llama-bench llama-quantize -j2 >>"$cache/build-$llama_version.log" 2>&1 \
    || die "llama.cpp build failed: see $cache/build-$llama_version.log"
  bin=$cache/build-$llama_version/bin
fi
llama_version=$(basename "$(dirname "$bin")"); llama_version=${llama_version#build-}
helper() { "$venv/bin/python" "$repo/Scripts/bench_peers.py" "$@"; }

echo "== building ouro (release)" >&2
(cd "$repo" && swift build -c release --product ouro >&2)
ouro=$repo/.build/release/ouro

# --- the run -------------------------------------------------------------------------------------
results=$work/peers-results.jsonl
: > "$results"
note() { python3 -c 'import json,sys; print(json.dumps({"label": "note", "text": sys.argv[1]}))' "$1" >> "$results"; echo "note: $1" >&2; }
# Adds fields to one JSON object: add_fields JSON key=value... (values parsed as JSON when they are)
add_fields() {
  python3 - "$@" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
for kv in sys.argv[2:]:
    k, _, v = kv.partition("=")
    try:
        d[k] = json.loads(v)
    except ValueError:
        d[k] = v
print(json.dumps(d))
PY
}
to_json_list() { python3 -c 'import json,sys; print(json.dumps([int(x) if x.isdigit() else x for x in sys.argv[1].split(",") if x]))' "$1"; }
commit=$(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- Sources Package.swift || echo "+changes")
loop_count=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("total_ut_steps", 4))' "$checkpoint/config.json")
add_fields '{"label":"machine"}' "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "cores=$(nproc)" "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" \
  "ouro_commit=$commit" "llama_cpp_python=$llama_version" "loop_count=$loop_count" \
  "types=$(to_json_list "$types")" "threads=$(to_json_list "$thread_list")" "rounds=$rounds" \
  "prompt=$prompt" "generate=$generate" "slow_types=$(to_json_list "$slow_types")" "slow_generate=$slow_generate" >> "$results"
note "\`ouro convert --type loop\` is not timed here: it has no llama.cpp counterpart (Docs/BENCHMARKS.md times it against --type q4_k)."

f16=$cache/models/$(basename "$checkpoint")-llama-f16.gguf
mkdir -p "$(dirname "$f16")"
if [ ! -f "$f16" ] || [ "$checkpoint/config.json" -nt "$f16" ] || [ -n "$(find "$checkpoint" -name '*.safetensors' -newer "$f16")" ]; then
  echo "== writing $f16 (the checkpoint's blocks as a llama f16 GGUF)" >&2
  helper llama-gguf "$checkpoint" "$f16"
fi
ours_file() { echo "$work/ouro-$1.gguf"; }
peer_file() { echo "$work/llama-$1.gguf"; }

# timed SIDE TYPE OUTPUT -- command...: one "convert" line with wall time, peak memory, output size.
timed() {
  local side=$1 type=$2 out=$3 log
  shift 4
  log=$work/logs/convert-$side-$type.log
  if python3 "$repo/Scripts/measure.py" "convert" -- "$@" >"$log" 2>&1; then
    add_fields "$(tail -1 "$log")" "side=$side" "type=$type" "output_bytes=$(stat -c %s "$out")" >> "$results"
  else
    note "conversion $side $type failed: see $log"
  fi
}

echo "== conversion: ouro convert (bf16 ->) vs llama-quantize (f16 ->), output synced to disk by both" >&2
cat "$checkpoint"/*.safetensors "$f16" > /dev/null     # the same page-cache state for both sides
done_peers=","
for t in "${type_array[@]}"; do
  p=$(peer_of "$t")
  if [ "$convert" = 1 ] || [ ! -f "$(ours_file "$t")" ]; then
    echo "   ouro convert --type $t" >&2
    timed ouro "$t" "$(ours_file "$t")" -- "$ouro" convert "$checkpoint" --output "$(ours_file "$t")" --type "$t"
  fi
  if [[ "$done_peers" != *",$p,"* ]] && { [ "$convert" = 1 ] || [ ! -f "$(peer_file "$p")" ]; }; then
    echo "   llama-quantize $p" >&2
    pure=--pure; is_preset "$p" && pure=""
    # llama-quantize does not fsync; `sync FILE` makes it pay for durability as ouro convert does.
    # It writes in place, so it writes FILE.partial, renamed when complete (--no-convert reuses FILE).
    out=$(peer_file "$p")
    timed llama.cpp "$p" "$out" -- sh -c "'$bin/llama-quantize' $pure '$f16' '$out.partial' ${p^^} $(nproc) && sync '$out.partial' && mv '$out.partial' '$out'"
  fi
  done_peers="$done_peers$p,"
done

echo "== speed: ouro bench and llama-bench, alternating (prompt $prompt, generate $generate)" >&2
for round in $(seq 1 "$rounds"); do
  for n in "${thread_array[@]}"; do
    done_peers=","
    for t in "${type_array[@]}"; do
      p=$(peer_of "$t"); g=$(generate_for "$t")
      echo "   round $round, $n thread(s): ouro $t" >&2
      if out=$("$ouro" bench "$(ours_file "$t")" --prompt "$prompt" --generate "$g" --threads "$n" --json 2>"$work/logs/bench-ouro-$t-$n.log"); then
        add_fields "$out" label=bench side=ouro "type=$t" "round=$round" >> "$results"
      else
        note "ouro bench $t, $n thread(s) failed: see $work/logs/bench-ouro-$t-$n.log"
      fi
      [[ "$done_peers" == *",$p,"* ]] && continue
      done_peers="$done_peers$p,"
      echo "   round $round, $n thread(s): llama.cpp $p" >&2
      if out=$("$bin/llama-bench" -m "$(peer_file "$p")" -p "$prompt" -n "$g" -t "$n" -r 1 -o json 2>"$work/logs/bench-llama-$p-$n.log"); then
        echo "$out" | helper llama-bench "$p" "$round" "$(peer_file "$p")" >> "$results"
      else
        note "llama-bench $p, $n thread(s) failed: see $work/logs/bench-llama-$p-$n.log"
      fi
    done
  done
done
add_fields '{"label":"load_after"}' "load=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$results"

python3 "$repo/Scripts/bench_peers.py" report "$results" > "$work/peers-results.md"
cat "$work/peers-results.md"
echo "(written to $work/peers-results.md and $results)" >&2
