#!/usr/bin/env bash
# The main job on the bundled model: convert the trained Ouro fixture to Q8_0, Q4_0 and Q4_K with
# error-compensating (GPTQ) codes — the best 4.5-bit file on held-out text (Docs/QUANTIZATION.md) — then
# validate each against the PyTorch reference logits, printing the parity report by loop step.
# Ends with text in, text out: the Q8_0 file (which carries the tokenizer) continues a Python prompt;
# the model was trained on Python standard-library source, byte by byte.
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/setup.sh
swift build -c release --product ouro >&2
ouro=.build/release/ouro
model=${1:-Tests/Fixtures/ouro-trained-s}
out=${OURO_DEMO_OUT:-out}
mkdir -p "$out"
status=0
for type in q8_0 q4_0 q4_k; do
  extra=()
  [ "$type" = q4_k ] && extra=(--gptq)
  echo
  echo "== ouro convert $model --type $type ${extra[*]}"
  "$ouro" convert "$model" --output "$out/model-$type.gguf" --type "$type" "${extra[@]}"
  echo
  echo "== ouro validate $out/model-$type.gguf"
  "$ouro" validate "$out/model-$type.gguf" --reference "$model/reference.safetensors" || status=$?
done
echo
prompt=$'import os\nimport sys\n\n\ndef '
echo "== ouro generate $out/model-q8_0.gguf --prompt $(printf %q "$prompt") --max-new 80"
printf '%s' "$prompt"
"$ouro" generate "$out/model-q8_0.gguf" --prompt "$prompt" --max-new 80 || status=$?
exit $status
