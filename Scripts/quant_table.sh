#!/usr/bin/env bash
# Rebuilds the table in Docs/QUANTIZATION.md: converts a checkpoint with every preset, validates each
# file against the reference bundle and prints one markdown row per preset (bpw over the quantized
# tensors, KLD mean and p99 by loop step, final top-1, perplexity ratio, step-1 -> last KLD growth).
#
#   Scripts/quant_table.sh [CHECKPOINT] [REFERENCE] > table.md
#
# Defaults: the trained fixture and its reference bundle. Needs a release build
# (swift build -c release --product ouro); takes ~6 minutes on 2 cores (each loop search ~1 min).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKPOINT=${1:-Tests/Fixtures/ouro-trained-s}
REFERENCE=${2:-$CHECKPOINT/reference.safetensors}
CALIBRATION=${CALIBRATION:-Docs/calibration/trained-s-textwrap.txt}
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
  "q4_k imatrix|--type q4_k --imatrix"
  "q4_k_m imatrix|--type q4_k_m --imatrix"
  "loop 4.25 imatrix|--type loop --bpw 4.25 --imatrix"
  "loop 4.5|--type loop --bpw 4.5"
  "loop 4.5 imatrix|--type loop --bpw 4.5 --imatrix"
  "loop 4.5 imatrix, file calibration|--type loop --bpw 4.5 --imatrix --calibration $CALIBRATION"
  "loop 5.0 imatrix|--type loop --bpw 5.0 --imatrix"
  "loop 5.0 imatrix, file calibration|--type loop --bpw 5.0 --imatrix --calibration $CALIBRATION"
)
if [[ -n "${ONLY:-}" ]]; then
  mapfile -t PRESETS < <(printf '%s\n' "${PRESETS[@]}" | grep -E "$ONLY")
fi

i=0
for entry in "${PRESETS[@]}"; do
  name=${entry%%|*}; args=${entry#*|}
  # shellcheck disable=SC2086
  "$OURO" convert "$CHECKPOINT" -o "$WORK/$i.gguf" $args --json > "$WORK/$i.convert.json"
  "$OURO" validate "$WORK/$i.gguf" -r "$REFERENCE" --json > "$WORK/$i.validate.json" || true   # exit 1 = fails its criteria; still a row
  echo "$name" > "$WORK/$i.name"
  echo "converted and validated: $name" >&2
  i=$((i + 1))
done

python3 - "$WORK" "$i" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(n):
    name = open(f"{work}/{i}.name").read().strip()
    c = json.load(open(f"{work}/{i}.convert.json"))
    v = json.load(open(f"{work}/{i}.validate.json"))
    steps = v["steps"]
    if not rows:
        s = len(steps)
        print("| preset | bpw | KLD mean by step " + " / ".join(str(k + 1) for k in range(s)) +
              " | KLD p99 by step | final top-1 | PPL ratio | growth 1->%d | pass |" % s)
        print("|---|---|---|---|---|---|---|---|")
    mean = " / ".join("%.2e" % x["kld_mean"] for x in steps)
    p99 = " / ".join("%.2e" % x["kld_p99"] for x in steps)
    growth = steps[-1]["kld_mean"] / steps[0]["kld_mean"]
    rows.append(name)
    print("| %s | %.4f | %s | %s | %.2f%% | %.4f | %.2fx | %s |" % (
        name, c["bits_per_weight"], mean, p99, 100 * v["final"]["top1_agreement"],
        v["perplexity"]["ratio"], growth, "yes" if v["pass"] else "no"))
PY
