"""The validated detection type every vision stage passes along.

A :class:`Detections` holds N boxes as parallel numpy arrays, so stages can
filter, sort and concatenate them without loops. Its shapes and dtypes are
checked once, at construction, and a wrong shape is named with what was
expected and what came in; code downstream never re-checks.

>>> dets = Detections(
...     xyxy=np.array([[0, 0, 10, 20], [5, 5, 8, 9]], dtype=np.float32),
...     score=np.array([0.9, 0.2], dtype=np.float32),
...     class_id=np.array([0, 0], dtype=np.int32),
... )
>>> len(dets), len(dets[dets.score > 0.5])
(2, 1)
>>> Detections.empty().xyxy.shape
(0, 4)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Detections"]


def _check(name: str, arr: np.ndarray, shape: tuple[int | None, ...], dtype: type) -> None:
    """Raise a ValueError naming the array, the expected shape and the actual one."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            f"Detections.{name} must be a numpy array, got {type(arr).__name__}; "
            f"wrap it with np.asarray(..., dtype=np.{dtype.__name__})"
        )
    ok = arr.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(arr.shape, shape, strict=False)
    )
    if not ok:
        dims = ["N" if w is None else str(w) for w in shape]
        want_txt = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        raise ValueError(f"Detections.{name} must have shape {want_txt}, got {arr.shape}")
    if arr.dtype != dtype:
        raise ValueError(
            f"Detections.{name} must be {np.dtype(dtype).name}, got {arr.dtype}; "
            f"convert with .astype(np.{dtype.__name__})"
        )


@dataclass(frozen=True)
class Detections:
    """N detected boxes as parallel arrays.

    ``xyxy`` is float32 (N, 4) in image pixels (left, top, right, bottom),
    ``score`` float32 (N,) in [0, 1], ``class_id`` int32 (N,).
    """

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        _check("xyxy", self.xyxy, (None, 4), np.float32)
        n = self.xyxy.shape[0]
        _check("score", self.score, (n,), np.float32)
        _check("class_id", self.class_id, (n,), np.int32)
        if n and not np.isfinite(self.xyxy).all():
            bad = int(np.flatnonzero(~np.isfinite(self.xyxy).all(axis=1))[0])
            raise ValueError(f"Detections.xyxy row {bad} is not finite: {self.xyxy[bad].tolist()}")
        if n and (self.xyxy[:, 2:] < self.xyxy[:, :2]).any():
            bad = int(np.flatnonzero((self.xyxy[:, 2:] < self.xyxy[:, :2]).any(axis=1))[0])
            raise ValueError(
                f"Detections.xyxy row {bad} has right < left or bottom < top: "
                f"{self.xyxy[bad].tolist()}; boxes are (left, top, right, bottom)"
            )

    @classmethod
    def empty(cls) -> Detections:
        """No detections, with the right shapes and dtypes."""
        return cls(
            xyxy=np.zeros((0, 4), dtype=np.float32),
            score=np.zeros((0,), dtype=np.float32),
            class_id=np.zeros((0,), dtype=np.int32),
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: npt.ArrayLike,
        score: npt.ArrayLike,
        class_id: npt.ArrayLike,
    ) -> Detections:
        """Build from anything array-like, converting dtypes (shapes are still checked)."""
        box = np.asarray(xyxy, dtype=np.float32)
        if box.size == 0:
            box = box.reshape(0, 4)
        return cls(
            xyxy=box,
            score=np.asarray(score, dtype=np.float32).reshape(-1),
            class_id=np.asarray(class_id, dtype=np.int32).reshape(-1),
        )

    @classmethod
    def from_mot_rows(cls, rows: npt.ArrayLike, *, class_id: int = 0) -> Detections:
        """Boxes from MOT text rows ``frame, id, left, top, width, height, conf, ...``.

        The score is the row's ``conf`` column clipped to [0, 1]: MOT detection
        files carry raw detector scores that may exceed 1.

        >>> d = Detections.from_mot_rows([[1, -1, 10, 20, 30, 40, 0.8]])
        >>> d.xyxy.tolist()
        [[10.0, 20.0, 40.0, 60.0]]
        """
        arr = np.asarray(rows, dtype=np.float64)
        if arr.size == 0:
            return cls.empty()
        if arr.ndim != 2 or arr.shape[1] < 7:
            raise ValueError(
                f"MOT rows must have shape (N, >=7) (frame, id, left, top, width, height, "
                f"conf, ...), got {arr.shape}"
            )
        left_top = arr[:, 2:4]
        xyxy = np.concatenate([left_top, left_top + arr[:, 4:6]], axis=1)
        return cls(
            xyxy=xyxy.astype(np.float32),
            score=np.clip(arr[:, 6], 0.0, 1.0).astype(np.float32),
            class_id=np.full(arr.shape[0], class_id, dtype=np.int32),
        )

    @classmethod
    def concat(cls, parts: Iterable[Detections]) -> Detections:
        """All boxes of several Detections, in order."""
        items = list(parts)
        if not items:
            return cls.empty()
        return cls(
            xyxy=np.concatenate([d.xyxy for d in items]),
            score=np.concatenate([d.score for d in items]),
            class_id=np.concatenate([d.class_id for d in items]),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: np.ndarray | Sequence[int] | slice | int) -> Detections:
        """Select by a boolean mask aligned with the boxes, indices or a slice."""
        if isinstance(index, int):
            index = [index]
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise ValueError(
                f"a boolean mask over Detections must have shape ({len(self)},), got {index.shape}"
            )
        return Detections(
            xyxy=self.xyxy[index].reshape(-1, 4),
            score=self.score[index].reshape(-1),
            class_id=self.class_id[index].reshape(-1),
        )

    @property
    def area(self) -> np.ndarray:
        """Box areas in square pixels, float32 (N,)."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)

    def with_class(self, class_ids: Iterable[int]) -> Detections:
        """Only the boxes whose class is one of ``class_ids``."""
        return self[np.isin(self.class_id, np.asarray(list(class_ids), dtype=np.int32))]
