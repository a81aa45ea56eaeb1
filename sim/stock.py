"""Shelf stock the scenario sets: how full the shelves start, and when staff restock.

A store before its delivery starts with part of the planogram's units
(``stock.initial_fraction``), and staff put units back during the day
(``stock.restocks``). Both are expanded here once, so the planner, the load
cells and the shelf renderer book the same units at the same times.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> from sim.scenario import Restock, Stock
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> half = stocked_store(store, Stock(initial_fraction=0.5))
>>> half.planogram[0].initial_units, store.planogram[0].initial_units
(11, 22)
>>> r = plan_restocks(store, Stock(restocks=[Restock(at_s=60, capacity_fraction=0.5)]), 0.0)
>>> len(r) == len(store.planogram), r[0].t_s, r[0].units
(True, 60.0, 12)
"""

from __future__ import annotations

from dataclasses import dataclass

from iot.store import Store
from sim.scenario import Stock

__all__ = ["RestockPlan", "plan_restocks", "stocked_store"]


@dataclass(frozen=True)
class RestockPlan:
    """Staff add ``units`` of ``sku`` to ``plate_id`` at event time ``t_s`` (no shopper)."""

    t_s: float
    plate_id: str
    sku: str
    units: int


def stocked_store(store: Store, stock: Stock) -> Store:
    """The store with each pile's initial units scaled by the scenario's fraction."""
    if stock.initial_fraction == 1.0:
        return store
    planogram = [
        e.model_copy(update={"initial_units": round(e.initial_units * stock.initial_fraction)})
        for e in store.planogram
    ]
    return store.model_copy(update={"planogram": planogram})


def plan_restocks(store: Store, stock: Stock, start_s: float) -> list[RestockPlan]:
    """Every restock of the scenario, one per pile, in time order."""
    out: list[RestockPlan] = []
    for n, r in enumerate(stock.restocks):
        piles = [
            e
            for e in store.planogram
            if (r.plate is None or e.plate == r.plate) and (r.sku is None or e.sku == r.sku)
        ]
        if not piles:
            raise ValueError(
                f"stock.restocks[{n}]: the planogram has no pile on plate {r.plate!r}"
                + (f" of {r.sku!r}" if r.sku else "")
                + "; check the plate and sku against the store file"
            )
        for e in piles:
            units = (
                r.units
                if r.units is not None
                else round(e.capacity_units * (r.capacity_fraction or 0))
            )
            out.append(RestockPlan(start_s + r.at_s, e.plate, e.sku, max(1, units)))
    return sorted(out, key=lambda p: (p.t_s, p.plate_id, p.sku))
