"""The AsyncAPI document: every registered topic, its payload schema, and the docs copy in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iot.asyncapi import asyncapi_document
from iot.payloads import GateEntry, TagPassage
from iot.topics import TOPICS

ROOT = Path(__file__).resolve().parents[3]


def test_every_registered_channel_is_described_with_its_qos() -> None:
    doc = asyncapi_document()
    assert set(doc["components"]["messages"]) == set(TOPICS)
    for channel in TOPICS.values():
        [(address, item)] = [
            (a, i)
            for a, i in doc["channels"].items()
            if i["subscribe"]["message"]["$ref"].endswith("/" + channel.name)
        ]
        assert address.endswith("/" + channel.channel)
        assert item["subscribe"]["bindings"]["mqtt"]["qos"] == channel.qos
        assert item["subscribe"]["bindings"]["mqtt"]["retain"] == channel.retain


def test_it_is_a_valid_asyncapi_2_6_document() -> None:
    asyncapi = pytest.importorskip("pydantic_asyncapi")
    model = asyncapi.AsyncAPI.model_validate(asyncapi_document())
    assert type(model.root).__module__.endswith("v2")


def test_payload_schemas_accept_real_payloads_and_refuse_bad_ones() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = asyncapi_document()
    schemas = doc["components"]["schemas"]
    # resolve '#/components/schemas/X' refs against the document itself
    registry = {"components": {"schemas": schemas}}

    def validator(name: str) -> object:
        return jsonschema.Draft202012Validator({**schemas[name], **registry})

    entry = GateEntry(id="e1", event_time_s=1.8e9, device_id="gate-in", token="t-1")
    ok = json.loads(entry.model_dump_json())
    assert validator("GateEntry").is_valid(ok)  # type: ignore[attr-defined]
    assert not validator("GateEntry").is_valid({**ok, "party_size": 0})  # type: ignore[attr-defined]
    passage = TagPassage(
        id="p1",
        event_time_s=1.8e9,
        device_id="rfid-exit",
        epc_hex="3074257BF7194E4000001A85",
        gate_id="gate-out",
        direction="out",
        first_seen_s=1.8e9 - 1,
        zones=["inner", "outer"],
        reads=4,
        peak_rssi_dbm=-50,
    )
    good = json.loads(passage.model_dump_json())
    assert validator("TagPassage").is_valid(good)  # type: ignore[attr-defined]
    assert not validator("TagPassage").is_valid({**good, "direction": "sideways"})  # type: ignore[attr-defined]


def test_the_docs_copy_is_current() -> None:
    on_disk = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert on_disk == asyncapi_document(), (
        "docs/asyncapi.json is stale: regenerate it with `smartstore asyncapi > docs/asyncapi.json`"
    )
