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
    assert whole_in_view([overhead(5.0, 6.0)], (5.0, 6.8))
    assert not whole_in_view([overhead(5.0, 6.0)], (5.0, 10.5))
    assert not seen_apart([overhead(5.0, 6.0)], (5.0, 6.8), (5.0, 10.5))


def test_a_person_straight_under_the_camera_is_not_counted_as_seen() -> None:
    # the detector's measured blind spot (smartstore/camera_coverage.py, BLIND_M)
    assert not whole_in_view([overhead(5.0, 6.0)], (5.1, 6.1))
    assert whole_in_view([overhead(5.0, 6.0)], (5.0, 6.7))


def test_a_row_over_every_aisle_sees_more_close_pairs_apart_than_the_demo_rows() -> None:
    demo, aisles = load_store("stores/demo.yaml"), load_store("stores/demo-aisles.yaml")
    sc = parse_scenario(
        {"store": "stores/demo.yaml", "seed": 5, "arrivals": {"visits": 12}}, base_dir="."
    )
    visits = plan_visits(demo, sc)
    before, after = coverage(demo, visits), coverage(aisles, visits)
    assert after.close_pair_samples == before.close_pair_samples > 0
    assert after.pairs_seen_apart > before.pairs_seen_apart
    assert after.whole_body_in_view > before.whole_body_in_view


def test_cli_prints_the_shares(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios/demo.yaml"]) == 0
    assert "ceiling cameras: 8" in capsys.readouterr().out
    assert main(["scenarios/demo.yaml", "--store", "stores/demo-aisles.yaml"]) == 0
    out = capsys.readouterr().out
    assert "ceiling cameras: 12" in out and "seen apart:" in out
