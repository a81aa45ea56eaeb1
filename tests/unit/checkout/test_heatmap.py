"""Heat grids: person-seconds in windows, half-life decay, bounded retention, the PNG."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from checkout.footfall import FootfallService
from checkout.footfall_api import footfall_router
from checkout.heatmap import HeatGrid, HeatSettings, render_png, write_png
from iot.bus import LocalTransport
from iot.payloads import TrackBatch, TrackPoint

T0 = 1_800_000_000.0  # a whole minute


def batch(t: float, points: list[tuple[float, float]], n: int, device: str = "positioning"):
    return TrackBatch(
        id=f"{device}.{n}",
        event_time_s=t,
        device_id=device,
        tracks=[TrackPoint(track_id=f"p{k}", x_m=x, y_m=y) for k, (x, y) in enumerate(points)],
    )


def feed(heat: HeatGrid, seconds: float, points, *, start: float = T0, period: float = 0.2):
    """Batches every ``period`` for ``seconds``: the people at ``points`` stand still."""
    n = round(seconds / period)
    for k in range(n + 1):
        heat.add(batch(start + k * period, points, k))
    return n * period * len(points)  # person-seconds between the first and the last batch


def test_window_sums_equal_the_person_seconds_fed(store) -> None:
    heat = HeatGrid.for_store(store)
    points = [(1.1, 1.1), (3.3, 2.9), (8.0, 6.0)]
    fed = feed(heat, 150.0, points)  # spans three one-minute slices
    total = heat.window(T0, T0 + 3600)
    assert total.person_s.sum() == pytest.approx(fed, rel=1e-9)
    assert heat.fed_person_s == pytest.approx(fed, rel=1e-9)
    cell = heat.settings.cell_m
    for x, y in points:  # all of it in the cell each person stood in
        assert total.person_s[int(y // cell), int(x // cell)] == pytest.approx(150.0, rel=1e-9)
    first = heat.window(T0, T0 + 60)
    assert (first.from_s, first.to_s) == (T0, T0 + 60)
    assert first.person_s.sum() == pytest.approx(60.0 * len(points), rel=1e-9)
    # Windows snap outward to whole slices and add up.
    parts = [heat.window(T0 + 60 * k, T0 + 60 * (k + 1)).person_s.sum() for k in range(3)]
    assert sum(parts) == pytest.approx(fed, rel=1e-9)
    snapped = heat.window(T0 + 10, T0 + 70)
    assert (snapped.from_s, snapped.to_s) == (T0, T0 + 120) and snapped.complete


def test_a_gap_in_the_feed_is_credited_for_at_most_max_hold(store) -> None:
    heat = HeatGrid.for_store(store, HeatSettings(max_hold_s=1.0))
    heat.add(batch(T0, [(2.0, 2.0)], 0))
    heat.add(batch(T0 + 30, [(2.0, 2.0)], 1))  # tracker silent for 30 s
    assert heat.window(T0, T0 + 60).person_s.sum() == pytest.approx(1.0)


def test_off_floor_positions_are_counted_apart(store) -> None:
    heat = HeatGrid.for_store(store)
    feed(heat, 10.0, [(-3.0, 1.0), (4.0, 4.0)])
    assert heat.off_floor_person_s == pytest.approx(10.0)
    assert heat.window(T0, T0 + 60).person_s.sum() == pytest.approx(10.0)


def test_an_older_batch_is_refused(store) -> None:
    heat = HeatGrid.for_store(store)
    feed(heat, 2.0, [(4.0, 4.0)])
    heat.add(batch(T0 + 1.0, [(9.0, 9.0)], 99))
    assert heat.out_of_order == 1
    assert heat.window(T0, T0 + 60).person_s.sum() == pytest.approx(2.0)


def test_live_heat_halves_after_one_half_life(store) -> None:
    heat = HeatGrid.for_store(store, HeatSettings(half_life_s=120.0))
    feed(heat, 10.0, [(5.0, 5.0)])
    heat.flush(T0 + 10.0)  # the person left with the last batch
    now = heat.live(T0 + 10.0)
    assert now.sum() == pytest.approx(10.0, rel=0.05)  # the first seconds decayed a little
    later = heat.live(T0 + 10.0 + 120.0)
    assert later.sum() == pytest.approx(now.sum() / 2, rel=1e-9)
    assert heat.live(T0 + 10.0 + 1200.0).sum() == pytest.approx(now.sum() / 1024, rel=1e-9)
    # Crediting more after a while decays what was there first (it does not stay forever).
    feed(heat, 1.0, [(9.0, 9.0)], start=T0 + 130.0)
    cell = heat.settings.cell_m
    assert heat.live(T0 + 131.0)[int(5 // cell), int(5 // cell)] == pytest.approx(
        now.sum() / 2 * 0.5 ** (1 / 120), rel=1e-6
    )


def test_retention_bounds_the_slices_and_marks_lost_windows(store) -> None:
    heat = HeatGrid.for_store(store, HeatSettings(slice_s=10.0, retention_s=60.0))
    feed(heat, 300.0, [(5.0, 5.0)], period=1.0)
    assert heat.slices <= 6
    old = heat.window(T0, T0 + 60)
    assert not old.complete and old.person_s.sum() == 0
    recent = heat.window(T0 + 250, T0 + 300)
    assert recent.complete and recent.person_s.sum() == pytest.approx(50.0)


def test_png_decodes_with_the_floor_aspect_and_is_deterministic(store, tmp_path) -> None:
    heat = HeatGrid.for_store(store)
    feed(heat, 60.0, [(4.0, 2.0), (12.0, 9.0)])
    grid = heat.window(T0, T0 + 60).person_s
    png = render_png(grid, store, window=(T0, T0 + 60), px_per_m=40)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    height, width = image.shape[:2]
    assert (width, height) == (round(16.0 * 40), round(13.0 * 40))
    assert width / height == pytest.approx(store.floor.width_m / store.floor.depth_m, rel=0.01)
    assert render_png(grid, store, window=(T0, T0 + 60), px_per_m=40) == png
    # The hot cell is painted with the colour map, an empty one keeps the floor colour.
    hot = image[height - round(2.1 * 40), round(4.1 * 40)]
    cold = image[height - round(11.0 * 40), round(8.0 * 40)]
    assert tuple(cold) == (236, 236, 236) and tuple(hot) != (236, 236, 236)
    path = write_png(tmp_path / "heat.png", grid, store, px_per_m=40)
    written = cv2.imread(str(path))
    assert written is not None and written.shape == image.shape


def test_render_refuses_a_grid_of_the_wrong_shape(store) -> None:
    with pytest.raises(ValueError, match=r"expected \(52, 64\)"):
        render_png(np.zeros((10, 10)), store)


@pytest.mark.parametrize(
    ("bad", "field"), [({"cell_m": 0}, "cell_m"), ({"half_life_s": -1}, "half_life_s")]
)
def test_bad_settings_name_the_field(bad, field) -> None:
    with pytest.raises(ValidationError, match=field):
        HeatSettings(**bad)


@pytest.mark.parametrize(
    ("from_s", "to_s", "field"),
    [
        ("0", "1", "from_s"),  # 1970: before any event time
        (str(T0), "1e20", "to_s"),  # past any date a clock can draw
        ("-9.2e18", str(T0), "from_s"),
        (str(T0), "inf", "to_s"),
        ("nan", str(T0), "from_s"),
    ],
)
def test_the_heatmap_route_takes_event_times_only(store, from_s, to_s, field) -> None:
    """Found by the API fuzz: a window out of 2000..2100 failed drawing its dates, as a 500."""
    heat = HeatGrid.for_store(store)
    service = FootfallService(store, LocalTransport(), now=lambda: T0, on_batch=heat.add)
    app = FastAPI()
    app.include_router(footfall_router(service, heat, store))
    client = TestClient(app)
    r = client.get("/heatmap.png", params={"from_s": from_s, "to_s": to_s})
    assert r.status_code == 422, r.text
    assert ["query", field] in [e["loc"] for e in r.json()["detail"]]
    ok = client.get("/heatmap.png", params={"from_s": T0, "to_s": T0 + 60})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
