"""Nothing a device sends can crash a service or change a cart it should not.

A shopper has one item in the cart; then every channel the brain and the
shelf adapter read is fed garbage (random bytes, random JSON, valid payloads
broken field by field, unknown devices, repeated ids, clocks running ahead).
Whatever is refused must leave the cart as it was, and the visit still ends
with the right receipt.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout.brain import StoreBrain
from checkout.ledger import Ledger
from iot.bus import LocalTransport, publish
from iot.payloads import GateEntry, GateExit, ShelfEvent, TrackBatch, TrackPoint
from iot.shelf import ShelfAdapter
from iot.store import load_store

STORE = load_store("stores/demo.yaml")
T0 = 1_800_000_000.0
PLATE = "g01-s1-p1"  # south face of g01 at y = 3.5; a shopper reaches it from y ~ 3.05
SKU = STORE.skus_on_plate(PLATE)[0].sku
UNIT_G = STORE.items[SKU].unit_weight_g


# The one unit the shopper takes, as the shelf adapter reports it.
PICK = ShelfEvent(
    id="pick-1",
    event_time_s=T0 + 3.5,
    device_id="shelf-g01",
    plate_id=PLATE,
    action="pick",
    delta_g=-UNIT_G,
    started_s=T0 + 2.0,
    sku=SKU,
    quantity=1,
    confidence=0.95,
    noise_g=2.0,
)


class Visit:
    """One shopper who has picked one unit, with the brain and the shelf adapter running."""

    def __init__(self) -> None:
        self.bus = LocalTransport()
        self.ledger = Ledger(":memory:")
        self.brain = StoreBrain(STORE, self.bus, self.ledger)
        self.brain.start()
        self.adapter = ShelfAdapter(STORE, self.bus, now=lambda: self.now)
        self.adapter.start()
        self.now = T0
        self.brain.tick(T0)
        publish(
            self.bus,
            "demo",
            GateEntry(id="in-1", event_time_s=T0, device_id="gate-in", token="tok"),
        )
        self.walk((1.8, 0.6), T0, T0 + 1.0)
        self.walk((3.0, 3.05), T0 + 1.0, T0 + 5.0)
        publish(self.bus, "demo", PICK)
        self.tick(T0 + 5.0)

    def walk(self, xy: tuple[float, float], t0: float, t1: float) -> None:
        t = t0
        while t < t1:
            batch = TrackBatch(
                id=f"pos-{t:.1f}",
                event_time_s=t,
                device_id="positioning",
                tracks=[TrackPoint(track_id="trk-1", x_m=xy[0], y_m=xy[1])],
            )
            publish(self.bus, "demo", batch)
            self.tick(t)
            t = round(t + 0.2, 1)

    def tick(self, t: float) -> None:
        self.now = t
        self.brain.tick(t)

    def cart(self) -> dict[str, int]:
        return self.ledger.cart("s-tok")

    def refused(self) -> int:
        return sum(self.brain.inbox.rejected.values()) + sum(self.adapter.inbox.rejected.values())

    def leave(self) -> list[dict[str, int]]:
        self.walk((14.2, 0.6), T0 + 5.0, T0 + 12.0)
        publish(
            self.bus, "demo", GateExit(id="out-1", event_time_s=T0 + 11.0, device_id="gate-out")
        )
        self.walk((14.2, 0.6), T0 + 12.0, T0 + 14.0)
        self.tick(T0 + 14.0)
        return [{line.sku: line.quantity for line in r.lines} for r in self.brain.receipts]


def _valid_examples() -> dict[str, dict[str, Any]]:
    base = {"id": "x-1", "event_time_s": T0 + 5.1}
    return {
        "smartstore/demo/gate/gate-in/entries": base | {"device_id": "gate-in", "token": "t2"},
        "smartstore/demo/gate/gate-out/exits": base | {"device_id": "gate-out", "token": "tok"},
        "smartstore/demo/tracker/positioning/tracks": base
        | {"device_id": "positioning", "tracks": [{"track_id": "trk-1", "x_m": 3.0, "y_m": 3.05}]},
        "smartstore/demo/shelf/shelf-g01/events": base
        | {
            "device_id": "shelf-g01",
            "plate_id": PLATE,
            "action": "pick",
            "delta_g": -UNIT_G,
            "started_s": T0 + 4.0,
            "sku": SKU,
            "quantity": 1,
            "confidence": 0.9,
            "noise_g": 2.0,
        },
        "smartstore/demo/shelf/shelf-g01/samples": base
        | {
            "device_id": "shelf-g01",
            "sample_rate_hz": 20.0,
            "plates": [{"plate_id": PLATE, "weights_g": [5000.0, 5000.0]}],
        },
    }


VALID = _valid_examples()
REQUIRED = {"id", "event_time_s", "device_id"}
POISON = st.sampled_from(["NaN", "Infinity", 1e308, -1e308, "x", [], {}, True, "\x00"])


@st.composite
def broken_payload(draw: st.DrawFn) -> tuple[str, bytes]:
    topic = draw(st.sampled_from(sorted(VALID)))
    kind = draw(st.sampled_from(["bytes", "json", "drop", "poison", "extra", "wrong-device"]))
    payload = dict(VALID[topic])
    if kind == "bytes":
        return topic, draw(st.binary(max_size=200))
    if kind == "json":
        junk = draw(
            st.recursive(
                st.none() | st.integers() | st.text(max_size=5),
                lambda c: st.lists(c, max_size=3),
                max_leaves=8,
            )
        )
        return topic, json.dumps(junk).encode()
    if kind == "drop":
        payload.pop(draw(st.sampled_from(sorted(REQUIRED))))
    elif kind == "poison":
        key = draw(st.sampled_from(sorted(k for k in payload if k != "v")))
        value = draw(POISON)
        text = json.dumps(payload | {key: 0}).replace(
            f'"{key}": 0',
            f'"{key}": ' + (value if value in ("NaN", "Infinity") else json.dumps(value)),
        )
        return topic, text.encode()
    elif kind == "extra":
        payload["unexpected"] = 1
    else:
        topic = topic.replace("/gate-in/", "/gate-9/").replace("/gate-out/", "/gate-9/")
        topic = topic.replace("/positioning/", "/rogue/").replace("/shelf-g01/", "/shelf-g99/")
        payload["device_id"] = topic.split("/")[3]
    return topic, json.dumps(payload).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(broken_payload(), min_size=1, max_size=5))
def test_refused_input_never_changes_a_cart(messages: list[tuple[str, bytes]]) -> None:
    visit = Visit()
    assert visit.cart() == {SKU: 1}
    for topic, data in messages:
        before, refused = visit.cart(), visit.refused()
        visit.bus.publish(topic, data)
        visit.tick(T0 + 5.2)
        if visit.refused() > refused:
            assert visit.cart() == before, (topic, data)
    if visit.cart() == {SKU: 1}:
        assert visit.leave() == [{SKU: 1}]


def test_replays_and_clocks_running_ahead_are_refused() -> None:
    visit = Visit()
    pick = PICK
    publish(visit.bus, "demo", pick)  # QoS 1 redelivery of the same event
    future = pick.model_copy(
        update={"id": "pick-2", "event_time_s": T0 + 3600, "started_s": T0 + 3599}
    )
    publish(visit.bus, "demo", future)  # a controller whose clock is an hour ahead
    visit.tick(T0 + 6.0)
    assert visit.cart() == {SKU: 1}
    assert visit.brain.inbox.rejected["duplicate id"] == 1
    assert visit.brain.inbox.rejected["from the future"] == 1
    assert visit.leave() == [{SKU: 1}]
