"""The one registry of MQTT topics: scheme, payload model, QoS and retain flag.

Topic scheme: ``smartstore/<store>/<kind>/<device>/<channel>``, all lowercase
ASCII, no leading slash. Publishing, subscribing, dispatch and the docs read
this table, so a topic cannot exist in one place and be missing in another.

>>> TOPICS["shelf_events"].topic("demo", "edge-1")
'smartstore/demo/shelf/edge-1/events'
>>> match_topic("smartstore/demo/gate/gate-in/entries")
(Channel(name='gate_entries', kind='gate', channel='entries'), 'demo', 'gate-in')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iot.payloads import (
    Alert,
    CartEvent,
    CaseEvent,
    DeadLetter,
    DeviceStatus,
    Event,
    EvidenceRequest,
    GateEntry,
    GateExit,
    Interaction,
    LoadCellFault,
    Receipt,
    SessionEvent,
    ShelfEvent,
    ShelfOutcome,
    ShelfSamples,
    Snapshot,
    TagPassage,
    TrackBatch,
)

__all__ = ["ANY", "PREFIX", "TOPICS", "Channel", "match_topic", "topics_markdown"]

PREFIX = "smartstore"
ANY = "+"


@dataclass(frozen=True)
class Channel:
    """One kind of message on the bus."""

    name: str
    kind: str  # device kind segment; ANY for channels every kind has (status, deadletter)
    channel: str
    # None: the device's own vendor format (an RFID reader's JSON), parsed by its adapter.
    model: type[Event] | None = field(repr=False)
    qos: int = field(repr=False)
    retain: bool = field(repr=False)
    description: str = field(repr=False)

    def topic(self, store_id: str, device_id: str, kind: str | None = None) -> str:
        """The concrete topic a device publishes this channel on."""
        k = kind or self.kind
        if k == ANY:
            raise ValueError(f"channel {self.name!r} is published by every kind; pass kind=")
        return f"{PREFIX}/{store_id}/{k}/{device_id}/{self.channel}"

    def filter(self, store_id: str = ANY, device_id: str = ANY, kind: str | None = None) -> str:
        """A subscription filter for this channel (wildcards by default).

        ``kind`` narrows a channel every kind has (status) to one device kind.
        """
        return f"{PREFIX}/{store_id}/{kind or self.kind}/{device_id}/{self.channel}"


def _channels() -> dict[str, Channel]:
    table = [
        Channel(
            "shelf_samples",
            "shelf",
            "samples",
            ShelfSamples,
            0,
            False,
            "Raw load-cell sample batches from a shelf controller (stay at the edge).",
        ),
        Channel(
            "shelf_events",
            "shelf",
            "events",
            ShelfEvent,
            1,
            False,
            "Settled pick/put weight changes from the change detector.",
        ),
        Channel(
            "shelf_faults",
            "shelf",
            "faults",
            LoadCellFault,
            1,
            False,
            "Load-cell faults (stuck, drifting, saturated, out of range) raised and cleared by "
            "the shelf adapter.",
        ),
        Channel(
            "interactions",
            "camera",
            "interactions",
            Interaction,
            1,
            False,
            "Pick/put/touch episodes a shelf camera saw: plate, SKU in hand, arm position.",
        ),
        Channel(
            "gate_entries", "gate", "entries", GateEntry, 1, False, "Scan-ins at an entry gate."
        ),
        Channel(
            "gate_exits", "gate", "exits", GateExit, 1, False, "Passages through an exit gate."
        ),
        Channel(
            "tracks",
            "tracker",
            "tracks",
            TrackBatch,
            1,  # QoS 1: the brain attributes from the track history; a lost batch can
            False,  # change a decision, and QoS 0 is lost in a worker crash or broker restart
            "Shopper floor positions: the ceiling-camera tracker (or the twin's simulated feed).",
        ),
        Channel(
            "sessions",
            "brain",
            "sessions",
            SessionEvent,
            1,
            False,
            "Visit sessions opened, bound to a track, and closed.",
        ),
        Channel(
            "cart_events",
            "brain",
            "carts",
            CartEvent,
            1,
            False,
            "Cart ledger lines decided by fusion.",
        ),
        Channel(
            "shelf_outcomes",
            "brain",
            "outcomes",
            ShelfOutcome,
            1,
            False,
            "How each shelf event was settled: on a cart or on nobody, with who was near.",
        ),
        Channel("receipts", "brain", "receipts", Receipt, 1, False, "Receipts issued at exit."),
        Channel(
            "rfid_raw",
            "rfid",
            "raw",
            None,
            0,
            False,
            "An RFID reader's own JSON (Impinj tagInventory or Zebra IoT Connector tag data).",
        ),
        Channel(
            "tag_passages",
            "rfid",
            "passages",
            TagPassage,
            1,
            False,
            "Tagged items that passed a gate, with direction, from the RFID adapter.",
        ),
        Channel(
            "alerts",
            "ops",
            "alerts",
            Alert,
            1,
            False,
            "Stock and device alerts raised and cleared (hysteresis: no flapping).",
        ),
        Channel(
            "cases",
            "ops",
            "cases",
            CaseEvent,
            1,
            False,
            "Loss-prevention and operations cases opened or moved on, with confidence.",
        ),
        Channel(
            "evidence_requests",
            "ops",
            "evidence",
            EvidenceRequest,
            1,
            False,
            "A case asks the cameras for pictures of a moment and a place.",
        ),
        Channel(
            "snapshots",
            "camera",
            "snapshots",
            Snapshot,
            1,
            False,
            "A blurred evidence frame written for a case (faces blurred at capture).",
        ),
        Channel(
            "status",
            ANY,
            "status",
            DeviceStatus,
            1,
            True,
            "Retained online/offline state; the Last Will sets offline.",
        ),
        Channel(
            "deadletter",
            ANY,
            "deadletter",
            DeadLetter,
            1,
            False,
            "Messages a service refused, with the reason.",
        ),
    ]
    return {c.name: c for c in table}


TOPICS: dict[str, Channel] = _channels()
_BY_SEGMENTS = {(c.kind, c.channel): c for c in TOPICS.values()}


def match_topic(topic: str) -> tuple[Channel, str, str] | None:
    """Map a concrete topic to (channel, store_id, device_id), or None if unknown."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != PREFIX or not all(parts):
        return None
    _, store_id, kind, device_id, channel = parts
    found = _BY_SEGMENTS.get((kind, channel)) or _BY_SEGMENTS.get((ANY, channel))
    if found is None:
        return None
    return found, store_id, device_id


def topics_markdown() -> str:
    """The registry as a Markdown table (docs/bus.md embeds it; a test keeps them equal)."""
    rows = [
        "| topic | payload | QoS | retained | what |",
        "|---|---|---|---|---|",
    ]
    for c in TOPICS.values():
        kind = "<kind>" if c.kind == ANY else c.kind
        topic = f"{PREFIX}/<store>/{kind}/<device>/{c.channel}"
        payload = f"`{c.model.__name__}`" if c.model is not None else "vendor JSON"
        rows.append(
            f"| `{topic}` | {payload} | {c.qos} | {'yes' if c.retain else 'no'} | {c.description} |"
        )
    return "\n".join(rows)
