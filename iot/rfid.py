"""RFID readers' own JSON: parse it into validated ``TagRead``s, and write it back.

Two vendor formats arrive on ``smartstore/<store>/rfid/<reader>/raw``:

* **Impinj** (R700 IoT device interface): one event object, a JSON array of
  them, or newline-delimited events. Tag reads are ``eventType:
  "tagInventory"`` with a ``tagInventoryEvent`` holding the EPC (``epcHex``,
  or base64 ``epc``), ``antennaPort``, ``peakRssiCdbm`` (centi-dBm) and
  ``lastSeenTime``. Other event types (antenna connected, inventory status,
  diagnostics, overflow, ...) are not tags: they are skipped and counted.
* **Zebra** (FX readers' IoT Connector): ``{"type": "SIMPLE", "timestamp",
  "data": {"idHex", "antenna", "peakRssi" (dBm), "reads", ...}}``, several
  objects back to back with no delimiter, or an array.

Parsing never raises: every object that cannot be read becomes a
``ReadError`` with a short countable ``reason`` and a ``detail`` naming the
field and value, and the good objects around it are kept. Timestamps must
carry a UTC offset (a reader's local time is ambiguous) and lie in
2000..2100. ``impinj_event``/``zebra_event`` write the vendor shapes, for
tests and the digital twin.

>>> read = TagRead("rfid-exit", "3074257BF7194E4000001A85", 1, -52.5, 1.8e9)
>>> parse_impinj(json.dumps(impinj_event(read, "r700")).encode(), "rfid-exit").reads == [read]
True
>>> bad = parse_zebra(b'{"type": "SIMPLE", "data": {"antenna": 1}}{"type": "heartbeat"}', "r2")
>>> bad.reads, [str(e) for e in bad.errors], dict(bad.skipped)
([], ['object 0: missing EPC: data.idHex is missing'], {'type heartbeat': 1})
"""

from __future__ import annotations

import base64
import binascii
import calendar
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ParsedMessage",
    "ReadError",
    "ReaderFormat",
    "TagRead",
    "encode_reads",
    "format_timestamp",
    "impinj_event",
    "parse_impinj",
    "parse_reader_message",
    "parse_timestamp",
    "parse_zebra",
    "zebra_event",
]

ReaderFormat = Literal["impinj", "zebra"]

MAX_MESSAGE_BYTES = 1 << 20  # a reader batches tens of reads; a megabyte is garbage or an attack
MIN_TIME_S = 946_684_800.0  # 2000-01-01, the bounds of iot.payloads.EventTime
MAX_TIME_S = 4_102_444_800.0  # 2100-01-01
_EPC_HEX = re.compile(r"[0-9A-F]{16,64}")
_EXCERPT_CHARS = 300
_WORD = re.compile(r"[A-Za-z_]{1,24}")  # a vendor type name worth its own counter
_MAX_RESYNC_TRIES = 1000  # bounds the work one broken message can cost
# Impinj event types that are known not to be tag reads; anything else counts as "other".
_IMPINJ_NON_TAG = frozenset(
    {
        "antennaConnected",
        "antennaDisconnected",
        "inventoryStatus",
        "inventoryTerminated",
        "diagnostic",
        "overflow",
        "tagLocationEntry",
        "tagLocationUpdate",
        "tagLocationExit",
        "gpiTransitionEvent",
    }
)


@dataclass(frozen=True)
class TagRead:
    """One tag seen by one antenna of a reader: the unit every vendor format becomes.

    ``time_s`` is the reader's time of the read, Unix seconds; ``reads`` how
    many reads the reader folded into this report (Zebra reports a count).
    """

    reader_id: str
    epc_hex: str  # EPC bank, upper-case hex, 8..32 bytes
    antenna_port: int
    rssi_dbm: float
    time_s: float
    reads: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.reader_id, str) or not self.reader_id:
            raise ValueError(
                f"TagRead.reader_id must be a non-empty string, got {self.reader_id!r}"
            )
        if not isinstance(self.epc_hex, str) or not _EPC_HEX.fullmatch(self.epc_hex):
            raise ValueError(
                f"TagRead.epc_hex must be 16..64 upper-case hex digits, got {self.epc_hex!r}"
            )
        if len(self.epc_hex) % 2:
            raise ValueError(f"TagRead.epc_hex {self.epc_hex!r} is not whole bytes (odd length)")
        _check_int("antenna_port", self.antenna_port, 1, 64)
        _check_int("reads", self.reads, 1, 1_000_000)
        _check_number("rssi_dbm", self.rssi_dbm, -150.0, 50.0)
        _check_number("time_s", self.time_s, MIN_TIME_S, MAX_TIME_S)


