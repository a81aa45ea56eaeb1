"""Rendered shelf cameras for the digital twin: a gondola face, its stock and the hands in it.

``ShelfRenderer(store, seed)`` draws what a shelf camera (``kind: shelf``)
sees at an event time: the gondola face it watches with its shelf boards and
plate slots, the packages standing on each plate (as many as the plate's
units at that time allow, each SKU with a look of its own, see
``sim.render_package``), and the shoppers' arms reaching in. A reach's hand
travels up from the aisle edge of the image (its bottom) to the plate, dwells
there and comes back; on a pick the product rides in the hand after the
reach's ``change_s``, on a put before it (and stays on the plate after).
Skin and sleeve colours are the shopper's own (``sim.render_body``). The same
slow lighting drift and sensor noise as the ceiling cameras follow
(``sim.render.Sensor``), and moving hands are motion-blurred (over a shorter
shutter than the ceiling cameras', ``SHELF_SETTINGS``).

Every frame carries its ground truth: per visible hand the visit, the plate
it reaches to, its box, and what it holds (SKU and box); per active reach on
the face its phase (approach, dwell, retreat).

The static face is drawn once per camera and stock state (see
``sim.render_face``), so a frame costs a copy, the arms and the sensor.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> from sim.scenario import parse_scenario
>>> from sim.twin import Twin
>>> root = Path(__file__).resolve().parents[1]
>>> sc = parse_scenario({"store": "stores/demo.yaml", "arrivals": {"visits": 1}}, base_dir=root)
>>> twin = Twin(load_store(sc.store), sc)
>>> frame = ShelfRenderer(twin.store, seed=1).render(twin, "cam-shelf-g01", twin.start_s)
>>> frame.image.shape, frame.hands
((480, 640, 3), ())
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from iot.cameras import world_to_pixel
from iot.store import Camera, Store
from sim.render import RenderSettings, Sensor, clip_box
from sim.render_body import appearance_for
from sim.render_face import (
    ShelfFace,
    SkuGrid,
    draw_stock,
    face_homography,
    face_texture,
    plate_zones_px,
    shelf_face,
    stock_layout,
)
from sim.render_hand import HandDrawing, draw_hand
from sim.render_package import package_image, package_size_m
from sim.render_scene import static_view
from sim.shoppers import Reach, VisitPlan
from sim.stock import RestockPlan

__all__ = [
    "SHELF_SETTINGS",
    "HandTruth",
    "ReachPhase",
    "ReachState",
    "ShelfFrame",
    "ShelfRenderer",
    "StockLedger",
    "dwell_window",
    "package_image",
    "plate_zones_px",
    "reach_phase",
]

ReachPhase = Literal["approach", "dwell", "retreat"]
TRAVEL_MAX_S = 0.7  # the hand's way in (and out) takes at most this long
TRAVEL_SHARE = 0.3  # ... and at most this share of the reach (so change_s falls in the dwell)
# Shelf cameras run a short shutter to freeze hands: a hand crosses the view in a
# fraction of a second, and at the ceiling cameras' 60 ms it would be a smear.
SHELF_SETTINGS = RenderSettings(exposure_s=0.015)
_SENSOR_INDEX_BASE = 100  # shelf cameras' noise streams, apart from the ceiling cameras'
_STOCK_CACHE = 16  # stocked faces kept per camera (a face changes only when units move)

Px = tuple[float, float]
_HandPath = tuple[Px, Px, Px, float]  # arm root, hand start, hand target, px per m at target


@dataclass(frozen=True)
class HandTruth:
    """One hand in a shelf camera frame."""

    token: str
    visit_index: int
    plate_id: str  # the plate the hand reaches to
    action: Literal["pick", "put"]
    phase: ReachPhase
    xyxy: tuple[float, float, float, float]  # the hand (palm, fingers, thumb), clipped, px
    holding: bool
    sku: str | None  # the SKU in the hand, if any
    product_xyxy: tuple[float, float, float, float] | None  # the held package(s), clipped, px


@dataclass(frozen=True)
class ReachState:
    """A reach into the camera's face that is under way at the frame's time."""

    token: str
    visit_index: int
    plate_id: str
    sku: str
    action: Literal["pick", "put"]
    quantity: int
    phase: ReachPhase
    start_s: float
    end_s: float
    change_s: float


@dataclass(frozen=True)
class ShelfFrame:
    """A rendered BGR image (H, W, 3) uint8, its hands and the reaches under way."""

    camera_id: str
    t_s: float
    image: np.ndarray
    hands: tuple[HandTruth, ...]
    reaches: tuple[ReachState, ...]

    def hand_boxes(self) -> np.ndarray:
        """Hand boxes (N, 4) float32."""
        return np.asarray([h.xyxy for h in self.hands], np.float32).reshape(-1, 4)

    def product_boxes(self) -> np.ndarray:
        """Boxes (N, 4) float32 of the packages held in hands (not those on the shelf)."""
        rows = [h.product_xyxy for h in self.hands if h.product_xyxy is not None]
        return np.asarray(rows, np.float32).reshape(-1, 4)


def dwell_window(reach: Reach) -> tuple[float, float]:
    """When the hand arrives at the plate and when it starts back, event time."""
    travel_s = min(TRAVEL_SHARE * (reach.end_s - reach.start_s), TRAVEL_MAX_S)
    return reach.start_s + travel_s, reach.end_s - travel_s


def reach_phase(reach: Reach, t_s: float) -> tuple[ReachPhase, float]:
    """The reach's phase at ``t_s`` and how far the hand is in (0 at the aisle, 1 at the plate)."""
    travel_s = dwell_window(reach)[0] - reach.start_s
    if t_s < reach.start_s + travel_s:
        x = (t_s - reach.start_s) / travel_s if travel_s > 0 else 1.0
        phase: ReachPhase = "approach"
    elif t_s > reach.end_s - travel_s:
        x = (reach.end_s - t_s) / travel_s if travel_s > 0 else 1.0
        phase = "retreat"
    else:
        return "dwell", 1.0
    x = min(max(x, 0.0), 1.0)
    return phase, x * x * (3.0 - 2.0 * x)  # smoothstep: the hand eases in and out


