"""A learned look: person crops to unit-length embeddings with an ONNX re-id model.

The colour histogram of ``vision.appearance`` tells most shoppers apart, but
not the pairs that matter: the tracker confuses people who look alike, and
for those the histogram's own noise (pose, viewing angle, hair in the middle
of a top-down box) is as large as the difference between them (measured on
busy seed 101: the right one of two similar shoppers in 0.91 of trials, see
docs/training.md). A small CNN trained on the twin's crops with identity
labels (``models/train_reid.py``) learns what stays the same across views.

The model takes ``CROP_PX`` square BGR crops of the whole person box, cut
from the grey-world balanced frame (``vision.colour``), scaled to [0, 1],
NCHW, and returns one vector per crop; vectors are L2-normalised here so
``vision.appearance.look_distance`` (1 - cosine) compares them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from models.registry import LoadedModel, load_model
from vision.ceiling import LookOf
from vision.colour import grey_world_lut

__all__ = ["CROP_PX", "ReidEmbedder", "balanced_crops", "cut_crops"]

CROP_PX = 24


def balanced_crops(
    frame: np.ndarray, xyxy: np.ndarray | Sequence[Sequence[float]]
) -> list[np.ndarray]:
    """``cut_crops`` of the grey-world balanced frame, balancing only the boxes' pixels."""
    return cut_crops(frame, xyxy, grey_world_lut(frame))


def cut_crops(
    frame: np.ndarray,
    xyxy: np.ndarray | Sequence[Sequence[float]],
    lut: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Each box's pixels scaled to CROP_PX x CROP_PX (a box off the frame gives a black crop).

    ``lut``: a colour lookup table applied to the box's pixels first (``grey_world_lut``).
    """
    h, w = frame.shape[:2]
    out: list[np.ndarray] = []
    side = (CROP_PX, CROP_PX)
    for box in np.rint(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)).astype(int).tolist():
        x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
        if x1 - x0 < 2 or y1 - y0 < 2:
            out.append(np.zeros((*side, 3), np.uint8))
            continue
        region = frame[y0:y1, x0:x1]
        if lut is not None:
            region = cv2.LUT(np.ascontiguousarray(region), lut)
        out.append(cv2.resize(region, side, interpolation=cv2.INTER_AREA))
    return out


class ReidEmbedder:
    """Runs a re-id ONNX model (manifest task ``reid``) on person crops."""

    def __init__(self, onnx_path: str | Path, threads: int | None = 1) -> None:
        import onnxruntime as ort

        if not Path(onnx_path).is_file():
            raise FileNotFoundError(f"re-id model {onnx_path} not found; check the path")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def from_model(cls, model: LoadedModel, threads: int | None = 1) -> ReidEmbedder:
        """From a verified manifest, which must say task ``reid`` and this runtime's crop size."""
        if model.manifest.task != "reid":
            raise ValueError(
                f"model {model.manifest.name!r} has task {model.manifest.task!r}; "
                "a re-id embedder needs a manifest with task: reid"
            )
        if model.manifest.input_size != CROP_PX:
            raise ValueError(
                f"re-id model {model.manifest.name!r} takes {model.manifest.input_size} px "
                f"crops; this runtime cuts {CROP_PX} px"
            )
        return cls(model.path, threads)

    @classmethod
    def from_manifest(cls, manifest: str | Path, model_dir: str | Path) -> ReidEmbedder:
        return cls.from_model(load_model(manifest, model_dir=model_dir))

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) unit vectors for N crops (N may be 0)."""
        if not crops:
            return np.zeros((0, 0), np.float32)
        batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        out = np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def looks(self, frames: Mapping[str, np.ndarray]) -> LookOf:
        """A ``vision.ceiling.LookOf`` over these frames (only the boxes are balanced)."""

        def look_of(camera_id: str, xyxy: np.ndarray) -> list[np.ndarray | None]:
            frame = frames.get(camera_id)
            boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
            if frame is None or not len(boxes):
                return [None] * len(boxes)
            return list(self.embed(balanced_crops(frame, boxes)))

        return look_of
