"""Store operations on Mosquitto: a stock-out alert and a theft case cross a real broker.

The services run on their own serialised connection, as ``smartstore demo``
wires them; a watcher subscribes like a manager's dashboard would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from waiting import wait_for

from iot.bus import SerialTransport, publish
from iot.epc import encode_sgtin96
from iot.mqtt import MqttTransport
from iot.payloads import Alert, CaseEvent, ShelfEvent
from iot.rfid import TagRead, encode_reads
from iot.store import parse_store
from iot.topics import TOPICS
from smartstore.operations import StoreOperations

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_url", ["mosquitto"], indirect=True),
]

T0 = 1.8e9
STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"


def test_a_stock_out_alert_and_a_theft_case_over_mosquitto(
    clients: Callable[[str], MqttTransport], sid: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(STORE_FILE.read_text(encoding="utf-8"))
    data["store_id"] = sid
    store = parse_store(data, "demo copy")
    ops_tx = SerialTransport(clients("ops"), "ops")
    shelf, reader, watch = clients("shelf-g01"), clients("rfid-exit"), clients("watch")
    alerts: list[Alert] = []
    cases: list[CaseEvent] = []
    watch.subscribe(
        TOPICS["alerts"].filter(sid), lambda t, d: alerts.append(Alert.model_validate_json(d)), 1
    )
    watch.subscribe(
        TOPICS["cases"].filter(sid), lambda t, d: cases.append(CaseEvent.model_validate_json(d)), 1
    )
    clock = [T0]
    ops = StoreOperations(store, ops_tx, tmp_path / "ops.sqlite", now=lambda: clock[0])
    ops_tx.submit(ops.start)
    entry = store.planogram[0]
    ops_tx.submit(ops.count_shelves, [entry.model_copy(update={"initial_units": 2})], T0)
    ops_tx.drain()
    # the last two units leave the plate: a stock-out
    for k in range(2):
        publish(
            shelf,
            sid,
            ShelfEvent(
                id=f"shelf-g01.e{k}",
                event_time_s=T0 + 10 + k,
                device_id="shelf-g01",
                plate_id=entry.plate,
                action="pick",
                delta_g=-store.items[entry.sku].unit_weight_g,
                started_s=T0 + 9 + k,
                sku=entry.sku,
                quantity=1,
                confidence=0.95,
                noise_g=2.0,
            ),
        )
    assert wait_for(lambda: any(a.kind == "stockout" for a in alerts)), alerts
    out = next(a for a in alerts if a.kind == "stockout")
    assert (out.plate_id, out.sku, out.units, out.state) == (entry.plate, entry.sku, 0, "raised")
    # a tagged unit walks out of the exit with no visit: a theft case
    tagged = next(i for i in store.catalog.items if i.rfid_tagged)
    epc = encode_sgtin96(tagged.gtin, 7)
    reads = [
        TagRead("rfid-exit", epc, p, -55.0, T0 + 20 + 0.2 * k) for k, p in enumerate([1, 1, 2, 2])
    ]
    reader.publish(
        TOPICS["rfid_raw"].topic(sid, "rfid-exit"),
        encode_reads("impinj", reads, device_name="r"),
        1,
        False,
    )
    time.sleep(0.3)
    clock[0] = T0 + 23
    ops_tx.submit(ops.tick, T0 + 23)
    assert wait_for(lambda: any(c.rule == "tagged_item_unpaid" for c in cases)), cases
    case = next(c for c in cases if c.rule == "tagged_item_unpaid")
    assert (case.epc_hex, case.sku, case.state, case.category) == (epc, tagged.sku, "new", "theft")
    ops_tx.submit(ops.close)
    ops_tx.drain()
    ops_tx.close()
