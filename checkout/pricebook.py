"""The price book: price changes and promotions that take effect from a chosen event time.

The store file's catalog gives each SKU its price; the book keeps what a
manager changes on top of it, in its database (SQLite or PostgreSQL), so a
receipt can price every unit as of the moment it was picked. The unit price
at time ``t`` is the latest change with ``effective_from_s <= t`` (the
later-set one on a tie), else the catalog's. A promotion runs from
``effective_from_s`` up to, not including, ``until_s`` (open-ended when
none); a unit picked while promotions run for its SKU gets the one best for
the shopper, never a price above the list.

Nothing may reprice a pick already made: a change or promotion must start at
or after the store's ``now`` (the newest event time it has seen), only what
has not started can be cancelled, and a running promotion can only be ended
at ``now``. Cancelled entries stay in the file, marked, as the audit trail;
``set_by`` records who asked (the signed-in user's name, when the caller
has one).

>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> book = PriceBook(store, ":memory:")
>>> book.prices_at("SKU001", 1.8e9).unit_price_cents  # the catalog's price
89
>>> _ = book.set_price("SKU001", 99, 1.8e9 + 60, now_s=1.8e9, actor="ana")
>>> _ = book.add_promotion("water week", ["SKU001"], "percent_off", 50,
...                        1.8e9 + 120, until_s=1.8e9 + 180, now_s=1.8e9)
>>> [book.prices_at("SKU001", 1.8e9 + dt).unit_price_cents for dt in (59, 60, 120, 180)]
[89, 99, 50, 99]
>>> book.prices_at("SKU001", 1.8e9 + 150).promotion
'water week'
>>> book.close()
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from checkout.database import Connection, Migration, open_database
from iot.store import Store

__all__ = [
    "MAX_PRICE_CENTS",
    "MAX_PROMOTION_NAME",
    "MIGRATIONS",
    "PriceBook",
    "PriceChange",
    "PriceSource",
    "PricingConflictError",
    "PricingError",
    "PricingNotFoundError",
    "Promotion",
    "PromotionKind",
    "UnitPrice",
    "promoted_price_cents",
]

PromotionKind = Literal["percent_off", "fixed_price"]
MAX_PRICE_CENTS = 100_000_000  # one million in major units: anything above is a typo
MAX_PROMOTION_NAME = 200  # characters; iot.payloads.ReceiptLine.promotion takes no more
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # none printable; a NUL not even storable
_EARLIEST_S = 946_684_800.0  # 2000-01-01, as iot.payloads.EventTime
_LATEST_S = 4_102_444_800.0  # 2100-01-01
_ROW_IDS = range(-(2**63), 2**63)  # a 64-bit INTEGER (both engines); no row has an id beyond


class PricingError(ValueError):
    """A price change or promotion with a bad value: the message names it and the fix."""


class PricingConflictError(PricingError):
    """Refused because of when it is: it would reprice picks already made, or has started."""


class PricingNotFoundError(PricingError, LookupError):
    """No price change or promotion with that id."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PriceChange(_Record):
    """A new list price for one SKU, from an event time on."""

    id: int = Field(description="The book's id of the change.")
    sku: str = Field(description="SKU repriced.")
    unit_price_cents: int = Field(ge=0, description="New unit price, minor currency units.")
    effective_from_s: float = Field(description="Event time from which picks pay it, Unix s.")
    set_by: str | None = Field(description="Who set it, when the caller named someone.")
    set_at_s: float = Field(description="The store's event time when it was set, Unix s.")
    cancelled_at_s: float | None = Field(
        default=None, description="When it was cancelled before taking effect; none if live."
    )
    cancelled_by: str | None = Field(default=None, description="Who cancelled it.")


