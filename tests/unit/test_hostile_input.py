"""Nothing a device sends can crash a service or change a cart it should not.

A shopper has one item in the cart; then every channel the brain and the
shelf adapter read is fed garbage (random bytes, random JSON, valid payloads
broken field by field, unknown devices, repeated ids, clocks running ahead).
Whatever is refused must leave the cart as it was, and the visit still ends
with the right receipt.

Then the whole store (brain, shelf adapter, inventory, RFID adapter,
footfall, shrink, device health, evidence snapshots) hears every channel:
payloads its schema allows but no device would send, and the same broken.
No service may fail on one (a "handler error" dead letter, or an error
logged), and a message too large is refused before it is parsed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout.brain import StoreBrain
from checkout.devices import DeviceHealth
from checkout.ledger import Ledger
from iot.bus import MAX_PAYLOAD_BYTES, Inbox, LocalTransport, publish
from iot.epc import encode_sgtin96
from iot.payloads import (
    DeadLetter,
    GateEntry,
    GateExit,
    PlateSamples,
    ShelfEvent,
    ShelfSamples,
    TrackBatch,
    TrackPoint,
)
from iot.rfid import TagRead, encode_reads
from iot.shelf import ShelfAdapter
from iot.store import load_store
from iot.topics import ANY, TOPICS, Channel
from smartstore.operations import StoreOperations
from tools.fuzz.schema import TOPIC_SAFE_ID, mutate, valid_payload
from vision.snapshots import EvidenceSnapshotter

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


# --- the whole store hears every channel ---

CHANNELS = [c for c in TOPICS.values() if c.model is not None]
_D = STORE.devices
# Who publishes each kind of topic: mostly the right device, so messages get past the Inbox.
PUBLISHERS: dict[str, list[str]] = {
    "shelf": [c.id for c in _D.shelf_controllers],
    "camera": [c.id for c in _D.cameras],
    "gate": [g.id for g in STORE.floor.gates],
    "tracker": list(_D.positioning),
    "rfid": [r.id for r in _D.rfid_readers],
    "brain": ["brain"],
    "ops": ["shrink", "inventory", "casebook", "ops"],
}
KINDS = sorted(PUBLISHERS)
EXAMPLES = max(80, int(os.environ.get("SMARTSTORE_FUZZ_EXAMPLES", "0")))
# Values a service looks up in the store: drawn from the store most of the time, so the
# payload gets past "unknown plate" into the code that uses it.
VOCABULARY: dict[str, list[Any]] = {
    "plate_id": STORE.plates(),
    "sku": sorted(STORE.items),
    "shelf_sku": sorted(STORE.items),
    "seen_sku": sorted(STORE.items),
    "gondola_id": [g.id for g in STORE.gondolas],
    "gate_id": [g.id for g in STORE.floor.gates],
    "camera_id": [c.id for c in STORE.devices.cameras],
    "token": ["tok", "tok-2"],
    "session_id": ["s-tok", "s-tok-2"],
    "track_id": ["trk-1", "trk-2"],
    "epc_hex": [encode_sgtin96(i.gtin, 7) for i in STORE.catalog.items if i.rfid_tagged][:3],
}


def _in_this_store(draw: st.DrawFn, value: Any) -> None:
    """Bend a schema-drawn payload towards this store: its ids, times near T0."""
    if isinstance(value, list):
        for item in value:
            _in_this_store(draw, item)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key.endswith("_s") and isinstance(item, float):
            value[key] = T0 + 60.0 + draw(st.floats(-30.0, 30.0))
        elif VOCABULARY.get(key) and isinstance(item, str) and draw(st.integers(0, 4)):
            value[key] = draw(st.sampled_from(VOCABULARY[key]))
        else:
            _in_this_store(draw, item)


@st.composite
def store_message(draw: st.DrawFn) -> tuple[str, bytes]:
    channel: Channel = draw(st.sampled_from(CHANNELS))
    assert channel.model is not None
    payload = draw(valid_payload(channel.model))
    _in_this_store(draw, payload)
    kind = draw(st.sampled_from(KINDS)) if channel.kind == ANY else None
    publishers = PUBLISHERS[kind or channel.kind]
    device = draw(st.sampled_from(publishers) if draw(st.integers(0, 5)) else TOPIC_SAFE_ID)
    payload["device_id"] = device
    topic = channel.topic(STORE.store_id, device, kind)
    if draw(st.integers(0, 2)):
        return topic, json.dumps(payload).encode()
    return topic, mutate(draw, payload).data


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class WholeStore:
    """Every service that reads the bus, on one LocalTransport, with one event-time clock."""

    def __init__(self, evidence_dir: Path) -> None:
        self.bus = LocalTransport()
        self.now = T0 + 60.0
        clock = lambda: self.now  # noqa: E731 - the services' shared clock
        self.brain = StoreBrain(STORE, self.bus, Ledger(":memory:"))
        self.adapter = ShelfAdapter(STORE, self.bus, now=clock)
        self.ops = StoreOperations(STORE, self.bus, ":memory:", now=clock)
        self.health = DeviceHealth(STORE, self.bus, now=clock)
        self.snapshots = EvidenceSnapshotter(STORE, self.bus, evidence_dir, now=clock)
        for service in (self.brain, self.adapter, self.ops, self.health, self.snapshots):
            service.start()
        self.ops.count_shelves(STORE.planogram, T0)
        self.tick(T0 + 60.0)

    def tick(self, t: float) -> None:
        self.now = t
        self.brain.tick(t)
        self.ops.tick(t)
        self.health.tick(t)


@pytest.fixture(scope="module")
def evidence_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="evidence-") as folder:
        yield Path(folder)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(messages=st.lists(store_message(), min_size=1, max_size=6))
def test_no_service_fails_on_any_payload_of_any_channel(
    evidence_dir: Path, messages: list[tuple[str, bytes]]
) -> None:
    errors = _Errors()
    refusals: list[tuple[str, str, str]] = []
    reject = Inbox.reject

    def recording(inbox: Inbox, topic: str, data: bytes, reason: str, detail: str = "") -> None:
        refusals.append((inbox.service_id, reason, detail))
        reject(inbox, topic, data, reason, detail)

    logging.getLogger().addHandler(errors)
    try:
        with patch.object(Inbox, "reject", recording):
            store = WholeStore(evidence_dir)
            for k, (topic, data) in enumerate(messages):
                store.bus.publish(topic, data)
                store.tick(T0 + 61.0 + k)
            store.tick(T0 + 600.0)  # every open pass, pile and visit times out
    finally:
        logging.getLogger().removeHandler(errors)
    assert not [r for r in refusals if r[1] == "handler error"], refusals
    assert not errors.records, [r.getMessage() for r in errors.records]


# --- payload size limit ---


def test_an_oversized_message_is_dead_lettered_before_it_is_parsed() -> None:
    bus = LocalTransport()
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="b1", now=lambda: T0)
    seen: list[Any] = []
    letters: list[bytes] = []
    inbox.on(TOPICS["gate_entries"], seen.append)
    bus.subscribe(TOPICS["deadletter"].filter("demo"), lambda _t, d: letters.append(d))
    entry = GateEntry(id="e1", event_time_s=T0, device_id="gate-in", token="t")
    padded = entry.model_dump_json().encode() + b" " * MAX_PAYLOAD_BYTES  # valid JSON, too long
    bus.publish("smartstore/demo/gate/gate-in/entries", padded)
    assert (seen, dict(inbox.rejected)) == ([], {"payload too large": 1})
    letter = DeadLetter.model_validate_json(letters[0])
    assert letter.reason == f"payload too large: {len(padded)} bytes, at most 1048576 accepted"
    assert len(letter.payload_excerpt) <= 1000
    # Not parsed: 100 000 nested brackets would otherwise be "malformed JSON".
    bus.publish("smartstore/demo/gate/gate-in/entries", b"[" * (MAX_PAYLOAD_BYTES + 1))
    assert dict(inbox.rejected) == {"payload too large": 2}
    # At the limit it is still read.
    at_limit = entry.model_dump_json().encode()
    at_limit += b" " * (MAX_PAYLOAD_BYTES - len(at_limit))
    bus.publish("smartstore/demo/gate/gate-in/entries", at_limit)
    assert len(seen) == 1


def test_the_largest_legitimate_payloads_fit_the_limit_twice_over() -> None:
    """A long gondola's samples at the store file's top rate, and 100 people's looks."""
    samples = ShelfSamples(
        id="shelf-g01.b123456",
        event_time_s=T0,
        device_id="shelf-g01",
        sample_rate_hz=200.0,  # iot.store.ShelfController: at most 200 Hz, 2 s batches
        plates=[
            PlateSamples(plate_id=f"g01-s{k // 10}-p{k % 10}", weights_g=[12345.678901234567] * 400)
            for k in range(60)
        ],
    )
    tracks = TrackBatch(
        id="pos-1",
        event_time_s=T0,
        device_id="positioning",
        tracks=[
            TrackPoint(
                track_id=f"trk-{k}",
                x_m=12.345678901234,
                y_m=7.654321098765,
                confidence=0.987654321,
                look=[-0.0123456789012345] * 256,
            )
            for k in range(100)
        ],
    )
    for event in (samples, tracks):
        assert 2 * len(event.model_dump_json()) <= MAX_PAYLOAD_BYTES


