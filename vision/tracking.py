"""Multi-object tracker: ByteTrack-style two-stage association, Kalman per track.

Each frame, with ``Tracker.update(detections)``:

1. every live track predicts its box with a constant-velocity Kalman filter on
   (cx, cy, w, h);
2. confident detections (``score >= high_score``) are paired with confirmed
   and lost tracks by IoU (exact assignment with a ``match_iou`` floor);
3. weak detections (``low_score <= score < high_score``) are offered to the
   confirmed tracks still unpaired (the ByteTrack idea: a partly occluded
   person scores low but is still that person);
4. tracks still unpaired get a second chance against the leftover confident
   boxes using their *last observed* box instead of the prediction (the
   OC-SORT observation-centric recovery, which survives bad velocity
   estimates after an occlusion);
5. tentative tracks take what confident boxes remain; anything left with
   ``score >= new_track_score`` starts a tentative track.

A lost track that is found again is re-fitted along a straight line between
its last observation and the new one (OC-SORT's re-update), so the filter's
velocity does not carry the drift it accumulated while coasting.

Lifecycle: tentative -> confirmed after ``min_hits`` consecutive hits (a miss
while tentative removes it) -> lost when unpaired -> removed after
``max_age_frames`` frames without a hit.

>>> import numpy as np
>>> from vision.detections import Detections
>>> tracker = Tracker(TrackerSettings(min_hits=1))
>>> box = Detections.from_arrays([[10, 10, 50, 90]], [0.9], [0])
>>> [t.track_id for t in tracker.update(box)], [t.track_id for t in tracker.update(box)]
([1], [1])
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vision.assignment import match_capped
from vision.detections import Detections

__all__ = [
    "KalmanBoxFilter",
    "Track",
    "TrackState",
    "Tracker",
    "TrackerSettings",
    "iou_xyxy",
]


class TrackerSettings(BaseModel):
    """Every threshold and hysteresis of the tracker, with its unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    high_score: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Detections at or above this score join the first stage.",
    )
    low_score: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Detections below this score are dropped; between low and "
        "high they only extend confirmed tracks (second stage).",
    )
    new_track_score: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="An unpaired detection starts a track only at or above this.",
    )
    match_iou: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Minimum IoU between a predicted box and a confident detection.",
    )
    low_match_iou: float = Field(
        default=0.5, gt=0, le=1, description="Minimum IoU for a weak detection in the second stage."
    )
    recover_iou: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="Minimum IoU between a track's last observed box and a "
        "detection in the recovery stage; 1 disables the stage.",
    )
    tentative_iou: float = Field(
        default=0.3, gt=0, le=1, description="Minimum IoU to extend a tentative track."
    )
    min_hits: int = Field(
        default=3,
        ge=1,
        description="Consecutive hits (frames) before a track is confirmed and reported.",
    )
    max_age_frames: int = Field(
        default=60,
        ge=0,
        description="Frames a confirmed track may go unseen before it is removed, "
        "at frame_rate_reference_hz; scaled by the stream's frame rate when it is given.",
    )
    frame_rate_reference_hz: float = Field(
        default=30.0, gt=0, description="Frame rate at which max_age_frames holds as given."
    )
    report_lost_frames: int = Field(
        default=0,
        ge=0,
        description="Frames a lost track keeps being reported at its predicted box.",
    )
    position_noise: float = Field(
        default=1 / 20,
        gt=0,
        description="Kalman position noise, as a fraction of box height per frame.",
    )
    velocity_noise: float = Field(
        default=1 / 160,
        gt=0,
        description="Kalman velocity noise, as a fraction of box height per frame.",
    )

    @model_validator(mode="after")
    def _scores_ordered(self) -> TrackerSettings:
        if self.low_score > self.high_score:
            raise ValueError(
                f"low_score ({self.low_score}) must not exceed high_score ({self.high_score})"
            )
        return self


