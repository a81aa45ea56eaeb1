"""Scenario files: who comes to the simulated store, what they do, how the sensors behave.

A scenario is a YAML file read once and checked with pydantic; a bad file
fails with the dotted path of the bad field and what to do about it.

Schema (every field has a default except ``store``)::

    store: ../stores/demo.yaml      # store description, relative to this file
    seed: 7                         # one seed decides everything (same seed, same bytes)
    start_time_s: 1767603600        # event time of the start, Unix s (2026-01-05T09:00:00Z)
    arrivals:
      visits: 60                    # exact number of visits
      arrival_rate_per_min: 2.0     # Poisson arrivals, mean shoppers per minute
      gate_cycle_s: 1.5             # the entry gate takes one scan-in at a time
    behaviour:
      plates_per_visit: {min: 2, max: 6}   # distinct plates a shopper picks from
      multi_pick_prob: 0.2          # a reach takes 2-3 units instead of 1
      put_back_prob: 0.1            # after a pick, one unit goes back on the same plate
      wrong_plate_put_back_prob: 0.05  # per stop: a carried unit is left on this (wrong) plate
      side_by_side_prob: 0.1        # prefer a gondola another shopper is standing at
      walk_speed_m_s: {min: 0.8, max: 1.3}
      browse_s: {min: 0.5, max: 3.0}       # standing at the plate before the first reach
      reach_s: {min: 1.0, max: 2.5}        # one hand in the shelf
      between_reaches_s: {min: 1.5, max: 3.5}  # hand out until the next reach
      linger_s: {min: 0.3, max: 1.5}       # standing after the last reach
    sensors:
      load_cell_noise_g: null       # overrides the store's noise_g when set
      drift_g_per_h: 4.0            # slow load-cell drift, g per hour (per plate)
      positioning_noise_m: 0.08     # Gaussian noise on each track coordinate, m
      positioning_rate_hz: 5.0      # track batches per second
    theft:
      tailgaters: 0                 # walk in behind a scanning shopper, no scan-in
      tailgater_tagged_prob: 0.7    # a tailgater's stop goes for an RFID-tagged SKU
      swaps: 0                      # take a tagged product, leave another one in its place
      weight_losses: [{at_s: 500, plate: g02-s1-p1, grams: 300}]   # nobody there
      stray_tags_per_reader: 0      # static tagged items by each gate reader
    stock:
      initial_fraction: 1.0         # share of the planogram's initial_units on the shelves
      restocks:                     # staff put units back (no shopper): one pile or all
      - {at_s: 900, capacity_fraction: 0.5}          # every pile, half its capacity
      - {at_s: 300, plate: g01-s1-p1, sku: SKU001, units: 6}

>>> from pathlib import Path
>>> s = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "normal.yaml")
>>> s.store.name, s.arrivals.visits > 0
('demo.yaml', True)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from iot.configfile import describe_invalid, read_yaml

__all__ = [
    "Arrivals",
    "Behaviour",
    "FloatRange",
    "IntRange",
    "Restock",
    "Scenario",
    "ScenarioFileError",
    "Sensors",
    "Stock",
    "Theft",
    "WeightLoss",
    "load_scenario",
    "parse_scenario",
    "with_store",
]

DEFAULT_START_TIME_S = 1_767_603_600.0  # 2026-01-05T09:00:00Z


class ScenarioFileError(ValueError):
    """A scenario file is missing, unreadable or invalid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatRange(_Strict):
    """A closed interval a value is drawn from uniformly."""

    min: float = Field(ge=0, description="Lower bound (inclusive).")
    max: float = Field(ge=0, description="Upper bound (inclusive); at least min.")

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}; swap them")
        return self


class IntRange(_Strict):
    """A closed integer interval a count is drawn from uniformly."""

    min: int = Field(ge=0, description="Lower bound (inclusive).")
    max: int = Field(ge=0, description="Upper bound (inclusive); at least min.")

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}; swap them")
        return self


