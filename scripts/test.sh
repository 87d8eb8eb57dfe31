#!/usr/bin/env bash
# The whole test suite, as CI runs it: system dependencies, a release build (numeric tests are too slow in
# debug), then every test target. Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter Kernels]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

export DENSECL_REPO_ROOT="$PWD"
# Release mode: the numeric tests (gradient checks, PyTorch parity) run ~8x faster than in debug.
swift build -c release 2>&1 | grep -v '^\[' || true
swift build -c release >/dev/null
swift test -c release --parallel --num-workers 2 "$@"
