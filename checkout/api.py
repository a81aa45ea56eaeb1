"""HTTP API over the ledger: sessions, carts and receipts (FastAPI app factory).

Every route touching SQLite is a plain ``def``: FastAPI runs it in its thread
pool, so a slow query never blocks the event loop, and the ledger gives each
of those threads its own read connection.

>>> from fastapi.testclient import TestClient
>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> TestClient(create_app(Ledger(":memory:"), store)).get("/health").json()["status"]
'ok'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException

from checkout.cases import CaseBook
from checkout.cases_api import cases_router
from checkout.footfall import FootfallService
from checkout.footfall_api import footfall_router
from checkout.heatmap import HeatGrid
from checkout.inventory import InventoryService
from checkout.inventory_api import inventory_router
from checkout.ledger import Ledger, SessionRecord
from checkout.receipts import price_lines
from iot.payloads import Receipt
from iot.store import Store

__all__ = ["create_app"]


def create_app(
    ledger: Ledger,
    store: Store,
    *,
    inventory: InventoryService | None = None,
    cases: CaseBook | None = None,
    footfall: tuple[FootfallService, HeatGrid] | None = None,
    now: Callable[[], float] | None = None,
) -> FastAPI:
    """An app reading ``ledger`` for ``store``; the caller owns (and closes) what it passes.

    ``inventory`` adds stock, alerts, replenishment and the online channel's
    available-to-promise and reservations; ``cases`` the loss-prevention queue
    and workflow (``now`` stamps changes that give no event time); ``footfall``
    the manager's counts, dwell and heatmap.
    """
    app = FastAPI(title=f"smartstore checkout: {store.name}", version="1")
    if inventory is not None:
        app.include_router(inventory_router(inventory))
    if cases is not None:
        app.include_router(cases_router(cases, now=now or inventory_now(inventory)))
    if footfall is not None:
        app.include_router(footfall_router(*footfall, store))

    def session_or_404(session_id: str) -> SessionRecord:
        record = ledger.session(session_id)
        if record is None:
            raise HTTPException(404, f"no session {session_id!r}; list them at GET /sessions")
        return record

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "store_id": store.store_id,
            "open_sessions": len(ledger.open_sessions()),
        }

    @app.get("/sessions")
    def sessions(state: Literal["open", "closed"] | None = None) -> list[SessionRecord]:
        return ledger.sessions(state)

    @app.get("/sessions/{session_id}")
    def session(session_id: str) -> SessionRecord:
        return session_or_404(session_id)

    @app.get("/sessions/{session_id}/cart")
    def cart(session_id: str) -> dict[str, Any]:
        session_or_404(session_id)
        lines = price_lines(store, ledger.cart_events(session_id))
        return {
            "session_id": session_id,
            "currency": store.catalog.currency,
            "lines": [line.model_dump() for line in lines],
            "total_cents": sum(line.total_cents for line in lines),
        }

    @app.get("/receipts")
    def receipts() -> list[Receipt]:
        return ledger.receipts()

    @app.get("/receipts/{receipt_id}")
    def receipt(receipt_id: str) -> Receipt:
        found = ledger.receipt(receipt_id)
        if found is None:
            raise HTTPException(404, f"no receipt {receipt_id!r}; list them at GET /receipts")
        return found

    return app


def inventory_now(inventory: InventoryService | None) -> Callable[[], float]:
    """The store's clock for a workflow change that names no time."""
    if inventory is None:
        raise ValueError("cases need a clock: pass now= (or the inventory, whose clock it uses)")
    return inventory.now
