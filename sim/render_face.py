"""A gondola face as a shelf camera sees it: geometry, plate zones and stocked shelves.

A shelf camera (``kind: shelf``, ``gondola: <id>``) stands across the aisle
from one face of its gondola. The face is a vertical plane; everything on it
(back panel, shelf boards, plate slots, the packages standing on the plates)
is drawn once into a flat *texture* in face coordinates, then warped into the
image by the plane's homography. Packages are drawn on the face plane, where
the front units stand; that is the approximation that keeps this cheap.

Face coordinates: ``s_m`` along the face from the viewer's left (the left of
a shopper facing the shelf), ``z_m`` up from the floor. A south face is seen
looking +y, so its left is the gondola's low-x end; a north face is seen
looking -y, so its left is the high-x end.

Stock: each plate's width is split between its planogram entries (in
proportion to facings; a plate may hold several SKUs); each entry gets a grid
of package slots that fits its part of the plate. A plate with more units
than slots shows a share of the slots in proportion to its units (units stand
several deep behind the front ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import cv2
import numpy as np

from iot.cameras import world_to_pixel
from iot.store import Camera, Gondola, Store
from sim.render_package import package_image, package_size_m

__all__ = [
    "PlateSlot",
    "ShelfFace",
    "SkuGrid",
    "cached_package",
    "draw_stock",
    "face_homography",
    "face_texture",
    "plate_zones_px",
    "shelf_face",
    "stock_layout",
]

TEX_PX_PER_M = 250  # face texture resolution; above the image's ~180 px/m, so warping only shrinks
BOARD_M = 0.035  # shelf board thickness (its front is the price strip)
TOP_CLEARANCE_M = 0.4  # room above the top shelf
GAP_M = 0.008  # between neighbouring packages
FOREIGN_SLOTS = 3  # wrong-plate units shown at a plate's right end, at most
_PANEL_BGR = (172, 176, 180)
_PLINTH_BGR = (112, 116, 120)
_BOARD_BGR = (214, 214, 210)
_STRIP_BGR = (70, 72, 78)
_UPRIGHT_BGR = (60, 62, 66)
_TAG_BGR = (240, 240, 240)


@dataclass(frozen=True)
class PlateSlot:
    """A plate's front area in face coordinates: where its packages stand."""

    plate_id: str
    s0_m: float
    s1_m: float
    z0_m: float  # the plate's top surface
    z1_m: float  # the underside of the shelf above (or the top clearance)


@dataclass(frozen=True)
class ShelfFace:
    """One gondola face watched by a shelf camera."""

    gondola: Gondola
    side: Literal["north", "south"]
    face_y_m: float
    left_x_m: float  # world x at s = 0 (the viewer's left)
    direction: int  # +1 when s grows with world x (south face), -1 otherwise
    top_z_m: float
    slots: tuple[PlateSlot, ...]  # shelf by shelf from the bottom, plates left to right

    @property
    def length_m(self) -> float:
        return self.gondola.length_m

    def world_m(self, s_m: np.ndarray, z_m: np.ndarray) -> np.ndarray:
        """World points (N, 3) of face coordinates."""
        s, z = np.broadcast_arrays(np.asarray(s_m, float), np.asarray(z_m, float))
        x = self.left_x_m + self.direction * s
        return np.column_stack([x.ravel(), np.full(s.size, self.face_y_m), z.ravel()])

    def tex_px(self, s_m: float, z_m: float) -> tuple[int, int]:
        """Texture pixel (column, row) of a face point."""
        return round(s_m * TEX_PX_PER_M), round((self.top_z_m - z_m) * TEX_PX_PER_M)

    def texture_shape(self) -> tuple[int, int]:
        return round(self.top_z_m * TEX_PX_PER_M), round(self.length_m * TEX_PX_PER_M)


