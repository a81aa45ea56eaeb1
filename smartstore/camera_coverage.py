"""How well a store's ceiling cameras can tell shoppers apart, counted without rendering.

Tracking fails where two shoppers are close and every camera sees them as one
body: from far off the vertical, one stands in front of the other. This
counts, on a scenario's planned trajectories, the moments when two shoppers
are within ``--pair-m`` of each other and asks whether some ceiling camera
sees both whole (feet and head in the image) with their projected bodies
apart (the gap between the two foot-to-head segments in the image wider than
a body). It also reports how much of each shopper's time some camera sees
the whole body. A shopper straight under a camera counts as unseen by it
(``BLIND_M``): seen from directly above, a person is a head on shoulders,
and the shipped ceiling detector, trained on views where few people stand
under a camera, found 16 of 29 such people in the aisle-rows layout against
0.94-1.00 further out (``python -m smartstore.recall_by_offset``).
Used to weigh the demo store's camera rows (docs/architecture.md)::

    python -m smartstore.camera_coverage scenarios/busy.yaml --seed 23
    python -m smartstore.camera_coverage scenarios/busy.yaml --store old-layout.yaml
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iot.cameras import world_to_pixel
from iot.store import Camera, Store, load_store
from sim.scenario import load_scenario_as
from sim.shoppers import VisitPlan, plan_visits

__all__ = ["Coverage", "close_pairs", "coverage", "seen_apart", "whole_in_view"]

HEAD_M = 1.7
BODY_WIDTH_M = 0.5
BLIND_M = 0.5  # within this of a camera's nadir point the detector is unreliable
Point = tuple[float, float]


@dataclass(frozen=True)
class Coverage:
    close_pair_samples: int
    pairs_seen_apart: float  # share of close-pair moments some camera sees as two bodies
    shopper_samples: int
    whole_body_in_view: float  # share of shopper moments some camera sees head to feet


def _body_pixels(cam: Camera, p: Point) -> np.ndarray | None:
    """Feet and head pixels (2, 2) of a shopper at ``p``, or None unless both are in the image.

    None too when ``p`` is straight under the camera (see ``BLIND_M``).
    """
    if np.hypot(p[0] - cam.position_m[0], p[1] - cam.position_m[1]) < BLIND_M:
        return None
    px, in_front = world_to_pixel(cam, np.array([[p[0], p[1], 0.0], [p[0], p[1], HEAD_M]]))
    inside = (px[:, 0] >= 0) & (px[:, 0] <= cam.width_px) & (px[:, 1] >= 0)
    if not (in_front & inside & (px[:, 1] <= cam.height_px)).all():
        return None
    return px


def _segment_gap(a: np.ndarray, b: np.ndarray, samples: int = 9) -> float:
    """Smallest distance between two image segments (sampled along both)."""
    s = np.linspace(0.0, 1.0, samples)[:, None]
    pa, pb = a[0] + (a[1] - a[0]) * s, b[0] + (b[1] - b[0]) * s
    return float(np.min(np.linalg.norm(pa[:, None] - pb[None], axis=-1)))


def whole_in_view(cams: Sequence[Camera], p: Point) -> bool:
    return any(_body_pixels(c, p) is not None for c in cams)


def seen_apart(cams: Sequence[Camera], p: Point, q: Point) -> bool:
    """True when some camera sees both shoppers whole, a body's width apart or more."""
    for cam in cams:
        a, b = _body_pixels(cam, p), _body_pixels(cam, q)
        if a is None or b is None:
            continue
        body_px = cam.focal_px * BODY_WIDTH_M / (cam.position_m[2] - HEAD_M / 2)
        if _segment_gap(a, b) > body_px:
            return True
    return False


def close_pairs(
    visits: Sequence[VisitPlan], step_s: float, pair_m: float
) -> tuple[list[tuple[Point, Point]], list[Point]]:
    """Positions of every two shoppers within ``pair_m`` at each step, and every shopper's."""
    t0 = min(v.track_start_s for v in visits)
    times = np.arange(t0, max(v.track_end_s for v in visits), step_s)
    live = {}
    for v in visits:
        on = (times >= v.track_start_s) & (times <= v.track_end_s)
        live[v.index] = (on, *v.position(times))
    pairs: list[tuple[Point, Point]] = []
    for (on_a, xa, ya), (on_b, xb, yb) in itertools.combinations(live.values(), 2):
        for k in np.nonzero(on_a & on_b & (np.hypot(xa - xb, ya - yb) < pair_m))[0]:
            pairs.append(((float(xa[k]), float(ya[k])), (float(xb[k]), float(yb[k]))))
    singles = [(float(x[k]), float(y[k])) for on, x, y in live.values() for k in np.nonzero(on)[0]]
    return pairs, singles


def coverage(
    store: Store, visits: Sequence[VisitPlan], *, step_s: float = 0.5, pair_m: float = 1.2
) -> Coverage:
    cams = [c for c in store.devices.cameras if c.kind == "ceiling"]
    pairs, singles = close_pairs(visits, step_s, pair_m)
    apart = sum(seen_apart(cams, p, q) for p, q in pairs)
    whole = sum(whole_in_view(cams, p) for p in singles)
    return Coverage(
        close_pair_samples=len(pairs),
        pairs_seen_apart=apart / len(pairs) if pairs else 1.0,
        shopper_samples=len(singles),
        whole_body_in_view=whole / len(singles) if singles else 1.0,
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m smartstore.camera_coverage", description=__doc__)
    ap.add_argument("scenario", help="scenario whose planned trajectories are counted")
    ap.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")
    ap.add_argument("--store", default=None, help="count with this store file's cameras instead")
    ap.add_argument("--pair-m", type=float, default=1.2, help="two shoppers this close are a pair")
    args = ap.parse_args(argv)
    scenario = load_scenario_as(args.scenario, seed=args.seed)
    planned_in = load_store(scenario.store)
    cams_of = load_store(args.store) if args.store else planned_in
    result = coverage(cams_of, plan_visits(planned_in, scenario), pair_m=args.pair_m)
    n_cams = sum(c.kind == "ceiling" for c in cams_of.devices.cameras)
    print(f"ceiling cameras: {n_cams}")
    r = result
    print(f"close-pair moments: {r.close_pair_samples}, seen apart: {r.pairs_seen_apart:.3f}")
    print(f"shopper moments: {r.shopper_samples}, whole body in view: {r.whole_body_in_view:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
