"""Footfall: entries, exits, occupancy, dwell and conversion, folded from shopper tracks.

``FootfallCounter`` is a pure fold over ``TrackBatch`` events (the ceiling
tracker's, or the twin's simulated feed): it keeps one small state per live
person and folds every finished one into counters and dwell histograms, so
memory stays bounded over a long day. ``FootfallService`` feeds it from the bus.
Its settings and report types live in ``checkout.footfall_types`` (re-exported here).

Counting rule (every threshold is a field of ``FootfallSettings``)
--------------------------------------------------------------------
Each gate line has an inward normal (towards the floor centre). A point is
*out* when it is more than ``band_m`` outside a gate line, *in* when more than
``band_m`` inside it, and in the *band* between (no decision: jitter across
the line never flips a person twice). A person moves through four phases:

- OUT → ENTERING when seen *in* within a gate's doorway (the floor inside
  and within ``doorway_depth_m`` of the line). A track first seen inside a
  doorway (picked up late) starts OUT, so it enters at once; a track first
  seen deeper inside is an *orphan*: in the store, but no entry is counted.
- ENTERING → IN (an **entry** is counted at that gate) once the person is
  ``commit_depth_m`` from the line or leaves the doorway. Going back *out*
  first is a **balk**: someone who lingers in the doorway and leaves is not
  a visit; balks are reported apart.
- IN → LEAVING when seen *out* at a gate; back *in* cancels (jitter).
- LEAVING → OUT (an **exit** is counted) once the person has been out for
  ``exit_confirm_s``, or the track ends while out.

Tracks fragment: an ended track is held for ``stitch_window_s`` and a new
track starting near it (``stitch_radius_m`` plus ``stitch_speed_m_s`` per
second of gap) continues the same person. A person whose track ended inside
a doorway and was not continued was lost at the door: the exit is counted.
One lost deeper inside stays "in" (no exit), and may still be continued for
``lost_window_s`` by a track first seen deep inside. Even when stitching
fails, a new fragment closer than ``commit_depth_m`` to a line is only
ENTERING, so it cannot double count: on its way out it balks.

Occupancy is ``entries - exits`` (never below 0), sampled every
``occupancy_step_s`` of event time; ``tracked`` counts the live tracks
inside. Zones are the aisle strips ``reach_m`` deep in front of each gondola
face with shelves (``g01-south``); a stay shorter than ``zone_min_dwell_s``
is a pass, not a dwell. Visit dwell runs from the entry to the exit crossing.

>>> from pathlib import Path
>>> from iot.payloads import TrackBatch, TrackPoint
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> counter = FootfallCounter(store)
>>> for k, y in enumerate([0.0, 0.4, 0.8, 1.2, 1.6, 2.0]):  # through gate-in at x = 1.8
...     counter.add(TrackBatch(id=f"b{k}", event_time_s=1e9 + k, device_id="positioning",
...                            tracks=[TrackPoint(track_id="t1", x_m=1.8, y_m=y)]))
>>> r = counter.report()
>>> r.entries, r.exits, r.gates["gate-in"].entries, r.occupancy_now
(1, 0, 1, 1)
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, cast

from checkout.footfall_types import (
    DwellStats,
    FootfallReport,
    FootfallSettings,
    GateCounts,
    OccupancySample,
    Zone,
    store_zones,
)
from checkout.gate_reconcile import GateReconciler
from iot.bus import Inbox, Message, Transport
from iot.payloads import GateEntry, Receipt, TrackBatch
from iot.store import Store
from iot.topics import TOPICS

__all__ = [
    "DwellStats",
    "FootfallCounter",
    "FootfallReport",
    "FootfallService",
    "FootfallSettings",
    "GateCounts",
    "OccupancySample",
    "Zone",
    "conversion",
    "store_zones",
]


def conversion(entries: int, receipts: Iterable[Receipt]) -> float | None:
    """Share of counted visits that bought something: sessions with a non-empty receipt.

    None without entries. Not capped at 1 (more purchases than entries means
    the counter missed people, which the caller should see).

    >>> conversion(0, [])
    """
    return _purchases(receipts) / entries if entries > 0 else None


def _purchases(receipts: Iterable[Receipt]) -> int:
    """Sessions with a non-empty receipt (a receipt issued twice counts once)."""
    return len({r.session_id for r in receipts if r.lines})


class _Phase(Enum):
    OUT = "out"
    ENTERING = "entering"
    IN = "in"
    LEAVING = "leaving"


Side = Literal["out", "band", "in"]


@dataclass(frozen=True)
class _GateLine:
    id: str
    ax: float
    ay: float
    ux: float  # unit vector along the line
    uy: float
    nx: float  # unit normal pointing into the store
    ny: float
    length_m: float

    @classmethod
    def of(
        cls,
        gate_id: str,
        a: tuple[float, float],
        b: tuple[float, float],
        centre: tuple[float, float],
    ) -> _GateLine:
        length = math.dist(a, b) or 1e-9
        ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
        nx, ny = -uy, ux
        # Gates sit on the floor edge: the store is on the side of the floor centre.
        if (centre[0] - a[0]) * nx + (centre[1] - a[1]) * ny < 0:
            nx, ny = -nx, -ny
        return cls(gate_id, a[0], a[1], ux, uy, nx, ny, length)

    def depth_m(self, x: float, y: float) -> float:
        """Signed distance from the line: positive inside the store."""
        return (x - self.ax) * self.nx + (y - self.ay) * self.ny

    def along_m(self, x: float, y: float) -> float:
        return (x - self.ax) * self.ux + (y - self.ay) * self.uy

    def distance_m(self, x: float, y: float) -> float:
        """Distance from the line segment (not its extension)."""
        along = self.along_m(x, y)
        return math.hypot(max(-along, along - self.length_m, 0.0), self.depth_m(x, y))


@dataclass
class _Person:
    phase: _Phase
    t: float  # last seen, event time
    x: float
    y: float
    gate: str | None = None  # gate of the pending or last crossing
    cross_s: float = 0.0  # when that crossing was seen
    visit_start_s: float | None = None
    door: str | None = None  # gate whose doorway the last point lay in (inside), if any
    zone: str | None = None
    zone_first_s: float = 0.0
    zone_last_s: float = 0.0
    ended_s: float | None = None
    track_id: str = ""  # the track now following this person


class _Histogram:
    """Fixed-width bins held sparsely: bounded by dwell_max_s / bin_s, not by samples."""

    def __init__(self, bin_s: float, max_s: float) -> None:
        self.bin_s, self.last_bin = bin_s, max(0, math.ceil(max_s / bin_s) - 1)
        self.bins: Counter[int] = Counter()
        self.count, self.total_s = 0, 0.0

    def add(self, value_s: float) -> None:
        self.bins[min(max(int(value_s // self.bin_s), 0), self.last_bin)] += 1
        self.count += 1
        self.total_s += value_s

    def quantile(self, q: float) -> float | None:
        """Linear between order statistics (numpy's default), each read as its bin's centre."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        lo = math.floor(rank)
        a, b = self._order_stat(lo), self._order_stat(min(lo + 1, self.count - 1))
        return a + (rank - lo) * (b - a)

    def _order_stat(self, k: int) -> float:
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen > k:
                return (b + 0.5) * self.bin_s
        raise AssertionError("rank beyond the count")  # pragma: no cover

    def stats(self, passes: int = 0) -> DwellStats:
        mean = self.total_s / self.count if self.count else None
        return DwellStats(
            count=self.count,
            median_s=self.quantile(0.5),
            p90_s=self.quantile(0.9),
            mean_s=mean,
            passes=passes,
        )


class FootfallCounter:
    """Entries, exits, occupancy and dwell folded from ``TrackBatch`` events (event time only)."""

    def __init__(
        self,
        store: Store,
        settings: FootfallSettings | None = None,
        *,
        on_entry: Callable[[str, str, float], None] | None = None,
        on_exit: Callable[[str, str, float], None] | None = None,
    ) -> None:
        """``on_entry``/``on_exit(track_id, gate_id, crossed_s)`` hear each crossing counted."""
        self.on_entry = on_entry
        self.on_exit = on_exit
        self.store = store
        self.settings = s = settings or FootfallSettings()
        centre = (store.floor.width_m / 2, store.floor.depth_m / 2)
        self._gates = {g.id: _GateLine.of(g.id, *g.line_m, centre) for g in store.floor.gates}
        self.zones = store_zones(store)
        self.counts = {g: GateCounts() for g in self._gates}
        self.diagnostics: Counter[str] = Counter()
        self._live: dict[str, _Person] = {}  # track id -> person, only while the track lives
        self._pool: list[_Person] = []  # ended, may still be continued by a new track
        self._zone_dwell = {z.name: _Histogram(s.dwell_bin_s, s.dwell_max_s) for z in self.zones}
        self._zone_passes: Counter[str] = Counter()
        self._visits = _Histogram(s.dwell_bin_s, s.dwell_max_s)
        self._occupancy: deque[OccupancySample] = deque(maxlen=s.occupancy_keep)
        self._next_sample_s: float | None = None
        self.first_s: float | None = None
        self.last_s: float | None = None
        self.purchases = 0
        self._receipts_folded = False

    # --- folding ---

    def add(self, batch: TrackBatch) -> None:
        """Fold one batch. A batch older than the newest one is counted and skipped."""
        t = batch.event_time_s
        if self.last_s is not None and t < self.last_s:
            self.diagnostics["out_of_order"] += 1
            return
        self.advance(t)
        seen: set[str] = set()
        for point in batch.tracks:
            if point.track_id in seen:  # one id twice in one instant: keep the first
                self.diagnostics["duplicate_points"] += 1
                continue
            seen.add(point.track_id)
            person = self._live.get(point.track_id) or self._start(
                point.track_id, point.x_m, point.y_m, t
            )
            self._step(person, point.x_m, point.y_m, t)
        for track_id in batch.ended:
            if track_id in self._live:
                self._end(track_id)

    def add_receipt(self, receipt: Receipt) -> None:
        """Fold a receipt for conversion: one with lines is a purchase."""
        self._receipts_folded = True
        self.purchases += 1 if receipt.lines else 0

    def advance(self, t_s: float) -> None:
        """Let event time pass: sample occupancy, time out silent tracks, settle old ends."""
        s = self.settings
        if self.first_s is None:
            self.first_s = t_s
            self._next_sample_s = math.ceil(t_s / s.occupancy_step_s) * s.occupancy_step_s
        assert self._next_sample_s is not None
        # After a long silence only the samples that would be kept are made.
        skip = math.floor((t_s - self._next_sample_s) / s.occupancy_step_s) - s.occupancy_keep
        if skip > 0:
            self._next_sample_s += skip * s.occupancy_step_s
        while self._next_sample_s <= t_s:
            self._occupancy.append(
                OccupancySample(
                    time_s=self._next_sample_s, counted=self.occupancy, tracked=self.tracked
                )
            )
            self._next_sample_s += s.occupancy_step_s
        self.last_s = t_s if self.last_s is None else max(self.last_s, t_s)
        for track_id in [k for k, p in self._live.items() if t_s - p.t > s.track_timeout_s]:
            self._end(track_id)
        keep = []
        for p in self._pool:
            if t_s - cast(float, p.ended_s) > self._hold_s(p):
                self._settle(p)
            else:
                keep.append(p)
        self._pool = keep

    def flush(self, at_s: float) -> None:
        """End every live track and settle every held one (closing time, end of a run)."""
        self.advance(at_s)
        for track_id in list(self._live):
            self._end(track_id)
        for p in self._pool:
            self._settle(p)
        self._pool = []

    # --- reading ---

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.counts.values())

    @property
    def exits(self) -> int:
        return sum(c.exits for c in self.counts.values())

    @property
    def occupancy(self) -> int:
        return max(0, self.entries - self.exits)

    @property
    def tracked(self) -> int:
        return sum(p.phase in (_Phase.IN, _Phase.LEAVING) for p in self._live.values())

    @property
    def held(self) -> int:
        """Persons with state: live tracks plus ended ones awaiting a continuation."""
        return len(self._live) + len(self._pool)

    def report(self, receipts: Iterable[Receipt] | None = None) -> FootfallReport:
        """A snapshot; ``receipts`` (or those folded with ``add_receipt``) give conversion."""
        purchases = self.purchases + (_purchases(receipts) if receipts is not None else 0)
        known = receipts is not None or self._receipts_folded
        rate = purchases / self.entries if known and self.entries else None
        return FootfallReport(
            store_id=self.store.store_id,
            first_s=self.first_s,
            last_s=self.last_s,
            entries=self.entries,
            exits=self.exits,
            occupancy_now=self.occupancy,
            gates={g: c.model_copy() for g, c in self.counts.items()},
            occupancy=list(self._occupancy),
            zones={z: h.stats(self._zone_passes[z]) for z, h in self._zone_dwell.items()},
            visit_dwell=self._visits.stats(),
            purchases=purchases,
            conversion=rate,
            diagnostics=dict(sorted(self.diagnostics.items())),
            settings=self.settings,
        )

    # --- geometry ---

    def _where(self, x: float, y: float) -> tuple[Side, _GateLine | None]:
        """Which side of the gates a point is on, and the gate whose zone holds it."""
        s = self.settings
        zone: tuple[float, _GateLine] | None = None
        nearest: tuple[float, _GateLine] | None = None
        for gate in self._gates.values():
            depth, dist = gate.depth_m(x, y), gate.distance_m(x, y)
            if nearest is None or dist < nearest[0]:
                nearest = (dist, gate)
            # Inside, the doorway is all floor near the line (people fan out as they walk
            # in); outside, a strip in front of the line (the street runs along the wall).
            if depth >= 0:
                in_zone = dist <= s.doorway_depth_m
            else:
                off_end = max(-gate.along_m(x, y), gate.along_m(x, y) - gate.length_m, 0.0)
                in_zone = off_end <= s.gate_margin_m and depth >= -s.outside_depth_m
            if in_zone and (zone is None or dist < zone[0]):
                zone = (dist, gate)
        if zone is None:
            # Away from every gate: inside only past the wall the nearest gate sits in, and on
            # the floor; anything else (jitter along a wall) decides nothing.
            assert nearest is not None  # a store has at least two gates
            floor = self.store.floor
            on_floor = 0 <= x <= floor.width_m and 0 <= y <= floor.depth_m
            inside = on_floor and nearest[1].depth_m(x, y) > s.band_m
            return ("in" if inside else "band"), None
        depth = zone[1].depth_m(x, y)
        side: Side = "out" if depth < -s.band_m else "in" if depth > s.band_m else "band"
        return side, zone[1]

    def _zone_at(self, x: float, y: float) -> str | None:
        inside = [z for z in self.zones if z.contains(x, y)]
        return min(inside, key=lambda z: abs(y - z.face_y_m)).name if inside else None

    # --- one person ---

    def _start(self, track_id: str, x: float, y: float, t: float) -> _Person:
        """A new track: the continuation of an ended one nearby, or a new person."""
        side, gate = self._where(x, y)
        deep = side == "in" and gate is None
        person = self._continuation(x, y, t, deep)
        if person is None:
            person = _Person(_Phase.IN if deep else _Phase.OUT, t, x, y)
            if deep:  # first seen past every doorway: in the store, but no entry to count
                self.diagnostics["orphans"] += 1
        self._live[track_id] = person
        person.track_id = track_id
        return person

    def _continuation(self, x: float, y: float, t: float, deep: bool) -> _Person | None:
        """The nearest held person this new track may continue, if any.

        Only a track first seen deep inside may pick up someone lost long ago: one in
        a doorway is more likely a new shopper, whose entry must not be swallowed.
        """
        s = self.settings
        best: tuple[float, int] | None = None
        for k, p in enumerate(self._pool):
            gap = t - cast(float, p.ended_s)
            window_s = self._hold_s(p) if deep else s.stitch_window_s
            dist = math.hypot(x - p.x, y - p.y)
            near = dist <= s.stitch_radius_m + s.stitch_speed_m_s * gap
            if 0 <= gap <= window_s and near and (best is None or dist < best[0]):
                best = (dist, k)
        if best is None:
            return None
        self.diagnostics["stitched"] += 1
        person = self._pool.pop(best[1])
        person.ended_s = None
        return person

    def _step(self, p: _Person, x: float, y: float, t: float) -> None:
        s = self.settings
        side, gate = self._where(x, y)
        if p.phase is _Phase.OUT and side == "in":
            if gate is None:  # appeared deep inside without passing a doorway
                self.diagnostics["orphans"] += 1
                p.phase = _Phase.IN
            else:
                p.phase, p.gate, p.cross_s = _Phase.ENTERING, gate.id, t
        elif p.phase is _Phase.ENTERING and side == "out":
            self.diagnostics["balks"] += 1
            p.phase = _Phase.OUT
        elif p.phase is _Phase.IN and side == "out" and gate is not None:
            p.phase, p.gate, p.cross_s = _Phase.LEAVING, gate.id, t
        elif p.phase is _Phase.LEAVING and side == "in":
            p.phase = _Phase.IN  # jitter back over the line: the crossing is undone
        if p.phase is _Phase.ENTERING and side == "in":
            entry = self._gates[cast(str, p.gate)]
            if gate is None or entry.distance_m(x, y) >= s.commit_depth_m:
                self.counts[entry.id].entries += 1
                p.phase, p.visit_start_s = _Phase.IN, p.cross_s
                if self.on_entry is not None:
                    self.on_entry(p.track_id, entry.id, p.cross_s)
        if p.phase is _Phase.LEAVING and side == "out" and t - p.cross_s >= s.exit_confirm_s:
            self._exit(p)
        p.door = gate.id if gate is not None and side != "out" else None
        p.t, p.x, p.y = t, x, y
        self._zone_step(p, self._zone_at(x, y), t)

    def _exit(self, p: _Person) -> None:
        self.counts[cast(str, p.gate)].exits += 1
        if self.on_exit is not None:
            self.on_exit(p.track_id, cast(str, p.gate), p.cross_s)
        if p.visit_start_s is not None:
            self._visits.add(p.cross_s - p.visit_start_s)
        p.phase, p.visit_start_s = _Phase.OUT, None

    def _zone_step(self, p: _Person, zone: str | None, t: float) -> None:
        gone = zone is not None or t - p.zone_last_s > self.settings.zone_gap_s
        if p.zone is not None and zone != p.zone and gone:
            self._close_zone(p)
        if zone is not None and zone == p.zone:
            p.zone_last_s = t
        elif zone is not None:
            p.zone, p.zone_first_s, p.zone_last_s = zone, t, t

    def _close_zone(self, p: _Person) -> None:
        if p.zone is None:
            return
        stay_s = p.zone_last_s - p.zone_first_s
        if stay_s >= self.settings.zone_min_dwell_s:
            self._zone_dwell[p.zone].add(stay_s)
        else:
            self._zone_passes[p.zone] += 1
        p.zone = None

    def _end(self, track_id: str) -> None:
        """The track ended: settle the person now, or hold them for a continuation."""
        p = self._live.pop(track_id)
        if p.phase is _Phase.LEAVING:
            self._exit(p)  # ended on the way out: nothing left to wait for
        if p.phase is _Phase.OUT:
            self._close_zone(p)
            return
        p.ended_s = p.t
        self._pool.append(p)
        if len(self._pool) > self.settings.max_pool:
            self._settle(self._pool.pop(0))

    def _hold_s(self, p: _Person) -> float:
        deep = p.phase is _Phase.IN and p.door is None
        return self.settings.lost_window_s if deep else self.settings.stitch_window_s

    def _settle(self, p: _Person) -> None:
        """No track continued this person: decide what their last sighting meant."""
        if p.phase is _Phase.ENTERING:
            self.diagnostics["balks"] += 1  # never got past the doorway
        elif p.phase is _Phase.IN and p.door is not None:
            self.diagnostics["lost_at_door"] += 1
            p.gate, p.cross_s = p.door, p.t
            self._exit(p)
        elif p.phase is _Phase.IN:
            self.diagnostics["lost_inside"] += 1
        self._close_zone(p)


