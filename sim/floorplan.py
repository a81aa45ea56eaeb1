"""Walking on the simulated floor: an occupancy grid, A* paths and standing spots.

Gondolas are blocked with a clearance (a shopper's body is not a point), A*
finds a cell path on an 8-connected grid, and string pulling smooths it into
a few straight legs, so simulated tracks look like people, not staircases.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> plan = FloorPlan(load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml"))
>>> path = plan.path((1.8, 0.3), plan.spot("g07-s1-p2"))
>>> all(plan.free(x, y) for x, y in path), path_length_m(path) > 8.0
(True, True)
"""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np

from iot.store import Store

__all__ = ["STANDING_OFFSET_M", "WAIT_OFFSET_M", "FloorPlan", "Point", "path_length_m"]

Point = tuple[float, float]

STANDING_OFFSET_M = (
    0.45  # shopper's standing spot: this far out into the aisle from the plate front
)
WAIT_OFFSET_M = 1.0  # where a shopper waits for an occupied spot, further out into the aisle
_WALL_MARGIN_M = 0.25  # keep paths off the outer walls
_SQRT2 = math.sqrt(2.0)


class FloorPlan:
    """The store floor as a walkable grid, with path finding and standing spots."""

    def __init__(self, store: Store, cell_m: float = 0.2, clearance_m: float = 0.3) -> None:
        if cell_m <= 0 or clearance_m < 0:
            raise ValueError(
                f"cell_m must be > 0 and clearance_m >= 0, got {cell_m}, {clearance_m}"
            )
        self.store = store
        self.cell_m = cell_m
        self.nx = math.ceil(store.floor.width_m / cell_m)
        self.ny = math.ceil(store.floor.depth_m / cell_m)
        self.blocked = self._occupancy(clearance_m)
        self._cache: dict[tuple[tuple[int, int], tuple[int, int]], list[Point]] = {}

    def _occupancy(self, clearance_m: float) -> np.ndarray:
        xs = (np.arange(self.nx) + 0.5) * self.cell_m
        ys = (np.arange(self.ny) + 0.5) * self.cell_m
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        blocked = np.zeros((self.nx, self.ny), dtype=bool)
        for g in self.store.gondolas:
            # Distance from each cell centre to the gondola rectangle.
            dx = np.maximum(np.maximum(g.x_m - gx, 0.0), gx - (g.x_m + g.length_m))
            dy = np.maximum(np.maximum(g.y_m - gy, 0.0), gy - (g.y_m + g.depth_m))
            blocked |= np.hypot(dx, dy) < clearance_m
        w, d = self.store.floor.width_m, self.store.floor.depth_m
        blocked |= (gx < _WALL_MARGIN_M) | (gx > w - _WALL_MARGIN_M)
        blocked |= (gy < _WALL_MARGIN_M) | (gy > d - _WALL_MARGIN_M)
        return blocked

    # --- cells ---

    def cell(self, x: float, y: float) -> tuple[int, int]:
        i = min(max(int(x / self.cell_m), 0), self.nx - 1)
        j = min(max(int(y / self.cell_m), 0), self.ny - 1)
        return i, j

    def centre(self, c: tuple[int, int]) -> Point:
        return ((c[0] + 0.5) * self.cell_m, (c[1] + 0.5) * self.cell_m)

    def free(self, x: float, y: float) -> bool:
        return not self.blocked[self.cell(x, y)]

    def _nearest_free(self, c: tuple[int, int]) -> tuple[int, int]:
        if not self.blocked[c]:
            return c
        free = np.argwhere(~self.blocked)
        k = int(np.argmin((free[:, 0] - c[0]) ** 2 + (free[:, 1] - c[1]) ** 2))
        return int(free[k, 0]), int(free[k, 1])

    # --- spots ---

    def aisle_sign(self, plate_id: str) -> float:
        """+1 if the plate is reached from the aisle at larger y (north face), else -1."""
        _, shelf, _ = self.store.plate(plate_id)
        return 1.0 if shelf.side == "north" else -1.0

    def spot(self, plate_id: str) -> Point:
        """Where a shopper stands to reach the plate: front centre, out into the aisle."""
        (x0, y), (x1, _) = self.store.plate_front_m(plate_id)
        return ((x0 + x1) / 2, y + self.aisle_sign(plate_id) * STANDING_OFFSET_M)

    def wait_point(self, plate_id: str) -> Point:
        """Where a shopper waits for the plate's spot: about 1 m further out (or aside)."""
        sx, sy = self.spot(plate_id)
        sign = self.aisle_sign(plate_id)
        for cand in (
            (sx, sy + sign * WAIT_OFFSET_M),
            (sx - WAIT_OFFSET_M, sy),
            (sx + WAIT_OFFSET_M, sy),
        ):
            if self.free(*cand):
                return cand
        return (sx, sy)

    # --- paths ---

    def path(self, start: Point, goal: Point) -> list[Point]:
        """A smoothed walking path from start to goal, both included."""
        a = self._nearest_free(self.cell(*start))
        b = self._nearest_free(self.cell(*goal))
        key = (a, b)
        if key not in self._cache:
            self._cache[key] = self._smooth([self.centre(c) for c in self._astar(a, b)])
        inner = self._cache[key][1:-1]
        pts = [start, *inner, goal]
        # Drop zero-length legs (start or goal on a cell centre).
        out = [pts[0]]
        for p in pts[1:]:
            if math.dist(p, out[-1]) > 1e-6:
                out.append(p)
        return out

    def _astar(self, a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
        steps = [
            (1, 0, 1.0),
            (-1, 0, 1.0),
            (0, 1, 1.0),
            (0, -1, 1.0),
            (1, 1, _SQRT2),
            (1, -1, _SQRT2),
            (-1, 1, _SQRT2),
            (-1, -1, _SQRT2),
        ]

        def h(c: tuple[int, int]) -> float:
            dx, dy = abs(c[0] - b[0]), abs(c[1] - b[1])
            return max(dx, dy) + (_SQRT2 - 1) * min(dx, dy)

        came: dict[tuple[int, int], tuple[int, int]] = {}
        cost = {a: 0.0}
        heap = [(h(a), 0.0, a)]
        while heap:
            _, g, c = heapq.heappop(heap)
            if c == b:
                break
            if g > cost[c]:
                continue
            for dx, dy, w in steps:
                n = (c[0] + dx, c[1] + dy)
                if not (0 <= n[0] < self.nx and 0 <= n[1] < self.ny) or self.blocked[n]:
                    continue
                # No diagonal corner cutting past a blocked cell.
                if dx and dy and (self.blocked[c[0] + dx, c[1]] or self.blocked[c[0], c[1] + dy]):
                    continue
                ng = g + w
                if ng < cost.get(n, math.inf):
                    cost[n] = ng
                    came[n] = c
                    heapq.heappush(heap, (ng + h(n), ng, n))
        if b != a and b not in came:
            raise ValueError(
                f"no walkable path from cell {a} to {b}; check gondola placement and clearance"
            )
        cells = [b]
        while cells[-1] != a:
            cells.append(came[cells[-1]])
        return cells[::-1]

    def _visible(self, p: Point, q: Point) -> bool:
        n = max(2, int(math.dist(p, q) / (self.cell_m / 4)) + 1)
        xs = np.linspace(p[0], q[0], n)
        ys = np.linspace(p[1], q[1], n)
        i = np.clip((xs / self.cell_m).astype(int), 0, self.nx - 1)
        j = np.clip((ys / self.cell_m).astype(int), 0, self.ny - 1)
        return not bool(self.blocked[i, j].any())

    def _smooth(self, pts: list[Point]) -> list[Point]:
        """String pulling: keep a point only where the straight line would hit a gondola."""
        if len(pts) <= 2:
            return pts
        out = [pts[0]]
        anchor = 0
        k = 1
        while k < len(pts) - 1:
            if not self._visible(pts[anchor], pts[k + 1]):
                out.append(pts[k])
                anchor = k
            k += 1
        out.append(pts[-1])
        return out


def path_length_m(path: list[Point]) -> float:
    return sum(math.dist(p, q) for p, q in itertools.pairwise(path))
