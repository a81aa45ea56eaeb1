"""Receipts: prices, totals, line confidence and review reasons."""

from __future__ import annotations

import pytest

from checkout.ledger import SessionRecord
from checkout.receipts import build_receipt, receipt_id_for
from iot.payloads import CartEvent

T0 = 1_800_000_000.0


def line(eid: str, sku: str, delta: int, conf: float = 0.95) -> CartEvent:
    return CartEvent(
        id=eid,
        event_time_s=T0 + 5,
        device_id="brain",
        session_id="s-a",
        sku=sku,
        quantity_delta=delta,
        confidence=conf,
        source_event_id=f"shelf-{eid}",
        reason="test",
    )


def record(track_id: str | None = "t1", reasons=()) -> SessionRecord:
    return SessionRecord(
        session_id="s-a",
        token="a",
        state="closed",
        entered_s=T0,
        entry_event_id="in-a",
        track_id=track_id,
        exited_s=T0 + 60,
        review_reasons=list(reasons),
    )


def test_prices_and_totals_come_from_the_catalog(store) -> None:
    events = [
        line("1", "SKU001", 3),
        line("2", "SKU021", 1),
        line("3", "SKU001", -1),
        line("4", "SKU013", 1),
        line("5", "SKU013", -1),
    ]
    r = build_receipt(
        store, record(), events, issued_s=T0 + 61, device_id="brain", review_below=0.7
    )
    items = store.items
    expected = {"SKU001": 2, "SKU021": 1}
    assert {(x.sku, x.quantity) for x in r.lines} == set(expected.items())
    for x in r.lines:
        assert x.unit_price_cents == items[x.sku].price_cents
        assert x.total_cents == x.quantity * x.unit_price_cents
        assert x.name == items[x.sku].name
    assert r.total_cents == sum(n * items[s].price_cents for s, n in expected.items())
    assert r.currency == store.catalog.currency
    assert r.id == receipt_id_for("s-a") and not r.needs_review


@pytest.mark.parametrize(
    ("case", "events", "track", "extra", "needle"),
    [
        ("low-confidence line", [line("lo", "SKU001", 1, conf=0.55)], "t1", (), "shelf-lo"),
        ("never bound", [line("1", "SKU001", 1)], None, (), "never bound"),
        ("unexplained event", [], "t1", ("shelf event odd on p: put fits nothing",), "odd"),
        ("more put back than picked", [line("1", "SKU001", -1)], "t1", (), "more put back"),
    ],
)
def test_review_flags_name_the_evidence(store, *, case, events, track, extra, needle) -> None:
    r = build_receipt(
        store, record(track, extra), events, issued_s=T0 + 61, device_id="brain", review_below=0.7
    )
    assert r.needs_review, case
    assert any(needle in reason for reason in r.review_reasons), (case, r.review_reasons)


def test_line_confidence_is_the_lowest_of_its_ledger_lines(store) -> None:
    events = [line("1", "SKU001", 1, conf=0.9), line("2", "SKU001", 1, conf=0.75)]
    r = build_receipt(
        store, record(), events, issued_s=T0 + 61, device_id="brain", review_below=0.7
    )
    assert [x.confidence for x in r.lines] == [0.75] and not r.needs_review


def test_a_receipt_needs_an_exit(store) -> None:
    open_record = record().model_copy(update={"exited_s": None})
    with pytest.raises(ValueError, match="no exit time"):
        build_receipt(store, open_record, [], issued_s=T0, device_id="brain", review_below=0.7)
