"""HTTP routes for the manager's footfall view: counts, occupancy, dwell and a heatmap PNG.

>>> from pathlib import Path
>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> from checkout.footfall import FootfallService
>>> from checkout.heatmap import HeatGrid
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> heat = HeatGrid.for_store(store)
>>> service = FootfallService(store, LocalTransport(), now=lambda: 1.8e9, on_batch=heat.add)
>>> app = FastAPI(); app.include_router(footfall_router(service, heat, store))
>>> TestClient(app).get("/footfall").json()["entries"]
0
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from checkout.footfall import FootfallService
from checkout.heatmap import HeatGrid, window_png
from iot.store import Store

__all__ = ["footfall_router"]

# An event time as iot.payloads.EventTime: 2000..2100, so no NaN, infinity or undrawable date.
_WINDOW_EDGE_S = Annotated[
    float, Query(ge=946_684_800.0, le=4_102_444_800.0, description="Event time, Unix s.")
]


def footfall_router(service: FootfallService, heat: HeatGrid, store: Store) -> APIRouter:
    """Routes over the footfall fold and its heat grid; the caller feeds both."""
    router = APIRouter(tags=["footfall"])

    @router.get("/footfall")
    def footfall() -> dict[str, Any]:
        """Entries and exits per gate, occupancy samples, dwell per zone and per visit."""
        return service.report().model_dump()

    @router.get("/heatmap.png", response_class=Response)
    def heatmap(from_s: _WINDOW_EDGE_S, to_s: _WINDOW_EDGE_S) -> Response:
        """Floor occupancy (person-seconds per cell) over ``[from_s, to_s)``, event time."""
        try:
            png = window_png(heat, store, from_s, to_s)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return Response(png, media_type="image/png")

    return router
