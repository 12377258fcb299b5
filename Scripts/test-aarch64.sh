#!/usr/bin/env bash
# The C kernels on aarch64, tested on this (x86-64) machine: cross-compiles Sources/CKernels and
# Tests/CKernelsC/kernel_tests.c with Debian's aarch64 cross compiler (and with clang, the compiler
# SwiftPM uses, when it is on PATH), runs them under qemu-user once per emulated CPU so that every
# level runs (plain NEON: cortex-a53; dotprod: cortex-a76; i8mm: max), checks the run-time CPU check
# and the OURO_KERNELS override, and runs the same tests natively for this CPU's x86 levels.
# Installs the Debian packages it needs (as Scripts/setup.sh does). Prints "N passed, N failed";
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${needed[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test-aarch64: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sources=(Sources/CKernels/*.c Tests/CKernelsC/kernel_tests.c)
flags=(-O2 -std=gnu11 -Wall -Wextra -Werror -ISources/CKernels/include -ISources/CKernels)
clang_bin=$(command -v clang || true)

# Builds in parallel (each is ~20 s of one core); the x86 SIMD files need clang's attribute pragma.
builds=(gcc-aarch64)
aarch64-linux-gnu-gcc "${flags[@]}" "${sources[@]}" -o "$out/gcc-aarch64" -lm -lpthread &
pids=($!)
if [ -n "$clang_bin" ]; then
  builds+=(clang-aarch64 clang-native)
  "$clang_bin" --target=aarch64-linux-gnu --ld-path="$(command -v aarch64-linux-gnu-ld)" "${flags[@]}" "${sources[@]}" \
    -o "$out/clang-aarch64" -lm -lpthread &
  pids+=($!)
  "$clang_bin" "${flags[@]}" "${sources[@]}" -o "$out/clang-native" -lm -lpthread &
  pids+=($!)
else
  echo "test-aarch64: clang not on PATH; only the gcc cross build runs" >&2
fi
for pid in "${pids[@]}"; do wait "$pid" || { echo "test-aarch64: a build failed" >&2; exit 1; }; done

passed=0 failed=0
# run LABEL COMMAND...: one test program run; its closing "N passed, N failed" is added up.
run() {
  local label=$1; shift
  local log status=0
  log=$("$@" 2>&1) || status=$?
  local line p f
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$log" | tail -1 || true)
  if [ -z "$line" ]; then
    echo "$label: no result (exit $status)"; sed 's/^/  /' <<<"$log" | tail -20
    failed=$((failed + 1)); return
  fi
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
  grep '^FAIL' <<<"$log" | sed 's/^/  /' || true
  echo "$label: $line"
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); fi
}

qemu="qemu-aarch64 -L /usr/aarch64-linux-gnu"
for build in "${builds[@]}"; do
  binary="$out/$build"
  if [ "$build" = clang-native ]; then
    run "$build" "$binary"
    continue
  fi
  run "$build, cortex-a53 (plain NEON)" $qemu -cpu cortex-a53 "$binary" --expect-best neon --kv-sample
  run "$build, cortex-a76 (dotprod)" $qemu -cpu cortex-a76 "$binary" --expect-best dotprod --kv-sample
  run "$build, max (i8mm)" $qemu -cpu max "$binary" --expect-best i8mm --kv-sample
  # OURO_KERNELS picks the starting level; a level the CPU lacks leaves the best one.
  run "$build, max, OURO_KERNELS=neon" env OURO_KERNELS=neon $qemu -cpu max "$binary" --expect-start neon --kv-sample
  run "$build, cortex-a53, OURO_KERNELS=i8mm" env OURO_KERNELS=i8mm $qemu -cpu cortex-a53 "$binary" --expect-start neon --kv-sample
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
