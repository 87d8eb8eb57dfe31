#!/usr/bin/env bash
# Set-up and a first run: installs the system libraries, builds in release mode, then runs the main job on the
# embedded default (no data download).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
echo "quickstart: building (release)..."
swift build -c release --product densecl
bin="$(swift build -c release --show-bin-path)"

echo "quickstart: kernel benchmark (conv at ResNet-50 shapes vs raw sgemm)"
"$bin/densecl" bench kernels --quick
