"""Ground truth of a simulated run: what every shopper really did.

The twin fills this in while planning; scoring reads it. It is plain data
(pydantic) so it can be written next to an evaluation and read back.

>>> t = GroundTruth(visits=[], interactions=[])
>>> GroundTruth.model_validate_json(t.model_dump_json()) == t
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GroundTruth",
    "IncidentTruth",
    "InteractionTruth",
    "StockoutTruth",
    "VisitTruth",
    "net_basket",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InteractionTruth(_Strict):
    """One reach into a shelf that moved units."""

    token: str = Field(description="Scan-in token of the visit that reached.")
    plate_id: str = Field(description="Plate the units left or arrived on.")
    sku: str = Field(
        description="SKU of the units moved (may differ from the plate's on a wrong-plate put)."
    )
    action: Literal["pick", "put"] = Field(
        description="pick: units left the plate; put: units arrived."
    )
    quantity: int = Field(ge=1, description="Units moved in this reach.")
    weight_g: float = Field(description="Actual total weight of the units moved, g.")
    started_s: float = Field(description="Hand entered the shelf, event time.")
    ended_s: float = Field(description="Hand left the shelf, event time.")
    wrong_plate: bool = Field(
        description="A put of a SKU the planogram does not assign to this plate."
    )


class VisitTruth(_Strict):
    token: str = Field(description="Pseudonymous scan-in token.")
    track_id: str = Field(description="Positioning track id of this shopper.")
    entered_s: float = Field(description="Scan-in at the entry gate, event time.")
    exited_s: float = Field(description="Crossed the exit gate line, event time.")
    basket: dict[str, int] = Field(
        description="SKU -> units taken out of the store (put-backs netted)."
    )


class StockoutTruth(_Strict):
    plate_id: str = Field(description="Plate whose planogram SKU ran out.")
    sku: str = Field(description="The plate's planogram SKU.")
    empty_s: float = Field(description="When the last unit left the plate, event time.")
    refilled_s: float | None = Field(default=None, description="When a unit came back, if it did.")


class IncidentTruth(_Strict):
    """Something loss prevention (or operations) should be told about."""

    kind: Literal["tailgating", "wrong_put_back", "weight_loss"] = Field(
        description="tailgating: walked in without a scan-in (and shopped); wrong_put_back: "
        "left another product on the plate a tagged unit was taken from; weight_loss: a plate "
        "lost weight with nobody there."
    )
    category: Literal["theft", "operations"]
    t_s: float = Field(description="When it began: the entry, the put, the loss; event time.")
    until_s: float = Field(description="When the person left (the loss itself for weight).")
    token: str | None = Field(default=None, description="The person's visit token, if any.")
    plate_ids: list[str] = Field(
        default_factory=list, description="Plates the person took from or put on (or lost)."
    )
    epcs: list[str] = Field(
        default_factory=list, description="EPCs (hex) of tagged units carried out unpaid."
    )


class GroundTruth(_Strict):
    visits: list[VisitTruth] = Field(description="Every visit, in scan-in order.")
    interactions: list[InteractionTruth] = Field(
        description="Every reach that moved units, in time order."
    )
    stockouts: list[StockoutTruth] = Field(
        default_factory=list, description="Plates that ran empty."
    )
    unscanned: list[VisitTruth] = Field(
        default_factory=list,
        description="People who walked in with no scan-in (tailgaters): no receipt is due, "
        "but footfall counts them.",
    )
    incidents: list[IncidentTruth] = Field(
        default_factory=list, description="Theft and operations incidents, in time order."
    )

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1), encoding="utf-8")

    @classmethod
    def read_json(cls, path: str | Path) -> GroundTruth:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def visit(self, token: str) -> VisitTruth:
        for v in self.visits:
            if v.token == token:
                return v
        raise KeyError(f"no visit with token {token!r}")


def net_basket(interactions: Iterable[InteractionTruth]) -> dict[str, int]:
    """SKU -> picked minus put back, zero entries dropped (sorted by SKU)."""
    counts: Counter[str] = Counter()
    for i in interactions:
        counts[i.sku] += i.quantity if i.action == "pick" else -i.quantity
    return {sku: q for sku, q in sorted(counts.items()) if q != 0}
