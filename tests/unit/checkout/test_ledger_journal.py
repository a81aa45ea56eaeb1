"""The ledger's input journal (on both engines): kept in arrival order, pruned by event time,
and the receipted visits a restarted brain takes back."""

from __future__ import annotations

from checkout.ledger import Ledger, SessionRecord

T0 = 1_800_000_000.0


def test_the_journal_keeps_messages_in_arrival_order_not_event_time(db: str) -> None:
    ledger = Ledger(db)
    assert ledger.journal_rows() == [] and ledger.journal_latest_s() is None
    assert ledger.journal("smartstore/s/gate/gate-in/entries", b'{"id": "b"}', T0 + 2)
    assert ledger.journal("smartstore/s/shelf/shelf-g01/events", b'{"id": "a"}', T0 + 1)
    rows = ledger.journal_rows()
    assert [(topic.split("/")[-1], data) for _, topic, data in rows] == [
        ("entries", b'{"id": "b"}'),
        ("events", b'{"id": "a"}'),
    ]
    assert rows[0][0] < rows[1][0]  # sequence numbers grow with arrival
    assert ledger.journal_latest_s() == T0 + 2
    ledger.close()


def test_the_journal_refuses_what_no_engine_stores_as_text(db: str) -> None:
    ledger = Ledger(db)
    assert not ledger.journal("smartstore/s/gate/gate-in/entries", b"\xff\xfe not utf-8", T0)
    assert not ledger.journal("smartstore/s/gate/gate-in/entries", b'{"id": "\x00"}', T0)
    assert ledger.journal("smartstore/s/gate/gate-in/entries", b'{"t": "\\u0000"}', float("nan"))
    assert [data for _, _, data in ledger.journal_rows()] == [b'{"t": "\\u0000"}']
    assert ledger.journal_latest_s() == 0.0  # an unreadable time is kept as 0: pruned first
    ledger.close()


def test_pruning_forgets_only_what_is_older_than_the_horizon(db: str) -> None:
    ledger = Ledger(db)
    for k in range(10):
        ledger.journal("smartstore/s/tracker/positioning/tracks", b"{}", T0 + k)
    assert ledger.prune_journal(T0 + 6) == 6
    assert len(ledger.journal_rows()) == 4
    assert ledger.prune_journal(T0 + 6) == 0
    assert ledger.journal_latest_s() == T0 + 9
    ledger.close()


def _visit(name: str, entered: float, exited: float | None, receipt: bool) -> SessionRecord:
    return SessionRecord(
        session_id=f"s-{name}",
        token=name,
        state="closed" if exited is not None else "bound",
        entered_s=entered,
        entry_event_id=f"in-{name}",
        track_id=f"trk-{name}",
        exited_s=exited,
        receipt_id=f"r-{name}" if receipt else None,
    )


def test_receipted_visits_that_left_since_a_time_come_back(db: str) -> None:
    ledger = Ledger(db)
    ledger.save_session(_visit("long-gone", T0, T0 + 60, receipt=True))
    ledger.save_session(_visit("just-left", T0 + 100, T0 + 700, receipt=True))
    ledger.save_session(_visit("waiting", T0 + 200, T0 + 710, receipt=False))
    ledger.save_session(_visit("inside", T0 + 300, None, receipt=False))
    assert [s.token for s in ledger.receipted_sessions(T0 + 650)] == ["just-left"]
    assert [s.token for s in ledger.receipted_sessions(T0)] == ["long-gone", "just-left"]
    ledger.close()


def test_the_outbox_keeps_decisions_in_order_until_they_are_acknowledged(db: str) -> None:
    ledger = Ledger(db)
    a = ledger.outbox_add("smartstore/s/brain/w1/carts", b'{"id": "c-1"}')
    b = ledger.outbox_add("smartstore/s/brain/w1/receipts", b'{"id": "r-1"}')
    assert a < b
    assert [(seq, data) for seq, _, data in ledger.outbox_rows()] == [
        (a, b'{"id": "c-1"}'),
        (b, b'{"id": "r-1"}'),
    ]
    ledger.outbox_done([a])
    ledger.outbox_done([])
    assert [seq for seq, _, _ in ledger.outbox_rows()] == [b]
    ledger.close()
