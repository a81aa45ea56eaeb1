"""Stock alerts with hysteresis, replenishment, and the settings and views of the inventory.

A *pile* is the units of one SKU on one plate (a plate shared by several SKUs
has one pile per SKU). ``low_stock`` is raised when a pile falls to its low
threshold and ``stockout`` when it reaches 0; each is cleared only once the
pile climbs a margin *above* its threshold. Without that margin a shopper who
takes the last unit, puts it back and takes it again would raise and clear
the same alert on every move, and staff would learn to ignore the feed.
Staff actions (a restock or a cycle count) are trusted: they clear an alert
as soon as the pile is above the threshold itself.

Every episode has a deterministic id, ``<kind>.<plate>.<sku>.<n>`` (the n-th
episode of that kind on that pile), shared by its raise and its clear, so a
replay of the same events gives the same ids. The alert book in SQLite is
the store of record: open episodes survive a restart and are cleared, not
raised again. The replenishment list and the stock views (piles, SKUs)
read the same thresholds, so they live here too; ``checkout.inventory`` owns
the units themselves.

>>> th = thresholds(24, InventorySettings())
>>> th.low_units, th.low_clear_units, th.stockout_clear_units, th.par_units
(4, 7, 3, 12)
>>> opened: set[str] = set()
>>> for units in (0, 1, 0, 1, 0, 3):  # a last unit put back and taken again, then a restock
...     raised, cleared = alert_changes(frozenset(opened), units, th)
...     opened = (opened | set(raised)) - set(cleared)
...     print(units, raised, cleared)
0 ['stockout', 'low_stock'] []
1 [] []
0 [] []
1 [] []
0 [] []
3 [] ['stockout']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from checkout.database import Database, Migration
from checkout.ids import derived_id
from iot.payloads import Alert

__all__ = [
    "MIGRATIONS",
    "STOCK_ALERT_KINDS",
    "AlertBook",
    "AlertEpisode",
    "InventorySettings",
    "PileStock",
    "PileThresholds",
    "ReplenishmentLine",
    "SkuStock",
    "StockAlertKind",
    "alert_changes",
    "replenishment_lines",
    "thresholds",
]

StockAlertKind = Literal["stockout", "low_stock"]
# Stock-outs first: when one move triggers both, the more urgent alert goes out first.
STOCK_ALERT_KINDS: tuple[StockAlertKind, ...] = ("stockout", "low_stock")
_EPS = 1e-9  # keeps 30 * 0.1 == 3.0000000000000004 from rounding up to 4


class InventorySettings(BaseModel):
    """Tuning of inventory, stock alerts and reservations. Checked once, at construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low_stock_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="A pile is low when its units are at or below this share of its capacity "
        "(rounded down, at least 1 unit and below capacity).",
    )
    clear_margin_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="An alert raised by shoppers' moves clears only once the pile is this share "
        "of its capacity (rounded up) above the alert's threshold.",
    )
    min_clear_margin_units: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="The clear margin is at least this many units, so one put-back after a "
        "stock-out never clears it.",
    )
    par_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="A pile is on the replenishment list while below this share of capacity.",
    )
    effect_retention_s: float = Field(
        default=86_400.0,
        gt=0,
        le=30 * 86_400.0,
        description="Shelf events are remembered this long (event time) so that a cart event "
        "can correct them and a repeat is recognised; older shelf events are refused.",
    )
    max_future_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Once the service has been ticked, an event stamped more than this far "
        "ahead of the tick is refused: a device clock running ahead must not expire "
        "reservations early.",
    )
    picking_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86_400.0,
        description="A reservation being picked lapses this long after picking started "
        "(staff abandoned it); a held one lapses at its own expiry time.",
    )
    default_hold_s: float = Field(
        default=1800.0,
        gt=0,
        le=7 * 86_400.0,
        description="How long the HTTP API holds a reservation when the order gives no hold_s.",
    )


@dataclass(frozen=True)
class PileThresholds:
    """The unit thresholds of one pile, derived from its capacity."""

    capacity_units: int
    low_units: int  # low_stock raised at or below
    low_clear_units: int  # low_stock cleared at or above (shoppers' moves)
    stockout_clear_units: int  # stockout cleared at or above (shoppers' moves)
    par_units: int  # replenish while below

    def threshold_units(self, kind: StockAlertKind) -> int:
        return 0 if kind == "stockout" else self.low_units


def thresholds(capacity_units: int, settings: InventorySettings) -> PileThresholds:
    """Thresholds of a pile of ``capacity_units``; clear levels never exceed capacity.

    >>> thresholds(1, InventorySettings())
    PileThresholds(capacity_units=1, low_units=0, low_clear_units=1, stockout_clear_units=1, \
par_units=1)
    """
    if capacity_units < 1:
        raise ValueError(f"capacity_units must be at least 1, got {capacity_units}")
    cap = capacity_units
    low = min(max(1, math.floor(cap * settings.low_stock_fraction + _EPS)), cap - 1)
    margin = max(
        settings.min_clear_margin_units, math.ceil(cap * settings.clear_margin_fraction - _EPS)
    )
    par = min(cap, max(low + 1, math.ceil(cap * settings.par_fraction - _EPS)))
    return PileThresholds(
        capacity_units=cap,
        low_units=low,
        low_clear_units=min(cap, low + margin),
        stockout_clear_units=min(cap, margin),
        par_units=par,
    )


