"""The store on its cameras: rendered ceiling and shelf frames through both vision paths.

A short scenario, run end to end with no simulated positions: every visit must
be bound to a camera track, closed and receipted, the shelf cameras' sightings
must reach the brain and explain shelf events, and nothing any service sent
may be dead-lettered. (Accuracy at scale is measured by ``smartstore eval``
and reported in the issue notes, not asserted here: it is minutes per run.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smartstore.cameras import CEILING_MANIFEST, SHELF_MANIFEST
from smartstore.evaluate import run_eval

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for manifest in (CEILING_MANIFEST, SHELF_MANIFEST):
        if not manifest.is_file():
            pytest.skip(f"{manifest} is absent; train it (docs/training.md)")
    path = tmp_path_factory.mktemp("scn") / "three.yaml"
    store = (ROOT / "stores" / "demo.yaml").as_posix()
    path.write_text(
        f"store: {store}\nseed: 11\narrivals: {{visits: 3, arrival_rate_per_min: 3.0}}\n"
        "behaviour: {side_by_side_prob: 0.0, put_back_prob: 0.0}\n",
        encoding="utf-8",
    )
    return path


def test_visits_are_tracked_seen_and_receipted_on_cameras_alone(scenario: Path) -> None:
    result = run_eval(scenario, progress=None)
    m, brain = result.metrics, result.brain_stats
    assert m["positioning"] == "cameras" and m["interactions"] == "cameras"
    assert m["visits"] == 3 and m["missing_receipts"] == 0 and m["duplicate_receipts"] == 0
    assert brain["sessions_bound"] >= 3
    assert brain["dead_letters"] == 0
    assert brain["interactions"] > 0 and brain["shelf_events_seen"] > 0
    assert result.cameras is not None and result.cameras["frame_sets"] > 0
    assert result.shelf_cameras is not None and result.shelf_cameras["frames"] > 0


def test_the_ceiling_tracks_follow_each_shopper_on_the_floor(scenario: Path) -> None:
    from smartstore.track_eval import run_track_eval

    result = run_track_eval(scenario, seconds=40.0, start_offset_s=10.0, lighting="evening")
    m = result["overall"]
    assert result["frames"] == 201  # 40 s at 5 Hz, both ends: every step published
    assert m["gt"] > 0, "the window must hold shoppers to score"
    # loose floors: the figures on busy scenarios are measured by eval-tracking
    assert m["mota"] >= 0.8 and m["idf1"] >= 0.8, m
    assert result["position_error_m"]["median"] <= 0.25
