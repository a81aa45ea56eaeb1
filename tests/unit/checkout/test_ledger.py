"""The ledger on an in-memory database: idempotent lines, folds, sessions, receipts."""

from __future__ import annotations

import threading

from checkout.ledger import Ledger, SessionRecord, ShelfDecision
from iot.payloads import CartEvent, Receipt

T0 = 1_800_000_000.0


def line(eid: str, sku: str, delta: int, sid: str = "s-a", conf: float = 0.9) -> CartEvent:
    return CartEvent(
        id=eid,
        event_time_s=T0,
        device_id="brain",
        session_id=sid,
        sku=sku,
        quantity_delta=delta,
        confidence=conf,
        source_event_id=f"e-{eid}",
    )


def test_a_cart_is_a_fold_over_idempotent_lines(db: str) -> None:
    ledger = Ledger(db)
    assert ledger.append(line("c1", "SKU001", 2))
    assert not ledger.append(line("c1", "SKU001", 2))
    assert ledger.append(line("c2", "SKU001", -1))
    assert ledger.append(line("c3", "SKU013", 1))
    assert ledger.append(line("c4", "SKU013", -1))
    assert ledger.append(line("c5", "SKU005", 1, sid="s-b"))
    assert ledger.cart("s-a") == {"SKU001": 1}
    assert [e.id for e in ledger.cart_events("s-a")] == ["c1", "c2", "c3", "c4"]


def test_sessions_round_trip_and_filter_by_state(db: str) -> None:
    ledger = Ledger(db)
    a = SessionRecord(
        session_id="s-a",
        token="a",
        state="bound",
        entered_s=T0,
        entry_event_id="in-a",
        track_id="t1",
    )
    b = SessionRecord(
        session_id="s-b", token="b", state="open", entered_s=T0 + 1, entry_event_id="in-b"
    )
    ledger.save_session(a)
    ledger.save_session(b)
    a.state, a.exited_s = "closed", T0 + 60
    ledger.save_session(a)
    assert ledger.session("s-a") == a
    assert [s.session_id for s in ledger.open_sessions()] == ["s-b"]
    assert [s.session_id for s in ledger.sessions("closed")] == ["s-a"]
    assert len(ledger.unreceipted_sessions()) == 2
    a.receipt_id = "r-s-a"
    ledger.save_session(a)
    assert [s.session_id for s in ledger.unreceipted_sessions()] == ["s-b"]


def test_one_receipt_per_session(db: str) -> None:
    ledger = Ledger(db)
    r = Receipt(
        id="r-s-a",
        event_time_s=T0 + 61,
        device_id="brain",
        session_id="s-a",
        token="a",
        entered_s=T0,
        exited_s=T0 + 60,
        currency="EUR",
        lines=[],
        total_cents=0,
        needs_review=False,
    )
    assert ledger.save_receipt(r)
    assert not ledger.save_receipt(r.model_copy(update={"id": "r-other"}))
    assert ledger.receipts() == [r] and ledger.receipt("r-s-a") == r
    assert ledger.receipt("nope") is None


def test_decisions_and_plate_memory(db: str) -> None:
    ledger = Ledger(db)
    d = ShelfDecision(
        event_id="e1", session_id=None, outcome="unattributed", reason="nobody", event_time_s=T0
    )
    assert ledger.record_decision(d) and not ledger.record_decision(d)
    assert ledger.decided("e1") and not ledger.decided("e2")
    assert [u.event_id for u in ledger.unattributed()] == ["e1"]
    ledger.set_plate_foreign("p1", "SKU013", 2)
    assert ledger.plate_foreign() == {"p1": {"SKU013": 2}}
    ledger.set_plate_foreign("p1", "SKU013", 0)
    assert ledger.plate_foreign() == {}
    assert ledger.latest_time_s() == T0


def test_another_thread_can_read_while_this_one_writes(db: str) -> None:
    ledger = Ledger(db)
    ledger.append(line("c1", "SKU001", 1))
    seen: list[dict[str, int]] = []
    reader = threading.Thread(target=lambda: seen.append(ledger.cart("s-a")))
    reader.start()
    reader.join()
    assert seen == [{"SKU001": 1}]
    ledger.close()
    ledger.close()  # idempotent
