"""Rendered ceiling cameras: geometry of the ground truth, occlusion, determinism, speed."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from iot.cameras import world_to_pixel
from iot.store import Camera, Store, load_store
from sim.render import LIGHTING_PRESETS, CeilingRenderer, RenderSettings
from sim.scenario import parse_scenario
from sim.shoppers import VisitPlan
from sim.twin import Twin

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_767_603_600.0


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(ROOT / "stores" / "demo.yaml")


def standing(index: int, x: float, y: float) -> VisitPlan:
    """A shopper standing still at (x, y) for a minute."""
    return VisitPlan(
        index=index,
        token=f"v-{index:08x}",
        track_id=f"trk-{index + 1}",
        speed_m_s=1.0,
        scan_s=T0,
        exit_s=T0 + 60,
        track_start_s=T0,
        track_end_s=T0 + 60,
        times_s=np.array([T0, T0 + 60]),
        xs_m=np.array([x, x]),
        ys_m=np.array([y, y]),
    )


def fake_twin(*visits: VisitPlan) -> Any:
    # The renderer reads only ``visits`` from a twin.
    return SimpleNamespace(visits=list(visits))


def test_person_below_camera_is_centred_and_box_holds_head(store: Store) -> None:
    cam = store.devices.cameras[0]
    x, y = cam.position_m[0], cam.position_m[1]
    frame = CeilingRenderer(store, seed=1).render(fake_twin(standing(0, x, y)), cam.id, T0 + 5)
    assert len(frame.people) == 1
    p = frame.people[0]
    cx, cy = (p.xyxy[0] + p.xyxy[2]) / 2, (p.xyxy[1] + p.xyxy[3]) / 2
    assert abs(cx - cam.width_px / 2) < 15 and abs(cy - cam.height_px / 2) < 15
    head, _ = world_to_pixel(cam, np.array([[x, y, 1.65]]))
    assert p.xyxy[0] <= head[0, 0] <= p.xyxy[2] and p.xyxy[1] <= head[0, 1] <= p.xyxy[3]
    assert p.visibility > 0.95
    assert p.track_id == "trk-1" and p.floor_m == pytest.approx((x, y))
    # The person is drawn: the box region differs from an empty frame.
    empty = CeilingRenderer(store, seed=1).render(fake_twin(), cam.id, T0 + 5)
    x0, y0, x1, y1 = (int(v) for v in p.xyxy)
    diff = np.abs(frame.image[y0:y1, x0:x1].astype(int) - empty.image[y0:y1, x0:x1]).mean()
    assert diff > 20


def test_person_outside_footprint_is_not_in_truth(store: Store) -> None:
    renderer = CeilingRenderer(store, seed=1)
    twin = fake_twin(standing(0, 14.0, 10.0))
    frame = renderer.render(twin, "cam-ceil-01", T0 + 5)
    assert frame.people == ()
    assert renderer.people_in_view(twin, "cam-ceil-01", T0 + 5) == []
    assert [p.track_id for p in renderer.render(twin, "cam-ceil-08", T0 + 5).people] == ["trk-1"]


def test_boxes_are_clipped_to_the_image(store: Store) -> None:
    cam = store.devices.cameras[0]  # yaw 90: image right is floor +y
    frame = CeilingRenderer(store, seed=1).render(fake_twin(standing(0, 2.0, 8.77)), cam.id, T0)
    (p,) = frame.people
    head, _ = world_to_pixel(cam, np.array([[2.0, 8.77, 1.65]]))
    assert head[0, 0] > cam.width_px  # the unclipped body leaves the image...
    assert 0 <= p.xyxy[0] < p.xyxy[2] == cam.width_px  # ...the box stops at its edge
    assert 0 <= p.xyxy[1] < p.xyxy[3] <= cam.height_px
    assert 0 < p.visibility < 1


def test_gondola_between_camera_and_person_lowers_visibility(store: Store) -> None:
    # Block g01/g03 spans y 3.5-4.5; the camera looks at a person just behind it.
    cam = Camera(id="cam-test", kind="ceiling", position_m=(4.0, 2.0, 3.4), focal_px=100.0)
    twin = fake_twin(standing(0, 4.0, 5.0))
    tall = CeilingRenderer(store, [cam], seed=1).render(twin, cam.id, T0)
    flat = CeilingRenderer(
        store, [cam], seed=1, settings=RenderSettings(gondola_height_m=0.05)
    ).render(twin, cam.id, T0)
    assert flat.people[0].visibility > 0.95
    assert tall.people[0].visibility < flat.people[0].visibility - 0.2
    assert tall.people[0].xyxy == flat.people[0].xyxy  # the box is the full extent


def test_nearer_person_hides_farther_one(store: Store) -> None:
    cam = store.devices.cameras[0]
    x, y = cam.position_m[0], cam.position_m[1]
    # Seen from above, the nearer shopper's head and shoulders cover the farther one's legs.
    alone = CeilingRenderer(store, seed=1).render(fake_twin(standing(1, x, y + 1.6)), cam.id, T0)
    both = CeilingRenderer(store, seed=1).render(
        fake_twin(standing(0, x, y + 1.0), standing(1, x, y + 1.6)), cam.id, T0
    )
    vis = {p.track_id: p.visibility for p in both.people}
    assert vis["trk-1"] > 0.95
    assert vis["trk-2"] < alone.people[0].visibility - 0.1


@pytest.fixture(scope="module")
def twin() -> Twin:
    sc = parse_scenario(
        {"store": "stores/demo.yaml", "seed": 4, "arrivals": {"visits": 6}}, base_dir=ROOT
    )
    return Twin(load_store(sc.store), sc)


def test_same_seed_same_bytes_other_seed_other_bytes(twin: Twin) -> None:
    t = twin.start_s + 20.0
    a = CeilingRenderer(twin.store, seed=3).render(twin, "cam-ceil-01", t)
    b = CeilingRenderer(twin.store, seed=3).render(twin, "cam-ceil-01", t)
    c = CeilingRenderer(twin.store, seed=4).render(twin, "cam-ceil-01", t)
    assert a.image.tobytes() == b.image.tobytes() and a.people == b.people
    assert a.image.tobytes() != c.image.tobytes()


def test_lighting_changes_the_image(twin: Twin) -> None:
    t = twin.start_s + 20.0
    day = CeilingRenderer(twin.store, seed=3).render(twin, "cam-ceil-02", t).image
    evening = (
        CeilingRenderer(
            twin.store, seed=3, settings=RenderSettings(lighting=LIGHTING_PRESETS["evening"])
        )
        .render(twin, "cam-ceil-02", t)
        .image
    )
    assert evening.mean() < day.mean() - 10
    ratio = [img[..., 2].mean() / img[..., 0].mean() for img in (day, evening)]
    assert ratio[1] > ratio[0] * 1.1  # warmer


def test_walking_people_are_found_and_frame_speed(twin: Twin) -> None:
    renderer = CeilingRenderer(twin.store, seed=3)
    times = np.arange(twin.start_s, twin.end_s, 0.5)
    seen = [
        (cam, float(t))
        for t in times
        for cam in renderer.cameras
        if renderer.people_in_view(twin, cam, float(t))
    ]
    assert seen, "no camera ever saw a shopper"
    for cam, t in seen[:: max(1, len(seen) // 40)]:
        for p in renderer.render(twin, cam, t).people:
            assert 0 <= p.xyxy[0] < p.xyxy[2] <= 640 and 0 <= p.xyxy[1] < p.xyxy[3] <= 480
            assert 0.0 <= p.visibility <= 1.0
    renderer.render(twin, seen[0][0], seen[0][1])  # the static view is built once per camera
    start = time.perf_counter()
    n_people = 0
    for cam, t in seen[:50]:
        n_people += len(renderer.render(twin, cam, t).people)
    ms = (time.perf_counter() - start) / len(seen[:50]) * 1000
    print(f"render: {ms:.2f} ms per 640x480 frame, {n_people / len(seen[:50]):.1f} people/frame")


def test_unknown_camera_is_named(store: Store) -> None:
    with pytest.raises(KeyError, match="cam-nope"):
        CeilingRenderer(store, seed=1).render(fake_twin(), "cam-nope", T0)
