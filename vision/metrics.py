"""Detection accuracy: average precision at an IoU threshold (AP50, mAP50).

The figure is computed on OUR runtime's output (``vision.detect``), not the
training framework's, so a manifest's ``mAP50`` says what the edge gets.

Matching follows the PASCAL VOC rule: within one image and one class, the
detections are taken best score first and each claims the unclaimed ground-
truth box it overlaps most, if that overlap is at least ``iou_threshold``;
otherwise (no overlap, or the best box already claimed) it is a false
positive. So a duplicate detection of one person counts against precision.
AP is the area under the all-point interpolated precision-recall curve
(precision made monotone from the right, summed over recall steps). mAP is the
mean AP over the classes that have ground truth.

>>> ev = DetectionEvaluator()
>>> gt = np.array([[0, 0, 10, 10]], np.float32)
>>> ev.add(Detections(gt.copy(), np.array([0.9], np.float32), np.array([0], np.int32)),
...        gt, np.array([0]))
>>> ev.map()
1.0
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision.detect import OnnxDetector, box_iou
from vision.detections import Detections

__all__ = [
    "ClassResult",
    "DetectionEvaluator",
    "SplitResult",
    "average_precision",
    "evaluate_split",
    "main",
    "match_detections",
    "read_yolo_labels",
]


log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def average_precision(scores: np.ndarray, is_tp: np.ndarray, n_ground_truth: int) -> float:
    """All-point interpolated AP of detections (scores, true/false positive flags).

    ``n_ground_truth`` is the number of ground-truth boxes the detections compete for;
    AP is 0.0 when there are none to find (nothing can be recalled).
    """
    if n_ground_truth <= 0 or len(scores) == 0:
        return 0.0
    # A stable sort keeps equal-score detections in input order: deterministic.
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    tp = np.asarray(is_tp, bool)[order]
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    recall = tp_cum / n_ground_truth
    precision = tp_cum / (tp_cum + fp_cum)
    # Envelope: the best precision reachable at this recall or beyond.
    r = np.concatenate(([0.0], recall, [recall[-1]]))
    p = np.concatenate(([1.0], precision, [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def match_detections(
    pred_xyxy: np.ndarray, pred_score: np.ndarray, gt_xyxy: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """True-positive flag per detection (one image, one class), VOC greedy matching."""
    n = len(pred_xyxy)
    is_tp = np.zeros(n, bool)
    if n == 0 or len(gt_xyxy) == 0:
        return is_tp
    iou = box_iou(np.asarray(pred_xyxy, np.float32), np.asarray(gt_xyxy, np.float32))
    claimed = np.zeros(len(gt_xyxy), bool)
    for i in np.argsort(-np.asarray(pred_score, np.float64), kind="stable"):
        best = int(np.argmax(iou[i]))
        if iou[i, best] >= iou_threshold and not claimed[best]:
            claimed[best] = True
            is_tp[i] = True
    return is_tp


@dataclass(frozen=True)
class ClassResult:
    """One class's figures: AP, ground-truth count, detections kept."""

    class_id: int
    ap: float
    n_ground_truth: int
    n_detections: int


@dataclass
class DetectionEvaluator:
    """Accumulates detections and ground truth image by image, then reports AP per class."""

    iou_threshold: float = 0.5
    _scores: dict[int, list[np.ndarray]] = field(default_factory=dict)
    _tp: dict[int, list[np.ndarray]] = field(default_factory=dict)
    _n_gt: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")

    def add(self, detections: Detections, gt_xyxy: np.ndarray, gt_class: np.ndarray) -> None:
        """Score one image: its detections against its ground-truth boxes (same pixels)."""
        gt_xyxy = np.asarray(gt_xyxy, np.float32).reshape(-1, 4)
        gt_class = np.asarray(gt_class, np.int64).reshape(-1)
        if len(gt_xyxy) != len(gt_class):
            raise ValueError(
                f"{len(gt_xyxy)} ground-truth boxes but {len(gt_class)} classes; "
                "pass one class id per box"
            )
        classes = set(gt_class.tolist()) | set(detections.class_id.tolist())
        for c in classes:
            gt_c = gt_xyxy[gt_class == c]
            mask = detections.class_id == c
            xyxy, score = detections.xyxy[mask], detections.score[mask]
            self._n_gt[c] = self._n_gt.get(c, 0) + len(gt_c)
            self._scores.setdefault(c, []).append(score.astype(np.float64))
            self._tp.setdefault(c, []).append(
                match_detections(xyxy, score, gt_c, self.iou_threshold)
            )

    def per_class(self) -> list[ClassResult]:
        """AP of every class seen (in ground truth or detections), by class id."""
        out = []
        for c in sorted(set(self._n_gt) | set(self._scores)):
            scores = np.concatenate(self._scores.get(c, [np.zeros(0)]))
            tp = np.concatenate(self._tp.get(c, [np.zeros(0, bool)]))
            n_gt = self._n_gt.get(c, 0)
            out.append(ClassResult(c, average_precision(scores, tp, n_gt), n_gt, len(scores)))
        return out

    def map(self) -> float:
        """Mean AP over the classes that have ground truth (0.0 if none has)."""
        aps = [r.ap for r in self.per_class() if r.n_ground_truth > 0]
        return float(np.mean(aps)) if aps else 0.0


