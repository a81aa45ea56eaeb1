"""ShelfAdapter over an in-process bus: samples in, shelf events out, garbage dead-lettered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from iot.bus import LocalTransport, publish
from iot.payloads import DeadLetter, PlateSamples, ShelfEvent, ShelfSamples
from iot.shelf import PlateChange, ShelfAdapter
from iot.store import Store, load_store

T0 = 1.8e9
RATE = 20.0
BATCH = 2  # samples per batch: 0.1 s at 20 Hz
CTL = "shelf-g01"
PLATE = "g01-s1-p1"  # SKU001, still water, 522 g
DL_TOPIC = "smartstore/demo/shelf/shelf-adapter/deadletter"


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(Path(__file__).resolve().parents[3] / "stores" / "demo.yaml")


class Rig:
    """A LocalTransport, a started adapter and recorders for its output."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.bus = LocalTransport()
        self.events: list[ShelfEvent] = []
        self.letters: list[DeadLetter] = []
        self.bus.subscribe(
            "smartstore/demo/shelf/+/events",
            lambda t, d: self.events.append(ShelfEvent.model_validate_json(d)),
        )
        self.bus.subscribe(
            DL_TOPIC, lambda t, d: self.letters.append(DeadLetter.model_validate_json(d))
        )
        self.adapter = ShelfAdapter(store, self.bus, now=lambda: T0)
        self.adapter.start()
        self.rng = np.random.default_rng(5)
        self.n = 0
        self.sent = 0

    def levels(self, ctl: str = CTL) -> dict[str, float]:
        levels = {}
        for pid in self.store.controller_plates[ctl]:
            levels[pid] = 1500.0 + sum(
                e.initial_units * self.store.items[e.sku].unit_weight_g
                for e in self.store.skus_on_plate(pid)
            )
        return levels

    def send(self, levels: dict[str, float], seconds: float, ctl: str = CTL) -> None:
        """Stream noisy samples at the given plate levels for ``seconds``."""
        for _ in range(round(seconds * RATE / BATCH)):
            plates = [
                PlateSamples(plate_id=p, weights_g=(lv + self.rng.normal(0, 2.0, BATCH)).tolist())
                for p, lv in levels.items()
            ]
            self.batch(plates, ctl)

    def batch(self, plates: list[PlateSamples], ctl: str = CTL, *, skip: int = 0) -> None:
        self.n += skip
        self.sent += 1
        msg = ShelfSamples(
            id=f"{ctl}.b{self.sent}",
            event_time_s=T0 + self.n / RATE,
            device_id=ctl,
            sample_rate_hz=RATE,
            plates=plates,
        )
        publish(self.bus, "demo", msg)
        self.n += BATCH

    def raw(self, topic: str, data: bytes) -> None:
        self.bus.publish(topic, data, 0, False)


def test_pick_becomes_one_shelf_event(store: Store) -> None:
    rig = Rig(store)
    levels = rig.levels()
    rig.send(levels, 5)
    levels[PLATE] -= 2 * 522.0
    rig.send(levels, 5)
    assert len(rig.events) == 1
    ev = rig.events[0]
    assert (ev.device_id, ev.plate_id, ev.sku) == (CTL, PLATE, "SKU001")
    assert (ev.action, ev.quantity) == ("pick", 2)
    assert ev.delta_g == pytest.approx(-1044.0, abs=4.0)
    assert ev.started_s == pytest.approx(T0 + 5.0, abs=0.06)
    assert ev.started_s < ev.event_time_s < ev.started_s + 1.0  # settles ~settle_s later
    assert ev.confidence > 0.8 and 0.5 < ev.noise_g < 4.0
    assert rig.letters == []
    # Deterministic ids: the same input gives the same event id.
    rig2 = Rig(store)
    lv2 = rig2.levels()
    rig2.send(lv2, 5)
    lv2[PLATE] -= 2 * 522.0
    rig2.send(lv2, 5)
    assert [e.id for e in rig2.events] == [ev.id]


def test_put_on_another_controller(store: Store) -> None:
    rig = Rig(store)
    levels = rig.levels("shelf-g05")
    rig.send(levels, 3, "shelf-g05")
    levels["g05-s2-p2"] += 98.0  # AA batteries put back
    rig.send(levels, 3, "shelf-g05")
    assert [(e.device_id, e.plate_id, e.action, e.quantity) for e in rig.events] == [
        ("shelf-g05", "g05-s2-p2", "put", 1)
    ]


def _good(plate: str = PLATE, w: float = 13000.0) -> dict[str, object]:
    return {"plate_id": plate, "weights_g": [w, w]}


def _raw_batch(device: str, t: float, plates: list[dict[str, object]], bid: str) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "id": bid,
            "event_time_s": t,
            "device_id": device,
            "sample_rate_hz": RATE,
            "plates": plates,
        }
    ).encode()


