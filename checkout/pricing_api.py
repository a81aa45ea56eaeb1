"""HTTP routes of the price book: the catalog as priced now, price changes, promotions.

``pricing_router(book, store, now)`` is mounted by the app factory; who may
call what is the app's concern (the lead attaches role dependencies when
including it: managers and admins write, everyone signed in reads the
catalog). ``actor`` is a FastAPI dependency naming the caller, kept as
``set_by``/``cancelled_by``/``ended_by``; by default nobody is named. An
HTTP call carries no event time, so ``now`` (the store's clock) decides what
has already started. Routes are plain ``def``: FastAPI runs them in its
thread pool, and the book serialises writes on its SQLite file.

Status codes: 201 for a new change or promotion; 422 for a malformed body
(FastAPI names the field) or a bad value such as an unknown SKU; 404 for an
unknown id; 409 when the time is wrong: a start before the store's now (it
would reprice picks already made), cancelling what has started, ending what
has not started or has ended.

>>> from pathlib import Path
>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> app = FastAPI()
>>> app.include_router(pricing_router(PriceBook(store), store, lambda: 1.8e9))
>>> client = TestClient(app)
>>> client.post("/prices/changes", json={"sku": "SKU001", "unit_price_cents": 99,
...                                      "effective_from_s": 1.8e9 + 60}).status_code
201
>>> [i["unit_price_cents"] for i in client.get("/catalog", params={"at_s": 1.8e9 + 60}).json()
...  ["items"] if i["sku"] == "SKU001"]
[99]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from checkout.pricebook import (
    MAX_PRICE_CENTS,
    MAX_PROMOTION_NAME,
    PriceBook,
    PriceChange,
    PricingConflictError,
    PricingError,
    PricingNotFoundError,
    Promotion,
    PromotionKind,
    UnitPrice,
)
from iot.store import Store

__all__ = [
    "CatalogEntry",
    "CatalogPage",
    "PriceChangeRequest",
    "PromotionRequest",
    "pricing_router",
]

_SKU = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")
]  # iot.payloads.Id
_EVENT_TIME = Annotated[float, Field(ge=946_684_800.0, le=4_102_444_800.0)]  # 2000..2100
_AT_S = Annotated[float | None, Query(ge=946_684_800.0, le=4_102_444_800.0)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PriceChangeRequest(_Body):
    """A new list price for one SKU from an event time on."""

    sku: _SKU = Field(description="SKU to reprice (see GET /catalog).")
    unit_price_cents: int = Field(
        ge=0, le=MAX_PRICE_CENTS, description="New unit price, minor currency units."
    )
    effective_from_s: _EVENT_TIME = Field(
        description="Event time from which picks pay it, Unix s; not before the store's now."
    )


class PromotionRequest(_Body):
    """A discount on some SKUs for a window of event time."""

    name: str = Field(
        min_length=1, max_length=MAX_PROMOTION_NAME, description="Printed on receipt lines."
    )
    skus: list[_SKU] = Field(min_length=1, max_length=500, description="SKUs it applies to.")
    kind: PromotionKind = Field(description="percent_off: a share off; fixed_price: a set price.")
    value: int = Field(
        ge=0,
        le=MAX_PRICE_CENTS,
        description="percent_off: percent off the list price (1..100); "
        "fixed_price: the unit price in minor currency units.",
    )
    effective_from_s: _EVENT_TIME = Field(
        description="Event time it starts, Unix s; not before the store's now."
    )
    until_s: _EVENT_TIME | None = Field(
        default=None, description="Event time it stops (excluded), Unix s; none: open-ended."
    )

    # Field validators (not one model validator), so a 422 names the field at fault.
    @field_validator("skus")
    @classmethod
    def _distinct(cls, skus: list[str]) -> list[str]:
        if len(set(skus)) != len(skus):
            raise ValueError(f"names a SKU twice: {skus}")
        return skus

    @field_validator("value")
    @classmethod
    def _percent_in_range(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("kind") == "percent_off" and not 1 <= value <= 100:
            raise ValueError(f"{value} is not 1..100: a percent_off promotion takes a percent")
        return value

    @field_validator("until_s")
    @classmethod
    def _after_start(cls, until_s: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("effective_from_s")
        if until_s is not None and start is not None and until_s <= start:
            raise ValueError(
                f"{until_s} is not after effective_from_s={start}; give a later until_s or none"
            )
        return until_s


class CatalogEntry(UnitPrice):
    """One catalog item priced for a unit picked at ``at_s``."""

    name: str = Field(description="Name printed on receipts.")


class CatalogPage(BaseModel):
    store_id: str
    currency: str = Field(description="ISO 4217 currency of every price.")
    at_s: float = Field(description="The event time the prices are for, Unix s.")
    items: list[CatalogEntry]


_T = TypeVar("_T")


def _nobody() -> str | None:
    return None


def pricing_router(
    book: PriceBook,
    store: Store,
    now: Callable[[], float],
    *,
    actor: Callable[..., str | None] = _nobody,
) -> APIRouter:
    """Routes over ``book`` for ``store``; ``now`` is the store's event-time clock.

    ``actor`` is a FastAPI dependency returning the caller's name (say, the
    signed-in user's username), recorded on every change. The caller owns
    (and closes) the book.
    """
    if book.store.store_id != store.store_id:
        raise ValueError(
            f"price book is for store {book.store.store_id!r}, the router for "
            f"{store.store_id!r}; give the book of the same store"
        )
    router = APIRouter(tags=["pricing"])
    names = {item.sku: item.name for item in store.catalog.items}

    @router.get("/catalog")
    def catalog(at_s: _AT_S = None) -> CatalogPage:
        t = now() if at_s is None else at_s
        return CatalogPage(
            store_id=store.store_id,
            currency=store.catalog.currency,
            at_s=t,
            items=[CatalogEntry(**p.model_dump(), name=names[p.sku]) for p in book.catalog_at(t)],
        )

    @router.get("/prices/changes")
    def price_changes(
        sku: Annotated[str | None, Query(max_length=128)] = None,
        include_cancelled: bool = False,
    ) -> list[PriceChange]:
        return book.price_changes(sku, include_cancelled=include_cancelled)

    @router.post("/prices/changes", status_code=201)
    def add_price_change(body: PriceChangeRequest, who: str | None = Depends(actor)) -> PriceChange:
        return _priced(
            lambda: book.set_price(
                body.sku, body.unit_price_cents, body.effective_from_s, now_s=now(), actor=who
            )
        )

    @router.delete("/prices/changes/{change_id}")
    def cancel_price_change(change_id: int, who: str | None = Depends(actor)) -> PriceChange:
        return _priced(lambda: book.cancel_price_change(change_id, now_s=now(), actor=who))

    @router.get("/promotions")
    def promotions(active_at_s: _AT_S = None, include_cancelled: bool = False) -> list[Promotion]:
        return book.promotions(active_at_s=active_at_s, include_cancelled=include_cancelled)

    @router.post("/promotions", status_code=201)
    def add_promotion(body: PromotionRequest, who: str | None = Depends(actor)) -> Promotion:
        return _priced(
            lambda: book.add_promotion(
                body.name,
                body.skus,
                body.kind,
                body.value,
                body.effective_from_s,
                until_s=body.until_s,
                now_s=now(),
                actor=who,
            )
        )

    @router.get("/promotions/{promotion_id}")
    def promotion(promotion_id: int) -> Promotion:
        return _priced(lambda: book.promotion(promotion_id))

    @router.delete("/promotions/{promotion_id}")
    def cancel_promotion(promotion_id: int, who: str | None = Depends(actor)) -> Promotion:
        return _priced(lambda: book.cancel_promotion(promotion_id, now_s=now(), actor=who))

    @router.post("/promotions/{promotion_id}/end")
    def end_promotion(promotion_id: int, who: str | None = Depends(actor)) -> Promotion:
        return _priced(lambda: book.end_promotion(promotion_id, now_s=now(), actor=who))

    return router


def _priced(change: Callable[[], _T]) -> _T:
    """Run a book call, mapping its refusals to HTTP: 404 unknown id, 409 wrong time, 422 value."""
    try:
        return change()
    except PricingNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except PricingConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except PricingError as exc:
        raise HTTPException(422, str(exc)) from None
