#!/usr/bin/env bash
# Runs OuroKit's test suite on a fresh machine: installs missing system packages, prepares a Python
# venv with gguf-py (the independent GGUF reader the interop tests check our files against), runs
# `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/setup.sh

# gguf-py from PyPI reads our files independently; tests skip that check only if it cannot be installed.
venv=.build-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import gguf, numpy, xxhash" 2>/dev/null; then
  python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q gguf numpy xxhash >/dev/null 2>&1 \
    || echo "test.sh: could not install gguf-py into $venv; interop tests will be skipped" >&2
fi
if [ -x "$venv/bin/python" ]; then export OURO_PYTHON="$PWD/$venv/bin/python"; fi

swift build --build-tests
swift test --skip-build "$@"