class FootfallService:
    """Feeds a ``FootfallCounter`` from the bus: tracks, gate passages, receipts (conversion).

    Tracks are accepted only from ``store.devices.positioning``; receipts from
    any brain. Bad messages are dead-lettered by the ``Inbox``. The report's
    entries and exits are the track crossings plus the gate passages no
    crossing accounted for (``checkout.gate_reconcile``: a shopper who walked in
    in another's shadow); ``diagnostics`` says how many of each.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        now: Callable[[], float],
        settings: FootfallSettings | None = None,
        on_batch: Callable[[TrackBatch], None] | None = None,
        service_id: str = "footfall",
    ) -> None:
        """``on_batch`` also sees every accepted batch (e.g. ``HeatGrid.add``)."""
        self.store = store
        self.gates = GateReconciler()
        self.counter = FootfallCounter(
            store,
            settings,
            on_entry=lambda _, gate, t: self.gates.crossing(gate, t),
            on_exit=lambda _, gate, t: self.gates.crossing(gate, t),
        )
        self.on_batch = on_batch
        sid, kind = store.store_id, "ops"
        self.tracks = Inbox(
            transport,
            sid,
            service_kind=kind,
            service_id=service_id,
            now=now,
            known_devices=set(store.devices.positioning) | {g.id for g in store.floor.gates},
        )
        # Receipts come from whichever brain issued them: no device list to check against.
        self.receipts = Inbox(
            transport, sid, service_kind=kind, service_id=f"{service_id}-receipts", now=now
        )

    def start(self) -> None:
        self.tracks.on(TOPICS["tracks"], self._on_tracks)
        self.tracks.on(TOPICS["gate_entries"], self._on_gate)
        self.tracks.on(TOPICS["gate_exits"], self._on_gate)
        self.receipts.on(TOPICS["receipts"], self._on_receipt)

    def _with_gate_only(
        self, samples: list[OccupancySample], kind: Mapping[str, str]
    ) -> list[OccupancySample]:
        """Occupancy samples with the people only the gates saw counted in, up to each time."""
        passages = sorted(self.gates.unseen_at)
        out, k, extra = [], 0, 0
        for sample in samples:
            while k < len(passages) and passages[k][0] <= sample.time_s:
                _, gate, people = passages[k]
                extra += people if kind.get(gate) == "entry" else -people
                k += 1
            counted = max(0, sample.counted + extra)
            out.append(
                sample
                if counted == sample.counted
                else sample.model_copy(update={"counted": counted})
            )
        return out

    def report(self) -> FootfallReport:
        """The counter's report with the gate passages the tracks missed added in."""
        if self.counter.last_s is not None:
            self.gates.settle(self.counter.last_s)
        base = self.counter.report()
        gates = {g: c.model_copy() for g, c in base.gates.items()}
        kind = {g.id: g.kind for g in self.store.floor.gates}
        for gate, missed in self.gates.unseen.items():
            counts = gates.setdefault(gate, GateCounts())
            if kind.get(gate) == "entry":
                counts.entries += missed
            else:
                counts.exits += missed
        entries = sum(c.entries for c in gates.values())
        exits = sum(c.exits for c in gates.values())
        missed_in = sum(n for g, n in self.gates.unseen.items() if kind.get(g) == "entry")
        update: dict[str, Any] = {
            "entries": entries,
            "exits": exits,
            "occupancy_now": max(0, entries - exits),
            "occupancy": self._with_gate_only(base.occupancy, kind),
            "gates": gates,
            "diagnostics": base.diagnostics
            | {
                "entries_from_tracks": base.entries,
                "entries_gate_only": missed_in,
                "exits_from_tracks": base.exits,
                "exits_gate_only": sum(self.gates.unseen.values()) - missed_in,
            },
        }
        return base.model_copy(update=update)

    def _on_tracks(self, message: Message) -> None:
        batch = cast(TrackBatch, message.payload)
        self.counter.add(batch)
        self.gates.settle(batch.event_time_s)
        if self.on_batch is not None:
            self.on_batch(batch)

    def _on_gate(self, message: Message) -> None:
        passed = message.payload
        people = passed.party_size if isinstance(passed, GateEntry) else 1
        self.gates.passage(passed.device_id, passed.event_time_s, people)

    def _on_receipt(self, message: Message) -> None:
        self.counter.add_receipt(cast(Receipt, message.payload))
