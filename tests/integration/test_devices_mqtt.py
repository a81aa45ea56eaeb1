"""Device health on Mosquitto: a Last Will turns a gate offline, a silent shelf goes stale.

The health service runs on its own serialised connection, as a composition
root wires it; the devices are separate MQTT clients with their own status
topic and Last Will, as real devices would be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from waiting import wait_for

from checkout.devices import DeviceHealth
from iot.bus import SerialTransport, publish
from iot.mqtt import MqttTransport
from iot.payloads import PlateSamples, ShelfSamples
from iot.store import parse_store
from iot.topics import TOPICS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_url", ["mosquitto"], indirect=True),
]

T0 = 1.8e9
STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"


def test_last_will_and_silence_over_mosquitto(
    clients: Callable[..., MqttTransport], sid: str
) -> None:
    data = yaml.safe_load(STORE_FILE.read_text(encoding="utf-8"))
    data["store_id"] = sid
    store = parse_store(data, "demo copy")
    clock = [T0]

    def now() -> float:
        return clock[0]

    health_tx = SerialTransport(clients("devices"), "devices")
    health = DeviceHealth(store, health_tx, now=now)
    health_tx.submit(health.start)
    assert health_tx.drain()

    def health_of(device_id: str) -> str | None:
        record = health.device(device_id)
        return None if record is None else record.health

    gate = clients("gate-in", now=now, status_topic=TOPICS["status"].topic(sid, "gate-in", "gate"))
    shelf = clients(
        "shelf-g01", now=now, status_topic=TOPICS["status"].topic(sid, "shelf-g01", "shelf")
    )
    assert wait_for(lambda: health_of("gate-in") == "ok"), health.device("gate-in")
    for k in range(5):
        batch = ShelfSamples(
            id=f"shelf-g01.b{k}",
            event_time_s=T0 + 0.1 * k,
            device_id="shelf-g01",
            sample_rate_hz=20,
            plates=[PlateSamples(plate_id="g01-s1-p1", weights_g=[500.0, 500.1])],
        )
        publish(shelf, sid, batch)
    assert wait_for(lambda: (r := health.device("shelf-g01")) is not None and r.messages == 6)
    record = health.device("shelf-g01")
    assert record is not None
    assert (record.health, record.status, record.last_heard_s) == ("ok", "online", T0 + 0.4)

    # the gate dies without a DISCONNECT: the broker publishes its Last Will
    gate.abort()
    assert wait_for(lambda: health_of("gate-in") == "offline"), health.device("gate-in")
    gate_record = health.device("gate-in")
    assert gate_record is not None and gate_record.status == "offline"

    # the shelf stays connected (online) but sends nothing for 6 s of event time
    assert health_of("shelf-g01") == "ok"
    clock[0] = T0 + 6.0
    health_tx.submit(health.tick, clock[0])
    assert health_tx.drain()
    stale = health.device("shelf-g01")
    assert stale is not None
    assert (stale.health, stale.status) == ("stale", "online")
    assert stale.silent_s == pytest.approx(5.6)
    assert health.health_counts()["offline"] == 1
    assert health.stats()["dead_letters"] == 0

    health_tx.submit(health.close)
    health_tx.drain()
    health_tx.close()
