"""Rendered ceiling cameras for the digital twin, with ground truth per frame.

``CeilingRenderer(store, seed=...)`` draws what a ceiling camera of the store
would see at an event time: the floor and gondolas (ray-cast once per camera,
see ``sim.render_scene``), then every shopper in the camera's view as a simple
3-D body projected through the camera (``sim.render_body``), far to near
(painter's algorithm), each part hidden where a gondola is nearer to the
camera. Then a slow lighting change (global gain and colour cast), motion blur
along each shopper's projected motion, and sensor noise.

Every frame carries its ground truth: per visible shopper the twin's
``track_id`` and ``token``, the projected box (clipped to the image), the
visible fraction of the projected body, and the true floor position.

The same (seed, settings, twin, camera, time) always gives the same bytes: each
frame draws its noise from a generator seeded by the camera and the time.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> from sim.scenario import parse_scenario
>>> from sim.twin import Twin
>>> root = Path(__file__).resolve().parents[1]
>>> sc = parse_scenario({"store": "stores/demo.yaml", "arrivals": {"visits": 1}}, base_dir=root)
>>> twin = Twin(load_store(sc.store), sc)
>>> frame = CeilingRenderer(twin.store, seed=1).render(twin, "cam-ceil-01", twin.start_s + 2.0)
>>> frame.image.shape, frame.image.dtype.name
((480, 640, 3), 'uint8')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from iot.cameras import world_to_pixel
from iot.store import Camera, Store
from sim.render_body import Appearance, appearance_for, body_parts, pose_at
from sim.render_scene import StaticView, static_view
from sim.shoppers import VisitPlan
from sim.twin import Twin

__all__ = [
    "LIGHTING_PRESETS",
    "CeilingRenderer",
    "Frame",
    "Lighting",
    "PersonTruth",
    "RenderSettings",
    "Sensor",
    "clip_box",
    "motion_kernel",
]

_NOISE_PAD = 64  # the noise bank is this much larger than a frame; frames take shifted views
_CENTRE_HEIGHT_M = 1.0  # height used to order people by depth


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lighting(_Strict):
    """A slow, time-varying illumination: gain and colour cast swing around their means."""

    gain: float = Field(default=1.0, gt=0, le=3, description="Mean global brightness gain.")
    gain_swing: float = Field(
        default=0.12, ge=0, lt=1, description="Relative amplitude of the slow gain change."
    )
    cast_bgr: tuple[float, float, float] = Field(
        default=(1.0, 1.0, 1.0), description="Mean per-channel multiplier (B, G, R): colour cast."
    )
    cast_swing: float = Field(
        default=0.04, ge=0, lt=1, description="Relative amplitude of the colour cast's drift."
    )
    period_s: float = Field(
        default=240.0, gt=0, description="Period of the slow lighting change, s of event time."
    )


LIGHTING_PRESETS: dict[str, Lighting] = {
    "day": Lighting(),
    # Dimmer, warm and drifting more: the held-out split's lighting.
    "evening": Lighting(
        gain=0.78, gain_swing=0.18, cast_bgr=(0.82, 0.97, 1.12), cast_swing=0.06, period_s=150.0
    ),
    "cool": Lighting(gain=1.1, gain_swing=0.1, cast_bgr=(1.12, 1.02, 0.9), period_s=300.0),
}


class RenderSettings(_Strict):
    """How the ceiling cameras are rendered."""

    lighting: Lighting = Field(default_factory=Lighting, description="Scene illumination.")
    gondola_height_m: float = Field(
        default=1.6, gt=0, le=3, description="Height of the gondolas drawn as boxes, m."
    )
    noise_sigma: float = Field(
        default=3.0, ge=0, le=50, description="Sensor noise, standard deviation in grey levels."
    )
    exposure_s: float = Field(
        default=0.06,
        ge=0,
        le=0.5,
        description="Shutter time: a shopper's motion during it becomes motion blur, s.",
    )


class Sensor:
    """Room light and camera sensor: a slow gain and colour-cast drift, then noise.

    Shared by the ceiling and shelf renderers so that every rendered camera drifts
    and grains alike. A frame's noise is drawn from (seed, ``camera_index``, time),
    so cameras with different indices get different noise at the same instant.
    """

    def __init__(self, seed: int, settings: RenderSettings) -> None:
        self.seed = int(seed)
        self.settings = settings
        self._noise_banks: dict[tuple[int, int], np.ndarray] = {}

    def _noise_bank(self, cam: Camera) -> np.ndarray:
        """Noise (H + pad, W + pad, 3) int16 in grey levels; frames take shifted views of it."""
        key = (cam.height_px, cam.width_px)
        if key not in self._noise_banks:
            shape = (cam.height_px + _NOISE_PAD, cam.width_px + _NOISE_PAD, 3)
            rng = np.random.default_rng([self.seed, 6, *key])
            noise = rng.normal(0.0, self.settings.noise_sigma, size=shape)
            self._noise_banks[key] = np.round(noise).astype(np.int16)
        return self._noise_banks[key]

    def apply(self, image: np.ndarray, cam: Camera, camera_index: int, t_s: float) -> None:
        """Slow gain and colour cast (a per-channel lookup table), then sensor noise, in place."""
        light = self.settings.lighting
        phase = 2.0 * math.pi * (t_s / light.period_s) + camera_index * 0.7 + self.seed
        gain = light.gain * (1.0 + light.gain_swing * math.sin(phase))
        levels = np.arange(256, dtype=np.float32)
        lut = np.empty((256, 1, 3), np.uint8)
        for i, c in enumerate(light.cast_bgr):
            scale = gain * c * (1.0 + light.cast_swing * math.sin(phase * 0.5 + 2.1 * i))
            lut[:, 0, i] = np.clip(levels * scale + 0.5, 0, 255).astype(np.uint8)
        lit = cv2.LUT(image, lut)
        if self.settings.noise_sigma > 0:
            frame_rng = np.random.default_rng([self.seed, 9, camera_index, round(t_s * 1000)])
            bank = self._noise_bank(cam)
            oy, ox = (int(v) for v in frame_rng.integers(0, _NOISE_PAD, size=2))
            view = bank[oy : oy + cam.height_px, ox : ox + cam.width_px]
            op = cv2.add if frame_rng.random() < 0.5 else cv2.subtract
            lit = op(lit.astype(np.int16), view)
            image[:] = np.clip(lit, 0, 255).astype(np.uint8)
        else:
            image[:] = lit


@dataclass(frozen=True)
class PersonTruth:
    """One shopper as a camera frame sees them."""

    track_id: str
    token: str
    xyxy: tuple[float, float, float, float]  # projected extent, clipped to the image, px
    visibility: float  # fraction of the projected body inside the image and not hidden
    floor_m: tuple[float, float]  # true floor position (x, y)
    visit_index: int


@dataclass(frozen=True)
class Frame:
    """A rendered BGR image (H, W, 3) uint8 and the shoppers it shows."""

    camera_id: str
    t_s: float
    image: np.ndarray
    people: tuple[PersonTruth, ...]

    def boxes_xyxy(self, min_visibility: float = 0.0) -> np.ndarray:
        """Boxes (N, 4) float32 of the people at least ``min_visibility`` visible."""
        rows = [p.xyxy for p in self.people if p.visibility >= min_visibility]
        return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


@dataclass
class _Sprite:
    """One projected person, ready to composite."""

    visit: VisitPlan
    depth_m: float
    x0: int  # canvas origin in image pixels (may be outside the image)
    y0: int
    colour: np.ndarray  # (h, w, 3) uint8
    dist: np.ndarray  # (h, w) float32, inf outside the body
    box: tuple[float, float, float, float]  # unclipped projected extent
    blur: tuple[float, float]  # projected motion during the exposure, px
    floor_m: tuple[float, float]


class CeilingRenderer:
    """Renders the twin's ceiling cameras (all of the store's, or ``cameras``)."""

    def __init__(
        self,
        store: Store,
        cameras: list[Camera] | None = None,
        *,
        seed: int,
        settings: RenderSettings | None = None,
    ) -> None:
        self.store = store
        self.seed = int(seed)
        self.settings = settings or RenderSettings()
        chosen = (
            cameras
            if cameras is not None
            else [c for c in store.devices.cameras if c.kind == "ceiling"]
        )
        if not chosen:
            raise ValueError(
                f"store {store.store_id!r} declares no ceiling cameras; add devices.cameras "
                "entries of kind 'ceiling' or pass cameras="
            )
        self.cameras = {c.id: c for c in chosen}
        self._index = {c.id: i for i, c in enumerate(chosen)}
        self._static: dict[str, StaticView] = {}
        self._looks: dict[int, Appearance] = {}
        self._sensor = Sensor(self.seed, self.settings)

    # ------------------------------------------------------------ public

    def camera(self, camera_id: str) -> Camera:
        try:
            return self.cameras[camera_id]
        except KeyError:
            raise KeyError(
                f"camera {camera_id!r} is not rendered here; known: {sorted(self.cameras)}"
            ) from None

    def people_in_view(self, twin: Twin, camera_id: str, t_s: float) -> list[str]:
        """Tokens of the shoppers whose projected body overlaps the image (no drawing)."""
        cam = self.camera(camera_id)
        return [s.visit.token for s in self._sprites(twin, cam, t_s, draw=False)]

    def render(self, twin: Twin, camera_id: str, t_s: float) -> Frame:
        """The frame ``camera_id`` takes at event time ``t_s``, with its ground truth."""
        cam = self.camera(camera_id)
        view = self._view(cam)
        image = view.image.copy()
        owner = np.full(image.shape[:2], -1, dtype=np.int32)
        sprites = self._sprites(twin, cam, t_s, draw=True)
        sprites.sort(key=lambda s: -s.depth_m)  # far to near: nearer people paint over
        totals = [self._composite(image, owner, view, s, k) for k, s in enumerate(sprites)]
        counts = np.bincount(owner[owner >= 0].ravel(), minlength=len(sprites))
        people = []
        for k, s in enumerate(sprites):
            box = clip_box(s.box, cam)
            if box is None:
                continue
            vis = float(counts[k]) / totals[k] if totals[k] else 0.0
            people.append(
                PersonTruth(s.visit.track_id, s.visit.token, box, vis, s.floor_m, s.visit.index)
            )
        people.sort(key=lambda p: p.visit_index)
        self._sensor.apply(image, cam, self._index[cam.id], t_s)
        return Frame(camera_id, float(t_s), image, tuple(people))

    # ------------------------------------------------------------ scene

    def _view(self, cam: Camera) -> StaticView:
        if cam.id not in self._static:
            self._static[cam.id] = static_view(
                self.store, cam, self.settings.gondola_height_m, self.seed
            )
        return self._static[cam.id]

    def _look(self, visit: VisitPlan) -> Appearance:
        if visit.index not in self._looks:
            self._looks[visit.index] = appearance_for(self.seed, visit.index)
        return self._looks[visit.index]

    def _sprites(self, twin: Twin, cam: Camera, t_s: float, *, draw: bool) -> list[_Sprite]:
        out = []
        for visit in twin.visits:
            if not visit.track_start_s <= t_s <= visit.track_end_s:
                continue
            sprite = self._sprite(cam, visit, t_s, draw)
            if sprite is not None:
                out.append(sprite)
        return out

    def _sprite(self, cam: Camera, visit: VisitPlan, t_s: float, draw: bool) -> _Sprite | None:
        pose = pose_at(self.store, visit, t_s)
        look = self._look(visit)
        body = body_parts(pose, look)
        pts = body.points_m.reshape(-1, 3)
        centre = np.array([[pose.x_m, pose.y_m, _CENTRE_HEIGHT_M]])
        exp = self.settings.exposure_s
        px_, py_ = visit.position(np.array([t_s - exp]))
        before = np.array([[px_[0], py_[0], _CENTRE_HEIGHT_M]])
        uv, ok = world_to_pixel(cam, np.concatenate([pts, centre, before]))
        if not ok.all():
            return None  # part of the body behind the camera: not a ceiling view
        body_uv = uv[: len(pts)]
        box = (*body_uv.min(axis=0).tolist(), *body_uv.max(axis=0).tolist())
        if clip_box((box[0], box[1], box[2], box[3]), cam) is None:
            return None
        blur = (float(uv[-2, 0] - uv[-1, 0]), float(uv[-2, 1] - uv[-1, 1]))
        origin = np.asarray(cam.position_m)
        depth = float(np.linalg.norm(centre[0] - origin))
        x0, y0 = math.floor(box[0]) - 1, math.floor(box[1]) - 1
        w, h = math.ceil(box[2]) - x0 + 2, math.ceil(box[3]) - y0 + 2
        colour = np.zeros((h if draw else 0, w if draw else 0, 3), np.uint8)
        dist = np.full(colour.shape[:2], np.inf, np.float32)
        if draw:
            part_dist = np.linalg.norm(body.centres_m - origin, axis=1)
            order = np.argsort(-part_dist, kind="stable")  # far parts first within the body too
            polys = np.round((body_uv - (x0, y0)) * 4).astype(np.int32)
            polys = polys.reshape(len(part_dist), -1, 2)
            for i in order:
                hull = cv2.convexHull(polys[i])
                cv2.fillConvexPoly(colour, hull, body.bgr[i], lineType=cv2.LINE_8, shift=2)
                cv2.fillConvexPoly(dist, hull, float(part_dist[i]), lineType=cv2.LINE_8, shift=2)
        return _Sprite(
            visit,
            depth,
            x0,
            y0,
            colour,
            dist,
            (box[0], box[1], box[2], box[3]),
            blur,
            (pose.x_m, pose.y_m),
        )

    def _composite(
        self, image: np.ndarray, owner: np.ndarray, view: StaticView, s: _Sprite, k: int
    ) -> int:
        """Paint a sprite where no gondola is nearer; returns its projected body area, px."""
        body = np.isfinite(s.dist)
        total = int(body.sum())
        H, W = image.shape[:2]
        ix0, iy0 = max(s.x0, 0), max(s.y0, 0)
        ix1, iy1 = min(s.x0 + s.dist.shape[1], W), min(s.y0 + s.dist.shape[0], H)
        if ix1 <= ix0 or iy1 <= iy0:
            return total
        cx0, cy0 = ix0 - s.x0, iy0 - s.y0
        win = (slice(iy0, iy1), slice(ix0, ix1))
        cwin = (slice(cy0, cy0 + iy1 - iy0), slice(cx0, cx0 + ix1 - ix0))
        shown = s.dist[cwin] < view.gondola_dist_m[win]
        owner[win][shown] = k
        alpha: np.ndarray = shown.astype(np.float32)
        colour: np.ndarray = s.colour[cwin].astype(np.float32) * alpha[..., None]
        kernel = motion_kernel(*s.blur)
        if kernel is not None:
            alpha = cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_CONSTANT)
            colour = cv2.filter2D(colour, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        region = image[win].astype(np.float32)
        region = region * (1.0 - alpha[..., None]) + colour
        image[win] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
        return total


def clip_box(
    box: tuple[float, float, float, float], cam: Camera
) -> tuple[float, float, float, float] | None:
    x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
    x1, y1 = min(box[2], float(cam.width_px)), min(box[3], float(cam.height_px))
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return (x0, y0, x1, y1)


def motion_kernel(du: float, dv: float) -> np.ndarray | None:
    """A normalised line kernel along the projected motion; None if under ~1.5 px."""
    length = math.hypot(du, dv)
    if length < 1.5:
        return None
    size = math.ceil(length) | 1  # odd, so the kernel is centred
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    half_u, half_v = du / 2, dv / 2
    cv2.line(
        kernel,
        (round(c - half_u), round(c - half_v)),
        (round(c + half_u), round(c + half_v)),
        1.0,
        thickness=1,
        lineType=cv2.LINE_AA,
    )
    total = float(kernel.sum())
    return kernel / total if total > 0 else None
