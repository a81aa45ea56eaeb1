"""The shopper's routes: scan in, my visits, my live cart, my receipts, dispute a line.

Everything here is found from the signed-in account, never from an id the
caller chose: visits are the sessions that the account's own QR tokens
opened (:meth:`AccountBook.sessions_of`). A receipt id belonging to someone
else answers 404, the same as one that does not exist.

The gate side lives here too: a gate scanner (role *device*) posts the QR
token it read; a valid, unexpired, unused token becomes a ``GateEntry`` on
the bus, exactly as a gate on MQTT would send it.
"""
# No `from __future__ import annotations`: FastAPI must see the dependencies of closures.

import io
from collections.abc import Callable
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from checkout.access import Access
from checkout.auth import AccountBook, Principal, ScanTokenError
from checkout.case_store import Summary
from checkout.cases import CaseBook
from checkout.ids import derived_id
from checkout.ledger import Ledger, SessionRecord
from checkout.receipts import price_lines
from iot.payloads import GateEntry, Receipt
from iot.store import Store

__all__ = ["shopper_router"]

PriceLines = Callable[[list[Any]], list[Any]]


class DisputeLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=128)
    # Checked here as the case book keeps it (plain text, not blank once stripped), so a bad
    # reason is a 422 naming the field, not a failure inside the case book.
    reason: Summary = Field(description="What is wrong with the line, in plain text.")


class GateScan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=128, description="The QR code's text.")
    party_size: int = Field(default=1, ge=1, le=20)


def qr_svg(text: str) -> str:
    """``text`` as a QR code, SVG markup (medium error correction: a phone screen, a scratch)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return out.getvalue().decode()


def shopper_router(
    ledger: Ledger,
    store: Store,
    book: AccountBook,
    access: Access,
    *,
    now: Callable[[], float],
    cases: CaseBook | None = None,
    publish_entry: Callable[[GateEntry], object] | None = None,
    lines: Callable[[str], list[Any]] | None = None,
) -> APIRouter:
    """Routes for shoppers and for gate scanners; ``lines(session_id)`` prices a cart."""
    router = APIRouter(tags=["shopper"])
    shopper = Annotated[Principal, Depends(access.require("shopper", store_scoped=False))]
    device = Annotated[Principal, Depends(access.require("device", admins=False))]
    priced = lines or (lambda sid: price_lines(store, ledger.cart_events(sid)))

    def my_sessions(who: Principal) -> list[SessionRecord]:
        found = (ledger.session(sid) for sid in book.sessions_of(who.account_id))
        return [s for s in found if s is not None]

    def my_receipt(who: Principal, receipt_id: str) -> Receipt:
        found = ledger.receipt(receipt_id)
        if found is None or book.owner_of(found.session_id) != who.account_id:
            raise HTTPException(404, f"you have no receipt {receipt_id!r}; see GET /me/receipts")
        return found

    @router.post("/me/scan-in", status_code=201)
    def scan_in(who: shopper) -> dict[str, Any]:
        """A QR code to show at the entry gate; it opens one visit before it expires."""
        issued = book.issue_scan_token(who.account_id, store.store_id)
        return {
            "token": issued.token,
            "qr_svg": qr_svg(issued.token),
            "expires_at_s": issued.expires_s,
            "store_id": issued.store_id,
        }

    @router.get("/me/visits")
    def visits(who: shopper) -> list[dict[str, Any]]:
        """My visits, newest first."""
        return [
            {
                "session_id": s.session_id,
                "state": s.state,
                "entered_s": s.entered_s,
                "exited_s": s.exited_s,
                "receipt_id": s.receipt_id,
                "needs_review": bool(s.review_reasons),
            }
            for s in my_sessions(who)
        ]

    @router.get("/me/cart")
    def cart(who: shopper) -> dict[str, Any]:
        """The live cart of my visit in progress (empty when I am not in the store)."""
        current = next((s for s in my_sessions(who) if s.state != "closed"), None)
        found = [] if current is None else priced(current.session_id)
        return {
            "session_id": None if current is None else current.session_id,
            "currency": store.catalog.currency,
            "lines": [line.model_dump() for line in found],
            "total_cents": sum(line.total_cents for line in found),
        }

    @router.get("/me/receipts")
    def receipts(who: shopper) -> list[Receipt]:
        """My receipts, newest first."""
        found = (ledger.receipt(s.receipt_id) for s in my_sessions(who) if s.receipt_id)
        return [r for r in found if r is not None]

    @router.get("/me/receipts/{receipt_id}")
    def receipt(receipt_id: str, who: shopper) -> Receipt:
        return my_receipt(who, receipt_id)

    @router.post("/me/receipts/{receipt_id}/disputes", status_code=201)
    def dispute(receipt_id: str, body: DisputeLine, who: shopper) -> dict[str, Any]:
        """Say a line of my receipt is wrong; loss prevention reviews it as a case."""
        found = my_receipt(who, receipt_id)
        if cases is None:
            raise HTTPException(503, "disputes are not taken by this store yet; ask staff")
        line = next((x for x in found.lines if x.sku == body.sku), None)
        if line is None:
            raise HTTPException(422, f"sku: {body.sku!r} is not a line of receipt {receipt_id!r}")
        record, created = cases.open_dispute(
            store.store_id,
            found.session_id,
            receipt_id,
            body.sku,
            reason=body.reason,
            time_s=now(),
            shopper_ref=who.account_id,
            amount_cents=line.total_cents,
        )
        return {"case": {"case_id": record.case_id, "state": record.state}, "created": created}

    @router.post("/devices/{device_id}/scans", status_code=202)
    def gate_scan(device_id: str, body: GateScan, who: device) -> dict[str, Any]:
        """A gate scanner read a QR code: open the visit (refused codes say why)."""
        if who.username != device_id:
            raise HTTPException(403, f"only device {device_id!r}'s own key may post its scans")
        if publish_entry is None:
            raise HTTPException(503, "this API does not publish gate scans; use MQTT")
        try:
            session_id = book.use_scan_token(body.token, store.store_id)
        except ScanTokenError as exc:
            raise HTTPException(409, str(exc)) from None
        t = now()
        publish_entry(
            GateEntry(
                id=derived_id("scan-", f"{device_id}:{body.token}"),
                event_time_s=t,
                device_id=device_id,
                token=body.token,
                party_size=body.party_size,
            )
        )
        return {"session_id": session_id, "accepted_s": t}

    return router
