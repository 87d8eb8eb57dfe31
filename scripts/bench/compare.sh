#!/usr/bin/env bash
# Runs `densecl bench step` and scripts/bench/torch_step.py in alternation on the same shapes and thread count, then
# prints medians and the ratio. Alternating runs share whatever the machine is doing at the time, so the ratio is
# fairer than two separate sessions.
#
# Usage: scripts/bench/compare.sh [--arch resnet18] [--image-size 96] [--batch 32] [--mode densecl|mocov2]
#                                 [--threads 2] [--steps 10] [--rounds 3]
# Needs: a release build (swift build -c release) and python3 with torch and torchvision (PYTHON overrides python3).
set -euo pipefail
cd "$(dirname "$0")/../.."

arch=resnet18 size=96 batch=32 mode=densecl threads=2 steps=10 rounds=3
while (($#)); do
    case "$1" in
        --arch) arch=$2; shift 2 ;;
        --image-size) size=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --mode) mode=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
python=${PYTHON:-python3}
bin="$(swift build -c release --show-bin-path)/densecl"
[ -x "$bin" ] || { echo "compare.sh: build first: swift build -c release" >&2; exit 1; }
common=(--arch "$arch" --image-size "$size" --batch "$batch" --mode "$mode" --threads "$threads" --steps "$steps" --json)

ours=() theirs=() ours_rss=() theirs_rss=()
for ((r = 1; r <= rounds; r++)); do
    o=$("$bin" bench step "${common[@]}")
    t=$("$python" scripts/bench/torch_step.py "${common[@]}")
    ours+=("$(echo "$o" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["img_per_s"])')")
    theirs+=("$(echo "$t" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["img_per_s"])')")
    ours_rss+=("$(echo "$o" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mb"])')")
    theirs_rss+=("$(echo "$t" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mb"])')")
    echo "round $r: ours ${ours[-1]} img/s, pytorch ${theirs[-1]} img/s"
done
"$python" - "$arch" "$size" "$batch" "$mode" "$threads" "${ours[*]}" "${theirs[*]}" "${ours_rss[*]}" "${theirs_rss[*]}" <<'PY'
import statistics, sys
arch, size, batch, mode, threads = sys.argv[1:6]
ours, theirs, orss, trss = ([float(x) for x in s.split()] for s in sys.argv[6:10])
o, t = statistics.median(ours), statistics.median(theirs)
print(f"{arch} {size}px batch {batch} {mode}, {threads} threads, median of {len(ours)} alternating rounds:")
print(f"  densecl (Swift)  {o:8.2f} img/s   peak RSS {statistics.median(orss):7.0f} MB")
print(f"  PyTorch          {t:8.2f} img/s   peak RSS {statistics.median(trss):7.0f} MB")
print(f"  ratio            {o / t:8.2f}x")
PY