@dataclass(frozen=True)
class ReadError:
    """Why one object of a message was not read; ``reason`` is short and countable."""

    index: int  # position of the object in the message, from 0
    reason: str
    detail: str
    excerpt: str  # the offending text, cut short

    def __str__(self) -> str:
        return f"object {self.index}: {self.reason}: {self.detail}"


@dataclass
class ParsedMessage:
    """What one reader message held: tag reads, refused objects, skipped non-tag events."""

    reads: list[TagRead] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


class _Bad(Exception):
    """Internal: one object cannot be read. Never leaves this module."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# --- parsing ---


def parse_reader_message(fmt: ReaderFormat, data: bytes, reader_id: str) -> ParsedMessage:
    """Parse one message in the reader's ``fmt``; never raises on bad data."""
    parse = parse_impinj if fmt == "impinj" else parse_zebra
    return parse(data, reader_id)


def parse_impinj(data: bytes, reader_id: str) -> ParsedMessage:
    """Impinj IoT device interface events: one, an array, or newline-delimited."""
    return _parse(data, reader_id, "eventType", _impinj_object)


def parse_zebra(data: bytes, reader_id: str) -> ParsedMessage:
    """Zebra IoT Connector tag data events: one, an array, or concatenated."""
    return _parse(data, reader_id, "type", _zebra_object)


_ObjectParser = Callable[[dict[str, Any], str], TagRead | str]


def _parse(data: bytes, reader_id: str, marker: str, one: _ObjectParser) -> ParsedMessage:
    out = ParsedMessage()
    if len(data) > MAX_MESSAGE_BYTES:
        detail = f"{len(data)} bytes, at most {MAX_MESSAGE_BYTES} accepted"
        out.errors.append(ReadError(0, "message too large", detail, ""))
        return out
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        detail = f"byte {exc.start} is not UTF-8; readers send UTF-8 JSON"
        out.errors.append(ReadError(0, "malformed JSON", detail, _excerpt(data)))
        return out
    for index, (value, excerpt) in enumerate(_json_values(text, marker)):
        try:
            if isinstance(value, _Bad):
                raise value
            if not isinstance(value, dict):
                raise _Bad("not an object", f"expected a JSON object, got {_kind(value)}")
            result = one(value, reader_id)
        except _Bad as bad:
            out.errors.append(ReadError(index, bad.reason, bad.detail, excerpt))
            continue
        if isinstance(result, str):
            out.skipped[result] += 1
        else:
            out.reads.append(result)
    return out


def _json_values(text: str, marker: str) -> Iterator[tuple[object, str]]:
    """Top-level JSON values of a stream (arrays flattened), each with its text.

    After a syntax error, skips ahead to the next object that decodes and
    has the format's ``marker`` key, so one broken object costs only itself.
    Once recovering, the commas and brackets of an array that broke are
    skipped between objects rather than reported again.
    """
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    pos, end = 0, len(text)
    between = _SPACE
    while (pos := _skip(text, pos, between)) < end:
        try:
            value, stop = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            where = exc.pos if isinstance(exc, json.JSONDecodeError) else pos
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or "too deep"
            resume = _resync(decoder, text, pos + 1, marker)
            skipped = text[pos:resume]
            # An array that broke further on loses only its opening bracket: not an object.
            if resume == end or skipped.strip(" \t\r\n,[]"):
                bad = _Bad("malformed JSON", f"at character {where}: {msg}")
                yield bad, skipped[:_EXCERPT_CHARS]
            pos, between = resume, _SPACE | _ARRAY_PUNCTUATION
            continue
        for item in value if isinstance(value, list) else [value]:
            yield item, text[pos:stop][:_EXCERPT_CHARS]
        pos = stop


def _resync(decoder: json.JSONDecoder, text: str, start: int, marker: str) -> int:
    tries = 0
    while (pos := text.find("{", start)) >= 0 and tries < _MAX_RESYNC_TRIES:
        tries += 1
        try:
            value, _ = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict) and marker in value:
            return pos
        start = pos + 1
    return len(text)


