"""The RFID adapter on Mosquitto: real-format reader bytes in, TagPassage and dead letters out.

Each test has its own store id and client ids, so runs against the shared
Mosquitto do not see each other's messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from waiting import wait_for

from iot.bus import SerialTransport
from iot.mqtt import MqttTransport
from iot.payloads import DeadLetter, TagPassage
from iot.rfid import TagRead, encode_reads
from iot.rfid_adapter import RfidAdapter
from iot.store import parse_store
from iot.topics import TOPICS

# conftest's broker_url, narrowed to Mosquitto (it skips, or fails under CI, when none runs).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_url", ["mosquitto"], indirect=True),
]

T0 = 1.8e9
STORE_FILE = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"
EPC_OUT = "3074257BF7194E4000001A85"  # urn:epc:id:sgtin:0614141.812345.6789
EPC_IN = "3674257BF6B7A659B2C2BF1000000000000000000000000000"  # ...712345.32a%2Fb


def walk(reader: str, epc: str, ports: list[int]) -> list[TagRead]:
    return [TagRead(reader, epc, p, -58.0 + k, T0 + 0.15 * k) for k, p in enumerate(ports)]


def test_passages_and_dead_letters_over_mosquitto(
    clients: Callable[[str], MqttTransport], sid: str
) -> None:
    data = yaml.safe_load(STORE_FILE.read_text(encoding="utf-8"))
    data["store_id"] = sid
    store = parse_store(data, "demo copy")
    edge = SerialTransport(clients("rfid-adapter"), "rfid-adapter")
    exit_reader, entry_reader, watch = clients("rfid-exit"), clients("rfid-entry"), clients("w")
    passages: list[TagPassage] = []
    letters: list[DeadLetter] = []
    watch.subscribe(
        TOPICS["tag_passages"].filter(sid),
        lambda t, d: passages.append(TagPassage.model_validate_json(d)),
        1,
    )
    watch.subscribe(
        f"smartstore/{sid}/rfid/rfid-adapter/deadletter",
        lambda t, d: letters.append(DeadLetter.model_validate_json(d)),
        1,
    )
    adapter = RfidAdapter(store, edge, now=time.time)
    adapter.start()

    def stats() -> dict[str, int]:  # read on the adapter's own thread: no race with it
        box: list[dict[str, int]] = []
        edge.submit(lambda: box.append(adapter.stats()))
        edge.drain()
        return box[0]

    raw = TOPICS["rfid_raw"]
    # Impinj: newline-delimited tagInventory events, inner then outer: out.
    out_walk = walk("rfid-exit", EPC_OUT, [1, 1, 1, 2, 2])
    impinj = encode_reads("impinj", out_walk, device_name="impinj-14-2b-6c")
    exit_reader.publish(raw.topic(sid, "rfid-exit"), impinj, 1, False)
    # Zebra: objects back to back with no delimiter, outer then inner: in.
    in_walk = walk("rfid-entry", EPC_IN, [2, 2, 1, 1])
    zebra = encode_reads("zebra", in_walk, device_name="84:24:8D:EE:20:31")
    assert zebra.count(b"}{") == 3
    entry_reader.publish(raw.topic(sid, "rfid-entry"), zebra, 1, False)
    broken = b'{"type":"SIMPLE","timestamp":"2027-01-15T08:00:00Z","data":{"idHex":'
    entry_reader.publish(raw.topic(sid, "rfid-entry"), broken, 1, False)
    assert wait_for(lambda: stats().get("messages", 0) == 3), stats()
    assert passages == []  # nothing is decided before the tags have gone quiet

    edge.submit(adapter.tick, T0 + 3.0)
    assert wait_for(lambda: len(passages) == 2 and len(letters) == 1), (passages, letters)
    by_dir = {p.direction: p for p in passages}
    assert by_dir["out"].epc_uri == "urn:epc:id:sgtin:0614141.812345.6789"
    assert by_dir["out"].gtin == "80614141123458" and by_dir["out"].gate_id == "gate-out"
    assert by_dir["in"].epc_uri == "urn:epc:id:sgtin:0614141.712345.32a%2Fb"
    assert by_dir["in"].gate_id == "gate-in" and by_dir["in"].zones == ["outer", "inner"]
    (letter,) = letters
    assert letter.reason.startswith("malformed JSON")
    assert letter.topic == raw.topic(sid, "rfid-entry")
    assert letter.payload_excerpt == broken.decode()
    final = stats()
    assert final["published"] == 2 and final["rejected malformed JSON"] == 1
    edge.close()
