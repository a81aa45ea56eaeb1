"""Versioned payloads of every event that crosses the bus.

Every payload has a schema version ``v``, an ``id`` unique to the event
(applying an event twice must change nothing) and ``event_time_s``, the Unix
time in seconds at which the thing happened (not when it was sent or
received). Models forbid unknown fields and NaN/infinite numbers, so a
malformed message is rejected with the path of the bad field.

>>> e = GateEntry(id="e1", event_time_s=1.8e9, device_id="gate-in", token="t-1")
>>> GateEntry.model_validate_json(e.model_dump_json()) == e
True
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Alert",
    "CartEvent",
    "CaseEvent",
    "DeadLetter",
    "DeviceStatus",
    "Event",
    "EvidenceRequest",
    "GateEntry",
    "GateExit",
    "Interaction",
    "LoadCellFault",
    "PlateSamples",
    "Receipt",
    "ReceiptLine",
    "SessionEvent",
    "ShelfEvent",
    "ShelfOutcome",
    "ShelfSamples",
    "Snapshot",
    "TagPassage",
    "TrackBatch",
    "TrackPoint",
]

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")]
# Sensible bounds: 2000-01-01 .. 2100-01-01 as Unix seconds; rejects garbage timestamps.
EventTime = Annotated[float, Field(ge=946_684_800.0, le=4_102_444_800.0)]
Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
FloorCoord = Annotated[float, Field(ge=-100.0, le=1000.0)]


class Event(BaseModel):
    """Base of every bus payload."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    v: Literal[1] = Field(default=1, description="Payload schema version.")
    id: Id = Field(description="Unique event id; duplicates are ignored.")
    event_time_s: EventTime = Field(description="When it happened, Unix seconds (event time).")
    device_id: Id = Field(description="Device or service that produced the event.")


# --- devices → edge ---


