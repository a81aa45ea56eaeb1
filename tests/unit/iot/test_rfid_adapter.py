"""RfidAdapter over an in-process bus: vendor JSON in, TagPassage out, garbage dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iot.bus import LocalTransport
from iot.payloads import DeadLetter, TagPassage
from iot.rfid import TagRead, encode_reads, impinj_event, zebra_event
from iot.rfid_adapter import RfidAdapter
from iot.rfid_gate import GateSettings
from iot.store import RfidReader, Store, load_store

T0 = 1.8e9
EPC = "3074257BF7194E4000001A85"  # urn:epc:id:sgtin:0614141.812345.6789
EPC2 = "3074257BF7194E4000001A86"
UNKNOWN_SCHEME = "E2801170000002154E8F1A2B"  # a TID-like value: no GS1 header
DL_TOPIC = "smartstore/demo/rfid/rfid-adapter/deadletter"
INNER, OUTER = 1, 2  # ports of both demo readers


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(Path(__file__).resolve().parents[3] / "stores" / "demo.yaml")


class Rig:
    """A LocalTransport, a started adapter and recorders for what it publishes."""

    def __init__(self, store: Store, settings: GateSettings | None = None) -> None:
        self.bus = LocalTransport()
        self.passages: list[TagPassage] = []
        self.topics: list[str] = []
        self.letters: list[DeadLetter] = []
        self.bus.subscribe("smartstore/demo/rfid/+/passages", self._passage)
        self.bus.subscribe(
            DL_TOPIC, lambda t, d: self.letters.append(DeadLetter.model_validate_json(d))
        )
        self.adapter = RfidAdapter(store, self.bus, now=lambda: T0, settings=settings)
        self.adapter.start()

    def _passage(self, topic: str, data: bytes) -> None:
        self.topics.append(topic)
        self.passages.append(TagPassage.model_validate_json(data))

    def send(self, reader: str, data: bytes) -> None:
        self.bus.publish(f"smartstore/demo/rfid/{reader}/raw", data)


def reads(reader: str, ports: list[int], t0_s: float = T0, epc: str = EPC) -> list[TagRead]:
    return [TagRead(reader, epc, p, -60.0 + k, t0_s + 0.1 * k) for k, p in enumerate(ports)]


def test_impinj_exit_walk_out_publishes_a_decoded_passage(store: Store) -> None:
    rig = Rig(store)
    walk = reads("rfid-exit", [INNER, INNER, INNER, OUTER, OUTER])
    rig.send("rfid-exit", encode_reads("impinj", walk, device_name="impinj-14-2b-6c"))
    assert rig.passages == []  # not quiet yet
    rig.adapter.tick(T0 + 0.4 + 0.999)
    assert rig.passages == []
    rig.adapter.tick(T0 + 0.4 + 1.0)
    (p,) = rig.passages
    assert rig.topics == ["smartstore/demo/rfid/rfid-exit/passages"]
    assert (p.direction, p.gate_id, p.device_id, p.zones) == (
        "out",
        "gate-out",
        "rfid-exit",
        ["inner", "outer"],
    )
    assert p.epc_uri == "urn:epc:id:sgtin:0614141.812345.6789" and p.gtin == "80614141123458"
    assert p.id == f"rfid-exit:{EPC}:{round(T0 * 1000)}"
    assert p.event_time_s == pytest.approx(T0 + 0.4) and p.first_seen_s == T0
    assert p.reads == 5 and p.peak_rssi_dbm == -56.0
    assert rig.letters == []


def test_zebra_entry_concatenated_message_walks_in(store: Store) -> None:
    rig = Rig(store)
    walk = reads("rfid-entry", [OUTER, OUTER, INNER, INNER])
    data = encode_reads("zebra", walk, device_name="84:24:8D:EE:20:31")
    assert data.count(b'{"type"') == 4 and b"\n" not in data
    rig.send("rfid-entry", data)
    rig.adapter.tick(T0 + 2.0)
    (p,) = rig.passages
    assert (p.direction, p.gate_id, p.device_id) == ("in", "gate-in", "rfid-entry")


def test_reads_advance_the_clock_without_ticks(store: Store) -> None:
    rig = Rig(store)
    rig.send(
        "rfid-exit", encode_reads("impinj", reads("rfid-exit", [INNER, OUTER]), device_name="h")
    )
    later = reads("rfid-exit", [INNER], t0_s=T0 + 1.5, epc=EPC2)
    rig.send("rfid-exit", encode_reads("impinj", later, device_name="h"))
    assert [p.epc_hex for p in rig.passages] == [EPC]


def test_unknown_epc_scheme_still_passes_undecoded(store: Store) -> None:
    rig = Rig(store)
    walk = reads("rfid-exit", [INNER, INNER, OUTER, OUTER], epc=UNKNOWN_SCHEME)
    rig.send("rfid-exit", encode_reads("impinj", walk, device_name="h"))
    rig.adapter.tick(T0 + 5.0)
    (p,) = rig.passages
    assert p.epc_hex == UNKNOWN_SCHEME and p.epc_uri is None and p.gtin is None
    assert rig.adapter.stats()["undecoded EPC"] == 1


def test_malformed_message_is_dead_lettered_and_changes_nothing(store: Store) -> None:
    rig = Rig(store)
    rig.send("rfid-entry", b'{"type":"SIMPLE","timestamp":"2027-01-15T08:00:00Z","data":{"idH')
    rig.send("rfid-exit", json.dumps({"eventType": "tagInventory"}).encode())
    rig.adapter.tick(T0 + 10.0)
    assert rig.passages == []
    assert [(lt.reason.split(":")[0], lt.topic) for lt in rig.letters] == [
        ("malformed JSON", "smartstore/demo/rfid/rfid-entry/raw"),
        ("missing field", "smartstore/demo/rfid/rfid-exit/raw"),
    ]
    assert "tagInventoryEvent is missing" in rig.letters[1].reason
    stats = rig.adapter.stats()
    assert stats["rejected malformed JSON"] == 1 and stats["rejected missing field"] == 1
    assert stats.get("reads", 0) == 0 and stats["tracked tags"] == 0


def test_one_bad_object_costs_only_itself(store: Store) -> None:
    rig = Rig(store)
    walk = reads("rfid-entry", [OUTER, OUTER, INNER, INNER])
    objs = [json.dumps(zebra_event(r, "mac", k)) for k, r in enumerate(walk)]
    bad = json.dumps({**zebra_event(walk[0], "mac", 9), "timestamp": "1970-01-01T00:00:00Z"})
    rig.send("rfid-entry", "".join([*objs[:2], bad, *objs[2:]]).encode())
    rig.adapter.tick(T0 + 2.0)
    assert [p.direction for p in rig.passages] == ["in"]
    (letter,) = rig.letters
    assert letter.reason.startswith("bad timestamp") and "1970" in letter.payload_excerpt
    assert "object 2" in letter.reason


def test_unknown_reader_is_refused(store: Store) -> None:
    rig = Rig(store)
    rig.send(
        "rfid-rogue", encode_reads("impinj", reads("rfid-rogue", [INNER, OUTER]), device_name="h")
    )
    rig.adapter.tick(T0 + 5.0)
    assert rig.passages == []
    assert [lt.reason for lt in rig.letters] == [
        "unknown device: reader 'rfid-rogue' is not in the store file"
    ]


def test_non_tag_events_are_skipped_and_counted(store: Store) -> None:
    rig = Rig(store)
    status = {"timestamp": "2027-01-15T08:00:00Z", "hostname": "h", "eventType": "inventoryStatus"}
    tag = impinj_event(reads("rfid-exit", [INNER])[0], "h")
    rig.send("rfid-exit", f"{json.dumps(status)}\n{json.dumps(tag)}".encode())
    stats = rig.adapter.stats()
    assert stats["skipped inventoryStatus"] == 1 and stats["reads"] == 1 and rig.letters == []


def test_resent_message_does_not_publish_twice_and_ids_are_deterministic(store: Store) -> None:
    data = encode_reads("impinj", reads("rfid-exit", [INNER, INNER, OUTER, OUTER]), device_name="h")
    rig = Rig(store)
    rig.send("rfid-exit", data)
    rig.adapter.tick(T0 + 2.0)
    rig.send("rfid-exit", data)  # the reader (or the broker) delivers it again
    rig.adapter.tick(T0 + 10.0)
    assert len(rig.passages) == 1
    assert rig.adapter.stats()["late read"] == 4
    again = Rig(store)  # a restarted adapter decides the same passage under the same id
    again.send("rfid-exit", data)
    again.adapter.tick(T0 + 2.0)
    assert again.passages == rig.passages


def test_flood_of_one_static_tag_publishes_nothing(store: Store) -> None:
    rig = Rig(store)
    for second in range(20):
        burst = [
            TagRead("rfid-exit", EPC, INNER if k % 7 else OUTER, -50.0, T0 + second + k / 50)
            for k in range(50)
        ]
        rig.send("rfid-exit", encode_reads("impinj", burst, device_name="h"))
        rig.adapter.tick(T0 + second + 1.0)
    assert rig.passages == []
    assert rig.adapter.stats()["static tag"] == 1


def test_reader_without_gate_is_known_but_not_gated(store: Store) -> None:
    shelf_reader = RfidReader(id="rfid-shelf", format="zebra")
    devices = store.devices.model_copy(
        update={"rfid_readers": [*store.devices.rfid_readers, shelf_reader]}
    )
    rig = Rig(store.model_copy(update={"devices": devices}))
    rig.send("rfid-shelf", encode_reads("zebra", reads("rfid-shelf", [1, 1]), device_name="m"))
    assert rig.letters == [] and rig.passages == []
    assert rig.adapter.stats()["messages from readers without a gate"] == 1


def test_start_is_idempotent(store: Store) -> None:
    rig = Rig(store)
    rig.adapter.start()
    rig.send(
        "rfid-exit", encode_reads("impinj", reads("rfid-exit", [INNER, OUTER]), device_name="h")
    )
    rig.adapter.tick(T0 + 5.0)
    assert len(rig.passages) == 1 and rig.adapter.stats()["messages"] == 1
