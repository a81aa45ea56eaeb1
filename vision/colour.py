"""Colour normalisation: the auto white balance and auto exposure of a camera's ISP.

The twin's lighting drifts (day, evening, a cool cast) and so does a real
store's. A detector that learned one lighting's colours fails in another
(issue 3: held-out mAP50 0.48 for a model trained on day frames). Most IP
cameras balance white and exposure in hardware; where they do not, or where
they do it differently per camera, this does it in software so that every
camera hands the detector frames of the same colour statistics. The same
function prepares training images (``smartstore dataset export --colour
grey-world``) and runtime frames (the manifest's ``colour`` field), so the
two never disagree.

Grey world: a scene averages to grey, so each channel is scaled to the mean of
the three channel means; then the whole frame is scaled to a fixed mean
brightness. Cheap (two passes over the frame), no parameters to fit.

>>> frame = np.zeros((2, 2, 3), np.uint8); frame[..., 0] = 50; frame[..., 2] = 150
>>> out = normalise_colour(frame, "grey_world")
>>> out[0, 0].tolist()
[110, 0, 110]
>>> normalise_colour(frame, "none") is frame
True
"""

from __future__ import annotations

from typing import Literal, get_args

import cv2
import numpy as np

__all__ = ["COLOUR_MODES", "ColourMode", "grey_world", "grey_world_lut", "normalise_colour"]

ColourMode = Literal["none", "grey_world"]
COLOUR_MODES: tuple[str, ...] = get_args(ColourMode)

TARGET_MEAN = 110.0  # mid-grey a little under 128: a store floor is darker than its lights
_EPS = 1.0  # a black channel is left alone rather than blown up


def grey_world(frame: np.ndarray, target_mean: float = TARGET_MEAN) -> np.ndarray:
    """``frame`` (H, W, 3 uint8) with channel means equalised and brightness set.

    A black frame stays black (nothing to balance); the result saturates at 255.
    """
    lut = grey_world_lut(frame, target_mean)
    # one table lookup per pixel and channel (OpenCV's LUT): far cheaper than float maths
    return frame if lut is None else cv2.LUT(np.ascontiguousarray(frame), lut)


def grey_world_lut(frame: np.ndarray, target_mean: float = TARGET_MEAN) -> np.ndarray | None:
    """The (256, 1, 3) lookup table ``grey_world`` applies to this frame; None for black.

    Apart so that a caller who needs only some regions of the frame balanced
    (re-id crops) measures the frame once and looks up only those pixels.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"grey_world needs an (H, W, 3) frame, got shape {frame.shape}")
    # OpenCV's mean: one pass, no float copy of the frame
    means = np.asarray(cv2.mean(np.ascontiguousarray(frame))[:3], dtype=np.float64)
    overall = float(means.mean())
    if overall < _EPS:
        return None
    # one multiplier per channel: balance to the common mean, then expose to the target
    gains = np.where(means > _EPS, overall / np.maximum(means, _EPS), 1.0) * (target_mean / overall)
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gains[None, :], 0, 255)
    return (lut + 0.5).astype(np.uint8).reshape(256, 1, 3)


def normalise_colour(frame: np.ndarray, mode: str) -> np.ndarray:
    """Apply the named colour normalisation (``none`` returns the frame itself)."""
    if mode == "none":
        return frame
    if mode == "grey_world":
        return grey_world(frame)
    raise ValueError(f"unknown colour normalisation {mode!r}; choose one of {COLOUR_MODES}")
