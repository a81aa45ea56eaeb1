"""What a person looks like from above: a small colour descriptor for re-identification.

Two shoppers who pass close, or stand side by side at a shelf, can swap
floor tracks when positions alone decide. Their clothes usually differ: a
hue/saturation histogram of the middle of each person box (the shoulders and
back, seen from the ceiling; the border is floor) tells them apart cheaply.
Store tracks keep a running mean of it (``vision.floor``), and association
pays for a colour mismatch as it pays for distance.

>>> red = np.zeros((40, 40, 3), np.uint8); red[..., 2] = 200
>>> blue = np.zeros((40, 40, 3), np.uint8); blue[..., 0] = 200
>>> a, b = describe_person(red, (0, 0, 40, 40)), describe_person(blue, (0, 0, 40, 40))
>>> round(look_distance(a, a), 3), look_distance(a, b) > 0.5
(0.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["LOOK_BINS", "describe_person", "look_distance"]

HUE_BINS, SAT_BINS, VAL_BINS = 12, 2, 2
LOOK_BINS = HUE_BINS * SAT_BINS + VAL_BINS
CORE_SHARE = 0.5  # the middle half of the box each way: body, not floor
_MIN_SAT = 50


def describe_person(frame: np.ndarray, xyxy: Sequence[float] | np.ndarray) -> np.ndarray | None:
    """Unit-length colour histogram of the box's core, None if the box is too small."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) * CORE_SHARE / 2, (y1 - y0) * CORE_SHARE / 2
    c0, c1 = int(max(0, cx - hw)), int(min(w, cx + hw))
    r0, r1 = int(max(0, cy - hh)), int(min(h, cy + hh))
    if c1 - c0 < 3 or r1 - r0 < 3:
        return None
    hsv = cv2.cvtColor(frame[r0:r1, c0:c1], cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    coloured = hsv[:, 1] >= _MIN_SAT
    hist = np.zeros(LOOK_BINS, np.float32)
    if coloured.any():
        hue = np.minimum(hsv[coloured, 0] * HUE_BINS // 180, HUE_BINS - 1)
        sat = np.minimum((hsv[coloured, 1] - _MIN_SAT) * SAT_BINS // (256 - _MIN_SAT), SAT_BINS - 1)
        np.add.at(hist, hue * SAT_BINS + sat, 1.0)
    grey = hsv[~coloured, 2]
    if grey.size:  # black/white/grey clothes: by brightness
        np.add.at(hist, HUE_BINS * SAT_BINS + np.minimum(grey * VAL_BINS // 256, VAL_BINS - 1), 1.0)
    norm = float(np.linalg.norm(hist))
    return hist / norm if norm > 0 else None


def look_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """1 - cosine similarity of two looks (0: alike, 1: nothing shared); 0 if unknown.

    Histograms never point apart; learned looks (``vision.reid``) can, and are
    capped at 1 so that a look costs at most its weight in the fusion.
    """
    if a is None or b is None:
        return 0.0
    return float(min(1.0, max(0.0, 1.0 - float(np.dot(a, b)))))
