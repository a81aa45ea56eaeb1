"""Inventory: piles folded from shelf and cart events, alerts with hysteresis, reservations."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from checkout.inventory import (
    InventoryService,
    OrderConflictError,
    ShortStockError,
    UnknownOrderError,
)
from checkout.stock_alerts import InventorySettings, alert_changes, thresholds
from iot.bus import LocalTransport, publish
from iot.payloads import Alert, CartEvent, ShelfEvent
from iot.store import Store

T0 = 1.8e9
# Demo store: SKU001 22 of 24 on P1 (and 22 more on g06), SKU003 12 of 14 on P3 (and 12 on g06),
# SKU019 21 of 23 on P4 only.
P1, P3, P4 = "g01-s1-p1", "g01-s1-p3", "g04-s1-p1"
SOLO = "SKU019"
_IDS = itertools.count(1)  # event ids unique across rigs: a restarted rig must not repeat them


class Rig:
    """A started inventory on a LocalTransport, with the alerts it published."""

    def __init__(
        self, store: Store, db: str | Path = ":memory:", settings: InventorySettings | None = None
    ) -> None:
        self.store = store
        self.bus = LocalTransport()
        self.alerts: list[Alert] = []
        self.bus.subscribe(
            "smartstore/+/ops/inventory/alerts",
            lambda _t, d: self.alerts.append(Alert.model_validate_json(d)),
        )
        self.inv = InventoryService(store, self.bus, db, now=lambda: T0, settings=settings)
        self.inv.start()

    def shelf(
        self, plate: str, action: str, qty: int, t: float, sku: str | None = None
    ) -> ShelfEvent:
        ev = ShelfEvent(
            id=f"sh-{next(_IDS)}",
            event_time_s=t,
            device_id=f"shelf-{plate[:3]}",
            plate_id=plate,
            action=action,  # type: ignore[arg-type]
            delta_g=-500.0 * qty if action == "pick" else 500.0 * qty,
            started_s=t - 1.0,
            sku=sku or self.store.skus_on_plate(plate)[0].sku,
            quantity=qty,
            confidence=0.95,
            noise_g=2.0,
        )
        publish(self.bus, self.store.store_id, ev)
        return ev

    def cart(self, source: ShelfEvent, sku: str, delta: int, cid: str | None = None) -> None:
        line = CartEvent(
            id=cid or f"c-{source.id}",
            event_time_s=source.event_time_s,
            device_id="brain",
            session_id="s-1",
            sku=sku,
            quantity_delta=delta,
            confidence=0.9,
            source_event_id=source.id,
        )
        publish(self.bus, self.store.store_id, line)

    def units(self, plate: str, sku: str, foreign: bool = False) -> int:
        found = [
            p for p in self.inv.piles() if (p.plate_id, p.sku, p.foreign) == (plate, sku, foreign)
        ]
        return found[0].units if found else 0


@pytest.fixture
def rig(store: Store, db: str) -> Iterator[Rig]:
    made = Rig(store, db)
    yield made
    made.inv.close()


# --- thresholds and hysteresis (pure) ---


@pytest.mark.parametrize(
    ("capacity", "low", "low_clear", "stockout_clear", "par"),
    [
        (1, 0, 1, 1, 1),
        (2, 1, 2, 2, 2),
        (10, 2, 4, 2, 5),
        (14, 2, 4, 2, 7),
        (24, 4, 7, 3, 12),
        (30, 6, 9, 3, 15),  # 30 * 0.1 is 3.0000000000000004 in floats: still a margin of 3
        (100, 20, 30, 10, 50),
    ],
)
def test_thresholds_follow_capacity(
    capacity: int, low: int, low_clear: int, stockout_clear: int, par: int
) -> None:
    th = thresholds(capacity, InventorySettings())
    assert (th.low_units, th.low_clear_units, th.stockout_clear_units, th.par_units) == (
        low,
        low_clear,
        stockout_clear,
        par,
    )


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"low_stock_fraction": 1.5}, "low_stock_fraction"), ({"low_units": 3}, "low_units")],
)
def test_settings_refuse_bad_values_naming_the_field(bad: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        InventorySettings(**bad)  # type: ignore[arg-type]


def fold(units_seq: list[int], capacity: int = 24, staff_from: int | None = None) -> Counter[str]:
    """Run a pile through ``alert_changes``; count raises and clears per kind."""
    th = thresholds(capacity, InventorySettings())
    opened: set[str] = set()
    seen: Counter[str] = Counter()
    for i, units in enumerate(units_seq):
        staff = staff_from is not None and i >= staff_from
        raised, cleared = alert_changes(frozenset(opened), units, th, staff=staff)
        opened = (opened | set(raised)) - set(cleared)
        seen.update(f"{k}+" for k in raised)
        seen.update(f"{k}-" for k in cleared)
    return seen


@pytest.mark.parametrize(
    ("case", "units_seq", "staff_from", "expected"),
    [
        (
            "last unit put back and taken, again and again",
            [0, 1, 0, 1, 0, 1, 0],
            None,
            {"stockout+": 1, "low_stock+": 1},
        ),
        (
            "two put-backs still inside the margin",
            [0, 1, 2, 1, 0, 2],
            None,
            {"stockout+": 1, "low_stock+": 1},
        ),
        (
            "climbs to the margin: stockout clears, low stays",
            [0, 1, 2, 3],
            None,
            {"stockout+": 1, "low_stock+": 1, "stockout-": 1},
        ),
        (
            "restock to capacity clears both",
            [0, 24],
            None,
            {"stockout+": 1, "low_stock+": 1, "stockout-": 1, "low_stock-": 1},
        ),
        ("low flutters around its threshold", [5, 4, 5, 6, 4, 5, 6], None, {"low_stock+": 1}),
        (
            "low clears at threshold plus margin, re-raises later",
            [4, 7, 4],
            None,
            {"low_stock+": 2, "low_stock-": 1},
        ),
        (
            "a staff count of 1 ends the stock-out, not the low",
            [0, 1],
            1,
            {"stockout+": 1, "low_stock+": 1, "stockout-": 1},
        ),
        ("never low", [24, 10, 5], None, {}),
    ],
)
def test_hysteresis_table(
    case: str, units_seq: list[int], staff_from: int | None, expected: dict[str, int]
) -> None:
    assert dict(fold(units_seq, staff_from=staff_from)) == expected, case


# --- the service over the bus ---


def test_stockout_alert_comes_with_the_last_unit_and_does_not_flap(rig: Rig) -> None:
    last = rig.shelf(P3, "pick", 12, T0 + 10)
    stockouts = [a for a in rig.alerts if a.kind == "stockout"]
    assert [a.state for a in stockouts] == ["raised"]
    assert stockouts[0].event_time_s - last.event_time_s <= 5.0
    assert stockouts[0].units == 0 and stockouts[0].sku == "SKU003"
    for k in range(3):  # a shopper fiddles with the last unit
        rig.shelf(P3, "put", 1, T0 + 20 + 2 * k)
        rig.shelf(P3, "pick", 1, T0 + 21 + 2 * k)
    assert [a.state for a in rig.alerts if a.kind == "stockout"] == ["raised"]
    rig.shelf(P3, "put", 14, T0 + 60)  # the restock, as the scale sees it
    states = [(a.kind, a.state, a.alert_id) for a in rig.alerts]
    assert [s[:2] for s in states] == [
        ("stockout", "raised"),
        ("low_stock", "raised"),
        ("stockout", "cleared"),
        ("low_stock", "cleared"),
    ]
    assert states[0][2] == states[2][2] != states[1][2] == states[3][2]
    assert rig.units(P3, "SKU003") == 14


def test_shared_plate_correction_moves_units_between_piles(shared_store: Store) -> None:
    rig = Rig(shared_store)
    ev = rig.shelf(P1, "pick", 2, T0 + 5, sku="SKU001")
    assert (rig.units(P1, "SKU001"), rig.units(P1, "SKU031")) == (8, 10)
    rig.cart(ev, "SKU031", +2)
    assert (rig.units(P1, "SKU001"), rig.units(P1, "SKU031")) == (10, 8)
    rig.cart(ev, "SKU031", +2, cid="c-other")  # a second reading of the same pick: no double move
    assert (rig.units(P1, "SKU001"), rig.units(P1, "SKU031")) == (10, 8)
    assert rig.inv.atp("SKU031") == 8  # SKU031 lies on this plate only


def test_cart_event_confirming_or_unknown_changes_nothing(rig: Rig) -> None:
    ev = rig.shelf(P3, "pick", 2, T0 + 5)
    rig.cart(ev, "SKU003", +2)
    unknown = ev.model_copy(update={"id": "never-seen"})  # a shelf event the service never got
    rig.cart(unknown, "SKU003", +5)
    rig.cart(ev, "SKU003", -2, cid="c-wrong-sign")  # a put cannot explain a pick
    assert rig.units(P3, "SKU003") == 10
    stats = rig.inv.stats()
    assert stats["cart_events_confirming"] == 1
    assert stats["cart_events_unknown_source"] == 1
    assert stats["cart_events_contradicting_shelf"] == 1


def test_wrong_plate_put_back_is_foreign_not_home(rig: Rig) -> None:
    # SKU002 lives on g01-s1-p2; a shopper leaves one on P1. The scale reads it as SKU001.
    put = rig.shelf(P1, "put", 1, T0 + 5)
    assert rig.units(P1, "SKU001") == 23
    rig.cart(put, "SKU002", -1)
    assert rig.units(P1, "SKU001") == 22
    assert rig.units(P1, "SKU002", foreign=True) == 1
    stock = {s.sku: s for s in rig.inv.sku_stock()}
    assert (stock["SKU002"].foreign_units, stock["SKU002"].on_shelf_units) == (1, 44)
    assert stock["SKU002"].atp_units == 44  # foreign units are not promised online
    pick = rig.shelf(P1, "pick", 1, T0 + 9)  # someone takes the stray back
    rig.cart(pick, "SKU002", +1)
    assert (rig.units(P1, "SKU001"), rig.units(P1, "SKU002", foreign=True)) == (22, 0)


def test_units_never_go_below_zero(rig: Rig) -> None:
    rig.shelf(P3, "pick", 20, T0 + 5)
    assert rig.units(P3, "SKU003") == 0
    assert rig.inv.stats()["units_below_zero"] == 1


def test_bad_events_are_dead_lettered_and_change_nothing(rig: Rig) -> None:
    before = rig.inv.piles()
    ev = ShelfEvent(
        id="stray",
        event_time_s=T0 + 1,
        device_id="shelf-g02",  # does not read g01's plates
        plate_id=P1,
        action="pick",
        delta_g=-522.0,
        started_s=T0,
        sku="SKU001",
        quantity=1,
        confidence=0.9,
        noise_g=2.0,
    )
    publish(rig.bus, "demo", ev)
    publish(
        rig.bus,
        "demo",
        ev.model_copy(update={"id": "s2", "device_id": "shelf-g01", "sku": "SKU002"}),
    )
    rig.bus.publish("smartstore/demo/shelf/shelf-g01/events", b"{broken", 1, False)
    rig.inv.tick(T0 + 2)
    publish(
        rig.bus,
        "demo",
        ev.model_copy(update={"id": "s3", "device_id": "shelf-g01", "event_time_s": T0 + 500}),
    )
    stats = rig.inv.stats()
    assert rig.inv.piles() == before
    for reason in ("unknown plate", "sku not on plate", "malformed JSON", "from the future"):
        assert stats[f"dead_letter.{reason}"] == 1, reason


def test_staff_restock_and_count(rig: Rig) -> None:
    rig.shelf(P3, "pick", 12, T0 + 5)
    assert rig.inv.restock(P3, "SKU003", 1, T0 + 30) == 1  # staff: the stock-out is over
    assert [(a.kind, a.state) for a in rig.alerts][-1] == ("stockout", "cleared")
    assert rig.inv.count(P3, "SKU003", 9, T0 + 40) == 9
    assert [(a.kind, a.state) for a in rig.alerts][-1] == ("low_stock", "cleared")
    assert rig.inv.count(P1, "SKU002", 0, T0 + 41) == 0  # strays taken away: a foreign pile
    with pytest.raises(ValueError, match=r"does not stock 'SKU002'.*SKU001"):
        rig.inv.restock(P1, "SKU002", 3, T0 + 50)
    with pytest.raises(ValueError, match="at least 1"):
        rig.inv.restock(P1, "SKU001", 0, T0 + 50)
    with pytest.raises(ValueError, match="finite Unix time"):
        rig.inv.count(P1, "SKU001", 3, float("nan"))


def test_replenishment_lists_empty_piles_first_then_emptiest(rig: Rig) -> None:
    rig.inv.count(P1, "SKU001", 6, T0 + 1)  # 6/24 = 0.25
    rig.inv.count(P3, "SKU003", 2, T0 + 2)  # 2/14 = 0.14
    rig.inv.count("g01-s2-p1", "SKU004", 0, T0 + 3)
    rig.inv.count("g02-s1-p1", rig.store.skus_on_plate("g02-s1-p1")[0].sku, 0, T0 + 4)
    lists = rig.inv.replenishment()
    assert sorted(lists) == ["g01", "g02"]
    g01 = lists["g01"]
    assert [(r.plate_id, r.fill_units) for r in g01] == [("g01-s2-p1", 13), (P3, 12), (P1, 18)]
    assert g01[0].out_of_stock and not g01[1].out_of_stock


def test_alerts_and_units_survive_reopening_the_file(store: Store, durable_db: str) -> None:
    db = durable_db
    first = Rig(store, db)
    first.shelf(P3, "pick", 12, T0 + 5)
    opened = first.inv.alert_log(state="raised")
    first.inv.close()

    second = Rig(store, db)
    assert second.alerts == []  # open episodes are not raised again
    assert second.inv.alert_log(state="raised") == opened
    assert second.units(P3, "SKU003") == 0
    second.shelf(P3, "put", 14, T0 + 60)
    log = second.inv.alert_log()
    assert {e.alert_id for e in log} == {e.alert_id for e in opened}
    assert all(e.cleared_s == T0 + 60 and e.raised_s == T0 + 5 for e in log)
    second.shelf(P3, "pick", 14, T0 + 70)
    newest = second.inv.alert_log(kind="stockout")[-1]
    assert newest.alert_id.endswith(".2") and newest.is_open


def test_repeats_across_a_restart_change_nothing(shared_store: Store, durable_db: str) -> None:
    db = durable_db
    first = Rig(shared_store, db)
    ev = first.shelf(P1, "pick", 2, T0 + 5)
    first.cart(ev, "SKU031", +2)
    first.inv.close()
    second = Rig(shared_store, db)
    publish(second.bus, "demo", ev)  # a broker redelivers after the restart
    second.cart(ev, "SKU031", +2)
    assert (second.units(P1, "SKU001"), second.units(P1, "SKU031")) == (10, 8)
    assert second.inv.stats()["shelf_events_repeated"] == 1
    assert second.inv.stats()["cart_events_repeated"] == 1


def test_same_events_give_the_same_alert_log(store: Store) -> None:
    logs = []
    for _ in range(2):
        rig = Rig(store)
        for k in range(12):
            rig.shelf(P3, "pick", 1, T0 + k)
        rig.shelf(P3, "put", 5, T0 + 30)
        logs.append(rig.inv.alert_log())
    assert logs[0] == logs[1] and len(logs[0]) == 2


# --- available to promise and reservations ---


def test_reserve_refuses_naming_the_sku_and_the_shortfall(rig: Rig) -> None:
    rig.inv.reserve("o-1", {SOLO: 10}, T0, T0 + 600)
    assert rig.inv.atp(SOLO) == 11
    with pytest.raises(ShortStockError, match=rf"{SOLO} short by 3 \(available 11\)") as err:
        rig.inv.reserve("o-2", {SOLO: 14, "SKU001": 1}, T0, T0 + 600)
    assert err.value.shortfall_units == {SOLO: 3}
    assert rig.inv.reservation("o-2") is None and rig.inv.atp("SKU001") == 44
    assert rig.inv.stats()["reservations_refused"] == 1


def test_atp_is_never_negative_when_the_shelf_empties(rig: Rig) -> None:
    rig.inv.reserve("o-1", {SOLO: 10}, T0, T0 + 600)
    rig.shelf(P4, "pick", 15, T0 + 5)  # shoppers take what the order counted on
    assert rig.inv.atp(SOLO) == 0
    stock = {s.sku: s for s in rig.inv.sku_stock()}[SOLO]
    assert (stock.on_shelf_units, stock.reserved_units, stock.atp_units) == (6, 10, 0)


def test_held_orders_lapse_at_their_expiry_by_event_time(rig: Rig) -> None:
    rig.inv.reserve("o-1", {SOLO: 4}, T0, T0 + 600)
    rig.inv.tick(T0 + 599.9)
    assert rig.inv.atp(SOLO) == 17
    rig.inv.tick(T0 + 600)
    assert rig.inv.atp(SOLO) == 21
    order = rig.inv.reservation("o-1")
    assert order is not None and (order.state, order.closed_s) == ("expired", T0 + 600)
    with pytest.raises(OrderConflictError, match="expired"):
        rig.inv.cancel("o-1", T0 + 700)


def test_cancel_releases_and_is_harmless_twice(rig: Rig) -> None:
    rig.inv.reserve("o-1", {SOLO: 4}, T0, T0 + 600)
    assert rig.inv.cancel("o-1", T0 + 10).state == "cancelled"
    assert rig.inv.cancel("o-1", T0 + 11).closed_s == T0 + 10
    assert rig.inv.atp(SOLO) == 21
    with pytest.raises(UnknownOrderError, match="o-9"):
        rig.inv.cancel("o-9", T0 + 12)


def test_repeat_reserve_returns_the_order_and_other_lines_conflict(rig: Rig) -> None:
    first = rig.inv.reserve("o-1", {SOLO: 4}, T0, T0 + 600)
    assert rig.inv.reserve("o-1", {SOLO: 4}, T0 + 1, T0 + 600) == first
    assert rig.inv.atp(SOLO) == 17
    with pytest.raises(OrderConflictError, match="already exists"):
        rig.inv.reserve("o-1", {SOLO: 5}, T0 + 2, T0 + 600)


@pytest.mark.parametrize(
    ("order_id", "lines", "expires_s", "match"),
    [
        ("o 1", {SOLO: 1}, T0 + 60, "order_id"),
        ("o-1", {}, T0 + 60, "no lines"),
        ("o-1", {"NOPE": 1}, T0 + 60, "lines.NOPE"),
        ("o-1", {SOLO: 0}, T0 + 60, f"lines.{SOLO}"),
        ("o-1", {SOLO: 1}, T0, "must be after"),
    ],
)
def test_reserve_refuses_bad_input(
    rig: Rig, order_id: str, lines: dict[str, int], expires_s: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        rig.inv.reserve(order_id, lines, T0, expires_s)
    assert rig.inv.stats().get("reservations", 0) == 0


def test_picking_claims_unattributed_removals(rig: Rig) -> None:
    rig.inv.reserve("o-1", {SOLO: 2, "SKU001": 1}, T0, T0 + 60)
    assert rig.inv.claim_unattributed(SOLO, 1, T0 + 5) is None  # not being picked yet
    assert rig.inv.start_picking("o-1", T0 + 10).state == "picking"
    rig.inv.tick(T0 + 120)  # past expires_s: a held order would have lapsed
    assert rig.inv.reservation("o-1").state == "picking"  # type: ignore[union-attr]
    rig.shelf(P4, "pick", 2, T0 + 121)
    assert rig.inv.atp(SOLO) == 17  # until claimed, the hold and the removal both count
    assert rig.inv.claim_unattributed(SOLO, 3, T0 + 122) is None  # more than the order
    assert rig.inv.claim_unattributed(SOLO, 2, T0 + 122) == "o-1"
    assert rig.inv.atp(SOLO) == 19
    assert rig.inv.claim_unattributed(SOLO, 1, T0 + 123) is None
    assert rig.inv.claim_unattributed("SKU001", 1, T0 + 124) == "o-1"
    order = rig.inv.reservation("o-1")
    assert order is not None and (order.state, order.closed_s) == ("fulfilled", T0 + 124)
    assert order.remaining == {"SKU001": 0, SOLO: 0}


def test_abandoned_picking_lapses_after_its_timeout(store: Store) -> None:
    rig = Rig(store, settings=InventorySettings(picking_timeout_s=300.0))
    rig.inv.reserve("o-1", {SOLO: 2}, T0, T0 + 60)
    rig.inv.start_picking("o-1", T0 + 10)
    rig.inv.tick(T0 + 309)
    assert rig.inv.reservation("o-1").state == "picking"  # type: ignore[union-attr]
    rig.inv.tick(T0 + 310)
    assert rig.inv.reservation("o-1").state == "expired"  # type: ignore[union-attr]
    with pytest.raises(OrderConflictError, match="only a held order"):
        rig.inv.start_picking("o-1", T0 + 311)


def test_reservations_survive_reopening_the_file(store: Store, durable_db: str) -> None:
    db = durable_db
    first = Rig(store, db)
    first.inv.reserve("o-1", {SOLO: 5}, T0, T0 + 600)
    first.inv.close()
    second = Rig(store, db)
    assert second.inv.atp(SOLO) == 16
    second.inv.tick(T0 + 600)
    assert second.inv.atp(SOLO) == 21
