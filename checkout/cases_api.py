"""HTTP routes for loss-prevention cases: the queue, a case with its evidence, the workflow.

The queue spans stores (a reviewer watches many); a case moves new ->
in_review -> a disposition -> resolved and may be reopened; a shopper's
dispute of a receipt line opens a case too. Event time comes from the body
or, if none is given, from ``now`` (the store's clock). Who may call what
(roles) is the API issue's work; these routes are the workflow itself.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from checkout.cases import CaseBook
>>> app = FastAPI(); app.include_router(cases_router(CaseBook(":memory:"), now=lambda: 1.8e9))
>>> TestClient(app).get("/cases").json()
[]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    reviewer: str = Field(max_length=64)
    text: str = Field(min_length=1, max_length=1000)


class Dispute(_Body):
    store_id: str = Field(max_length=64)
    session_id: str = Field(max_length=128)
    receipt_id: str = Field(max_length=128)
    sku: str = Field(max_length=128)
    reason: str = Field(min_length=1, max_length=1000)
    shopper_ref: str = Field(max_length=128)


def cases_router(book: CaseBook, *, now: Callable[[], float]) -> APIRouter:
    """Routes over ``book``; the caller owns (and closes) it."""
    router = APIRouter(tags=["cases"])

    def when(body: _Body) -> float:
        return body.time_s if body.time_s is not None else now()

    @router.get("/cases")
    def queue(
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
        try:
            return book.queue(
                stores=store,
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
    def counts(store: Annotated[list[str] | None, Query()] = None) -> dict[str, int]:
        return book.counts_by_state(store)

    @router.get("/cases/{case_id}")
    def case(case_id: str) -> CaseRecord:
        found = book.get(case_id)
        if found is None:
            raise HTTPException(404, f"no case {case_id!r}; list them at GET /cases")
        return found

    @router.post("/cases/{case_id}/transition")
    def transition(case_id: str, body: Transition) -> CaseRecord:
        return _guard(
            lambda: book.transition(
                case_id, body.to_state, time_s=when(body), reviewer=body.reviewer, note=body.note
            )
        )

    @router.post("/cases/{case_id}/notes")
    def note(case_id: str, body: Note) -> CaseRecord:
        return _guard(lambda: book.add_note(case_id, body.reviewer, body.text, when(body)))

    @router.post("/disputes", status_code=201)
    def dispute(body: Dispute) -> dict[str, Any]:
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
