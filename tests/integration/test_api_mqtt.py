"""A shopper's visit through the API and Mosquitto: QR code, gate scan, visit, receipt.

The shopper registers and asks for a QR code over HTTP; the gate scanner
posts the code with its device key; the API puts the ``GateEntry`` on the
real broker, the brain (on its own connection, as the demo runs it) opens
the visit, and the shopper then finds the visit and its receipt through
``/me`` — while another shopper finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from waiting import wait_for

from checkout.api import create_app
from checkout.auth import AccountBook
from checkout.brain import StoreBrain
from checkout.ledger import Ledger
from iot.bus import SerialTransport, publish
from iot.mqtt import MqttTransport
from iot.payloads import GateExit, TrackBatch, TrackPoint
from iot.store import parse_store

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_url", ["mosquitto"], indirect=True),
]

T0 = 1.8e9
STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"
PW = "a long test password"


def test_a_visit_from_qr_code_to_receipt_over_mosquitto(
    clients: Callable[[str], MqttTransport], sid: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(STORE_FILE.read_text(encoding="utf-8"))
    data["store_id"] = sid
    store = parse_store(data, "demo copy")
    clock = [T0]
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    brain_tx = SerialTransport(clients("brain"), "brain")
    brain = StoreBrain(store, brain_tx, ledger)
    brain_tx.submit(brain.start)
    brain_tx.drain()
    api_tx, floor = clients("api"), clients("tracker")
    accounts = AccountBook(tmp_path / "accounts.sqlite", clock=lambda: 1000.0)
    app = create_app(
        ledger,
        store,
        accounts,
        now=lambda: clock[0],
        publish_entry=lambda entry: publish(api_tx, sid, entry),
    )
    gate = store.gates("entry")[0]
    key = accounts.issue_device_key(gate.id, sid)
    ana, bo, scanner = TestClient(app), TestClient(app), TestClient(app)
    scanner.headers["Authorization"] = f"Bearer {key}"
    for client, name in ((ana, "ana"), (bo, "bo")):
        assert client.post("/auth/register", json={"username": name, "password": PW}).is_success

    qr = ana.post("/me/scan-in").json()
    assert qr["qr_svg"].startswith("<svg") and qr["store_id"] == sid
    scan = scanner.post(f"/devices/{gate.id}/scans", json={"token": qr["token"]})
    assert scan.status_code == 202, scan.text
    session_id = scan.json()["session_id"]
    assert wait_for(lambda: [v["session_id"] for v in ana.get("/me/visits").json()] == [session_id])
    again = scanner.post(f"/devices/{gate.id}/scans", json={"token": qr["token"]})
    assert again.status_code == 409 and "already used" in again.json()["detail"]

    # the ceiling sees her at the gate, then she walks out with nothing
    (x, y) = gate.centre_m
    publish(
        floor,
        sid,
        TrackBatch(
            id="tb-1",
            event_time_s=T0 + 0.5,
            device_id="positioning",
            tracks=[TrackPoint(track_id="trk-1", x_m=x, y_m=y + 0.3)],
        ),
    )
    publish(
        floor,
        sid,
        GateExit(
            id="out-1", event_time_s=T0 + 20, device_id=store.gates("exit")[0].id, token=qr["token"]
        ),
    )

    def receipt_issued() -> bool:
        brain_tx.submit(brain.tick, T0 + 25)  # event time passes the exit and its grace
        return len(ana.get("/me/receipts").json()) == 1

    assert wait_for(receipt_issued)
    assert ana.get("/me/visits").json()[0]["state"] == "closed"
    [receipt] = ana.get("/me/receipts").json()
    assert receipt["session_id"] == session_id and receipt["total_cents"] == 0
    # the other shopper sees none of it, even with the ids in hand
    assert bo.get("/me/visits").json() == [] and bo.get("/me/receipts").json() == []
    assert bo.get(f"/receipts/{receipt['id']}").status_code == 404
    brain_tx.submit(brain.close)
    brain_tx.close()
    ledger.close()
    accounts.close()
