"""Loss-prevention case records and the SQLite file that keeps them.

The case book (:mod:`checkout.cases`) decides what happens to a case; this
module only defines the validated types a case is made of and keeps them. A
case is one row of ``cases`` (queue columns plus the record as JSON) with its
subject keys, source event ids, evidence items and history in side tables, so
the queue reads no evidence and the privacy purge deletes rows instead of
rewriting JSON. The file is opened by :func:`checkout.database.open_database`,
as the ledger's is (an SQLite file, or PostgreSQL): one writer connection
behind a lock, reading connections for other threads. Every write is one
exclusive transaction, so a read-modify-write of a case is atomic.

>>> f = Finding(store_id="demo", rule="tailgating", category="theft", incident_s=1.8e9,
...             confidence=0.7, summary="two people passed on one scan-in",
...             session_id="s-1", track_ids=["t9", "t2"], source_event_ids=["gx-1"])
>>> sorted(subject_keys(f)), f.track_ids
(['session:s-1', 'track:t2', 'track:t9'], ['t2', 't9'])
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from checkout.database import Connection, Migration, insert_ignore, open_database, upsert
from iot.payloads import CaseRule, CaseState, Confidence, EventTime, FloorCoord, Id

__all__ = [
    "MIGRATIONS",
    "CaseCategory",
    "CaseDb",
    "CaseRecord",
    "CaseSummary",
    "CaseTx",
    "Evidence",
    "Finding",
    "HistoryEntry",
    "Note",
    "Reviewer",
    "SnapshotRef",
    "Summary",
    "TimelineEntry",
    "TrackSnippet",
    "subject_keys",
]

CaseCategory = Literal["theft", "operations", "dispute"]

# Most evidence one case keeps of each kind; beyond it items are counted, not kept,
# so a case that absorbs findings for an hour cannot grow without bound.
_CAPS = {"timeline": 200, "track": 20, "snapshot": 50}
_FINDING_CAPS = {"timeline": 50, "track": 10, "snapshot": 20}  # what one finding may bring


def _plain(value: str) -> str:
    """Refuse control characters (other than newline and tab) in free text."""
    bad = [c for c in value if c not in "\n\t" and unicodedata.category(c).startswith("C")]
    if bad:
        raise ValueError(f"text holds control character {bad[0]!r}; send plain text")
    return value


def _safe_path(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError(f"image path {value!r} climbs out with '..'; give the path as written")
    return value


# Free text is stripped before its length is checked, so "   " is an empty summary.
Summary = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
    AfterValidator(_plain),
]
Note = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_plain)
]
# Staff handles (letters, digits, . _ @ -), never free names: they end up in logs and URLs.
Reviewer = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
Kind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
EpcHex = Annotated[str, Field(pattern=r"^[0-9A-F]{16,64}$")]
ImagePath = Annotated[
    str,
    Field(min_length=1, max_length=300, pattern=r"^[A-Za-z0-9._/-]+$"),
    AfterValidator(_safe_path),
]
Cents = Annotated[int, Field(ge=0, le=100_000_000)]
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TimelineEntry(BaseModel):
    """One line of what happened, pointing at the bus event it came from."""

    model_config = _STRICT

    time_s: EventTime = Field(description="Event time of the line, Unix seconds.")
    source_event_id: Id = Field(description="The bus event (or receipt) the line is read from.")
    kind: Kind = Field(description="What sort of line, e.g. shelf_pick, tag_passage, exit.")
    text: Note = Field(description="What happened, for the reviewer.")


class TrackSnippet(BaseModel):
    """Floor foot-points of one person track around the incident (no images, no faces)."""

    model_config = _STRICT

    track_id: Id
    points: list[tuple[EventTime, FloorCoord, FloorCoord]] = Field(
        min_length=1, max_length=600, description="(time_s, x_m, y_m), oldest first."
    )

    @model_validator(mode="after")
    def _in_time_order(self) -> Self:
        times = [p[0] for p in self.points]
        if times != sorted(times):
            raise ValueError(f"track {self.track_id} snippet points are not oldest first")
        return self


class SnapshotRef(BaseModel):
    """Where a camera frame of the incident was stored (written and blurred elsewhere)."""

    model_config = _STRICT

    camera_id: Id
    time_s: EventTime
    image_path: ImagePath = Field(description="Path of the already-blurred image file.")


class Evidence(BaseModel):
    """Evidence items; a case keeps its findings' items in arrival order, up to the caps."""

    model_config = _STRICT

    timeline: list[TimelineEntry] = Field(default_factory=list, max_length=_CAPS["timeline"])
    tracks: list[TrackSnippet] = Field(default_factory=list, max_length=_CAPS["track"])
    snapshots: list[SnapshotRef] = Field(default_factory=list, max_length=_CAPS["snapshot"])


