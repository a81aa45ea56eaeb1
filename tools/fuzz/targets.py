"""Fuzz targets: every decoder of outside input, with the only outcomes it may have.

Each target takes raw bytes, feeds them to one decoder exactly as the
service would, and checks the decoder's contract: it raises nothing but its
documented error, and what it returns or refuses is consistent. A broken
contract raises ``AssertionError`` (or lets the unexpected exception out),
which is what atheris reports as a crash and Hypothesis as a failure.

========== ========================================== =======================
target     decoder                                    may raise
========== ========================================== =======================
bus        ``iot.bus.Inbox`` on every payload channel nothing (dead letters)
rfid       ``iot.rfid.parse_reader_message``          nothing (ReadErrors)
epc        ``iot.epc.decode_epc``                     ``EpcError``
store      ``iot.store.load_store``                   ``StoreFileError``
scenario   ``sim.scenario.load_scenario``             ``ScenarioFileError``
========== ========================================== =======================

The first input byte picks the channel (bus) or the reader format (rfid);
the rest is the message. ``tools/fuzz/run.py`` runs them under atheris;
``tests/unit/test_fuzz_targets.py`` runs them on their seeds and on bounded
Hypothesis input in every ``pytest`` run.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from iot.bus import MAX_PAYLOAD_BYTES, Inbox, LocalTransport
from iot.epc import EpcError, decode_epc, encode_sgtin96
from iot.payloads import DeadLetter, Event
from iot.rfid import ReaderFormat, TagRead, encode_reads, parse_reader_message
from iot.store import StoreFileError, load_store
from iot.topics import ANY, TOPICS, Channel
from sim.scenario import ScenarioFileError, load_scenario

__all__ = ["REPO", "TARGETS", "Target"]

REPO = Path(__file__).resolve().parents[2]
_T0 = 1_800_000_000.0
_DEVICE = "dev-1"
_STORE = "fz"
_PAYLOAD_CHANNELS: list[Channel] = [c for c in TOPICS.values() if c.model is not None]
_FORMATS: tuple[ReaderFormat, ...] = ("impinj", "zebra")
# Reasons an Inbox gives, and what must then be true of the message.
_REASONS = {"unknown topic", "payload too large", "malformed JSON", "invalid payload"}
_REASONS |= {"device mismatch", "unknown device", "duplicate id", "out of order"}


@dataclass(frozen=True)
class Target:
    """One decoder: ``check`` asserts its contract on one input; ``seeds`` are good inputs."""

    name: str
    what: str
    check: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


# --- bus: every payload channel through a real Inbox ---


def _check_bus(data: bytes) -> None:
    if not data:
        return
    channel = _PAYLOAD_CHANNELS[data[0] % len(_PAYLOAD_CHANNELS)]
    body = data[1:]
    assert channel.model is not None
    bus = LocalTransport()
    letters: list[bytes] = []
    own_letters = TOPICS["deadletter"].topic(_STORE, "fuzz", "fuzz")
    bus.subscribe(own_letters, lambda _t, d: letters.append(d))
    inbox = Inbox(bus, _STORE, service_kind="fuzz", service_id="fuzz", now=lambda: _T0)
    got: list[Event] = []
    kind = "shelf" if channel.kind == ANY else None
    inbox.on(channel, lambda m: got.append(m.payload), kind=kind)
    bus.publish(channel.topic(_STORE, _DEVICE, kind), body)

    assert sum(inbox.accepted.values()) + sum(inbox.rejected.values()) == 1, inbox.rejected
    try:
        expected: Event | None = channel.model.model_validate_json(body)
    except ValidationError:
        expected = None
    if got:
        assert expected is not None and got[0] == expected, (got, expected)
        again = channel.model.model_validate_json(got[0].model_dump_json())
        assert again == got[0], "an accepted payload does not round-trip"
        return
    (reason,) = inbox.rejected
    assert reason in _REASONS, reason
    assert len(letters) == 1, letters
    letter = DeadLetter.model_validate_json(letters[0])
    assert letter.reason.startswith(reason), letter.reason
    if reason == "payload too large":
        assert len(body) > MAX_PAYLOAD_BYTES
    elif reason == "malformed JSON":
        assert not _json_loads_ok(body), "refused as malformed JSON, but it parses"
    elif reason == "invalid payload":
        assert expected is None, "refused as invalid, but the model accepts it"
    elif reason == "device mismatch":
        assert expected is not None and expected.device_id != _DEVICE


def _json_loads_ok(body: bytes) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def _bus_seeds() -> list[bytes]:
    from iot.payloads import GateEntry, ShelfSamples, TrackBatch

    entry = GateEntry(id="e1", event_time_s=_T0, device_id=_DEVICE, token="tok-1")
    samples = ShelfSamples.model_validate(
        {
            "id": "b1",
            "event_time_s": _T0,
            "device_id": _DEVICE,
            "sample_rate_hz": 20.0,
            "plates": [{"plate_id": "g01-s1-p1", "weights_g": [5000.0, 5000.1]}],
        }
    )
    tracks = TrackBatch.model_validate(
        {
            "id": "t1",
            "event_time_s": _T0,
            "device_id": _DEVICE,
            "tracks": [{"track_id": "trk-1", "x_m": 1.0, "y_m": 2.0, "look": [0.5] * 4}],
        }
    )
    out = []
    for event in (entry, samples, tracks):
        index = next(i for i, c in enumerate(_PAYLOAD_CHANNELS) if c.model is type(event))
        out.append(bytes([index]) + event.model_dump_json().encode())
    return out


# --- rfid: readers' own JSON ---


def _check_rfid(data: bytes) -> None:
    if not data:
        return
    fmt = _FORMATS[data[0] % 2]
    parsed = parse_reader_message(fmt, data[1:], "reader-1")
    for read in parsed.reads:
        assert isinstance(read, TagRead) and read.reader_id == "reader-1"
    for err in parsed.errors:
        assert err.reason and err.detail and len(err.excerpt) <= 300, err
        assert str(err).startswith(f"object {err.index}: ")
    assert all(n > 0 and kind for kind, n in parsed.skipped.items())
    if parsed.reads:  # what was read, written back the reader's way, reads the same again
        again = parse_reader_message(fmt, encode_reads(fmt, parsed.reads, device_name="r"), "r")
        assert len(again.reads) == len(parsed.reads) and not again.errors, again.errors


def _rfid_seeds() -> list[bytes]:
    reads = [
        TagRead("reader-1", "3074257BF7194E4000001A85", 1, -52.5, _T0),
        TagRead("reader-1", "3074257BF7194E4000001A86", 2, -60.0, _T0 + 0.1, reads=3),
    ]
    out = [
        bytes([k]) + encode_reads(fmt, reads, device_name="r700") for k, fmt in enumerate(_FORMATS)
    ]
    out.append(b'\x00[{"eventType": "antennaConnected"}, {"eventType": "tagInventory"}]')
    out.append(b'\x01{"type": "SIMPLE", "data": {"antenna": 1}}{"type": "heartbeat"}')
    return out


# --- epc: the EPC bank's hex ---

_HEX = re.compile(r"[0-9A-Fa-f]+")


def _check_epc(data: bytes) -> None:
    text = data.decode("latin-1")
    try:
        epc = decode_epc(text)
    except EpcError as exc:
        assert str(exc), "an EpcError must say why"
        return
    assert _HEX.fullmatch(text) and epc.epc_hex == text.upper()
    assert epc.uri.startswith(f"urn:epc:id:{epc.kind}:") and 0 <= epc.filter_value <= 7
    if epc.scheme == "sgtin-96":  # the encoder inverts the decoder exactly
        assert epc.gtin is not None
        again = encode_sgtin96(epc.gtin, int(epc.serial), epc.filter_value, len(epc.company_prefix))
        assert again == epc.epc_hex, (again, epc)


def _epc_seeds() -> list[bytes]:
    # GS1 Tag Data Standard examples: SGTIN-96, SGTIN-198, SSCC-96, SGLN-96.
    return [
        b"3074257BF7194E4000001A85",
        b"3674257BF6B7A659B2C2BF1000000000000000000000000000",
        b"3174257BF4499602D2000000",
        b"3274257BF46072000000162E",
    ]


# --- store and scenario files ---

_WORKDIR: tempfile.TemporaryDirectory[str] | None = None


def _workdir() -> Path:
    """A folder shaped like the repo (scenarios/ beside stores/) for files under test."""
    global _WORKDIR  # noqa: PLW0603 - one folder for the whole run, made on first use
    if _WORKDIR is None:
        _WORKDIR = tempfile.TemporaryDirectory(prefix="smartstore-fuzz-")
        root = Path(_WORKDIR.name)
        (root / "scenarios").mkdir()
        (root / "stores").symlink_to(REPO / "stores", target_is_directory=True)
    return Path(_WORKDIR.name)


def _check_store(data: bytes) -> None:
    path = _workdir() / "scenarios" / "store.yaml"
    path.write_bytes(data)
    try:
        load_store(path)
    except StoreFileError as exc:
        _names_the_problem(str(exc), path, "store description")


def _check_scenario(data: bytes) -> None:
    path = _workdir() / "scenarios" / "scenario.yaml"
    path.write_bytes(data)
    try:
        load_scenario(path)
    except ScenarioFileError as exc:
        _names_the_problem(str(exc), path, "scenario")


def _names_the_problem(message: str, path: Path, what: str) -> None:
    first, *problems = message.splitlines()
    assert first.startswith(str(path)), message
    if f"invalid {what}" in first:  # a validation error: one line per bad field, with its path
        assert problems, message
        for line in problems:
            assert line.startswith("  - ") and ": " in line[4:], line


def _file_seeds(folder: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        return [p.read_bytes() for p in sorted((REPO / folder).glob("*.yaml"))]

    return seeds


def _store_seeds() -> list[bytes]:
    """The shipped stores, and the demo cut to one plate (1.4 kB parses 7x faster)."""
    demo = yaml.safe_load((REPO / "stores" / "demo.yaml").read_text(encoding="utf-8"))
    gondola = demo["gondolas"][0]
    shelf = gondola["shelves"][0]
    gondola = gondola | {"shelves": [shelf | {"plates": shelf["plates"][:1]}]}
    entry = next(e for e in demo["planogram"] if e["plate"] == shelf["plates"][0]["id"])
    devices = demo["devices"]
    small = demo | {
        "gondolas": [gondola],
        "planogram": [entry],
        "catalog": demo["catalog"]
        | {"items": [i for i in demo["catalog"]["items"] if i["sku"] == entry["sku"]]},
        "devices": {
            "shelf_controllers": [
                c for c in devices["shelf_controllers"] if c["gondola"] == gondola["id"]
            ],
            "rfid_readers": devices["rfid_readers"][:1],
        },
    }
    return [yaml.safe_dump(small, sort_keys=False).encode(), *_file_seeds("stores")()]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("bus", "every payload channel through iot.bus.Inbox", _check_bus, _bus_seeds),
        Target("rfid", "Impinj/Zebra reader JSON (iot.rfid)", _check_rfid, _rfid_seeds),
        Target("epc", "EPC hex decoding (iot.epc)", _check_epc, _epc_seeds),
        Target("store", "store files (iot.store.load_store)", _check_store, _store_seeds),
        Target(
            "scenario",
            "scenario files (sim.scenario.load_scenario)",
            _check_scenario,
            _file_seeds("scenarios"),
        ),
    )
}
