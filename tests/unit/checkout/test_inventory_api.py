"""The inventory's HTTP routes, through FastAPI's TestClient over a real service."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.inventory import InventoryService
from checkout.inventory_api import inventory_router
from iot.bus import LocalTransport, publish
from iot.payloads import ShelfEvent
from iot.store import Store

T0 = 1.8e9
SOLO, SOLO_PLATE = "SKU019", "g04-s1-p1"  # demo: 21 of 23, on this plate only


class Clock:
    def __init__(self) -> None:
        self.now_s = T0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: Store, clock: Clock, db: str) -> InventoryService:
    inv = InventoryService(store, LocalTransport(), db, now=clock)
    inv.start()
    return inv


@pytest.fixture
def client(service: InventoryService) -> TestClient:
    app = FastAPI()
    app.include_router(inventory_router(service))
    return TestClient(app)


def order(lines: dict[str, int], order_id: str = "o-1") -> dict[str, Any]:
    return {"order_id": order_id, "lines": lines}


def pick(service: InventoryService, plate: str, qty: int, t: float) -> None:
    ev = ShelfEvent(
        id=f"sh-{plate}-{t}",
        event_time_s=t,
        device_id=f"shelf-{plate[:3]}",
        plate_id=plate,
        action="pick",
        delta_g=-500.0 * qty,
        started_s=t - 1,
        sku=service.store.skus_on_plate(plate)[0].sku,
        quantity=qty,
        confidence=0.9,
        noise_g=2.0,
    )
    publish(service.transport, service.store.store_id, ev)


def test_inventory_lists_skus_and_piles(client: TestClient, store: Store) -> None:
    body = client.get("/inventory").json()
    assert len(body["piles"]) == len(store.planogram)
    solo = next(s for s in body["skus"] if s["sku"] == SOLO)
    assert (solo["on_shelf_units"], solo["atp_units"]) == (21, 21)


def test_atp_follows_reservations(client: TestClient) -> None:
    assert client.post("/reservations", json=order({SOLO: 5})).status_code == 201
    assert client.get(f"/inventory/atp/{SOLO}").json() == {"sku": SOLO, "atp_units": 16}
    assert client.get("/inventory/atp").json()[SOLO] == 16
    missing = client.get("/inventory/atp/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": {SOLO: 1}}, "order_id"),
        ({"order_id": "o 1", "lines": {SOLO: 1}}, "order_id"),
        ({"order_id": "o-1"}, "lines"),
        ({"order_id": "o-1", "lines": {}}, "lines"),
        ({"order_id": "o-1", "lines": {SOLO: 0}}, "lines"),
        ({"order_id": "o-1", "lines": {SOLO: "two"}}, "lines"),
        ({"order_id": "o-1", "lines": {SOLO: 1}, "hold_s": -5}, "hold_s"),
        ({"order_id": "o-1", "lines": {SOLO: 1}, "colour": "red"}, "colour"),
    ],
)
def test_malformed_orders_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/reservations", json=body)
    assert response.status_code == 422
    assert any(field in err["loc"] for err in response.json()["detail"])
    assert client.get("/reservations/o-1").status_code == 404


def test_unknown_sku_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/reservations", json=order({"NOPE": 1}))
    assert response.status_code == 422 and "lines.NOPE" in response.json()["detail"]


def test_short_stock_is_409_with_the_shortfall(client: TestClient) -> None:
    response = client.post("/reservations", json=order({SOLO: 25}))
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["shortfall_units"] == {SOLO: 4}
    assert SOLO in detail["message"] and "short by 4" in detail["message"]


def test_order_life_cycle(client: TestClient, clock: Clock) -> None:
    made = client.post("/reservations", json=order({SOLO: 3}))
    assert made.json()["state"] == "held" and made.json()["expires_s"] == T0 + 1800
    assert client.post("/reservations", json=order({SOLO: 4})).status_code == 409
    clock.now_s = T0 + 60
    picking = client.post("/reservations/o-1/picking")
    assert picking.json()["state"] == "picking" and picking.json()["picking_s"] == T0 + 60
    cancelled = client.delete("/reservations/o-1")
    assert cancelled.json()["state"] == "cancelled"
    assert client.post("/reservations/o-1/picking").status_code == 409
    assert client.delete("/reservations/o-9").status_code == 404
    assert client.post("/reservations/o-9/picking").status_code == 404
    assert client.get(f"/inventory/atp/{SOLO}").json()["atp_units"] == 21


def test_explicit_time_and_hold(client: TestClient, service: InventoryService) -> None:
    body = {**order({SOLO: 2}), "time_s": T0 + 10, "hold_s": 30}
    assert client.post("/reservations", json=body).json()["expires_s"] == T0 + 40
    service.tick(T0 + 40)
    assert client.get("/reservations/o-1").json()["state"] == "expired"
    assert client.delete("/reservations/o-1").status_code == 409


def test_alerts_filter_by_kind_and_state(client: TestClient, service: InventoryService) -> None:
    pick(service, SOLO_PLATE, 21, T0 + 5)
    every = client.get("/alerts").json()
    assert sorted(a["kind"] for a in every) == ["low_stock", "stockout"]
    stockouts = client.get("/alerts", params={"kind": "stockout", "state": "raised"}).json()
    assert [(a["sku"], a["raised_s"], a["cleared_s"]) for a in stockouts] == [(SOLO, T0 + 5, None)]
    assert client.get("/alerts", params={"state": "cleared"}).json() == []
    assert client.get("/alerts", params={"kind": "fire"}).status_code == 422


def test_replenishment_per_gondola(client: TestClient, service: InventoryService) -> None:
    assert client.get("/replenishment").json() == {}
    pick(service, SOLO_PLATE, 21, T0 + 5)
    pick(service, "g04-s1-p2", 15, T0 + 6)  # SKU020: 4 of 21 left
    lists = client.get("/replenishment").json()
    assert list(lists) == ["g04"]
    assert [(r["plate_id"], r["fill_units"]) for r in lists["g04"]] == [
        (SOLO_PLATE, 23),
        ("g04-s1-p2", 17),
    ]
    assert client.get("/replenishment", params={"gondola_id": "g01"}).json() == {"g01": []}
