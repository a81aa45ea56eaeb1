"""The cart ledger: append-only cart lines, sessions, receipts, shelf decisions.

A cart is a fold over its ledger lines; the primary key of a line is the
cart event id, inserted with ``ON CONFLICT DO NOTHING``, so applying an event
twice changes nothing and a restart rebuilds every open cart. The ledger
lives wherever its address says (:mod:`checkout.database`): an SQLite file
by default, in WAL mode with ``synchronous=NORMAL`` so readers (the HTTP
API) never block the writer (the brain), or PostgreSQL for a chain. Its
schema is a list of migrations: a ledger written by older code is brought up
to date when opened, rows kept.

>>> ledger = Ledger(":memory:")
>>> line = CartEvent(id="c1", event_time_s=1e9, device_id="brain", session_id="s-t",
...                  sku="SKU001", quantity_delta=2, confidence=0.9, source_event_id="e1")
>>> ledger.append(line), ledger.append(line), ledger.cart("s-t")
(True, False, {'SKU001': 2})
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from checkout.database import Migration, insert_ignore, open_database, upsert
from iot.payloads import CartEvent, Receipt

__all__ = ["MIGRATIONS", "Ledger", "SessionRecord", "ShelfDecision"]

MIGRATIONS = (
    Migration(
        1,
        "cart lines, sessions, receipts, shelf decisions, foreign units on plates",
        """