def shelf_face(store: Store, cam: Camera) -> ShelfFace:
    """The gondola face a shelf camera watches (the side with shelves it stands in front of)."""
    if cam.kind != "shelf" or cam.gondola is None:
        raise ValueError(
            f"camera {cam.id!r} is kind {cam.kind!r} with gondola {cam.gondola!r}; a shelf "
            "camera needs kind: shelf and gondola: <gondola id> in devices.cameras"
        )
    gondola = next((g for g in store.gondolas if g.id == cam.gondola), None)
    if gondola is None:
        raise ValueError(
            f"camera {cam.id!r} watches gondola {cam.gondola!r}, which the store does not have; "
            f"known: {sorted(g.id for g in store.gondolas)}"
        )
    side: Literal["north", "south"] = (
        "north" if cam.position_m[1] > gondola.y_m + gondola.depth_m / 2 else "south"
    )
    shelves = sorted((s for s in gondola.shelves if s.side == side), key=lambda s: s.height_m)
    if not shelves:
        raise ValueError(
            f"camera {cam.id!r} stands on the {side} side of gondola {gondola.id!r}, which has "
            "no shelves there; move the camera across the aisle from a face with shelves"
        )
    south = side == "south"
    slots = []
    for k, shelf in enumerate(shelves):
        above = shelves[k + 1].height_m - BOARD_M - 0.01 if k + 1 < len(shelves) else None
        z1 = above if above is not None else shelf.height_m + TOP_CLEARANCE_M
        for plate in shelf.plates:
            a, b = plate.offset_m, plate.offset_m + plate.width_m
            s0, s1 = (a, b) if south else (gondola.length_m - b, gondola.length_m - a)
            slots.append(
                PlateSlot(plate.id, s0, s1, shelf.height_m, max(z1, shelf.height_m + 0.05))
            )
    face = ShelfFace(
        gondola=gondola,
        side=side,
        face_y_m=gondola.y_m if south else gondola.y_m + gondola.depth_m,
        left_x_m=gondola.x_m if south else gondola.x_m + gondola.length_m,
        direction=1 if south else -1,
        top_z_m=max(s.z1_m for s in slots) + 0.05,
        slots=tuple(slots),
    )
    corners = face.world_m(np.array([0.0, face.length_m]), np.array([0.0, face.top_z_m]))
    _, in_front = world_to_pixel(cam, corners)
    if not in_front.all():
        raise ValueError(
            f"shelf camera {cam.id!r} does not face the {side} side of gondola {gondola.id!r}; "
            "turn it (yaw_deg) towards the face"
        )
    return face


def plate_zones_px(store: Store, camera: Camera) -> dict[str, tuple[float, float, float, float]]:
    """Each plate's front area in ``camera``'s image, (x0, y0, x1, y1) px clipped to the image.

    The area runs from the plate's surface up to the shelf above; neighbouring
    plates' boxes touch but do not overlap. Plates outside the image are left out.
    """
    face = shelf_face(store, camera)
    zones = {}
    for slot in face.slots:
        s = np.array([slot.s0_m, slot.s1_m, slot.s1_m, slot.s0_m])
        z = np.array([slot.z0_m, slot.z0_m, slot.z1_m, slot.z1_m])
        uv, _ = world_to_pixel(camera, face.world_m(s, z))
        # x from the zone's mid-height (mean of its bottom and top edges): the face's
        # perspective makes each zone a trapezoid, and neighbours' boxes then only touch
        lr = sorted([(uv[0, 0] + uv[3, 0]) / 2, (uv[1, 0] + uv[2, 0]) / 2])
        x0, y0 = max(float(lr[0]), 0.0), max(float(uv[:, 1].min()), 0.0)
        x1 = min(float(lr[1]), float(camera.width_px))
        y1 = min(float(uv[:, 1].max()), float(camera.height_px))
        if x1 - x0 >= 1.0 and y1 - y0 >= 1.0:
            zones[slot.plate_id] = (x0, y0, x1, y1)
    return zones


