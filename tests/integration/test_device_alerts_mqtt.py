"""Device alerts on Mosquitto: a reader that hangs or drops is an alert within seconds.

The devices are separate MQTT clients with their own status topic and Last
Will, as real readers are; the broker, not the test, decides when a silent
client is dead (1.5 keep-alives, checked on its own schedule: Mosquitto 2.0
takes a few seconds more) and publishes its will. The store clock is
the wall clock here, as in a live store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from waiting import wait_for

from checkout.device_alerts import DeviceAlerts
from checkout.devices import DeviceHealth
from iot.bus import SerialTransport
from iot.mqtt import MqttTransport
from iot.payloads import Alert
from iot.store import parse_store
from iot.topics import TOPICS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_url", ["mosquitto"], indirect=True),
]

STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"
KEEPALIVE_S = 2  # Mosquitto 2.0.11 sent the will 4.8-8.3 s after a 2 s client hung
ALERT_WITHIN_S = 10.0


def test_a_hung_reader_and_a_dropped_gate_raise_alerts(
    clients: Callable[..., MqttTransport], sid: str
) -> None:
    data = yaml.safe_load(STORE_FILE.read_text(encoding="utf-8"))
    data["store_id"] = sid
    store = parse_store(data, "demo copy")
    tx = SerialTransport(clients("devices"), "devices")
    alerts = DeviceAlerts(store, tx, DeviceHealth(store, tx, now=time.time))
    tx.submit(alerts.start)
    assert tx.drain()
    heard: list[Alert] = []
    listener = clients("listener")
    listener.subscribe(
        TOPICS["alerts"].filter(sid), lambda t, d: heard.append(Alert.model_validate_json(d)), 1
    )

    def raised(subject: str) -> Alert | None:
        return next((a for a in heard if a.subject_id == subject and a.state == "raised"), None)

    reader = clients(
        "rfid-exit",
        keepalive_s=KEEPALIVE_S,
        status_topic=TOPICS["status"].topic(sid, "rfid-exit", "rfid"),
    )
    gate = clients("gate-in", status_topic=TOPICS["status"].topic(sid, "gate-in", "gate"))
    assert wait_for(lambda: alerts.health.device("rfid-exit").messages >= 1)  # type: ignore[union-attr]
    assert wait_for(lambda: alerts.health.device("gate-in").messages >= 1)  # type: ignore[union-attr]

    # the reader hangs: its socket stays open, nothing more is sent, not even a ping
    hung_at = time.time()
    reader._client.loop_stop()
    assert wait_for(lambda: raised("rfid-exit") is not None, timeout_s=12.0)
    alert = raised("rfid-exit")
    assert alert is not None and alert.fault == "offline" and alert.device_id == "devices"
    latency = alert.event_time_s - hung_at
    assert 1.0 * KEEPALIVE_S <= latency < ALERT_WITHIN_S, latency

    # the gate drops its connection: the broker sends its will at once
    dropped_at = time.time()
    gate.abort()
    assert wait_for(lambda: raised("gate-in") is not None, timeout_s=5.0)
    gate_alert = raised("gate-in")
    assert gate_alert is not None and gate_alert.event_time_s - dropped_at < 2.0
    assert [a.state for a in heard] == ["raised", "raised"]
    tx.submit(alerts.health.close)
    tx.drain()
    tx.close()