def holds_product(reach: Reach, t_s: float) -> bool:
    """A pick holds its units from ``change_s`` on, a put until then."""
    return t_s >= reach.change_s if reach.action == "pick" else t_s < reach.change_s


class StockLedger:
    """Units per (plate, SKU) over event time: the planogram's initial units plus every reach.

    The same bookkeeping as the twin's load cells (``sim.shelves.assign_units``):
    a unit leaves or arrives at its reach's ``change_s``; a wrong-plate put
    leaves a unit of another SKU on the plate.
    """

    def __init__(
        self, store: Store, visits: list[VisitPlan], restocks: Sequence[RestockPlan] = ()
    ) -> None:
        self.initial: dict[tuple[str, str], int] = {}
        for e in store.planogram:
            key = (e.plate, e.sku)
            self.initial[key] = self.initial.get(key, 0) + e.initial_units
        moves: dict[tuple[str, str], list[tuple[float, int]]] = {}
        for v in visits:
            for r in v.reaches:
                delta = -r.quantity if r.action == "pick" else r.quantity
                moves.setdefault((r.plate_id, r.sku), []).append((r.change_s, delta))
        for rs in restocks:
            moves.setdefault((rs.plate_id, rs.sku), []).append((rs.t_s, rs.units))
        self._times: dict[tuple[str, str], np.ndarray] = {}
        self._totals: dict[tuple[str, str], np.ndarray] = {}
        for key, ms in moves.items():
            ms.sort()
            self._times[key] = np.array([t for t, _ in ms])
            self._totals[key] = np.cumsum([d for _, d in ms])
        self._by_plate: dict[str, list[tuple[str, str]]] = {}
        for key in set(self.initial) | set(moves):
            self._by_plate.setdefault(key[0], []).append(key)

    def units_at(self, plate_ids: list[str], t_s: float) -> dict[tuple[str, str], int]:
        """(plate, SKU) -> units on the plate at ``t_s`` (changes at exactly ``t_s`` included)."""
        out = {}
        for plate_id in plate_ids:
            for key in sorted(self._by_plate.get(plate_id, [])):
                n = self.initial.get(key, 0)
                times = self._times.get(key)
                if times is not None:
                    k = int(np.searchsorted(times, t_s, side="right"))
                    n += int(self._totals[key][k - 1]) if k else 0
                out[key] = max(n, 0)
        return out


@dataclass
class _CameraView:
    """Everything about one shelf camera that does not change from frame to frame."""

    cam: Camera
    index: int
    face: ShelfFace
    background: np.ndarray  # floor and gondolas, ray-cast (sim.render_scene)
    homography: np.ndarray
    texture: np.ndarray  # the empty face
    grids: list[SkuGrid]
    plate_ids: list[str]
    stocked: OrderedDict[tuple[tuple[tuple[str, str], int], ...], np.ndarray]


