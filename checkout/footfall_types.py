"""Footfall settings and report types, and the aisle zones dwell is measured in.

The value types of ``checkout.footfall``: ``FootfallSettings`` (every
threshold of its counting rule, described there), the ``FootfallReport``
snapshot with its parts (``GateCounts``, ``OccupancySample``, ``DwellStats``),
and ``Zone`` / ``store_zones``. They live apart from the counter to keep each
module small; ``checkout.footfall`` re-exports them all, so import from either.

>>> s = FootfallSettings()
>>> s.band_m < s.commit_depth_m <= s.doorway_depth_m
True
>>> try:
...     FootfallSettings(commit_depth_m=3.0)  # deeper than the doorway
... except ValueError:
...     print("rejected")
rejected
>>> GateCounts(entries=2).model_dump()
{'entries': 2, 'exits': 0}
>>> Zone("g01-south", 0.0, 2.6, 4.0, 3.5, 3.5).contains(1.0, 3.0)
True
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iot.store import Store

__all__ = [
    "DwellStats",
    "FootfallReport",
    "FootfallSettings",
    "GateCounts",
    "OccupancySample",
    "Zone",
    "store_zones",
]


class FootfallSettings(BaseModel):
    """Thresholds of the counting rule (see ``checkout.footfall``). Checked once.

    Each field's description is the docstring under it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    band_m: float = Field(default=0.2, ge=0, le=2)
    """Half-width of the no-decision band around a gate line: jitter smaller never flips, m."""
    commit_depth_m: float = Field(default=1.0, gt=0, le=10)
    """An entry counts once the person is this far from the gate line, inside, m."""
    doorway_depth_m: float = Field(default=2.0, gt=0, le=10)
    """The doorway: floor inside and this close to a gate line. A new track there is taken to
    have come in through the gate (picked up late), a lost one to have left by it, m."""
    outside_depth_m: float = Field(default=3.0, gt=0, le=20)
    """How far outside a gate line its zone reaches, m."""
    gate_margin_m: float = Field(default=0.5, ge=0, le=5)
    """Outside, a gate's zone extends this far beyond each end of its line, m."""
    exit_confirm_s: float = Field(default=1.0, ge=0, le=60)
    """An exit counts once the person has been out this long (or the track ends out), s."""
    stitch_window_s: float = Field(default=2.0, ge=0, le=60)
    """A new track may continue one that ended at most this long before, s."""
    stitch_radius_m: float = Field(default=0.8, ge=0, le=10)
    """A new track continues an ended one at most this far away, m (plus the next setting)."""
    stitch_speed_m_s: float = Field(default=1.5, ge=0, le=5)
    """The stitch radius grows by this much per second of gap (walking speed), m/s."""
    lost_window_s: float = Field(default=30.0, ge=0, le=600)
    """A person lost deep inside may be continued by a new track this long after, s."""
    track_timeout_s: float = Field(default=3.0, gt=0, le=600)
    """A track unseen this long has ended, even if the tracker never said so, s."""
    zone_min_dwell_s: float = Field(default=2.0, ge=0, le=600)
    """A stay in a zone shorter than this is a pass, not a dwell, s."""
    zone_gap_s: float = Field(default=1.5, ge=0, le=60)
    """Leaving a zone for at most this long does not end the stay (jitter at its edge), s."""
    occupancy_step_s: float = Field(default=60.0, gt=0, le=3600)
    """Occupancy is sampled at whole multiples of this event time, s."""
    occupancy_keep: int = Field(default=1440, ge=1, le=1_000_000)
    """Newest occupancy samples kept (a day of minutes by default)."""
    dwell_bin_s: float = Field(default=1.0, gt=0, le=60)
    """Dwell histogram bin: medians and p90s are exact to half of it, s."""
    dwell_max_s: float = Field(default=14_400.0, gt=0, le=86_400)
    """Longer stays fall in the last bin, s."""
    max_pool: int = Field(default=1000, ge=1, le=100_000)
    """Most ended persons held for stitching at once; the oldest is settled first."""

    @model_validator(mode="after")
    def _ordered(self) -> FootfallSettings:
        if not self.band_m < self.commit_depth_m <= self.doorway_depth_m:
            raise ValueError(
                f"need band_m < commit_depth_m <= doorway_depth_m, got {self.band_m}, "
                f"{self.commit_depth_m}, {self.doorway_depth_m}; widen the doorway or lower "
                "commit_depth_m"
            )
        return self


