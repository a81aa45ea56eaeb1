"""The edge vision pipeline: ceiling-camera frames in, ``TrackBatch`` on the bus out.

For each time step (one :class:`vision.sources.FrameSet`: a frame per
ceiling camera at one event time) the pipeline

1. checks every camera's frame with its :class:`vision.health.CameraHealth`
   (a missing frame counts towards a stall); an unhealthy camera contributes
   nothing this step and the others keep running;
2. asks each camera's :class:`vision.motion.MotionGate` whether the frame
   moved; a still frame reuses the camera's last detections;
3. runs the detector once over all the frames that need it (one batch);
4. feeds the detections to :class:`vision.ceiling.CeilingTracker`, which
   fuses them on the floor and publishes the ``TrackBatch``.

Decisions use only the frame sets' event times. Wall-clock time is read only
to fill the per-stage timing counters (``timings``), for benchmarks.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from iot.bus import Transport
from iot.metrics import CAMERA_FPS
from iot.payloads import TrackBatch
from iot.store import Store
from vision.ceiling import CeilingSettings, CeilingTracker, Looks
from vision.detections import Detections
from vision.health import CameraHealth, HealthSettings, cameras_health
from vision.motion import MotionGate, MotionSettings
from vision.sources import FrameSet

__all__ = ["Detector", "EdgeSettings", "EdgeVisionPipeline", "StageTiming"]

log = logging.getLogger(__name__)

STAGES = ("health", "motion", "detect", "track")
P = ParamSpec("P")
R = TypeVar("R")


class Detector(Protocol):
    """What the pipeline needs of a detector (``vision.detect.OnnxDetector`` fits)."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...


class EdgeSettings(BaseModel):
    """Switches of the edge pipeline that are not settings of one of its stages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    motion_gating: bool = Field(
        default=True,
        description="skip the detector on still frames and reuse the camera's last detections",
    )


@dataclass
class StageTiming:
    """Wall-clock time spent in one stage, for benchmarks only."""

    calls: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.calls += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


class EdgeVisionPipeline:
    """Health check, motion gate, batched detector and ceiling tracker for a store."""

    def __init__(
        self,
        store: Store,
        detector: Detector,
        transport: Transport | None,
        *,
        motion: MotionSettings | None = None,
        ceiling: CeilingSettings | None = None,
        health: HealthSettings | None = None,
        settings: EdgeSettings | None = None,
        looks: Looks | None = None,
    ) -> None:
        self.store = store
        self.detector = detector
        self.settings = settings or EdgeSettings()
        self.tracker = CeilingTracker(store, transport, ceiling, looks=looks)
        self.camera_ids = sorted(self.tracker.cameras)
        self.health: dict[str, CameraHealth] = cameras_health(store, transport, health)
        self.motion_settings = motion or MotionSettings()
        self.gates = {cid: MotionGate(self.motion_settings) for cid in self.camera_ids}
        self.last_detections: dict[str, Detections] = {}
        self.counts: Counter[str] = Counter()
        self.timings: dict[str, StageTiming] = {s: StageTiming() for s in STAGES}
        self.last_time_s: float | None = None

    # ------------------------------------------------------------ public

    def run(self, frame_sets: Iterable[FrameSet]) -> Iterator[TrackBatch]:
        """Process frame sets in order; yields each published batch."""
        for frame_set in frame_sets:
            batch = self.step(frame_set.time_s, frame_set.frames)
            if batch is not None:
                yield batch

    def step(self, time_s: float, frames: Mapping[str, np.ndarray | None]) -> TrackBatch | None:
        """One time step; None when the frame set is refused (not after the last one)."""
        if self.last_time_s is not None and time_s <= self.last_time_s:
            self.counts["late_frame_sets"] += 1
            log.warning(
                "frame set at %.3f is not after the last one (%.3f); skipped",
                time_s,
                self.last_time_s,
            )
            return None
        self.last_time_s = time_s
        self.counts["frame_sets"] += 1
        usable = self._timed("health", self._check_health, time_s, frames)
        CAMERA_FPS.frames(self.store.store_id, usable)  # wall-clock rate, operations only
        to_detect = self._timed("motion", self._gate, usable)
        fresh = self._timed("detect", self._detect, to_detect)
        self.last_detections.update(fresh)
        detections = {cid: self.last_detections[cid] for cid in usable}
        return self._timed("track", self.tracker.process, time_s, detections, usable)

    def timings_ms(self) -> dict[str, dict[str, float]]:
        """Per-stage calls, total, mean and max milliseconds (benchmarks; never decisions)."""
        return {
            name: {
                "calls": t.calls,
                "total_ms": t.total_ms,
                "mean_ms": t.mean_ms,
                "max_ms": t.max_ms,
            }
            for name, t in self.timings.items()
        }

    def unhealthy_cameras(self) -> list[str]:
        return [cid for cid in self.camera_ids if not self.health[cid].healthy]

    # ------------------------------------------------------------ stages

    def _timed(self, stage: str, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[stage].add((time.perf_counter() - t0) * 1e3)

    def _check_health(
        self, time_s: float, frames: Mapping[str, np.ndarray | None]
    ) -> dict[str, np.ndarray]:
        """The frames of the cameras that may be used this step."""
        unknown = sorted(set(frames) - set(self.camera_ids))
        if unknown:
            self.counts["unknown_camera_frames"] += len(unknown)
            log.warning("frames from unknown ceiling camera(s) %s ignored", unknown)
        usable: dict[str, np.ndarray] = {}
        for cid in self.camera_ids:
            health = self.health[cid]
            if cid not in frames:
                health.missing(time_s)
                continue
            image = frames[cid]
            was_healthy = health.healthy
            check = health.observe(time_s, image)
            if check.change is not None and check.change.healthy and not was_healthy:
                # the background and the old boxes predate the outage
                self.gates[cid].reset()
                self.last_detections.pop(cid, None)
            if check.usable and isinstance(image, np.ndarray):
                usable[cid] = image
            else:
                self.counts["frames_unusable"] += 1
        return usable

    def _gate(self, usable: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The usable frames the detector must see (moved, warm-up, refresh, or no history)."""
        out: dict[str, np.ndarray] = {}
        for cid, image in usable.items():
            if not self.settings.motion_gating:
                out[cid] = image
                continue
            decision = self.gates[cid].update(image)
            if decision.detect or cid not in self.last_detections:
                out[cid] = image
            else:
                self.counts["frames_gated"] += 1
        return out

    def _detect(self, frames: Mapping[str, np.ndarray]) -> dict[str, Detections]:
        if not frames:
            return {}
        ids = list(frames)
        found = self.detector.detect([frames[c] for c in ids])
        if len(found) != len(ids):
            raise RuntimeError(
                f"the detector returned {len(found)} results for {len(ids)} frames; "
                "a detector must return one Detections per frame, in order"
            )
        self.counts["frames_detected"] += len(ids)
        self.counts["detector_calls"] += 1
        return dict(zip(ids, found, strict=True))
