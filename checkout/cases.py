"""The loss-prevention case book: findings in, de-duplicated cases, a review workflow, a queue.

Shrink rules report :class:`Finding` s; the book folds them into cases so a
reviewer sees one case per incident, not one per rule firing. A finding joins
an open case of the same store when their subjects overlap (same session, a
shared track, the same EPC, or the same plate under the same rule) and their
incident times lie within ``merge_window_s``; otherwise it opens a case whose
id is derived from the finding itself, so a replay of the same findings gives
the same ids. Re-reporting a finding (same store, rule and source events)
changes nothing. Staff move cases along :data:`TRANSITIONS`; every change is
recorded in the case's history and handed to ``on_change`` as a
:class:`~iot.payloads.CaseEvent` with an id per change, for the bus.

>>> events = []
>>> book = CaseBook(":memory:", on_change=events.append)
>>> finding = Finding(store_id="demo", rule="tagged_item_unpaid", category="theft",
...     incident_s=1.8e9, confidence=0.8, summary="tagged jacket left unpaid",
...     session_id="s-1", amount_cents=4999, source_event_ids=["tp-1"])
>>> case, created = book.report(finding)
>>> created, book.report(finding)[1], len(events)
(True, False, 1)
>>> book.transition(case.case_id, "in_review", reviewer="ana", time_s=1.8e9 + 60).state
'in_review'
>>> try:
...     book.transition(case.case_id, "resolved", time_s=1.8e9 + 90)
... except CaseTransitionError as err:
...     print(err.current, "->", err.requested, "refused; allowed:", *err.allowed)
in_review -> resolved refused; allowed: confirmed_theft no_theft operational_issue
>>> [e.state for e in events], events[0].id != events[1].id
(['new', 'in_review'], True)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

from pydantic import TypeAdapter

from checkout.case_store import (
    CaseCategory,
    CaseDb,
    CaseRecord,
    CaseSummary,
    CaseTx,
    Evidence,
    Finding,
    HistoryEntry,
    SnapshotRef,
    Summary,
    TimelineEntry,
    TrackSnippet,
    subject_keys,
)
from checkout.evidence_files import remove_files
from checkout.ids import derived_id
from iot.payloads import CaseEvent, CaseRule, CaseState, Event, Id

__all__ = [
    "DISPOSITIONS",
    "TRANSITIONS",
    "CaseBook",
    "CaseNotFoundError",
    "CaseRecord",
    "CaseSummary",
    "CaseTransitionError",
    "Evidence",
    "Finding",
    "HistoryEntry",
    "SnapshotRef",
    "TimelineEntry",
    "TrackSnippet",
]

TRANSITIONS: dict[CaseState, tuple[CaseState, ...]] = {
    "new": ("in_review",),
    "in_review": ("confirmed_theft", "no_theft", "operational_issue"),
    "confirmed_theft": ("resolved", "in_review"),
    "no_theft": ("resolved", "in_review"),
    "operational_issue": ("resolved", "in_review"),
    "resolved": ("in_review",),
}
DISPOSITIONS: frozenset[CaseState] = frozenset({"confirmed_theft", "no_theft", "operational_issue"})
SortKey = Literal["incident_s", "confidence", "amount_cents", "updated_s"]
# Sort keys map to fixed column names; a caller's string never reaches the SQL text.
_SORT_COLUMNS: dict[str, str] = {k: k for k in get_args(SortKey)}
_STATES = frozenset(get_args(CaseState))
_RULES = frozenset(get_args(CaseRule))
_CATEGORIES = frozenset(get_args(CaseCategory))
_MAX_CENTS = 100_000_000  # case_store.Cents
_MAX_TRACKS = 50  # CaseEvent.track_ids; a Finding holds at most as many
_MAX_OFFSET = 2**63 - 1  # SQLite's largest integer; a larger offset cannot reach the query
# What a new case copies from the finding that opens it.
_FROM_FINDING = {"store_id", "rule", "category", "incident_s", "confidence", "amount_cents",
                 "summary", "session_id", "track_ids", "epc_hex", "plate_id", "sku"}  # fmt: skip
_EVENT_FIELDS = set(CaseEvent.model_fields) - set(Event.model_fields)
_summary = TypeAdapter(Summary)
_id = TypeAdapter(Id)
log = logging.getLogger(__name__)


class CaseTransitionError(ValueError):
    """A workflow move the case's current state does not allow."""

    def __init__(self, case_id: str, current: CaseState, requested: str) -> None:
        self.case_id, self.current, self.requested = case_id, current, requested
        self.allowed = TRANSITIONS[current]
        super().__init__(
            f"case {case_id} is {current}; it cannot move to {requested}; "
            f"allowed next states: {', '.join(self.allowed)}"
        )