class PlateSamples(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    plate_id: Id
    weights_g: list[Annotated[float, Field(ge=-50_000.0, le=100_000.0)]] = Field(
        min_length=1,
        max_length=2000,
        description="Raw load in grams, one per sample, oldest first.",
    )


class ShelfSamples(Event):
    """A batch of raw load-cell samples from one shelf controller.

    ``event_time_s`` is the time of the first sample; sample ``k`` was taken
    at ``event_time_s + k / sample_rate_hz``.
    """

    sample_rate_hz: float = Field(gt=0, le=1000, description="Samples per second.")
    plates: list[PlateSamples] = Field(min_length=1, max_length=256)


class GateEntry(Event):
    """A shopper scanned in at an entry gate (QR token from the shopper app)."""

    token: Id = Field(
        description="Pseudonymous scan-in token; identifies the visit, not the person."
    )
    party_size: int = Field(default=1, ge=1, le=20, description="People covered by this scan-in.")


class GateExit(Event):
    """Someone passed an exit gate. Walk-out gates need no scan; a token is optional."""

    token: Id | None = Field(default=None, description="Token if the exit gate scanned one.")


class TrackPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    track_id: Id = Field(description="Tracker-local id of one person track.")
    x_m: FloorCoord
    y_m: FloorCoord
    confidence: Confidence = 1.0
    look: list[Annotated[float, Field(ge=-1.0, le=1.0)]] | None = Field(
        default=None,
        min_length=4,
        max_length=256,
        description="The person's look this instant: a unit-length appearance vector from the "
        "edge's re-identification model (never an image), sent only while the person stands "
        "clear of others. Comparable only with looks from the same model.",
    )


class TrackBatch(Event):
    """Floor positions of all current person tracks at one instant."""

    tracks: list[TrackPoint] = Field(default_factory=list, max_length=1000)
    ended: list[Id] = Field(
        default_factory=list, description="Track ids that ended at this instant."
    )


# --- edge → brain ---


class ShelfEvent(Event):
    """A settled weight change on one plate: something was picked or put.

    ``event_time_s`` is when the plate settled again; ``started_s`` when it
    became unstable. ``sku``/``quantity`` read the change against the
    planogram; the brain may re-read ``delta_g`` (a put-back on the wrong plate).
    """

    plate_id: Id
    action: Literal["pick", "put"]
    delta_g: float = Field(
        ge=-100_000.0, le=100_000.0, description="Settled load after minus before, g."
    )
    started_s: EventTime
    sku: Id = Field(description="SKU the planogram puts on this plate.")
    quantity: int = Field(ge=1, le=1000, description="Units of that SKU closest to |delta_g|.")
    confidence: Confidence = Field(description="How well |delta_g| fits a whole number of units.")
    noise_g: float = Field(
        ge=0, le=10_000, description="Measured load-cell noise around the event, g."
    )


class Interaction(Event):
    """A hand's visit to a shelf, as a shelf camera saw it: an episode, not a frame.

    ``started_s`` is when the hand entered the plate's zone, ``event_time_s``
    when it left. ``action`` compares what the hand held going in with what it
    held coming out (``touch``: nothing changed hands). ``hand_x_m``/``hand_y_m``
    is where the arm came from on the floor (the aisle side of the plate), which
    tells two shoppers side by side apart.
    """

    gondola_id: Id
    plate_id: Id = Field(description="Plate whose zone the hand reached into.")
    action: Literal["pick", "put", "touch"]
    started_s: EventTime
    sku: Id | None = Field(
        default=None,
        description="SKU of the product in the hand (pick/put), or of the facing the hand "
        "reached for on a shared plate (touch); none if unknown.",
    )
    quantity: int = Field(default=0, ge=0, le=20, description="Units seen in the hand.")
    confidence: Confidence = Field(description="Confidence in the action (pick/put/touch).")
    sku_confidence: Confidence = Field(
        default=0.0, description="Confidence in the SKU (0 when there is none)."
    )
    hand_x_m: FloorCoord = Field(description="Floor x of the arm's root, m.")
    hand_y_m: FloorCoord = Field(description="Floor y of the arm's root, m.")


# --- brain → world ---


class SessionEvent(Event):
    session_id: Id
    token: Id
    state: Literal["open", "bound", "closed"]
    track_id: Id | None = None


class CartEvent(Event):
    """One append-only line of the cart ledger."""

    session_id: Id
    sku: Id
    quantity_delta: int = Field(
        ge=-1000, le=1000, description="+ picked into the cart, - put back."
    )
    confidence: Confidence
    source_event_id: Id = Field(description="The shelf event this line was derived from.")
    unit_weight_g: float | None = Field(
        default=None, ge=0, le=100_000, description="Weight per unit the shelf measured, g."
    )
    reason: str = Field(default="", max_length=500, description="Why fusion decided this line.")


class ShelfOutcome(Event):
    """How the brain settled one shelf event: on a visit's cart, or on nobody, and why.

    Store operations read it: inventory, and the shrink rules (a removal no
    shopper could have made, a put-back of another product).
    """

    source_event_id: Id = Field(description="The shelf event settled.")
    plate_id: Id
    action: Literal["pick", "put"]
    quantity: int = Field(ge=1, le=1000, description="Units the scale read.")
    shelf_sku: Id = Field(description="The SKU the shelf event named (the plate's planogram).")
    outcome: Literal["cart", "unattributed", "unexplained", "late"]
    session_id: Id | None = Field(default=None, description="The visit charged or credited.")
    sku: Id | None = Field(default=None, description="SKU of the cart line (cart outcome).")
    foreign: bool = Field(
        default=False, description="The cart line's SKU is not one the planogram puts there."
    )
    nearest_track_id: Id | None = Field(
        default=None, description="The person track nearest the act, bound to a visit or not."
    )
    nearest_m: float | None = Field(default=None, ge=0, le=1000)
    nearest_bound: bool = Field(
        default=False, description="Whether that nearest track belongs to a visit in the store."
    )
    hand_seen: bool = Field(default=False, description="A shelf camera saw a hand there.")
    seen_sku: Id | None = Field(default=None, description="SKU the shelf camera saw in hand.")
    seen_sku_confidence: Confidence = 0.0
    reason: str = Field(default="", max_length=500)


class ReceiptLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    sku: Id
    name: str
    quantity: int = Field(ge=1)
    unit_price_cents: int = Field(ge=0)
    total_cents: int = Field(ge=0)
    confidence: Confidence
    list_price_cents: int | None = Field(
        default=None,
        ge=0,
        description="Unit price before the promotion that priced this line; none without one.",
    )
    promotion: str | None = Field(
        default=None, max_length=200, description="Name of the promotion applied, if any."
    )


class Receipt(Event):
    session_id: Id
    token: Id
    entered_s: EventTime
    exited_s: EventTime
    currency: str
    lines: list[ReceiptLine]
    total_cents: int = Field(ge=0)
    needs_review: bool
    review_reasons: list[str] = Field(default_factory=list)


class TagPassage(Event):
    """An RFID-tagged item passed a reader's gate: decided from the order of antenna zones.

    Published by the RFID adapter (``iot.rfid_adapter``) once the tag has gone
    quiet; ``event_time_s`` is the last read, ``first_seen_s`` the first.
    Static tags near the door (read on and on without moving) never pass.
    """

    epc_hex: str = Field(pattern=r"^[0-9A-F]{16,64}$", description="EPC bank, upper-case hex.")
    epc_uri: str | None = Field(
        default=None,
        max_length=200,
        description="Pure-identity URI (urn:epc:id:...) when the scheme is known, else none.",
    )
    gtin: str | None = Field(
        default=None, pattern=r"^\d{14}$", description="GTIN-14 of an SGTIN, else none."
    )
    gate_id: Id = Field(description="The store gate this reader guards.")
    direction: Literal["out", "in"] = Field(description="out: from the store side to the street.")
    first_seen_s: EventTime
    zones: list[Literal["inner", "outer"]] = Field(
        min_length=1, max_length=64, description="Antenna zones in the order the tag was read."
    )
    reads: int = Field(ge=1, le=1_000_000)
    peak_rssi_dbm: float = Field(ge=-150.0, le=50.0)


# --- operations ---


class EvidenceRequest(Event):
    """Loss prevention wants pictures of a moment; the edge answers with blurred snapshots."""

    case_id: Id
    at_s: EventTime = Field(description="The moment wanted (the edge sends the nearest frame).")
    x_m: FloorCoord | None = Field(default=None, description="Where on the floor, if known.")
    y_m: FloorCoord | None = None
    plate_id: Id | None = Field(default=None, description="The plate involved, if any.")


class Snapshot(Event):
    """A camera frame kept as evidence. Faces are blurred before it is written: no raw face
    is ever stored."""

    case_id: Id
    camera_id: Id
    frame_s: EventTime = Field(description="When the frame was taken.")
    image_path: str = Field(min_length=1, max_length=500, description="The blurred JPEG file.")
    regions_blurred: int = Field(ge=0, le=1000, description="Head and face regions blurred.")


LoadCellFaultKind = Literal["stuck", "drifting", "saturated", "out_of_range"]
DeviceFaultKind = Literal["offline", "stale", "stuck", "drifting", "saturated", "out_of_range"]


class LoadCellFault(Event):
    """A plate's load cell misreads, or reads well again: found by the shelf adapter; QoS 1.

    ``device_id`` is the shelf controller, ``plate_id`` the plate under the
    faulty cell. ``stuck``: the same raw value to the bit while the cell should
    move; ``drifting``: a slow, steady change of the resting load that no hand
    made; ``saturated``: pinned at the top of its range; ``out_of_range``:
    readings no plate can give (unplugged, broken). The raise and the clear of
    one fault share ``since_s``.
    """

    plate_id: Id
    fault: LoadCellFaultKind
    state: Literal["raised", "cleared"]
    since_s: EventTime = Field(description="When the cell started misreading, event time.")
    detail: str = Field(default="", max_length=500, description="What was measured.")


class Alert(Event):
    """A store-operations alert raised or cleared (stock, device health); QoS 1.

    ``alert_id`` names one episode: the raise and the clear of the same
    episode share it, so a consumer can pair them.
    """

    alert_id: Id
    kind: Literal["low_stock", "stockout", "device_health"]
    state: Literal["raised", "cleared"]
    plate_id: Id | None = None
    sku: Id | None = None
    gondola_id: Id | None = None
    units: int | None = Field(default=None, ge=0, le=1_000_000, description="Units on shelf.")
    threshold_units: int | None = Field(default=None, ge=0, le=1_000_000)
    message: str = Field(default="", max_length=500)
    subject_id: Id | None = Field(
        default=None,
        description="device_health: the device the alert is about (``device_id`` is the "
        "service that raised it).",
    )
    fault: DeviceFaultKind | None = Field(
        default=None, description="device_health: what is wrong with the device."
    )
    since_s: EventTime | None = Field(
        default=None,
        description="device_health: event time the fault began (its last message before "
        "silence, or when a load cell started misreading); at or before event_time_s.",
    )


CaseRule = Literal[
    "tagged_item_unpaid",
    "tailgating",
    "unattributed_removal",
    "wrong_put_back",
    "weight_loss_no_interaction",
    "dispute",
]
CaseState = Literal[
    "new", "in_review", "confirmed_theft", "no_theft", "operational_issue", "resolved"
]


class CaseEvent(Event):
    """A loss-prevention (or operations) case opened, updated with evidence, or moved on."""

    case_id: Id
    rule: CaseRule
    category: Literal["theft", "operations", "dispute"]
    state: CaseState
    incident_s: EventTime = Field(description="When the incident happened (first evidence).")
    confidence: Confidence
    summary: str = Field(max_length=1000)
    session_id: Id | None = None
    track_ids: list[Id] = Field(default_factory=list, max_length=50)
    plate_id: Id | None = None
    sku: Id | None = None
    epc_hex: str | None = Field(default=None, pattern=r"^[0-9A-F]{16,64}$")


class DeviceStatus(Event):
    """Retained online/offline state of a device or service (Last Will: offline)."""

    state: Literal["online", "offline"]


class DeadLetter(Event):
    """A message a service refused, with why. Never retained."""

    topic: str = Field(max_length=512)
    reason: str = Field(max_length=2000)
    payload_excerpt: str = Field(default="", max_length=1000)