def _impinj_object(obj: dict[str, Any], reader_id: str) -> TagRead | str:
    event_type = _field(obj, "eventType", str, "")
    if event_type != "tagInventory":
        return event_type if event_type in _IMPINJ_NON_TAG else "other"
    ev = _field(obj, "tagInventoryEvent", dict, "")
    where = "tagInventoryEvent."
    if "epcHex" in ev:
        epc = _epc_from_hex(_field(ev, "epcHex", str, where), where + "epcHex")
    elif "epc" in ev:
        epc = _epc_from_base64(_field(ev, "epc", str, where))
    else:
        raise _Bad("missing EPC", "tagInventoryEvent has neither epcHex nor epc")
    port = _field(ev, "antennaPort", int, where)
    rssi_cdbm = _number(ev, "peakRssiCdbm", where)
    # lastSeenTime is when the tag was read; the event's own timestamp is when it was sent.
    if "lastSeenTime" in ev:
        when = _time_field(ev, "lastSeenTime", where)
    else:
        when = _time_field(obj, "timestamp", "")
    return _tag_read(
        reader_id, epc, port=port, rssi=rssi_cdbm / 100.0, when=when, reads=1, where=where
    )


def _zebra_object(obj: dict[str, Any], reader_id: str) -> TagRead | str:
    kind = _field(obj, "type", str, "")
    if kind != "SIMPLE":
        return f"type {kind}" if _WORD.fullmatch(kind) else "other"
    data = _field(obj, "data", dict, "")
    fmt = data.get("format", "epc")
    if fmt != "epc":  # e.g. a TID or user-memory report: not the item's identity
        return f"format {fmt}" if isinstance(fmt, str) and _WORD.fullmatch(fmt) else "other"
    if "idHex" not in data:
        raise _Bad("missing EPC", "data.idHex is missing")
    epc = _epc_from_hex(_field(data, "idHex", str, "data."), "data.idHex")
    port = _field(data, "antenna", int, "data.")
    rssi = _number(data, "peakRssi", "data.")
    reads = _field(data, "reads", int, "data.") if "reads" in data else 1
    when = _time_field(obj, "timestamp", "")
    return _tag_read(reader_id, epc, port=port, rssi=rssi, when=when, reads=reads, where="data.")


def _tag_read(
    reader_id: str, epc: str, *, port: int, rssi: float, when: float, reads: int, where: str
) -> TagRead:
    if not 1 <= port <= 64:
        raise _Bad("out of range", f"antenna port {port} is outside 1..64")
    if not -150.0 <= rssi <= 50.0:
        raise _Bad("out of range", f"{where} peak RSSI {rssi} dBm is outside -150..50")
    if not 1 <= reads <= 1_000_000:
        raise _Bad("out of range", f"{where}reads {reads} is outside 1..1000000")
    return TagRead(reader_id, epc, port, rssi, when, reads)


def _field(obj: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    if key not in obj:
        raise _Bad("missing field", f"{where}{key} is missing")
    value = obj[key]
    # bool is an int to Python, never to a reader; NaN cannot get here (parse_constant).
    if isinstance(value, bool) or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
        raise _Bad("wrong type", f"{where}{key} is {_kind(value)}, expected {names}")
    return value


def _number(obj: dict[str, Any], key: str, where: str) -> float:
    value = _field(obj, key, (int, float), where)
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits: JSON allows it, a float does not
        digits = len(str(abs(value)))
        raise _Bad("out of range", f"{where}{key} is an integer of {digits} digits") from None


def _time_field(obj: dict[str, Any], key: str, where: str) -> float:
    text = _field(obj, key, str, where)
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise _Bad("bad timestamp", f"{where}{key}: {exc}") from None


def _epc_from_hex(text: str, where: str) -> str:
    epc = text.strip().upper()
    if not _EPC_HEX.fullmatch(epc) or len(epc) % 2:
        raise _Bad("bad EPC", f"{where} {text[:80]!r} is not 16..64 hex digits in whole bytes")
    return epc


def _epc_from_base64(text: str) -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad("bad EPC", f"tagInventoryEvent.epc {text[:80]!r} is not base64") from None
    return _epc_from_hex(raw.hex(), "tagInventoryEvent.epc (decoded)")


# --- timestamps ---

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2})?)"
)


