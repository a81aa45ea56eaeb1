"""How a product's package looks to the rendered shelf cameras, derived from its SKU id.

Each SKU gets a look of its own, drawn deterministically from a digest of the
SKU string (not Python's salted ``hash``): a body colour, an accent colour, a
pattern (band, stripes, diagonals, checks, a disc or a split), a label panel
with a few bars of "print", and a cap strip. Two SKUs of the same weight (still
and sparkling water) therefore look clearly different, as they do in a store.

``package_image`` is the one drawing: the shelf renderer pastes it onto the
shelves and into shoppers' hands, and a SKU classifier can use it as its
reference gallery. ``package_size_m`` gives a package's front size from the
catalog weight, so heavy items stand taller on the shelf.

>>> img = package_image("SKU001", 20, 48)
>>> img.shape, img.dtype.name
((48, 20, 3), 'uint8')
>>> bool((img == package_image("SKU001", 20, 48)).all())
True
>>> bool((img != package_image("SKU002", 20, 48)).any())
True
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from iot.store import CatalogItem

__all__ = ["PackageLook", "package_image", "package_look", "package_size_m"]

PATTERNS = ("band", "stripes", "diagonal", "checks", "disc", "split")
_CANVAS_PX = 96  # a look is drawn at this height (and its aspect's width), then resized
_LABEL_BGR = ((245, 245, 245), (200, 235, 250), (30, 30, 30), (60, 215, 245))


@dataclass(frozen=True)
class PackageLook:
    """What a SKU's package looks like; colours are BGR."""

    body_bgr: tuple[int, int, int]
    accent_bgr: tuple[int, int, int]
    cap_bgr: tuple[int, int, int]
    label_bgr: tuple[int, int, int]
    pattern: str
    label_top: float  # label panel position and size as fractions of the front
    label_height: float
    label_width: float
    print_bars: tuple[float, ...]  # lengths (fractions of the label) of the printed lines


def _hsv_bgr(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    px = np.array([[[round(hue) % 180, round(sat), round(val)]]], np.uint8)
    b, g, r = cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


@lru_cache(maxsize=4096)
def package_look(sku: str) -> PackageLook:
    """The SKU's look, from a SHA-256 of its id (stable across runs and machines)."""
    seed = int.from_bytes(hashlib.sha256(sku.encode("utf-8")).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    hue = float(rng.uniform(0, 180))
    val = float(rng.uniform(110, 235))
    body = _hsv_bgr(hue, rng.uniform(130, 255), val)
    # the accent sits well away in hue and brightness, so the pattern always shows
    accent_val = val - 90 if val > 170 else min(val + 90, 250)
    accent = _hsv_bgr(hue + rng.uniform(45, 135), rng.uniform(90, 255), accent_val)
    caps = (accent, (25, 25, 25), (235, 235, 235), body)
    return PackageLook(
        body_bgr=body,
        accent_bgr=accent,
        cap_bgr=caps[int(rng.integers(len(caps)))],
        label_bgr=_LABEL_BGR[int(rng.integers(len(_LABEL_BGR)))],
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        label_top=float(rng.uniform(0.2, 0.6)),
        label_height=float(rng.uniform(0.16, 0.28)),
        label_width=float(rng.uniform(0.55, 0.85)),
        print_bars=tuple(float(x) for x in rng.uniform(0.3, 0.9, size=int(rng.integers(2, 4)))),
    )


def package_size_m(item: CatalogItem) -> tuple[float, float]:
    """Front (width, height) of one unit in metres: grows with weight, aspect from the SKU."""
    scale = (item.unit_weight_g / 400.0) ** (1.0 / 3.0)
    digest = hashlib.sha256(item.sku.encode("utf-8")).digest()
    aspect = 1.5 + 1.5 * digest[8] / 255.0  # height / width, 1.5 .. 3.0
    area = (0.017 * scale) ** 2 * 40.0  # front area, m^2 (a 400 g unit is about 0.1 x 0.2 m)
    width = math.sqrt(area / aspect)
    return float(np.clip(width, 0.04, 0.16)), float(np.clip(width * aspect, 0.07, 0.3))


def _pattern(canvas: np.ndarray, look: PackageLook) -> None:
    h, w = canvas.shape[:2]
    acc = look.accent_bgr
    if look.pattern == "band":
        cv2.rectangle(canvas, (0, round(h * 0.62)), (w, round(h * 0.8)), acc, -1)
    elif look.pattern == "stripes":
        step = max(w // 4, 2)
        for x in range(step // 2, w, step):
            cv2.rectangle(canvas, (x, 0), (x + step // 2 - 1, h), acc, -1)
    elif look.pattern == "diagonal":
        step = max(w // 2, 4)
        for k in range(-h, w + h, step):
            cv2.line(canvas, (k, h), (k + h, 0), acc, max(step // 3, 1))
    elif look.pattern == "checks":
        cell = max(w // 4, 2)
        for y in range(0, h, cell):
            for x in range((y // cell) % 2 * cell, w, 2 * cell):
                cv2.rectangle(canvas, (x, y), (x + cell - 1, y + cell - 1), acc, -1)
    elif look.pattern == "disc":
        cv2.circle(canvas, (w // 2, round(h * 0.72)), round(w * 0.38), acc, -1)
    else:  # split: the lower half in the accent colour
        cv2.rectangle(canvas, (0, h // 2), (w, h), acc, -1)


def _label(canvas: np.ndarray, look: PackageLook) -> None:
    h, w = canvas.shape[:2]
    lw, lh = round(w * look.label_width), round(h * look.label_height)
    x0, y0 = (w - lw) // 2, round(h * look.label_top)
    cv2.rectangle(canvas, (x0, y0), (x0 + lw, y0 + lh), look.label_bgr, -1)
    ink = (20, 20, 20) if sum(look.label_bgr) > 300 else (235, 235, 235)
    rows = len(look.print_bars)
    for i, frac in enumerate(look.print_bars):
        y = y0 + round(lh * (i + 1) / (rows + 1))
        cv2.line(canvas, (x0 + 3, y), (x0 + 3 + round((lw - 6) * frac), y), ink, 2)


def package_image(sku: str, width_px: int, height_px: int) -> np.ndarray:
    """The front of one ``sku`` package, (height_px, width_px, 3) BGR uint8.

    Drawn at a fixed canvas height (so the look does not change with size),
    then resized with area averaging.
    """
    if width_px < 1 or height_px < 1:
        raise ValueError(
            f"package_image needs a size of at least 1 x 1 px, got {width_px} x {height_px}"
        )
    look = package_look(sku)
    ch = _CANVAS_PX
    cw = max(round(ch * width_px / height_px), 8)
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = look.body_bgr
    _pattern(canvas, look)
    _label(canvas, look)
    cv2.rectangle(canvas, (0, 0), (cw, round(ch * 0.08)), look.cap_bgr, -1)
    # a darker rim: the package's edges catch less light than its face
    cv2.rectangle(canvas, (0, 0), (cw - 1, ch - 1), (0, 0, 0), max(cw // 24, 1))
    canvas = (canvas.astype(np.float32) * _shading(cw)[None, :, None]).astype(np.uint8)
    return cv2.resize(canvas, (width_px, height_px), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=64)
def _shading(width: int) -> np.ndarray:
    """A soft horizontal falloff: packages look rounded rather than flat."""
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    return np.asarray(1.0 - 0.18 * x * x, np.float32)
