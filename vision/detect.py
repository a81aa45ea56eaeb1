"""ONNX object detectors: letterbox, decoders for YOLOX and ultralytics exports, NMS.

The edge runs detectors with onnxruntime and numpy only (OpenCV resizes).
Each export family has a *decoder*: how its input is prepared (colour order,
scaling, where the letterboxed image sits) and how its raw output becomes
boxes. The pure parts (``letterbox``, ``decode_yolox``, ``decode_ultralytics``,
``nms``) are plain functions of arrays so they can be tested on synthetic
tensors; :class:`OnnxDetector` wires them around an inference session.

>>> boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
>>> nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), iou_threshold=0.5).tolist()
[0, 2]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.registry import DecoderName, LoadedModel
from vision.colour import COLOUR_MODES, normalise_colour
from vision.detections import Detections

__all__ = [
    "DECODERS",
    "DecoderName",
    "DecoderSpec",
    "Letterbox",
    "OnnxDetector",
    "batched_nms",
    "box_iou",
    "decode_ultralytics",
    "decode_yolox",
    "letterbox",
    "nms",
    "select_detections",
    "to_blob",
]

log = logging.getLogger(__name__)

PAD_VALUE = 114  # grey used by both YOLOX and ultralytics training pipelines
YOLOX_STRIDES = (8, 16, 32)


# --------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class Letterbox:
    """How one frame was fitted into the square model input, to map boxes back."""

    scale: float
    pad_x: int
    pad_y: int
    source_w: int
    source_h: int

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes in model-input pixels -> boxes in source-frame pixels, clipped to the frame."""
        out = xyxy.astype(np.float32, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.source_w)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.source_h)
        return out


