"""Planning visits: when shoppers come, where they walk, what they take.

Everything is planned up front, shopper by shopper in arrival order, against
a shared ledger of standing-spot reservations and plate stock. A later
shopper defers to an earlier one: if a spot is taken it waits about a metre
away in the aisle until it is free, and it only picks units that no earlier
plan will take first. That keeps two rules true by construction: never two
hands on one plate at once, and never a pick from an empty plate.

Each visit draws from its own generator (seed, visit index), so one visit's
choices do not shift the random stream of the others.

A plate may stock several SKUs (a shared plate): the shopper then also
chooses which SKU to take, in proportion to the facings of those still in
stock, and stock is booked per (plate, SKU). On a plate with one SKU no
extra random number is drawn, so single-SKU stores plan exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from iot.store import Store
from sim.floorplan import FloorPlan, Point, path_length_m
from sim.scenario import FloatRange, Scenario
from sim.stock import RestockPlan

__all__ = ["Reach", "Stop", "VisitPlan", "plan_visits", "spot_key"]

_SPOT_MARGIN_S = 0.8  # gap between one shopper leaving a spot and the next stepping in
_SIDE_BY_SIDE_WINDOW_S = 8.0  # "another shopper is at that gondola" if they stand there this soon
_STAND_JITTER_M = 0.04  # a shopper never stands exactly on the spot
_GATE_APPROACH_M = 0.6  # inside the gate line, where shoppers head to and from
_OUTSIDE_M = 0.3  # outside the gate line, where a track starts and ends
TRACK_END_AFTER_EXIT_S = 0.5
DIRECT_SLACK_S = 0.5  # a wait shorter than this is spent walking slower, not aside

SpotKey = tuple[str, str, float]
# shopper: scans in; tailgater: walks in behind one without scanning; swapper: scans in,
# and leaves a carried product on the plate of a tagged one it takes (wrong-item put-back)
Role = Literal["shopper", "tailgater", "swapper"]


def spot_key(store: Store, plate_id: str) -> SpotKey:
    """Plates reached from the same standing spot share this key (e.g. two shelf levels)."""
    gondola, shelf, _ = store.plate(plate_id)
    (x0, _), (x1, _) = store.plate_front_m(plate_id)
    return (gondola.id, shelf.side, round((x0 + x1) / 2, 2))


@dataclass(frozen=True)
class Reach:
    """One hand in the shelf that moves units on or off a plate."""

    visit: int
    token: str
    plate_id: str
    sku: str
    action: Literal["pick", "put"]
    quantity: int
    start_s: float
    end_s: float
    change_s: float  # the moment inside the reach when the units leave or arrive
    wrong_plate: bool
    swap: bool = False  # a deliberate wrong-item put-back on the plate a tagged unit left


@dataclass(frozen=True)
class Stop:
    plate_id: str
    gondola_id: str
    spot_m: Point
    arrive_s: float
    leave_s: float
    waited_s: float


@dataclass
class VisitPlan:
    """One shopper's whole visit: a piecewise-linear trajectory plus what they did."""

    index: int
    token: str
    track_id: str
    speed_m_s: float
    scan_s: float
    exit_s: float
    track_start_s: float
    track_end_s: float
    times_s: np.ndarray
    xs_m: np.ndarray
    ys_m: np.ndarray
    entry_gate_id: str = ""
    exit_gate_id: str = ""
    role: Role = "shopper"
    stops: list[Stop] = field(default_factory=list)
    reaches: list[Reach] = field(default_factory=list)

    def position(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """True floor position at the given times (held at the ends)."""
        return np.interp(t_s, self.times_s, self.xs_m), np.interp(t_s, self.times_s, self.ys_m)


class _Walker:
    """Builds a trajectory as keyframes (t, x, y)."""

    def __init__(self, plan: FloorPlan, speed_m_s: float, t_s: float, at: Point) -> None:
        self.plan = plan
        self.speed = speed_m_s
        self.keys: list[tuple[float, float, float]] = [(t_s, at[0], at[1])]

    @property
    def t(self) -> float:
        return self.keys[-1][0]

    @property
    def pos(self) -> Point:
        return self.keys[-1][1], self.keys[-1][2]

    def straight_to(self, p: Point) -> None:
        d = math.dist(self.pos, p)
        if d > 1e-9:
            self.keys.append((self.t + d / self.speed, p[0], p[1]))

    def walk_to(self, p: Point) -> None:
        for q in self.plan.path(self.pos, p)[1:]:
            self.straight_to(q)

    def walk_time_s(self, p: Point) -> float:
        return path_length_m(self.plan.path(self.pos, p)) / self.speed

    def stay_until(self, t_s: float) -> None:
        if t_s > self.t + 1e-9:
            self.keys.append((t_s, *self.pos))


Pile = tuple[str, str]  # (plate id, SKU): one SKU's units on one plate


class _Ledger:
    """Shared state of the plan: who stands where when, and stock per (plate, SKU) over time."""

    def __init__(self, store: Store) -> None:
        self.spots: dict[SpotKey, list[tuple[float, float, int]]] = {}
        self.initial: dict[Pile, int] = {(e.plate, e.sku): e.initial_units for e in store.planogram}
        self.changes: dict[Pile, list[tuple[float, int]]] = {k: [] for k in self.initial}

    def conflicts(
        self, key: SpotKey, start: float, end: float, owner: int
    ) -> list[tuple[float, float]]:
        return [
            (a, b)
            for a, b, o in self.spots.get(key, [])
            if o != owner and start < b + _SPOT_MARGIN_S and end + _SPOT_MARGIN_S > a
        ]

    def find_slot(self, key: SpotKey, earliest: float, duration: float, owner: int) -> float:
        """Earliest start at or after ``earliest`` when the spot is free for ``duration``."""
        start = earliest
        while True:
            hit = self.conflicts(key, start, start + duration, owner)
            if not hit:
                return start
            start = max(b for _, b in hit) + _SPOT_MARGIN_S

    def reserve(self, key: SpotKey, start: float, end: float, owner: int) -> None:
        self.spots.setdefault(key, []).append((start, end, owner))

    def available(self, plate_id: str, sku: str, t_s: float) -> int:
        """Units of ``sku`` on the plate that can go at t_s without starving a planned pick."""
        changes = sorted(self.changes[(plate_id, sku)])
        stock = self.initial[(plate_id, sku)] + sum(d for t, d in changes if t <= t_s)
        lowest = stock
        for t, d in changes:
            if t > t_s:
                stock += d
                lowest = min(lowest, stock)
        return max(lowest, 0)

    def change(self, plate_id: str, sku: str, t_s: float, delta: int) -> None:
        self.changes[(plate_id, sku)].append((t_s, delta))


@dataclass
class _Action:
    """One planned reach at a stop, before it is laid out in time."""

    action: Literal["pick", "put"]
    plate_id: str
    sku: str
    quantity: int
    reach_s: float = 0.0
    change_frac: float = 0.5
    swap: bool = False


def _draw(rng: np.random.Generator, r: FloatRange) -> float:
    return float(rng.uniform(r.min, r.max)) if r.max > r.min else r.min


class _Planner:
    def __init__(self, store: Store, scenario: Scenario, plan: FloorPlan) -> None:
        self.store = store
        self.scenario = scenario
        self.b = scenario.behaviour
        self.plan = plan
        self.ledger = _Ledger(store)
        self.stocked = [p for p in store.plates() if p in store.planogram_by_plate]
        self.facings = {
            p: [(e.sku, e.facings) for e in entries]
            for p, entries in store.planogram_by_plate.items()
        }
        self.keys = {p: spot_key(store, p) for p in store.plates()}
        by_key: dict[SpotKey, list[str]] = {}
        for p in store.plates():
            by_key.setdefault(self.keys[p], []).append(p)
        self.plates_at = by_key
        self.theft = scenario.theft
        self.tagged_plates = {e.plate for e in store.planogram if store.items[e.sku].rfid_tagged}

    def visit(
        self, index: int, arrival_s: float, track_no: int, role: Role = "shopper"
    ) -> VisitPlan:
        seed = self.scenario.seed
        rng = np.random.default_rng([seed, 1, index])
        token = f"{'t' if role == 'tailgater' else 'v'}-{int(rng.integers(0, 2**32)):08x}"
        speed = _draw(rng, self.b.walk_speed_m_s)
        entry_gate, entry = self._gate_point(rng, "entry")
        inward = self._inward(entry)
        outside = (entry[0] - inward[0] * _OUTSIDE_M, entry[1] - inward[1] * _OUTSIDE_M)
        walker = _Walker(self.plan, speed, arrival_s - _OUTSIDE_M / speed, outside)
        walker.straight_to(entry)  # crosses the gate line exactly at arrival_s
        walker.straight_to(
            (entry[0] + inward[0] * _GATE_APPROACH_M, entry[1] + inward[1] * _GATE_APPROACH_M)
        )
        visit = VisitPlan(
            index,
            token,
            f"trk-{track_no}",
            speed,
            arrival_s,
            0.0,
            walker.keys[0][0],
            0.0,
            np.empty(0),
            np.empty(0),
            np.empty(0),
            entry_gate_id=entry_gate,
            role=role,
        )
        carried: list[tuple[str, str]] = []  # (sku, origin plate) of units in the basket
        visited: set[str] = set()
        n_plates = int(rng.integers(self.b.plates_per_visit.min, self.b.plates_per_visit.max + 1))
        # only thieves draw from this stream, so honest visits plan exactly as before
        thief_rng = np.random.default_rng([seed, 20, index])
        for _ in range(n_plates):
            prefer = role == "tailgater" and thief_rng.random() < self.theft.tailgater_tagged_prob
            plate = self._choose_plate(rng, walker, visited, index, tagged_only=prefer)
            if plate is None:
                break
            visited.add(plate)
            self._stop(rng, walker, visit, plate, carried)
            if role == "swapper" and carried and not any(r.swap for r in visit.reaches):
                self._swap_stop(thief_rng, walker, visit, visited, carried)
        self._leave(rng, walker, visit)
        keys = np.array(walker.keys)
        visit.times_s, visit.xs_m, visit.ys_m = keys[:, 0], keys[:, 1], keys[:, 2]
        return visit

    # --- gates ---

    def _gate_point(
        self, rng: np.random.Generator, kind: Literal["entry", "exit"]
    ) -> tuple[str, Point]:
        """A random gate of this kind and a point on its line, away from the posts."""
        gates = self.store.gates(kind)
        gate = gates[int(rng.integers(len(gates)))]
        (x1, y1), (x2, y2) = gate.line_m
        f = float(rng.uniform(0.2, 0.8))
        return gate.id, (x1 + f * (x2 - x1), y1 + f * (y2 - y1))

    def _inward(self, p: Point) -> Point:
        """Unit vector from a gate point towards the inside of the floor (its centre side)."""
        w, d = self.store.floor.width_m, self.store.floor.depth_m
        # Gates sit on the floor's edge: the inward direction is away from the nearest wall.
        dists = {(1.0, 0.0): p[0], (-1.0, 0.0): w - p[0], (0.0, 1.0): p[1], (0.0, -1.0): d - p[1]}
        return min(dists, key=lambda k: dists[k])

    def _leave(self, rng: np.random.Generator, walker: _Walker, visit: VisitPlan) -> None:
        visit.exit_gate_id, gate = self._gate_point(rng, "exit")
        inward = self._inward(gate)
        walker.walk_to(
            (gate[0] + inward[0] * _GATE_APPROACH_M, gate[1] + inward[1] * _GATE_APPROACH_M)
        )
        walker.straight_to(gate)
        visit.exit_s = walker.t
        walker.straight_to((gate[0] - inward[0] * _OUTSIDE_M, gate[1] - inward[1] * _OUTSIDE_M))
        visit.track_end_s = visit.exit_s + TRACK_END_AFTER_EXIT_S
        walker.stay_until(visit.track_end_s)

    # --- choosing where to go ---

    def _choose_plate(
        self,
        rng: np.random.Generator,
        walker: _Walker,
        visited: set[str],
        owner: int,
        *,
        tagged_only: bool = False,
    ) -> str | None:
        cands = [p for p in self.stocked if p not in visited and self._in_stock(p, walker.t)]
        if tagged_only:
            cands = [p for p in cands if p in self.tagged_plates] or cands
        if not cands:
            return None
        dist = np.array([math.dist(walker.pos, self.plan.spot(p)) for p in cands])
        side_by_side = rng.random() < self.b.side_by_side_prob
        if side_by_side:
            busy = [
                p
                for p, d in zip(cands, dist, strict=True)
                if self._next_to_someone(p, walker.t + d / walker.speed, owner)
            ]
            if busy:
                return busy[int(rng.integers(len(busy)))]
        weights = np.exp(-dist / 3.0)
        return str(cands[int(rng.choice(len(cands), p=weights / weights.sum()))])

    def _next_to_someone(self, plate_id: str, t_s: float, owner: int) -> bool:
        """Another shopper stands at this gondola face around t_s, and this plate's spot is free."""
        key = self.keys[plate_id]
        end = t_s + _SIDE_BY_SIDE_WINDOW_S
        if self.ledger.conflicts(key, t_s, end, owner):
            return False
        return any(
            k[:2] == key[:2] and k != key and self.ledger.conflicts(k, t_s, end, owner)
            for k in self.ledger.spots
        )

    # --- one stop at a plate ---

    def _in_stock(self, plate_id: str, t_s: float) -> bool:
        """Some SKU of the plate can be taken at t_s."""
        return any(self.ledger.available(plate_id, sku, t_s) >= 1 for sku in self._skus(plate_id))

    def _choose_sku(self, rng: np.random.Generator, plate_id: str, t_s: float) -> str:
        """The SKU a shopper takes from the plate: by facings among those in stock.

        One candidate draws nothing, so a single-SKU plate leaves the stream untouched.
        """
        cands = [
            (sku, n)
            for sku, n in self.facings[plate_id]
            if self.ledger.available(plate_id, sku, t_s) >= 1
        ] or self.facings[plate_id]
        if len(cands) == 1:
            return cands[0][0]
        weights = np.array([n for _, n in cands], dtype=float)
        return cands[int(rng.choice(len(cands), p=weights / weights.sum()))][0]

    def _actions(
        self, rng: np.random.Generator, plate_id: str, carried: list[tuple[str, str]], t_s: float
    ) -> list[_Action]:
        """What the hand does at this stop, in order."""
        actions: list[_Action] = []
        if carried and rng.random() < self.b.wrong_plate_put_back_prob:
            # Leave a carried unit on a plate at this spot that does not stock its SKU.
            k = int(rng.integers(len(carried)))
            unit_sku, origin = carried[k]
            targets = [
                p
                for p in self.plates_at[self.keys[plate_id]]
                if p != origin and unit_sku not in self._skus(p)
            ]
            if targets:
                carried.pop(k)
                actions.append(
                    _Action("put", targets[int(rng.integers(len(targets)))], unit_sku, 1)
                )
        sku = self._choose_sku(rng, plate_id, t_s)
        multi = rng.random() < self.b.multi_pick_prob
        actions.append(_Action("pick", plate_id, sku, int(rng.integers(2, 4)) if multi else 1))
        if rng.random() < self.b.put_back_prob:
            actions.append(_Action("put", plate_id, sku, 1))
        return actions

    def _skus(self, plate_id: str) -> list[str]:
        """SKUs the planogram puts on the plate (none for an unstocked plate)."""
        return [sku for sku, _ in self.facings.get(plate_id, ())]

    def _stop(
        self,
        rng: np.random.Generator,
        walker: _Walker,
        visit: VisitPlan,
        plate_id: str,
        carried: list[tuple[str, str]],
        *,
        actions: list[_Action] | None = None,
    ) -> None:
        b = self.b
        if actions is None:
            actions = self._actions(rng, plate_id, carried, walker.t)
        browse = _draw(rng, b.browse_s)
        for act in actions:
            act.reach_s = _draw(rng, b.reach_s)
            act.change_frac = float(rng.uniform(0.3, 0.7))
        gaps = [_draw(rng, b.between_reaches_s) for _ in actions[1:]]
        linger = _draw(rng, b.linger_s)
        total = browse + sum(a.reach_s for a in actions) + sum(gaps) + linger
        sx, sy = self.plan.spot(plate_id)
        spot = (
            sx + float(rng.normal(0, _STAND_JITTER_M)),
            sy + float(rng.normal(0, _STAND_JITTER_M)),
        )
        direct = walker.t + walker.walk_time_s(spot)
        start = self._go_to_spot(walker, plate_id, spot, total, visit.index)
        gondola, _, _ = self.store.plate(plate_id)
        visit.stops.append(Stop(plate_id, gondola.id, spot, start, start + total, start - direct))
        self._reach(visit, actions, start + browse, gaps, carried)
        walker.stay_until(start + total)

    def _swap_stop(
        self,
        rng: np.random.Generator,
        walker: _Walker,
        visit: VisitPlan,
        visited: set[str],
        carried: list[tuple[str, str]],
    ) -> None:
        """Take one tagged unit and leave a carried product of another SKU in its place."""
        plate = self._choose_plate(rng, walker, visited, visit.index, tagged_only=True)
        if plate is None or plate not in self.tagged_plates:
            return
        tagged = [sku for sku in self._skus(plate) if self.store.items[sku].rfid_tagged]
        sku = tagged[0]
        if self.ledger.available(plate, sku, walker.t) < 1:
            return
        others = [c for c in carried if c[0] not in self._skus(plate)]
        if not others:
            return
        visited.add(plate)
        left, _ = others[int(rng.integers(len(others)))]
        actions = [_Action("pick", plate, sku, 1), _Action("put", plate, left, 1, swap=True)]
        self._stop(rng, walker, visit, plate, carried, actions=actions)

    def _go_to_spot(
        self, walker: _Walker, plate_id: str, spot: Point, total_s: float, owner: int
    ) -> float:
        """Walk to the plate's spot, waiting aside while it is taken; returns the arrival."""
        key = self.keys[plate_id]
        direct = walker.t + walker.walk_time_s(spot)
        start = self.ledger.find_slot(key, direct, total_s, owner)
        if start <= direct + DIRECT_SLACK_S:
            walker.walk_to(spot)
            walker.stay_until(start)
        else:
            wait = self.plan.wait_point(plate_id)
            walker.walk_to(wait)
            step = math.dist(wait, spot) / walker.speed
            start = self.ledger.find_slot(key, walker.t + step, total_s, owner)
            walker.stay_until(start - step)
            walker.straight_to(spot)
        start = walker.t
        self.ledger.reserve(key, start, start + total_s, owner)
        return start

    def _reach(
        self,
        visit: VisitPlan,
        actions: list[_Action],
        t: float,
        gaps: list[float],
        carried: list[tuple[str, str]],
    ) -> None:
        """Lay the reaches out in time and book their stock changes."""
        picked = 0
        for n, act in enumerate(actions):
            if n:
                t += gaps[n - 1]
            change = t + act.change_frac * act.reach_s
            own = act.sku in self._skus(act.plate_id)
            qty = act.quantity
            if act.action == "pick":
                qty = min(qty, self.ledger.available(act.plate_id, act.sku, change))
                picked = qty
                carried.extend([(act.sku, act.plate_id)] * qty)
            elif own:
                qty = min(qty, picked)  # put back only what this stop's pick took
                if qty:
                    carried.remove((act.sku, act.plate_id))
            elif act.swap:
                carried.remove(next(c for c in carried if c[0] == act.sku))
            if qty:
                if own:
                    delta = -qty if act.action == "pick" else qty
                    self.ledger.change(act.plate_id, act.sku, change, delta)
                visit.reaches.append(
                    Reach(
                        visit.index,
                        visit.token,
                        act.plate_id,
                        act.sku,
                        act.action,
                        qty,
                        t,
                        t + act.reach_s,
                        change,
                        not own,
                        act.swap,
                    )
                )
            t += act.reach_s


def arrival_times(scenario: Scenario) -> np.ndarray:
    """Poisson arrivals at the scenario's rate, queued through the entry gate's cycle."""
    rng = np.random.default_rng([scenario.seed, 0])
    a = scenario.arrivals
    gaps = rng.exponential(60.0 / a.arrival_rate_per_min, size=a.visits)
    times = scenario.start_time_s + 3.0 + np.cumsum(gaps)
    # Like a turnstile, the gate takes one scan-in at a time: bunched arrivals queue.
    for i in range(1, len(times)):
        times[i] = max(times[i], times[i - 1] + a.gate_cycle_s)
    return times


def plan_visits(
    store: Store,
    scenario: Scenario,
    plan: FloorPlan | None = None,
    restocks: Sequence[RestockPlan] = (),
) -> list[VisitPlan]:
    """Plan every visit of the scenario, in arrival order (around the staff's restocks)."""
    planner = _Planner(store, scenario, plan or FloorPlan(store))
    for r in restocks:
        planner.ledger.change(r.plate_id, r.sku, r.t_s, r.units)
    first_track = int(np.random.default_rng([scenario.seed, 3]).integers(1, 500))
    return [
        planner.visit(i, t, first_track + i, role)
        for t, i, role in sorted(_people(scenario, arrival_times(scenario)))
    ]


def _people(scenario: Scenario, arrivals: np.ndarray) -> list[tuple[float, int, Role]]:
    """(arrival, visit index, role) of everyone: the scanned visits, then the tailgaters.

    A tailgater follows a scanning shopper through the gate a moment later; its
    index comes after the scanned ones, so the honest visits keep their streams.
    """
    theft, n = scenario.theft, len(arrivals)
    rng = np.random.default_rng([scenario.seed, 21])
    swappers = set(rng.choice(n, size=min(theft.swaps, n), replace=False).tolist())
    people: list[tuple[float, int, Role]] = [
        (float(t), i, "swapper" if i in swappers else "shopper") for i, t in enumerate(arrivals)
    ]
    hosts = rng.choice(n, size=min(theft.tailgaters, n), replace=False)
    for k, host in enumerate(sorted(hosts.tolist())):
        people.append((float(arrivals[host]) + float(rng.uniform(0.9, 1.5)), n + k, "tailgater"))
    return people
