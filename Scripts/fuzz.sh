#!/usr/bin/env bash
# Builds the libFuzzer harnesses in Fuzz/Harnesses (one per reader) and runs each for a fixed time.
#
#   Scripts/fuzz.sh [seconds-per-target] [target ...]     default: 60 s, every target
#   FUZZ_BUILD_ONLY=1 Scripts/fuzz.sh                     build, do not run
#   .build-fuzz/bin/fuzz-<target> <input>                  replay one input (e.g. a saved crash)
#
# The Swift module sources are compiled straight with swiftc (-sanitize=fuzzer,address, -enable-testing
# so harnesses can reach internal parse entry points) and the C target with clang (-fsanitize=address)
# into .build-fuzz; the normal `swift build` is not involved. Seeds come from Fuzz/Corpus/<target> (checked in); what the fuzzer adds goes to
# .build-fuzz/corpus/<target>. Crashing inputs are left in Fuzz/Crashes/<target>-crash-<sha1>.
# Prints one line per target; exits 1 when any target crashed, leaked past the memory limit or hung.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
all_targets=(safetensors checkpoint-index gguf config bundle tokenizer)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

out=.build-fuzz
mods=$out/modules
mkdir -p "$mods" "$out/bin" "$out/logs" Fuzz/Crashes

common=(-parse-as-library -O -g -enable-testing -sanitize=fuzzer,address
        -I "$mods" -I Sources/CZstd -I Sources/COpenBLAS)

# The C target CKernels (kernels, thread pool, float rows): compiled with the toolchain's clang, as
# SwiftPM would, plus a module map so `import CKernels` resolves. Its x86 code uses per-function
# target attributes, so no ISA flags are needed here either.
clang_bin=$(dirname "$(command -v swiftc)")/clang
[ -x "$clang_bin" ] || clang_bin=clang
cmods=$out/cmodules
mkdir -p "$cmods/CKernels" "$out/ckernels"
cat >"$cmods/CKernels/module.modulemap" <<MAP
module CKernels {
    umbrella header "$PWD/Sources/CKernels/include/CKernels.h"
    export *
}
MAP
common+=(-I "$cmods/CKernels")
c_rebuilt=0
for src in Sources/CKernels/*.c; do
    obj=$out/ckernels/$(basename "${src%.c}").o
    if [ ! -f "$obj" ] || [ -n "$(find Sources/CKernels -name '*.[ch]' -newer "$obj")" ]; then
        "$clang_bin" -O2 -g -fsanitize=address -I Sources/CKernels/include -c "$src" -o "$obj" \
            2>>"$out/logs/build-CKernels.log" \
            || { cat "$out/logs/build-CKernels.log" >&2; echo "fuzz: building CKernels failed" >&2; exit 2; }
        c_rebuilt=1
    fi
done

# Swift modules in dependency order; a module is rebuilt when its sources are newer than its object,
# an earlier module was rebuilt, or CKernels was.
modules=(OuroIO Quantization SafeTensors GGUF OuroTokenizer OuroModel OuroValidation)
rebuilt=$c_rebuilt
for m in "${modules[@]}"; do
    obj=$mods/$m.o
    if [ $rebuilt -eq 1 ] || [ ! -f "$obj" ] || [ -n "$(find "Sources/$m" -name '*.swift' -newer "$obj")" ]; then
        echo "fuzz: compiling $m" >&2
        swiftc "${common[@]}" -module-name "$m" -wmo -c -o "$obj" \
            -emit-module -emit-module-path "$mods/$m.swiftmodule" $(find "Sources/$m" -name "*.swift" | sort) 2>"$out/logs/build-$m.log" \
            || { cat "$out/logs/build-$m.log" >&2; echo "fuzz: building $m failed" >&2; exit 2; }
        rebuilt=1
    fi
done
for t in "${targets[@]}"; do
    src=Fuzz/Harnesses/$t.swift
    bin=$out/bin/fuzz-$t
    [ -f "$src" ] || { echo "fuzz: no harness $src (targets: ${all_targets[*]})" >&2; exit 2; }
    if [ $rebuilt -eq 1 ] || [ ! -f "$bin" ] || [ "$src" -nt "$bin" ] || [ Fuzz/Support/FuzzSupport.swift -nt "$bin" ]; then
        echo "fuzz: linking fuzz-$t" >&2
        swiftc "${common[@]}" -module-name "Fuzz_${t//-/_}" -o "$bin" Fuzz/Support/FuzzSupport.swift "$src" \
            "$mods"/*.o "$out"/ckernels/*.o -lopenblas -lzstd 2>"$out/logs/build-$t.log" \
            || { cat "$out/logs/build-$t.log" >&2; echo "fuzz: linking $t failed" >&2; exit 2; }
    fi
done
[ -n "${FUZZ_BUILD_ONLY:-}" ] && exit 0

# The Swift runtime's own crash handler fights ASan's; libFuzzer reports crashes itself.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$out/corpus/$t" "Fuzz/Corpus/$t"
    log=$out/logs/$t.log
    before=$(ls Fuzz/Crashes | wc -l)
    "$out/bin/fuzz-$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="Fuzz/Crashes/$t-" \
        "$out/corpus/$t" "Fuzz/Corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(ls "$out/corpus/$t" | wc -l)
    if [ $rc -eq 0 ]; then
        printf '%-17s ok     %5ss  %9s runs  cov %5s  corpus %5s\n' "$t" "$seconds" "${runs:-?}" "${cov:-?}" "$corpus"
    else
        failed=1
        crash=$(ls -t Fuzz/Crashes | head -1)
        kind=$(grep -m1 -oE 'ERROR: (AddressSanitizer|libFuzzer): [a-z-]+|FUZZ CONTRACT VIOLATION|Fatal error|deadly signal|out-of-memory|timeout' "$log" | head -1)
        [ "$(ls Fuzz/Crashes | wc -l)" -gt "$before" ] || crash="(none saved)"
        printf '%-17s FAILED %s: input Fuzz/Crashes/%s, log %s\n' "$t" "${kind:-exit $rc}" "$crash" "$log"
    fi
done
exit $failed
