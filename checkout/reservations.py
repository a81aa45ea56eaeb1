"""Click-and-collect reservations: units held for online orders until staff pick them.

An order is *held* from ``reserve`` until it expires, is cancelled, or staff
start picking it; while *picking* it no longer lapses at its expiry but after
``picking_timeout_s``, and each removal staff make for it (one no shopper
explains) is claimed against its remaining units until none is left and it is
*fulfilled*. Held and picking orders are active: their remaining units are
subtracted from the shelf to give available-to-promise (ATP).

This lives apart from ``checkout.inventory`` because it is a different
bookkeeping with its own table: it never moves a unit on a shelf, it only
says which of the units on the shelves are spoken for. The inventory owns
the lock, the event-time clock and the piles, and calls in here with both
already settled; ``Reservations`` (like ``AlertBook``) shares its database
(:mod:`checkout.database`) and trusts the caller to serialise access.

>>> from collections import Counter
>>> from checkout.sqlite_file import SqliteFile
>>> book = Reservations(
...     SqliteFile(":memory:"),
...     catalog={"SKU001"},
...     clock=lambda: 1.8e9,
...     picking_timeout_s=900.0,
...     counts=Counter(),
... )
>>> shelf = {"SKU001": 10}
>>> def atp(sku: str) -> int:
...     return max(0, shelf[sku] - book.reserved(sku))
>>> book.reserve("o-1", {"SKU001": 3}, 1.8e9, 1.8e9 + 600, atp=atp).state, atp("SKU001")
('held', 7)
>>> book.start_picking("o-1", 1.8e9 + 60).state
'picking'
>>> book.claim("SKU001", 3, 1.8e9 + 90), book.get("o-1").state, atp("SKU001")
('o-1', 'fulfilled', 10)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from checkout.database import Database, Migration, upsert

__all__ = [
    "EPOCH_FLOOR_S",
    "MIGRATIONS",
    "OrderConflictError",
    "Reservation",
    "ReservationError",
    "Reservations",
    "ShortStockError",
    "UnknownOrderError",
    "check_event_time",
]

EPOCH_FLOOR_S = 946_684_800.0  # the earliest event time a payload accepts
_ORDER_ID = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")  # iot.payloads.Id

MIGRATIONS = (
    Migration(
        1,
        "click-and-collect reservations",
        """
CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_s REAL NOT NULL,
    payload TEXT NOT NULL
)
""",
    ),
)
_SAVE = upsert("reservations", ("order_id", "state", "updated_s", "payload"), key=("order_id",))


class ReservationError(Exception):
    """A reservation request that cannot be met; the message says why and what to do."""


class OrderConflictError(ReservationError):
    """The order exists with other lines, or its state does not allow the change."""


class UnknownOrderError(ReservationError, LookupError):
    """No reservation has this order id."""


class ShortStockError(ReservationError):
    """Available-to-promise is short for at least one line (``shortfall_units`` per SKU)."""

    def __init__(self, order_id: str, short: dict[str, int], available: dict[str, int]) -> None:
        self.shortfall_units = short
        self.available_units = available
        parts = ", ".join(f"{s} short by {n} (available {available[s]})" for s, n in short.items())
        super().__init__(f"order {order_id!r} cannot be reserved: {parts}; lower those lines")


class Reservation(BaseModel):
    """Units held for one click-and-collect order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: str
    state: Literal["held", "picking", "fulfilled", "cancelled", "expired"] = Field(
        description="held and picking are active: they hold their remaining units."
    )
    lines: dict[str, int] = Field(description="SKU -> units ordered.")
    remaining: dict[str, int] = Field(description="SKU -> units not yet picked.")
    created_s: float = Field(description="Event time the order was reserved, Unix s.")
    expires_s: float = Field(description="A held order lapses at this event time, Unix s.")
    picking_s: float | None = Field(default=None, description="When staff started picking.")
    closed_s: float | None = Field(default=None, description="When it left the active states.")

    @property
    def active(self) -> bool:
        return self.state in ("held", "picking")


