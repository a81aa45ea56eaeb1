"""The store description: one validated file that every room reads.

A store file (YAML) describes the floor plan in metres, the gondolas with
their shelves and weight plates, the planogram (which SKUs sit on which
plate: a plate may share its load cell between several SKUs, e.g. flavours
of one yogurt), the catalog and the devices. It is checked once, at start, and a bad
file fails with the dotted path of the bad field and what to do about it.

Geometry conventions: the floor is the x/y plane in metres, origin at a
corner, y growing away from the entrance. Gondolas run along x; each shelf
faces one side of its gondola ("north" = +y, "south" = -y), and a shopper
reaches a plate from the aisle in front of that side.

>>> from pathlib import Path
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> store.store_id, len(store.plates()) >= 40
('demo', True)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iot.configfile import describe_invalid, read_yaml

__all__ = [
    "Catalog",
    "CatalogItem",
    "Devices",
    "Floor",
    "Gate",
    "Gondola",
    "PlanogramEntry",
    "Plate",
    "RfidAntenna",
    "RfidReader",
    "Shelf",
    "ShelfController",
    "Store",
    "StoreFileError",
    "load_store",
    "parse_store",
]

Point = tuple[float, float]


class StoreFileError(ValueError):
    """A store file is missing, unreadable or invalid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gate(_Strict):
    id: str = Field(description="Gate id; also the device id of the gate on the bus.")
    kind: Literal["entry", "exit"] = Field(
        description="Entry gates scan shoppers in; exit gates close visits."
    )
    line_m: tuple[Point, Point] = Field(
        description="The gate line on the floor, two (x, y) points in metres."
    )

    @property
    def centre_m(self) -> Point:
        (x1, y1), (x2, y2) = self.line_m
        return ((x1 + x2) / 2, (y1 + y2) / 2)


class Floor(_Strict):
    width_m: float = Field(gt=0, le=500, description="Floor extent along x, metres.")
    depth_m: float = Field(gt=0, le=500, description="Floor extent along y, metres.")
    gates: list[Gate] = Field(min_length=2, description="Entry and exit gate lines.")

    @model_validator(mode="after")
    def _gates_inside_and_both_kinds(self) -> Floor:
        kinds = {g.kind for g in self.gates}
        if kinds != {"entry", "exit"}:
            raise ValueError(
                f"needs at least one entry and one exit gate, got kinds {sorted(kinds)}"
            )
        for gate in self.gates:
            for x, y in gate.line_m:
                if not (0 <= x <= self.width_m and 0 <= y <= self.depth_m):
                    raise ValueError(f"gate {gate.id!r} point ({x}, {y}) lies outside the floor")
        return self


class Plate(_Strict):
    id: str = Field(description="Weight plate id, unique in the store.")
    offset_m: float = Field(
        ge=0, description="Start of the plate along its gondola, metres from the gondola's x_m."
    )
    width_m: float = Field(gt=0, le=3, description="Plate width along the gondola, metres.")
    max_load_g: float = Field(default=20000, gt=0, description="Load-cell capacity in grams.")


class Shelf(_Strict):
    id: str = Field(description="Shelf id, unique in the store.")
    side: Literal["north", "south"] = Field(
        description="Which face of the gondola the shelf opens to."
    )
    height_m: float = Field(ge=0, le=3, description="Shelf height above the floor, metres.")
    plates: list[Plate] = Field(
        min_length=1, description="Weight plates on this shelf, left to right."
    )


class Gondola(_Strict):
    id: str = Field(description="Gondola id, unique in the store.")
    x_m: float = Field(ge=0, description="Left edge (minimum x) of the gondola, metres.")
    y_m: float = Field(ge=0, description="Back/south edge (minimum y) of the gondola, metres.")
    length_m: float = Field(gt=0, le=50, description="Length along x, metres.")
    depth_m: float = Field(gt=0, le=3, description="Depth along y, metres.")
    shelves: list[Shelf] = Field(min_length=1, description="Shelves of this gondola.")

    @model_validator(mode="after")
    def _plates_fit(self) -> Gondola:
        for shelf in self.shelves:
            for plate in shelf.plates:
                if plate.offset_m + plate.width_m > self.length_m + 1e-9:
                    raise ValueError(
                        f"plate {plate.id!r} ends at {plate.offset_m + plate.width_m:.2f} m, "
                        f"beyond the gondola length {self.length_m} m; "
                        "shorten the plate or move its offset_m"
                    )
        return self


