"""Shrink rules: loss-prevention and operations findings, folded from store events.

Pure event-time logic; ``checkout.shrink`` feeds it from the bus and files
what it finds in the case book. Each rule reads facts other services already
settled, so it never second-guesses them:

- **tailgating**: an entry counted from the tracks at an entry gate
  (``checkout.footfall``) whose track no visit takes within ``bind_wait_s``
  (the brain binds a scan-in to the track at the gate, or a later track
  continues a visit), and that no scan-in for a party (``party_size`` > 1)
  around it covers;
- **unattributed_removal**: a pick the brain could put on no visit in the
  store (``ShelfOutcome`` "unattributed") while a person or a hand was there,
  unless staff are picking a click-and-collect order of that SKU;
- **weight_loss_no_interaction**: such a pick with nobody near and no hand
  seen: spoilage or a failing cell, an operations case, not theft;
- **wrong_put_back**: a put-back of another product on a plate the same visit
  took from (the scale or the shelf camera says the product differs): the
  shape of a swap. A foreign product left on a plate the visit never took
  from is an honest slip and opens nothing;
- **tagged_item_unpaid**: a tag passed an exit gate outward, and no visit
  leaving then (its track near the gate, or its exit just closed) carries an
  unclaimed unit of that SKU.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> rules = ShrinkRules(load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml"))
>>> rules.entry("trk-9", "gate-in", 1.8e9)
>>> [f.rule for f in rules.due(1.8e9 + 10)]
['tailgating']
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from checkout.cases import Evidence, Finding, TimelineEntry, TrackSnippet
from iot.payloads import (
    CartEvent,
    GateEntry,
    SessionEvent,
    ShelfOutcome,
    TagPassage,
    TrackBatch,
)
from iot.store import Store

__all__ = ["ShrinkRules", "ShrinkSettings"]

_PRUNE_EVERY_S = 5.0
_VISIT_MEMORY_S = 120.0  # a visit gone this long can no longer pay for a tag at the door

Claim = Callable[[str, int, float], "str | None"]  # (sku, units, time) -> order id or None


class ShrinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bind_wait_s: float = Field(
        default=6.0, gt=0, le=60, description="How long an entered track may wait for a visit."
    )
    party_window_s: float = Field(
        default=6.0, gt=0, le=60, description="A party's scan-in covers entries this close, s."
    )
    person_near_m: float = Field(
        default=1.5, gt=0, le=10, description="A person this near an unexplained removal acted."
    )
    exit_near_m: float = Field(
        default=2.5, gt=0, le=20, description="A visit this near the exit gate is leaving, m."
    )
    exit_window_s: float = Field(
        default=6.0, gt=0, le=60, description="A visit seen near the exit (or closed) this close."
    )
    seen_sku_min: float = Field(
        default=0.6, ge=0, le=1, description="Shelf-camera SKU confidence that can contradict."
    )
    track_memory_s: float = Field(
        default=30.0, gt=0, le=600, description="Positions kept per track, for evidence, s."
    )


@dataclass
class _Visit:
    tracks: set[str] = field(default_factory=set)
    cart: Counter[str] = field(default_factory=Counter)
    tags_out: Counter[str] = field(default_factory=Counter)  # tagged units already seen leave
    picked_plates: set[str] = field(default_factory=set)
    closed_s: float | None = None


class ShrinkRules:
    """Folds store events into findings; ``due(now_s)`` returns those decided by then."""

    def __init__(
        self,
        store: Store,
        settings: ShrinkSettings | None = None,
        *,
        claim: Claim | None = None,
    ) -> None:
        self.store = store
        self.s = settings or ShrinkSettings()
        self.claim = claim
        self.visits: dict[str, _Visit] = {}
        self.track_visit: dict[str, str] = {}
        self.paths: dict[str, deque[tuple[float, float, float]]] = {}
        self.parties: list[tuple[float, int]] = []  # (scan time, extra people it covers)
        self.waiting_entries: list[tuple[float, str, str]] = []  # (entered, track, gate)
        self.found: list[Finding] = []
        self._pruned_s = -math.inf
        self.counts: Counter[str] = Counter()
        self._sku_of_gtin = {i.gtin: i.sku for i in store.catalog.items}
        exits = [g for g in store.floor.gates if g.kind == "exit"]
        self._exit_centres = {g.id: g.centre_m for g in exits}
        self._plates = frozenset(store.plates())

    # --- facts in ---

    def scan_in(self, entry: GateEntry) -> None:
        if entry.party_size > 1:
            self.parties.append((entry.event_time_s, entry.party_size - 1))

    def session(self, ev: SessionEvent) -> None:
        visit = self.visits.setdefault(ev.session_id, _Visit())
        if ev.track_id is not None:
            visit.tracks.add(ev.track_id)
            self.track_visit[ev.track_id] = ev.session_id
        if ev.state == "closed":
            visit.closed_s = ev.event_time_s

    def cart(self, line: CartEvent) -> None:
        self.visits.setdefault(line.session_id, _Visit()).cart[line.sku] += line.quantity_delta

    def tracks(self, batch: TrackBatch) -> None:
        t = batch.event_time_s
        for p in batch.tracks:
            path = self.paths.setdefault(p.track_id, deque())
            if not path or t - path[-1][0] >= 0.5:  # 2 Hz is plenty for evidence
                path.append((t, p.x_m, p.y_m))
            while path and t - path[0][0] > self.s.track_memory_s:
                path.popleft()
        if t - self._pruned_s >= _PRUNE_EVERY_S:
            self._pruned_s = t
            self._forget(t)

    def _forget(self, t: float) -> None:
        """Ended tracks, visits long gone and old party scans age out: memory stays bounded."""
        stale = [k for k, path in self.paths.items() if t - path[-1][0] > self.s.track_memory_s]
        for k in stale:
            del self.paths[k]
        gone = [
            sid
            for sid, v in self.visits.items()
            if v.closed_s is not None and t - v.closed_s > _VISIT_MEMORY_S
        ]
        for sid in gone:
            for track in self.visits.pop(sid).tracks:
                self.track_visit.pop(track, None)
        self.parties = [p for p in self.parties if t - p[0] <= self.s.party_window_s]

    def entry(self, track_id: str, gate_id: str, t_s: float) -> None:
        """The footfall counter counted someone in through an entry gate."""
        self.waiting_entries.append((t_s, track_id, gate_id))

    def outcome(self, o: ShelfOutcome) -> None:
        if o.plate_id not in self._plates:  # not this store's plate: nothing to find or locate
            self.counts["outcomes_unknown_plate"] += 1
            return
        if o.outcome == "cart" and o.session_id is not None:
            self._settled(o)
        elif o.outcome == "unattributed" and o.action == "pick":
            self._unattributed_pick(o)

    def passage(self, p: TagPassage) -> None:
        if p.direction != "out" or p.gate_id not in self._exit_centres:
            return
        sku = self._sku_of_gtin.get(p.gtin or "")
        if sku is None:
            self.counts["passages_unknown_product"] += 1
            return
        payer = self._payer(sku, p.gate_id, p.event_time_s)
        if payer is not None:
            self.visits[payer].tags_out[sku] += 1
            self.counts["passages_paid"] += 1
            return
        near = self._tracks_near(self._exit_centres[p.gate_id], p.event_time_s)
        self._find(
            "tagged_item_unpaid",
            "theft",
            incident_s=p.first_seen_s,
            detected_s=p.event_time_s,
            confidence=0.9,
            summary=f"tagged {sku} ({p.epc_uri or p.epc_hex}) left through {p.gate_id} on no cart",
            track_ids=[t for t in near if t not in self.track_visit][:5],
            epc_hex=p.epc_hex,
            sku=sku,
            source=p.id,
        )

    # --- decisions ---

    def due(self, now_s: float) -> list[Finding]:
        """Findings decided by ``now_s`` (tailgaters wait for a visit to take them)."""
        still: list[tuple[float, str, str]] = []
        for entered, track, gate in self.waiting_entries:
            if now_s < entered + self.s.bind_wait_s:
                still.append((entered, track, gate))
            elif track in self.track_visit:
                self.counts["entries_bound"] += 1
            elif self._covered_by_party(entered):
                self.counts["entries_in_a_party"] += 1
            else:
                self._find(
                    "tailgating",
                    "theft",
                    incident_s=entered,
                    detected_s=now_s,
                    confidence=0.8,
                    summary=f"someone walked in through {gate} with no scan-in (track {track})",
                    track_ids=[track],
                    source=f"entry.{track}",
                )
        self.waiting_entries = still
        out, self.found = self.found, []
        return out

    def _covered_by_party(self, entered_s: float) -> bool:
        for k, (scan_s, extra) in enumerate(self.parties):
            if extra and abs(entered_s - scan_s) <= self.s.party_window_s:
                self.parties[k] = (scan_s, extra - 1)
                return True
        return False

    def _settled(self, o: ShelfOutcome) -> None:
        assert o.session_id is not None
        visit = self.visits.setdefault(o.session_id, _Visit())
        if o.action == "pick":
            visit.picked_plates.add(o.plate_id)
            return
        if o.plate_id not in visit.picked_plates:
            return  # a slip on a plate the visit never took from: no theft pattern
        seen_other = (
            o.seen_sku is not None
            and o.seen_sku_confidence >= self.s.seen_sku_min
            and o.seen_sku != o.sku
        )
        if not (o.foreign or seen_other):
            return
        what = o.sku if o.foreign else o.seen_sku
        self._find(
            "wrong_put_back",
            "theft",
            incident_s=o.event_time_s,
            detected_s=o.event_time_s,
            confidence=0.8 if o.foreign else 0.6,
            summary=f"{o.session_id} put {what} back on {o.plate_id}, which it took "
            f"{o.shelf_sku} from ({'weight' if o.foreign else 'shelf camera'} says so)",
            session_id=o.session_id,
            track_ids=sorted(visit.tracks)[:5],
            plate_id=o.plate_id,
            sku=o.shelf_sku,
            source=o.source_event_id,
        )

    def _unattributed_pick(self, o: ShelfOutcome) -> None:
        person = o.nearest_m is not None and o.nearest_m <= self.s.person_near_m
        if not (person or o.hand_seen):
            self._find(
                "weight_loss_no_interaction",
                "operations",
                incident_s=o.event_time_s,
                detected_s=o.event_time_s,
                confidence=0.8,
                summary=f"{o.plate_id} lost about {o.quantity} x {o.shelf_sku} with nobody there",
                plate_id=o.plate_id,
                sku=o.shelf_sku,
                source=o.source_event_id,
            )
            return
        if self.claim is not None and self.claim(o.shelf_sku, o.quantity, o.event_time_s):
            self.counts["removals_for_orders"] += 1
            return
        tracks = [o.nearest_track_id] if person and o.nearest_track_id else []
        self._find(
            "unattributed_removal",
            "theft",
            incident_s=o.event_time_s,
            detected_s=o.event_time_s,
            confidence=0.85 if person and o.hand_seen else 0.7,
            summary=f"{o.quantity} x {o.shelf_sku} left {o.plate_id} and no shopper with a visit "
            "was in reach",
            track_ids=tracks,
            plate_id=o.plate_id,
            sku=o.shelf_sku,
            source=o.source_event_id,
        )

    def _payer(self, sku: str, gate_id: str, t_s: float) -> str | None:
        """The visit leaving now that carries an unclaimed unit of ``sku``, if any."""
        near = set(self._tracks_near(self._exit_centres[gate_id], t_s))
        best: tuple[float, str] | None = None
        for sid, v in self.visits.items():
            if v.cart[sku] - v.tags_out[sku] <= 0:
                continue
            closing = v.closed_s is not None and abs(v.closed_s - t_s) <= self.s.exit_window_s
            if closing or v.tracks & near:
                rank = abs((v.closed_s or t_s) - t_s)
                if best is None or rank < best[0]:
                    best = (rank, sid)
        return best[1] if best else None

    def _tracks_near(self, at: tuple[float, float], t_s: float) -> list[str]:
        out = []
        for tid, path in self.paths.items():
            recent = [(t, x, y) for t, x, y in path if t_s - self.s.exit_window_s <= t <= t_s + 1.0]
            if any(math.dist((x, y), at) <= self.s.exit_near_m for _, x, y in recent):
                out.append(tid)
        return sorted(out)

    def _find(
        self,
        rule: str,
        category: str,
        *,
        incident_s: float,
        detected_s: float,
        confidence: float,
        summary: str,
        source: str,
        session_id: str | None = None,
        track_ids: list[str] | None = None,
        epc_hex: str | None = None,
        plate_id: str | None = None,
        sku: str | None = None,
    ) -> None:
        tracks = track_ids or []
        price = self.store.items[sku].price_cents if sku in self.store.items else 0
        snippets = [
            TrackSnippet(track_id=t, points=[p for p in self.paths[t] if p[0] <= detected_s][-40:])
            for t in tracks
            if self.paths.get(t)
        ]
        self.found.append(
            Finding.model_validate(
                {
                    "store_id": self.store.store_id,
                    "rule": rule,
                    "category": category,
                    "incident_s": incident_s,
                    "detected_s": max(detected_s, incident_s),
                    "confidence": confidence,
                    "summary": summary,
                    "session_id": session_id,
                    "track_ids": tracks,
                    "epc_hex": epc_hex,
                    "plate_id": plate_id,
                    "sku": sku,
                    "amount_cents": price,
                    "source_event_ids": [source],
                    "evidence": Evidence(
                        timeline=[
                            TimelineEntry(
                                time_s=incident_s, source_event_id=source, kind=rule, text=summary
                            )
                        ],
                        tracks=snippets,
                    ),
                }
            )
        )
        self.counts[f"findings.{rule}"] += 1
