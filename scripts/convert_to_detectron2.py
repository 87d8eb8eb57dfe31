#!/usr/bin/env python3
"""Converts a backbone exported by `densecl export` (torchvision names, safetensors) into detectron2's pickle format.

Key mapping (as the official DenseCL/MoCo detectron2 converter does): names without "layer" get the prefix
"stem."; layerN -> res(N+1); bnK -> convK.norm; downsample.0 -> shortcut; downsample.1 -> shortcut.norm.
num_batches_tracked entries are dropped (detectron2 has no such buffer). Use the result with detectron2 configs
for RGB, pytorch-style ResNets (PIXEL_MEAN [123.675, 116.28, 103.53], PIXEL_STD [58.395, 57.12, 57.375],
STRIDE_IN_1X1 False), e.g. the MoCo/DenseCL "_moco" detection configs.

Usage: scripts/convert_to_detectron2.py backbone.safetensors model.pkl
Needs: pip install numpy safetensors
"""
import pickle
import re
import sys

from safetensors.numpy import load_file


def detectron2_name(name: str) -> str:
    if "layer" not in name:
        name = "stem." + name
    name = re.sub(r"layer(\d)", lambda m: f"res{int(m.group(1)) + 1}", name)
    name = re.sub(r"bn(\d)", r"conv\1.norm", name)
    name = name.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
    return name


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    source, target = sys.argv[1], sys.argv[2]
    state = load_file(source)
    model = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked") or name.startswith("fc."):
            continue
        model[detectron2_name(name)] = value
    with open(target, "wb") as f:
        pickle.dump({"model": model, "__author__": "DenseCL", "matching_heuristics": True}, f)
    print(f"wrote {len(model)} tensors to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
