"""Bad RFID input is counted and dead-lettered, and never opens a theft case on its own."""

from __future__ import annotations

import json
from pathlib import Path

from checkout.cases import CaseBook
from checkout.shrink import ShrinkService
from iot.bus import LocalTransport
from iot.epc import encode_sgtin96
from iot.payloads import DeadLetter
from iot.rfid import TagRead, encode_reads
from iot.rfid_adapter import RfidAdapter
from iot.store import load_store
from iot.topics import TOPICS

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1.8e9
TAGGED = next(i for i in STORE.catalog.items if i.rfid_tagged)


def test_malformed_lone_and_unknown_reads_open_no_case() -> None:
    transport = LocalTransport()
    clock = [T0]
    letters: list[DeadLetter] = []
    transport.subscribe(
        "smartstore/demo/+/+/deadletter",
        lambda t, d: letters.append(DeadLetter.model_validate_json(d)),
        1,
    )
    adapter = RfidAdapter(STORE, transport, now=lambda: clock[0])
    book = CaseBook(":memory:")
    shrink = ShrinkService(STORE, transport, book, now=lambda: clock[0])
    adapter.start()
    shrink.start()
    raw = TOPICS["rfid_raw"].topic("demo", "rfid-exit")
    tagged = encode_sgtin96(TAGGED.gtin, 4242)
    # not JSON; JSON with the wrong shape; one lone read on the street side
    transport.publish(raw, b"\x00{not json", 0, False)
    transport.publish(raw, json.dumps({"eventType": "tagInventory"}).encode(), 0, False)
    transport.publish(
        raw,
        encode_reads("impinj", [TagRead("rfid-exit", tagged, 2, -50.0, T0)], device_name="r"),
        0,
        False,
    )
    # a tag of no scheme we know, walked out properly (inner, then outer)
    unknown = "E2" + "0" * 22
    walk = [TagRead("rfid-exit", unknown, 1, -50.0, T0 + 0.1 * k) for k in range(4)]
    walk += [TagRead("rfid-exit", unknown, 2, -50.0, T0 + 0.5 + 0.1 * k) for k in range(4)]
    transport.publish(raw, encode_reads("impinj", walk, device_name="r"), 0, False)
    # an unknown reader floods the same read
    flood = encode_reads("impinj", [TagRead("rfid-x", tagged, 1, -40.0, T0)] * 200, device_name="x")
    transport.publish(TOPICS["rfid_raw"].topic("demo", "rfid-x"), flood, 0, False)
    for step in range(1, 60):
        clock[0] = T0 + step * 0.5
        adapter.tick(clock[0])
        shrink.tick(clock[0])
    assert book.queue() == []
    assert len(letters) >= 3
    stats = adapter.stats()
    assert stats.get("published", 0) == 1  # the unknown-scheme walk passes, as unknown
    assert shrink.stats()["findings"] == 0
    assert shrink.stats()["passages_unknown_product"] == 1