class Reservations:
    """Orders in the database, and the active ones in memory; the caller serialises access.

    ``catalog``: the SKUs an order may name. ``clock``: the caller's event
    time, already advanced to the request's time (it stamps each write).
    ``counts``: the caller's counters, so ``stats`` reports reservations too.
    """

    def __init__(
        self,
        db: Database,
        *,
        catalog: Collection[str],
        clock: Callable[[], float],
        picking_timeout_s: float,
        counts: Counter[str],
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._clock = clock
        self._picking_timeout_s = picking_timeout_s
        self._counts = counts
        db.migrate("reservations", MIGRATIONS)
        with db.writer() as c:
            rows = c.execute(
                "SELECT payload FROM reservations WHERE state IN (?, ?)", ("held", "picking")
            ).fetchall()
        orders = (Reservation.model_validate_json(r[0]) for r in rows)
        # Only active orders are kept in memory: they are the ones ATP and expiry read on
        # every event; closed ones are looked up in the database on the rare request naming them.
        self.active = {o.order_id: o for o in orders}

    def check_request(
        self, order_id: str, lines: Mapping[str, int], time_s: float, expires_s: float
    ) -> None:
        """ValueError naming the first bad field; nothing is read or written."""
        if not _ORDER_ID.match(order_id):
            raise ValueError(
                f"order_id {order_id!r} must be 1-128 characters of letters, digits and ._:@/-"
            )
        if not lines:
            raise ValueError(f"order {order_id!r} has no lines; reserve at least one SKU")
        for sku, qty in lines.items():
            if sku not in self._catalog:
                raise ValueError(f"lines.{sku}: {sku!r} is not in the catalog")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                raise ValueError(f"lines.{sku}: units must be a whole number >= 1, got {qty!r}")
        check_event_time(time_s)
        check_event_time(expires_s)
        if expires_s <= time_s:
            raise ValueError(f"expires_s {expires_s} must be after time_s {time_s}")

    def reserve(
        self,
        order_id: str,
        lines: Mapping[str, int],
        time_s: float,
        expires_s: float,
        *,
        atp: Callable[[str], int],
    ) -> Reservation:
        """Hold ``lines`` for a checked request if ``atp`` (SKU -> units) covers every line."""
        clock_s = self._clock()
        if expires_s <= clock_s:
            raise ValueError(
                f"order {order_id!r} expires_s {expires_s} is not after the inventory's "
                f"event time {clock_s}; give a later expiry"
            )
        known = self.get(order_id)
        if known is not None:
            # A client retrying after a lost response gets its order back, not a conflict.
            if known.active and known.lines == dict(sorted(lines.items())):
                return known
            raise OrderConflictError(
                f"order {order_id!r} already exists ({known.state}, lines {known.lines}); "
                "use a new order id"
            )
        available = {sku: atp(sku) for sku in sorted(lines)}
        short = {s: q - available[s] for s, q in sorted(lines.items()) if q > available[s]}
        if short:
            self._counts["reservations_refused"] += 1
            raise ShortStockError(order_id, short, available)
        wanted = dict(sorted(lines.items()))
        order = Reservation(
            order_id=order_id,
            state="held",
            lines=wanted,
            remaining=wanted,
            created_s=time_s,
            expires_s=expires_s,
        )
        self._save(order)
        self._counts["reservations"] += 1
        return order

    def cancel(self, order_id: str, time_s: float) -> Reservation:
        order = self._require(order_id)
        if order.state == "cancelled":
            return order  # a repeated cancel is harmless, so clients may retry it
        if not order.active:
            raise OrderConflictError(f"order {order_id!r} is {order.state}; nothing to cancel")
        return self._close(order, "cancelled", time_s)

    def start_picking(self, order_id: str, time_s: float) -> Reservation:
        order = self._require(order_id)
        if order.state == "picking":
            return order
        if order.state != "held":
            raise OrderConflictError(
                f"order {order_id!r} is {order.state}; only a held order can be picked"
            )
        picking = order.model_copy(update={"state": "picking", "picking_s": time_s})
        self._save(picking)
        return picking

    def claim(self, sku: str, quantity: int, time_s: float) -> str | None:
        """The picking order whose remaining ``sku`` units take all of ``quantity``, or None."""
        fits = [
            o
            for o in self.active.values()
            if o.state == "picking" and o.remaining.get(sku, 0) >= quantity
        ]
        if not fits:
            self._counts["claims_unmatched"] += 1
            return None
        # Earliest picking first: the order staff have been collecting longest is the likeliest.
        order = min(fits, key=lambda o: (o.picking_s or 0.0, o.order_id))
        remaining = {**order.remaining, sku: order.remaining[sku] - quantity}
        order = order.model_copy(update={"remaining": remaining})
        if any(remaining.values()):
            self._save(order)
        else:
            self._close(order, "fulfilled", time_s)
        self._counts["claims"] += 1
        return order.order_id

    def expire_due(self, clock_s: float) -> None:
        """Close every active order whose hold or picking time has run out by ``clock_s``."""
        # Sorted so that a replay expires orders (and writes their rows) in the same order.
        for order in sorted(self.active.values(), key=lambda o: o.order_id):
            due_s = (
                order.expires_s
                if order.state == "held"
                else (order.picking_s or order.created_s) + self._picking_timeout_s
            )
            if due_s <= clock_s:
                # Stamped when it fell due, not when noticed, so a late tick changes nothing.
                self._close(order, "expired", due_s)

    def get(self, order_id: str) -> Reservation | None:
        if order_id in self.active:
            return self.active[order_id]
        with self._db.writer() as c:
            row = c.execute(
                "SELECT payload FROM reservations WHERE order_id = ?", (order_id,)
            ).fetchone()
        return Reservation.model_validate_json(row[0]) if row is not None else None

    def reserved(self, sku: str) -> int:
        """Units of ``sku`` that active orders still hold."""
        return sum(o.remaining.get(sku, 0) for o in self.active.values())

    def latest_time_s(self) -> float | None:
        """The newest write time on file (to restart the service's clock)."""
        with self._db.writer() as c:
            row = c.execute("SELECT MAX(updated_s) FROM reservations").fetchone()
        return float(row[0]) if row[0] is not None else None

    def _require(self, order_id: str) -> Reservation:
        order = self.get(order_id)
        if order is None:
            raise UnknownOrderError(f"no reservation for order {order_id!r}; reserve it first")
        return order

    def _close(self, order: Reservation, state: str, time_s: float) -> Reservation:
        done = order.model_copy(update={"state": state, "closed_s": max(time_s, order.created_s)})
        self._save(done)
        self._counts[f"reservations_{state}"] += 1
        return done

    def _save(self, order: Reservation) -> None:
        # One statement, so autocommit makes it all-or-nothing without a BEGIN.
        with self._db.writer() as c:
            c.execute(_SAVE, (order.order_id, order.state, self._clock(), order.model_dump_json()))
        # Memory follows the database only once the row is written, so it never runs ahead.
        if order.active:
            self.active[order.order_id] = order
        else:
            self.active.pop(order.order_id, None)


def check_event_time(time_s: float) -> None:
    """ValueError unless ``time_s`` is a finite Unix time no earlier than ``EPOCH_FLOOR_S``."""
    if not (isinstance(time_s, int | float) and math.isfinite(time_s) and time_s >= EPOCH_FLOOR_S):
        raise ValueError(f"time {time_s!r} must be a finite Unix time in seconds (event time)")
