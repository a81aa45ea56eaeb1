"""Store operations for a composition root: inventory, RFID gates, footfall and shrink cases.

One object wires the services the store manager and loss prevention use,
on the same transport as the brain: ``start`` in order (the case book first,
since the shrink rules file into it), ``tick`` with event time, ``close``
in reverse. ``smartstore eval`` and ``smartstore demo`` both use it, so the
figures eval reports come from the services the demo runs.

>>> from pathlib import Path
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> ops = StoreOperations(store, LocalTransport(), ":memory:", now=lambda: 1.8e9)
>>> ops.start(); ops.tick(1.8e9); ops.stats()["shrink.cases_opened"]
0
>>> ops.close()
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from checkout.cases import CaseBook
from checkout.epcis import Exportable, PlateCount, epcis_document
from checkout.evidence_files import EvidenceRetention, RetentionSettings
from checkout.footfall import FootfallService
from checkout.heatmap import HeatGrid
from checkout.inventory import InventoryService
from checkout.shrink import ShrinkService, publishing
from iot.bus import Transport
from iot.payloads import CaseEvent, Receipt, TagPassage
from iot.rfid_adapter import RfidAdapter
from iot.store import PlanogramEntry, Store
from iot.topics import TOPICS

__all__ = ["StoreOperations"]

log = logging.getLogger(__name__)

_KEEP_FOR_EXPORT = 100_000  # tag passages kept for the EPCIS export


class StoreOperations:
    """The store-operations services of one store on one transport."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        db_path: str | Path,
        *,
        now: Callable[[], float],
        evidence_dir: str | Path | None = None,
        retention: RetentionSettings | None = None,
    ) -> None:
        """``db_path``: the SQLite file for inventory and cases (":memory:" for a test).
        ``evidence_dir``: where the edge writes case snapshots (their retention deletes them)."""
        path = str(db_path)
        self.store = store
        self.transport = transport
        self.passages: deque[TagPassage] = deque(maxlen=_KEEP_FOR_EXPORT)
        self.confirmed: dict[str, CaseEvent] = {}  # case id -> its confirmed-theft change
        self.unreadable_passages = 0
        announce = publishing(transport, store.store_id)

        def on_change(event: CaseEvent) -> None:
            announce(event)
            if event.state == "confirmed_theft":
                self.confirmed[event.case_id] = event

        self.cases = CaseBook(path, on_change=on_change, evidence_dir=evidence_dir)
        self.retention = EvidenceRetention(self.cases, evidence_dir, retention)
        self.inventory = InventoryService(store, transport, path, now=now)
        self.rfid = RfidAdapter(store, transport, now=now)
        self.heat = HeatGrid.for_store(store)
        self.footfall = FootfallService(store, transport, now=now, on_batch=self.heat.add)
        self.shrink = ShrinkService(
            store, transport, self.cases, now=now, claim=self.inventory.claim_unattributed
        )

    def start(self) -> None:
        self.transport.subscribe(
            TOPICS["tag_passages"].filter(self.store.store_id), self._keep_passage, 1
        )
        self.inventory.start()
        self.rfid.start()
        self.footfall.start()
        self.shrink.start()

    def count_shelves(self, planogram: Sequence[PlanogramEntry], time_s: float) -> None:
        """A cycle count: the inventory starts from the units staff found on each pile."""
        for entry in planogram:
            self.inventory.count(entry.plate, entry.sku, entry.initial_units, time_s)

    def tick(self, now_s: float) -> None:
        self.rfid.tick(now_s)
        self.inventory.tick(now_s)
        self.shrink.tick(now_s)
        self.retention.tick(now_s)

    def epcis(self, receipts: Iterable[Receipt], *, at_s: float) -> dict[str, Any]:
        """An EPCIS 2.0 document: sales, tagged items through the gates, a count of every
        plate now, and the cases confirmed as theft."""
        counts: dict[str, dict[str, int]] = {}
        for pile in self.inventory.piles():
            counts.setdefault(pile.plate_id, {})[pile.sku] = pile.units
        plates = [
            PlateCount(
                id=f"count.{plate}.{int(at_s)}", event_time_s=at_s, plate_id=plate, units_by_sku=u
            )
            for plate, u in sorted(counts.items())
        ]
        events: list[Exportable] = [*receipts, *self.passages, *plates]
        events += list(self.confirmed.values())
        return epcis_document(events, store=self.store, created_s=at_s)

    def _keep_passage(self, topic: str, data: bytes) -> None:
        try:
            self.passages.append(TagPassage.model_validate_json(data))
        except ValidationError as exc:  # not from our adapter: not exported, counted
            self.unreadable_passages += 1
            log.warning("passage on %s not kept for export: %s", topic, exc.errors()[0]["msg"])

    def close(self) -> None:
        self.inventory.close()
        self.cases.close()

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, part in (
            ("inventory", self.inventory),
            ("rfid", self.rfid),
            ("shrink", self.shrink),
        ):
            out.update({f"{name}.{k}": v for k, v in part.stats().items()})
        return out