class Finding(BaseModel):
    """What a shrink rule (or a shopper's dispute) reports to the case book."""

    model_config = _STRICT

    store_id: Id
    rule: CaseRule
    category: CaseCategory
    incident_s: EventTime = Field(description="When the incident happened, event time.")
    detected_s: EventTime | None = Field(
        default=None,
        description="Event time the rule fired (time to alert); defaults to incident_s.",
    )
    confidence: Confidence
    summary: Summary
    session_id: Id | None = None
    track_ids: list[Id] = Field(default_factory=list, max_length=50)
    epc_hex: EpcHex | None = None
    plate_id: Id | None = None
    sku: Id | None = None
    amount_cents: Cents = Field(default=0, description="Value at risk, in cents.")
    source_event_ids: list[Id] = Field(
        min_length=1, max_length=100, description="Bus events the finding is read from."
    )
    evidence: Evidence = Field(default_factory=Evidence)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not (self.session_id or self.track_ids or self.epc_hex or self.plate_id):
            raise ValueError(
                f"{self.rule} finding names no subject: give session_id, track_ids, "
                "epc_hex or plate_id"
            )
        if (self.rule == "dispute") != (self.category == "dispute"):
            raise ValueError(
                f"rule {self.rule!r} with category {self.category!r}: the rule 'dispute' "
                "and the category 'dispute' go together and only together"
            )
        ev = self.evidence
        sizes = {"timeline": len(ev.timeline), "track": len(ev.tracks)}
        sizes["snapshot"] = len(ev.snapshots)
        if any(n > _FINDING_CAPS[k] for k, n in sizes.items()):
            raise ValueError(
                f"evidence {sizes} exceeds what one finding may bring: {_FINDING_CAPS}"
            )
        if self.detected_s is not None and self.detected_s < self.incident_s:
            raise ValueError(f"detected_s {self.detected_s} is before incident_s {self.incident_s}")
        # Normal form: sets as sorted unique lists, so equal findings compare equal.
        object.__setattr__(self, "track_ids", sorted(set(self.track_ids)))
        object.__setattr__(self, "source_event_ids", sorted(set(self.source_event_ids)))
        return self


def subject_keys(finding: Finding) -> set[str]:
    """Keys two findings about the same subject share (a plate counts only within a rule)."""
    keys = {f"track:{t}" for t in finding.track_ids}
    if finding.session_id:
        keys.add(f"session:{finding.session_id}")
    if finding.epc_hex:
        keys.add(f"epc:{finding.epc_hex}")
    if finding.plate_id:
        keys.add(f"plate:{finding.rule}:{finding.plate_id}")
    return keys


class HistoryEntry(BaseModel):
    """One thing that happened to a case, in the order it was recorded."""

    model_config = _STRICT

    time_s: EventTime
    action: Literal[
        "opened", "merged", "transition", "note", "assigned", "evidence", "evidence_purged"
    ]
    reviewer: Reviewer | None = None
    from_state: CaseState | None = None
    to_state: CaseState | None = None
    note: Note = ""


