"""The shrink service: store events in, loss-prevention cases out.

Wires the pure rules (``checkout.shrink_rules``) to the bus and the case
book: it hears scan-ins, sessions, cart lines, shelf outcomes, tag passages
and tracks; counts entries from the tracks with the footfall counter (the
same rule the manager's footfall uses); and files every finding in the
``CaseBook``, which merges findings about one incident into one case and
announces each change on the ``cases`` topic (QoS 1).

A finding's ``detected_s`` is this service's event time when it decided, so
"time from exit to alert" measures the real pipeline: the RFID adapter's
quiet time, the brain's attribution delay and this service's own waits.

>>> from pathlib import Path
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> from checkout.cases import CaseBook
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> service = ShrinkService(store, LocalTransport(), CaseBook(":memory:"), now=lambda: 1.8e9)
>>> service.start(); service.tick(1.8e9); service.stats()["cases_opened"]
0
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from checkout.cases import CaseBook, CaseNotFoundError, Finding, SnapshotRef
from checkout.footfall import FootfallCounter, FootfallSettings
from checkout.ids import derived_id
from checkout.shrink_rules import Claim, ShrinkRules, ShrinkSettings
from iot.bus import Inbox, Message, Transport, publish
from iot.payloads import (
    CartEvent,
    CaseEvent,
    EvidenceRequest,
    GateEntry,
    SessionEvent,
    ShelfOutcome,
    Snapshot,
    TagPassage,
    TrackBatch,
)
from iot.store import Store
from iot.topics import TOPICS

__all__ = ["Filed", "ShrinkService"]

log = logging.getLogger(__name__)

# the edge keeps only a few seconds of frames: ask for a moment it still holds
EVIDENCE_LOOKBACK_S = 4.0
_FILED_KEPT = 50_000


@dataclass(frozen=True)
class Filed:
    """One finding and the case it went into (for the log, the API and scoring)."""

    finding: Finding
    case_id: str
    opened_case: bool


class ShrinkService:
    """Runs the shrink rules on the bus and files their findings as cases."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        cases: CaseBook,
        *,
        now: Callable[[], float],
        settings: ShrinkSettings | None = None,
        footfall: FootfallSettings | None = None,
        claim: Claim | None = None,
        service_id: str = "shrink",
    ) -> None:
        self.store = store
        self.transport = transport
        self.cases = cases
        self.now = now
        self.service_id = service_id
        self.rules = ShrinkRules(store, settings, claim=claim)
        self.entries = FootfallCounter(store, footfall, on_entry=self.rules.entry)
        self.filed: deque[Filed] = deque(maxlen=_FILED_KEPT)  # the recent log, for the API
        self.clock_s = -math.inf
        self.inbox: Inbox | None = None
        self._counts: Counter[str] = Counter()

    def start(self) -> None:
        """Subscribe to what the rules read."""
        self.inbox = inbox = Inbox(
            self.transport,
            self.store.store_id,
            service_kind="ops",
            service_id=self.service_id,
            now=lambda: max(self.clock_s, self.now()),
            known_devices=self.store.device_ids() | {"brain", "snapshots"},
        )
        inbox.on(TOPICS["gate_entries"], self._heard(GateEntry, self.rules.scan_in))
        inbox.on(TOPICS["sessions"], self._heard(SessionEvent, self.rules.session))
        inbox.on(TOPICS["cart_events"], self._heard(CartEvent, self.rules.cart))
        inbox.on(TOPICS["shelf_outcomes"], self._heard(ShelfOutcome, self.rules.outcome))
        inbox.on(TOPICS["tag_passages"], self._heard(TagPassage, self.rules.passage))
        inbox.on(TOPICS["tracks"], self._heard(TrackBatch, self._tracks))
        inbox.on(TOPICS["snapshots"], self._snapshot)

    def tick(self, now_s: float) -> None:
        """Event time has reached ``now_s``: decide what waited (tailgaters)."""
        self.clock_s = max(self.clock_s, now_s)
        self.entries.advance(now_s)
        self._file(self.rules.due(self.clock_s))

    def stats(self) -> dict[str, int]:
        out = dict(self._counts) | dict(self.rules.counts)
        out["entries_counted"] = self.entries.entries
        out.setdefault("cases_opened", 0)
        out.setdefault("findings", 0)
        if self.inbox is not None:
            out["dead_letters"] = sum(self.inbox.rejected.values())
        return out

    def _tracks(self, batch: TrackBatch) -> None:
        self.rules.tracks(batch)
        self.entries.add(batch)

    def _heard(self, kind: type, fold: Callable[..., None]) -> Callable[[Message], None]:
        def handle(msg: Message) -> None:
            assert isinstance(msg.payload, kind)
            self.clock_s = max(self.clock_s, msg.payload.event_time_s)
            fold(msg.payload)
            self._file(self.rules.due(self.clock_s))

        return handle

    def _ask_for_pictures(self, case_id: str, f: Finding) -> None:
        """Ask the edge for blurred snapshots of the moment (cameras keep a few seconds)."""
        at = _where(f, self.store)
        moment = max(f.incident_s, (f.detected_s or f.incident_s) - EVIDENCE_LOOKBACK_S)
        request = EvidenceRequest(
            id=derived_id("ev-", case_id),
            event_time_s=self.clock_s,
            device_id=self.service_id,
            case_id=case_id,
            at_s=moment,
            x_m=at[0] if at else None,
            y_m=at[1] if at else None,
            plate_id=f.plate_id,
        )
        publish(self.transport, self.store.store_id, request)

    def _snapshot(self, msg: Message) -> None:
        shot = msg.payload
        assert isinstance(shot, Snapshot)
        self.clock_s = max(self.clock_s, shot.event_time_s)
        assert self.inbox is not None
        try:
            ref = SnapshotRef(
                camera_id=shot.camera_id, time_s=shot.frame_s, image_path=shot.image_path
            )
        except ValidationError as exc:  # the bus allows any path; a case keeps only plain ones
            detail = f"image_path {shot.image_path[:80]!r}: {exc.errors()[0]['msg']}"
            self.inbox.reject(
                msg.topic, shot.model_dump_json().encode(), "invalid snapshot", detail
            )
            return
        try:
            self.cases.add_snapshots(shot.case_id, [ref], self.clock_s)
            self._counts["snapshots_attached"] += 1
        except CaseNotFoundError:
            self.inbox.reject(
                msg.topic, shot.model_dump_json().encode(), "unknown case", shot.case_id
            )

    def _file(self, findings: list[Finding]) -> None:
        for found in findings:
            # decided now, whatever time the evidence carries
            f = found.model_copy(update={"detected_s": max(found.detected_s or 0.0, self.clock_s)})
            record, created = self.cases.report(f)
            self.filed.append(Filed(f, record.case_id, created))
            self._counts["findings"] += 1
            self._counts["cases_opened"] += created
            if created:
                self._ask_for_pictures(record.case_id, f)
            log.info(
                "%s finding %s -> case %s%s",
                f.rule,
                f.summary,
                record.case_id,
                " (new)" if created else "",
            )


def _where(finding: Finding, store: Store) -> tuple[float, float] | None:
    """The floor point of a finding: its track's last position, else its plate's front."""
    for snippet in finding.evidence.tracks:
        if snippet.points:
            _, x, y = snippet.points[-1]
            return (x, y)
    if finding.plate_id is not None:
        (x0, y0), (x1, y1) = store.plate_front_m(finding.plate_id)
        return ((x0 + x1) / 2, (y0 + y1) / 2)
    return None


def publishing(transport: Transport, store_id: str) -> Callable[[CaseEvent], None]:
    """A case book's ``on_change`` that announces each change on the ``cases`` topic."""

    def announce(event: CaseEvent) -> None:
        publish(transport, store_id, event)

    return announce


__all__ += ["publishing"]
