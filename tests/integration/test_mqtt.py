"""The bus on real brokers: the embedded amqtt broker and the Mosquitto at 127.0.0.1:1883.

Every test uses its own store id and client ids, so runs against the shared
Mosquitto do not see each other's messages or retained statuses.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from waiting import wait_for

from iot.broker import EmbeddedBroker
from iot.bus import Inbox, Message, publish
from iot.mqtt import MqttTransport
from iot.payloads import DeadLetter, DeviceStatus, GateEntry, PlateSamples, ShelfEvent, ShelfSamples
from iot.shelf import ShelfAdapter
from iot.store import parse_store
from iot.topics import TOPICS

pytestmark = pytest.mark.integration


def _accepts(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=1.0):
            return True
    except OSError:
        return False


T0 = 1.8e9
STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"


def entry(n: int) -> GateEntry:
    return GateEntry(id=f"e{n}", event_time_s=T0 + n, device_id="gate-in", token=f"tok-{n}")


def test_round_trip_through_inbox(clients: Callable[..., MqttTransport], sid: str) -> None:
    pub, sub = clients("pub"), clients("sub")
    got: list[Message] = []
    inbox = Inbox(sub, sid, service_kind="brain", service_id="b1", now=time.time)
    inbox.on(TOPICS["gate_entries"], got.append)
    topic = publish(pub, sid, entry(1))
    assert wait_for(lambda: len(got) == 1)
    assert got[0].payload == entry(1) and got[0].topic == topic and got[0].device_id == "gate-in"


def test_qos1_events_arrive_in_order(clients: Callable[..., MqttTransport], sid: str) -> None:
    pub, sub = clients("pub"), clients("sub")
    got: list[str] = []
    inbox = Inbox(sub, sid, service_kind="brain", service_id="b1", now=time.time)
    inbox.on(TOPICS["gate_entries"], lambda m: got.append(m.payload.id))
    for n in range(300):
        publish(pub, sid, entry(n))
    assert wait_for(lambda: len(got) == 300, 20), len(got)
    assert got == [f"e{n}" for n in range(300)]
    assert not inbox.rejected


def test_malformed_payload_is_dead_lettered(
    clients: Callable[..., MqttTransport], sid: str
) -> None:
    pub, sub, watch = clients("pub"), clients("sub"), clients("watch")
    letters: list[DeadLetter] = []
    watch.subscribe(
        f"smartstore/{sid}/brain/b1/deadletter",
        lambda t, d: letters.append(DeadLetter.model_validate_json(d)),
        1,
    )
    got: list[Message] = []
    inbox = Inbox(sub, sid, service_kind="brain", service_id="b1", now=time.time)
    inbox.on(TOPICS["gate_entries"], got.append)
    bad_topic = f"smartstore/{sid}/gate/gate-in/entries"
    pub.publish(bad_topic, b'{"v": 1, "id": "e1", "event_time_s": NaN', 1, False)
    pub.publish(bad_topic, b"\xff\xfe not json", 1, False)
    assert wait_for(lambda: len(letters) == 2)
    assert [lt.reason for lt in letters] == ["malformed JSON", "malformed JSON"]
    assert letters[0].topic == bad_topic and got == []


def test_retained_online_and_last_will_offline(
    clients: Callable[..., MqttTransport], sid: str
) -> None:
    status_topic = f"smartstore/{sid}/shelf/edge-1/status"
    device = clients("edge", status_topic=status_topic)
    assert device.connected
    seen: list[DeviceStatus] = []
    watch = clients("watch")
    watch.subscribe(status_topic, lambda t, d: seen.append(DeviceStatus.model_validate_json(d)), 1)
    assert wait_for(lambda: [s.state for s in seen] == ["online"])  # retained
    device.abort()  # dies without DISCONNECT: the broker publishes the Last Will
    assert wait_for(lambda: [s.state for s in seen] == ["online", "offline"], 15), seen
    assert seen[1].device_id == "edge-1" and seen[1].id != seen[0].id
    # The will is also retained. A broker may forward it a moment before storing it,
    # so a late subscriber that saw nothing tries again (bounded).
    late: list[str] = []
    for attempt in range(10):
        late = _retained_states(clients(f"late{attempt}"), status_topic)
        if late == ["offline"]:
            break
    assert late == ["offline"]


def _retained_states(client: MqttTransport, topic: str) -> list[str]:
    """States a fresh subscriber receives within a second (the retained one, if any)."""
    got: list[str] = []
    client.subscribe(topic, lambda t, d: got.append(DeviceStatus.model_validate_json(d).state), 1)
    wait_for(lambda: bool(got), 1.0)
    return got


def test_clean_close_publishes_offline(clients: Callable[..., MqttTransport], sid: str) -> None:
    status_topic = f"smartstore/{sid}/brain/worker-1/status"
    device = clients("worker", status_topic=status_topic)
    seen: list[str] = []
    clients("watch").subscribe(
        status_topic, lambda t, d: seen.append(DeviceStatus.model_validate_json(d).state), 1
    )
    assert wait_for(lambda: seen == ["online"])
    device.close()
    assert not device.connected
    assert wait_for(lambda: seen == ["online", "offline"])


def test_resubscribes_after_reconnect(clients: Callable[..., MqttTransport], sid: str) -> None:
    pub, sub = clients("pub"), clients("sub")
    got: list[bytes] = []
    topic = f"smartstore/{sid}/gate/gate-in/entries"
    sub.subscribe(topic, lambda t, d: got.append(d), 1)
    pub.publish(topic, b"before", 1, False)
    assert wait_for(lambda: got == [b"before"])
    sub.drop_connection()
    assert wait_for(lambda: not sub.connected, 5)
    assert wait_for(lambda: sub.connected, 15)  # backoff starts at 1 s
    n = 0
    while b"after" not in b"".join(got) and n < 50:  # bounded: at most ~10 s
        pub.publish(topic, b"after%d" % n, 1, False)
        n += 1
        wait_for(lambda: len(got) > 1, 0.2)
    assert any(d.startswith(b"after") for d in got[1:]), got


def test_callback_errors_do_not_kill_the_loop(
    clients: Callable[..., MqttTransport], sid: str
) -> None:
    pub, sub = clients("pub"), clients("sub")
    got: list[bytes] = []
    topic = f"smartstore/{sid}/gate/gate-in/entries"

    def explode(t: str, d: bytes) -> None:
        raise RuntimeError("service bug")

    sub.subscribe(topic, explode, 1)
    sub.subscribe(topic, lambda t, d: got.append(d), 1)
    for k in range(3):
        pub.publish(topic, b"m%d" % k, 1, False)
    assert wait_for(lambda: len(got) == 3)
    assert sub.callback_errors == 3 and sub.connected


def test_shelf_adapter_over_the_broker(clients: Callable[..., MqttTransport], sid: str) -> None:
    data = yaml.safe_load(STORE_FILE.read_text(encoding="utf-8"))
    data["store_id"] = sid
    store = parse_store(data, "demo copy")
    edge, device, brain = clients("edge"), clients("shelf-g01"), clients("brain")
    events: list[ShelfEvent] = []
    brain.subscribe(
        TOPICS["shelf_events"].filter(sid),
        lambda t, d: events.append(ShelfEvent.model_validate_json(d)),
        1,
    )
    adapter = ShelfAdapter(store, edge, now=time.time)
    adapter.start()
    rng = np.random.default_rng(3)
    level = 1500.0 + 22 * 522.0
    n = 0
    for b in range(100):  # 10 s of samples at 20 Hz, a 1-unit pick at 5 s
        w = level - (522.0 if b >= 50 else 0.0) + rng.normal(0, 2.0, 2)
        batch = ShelfSamples(
            id=f"s{b}",
            event_time_s=T0 + n / 20,
            device_id="shelf-g01",
            sample_rate_hz=20,
            plates=[PlateSamples(plate_id="g01-s1-p1", weights_g=w.tolist())],
        )
        publish(device, sid, batch)
        n += 2
    assert wait_for(lambda: len(events) == 1, 15), (events, adapter.inbox.rejected)
    ev = events[0]
    assert (ev.plate_id, ev.sku, ev.action, ev.quantity) == ("g01-s1-p1", "SKU001", "pick", 1)
    assert ev.delta_g == pytest.approx(-522.0, abs=4.0)
    assert not adapter.inbox.rejected


def test_connect_failure_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=r"mqtt://127\.0\.0\.1:\d+.*omit --broker"):
        MqttTransport(f"mqtt://127.0.0.1:{port}", "nobody", connect_timeout_s=2)


def test_embedded_broker_lifecycle() -> None:
    broker = EmbeddedBroker()
    with pytest.raises(RuntimeError, match="not started"):
        _ = broker.url
    broker.start()
    url = broker.url
    assert url.startswith("mqtt://127.0.0.1:") and broker.port and broker.port > 0
    t = MqttTransport(url, "lifecycle", connect_timeout_s=5)
    assert t.connected
    t.close()
    broker.stop()
    assert not _accepts(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    with pytest.raises(ConnectionError):
        MqttTransport(url, "late", connect_timeout_s=2)
