"""Simulated load cells: which units lie on each plate, and what the cells read.

Two steps. ``assign_units`` walks every planned reach in time order and moves
real units (each with its own weight, drawn once) between plates and
baskets, giving each plate a step function of load. ``ControllerSignal`` then
renders one shelf controller's samples for any range of sample indices,
vectorised with numpy:

    reading = tare + units on the plate + drift + noise + hand transients

A hand transient is a smooth press bump while the hand is in the shelf
(peak 50-600 g, with 10-30 g of jitter), the units leaving or arriving at a
random moment inside the reach, and a short damped wobble after it.
Neighbouring plates on the same shelf feel ~3 % of the bump (crosstalk).

Noise for sample range k is drawn from a generator keyed by (seed,
controller, chunk), so the samples do not depend on how the caller slices time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from iot.store import ShelfController, Store
from sim.shoppers import Reach
from sim.stock import RestockPlan

__all__ = ["ControllerSignal", "HandTransient", "PlateLoads", "StockEvent", "assign_units"]

PRESS_PEAK_G = (50.0, 600.0)
PRESS_JITTER_G = (10.0, 30.0)
WOBBLE_S = 0.3  # the damped wobble after the hand lets go
WOBBLE_TAU_S = 0.08
WOBBLE_HZ = (4.0, 7.0)
CROSSTALK = 0.03
TARE_G = (400.0, 900.0)  # the plate's own weight on its load cell


@dataclass(frozen=True)
class HandTransient:
    plate_id: str
    start_s: float
    end_s: float
    peak_g: float
    jitter_g: float
    wobble_g: float
    wobble_hz: float


@dataclass(frozen=True)
class StockEvent:
    """The stock of one of a plate's own SKUs changed (for stock-out truth)."""

    plate_id: str
    t_s: float
    units: int  # units of ``sku`` on the plate after the change
    sku: str  # the planogram SKU whose stock changed (one of several on a shared plate)


@dataclass
class PlateLoads:
    """Per plate: the load at the start and every later change of units on it."""

    initial_g: dict[str, float]
    change_s: dict[str, np.ndarray]
    cumulative_g: dict[str, np.ndarray]  # load change since the start, after each change

    def load_g(self, plate_id: str, t_s: np.ndarray) -> np.ndarray:
        times = self.change_s[plate_id]
        base = np.full(t_s.shape, self.initial_g[plate_id])
        if times.size:
            k = np.searchsorted(times, t_s, side="right")
            steps = np.concatenate([[0.0], self.cumulative_g[plate_id]])
            base += steps[k]
        return base


