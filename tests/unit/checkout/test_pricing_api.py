"""The pricing routes on a bare app: catalog, price changes, promotions, refusals as HTTP."""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.pricebook import PriceBook
from checkout.pricing_api import pricing_router
from iot.store import Store

T0 = 1_800_000_000.0
WATER, PENNE = "SKU001", "SKU013"  # catalog prices 89 and 139 cents


class Clock:
    def __init__(self) -> None:
        self.now_s = T0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def book(store: Store, db: str) -> Iterator[PriceBook]:
    b = PriceBook(store, db)
    yield b
    b.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(store: Store, book: PriceBook, clock: Clock) -> TestClient:
    app = FastAPI()
    app.include_router(pricing_router(book, store, clock, actor=lambda: "mia"))
    return TestClient(app)


def change(**over: Any) -> dict[str, Any]:
    return {"sku": WATER, "unit_price_cents": 99, "effective_from_s": T0 + 60, **over}


def promo(**over: Any) -> dict[str, Any]:
    body = {
        "name": "water week",
        "skus": [WATER],
        "kind": "percent_off",
        "value": 20,
        "effective_from_s": T0 + 100,
        "until_s": T0 + 200,
    }
    return {**body, **over}


def item(client: TestClient, sku: str, **params: Any) -> dict[str, Any]:
    page = client.get("/catalog", params=params).json()
    return next(i for i in page["items"] if i["sku"] == sku)


def test_the_catalog_lists_every_item_priced_now_or_at_a_time(client, store, clock) -> None:
    page = client.get("/catalog").json()
    assert (page["store_id"], page["currency"], page["at_s"]) == ("demo", "EUR", T0)
    assert [i["sku"] for i in page["items"]] == [i.sku for i in store.catalog.items]
    water = page["items"][0]
    assert water["name"] == store.items[WATER].name
    assert water["catalog_price_cents"] == water["unit_price_cents"] == 89
    assert water["promotion"] is None
    assert client.post("/prices/changes", json=change()).status_code == 201
    assert client.post("/promotions", json=promo()).status_code == 201
    assert item(client, WATER)["unit_price_cents"] == 89  # nothing started yet
    assert item(client, WATER, at_s=T0 + 60)["unit_price_cents"] == 99
    at_promo = item(client, WATER, at_s=T0 + 150)
    assert (at_promo["list_price_cents"], at_promo["unit_price_cents"]) == (99, 79)
    assert at_promo["promotion"] == "water week"
    clock.now_s = T0 + 150
    assert item(client, WATER)["promotion"] == "water week"  # now moved on
    assert client.get("/catalog", params={"at_s": "soon"}).status_code == 422


def test_a_price_change_is_scheduled_listed_and_cancelled_before_it_starts(client) -> None:
    r = client.post("/prices/changes", json=change())
    assert r.status_code == 201
    made = r.json()
    assert (made["sku"], made["unit_price_cents"], made["set_by"]) == (WATER, 99, "mia")
    assert made["set_at_s"] == T0 and made["cancelled_at_s"] is None
    assert [c["id"] for c in client.get("/prices/changes").json()] == [made["id"]]
    assert client.get("/prices/changes", params={"sku": PENNE}).json() == []
    gone = client.delete(f"/prices/changes/{made['id']}")
    assert gone.status_code == 200
    assert (gone.json()["cancelled_at_s"], gone.json()["cancelled_by"]) == (T0, "mia")
    assert client.get("/prices/changes").json() == []
    listed = client.get("/prices/changes", params={"include_cancelled": True}).json()
    assert [c["id"] for c in listed] == [made["id"]]
    assert item(client, WATER, at_s=T0 + 60)["unit_price_cents"] == 89


def test_cancelling_a_change_in_effect_is_a_conflict(client, clock) -> None:
    made = client.post("/prices/changes", json=change()).json()
    clock.now_s = T0 + 60
    r = client.delete(f"/prices/changes/{made['id']}")
    assert r.status_code == 409
    assert "took effect" in r.json()["detail"]
    assert item(client, WATER)["unit_price_cents"] == 99
    assert client.delete("/prices/changes/4242").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/prices/changes/{id}"),
        ("GET", "/promotions/{id}"),
        ("DELETE", "/promotions/{id}"),
        ("POST", "/promotions/{id}/end"),
    ],
)
@pytest.mark.parametrize("big", [2**63, -(2**63) - 1, 10**30])
def test_an_id_beyond_sqlites_integers_is_not_found(client, method, path, big) -> None:
    """Found by the API fuzz: such an id overflowed into SQLite and answered 500."""
    r = client.request(method, path.format(id=big))
    assert r.status_code == 404, r.text
    assert str(big) in r.json()["detail"] and "GET /" in r.json()["detail"]


