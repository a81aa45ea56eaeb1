"""Motion gating: frames and regions without motion are not sent to the detector.

A ceiling camera in a quiet store sees the same floor for most of the day.
:class:`MotionGate` (one per camera, like :class:`vision.tracking.Tracker`)
keeps a running background of a downscaled, blurred grey copy of each frame
and compares every new frame with it. A frame whose difference covers less
than ``min_area_px`` is *still*: the caller skips the detector and reuses the
camera's last detections, so tracks of a standing shopper stay put rather
than coast away. Every ``refresh_every_frames`` frames the detector runs
anyway, because a shopper standing still long enough is absorbed into the
background and would otherwise never be re-detected.

A global lighting change (a cloud, a dimmer, auto-exposure) scales every
pixel alike; with ``normalise_brightness`` the frame's median grey level is
matched to the background's before differencing, so a ramp is not motion.

Decisions depend only on the frames and their count, never on wall time.

>>> gate = MotionGate(MotionSettings(warmup_frames=1, refresh_every_frames=100))
>>> still = np.full((120, 160, 3), 90, np.uint8)
>>> gate.update(still).reason, gate.update(still).reason
('warmup', 'still')
>>> moved = still.copy(); moved[40:80, 60:100] = 250
>>> d = gate.update(moved)
>>> d.reason, d.detect, d.boxes.astype(int).tolist()
('motion', True, [[48, 28, 112, 92]])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vision.detections import Detections

__all__ = [
    "MotionDecision",
    "MotionGate",
    "MotionSettings",
    "Reason",
    "detection_regions",
    "merge_boxes",
    "offset_detections",
]

log = logging.getLogger(__name__)

Reason = Literal["warmup", "motion", "refresh", "still", "resized"]


class MotionSettings(BaseModel):
    """How a camera decides that a frame moved. Pixel sizes are in full-frame pixels."""

    model_config = ConfigDict(extra="forbid")

    diff_threshold: float = Field(
        default=18.0,
        gt=0.0,
        le=255.0,
        description="grey levels (0-255) a blurred pixel must differ from the background "
        "to count as moving",
    )
    min_area_px: int = Field(
        default=400,
        ge=1,
        description="smallest moving region, in full-frame square pixels, that counts as "
        "motion (smaller ones are noise)",
    )
    downscale: int = Field(
        default=4,
        ge=1,
        le=32,
        description="differencing runs on a frame shrunk by this factor per side, for speed",
    )
    blur_px: int = Field(
        default=5,
        ge=0,
        description="Gaussian blur kernel side on the shrunk frame (0: none; even sizes "
        "are rounded up to odd) to suppress sensor noise",
    )
    warmup_frames: int = Field(
        default=5,
        ge=1,
        description="the first frames of a camera always go to the detector while the "
        "background forms",
    )
    refresh_every_frames: int = Field(
        default=20,
        ge=1,
        description="run the detector at least this often (frames) even without motion, so "
        "a shopper standing still is re-detected",
    )
    background_rate: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="weight of each new frame in the running background (per frame)",
    )
    normalise_brightness: bool = Field(
        default=True,
        description="match the frame's median grey level to the background's before "
        "differencing, so a global lighting change is not motion",
    )
    margin_px: int = Field(
        default=4,
        ge=0,
        description="moving-region boxes grow by this many full-frame pixels on each side",
    )

    @field_validator("blur_px")
    @classmethod
    def _odd(cls, value: int) -> int:
        # OpenCV needs an odd kernel; rounding up is what a user asking for "4" means
        return value + 1 if value and value % 2 == 0 else value


@dataclass(frozen=True)
class MotionDecision:
    """What the gate decided for one frame.

    ``detect`` says whether the frame goes to the detector; ``boxes`` (K, 4)
    float32 xyxy in full-frame pixels are the moving regions (empty when
    still, and during warm-up where nothing is known yet); ``moving_fraction``
    is the share of the frame's area that moved.
    """

    frame_index: int
    detect: bool
    reason: Reason
    boxes: np.ndarray
    moving_fraction: float


class MotionGate:
    """Frame differencing against a running background, for one camera stream."""

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self.frame_index = -1
        self._background: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None
        self._since_detect = 0
        self._warm = 0
        s = self.settings
        side = max(1, 5 // s.downscale) | 1
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side + 2, side + 2))

    def reset(self) -> None:
        """Forget the background (after a camera restarts or is moved)."""
        self._background = None
        self._shape = None
        self._warm = 0

    def _small_grey(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim == 3 and frame.shape[2] == 3:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        elif frame.ndim == 2:
            grey = frame
        else:
            raise ValueError(
                f"a frame must have shape (H, W, 3) BGR or (H, W) grey, got {frame.shape}"
            )
        d = self.settings.downscale
        h, w = grey.shape
        if d > 1:
            grey = cv2.resize(grey, (max(1, w // d), max(1, h // d)), interpolation=cv2.INTER_AREA)
        if self.settings.blur_px:
            k = self.settings.blur_px
            grey = cv2.GaussianBlur(grey, (k, k), 0)
        return grey.astype(np.float32)

    def update(self, frame: np.ndarray) -> MotionDecision:
        """Look at the camera's next frame and decide whether it goes to the detector."""
        s = self.settings
        self.frame_index += 1
        if frame.size == 0:
            raise ValueError(f"frame {self.frame_index} is empty (shape {frame.shape})")
        small = self._small_grey(frame)
        shape = (int(frame.shape[0]), int(frame.shape[1]))
        empty = np.zeros((0, 4), dtype=np.float32)
        if self._background is None or self._shape != shape:
            reason: Reason = "warmup" if self._shape is None else "resized"
            if self._shape is not None:
                log.info("camera frame size changed %s -> %s; background reset", self._shape, shape)
            self._background, self._shape, self._warm = small.copy(), shape, 1
            return self._detected(reason, empty, 0.0)
        if s.normalise_brightness:
            # medians, not means: a large moving shopper must not shift the gain
            level = float(np.median(small))
            if level > 1.0:
                small *= float(np.median(self._background)) / level
        diff = cv2.absdiff(small, self._background)
        mask = (diff > s.diff_threshold).astype(np.uint8)
        boxes, moving_px = self._regions(mask, shape)
        # learn the background after comparing, so this frame's motion is measured
        cv2.accumulateWeighted(small, self._background, s.background_rate)
        fraction = moving_px / float(shape[0] * shape[1])
        if self._warm < s.warmup_frames:
            self._warm += 1
            return self._detected("warmup", empty, fraction)
        if len(boxes):
            return self._detected("motion", boxes, fraction)
        self._since_detect += 1
        if self._since_detect >= s.refresh_every_frames:
            return self._detected("refresh", empty, fraction)
        return MotionDecision(self.frame_index, False, "still", empty, fraction)

    def _detected(self, reason: Reason, boxes: np.ndarray, fraction: float) -> MotionDecision:
        self._since_detect = 0
        return MotionDecision(self.frame_index, True, reason, boxes, fraction)

    def _regions(self, mask: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
        """Moving components of ``mask`` as full-frame boxes, and their area in pixels."""
        s = self.settings
        mask = cv2.dilate(mask, self._kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        scale = float(s.downscale)
        area_full = stats[1:, cv2.CC_STAT_AREA].astype(np.float64) * scale * scale
        keep = np.flatnonzero(area_full >= s.min_area_px) + 1
        if count <= 1 or keep.size == 0:
            return np.zeros((0, 4), dtype=np.float32), 0.0
        x, y = stats[keep, cv2.CC_STAT_LEFT], stats[keep, cv2.CC_STAT_TOP]
        w, h = stats[keep, cv2.CC_STAT_WIDTH], stats[keep, cv2.CC_STAT_HEIGHT]
        boxes = np.stack([x, y, x + w, y + h], axis=1).astype(np.float32) * scale
        boxes[:, :2] -= s.margin_px
        boxes[:, 2:] += s.margin_px
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, shape[1])
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, shape[0])
        return merge_boxes(boxes, gap_px=0.0), float(area_full[keep - 1].sum())


