#!/usr/bin/env bash
# Quickstart: build everything, then train densecl_r18_tiny.yaml on the embedded synthetic data with a
# coordinator and 2 local worker processes for a few minutes, ending with a checkpoint.
# Needs Swift 6 and: apt-get install libopenblas-dev libzmq3-dev libturbojpeg0-dev libpng-dev
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-runs/quickstart}"
scripts/bootstrap.sh
swift build -c release
.build/release/densecl-coordinator --config configs/densecl_r18_tiny.yaml --run-dir "$RUN_DIR" \
    --local-workers 2 --listen tcp://127.0.0.1:0 --resume none --set model.bn_groups=1 "$@"
echo
echo "Run files:"
echo "  checkpoints: $RUN_DIR/checkpoints ($(cat "$RUN_DIR/checkpoints/latest" 2>/dev/null || echo none))"
echo "  per-step losses: $RUN_DIR/metrics.csv"
echo "  worker logs: $RUN_DIR/worker-0.log, $RUN_DIR/worker-1.log"
echo "  export the backbone: .build/release/densecl export --checkpoint CHECKPOINT --out backbone.safetensors"
