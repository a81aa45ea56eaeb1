"""Walking paths stay off the gondolas; spots are in the aisle."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from iot.store import Store, load_store
from sim.floorplan import FloorPlan, path_length_m

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(ROOT / "stores" / "demo.yaml")


@pytest.fixture(scope="module")
def plan(store: Store) -> FloorPlan:
    return FloorPlan(store)


def _inside_gondola(store: Store, x: float, y: float) -> bool:
    return any(
        g.x_m <= x <= g.x_m + g.length_m and g.y_m <= y <= g.y_m + g.depth_m for g in store.gondolas
    )


def test_spots_are_free_and_in_reach(store: Store, plan: FloorPlan) -> None:
    for p in store.plates():
        x, y = plan.spot(p)
        assert plan.free(x, y), p
        assert store.distance_to_plate_m(p, x, y) == pytest.approx(0.45)
        wx, wy = plan.wait_point(p)
        assert plan.free(wx, wy), p
        assert math.dist((x, y), (wx, wy)) == pytest.approx(1.0)


def test_paths_between_all_spots_avoid_gondolas(store: Store, plan: FloorPlan) -> None:
    entry = store.gates("entry")[0].centre_m
    points = [(entry[0], entry[1] + 0.6)] + [plan.spot(p) for p in store.plates()[::5]]
    for a in points:
        for b in points:
            path = plan.path(a, b)
            assert path[0] == a and path[-1] == b
            # Walk the polyline finely: never through a gondola.
            for p, q in itertools.pairwise(path):
                for f in np.linspace(0, 1, 50):
                    x, y = p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1])
                    assert not _inside_gondola(store, x, y), (a, b, x, y)
            assert path_length_m(path) >= math.dist(a, b) - 1e-9


def test_smoothing_gives_few_legs(plan: FloorPlan) -> None:
    path = plan.path(plan.spot("g01-s1-p1"), plan.spot("g07-s2-p3"))
    assert len(path) <= 6