class CaseSummary(BaseModel):
    """A case as the review queue lists it."""

    model_config = _STRICT

    case_id: Id
    store_id: Id
    rule: CaseRule
    category: CaseCategory
    state: CaseState
    incident_s: EventTime
    confidence: Confidence
    amount_cents: Cents
    updated_s: EventTime
    summary: Summary
    session_id: Id | None = None
    assignee: Reviewer | None = None
    revision: int = Field(ge=1)


class CaseRecord(BaseModel):
    """A whole case. ``evidence``, ``history`` and ``source_event_ids`` live in side tables."""

    model_config = _STRICT

    case_id: Id
    store_id: Id
    rule: CaseRule = Field(description="Rule of the finding that opened the case.")
    related_rules: list[CaseRule] = Field(
        default_factory=list, description="Other rules whose findings joined the case."
    )
    category: CaseCategory
    state: CaseState = "new"
    incident_s: EventTime = Field(description="Earliest incident time of its findings.")
    last_incident_s: EventTime = Field(description="Latest incident time of its findings.")
    opened_s: EventTime = Field(description="Event time the case was opened.")
    updated_s: EventTime = Field(description="Latest event time of any change.")
    resolved_s: EventTime | None = Field(default=None, description="When it was last resolved.")
    confidence: Confidence
    amount_cents: Cents
    summary: Summary
    session_id: Id | None = None
    track_ids: list[Id] = Field(default_factory=list, max_length=50)
    epc_hex: EpcHex | None = None
    plate_id: Id | None = None
    sku: Id | None = None
    receipt_id: Id | None = Field(default=None, description="Disputed receipt (disputes only).")
    shopper_ref: Id | None = Field(default=None, description="Pseudonymous shopper (disputes).")
    assignee: Reviewer | None = None
    revision: int = Field(default=1, ge=1, description="Changes so far; names its CaseEvents.")
    findings: int = Field(default=1, ge=1, description="Distinct findings the case holds.")
    evidence_dropped: int = Field(default=0, ge=0, description="Items over the evidence caps.")
    evidence: Evidence = Field(default_factory=Evidence)
    history: list[HistoryEntry] = Field(default_factory=list)
    source_event_ids: list[Id] = Field(default_factory=list)


_SIDE = {"evidence", "history", "source_event_ids"}
_SUMMARY_COLUMNS = tuple(CaseSummary.model_fields)

_V1 = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, rule TEXT NOT NULL,
    category TEXT NOT NULL, state TEXT NOT NULL, incident_s REAL NOT NULL,
    last_incident_s REAL NOT NULL, confidence REAL NOT NULL, amount_cents INTEGER NOT NULL,
    updated_s REAL NOT NULL, resolved_s REAL, summary TEXT NOT NULL, session_id TEXT,
    assignee TEXT, revision INTEGER NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_store_state ON cases (store_id, state);
