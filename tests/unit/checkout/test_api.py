"""The HTTP API over the ledger, through FastAPI's TestClient."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from checkout.api import create_app
from checkout.auth import AccountBook
from checkout.ledger import Ledger, SessionRecord
from iot.payloads import CartEvent, Receipt
from tests.unit.checkout.signed_in import signed_in
from tests.unit.checkout.store_api import build_store_api

T0 = 1_800_000_000.0


@pytest.fixture
def client(store, db):
    ledger = Ledger(db)
    ledger.save_session(
        SessionRecord(
            session_id="s-a",
            token="a",
            state="bound",
            entered_s=T0,
            entry_event_id="in-a",
            track_id="t1",
        )
    )
    ledger.save_session(
        SessionRecord(
            session_id="s-b",
            token="b",
            state="closed",
            entered_s=T0,
            entry_event_id="in-b",
            exited_s=T0 + 9,
            receipt_id="r-s-b",
        )
    )
    for eid, sku, n in (("c1", "SKU001", 2), ("c2", "SKU021", 1), ("c3", "SKU001", -1)):
        ledger.append(
            CartEvent(
                id=eid,
                event_time_s=T0 + 1,
                device_id="brain",
                session_id="s-a",
                sku=sku,
                quantity_delta=n,
                confidence=0.9,
                source_event_id="e",
            )
        )
    ledger.save_receipt(
        Receipt(
            id="r-s-b",
            event_time_s=T0 + 10,
            device_id="brain",
            session_id="s-b",
            token="b",
            entered_s=T0,
            exited_s=T0 + 9,
            currency="EUR",
            lines=[],
            total_cents=0,
            needs_review=False,
        )
    )
    book = AccountBook(db)
    with signed_in(create_app(ledger, store, book, now=lambda: T0 + 20), book, "boss") as c:
        yield c
    ledger.close()
    book.close()


def test_health(client) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ok", "store_id": "demo", "now_s": T0 + 20, "open_sessions": 1}


@pytest.mark.parametrize(
    ("query", "ids"), [("", ["s-a", "s-b"]), ("?state=open", ["s-a"]), ("?state=closed", ["s-b"])]
)
def test_sessions_by_state(client, query, ids) -> None:
    assert [s["session_id"] for s in client.get(f"/sessions{query}").json()] == ids


def test_bad_state_is_refused(client) -> None:
    assert client.get("/sessions?state=gone").status_code == 422


def test_session_and_priced_cart(client, store) -> None:
    assert client.get("/sessions/s-a").json()["track_id"] == "t1"
    cart = client.get("/sessions/s-a/cart").json()
    assert [(x["sku"], x["quantity"]) for x in cart["lines"]] == [("SKU001", 1), ("SKU021", 1)]
    prices = store.items["SKU001"].price_cents + store.items["SKU021"].price_cents
    assert cart["total_cents"] == prices
    assert cart["currency"] == "EUR"


def test_receipts(client) -> None:
    assert [r["id"] for r in client.get("/receipts").json()] == ["r-s-b"]
    assert client.get("/receipts/r-s-b").json()["session_id"] == "s-b"


@pytest.mark.parametrize("path", ["/sessions/nope", "/sessions/nope/cart", "/receipts/nope"])
def test_unknown_ids_are_404_with_a_hint(client, path) -> None:
    res = client.get(path)
    assert res.status_code == 404
    assert "nope" in res.json()["detail"] and "GET /" in res.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "echoed"),
    [("NaN", "nan"), ("Infinity", "inf"), ("-1e400", "-inf"), ('"\\ud800"', "\\ud800")],
)
def test_input_that_json_cannot_carry_back_is_still_a_422(client, raw, echoed) -> None:
    """Found by probing the API: FastAPI's 422 echoed these and failed to write them, a 500."""
    body = f'{{"username": {raw}, "password": "a long test password"}}'
    r = client.post("/auth/login", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "username"], echoed)


@pytest.mark.parametrize(
    ("reason", "says"), [("   ", "at least 1 character"), ("it beeps\a", "control character")]
)
def test_a_dispute_with_no_plain_reason_is_422(reason: str, says: str, db: str) -> None:
    """Found by the API fuzz: a blank reason passed the route and failed in the case book, a 500."""
    api = build_store_api(db)
    try:
        shopper = TestClient(api.app, headers={"Authorization": f"Bearer {api.token('shopper-a')}"})
        url = f"/me/receipts/{api.ids['receipt_a']}/disputes"
        r = shopper.post(url, json={"sku": "SKU001", "reason": reason})
        assert r.status_code == 422, r.text
        [error] = r.json()["detail"]
        assert error["loc"] == ["body", "reason"] and says in error["msg"]
        assert api.ops.cases.queue(rules=["dispute"]) == []
        fine = shopper.post(url, json={"sku": "SKU001", "reason": "  put it back  "})
        assert fine.status_code == 201
    finally:
        api.close()


@pytest.mark.parametrize(
    "path", ["/receipts/r%00x", "/sessions/s%00x/cart", "/cases/c%00x", "/reservations/o%00x"]
)
def test_a_nul_in_an_id_is_refused_not_a_server_error(path: str, db: str) -> None:
    """SQLite finds no such row (404); PostgreSQL cannot compare such text at all (422)."""
    api = build_store_api(db)
    try:
        admin = TestClient(
            api.app,
            headers={"Authorization": f"Bearer {api.token('admin')}"},
            raise_server_exceptions=False,
        )
        r = admin.get(path)
        assert r.status_code == (422 if db.startswith("postgresql") else 404), r.text
        assert admin.get("/receipts/" + api.ids["receipt_a"]).status_code == 200  # still serving
    finally:
        api.close()
