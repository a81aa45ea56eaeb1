"""eval-mot with a detector run on the frames instead of det.txt."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from sim.dataset import export_mot
from vision.detections import Detections
from vision.mot import detect_sequence, read_mot_text, run_eval_mot
from vision.tracking import TrackerSettings

ROOT = Path(__file__).resolve().parents[3]


class ReplayDetector:
    """Returns the ground truth of frame k on its k-th call (a perfect detector)."""

    def __init__(self, gt_path: Path, drop_every: int = 0) -> None:
        self.gt = read_mot_text(gt_path, min_conf=1.0)
        self.by_frame = self.gt.by_frame()
        self.calls = 0
        self.drop_every = drop_every

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for _ in frames:
            self.calls += 1
            rows = self.by_frame.get(self.calls, np.zeros(0, int))
            if self.drop_every and self.calls % self.drop_every == 0:
                rows = rows[:0]
            xyxy = self.gt.xyxy[rows]
            out.append(Detections.from_arrays(xyxy, np.full(len(rows), 0.9), np.zeros(len(rows))))
        return out


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mot")
    export_mot(root / "seq", ROOT / "scenarios" / "demo.yaml", "cam-ceil-02", 6.0, seed=7)
    return root


def test_detections_come_from_the_detector(sequence: Path) -> None:
    det = detect_sequence(sequence / "seq", ReplayDetector(sequence / "seq" / "gt" / "gt.txt"))
    gt = read_mot_text(sequence / "seq" / "gt" / "gt.txt", min_conf=1.0)
    assert len(det) == len(gt) > 0
    assert np.allclose(det.xywh, gt.xywh)


def test_perfect_detections_track_near_perfectly_and_misses_cost(sequence: Path) -> None:
    gt_path = sequence / "seq" / "gt" / "gt.txt"
    settings = TrackerSettings(high_score=0.5, new_track_score=0.5, min_hits=2)
    perfect = run_eval_mot(sequence, None, settings, ReplayDetector(gt_path))
    holes = run_eval_mot(sequence, None, settings, ReplayDetector(gt_path, drop_every=2))
    assert perfect["detections"] == "detector run on the frames"
    assert perfect["overall"]["mota"] > 0.9 and perfect["overall"]["idf1"] > 0.9
    assert holes["overall"]["recall"] < perfect["overall"]["recall"]
