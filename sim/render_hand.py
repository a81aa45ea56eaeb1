"""A shopper's arm and hand reaching into a shelf, drawn in a shelf camera's image.

The arm rises from below the image (the aisle, nearer the camera) to the
hand; the hand is a palm, fingers and a thumb, and a held package stands
upright out of the fist, behind the hand (the camera sees the hand's back).
Sizes come from metres at the target's image scale, a little larger while
the hand is still out in the aisle (nearer the camera). The whole arm is
drawn on a sprite and motion-blurred along the hand's motion during the
exposure, like the ceiling renderer's shoppers.

Pure drawing: the caller decides where the hand goes and what it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim.render import motion_kernel
from sim.render_face import cached_package

__all__ = ["HandDrawing", "draw_hand", "hand_point"]

Px = tuple[float, float]
Box = tuple[float, float, float, float]

ARM_ROOT_M = 0.075  # half-width of the sleeve where it enters the image
ARM_WRIST_M = 0.045  # half-width of the sleeve at the wrist
PALM_M = (0.05, 0.042)  # half-lengths along and across the arm
FINGERS_M = (0.04, 0.036)
THUMB_M = (0.03, 0.013)
NEAR_SCALE = 1.35  # the hand out in the aisle is this much larger than at the plate
_SHIFT = 2  # sub-pixel bits for OpenCV polygon filling
_ELLIPSE_POINTS = 18


@dataclass(frozen=True)
class HandDrawing:
    """Where the drawn hand and its package ended up, unclipped image pixels."""

    hand_xyxy: Box
    product_xyxy: Box | None


def hand_point(start_px: Px, target_px: Px, travel: float) -> Px:
    """The hand's centre ``travel`` (0..1) of the way from its start to the target."""
    return (
        start_px[0] + (target_px[0] - start_px[0]) * travel,
        start_px[1] + (target_px[1] - start_px[1]) * travel,
    )


def _ellipse(centre: np.ndarray, along: float, across: float, d: np.ndarray) -> np.ndarray:
    """Points (N, 2) of an ellipse whose first axis lies along the unit vector ``d``."""
    a = np.linspace(0.0, 2.0 * math.pi, _ELLIPSE_POINTS, endpoint=False)
    n = np.array([-d[1], d[0]])
    return np.asarray(
        centre + np.outer(np.cos(a) * along, d) + np.outer(np.sin(a) * across, n), float
    )


def _bbox(*polys: np.ndarray) -> Box:
    pts = np.concatenate(polys)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _rotate(d: np.ndarray, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])


