"""Camera geometry: floor/world points to pixels and pixels back to the floor.

World axes: x, y on the floor in metres, z up. Camera axes follow OpenCV:
x right, y down, z along the optical axis. The pose conventions are on
``iot.store.Camera``.

>>> from iot.store import Camera
>>> cam = Camera(id="c", kind="ceiling", position_m=(2.0, 3.0, 3.0), focal_px=300)
>>> uv, ok = world_to_pixel(cam, np.array([[2.0, 3.0, 0.0], [3.0, 3.0, 0.0]]))
>>> uv.round(1).tolist(), ok.tolist()
([[320.0, 240.0], [420.0, 240.0]], [True, True])
>>> pixel_to_plane(cam, uv, height_m=0.0).round(3).tolist()
[[2.0, 3.0], [3.0, 3.0]]
"""

from __future__ import annotations

import math

import numpy as np

from iot.store import Camera

__all__ = ["camera_rotation", "pixel_to_plane", "plane_footprint", "world_to_pixel"]


def camera_rotation(cam: Camera) -> np.ndarray:
    """3x3 matrix whose columns are the camera's x, y, z axes in world coordinates."""
    p, yaw = math.radians(cam.pitch_deg), math.radians(cam.yaw_deg)
    x_axis = np.array([1.0, 0.0, 0.0])
    z_axis = np.array([0.0, math.sin(p), -math.cos(p)])  # straight down, tilted towards +y
    y_axis = np.cross(z_axis, x_axis)  # image down; right-handed with x and z
    c, s = math.cos(yaw), math.sin(yaw)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return turn @ np.column_stack([x_axis, y_axis, z_axis])


def world_to_pixel(cam: Camera, points_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) of world points (N, 3), and which of them lie in front of the camera."""
    pts = np.asarray(points_m, dtype=float).reshape(-1, 3)
    local = (pts - np.asarray(cam.position_m)) @ camera_rotation(cam)
    in_front = local[:, 2] > 1e-6
    depth = np.where(in_front, local[:, 2], 1.0)
    u = cam.focal_px * local[:, 0] / depth + cam.width_px / 2
    v = cam.focal_px * local[:, 1] / depth + cam.height_px / 2
    return np.column_stack([u, v]), in_front


def pixel_to_plane(cam: Camera, pixels: np.ndarray, height_m: float = 0.0) -> np.ndarray:
    """Floor (x, y) where each pixel's ray meets the horizontal plane at ``height_m``.

    Rays that never reach the plane (pointing above it) give NaN.
    """
    px = np.asarray(pixels, dtype=float).reshape(-1, 2)
    rays_cam = np.column_stack(
        [
            (px[:, 0] - cam.width_px / 2) / cam.focal_px,
            (px[:, 1] - cam.height_px / 2) / cam.focal_px,
            np.ones(len(px)),
        ]
    )
    rays = rays_cam @ camera_rotation(cam).T
    origin = np.asarray(cam.position_m, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (height_m - origin[2]) / rays[:, 2]
    t = np.where(t > 0, t, np.nan)
    return origin[:2] + rays[:, :2] * t[:, None]


def plane_footprint(cam: Camera, height_m: float = 0.0) -> np.ndarray:
    """The (4, 2) corners of the image seen on the plane at ``height_m`` (NaN if not seen)."""
    w, h = cam.width_px, cam.height_px
    return pixel_to_plane(cam, np.array([[0, 0], [w, 0], [w, h], [0, h]]), height_m)
