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


def ids_first_and_last(settings: FloorSettings, steps: int = 60) -> dict[str, tuple[str, str]]:
    """The crossing of ``crossing`` run longer: each colour's track id at the start and end."""
    fusion = FloorFusion(STORE, settings)
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for k in range(steps):
        t = T0 + k * 0.2
        xr, xb = 5.0 + 0.05 * k, 7.0 - 0.05 * k
        swap = k >= 20  # the camera tracker swaps its ids where they meet
        obs = [
            CameraObservation("cam", 2 if swap else 1, xr, 5.0, 0.1, RED),
            CameraObservation("cam", 1 if swap else 2, xb, 5.0, 0.1, BLUE),
        ]
        for tr in fusion.update(t, obs).tracks:
            colour = "red" if abs(tr.x_m - xr) < abs(tr.x_m - xb) else "blue"
            first.setdefault(colour, tr.track_id)
            last[colour] = tr.track_id
    return {c: (first[c], last[c]) for c in first}


def test_a_swap_the_positions_made_is_given_back_by_the_anchor_looks() -> None:
    # positions alone follow the camera's swap (as in the test above) ...
    blind = FloorSettings(look_weight_m=0.0, sticky_bonus_m=0.3, anchor_looks=0)
    assert all(a != b for a, b in ids_first_and_last(blind).values())
    # ... and once the two are apart again, each id goes back to the look it started with
    repaired = blind.model_copy(update={"anchor_looks": 8})
    assert all(a == b for a, b in ids_first_and_last(repaired).values())


def walk_with_a_gap(look_after: np.ndarray, gap_steps: int = 20) -> tuple[str, str]:
    """Red walks, vanishes for gap_steps frames (longer than max_coast_s), someone reappears."""
    fusion = FloorFusion(STORE, FloorSettings())
    before = after = ""
    for k in range(40 + gap_steps + 10):
        t = T0 + k * 0.2
        x = 4.0 + 0.02 * k
        if k < 40:
            obs = [CameraObservation("cam", 1, x, 5.0, 0.05, RED)]
        elif k < 40 + gap_steps:
            obs = []
        else:
            obs = [CameraObservation("cam", 2, x, 5.0, 0.05, look_after)]
        tracks = fusion.update(t, obs).tracks
        if tracks and k < 40:
            before = tracks[0].track_id
        elif tracks:
            after = tracks[0].track_id
    return before, after


def test_a_shopper_lost_for_seconds_gets_the_id_back_when_the_look_matches() -> None:
    before, after = walk_with_a_gap(RED)
    assert before and after == before
    stranger_before, stranger = walk_with_a_gap(BLUE)
    assert stranger and stranger != stranger_before


def test_a_track_that_slid_onto_a_lost_shopper_takes_that_shoppers_id() -> None:
    """Blue's track is lost; red's track then shows blue (it slid onto blue): ids follow looks."""
    fusion = FloorFusion(STORE, FloorSettings())
    ids: dict[str, list[str]] = {"red": [], "blue": []}

    def step(k: int, obs: list[CameraObservation]) -> None:
        for tr in fusion.update(T0 + k * 0.2, obs).tracks:
            colour = "red" if abs(tr.x_m - 5.0) < abs(tr.x_m - 8.0) else "blue"
            ids[colour].append(tr.track_id)

    for k in range(20):  # both seen apart: each track learns its anchor
        step(
            k,
            [
                CameraObservation("cam", 1, 5.0, 5.0, 0.05, RED),
                CameraObservation("cam", 2, 8.0, 5.0, 0.05, BLUE),
            ],
        )
    red_id, blue_id = ids["red"][-1], ids["blue"][-1]
    for k in range(20, 35):  # blue's track is lost (unseen past max_coast_s)
        step(k, [CameraObservation("cam", 1, 5.0, 5.0, 0.05, RED)])
    ids = {"red": [], "blue": []}
    for k in range(35, 50):  # the track at 5 m now shows blue: it is following blue
        step(k, [CameraObservation("cam", 1, 5.0 + 0.02 * (k - 35), 5.0, 0.05, BLUE)])
    assert ids["red"][0] == red_id and ids["red"][-1] == blue_id


def ids_by_place(fusion: FloorFusion, k: int, obs: list[CameraObservation]) -> dict[float, str]:
    """One step; each reported track's id keyed by its x rounded to the metre."""
    return {round(tr.x_m): tr.track_id for tr in fusion.update(T0 + k * 0.2, obs).tracks}


def test_a_track_merged_away_is_an_identity_the_survivor_can_take_back() -> None:
    """Blue walks onto red's spot, their tracks merge; red leaves the view, blue walks on.

    The merge kept red's (older) id on the one track left, which then follows
    blue: the merged-away blue id must come back to it, as for a track lost.
    """
    fusion = FloorFusion(STORE, FloorSettings())
    red, blue = ("a", 1), ("b", 1)
    ids: dict[float, str] = {}
    for k in range(20):  # apart: each track learns its anchor
        ids = ids_by_place(
            fusion,
            k,
            [
                CameraObservation(*red, 5.0, 5.0, 0.05, RED),
                CameraObservation(*blue, 8.0, 5.0, 0.05, BLUE),
            ],
        )
    red_id, blue_id = ids[5], ids[8]
    for k in range(20, 30):  # blue walks up to red
        x = 8.0 - 0.3 * (k - 19)
        ids_by_place(
            fusion,
            k,
            [
                CameraObservation(*red, 5.0, 5.0, 0.05, RED),
                CameraObservation(*blue, max(x, 5.05), 5.0, 0.05, BLUE),
            ],
        )
    for k in range(30, 36):  # on top of each other, seen by different cameras: one track
        ids = ids_by_place(
            fusion,
            k,
            [
                CameraObservation(*red, 5.0, 5.0, 0.05, RED),
                CameraObservation(*blue, 5.05, 5.0, 0.05, BLUE),
            ],
        )
    assert list(ids.values()) == [red_id], "the two tracks merged into red's"
    for k in range(36, 56):  # red is gone from view; blue walks on
        ids = ids_by_place(
            fusion, k, [CameraObservation(*blue, 5.05 + 0.05 * (k - 35), 5.0, 0.05, BLUE)]
        )
    assert list(ids.values()) == [blue_id]


def test_a_young_track_on_a_shoppers_person_takes_the_id_that_slid_away() -> None:
    """A camera id slides from red onto blue beside her; red shows up as a new track.

    The old track keeps blue (its camera id's binding wins), and red's new
    track looks like the old track's anchor: the two ids change places.
    """
    fusion = FloorFusion(STORE, FloorSettings())
    ids: dict[float, str] = {}
    for k in range(20):
        ids = ids_by_place(fusion, k, [CameraObservation("a", 1, 5.0, 5.0, 0.05, RED)])
    red_id = ids[5]
    for k in range(20, 40):
        ids = ids_by_place(
            fusion,
            k,
            [
                CameraObservation("a", 1, 5.0, 5.0, 0.05, BLUE),  # the slid camera id
                CameraObservation("a", 2, 6.2, 5.0, 0.05, RED),  # red, outside the gate
            ],
        )
    assert ids[6] == red_id
    assert ids[5] != red_id
