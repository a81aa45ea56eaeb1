"""Schemathesis over the store API's OpenAPI document: no request makes the server fail (5xx).

Every operation of the document (the whole app of ``build_store_api``: every
router, every service on in-memory SQLite) is called as each kind of caller:
an admin (who gets past almost every door, so the most examples), a manager,
loss prevention, a shopper, a gate's device key and nobody. The requests are
schemathesis's: its coverage cases (boundary values, wrong types, missing
fields, for the callers who get past the doors) and then cases Hypothesis
draws from the schema, valid and invalid alike, half of them aimed at ids
and SKUs that exist so they reach the handlers' own checks. A 5xx, or an
exception escaping the app, is a bug in the route or the service behind it:
map the bad input to a 4xx that says what to fix. The anonymous caller must
also never get a 2xx outside the open routes.

Bounded and repeatable: a fixed number of examples per operation and caller,
derandomized Hypothesis (the same requests every run), no example database.
``SMARTSTORE_FUZZ_SCALE=10`` multiplies the examples for a deeper run.
Server-sent event streams never end, so they are left out.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup

from tests.unit.checkout.store_api import T0, StoreApi, build_store_api

# Routes anyone may call without signing in (see checkout/api.py).
OPEN = frozenset({("GET", "/health"), ("POST", "/auth/login"), ("POST", "/auth/register")})
# Never-ending streams (server-sent events): a call would not return.
STREAMS = frozenset({"/events"})
EVENT_STREAM = "text/event-stream"
SCALE = int(os.environ.get("SMARTSTORE_FUZZ_SCALE", "1"))


@dataclass(frozen=True)
class Caller:
    """Who calls (an account's username, the gate's device key, or nobody) and how hard."""

    username: str | None
    max_examples: int
    coverage: bool = False  # also schemathesis's coverage cases (some 1,300 requests)
    device: bool = False


CALLERS = {
    "admin": Caller("admin", 30, coverage=True),
    "manager": Caller("manager", 10),
    "loss_prevention": Caller("lp", 10, coverage=True),  # cases scoped to the reviewer's stores
    "shopper": Caller("shopper-a", 10, coverage=True),  # /me routes answer shoppers only
    "device": Caller(None, 8, device=True),
    "anonymous": Caller(None, 8),
}


@pytest.fixture(scope="module")
def store_api() -> Iterator[StoreApi]:
    api = build_store_api()
    yield api
    api.close()


@pytest.fixture(scope="module")
def operations(store_api: StoreApi) -> list[APIOperation]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", store_api.app)
    return [op for op in _all(schema) if op.path not in STREAMS and not _streams(op)]


def _all(schema: schemathesis.BaseSchema) -> list[APIOperation]:
    """Every operation of the document; a part schemathesis cannot read fails the test."""
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


@pytest.fixture(scope="module")
def known(store_api: StoreApi) -> dict[str, Any]:
    """Ids that exist, so some requests get past "not found" into the handlers' own checks."""
    client = TestClient(store_api.app)
    client.headers["Authorization"] = f"Bearer {store_api.token('admin')}"
    later = T0 + 3_600
    made = [
        client.post(
            "/promotions",
            json={"name": "x", "skus": ["SKU001"], "kind": "percent_off", "value": 10,
                  "effective_from_s": later},
        ),
        client.post(
            "/prices/changes",
            json={"sku": "SKU001", "unit_price_cents": 99, "effective_from_s": later},
        ),
        client.post("/reservations", json={"order_id": "order-1", "lines": {"SKU001": 1}}),
    ]  # fmt: skip
    assert [r.status_code for r in made] == [201, 201, 201], [r.text for r in made]
    shopper_b = next(p for p in store_api.accounts.accounts() if p.username == "shopper-b")
    ids = store_api.ids
    return {
        "receipt_id": ids["receipt_a"],
        "case_id": ids["case_here"],
        "session_id": ids["session_a"],
        "sku": "SKU001",
        "skus": ["SKU001", "SKU021"],
        "lines": {"SKU001": 1},
        "device_id": ids["gate"],
        "store_id": "demo",
        "account_id": shopper_b.account_id,  # never the admin's: disabling it would end the run
        "order_id": "order-1",
        "promotion_id": made[0].json()["id"],
        "change_id": made[1].json()["id"],
        "index": 0,
    }


def _streams(operation: APIOperation) -> bool:
    """True if any response of the operation is an event stream."""
    responses = operation.definition.raw.get("responses", {})
    return any(EVENT_STREAM in (r.get("content") or {}) for r in responses.values())


class Credential:
    """The caller's ``Authorization`` header, signed in again if the fuzzing signed it out."""

    def __init__(self, api: StoreApi, caller: Caller) -> None:
        self.api = api
        self.caller = caller
        self.secret: str | None = None

    def headers(self) -> dict[str, str]:
        if self.caller.device:
            return {"Authorization": f"Bearer {self.api.ids['device_key']}"}
        if self.caller.username is None:
            return {}
        if self.secret is None or self.api.accounts.principal_for(self.secret) is None:
            self.secret = self.api.token(self.caller.username)  # POST /auth/logout revokes it
        return {"Authorization": f"Bearer {self.secret}"}


