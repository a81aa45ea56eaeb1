"""The price book and receipts priced as of each pick: changes, promotions, put-backs, refusals."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from checkout_world import EXIT_XY, T0, World
from hypothesis import given, settings
from hypothesis import strategies as st

from checkout.brain import StoreBrain
from checkout.ledger import Ledger, SessionRecord
from checkout.pricebook import (
    PriceBook,
    PricingConflictError,
    PricingError,
    PricingNotFoundError,
    promoted_price_cents,
)
from checkout.receipts import build_receipt, price_lines
from iot.bus import LocalTransport
from iot.payloads import CartEvent, ReceiptLine
from iot.store import Store

WATER, PENNE = "SKU001", "SKU013"  # catalog prices 89 and 139 cents


@pytest.fixture
def book(store: Store, db: str) -> Iterator[PriceBook]:
    b = PriceBook(store, db)
    yield b
    b.close()


def cart(
    eid: str, sku: str, delta: int, t_rel_s: float, *, conf: float = 0.95, session: str = "s-a"
) -> CartEvent:
    return CartEvent(
        id=eid,
        event_time_s=T0 + t_rel_s,
        device_id="brain",
        session_id=session,
        sku=sku,
        quantity_delta=delta,
        confidence=conf,
        source_event_id=f"shelf-{eid}",
        reason="test",
    )


def summary(lines: list[ReceiptLine]) -> list[tuple[str, int, int, str | None]]:
    return [(x.sku, x.quantity, x.unit_price_cents, x.promotion) for x in lines]


def closed(session: str = "s-a") -> SessionRecord:
    return SessionRecord(
        session_id=session,
        token="a",
        state="closed",
        entered_s=T0,
        entry_event_id="in-a",
        track_id="t1",
        exited_s=T0 + 600,
    )


# --- prices at a time ---


def test_a_pick_before_a_change_pays_the_old_price_and_after_it_the_new(store, book) -> None:
    book.set_price(WATER, 99, T0 + 100, now_s=T0, actor="ana")
    events = [cart("1", WATER, 1, 50), cart("2", WATER, 2, 100), cart("3", PENNE, 1, 150)]
    r = build_receipt(
        store, closed(), events, issued_s=T0 + 601, device_id="brain", review_below=0.7, prices=book
    )
    assert summary(r.lines) == [(WATER, 1, 89, None), (WATER, 2, 99, None), (PENNE, 1, 139, None)]
    assert r.total_cents == 89 + 2 * 99 + 139
    assert all(x.total_cents == x.quantity * x.unit_price_cents for x in r.lines)
    assert {x.name for x in r.lines if x.sku == WATER} == {store.items[WATER].name}


def test_the_latest_change_in_effect_wins_and_a_tie_goes_to_the_later_set(book) -> None:
    first = book.set_price(WATER, 95, T0 + 10, now_s=T0)
    book.set_price(WATER, 120, T0 + 30, now_s=T0)
    tie = book.set_price(WATER, 97, T0 + 10, now_s=T0 + 5)
    assert [book.prices_at(WATER, T0 + dt).list_price_cents for dt in (9, 10, 29, 30)] == [
        89,
        97,
        97,
        120,
    ]
    assert book.prices_at(WATER, T0 + 20).price_change_id == tie.id != first.id
    assert book.prices_at(PENNE, T0 + 30).unit_price_cents == 139  # other SKUs untouched


def test_a_promotion_prices_picks_inside_its_window_only(store, book) -> None:
    promo = book.add_promotion(
        "water week", [WATER], "percent_off", 20, T0 + 100, until_s=T0 + 200, now_s=T0
    )
    assert promo.id > 0 and promo.skus == [WATER] and promo.set_at_s == T0
    events = [cart(str(i), WATER, 1, dt) for i, dt in enumerate((99, 100, 150, 199.9, 200))]
    lines = price_lines(store, events, book)
    assert summary(lines) == [
        (WATER, 2, 89, None),  # one line: before the window, and at until_s (after it)
        (WATER, 3, 71, "water week"),  # 89 * 0.8 = 71.2 -> 71
    ]
    assert lines[1].list_price_cents == 89 and lines[0].list_price_cents is None


def test_overlapping_promotions_give_the_shopper_the_lower_price(book) -> None:
    book.add_promotion("ten off", [WATER, PENNE], "percent_off", 10, T0 + 10, now_s=T0)
    book.add_promotion(
        "water at 60", [WATER], "fixed_price", 60, T0 + 20, until_s=T0 + 30, now_s=T0
    )
    book.add_promotion("penne at 200", [PENNE], "fixed_price", 200, T0 + 10, now_s=T0)
    water = [book.prices_at(WATER, T0 + dt) for dt in (15, 25, 35)]
    assert [(p.unit_price_cents, p.promotion) for p in water] == [
        (80, "ten off"),  # 80.1 -> 80
        (60, "water at 60"),
        (80, "ten off"),
    ]
    penne = book.prices_at(PENNE, T0 + 15)  # 125 beats a fixed price above the list price
    assert (penne.unit_price_cents, penne.promotion, penne.list_price_cents) == (
        125,
        "ten off",
        139,
    )


def test_a_fixed_price_above_the_list_price_does_not_apply(book) -> None:
    book.add_promotion("dear water", [WATER], "fixed_price", 150, T0, now_s=T0)
    p = book.prices_at(WATER, T0 + 1)
    assert (p.unit_price_cents, p.promotion, p.promotion_id) == (89, None, None)


def test_a_promotion_discounts_the_changed_list_price(book) -> None:
    book.set_price(WATER, 101, T0 + 10, now_s=T0)
    book.add_promotion("half", [WATER], "percent_off", 50, T0 + 10, now_s=T0)
    p = book.prices_at(WATER, T0 + 10)
    assert (p.catalog_price_cents, p.list_price_cents, p.unit_price_cents) == (89, 101, 51)


@pytest.mark.parametrize(
    ("list_cents", "kind", "value", "expected"),
    [
        (89, "percent_off", 50, 45),  # 44.5 rounds half up
        (89, "percent_off", 100, 0),
        (100, "percent_off", 1, 99),
        (89, "fixed_price", 0, 0),
        (89, "fixed_price", 70, 70),
    ],
)
def test_promoted_price(list_cents, kind, value, expected) -> None:
    assert promoted_price_cents(list_cents, kind, value) == expected


# --- put-backs and order ---


def test_a_put_back_returns_the_newest_units_across_a_price_change(store, book) -> None:
    book.set_price(WATER, 99, T0 + 100, now_s=T0)
    events = [
        cart("1", WATER, 2, 50),  # 2 at 89
        cart("2", WATER, 1, 120),  # 1 at 99
        cart("3", WATER, -2, 130),  # returns the 99 and one 89
    ]
    assert summary(price_lines(store, events, book)) == [(WATER, 1, 89, None)]
    events.append(cart("4", WATER, 1, 140))
    assert summary(price_lines(store, events, book)) == [(WATER, 1, 89, None), (WATER, 1, 99, None)]


def test_the_ledger_is_folded_in_event_time_order_not_insertion_order(store, book) -> None:
    book.set_price(WATER, 99, T0 + 100, now_s=T0)
    # Ledger order differs from event time: the put-back at 130 happened after both picks.
    events = [cart("2", WATER, 1, 120), cart("3", WATER, -1, 130), cart("1", WATER, 1, 50)]
    assert summary(price_lines(store, events, book)) == [(WATER, 1, 89, None)]


def test_a_put_back_with_nothing_held_cancels_the_next_pick(store, book) -> None:
    book.set_price(WATER, 99, T0 + 100, now_s=T0)
    events = [cart("1", WATER, -1, 50), cart("2", WATER, 2, 120), cart("3", PENNE, -1, 10)]
    assert summary(price_lines(store, events, book)) == [(WATER, 1, 99, None)]


def test_line_confidence_is_the_lowest_of_its_skus_ledger_lines(store, book) -> None:
    events = [cart("1", WATER, 2, 50, conf=0.9), cart("2", WATER, -1, 60, conf=0.6)]
    [line] = price_lines(store, events, book)
    assert (line.quantity, line.confidence) == (1, 0.6)


def test_an_unknown_sku_in_the_ledger_is_named(store, book) -> None:
    with pytest.raises(KeyError, match="SKU999"):
        price_lines(store, [cart("1", "SKU999", 1, 5)], book)


# --- the default stays the catalog ---


def catalog_lines(store: Store, events: list[CartEvent]) -> list[ReceiptLine]:
    """The catalog pricing as it was before the price book: net units per SKU, catalog price."""
    net: dict[str, int] = {}
    conf: dict[str, float] = {}
    for e in events:
        net[e.sku] = net.get(e.sku, 0) + e.quantity_delta
        conf[e.sku] = min(conf.get(e.sku, 1.0), e.confidence)
    return [
        ReceiptLine(
            sku=sku,
            name=store.items[sku].name,
            quantity=n,
            unit_price_cents=store.items[sku].price_cents,
            total_cents=n * store.items[sku].price_cents,
            confidence=conf[sku],
        )
        for sku, n in sorted(net.items())
        if n > 0
    ]


def test_no_price_book_prices_exactly_as_the_catalog_did(store, book) -> None:
    events = [
        cart("1", WATER, 3, 50),
        cart("2", "SKU021", 1, 60, conf=0.8),
        cart("3", WATER, -1, 70),
        cart("4", PENNE, 1, 80),
        cart("5", PENNE, -1, 90),
    ]
    expected = [x.model_dump_json() for x in catalog_lines(store, events)]
    assert [x.model_dump_json() for x in price_lines(store, events)] == expected
    assert [x.model_dump_json() for x in price_lines(store, events, None)] == expected
    # A book with nothing in it prices the same, byte for byte, receipt and all.
    assert [x.model_dump_json() for x in price_lines(store, events, book)] == expected
    kw: dict[str, Any] = {"issued_s": T0 + 601, "device_id": "brain", "review_below": 0.7}
    plain = build_receipt(store, closed(), events, **kw)
    booked = build_receipt(store, closed(), events, **kw, prices=book)
    assert plain.model_dump_json() == booked.model_dump_json()


def test_an_old_receipt_line_without_the_new_fields_still_validates() -> None:
    old = {
        "sku": WATER,
        "name": "Still water 500 ml",
        "quantity": 2,
        "unit_price_cents": 89,
        "total_cents": 178,
        "confidence": 0.9,
    }
    line = ReceiptLine.model_validate(old)
    assert (line.list_price_cents, line.promotion) == (None, None)


# --- refusals ---


def test_a_change_starting_before_now_is_refused_and_changes_nothing(store, book) -> None:
    events = [cart("1", WATER, 1, 50)]
    before = price_lines(store, events, book)
    with pytest.raises(PricingConflictError, match="reprice picks already made"):
        book.set_price(WATER, 10, T0 + 40, now_s=T0 + 60)
    with pytest.raises(PricingConflictError, match="before the store's now"):
        book.add_promotion("late", [WATER], "percent_off", 50, T0 + 40, now_s=T0 + 60)
    assert price_lines(store, events, book) == before
    assert book.price_changes(include_cancelled=True) == [] == book.promotions()
    # At now itself is allowed: picks stamped from now on pay it.
    book.set_price(WATER, 10, T0 + 60, now_s=T0 + 60)
    assert book.prices_at(WATER, T0 + 60).unit_price_cents == 10


@pytest.mark.parametrize(
    ("case", "call", "needle"),
    [
        ("unknown SKU", lambda b: b.set_price("SKU999", 10, T0 + 1, now_s=T0), "SKU999"),
        ("negative price", lambda b: b.set_price(WATER, -1, T0 + 1, now_s=T0), "not negative"),
        ("price not whole", lambda b: b.set_price(WATER, 1.5, T0 + 1, now_s=T0), "whole number"),
        ("NaN time", lambda b: b.set_price(WATER, 1, math.nan, now_s=T0), "effective_from_s"),
        (
            "until before from",
            lambda b: b.add_promotion(
                "p", [WATER], "percent_off", 5, T0 + 10, until_s=T0 + 5, now_s=T0
            ),
            "not after it starts",
        ),
        (
            "until equal to from",
            lambda b: b.add_promotion(
                "p", [WATER], "percent_off", 5, T0 + 10, until_s=T0 + 10, now_s=T0
            ),
            "until_s",
        ),
        (
            "percent 0",
            lambda b: b.add_promotion("p", [WATER], "percent_off", 0, T0 + 1, now_s=T0),
            "1..100",
        ),
        (
            "percent 101",
            lambda b: b.add_promotion("p", [WATER], "percent_off", 101, T0 + 1, now_s=T0),
            "1..100",
        ),
        (
            "negative fixed price",
            lambda b: b.add_promotion("p", [WATER], "fixed_price", -5, T0 + 1, now_s=T0),
            "not negative",
        ),
        (
            "unknown kind",
            lambda b: b.add_promotion("p", [WATER], "bogo", 1, T0 + 1, now_s=T0),
            "bogo",
        ),
        (
            "unknown SKU in a promotion",
            lambda b: b.add_promotion("p", [WATER, "SKU999"], "percent_off", 5, T0 + 1, now_s=T0),
            "SKU999",
        ),
        (
            "SKU twice",
            lambda b: b.add_promotion("p", [WATER, WATER], "percent_off", 5, T0 + 1, now_s=T0),
            "twice",
        ),
        (
            "no SKU",
            lambda b: b.add_promotion("p", [], "percent_off", 5, T0 + 1, now_s=T0),
            "no SKU",
        ),
        (
            "name too long for a receipt",
            lambda b: b.add_promotion("x" * 201, [WATER], "percent_off", 5, T0 + 1, now_s=T0),
            "at most 200",
        ),
        (
            "blank name",
            lambda b: b.add_promotion("  ", [WATER], "percent_off", 5, T0 + 1, now_s=T0),
            "name is empty",
        ),
    ],
)
def test_bad_values_are_refused_with_what_to_do(book, case, call, needle) -> None:
    with pytest.raises(PricingError, match=needle):
        call(book)
    assert book.price_changes(include_cancelled=True) == [], case
    assert book.promotions(include_cancelled=True) == [], case


def test_only_a_change_not_yet_in_effect_can_be_cancelled(book) -> None:
    later = book.set_price(WATER, 99, T0 + 100, now_s=T0)
    started = book.set_price(PENNE, 150, T0 + 10, now_s=T0)
    gone = book.cancel_price_change(later.id, now_s=T0 + 20, actor="ana")
    assert (gone.cancelled_at_s, gone.cancelled_by) == (T0 + 20, "ana")
    assert book.cancel_price_change(later.id, now_s=T0 + 30) == gone  # twice: unchanged
    assert book.prices_at(WATER, T0 + 200).unit_price_cents == 89
    with pytest.raises(PricingConflictError, match="took effect"):
        book.cancel_price_change(started.id, now_s=T0 + 20)
    assert book.prices_at(PENNE, T0 + 200).unit_price_cents == 150
    assert [c.id for c in book.price_changes()] == [started.id]
    assert {c.id for c in book.price_changes(include_cancelled=True)} == {started.id, later.id}
    with pytest.raises(PricingNotFoundError, match="no price change 999"):
        book.cancel_price_change(999, now_s=T0)


def test_a_running_promotion_ends_at_now_and_a_pending_one_is_cancelled(book) -> None:
    running = book.add_promotion("run", [WATER], "percent_off", 50, T0 + 10, now_s=T0)
    pending = book.add_promotion("soon", [PENNE], "percent_off", 50, T0 + 100, now_s=T0)
    with pytest.raises(PricingConflictError, match="end it instead"):
        book.cancel_promotion(running.id, now_s=T0 + 20)
    with pytest.raises(PricingConflictError, match="cancel it instead"):
        book.end_promotion(pending.id, now_s=T0 + 20)
    ended = book.end_promotion(running.id, now_s=T0 + 20, actor="bo")
    assert (ended.until_s, ended.ended_by) == (T0 + 20, "bo")
    assert book.prices_at(WATER, T0 + 19.9).promotion == "run"  # picks made keep it
    assert book.prices_at(WATER, T0 + 20).promotion is None
    with pytest.raises(PricingConflictError, match="already ended"):
        book.end_promotion(running.id, now_s=T0 + 30)
    book.cancel_promotion(pending.id, now_s=T0 + 20, actor="bo")
    assert book.prices_at(PENNE, T0 + 150).promotion is None
    with pytest.raises(PricingConflictError, match="was cancelled"):
        book.end_promotion(pending.id, now_s=T0 + 150)
    assert [p.id for p in book.promotions()] == [running.id]
    assert [p.id for p in book.promotions(active_at_s=T0 + 15)] == [running.id]
    assert book.promotions(active_at_s=T0 + 25) == []
    with pytest.raises(PricingNotFoundError):
        book.promotion(999)


def test_the_book_survives_a_restart(store, durable_db) -> None:
    path = durable_db
    first = PriceBook(store, path)
    first.set_price(WATER, 99, T0 + 10, now_s=T0, actor="ana")
    first.add_promotion("half", [PENNE], "percent_off", 50, T0 + 10, now_s=T0)
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.prices_at(WATER, T0)
    again = PriceBook(store, path)
    try:
        assert again.prices_at(WATER, T0 + 10).unit_price_cents == 99
        assert again.prices_at(PENNE, T0 + 10).unit_price_cents == 70  # 69.5 -> 70
        assert again.price_changes()[0].set_by == "ana"
    finally:
        again.close()


# --- the brain prices its receipts with the book ---


def test_the_brain_prices_each_pick_as_of_its_time(store, book, db) -> None:
    book.set_price(WATER, 99, T0 + 7, now_s=T0)
    transport = LocalTransport()
    world = World(store, None, transport, np.random.default_rng(7))  # type: ignore[arg-type]
    brain = StoreBrain(store, transport, Ledger(db), prices=book)
    brain.start()
    world.brain = brain
    try:
        world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, 3.0, 3.0), (12.0, 3.0, 3.0), (30.0, *EXIT_XY))
        world.entry(1.0, "tok-a")
        world.exit(30.0)
        world.shelf("e1", "g01-s1-p1", -1044.5, 5.0, 6.0)  # 2 x still water at 6 s: 89
        world.shelf("e2", "g01-s1-p1", -522.0, 9.0, 10.0)  # 1 more at 10 s: 99
        world.run(34.0)
        [receipt] = brain.receipts
        assert summary(receipt.lines) == [(WATER, 2, 89, None), (WATER, 1, 99, None)]
        assert receipt.total_cents == 2 * 89 + 99
    finally:
        brain.close()


# --- property: the priced total is the sum of what the remaining units cost when picked ---

SKUS = [WATER, PENNE, "SKU004"]
step = st.tuples(
    st.integers(0, 300),  # event time, s after T0
    st.sampled_from(SKUS),
    st.integers(-3, 4).filter(bool),
)


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(step, max_size=25),
    changes=st.lists(
        st.tuples(st.integers(0, 300), st.sampled_from(SKUS), st.integers(0, 500)),
        min_size=1,
        max_size=5,
    ),
    promos=st.lists(
        st.tuples(
            st.integers(0, 300),
            st.integers(1, 200),
            st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True),
            st.sampled_from(["percent_off", "fixed_price"]),
            st.integers(1, 100),
        ),
        max_size=3,
    ),
)
def test_priced_total_is_the_pick_time_price_of_the_remaining_units(
    store, steps, changes, promos
) -> None:
    book = PriceBook(store, ":memory:")
    try:
        for t, sku, cents in changes:
            book.set_price(sku, cents, T0 + t, now_s=T0)
        for i, (t, length, skus, kind, value) in enumerate(promos):
            book.add_promotion(
                f"p{i}", skus, kind, value, T0 + t, until_s=T0 + t + length, now_s=T0
            )
        events = [cart(str(i), sku, d, t) for i, (t, sku, d) in enumerate(steps)]
        # A plain model: each unit is a price on a stack; a put-back pops the newest, and one
        # with nothing to pop is owed by the next pick.
        stacks: dict[str, list[int]] = {s: [] for s in SKUS}
        owed = dict.fromkeys(SKUS, 0)
        for e in sorted(events, key=lambda e: e.event_time_s):  # stable: ties keep ledger order
            for _ in range(abs(e.quantity_delta)):
                if e.quantity_delta < 0:
                    if stacks[e.sku]:
                        stacks[e.sku].pop()
                    else:
                        owed[e.sku] += 1
                elif owed[e.sku]:
                    owed[e.sku] -= 1
                else:
                    stacks[e.sku].append(book.prices_at(e.sku, e.event_time_s).unit_price_cents)
        lines = price_lines(store, events, book)
        assert sum(x.total_cents for x in lines) == sum(sum(s) for s in stacks.values())
        for sku in SKUS:
            net = sum(e.quantity_delta for e in events if e.sku == sku)
            assert sum(x.quantity for x in lines if x.sku == sku) == max(net, 0)
            assert sorted(
                x.unit_price_cents for x in lines if x.sku == sku for _ in range(x.quantity)
            ) == sorted(stacks[sku])
        keys = [(x.sku, x.unit_price_cents, x.list_price_cents, x.promotion) for x in lines]
        # one line per SKU, price and promotion (and the list price the promotion cut)
        assert len(keys) == len(set(keys))
    finally:
        book.close()
