"""Shelf-camera sightings in the brain: they settle equal-weight SKUs and side-by-side shoppers."""

from __future__ import annotations

import numpy as np
import pytest
from checkout_world import EXIT_XY, T0, World
from test_shared_plates import PLATE, STAND, S

from checkout.brain import StoreBrain
from checkout.ledger import Ledger
from iot.bus import LocalTransport
from iot.payloads import DeviceStatus, Interaction
from iot.store import Store

CAMERA = "cam-shelf-g01"  # watches g01's south face, where PLATE is


def sighting(
    sku: str | None, hand_x: float, *, action: str = "pick", t0: float = 4.9, t1: float = 6.1
) -> Interaction:
    return Interaction(
        id=f"{CAMERA}:{sku}:{hand_x}",
        event_time_s=T0 + t1,
        device_id=CAMERA,
        gondola_id="g01",
        plate_id=PLATE,
        action=action,  # type: ignore[arg-type]
        started_s=T0 + t0,
        sku=sku,
        quantity=1 if sku else 0,
        confidence=0.9,
        sku_confidence=0.97 if sku else 0.0,
        hand_x_m=hand_x,
        hand_y_m=STAND[1] + 0.1,
    )


def world(store: Store) -> tuple[World, StoreBrain]:
    transport = LocalTransport()
    brain = StoreBrain(store, transport, Ledger(":memory:"))
    brain.start()
    return World(store, brain, transport, np.random.default_rng(3)), brain


def test_a_sighting_settles_which_of_two_equal_weights_was_taken(shared_store: Store) -> None:
    w, brain = world(shared_store)
    w.walk("trk-a", (0.5, 1.8, 0.6), (4.0, *STAND), (12.0, *STAND), (20.0, *EXIT_XY))
    w.entry(1.0, "tok-a")
    w.at(6.1, sighting("SKU031", STAND[0]))  # the lemon one, the less likely by facings
    w.shelf("e1", PLATE, -522.5, 5.0, 6.0)
    w.exit(20.0)
    w.run(25.0)
    [receipt] = brain.receipts
    [line] = receipt.lines
    assert (line.sku, line.quantity) == ("SKU031", 1)
    assert line.confidence > S.review_below and not receipt.needs_review
    assert brain.stats()["shelf_events_seen"] == 1


@pytest.mark.parametrize(("action", "counts"), [("touch", True), ("put", True), (None, False)])
def test_a_misread_hand_still_says_where_it_reached(
    shared_store: Store, action: str | None, counts: bool
) -> None:
    # the camera missed the package in the hand (a touch) or misjudged which end
    # held it (a put), but saw the hand over the lemon facings; the scale says a
    # unit left: where the hand reached settles which (None: no sighting at all)
    w, brain = world(shared_store)
    w.walk("trk-a", (0.5, 1.8, 0.6), (4.0, *STAND), (12.0, *STAND), (20.0, *EXIT_XY))
    w.entry(1.0, "tok-a")
    if action is not None:
        w.at(6.1, sighting("SKU031", STAND[0], action=action))
    w.shelf("e1", PLATE, -522.5, 5.0, 6.0)
    w.exit(20.0)
    w.run(25.0)
    [receipt] = brain.receipts
    [line] = receipt.lines
    assert (line.sku == "SKU031") is counts
    assert receipt.needs_review is not counts


def test_the_arm_position_says_which_of_two_side_by_side_shoppers_took_it(
    shared_store: Store,
) -> None:
    w, brain = world(shared_store)
    left, right = (STAND[0] - 0.35, STAND[1]), (STAND[0] + 0.35, STAND[1])
    w.walk("trk-a", (0.5, 1.8, 0.6), (4.0, *left), (12.0, *left), (20.0, *EXIT_XY))
    w.walk("trk-b", (2.5, 1.8, 0.6), (4.5, *right), (12.0, *right), (21.0, *EXIT_XY))
    w.entry(1.0, "tok-a")
    w.entry(3.0, "tok-b")
    w.at(6.1, sighting("SKU001", right[0]))
    w.shelf("e1", PLATE, -522.5, 5.0, 6.0)
    w.exit(20.0, token="tok-a")
    w.exit(21.0, token="tok-b")
    w.run(26.0)
    carts = {r.token: [(x.sku, x.quantity) for x in r.lines] for r in brain.receipts}
    assert carts == {"tok-a": [], "tok-b": [("SKU001", 1)]}


@pytest.mark.parametrize("down", [True, False])
def test_a_shelf_camera_that_is_down_leaves_weight_alone_to_decide(
    shared_store: Store, down: bool
) -> None:
    """One shopper at the plate: weight and positions are enough, nothing to review
    (two in reach: see test_fault_review)."""
    w, brain = world(shared_store)
    w.walk("trk-a", (0.5, 1.8, 0.6), (4.0, *STAND), (12.0, *STAND), (20.0, *EXIT_XY))
    w.entry(1.0, "tok-a")
    state = "offline" if down else "online"
    w.at(2.0, DeviceStatus(id="h1", event_time_s=T0 + 2.0, device_id=CAMERA, state=state))
    unit = shared_store.items["SKU004"].unit_weight_g  # g01-s2-p1: one SKU, no tie
    w.shelf("e1", "g01-s2-p1", -unit, 5.0, 6.0)
    w.exit(20.0)
    w.run(25.0)
    [receipt] = brain.receipts
    assert [(line.sku, line.quantity) for line in receipt.lines] == [("SKU004", 1)]
    assert not any("offline" in r for r in receipt.review_reasons), receipt.review_reasons
    assert brain.stats().get("events_camera_down", 0) == int(down)


def test_a_sighting_from_a_camera_that_does_not_watch_the_plate_is_refused(
    shared_store: Store,
) -> None:
    w, brain = world(shared_store)
    bad = sighting("SKU001", STAND[0]).model_copy(update={"device_id": "cam-shelf-g02"})
    w.at(1.0, bad)
    w.run(2.0)
    assert brain.stats()["dead_letters"] == 1 and brain.stats().get("interactions", 0) == 0


@pytest.mark.parametrize(
    ("online", "late_s", "counts"), [(True, 2.5, True), (True, 4.0, False), (False, 2.5, False)]
)
def test_a_hand_that_lingers_is_waited_for(
    shared_store: Store, online: bool, late_s: float, counts: bool
) -> None:
    # the weight settles at 6.0 s, the hand leaves the shelf (its episode closes and is
    # sent) late_s later: an online camera is waited for up to sighting_wait_s (3 s)
    w, brain = world(shared_store)
    w.walk("trk-a", (0.5, 1.8, 0.6), (4.0, *STAND), (14.0, *STAND), (20.0, *EXIT_XY))
    w.entry(1.0, "tok-a")
    if online:
        w.at(2.0, DeviceStatus(id="h1", event_time_s=T0 + 2.0, device_id=CAMERA, state="online"))
    w.at(6.0 + late_s, sighting("SKU031", STAND[0], t1=6.0 + late_s))
    w.shelf("e1", PLATE, -522.5, 5.0, 6.0)
    w.exit(20.0)
    w.run(25.0)
    [receipt] = brain.receipts
    [line] = receipt.lines
    assert (line.sku == "SKU031") is counts