def alert_changes(
    open_kinds: frozenset[str], units: int, th: PileThresholds, *, staff: bool = False
) -> tuple[list[StockAlertKind], list[StockAlertKind]]:
    """Which alerts to raise and which to clear for a pile now at ``units``.

    ``staff``: the figure comes from a restock or a count, which clears an
    alert as soon as the pile is above its threshold (no margin).
    """
    raised: list[StockAlertKind] = []
    cleared: list[StockAlertKind] = []
    for kind in STOCK_ALERT_KINDS:
        raise_at = th.threshold_units(kind)
        if kind in open_kinds:
            clear_at = raise_at + 1 if staff else _clear_units(kind, th)
            if units >= clear_at:
                cleared.append(kind)
        elif units <= raise_at:
            raised.append(kind)
    return raised, cleared


def _clear_units(kind: StockAlertKind, th: PileThresholds) -> int:
    return th.stockout_clear_units if kind == "stockout" else th.low_clear_units


class AlertEpisode(BaseModel):
    """One stock alert from its raise to its clear (``cleared_s`` None while open)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: str = Field(description="Stable id shared by the raise and the clear.")
    kind: StockAlertKind
    plate_id: str
    sku: str
    gondola_id: str
    threshold_units: int = Field(description="Raised at or below this many units.")
    raised_s: float = Field(description="Event time of the raise, Unix seconds.")
    units_at_raise: int
    cleared_s: float | None = Field(default=None, description="Event time of the clear.")
    units_at_clear: int | None = None

    @property
    def is_open(self) -> bool:
        return self.cleared_s is None

    def payload(self, device_id: str) -> Alert:
        """The bus message of this episode's latest state (raise, or clear once cleared)."""
        state: Literal["raised", "cleared"] = "raised" if self.is_open else "cleared"
        units = self.units_at_raise if self.is_open else self.units_at_clear
        what = "out of stock" if self.kind == "stockout" else "low on stock"
        message = (
            f"{self.sku} on plate {self.plate_id} is {what}: {units} units left"
            if self.is_open
            else f"{self.sku} on plate {self.plate_id} is back to {units} units"
        )
        return Alert(
            id=derived_id(f"{state}.", self.alert_id),
            event_time_s=self.raised_s if self.is_open else (self.cleared_s or self.raised_s),
            device_id=device_id,
            alert_id=self.alert_id,
            kind=self.kind,
            state=state,
            plate_id=self.plate_id,
            sku=self.sku,
            gondola_id=self.gondola_id,
            units=units,
            threshold_units=self.threshold_units,
            message=message,
        )


class PileStock(BaseModel):
    """Units of one SKU on one plate: a home pile, or foreign units left on the wrong plate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gondola_id: str
    plate_id: str
    sku: str
    units: int = Field(ge=0, description="Units on the plate now.")
    capacity_units: int | None = Field(
        description="Units the plate holds when full; None for foreign units."
    )
    foreign: bool = Field(description="The plate does not stock this SKU (a wrong put-back).")


class SkuStock(BaseModel):
    """One SKU across the store's shelves, and what the online channel may still promise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    on_shelf_units: int = Field(description="Units on the plates that stock the SKU.")
    foreign_units: int = Field(description="Units left on plates that do not stock it.")
    reserved_units: int = Field(description="Units active reservations still hold.")
    atp_units: int = Field(ge=0, description="Available to promise: on shelf less reserved.")


class ReplenishmentLine(BaseModel):
    """A pile below par, with the units that fill it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gondola_id: str
    plate_id: str
    sku: str
    units: int = Field(ge=0, description="Units on the plate now.")
    capacity_units: int
    par_units: int = Field(description="Listed while below this many units.")
    fill_units: int = Field(ge=0, description="Units to bring: capacity less units.")
    fill_fraction: float = Field(description="units / capacity, 0 when empty.")
    out_of_stock: bool


def replenishment_lines(
    piles: Iterable[PileStock], limits: Mapping[tuple[str, str], PileThresholds]
) -> dict[str, list[ReplenishmentLine]]:
    """Gondola id -> its home piles below par: empty ones first, then emptiest, then by id.

    Gondolas with nothing to fill are left out.
    """
    out: dict[str, list[ReplenishmentLine]] = {}
    for pile in piles:
        th = limits.get((pile.plate_id, pile.sku))
        if pile.foreign or th is None or pile.units >= th.par_units:
            continue
        out.setdefault(pile.gondola_id, []).append(
            ReplenishmentLine(
                gondola_id=pile.gondola_id,
                plate_id=pile.plate_id,
                sku=pile.sku,
                units=pile.units,
                capacity_units=th.capacity_units,
                par_units=th.par_units,
                fill_units=max(0, th.capacity_units - pile.units),
                fill_fraction=round(pile.units / th.capacity_units, 4),
                out_of_stock=pile.units == 0,
            )
        )
    for lines in out.values():
        lines.sort(key=lambda r: (not r.out_of_stock, r.fill_fraction, r.plate_id, r.sku))
    return dict(sorted(out.items()))


_V1 = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    plate_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    raised_s REAL NOT NULL,
    cleared_s REAL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_pile ON alerts (kind, plate_id, sku);
"""
MIGRATIONS = (Migration(1, "stock alert episodes", _V1),)


