"""AP50 / mAP50 on hand-made cases whose value can be worked out on paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.detections import Detections
from vision.metrics import (
    DetectionEvaluator,
    average_precision,
    match_detections,
    read_yolo_labels,
)


def _boxes(n: int, offset: float = 0.0) -> np.ndarray:
    """n disjoint 10x10 boxes along x."""
    x = np.arange(n, dtype=np.float32) * 20 + offset
    return np.stack([x, np.zeros(n), x + 10, np.full(n, 10.0)], axis=1).astype(np.float32)


def _dets(xyxy: np.ndarray, scores: list[float], cls: int | list[int] = 0) -> Detections:
    n = len(xyxy)
    ids = np.full(n, cls, np.int32) if isinstance(cls, int) else np.asarray(cls, np.int32)
    return Detections(np.asarray(xyxy, np.float32), np.asarray(scores, np.float32), ids)


def test_perfect_detector_scores_one() -> None:
    ev = DetectionEvaluator()
    for _ in range(3):
        gt = _boxes(4)
        ev.add(_dets(gt, [0.9, 0.8, 0.7, 0.6]), gt, np.zeros(4, int))
    assert ev.map() == pytest.approx(1.0)


def test_half_the_boxes_missed_gives_half() -> None:
    gt = _boxes(4)
    ev = DetectionEvaluator()
    ev.add(_dets(gt[:2], [0.9, 0.8]), gt, np.zeros(4, int))
    # precision 1 up to recall 0.5, nothing beyond: area 0.5
    assert ev.map() == pytest.approx(0.5)


def test_duplicate_detection_is_a_false_positive() -> None:
    gt = _boxes(1)
    flags = match_detections(np.concatenate([gt, gt + 1]), np.array([0.9, 0.8]), gt, 0.5)
    assert flags.tolist() == [True, False]
    # duplicate ranked ABOVE the true one: precision 1/2 at full recall
    ev = DetectionEvaluator()
    ev.add(_dets(np.concatenate([gt + 1, gt]), [0.95, 0.5]), gt, np.zeros(1, int))
    # the best-scored one claims the box (IoU 0.68), the second is the duplicate
    assert ev.map() == pytest.approx(1.0)
    ev2 = DetectionEvaluator()
    far = gt + 100
    ev2.add(_dets(np.concatenate([far, gt]), [0.95, 0.5]), gt, np.zeros(1, int))
    assert ev2.map() == pytest.approx(0.5)


def test_interleaved_ranking_known_value() -> None:
    # ranking TP, FP, TP over 2 gt: P=1 at R=.5, P=2/3 at R=1 -> AP = .5 + .5*2/3
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_below_iou_threshold_is_not_a_match() -> None:
    gt = _boxes(1)
    shifted = gt + np.array([6, 0, 6, 0], np.float32)  # IoU 4/16 = 0.25
    assert match_detections(shifted, np.array([0.9]), gt, 0.5).tolist() == [False]
    assert match_detections(shifted, np.array([0.9]), gt, 0.2).tolist() == [True]


def test_map_is_mean_over_classes() -> None:
    gt = _boxes(2)
    ev = DetectionEvaluator()
    ev.add(_dets(gt[:1], [0.9], cls=[0]), gt, np.array([0, 1]))  # class 0 found, 1 missed
    per = {r.class_id: r.ap for r in ev.per_class()}
    assert per == {0: pytest.approx(1.0), 1: 0.0}
    assert ev.map() == pytest.approx(0.5)


def test_no_ground_truth_and_no_detections() -> None:
    assert average_precision(np.zeros(0), np.zeros(0, bool), 3) == 0.0
    assert DetectionEvaluator().map() == 0.0
    with pytest.raises(ValueError, match="one class id per box"):
        DetectionEvaluator().add(Detections.empty(), _boxes(2), np.zeros(1, int))


def test_read_yolo_labels(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("0 0.5 0.5 0.25 0.5\n")
    xyxy, cls = read_yolo_labels(path, 640, 480)
    assert cls.tolist() == [0]
    assert xyxy.tolist() == [[240.0, 120.0, 400.0, 360.0]]
    empty, _ = read_yolo_labels(tmp_path / "missing.txt", 640, 480)
    assert empty.shape == (0, 4)
    path.write_text("0 0.5 0.5\n")
    with pytest.raises(ValueError, match="5 numbers per line"):
        read_yolo_labels(path, 640, 480)
