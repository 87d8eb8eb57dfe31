#!/usr/bin/env bash
# Runs `densecl bench step` and scripts/bench/torch_step.py in alternation on the same shapes and thread count, then
# prints medians and the ratio. Alternating runs share whatever the machine is doing at the time, so the ratio is
# fairer than two separate sessions.
#
# Usage: scripts/bench/compare.sh [--arch resnet18] [--image-size 96] [--batch 32] [--mode densecl|mocov2]
#                                 [--threads 2] [--steps 10] [--rounds 3] [--out runs.jsonl]
# --out keeps every run's JSON line (both implementations, in run order).
# Needs: a release build (swift build -c release) and python3 with torch and torchvision (PYTHON overrides python3).
# On AMD Zen 4, OPENBLAS_CORETYPE=Haswell makes OpenBLAS (ours only; PyTorch uses MKL/oneDNN) a few % faster; see
# docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

arch=resnet18 size=96 batch=32 mode=densecl threads=2 steps=10 rounds=3 out=
while (($#)); do
    case "$1" in
        --arch) arch=$2; shift 2 ;;
        --image-size) size=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
python=${PYTHON:-python3}
bin="$(swift build -c release --show-bin-path)/densecl"
[ -x "$bin" ] || { echo "compare.sh: build first: swift build -c release" >&2; exit 1; }
common=(--arch "$arch" --image-size "$size" --batch "$batch" --mode "$mode" --threads "$threads" --steps "$steps" --json)

# Each round appends one JSON line per implementation; the summary takes medians over the rounds.
if [ -n "$out" ]; then
    results=$out
    : >"$results"
else
    results=$(mktemp)
    trap 'rm -f "$results"' EXIT
fi
for ((r = 1; r <= rounds; r++)); do
    "$bin" bench step "${common[@]}" >>"$results"
    "$python" scripts/bench/torch_step.py "${common[@]}" >>"$results"
    echo "round $r of $rounds done (load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a))"
done
"$python" - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ours = [r for r in runs if r["impl"] != "pytorch"]
theirs = [r for r in runs if r["impl"] == "pytorch"]
def med(rs, key):
    return statistics.median(r[key] for r in rs)
o = ours[0]
print(f"{o['arch']} {o['image_size']}px batch {o['batch']} {o['mode']}, {o['threads']} threads, "
      f"median of {len(ours)} alternating rounds")
print(f"{'':18s}{'img/s':>9s}{'step ms':>9s}{'CPU ms':>9s}{'GFLOP/step':>12s}{'GFLOP/s':>9s}{'peak RSS MB':>13s}")
for name, rs in (("densecl (Swift)", ours), ("PyTorch", theirs)):
    print(f"{name:18s}{med(rs, 'img_per_s'):9.2f}{med(rs, 'step_s') * 1e3:9.0f}{med(rs, 'cpu_s') * 1e3:9.0f}"
          f"{med(rs, 'step_gflop'):12.2f}{med(rs, 'gflops'):9.1f}{med(rs, 'peak_rss_mb'):13.0f}")
ratio = med(ours, "img_per_s") / med(theirs, "img_per_s")
cpu_ratio = med(theirs, "cpu_s") / med(ours, "cpu_s")
print(f"ratio (Swift / PyTorch): {ratio:.2f}x img/s, {cpu_ratio:.2f}x by CPU time per step")
sgemm = [r["sgemm_gflops"] for r in ours if r.get("sgemm_gflops", 0) > 0]
if sgemm:
    best = max(sgemm)
    print(f"sgemm limit {best:.0f} GFLOP/s: Swift {med(ours, 'gflops') / best:.0%}, PyTorch {med(theirs, 'gflops') / best:.0%}")
PY
