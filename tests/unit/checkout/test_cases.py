"""The loss-prevention case book: merging, idempotency, workflow, queue, disputes, purge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from checkout.cases import (
    CaseBook,
    CaseNotFoundError,
    CaseTransitionError,
    Evidence,
    Finding,
    SnapshotRef,
    TimelineEntry,
    TrackSnippet,
)
from iot.payloads import CaseEvent

T0 = 1.8e9
EPC = "3034257BF7194E4000001A85"
STATES = ["new", "in_review", "confirmed_theft", "no_theft", "operational_issue", "resolved"]
# The workflow, written out here on its own so the book's table is checked, not echoed.
ALLOWED = {
    "new": {"in_review"},
    "in_review": {"confirmed_theft", "no_theft", "operational_issue"},
    "confirmed_theft": {"resolved", "in_review"},
    "no_theft": {"resolved", "in_review"},
    "operational_issue": {"resolved", "in_review"},
    "resolved": {"in_review"},
}
PATH_TO = {
    "new": [],
    "in_review": ["in_review"],
    "confirmed_theft": ["in_review", "confirmed_theft"],
    "no_theft": ["in_review", "no_theft"],
    "operational_issue": ["in_review", "operational_issue"],
    "resolved": ["in_review", "no_theft", "resolved"],
}


def finding(**over: Any) -> Finding:
    base: dict[str, Any] = {
        "store_id": "s1",
        "rule": "unattributed_removal",
        "category": "theft",
        "incident_s": T0,
        "confidence": 0.6,
        "summary": "pick with nobody near",
        "session_id": "sess-1",
        "source_event_ids": ["e1"],
        "amount_cents": 300,
    }
    base.update(over)
    return Finding(**base)


def media(t_s: float = T0) -> Evidence:
    return Evidence(
        timeline=[TimelineEntry(time_s=t_s, source_event_id="e1", kind="shelf_pick", text="2 x")],
        tracks=[TrackSnippet(track_id="t1", points=[(t_s, 1.0, 2.0), (t_s + 1, 1.5, 2.0)])],
        snapshots=[SnapshotRef(camera_id="cam-1", time_s=t_s, image_path="snaps/c1/1.jpg")],
    )


@pytest.fixture
def events() -> list[CaseEvent]:
    return []


@pytest.fixture
def book(events: list[CaseEvent], db: str) -> Iterator[CaseBook]:
    with CaseBook(db, on_change=events.append, merge_window_s=60.0) as made:
        yield made


def drive(book: CaseBook, case_id: str, path: list[str], t_s: float = T0 + 10) -> None:
    for i, state in enumerate(path):
        book.transition(case_id, state, time_s=t_s + i, reviewer="ana")  # type: ignore[arg-type]


# --- workflow ---


@pytest.mark.parametrize("start", STATES)
@pytest.mark.parametrize("target", STATES)
def test_transition_matrix(book: CaseBook, start: str, target: str) -> None:
    case, _ = book.report(finding())
    drive(book, case.case_id, PATH_TO[start])
    if target in ALLOWED[start]:
        moved = book.transition(case.case_id, target, time_s=T0 + 50, reviewer="bo")  # type: ignore[arg-type]
        assert moved.state == target
        last = moved.history[-1]
        assert (last.from_state, last.to_state, last.reviewer, last.time_s) == (
            start,
            target,
            "bo",
            T0 + 50,
        )
    else:
        with pytest.raises(CaseTransitionError) as err:
            book.transition(case.case_id, target, time_s=T0 + 50, reviewer="bo")  # type: ignore[arg-type]
        assert err.value.current == start and set(err.value.allowed) == ALLOWED[start]
        assert start in str(err.value) and all(s in str(err.value) for s in ALLOWED[start])
        assert book.get(case.case_id).state == start  # type: ignore[union-attr]


@pytest.mark.parametrize("disposition", ["confirmed_theft", "no_theft", "operational_issue"])
def test_disposition_needs_a_reviewer(
    book: CaseBook, events: list[CaseEvent], disposition: str
) -> None:
    case, _ = book.report(finding())
    drive(book, case.case_id, ["in_review"])
    before = len(events)
    with pytest.raises(ValueError, match="reviewer"):
        book.transition(case.case_id, disposition, time_s=T0 + 20)  # type: ignore[arg-type]
    assert book.get(case.case_id).state == "in_review"  # type: ignore[union-attr]
    assert len(events) == before


def test_history_notes_assignment_and_reopen(book: CaseBook) -> None:
    case, _ = book.report(finding())
    book.assign(case.case_id, "ana", T0 + 5, by="lead")
    drive(book, case.case_id, ["in_review", "confirmed_theft", "resolved"])
    book.add_note(case.case_id, "ana", "  footage matches the pick  ", T0 + 30)
    resolved = book.get(case.case_id)
    assert resolved is not None and resolved.resolved_s == T0 + 12
    reopened = book.transition(case.case_id, "in_review", time_s=T0 + 40, reviewer="bo", note="x")
    assert reopened.state == "in_review" and reopened.resolved_s is None
    assert reopened.assignee == "ana"
    actions = [h.action for h in reopened.history]
    assert actions == ["opened", "assigned", *["transition"] * 3, "note", "transition"]
    assert reopened.history[5].note == "footage matches the pick"
    assert reopened.updated_s == T0 + 40


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda b, c: b.add_note(c, "ana", "   ", T0), ValidationError),
        (lambda b, c: b.add_note(c, "ana bo", "ok", T0), ValidationError),
        (lambda b, c: b.add_note(c, "ana", "bad\x07bell", T0), ValidationError),
        (lambda b, c: b.add_note(c, "ana", "x" * 1001, T0), ValidationError),
        (lambda b, c: b.add_note(c, "ana", "ok", float("nan")), ValidationError),
        (lambda b, c: b.add_note("case-nope", "ana", "ok", T0), CaseNotFoundError),
        (lambda b, c: b.assign(c, "Robert'); DROP TABLE cases;--", T0), ValidationError),
    ],
)
def test_bad_workflow_input_is_refused(book: CaseBook, call: Any, error: type) -> None:
    case, _ = book.report(finding())
    with pytest.raises(error):
        call(book, case.case_id)
    assert book.get(case.case_id).revision == 1  # type: ignore[union-attr]


# --- merging ---


@pytest.mark.parametrize(
    ("second", "merges"),
    [
        ({"session_id": "sess-1"}, True),
        ({"session_id": None, "track_ids": ["t7"]}, True),
        ({"session_id": None, "epc_hex": EPC}, True),
        ({"session_id": None, "plate_id": "p1"}, True),
        ({"session_id": None, "plate_id": "p1", "rule": "weight_loss_no_interaction"}, False),
        ({"session_id": None, "plate_id": "p2"}, False),
        ({"session_id": "sess-2"}, False),
        ({"store_id": "s2"}, False),
        ({"incident_s": T0 + 60}, True),
        ({"incident_s": T0 - 60}, True),
        ({"incident_s": T0 + 61}, False),
        ({"incident_s": T0 - 61}, False),
    ],
)
def test_merge_rules(book: CaseBook, second: dict[str, Any], merges: bool) -> None:
    first, created = book.report(
        finding(track_ids=["t7", "t8"], epc_hex=EPC, plate_id="p1", source_event_ids=["e1"])
    )
    other, opened = book.report(finding(**{"source_event_ids": ["e2"], **second}))
    assert created and opened is not merges
    assert (other.case_id == first.case_id) is merges
    assert sum(book.counts_by_state().values()) == (1 if merges else 2)


def test_window_runs_from_the_latest_evidence(book: CaseBook) -> None:
    first, _ = book.report(finding())
    book.report(finding(incident_s=T0 + 50, source_event_ids=["e2"]))
    third, created = book.report(finding(incident_s=T0 + 100, source_event_ids=["e3"]))
    assert not created and third.case_id == first.case_id
    assert (third.incident_s, third.last_incident_s) == (T0, T0 + 100)


def test_merged_case_folds_the_finding(book: CaseBook) -> None:
    first, _ = book.report(
        finding(rule="wrong_put_back", category="operations", confidence=0.4, evidence=media())
    )
    merged, _ = book.report(
        finding(confidence=0.9, track_ids=["t3"], source_event_ids=["e2"], evidence=media(T0 + 3))
    )
    assert merged.case_id == first.case_id
    assert merged.rule == "wrong_put_back" and merged.related_rules == ["unattributed_removal"]
    assert merged.category == "theft" and merged.confidence == 0.9
    assert merged.amount_cents == 600 and merged.findings == 2
    assert merged.track_ids == ["t3"] and merged.source_event_ids == ["e1", "e2"]
    assert [e.time_s for e in merged.evidence.timeline] == [T0, T0 + 3]
    assert len(merged.evidence.snapshots) == 2 and merged.history[-1].action == "merged"


def test_overlapping_sources_do_not_count_twice(book: CaseBook) -> None:
    book.report(finding(amount_cents=300, source_event_ids=["e1"]))
    case, _ = book.report(
        finding(rule="tailgating", amount_cents=200, source_event_ids=["e1", "e9"])
    )
    assert case.amount_cents == 300
    case, _ = book.report(
        finding(rule="tagged_item_unpaid", amount_cents=800, source_event_ids=["e9"])
    )
    assert case.amount_cents == 800  # raised, not summed
    case, _ = book.report(finding(amount_cents=50, source_event_ids=["e4"]))
    assert case.amount_cents == 850


@pytest.mark.parametrize(("state", "absorbs"), [("no_theft", True), ("resolved", False)])
def test_only_resolved_cases_stop_absorbing(book: CaseBook, state: str, absorbs: bool) -> None:
    case, _ = book.report(finding())
    drive(book, case.case_id, PATH_TO[state])
    later, created = book.report(finding(incident_s=T0 + 5, source_event_ids=["e2"]))
    assert (later.case_id == case.case_id) is absorbs and created is not absorbs
    assert book.get(case.case_id).state == state  # type: ignore[union-attr]


def test_case_evidence_is_capped_and_counted(book: CaseBook) -> None:
    lines = [TimelineEntry(time_s=T0, source_event_id="e", kind="k", text="t")] * 50
    for i in range(5):
        case, _ = book.report(
            finding(source_event_ids=[f"e{i}"], evidence=Evidence(timeline=lines))
        )
    assert len(case.evidence.timeline) == 200 and case.evidence_dropped == 50


# --- idempotency, replay and events ---


def test_same_finding_twice_changes_nothing(book: CaseBook, events: list[CaseEvent]) -> None:
    first, created = book.report(finding(source_event_ids=["e2", "e1"], evidence=media()))
    again, created_again = book.report(
        finding(source_event_ids=["e1", "e2", "e1"], summary="worded otherwise")
    )
    assert created and not created_again and again == first
    assert len(events) == 1 and again.revision == 1


def test_replay_gives_the_same_ids(tmp_path: Path) -> None:
    def run(path: Path) -> list[tuple[str, str]]:
        seen: list[CaseEvent] = []
        with CaseBook(path, on_change=seen.append) as book:
            a, _ = book.report(finding())
            book.report(finding(session_id="sess-9", source_event_ids=["e5"]))
            book.report(finding(source_event_ids=["e2"]))
            drive(book, a.case_id, ["in_review", "no_theft"])
        return [(e.id, e.case_id) for e in seen]

    first, second = run(tmp_path / "a.db"), run(tmp_path / "b.db")
    assert first == second and len({i for i, _ in first}) == 5
    assert len({c for _, c in first}) == 2


def test_every_change_is_an_event(book: CaseBook, events: list[CaseEvent]) -> None:
    case, _ = book.report(finding(detected_s=T0 + 4, epc_hex=EPC, track_ids=["t1"]))
    book.report(finding(source_event_ids=["e2"], incident_s=T0 + 2))
    book.assign(case.case_id, "ana", T0 + 6)
    book.add_note(case.case_id, "ana", "looking", T0 + 7)
    drive(book, case.case_id, ["in_review"], t_s=T0 + 8)
    assert [e.state for e in events] == ["new"] * 4 + ["in_review"]
    assert [e.event_time_s for e in events] == [T0 + 4, T0 + 2, T0 + 6, T0 + 7, T0 + 8]
    assert {e.case_id for e in events} == {case.case_id} and len({e.id for e in events}) == 5
    assert (events[0].epc_hex, events[0].track_ids, events[0].incident_s) == (EPC, ["t1"], T0)
    final = book.get(case.case_id)
    assert final is not None and final.revision == 5


# --- queue ---


@pytest.fixture
def stocked(book: CaseBook) -> CaseBook:
    rows = [
        ("s1", "sess-a", "unattributed_removal", "theft", 0.9, 500, 0),
        ("s1", "sess-b", "wrong_put_back", "operations", 0.3, 0, 100),
        ("s2", "sess-c", "tagged_item_unpaid", "theft", 0.7, 2500, 200),
        ("s2", "sess-d", "tailgating", "theft", 0.5, 100, 300),
        ("s3", "sess-e", "tailgating", "theft", 0.99, 9000, 400),
    ]
    for store, sess, rule, cat, conf, cents, dt in rows:
        book.report(
            finding(store_id=store, session_id=sess, rule=rule, category=cat, confidence=conf,
                    amount_cents=cents, incident_s=T0 + dt, source_event_ids=[f"x-{sess}"])
        )  # fmt: skip
    tail = book.queue(stores=["s2"], rules=["tailgating"])[0]
    drive(book, tail.case_id, ["in_review"], t_s=T0 + 1000)
    return book


@pytest.mark.parametrize("sort", ["incident_s", "confidence", "amount_cents", "updated_s"])
@pytest.mark.parametrize("descending", [True, False])
def test_queue_sorts_across_stores(stocked: CaseBook, sort: str, descending: bool) -> None:
    got = stocked.queue(stores=["s1", "s2"], sort=sort, descending=descending)
    assert {c.store_id for c in got} == {"s1", "s2"} and len(got) == 4
    keys = [getattr(c, sort) for c in got]
    assert keys == sorted(keys, reverse=descending)


@pytest.mark.parametrize(
    ("filters", "sessions"),
    [
        ({}, {"sess-a", "sess-b", "sess-c", "sess-d", "sess-e"}),
        ({"stores": ["s2"]}, {"sess-c", "sess-d"}),
        ({"states": ["in_review"]}, {"sess-d"}),
        ({"states": ["new"], "stores": ["s1", "s2"]}, {"sess-a", "sess-b", "sess-c"}),
        ({"rules": ["tailgating"]}, {"sess-d", "sess-e"}),
        ({"categories": ["operations"]}, {"sess-b"}),
        ({"min_confidence": 0.7}, {"sess-a", "sess-c", "sess-e"}),
        ({"since_s": T0 + 100, "until_s": T0 + 300}, {"sess-b", "sess-c", "sess-d"}),
        ({"stores": []}, set()),
        ({"stores": ["nowhere"]}, set()),
    ],
)
def test_queue_filters(stocked: CaseBook, filters: dict[str, Any], sessions: set[str]) -> None:
    assert {c.session_id for c in stocked.queue(**filters)} == sessions


def test_queue_pages_and_counts(stocked: CaseBook) -> None:
    everything = stocked.queue(sort="amount_cents")
    pages = stocked.queue(sort="amount_cents", limit=2) + stocked.queue(
        sort="amount_cents", limit=2, offset=2
    )
    assert pages == everything[:4]
    assert stocked.counts_by_state() == dict.fromkeys(STATES, 0) | {"new": 4, "in_review": 1}
    assert stocked.counts_by_state(["s1"])["new"] == 2
    assert stocked.counts_by_state(["s2"])["in_review"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sort": "incident_s; DROP TABLE cases"}, "not a sort key"),
        ({"sort": "summary"}, "not a sort key"),
        ({"states": ["open"]}, "unknown state"),
        ({"rules": ["shoplifting"]}, "unknown rule"),
        ({"categories": ["fraud"]}, "unknown category"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"min_confidence": float("nan")}, "finite"),
    ],
)
def test_queue_refuses_bad_arguments(
    stocked: CaseBook, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        stocked.queue(**kwargs)
    assert len(stocked.queue()) == 5


def test_a_filter_must_be_a_list(stocked: CaseBook) -> None:
    with pytest.raises(TypeError, match="list"):
        stocked.queue(stores="s1")


# --- persistence ---


def test_cases_survive_reopening_the_file(durable_db: str) -> None:
    path = durable_db
    with CaseBook(path) as book:
        case, _ = book.report(finding(evidence=media()))
        drive(book, case.case_id, ["in_review"])
        book.add_note(case.case_id, "ana", "checked the gate", T0 + 20)
        before = book.get(case.case_id)
    with CaseBook(path) as book:
        assert book.get(case.case_id) == before
        again, created = book.report(finding(evidence=media()))
        assert not created and again == before
        merged, created = book.report(finding(source_event_ids=["e2"]))
        assert not created and merged.case_id == case.case_id
        assert [c.case_id for c in book.queue(states=["in_review"])] == [case.case_id]


def test_other_threads_read_their_own_connection(durable_db: str) -> None:
    with CaseBook(durable_db) as book:
        case, _ = book.report(finding())
        seen: list[Any] = []
        reader = threading.Thread(target=lambda: seen.append(book.get(case.case_id)))
        reader.start()
        reader.join()
        assert seen == [book.get(case.case_id)]


def test_a_closed_book_says_so(durable_db: str) -> None:
    book = CaseBook(durable_db)
    book.close()
    with pytest.raises(RuntimeError, match="closed"):
        book.queue()


# --- disputes ---


def dispute(book: CaseBook, sku: str = "SKU001", reason: str = "never took it") -> Any:
    return book.open_dispute(
        "s1", "sess-1", "rcpt-1", sku, reason=reason, time_s=T0 + 900, shopper_ref="shopper-7"
    )


def test_a_line_is_disputed_once(book: CaseBook) -> None:
    case, created = dispute(book)
    again, created_again = dispute(book, reason="asking again")
    other, created_other = dispute(book, sku="SKU002")
    assert created and not created_again and again.case_id == case.case_id
    assert created_other and other.case_id != case.case_id
    assert (case.rule, case.category, case.receipt_id, case.shopper_ref) == (
        "dispute",
        "dispute",
        "rcpt-1",
        "shopper-7",
    )
    line = case.evidence.timeline[0]
    assert line.kind == "receipt_line" and line.source_event_id == "rcpt-1"
    assert "never took it" in line.text


def test_disputes_and_theft_cases_stay_apart(book: CaseBook) -> None:
    theft, _ = book.report(finding(incident_s=T0 + 890))
    disputed, created = dispute(book)
    later, created_later = book.report(finding(incident_s=T0 + 905, source_event_ids=["e8"]))
    assert created and disputed.case_id != theft.case_id
    assert not created_later and later.case_id == theft.case_id


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001, "nul\x00here"])
def test_a_dispute_needs_a_plain_reason(book: CaseBook, reason: str) -> None:
    with pytest.raises(ValidationError):
        dispute(book, reason=reason)
    assert book.queue() == []


# --- evidence retention ---


def test_purge_drops_media_of_old_resolved_cases(book: CaseBook, events: list[CaseEvent]) -> None:
    old, _ = book.report(finding(evidence=media()))
    drive(book, old.case_id, PATH_TO["resolved"], t_s=T0 + 10)
    late, _ = book.report(finding(session_id="sess-2", source_event_ids=["e2"], evidence=media()))
    drive(book, late.case_id, PATH_TO["resolved"], t_s=T0 + 5000)
    open_case, _ = book.report(
        finding(session_id="sess-3", source_event_ids=["e3"], evidence=media())
    )
    before = len(events)
    assert book.purge_evidence(T0 + 1000, time_s=T0 + 9000) == 2
    purged = book.get(old.case_id)
    assert purged is not None and purged.evidence.tracks == [] and purged.evidence.snapshots == []
    assert len(purged.evidence.timeline) == 1 and purged.state == "resolved"
    assert purged.history[-1].action == "evidence_purged" and len(purged.history) == 5
    for kept in (late.case_id, open_case.case_id):
        record = book.get(kept)
        assert record is not None and len(record.evidence.snapshots) == 1
    assert len(events) == before + 1 and events[-1].case_id == old.case_id
    assert book.purge_evidence(T0 + 1000) == 0 and len(events) == before + 1


# --- validated input ---

LINE = {"time_s": T0, "source_event_id": "e", "kind": "k", "text": ""}
CLIMBING_SNAPSHOT = {"camera_id": "c", "time_s": T0, "image_path": "../etc/x.jpg"}
BACKWARDS_TRACK = {"track_id": "t", "points": [(T0 + 1, 0, 0), (T0, 0, 0)]}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"session_id": None}, "names no subject"),
        ({"rule": "dispute"}, "go together"),
        ({"category": "dispute"}, "go together"),
        ({"summary": "bell\x07"}, "control character"),
        ({"summary": " "}, "at least 1"),
        ({"detected_s": T0 - 1}, "before incident_s"),
        ({"incident_s": 12.0}, "greater than or equal"),
        ({"confidence": 1.5}, "less than or equal"),
        ({"source_event_ids": []}, "at least 1"),
        ({"epc_hex": "zz"}, "pattern"),
        ({"amount_cents": -1}, "greater than or equal"),
        ({"evidence": {"timeline": [LINE] * 51}}, "one finding may bring"),
        ({"evidence": {"snapshots": [CLIMBING_SNAPSHOT]}}, "climbs out"),
        ({"evidence": {"tracks": [BACKWARDS_TRACK]}}, "oldest first"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_findings_are_validated(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        finding(**over)


@pytest.mark.parametrize("window", [0.0, -5.0, float("inf"), float("nan")])
def test_merge_window_must_be_positive(window: float) -> None:
    with pytest.raises(ValueError, match="merge_window_s"):
        CaseBook(":memory:", merge_window_s=window)
