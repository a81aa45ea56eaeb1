"""Role isolation over every route of the store API.

Every route the app serves must be listed in ``POLICY`` (a new route that is
not fails the first test, so nobody adds one without saying who may call it).
Then every route is called by nobody, by each role, and by staff of another
store: the anonymous get 401, the wrong role or store 403, and the right
ones get past the door (whatever the route then says about the request).
A shopper can never read another shopper's visits, cart or receipts, even
with the right ids in hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.unit.checkout.store_api import StoreApi, build_store_api

OPEN = "open"  # no sign-in needed
ANYONE = "signed in"  # any signed-in principal, devices included
M, L, S, D, A = "manager", "loss_prevention", "shopper", "device", "admin"
STAFF = frozenset({M, L, A})

# (method, path) -> who may call it: OPEN, ANYONE, or (roles, checked against the store).
POLICY: dict[tuple[str, str], object] = {
    ("GET", "/health"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("POST", "/auth/login"): OPEN,
    ("POST", "/auth/register"): OPEN,
    ("POST", "/auth/logout"): ANYONE,
    ("GET", "/me"): ANYONE,
    # A stream never ends, so the door test only knocks; tests/unit/checkout/test_live.py
    # shows what each role hears.
    ("GET", "/events"): ({M, L, S, A}, True),
    ("GET", "/accounts"): ({A}, False),
    ("POST", "/accounts"): ({A}, False),
    ("DELETE", "/accounts/{account_id}"): ({A}, False),
    ("POST", "/devices/{device_id}/keys"): ({A}, False),
    ("POST", "/devices/{device_id}/scans"): ({D}, True),
    ("POST", "/me/scan-in"): ({S, A}, False),
    ("GET", "/me/visits"): ({S, A}, False),
    ("GET", "/me/cart"): ({S, A}, False),
    ("GET", "/me/receipts"): ({S, A}, False),
    ("GET", "/me/receipts/{receipt_id}"): ({S, A}, False),
    ("POST", "/me/receipts/{receipt_id}/disputes"): ({S, A}, False),
    ("GET", "/sessions"): (STAFF, True),
    ("GET", "/sessions/{session_id}"): (STAFF, True),
    ("GET", "/sessions/{session_id}/cart"): (STAFF, True),
    ("GET", "/receipts"): (STAFF, True),
    ("GET", "/receipts/{receipt_id}"): (STAFF | {S}, True),
    ("GET", "/inventory"): ({M, A}, True),
    ("GET", "/inventory/atp"): ({M, A}, True),
    ("GET", "/inventory/atp/{sku}"): ({M, A}, True),
    ("GET", "/alerts"): ({M, A}, True),
    ("GET", "/replenishment"): ({M, A}, True),
    ("POST", "/reservations"): ({M, A}, True),
    ("GET", "/reservations/{order_id}"): ({M, A}, True),
    ("DELETE", "/reservations/{order_id}"): ({M, A}, True),
    ("POST", "/reservations/{order_id}/picking"): ({M, A}, True),
    ("GET", "/footfall"): ({M, A}, True),
    ("GET", "/heatmap.png"): ({M, A}, True),
    ("GET", "/stores"): ({M, A}, True),
    ("GET", "/stores/{store_id}"): ({M, A}, True),
    ("GET", "/devices"): ({M, A}, True),
    ("GET", "/devices/{device_id}"): ({M, A}, True),
    ("GET", "/catalog"): ({M, L, S, A}, True),
    ("GET", "/prices/changes"): ({M, L, S, A}, True),
    ("POST", "/prices/changes"): ({M, A}, True),
    ("DELETE", "/prices/changes/{change_id}"): ({M, A}, True),
    ("GET", "/promotions"): ({M, L, S, A}, True),
    ("POST", "/promotions"): ({M, A}, True),
    ("GET", "/promotions/{promotion_id}"): ({M, L, S, A}, True),
    ("DELETE", "/promotions/{promotion_id}"): ({M, A}, True),
    ("POST", "/promotions/{promotion_id}/end"): ({M, A}, True),
    # Cases are scoped case by case (another store's case is 404), so not at the door.
    ("GET", "/cases"): ({L, A}, False),
    ("GET", "/cases/counts"): ({L, A}, False),
    ("GET", "/cases/{case_id}"): ({L, A}, False),
    ("GET", "/cases/{case_id}/snapshots/{index}"): ({L, A}, False),
    ("POST", "/cases/{case_id}/transition"): ({L, A}, False),
    ("POST", "/cases/{case_id}/notes"): ({L, A}, False),
    ("POST", "/disputes"): ({L, A}, False),
}

# The callers: (username or None, role, whether their account covers store "demo").
CALLERS = [
    ("admin", A, True),
    ("manager", M, True),
    ("manager-elsewhere", M, False),
    ("lp", L, True),
    ("lp-elsewhere", L, False),
    ("shopper-a", S, True),
    ("shopper-b", S, True),
    ("device", D, True),
]


@pytest.fixture(scope="module")
def api(module_db: str) -> Iterator[StoreApi]:
    built = build_store_api(module_db)
    yield built
    built.close()


def served(api: StoreApi) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document: what the app says it serves."""
    paths = api.app.openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


def client_for(api: StoreApi, username: str | None) -> TestClient:
    client = TestClient(api.app)
    if username == "device":
        client.headers["Authorization"] = f"Bearer {api.ids['device_key']}"
    elif username is not None:
        client.headers["Authorization"] = f"Bearer {api.token(username)}"
    return client


