"""The shelf-camera half of the edge: frames in, ``Interaction`` events on the bus out.

For each time step (a frame per shelf camera at one event time):

1. camera health (``vision.health``): a stalled, black, corrupt or resized
   camera is marked unhealthy on the bus and contributes nothing; its open
   hand episodes are dropped, because an episode cut in the middle cannot say
   what the hand held coming out (the brain then falls back to the shelves
   and flags the visit, see ``checkout``);
2. the motion gate: a frame that did not change is not sent to the detector
   and the camera's last detections stand for it (an empty shelf stays empty;
   a hand that holds still is still there);
3. one batched detector call (classes ``hand`` and ``product``);
4. per camera, ``ShelfInteractionTracker`` turns the detections into episodes;
   closed episodes are published on ``interactions``.

Frames are colour-normalised once here (the detector's manifest names the
same normalisation), so product crops reach the SKU classifier balanced.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Mapping, Sequence

import numpy as np

from iot.bus import Transport, publish
from iot.metrics import CAMERA_FPS
from iot.payloads import Interaction
from iot.store import Store
from vision.colour import normalise_colour
from vision.detections import Detections
from vision.edge import Detector
from vision.health import CameraHealth, HealthSettings, cameras_health
from vision.motion import MotionGate, MotionSettings
from vision.shelf_interactions import (
    Classify,
    InteractionSettings,
    ShelfInteractionTracker,
    ZoneBoxes,
)

__all__ = ["RECENT_EVENTS", "ShelfVisionPipeline"]

RECENT_EVENTS = 1000

log = logging.getLogger(__name__)


class ShelfVisionPipeline:
    """Health, motion gate, batched detector and interaction episodes for shelf cameras."""

    def __init__(
        self,
        store: Store,
        detector: Detector,
        classify: Classify | None,
        zones: Mapping[str, ZoneBoxes],
        transport: Transport | None,
        *,
        colour: str = "grey_world",
        settings: InteractionSettings | None = None,
        motion: MotionSettings | None = None,
        health: HealthSettings | None = None,
        motion_gating: bool = True,
    ) -> None:
        cameras = {c.id: c for c in store.devices.cameras if c.kind == "shelf"}
        unknown = sorted(set(zones) - set(cameras))
        if unknown:
            raise ValueError(f"plate zones given for unknown shelf camera(s) {unknown}")
        self.store = store
        self.detector = detector
        self.transport = transport
        self.colour = colour
        self.motion_gating = motion_gating
        self.camera_ids = sorted(zones)
        self.trackers = {
            cid: ShelfInteractionTracker(store, cameras[cid], zones[cid], classify, settings)
            for cid in self.camera_ids
        }
        self.health: dict[str, CameraHealth] = {
            cid: h
            for cid, h in cameras_health(store, transport, health, kind="shelf").items()
            if cid in self.trackers
        }
        self.gates = {cid: MotionGate(motion or MotionSettings()) for cid in self.camera_ids}
        self.last: dict[str, Detections] = {}
        self.counts: Counter[str] = Counter()
        # the latest episodes, for inspection (the bus carries them all); bounded for long runs
        self.events: deque[Interaction] = deque(maxlen=RECENT_EVENTS)

    def step(self, time_s: float, frames: Mapping[str, np.ndarray | None]) -> list[Interaction]:
        """One time step over the shelf cameras; returns (and publishes) closed episodes."""
        usable = self._healthy(time_s, frames)
        CAMERA_FPS.frames(self.store.store_id, usable)  # wall-clock rate, operations only
        moving = {cid: img for cid, img in usable.items() if self._moved(cid, img)}
        self.last.update(self._detect(moving))
        out: list[Interaction] = []
        for cid, image in usable.items():
            dets = self.last.get(cid, Detections.empty())
            out += self.trackers[cid].process(time_s, image, dets)
        for ev in out:
            self._emit(ev)
        return out

    def flush(self) -> list[Interaction]:
        """Close every open episode (end of a run)."""
        out = [ev for cid in self.camera_ids for ev in self.trackers[cid].flush()]
        for ev in out:
            self._emit(ev)
        return out

    # ------------------------------------------------------------ stages

    def _healthy(
        self, time_s: float, frames: Mapping[str, np.ndarray | None]
    ) -> dict[str, np.ndarray]:
        usable: dict[str, np.ndarray] = {}
        for cid in self.camera_ids:
            health = self.health[cid]
            if cid not in frames:
                health.missing(time_s)
                continue
            image = frames[cid]
            check = health.observe(time_s, image)
            if check.usable and isinstance(image, np.ndarray):
                usable[cid] = normalise_colour(image, self.colour)
            else:
                self.counts["frames_unusable"] += 1
                self.last.pop(cid, None)
                self.gates[cid].reset()
                dropped = self.trackers[cid].episodes
                if dropped:
                    self.counts["episodes_dropped"] += len(dropped)
                    dropped.clear()
        return usable

    def _moved(self, cid: str, image: np.ndarray) -> bool:
        if not self.motion_gating:
            return True
        if self.gates[cid].update(image).detect or cid not in self.last:
            return True
        self.counts["frames_gated"] += 1
        return False

    def _detect(self, frames: Mapping[str, np.ndarray]) -> dict[str, Detections]:
        if not frames:
            return {}
        ids: Sequence[str] = list(frames)
        found = self.detector.detect([frames[c] for c in ids])
        if len(found) != len(ids):
            raise RuntimeError(
                f"the detector returned {len(found)} results for {len(ids)} frames; "
                "a detector must return one Detections per frame, in order"
            )
        self.counts["frames_detected"] += len(ids)
        return dict(zip(ids, found, strict=True))

    def _emit(self, ev: Interaction) -> None:
        self.counts[f"interactions_{ev.action}"] += 1
        self.events.append(ev)
        log.debug(
            "interaction %s %s plate %s sku %s (%.2f) %.1f-%.1f s",
            ev.device_id,
            ev.action,
            ev.plate_id,
            ev.sku,
            ev.sku_confidence,
            ev.started_s,
            ev.event_time_s,
        )
        if self.transport is not None:
            publish(self.transport, self.store.store_id, ev)