class TrackState(enum.Enum):
    """Where a track is in its life."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


@dataclass(frozen=True)
class Track:
    """A reported track: a stable id and its box this frame (l, t, r, b pixels)."""

    track_id: int
    xyxy: np.ndarray
    score: float
    state: TrackState
    hits: int
    frames_since_hit: int


def _xyxy_to_z(xyxy: np.ndarray) -> np.ndarray:
    wh = xyxy[2:] - xyxy[:2]
    return np.array([xyxy[0] + wh[0] / 2, xyxy[1] + wh[1] / 2, wh[0], wh[1]], dtype=np.float64)


def _z_to_xyxy(z: np.ndarray) -> np.ndarray:
    w, h = max(float(z[2]), 1e-3), max(float(z[3]), 1e-3)
    return np.array([z[0] - w / 2, z[1] - h / 2, z[0] + w / 2, z[1] + h / 2])


_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


class KalmanBoxFilter:
    """Constant-velocity Kalman filter on (cx, cy, w, h) in pixels per frame.

    Noise scales with the box height, so near and far people move alike.
    """

    def __init__(self, xyxy: np.ndarray, position_noise: float, velocity_noise: float) -> None:
        self.pos_noise = position_noise
        self.vel_noise = velocity_noise
        z = _xyxy_to_z(np.asarray(xyxy, dtype=np.float64))
        self.x = np.concatenate([z, np.zeros(4)])
        h = z[3]
        std = np.array([2 * position_noise * h] * 4 + [10 * velocity_noise * h] * 4)
        self.P = np.diag(std**2)

    def predict(self) -> None:
        # A shrinking box must not flip sign: stop size velocity at zero size.
        for k in (2, 3):
            if self.x[k] + self.x[k + 4] <= 1.0:
                self.x[k + 4] = 0.0
        h = self.x[3]
        q = np.array([self.pos_noise * h] * 4 + [self.vel_noise * h] * 4) ** 2
        self.x = _F @ self.x
        self.P = _F @ self.P @ _F.T + np.diag(q)

    def update(self, xyxy: np.ndarray) -> None:
        z = _xyxy_to_z(np.asarray(xyxy, dtype=np.float64))
        r = np.full(4, (self.pos_noise * self.x[3]) ** 2)
        s = _H @ self.P @ _H.T + np.diag(r)
        gain = np.linalg.solve(s, _H @ self.P).T
        self.x = self.x + gain @ (z - _H @ self.x)
        self.P = (np.eye(8) - gain @ _H) @ self.P

    @property
    def xyxy(self) -> np.ndarray:
        return _z_to_xyxy(self.x[:4])


class _LiveTrack:
    """Mutable per-track state inside the tracker (not exported)."""

    def __init__(
        self, track_id: int, xyxy: np.ndarray, score: float, frame: int, settings: TrackerSettings
    ) -> None:
        self.track_id = track_id
        self.kf = KalmanBoxFilter(xyxy, settings.position_noise, settings.velocity_noise)
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.frames_since_hit = 0
        self.score = score
        self.last_obs = np.asarray(xyxy, dtype=np.float64)
        self.last_obs_frame = frame
        if settings.min_hits <= 1:
            self.state = TrackState.CONFIRMED

    def predict(self) -> None:
        self.kf.predict()
        self.frames_since_hit += 1

    def hit(self, xyxy: np.ndarray, score: float, frame: int, settings: TrackerSettings) -> None:
        gap = frame - self.last_obs_frame
        if gap > 1:
            self._refit_along_gap(xyxy, gap, settings)
        else:
            self.kf.update(xyxy)
        self.hits += 1
        self.frames_since_hit = 0
        self.score = score
        self.last_obs = np.asarray(xyxy, dtype=np.float64)
        self.last_obs_frame = frame
        ripe = self.state is TrackState.TENTATIVE and self.hits >= settings.min_hits
        if ripe or self.state is TrackState.LOST:
            self.state = TrackState.CONFIRMED

    def _refit_along_gap(self, xyxy: np.ndarray, gap: int, settings: TrackerSettings) -> None:
        # Re-run the filter from the last observation along a straight line to
        # the new one, as if it had been seen every frame (OC-SORT re-update).
        start = self.last_obs
        end = np.asarray(xyxy, dtype=np.float64)
        kf = KalmanBoxFilter(start, settings.position_noise, settings.velocity_noise)
        kf.x[4:] = self.kf.x[4:]
        kf.P = self.kf.P.copy()
        for k in range(1, gap + 1):
            kf.predict()
            kf.update(start + (end - start) * (k / gap))
        self.kf = kf

    def report(self) -> Track:
        return Track(
            self.track_id, self.kf.xyxy, self.score, self.state, self.hits, self.frames_since_hit
        )


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` (N, 4) and ``b`` (M, 4), both (l, t, r, b) pixels."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0.0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    # Degenerate (zero-area) pairs overlap nothing.
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _pair(track_boxes: np.ndarray, det_boxes: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    if len(track_boxes) == 0 or len(det_boxes) == 0:
        return []
    cost = 1.0 - iou_xyxy(track_boxes, det_boxes)
    rows, cols = match_capped(cost, 1.0 - min_iou)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


class Tracker:
    """Online tracker; one instance per camera stream.

    ``frame_rate_hz`` (optional) scales ``max_age_frames`` from the settings'
    reference rate, so a track survives the same time at 7 and 30 FPS.
    """

    def __init__(
        self, settings: TrackerSettings | None = None, frame_rate_hz: float | None = None
    ) -> None:
        self.settings = settings or TrackerSettings()
        if frame_rate_hz is not None and frame_rate_hz <= 0:
            raise ValueError(f"frame_rate_hz must be positive, got {frame_rate_hz}")
        scale = (
            1.0 if frame_rate_hz is None else frame_rate_hz / self.settings.frame_rate_reference_hz
        )
        self.max_age_frames = max(1, round(self.settings.max_age_frames * scale))
        self.frame = 0
        self._tracks: list[_LiveTrack] = []
        self._next_id = 1

    def update(self, detections: Detections) -> list[Track]:
        """Advance one frame with its detections; return the reported tracks."""
        s = self.settings
        self.frame += 1
        for t in self._tracks:
            t.predict()
        keep = detections.score >= s.low_score
        boxes = detections.xyxy[keep].astype(np.float64)
        scores = detections.score[keep].astype(np.float64)
        high = np.flatnonzero(scores >= s.high_score)
        low = np.flatnonzero(scores < s.high_score)

        active = [t for t in self._tracks if t.state is not TrackState.TENTATIVE]
        tentative = [t for t in self._tracks if t.state is TrackState.TENTATIVE]
        matched: set[int] = set()

        def assign(
            tracks: list[_LiveTrack],
            det_idx: np.ndarray,
            min_iou: float,
            use_last_obs: bool = False,
        ) -> tuple[list[_LiveTrack], np.ndarray]:
            if use_last_obs:
                tb = np.array([t.last_obs for t in tracks]).reshape(-1, 4)
            else:
                tb = np.array([t.kf.xyxy for t in tracks]).reshape(-1, 4)
            pairs = _pair(tb, boxes[det_idx], min_iou)
            for r, c in pairs:
                d = int(det_idx[c])
                tracks[r].hit(boxes[d], float(scores[d]), self.frame, s)
                matched.add(d)
            used_r = {r for r, _ in pairs}
            used_c = {c for _, c in pairs}
            return (
                [t for i, t in enumerate(tracks) if i not in used_r],
                np.array([d for i, d in enumerate(det_idx) if i not in used_c], dtype=np.intp),
            )

        rest_tracks, rest_high = assign(active, high, s.match_iou)
        confirmed_rest = [t for t in rest_tracks if t.state is TrackState.CONFIRMED]
        lost_rest = [t for t in rest_tracks if t.state is TrackState.LOST]
        confirmed_rest, _ = assign(confirmed_rest, low, s.low_match_iou)
        if s.recover_iou < 1.0:
            rest_tracks, rest_high = assign(
                confirmed_rest + lost_rest, rest_high, s.recover_iou, use_last_obs=True
            )
        else:
            rest_tracks = confirmed_rest + lost_rest
        unconf_rest, rest_high = assign(tentative, rest_high, s.tentative_iou)

        for t in rest_tracks:
            t.state = TrackState.LOST
        for t in unconf_rest:
            t.state = TrackState.REMOVED
        for d in rest_high:
            if scores[d] >= s.new_track_score:
                self._tracks.append(
                    _LiveTrack(self._next_id, boxes[d], float(scores[d]), self.frame, s)
                )
                self._next_id += 1
        for t in self._tracks:
            if t.state is TrackState.LOST and t.frames_since_hit > self.max_age_frames:
                t.state = TrackState.REMOVED
        self._tracks = [t for t in self._tracks if t.state is not TrackState.REMOVED]
        return [t.report() for t in self._tracks if self._reported(t)]

    def _reported(self, t: _LiveTrack) -> bool:
        if t.state is TrackState.CONFIRMED:
            return True
        if t.state is TrackState.LOST:
            return t.frames_since_hit <= self.settings.report_lost_frames
        # At the start of a stream there is no history to wait for (as SORT does).
        return self.frame <= self.settings.min_hits

    @property
    def tracks(self) -> list[Track]:
        """Every live track (tentative and lost included), for inspection."""
        return [t.report() for t in self._tracks]
