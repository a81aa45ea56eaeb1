"""Vendor reader JSON: Impinj and Zebra shapes in, TagReads out, garbage refused with a reason."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot.rfid import (
    MAX_MESSAGE_BYTES,
    TagRead,
    encode_reads,
    format_timestamp,
    impinj_event,
    parse_impinj,
    parse_reader_message,
    parse_timestamp,
    parse_zebra,
    zebra_event,
)

T0 = 1.8e9  # 2027-01-15T08:00:00Z
EPC = "3074257BF7194E4000001A85"
EPC2 = "3074257BF7194E4000001A86"


def impinj(**changes: Any) -> dict[str, Any]:
    """A real-shaped Impinj tagInventory event; ``changes`` edit tagInventoryEvent (None drops)."""
    ev: dict[str, Any] = {
        "epc": base64.b64encode(bytes.fromhex(EPC)).decode(),
        "epcHex": EPC,
        "pc": "3000",
        "antennaPort": 2,
        "antennaName": "Antenna 2",
        "peakRssiCdbm": -5650,
        "frequency": 920250,
        "transmitPowerCdbm": 3000,
        "lastSeenTime": "2027-01-15T08:00:00.250Z",
        "phaseAngle": 31.5,
    }
    for k, v in changes.items():
        if v is None:
            ev.pop(k, None)
        else:
            ev[k] = v
    return {
        "timestamp": "2027-01-15T08:00:00.300Z",
        "hostname": "impinj-14-2b-6c",
        "eventType": "tagInventory",
        "tagInventoryEvent": ev,
    }


def zebra(**changes: Any) -> dict[str, Any]:
    """A real-shaped Zebra IoT Connector SIMPLE event; ``changes`` edit data (None drops)."""
    data: dict[str, Any] = {
        "MAC": "84:24:8D:EE:20:31",
        "antenna": 1,
        "eventNum": 7,
        "format": "epc",
        "idHex": EPC.lower(),
        "peakRssi": -61,
        "reads": 3,
    }
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    return {"type": "SIMPLE", "timestamp": "2027-01-15T09:00:01.500+0100", "data": data}


def dump(*objs: object, sep: str = "") -> bytes:
    return sep.join(json.dumps(o) for o in objs).encode()


# --- Impinj ---


def test_impinj_event_becomes_a_tag_read() -> None:
    got = parse_impinj(dump(impinj()), "rfid-exit")
    assert got.errors == [] and not got.skipped
    assert got.reads == [TagRead("rfid-exit", EPC, 2, -56.5, T0 + 0.25)]


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\n\n", ""])
def test_impinj_newline_delimited_and_array(sep: str) -> None:
    second = impinj(epcHex=EPC2, lastSeenTime="2027-01-15T08:00:01Z")
    lines = parse_impinj(dump(impinj(), second, sep=sep), "r")
    array = parse_impinj(dump([impinj(), second]), "r")
    assert [r.epc_hex for r in lines.reads] == [EPC, EPC2] == [r.epc_hex for r in array.reads]
    assert lines.reads[1].time_s == T0 + 1.0


def test_impinj_base64_epc_when_no_hex_and_hex_preferred_when_both() -> None:
    only_b64 = parse_impinj(dump(impinj(epcHex=None)), "r").reads
    assert only_b64[0].epc_hex == EPC
    both = parse_impinj(dump(impinj(epcHex=EPC2.lower())), "r").reads
    assert both[0].epc_hex == EPC2  # epcHex wins over the base64 copy, and is upper-cased


def test_impinj_falls_back_to_event_timestamp() -> None:
    got = parse_impinj(dump(impinj(lastSeenTime=None)), "r").reads
    assert got[0].time_s == pytest.approx(T0 + 0.3)


def test_impinj_other_event_types_are_skipped_and_counted() -> None:
    others: list[dict[str, Any]] = [
        {"timestamp": "2027-01-15T08:00:00Z", "hostname": "h", "eventType": t, t: {}}
        for t in ("antennaConnected", "inventoryStatus", "overflow", "inventoryStatus", "xyz")
    ]
    got = parse_impinj(dump(*others, impinj(), sep="\n"), "r")
    assert len(got.reads) == 1 and got.errors == []
    assert got.skipped == {"antennaConnected": 1, "inventoryStatus": 2, "overflow": 1, "other": 1}


# --- Zebra ---


def test_zebra_event_becomes_a_tag_read() -> None:
    got = parse_zebra(dump(zebra()), "rfid-entry")
    assert got.reads == [TagRead("rfid-entry", EPC, 1, -61.0, T0 + 1.5, reads=3)]  # 09:00+01:00


def test_zebra_concatenated_without_delimiter_and_array() -> None:
    objs = [zebra(), zebra(idHex=EPC2, eventNum=8), zebra(antenna=2, eventNum=9)]
    glued = parse_zebra(b"".join(json.dumps(o, separators=(",", ":")).encode() for o in objs), "r")
    array = parse_zebra(dump(objs), "r")
    assert glued.reads == array.reads and len(glued.reads) == 3 and glued.errors == []
    assert [r.antenna_port for r in glued.reads] == [1, 1, 2]


def test_zebra_one_broken_object_does_not_lose_its_neighbours() -> None:
    good1, good2 = dump(zebra()), dump(zebra(idHex=EPC2))
    broken = b'{"type":"SIMPLE","timestamp":"2027-01-15T08:00:00Z","data":{"idHex":"30'
    got = parse_zebra(good1 + broken + good2, "r")
    assert [r.epc_hex for r in got.reads] == [EPC, EPC2]
    assert [e.reason for e in got.errors] == ["malformed JSON"]
    assert got.errors[0].index == 1 and got.errors[0].excerpt.startswith('{"type":"SIMPLE"')


def test_zebra_invalid_object_in_the_middle_keeps_the_others() -> None:
    got = parse_zebra(dump(zebra(), zebra(idHex="nothex"), zebra(idHex=EPC2)), "r")
    assert [r.epc_hex for r in got.reads] == [EPC, EPC2]
    assert [(e.index, e.reason) for e in got.errors] == [(1, "bad EPC")]


def test_zebra_non_tag_types_and_formats_are_skipped() -> None:
    heartbeat = {"type": "heartbeat", "timestamp": "2027-01-15T08:00:00Z", "data": {}}
    got = parse_zebra(dump(heartbeat, zebra(format="tid"), {"type": "x y"}, zebra()), "r")
    assert len(got.reads) == 1 and got.errors == []
    assert got.skipped == {"type heartbeat": 1, "format tid": 1, "other": 1}


def test_zebra_without_reads_counts_one() -> None:
    assert parse_zebra(dump(zebra(reads=None)), "r").reads[0].reads == 1


# --- refusals ---

BAD = [
    ("impinj", b"{not json", "malformed JSON", "at character 1"),
    ("impinj", b"\xff\xfe{}", "malformed JSON", "not UTF-8"),
    ("impinj", b"[1]", "not an object", "got int"),
    ("impinj", dump({"hostname": "h"}), "missing field", "eventType is missing"),
    ("impinj", dump({"eventType": 5}), "wrong type", "eventType is int, expected str"),
    ("impinj", dump({"eventType": "tagInventory"}), "missing field", "tagInventoryEvent"),
    ("impinj", dump(impinj(epcHex=None, epc=None)), "missing EPC", "neither epcHex nor epc"),
    ("impinj", dump(impinj(epcHex=None, epc="%%%")), "bad EPC", "not base64"),
    ("impinj", dump(impinj(epcHex="30ZZ")), "bad EPC", "epcHex '30ZZ'"),
    ("impinj", dump(impinj(epcHex="3074")), "bad EPC", "16..64 hex digits"),
    ("impinj", dump(impinj(epcHex=EPC + "0")), "bad EPC", "whole bytes"),
    ("impinj", dump(impinj(antennaPort="2")), "wrong type", "antennaPort is a string"),
    ("impinj", dump(impinj(antennaPort=True)), "wrong type", "antennaPort is bool"),
    ("impinj", dump(impinj(antennaPort=0)), "out of range", "antenna port 0"),
    ("impinj", dump(impinj(peakRssiCdbm=None)), "missing field", "peakRssiCdbm"),
    ("impinj", dump(impinj(peakRssiCdbm=90000)), "out of range", "peak RSSI 900.0 dBm"),
    ("impinj", b'{"eventType":"tagInventory","x":NaN}', "malformed JSON", "NaN"),
    ("impinj", dump(impinj(lastSeenTime="2027-01-15T08:00:00")), "bad timestamp", "UTC offset"),
    ("impinj", dump(impinj(lastSeenTime="1970-01-01T00:00:01Z")), "bad timestamp", "2000..2100"),
    ("impinj", dump(impinj(lastSeenTime="2027-02-30T00:00:00Z")), "bad timestamp", "day"),
    ("impinj", dump(impinj(lastSeenTime=1.8e9)), "wrong type", "lastSeenTime is float"),
    ("zebra", dump(zebra(idHex=None)), "missing EPC", "data.idHex is missing"),
    ("zebra", dump(zebra(antenna=None)), "missing field", "data.antenna is missing"),
    ("zebra", dump(zebra(peakRssi="-60")), "wrong type", "peakRssi is a string"),
    ("zebra", dump(zebra(reads=0)), "out of range", "reads 0"),
    ("zebra", dump({"type": "SIMPLE", "data": []}), "wrong type", "data is an array"),
    ("zebra", dump({**zebra(), "timestamp": "yesterday"}), "bad timestamp", "'yesterday'"),
    ("zebra", b'"SIMPLE"', "not an object", "got a string"),
    ("zebra", b"[[[" * 5000, "malformed JSON", ""),
]


@pytest.mark.parametrize(("fmt", "data", "reason", "detail"), BAD)
def test_malformed_input_is_refused_with_a_reason(
    fmt: str, data: bytes, reason: str, detail: str
) -> None:
    got = parse_reader_message(fmt, data, "r")  # type: ignore[arg-type]
    assert got.reads == []
    assert [e.reason for e in got.errors] == [reason]
    assert detail in got.errors[0].detail


def test_oversized_message_is_refused_without_parsing() -> None:
    got = parse_zebra(b" " * (MAX_MESSAGE_BYTES + 1), "r")
    assert [e.reason for e in got.errors] == ["message too large"]


def test_empty_message_has_nothing() -> None:
    got = parse_impinj(b"  \n", "r")
    assert got.reads == [] and got.errors == [] and not got.skipped


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    for fmt in ("impinj", "zebra"):
        got = parse_reader_message(fmt, data, "r")
        assert all(isinstance(r, TagRead) for r in got.reads)


@given(st.integers(0, 400), st.integers(0, 60), st.text(max_size=5))
def test_damage_costs_only_the_objects_it_touches(at: int, cut: int, junk: str) -> None:
    objs = [dump(zebra()), dump(zebra(idHex=EPC2)), dump(zebra(antenna=2, idHex=EPC2))]
    stream = b"".join(objs)
    damaged = stream[:at] + junk.encode() + stream[at + cut :]
    got = parse_zebra(damaged, "r")
    expected = parse_zebra(stream, "r").reads
    start = 0
    untouched = []
    for obj, read in zip(objs, expected, strict=True):
        end = start + len(obj)
        # Junk right before an object can swallow its start (an opened string); count it touched.
        if end <= at or start > at + cut or (start == at + cut and not junk):
            untouched.append(read)
        start = end
    assert len(got.reads) <= 3
    assert all(r in got.reads for r in untouched), (damaged, got)


# --- timestamps ---


@pytest.mark.parametrize(
    ("text", "seconds_after_t0"),
    [
        ("2027-01-15T08:00:00Z", 0.0),
        ("2027-01-15T08:00:00.5z", 0.5),
        ("2027-01-15T08:00:00.123456789Z", 0.123456789),
        ("2027-01-15T09:00:00+01:00", 0.0),
        ("2027-01-15T09:30:00+0130", 0.0),
        ("2027-01-15T00:00:00.25-0800", 0.25),
        ("2027-01-15 08:00:00+00", 0.0),
    ],
)
def test_timestamps_with_offsets(text: str, seconds_after_t0: float) -> None:
    assert parse_timestamp(text) == pytest.approx(T0 + seconds_after_t0, abs=1e-6)


@pytest.mark.parametrize(
    "text", ["2027-01-15T08:00:00", "2027-01-15", "15/01/2027 08:00Z", "2027-01-15T08:00:00+24:00"]
)
def test_timestamps_refused(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):  # the message quotes it
        parse_timestamp(text)


@given(st.integers(int(1e15), int(4e15)))
def test_format_then_parse_timestamp(micros: int) -> None:
    t = micros / 1e6
    assert parse_timestamp(format_timestamp(t)) == pytest.approx(t, abs=1e-6)
    assert parse_timestamp(format_timestamp(t, zulu=False)) == pytest.approx(t, abs=1e-6)


# --- TagRead and writers ---


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"reader_id": ""}, "reader_id"),
        ({"epc_hex": EPC.lower()}, "upper-case"),
        ({"epc_hex": EPC[:14]}, "16..64"),
        ({"epc_hex": EPC + "A"}, "odd length"),
        ({"antenna_port": 65}, "antenna_port"),
        ({"rssi_dbm": float("nan")}, "rssi_dbm"),
        ({"time_s": 0.0}, "time_s"),
        ({"reads": 0}, "reads"),
    ],
)
def test_tag_read_validates(kwargs: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {
        "reader_id": "r",
        "epc_hex": EPC,
        "antenna_port": 1,
        "rssi_dbm": -50.0,
        "time_s": T0,
        **kwargs,
    }
    with pytest.raises(ValueError, match=problem):
        TagRead(**args)


reads_strategy = st.builds(
    TagRead,
    reader_id=st.just("rfid-x"),
    epc_hex=st.binary(min_size=8, max_size=32).map(lambda b: b.hex().upper()),
    antenna_port=st.integers(1, 64),
    rssi_dbm=st.integers(-15000, 5000).map(lambda c: c / 100),
    time_s=st.integers(int(1e15), int(4e15)).map(lambda us: us / 1e6),
    reads=st.integers(1, 1000),
)


@given(reads_strategy)
def test_impinj_writer_round_trips(read: TagRead) -> None:
    (got,) = parse_impinj(dump(impinj_event(read, "r700")), "rfid-x").reads
    assert got.epc_hex == read.epc_hex and got.antenna_port == read.antenna_port
    assert got.rssi_dbm == pytest.approx(read.rssi_dbm) and got.reads == 1
    assert got.time_s == pytest.approx(read.time_s, abs=1e-6)


@given(reads_strategy)
def test_zebra_writer_round_trips(read: TagRead) -> None:
    (got,) = parse_zebra(dump(zebra_event(read, "84:24:8D:EE:20:31", 1)), "rfid-x").reads
    assert got.epc_hex == read.epc_hex and got.reads == read.reads
    assert got.rssi_dbm == round(read.rssi_dbm)  # Zebra reports whole dBm
    assert got.time_s == pytest.approx(read.time_s, abs=1e-6)


@pytest.mark.parametrize("fmt", ["impinj", "zebra"])
def test_encode_reads_as_the_reader_sends_them(fmt: str) -> None:
    reads = [TagRead("r", e, p, -50.0, T0 + k) for k, (e, p) in enumerate([(EPC, 1), (EPC2, 2)])]
    data = encode_reads(fmt, reads, device_name="dev")  # type: ignore[arg-type]
    got = parse_reader_message(fmt, data, "r")  # type: ignore[arg-type]
    assert got.reads == reads
    assert (b"\n" in data) == (fmt == "impinj")  # Zebra glues objects with no delimiter


def test_broken_array_reports_one_error_and_keeps_the_rest() -> None:
    good1, good2 = json.dumps(zebra()), json.dumps(zebra(idHex=EPC2))
    data = f'[{good1}, {{"type": "SIMPLE", "data": {{"idHex": 3 }}, {good2} ]'.encode()
    got = parse_zebra(data, "r")
    assert [e.reason for e in got.errors] == ["malformed JSON"]
    assert [r.epc_hex for r in got.reads] == [EPC, EPC2]