class CatalogItem(_Strict):
    sku: str = Field(description="Stock-keeping unit id.")
    gtin: str = Field(pattern=r"^\d{14}$", description="GTIN-14 with a valid GS1 check digit.")
    name: str = Field(min_length=1, description="Name printed on receipts.")
    price_cents: int = Field(ge=0, description="Unit price in minor currency units.")
    unit_weight_g: float = Field(gt=0, le=20000, description="Nominal weight of one unit, grams.")
    weight_tolerance_g: float = Field(
        ge=0, description="One standard deviation of unit-to-unit weight, grams."
    )
    rfid_tagged: bool = Field(default=False, description="Whether units carry an RFID tag.")

    @model_validator(mode="after")
    def _gtin_check_digit(self) -> CatalogItem:
        expected = gtin_check_digit(self.gtin[:13])
        if int(self.gtin[13]) != expected:
            raise ValueError(
                f"GTIN {self.gtin} has check digit {self.gtin[13]}, expected {expected}"
            )
        return self


class Catalog(_Strict):
    currency: str = Field(
        default="EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of all prices."
    )
    items: list[CatalogItem] = Field(min_length=1, description="Products sold in the store.")


class PlanogramEntry(_Strict):
    """One SKU on one plate; a plate shared by several SKUs has one entry per SKU."""

    plate: str = Field(description="Plate id.")
    sku: str = Field(description="SKU stocked on the plate.")
    facings: int = Field(
        default=1,
        ge=1,
        description="Facings of the SKU on the plate; on a shared plate they split the prior "
        "of which SKU a pick took.",
    )
    capacity_units: int = Field(ge=1, description="Units of this SKU the plate holds when full.")
    initial_units: int = Field(
        ge=0, description="Units of this SKU on the plate when a scenario starts."
    )

    @model_validator(mode="after")
    def _initial_le_capacity(self) -> PlanogramEntry:
        if self.initial_units > self.capacity_units:
            raise ValueError(
                f"initial_units {self.initial_units} exceeds capacity_units {self.capacity_units}"
            )
        return self


class ShelfController(_Strict):
    id: str = Field(description="Device id of the controller that reads one gondola's load cells.")
    gondola: str = Field(description="Gondola whose plates this controller reads.")
    sample_rate_hz: float = Field(
        default=20, ge=10, le=200, description="Load-cell sample rate, Hz."
    )
    batch_period_s: float = Field(
        default=0.1, gt=0, le=2, description="Samples are sent in batches this long, s."
    )
    noise_g: float = Field(
        default=2.0, ge=0, le=100, description="Load-cell noise, one standard deviation, g."
    )


class Camera(_Strict):
    """A pinhole camera with its pose in the store (see ``iot.cameras`` for the maths).

    Orientation: at ``yaw_deg`` 0 and ``pitch_deg`` 0 the camera looks straight
    down with the image's right along floor +x and the image's top towards
    floor +y. ``yaw_deg`` turns it about the vertical (counter-clockwise seen
    from above); ``pitch_deg`` then tilts the view from straight down towards
    the image's top (90 looks horizontally, as a shelf camera does).
    """

    id: str = Field(description="Camera device id.")
    kind: Literal["ceiling", "shelf"] = Field(
        description="Ceiling cameras track people; shelf cameras see hands."
    )
    position_m: tuple[float, float, float] = Field(
        default=(0.0, 0.0, 3.0), description="Optical centre (x, y, height above the floor), m."
    )
    yaw_deg: float = Field(
        default=0.0, ge=-360, le=360, description="Turn about the vertical, deg."
    )
    pitch_deg: float = Field(
        default=0.0, ge=0, le=120, description="Tilt from straight down towards the image top, deg."
    )
    focal_px: float = Field(default=300.0, gt=10, le=20_000, description="Focal length, pixels.")
    width_px: int = Field(default=640, ge=16, le=8192, description="Image width, pixels.")
    height_px: int = Field(default=480, ge=16, le=8192, description="Image height, pixels.")
    fps: float = Field(default=10.0, gt=0, le=120, description="Frames per second.")
    gondola: str | None = Field(default=None, description="For shelf cameras: the gondola watched.")


class RfidAntenna(_Strict):
    """One antenna of a gate reader; the order its zones read a tag in gives the direction."""

    port: int = Field(ge=1, le=64, description="Antenna port number on the reader.")
    zone: Literal["inner", "outer"] = Field(
        description="inner: the store side of the gate line; outer: the street side."
    )
    position_m: Point = Field(description="Floor point the antenna's field is centred on, m.")
    range_m: float = Field(default=0.6, gt=0, le=5, description="Read range on the floor, m.")