def test_a_change_starting_before_now_is_a_conflict(client, clock) -> None:
    clock.now_s = T0 + 100
    r = client.post("/prices/changes", json=change(effective_from_s=T0 + 99))
    assert r.status_code == 409
    assert "reprice picks already made" in r.json()["detail"]
    r = client.post("/promotions", json=promo(effective_from_s=T0 + 99))
    assert r.status_code == 409
    assert client.get("/prices/changes").json() == [] == client.get("/promotions").json()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/prices/changes", change(unit_price_cents=-1), "unit_price_cents"),
        ("/prices/changes", change(unit_price_cents=1.5), "unit_price_cents"),
        ("/prices/changes", change(effective_from_s=12), "effective_from_s"),
        ("/prices/changes", change(sku="no spaces"), "sku"),
        ("/prices/changes", change(colour="red"), "colour"),
        ("/prices/changes", {"sku": WATER, "unit_price_cents": 99}, "effective_from_s"),
        ("/promotions", promo(value=0), "value"),
        ("/promotions", promo(value=101), "value"),
        ("/promotions", promo(kind="bogo"), "kind"),
        ("/promotions", promo(until_s=T0 + 100), "until_s"),
        ("/promotions", promo(until_s=T0 + 50), "until_s"),
        ("/promotions", promo(skus=[]), "skus"),
        ("/promotions", promo(skus=[WATER, WATER]), "skus"),
        ("/promotions", promo(name=""), "name"),
        ("/promotions", promo(name="x" * 201), "name"),
        ("/promotions", promo(extra=1), "extra"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(client, path, body, field) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert any(err["loc"][-1] == field for err in r.json()["detail"]), r.json()
    assert client.get(path).json() == []


def test_an_unknown_sku_is_422_naming_it(client) -> None:
    for path, body in [
        ("/prices/changes", change(sku="SKU999")),
        ("/promotions", promo(skus=[WATER, "SKU999"])),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == 422
        assert "SKU999" in r.json()["detail"]


def test_a_fixed_price_promotion_takes_cents(client) -> None:
    r = client.post("/promotions", json=promo(kind="fixed_price", value=150, skus=[PENNE]))
    assert r.status_code == 201, r.text
    assert item(client, PENNE, at_s=T0 + 150)["unit_price_cents"] == 139  # not above list


def test_a_promotion_ends_at_now_or_is_cancelled_before_it_starts(client, clock) -> None:
    made = client.post("/promotions", json=promo(until_s=None)).json()
    assert (made["set_by"], made["until_s"], made["skus"]) == ("mia", None, [WATER])
    pending = client.post(
        "/promotions", json=promo(name="later", effective_from_s=T0 + 500, until_s=None)
    )
    assert pending.status_code == 201
    assert client.post(f"/promotions/{made['id']}/end").status_code == 409  # not started
    clock.now_s = T0 + 150
    assert client.delete(f"/promotions/{made['id']}").status_code == 409  # started: end it
    ended = client.post(f"/promotions/{made['id']}/end")
    assert ended.status_code == 200
    assert (ended.json()["until_s"], ended.json()["ended_by"]) == (T0 + 150, "mia")
    assert item(client, WATER, at_s=T0 + 149)["promotion"] == "water week"
    assert item(client, WATER)["promotion"] is None
    again = client.post(f"/promotions/{made['id']}/end")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]
    gone = client.delete(f"/promotions/{pending.json()['id']}")
    assert gone.status_code == 200 and gone.json()["cancelled_by"] == "mia"
    assert [p["name"] for p in client.get("/promotions").json()] == ["water week"]
    assert client.get("/promotions", params={"active_at_s": T0 + 160}).json() == []
    assert client.get(f"/promotions/{made['id']}").json()["until_s"] == T0 + 150
    assert client.get("/promotions/4242").status_code == 404
    assert client.post("/promotions/4242/end").status_code == 404


def test_without_an_actor_nobody_is_named(store, book) -> None:
    app = FastAPI()
    app.include_router(pricing_router(book, store, lambda: T0))
    r = TestClient(app).post("/prices/changes", json=change())
    assert r.status_code == 201 and r.json()["set_by"] is None


def test_the_router_refuses_another_stores_book(store, book) -> None:
    other = store.model_copy(update={"store_id": "other"})
    with pytest.raises(ValueError, match="same store"):
        pricing_router(book, other, lambda: T0)


@pytest.mark.parametrize("name", ["checkout.pricebook", "checkout.pricing_api"])
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["nul\x00inside", "bell\a", "tab\there"])
def test_a_promotion_name_with_a_control_character_is_422(client, book, name: str) -> None:
    """A NUL cannot be stored on PostgreSQL at all (a 500 there): refused alike on both engines."""
    r = client.post("/promotions", json=promo(name=name))
    assert r.status_code == 422, r.text
    assert "control character" in r.json()["detail"]
    assert book.promotions(include_cancelled=True) == []
