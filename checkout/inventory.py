"""Inventory: units on the shelves, stock alerts, replenishment and online available-to-promise.

The service folds shelf events into *piles* (units of one SKU on one plate)
as they arrive, so a stock-out is alerted about a second after the last unit
left, not after the brain has decided who took it. The brain's cart event
for the same shelf event may later read it otherwise (another SKU of a shared
plate, or a wrong-plate put-back of a SKU the plate does not stock, kept
apart as *foreign* units): the shelf event's effect is then undone and
redone, once per cart event id. A pile never goes below 0; when it would,
the anomaly is counted instead.

Online orders reserve units: available-to-promise (ATP) per SKU is the home
piles' units less what active reservations still hold, never negative. While
staff pick an order, a removal no shopper explains is claimed for it
(``claim_unattributed``) instead of becoming shrink.

What survives a restart: the database (an SQLite file, or PostgreSQL: see
:mod:`checkout.database`) is written through on every change,
so pile units (home and foreign), shelf events' effects (for corrections and
repeats within ``effect_retention_s``), alert episodes and reservations are
all read back; only the counters start again. Alerts: ``checkout.stock_alerts``;
reservations: ``checkout.reservations`` (its names are re-exported here).

>>> from pathlib import Path
>>> from iot.bus import LocalTransport
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> inv = InventoryService(store, LocalTransport(), ":memory:", now=lambda: 1.8e9)
>>> inv.start(); inv.atp("SKU001")  # 22 units on each of two plates
44
>>> inv.reserve("o-1", {"SKU001": 5}, 1.8e9, 1.8e9 + 600).state, inv.atp("SKU001")
('held', 39)
>>> inv.tick(1.8e9 + 600); inv.atp("SKU001")  # the hold lapsed at its event time
44
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from checkout.database import Migration, open_database, upsert
from checkout.reservations import (
    EPOCH_FLOOR_S,
    OrderConflictError,
    Reservation,
    ReservationError,
    Reservations,
    ShortStockError,
    UnknownOrderError,
    check_event_time,
)
from checkout.stock_alerts import (
    AlertBook,
    AlertEpisode,
    InventorySettings,
    PileStock,
    ReplenishmentLine,
    SkuStock,
    replenishment_lines,
    thresholds,
)
from checkout.tick_guard import TickGuard
from iot.bus import Inbox, Message, Transport, publish
from iot.payloads import CartEvent, ShelfEvent
from iot.store import Store
from iot.topics import TOPICS

__all__ = [
    "MIGRATIONS",
    "InventoryService",
    "InventorySettings",
    "OrderConflictError",
    "Reservation",
    "ReservationError",
    "ShortStockError",
    "SkuStock",
    "UnknownOrderError",
]

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 60.0

PileKey = tuple[str, str, bool]  # (plate id, sku, foreign)
_Change = tuple[str, str, bool, int]  # (plate id, sku, foreign, units)

_V1 = """
CREATE TABLE IF NOT EXISTS piles (
    plate_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    is_foreign INTEGER NOT NULL,
    units INTEGER NOT NULL,
    updated_s REAL NOT NULL,
    PRIMARY KEY (plate_id, sku, is_foreign)
);
CREATE TABLE IF NOT EXISTS effects (
    event_id TEXT PRIMARY KEY,
    time_s REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS effects_time ON effects (time_s);
"""
# Alerts and reservations add their own tables (checkout.stock_alerts, checkout.reservations).
MIGRATIONS = (Migration(1, "units per pile and what each shelf event did to them", _V1),)
_SAVE_PILE = upsert(
    "piles",
    ("plate_id", "sku", "is_foreign", "units", "updated_s"),
    key=("plate_id", "sku", "is_foreign"),
)
_SAVE_EFFECT = upsert("effects", ("event_id", "time_s", "payload"), key=("event_id",))


class _Effect(BaseModel):
    """What one shelf event did to the piles, kept so that a cart event can correct it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    plate_id: str
    action: Literal["pick", "put"]
    sku: str
    quantity: int
    time_s: float
    applied: list[tuple[str, str, bool, int]]  # (plate, sku, foreign, units actually moved)
    corrected_by: str | None = None


class InventoryService:
    """Shelf units, stock alerts, replenishment and reservations of one store.

    ``db_path``: the SQLite file (``":memory:"`` for tests) or a ``postgresql://``
    URL (see :func:`checkout.database.open_database`). ``now``: the
    composition root's event-time clock, read only for what comes without an
    event (start, dead letters, HTTP calls that give no time).
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        db_path: str | Path,
        *,
        now: Callable[[], float],
        settings: InventorySettings | None = None,
        service_id: str = "inventory",
    ) -> None:
        self.store = store
        self.transport = transport
        self.now = now
        self.settings = settings or InventorySettings()
        self.service_id = service_id
        self.inbox: Inbox | None = None
        self.counts: Counter[str] = Counter()
        self.clock_s = -math.inf
        self._lock = threading.RLock()  # bus handlers, tick and HTTP threads take turns
        self._ticks = TickGuard(self.settings.max_future_s)  # the composition root's clock
        self._last_prune_s = -math.inf
        self._entries = {(e.plate, e.sku): e for e in store.planogram}
        self._limits = {
            k: thresholds(e.capacity_units, self.settings) for k, e in self._entries.items()
        }
        self._gondola = {p.id: g.id for g, _, p in store.iter_plates()}
        # One writer connection, shared under the service's lock: HTTP threads read through it too.
        self._db = open_database(
            db_path,
            "inventory",
            MIGRATIONS,
            closed_message=lambda use: (
                f"inventory {self._db.path} is closed; start a new InventoryService to {use} it"
            ),
        )
        self.alerts = AlertBook(self._db)
        self.reservations = Reservations(
            self._db,
            catalog=frozenset(store.items),
            clock=self._time,
            picking_timeout_s=self.settings.picking_timeout_s,
            counts=self.counts,
        )
        self._piles: dict[PileKey, int] = {}
        self._load()

    # --- life cycle ---

    def _load(self) -> None:
        """Piles start from the planogram, then the persisted snapshot overrides them."""
        self._piles = {(p, s, False): e.initial_units for (p, s), e in self._entries.items()}
        with self._db.writer() as c:
            rows = c.execute("SELECT plate_id, sku, is_foreign, units FROM piles").fetchall()
            row = c.execute("SELECT MAX(updated_s) FROM piles").fetchone()
        for pile in rows:
            key = (pile["plate_id"], pile["sku"], bool(pile["is_foreign"]))
            if not key[2] and (key[0], key[1]) not in self._entries:
                self.counts["piles_no_longer_in_planogram"] += 1
                continue
            self._piles[key] = int(pile["units"])
        latest = (row[0], self.reservations.latest_time_s(), self.alerts.latest_time_s())
        times = [t for t in latest if t is not None]
        self.clock_s = max(times, default=-math.inf)  # event time resumes where it stopped

    def start(self) -> None:
        """Check every pile against its alerts, then subscribe to shelf and cart events."""
        with self._lock:
            self._advance(max(self.now(), EPOCH_FLOOR_S))
            # A pile that starts (or restarts) low raises its alert now, once.
            self._commit({(p, s, False): self._piles[(p, s, False)] for p, s in self._entries})
            self.inbox = inbox = Inbox(
                self.transport,
                self.store.store_id,
                service_kind="ops",
                service_id=self.service_id,
                now=self._time,
                known_devices=self.store.device_ids() | {"brain"},
            )
            inbox.on(TOPICS["shelf_events"], self._guarded(self._on_shelf))
            inbox.on(TOPICS["cart_events"], self._guarded(self._on_cart))

    def tick(self, now_s: float) -> None:
        """Event time has reached ``now_s``: expire what is due."""
        with self._lock:
            self._ticks.tick(now_s)
            self._advance(now_s)

    def close(self) -> None:
        """Close the database (idempotent); the transport belongs to the caller."""
        with self._lock:
            self._db.close()

    def stats(self) -> dict[str, int]:
        """Counters of this run and dead letters by reason."""
        with self._lock:
            out = dict(self.counts)
            rejected = self.inbox.rejected if self.inbox else Counter()
            out["dead_letters"] = sum(rejected.values())
            out.update({f"dead_letter.{reason}": n for reason, n in rejected.items()})
            out["open_alerts"] = len(self.alerts.open)
            out["active_reservations"] = len(self.reservations.active)
            return out

    # --- bus handlers (validated by the inbox) ---

    def _guarded(self, handler: Callable[[Message], None]) -> Callable[[Message], None]:
        def locked(msg: Message) -> None:
            with self._lock:
                ahead = self._ticks.too_far_ahead_s(msg.payload.event_time_s)
                if ahead is not None:
                    self._reject(msg, "from the future", f"{ahead:.1f} s ahead of the last tick")
                    return
                handler(msg)

        return locked

    def _on_shelf(self, msg: Message) -> None:
        ev = msg.payload
        assert isinstance(ev, ShelfEvent)
        oldest_s = self.clock_s - self.settings.effect_retention_s
        if ev.plate_id not in self.store.controller_plates.get(ev.device_id, []):
            detail = f"plate {ev.plate_id!r} is not read by controller {ev.device_id!r}"
            self._reject(msg, "unknown plate", detail)
        elif (ev.plate_id, ev.sku) not in self._entries:
            detail = f"the planogram puts no {ev.sku!r} on plate {ev.plate_id!r}"
            self._reject(msg, "sku not on plate", detail)
        elif ev.event_time_s < oldest_s:
            self._reject(msg, "too old", f"older than effect_retention_s ({oldest_s:.0f})")
        elif self._effect(ev.id) is not None:
            self.counts["shelf_events_repeated"] += 1
        else:
            self._advance(ev.event_time_s)
            delta = -ev.quantity if ev.action == "pick" else ev.quantity
            new, applied = self._stage([(ev.plate_id, ev.sku, False, delta)])
            effect = _Effect(
                event_id=ev.id,
                plate_id=ev.plate_id,
                action=ev.action,
                sku=ev.sku,
                quantity=ev.quantity,
                time_s=ev.event_time_s,
                applied=applied,
            )
            self._commit(new, effect=effect)
            self.counts[f"shelf_{ev.action}s"] += 1

    def _on_cart(self, msg: Message) -> None:
        line = msg.payload
        assert isinstance(line, CartEvent)
        self._advance(line.event_time_s)
        effect = self._effect(line.source_event_id)
        if effect is None:  # a shelf event we never applied (or long forgotten): nothing to move
            self.counts["cart_events_unknown_source"] += 1
        elif effect.corrected_by == line.id:
            self.counts["cart_events_repeated"] += 1
        elif line.quantity_delta == 0 or (line.quantity_delta > 0) != (effect.action == "pick"):
            self.counts["cart_events_contradicting_shelf"] += 1
            log.warning(
                "cart event %s reads %s %+d against a shelf %s; units left as they are",
                line.id,
                line.sku,
                line.quantity_delta,
                effect.action,
            )
        else:
            self._correct(effect, line)

    def _correct(self, effect: _Effect, line: CartEvent) -> None:
        """Redo the shelf event as the cart event reads it (SKU, quantity, home or foreign)."""
        foreign = (effect.plate_id, line.sku) not in self._entries
        same = (
            not foreign and line.sku == effect.sku and abs(line.quantity_delta) == effect.quantity
        )
        if same and effect.corrected_by is None:
            # Confirms the shelf's own reading: redoing it could double-count a clamp at 0.
            self._commit({}, effect=effect.model_copy(update={"corrected_by": line.id}))
            self.counts["cart_events_confirming"] += 1
            return
        undo = [(p, s, f, -d) for p, s, f, d in effect.applied]
        redo = (effect.plate_id, line.sku, foreign, -line.quantity_delta)
        new, applied = self._stage([*undo, redo])
        self._commit(
            new,
            effect=effect.model_copy(
                update={"applied": applied[len(undo) :], "corrected_by": line.id}
            ),
        )
        self.counts["foreign_corrections" if foreign else "shelf_events_corrected"] += 1

    def _reject(self, msg: Message, reason: str, detail: str) -> None:
        assert self.inbox is not None
        self.inbox.reject(msg.topic, msg.payload.model_dump_json().encode(), reason, detail)

    # --- staff actions ---

    def restock(self, plate_id: str, sku: str, units: int, time_s: float) -> int:
        """Staff put ``units`` on a pile the scale did not report; returns the pile's units.

        A restock the plate's scale saw already arrived as a shelf put: calling
        this as well counts it twice (use ``count`` to set the figure instead).
        """
        check_event_time(time_s)
        if (plate_id, sku) not in self._entries:
            stocked = [e.sku for e in self.store.skus_on_plate(plate_id)]
            raise ValueError(
                f"plate {plate_id!r} does not stock {sku!r} (it stocks {stocked}); "
                "restock one of those"
            )
        if units < 1:
            raise ValueError(f"restock units must be at least 1, got {units}")
        with self._lock:
            self._advance(time_s)
            new, _ = self._stage([(plate_id, sku, False, units)])
            self._commit(new, staff=True)
            self.counts["restocks"] += 1
            return new[(plate_id, sku, False)]

    def count(self, plate_id: str, sku: str, units: int, time_s: float) -> int:
        """A cycle count: the pile holds ``units`` now (foreign units if the plate lacks it)."""
        check_event_time(time_s)
        if plate_id not in self._gondola or sku not in self.store.items:
            raise ValueError(
                f"count of {sku!r} on plate {plate_id!r}: unknown plate or SKU; "
                "check the store file's gondolas and catalog"
            )
        if units < 0:
            raise ValueError(f"counted units must be 0 or more, got {units}")
        with self._lock:
            self._advance(time_s)
            key = (plate_id, sku, (plate_id, sku) not in self._entries)
            if self._piles.get(key, 0) != units:
                self.counts["count_adjustments"] += 1
            self._commit({key: units}, staff=True)
            self.counts["counts"] += 1
            return units

    # --- online orders ---

    def reserve(
        self, order_id: str, lines: Mapping[str, int], time_s: float, expires_s: float
    ) -> Reservation:
        """Hold ``lines`` (SKU -> units) for an order until ``expires_s`` (event time).

        Raises ``ShortStockError`` naming each short SKU, ``OrderConflictError``
        if the order id exists with other lines, ValueError for bad input. A
        repeat of the same active order returns it unchanged.
        """
        self.reservations.check_request(order_id, lines, time_s, expires_s)
        with self._lock:
            self._advance(time_s)
            return self.reservations.reserve(order_id, lines, time_s, expires_s, atp=self._atp)

    def cancel(self, order_id: str, time_s: float) -> Reservation:
        """Release an active order's units; cancelling twice is harmless."""
        check_event_time(time_s)
        with self._lock:
            self._advance(time_s)
            return self.reservations.cancel(order_id, time_s)

    def start_picking(self, order_id: str, time_s: float) -> Reservation:
        """Staff are collecting the order: it no longer lapses at ``expires_s``."""
        check_event_time(time_s)
        with self._lock:
            self._advance(time_s)
            return self.reservations.start_picking(order_id, time_s)

    def claim_unattributed(self, sku: str, quantity: int, time_s: float) -> str | None:
        """The order being picked that explains a removal no shopper explains, or None.

        The whole ``quantity`` must fit one order's remaining units of ``sku``
        (earliest picking first); otherwise nothing is claimed and the removal
        stays unexplained for the shrink rules.
        """
        check_event_time(time_s)
        if quantity < 1:
            raise ValueError(f"claimed quantity must be at least 1, got {quantity}")
        with self._lock:
            self._advance(time_s)
            return self.reservations.claim(sku, quantity, time_s)

    # --- views ---

    def atp(self, sku: str) -> int:
        """Available to promise for ``sku``; KeyError for a SKU not in the catalog."""
        if sku not in self.store.items:
            raise KeyError(f"{sku!r} is not in the catalog")
        with self._lock:
            return self._atp(sku)

    def atp_all(self) -> dict[str, int]:
        with self._lock:
            return {sku: self._atp(sku) for sku in sorted(self.store.items)}

    def sku_stock(self) -> list[SkuStock]:
        with self._lock:
            return [
                SkuStock(
                    sku=sku,
                    on_shelf_units=self._on_shelf_units(sku),
                    foreign_units=sum(u for (_, s, f), u in self._piles.items() if f and s == sku),
                    reserved_units=self.reservations.reserved(sku),
                    atp_units=self._atp(sku),
                )
                for sku in sorted(self.store.items)
            ]

    def piles(self) -> list[PileStock]:
        """Home piles in planogram order, then foreign units by plate and SKU."""
        with self._lock:
            foreign = sorted(k for k, u in self._piles.items() if k[2] and u > 0)
            return [self._pile(k) for k in [*((p, s, False) for p, s in self._entries), *foreign]]

    def replenishment(self) -> dict[str, list[ReplenishmentLine]]:
        """Gondola id -> piles below par, out-of-stock first, then by fill fraction."""
        return replenishment_lines(self.piles(), self._limits)

    def alert_log(
        self,
        kind: str | None = None,
        state: Literal["raised", "cleared"] | None = None,
        limit: int | None = None,
    ) -> list[AlertEpisode]:
        """Alert episodes with raise and clear times, oldest first (``limit``: the newest n)."""
        with self._lock:
            return self.alerts.log(kind, state, limit)

    def reservation(self, order_id: str) -> Reservation | None:
        with self._lock:
            return self.reservations.get(order_id)

    # --- piles ---

    def _stage(self, changes: list[_Change]) -> tuple[dict[PileKey, int], list[_Change]]:
        """New pile figures for ``changes``, each held at 0 or above; nothing is written yet."""
        new: dict[PileKey, int] = {}
        applied: list[_Change] = []
        for plate_id, sku, foreign, delta in changes:
            key = (plate_id, sku, foreign)
            before = new.get(key, self._piles.get(key, 0))
            after = before + delta
            if after < 0:
                self.counts["units_below_zero"] += 1
                log.warning("%s on %s would fall to %d units; held at 0", sku, plate_id, after)
                after = 0
            new[key] = after
            applied.append((plate_id, sku, foreign, after - before))
        return new, applied

    def _commit(
        self, new: dict[PileKey, int], *, effect: _Effect | None = None, staff: bool = False
    ) -> None:
        """Write the figures (and the event's effect) in one transaction, then alert."""
        with self._tx() as c:
            c.executemany(
                _SAVE_PILE, [(p, s, int(f), u, self._time()) for (p, s, f), u in new.items()]
            )
            if effect is not None:
                c.execute(_SAVE_EFFECT, (effect.event_id, effect.time_s, effect.model_dump_json()))
        self._piles.update(new)  # only once the database holds it, so memory never runs ahead
        for plate_id, sku, foreign in new:
            if foreign:
                continue  # foreign units are staff's to take back, not a pile to alert on
            limits = self._limits[(plate_id, sku)]
            units, gondola_id = new[(plate_id, sku, False)], self._gondola[plate_id]
            for episode in self.alerts.update(
                plate_id, sku, gondola_id, units, limits, staff=staff, time_s=self._time()
            ):
                alert = episode.payload(self.service_id)
                publish(self.transport, self.store.store_id, alert)
                self.counts[f"alerts_{alert.state}"] += 1
                log.info("%s %s: %s", alert.alert_id, alert.state, alert.message)

    def _effect(self, event_id: str) -> _Effect | None:
        with self._db.writer() as c:
            row = c.execute(
                "SELECT payload FROM effects WHERE event_id = ?", (event_id,)
            ).fetchone()
        return _Effect.model_validate_json(row[0]) if row is not None else None

    def _pile(self, key: PileKey) -> PileStock:
        plate_id, sku, foreign = key
        entry = None if foreign else self._entries[(plate_id, sku)]
        return PileStock(
            gondola_id=self._gondola[plate_id],
            plate_id=plate_id,
            sku=sku,
            units=self._piles.get(key, 0),
            capacity_units=entry.capacity_units if entry is not None else None,
            foreign=foreign,
        )

    def _on_shelf_units(self, sku: str) -> int:
        return sum(u for (_, s, f), u in self._piles.items() if not f and s == sku)

    def _atp(self, sku: str) -> int:
        return max(0, self._on_shelf_units(sku) - self.reservations.reserved(sku))

    # --- the clock ---

    def _time(self) -> float:
        return max(self.clock_s, EPOCH_FLOOR_S)

    def _advance(self, now_s: float) -> None:
        """Event time has reached ``now_s``: lapse due orders and forget old shelf events."""
        self.clock_s = max(self.clock_s, now_s)
        self.reservations.expire_due(self.clock_s)
        if self.clock_s - self._last_prune_s >= _PRUNE_EVERY_S:
            self._last_prune_s = self.clock_s
            with self._tx() as c:
                c.execute(
                    "DELETE FROM effects WHERE time_s < ?",
                    (self.clock_s - self.settings.effect_retention_s,),
                )

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction: all of a change is written, or none of it."""
        with self._db.write_tx() as c:
            yield c