class CaseNotFoundError(LookupError):
    """No case with that id in the book."""


def finding_key(finding: Finding) -> str:
    """What makes two reports the same finding: store, rule and the set of source events."""
    raw = json.dumps([finding.store_id, finding.rule, finding.source_event_ids])
    return hashlib.sha256(raw.encode()).hexdigest()


class CaseBook:
    """Loss-prevention cases of every store, kept in one SQLite file (``":memory:"`` for tests)."""

    def __init__(
        self,
        path: str | Path,
        *,
        on_change: Callable[[CaseEvent], None] | None = None,
        merge_window_s: float = 300.0,
        device_id: str = "casebook",
        evidence_dir: str | Path | None = None,
    ) -> None:
        """``evidence_dir``: the folder snapshot files are written to; a purge deletes the
        purged cases' files there (None: files are left, with a warning)."""
        if not (math.isfinite(merge_window_s) and merge_window_s > 0):
            raise ValueError(
                f"merge_window_s={merge_window_s!r}: give a positive, finite number of seconds "
                "(findings further apart than this never join one case)"
            )
        self.merge_window_s = float(merge_window_s)
        self.device_id = _id.validate_python(device_id)
        self.on_change = on_change
        self.evidence_dir = Path(evidence_dir) if evidence_dir is not None else None
        self.files_removed = 0  # snapshot files deleted by purges
        self._db = CaseDb(path)

    # --- findings ---

    def report(self, finding: Finding) -> tuple[CaseRecord, bool]:
        """File a finding: (the case it opened or joined, whether it opened a new one)."""
        return self._report(finding, {})

    def open_dispute(
        self,
        store_id: str,
        session_id: str,
        receipt_id: str,
        sku: str,
        *,
        reason: str,
        time_s: float,
        shopper_ref: str,
        amount_cents: int = 0,
    ) -> tuple[CaseRecord, bool]:
        """A shopper disputes one receipt line; the same line disputed again opens no second case.

        A dispute never merges with theft or operations cases (nor they into it):
        it is the shopper's claim, and must stay visible as such.
        """
        reason = _summary.validate_python(reason)
        line = derived_id("line:", f"{_id.validate_python(receipt_id)}/{_id.validate_python(sku)}")
        entry = TimelineEntry(
            time_s=time_s,
            source_event_id=receipt_id,
            kind="receipt_line",
            text=f"{sku} on receipt {receipt_id} disputed: {reason}",
        )
        finding = Finding(
            store_id=store_id,
            rule="dispute",
            category="dispute",
            incident_s=time_s,
            confidence=1.0,  # certain that the shopper disputes; not a guess about theft
            summary=f"shopper disputes {sku} on receipt {receipt_id}",
            session_id=session_id,
            sku=sku,
            amount_cents=amount_cents,
            source_event_ids=[line],
            evidence=Evidence(timeline=[entry]),
        )
        return self._report(finding, {"receipt_id": receipt_id, "shopper_ref": shopper_ref})

    def _report(self, finding: Finding, extra: dict[str, Any]) -> tuple[CaseRecord, bool]:
        key = finding_key(finding)
        with self._db.write() as tx:
            known = tx.case_for_finding(key)
            if known is not None:
                return self._full(tx, known), False
            near: list[tuple[str, float]] = []
            if finding.rule != "dispute":
                near = tx.candidates(
                    finding.store_id, subject_keys(finding), finding.incident_s, self.merge_window_s
                )
            if near:
                case_id = self._merge(tx, near[0][0], finding)
            else:
                case_id = self._open(tx, key, finding, extra)
            tx.add_finding(key, case_id)
            tx.add_keys(case_id, subject_keys(finding))
            record = self._full(tx, case_id)
        self._emit(record, _detected_s(finding))
        return record, not near

    def _open(self, tx: CaseTx, key: str, finding: Finding, extra: dict[str, Any]) -> str:
        case_id = derived_id("case-", f"{finding.store_id}.{key[:20]}")
        t_s = _detected_s(finding)
        tx.add_sources(case_id, finding.source_event_ids)
        dropped = tx.add_evidence(case_id, finding.evidence)
        record = CaseRecord(
            **finding.model_dump(include=_FROM_FINDING),
            case_id=case_id,
            last_incident_s=finding.incident_s,
            opened_s=t_s,
            updated_s=t_s,
            evidence_dropped=dropped,
            **extra,
        )
        tx.save(record)
        note = f"{finding.rule}: {finding.summary}"
        tx.add_history(
            case_id, HistoryEntry(time_s=t_s, action="opened", to_state="new", note=note)
        )
        return case_id

    def _merge(self, tx: CaseTx, case_id: str, finding: Finding) -> str:
        rec = self._load(tx, case_id)
        new_sources = tx.add_sources(case_id, finding.source_event_ids)
        # A finding that shares source events with the case describes (partly) a loss already
        # counted: it may raise the value at risk, never add to it twice.
        if new_sources == len(finding.source_event_ids):
            amount = min(_MAX_CENTS, rec.amount_cents + finding.amount_cents)
        else:
            amount = max(rec.amount_cents, finding.amount_cents)
        dropped = tx.add_evidence(case_id, finding.evidence)
        t_s = _detected_s(finding)
        merged = self._bump(
            rec,
            t_s,
            related_rules=sorted((set(rec.related_rules) | {finding.rule}) - {rec.rule}),
            # A theft finding makes an operations case a theft case; never the other way.
            category="theft" if "theft" in (rec.category, finding.category) else rec.category,
            incident_s=min(rec.incident_s, finding.incident_s),
            last_incident_s=max(rec.last_incident_s, finding.incident_s),
            confidence=max(rec.confidence, finding.confidence),
            amount_cents=amount,
            session_id=rec.session_id or finding.session_id,
            track_ids=sorted(set(rec.track_ids) | set(finding.track_ids))[:_MAX_TRACKS],
            epc_hex=rec.epc_hex or finding.epc_hex,
            plate_id=rec.plate_id or finding.plate_id,
            sku=rec.sku or finding.sku,
            findings=rec.findings + 1,
            evidence_dropped=rec.evidence_dropped + dropped,
        )
        tx.save(merged)
        note = f"{finding.rule}: {finding.summary}"
        tx.add_history(case_id, HistoryEntry(time_s=t_s, action="merged", note=note))
        return case_id

    # --- workflow ---

    def transition(
        self,
        case_id: str,
        to_state: CaseState,
        *,
        time_s: float,
        reviewer: str | None = None,
        note: str = "",
    ) -> CaseRecord:
        """Move a case along :data:`TRANSITIONS`; a disposition needs a ``reviewer``."""
        with self._db.write() as tx:
            rec = self._load(tx, case_id)
            if to_state not in TRANSITIONS[rec.state]:
                raise CaseTransitionError(case_id, rec.state, to_state)
            if to_state in DISPOSITIONS and reviewer is None:
                raise ValueError(
                    f"case {case_id}: the disposition {to_state} needs the reviewer who decided "
                    "it; pass reviewer=<staff handle>"
                )
            entry = HistoryEntry(
                time_s=time_s,
                action="transition",
                reviewer=reviewer,
                from_state=rec.state,
                to_state=to_state,
                note=note,
            )
            # resolved_s dates the retention clock; a reopened case restarts it.
            resolved_s = time_s if to_state == "resolved" else None
            record = self._change(tx, rec, entry, state=to_state, resolved_s=resolved_s)
        self._emit(record, time_s)
        return record

    def add_note(self, case_id: str, reviewer: str, text: str, time_s: float) -> CaseRecord:
        """Append a reviewer's note to the case's history."""
        entry = HistoryEntry(
            time_s=time_s, action="note", reviewer=reviewer, note=_summary.validate_python(text)
        )
        with self._db.write() as tx:
            record = self._change(tx, self._load(tx, case_id), entry)
        self._emit(record, time_s)
        return record

    def assign(
        self, case_id: str, assignee: str | None, time_s: float, *, by: str | None = None
    ) -> CaseRecord:
        """Give the case to a reviewer (``None`` to unassign); ``by`` is who did it."""
        note = f"assigned to {assignee}" if assignee else "unassigned"
        entry = HistoryEntry(time_s=time_s, action="assigned", reviewer=by, note=note)
        with self._db.write() as tx:
            record = self._change(tx, self._load(tx, case_id), entry, assignee=assignee)
        self._emit(record, time_s)
        return record

    def add_snapshots(
        self, case_id: str, snapshots: Iterable[SnapshotRef], time_s: float
    ) -> CaseRecord:
        """Attach camera snapshots (already blurred at capture) to a case's evidence."""
        refs = list(snapshots)
        entry = HistoryEntry(
            time_s=time_s, action="evidence", note=f"{len(refs)} camera snapshot(s) attached"
        )
        with self._db.write() as tx:
            rec = self._load(tx, case_id)
            dropped = tx.add_evidence(case_id, Evidence(snapshots=refs))
            record = self._change(tx, rec, entry, evidence_dropped=rec.evidence_dropped + dropped)
        self._emit(record, time_s)
        return record

    def purge_evidence(self, older_than_s: float, *, time_s: float | None = None) -> int:
        """Delete track snippets and snapshots of cases resolved before ``older_than_s``.

        The snapshot files go too (those inside ``evidence_dir``), once the
        references are gone. The case, its timeline and its history stay.
        ``time_s`` (default ``older_than_s``) dates the purge in the history.
        Returns evidence items deleted.
        """
        at_s = older_than_s if time_s is None else time_s
        records = []
        with self._db.write() as tx:
            files = self._snapshot_files(tx, older_than_s)
            gone = tx.purge_media(older_than_s)
            for case_id, n in gone.items():
                shots = len(files.get(case_id, []))
                entry = HistoryEntry(
                    time_s=at_s,
                    action="evidence_purged",
                    note=f"{n} track snippets and snapshots deleted, {shots} of them image "
                    "files (retention)",
                )
                records.append(self._change(tx, self._load(tx, case_id), entry))
        self._remove([p for case_id in gone for p in files.get(case_id, [])])
        for record in records:
            self._emit(record, at_s)
        return sum(gone.values())

    @staticmethod
    def _snapshot_files(tx: CaseTx, older_than_s: float) -> dict[str, list[str]]:
        """Image paths of the snapshots a purge before ``older_than_s`` is about to delete."""
        due = tx.summaries(
            ["state = ?", "resolved_s < ?"],
            ["resolved", _finite("resolved_s < ?", older_than_s)],
            "case_id ASC",
            _MAX_OFFSET,
            0,
        )
        out: dict[str, list[str]] = {}
        for summary in due:
            record = tx.load(summary.case_id, full=True)
            if record is not None and record.evidence.snapshots:
                out[summary.case_id] = [s.image_path for s in record.evidence.snapshots]
        return out

    def _remove(self, paths: list[str]) -> None:
        if not paths:
            return
        if self.evidence_dir is None:
            log.warning(
                "case book %s: %d purged snapshot file(s) left on disk: give the CaseBook its "
                "evidence_dir to delete them",
                self._db.path,
                len(paths),
            )
            return
        removed, _ = remove_files(paths, self.evidence_dir)
        self.files_removed += removed

    # --- reading ---

    def get(self, case_id: str) -> CaseRecord | None:
        """The whole case (evidence, history, source events), or None if there is none."""
        with self._db.read() as tx:
            return tx.load(case_id, full=True)

    def queue(
        self,
        *,
        stores: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        rules: Iterable[str] | None = None,
        categories: Iterable[str] | None = None,
        min_confidence: float = 0.0,
        since_s: float | None = None,
        until_s: float | None = None,
        sort: str = "incident_s",
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> list[CaseSummary]:
        """Cases across stores matching every filter given; incident times in [since_s, until_s]."""
        if sort not in _SORT_COLUMNS:
            raise ValueError(f"sort={sort!r} is not a sort key; use one of {sorted(_SORT_COLUMNS)}")
        if not (1 <= limit <= 500) or not 0 <= offset <= _MAX_OFFSET:
            raise ValueError(
                f"limit={limit}, offset={offset}: limit must be 1..500, offset 0..{_MAX_OFFSET}"
            )
        where: list[str] = []
        args: list[object] = []
        for column, values, allowed in (
            ("store_id", stores, None),
            ("state", states, _STATES),
            ("rule", rules, _RULES),
            ("category", categories, _CATEGORIES),
        ):
            if values is None:
                continue
            chosen = _members(column, values, allowed)
            if not chosen:
                return []
            where.append(f"{column} IN ({', '.join('?' for _ in chosen)})")
            args.extend(chosen)
        for clause, value in (
            ("confidence >= ?", min_confidence),
            ("incident_s >= ?", since_s),
            ("incident_s <= ?", until_s),
        ):
            if value is not None:
                where.append(clause)
                args.append(_finite(clause, value))
        direction = "DESC" if descending else "ASC"
        order = f"{_SORT_COLUMNS[sort]} {direction}, case_id {direction}"
        with self._db.read() as tx:
            return tx.summaries(where, args, order, limit, offset)

    def counts_by_state(self, stores: Iterable[str] | None = None) -> dict[str, int]:
        """Cases per state (every state listed, zeros included), optionally for some stores."""
        counts: dict[str, int] = dict.fromkeys(TRANSITIONS, 0)
        chosen = None if stores is None else _members("store_id", stores, None)
        if chosen == []:
            return counts
        with self._db.read() as tx:
            counts.update(tx.counts_by_state(chosen))
        return counts

    # --- plumbing ---

    def _load(self, tx: CaseTx, case_id: str) -> CaseRecord:
        rec = tx.load(case_id)
        if rec is None:
            raise CaseNotFoundError(
                f"no case {case_id!r} in {self._db.path}; list cases with CaseBook.queue()"
            )
        return rec

    def _full(self, tx: CaseTx, case_id: str) -> CaseRecord:
        rec = tx.load(case_id, full=True)
        assert rec is not None, f"case {case_id} vanished inside its own transaction"
        return rec

    @staticmethod
    def _bump(rec: CaseRecord, time_s: float, **update: Any) -> CaseRecord:
        """The record with ``update`` applied, revalidated, one revision on."""
        data = rec.model_dump(exclude={"evidence", "history", "source_event_ids"})
        data.update(update, revision=rec.revision + 1, updated_s=max(rec.updated_s, time_s))
        return CaseRecord.model_validate(data)

    def _change(
        self, tx: CaseTx, rec: CaseRecord, entry: HistoryEntry, **update: Any
    ) -> CaseRecord:
        tx.save(self._bump(rec, entry.time_s, **update))
        tx.add_history(rec.case_id, entry)
        return self._full(tx, rec.case_id)

    def _emit(self, rec: CaseRecord, time_s: float) -> None:
        """Hand the change to ``on_change`` (after commit, outside the lock)."""
        if self.on_change is None:
            return
        event_id = derived_id("case-event-", f"{rec.case_id}.r{rec.revision}")
        fields = rec.model_dump(include=_EVENT_FIELDS)
        self.on_change(
            CaseEvent(id=event_id, event_time_s=time_s, device_id=self.device_id, **fields)
        )

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._db.close()

    def __enter__(self) -> CaseBook:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _detected_s(finding: Finding) -> float:
    return finding.incident_s if finding.detected_s is None else finding.detected_s


def _members(column: str, values: Iterable[str], allowed: frozenset[str] | None) -> list[str]:
    """A filter's values as a sorted unique list; unknown states, rules or categories refused."""
    if isinstance(values, str):
        raise TypeError(f"{column} filter must be a list of values, not the string {values!r}")
    chosen = sorted(set(values))
    unknown = [v for v in chosen if allowed is not None and v not in allowed]
    if unknown:
        raise ValueError(f"unknown {column} {unknown}; choose from {sorted(allowed or ())}")
    return chosen


def _finite(clause: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"filter {clause.replace('?', repr(value))} needs a finite number")
    return float(value)
