"""Detection recall on a tiny synthetic MOT sequence, with a fake detector that replays boxes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.detections import Detections
from vision.recall import detection_recall, match_detections

# frame, id, left, top, width, height, conf, class, visibility
GT_ROWS = [
    [1, 1, 10, 10, 20, 40, 1, 1, 1.0],
    [1, 2, 100, 10, 20, 40, 1, 1, 0.1],  # barely visible
    [1, 3, 200, 10, 20, 40, 0, 7, 1.0],  # ignored entry (a static person)
    [2, 1, 12, 10, 20, 40, 1, 1, 1.0],
    [2, 2, 102, 10, 20, 40, 1, 1, 1.0],
    [3, 1, 14, 10, 20, 40, 1, 1, 1.0],  # frame 3 has no image: not scored
]


class ReplayDetector:
    """Returns the prepared detections for each call in turn, ignoring the pixels."""

    def __init__(self, per_call: list[Detections]) -> None:
        self.per_call = list(per_call)
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        self.shapes.extend(f.shape for f in frames)
        return [self.per_call.pop(0) for _ in frames]


def _sequence(tmp_path: Path, frames: int = 2) -> Path:
    seq = tmp_path / "SEQ-01"
    (seq / "gt").mkdir(parents=True)
    (seq / "img1").mkdir()
    (seq / "gt" / "gt.txt").write_text("\n".join(",".join(map(str, r)) for r in GT_ROWS))
    for number in range(1, frames + 1):
        cv2.imwrite(str(seq / "img1" / f"{number:06d}.jpg"), np.zeros((60, 320, 3), np.uint8))
    return seq


def _dets(boxes: list[list[float]], class_id: int = 0) -> Detections:
    n = len(boxes)
    return Detections.from_arrays(
        np.asarray(boxes, np.float32).reshape(-1, 4), np.linspace(0.9, 0.5, n), [class_id] * n
    )


def test_recall_precision_and_ignored_regions(tmp_path: Path) -> None:
    frame1 = _dets([[10, 10, 30, 50], [200, 10, 220, 50], [250, 0, 260, 5]])  # hit, ignored, FP
    frame2 = Detections.concat([_dets([[12, 10, 32, 50]]), _dets([[102, 10, 122, 50]], 5)])
    detector = ReplayDetector([frame1, frame2])
    result = detection_recall(_sequence(tmp_path), detector, classes=(0,))
    assert detector.shapes == [(60, 320, 3)] * 2
    assert result["frames"] == 2
    assert result["gt"] == 4
    assert result["matched"] == 2  # the class-5 box on frame 2 is not a person
    assert result["false_positives"] == 1
    assert result["ignored_detections"] == 1
    assert result["recall"] == pytest.approx(0.5)
    assert result["precision"] == pytest.approx(2 / 3)
    assert [f["frame"] for f in result["per_frame"]] == [1, 2]


def test_min_visibility_and_frame_selection(tmp_path: Path) -> None:
    detector = ReplayDetector([_dets([[10, 10, 30, 50], [100, 10, 120, 50]])])
    result = detection_recall(_sequence(tmp_path), detector, frames=[1], min_visibility=0.25)
    assert result["gt"] == 1  # the 0.1-visible pedestrian is not asked for...
    assert result["matched"] == 1
    assert result["false_positives"] == 0  # ...and finding it costs nothing
    assert result["ignored_detections"] == 1


def test_no_scorable_frames_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none of the requested frames"):
        detection_recall(_sequence(tmp_path), ReplayDetector([]), frames=[3])


def test_video_sequences_are_read_frame_by_frame(tmp_path: Path) -> None:
    seq = _sequence(tmp_path, frames=0)
    (seq / "img1").rmdir()
    writer = cv2.VideoWriter(str(seq / "SEQ-01.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 60))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for _ in range(2):
        writer.write(np.zeros((60, 320, 3), np.uint8))
    writer.release()
    detector = ReplayDetector([_dets([[10, 10, 30, 50]]), _dets([])])
    result = detection_recall(seq, detector)
    assert result["frames"] == 2
    assert result["matched"] == 1


def test_each_ground_truth_box_is_matched_once() -> None:
    dets = _dets([[0, 0, 10, 10], [0, 0, 10, 10]])
    gt = np.asarray([[0, 0, 10, 10]], np.float64)
    assert match_detections(dets, gt, np.zeros((0, 4)), 0.5) == (1, 1, 0)
