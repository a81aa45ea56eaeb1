"""Camera geometry: pose conventions and pixel/floor round trips."""

from __future__ import annotations

import numpy as np
import pytest

from iot.cameras import camera_rotation, pixel_to_plane, plane_footprint, world_to_pixel
from iot.store import Camera, load_store


def cam(**kw) -> Camera:
    return Camera(id="c", kind="ceiling", **({"position_m": (5.0, 5.0, 3.0)} | kw))


@pytest.mark.parametrize(
    ("pose", "world", "expected_px"),
    [
        # straight down: +x is image right, +y is image top
        ({}, (6.0, 5.0, 0.0), (420.0, 240.0)),
        ({}, (5.0, 6.0, 0.0), (320.0, 140.0)),
        # turned 90 deg counter-clockwise: +y is now image right
        ({"yaw_deg": 90.0}, (5.0, 6.0, 0.0), (420.0, 240.0)),
        # tilted to the horizontal at eye height, looking along +y
        ({"pitch_deg": 90.0, "position_m": (5.0, 5.0, 1.5)}, (5.0, 8.0, 1.5), (320.0, 240.0)),
        ({"pitch_deg": 90.0, "position_m": (5.0, 5.0, 1.5)}, (5.0, 8.0, 0.5), (320.0, 340.0)),
    ],
)
def test_pose_conventions(pose: dict, world: tuple, expected_px: tuple) -> None:
    uv, ok = world_to_pixel(cam(**pose), np.array([world]))
    assert ok.all()
    assert uv[0] == pytest.approx(expected_px, abs=1e-6)


def test_rotation_is_orthonormal_and_right_handed() -> None:
    for yaw in (0.0, 33.0, -120.0):
        for pitch in (0.0, 40.0, 90.0):
            r = camera_rotation(cam(yaw_deg=yaw, pitch_deg=pitch))
            assert r.T @ r == pytest.approx(np.eye(3), abs=1e-12)
            assert np.linalg.det(r) == pytest.approx(1.0)


def test_pixels_round_trip_to_the_plane() -> None:
    rng = np.random.default_rng(3)
    c = cam(yaw_deg=25.0, pitch_deg=30.0)
    floor = np.column_stack([rng.uniform(4, 8, 50), rng.uniform(5, 9, 50), np.full(50, 1.2)])
    uv, ok = world_to_pixel(c, floor)
    assert ok.all()
    back = pixel_to_plane(c, uv, height_m=1.2)
    assert back == pytest.approx(floor[:, :2], abs=1e-9)


def test_points_behind_the_camera_and_rays_above_the_plane() -> None:
    c = cam(pitch_deg=90.0, position_m=(5.0, 5.0, 1.5))
    _, ok = world_to_pixel(c, np.array([[5.0, 2.0, 1.5]]))  # behind a camera looking along +y
    assert not ok.any()
    above = pixel_to_plane(c, np.array([[320.0, 100.0]]), height_m=0.0)  # ray tilts upwards
    assert np.isnan(above).all()


def test_demo_ceiling_cameras_cover_the_shop_floor_at_waist_height() -> None:
    store = load_store("stores/demo.yaml")
    ceiling = [c for c in store.devices.cameras if c.kind == "ceiling"]
    assert len(ceiling) == 8
    xs, ys = np.meshgrid(
        np.arange(0.5, store.floor.width_m, 0.5), np.arange(0.5, store.floor.depth_m, 0.5)
    )
    points = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, 1.0)])
    seen_by = np.zeros(len(points), dtype=int)
    for c in ceiling:
        uv, ok = world_to_pixel(c, points)
        inside = ok & (uv[:, 0] >= 0) & (uv[:, 0] < c.width_px) & (uv[:, 1] >= 0)
        seen_by += inside & (uv[:, 1] < c.height_px)
        assert not np.isnan(plane_footprint(c, 1.0)).any()
    assert (seen_by >= 1).all(), "every 0.5 m of the floor is seen at waist height"
    assert (seen_by >= 2).mean() > 0.2, "neighbouring cameras overlap for hand-offs"


def test_aisle_layout_has_a_camera_row_along_every_aisle() -> None:
    # Aisles: south of the first gondola row (y 0-3.5), between the rows (4.5-7.5) and north
    # of the second (8.5-13). Shoppers side by side across an aisle are told apart only by a
    # camera nearly above them, so a row of cameras runs along each aisle's walking line.
    store = load_store("stores/demo-aisles.yaml")
    rows = {c.position_m[1] for c in store.devices.cameras if c.kind == "ceiling"}
    for walking_line_y in (2.0, 6.0, 10.0):
        assert min(abs(y - walking_line_y) for y in rows) <= 0.5