class _Plain(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GateCounts(_Plain):
    entries: int = Field(default=0, ge=0, description="Entries counted through this gate line.")
    exits: int = Field(default=0, ge=0, description="Exits counted through this gate line.")


class OccupancySample(_Plain):
    time_s: float = Field(description="Event time of the sample, Unix s.")
    counted: int = Field(ge=0, description="Entries minus exits so far (not below 0).")
    tracked: int = Field(ge=0, description="Live tracks committed inside at that time.")


class DwellStats(_Plain):
    count: int = Field(ge=0, description="Stays measured.")
    median_s: float | None = Field(description="Median stay, s (none without stays).")
    p90_s: float | None = Field(description="90th percentile stay, s.")
    mean_s: float | None = Field(description="Mean stay (exact, not binned), s.")
    passes: int = Field(default=0, ge=0, description="Stays too short to count as dwell.")


class FootfallReport(_Plain):
    """A snapshot of the fold; serialises to JSON (``model_dump_json``)."""

    store_id: str
    first_s: float | None = Field(description="Event time of the first batch folded.")
    last_s: float | None = Field(description="Event time of the newest batch folded.")
    entries: int = Field(ge=0)
    exits: int = Field(ge=0)
    occupancy_now: int = Field(ge=0, description="Entries minus exits (not below 0).")
    gates: dict[str, GateCounts]
    occupancy: list[OccupancySample]
    zones: dict[str, DwellStats] = Field(description="Dwell per aisle zone, e.g. g01-south.")
    visit_dwell: DwellStats = Field(description="Time in store, entry to exit crossing.")
    purchases: int = Field(ge=0, description="Receipts with at least one line.")
    conversion: float | None = Field(
        description="purchases / entries; none without entries "
        "or without receipts folded. Not capped at 1: above 1 "
        "means entries were missed."
    )
    diagnostics: dict[str, int] = Field(
        description="balks, orphans, stitched, lost_at_door, "
        "lost_inside, duplicate_points, out_of_order."
    )
    settings: FootfallSettings


@dataclass(frozen=True)
class Zone:
    """An aisle strip in front of one gondola face: the floor a shopper reaches it from."""

    name: str
    x0_m: float
    y0_m: float
    x1_m: float
    y1_m: float
    face_y_m: float

    def contains(self, x_m: float, y_m: float) -> bool:
        return self.x0_m <= x_m <= self.x1_m and self.y0_m <= y_m <= self.y1_m


def store_zones(store: Store) -> list[Zone]:
    """One zone per gondola face that has shelves, ``reach_m`` deep into its aisle.

    >>> from pathlib import Path
    >>> from iot.store import load_store
    >>> s = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
    >>> z = store_zones(s)[0]
    >>> z.name, z.y0_m, z.y1_m
    ('g01-south', 2.6, 3.5)
    """
    zones = []
    for g in store.gondolas:
        for side in sorted({s.side for s in g.shelves}, reverse=True):  # south first
            if side == "south":
                y0, y1, face = round(g.y_m - store.reach_m, 6), g.y_m, g.y_m
            else:
                face = g.y_m + g.depth_m
                y0, y1 = face, round(face + store.reach_m, 6)
            zones.append(Zone(f"{g.id}-{side}", g.x_m, y0, g.x_m + g.length_m, y1, face))
    return zones
