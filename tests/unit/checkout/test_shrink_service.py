"""The shrink service on a bus: findings become cases, cases ask for and keep snapshots."""

from __future__ import annotations

from pathlib import Path

from checkout.cases import CaseBook
from checkout.shrink import ShrinkService, publishing
from iot.bus import LocalTransport, publish
from iot.payloads import CaseEvent, EvidenceRequest, ShelfOutcome, Snapshot
from iot.store import load_store
from iot.topics import TOPICS

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1.8e9
PLATE = STORE.planogram[0].plate


def test_a_case_asks_for_pictures_and_keeps_the_ones_that_come() -> None:
    transport = LocalTransport()
    clock = [T0]
    changes: list[CaseEvent] = []
    announce = publishing(transport, "demo")

    def on_change(e: CaseEvent) -> None:
        changes.append(e)
        announce(e)

    book = CaseBook(":memory:", on_change=on_change)
    service = ShrinkService(STORE, transport, book, now=lambda: clock[0])
    service.start()
    asked: list[EvidenceRequest] = []
    transport.subscribe(
        TOPICS["evidence_requests"].filter("demo"),
        lambda t, d: asked.append(EvidenceRequest.model_validate_json(d)),
        1,
    )
    publish(
        transport,
        "demo",
        ShelfOutcome(
            id="o-1",
            event_time_s=T0 + 5,
            device_id="brain",
            source_event_id="shelf-1",
            plate_id=PLATE,
            action="pick",
            quantity=1,
            shelf_sku=STORE.planogram[0].sku,
            outcome="unattributed",
            nearest_track_id="trk-4",
            nearest_m=0.5,
            hand_seen=True,
        ),
    )
    [case] = book.queue()
    [request] = asked
    assert request.case_id == case.case_id and request.plate_id == PLATE
    assert request.x_m is not None and request.at_s <= T0 + 5
    shot = Snapshot(
        id="snap-1",
        event_time_s=T0 + 6,
        device_id="cam-ceil-01",
        case_id=case.case_id,
        camera_id="cam-ceil-01",
        frame_s=T0 + 5,
        image_path="evidence/c1.jpg",
        regions_blurred=2,
    )
    publish(transport, "demo", shot)
    full = book.get(case.case_id)
    assert full is not None
    assert [s.image_path for s in full.evidence.snapshots] == ["evidence/c1.jpg"]
    assert changes[-1].case_id == case.case_id  # the change went out on the bus too
    stray = shot.model_copy(update={"id": "snap-2", "case_id": "no-such-case"})
    publish(transport, "demo", stray)
    assert service.stats()["dead_letters"] == 1
