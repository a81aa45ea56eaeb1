"""The shrink rules, one fact at a time (pure: no bus, no case book)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkout.shrink_rules import ShrinkRules
from iot.epc import encode_sgtin96
from iot.payloads import (
    CartEvent,
    GateEntry,
    SessionEvent,
    ShelfOutcome,
    TagPassage,
    TrackBatch,
    TrackPoint,
)
from iot.store import load_store

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1.8e9
TAGGED = next(i for i in STORE.catalog.items if i.rfid_tagged)
PLATE = next(e.plate for e in STORE.planogram if e.sku == TAGGED.sku)
OTHER_SKU = next(i.sku for i in STORE.catalog.items if i.sku != TAGGED.sku)


def rules(**kw: object) -> ShrinkRules:
    return ShrinkRules(STORE, **kw)  # type: ignore[arg-type]


def bound(r: ShrinkRules, session: str, track: str, t: float = T0) -> None:
    r.session(
        SessionEvent(
            id=f"b.{session}.{track}",
            event_time_s=t,
            device_id="brain",
            session_id=session,
            token=f"tok-{session}",
            state="bound",
            track_id=track,
        )
    )


def outcome(**kw: object) -> ShelfOutcome:
    base: dict[str, object] = {
        "id": "o-1",
        "event_time_s": T0 + 20,
        "device_id": "brain",
        "source_event_id": "shelf-1",
        "plate_id": PLATE,
        "action": "pick",
        "quantity": 1,
        "shelf_sku": TAGGED.sku,
        "outcome": "unattributed",
    }
    return ShelfOutcome.model_validate(base | kw)


def passage(epc_serial: int = 1, direction: str = "out", t: float = T0 + 60) -> TagPassage:
    return TagPassage(
        id=f"rfid-exit:{epc_serial}",
        event_time_s=t,
        device_id="rfid-exit",
        epc_hex=encode_sgtin96(TAGGED.gtin, epc_serial),
        gtin=TAGGED.gtin,
        gate_id="gate-out",
        direction=direction,  # type: ignore[arg-type]
        first_seen_s=t - 2,
        zones=["inner", "outer"],
        reads=6,
        peak_rssi_dbm=-50,
    )


def at_exit(r: ShrinkRules, track: str, t: float) -> None:
    x, y = next(g for g in STORE.floor.gates if g.kind == "exit").centre_m
    r.tracks(
        TrackBatch(
            id=f"tb.{t}",
            event_time_s=t,
            device_id="positioning",
            tracks=[TrackPoint(track_id=track, x_m=x, y_m=y + 0.5)],
        )
    )


# --- tailgating ---


def test_an_entry_no_visit_takes_is_tailgating_once_the_wait_is_over() -> None:
    r = rules()
    r.entry("trk-1", "gate-in", T0)
    assert r.due(T0 + 1) == []  # the brain may still bind it
    found = r.due(T0 + 10)
    assert [(f.rule, f.track_ids, f.incident_s) for f in found] == [("tailgating", ["trk-1"], T0)]
    assert r.due(T0 + 20) == []  # decided once


def test_an_entry_bound_to_a_visit_is_no_case() -> None:
    r = rules()
    r.entry("trk-1", "gate-in", T0)
    bound(r, "s-1", "trk-1", T0 + 2)
    assert r.due(T0 + 10) == []
    assert r.counts["entries_bound"] == 1


@pytest.mark.parametrize(
    ("party", "unbound", "cases"), [(2, 1, 0), (2, 2, 1), (3, 2, 0), (1, 1, 1)]
)
def test_a_party_scan_in_covers_its_party_and_no_more(party: int, unbound: int, cases: int) -> None:
    r = rules()
    r.scan_in(
        GateEntry(id="e1", event_time_s=T0, device_id="gate-in", token="tok", party_size=party)
    )
    for k in range(unbound):
        r.entry(f"trk-{k}", "gate-in", T0 + 1 + k)
    assert len(r.due(T0 + 30)) == cases


# --- removals nobody could have made ---


def test_weight_gone_with_nobody_near_is_an_operations_case() -> None:
    found = rules()
    found.outcome(outcome(nearest_m=4.0, nearest_track_id="trk-3", hand_seen=False))
    [f] = found.due(T0 + 30)
    assert (f.rule, f.category, f.plate_id) == ("weight_loss_no_interaction", "operations", PLATE)


@pytest.mark.parametrize(("near_m", "hand", "confidence"), [(0.6, True, 0.85), (0.6, False, 0.7)])
def test_a_removal_with_a_person_there_but_no_visit_is_theft(
    near_m: float, hand: bool, confidence: float
) -> None:
    r = rules()
    r.outcome(outcome(nearest_m=near_m, nearest_track_id="trk-3", hand_seen=hand))
    [f] = r.due(T0 + 30)
    assert (f.rule, f.category, f.track_ids, f.confidence) == (
        "unattributed_removal",
        "theft",
        ["trk-3"],
        confidence,
    )
    assert f.amount_cents == TAGGED.price_cents


def test_a_removal_for_a_click_and_collect_order_is_no_case() -> None:
    claims: list[tuple[str, int]] = []

    def claim(sku: str, units: int, t: float) -> str | None:
        claims.append((sku, units))
        return "order-7"

    r = rules(claim=claim)
    r.outcome(outcome(nearest_m=0.5, nearest_track_id="staff-1", hand_seen=True))
    assert r.due(T0 + 30) == []
    assert claims == [(TAGGED.sku, 1)]


def test_a_put_with_no_visit_is_no_case() -> None:
    r = rules()
    r.outcome(outcome(action="put", nearest_m=None))
    assert r.due(T0 + 30) == []


# --- put-backs of another product ---


def settle(r: ShrinkRules, action: str, **kw: object) -> None:
    r.outcome(
        outcome(
            id=f"o-{action}-{len(r.found)}-{kw.get('foreign', '')}-{kw.get('seen_sku', '')}",
            source_event_id=f"shelf-{action}",
            action=action,
            outcome="cart",
            session_id="s-1",
            sku=kw.pop("sku", TAGGED.sku),
            **kw,
        )
    )


@pytest.mark.parametrize(
    ("picked_here", "put", "expected"),
    [
        (True, {"foreign": True, "sku": OTHER_SKU}, ["wrong_put_back"]),
        (False, {"foreign": True, "sku": OTHER_SKU}, []),  # an honest slip elsewhere
        (True, {"seen_sku": OTHER_SKU, "seen_sku_confidence": 0.8}, ["wrong_put_back"]),
        (True, {"seen_sku": OTHER_SKU, "seen_sku_confidence": 0.3}, []),
        (True, {"seen_sku": TAGGED.sku, "seen_sku_confidence": 0.9}, []),  # the same product
        (True, {}, []),
    ],
)
def test_a_put_back_of_another_product_where_the_visit_took_one(
    picked_here: bool, put: dict[str, object], expected: list[str]
) -> None:
    r = rules()
    bound(r, "s-1", "trk-1")
    if picked_here:
        settle(r, "pick")
    settle(r, "put", **put)
    assert [f.rule for f in r.due(T0 + 30)] == expected


# --- tagged items out of the door ---


def test_a_tagged_unit_leaving_with_the_visit_that_has_it_is_paid() -> None:
    r = rules()
    bound(r, "s-1", "trk-1")
    r.cart(
        CartEvent(
            id="c1",
            event_time_s=T0 + 10,
            device_id="brain",
            session_id="s-1",
            sku=TAGGED.sku,
            quantity_delta=1,
            confidence=0.9,
            source_event_id="shelf-1",
        )
    )
    at_exit(r, "trk-1", T0 + 58)
    r.passage(passage(1))
    assert r.due(T0 + 61) == []
    r.passage(passage(2))  # a second unit, which no cart holds
    [f] = r.due(T0 + 62)
    assert (f.rule, f.sku, f.epc_hex) == ("tagged_item_unpaid", TAGGED.sku, passage(2).epc_hex)


def test_a_tagged_unit_leaving_with_nobody_who_has_it_names_the_walkers_track() -> None:
    r = rules()
    bound(r, "s-1", "trk-1")  # a visit elsewhere, with an empty cart
    at_exit(r, "trk-9", T0 + 59)
    r.passage(passage(1))
    [f] = r.due(T0 + 61)
    assert f.track_ids == ["trk-9"] and f.rule == "tagged_item_unpaid"


def test_tags_coming_in_or_of_unknown_products_open_nothing() -> None:
    r = rules()
    r.passage(passage(1, direction="in"))
    unknown = passage(2).model_copy(update={"gtin": "00000000000000"})
    r.passage(unknown)
    assert r.due(T0 + 70) == []
    assert r.counts["passages_unknown_product"] == 1


def test_positions_of_gone_tracks_are_forgotten() -> None:
    r = rules()
    for k in range(600):  # ten minutes of people passing through, one new track a second
        r.tracks(
            TrackBatch(
                id=f"tb{k}",
                event_time_s=T0 + k,
                device_id="positioning",
                tracks=[TrackPoint(track_id=f"trk-{k}", x_m=5.0, y_m=5.0)],
                ended=[f"trk-{k - 1}"] if k else [],
            )
        )
    assert len(r.paths) <= 40  # about the last track_memory_s of them


def test_visits_long_gone_are_forgotten() -> None:
    r = rules()
    for k in range(50):
        bound(r, f"s-{k}", f"trk-{k}", T0 + k)
        r.session(
            SessionEvent(
                id=f"c.{k}",
                event_time_s=T0 + k + 1,
                device_id="brain",
                session_id=f"s-{k}",
                token=f"tok-{k}",
                state="closed",
                track_id=f"trk-{k}",
            )
        )
    at_exit(r, "trk-x", T0 + 400)
    assert r.visits == {} and r.track_visit == {}
