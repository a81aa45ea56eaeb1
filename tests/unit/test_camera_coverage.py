"""Counting whether ceiling cameras can tell two close shoppers apart."""

from __future__ import annotations

import pytest

from iot.store import Camera, load_store
from sim.scenario import parse_scenario
from sim.shoppers import plan_visits
from smartstore.camera_coverage import coverage, main, seen_apart, whole_in_view


def overhead(x: float, y: float) -> Camera:
    return Camera(id="cam-t", kind="ceiling", position_m=(x, y, 3.4), yaw_deg=90.0, focal_px=200.0)


def test_a_camera_above_two_people_side_by_side_sees_them_apart() -> None:
    assert seen_apart([overhead(5.0, 6.5)], (5.0, 6.0), (5.0, 7.0))


def test_a_camera_looking_along_their_line_sees_one_behind_the_other() -> None:
    # 2.5 m off, in line with both: the nearer body covers the further one in the image.
    assert not seen_apart([overhead(5.0, 3.5)], (5.0, 6.0), (5.0, 7.0))
    assert seen_apart([overhead(5.0, 3.5), overhead(5.0, 6.5)], (5.0, 6.0), (5.0, 7.0))


def test_a_body_half_out_of_the_image_is_not_whole_in_view() -> None:
    assert whole_in_view([overhead(5.0, 6.0)], (5.0, 6.0))
    assert not whole_in_view([overhead(5.0, 6.0)], (5.0, 10.5))
    assert not seen_apart([overhead(5.0, 6.0)], (5.0, 6.0), (5.0, 10.5))


def test_the_demo_rows_see_more_close_pairs_apart_than_two_rows() -> None:
    store = load_store("stores/demo.yaml")
    sc = parse_scenario(
        {"store": "stores/demo.yaml", "seed": 5, "arrivals": {"visits": 12}}, base_dir="."
    )
    visits = plan_visits(store, sc)
    now = coverage(store, visits)
    cams = [c for c in store.devices.cameras if c.kind != "ceiling"]
    two_rows = [
        overhead(x, y).model_copy(update={"id": f"c{x}{y}"})
        for y in (3.5, 9.5)
        for x in (2.0, 6.0, 10.0, 14.0)
    ]
    old = store.model_copy(
        update={"devices": store.devices.model_copy(update={"cameras": cams + two_rows})}
    )
    before = coverage(old, visits)
    assert now.close_pair_samples == before.close_pair_samples > 0
    assert now.pairs_seen_apart > before.pairs_seen_apart
    assert now.whole_body_in_view == pytest.approx(1.0)


def test_cli_prints_the_shares(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios/demo.yaml"]) == 0
    out = capsys.readouterr().out
    assert "ceiling cameras: 12" in out and "seen apart:" in out
