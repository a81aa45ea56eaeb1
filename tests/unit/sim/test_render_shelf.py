"""Rendered shelf cameras: hands and held products where the truth says, stock, looks, speed."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from iot.store import Store, load_store
from sim.render import Lighting, RenderSettings
from sim.render_body import appearance_for
from sim.render_package import package_image
from sim.render_shelf import (
    HandTruth,
    ShelfRenderer,
    StockLedger,
    dwell_window,
    plate_zones_px,
    reach_phase,
)
from sim.scenario import parse_scenario
from sim.shoppers import Reach
from sim.twin import Twin

ROOT = Path(__file__).resolve().parents[3]
# no noise, no drift, no blur: pixels keep the exact colours they were drawn with
CLEAN = RenderSettings(
    lighting=Lighting(gain_swing=0.0, cast_swing=0.0), noise_sigma=0.0, exposure_s=0.0
)


@pytest.fixture(scope="module")
def twin() -> Twin:
    sc = parse_scenario(
        {
            "store": "stores/demo.yaml",
            "seed": 23,
            "arrivals": {"visits": 12, "arrival_rate_per_min": 6.0},
        },
        base_dir=ROOT,
    )
    return Twin(load_store(sc.store), sc)


@pytest.fixture(scope="module")
def clean(twin: Twin) -> ShelfRenderer:
    return ShelfRenderer(twin.store, seed=4, settings=CLEAN)


def _reaches(renderer: ShelfRenderer, twin: Twin, limit: int = 12) -> list[tuple[str, Reach]]:
    """(camera, reach) pairs over every shelf camera, round-robin so several faces show up."""
    per_cam = [
        [(cam, r) for r in renderer.face_reaches(twin, cam)] for cam in sorted(renderer.cameras)
    ]
    mixed = [x for group in itertools.zip_longest(*per_cam) for x in group if x is not None]
    return mixed[:limit]


def _hand_for(hands: tuple[HandTruth, ...], reach: Reach) -> HandTruth:
    found = [h for h in hands if h.token == reach.token and h.plate_id == reach.plate_id]
    assert len(found) == 1, f"expected one hand of {reach.token} at {reach.plate_id}: {hands}"
    return found[0]


def _dwell_times(reach: Reach) -> tuple[float, float]:
    """A time in the dwell before the units move, and one after."""
    arrive, leave = dwell_window(reach)
    return (arrive + reach.change_s) / 2, (reach.change_s + leave) / 2


def test_same_seed_same_bytes_other_seed_other_bytes(twin: Twin) -> None:
    cam, reach = _reaches(ShelfRenderer(twin.store, seed=1), twin)[0]
    t = (reach.start_s + reach.end_s) / 2
    a = ShelfRenderer(twin.store, seed=1).render(twin, cam, t)
    b = ShelfRenderer(twin.store, seed=1).render(twin, cam, t)
    c = ShelfRenderer(twin.store, seed=2).render(twin, cam, t)
    assert a.image.tobytes() == b.image.tobytes() and a.hands == b.hands
    assert a.image.tobytes() != c.image.tobytes()


def test_hand_boxes_lie_on_skin(clean: ShelfRenderer, twin: Twin) -> None:
    checked = 0
    for cam, reach in _reaches(clean, twin):
        skin = np.array(appearance_for(4, reach.visit).skin_bgr)
        for t in _dwell_times(reach):
            frame = clean.render(twin, cam, t)
            x0, y0, x1, y1 = (round(v) for v in _hand_for(frame.hands, reach).xyxy)
            is_skin = np.all(np.abs(frame.image.astype(int) - skin) <= 2, axis=-1)
            inside = is_skin[y0:y1, x0:x1]
            assert inside.mean() > 0.35, f"{cam} t={t}: only {inside.mean():.0%} of the box is skin"
            # and the box holds the hand's skin: little of it spills out around the box
            pad = 15
            around = is_skin[max(y0 - pad, 0) : y1 + pad, max(x0 - pad, 0) : x1 + pad]
            assert inside.sum() >= 0.9 * around.sum()
            checked += 1
    assert checked >= 8


def test_hand_travels_from_the_aisle_edge_into_its_plate_zone(
    clean: ShelfRenderer, twin: Twin
) -> None:
    for cam, reach in _reaches(clean, twin, limit=6):
        zone = plate_zones_px(twin.store, clean.camera(cam))[reach.plate_id]
        early = clean.render(twin, cam, reach.start_s + 0.02)
        assert not [h for h in early.hands if h.token == reach.token], "hand starts out of view"
        t_dwell = dwell_window(reach)[0] + 0.05
        box = _hand_for(clean.render(twin, cam, t_dwell).hands, reach).xyxy
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert zone[0] <= cx <= zone[2] and zone[1] <= cy <= zone[3], (cam, reach.plate_id)
        mid = reach_phase(reach, reach.start_s + 0.1)
        assert mid[0] == "approach" and 0.0 < mid[1] < 1.0


def test_held_product_is_the_reachs_sku_and_looks_like_it(clean: ShelfRenderer, twin: Twin) -> None:
    skus = sorted(twin.store.items)
    compared = 0
    for cam, reach in _reaches(clean, twin, limit=20):
        before, after = _dwell_times(reach)
        empty_t, full_t = (before, after) if reach.action == "pick" else (after, before)
        empty = _hand_for(clean.render(twin, cam, empty_t).hands, reach)
        assert not empty.holding and empty.sku is None and empty.product_xyxy is None
        frame = clean.render(twin, cam, full_t)
        full = _hand_for(frame.hands, reach)
        assert full.holding and full.sku == reach.sku and full.product_xyxy is not None
        if reach.quantity != 1:
            continue  # several units fan out; the single-package comparison does not apply
        x0, y0, x1, y1 = (round(v) for v in full.product_xyxy)
        region = frame.image[y0:y1, x0:x1].astype(float)
        skin = np.array(appearance_for(4, reach.visit).skin_bgr)
        visible = ~np.all(np.abs(region - skin) <= 2, axis=-1)
        mad = {
            sku: float(np.abs(region - package_image(sku, x1 - x0, y1 - y0))[visible].mean())
            for sku in skus
        }
        own = mad.pop(reach.sku)
        assert own < 2.0, f"{reach.sku} in hand differs from its package by {own:.1f}"
        assert own < min(mad.values()) - 10.0
        compared += 1
    assert compared >= 3


def test_stock_follows_the_reaches(clean: ShelfRenderer, twin: Twin) -> None:
    ledger = StockLedger(twin.store, twin.visits)
    for _, reach in _reaches(clean, twin):
        units = ledger.units_at([reach.plate_id], reach.change_s - 1e-3)[
            (reach.plate_id, reach.sku)
        ]
        after = ledger.units_at([reach.plate_id], reach.change_s)[(reach.plate_id, reach.sku)]
        assert after - units == (-reach.quantity if reach.action == "pick" else reach.quantity)
    entry = twin.store.planogram[0]
    assert ledger.units_at([entry.plate], twin.start_s)[(entry.plate, entry.sku)] == (
        entry.initial_units
    )


def test_every_pair_of_demo_skus_looks_different(twin: Twin) -> None:
    images = {sku: package_image(sku, 24, 64).astype(float) for sku in twin.store.items}
    worst = min(
        (float(np.abs(images[a] - images[b]).mean()), a, b)
        for a, b in itertools.combinations(sorted(images), 2)
    )
    assert worst[0] > 20.0, f"{worst[1]} and {worst[2]} look alike (mean abs diff {worst[0]:.1f})"


def test_plate_zones_inside_the_image_and_in_plate_order(twin: Twin) -> None:
    store: Store = twin.store
    shelf_cams = [c for c in store.devices.cameras if c.kind == "shelf"]
    assert shelf_cams
    for cam in shelf_cams:
        zones = plate_zones_px(store, cam)
        gondola = next(g for g in store.gondolas if g.id == cam.gondola)
        watched = [s for s in gondola.shelves if s.plates[0].id in zones]
        assert watched and sum(len(s.plates) for s in watched) == len(zones)
        for x0, y0, x1, y1 in zones.values():
            assert 0 <= x0 < x1 <= cam.width_px and 0 <= y0 < y1 <= cam.height_px
        for shelf in watched:
            xs = [zones[p.id][0] for p in shelf.plates]
            # plates run along +x; a camera looking at a north face sees +x on its left
            assert xs == sorted(xs, reverse=shelf.side == "north") and len(set(xs)) == len(xs)
            for a, b in itertools.pairwise(shelf.plates):
                left, right = sorted((zones[a.id], zones[b.id]))
                assert left[2] <= right[0] + 1e-6, "neighbouring zones overlap"
        for low, high in itertools.pairwise(sorted(watched, key=lambda s: s.height_m)):
            assert zones[high.plates[0].id][3] <= zones[low.plates[0].id][1] + 1e-6


def test_unknown_camera_is_named(clean: ShelfRenderer, twin: Twin) -> None:
    with pytest.raises(KeyError, match="cam-ceil-01"):
        clean.render(twin, "cam-ceil-01", twin.start_s)


def test_frame_speed(twin: Twin) -> None:
    renderer = ShelfRenderer(twin.store, seed=3)
    pairs = _reaches(renderer, twin, limit=2)
    times = [(cam, float(t)) for cam, r in pairs for t in np.linspace(r.start_s, r.end_s, 12)]
    for cam, t in times:  # warm: static faces and stock states cached
        renderer.render(twin, cam, t)
    start = time.perf_counter()
    hands = sum(len(renderer.render(twin, cam, t).hands) for cam, t in times)
    ms = (time.perf_counter() - start) / len(times) * 1000
    print(f"shelf render: {ms:.2f} ms per 640x480 frame, {hands / len(times):.2f} hands/frame")
    assert hands > 0
