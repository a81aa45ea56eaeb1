"""GS1 EPCIS 2.0 JSON-LD export of the store's sales, inventory and shrink events.

Trading partners, auditors and brand owners read stock movements as EPCIS
events, not as our bus payloads. This module turns our events into EPCIS 2.0
``ObjectEvent`` dicts (JSON-LD, with the CBV 2.0 short names such as
``retail_selling``) and wraps them in an ``EPCISDocument``. Everything is a
pure function of the events and the store file: the event time comes from the
events, the ``eventID`` is a name-based UUID of our own id, and the event list
is sorted and de-duplicated, so exporting the same events twice gives the same
document, byte for byte once dumped with sorted keys.

========================  =================  ====================  ========
our event                 bizStep            disposition           action
========================  =================  ====================  ========
Receipt (its lines)       retail_selling     retail_sold           OBSERVE
TagPassage                entering_exiting   (none)                OBSERVE
PlateCount                cycle_counting     sellable_accessible   OBSERVE
ShelfEvent "put" restock  stocking           sellable_accessible   OBSERVE
CaseEvent confirmed_theft (none)             stolen                OBSERVE
StockLoss damaged         inspecting         damaged               OBSERVE
StockLoss expired         inspecting         expired               OBSERVE
StockLoss destroyed       destroying         destroyed             DELETE
========================  =================  ====================  ========

Locations are SGLNs built from the store's GLN
(``urn:epc:id:sgln:<company prefix>.<location ref>.<extension>``): the
extension names the gate or plate, ``0`` the store itself. Serialised items
(RFID-tagged) go in ``epcList`` as pure-identity URIs; untagged SKUs go in
``quantityList`` under the class of their GTIN
(``urn:epc:idpat:sgtin:<company prefix>.<indicator+item ref>.*``).

Assumption: a GTIN carries no mark of where its company prefix ends, so the
split uses the store's ``gln_company_prefix_digits`` for every product. That
is right for goods labelled under the retailer's own prefix (as in the demo
store); a product of another brand owner with a different prefix length gets
a class URI with the split in the wrong place (same 13 digits, wrong dot).

>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> sgln(store, "gate-out")
'urn:epc:id:sgln:4006380.00001.gate-out'
>>> class_uri(store, "SKU001")
'urn:epc:idpat:sgtin:4006380.000001.*'
>>> count = PlateCount(id="c-1", event_time_s=1.8e9, plate_id="g01-s1-p1",
...                    units_by_sku={"SKU001": 7})
>>> doc = epcis_document([count], store=store, created_s=1.8e9 + 60)
>>> event = doc["epcisBody"]["eventList"][0]
>>> event["eventTime"], event["bizStep"], event["quantityList"][0]["quantity"]
('2027-01-15T08:00:00.000Z', 'cycle_counting', 7)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from iot.payloads import CaseEvent, EventTime, Id, Receipt, ShelfEvent, TagPassage
from iot.store import Store

__all__ = [
    "EPCIS_CONTEXT",
    "UTC_OFFSET",
    "Exportable",
    "LossKind",
    "PlateCount",
    "StockLoss",
    "class_uri",
    "epcis_document",
    "epcis_time",
    "loss_event",
    "object_events",
    "passage_event",
    "raw_epc_uri",
    "sale_event",
    "sgln",
    "stock_count_event",
    "stocking_event",
    "theft_event",
]

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
UTC_OFFSET = "+00:00"
# Fixed namespace of our name-based event ids: changing it changes every exported eventID.
_EVENT_ID_NAMESPACE = uuid.UUID("088e1981-5fdb-4b8b-9d9e-9f31c38c0097")
# The offset pattern of the EPCIS 2.0 JSON schema (up to 14:00 either way).
_OFFSET = re.compile(r"[+-]((0\d|1[0-3]):[0-5]\d|14:00)")
# GS1 AI encodable character set 82 (TDS): what an SGLN extension (AI 254) may hold.
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+")
# Of those, the characters the pure-identity URI must percent-escape (TDS).
_URI_ESCAPES = {c: f"%{ord(c):02X}" for c in '"%&/<>?'}
_EXTENSION_MAX_CHARS = 20

LossKind = Literal["damaged", "expired", "destroyed"]
# CBV 2.0: a damaged or expired unit is found on inspection and stays in the
# store (not sellable); a destroyed one ends its life, so the event deletes it.
_LOSS_VOCABULARY: dict[str, tuple[str, str, str]] = {
    "damaged": ("inspecting", "damaged", "OBSERVE"),
    "expired": ("inspecting", "expired", "OBSERVE"),
    "destroyed": ("destroying", "destroyed", "DELETE"),
}

Units = Annotated[int, Field(ge=0, le=1_000_000)]


class PlateCount(BaseModel):
    """A stock count of one plate: the units of each SKU found on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id = Field(description="Unique id of the count; the eventID is derived from it.")
    event_time_s: EventTime = Field(description="When the plate was counted, Unix seconds.")
    plate_id: Id = Field(description="The counted plate.")
    units_by_sku: dict[Id, Units] = Field(
        min_length=1, description="Units found per SKU (0 for a SKU counted and not found)."
    )


