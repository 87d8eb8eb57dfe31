#!/usr/bin/env python3
"""Writes Tests/Fixtures/safetensors/python_written.safetensors with the reference `safetensors` package, so that
our reader is tested on a file we did not write ourselves.

Needs: pip install torch safetensors
Run from the repository root: scripts/reference/make_safetensors_fixture.py
"""
import torch
from safetensors.torch import save_file

tensors = {
    "weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8.0 - 1.0,
    "double": torch.tensor([[1.5, -2.25], [1e-300, 3.0]], dtype=torch.float64),
    "ptr": torch.tensor([65536 * 3 + 7], dtype=torch.int64),
    "half": torch.tensor([0.5, -1.0, 65504.0], dtype=torch.float16),
    "empty": torch.zeros(0, 5, dtype=torch.float32),
}
save_file(tensors, "Tests/Fixtures/safetensors/python_written.safetensors",
          metadata={"arch": "resnet18", "note": "quoted \"text\" and unicode \u00e9"})
