"""Track history: windows, first sightings, pruning."""

from __future__ import annotations

import pytest

from checkout.tracks import TrackHistory, segment_distance_m
from iot.payloads import TrackBatch, TrackPoint

T0 = 1_800_000_000.0


def batch(t: float, points: dict[str, tuple[float, float]], ended=()) -> TrackBatch:
    return TrackBatch(
        id=f"b{t}",
        event_time_s=t,
        device_id="positioning",
        tracks=[TrackPoint(track_id=k, x_m=x, y_m=y) for k, (x, y) in points.items()],
        ended=list(ended),
    )


def test_observe_reports_new_tracks_and_first_sightings() -> None:
    h = TrackHistory()
    assert h.observe(batch(T0, {"a": (1.0, 1.0)})) == ["a"]
    assert h.observe(batch(T0 + 0.2, {"a": (1.2, 1.0), "b": (5.0, 5.0)})) == ["b"]
    h.observe(batch(T0 + 0.4, {"b": (5.1, 5.0)}, ended=["a"]))
    first = h.first_seen("a")
    assert first is not None and (first.time_s, first.x_m) == (T0, 1.0)
    assert h.ended_s("a") == T0 + 0.4 and h.ended_s("b") is None


def test_mean_position_over_a_window_and_gap_fallback() -> None:
    h = TrackHistory()
    for i, x in enumerate([0.0, 1.0, 2.0, 3.0]):
        h.add(T0 + i, "a", x, 0.0)
    assert h.mean_position("a", T0 + 1, T0 + 2) == pytest.approx((1.5, 0.0))
    assert h.mean_position("a", T0 + 10, T0 + 11) is None
    assert h.mean_position("a", T0 + 3.5, T0 + 4, gap_s=1.0) == pytest.approx((3.0, 0.0))
    assert h.position_at("a", T0 + 1.4, gap_s=0.5) == pytest.approx((1.0, 0.0))
    assert h.mean_position("ghost", T0, T0 + 1) is None


def test_late_samples_are_kept_in_time_order() -> None:
    h = TrackHistory()
    h.add(T0 + 1, "a", 1.0, 0.0)
    h.add(T0, "a", 0.0, 0.0)
    assert [s[0] for s in h.window("a", T0 - 1, T0 + 2)] == [T0, T0 + 1]
    first = h.first_seen("a")
    assert first is not None and first.time_s == T0


def test_memory_stays_bounded_over_a_day() -> None:
    h = TrackHistory(retention_s=60.0)
    t = T0
    for minute in range(24 * 60):  # a new shopper every minute, each seen for 5 min at 1 Hz
        for s in range(60):
            t = T0 + minute * 60 + s
            for k in range(5):
                h.add(t, f"m{minute - k}", float(s % 10), float(k))
        h.prune(t)
    assert len(h) <= 6
    assert h.sample_count() <= 6 * 61


def test_constructor_errors_quote_the_value() -> None:
    with pytest.raises(ValueError, match="-1"):
        TrackHistory(retention_s=-1)


@pytest.mark.parametrize(
    ("point", "expected"),
    [((1.0, 0.0), 0.0), ((1.0, 2.0), 2.0), ((-3.0, 0.0), 3.0), ((5.0, 4.0), 5.0)],
)
def test_segment_distance(point, expected) -> None:
    assert segment_distance_m(point, ((0.0, 0.0), (2.0, 0.0))) == pytest.approx(expected)


def test_stitching_files_a_successor_under_the_lost_track() -> None:
    h = TrackHistory()
    h.add(T0 + 10.0, "old", 1.0, 1.0)
    h.add(T0 + 12.0, "new", 2.0, 1.0)
    h.stitch("new", "old")
    assert "new" not in h and h.last_sample("old") == (T0 + 12.0, 2.0, 1.0)
    batch = TrackBatch(
        id="b1",
        event_time_s=T0 + 12.2,
        device_id="cam",
        tracks=[TrackPoint(track_id="new", x_m=2.1, y_m=1.0)],
        ended=["new"],
    )
    assert h.observe(batch) == []  # a stitched id is not new again
    assert h.last_sample("old") == (T0 + 12.2, 2.1, 1.0) and h.ended_s("old") == T0 + 12.2
    with pytest.raises(KeyError):
        h.stitch("x", "unknown")


def test_two_live_pieces_of_one_series_keep_the_one_that_continues_it() -> None:
    h = TrackHistory()
    h.observe(batch(T0, {"old": (1.0, 1.0)}))
    h.add(T0 + 1.0, "new", 1.1, 1.0)
    h.stitch("new", "old")
    # the lost track is back, far away: one series cannot be two places at once
    h.observe(batch(T0 + 1.2, {"old": (5.0, 5.0), "new": (1.2, 1.0)}))
    assert h.last_sample("old") == (T0 + 1.2, 1.2, 1.0)
    # a stitched piece that loses is its own track from then on
    h.observe(batch(T0 + 1.4, {"old": (1.3, 1.0), "new": (5.0, 5.0)}))
    assert h.last_sample("old") == (T0 + 1.4, 1.3, 1.0)
    assert h.last_sample("new") == (T0 + 1.4, 5.0, 5.0) and h.canonical("new") == "new"


def test_refiled_track_feeds_the_other_series_from_then_on() -> None:
    h = TrackHistory()
    h.observe(batch(T0, {"a": (1.0, 1.0), "b": (3.0, 1.0)}))
    h.refile("a", "b")  # track a follows b's shopper now
    h.refile("b", "a~", create=True)  # and b is let go
    h.observe(batch(T0 + 0.2, {"a": (2.9, 1.0), "b": (1.1, 1.0)}))
    assert h.last_sample("b") == (T0 + 0.2, 2.9, 1.0)
    assert h.last_sample("a") == (T0, 1.0, 1.0)  # a's series keeps its past, gets no more
    assert h.last_sample("a~") == (T0 + 0.2, 1.1, 1.0)
    with pytest.raises(KeyError):
        h.refile("a", "unknown")


def test_looks_are_kept_with_the_piece_that_sent_them_and_pruned() -> None:
    h = TrackHistory(retention_s=10.0)
    look = [0.6, 0.8, 0.0, 0.0]
    h.observe(
        TrackBatch(
            id="l1",
            event_time_s=T0,
            device_id="cam",
            tracks=[TrackPoint(track_id="a", x_m=1.0, y_m=1.0, look=look)],
        )
    )
    ((t, piece, v),) = h.looks("a", T0 - 1.0, T0 + 1.0)
    assert (t, piece) == (T0, "a") and v.tolist() == pytest.approx(look)
    h.observe(batch(T0 + 20.0, {"a": (1.0, 1.0)}))
    h.prune(T0 + 20.0)
    assert h.looks("a", T0 - 1.0, T0 + 30.0) == []


def test_the_series_own_track_back_where_its_person_was_wins_over_a_stitched_one() -> None:
    # the floor lost "own" for a moment; a stitched track nearby walks off on
    # someone else while "own" comes back (re-identified) where it was lost
    h = TrackHistory()
    h.observe(batch(T0, {"own": (1.0, 1.0)}))
    h.add(T0 + 1.0, "other", 1.5, 1.0)
    h.stitch("other", "own")
    h.observe(batch(T0 + 2.0, {"other": (2.5, 1.0)}))
    h.observe(batch(T0 + 2.2, {"own": (1.1, 1.0), "other": (2.7, 1.0)}))
    assert h.last_sample("own") == (T0 + 2.2, 1.1, 1.0)
    assert h.canonical("other") == "other" and h.last_sample("other") == (T0 + 2.2, 2.7, 1.0)
