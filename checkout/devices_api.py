"""HTTP routes for the manager's dashboard: the store and the health of its devices.

``devices_router(health, store)`` serves one store (a store process serves
one): ``GET /stores`` lists it with its devices counted by health,
``GET /stores/{store_id}`` is that summary (404 for any other id),
``GET /devices`` lists devices and services (filters ``kind``, ``health``,
``role``) and ``GET /devices/{device_id}`` is one of them (404 if never
declared nor heard). Health is judged at the store's clock when asked.
There is no auth here: the app factory attaches the role dependencies.

>>> from pathlib import Path
>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> health = DeviceHealth(store, LocalTransport(), now=lambda: 1.8e9)
>>> app = FastAPI(); app.include_router(devices_router(health, store))
>>> TestClient(app).get("/stores").json()[0]["devices"]["unknown"]
30
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from checkout.devices import DeviceHealth, DeviceRecord, Health, Role
from iot.store import Store

__all__ = ["StoreSummary", "devices_router"]


class StoreSummary(BaseModel):
    """One store as the dashboard lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_id: str
    name: str
    gln: str | None = Field(description="GS1 Global Location Number, if the store file has one.")
    now_s: float = Field(description="The store's clock (event time, Unix s) health is judged at.")
    devices: dict[Health, int] = Field(description="Devices by health (every health named).")
    services: dict[Health, int] = Field(description="Services (brain, operations...) by health.")
    devices_total: int
    open_sessions: int | None = Field(
        default=None, description="Visits in the store now, when the app counts them."
    )


def devices_router(
    health: DeviceHealth,
    store: Store,
    *,
    open_sessions: Callable[[], int] | None = None,
) -> APIRouter:
    """Routes reading ``health`` (the caller starts, ticks and closes it) for ``store``.

    ``open_sessions``: counts the open visits for the store summary (e.g. the
    ledger's), left null without it.
    """
    router = APIRouter(tags=["devices"])

    def summary() -> StoreSummary:
        devices = health.health_counts("device")
        return StoreSummary(
            store_id=store.store_id,
            name=store.name,
            gln=store.gln,
            now_s=health.clock_s(),
            devices=devices,
            services=health.health_counts("service"),
            devices_total=sum(devices.values()),
            open_sessions=open_sessions() if open_sessions is not None else None,
        )

    @router.get("/stores")
    def stores() -> list[StoreSummary]:
        """The stores served here (one per store process), with device health counts."""
        return [summary()]

    @router.get("/stores/{store_id}")
    def one_store(store_id: str) -> StoreSummary:
        if store_id != store.store_id:
            raise HTTPException(
                404,
                f"store {store_id[:100]!r} is not served here (this process serves "
                f"{store.store_id!r}); list the stores at GET /stores",
            )
        return summary()

    @router.get("/devices")
    def devices(
        kind: Annotated[str | None, Query(max_length=64)] = None,
        health_: Annotated[Health | None, Query(alias="health")] = None,
        role: Role | None = None,
    ) -> list[DeviceRecord]:
        """Devices and services by role, kind and id; filters combine (AND)."""
        return health.devices(kind=kind, health=health_, role=role)

    @router.get("/devices/{device_id}")
    def device(device_id: str) -> DeviceRecord:
        found = health.device(device_id)
        if found is None:
            raise HTTPException(
                404,
                f"no device {device_id[:128]!r} in store {store.store_id!r}: the store file "
                "does not list it and it never published; list them at GET /devices",
            )
        return found

    return router
