"""The digital twin: a simulated walk-out store that publishes what its devices would.

``Twin(store, scenario)`` plans every visit up front (deterministic for the
scenario's seed) and knows the ground truth. ``advance(transport, until_s)``
then publishes, in event-time order of sending, every message due at or
before ``until_s``: gate scans, positioning track batches and load-cell
sample batches (a batch is sent when its last sample is taken). Messages are
generated lazily in chunks of event time, so the live demo and the fast
evaluation publish the same bytes.

>>> from pathlib import Path
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> from sim.scenario import parse_scenario
>>> root = Path(__file__).resolve().parents[1]
>>> sc = parse_scenario({"store": "stores/demo.yaml", "arrivals": {"visits": 2}}, base_dir=root)
>>> twin = Twin(load_store(sc.store), sc)
>>> twin.advance(LocalTransport(), twin.end_s) > 1000, twin.progress(twin.end_s)["exited"]
(True, 2)
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator

import numpy as np

from iot.bus import Transport, publish
from iot.payloads import (
    Event,
    GateEntry,
    GateExit,
    PlateSamples,
    ShelfSamples,
    TrackBatch,
    TrackPoint,
)
from iot.store import Store
from sim.floorplan import FloorPlan
from sim.rfid import CarriedTag, RawMessage, carried_tags, reader_stream
from sim.scenario import Scenario
from sim.shelves import ControllerSignal, StockEvent, assign_units, draw_transients
from sim.shoppers import Reach, VisitPlan, plan_visits
from sim.stock import plan_restocks, stocked_store
from sim.truth import (
    GroundTruth,
    IncidentTruth,
    InteractionTruth,
    StockoutTruth,
    VisitTruth,
    net_basket,
)

__all__ = ["Twin"]

log = logging.getLogger(__name__)

CHUNK_S = 10.0  # event time generated at once per stream
END_AFTER_LAST_EXIT_S = 3.0

# (send time, tie rank, sequence, payload): tuples sort in publishing order.
Outgoing = tuple[float, int, int, Event | RawMessage]


class Twin:
    """A simulated store: plans visits, publishes device messages, keeps the truth."""

    def __init__(self, store: Store, scenario: Scenario, *, positioning_feed: bool = True) -> None:
        """``positioning_feed=False`` leaves the ``tracks`` topic to the ceiling cameras."""
        store = stocked_store(store, scenario.stock)
        self.store = store
        self.scenario = scenario
        self.floor = FloorPlan(store)
        self.start_s = scenario.start_time_s
        self.restocks = plan_restocks(store, scenario.stock, self.start_s)
        self.visits: list[VisitPlan] = plan_visits(store, scenario, self.floor, self.restocks)
        reaches = sorted((r for v in self.visits for r in v.reaches), key=lambda r: r.start_s)
        losses = [(self.start_s + w.at_s, w.plate, w.grams) for w in scenario.theft.weight_losses]
        self.loads, weights, stock = assign_units(
            store, reaches, scenario.seed, self.restocks, losses
        )
        self.end_s = max(v.exit_s for v in self.visits) + END_AFTER_LAST_EXIT_S
        noise = scenario.sensors.load_cell_noise_g
        transients = draw_transients(reaches, scenario.seed)
        self.signals = [
            ControllerSignal(
                store,
                c,
                i,
                self.loads,
                transients,
                start_s=self.start_s,
                seed=scenario.seed,
                noise_g=c.noise_g if noise is None else noise,
                drift_g_per_h=scenario.sensors.drift_g_per_h,
            )
            for i, c in enumerate(store.devices.shelf_controllers)
        ]
        interactions = [_interaction(r, weights) for r in reaches]
        baskets = _baskets(self.visits, interactions)
        leaving = sorted(self.visits, key=lambda v: v.exit_s)
        self.tags = carried_tags(store, [(v.token, baskets[v.token]) for v in leaving])
        self.truth = _truth(
            self.visits, interactions, baskets=baskets, stock=stock, losses=losses, tags=self.tags
        )
        self._scans = np.array(sorted(v.scan_s for v in self.visits))
        self._exits = np.array(sorted(v.exit_s for v in self.visits))
        streams: list[Iterator[Outgoing]] = [self._gate_stream()]
        if positioning_feed:
            streams.append(self._track_stream())
        streams += [self._shelf_stream(s) for s in self.signals]
        walkers = [(v, self.tags.get(v.token, [])) for v in self.visits]
        streams += [
            reader_stream(
                store,
                reader,
                walkers,
                stray_tags=scenario.theft.stray_tags_per_reader,
                start_s=self.start_s,
                end_s=self.end_s,
                seed=scenario.seed,
                rank=100 + k,
            )
            for k, reader in enumerate(store.devices.rfid_readers)
        ]
        self._queue: Iterator[Outgoing] = heapq.merge(*streams)
        self._next: Outgoing | None = next(self._queue, None)
        self.published = 0
        log.info(
            "twin planned %d visits, %d interactions, %.0f s of event time",
            len(self.visits),
            len(reaches),
            self.end_s - self.start_s,
        )

    # --- driving ---

    def advance(self, transport: Transport, until_s: float) -> int:
        """Publish every message due at or before ``until_s``; returns how many were sent."""
        sent = 0
        sid = self.store.store_id
        while self._next is not None and self._next[0] <= until_s:
            payload = self._next[3]
            if isinstance(payload, RawMessage):  # a device's own format (an RFID reader)
                transport.publish(payload.topic, payload.data, payload.qos, False)
            else:
                publish(transport, sid, payload)
            sent += 1
            self._next = next(self._queue, None)
        self.published += sent
        return sent

    def progress(self, t_s: float) -> dict[str, int]:
        arrived = int(np.searchsorted(self._scans, t_s, side="right"))
        exited = int(np.searchsorted(self._exits, t_s, side="right"))
        return {
            "arrived": arrived,
            "in_store": arrived - exited,
            "exited": exited,
            "visits": len(self.visits),
        }

    # --- streams, each in send-time order ---

    def _gate_stream(self) -> Iterator[Outgoing]:
        # Ids count passages per gate in time order, so an exit id says nothing of its entry.
        passages: list[tuple[float, str, str | None]]
        passages = [
            (v.scan_s, v.entry_gate_id, v.token) for v in self.visits if v.role != "tailgater"
        ]
        passages += [(v.exit_s, v.exit_gate_id, None) for v in self.visits]
        passages.sort(key=lambda p: p[0])
        counts: dict[str, int] = {}
        for seq, (t, gate, token) in enumerate(passages):
            counts[gate] = counts.get(gate, 0) + 1
            eid = f"{gate}.{counts[gate]}"
            event: Event
            if token is None:
                event = GateExit(id=eid, event_time_s=t, device_id=gate)
            else:
                event = GateEntry(id=eid, event_time_s=t, device_id=gate, token=token)
            yield (t, 0, seq, event)

    def _track_stream(self) -> Iterator[Outgoing]:
        sensors = self.scenario.sensors
        rate = sensors.positioning_rate_hz
        device = self.store.devices.positioning[0]
        per_chunk = max(1, round(CHUNK_S * rate))
        n_ticks = int((self.end_s - self.start_s) * rate) + 1
        for chunk, j0 in enumerate(range(0, n_ticks, per_chunk)):
            j = np.arange(j0, min(j0 + per_chunk, n_ticks))
            t = self.start_s + j / rate
            rng = np.random.default_rng([self.scenario.seed, 8, chunk])
            points: list[list[TrackPoint]] = [[] for _ in j]
            ended: list[list[str]] = [[] for _ in j]
            for v in self.visits:
                # The track is reported ended at the first tick at or after it ends.
                j_end = int(np.ceil((v.track_end_s - self.start_s) * rate - 1e-9))
                if v.track_start_s > t[-1] or j_end < j0:
                    continue
                idx = np.flatnonzero((t >= v.track_start_s) & (t < v.track_end_s))
                if idx.size:
                    x, y = v.position(t[idx])
                    x = x + rng.normal(0.0, sensors.positioning_noise_m, x.shape)
                    y = y + rng.normal(0.0, sensors.positioning_noise_m, y.shape)
                    for k, xk, yk in zip(
                        idx.tolist(), np.round(x, 3).tolist(), np.round(y, 3).tolist(), strict=True
                    ):
                        points[k].append(TrackPoint(track_id=v.track_id, x_m=xk, y_m=yk))
                if j_end < j0 + len(j):
                    ended[j_end - j0].append(v.track_id)
            for k, tk in enumerate(t.tolist()):
                batch = TrackBatch(
                    id=f"{device}.{j[k]}",
                    event_time_s=tk,
                    device_id=device,
                    tracks=points[k],
                    ended=ended[k],
                )
                yield (tk, 1, int(j[k]), batch)

    def _shelf_stream(self, signal: ControllerSignal) -> Iterator[Outgoing]:
        ctl = signal.controller
        per_batch = round(ctl.sample_rate_hz * ctl.batch_period_s)
        if per_batch < 1 or abs(per_batch - ctl.sample_rate_hz * ctl.batch_period_s) > 1e-6:
            raise ValueError(
                f"shelf controller {ctl.id!r}: batch_period_s x sample_rate_hz = "
                f"{ctl.batch_period_s * ctl.sample_rate_hz:g} is not a whole number of samples; "
                "change batch_period_s"
            )
        batches_per_chunk = max(1, round(CHUNK_S / ctl.batch_period_s))
        n_batches = int((self.end_s - self.start_s) * ctl.sample_rate_hz) // per_batch
        rank = 2 + signal.index
        for chunk, b0 in enumerate(range(0, n_batches, batches_per_chunk)):
            b1 = min(b0 + batches_per_chunk, n_batches)
            values = signal.samples(b0 * per_batch, b1 * per_batch, chunk)
            times = signal.times_s(b0 * per_batch, b1 * per_batch)
            rows = values.tolist()
            for b in range(b0, b1):
                lo = (b - b0) * per_batch
                hi = lo + per_batch
                plates = [
                    PlateSamples(plate_id=p, weights_g=rows[i][lo:hi])
                    for i, p in enumerate(signal.plates)
                ]
                batch = ShelfSamples(
                    id=f"{ctl.id}.b{b}",
                    event_time_s=float(times[lo]),
                    device_id=ctl.id,
                    sample_rate_hz=ctl.sample_rate_hz,
                    plates=plates,
                )
                yield (float(times[hi - 1]), rank, b, batch)


def _interaction(r: Reach, weights: dict[Reach, float]) -> InteractionTruth:
    return InteractionTruth(
        token=r.token,
        plate_id=r.plate_id,
        sku=r.sku,
        action=r.action,
        quantity=r.quantity,
        weight_g=round(weights[r], 2),
        started_s=r.start_s,
        ended_s=r.end_s,
        wrong_plate=r.wrong_plate,
    )


def _baskets(
    visits: list[VisitPlan], interactions: list[InteractionTruth]
) -> dict[str, dict[str, int]]:
    """token -> what that person carried out (put-backs netted)."""
    by_token: dict[str, list[InteractionTruth]] = {v.token: [] for v in visits}
    for i in interactions:
        by_token[i.token].append(i)
    return {token: net_basket(acts) for token, acts in by_token.items()}


def _truth(
    visits: list[VisitPlan],
    interactions: list[InteractionTruth],
    *,
    baskets: dict[str, dict[str, int]],
    stock: list[StockEvent],
    losses: list[tuple[float, str, float]],
    tags: dict[str, list[CarriedTag]],
) -> GroundTruth:
    people = {
        v.token: VisitTruth(
            token=v.token,
            track_id=v.track_id,
            entered_s=v.scan_s,
            exited_s=v.exit_s,
            basket=baskets[v.token],
        )
        for v in sorted(visits, key=lambda v: v.scan_s)
    }
    return GroundTruth(
        visits=[people[v.token] for v in visits if v.role != "tailgater"],
        interactions=interactions,
        stockouts=_stockouts(stock),
        unscanned=[people[v.token] for v in visits if v.role == "tailgater"],
        incidents=_incidents(visits, losses, tags),
    )


def _incidents(
    visits: list[VisitPlan],
    losses: list[tuple[float, str, float]],
    tags: dict[str, list[CarriedTag]],
) -> list[IncidentTruth]:
    """What loss prevention should hear of: tailgaters, swaps, and lost weight."""
    out = [
        IncidentTruth(
            kind="tailgating",
            category="theft",
            t_s=v.scan_s,
            until_s=v.exit_s,
            token=v.token,
            plate_ids=sorted({r.plate_id for r in v.reaches if r.action == "pick"}),
            epcs=[t.epc_hex for t in tags.get(v.token, [])],
        )
        for v in visits
        if v.role == "tailgater"
    ]
    out += [
        IncidentTruth(
            kind="wrong_put_back",
            category="theft",
            t_s=r.start_s,
            until_s=v.exit_s,
            token=v.token,
            plate_ids=[r.plate_id],
            # the tagged product it kept: an RFID case about it points at this swap
            epcs=[t.epc_hex for t in tags.get(v.token, []) if t.sku in _picked_at(v, r.plate_id)],
        )
        for v in visits
        for r in v.reaches
        if r.swap
    ]
    out += [
        IncidentTruth(
            kind="weight_loss", category="operations", t_s=t, until_s=t, plate_ids=[plate]
        )
        for t, plate, _ in losses
    ]
    return sorted(out, key=lambda i: i.t_s)


def _picked_at(visit: VisitPlan, plate_id: str) -> set[str]:
    return {r.sku for r in visit.reaches if r.plate_id == plate_id and r.action == "pick"}


def _stockouts(events: list[StockEvent]) -> list[StockoutTruth]:
    """Each (plate, SKU) that ran empty: one SKU of a shared plate can run out alone."""
    out: list[StockoutTruth] = []
    open_: dict[tuple[str, str], int] = {}
    for e in sorted(events, key=lambda e: e.t_s):
        pile = (e.plate_id, e.sku)
        if e.units == 0 and pile not in open_:
            open_[pile] = len(out)
            out.append(StockoutTruth(plate_id=e.plate_id, sku=e.sku, empty_s=e.t_s))
        elif e.units > 0 and pile in open_:
            k = open_.pop(pile)
            out[k] = out[k].model_copy(update={"refilled_s": e.t_s})
    return out