class StockLoss(BaseModel):
    """Units written off for an operations reason (damage, expiry, destruction), not theft."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id = Field(description="Unique id of the write-off; the eventID is derived from it.")
    event_time_s: EventTime = Field(description="When the loss was found, Unix seconds.")
    sku: Id
    units: int = Field(ge=1, le=1_000_000, description="Units written off.")
    kind: LossKind = Field(description="CBV disposition the units end in.")
    plate_id: Id | None = Field(default=None, description="Where they were found, if known.")


Exportable = Receipt | TagPassage | PlateCount | ShelfEvent | CaseEvent | StockLoss


# --- identifiers ---


def epcis_time(t_s: float) -> str:
    """Unix seconds as an EPCIS time: ISO 8601 in UTC, to the millisecond.

    >>> epcis_time(1.8e9 + 0.25)
    '2027-01-15T08:00:00.250Z'
    """
    ms = round(t_s * 1000)
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _gln_parts(store: Store) -> tuple[str, str]:
    if store.gln is None:
        raise ValueError(
            f"store {store.store_id!r} has no gln, so its EPCIS events have no location; "
            "add the store's 13-digit GLN as `gln:` to the store file"
        )
    cp = store.gln_company_prefix_digits
    return store.gln[:cp], store.gln[cp:12]


def sgln(store: Store, extension: str | None = None) -> str:
    """The SGLN URI of the store (no extension) or of a place in it (a gate or plate id).

    The extension must be 1-20 characters of GS1's character set 82 (TDS);
    the characters that URIs reserve are percent-escaped.
    """
    company_prefix, location_ref = _gln_parts(store)
    if extension is None:
        return f"urn:epc:id:sgln:{company_prefix}.{location_ref}.0"
    if (
        extension == "0"
        or len(extension) > _EXTENSION_MAX_CHARS
        or not _CSET82.fullmatch(extension)
    ):
        raise ValueError(
            f"{extension!r} cannot name a place in store {store.store_id!r} as an SGLN "
            f"extension: it must be 1-{_EXTENSION_MAX_CHARS} characters of GS1's set 82 "
            "(letters, digits and !\"%&'()*+,-./:;<=>?_), and not '0' (the store itself); "
            "rename the gate or plate in the store file"
        )
    escaped = "".join(_URI_ESCAPES.get(c, c) for c in extension)
    return f"urn:epc:id:sgln:{company_prefix}.{location_ref}.{escaped}"


def class_uri(store: Store, sku: str) -> str:
    """The EPC class (SGTIN pattern) of a SKU's GTIN, for ``quantityList``.

    The company prefix is assumed as long as the store's (see the module note).
    """
    item = store.items.get(sku)
    if item is None:
        raise ValueError(
            f"SKU {sku!r} is not in the catalog of store {store.store_id!r}, so it has no "
            "GTIN to export; add it to the catalog or drop the event"
        )
    cp = store.gln_company_prefix_digits
    gtin = item.gtin
    # GTIN-14: indicator, company prefix, item reference, check digit. The
    # indicator moves in front of the item reference; the check digit is dropped.
    return f"urn:epc:idpat:sgtin:{gtin[1 : 1 + cp]}.{gtin[0]}{gtin[1 + cp : 13]}.*"


def raw_epc_uri(epc_hex: str) -> str:
    """The TDS raw URI of an EPC whose scheme we cannot decode: its length in bits and hex.

    >>> raw_epc_uri("3074257BF7194E4000001A85")
    'urn:epc:raw:96.x3074257BF7194E4000001A85'
    """
    if not re.fullmatch(r"[0-9A-F]+", epc_hex):
        raise ValueError(f"EPC {epc_hex!r} is not upper-case hex; pass the EPC bank as read")
    return f"urn:epc:raw:{len(epc_hex) * 4}.x{epc_hex}"


def _event_id(store: Store, kind: str, key: str) -> str:
    """A name-based UUID URN: the same store, kind and id always give the same eventID."""
    return "urn:uuid:" + str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{store.store_id}/{kind}/{key}"))


# --- event builders ---


def _object_event(
    store: Store, kind: str, key: str, time_s: float, time_zone_offset: str
) -> dict[str, Any]:
    """The fields every exported event starts with, in the order EPCIS examples use."""
    if not _OFFSET.fullmatch(time_zone_offset):
        raise ValueError(
            f"time zone offset {time_zone_offset!r} is not of the form +HH:MM or -HH:MM "
            "up to 14:00; pass e.g. '+01:00'"
        )
    return {
        "type": "ObjectEvent",
        "eventID": _event_id(store, kind, key),
        "eventTime": epcis_time(time_s),
        "eventTimeZoneOffset": time_zone_offset,
    }


def _quantities(store: Store, units_by_sku: Mapping[str, int]) -> list[dict[str, Any]]:
    """Class-level quantities, one per EPC class, sorted so the output is canonical."""
    by_class: dict[str, int] = {}
    for sku, units in units_by_sku.items():
        epc_class = class_uri(store, sku)
        by_class[epc_class] = by_class.get(epc_class, 0) + units
    # Discrete units: EPCIS leaves out ``uom`` for a count of items.
    return [{"epcClass": c, "quantity": by_class[c]} for c in sorted(by_class)]


def _plate_sgln(store: Store, plate_id: str) -> str:
    if plate_id not in store.plates():
        raise ValueError(
            f"plate {plate_id!r} is not in store {store.store_id!r}; "
            "export with the store file the event was recorded under"
        )
    return sgln(store, plate_id)


def sale_event(
    receipt: Receipt, *, store: Store, time_zone_offset: str = UTC_OFFSET
) -> dict[str, Any]:
    """A receipt's lines sold, at the time the shopper walked out.

    A receipt knows SKUs, not serials, so every line is class-level; the
    serials of tagged units are in the exit's passage events.
    """
    if not receipt.lines:
        raise ValueError(f"receipt {receipt.id!r} has no lines: nothing was sold to export")
    units: dict[str, int] = {}
    for line in receipt.lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    event = _object_event(store, "sale", receipt.id, receipt.exited_s, time_zone_offset)
    event |= {
        "quantityList": _quantities(store, units),
        "action": "OBSERVE",
        "bizStep": "retail_selling",
        "disposition": "retail_sold",
        # Sold goods leave with the shopper: a read point, no business location after.
        "readPoint": {"id": sgln(store)},
    }
    return event


def passage_event(
    passage: TagPassage, *, store: Store, time_zone_offset: str = UTC_OFFSET
) -> dict[str, Any]:
    """A tagged unit through a gate; going out, it has no business location afterwards."""
    gates = [g.id for g in store.floor.gates]
    if passage.gate_id not in gates:
        raise ValueError(
            f"tag passage {passage.id!r} names gate {passage.gate_id!r}, not one of "
            f"store {store.store_id!r}'s gates {gates}; export with the matching store file"
        )
    epc = passage.epc_uri or raw_epc_uri(passage.epc_hex)
    event = _object_event(store, "passage", passage.id, passage.event_time_s, time_zone_offset)
    # No disposition: whether a unit going out was paid is the sale's or the case's to say.
    event |= {
        "epcList": [epc],
        "action": "OBSERVE",
        "bizStep": "entering_exiting",
        "readPoint": {"id": sgln(store, passage.gate_id)},
    }
    if passage.direction == "in":
        event["bizLocation"] = {"id": sgln(store)}
    return event


def stock_count_event(
    count: PlateCount, *, store: Store, time_zone_offset: str = UTC_OFFSET
) -> dict[str, Any]:
    """A cycle count of one plate, each SKU's units as a class-level quantity."""
    place = {"id": _plate_sgln(store, count.plate_id)}
    event = _object_event(store, "count", count.id, count.event_time_s, time_zone_offset)
    event |= {
        "quantityList": _quantities(store, count.units_by_sku),
        "action": "OBSERVE",
        "bizStep": "cycle_counting",
        "disposition": "sellable_accessible",
        "readPoint": place,
        "bizLocation": place,
    }
    return event


