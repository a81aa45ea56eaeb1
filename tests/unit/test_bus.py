"""Topic registry, local transport and the validating Inbox."""

from __future__ import annotations

import json

import pytest

from iot.bus import Inbox, LocalTransport, SerialTransport, publish, topic_matches
from iot.payloads import DeadLetter, GateEntry, TrackBatch, TrackPoint
from iot.topics import TOPICS, match_topic

T0 = 1_800_000_000.0


@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/#", "a/b/c/d", True),
        ("a/+", "a/b/c", False),
        ("smartstore/demo/+/+/status", "smartstore/demo/shelf/x/status", True),
    ],
)
def test_topic_matching(flt: str, topic: str, expected: bool) -> None:
    assert topic_matches(flt, topic) is expected


def test_every_channel_round_trips_through_match_topic() -> None:
    for channel in TOPICS.values():
        kind = "brain" if channel.kind == "+" else None
        topic = channel.topic("demo", "dev-1", kind)
        found = match_topic(topic)
        assert found is not None and found[0] is channel, topic
        assert topic == topic.lower() and not topic.startswith("/")
    assert match_topic("smartstore/demo/shelf/dev/nonsense") is None
    assert match_topic("other/demo/shelf/dev/events") is None
    assert match_topic("smartstore/demo/shelf//events") is None


def _inbox(bus: LocalTransport, **kw) -> tuple[Inbox, list, list]:
    seen: list = []
    letters: list = []
    bus.subscribe(
        "smartstore/demo/brain/+/deadletter",
        lambda t, d: letters.append(DeadLetter.model_validate_json(d)),
    )
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="brain-1", now=lambda: T0, **kw)
    return inbox, seen, letters


def _entry(**kw) -> GateEntry:
    fields = {"id": "e1", "event_time_s": T0, "device_id": "gate-in", "token": "tok"} | kw
    return GateEntry(**fields)


BAD_INPUT = [
    (b"{nope", "malformed JSON"),
    (b"\xff\xfe", "malformed JSON"),
    (
        json.dumps({"id": "x", "event_time_s": T0, "device_id": "gate-in"}).encode(),
        "invalid payload: token",
    ),
    (
        b'{"id": "x", "event_time_s": NaN, "device_id": "gate-in", "token": "t"}',
        "invalid payload: event_time_s",
    ),
    (
        json.dumps(
            {"id": "x", "event_time_s": 12.0, "device_id": "gate-in", "token": "t"}
        ).encode(),
        "invalid payload: event_time_s",
    ),
    (
        json.dumps(
            {"id": "x", "event_time_s": T0, "device_id": "gate-in", "token": "t", "extra": 1}
        ).encode(),
        "invalid payload: extra",
    ),
    (
        json.dumps({"id": "x", "event_time_s": T0, "device_id": "other", "token": "t"}).encode(),
        "device mismatch",
    ),
    (b"[1, 2, 3]", "invalid payload"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_INPUT)
def test_bad_input_is_dead_lettered_not_delivered(data: bytes, reason: str) -> None:
    bus = LocalTransport()
    inbox, seen, letters = _inbox(bus)
    inbox.on(TOPICS["gate_entries"], seen.append)
    bus.publish("smartstore/demo/gate/gate-in/entries", data)
    assert seen == []
    assert len(letters) == 1 and letters[0].reason.startswith(reason)
    assert letters[0].topic == "smartstore/demo/gate/gate-in/entries"
    assert sum(inbox.rejected.values()) == 1


def test_unknown_devices_duplicates_and_late_events_are_refused() -> None:
    bus = LocalTransport()
    inbox, seen, letters = _inbox(bus, known_devices={"gate-in"})
    inbox.on(TOPICS["gate_entries"], seen.append, max_lateness_s=2.0)
    publish(bus, "demo", _entry())
    publish(bus, "demo", _entry())  # same id again
    publish(bus, "demo", _entry(id="e2", device_id="gate-x"))
    publish(bus, "demo", _entry(id="e3", event_time_s=T0 + 10))
    publish(bus, "demo", _entry(id="e4", event_time_s=T0 + 7.5))  # 2.5 s late: refused
    publish(bus, "demo", _entry(id="e5", event_time_s=T0 + 8.5))  # 1.5 s late: fine
    assert [m.payload.id for m in seen] == ["e1", "e3", "e5"]
    assert dict(inbox.rejected) == {"duplicate id": 1, "unknown device": 1, "out of order": 1}
    assert [d.reason.split(":")[0] for d in letters] == [
        "duplicate id",
        "unknown device",
        "out of order",
    ]


def test_local_transport_delivers_nested_publishes_in_order() -> None:
    bus = LocalTransport()
    order: list[str] = []

    def echo(topic: str, data: bytes) -> None:
        order.append(topic)
        if topic == "a/1":
            bus.publish("a/2", b"")
            bus.publish("a/3", b"")

    bus.subscribe("a/+", echo)
    bus.publish("a/1", b"")
    bus.publish("a/4", b"")
    assert order == ["a/1", "a/2", "a/3", "a/4"]


def test_retained_messages_reach_late_subscribers() -> None:
    bus = LocalTransport()
    bus.publish("s/x", b"on", retain=True)
    got: list[bytes] = []
    bus.subscribe("s/+", lambda t, d: got.append(d))
    assert got == [b"on"]


def test_serial_transport_runs_callbacks_and_calls_on_one_thread_in_order() -> None:
    inner = LocalTransport()
    serial = SerialTransport(inner, "svc")
    seen: list[str] = []
    inbox = Inbox(serial, "demo", service_kind="brain", service_id="b", now=lambda: T0)
    inbox.on(TOPICS["tracks"], lambda m: seen.append(m.payload.id))
    for n in range(50):
        batch = TrackBatch(
            id=f"p{n}",
            event_time_s=T0 + n,
            device_id="positioning",
            tracks=[TrackPoint(track_id="t1", x_m=1.0, y_m=2.0)],
        )
        publish(inner, "demo", batch)
        serial.submit(seen.append, f"tick{n}")
    assert serial.drain(5)
    serial.close()
    expected = [x for n in range(50) for x in (f"p{n}", f"tick{n}")]
    assert seen == expected


def test_a_handler_bug_is_dead_lettered_and_the_service_keeps_going() -> None:
    bus = LocalTransport()
    inbox, seen, letters = _inbox(bus)

    def fragile(msg) -> None:
        if msg.payload.token == "boom":
            raise ZeroDivisionError("division by zero")
        seen.append(msg)

    inbox.on(TOPICS["gate_entries"], fragile)
    publish(bus, "demo", _entry(id="e1", token="boom"))
    publish(bus, "demo", _entry(id="e2", token="fine"))
    assert [m.payload.id for m in seen] == ["e2"]
    assert letters[0].reason == "handler error: ZeroDivisionError: division by zero"
