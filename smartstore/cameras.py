"""Camera positioning for the twin: rendered ceiling frames through the edge pipeline.

``smartstore eval`` and ``smartstore demo`` use this by default (issue 3): the
twin renders what each ceiling camera sees, the edge pipeline (health, motion
gate, detector, per-camera tracker, floor fusion) turns it into ``TrackBatch``
messages, and the brain never sees the twin's own positions. The simulated
positioning feed remains an option (``--positioning simulated``) for
comparison.

Frames are rendered at ``fps`` (default 5 Hz: the brain needs positions, not
video; the ceiling cameras' own rate is a store setting for real cameras) at
times ``start + k / fps``, so a run is reproducible for a seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from iot.bus import Transport
from models.registry import load_model
from sim.render import LIGHTING_PRESETS, CeilingRenderer, RenderSettings
from sim.twin import Twin
from vision.detect import OnnxDetector
from vision.edge import EdgeSettings, EdgeVisionPipeline

__all__ = ["CEILING_MANIFEST", "CameraPositioning", "CameraRunStats"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CEILING_MANIFEST = REPO / "models" / "manifests" / "ceiling_person.yaml"


@dataclass
class CameraRunStats:
    """What the camera path did in a run (wall-clock times are for reports only)."""

    frame_sets: int = 0
    render_s: float = 0.0
    pipeline_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class CameraPositioning:
    """Renders the twin's ceiling cameras and runs the edge pipeline up to a time."""

    def __init__(
        self,
        twin: Twin,
        transport: Transport,
        *,
        fps: float = 5.0,
        lighting: str = "day",
        manifest: str | Path = CEILING_MANIFEST,
        score_threshold: float = 0.4,
        threads: int | None = None,
        motion_gating: bool = True,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"camera fps must be positive, got {fps}")
        if lighting not in LIGHTING_PRESETS:
            raise ValueError(
                f"unknown lighting {lighting!r}; use one of {sorted(LIGHTING_PRESETS)}"
            )
        # manifests live in models/manifests/, the shipped ONNX files in models/
        model = load_model(manifest, model_dir=Path(manifest).resolve().parent.parent)
        self.detector = OnnxDetector.from_model(
            model, score_threshold=score_threshold, threads=threads
        )
        self.twin = twin
        self.renderer = CeilingRenderer(
            twin.store,
            seed=twin.scenario.seed,
            settings=RenderSettings(lighting=LIGHTING_PRESETS[lighting]),
        )
        self.pipeline = EdgeVisionPipeline(
            twin.store,
            self.detector,
            transport,
            settings=EdgeSettings(motion_gating=motion_gating),
        )
        self.camera_ids = [c for c in self.pipeline.camera_ids if c in self.renderer.cameras]
        self.period_s = 1.0 / fps
        self._step = 0
        self.stats = CameraRunStats()

    def next_time_s(self) -> float:
        return self.twin.start_s + self._step * self.period_s

    def advance(self, until_s: float) -> int:
        """Render and process every frame set due at or before ``until_s``."""
        done = 0
        while self.next_time_s() <= until_s:
            t = self.next_time_s()
            t0 = time.perf_counter()
            frames = {cid: self.renderer.render(self.twin, cid, t).image for cid in self.camera_ids}
            t1 = time.perf_counter()
            self.pipeline.step(t, frames)
            self.stats.render_s += t1 - t0
            self.stats.pipeline_s += time.perf_counter() - t1
            self._step += 1
            done += 1
        self.stats.frame_sets += done
        return done

    def report(self) -> dict[str, object]:
        """Counts and per-stage timings for the eval JSON."""
        return {
            "cameras": len(self.camera_ids),
            "fps": round(1.0 / self.period_s, 3),
            "frame_sets": self.stats.frame_sets,
            "render_s": round(self.stats.render_s, 2),
            "pipeline_s": round(self.stats.pipeline_s, 2),
            "counts": dict(self.pipeline.counts),
            "unhealthy_cameras": self.pipeline.unhealthy_cameras(),
        }