def stocking_event(
    put: ShelfEvent, *, store: Store, time_zone_offset: str = UTC_OFFSET
) -> dict[str, Any]:
    """Units put on a plate by staff restocking it.

    The caller decides that a put is a restock: a shopper's put-back is a put
    too, and is no stocking.
    """
    if put.action != "put":
        raise ValueError(
            f"shelf event {put.id!r} is a {put.action!r}; only a staff 'put' is a restock"
        )
    place = {"id": _plate_sgln(store, put.plate_id)}
    event = _object_event(store, "stocking", put.id, put.event_time_s, time_zone_offset)
    event |= {
        "quantityList": _quantities(store, {put.sku: put.quantity}),
        "action": "OBSERVE",
        "bizStep": "stocking",
        "disposition": "sellable_accessible",
        "readPoint": place,
        "bizLocation": place,
    }
    return event


def theft_event(
    case: CaseEvent,
    *,
    store: Store,
    epc_uri: str | None = None,
    time_zone_offset: str = UTC_OFFSET,
) -> dict[str, Any]:
    """A case confirmed as theft: the unit is stolen, as of the incident.

    The EPC when the case has one (``epc_uri`` if the caller decoded it, else
    the raw URI of ``epc_hex``), else one unit of the case's SKU. The eventID
    comes from the case id, so each update of a confirmed case exports once.
    """
    if case.state != "confirmed_theft":
        raise ValueError(
            f"case {case.case_id!r} is {case.state!r}; only a case confirmed as theft "
            "is a stolen unit to export"
        )
    event = _object_event(store, "theft", case.case_id, case.incident_s, time_zone_offset)
    if case.epc_hex is not None:
        event["epcList"] = [epc_uri or raw_epc_uri(case.epc_hex)]
    elif case.sku is not None:
        event["quantityList"] = _quantities(store, {case.sku: 1})
    else:
        raise ValueError(
            f"case {case.case_id!r} names neither an EPC nor a SKU, so there is no stolen "
            "object to export; add the evidence's sku or epc_hex to the case"
        )
    where = sgln(store) if case.plate_id is None else _plate_sgln(store, case.plate_id)
    # CBV has no business step for a theft; the disposition says it all.
    event |= {"action": "OBSERVE", "disposition": "stolen", "readPoint": {"id": where}}
    return event


