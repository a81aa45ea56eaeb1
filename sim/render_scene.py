"""The static part of a ceiling camera's view: floor and gondolas, ray-cast once.

For every pixel a ray is cast from the camera; it hits either the top or a
side of a gondola (a box ``gondola_height_m`` tall) or the floor. The result
is a colour image and, per pixel, the distance to the gondola surface (``inf``
where the ray reaches the floor). The renderer compares a person's distance
with that map, so gondola tops hide people behind them as the camera sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iot.cameras import camera_rotation
from iot.store import Camera, Store

__all__ = ["StaticView", "pixel_rays", "static_view"]

TEXTURE_RES_M = 0.02  # floor texture resolution
TILE_M = 0.6  # floor tiles
_FLOOR_BGR = np.array([196.0, 200.0, 203.0])
_OUTSIDE_BGR = np.array([70.0, 72.0, 75.0])
_GONDOLA_TOP_BGR = np.array([150.0, 146.0, 140.0])
_GONDOLA_SIDE_BGR = np.array([120.0, 118.0, 112.0])
_ENTRY_BGR = np.array([90.0, 170.0, 80.0])
_EXIT_BGR = np.array([70.0, 80.0, 190.0])
_PRODUCT_BAND_M = 0.25  # height of the product stack drawn above each shelf


@dataclass(frozen=True)
class StaticView:
    """A camera's background (H, W, 3) uint8 and gondola distance (H, W) float32."""

    image: np.ndarray
    gondola_dist_m: np.ndarray


def pixel_rays(cam: Camera) -> np.ndarray:
    """Unit world directions (H, W, 3) of every pixel's ray (pixel index = its centre)."""
    u, v = np.meshgrid(np.arange(cam.width_px, dtype=float), np.arange(cam.height_px, dtype=float))
    d_cam = np.stack(
        [
            (u - cam.width_px / 2) / cam.focal_px,
            (v - cam.height_px / 2) / cam.focal_px,
            np.ones_like(u),
        ],
        axis=-1,
    )
    d = d_cam @ camera_rotation(cam).T
    return np.asarray(d / np.linalg.norm(d, axis=-1, keepdims=True))


def _floor_texture(store: Store, rng: np.random.Generator) -> np.ndarray:
    """Floor colour in world coordinates: tiles, a soft mottle, gate markings."""
    w = round(store.floor.width_m / TEXTURE_RES_M)
    h = round(store.floor.depth_m / TEXTURE_RES_M)
    coarse = rng.normal(0.0, 6.0, size=(max(h // 40, 2), max(w // 40, 2))).astype(np.float32)
    mottle = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0.0, 2.0, size=(h, w)).astype(np.float32)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = _FLOOR_BGR
    tex += (mottle + fine)[..., None]
    ys, xs = (np.arange(h) + 0.5) * TEXTURE_RES_M, (np.arange(w) + 0.5) * TEXTURE_RES_M
    grout_x = (xs % TILE_M) < 0.02
    grout_y = (ys % TILE_M) < 0.02
    tex[:, grout_x] -= 25.0
    tex[grout_y, :] -= 25.0
    for gate in store.floor.gates:
        colour = _ENTRY_BGR if gate.kind == "entry" else _EXIT_BGR
        (x0, y0), (x1, y1) = gate.line_m
        p0 = (round(x0 / TEXTURE_RES_M), round(y0 / TEXTURE_RES_M))
        p1 = (round(x1 / TEXTURE_RES_M), round(y1 / TEXTURE_RES_M))
        cv2.line(tex, p0, p1, colour.tolist(), thickness=round(0.08 / TEXTURE_RES_M))
    return np.clip(tex, 0, 255)


def _sample_floor(tex: np.ndarray, xy: np.ndarray) -> np.ndarray:
    map_x = (xy[..., 0] / TEXTURE_RES_M - 0.5).astype(np.float32)
    map_y = (xy[..., 1] / TEXTURE_RES_M - 0.5).astype(np.float32)
    return cv2.remap(
        tex,
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=_OUTSIDE_BGR.tolist(),
    )


def _product_bgr(plate_id: str) -> np.ndarray:
    # A stable colour per plate (not Python's salted hash): packages look alike per SKU slot.
    code = sum((i + 1) * ord(c) for i, c in enumerate(plate_id))
    rng = np.random.default_rng(code)
    return rng.integers(40, 230, size=3).astype(float)


def _box_hits(
    origin: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Slab test: entry distance (inf where missed) and the axis of the entered face."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (lo - origin) * inv
        t2 = (hi - origin) * inv
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    near = np.nan_to_num(near, nan=-np.inf)
    far = np.nan_to_num(far, nan=np.inf)
    t_in, t_out = near.max(axis=-1), far.min(axis=-1)
    hit = (t_out >= t_in) & (t_in > 0)
    return np.where(hit, t_in, np.inf), near.argmax(axis=-1)


def _side_colour(store: Store, gi: int, pts: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Gondola side colours: the body, with a band of product colour above each shelf."""
    gondola = store.gondolas[gi]
    out = np.tile(_GONDOLA_SIDE_BGR, (len(pts), 1))
    mid_y = gondola.y_m + gondola.depth_m / 2
    for shelf in gondola.shelves:
        on_side = (axis == 1) & ((pts[:, 1] > mid_y) == (shelf.side == "north"))
        band = (
            on_side & (pts[:, 2] >= shelf.height_m) & (pts[:, 2] < shelf.height_m + _PRODUCT_BAND_M)
        )
        for plate in shelf.plates:
            x0 = gondola.x_m + plate.offset_m + 0.02
            x1 = gondola.x_m + plate.offset_m + plate.width_m - 0.02
            sel = band & (pts[:, 0] >= x0) & (pts[:, 0] < x1)
            out[sel] = _product_bgr(plate.id)
    return out


def static_view(store: Store, cam: Camera, gondola_height_m: float, seed: int) -> StaticView:
    """Ray-cast the floor and gondolas as seen by ``cam``."""
    rng = np.random.default_rng([seed, 11])
    rays = pixel_rays(cam)
    origin = np.asarray(cam.position_m, dtype=float)
    dist = np.full(rays.shape[:2], np.inf)
    which = np.full(rays.shape[:2], -1)
    face = np.zeros(rays.shape[:2], dtype=int)
    for gi, g in enumerate(store.gondolas):
        lo = np.array([g.x_m, g.y_m, 0.0])
        hi = np.array([g.x_m + g.length_m, g.y_m + g.depth_m, gondola_height_m])
        t, axis = _box_hits(origin, rays, lo, hi)
        nearer = t < dist
        dist[nearer], which[nearer], face[nearer] = t[nearer], gi, axis[nearer]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = -origin[2] / rays[..., 2]
    floor_xy = origin[:2] + rays[..., :2] * np.where(t_floor > 0, t_floor, 1e6)[..., None]
    image = _sample_floor(_floor_texture(store, rng), floor_xy)
    for gi in range(len(store.gondolas)):
        sel = which == gi
        if not sel.any():
            continue
        pts = origin + rays[sel] * dist[sel][:, None]
        top = face[sel] == 2
        colours = _side_colour(store, gi, pts, face[sel])
        colours[top] = _GONDOLA_TOP_BGR + (gi % 3) * 6.0
        image[sel] = colours
    return StaticView(np.clip(image, 0, 255).astype(np.uint8), dist.astype(np.float32))
