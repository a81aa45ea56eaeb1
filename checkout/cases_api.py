"""HTTP routes for loss-prevention cases: the queue, a case with its evidence, the workflow.

The queue spans stores (a reviewer watches many); a case moves new ->
in_review -> a disposition -> resolved and may be reopened; a shopper's
dispute of a receipt line opens a case too. Event time comes from the body
or, if none is given, from ``now`` (the store's clock). Who may call what
is given by ``access``: loss-prevention staff see the cases of the stores
they are assigned, and a case of another store answers 404, as if it did
not exist; a note or a move is signed with the caller's own name. Without
``access`` (unit tests of the workflow) every case is visible.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from checkout.cases import CaseBook
>>> app = FastAPI(); app.include_router(cases_router(CaseBook(":memory:"), now=lambda: 1.8e9))
>>> TestClient(app).get("/cases").json()
[]
"""

# No `from __future__ import annotations`: FastAPI must see the dependencies of closures.
from collections.abc import Callable
from pathlib import Path as PathLib
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from checkout.access import Access
from checkout.auth import Principal
from checkout.cases import (
    CaseBook,
    CaseNotFoundError,
    CaseRecord,
    CaseSummary,
    CaseTransitionError,
)
from iot.payloads import CaseState

__all__ = ["cases_router"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_s: float | None = Field(default=None, description="Event time; default: the store's.")


class Transition(_Body):
    to_state: CaseState
    reviewer: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=1000)


class Note(_Body):
    reviewer: str | None = Field(default=None, max_length=64, description="Default: the caller.")
    text: str = Field(min_length=1, max_length=1000)


class Dispute(_Body):
    store_id: str = Field(max_length=64)
    session_id: str = Field(max_length=128)
    receipt_id: str = Field(max_length=128)
    sku: str = Field(max_length=128)
    reason: str = Field(min_length=1, max_length=1000)
    shopper_ref: str = Field(max_length=128)


def cases_router(
    book: CaseBook,
    *,
    now: Callable[[], float],
    access: Access | None = None,
    evidence_dir: PathLib | None = None,
) -> APIRouter:
    """Routes over ``book``; the caller owns (and closes) it.

    Evidence images are served only from inside ``evidence_dir`` (where the
    edge's snapshots are written): a case's image paths come from the bus, so
    they are never trusted to name a file to read. Without it, none are served.
    """
    evidence_root = evidence_dir.resolve() if evidence_dir is not None else None
    router = APIRouter(tags=["cases"])
    if access is None:

        def nobody() -> Principal | None:
            return None

        caller: Callable[..., Principal | None] = nobody
    else:
        caller = access.require("loss_prevention", store_scoped=False)
    Who = Annotated[Principal | None, Depends(caller)]

    def when(body: _Body) -> float:
        return body.time_s if body.time_s is not None else now()

    def visible(who: Principal | None, stores: list[str] | None) -> list[str] | None:
        """The store filter the caller may use: their own stores, or 403 for others."""
        if who is None or who.role == "admin":
            return stores
        outside = sorted(set(stores or ()) - who.stores)
        if outside:
            raise HTTPException(403, f"your account does not cover store(s) {outside}")
        return stores or sorted(who.stores)

    def case_or_404(case_id: str, who: Principal | None) -> CaseRecord:
        found = book.get(case_id)
        if found is None or (who is not None and not who.sees_store(found.store_id)):
            raise HTTPException(404, f"no case {case_id!r}; list them at GET /cases")
        return found

    def signed(who: Principal | None, given: str | None) -> str | None:
        return given if who is None else who.username

    @router.get("/cases")
    def queue(
        who: Who,
        *,
        store: Annotated[list[str] | None, Query()] = None,
        state: Annotated[list[str] | None, Query()] = None,
        rule: Annotated[list[str] | None, Query()] = None,
        min_confidence: float = 0.0,
        sort: str = "incident_s",
        descending: bool = True,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[CaseSummary]:
        """The review queue: filter by store, state and rule; sort by any summary field."""
        try:
            return book.queue(
                stores=visible(who, store),
                states=state,
                rules=rule,
                min_confidence=min_confidence,
                sort=sort,
                descending=descending,
                limit=limit,
                offset=offset,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.get("/cases/counts")
    def counts(who: Who, store: Annotated[list[str] | None, Query()] = None) -> dict[str, int]:
        return book.counts_by_state(visible(who, store))

    @router.get("/cases/{case_id}")
    def case(case_id: str, who: Who) -> CaseRecord:
        return case_or_404(case_id, who)

    @router.get("/cases/{case_id}/snapshots/{index}", response_class=FileResponse)
    def snapshot(case_id: str, index: Annotated[int, Path(ge=0, le=10_000)], who: Who) -> Any:
        """One evidence image of the case (blurred when it was captured)."""
        shots = case_or_404(case_id, who).evidence.snapshots
        if index >= len(shots):
            raise HTTPException(404, f"case {case_id!r} has {len(shots)} snapshot(s)")
        image = PathLib(shots[index].image_path).resolve()
        if evidence_root is None or not image.is_relative_to(evidence_root):
            raise HTTPException(404, f"snapshot {index} of case {case_id!r} is not on file here")
        if not image.is_file():
            raise HTTPException(410, f"snapshot {index} of case {case_id!r} was deleted")
        return FileResponse(image, media_type="image/jpeg")

    @router.post("/cases/{case_id}/transition")
    def transition(case_id: str, body: Transition, who: Who) -> CaseRecord:
        case_or_404(case_id, who)
        return _guard(
            lambda: book.transition(
                case_id,
                body.to_state,
                time_s=when(body),
                reviewer=signed(who, body.reviewer),
                note=body.note,
            )
        )

    @router.post("/cases/{case_id}/notes")
    def note(case_id: str, body: Note, who: Who) -> CaseRecord:
        case_or_404(case_id, who)
        reviewer = signed(who, body.reviewer)
        if reviewer is None:
            raise HTTPException(422, "reviewer: say who writes the note")
        return _guard(lambda: book.add_note(case_id, reviewer, body.text, when(body)))

    @router.post("/disputes", status_code=201)
    def dispute(body: Dispute, who: Who) -> dict[str, Any]:
        """Staff file a dispute for a shopper (shoppers use POST /me/receipts/{id}/disputes)."""
        visible(who, [body.store_id])
        record, created = _guard(
            lambda: book.open_dispute(
                body.store_id,
                body.session_id,
                body.receipt_id,
                body.sku,
                reason=body.reason,
                time_s=when(body),
                shopper_ref=body.shopper_ref,
            )
        )
        return {"case": record.model_dump(), "created": created}

    return router


T = TypeVar("T")


def _guard(call: Callable[[], T]) -> T:
    """Workflow errors as HTTP: unknown case 404, refused move 409, bad value 422."""
    try:
        return call()
    except CaseNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except CaseTransitionError as exc:
        raise HTTPException(409, str(exc)) from None
    except (ValidationError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
