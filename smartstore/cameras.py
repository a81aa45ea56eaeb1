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
from models.registry import load_model, model_dir_of
from sim.render import LIGHTING_PRESETS, CeilingRenderer, RenderSettings
from sim.twin import Twin
from vision.detect import OnnxDetector
from vision.edge import EdgeSettings, EdgeVisionPipeline
from vision.reid import ReidEmbedder
from vision.snapshots import EvidenceSnapshotter

__all__ = [
    "CEILING_MANIFEST",
    "CEILING_SCORE_CUT",
    "REID_MANIFEST",
    "SHELF_MANIFEST",
    "CameraPositioning",
    "CameraRunStats",
    "ShelfCameras",
    "model_dir_of",
]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
CEILING_MANIFEST = REPO / "models" / "manifests" / "ceiling_person.yaml"
SHELF_MANIFEST = REPO / "models" / "manifests" / "shelf_hands.yaml"
REID_MANIFEST = REPO / "models" / "manifests" / "ceiling_reid.yaml"
# The ceiling detector's score cut. Every tool that runs the ceiling cameras
# (eval, demo, eval-tracking, fusion_replay record, recall_by_offset) takes it
# from here, so that what they measure is what the store runs.
CEILING_SCORE_CUT = 0.4
ACTIVE_MARGIN_S = 1.0  # full frame rate from this long before a reach until this long after


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
        score_threshold: float = CEILING_SCORE_CUT,
        threads: int | None = None,
        motion_gating: bool = True,
        reid_manifest: str | Path | None = REID_MANIFEST,
        snapshots: EvidenceSnapshotter | None = None,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"camera fps must be positive, got {fps}")
        if lighting not in LIGHTING_PRESETS:
            raise ValueError(
                f"unknown lighting {lighting!r}; use one of {sorted(LIGHTING_PRESETS)}"
            )
        model = load_model(manifest, model_dir=model_dir_of(manifest))
        self.detector = OnnxDetector.from_model(
            model, score_threshold=score_threshold, threads=threads
        )
        self.twin = twin
        self.renderer = CeilingRenderer(
            twin.store,
            seed=twin.scenario.seed,
            settings=RenderSettings(lighting=LIGHTING_PRESETS[lighting]),
        )
        # the learned look (vision/reid.py); None keeps the colour histogram
        looks = None
        if reid_manifest is not None:
            looks = ReidEmbedder.from_manifest(reid_manifest, model_dir_of(reid_manifest)).looks
        self.pipeline = EdgeVisionPipeline(
            twin.store,
            self.detector,
            transport,
            settings=EdgeSettings(motion_gating=motion_gating),
            looks=looks,
        )
        self.camera_ids = [c for c in self.pipeline.camera_ids if c in self.renderer.cameras]
        self.snapshots = snapshots  # keeps recent frames for case evidence (vision.snapshots)
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
            batch = self.pipeline.step(t, frames)
            self.stats.render_s += t1 - t0
            self.stats.pipeline_s += time.perf_counter() - t1
            if self.snapshots is not None:
                points = [(p.x_m, p.y_m) for p in batch.tracks] if batch is not None else []
                self.snapshots.observe(t, frames, self.pipeline.last_detections, points)
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