class RfidReader(_Strict):
    id: str = Field(description="RFID reader device id; its vendor JSON comes on rfid/<id>/raw.")
    format: Literal["impinj", "zebra"] = Field(
        default="impinj",
        description="impinj: IoT device interface tagInventory events; zebra: IoT Connector "
        "tag data events.",
    )
    gate: str | None = Field(default=None, description="Id of the gate line this reader guards.")
    antennas: list[RfidAntenna] = Field(default_factory=list, description="Antennas by port.")

    @model_validator(mode="after")
    def _both_zones_unique_ports(self) -> RfidReader:
        _check_unique(f"antenna port of reader {self.id}", [str(a.port) for a in self.antennas])
        if self.gate is not None and {a.zone for a in self.antennas} != {"inner", "outer"}:
            raise ValueError(
                f"reader {self.id!r} guards gate {self.gate!r}: it needs at least one inner "
                "and one outer antenna to tell direction"
            )
        return self


class Devices(_Strict):
    shelf_controllers: list[ShelfController] = Field(
        min_length=1, description="Load-cell controllers."
    )
    positioning: list[str] = Field(
        default_factory=lambda: ["positioning"],
        description="Device ids allowed to publish shopper tracks "
        "(simulated feed now, camera trackers later).",
    )
    cameras: list[Camera] = Field(
        default_factory=list, description="Cameras, declared for later use."
    )
    rfid_readers: list[RfidReader] = Field(
        default_factory=list, description="RFID readers at the gates."
    )


