"""Shared reference recipe: reproducible inputs and compact expectations for PyTorch fixtures.

Whole-model fixtures (a ResNet-18 state is 45 MB) are too large to commit. Instead:

* Inputs are *generated* on both sides from a recipe: a list of entries stored as JSON in the fixture's
  `__metadata__["recipe"]`, each filled from a Philox4x32-10 stream that is bit-identical to DenseCLCore's
  `CounterRNG` (key = recipe seed, counter = [block, domain<<24 | sub, epoch, index], domain 255 "test",
  index = FNV-1a-32 of the tensor name). Swift reads the same JSON (DenseCLTestSupport/ReferenceRecipe.swift).
* Outputs are stored whole when small (<= SMALL elements), and as a *sketch* otherwise: 64 random +-1
  projections whose signs come from another Philox stream. ||S(a) - S(b)|| / 8 estimates ||a - b|| with a
  relative spread of about 9 %, so a per-tensor relative-L2 tolerance can be checked from 1 KB.

Entry kinds (all values float32 unless noted):
  uniform       {"name","shape","kind":"uniform","low","high"}:      low + (high-low)*u, u = (w >> 8) * 2**-24,
                computed in float64 and rounded once to float32.
  uniform_plus  {..., "kind":"uniform_plus","base":NAME,"low","high"}: float32(float64(base) + low + (high-low)*u).
  unit_columns  {..., "kind":"uniform" fields + "kind":"unit_columns"}: a [D, K] uniform tensor whose columns are
                then divided by their float64 L2 norm (the queues' initial state).
  const         {"name","shape","kind":"const","value"}.
Integer tensors (queue pointers) and anything else are stored in the fixture as `input.<name>`.

Needs: pip install numpy torch safetensors
"""
import json

import numpy as np

MASK = np.uint64(0xFFFFFFFF)
DOMAIN_TEST = 255
SKETCH_SEED = 0x5EED5EED
SKETCH_DIM = 64
SMALL = 4096


def fnv1a32(name: str) -> int:
    h = 0x811C9DC5
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Vectorised Philox4x32-10 over uint64 arrays holding 32-bit values."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & MASK for c in (c0, c1, c2, c3))
    k0, k1 = np.uint64(k0) & MASK, np.uint64(k1) & MASK
    for r in range(10):
        if r > 0:
            k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
            k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def stream_words(seed: int, index: int, count: int, domain: int = DOMAIN_TEST, epoch: int = 0, sub: int = 0):
    """The first `count` 32-bit words of CounterRNG(seed, domain, epoch, index, sub), as uint64."""
    blocks = (count + 3) // 4
    c0 = np.arange(blocks, dtype=np.uint64)
    c1 = np.full(blocks, (domain << 24) | sub, dtype=np.uint64)
    c2 = np.full(blocks, epoch & 0xFFFFFFFF, dtype=np.uint64)
    c3 = np.full(blocks, index & 0xFFFFFFFF, dtype=np.uint64)
    out = philox4x32_10(c0, c1, c2, c3, seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)
    return np.stack(out, axis=1).reshape(-1)[:count]


def _uniform(seed, entry):
    n = int(np.prod(entry["shape"], dtype=np.int64))
    u = (stream_words(seed, fnv1a32(entry["name"]), n) >> np.uint64(8)).astype(np.float64) * 2.0**-24
    return entry["low"] + (entry["high"] - entry["low"]) * u  # float64


def generate(recipe, seed):
    """Fills every recipe entry; returns {name: float32 ndarray of entry["shape"]}."""
    out = {}
    for e in recipe:
        shape = tuple(e["shape"])
        kind = e["kind"]
        if kind == "uniform":
            v = _uniform(seed, e).astype(np.float32)
        elif kind == "uniform_plus":
            v = (out[e["base"]].reshape(-1).astype(np.float64) + _uniform(seed, e)).astype(np.float32)
        elif kind == "unit_columns":
            x = _uniform(seed, e).astype(np.float32).astype(np.float64).reshape(shape)
            v = (x / np.sqrt((x * x).sum(axis=0, keepdims=True))).astype(np.float32)
        elif kind == "const":
            v = np.full(shape, e["value"], dtype=np.float32)
        else:
            raise ValueError(f"unknown recipe kind {kind}")
        out[e["name"]] = v.reshape(shape)
    return out


def sketch(values) -> np.ndarray:
    """64 random +-1 projections of a flattened tensor (float64). Element i takes its 64 signs from words 2i and
    2i+1 of CounterRNG(SKETCH_SEED, domain 255, sub 1): bit j of (w[2i] | w[2i+1] << 32) set means -1."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    acc = np.zeros(SKETCH_DIM)
    chunk = 1 << 18
    bits = np.arange(32, dtype=np.uint64)
    for start in range(0, x.size, chunk):
        stop = min(x.size, start + chunk)
        # words 2*start .. 2*stop of the sign stream; the stream is a pure function of the word index.
        first_block, last_block = (2 * start) // 4, (2 * stop + 3) // 4
        c0 = np.arange(first_block, last_block, dtype=np.uint64)
        ones = np.ones_like(c0)
        w = np.stack(philox4x32_10(c0, ones * ((DOMAIN_TEST << 24) | 1), ones * 0, ones * 0,
                                   SKETCH_SEED & 0xFFFFFFFF, SKETCH_SEED >> 32), axis=1).reshape(-1)
        offset = 2 * start - 4 * first_block
        w = w[offset:offset + 2 * (stop - start)].reshape(-1, 2)
        lo = ((w[:, :1] >> bits) & np.uint64(1)).astype(np.float64)
        hi = ((w[:, 1:] >> bits) & np.uint64(1)).astype(np.float64)
        signs = 1.0 - 2.0 * np.concatenate([lo, hi], axis=1)  # [chunk, 64]
        acc += x[start:stop] @ signs
    return acc


def expectation(name, value64, value32=None, small=SMALL):
    """Tensors describing an expected output: whole when small, else sketch + norm + head.

    value64 is the float64 run of the reference; value32, when given, the float32 run, whose exact relative L2
    distance to value64 is stored as `err32.<name>` so that tests can calibrate tolerances against it. `small`
    replaces SMALL for fixtures with many outputs.
    """
    v64 = np.asarray(value64, dtype=np.float64)
    out = {}
    if v64.size <= small:
        out[f"out.{name}"] = v64
    else:
        out[f"sketch.{name}"] = sketch(v64)
        out[f"norm.{name}"] = np.array([np.linalg.norm(v64)])
        out[f"head.{name}"] = v64.reshape(-1)[:16]
    if value32 is not None:
        v32 = np.asarray(value32, dtype=np.float64)
        err = np.linalg.norm(v32 - v64) / max(np.linalg.norm(v64), 1e-30)
        out[f"err32.{name}"] = np.array([err])
    return out


def recipe_metadata(recipe, seed):
    return {"recipe": json.dumps(recipe), "recipe_seed": str(seed)}
