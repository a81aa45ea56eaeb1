"""Tracker lifecycle, Kalman prediction and two-stage association, on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from vision.detections import Detections
from vision.tracking import KalmanBoxFilter, Tracker, TrackerSettings, TrackState


def _dets(*boxes: tuple[float, float, float, float, float]) -> Detections:
    """Detections from (left, top, right, bottom, score) tuples."""
    if not boxes:
        return Detections.empty()
    arr = np.array(boxes, dtype=np.float64)
    return Detections.from_arrays(arr[:, :4], arr[:, 4], np.zeros(len(arr)))


def _walker(frame: int, x0: float = 100.0, speed_px: float = 4.0, score: float = 0.95):
    """A 40 x 100 px box moving right at constant speed."""
    left = x0 + speed_px * frame
    return (left, 50.0, left + 40.0, 150.0, score)


def test_kalman_learns_constant_velocity() -> None:
    kf = KalmanBoxFilter(np.array(_walker(0)[:4]), 1 / 20, 1 / 160)
    for f in range(1, 15):
        kf.predict()
        kf.update(np.array(_walker(f)[:4]))
    kf.predict()
    # After 14 observations the prediction for frame 15 sits on the true box.
    assert kf.xyxy[0] == pytest.approx(_walker(15)[0], abs=1.0)
    assert kf.x[4] == pytest.approx(4.0, abs=0.3)  # cx velocity in px per frame


@pytest.mark.parametrize(
    ("gap_frames", "max_age_frames", "same_id"),
    [
        (1, 10, True),
        (5, 10, True),
        (9, 10, True),
        (12, 10, False),  # longer than max_age: the old track is gone
        (3, 2, False),
    ],
)
def test_track_survives_gap_below_max_age(
    gap_frames: int, max_age_frames: int, same_id: bool
) -> None:
    tracker = Tracker(TrackerSettings(min_hits=2, max_age_frames=max_age_frames))
    ids_before: set[int] = set()
    frame = 0
    for frame in range(10):
        ids_before = {t.track_id for t in tracker.update(_dets(_walker(frame)))}
    for _ in range(gap_frames):
        frame += 1
        assert tracker.update(_dets()) == []  # lost tracks are not reported
    reported: set[int] = set()
    for _ in range(3):
        frame += 1
        reported = {t.track_id for t in tracker.update(_dets(_walker(frame)))}
    assert (reported == ids_before) is same_id
    assert len(reported) == 1


def test_lifecycle_tentative_confirmed_lost_removed() -> None:
    tracker = Tracker(TrackerSettings(min_hits=3, max_age_frames=2))
    for _ in range(4):  # the stream's first min_hits frames report at once, as SORT does
        tracker.update(_dets())
    states = []
    for f in range(4, 7):
        out = tracker.update(_dets(_walker(f)))
        states.append([t.state for t in tracker.tracks])
        assert bool(out) is (f == 6)  # reported from the third hit on
    assert states == [[TrackState.TENTATIVE], [TrackState.TENTATIVE], [TrackState.CONFIRMED]]
    tracker.update(_dets())
    assert [t.state for t in tracker.tracks] == [TrackState.LOST]
    for _ in range(2):
        tracker.update(_dets())
    assert tracker.tracks == []  # unseen for more than max_age_frames


def test_tentative_track_dies_on_first_miss() -> None:
    tracker = Tracker(TrackerSettings(min_hits=3))
    for _ in range(3):
        tracker.update(_dets())
    tracker.update(_dets(_walker(0)))
    tracker.update(_dets())
    assert tracker.tracks == []


def test_low_score_detection_keeps_confirmed_track_alive() -> None:
    settings = TrackerSettings(min_hits=1, high_score=0.8, low_score=0.3, max_age_frames=1)
    tracker = Tracker(settings)
    for f in range(5):
        tracker.update(_dets(_walker(f)))
    # Five weak detections: second stage keeps the track, and they start nothing new.
    for f in range(5, 10):
        out = tracker.update(_dets(_walker(f, score=0.5)))
        assert [t.track_id for t in out] == [1]
    assert tracker.update(_dets(_walker(10, score=0.2))) == []  # below low_score: ignored


def test_weak_detection_does_not_start_a_track() -> None:
    tracker = Tracker(TrackerSettings(min_hits=1, new_track_score=0.9))
    assert tracker.update(_dets(_walker(0, score=0.85))) == []
    assert [t.track_id for t in tracker.update(_dets(_walker(1, score=0.95)))] == [1]


def test_two_crossing_walkers_keep_their_ids() -> None:
    tracker = Tracker(TrackerSettings(min_hits=1))
    first: dict[int, float] = {}
    for f in range(30):
        a = _walker(f, x0=0.0, speed_px=6.0)
        b = _walker(f, x0=300.0, speed_px=-6.0)
        b = (b[0], b[1] + 120.0, b[2], b[3] + 120.0, b[4])  # a lane below: no overlap
        out = tracker.update(_dets(a, b))
        for t in out:
            first.setdefault(t.track_id, t.xyxy[1])
            assert t.xyxy[1] == pytest.approx(first[t.track_id], abs=5.0)
    assert sorted(first) == [1, 2]


def test_frame_rate_scales_max_age() -> None:
    settings = TrackerSettings(max_age_frames=60, frame_rate_reference_hz=30.0)
    assert Tracker(settings, frame_rate_hz=15.0).max_age_frames == 30
    assert Tracker(settings).max_age_frames == 60


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low_score": 0.9, "high_score": 0.5}, "low_score"),
        ({"min_hits": 0}, "min_hits"),
        ({"match_iou": 0.0}, "match_iou"),
        ({"max_age": 3}, "max_age"),  # unknown key: extra="forbid"
    ],
)
def test_settings_reject_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrackerSettings(**kwargs)


def test_tracker_rejects_non_positive_frame_rate() -> None:
    with pytest.raises(ValueError, match="frame_rate_hz"):
        Tracker(frame_rate_hz=0.0)