class Store(_Strict):
    store_id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Lowercase id used in MQTT topics."
    )
    name: str = Field(description="Display name.")
    gln: str | None = Field(
        default=None,
        pattern=r"^\d{13}$",
        description="The store's GS1 Global Location Number (13 digits, valid check digit): "
        "where its EPCIS events happened.",
    )
    gln_company_prefix_digits: int = Field(
        default=7, ge=6, le=12, description="Digits of the GS1 company prefix inside the GLN."
    )
    reach_m: float = Field(
        default=0.9, gt=0, le=3, description="How far from a plate's front a shopper can reach."
    )
    floor: Floor
    gondolas: list[Gondola] = Field(min_length=1)
    catalog: Catalog
    planogram: list[PlanogramEntry] = Field(min_length=1)
    devices: Devices

    @model_validator(mode="after")
    def _cross_references(self) -> Store:
        if self.gln is not None and int(self.gln[12]) != gtin_check_digit("0" + self.gln[:12]):
            expected = gtin_check_digit("0" + self.gln[:12])
            raise ValueError(f"gln {self.gln} has check digit {self.gln[12]}, expected {expected}")
        _check_unique("gondola id", [g.id for g in self.gondolas])
        _check_unique("shelf id", [s.id for g in self.gondolas for s in g.shelves])
        _check_unique(
            "plate id", [p.id for g in self.gondolas for s in g.shelves for p in s.plates]
        )
        _check_unique("sku", [i.sku for i in self.catalog.items])
        _check_planogram_pairs(self.planogram)
        plate_ids = {p.id for g in self.gondolas for s in g.shelves for p in s.plates}
        skus = {i.sku for i in self.catalog.items}
        for n, entry in enumerate(self.planogram):
            if entry.plate not in plate_ids:
                raise ValueError(
                    f"planogram[{n}].plate {entry.plate!r} is not a plate of any gondola"
                )
            if entry.sku not in skus:
                raise ValueError(f"planogram[{n}].sku {entry.sku!r} is not in the catalog")
        self._check_full_plates_fit()
        gate_ids = {g.id for g in self.floor.gates}
        for n, reader in enumerate(self.devices.rfid_readers):
            if reader.gate is not None and reader.gate not in gate_ids:
                raise ValueError(
                    f"devices.rfid_readers[{n}].gate {reader.gate!r} is not a gate of the floor"
                )
        gondola_ids = {g.id for g in self.gondolas}
        for n, ctl in enumerate(self.devices.shelf_controllers):
            if ctl.gondola not in gondola_ids:
                raise ValueError(
                    f"devices.shelf_controllers[{n}].gondola {ctl.gondola!r} is not a gondola"
                )
        for g in self.gondolas:
            if g.x_m + g.length_m > self.floor.width_m or g.y_m + g.depth_m > self.floor.depth_m:
                raise ValueError(f"gondola {g.id!r} extends beyond the floor")
        return self

    def _check_full_plates_fit(self) -> None:
        """Every SKU on a plate at capacity together must not overload its load cell."""
        items = {i.sku: i for i in self.catalog.items}
        plates = {p.id: p for g in self.gondolas for s in g.shelves for p in s.plates}
        full_g: dict[str, float] = {}
        for e in self.planogram:
            unit_g = items[e.sku].unit_weight_g
            full_g[e.plate] = full_g.get(e.plate, 0.0) + e.capacity_units * unit_g
        for plate_id, load_g in full_g.items():
            limit_g = plates[plate_id].max_load_g
            if load_g > limit_g:
                parts = ", ".join(
                    f"{e.capacity_units} x {e.sku}" for e in self.planogram if e.plate == plate_id
                )
                raise ValueError(
                    f"plate {plate_id!r} full ({parts}) weighs {load_g:.0f} g, above its "
                    f"max_load_g {limit_g:.0f} g; lower capacity_units or raise max_load_g"
                )

    # --- derived look-ups (cached: the model is frozen) ---

    @cached_property
    def _plates(self) -> dict[str, tuple[Gondola, Shelf, Plate]]:
        return {p.id: (g, s, p) for g in self.gondolas for s in g.shelves for p in s.plates}

    def plates(self) -> list[str]:
        """All plate ids, in file order."""
        return list(self._plates)

    def plate(self, plate_id: str) -> tuple[Gondola, Shelf, Plate]:
        return self._plates[plate_id]

    @cached_property
    def items(self) -> dict[str, CatalogItem]:
        return {i.sku: i for i in self.catalog.items}

    @cached_property
    def planogram_by_plate(self) -> dict[str, list[PlanogramEntry]]:
        """Stocked plate id -> its planogram entries (several on a shared plate), file order."""
        out: dict[str, list[PlanogramEntry]] = {}
        for e in self.planogram:
            out.setdefault(e.plate, []).append(e)
        return out

    def skus_on_plate(self, plate_id: str) -> list[PlanogramEntry]:
        """The planogram entries of a plate in file order; empty for an unstocked plate.

        >>> from pathlib import Path
        >>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
        >>> [e.sku for e in store.skus_on_plate("g01-s1-p1")]
        ['SKU001']
        """
        return list(self.planogram_by_plate.get(plate_id, ()))

    def planogram_entry(self, plate_id: str, sku: str) -> PlanogramEntry | None:
        """The entry stocking ``sku`` on ``plate_id``, or None if the plate does not stock it."""
        return next((e for e in self.planogram_by_plate.get(plate_id, ()) if e.sku == sku), None)

    @cached_property
    def controller_plates(self) -> dict[str, list[str]]:
        """Plate ids read by each shelf controller."""
        by_gondola = {g.id: [p.id for s in g.shelves for p in s.plates] for g in self.gondolas}
        return {c.id: by_gondola[c.gondola] for c in self.devices.shelf_controllers}

    def plate_front_m(self, plate_id: str) -> tuple[Point, Point]:
        """The plate's front edge on the floor: the segment a shopper reaches across."""
        gondola, shelf, plate = self._plates[plate_id]
        y = gondola.y_m + gondola.depth_m if shelf.side == "north" else gondola.y_m
        x0 = gondola.x_m + plate.offset_m
        return (x0, y), (x0 + plate.width_m, y)

    def distance_to_plate_m(self, plate_id: str, x_m: float, y_m: float) -> float:
        """Floor distance from a point to the plate's front edge."""
        (x0, y0), (x1, _) = self.plate_front_m(plate_id)
        dx = max(x0 - x_m, 0.0, x_m - x1)
        return math.hypot(dx, y_m - y0)

    def gates(self, kind: Literal["entry", "exit"]) -> list[Gate]:
        return [g for g in self.floor.gates if g.kind == kind]

    def device_ids(self) -> set[str]:
        d = self.devices
        return (
            {c.id for c in d.shelf_controllers}
            | set(d.positioning)
            | {c.id for c in d.cameras}
            | {r.id for r in d.rfid_readers}
            | {g.id for g in self.floor.gates}
        )

    def iter_plates(self) -> Iterator[tuple[Gondola, Shelf, Plate]]:
        yield from self._plates.values()


def _check_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate {what} {v!r}; ids must be unique")
        seen.add(v)


def _check_planogram_pairs(planogram: list[PlanogramEntry]) -> None:
    """A plate may stock several SKUs, but each (plate, SKU) pair only once."""
    first: dict[tuple[str, str], int] = {}
    for n, e in enumerate(planogram):
        k = first.setdefault((e.plate, e.sku), n)
        if k != n:
            raise ValueError(
                f"planogram[{n}] repeats plate {e.plate!r} with sku {e.sku!r} "
                f"(first listed at planogram[{k}]); merge the two entries into one"
            )


def gtin_check_digit(first13: str) -> int:
    """GS1 mod-10 check digit for the first 13 digits of a GTIN-14."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(first13))
    return (10 - total % 10) % 10


def parse_store(data: object, source: str = "<store>") -> Store:
    """Validate a store description already read into Python objects."""
    try:
        return Store.model_validate(data)
    except ValidationError as exc:
        raise StoreFileError(describe_invalid(exc, source, "store description")) from None


def load_store(path: str | Path) -> Store:
    """Read and validate a store file; raises StoreFileError naming the bad field."""
    path = Path(path)
    return parse_store(read_yaml(path, "store file", StoreFileError), str(path))