# --- regressions: what the fuzzing found ---


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": ' + b"9" * 5000 + b"}",  # json.loads: ValueError, not JSONDecodeError
        b"-" + b"1" * 4301,
        b"[" * 100_000,
    ],
    ids=["long-int-field", "long-int", "deep"],
)
def test_json_python_cannot_convert_is_dead_lettered_not_raised(body: bytes) -> None:
    bus = LocalTransport()
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="b1", now=lambda: T0)
    inbox.on(TOPICS["gate_entries"], lambda m: None)
    bus.publish("smartstore/demo/gate/gate-in/entries", body)  # raised ValueError before
    assert dict(inbox.rejected) == {"malformed JSON": 1}


@pytest.mark.parametrize("fmt", ["impinj", "zebra"])
def test_device_health_hears_a_reader_that_sends_several_events_in_one_message(fmt: str) -> None:
    """Impinj sends events a line each, Zebra back to back: one json.loads refused both."""
    bus = LocalTransport()
    health = DeviceHealth(STORE, bus, now=lambda: T0)
    health.start()
    health.tick(T0)
    reads = [TagRead("rfid-exit", "3074257BF7194E4000001A85", p, -50.0, T0) for p in (1, 2)]
    topic = TOPICS["rfid_raw"].topic("demo", "rfid-exit")
    bus.publish(topic, encode_reads(fmt, reads, device_name="r1"))  # type: ignore[arg-type]
    bus.publish(topic, b"{not json")
    record = health.device("rfid-exit")
    assert record is not None
    assert (record.messages, record.dead_letters, record.last_heard_s) == (1, 1, T0)
    bus.publish(topic, b" " * (MAX_PAYLOAD_BYTES + 1))
    assert health.stats()["dead_letter.payload too large"] == 1