BAD = [
    # id, topic device, payload builder(t), uses the controller's next slot, expected reasons
    (
        "unknown-controller",
        "shelf-g99",
        lambda t: _raw_batch("shelf-g99", t, [_good()], "x1"),
        False,
        ["unknown device"],
    ),
    (
        "plate-not-owned",
        CTL,
        lambda t: _raw_batch(CTL, t, [_good(), _good("g02-s1-p1")], "x2"),
        True,
        ["plate not owned"],
    ),
    (
        "absurd-heavy",
        CTL,
        lambda t: _raw_batch(CTL, t, [_good(w=90_000.0)], "x3"),
        True,
        ["weight out of range"],
    ),
    (
        "absurd-negative",
        CTL,
        lambda t: _raw_batch(CTL, t, [_good(w=-5000.0)], "x4"),
        True,
        ["weight out of range"],
    ),
    (
        "duplicate-plate",
        CTL,
        lambda t: _raw_batch(CTL, t, [_good(), _good()], "x8"),
        True,
        ["duplicate plate"],
    ),
    (
        "out-of-order",
        CTL,
        lambda t: _raw_batch(CTL, t - 3.0, [_good()], "x6"),
        False,
        ["out of order"],
    ),
    # Refused by the Inbox before the adapter sees it: the hole it leaves is reported too.
    (
        "nan-raw-json",
        CTL,
        lambda t: _raw_batch(CTL, t, [_good()], "x5").replace(b"13000.0", b"NaN", 1),
        True,
        ["invalid payload", "gap in samples"],
    ),
    (
        "malformed-json",
        CTL,
        lambda t: b'{"v": 1, "id": "x7", ',
        True,
        ["malformed JSON", "gap in samples"],
    ),
]


@pytest.mark.parametrize(
    ("device", "build", "slot", "reasons"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_batches_are_dead_lettered(
    store: Store, device: str, build: Callable[[float], bytes], slot: bool, reasons: list[str]
) -> None:
    rig = Rig(store)
    levels = {PLATE: 13000.0}
    rig.send(levels, 3)
    t_next = T0 + rig.n / RATE
    rig.raw(f"smartstore/demo/shelf/{device}/samples", build(t_next))
    rig.n += BATCH if slot else 0
    rig.send(levels, 3)  # the stream goes on normally
    assert [lt.reason.split(":")[0] for lt in rig.letters] == reasons
    letter = rig.letters[0]
    assert letter.device_id == "shelf-adapter"
    assert letter.topic == f"smartstore/demo/shelf/{device}/samples"
    assert letter.payload_excerpt  # the refused bytes travel with the letter
    assert rig.events == []  # never an event from garbage
    assert sum(rig.adapter.inbox.rejected.values()) == len(reasons)


def test_gap_is_dead_lettered_and_a_change_across_it_still_counts(store: Store) -> None:
    rig = Rig(store)
    levels = {PLATE: 13000.0}
    rig.send(levels, 3)
    levels[PLATE] -= 522.0  # the pick happens while samples are lost
    rig.batch([PlateSamples(plate_id=PLATE, weights_g=[levels[PLATE]] * BATCH)], skip=10)
    rig.send(levels, 3)
    assert [lt.reason.split(":")[0] for lt in rig.letters] == ["gap in samples"]
    assert [(e.action, e.quantity) for e in rig.events] == [("pick", 1)]
    assert rig.events[0].delta_g == pytest.approx(-522.0, abs=4.0)


def test_overlapping_batch_is_refused(store: Store) -> None:
    rig = Rig(store)
    levels = {PLATE: 13000.0}
    rig.send(levels, 2)
    rig.n -= 1  # next batch starts one sample early (its time is still the newest: Inbox passes it)
    rig.send(levels, 0.1)
    rig.n -= 1  # the controller goes on where the accepted stream ended
    rig.send(levels, 2)
    assert [lt.reason.split(":")[0] for lt in rig.letters] == ["overlapping samples"]
    assert rig.events == []


def test_touch_and_noise_make_no_events(store: Store) -> None:
    rig = Rig(store)
    levels = rig.levels()
    rig.send(levels, 4)
    pressed = dict(levels)
    pressed[PLATE] += 400.0
    for _ in range(8):  # 1.6 s of a jittery press, then the hand leaves without taking anything
        jitter = {p: lv + float(rig.rng.normal(0, 20.0)) for p, lv in pressed.items()}
        rig.send(jitter, 0.2)
    rig.send(levels, 5)
    assert rig.events == [] and rig.letters == []


def test_changes_settling_at_the_same_instant_keep_distinct_ids(store: Store) -> None:
    # A pick and the put-back after it can both be released when a busy shelf goes
    # quiet, at one instant; they are two events and must not collide as duplicates.
    rig = Rig(store)
    pick = PlateChange(started_s=T0 + 1.0, settled_s=T0 + 9.0, delta_g=-1044.0, noise_g=2.0)
    put = PlateChange(started_s=T0 + 5.0, settled_s=T0 + 9.0, delta_g=522.0, noise_g=2.0)
    rig.adapter._emit(CTL, PLATE, pick)
    rig.adapter._emit(CTL, PLATE, put)
    assert [(e.action, e.quantity) for e in rig.events] == [("pick", 2), ("put", 1)]
    assert rig.events[0].id != rig.events[1].id