def letterbox(
    image: np.ndarray, size: int, *, centre: bool, pad_value: int = PAD_VALUE
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) uint8 to fit a ``size`` square, keeping its aspect ratio.

    The rest is filled with ``pad_value``. YOLOX exports expect the image at the
    top-left (``centre=False``); ultralytics exports expect it centred.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"a frame must have shape (H, W, 3), got {image.shape}; convert grey frames "
            "with cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)"
        )
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"a frame must not be empty, got shape {image.shape}")
    scale = min(size / h, size / w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x = (size - new_w) // 2 if centre else 0
    pad_y = (size - new_h) // 2 if centre else 0
    canvas = np.full((size, size, 3), pad_value, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, pad_x, pad_y, w, h)


def to_blob(images: Sequence[np.ndarray], *, swap_rb: bool, unit_scale: bool) -> np.ndarray:
    """Letterboxed (S, S, 3) uint8 images -> one (B, 3, S, S) float32 batch."""
    batch = np.stack(images)
    if swap_rb:
        batch = batch[..., ::-1]
    blob = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    if unit_scale:
        blob *= 1.0 / 255.0
    return blob


# --------------------------------------------------------------------------- decoders


def _yolox_grid(input_size: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-point centres (A, 2) in grid cells and the stride (A, 1) of each."""
    grids, steps = [], []
    for stride in strides:
        cells = input_size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        steps.append(np.full((cells * cells, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_yolox(
    output: np.ndarray, input_size: int, strides: Sequence[int] = YOLOX_STRIDES
) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX output (A, 5+C) -> boxes xyxy (A, 4) in input pixels and scores (A, C).

    Each row is (x, y, w, h, objectness, class scores...) relative to its grid
    cell: centre = (xy + cell) * stride, size = exp(wh) * stride; a class's
    score is objectness times the class score (both already sigmoid).
    """
    grid, stride = _yolox_grid(input_size, strides)
    if output.ndim != 2 or output.shape[0] != grid.shape[0] or output.shape[1] < 6:
        raise ValueError(
            f"YOLOX output must have shape ({grid.shape[0]}, 5+C) for input {input_size} "
            f"and strides {tuple(strides)}, got {output.shape}; is this a YOLOX export "
            "without decoding inside the model?"
        )
    centre = (output[:, :2] + grid) * stride
    # clip before exp: untrained or corrupt outputs must not overflow to inf
    half = np.exp(np.clip(output[:, 2:4], -20.0, 20.0)) * stride / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
    scores = (output[:, 4:5] * output[:, 5:]).astype(np.float32)
    return boxes, scores


def decode_ultralytics(output: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Ultralytics YOLOv8/11 detect output (4+C, A) -> boxes xyxy (A, 4) and scores (A, C).

    Rows 0-3 are cx, cy, w, h in input pixels; the rest are class scores
    already passed through a sigmoid. ``input_size`` is unused but keeps the
    decoder signature uniform.
    """
    del input_size
    if output.ndim != 2 or output.shape[0] < 5:
        raise ValueError(
            f"ultralytics output must have shape (4+C, A), got {output.shape}; "
            "was the model exported with nms=False and a detect head?"
        )
    cxcywh = output[:4].T
    half = cxcywh[:, 2:] / 2.0
    boxes = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
    return boxes.astype(np.float32), np.ascontiguousarray(output[4:].T, dtype=np.float32)


# --------------------------------------------------------------------------- NMS


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (N, 4) x (M, 4) -> (N, M)."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best score first."""
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        overlap = box_iou(xyxy[best : best + 1], xyxy[order[1:]])[0]
        order = order[1:][overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Shifting each class's boxes by a multiple of a step wider than the span of
    all coordinates (negative ones included: decoded boxes may stick out of
    the image) makes boxes of different classes disjoint, so one NMS pass does.
    """
    if xyxy.shape[0] == 0:
        return np.zeros((0,), dtype=np.int64)
    step = float(xyxy.max() - xyxy.min()) + 1.0
    offset = class_id.astype(np.float64)[:, None] * step
    return nms(xyxy + offset, score, iou_threshold)


def select_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    score_threshold: float,
    nms_iou: float,
    max_detections: int,
    keep_class_ids: Sequence[int] | None = None,
) -> Detections:
    """Best class per box, score threshold, optional class filter, class-aware NMS, top-k."""
    class_id = scores.argmax(axis=1).astype(np.int32)
    best = scores[np.arange(scores.shape[0]), class_id]
    mask = best >= score_threshold
    if keep_class_ids is not None:
        mask &= np.isin(class_id, np.asarray(keep_class_ids, dtype=np.int32))
    boxes, best, class_id = boxes[mask], best[mask], class_id[mask]
    keep = batched_nms(boxes, best, class_id, nms_iou)[:max_detections]
    return Detections(
        xyxy=boxes[keep].astype(np.float32),
        score=best[keep].astype(np.float32),
        class_id=class_id[keep],
    )


# --------------------------------------------------------------------------- decoder registry


@dataclass(frozen=True)
class DecoderSpec:
    """One export family: how to prepare its input and read its output."""

    name: str
    decode: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
    swap_rb: bool  # frames arrive BGR (OpenCV); True feeds the model RGB
    unit_scale: bool  # True divides pixels by 255
    centre: bool  # letterboxed image centred (True) or at the top-left (False)


DECODERS: dict[str, DecoderSpec] = {
    "yolox": DecoderSpec("yolox", decode_yolox, swap_rb=False, unit_scale=False, centre=False),
    "ultralytics": DecoderSpec(
        "ultralytics", decode_ultralytics, swap_rb=True, unit_scale=True, centre=True
    ),
}


# --------------------------------------------------------------------------- runtime


class OnnxDetector:
    """An ONNX detector on onnxruntime: frames (BGR uint8) in, :class:`Detections` out.

    Boxes come back in each frame's own pixels. One warm-up inference runs at
    construction so the first real frame does not pay for allocation, and a
    model whose output does not fit the decoder fails here rather than live.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        decoder: DecoderName,
        input_size: int,
        classes: Sequence[str],
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
        max_detections: int = 300,
        keep_class_ids: Sequence[int] | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
        colour: str = "none",
    ) -> None:
        import onnxruntime as ort

        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 < nms_iou <= 1.0:
            raise ValueError(
                f"score_threshold must be in [0, 1] and nms_iou in (0, 1], got "
                f"{score_threshold} and {nms_iou}"
            )
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} not found; check the manifest's path")
        if colour not in COLOUR_MODES:
            raise ValueError(
                f"unknown colour normalisation {colour!r}; choose one of {COLOUR_MODES}"
            )
        self.spec = DECODERS[decoder]
        self.colour = colour
        self.classes = list(classes)
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_detections = max_detections
        self.keep_class_ids = None if keep_class_ids is None else list(keep_class_ids)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_size = self._check_input(model_input.shape, input_size, path)
        # a fixed batch dimension of 1 is common in exports: then frames go one by one
        self.max_batch = model_input.shape[0] if isinstance(model_input.shape[0], int) else None
        self.last_timings_ms: dict[str, float] = {}
        self._warm_up()

    @classmethod
    def from_model(
        cls, model: LoadedModel, *, balanced_upstream: bool = False, **settings: Any
    ) -> OnnxDetector:
        """A detector for a verified registry model (see :func:`models.registry.load_model`).

        ``settings`` are the keyword arguments of the constructor other than the
        ones the manifest fixes (decoder, input size, classes, colour).
        ``balanced_upstream``: the caller applies the manifest's colour step to
        every frame itself (the shelf pipeline does, for its product crops), so
        the detector must not apply it a second time.
        """
        manifest = model.manifest
        return cls(
            model.path,
            decoder=manifest.decoder,
            input_size=manifest.input_size,
            classes=model.classes,
            colour="none" if balanced_upstream else manifest.colour,
            **settings,
        )

    @staticmethod
    def _check_input(shape: Sequence[object], input_size: int, path: Path) -> int:
        if len(shape) != 4:
            raise ValueError(f"{path}: input must be (B, 3, H, W), got {shape}")
        h, w = shape[2], shape[3]
        for dim in (h, w):
            if isinstance(dim, int) and dim != input_size:
                raise ValueError(
                    f"{path}: the model's input is fixed at {h}x{w}, but input_size={input_size} "
                    f"was asked; use input_size={dim} or export the model with dynamic axes"
                )
        return input_size

    def _warm_up(self) -> None:
        frame = np.full((self.input_size, self.input_size, 3), PAD_VALUE, dtype=np.uint8)
        boxes, scores = self.spec.decode(self._infer([frame])[0], self.input_size)
        if scores.shape[1] != len(self.classes):
            raise ValueError(
                f"the model predicts {scores.shape[1]} classes but {len(self.classes)} class "
                "names were given; check the manifest's classes"
            )
        log.info(
            "detector ready: decoder=%s input=%d classes=%d boxes=%d",
            self.spec.name,
            self.input_size,
            len(self.classes),
            boxes.shape[0],
        )

    def _infer(self, letterboxed: list[np.ndarray]) -> list[np.ndarray]:
        """Raw model output per frame (the batch dimension removed)."""
        blob = to_blob(letterboxed, swap_rb=self.spec.swap_rb, unit_scale=self.spec.unit_scale)
        step = self.max_batch or blob.shape[0]
        outputs: list[np.ndarray] = []
        for start in range(0, blob.shape[0], step):
            (raw,) = self.session.run(None, {self.input_name: blob[start : start + step]})[:1]
            outputs.extend(np.asarray(raw))
        return outputs

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect in each BGR frame (several cameras share one inference call when they can)."""
        if not frames:
            return []
        t0 = time.perf_counter()
        fitted = [
            letterbox(normalise_colour(f, self.colour), self.input_size, centre=self.spec.centre)
            for f in frames
        ]
        t1 = time.perf_counter()
        raw = self._infer([img for img, _ in fitted])
        t2 = time.perf_counter()
        result = []
        for out, (_, box) in zip(raw, fitted, strict=True):
            boxes, scores = self.spec.decode(out, self.input_size)
            dets = select_detections(
                boxes,
                scores,
                score_threshold=self.score_threshold,
                nms_iou=self.nms_iou,
                max_detections=self.max_detections,
                keep_class_ids=self.keep_class_ids,
            )
            result.append(
                Detections(xyxy=box.to_source(dets.xyxy), score=dets.score, class_id=dets.class_id)
            )
        t3 = time.perf_counter()
        # for benchmarks only: decisions never read wall-clock time
        self.last_timings_ms = {
            "preprocess": (t1 - t0) * 1e3,
            "inference": (t2 - t1) * 1e3,
            "postprocess": (t3 - t2) * 1e3,
        }
        return result
