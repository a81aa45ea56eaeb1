"""HTTP API of one store (FastAPI app factory): every face of the store, behind roles.

Every route touching SQLite is a plain ``def``: FastAPI runs it in its thread
pool, so a slow query never blocks the event loop, and the ledger gives each
of those threads its own read connection.

Who may call what (checkout/access.py): shoppers their own visits
(checkout/shopper_api.py), managers their store's sessions, receipts,
inventory and footfall, loss prevention the cases of their stores, devices
only their gate scans, admins everything. Only ``/health``, ``/metrics``
(counts, no personal data), sign-in and the OpenAPI document are open.

>>> from fastapi.testclient import TestClient
>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> client = TestClient(create_app(Ledger(":memory:"), store, AccountBook(":memory:")))
>>> client.get("/health").json()["status"], client.get("/sessions").status_code
('ok', 401)
"""
# No `from __future__ import annotations`: FastAPI must see the dependencies of closures.

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException

from checkout.access import Access
from checkout.auth import AccountBook, Principal
from checkout.auth_api import auth_router
from checkout.cases import CaseBook
from checkout.cases_api import cases_router
from checkout.devices import DeviceHealth
from checkout.devices_api import devices_router
from checkout.footfall import FootfallService
from checkout.footfall_api import footfall_router
from checkout.heatmap import HeatGrid
from checkout.http_errors import install as install_error_handlers
from checkout.inventory import InventoryService
from checkout.inventory_api import inventory_router
from checkout.ledger import Ledger, SessionRecord
from checkout.live import LiveHub, live_router
from checkout.metrics import HttpMetricsMiddleware, metrics_router
from checkout.pricebook import PriceBook
from checkout.pricing_api import pricing_router
from checkout.receipts import price_lines
from checkout.shopper_api import shopper_router
from checkout.web import web_router
from iot.payloads import GateEntry, Receipt
from iot.store import Store

__all__ = ["create_app"]


def create_app(
    ledger: Ledger,
    store: Store,
    accounts: AccountBook,
    *,
    inventory: InventoryService | None = None,
    cases: CaseBook | None = None,
    footfall: tuple[FootfallService, HeatGrid] | None = None,
    now: Callable[[], float] | None = None,
    publish_entry: Callable[[GateEntry], object] | None = None,
    devices: DeviceHealth | None = None,
    prices: PriceBook | None = None,
    live: LiveHub | None = None,
    evidence_dir: Path | None = None,
) -> FastAPI:
    """An app reading ``ledger`` for ``store``; the caller owns (and closes) what it passes.

    ``accounts`` signs people and devices in. ``inventory`` adds stock,
    alerts, replenishment and the online channel's available-to-promise and
    reservations; ``cases`` the loss-prevention queue and workflow, and
    shoppers' disputes; ``footfall`` the manager's counts, dwell and heatmap.
    ``now`` is the store's clock (event time), for changes that give no time
    of their own; ``publish_entry`` puts a gate scanner's scans on the bus;
    ``devices`` the store's devices and their health; ``prices`` price changes
    and promotions from a chosen time (carts are then priced as of each pick,
    like the brain's receipts, so pass the brain the same book); ``live`` the
    web pages' server-sent events, filtered per caller; ``evidence_dir`` the
    folder of evidence snapshots, the only place case images are served from.
    """
    app = FastAPI(title=f"smartstore: {store.name}", version="1")
    install_error_handlers(app)  # NaN, Infinity, lone surrogates: a 422, never a 500
    app.add_middleware(HttpMetricsMiddleware)
    app.include_router(metrics_router())  # open: counts only, no personal data
    access = Access(accounts, store.store_id)
    clock = now or (inventory.now if inventory is not None else time.time)
    manager = [Depends(access.require("manager"))]
    staff = Depends(access.require("manager", "loss_prevention"))
    app.include_router(auth_router(accounts, access))
    app.include_router(web_router())  # open: the pages hold no data, the API checks each call
    if live is not None:
        app.include_router(live_router(live, access, accounts.owner_of))
    lines = _lines(ledger, store, prices)
    app.include_router(
        shopper_router(
            ledger,
            store,
            accounts,
            access,
            now=clock,
            cases=cases,
            publish_entry=publish_entry,
            lines=lines,
        )
    )
    if inventory is not None:
        app.include_router(inventory_router(inventory), dependencies=manager)
    if cases is not None:
        app.include_router(cases_router(cases, now=clock, access=access, evidence_dir=evidence_dir))
    if footfall is not None:
        app.include_router(footfall_router(*footfall, store), dependencies=manager)
    if prices is not None:
        app.include_router(
            pricing_router(prices, store, clock, actor=_signed_by(access)),
            dependencies=[Depends(access.require("manager", "loss_prevention", "shopper"))],
        )
    if devices is not None:
        app.include_router(
            devices_router(devices, store, open_sessions=lambda: len(ledger.open_sessions())),
            dependencies=manager,
        )

    def session_or_404(session_id: str) -> SessionRecord:
        record = ledger.session(session_id)
        if record is None:
            raise HTTPException(404, f"no session {session_id!r}; list them at GET /sessions")
        return record

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Open to all: is the store up, and its clock (event time)."""
        return {
            "status": "ok",
            "store_id": store.store_id,
            "now_s": clock(),
            "open_sessions": len(ledger.open_sessions()),
        }

    @app.get("/sessions", dependencies=[staff])
    def sessions(state: Literal["open", "closed"] | None = None) -> list[SessionRecord]:
        return ledger.sessions(state)

    @app.get("/sessions/{session_id}", dependencies=[staff])
    def session(session_id: str) -> SessionRecord:
        return session_or_404(session_id)

    @app.get("/sessions/{session_id}/cart", dependencies=[staff])
    def cart(session_id: str) -> dict[str, Any]:
        session_or_404(session_id)
        found = lines(session_id)
        return {
            "session_id": session_id,
            "currency": store.catalog.currency,
            "lines": [line.model_dump() for line in found],
            "total_cents": sum(line.total_cents for line in found),
        }

    @app.get("/receipts", dependencies=[staff])
    def receipts() -> list[Receipt]:
        return ledger.receipts()

    @app.get("/receipts/{receipt_id}")
    def receipt(
        receipt_id: str,
        who: Annotated[Principal, Depends(access.require("manager", "loss_prevention", "shopper"))],
    ) -> Receipt:
        """Staff read any receipt of their store; a shopper only their own."""
        found = ledger.receipt(receipt_id)
        foreign = (
            found is not None
            and who.role == "shopper"
            and accounts.owner_of(found.session_id) != who.account_id
        )
        if found is None or foreign:
            raise HTTPException(
                404,
                f"no receipt {receipt_id!r}; list them at GET /receipts (yours: GET /me/receipts)",
            )
        return found

    return app


def _lines(ledger: Ledger, store: Store, prices: PriceBook | None) -> Callable[[str], list[Any]]:
    """A session's cart, priced as its receipt would be."""

    def priced(session_id: str) -> list[Any]:
        return price_lines(store, ledger.cart_events(session_id), prices)

    return priced


def _signed_by(access: Access) -> Callable[..., str]:
    """The pricing routes' writer: a manager (or admin) of this store, by name."""

    def manager(who: Annotated[Principal, Depends(access.require("manager"))]) -> str:
        return who.username

    return manager