def assign_units(
    store: Store,
    reaches: list[Reach],
    seed: int,
    restocks: Sequence[RestockPlan] = (),
    losses_g: Sequence[tuple[float, str, float]] = (),
) -> tuple[PlateLoads, dict[Reach, float], list[StockEvent]]:
    """Move real units between plates and baskets.

    Units are kept per (plate, SKU): a plate shared by several SKUs holds a
    separate pile of each, and a pick takes from the pile of the reach's SKU.
    ``losses_g``: (time, plate, grams) of weight lost with no unit moving.
    Returns each plate's loads, each reach's moved weight and the stock changes.
    """
    rng = np.random.default_rng([seed, 4])
    own: dict[tuple[str, str], list[float]] = {}  # (plate, planogram SKU) -> unit weights
    initial: dict[str, float] = {}
    for plate_id in store.plates():
        on_plate_g = 0.0
        for entry in store.skus_on_plate(plate_id):
            item = store.items[entry.sku]
            units = rng.normal(
                item.unit_weight_g, item.weight_tolerance_g, entry.initial_units
            ).tolist()
            own[(plate_id, entry.sku)] = units
            on_plate_g += sum(units)
        initial[plate_id] = float(rng.uniform(*TARE_G)) + on_plate_g
    baskets: dict[tuple[int, str], list[float]] = {}
    changes: dict[str, list[tuple[float, float]]] = {p: [] for p in store.plates()}
    weights: dict[Reach, float] = {}
    stock: list[StockEvent] = []
    due = sorted(restocks, key=lambda r: r.t_s, reverse=True)  # popped oldest first
    restock_rng = np.random.default_rng([seed, 9])
    for r in sorted(reaches, key=lambda r: (r.change_s, r.visit)):
        while due and due[-1].t_s <= r.change_s:
            _restock(store, due.pop(), own, changes, stock, rng=restock_rng)
        basket = baskets.setdefault((r.visit, r.sku), [])
        pile = (r.plate_id, r.sku)
        if r.action == "pick":
            units = own.get(pile, [])
            if len(units) < r.quantity:
                raise RuntimeError(
                    f"plan picks {r.quantity} x {r.sku} from {r.plate_id} holding {len(units)}"
                )
            moved = [units.pop(int(rng.integers(len(units)))) for _ in range(r.quantity)]
            basket.extend(moved)
            delta = -sum(moved)
        else:
            moved = [basket.pop(int(rng.integers(len(basket)))) for _ in range(r.quantity)]
            if not r.wrong_plate:
                own[pile].extend(moved)  # a foreign unit is never picked again
            delta = sum(moved)
        weights[r] = sum(moved)
        changes[r.plate_id].append((r.change_s, delta))
        if not r.wrong_plate:
            stock.append(StockEvent(r.plate_id, r.change_s, len(own[pile]), r.sku))
    while due:
        _restock(store, due.pop(), own, changes, stock, rng=restock_rng)
    for t_s, plate_id, grams in losses_g:  # weight gone with no unit moved (a fault, spoilage)
        changes[plate_id].append((t_s, -grams))
    loads = PlateLoads(initial, {}, {})
    for plate_id, ch in changes.items():
        ch.sort(key=lambda c: c[0])
        loads.change_s[plate_id] = np.array([t for t, _ in ch])
        loads.cumulative_g[plate_id] = np.cumsum([d for _, d in ch]) if ch else np.empty(0)
    return loads, weights, stock


def _restock(
    store: Store,
    r: RestockPlan,
    own: dict[tuple[str, str], list[float]],
    changes: dict[str, list[tuple[float, float]]],
    stock: list[StockEvent],
    *,
    rng: np.random.Generator,
) -> None:
    """Staff put new units (weights drawn like the initial ones) on a pile."""
    pile = own.setdefault((r.plate_id, r.sku), [])
    capacity = next(e.capacity_units for e in store.skus_on_plate(r.plate_id) if e.sku == r.sku)
    if len(pile) + r.units > capacity:
        raise ValueError(
            f"restock of {r.units} x {r.sku} on {r.plate_id} at {r.t_s:.1f} s would hold "
            f"{len(pile) + r.units} units, over its capacity {capacity}; restock fewer units"
        )
    item = store.items[r.sku]
    units = rng.normal(item.unit_weight_g, item.weight_tolerance_g, r.units).tolist()
    pile.extend(units)
    changes[r.plate_id].append((r.t_s, sum(units)))
    stock.append(StockEvent(r.plate_id, r.t_s, len(pile), r.sku))


def draw_transients(reaches: list[Reach], seed: int) -> list[HandTransient]:
    rng = np.random.default_rng([seed, 5])
    out = []
    for r in reaches:
        peak = float(rng.uniform(*PRESS_PEAK_G))
        out.append(
            HandTransient(
                r.plate_id,
                r.start_s,
                r.end_s,
                peak,
                float(rng.uniform(*PRESS_JITTER_G)),
                peak * float(rng.uniform(0.05, 0.15)),
                float(rng.uniform(*WOBBLE_HZ)),
            )
        )
    return out


