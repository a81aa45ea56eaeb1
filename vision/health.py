"""Camera health: is a camera's stream worth tracking on?

One :class:`CameraHealth` per camera is fed every frame (``observe``) or the
absence of one (``missing``) at the frame set's event time. It recognises

- a *stalled* camera: no frame for ``stall_s`` seconds of event time;
- a *corrupt* frame: None, not an array, wrong dtype, wrong number of channels;
- a *resolution* change: a size other than the calibrated one (the
  calibration, hence every floor position, would be wrong);
- a *black* frame (mean grey below ``black_mean_max``) and a *flat* one
  (grey spread below ``flat_std_max``: a covered lens, a grey test card);
- a *frozen* stream: ``frozen_frames`` byte-identical frames in a row (a real
  sensor never repeats itself exactly; a hung encoder does).

A bad frame turns the camera unhealthy at once; it becomes healthy again after
``recover_frames`` good frames in a row, so a flickering camera does not
flap. Each transition is a :class:`HealthChange`, logged, counted and, when a
transport is given, published as a retained ``DeviceStatus`` for the camera
(``offline`` while unhealthy; the reason is in the log, because the payload
has no field for it). Nothing here raises on bad input: a bad frame is data.

>>> h = CameraHealth("cam-1", HealthSettings(sample_step_px=1), expected_size_px=(4, 3))
>>> scene = (np.arange(36, dtype=np.uint8) * 5).reshape(3, 4, 3)
>>> h.observe(1e9, scene).usable, h.state
(True, 'healthy')
>>> check = h.observe(1e9 + 0.1, np.zeros((3, 4, 3), np.uint8))
>>> check.usable, h.state, check.reason
(False, 'unhealthy', 'black: mean grey 0.0 below 10.0')
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from iot.bus import Transport, publish
from iot.payloads import DeviceStatus
from iot.store import Store

__all__ = [
    "CameraHealth",
    "FrameCheck",
    "HealthChange",
    "HealthSettings",
    "HealthState",
    "cameras_health",
]

log = logging.getLogger(__name__)

HealthState = Literal["unknown", "healthy", "unhealthy"]
_EPOCH_FLOOR_S = 946_684_800.0  # the payloads' lowest valid event time


class HealthSettings(BaseModel):
    """When a camera counts as unhealthy, and when it is trusted again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stall_s: float = Field(
        default=2.0,
        gt=0.0,
        description="seconds of event time without a frame before a camera counts as stalled",
    )
    black_mean_max: float = Field(
        default=10.0,
        ge=0.0,
        le=255.0,
        description="a frame whose mean grey level (0-255) is below this is black",
    )
    flat_std_max: float = Field(
        default=2.0,
        ge=0.0,
        le=255.0,
        description="a frame whose grey standard deviation is "
        "below this is flat (covered lens, test card)",
    )
    frozen_frames: int = Field(
        default=20,
        ge=2,
        description="this many byte-identical frames in a row mark the stream frozen",
    )
    recover_frames: int = Field(
        default=3,
        ge=1,
        description="good frames in a row needed before an unhealthy camera is trusted again",
    )
    sample_step_px: int = Field(
        default=4,
        ge=1,
        description="brightness statistics read every n-th pixel per side, for speed",
    )


@dataclass(frozen=True)
class HealthChange:
    """A camera went healthy or unhealthy at ``time_s`` (event time), and why."""

    camera_id: str
    time_s: float
    healthy: bool
    reason: str


@dataclass(frozen=True)
class FrameCheck:
    """The verdict on one frame: ``usable`` means the pipeline may run on it."""

    usable: bool
    reason: str  # "" for a good frame
    change: HealthChange | None