class Arrivals(_Strict):
    visits: int = Field(
        default=60, ge=1, le=5000, description="Exact number of visits to simulate."
    )
    arrival_rate_per_min: float = Field(
        default=2.0, gt=0, le=120, description="Mean shopper arrivals per minute (Poisson process)."
    )
    gate_cycle_s: float = Field(
        default=1.5,
        ge=0,
        le=30,
        description="An entry gate lets one scan-in through at a time: a shopper arriving sooner "
        "after the previous one waits this long after them, s.",
    )


class Behaviour(_Strict):
    plates_per_visit: IntRange = Field(
        default=IntRange(min=2, max=6), description="Distinct plates a shopper picks from."
    )
    multi_pick_prob: float = Field(
        default=0.2, ge=0, le=1, description="Chance that one reach takes 2-3 units instead of 1."
    )
    put_back_prob: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Chance that after a pick one unit goes back on the same plate.",
    )
    wrong_plate_put_back_prob: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Chance per stop that a unit carried from an earlier plate is left here.",
    )
    side_by_side_prob: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Chance that a shopper prefers a gondola where another shopper is standing.",
    )
    walk_speed_m_s: FloatRange = Field(
        default=FloatRange(min=0.8, max=1.3), description="Walking speed per shopper, m/s."
    )
    browse_s: FloatRange = Field(
        default=FloatRange(min=0.5, max=3.0),
        description="Standing at the plate before the first reach, s.",
    )
    reach_s: FloatRange = Field(
        default=FloatRange(min=1.0, max=2.5), description="Duration of one reach into the shelf, s."
    )
    between_reaches_s: FloatRange = Field(
        default=FloatRange(min=1.5, max=3.5),
        description="Pause between two reaches at one stop, s.",
    )
    linger_s: FloatRange = Field(
        default=FloatRange(min=0.3, max=1.5),
        description="Standing at the plate after the last reach, s.",
    )

    @model_validator(mode="after")
    def _sane(self) -> Behaviour:
        if self.walk_speed_m_s.min <= 0:
            raise ValueError("walk_speed_m_s.min must be above 0 m/s")
        if self.reach_s.min < 0.5:
            raise ValueError(
                f"reach_s.min {self.reach_s.min} s is too short for a hand; use at least 0.5"
            )
        if self.between_reaches_s.min < 1.0:
            raise ValueError(
                f"between_reaches_s.min {self.between_reaches_s.min} s leaves the plate no time to "
                "settle; use at least 1.0"
            )
        return self


class Sensors(_Strict):
    load_cell_noise_g: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Load-cell noise (1 sd, g); overrides the store's noise_g.",
    )
    drift_g_per_h: float = Field(
        default=4.0, ge=0, le=500, description="Slow load-cell drift per plate, g/h."
    )
    positioning_noise_m: float = Field(
        default=0.08, ge=0, le=2, description="Gaussian noise on each track coordinate (1 sd), m."
    )
    positioning_rate_hz: float = Field(
        default=5.0, gt=0, le=30, description="Track batches per second."
    )


class Restock(_Strict):
    """Staff put units back on a plate: one pile, or every pile of the store."""

    at_s: float = Field(ge=0, description="Seconds after the scenario's start.")
    plate: str | None = Field(default=None, description="Plate id; none: every stocked plate.")
    sku: str | None = Field(
        default=None, description="SKU on that plate; none: every SKU the planogram puts there."
    )
    units: int | None = Field(default=None, ge=1, le=10_000, description="Units added per pile.")
    capacity_fraction: float | None = Field(
        default=None, gt=0, le=1, description="Units added per pile as a share of its capacity."
    )

    @model_validator(mode="after")
    def _one_amount(self) -> Restock:
        if (self.units is None) == (self.capacity_fraction is None):
            raise ValueError("give exactly one of units or capacity_fraction")
        if self.sku is not None and self.plate is None:
            raise ValueError(f"sku {self.sku!r} needs the plate it is restocked on")
        return self


class Stock(_Strict):
    initial_fraction: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of the planogram's initial_units on the shelves at the start "
        "(a store before its morning delivery); rounded per pile.",
    )
    restocks: list[Restock] = Field(
        default_factory=list, description="Staff restocking during the run, in any order."
    )


