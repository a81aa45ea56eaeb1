"""Evidence snapshots for loss-prevention cases, with heads and faces blurred at capture.

Privacy (REFERENCE, loss prevention): keep foot-points, not faces. The edge
keeps the last few seconds of frames in memory only; when a case asks for
pictures (``EvidenceRequest``) the kept frame nearest the moment is blurred,
then written as a JPEG and announced as a ``Snapshot``. No unblurred frame is
ever written (tests/unit/vision/test_snapshot_privacy.py checks every write),
and no file outlives its use: store operations delete a case's snapshots with
its evidence, and files no case holds, by retention (``checkout.evidence_files``).
:func:`blur_people` hides heads three ways, as each alone can miss:

1. geometry: each tracked floor point's head (``head_low_m`` to ``head_high_m``
   up) is projected through the camera and a disc as wide as a head at that
   depth, plus the track's position error, is blurred;
2. detections: each person box where its head is for the view (top down: the
   end away from the nadir; oblique: the top of the box);
3. OpenCV's Haar frontal-face cascade, as a second guard.

A region is averaged down to a few cells and smoothed back up, so only a
handful of colours survive per head, whatever its size.

>>> from iot.store import Camera
>>> cam = Camera(id="c", kind="shelf", position_m=(0.0, 0.0, 2.0), pitch_deg=80)
>>> img = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
>>> box = np.array([[300, 100, 360, 300]], dtype=np.float32)
>>> out, n = blur_people(img, cam, box, [], settings=BlurSettings(face_detector=False))
>>> n, bool((out[100:160, 300:360] != img[100:160, 300:360]).mean() > 0.9)
(1, True)
>>> bool((out[200:] == img[200:]).all() and (out[:, :290] == img[:, :290]).all())
True
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iot.bus import Inbox, Message, Transport, publish
from iot.cameras import camera_rotation, world_to_pixel
from iot.payloads import EvidenceRequest, Snapshot
from iot.store import Camera, Store
from iot.topics import TOPICS
from vision.detections import Detections

__all__ = ["BlurSettings", "EvidenceSnapshotter", "SnapshotSettings", "blur_people"]

log = logging.getLogger(__name__)

FloorPoints = Sequence[tuple[float, float]]
FACE_CASCADE = "haarcascade_frontalface_default.xml"
_MAX_PX = 30_000.0  # drawing coordinates are clamped to this, px
_FLOOR_RECORDS = 1024  # floor-point steps remembered, at most (a few kB each)


def _f(default: object, description: str, **bounds: Any) -> Any:
    """A settings field: the default, what it means (with its unit), and its bounds."""
    return Field(default=default, description=description, **bounds)


class BlurSettings(BaseModel):
    """Where heads are looked for and how hard they are blurred."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    head_low_m: float = _f(1.45, "Lowest head centre above the floor, m.", ge=0.5, le=2.5)
    head_high_m: float = _f(1.85, "Highest head top above the floor, m.", ge=0.5, le=2.5)
    head_radius_m: float = _f(0.13, "Half-width of a head, m.", gt=0, le=0.5)
    position_margin_m: float = _f(0.25, "Floor-position error of a track, m.", ge=0, le=2)
    min_depth_m: float = _f(0.2, "Heads nearer the lens are not projected, m.", gt=0)
    person_class_id: int = _f(0, "Detector class id of a person.", ge=0)
    oblique_pitch_deg: float = _f(35.0, "Views tilted more see people upright, deg.", ge=0)
    head_box_share: float = _f(1.2, "Top-down: head disc width / box short side.", gt=0, le=2)
    upper_share: float = _f(0.35, "Oblique: top share of a person box blurred.", gt=0, le=1)
    cells_across: int = _f(5, "Cells a blurred region keeps across its long side.", ge=1, le=32)
    min_cell_px: int = _f(6, "Smallest blur cell, px.", ge=2, le=64)
    face_detector: bool = _f(True, "Run the Haar frontal-face cascade as a second guard.")
    face_min_px: int = _f(20, "Smallest face the cascade looks for, px.", ge=8)
    face_margin: float = _f(0.3, "A found face's box grows by this share each side.", ge=0, le=2)

    @model_validator(mode="after")
    def _ordered(self) -> BlurSettings:
        if self.head_high_m < self.head_low_m:
            raise ValueError(f"head_high_m {self.head_high_m} < head_low_m {self.head_low_m}")
        return self