CREATE TABLE IF NOT EXISTS case_keys (
    case_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (case_id, key)
);
CREATE INDEX IF NOT EXISTS case_keys_key ON case_keys (key);
CREATE TABLE IF NOT EXISTS case_sources (
    case_id TEXT NOT NULL, source_event_id TEXT NOT NULL, PRIMARY KEY (case_id, source_event_id)
);
CREATE TABLE IF NOT EXISTS case_findings (finding_key TEXT PRIMARY KEY, case_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS case_evidence (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_evidence_case ON case_evidence (case_id, kind);
CREATE TABLE IF NOT EXISTS case_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_history_case ON case_history (case_id);
"""
MIGRATIONS = (Migration(1, "cases, their subject keys, sources, findings, evidence, history", _V1),)

_CASE_COLUMNS = (
    "case_id", "store_id", "rule", "category", "state", "incident_s", "last_incident_s",
    "confidence", "amount_cents", "updated_s", "resolved_s", "summary", "session_id",
    "assignee", "revision", "payload",
)  # fmt: skip
_SAVE = upsert("cases", _CASE_COLUMNS, key=("case_id",))
_ADD_KEY = insert_ignore("case_keys", ("case_id", "key"))
_ADD_SOURCE = insert_ignore("case_sources", ("case_id", "source_event_id"))


def _marks(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)


class CaseTx:
    """Statements on one connection, inside the transaction the caller holds."""

    def __init__(self, conn: Connection) -> None:
        self.c = conn

    def save(self, rec: CaseRecord) -> None:
        """Insert or replace the case row (side tables are written by their own calls)."""
        self.c.execute(
            _SAVE,
            (
                rec.case_id, rec.store_id, rec.rule, rec.category, rec.state, rec.incident_s,
                rec.last_incident_s, rec.confidence, rec.amount_cents, rec.updated_s,
                rec.resolved_s, rec.summary, rec.session_id, rec.assignee, rec.revision,
                rec.model_dump_json(exclude=_SIDE),
            ),
        )  # fmt: skip

    def load(self, case_id: str, *, full: bool = False) -> CaseRecord | None:
        """The case; with ``full``, its evidence, history and source event ids as well."""
        row = self.c.execute("SELECT payload FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            return None
        rec = CaseRecord.model_validate_json(row["payload"])
        if not full:
            return rec
        history = [
            HistoryEntry.model_validate_json(r["payload"])
            for r in self.c.execute(
                "SELECT payload FROM case_history WHERE case_id = ? ORDER BY seq", (case_id,)
            )
        ]
        sources = [
            r["source_event_id"]
            for r in self.c.execute(
                "SELECT source_event_id FROM case_sources WHERE case_id = ? "
                "ORDER BY source_event_id",
                (case_id,),
            )
        ]
        items: dict[str, list[str]] = {"timeline": [], "track": [], "snapshot": []}
        for r in self.c.execute(
            "SELECT kind, payload FROM case_evidence WHERE case_id = ? ORDER BY seq", (case_id,)
        ):
            items[r["kind"]].append(r["payload"])
        evidence = Evidence(
            timeline=[TimelineEntry.model_validate_json(p) for p in items["timeline"]],
            tracks=[TrackSnippet.model_validate_json(p) for p in items["track"]],
            snapshots=[SnapshotRef.model_validate_json(p) for p in items["snapshot"]],
        )
        update = {"evidence": evidence, "history": history, "source_event_ids": sources}
        return rec.model_copy(update=update)

    def add_evidence(self, case_id: str, evidence: Evidence) -> int:
        """Append evidence up to the case caps; returns how many items were over them."""
        dropped = 0
        for kind, items in (
            ("timeline", evidence.timeline),
            ("track", evidence.tracks),
            ("snapshot", evidence.snapshots),
        ):
            (have,) = self.c.execute(
                "SELECT COUNT(*) FROM case_evidence WHERE case_id = ? AND kind = ?",
                (case_id, kind),
            ).fetchone()
            room = max(0, _CAPS[kind] - have)
            self.c.executemany(
                "INSERT INTO case_evidence (case_id, kind, payload) VALUES (?, ?, ?)",
                [(case_id, kind, item.model_dump_json()) for item in items[:room]],
            )
            dropped += max(0, len(items) - room)
        return dropped

    def add_history(self, case_id: str, entry: HistoryEntry) -> None:
        self.c.execute(
            "INSERT INTO case_history (case_id, payload) VALUES (?, ?)",
            (case_id, entry.model_dump_json()),
        )

    def add_keys(self, case_id: str, keys: Iterable[str]) -> None:
        self.c.executemany(_ADD_KEY, [(case_id, k) for k in keys])

    def add_sources(self, case_id: str, source_ids: Iterable[str]) -> int:
        """Record source event ids; returns how many were new to the case."""
        rows = [(case_id, s) for s in source_ids]
        if not rows:
            return 0
        return int(self.c.executemany(_ADD_SOURCE, rows).rowcount)

    def case_for_finding(self, finding_key: str) -> str | None:
        row = self.c.execute(
            "SELECT case_id FROM case_findings WHERE finding_key = ?", (finding_key,)
        ).fetchone()
        return row["case_id"] if row else None

    def add_finding(self, finding_key: str, case_id: str) -> None:
        self.c.execute(
            "INSERT INTO case_findings (finding_key, case_id) VALUES (?, ?)", (finding_key, case_id)
        )

    def candidates(
        self, store_id: str, keys: set[str], t_s: float, window_s: float
    ) -> list[tuple[str, float]]:
        """Open non-dispute cases of the store sharing a key: (id, gap to t_s), nearest first."""
        ordered = sorted(keys)
        rows = self.c.execute(
            "SELECT DISTINCT c.case_id, c.incident_s, c.last_incident_s FROM case_keys k "
            "JOIN cases c ON c.case_id = k.case_id WHERE c.store_id = ? AND c.state != 'resolved' "
            f"AND c.category != 'dispute' AND k.key IN ({_marks(ordered)}) "
            "AND c.incident_s <= ? AND c.last_incident_s >= ?",
            (store_id, *ordered, t_s + window_s, t_s - window_s),
        ).fetchall()
        gaps = [
            (r["case_id"], max(0.0, r["incident_s"] - t_s, t_s - r["last_incident_s"]))
            for r in rows
        ]
        return sorted(gaps, key=lambda g: (g[1], g[0]))

    def summaries(
        self, where: list[str], args: list[object], order: str, limit: int, offset: int
    ) -> list[CaseSummary]:
        """Rows as summaries. ``where`` and ``order`` are built from fixed fragments only."""
        sql = f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.c.execute(f"{sql} ORDER BY {order} LIMIT ? OFFSET ?", (*args, limit, offset))
        return [CaseSummary.model_validate(dict(r)) for r in rows.fetchall()]

    def counts_by_state(self, stores: list[str] | None) -> dict[str, int]:
        """Cases per state present in the file, of the given stores (all if None)."""
        sql, args = "SELECT state, COUNT(*) AS n FROM cases", tuple(stores or ())
        if stores is not None:
            sql += f" WHERE store_id IN ({_marks(stores)})"
        rows = self.c.execute(sql + " GROUP BY state", args).fetchall()
        return {r["state"]: int(r["n"]) for r in rows}

    def purge_media(self, older_than_s: float) -> dict[str, int]:
        """Delete tracks and snapshots of cases resolved before ``older_than_s``: {case: items}."""
        rows = self.c.execute(
            "SELECT e.case_id, COUNT(*) AS n FROM case_evidence e JOIN cases c "
            "ON c.case_id = e.case_id WHERE c.state = 'resolved' AND c.resolved_s < ? "
            "AND e.kind IN ('track', 'snapshot') GROUP BY e.case_id ORDER BY e.case_id",
            (older_than_s,),
        ).fetchall()
        gone = {r["case_id"]: int(r["n"]) for r in rows}
        self.c.executemany(
            "DELETE FROM case_evidence WHERE case_id = ? AND kind IN ('track', 'snapshot')",
            [(case_id,) for case_id in gone],
        )
        return gone


class CaseDb:
    """The case file at ``path``: SQLite (``":memory:"`` for tests) or a ``postgresql://`` URL."""

    def __init__(self, path: str | Path) -> None:
        self._file = open_database(
            path,
            "cases",
            MIGRATIONS,
            # One message for reads and writes: callers know the CaseBook, not this class.
            closed_message=lambda _use: (
                f"case book {self.path} is closed; open a new CaseBook to use it"
            ),
        )
        self.path = self._file.path

    @contextmanager
    def read(self) -> Iterator[CaseTx]:
        """One consistent snapshot, as part of the writer's transaction when in its thread."""
        # A read spanning several tables sees one state of the file, not a half-written case.
        with self._file.read_tx() as conn:
            yield CaseTx(conn)

    @contextmanager
    def write(self) -> Iterator[CaseTx]:
        """One atomic write transaction; rolled back if the body raises."""
        with self._file.write_tx() as conn:
            yield CaseTx(conn)

    def close(self) -> None:
        """Close every connection this file opened (idempotent)."""
        self._file.close()