class ControllerSignal:
    """Renders the samples of one shelf controller."""

    def __init__(
        self,
        store: Store,
        controller: ShelfController,
        index: int,
        loads: PlateLoads,
        transients: list[HandTransient],
        *,
        start_s: float,
        seed: int,
        noise_g: float,
        drift_g_per_h: float,
    ) -> None:
        self.controller = controller
        self.index = index
        self.plates = store.controller_plates[controller.id]
        self.rate_hz = controller.sample_rate_hz
        self.start_s = start_s
        self.seed = seed
        self.noise_g = noise_g
        self.loads = loads
        row = {p: i for i, p in enumerate(self.plates)}
        self.transients = sorted(
            (t for t in transients if t.plate_id in row), key=lambda t: t.start_s
        )
        self._t_start = np.array([t.start_s for t in self.transients])
        self._row = row
        self._neighbours = _shelf_neighbours(store, self.plates)
        rng = np.random.default_rng([seed, 6, index])
        n = len(self.plates)
        per_s = drift_g_per_h / 3600.0
        self._slope = rng.normal(0.0, per_s / 2, n)
        self._amp = drift_g_per_h * rng.uniform(0.1, 0.4, n)
        self._omega = 2 * math.pi / rng.uniform(1200.0, 3600.0, n)
        self._phase = rng.uniform(0, 2 * math.pi, n)

    def times_s(self, k0: int, k1: int) -> np.ndarray:
        return self.start_s + np.arange(k0, k1) / self.rate_hz

    def samples(self, k0: int, k1: int, chunk: int) -> np.ndarray:
        """Readings (plates x samples) for sample indices [k0, k1); ``chunk`` keys the noise."""
        t = self.times_s(k0, k1)
        rng = np.random.default_rng([self.seed, 7, self.index, chunk])
        el = t - self.start_s
        drift = self._slope[:, None] * el + self._amp[:, None] * (
            np.sin(self._omega[:, None] * el + self._phase[:, None]) - np.sin(self._phase[:, None])
        )
        out = np.stack([self.loads.load_g(p, t) for p in self.plates]) + drift
        out += rng.normal(0.0, self.noise_g, out.shape)
        self._add_transients(out, t, rng)
        return np.round(out, 1)

    def _add_transients(self, out: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> None:
        if not self.transients:
            return
        t0, t1 = float(t[0]), float(t[-1])
        hi = int(np.searchsorted(self._t_start, t1, side="right"))
        for tr in self.transients[:hi]:
            if tr.end_s + WOBBLE_S < t0:
                continue
            bump = np.zeros(t.shape)
            inside = (t >= tr.start_s) & (t <= tr.end_s)
            if inside.any():
                window = np.sin(math.pi * (t[inside] - tr.start_s) / (tr.end_s - tr.start_s)) ** 2
                bump[inside] = window * (
                    tr.peak_g + tr.jitter_g * rng.normal(0.0, 1.0, window.shape)
                )
            after = (t > tr.end_s) & (t <= tr.end_s + WOBBLE_S)
            if after.any():
                dt = t[after] - tr.end_s
                bump[after] = (
                    tr.wobble_g
                    * np.exp(-dt / WOBBLE_TAU_S)
                    * np.sin(2 * math.pi * tr.wobble_hz * dt)
                )
            row = self._row[tr.plate_id]
            out[row] += bump
            for n in self._neighbours[row]:
                out[n] += CROSSTALK * bump


def _shelf_neighbours(store: Store, plates: list[str]) -> list[list[int]]:
    """Rows of the plates next to each plate on the same shelf."""
    row = {p: i for i, p in enumerate(plates)}
    out: list[list[int]] = [[] for _ in plates]
    for p in plates:
        _, shelf, _ = store.plate(p)
        ids = [q.id for q in shelf.plates]
        k = ids.index(p)
        out[row[p]] = [row[q] for q in ids[max(k - 1, 0) : k + 2] if q != p and q in row]
    return out