class SnapshotSettings(BaseModel):
    """How much the snapshotter keeps in memory and how it answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_s: float = _f(8.0, "Event time of frames kept per camera, s.", gt=0, le=120)
    keep_frames: int = _f(16, "Most frames kept per camera.", ge=1, le=600)
    keep_every_s: float = _f(0.5, "Least event time between two kept frames, s.", ge=0, le=10)
    max_offset_s: float = _f(1.0, "Farthest a sent frame may be from the moment, s.", gt=0)
    wait_s: float = _f(5.0, "A moment at most this far past the newest frame waits, s.", ge=0)
    floor_match_s: float = _f(0.4, "Floor points this near a frame's time are blurred, s.", ge=0)
    max_cameras: int = _f(3, "Cameras answering one request, at most.", ge=1, le=32)
    max_pending: int = _f(64, "Requests waiting for their moment, at most.", ge=0, le=10_000)
    jpeg_quality: int = _f(85, "JPEG quality of a snapshot.", ge=30, le=100)
    blur: BlurSettings = Field(default_factory=BlurSettings, description="Head and face blur.")


# ------------------------------------------------------------------ blurring


def blur_people(
    image: np.ndarray,
    cam: Camera,
    boxes_px: np.ndarray,
    floor_points_m: Iterable[tuple[float, float]],
    *,
    settings: BlurSettings,
) -> tuple[np.ndarray, int]:
    """A copy of ``image`` with every head and face blurred, and how many regions were."""
    shape = image.shape[:2]
    boxes = np.asarray(boxes_px, dtype=float).reshape(-1, 4)
    masks = _floor_heads(cam, floor_points_m, settings, shape) + _box_heads(
        cam, boxes, settings, shape
    )
    if settings.face_detector:  # on the raw frame: a half-blurred face is harder to find
        masks += _found_faces(image, settings)
    out = image.copy()
    return out, sum(_obscure(out, m, settings) for m in masks)


def _pt(u: float, v: float) -> tuple[int, int]:
    # OpenCV draws in int32 with a sub-pixel shift: far-off points are clamped, not wrapped
    return round(min(max(u, -_MAX_PX), _MAX_PX)), round(min(max(v, -_MAX_PX), _MAX_PX))


def _floor_heads(
    cam: Camera, points: Iterable[tuple[float, float]], s: BlurSettings, shape: tuple[int, ...]
) -> list[np.ndarray]:
    """Per floor point, a capsule covering its head from the lowest to the highest height."""
    pts = np.asarray([p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])], float)
    if not len(pts):
        return []
    heights = np.tile([s.head_low_m, s.head_high_m], len(pts))
    world = np.column_stack([np.repeat(pts, 2, axis=0), heights])
    uv, _ = world_to_pixel(cam, world)
    depth_m = ((world - np.asarray(cam.position_m)) @ camera_rotation(cam))[:, 2]
    out = []
    for k in range(0, len(world), 2):
        near_m = float(depth_m[k : k + 2].min())
        if near_m < s.min_depth_m:
            continue  # behind the lens or touching it: this camera cannot see that head
        radius = round(min(cam.focal_px * (s.head_radius_m + s.position_margin_m) / near_m, 1e4))
        a, b = _pt(*uv[k]), _pt(*uv[k + 1])
        mask = np.zeros(shape, np.uint8)
        cv2.line(mask, a, b, 255, thickness=max(1, 2 * radius))
        cv2.circle(mask, a, radius, 255, -1)
        cv2.circle(mask, b, radius, 255, -1)
        out.append(mask)
    return out


def _box_heads(
    cam: Camera, boxes: np.ndarray, s: BlurSettings, shape: tuple[int, ...]
) -> list[np.ndarray]:
    """Where the head is in each person box, for this camera's view."""
    nadir, ahead = world_to_pixel(cam, np.array([[*cam.position_m[:2], 0.0]]))
    top_down = cam.pitch_deg < s.oblique_pitch_deg and bool(ahead[0])
    out = []
    for x0, y0, x1, y1 in boxes:
        mask = np.zeros(shape, np.uint8)
        out.append(mask)
        if not top_down:  # people stand upright in the view: the head is the box's top
            cv2.rectangle(mask, _pt(x0, y0), _pt(x1, y0 + s.upper_share * (y1 - y0)), 255, -1)
            continue
        # from above a body leans away from the nadir, the head at its outer end
        w, h = x1 - x0, y1 - y0
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        r = s.head_box_share * min(w, h) / 2
        away = centre - nadir[0]
        norm = float(np.hypot(*away))
        if norm > 1e-6:
            d = away / norm
            centre += d * max((abs(d[0]) * w + abs(d[1]) * h) / 2 - r, 0.0)
        cv2.circle(mask, _pt(*centre), max(1, round(r)), 255, -1)
    return out


