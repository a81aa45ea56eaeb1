"""Sessions: binding a scan-in to the track born at the gate, and matching exits."""

from __future__ import annotations

import pytest

from checkout.sessions import SessionBook, session_id_for
from checkout.settings import BrainSettings
from checkout.tracks import TrackHistory
from iot.payloads import GateEntry, GateExit

T0 = 1_800_000_000.0
GATE = (1.8, 0.6)


@pytest.fixture
def book(store) -> SessionBook:
    return SessionBook(store, TrackHistory(), BrainSettings())


def entry(token: str, t: float) -> GateEntry:
    return GateEntry(id=f"in-{token}", event_time_s=T0 + t, device_id="gate-in", token=token)


def exit_(t: float, token: str | None = None) -> GateExit:
    return GateExit(id=f"out-{t}", event_time_s=T0 + t, device_id="gate-out", token=token)


@pytest.mark.parametrize(
    ("case", "born_t", "born_xy", "bound"),
    [
        ("born 1 s before the scan", -1.0, GATE, True),
        ("born 2.9 s before", -2.9, GATE, True),
        ("born 4 s before", -4.0, GATE, False),
        ("born far from the gate", -0.5, (8.0, 6.0), False),
        ("born 1.4 m from the gate centre", -0.5, (1.8, 1.7), True),
    ],
)
def test_binding_a_track_seen_before_the_scan(book, case, born_t, born_xy, bound) -> None:
    book.tracks.add(T0 + born_t, "t1", *born_xy)
    record = book.open(entry("a", 0.0))
    assert book.bind_session(record) is bound, case
    assert record.track_id == ("t1" if bound else None)
    assert record.state == ("bound" if bound else "open")


def test_binding_a_track_that_appears_after_the_scan(book) -> None:
    record = book.open(entry("a", 0.0))
    assert not book.bind_session(record)
    book.tracks.add(T0 + 1.0, "t1", *GATE)
    assert book.bind_track("t1") is record and record.track_id == "t1"
    book.tracks.add(T0 + 1.5, "t2", *GATE)
    assert book.bind_track("t2") is None  # nobody waiting any more


def test_two_shoppers_entering_close_together_bind_by_time(book) -> None:
    a = book.open(entry("a", 0.0))
    b = book.open(entry("b", 2.0))
    book.tracks.add(T0 + 2.2, "tb", *GATE)
    book.tracks.add(T0 + 0.3, "ta", 1.7, 0.7)
    assert book.bind_track("tb") is b
    assert book.bind_track("ta") is a


def test_an_exit_closes_the_session_whose_track_is_at_the_gate(book) -> None:
    for token, tid, xy in (("a", "ta", (14.0, 0.8)), ("b", "tb", (10.0, 5.0))):
        book.tracks.add(T0 - 0.5, tid, *GATE)
        book.bind_session(book.open(entry(token, 0.0)))
        book.tracks.add(T0 + 30.0, tid, *xy)
    record, why = book.match_exit(exit_(30.1))
    assert record is not None and record.session_id == session_id_for("a"), why
    book.close(record, exit_(30.1))
    again, why = book.match_exit(exit_(30.2))
    assert again is None and "no bound track" in why


def test_an_exit_with_a_token_closes_that_session(book) -> None:
    record = book.open(entry("a", 0.0))
    got, _ = book.match_exit(exit_(5.0, token="a"))
    assert got is record
    book.close(record, exit_(5.0, token="a"))
    got, why = book.match_exit(exit_(6.0, token="a"))
    assert got is None and "already closed" in why


def _bound(book: SessionBook, token: str, tid: str) -> object:
    book.tracks.add(T0 - 0.5, tid, *GATE)
    record = book.open(entry(token, 0.0))
    assert book.bind_session(record)
    return record


@pytest.mark.parametrize(
    ("case", "gap_s", "new_xy", "continues"),
    [
        ("reappears 1 s later, 0.8 m on", 1.0, (5.8, 3.0), True),
        ("reappears 4 s later, 6 m on (walked 1.5 m/s)", 4.0, (11.0, 3.0), True),
        ("reappears 1 s later, 5 m away", 1.0, (10.0, 3.0), False),
        ("reappears 12 s later", 12.0, (5.2, 3.0), False),
    ],
)
def test_a_new_track_continues_a_lost_one_nearby(book, case, gap_s, new_xy, continues) -> None:
    record = _bound(book, "a", "ta")
    book.tracks.add(T0 + 10.0, "ta", 5.0, 3.0)
    book.tracks.add(T0 + 10.0 + gap_s, "tz", *new_xy)
    got = book.continue_track("tz")
    assert (got is record) is continues, case
    # the successor's samples are filed under the visit's own track id
    assert (book.tracks.last_sample("ta")[0] == T0 + 10.0 + gap_s) is continues
    assert record.review_reasons == []


def test_a_track_still_being_followed_is_not_continued(book) -> None:
    _bound(book, "a", "ta")
    book.tracks.add(T0 + 10.0, "ta", 5.0, 3.0)
    book.tracks.add(T0 + 10.0, "tz", 5.5, 3.0)  # appears while ta is still reported
    book.tracks.add(T0 + 11.0, "ta", 5.1, 3.0)
    assert book.continue_track("tz") is None


def test_a_track_born_in_the_same_batch_as_a_live_one_is_not_its_continuation(book) -> None:
    # both in one batch: two people (a companion stepping out of the other's box)
    _bound(book, "a", "ta")
    book.tracks.add(T0 + 10.0, "ta", 5.0, 3.0)
    book.tracks.add(T0 + 10.0, "tz", 5.8, 3.0)
    assert book.continue_track("tz") is None
    assert book.tracks.first_seen("tz") is not None  # still its own track