class ShelfCameras:
    """Renders the twin's shelf cameras and runs the shelf edge pipeline up to a time.

    Cost device, stated: a shelf camera's view only changes while a hand is in
    it, and in the twin hands appear only during reaches. So frames are
    rendered at ``fps`` from ``ACTIVE_MARGIN_S`` before each reach on the
    camera's face until as long after it, and at ``idle_fps`` otherwise
    (enough for the health checks to see a live camera). The pipeline sees
    every rendered frame, noise and all; what it is spared are the idle
    frames its motion gate would have dropped.
    """

    def __init__(
        self,
        twin: Twin,
        transport: Transport,
        *,
        fps: float = 10.0,
        idle_fps: float = 1.0,
        lighting: str = "day",
        manifest: str | Path = SHELF_MANIFEST,
        score_threshold: float = 0.15,
        threads: int | None = None,
        snapshots: EvidenceSnapshotter | None = None,
    ) -> None:
        from sim.render_face import plate_zones_px
        from sim.render_package import package_image
        from sim.render_shelf import SHELF_SETTINGS, ShelfRenderer
        from vision.shelf_edge import ShelfVisionPipeline
        from vision.sku import SkuClassifier

        if not fps > 0 or not 0 < idle_fps <= fps:
            raise ValueError(f"need fps > 0 and 0 < idle_fps <= fps, got {fps} and {idle_fps}")
        model = load_model(manifest, model_dir=model_dir_of(manifest))
        # the pipeline balances each frame once (its product crops need it too)
        detector = OnnxDetector.from_model(
            model, balanced_upstream=True, score_threshold=score_threshold, threads=threads
        )
        self.twin = twin
        store = twin.store
        self.renderer = ShelfRenderer(
            store,
            twin.scenario.seed,
            SHELF_SETTINGS.model_copy(update={"lighting": LIGHTING_PRESETS[lighting]}),
        )
        cameras = [c for c in store.devices.cameras if c.kind == "shelf"]
        if not cameras:
            raise ValueError(
                f"store {store.store_id!r} has no shelf cameras; add them under devices.cameras "
                "with kind: shelf and the gondola they watch"
            )
        # the SKU gallery: one reference image per catalog item, as a store photographs them
        # cut like the crops (InteractionSettings.crop_top_share): the hand hides the rest
        refs = {sku: package_image(sku, 40, 60)[:30] for sku in store.items}
        gallery = SkuClassifier.from_images(refs)
        self.pipeline = ShelfVisionPipeline(
            store,
            detector,
            gallery.classify,
            {c.id: plate_zones_px(store, c) for c in cameras},
            transport,
            colour=model.manifest.colour,
        )
        self.camera_ids = self.pipeline.camera_ids
        self.snapshots = snapshots  # shelf frames for case evidence; positions come from ceiling
        self.period_s = 1.0 / fps
        self.idle_every = max(1, round(fps / idle_fps))
        self.windows = {cid: self._active_windows(cid) for cid in self.camera_ids}
        self._step = 0
        self.stats = CameraRunStats()

    def _active_windows(self, camera_id: str) -> list[tuple[float, float]]:
        spans = sorted(
            (r.start_s - ACTIVE_MARGIN_S, r.end_s + ACTIVE_MARGIN_S)
            for r in self.renderer.face_reaches(self.twin, camera_id)
        )
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    def _active(self, camera_id: str, t_s: float) -> bool:
        windows = self.windows[camera_id]
        while windows and windows[0][1] < t_s:
            windows.pop(0)  # time only moves forward: passed windows are done
        return bool(windows) and windows[0][0] <= t_s

    def advance(self, until_s: float) -> int:
        """Render and process every step due at or before ``until_s``."""
        done = 0
        while (t := self.twin.start_s + self._step * self.period_s) <= until_s:
            idle_tick = self._step % self.idle_every == 0
            due = [c for c in self.camera_ids if idle_tick or self._active(c, t)]
            t0 = time.perf_counter()
            frames = {cid: self.renderer.render(self.twin, cid, t).image for cid in due}
            t1 = time.perf_counter()
            if frames:
                self.pipeline.step(t, frames)
            self.stats.render_s += t1 - t0
            self.stats.pipeline_s += time.perf_counter() - t1
            self.stats.frame_sets += len(frames)
            if frames and self.snapshots is not None:  # shelf detections are hands, not people
                self.snapshots.observe(t, frames, {}, None)
            self._step += 1
            done += 1
        return done

    def finish(self) -> None:
        """Close the episodes still open at the end of the run."""
        self.pipeline.flush()

    def report(self) -> dict[str, object]:
        return {
            "cameras": len(self.camera_ids),
            "fps": round(1.0 / self.period_s, 3),
            "frames": self.stats.frame_sets,
            "render_s": round(self.stats.render_s, 2),
            "pipeline_s": round(self.stats.pipeline_s, 2),
            "counts": dict(self.pipeline.counts),
        }