def loss_event(
    loss: StockLoss, *, store: Store, time_zone_offset: str = UTC_OFFSET
) -> dict[str, Any]:
    """Units written off for damage, expiry or destruction (CBV vocabulary in the table above)."""
    biz_step, disposition, action = _LOSS_VOCABULARY[loss.kind]
    where = sgln(store) if loss.plate_id is None else _plate_sgln(store, loss.plate_id)
    event = _object_event(store, "loss", loss.id, loss.event_time_s, time_zone_offset)
    event |= {
        "quantityList": _quantities(store, {loss.sku: loss.units}),
        "action": action,
        "bizStep": biz_step,
        "disposition": disposition,
        "readPoint": {"id": where},
    }
    if action != "DELETE":
        # Damaged or expired units are still in the store, out of sale.
        event["bizLocation"] = {"id": sgln(store)}
    return event


def object_events(
    event: Exportable, *, store: Store, time_zone_offset: str = UTC_OFFSET
) -> list[dict[str, Any]]:
    """The EPCIS events of one of ours: one, or none for a receipt with no lines.

    Raises ValueError for what is no stock movement to export (a case not
    confirmed as theft, a shelf 'pick'): filter those out first. A confirmed
    case's EPC goes out as a raw URI here; call ``theft_event`` with
    ``epc_uri`` to give its decoded pure-identity URI.
    """
    tz = time_zone_offset
    if isinstance(event, Receipt):
        return [sale_event(event, store=store, time_zone_offset=tz)] if event.lines else []
    if isinstance(event, TagPassage):
        return [passage_event(event, store=store, time_zone_offset=tz)]
    if isinstance(event, PlateCount):
        return [stock_count_event(event, store=store, time_zone_offset=tz)]
    if isinstance(event, ShelfEvent):
        return [stocking_event(event, store=store, time_zone_offset=tz)]
    if isinstance(event, CaseEvent):
        return [theft_event(event, store=store, time_zone_offset=tz)]
    if isinstance(event, StockLoss):
        return [loss_event(event, store=store, time_zone_offset=tz)]
    raise TypeError(
        f"cannot export a {type(event).__name__} as EPCIS; "
        "pass a Receipt, TagPassage, PlateCount, ShelfEvent, CaseEvent or StockLoss"
    )


def epcis_document(
    events: Iterable[Exportable],
    *,
    store: Store,
    created_s: float,
    time_zone_offset: str = UTC_OFFSET,
) -> dict[str, Any]:
    """An ``EPCISDocument`` of our events, sorted by event time, each exported once.

    ``created_s`` is the document's creation time (event time of the export,
    never read from the clock here). Events that derive the same eventID
    (the same receipt, case or count given twice) appear once.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for ours in events:
        for epcis_event in object_events(ours, store=store, time_zone_offset=time_zone_offset):
            by_id.setdefault(epcis_event["eventID"], epcis_event)
    ordered = sorted(by_id.values(), key=lambda e: (e["eventTime"], e["eventID"]))
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": epcis_time(created_s),
        "epcisBody": {"eventList": ordered},
    }
