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