class AlertBook:
    """Alert episodes in the database, and the open ones in memory; the caller serialises access.

    ``db`` is the inventory's (:mod:`checkout.database`); the book adds its table to it.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        db.migrate("stock_alerts", MIGRATIONS)
        with db.writer() as c:
            rows = c.execute("SELECT payload FROM alerts WHERE cleared_s IS NULL").fetchall()
        episodes = (AlertEpisode.model_validate_json(r[0]) for r in rows)
        self.open = {(e.kind, e.plate_id, e.sku): e for e in episodes}

    def update(
        self,
        plate_id: str,
        sku: str,
        gondola_id: str,
        units: int,
        limits: PileThresholds,
        *,
        staff: bool,
        time_s: float,
    ) -> list[AlertEpisode]:
        """Raise and clear the pile's alerts for ``units``; returns the episodes that changed."""
        open_kinds = frozenset(k for k in STOCK_ALERT_KINDS if (k, plate_id, sku) in self.open)
        raised, cleared = alert_changes(open_kinds, units, limits, staff=staff)
        changed = []
        for kind in raised:
            episode = self._raise(
                kind,
                plate_id,
                sku,
                gondola_id=gondola_id,
                limits=limits,
                units=units,
                time_s=time_s,
            )
            self.open[(kind, plate_id, sku)] = episode
            changed.append(episode)
        for kind in cleared:
            episode = self.open.pop((kind, plate_id, sku))
            changed.append(self._clear(episode, units, time_s))
        return changed

    def _raise(
        self,
        kind: StockAlertKind,
        plate_id: str,
        sku: str,
        *,
        gondola_id: str,
        limits: PileThresholds,
        units: int,
        time_s: float,
    ) -> AlertEpisode:
        with self._db.writer() as c:
            row = c.execute(
                "SELECT COALESCE(MAX(ordinal), 0) FROM alerts WHERE kind = ? AND plate_id = ? "
                "AND sku = ?",
                (kind, plate_id, sku),
            ).fetchone()
        ordinal = int(row[0]) + 1  # the n-th episode on this pile: stable under replay
        episode = AlertEpisode(
            alert_id=derived_id(f"{kind}.", f"{plate_id}.{sku}.{ordinal}"),
            kind=kind,
            plate_id=plate_id,
            sku=sku,
            gondola_id=gondola_id,
            threshold_units=limits.threshold_units(kind),
            raised_s=time_s,
            units_at_raise=units,
        )
        with self._db.writer() as c:
            c.execute(
                "INSERT INTO alerts (alert_id, kind, plate_id, sku, ordinal, raised_s, cleared_s, "
                "payload) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                (episode.alert_id, kind, plate_id, sku, ordinal, time_s, episode.model_dump_json()),
            )
        return episode

    def _clear(self, episode: AlertEpisode, units: int, time_s: float) -> AlertEpisode:
        done = episode.model_copy(
            update={"cleared_s": max(time_s, episode.raised_s), "units_at_clear": units}
        )
        with self._db.writer() as c:
            c.execute(
                "UPDATE alerts SET cleared_s = ?, payload = ? WHERE alert_id = ?",
                (done.cleared_s, done.model_dump_json(), done.alert_id),
            )
        return done

    def latest_time_s(self) -> float | None:
        """The newest raise or clear time on file (to restart the service's clock)."""
        with self._db.writer() as c:
            row = c.execute("SELECT MAX(COALESCE(cleared_s, raised_s)) FROM alerts").fetchone()
        return float(row[0]) if row[0] is not None else None

    def log(
        self,
        kind: str | None = None,
        state: Literal["raised", "cleared"] | None = None,
        limit: int | None = None,
    ) -> list[AlertEpisode]:
        """Episodes oldest first (``limit``: only the newest n); ``state`` raised = still open."""
        where, args = [], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if state is not None:
            where.append("cleared_s IS NULL" if state == "raised" else "cleared_s IS NOT NULL")
        sql = "SELECT payload FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY raised_s DESC, alert_id DESC"
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        with self._db.writer() as c:
            rows = c.execute(sql, args).fetchall()
        return [AlertEpisode.model_validate_json(r[0]) for r in reversed(rows)]
