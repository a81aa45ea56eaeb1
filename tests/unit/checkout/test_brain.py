"""The brain end to end over a LocalTransport: sessions, fusion, ledger, receipts, dead letters."""

from __future__ import annotations

import json

from checkout_world import EXIT_XY, T0, World, shelf_event

from checkout.ledger import Ledger
from checkout.receipts import receipt_id_for
from checkout.sessions import session_id_for
from checkout.settings import BrainSettings
from iot.bus import publish
from iot.payloads import CartEvent

STAND_P1 = (3.0, 3.0)  # in front of g01-s1-p1 (SKU001 still water) and g01-s2-p1 (SKU004)
STAND_G03 = (3.0, 5.0)  # in front of g03-s1-p1 (SKU013 penne), north aisle


def one_visit(world: World, token: str = "tok-a", track: str = "trk-a") -> None:
    """Scan in at 1 s, stand at g01 4-12 s, stand at g03 14-20 s, exit at 30 s."""
    world.walk(
        track,
        (0.5, 1.8, 0.6),
        (4.0, *STAND_P1),
        (12.0, *STAND_P1),
        (13.0, 2.0, 3.0),
        (13.5, 2.0, 5.0),
        (14.0, *STAND_G03),
        (20.0, *STAND_G03),
        (29.0, 14.2, 1.0),
        (30.0, *EXIT_XY),
    )
    world.entry(1.0, token)
    world.exit(30.0)


def published(world: World, suffix: str) -> list[dict]:
    return [json.loads(d) for t, d in world.seen if t.endswith(suffix)]


def test_a_visit_gets_one_correct_receipt(make_world) -> None:
    world = make_world()
    one_visit(world)
    world.shelf("e1", "g01-s1-p1", -1044.5, 5.0, 6.0)  # 2 x still water
    world.shelf("e2", "g01-s1-p1", 521.0, 8.0, 9.0)  # 1 put back
    world.shelf("e3", "g03-s1-p1", -511.0, 15.0, 16.0)  # 1 x penne
    world.run(29.9)
    assert world.brain.receipts == []
    assert world.brain.ledger.cart(session_id_for("tok-a")) == {"SKU001": 1, "SKU013": 1}
    world.run(32.0)
    [receipt] = world.brain.receipts
    assert receipt.id == receipt_id_for(session_id_for("tok-a"))
    assert {(line.sku, line.quantity) for line in receipt.lines} == {("SKU001", 1), ("SKU013", 1)}
    assert receipt.total_cents == 89 + 139
    assert not receipt.needs_review, receipt.review_reasons
    assert receipt.event_time_s >= receipt.exited_s + world.brain.settings.receipt_grace_s
    states = [e["state"] for e in published(world, "/sessions")]
    assert states == ["open", "bound", "closed"]
    assert len(published(world, "/carts")) == 3
    assert len(published(world, "/receipts")) == 1
    world.run(60.0)
    assert len(world.brain.receipts) == 1
    stats = world.brain.stats()
    assert stats["sessions_opened"] == stats["sessions_closed"] == stats["receipts"] == 1
    assert stats["events_attributed"] == 3 and stats["dead_letters"] == 0


def test_a_shelf_event_waits_for_the_attribution_delay(make_world) -> None:
    world = make_world()
    one_visit(world)
    world.shelf("e1", "g01-s1-p1", -522.0, 5.0, 6.0)
    world.run(6.0)
    sid = session_id_for("tok-a")
    assert world.brain.ledger.cart(sid) == {}
    world.brain.tick(T0 + 6.0 + world.brain.settings.attribution_delay_s)
    assert world.brain.ledger.cart(sid) == {"SKU001": 1}


def test_the_same_shelf_event_twice_changes_nothing(make_world, store) -> None:
    world = make_world()
    one_visit(world)
    ev = world.shelf("e1", "g01-s1-p1", -522.0, 5.0, 6.0)
    world.run(8.0)
    publish(world.transport, "demo", ev)  # broker redelivery
    world.run(10.0)
    sid = session_id_for("tok-a")
    assert world.brain.ledger.cart(sid) == {"SKU001": 1}
    [line] = world.brain.ledger.cart_events(sid)
    again = CartEvent(**{**line.model_dump(), "event_time_s": line.event_time_s + 1})
    assert world.brain.ledger.append(again) is False
    assert world.brain.ledger.cart(sid) == {"SKU001": 1}
    assert world.brain.stats()["dead_letter.duplicate id"] == 1