class ShelfRenderer:
    """Renders the twin's shelf cameras (all of the store's, or ``cameras``)."""

    def __init__(
        self,
        store: Store,
        seed: int,
        settings: RenderSettings | None = None,
        *,
        cameras: list[Camera] | None = None,
    ) -> None:
        self.store = store
        self.seed = int(seed)
        self.settings = settings or SHELF_SETTINGS
        chosen = (
            cameras
            if cameras is not None
            else [c for c in store.devices.cameras if c.kind == "shelf"]
        )
        if not chosen:
            raise ValueError(
                f"store {store.store_id!r} declares no shelf cameras; add devices.cameras "
                "entries with kind: shelf and gondola: <id>, or pass cameras="
            )
        self.cameras = {c.id: c for c in chosen}
        self._index = {c.id: i for i, c in enumerate(chosen)}
        self._views: dict[str, _CameraView] = {}
        self._sensor = Sensor(self.seed, self.settings)
        self._plan: tuple[list[VisitPlan], StockLedger] | None = None
        self._paths: dict[tuple[str, int, float], _HandPath] = {}

    # ------------------------------------------------------------ public

    def camera(self, camera_id: str) -> Camera:
        try:
            return self.cameras[camera_id]
        except KeyError:
            raise KeyError(
                f"camera {camera_id!r} is not a rendered shelf camera; "
                f"known: {sorted(self.cameras)}"
            ) from None

    def face_reaches(self, twin: Any, camera_id: str) -> list[Reach]:
        """Every reach of the twin into the face ``camera_id`` watches, by start time."""
        plates = set(self._plate_ids(self.camera(camera_id)))
        out = [r for v in twin.visits for r in v.reaches if r.plate_id in plates]
        return sorted(out, key=lambda r: (r.start_s, r.visit))

    def render(self, twin: Any, camera_id: str, t_s: float) -> ShelfFrame:
        """The frame ``camera_id`` takes at event time ``t_s``, with its ground truth.

        ``twin`` needs only ``visits`` (a ``sim.twin.Twin`` or anything alike).
        """
        view = self._view(self.camera(camera_id))
        visits, ledger = self._ledger(twin)
        image = self._stocked(view, ledger.units_at(view.plate_ids, t_s)).copy()
        plates = set(view.plate_ids)
        hands, states = [], []
        for visit in visits:  # in visit order: later arms paint over earlier ones
            for reach in visit.reaches:
                if reach.plate_id not in plates or not reach.start_s <= t_s <= reach.end_s:
                    continue
                phase, _ = reach_phase(reach, t_s)
                states.append(_state(reach, phase))
                hand = self._hand(image, view, visit, reach, t_s)
                if hand is not None:
                    hands.append(hand)
        self._sensor.apply(image, view.cam, _SENSOR_INDEX_BASE + view.index, t_s)
        return ShelfFrame(camera_id, float(t_s), image, tuple(hands), tuple(states))

    # ------------------------------------------------------------ scene

    def _plate_ids(self, cam: Camera) -> list[str]:
        if cam.id in self._views:
            return self._views[cam.id].plate_ids
        return [s.plate_id for s in shelf_face(self.store, cam).slots]  # no need to draw yet

    def _view(self, cam: Camera) -> _CameraView:
        if cam.id not in self._views:
            face = shelf_face(self.store, cam)
            grids = stock_layout(self.store, face)
            bg = static_view(self.store, cam, self.settings.gondola_height_m, self.seed).image
            self._views[cam.id] = _CameraView(
                cam,
                self._index[cam.id],
                face,
                bg,
                face_homography(face, cam),
                face_texture(face),
                grids,
                [s.plate_id for s in face.slots],
                OrderedDict(),
            )
        return self._views[cam.id]

    def _ledger(self, twin: Any) -> tuple[list[VisitPlan], StockLedger]:
        visits: list[VisitPlan] = twin.visits
        if self._plan is None or self._plan[0] is not visits:  # a new twin: book its reaches
            # the twin's own store: its piles may start part full (stock.initial_fraction)
            stocked = getattr(twin, "store", self.store)
            self._plan = (visits, StockLedger(stocked, visits, getattr(twin, "restocks", ())))
            self._paths.clear()
        return self._plan

    def _stocked(self, view: _CameraView, units: dict[tuple[str, str], int]) -> np.ndarray:
        """The face with its packages for one stock state, warped into the image (cached)."""
        key = tuple(sorted(units.items()))
        hit = view.stocked.get(key)
        if hit is not None:
            view.stocked.move_to_end(key)
            return hit
        tex = view.texture.copy()
        draw_stock(tex, view.face, view.grids, units, self.store)
        out = view.background.copy()
        cv2.warpPerspective(
            tex,
            view.homography,
            (view.cam.width_px, view.cam.height_px),
            dst=out,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_TRANSPARENT,
        )
        view.stocked[key] = out
        if len(view.stocked) > _STOCK_CACHE:
            view.stocked.popitem(last=False)
        return out

    # ------------------------------------------------------------ hands

    def _hand(
        self, image: np.ndarray, view: _CameraView, visit: VisitPlan, reach: Reach, t_s: float
    ) -> HandTruth | None:
        phase, travel = reach_phase(reach, t_s)
        _, before = reach_phase(reach, max(t_s - self.settings.exposure_s, reach.start_s))
        key = (view.cam.id, visit.index, reach.start_s)
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = self._hand_path(view, visit, reach)
        holding = holds_product(reach, t_s)
        look = appearance_for(self.seed, visit.index)
        held = None
        if holding:
            w_m, h_m = package_size_m(self.store.items[reach.sku])
            held = (reach.sku, w_m, h_m, min(reach.quantity, 3))
        drawn: HandDrawing = draw_hand(
            image,
            root_px=path[0],
            start_px=path[1],
            target_px=path[2],
            px_per_m=path[3],
            travel=travel,
            travel_before=before,
            skin_bgr=look.skin_bgr,
            sleeve_bgr=look.top_bgr,
            held=held,
        )
        box = clip_box(drawn.hand_xyxy, view.cam)
        if box is None:
            return None
        product = clip_box(drawn.product_xyxy, view.cam) if drawn.product_xyxy else None
        return HandTruth(
            reach.token,
            reach.visit,
            reach.plate_id,
            reach.action,
            phase,
            box,
            holding,
            reach.sku if holding else None,
            product,
        )

    def _hand_path(self, view: _CameraView, visit: VisitPlan, reach: Reach) -> _HandPath:
        """Arm root (below the image), hand start (just out of view), target, px per m there.

        The shopper stands still through a reach, so the path is fixed per reach.
        """
        face, cam = view.face, view.cam
        slot = next(s for s in face.slots if s.plate_id == reach.plate_id)
        grid = next(
            (g for g in view.grids if (g.plate_id, g.sku) == (reach.plate_id, reach.sku)), None
        )
        rng = np.random.default_rng([self.seed, 31, visit.index, round(reach.start_s * 1000)])
        s0, s1 = slot.s0_m + 0.05, slot.s1_m - 0.05
        if grid is not None:  # reach for the SKU's own part of a shared plate
            s0, s1 = grid.span_m[0] + 0.03, grid.span_m[1] - 0.03
        s = float(rng.uniform(s0, max(s1, s0)))
        z = slot.z0_m + min(0.1, 0.45 * (slot.z1_m - slot.z0_m)) + float(rng.uniform(-0.02, 0.03))
        x_p, _ = visit.position(np.array([reach.start_s]))
        shoulder_x = float(x_p[0]) + face.direction * 0.22  # the right hand
        pts = np.vstack(
            [
                face.world_m(np.array([s, s + 0.1]), np.array([z, z])),
                [[shoulder_x, face.face_y_m, z]],
            ]
        )
        uv, _ = world_to_pixel(cam, pts)
        target = (float(uv[0, 0]), float(uv[0, 1]))
        px_per_m = float(math.hypot(*(uv[1] - uv[0]))) / 0.1
        reach_px = 0.35 * cam.width_px
        u_e = float(np.clip(uv[2, 0], target[0] - reach_px, target[0] + reach_px))
        u_e = float(np.clip(u_e, -20.0, cam.width_px + 20.0))
        root = (u_e, cam.height_px + 0.5 * px_per_m)
        start = (u_e + 0.3 * (target[0] - u_e), cam.height_px + 0.3 * px_per_m)
        return root, start, target, px_per_m


def _state(reach: Reach, phase: ReachPhase) -> ReachState:
    return ReachState(
        reach.token,
        reach.visit,
        reach.plate_id,
        reach.sku,
        reach.action,
        reach.quantity,
        phase,
        reach.start_s,
        reach.end_s,
        reach.change_s,
    )
