"""The ceiling-tracking service: camera detections in, ``TrackBatch`` on the bus out.

Each frame set (one ``Detections`` per ceiling camera, all taken at one
event time) goes through a ``vision.tracking.Tracker`` per camera, the
camera-local tracks are projected to the floor, and ``vision.floor.FloorFusion``
turns them into store-level tracks, published as one ``TrackBatch`` with the
ids that ended. A camera missing from a frame set contributes nothing this
time (its tracks coast at store level); an unknown camera id is refused.

The store file's ``devices.positioning`` list must name ``device_id``
(``ceiling-tracker`` by default) for the brain to accept the batches.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from iot.bus import Transport, publish
from iot.payloads import TrackBatch, TrackPoint
from iot.store import Camera, Store
from vision.appearance import describe_person
from vision.detections import Detections
from vision.floor import CameraObservation, FloorFusion, FloorSettings, FloorUpdate, project_boxes
from vision.tracking import Tracker, TrackerSettings

__all__ = ["CeilingSettings", "CeilingTracker", "LookOf", "Looks", "to_track_batch"]

log = logging.getLogger(__name__)

# (camera id, tracked boxes (K, 4) xyxy) -> each person's look (None where none), K of them
LookOf = Callable[[str, np.ndarray], "list[np.ndarray | None]"]


# a frame set -> its LookOf: the colour histogram (default) or a re-id model (vision.reid)
Looks = Callable[[Mapping[str, np.ndarray]], LookOf]


def looks_from_frames(frames: Mapping[str, np.ndarray]) -> LookOf:
    """Describe each tracked box from the camera's own frame (``vision.appearance``)."""

    def look_of(camera_id: str, xyxy: np.ndarray) -> list[np.ndarray | None]:
        frame = frames.get(camera_id)
        if frame is None:
            return [None] * len(xyxy)
        return [describe_person(frame, box) for box in xyxy]

    return look_of


class CeilingSettings(BaseModel):
    """Settings of the ceiling-tracking service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_id: str = Field(
        default="ceiling-tracker",
        pattern=r"^[A-Za-z0-9._:@/-]+$",
        description="Device id on the bus; must be listed in the store's devices.positioning.",
    )
    person_class_id: int = Field(default=0, ge=0, description="Detector class id of a person.")
    camera_tracker: TrackerSettings = Field(
        default_factory=lambda: TrackerSettings(
            high_score=0.4, new_track_score=0.6, min_hits=2, max_age_frames=30
        ),
        description="Per-camera tracker settings (max_age_frames is scaled to the camera FPS).",
    )
    floor: FloorSettings = Field(
        default_factory=FloorSettings, description="Projection and fusion settings."
    )


def to_track_batch(update: FloorUpdate, device_id: str, batch_no: int) -> TrackBatch:
    """The bus payload of one fusion step."""
    return TrackBatch(
        id=f"{device_id}:{batch_no}:{round(update.time_s * 1000)}",
        event_time_s=update.time_s,
        device_id=device_id,
        tracks=[
            TrackPoint(
                track_id=t.track_id,
                x_m=t.x_m,
                y_m=t.y_m,
                confidence=t.confidence,
                look=_wire_look(t.look),
            )
            for t in update.tracks
        ],
        ended=list(update.ended),
    )


def _wire_look(look: np.ndarray | None) -> list[float] | None:
    """A look for the bus: rounded (3 decimals carry what a cosine needs), or None."""
    if look is None or look.size < 4:
        return None
    return [round(float(v), 3) for v in np.clip(look, -1.0, 1.0)]


class CeilingTracker:
    """Per-camera trackers plus floor fusion for the store's ceiling cameras."""

    def __init__(
        self,
        store: Store,
        transport: Transport | None = None,
        settings: CeilingSettings | None = None,
        looks: Looks | None = None,
    ) -> None:
        self.store = store
        self.looks = looks or looks_from_frames  # the colour histogram unless told otherwise
        self.transport = transport
        self.settings = settings or CeilingSettings()
        self.cameras: dict[str, Camera] = {
            c.id: c for c in store.devices.cameras if c.kind == "ceiling"
        }
        if not self.cameras:
            raise ValueError(
                f"store {store.store_id!r} declares no ceiling cameras; "
                "add them under devices.cameras with kind: ceiling"
            )
        if self.settings.device_id not in store.devices.positioning:
            log.warning(
                "device id %s is not in the store's devices.positioning %s; "
                "the brain will reject its track batches",
                self.settings.device_id,
                store.devices.positioning,
            )
        self.trackers = {
            cid: Tracker(self.settings.camera_tracker, frame_rate_hz=c.fps)
            for cid, c in self.cameras.items()
        }
        self.fusion = FloorFusion(store, self.settings.floor)
        self.batches = 0

    def observe(
        self,
        detections: Mapping[str, Detections],
        frames: Mapping[str, np.ndarray] | None = None,
        look_of: LookOf | None = None,
    ) -> list[CameraObservation]:
        """Run each camera's tracker on its detections; the floor points of its tracks.

        With the ``frames`` (or a ``look_of`` that stands in for them, such as
        a recording's), each observation also carries the person's look
        (``vision.appearance``) for re-identification in the floor fusion.
        """
        unknown = sorted(set(detections) - set(self.cameras))
        if unknown:
            raise ValueError(
                f"unknown ceiling camera id(s) {unknown}; known: {sorted(self.cameras)}"
            )
        if look_of is None and frames is not None:
            look_of = self.looks(frames)
        out: list[CameraObservation] = []
        for cid in sorted(detections):
            dets = detections[cid].with_class([self.settings.person_class_id])
            tracks = [t for t in self.trackers[cid].update(dets) if t.frames_since_hit == 0]
            if not tracks:
                continue
            boxes = np.array([t.xyxy for t in tracks])
            xy, sigma = project_boxes(self.cameras[cid], boxes, self.settings.floor)
            looks = look_of(cid, boxes) if look_of is not None else [None] * len(tracks)
            for t, (x, y), s, look in zip(tracks, xy.tolist(), sigma.tolist(), looks, strict=True):
                if not (math.isnan(x) or math.isnan(y)):  # NaN: the ray missed the plane
                    out.append(CameraObservation(cid, t.track_id, x, y, s, look))
        return out

    def step(
        self,
        time_s: float,
        detections: Mapping[str, Detections],
        frames: Mapping[str, np.ndarray] | None = None,
        look_of: LookOf | None = None,
    ) -> FloorUpdate:
        """One frame set at event time ``time_s``, without publishing."""
        return self.fusion.update(time_s, self.observe(detections, frames, look_of))

    def process(
        self,
        time_s: float,
        detections: Mapping[str, Detections],
        frames: Mapping[str, np.ndarray] | None = None,
        look_of: LookOf | None = None,
    ) -> TrackBatch:
        """One frame set: track, fuse, publish (when a transport is given) and return the batch."""
        update = self.step(time_s, detections, frames, look_of)
        self.batches += 1
        batch = to_track_batch(update, self.settings.device_id, self.batches)
        if self.transport is not None:
            publish(self.transport, self.store.store_id, batch)
        return batch