class WeightLoss(_Strict):
    """A plate loses weight with nobody there (spoilage, a leaking pack, a failing cell)."""

    at_s: float = Field(ge=0, description="Seconds after the scenario's start.")
    plate: str = Field(description="Plate id.")
    grams: float = Field(gt=0, le=20_000, description="Weight lost at once, g.")


class Theft(_Strict):
    tailgaters: int = Field(
        default=0,
        ge=0,
        le=500,
        description="People who walk in right behind a scanning shopper without scanning, "
        "shop, and walk out.",
    )
    tailgater_tagged_prob: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Per stop of a tailgater: the chance it goes for a plate of an RFID-tagged "
        "SKU (the high-value ones) when one is in stock.",
    )
    swaps: int = Field(
        default=0,
        ge=0,
        le=500,
        description="Shoppers who take a tagged product and leave another product they carry "
        "on its plate in its place (wrong-item put-back).",
    )
    weight_losses: list[WeightLoss] = Field(
        default_factory=list, description="Weight lost with no interaction (an operations case)."
    )
    stray_tags_per_reader: int = Field(
        default=0,
        ge=0,
        le=50,
        description="Tagged items on a display by each gate reader: read again and again, never "
        "moving (they must never raise a passage).",
    )


class Scenario(_Strict):
    store: Path = Field(
        description="Store description file; relative paths are read from the scenario's folder."
    )
    seed: int = Field(
        default=0, ge=0, description="Seed of every random draw; same seed, same run."
    )
    start_time_s: float = Field(
        default=DEFAULT_START_TIME_S,
        ge=946_684_800.0,
        le=4_000_000_000.0,
        description="Event time at which the simulation starts, Unix seconds.",
    )
    arrivals: Arrivals = Field(
        default_factory=Arrivals, description="How many shoppers come, how often."
    )
    behaviour: Behaviour = Field(
        default_factory=Behaviour, description="What shoppers do in the store."
    )
    sensors: Sensors = Field(
        default_factory=Sensors, description="How the simulated sensors behave."
    )
    theft: Theft = Field(
        default_factory=Theft, description="Shoplifting and shrink the run plays out."
    )
    stock: Stock = Field(
        default_factory=Stock, description="Shelf stock at the start and staff restocking."
    )

    @field_validator("store")
    @classmethod
    def _no_nul(cls, store: Path) -> Path:
        if "\x00" in str(store):  # no file system has such a name; resolving it would raise
            raise ValueError("the path holds a NUL character; give a file name")
        return store


def parse_scenario(
    data: object, source: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Validate a scenario given as Python objects; resolve ``store`` against ``base_dir``."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioFileError(describe_invalid(exc, source, "scenario")) from None
    if base_dir is not None and not scenario.store.is_absolute():
        scenario = scenario.model_copy(update={"store": (base_dir / scenario.store).resolve()})
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioFileError naming the bad field."""
    path = Path(path)
    data = read_yaml(path, "scenario file", ScenarioFileError)
    scenario = parse_scenario(data, str(path), path.resolve().parent)
    if not _is_file(scenario.store):
        raise ScenarioFileError(
            f"{path}: store: file {scenario.store} does not exist; the path is read relative to "
            "the scenario file's folder"
        )
    return scenario


def with_store(scenario: Scenario, store: str | Path) -> Scenario:
    """The same shoppers in another store file (same floor and gondolas, other devices).

    Used to compare layouts, e.g. where the ceiling cameras hang, on one draw.
    """
    path = Path(store)
    if not _is_file(path):
        raise ScenarioFileError(
            f"store file {path} does not exist (given to replace the scenario's)"
        )
    return scenario.model_copy(update={"store": path.resolve()})


def load_scenario_as(
    path: str | Path, *, seed: int | None = None, store: str | Path | None = None
) -> Scenario:
    """A scenario file with its seed and its store file replaced where given.

    One draw of shoppers can so be replayed with another seed or in another
    layout of the same floor; every tool that takes ``--seed``/``--store`` reads
    scenarios through here.
    """
    scenario = load_scenario(path)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    return scenario if store is None else with_store(scenario, store)


def _is_file(path: Path) -> bool:
    """``Path.is_file`` that answers False, not OSError, for a name too long to look up."""
    try:
        return path.is_file()
    except OSError:
        return False
