#!/usr/bin/env bash
# The whole test suite, as CI runs it: system dependencies, a release build (numeric tests are too slow in debug,
# and the integration tests start the release binaries), then every test target.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter DenseCLKernelsTests]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

echo "test.sh: building (release)..."
swift build -c release
echo "test.sh: running the tests (release)..."
swift test -c release "$@"