def merge_boxes(boxes: np.ndarray, gap_px: float) -> np.ndarray:
    """Union boxes that overlap or lie within ``gap_px`` of each other, until none do.

    >>> merge_boxes(np.array([[0, 0, 10, 10], [12, 0, 20, 10], [50, 50, 60, 60]],
    ...             np.float32), gap_px=3).tolist()
    [[0.0, 0.0, 20.0, 10.0], [50.0, 50.0, 60.0, 60.0]]
    """
    out = [b.astype(np.float32) for b in np.asarray(boxes, dtype=np.float32).reshape(-1, 4)]
    merged = True
    while merged and len(out) > 1:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                apart = (
                    a[0] - b[2] > gap_px
                    or b[0] - a[2] > gap_px
                    or a[1] - b[3] > gap_px
                    or b[1] - a[3] > gap_px
                )
                if not apart:
                    out[i] = np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])])
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return np.stack(out) if out else np.zeros((0, 4), dtype=np.float32)


def detection_regions(
    boxes: np.ndarray,
    frame_shape: Sequence[int],
    *,
    min_side_px: int = 160,
    max_area_fraction: float = 0.5,
) -> np.ndarray | None:
    """Crops (K, 4) int32 xyxy worth detecting in, or ``None`` for the whole frame.

    Each moving box is grown to at least ``min_side_px`` a side (a detector
    needs context around a person, and a tiny crop would be blown up many
    times by the letterbox), nearby crops are merged, and when the crops
    together cover more than ``max_area_fraction`` of the frame one
    full-frame inference is cheaper than several crops.
    """
    h, w = int(frame_shape[0]), int(frame_shape[1])
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if b.shape[0] == 0:
        return None
    centre = (b[:, :2] + b[:, 2:]) / 2.0
    half = np.maximum((b[:, 2:] - b[:, :2]) / 2.0, min_side_px / 2.0)
    grown = np.concatenate([centre - half, centre + half], axis=1)
    grown[:, [0, 2]] = np.clip(grown[:, [0, 2]], 0, w)
    grown[:, [1, 3]] = np.clip(grown[:, [1, 3]], 0, h)
    crops = merge_boxes(grown, gap_px=0.0)
    area = float(np.prod(crops[:, 2:] - crops[:, :2], axis=1).sum())
    if area > max_area_fraction * h * w:
        return None
    return np.round(crops).astype(np.int32)


def offset_detections(detections: Detections, dx: float, dy: float) -> Detections:
    """Detections found in a crop whose top-left is (dx, dy), moved to full-frame pixels."""
    xyxy = detections.xyxy + np.array([dx, dy, dx, dy], dtype=np.float32)
    return Detections(xyxy=xyxy, score=detections.score, class_id=detections.class_id)