def _strategy(operation: APIOperation, known: dict[str, Any]) -> st.SearchStrategy[Case]:
    """Drawn requests, half of them aimed at things that exist (path ids, body SKUs)."""
    path = {name: known[name] for name in re.findall(r"{(\w+)}", operation.path) if name in known}

    def aimed(case: Case) -> Case:
        if isinstance(case.body, dict):
            for name, value in known.items():
                if name in case.body and type(case.body[name]) is type(value):
                    case.body[name] = copy.deepcopy(value)
        return case

    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path).map(aimed),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path),
    )


def _coverage_cases(operation: APIOperation) -> Iterator[Case]:
    """Schemathesis's coverage phase for one operation (deterministic, no Hypothesis)."""
    schema = operation.schema
    config = schema.config.generation_for(operation=operation, phase="coverage")
    yield from schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=config
    )


class Probe:
    """Sends one case as one caller and checks the answer."""

    def __init__(self, operation: APIOperation, caller: str, credential: Credential) -> None:
        self.anonymous_must_fail = caller == "anonymous" and (
            (operation.method.upper(), operation.path) not in OPEN
        )
        self.credential = credential

    def __call__(self, case: Case) -> None:
        headers = self.credential.headers()
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)
        if self.anonymous_must_fail and 200 <= response.status_code < 300:
            raise AssertionError(
                f"anonymous caller got {response.status_code} from a route that needs a "
                f"sign-in; reproduce with:\n    {case.as_curl_command(headers=headers)}"
            )


def _fuzz(
    operation: APIOperation, caller: str, credential: Credential, known: dict[str, Any]
) -> list[str]:
    """Run one operation as one caller: the failures found, described (none: all well)."""
    probe = Probe(operation, caller, credential)
    if CALLERS[caller].coverage:
        for case in _coverage_cases(operation):
            try:
                probe(case)
            except (Exception, FailureGroup) as exc:
                return [f"{operation.label} as {caller} (coverage): {_described(exc)}"]

    @settings(
        max_examples=CALLERS[caller].max_examples * SCALE,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        print_blob=False,
    )
    @given(case=_strategy(operation, known))
    def drawn(case: Case) -> None:
        probe(case)

    try:
        drawn()
    except (Exception, BaseExceptionGroup) as exc:
        return [f"{operation.label} as {caller}: {_described(e)}" for e in _distinct(exc)]
    return []


def _distinct(exc: BaseException) -> list[BaseException]:
    """Hypothesis groups the distinct failures it found; schemathesis's own group is one."""
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FailureGroup):
        return [leaf for inner in exc.exceptions for leaf in _distinct(inner)]
    return [exc]


def _described(exc: BaseException) -> str:
    """The failure and the request that caused it (schemathesis notes a curl command)."""
    notes = [n.strip() for n in getattr(exc, "__notes__", []) if "curl " in n]
    return "\n    ".join([f"{type(exc).__name__}: {str(exc).strip()}", *notes])


@pytest.mark.parametrize("caller", list(CALLERS))
def test_no_server_errors(
    caller: str, store_api: StoreApi, operations: list[APIOperation], known: dict[str, Any]
) -> None:
    credential = Credential(store_api, CALLERS[caller])
    failures = [found for op in operations for found in _fuzz(op, caller, credential, known)]
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_every_operation_but_the_streams_is_fuzzed(
    store_api: StoreApi, operations: list[APIOperation]
) -> None:
    """The document was read whole: the store's routes are all there, streams left out."""
    document = store_api.app.openapi()["paths"]
    fuzzed = {(op.method.upper(), op.path) for op in operations}
    served = {(method.upper(), path) for path, ops in document.items() for method in ops}
    assert fuzzed == {(method, path) for method, path in served if path not in STREAMS}
    assert len(fuzzed) >= 50 and ("GET", "/events") in served


def test_what_fails_is_reported_with_operation_caller_and_request(store_api: StoreApi) -> None:
    """The checks bite: a crash, a 5xx and an open door are each named with a request to rerun."""
    app = FastAPI()

    @app.get("/crash/{n}")
    def crash(n: int) -> None:
        raise RuntimeError(f"no row {n}")

    @app.get("/down")
    def down() -> None:
        raise HTTPException(503, "down for maintenance")

    @app.get("/door")
    def door() -> dict[str, str]:
        return {"secret": "s"}

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    nobody = Credential(store_api, CALLERS["anonymous"])
    found = {op.path: _fuzz(op, "anonymous", nobody, {}) for op in _all(schema)}
    assert [len(found[path]) for path in ("/crash/{n}", "/down", "/door")] == [1, 1, 1], found
    crashed, unavailable, opened = found["/crash/{n}"][0], found["/down"][0], found["/door"][0]
    assert crashed.startswith("GET /crash/{n} as anonymous: RuntimeError: no row")
    assert "503" in unavailable and "anonymous caller got 200" in opened
    assert all("curl -X GET" in text for text in (crashed, unavailable, opened))