def test_a_shelf_event_nobody_is_near_is_unattributed(make_world) -> None:
    world = make_world()
    one_visit(world)
    world.shelf("far", "g08-s2-p3", -445.0, 5.0, 6.0)  # opposite corner of the store
    world.run(32.0)
    assert world.brain.stats()["events_unattributed"] == 1
    assert [d.event_id for d in world.brain.ledger.unattributed()] == ["far"]
    [receipt] = world.brain.receipts
    assert receipt.lines == [] and receipt.total_cents == 0


def test_a_put_fitting_nothing_flags_the_visit(make_world) -> None:
    world = make_world()
    one_visit(world)
    world.shelf("odd", "g01-s1-p1", 300.0, 5.0, 6.0)  # nothing in the cart weighs 300 g
    world.run(32.0)
    [receipt] = world.brain.receipts
    assert receipt.needs_review and receipt.lines == []
    assert any("odd" in r for r in receipt.review_reasons)
    assert world.brain.stats()["events_unexplained"] == 1


def test_a_wrong_plate_put_back_is_remembered_and_picked_again(make_world) -> None:
    world = make_world()
    one_visit(world)
    world.shelf("take", "g03-s1-p1", -512.0, 15.0, 16.0)  # penne into the cart ...
    world.shelf("drop", "g01-s1-p1", 512.0, 21.5, 22.0)  # ... later left on the water plate
    # a second shopper picks it up from the water plate
    world.walk(
        "trk-b",
        (4.5, 1.8, 0.6),
        (6.0, 1.0, 1.5),
        (22.5, 1.0, 1.5),
        (23.5, *STAND_P1),
        (26.0, *STAND_P1),
        (35.0, *EXIT_XY),
    )
    world.entry(5.0, "tok-b")
    world.walk(
        "trk-a",
        (0.5, 1.8, 0.6),
        (4.0, 3.0, 1.5),
        (14.0, *STAND_G03),
        (17.0, *STAND_G03),
        (21.0, *STAND_P1),
        (22.5, *STAND_P1),
        (23.0, 6.0, 2.0),
        (30.0, *EXIT_XY),
    )
    world.shelf("again", "g01-s1-p1", -511.5, 24.0, 25.0)
    world.exit(35.0)
    world.run(40.0)
    by_session = {r.session_id: r for r in world.brain.receipts}
    a, b = by_session[session_id_for("tok-a")], by_session[session_id_for("tok-b")]
    assert a.lines == []
    assert [(line.sku, line.quantity) for line in b.lines] == [("SKU013", 1)]
    assert world.brain.ledger.plate_foreign() == {}


def test_two_shoppers_side_by_side_each_get_their_pick(make_world) -> None:
    world = make_world()
    world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, 3.0, 2.9), (10.0, 3.0, 2.9), (18.0, *EXIT_XY))
    world.walk("trk-b", (3.5, 1.8, 0.6), (6.0, 4.0, 2.9), (10.0, 4.0, 2.9), (19.0, *EXIT_XY))
    world.entry(1.0, "tok-a")
    world.entry(4.0, "tok-b")
    world.shelf("pa", "g01-s1-p1", -522.0, 7.0, 8.0)  # x 2.5-3.5: in front of a
    world.shelf("pb", "g01-s1-p2", -524.0, 7.2, 8.2)  # x 3.5-4.5: in front of b
    world.exit(18.0)
    world.exit(19.0)
    world.run(25.0)
    carts = {
        r.session_id: [(line.sku, line.quantity) for line in r.lines] for r in world.brain.receipts
    }
    assert carts == {
        session_id_for("tok-a"): [("SKU001", 1)],
        session_id_for("tok-b"): [("SKU002", 1)],
    }


def test_a_receipt_waits_for_a_shelf_event_that_started_before_the_exit(make_world) -> None:
    settings = BrainSettings(attribution_delay_s=0.3, receipt_grace_s=0.5)
    world = make_world(settings=settings)
    world.walk(
        "trk-a",
        (0.5, 1.8, 0.6),
        (4.0, *STAND_P1),
        (11.0, *STAND_P1),
        (11.5, 13.4, 1.0),
        (12.0, *EXIT_XY),
    )
    world.entry(1.0, "tok-a")
    world.shelf("slow", "g01-s1-p1", -522.0, 9.5, 12.4)  # settles after the exit, decided 12.7
    world.exit(12.0)
    world.run(12.6)
    assert world.brain.stats()["sessions_closed"] == 1
    assert world.brain.receipts == []  # exit + grace passed, but 'slow' is still pending
    world.run(14.0)
    [receipt] = world.brain.receipts
    assert [(line.sku, line.quantity) for line in receipt.lines] == [("SKU001", 1)]


