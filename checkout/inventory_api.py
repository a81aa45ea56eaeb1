"""HTTP routes of the inventory: stock, available-to-promise, alerts, replenishment, reservations.

``inventory_router(service)`` is mounted by the app factory next to the
checkout routes. Routes are plain ``def``: FastAPI runs them in its thread
pool and the service serialises them with the bus handlers under its lock.
An HTTP call carries no event time, so reservations are stamped with the
service's ``now`` unless the body gives ``time_s`` (a replayed order).

Status codes: 422 for a malformed body (FastAPI names the field) or a SKU
not in the catalog; 404 for an unknown SKU or order; 409 when the stock is
short (the detail lists the shortfall per SKU) or the order's state does not
allow the change.

>>> from pathlib import Path
>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> service = InventoryService(store, LocalTransport(), ":memory:", now=lambda: 1.8e9)
>>> app = FastAPI()
>>> app.include_router(inventory_router(service))
>>> TestClient(app).get("/inventory/atp/SKU001").json()
{'sku': 'SKU001', 'atp_units': 44}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from checkout.inventory import (
    InventoryService,
    OrderConflictError,
    Reservation,
    ShortStockError,
    UnknownOrderError,
)
from checkout.stock_alerts import AlertEpisode, ReplenishmentLine

__all__ = ["ReservationRequest", "inventory_router"]

_ID_PATTERN = r"^[A-Za-z0-9._:@/-]+$"  # iot.payloads.Id
Units = Annotated[int, Field(ge=1, le=1000)]


class ReservationRequest(BaseModel):
    """A click-and-collect order to hold."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    order_id: str = Field(
        min_length=1, max_length=128, pattern=_ID_PATTERN, description="The shop's order id."
    )
    lines: dict[Annotated[str, Field(min_length=1, max_length=128)], Units] = Field(
        min_length=1, max_length=200, description="SKU -> units wanted."
    )
    hold_s: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86_400.0,
        description="How long to hold the units, s; the service's default_hold_s if absent.",
    )
    time_s: float | None = Field(
        default=None,
        ge=946_684_800.0,
        le=4_102_444_800.0,
        description="Event time the order was placed, Unix s; the service's clock if absent.",
    )


def inventory_router(service: InventoryService) -> APIRouter:
    """Routes reading and changing ``service``; the caller owns (and closes) the service."""
    router = APIRouter(tags=["inventory"])

    @router.get("/inventory")
    def inventory() -> dict[str, Any]:
        return {
            "skus": [s.model_dump() for s in service.sku_stock()],
            "piles": [p.model_dump() for p in service.piles()],
        }

    @router.get("/inventory/atp")
    def atp_all() -> dict[str, int]:
        return service.atp_all()

    @router.get("/inventory/atp/{sku}")
    def atp(sku: str) -> dict[str, Any]:
        try:
            return {"sku": sku, "atp_units": service.atp(sku)}
        except KeyError:
            raise HTTPException(404, f"no SKU {sku!r} in the catalog; see GET /inventory") from None

    @router.get("/alerts")
    def alerts(
        kind: Literal["low_stock", "stockout"] | None = None,
        state: Literal["raised", "cleared"] | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    ) -> list[AlertEpisode]:
        return service.alert_log(kind, state, limit)

    @router.get("/replenishment")
    def replenishment(gondola_id: str | None = None) -> dict[str, list[ReplenishmentLine]]:
        lines = service.replenishment()
        return lines if gondola_id is None else {gondola_id: lines.get(gondola_id, [])}

    @router.post("/reservations", status_code=201)
    def reserve(order: ReservationRequest) -> Reservation:
        time_s = order.time_s if order.time_s is not None else service.now()
        hold_s = order.hold_s if order.hold_s is not None else service.settings.default_hold_s
        try:
            return service.reserve(order.order_id, order.lines, time_s, time_s + hold_s)
        except ShortStockError as exc:
            detail = {"message": str(exc), "shortfall_units": exc.shortfall_units}
            raise HTTPException(409, detail) from None
        except OrderConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/reservations/{order_id}")
    def reservation(order_id: str) -> Reservation:
        found = service.reservation(order_id)
        if found is None:
            raise HTTPException(404, f"no reservation for order {order_id!r}")
        return found

    @router.delete("/reservations/{order_id}")
    def cancel(order_id: str) -> Reservation:
        return _changed(lambda: service.cancel(order_id, service.now()))

    @router.post("/reservations/{order_id}/picking")
    def start_picking(order_id: str) -> Reservation:
        return _changed(lambda: service.start_picking(order_id, service.now()))

    return router


def _changed(change: Callable[[], Reservation]) -> Reservation:
    """Run a state change of a reservation, mapping its refusals to HTTP statuses."""
    try:
        return change()
    except UnknownOrderError as exc:
        raise HTTPException(404, str(exc)) from None
    except OrderConflictError as exc:
        raise HTTPException(409, str(exc)) from None