class Promotion(_Record):
    """A discount on some SKUs for a window of event time."""

    id: int = Field(description="The book's id of the promotion.")
    name: str = Field(description="Name printed on receipt lines it priced.")
    skus: list[str] = Field(description="SKUs it applies to, sorted.")
    kind: PromotionKind = Field(description="percent_off: a share off; fixed_price: a set price.")
    value: int = Field(
        description="percent_off: percent off the list price (1..100); "
        "fixed_price: the unit price in minor currency units."
    )
    effective_from_s: float = Field(description="Event time it starts, Unix s.")
    until_s: float | None = Field(description="Event time it stops (excluded); none: open.")
    set_by: str | None = Field(description="Who set it, when the caller named someone.")
    set_at_s: float = Field(description="The store's event time when it was set, Unix s.")
    ended_by: str | None = Field(default=None, description="Who ended it early, if anyone.")
    cancelled_at_s: float | None = Field(
        default=None, description="When it was cancelled before starting; none if live."
    )
    cancelled_by: str | None = Field(default=None, description="Who cancelled it.")

    def active_at(self, t: float) -> bool:
        """Whether a unit picked at ``t`` gets this promotion (cancelled ones never run)."""
        return (
            self.cancelled_at_s is None
            and self.effective_from_s <= t
            and (self.until_s is None or t < self.until_s)
        )


class UnitPrice(_Record):
    """What one unit of a SKU picked at ``at_s`` costs, and why."""

    sku: str
    at_s: float = Field(description="The pick's event time, Unix s.")
    catalog_price_cents: int = Field(ge=0, description="The store file's price.")
    list_price_cents: int = Field(
        ge=0, description="Price before any promotion: the latest change in effect, else catalog."
    )
    unit_price_cents: int = Field(ge=0, description="What the shopper pays for the unit.")
    price_change_id: int | None = Field(description="The change that set the list price.")
    promotion_id: int | None = Field(description="The promotion applied, if any.")
    promotion: str | None = Field(description="Its name, if any.")


class PriceSource(Protocol):
    """Anything that can price one unit of a SKU picked at an event time (receipts use it)."""

    def prices_at(self, sku: str, t: float) -> UnitPrice: ...


def promoted_price_cents(list_price_cents: int, kind: PromotionKind, value: int) -> int:
    """The unit price under a promotion; percent off rounds to the nearest cent, halves up.

    >>> promoted_price_cents(89, "percent_off", 50), promoted_price_cents(89, "fixed_price", 60)
    (45, 60)
    """
    if kind == "percent_off":
        return (list_price_cents * (100 - value) + 50) // 100
    return value


_V1 = """
CREATE TABLE IF NOT EXISTS price_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    effective_from_s REAL NOT NULL,
    set_by TEXT,
    set_at_s REAL NOT NULL,
    cancelled_at_s REAL,
    cancelled_by TEXT
);
CREATE INDEX IF NOT EXISTS price_changes_by_sku ON price_changes (sku, effective_from_s);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    value INTEGER NOT NULL,
    effective_from_s REAL NOT NULL,
    until_s REAL,
    set_by TEXT,
    set_at_s REAL NOT NULL,
    ended_by TEXT,
    cancelled_at_s REAL,
    cancelled_by TEXT
);
CREATE TABLE IF NOT EXISTS promotion_skus (
    promotion_id INTEGER NOT NULL REFERENCES promotions (id),
    sku TEXT NOT NULL,
    PRIMARY KEY (promotion_id, sku)
);
CREATE INDEX IF NOT EXISTS promotion_skus_by_sku ON promotion_skus (sku);
"""
MIGRATIONS = (Migration(1, "price changes, promotions and the SKUs they cover", _V1),)

_CHANGE_COLUMNS = (
    "id, sku, unit_price_cents, effective_from_s, set_by, set_at_s, cancelled_at_s, cancelled_by"
)
_PROMOTION_COLUMNS = (
    "id, name, kind, value, effective_from_s, until_s, set_by, set_at_s, ended_by, "
    "cancelled_at_s, cancelled_by"
)