class CameraHealth:
    """The health state machine of one camera (see the module docstring)."""

    def __init__(
        self,
        camera_id: str,
        settings: HealthSettings | None = None,
        *,
        expected_size_px: tuple[int, int] | None = None,
        transport: Transport | None = None,
        store_id: str | None = None,
    ) -> None:
        if transport is not None and not store_id:
            raise ValueError(f"camera {camera_id}: a transport needs the store_id to publish on")
        self.camera_id = camera_id
        self.settings = settings or HealthSettings()
        # (width, height); None: learned from the first frame that decodes
        self.expected_size_px = expected_size_px
        self.transport = transport
        self.store_id = store_id
        self.state: HealthState = "unknown"
        self.reason = "no frame yet"
        self.counts: Counter[str] = Counter()
        self.changes: list[HealthChange] = []
        self._first_s: float | None = None
        self._last_frame_s: float | None = None
        self._good_run = 0
        self._digest: bytes | None = None
        self._same_run = 0

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"

    # ------------------------------------------------------------ inputs

    def observe(self, time_s: float, image: object) -> FrameCheck:
        """Check one frame taken at event time ``time_s``."""
        self.counts["frames"] += 1
        if self._first_s is None:
            self._first_s = time_s
        self._last_frame_s = time_s  # a corrupt frame still proves the camera is alive
        problem = self._problem(image)
        change: HealthChange | None = None
        if problem:
            self.counts[problem.split(":", 1)[0]] += 1
            self._good_run = 0
            change = self._set_unhealthy(time_s, problem)
        else:
            self._good_run += 1
            trusted = self.state == "unknown" or self._good_run >= self.settings.recover_frames
            if self.state != "healthy" and trusted:
                change = self._set(time_s, True, "frames good")
        return FrameCheck(usable=not problem and self.healthy, reason=problem, change=change)

    def missing(self, time_s: float) -> HealthChange | None:
        """No frame from this camera at event time ``time_s``; stalled after ``stall_s``."""
        self.counts["missing"] += 1
        if self._first_s is None:
            self._first_s = time_s
        since = self._last_frame_s if self._last_frame_s is not None else self._first_s
        if time_s - since < self.settings.stall_s:
            return None
        self._good_run = 0
        if self.reason.startswith("stalled") and self.state == "unhealthy":
            return None
        self.counts["stalled"] += 1
        return self._set_unhealthy(time_s, f"stalled: no frame for {time_s - since:.1f} s")

    # ------------------------------------------------------------ checks

    def _problem(self, image: object) -> str:
        """Why ``image`` is bad, or "" when it is a good frame."""
        if image is None:
            return "corrupt: no image (decode failed)"
        if not isinstance(image, np.ndarray):
            return f"corrupt: a {type(image).__name__}, not a numpy array"
        if image.dtype != np.uint8:
            return f"corrupt: dtype {image.dtype}, expected uint8"
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            return f"corrupt: shape {image.shape}, expected (H, W, 3) or (H, W)"
        if image.size == 0:
            return f"corrupt: empty image {image.shape}"
        size = (int(image.shape[1]), int(image.shape[0]))
        if self.expected_size_px is None:
            self.expected_size_px = size
        if size != self.expected_size_px:
            w, h = self.expected_size_px
            return f"resolution: {size[0]}x{size[1]}, expected {w}x{h}"
        step = self.settings.sample_step_px
        sample = image[::step, ::step].astype(np.float32)
        grey = sample.mean(axis=2) if sample.ndim == 3 else sample
        mean, std = float(grey.mean()), float(grey.std())
        if mean < self.settings.black_mean_max:
            return f"black: mean grey {mean:.1f} below {self.settings.black_mean_max:.1f}"
        if std < self.settings.flat_std_max:
            return f"flat: grey spread {std:.2f} below {self.settings.flat_std_max:.2f}"
        digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()
        self._same_run = self._same_run + 1 if digest == self._digest else 1
        self._digest = digest
        if self._same_run >= self.settings.frozen_frames:
            return f"frozen: {self._same_run} identical frames"
        return ""

    # ------------------------------------------------------------ transitions

    def _set_unhealthy(self, time_s: float, reason: str) -> HealthChange | None:
        if self.state == "unhealthy":
            if reason.split(":", 1)[0] != self.reason.split(":", 1)[0]:
                log.info("camera %s still unhealthy, now %s", self.camera_id, reason)
            self.reason = reason
            return None
        return self._set(time_s, False, reason)

    def _set(self, time_s: float, healthy: bool, reason: str) -> HealthChange:
        self.state = "healthy" if healthy else "unhealthy"
        self.reason = reason
        change = HealthChange(self.camera_id, time_s, healthy, reason)
        self.changes.append(change)
        self.counts["to_healthy" if healthy else "to_unhealthy"] += 1
        if healthy:
            log.info("camera %s healthy at %.3f (%s)", self.camera_id, time_s, reason)
        else:
            log.warning("camera %s unhealthy at %.3f: %s", self.camera_id, time_s, reason)
        self._publish(change)
        return change

    def _publish(self, change: HealthChange) -> None:
        if self.transport is None or self.store_id is None:
            return
        n = len(self.changes)
        status = DeviceStatus(
            id=f"{self.camera_id}.health.{round(change.time_s * 1000)}.{n}",
            event_time_s=max(change.time_s, _EPOCH_FLOOR_S),
            device_id=self.camera_id,
            state="online" if change.healthy else "offline",
        )
        publish(self.transport, self.store_id, status, kind="camera")


def cameras_health(
    store: Store,
    transport: Transport | None = None,
    settings: HealthSettings | None = None,
    *,
    kind: str | None = "ceiling",
) -> dict[str, CameraHealth]:
    """A :class:`CameraHealth` for each of the store's cameras of ``kind`` (None: all).

    Each expects the calibrated size from the store file.
    """
    return {
        c.id: CameraHealth(
            c.id,
            settings,
            expected_size_px=(c.width_px, c.height_px),
            transport=transport,
            store_id=store.store_id,
        )
        for c in store.devices.cameras
        if kind is None or c.kind == kind
    }