@cache
def _face_cascade() -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, FACE_CASCADE)  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(
            f"could not load the face cascade {path!r}; install opencv-python-headless<5 "
            "(it ships cv2.data.haarcascades) or set BlurSettings(face_detector=False)"
        )
    return cascade


def _found_faces(image: np.ndarray, s: BlurSettings) -> list[np.ndarray]:
    """The second guard: whatever the frontal-face cascade finds, grown by a margin."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # few neighbours: a false face costs a blurred patch, a missed one costs privacy
    found = _face_cascade().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=3, minSize=(s.face_min_px, s.face_min_px)
    )
    out = []
    for x, y, w, h in np.asarray(found, dtype=float).reshape(-1, 4):
        mx, my = s.face_margin * w, s.face_margin * h
        mask = np.zeros(grey.shape, np.uint8)
        cv2.rectangle(mask, _pt(x - mx, y - my), _pt(x + w + mx, y + h + my), 255, -1)
        out.append(mask)
    return out


def _obscure(image: np.ndarray, mask: np.ndarray, s: BlurSettings) -> bool:
    """Blur ``image`` in place under ``mask``; False when the mask misses the image."""
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return False
    roi = image[y : y + h, x : x + w]
    # a few cells across the whole region, whatever its size: a close-up face keeps no detail
    cell = max(float(s.min_cell_px), max(w, h) / s.cells_across)
    size = (max(1, round(w / cell)), max(1, round(h / cell)))
    small = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    inside = mask[y : y + h, x : x + w] > 0
    roi[inside] = coarse[inside]
    return True


# ------------------------------------------------------------------ the service


@dataclass(frozen=True)
class _Kept:
    """One frame held in memory (never written unblurred) and the person boxes seen in it."""

    time_s: float
    image: np.ndarray
    boxes_px: np.ndarray


class EvidenceSnapshotter:
    """Keeps the last seconds of frames; answers evidence requests with blurred JPEGs.

    Single-threaded like every service: where the bus delivers on its own
    thread, run it behind an ``iot.bus.SerialTransport`` and ``submit`` the
    ``observe`` calls to it.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        out_dir: str | Path,
        *,
        now: Callable[[], float],
        settings: SnapshotSettings | None = None,
        service_id: str = "snapshots",
    ) -> None:
        self.store = store
        self.transport = transport
        self.out_dir = Path(out_dir)
        self.now = now
        self.settings = settings or SnapshotSettings()
        self.service_id = service_id
        self.cameras = {c.id: c for c in store.devices.cameras}
        if self.settings.blur.face_detector:
            _face_cascade()  # fail at start, not at the first case
        self.inbox: Inbox | None = None
        self.counts: Counter[str] = Counter()
        self._kept: dict[str, deque[_Kept]] = {}
        self._floor: deque[tuple[float, np.ndarray]] = deque(maxlen=_FLOOR_RECORDS)
        self._pending: list[tuple[EvidenceRequest, str]] = []

    def start(self) -> None:
        """Listen for evidence requests from store operations."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.inbox = Inbox(
            self.transport,
            self.store.store_id,
            service_kind="camera",
            service_id=self.service_id,
            now=self.now,
            known_devices=self.store.device_ids() | {"shrink", "ops", "casebook"},
        )
        self.inbox.on(TOPICS["evidence_requests"], self._on_request)

    def stats(self) -> dict[str, int]:
        """Counters: frames kept, requests, snapshots, misses and refusals by reason."""
        out = dict(self.counts)
        out["pending"] = len(self._pending)
        out["frames_held"] = sum(len(q) for q in self._kept.values())
        if self.inbox is not None:
            out["dead_letters"] = sum(self.inbox.rejected.values())
        return out

    def observe(
        self,
        time_s: float,
        frames: Mapping[str, np.ndarray | None],
        detections: Mapping[str, Detections],
        floor_points: FloorPoints | None = None,
    ) -> None:
        """One edge step: keep what the settings allow, answer the requests now due.

        ``floor_points``: people's floor positions at ``time_s`` (the ceiling
        tracks); None when the caller does not know them (shelf cameras).
        """
        if not math.isfinite(time_s):
            self._miss("bad_time", "frame time %r is not finite", time_s)
            return
        if floor_points is not None:
            try:
                pts = np.asarray(list(floor_points), dtype=float).reshape(-1, 2)
                self._floor.append((time_s, pts[np.isfinite(pts).all(axis=1)]))
            except (TypeError, ValueError) as exc:
                self._miss("bad_floor_points", "floor points at %.3f: %s", time_s, exc)
        horizon_s = time_s - self.settings.keep_s - self.settings.floor_match_s
        while self._floor and self._floor[0][0] < horizon_s:
            self._floor.popleft()
        for cid in sorted(frames):
            self._keep(cid, time_s, frames[cid], detections.get(cid))
        self._resolve_pending(time_s)

    def _keep(self, cid: str, time_s: float, image: object, dets: Detections | None) -> None:
        cam = self.cameras.get(cid)
        if cam is None or not isinstance(image, np.ndarray):
            self._miss("bad_frames", "frame from %r is not a camera image; ignored", cid)
            return
        if image.dtype != np.uint8 or image.shape != (cam.height_px, cam.width_px, 3):
            self._miss("bad_frames", "frame from %s is %s %s", cid, image.dtype, image.shape)
            return
        queue = self._kept.setdefault(cid, deque(maxlen=self.settings.keep_frames))
        if queue and time_s <= queue[-1].time_s:
            self._miss("late_frames", "frame from %s at %.3f is not after the last", cid, time_s)
            return
        while queue and queue[0].time_s < time_s - self.settings.keep_s:
            queue.popleft()
        wanted = any(c == cid and r.at_s <= time_s for r, c in self._pending)
        if queue and time_s - queue[-1].time_s < self.settings.keep_every_s and not wanted:
            return  # too close to the last kept frame to be worth its memory
        boxes = np.empty((0, 4), np.float32)
        if isinstance(dets, Detections):
            boxes = dets.xyxy[dets.class_id == self.settings.blur.person_class_id]
        queue.append(_Kept(time_s, image.copy(), boxes.copy()))  # sources may reuse buffers
        self.counts["frames_kept"] += 1

    def _miss(self, reason: str, msg: str, *args: object) -> None:
        """Count a refusal or a request left unanswered; log the first few of each reason."""
        self.counts[reason] += 1
        if self.counts[reason] <= 10 or self.counts[reason] % 1000 == 0:
            log.warning("%s (%s): %s", self.service_id, reason, msg % args)

    def _on_request(self, msg: Message) -> None:
        req = msg.payload
        assert isinstance(req, EvidenceRequest)
        self.counts["requests"] += 1
        cams = self._cameras_for(req)
        if not cams:
            self._miss("not_held", "case %s: no camera holds frames there", req.case_id)
        for cid in cams:
            newest_s = self._kept[cid][-1].time_s
            if not newest_s < req.at_s <= newest_s + self.settings.wait_s:
                self._answer(req, cid)
            elif len(self._pending) < self.settings.max_pending:
                self._pending.append((req, cid))  # just ahead: the next frames will show it
            else:
                self._miss("not_held", "case %s: too many requests waiting", req.case_id)

    def _resolve_pending(self, time_s: float) -> None:
        """Answer the waiting requests whose moment a kept frame has reached (or never will)."""
        waiting, self._pending = self._pending, []  # an answer may bring a new request
        still = []
        for req, cid in waiting:
            reached = self._kept[cid][-1].time_s >= req.at_s
            if reached or time_s > req.at_s + self.settings.max_offset_s:
                self._answer(req, cid)
            else:
                still.append((req, cid))
        self._pending = still + self._pending

    def _cameras_for(self, req: EvidenceRequest) -> list[str]:
        """Cameras holding frames that show the case: the plate's shelf camera first, then
        the ceiling cameras that see the place (nearest their image centre first), else the
        ceiling camera nearest it."""
        held = [c for c in self.cameras.values() if self._kept.get(c.id)]
        chosen: list[Camera] = []
        point = (req.x_m, req.y_m) if req.x_m is not None and req.y_m is not None else None
        if req.plate_id is not None and req.plate_id not in self.store.plates():
            self._miss("unknown_plate", "case %s: unknown plate %r", req.case_id, req.plate_id)
        elif req.plate_id is not None:
            gondola, shelf, _ = self.store.plate(req.plate_id)
            (x0, y), (x1, _) = self.store.plate_front_m(req.plate_id)
            front = ((x0 + x1) / 2, y, shelf.height_m + 0.1)
            facing = [c for c in held if c.kind == "shelf" and c.gondola == gondola.id]
            chosen += [c for c in facing if _off_centre_px(c, front) is not None]
            point = point or ((x0 + x1) / 2, y)
        ceiling = [c for c in held if c.kind == "ceiling"]
        if point is not None and ceiling:
            seen = [
                (d, c.id) for c in ceiling if (d := _off_centre_px(c, (*point, 0.0))) is not None
            ]
            nearest = min(ceiling, key=lambda c: (math.dist(c.position_m[:2], point), c.id))
            chosen += [self.cameras[cid] for _, cid in sorted(seen)] if seen else [nearest]
        return [c.id for c in chosen][: self.settings.max_cameras]

    def _answer(self, req: EvidenceRequest, cid: str) -> None:
        """Blur the kept frame nearest the moment, write it, announce it; or count a miss."""
        best = min(self._kept[cid], key=lambda k: (abs(k.time_s - req.at_s), k.time_s))
        if abs(best.time_s - req.at_s) > self.settings.max_offset_s:
            self._miss("not_held", "case %s: %s has no frame near %.3f", req.case_id, cid, req.at_s)
            return
        window_s = self.settings.floor_match_s
        points = [
            tuple(p) for t, pts in self._floor if abs(t - best.time_s) <= window_s for p in pts
        ]
        if req.x_m is not None and req.y_m is not None:
            points.append((req.x_m, req.y_m))  # where the case happened: someone stood there
        cam = self.cameras[cid]
        image, regions = blur_people(
            best.image, cam, best.boxes_px, points, settings=self.settings.blur
        )
        path = self.out_dir / _file_name(req.case_id, cid, best.time_s)
        try:
            shot = Snapshot(
                id=_event_id(self.service_id, req.case_id, cid, best.time_s),
                event_time_s=best.time_s,
                device_id=cid,
                case_id=req.case_id,
                camera_id=cid,
                frame_s=best.time_s,
                image_path=str(path),
                regions_blurred=min(regions, 1000),
            )
            _write_jpeg(path, image, self.settings.jpeg_quality)
        except (ValidationError, OSError) as exc:
            self._miss("write_failed", "case %s: snapshot from %s: %s", req.case_id, cid, exc)
            return
        publish(self.transport, self.store.store_id, shot)
        self.counts["snapshots"] += 1
        self.counts["regions_blurred"] += regions


def _off_centre_px(cam: Camera, point_m: tuple[float, float, float]) -> float | None:
    """How far from the image centre a world point shows, px; None when it is not in view."""
    uv, ahead = world_to_pixel(cam, np.array([point_m]))
    u, v = uv[0]
    if not ahead[0] or not (0 <= u < cam.width_px and 0 <= v < cam.height_px):
        return None
    return float(np.hypot(u - cam.width_px / 2, v - cam.height_px / 2))


def _safe(name: str) -> str:
    """A file-name-safe form of an id; a hash keeps ids that differ in odd characters apart."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if clean == name and not name.startswith("."):
        return name
    return f"{clean}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _file_name(case_id: str, camera_id: str, frame_s: float) -> str:
    """``<case>_<camera>_<frame ms>.jpg``: the evidence retention (``checkout.evidence_files``)
    reads the case and the frame's event time back from it; keep the two in step."""
    return f"{_safe(case_id)}_{_safe(camera_id)}_{round(frame_s * 1000)}.jpg"


def _event_id(service_id: str, case_id: str, camera_id: str, frame_s: float) -> str:
    """Deterministic: the same frame for the same case is the same event."""
    plain = f"{service_id}:{case_id}:{camera_id}:{round(frame_s * 1000)}"
    if len(plain) > 128:  # the bus caps ids at 128 characters
        plain = f"{service_id[:80]}:{hashlib.sha1(plain.encode()).hexdigest()}"
    return plain


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Write atomically: a reader never sees half a file."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"JPEG encoding failed for {path.name}")
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)