def parse_timestamp(text: str) -> float:
    """ISO-8601 date-time with a UTC offset (``Z``, ``+01:00``, ``+0000``) to Unix seconds.

    >>> parse_timestamp("2027-01-15T08:00:00.25+0100") - parse_timestamp("2027-01-15T07:00:00Z")
    0.25
    """
    m = _ISO.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text[:60]!r} is not an ISO-8601 date-time with a UTC offset "
            "(e.g. 2027-01-15T08:00:00.123Z)"
        )
    y, mo, d, h, mi, s, frac, zulu, sign, oh, om = m.groups()
    try:
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError as exc:
        raise ValueError(f"{text[:60]!r}: {exc}") from None
    offset_s = 0 if zulu else int(oh) * 3600 + int(om or 0) * 60
    if offset_s >= 24 * 3600 or int(om or 0) >= 60:
        raise ValueError(f"{text[:60]!r}: UTC offset out of range")
    if sign == "-":
        offset_s = -offset_s
    t = calendar.timegm(moment.timetuple()) - offset_s + (float("0." + frac) if frac else 0.0)
    if not MIN_TIME_S <= t <= MAX_TIME_S:
        raise ValueError(f"{text[:60]!r} is outside 2000..2100; is the reader's clock set?")
    return t


def format_timestamp(time_s: float, *, zulu: bool = True) -> str:
    """Unix seconds as ISO-8601 UTC with microseconds: ``...Z`` (Impinj) or ``...+0000`` (Zebra).

    >>> format_timestamp(1.8e9)
    '2027-01-15T08:00:00.000000Z'
    """
    micros = round(time_s * 1_000_000)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + ("Z" if zulu else "+0000")


# --- writers ---


def impinj_event(
    read: TagRead,
    hostname: str,
    *,
    frequency_khz: int = 920_250,
    transmit_power_cdbm: int = 3000,
) -> dict[str, Any]:
    """An Impinj ``tagInventory`` event for ``read`` (one read per event; ``reads`` is dropped)."""
    when = format_timestamp(read.time_s)
    return {
        "timestamp": when,
        "hostname": hostname,
        "eventType": "tagInventory",
        "tagInventoryEvent": {
            "epc": base64.b64encode(bytes.fromhex(read.epc_hex)).decode("ascii"),
            "epcHex": read.epc_hex,
            "antennaPort": read.antenna_port,
            "antennaName": f"Antenna {read.antenna_port}",
            "peakRssiCdbm": round(read.rssi_dbm * 100),
            "frequency": frequency_khz,
            "transmitPowerCdbm": transmit_power_cdbm,
            "lastSeenTime": when,
        },
    }


def zebra_event(read: TagRead, mac: str, event_num: int) -> dict[str, Any]:
    """A Zebra IoT Connector ``SIMPLE`` tag data event for ``read`` (RSSI in whole dBm)."""
    return {
        "type": "SIMPLE",
        "timestamp": format_timestamp(read.time_s, zulu=False),
        "data": {
            "MAC": mac,
            "antenna": read.antenna_port,
            "eventNum": event_num,
            "format": "epc",
            "idHex": read.epc_hex.lower(),
            "peakRssi": round(read.rssi_dbm),
            "reads": read.reads,
        },
    }


def encode_reads(
    fmt: ReaderFormat, reads: list[TagRead], *, device_name: str, first_event_num: int = 1
) -> bytes:
    """One message as the reader would send it: Impinj newline-delimited, Zebra back to back.

    ``device_name`` is the Impinj hostname or the Zebra MAC address.
    """
    if fmt == "impinj":
        lines = [json.dumps(impinj_event(r, device_name)) for r in reads]
        return "\n".join(lines).encode()
    events = [zebra_event(r, device_name, first_event_num + k) for k, r in enumerate(reads)]
    return "".join(json.dumps(e, separators=(",", ":")) for e in events).encode()


# --- small helpers ---


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"TagRead.{name} must be an integer in {lo}..{hi}, got {value!r}")


def _check_number(name: str, value: object, lo: float, hi: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise ValueError(f"TagRead.{name} must be a finite number in {lo}..{hi}, got {value!r}")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


_SPACE = frozenset(" \t\r\n")
_ARRAY_PUNCTUATION = frozenset(",[]")


def _skip(text: str, pos: int, chars: frozenset[str]) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _excerpt(data: bytes) -> str:
    return data[:_EXCERPT_CHARS].decode("utf-8", errors="replace")