def read_yolo_labels(
    path: str | Path, width_px: int, height_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """A YOLO label file (``class cx cy w h`` normalised) as pixel ``xyxy`` and class ids.

    A missing file means an image with no objects, as in the YOLO layout.
    """
    label_path = Path(path)
    rows: Sequence[Sequence[float]] = []
    if label_path.is_file():
        text = label_path.read_text().split()
        if len(text) % 5:
            raise ValueError(
                f"{label_path}: expected 5 numbers per line (class cx cy w h), got "
                f"{len(text)} numbers; fix or regenerate the label file"
            )
        rows = np.asarray(text, np.float64).reshape(-1, 5).tolist()
    arr = np.asarray(rows, np.float64).reshape(-1, 5)
    cx, cy = arr[:, 1] * width_px, arr[:, 2] * height_px
    w, h = arr[:, 3] * width_px, arr[:, 4] * height_px
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return xyxy, arr[:, 0].astype(np.int32)


@dataclass(frozen=True)
class SplitResult:
    """A detector's figures on one YOLO split, measured with our runtime."""

    map50: float
    per_class: list[ClassResult]
    images: int
    ms_per_image: float  # detect() wall time per frame, batch 1, median


def evaluate_split(
    detector: OnnxDetector,
    split_dir: str | Path,
    *,
    class_map: dict[int, int] | None = None,
    iou_threshold: float = 0.5,
) -> SplitResult:
    """AP of ``detector`` on ``<root>/images/<split>`` against ``<root>/labels/<split>``.

    ``split_dir`` is the images folder; labels sit in the sibling ``labels``
    tree, as in the YOLO layout. ``class_map`` maps detector class ids to label
    class ids; detections of unmapped classes are dropped (e.g. ``{0: 0}`` keeps
    only a COCO model's persons).
    """
    images_dir = Path(split_dir)
    labels_dir = images_dir.parent.parent / "labels" / images_dir.name
    files = sorted(f for f in images_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {images_dir}; export the dataset first")
    ev = DetectionEvaluator(iou_threshold)
    times_ms = []
    for f in files:
        image = cv2.imread(str(f))
        if image is None:
            raise ValueError(f"{f}: not a readable image")
        started = time.perf_counter()  # timing report only; decides nothing
        det = detector.detect([image])[0]
        times_ms.append((time.perf_counter() - started) * 1000.0)
        if class_map is not None:
            keep = np.isin(det.class_id, list(class_map))
            ids = np.asarray([class_map[int(c)] for c in det.class_id[keep]], np.int32)
            det = Detections(det.xyxy[keep], det.score[keep], ids.reshape(-1))
        gt_xyxy, gt_cls = read_yolo_labels(
            labels_dir / (f.stem + ".txt"), image.shape[1], image.shape[0]
        )
        ev.add(det, gt_xyxy, gt_cls)
    return SplitResult(ev.map(), ev.per_class(), len(files), float(np.median(times_ms)))


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m vision.metrics --manifest M --images runs/ceiling-ds/images/val``."""
    from models.registry import load_model

    p = argparse.ArgumentParser(description="mAP50 of a registry model on a YOLO split")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--images", type=Path, required=True, help="a YOLO images/<split> folder")
    p.add_argument("--score", type=float, default=0.01, help="score threshold (low for AP)")
    p.add_argument("--nms-iou", type=float, default=0.45)
    p.add_argument("--person-only", action="store_true", help="keep class 0 only (COCO)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    model = load_model(args.manifest, model_dir=args.model_dir)
    detector = OnnxDetector.from_model(
        model,
        score_threshold=args.score,
        nms_iou=args.nms_iou,
        keep_class_ids=[0] if args.person_only else None,
        threads=args.threads,
    )
    result = evaluate_split(detector, args.images, class_map={0: 0} if args.person_only else None)
    per = ", ".join(
        f"class {r.class_id}: AP50 {r.ap:.4f} ({r.n_ground_truth} gt)" for r in result.per_class
    )
    # the CLI's output is its report
    print(
        f"{model.manifest.name}: mAP50 {result.map50:.4f} on {result.images} images "
        f"({per}); {result.ms_per_image:.1f} ms/image (median, batch 1, input "
        f"{model.manifest.input_size}, score >= {args.score})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
