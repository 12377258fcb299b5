#!/usr/bin/env bash
# Rebuilds the table in Docs/QUANTIZATION.md: converts the trained fixture with every preset and
# scores each file with `ouro validate --baseline` against the f32 checkpoint (our f32 forward is within 2.4e-5
# of PyTorch's logits) on two token sets that never feed calibration:
#   selection  Docs/calibration/trained-s-selection.txt (p0, p1; 192 positions): defaults chosen here
#   held-out   Docs/calibration/trained-s-heldout.txt (p2, p3 + 8 other held-out files; 2,560 positions)
# Prints one markdown row per preset on held-out data, then the selection-set final KLD per preset.
#
#   Scripts/quant_table.sh > table.md          (ONLY=regex to run a subset)
#
# Needs a release build (swift build -c release --product ouro). Calibration: 1,024 self-sampled
# tokens (seed 0), the default, for every preset that uses any.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKPOINT=${CHECKPOINT:-Tests/Fixtures/ouro-trained-s}
SELECTION=${SELECTION:-Docs/calibration/trained-s-selection.txt}
HELDOUT=${HELDOUT:-Docs/calibration/trained-s-heldout.txt}
OURO=${OURO:-.build/release/ouro}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# name | convert arguments
PRESETS=(
  "q8_0|--type q8_0"
  "q6_k|--type q6_k"
  "q4_0|--type q4_0"
  "iq4_nl|--type iq4_nl"
  "q4_k|--type q4_k"
  "q5_k|--type q5_k"
  "iq4_xs|--type iq4_xs"
  "q3_k|--type q3_k"
  "iq4_xs_mix|--type iq4_xs_mix"
  "q4_k_s|--type q4_k_s"
  "q4_k_m|--type q4_k_m"
  "q4_0 imatrix|--type q4_0 --imatrix"
  "iq4_nl imatrix|--type iq4_nl --imatrix"
  "q4_k imatrix|--type q4_k --imatrix"
  "q4_k_s imatrix|--type q4_k_s --imatrix"
  "q4_k_m imatrix|--type q4_k_m --imatrix"
  "iq4_xs imatrix|--type iq4_xs --imatrix"
  "iq4_xs_mix imatrix|--type iq4_xs_mix --imatrix"
  "q4_0 gptq|--type q4_0 --gptq"
  "iq4_nl gptq|--type iq4_nl --gptq"
  "q4_k gptq|--type q4_k --gptq"
  "q4_k gptq imatrix|--type q4_k --gptq --imatrix"
  "q4_k_m gptq|--type q4_k_m --gptq"
  "q4_k_s gptq|--type q4_k_s --gptq"
  "iq4_xs gptq|--type iq4_xs --gptq"
  "iq4_xs_mix gptq|--type iq4_xs_mix --gptq"
  "q5_k gptq|--type q5_k --gptq"
  "q3_k gptq|--type q3_k --gptq"
  "loop 4.25|--bpw 4.25"
  "loop 4.5|--bpw 4.5"
  "loop 5.0|--bpw 5.0"
)
if [[ -n "${ONLY:-}" ]]; then
  mapfile -t PRESETS < <(printf '%s\n' "${PRESETS[@]}" | grep -E "$ONLY")
fi

i=0
for entry in "${PRESETS[@]}"; do
  name=${entry%%|*}; args=${entry#*|}
  # shellcheck disable=SC2086
  "$OURO" convert "$CHECKPOINT" -o "$WORK/$i.gguf" $args --json > "$WORK/$i.convert.json" 2> "$WORK/$i.convert.log"
  # Exit code 1 only says the file misses its type's pass criteria; the scores are what we want.
  for set in heldout selection; do
    tokens=$HELDOUT; [[ $set == selection ]] && tokens=$SELECTION
    "$OURO" validate "$WORK/$i.gguf" --baseline "$CHECKPOINT" --tokens "$tokens" --json > "$WORK/$i.$set.json" || [[ $? -eq 1 ]]
  done
  rm -f "$WORK/$i.gguf"
  echo "$name" > "$WORK/$i.name"
  echo "converted and scored: $name" >&2
  i=$((i + 1))
done

python3 - "$WORK" "$i" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
runs = []
for i in range(n):
    runs.append((open(f"{work}/{i}.name").read().strip(), json.load(open(f"{work}/{i}.convert.json")),
                 json.load(open(f"{work}/{i}.heldout.json")), json.load(open(f"{work}/{i}.selection.json"))))
q4_0 = next((h["steps"][-1]["kld_mean"] for name, _, h, _ in runs if name == "q4_0"), None)
s = len(runs[0][2]["steps"])
print("| preset | bpw | final KLD mean ± se | x q4_0 | KLD mean by step 1 / ... / %d | KLD p99 by step | final top-1 ± se | PPL ratio | growth 1->%d |" % (s, s))
print("|---|---|---|---|---|---|---|---|---|")
for name, c, h, _ in runs:
    st = h["steps"]
    print("| %s | %.4f | %.2e ± %.1e | %s | %s | %s | %.2f%% ± %.2f | %.4f | %.2fx |" % (
        name, c["bits_per_weight"], st[-1]["kld_mean"], st[-1]["kld_mean_stderr"],
        "%.2fx" % (st[-1]["kld_mean"] / q4_0) if q4_0 else "-",
        " / ".join("%.2e" % x["kld_mean"] for x in st), " / ".join("%.2e" % x["kld_p99"] for x in st),
        100 * h["final"]["top1_agreement"], 100 * h["final"]["top1_agreement_stderr"], h["perplexity"]["ratio"], h["kld_growth"]))
print()
print("Selection set (p0, p1; 192 positions), final KLD mean ± se:")
print()
for name, c, _, sel in runs:
    st = sel["steps"]
    print("- %s: %.2e ± %.1e" % (name, st[-1]["kld_mean"], st[-1]["kld_mean_stderr"]))
PY
