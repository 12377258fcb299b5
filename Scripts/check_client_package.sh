#!/usr/bin/env bash
# Checks that OuroKit works as a versioned dependency of another package, the way users add it:
# copies this working tree into a temporary git repository tagged 1.0.0, writes a small client
# package that depends on it with `.package(url: "file://…", from: "1.0.0")` (SwiftPM treats a
# file:// URL as a remote: it clones, resolves the tag, and refuses unsafeFlags as it would from
# GitHub), builds the client and runs it. The client converts the ouro-tiny-a fixture checkpoint to
# an f32 GGUF, loads it, runs one forward pass over the fixture's first prompt and compares the last
# loop step's logits with the Hugging Face reference stored next to the fixture.
#
#   Scripts/check_client_package.sh              debug build of the client
#   CLIENT_CONFIGURATION=release Scripts/check_client_package.sh
#
# Prints "client package: ok (…)" and exits 0, or names the failing step and exits 1.
# Nothing is tagged or written in this repository; the temporary folder is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
configuration=${CLIENT_CONFIGURATION:-debug}
work=$(mktemp -d /tmp/ourokit-client.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "client package: FAILED: $*" >&2; exit 1; }

# 1. The library as a tagged repository: tracked and new (not ignored) files of this working tree.
mkdir -p "$work/OuroKit"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$work/OuroKit"
(
    cd "$work/OuroKit"
    git init -q
    git add -A
    git -c user.name=client-check -c user.email=client-check@localhost commit -q -m "OuroKit snapshot"
    git tag 1.0.0
) || fail "could not make the temporary repository"

# 2. The client: depends on the library product only.
mkdir -p "$work/Client/Sources/Client"
cat >"$work/Client/Package.swift" <<MANIFEST
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Client",
    platforms: [.macOS(.v13)],
    dependencies: [.package(url: "file://$work/OuroKit", from: "1.0.0")],
    targets: [
        .executableTarget(name: "Client", dependencies: [.product(name: "OuroKit", package: "OuroKit")]),
    ]
)
MANIFEST
cat >"$work/Client/Sources/Client/main.swift" <<'SWIFT'
import OuroConversion
import OuroModel
import SafeTensors

// Arguments: a fixture checkpoint folder (with reference.safetensors) and a GGUF path to write.
let arguments = CommandLine.arguments
let folder = arguments[1], gguf = arguments[2]
_ = try Converter(checkpoint: folder, type: .f32).convert(to: gguf)
let weights = try OuroWeights.load(gguf: gguf)
let reference = try SafeTensorsFile(path: folder + "/reference.safetensors")
let tokens = try reference.int64s("p0.input_ids").map { Int($0) }
let outputs = try OuroRunner(weights: weights).forward(tokens: tokens)
let ours = outputs.logits(.lastStep)                       // [T * V]
let theirs = Array(try reference.floats("p0.step_logits").suffix(ours.count))   // last of [S, T, V]
guard ours.count == theirs.count, ours.count == tokens.count * weights.config.vocabSize else {
    fatalError("logits: \(ours.count) values, reference \(theirs.count)")
}
let maxDiff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
print("steps \(outputs.steps) tokens \(tokens.count) vocab \(weights.config.vocabSize) logit[0] \(ours[0]) max_abs_diff \(maxDiff)")
SWIFT

# 3. Resolve, build, run.
cd "$work/Client"
log=$work/build.log
swift build -c "$configuration" >"$log" 2>&1 || { tail -20 "$log" >&2; fail "swift build -c $configuration of the client"; }
grep -q "unsafeFlags" "$log" && { cat "$log" >&2; fail "unsafeFlags reported"; }
output=$(.build/"$configuration"/Client "$repo/Tests/Fixtures/ouro-tiny-a" "$work/tiny-a.gguf") \
    || fail "the client exited with an error"
# Float32 against the reference's float32: the same math in another order, so 1e-3 on logits of
# standard deviation ~2 (a wrong layer, norm or loop step moves them by far more).
diff=$(sed -nE 's/.*max_abs_diff ([0-9.e+-]+|nan|inf).*/\1/p' <<<"$output")
[ -n "$diff" ] || fail "unexpected output: $output"
python3 -c "import sys; sys.exit(0 if float('$diff') < 1e-3 else 1)" || fail "logits differ from the reference: $output"
echo "client package: ok ($configuration; $output)"
