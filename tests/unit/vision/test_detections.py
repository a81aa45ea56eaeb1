"""The Detections type: validation errors name what was expected, selection keeps arrays aligned."""

from __future__ import annotations

import numpy as np
import pytest

from vision.detections import Detections


def _f32(*rows: list[float]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


GOOD_BOX = _f32([0, 0, 10, 10])


@pytest.mark.parametrize(
    ("xyxy", "score", "class_id", "error", "message"),
    [
        (GOOD_BOX, np.array([0.5], np.float32), np.array([1], np.int32), None, None),
        (
            np.zeros((2, 3), np.float32),
            np.zeros(2, np.float32),
            np.zeros(2, np.int32),
            ValueError,
            r"xyxy must have shape \(N, 4\), got \(2, 3\)",
        ),
        (
            GOOD_BOX,
            np.zeros(2, np.float32),
            np.zeros(1, np.int32),
            ValueError,
            r"score must have shape \(1,\), got \(2,\)",
        ),
        (
            GOOD_BOX,
            np.zeros(1, np.float32),
            np.zeros((1, 1), np.int32),
            ValueError,
            r"class_id must have shape \(1,\), got \(1, 1\)",
        ),
        (
            GOOD_BOX.astype(np.float64),
            np.zeros(1, np.float32),
            np.zeros(1, np.int32),
            ValueError,
            "xyxy must be float32, got float64",
        ),
        (
            GOOD_BOX,
            np.zeros(1, np.float32),
            np.zeros(1, np.int64),
            ValueError,
            "class_id must be int32, got int64",
        ),
        (
            [[0, 0, 1, 1]],
            np.zeros(1, np.float32),
            np.zeros(1, np.int32),
            TypeError,
            "must be a numpy array, got list",
        ),
        (
            _f32([5, 0, 1, 10]),
            np.zeros(1, np.float32),
            np.zeros(1, np.int32),
            ValueError,
            "row 0 has right < left",
        ),
        (
            _f32([0, 0, np.nan, 10]),
            np.zeros(1, np.float32),
            np.zeros(1, np.int32),
            ValueError,
            "row 0 is not finite",
        ),
    ],
)
def test_validation(xyxy, score, class_id, error, message) -> None:
    if error is None:
        assert len(Detections(xyxy, score, class_id)) == 1
    else:
        with pytest.raises(error, match=message):
            Detections(xyxy, score, class_id)


def test_mask_keeps_arrays_aligned() -> None:
    dets = Detections.from_arrays(
        [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], [0.1, 0.9, 0.5], [0, 1, 2]
    )
    kept = dets[dets.score > 0.3]
    assert kept.class_id.tolist() == [1, 2]
    assert kept.xyxy[:, 0].tolist() == [2.0, 4.0]
    assert len(dets.with_class([2, 7])) == 1


def test_mask_of_wrong_length_is_refused() -> None:
    dets = Detections.from_arrays([[0, 0, 1, 1]], [0.1], [0])
    with pytest.raises(ValueError, match=r"shape \(1,\), got \(2,\)"):
        dets[np.array([True, False])]


def test_empty_and_concat() -> None:
    empty = Detections.empty()
    assert len(empty) == 0 and empty.xyxy.dtype == np.float32
    one = Detections.from_arrays([[0, 0, 2, 3]], [0.4], [3])
    both = Detections.concat([one, empty, one])
    assert len(both) == 2
    assert both.area.tolist() == [6.0, 6.0]
    assert len(Detections.concat([])) == 0


def test_from_mot_rows_converts_width_height_and_clips_scores() -> None:
    dets = Detections.from_mot_rows([[1, -1, 10, 20, 5, 6, 37.5, -1, -1, -1]], class_id=0)
    assert dets.xyxy.tolist() == [[10.0, 20.0, 15.0, 26.0]]
    assert dets.score.tolist() == [1.0]
    with pytest.raises(ValueError, match=r"shape \(N, >=7\)"):
        Detections.from_mot_rows([[1, 2, 3]])
