"""The bus as an AsyncAPI 2.6 document, generated from the topic registry.

One registry drives publishing, subscribing, dispatch, ``docs/bus.md`` and
this document, so a topic cannot be described here and missing there. Each
channel's message payload is its pydantic model's JSON schema (under
``components.schemas``); an RFID reader's raw channel carries the vendor's
own JSON and is described, not schematised. MQTT bindings give QoS and the
retain flag.

>>> doc = asyncapi_document()
>>> doc["asyncapi"], "smartstore/{store}/shelf/{device}/events" in doc["channels"]
('2.6.0', True)
>>> doc["components"]["messages"]["shelf_events"]["payload"]
{'$ref': '#/components/schemas/ShelfEvent'}
"""

from __future__ import annotations

from typing import Any

from iot.topics import ANY, PREFIX, TOPICS, Channel

__all__ = ["asyncapi_document"]

_MQTT_BINDING = "0.2.0"
_PARAMS = {
    "store": "Store id (lowercase, as in the store file's store_id).",
    "device": "Device or service id that publishes on this channel.",
    "kind": "Device kind (shelf, camera, gate, rfid, brain, ops, ...).",
}


def _address(c: Channel) -> str:
    kind = "{kind}" if c.kind == ANY else c.kind
    return f"{PREFIX}/{{store}}/{kind}/{{device}}/{c.channel}"


def _channel(c: Channel) -> dict[str, Any]:
    names = ["store", "device"] + (["kind"] if c.kind == ANY else [])
    return {
        "description": c.description,
        "parameters": {n: {"description": _PARAMS[n], "schema": {"type": "string"}} for n in names},
        "subscribe": {
            "operationId": f"receive_{c.name}",
            "summary": c.description,
            "message": {"$ref": f"#/components/messages/{c.name}"},
            "bindings": {
                "mqtt": {"qos": c.qos, "retain": c.retain, "bindingVersion": _MQTT_BINDING}
            },
        },
    }


def _message(c: Channel, schemas: dict[str, Any]) -> dict[str, Any]:
    if c.model is None:
        payload: dict[str, Any] = {
            "type": "string",
            "description": "The device's own JSON, parsed by its adapter (iot/rfid.py): "
            "Impinj tagInventory events, or Zebra IoT Connector tag data events.",
        }
    else:
        schema = c.model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[c.model.__name__] = schema
        payload = {"$ref": f"#/components/schemas/{c.model.__name__}"}
    return {
        "name": c.name,
        "title": c.model.__name__ if c.model is not None else "vendor JSON",
        "summary": c.description,
        "contentType": "application/json",
        "payload": payload,
    }


def asyncapi_document(version: str = "1") -> dict[str, Any]:
    """AsyncAPI 2.6.0 for every registered channel (deterministic: the registry's order)."""
    schemas: dict[str, Any] = {}
    messages = {c.name: _message(c, schemas) for c in TOPICS.values()}
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "smartstore bus",
            "version": version,
            "description": "Events between a walk-out store's devices, edge and brain. Every "
            "payload has a schema version v, a unique id (duplicates are ignored) and "
            "event_time_s, when the thing happened; see docs/bus.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "url": "mqtt://127.0.0.1:1883",
                "protocol": "mqtt",
                "description": "The embedded broker of `smartstore demo`, or Mosquitto.",
                "variables": {},
            }
        },
        "channels": {_address(c): _channel(c) for c in TOPICS.values()},
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
