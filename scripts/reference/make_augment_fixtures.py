#!/usr/bin/env python3
"""Reference fixtures for the data pipeline's augmentations (Tests/Fixtures/data/*.json).

Each fixture holds small inputs and what torchvision / PIL produce for them, so that the Swift tests compare
against the reference implementations without Python in CI:

  crop_boxes.json  torchvision RandomResizedCrop.get_params, its random draws replaced by recorded uniforms
  resize.json      resized crops: torchvision tensor resized_crop(antialias=True) and PIL crop().resize(BILINEAR);
                   the evaluation transform Resize + CenterCrop + Normalize (tensor)
  color.json       torchvision tensor adjust_brightness/contrast/saturation/hue, rgb_to_grayscale, and PIL's
                   versions of brightness/contrast/saturation (ImageEnhance, as the official pipeline ran them)
  blur.json        PIL ImageFilter.GaussianBlur(radius=sigma) on 8-bit images, and the same box-blur cascade with
                   real weights and no 8-bit rounding (an emulation checked bit-exact against Pillow first)
  decode.json      small JPEGs and PNGs written by PIL (CMYK, progressive, grayscale, palette, gray+alpha) and
                   PIL's convert("RGB") of them
  pipeline.json    whole views without blur: resized crop, ColorJitter in a given order, grayscale, flip,
                   Normalize (tensor functionals)

Install: pip install torch torchvision pillow numpy
Run from anywhere: python3 scripts/reference/make_augment_fixtures.py [output directory]
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image, ImageEnhance, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "Tests", "Fixtures", "data")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def header(kind):
    return {
        "kind": kind,
        "generator": "scripts/reference/make_augment_fixtures.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": Image.__version__ if hasattr(Image, "__version__") else "unknown",
    }


def write(name, payload):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def test_image(width, height, seed):
    """A deterministic 8-bit RGB image with smooth gradients, hard edges, saturated and gray areas, and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 120 * np.sin(x / (3 + seed) + y / 7.0)
    g = 255 * (x / max(width - 1, 1))
    b = 255 * ((x // 5 + y // 4) % 2)
    img = np.stack([r, g, b], axis=-1)
    # A gray block and a saturated block exercise the hue and saturation corner cases.
    img[height // 4 : height // 2, width // 5 : width // 3] = 128
    img[height // 2 :, width // 2 :, 0] = 255
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def to_tensor(img_u8):
    """HWC uint8 -> CHW float in [0, 1] (ToTensor)."""
    return torch.from_numpy(img_u8).permute(2, 0, 1).float() / 255.0


def short(v):
    """The shortest decimal that reads back as the same float32 (keeps the JSON small)."""
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def hwc_list(t):
    """CHW tensor -> flat channels-last list of float32 values."""
    return [short(v) for v in t.permute(1, 2, 0).contiguous().reshape(-1).tolist()]


class RecordedUniforms:
    """Stands in for torch.empty(1).uniform_ and torch.randint, taking numbers from a list."""

    def __init__(self, values):
        self.values = list(values)
        self.used = 0

    def next(self):
        v = self.values[self.used]
        self.used += 1
        return v

    def empty(self, *size, **kwargs):
        source = self

        class Fake:
            def uniform_(self, low, high):
                low, high = float(low), float(high)
                u = source.next()
                return torch.tensor([low + (high - low) * u], dtype=torch.float32)

        return Fake()

    def randint(self, low, high, size=None, **kwargs):
        u = self.next()
        return torch.tensor([low + int(math.floor(u * (high - low)))])


def crop_boxes():
    rng = np.random.RandomState(1)
    cases = []
    sizes = [(500, 375), (375, 500), (640, 480), (224, 224), (7, 3), (3, 7), (1, 1), (2, 50), (1000, 40),
             (40, 1000), (333, 250), (4000, 3000)]
    sizes += [(int(rng.randint(1, 800)), int(rng.randint(1, 800))) for _ in range(200)]
    scales = [(0.2, 1.0), (0.08, 1.0), (0.9, 1.0)]
    real_empty, real_randint = torch.empty, torch.randint
    try:
        for n, (w, h) in enumerate(sizes):
            for scale in scales if n < 12 else [scales[n % 3]]:
                uniforms = rng.uniform(0, 1, 22).tolist()
                if n % 7 == 0:
                    # Aspect draws at the extremes, so some attempts miss and the fallback runs.
                    uniforms[1::2] = [0.0 if k % 2 else 0.999999 for k in range(11)]
                source = RecordedUniforms(uniforms)
                torch.empty, torch.randint = source.empty, source.randint
                img = torch.zeros(1, h, w)
                i, j, ch, cw = T.RandomResizedCrop.get_params(img, list(scale), [3.0 / 4.0, 4.0 / 3.0])
                torch.empty, torch.randint = real_empty, real_randint
                cases.append({"width": w, "height": h, "scale": list(scale), "uniforms": uniforms,
                              "used": source.used, "box": [int(i), int(j), int(ch), int(cw)]})
    finally:
        torch.empty, torch.randint = real_empty, real_randint
    write("crop_boxes.json", {**header("crop_boxes"), "ratio": [3.0 / 4.0, 4.0 / 3.0], "cases": cases})


def resize():
    images = [test_image(61, 47, 2), test_image(23, 37, 3)]
    cases = []
    boxes = [
        (0, (0, 0, 47, 61), (16, 16)),  # whole image, shrink
        (0, (5, 9, 30, 40), (17, 13)),  # shrink, non-square output
        (0, (10, 20, 12, 9), (24, 24)),  # enlarge
        (1, (0, 0, 37, 23), (37, 23)),  # identity size
        (0, (3, 2, 40, 11), (20, 30)),  # shrink one axis, enlarge the other
        (1, (1, 1, 35, 21), (8, 8)),  # strong shrink (support > 2)
        (1, (30, 15, 7, 8), (9, 9)),  # bottom-right corner, enlarge
    ]
    for image_id, (i, j, h, w), (oh, ow) in boxes:
        img = images[image_id]
        tensor = F.resized_crop(to_tensor(img), i, j, h, w, [oh, ow], antialias=True)
        pil = Image.fromarray(img).crop((j, i, j + w, i + h)).resize((ow, oh), Image.BILINEAR)
        cases.append({"image": image_id, "box": [i, j, h, w], "size": [oh, ow], "tensor": hwc_list(tensor),
                      "pil": np.asarray(pil).reshape(-1).tolist()})
    evaluation = []
    for image_id, resize_to, crop in [(0, 18, 16), (1, 20, 16), (0, 47, 40)]:
        t = T.Compose([T.Resize(resize_to, antialias=True), T.CenterCrop(crop), T.Normalize(MEAN, STD)])
        out = t(to_tensor(images[image_id]))
        evaluation.append({"image": image_id, "resize": resize_to, "crop": crop, "output": hwc_list(out)})
    write("resize.json", {**header("resize"),
                          "images": [{"width": im.shape[1], "height": im.shape[0], "pixels": im.reshape(-1).tolist()}
                                     for im in images],
                          "cases": cases, "evaluation": evaluation})


def color():
    img = test_image(20, 16, 4)
    x = to_tensor(img)
    pil = Image.fromarray(img)
    cases = []
    for f in [0.6, 0.83, 1.0, 1.21, 1.4]:
        cases.append({"op": "brightness", "factor": f, "tensor": hwc_list(F.adjust_brightness(x, f)),
                      "pil": np.asarray(ImageEnhance.Brightness(pil).enhance(f)).reshape(-1).tolist()})
        cases.append({"op": "contrast", "factor": f, "tensor": hwc_list(F.adjust_contrast(x, f)),
                      "pil": np.asarray(ImageEnhance.Contrast(pil).enhance(f)).reshape(-1).tolist()})
        cases.append({"op": "saturation", "factor": f, "tensor": hwc_list(F.adjust_saturation(x, f)),
                      "pil": np.asarray(ImageEnhance.Color(pil).enhance(f)).reshape(-1).tolist()})
    for h in [-0.1, -0.037, 0.0, 0.05, 0.1, 0.5, -0.5]:
        cases.append({"op": "hue", "factor": h, "tensor": hwc_list(F.adjust_hue(x, h))})
    cases.append({"op": "grayscale", "factor": 0, "tensor": hwc_list(F.rgb_to_grayscale(x, 3))})
    # Values produced by a previous op (not multiples of 1/255) and pure colours / grays for hue.
    odd = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(5))
    odd[:, 0, :3] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]).T
    odd[:, 1, :3] = 0.5
    for h in [0.09, -0.06]:
        cases.append({"op": "hue", "factor": h, "input": "odd", "tensor": hwc_list(F.adjust_hue(odd, h))})
    for f in [0.7, 1.3]:
        cases.append({"op": "contrast", "factor": f, "input": "odd", "tensor": hwc_list(F.adjust_contrast(odd, f))})
    write("color.json", {**header("color"), "width": 20, "height": 16, "pixels": img.reshape(-1).tolist(),
                         "odd": {"width": 11, "height": 9, "values": hwc_list(odd)}, "cases": cases})


def pil_box_radius(sigma, passes=3):
    """Pillow's _gaussian_blur_radius (BoxBlur.c), in float32 as Pillow computes it."""
    s2 = np.float32(sigma) * np.float32(sigma) / np.float32(passes)
    length = np.float32(math.sqrt(12.0 * float(s2) + 1.0))
    l = np.float32(math.floor((float(length) - 1.0) / 2.0))
    a = (2 * l + 1) * (l * (l + 1) - 3 * s2)
    a /= 6 * (s2 - (l + 1) * (l + 1))
    return np.float32(l + a)


def box_blur_line(line, r, exact):
    """One extended-box pass over a line, edges clamped. exact=False: Pillow's 24-bit fixed point, rounded to
    8 bits; exact=True: the same filter with real weights and no rounding."""
    n, ri = len(line), int(r)
    idx = lambda k: min(max(k, 0), n - 1)
    out = np.zeros(n, dtype=np.float64)
    if exact:
        center, edge = 1.0 / (2 * float(r) + 1), (float(r) - ri) / (2 * float(r) + 1)
    else:
        ww = int(np.uint32((1 << 24) / (r * 2 + 1)))
        fw = ((1 << 24) - (ri * 2 + 1) * ww) // 2
    for x in range(n):
        window = sum(line[idx(x + k)] for k in range(-ri, ri + 1))
        far = line[idx(x - ri - 1)] + line[idx(x + ri + 1)]
        if exact:
            out[x] = window * center + far * edge
        else:
            out[x] = (int(window) * ww + int(far) * fw + (1 << 23)) >> 24
    return out


def box_gaussian(img, sigma, exact):
    """Pillow's GaussianBlur: three horizontal passes, then three vertical ones."""
    r = pil_box_radius(sigma)
    x = img.astype(np.float64)
    for axis in (1, 0):
        for _ in range(3):
            x = np.apply_along_axis(box_blur_line, axis, x, r, exact)
    return x


def blur():
    images = [test_image(29, 23, 6), test_image(5, 4, 7)]
    cases = []
    for image_id, sigma in [(0, 0.1), (0, 0.5), (0, 1.0), (0, 1.37), (0, 2.0), (1, 2.0), (1, 0.8)]:
        img = images[image_id]
        pil = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))
        # The emulation is checked bit for bit against Pillow before its rounding-free twin is written out.
        assert np.array_equal(box_gaussian(img, sigma, exact=False).astype(np.uint8), pil), sigma
        exact = box_gaussian(img / 255.0, sigma, exact=True)
        cases.append({"image": image_id, "sigma": sigma, "pil": pil.reshape(-1).tolist(),
                      "float": [short(v) for v in exact.reshape(-1)]})
    write("blur.json", {**header("blur"),
                        "images": [{"width": im.shape[1], "height": im.shape[0], "pixels": im.reshape(-1).tolist()}
                                   for im in images],
                        "cases": cases})


