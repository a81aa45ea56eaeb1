"""The store brain: sessions, fusion, the cart ledger and receipts, driven by event time.

It reads the bus through an ``Inbox`` and decides nothing on arrival that
could still change: a shelf event waits until event time has passed it by
``attribution_delay_s`` (so the tracks around it have arrived over a real
broker too), an exit likewise, and a receipt until ``receipt_grace_s`` after
the exit with no shelf event that started before the exit still pending.
Event time is the newest of the times received and the times given to
``tick``; no wall clock is read.

>>> from pathlib import Path
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> brain = StoreBrain(store, LocalTransport(), Ledger(":memory:"))
>>> brain.start(); brain.tick(1.8e9); brain.stats()["sessions_opened"]
0
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from checkout.fault_review import FaultReview
from checkout.fusion import (
    Attribution,
    Interpretation,
    Seen,
    attribute,
    interpret_pick,
    interpret_put,
    line_confidence,
    mean_distance_m,
    reach_score_m,
    speed_m_s,
)
from checkout.identity import IdentityKeeper
from checkout.ids import derived_id
from checkout.ledger import Ledger, SessionRecord, ShelfDecision
from checkout.pricebook import PriceSource
from checkout.receipts import build_receipt
from checkout.sessions import SessionBook, session_id_for
from checkout.settings import BrainSettings
from checkout.sightings import Sightings
from checkout.tick_guard import TickGuard
from checkout.tracks import TrackHistory
from checkout.witness import Witness
from iot.bus import Inbox, Message, Transport, publish
from iot.metrics import FusionTimer, count_receipt
from iot.payloads import (
    Alert,
    CartEvent,
    DeviceStatus,
    Event,
    GateEntry,
    GateExit,
    Interaction,
    Receipt,
    SessionEvent,
    ShelfEvent,
    ShelfOutcome,
    TrackBatch,
)
from iot.store import Store
from iot.topics import TOPICS

__all__ = ["BrainSettings", "StoreBrain"]

log = logging.getLogger(__name__)

_EPOCH_FLOOR_S = 946_684_800.0  # the earliest event time a payload accepts
_PRUNE_EVERY_S = 5.0
_RECENT_RECEIPTS = 10_000  # receipts kept in memory; the ledger keeps them all

_Handler = Callable[[Message], None]
_Outcome = Literal["cart", "unattributed", "unexplained", "late"]


class StoreBrain:
    """Turns gate, track and shelf events into sessions, cart lines and receipts."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        ledger: Ledger,
        *,
        settings: BrainSettings | None = None,
        service_id: str = "brain",
        prices: PriceSource | None = None,
    ) -> None:
        self.store = store
        self.transport = transport
        self.ledger = ledger
        self.prices = prices  # None: receipts pay catalog prices; else the price at each pick
        self.settings = settings or BrainSettings()
        self.service_id = service_id
        self.clock_s = -math.inf
        self.tracks = TrackHistory(
            self.settings.track_retention_s,
            return_slack_m=self.settings.stitch_radius_m,
            return_speed_m_s=self.settings.stitch_speed_m_s,
        )
        self.book = SessionBook(store, self.tracks, self.settings)
        self.keeper = IdentityKeeper(self.book, self.tracks, self.settings)
        self.witness = Witness(self.book, self.tracks, self.settings)
        reach = store.reach_m + self.settings.reach_margin_m
        self.faults = FaultReview(store, self.tracks, reach_m=reach)  # device-health alerts
        self.receipts: list[Receipt] = []
        self.inbox: Inbox | None = None
        self._alerts_inbox: Inbox | None = None
        self._counts: Counter[str] = Counter()
        self._foreign: dict[str, dict[str, int]] = {}
        self.sightings = Sightings(self.settings.track_retention_s)
        self._shelf_of = {p.id: s.id for _, s, p in store.iter_plates()}
        self._shelf_cameras: dict[str, list[str]] = {}
        for cam in store.devices.cameras:
            if cam.kind == "shelf" and cam.gondola is not None:
                self._shelf_cameras.setdefault(cam.gondola, []).append(cam.id)
        self._pending: list[tuple[float, int, Message]] = []  # (due time, seq, shelf event or exit)
        self._seq = itertools.count()
        self._waiting: dict[str, float] = {}  # shelf events put off for a sighting -> until
        self._lock = threading.RLock()  # handlers (broker thread) and tick (caller) take turns
        self._last_prune_s = -math.inf
        self._ticks = TickGuard(self.settings.max_future_s)  # the composition root's clock
        self._status_n = 0
        self._near: tuple[float, str, str | None] | None = None  # of the last attribution
        self._fusion_timer = FusionTimer(store.store_id)  # operations metrics only

    # --- life cycle ---

    def start(self, now_s: float | None = None, *, resume_clock: bool = True) -> None:
        """Rebuild from the ledger, subscribe, and publish a retained ``online`` status.

        The visits still open, or closed without a receipt, come back, and so do
        those receipted within ``closed_retention_s`` of the ledger's newest time (a
        running brain still holds them: a shelf event near one is late, not another
        shopper's). ``resume_clock=False``: the caller replays the brain's journal
        next (``replaying``), so the clock stays back and each replayed event is
        decided when event time passes it, as it was the first time.
        """
        with self._lock:
            for record in self.ledger.unreceipted_sessions():
                self.book.restore(record)
            self._foreign = self.ledger.plate_foreign()
            latest = self.ledger.latest_time_s()
            if latest is not None:
                for record in self.ledger.receipted_sessions(
                    latest - self.settings.closed_retention_s
                ):
                    self.book.restore(record)
            self.clock_s = max(
                self.clock_s,
                latest if latest is not None and resume_clock else -math.inf,
                now_s if now_s is not None else -math.inf,
            )
            log.info(
                "brain %s starts with %d unreceipted sessions",
                self.service_id,
                len(self.book.sessions),
            )
            self.inbox = inbox = Inbox(
                self.transport,
                self.store.store_id,
                service_kind="brain",
                service_id=self.service_id,
                now=lambda: max(self.clock_s, _EPOCH_FLOOR_S),
                known_devices=self.store.device_ids(),
            )
            inbox.on(TOPICS["gate_entries"], self._guarded(self._on_entry))
            inbox.on(TOPICS["gate_exits"], self._guarded(self._on_exit))
            inbox.on(TOPICS["tracks"], self._guarded(self._on_tracks))
            inbox.on(TOPICS["shelf_events"], self._guarded(self._on_shelf))
            inbox.on(TOPICS["interactions"], self._guarded(self._on_interaction))
            inbox.on(TOPICS["status"], self._guarded(self._on_camera_status), kind="camera")
            alerts = Inbox(  # store operations' alerts: any service of the store may raise one
                self.transport,
                self.store.store_id,
                service_kind="brain",
                service_id=self.service_id,
                now=lambda: max(self.clock_s, _EPOCH_FLOOR_S),
            )
            alerts.on(TOPICS["alerts"], self._guarded(self._on_alert))
            self._alerts_inbox = alerts
            self._publish_status("online")

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """While the caller feeds the journal back in: refusals are counted, not dead-lettered.

        What the journal holds was received (and refused, where it was) before a
        restart; the inbox's duplicate window, the clock and the undecided events
        are rebuilt from it.
        """
        inboxes = [i for i in (self.inbox, self._alerts_inbox) if i is not None]
        for inbox in inboxes:
            inbox.quiet = True
        try:
            yield
        finally:
            for inbox in inboxes:
                inbox.quiet = False

    def tick(self, now_s: float) -> None:
        """Event time has reached ``now_s``: decide what is due."""
        with self._lock:
            self._ticks.tick(now_s)
            self._advance(now_s)

    def close(self) -> None:
        """Publish ``offline``; the ledger belongs to the caller and stays open."""
        with self._lock:
            self._publish_status("offline")
            if self._pending:
                log.warning(
                    "brain %s closes with %d undecided events", self.service_id, len(self._pending)
                )

    def stats(self) -> dict[str, int]:
        """Counters of this run, dead letters by reason, and a few current sizes."""
        with self._lock:
            out = dict(self._counts)
            rejected = self.inbox.rejected if self.inbox else Counter()
            out["dead_letters"] = sum(rejected.values())
            out.update({f"dead_letter.{reason}": n for reason, n in rejected.items()})
            out["open_sessions"] = sum(s.state != "closed" for s in self.book.sessions.values())
            out["pending_events"] = len(self._pending)
            out["tracks"] = len(self.tracks)
            for key in (
                "sessions_opened",
                "sessions_bound",
                "sessions_closed",
                "events_attributed",
                "events_unattributed",
                "events_unexplained",
                "receipts",
                "receipts_needing_review",
                "unmatched_exits",
                "late_events",
                "tracks_stitched",
                "sessions_bound_late",
            ):
                out.setdefault(key, 0)
            return out

    # --- handlers (validated by the inbox) ---

    def _guarded(self, handler: _Handler) -> _Handler:
        def locked(msg: Message) -> None:
            with self._lock:
                ahead = self._ticks.too_far_ahead_s(msg.payload.event_time_s)
                if ahead is not None:
                    # A device whose clock runs ahead must not drag the brain's clock
                    # forward: that would decide pending events before their evidence.
                    self.inbox_reject(msg, "from the future", f"{ahead:.1f} s ahead of the clock")
                    return
                handler(msg)

        return locked

    def _on_entry(self, msg: Message) -> None:
        entry = msg.payload
        assert isinstance(entry, GateEntry)
        sid = session_id_for(entry.token)
        known = self.book.get(sid) or self.ledger.session(sid)
        if known is not None and (known.state == "closed" or known.receipt_id is not None):
            self._late(msg, f"token {entry.token} already used by closed session {sid}")
        elif known is not None:
            self._counts["repeat_scan_ins"] += 1
            log.info("repeat scan-in %s for open session %s ignored", entry.id, sid)
        else:
            record = self.book.open(entry)
            self._counts["sessions_opened"] += 1
            self._save_and_announce(record, "open", entry.event_time_s)
            if self.book.bind_session(record):
                self._announce_bound(record, entry.event_time_s)
        self._advance(entry.event_time_s)

    def _on_exit(self, msg: Message) -> None:
        exit_ = msg.payload
        assert isinstance(exit_, GateExit)
        if any(s.exit_event_id == exit_.id for s in self.book.sessions.values()):
            self._counts["repeat_exits"] += 1
        elif (
            exit_.token is not None
            and (rec := self.book.by_token(exit_.token)) is not None
            and rec.state == "closed"
        ):
            self._late(msg, f"exit for session {rec.session_id}, already closed")
        else:
            self._schedule(exit_.event_time_s, msg)
        self._advance(exit_.event_time_s)

    def _on_tracks(self, msg: Message) -> None:
        batch = msg.payload
        assert isinstance(batch, TrackBatch)
        for track_id in self.tracks.observe(batch):
            record = self.book.bind_track(track_id)
            if record is not None:
                self._announce_bound(record, batch.event_time_s)
            elif (went_on := self.book.continue_track(track_id)) is not None:
                self._counts["tracks_stitched"] += 1
                self._announce_stitch(went_on, track_id, batch.event_time_s)
            elif (late := self.book.bind_late(track_id)) is not None:
                self._counts["sessions_bound_late"] += 1
                self._announce_bound(late, batch.event_time_s)
        self.book.learn_looks(batch)
        if self.settings.look_attribution and self.settings.look_rebind:
            self._counts["tracks_moved_by_look"] += len(self.keeper.check(batch))
        self._advance(batch.event_time_s)

    def _on_shelf(self, msg: Message) -> None:
        ev = msg.payload
        assert isinstance(ev, ShelfEvent)
        plates = self.store.controller_plates.get(ev.device_id, [])
        if ev.plate_id not in plates:
            self.inbox_reject(
                msg,
                "unknown plate",
                f"plate {ev.plate_id!r} is not read by controller {ev.device_id!r}",
            )
        elif self.ledger.decided(ev.id):
            self.inbox_reject(msg, "already decided", f"shelf event {ev.id} was decided before")
        else:
            self._fusion_timer.arrived(ev.id)
            self._schedule(ev.event_time_s, msg)
        self._advance(ev.event_time_s)

    def _on_interaction(self, msg: Message) -> None:
        seen = msg.payload
        assert isinstance(seen, Interaction)
        watching = self._shelf_cameras.get(seen.gondola_id, [])
        gondola = self.store.plate(seen.plate_id)[0].id if seen.plate_id in self._shelf_of else None
        if seen.device_id not in watching or gondola != seen.gondola_id:
            self.inbox_reject(
                msg,
                "unknown plate or camera",
                f"camera {seen.device_id!r} does not watch plate {seen.plate_id!r} of gondola "
                f"{seen.gondola_id!r}; check the store file's shelf cameras",
            )
        elif not self.sightings.add(seen):
            self._counts["interactions_repeated"] += 1
        else:
            self._counts["interactions"] += 1
        self._advance(seen.event_time_s)

    def _on_camera_status(self, msg: Message) -> None:
        status = msg.payload
        assert isinstance(status, DeviceStatus)
        if any(status.device_id in ids for ids in self._shelf_cameras.values()):
            self.sightings.camera_status(status)

    def _on_alert(self, msg: Message) -> None:
        assert isinstance(msg.payload, Alert)
        self.faults.alert(msg.payload)  # device faults: see _review_faults

    # --- the clock ---

    def _schedule(self, time_s: float, msg: Message) -> None:
        heapq.heappush(
            self._pending, (time_s + self.settings.attribution_delay_s, next(self._seq), msg)
        )

    def _advance(self, now_s: float) -> None:
        self.clock_s = max(self.clock_s, now_s)
        while self._pending and self._pending[0][0] <= self.clock_s:
            _, _, msg = heapq.heappop(self._pending)
            if isinstance(msg.payload, ShelfEvent):
                self._decide_shelf(msg)
            else:
                self._decide_exit(msg)
        self._review_faults()
        self._issue_due_receipts()
        if self.clock_s - self._last_prune_s >= _PRUNE_EVERY_S:
            self._prune()

    def _prune(self) -> None:
        self._last_prune_s = self.clock_s
        self.tracks.prune(self.clock_s)
        self.sightings.prune(self.clock_s)
        horizon = self.clock_s - self.settings.closed_retention_s
        for s in list(self.book.sessions.values()):
            if s.receipt_id is not None and s.exited_s is not None and s.exited_s < horizon:
                self.book.forget(s.session_id)

    # --- decisions ---

    def _decide_exit(self, msg: Message) -> None:
        exit_ = msg.payload
        assert isinstance(exit_, GateExit)
        record, why = self.book.match_exit(exit_)
        if exit_.token is None and record is None:
            record, why = self.witness.exit(exit_, why)
            self._counts["exits_named_by_look"] += record is not None
        if record is None:
            self._counts["unmatched_exits"] += 1
            log.warning("exit %s at %.2f matched no session: %s", exit_.id, exit_.event_time_s, why)
            return
        self.book.close(record, exit_)
        self._counts["sessions_closed"] += 1
        log.info("session %s closed by exit %s (%s)", record.session_id, exit_.id, why)
        self._save_and_announce(record, "closed", exit_.event_time_s)

    def _decide_shelf(self, msg: Message) -> None:
        ev = msg.payload
        assert isinstance(ev, ShelfEvent)
        if self._await_sighting(ev, msg):
            return
        self._waiting.pop(ev.id, None)
        seen = self._sighting(ev)
        who = self._attribute(ev, seen)
        if who.session_id is None:
            self._counts["events_unattributed"] += 1
            log.info("shelf event %s on %s unattributed: %s", ev.id, ev.plate_id, who.reason)
            self._record(ev, None, "unattributed", who.reason, seen=seen)
            return
        record = self.book.get(who.session_id)
        assert record is not None
        if record.receipt_id is not None:
            self._record(ev, record.session_id, "late", who.reason, seen=seen)
            self._late(
                msg, f"shelf event {ev.id} is for session {record.session_id}, already receipted"
            )
            return
        what = self._interpret(ev, record, seen)
        self._note_blind_camera(ev, record, seen, who)
        if what.sku is None:
            self._counts["events_unexplained"] += 1
            record.review_reasons.append(f"shelf event {ev.id} on {ev.plate_id}: {what.reason}")
            self.ledger.save_session(record)
            self._record(ev, record.session_id, "unexplained", what.reason, seen=seen)
            return
        self._counts["events_attributed"] += 1
        self._flag_runner_up(ev, who)
        line = CartEvent(
            id=derived_id("c-", ev.id),
            event_time_s=ev.event_time_s,
            device_id=self.service_id,
            session_id=record.session_id,
            sku=what.sku,
            quantity_delta=what.quantity_delta,
            confidence=round(
                line_confidence(what.weight_confidence, who.confidence, what.sku_confidence), 4
            ),
            source_event_id=ev.id,
            unit_weight_g=round(abs(ev.delta_g) / abs(what.quantity_delta), 2),
            reason=f"{what.reason}; {who.reason}"[:500],
        )
        if self.ledger.append(line):
            publish(self.transport, self.store.store_id, line)
        for sku, delta in what.plate_foreign_delta.items():
            on_plate = self._foreign.setdefault(ev.plate_id, {})
            on_plate[sku] = max(0, on_plate.get(sku, 0) + delta)
            self.ledger.set_plate_foreign(ev.plate_id, sku, on_plate[sku])
        self._record(ev, record.session_id, "cart", line.reason, seen=seen, line=line)

    def _flag_runner_up(self, ev: ShelfEvent, who: Attribution) -> None:
        """An unsure attribution may have charged the wrong one of two shoppers: flag both."""
        if who.runner_up_id is None or who.confidence >= self.settings.review_below:
            return
        other = self.book.get(who.runner_up_id)
        if other is None or other.receipt_id is not None:
            return
        other.review_reasons.append(
            f"shelf event {ev.id} on {ev.plate_id} went to {who.session_id} with confidence "
            f"{who.confidence:.2f}; this visit was also in reach"
        )
        self.ledger.save_session(other)

    def _await_sighting(self, ev: ShelfEvent, msg: Message) -> bool:
        """Put the decision off (once) while the camera watching the plate may still report.

        A camera's episode closes when the hand leaves the shelf, which can be
        seconds after the weight settled (a hand that lingers); deciding before
        it arrives would lose what the camera saw.
        """
        due = ev.event_time_s + self.settings.sighting_wait_s
        if ev.id in self._waiting or self.clock_s >= due:
            return False
        gondola = self.store.plate(ev.plate_id)[0].id
        watching = [
            c for c in self._shelf_cameras.get(gondola, []) if c in self.sightings.cameras_up
        ]
        if not watching or self._sighting(ev, consume=False) is not None:
            return False
        self._waiting[ev.id] = due
        heapq.heappush(self._pending, (due, next(self._seq), msg))
        return True

    def _sighting(self, ev: ShelfEvent, *, consume: bool = True) -> Interaction | None:
        """The shelf camera's episode of this act, if a camera saw it."""
        gondola = self.store.plate(ev.plate_id)[0].id
        seen = self.sightings.match(
            gondola,
            ev.plate_id,
            shelf_of=self._shelf_of,
            action=ev.action,
            started_s=ev.started_s,
            ended_s=ev.event_time_s,
            slack_s=self.settings.interaction_slack_s,
            consume=consume,
        )
        if seen is not None and consume:
            self._counts["shelf_events_seen"] += 1
        return seen

    def _note_blind_camera(
        self, ev: ShelfEvent, record: SessionRecord, seen: Interaction | None, who: Attribution
    ) -> None:
        """A shelf camera that was down: weight and positions decide alone. That is enough
        when one shopper stood there; with another visit in reach, say so for review."""
        if seen is not None:
            return
        gondola = self.store.plate(ev.plate_id)[0].id
        down = [c for c in self._shelf_cameras.get(gondola, []) if c in self.sightings.cameras_down]
        if not down:
            return
        self._counts["events_camera_down"] += 1
        if who.runner_up_id is None and who.confidence >= self.settings.review_below:
            return
        self._counts["events_camera_down_ambiguous"] += 1
        record.review_reasons.append(
            f"shelf event {ev.id} on {ev.plate_id}: shelf camera {', '.join(down)} was "
            f"offline and the attribution was ambiguous (confidence {who.confidence:.2f}"
            f"{', another visit in reach' if who.runner_up_id else ''}); decided from weight "
            "and positions alone"
        )

    def _attribute(self, ev: ShelfEvent, seen: Interaction | None = None) -> Attribution:
        t0 = ev.started_s - self.settings.attribution_lead_s
        t1 = min(ev.event_time_s, ev.started_s + self.settings.attribution_hold_s)
        gap = self.settings.position_gap_s
        if seen is not None:
            # the arm's root says where the acting shopper stood: sharper than the plate
            t0, t1 = min(t0, seen.started_s), max(min(t1, seen.event_time_s), seen.started_s)

            def distance(tid: str, g: float) -> float | None:
                return self._point_distance(tid, (seen.hand_x_m, seen.hand_y_m), t0, t1, g)

            reach = self.settings.hand_reach_m
        else:

            def distance(tid: str, g: float) -> float | None:
                return self._track_distance(tid, ev.plate_id, t0, t1, g)

            reach = self.store.reach_m
        distances: dict[str, float] = {}
        near: list[tuple[float, str, str | None]] = []  # (distance, track, its visit)
        inside = self.book.in_store_during(t0, t1)
        for s in inside:
            assert s.track_id is not None
            d = distance(s.track_id, gap)
            if d is not None:
                distances[s.session_id] = d
                near.append((d, s.track_id, s.session_id))
        # a track whose visit has left stands for nobody: it followed someone else out
        bound = {s.track_id for s in inside}
        rivals = {
            tid: d
            for tid in self.tracks.track_ids()
            if tid not in bound and (d := distance(tid, 0.0)) is not None
        }
        near += [(d, tid, None) for tid, d in rivals.items()]
        who = attribute(
            distances,
            reach_m=reach,
            margin_m=self.settings.reach_margin_m,
            sure_margin_m=self.settings.sure_margin_m,
            single_confidence=self.settings.single_candidate_confidence,
            rivals_m=rivals.values(),
        )
        self._near = min(near, default=None)  # who stood nearest: for the outcome event
        in_reach = [n for n in near if n[0] <= reach + self.settings.reach_margin_m]
        if not in_reach:
            return who
        by_look = self.witness.act(who, min(in_reach), (t0, t1))
        self._counts["events_named_by_look"] += by_look is not who
        return by_look

    def _track_distance(
        self, track_id: str, plate_id: str, t0: float, t1: float, gap: float
    ) -> float | None:
        samples = self.tracks.window(track_id, t0, t1, gap)
        distance = mean_distance_m(
            self.store.distance_to_plate_m(plate_id, x, y) for _, x, y in samples
        )
        if distance is None:
            return None
        return reach_score_m(distance, speed_m_s(samples), self.settings.walking_penalty_s)

    def _point_distance(
        self, track_id: str, point: tuple[float, float], t0: float, t1: float, gap: float
    ) -> float | None:
        samples = self.tracks.window(track_id, t0, t1, gap)
        distance = mean_distance_m(math.hypot(x - point[0], y - point[1]) for _, x, y in samples)
        if distance is None:
            return None
        return reach_score_m(distance, speed_m_s(samples), self.settings.walking_penalty_s)

    def _interpret(
        self, ev: ShelfEvent, record: SessionRecord, sighting: Interaction | None = None
    ) -> Interpretation:
        # Every SKU the planogram puts on the plate is "home"; facings split the pick prior.
        home = {e.sku: float(e.facings) for e in self.store.skus_on_plate(ev.plate_id)}
        weight = abs(ev.delta_g)
        items = self.store.items
        # The scale settles pick or put. A camera that read the hand otherwise (a
        # touch: it missed the package; the other action: it misjudged which
        # end held it) still saw where the hand reached, which says the SKU.
        seen = (
            Seen(
                sighting.sku,
                sighting.sku_confidence,
                sighting.device_id,
                reached_only=sighting.action != ev.action,
            )
            if sighting is not None and sighting.sku is not None
            else None
        )
        if ev.action == "pick":
            foreign = self._foreign.get(ev.plate_id, {})
            return interpret_pick(
                weight,
                ev.noise_g,
                home=home,
                foreign_on_plate=foreign,
                items=items,
                settings=self.settings,
                seen=seen,
            )
        lines = self.ledger.cart_events(record.session_id)
        picked: dict[str, list[float]] = {}
        for line in lines:
            if line.quantity_delta > 0 and line.unit_weight_g is not None:
                picked.setdefault(line.sku, []).append(line.unit_weight_g)
        return interpret_put(
            weight,
            ev.noise_g,
            home_skus=list(home),
            cart=self.ledger.cart(record.session_id),
            items=items,
            settings=self.settings,
            picked_unit_weights_g=picked,
            seen=seen,
        )

    def _record(
        self,
        ev: ShelfEvent,
        session_id: str | None,
        outcome: _Outcome,
        reason: str,
        *,
        seen: Interaction | None = None,
        line: CartEvent | None = None,
    ) -> None:
        """Keep the decision in the ledger and tell store operations how it was settled."""
        self.ledger.record_decision(
            ShelfDecision(
                event_id=ev.id,
                session_id=session_id,
                outcome=outcome,
                reason=reason,
                event_time_s=ev.event_time_s,
                payload=ev.model_dump_json(),
            )
        )
        self._fusion_timer.decided(
            ev.id, outcome, event_time_s=ev.event_time_s, decided_at_s=self.clock_s
        )
        near, self._near = self._near, None
        plate_skus = {e.sku for e in self.store.skus_on_plate(ev.plate_id)}
        self._publish(
            ShelfOutcome(
                id=derived_id("o-", ev.id),
                event_time_s=ev.event_time_s,
                device_id=self.service_id,
                source_event_id=ev.id,
                plate_id=ev.plate_id,
                action=ev.action,
                quantity=ev.quantity,
                shelf_sku=ev.sku,
                outcome=outcome,
                session_id=session_id,
                sku=line.sku if line else None,
                foreign=line is not None and line.sku not in plate_skus,
                nearest_track_id=near[1] if near else None,
                nearest_m=round(min(near[0], 1000.0), 3) if near else None,
                nearest_bound=near is not None and near[2] is not None,
                hand_seen=seen is not None,
                seen_sku=seen.sku if seen else None,
                seen_sku_confidence=seen.sku_confidence if seen else 0.0,
                reason=reason[:500],
            )
        )

    # --- receipts ---

    def _issue_due_receipts(self) -> None:
        for record in list(self.book.sessions.values()):
            if record.state != "closed" or record.receipt_id is not None or record.exited_s is None:
                continue
            if self.clock_s < record.exited_s + self.settings.receipt_grace_s:
                continue
            if any(
                isinstance(m.payload, ShelfEvent) and self._may_belong(m.payload, record)
                for _, _, m in self._pending
            ):
                continue  # a shelf event from before the exit may still belong to this visit
            self._issue_receipt(record)

    def _may_belong(self, ev: ShelfEvent, record: SessionRecord) -> bool:
        """Could an undecided shelf event still be charged to this closed visit?

        Only if it started before the exit and the visit's track came within
        reach of the plate since then; other shoppers' events elsewhere in the
        store must not hold this receipt back.
        """
        assert record.exited_s is not None
        if ev.started_s > record.exited_s:
            return False
        if record.track_id is None:
            return True
        t0 = ev.started_s - self.settings.attribution_lead_s
        samples = self.tracks.window(record.track_id, t0, record.exited_s)
        limit = self.store.reach_m + self.settings.reach_margin_m
        return not samples or any(
            self.store.distance_to_plate_m(ev.plate_id, x, y) <= limit for _, x, y in samples
        )

    def _review_faults(self) -> None:
        """Flag the visits a faulty device touched (its tracks have had time to arrive)."""
        upto_s = self.clock_s - self.settings.attribution_delay_s
        for record, reason in self.faults.review(self.book.sessions.values(), upto_s):
            late = record.receipt_id is not None
            self._counts["visits_flagged_device_fault" + ("_after_receipt" if late else "")] += 1
            if late:
                log.warning("visit %s already receipted: %s", record.session_id, reason)
            record.review_reasons.append(reason)
            self.ledger.save_session(record)

    def _issue_receipt(self, record: SessionRecord) -> None:
        assert record.exited_s is not None
        for reason in self.faults.review_visit(record, record.exited_s):
            self._counts["visits_flagged_device_fault"] += 1
            record.review_reasons.append(reason)
        receipt = build_receipt(
            self.store,
            record,
            self.ledger.cart_events(record.session_id),
            issued_s=self.clock_s,
            device_id=self.service_id,
            review_below=self.settings.review_below,
            prices=self.prices,
        )
        if self.ledger.save_receipt(receipt):
            publish(self.transport, self.store.store_id, receipt)
            self.receipts.append(receipt)
            if len(self.receipts) > _RECENT_RECEIPTS:  # a long-running brain must not grow
                del self.receipts[: len(self.receipts) - _RECENT_RECEIPTS]
            self._counts["receipts"] += 1
            self._counts["receipts_needing_review"] += int(receipt.needs_review)
            count_receipt(self.store.store_id, receipt.needs_review)
            log.info(
                "receipt %s: %d lines, %d cents, review %s",
                receipt.id,
                len(receipt.lines),
                receipt.total_cents,
                receipt.needs_review,
            )
        record.receipt_id = receipt.id
        self.ledger.save_session(record)

    # --- publishing ---

    def _save_and_announce(
        self, record: SessionRecord, state: Literal["open", "bound", "closed"], time_s: float
    ) -> None:
        self.ledger.save_session(record)
        self._publish(
            SessionEvent(
                id=derived_id(f"{state}.", record.session_id),
                event_time_s=time_s,
                device_id=self.service_id,
                session_id=record.session_id,
                token=record.token,
                state=state,
                track_id=record.track_id,
            )
        )

    def _announce_bound(self, record: SessionRecord, time_s: float) -> None:
        self._counts["sessions_bound"] += 1
        self._save_and_announce(record, "bound", time_s)

    def _announce_stitch(self, record: SessionRecord, track_id: str, time_s: float) -> None:
        """A new track goes on with a visit: say so (store operations count entries by track)."""
        self._publish(
            SessionEvent(
                id=derived_id("stitch.", f"{record.session_id}.{track_id}"),
                event_time_s=time_s,
                device_id=self.service_id,
                session_id=record.session_id,
                token=record.token,
                state="bound",
                track_id=track_id,
            )
        )

    def _publish(self, event: Event) -> None:
        publish(self.transport, self.store.store_id, event)

    def _publish_status(self, state: Literal["online", "offline"]) -> None:
        self._status_n += 1
        status = DeviceStatus(
            id=f"{self.service_id}.status.{self._status_n}",
            event_time_s=max(self.clock_s, _EPOCH_FLOOR_S),
            device_id=self.service_id,
            state=state,
        )
        publish(self.transport, self.store.store_id, status, kind="brain")

    def inbox_reject(self, msg: Message, reason: str, detail: str) -> None:
        """Dead-letter a validated message the brain will not use."""
        assert self.inbox is not None
        self.inbox.reject(msg.topic, msg.payload.model_dump_json().encode(), reason, detail)

    def _late(self, msg: Message, detail: str) -> None:
        self._counts["late_events"] += 1
        self.inbox_reject(msg, "too late", detail)