def test_a_shelf_event_for_a_receipted_session_is_dead_lettered(make_world, store) -> None:
    world = make_world()
    world.walk(
        "trk-a",
        (0.5, 1.8, 0.6),
        (4.0, *STAND_P1),
        (10.0, *STAND_P1),
        (12.0, 13.4, 1.0),
        (12.5, *EXIT_XY),
    )
    world.entry(1.0, "tok-a")
    world.exit(12.5)
    world.run(20.0)
    assert len(world.brain.receipts) == 1
    late = shelf_event(store, "late", "g01-s1-p1", -522.0, started_s=T0 + 8.0, settled_s=T0 + 9.0)
    publish(world.transport, "demo", late)
    world.run(22.0)
    assert world.brain.ledger.cart(session_id_for("tok-a")) == {}
    assert world.brain.stats()["dead_letter.too late"] == 1
    letters = published(world, "/deadletter")
    assert any("already receipted" in d["reason"] for d in letters)


def test_an_exit_nobody_matches_is_counted(make_world) -> None:
    world = make_world()
    world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, *STAND_P1), (20.0, *STAND_P1))
    world.entry(1.0, "tok-a")
    world.exit(10.0)  # the only shopper is 3 m from the exit
    world.run(12.0)
    stats = world.brain.stats()
    assert stats["unmatched_exits"] == 1 and stats["sessions_closed"] == 0
    assert stats["open_sessions"] == 1


def test_a_visit_never_bound_is_flagged(make_world) -> None:
    world = make_world()
    world.entry(1.0, "tok-x")  # no track is ever born at the gate
    world.exit(5.0, token="tok-x")
    world.run(7.0)
    [receipt] = world.brain.receipts
    assert receipt.needs_review
    assert any("never bound" in r for r in receipt.review_reasons)


def test_unknown_plates_and_reused_tokens_are_dead_lettered(make_world, store) -> None:
    world = make_world()
    world.entry(1.0, "tok-x")
    world.exit(2.0, token="tok-x")
    world.run(4.0)
    bad = shelf_event(store, "bad", "g01-s1-p1", -522.0, started_s=T0 + 3.0, settled_s=T0 + 3.5)
    publish(world.transport, "demo", bad.model_copy(update={"plate_id": "g02-s1-p1"}))
    world.entry(4.5, "tok-x", event_id="in-again")
    world.run(6.0)
    stats = world.brain.stats()
    assert stats["dead_letter.unknown plate"] == 1
    assert stats["dead_letter.too late"] == 1
    assert stats["sessions_opened"] == 1


def test_status_is_retained_online_then_offline(make_world) -> None:
    world = make_world()
    status = published(world, "/brain/status")
    assert [s["state"] for s in status] == ["online"]
    world.brain.close()
    assert [s["state"] for s in published(world, "/brain/status")] == ["online", "offline"]


def test_an_in_memory_ledger_starts_empty(store) -> None:
    ledger = Ledger(":memory:")
    assert ledger.unreceipted_sessions() == [] and ledger.latest_time_s() is None


def test_an_unsure_attribution_flags_both_shoppers(make_world) -> None:
    world = make_world()
    world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, 3.45, 3.0), (10.0, 3.45, 3.0), (18.0, *EXIT_XY))
    world.walk("trk-b", (3.5, 1.8, 0.6), (6.0, 3.55, 3.0), (10.0, 3.55, 3.0), (19.0, *EXIT_XY))
    world.entry(1.0, "tok-a")
    world.entry(4.0, "tok-b")
    world.shelf("shared", "g01-s1-p1", -522.0, 7.0, 8.0)  # both stand at the plate's edge
    world.exit(18.0)
    world.exit(19.0)
    world.run(25.0)
    assert len(world.brain.receipts) == 2
    for receipt in world.brain.receipts:
        assert receipt.needs_review
        assert any("shared" in reason for reason in receipt.review_reasons)
    assert sum(sum(x.quantity for x in r.lines) for r in world.brain.receipts) == 1