def concrete(api: StoreApi, path: str) -> str:
    """A route's path with shopper-a's and store demo's real ids filled in."""
    fill = {
        "session_id": api.ids["session_a"],
        "receipt_id": api.ids["receipt_a"],
        "case_id": api.ids["case_here"],
        "device_id": api.ids["gate"],
        "store_id": "demo",
        "index": "0",
        "sku": "SKU001",
        "order_id": "order-1",
        "account_id": "a-none",
        "change_id": "1",
        "promotion_id": "1",
    }
    return re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path)


def call(client: TestClient, method: str, path: str) -> int:
    if method in ("POST", "PUT", "PATCH"):
        return client.request(method, path, json={}).status_code
    params = {"from_s": 0, "to_s": 1} if path.startswith("/heatmap") else None
    return client.request(method, path, params=params).status_code


STREAMS = {"/events"}


def assert_stream_door(api: StoreApi, url: str, rule: object) -> None:
    """Refusals of a stream come before it starts; an admitted caller sees it open."""
    roles, scoped = rule  # type: ignore[misc]
    for username, role, here in [(None, None, True), *CALLERS]:
        allowed = role in roles and (here or not scoped)
        with client_for(api, username).stream("GET", url) as res:
            expected = {res.status_code} & ({200} if allowed else {401, 403})
            assert expected, (url, username, res.status_code)
            if not allowed:
                assert res.status_code == (401 if username is None else 403)


def test_every_route_says_who_may_call_it(api: StoreApi) -> None:
    unlisted = [r for r in served(api) if r not in POLICY]
    assert not unlisted, f"add these routes to POLICY (who may call them?): {unlisted}"


@pytest.mark.parametrize("route", sorted(POLICY))
def test_the_door_of_every_route(api: StoreApi, route: tuple[str, str]) -> None:
    method, path = route
    url, rule = concrete(api, path), POLICY[route]
    if path in STREAMS:
        assert_stream_door(api, url, rule)
        return
    anonymous = call(client_for(api, None), method, url)
    if anonymous == 404 and route not in served(api):
        pytest.skip(f"{method} {path} is not served by this app")
    assert (anonymous != 401) if rule == OPEN else (anonymous == 401), (route, anonymous)
    for username, role, here in CALLERS:
        status = call(client_for(api, username), method, url)
        if rule in (OPEN, ANYONE):
            allowed = True
        else:
            roles, scoped = rule  # type: ignore[misc]
            allowed = role in roles and (here or not scoped)
        if allowed:
            assert status not in (401, 403), (route, username, status)
        else:
            assert status == 403, (route, username, status)


PERSONAL = [
    "/me/receipts/{receipt_id}",
    "/receipts/{receipt_id}",
]


@pytest.mark.parametrize("path", PERSONAL)
def test_another_shoppers_receipt_is_not_there(api: StoreApi, path: str) -> None:
    url, receipt_id = concrete(api, path), api.ids["receipt_a"]
    b = client_for(api, "shopper-b")
    theirs, nothing = b.get(url), b.get(url.replace(receipt_id, "r-no-such-receipt"))
    # Exactly what a receipt that does not exist gets: nothing tells the two apart.
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.text.replace(receipt_id, "?") == nothing.text.replace("r-no-such-receipt", "?")
    assert client_for(api, "shopper-a").get(url).status_code == 200


def test_a_shopper_sees_only_their_own_visits_cart_and_receipts(api: StoreApi) -> None:
    a, b = client_for(api, "shopper-a"), client_for(api, "shopper-b")
    mine = {v["session_id"] for v in a.get("/me/visits").json()}
    theirs = {v["session_id"] for v in b.get("/me/visits").json()}
    assert api.ids["session_a"] in mine and not mine & theirs
    assert [line["sku"] for line in a.get("/me/cart").json()["lines"]] == ["SKU001"]
    assert [line["sku"] for line in b.get("/me/cart").json()["lines"]] == ["SKU021"]
    assert [r["id"] for r in b.get("/me/receipts").json()] == [api.ids["receipt_b"]]


def test_a_shopper_cannot_dispute_anothers_receipt(api: StoreApi) -> None:
    url = f"/me/receipts/{api.ids['receipt_a']}/disputes"
    body = {"sku": "SKU001", "reason": "not mine"}
    assert client_for(api, "shopper-b").post(url, json=body).status_code == 404
    assert api.ops.cases.queue(rules=["dispute"]) == []


def test_loss_prevention_sees_only_their_stores_cases(api: StoreApi) -> None:
    here, there = api.ids["case_here"], api.ids["case_there"]
    elsewhere = client_for(api, "lp-elsewhere")
    assert [c["case_id"] for c in elsewhere.get("/cases").json()] == [there]
    assert elsewhere.get(f"/cases/{here}").status_code == 404
    moved = elsewhere.post(f"/cases/{here}/transition", json={"to_state": "in_review"})
    assert moved.status_code == 404
    assert [c["case_id"] for c in client_for(api, "lp").get("/cases").json()] == [here]


def test_refusals_reveal_nothing(api: StoreApi) -> None:
    for username in (None, "shopper-b", "manager-elsewhere", "device"):
        res = client_for(api, username).get(f"/sessions/{api.ids['session_a']}/cart")
        assert res.status_code in (401, 403)
        assert set(res.json()) == {"detail"} and "SKU001" not in res.text
