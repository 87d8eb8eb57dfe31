#!/usr/bin/env python3
"""Self-test fixture for the shared recipe (recipe.py) and its Swift twin: a few recipe tensors stored whole, and a
sketched tensor with a known relative error. Needs: pip install numpy safetensors. Run from the repository root."""
import sys; sys.path.insert(0, "scripts/reference")
import numpy as np, recipe
from safetensors.numpy import save_file
r = [{"name": "w", "shape": [3, 5], "kind": "uniform", "low": -0.5, "high": 0.5},
     {"name": "w2", "shape": [3, 5], "kind": "uniform_plus", "base": "w", "low": -0.01, "high": 0.01},
     {"name": "queue", "shape": [4, 6], "kind": "unit_columns", "low": -1, "high": 1},
     {"name": "c", "shape": [2], "kind": "const", "value": 0.25}]
t = recipe.generate(r, 1234)
big = np.linspace(-1, 1, 5000).astype(np.float32)
out = {}
for k, v in t.items(): out[f"out.{k}"] = v.astype(np.float64)
out.update(recipe.expectation("big", big.astype(np.float64) * 1.001, big))
out["input.big"] = big
save_file(out, "Tests/Fixtures/safetensors/recipe_selftest.safetensors", metadata=recipe.recipe_metadata(r, 1234))
