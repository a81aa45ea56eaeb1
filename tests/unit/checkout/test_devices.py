"""Device health on the in-process bus: statuses, silence by event time, strangers, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from checkout.devices import (
    HEALTHS,
    DeviceHealth,
    DeviceHealthSettings,
    DeviceRecord,
)
from checkout.devices_api import devices_router
from iot.bus import LocalTransport, publish
from iot.payloads import (
    DeadLetter,
    DeviceStatus,
    GateEntry,
    PlateSamples,
    ShelfSamples,
    TrackBatch,
)
from iot.store import Store, load_store
from iot.topics import TOPICS

T0 = 1.8e9
STORE = load_store(Path(__file__).resolve().parents[3] / "stores" / "demo.yaml")


class Clock:
    """The store's clock, moved by hand."""

    def __init__(self, now_s: float = T0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def samples(device_id: str, t: float, n: int = 0) -> ShelfSamples:
    return ShelfSamples(
        id=f"{device_id}.b{n}.{t}",
        event_time_s=t,
        device_id=device_id,
        sample_rate_hz=20,
        plates=[PlateSamples(plate_id="g01-s1-p1", weights_g=[500.0, 500.2])],
    )


def status(device_id: str, state: str, t: float, n: int = 0) -> DeviceStatus:
    return DeviceStatus(
        id=f"{device_id}.status.{n}",
        event_time_s=t,
        device_id=device_id,
        state="online" if state == "online" else "offline",
    )


@pytest.fixture
def bus() -> LocalTransport:
    return LocalTransport()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(store: Store, bus: LocalTransport, clock: Clock) -> Callable[..., DeviceHealth]:
    def build(**options: object) -> DeviceHealth:
        health = DeviceHealth(store, bus, now=clock, **options)  # type: ignore[arg-type]
        health.start()
        return health

    return build


def health_of(health: DeviceHealth, device_id: str) -> str:
    record = health.device(device_id)
    assert record is not None, device_id
    return record.health


# --- the store file's devices ---


@pytest.mark.parametrize(
    ("device_id", "kind", "detail", "limit_s"),
    [
        ("shelf-g01", "shelf", "shelf controller of g01", 5.0),
        ("cam-ceil-01", "camera", "ceiling camera", None),
        ("cam-shelf-g03", "camera", "shelf camera watching g03", None),
        ("gate-in", "gate", "entry gate", None),
        ("gate-out", "gate", "exit gate", None),
        ("rfid-exit", "rfid", "impinj reader at gate-out", None),
        ("ceiling-tracker", "tracker", "shopper positions", 5.0),
    ],
)
def test_every_declared_device_starts_unknown_with_its_kind(
    make: Callable[..., DeviceHealth],
    device_id: str,
    kind: str,
    detail: str,
    limit_s: float | None,
) -> None:
    record = make().device(device_id)
    assert record is not None
    assert (record.kind, record.role, record.declared, record.detail) == (
        kind,
        "device",
        True,
        detail,
    )
    assert (record.health, record.status, record.messages, record.silence_limit_s) == (
        "unknown",
        "unknown",
        0,
        limit_s,
    )


def test_all_declared_devices_are_listed_and_counted(
    make: Callable[..., DeviceHealth], store: Store
) -> None:
    health = make()
    assert {r.device_id for r in health.devices()} == store.device_ids()
    counts = health.health_counts()
    assert counts == dict.fromkeys(HEALTHS, 0) | {"unknown": len(store.device_ids())}
    assert [r.device_id for r in health.devices(kind="gate")] == ["gate-in", "gate-out"]


# --- silence, judged by the store's clock ---


def test_a_shelf_goes_stale_after_its_silence_limit_in_event_time(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make()
    for k in range(10):
        publish(bus, "demo", samples("shelf-g01", T0 + 0.1 * k, k))
    record = health.device("shelf-g01")
    assert record is not None
    assert (record.health, record.messages, record.last_heard_s) == ("ok", 10, T0 + 0.9)
    assert record.channels == {"shelf_samples": 10}
    clock.now_s = T0 + 0.9 + 5.0  # exactly at the limit: not yet
    assert health_of(health, "shelf-g01") == "ok"
    clock.now_s = T0 + 0.9 + 5.01
    record = health.device("shelf-g01")
    assert record is not None
    assert record.health == "stale"
    assert record.silent_s == pytest.approx(5.01)
    # other devices talking does not keep it alive; its own batch does
    publish(bus, "demo", samples("shelf-g02", clock.now_s))
    assert (health_of(health, "shelf-g01"), health_of(health, "shelf-g02")) == ("stale", "ok")
    publish(bus, "demo", samples("shelf-g01", clock.now_s, 99))
    assert health_of(health, "shelf-g01") == "ok"


def test_tick_moves_the_clock_when_now_stands_still(
    make: Callable[..., DeviceHealth], bus: LocalTransport
) -> None:
    health = make()
    batch = TrackBatch(id="trk.1", event_time_s=T0, device_id="ceiling-tracker")
    publish(bus, "demo", batch)
    assert health_of(health, "ceiling-tracker") == "ok"
    health.tick(T0 + 6)
    assert health_of(health, "ceiling-tracker") == "stale"
    assert health.clock_s() == T0 + 6
    health.tick(T0 + 1)  # a tick never takes the clock back
    assert health.clock_s() == T0 + 6


def test_a_gate_is_judged_by_its_status_not_its_silence(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make()
    publish(bus, "demo", GateEntry(id="e1", event_time_s=T0, device_id="gate-in", token="tok"))
    clock.now_s = T0 + 86_400  # a day without a shopper
    record = health.device("gate-in")
    assert record is not None
    assert (record.health, record.silence_limit_s, record.silent_s) == ("ok", None, 86_400)
    publish(bus, "demo", status("gate-in", "offline", clock.now_s), kind="gate")
    assert health_of(health, "gate-in") == "offline"
    publish(bus, "demo", status("gate-in", "online", clock.now_s, 1), kind="gate")
    assert health_of(health, "gate-in") == "ok"


def test_last_will_offline_then_data_again_is_ok(
    make: Callable[..., DeviceHealth], bus: LocalTransport
) -> None:
    health = make()
    publish(bus, "demo", status("shelf-g03", "online", T0), kind="shelf")
    publish(bus, "demo", samples("shelf-g03", T0 + 1))
    assert health_of(health, "shelf-g03") == "ok"
    # the Last Will carries the time of the connect, older than the data: still offline
    publish(bus, "demo", status("shelf-g03", "offline", T0, 1), kind="shelf")
    record = health.device("shelf-g03")
    assert record is not None
    assert (record.health, record.status, record.last_heard_s) == ("offline", "offline", T0 + 1)
    # it publishes again (another connection, or back without a status): it is alive
    publish(bus, "demo", samples("shelf-g03", T0 + 2, 1))
    assert health_of(health, "shelf-g03") == "ok"


def test_an_online_shelf_that_never_sends_goes_stale(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make()
    publish(bus, "demo", status("shelf-g04", "online", T0), kind="shelf")
    assert health_of(health, "shelf-g04") == "ok"
    clock.now_s = T0 + 30
    record = health.device("shelf-g04")
    assert record is not None
    assert (record.health, record.status) == ("stale", "online")


def test_a_retained_status_is_heard_at_start(
    store: Store, bus: LocalTransport, clock: Clock
) -> None:
    publish(bus, "demo", status("cam-ceil-02", "offline", T0 - 60), kind="camera")
    health = DeviceHealth(store, bus, now=clock)
    assert health_of(health, "cam-ceil-02") == "unknown"  # not started: nothing heard
    health.start()
    record = health.device("cam-ceil-02")
    assert record is not None
    assert (record.health, record.status_s) == ("offline", T0 - 60)


# --- who is who ---


def test_a_device_not_in_the_store_file_is_undeclared(
    make: Callable[..., DeviceHealth], bus: LocalTransport
) -> None:
    health = make()
    assert health.device("shelf-g99") is None
    publish(bus, "demo", samples("shelf-g99", T0))
    record = health.device("shelf-g99")
    assert record is not None
    assert (record.health, record.declared, record.kind, record.role) == (
        "undeclared",
        False,
        "shelf",
        "device",
    )
    assert record.messages == 1
    assert health.health_counts()["undeclared"] == 1
    assert health.stats()["undeclared"] == 1


def test_services_are_judged_by_status_and_never_undeclared(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make(services={"brain": "brain", "shelf-adapter": "shelf"})
    assert health_of(health, "brain") == "unknown"  # expected before it connects
    publish(bus, "demo", status("brain", "online", T0), kind="brain")
    publish(bus, "demo", status("shelf-adapter", "online", T0), kind="shelf")
    publish(bus, "demo", status("ops", "online", T0), kind="ops")  # not named: still a service
    clock.now_s = T0 + 3600
    for device_id, declared in (("brain", True), ("shelf-adapter", True), ("ops", False)):
        record = health.device(device_id)
        assert record is not None
        assert (record.role, record.declared, record.health, record.silence_limit_s) == (
            "service",
            declared,
            "ok",
            None,
        )
    publish(bus, "demo", status("brain", "offline", T0 + 3600, 1), kind="brain")
    assert health.health_counts("service") == dict.fromkeys(HEALTHS, 0) | {
        "ok": 2,
        "offline": 1,
    }
    assert [r.device_id for r in health.devices(role="service")] == [
        "brain",
        "ops",
        "shelf-adapter",
    ]


def test_undeclared_ids_are_bounded(make: Callable[..., DeviceHealth], bus: LocalTransport) -> None:
    health = make(settings=DeviceHealthSettings(max_undeclared=3))
    declared = len(health.devices())
    for k in range(10):
        publish(bus, "demo", samples(f"intruder-{k}", T0, k))
        publish(bus, "demo", samples(f"intruder-{k}", T0 + 1, 100 + k))
    assert len(health.devices()) == declared + 3
    assert health.stats()["untracked_messages"] == 14
    record = health.device("intruder-2")
    assert record is not None and record.messages == 2
    assert health.device("intruder-3") is None
    assert health.inbox is not None
    assert len(health.inbox._last_time) <= declared + 3  # the inbox's memory stays bounded too


# --- bad input ---


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b'{"id": "x"}', "invalid payload"),
        (samples("shelf-g01", T0).model_dump_json().replace("500.2", "NaN").encode(), "invalid"),
        (samples("shelf-g02", T0).model_dump_json().encode(), "device mismatch"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
    ],
    ids=["not-json", "not-utf8", "missing-fields", "nan", "other-device", "deep"],
)
def test_bad_input_is_dead_lettered_and_counted_against_the_device(
    make: Callable[..., DeviceHealth], bus: LocalTransport, data: bytes, reason: str
) -> None:
    health = make()
    letters: list[DeadLetter] = []
    bus.subscribe(
        TOPICS["deadletter"].filter("demo", kind="ops"),
        lambda t, d: letters.append(DeadLetter.model_validate_json(d)),
    )
    bus.publish(TOPICS["shelf_samples"].topic("demo", "shelf-g01"), data, 0, False)
    record = health.device("shelf-g01")
    assert record is not None
    assert (record.dead_letters, record.messages, record.health) == (1, 0, "unknown")
    assert len(letters) == 1 and letters[0].reason.startswith(reason), letters
    assert letters[0].device_id == "devices"
    # the service still works
    publish(bus, "demo", samples("shelf-g01", T0, 5))
    assert health_of(health, "shelf-g01") == "ok"


_SEGMENTS = st.sampled_from(["shelf", "camera", "gate", "tracker", "rfid", "brain", "ops", "x"])
_CHANNELS = st.sampled_from(
    [
        "samples",
        "events",
        "interactions",
        "snapshots",
        "entries",
        "exits",
        "tracks",
        "raw",
        "passages",
        "status",
        "deadletter",
        "nope",
    ]
)
_IDS = st.one_of(
    st.sampled_from(["shelf-g01", "gate-in", "rfid-exit", "ceiling-tracker", "brain"]),
    st.text(min_size=1, max_size=200).filter(lambda t: "/" not in t and "+" not in t),
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda t, state: status("shelf-g01", state, t).model_dump_json().encode(),
        st.floats(min_value=T0 - 1e6, max_value=T0 + 1e6),
        st.sampled_from(["online", "offline"]),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_SEGMENTS, _IDS, _CHANNELS, _BODIES), min_size=1, max_size=12))
def test_nothing_a_device_sends_crashes_it_or_grows_it(
    messages: list[tuple[str, str, str, bytes]],
) -> None:
    bus, clock = LocalTransport(), Clock()
    health = DeviceHealth(STORE, bus, now=clock, settings=DeviceHealthSettings(max_undeclared=4))
    health.start()
    declared = len(health.devices())
    for kind, device_id, channel, body in messages:
        bus.publish(f"smartstore/demo/{kind}/{device_id}/{channel}", body)
        clock.now_s += 1.0
        health.tick(clock.now_s)
    records = health.devices()
    assert declared <= len(records) <= declared + 4
    assert all(r.health in HEALTHS for r in records)
    assert sum(r.messages for r in records) <= len(messages)
    assert "dead_letter.handler error" not in health.stats()  # refused as input, never a bug


def test_a_repeated_status_is_not_the_devices_fault(
    make: Callable[..., DeviceHealth], bus: LocalTransport
) -> None:
    health = make()
    online = status("gate-out", "online", T0)
    publish(bus, "demo", online, kind="gate")
    publish(bus, "demo", online, kind="gate")  # a retained status heard again on resubscribe
    record = health.device("gate-out")
    assert record is not None
    assert (record.messages, record.dead_letters, record.health) == (1, 0, "ok")
    assert health.stats()["dead_letter.duplicate id"] == 1


def test_rfid_reader_json_is_heard_at_the_store_clock(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make()
    topic = TOPICS["rfid_raw"].topic("demo", "rfid-exit")
    bus.publish(topic, b'{"timestamp": "2027-01-15T08:00:00Z", "tagInventoryEvent": {}}')
    bus.publish(topic, b"garbage")
    record = health.device("rfid-exit")
    assert record is not None
    assert (record.health, record.messages, record.dead_letters) == ("ok", 1, 1)
    assert (record.last_heard_s, record.channels) == (T0, {"rfid_raw": 1})
    clock.now_s = T0 + 86_400  # readers are judged by status only
    assert health_of(health, "rfid-exit") == "ok"


def test_a_clock_running_ahead_cannot_keep_a_device_alive(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make()
    publish(bus, "demo", samples("shelf-g05", T0 + 3600))  # an hour ahead of the store
    record = health.device("shelf-g05")
    assert record is not None
    assert (record.last_heard_s, record.clock_ahead, record.health) == (T0, 1, "ok")
    clock.now_s = T0 + 6
    assert health_of(health, "shelf-g05") == "stale"
    assert health.stats()["clock_ahead"] == 1


def test_after_close_nothing_more_is_folded(
    make: Callable[..., DeviceHealth], bus: LocalTransport
) -> None:
    health = make()
    health.close()
    publish(bus, "demo", samples("shelf-g01", T0))
    publish(bus, "demo", samples("intruder", T0))
    assert health_of(health, "shelf-g01") == "unknown"
    assert health.device("intruder") is None


# --- announcing changes ---


def test_on_change_hears_each_change_once(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    heard: list[DeviceRecord] = []
    health = make(on_change=heard.append)
    for k in range(3):
        publish(bus, "demo", samples("shelf-g06", T0 + 0.1 * k, k))
    health.tick(T0 + 1)
    publish(bus, "demo", samples("shelf-new", T0 + 1))
    publish(bus, "demo", samples("shelf-new", T0 + 1.1, 1))
    health.tick(T0 + 10)
    health.tick(T0 + 11)
    changes = [(r.device_id, r.health) for r in heard]
    assert changes == [
        ("shelf-g06", "ok"),
        ("shelf-new", "undeclared"),
        ("shelf-g06", "stale"),
    ]
    assert heard[-1].silent_s == pytest.approx(9.8)


def test_a_failing_listener_does_not_stop_the_fold(
    make: Callable[..., DeviceHealth], bus: LocalTransport
) -> None:
    def broken(record: DeviceRecord) -> None:
        raise RuntimeError("listener bug")

    health = make(on_change=broken)
    publish(bus, "demo", samples("shelf-g07", T0))
    publish(bus, "demo", samples("shelf-g07", T0 + 0.1, 1))
    record = health.device("shelf-g07")
    assert record is not None
    assert (record.messages, record.dead_letters, record.health) == (2, 0, "ok")


# --- settings ---


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"brain": 5.0}, "not a device kind"),
        ({"shelf": 0.0}, "give seconds > 0"),
        ({"shelf": -1.0}, "give seconds > 0"),
    ],
)
def test_silence_limits_are_checked(limits: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeviceHealthSettings(silence_limits_s=limits)


def test_cameras_can_be_given_a_silence_limit(
    make: Callable[..., DeviceHealth], bus: LocalTransport, clock: Clock
) -> None:
    health = make(settings=DeviceHealthSettings(silence_limits_s={"camera": 60.0}))
    publish(bus, "demo", status("cam-shelf-g01", "online", T0), kind="camera")
    clock.now_s = T0 + 61
    assert (health_of(health, "cam-shelf-g01"), health_of(health, "shelf-g01")) == (
        "stale",
        "unknown",
    )
    publish(bus, "demo", samples("shelf-g01", T0))  # shelves are now judged by status only
    assert health_of(health, "shelf-g01") == "ok"


# --- the HTTP routes ---


@pytest.fixture
def client(store: Store, bus: LocalTransport, clock: Clock) -> TestClient:
    health = DeviceHealth(store, bus, now=clock, services={"brain": "brain"})
    health.start()
    publish(bus, "demo", samples("shelf-g01", T0 - 10))
    publish(bus, "demo", samples("shelf-g02", T0))
    publish(bus, "demo", status("gate-in", "offline", T0), kind="gate")
    publish(bus, "demo", samples("shelf-x", T0))
    publish(bus, "demo", status("brain", "online", T0), kind="brain")
    app = FastAPI()
    app.include_router(devices_router(health, store, open_sessions=lambda: 4))
    return TestClient(app)


def test_stores_lists_this_store_with_health_counts(client: TestClient, store: Store) -> None:
    response = client.get("/stores")
    assert response.status_code == 200
    [summary] = response.json()
    assert (summary["store_id"], summary["name"], summary["gln"]) == (
        "demo",
        store.name,
        store.gln,
    )
    total = len(store.device_ids())
    assert summary["devices"] == {
        "ok": 1,
        "stale": 1,
        "offline": 1,
        "unknown": total - 3,
        "undeclared": 1,
    }
    assert summary["services"]["ok"] == 1
    assert (summary["devices_total"], summary["open_sessions"], summary["now_s"]) == (
        total + 1,
        4,
        T0,
    )
    assert client.get("/stores/demo").json() == summary


def test_another_store_is_not_found(client: TestClient) -> None:
    response = client.get("/stores/elsewhere")
    assert response.status_code == 404
    assert "serves 'demo'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("?kind=shelf&health=stale", ["shelf-g01"]),
        ("?kind=shelf&health=ok", ["shelf-g02"]),
        ("?health=offline", ["gate-in"]),
        ("?health=undeclared", ["shelf-x"]),
        ("?role=service", ["brain"]),
        ("?kind=nothing", []),
    ],
)
def test_devices_filter_by_kind_health_and_role(
    client: TestClient, query: str, ids: list[str]
) -> None:
    response = client.get(f"/devices{query}")
    assert response.status_code == 200
    assert [r["device_id"] for r in response.json()] == ids


def test_a_bad_health_filter_is_refused_naming_it(client: TestClient) -> None:
    response = client.get("/devices?health=sleepy")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "health"]


def test_one_device_or_404(client: TestClient) -> None:
    found = client.get("/devices/shelf-g01")
    assert found.status_code == 200
    body = found.json()
    assert (body["health"], body["silent_s"], body["silence_limit_s"]) == ("stale", 10.0, 5.0)
    missing = client.get("/devices/shelf-g42")
    assert missing.status_code == 404
    assert "GET /devices" in missing.json()["detail"]