class PriceBook:
    """Price changes and promotions of one store, kept at ``path``: an SQLite file
    (``":memory:"`` for tests) or a ``postgresql://`` URL.

    Writes take ``now_s``, the store's event time, to refuse anything that
    would reprice a pick already made; ``actor`` is who asks (kept as
    ``set_by``/``cancelled_by``/``ended_by``). The caller owns (and closes) it.
    """

    def __init__(self, store: Store, path: str | Path = ":memory:") -> None:
        self.store = store
        self._file = open_database(
            path,
            "prices",
            MIGRATIONS,
            closed_message=lambda _use: (
                f"price book {self.path} is closed; open a new PriceBook to use it"
            ),
        )
        self.path = self._file.path

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    # --- reading ---

    def prices_at(self, sku: str, t: float) -> UnitPrice:
        """The list price, promotion and price paid for one unit of ``sku`` picked at ``t``."""
        catalog = self._catalog_price(sku)
        with self._read() as c:
            change = c.execute(
                "SELECT id, unit_price_cents FROM price_changes WHERE sku = ? "
                "AND cancelled_at_s IS NULL AND effective_from_s <= ? "
                "ORDER BY effective_from_s DESC, id DESC LIMIT 1",
                (sku, t),
            ).fetchone()
            promos = [
                _promotion(c, row)
                for row in c.execute(
                    f"SELECT {_prefixed('p', _PROMOTION_COLUMNS)} FROM promotions p "
                    "JOIN promotion_skus s ON s.promotion_id = p.id WHERE s.sku = ? "
                    "AND p.cancelled_at_s IS NULL AND p.effective_from_s <= ? "
                    "AND (p.until_s IS NULL OR p.until_s > ?) ORDER BY p.id",
                    (sku, t, t),
                ).fetchall()
            ]
        list_price = catalog if change is None else int(change["unit_price_cents"])
        best = _best_promotion(list_price, promos)
        paid = (
            list_price if best is None else promoted_price_cents(list_price, best.kind, best.value)
        )
        return UnitPrice(
            sku=sku,
            at_s=t,
            catalog_price_cents=catalog,
            list_price_cents=list_price,
            unit_price_cents=paid,
            price_change_id=None if change is None else int(change["id"]),
            promotion_id=None if best is None else best.id,
            promotion=None if best is None else best.name,
        )

    def catalog_at(self, t: float) -> list[UnitPrice]:
        """Every catalog item priced for a unit picked at ``t``, in catalog order."""
        return [self.prices_at(item.sku, t) for item in self.store.catalog.items]

    def price_changes(
        self, sku: str | None = None, *, include_cancelled: bool = False
    ) -> list[PriceChange]:
        """Changes by SKU then effective time; cancelled ones only when asked."""
        where, args = [], []
        if sku is not None:
            where.append("sku = ?")
            args.append(sku)
        if not include_cancelled:
            where.append("cancelled_at_s IS NULL")
        sql = f"SELECT {_CHANGE_COLUMNS} FROM price_changes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._read() as c:
            rows = c.execute(sql + " ORDER BY sku, effective_from_s, id", args).fetchall()
        return [_change(row) for row in rows]

    def price_change(self, change_id: int) -> PriceChange:
        with self._read() as c:
            return self._change_row(c, change_id)

    def promotions(
        self, *, active_at_s: float | None = None, include_cancelled: bool = False
    ) -> list[Promotion]:
        """Promotions by start time; only those running at ``active_at_s`` when given."""
        with self._read() as c:
            rows = c.execute(
                f"SELECT {_PROMOTION_COLUMNS} FROM promotions ORDER BY effective_from_s, id"
            ).fetchall()
            found = [_promotion(c, row) for row in rows]
        if not include_cancelled:
            found = [p for p in found if p.cancelled_at_s is None]
        if active_at_s is not None:
            found = [p for p in found if p.active_at(active_at_s)]
        return found

    def promotion(self, promotion_id: int) -> Promotion:
        with self._read() as c:
            return self._promotion_row(c, promotion_id)

    # --- writing ---

    def set_price(
        self,
        sku: str,
        unit_price_cents: int,
        effective_from_s: float,
        *,
        now_s: float,
        actor: str | None = None,
    ) -> PriceChange:
        """Schedule ``sku`` at ``unit_price_cents`` from ``effective_from_s`` (>= ``now_s``)."""
        self._catalog_price(sku)
        _check_price("unit_price_cents", unit_price_cents)
        _check_time("effective_from_s", effective_from_s)
        _check_not_before_now(f"price change for {sku}", effective_from_s, now_s)
        with self._write() as c:
            # fetchall: the RETURNING statement must run to its end before the COMMIT
            (row,) = c.execute(
                "INSERT INTO price_changes (sku, unit_price_cents, effective_from_s, set_by, "
                "set_at_s) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (sku, unit_price_cents, effective_from_s, actor, now_s),
            ).fetchall()
            return self._change_row(c, int(row[0]))

    def cancel_price_change(
        self, change_id: int, *, now_s: float, actor: str | None = None
    ) -> PriceChange:
        """Cancel a change that has not taken effect; cancelling twice changes nothing."""
        with self._write() as c:
            change = self._change_row(c, change_id)
            if change.cancelled_at_s is not None:
                return change
            if change.effective_from_s <= now_s:
                raise PricingConflictError(
                    f"price change {change_id} ({change.sku} at {change.unit_price_cents} cents) "
                    f"took effect at {change.effective_from_s:.3f}, not after the store's now "
                    f"{now_s:.3f}: picks may already carry it; schedule a new change instead"
                )
            c.execute(
                "UPDATE price_changes SET cancelled_at_s = ?, cancelled_by = ? WHERE id = ?",
                (now_s, actor, change_id),
            )
            return self._change_row(c, change_id)

    def add_promotion(
        self,
        name: str,
        skus: Sequence[str],
        kind: PromotionKind,
        value: int,
        effective_from_s: float,
        *,
        until_s: float | None = None,
        now_s: float,
        actor: str | None = None,
    ) -> Promotion:
        """Schedule a promotion on ``skus`` from ``effective_from_s`` (>= ``now_s``)."""
        if not name.strip():
            raise PricingError("promotion name is empty; give the name receipts will print")
        if len(name) > MAX_PROMOTION_NAME:
            raise PricingError(
                f"promotion name {name[:40]!r}... has {len(name)} characters; receipts print "
                f"at most {MAX_PROMOTION_NAME}"
            )
        if _CONTROL.search(name):
            raise PricingError(
                f"promotion name {name[:40]!r} holds a control character; receipts print plain text"
            )
        if not skus:
            raise PricingError(f"promotion {name!r} names no SKU; give at least one")
        if len(set(skus)) != len(skus):
            raise PricingError(f"promotion {name!r} names a SKU twice: {list(skus)}")
        for sku in skus:
            self._catalog_price(sku)
        _check_promotion_value(kind, value)
        _check_time("effective_from_s", effective_from_s)
        if until_s is not None:
            _check_time("until_s", until_s)
            if until_s <= effective_from_s:
                raise PricingError(
                    f"promotion {name!r} ends at until_s={until_s:.3f}, not after it starts at "
                    f"effective_from_s={effective_from_s:.3f}; give a later until_s or none"
                )
        _check_not_before_now(f"promotion {name!r}", effective_from_s, now_s)
        with self._write() as c:
            (row,) = c.execute(
                "INSERT INTO promotions (name, kind, value, effective_from_s, until_s, set_by, "
                "set_at_s) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (name, kind, value, effective_from_s, until_s, actor, now_s),
            ).fetchall()
            promotion_id = int(row[0])
            c.executemany(
                "INSERT INTO promotion_skus (promotion_id, sku) VALUES (?, ?)",
                [(promotion_id, sku) for sku in skus],
            )
            return self._promotion_row(c, promotion_id)

    def cancel_promotion(
        self, promotion_id: int, *, now_s: float, actor: str | None = None
    ) -> Promotion:
        """Cancel a promotion that has not started; cancelling twice changes nothing."""
        with self._write() as c:
            promo = self._promotion_row(c, promotion_id)
            if promo.cancelled_at_s is not None:
                return promo
            if promo.effective_from_s <= now_s:
                raise PricingConflictError(
                    f"promotion {promotion_id} ({promo.name!r}) started at "
                    f"{promo.effective_from_s:.3f}, not after the store's now {now_s:.3f}: "
                    f"end it instead (POST /promotions/{promotion_id}/end)"
                )
            c.execute(
                "UPDATE promotions SET cancelled_at_s = ?, cancelled_by = ? WHERE id = ?",
                (now_s, actor, promotion_id),
            )
            return self._promotion_row(c, promotion_id)

    def end_promotion(
        self, promotion_id: int, *, now_s: float, actor: str | None = None
    ) -> Promotion:
        """End a running promotion at ``now_s``: picks from then on pay the list price."""
        with self._write() as c:
            promo = self._promotion_row(c, promotion_id)
            if promo.cancelled_at_s is not None:
                raise PricingConflictError(
                    f"promotion {promotion_id} ({promo.name!r}) was cancelled; nothing to end"
                )
            if promo.effective_from_s > now_s:
                raise PricingConflictError(
                    f"promotion {promotion_id} ({promo.name!r}) starts at "
                    f"{promo.effective_from_s:.3f}, after the store's now {now_s:.3f}: "
                    f"cancel it instead (DELETE /promotions/{promotion_id})"
                )
            if promo.until_s is not None and promo.until_s <= now_s:
                raise PricingConflictError(
                    f"promotion {promotion_id} ({promo.name!r}) already ended at "
                    f"{promo.until_s:.3f}"
                )
            c.execute(
                "UPDATE promotions SET until_s = ?, ended_by = ? WHERE id = ?",
                (now_s, actor, promotion_id),
            )
            return self._promotion_row(c, promotion_id)

    # --- internals ---

    def _catalog_price(self, sku: str) -> int:
        item = self.store.items.get(sku)
        if item is None:
            raise PricingError(
                f"SKU {sku!r} is not in the catalog of store {self.store.store_id!r}; "
                "list the SKUs with GET /catalog"
            )
        return item.price_cents

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        # A read spanning both tables sees one state of the book.
        with self._file.read_tx() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        # Check-then-change in one transaction: two managers cannot both cancel a started change.
        with self._file.write_tx() as conn:
            yield conn

    @staticmethod
    def _change_row(c: Connection, change_id: int) -> PriceChange:
        row = (
            c.execute(
                f"SELECT {_CHANGE_COLUMNS} FROM price_changes WHERE id = ?", (change_id,)
            ).fetchone()
            if change_id in _ROW_IDS
            else None
        )
        if row is None:
            raise PricingNotFoundError(
                f"no price change {change_id}; list them with GET /prices/changes"
            )
        return _change(row)

    @staticmethod
    def _promotion_row(c: Connection, promotion_id: int) -> Promotion:
        row = (
            c.execute(
                f"SELECT {_PROMOTION_COLUMNS} FROM promotions WHERE id = ?", (promotion_id,)
            ).fetchone()
            if promotion_id in _ROW_IDS
            else None
        )
        if row is None:
            raise PricingNotFoundError(
                f"no promotion {promotion_id}; list them with GET /promotions"
            )
        return _promotion(c, row)


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{col.strip()}" for col in columns.split(","))