CREATE TABLE IF NOT EXISTS cart_events (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity_delta INTEGER NOT NULL,
    confidence REAL NOT NULL,
    source_event_id TEXT NOT NULL,
    event_time_s REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cart_events_session ON cart_events (session_id);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    has_receipt INTEGER NOT NULL,
    entered_s REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE,
    event_time_s REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shelf_decisions (
    event_id TEXT PRIMARY KEY,
    session_id TEXT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_time_s REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plate_foreign (
    plate_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    units INTEGER NOT NULL,
    PRIMARY KEY (plate_id, sku)
)
""",
    ),
    Migration(
        2,
        "index the reads a restart and the receipts make: lines in time order, unreceipted visits",
        """
CREATE INDEX IF NOT EXISTS cart_events_session_time
    ON cart_events (session_id, event_time_s, id);
DROP INDEX IF EXISTS cart_events_session;
CREATE INDEX IF NOT EXISTS sessions_unreceipted ON sessions (has_receipt, entered_s);
CREATE INDEX IF NOT EXISTS receipts_time ON receipts (event_time_s, id)
""",
    ),
    Migration(
        3,
        "crash safety: the brain's input journal (written before a message is acknowledged, "
        "replayed after a crash) and its outbox (what it published, until the broker has it)",
        """
CREATE TABLE IF NOT EXISTS brain_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    event_time_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS brain_journal_time ON brain_journal (event_time_s);
CREATE TABLE IF NOT EXISTS brain_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL
)
""",
    ),
)

_CART_COLUMNS = (
    "id", "session_id", "sku", "quantity_delta", "confidence", "source_event_id",
    "event_time_s", "payload",
)  # fmt: skip
_APPEND = insert_ignore("cart_events", _CART_COLUMNS)
_SAVE_SESSION = upsert(
    "sessions",
    ("session_id", "state", "has_receipt", "entered_s", "payload"),
    key=("session_id",),
)
_SAVE_RECEIPT = insert_ignore("receipts", ("id", "session_id", "event_time_s", "payload"))
_DECIDE = insert_ignore(
    "shelf_decisions",
    ("event_id", "session_id", "outcome", "reason", "event_time_s", "payload"),
)
_LONGEST_VISIT_S = 6 * 3600.0  # how far back a receipted visit's entry is looked for
_JOURNAL = "INSERT INTO brain_journal (topic, payload, event_time_s) VALUES (?, ?, ?)"
_SET_FOREIGN = upsert("plate_foreign", ("plate_id", "sku", "units"), key=("plate_id", "sku"))


class SessionRecord(BaseModel):
    """One visit as the ledger keeps it."""

    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(description="Derived from the scan-in token.")
    token: str = Field(description="Scan-in token.")
    state: Literal["open", "bound", "closed"] = Field(
        description="open: no track yet; bound; closed."
    )
    entered_s: float = Field(description="Scan-in event time, Unix seconds.")
    entry_event_id: str = Field(description="Id of the GateEntry that opened it.")
    track_id: str | None = Field(default=None, description="Track bound to the visit.")
    exited_s: float | None = Field(default=None, description="Exit event time, Unix seconds.")
    exit_event_id: str | None = Field(
        default=None, description="Id of the GateExit that closed it."
    )
    receipt_id: str | None = Field(default=None, description="Receipt issued for the visit.")
    review_reasons: list[str] = Field(
        default_factory=list, description="Why the visit needs review, beyond its cart lines."
    )


class ShelfDecision(BaseModel):
    """What the brain decided about one shelf event."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    session_id: str | None
    outcome: Literal["cart", "unattributed", "unexplained", "late"]
    reason: str
    event_time_s: float
    payload: str = Field(default="", description="The shelf event as JSON, for review.")


class Ledger:
    """The brain's store of record at ``path``: an SQLite file (``":memory:"`` for tests)
    or a ``postgresql://`` URL (see :func:`checkout.database.open_database`)."""

    def __init__(self, path: str | Path) -> None:
        self._file = open_database(
            path,
            "ledger",
            MIGRATIONS,
            closed_message=lambda use: (
                f"ledger {self.path} is closed; open a new Ledger to {use} it"
            ),
        )
        self.path = self._file.path

    # --- cart lines ---

    def append(self, event: CartEvent) -> bool:
        """Append a cart line; False if a line with this id is already there (nothing changes)."""
        with self._file.writer() as c:
            cur = c.execute(
                _APPEND,
                (
                    event.id,
                    event.session_id,
                    event.sku,
                    event.quantity_delta,
                    event.confidence,
                    event.source_event_id,
                    event.event_time_s,
                    event.model_dump_json(),
                ),
            )
            return cur.rowcount == 1

    def cart(self, session_id: str) -> dict[str, int]:
        """SKU -> units held: the fold of the session's lines (SKUs netted to zero left out)."""
        with self._file.reader() as c:
            rows = c.execute(
                "SELECT sku, SUM(quantity_delta) AS n FROM cart_events WHERE session_id = ? "
                "GROUP BY sku ORDER BY sku",
                (session_id,),
            ).fetchall()
        return {r["sku"]: int(r["n"]) for r in rows if r["n"] != 0}

    def cart_events(self, session_id: str) -> list[CartEvent]:
        """The session's ledger lines, in event-time order."""
        with self._file.reader() as c:
            rows = c.execute(
                "SELECT payload FROM cart_events WHERE session_id = ? ORDER BY event_time_s, id",
                (session_id,),
            ).fetchall()
        return [CartEvent.model_validate_json(r["payload"]) for r in rows]

    # --- sessions ---

    def save_session(self, record: SessionRecord) -> None:
        """Insert or replace the session's record."""
        with self._file.writer() as c:
            c.execute(
                _SAVE_SESSION,
                (
                    record.session_id,
                    record.state,
                    int(record.receipt_id is not None),
                    record.entered_s,
                    record.model_dump_json(),
                ),
            )

    def session(self, session_id: str) -> SessionRecord | None:
        with self._file.reader() as c:
            row = c.execute(
                "SELECT payload FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return SessionRecord.model_validate_json(row["payload"]) if row else None

    def sessions(self, state: Literal["open", "closed"] | None = None) -> list[SessionRecord]:
        """All sessions by entry time; ``open`` = not yet closed (open or bound)."""
        where = {"open": "WHERE state != 'closed'", "closed": "WHERE state = 'closed'", None: ""}[
            state
        ]
        with self._file.reader() as c:
            rows = c.execute(f"SELECT payload FROM sessions {where} ORDER BY entered_s, session_id")
            return [SessionRecord.model_validate_json(r["payload"]) for r in rows.fetchall()]

    def open_sessions(self) -> list[SessionRecord]:
        """Sessions not yet closed by an exit."""
        return self.sessions("open")

    def unreceipted_sessions(self) -> list[SessionRecord]:
        """Sessions the brain still has work for: open, or closed but without a receipt."""
        with self._file.reader() as c:
            rows = c.execute(
                "SELECT payload FROM sessions WHERE has_receipt = 0 ORDER BY entered_s, session_id"
            ).fetchall()
        return [SessionRecord.model_validate_json(r["payload"]) for r in rows]

    # --- receipts ---

    def save_receipt(self, receipt: Receipt) -> bool:
        """Store a receipt; False (nothing changes) if its id or session already has one."""
        with self._file.writer() as c:
            cur = c.execute(
                _SAVE_RECEIPT,
                (receipt.id, receipt.session_id, receipt.event_time_s, receipt.model_dump_json()),
            )
            return cur.rowcount == 1

    def receipts(self) -> list[Receipt]:
        with self._file.reader() as c:
            rows = c.execute("SELECT payload FROM receipts ORDER BY event_time_s, id").fetchall()
        return [Receipt.model_validate_json(r["payload"]) for r in rows]

    def receipt(self, receipt_id: str) -> Receipt | None:
        with self._file.reader() as c:
            row = c.execute("SELECT payload FROM receipts WHERE id = ?", (receipt_id,)).fetchone()
        return Receipt.model_validate_json(row["payload"]) if row else None

    # --- shelf decisions and plate memory ---

    def record_decision(self, decision: ShelfDecision) -> bool:
        """Remember what was decided about a shelf event; False if it was decided before."""
        with self._file.writer() as c:
            cur = c.execute(
                _DECIDE,
                (
                    decision.event_id,
                    decision.session_id,
                    decision.outcome,
                    decision.reason,
                    decision.event_time_s,
                    decision.payload,
                ),
            )
            return cur.rowcount == 1

    def decided(self, event_id: str) -> bool:
        with self._file.reader() as c:
            row = c.execute(
                "SELECT 1 FROM shelf_decisions WHERE event_id = ?", (event_id,)
            ).fetchone()
        return row is not None

    def decisions(self, outcome: str | None = None) -> list[ShelfDecision]:
        """Shelf decisions by event time, optionally of one outcome (e.g. ``unattributed``)."""
        sql = "SELECT * FROM shelf_decisions"
        args: tuple[str, ...] = ()
        if outcome is not None:
            sql, args = sql + " WHERE outcome = ?", (outcome,)
        with self._file.reader() as c:
            rows = c.execute(sql + " ORDER BY event_time_s, event_id", args).fetchall()
        return [ShelfDecision(**dict(r)) for r in rows]

    def unattributed(self) -> list[ShelfDecision]:
        return self.decisions("unattributed")

    def set_plate_foreign(self, plate_id: str, sku: str, units: int) -> None:
        """Foreign units of ``sku`` lying on ``plate_id`` (left there by wrong-plate put-backs)."""
        with self._file.writer() as c:
            if units > 0:
                c.execute(_SET_FOREIGN, (plate_id, sku, units))
            else:
                c.execute(
                    "DELETE FROM plate_foreign WHERE plate_id = ? AND sku = ?", (plate_id, sku)
                )

    def plate_foreign(self) -> dict[str, dict[str, int]]:
        with self._file.reader() as c:
            rows = c.execute("SELECT plate_id, sku, units FROM plate_foreign").fetchall()
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["plate_id"], {})[r["sku"]] = int(r["units"])
        return out

    # --- the input journal (written ahead of the bus acknowledgement) ---

    def journal(self, topic: str, payload: bytes, event_time_s: float) -> bool:
        """Keep one received message, in arrival order, before it is acknowledged.

        False (nothing kept) for a payload no engine stores as text (not UTF-8, or a
        NUL character): the brain's inbox refuses such a message anyway.
        """
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if "\x00" in text or "\x00" in topic:
            return False
        time_s = event_time_s if math.isfinite(event_time_s) else 0.0
        with self._file.writer() as c:
            c.execute(_JOURNAL, (topic, text, time_s))
        return True

    def journal_rows(self) -> list[tuple[int, str, bytes]]:
        """Every journaled message still kept, in arrival order: ``(seq, topic, payload)``."""
        with self._file.reader() as c:
            rows = c.execute(
                "SELECT seq, topic, payload FROM brain_journal ORDER BY seq"
            ).fetchall()
        return [(int(r["seq"]), r["topic"], r["payload"].encode("utf-8")) for r in rows]

    def prune_journal(self, before_s: float) -> int:
        """Forget journaled messages stamped before ``before_s``; returns how many went."""
        with self._file.writer() as c:
            return int(
                c.execute("DELETE FROM brain_journal WHERE event_time_s < ?", (before_s,)).rowcount
            )

    def journal_latest_s(self) -> float | None:
        """The newest event time among the journaled messages (how far the input has come)."""
        with self._file.reader() as c:
            row = c.execute("SELECT MAX(event_time_s) AS t FROM brain_journal").fetchone()
        return float(row["t"]) if row and row["t"] is not None else None

    # --- the outbox (published, not yet acknowledged by the broker) ---

    def outbox_add(self, topic: str, payload: bytes) -> int:
        """Keep a message about to be published; returns its number for ``outbox_done``."""
        with self._file.writer() as c:
            # fetchall: the RETURNING statement must run to its end (PostgreSQL)
            (row,) = c.execute(
                "INSERT INTO brain_outbox (topic, payload) VALUES (?, ?) RETURNING seq",
                (topic, payload.decode("utf-8")),
            ).fetchall()
        return int(row[0])

    def outbox_done(self, seqs: list[int]) -> None:
        """The broker acknowledged these messages: forget them."""
        if not seqs:
            return
        with self._file.writer() as c:
            c.executemany("DELETE FROM brain_outbox WHERE seq = ?", [(q,) for q in seqs])

    def outbox_rows(self) -> list[tuple[int, str, bytes]]:
        """Published messages the broker has not acknowledged, in publication order."""
        with self._file.reader() as c:
            rows = c.execute("SELECT seq, topic, payload FROM brain_outbox ORDER BY seq").fetchall()
        return [(int(r["seq"]), r["topic"], r["payload"].encode("utf-8")) for r in rows]

    def receipted_sessions(self, exited_since_s: float) -> list[SessionRecord]:
        """Receipted visits that left at or after ``exited_since_s`` (a brain keeps those)."""
        with self._file.reader() as c:
            rows = c.execute(
                "SELECT payload FROM sessions WHERE has_receipt = 1 AND entered_s >= ? "
                "ORDER BY entered_s, session_id",
                (exited_since_s - _LONGEST_VISIT_S,),
            ).fetchall()
        records = [SessionRecord.model_validate_json(r["payload"]) for r in rows]
        return [r for r in records if r.exited_s is not None and r.exited_s >= exited_since_s]

    def latest_time_s(self) -> float | None:
        """The newest event time the ledger knows of (to restart the brain's clock)."""
        with self._file.reader() as c:
            row = c.execute(
                "SELECT MAX(t) AS t FROM (SELECT MAX(event_time_s) AS t FROM cart_events "
                "UNION ALL SELECT MAX(event_time_s) FROM shelf_decisions "
                "UNION ALL SELECT MAX(event_time_s) FROM receipts) AS latest"
            ).fetchone()
        return float(row["t"]) if row and row["t"] is not None else None

    def close(self) -> None:
        """Close every connection this ledger opened (idempotent)."""
        self._file.close()