def face_homography(face: ShelfFace, cam: Camera) -> np.ndarray:
    """3x3 map from texture pixels to image pixels (both with pixel index = its centre)."""
    h, w = face.texture_shape()
    src = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    s = np.array([0.0, face.length_m, face.length_m, 0.0])
    z = np.array([face.top_z_m, face.top_z_m, 0.0, 0.0])
    dst, _ = world_to_pixel(cam, face.world_m(s, z))
    return np.asarray(cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)))


def face_texture(face: ShelfFace) -> np.ndarray:
    """The empty face: back panel, plinth, uprights, shelf boards with price strips, dividers."""
    tex = np.empty((*face.texture_shape(), 3), np.uint8)
    tex[:] = _PANEL_BGR
    w = tex.shape[1]
    bottom = min(slot.z0_m for slot in face.slots) - BOARD_M
    cv2.rectangle(tex, (0, face.tex_px(0, bottom)[1]), (w, tex.shape[0]), _PLINTH_BGR, -1)
    for slot in face.slots:
        c0, r_top = face.tex_px(slot.s0_m, slot.z0_m)
        c1, r_low = face.tex_px(slot.s1_m, slot.z0_m - BOARD_M)
        r_mid = (r_top + r_low) // 2
        cv2.rectangle(tex, (c0, r_top), (c1, r_mid), _BOARD_BGR, -1)
        cv2.rectangle(tex, (c0, r_mid), (c1, r_low), _STRIP_BGR, -1)
        tag_w = round(0.06 * TEX_PX_PER_M)
        cx = (c0 + c1) // 2
        cv2.rectangle(tex, (cx - tag_w // 2, r_mid + 1), (cx + tag_w // 2, r_low - 1), _TAG_BGR, -1)
        _, r_up = face.tex_px(slot.s0_m, slot.z1_m)
        for c in (c0, c1):  # plate dividers
            cv2.line(tex, (c, r_up), (c, r_top), _STRIP_BGR, 2)
    upright = round(0.03 * TEX_PX_PER_M)
    cv2.rectangle(tex, (0, 0), (upright, tex.shape[0]), _UPRIGHT_BGR, -1)
    cv2.rectangle(tex, (w - upright, 0), (w, tex.shape[0]), _UPRIGHT_BGR, -1)
    return tex


@dataclass(frozen=True)
class SkuGrid:
    """Package slots of one planogram entry on a plate, in texture pixels, filling order."""

    plate_id: str
    sku: str
    capacity_units: int
    span_m: tuple[float, float]  # the entry's part of the plate, s from .. to, m
    size_px: tuple[int, int]  # package (width, height)
    origins_px: tuple[tuple[int, int], ...]  # top-left corner of each slot

    def shown(self, units: int) -> int:
        """Slots filled for ``units`` on the plate (all units when they fit, else a share)."""
        slots = len(self.origins_px)
        if units <= 0:
            return 0
        if self.capacity_units <= slots:
            return min(units, slots)
        return min(slots, max(1, math.ceil(units * slots / self.capacity_units)))


def stock_layout(store: Store, face: ShelfFace) -> list[SkuGrid]:
    """A slot grid per planogram entry of the face's plates (plates split by facings)."""
    grids = []
    for slot in face.slots:
        entries = [e for e in store.planogram if e.plate == slot.plate_id]
        total_facings = sum(e.facings for e in entries)
        s = slot.s0_m + 0.02
        usable_m = slot.s1_m - slot.s0_m - 0.04
        for e in entries:
            seg_m = usable_m * e.facings / total_facings
            size_m = package_size_m(store.items[e.sku])
            grids.append(
                _grid(face, slot, e.sku, e.capacity_units, size_m=size_m, span_m=(s, seg_m))
            )
            s += seg_m
    return grids


def _grid(
    face: ShelfFace,
    slot: PlateSlot,
    sku: str,
    capacity: int,
    *,
    size_m: tuple[float, float],
    span_m: tuple[float, float],
) -> SkuGrid:
    """Slots for one SKU: ``span_m`` is (start s, length) of its part of the plate."""
    (w_m, h_m), (s0_m, seg_m) = size_m, span_m
    room_m = slot.z1_m - slot.z0_m - 0.01
    if h_m > room_m:  # a tall package on a low shelf: shrink it to fit, keeping its aspect
        w_m, h_m = w_m * room_m / h_m, room_m
    cols = max(1, int((seg_m + GAP_M) // (w_m + GAP_M)))
    layers = max(1, min(int((room_m + GAP_M) // (h_m + GAP_M)), math.ceil(capacity / cols)))
    # spread the columns over the segment, so a plate looks evenly stocked
    pitch_m = seg_m / cols
    w_px, h_px = max(round(w_m * TEX_PX_PER_M), 2), max(round(h_m * TEX_PX_PER_M), 2)
    origins = []
    for layer in range(layers):
        base_z = slot.z0_m + layer * (h_m + GAP_M)
        for col in range(cols):
            c, r = face.tex_px(s0_m + (col + 0.5) * pitch_m, base_z)
            origins.append((c - w_px // 2, r - h_px))
    span = (s0_m, s0_m + seg_m)
    return SkuGrid(slot.plate_id, sku, capacity, span, (w_px, h_px), tuple(origins))


@lru_cache(maxsize=2048)
def _package(sku: str, w_px: int, h_px: int) -> np.ndarray:
    img = package_image(sku, w_px, h_px)
    img.flags.writeable = False  # shared between calls: never drawn into
    return img


def cached_package(sku: str, w_px: int, h_px: int) -> np.ndarray:
    """``package_image`` memoised (read-only): the renderer pastes the same few sizes."""
    return _package(sku, w_px, h_px)


def _paste(tex: np.ndarray, img: np.ndarray, c: int, r: int) -> None:
    h, w = img.shape[:2]
    r0, c0 = max(r, 0), max(c, 0)
    r1, c1 = min(r + h, tex.shape[0]), min(c + w, tex.shape[1])
    if r1 > r0 and c1 > c0:
        tex[r0:r1, c0:c1] = img[r0 - r : r1 - r, c0 - c : c1 - c]


def draw_stock(
    tex: np.ndarray,
    face: ShelfFace,
    grids: list[SkuGrid],
    units: dict[tuple[str, str], int],
    store: Store,
) -> None:
    """Paste the packages that ``units`` ((plate, sku) -> count) put on the face, in place.

    Units of a SKU that has no grid on a plate (a wrong-plate put) stand at the
    plate's right end, up to ``FOREIGN_SLOTS`` of them.
    """
    planned = {(g.plate_id, g.sku) for g in grids}
    for g in grids:
        img = cached_package(g.sku, *g.size_px)
        for c, r in g.origins_px[: g.shown(units.get((g.plate_id, g.sku), 0))]:
            _paste(tex, img, c, r)
    slots = {s.plate_id: s for s in face.slots}
    for (plate_id, sku), n in sorted(units.items()):
        if n <= 0 or (plate_id, sku) in planned or plate_id not in slots:
            continue
        slot = slots[plate_id]
        w_m, h_m = package_size_m(store.items[sku])
        scale = min(1.0, (slot.z1_m - slot.z0_m - 0.01) / h_m)
        w_px, h_px = round(w_m * scale * TEX_PX_PER_M), round(h_m * scale * TEX_PX_PER_M)
        img = cached_package(sku, max(w_px, 2), max(h_px, 2))
        for k in range(min(n, FOREIGN_SLOTS)):
            c, r = face.tex_px(slot.s1_m - 0.03 - (k + 1) * (w_m * scale + GAP_M), slot.z0_m)
            _paste(tex, img, c, r - img.shape[0])