def _change(row: Any) -> PriceChange:
    return PriceChange.model_validate(dict(row))


def _promotion(c: Connection, row: Any) -> Promotion:
    skus = [
        r["sku"]
        for r in c.execute(
            "SELECT sku FROM promotion_skus WHERE promotion_id = ? ORDER BY sku", (row["id"],)
        )
    ]
    return Promotion.model_validate({**dict(row), "skus": skus})


def _best_promotion(list_price_cents: int, promos: Sequence[Promotion]) -> Promotion | None:
    """The running promotion cheapest for the shopper (lowest id on a tie), if any undercuts.

    A promotion that would charge more than the list price (a fixed price set
    before the list price fell below it) does not apply.
    """
    best: tuple[int, int, Promotion] | None = None
    for p in promos:
        key = (promoted_price_cents(list_price_cents, p.kind, p.value), p.id)
        if best is None or key < best[:2]:
            best = (*key, p)
    if best is None or best[0] > list_price_cents:
        return None
    return best[2]


def _check_price(field: str, cents: int) -> None:
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise PricingError(f"{field}={cents!r} is not a whole number of cents")
    if not 0 <= cents <= MAX_PRICE_CENTS:
        raise PricingError(
            f"{field}={cents} is outside 0..{MAX_PRICE_CENTS} cents; give a price in minor "
            "currency units (cents), not negative"
        )


def _check_promotion_value(kind: str, value: int) -> None:
    if kind == "percent_off":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            raise PricingError(f"percent_off promotion value={value!r} must be 1..100 percent")
    elif kind == "fixed_price":
        _check_price("fixed_price promotion value", value)
    else:
        raise PricingError(f"promotion kind {kind!r} is unknown; use percent_off or fixed_price")


def _check_time(field: str, t: float) -> None:
    if not (math.isfinite(t) and _EARLIEST_S <= t <= _LATEST_S):
        raise PricingError(
            f"{field}={t!r} is not an event time between 2000 and 2100; give Unix seconds"
        )


def _check_not_before_now(what: str, effective_from_s: float, now_s: float) -> None:
    if effective_from_s < now_s:
        raise PricingConflictError(
            f"{what} would start at effective_from_s={effective_from_s:.3f}, before the store's "
            f"now {now_s:.3f}: it would reprice picks already made; start it at or after now"
        )
