"""Shelf interactions: hand episodes become pick/put/touch events with plate, SKU, position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iot.store import Camera, load_store
from vision.detections import Detections
from vision.shelf_interactions import (
    InteractionSettings,
    ShelfInteractionTracker,
    face_point_m,
)
from vision.sku import SkuGuess

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1_800_000_000.0
# g01's south face (y = 3.5 m) seen from across the aisle, looking north (+y), level
CAMERA = Camera(
    id="cam-shelf-test",
    kind="shelf",
    gondola="g01",
    position_m=(4.0, 1.5, 1.0),
    yaw_deg=0.0,
    pitch_deg=90.0,
    focal_px=300.0,
    fps=10.0,
)
# plate zones of the bottom shelf, left to right (pixels)
ZONES = {
    "g01-s1-p1": (100.0, 240.0, 250.0, 300.0),
    "g01-s1-p2": (250.0, 240.0, 390.0, 300.0),
    "g01-s1-p3": (390.0, 240.0, 540.0, 300.0),
}


def fake_classify(crop: np.ndarray, candidates: list[str] | None) -> SkuGuess:
    return SkuGuess("SKU002", 0.9, {"SKU002": 0.9, "SKU001": 0.1})


def hand_path(x: float, n_in: int = 4) -> list[np.ndarray]:
    """A hand box rising from the image bottom into the zone row and back."""
    ys = [440, 380, 320] + [250] * n_in + [320, 380, 440]
    return [np.array([x - 20, y, x + 20, y + 40], float) for y in ys]


def run(paths: list[tuple[list[np.ndarray], list[bool]]]) -> list:
    tracker = ShelfInteractionTracker(STORE, CAMERA, ZONES, fake_classify, InteractionSettings())
    image = np.zeros((480, 640, 3), np.uint8)
    events = []
    for k in range(max(len(p) for p, _ in paths)):
        boxes, scores, classes = [], [], []
        for path, holding in paths:
            if k < len(path):
                # a holding hand is one box with the package above the fingers
                grown = np.array([0, -15, 0, 0]) if holding[k] else np.zeros(4)
                boxes.append(path[k] + grown)
                scores.append(0.9)
                classes.append(1 if holding[k] else 0)
        dets = Detections.from_arrays(np.array(boxes).reshape(-1, 4), scores, classes)
        events += tracker.process(T0 + k * 0.1, image, dets)
    return events + tracker.flush()


@pytest.mark.parametrize(
    ("case", "holding", "action", "sku"),
    [
        ("empty in, holding out", [False] * 5 + [True] * 5, "pick", "SKU002"),
        ("holding in, empty out", [True] * 5 + [False] * 5, "put", "SKU002"),
        ("empty all along", [False] * 10, "touch", None),
    ],
)
def test_an_episode_is_decided_from_the_hand_going_in_and_out(case, holding, action, sku) -> None:
    (event,) = run([(hand_path(320), holding)])
    assert event.action == action, case
    assert event.sku == sku
    assert event.plate_id == "g01-s1-p2"
    assert event.started_s == pytest.approx(T0 + 0.3)
    assert event.event_time_s == pytest.approx(T0 + 0.6)
    assert event.confidence > 0.5


def test_two_hands_side_by_side_are_two_events_at_their_own_positions() -> None:
    left = (hand_path(170), [False] * 5 + [True] * 5)
    right = (hand_path(470), [True] * 5 + [False] * 5)
    events = sorted(run([left, right]), key=lambda e: e.hand_x_m)
    assert [(e.plate_id, e.action) for e in events] == [("g01-s1-p1", "pick"), ("g01-s1-p3", "put")]
    assert events[1].hand_x_m - events[0].hand_x_m > 1.0
    assert all(e.hand_y_m < 3.5 for e in events)  # the aisle side of a south face


def test_a_hand_that_never_reaches_a_plate_makes_no_event() -> None:
    path = [np.array([300, y, 340, y + 40], float) for y in (440, 400, 380, 400, 440)]
    assert run([(path, [False] * 5)]) == []


def test_face_point_is_where_the_pixel_ray_meets_the_face() -> None:
    x, z = face_point_m(CAMERA, 320.0, 240.0, 3.5)
    assert x == pytest.approx(4.0) and z == pytest.approx(1.0)
    x_right, _ = face_point_m(CAMERA, 470.0, 240.0, 3.5)
    assert x_right == pytest.approx(4.0 + 150 / 300 * 2.0)


def test_a_camera_that_is_not_a_shelf_camera_is_refused() -> None:
    ceiling = Camera(id="c", kind="ceiling", position_m=(1.0, 1.0, 3.0))
    with pytest.raises(ValueError, match="not a shelf camera"):
        ShelfInteractionTracker(STORE, ceiling, ZONES, None)


def test_on_a_shared_plate_the_facings_the_hand_reached_say_which_sku() -> None:
    from vision.shelf_interactions import facing_columns_px

    twins = load_store(ROOT / "stores" / "twins.yaml")
    cam = next(c for c in twins.devices.cameras if c.id == "cam-shelf-g01")
    columns = facing_columns_px(twins, cam)
    plate, cols = next((p, c) for p, c in columns.items() if len(c) >= 2)
    zones = {plate: (min(c[1] for c in cols) - 2, 100.0, max(c[2] for c in cols) + 2, 300.0)}
    (sku_a, _, _), (sku_b, b0, b1) = cols[0], cols[1]

    def wrong_looks(crop: np.ndarray, candidates: list[str] | None) -> SkuGuess:
        return SkuGuess(sku_a, 0.6, {sku_a: 0.6, sku_b: 0.4})  # appearance leans the wrong way

    tracker = ShelfInteractionTracker(twins, cam, zones, wrong_looks)
    image = np.zeros((480, 640, 3), np.uint8)
    u = (b0 + b1) / 2
    events = []
    for k, y in enumerate([460, 400, 200, 200, 200, 200, 400, 460]):
        top = y - 12 if k >= 4 else y  # holding: the package shows above the hand
        dets = Detections.from_arrays(
            np.array([[u - 10, top, u + 10, y + 20]], float), [0.9], [1 if k >= 4 else 0]
        )
        events += tracker.process(T0 + k * 0.1, image, dets)
    (event,) = events + tracker.flush()
    assert (event.action, event.plate_id, event.sku) == ("pick", plate, sku_b)
    assert event.sku_confidence > 0.8


def test_a_touch_on_a_shared_plate_names_the_facing_the_hand_was_over() -> None:
    # the detector never saw the package (every frame an empty hand): the scale
    # will say a unit left; the camera still says where the hand reached
    from vision.shelf_interactions import facing_columns_px

    twins = load_store(ROOT / "stores" / "twins.yaml")
    cam = next(c for c in twins.devices.cameras if c.id == "cam-shelf-g01")
    plate, cols = next((p, c) for p, c in facing_columns_px(twins, cam).items() if len(c) >= 2)
    zones = {plate: (min(c[1] for c in cols) - 2, 100.0, max(c[2] for c in cols) + 2, 300.0)}
    sku, u0, u1 = cols[-1]
    tracker = ShelfInteractionTracker(twins, cam, zones, None)
    image = np.zeros((480, 640, 3), np.uint8)
    u = (u0 + u1) / 2
    events = []
    for k, y in enumerate([460, 400, 200, 200, 200, 400, 460]):
        dets = Detections.from_arrays(np.array([[u - 10, y, u + 10, y + 20]], float), [0.9], [0])
        events += tracker.process(T0 + k * 0.1, image, dets)
    (event,) = events + tracker.flush()
    assert (event.action, event.sku) == ("touch", sku)
    assert event.sku_confidence > 0.8


def test_a_touch_on_a_plate_of_one_sku_names_none() -> None:
    (event,) = run([(hand_path(170), [False] * 10)])
    assert (event.action, event.sku) == ("touch", None)


@pytest.mark.parametrize(
    ("hand_score", "holding_score", "holding"), [(0.3, 0.2, False), (0.2, 0.3, True)]
)
def test_an_unsure_detector_s_two_boxes_on_one_hand_are_one_hand_of_the_likelier_class(
    hand_score: float, holding_score: float, holding: bool
) -> None:
    from vision.shelf_interactions import merge_hand_boxes

    dets = Detections.from_arrays(
        np.array([[100, 200, 120, 240], [100, 196, 120, 240], [300, 200, 320, 240]], float),
        [hand_score, holding_score, 0.5],
        [0, 1, 0],
    )
    merged = merge_hand_boxes(dets, InteractionSettings())
    assert len(merged) == 2  # the hand at x=100 once, the other hand kept
    first = int(np.argmin(merged.xyxy[:, 0]))
    assert (int(merged.class_id[first]) == 1) is holding