def decode():
    """Small files written by PIL, and PIL's Image.open(f).convert("RGB") of them: how the official pipeline
    decoded images."""
    import io

    rgb = test_image(24, 16, 9)
    files = []

    def add(name, image, **save):
        buffer = io.BytesIO()
        image.save(buffer, **save)
        data = buffer.getvalue()
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        files.append({"name": name, "bytes": list(data), "width": decoded.shape[1], "height": decoded.shape[0],
                      "rgb": decoded.reshape(-1).tolist()})

    base = Image.fromarray(rgb)
    add("baseline 4:2:0", base, format="JPEG", quality=90)
    add("progressive", base, format="JPEG", quality=90, progressive=True)
    add("grayscale", base.convert("L"), format="JPEG", quality=90)
    add("cmyk (Adobe, inverted)", base.convert("CMYK"), format="JPEG", quality=95)
    add("palette with transparency", base.convert("P", palette=Image.ADAPTIVE, colors=12), format="PNG",
        transparency=3)
    add("gray + alpha", base.convert("LA"), format="PNG")
    write("decode.json", {**header("decode"), "files": files})


def pipeline():
    img = test_image(53, 41, 8)
    x = to_tensor(img)
    names = ["brightness", "contrast", "saturation", "hue"]
    fns = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    cases = []
    settings = [
        ((4, 6, 30, 37), [2, 0, 3, 1], (1.31, 0.72, 1.18, 0.061), False, True),
        ((0, 0, 41, 53), [3, 1, 0, 2], (0.64, 1.37, 0.61, -0.093), True, False),
        ((11, 3, 20, 15), None, None, False, True),
        ((2, 30, 38, 22), [1, 3, 2, 0], (1.02, 0.95, 1.4, 0.1), False, False),
    ]
    size = 19
    for (i, j, h, w), order, factors, gray, flip in settings:
        y = F.resized_crop(x, i, j, h, w, [size, size], antialias=True)
        if order is not None:
            for op in order:
                y = fns[op](y, factors[op])
        if gray:
            y = F.rgb_to_grayscale(y, 3)
        if flip:
            y = F.hflip(y)
        y = F.normalize(y, MEAN, STD)
        cases.append({"box": [i, j, h, w], "order": order, "factors": dict(zip(names, factors)) if factors else None,
                      "grayscale": gray, "flip": flip, "output": hwc_list(y)})
    write("pipeline.json", {**header("pipeline"), "width": 53, "height": 41, "size": size,
                            "pixels": img.reshape(-1).tolist(), "cases": cases})


if __name__ == "__main__":
    torch.set_num_threads(1)
    crop_boxes()
    resize()
    color()
    blur()
    pipeline()
    decode()