def _walked_in_as_one(book: SessionBook) -> tuple[object, object]:
    """a and b scan in a second apart; the cameras see one person: only a is bound."""
    a = _bound(book, "a", "ta")
    b = book.open(entry("b", 1.0))
    assert not book.bind_session(b)
    book.tracks.add(T0 + 20.0, "ta", 6.0, 3.0)
    return a, b


def test_a_visit_without_a_track_binds_late_to_a_new_track_beside_its_companion(book) -> None:
    a, b = _walked_in_as_one(book)
    book.tracks.add(T0 + 20.0, "tb", 6.7, 3.0)  # they part: a new track beside a
    assert book.continue_track("tb") is None
    assert book.bind_late("tb") is b
    assert b.track_id == "tb" and "bound later" in b.review_reasons[-1]
    assert a.track_id == "ta" and not a.review_reasons


def test_a_new_track_away_from_the_companion_is_not_bound_late(book) -> None:
    _, b = _walked_in_as_one(book)
    book.tracks.add(T0 + 20.0, "tq", 12.0, 8.0)  # across the store: someone lost, come back
    assert book.bind_late("tq") is None and b.state == "open"
    book.tracks.add(T0 + 90.0, "ta", 6.0, 3.0)
    book.tracks.add(T0 + 90.0, "tr", 6.5, 3.0)  # beside a, but long after b's scan-in
    assert book.bind_late("tr") is None


def test_an_ambiguous_continuation_is_flagged_for_review(book) -> None:
    a = _bound(book, "a", "ta")
    b = _bound(book, "b", "tb")
    book.tracks.add(T0 + 10.0, "ta", 5.0, 3.0)
    book.tracks.add(T0 + 10.0, "tb", 5.0, 3.4)
    book.tracks.add(T0 + 11.0, "tz", 5.0, 3.2)  # exactly between the two lost tracks
    got = book.continue_track("tz")
    assert got in (a, b)
    assert len(got.review_reasons) == 1 and "could as well be" in got.review_reasons[0]


def test_an_exit_closes_a_visit_whose_track_was_lost_at_the_gate(book) -> None:
    record = _bound(book, "a", "ta")
    book.tracks.add(T0 + 30.0, "ta", 14.0, 0.8)  # last seen at the exit line
    got, why = book.match_exit(exit_(33.0))
    assert got is record and "lost 3.0 s earlier" in why
    assert "lost 3.0 s before" in record.review_reasons[0]
    book.tracks.add(T0 + 44.0, "tz", 3.0, 3.0)  # somebody else, still inside and tracked
    other = _bound(book, "z", "tz")
    book.tracks.add(T0 + 45.0, "tz", 3.0, 3.0)
    got, why = book.match_exit(exit_(45.0))  # too long after to be a loss at the gate
    assert got is record and "lost" in why  # but no other visit could have left
    assert other.state == "bound" and not other.review_reasons


def test_an_exit_nothing_explains_closes_the_lost_visit_nearest_the_walker(book) -> None:
    near = _bound(book, "a", "ta")
    far = _bound(book, "b", "tb")
    book.tracks.add(T0 + 20.0, "ta", 10.0, 3.0)  # both lost mid-store, 40 s ago
    book.tracks.add(T0 + 20.0, "tb", 3.0, 8.0)
    book.tracks.add(T0 + 21.0, "tw", 10.5, 3.0)  # a new track near where a was lost...
    book.tracks.add(T0 + 60.0, "tw", 14.0, 0.8)  # ...walks out
    got, _ = book.match_exit(exit_(60.0))
    assert got is near and "no track explained" in near.review_reasons[-1]
    assert not far.review_reasons


def test_an_exit_is_never_pinned_on_a_visit_still_tracked_inside(book) -> None:
    record = _bound(book, "a", "ta")
    book.tracks.add(T0 + 59.9, "ta", 5.0, 5.0)
    got, why = book.match_exit(exit_(60.0))
    assert got is None and "no bound track" in why
    assert record.state == "bound"


def test_an_exit_no_tracked_visit_explains_closes_the_visit_that_never_had_a_track(book) -> None:
    # two shoppers walked in as one box: only the first scan-in got the track
    book.tracks.add(T0 + 0.5, "ta", *GATE)
    first = book.open(entry("a", 1.0))
    assert book.bind_session(first)
    second = book.open(entry("b", 1.5))
    assert not book.bind_session(second) and second.state == "open"
    later = book.open(entry("c", 50.0))  # scanned in after the exit: cannot have left
    book.tracks.add(T0 + 39.9, "ta", 5.0, 5.0)  # a's shopper still inside
    got, why = book.match_exit(exit_(40.0))
    assert got is second and "never had a track" in why
    assert "no track was ever bound" in second.review_reasons[-1]
    assert first.state == "bound" and later.state == "open" and not later.review_reasons


def test_a_track_born_at_the_entry_is_a_new_visitor_not_a_continuation(book) -> None:
    record = _bound(book, "a", "ta")
    book.tracks.add(T0 + 10.0, "ta", GATE[0] + 0.3, GATE[1] + 0.5)  # still near the entry
    book.tracks.add(T0 + 10.2, "tb", *GATE)  # the next shopper, before scanning in
    assert book.continue_track("tb") is None
    assert record.track_id == "ta" and "tb" in book.tracks
    assert book.bind_session(book.open(entry("b", 10.5)))
