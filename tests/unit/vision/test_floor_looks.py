"""Floor fusion with looks: two people who cross keep their tracks by their clothes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iot.store import load_store
from vision.appearance import describe_person
from vision.floor import CameraObservation, FloorFusion, FloorSettings

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1_800_000_000.0


def look(bgr: tuple[int, int, int]) -> np.ndarray:
    img = np.zeros((40, 40, 3), np.uint8)
    img[:] = bgr
    out = describe_person(img, (0, 0, 40, 40))
    assert out is not None
    return out


RED, BLUE = look((30, 30, 200)), look((200, 60, 30))


def crossing(settings: FloorSettings) -> dict[str, set[str]]:
    """Red walks +x, blue walks -x on one line; they meet halfway. Track ids per colour."""
    fusion = FloorFusion(STORE, settings)
    seen: dict[str, set[str]] = {"red": set(), "blue": set()}
    for k in range(40):
        t = T0 + k * 0.2
        xr, xb = 5.0 + 0.05 * k, 7.0 - 0.05 * k
        # one camera tracker that swaps its ids when they meet (a common failure)
        swap = k >= 20
        obs = [
            CameraObservation("cam", 2 if swap else 1, xr, 5.0, 0.1, RED),
            CameraObservation("cam", 1 if swap else 2, xb, 5.0, 0.1, BLUE),
        ]
        update = fusion.update(t, obs)
        for tr in update.tracks:
            colour = "red" if abs(tr.x_m - xr) < abs(tr.x_m - xb) else "blue"
            if abs(xr - xb) > 0.6:  # only count where the two are clearly apart
                seen[colour].add(tr.track_id)
    return seen


def test_looks_keep_two_crossing_people_apart() -> None:
    seen = crossing(FloorSettings())
    assert len(seen["red"]) == 1 and len(seen["blue"]) == 1
    assert seen["red"] != seen["blue"]


def test_a_sticky_bonus_without_looks_carries_the_camera_swap_over() -> None:
    # why sticky_bonus_m defaults to 0: a discount for staying with the bound
    # store track follows a camera tracker's own id swap
    seen = crossing(FloorSettings(look_weight_m=0.0, sticky_bonus_m=0.3))
    assert seen["red"] & seen["blue"], "the bound ids follow the camera's swap"


def test_without_the_bonus_the_floor_motion_alone_undoes_the_camera_swap() -> None:
    seen = crossing(FloorSettings(look_weight_m=0.0))
    assert seen["red"].isdisjoint(seen["blue"])
