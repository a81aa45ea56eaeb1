"""Detection recall and precision of a detector on a MOT-format sequence.

A MOT sequence folder holds ``gt/gt.txt`` (``frame, id, left, top, width,
height, conf, ...``; 1-based frames; ``conf`` 0 marks an entry to ignore) and
its frames, either as ``img1/<frame>.jpg`` or as one video file. Only frames
that have an image are scored.

Matching is greedy in descending detection score, each detection taking the
unmatched ground-truth box it overlaps most at IoU >= ``iou`` (the usual rule
for a single-threshold recall). A detection left unmatched that overlaps an
ignored entry (a static person, a reflection, a cyclist) is not counted as a
false positive, mirroring how MOTChallenge treats those entries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from vision.detect import box_iou
from vision.detections import Detections

__all__ = [
    "FrameDetector",
    "detection_recall",
    "iter_frames",
    "match_detections",
    "read_mot_gt",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm")


class FrameDetector(Protocol):
    """Anything that turns BGR frames into detections (an OnnxDetector, a fake in tests)."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...


def read_mot_gt(path: Path) -> np.ndarray:
    """Ground-truth rows (N, >=7) float64 from a MOT text file."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{path}: cannot read MOT ground truth ({exc}); expected comma-separated rows "
            "'frame, id, left, top, width, height, conf, ...'"
        ) from None
    if rows.size and rows.shape[1] < 7:
        raise ValueError(f"{path}: MOT rows need at least 7 columns, got {rows.shape[1]}")
    return rows if rows.size else np.zeros((0, 7))


def match_detections(
    dets: Detections, gt_xyxy: np.ndarray, ignore_xyxy: np.ndarray, iou: float
) -> tuple[int, int, int]:
    """(matched, false positives, ignored detections) for one frame."""
    order = np.argsort(-dets.score, kind="stable")
    boxes = dets.xyxy[order]
    overlap = box_iou(boxes, gt_xyxy) if len(gt_xyxy) else np.zeros((len(boxes), 0))
    taken = np.zeros(len(gt_xyxy), dtype=bool)
    unmatched: list[int] = []
    for i in range(len(boxes)):
        cand = np.where(taken, -1.0, overlap[i])
        j = int(cand.argmax()) if cand.size else -1
        if j >= 0 and cand[j] >= iou:
            taken[j] = True
        else:
            unmatched.append(i)
    ignored = 0
    if unmatched and len(ignore_xyxy):
        ign = box_iou(boxes[unmatched], ignore_xyxy).max(axis=1) >= iou
        ignored = int(ign.sum())
    return int(taken.sum()), len(unmatched) - ignored, ignored


def _image_frames(sequence_dir: Path) -> dict[int, Path]:
    folder = sequence_dir / "img1"
    if not folder.is_dir():
        return {}
    return {int(p.stem): p for p in sorted(folder.glob("*.jpg")) if p.stem.isdigit()}


def iter_frames(sequence_dir: Path, wanted: set[int] | None) -> Iterator[tuple[int, np.ndarray]]:
    """(1-based frame number, BGR image) from img1/*.jpg or, failing that, a video file."""
    images = _image_frames(sequence_dir)
    if images:
        for number, path in sorted(images.items()):
            if wanted is None or number in wanted:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"{path}: not a readable image")
                yield number, image
        return
    videos = [p for p in sorted(sequence_dir.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise FileNotFoundError(
            f"{sequence_dir}: no frames to score: expected img1/*.jpg or a video file "
            f"({', '.join(VIDEO_SUFFIXES)})"
        )
    capture = cv2.VideoCapture(str(videos[0]))
    try:
        number = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            number += 1
            if wanted is None or number in wanted:
                yield number, image
    finally:
        capture.release()


def _xyxy(rows: np.ndarray) -> np.ndarray:
    return np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)


def detection_recall(
    sequence_dir: str | Path,
    detector: FrameDetector,
    *,
    iou: float = 0.5,
    classes: Iterable[int] = (0,),
    frames: Iterable[int] | None = None,
    min_visibility: float | None = None,
) -> dict[str, Any]:
    """Score ``detector`` against a MOT sequence's ground truth, frame by frame.

    ``classes`` are the detector's class ids that count as a person (COCO: 0);
    ``frames`` restricts scoring to those 1-based frame numbers.
    ``min_visibility`` (MOT16/17 only, where column 9 is the visible fraction;
    in MOT15 that column is a world coordinate) turns ground-truth boxes less
    visible than that into ignored entries. Returns a
    JSON-ready dict: ``sequence``, ``frames``, ``gt`` (boxes to find),
    ``matched``, ``detections`` (counted ones), ``false_positives``,
    ``ignored_detections``, ``recall``, ``precision``, ``iou``,
    ``ms_per_image`` (mean wall time of ``detect``, for reporting only) and
    ``per_frame`` (``frame``, ``gt``, ``matched``, ``detections``).
    """
    seq = Path(sequence_dir)
    gt = read_mot_gt(seq / "gt" / "gt.txt")
    keep_classes = list(classes)
    wanted = None if frames is None else {int(f) for f in frames}
    per_frame: list[dict[str, int]] = []
    totals = {"gt": 0, "matched": 0, "false_positives": 0, "ignored_detections": 0}
    seconds = 0.0
    for number, image in iter_frames(seq, wanted):
        start = time.perf_counter()
        dets = detector.detect([image])[0].with_class(keep_classes)
        seconds += time.perf_counter() - start
        rows = gt[gt[:, 0] == number]
        care = rows[:, 6] != 0
        if min_visibility is not None:
            care &= rows[:, 8] >= min_visibility
        matched, false_pos, ignored = match_detections(
            dets, _xyxy(rows[care]), _xyxy(rows[~care]), iou
        )
        n_gt = int(care.sum())
        totals["gt"] += n_gt
        totals["matched"] += matched
        totals["false_positives"] += false_pos
        totals["ignored_detections"] += ignored
        per_frame.append(
            {"frame": number, "gt": n_gt, "matched": matched, "detections": matched + false_pos}
        )
    if not per_frame:
        raise ValueError(f"{seq}: none of the requested frames has an image to score")
    counted = totals["matched"] + totals["false_positives"]
    result: dict[str, Any] = {
        "sequence": seq.name,
        "frames": len(per_frame),
        **totals,
        "detections": counted,
        "recall": totals["matched"] / totals["gt"] if totals["gt"] else 0.0,
        "precision": totals["matched"] / counted if counted else 0.0,
        "iou": iou,
        "min_visibility": min_visibility,
        "ms_per_image": seconds * 1e3 / len(per_frame),
        "per_frame": per_frame,
    }
    log.info(
        "recall %s: %d/%d matched over %d frames (precision %.3f)",
        seq.name,
        totals["matched"],
        totals["gt"],
        len(per_frame),
        result["precision"],
    )
    return result