class _Sprite:
    """A window of the image with its own colour and coverage, drawn in image coordinates."""

    def __init__(self, box: Box, pad: int, width: int, height: int) -> None:
        self.x0 = max(math.floor(box[0]) - pad, 0)
        self.y0 = max(math.floor(box[1]) - pad, 0)
        self.x1 = min(math.ceil(box[2]) + pad + 1, width)
        self.y1 = min(math.ceil(box[3]) + pad + 1, height)
        h, w = max(self.y1 - self.y0, 0), max(self.x1 - self.x0, 0)
        self.colour = np.zeros((h, w, 3), np.uint8)
        self.mask = np.zeros((h, w), np.uint8)

    @property
    def empty(self) -> bool:
        return self.mask.size == 0

    def poly(self, pts: np.ndarray, bgr: tuple[int, int, int]) -> None:
        q = np.round((pts - (self.x0, self.y0)) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillConvexPoly(self.colour, q, bgr, lineType=cv2.LINE_8, shift=_SHIFT)
        cv2.fillConvexPoly(self.mask, q, 255, lineType=cv2.LINE_8, shift=_SHIFT)

    def paste(self, img: np.ndarray, x: int, y: int) -> None:
        h, w = img.shape[:2]
        c0, r0 = x - self.x0, y - self.y0
        a0, b0 = max(c0, 0), max(r0, 0)
        a1, b1 = min(c0 + w, self.mask.shape[1]), min(r0 + h, self.mask.shape[0])
        if a1 > a0 and b1 > b0:
            self.colour[b0:b1, a0:a1] = img[b0 - r0 : b1 - r0, a0 - c0 : a1 - c0]
            self.mask[b0:b1, a0:a1] = 255

    def composite(self, image: np.ndarray, blur_px: Px) -> None:
        win = (slice(self.y0, self.y1), slice(self.x0, self.x1))
        kernel = motion_kernel(*blur_px)
        if kernel is None:
            shown = self.mask > 0
            image[win][shown] = self.colour[shown]
            return
        sharp: np.ndarray = self.mask.astype(np.float32) * (1.0 / 255.0)
        premultiplied: np.ndarray = self.colour.astype(np.float32) * sharp[..., None]
        alpha = cv2.filter2D(sharp, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        colour = cv2.filter2D(premultiplied, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        region = image[win].astype(np.float32) * (1.0 - alpha[..., None]) + colour
        image[win] = np.clip(region + 0.5, 0, 255).astype(np.uint8)


def draw_hand(
    image: np.ndarray,
    *,
    root_px: Px,
    start_px: Px,
    target_px: Px,
    px_per_m: float,
    travel: float,
    travel_before: float,
    skin_bgr: tuple[int, int, int],
    sleeve_bgr: tuple[int, int, int],
    held: tuple[str, float, float, int] | None,
) -> HandDrawing:
    """Draw an arm from ``root_px`` to the hand ``travel`` of the way to ``target_px``.

    ``held`` is (sku, package width m, package height m, count) or None;
    ``travel_before`` is where the hand was when the exposure opened (motion blur).
    """
    p = np.array(hand_point(start_px, target_px, travel))
    before = np.array(hand_point(start_px, target_px, travel_before))
    s = px_per_m * (NEAR_SCALE - (NEAR_SCALE - 1.0) * travel)
    arm = p - np.array(root_px)
    d = arm / (np.linalg.norm(arm) or 1.0)
    n = np.array([-d[1], d[0]])
    wrist = p - d * 0.05 * s
    sleeve = np.array(
        [
            root_px + n * ARM_ROOT_M * s,
            wrist + n * ARM_WRIST_M * s,
            wrist - n * ARM_WRIST_M * s,
            root_px - n * ARM_ROOT_M * s,
        ]
    )
    cuff_end = wrist - d * 0.03 * s
    cuff = np.array(
        [
            cuff_end + n * ARM_WRIST_M * s,
            wrist + n * ARM_WRIST_M * s,
            wrist - n * ARM_WRIST_M * s,
            cuff_end - n * ARM_WRIST_M * s,
        ]
    )
    palm = _ellipse(p, PALM_M[0] * s, PALM_M[1] * s, d)
    fingers = _ellipse(p + d * 0.055 * s, FINGERS_M[0] * s, FINGERS_M[1] * s, d)
    thumb_dir = _rotate(d, -35.0)
    thumb = _ellipse(p + d * 0.02 * s - n * 0.045 * s, THUMB_M[0] * s, THUMB_M[1] * s, thumb_dir)
    hand_box = _bbox(palm, fingers, thumb)
    packages = _held_boxes(p + d * 0.03 * s, s, held)
    product_box = _bbox(*[b.reshape(2, 2) for b in packages]) if packages else None
    pad = math.ceil(float(np.linalg.norm(p - before))) + 2
    everything = _bbox(sleeve, palm, fingers, thumb, *[b.reshape(2, 2) for b in packages])
    sprite = _Sprite(everything, pad, image.shape[1], image.shape[0])
    if not sprite.empty:
        sprite.poly(sleeve, sleeve_bgr)
        sprite.poly(cuff, _darker(sleeve_bgr))
        if held is not None:  # behind the hand: the camera sees the hand gripping it
            for box in packages:
                x0, y0, x1, y1 = (round(v) for v in box)
                sprite.paste(cached_package(held[0], max(x1 - x0, 2), max(y1 - y0, 2)), x0, y0)
        sprite.poly(palm, skin_bgr)
        sprite.poly(fingers, skin_bgr)
        sprite.poly(thumb, skin_bgr)
        sprite.composite(image, (float(p[0] - before[0]), float(p[1] - before[1])))
    return HandDrawing(hand_box, product_box)


def _darker(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    return int(bgr[0] * 0.7), int(bgr[1] * 0.7), int(bgr[2] * 0.7)


def _held_boxes(
    centre: np.ndarray, s: float, held: tuple[str, float, float, int] | None
) -> list[np.ndarray]:
    """Upright package boxes (x0, y0, x1, y1) fanned around ``centre``, back to front."""
    if held is None:
        return []
    _, w_m, h_m, count = held
    w, h = w_m * s, h_m * s
    out = []
    for k in range(count):
        off = (k - (count - 1) / 2) * 0.025 * s
        # the hand grips the lower part: the package stands up out of the fist
        cx, cy = centre[0] + off, centre[1] - 0.4 * h - abs(off) * 0.5
        out.append(np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
    return out
