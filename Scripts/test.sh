#!/usr/bin/env bash
# Runs OuroKit's test suite on a fresh machine: installs missing system packages, prepares a Python
# venv with gguf-py (the independent GGUF reader the interop tests check our files against) and the
# openai client (the server tests drive `ouro serve` with it), runs `swift test`, then checks that a
# client package can depend on OuroKit by version (Scripts/check_client_package.sh; skipped when
# `swift test` arguments such as --filter are given).
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/setup.sh

# gguf-py from PyPI reads our files independently; openai drives `ouro serve`. Tests skip those checks
# only if the packages cannot be installed.
venv=.build-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import gguf, numpy, xxhash, openai" 2>/dev/null; then
  python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q gguf numpy xxhash openai >/dev/null 2>&1 \
    || echo "test.sh: could not install gguf-py/openai into $venv; interop and openai-client tests will be skipped" >&2
fi
if [ -x "$venv/bin/python" ]; then export OURO_PYTHON="$PWD/$venv/bin/python"; fi

# Debian's chromium renders `ouro validate --html`'s report in one test (ReferenceCommandTests), which
# skips only if it cannot be installed (~20 s here).
if ! command -v chromium >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "test.sh: could not install chromium; the HTML report rendering test will be skipped" >&2
fi

# The C kernels' own tests, every x86 level here and every aarch64 level under qemu (~1.5 min).
./Scripts/test-aarch64.sh

swift build --build-tests
# XCTest only: the suite has no swift-testing tests, whose empty summary would otherwise close the log.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# Only on a whole-suite run: a filtered run is for iterating on some tests.
client="client package: not checked (filtered run)"
if [ $# -eq 0 ]; then
  if out=$(./Scripts/check_client_package.sh 2>&1); then client=$(tail -1 <<<"$out"); else status=1; client=$out; fi
fi
echo "$client"
# One plain closing line: "N passed, N failed, N skipped".
summary=$(grep -E "Executed [0-9]+ tests?, with" "$log" | tail -1)
if [ -n "$summary" ]; then
  total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
  failed=$(grep -oE "[0-9]+ failures?" <<<"$summary" | grep -oE "^[0-9]+")
  skipped=$(grep -oE "[0-9]+ tests? skipped" <<<"$summary" | grep -oE "^[0-9]+" || echo 0)
  echo "$((total - failed - skipped)) passed, $failed failed, $skipped skipped"
fi
exit "$status"
